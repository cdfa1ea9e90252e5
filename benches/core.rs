//! Core daemon benchmarks (issue 2). Run: `cargo bench --bench core` (or scripts/bench/core.sh).
//! Each figure is printed beside its goal. Set HMS_BENCH_IDLE_SECS to shorten the idle windows.
//!
//! - crash → restarted: SIGKILL the child, until the new child has exec'd (seen in /proc)
//! - `hms-console status` with 100 components, process start included
//! - the core's RSS and CPU with 100 idle children
//! - 1,000 components: time until all run, then the core's idle CPU

mod common;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn fleet(n: usize) -> String {
    let mut s = String::from("[defaults]\nstop_grace = \"1s\"\n");
    for i in 0..n {
        s.push_str(&format!(
            "[[component]]\nname = \"c{i}\"\ncommand = [\"sleep\", \"100000\"]\n"
        ));
    }
    s
}

fn restart_latency() {
    // The floor on this machine: a shell `while` loop restarting `sleep`, measured the same way.
    let mut shell = Command::new("sh")
        .args(["-c", "while :; do sleep 100000; done"])
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let (sh_med, sh_p95, _) = time_restarts(shell.id());
    // The loop and its current `sleep` together: the group.
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(shell.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = shell.wait();
    let core = Core::start(
        "[[component]]\nname = \"victim\"\ncommand = [\"sleep\", \"100000\"]\nmin_uptime = \"20ms\"\nintensity = { max_restarts = 100000, window = \"1s\" }\n",
    );
    let (med, p95, min) = time_restarts(core.pid());
    println!(
        "crash -> restarted (n=40): median {med:.2} ms (goal <= 2 ms), p95 {p95:.2} ms (goal <= 5 ms), min {min:.2} ms"
    );
    println!(
        "  same run, bare shell `while` loop: median {sh_med:.2} ms, p95 {sh_p95:.2} ms; ratio hms/shell {:.2}",
        med / sh_med
    );
}

fn hundred(idle_secs: u64) {
    let core = Core::start(&fleet(100));
    wait("100 running", Duration::from_secs(20), || {
        children(core.pid()).len() >= 100
    });
    // Warm the page cache, then time whole `status` invocations.
    let _ = core.cli(&["status"]);
    let mut samples = Vec::new();
    for _ in 0..50 {
        let t0 = Instant::now();
        let out = core.cli(&["status"]);
        samples.push(t0.elapsed().as_secs_f64() * 1000.0);
        assert!(out.status.success());
    }
    samples.sort_by(f64::total_cmp);
    println!(
        "status with 100 components, process start included (n=50): median {:.2} ms, p95 {:.2} ms (goal <= 5 ms)",
        percentile(&samples, 0.5),
        percentile(&samples, 0.95)
    );
    let rss = rss_mb(core.pid());
    let cpu = idle_cpu_percent(core.pid(), idle_secs);
    println!(
        "100 idle children: core RSS {rss:.1} MB (goal <= 15 MB), CPU {cpu:.3} % of one core over {idle_secs} s (goal <= 0.1 %)"
    );
}

fn thousand(idle_secs: u64) {
    let t0 = Instant::now();
    let core = Core::start(&fleet(1000));
    wait("1000 running", Duration::from_secs(60), || {
        children(core.pid())
            .iter()
            .filter(|(_, c)| c == "sleep")
            .count()
            >= 1000
    });
    let all = t0.elapsed().as_secs_f64();
    let cpu = idle_cpu_percent(core.pid(), idle_secs);
    println!(
        "1,000 components: all running {all:.2} s after `up` (goal <= 2 s); core idle CPU {cpu:.3} % (goal <= 1 %), RSS {:.1} MB",
        rss_mb(core.pid())
    );
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The same workloads under runit and supervisord, when they are installed
/// (`apt-get install runit`, `pip install supervisor`).
fn peers(idle_secs: u64) {
    if have("runsv") && have("runsvdir") && have("sv") {
        let dir = tempfile::tempdir().unwrap();
        let one = dir.path().join("one/victim");
        std::fs::create_dir_all(&one).unwrap();
        write_run(&one);
        let mut runsv = Command::new("runsv")
            .arg(&one)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (med, p95, _) = time_restarts_spaced(runsv.id(), 15, Duration::from_millis(1100));
        terminate(&mut runsv);
        println!(
            "  peer runit (runsv): crash -> restarted median {med:.2} ms, p95 {p95:.2} ms (n=15)"
        );
        let many = dir.path().join("many");
        for i in 0..100 {
            let svc = many.join(format!("c{i}"));
            std::fs::create_dir_all(&svc).unwrap();
            write_run(&svc);
        }
        let mut runsvdir = Command::new("runsvdir")
            .arg(&many)
            .stderr(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        wait("100 runit services", Duration::from_secs(30), || {
            (0..100).all(|i| many.join(format!("c{i}/supervise/ok")).exists())
        });
        let mut samples = Vec::new();
        for _ in 0..30 {
            let t0 = Instant::now();
            let out = Command::new("sh")
                .args(["-c", &format!("sv status {}/*", many.display())])
                .output()
                .unwrap();
            assert!(out.status.success());
            samples.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
        samples.sort_by(f64::total_cmp);
        println!(
            "  peer runit: `sv status` of 100 services median {:.2} ms",
            percentile(&samples, 0.5)
        );
        let _ = Command::new("sv")
            .arg("exit")
            .args((0..100).map(|i| many.join(format!("c{i}"))))
            .output();
        let _ = runsvdir.kill();
        let _ = runsvdir.wait();
    } else {
        println!("  peer runit: not installed (apt-get install runit), skipped");
    }
    if have("supervisord") && have("supervisorctl") {
        let dir = tempfile::tempdir().unwrap();
        let conf = |n: usize| {
            let mut c = format!(
                "[unix_http_server]\nfile={0}/s.sock\n[supervisord]\nlogfile={0}/sd.log\npidfile={0}/sd.pid\n[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n[supervisorctl]\nserverurl=unix://{0}/s.sock\n",
                dir.path().display()
            );
            for i in 0..n {
                c.push_str(&format!(
                    "[program:c{i}]\ncommand=sleep 100000\nautorestart=true\nstartsecs=0\n"
                ));
            }
            c
        };
        let path = dir.path().join("one.conf");
        std::fs::write(&path, conf(1)).unwrap();
        let mut sd = Command::new("supervisord")
            .args(["-n", "-c"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (med, p95, _) = time_restarts_spaced(sd.id(), 10, Duration::from_millis(1100));
        let _ = sd.kill();
        let _ = sd.wait();
        println!(
            "  peer supervisord: crash -> restarted median {med:.2} ms, p95 {p95:.2} ms (n=10)"
        );
        let path = dir.path().join("many.conf");
        std::fs::write(&path, conf(100)).unwrap();
        let mut sd = Command::new("supervisord")
            .args(["-n", "-c"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait("100 supervisord programs", Duration::from_secs(60), || {
            children(sd.id()).len() >= 100
        });
        let mut samples = Vec::new();
        for _ in 0..10 {
            let t0 = Instant::now();
            let _ = Command::new("supervisorctl")
                .args(["-c"])
                .arg(&path)
                .arg("status")
                .output()
                .unwrap();
            samples.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
        samples.sort_by(f64::total_cmp);
        let rss = rss_mb(sd.id());
        let cpu = idle_cpu_percent(sd.id(), idle_secs);
        println!(
            "  peer supervisord: `supervisorctl status` of 100 median {:.1} ms; 100 idle children RSS {rss:.1} MB, CPU {cpu:.3} %",
            percentile(&samples, 0.5)
        );
        let _ = sd.kill();
        let _ = sd.wait();
        let _ = Command::new("pkill")
            .args(["-f", &dir.path().display().to_string()])
            .status();
    } else {
        println!("  peer supervisord: not installed (pip install supervisor), skipped");
    }
}

/// SIGTERM and wait (runsv and supervisord stop their children on TERM), then SIGKILL whatever
/// of its children is still there, so a peer never leaves orphans behind.
fn terminate(child: &mut Child) {
    let left: Vec<u32> = children(child.id()).into_iter().map(|(p, _)| p).collect();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
    for pid in left {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

fn write_run(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let run = dir.join("run");
    std::fs::write(&run, "#!/bin/sh\nexec sleep 100000\n").unwrap();
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing we need.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let idle: u64 = std::env::var("HMS_BENCH_IDLE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    println!(
        "hms-console core benchmarks ({} cores)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    restart_latency();
    hundred(idle);
    thousand(idle.min(10));
    if std::env::var_os("HMS_BENCH_NO_PEERS").is_none() {
        peers(idle);
    }
}
