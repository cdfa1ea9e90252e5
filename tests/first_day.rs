//! Issue 13, "the console as an operator expects it": one test per thing a new user hit on the
//! first day, each against the real binary, a real core and a real tmux client attached to the
//! console at 80x24 (see `common/screen.rs`). Item 2 (titles drawn once) is checked by
//! `tests/screens.rs` on every snapshot; item 7 by the panel's own tests.

mod common;
#[path = "common/screen.rs"]
mod screen;

use common::wait_for;
use hms::model::RunState;
use screen::{DEADLINE, Screen};

/// Five components in an order that is not alphabetical; `mailer` crash-loops into an open
/// breaker.
const FIVE: &str = r#"
[[component]]
name = "web"
command = ["sleep", "1000"]

[[component]]
name = "db"
command = ["sleep", "1000"]

[[component]]
name = "cache"
command = ["sleep", "1000"]

[[component]]
name = "worker"
command = ["sleep", "1000"]

[[component]]
name = "mailer"
command = ["sh", "-c", "exit 1"]
"#;

const RUNNING: [&str; 4] = ["web", "db", "cache", "worker"];

fn console() -> Screen {
    let s = Screen::start(FIVE, &RUNNING, 80, 24);
    s.core
        .wait_component("mailer", "an open breaker", DEADLINE, |c| {
            c.state == RunState::BreakerOpen
        });
    s.attach();
    s
}

/// The rows of the System Health pane.
fn health_rows(s: &Screen) -> Vec<String> {
    let pane = s.pane("overview", "System Health");
    s.inner
        .run(&["capture-pane", "-p", "-t", &pane])
        .lines()
        .map(str::to_string)
        .collect()
}

fn kill_panel(pid: u32) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the panel");
}

/// Removes the window's pane-died hook, then kills the panel in `pane`; returns its pid.
fn unhook_and_kill_panel(s: &Screen, window: &str, pane: &str) -> u32 {
    s.inner.run(&["set-hook", "-uw", "-t", window, "pane-died"]);
    let (pid, _) = pane_pid_and_dead(s, pane);
    kill_panel(pid);
    pid
}

fn pane_pid_and_dead(s: &Screen, pane: &str) -> (u32, bool) {
    let out = s.inner.run(&[
        "display-message",
        "-p",
        "-t",
        pane,
        "#{pane_pid} #{pane_dead}",
    ]);
    let (pid, dead) = out.trim().split_once(' ').expect("pid and dead");
    (pid.parse().expect("a pid"), dead == "1")
}

#[test]
fn issue_13_item_1_readme_says_how_to_get_hms_console_on_the_path() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    assert!(
        readme.contains("cargo install --path ."),
        "README names cargo install"
    );
    assert!(
        readme.contains("target/release/hms-console"),
        "README names the binary's path for those who do not install"
    );
}

#[test]
fn issue_13_item_3_system_health_sorts_worst_first_says_how_many_more_and_scrolls() {
    let s = console();
    let rows = wait_for("the health rows", DEADLINE, || {
        let rows = health_rows(&s);
        rows.iter().any(|r| r.contains("more")).then_some(rows)
    });
    assert!(rows[0].contains("NAME"), "{rows:#?}");
    assert!(
        rows[1].contains("mailer") && rows[1].contains("breaker open"),
        "the crash-looping one first: {rows:#?}"
    );
    let hint = rows
        .iter()
        .find(|r| r.contains("more"))
        .expect("a hint row");
    assert!(
        hint.starts_with('+') && hint.contains("PgUp/PgDn"),
        "{hint}"
    );
    let pane = s.pane("overview", "System Health");
    s.inner.run(&["send-keys", "-t", &pane, "PageDown"]);
    wait_for("scrolled rows", DEADLINE, || {
        let rows = health_rows(&s);
        (rows.iter().any(|r| r.contains("above")) && rows.iter().any(|r| r.contains("worker")))
            .then_some(())
    });
}

