//! `TerminalInterface` (guide §3) end to end: a linked component builds its own tmux view on a
//! private tmux server, writes text into its panels, and receives what the operator types.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{BIN, Core, wait_for};
use hms::tmux::{Tmux, TmuxDriver};
use hms::{TerminalInterface, TerminalLayout, TerminalMode};

struct PrivateTmux {
    name: String,
}

impl PrivateTmux {
    fn new(tag: &str) -> PrivateTmux {
        PrivateTmux {
            name: format!("hms-term-{}-{tag}", std::process::id()),
        }
    }
    fn tmux(&self) -> Tmux {
        Tmux::with_socket(&self.name).config_file("/dev/null")
    }
    fn run(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("tmux")
            .args(["-L", &self.name])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for PrivateTmux {
    fn drop(&mut self) {
        let path = self.run(&["display", "-p", "#{socket_path}"]);
        let _ = std::process::Command::new("tmux")
            .args(["-L", &self.name, "kill-server"])
            .output();
        let _ = std::fs::remove_file(path.trim());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linked_component_builds_its_view_writes_text_and_reads_input() {
    let core = Core::start("[[component]]\nname = \"db\"\ncommand = [\"sleep\", \"1000\"]\n");
    let tmux = PrivateTmux::new("view");
    let terminal = TerminalInterface::new("svc", TerminalLayout::TwoByTwo, TerminalMode::Observe)
        .with_socket(&core.socket, &core.data)
        .with_tmux(tmux.tmux())
        .with_program(BIN);
    terminal.define_panel("metrics", 0, 0, "Component Metrics");
    terminal.define_panel("logs", 0, 1, "Component Logs");
    terminal.define_panel("status", 1, 0, "Health Status");
    terminal.define_panel("actions", 1, 1, "Actions");
    let typed = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = typed.clone();
    terminal.set_input_handler(move |line| seen.lock().unwrap().push(line));
    terminal.initialize().await.expect("initialize");
    terminal
        .start_input_handling()
        .await
        .expect("input handling");
    assert_eq!(terminal.session(), "hms-svc");

    let panes = tmux.run(&[
        "list-panes",
        "-t",
        "=hms-svc:",
        "-F",
        "#{pane_id} #{pane_title}",
    ]);
    // The guide's four panels; the actions cell holds its text and, under it, the input pane.
    assert_eq!(panes.lines().count(), 5, "{panes}");
    let pane = |title: &str| {
        panes
            .lines()
            .find(|l| l.ends_with(title))
            .and_then(|l| l.split(' ').next())
            .unwrap_or_else(|| panic!("no pane titled {title}: {panes}"))
            .to_string()
    };
    let metrics = pane("Component Metrics");
    let logs = pane("Component Logs");
    let actions = pane("Actions");
    let input = pane("Input");

    terminal.update_panel("metrics", "CPU: 3%\nMemory: 41MB\nErrors: 0%");
    terminal.append_to_panel("logs", "connected to db");
    terminal.append_to_panel("logs", "serving requests");
    terminal.update_panel("actions", "restart\nstatus\nhelp");
    wait_for(
        "the metrics text in its pane",
        Duration::from_secs(10),
        || {
            tmux.run(&["capture-pane", "-p", "-t", &metrics])
                .contains("Memory: 41MB")
                .then_some(())
        },
    );
    wait_for(
        "both log lines in their pane",
        Duration::from_secs(10),
        || {
            let text = tmux.run(&["capture-pane", "-p", "-t", &logs]);
            (text.contains("connected to db") && text.contains("serving requests")).then_some(())
        },
    );

    wait_for(
        "the actions text in its pane",
        Duration::from_secs(10),
        || {
            tmux.run(&["capture-pane", "-p", "-t", &actions])
                .contains("status")
                .then_some(())
        },
    );

    // What the operator types reaches the component's handler as typed.
    wait_for(
        "the input pane to be ready",
        Duration::from_secs(10),
        || {
            tmux.run(&["capture-pane", "-p", "-t", &input])
                .contains('>')
                .then_some(())
        },
    );
    tmux.run(&["send-keys", "-t", &input, "restart please", "Enter"]);
    wait_for(
        "the typed line at the handler",
        Duration::from_secs(10),
        || (typed.lock().unwrap().as_slice() == ["restart please"]).then_some(()),
    );

    // The library's driver sees the same session.
    let windows = tmux.tmux().list_windows("hms-svc").await.unwrap();
    assert_eq!(windows.len(), 1, "only the view's window: {windows:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_input_handler_set_after_input_handling_started_receives_the_lines() {
    let core = Core::start("[[component]]\nname = \"db\"\ncommand = [\"sleep\", \"1000\"]\n");
    let terminal = TerminalInterface::new("late", TerminalLayout::TwoByTwo, TerminalMode::Control)
        .with_socket(&core.socket, &core.data);
    terminal
        .start_input_handling()
        .await
        .expect("input handling");
    let typed = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = typed.clone();
    terminal.set_input_handler(move |line| seen.lock().unwrap().push(line));
    let mut client = core.client().await;
    client
        .panel_input("late", "actions", "status")
        .await
        .expect("the core passes the line on");
    wait_for(
        "the line at the handler set late",
        Duration::from_secs(10),
        || (typed.lock().unwrap().as_slice() == ["status"]).then_some(()),
    );
}
