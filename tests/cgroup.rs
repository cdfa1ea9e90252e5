//! Containment with real processes in a real cgroup v2 tree (src/core/cgroup.rs).
//!
//! Each test makes its own `hms-test-<uuid>` tree, so tests run in parallel without meeting, and a
//! guard kills and removes it even when the test fails. Where this machine offers no writable
//! cgroup v2, each test says why and passes without running. Waits poll with a deadline, never a
//! bare sleep.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use hms::core::cgroup::{ComponentCgroup, Containment, JOIN_FAILED, is_running};

const DEADLINE: Duration = Duration::from_secs(10);

/// A core's cgroup tree that is killed and removed when the test ends, however it ends.
struct Tree {
    id: String,
    containment: Containment,
}

impl Drop for Tree {
    fn drop(&mut self) {
        if let Err(e) = self.containment.cleanup(DEADLINE) {
            eprintln!("cleaning up {}: {e}", self.id);
        }
    }
}

/// A fresh tree, or `None` (with the reason printed) where no writable cgroup v2 exists.
fn tree() -> Option<Tree> {
    let id = format!("test-{}", uuid::Uuid::new_v4());
    match Containment::detect(&id) {
        containment @ Containment::Cgroup { .. } => Some(Tree { id, containment }),
        Containment::ProcessGroup { reason } => {
            eprintln!("skipped: no writable cgroup v2 here ({reason})");
            None
        }
    }
}

/// A child that is killed and reaped when the test ends.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(cgroup: &ComponentCgroup, argv: &[&str]) -> Reaped {
    Reaped(
        cgroup
            .command(argv)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawning sh"),
    )
}

/// Polls `ready` until it holds or the deadline passes.
fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The session id of a process, from /proc/PID/stat.
fn session(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()
}

#[test]
fn kill_leaves_no_process_of_a_tree_that_left_its_session() {
    let Some(tree) = tree() else { return };
    let cg = tree.containment.create("web").unwrap().unwrap();
    let mut child = spawn(&cg, &["sh", "-c", "setsid sleep 99999 & exec sleep 99999"]);
    // The daemon leads its own session: out of reach of the process group.
    wait_for("one sleep in a session of its own", || {
        let pids = cg.pids().unwrap();
        pids.len() == 2 && pids.iter().any(|p| session(*p) == Some(*p))
    });
    let pids = cg.pids().unwrap();
    assert!(
        pids.contains(&child.0.id()),
        "the pid std sees is the program's"
    );

    cg.kill().unwrap();
    child.0.wait().unwrap();
    assert!(cg.wait_empty(DEADLINE), "the cgroup empties");
    wait_for("every process gone", || {
        pids.iter().all(|p| !is_running(*p))
    });
    cg.remove().unwrap();
    assert!(!cg.path().exists());
}

#[test]
fn a_process_that_wipes_its_environment_is_found_and_killed_through_the_cgroup() {
    let Some(tree) = tree() else { return };
    let cg = tree.containment.create("redis-like").unwrap().unwrap();
    let marker = format!("HMS_CORE_ID={}", tree.id);
    let mut child = Reaped(
        cg.command(&["perl", "-e", "$0 = \"x\" x 3000; sleep 1000"])
            .env("HMS_CORE_ID", &tree.id)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawning perl (install perl)"),
    );
    let pid = child.0.id();
    let environ = || std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    wait_for("perl to overwrite its environment", || {
        let env = environ();
        !env.is_empty() && !String::from_utf8_lossy(&env).contains(&marker)
    });
    assert_eq!(cg.pids().unwrap(), vec![pid], "the cgroup still knows it");

    cg.kill().unwrap();
    child.0.wait().unwrap();
    assert!(cg.wait_empty(DEADLINE));
    assert!(!is_running(pid));
}

