//! Whole-screen tests of every panel against ratatui's `TestBackend`, and tests of `update`: keys,
//! history, scrolling, events, replies.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;

use super::app::Body;
use super::format;
use super::*;
use crate::model::*;
use crate::protocol::{Event, NoticeLevel, PanelText, Request, Response, Topic};

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000)
}

fn status(name: &str) -> ComponentStatus {
    ComponentStatus {
        name: name.into(),
        kind: ComponentKind::Process,
        state: RunState::Running,
        health: HealthStatus::Healthy,
        pid: Some(4242),
        started_at: Some(now() - Duration::from_secs(125)),
        restarts: 3,
        metrics: Some(ProcessMetrics {
            cpu_percent: 3.2,
            rss_bytes: 13_000_000,
            open_fds: 7,
        }),
        reported: None,
        last_exit: None,
        depends_on: vec![],
        restart: RestartPolicy::Permanent,
        recovery_actions: vec!["clear_cache".into(), "reconnect".into()],
        healing: HealingStatus {
            level: HealingLevel::Advanced,
            auto_healing: true,
            ..HealingStatus::default()
        },
    }
}

fn fleet() -> Vec<ComponentStatus> {
    let api = status("api");
    let mut cache = status("cache");
    cache.health = HealthStatus::Degraded("slow".into());
    cache.pid = Some(4300);
    cache.restarts = 0;
    let mut db = status("db");
    db.state = RunState::BreakerOpen;
    db.health = HealthStatus::Failed("exit 3".into());
    db.pid = None;
    db.started_at = None;
    db.restarts = 5;
    vec![api, cache, db]
}

fn log(component: &str, stream: LogStream, text: &str) -> LogLine {
    LogLine {
        component: component.into(),
        at: now(),
        stream,
        text: text.into(),
    }
}

