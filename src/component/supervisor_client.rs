//! The guide's `SupervisorClient` (§4.1): how a Rust component links itself to the core.
//!
//! It registers the component, reports its health, metrics and issues, keeps a heartbeat going so
//! the core knows it is alive, and carries out the [`SupervisorCommand`]s the core sends it (a
//! recovery action, a restart, a shutdown) through the handler the component installs, reporting
//! each outcome back. It holds no supervision state of its own and never decides anything about
//! healing: the core does.
//!
//! # Shape
//! A [`SupervisorClient`] is a cheap handle on one background task that owns everything: the
//! request connection, the registered name, the health the heartbeat repeats, the command handler
//! and the heartbeat timer. Each method sends that task a command and, when it needs one, waits for
//! the answer; requests therefore go to the core one at a time, in the order they were made. A
//! second connection, subscribed to the component's commands, is read by a helper task that asks
//! the owner for the current handler for each command, runs it (the component's own code never
//! runs in the owner, so a slow handler delays neither heartbeats nor reports) and hands the
//! outcome back to the owner to report.
//!
//! The guide's §4.1 in its order. The guide's handler is a closure that uses `self`; Rust wants a
//! `'static` handler, so the component lives behind an `Arc` and the closure moves a clone in:
//!
//! ```no_run
//! // no_run: needs a running core (`hms-console up`); examples/guide_service.rs and
//! // tests/guide_service.rs run this against a real one.
//! use std::sync::Arc;
//! use hms::prelude::*;
//!
//! struct MyComponent;
//!
//! impl MyComponent {
//!     fn restart(&self) -> Result<(), CommandError> { Ok(()) }
//!     fn clear_cache(&self) -> Result<(), CommandError> { Ok(()) }
//!     fn apply_config(&self, _config: std::collections::BTreeMap<String, String>) -> Result<(), CommandError> { Ok(()) }
//!     fn graceful_shutdown(&self) -> Result<(), CommandError> { Ok(()) }
//! }
//!
//! # async fn demo() -> Result<(), SupervisorClientError> {
//! let component = Arc::new(MyComponent);
//! let supervisor = SupervisorClient::new("my-component");
//! supervisor.connect().await?;
//!
//! let capabilities = ComponentCapabilities {
//!     can_restart: true,
//!     can_scale: false,
//!     can_failover: true,
//!     supported_recovery_actions: ComponentCapabilities::actions(["restart", "clear_cache", "reconnect"]),
//!     healing_level: HealingLevel::Advanced,
//! };
//! supervisor.register_component("my-component", capabilities).await?;
//!
//! let this = component.clone();
//! supervisor.set_command_handler(move |command| {
//!     match command {
//!         SupervisorCommand::Restart => this.restart(),
//!         SupervisorCommand::ClearCache => this.clear_cache(),
//!         SupervisorCommand::UpdateConfig(config) => this.apply_config(config),
//!         SupervisorCommand::Shutdown => this.graceful_shutdown(),
//!         _ => Err(CommandError::UnsupportedCommand(command)),
//!     }
//! });
//! supervisor.start_command_handling().await?;
//! supervisor.report_health(HealthStatus::Healthy).await?;
//! # Ok(())
//! # }
//! ```
//!
//! A handler that must await uses [`SupervisorClient::set_async_command_handler`]. What each
//! operator command delivers is listed on [`SupervisorCommand`]: the operator's `stop`,
//! `shutdown` and `down` all deliver `Shutdown`. The handler's result goes back to whoever sent
//! the command (the actions pane, `hms-console action`, a recovery plan's step): done, its error
//! text, or that the component does not support it (`CommandError::UnsupportedCommand`).
//!
//! # When the core goes away
//! A lost connection (the core restarted, or was stopped and started again) is not the
//! component's end: the owner reconnects with backoff ([`RECONNECT_MIN`] doubling up to
//! [`RECONNECT_MAX`]), registers again with the same capabilities, resumes command handling and
//! reports the latest health. Meanwhile health and metrics are kept and sent once connected
//! again; an issue is refused with [`SupervisorClientError::Reconnecting`] so the caller knows.
//!
//! # Settings
//! The core is found at `HMS_SOCKET` (else the default socket, see [`crate::paths`]), or at the
//! path given to [`SupervisorClient::with_socket`]; the heartbeat interval is
//! [`DEFAULT_HEARTBEAT`] unless [`SupervisorClient::with_heartbeat`] says otherwise; metrics are
//! sent at most once per [`DEFAULT_METRICS_INTERVAL`] (the latest wins) unless
//! [`SupervisorClient::with_metrics_interval`] says otherwise. The config keys an `UpdateConfig`
//! may carry ([`SupervisorClient::with_config_schema`]) and the component's own error-rate and
//! response-time thresholds ([`SupervisorClient::with_thresholds`]) are declared at registration.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::healing::BoxFuture;
use super::mailbox::{Mailbox, Stopped, ask_weak};
use crate::client::{Client, ClientError, Outcome, Registration};
use crate::model::{
    ComponentCapabilities, HealthMetrics, HealthStatus, Issue, ReportThresholds, SupervisorCommand,
};
use crate::protocol::{Event, Topic};

