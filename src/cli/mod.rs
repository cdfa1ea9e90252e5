//! The `hms-console` command line: raw arguments become checked settings here, and each command is
//! a short function over the typed client. `main` maps errors to exit codes and prints the whole
//! cause chain. Two programs run it: `hms-console` ([`front`]: a plain `status` itself, the rest
//! handed on) and `hms-cli` ([`main`]: every command line).
//!
//! Exit codes: 0 done; 1 the command failed (the message says why); 2 bad usage (clap's code);
//! 3 no core is running on the socket.

/// `println!` for the command line's output, giving the write's error to the caller
/// ([`output::write_stdout`]): a reader that goes away early (`hms-console logs api | head`)
/// ends the command quietly instead of with a panic.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::output::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` for the command line's output, as [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::output::write_stdout(format_args!($($arg)*))
    };
}

mod fast;
mod knowledge;
mod mac;
mod output;
mod plans;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::client::{Client, ClientError};
use crate::config::{DEMO_FLEET_NAME, FleetConfig};
use crate::core::args::{FleetChoice, UpArgs as CoreArgs, Verbosity};
use crate::protocol::{Event, Response, Topic};

const AFTER_HELP: &str = "\
Examples:
  hms-console up                  run the embedded demo fleet in the foreground (Ctrl-C stops it)
  hms-console up -c hms.toml -d   run your fleet in the background
  hms-console status              one line per component
  hms-console status api --json   one component, for scripts
  hms-console restart api         restart now, clearing backoff and the circuit breaker
  hms-console logs api -f         follow a component's output
  hms-console down                stop every component in reverse dependency order, then the core

Environment: HMS_SOCKET (control socket), HMS_DATA_DIR (logs, state), RUST_LOG (log filter).
Exit codes: 0 done, 1 failed, 2 bad usage, 3 no core running.";

