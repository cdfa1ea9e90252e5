//! The core daemon end to end: real processes, the real socket, the real CLI.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::{Core, alive, group_members, wait_for};
use hms::model::RunState;
use hms::protocol::{Event, Request, Response, Topic};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const SECS10: Duration = Duration::from_secs(10);

fn kill9(pid: u32) {
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).expect("kill");
}

#[test]
fn crash_restarts_with_a_new_pid_at_once() {
    let core = Core::start(
        r#"
[[component]]
name = "sleeper"
command = ["sleep", "1000"]
min_uptime = "100ms"
"#,
    );
    let first = core.wait_component("sleeper", "running", SECS10, |c| {
        c.state == RunState::Running
    });
    // Past min_uptime, so the crash counts as one after a stable run: no backoff.
    std::thread::sleep(Duration::from_millis(150));
    let old = first.pid.unwrap();
    kill9(old);
    let again = core.wait_component("sleeper", "a new pid", SECS10, |c| {
        c.state == RunState::Running && c.pid.is_some_and(|p| p != old)
    });
    assert_eq!(again.restarts, 1);
    assert_eq!(again.last_exit.unwrap().signal, Some(9));
    assert!(alive(again.pid.unwrap()));
}

#[test]
fn a_randomly_crashing_script_keeps_being_restarted() {
    let core = Core::start(
        r#"
[[component]]
name = "flaky"
command = 'sleep 0.$(od -An -N1 -tu1 /dev/urandom | tr -d " "); exit 7'
min_uptime = "10ms"
intensity = { max_restarts = 1000, window = "1s" }
"#,
    );
    let c = core.wait_component("flaky", "three restarts", SECS10, |c| c.restarts >= 3);
    assert_eq!(c.last_exit.unwrap().code, Some(7));
}

#[test]
fn stop_leaves_no_process_of_the_group_alive() {
    let core = Core::start(
        r#"
[[component]]
name = "family"
command = "sleep 1000 & sleep 1000 & wait"
stop_grace = "5s"
"#,
    );
    let c = core.wait_component("family", "running with two grandchildren", SECS10, |c| {
        c.pid.is_some_and(|p| group_members(p).len() == 3)
    });
    let pgid = c.pid.unwrap();
    let out = core.cli_ok(&["stop", "family"]);
    assert!(out.contains("family stopped"), "{out}");
    assert_eq!(group_members(pgid), Vec::<u32>::new());
    assert_eq!(core.component("family").state, RunState::Stopped);
    // Stopped by the operator: it stays stopped.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(core.component("family").state, RunState::Stopped);
    let out = core.cli_ok(&["start", "family"]);
    assert!(out.contains("family started"), "{out}");
}

