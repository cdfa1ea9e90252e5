//! Self-healing end to end (issue 3): real processes under a real core, observed through the CLI
//! and the client. Every wait polls with a deadline.

mod common;

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Core, alive, free_port, wait_for};
use hms::SupervisorClient;
use hms::component::CommandError;
use hms::model::{
    BreakerState, ComponentCapabilities, ComponentKind, HealingAction, HealingLevel, HealthStatus,
    Issue, RunState, Severity, SupervisorCommand,
};
use hms::protocol::{Request, Response};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const SECS10: Duration = Duration::from_secs(10);

fn count_lines(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |s| s.lines().count())
}

#[test]
fn a_component_that_exits_at_once_ends_with_its_breaker_open_after_a_few_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let starts = dir.path().join("starts");
    let core = Core::start(&format!(
        r#"
[[component]]
name = "doomed"
command = "echo start >> {starts}; exit 1"
backoff = {{ initial = "10ms", max = "40ms" }}
intensity = {{ max_restarts = 3, window = "10s" }}
breaker = {{ cooldown = "60s" }}
"#,
        starts = starts.display()
    ));
    let c = core.wait_component("doomed", "breaker open", SECS10, |c| {
        c.state == RunState::BreakerOpen
    });
    assert_eq!(c.healing.breaker, BreakerState::Open);
    assert_eq!(c.restarts, 3, "three restarts, then the breaker");
    assert!(c.healing.next_trial_at.is_some());
    assert_eq!(
        count_lines(&starts),
        4,
        "the first start and three restarts"
    );
    let open = core.wait_issue("doomed", "breaker_open", SECS10);
    assert!(open.severity >= Severity::Error);
    assert_eq!(open.context["cause"], "crash");
    let table = core.cli_ok(&["status"]);
    assert!(table.contains("breaker open, trial in"), "{table}");
    // Not thousands: nothing more happens while the breaker is open.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(count_lines(&starts), 4);
    assert_eq!(core.component("doomed").restarts, 3);
}

fn http_get(port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.starts_with("HTTP/1").then_some(out)
}

#[test]
fn a_frozen_http_service_is_found_by_its_liveness_probe_and_restarted() {
    let port = free_port();
    let core = Core::start(&format!(
        r#"
[[component]]
name = "web"
command = ["python3", "-m", "http.server", "--bind", "127.0.0.1", "{port}"]
min_uptime = "100ms"
[component.liveness]
http = "http://127.0.0.1:{port}/"
period = "200ms"
timeout = "150ms"
initial_delay = "1s"
failure_threshold = 3
"#
    ));
    let first = core.wait_component("web", "running", SECS10, |c| c.state == RunState::Running);
    wait_for("the server to answer", SECS10, || http_get(port));
    let old = first.pid.unwrap();
    kill(Pid::from_raw(old as i32), Signal::SIGSTOP).unwrap();
    let again = core.wait_component("web", "a new pid", SECS10, |c| {
        c.state == RunState::Running && c.pid.is_some_and(|p| p != old)
    });
    wait_for("the frozen process to be gone", SECS10, || {
        (!alive(old)).then_some(())
    });
    assert_eq!(again.healing.last_action, Some(HealingAction::Restart));
    let issue = core.wait_issue("web", "liveness_failed", SECS10);
    assert_eq!(issue.context["failures"], "3");
    wait_for("the new server to answer", SECS10, || http_get(port));
}

#[test]
fn a_log_pattern_produces_an_issue_of_its_type() {
    let core = Core::start(
        r#"
[[component]]
name = "disk"
command = "echo 'ERROR disk full on /var'; exec sleep 1000"
[[component.log_patterns]]
regex = 'ERROR disk full on (\S+)'
issue_type = "disk_full"
severity = "warning"
"#,
    );
    let issue = core.wait_issue("disk", "disk_full", SECS10);
    assert_eq!(issue.severity, Severity::Warning);
    assert_eq!(issue.context["capture"], "/var");
    assert_eq!(issue.context["line"], "ERROR disk full on /var");
    // A warning is reported, not healed: the component keeps running, healthy.
    let c = core.component("disk");
    assert_eq!(c.state, RunState::Running);
    assert_eq!(c.restarts, 0);
}