/// How often the heartbeat reports health unless [`SupervisorClient::with_heartbeat`] says
/// otherwise (the guide: every 5-10 seconds). The core declares the component Failed after three
/// missed intervals.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(5);

/// At most one metrics report per this interval unless
/// [`SupervisorClient::with_metrics_interval`] says otherwise.
pub const DEFAULT_METRICS_INTERVAL: Duration = Duration::from_secs(1);

/// The first wait before reconnecting to a core that went away; it doubles on each failure.
pub const RECONNECT_MIN: Duration = Duration::from_millis(50);

/// The longest wait between two reconnection attempts.
pub const RECONNECT_MAX: Duration = Duration::from_secs(2);

/// Why a supervisor call failed.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorClientError {
    /// `connect` has not been called (or failed).
    #[error("not connected to the supervisor: call connect() first")]
    NotConnected,
    /// A call that needs a registered component came before `register_component`.
    #[error("{0} is not registered with the supervisor: call register_component() first")]
    NotRegistered(String),
    /// `start_command_handling` came before `set_command_handler`.
    #[error("no command handler: call set_command_handler() first")]
    NoHandler,
    /// The connection or the core failed (the core's refusal says why), or the core answered
    /// something this client does not expect.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The client's background task has ended (it panicked); make a new client.
    #[error("the supervisor client's background task has stopped")]
    Stopped,
    /// The connection to the core was lost and is being made again; try again shortly.
    #[error("the connection to the supervisor was lost; reconnecting")]
    Reconnecting,
}

impl From<Stopped> for SupervisorClientError {
    fn from(_: Stopped) -> Self {
        SupervisorClientError::Stopped
    }
}

/// Why a component did not carry out a supervisor command. The core logs it and, when the command
/// was a step of a recovery episode, goes on to the next action.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The component does not support this command (the guide's `Error::UnsupportedCommand`).
    #[error("unsupported command {}", .0.action_name())]
    UnsupportedCommand(SupervisorCommand),
    /// The component tried and could not carry it out; the text says why.
    #[error("{0}")]
    Failed(String),
}

impl From<String> for CommandError {
    fn from(why: String) -> Self {
        CommandError::Failed(why)
    }
}

impl From<&str> for CommandError {
    fn from(why: &str) -> Self {
        CommandError::Failed(why.to_string())
    }
}

/// The component's command handler as the client keeps it: carries out one command, `Err` says why
/// it could not. Synchronous handlers are wrapped into a ready future.
pub type CommandHandler =
    Arc<dyn Fn(SupervisorCommand) -> BoxFuture<'static, Result<(), CommandError>> + Send + Sync>;

/// A component's link to the supervisor (the core): a handle on the task that owns the link.
pub struct SupervisorClient {
    id: String,
    /// Announced at registration.
    heartbeat: Duration,
    /// Declared at registration.
    registration: Registration,
    owner: Mailbox<Command>,
}

/// An answer from the owner task.
type Answer<T> = oneshot::Sender<Result<T, SupervisorClientError>>;

