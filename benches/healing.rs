//! Healing benchmarks (issue 3). Run: `cargo bench --bench healing` (or scripts/bench/healing.sh).
//! Each figure is printed beside its goal. HMS_BENCH_IDLE_SECS sets the CPU window (default 15 s,
//! at least 10 s).
//!
//! - a hung component (SIGSTOP) with a liveness probe of period 200 ms, failure_threshold 3:
//!   time from SIGSTOP until the new process runs (seen in /proc), median over 12 hangs;
//! - 500 components with tcp probes, then 500 with exec probes, at a 1 s period: the core's own
//!   CPU (utime + stime from /proc/<core>/stat) over the window.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// Time from SIGSTOP of the python child to a new python child, for `hangs` hangs.
fn hang_to_restart(hangs: usize) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The interpreter itself, not a version manager's shim script in front of it.
    let python = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .unwrap();
    let python = String::from_utf8(python.stdout).unwrap().trim().to_string();
    let core = Core::start(&format!(
        r#"
[[component]]
name = "web"
command = ["{python}", "-m", "http.server", "--bind", "127.0.0.1", "{port}"]
min_uptime = "100ms"
intensity = {{ max_restarts = 100000, window = "1s" }}
[component.liveness]
http = "http://127.0.0.1:{port}/"
period = "200ms"
timeout = "150ms"
initial_delay = "300ms"
failure_threshold = 3
"#
    ));
    let mut samples = Vec::new();
    for _ in 0..hangs {
        let mut old = 0;
        wait(
            "a python child",
            Duration::from_secs(10),
            || match children(core.pid()).into_iter().find(|(_, c)| *c == python) {
                Some((p, _)) => {
                    old = p;
                    true
                }
                None => false,
            },
        );
        wait("the server to answer", Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .and_then(|mut s| {
                    use std::io::{Read, Write};
                    s.set_read_timeout(Some(Duration::from_secs(1)))?;
                    s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
                    let mut b = [0u8; 8];
                    s.read_exact(&mut b)?;
                    Ok(b.starts_with(b"HTTP/1"))
                })
                .unwrap_or(false)
        });
        // Past the probe's initial delay, so each hang is found by the running probe schedule.
        std::thread::sleep(Duration::from_millis(400));
        let t0 = Instant::now();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(old as i32),
            nix::sys::signal::Signal::SIGSTOP,
        )
        .unwrap();
        while !children(core.pid())
            .iter()
            .any(|(p, c)| *p != old && *c == python)
        {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "no restart after a hang"
            );
            std::thread::sleep(Duration::from_micros(200));
        }
        samples.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    samples.sort_by(f64::total_cmp);
    println!(
        "hung (SIGSTOP) -> new pid running, liveness http period 200 ms, timeout 150 ms, threshold 3 (n={hangs}): median {:.0} ms (goal <= 1000 ms), p95 {:.0} ms, min {:.0} ms, max {:.0} ms",
        percentile(&samples, 0.5),
        percentile(&samples, 0.95),
        samples[0],
        samples[samples.len() - 1]
    );
}

fn probed_fleet(n: usize, probe: &str) -> String {
    let mut s = String::from("[defaults]\nstop_grace = \"1s\"\n");
    for i in 0..n {
        s.push_str(&format!(
            "[[component]]\nname = \"c{i}\"\ncommand = [\"sleep\", \"100000\"]\n[component.liveness]\n{probe}\nperiod = \"1s\"\ntimeout = \"1s\"\n"
        ));
    }
    s
}

fn probes_cpu(n: usize, kind: &str, probe: &str, secs: u64) {
    let core = Core::start(&probed_fleet(n, probe));
    wait("all running", Duration::from_secs(60), || {
        children(core.pid())
            .iter()
            .filter(|(_, c)| c == "sleep")
            .count()
            >= n
    });
    // Let the probe schedules settle into their period.
    std::thread::sleep(Duration::from_secs(2));
    let runner = probe_runner_pid(core.pid());
    let runner_t0 = runner.map(cpu_ns);
    let cpu = idle_cpu_percent(core.pid(), secs);
    let runner_cpu = runner
        .zip(runner_t0)
        .map(|(pid, t0)| cpu_ns(pid).saturating_sub(t0) as f64 / 1e9 / secs as f64 * 100.0);
    let restarts: u32 = {
        let out = core.cli(&["status", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|c| c["restarts"].as_u64().unwrap_or(0) as u32)
            .sum()
    };
    println!(
        "{n} components with {kind} probes at 1 s: core CPU {cpu:.2} % of one core over {secs} s (goal <= 5 %), RSS {:.1} MB, restarts {restarts} (expected 0)",
        rss_mb(core.pid())
    );
    if let Some(r) = runner_cpu {
        println!(
            "  + the probe runner process that spawns them: {r:.2} % (core + runner {:.2} %)",
            cpu + r
        );
    }
}

/// The core's probe runner (`hms-console probe-runner`), if it runs.
fn probe_runner_pid(core: u32) -> Option<u32> {
    let mut found = None;
    for t in std::fs::read_dir(format!("/proc/{core}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let list = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
        for c in list
            .split_whitespace()
            .filter_map(|c| c.parse::<u32>().ok())
        {
            let cmd = std::fs::read(format!("/proc/{c}/cmdline")).unwrap_or_default();
            if cmd.split(|b| *b == 0).any(|w| w == b"probe-runner") {
                found = Some(c);
            }
        }
    }
    found
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let secs: u64 = std::env::var("HMS_BENCH_IDLE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15)
        .max(10);
    println!(
        "hms-console healing benchmarks ({} cores)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    hang_to_restart(12);
    // A listener for the tcp probes: accepts and drops, from its own thread.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            drop(conn);
        }
    });
    probes_cpu(500, "tcp", &format!("tcp = \"{addr}\""), secs);
    probes_cpu(500, "exec (`true`)", "exec = [\"true\"]", secs);
}
