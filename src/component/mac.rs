//! The guide's `MacClient` (§6.1): how a Rust component takes part in the MAC task bus as an
//! agent, and asks other agents for tasks.
//!
//! # Shape
//! A [`MacClient`] is a cheap handle on one background task that owns one connection to the
//! core: the requests in flight (any number at once, matched to their answers by id, so many
//! callers may `request_task` concurrently), the agents registered on it, the task handler, and
//! the tasks that arrived before handling started. A writer task writes the lines it is given; a
//! reader task hands every message back to the owner. Each task delivered to an agent runs on a
//! task of its own (the core delivers at most the agent's concurrency at once) and its outcome is
//! sent back as a `task_result`; a handler that panics is reported as failed. The registration
//! belongs to the connection: when the client is dropped or disconnected, the core fails the
//! agent's tasks in flight and routes its queued tasks elsewhere. A connection that breaks (the
//! core restarted, say) is made again by the client itself, with backoff ([`RECONNECT_MIN`]
//! doubling up to [`RECONNECT_MAX`], as [`crate::component::SupervisorClient`] does), and its
//! agents are registered again with the same capabilities; the handler keeps running. Calls made
//! while it is away fail at once with a closed-connection error rather than wait. Only
//! [`MacClient::disconnect`] (or dropping the client) ends it for good.
//!
//! The guide's §6.1 in its order. The handler's `match task.task_type { "analyze-data" => … }`
//! needs `.as_str()` in Rust, and its `Error::UnsupportedTask` is [`TaskError::UnsupportedTask`]:
//!
//! ```no_run
//! // no_run: needs a running core (`hms-console up`); examples/analysis_agent.rs and
//! // examples/database_agent.rs run this against a real one in tests/mac.rs.
//! use hms::prelude::*;
//!
//! # async fn demo() -> Result<(), MacError> {
//! let mac = MacClient::new("my-component");
//! mac.connect().await?;
//!
//! let agent_capabilities = AgentCapabilities {
//!     can_process: AgentCapabilities::names(["data-analysis", "user-requests"]),
//!     requires: AgentCapabilities::names(["database-access", "storage"]),
//!     provides: AgentCapabilities::names(["analysis-results", "user-responses"]),
//!     healing_level: HealingLevel::Advanced,
//! };
//! mac.register_agent("my-component-agent", agent_capabilities).await?;
//!
//! mac.set_task_handler(|task| match task.task_type.as_str() {
//!     "data-analysis" => Ok(format!("analysed {}", task.payload)),
//!     _ => Err(TaskError::UnsupportedTask(task.task_type)),
//! });
//! mac.start_task_handling().await?;
//!
//! let task = MacTask {
//!     task_type: "execute-query".to_string(),
//!     payload: serde_json::to_string("SELECT 1").expect("a string serialises"),
//!     priority: TaskPriority::Normal,
//!     timeout: Duration::from_secs(30),
//! };
//! let rows: String = mac.request_task("database-agent", task).await?;
//! # let _ = rows;
//! # Ok(())
//! # }
//! ```

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::healing::BoxFuture;
use super::mailbox::{Mailbox, Stopped};
use super::supervisor_client::{RECONNECT_MAX, RECONNECT_MIN, until};
use crate::client::{Client, ClientError, MessageReader};
use crate::model::{AgentCapabilities, MacTask, TaskFailure, TaskOutcome};
use crate::protocol::{
    ClientMessage, Event, MacAnswer, MacRequest, Request, Response, ServerMessage, TaskReply,
    Topic, encode,
};