/// A terminal-first operations console: supervises a fleet of components, heals them when they
/// fail, and shows them live in tmux.
#[derive(Debug, Parser)]
// `bin_name`: usage and errors say `hms-console` whichever program carries the command line out
// (`hms-cli`, run by `hms-console` or by `cargo run`).
#[command(
    name = "hms-console",
    bin_name = "hms-console",
    version,
    after_help = AFTER_HELP,
    propagate_version = true
)]
pub struct Cli {
    /// The core's control socket [default: $XDG_RUNTIME_DIR/hms-console/core.sock or
    /// /tmp/hms-console-UID/core.sock].
    #[arg(long, global = true, env = "HMS_SOCKET", value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Where the core keeps component logs and state [default: ~/.local/state/hms-console].
    #[arg(long, global = true, env = "HMS_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The tmux server to use (`tmux -L NAME`); default: your usual tmux server.
    #[arg(long, global = true, env = "HMS_TMUX_SOCKET", value_name = "NAME")]
    tmux_socket: Option<String>,
    /// More logging (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the core with a fleet: -c FILE, --procfile FILE, ./hms.toml, or the embedded demo.
    #[command(
        after_help = "Examples:\n  hms-console up                      the embedded demo fleet, in the foreground\n  hms-console up -c hms.toml --detach your fleet, in the background\n  hms-console up --procfile Procfile  a foreman/overmind Procfile\n\nSee examples/hms.toml for every config key."
    )]
    Up(UpArgs),
    /// Stop every component in reverse dependency order, then the core.
    Down,
    /// Show components: state, health, pid, uptime, restarts, CPU, memory, last exit, healing,
    /// last issue and action (as many columns as the terminal or COLUMNS allows; --wide for all).
    Status {
        /// Only this component (a name from `hms-console status`).
        component: Option<String>,
        /// Every column, whatever the terminal's width.
        #[arg(long, conflicts_with = "json")]
        wide: bool,
        /// Machine-readable output: every field of every component, as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Start a stopped component.
    Start {
        /// The component's name (see `hms-console status`).
        component: String,
    },
    /// Stop a component (its stop signal to the process group, SIGKILL after the grace period).
    Stop {
        /// The component's name (see `hms-console status`).
        component: String,
    },
    /// Restart a component now; clears its backoff and closes its circuit breaker.
    Restart {
        /// The component's name (see `hms-console status`).
        component: String,
    },
    /// Show a component's recent output.
    Logs {
        /// The component's name (see `hms-console status`).
        component: String,
        /// How many lines.
        #[arg(short = 'n', long, default_value_t = 50)]
        lines: usize,
        /// Keep printing new lines as they come.
        #[arg(short, long)]
        follow: bool,
    },
    /// List recent issues (crashes, failed probes, matched log patterns, open breakers).
    Issues {
        /// Only this component's issues.
        component: Option<String>,
        /// How many of the newest issues to show.
        #[arg(short = 'n', long, default_value_t = 20)]
        limit: usize,
        /// Machine-readable output: every field of every issue, as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show recovery plans (Full level): running and recent, each step with its state and duration.
    Plans {
        #[arg(long)]
        json: bool,
    },
    /// Re-read the fleet config and apply the difference (also on SIGHUP and when the file
    /// changes); an invalid config changes nothing.
    Reload,
    /// Run a component's healing path by hand (Basic: restart; Advanced/Full: a recovery episode
    /// through its recovery actions).
    Heal {
        /// The component's name (see `hms-console status`).
        component: String,
    },
    /// Check a config without running it.
    Validate(FleetArgs),
    /// Open the console in tmux: an overview window and one window per component. Starts the
    /// core (the demo fleet unless -c) when none is running.
    Attach {
        #[command(flatten)]
        fleet: FleetArgs,
        /// The tmux session's name.
        #[arg(long, default_value = "hms")]
        session: String,
        /// Build the session but do not attach; print its name (for scripts).
        #[arg(long)]
        no_attach: bool,
        /// ASCII icons and borders in the panels.
        #[arg(long)]
        ascii: bool,
    },
    /// Create or replace a window in the running console session.
    #[command(
        after_help = "Examples:\n  hms-console layout custom 3x3\n  hms-console layout custom 2x2 --components api,db\n  hms-console layout twobytwo api\n  hms-console layout file layouts/ops-wide.toml   (edits re-apply it; invalid edits keep the old one)"
    )]
    Layout {
        #[command(subcommand)]
        layout: LayoutCommand,
        #[arg(long, default_value = "hms", global = true)]
        session: String,
        /// ASCII icons and borders in the panels.
        #[arg(long, global = true)]
        ascii: bool,
    },
    /// Run one actions-pane line, e.g. `hms-console action "restart api"`.
    #[command(
        after_help = "Examples:\n  hms-console action \"restart api\"\n  hms-console action \"status\"\n  hms-console action \"config api log_level=debug\"\n  hms-console action \"help\"          (every command)\n  hms-console action \"help restart\""
    )]
    Action {
        /// The line, as typed in the actions pane.
        line: String,
        /// The component a bare `restart` refers to.
        #[arg(long)]
        component: Option<String>,
    },
    /// Run one panel in this terminal (tmux panes run these).
    Panel {
        /// metrics, logs, status, actions, system-health, component, text, knowledge or agents.
        #[arg(value_parser = parse_panel_kind)]
        kind: crate::model::PanelKind,
        #[arg(long)]
        component: Option<String>,
        #[arg(long)]
        title: Option<String>,
        /// For `text`: which of the component's panels.
        #[arg(long)]
        panel: Option<String>,
        /// ASCII icons and borders (also HMS_ASCII=1).
        #[arg(long)]
        ascii: bool,
        /// No border or title of its own (for a tmux pane whose border shows the title).
        #[arg(long)]
        frameless: bool,
    },
    /// The knowledge registry: what the fleet learned (recovery records, issue patterns,
    /// runbooks); query it, add to it, export and import it.
    #[command(subcommand, after_help = knowledge::AFTER_HELP)]
    Knowledge(knowledge::KnowledgeCommand),
    /// The MAC task bus: its agents, a task asked by hand, recent tasks and their outcomes.
    #[command(subcommand, after_help = mac::AFTER_HELP)]
    Mac(mac::MacCommand),
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Internal: started by `attach`/`layout`; keeps the session's grids in shape after resizes
    /// and layout-file edits.
    #[command(hide = true)]
    ConsoleWatch {
        #[arg(long, default_value = "hms")]
        session: String,
        #[arg(long)]
        ascii: bool,
    },
    /// Internal: started by the core; runs exec probes for it.
    #[command(hide = true)]
    ProbeRunner,
    /// Internal: started by the core; kills what the core leaves if it is killed.
    #[command(hide = true)]
    Reaper {
        #[arg(long)]
        core_id: String,
        /// The core's cgroup tree, killed whole when the core is gone.
        #[arg(long)]
        cgroup: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum LayoutCommand {
    /// The guide's TwoByTwo window for one component: metrics, logs, status, actions.
    Twobytwo {
        /// The component (default: the first).
        component: Option<String>,
    },
    /// A ROWSxCOLS grid of component tiles with system health and actions rows, e.g. `3x3`.
    Custom {
        /// ROWSxCOLS, 1 to 12 each.
        #[arg(value_parser = parse_size)]
        size: (u8, u8),
        /// The components for the tiles, in order (default: the fleet's first ones).
        #[arg(long, value_delimiter = ',')]
        components: Option<Vec<String>>,
    },
    /// A layout file (see layouts/); the window is rebuilt when the file changes.
    File { path: PathBuf },
}

fn parse_size(text: &str) -> Result<(u8, u8), String> {
    crate::console::session::parse_grid_size(text).map_err(|e| e.to_string())
}

fn parse_panel_kind(text: &str) -> Result<crate::model::PanelKind, String> {
    crate::console::session::panel_kind(text).ok_or_else(|| {
        format!(
            "unknown panel kind '{text}'; kinds: {}",
            crate::panel::args::kind_names()
        )
    })
}

#[derive(Debug, Args)]
struct FleetArgs {
    /// A fleet config (hms.toml). Without it, ./hms.toml if present, else the embedded demo fleet.
    #[arg(short, long, value_name = "FILE", conflicts_with = "procfile")]
    config: Option<PathBuf>,
    /// A Procfile to import (`name: command` per line).
    #[arg(long, value_name = "FILE")]
    procfile: Option<PathBuf>,
    /// The fleet config, as -c FILE (`hms-console up hms.toml`).
    #[arg(value_name = "FILE", conflicts_with_all = ["config", "procfile"])]
    file: Option<PathBuf>,
}

impl FleetArgs {
    fn choice(&self) -> FleetChoice {
        match (self.config.as_ref().or(self.file.as_ref()), &self.procfile) {
            (Some(c), _) => FleetChoice::Config(c.clone()),
            (None, Some(p)) => FleetChoice::Procfile(p.clone()),
            (None, None) => FleetChoice::Found,
        }
    }
}

#[derive(Debug, Args)]
struct UpArgs {
    #[command(flatten)]
    fleet: FleetArgs,
    /// Run in the background; return once the core answers on its socket.
    #[arg(short, long)]
    detach: bool,
    /// Do not reload when the config file changes (`reload` and SIGHUP still do).
    #[arg(long)]
    no_watch: bool,
}

/// The program that carries out every command line but a plain `status` (see [`front`]).
pub const FULL_PROGRAM: &str = "hms-cli";

/// `hms-console`'s `main`: a plain `status` is answered here, and every other command line is
/// handed to [`FULL_PROGRAM`] beside this program ([`main`]), which replaces this process (same
/// pid, arguments, environment and exit code, and this `argv[0]`, so usage and help still say
/// `hms-console`).
///
/// Why two programs (issue 12, `status` of 100 components within 1.5 ms, process start included):
/// the start of a program costs by its size. The loader writes every relocated pointer of a
/// 10 MB binary (64 pages copied), and the kernel maps its code 64 kB at a time: `hms-console
/// status` took 260 page faults and ~1.8 ms of CPU before the split (142 faults and ~1.65 ms
/// after), of which the exchange with the core and the table are ~0.2 ms. `hms-console` now
/// links only this: the fast path's parser, the blocking client and the table. Every other
/// command pays one more `exec` (of `hms-cli`, ~0.5 ms), which no command but `status` is run
/// often enough to notice.
pub fn front() -> u8 {
    let mut words = std::env::args_os();
    let arg0 = words.next().unwrap_or_else(|| "hms-console".into());
    let args: Vec<std::ffi::OsString> = words.collect();
    if let Some(plain) = fast::plain_status(&args, |name| std::env::var_os(name)) {
        return status_fast(plain);
    }
    let exe = match crate::console::session::this_program() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("hms-console: cannot find this program's path ({e})");
            return 1;
        }
    };
    let Some(full) = crate::paths::program_beside(&exe, FULL_PROGRAM) else {
        eprintln!(
            "hms-console: {} is missing: it carries out every command but `status`, and is built \
             and installed with hms-console (`cargo build --release` builds every program, \
             `cargo install --path .` installs them all; `cargo run` builds only the one it runs: \
             `cargo run --bin hms-cli -- …` runs this command line)",
            exe.with_file_name(FULL_PROGRAM).display()
        );
        return 1;
    };
    use std::os::unix::process::CommandExt;
    let err = std::process::Command::new(&full)
        .arg0(arg0)
        .args(args)
        .exec();
    eprintln!("hms-console: cannot start {} ({err})", full.display());
    1
}

