//! The control protocol: newline-delimited JSON over a Unix socket.
//!
//! A connection opens with both sides sending [`ClientMessage::Hello`] / [`ServerMessage::Hello`]
//! carrying [`PROTOCOL_VERSION`]. After that the client sends requests, each with an id of its
//! choosing, and the server answers each with a response or an error carrying the same id. A
//! client that subscribes also receives [`ServerMessage::Event`]s, interleaved with responses.
//!
//! Rules that keep the core safe from its clients: no line to the core may exceed [`MAX_LINE`]
//! bytes (answers may be longer, up to [`MAX_ANSWER_LINE`]); a line that
//! is too long or not valid JSON gets an error response and the connection goes on (a too-long line
//! is skipped up to its newline, never buffered whole). Changes are additive: new variants and new
//! optional fields keep the version; anything else bumps it.
//!
//! This module only describes messages and frames lines; it does no socket handling of its own.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use crate::model::{
    ComponentCapabilities, ComponentStatus, HealingAction, HealthMetrics, HealthStatus, Issue,
    LogLine, ProcessMetrics, RecoveryRecord, RunState, SupervisorCommand,
};

/// Bumped on any change that is not purely additive.
pub const PROTOCOL_VERSION: u32 = 2;

/// The longest line the core accepts from a client, newline excluded.
pub const MAX_LINE: usize = 1024 * 1024;

/// The longest line a client accepts from the core: an answer such as the `status` of thousands of
/// components is larger than [`MAX_LINE`], and the core is trusted (same uid) where its clients
/// are not.
pub const MAX_ANSWER_LINE: usize = 256 * 1024 * 1024;

/// What a client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Must be the first message on a connection.
    Hello {
        version: u32,
        /// Who is speaking, for the core's log: `cli`, `panel:status`, a component's name …
        client: String,
    },
    Request {
        id: u64,
        request: Request,
    },
}

/// What the core sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    Hello {
        version: u32,
        /// The core's pid.
        pid: u32,
        /// Where the core keeps logs and state.
        data_dir: String,
        /// How the core contains its components (cgroups or process groups, and why).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        containment: Option<String>,
    },
    Response {
        id: u64,
        response: Response,
    },
    /// A request failed, or a line could not be read (then `id` is absent).
    Error {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        code: ErrorCode,
        message: String,
    },
    Event {
        event: Event,
    },
}

/// Machine-readable error kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The line was not a message this protocol knows.
    BadRequest,
    /// The line was longer than [`MAX_LINE`].
    LineTooLong,
    /// The client's protocol version differs from the core's.
    VersionMismatch,
    /// A request came before the hello.
    HelloRequired,
    UnknownComponent,
    /// The request cannot be done in the component's present state or configuration.
    Rejected,
    /// The core is shutting down.
    ShuttingDown,
    Internal,
}