/// What the owner task is asked to do.
enum Command {
    Connect {
        reply: Answer<()>,
    },
    Register {
        name: String,
        capabilities: ComponentCapabilities,
        heartbeat: Duration,
        extra: Registration,
        reply: Answer<()>,
    },
    MetricsInterval(Duration),
    StopHeartbeat,
    ReportHealth {
        health: HealthStatus,
        reply: Answer<()>,
    },
    ReportMetrics {
        metrics: HealthMetrics,
        reply: Answer<()>,
    },
    ReportIssue {
        issue: Issue,
        reply: Answer<()>,
    },
    SetHandler(CommandHandler),
    StartCommandHandling {
        /// For the listener, which must not keep the owner alive.
        owner: mpsc::WeakUnboundedSender<Command>,
        reply: Answer<()>,
    },
    /// From the listener: the handler to run now (`None`: none is set).
    Handler {
        reply: oneshot::Sender<Option<CommandHandler>>,
    },
    /// From the listener: how a command went, for the core.
    Outcome {
        component: String,
        command: SupervisorCommand,
        outcome: Outcome,
    },
    /// From listener number `listener`: the command stream ended (the core went away).
    Lost {
        listener: u64,
    },
    Disconnect {
        reply: oneshot::Sender<()>,
    },
}

impl SupervisorClient {
    /// A client for component `id`, talking to the core at `hms::paths::socket_path(None)` (the
    /// `HMS_SOCKET` environment variable, else the default socket). Nothing is connected yet.
    pub fn new(id: &str) -> SupervisorClient {
        Self::with_socket(id, crate::paths::socket_path(None))
    }

    /// A client for a core listening on `socket`.
    pub fn with_socket(id: &str, socket: PathBuf) -> SupervisorClient {
        let owner = Owner {
            id: id.to_string(),
            socket,
            requests: None,
            registered: None,
            registration: None,
            health: HealthStatus::Healthy,
            handler: None,
            heartbeat: None,
            listener: None,
            listeners: 0,
            handling: None,
            reconnect_at: None,
            reconnect_wait: RECONNECT_MIN,
            metrics_interval: DEFAULT_METRICS_INTERVAL,
            metrics_sent: None,
            metrics_pending: None,
        };
        SupervisorClient {
            id: id.to_string(),
            heartbeat: DEFAULT_HEARTBEAT,
            registration: Registration::default(),
            owner: Mailbox::new(|inbox| owner.run(inbox)),
        }
    }

    /// Sets the heartbeat interval announced at registration (call before `register_component`).
    pub fn with_heartbeat(mut self, interval: Duration) -> SupervisorClient {
        self.heartbeat = interval.max(Duration::from_millis(10));
        self
    }

    /// Sends metrics at most once per `interval` however often `report_metrics` is called: the
    /// latest metrics of an interval are sent at its end.
    pub fn with_metrics_interval(self, interval: Duration) -> SupervisorClient {
        self.owner.post(Command::MetricsInterval(interval));
        self
    }

    /// Declares the config keys this component's `UpdateConfig` handler accepts (call before
    /// `register_component`): the core refuses an update with any other key, naming it, and
    /// sends nothing. Without a schema every update is sent and the handler decides.
    pub fn with_config_schema<S: Into<String>>(
        mut self,
        keys: impl IntoIterator<Item = S>,
    ) -> SupervisorClient {
        self.registration.config_keys = Some(keys.into_iter().map(Into::into).collect());
        self
    }

    /// Declares this component's own error-rate (percent) and response-time (milliseconds)
    /// levels for the metrics it reports (call before `register_component`); a figure left out
    /// keeps the core's built-in levels.
    pub fn with_thresholds(mut self, thresholds: ReportThresholds) -> SupervisorClient {
        self.registration.thresholds = Some(thresholds);
        self
    }

    /// The component id given to [`SupervisorClient::new`].
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Connects to the core (the request connection).
    pub async fn connect(&self) -> Result<(), SupervisorClientError> {
        self.owner.ask(|reply| Command::Connect { reply }).await?
    }

    /// Registers the component with its capabilities and starts the heartbeat. Registering again
    /// (e.g. after a reconnect) updates it.
    pub async fn register_component(
        &self,
        name: &str,
        capabilities: ComponentCapabilities,
    ) -> Result<(), SupervisorClientError> {
        let name = name.to_string();
        let heartbeat = self.heartbeat;
        let extra = self.registration.clone();
        self.owner
            .ask(|reply| Command::Register {
                name,
                capabilities,
                heartbeat,
                extra,
                reply,
            })
            .await?
    }

    /// Stops the automatic heartbeat (the component will be declared Failed after three missed
    /// intervals unless it reports by itself).
    pub fn stop_heartbeat(&self) {
        self.owner.post(Command::StopHeartbeat);
    }