/// Runs the command line: `hms-cli`'s `main`, which `hms-console` hands every command line but a
/// plain `status` to ([`front`]).
pub fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if let Some(plain) = fast::plain_status(&args, |name| std::env::var_os(name)) {
        return ExitCode::from(status_fast(plain));
    }
    let cli = Cli::parse();
    if let Command::Reaper { core_id, cgroup } = &cli.command {
        // Plain blocking code: no runtime, no logging setup, nothing to slow the sweep.
        crate::core::orphans::reaper_main(core_id, cgroup.as_deref());
        return ExitCode::SUCCESS;
    }
    let data_dir = crate::paths::data_dir(cli.data_dir.as_deref());
    if let Command::Up(up) = &cli.command
        && !up.detach
    {
        let socket = crate::paths::socket_path(cli.socket.as_deref());
        let args = core_args(
            up.fleet.choice(),
            &socket,
            &data_dir,
            !up.no_watch,
            Verbosity::from_flags(cli.quiet, cli.verbose),
        );
        // The core program when it is installed beside this one; else the core runs here.
        exec_core_beside(&args);
        return report(
            "hms-console",
            crate::core::launch::run_up(args, socket, data_dir, || {}),
        );
    }
    // A panel draws on the terminal and logs to its own file; nothing may write to its pane.
    let is_panel = matches!(cli.command, Command::Panel { .. });
    // A command logs to standard error; `RUST_LOG` overrides the level the flags give.
    let _log_guard = (!is_panel).then(|| {
        let level = Verbosity::from_flags(cli.quiet, cli.verbose).default_filter(false);
        crate::core::launch::init_logging(level, false, &data_dir)
    });
    // A client makes one or two requests, a panel waits on events: a current-thread runtime
    // starts fastest and costs least.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hms-console: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    report("hms-console", runtime.block_on(run(cli, data_dir)))
}