/// Why a MAC call failed. A task that ended without a result is one variant per reason.
#[derive(Debug, thiserror::Error)]
pub enum MacError {
    /// `connect` has not been called, failed, or the connection has closed since.
    #[error("not connected to the MAC task bus: call connect() first")]
    NotConnected,
    /// `start_task_handling` came before `register_agent`.
    #[error("no agent is registered on this client: call register_agent() first")]
    NotRegistered,
    /// `start_task_handling` came before `set_task_handler`.
    #[error("no task handler: call set_task_handler() first")]
    NoHandler,
    /// No agent of that name is registered.
    #[error("no such agent '{agent}' — known: {}", list(known))]
    NoSuchAgent { agent: String, known: Vec<String> },
    /// No registered agent processes the task type (`request_task_any`).
    #[error("no agent processes '{task_type}' — known agents: {}", list(known))]
    NoCapableAgent {
        task_type: String,
        known: Vec<String>,
    },
    /// The agent cannot process this task type (its capabilities or its handler say so).
    #[error(
        "agent '{agent}' cannot process '{task_type}' (it processes: {})",
        list(processes)
    )]
    UnsupportedTask {
        agent: String,
        task_type: String,
        processes: Vec<String>,
    },
    /// The agent's queue is full; try later or elsewhere.
    #[error("agent '{agent}' is busy: its queue is full ({queued} tasks waiting)")]
    Busy { agent: String, queued: usize },
    /// No result within the task's timeout.
    #[error("timed out: no result within {}", humantime::format_duration(*after))]
    TimedOut { after: Duration },
    /// The agent went away while it had the task.
    #[error("agent '{agent}' disconnected before answering")]
    AgentDisconnected { agent: String },
    /// The agent's handler returned an error; `error` is its text.
    #[error("agent '{agent}' failed: {error}")]
    HandlerFailed { agent: String, error: String },
    /// The connection or the core failed (the core's refusal says why).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The client's background task has ended (it panicked); make a new client.
    #[error("the MAC client's background task has stopped")]
    Stopped,
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

impl From<Stopped> for MacError {
    fn from(_: Stopped) -> Self {
        MacError::Stopped
    }
}

impl From<TaskFailure> for MacError {
    fn from(failure: TaskFailure) -> Self {
        match failure {
            TaskFailure::NoSuchAgent { agent, known } => MacError::NoSuchAgent { agent, known },
            TaskFailure::NoCapableAgent { task_type, known } => {
                MacError::NoCapableAgent { task_type, known }
            }
            TaskFailure::UnsupportedTask {
                agent,
                task_type,
                processes,
            } => MacError::UnsupportedTask {
                agent,
                task_type,
                processes,
            },
            TaskFailure::Busy { agent, queued } => MacError::Busy { agent, queued },
            TaskFailure::TimedOut { after } => MacError::TimedOut { after },
            TaskFailure::AgentDisconnected { agent } => MacError::AgentDisconnected { agent },
            TaskFailure::HandlerFailed { agent, error } => MacError::HandlerFailed { agent, error },
        }
    }
}

/// Why a task handler produced no result (the guide's `Error::UnsupportedTask`, or a failure).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    /// This agent does not process the task type; the requester gets
    /// [`MacError::UnsupportedTask`] naming what it does process.
    #[error("unsupported task {0}")]
    UnsupportedTask(String),
    /// The handler tried and failed; the requester gets [`MacError::HandlerFailed`] with this
    /// text.
    #[error("{0}")]
    Failed(String),
}

impl From<String> for TaskError {
    fn from(why: String) -> Self {
        TaskError::Failed(why)
    }
}

impl From<&str> for TaskError {
    fn from(why: &str) -> Self {
        TaskError::Failed(why.to_string())
    }
}

/// The task handler as the client keeps it: one task in, its result string or why not out.
/// Synchronous handlers are wrapped into a ready future.
pub type TaskHandler =
    Arc<dyn Fn(MacTask) -> BoxFuture<'static, Result<String, TaskError>> + Send + Sync>;

/// How many tasks the core delivers to an agent of this client at once, unless
/// [`MacClient::with_concurrency`] says otherwise.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// A component's link to the MAC task bus: a handle on the task that owns the link.
pub struct MacClient {
    id: String,
    concurrency: usize,
    owner: Mailbox<Command>,
}

type Answer = oneshot::Sender<Result<Response, ClientError>>;

/// An agent as it was registered, to register it again on a new connection.
#[derive(Clone)]
struct Registration {
    name: String,
    capabilities: AgentCapabilities,
    concurrency: usize,
}

impl Registration {
    /// The two requests that register it: the subscription first, so no task of the agent can
    /// come before it.
    fn requests(&self) -> [Request; 2] {
        [
            Request::Subscribe {
                topics: vec![Topic::Tasks],
                components: vec![self.name.clone()],
            },
            Request::Mac {
                request: MacRequest::RegisterAgent {
                    name: self.name.clone(),
                    capabilities: self.capabilities.clone(),
                    concurrency: Some(self.concurrency),
                    queue_capacity: None,
                },
            },
        ]
    }
}