#[test]
fn with_auto_healing_off_a_crash_is_reported_and_not_restarted() {
    let core = Core::start(
        r#"
[[component]]
name = "fragile"
command = "sleep 0.1; exit 3"
auto_healing = false
"#,
    );
    let c = core.wait_component("fragile", "exited", SECS10, |c| c.state == RunState::Exited);
    assert_eq!(c.restarts, 0);
    assert_eq!(c.last_exit.unwrap().code, Some(3));
    assert!(matches!(
        c.healing.last_action,
        Some(HealingAction::NoAction { .. })
    ));
    assert!(matches!(c.health, HealthStatus::Failed(_)));
    let crash = core.wait_issue("fragile", "crash", SECS10);
    assert_eq!(crash.context["exit"], "exit 3");
}

#[test]
fn readiness_gates_the_start_of_a_dependent() {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    let core = Core::start(&format!(
        r#"
[[component]]
name = "db"
command = ["sleep", "1000"]
[component.readiness]
exec = ["test", "-e", "{ready}"]
period = "50ms"
[[component]]
name = "api"
command = ["sleep", "1000"]
depends_on = ["db"]
"#,
        ready = ready.display()
    ));
    let db = core.wait_component("db", "running", SECS10, |c| c.state == RunState::Running);
    assert_eq!(db.health, HealthStatus::Degraded("not ready".into()));
    // Were readiness ignored, api would have started in the same step as db.
    assert_eq!(core.component("api").state, RunState::Starting);
    std::fs::write(&ready, "").unwrap();
    core.wait_component("api", "running", SECS10, |c| c.state == RunState::Running);
    assert_eq!(core.component("db").health, HealthStatus::Healthy);
}

