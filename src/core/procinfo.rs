//! Resource use of a running process, read from /proc.
//!
//! Read directly rather than through sysinfo (2-4× slower for a handful of known pids, per
//! DESIGN.md) or procfs (which parses every field of `stat` when we need three): `status` with 100
//! components samples 100 processes, and that must stay well under a millisecond or two.

use std::sync::OnceLock;
use std::time::Instant;

use crate::model::ProcessMetrics;

/// A raw reading of one process.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
    pub rss_bytes: u64,
    pub open_fds: u32,
    pub at: Instant,
}

fn clock_ticks() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .map_or(100, |t| t as u64)
    })
}

fn page_size() -> u64 {
    static PAGE: OnceLock<u64> = OnceLock::new();
    *PAGE.get_or_init(|| {
        nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .map_or(4096, |p| p as u64)
    })
}

/// The fields of a `/proc/.../stat` text that follow the command, from field 3 (the state) on.
/// The command is in parentheses and may itself hold spaces and parentheses, so the fields start
/// after the last `)`.
pub fn stat_fields(stat: &str) -> Option<std::str::SplitAsciiWhitespace<'_>> {
    Some(stat[stat.rfind(')')? + 1..].split_ascii_whitespace())
}

/// Reads a process; `None` when it is gone.
pub fn read(pid: u32) -> Option<Reading> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat_fields(&stat)?.collect();
    // rest[0] is field 3 (state); utime is field 14, stime 15, rss 24 (in pages).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let rss_pages: u64 = fields.get(21)?.parse().ok()?;
    let open_fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count() as u32)
        .unwrap_or(0);
    Some(Reading {
        cpu_ticks: utime + stime,
        rss_bytes: rss_pages * page_size(),
        open_fds,
        at: Instant::now(),
    })
}

/// Metrics from a new reading and, for CPU %, the previous one (or the process's start).
pub fn metrics(now: &Reading, previous: Option<&Reading>, started: Instant) -> ProcessMetrics {
    let (ticks, since) = match previous {
        Some(p) => (now.cpu_ticks.saturating_sub(p.cpu_ticks), p.at),
        None => (now.cpu_ticks, started),
    };
    let elapsed = now.at.saturating_duration_since(since).as_secs_f64();
    let cpu_percent = if elapsed > 0.0 {
        (ticks as f64 / clock_ticks() as f64) / elapsed * 100.0
    } else {
        0.0
    };
    ProcessMetrics {
        cpu_percent,
        rss_bytes: now.rss_bytes,
        open_fds: now.open_fds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_process() {
        let r = read(std::process::id()).expect("we exist");
        assert!(r.rss_bytes > 0);
        assert!(r.open_fds > 0);
        let m = metrics(&r, None, r.at - std::time::Duration::from_secs(1));
        assert!(m.cpu_percent >= 0.0);
    }

    #[test]
    fn a_missing_process_reads_as_none() {
        assert!(read(u32::MAX - 1).is_none());
    }
}