    /// Reports the component's health (the heartbeat repeats the latest one). While the client
    /// reconnects it is kept and sent once connected again.
    pub async fn report_health(&self, health: HealthStatus) -> Result<(), SupervisorClientError> {
        self.owner
            .ask(|reply| Command::ReportHealth { health, reply })
            .await?
    }

    /// Reports the guide's metrics; the core applies its error-rate and response-time thresholds.
    /// Batched: at most one send per metrics interval, the latest metrics winning; a call within
    /// the interval returns at once and its metrics go at the interval's end.
    pub async fn report_metrics(
        &self,
        metrics: HealthMetrics,
    ) -> Result<(), SupervisorClientError> {
        self.owner
            .ask(|reply| Command::ReportMetrics { metrics, reply })
            .await?
    }

    /// Reports an issue (§2.2). Severity Error or worse is escalated by the core and, at
    /// Advanced/Full, healed: the recovery actions arrive as commands. When this component's own
    /// `SelfHealing` (same component id, same process) recovered after the issue was detected,
    /// the issue is sent marked [`Issue::HEALED_BY`] with the action that worked, and the core
    /// records and shows it without healing again (§7 heals locally, then reports). An issue
    /// already marked by the component is sent as it is.
    pub async fn report_issue(&self, issue: &Issue) -> Result<(), SupervisorClientError> {
        let mut issue = issue.clone();
        super::healed::mark(&mut issue);
        self.owner
            .ask(|reply| Command::ReportIssue { issue, reply })
            .await?
    }

    /// Installs the handler that carries out supervisor commands; it takes effect for the next
    /// command, also once command handling has started. `Err("why".into())` reports a failure,
    /// `Err(CommandError::UnsupportedCommand(command))` a command the component does not support.
    /// Commands are handled one at a time, in order, on the client's command task.
    ///
    /// What arrives for each operator command is listed on [`SupervisorCommand`]: `stop c`,
    /// `shutdown c` and `down` deliver [`SupervisorCommand::Shutdown`] (the component finishes,
    /// disconnects and exits; the core marks it Stopped), `restart c` delivers `Restart`,
    /// `clear-cache c` `ClearCache`, `config c k=v` `UpdateConfig`, `action c NAME` the named
    /// action, and healing delivers each recovery action in turn.
    pub fn set_command_handler<F, E>(&self, handler: F)
    where
        F: Fn(SupervisorCommand) -> Result<(), E> + Send + Sync + 'static,
        E: Into<CommandError>,
    {
        let handler: CommandHandler = Arc::new(move |command| {
            Box::pin(std::future::ready(handler(command).map_err(Into::into)))
        });
        self.owner.post(Command::SetHandler(handler));
    }

    /// [`SupervisorClient::set_command_handler`] for a handler that returns a future, e.g.
    /// `move |command| { let this = this.clone(); async move { this.handle(command).await } }`.
    /// The outcome is reported once the future ends; the next command waits for it.
    pub fn set_async_command_handler<F, Fut, E>(&self, handler: F)
    where
        F: Fn(SupervisorCommand) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<CommandError>,
    {
        let handler: CommandHandler = Arc::new(move |command| {
            let outcome = handler(command);
            Box::pin(async move { outcome.await.map_err(Into::into) })
        });
        self.owner.post(Command::SetHandler(handler));
    }

    /// Subscribes to this component's commands and starts the task that runs the handler for each
    /// and reports the outcome. Returns once the subscription is in place.
    pub async fn start_command_handling(&self) -> Result<(), SupervisorClientError> {
        let owner = self.owner.weak();
        self.owner
            .ask(|reply| Command::StartCommandHandling { owner, reply })
            .await?
    }

    /// Stops the heartbeat and the command handling and closes both connections: the core sees
    /// the component go away (Exited, unless it had been asked to stop).
    pub async fn disconnect(&self) {
        // A stopped owner has already dropped everything this would close.
        let _ = self.owner.ask(|reply| Command::Disconnect { reply }).await;
    }
}

