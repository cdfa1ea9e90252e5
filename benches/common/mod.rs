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
    child_pids(pid)
        .into_iter()
        .map(|c| (c, first_word_of_cmdline(c)))
        .collect()
}

/// The pids the threads of `pid` forked, read from their `children` files only (no cmdline
/// read: a thousand of them every millisecond kept a core busy, see the core bench).
pub fn child_pids(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let listed = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
        out.extend(
            listed
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok()),
        );
    }
    out
}

/// The first word of a process's command line ("" when it is gone).
pub fn first_word_of_cmdline(pid: u32) -> String {
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let first = cmd.split(|b| *b == 0).next().unwrap_or_default();
    String::from_utf8_lossy(first).into_owned()
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

/// The argument that turns a bench executable into the restart probe (see [`probe_main`]).
pub const PROBE_ARG: &str = "--restart-probe";

/// CLOCK_MONOTONIC now, in nanoseconds (the clock `Instant` reads, as a number another process
/// can compare).
pub fn monotonic_ns() -> u64 {
    let mut ts = nix::libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    unsafe { nix::libc::clock_gettime(nix::libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Call first in each bench's `main`: when this executable was started as the restart probe
/// (`<bench> --restart-probe <socket>`), read CLOCK_MONOTONIC at once, send `pid, ns` as one
/// datagram to the bench's socket, then sleep until killed; never returns then. Otherwise returns
/// at once.
pub fn probe_main() {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() != Some(std::ffi::OsStr::new(PROBE_ARG)) {
        return;
    }
    let now = monotonic_ns();
    let to = args.next().expect("the probe's socket path");
    let mut msg = [0u8; 12];
    msg[..4].copy_from_slice(&std::process::id().to_le_bytes());
    msg[4..].copy_from_slice(&now.to_le_bytes());
    if let Ok(s) = std::os::unix::net::UnixDatagram::unbound() {
        let _ = s.send_to(&msg, to);
    }
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Builds benches/common/`NAME`.c with the system's `cc` (`-O2`, static when `static_link`
/// and the C library allows it) into Cargo's temporary directory for benches, once per bench
/// run; `None` (with a message) when no C compiler can.
fn build_c(name: &str, static_link: bool) -> Option<std::path::PathBuf> {
    let source = format!("{}/benches/common/{name}.c", env!("CARGO_MANIFEST_DIR"));
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let program = dir.join(name);
    // Built under a name of this process's own, then renamed over the shared one: a bench
    // running beside this one may be running the old file.
    let building = dir.join(format!("{name}.{}", std::process::id()));
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let links: &[&str] = if static_link { &["-static", ""] } else { &[""] };
    let built = links.iter().any(|link| {
        Command::new(&cc)
            .args(["-O2", "-o"])
            .arg(&building)
            .args((!link.is_empty()).then_some(link))
            .arg(&source)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if built && std::fs::rename(&building, &program).is_ok() {
        Some(program)
    } else {
        let _ = std::fs::remove_file(&building);
        eprintln!("note: `{cc}` could not build {source}");
        None
    }
}

/// The restart probe as a tiny static C program (benches/common/probe.c: why it is C is said
/// there). `None` when it cannot be built (the bench executable is then the probe, its own
/// start, ~1.1-1.5 ms, in every restart figure), or when `HMS_BENCH_SELF_PROBE` is set: the
/// bench executable is then the probe, as in figures taken before this program existed.
fn c_probe() -> Option<&'static Path> {
    static PROBE: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    PROBE
        .get_or_init(|| {
            if std::env::var_os("HMS_BENCH_SELF_PROBE").is_some() {
                return None;
            }
            build_c("probe", true)
        })
        .as_deref()
}

/// The floor for `hms-console status` (benches/common/status_floor.c): a C program that does the
/// same exchange with the core and prints the answer as it came. `None` without a C compiler.
pub fn status_floor() -> Option<&'static Path> {
    static FLOOR: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    FLOOR
        .get_or_init(|| build_c("status_floor", false))
        .as_deref()
}

/// The child every restart timing supervises: the C probe ([`c_probe`]), else this bench
/// executable re-exec'd as the probe ([`probe_main`]). It tells the bench its pid and the
/// CLOCK_MONOTONIC time its `main` began over a Unix datagram socket the bench blocks on, so the
/// bench neither polls /proc nor spends CPU while it waits (a poller takes a core from the
/// supervisor and from any load on a 2-core machine).
pub struct Probe {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    socket: std::os::unix::net::UnixDatagram,
    /// The running probe's pid, once it has reported (0 before).
    current: std::sync::atomic::AtomicU32,
}

impl Default for Probe {
    fn default() -> Self {
        Self::new()
    }
}

impl Probe {
    /// Binds the socket first, so that no start is missed.
    pub fn new() -> Probe {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("probe.sock");
        let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        Probe {
            _dir: dir,
            path,
            socket,
            current: std::sync::atomic::AtomicU32::new(0),
        }
    }
    /// The probe's command line: the executable, then its arguments.
    pub fn argv(&self) -> Vec<String> {
        match c_probe() {
            Some(probe) => vec![probe.display().to_string(), self.path.display().to_string()],
            None => vec![
                std::env::current_exe().unwrap().display().to_string(),
                PROBE_ARG.to_string(),
                self.path.display().to_string(),
            ],
        }
    }
    /// The command line as a TOML array, for an hms.toml `command = …`.
    pub fn toml(&self) -> String {
        let quoted: Vec<String> = self.argv().iter().map(|a| format!("{a:?}")).collect();
        format!("[{}]", quoted.join(", "))
    }
    /// The command line for `sh -c` (the bench's paths hold no quotes or spaces).
    pub fn shell(&self) -> String {
        self.argv().join(" ")
    }
    /// A crash-looping hms.toml component named `victim` running the probe.
    pub fn victim(&self) -> String {
        format!(
            "[[component]]\nname = \"victim\"\ncommand = {}\nmin_uptime = \"20ms\"\nintensity = {{ max_restarts = 100000, window = \"1s\" }}\n",
            self.toml()
        )
    }
    /// The next start's (pid, CLOCK_MONOTONIC ns), waiting at most `timeout`.
    fn next(&self, timeout: Duration) -> (u32, u64) {
        self.socket.set_read_timeout(Some(timeout)).unwrap();
        let mut msg = [0u8; 12];
        let n = self.socket.recv(&mut msg).expect("no probe start reported");
        assert_eq!(n, 12, "a short probe datagram");
        (
            u32::from_le_bytes(msg[..4].try_into().unwrap()),
            u64::from_le_bytes(msg[4..].try_into().unwrap()),
        )
    }
    /// The probe's own start, `n` times: from just before this process spawns it (fork and
    /// exec, no supervisor) to its `main`, then killed and reaped. Sorted samples in ms: the
    /// part of every restart figure that is the child's and not the supervisor's.
    pub fn time_starts(&self, n: usize) -> Vec<f64> {
        let mut samples = Vec::with_capacity(n);
        for _ in 0..n {
            let argv = self.argv();
            let t0 = monotonic_ns();
            let mut child = Command::new(&argv[0]).args(&argv[1..]).spawn().unwrap();
            let (_, started) = self.next(Duration::from_secs(5));
            samples.push(started.saturating_sub(t0) as f64 / 1e6);
            let _ = child.kill();
            let _ = child.wait();
            std::thread::sleep(Duration::from_millis(20));
        }
        samples.sort_by(f64::total_cmp);
        samples
    }
    /// The latest start already reported, if any, without waiting.
    fn latest(&self) -> Option<(u32, u64)> {
        self.socket.set_nonblocking(true).unwrap();
        let mut last = None;
        let mut msg = [0u8; 12];
        while let Ok(12) = self.socket.recv(&mut msg) {
            last = Some((
                u32::from_le_bytes(msg[..4].try_into().unwrap()),
                u64::from_le_bytes(msg[4..].try_into().unwrap()),
            ));
        }
        self.socket.set_nonblocking(false).unwrap();
        last
    }
    /// Kills the running probe `n` times, each after it has run for `spacing` (past min_uptime;
    /// peers restart at once only after a run of a second or more), and times each from just
    /// before the SIGKILL to the moment the new probe's `main` read the clock: the kill, the
    /// supervisor noticing the exit, its fork and exec, and the probe's own start up to its
    /// `main` (the same program for every supervisor measured). Returns the
    /// sorted samples in ms. The bench blocks in recv(2) meanwhile and spends no CPU.
    pub fn time_restarts(&self, n: usize, spacing: Duration) -> Vec<f64> {
        let mut pid = match self.current.load(std::sync::atomic::Ordering::Relaxed) {
            0 => self.next(Duration::from_secs(20)).0,
            pid => pid,
        };
        let mut samples = Vec::with_capacity(n);
        for _ in 0..n {
            std::thread::sleep(spacing);
            if let Some((p, _)) = self.latest() {
                pid = p;
            }
            let t0 = monotonic_ns();
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            )
            .unwrap();
            let (next, started) = self.next(Duration::from_secs(5));
            assert_ne!(next, pid, "the killed probe reported again");
            samples.push(started.saturating_sub(t0) as f64 / 1e6);
            pid = next;
        }
        self.current
            .store(pid, std::sync::atomic::Ordering::Relaxed);
        samples.sort_by(f64::total_cmp);
        samples
    }
}

/// The machine's CPU time so far from /proc/stat, in ticks: (busy, total) over all CPUs. Two
/// readings give how busy the machine was between them (see [`busy_percent`]).
pub fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = f.iter().take(8).sum();
    // idle and iowait are the 4th and 5th fields.
    let idle = f.get(3).copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// Percent of all CPUs busy between two [`machine_ticks`] readings (every process, this one too).
pub fn busy_percent(from: (u64, u64), to: (u64, u64)) -> f64 {
    (to.0 - from.0) as f64 / (to.1 - from.1).max(1) as f64 * 100.0
}