/// The core's settings as `up` settled them: the socket and data directory in effect, the fleet
/// as the user named it (the core runs in the same working directory).
fn core_args(
    fleet: FleetChoice,
    socket: &Path,
    data_dir: &Path,
    watch_config: bool,
    verbosity: Verbosity,
) -> CoreArgs {
    CoreArgs {
        socket: Some(socket.to_path_buf()),
        data_dir: Some(data_dir.to_path_buf()),
        fleet,
        watch_config,
        verbosity,
    }
}

/// Replaces this process with `hms-core` when it is installed beside this program (same pid:
/// whoever started `up` waits for, signals and reads the exit code of the core as before).
/// Returns only when there is none or it cannot be started; the caller then runs the core itself.
fn exec_core_beside(args: &CoreArgs) {
    use std::os::unix::process::CommandExt;
    let Some(core) = crate::console::session::this_program()
        .ok()
        .and_then(|exe| crate::core::launch::core_beside(&exe))
    else {
        return;
    };
    let err = std::process::Command::new(&core)
        .args(args.to_args())
        .exec();
    eprintln!(
        "hms-console: cannot start {} ({err}); running the core in this process",
        core.display()
    );
}

/// `hms-console status` on the fast path (see [`fast`]): what the full path does for it, minus
/// clap, the logging setup and the runtime's timers, which it does not use.
fn status_fast(plain: fast::PlainStatus) -> u8 {
    let socket = crate::paths::socket_path(plain.socket.as_deref());
    let answer = crate::client::status_blocking(&socket, "cli", plain.component.as_deref());
    exit_code(
        "hms-console",
        answer.map_err(Into::into).and_then(|(core, components)| {
            print_status(&core, &components, plain.wide, plain.json)
        }),
    )
}

/// The exit code for a command's result; an error is printed first as `PROGRAM: message`, then
/// each cause not already quoted. 3 when no core was running, else 1 (see the module docs).
pub fn report(program: &str, result: Result<()>) -> ExitCode {
    ExitCode::from(exit_code(program, result))
}

/// [`report`]'s exit code as a number, for `hms-console`'s C entry point (`src/main.rs`), which
/// returns it to libc.
pub fn exit_code(program: &str, result: Result<()>) -> u8 {
    match result {
        Ok(()) => 0,
        Err(e) if output::reader_went_away(&e) => output::READER_GONE,
        Err(e) => {
            eprintln!("{program}: {e}");
            // A cause that a message above already quotes is not repeated.
            let mut said = e.to_string();
            for cause in e.chain().skip(1) {
                let text = cause.to_string();
                if !said.contains(&text) {
                    eprintln!("  caused by: {text}");
                    said.push_str(&text);
                }
            }
            let not_running = e.chain().any(|c| {
                matches!(
                    c.downcast_ref::<ClientError>(),
                    Some(ClientError::NotRunning { .. })
                )
            });
            if not_running { 3 } else { 1 }
        }
    }
}