#[test]
fn issue_13_item_5_pastes_long_and_wide_input_run_at_once_and_no_key_kills_a_pane() {
    let s = console();
    let actions = s.pane("overview", "System Actions");
    s.shows(&["components:"]);

    // 4 KB typed as keys, then Enter: answered at once (an unknown command), not 1 KiB a key.
    let long = format!("status {}", "x".repeat(4096));
    s.type_in(&actions, &long, true);
    s.shows(&["— known: web, db, cache, worker, mailer"]);

    // 1,000 wide characters: the end of the input is on screen, the start marked as cut.
    let wide = "🚀".repeat(1000);
    s.type_in(&actions, &wide, false);
    let screen = s.shows(&["> …🚀"]);
    let prompt = screen
        .lines()
        .rev()
        .find(|l| l.starts_with("> "))
        .expect("the input line");
    assert!(prompt.trim_end().ends_with('🚀'), "{prompt}");
    s.inner.run(&["send-keys", "-t", &actions, "C-u"]);

    // A multi-line paste (bracketed, as a terminal pastes): every line runs.
    let old_db = s.core.component("db").pid.expect("db runs");
    let old_cache = s.core.component("cache").pid.expect("cache runs");
    s.inner.run(&[
        "set-buffer",
        "-b",
        "hms-test",
        "restart db\nrestart cache\n",
    ]);
    s.inner
        .run(&["paste-buffer", "-p", "-d", "-b", "hms-test", "-t", &actions]);
    for (name, old) in [("db", old_db), ("cache", old_cache)] {
        s.core.wait_component(name, "a new pid", DEADLINE, |c| {
            c.state == RunState::Running && c.pid.is_some_and(|p| p != old)
        });
    }

    // Ctrl-C and Ctrl-D on an empty line: the pane stays, and says how to close it.
    let (pid, _) = pane_pid_and_dead(&s, &actions);
    s.inner.run(&["send-keys", "-t", &actions, "C-c"]);
    s.inner.run(&["send-keys", "-t", &actions, "C-d"]);
    s.shows(&["this pane stays open"]);
    assert_eq!(
        pane_pid_and_dead(&s, &actions),
        (pid, false),
        "the same live panel"
    );

    // A panel that dies anyway (killed) comes back in its pane: by the pane-died hook, or by the
    // watcher when tmux misses the panel's exit (Debian's tmux 3.3a sets SIGCHLD to SIG_DFL while
    // its utempter helper runs at the pane's close; an exit signal in that window is lost and
    // pane-died never fires).
    kill_panel(pid);
    wait_for("the pane respawned", DEADLINE, || {
        let (now, dead) = pane_pid_and_dead(&s, &actions);
        (now != pid && !dead).then_some(())
    });

    // Without the hook, the watcher alone brings it back (it follows #{pane_dead}).
    let window = s
        .inner
        .run(&["display-message", "-p", "-t", &actions, "#{window_id}"]);
    let pid = unhook_and_kill_panel(&s, window.trim(), &actions);
    wait_for("the pane respawned by the watcher", DEADLINE, || {
        let (now, dead) = pane_pid_and_dead(&s, &actions);
        (now != pid && !dead).then_some(())
    });

    // And `attach` respawns what is dead (here with neither the hook nor the watcher: the
    // watcher this test's attach started is stopped by its pid).
    let watcher: i32 = s
        .inner
        .run(&["show-options", "-qv", "-t", "=hms:", "@hms-watcher"])
        .trim()
        .parse()
        .expect("the watcher's pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(watcher),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("stop the watcher");
    wait_for("the watcher gone", DEADLINE, || {
        (!std::path::Path::new(&format!("/proc/{watcher}")).exists()
            || std::fs::read_to_string(format!("/proc/{watcher}/stat"))
                .is_ok_and(|st| st.contains(") Z ")))
        .then_some(())
    });
    let pid = unhook_and_kill_panel(&s, window.trim(), &actions);
    wait_for("the pane dead", DEADLINE, || {
        pane_pid_and_dead(&s, &actions).1.then_some(())
    });
    s.hms_ok(&["attach", "--no-attach"]);
    let (now, dead) = pane_pid_and_dead(&s, &actions);
    assert!(!dead && now != pid, "attach brought the pane back");
}

#[test]
fn issue_13_item_6_a_stopped_component_is_not_healthy_in_panels_or_status() {
    let s = console();
    s.hms_ok(&["stop", "worker"]);
    s.core.wait_component("worker", "stopped", DEADLINE, |c| {
        c.state == RunState::Stopped
    });
    let row = wait_for("worker's row says stopped", DEADLINE, || {
        health_rows(&s)
            .into_iter()
            .find(|r| r.contains("worker") && r.contains("stopped"))
    });
    assert!(row.contains("unknown") && !row.contains("healthy"), "{row}");
    let tile = s.pane("overview", "worker");
    let text = s.inner.run(&["capture-pane", "-p", "-t", &tile]);
    assert!(
        !text.contains('✅'),
        "no green tick on a stopped tile:\n{text}"
    );
    let table = s.hms_ok(&["status", "worker"]);
    let line = table.lines().nth(1).expect("a row");
    assert!(
        line.contains("unknown") && !line.contains("healthy"),
        "{table}"
    );
}

#[test]
fn issue_13_item_8_down_closes_the_console_that_attach_built() {
    let s = console();
    assert_eq!(
        s.inner
            .run(&["list-sessions", "-F", "#{session_name}"])
            .trim(),
        "hms"
    );
    let out = s.hms_ok(&["down"]);
    assert!(out.contains("closed the console session 'hms'"), "{out}");
    let listed = s.inner.try_run(&["has-session", "-t", "=hms"]);
    assert!(
        !listed.status.success(),
        "the session went away with the fleet"
    );
}

#[test]
fn issue_13_item_9_layouts_name_who_is_left_out_keep_window_places_and_focus() {
    let s = console();
    let windows = || -> Vec<(String, bool)> {
        s.inner
            .run(&[
                "list-windows",
                "-t",
                "=hms",
                "-F",
                "#{window_name} #{window_active}",
            ])
            .lines()
            .map(|l| {
                let (name, active) = l.split_once(' ').expect("name and flag");
                (name.to_string(), active == "1")
            })
            .collect()
    };
    // db's window is built when first opened.
    s.hms_ok(&["layout", "twobytwo", "db"]);
    let before = windows();
    let out = s.hms_ok(&["layout", "custom", "3x3"]);
    assert!(
        out.contains("left out") && out.contains("worker, mailer"),
        "the two without a tile are named, in fleet order: {out}"
    );
    let after = windows();
    assert_eq!(after.len(), before.len() + 1);
    assert_eq!(
        after.last().map(|w| w.0.as_str()),
        Some("custom-3x3"),
        "new goes last"
    );
    assert!(after.last().is_some_and(|w| w.1), "a new window is shown");

    let out = s.hms_ok(&["layout", "twobytwo", "db"]);
    assert!(out.contains("replaced in place"), "{out}");
    assert_eq!(windows(), after, "same order, same window shown");
}

#[test]
fn issue_13_item_10_status_fits_the_terminal_and_wide_and_json_are_complete() {
    let s = Screen::start(FIVE, &RUNNING, 80, 24);
    let narrow = s
        .hms_command()
        .env("COLUMNS", "80")
        .arg("status")
        .output()
        .expect("status");
    let narrow = String::from_utf8(narrow.stdout).expect("utf-8");
    // The table; the containment line after it is the core's, not a column.
    for line in narrow.lines().take_while(|l| !l.is_empty()) {
        assert!(
            line.chars().count() <= 80,
            "fits 80 columns: {line:?}\n{narrow}"
        );
    }
    assert!(narrow.contains("--wide"), "{narrow}");
    let wide = s
        .hms_command()
        .env("COLUMNS", "80")
        .args(["status", "--wide"])
        .output()
        .expect("status");
    let wide = String::from_utf8(wide.stdout).expect("utf-8");
    assert!(
        wide.lines().next().unwrap().ends_with("LAST ACTION"),
        "{wide}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&s.hms_ok(&["status", "--json"])).expect("json");
    let names: Vec<&str> = json
        .as_array()
        .expect("a list")
        .iter()
        .map(|c| c["name"].as_str().expect("a name"))
        .collect();
    assert_eq!(names, ["web", "db", "cache", "worker", "mailer"]);
    for key in ["healing", "last_exit", "metrics", "restart", "depends_on"] {
        assert!(json[0].get(key).is_some(), "--json has {key}");
    }
}

#[test]
fn issue_13_item_12_bad_usage_exits_2_causes_print_once_and_arguments_have_help() {
    let s = Screen::start(FIVE, &RUNNING, 80, 24);
    let out = s.hms(&["layout", "custom", "0x9"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");

    let none = std::process::Command::new(common::BIN)
        .args(["--socket", "/nonexistent/hms/core.sock", "status"])
        .output()
        .expect("status");
    assert_eq!(none.status.code(), Some(3));
    let err = String::from_utf8_lossy(&none.stderr);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");

    let help = s.hms_ok(&["status", "--help"]);
    assert!(help.contains("Only this component"), "{help}");
    assert!(help.contains("Machine-readable output"), "{help}");
    let help = s.hms_ok(&["issues", "--help"]);
    assert!(help.contains("How many of the newest issues"), "{help}");
    let help = s.hms_ok(&["restart", "--help"]);
    assert!(help.contains("The component's name"), "{help}");

    // Known components in fleet order (not alphabetical).
    s.attach();
    let out = s.hms(&["layout", "twobytwo", "nope"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("known components: web, db, cache, worker, mailer"),
        "{err}"
    );
}