/// The owner task's state: everything the link knows. Dropping the handle ends the task (the
/// listener holds only a weak sender), which closes both connections.
struct Owner {
    id: String,
    socket: PathBuf,
    /// The request connection, once `connect` succeeded.
    requests: Option<Client>,
    /// The name the component registered under.
    registered: Option<String>,
    /// What it registered with, to register again after a reconnect.
    registration: Option<(ComponentCapabilities, Duration, Registration)>,
    /// How many listeners were started: a stream's end is news only from the current one.
    listeners: u64,
    /// Command handling was started (with this weak sender for the listener): resumed after a
    /// reconnect.
    handling: Option<mpsc::WeakUnboundedSender<Command>>,
    /// The connection was lost: the next attempt to make it again.
    reconnect_at: Option<Instant>,
    /// The wait before the attempt after next.
    reconnect_wait: Duration,
    metrics_interval: Duration,
    /// When metrics were last sent.
    metrics_sent: Option<Instant>,
    /// The latest metrics not sent yet, and when they are due.
    metrics_pending: Option<(HealthMetrics, Instant)>,
    /// The health the heartbeat repeats: the last one reported.
    health: HealthStatus,
    handler: Option<CommandHandler>,
    /// Armed by registration, disarmed by `stop_heartbeat` and `disconnect`.
    heartbeat: Option<Interval>,
    /// The task reading the command subscription.
    listener: Option<JoinHandle<()>>,
}

