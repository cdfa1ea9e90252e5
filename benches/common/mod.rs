//! What the benchmarks share: a real core started from the built binary on a private socket,
//! /proc readings, and small statistics. Included by each bench with `mod common;`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_hms-console");

pub struct Core {
    pub child: Child,
    pub dir: tempfile::TempDir,
}

impl Core {
    pub fn start(config: &str) -> Core {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hms.toml"), config).unwrap();
        let child = Command::new(BIN)
            .args(["--socket", &sock(dir.path()), "--data-dir"])
            .arg(dir.path().join("data"))
            .args(["-q", "up", "-c"])
            .arg(dir.path().join("hms.toml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let core = Core { child, dir };
        wait("socket", Duration::from_secs(20), || {
            std::os::unix::net::UnixStream::connect(sock(core.dir.path())).is_ok()
        });
        core
    }
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(BIN)
            .args(["--socket", &sock(self.dir.path())])
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        let _ = self.cli(&["down"]);
        let _ = self.child.wait();
    }
}

pub fn sock(dir: &Path) -> String {
    dir.join("core.sock").to_string_lossy().into_owned()
}

pub fn wait(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Live children of a process (all its threads), with their cmdline's first word.
pub fn children(pid: u32) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let p: PathBuf = t.path().join("children");
        for c in std::fs::read_to_string(p)
            .unwrap_or_default()
            .split_whitespace()
        {
            let Ok(c) = c.parse::<u32>() else { continue };
            let cmd = std::fs::read(format!("/proc/{c}/cmdline")).unwrap_or_default();
            let first = cmd.split(|b| *b == 0).next().unwrap_or_default();
            out.push((c, String::from_utf8_lossy(first).into_owned()));
        }
    }
    out
}

pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

pub fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap();
    kb / 1024.0
}

/// Percent of one core a process uses over `secs` seconds.
pub fn idle_cpu_percent(pid: u32, secs: u64) -> f64 {
    let t0 = cpu_ns(pid);
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let ns = cpu_ns(pid).saturating_sub(t0);
    ns as f64 / 1e9 / start.elapsed().as_secs_f64() * 100.0
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// CPU time a process has used, in nanoseconds, summed over all its threads
/// (/proc/PID/task/TID/schedstat: exact, unlike the 10 ms ticks of /proc/PID/stat, which make a
/// quiet process look busy or idle by chance; /proc/PID/schedstat alone is the main thread only).
pub fn cpu_ns(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|t| {
            std::fs::read_to_string(t.path().join("schedstat"))
                .ok()?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// Kills the `sleep` child of `parent` 40 times and times each until a new `sleep` child has
/// exec'd. Returns (median, p95, min) in ms.
pub fn time_restarts(parent: u32) -> (f64, f64, f64) {
    time_restarts_spaced(parent, 40, Duration::from_millis(60))
}

/// [`time_restarts`] with `n` crashes, each after the child has run for `spacing` (peers restart
/// at once only after a run of a second or more).
pub fn time_restarts_spaced(parent: u32, n: usize, spacing: Duration) -> (f64, f64, f64) {
    let mut samples = Vec::new();
    for _ in 0..n {
        let mut old = 0;
        wait(
            "a sleep child",
            Duration::from_secs(5),
            || match children(parent).into_iter().find(|(_, c)| c == "sleep") {
                Some((p, _)) => {
                    old = p;
                    true
                }
                None => false,
            },
        );
        // Past min_uptime (and the backoff window): each crash follows a stable run.
        std::thread::sleep(spacing);
        let t0 = Instant::now();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(old as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        while !children(parent)
            .iter()
            .any(|(p, c)| *p != old && c == "sleep")
        {
            assert!(t0.elapsed() < Duration::from_secs(5), "no restart");
            // Poll gently: a busy loop would take a core from the supervisor on a 2-core box.
            std::thread::sleep(Duration::from_micros(50));
        }
        samples.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    samples.sort_by(f64::total_cmp);
    (
        percentile(&samples, 0.5),
        percentile(&samples, 0.95),
        samples[0],
    )
}
