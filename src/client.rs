//! The typed async client for the core's control socket.
//!
//! The CLI, the panels and the library side (`hms::component`) all reach the core through this
//! type. One `Client` is one connection. Requests are answered in order; after
//! [`Client::subscribe`] events arrive too, and a response that comes while events are queued is
//! matched to its request by id, so a client may both listen and ask on one connection.
//!
//! Each request has its own method returning what that request answers (`status` the components,
//! `logs` the lines, `restart` the core's message …): an answer of another kind is
//! [`ClientError::Unexpected`], here and nowhere else. [`Client::request`] stays for callers that
//! carry requests as data (the panels' Elm model, the actions line). This module keeps no state
//! beyond its one connection and never retries: reconnecting is the caller's choice.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use crate::model::{
    AgentCapabilities, AgentStatus, ComponentCapabilities, ComponentStatus, HealthMetrics,
    HealthStatus, Issue, LogLine, MacTask, PlanStatus, ReportThresholds, SupervisorCommand,
    TaskOutcome, TaskRecord,
};
use crate::protocol::{
    ClientMessage, ComponentHistory, ErrorCode, Event, Frame, FrameError, KnowledgeAnswer,
    KnowledgeItem, KnowledgeQuery, KnowledgeRequest, KnowledgeResult, KnowledgeStats,
    MAX_ANSWER_LINE, MacAnswer, MacRequest, NoticeLevel, PROTOCOL_VERSION, Request, Response,
    ServerMessage, TaskReply, Topic, encode, read_frame,
};

/// Why a request could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the socket (no core running, or a stale socket file).
    #[error("no core is running on {socket} ({source}); start one with `hms-console up`")]
    NotRunning {
        socket: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The connection failed after it was made.
    #[error("connection to the core failed: {0}")]
    Io(#[from] std::io::Error),
    /// The core hung up.
    #[error("the core closed the connection")]
    Closed,
    /// The core sent something this client cannot read.
    #[error("unexpected message from the core: {0}")]
    Protocol(String),
    /// The core speaks another protocol version.
    #[error("the core speaks protocol version {core}, this client {ours}; use matching binaries")]
    Version { core: u32, ours: u32 },
    /// The core refused the request.
    #[error("{message}")]
    Server { code: ErrorCode, message: String },
    /// The core answered a request with a response of another kind (a core and a client that
    /// disagree about the protocol without a version bump).
    #[error("unexpected answer to {request}: {response:?}")]
    Unexpected {
        /// The request's `op`, e.g. `status`.
        request: &'static str,
        response: Box<Response>,
    },
}

impl ClientError {
    fn unexpected(request: &'static str, response: Response) -> ClientError {
        ClientError::Unexpected {
            request,
            response: Box::new(response),
        }
    }
}

impl From<FrameError> for ClientError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::Truncated => ClientError::Closed,
            FrameError::Io(e) => ClientError::Io(e),
        }
    }
}

/// Facts the core told us in its hello.
#[derive(Debug, Clone)]
pub struct CoreInfo {
    pub version: u32,
    pub pid: u32,
    pub data_dir: PathBuf,
    /// How the core contains its components, as it says.
    pub containment: Option<String>,
}

/// What a linked component may declare when it registers, besides its capabilities.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Registration {
    /// The keys its `UpdateConfig` handler accepts (`None`: it checks updates itself).
    pub config_keys: Option<Vec<String>>,
    /// Its own error-rate and response-time levels.
    pub thresholds: Option<ReportThresholds>,
}

/// How a command a linked component received went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The command's id from the event (`None` for a core that sent none).
    pub id: Option<u64>,
    /// Why it was not carried out; `None` when it was.
    pub error: Option<String>,
    /// The component does not support the command.
    pub unsupported: bool,
}

/// One connection to the core.
pub struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    buf: Vec<u8>,
    next_id: u64,
    /// Events that arrived while waiting for a response.
    pending_events: VecDeque<Event>,
    info: CoreInfo,
}

impl Client {
    /// Connects and exchanges hellos. `name` tells the core who we are (for its log).
    pub async fn connect(socket: &Path, name: &str) -> Result<Client, ClientError> {
        let stream =
            UnixStream::connect(socket)
                .await
                .map_err(|source| ClientError::NotRunning {
                    socket: socket.to_path_buf(),
                    source,
                })?;
        let (read, mut writer) = stream.into_split();
        // A core that refuses us says why and hangs up, maybe before our hello is written: read
        // its answer even when the write failed.
        let sent = writer
            .write_all(&encode(&ClientMessage::Hello {
                version: PROTOCOL_VERSION,
                client: name.to_string(),
            }))
            .await;
        let mut reader = BufReader::new(read);
        let mut buf = Vec::new();
        let answer = match (read_message(&mut reader, &mut buf).await, sent) {
            (Ok(answer), _) => answer,
            (Err(_), Err(e)) => return Err(ClientError::Io(e)),
            (Err(e), Ok(())) => return Err(e),
        };
        let info = core_info(answer)?;
        Ok(Client {
            reader,
            writer,
            buf,
            next_id: 1,
            pending_events: VecDeque::new(),
            info,
        })
    }