impl Owner {
    async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Command>) {
        loop {
            let reconnect_at = self.reconnect_at;
            let metrics_due = self.metrics_pending.as_ref().map(|(_, at)| *at);
            tokio::select! {
                command = inbox.recv() => match command {
                    Some(command) => self.handle(command).await,
                    None => break,
                },
                () = next_beat(&mut self.heartbeat) => self.beat().await,
                () = until(reconnect_at) => self.reconnect().await,
                () = until(metrics_due) => self.flush_metrics().await,
            }
        }
        self.stop_listening();
    }

    /// A request failed: a connection that broke is made again with backoff.
    fn failed(&mut self, e: &ClientError) {
        let broken = matches!(
            e,
            ClientError::Io(_) | ClientError::Closed | ClientError::Protocol(_)
        );
        if broken && self.requests.is_some() {
            self.lost();
        }
    }

    /// The connection is gone: drop it and plan the first attempt to make it again.
    fn lost(&mut self) {
        if self.reconnect_at.is_some() {
            return;
        }
        tracing::warn!(component = %self.id, "lost the connection to the supervisor; reconnecting");
        self.requests = None;
        self.stop_listening();
        self.reconnect_wait = RECONNECT_MIN;
        self.reconnect_at = Some(Instant::now() + RECONNECT_MIN);
    }

    /// One attempt to connect again, register again, resume command handling and report the
    /// latest health; on failure the next one is planned with a doubled wait.
    async fn reconnect(&mut self) {
        self.reconnect_at = None;
        match self.restore().await {
            Ok(()) => {
                tracing::info!(component = %self.id, "connected to the supervisor again");
                self.reconnect_wait = RECONNECT_MIN;
            }
            Err(e) => {
                tracing::debug!(component = %self.id, cause = %e, "reconnecting failed");
                self.requests = None;
                self.stop_listening();
                self.reconnect_wait = (self.reconnect_wait * 2).min(RECONNECT_MAX);
                self.reconnect_at = Some(Instant::now() + self.reconnect_wait);
            }
        }
    }

    async fn restore(&mut self) -> Result<(), SupervisorClientError> {
        self.requests = Some(Client::connect(&self.socket, &self.id).await?);
        let (Some(name), Some((capabilities, heartbeat, extra))) =
            (self.registered.clone(), self.registration.clone())
        else {
            return Ok(());
        };
        self.client()?
            .register_with(&name, capabilities, Some(heartbeat), extra)
            .await?;
        if let Some(owner) = self.handling.clone() {
            self.listen(owner).await?;
        }
        let health = self.health.clone();
        self.client()?.report_health(&name, health).await?;
        if let Some((metrics, _)) = self.metrics_pending.take() {
            self.client()?.report_metrics(&name, metrics).await?;
            self.metrics_sent = Some(Instant::now());
        }
        Ok(())
    }

    /// Sends the metrics held back for the end of their interval.
    async fn flush_metrics(&mut self) {
        if self.requests.is_none() {
            // Sent once connected again; keep them without a deadline meanwhile.
            if let Some((_, at)) = &mut self.metrics_pending {
                *at = Instant::now() + RECONNECT_MAX;
            }
            return;
        }
        let (Some((metrics, _)), Some(name)) =
            (self.metrics_pending.take(), self.registered.clone())
        else {
            return;
        };
        self.metrics_sent = Some(Instant::now());
        let sent = match self.client() {
            Ok(client) => client.report_metrics(&name, metrics).await,
            Err(_) => return,
        };
        if let Err(e) = sent {
            tracing::warn!(component = %name, cause = %e, "cannot report metrics");
            self.failed(&e);
        }
    }

    async fn handle(&mut self, command: Command) {
        match command {
            Command::Connect { reply } => {
                let connected = Client::connect(&self.socket, &self.id).await;
                let _ = reply.send(match connected {
                    Ok(client) => {
                        self.requests = Some(client);
                        Ok(())
                    }
                    Err(e) => Err(e.into()),
                });
            }
            Command::Register {
                name,
                capabilities,
                heartbeat,
                extra,
                reply,
            } => {
                let _ = reply.send(self.register(name, capabilities, heartbeat, extra).await);
            }
            Command::MetricsInterval(interval) => self.metrics_interval = interval,
            Command::StopHeartbeat => self.heartbeat = None,
            Command::ReportHealth { health, reply } => {
                let _ = reply.send(self.report_health(health).await);
            }
            Command::ReportMetrics { metrics, reply } => {
                let _ = reply.send(self.report_metrics(metrics).await);
            }
            Command::ReportIssue { issue, reply } => {
                let sent = match self.client() {
                    Ok(client) => client.report_issue(issue).await,
                    Err(e) => {
                        let _ = reply.send(Err(e));
                        return;
                    }
                };
                if let Err(e) = &sent {
                    self.failed(e);
                }
                let _ = reply.send(sent.map(drop).map_err(Into::into));
            }
            Command::SetHandler(handler) => self.handler = Some(handler),
            Command::StartCommandHandling { owner, reply } => {
                let _ = reply.send(self.start_command_handling(owner).await);
            }
            Command::Handler { reply } => {
                let _ = reply.send(self.handler.clone());
            }
            Command::Outcome {
                component,
                command,
                outcome,
            } => {
                let sent = match self.client() {
                    Ok(client) => client.command_answer(&component, command, outcome).await,
                    Err(e) => {
                        tracing::warn!(component = %component, cause = %e, "cannot report a command's outcome");
                        return;
                    }
                };
                if let Err(e) = sent {
                    tracing::warn!(component = %component, cause = %e, "cannot report a command's outcome");
                    self.failed(&e);
                }
            }
            Command::Lost { listener } => {
                if listener == self.listeners
                    && self.registered.is_some()
                    && self.requests.is_some()
                {
                    self.lost();
                }
            }
            Command::Disconnect { reply } => {
                self.heartbeat = None;
                self.stop_listening();
                self.requests = None;
                self.registered = None;
                self.handling = None;
                self.reconnect_at = None;
                let _ = reply.send(());
            }
        }
    }

    fn client(&mut self) -> Result<&mut Client, SupervisorClientError> {
        let reconnecting = self.reconnect_at.is_some();
        self.requests.as_mut().ok_or(if reconnecting {
            SupervisorClientError::Reconnecting
        } else {
            SupervisorClientError::NotConnected
        })
    }

    fn registered(&self) -> Result<String, SupervisorClientError> {
        self.registered
            .clone()
            .ok_or_else(|| SupervisorClientError::NotRegistered(self.id.clone()))
    }

    async fn register(
        &mut self,
        name: String,
        capabilities: ComponentCapabilities,
        heartbeat: Duration,
        extra: Registration,
    ) -> Result<(), SupervisorClientError> {
        self.client()?
            .register_with(&name, capabilities.clone(), Some(heartbeat), extra.clone())
            .await?;
        self.registered = Some(name);
        self.registration = Some((capabilities, heartbeat, extra));
        // The first beat one interval from now: registering counts as a report.
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        self.heartbeat = Some(tick);
        Ok(())
    }

    async fn report_health(&mut self, health: HealthStatus) -> Result<(), SupervisorClientError> {
        let name = self.registered()?;
        self.health = health.clone();
        if self.reconnect_at.is_some() {
            // Sent by the reconnection.
            return Ok(());
        }
        let sent = self.client()?.report_health(&name, health).await;
        if let Err(e) = &sent {
            self.failed(e);
            if self.reconnect_at.is_some() {
                return Ok(());
            }
        }
        sent?;
        Ok(())
    }

    async fn report_metrics(
        &mut self,
        metrics: HealthMetrics,
    ) -> Result<(), SupervisorClientError> {
        let name = self.registered()?;
        let now = Instant::now();
        let due = self.metrics_sent.map(|t| t + self.metrics_interval);
        if self.reconnect_at.is_some() || due.is_some_and(|d| d > now) {
            // Within the interval (or while reconnecting): the latest waits for its end.
            let at = due.filter(|d| *d > now).unwrap_or(now + RECONNECT_MAX);
            let at = self.metrics_pending.as_ref().map_or(at, |(_, a)| *a);
            self.metrics_pending = Some((metrics, at));
            return Ok(());
        }
        self.metrics_pending = None;
        self.metrics_sent = Some(now);
        let sent = self.client()?.report_metrics(&name, metrics).await;
        if let Err(e) = &sent {
            self.failed(e);
        }
        sent?;
        Ok(())
    }

    /// One heartbeat: the latest health again.
    async fn beat(&mut self) {
        let Some(name) = self.registered.clone() else {
            return;
        };
        let health = self.health.clone();
        let sent = match self.client() {
            Ok(client) => client
                .report_health(&name, health)
                .await
                .map_err(Into::into),
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            tracing::warn!(component = %name, cause = %e, "heartbeat failed");
            if let SupervisorClientError::Client(e) = &e {
                self.failed(e);
            }
        }
    }

    async fn start_command_handling(
        &mut self,
        owner: mpsc::WeakUnboundedSender<Command>,
    ) -> Result<(), SupervisorClientError> {
        self.registered()?;
        if self.handler.is_none() {
            return Err(SupervisorClientError::NoHandler);
        }
        self.listen(owner.clone()).await?;
        self.handling = Some(owner);
        Ok(())
    }

    /// Subscribes a second connection to the component's commands and starts the listener on it.
    async fn listen(
        &mut self,
        owner: mpsc::WeakUnboundedSender<Command>,
    ) -> Result<(), SupervisorClientError> {
        let name = self.registered()?;
        let mut events = Client::connect(&self.socket, &format!("{}:commands", self.id)).await?;
        events
            .subscribe(&[Topic::Commands], std::slice::from_ref(&name))
            .await?;
        self.stop_listening();
        self.listeners += 1;
        self.listener = Some(tokio::spawn(listen(events, name, owner, self.listeners)));
        Ok(())
    }

    fn stop_listening(&mut self) {
        if let Some(listener) = self.listener.take() {
            listener.abort();
        }
    }
}

