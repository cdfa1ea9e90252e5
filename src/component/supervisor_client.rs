//! The guide's `SupervisorClient` (§4.1): how a Rust component links itself to the core.
//!
//! It registers the component, reports its health, metrics and issues, keeps a heartbeat going so
//! the core knows it is alive, and carries out the [`SupervisorCommand`]s the core sends it (a
//! recovery action, a restart, a shutdown) through the handler the component installs, reporting
//! each outcome back. Two connections are used: one for requests (shared by the caller, the
//! heartbeat and the command task, one request at a time) and one subscribed to the component's
//! commands. It holds no supervision state of its own and never decides anything about healing:
//! the core does.
//!
//! ```no_run
//! use hms::SupervisorClient;
//! use hms::model::{ComponentCapabilities, HealingLevel, HealthStatus, SupervisorCommand};
//!
//! # async fn demo() -> Result<(), hms::component::SupervisorClientError> {
//! let supervisor = SupervisorClient::new("my-component");
//! supervisor.connect().await?;
//! supervisor
//!     .register_component(
//!         "my-component",
//!         ComponentCapabilities {
//!             can_restart: true,
//!             can_scale: false,
//!             can_failover: true,
//!             supported_recovery_actions: vec!["restart".into(), "clear_cache".into()],
//!             healing_level: HealingLevel::Advanced,
//!         },
//!     )
//!     .await?;
//! supervisor.set_command_handler(|command| match command {
//!     SupervisorCommand::Restart | SupervisorCommand::ClearCache => Ok(()),
//!     other => Err(format!("unsupported command {}", other.action_name())),
//! });
//! supervisor.start_command_handling().await?;
//! supervisor.report_health(HealthStatus::Healthy).await?;
//! # Ok(())
//! # }
//! ```

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::client::{Client, ClientError};
use crate::model::{ComponentCapabilities, HealthMetrics, HealthStatus, Issue, SupervisorCommand};
use crate::protocol::{Event, Request, Response, Topic};

/// How often the heartbeat reports health unless [`SupervisorClient::with_heartbeat`] says
/// otherwise (the guide: every 5-10 seconds). The core declares the component Failed after three
/// missed intervals.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(5);

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
    /// The connection or the core failed; the core's refusal says why.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The core answered something this client does not expect.
    #[error("unexpected answer from the supervisor: {0}")]
    Unexpected(String),
}

/// The component's command handler: carries out one command, `Err` says why it could not.
pub type CommandHandler = Arc<dyn Fn(SupervisorCommand) -> Result<(), String> + Send + Sync>;

/// State shared with the background tasks. Each `std::sync::Mutex` guards a tiny critical section
/// (a clone or a swap), never held across an `.await`; the request connection is behind a tokio
/// mutex because a request is awaited while it is held.
struct Shared {
    requests: tokio::sync::Mutex<Option<Client>>,
    /// The name the component registered under.
    registered: Mutex<Option<String>>,
    /// The health the heartbeat repeats: the last one reported.
    health: Mutex<HealthStatus>,
    handler: Mutex<Option<CommandHandler>>,
}