/// Requests a client may make.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Ping,
    /// All components, or one.
    Status {
        #[serde(default)]
        component: Option<String>,
    },
    Start {
        component: String,
    },
    Stop {
        component: String,
    },
    /// An operator's restart: also resets backoff and closes the breaker.
    Restart {
        component: String,
    },
    /// A command that is not start, stop or restart (those are requests of their own): clear the
    /// cache, new config values, a named action, or a component's graceful shutdown. A linked
    /// component receives it as is; a process has it carried out by its configured action (its
    /// `shutdown` is its stop).
    Command {
        component: String,
        command: SupervisorCommand,
    },
    /// The last `lines` lines of a component's output.
    Logs {
        component: String,
        lines: usize,
    },
    /// Start receiving events. Topics are additive across calls.
    Subscribe {
        topics: Vec<Topic>,
        /// Only events about these components (empty: all).
        #[serde(default)]
        components: Vec<String>,
    },
    /// Recent issues, newest last.
    Issues {
        #[serde(default)]
        component: Option<String>,
        #[serde(default = "default_issue_limit")]
        limit: usize,
    },
    /// Run the healing path for a component by hand.
    Heal {
        component: String,
    },
    /// `down`: stop every component in reverse dependency order, then the core. (One component's
    /// graceful shutdown is `Command` with `SupervisorCommand::Shutdown`.)
    Down,
    /// A linked Rust component announces itself (guide §4.1 step 2).
    Register {
        component: String,
        capabilities: ComponentCapabilities,
        /// How often it promises to report health, in milliseconds.
        #[serde(default)]
        heartbeat_ms: Option<u64>,
    },
    ReportHealth {
        component: String,
        health: HealthStatus,
    },
    ReportMetrics {
        component: String,
        metrics: HealthMetrics,
    },
    ReportIssue {
        issue: Issue,
    },
    /// How a command a linked component received ([`Event::Command`]) went: `error` is `None` when
    /// it was carried out.
    CommandOutcome {
        component: String,
        command: SupervisorCommand,
        #[serde(default)]
        error: Option<String>,
    },
    /// Text for a `text` panel of a component's tmux view (`TerminalInterface::update_panel` /
    /// `append_to_panel`). The core keeps the latest text per panel and pushes it to subscribers.
    PanelUpdate {
        component: String,
        panel: String,
        text: String,
        /// Append a line instead of replacing the whole text.
        #[serde(default)]
        append: bool,
    },
    /// The current text of one panel (what `PanelUpdate` stored).
    PanelText {
        component: String,
        panel: String,
    },
    /// A line an operator typed into a component's own input pane (`TerminalInterface`): passed to
    /// the component as [`Event::PanelInput`], not parsed as a command.
    PanelInput {
        component: String,
        panel: String,
        line: String,
    },
    /// Re-read the fleet config the core was started with and apply the difference: new
    /// components start, removed ones stop, changed ones restart with their new settings. An
    /// invalid config changes nothing and is answered with the error.
    Reload,
    /// A message for the operator (shown in System Health), e.g. from the console watcher when an
    /// edited layout file is invalid.
    Notify {
        level: NoticeLevel,
        message: String,
    },
    /// The recent history of one component that the core keeps (a few minutes of samples, its
    /// latest issues and healing attempts), so a panel opened now draws the last minutes at once.
    History {
        component: String,
    },
}

fn default_issue_limit() -> usize {
    50
}

/// What events a subscriber wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Topic {
    /// A component's status changed (state, pid, health, healing).
    State,
    Logs,
    Metrics,
    Issues,
    Healing,
    /// Messages for the operator: escalations, breaker openings, config reloads.
    Notices,
    /// Supervisor commands addressed to a linked component.
    Commands,
    /// Text panel updates.
    Panels,
}

/// Successful answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Response {
    Pong,
    Status {
        components: Vec<ComponentStatus>,
    },
    /// The request was carried out; the message says what happened, for the operator.
    Done {
        message: String,
    },
    Logs {
        lines: Vec<LogLine>,
    },
    Subscribed,
    Issues {
        issues: Vec<Issue>,
    },
    PanelText {
        text: String,
    },
    History {
        history: ComponentHistory,
    },
}

/// What [`Request::History`] answers: one component's recent samples and timeline, oldest first.
/// Empty for a component the core has not seen yet.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ComponentHistory {
    pub component: String,
    pub samples: Vec<HistorySample>,
    pub timeline: Vec<TimelineEntry>,
}

/// One sample of a component's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistorySample {
    #[serde(with = "crate::model::rfc3339")]
    pub at: SystemTime,
    /// `None` while the component had no process (stopped, backing off, breaker open).
    pub metrics: Option<ProcessMetrics>,
    /// Restarts so far, as the core counted them at `at`.
    pub restarts: u32,
    /// The response time a linked component last reported, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_ms: Option<f64>,
}

