//! The guide's service (examples/guide_service.rs, written from §2.1, §2.2, §3.1 and §4.1) end to
//! end: a real core on a private socket and data directory, the example's real binary, a private
//! tmux server. Its panels fill, it is listed as `guide-service`, it answers the operator's
//! `clear-cache`, its local healing is not repeated by the core, and the operator's `stop` makes
//! it exit 0 within 5 s, leaving no pane or process behind. No pane runs the example's binary.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, Core, alive, wait_for};
use hms::model::RunState;

const ID: &str = "guide-service";
const SESSION: &str = "hms-guide-service";

/// A tmux server of this test's own (`tmux -L NAME`); only it is killed, never the user's.
struct PrivateTmux {
    name: String,
}

impl PrivateTmux {
    fn new() -> PrivateTmux {
        PrivateTmux {
            name: format!("hms-gs-{}", std::process::id()),
        }
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.name])
            .args(args)
            .output()
            .expect("run tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for PrivateTmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.name, "kill-server"])
            .output();
        // The server ends by itself when the service closes the only session, so its socket
        // path is known from tmux's rule rather than asked for.
        let dir = std::env::var_os("TMUX_TMPDIR").unwrap_or_else(|| "/tmp".into());
        let uid = nix::unistd::getuid();
        let _ = std::fs::remove_file(Path::new(&dir).join(format!("tmux-{uid}")).join(&self.name));
    }
}

/// The example's process; killed if the test ends early.
struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The example as cargo builds it: `target/<profile>/examples/guide_service`, beside the
/// `hms-console` this test runs.
fn example() -> PathBuf {
    let path = Path::new(BIN)
        .parent()
        .expect("hms-console lives in a directory")
        .join("examples/guide_service");
    assert!(
        path.exists(),
        "{} is not built: `cargo test` builds examples; alone, run `cargo build --example guide_service` first",
        path.display()
    );
    path
}

/// The pane of the view titled `title`, and its process id.
fn pane(panes: &[(String, u32, String)], title: &str) -> String {
    panes
        .iter()
        .find(|(_, _, t)| t == title)
        .map(|(id, _, _)| id.clone())
        .unwrap_or_else(|| panic!("no pane titled {title}: {panes:?}"))
}

#[test]
fn the_guide_service_shows_its_panels_answers_the_operator_and_stops_cleanly() {
    let core = Core::start("[[component]]\nname = \"db\"\ncommand = [\"sleep\", \"1000\"]\n");
    let tmux = PrivateTmux::new();
    let example = example();
    let log = std::fs::File::create(core.dir.path().join("guide_service.log")).unwrap();
    let mut service = Service(
        Command::new(&example)
            .env("HMS_SOCKET", &core.socket)
            .env("HMS_DATA_DIR", &core.data)
            .env("HMS_TMUX_SOCKET", &tmux.name)
            // The panel program must be found without help, beside examples/.
            .env_remove("HMS_CONSOLE_BIN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the example"),
    );

    // It registers and is listed as guide-service.
    wait_for("guide-service in status", Duration::from_secs(30), || {
        core.status()
            .into_iter()
            .find(|c| c.name == ID && c.state == RunState::Running)
    });
    let listed = core.cli_ok(&["status"]);
    assert!(listed.contains(ID), "{listed}");

    // Its view: the guide's four panels (the actions one with the input pane under it).
    let panes = wait_for("the view's five panes", Duration::from_secs(30), || {
        let out = tmux.run(&[
            "list-panes",
            "-t",
            &format!("={SESSION}:{ID}"),
            "-F",
            "#{pane_id}\t#{pane_pid}\t#{pane_title}",
        ]);
        let panes: Vec<(String, u32, String)> = out
            .lines()
            .filter_map(|l| {
                let mut f = l.splitn(3, '\t');
                Some((
                    f.next()?.to_string(),
                    f.next()?.parse().ok()?,
                    f.next()?.to_string(),
                ))
            })
            .collect();
        (panes.len() == 5).then_some(panes)
    });
    // Every pane runs the slim panel program beside hms-console (cargo builds it with the tests;
    // exec'd by the pane's shell), never the example.
    let console = std::fs::canonicalize(BIN)
        .unwrap()
        .with_file_name("hms-panel");
    for (id, pid, title) in &panes {
        let exe = wait_for(
            &format!("{title} running its panel"),
            Duration::from_secs(10),
            || {
                std::fs::read_link(format!("/proc/{pid}/exe"))
                    .ok()
                    // Until the pane's shell has exec'd its command.
                    .filter(|exe| {
                        !["sh", "dash", "bash", "zsh"]
                            .iter()
                            .any(|shell| exe.file_name() == Some(shell.as_ref()))
                    })
            },
        );
        assert_eq!(exe, console, "pane {id} ({title})");
    }
    let text = |title: &str| tmux.run(&["capture-pane", "-p", "-t", &pane(&panes, title)]);
    let shows = |title: &str, what: &str| {
        wait_for(
            &format!("'{what}' in {title}"),
            Duration::from_secs(20),
            || text(title).contains(what).then_some(()),
        )
    };
    shows("Component Metrics", "Cache:");
    shows("Component Logs", "started");
    shows("Health Status", "Healthy");
    shows("Actions", "help: all commands");
    shows("Input", ">");

    // §7 through the input pane: the cache fails, is healed locally, and the report says so; the
    // core records it and does not heal again.
    tmux.run(&["send-keys", "-t", &pane(&panes, "Input"), "fail", "Enter"]);
    shows("Component Logs", "Applied: recover: clear_cache");
    let issue = wait_for("the reported issue", Duration::from_secs(10), || {
        core.issues(Some(ID))
            .into_iter()
            .find(|i| i.issue_type == "cache_corrupt")
    });
    assert_eq!(
        issue.healed_locally(),
        Some("recover: clear_cache"),
        "{issue:?}"
    );
    let logs = core.log_texts(ID, 50);
    assert!(
        logs.iter().any(|l| l.contains("already healed locally")),
        "{logs:?}"
    );
    assert!(
        !logs.iter().any(|l| l.contains("sent ")),
        "the core sent nothing after a local healing: {logs:?}"
    );

    // The operator's clear-cache reaches the handler's ClearCache arm.
    let answer = core.cli_ok(&["action", &format!("clear-cache {ID}")]);
    assert!(answer.contains("sent clear_cache"), "{answer}");
    wait_for("clear_cache done", Duration::from_secs(10), || {
        core.log_texts(ID, 50)
            .iter()
            .any(|l| l.contains("clear_cache: done"))
            .then_some(())
    });
    shows("Component Logs", "cache cleared");

    // The operator's stop delivers Shutdown: the service exits 0 within 5 s.
    let stopped_at = Instant::now();
    let answer = core.cli_ok(&["stop", ID]);
    assert!(answer.contains("sent shutdown"), "{answer}");
    let status = wait_for("the service to exit", Duration::from_secs(5), || {
        service.0.try_wait().expect("wait for the service")
    });
    assert!(status.success(), "{status:?}");
    assert!(stopped_at.elapsed() < Duration::from_secs(5));

    // Nothing left behind: no session, no pane process; the core shows it stopped.
    let sessions = tmux.run(&["list-sessions", "-F", "#{session_name}"]);
    assert!(!sessions.contains(SESSION), "{sessions}");
    for (_, pid, title) in &panes {
        wait_for(
            &format!("the {title} pane's process to end"),
            Duration::from_secs(5),
            || (!alive(*pid)).then_some(()),
        );
    }
    core.wait_component(ID, "stopped", Duration::from_secs(5), |c| {
        c.state == RunState::Stopped
    });
}