fn key(code: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn ctrl(c: char) -> Msg {
    Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

fn typed(model: &mut Model, text: &str) {
    for c in text.chars() {
        assert!(model.update(key(KeyCode::Char(c))).is_empty());
    }
}

/// A connected panel of `kind` with the fleet loaded, sized `width` × `height`.
fn panel(kind: PanelKind, component: Option<&str>, width: u16, height: u16) -> Model {
    let mut model = Model::new(
        kind,
        component.map(str::to_string),
        None,
        None,
        Theme::default(),
    );
    model.update(Msg::Tick(now()));
    model.update(Msg::Resize { width, height });
    model.update(Msg::Connected);
    model.update(Msg::Snapshot(Ok(Response::Status {
        components: fleet(),
    })));
    model
}

/// The screen as text, one line per row, with the cells hidden behind wide symbols left out.
fn buffer_text(buffer: &Buffer) -> String {
    let width = usize::from(buffer.area.width);
    let mut rows = Vec::new();
    for row in buffer.content().chunks(width) {
        let mut text = String::new();
        let mut hidden = 0;
        for cell in row {
            if hidden == 0 {
                text.push_str(cell.symbol());
            }
            hidden = hidden.max(format::width(cell.symbol())).saturating_sub(1);
        }
        rows.push(text);
    }
    rows.join("\n")
}

fn screen(model: &Model) -> String {
    let (width, height) = model.size;
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test backend");
    terminal.draw(|f| model.view(f)).expect("draws");
    buffer_text(terminal.backend().buffer())
}

fn assert_screen(model: &Model, expected: &[&str]) {
    let actual = screen(model);
    assert_eq!(actual, expected.join("\n"), "\nactual screen:\n{actual}\n");
}

// ---------------------------------------------------------------- metrics

#[test]
fn metrics_panel_shows_values_and_sparklines() {
    let mut model = panel(PanelKind::Metrics, Some("api"), 40, 9);
    for (cpu, rss) in [(1.0, 10_000_000), (2.0, 12_000_000), (4.0, 13_000_000)] {
        model.update(Msg::Event(Event::Metrics {
            component: "api".into(),
            metrics: Box::new(ProcessMetrics {
                cpu_percent: cpu,
                rss_bytes: rss,
                open_fds: 7,
            }),
            at: now(),
        }));
    }
    let mut with_report = status("api");
    with_report.reported = Some(HealthMetrics {
        timestamp: now(),
        error_rate: 0.5,
        throughput: 120.0,
        response_time: 35.0,
        ..HealthMetrics::default()
    });
    model.update(Msg::Event(Event::Component {
        status: Box::new(with_report.clone()),
    }));
    // The same report again in another status event is not a new sample.
    model.update(Msg::Event(Event::Component {
        status: Box::new(with_report),
    }));
    assert_screen(
        &model,
        &[
            "┌ Component Metrics ────────────── api ┐",
            "│CPU              4.0 % ▇▃▅█           │",
            "│Memory        12.4 MiB █▆▇█           │",
            "│Open fds             7 ▄▄▄▄           │",
            "│Restarts             3 ▄              │",
            "│Error rate       0.5 % ▄              │",
            "│Throughput     120.0/s ▄              │",
            "│Response         35 ms ▄              │",
            "└──────────────────────────────────────┘",
        ],
    );
}

#[test]
fn metrics_panel_without_component_lists_the_fleet() {
    let model = panel(PanelKind::Metrics, None, 44, 6);
    assert_screen(
        &model,
        &[
            "┌ Component Metrics ───────────────────────┐",
            "│✅ api      3.2 %   12.4 MiB ▄            │",
            "│🟡 cache    3.2 %   12.4 MiB ▄            │",
            "│❌ db    breaker open                     │",
            "│                                          │",
            "└──────────────────────────────────────────┘",
        ],
    );
}

#[test]
fn metrics_of_other_components_are_ignored() {
    let mut model = panel(PanelKind::Metrics, Some("api"), 40, 9);
    model.update(Msg::Event(Event::Metrics {
        component: "db".into(),
        metrics: Box::new(ProcessMetrics::default()),
        at: now(),
    }));
    let Body::Metrics(state) = &model.body else {
        panic!("metrics body")
    };
    assert_eq!(
        state.samples["api"].cpu.len(),
        1,
        "seeded from the snapshot"
    );
    assert!(!state.samples.contains_key("db"));
}

// ---------------------------------------------------------------- logs

fn logs_panel(lines: usize, height: u16) -> Model {
    let mut model = panel(PanelKind::Logs, Some("api"), 40, height);
    model.update(Msg::Snapshot(Ok(Response::Logs {
        lines: (1..=lines)
            .map(|i| log("api", LogStream::Stdout, &format!("line {i}")))
            .collect(),
    })));
    model
}

fn logs_offset(model: &Model) -> usize {
    match &model.body {
        Body::Logs(state) => state.offset,
        other => panic!("not logs: {other:?}"),
    }
}

#[test]
fn logs_panel_shows_the_tail_and_follows_new_lines() {
    let mut model = logs_panel(10, 6);
    model.update(Msg::Event(Event::Log {
        line: Box::new(log(
            "api",
            LogStream::Stderr,
            "warning: \u{1b}[33mslow\u{1b}[0m",
        )),
    }));
    model.update(Msg::Event(Event::Log {
        line: Box::new(log("api", LogStream::Stdout, "ERROR: db gone")),
    }));
    model.update(Msg::Event(Event::Log {
        line: Box::new(log("db", LogStream::Stdout, "not for this panel")),
    }));
    assert_screen(
        &model,
        &[
            "┌ Component Logs ───────────────── api ┐",
            "│line 9                                │",
            "│line 10                               │",
            "│warning: slow                         │",
            "│ERROR: db gone                        │",
            "└──────────────────────────────────────┘",
        ],
    );
}

#[test]
fn logs_highlight_stderr_and_errors() {
    let mut model = logs_panel(0, 6);
    model.update(Msg::Event(Event::Log {
        line: Box::new(log("api", LogStream::Stderr, "to stderr")),
    }));
    model.update(Msg::Event(Event::Log {
        line: Box::new(log("api", LogStream::Stdout, "panic at the disco")),
    }));
    let mut terminal = Terminal::new(TestBackend::new(40, 6)).unwrap();
    terminal.draw(|f| model.view(f)).unwrap();
    let buffer = terminal.backend().buffer();
    assert_eq!(buffer[(1, 1)].fg, ratatui::style::Color::Yellow, "stderr");
    assert_eq!(buffer[(1, 2)].fg, ratatui::style::Color::Red, "error line");
}

#[test]
fn logs_scroll_with_arrows_and_pages_and_stay_put_while_scrolled() {
    // 4 rows inside the border.
    let mut model = logs_panel(20, 6);
    model.update(key(KeyCode::Up));
    model.update(key(KeyCode::Up));
    assert_eq!(logs_offset(&model), 2);
    model.update(key(KeyCode::PageUp));
    assert_eq!(logs_offset(&model), 5, "a page is the height less one");
    model.update(key(KeyCode::Down));
    assert_eq!(logs_offset(&model), 4);
    model.update(key(KeyCode::Home));
    assert_eq!(logs_offset(&model), 16, "the top, never past it");
    model.update(key(KeyCode::PageUp));
    assert_eq!(logs_offset(&model), 16);
    model.update(key(KeyCode::PageDown));
    assert_eq!(logs_offset(&model), 13);
    // New output does not move a scrolled view.
    model.update(Msg::Event(Event::Log {
        line: Box::new(log("api", LogStream::Stdout, "line 21")),
    }));
    assert_eq!(logs_offset(&model), 14);
    assert_screen(
        &model,
        &[
            "┌ Component Logs ───────────────── api ┐",
            "│line 4                                │",
            "│line 5                                │",
            "│line 6                                │",
            "│line 7                                │",
            "└──────────── ↓ 14 newer · End follows ┘",
        ],
    );
    model.update(key(KeyCode::End));
    assert_eq!(logs_offset(&model), 0);
    model.update(Msg::Event(Event::Log {
        line: Box::new(log("api", LogStream::Stdout, "line 22")),
    }));
    assert_eq!(logs_offset(&model), 0, "following again");
}

#[test]
fn logs_without_component_prefix_the_name() {
    let mut model = panel(PanelKind::Logs, None, 30, 4);
    model.update(Msg::Event(Event::Log {
        line: Box::new(log("api", LogStream::Stdout, "hello")),
    }));
    model.update(Msg::Event(Event::Log {
        line: Box::new(log("db", LogStream::System, "started")),
    }));
    assert_screen(
        &model,
        &[
            "┌ Component Logs ────────────┐",
            "│api │ hello                 │",
            "│db │ started                │",
            "└────────────────────────────┘",
        ],
    );
}

// ---------------------------------------------------------------- status

#[test]
fn status_panel_shows_health_process_and_healing() {
    let mut model = panel(PanelKind::Status, Some("db"), 44, 13);
    let mut db = fleet().remove(2);
    db.last_exit = Some(ExitInfo {
        code: Some(3),
        signal: None,
        at: now() - Duration::from_secs(12),
    });
    db.healing.breaker = BreakerState::Open;
    db.healing.next_trial_at = Some(now() + Duration::from_secs(30));
    db.healing.backoff = Some(Duration::from_millis(400));
    db.healing.last_issue = Some(Issue {
        id: "1".into(),
        component: "db".into(),
        issue_type: "crash".into(),
        severity: Severity::Error,
        detected_at: now() - Duration::from_secs(12),
        context: BTreeMap::new(),
    });
    db.healing.last_action = Some(HealingAction::Escalate {
        reason: "5 restarts in 60s".into(),
    });
    model.update(Msg::Event(Event::Component {
        status: Box::new(db),
    }));
    assert!(model.wants_tick(), "the trial countdown is on screen");
    assert_screen(
        &model,
        &[
            "┌ Health Status ─────────────────────── db ┐",
            "│❌ failed: exit 3                         │",
            "│state     breaker open                    │",
            "│pid       -                               │",
            "│uptime    -                               │",
            "│restarts  5 (last: exit 3, 12s ago)       │",
            "│backoff   next restart in 400ms           │",
            "│breaker   open, trial in 30s              │",
            "│issue     crash (error) 12s ago           │",
            "│action    escalate: 5 restarts in 60s     │",
            "│healing   advanced, automatic             │",
            "│                                          │",
            "└──────────────────────────────────────────┘",
        ],
    );
}

#[test]
fn status_panel_says_which_strategy_healing_tried_first_and_why() {
    let mut model = panel(PanelKind::Status, Some("api"), 84, 12);
    let mut api = fleet().remove(0);
    api.healing.last_action = Some(HealingAction::Recover {
        name: "clear_cache".into(),
    });
    api.healing.strategy =
        Some("knowledge: clear_cache cured db-connection-lost 7 of the last 8 times".into());
    model.update(Msg::Event(Event::Component {
        status: Box::new(api),
    }));
    let screen = screen(&model);
    assert!(
        screen.contains(
            "│strategy  knowledge: clear_cache cured db-connection-lost 7 of the last 8 times"
        ),
        "{screen}"
    );
}

#[test]
fn status_uptime_moves_with_ticks() {
    let mut model = panel(PanelKind::Status, Some("api"), 44, 8);
    assert!(model.wants_tick());
    model.update(Msg::Tick(now() + Duration::from_secs(60)));
    assert_screen(
        &model,
        &[
            "┌ Health Status ────────────────────── api ┐",
            "│✅ healthy                                │",
            "│state     running                         │",
            "│pid       4242                            │",
            "│uptime    3m 05s                          │",
            "│restarts  3                               │",
            "│breaker   closed                          │",
            "└──────────────────────────────────────────┘",
        ],
    );
}

#[test]
fn status_of_an_unknown_component_says_so() {
    let model = panel(PanelKind::Status, Some("mailer"), 40, 3);
    assert_screen(
        &model,
        &[
            "┌ Health Status ─────────────── mailer ┐",
            "│no component named 'mailer'           │",
            "└──────────────────────────────────────┘",
        ],
    );
    assert!(!model.wants_tick());
}

#[test]
fn issue_and_healing_events_update_the_status() {
    let mut model = panel(PanelKind::Status, Some("api"), 44, 13);
    let issue = Issue {
        id: "1".into(),
        component: "api".into(),
        issue_type: "oom".into(),
        severity: Severity::Critical,
        detected_at: now(),
        context: BTreeMap::new(),
    };
    model.update(Msg::Event(Event::Issue {
        issue: Box::new(issue.clone()),
    }));
    model.update(Msg::Event(Event::Healing {
        record: Box::new(RecoveryRecord {
            issue,
            strategy: "restart".into(),
            successful: true,
            action: HealingAction::Restart,
            timestamp: now(),
            duration: Duration::from_millis(5),
        }),
    }));
    let text = screen(&model);
    assert!(text.contains("issue     oom (critical) 0s ago"), "{text}");
    assert!(text.contains("action    restart"), "{text}");
}

// ---------------------------------------------------------------- system health

#[test]
fn system_health_has_one_row_per_component_and_the_latest_notices() {
    let mut model = panel(PanelKind::SystemHealth, None, 60, 8);
    model.update(Msg::Event(Event::Notice {
        level: NoticeLevel::Error,
        message: "db: breaker open after 5 restarts".into(),
        at: now(),
    }));
    assert_screen(
        &model,
        &[
            "┌ System Health ───────────────────────────────────────────┐",
            "│   NAME  STATE        HEALTH              RESTARTS PID    │",
            "│❌ db    breaker open failed: exit 3             5 -      │",
            "│🟡 cache running      degraded: slow             0 4300   │",
            "│✅ api   running      healthy                    3 4242   │",
            "│                                                          │",
            "│13:46:40 error: db: breaker open after 5 restarts         │",
            "└──────────────────────────────────────────────────────────┘",
        ],
    );
}

#[test]
fn system_health_in_ascii_without_colour() {
    let mut model = Model::new(
        PanelKind::SystemHealth,
        None,
        None,
        None,
        Theme {
            ascii: true,
            color: false,
        },
    );
    model.update(Msg::Resize {
        width: 52,
        height: 6,
    });
    model.update(Msg::Connected);
    model.update(Msg::Snapshot(Ok(Response::Status {
        components: fleet(),
    })));
    assert_screen(
        &model,
        &[
            "+ System Health -----------------------------------+",
            "|     NAME  STATE        HEALTH    RESTARTS PID    |",
            "|[xx] db    breaker open failed           5 -      |",
            "|[~~] cache running      degraded         0 4300   |",
            "|[ok] api   running      healthy          3 4242   |",
            "+--------------------------------------------------+",
        ],
    );
    let mut terminal = Terminal::new(TestBackend::new(52, 6)).unwrap();
    terminal.draw(|f| model.view(f)).unwrap();
    for cell in terminal.backend().buffer().content() {
        assert!(cell.symbol().is_ascii(), "{:?} is not ASCII", cell.symbol());
        assert_eq!(cell.fg, ratatui::style::Color::Reset, "no colour");
        assert_eq!(cell.bg, ratatui::style::Color::Reset, "no colour");
    }
}

#[test]
fn state_changed_events_update_rows() {
    let mut model = panel(PanelKind::SystemHealth, None, 60, 8);
    model.update(Msg::Event(Event::StateChanged {
        component: "api".into(),
        from: RunState::Running,
        to: RunState::Backoff,
        pid: None,
        at: now(),
    }));
    let api = model.fleet.get("api").unwrap();
    assert_eq!(api.state, RunState::Backoff);
    assert_eq!(api.pid, None);
}

// ---------------------------------------------------------------- agents

fn agent(name: &str, can: &[&str], state: AgentState) -> AgentStatus {
    AgentStatus {
        name: name.into(),
        capabilities: AgentCapabilities {
            can_process: can.iter().map(|s| s.to_string()).collect(),
            ..AgentCapabilities::default()
        },
        state,
        queued: 0,
        in_flight: 0,
        concurrency: 4,
        queue_capacity: 1024,
        done: 0,
        failed: 0,
        mean_latency: None,
        builtin: false,
    }
}

#[test]
fn agents_panel_shows_each_agents_state_load_counters_and_latency() {
    let mut model = panel(PanelKind::Agents, None, 78, 7);
    assert_eq!(
        model.sync_requests().last(),
        Some(&Request::Mac {
            request: crate::protocol::MacRequest::Agents
        })
    );
    assert_eq!(model.subscription(), (vec![Topic::Agents], vec![]));
    let mut db = agent("database-agent", &["execute-query"], AgentState::Ready);
    db.queued = 3;
    db.in_flight = 4;
    db.done = 1200;
    db.failed = 2;
    db.mean_latency = Some(Duration::from_micros(240));
    let analysis = agent(
        "analysis-agent",
        &["data-analysis"],
        AgentState::WaitingFor {
            missing: vec!["storage".into()],
        },
    );
    let cache = agent(
        "cache-agent",
        &["warm"],
        AgentState::ComponentDown {
            component_state: RunState::Backoff,
        },
    );
    model.update(Msg::Snapshot(Ok(Response::Mac {
        answer: crate::protocol::MacAnswer::Agents {
            agents: vec![db.clone()],
        },
    })));
    // Published lists replace the snapshot.
    model.update(Msg::Event(Event::Agents {
        agents: vec![analysis, cache, db],
    }));
    assert_screen(
        &model,
        &[
            "┌ Agents ────────────────────────────────────────────────────────────────────┐",
            "│   NAME           STATE                QUEUE RUN DONE   FAIL MEAN   PROCESSE│",
            "│🟡 analysis-agent waiting for: storage     0   0      0    0      - data-ana│",
            "│❌ cache-agent    component backoff        0   0      0    0      - warm    │",
            "│✅ database-agent ready                    3   4   1200    2  240µs execute-│",
            "│                                                                            │",
            "└────────────────────────────────────────────────────────────────────────────┘",
        ],
    );
}

// ---------------------------------------------------------------- component tile

#[test]
fn component_tile_is_compact() {
    let mut model = panel(PanelKind::Component, Some("cache"), 28, 8);
    model.update(Msg::Snapshot(Ok(Response::Logs {
        lines: vec![
            log("cache", LogStream::Stdout, "warming up"),
            log("cache", LogStream::Stdout, "ready on :6379"),
        ],
    })));
    model.update(Msg::Event(Event::Log {
        line: Box::new(log("cache", LogStream::Stderr, "evicted 12 keys")),
    }));
    assert_screen(
        &model,
        &[
            "┌ cache ───────────────────┐",
            "│🟡 running                │",
            "│degraded: slow            │",
            "│pid 4300  up 2m 05s       │",
            "│restarts 0                │",
            "│ready on :6379            │",
            "│evicted 12 keys           │",
            "└──────────────────────────┘",
        ],
    );
}

// ---------------------------------------------------------------- text

#[test]
fn text_panel_replaces_and_appends() {
    let mut model = Model::new(
        PanelKind::Text,
        Some("svc".into()),
        Some("Notes".into()),
        Some("notes".into()),
        Theme::default(),
    );
    model.update(Msg::Resize {
        width: 30,
        height: 5,
    });
    model.update(Msg::Connected);
    assert_eq!(
        model.sync_requests(),
        vec![
            Request::Status {
                component: Some("svc".into())
            },
            Request::PanelText {
                component: "svc".into(),
                panel: "notes".into()
            }
        ]
    );
    model.update(Msg::Snapshot(Ok(Response::PanelText {
        text: "CPU: 3%\nMemory: 12MB".into(),
    })));
    let text_event = |panel: &str, text: &str, append: bool| {
        Msg::Event(Event::PanelText(Box::new(PanelText {
            component: "svc".into(),
            panel: panel.into(),
            text: text.into(),
            append,
        })))
    };
    model.update(text_event("notes", "Errors: 0%", true));
    model.update(text_event("other", "not this panel", true));
    assert_screen(
        &model,
        &[
            "┌ Notes ──────────────── svc ┐",
            "│CPU: 3%                     │",
            "│Memory: 12MB                │",
            "│Errors: 0%                  │",
            "└────────────────────────────┘",
        ],
    );
    model.update(text_event("notes", "replaced", false));
    model.update(text_event("notes", "four", true));
    model.update(text_event("notes", "five", true));
    model.update(text_event("notes", "six", true));
    assert_screen(
        &model,
        &[
            "┌ Notes ──────────────── svc ┐",
            "│four                        │",
            "│five                        │",
            "│six                         │",
            "└────────────────────────────┘",
        ],
    );
}

// ---------------------------------------------------------------- actions

fn actions(component: Option<&str>) -> Model {
    panel(PanelKind::Actions, component, 60, 8)
}

fn actions_state(model: &Model) -> &actions::ActionsState {
    match &model.body {
        Body::Actions(state) => state,
        other => panic!("not actions: {other:?}"),
    }
}

#[test]
fn actions_panel_lists_actions_and_shows_the_input() {
    let mut model = actions(Some("api"));
    typed(&mut model, "rest");
    assert_screen(
        &model,
        &[
            "┌ Actions ──────────────────────────────────────────── api ┐",
            "│api actions: clear_cache reconnect                        │",
            "│commands: restart start stop status open logs heal        │",
            "│clear-cache config action shutdown help                   │",
            "│type a command and press Enter; 'help' lists them         │",
            "│                                                          │",
            "│> rest                                                    │",
            "└──────────────────────────────────────────────────────────┘",
        ],
    );
    let mut terminal = Terminal::new(TestBackend::new(60, 8)).unwrap();
    terminal.draw(|f| model.view(f)).unwrap();
    terminal.backend_mut().assert_cursor_position((7, 6));
}

#[test]
fn enter_sends_the_parsed_request_and_shows_the_reply() {
    let mut model = actions(None);
    typed(&mut model, "restart api");
    let effects = model.update(key(KeyCode::Enter));
    assert_eq!(
        effects,
        vec![Effect::Send {
            id: 1,
            request: Request::Restart {
                component: "api".into()
            }
        }]
    );
    assert_eq!(actions_state(&model).input, "");
    assert!(screen(&model).contains("sending…"));
    model.update(Msg::Reply {
        id: 1,
        result: Ok(Response::Done {
            message: "restarted api (pid 4243)".into(),
        }),
    });
    assert_screen(
        &model,
        &[
            "┌ Actions ─────────────────────────────────────────────────┐",
            "│components: api cache db                                  │",
            "│commands: restart start stop status open logs heal        │",
            "│clear-cache config action shutdown help                   │",
            "│> restart api                                             │",
            "│restarted api (pid 4243)                                  │",
            "│>                                                         │",
            "└──────────────────────────────────────────────────────────┘",
        ],
    );
}

#[test]
fn a_component_window_implies_the_component() {
    let mut model = actions(Some("cache"));
    typed(&mut model, "stop");
    assert_eq!(
        model.update(key(KeyCode::Enter)),
        vec![Effect::Send {
            id: 1,
            request: Request::Stop {
                component: "cache".into(),
            }
        }]
    );
}

#[test]
fn an_invalid_line_sends_nothing_and_shows_the_error() {
    let mut model = panel(PanelKind::Actions, None, 80, 8);
    typed(&mut model, "rstart api");
    assert!(model.update(key(KeyCode::Enter)).is_empty());
    let text = screen(&model);
    assert!(
        text.contains("unknown command 'rstart' — did you mean 'restart'?"),
        "{text}"
    );
    typed(&mut model, "restart apx");
    assert!(model.update(key(KeyCode::Enter)).is_empty());
    let text = screen(&model);
    assert!(
        text.contains("unknown component 'apx' — did you mean 'api'? known: api, cache, db"),
        "{text}"
    );
}

#[test]
fn a_refused_request_shows_the_cores_message() {
    let mut model = actions(None);
    typed(&mut model, "start db");
    let effects = model.update(key(KeyCode::Enter));
    assert_eq!(effects.len(), 1);
    model.update(Msg::Reply {
        id: 1,
        result: Err("db: breaker open; use restart db".into()),
    });
    assert!(screen(&model).contains("db: breaker open; use restart db"));
}

#[test]
fn help_is_answered_locally() {
    let mut model = panel(PanelKind::Actions, None, 70, 9);
    typed(&mut model, "help stop");
    assert!(model.update(key(KeyCode::Enter)).is_empty());
    assert_screen(
        &model,
        &[
            "┌ Actions ───────────────────────────────────────────────────────────┐",
            "│components: api cache db                                            │",
            "│2 more above · PgUp/PgDn scroll                                     │",
            "│stop a component; it stays stopped until started.                   │",
            "│Stops the process (SIGTERM to its group, then SIGKILL after the     │",
            "│grace period). Healing leaves a stopped component alone.            │",
            "│example: stop api                                                   │",
            "│>                                                                   │",
            "└────────────────────────────────────────────────────────────────────┘",
        ],
    );
    // The newest lines show; the head of the help is a page up, and the hint says so.
    model.update(key(KeyCode::PageUp));
    let text = screen(&model);
    assert!(text.contains("> help stop"), "{text}");
    assert!(text.contains("below · PgUp/PgDn scroll"), "{text}");
}

#[test]
fn status_reply_lists_components_and_refreshes_the_fleet() {
    let mut model = panel(PanelKind::Actions, None, 80, 8);
    typed(&mut model, "status");
    assert_eq!(
        model.update(key(KeyCode::Enter)),
        vec![Effect::Send {
            id: 1,
            request: Request::Status { component: None }
        }]
    );
    let mut api = status("api");
    api.restarts = 0;
    model.update(Msg::Reply {
        id: 1,
        result: Ok(Response::Status {
            components: vec![api],
        }),
    });
    assert_eq!(model.fleet.get("api").unwrap().restarts, 0);
    let text = screen(&model);
    assert!(
        text.contains("✅ api running · healthy · pid 4242 · up 2m 05s · restarts 0"),
        "{text}"
    );
}

#[test]
fn history_walks_back_and_forth_and_keeps_the_draft() {
    let mut model = actions(None);
    for line in ["status", "restart api", "restart api", "stop db"] {
        typed(&mut model, line);
        model.update(key(KeyCode::Enter));
    }
    assert_eq!(
        actions_state(&model).history,
        vec!["status", "restart api", "stop db"],
        "equal neighbours are kept once"
    );
    typed(&mut model, "he");
    model.update(key(KeyCode::Up));
    assert_eq!(actions_state(&model).input, "stop db");
    model.update(key(KeyCode::Up));
    model.update(key(KeyCode::Up));
    model.update(key(KeyCode::Up));
    assert_eq!(actions_state(&model).input, "status", "stops at the oldest");
    model.update(key(KeyCode::Down));
    assert_eq!(actions_state(&model).input, "restart api");
    model.update(key(KeyCode::Down));
    model.update(key(KeyCode::Down));
    assert_eq!(actions_state(&model).input, "he", "the draft comes back");
    assert_eq!(actions_state(&model).cursor, 2);
}

#[test]
fn line_editing_keys() {
    let mut model = actions(None);
    typed(&mut model, "restart db");
    model.update(key(KeyCode::Left));
    model.update(key(KeyCode::Left));
    model.update(key(KeyCode::Backspace));
    assert_eq!(actions_state(&model).input, "restartdb");
    typed(&mut model, " ");
    model.update(key(KeyCode::Home));
    model.update(key(KeyCode::Delete));
    assert_eq!(actions_state(&model).input, "estart db");
    model.update(key(KeyCode::End));
    model.update(ctrl('w'));
    assert_eq!(actions_state(&model).input, "estart ");
    model.update(ctrl('u'));
    assert_eq!(actions_state(&model).input, "");
    typed(&mut model, "x");
    model.update(key(KeyCode::Esc));
    assert_eq!(actions_state(&model).input, "");
}

#[test]
fn ctrl_c_clears_the_line_and_on_an_empty_line_says_how_to_close_instead_of_quitting() {
    let mut model = actions(None);
    typed(&mut model, "q");
    assert_eq!(actions_state(&model).input, "q");
    assert!(model.update(ctrl('c')).is_empty());
    assert_eq!(actions_state(&model).input, "");
    assert!(model.update(ctrl('c')).is_empty(), "no Quit");
    assert!(model.update(ctrl('d')).is_empty(), "no Quit");
    assert_eq!(
        actions_state(&model).outcome,
        actions::Outcome::Note(actions::CLOSE_HINT.into())
    );
}

#[test]
fn no_key_quits_any_panel() {
    for kind in PanelKind::ALL {
        let mut model = panel(kind, Some("api"), 40, 8);
        for msg in [
            key(KeyCode::Char('q')),
            ctrl('c'),
            ctrl('d'),
            key(KeyCode::Esc),
        ] {
            assert!(
                !model.update(msg).contains(&Effect::Quit),
                "{kind:?} quits on a key"
            );
        }
    }
}

// ---------------------------------------------------------------- connection

#[test]
fn unreachable_core_is_shown_and_cleared_on_reconnect() {
    let mut model = panel(PanelKind::Status, Some("api"), 40, 4);
    model.update(Msg::Disconnected {
        reason: "connection refused".into(),
    });
    assert_screen(
        &model,
        &[
            "┌ Health Status ────────────────── api ┐",
            "│✅ healthy                            │",
            "│state     running                     │",
            "└ core unreachable, retrying ──────────┘",
        ],
    );
    model.update(Msg::Connected);
    assert!(!screen(&model).contains("unreachable"));
}

#[test]
fn a_panel_that_never_connected_says_so_in_its_body() {
    let mut model = Model::new(
        PanelKind::Logs,
        Some("api".into()),
        None,
        None,
        Theme::default(),
    );
    model.update(Msg::Resize {
        width: 40,
        height: 3,
    });
    model.update(Msg::Disconnected {
        reason: "refused".into(),
    });
    assert_screen(
        &model,
        &[
            "┌ Component Logs ───────────────── api ┐",
            "│core unreachable, retrying            │",
            "└ core unreachable, retrying ──────────┘",
        ],
    );
}

#[test]
fn snapshot_errors_are_shown() {
    let mut model = Model::new(
        PanelKind::Metrics,
        Some("ghost".into()),
        None,
        None,
        Theme::default(),
    );
    model.update(Msg::Resize {
        width: 40,
        height: 3,
    });
    model.update(Msg::Connected);
    model.update(Msg::Snapshot(Err("unknown component 'ghost'".into())));
    assert_screen(
        &model,
        &[
            "┌ Component Metrics ──────────── ghost ┐",
            "│unknown component 'ghost'             │",
            "└──────────────────────────────────────┘",
        ],
    );
}

// ---------------------------------------------------------------- plans

#[test]
fn each_kind_asks_for_what_it_shows_and_subscribes_to_its_topics() {
    let plan = |kind, component: Option<&str>| {
        let model = Model::new(
            kind,
            component.map(str::to_string),
            None,
            None,
            Theme::default(),
        );
        (model.sync_requests(), model.subscription())
    };
    let api = || Some("api".to_string());
    assert_eq!(
        plan(PanelKind::Logs, Some("api")),
        (
            vec![
                Request::Status { component: api() },
                Request::Logs {
                    component: "api".into(),
                    lines: logs::SNAPSHOT_LINES
                }
            ],
            (vec![Topic::Logs], vec!["api".to_string()])
        )
    );
    assert_eq!(
        plan(PanelKind::Actions, Some("api")),
        (
            vec![Request::Status { component: None }],
            (vec![Topic::State], vec![])
        ),
        "the actions pane knows the whole fleet"
    );
    assert_eq!(
        plan(PanelKind::SystemHealth, None).1,
        (vec![Topic::State, Topic::Notices, Topic::Plans], vec![])
    );
    assert_eq!(
        plan(PanelKind::Metrics, Some("api")).1,
        (vec![Topic::State, Topic::Metrics], vec!["api".to_string()])
    );
    assert_eq!(
        plan(PanelKind::Status, Some("api")).1.0,
        vec![Topic::State, Topic::Issues, Topic::Healing]
    );
    assert_eq!(
        plan(PanelKind::Component, Some("api")).1.0,
        vec![Topic::State, Topic::Logs, Topic::Metrics]
    );
    let history = Request::History {
        component: "api".into(),
    };
    for kind in [PanelKind::Metrics, PanelKind::Status, PanelKind::Component] {
        assert!(
            plan(kind, Some("api")).0.contains(&history),
            "{kind:?} asks for the core's history"
        );
    }
    assert_eq!(plan(PanelKind::Text, Some("api")).1.0, vec![Topic::Panels]);
}

#[test]
fn only_clocks_on_screen_tick() {
    assert!(!panel(PanelKind::SystemHealth, None, 40, 5).wants_tick());
    assert!(!panel(PanelKind::Logs, Some("api"), 40, 5).wants_tick());
    assert!(!panel(PanelKind::Metrics, Some("api"), 40, 5).wants_tick());
    assert!(panel(PanelKind::Component, Some("api"), 40, 5).wants_tick());
    // A stopped component with no breaker countdown has no clock.
    assert!(!panel(PanelKind::Status, Some("db"), 40, 5).wants_tick());
}

#[test]
fn default_titles_follow_the_guide() {
    let title = |kind| {
        Model::new(kind, None, None, None, Theme::default())
            .title()
            .to_string()
    };
    assert_eq!(title(PanelKind::Metrics), "Component Metrics");
    assert_eq!(title(PanelKind::Logs), "Component Logs");
    assert_eq!(title(PanelKind::Status), "Health Status");
    assert_eq!(title(PanelKind::Actions), "Actions");
    assert_eq!(title(PanelKind::SystemHealth), "System Health");
    let given = Model::new(
        PanelKind::Metrics,
        None,
        Some("API load".into()),
        None,
        Theme::default(),
    );
    assert_eq!(given.title(), "API load");
}

// ---------------------------------------------------------------- issue 13

fn frameless(kind: PanelKind, component: Option<&str>, width: u16, height: u16) -> Model {
    let mut model = Model::new(
        kind,
        component.map(str::to_string),
        None,
        None,
        Theme::default(),
    )
    .frameless();
    model.update(Msg::Tick(now()));
    model.update(Msg::Resize { width, height });
    model.update(Msg::Connected);
    model.update(Msg::Snapshot(Ok(Response::Status {
        components: fleet(),
    })));
    model
}

#[test]
fn issue_13_item_2_a_frameless_panel_draws_no_title_and_uses_every_row() {
    let model = frameless(PanelKind::Status, Some("api"), 40, 3);
    assert_screen(
        &model,
        &[
            "✅ healthy                              ",
            "state     running                       ",
            "pid       4242                          ",
        ],
    );
    let mut model = model;
    model.update(Msg::Disconnected {
        reason: "gone".into(),
    });
    let text = screen(&model);
    assert!(
        text.lines()
            .last()
            .unwrap()
            .starts_with("core unreachable, retrying"),
        "the connection state takes the last row:\n{text}"
    );
}

#[test]
fn issue_13_item_3_system_health_is_worst_first_with_more_and_scrolls() {
    let mut model = frameless(PanelKind::SystemHealth, None, 60, 3);
    assert_screen(
        &model,
        &[
            "   NAME  STATE        HEALTH                RESTARTS PID    ",
            "❌ db    breaker open failed: exit 3               5 -      ",
            "+2 more · ↑↓ PgUp/PgDn scroll                               ",
        ],
    );
    model.update(key(KeyCode::Down));
    let text = screen(&model);
    assert!(text.contains("cache") && text.contains("1 above"), "{text}");
    model.update(key(KeyCode::End));
    let text = screen(&model);
    assert!(text.contains("api"), "the last row can be reached:\n{text}");
}

#[test]
fn issue_13_item_5_a_paste_runs_each_line_and_keeps_the_rest() {
    let mut model = frameless(PanelKind::Actions, None, 60, 8);
    let effects = model.update(Msg::Paste("restart api\r\nstop db\nsta".into()));
    let requests: Vec<&Request> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send { request, .. } => Some(request),
            Effect::Open { .. } | Effect::Quit => None,
        })
        .collect();
    assert_eq!(
        requests,
        [
            &Request::Restart {
                component: "api".into()
            },
            &Request::Stop {
                component: "db".into()
            }
        ]
    );
    assert_eq!(actions_state(&model).input, "sta");
    // Both lines stay on screen, as in a terminal.
    let text = screen(&model);
    assert!(
        text.contains("> restart api") && text.contains("> stop db"),
        "{text}"
    );
}