#[test]
fn stale_cgroups_of_a_dead_core_are_swept() {
    let Some(dead) = tree() else { return };
    let Some(next) = tree() else { return };
    // The dead core's component left a daemon behind and its parent is gone, as after SIGKILL.
    let cg = dead.containment.create("worker").unwrap().unwrap();
    let mut child = spawn(&cg, &["sh", "-c", "setsid sleep 99999 & exec sleep 99999"]);
    wait_for("both sleeps", || cg.pids().unwrap().len() == 2);
    let pids = cg.pids().unwrap();
    let live = next.containment.create("alive").unwrap().unwrap();
    let mut alive = spawn(&live, &["sleep", "99999"]);
    wait_for("the live core's sleep", || !live.pids().unwrap().is_empty());

    assert!(
        next.containment
            .sweep_dead_core(&dead.id, DEADLINE)
            .unwrap()
    );
    child.0.wait().unwrap();
    wait_for("the dead core's processes gone", || {
        pids.iter().all(|p| !is_running(*p))
    });
    let dead_root = dead.containment.root().unwrap();
    assert!(!dead_root.exists(), "{} removed", dead_root.display());
    assert!(
        is_running(alive.0.id()),
        "a live core's component is not touched"
    );
    alive.0.kill().unwrap();
}

#[test]
fn cleanup_kills_and_removes_every_cgroup_it_made() {
    let Some(tree) = tree() else { return };
    let mut children = Vec::new();
    for name in ["a", "b"] {
        let cg = tree.containment.create(name).unwrap().unwrap();
        children.push(spawn(&cg, &["sh", "-c", "sleep 99999 & exec sleep 99999"]));
        wait_for("two sleeps", || cg.pids().unwrap().len() == 2);
    }
    assert_eq!(tree.containment.components().unwrap().len(), 2);
    tree.containment.cleanup(DEADLINE).unwrap();
    for child in &mut children {
        child.0.wait().unwrap();
    }
    assert!(!tree.containment.root().unwrap().exists());
}

#[test]
fn cpu_time_of_the_whole_tree_is_counted() {
    let Some(tree) = tree() else { return };
    let cg = tree.containment.create("busy").unwrap().unwrap();
    let mut child = spawn(
        &cg,
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done & wait",
        ],
    );
    assert!(child.0.wait().unwrap().success());
    let usage = cg.usage(true);
    assert!(usage.cpu_usec.is_some_and(|u| u > 0), "{usage:?}");
    // The memory charged is read only when asked for (where the controller is on, it is there).
    let memory = cg.path().join("memory.current").exists();
    assert_eq!(usage.memory_bytes.is_some(), memory, "{usage:?}");
    let without = cg.usage(false);
    assert_eq!(without.memory_bytes, None);
    assert!(without.cpu_usec.is_some_and(|u| u > 0), "{without:?}");
}

#[test]
fn a_child_that_cannot_join_its_cgroup_exits_before_the_program_runs() {
    let Some(tree) = tree() else { return };
    let cg = tree.containment.create("gone").unwrap().unwrap();
    cg.remove().unwrap();
    let mut child = spawn(&cg, &["sh", "-c", "echo ran"]);
    let status = child.0.wait().unwrap();
    assert_eq!(status.code(), Some(JOIN_FAILED));
}

#[test]
fn the_program_keeps_its_pid_arguments_and_environment() {
    let Some(tree) = tree() else { return };
    let cg = tree.containment.create("echo").unwrap().unwrap();
    let mut child = Reaped(
        cg.command(&["sh", "-c", "echo $$ \"$1\" \"$A\"", "sh", "two words"])
            .env("A", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim_end(), format!("{} two words 1", child.0.id()));
    assert!(child.0.wait().unwrap().success());
}

#[test]
fn without_cgroup_kill_each_process_is_killed_while_frozen() {
    let Some(tree) = tree() else { return };
    let cg = tree.containment.create("old-kernel").unwrap().unwrap();
    let mut child = spawn(&cg, &["sh", "-c", "setsid sleep 99999 & exec sleep 99999"]);
    wait_for("both sleeps", || cg.pids().unwrap().len() == 2);
    let pids = cg.pids().unwrap();
    cg.kill_each().unwrap();
    child.0.wait().unwrap();
    assert!(cg.wait_empty(DEADLINE));
    wait_for("every process gone", || {
        pids.iter().all(|p| !is_running(*p))
    });
}