async fn run(cli: Cli, data_dir: PathBuf) -> Result<()> {
    let socket = crate::paths::socket_path(cli.socket.as_deref());
    match cli.command {
        Command::Up(args) => {
            // `main` ran a foreground core; here only the launcher of a background one.
            let fleet = load_fleet(&args.fleet)?;
            detach(&args.fleet, &socket, &data_dir, &fleet, args.no_watch).await
        }
        Command::Down => down(&socket, cli.tmux_socket.as_deref()).await,
        Command::Status {
            component,
            wide,
            json,
        } => status(&socket, component, wide, json).await,
        Command::Start { component } => say(connect(&socket).await?.start(&component).await?),
        Command::Stop { component } => say(connect(&socket).await?.stop(&component).await?),
        Command::Restart { component } => say(connect(&socket).await?.restart(&component).await?),
        Command::Heal { component } => say(connect(&socket).await?.heal(&component).await?),
        Command::Reload => say(connect(&socket).await?.reload().await?),
        Command::Plans { json } => plans::plans(&socket, json).await,
        Command::Logs {
            component,
            lines,
            follow,
        } => logs(&socket, component, lines, follow).await,
        Command::Issues {
            component,
            limit,
            json,
        } => issues(&socket, component, limit, json).await,
        Command::Validate(args) => {
            let fleet = load_fleet(&args)?;
            outln!(
                "{}: ok, {} components in start order: {}",
                fleet.source,
                fleet.components.len(),
                fleet.names().join(", ")
            )?;
            Ok(())
        }
        Command::Reaper { .. } => unreachable!("handled before the runtime starts"),
        Command::ProbeRunner => {
            crate::core::probe_runner::runner_main().await;
            Ok(())
        }
        Command::Attach {
            fleet,
            session,
            no_attach,
            ascii,
        } => {
            attach(
                &fleet,
                &socket,
                &data_dir,
                cli.tmux_socket.as_deref(),
                &session,
                no_attach,
                ascii,
            )
            .await
        }
        Command::Layout {
            layout,
            session,
            ascii,
        } => {
            layout_window(
                layout,
                &socket,
                &data_dir,
                cli.tmux_socket.as_deref(),
                &session,
                ascii,
            )
            .await
        }
        Command::Action { line, component } => action(&socket, &line, component).await,
        Command::Knowledge(command) => knowledge::run(&socket, command).await,
        Command::Mac(command) => mac::run(&socket, command).await,
        Command::ConsoleWatch { session, ascii } => {
            let opts = console_options(&socket, &data_dir, &session, ascii)?;
            crate::console::watch::run(tmux_driver(cli.tmux_socket.as_deref()), opts).await
        }
        Command::Panel {
            kind,
            component,
            title,
            panel,
            ascii,
            frameless,
        } => {
            let args = crate::panel::args::PanelArgs {
                socket: None,
                data_dir: None,
                kind,
                component,
                title,
                panel,
                ascii,
                frameless,
            };
            let opts = args.options(socket, data_dir);
            crate::panel::run(opts).await
        }
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "hms-console",
                &mut std::io::stdout(),
            );
            Ok(())
        }
    }
}

/// The fleet to run: -c FILE, --procfile FILE, ./hms.toml, or the demo. Errors name the file
/// as the user wrote it.
fn load_fleet(args: &FleetArgs) -> Result<FleetConfig> {
    Ok(crate::core::launch::load_fleet(&args.choice())?)
}

async fn connect(socket: &Path) -> Result<Client> {
    Ok(Client::connect(socket, "cli").await?)
}

