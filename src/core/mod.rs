//! The core daemon (`hms-console up`, run as the `hms-core` program when it is installed: see
//! [`launch`]): the control socket, the supervisor, and the shutdown sequence that ties them
//! together.
//!
//! Start-up, in order: take the data directory's lock (one core per data directory), refuse to
//! start over a socket that answers, remove a stale one, kill what a SIGKILLed predecessor left
//! behind, bind the socket (0600, in a 0700 directory), instruct the reaper that outlives a killed
//! core (forked by [`launch::run_up`] before the runtime started, see [`orphans::fork_reaper`]), then start the
//! fleet. Shutdown (SIGTERM,
//! SIGINT or a `Down` request): components stop in reverse dependency order, then the socket is
//! removed. The core never imports panel or tmux code; everything reaches it through the protocol.

pub mod args;
pub mod bus;
pub mod cgroup;
pub mod console_room;
pub mod history;
pub mod journal;
pub mod knowledge;
pub mod launch;
pub mod logs;
pub mod mac;
pub mod orphans;
pub mod priority;
pub mod probe_runner;
pub mod process;
pub mod procinfo;
pub mod router;
pub mod server;
pub mod supervisor;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;

use crate::config::{FleetConfig, FleetOrigin};
use crate::protocol::Request;

/// Why the core could not start.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// Another core answers on the socket.
    #[error(
        "a core is already running on {socket} (pid {pid}); stop it with `hms-console down` or choose another --socket"
    )]
    AlreadyRunning { socket: PathBuf, pid: u32 },
    /// Another core holds the data directory.
    #[error(
        "another core is using the data directory {dir}; stop it first or choose another --data-dir"
    )]
    DataDirBusy { dir: PathBuf },
    /// A directory or the socket could not be prepared.
    #[error(transparent)]
    Path(#[from] crate::paths::PathError),
    /// Binding the socket or another start-up step failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// What `up` needs.
pub struct CoreOptions {
    pub socket: PathBuf,
    pub data_dir: PathBuf,
    pub fleet: FleetConfig,
    /// Where the fleet came from, read again on reload.
    pub origin: FleetOrigin,
    /// Reload by itself when the config file changes.
    pub watch_config: bool,
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> CoreError {
    let what = what.into();
    move |source| CoreError::Io { what, source }
}

/// Runs the core until it is shut down.
pub async fn run(opts: CoreOptions) -> Result<(), CoreError> {
    let CoreOptions {
        socket,
        data_dir,
        mut fleet,
        origin,
        watch_config,
    } = opts;
    crate::paths::ensure_private_dir(&data_dir, false)?;
    crate::paths::ensure_private_dir(&crate::paths::log_dir(&data_dir), false)?;
    let _lock = lock_data_dir(&data_dir)?;
    crate::paths::prepare_socket_dir(&socket)?;
    if socket.exists() {
        match crate::client::Client::connect(&socket, "up").await {
            Ok(client) => {
                return Err(CoreError::AlreadyRunning {
                    pid: client.core().pid,
                    socket,
                });
            }
            Err(_) => {
                tracing::info!(socket = %socket.display(), "removing a stale socket");
                std::fs::remove_file(&socket).map_err(io_err(format!(
                    "removing stale socket {}",
                    socket.display()
                )))?;
            }
        }
    }
    orphans::sweep(&data_dir);
    let listener =
        UnixListener::bind(&socket).map_err(io_err(format!("binding {}", socket.display())))?;
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))
        .map_err(io_err(format!("setting the mode of {}", socket.display())))?;
    let fd_limit = raise_fd_limit();

    let core_id = uuid::Uuid::new_v4().to_string();
    // A cgroup per component when the machine lets us make one; else process groups, with the core
    // as the subreaper of whatever its children leave behind.
    let containment = std::sync::Arc::new(cgroup::Containment::detect(&core_id));
    if containment.root().is_none()
        && let Err(e) = cgroup::become_subreaper()
    {
        tracing::warn!(cause = %e, "cannot become a child subreaper");
    }
    orphans::write_record(
        &data_dir,
        &orphans::CoreRecord {
            id: core_id.clone(),
            pid: std::process::id(),
            cgroup: containment.root().map(Path::to_path_buf),
        },
    )
    .map_err(io_err("writing core.json"))?;
    tracing::info!(
        socket = %socket.display(),
        data_dir = %data_dir.display(),
        fleet = %fleet.source,
        components = fleet.components.len(),
        containment = %containment.describe(),
        "core starting"
    );

    let cancel = CancellationToken::new();
    // The reaper forked at start learns our id now, before any component starts.
    let forked_reaper = orphans::take_forked_reaper().filter(|r| {
        r.instruct(
            &core_id,
            containment.root(),
            &crate::paths::core_log(&data_dir),
        )
        .map_err(|e| tracing::warn!(cause = %e, "the forked reaper is gone; starting another"))
        .is_ok()
    });
    let reaper = tokio::spawn(orphans::keep_reaper(
        core_id.clone(),
        containment.root().map(Path::to_path_buf),
        crate::paths::core_log(&data_dir),
        forked_reaper,
        cancel.clone(),
    ));
    // The event bus and the rooms of the core; the router sends each request to its owner.
    let bus = bus::Bus::new(BUS_SLOTS);
    let logs = logs::LogStore::new(&crate::paths::log_dir(&data_dir), bus.clone());
    let journal = journal::IssueJournal::default();
    // The knowledge registry: a room of its own; the core runs on without it if it cannot open.
    // Its file is named in full, so that a reload can tell whether `[knowledge] path` changed.
    let knowledge_file = data_dir.join(knowledge::FILE_NAME);
    fleet
        .knowledge
        .path
        .get_or_insert_with(|| knowledge_file.clone());
    let knowledge =
        knowledge::KnowledgeHandle::open_configured(&data_dir, &fleet.knowledge, Some(bus.clone()))
            .unwrap_or_else(|e| {
                tracing::error!(cause = %e, "the knowledge registry is unavailable");
                knowledge::KnowledgeHandle::unavailable(e.to_string())
            });
    // Each component costs the core up to four descriptors (two pipes, a pidfd, its log file):
    // keep those, and a margin, out of the clients' reach.
    let limits = server::ConnLimits::from_config(&fleet.limits)
        .within_fds(fd_limit, 4 * fleet.components.len() as u64 + 256);
    let (supervisor, supervisor_handle, rx) = supervisor::Supervisor::new(
        &fleet,
        supervisor::SupervisorParts {
            core_id,
            knowledge: knowledge.clone(),
            knowledge_file,
            containment: containment.clone(),
            origin: origin.clone(),
            bus: bus.clone(),
            logs: logs.clone(),
            journal: journal.clone(),
        },
    );
    // The supervisor keeps the fleet it runs; this copy would sit unused as long as the core
    // runs (87 kB of specs with 100 components, seen with heaptrack; too little to show in the
    // core's RSS, which jemalloc's slabs round).
    drop(fleet);
    // The MAC task bus: a room of its own; its supervisor-agent reaches the supervisor through
    // the router.
    let mac = mac::MacHandle::spawn(bus.clone(), mac::Settings::default());
    let history = history::HistoryHandle::spawn(supervisor_handle.clone(), journal.clone());
    let handle = router::Router {
        supervisor: supervisor_handle,
        console: console_room::ConsoleHandle::spawn(bus.clone()),
        knowledge,
        mac: mac.clone(),
        history,
        logs,
        journal,
        bus,
    };
    mac.attach(handle.clone());
    // Watch the config before the fleet starts, so no edit made once it runs is missed.
    let _config_watch = origin
        .path()
        .filter(|_| watch_config)
        .and_then(|p| watch_config_file(p, handle.clone()));
    // The supervisor has a thread of its own (see `Supervisor::run_on_own_thread`).
    let (release_supervisor, supervisor_released) = tokio::sync::oneshot::channel::<()>();
    let supervisor_task = supervisor
        .run_on_own_thread(rx, supervisor_released)
        .map_err(io_err("starting the supervisor's thread"))?;
    let server_task = tokio::spawn(server::serve(
        listener,
        handle.clone(),
        server::ServerInfo {
            data_dir: data_dir.clone(),
            containment: containment.describe(),
        },
        limits,
        cancel.clone(),
    ));

    // Start-up is over a few seconds after the fleet was asked to start: the program's pages that
    // only start-up ran are handed back (`hms::pages`; measured with 100 idle children: the
    // core's RSS 9.4 → 7.6 MB, PSS 7.1 → 5.4).
    let release_pages = tokio::spawn(crate::pages::release_after_start_up());
    // Signals ask for the same orderly shutdown as `hms-console down`.
    let signal_handle = handle.clone();
    let signals = tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        loop {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                _ = int.recv() => tracing::info!("SIGINT: shutting down"),
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading the config");
                    let _ = signal_handle.request(Request::Reload).await;
                    continue;
                }
            }
            let _ = signal_handle.request(Request::Down).await;
            return;
        }
    });
    let ended_groups = supervisor_task.await.unwrap_or_default();
    // Exit only once nothing the fleet ran is left, so `down` returns to a clean machine.
    if !process::wait_groups_gone(&ended_groups, std::time::Duration::from_secs(3)).await {
        tracing::warn!("some processes of stopped components were still alive at exit");
    }
    // Anything a component left in its cgroup goes with it, and the cgroups with them.
    if let Err(e) = containment.cleanup(std::time::Duration::from_secs(2)) {
        tracing::warn!(cause = %e, "cannot clean up the components' cgroups");
    }
    cancel.cancel();
    signals.abort();
    release_pages.abort();
    let _ = server_task.await;
    let _ = reaper.await;
    let _ = std::fs::remove_file(&socket);
    orphans::remove_record(&data_dir);
    drop(release_supervisor);
    tracing::info!("core stopped");
    Ok(())
}