#[test]
fn a_child_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let core = Core::start(
        r#"
[[component]]
name = "stubborn"
command = "trap '' TERM; while :; do sleep 0.05; done"
stop_grace = "300ms"
"#,
    );
    let c = core.wait_component("stubborn", "running", SECS10, |c| c.pid.is_some());
    let pgid = c.pid.unwrap();
    core.cli_ok(&["stop", "stubborn"]);
    assert!(group_members(pgid).is_empty());
    assert_eq!(
        core.component("stubborn").last_exit.unwrap().signal,
        Some(9)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_stops_dependents_first_then_the_core() {
    let mut core = Core::start(
        r#"
[[component]]
name = "web"
command = ["sleep", "1000"]
depends_on = ["api"]
[[component]]
name = "db"
command = ["sleep", "1000"]
[[component]]
name = "api"
command = ["sleep", "1000"]
depends_on = ["db"]
"#,
    );
    // Started in dependency order.
    let status = core.status();
    let names: Vec<&str> = status.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["db", "api", "web"]);
    let mut watcher = core.client().await;
    watcher.subscribe(&[Topic::State], &[]).await.unwrap();
    let out = core.cli(&["down"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut stopped = Vec::new();
    while stopped.len() < 3 {
        match watcher.next_event().await.unwrap() {
            Some(Event::StateChanged {
                component,
                to: RunState::Stopped,
                ..
            }) => stopped.push(component),
            Some(_) => {}
            None => break,
        }
    }
    assert_eq!(stopped, ["web", "api", "db"]);
    assert_eq!(core.wait_exit(SECS10), Some(0));
    assert!(!core.socket.exists(), "the socket is removed on exit");
}

#[test]
fn status_json_has_every_field_a_script_needs() {
    let core = Core::start(
        r#"
[[component]]
name = "one"
command = ["sleep", "1000"]
"#,
    );
    // Running, and its process measured once (the first sample follows the start).
    core.wait_component("one", "running and measured", SECS10, |c| {
        c.state == RunState::Running && c.metrics.as_ref().is_some_and(|m| m.rss_bytes > 0)
    });
    let raw: serde_json::Value =
        serde_json::from_str(&core.cli_ok(&["status", "one", "--json"])).unwrap();
    let c = &raw[0];
    for field in [
        "name",
        "state",
        "health",
        "pid",
        "started_at",
        "restarts",
        "metrics",
        "last_exit",
        "depends_on",
        "restart",
        "healing",
    ] {
        assert!(c.get(field).is_some(), "missing {field} in {c}");
    }
    assert_eq!(c["state"], "running");
    assert_eq!(c["health"]["status"], "healthy");
    assert!(c["metrics"]["rss_bytes"].as_u64().unwrap() > 0);
    assert!(c["started_at"].as_str().unwrap().ends_with('Z'));
    // The table names the same component.
    let table = core.cli_ok(&["status"]);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.lines().nth(1).unwrap().starts_with("one "), "{table}");
    // Unknown components are an error naming the known ones.
    let out = core.cli(&["status", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("known components: one"));
}

/// Speaks the raw protocol, line by line.
struct Raw {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
}

impl Raw {
    fn connect(core: &Core) -> Raw {
        let s = UnixStream::connect(&core.socket).unwrap();
        s.set_read_timeout(Some(SECS10)).unwrap();
        Raw {
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
        }
    }
    fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }
    fn recv(&mut self) -> serde_json::Value {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    }
}

#[test]
fn malformed_and_oversized_lines_get_errors_and_the_connection_goes_on() {
    let core = Core::start("[[component]]\nname = \"a\"\ncommand = [\"sleep\", \"1000\"]\n");
    let mut raw = Raw::connect(&core);
    raw.send(b"{\"type\":\"request\",\"id\":1,\"request\":{\"op\":\"ping\"}}\n");
    assert_eq!(raw.recv()["code"], "hello_required");
    let hello = format!(
        "{{\"type\":\"hello\",\"version\":{},\"client\":\"raw\"}}\n",
        hms::protocol::PROTOCOL_VERSION
    );
    raw.send(hello.as_bytes());
    assert_eq!(raw.recv()["type"], "hello");
    raw.send(b"this is not json\n");
    assert_eq!(raw.recv()["code"], "bad_request");
    raw.send(b"{\"type\":\"request\",\"id\":7,\"request\":{\"op\":\"fly\"}}\n");
    let err = raw.recv();
    assert_eq!(err["code"], "bad_request");
    assert_eq!(err["id"], 7, "the error carries the request's id");
    let mut huge = vec![b'x'; 2 * 1024 * 1024];
    huge.push(b'\n');
    raw.send(&huge);
    assert_eq!(raw.recv()["code"], "line_too_long");
    raw.send(b"\xff\xfe\n");
    assert_eq!(raw.recv()["code"], "bad_request");
    raw.send(b"{\"type\":\"request\",\"id\":2,\"request\":{\"op\":\"ping\"}}\n");
    let pong = raw.recv();
    assert_eq!(pong["id"], 2);
    assert_eq!(pong["response"]["kind"], "pong");
    // Others are served as usual all along.
    assert_eq!(core.status().len(), 1);
}

#[test]
fn a_wrong_protocol_version_is_refused() {
    let core = Core::start("[[component]]\nname = \"a\"\ncommand = [\"sleep\", \"1000\"]\n");
    let mut raw = Raw::connect(&core);
    raw.send(b"{\"type\":\"hello\",\"version\":999,\"client\":\"raw\"}\n");
    let err = raw.recv();
    assert_eq!(err["code"], "version_mismatch");
}

#[test]
fn the_socket_is_private_and_a_peer_with_another_uid_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let core = Core::start("[[component]]\nname = \"a\"\ncommand = [\"sleep\", \"1000\"]\n");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&core.socket), 0o600);
    assert_eq!(mode(core.socket.parent().unwrap()), 0o700);
    if !nix::unistd::geteuid().is_root() {
        eprintln!("not root: cannot run a client as another user; uid check not exercised");
        return;
    }
    // Open the file modes up, so only the core's own uid check stands between `nobody` and the
    // fleet.
    std::fs::set_permissions(core.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        core.socket.parent().unwrap(),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::set_permissions(&core.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    use std::os::unix::process::CommandExt;
    let out = std::process::Command::new(common::BIN)
        .args([
            "--socket",
            core.socket.to_str().unwrap(),
            "--data-dir",
            "/tmp",
            "status",
        ])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("permission denied"), "{err}");
    // The fleet is untouched.
    assert_eq!(core.component("a").state, RunState::Running);
}