/// Starts a background core and waits until it answers: `hms-core` when it is installed beside
/// this program, else this program again (`up` without `--detach`).
async fn detach(
    args: &FleetArgs,
    socket: &Path,
    data_dir: &Path,
    fleet: &FleetConfig,
    no_watch: bool,
) -> Result<()> {
    if let Ok(client) = Client::connect(socket, "cli").await {
        bail!(
            "a core is already running on {} (pid {})",
            socket.display(),
            client.core().pid
        );
    }
    crate::paths::ensure_private_dir(data_dir, false)?;
    // As `up` in the foreground finds `hms-core` beside it (a rebuilt binary included).
    let exe =
        crate::console::session::this_program().context("while finding this program's path")?;
    // The fleet by its absolute path: the background core may resolve it from anywhere.
    let fleet_file = match args.choice() {
        FleetChoice::Config(c) => FleetChoice::Config(std::path::absolute(c)?),
        FleetChoice::Procfile(p) => FleetChoice::Procfile(std::path::absolute(p)?),
        FleetChoice::Found if fleet.source != DEMO_FLEET_NAME => {
            FleetChoice::Config(std::path::absolute(&fleet.source)?)
        }
        FleetChoice::Found => FleetChoice::Found,
    };
    let mut cmd = match crate::core::launch::core_beside(&exe) {
        Some(core) => {
            let settings = core_args(fleet_file, socket, data_dir, !no_watch, Verbosity::Normal);
            let mut cmd = tokio::process::Command::new(core);
            cmd.args(settings.to_args());
            cmd
        }
        None => {
            let mut cmd = tokio::process::Command::new(exe);
            cmd.arg("--socket")
                .arg(socket)
                .arg("--data-dir")
                .arg(data_dir)
                .arg("up");
            match fleet_file {
                FleetChoice::Config(c) => cmd.arg("--config").arg(c),
                FleetChoice::Procfile(p) => cmd.arg("--procfile").arg(p),
                FleetChoice::Found => &mut cmd,
            };
            if no_watch {
                cmd.arg("--no-watch");
            }
            cmd
        }
    };
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(crate::paths::core_log(data_dir))
        .context("while opening the core's log file")?;
    cmd.env(crate::core::launch::DETACHED_ENV, "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .process_group(0);
    let mut child = cmd.spawn().context("while starting the background core")?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(client) = Client::connect(socket, "cli").await {
            outln!(
                "core running in the background (pid {}), {} components from {}\n  socket: {}\n  logs:   {}\n  containment: {}",
                client.core().pid,
                fleet.components.len(),
                fleet.source,
                socket.display(),
                crate::paths::core_log(data_dir).display(),
                client.core().containment.as_deref().unwrap_or("unknown")
            )?;
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!(
                "the background core exited ({status}) before answering; see {}",
                crate::paths::core_log(data_dir).display()
            );
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "the background core did not answer on {} within 15 s; see {}",
                socket.display(),
                crate::paths::core_log(data_dir).display()
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn down(socket: &Path, tmux_socket: Option<&str>) -> Result<()> {
    let mut client = connect(socket).await?;
    let pid = client.core().pid;
    let message = client.down().await?;
    // Wait for the core process itself to be gone, so `down && up` never races.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while process_alive(pid) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    outln!("{message}")?;
    // The console that `attach` built shows this core: it goes away with it, rather than leave
    // panels saying "core unreachable" to nobody.
    for session in close_consoles(tmux_socket, socket).await {
        outln!("closed the console session '{session}'")?;
    }
    Ok(())
}

/// Kills the tmux sessions `attach` built over the core on `socket` (tagged with
/// [`crate::console::session::CORE_OPTION`]); returns their names.
async fn close_consoles(tmux_socket: Option<&str>, socket: &Path) -> Vec<String> {
    use crate::console::session::CORE_OPTION;
    use crate::tmux::driver::TmuxDriver;
    let driver = tmux_driver(tmux_socket);
    let ours = std::path::absolute(socket).unwrap_or_else(|_| socket.to_path_buf());
    let mut closed = Vec::new();
    for session in driver.list_sessions().await.unwrap_or_default() {
        let tag = driver
            .run(&[
                "show-options".into(),
                "-qv".into(),
                "-t".into(),
                format!("={session}:"),
                CORE_OPTION.into(),
            ])
            .await
            .unwrap_or_default();
        if Path::new(tag.trim()) == ours.as_path()
            && driver
                .run(&["kill-session".into(), "-t".into(), format!("={session}")])
                .await
                .is_ok()
        {
            closed.push(session);
        }
    }
    closed
}

/// True while `pid` runs (a zombie waiting for its parent to reap it counts as gone).
fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// Prints the core's message about a request it carried out.
fn say(message: String) -> Result<()> {
    outln!("{message}")?;
    Ok(())
}

async fn status(socket: &Path, component: Option<String>, wide: bool, json: bool) -> Result<()> {
    let mut client = connect(socket).await?;
    let components = client.status(component.as_deref()).await?;
    print_status(client.core(), &components, wide, json)
}

/// `status`'s output: the table (and how the core contains its components), or JSON.
fn print_status(
    core: &crate::client::CoreInfo,
    components: &[crate::model::ComponentStatus],
    wide: bool,
    json: bool,
) -> Result<()> {
    let text = if json {
        serde_json::to_string_pretty(components)? + "\n"
    } else {
        let width = if wide { None } else { output_width() };
        let mut table = output::status_table(components, std::time::SystemTime::now(), width);
        if let Some(containment) = &core.containment {
            table.push_str(&format!("\ncontainment: {containment}\n"));
        }
        table
    };
    use std::io::Write;
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(())
}

/// The columns `status` may fill: COLUMNS when set, else the terminal's width; `None` (no
/// limit) when printing to a pipe or a file, so scripts get every column.
fn output_width() -> Option<usize> {
    if let Some(columns) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|c| *c > 0)
    {
        return Some(columns);
    }
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return None;
    }
    crossterm::terminal::size()
        .ok()
        .map(|(w, _)| usize::from(w))
}

async fn issues(socket: &Path, component: Option<String>, limit: usize, json: bool) -> Result<()> {
    let mut client = connect(socket).await?;
    let issues = client.issues(component.as_deref(), limit).await?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&issues)?)?;
    } else if issues.is_empty() {
        outln!("no issues")?;
    } else {
        out!("{}", output::issues_table(&issues))?;
    }
    Ok(())
}