/// What the owner task is asked to do.
enum Command {
    Connect {
        me: mpsc::WeakUnboundedSender<Command>,
        reply: oneshot::Sender<Result<(), MacError>>,
    },
    /// Write a request; its answer goes to `reply` (none: ignored).
    Send {
        request: Request,
        reply: Option<Answer>,
    },
    /// `register_agent` succeeded: kept, to register again after a reconnect.
    Registered(Registration),
    SetHandler(TaskHandler),
    StartHandling {
        reply: oneshot::Sender<Result<(), MacError>>,
    },
    /// From the reader: a message of connection `generation`, or its end (`None`).
    Incoming {
        generation: u64,
        message: Option<ServerMessage>,
    },
    /// From a task's runner: what the handler made of it.
    TaskDone {
        agent: String,
        task_id: u64,
        reply: TaskReply,
    },
    Disconnect {
        reply: oneshot::Sender<()>,
    },
}

impl MacClient {
    /// A client for component `id`, talking to the core at `hms::paths::socket_path(None)` (the
    /// `HMS_SOCKET` environment variable, else the default socket). Nothing is connected yet.
    pub fn new(id: &str) -> MacClient {
        Self::with_socket(id, crate::paths::socket_path(None))
    }

    /// A client for a core listening on `socket`.
    pub fn with_socket(id: &str, socket: PathBuf) -> MacClient {
        let owner = Owner {
            id: id.to_string(),
            socket,
            conn: None,
            generation: 0,
            pending: HashMap::new(),
            next_id: 1,
            agents: Vec::new(),
            registrations: Vec::new(),
            wanted: false,
            reconnect_at: None,
            reconnect_wait: RECONNECT_MIN,
            handler: None,
            handling: false,
            held: VecDeque::new(),
            me: None,
        };
        MacClient {
            id: id.to_string(),
            concurrency: DEFAULT_CONCURRENCY,
            owner: Mailbox::new(|inbox| owner.run(inbox)),
        }
    }

    /// Sets how many tasks the core delivers to this client's agents at once (call before
    /// `register_agent`).
    pub fn with_concurrency(mut self, concurrency: usize) -> MacClient {
        self.concurrency = concurrency.max(1);
        self
    }

    /// The component id given to [`MacClient::new`].
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Connects to the core. From then on a connection that breaks is made again by the client,
    /// which registers its agents again; `connect` again only after [`MacClient::disconnect`].
    pub async fn connect(&self) -> Result<(), MacError> {
        let me = self.owner.weak();
        self.owner
            .ask(|reply| Command::Connect { me, reply })
            .await?
    }

    /// Registers an agent on this client's connection: its tasks arrive here (they wait until
    /// [`MacClient::start_task_handling`]). An agent whose `requires` no registered agent
    /// provides is registered but waiting, and receives nothing until one does.
    pub async fn register_agent(
        &self,
        name: &str,
        capabilities: AgentCapabilities,
    ) -> Result<(), MacError> {
        let registration = Registration {
            name: name.to_string(),
            capabilities,
            concurrency: self.concurrency,
        };
        let [subscribe, register] = registration.requests();
        self.owner.post(Command::Send {
            request: subscribe,
            reply: None,
        });
        match self.call(register).await? {
            Response::Mac {
                answer: MacAnswer::Registered { .. },
            } => {
                self.owner.post(Command::Registered(registration));
                Ok(())
            }
            other => Err(unexpected("register_agent", other)),
        }
    }

    /// Installs the handler for the tasks delivered to this client's agents; it takes effect for
    /// the next task. `Err(TaskError::UnsupportedTask(task.task_type))` says the agent does not
    /// process the type; any other `Err("why".into())` is a failure whose text the requester
    /// gets.
    pub fn set_task_handler<F, E>(&self, handler: F)
    where
        F: Fn(MacTask) -> Result<String, E> + Send + Sync + 'static,
        E: Into<TaskError>,
    {
        let handler: TaskHandler =
            Arc::new(move |task| Box::pin(std::future::ready(handler(task).map_err(Into::into))));
        self.owner.post(Command::SetHandler(handler));
    }

