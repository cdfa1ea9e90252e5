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

pub mod knowledge;

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use crate::model::{
    AgentCapabilities, AgentStatus, ComponentCapabilities, ComponentStatus, HealingAction,
    HealthMetrics, HealthStatus, Issue, LogLine, MacTask, PlanStatus, ProcessMetrics,
    RecoveryRecord, ReportThresholds, RunState, SupervisorCommand, TaskOutcome, TaskRecord,
};

pub use knowledge::{
    KnowledgeAnswer, KnowledgeItem, KnowledgeQuery, KnowledgeRequest, KnowledgeResult,
    KnowledgeStats, Sort,
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
        /// The config keys its `UpdateConfig` handler accepts; an update with any other key is
        /// refused by the core and never sent. `None`: the component checks updates itself.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        config_keys: Option<Vec<String>>,
        /// Its own levels for the error rate and response time it reports (the core's built-in
        /// levels for a figure left out).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        thresholds: Option<ReportThresholds>,
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
    /// it was carried out. The core passes the answer on to whoever sent the command.
    CommandOutcome {
        component: String,
        command: SupervisorCommand,
        #[serde(default)]
        error: Option<String>,
        /// The command's `id` from [`Event::Command`] (absent from older clients: the oldest
        /// command of that name waiting for an answer is meant).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        /// The component does not support the command (the guide's `UnsupportedCommand`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        unsupported: bool,
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
    /// The MAC task bus (guide §6): agents register, ask each other for tasks and answer them.
    /// One variant for the whole family, so the bus's requests grow without touching the other
    /// rooms' matches.
    Mac {
        request: MacRequest,
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
    /// The knowledge registry (guide §5): queries, contributions, stats, export and import. One
    /// variant for the whole family, so the registry's requests grow without touching the other
    /// rooms' matches.
    Knowledge {
        request: KnowledgeRequest,
    },
    /// The recovery plans running and the last ones that ended (§4.2), oldest first.
    Plans,
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
    /// Tasks delivered to an agent (subscribe with the agent's name as the component).
    Tasks,
    /// The MAC agents' list, whenever an agent comes, goes, changes state, or (at most once a
    /// second) its counters move.
    Agents,
    /// Supervisor commands addressed to a linked component.
    Commands,
    /// Text panel updates.
    Panels,
    /// Items stored in the knowledge registry.
    Knowledge,
    /// Recovery plans as they start, move on a step and end.
    Plans,
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
    /// The task bus's answer to a [`Request::Mac`].
    Mac {
        answer: MacAnswer,
    },
    Issues {
        issues: Vec<Issue>,
    },
    PanelText {
        text: String,
    },
    /// The knowledge registry's answer to a [`Request::Knowledge`].
    Knowledge {
        answer: KnowledgeAnswer,
    },
    /// Recovery plans, oldest first: the running ones and the last ones that ended.
    Plans {
        plans: Vec<PlanStatus>,
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
///
/// Kept small: the core's event bus holds 4096 of them whether or not anything was sent (0.98 MB
/// by heaptrack when `Event` was 216 bytes; boxing took it to 56 bytes and an idle core with 100
/// components from RSS 12.3 to 11.8 MB, PSS 9.7 to 9.2, release build, means of 5-7 runs). A
/// payload larger than a few words is boxed; `Box<T>` serialises as `T`, so the JSON is the same.
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
        line: Box<LogLine>,
    },
    Metrics {
        component: String,
        metrics: Box<ProcessMetrics>,
        #[serde(with = "crate::model::rfc3339")]
        at: SystemTime,
    },
    Issue {
        issue: Box<Issue>,
    },
    Healing {
        record: Box<RecoveryRecord>,
    },
    Notice {
        level: NoticeLevel,
        message: String,
        #[serde(with = "crate::model::rfc3339")]
        at: SystemTime,
    },
    /// A task for an agent, which answers with [`MacRequest::TaskResult`] carrying `task_id`.
    Task {
        agent: String,
        task_id: u64,
        task: Box<MacTask>,
    },
    /// Every registered agent, as `mac agents` shows them.
    Agents {
        agents: Vec<AgentStatus>,
    },
    /// A supervisor command for a linked component (which carries it out and reports back with
    /// `CommandOutcome`, carrying the same `id`).
    Command {
        component: String,
        command: Box<SupervisorCommand>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
    /// A recovery plan started, moved on a step or ended: its whole status.
    Plan {
        plan: Box<PlanStatus>,
    },
    /// A line typed into a component's own input pane. A box of its own because three strings
    /// inline would make every `Event` 80 bytes.
    PanelInput(Box<PanelInput>),
    /// A text panel changed. A box of its own because three strings inline would make every
    /// `Event` 80 bytes.
    PanelText(Box<PanelText>),
    /// The knowledge registry stored an item (a contribution, a recovery record, a new or
    /// matched issue pattern).
    Knowledge {
        item: Box<KnowledgeResult>,
    },
}

/// What [`Event::PanelInput`] carries: a line typed into a component's own input pane.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PanelInput {
    pub component: String,
    pub panel: String,
    pub line: String,
}

/// What [`Event::PanelText`] carries: `text` is the whole new text of a text panel, or one
/// appended line when `append`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PanelText {
    pub component: String,
    pub panel: String,
    pub text: String,
    pub append: bool,
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
            Event::Task { .. } => Topic::Tasks,
            Event::Agents { .. } => Topic::Agents,
            Event::PanelText(_) | Event::PanelInput(_) => Topic::Panels,
            Event::Knowledge { .. } => Topic::Knowledge,
            Event::Plan { .. } => Topic::Plans,
        }
    }

    /// The component the event is about, if any.
    pub fn component(&self) -> Option<&str> {
        match self {
            Event::Component { status } => Some(&status.name),
            Event::StateChanged { component, .. }
            | Event::Metrics { component, .. }
            | Event::Command { component, .. }
            | Event::Task {
                agent: component, ..
            } => Some(component),
            Event::PanelText(text) => Some(&text.component),
            Event::PanelInput(input) => Some(&input.component),
            Event::Log { line } => Some(&line.component),
            Event::Issue { issue } => Some(&issue.component),
            Event::Healing { record } => Some(&record.issue.component),
            Event::Knowledge { item } => Some(&item.component),
            Event::Plan { plan } => Some(&plan.component),
            Event::Notice { .. } | Event::Agents { .. } => None,
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

/// The task bus's requests (guide §6), carried by [`Request::Mac`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum MacRequest {
    /// Registers (or updates) an agent. The registration belongs to the connection: when it
    /// closes, the agent is gone, its tasks in flight fail and its queued tasks go to another
    /// capable agent. Tasks arrive as [`Event::Task`] on [`Topic::Tasks`] for a connection that
    /// subscribed to them with the agent's name.
    RegisterAgent {
        name: String,
        capabilities: AgentCapabilities,
        /// Tasks delivered to it at once (default 4).
        #[serde(default)]
        concurrency: Option<usize>,
        /// Tasks its queue holds before the bus answers `busy` (default 1024).
        #[serde(default)]
        queue_capacity: Option<usize>,
    },
    /// Asks for a task to be done and waits for its outcome (answered with
    /// [`MacAnswer::Outcome`]): by the agent's name, or, when `agent` is absent, by an agent
    /// whose `can_process` holds the task type, least loaded first.
    RequestTask {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<String>,
        task: MacTask,
        /// Who asks, for `mac tasks` (a MacClient's id, `cli` …).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        requester: Option<String>,
    },
    /// An agent's answer to an [`Event::Task`].
    TaskResult {
        agent: String,
        task_id: u64,
        reply: TaskReply,
    },
    /// Every registered agent.
    Agents,
    /// The most recent tasks and their outcomes, oldest first.
    Tasks {
        #[serde(default = "default_task_limit")]
        limit: usize,
    },
}

fn default_task_limit() -> usize {
    50
}

/// What an agent's handler made of a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum TaskReply {
    /// The handler's result string.
    Done { result: String },
    /// The handler failed; the text says why.
    Failed { error: String },
    /// The handler does not process this task type.
    Unsupported,
}