async fn logs(socket: &Path, component: String, lines: usize, follow: bool) -> Result<()> {
    let mut client = connect(socket).await?;
    if follow {
        client
            .subscribe(&[Topic::Logs], std::slice::from_ref(&component))
            .await?;
    }
    let tail = client.logs(&component, lines).await?;
    let last = tail.last().map(|l| l.at);
    for line in &tail {
        outln!("{}", output::log_line(line))?;
    }
    if !follow {
        return Ok(());
    }
    while let Some(event) = client.next_event().await? {
        if let Event::Log { line } = event {
            if last.is_some_and(|t| line.at <= t) {
                continue;
            }
            outln!("{}", output::log_line(&line))?;
        }
    }
    Ok(())
}

fn tmux_driver(tmux_socket: Option<&str>) -> crate::tmux::driver::Tmux {
    match tmux_socket {
        Some(name) if !name.is_empty() => crate::tmux::driver::Tmux::with_socket(name),
        _ => crate::tmux::driver::Tmux::default_server(),
    }
}

fn console_options(
    socket: &Path,
    data_dir: &Path,
    session: &str,
    ascii: bool,
) -> Result<crate::console::session::ConsoleOptions> {
    let exe = crate::console::session::this_program()
        .context("while finding this program's path for the panes")?;
    Ok(crate::console::session::ConsoleOptions {
        session: session.to_string(),
        socket: std::path::absolute(socket)?,
        data_dir: std::path::absolute(data_dir)?,
        slim_panel: crate::console::session::slim_panel_beside(&exe),
        exe,
        ascii,
    })
}

async fn attach(
    fleet_args: &FleetArgs,
    socket: &Path,
    data_dir: &Path,
    tmux_socket: Option<&str>,
    session: &str,
    no_attach: bool,
    ascii: bool,
) -> Result<()> {
    if Client::connect(socket, "cli").await.is_err() {
        let fleet = load_fleet(fleet_args)?;
        detach(fleet_args, socket, data_dir, &fleet, false).await?;
    }
    let fleet = connect(socket).await?.fleet_names().await?;
    let driver = tmux_driver(tmux_socket);
    let opts = console_options(socket, data_dir, session, ascii)?;
    let size = if no_attach {
        // COLUMNS and LINES, when both are set, size a session built for later (scripts, tests).
        let env = |name: &str| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<u16>().ok())
                .filter(|v| *v > 0)
        };
        env("COLUMNS").zip(env("LINES")).unwrap_or((200, 50))
    } else {
        crossterm::terminal::size().unwrap_or((200, 50))
    };
    let console = crate::console::session::attach_session(&driver, &opts, &fleet, size)
        .await
        .context("while building the tmux session")?;
    start_watcher(tmux_socket, &opts).await;
    if no_attach {
        outln!("{session}")?;
        return Ok(());
    }
    use crate::tmux::driver::TmuxDriver;
    if std::env::var_os("TMUX").is_some_and(|v| !v.is_empty()) && tmux_socket.is_none() {
        driver.switch_client(session).await?;
        return Ok(());
    }
    let _ = console;
    use std::os::unix::process::CommandExt;
    let err = driver.attach_command(session).exec();
    Err(anyhow::Error::new(err).context("while running tmux attach"))
}