/// Something that happened to a component: an issue, or a healing attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TimelineEntry {
    Issue {
        issue: Issue,
    },
    /// A healing attempt as the healing engine reported it (live, `Event::Healing`).
    Healing {
        record: RecoveryRecord,
    },
    /// A healing action the core's history saw begin (its outcome is not recorded there).
    Action {
        action: HealingAction,
        #[serde(with = "crate::model::rfc3339")]
        at: SystemTime,
    },
}

impl TimelineEntry {
    /// When it happened.
    pub fn at(&self) -> SystemTime {
        match self {
            TimelineEntry::Issue { issue } => issue.detected_at,
            TimelineEntry::Healing { record } => record.timestamp,
            TimelineEntry::Action { at, .. } => *at,
        }
    }
}

/// Pushed to subscribers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// The full current status of one component, sent whenever any of it changes.
    Component {
        status: Box<ComponentStatus>,
    },
    /// A component's state changed (a compact form of `Component` for log-like views).
    StateChanged {
        component: String,
        from: RunState,
        to: RunState,
        pid: Option<u32>,
        #[serde(with = "crate::model::rfc3339")]
        at: SystemTime,
    },
    Log {
        line: LogLine,
    },
    Metrics {
        component: String,
        metrics: ProcessMetrics,
        #[serde(with = "crate::model::rfc3339")]
        at: SystemTime,
    },
    Issue {
        issue: Issue,
    },
    Healing {
        record: RecoveryRecord,
    },
    Notice {
        level: NoticeLevel,
        message: String,
        #[serde(with = "crate::model::rfc3339")]
        at: SystemTime,
    },
    /// A supervisor command for a linked component (which carries it out and reports back).
    Command {
        component: String,
        command: SupervisorCommand,
    },
    /// A line typed into a component's own input pane.
    PanelInput {
        component: String,
        panel: String,
        line: String,
    },
    /// A text panel changed: `text` is the whole new text, or one appended line when `append`.
    PanelText {
        component: String,
        panel: String,
        text: String,
        append: bool,
    },
}

impl Event {
    /// The topic this event belongs to.
    pub fn topic(&self) -> Topic {
        match self {
            Event::Component { .. } | Event::StateChanged { .. } => Topic::State,
            Event::Log { .. } => Topic::Logs,
            Event::Metrics { .. } => Topic::Metrics,
            Event::Issue { .. } => Topic::Issues,
            Event::Healing { .. } => Topic::Healing,
            Event::Notice { .. } => Topic::Notices,
            Event::Command { .. } => Topic::Commands,
            Event::PanelText { .. } | Event::PanelInput { .. } => Topic::Panels,
        }
    }

