//! What the benchmarks share: a real core started from the built binary on a private socket,
//! /proc readings, and small statistics. Included by each bench with `mod common;`.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_hms-console");

/// The binary a bench runs: [`BIN`], or `HMS_BENCH_BIN` to measure another build (an earlier
/// commit's binary, say) with the same bench in the same run.
pub fn bin() -> String {
    std::env::var("HMS_BENCH_BIN").unwrap_or_else(|_| BIN.to_string())
}

pub struct Core {
    pub child: Child,
    pub dir: tempfile::TempDir,
}

impl Core {
    pub fn start(config: &str) -> Core {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hms.toml"), config).unwrap();
        let child = Command::new(bin())
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
        Command::new(bin())
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
        children_listed(&t.path().join("children"), &mut out);
    }
    out
}

/// The children one thread of `pid` forked, with their cmdline's first word.
pub fn children_of_thread(pid: u32, tid: u32) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    children_listed(
        Path::new(&format!("/proc/{pid}/task/{tid}/children")),
        &mut out,
    );
    out
}

/// The thread of `pid` that forked `child`.
pub fn forking_thread(pid: u32, child: u32) -> Option<u32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .find(|t| {
            std::fs::read_to_string(t.path().join("children"))
                .unwrap_or_default()
                .split_whitespace()
                .any(|c| c.parse() == Ok(child))
        })
        .and_then(|t| t.file_name().to_str()?.parse().ok())
}

fn children_listed(file: &Path, out: &mut Vec<(u32, String)>) {
    for c in std::fs::read_to_string(file)
        .unwrap_or_default()
        .split_whitespace()
    {
        let Ok(c) = c.parse::<u32>() else { continue };
        let cmd = std::fs::read(format!("/proc/{c}/cmdline")).unwrap_or_default();
        let first = cmd.split(|b| *b == 0).next().unwrap_or_default();
        out.push((c, String::from_utf8_lossy(first).into_owned()));
    }
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

/// Resident and proportional set sizes of a process in MB, from /proc/PID/smaps_rollup (PSS
/// splits each shared page among the processes that map it: what the process really costs).
pub fn rss_pss_mb(pid: u32) -> (f64, f64) {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let field = |name: &str| {
        rollup
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("Rss:"), field("Pss:"))
}

/// The 1-minute load average, as /proc/loadavg says it.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_string()
}

/// Kills the `sleep` child of `parent` `n` times, each after the child has run for `spacing`
/// (past min_uptime; peers restart at once only after a run of a second or more), and times each
/// until a new `sleep` child has exec'd (seen in /proc). Returns the sorted samples in ms.
///
/// The poll reads the `children` file of the thread that forked the killed child (a supervisor
/// forks from the same thread each time), and every 8th poll all of the parent's threads, so a
/// restart from another thread is seen too, only later. Reading every thread's file on each poll
/// cost the core (eight threads) five times what one file costs (measured at load average 11:
/// 260-380 µs against 45-65 µs a poll), a shell loop (one thread) nothing more, and took that CPU
/// from the load of the loaded figures: the task bus answered ~7.5k tasks/s during the timing
/// against ~20k in its own window.
pub fn time_restarts(parent: u32, n: usize, spacing: Duration) -> Vec<f64> {
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
        let thread = forking_thread(parent, old);
        std::thread::sleep(spacing);
        let mut polls = 0u32;
        let t0 = Instant::now();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(old as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        loop {
            let seen = match thread {
                Some(tid) if polls % 8 != 7 => children_of_thread(parent, tid),
                _ => children(parent),
            };
            if seen.iter().any(|(p, c)| *p != old && c == "sleep") {
                break;
            }
            polls += 1;
            assert!(t0.elapsed() < Duration::from_secs(5), "no restart");
            // Poll gently: a busy loop would take a core from the supervisor on a 2-core box.
            std::thread::sleep(Duration::from_micros(50));
        }
        samples.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    samples.sort_by(f64::total_cmp);
    samples
}