#[test]
fn a_second_core_on_a_live_socket_says_so_and_exits_non_zero() {
    let core = Core::start("[[component]]\nname = \"a\"\ncommand = [\"sleep\", \"1000\"]\n");
    let other_data = core.dir.path().join("other-data");
    let out = std::process::Command::new(common::BIN)
        .args(["--socket", core.socket.to_str().unwrap()])
        .args(["--data-dir", other_data.to_str().unwrap()])
        .args(["up", "-c", core.config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already running"), "{err}");
    assert!(err.contains(&core.pid().to_string()), "{err}");
}

/// A reader that goes away before the command writes (`hms-console logs api | head`, the reader
/// done early) ends the command quietly, as it ends `cat`: status 141, nothing on stderr (std's
/// `println!` panicked with a backtrace, `status` said "Broken pipe" and ended with 1).
#[test]
fn a_command_whose_reader_went_away_ends_quietly_with_141() {
    let core = Core::start(
        "[[component]]\nname = \"talker\"\ncommand = [\"sh\", \"-c\", \"echo hello; exec sleep 1000\"]\n",
    );
    wait_for("the component's first line", SECS10, || {
        core.log_texts("talker", 5)
            .iter()
            .any(|l| l.contains("hello"))
            .then_some(())
    });
    for args in [
        &["logs", "talker"][..],
        &["status"],
        &["status", "--json", "talker"],
        &["issues"],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = std::process::Command::new(common::BIN)
            .args(["--socket", core.socket.to_str().unwrap()])
            .args(["--data-dir", core.data.to_str().unwrap()])
            .args(args)
            .env("RUST_BACKTRACE", "1")
            .stdin(std::process::Stdio::null())
            .stdout(writer)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(141),
            "hms-console {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "hms-console {args:?} said: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Nothing of it reached the core: it still answers.
    assert_eq!(core.component("talker").state, RunState::Running);
}

#[test]
fn a_core_killed_with_sigkill_leaves_no_orphan() {
    let mut core = Core::start(
        r#"
[[component]]
name = "parent"
command = "sleep 1000 & wait"
"#,
    );
    let c = core.wait_component("parent", "running with its grandchild", SECS10, |c| {
        c.pid.is_some_and(|p| group_members(p).len() == 2)
    });
    let members = group_members(c.pid.unwrap());
    kill9(core.pid());
    core.wait_exit(SECS10);
    // The reaper notices the core is gone and kills the child and the grandchild.
    wait_for(
        "the component and its grandchild to die with the core",
        SECS10,
        || members.iter().all(|p| !alive(*p)).then_some(()),
    );
    // A new core on the same data directory removes the stale socket and starts afresh.
    assert!(
        core.socket.exists(),
        "the killed core left its socket behind"
    );
    core.spawn();
    let fresh = core.wait_component("parent", "running again", SECS10, |c| c.pid.is_some());
    assert!(!members.contains(&fresh.pid.unwrap()));
}

#[test]
fn the_next_core_sweeps_what_a_killed_core_and_its_reaper_left() {
    let mut core = Core::start(
        r#"
[[component]]
name = "parent"
command = "sleep 1000 & wait"
"#,
    );
    let c = core.wait_component("parent", "running with its grandchild", SECS10, |c| {
        c.pid.is_some_and(|p| group_members(p).len() == 2)
    });
    let members = group_members(c.pid.unwrap());
    // Kill the reaper first, then at once the core: nothing is left to clean up but the sweep.
    let reapers: Vec<u32> = common::children_of(core.pid())
        .into_iter()
        .filter(|p| {
            // The reaper `up` forks is named `hms-reaper`; one started later runs `… reaper …`.
            std::fs::read_to_string(format!("/proc/{p}/comm"))
                .is_ok_and(|c| c.trim() == "hms-reaper")
                || std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                    .is_ok_and(|c| c.contains("reaper"))
        })
        .collect();
    assert_eq!(reapers.len(), 1, "one reaper runs beside the core");
    kill(Pid::from_raw(core.pid() as i32), Signal::SIGSTOP).unwrap();
    kill9(reapers[0]);
    kill9(core.pid());
    core.wait_exit(SECS10);
    assert!(members.iter().all(|p| alive(*p)), "orphans are left behind");
    core.spawn();
    wait_for("the orphans to be swept", SECS10, || {
        members.iter().all(|p| !alive(*p)).then_some(())
    });
}

#[test]
fn restart_types_follow_otp() {
    let core = Core::start(
        r#"
[defaults]
min_uptime = "10ms"
[[component]]
name = "temp"
command = "exit 3"
restart = "temporary"
[[component]]
name = "trans-ok"
command = "exit 0"
restart = "transient"
[[component]]
name = "trans-bad"
command = "sleep 0.05; exit 3"
restart = "transient"
intensity = { max_restarts = 1000, window = "1s" }
"#,
    );
    let temp = core.wait_component("temp", "exited", SECS10, |c| c.state == RunState::Exited);
    assert_eq!(temp.restarts, 0);
    let ok = core.wait_component("trans-ok", "exited", SECS10, |c| {
        c.state == RunState::Exited
    });
    assert_eq!(ok.restarts, 0);
    core.wait_component("trans-bad", "restarted", SECS10, |c| c.restarts >= 2);
    // An issue was recorded for each abnormal exit.
    let issues = core.cli_ok(&["issues", "temp", "--json"]);
    assert!(issues.contains("\"crash\""), "{issues}");
}

#[test]
fn a_crash_loop_opens_the_breaker_instead_of_storming() {
    let core = Core::start(
        r#"
[[component]]
name = "loop"
command = "exit 1"
backoff = { initial = "10ms", max = "20ms" }
intensity = { max_restarts = 3, window = "10s" }
breaker = { cooldown = "1h" }
"#,
    );
    let c = core.wait_component("loop", "breaker open", SECS10, |c| {
        c.state == RunState::BreakerOpen
    });
    assert_eq!(
        c.restarts, 3,
        "exactly max_restarts restarts, then the breaker"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(core.component("loop").restarts, 3, "no restarts while open");
    // An operator restart closes the breaker and starts it again.
    core.cli_ok(&["restart", "loop"]);
    let after = core.component("loop");
    assert_eq!(after.healing.breaker, hms::model::BreakerState::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_kept_in_memory_and_in_a_file() {
    let core = Core::start(
        r#"
[[component]]
name = "talker"
command = "echo hello-out; echo hello-err >&2; sleep 1000"
"#,
    );
    wait_for("both lines", SECS10, || {
        let out = core.cli_ok(&["logs", "talker"]);
        (out.contains("hello-out") && out.contains("hello-err")).then_some(())
    });
    let file = core.data.join("logs/talker.log");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("out hello-out"), "{text}");
    assert!(text.contains("err hello-err"), "{text}");
    match core
        .request(Request::Logs {
            component: "talker".into(),
            lines: 1,
        })
        .await
    {
        Response::Logs { lines } => assert_eq!(lines.len(), 1),
        other => panic!("{other:?}"),
    }
}

#[test]
fn up_detach_returns_once_the_socket_answers_and_down_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("s/core.sock");
    let data = dir.path().join("d");
    let procfile = dir.path().join("Procfile");
    std::fs::write(&procfile, "web: sleep 1000\nworker: sleep 1000\n").unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(common::BIN)
            .args([
                "--socket",
                socket.to_str().unwrap(),
                "--data-dir",
                data.to_str().unwrap(),
            ])
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["up", "--procfile", procfile.to_str().unwrap(), "--detach"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 components"));
    // It answers immediately.
    let status = run(&["status"]);
    assert!(status.status.success());
    assert!(String::from_utf8_lossy(&status.stdout).contains("worker"));
    let down = run(&["down"]);
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    let after = run(&["status"]);
    assert_eq!(after.status.code(), Some(3), "no core running");
}

#[test]
fn a_missing_program_is_reported_and_retried_with_backoff() {
    let core = Core::start(
        r#"
[[component]]
name = "ghost"
command = ["/nonexistent/program"]
backoff = { initial = "10ms", max = "50ms" }
intensity = { max_restarts = 2, window = "10s" }
"#,
    );
    let c = core.wait_component("ghost", "breaker open", SECS10, |c| {
        c.state == RunState::BreakerOpen
    });
    assert!(
        c.health.message().unwrap().contains("breaker"),
        "{:?}",
        c.health
    );
    let issues = core.cli_ok(&["issues", "ghost"]);
    assert!(issues.contains("spawn_failed"), "{issues}");
}

#[test]
fn reload_applies_the_difference_and_an_invalid_config_changes_nothing() {
    // --no-watch: this test reloads by hand, so the file watcher must not race it.
    let core = Core::start_with(
        r#"
[[component]]
name = "keep"
command = ["sleep", "1000"]
[[component]]
name = "change"
command = ["sleep", "1000"]
[[component]]
name = "drop"
command = ["sleep", "1000"]
"#,
        &["--no-watch"],
    );
    let before = core.status();
    let pid = |list: &[hms::model::ComponentStatus], name: &str| {
        list.iter().find(|c| c.name == name).and_then(|c| c.pid)
    };
    wait_for("all running", SECS10, || {
        core.status().iter().all(|c| c.pid.is_some()).then_some(())
    });
    let before = if before.iter().all(|c| c.pid.is_some()) {
        before
    } else {
        core.status()
    };
    let dropped = pid(&before, "drop").unwrap();

    // An invalid edit: refused with the file and line, nothing changes.
    std::fs::write(
        &core.config,
        "[[component]]\nname = \"keep\"\ncommand = [\"sleep\", \"1000\"]\nrestart = \"sometimes\"\n",
    )
    .unwrap();
    let out = core.cli(&["reload"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("hms.toml:4"), "{err}");
    assert!(err.contains("the running one stays"), "{err}");
    let same = core.status();
    assert_eq!(same.len(), 3);
    assert_eq!(pid(&same, "drop"), Some(dropped));

    // A valid edit: one kept, one changed, one removed, one added.
    std::fs::write(
        &core.config,
        r#"
[[component]]
name = "keep"
command = ["sleep", "1000"]
[[component]]
name = "change"
command = ["sleep", "2000"]
[[component]]
name = "new"
command = ["sleep", "1000"]
"#,
    )
    .unwrap();
    let out = core.cli_ok(&["reload"]);
    assert!(
        out.contains("added: new; changed: change; removed: drop"),
        "{out}"
    );
    let after = wait_for("the new fleet running", SECS10, || {
        let s = core.status();
        (s.len() == 3 && s.iter().all(|c| c.state == RunState::Running)).then_some(s)
    });
    assert_eq!(
        pid(&after, "keep"),
        pid(&before, "keep"),
        "unchanged: not touched"
    );
    assert_ne!(
        pid(&after, "change"),
        pid(&before, "change"),
        "changed: restarted"
    );
    assert!(pid(&after, "new").is_some());
    assert!(after.iter().all(|c| c.name != "drop"));
    wait_for("the removed component's process to be gone", SECS10, || {
        (!alive(dropped)).then_some(())
    });
}

#[test]
fn an_edited_config_file_is_reloaded_by_itself() {
    let core = Core::start("[[component]]\nname = \"one\"\ncommand = [\"sleep\", \"1000\"]\n");
    core.wait_component("one", "running", SECS10, |c| c.state == RunState::Running);
    let text = "[[component]]\nname = \"one\"\ncommand = [\"sleep\", \"1000\"]\n[[component]]\nname = \"two\"\ncommand = [\"sleep\", \"1000\"]\n";
    // Write beside it and rename over it, as editors do.
    let tmp = core.config.with_extension("toml.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &core.config).unwrap();
    wait_for("the added component to run", SECS10, || {
        core.status()
            .iter()
            .any(|c| c.name == "two" && c.state == RunState::Running)
            .then_some(())
    });
    // Regression: reading the file for the reload is itself a file event; it must not start
    // another reload (that looped forever). Nothing to wait for here, so give it time to go wrong.
    std::thread::sleep(Duration::from_millis(1000));
    let reloads = core.log().matches("config reloaded").count();
    assert_eq!(reloads, 1, "{}", core.log());
}

/// The core's helper threads (the shared runtime's, the registry's writer) run at a lower
/// priority so that the supervisor's thread wins a busy CPU; nice is inherited at fork, so a
/// component, a restarted one and an exec probe must start at the core's own priority.
#[test]
fn components_and_probes_keep_the_cores_priority_while_its_helpers_run_lower() {
    use hms::core::priority::{HELPER_NICE, nice_of};
    use std::path::Path;
    let dir = tempfile::tempdir().unwrap();
    let seen = dir.path().join("probe-nice");
    let core = Core::start(&format!(
        r#"
[[component]]
name = "sleeper"
command = ["sleep", "1000"]
min_uptime = "10ms"
[component.readiness]
exec = ["sh", "-c", "read -r s < /proc/self/stat; set -- ${{s##*)}}; echo ${{17}} > {seen}"]
period = "50ms"
"#,
        seen = seen.display()
    ));
    let proc_dir = |pid: u32| Path::new("/proc").join(pid.to_string());
    let core_nice = nice_of(&proc_dir(core.pid())).expect("the core's stat");
    let first = core.wait_component("sleeper", "running", SECS10, |c| {
        c.state == RunState::Running
    });
    let old = first.pid.unwrap();
    assert_eq!(nice_of(&proc_dir(old)), Some(core_nice), "a component");
    std::thread::sleep(Duration::from_millis(50));
    kill9(old);
    let again = core.wait_component("sleeper", "restarted", SECS10, |c| {
        c.state == RunState::Running && c.pid.is_some_and(|p| p != old)
    });
    assert_eq!(
        nice_of(&proc_dir(again.pid.unwrap())),
        Some(core_nice),
        "a restarted component"
    );
    let probe: i32 = wait_for("the probe's record", SECS10, || {
        std::fs::read_to_string(&seen).ok()?.trim().parse().ok()
    });
    assert_eq!(probe, core_nice, "an exec probe");
    // And the helpers do run lower: the runtime's workers and the registry's writer (which
    // starts when the registry is first used).
    core.cli_ok(&["knowledge", "stats"]);
    let lowered = || -> Vec<String> {
        std::fs::read_dir(proc_dir(core.pid()).join("task"))
            .unwrap()
            .flatten()
            .filter(|t| nice_of(&t.path()) == Some((core_nice + HELPER_NICE).min(19)))
            .map(|t| std::fs::read_to_string(t.path().join("comm")).unwrap_or_default())
            .collect()
    };
    let seen = wait_for("the registry's writer, lowered", SECS10, || {
        let now = lowered();
        now.iter()
            .any(|c| c.starts_with("knowledge-write"))
            .then_some(now)
    });
    assert!(
        seen.iter().any(|c| c.starts_with("tokio-rt-worker")),
        "lowered threads: {seen:?}"
    );
}