    /// The component the event is about, if any.
    pub fn component(&self) -> Option<&str> {
        match self {
            Event::Component { status } => Some(&status.name),
            Event::StateChanged { component, .. }
            | Event::Metrics { component, .. }
            | Event::Command { component, .. }
            | Event::PanelText { component, .. }
            | Event::PanelInput { component, .. } => Some(component),
            Event::Log { line } => Some(&line.component),
            Event::Issue { issue } => Some(&issue.component),
            Event::Healing { record } => Some(&record.issue.component),
            Event::Notice { .. } => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeLevel {
    Info,
    Warning,
    Error,
}

/// One line read from the wire.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A complete line, newline stripped.
    Line(String),
    /// A line longer than [`MAX_LINE`] was skipped up to its newline.
    TooLong,
    /// A line that is not UTF-8.
    NotUtf8,
}

/// Errors reading frames.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer hung up in the middle of a line.
    #[error("connection closed in the middle of a message")]
    Truncated,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads the next line of at most `max` bytes.
///
/// `Ok(None)` is a clean end of stream (the peer hung up between messages); a hang-up mid-line is
/// [`FrameError::Truncated`]. A longer line is consumed and dropped without being held in memory, and
/// reported as [`Frame::TooLong`], so one bad client cannot make the core allocate without bound.
///
/// Written by hand because tokio-util's `LinesCodec` with a max length discards the rest of an
/// over-long line silently, but reports it only as an error that ends the stream.
pub async fn read_frame<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> Result<Option<Frame>, FrameError> {
    buf.clear();
    let mut too_long = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return if buf.is_empty() && !too_long {
                Ok(None)
            } else {
                Err(FrameError::Truncated)
            };
        }
        let (chunk, found_newline) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (&available[..i], true),
            None => (available, false),
        };
        let consumed = chunk.len() + usize::from(found_newline);
        if !too_long {
            if buf.len() + chunk.len() > max {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        reader.consume(consumed);
        if found_newline {
            if too_long {
                return Ok(Some(Frame::TooLong));
            }
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            return Ok(Some(match String::from_utf8(std::mem::take(buf)) {
                Ok(s) => Frame::Line(s),
                Err(_) => Frame::NotUtf8,
            }));
        }
    }
}

/// Serialises a message as one line, newline included.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    let mut line = serde_json::to_vec(message).expect("protocol messages always serialise");
    line.push(b'\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;
    use std::collections::BTreeMap;
    use std::time::Duration;

    fn status() -> ComponentStatus {
        ComponentStatus {
            name: "api".into(),
            kind: ComponentKind::Process,
            state: RunState::Running,
            health: HealthStatus::Degraded("slow".into()),
            pid: Some(42),
            started_at: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(5)),
            restarts: 3,
            metrics: Some(ProcessMetrics {
                cpu_percent: 1.5,
                rss_bytes: 1 << 20,
                open_fds: 7,
            }),
            reported: Some(HealthMetrics::default()),
            last_exit: Some(ExitInfo {
                code: None,
                signal: Some(9),
                at: SystemTime::UNIX_EPOCH,
            }),
            depends_on: vec!["db".into()],
            restart: RestartPolicy::Transient,
            recovery_actions: vec!["clear_cache".into(), "restart".into()],
            healing: HealingStatus {
                level: HealingLevel::Advanced,
                auto_healing: true,
                breaker: BreakerState::Open,
                backoff: Some(Duration::from_millis(400)),
                next_trial_at: Some(SystemTime::UNIX_EPOCH),
                last_issue: Some(issue()),
                last_action: Some(HealingAction::Recover {
                    name: "clear_cache".into(),
                }),
            },
        }
    }

    fn issue() -> Issue {
        Issue {
            id: "b1".into(),
            component: "api".into(),
            issue_type: "crash".into(),
            severity: Severity::Error,
            detected_at: SystemTime::UNIX_EPOCH,
            context: BTreeMap::from([("exit".into(), "3".into())]),
        }
    }

    fn round_trip<T>(value: T)
    where
        T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug,
    {
        let line = encode(&value);
        assert_eq!(line.last(), Some(&b'\n'));
        assert!(!line[..line.len() - 1].contains(&b'\n'), "one line only");
        let back: T = serde_json::from_slice(&line).expect("decodes");
        assert_eq!(back, value);
    }

