//! What a killed core leaves running is killed, twice over.
//!
//! Every child carries the core's id in `HMS_CORE_ID` (its own children inherit it).
//!
//! 1. The reaper: at start the core runs `hms-console reaper`, a small process in its own process
//!    group that blocks reading a pipe only the core holds open. However the core ends, even by
//!    SIGKILL, the kernel closes the pipe; the reaper wakes and kills every process carrying the
//!    core's id, within milliseconds. If the reaper itself dies the core starts another.
//! 2. The sweep: the core records its id in `core.json` in its data directory while it runs. A core
//!    that starts and finds the record of a core that is no longer alive kills whatever still carries
//!    that id (for the case where the reaper was killed together with the core).
//!
//! A process that scrubs its environment escapes both; that is documented in the README.

use std::path::{Path, PathBuf};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::process::CORE_ID_ENV;

/// What a running core records about itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CoreRecord {
    pub id: String,
    pub pid: u32,
    /// The core's cgroup tree (`…/hms-<id>`), when it contained its components in one.
    #[serde(default)]
    pub cgroup: Option<PathBuf>,
}

fn record_path(data_dir: &Path) -> PathBuf {
    data_dir.join("core.json")
}

/// Writes this core's record.
pub fn write_record(data_dir: &Path, record: &CoreRecord) -> std::io::Result<()> {
    let tmp = data_dir.join("core.json.tmp");
    std::fs::write(
        &tmp,
        serde_json::to_vec(record).map_err(std::io::Error::other)?,
    )?;
    std::fs::rename(tmp, record_path(data_dir))
}

/// Removes the record on a clean shutdown.
pub fn remove_record(data_dir: &Path) {
    let _ = std::fs::remove_file(record_path(data_dir));
}

/// Kills whatever a dead previous core left behind. Returns the pids it killed.
pub fn sweep(data_dir: &Path) -> Vec<u32> {
    let Ok(bytes) = std::fs::read(record_path(data_dir)) else {
        return Vec::new();
    };
    let Ok(old) = serde_json::from_slice::<CoreRecord>(&bytes) else {
        return Vec::new();
    };
    if old.pid != std::process::id() && kill(Pid::from_raw(old.pid as i32), None).is_ok() {
        // The old core is alive (the data-dir lock should have stopped us before this).
        return Vec::new();
    }
    if let Some(tree) = &old.cgroup {
        kill_tree(tree);
    }
    let killed = kill_core_children(&old.id);
    if !killed.is_empty() {
        tracing::warn!(count = killed.len(), pids = ?killed, "killed processes left behind by a core that was killed");
    }
    killed
}

/// Kills every process that carries `HMS_CORE_ID=core_id`, scanning again until none is left (a
/// child may fork while we kill), at most a few rounds. Returns the pids killed.
pub fn kill_core_children(core_id: &str) -> Vec<u32> {
    let marker = format!("{CORE_ID_ENV}={core_id}");
    let mut killed = Vec::new();
    for _ in 0..5 {
        let found = pids_with_env(&marker);
        if found.is_empty() {
            break;
        }
        for pid in &found {
            let _ = kill(Pid::from_raw(*pid as i32), Signal::SIGKILL);
        }
        killed.extend(found);
    }
    killed
}

/// Kills everything in a core's cgroup tree, waits a moment for it to empty, and removes it.
pub fn kill_tree(tree: &Path) {
    let tree = super::cgroup::ComponentCgroup::at(tree);
    if let Err(e) = tree.kill() {
        tracing::warn!(cause = %e, "cannot kill a core's cgroup tree");
        return;
    }
    if tree.wait_empty(std::time::Duration::from_secs(2)) {
        let _ = tree.remove();
    }
}

/// The reaper's main loop (`hms-console reaper --core-id ID [--cgroup TREE]`): wait for standard
/// input to close, which happens when the core exits however it exits, then kill what it left:
/// its cgroup tree (which nothing in it can leave) and whatever carries its id.
pub fn reaper_main(core_id: &str, cgroup: Option<&Path>) {
    use std::io::Read;
    let mut sink = [0u8; 64];
    let mut stdin = std::io::stdin();
    // Anything the core writes is ignored; only the end of the stream matters.
    while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
    if let Some(tree) = cgroup {
        kill_tree(tree);
    }
    let killed = kill_core_children(core_id);
    if !killed.is_empty() {
        eprintln!(
            "hms-console reaper: the core is gone; killed {} process(es) it left: {killed:?}",
            killed.len()
        );
    }
}

/// Starts the reaper for this core and keeps one running until `cancel`; then lets it exit.
pub async fn keep_reaper(
    core_id: String,
    cgroup: Option<PathBuf>,
    log: PathBuf,
    cancel: tokio_util::sync::CancellationToken,
) {
    loop {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map(std::process::Stdio::from)
            .unwrap_or_else(|_| std::process::Stdio::null());
        // /proc/self/exe still works when the binary was replaced on disk since we started.
        let mut command = tokio::process::Command::new("/proc/self/exe");
        command.args(["reaper", "--core-id", &core_id]);
        if let Some(tree) = &cgroup {
            command.arg("--cgroup").arg(tree);
        }
        let spawned = command
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .process_group(0)
            .kill_on_drop(false)
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(cause = %e, "cannot start the reaper; orphans will be swept on the next start");
                return;
            }
        };
        // Holding the pipe's write end is the whole protocol.
        let pipe = child.stdin.take();
        tokio::select! {
            _ = cancel.cancelled() => {
                drop(pipe);
                let _ = tokio::time::timeout(std::time::Duration::from_secs(2), child.wait()).await;
                return;
            }
            status = child.wait() => {
                drop(pipe);
                tracing::warn!(?status, "the reaper exited; starting another");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// Pids whose environment holds exactly `entry` (`NAME=value`).
pub fn pids_with_env(entry: &str) -> Vec<u32> {
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|env| env.split(|b| *b == 0).any(|v| v == entry.as_bytes()))
                .unwrap_or(false)
        })
        .collect()
}