#[test]
fn issue_13_item_5_wide_input_keeps_its_end_and_the_cursor_on_screen() {
    let mut model = frameless(PanelKind::Actions, None, 20, 4);
    typed(&mut model, &"🚀".repeat(100));
    let text = screen(&model);
    let prompt = text.lines().last().unwrap();
    assert!(prompt.starts_with("> …🚀"), "{prompt:?}");
    assert_eq!(format::width(prompt.trim_end()), 19, "{prompt:?}");
    let mut terminal = Terminal::new(TestBackend::new(20, 4)).unwrap();
    terminal.draw(|f| model.view(f)).unwrap();
    terminal
        .backend_mut()
        .assert_cursor_position(ratatui::layout::Position::new(19, 3));
}

#[test]
fn issue_13_item_6_stopped_is_not_shown_healthy() {
    let mut model = frameless(PanelKind::Component, Some("api"), 30, 4);
    let mut stopped = status("api");
    stopped.state = RunState::Stopped;
    stopped.pid = None;
    model.update(Msg::Event(Event::Component {
        status: Box::new(stopped),
    }));
    let text = screen(&model);
    assert!(text.starts_with("⚪ stopped"), "{text}");
    assert!(!text.contains('✅'), "{text}");
}

#[test]
fn issue_13_item_7_no_stale_figures_without_a_process() {
    // db's breaker is open: the last sample must not be shown as if it were now.
    let model = frameless(PanelKind::Metrics, Some("db"), 50, 6);
    let text = screen(&model);
    assert!(!text.contains("12.4 MiB"), "{text}");
    assert!(!text.contains("3.2 %"), "{text}");
    let charts = frameless(PanelKind::Metrics, Some("db"), 60, 20);
    let text = screen(&charts);
    assert!(text.starts_with("no process (breaker open)"), "{text}");
    assert!(!text.contains("12.4 MiB"), "{text}");
}