    /// Every message variant survives encode → decode unchanged.
    #[test]
    fn every_message_round_trips() {
        let requests = vec![
            Request::Ping,
            Request::Status { component: None },
            Request::Status {
                component: Some("api".into()),
            },
            Request::Start {
                component: "api".into(),
            },
            Request::Stop {
                component: "api".into(),
            },
            Request::Restart {
                component: "api".into(),
            },
            Request::Command {
                component: "api".into(),
                command: SupervisorCommand::UpdateConfig(BTreeMap::from([(
                    "k".into(),
                    "v".into(),
                )])),
            },
            Request::Command {
                component: "api".into(),
                command: SupervisorCommand::Action("reconnect".into()),
            },
            Request::Logs {
                component: "api".into(),
                lines: 10,
            },
            Request::Subscribe {
                topics: vec![Topic::State, Topic::Logs, Topic::Commands],
                components: vec!["api".into()],
            },
            Request::Issues {
                component: None,
                limit: 5,
            },
            Request::Heal {
                component: "api".into(),
            },
            Request::Down,
            Request::Register {
                component: "svc".into(),
                capabilities: ComponentCapabilities {
                    can_restart: true,
                    can_scale: false,
                    can_failover: true,
                    supported_recovery_actions: vec!["restart".into()],
                    healing_level: HealingLevel::Full,
                },
                heartbeat_ms: Some(5000),
            },
            Request::ReportHealth {
                component: "svc".into(),
                health: HealthStatus::Critical("db".into()),
            },
            Request::ReportMetrics {
                component: "svc".into(),
                metrics: HealthMetrics::default(),
            },
            Request::ReportIssue { issue: issue() },
            Request::CommandOutcome {
                component: "svc".into(),
                command: SupervisorCommand::ClearCache,
                error: Some("cache locked".into()),
            },
            Request::CommandOutcome {
                component: "svc".into(),
                command: SupervisorCommand::Restart,
                error: None,
            },
            Request::PanelUpdate {
                component: "svc".into(),
                panel: "notes".into(),
                text: "hello".into(),
                append: true,
            },
            Request::PanelText {
                component: "svc".into(),
                panel: "notes".into(),
            },
            Request::Notify {
                level: NoticeLevel::Warning,
                message: "layout invalid".into(),
            },
            Request::PanelInput {
                component: "svc".into(),
                panel: "input".into(),
                line: "restart".into(),
            },
            Request::Reload,
            Request::History {
                component: "api".into(),
            },
        ];
        round_trip(ClientMessage::Hello {
            version: PROTOCOL_VERSION,
            client: "cli".into(),
        });
        for (id, request) in requests.into_iter().enumerate() {
            round_trip(ClientMessage::Request {
                id: id as u64,
                request,
            });
        }
        let responses = vec![
            Response::Pong,
            Response::Status {
                components: vec![status()],
            },
            Response::Done {
                message: "ok".into(),
            },
            Response::Logs {
                lines: vec![LogLine {
                    component: "api".into(),
                    at: SystemTime::UNIX_EPOCH,
                    stream: LogStream::Stderr,
                    text: "boom".into(),
                }],
            },
            Response::Subscribed,
            Response::Issues {
                issues: vec![issue()],
            },
            Response::PanelText { text: "t".into() },
            Response::History {
                history: ComponentHistory::default(),
            },
            Response::History {
                history: ComponentHistory {
                    component: "api".into(),
                    samples: vec![
                        HistorySample {
                            at: SystemTime::UNIX_EPOCH,
                            metrics: Some(ProcessMetrics {
                                cpu_percent: 1.5,
                                rss_bytes: 4096,
                                open_fds: 4,
                            }),
                            restarts: 2,
                            response_ms: Some(12.5),
                        },
                        HistorySample {
                            at: SystemTime::UNIX_EPOCH,
                            metrics: None,
                            restarts: 3,
                            response_ms: None,
                        },
                    ],
                    timeline: vec![
                        TimelineEntry::Issue { issue: issue() },
                        TimelineEntry::Healing {
                            record: RecoveryRecord {
                                issue: issue(),
                                strategy: "restart".into(),
                                successful: false,
                                action: HealingAction::Restart,
                                timestamp: SystemTime::UNIX_EPOCH,
                                duration: Duration::from_millis(3),
                            },
                        },
                        TimelineEntry::Action {
                            action: HealingAction::Restart,
                            at: SystemTime::UNIX_EPOCH,
                        },
                    ],
                },
            },
        ];
        round_trip(ServerMessage::Hello {
            version: 1,
            pid: 1,
            data_dir: "/tmp".into(),
            containment: Some("cgroup v2 at /sys/fs/cgroup/hms-1".into()),
        });
        round_trip(ServerMessage::Error {
            id: None,
            code: ErrorCode::LineTooLong,
            message: "x".into(),
        });
        for code in [
            ErrorCode::BadRequest,
            ErrorCode::VersionMismatch,
            ErrorCode::HelloRequired,
            ErrorCode::UnknownComponent,
            ErrorCode::Rejected,
            ErrorCode::ShuttingDown,
            ErrorCode::Internal,
        ] {
            round_trip(ServerMessage::Error {
                id: Some(1),
                code,
                message: "x".into(),
            });
        }
        for (id, response) in responses.into_iter().enumerate() {
            round_trip(ServerMessage::Response {
                id: id as u64,
                response,
            });
        }
        let events = vec![
            Event::Component {
                status: Box::new(status()),
            },
            Event::StateChanged {
                component: "api".into(),
                from: RunState::Running,
                to: RunState::Backoff,
                pid: None,
                at: SystemTime::UNIX_EPOCH,
            },
            Event::Log {
                line: LogLine {
                    component: "api".into(),
                    at: SystemTime::UNIX_EPOCH,
                    stream: LogStream::System,
                    text: "started".into(),
                },
            },
            Event::Metrics {
                component: "api".into(),
                metrics: ProcessMetrics::default(),
                at: SystemTime::UNIX_EPOCH,
            },
            Event::Issue { issue: issue() },
            Event::Healing {
                record: RecoveryRecord {
                    issue: issue(),
                    strategy: "restart".into(),
                    successful: true,
                    action: HealingAction::Restart,
                    timestamp: SystemTime::UNIX_EPOCH,
                    duration: Duration::from_millis(12),
                },
            },
            Event::Notice {
                level: NoticeLevel::Error,
                message: "breaker open".into(),
                at: SystemTime::UNIX_EPOCH,
            },
            Event::Command {
                component: "svc".into(),
                command: SupervisorCommand::ClearCache,
            },
            Event::PanelText {
                component: "svc".into(),
                panel: "notes".into(),
                text: "line".into(),
                append: true,
            },
            Event::PanelInput {
                component: "svc".into(),
                panel: "input".into(),
                line: "status".into(),
            },
        ];
        for event in events {
            round_trip(ServerMessage::Event { event });
        }
    }