/// Waits until `at`, or forever when there is nothing to wait for.
pub(super) async fn until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Waits for the next heartbeat, or forever when none is armed.
async fn next_beat(heartbeat: &mut Option<Interval>) {
    match heartbeat {
        Some(tick) => {
            tick.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// The listener: reads the component's commands, runs the owner's current handler on each and
/// hands the outcome back to the owner. Ends with the subscription (telling the owner the core
/// went away) or with the owner.
async fn listen(
    mut events: Client,
    name: String,
    owner: mpsc::WeakUnboundedSender<Command>,
    number: u64,
) {
    loop {
        let event = match events.next_event().await {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(component = %name, cause = %e, "command stream failed");
                break;
            }
        };
        let Event::Command {
            component,
            command,
            id,
        } = event
        else {
            continue;
        };
        if component != name {
            continue;
        }
        let Some(handler) = ask_weak(&owner, |reply| Command::Handler { reply }).await else {
            return;
        };
        let outcome = match handler {
            Some(handler) => match handler((*command).clone()).await {
                Ok(()) => Outcome {
                    id,
                    error: None,
                    unsupported: false,
                },
                Err(e) => Outcome {
                    id,
                    unsupported: matches!(e, CommandError::UnsupportedCommand(_)),
                    error: Some(e.to_string()),
                },
            },
            None => Outcome {
                id,
                error: Some(format!("no command handler for {}", command.action_name())),
                unsupported: true,
            },
        };
        let Some(owner) = owner.upgrade() else {
            return;
        };
        let _ = owner.send(Command::Outcome {
            component: name.clone(),
            command: *command,
            outcome,
        });
    }
    if let Some(owner) = owner.upgrade() {
        let _ = owner.send(Command::Lost { listener: number });
    }
}
