//! Nothing a component starts escapes it: real processes that leave their process group
//! (`setsid`) or wipe the environment the reaper looks for (`$0 = "x" x 3000` overwrites
//! /proc/PID/environ, as redis does) are still stopped with the component and killed with a
//! SIGKILLed core. Where the machine gives no writable cgroup v2 these tests say so and skip: the
//! process-group fallback cannot promise this.

mod common;

use std::time::Duration;

use common::*;
use hms::model::RunState;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const SECS10: Duration = Duration::from_secs(10);

/// Live processes whose command line contains `needle` and whose environment names this core's
/// data: we find them by a marker argument unique to the test.
fn pids_with_arg(needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(needle) && alive(pid) {
            out.push(pid);
        }
    }
    out
}

/// A marker number unique to this test run, used as a `sleep` argument to find its processes.
fn marker() -> String {
    format!("{}", 900_000 + std::process::id() % 90_000)
}

/// True when the core said it contains components in cgroups (else the test is skipped).
fn contained(core: &Core) -> bool {
    let table = core.cli_ok(&["status"]);
    let line = table
        .lines()
        .find(|l| l.starts_with("containment: "))
        .unwrap_or_else(|| panic!("status names the containment in force: {table}"));
    if line.contains("cgroup v2") {
        true
    } else {
        eprintln!("skipped: no writable cgroup v2 here ({line})");
        false
    }
}

#[test]
fn a_setsid_child_is_gone_after_stop() {
    let m = marker();
    let core = Core::start(&format!(
        "[[component]]\nname = \"escaper\"\ncommand = \"setsid sleep {m}1 & exec sleep {m}2\"\nstop_grace = \"2s\"\n"
    ));
    core.wait_component("escaper", "running", SECS10, |c| {
        c.state == RunState::Running
    });
    if !contained(&core) {
        return;
    }
    let escaped = wait_for("the setsid child to run", SECS10, || {
        let p = pids_with_arg(&format!("{m}1"));
        (!p.is_empty()).then_some(p)
    });
    core.cli_ok(&["stop", "escaper"]);
    // `stop` answers once nothing of the component is left: no waiting needed, but allow the
    // kernel a moment to finish the kill.
    wait_for("the setsid child to be gone", SECS10, || {
        escaped.iter().all(|p| !alive(*p)).then_some(())
    });
    assert!(pids_with_arg(&format!("{m}2")).is_empty());
}

#[test]
fn a_crash_looping_component_leaks_no_setsid_child() {
    let m = marker();
    let core = Core::start(&format!(
        "[defaults]\nmin_uptime = \"0s\"\nbackoff = {{ initial = \"50ms\", max = \"50ms\", factor = 1.0 }}\nintensity = {{ max_restarts = 100, window = \"10s\" }}\n[[component]]\nname = \"leaker\"\ncommand = \"setsid sleep {m}3 & sleep 0.05; exit 1\"\n"
    ));
    wait_for("five restarts", SECS10, || {
        (core.component("leaker").restarts >= 5).then_some(())
    });
    if !contained(&core) {
        return;
    }
    // Each run's setsid child dies with its run: at most the current run's (and one being killed
    // as the next starts) is alive at once, where a leak would make them pile up, one per restart.
    let restarts = core.component("leaker").restarts;
    wait_for(
        "no more than the current run's setsid child",
        SECS10,
        || (pids_with_arg(&format!("{m}3")).len() <= 1).then_some(()),
    );
    assert!(core.component("leaker").restarts >= restarts);
    core.cli_ok(&["stop", "leaker"]);
    wait_for("every setsid child to be gone after stop", SECS10, || {
        pids_with_arg(&format!("{m}3")).is_empty().then_some(())
    });
}