/// The task bus's answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum MacAnswer {
    /// The agent is registered; its status now.
    Registered {
        agent: AgentStatus,
    },
    /// How a requested task ended (a failure is data here, not a refused request).
    Outcome {
        task_id: u64,
        /// The agent it was routed to (empty when it could not be routed).
        agent: String,
        outcome: TaskOutcome,
    },
    /// A task result was taken (or came too late, which `message` says).
    Noted {
        message: String,
    },
    Agents {
        agents: Vec<AgentStatus>,
    },
    Tasks {
        tasks: Vec<TaskRecord>,
    },
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
pub(crate) mod tests {
    use super::*;
    use crate::model::*;
    use std::collections::BTreeMap;
    use std::time::Duration;

    /// A component's status with every field set (also for the client's parser tests).
    pub(crate) fn status() -> ComponentStatus {
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
                strategy: Some("knowledge: clear_cache cured x 2 of the last 2 times".into()),
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

    fn knowledge_result() -> KnowledgeResult {
        KnowledgeResult {
            id: 1,
            component: "api".into(),
            tags: vec!["recovery".into()],
            content: "{}".into(),
            related_to: Some("crash".into()),
            timestamp: SystemTime::UNIX_EPOCH,
            source: "core".into(),
        }
    }

    /// A plan with every kind of step and every step state.
    fn plan() -> PlanStatus {
        let step = |step: RecoveryStep, state: StepState, ms: Option<u64>| PlanStep {
            step,
            state,
            duration: ms.map(Duration::from_millis),
            detail: None,
        };
        PlanStatus {
            id: 4,
            component: "db".into(),
            issue_type: "crash".into(),
            issue_id: "b1".into(),
            strategy: RecoveryStrategy::RestForOne,
            state: PlanState::Failed,
            affected: vec!["db".into(), "api".into()],
            steps: vec![
                step(
                    RecoveryStep::ComponentAction {
                        component: "api".into(),
                        action: SupervisorCommand::Stop,
                    },
                    StepState::Done,
                    Some(0),
                ),
                step(
                    RecoveryStep::ComponentAction {
                        component: "db".into(),
                        action: SupervisorCommand::Restart,
                    },
                    StepState::Failed,
                    Some(1),
                ),
                step(
                    RecoveryStep::WaitForHealth {
                        component: "db".into(),
                        timeout: Duration::from_secs(5),
                    },
                    StepState::TimedOut,
                    Some(5000),
                ),
                step(
                    RecoveryStep::ComponentAction {
                        component: "api".into(),
                        action: SupervisorCommand::Start,
                    },
                    StepState::Running,
                    Some(3),
                ),
                step(
                    RecoveryStep::WaitForHealth {
                        component: "api".into(),
                        timeout: Duration::from_secs(5),
                    },
                    StepState::Pending,
                    None,
                ),
                PlanStep {
                    detail: Some("db is not healthy within 5s".into()),
                    ..step(
                        RecoveryStep::notify_operator("plan 4 failed"),
                        StepState::Done,
                        Some(0),
                    )
                },
            ],
            joined: vec!["crash of db".into()],
            started_at: SystemTime::UNIX_EPOCH,
            duration: Duration::from_millis(5004),
            reason: Some("db is not healthy within 5s".into()),
        }
    }

    #[test]
    fn a_plan_step_names_its_kind() {
        let json = serde_json::to_value(plan()).unwrap();
        assert_eq!(json["steps"][2]["step"], "wait_for_health");
        assert_eq!(json["steps"][2]["state"], "timed_out");
        assert_eq!(json["steps"][2]["duration"], 5000);
        assert_eq!(json["steps"][0]["action"]["command"], "stop");
    }

    fn agent_capabilities() -> AgentCapabilities {
        AgentCapabilities {
            can_process: AgentCapabilities::names(["execute-query"]),
            requires: AgentCapabilities::names(["storage"]),
            provides: AgentCapabilities::names(["database-access"]),
            healing_level: HealingLevel::Advanced,
        }
    }

    fn task() -> MacTask {
        MacTask {
            task_type: "execute-query".into(),
            payload: "\"SELECT 1\"".into(),
            priority: TaskPriority::High,
            timeout: Duration::from_secs(30),
        }
    }

    fn agent_status() -> AgentStatus {
        AgentStatus {
            name: "database-agent".into(),
            capabilities: agent_capabilities(),
            state: AgentState::WaitingFor {
                missing: vec!["storage".into()],
            },
            queued: 2,
            in_flight: 1,
            concurrency: 4,
            queue_capacity: 1024,
            done: 10,
            failed: 1,
            mean_latency: Some(Duration::from_micros(250)),
            builtin: false,
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
                config_keys: Some(vec!["log_level".into()]),
                thresholds: Some(ReportThresholds {
                    error_rate: Some(ReportLimit {
                        degraded: Some(1.0),
                        critical: None,
                    }),
                    response_time_ms: None,
                }),
            },
            Request::Register {
                component: "svc".into(),
                capabilities: ComponentCapabilities {
                    can_restart: false,
                    can_scale: false,
                    can_failover: false,
                    supported_recovery_actions: vec![],
                    healing_level: HealingLevel::Basic,
                },
                heartbeat_ms: None,
                config_keys: None,
                thresholds: None,
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
                id: Some(7),
                unsupported: false,
            },
            Request::CommandOutcome {
                component: "svc".into(),
                command: SupervisorCommand::Restart,
                error: None,
                id: None,
                unsupported: false,
            },
            Request::CommandOutcome {
                component: "svc".into(),
                command: SupervisorCommand::Action("fly".into()),
                error: Some("unsupported command fly".into()),
                id: Some(8),
                unsupported: true,
            },
            Request::Plans,
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
            Request::Knowledge {
                request: KnowledgeRequest::Query {
                    query: KnowledgeQuery::new()
                        .component("api")
                        .tag("recovery")
                        .contains("refused")
                        .related_to("db-connection-lost")
                        .filter("successful = true")
                        .sort("timestamp", "desc")
                        .limit(5),
                },
            },
            Request::Knowledge {
                request: KnowledgeRequest::Query {
                    query: KnowledgeQuery::new(),
                },
            },
            Request::Knowledge {
                request: KnowledgeRequest::Contribute {
                    item: KnowledgeItem::new()
                        .component("api")
                        .tags(vec!["issue", "pattern"])
                        .content("{}")
                        .related_to("oom")
                        .at(SystemTime::UNIX_EPOCH)
                        .source("api"),
                },
            },
            Request::Knowledge {
                request: KnowledgeRequest::Stats,
            },
            Request::Knowledge {
                request: KnowledgeRequest::Export {
                    after: Some(7),
                    limit: 1000,
                },
            },
            Request::Knowledge {
                request: KnowledgeRequest::Import {
                    lines: vec!["{}".into()],
                    first_line: Some(3),
                },
            },
            Request::Knowledge {
                request: KnowledgeRequest::ImportFile {
                    path: "/tmp/k.jsonl".into(),
                },
            },
            Request::Mac {
                request: MacRequest::RegisterAgent {
                    name: "database-agent".into(),
                    capabilities: agent_capabilities(),
                    concurrency: Some(8),
                    queue_capacity: None,
                },
            },
            Request::Mac {
                request: MacRequest::RequestTask {
                    agent: Some("database-agent".into()),
                    task: task(),
                    requester: Some("analysis-agent".into()),
                },
            },
            Request::Mac {
                request: MacRequest::RequestTask {
                    agent: None,
                    task: task(),
                    requester: None,
                },
            },
            Request::Mac {
                request: MacRequest::TaskResult {
                    agent: "database-agent".into(),
                    task_id: 7,
                    reply: TaskReply::Done {
                        result: "[1,2]".into(),
                    },
                },
            },
            Request::Mac {
                request: MacRequest::TaskResult {
                    agent: "database-agent".into(),
                    task_id: 8,
                    reply: TaskReply::Failed {
                        error: "disk full".into(),
                    },
                },
            },
            Request::Mac {
                request: MacRequest::TaskResult {
                    agent: "database-agent".into(),
                    task_id: 9,
                    reply: TaskReply::Unsupported,
                },
            },
            Request::Mac {
                request: MacRequest::Agents,
            },
            Request::Mac {
                request: MacRequest::Tasks { limit: 20 },
            },
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
            Response::Knowledge {
                answer: KnowledgeAnswer::Results {
                    results: vec![knowledge_result()],
                },
            },
            Response::Knowledge {
                answer: KnowledgeAnswer::Stored { id: 3 },
            },
            Response::Knowledge {
                answer: KnowledgeAnswer::Stats {
                    stats: KnowledgeStats {
                        path: "/d/knowledge.db".into(),
                        schema_version: 1,
                        items: 2,
                        components: vec![("api".into(), 2)],
                        tags: vec![("recovery".into(), 2)],
                        oldest: Some(SystemTime::UNIX_EPOCH),
                        newest: None,
                        db_bytes: 4096,
                        wal_bytes: 0,
                        max_per_component: 10,
                        max_age_days: 90,
                    },
                },
            },
            Response::Knowledge {
                answer: KnowledgeAnswer::Page {
                    results: vec![knowledge_result()],
                    next: Some(1),
                },
            },
            Response::Knowledge {
                answer: KnowledgeAnswer::Imported { count: 4 },
            },
            Response::Plans {
                plans: vec![plan()],
            },
            Response::Mac {
                answer: MacAnswer::Registered {
                    agent: agent_status(),
                },
            },
            Response::Mac {
                answer: MacAnswer::Noted {
                    message: "taken".into(),
                },
            },
            Response::Mac {
                answer: MacAnswer::Agents {
                    agents: vec![agent_status()],
                },
            },
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
        let failures = vec![
            TaskFailure::NoSuchAgent {
                agent: "x".into(),
                known: vec!["database-agent".into()],
            },
            TaskFailure::NoCapableAgent {
                task_type: "make-coffee".into(),
                known: vec![],
            },
            TaskFailure::UnsupportedTask {
                agent: "database-agent".into(),
                task_type: "make-coffee".into(),
                processes: vec!["execute-query".into()],
            },
            TaskFailure::Busy {
                agent: "database-agent".into(),
                queued: 1024,
            },
            TaskFailure::TimedOut {
                after: Duration::from_secs(30),
            },
            TaskFailure::AgentDisconnected {
                agent: "database-agent".into(),
            },
            TaskFailure::HandlerFailed {
                agent: "database-agent".into(),
                error: "no such table".into(),
            },
        ];
        let mut outcomes: Vec<TaskOutcome> = failures
            .into_iter()
            .map(|failure| TaskOutcome::Failed { failure })
            .collect();
        outcomes.push(TaskOutcome::Completed {
            result: "{\"rows\":3}".into(),
        });
        let mut responses = responses;
        for outcome in outcomes.clone() {
            responses.push(Response::Mac {
                answer: MacAnswer::Outcome {
                    task_id: 3,
                    agent: "database-agent".into(),
                    outcome,
                },
            });
        }
        responses.push(Response::Mac {
            answer: MacAnswer::Tasks {
                tasks: outcomes
                    .into_iter()
                    .enumerate()
                    .map(|(i, outcome)| TaskRecord {
                        id: i as u64,
                        agent: "database-agent".into(),
                        task_type: "execute-query".into(),
                        priority: TaskPriority::ALL[i % 4],
                        requester: "analysis-agent".into(),
                        requested_at: SystemTime::UNIX_EPOCH,
                        took: Duration::from_micros(1500),
                        outcome,
                    })
                    .collect(),
            },
        });
        for (id, response) in responses.into_iter().enumerate() {
            round_trip(ServerMessage::Response {
                id: id as u64,
                response,
            });
        }
        for event in sample_events() {
            round_trip(ServerMessage::Event { event });
        }
    }

    /// One event of every kind, each with its payload filled in.
    pub(crate) fn sample_events() -> Vec<Event> {
        vec![
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
                line: Box::new(LogLine {
                    component: "api".into(),
                    at: SystemTime::UNIX_EPOCH,
                    stream: LogStream::System,
                    text: "started".into(),
                }),
            },
            Event::Metrics {
                component: "api".into(),
                metrics: Box::new(ProcessMetrics::default()),
                at: SystemTime::UNIX_EPOCH,
            },
            Event::Issue {
                issue: Box::new(issue()),
            },
            Event::Healing {
                record: Box::new(RecoveryRecord {
                    issue: issue(),
                    strategy: "restart".into(),
                    successful: true,
                    action: HealingAction::Restart,
                    timestamp: SystemTime::UNIX_EPOCH,
                    duration: Duration::from_millis(12),
                }),
            },
            Event::Notice {
                level: NoticeLevel::Error,
                message: "breaker open".into(),
                at: SystemTime::UNIX_EPOCH,
            },
            Event::Command {
                component: "svc".into(),
                command: Box::new(SupervisorCommand::ClearCache),
                id: Some(3),
            },
            Event::Command {
                component: "svc".into(),
                command: Box::new(SupervisorCommand::Shutdown),
                id: None,
            },
            Event::Plan {
                plan: Box::new(plan()),
            },
            Event::PanelText(Box::new(PanelText {
                component: "svc".into(),
                panel: "notes".into(),
                text: "line".into(),
                append: true,
            })),
            Event::PanelInput(Box::new(PanelInput {
                component: "svc".into(),
                panel: "input".into(),
                line: "status".into(),
            })),
            Event::Knowledge {
                item: Box::new(knowledge_result()),
            },
            Event::Task {
                agent: "database-agent".into(),
                task_id: 4,
                task: Box::new(task()),
            },
            Event::Agents {
                agents: vec![agent_status()],
            },
        ]
    }

    /// Each slot of the core's event bus holds one `Event` and the bus has 4096 slots, allocated
    /// and touched at start: at 216 bytes (before its large payloads were boxed) they cost an idle
    /// core 0.98 MB, at 56 about 0.5 MB less (measured, see `Event`). A variant that grows past
    /// this must box its payload.
    #[test]
    fn an_event_stays_small() {
        assert!(
            std::mem::size_of::<Event>() <= 56,
            "Event is {} bytes",
            std::mem::size_of::<Event>()
        );
    }

    /// The panel events became newtype variants around a box; internally tagged, they must still
    /// read and write the flat object they were as struct variants.
    #[test]
    fn boxed_panel_events_keep_their_flat_json() {
        let text = r#"{"kind":"panel_text","component":"svc","panel":"notes","text":"line","append":true}"#;
        let input = r#"{"kind":"panel_input","component":"svc","panel":"input","line":"status"}"#;
        for json in [text, input] {
            let event: Event = serde_json::from_str(json).unwrap();
            assert_eq!(serde_json::to_string(&event).unwrap(), json);
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
