//! Whole screens as a person sees them, compared with checked-in snapshots
//! (`tests/snapshots/*.txt`, volatile parts masked, see `screen::mask`): the overview, a
//! component's window and the actions pane after `help`, at 80x24 and at 200x50, taken with
//! `capture-pane` from a real tmux client attached to the console; and the overview of a
//! 100-component fleet, folded into the System Health table. A change in what the operator
//! sees fails here; when it is intended, `UPDATE_SNAPSHOTS=1 cargo test --test screens` writes the
//! new screens, to be read before they are committed.

mod common;
#[path = "common/screen.rs"]
mod screen;

use screen::{Screen, assert_snapshot};

/// Three components that run, and one that ran once and exited (stopped: not healthy).
const FLEET: &str = r#"
[[component]]
name = "alpha"
command = ["sleep", "1000"]

[[component]]
name = "beta"
command = ["sleep", "1000"]

[[component]]
name = "gamma"
command = ["sleep", "1000"]

[[component]]
name = "once"
command = ["true"]
restart = "temporary"
"#;

fn console(width: u16, height: u16) -> Screen {
    let s = Screen::start(FLEET, &["alpha", "beta", "gamma"], width, height);
    s.core
        .wait_component("once", "exited", screen::DEADLINE, |c| {
            c.state == hms::model::RunState::Exited
        });
    s.attach();
    s
}

fn screens_at(width: u16, height: u16) {
    let s = console(width, height);
    let size = format!("{width}x{height}");

    // The tiles' CPU trend appears with the first samples.
    let overview = s.settled(&[
        "alpha",
        "System Health",
        "System Actions",
        "components:",
        "cpu #",
    ]);
    assert_snapshot(&format!("overview_{size}"), &overview);
    // Each title once: in the pane border, not again inside the pane.
    for title in ["System Health", "System Actions", "─ alpha "] {
        assert_eq!(
            overview.matches(title).count(),
            1,
            "{title} once:\n{overview}"
        );
    }
    // The component that exited is not shown healthy.
    let once = overview
        .lines()
        .find(|l| l.contains(" once ") && l.contains("exited"))
        .unwrap_or_else(|| panic!("a row for 'once':\n{overview}"));
    assert!(
        once.contains("unknown") && !once.contains("healthy"),
        "{once}"
    );

    // A component's window is built when first opened.
    s.hms_ok(&["layout", "twobytwo", "alpha"]);
    s.select("alpha");
    let window = s.settled(&[
        "Component Metrics",
        "Component Logs",
        "Health Status",
        "Actions",
    ]);
    assert_snapshot(&format!("component_{size}"), &window);
    for title in ["Component Metrics", "Component Logs", "Health Status"] {
        assert_eq!(window.matches(title).count(), 1, "{title} once:\n{window}");
    }

    s.select("overview");
    let actions = s.pane("overview", "System Actions");
    s.shows(&["components:"]);
    // Under a heavy load a key sent while the pane redraws may be lost: type again (at most
    // three times) until the help shows.
    for attempt in 1..=3 {
        s.type_in(&actions, "help", true);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut shown = false;
        while std::time::Instant::now() < deadline {
            if s.capture().contains("help COMMAND") {
                shown = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        if shown {
            break;
        }
        assert!(attempt < 3, "the help never showed:\n{}", s.capture());
    }
    // The newest output shows: the end of the help, with the scroll keys.
    let help = s.settled(&["help COMMAND", "PgUp/PgDn"]);
    assert_snapshot(&format!("actions_help_{size}"), &help);
}

/// A hundred components: the overview folds into the System Health table, worst first.
fn hundred_at(width: u16, height: u16) {
    let mut fleet = String::new();
    for i in 1..=99 {
        fleet.push_str(&format!(
            "[[component]]\nname = \"svc{i:02}\"\ncommand = [\"sleep\", \"1000\"]\n\n"
        ));
    }
    // One that fails, to be shown first.
    fleet.push_str("[[component]]\nname = \"zz-broken\"\ncommand = [\"sh\", \"-c\", \"exit 3\"]\nrestart = \"temporary\"\n");
    let s = Screen::start(&fleet, &["svc01", "svc99"], width, height);
    s.core
        .wait_component("zz-broken", "exited", screen::DEADLINE, |c| {
            c.state == hms::model::RunState::Exited
        });
    s.attach();
    let windows = s.inner.run(&["list-windows", "-F", "#{window_name}"]);
    assert_eq!(windows.trim(), "overview", "no component window built");
    let panes = s
        .inner
        .run(&["list-panes", "-t", "=hms:overview", "-F", "#{pane_title}"]);
    assert_eq!(
        panes.lines().collect::<Vec<_>>(),
        ["System Health", "System Actions"],
        "two panes, whatever the fleet's size"
    );
    let overview = s.settled(&["zz-broken", "more", "components:"]);
    let first_row = overview
        .lines()
        .find(|l| l.contains("svc") || l.contains("zz-broken"))
        .unwrap_or_default()
        .to_string();
    assert!(first_row.contains("zz-broken"), "worst first:\n{overview}");
    // The table's height depends on whether the watcher has re-laid the window out for the
    // attached client yet (one row more or less); its rows, masked, are all alike: compare
    // them as one.
    let mut rows: Vec<&str> = Vec::new();
    for line in overview.lines() {
        if rows.last() != Some(&line) {
            rows.push(line);
        }
    }
    assert_snapshot(&format!("overview_100_{width}x{height}"), &rows.join("\n"));
}

#[test]
fn a_hundred_components_fold_into_the_health_table_at_80x24() {
    hundred_at(80, 24);
}

#[test]
fn a_hundred_components_fold_into_the_health_table_at_200x50() {
    hundred_at(200, 50);
}

#[test]
fn screens_at_80x24_match_their_snapshots() {
    screens_at(80, 24);
}

#[test]
fn screens_at_200x50_match_their_snapshots() {
    screens_at(200, 50);
}