    /// [`MacClient::set_task_handler`] for a handler that returns a future (one that asks other
    /// agents, say).
    pub fn set_async_task_handler<F, Fut, E>(&self, handler: F)
    where
        F: Fn(MacTask) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, E>> + Send + 'static,
        E: Into<TaskError>,
    {
        let handler: TaskHandler = Arc::new(move |task| {
            let outcome = handler(task);
            Box::pin(async move { outcome.await.map_err(Into::into) })
        });
        self.owner.post(Command::SetHandler(handler));
    }

    /// Starts running the handler on the tasks delivered (those that came before too).
    pub async fn start_task_handling(&self) -> Result<(), MacError> {
        self.owner
            .ask(|reply| Command::StartHandling { reply })
            .await?
    }

    /// Asks agent `agent` to do `task` and returns its handler's result string; every way it can
    /// end without one is a [`MacError`] variant of its own. Never waits longer than the task's
    /// timeout (the core ends it then, whatever the agent does).
    pub async fn request_task(&self, agent: &str, task: MacTask) -> Result<String, MacError> {
        self.request(Some(agent), task).await
    }

    /// Like [`MacClient::request_task`], by capability: the task goes to an agent whose
    /// `can_process` holds `task.task_type`, ready ones first, least loaded first.
    pub async fn request_task_any(&self, task: MacTask) -> Result<String, MacError> {
        self.request(None, task).await
    }

    async fn request(&self, agent: Option<&str>, task: MacTask) -> Result<String, MacError> {
        let timeout = task.timeout;
        let request = Request::Mac {
            request: MacRequest::RequestTask {
                agent: agent.map(str::to_string),
                task,
                requester: Some(self.id.clone()),
            },
        };
        // The core ends the task at its timeout; the margin covers only a core that stopped
        // answering altogether.
        let answered = tokio::time::timeout(
            timeout.saturating_add(Duration::from_secs(2)),
            self.call(request),
        )
        .await
        .map_err(|_| MacError::TimedOut { after: timeout })??;
        match answered {
            Response::Mac {
                answer: MacAnswer::Outcome { outcome, .. },
            } => match outcome {
                TaskOutcome::Completed { result } => Ok(result),
                TaskOutcome::Failed { failure } => Err(failure.into()),
            },
            other => Err(unexpected("request_task", other)),
        }
    }

    /// Every registered agent, as the core sees them.
    pub async fn agents(&self) -> Result<Vec<crate::model::AgentStatus>, MacError> {
        match self
            .call(Request::Mac {
                request: MacRequest::Agents,
            })
            .await?
        {
            Response::Mac {
                answer: MacAnswer::Agents { agents },
            } => Ok(agents),
            other => Err(unexpected("agents", other)),
        }
    }

    /// Closes the connection: the core drops this client's agents, fails their tasks in flight
    /// and routes their queued tasks to other agents.
    pub async fn disconnect(&self) {
        let _ = self.owner.ask(|reply| Command::Disconnect { reply }).await;
    }

    async fn call(&self, request: Request) -> Result<Response, MacError> {
        Ok(self
            .owner
            .ask(|reply| Command::Send {
                request,
                reply: Some(reply),
            })
            .await??)
    }
}

fn unexpected(request: &'static str, response: Response) -> MacError {
    MacError::Client(ClientError::Unexpected {
        request,
        response: Box::new(response),
    })
}

/// The connection's two helper tasks and the way to the writer.
struct Conn {
    lines: mpsc::UnboundedSender<Vec<u8>>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
    }
}

/// The owner task's state. Dropping the handle ends it, which closes the connection.
struct Owner {
    id: String,
    socket: PathBuf,
    conn: Option<Conn>,
    /// Counts connections, so a message of an old one is not taken for the current one's.
    generation: u64,
    /// Requests in flight by id; `None`: nobody waits for the answer.
    pending: HashMap<u64, Option<Answer>>,
    next_id: u64,
    /// Agents registered on the current connection.
    agents: Vec<String>,
    /// Every agent registered since `connect`, registered again after a reconnect.
    registrations: Vec<Registration>,
    /// `connect` succeeded and `disconnect` has not been called: a lost connection is made again.
    wanted: bool,
    /// When to try to connect again, while the connection is lost.
    reconnect_at: Option<Instant>,
    /// The wait before the next attempt after this one fails; it doubles up to `RECONNECT_MAX`.
    reconnect_wait: Duration,
    handler: Option<TaskHandler>,
    handling: bool,
    /// Tasks delivered before handling started.
    held: VecDeque<(String, u64, MacTask)>,
    /// For helper tasks; does not keep the owner alive.
    me: Option<mpsc::WeakUnboundedSender<Command>>,
}