#[test]
fn a_recovery_episode_falls_through_a_useless_action_to_restart() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("marker");
    let core = Core::start(&format!(
        r#"
[[component]]
name = "worker"
command = "if [ ! -e {marker} ]; then touch {marker}; echo 'FATAL: pool exhausted'; fi; exec sleep 1000"
healing_level = "advanced"
healing_timeout = "500ms"
recovery_actions = ["clear_cache", "restart"]
[component.actions.clear_cache]
command = "echo clearing"
[[component.log_patterns]]
regex = 'FATAL: (.*)'
issue_type = "pool_exhausted"
severity = "error"
"#,
        marker = marker.display()
    ));
    core.wait_issue("worker", "pool_exhausted", SECS10);
    let healed = core.wait_component("worker", "healed by a restart", SECS10, |c| {
        c.restarts == 1 && c.state == RunState::Running && c.health.is_healthy()
    });
    assert_eq!(healed.healing.last_action, Some(HealingAction::Restart));
    let log = core.log_texts("worker", 200);
    let position = |needle: &str| {
        log.iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no '{needle}' in\n{}", log.join("\n")))
    };
    let cleared = position("[clear_cache] clearing");
    let failed = position("healing attempt clear_cache: not healthy");
    let restarted = position("healing attempt restart: healthy again");
    assert!(cleared < failed && failed < restarted, "{}", log.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linked_component_registers_reports_takes_commands_and_fails_without_heartbeats() {
    let core = Core::start("[[component]]\nname = \"anchor\"\ncommand = [\"sleep\", \"1000\"]\n");
    let client = SupervisorClient::with_socket("svc", core.socket.clone())
        .with_heartbeat(Duration::from_millis(200));
    client.connect().await.unwrap();
    client
        .register_component(
            "svc",
            ComponentCapabilities {
                can_restart: true,
                can_scale: false,
                can_failover: false,
                supported_recovery_actions: vec!["clear_cache".into(), "restart".into()],
                healing_level: HealingLevel::Advanced,
            },
        )
        .await
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    client.set_command_handler(move |command: SupervisorCommand| {
        seen2.lock().unwrap().push(command.clone());
        let _ = tx.send(command);
        Ok::<(), String>(())
    });
    client.start_command_handling().await.unwrap();
    client.report_health(HealthStatus::Healthy).await.unwrap();

    let svc = core.component("svc");
    assert_eq!(svc.kind, ComponentKind::Linked);
    assert_eq!(svc.state, RunState::Running);
    assert_eq!(svc.health, HealthStatus::Healthy);
    assert_eq!(svc.healing.level, HealingLevel::Advanced);

    // The operator's restart reaches the component's handler.
    let out = core.cli_ok(&["restart", "svc"]);
    assert!(out.contains("sent restart to svc"), "{out}");
    let got = tokio::time::timeout(SECS10, rx.recv()).await.unwrap();
    assert_eq!(got, Some(SupervisorCommand::Restart));

    // An error it reports starts a recovery episode: its first action arrives as a command.
    client
        .report_health(HealthStatus::Critical("cache corrupt".into()))
        .await
        .unwrap();
    let issue = Issue::new("svc", "cache_corrupt", Severity::Error);
    client.report_issue(&issue).await.unwrap();
    let got = tokio::time::timeout(SECS10, rx.recv()).await.unwrap();
    assert_eq!(got, Some(SupervisorCommand::ClearCache));
    client.report_health(HealthStatus::Healthy).await.unwrap();
    core.wait_component("svc", "healed by clear_cache", SECS10, |c| {
        c.healing.last_action
            == Some(HealingAction::Recover {
                name: "clear_cache".into(),
            })
            && c.health.is_healthy()
    });

    // Text panels keep the latest text.
    core.request(Request::PanelUpdate {
        component: "svc".into(),
        panel: "notes".into(),
        text: "first".into(),
        append: false,
    })
    .await;
    core.request(Request::PanelUpdate {
        component: "svc".into(),
        panel: "notes".into(),
        text: "second".into(),
        append: true,
    })
    .await;
    let text = core
        .request(Request::PanelText {
            component: "svc".into(),
            panel: "notes".into(),
        })
        .await;
    assert_eq!(
        text,
        Response::PanelText {
            text: "first\nsecond".into()
        }
    );

    // Silence: three missed heartbeats make it Failed, with an issue.
    client.stop_heartbeat();
    let failed = core.wait_component("svc", "failed", SECS10, |c| c.state == RunState::Failed);
    assert!(matches!(failed.health, HealthStatus::Failed(_)));
    core.wait_issue("svc", "heartbeat_missed", SECS10);
    // Reporting again brings it back.
    client.report_health(HealthStatus::Healthy).await.unwrap();
    assert_eq!(core.component("svc").state, RunState::Running);
    // Closing the connection: Exited.
    client.disconnect().await;
    core.wait_component("svc", "exited", SECS10, |c| c.state == RunState::Exited);
    assert_eq!(seen.lock().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_handler_set_after_handling_started_takes_effect_and_may_refuse_a_command() {
    let core = Core::start("[[component]]\nname = \"anchor\"\ncommand = [\"sleep\", \"1000\"]\n");
    let client = SupervisorClient::with_socket("svc", core.socket.clone());
    client.connect().await.unwrap();
    client
        .register_component(
            "svc",
            ComponentCapabilities {
                can_restart: true,
                can_scale: false,
                can_failover: false,
                supported_recovery_actions: vec!["restart".into()],
                healing_level: HealingLevel::Basic,
            },
        )
        .await
        .unwrap();
    client.set_command_handler(|_| Ok::<(), CommandError>(()));
    client.start_command_handling().await.unwrap();
    // The component changes its mind after handling started: the new handler answers.
    client.set_command_handler(|command| Err(CommandError::UnsupportedCommand(command)));
    client.report_health(HealthStatus::Healthy).await.unwrap();

    // The refusal comes back to the operator (issue 10: commands answer both ways).
    let out = core.cli(&["restart", "svc"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("sent restart to svc: it does not support restart (UnsupportedCommand)"),
        "{err}"
    );
    wait_for("the refusal in the component's log", SECS10, || {
        core.log_texts("svc", 50)
            .iter()
            .any(|l| l.contains("restart: failed: unsupported command restart"))
            .then_some(())
    });
    client.disconnect().await;
}

#[test]
fn a_busy_process_crosses_its_cpu_threshold_and_becomes_critical() {
    let core = Core::start(
        r#"
[[component]]
name = "spinner"
command = "while :; do :; done"
[component.thresholds]
cpu_percent = { degraded = 5.0, critical = 20.0 }
"#,
    );
    let issue = core.wait_issue("spinner", "threshold_exceeded", SECS10);
    assert_eq!(issue.context["metric"], "cpu");
    let c = core.wait_component("spinner", "critical", SECS10, |c| {
        matches!(c.health, HealthStatus::Critical(_))
    });
    // Basic level reports a threshold; it does not restart for one.
    assert_eq!(c.restarts, 0);
}

/// A line server in the manner of redis: answers `PING` with `+PONG`, anything else with `-ERR`.
const PONG_SERVER: &str = r#"
import socketserver, sys
class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            answer = b"+PONG\r\n" if line.strip() == b"PING" else b"-ERR unknown command\r\n"
            self.wfile.write(answer)
            self.wfile.flush()
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"#;

fn ping(port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"PING\r\n").ok()?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).ok()?;
    let answer = String::from_utf8_lossy(&buf[..n]).into_owned();
    answer.starts_with("+PONG").then_some(answer)
}

#[test]
fn a_stopped_tcp_server_fails_its_send_expect_probe_and_is_restarted() {
    let port = free_port();
    let script = toml::Value::String(PONG_SERVER.to_string());
    let core = Core::start(&format!(
        r#"
[[component]]
name = "cache"
command = ["python3", "-c", {script}, "{port}"]
min_uptime = "100ms"
stop_grace = "500ms"
[component.liveness]
tcp = {{ address = "127.0.0.1:{port}", send = 'PING\r\n', expect = "+PONG" }}
period = "200ms"
timeout = "150ms"
initial_delay = "1s"
failure_threshold = 3
"#
    ));
    let first = core.wait_component("cache", "running", SECS10, |c| c.state == RunState::Running);
    wait_for("the server to answer PING", SECS10, || ping(port));
    let old = first.pid.unwrap();
    // Stopped, the kernel still completes connections to it: only an answer tells.
    kill(Pid::from_raw(old as i32), Signal::SIGSTOP).unwrap();
    let stopped = std::time::Instant::now();
    let again = core.wait_component("cache", "a new pid", SECS10, |c| {
        c.state == RunState::Running && c.pid.is_some_and(|p| p != old)
    });
    // Three failed probes 200 ms apart, a 500 ms grace and the restart: well inside 5 s (a
    // connect-only probe took minutes, until the accept queue filled).
    assert!(
        stopped.elapsed() < Duration::from_secs(5),
        "restarted after {:?}",
        stopped.elapsed()
    );
    assert_eq!(again.healing.last_action, Some(HealingAction::Restart));
    let issue = core.wait_issue("cache", "liveness_failed", SECS10);
    assert_eq!(issue.context["failures"], "3");
    assert_eq!(
        issue.context["reason"],
        format!("expected \"+PONG\" from 127.0.0.1:{port} within 150ms, got nothing")
    );
    wait_for("the frozen process to be gone", SECS10, || {
        (!alive(old)).then_some(())
    });
    wait_for("the new server to answer PING", SECS10, || ping(port));
}