/// How many events the bus keeps for a subscriber that is behind (see [`bus::Bus::new`]).
const BUS_SLOTS: usize = 4096;

/// Watches the config file's directory (editors replace files by renaming) and asks for a reload
/// when the file changes. The watcher lives as long as the returned value.
fn watch_config_file(path: &Path, handle: router::Router) -> Option<notify::RecommendedWatcher> {
    let dir = path.parent()?.to_path_buf();
    let file = path.to_path_buf();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut watcher = crate::fswatch::watcher(tx)
        .map_err(
            |e| tracing::warn!(cause = %e, "cannot watch the config file; use `hms-console reload`"),
        )
        .ok()?;
    crate::fswatch::watch_dir(&mut watcher, &dir)
        .map_err(|e| tracing::warn!(dir = %dir.display(), cause = %e, "cannot watch the config file's directory"))
        .ok()?;
    tokio::spawn(async move {
        let quiet = std::time::Duration::from_millis(200);
        while let Some(_batch) = crate::fswatch::next_batch(&mut rx, quiet, |p| p == file).await {
            if file.exists() {
                let _ = handle.request(Request::Reload).await;
            }
        }
    });
    Some(watcher)
}

/// Takes an exclusive lock on `DATA_DIR/core.lock` for the core's lifetime.
fn lock_data_dir(data_dir: &Path) -> Result<nix::fcntl::Flock<std::fs::File>, CoreError> {
    let path = data_dir.join("core.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err(format!("opening {}", path.display())))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(|_| {
        CoreError::DataDirBusy {
            dir: data_dir.to_path_buf(),
        }
    })
}

/// Each child costs the core two pipes and a pidfd: a fleet of 1,000 needs more than the usual
/// soft limit of 1,024 descriptors.
/// Returns the soft limit in force.
fn raise_fd_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => {
            if setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
                hard
            } else {
                soft
            }
        }
        Ok((soft, _)) => soft,
        Err(_) => 1024,
    }
}
