//! The orphan sweep: what a core killed with SIGKILL left running is killed by the next core.
//!
//! Direct children die with the core through PR_SET_PDEATHSIG (see [`super::process`]). Their own
//! children (a shell's `sleep`, a server's workers) do not, so every child carries the core's id in
//! `HMS_CORE_ID`, and the core records that id in `core.json` in its data directory while it runs.
//! A core that starts and finds the record of a core that is no longer alive kills every process
//! still carrying that id. A process that scrubs its environment escapes this; that is documented.

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
    let marker = format!("{CORE_ID_ENV}={}", old.id);
    let killed = pids_with_env(&marker);
    for pid in &killed {
        let _ = kill(Pid::from_raw(*pid as i32), Signal::SIGKILL);
    }
    if !killed.is_empty() {
        tracing::warn!(count = killed.len(), pids = ?killed, "killed processes left behind by a core that was killed");
    }
    killed
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