impl Owner {
    async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Command>) {
        loop {
            let reconnect_at = self.reconnect_at;
            tokio::select! {
                command = inbox.recv() => match command {
                    Some(command) => self.handle(command).await,
                    None => return,
                },
                () = until(reconnect_at) => self.reconnect().await,
            }
        }
    }

    /// The connection ended without `disconnect`: try again after a wait, with backoff.
    fn lost(&mut self) {
        self.closed();
        if self.wanted && self.reconnect_at.is_none() {
            tracing::warn!(client = %self.id, "lost the connection to the MAC task bus; reconnecting");
            self.reconnect_wait = RECONNECT_MIN;
            self.reconnect_at = Some(Instant::now() + RECONNECT_MIN);
        }
    }

    /// Connects again and registers every agent again, as they were registered.
    async fn reconnect(&mut self) {
        self.reconnect_at = None;
        match self.connect().await {
            Ok(()) => {
                tracing::info!(client = %self.id, agents = self.registrations.len(), "reconnected to the MAC task bus");
                self.reconnect_wait = RECONNECT_MIN;
                for registration in self.registrations.clone() {
                    // A refusal (the name taken meanwhile, say) is logged by `incoming`.
                    for request in registration.requests() {
                        self.send(request, None);
                    }
                    self.agents.push(registration.name);
                }
            }
            Err(e) => {
                tracing::debug!(client = %self.id, cause = %e, "reconnecting to the MAC task bus failed");
                self.reconnect_wait = (self.reconnect_wait * 2).min(RECONNECT_MAX);
                self.reconnect_at = Some(Instant::now() + self.reconnect_wait);
            }
        }
    }

    async fn handle(&mut self, command: Command) {
        match command {
            Command::Connect { me, reply } => {
                self.me = Some(me);
                let connected = self.connect().await;
                if connected.is_ok() {
                    self.wanted = true;
                    self.reconnect_at = None;
                }
                let _ = reply.send(connected);
            }
            Command::Send { request, reply } => self.send(request, reply),
            Command::Registered(registration) => {
                if !self.agents.contains(&registration.name) {
                    self.agents.push(registration.name.clone());
                }
                self.registrations.retain(|r| r.name != registration.name);
                self.registrations.push(registration);
            }
            Command::SetHandler(handler) => {
                self.handler = Some(handler);
                self.run_held();
            }
            Command::StartHandling { reply } => {
                let started = if self.agents.is_empty() {
                    Err(MacError::NotRegistered)
                } else if self.handler.is_none() {
                    Err(MacError::NoHandler)
                } else {
                    self.handling = true;
                    self.run_held();
                    Ok(())
                };
                let _ = reply.send(started);
            }
            Command::Incoming {
                generation,
                message,
            } => {
                if generation == self.generation {
                    match message {
                        Some(message) => self.incoming(message),
                        None => self.lost(),
                    }
                }
            }
            Command::TaskDone {
                agent,
                task_id,
                reply,
            } => {
                let request = Request::Mac {
                    request: MacRequest::TaskResult {
                        agent,
                        task_id,
                        reply,
                    },
                };
                self.send(request, None);
            }
            Command::Disconnect { reply } => {
                self.wanted = false;
                self.reconnect_at = None;
                self.registrations.clear();
                self.closed();
                let _ = reply.send(());
            }
        }
    }

    async fn connect(&mut self) -> Result<(), MacError> {
        let client = Client::connect(&self.socket, &format!("{}:mac", self.id)).await?;
        let (reader, mut write, _) = client.into_halves();
        self.closed();
        self.generation += 1;
        let generation = self.generation;
        let (lines, mut queued) = mpsc::unbounded_channel::<Vec<u8>>();
        let writer = tokio::spawn(async move {
            while let Some(mut batch) = queued.recv().await {
                // Lines queued meanwhile go out in the same write: under load, one system call
                // and one wake-up of the core's reader for many requests.
                while batch.len() < 64 * 1024 {
                    match queued.try_recv() {
                        Ok(line) => batch.extend_from_slice(&line),
                        Err(_) => break,
                    }
                }
                if write.write_all(&batch).await.is_err() {
                    return;
                }
            }
        });
        let me = self.me.clone().ok_or(MacError::NotConnected)?;
        let reader = tokio::spawn(read(reader, generation, me));
        self.conn = Some(Conn {
            lines,
            reader,
            writer,
        });
        Ok(())
    }

    fn send(&mut self, request: Request, reply: Option<Answer>) {
        let Some(conn) = &self.conn else {
            if let Some(reply) = reply {
                let _ = reply.send(Err(ClientError::Closed));
            }
            return;
        };
        let id = self.next_id;
        self.next_id += 1;
        if conn
            .lines
            .send(encode(&ClientMessage::Request { id, request }))
            .is_err()
        {
            if let Some(reply) = reply {
                let _ = reply.send(Err(ClientError::Closed));
            }
            return;
        }
        self.pending.insert(id, reply);
    }

    fn incoming(&mut self, message: ServerMessage) {
        match message {
            ServerMessage::Response { id, response } => {
                if let Some(Some(reply)) = self.pending.remove(&id) {
                    let _ = reply.send(Ok(response));
                }
            }
            ServerMessage::Error {
                id: Some(id),
                code,
                message,
            } => match self.pending.remove(&id) {
                Some(Some(reply)) => {
                    let _ = reply.send(Err(ClientError::Server { code, message }));
                }
                Some(None) | None => {
                    tracing::warn!(client = %self.id, ?code, %message, "the core refused a MAC request");
                }
            },
            ServerMessage::Error {
                id: None, message, ..
            } => {
                tracing::warn!(client = %self.id, %message, "the core reports a problem with this connection");
            }
            ServerMessage::Event {
                event:
                    Event::Task {
                        agent,
                        task_id,
                        task,
                    },
            } => {
                self.held.push_back((agent, task_id, *task));
                self.run_held();
            }
            ServerMessage::Event { .. } | ServerMessage::Hello { .. } => {}
        }
    }

    /// Runs the held tasks, once handling has started.
    fn run_held(&mut self) {
        let (true, Some(handler), Some(me)) = (self.handling, &self.handler, &self.me) else {
            return;
        };
        while let Some((agent, task_id, task)) = self.held.pop_front() {
            let work = handler(task);
            let me = me.clone();
            tokio::spawn(async move {
                // A panic in the handler is caught and reported, not left to the timeout.
                let reply = match AssertUnwindSafe(work).catch_unwind().await {
                    Ok(Ok(result)) => TaskReply::Done { result },
                    Ok(Err(TaskError::UnsupportedTask(_))) => TaskReply::Unsupported,
                    Ok(Err(TaskError::Failed(error))) => TaskReply::Failed { error },
                    Err(panic) => TaskReply::Failed {
                        error: format!(
                            "the task handler panicked: {}",
                            panic
                                .downcast_ref::<&str>()
                                .map(|s| s.to_string())
                                .or_else(|| panic.downcast_ref::<String>().cloned())
                                .unwrap_or_default()
                        ),
                    },
                };
                if let Some(owner) = me.upgrade() {
                    let _ = owner.send(Command::TaskDone {
                        agent,
                        task_id,
                        reply,
                    });
                }
            });
        }
    }

    /// The connection is gone: every waiting caller is told, the agents with it.
    fn closed(&mut self) {
        self.conn = None;
        self.agents.clear();
        self.held.clear();
        for (_, reply) in self.pending.drain() {
            if let Some(reply) = reply {
                let _ = reply.send(Err(ClientError::Closed));
            }
        }
    }
}

/// The reader: hands every message of connection `generation` to the owner, then its end.
async fn read(
    mut reader: MessageReader,
    generation: u64,
    owner: mpsc::WeakUnboundedSender<Command>,
) {
    loop {
        let message = match reader.next().await {
            Ok(Some(message)) => Some(message),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(cause = %e, "the MAC connection failed");
                None
            }
        };
        let end = message.is_none();
        let Some(owner) = owner.upgrade() else {
            return;
        };
        if owner
            .send(Command::Incoming {
                generation,
                message,
            })
            .is_err()
            || end
        {
            return;
        }
    }
}