/// A component's link to the supervisor (the core).
pub struct SupervisorClient {
    id: String,
    socket: PathBuf,
    heartbeat: Duration,
    shared: Arc<Shared>,
    heartbeat_task: Mutex<Option<JoinHandle<()>>>,
    command_task: Mutex<Option<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The sections never panic midway; a poisoned lock still holds consistent data.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SupervisorClient {
    /// A client for component `id`, talking to the core at `hms::paths::socket_path(None)` (the
    /// `HMS_SOCKET` environment variable, else the default socket). Nothing is connected yet.
    pub fn new(id: &str) -> SupervisorClient {
        Self::with_socket(id, crate::paths::socket_path(None))
    }

    /// A client for a core listening on `socket`.
    pub fn with_socket(id: &str, socket: PathBuf) -> SupervisorClient {
        SupervisorClient {
            id: id.to_string(),
            socket,
            heartbeat: DEFAULT_HEARTBEAT,
            shared: Arc::new(Shared {
                requests: tokio::sync::Mutex::new(None),
                registered: Mutex::new(None),
                health: Mutex::new(HealthStatus::Healthy),
                handler: Mutex::new(None),
            }),
            heartbeat_task: Mutex::new(None),
            command_task: Mutex::new(None),
        }
    }

    /// Sets the heartbeat interval announced at registration (call before `register_component`).
    pub fn with_heartbeat(mut self, interval: Duration) -> SupervisorClient {
        self.heartbeat = interval.max(Duration::from_millis(10));
        self
    }

    /// The component id given to [`SupervisorClient::new`].
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Connects to the core (the request connection).
    pub async fn connect(&self) -> Result<(), SupervisorClientError> {
        let client = Client::connect(&self.socket, &self.id).await?;
        *self.shared.requests.lock().await = Some(client);
        Ok(())
    }

    async fn request(&self, request: Request) -> Result<Response, SupervisorClientError> {
        request_on(&self.shared, request).await
    }

    fn registered(&self) -> Result<String, SupervisorClientError> {
        lock(&self.shared.registered)
            .clone()
            .ok_or_else(|| SupervisorClientError::NotRegistered(self.id.clone()))
    }

    /// Registers the component with its capabilities and starts the heartbeat. Registering again
    /// (e.g. after a reconnect) updates it.
    pub async fn register_component(
        &self,
        name: &str,
        capabilities: ComponentCapabilities,
    ) -> Result<(), SupervisorClientError> {
        self.request(Request::Register {
            component: name.to_string(),
            capabilities,
            heartbeat_ms: Some(self.heartbeat.as_millis().min(u64::MAX as u128) as u64),
        })
        .await?;
        *lock(&self.shared.registered) = Some(name.to_string());
        self.start_heartbeat(name.to_string());
        Ok(())
    }

    fn start_heartbeat(&self, name: String) {
        let shared = self.shared.clone();
        let interval = self.heartbeat;
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let health = lock(&shared.health).clone();
                let beat = Request::ReportHealth {
                    component: name.clone(),
                    health,
                };
                if let Err(e) = request_on(&shared, beat).await {
                    tracing::warn!(component = %name, cause = %e, "heartbeat failed");
                }
            }
        });
        if let Some(old) = lock(&self.heartbeat_task).replace(task) {
            old.abort();
        }
    }

    /// Stops the automatic heartbeat (the component will be declared Failed after three missed
    /// intervals unless it reports by itself).
    pub fn stop_heartbeat(&self) {
        if let Some(task) = lock(&self.heartbeat_task).take() {
            task.abort();
        }
    }

    /// Reports the component's health (the heartbeat repeats the latest one).
    pub async fn report_health(&self, health: HealthStatus) -> Result<(), SupervisorClientError> {
        let name = self.registered()?;
        *lock(&self.shared.health) = health.clone();
        self.request(Request::ReportHealth {
            component: name,
            health,
        })
        .await
        .map(|_| ())
    }

    /// Reports the guide's metrics; the core applies its error-rate and response-time thresholds.
    pub async fn report_metrics(
        &self,
        metrics: HealthMetrics,
    ) -> Result<(), SupervisorClientError> {
        let name = self.registered()?;
        self.request(Request::ReportMetrics {
            component: name,
            metrics,
        })
        .await
        .map(|_| ())
    }

    /// Reports an issue (§2.2). Severity Error or worse is escalated by the core and, at
    /// Advanced/Full, healed: the recovery actions arrive as commands.
    pub async fn report_issue(&self, issue: &Issue) -> Result<(), SupervisorClientError> {
        self.request(Request::ReportIssue {
            issue: issue.clone(),
        })
        .await
        .map(|_| ())
    }

    /// Installs the handler that carries out supervisor commands.
    pub fn set_command_handler<F, E>(&self, handler: F)
    where
        F: Fn(SupervisorCommand) -> Result<(), E> + Send + Sync + 'static,
        E: std::fmt::Display,
    {
        let handler: CommandHandler =
            Arc::new(move |command| handler(command).map_err(|e| e.to_string()));
        *lock(&self.shared.handler) = Some(handler);
    }

    /// Subscribes to this component's commands and starts the task that runs the handler for each
    /// and reports the outcome. Returns once the subscription is in place.
    pub async fn start_command_handling(&self) -> Result<(), SupervisorClientError> {
        let name = self.registered()?;
        if lock(&self.shared.handler).is_none() {
            return Err(SupervisorClientError::NoHandler);
        }
        let mut events = Client::connect(&self.socket, &format!("{}:commands", self.id)).await?;
        events
            .subscribe(&[Topic::Commands], std::slice::from_ref(&name))
            .await?;
        let shared = self.shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let event = match events.next_event().await {
                    Ok(Some(e)) => e,
                    Ok(None) => return,
                    Err(e) => {
                        tracing::warn!(component = %name, cause = %e, "command stream failed");
                        return;
                    }
                };
                let Event::Command { component, command } = event else {
                    continue;
                };
                if component != name {
                    continue;
                }
                let Some(handler) = lock(&shared.handler).clone() else {
                    continue;
                };
                let error = handler(command.clone()).err();
                let outcome = Request::CommandOutcome {
                    component: name.clone(),
                    command,
                    error,
                };
                if let Err(e) = request_on(&shared, outcome).await {
                    tracing::warn!(component = %name, cause = %e, "cannot report a command's outcome");
                }
            }
        });
        if let Some(old) = lock(&self.command_task).replace(task) {
            old.abort();
        }
        Ok(())
    }

    /// Stops the heartbeat and the command task and closes both connections: the core sees the
    /// component go away (Exited, unless it had been asked to stop).
    pub async fn disconnect(&self) {
        self.stop_heartbeat();
        if let Some(task) = lock(&self.command_task).take() {
            task.abort();
        }
        *self.shared.requests.lock().await = None;
    }
}

impl Drop for SupervisorClient {
    fn drop(&mut self) {
        self.stop_heartbeat();
        if let Some(task) = lock(&self.command_task).take() {
            task.abort();
        }
    }
}

async fn request_on(shared: &Shared, request: Request) -> Result<Response, SupervisorClientError> {
    let mut guard = shared.requests.lock().await;
    let client = guard.as_mut().ok_or(SupervisorClientError::NotConnected)?;
    Ok(client.request(request).await?)
}