#[test]
fn issue_13_pictures_metrics_charts_fill_the_pane_with_axes_and_units() {
    let mut model = frameless(PanelKind::Metrics, Some("api"), 60, 24);
    let history = crate::protocol::ComponentHistory {
        component: "api".into(),
        samples: (0..30)
            .map(|n| crate::protocol::HistorySample {
                at: now() - Duration::from_secs(120 - n * 4),
                metrics: Some(ProcessMetrics {
                    cpu_percent: n as f64,
                    rss_bytes: 10_000_000,
                    open_fds: 7,
                }),
                restarts: 3,
                response_ms: None,
            })
            .collect(),
        timeline: vec![],
    };
    model.update(Msg::Snapshot(Ok(Response::History { history })));
    let text = screen(&model);
    for needle in ["CPU", "Memory", "Restarts", "now", "-2m 00s", "50%", "0"] {
        assert!(text.contains(needle), "{needle} in:\n{text}");
    }
    assert!(
        text.chars().any(|c| ('\u{2800}'..='\u{28FF}').contains(&c)),
        "a plotted line:\n{text}"
    );
    assert_eq!(text.lines().count(), 24);
}

#[test]
fn issue_13_pictures_health_status_shows_a_timeline() {
    let mut model = frameless(PanelKind::Status, Some("api"), 60, 16);
    let issue = Issue {
        detected_at: now() - Duration::from_secs(30),
        ..Issue::new("api", "crash", Severity::Error)
    };
    model.update(Msg::Event(Event::Issue {
        issue: Box::new(issue.clone()),
    }));
    model.update(Msg::Event(Event::Healing {
        record: Box::new(RecoveryRecord {
            issue,
            strategy: "restart".into(),
            successful: true,
            action: HealingAction::Restart,
            timestamp: now() - Duration::from_secs(29),
            duration: Duration::from_millis(20),
        }),
    }));
    let text = screen(&model);
    let strip = text
        .lines()
        .find(|l| l.starts_with("timeline"))
        .expect("a strip");
    assert!(strip.contains('!') || strip.contains('+'), "{strip}");
    assert!(text.contains("crash (error)"), "{text}");
    assert!(text.contains("restart worked in 20ms"), "{text}");
}