#[test]
fn a_process_that_wipes_its_environment_dies_with_a_killed_core() {
    if std::process::Command::new("perl")
        .arg("-v")
        .output()
        .is_err()
    {
        eprintln!("skipped: perl is not installed");
        return;
    }
    let m = marker();
    let mut core = Core::start(&format!(
        "[[component]]\nname = \"wiper\"\ncommand = [\"perl\", \"-e\", \"$0 = 'x' x 3000; sleep {m}4\"]\n"
    ));
    let wiper = core
        .wait_component("wiper", "running", SECS10, |c| c.state == RunState::Running)
        .pid
        .unwrap();
    if !contained(&core) {
        return;
    }
    // Its environment is gone: the reaper's HMS_CORE_ID scan cannot see it.
    wait_for("perl to wipe its argv and environment", SECS10, || {
        let env = std::fs::read(format!("/proc/{wiper}/environ")).unwrap_or_default();
        (!String::from_utf8_lossy(&env).contains("HMS_CORE_ID")).then_some(())
    });
    kill(Pid::from_raw(core.pid() as i32), Signal::SIGKILL).expect("kill the core");
    core.wait_exit(SECS10);
    wait_for("the environment-wiping process to die", SECS10, || {
        (!alive(wiper)).then_some(())
    });
}

#[test]
fn status_and_up_name_the_containment_in_force() {
    let core = Core::start("[[component]]\nname = \"one\"\ncommand = [\"sleep\", \"1000\"]\n");
    core.wait_component("one", "running", SECS10, |c| c.state == RunState::Running);
    let table = core.cli_ok(&["status"]);
    let line = table
        .lines()
        .find(|l| l.starts_with("containment: "))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        line.contains("cgroup v2 at ") || line.contains("process groups (no writable cgroup: "),
        "{line}"
    );
    assert!(core.log().contains("containment="), "{}", core.log());
}

fn have(program: &str) -> bool {
    std::process::Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// redis-server rewrites its process title over /proc/PID/environ, so only containment finds it.
#[test]
fn redis_dies_with_a_killed_core_and_the_next_core_runs_it_on_its_port() {
    if !have("redis-server") || !have("redis-cli") {
        eprintln!("skipped: redis-server is not installed (apt-get install redis-server)");
        return;
    }
    let port = free_port();
    let mut core = Core::start(&format!(
        "[[component]]\nname = \"redis\"\ncommand = [\"redis-server\", \"--port\", \"{port}\", \"--save\", \"\", \"--appendonly\", \"no\"]\n[component.liveness]\ntcp = {{ address = \"127.0.0.1:{port}\", send = \"PING\\r\\n\", expect = \"+PONG\" }}\nperiod = \"200ms\"\ntimeout = \"150ms\"\nfailure_threshold = 2\n"
    ));
    let redis = core
        .wait_component("redis", "running", SECS10, |c| c.state == RunState::Running)
        .pid
        .unwrap();
    if !contained(&core) {
        return;
    }
    let pong = || {
        std::process::Command::new("redis-cli")
            .args(["-p", &port.to_string(), "ping"])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("PONG"))
    };
    wait_for("redis to answer", SECS10, || pong().then_some(()));
    // A stopped redis still accepts connections; its send/expect probe sees that it is hung.
    kill(Pid::from_raw(redis as i32), Signal::SIGSTOP).unwrap();
    let restarted = core
        .wait_component("redis", "a new pid", SECS10, |c| {
            c.state == RunState::Running && c.pid.is_some_and(|p| p != redis)
        })
        .pid
        .unwrap();
    assert!(!alive(redis), "the hung redis was killed");
    wait_for("the new redis to answer", SECS10, || pong().then_some(()));
    kill(Pid::from_raw(core.pid() as i32), Signal::SIGKILL).expect("kill the core");
    core.wait_exit(SECS10);
    wait_for("redis to die with its core", SECS10, || {
        (!alive(restarted)).then_some(())
    });
    // The next core on the same data directory finds the port free.
    core.spawn();
    let again = core
        .wait_component("redis", "running", SECS10, |c| {
            c.state == RunState::Running && c.restarts == 0
        })
        .pid
        .unwrap();
    assert_ne!(again, restarted);
    wait_for("the next core's redis to answer", SECS10, || {
        pong().then_some(())
    });
    assert_eq!(core.component("redis").restarts, 0, "no 'port busy' loop");
}