/// Starts the session's console watcher in the background unless one runs already.
async fn start_watcher(tmux_socket: Option<&str>, opts: &crate::console::session::ConsoleOptions) {
    let driver = tmux_driver(tmux_socket);
    if crate::console::watch::running(&driver, &opts.session).await {
        return;
    }
    use crate::console::session::sh_quote;
    let log = crate::paths::log_dir(&opts.data_dir).join("console-watch.log");
    let mut words = vec![
        sh_quote(&opts.exe.to_string_lossy()),
        "--socket".into(),
        sh_quote(&opts.socket.to_string_lossy()),
        "--data-dir".into(),
        sh_quote(&opts.data_dir.to_string_lossy()),
    ];
    if let Some(t) = tmux_socket {
        words.push("--tmux-socket".into());
        words.push(sh_quote(t));
    }
    words.extend([
        "console-watch".into(),
        "--session".into(),
        sh_quote(&opts.session),
    ]);
    if opts.ascii {
        words.push("--ascii".into());
    }
    let line = format!(
        "{} </dev/null >/dev/null 2>>{}",
        words.join(" "),
        sh_quote(&log.to_string_lossy())
    );
    // A background job of the tmux server: it lives as long as the server and is reaped by it.
    if let Err(e) = driver.run(&["run-shell".into(), "-b".into(), line]).await {
        tracing::warn!(cause = %e, "cannot start the console watcher; resizes will not re-lay out grids");
    }
}

async fn layout_window(
    layout: LayoutCommand,
    socket: &Path,
    data_dir: &Path,
    tmux_socket: Option<&str>,
    session: &str,
    ascii: bool,
) -> Result<()> {
    use crate::console::session::{LayoutSource, absolute, build};
    use crate::tmux::driver::TmuxDriver;
    let source = match layout {
        LayoutCommand::Twobytwo { component } => LayoutSource::TwoByTwo(component),
        LayoutCommand::Custom {
            size: (rows, cols),
            components,
        } => LayoutSource::Custom {
            rows,
            cols,
            components,
        },
        LayoutCommand::File { path } => {
            // Check the file before touching tmux: a bad layout changes nothing.
            crate::tmux::layout::Grid::load(&path)?;
            LayoutSource::File(absolute(&path))
        }
    };
    let fleet = connect(socket).await?.fleet_names().await?;
    let driver = tmux_driver(tmux_socket);
    if !driver.has_session(session).await? {
        bail!("no tmux session '{session}'; open the console first with `hms-console attach`");
    }
    let opts = console_options(socket, data_dir, session, ascii)?;
    let name = source.window_name(&source.grid(&fleet)?);
    let replaced = driver
        .list_windows(session)
        .await?
        .iter()
        .any(|w| w.name == name);
    let window = build(&driver, &opts, &source, &fleet).await?;
    // A new window is shown; a replaced one keeps its place, and the focus stays where it was.
    if !replaced {
        driver.select_window(window.window).await?;
    }
    start_watcher(tmux_socket, &opts).await;
    outln!(
        "window '{}' ({} panes) in session '{session}'{}",
        window.name,
        window.panes.len(),
        if replaced { ", replaced in place" } else { "" }
    )?;
    let left_out = source.left_out(&fleet);
    if !left_out.is_empty() {
        outln!(
            "left out ({} tiles for {} components): {}; name them with --components or use a larger grid",
            fleet.len() - left_out.len(),
            fleet.len(),
            left_out.join(", ")
        )?;
    }
    Ok(())
}

async fn action(socket: &Path, line: &str, component: Option<String>) -> Result<()> {
    use crate::command::{ActionLine, ParseContext, help_text, parse, to_request};
    let fleet = match connect(socket).await {
        Ok(mut client) => client.fleet_names().await.map_err(anyhow::Error::from),
        Err(e) => Err(e),
    };
    let fleet = match fleet {
        Ok(f) => f,
        // `help` works without a core.
        Err(_) if line.trim_start().starts_with("help") => Vec::new(),
        Err(e) => return Err(e),
    };
    let ctx = ParseContext::new(fleet, component.as_deref());
    let parsed = parse(line, &ctx)?;
    let Some(request) = to_request(&parsed) else {
        if let ActionLine::Open(component) = &parsed {
            bail!(
                "'open' works in the console's actions pane; from a shell: hms-console layout twobytwo {component}"
            );
        }
        if let ActionLine::Help(topic) = parsed {
            let text = help_text(topic);
            if text.ends_with('\n') {
                out!("{text}")?;
            } else {
                outln!("{text}")?;
            }
        }
        return Ok(());
    };
    let mut client = connect(socket).await?;
    match client.request(request).await? {
        Response::Done { message } => outln!("{message}")?,
        Response::Status { components } => out!(
            "{}",
            output::status_table(&components, std::time::SystemTime::now(), output_width())
        )?,
        Response::Logs { lines } => {
            for l in &lines {
                outln!("{}", output::log_line(l))?;
            }
        }
        other => outln!("{other:?}")?,
    }
    Ok(())
}
