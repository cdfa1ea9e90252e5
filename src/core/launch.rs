//! How a core process starts, the same in `hms-core` and in `hms-console up` when no `hms-core`
//! is installed beside it: logging, the reaper's fork, the runtime, the fleet, then [`super::run`].
//! This is the core program's edge: errors come back as `anyhow` for the binary to print.
//!
//! `hms-console up` starts `hms-core` when it finds it ([`core_beside`]) rather than run the core
//! itself (issue 12): the core then maps and touches only the code it runs (no clap, console,
//! panels or terminal code), and only the core carries jemalloc.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::args::{FleetChoice, UpArgs};
use crate::config::{ConfigError, DEMO_FLEET_NAME, FleetConfig, FleetOrigin};

/// Set for the background process started by `up --detach`: it logs to the core's log file.
pub const DETACHED_ENV: &str = "HMS_DETACHED";

/// The core program's file name.
pub const CORE_PROGRAM: &str = "hms-core";

/// The core program installed beside `exe` (the running `hms-console`), if there is one: same
/// directory, an executable file. `cargo build` and `cargo install` put both in one directory;
/// a lone `hms-console` runs its core itself.
pub fn core_beside(exe: &Path) -> Option<PathBuf> {
    crate::paths::program_beside(exe, CORE_PROGRAM)
}

/// Runs the core with `args` in this process until it is shut down. `before_core` is called once,
/// before the runtime starts and after the reaper's fork (`hms-core` tunes its allocator there).
/// Socket and data directory are the ones in effect (the caller applied the environment and the
/// defaults).
pub fn run_up(
    args: UpArgs,
    socket: PathBuf,
    data_dir: PathBuf,
    before_core: impl FnOnce(),
) -> Result<()> {
    let detached = std::env::var_os(DETACHED_ENV).is_some();
    let _log_guard = init_logging(args.verbosity.default_filter(true), detached, &data_dir);
    // While this is the only thread of the core (a detached one's log writer aside).
    super::orphans::fork_reaper();
    before_core();
    // The core serves many clients and children: a multi-threaded runtime. Its threads run
    // below the supervisor's (see `hms::core::priority`).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .on_thread_start(super::priority::lower_this_thread)
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
    let fleet = load_fleet(&args.fleet)?;
    let origin = fleet_origin(&args.fleet)?;
    if fleet.source == DEMO_FLEET_NAME {
        tracing::info!("no config given and no ./hms.toml: running the embedded demo fleet");
    }
    runtime.block_on(super::run(super::CoreOptions {
        socket,
        data_dir,
        fleet,
        origin,
        watch_config: args.watch_config,
    }))?;
    Ok(())
}

/// The fleet to run: -c FILE, --procfile FILE, ./hms.toml, or the demo. Errors name the file
/// as the user wrote it.
pub fn load_fleet(choice: &FleetChoice) -> Result<FleetConfig, ConfigError> {
    match choice {
        FleetChoice::Procfile(path) => FleetConfig::from_procfile(path),
        FleetChoice::Config(path) => FleetConfig::load(path),
        FleetChoice::Found => {
            let local = Path::new("hms.toml");
            if local.exists() {
                FleetConfig::load(local)
            } else {
                Ok(FleetConfig::demo())
            }
        }
    }
}

/// Where the fleet comes from (absolute, so a reload finds it from anywhere).
pub fn fleet_origin(choice: &FleetChoice) -> Result<FleetOrigin> {
    let absolute = |p: &Path| {
        std::path::absolute(p).with_context(|| format!("while resolving {}", p.display()))
    };
    Ok(match choice {
        FleetChoice::Procfile(path) => FleetOrigin::Procfile(absolute(path)?),
        FleetChoice::Config(path) => FleetOrigin::Toml(absolute(path)?),
        FleetChoice::Found => {
            let local = Path::new("hms.toml");
            if local.exists() {
                FleetOrigin::Toml(absolute(local)?)
            } else {
                FleetOrigin::Demo
            }
        }
    })
}

/// Logs to standard error, or for a detached core to its log file through a writer thread.
/// `RUST_LOG` overrides `default_filter`. The commands of `hms-console` log through it too.
pub fn init_logging(
    default_filter: &str,
    detached: bool,
    data_dir: &Path,
) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    if detached {
        let _ = crate::paths::ensure_private_dir(data_dir, false);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(crate::paths::core_log(data_dir))
            .ok()?;
        let (writer, guard) = tracing_appender::non_blocking(file);
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(writer)
            .init();
        Some(guard)
    } else {
        use std::io::IsTerminal;
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .init();
        None
    }
}