#[test]
fn issue_13_item_7_a_restarted_process_is_not_called_missing_before_its_first_sample() {
    let mut model = frameless(PanelKind::Metrics, Some("api"), 50, 6);
    let mut gone = status("api");
    gone.state = RunState::Backoff;
    gone.pid = None;
    model.update(Msg::Event(Event::Component {
        status: Box::new(gone),
    }));
    assert!(screen(&model).contains("no process (backoff)"));
    model.update(Msg::Event(Event::Component {
        status: Box::new(status("api")),
    }));
    let text = screen(&model);
    assert!(text.contains("first sample soon (running)"), "{text}");
    assert!(!text.contains("3.2 %"), "no stale figure:\n{text}");
}

#[test]
fn system_health_shows_a_running_recovery_plan_and_its_step_until_it_ends() {
    use crate::model::{
        PlanState, PlanStatus, PlanStep, RecoveryStep, RecoveryStrategy, StepState,
    };
    let mut model = panel(PanelKind::SystemHealth, None, 70, 9);
    let step = |step: RecoveryStep, state: StepState| PlanStep {
        step,
        state,
        duration: None,
        detail: None,
    };
    let mut plan = PlanStatus {
        id: 3,
        component: "db".into(),
        issue_type: "crash".into(),
        issue_id: "i".into(),
        strategy: RecoveryStrategy::RestForOne,
        state: PlanState::Running,
        affected: vec!["db".into(), "api".into()],
        steps: vec![
            step(
                RecoveryStep::ComponentAction {
                    component: "db".into(),
                    action: SupervisorCommand::Restart,
                },
                StepState::Done,
            ),
            step(
                RecoveryStep::WaitForHealth {
                    component: "db".into(),
                    timeout: std::time::Duration::from_secs(30),
                },
                StepState::Running,
            ),
            step(
                RecoveryStep::ComponentAction {
                    component: "api".into(),
                    action: SupervisorCommand::Restart,
                },
                StepState::Pending,
            ),
        ],
        joined: vec![],
        started_at: now(),
        duration: std::time::Duration::ZERO,
        reason: None,
    };
    model.update(Msg::Event(Event::Plan {
        plan: Box::new(plan.clone()),
    }));
    let shown = screen(&model);
    assert!(
        shown.contains("plan #3 db crash (rest_for_one): step 2/3 wait for db to be healthy"),
        "{shown}"
    );
    plan.state = PlanState::Done;
    model.update(Msg::Event(Event::Plan {
        plan: Box::new(plan),
    }));
    assert!(!screen(&model).contains("plan #3"), "{}", screen(&model));
}