    #[tokio::test]
    async fn frames_tell_clean_end_from_truncation() {
        let mut buf = Vec::new();
        let mut r = tokio::io::BufReader::new(&b"one\r\ntwo\n"[..]);
        assert_eq!(
            read_frame(&mut r, &mut buf, 16).await.unwrap(),
            Some(Frame::Line("one".into()))
        );
        assert_eq!(
            read_frame(&mut r, &mut buf, 16).await.unwrap(),
            Some(Frame::Line("two".into()))
        );
        assert!(read_frame(&mut r, &mut buf, 16).await.unwrap().is_none());

        let mut r = tokio::io::BufReader::new(&b"half"[..]);
        assert!(matches!(
            read_frame(&mut r, &mut buf, 16).await,
            Err(FrameError::Truncated)
        ));
    }

    #[tokio::test]
    async fn an_oversized_line_is_skipped_and_the_next_one_read() {
        let mut input = vec![b'x'; 100];
        input.extend_from_slice(b"\nok\n\xff\n");
        // A small buffer forces the long line to arrive in many pieces.
        let mut r = tokio::io::BufReader::with_capacity(7, &input[..]);
        let mut buf = Vec::new();
        assert_eq!(
            read_frame(&mut r, &mut buf, 10).await.unwrap(),
            Some(Frame::TooLong)
        );
        assert_eq!(
            read_frame(&mut r, &mut buf, 10).await.unwrap(),
            Some(Frame::Line("ok".into()))
        );
        assert_eq!(
            read_frame(&mut r, &mut buf, 10).await.unwrap(),
            Some(Frame::NotUtf8)
        );
    }
}