    /// What the core said about itself.
    pub fn core(&self) -> &CoreInfo {
        &self.info
    }

    /// Sends a request and waits for its answer, whatever its kind. Events that arrive meanwhile
    /// are kept for [`Client::next_event`]. Prefer the typed method of each request; this one is
    /// for callers that carry requests as data.
    pub async fn request(&mut self, request: Request) -> Result<Response, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        self.writer
            .write_all(&encode(&ClientMessage::Request { id, request }))
            .await?;
        loop {
            let message = read_message(&mut self.reader, &mut self.buf).await?;
            match answer_to(id, message)? {
                Ok(response) => return Ok(response),
                Err(event) => self.pending_events.push_back(event),
            }
        }
    }

    /// Subscribes to events of the given topics (about the given components, or all when empty).
    pub async fn subscribe(
        &mut self,
        topics: &[Topic],
        components: &[String],
    ) -> Result<(), ClientError> {
        match self
            .request(Request::Subscribe {
                topics: topics.to_vec(),
                components: components.to_vec(),
            })
            .await?
        {
            Response::Subscribed => Ok(()),
            other => Err(ClientError::unexpected("subscribe", other)),
        }
    }

    /// Sends a request the core answers with `Done` and returns the core's message.
    async fn done(&mut self, op: &'static str, request: Request) -> Result<String, ClientError> {
        match self.request(request).await? {
            Response::Done { message } => Ok(message),
            other => Err(ClientError::unexpected(op, other)),
        }
    }

    /// Is the core there and answering?
    pub async fn ping(&mut self) -> Result<(), ClientError> {
        match self.request(Request::Ping).await? {
            Response::Pong => Ok(()),
            other => Err(ClientError::unexpected("ping", other)),
        }
    }

    /// The status of every component, or of one.
    pub async fn status(
        &mut self,
        component: Option<&str>,
    ) -> Result<Vec<ComponentStatus>, ClientError> {
        let request = Request::Status {
            component: component.map(str::to_string),
        };
        match self.request(request).await? {
            Response::Status { components } => Ok(components),
            other => Err(ClientError::unexpected("status", other)),
        }
    }

    /// The names of the fleet's components, in the core's order.
    pub async fn fleet_names(&mut self) -> Result<Vec<String>, ClientError> {
        Ok(self
            .status(None)
            .await?
            .into_iter()
            .map(|c| c.name)
            .collect())
    }

    /// Starts a component; returns the core's message.
    pub async fn start(&mut self, component: &str) -> Result<String, ClientError> {
        let component = component.to_string();
        self.done("start", Request::Start { component }).await
    }

    /// Stops a component; returns the core's message.
    pub async fn stop(&mut self, component: &str) -> Result<String, ClientError> {
        let component = component.to_string();
        self.done("stop", Request::Stop { component }).await
    }

    /// An operator's restart (also resets backoff and closes the breaker); returns the core's
    /// message.
    pub async fn restart(&mut self, component: &str) -> Result<String, ClientError> {
        let component = component.to_string();
        self.done("restart", Request::Restart { component }).await
    }

    /// Any supervisor command; returns the core's message.
    pub async fn command(
        &mut self,
        component: &str,
        command: SupervisorCommand,
    ) -> Result<String, ClientError> {
        let component = component.to_string();
        self.done("command", Request::Command { component, command })
            .await
    }

    /// The last `lines` lines of a component's output.
    pub async fn logs(
        &mut self,
        component: &str,
        lines: usize,
    ) -> Result<Vec<LogLine>, ClientError> {
        let request = Request::Logs {
            component: component.to_string(),
            lines,
        };
        match self.request(request).await? {
            Response::Logs { lines } => Ok(lines),
            other => Err(ClientError::unexpected("logs", other)),
        }
    }

    /// Recent issues (of one component, or all), newest last, at most `limit`.
    pub async fn issues(
        &mut self,
        component: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Issue>, ClientError> {
        let request = Request::Issues {
            component: component.map(str::to_string),
            limit,
        };
        match self.request(request).await? {
            Response::Issues { issues } => Ok(issues),
            other => Err(ClientError::unexpected("issues", other)),
        }
    }

    /// Runs the healing path for a component by hand; returns the core's message.
    pub async fn heal(&mut self, component: &str) -> Result<String, ClientError> {
        let component = component.to_string();
        self.done("heal", Request::Heal { component }).await
    }

    /// Re-reads the fleet config and applies the difference; returns the core's message.
    pub async fn reload(&mut self) -> Result<String, ClientError> {
        self.done("reload", Request::Reload).await
    }

    /// Stops every component, then the core; returns the core's message.
    pub async fn down(&mut self) -> Result<String, ClientError> {
        self.done("down", Request::Down).await
    }

    /// Registers a linked component with its capabilities and the heartbeat interval it
    /// promises; returns the core's message.
    pub async fn register(
        &mut self,
        component: &str,
        capabilities: ComponentCapabilities,
        heartbeat: Option<Duration>,
    ) -> Result<String, ClientError> {
        self.register_with(component, capabilities, heartbeat, Registration::default())
            .await
    }

    /// [`Client::register`] with what a component may declare besides its capabilities: the
    /// config keys its `UpdateConfig` accepts and its own metric thresholds.
    pub async fn register_with(
        &mut self,
        component: &str,
        capabilities: ComponentCapabilities,
        heartbeat: Option<Duration>,
        extra: Registration,
    ) -> Result<String, ClientError> {
        let request = Request::Register {
            component: component.to_string(),
            capabilities,
            heartbeat_ms: heartbeat.map(|d| d.as_millis().min(u64::MAX as u128) as u64),
            config_keys: extra.config_keys,
            thresholds: extra.thresholds,
        };
        self.done("register", request).await
    }

    /// Reports a linked component's health; returns the core's message.
    pub async fn report_health(
        &mut self,
        component: &str,
        health: HealthStatus,
    ) -> Result<String, ClientError> {
        let component = component.to_string();
        self.done("report_health", Request::ReportHealth { component, health })
            .await
    }

    /// Reports a linked component's metrics; returns the core's message.
    pub async fn report_metrics(
        &mut self,
        component: &str,
        metrics: HealthMetrics,
    ) -> Result<String, ClientError> {
        let component = component.to_string();
        self.done(
            "report_metrics",
            Request::ReportMetrics { component, metrics },
        )
        .await
    }

    /// Reports an issue; returns the core's message.
    pub async fn report_issue(&mut self, issue: Issue) -> Result<String, ClientError> {
        self.done("report_issue", Request::ReportIssue { issue })
            .await
    }

    /// Tells the core how a command sent to a linked component went (`error` is `None` when it
    /// was carried out); returns the core's message.
    pub async fn command_outcome(
        &mut self,
        component: &str,
        command: SupervisorCommand,
        error: Option<String>,
    ) -> Result<String, ClientError> {
        let outcome = Outcome {
            id: None,
            error,
            unsupported: false,
        };
        self.command_answer(component, command, outcome).await
    }

    /// Tells the core how the command with `outcome.id` went, so its sender gets the answer;
    /// returns the core's message.
    pub async fn command_answer(
        &mut self,
        component: &str,
        command: SupervisorCommand,
        outcome: Outcome,
    ) -> Result<String, ClientError> {
        let request = Request::CommandOutcome {
            component: component.to_string(),
            command,
            error: outcome.error,
            id: outcome.id,
            unsupported: outcome.unsupported,
        };
        self.done("command_outcome", request).await
    }

    /// The recovery plans running and the last ones that ended, oldest first.
    pub async fn plans(&mut self) -> Result<Vec<PlanStatus>, ClientError> {
        match self.request(Request::Plans).await? {
            Response::Plans { plans } => Ok(plans),
            other => Err(ClientError::unexpected("plans", other)),
        }
    }

    /// Replaces a text panel's text, or appends one line to it; returns the core's message.
    pub async fn panel_update(
        &mut self,
        component: &str,
        panel: &str,
        text: String,
        append: bool,
    ) -> Result<String, ClientError> {
        let request = Request::PanelUpdate {
            component: component.to_string(),
            panel: panel.to_string(),
            text,
            append,
        };
        self.done("panel_update", request).await
    }

    /// The current text of one text panel.
    pub async fn panel_text(
        &mut self,
        component: &str,
        panel: &str,
    ) -> Result<String, ClientError> {
        let request = Request::PanelText {
            component: component.to_string(),
            panel: panel.to_string(),
        };
        match self.request(request).await? {
            Response::PanelText { text } => Ok(text),
            other => Err(ClientError::unexpected("panel_text", other)),
        }
    }

    /// Passes a line typed into a component's own input pane to that component; returns the
    /// core's message.
    pub async fn panel_input(
        &mut self,
        component: &str,
        panel: &str,
        line: &str,
    ) -> Result<String, ClientError> {
        let request = Request::PanelInput {
            component: component.to_string(),
            panel: panel.to_string(),
            line: line.to_string(),
        };
        self.done("panel_input", request).await
    }

    /// A message for the operator (shown in System Health); returns the core's message.
    pub async fn notify(
        &mut self,
        level: NoticeLevel,
        message: impl Into<String>,
    ) -> Result<String, ClientError> {
        let message = message.into();
        self.done("notify", Request::Notify { level, message })
            .await
    }

    /// Sends a knowledge request and returns the registry's answer.
    async fn knowledge(
        &mut self,
        request: KnowledgeRequest,
    ) -> Result<KnowledgeAnswer, ClientError> {
        match self.request(Request::Knowledge { request }).await? {
            Response::Knowledge { answer } => Ok(answer),
            other => Err(ClientError::unexpected("knowledge", other)),
        }
    }

    /// Runs a knowledge query (guide §5.1 step 2).
    pub async fn knowledge_query(
        &mut self,
        query: KnowledgeQuery,
    ) -> Result<Vec<KnowledgeResult>, ClientError> {
        match self.knowledge(KnowledgeRequest::Query { query }).await? {
            KnowledgeAnswer::Results { results } => Ok(results),
            other => Err(unexpected_knowledge("knowledge query", other)),
        }
    }

    /// Stores an item in the registry; returns its id once it is durable.
    pub async fn knowledge_contribute(&mut self, item: KnowledgeItem) -> Result<i64, ClientError> {
        match self
            .knowledge(KnowledgeRequest::Contribute { item })
            .await?
        {
            KnowledgeAnswer::Stored { id } => Ok(id),
            other => Err(unexpected_knowledge("knowledge contribute", other)),
        }
    }

    /// What the registry holds.
    pub async fn knowledge_stats(&mut self) -> Result<KnowledgeStats, ClientError> {
        match self.knowledge(KnowledgeRequest::Stats).await? {
            KnowledgeAnswer::Stats { stats } => Ok(stats),
            other => Err(unexpected_knowledge("knowledge stats", other)),
        }
    }

    /// One page of everything stored, in id order, after `after`; the second value is the
    /// `after` of the next page (`None` after the last).
    pub async fn knowledge_export_page(
        &mut self,
        after: Option<i64>,
        limit: usize,
    ) -> Result<(Vec<KnowledgeResult>, Option<i64>), ClientError> {
        match self
            .knowledge(KnowledgeRequest::Export { after, limit })
            .await?
        {
            KnowledgeAnswer::Page { results, next } => Ok((results, next)),
            other => Err(unexpected_knowledge("knowledge export", other)),
        }
    }

    /// Imports JSON lines, all or none; returns how many items were stored.
    pub async fn knowledge_import(
        &mut self,
        lines: Vec<String>,
        first_line: usize,
    ) -> Result<usize, ClientError> {
        let request = KnowledgeRequest::Import {
            lines,
            first_line: Some(first_line),
        };
        match self.knowledge(request).await? {
            KnowledgeAnswer::Imported { count } => Ok(count),
            other => Err(unexpected_knowledge("knowledge import", other)),
        }
    }

    /// Imports a JSON-lines file that the core reads itself (made absolute here), all or none.
    pub async fn knowledge_import_file(&mut self, path: &Path) -> Result<usize, ClientError> {
        let path = std::path::absolute(path)?.to_string_lossy().into_owned();
        match self
            .knowledge(KnowledgeRequest::ImportFile { path })
            .await?
        {
            KnowledgeAnswer::Imported { count } => Ok(count),
            other => Err(unexpected_knowledge("knowledge import", other)),
        }
    }

    /// Sends a task-bus request and returns the bus's answer.
    async fn mac(
        &mut self,
        op: &'static str,
        request: MacRequest,
    ) -> Result<MacAnswer, ClientError> {
        match self.request(Request::Mac { request }).await? {
            Response::Mac { answer } => Ok(answer),
            other => Err(ClientError::unexpected(op, other)),
        }
    }

    /// Registers a MAC agent for this connection (it is gone when the connection closes);
    /// `None` takes the bus's default concurrency and queue capacity. Returns its status.
    pub async fn register_agent(
        &mut self,
        name: &str,
        capabilities: AgentCapabilities,
        concurrency: Option<usize>,
        queue_capacity: Option<usize>,
    ) -> Result<AgentStatus, ClientError> {
        let request = MacRequest::RegisterAgent {
            name: name.to_string(),
            capabilities,
            concurrency,
            queue_capacity,
        };
        match self.mac("register_agent", request).await? {
            MacAnswer::Registered { agent } => Ok(agent),
            other => Err(ClientError::unexpected(
                "register_agent",
                Response::Mac { answer: other },
            )),
        }
    }

    /// Asks for a task (of `agent`, or of any agent that processes its type when `None`) and
    /// waits for how it ended: the result, or the typed failure.
    pub async fn request_task(
        &mut self,
        agent: Option<&str>,
        task: MacTask,
        requester: Option<&str>,
    ) -> Result<TaskCompletion, ClientError> {
        let request = MacRequest::RequestTask {
            agent: agent.map(str::to_string),
            task,
            requester: requester.map(str::to_string),
        };
        match self.mac("request_task", request).await? {
            MacAnswer::Outcome {
                task_id,
                agent,
                outcome,
            } => Ok(TaskCompletion {
                task_id,
                agent,
                outcome,
            }),
            other => Err(ClientError::unexpected(
                "request_task",
                Response::Mac { answer: other },
            )),
        }
    }

    /// An agent's answer to a task delivered to it; returns the core's message.
    pub async fn task_result(
        &mut self,
        agent: &str,
        task_id: u64,
        reply: TaskReply,
    ) -> Result<String, ClientError> {
        let request = MacRequest::TaskResult {
            agent: agent.to_string(),
            task_id,
            reply,
        };
        match self.mac("task_result", request).await? {
            MacAnswer::Noted { message } => Ok(message),
            other => Err(ClientError::unexpected(
                "task_result",
                Response::Mac { answer: other },
            )),
        }
    }

    /// Every registered MAC agent.
    pub async fn agents(&mut self) -> Result<Vec<AgentStatus>, ClientError> {
        match self.mac("agents", MacRequest::Agents).await? {
            MacAnswer::Agents { agents } => Ok(agents),
            other => Err(ClientError::unexpected(
                "agents",
                Response::Mac { answer: other },
            )),
        }
    }

    /// The last `limit` tasks the bus finished, oldest first.
    pub async fn tasks(&mut self, limit: usize) -> Result<Vec<TaskRecord>, ClientError> {
        match self.mac("tasks", MacRequest::Tasks { limit }).await? {
            MacAnswer::Tasks { tasks } => Ok(tasks),
            other => Err(ClientError::unexpected(
                "tasks",
                Response::Mac { answer: other },
            )),
        }
    }

    /// Splits the connection for a caller that keeps many requests in flight at once (the
    /// library's `MacClient`): it writes request lines itself and reads every message with the
    /// returned reader, matching answers by id. Events already received come along.
    pub fn into_halves(self) -> (MessageReader, OwnedWriteHalf, VecDeque<Event>) {
        (
            MessageReader {
                reader: self.reader,
                buf: self.buf,
            },
            self.writer,
            self.pending_events,
        )
    }

    /// One component's recent history: samples and timeline, oldest first.
    pub async fn history(&mut self, component: &str) -> Result<ComponentHistory, ClientError> {
        let request = Request::History {
            component: component.to_string(),
        };
        match self.request(request).await? {
            Response::History { history } => Ok(history),
            other => Err(ClientError::unexpected("history", other)),
        }
    }

    /// The next event; `Ok(None)` when the core hung up cleanly.
    pub async fn next_event(&mut self) -> Result<Option<Event>, ClientError> {
        if let Some(e) = self.pending_events.pop_front() {
            return Ok(Some(e));
        }
        match read_message(&mut self.reader, &mut self.buf).await {
            Ok(ServerMessage::Event { event }) => Ok(Some(event)),
            Ok(other) => Err(ClientError::Protocol(format!("{other:?}"))),
            Err(ClientError::Closed) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

fn unexpected_knowledge(request: &'static str, answer: KnowledgeAnswer) -> ClientError {
    ClientError::unexpected(request, Response::Knowledge { answer })
}

/// How a requested task ended, and where it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskCompletion {
    pub task_id: u64,
    /// The agent it was routed to (empty when it could not be routed).
    pub agent: String,
    pub outcome: TaskOutcome,
}

/// The reading half of a split [`Client`].
pub struct MessageReader {
    reader: BufReader<OwnedReadHalf>,
    buf: Vec<u8>,
}

impl MessageReader {
    /// The next message from the core; `Ok(None)` when it hung up cleanly.
    pub async fn next(&mut self) -> Result<Option<ServerMessage>, ClientError> {
        match read_message(&mut self.reader, &mut self.buf).await {
            Ok(message) => Ok(Some(message)),
            Err(ClientError::Closed) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

async fn read_message(
    reader: &mut BufReader<OwnedReadHalf>,
    buf: &mut Vec<u8>,
) -> Result<ServerMessage, ClientError> {
    frame_message(read_frame(reader, buf, MAX_ANSWER_LINE).await?)
}

/// The message in a frame the core sent (`None`: it hung up).
fn frame_message(frame: Option<Frame>) -> Result<ServerMessage, ClientError> {
    match frame {
        None => Err(ClientError::Closed),
        Some(Frame::Line(line)) => line_message(&line),
        Some(Frame::TooLong) => Err(ClientError::Protocol("a line over the maximum".into())),
        Some(Frame::NotUtf8) => Err(ClientError::Protocol("a line that is not UTF-8".into())),
    }
}

fn line_message(line: &str) -> Result<ServerMessage, ClientError> {
    parse_server_message(line).map_err(|e| ClientError::Protocol(format!("{e}: {line}")))
}

/// What the core's answer to our hello says about it; refused when it speaks another protocol
/// version or refused us.
fn core_info(answer: ServerMessage) -> Result<CoreInfo, ClientError> {
    match answer {
        ServerMessage::Hello {
            version,
            pid,
            data_dir,
            containment,
        } => {
            if version != PROTOCOL_VERSION {
                return Err(ClientError::Version {
                    core: version,
                    ours: PROTOCOL_VERSION,
                });
            }
            Ok(CoreInfo {
                version,
                pid,
                data_dir: PathBuf::from(data_dir),
                containment,
            })
        }
        ServerMessage::Error { code, message, .. } => Err(ClientError::Server { code, message }),
        other => Err(ClientError::Protocol(format!("{other:?}"))),
    }
}

/// A message read while waiting for the answer to request `id`: the answer (`Ok(Ok)`), an event
/// that came first (`Ok(Err)`: keep it and read on), or the core's refusal.
fn answer_to(id: u64, message: ServerMessage) -> Result<Result<Response, Event>, ClientError> {
    match message {
        ServerMessage::Response { id: rid, response } if rid == id => Ok(Ok(response)),
        ServerMessage::Error {
            id: rid,
            code,
            message,
        } if rid == Some(id) || rid.is_none() => Err(ClientError::Server { code, message }),
        ServerMessage::Event { event } => Ok(Err(event)),
        other => Err(ClientError::Protocol(format!("{other:?}"))),
    }
}

/// One request on a connection of its own, without an async runtime: connect, exchange hellos,
/// send `request`, read its answer (events cannot come: this connection subscribes to none).
/// For `hms-console status`, whose whole run is this one exchange (issue 12: a status of 100
/// components, process start included, within 1.5 ms): building a tokio runtime, its I/O driver
/// and the readiness dance around each read cost more than the exchange. The steps after each
/// read are [`Client`]'s ([`core_info`], [`answer_to`]); the errors are the same.
pub fn request_blocking(
    socket: &Path,
    name: &str,
    request: Request,
) -> Result<(CoreInfo, Response), ClientError> {
    use std::io::Write;
    let mut stream = std::os::unix::net::UnixStream::connect(socket).map_err(|source| {
        ClientError::NotRunning {
            socket: socket.to_path_buf(),
            source,
        }
    })?;
    // The hello and the request in one write: the core reads them in order and answers the
    // request only once it has taken the hello (a core that refuses the hello hangs up without
    // reading on), so the answer comes one round trip sooner than hello, wait, request.
    let id = 1;
    let mut lines = encode(&ClientMessage::Hello {
        version: PROTOCOL_VERSION,
        client: name.to_string(),
    });
    lines.extend(encode(&ClientMessage::Request { id, request }));
    // As `Client::connect`: a core that refuses us may hang up before our lines are written.
    let sent = stream.write_all(&lines);
    let mut lines = BlockingLines::new(stream);
    let answer = match (lines.next_message(), sent) {
        (Ok(answer), _) => answer,
        (Err(_), Err(e)) => return Err(ClientError::Io(e)),
        (Err(e), Ok(())) => return Err(e),
    };
    let info = core_info(answer)?;
    loop {
        if let Ok(response) = answer_to(id, lines.next_message()?)? {
            return Ok((info, response));
        }
    }
}

/// `status` through [`request_blocking`]: the core's hello and the components.
pub fn status_blocking(
    socket: &Path,
    name: &str,
    component: Option<&str>,
) -> Result<(CoreInfo, Vec<ComponentStatus>), ClientError> {
    let request = Request::Status {
        component: component.map(str::to_string),
    };
    match request_blocking(socket, name, request)? {
        (info, Response::Status { components }) => Ok((info, components)),
        (_, other) => Err(ClientError::unexpected("status", other)),
    }
}

/// The lines of a blocking stream, read into one buffer and parsed where they lie (for
/// [`request_blocking`]). A `BufReader` and `read_until` copied each line out of the reader's
/// buffer into a second one as it grew: for a status of 100 components (44 kB) that was a 44-kB
/// copy and the page faults of both buffers (issue 12).
struct BlockingLines<R> {
    inner: R,
    /// What has been read; its spare capacity is read into without being cleared first (a
    /// cleared 64-kB buffer was 16 page faults before the first byte came), doubled when a
    /// line does not fit.
    buf: Vec<u8>,
    /// Where the next line starts in `buf`.
    start: usize,
}

/// A stream that appends what it reads to a vector's spare capacity.
trait ReadInto {
    /// Appends at most the spare capacity of `buf`; 0 at the end of the stream.
    fn read_into(&mut self, buf: &mut Vec<u8>) -> std::io::Result<usize>;
}

impl ReadInto for std::os::unix::net::UnixStream {
    fn read_into(&mut self, buf: &mut Vec<u8>) -> std::io::Result<usize> {
        Ok(rustix::io::read(
            &*self,
            rustix::buffer::spare_capacity(buf),
        )?)
    }
}

impl<R: ReadInto> BlockingLines<R> {
    fn new(inner: R) -> Self {
        Self::with_room(inner, 64 * 1024)
    }

    fn with_room(inner: R, room: usize) -> Self {
        BlockingLines {
            inner,
            buf: Vec::with_capacity(room.max(1)),
            start: 0,
        }
    }

    /// The next message (see [`BlockingLines::next_frame`]).
    fn next_message(&mut self) -> Result<ServerMessage, ClientError> {
        match self.next_frame(MAX_ANSWER_LINE)? {
            None => Err(ClientError::Closed),
            Some(Ok(line)) => line_message(line),
            Some(Err(frame)) => frame_message(Some(frame)),
        }
    }

    /// [`read_frame`] for a blocking reader: one line of at most `max` bytes, the same frame for
    /// the same bytes (a property test checks it; a line is lent, not copied), except that it
    /// does not read on past an over-long line (the one caller gives up on it), and a line the
    /// peer did not finish is [`ClientError::Closed`] at once.
    fn next_frame(&mut self, max: usize) -> Result<Option<Result<&str, Frame>>, ClientError> {
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        let mut scanned = self.start;
        loop {
            // A line is at most `max` bytes and its newline.
            let within = self
                .buf
                .len()
                .min(self.start.saturating_add(max).saturating_add(1));
            if let Some(i) = memchr::memchr(b'\n', &self.buf[scanned..within]) {
                let end = scanned + i;
                let line =
                    self.start..end - usize::from(end > self.start && self.buf[end - 1] == b'\r');
                self.start = end + 1;
                return Ok(Some(match std::str::from_utf8(&self.buf[line]) {
                    Ok(line) => Ok(line),
                    Err(_) => Err(Frame::NotUtf8),
                }));
            }
            if within < self.buf.len() || self.buf.len() - self.start > max {
                return Ok(Some(Err(Frame::TooLong)));
            }
            scanned = within;
            if self.buf.len() == self.buf.capacity() {
                self.buf.reserve(self.buf.capacity());
            }
            let read = loop {
                match self.inner.read_into(&mut self.buf) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    other => break other?,
                }
            };
            match read {
                0 if self.buf.len() == self.start => return Ok(None),
                0 => return Err(ClientError::Closed),
                _ => {}
            }
        }
    }
}

/// Parses one line from the core. `ServerMessage`'s derived `Deserialize` (an internally tagged
/// enum, as `Response` is) first copies the whole line into serde's generic content tree, and a
/// response's body a second time, before it builds a value: for the status of 100 components
/// that was a large part of `hms-console status`'s own CPU time (issue 12). So a status answer
/// is read here straight into its types, in one pass over the line (callgrind, the status of
/// 100: skipping the envelope and the body as raw JSON before reading the components took 1.18M
/// of the run's 4.53M instructions; the run takes 2.27M with this and the table's fewer
/// allocations, `cli::output::status_table`). Every other
/// line, and any status line this shortcut does not take whole, goes through the derived impl:
/// the result is the same either way (a property test checks it).
fn parse_server_message(line: &str) -> serde_json::Result<ServerMessage> {
    use std::borrow::Cow;
    #[derive(serde::Deserialize)]
    struct Envelope<'a> {
        #[serde(rename = "type", borrow)]
        kind: Cow<'a, str>,
        id: Option<u64>,
        #[serde(borrow)]
        response: Option<StatusBody<'a>>,
    }
    /// Any response's body reads as this; only a status answer's has components.
    #[derive(serde::Deserialize)]
    struct StatusBody<'a> {
        #[serde(borrow)]
        kind: Cow<'a, str>,
        components: Option<Vec<ComponentStatus>>,
    }
    if let Ok(Envelope {
        kind,
        id: Some(id),
        response:
            Some(StatusBody {
                kind: body_kind,
                components: Some(components),
            }),
    }) = serde_json::from_str(line)
        && kind == "response"
        && body_kind == "status"
    {
        return Ok(ServerMessage::Response {
            id,
            response: Response::Status { components },
        });
    }
    serde_json::from_str(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::UnixListener;

    /// A reader that gives at most `chunk` bytes a read, as a socket may.
    struct Chunked<'a> {
        bytes: &'a [u8],
        chunk: usize,
    }

    impl ReadInto for Chunked<'_> {
        fn read_into(&mut self, buf: &mut Vec<u8>) -> std::io::Result<usize> {
            let n = self
                .chunk
                .min(buf.capacity() - buf.len())
                .min(self.bytes.len());
            buf.extend_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    proptest::proptest! {
        /// The blocking reader cuts the same frames as the async one from any bytes, one after
        /// another, however the bytes arrive and however small its buffer starts: lines of any content (newlines, `\r`, bytes that
        /// are not UTF-8), any maximum.
        #[test]
        fn the_blocking_frame_reader_agrees_with_read_frame(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::num::u8::ANY,
                    proptest::strategy::Just(b'\n'),
                    proptest::strategy::Just(b'\r'),
                ],
                0..64,
            ),
            max in 0usize..24,
            chunk in 1usize..80,
            room in 1usize..80,
        ) {
            let mut lines = BlockingLines::with_room(Chunked { bytes: &bytes, chunk }, room);
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let (mut framed_from, mut framed_buf) = (&bytes[..], Vec::new());
            // Where the async reader is: the blocking one must have read no further.
            loop {
                let before = framed_from;
                let blocking = lines
                    .next_frame(max)
                    .map(|f| f.map(|f| f.map_or_else(|frame| frame, |line| Frame::Line(line.into()))));
                let framed =
                    runtime.block_on(read_frame(&mut framed_from, &mut framed_buf, max));
                match (blocking, framed) {
                    (Ok(Some(Frame::TooLong)), Ok(Some(Frame::TooLong))) => break,
                    (Ok(None), Ok(None)) => break,
                    (Ok(a), Ok(b)) => proptest::prop_assert_eq!(a, b),
                    (Err(ClientError::Closed), Err(FrameError::Truncated)) => break,
                    // An over-long unfinished line: the async reader reads on to say it was cut.
                    (Ok(Some(Frame::TooLong)), Err(FrameError::Truncated)) => {
                        proptest::prop_assert!(!before[..=max.min(before.len() - 1)].contains(&b'\n'));
                        break;
                    }
                    (a, b) => proptest::prop_assert!(false, "{a:?} != {b:?}"),
                }
            }
        }
    }

    /// A fake core for one connection that answers every request with `answer`.
    async fn fake_core(listener: UnixListener, answer: Response) {
        let (stream, _) = listener.accept().await.expect("accept");
        let (read, mut write) = stream.into_split();
        let mut reader = BufReader::new(read);
        let mut buf = Vec::new();
        while let Ok(Some(Frame::Line(line))) =
            read_frame(&mut reader, &mut buf, crate::protocol::MAX_LINE).await
        {
            let reply = match serde_json::from_str::<ClientMessage>(&line).expect("valid") {
                ClientMessage::Hello { .. } => ServerMessage::Hello {
                    version: PROTOCOL_VERSION,
                    pid: 1,
                    data_dir: "/tmp".into(),
                    containment: None,
                },
                ClientMessage::Request { id, .. } => ServerMessage::Response {
                    id,
                    response: answer.clone(),
                },
            };
            write.write_all(&encode(&reply)).await.expect("write");
        }
    }

    #[tokio::test]
    async fn an_answer_of_another_kind_is_unexpected_naming_the_request() {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("core.sock");
        let listener = UnixListener::bind(&socket).expect("bind");
        let core = tokio::spawn(fake_core(listener, Response::Pong));
        let mut client = Client::connect(&socket, "test").await.expect("connect");
        client.ping().await.expect("a pong answers a ping");
        match client.status(None).await {
            Err(ClientError::Unexpected { request, response }) => {
                assert_eq!(request, "status");
                assert_eq!(*response, Response::Pong);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            client.restart("api").await,
            Err(ClientError::Unexpected {
                request: "restart",
                ..
            })
        ));
        drop(client);
        core.await.expect("fake core");
    }

    /// The derived impl's answer for a line, as [`parse_server_message`] must give it.
    fn derived(line: &str) -> Option<ServerMessage> {
        serde_json::from_str(line).ok()
    }

    fn line_of(message: &ServerMessage) -> String {
        String::from_utf8(encode(message))
            .expect("JSON is UTF-8")
            .trim_end()
            .to_string()
    }

    #[test]
    fn other_lines_parse_as_the_derived_impl_parses_them() {
        for line in [
            r#"{"type":"hello","version":2,"pid":1,"data_dir":"/d"}"#,
            r#"{"type":"response","id":3,"response":{"kind":"pong"}}"#,
            r#"{"type":"response","id":3,"response":{"kind":"status"}}"#,
            r#"{"type":"response","id":3,"response":{"kind":"status","components":[]}}"#,
            r#"{"id":3,"response":{"components":[],"kind":"status"},"type":"response"}"#,
            r#"{"type":"response","id":3,"response":{"kind":"status","components":[{}]}}"#,
            r#"{"type":"response","id":-3,"response":{"kind":"status","components":[]}}"#,
            r#"{"type":"respo\u006ese","id":3,"response":{"kind":"st\u0061tus","components":[]}}"#,
            r#"{"type":"error","code":"not_found","message":"no"}"#,
            r#"{"type":"response","id":3,"response":{"kind":"status","components":[]},"id":4}"#,
            r#"{"type":"response","#,
            "",
        ] {
            let fast = parse_server_message(line).ok();
            assert_eq!(fast, derived(line), "{line}");
        }
        let line = r#"{"type":"response","id":3,"response":{"kind":"status","components":[]}}"#;
        assert_eq!(
            parse_server_message(line).ok(),
            Some(ServerMessage::Response {
                id: 3,
                response: Response::Status { components: vec![] }
            })
        );
    }

    proptest::proptest! {
        /// A status answer, whatever its components' names, numbers and count, parses to what the
        /// derived impl makes of it, which is what the core sent.
        #[test]
        fn a_status_answer_parses_as_the_derived_impl_parses_it(
            names in proptest::collection::vec(proptest::prelude::any::<String>(), 0..4),
            pid in proptest::option::of(proptest::prelude::any::<u32>()),
            restarts in proptest::prelude::any::<u32>(),
            id in proptest::prelude::any::<u64>(),
        ) {
            let components: Vec<ComponentStatus> = names
                .into_iter()
                .map(|name| {
                    let mut c = crate::protocol::tests::status();
                    c.name = name;
                    c.pid = pid;
                    c.restarts = restarts;
                    c
                })
                .collect();
            let sent = ServerMessage::Response { id, response: Response::Status { components } };
            let line = line_of(&sent);
            let fast = parse_server_message(&line).ok();
            proptest::prop_assert_eq!(&fast, &derived(&line));
            proptest::prop_assert_eq!(fast, Some(sent));
        }

        /// Any line made of JSON-ish pieces: the same answer, or an error from both.
        #[test]
        fn any_line_parses_as_the_derived_impl_parses_it(
            line in r#"\{("type":"(response|hello|error)",?|"id":[0-9-]{1,3},?|"response":\{("kind":"(status|pong)",?|"components":\[(\{\})?\],?)*\},?)*\}"#
        ) {
            proptest::prop_assert_eq!(parse_server_message(&line).ok(), derived(&line));
        }
    }
}