#[test]
fn open_in_the_actions_pane_asks_the_runtime_to_open_the_window_and_shows_the_answer() {
    let mut model = panel(PanelKind::Actions, None, 70, 12);
    typed(&mut model, "open db");
    let effects = model.update(key(KeyCode::Enter));
    let [
        Effect::Open {
            id: Some(id),
            component,
            fleet,
        },
    ] = effects.as_slice()
    else {
        panic!("one open: {effects:?}")
    };
    assert_eq!(component, "db");
    assert_eq!(fleet, &["api", "cache", "db"]);
    model.update(Msg::Reply {
        id: *id,
        result: Ok(Response::Done {
            message: "window 'db' built and shown".into(),
        }),
    });
    let text = screen(&model);
    assert!(text.contains("window 'db' built and shown"), "{text}");

    // An unknown name opens nothing and names the nearest.
    typed(&mut model, "open dbb");
    assert!(model.update(key(KeyCode::Enter)).is_empty());
    let text = screen(&model);
    assert!(text.contains("did you mean 'db'?"), "{text}");
}

#[test]
fn enter_on_a_tile_opens_its_component_window() {
    let mut model = panel(PanelKind::Component, Some("cache"), 30, 8);
    assert_eq!(
        model.update(key(KeyCode::Enter)),
        [Effect::Open {
            id: None,
            component: "cache".into(),
            fleet: vec!["api".into(), "cache".into(), "db".into()],
        }]
    );
    assert!(model.update(key(KeyCode::Char('x'))).is_empty());
}
