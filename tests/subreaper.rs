//! The fallback without cgroups: the core as a child subreaper adopts what its children orphan
//! (src/core/cgroup.rs). Its own test binary, because being a subreaper changes the whole process:
//! other tests' orphans would come to it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hms::core::cgroup::{adopted_orphans, become_subreaper, is_running, reap_orphans};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_daemon_orphaned_by_its_parent_is_adopted_killed_and_reaped() {
    become_subreaper().expect("PR_SET_CHILD_SUBREAPER");
    // The child starts a daemon in its own session, prints its pid and exits at once.
    let mut child = Command::new("sh")
        .args(["-c", "setsid sleep 99999 >/dev/null 2>&1 & echo $!"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let daemon: u32 = line.trim().parse().unwrap();
    assert!(child.wait().unwrap().success());

    wait_for("the daemon to be adopted", || {
        adopted_orphans(&[]).contains(&daemon)
    });
    kill(Pid::from_raw(daemon as i32), Signal::SIGKILL).unwrap();
    let mut reaped = Vec::new();
    wait_for("the daemon to be reaped", || {
        reaped.extend(reap_orphans(&[]));
        reaped.contains(&daemon)
    });
    assert!(!is_running(daemon));
    assert!(!std::path::Path::new(&format!("/proc/{daemon}")).exists());
}
