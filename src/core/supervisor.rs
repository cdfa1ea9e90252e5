//! The supervisor: the one owner of every component's state.
//!
//! It is an actor. Connections send it [`Cmd::Request`]s with a oneshot for the answer; process
//! waiters, pipe readers and timers send it what happened. Decisions about restarts are made by the
//! healing engine's pure [`RestartGovernor`] from `now`; this loop only carries them out: it spawns,
//! signals, arms timers and publishes events. Timers carry the component's epoch, so a timer armed
//! for an earlier life of the component is ignored when it fires.
//!
//! It must not block: no file or socket I/O beyond spawning children, signalling them and reading a
//! few /proc files for `status` and metric thresholds. Probes and custom actions run in spawned
//! tasks that send their outcome back as commands.
//!
//! # Layout
//! - this file: the actor loop, requests, the process lifecycle and restarts through the governor;
//! - [`healing`]: probes, metric thresholds, log symptoms, recovery episodes and Full-level plans;
//! - [`linked`]: Rust components linked over the socket (register, reports, heartbeats, panels).

mod healing;
mod linked;
mod reload;

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use nix::sys::signal::Signal;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;

use super::process::{self, LogSink};
use super::procinfo;
use crate::config::{ComponentSpec, FleetConfig, FleetOrigin};
use crate::healing::detect;
use crate::healing::policy::{PolicyConfig, RestartDecision, RestartGovernor};
use crate::healing::probe::{ProbeKind, ProbeOutcome, ProbeTicket, ProbeTracker};
use crate::healing::recovery::RecoveryEpisode;
use crate::model::{
    ComponentKind, ComponentStatus, ExitInfo, HealingAction, HealingStatus, HealthMetrics,
    HealthStatus, Issue, LogStream, ProcessMetrics, RecoveryRecord, RestartPolicy, RunState,
    Severity, SupervisorCommand,
};
use crate::protocol::{ErrorCode, Event, NoticeLevel, Request, Response};
use crate::text::duration as format_duration;

/// An error answer: a code and a message for the operator.
pub type Refusal = (ErrorCode, String);
/// The answer to a request.
pub type Reply = oneshot::Sender<Result<Response, Refusal>>;

/// Identifies one client connection; [`NO_CONN`] for requests that come from the core itself.
pub type ConnId = u64;

/// The connection id of requests made by the core itself (signals, tests).
pub const NO_CONN: ConnId = 0;

/// What the supervisor receives.
pub enum Cmd {
    /// The config was read again for a reload (off the actor: reading a file may block).
    Reloaded {
        result: Result<FleetConfig, String>,
        reply: Reply,
    },
    /// A client's request, from connection `conn` (a linked component belongs to the connection
    /// that registered it).
    Request {
        request: Request,
        reply: Reply,
        conn: ConnId,
    },
    /// A child exited.
    Exited {
        name: String,
        generation: u64,
        status: std::process::ExitStatus,
    },
    /// A timer fired.
    Timer {
        name: String,
        epoch: u64,
        kind: TimerKind,
    },
    /// A log pattern matched a line of run `generation`.
    LogIssue { issue: Issue, generation: u64 },
    /// A probe started for the component's life `epoch` finished.
    ProbeResult {
        name: String,
        epoch: u64,
        kind: ProbeKind,
        ticket: ProbeTicket,
        outcome: ProbeOutcome,
    },
    /// A recovery action's command finished (`serial` names the attempt).
    ActionDone { name: String, serial: u64, ok: bool },
    /// The deadline of a recovery attempt (`serial`) has come.
    EpisodeDeadline { name: String, serial: u64 },
    /// A Full-level plan's wait for health may be over.
    PlanDeadline { plan: u64 },
    /// A client connection ended (its linked components are gone with it).
    ConnectionClosed { conn: ConnId },
}

/// What a timer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerKind {
    /// The backoff delay is over: restart.
    RestartDue,
    /// The stop grace period is over: SIGKILL the group.
    StopGrace,
    /// The process has stayed up for `min_uptime`.
    Stable,
    /// The breaker's cooldown is over: one half-open trial.
    TrialDue,
    /// A liveness or readiness probe is due.
    Probe(ProbeKind),
    /// A linked component's heartbeat deadline.
    Heartbeat,
}

/// Handles shared with the server.
#[derive(Clone)]
pub struct SupervisorHandle {
    pub tx: mpsc::UnboundedSender<Cmd>,
    pub bus: broadcast::Sender<Event>,
    /// How many connections subscribed to metrics (sampling is skipped when none did).
    pub metrics_subscribers: Arc<AtomicUsize>,
}

impl SupervisorHandle {
    /// Sends a request and waits for the answer.
    pub async fn request(&self, request: Request) -> Result<Response, Refusal> {
        self.request_from(NO_CONN, request).await
    }

    /// Sends a request made on connection `conn` and waits for the answer.
    pub async fn request_from(&self, conn: ConnId, request: Request) -> Result<Response, Refusal> {
        let (reply, rx) = oneshot::channel();
        if self
            .tx
            .send(Cmd::Request {
                request,
                reply,
                conn,
            })
            .is_err()
        {
            return Err((ErrorCode::ShuttingDown, "the core is shutting down".into()));
        }
        rx.await
            .unwrap_or_else(|_| Err((ErrorCode::ShuttingDown, "the core is shutting down".into())))
    }
}

/// Whether the operator wants the component running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Goal {
    Up,
    Down,
}

struct Component {
    spec: ComponentSpec,
    state: RunState,
    goal: Goal,
    pid: Option<u32>,
    /// Bumped on every spawn; exit notices for older generations are ignored.
    generation: u64,
    /// Bumped whenever armed timers become stale.
    epoch: u64,
    started_at: Option<SystemTime>,
    started: Option<Instant>,
    restarts: u32,
    last_exit: Option<ExitInfo>,
    governor: RestartGovernor,
    health: HealthStatus,
    last_issue: Option<Issue>,
    last_action: Option<HealingAction>,
    /// Start the process again as soon as the current one has exited (an operator's restart).
    restart_when_stopped: bool,
    /// Answered when the component is next stopped.
    stop_waiters: Vec<Reply>,
    /// Answered when the component is next running.
    start_waiters: Vec<Reply>,
    log: Arc<LogSink>,
    last_reading: Option<procinfo::Reading>,
    metrics: Option<ProcessMetrics>,
    kind: ComponentKind,
    /// Liveness and readiness trackers for the current run (restarted on each spawn).
    liveness: Option<ProbeTracker>,
    readiness: Option<ProbeTracker>,
    /// True when the component has no readiness probe or its probe passed in this run;
    /// dependents start only once it is running and ready.
    ready: bool,
    /// What the metric thresholds say (Healthy without thresholds).
    threshold_health: HealthStatus,
    /// The process is being killed by the healing path: carry this out when it has exited.
    after_kill: Option<RestartDecision>,
    /// The recovery episode in progress (Advanced/Full, or `heal` by hand).
    episode: Option<RecoveryEpisode>,
    /// Bumped for each attempt of an episode; deadlines and action results carry it.
    episode_serial: u64,
    /// A restart in this episode is a hard kill (the process is hung: SIGTERM would wait).
    episode_hard: bool,
    /// The attempt's command is still running: its effect is judged when it has finished.
    action_running: bool,
    /// The latest healing records, newest last.
    records: VecDeque<RecoveryRecord>,
    /// What a linked component reported last.
    reported: Option<HealthMetrics>,
    /// Set for linked components.
    linked: Option<linked::Linked>,
    /// Removed from the config by a reload: stopping, then gone from status and lookups.
    retired: bool,
    /// The process group of the run that just ended, until `stop` waiters are told the
    /// component stopped (they are told only once no process of it is left).
    ended_group: Option<u32>,
}

impl Component {
    /// A component from its spec, not started yet: a process from the config, or (with `kind`
    /// and `linked` set by the caller) a linked component.
    fn process(
        spec: &ComponentSpec,
        log_dir: &std::path::Path,
        bus: &broadcast::Sender<Event>,
    ) -> Component {
        Component {
            governor: RestartGovernor::new(PolicyConfig::from_spec(spec)),
            log: LogSink::new(
                &spec.name,
                spec.log_lines,
                &log_dir.join(format!("{}.log", spec.name)),
                bus.clone(),
            ),
            spec: spec.clone(),
            state: RunState::Stopped,
            goal: Goal::Up,
            pid: None,
            generation: 0,
            epoch: 0,
            started_at: None,
            started: None,
            restarts: 0,
            last_exit: None,
            health: HealthStatus::Healthy,
            last_issue: None,
            last_action: None,
            restart_when_stopped: false,
            stop_waiters: Vec::new(),
            start_waiters: Vec::new(),
            last_reading: None,
            metrics: None,
            kind: ComponentKind::Process,
            liveness: None,
            readiness: None,
            ready: true,
            threshold_health: HealthStatus::Healthy,
            after_kill: None,
            episode: None,
            episode_serial: 0,
            episode_hard: false,
            action_running: false,
            records: VecDeque::new(),
            reported: None,
            linked: None,
            retired: false,
            ended_group: None,
        }
    }

    fn uptime(&self, now: Instant) -> Duration {
        self.started
            .map_or(Duration::ZERO, |s| now.saturating_duration_since(s))
    }
}

/// The supervisor's state.
pub struct Supervisor {
    core_id: String,
    data_dir: PathBuf,
    components: Vec<Component>,
    index: HashMap<String, usize>,
    tx: mpsc::UnboundedSender<Cmd>,
    bus: broadcast::Sender<Event>,
    metrics_subscribers: Arc<AtomicUsize>,
    issues: VecDeque<Issue>,
    /// Answered once every component is stopped after a `Shutdown`.
    shutdown: Option<Vec<Reply>>,
    /// Components whose metric thresholds are sampled on the metrics tick (only these cost
    /// anything there).
    threshold_watch: Vec<usize>,
    /// Components whose status changed while handling the current command: their episodes and
    /// the plans waiting on them are fed once the command is handled (never re-entrantly).
    dirty: Vec<usize>,
    /// Full-level recovery plans being carried out.
    plans: Vec<healing::PlanRun>,
    next_plan: u64,
    /// Text panels of linked components, by (component, panel).
    panels: HashMap<(String, String), linked::PanelBuf>,
    /// Runs exec probes in a helper process (started with the first one).
    probe_runner: super::probe_runner::ProbeRunner,
    /// Process groups of components that ended during shutdown: the core waits for them to be
    /// gone before it exits, so `down` returns with nothing left running.
    ended_groups: Vec<u32>,
    /// The config that runs, and where to read it again.
    fleet: FleetConfig,
    origin: FleetOrigin,
}

/// How many recent issues the core keeps for `hms-console issues`.
const ISSUE_HISTORY: usize = 500;

/// How long a CPU sample stays fresh enough to answer `status` without reading /proc again.
const SAMPLE_FRESH: Duration = Duration::from_millis(250);

impl Supervisor {
    /// Builds the supervisor for a fleet. Nothing is started until [`Supervisor::run`].
    pub fn new(
        fleet: &FleetConfig,
        core_id: String,
        data_dir: PathBuf,
        origin: FleetOrigin,
    ) -> (Supervisor, SupervisorHandle, mpsc::UnboundedReceiver<Cmd>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (bus, _) = broadcast::channel(4096);
        let probe_runner = super::probe_runner::ProbeRunner::new(&core_id);
        let metrics_subscribers = Arc::new(AtomicUsize::new(0));
        let log_dir = crate::paths::log_dir(&data_dir);
        let components: Vec<Component> = fleet
            .components
            .iter()
            .map(|spec| Component::process(spec, &log_dir, &bus))
            .collect();
        let index = components
            .iter()
            .enumerate()
            .map(|(i, c)| (c.spec.name.clone(), i))
            .collect();
        let threshold_watch = components
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                let t = &c.spec.thresholds;
                t.cpu_percent.is_some() || t.rss_mb.is_some()
            })
            .map(|(i, _)| i)
            .collect();
        let handle = SupervisorHandle {
            tx: tx.clone(),
            bus: bus.clone(),
            metrics_subscribers: metrics_subscribers.clone(),
        };
        (
            Supervisor {
                core_id,
                data_dir,
                components,
                index,
                tx,
                bus,
                metrics_subscribers,
                issues: VecDeque::new(),
                shutdown: None,
                threshold_watch,
                dirty: Vec::new(),
                plans: Vec::new(),
                next_plan: 0,
                panels: HashMap::new(),
                probe_runner,
                ended_groups: Vec::new(),
                fleet: fleet.clone(),
                origin,
            },
            handle,
            rx,
        )
    }

    /// Starts the fleet and handles commands until a shutdown completes. Returns the process
    /// groups of the components that ended during the shutdown.
    pub async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Cmd>) -> Vec<u32> {
        for i in 0..self.components.len() {
            self.set_state(i, RunState::Starting);
        }
        self.start_ready();
        let mut metrics_tick = tokio::time::interval(Duration::from_secs(2));
        metrics_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                cmd = rx.recv() => {
                    let Some(cmd) = cmd else { return self.ended_groups };
                    self.handle(cmd);
                    if self.shutdown_complete() {
                        return self.ended_groups;
                    }
                }
                _ = metrics_tick.tick() => {
                    if self.metrics_subscribers.load(Ordering::Relaxed) > 0 {
                        self.publish_metrics();
                    }
                    self.check_all_thresholds();
                    self.settle();
                }
            }
        }
    }

    fn handle(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Request {
                request,
                reply,
                conn,
            } => self.on_request(request, reply, conn),
            Cmd::Exited {
                name,
                generation,
                status,
            } => self.on_exit(&name, generation, status),
            Cmd::Timer { name, epoch, kind } => self.on_timer(&name, epoch, kind),
            Cmd::LogIssue { issue, generation } => self.on_log_issue(issue, generation),
            Cmd::ProbeResult {
                name,
                epoch,
                kind,
                ticket,
                outcome,
            } => self.on_probe_result(&name, epoch, kind, ticket, outcome),
            Cmd::ActionDone { name, serial, ok } => self.on_action_done(&name, serial, ok),
            Cmd::EpisodeDeadline { name, serial } => self.on_episode_deadline(&name, serial),
            Cmd::PlanDeadline { plan } => self.on_plan_deadline(plan),
            Cmd::ConnectionClosed { conn } => self.on_connection_closed(conn),
            Cmd::Reloaded { result, reply } => {
                let answer = self.reloaded(result);
                let _ = reply.send(answer);
            }
        }
        self.settle();
    }

    fn find(&self, name: &str) -> Result<usize, Refusal> {
        self.index.get(name).copied().ok_or_else(|| {
            let mut known: Vec<&str> = self.index.keys().map(String::as_str).collect();
            known.sort();
            (
                ErrorCode::UnknownComponent,
                format!(
                    "unknown component '{name}'; known components: {}",
                    known.join(", ")
                ),
            )
        })
    }

    fn on_request(&mut self, request: Request, reply: Reply, conn: ConnId) {
        if self.shutdown.is_some()
            && !matches!(
                request,
                Request::Ping
                    | Request::Status { .. }
                    | Request::Logs { .. }
                    | Request::Issues { .. }
                    | Request::PanelText { .. }
            )
        {
            let _ = reply.send(Err((
                ErrorCode::ShuttingDown,
                "the core is shutting down".into(),
            )));
            return;
        }
        let answer = match request {
            Request::Ping => Ok(Response::Pong),
            Request::Status { component } => self.status(component.as_deref()),
            Request::Start { component } => return self.start_request(&component, reply),
            Request::Stop { component } => return self.stop_request(&component, reply),
            Request::Restart { component } => return self.restart_request(&component, reply),
            Request::Command { component, command } => {
                return self.command_request(&component, command, reply);
            }
            Request::Logs { component, lines } => self.find(&component).map(|i| Response::Logs {
                lines: self.components[i].log.tail(lines),
            }),
            Request::Issues { component, limit } => {
                let mut issues: Vec<Issue> = self
                    .issues
                    .iter()
                    .filter(|i| component.as_deref().is_none_or(|c| i.component == c))
                    .cloned()
                    .collect();
                let skip = issues.len().saturating_sub(limit);
                issues.drain(..skip);
                Ok(Response::Issues { issues })
            }
            Request::Shutdown => {
                self.begin_shutdown(reply);
                return;
            }
            Request::Heal { component } => return self.heal_request(&component, reply),
            Request::Reload => return self.reload_request(reply),
            Request::PanelInput {
                component,
                panel,
                line,
            } => {
                // Straight to the component that owns the pane; nothing here interprets it.
                let delivered = self.bus.send(Event::PanelInput {
                    component: component.clone(),
                    panel,
                    line,
                });
                match delivered {
                    Ok(_) => Ok(Response::Done {
                        message: format!("sent to {component}"),
                    }),
                    Err(_) => Err((
                        ErrorCode::Rejected,
                        format!("{component} is not listening for input"),
                    )),
                }
            }
            Request::Notify { level, message } => {
                self.notice(level, message);
                Ok(Response::Done {
                    message: "noted".into(),
                })
            }
            Request::Subscribe { .. } => Err((
                ErrorCode::Internal,
                "subscriptions are handled by the connection".into(),
            )),
            Request::Register {
                component,
                capabilities,
                heartbeat_ms,
            } => self.register(conn, &component, capabilities, heartbeat_ms),
            Request::ReportHealth { component, health } => self.report_health(&component, health),
            Request::ReportMetrics { component, metrics } => {
                self.report_metrics(&component, metrics)
            }
            Request::ReportIssue { issue } => self.report_issue(issue),
            Request::CommandOutcome {
                component,
                command,
                error,
            } => self.command_outcome(&component, &command, error),
            Request::PanelUpdate {
                component,
                panel,
                text,
                append,
            } => self.panel_update(&component, &panel, text, append),
            Request::PanelText { component, panel } => self.panel_text(&component, &panel),
        };
        let _ = reply.send(answer);
    }

    // ----- requests -----

    fn status(&mut self, component: Option<&str>) -> Result<Response, Refusal> {
        let selected: Vec<usize> = match component {
            Some(name) => vec![self.find(name)?],
            None => (0..self.components.len())
                .filter(|&i| self.index.get(&self.components[i].spec.name) == Some(&i))
                .collect(),
        };
        let now = Instant::now();
        let components = selected
            .into_iter()
            .map(|i| {
                self.sample(i, now, SAMPLE_FRESH);
                self.snapshot(i)
            })
            .collect();
        Ok(Response::Status { components })
    }

    fn start_request(&mut self, name: &str, reply: Reply) {
        let i = match self.find(name) {
            Ok(i) => i,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        if self.components[i].kind == ComponentKind::Linked {
            self.components[i].goal = Goal::Up;
            let _ = reply.send(self.send_command(i, SupervisorCommand::Start));
            return;
        }
        let c = &mut self.components[i];
        c.goal = Goal::Up;
        match c.state {
            RunState::Running => {
                let pid = c.pid.unwrap_or(0);
                let _ = reply.send(Ok(Response::Done {
                    message: format!("{name} is already running (pid {pid})"),
                }));
            }
            RunState::Stopping => {
                c.restart_when_stopped = true;
                c.start_waiters.push(reply);
            }
            RunState::Stopped
            | RunState::Starting
            | RunState::Backoff
            | RunState::Exited
            | RunState::BreakerOpen
            | RunState::Failed => {
                c.governor.reset();
                c.epoch += 1;
                c.start_waiters.push(reply);
                self.set_state(i, RunState::Starting);
                self.start_ready();
            }
        }
    }

    fn stop_request(&mut self, name: &str, reply: Reply) {
        let i = match self.find(name) {
            Ok(i) => i,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        self.components[i].goal = Goal::Down;
        self.components[i].restart_when_stopped = false;
        if self.components[i].kind == ComponentKind::Linked {
            let _ = reply.send(self.send_command(i, SupervisorCommand::Stop));
            return;
        }
        self.components[i].stop_waiters.push(reply);
        self.stop(i);
    }

    fn restart_request(&mut self, name: &str, reply: Reply) {
        let i = match self.find(name) {
            Ok(i) => i,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        let c = &mut self.components[i];
        // An operator's restart always clears the counters and closes the breaker.
        c.governor.reset();
        c.goal = Goal::Up;
        c.last_action = Some(HealingAction::Restart);
        if c.kind == ComponentKind::Linked {
            let _ = reply.send(self.send_command(i, SupervisorCommand::Restart));
            return;
        }
        c.start_waiters.push(reply);
        self.begin_restart(i, "restart requested by the operator");
    }

    /// Starts a fresh process for a component: a running one is stopped first (and started again
    /// once it has exited), any other is started as soon as its dependencies allow.
    fn begin_restart(&mut self, i: usize, why: &str) {
        match self.components[i].state {
            RunState::Running | RunState::Stopping => {
                self.components[i].restart_when_stopped = true;
                self.log(i, why);
                self.stop(i);
            }
            RunState::Stopped
            | RunState::Starting
            | RunState::Backoff
            | RunState::Exited
            | RunState::BreakerOpen
            | RunState::Failed => {
                self.components[i].epoch += 1;
                self.set_state(i, RunState::Starting);
                self.start_ready();
            }
        }
    }

    fn command_request(&mut self, name: &str, command: SupervisorCommand, reply: Reply) {
        match command {
            SupervisorCommand::Start => self.start_request(name, reply),
            SupervisorCommand::Stop | SupervisorCommand::Shutdown => self.stop_request(name, reply),
            SupervisorCommand::Restart => self.restart_request(name, reply),
            SupervisorCommand::ClearCache
            | SupervisorCommand::UpdateConfig(_)
            | SupervisorCommand::Action(_) => {
                let answer = self.find(name).and_then(|i| match self.components[i].kind {
                    ComponentKind::Linked => self.send_command(i, command),
                    ComponentKind::Process => self.run_action(i, command.action_name(), None),
                });
                let _ = reply.send(answer);
            }
        }
    }

    /// `hms-console heal X`: at Basic level a restart (as an operator's); at Advanced and Full a
    /// recovery episode through the component's recovery actions. An operator's request acts even
    /// when automatic healing is off: it is not automatic.
    fn heal_request(&mut self, name: &str, reply: Reply) {
        let i = match self.find(name) {
            Ok(i) => i,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        let issue =
            Issue::new(name, "manual_heal", Severity::Warning).with("requested_by", "operator");
        self.record_issue(issue.clone());
        match self.components[i].spec.healing_level {
            crate::model::HealingLevel::Basic => self.restart_request(name, reply),
            crate::model::HealingLevel::Advanced | crate::model::HealingLevel::Full => {
                let answer = self.start_episode(i, issue, true);
                let _ = reply.send(answer.map(|message| Response::Done { message }));
            }
        }
    }

    /// Carries out a configured custom action (a command or a signal). With a `serial` (a recovery
    /// attempt), [`Cmd::ActionDone`] reports when it has finished and whether it succeeded.
    fn run_action(
        &mut self,
        i: usize,
        action: &str,
        serial: Option<u64>,
    ) -> Result<Response, Refusal> {
        let name = self.components[i].spec.name.clone();
        let Some(cfg) = self.components[i].spec.actions.get(action).cloned() else {
            let known: Vec<&str> = self.components[i]
                .spec
                .actions
                .keys()
                .map(String::as_str)
                .collect();
            return Err((
                ErrorCode::Rejected,
                format!(
                    "{name} has no '{action}' action; its actions: {}",
                    if known.is_empty() {
                        "none besides start, stop, restart".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        };
        self.components[i].last_action = Some(HealingAction::Recover {
            name: action.to_string(),
        });
        if let Some(sig) = cfg.signal {
            let Some(pid) = self.components[i].pid else {
                return Err((ErrorCode::Rejected, format!("{name} is not running")));
            };
            process::signal_group(pid, sig.0)
                .map_err(|e| (ErrorCode::Internal, format!("cannot signal {name}: {e}")))?;
            self.log(
                i,
                &format!("action {action}: sent SIG{sig} to the process group"),
            );
            if let Some(serial) = serial {
                let _ = self.tx.send(Cmd::ActionDone {
                    name: name.clone(),
                    serial,
                    ok: true,
                });
            }
            self.publish(i);
            return Ok(Response::Done {
                message: format!("{action}: sent SIG{sig} to {name}"),
            });
        }
        let command = cfg
            .command
            .expect("validated: an action has a command or a signal");
        let argv = command.argv();
        let mut cmd = tokio::process::Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .envs(&self.components[i].spec.env)
            .env(process::COMPONENT_ENV, &name)
            .env(process::CORE_ID_ENV, &self.core_id)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        if let Some(pid) = self.components[i].pid {
            cmd.env("HMS_PID", pid.to_string());
        }
        if let Some(cwd) = &self.components[i].spec.cwd {
            cmd.current_dir(cwd);
        }
        let timeout = cfg.timeout.map_or(Duration::from_secs(30), |t| t.0);
        let sink = self.components[i].log.clone();
        let action_name = action.to_string();
        let done_tx = self.tx.clone();
        let done_name = name.clone();
        self.log(i, &format!("action {action}: running `{command}`"));
        self.publish(i);
        match cmd.spawn() {
            Ok(child) => {
                tokio::spawn(async move {
                    let ok = match tokio::time::timeout(timeout, child.wait_with_output()).await {
                        Ok(Ok(out)) => {
                            for line in String::from_utf8_lossy(&out.stdout)
                                .lines()
                                .chain(String::from_utf8_lossy(&out.stderr).lines())
                            {
                                sink.push(LogStream::System, format!("[{action_name}] {line}"));
                            }
                            sink.push(
                                LogStream::System,
                                format!("action {action_name} finished: {}", out.status),
                            );
                            out.status.success()
                        }
                        Ok(Err(e)) => {
                            sink.push(
                                LogStream::System,
                                format!("action {action_name} failed: {e}"),
                            );
                            false
                        }
                        Err(_) => {
                            sink.push(
                                LogStream::System,
                                format!("action {action_name} timed out after {timeout:?}"),
                            );
                            false
                        }
                    };
                    if let Some(serial) = serial {
                        let _ = done_tx.send(Cmd::ActionDone {
                            name: done_name,
                            serial,
                            ok,
                        });
                    }
                });
                Ok(Response::Done {
                    message: format!("{action}: started `{command}` for {name}"),
                })
            }
            Err(e) => Err((
                ErrorCode::Rejected,
                format!("{action}: cannot run `{command}`: {e}"),
            )),
        }
    }

    fn begin_shutdown(&mut self, reply: Reply) {
        tracing::info!("shutdown requested: stopping components in reverse dependency order");
        self.shutdown.get_or_insert_with(Vec::new).push(reply);
        for c in &mut self.components {
            c.goal = Goal::Down;
            c.restart_when_stopped = false;
        }
        self.stop_ready_for_shutdown();
    }

    /// During shutdown, stops every component none of whose dependents is still alive.
    fn stop_ready_for_shutdown(&mut self) {
        for i in 0..self.components.len() {
            let alive = |c: &Component| matches!(c.state, RunState::Running | RunState::Stopping);
            if !matches!(self.components[i].state, RunState::Running) {
                if !alive(&self.components[i]) && self.components[i].state != RunState::Stopped {
                    // Backing off, waiting or exited: nothing to signal.
                    self.components[i].epoch += 1;
                    self.set_state(i, RunState::Stopped);
                }
                continue;
            }
            let name = self.components[i].spec.name.clone();
            let dependents_alive = self
                .components
                .iter()
                .any(|d| d.spec.depends_on.contains(&name) && alive(d));
            if !dependents_alive {
                self.stop(i);
            }
        }
    }

    fn shutdown_complete(&mut self) -> bool {
        if self.shutdown.is_none() {
            return false;
        }
        if self
            .components
            .iter()
            .any(|c| matches!(c.state, RunState::Running | RunState::Stopping))
        {
            return false;
        }
        for reply in self.shutdown.take().unwrap_or_default() {
            let _ = reply.send(Ok(Response::Done {
                message: "all components stopped; the core is exiting".into(),
            }));
        }
        true
    }

    // ----- lifecycle -----

    /// Starts every component that wants to run and whose dependencies are running.
    fn start_ready(&mut self) {
        loop {
            let mut progressed = false;
            for i in 0..self.components.len() {
                if self.components[i].state != RunState::Starting
                    || self.components[i].goal != Goal::Up
                {
                    continue;
                }
                let deps_up = self.components[i].spec.depends_on.iter().all(|d| {
                    self.index.get(d).is_some_and(|&j| {
                        self.components[j].state == RunState::Running && self.components[j].ready
                    })
                });
                if deps_up {
                    self.spawn(i);
                    progressed = true;
                }
            }
            if !progressed {
                return;
            }
        }
    }

    fn spawn(&mut self, i: usize) {
        let tx = self.tx.clone();
        let c = &mut self.components[i];
        c.generation += 1;
        c.epoch += 1;
        let name = c.spec.name.clone();
        let generation = c.generation;
        let patterns = c.spec.log_patterns.clone();
        let issue_tx = self.tx.clone();
        let pattern_name = name.clone();
        let on_line: Arc<dyn Fn(&str) + Send + Sync> = Arc::new(move |line: &str| {
            if let Some(issue) = detect::match_log_line(&pattern_name, &patterns, line) {
                let _ = issue_tx.send(Cmd::LogIssue { issue, generation });
            }
        });
        match process::spawn(&c.spec, &self.core_id, c.log.clone(), on_line) {
            Ok(spawned) => {
                let now = Instant::now();
                c.pid = Some(spawned.pid);
                c.started = Some(now);
                c.started_at = Some(SystemTime::now());
                c.last_reading = None;
                c.metrics = None;
                c.health = HealthStatus::Healthy;
                c.threshold_health = HealthStatus::Healthy;
                c.after_kill = None;
                c.liveness = c
                    .spec
                    .liveness
                    .as_ref()
                    .map(|p| ProbeTracker::new(ProbeKind::Liveness, p, now));
                c.readiness = c
                    .spec
                    .readiness
                    .as_ref()
                    .map(|p| ProbeTracker::new(ProbeKind::Readiness, p, now));
                c.ready = c.readiness.is_none();
                let mut child = spawned.child;
                let wait_name = name.clone();
                tokio::spawn(async move {
                    match child.wait().await {
                        Ok(status) => {
                            let _ = tx.send(Cmd::Exited {
                                name: wait_name,
                                generation,
                                status,
                            });
                        }
                        Err(e) => {
                            tracing::error!(component = %wait_name, cause = %e, "waiting for the child failed")
                        }
                    }
                });
                let epoch = c.epoch;
                let min_uptime = c.spec.min_uptime;
                self.arm(&name, epoch, TimerKind::Stable, min_uptime);
                self.arm_probe(i, ProbeKind::Liveness);
                self.arm_probe(i, ProbeKind::Readiness);
                tracing::info!(component = %name, pid = spawned.pid, "started");
                self.log(i, &format!("started (pid {})", spawned.pid));
                self.set_state(i, RunState::Running);
                for w in std::mem::take(&mut self.components[i].start_waiters) {
                    let _ = w.send(Ok(Response::Done {
                        message: format!("{name} started (pid {})", spawned.pid),
                    }));
                }
            }
            Err(e) => {
                tracing::error!(component = %name, cause = %e, "cannot start");
                let command = c.spec.command.to_string();
                c.pid = None;
                c.started = None;
                c.health = HealthStatus::Failed(format!("cannot start: {e}"));
                self.log(i, &format!("cannot start `{command}`: {e}"));
                let issue = Issue::new(&name, "spawn_failed", Severity::Error)
                    .with("error", &e)
                    .with("command", &command);
                for w in std::mem::take(&mut self.components[i].start_waiters) {
                    let _ = w.send(Err((
                        ErrorCode::Rejected,
                        format!("{name} cannot start `{command}`: {e}"),
                    )));
                }
                self.record_issue(issue);
                self.set_state(i, RunState::Failed);
                self.after_failure(i, Duration::ZERO);
            }
        }
    }

    /// Asks a component to stop: its stop signal to the process group, SIGKILL after the grace.
    fn stop(&mut self, i: usize) {
        if self.components[i].kind == ComponentKind::Linked {
            // The core cannot stop a process it does not own: it asks, and forgets it.
            let _ = self.send_command(i, SupervisorCommand::Stop);
            self.components[i].epoch += 1;
            self.set_state(i, RunState::Stopped);
            self.stopped(i);
            return;
        }
        let c = &mut self.components[i];
        match c.state {
            RunState::Running => {
                let pid = c.pid.expect("a running component has a pid");
                let sig = c.spec.stop_signal;
                let grace = c.spec.stop_grace;
                let name = c.spec.name.clone();
                c.epoch += 1;
                let epoch = c.epoch;
                if let Err(e) = process::signal_group(pid, sig) {
                    tracing::warn!(component = %name, cause = %e, "cannot signal the process group");
                }
                self.log(
                    i,
                    &format!("stopping: {} to process group {pid}", sig.as_str()),
                );
                self.arm(&name, epoch, TimerKind::StopGrace, grace);
                self.set_state(i, RunState::Stopping);
            }
            RunState::Stopping => {}
            RunState::Stopped
            | RunState::Starting
            | RunState::Backoff
            | RunState::Exited
            | RunState::BreakerOpen
            | RunState::Failed => {
                c.epoch += 1;
                self.set_state(i, RunState::Stopped);
                self.stopped(i);
            }
        }
    }

    /// The component has stopped for good (for now): answer waiters, maybe start it again.
    fn stopped(&mut self, i: usize) {
        let name = self.components[i].spec.name.clone();
        let waiters = std::mem::take(&mut self.components[i].stop_waiters);
        let group = self.components[i].ended_group.take();
        if !waiters.is_empty() {
            // `stop` answers once nothing of the component is left running.
            tokio::spawn(async move {
                let groups: Vec<u32> = group.into_iter().collect();
                process::wait_groups_gone(&groups, Duration::from_secs(2)).await;
                for w in waiters {
                    let _ = w.send(Ok(Response::Done {
                        message: format!("{name} stopped"),
                    }));
                }
            });
        }
        self.retire_if_removed(i);
        if self.components[i].restart_when_stopped && self.shutdown.is_none() {
            self.components[i].restart_when_stopped = false;
            self.components[i].restarts += 1;
            self.set_state(i, RunState::Starting);
            self.start_ready();
        }
        if self.shutdown.is_some() {
            self.stop_ready_for_shutdown();
        }
    }

    fn on_exit(&mut self, name: &str, generation: u64, status: std::process::ExitStatus) {
        let Some(&i) = self.index.get(name) else {
            return;
        };
        if self.components[i].generation != generation {
            return;
        }
        use std::os::unix::process::ExitStatusExt;
        let exit = ExitInfo {
            code: status.code(),
            signal: status.signal(),
            at: SystemTime::now(),
        };
        let now = Instant::now();
        let pid = self.components[i].pid.take();
        // No grandchild outlives its component's main process.
        if let Some(pid) = pid {
            let _ = process::signal_group(pid, Signal::SIGKILL);
            if self.shutdown.is_some() {
                self.ended_groups.push(pid);
            }
        }
        self.components[i].ended_group = pid;
        let uptime = self.components[i].uptime(now);
        self.components[i].epoch += 1;
        self.components[i].last_exit = Some(exit.clone());
        self.components[i].started = None;
        self.components[i].metrics = None;
        tracing::info!(component = %name, %exit, uptime_ms = uptime.as_millis() as u64, "exited");
        self.log(
            i,
            &format!("exited: {exit} after {}", format_duration(uptime)),
        );
        let state = self.components[i].state;
        let healing_kill = self.components[i].after_kill.take();
        if self.components[i].goal == Goal::Down
            || self.components[i].restart_when_stopped
            || (state == RunState::Stopping && healing_kill.is_none())
        {
            self.set_state(i, RunState::Stopped);
            self.stopped(i);
            return;
        }
        if let Some(decision) = healing_kill {
            // Killed by the healing path: its exit is no new failure; carry out what was decided.
            self.apply_decision(i, decision);
            return;
        }
        let wants_restart = match self.components[i].spec.restart {
            RestartPolicy::Permanent => true,
            RestartPolicy::Transient => !exit.is_success(),
            RestartPolicy::Temporary => false,
        };
        if !exit.is_success() {
            let issue = detect::crash_issue(name, &exit, uptime);
            self.components[i].health = HealthStatus::Failed(format!("crashed: {exit}"));
            self.record_issue(issue);
        }
        if !wants_restart {
            self.set_state(i, RunState::Exited);
            return;
        }
        self.after_failure(i, uptime);
    }

    /// Asks the governor what to do after a failure, and does it.
    fn after_failure(&mut self, i: usize, uptime: Duration) {
        let decision = self.components[i]
            .governor
            .on_failure(Instant::now(), uptime);
        self.apply_decision(i, decision);
    }

    /// Carries out the governor's decision for a component that is not running.
    fn apply_decision(&mut self, i: usize, decision: RestartDecision) {
        let now = Instant::now();
        let name = self.components[i].spec.name.clone();
        match decision {
            RestartDecision::RestartNow => {
                self.components[i].governor.on_restarted(now);
                self.components[i].restarts += 1;
                self.components[i].last_action = Some(HealingAction::Restart);
                self.set_state(i, RunState::Starting);
                self.start_ready();
            }
            RestartDecision::RestartAfter(delay) => {
                let epoch = self.components[i].epoch;
                self.log(
                    i,
                    &format!("restarting in {} (backoff)", format_duration(delay)),
                );
                self.arm(&name, epoch, TimerKind::RestartDue, delay);
                self.set_state(i, RunState::Backoff);
            }
            RestartDecision::BreakerOpened { cooldown } => {
                let epoch = self.components[i].epoch;
                let intensity = self.components[i].spec.intensity;
                let message = format!(
                    "{name}: circuit breaker open after more than {} restarts in {}; next trial in {}",
                    intensity.max_restarts,
                    format_duration(intensity.window.0),
                    format_duration(cooldown)
                );
                self.components[i].last_action = Some(HealingAction::Escalate {
                    reason: message.clone(),
                });
                self.components[i].health =
                    HealthStatus::Failed("restarting too often: circuit breaker open".into());
                self.log(i, &message);
                self.arm(&name, epoch, TimerKind::TrialDue, cooldown);
                self.set_state(i, RunState::BreakerOpen);
                let issue =
                    detect::breaker_issue(&name, cooldown, self.components[i].last_issue.as_ref())
                        .with("max_restarts", intensity.max_restarts)
                        .with("window", format_duration(intensity.window.0));
                self.record_issue(issue);
                self.notice(NoticeLevel::Error, message);
            }
            RestartDecision::NoAction { reason } => {
                self.components[i].last_action = Some(HealingAction::NoAction {
                    reason: reason.clone(),
                });
                self.log(i, &format!("not restarted: {reason}"));
                self.set_state(i, RunState::Exited);
            }
        }
    }

    fn on_timer(&mut self, name: &str, epoch: u64, kind: TimerKind) {
        let Some(&i) = self.index.get(name) else {
            return;
        };
        if self.components[i].epoch != epoch {
            return;
        }
        let now = Instant::now();
        match kind {
            TimerKind::RestartDue => {
                if self.components[i].state == RunState::Backoff {
                    self.components[i].governor.on_restarted(now);
                    self.components[i].restarts += 1;
                    self.components[i].last_action = Some(HealingAction::Restart);
                    self.set_state(i, RunState::Starting);
                    self.start_ready();
                }
            }
            TimerKind::StopGrace => {
                if let (RunState::Stopping, Some(pid)) =
                    (self.components[i].state, self.components[i].pid)
                {
                    self.log(i, "grace period over: SIGKILL to the process group");
                    let _ = process::signal_group(pid, Signal::SIGKILL);
                }
            }
            TimerKind::Stable => {
                if self.components[i].state == RunState::Running {
                    self.components[i].governor.on_stable(now);
                    self.publish(i);
                }
            }
            TimerKind::TrialDue => {
                if self.components[i].state == RunState::BreakerOpen
                    && self.components[i].governor.on_trial_due(now)
                {
                    self.log(i, "circuit breaker half-open: one trial restart");
                    self.components[i].governor.on_restarted(now);
                    self.components[i].restarts += 1;
                    self.components[i].last_action = Some(HealingAction::Restart);
                    self.set_state(i, RunState::Starting);
                    self.start_ready();
                }
            }
            TimerKind::Probe(kind) => self.on_probe_due(i, kind),
            TimerKind::Heartbeat => self.on_heartbeat_due(i),
        }
    }

    fn arm(&self, name: &str, epoch: u64, kind: TimerKind, after: Duration) {
        self.arm_at(name, epoch, kind, Instant::now() + after);
    }

    fn arm_at(&self, name: &str, epoch: u64, kind: TimerKind, at: Instant) {
        let tx = self.tx.clone();
        let name = name.to_string();
        tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            let _ = tx.send(Cmd::Timer { name, epoch, kind });
        });
    }

    /// Sends `cmd` back to the loop at `at` (deadlines of episodes and plans).
    fn send_at(&self, at: Instant, cmd: Cmd) {
        let tx = self.tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            let _ = tx.send(cmd);
        });
    }

    // ----- observation -----

    fn record_issue(&mut self, issue: Issue) {
        if let Some(&i) = self.index.get(&issue.component) {
            self.components[i].last_issue = Some(issue.clone());
            self.publish(i);
        }
        tracing::info!(component = %issue.component, issue_type = %issue.issue_type, severity = %issue.severity, "issue");
        if self.issues.len() == ISSUE_HISTORY {
            self.issues.pop_front();
        }
        self.issues.push_back(issue.clone());
        let _ = self.bus.send(Event::Issue { issue });
    }

    fn notice(&self, level: NoticeLevel, message: String) {
        let _ = self.bus.send(Event::Notice {
            level,
            message,
            at: SystemTime::now(),
        });
    }

    fn log(&self, i: usize, text: &str) {
        self.components[i]
            .log
            .push(LogStream::System, text.to_string());
    }

    fn set_state(&mut self, i: usize, to: RunState) {
        let from = self.components[i].state;
        self.components[i].state = to;
        if from != to {
            let c = &self.components[i];
            let _ = self.bus.send(Event::StateChanged {
                component: c.spec.name.clone(),
                from,
                to,
                pid: c.pid,
                at: SystemTime::now(),
            });
        }
        self.publish(i);
    }

    /// Sends the component's full status to subscribers, and marks it for [`Supervisor::settle`].
    fn publish(&mut self, i: usize) {
        if !self.dirty.contains(&i) {
            self.dirty.push(i);
        }
        if self.bus.receiver_count() > 0 {
            let _ = self.bus.send(Event::Component {
                status: Box::new(self.snapshot(i)),
            });
        }
    }

    fn sample(&mut self, i: usize, now: Instant, fresh: Duration) {
        let c = &mut self.components[i];
        let (Some(pid), Some(started)) = (c.pid, c.started) else {
            c.metrics = None;
            return;
        };
        if c.last_reading
            .is_some_and(|r| now.saturating_duration_since(Instant::from_std(r.at)) < fresh)
        {
            return;
        }
        if let Some(reading) = procinfo::read(pid) {
            c.metrics = Some(procinfo::metrics(
                &reading,
                c.last_reading.as_ref(),
                started.into_std(),
            ));
            c.last_reading = Some(reading);
        }
    }

    fn publish_metrics(&mut self) {
        let now = Instant::now();
        for i in 0..self.components.len() {
            self.sample(i, now, SAMPLE_FRESH);
            if let Some(metrics) = self.components[i].metrics.clone() {
                let _ = self.bus.send(Event::Metrics {
                    component: self.components[i].spec.name.clone(),
                    metrics,
                    at: SystemTime::now(),
                });
            }
        }
    }

    /// The component's health as the operator sees it, from its state and every detector.
    fn health_of(&self, i: usize) -> HealthStatus {
        let c = &self.components[i];
        match c.state {
            RunState::Running => {
                let not_ready = if c.ready {
                    HealthStatus::Healthy
                } else {
                    HealthStatus::Degraded("not ready".into())
                };
                HealthStatus::combine([c.health.clone(), c.threshold_health.clone(), not_ready])
            }
            RunState::Stopped => HealthStatus::Healthy,
            RunState::Starting => HealthStatus::Degraded("starting".into()),
            RunState::Stopping => HealthStatus::Degraded("stopping".into()),
            RunState::Backoff => HealthStatus::Critical(
                c.health
                    .message()
                    .map_or("waiting to restart".into(), |m| format!("{m}; backing off")),
            ),
            RunState::Exited => match &c.last_exit {
                Some(e) if !e.is_success() => HealthStatus::Failed(format!("exited: {e}")),
                _ => match c.kind {
                    ComponentKind::Linked => c.health.clone(),
                    ComponentKind::Process => HealthStatus::Healthy,
                },
            },
            RunState::BreakerOpen | RunState::Failed => c
                .health
                .clone()
                .worse(HealthStatus::Failed("not running".into())),
        }
    }

    fn snapshot(&self, i: usize) -> ComponentStatus {
        let c = &self.components[i];
        let now = Instant::now();
        let health = self.health_of(i);
        let next_trial_at = c
            .governor
            .next_trial_at()
            .map(|t| SystemTime::now() + t.saturating_duration_since(now));
        ComponentStatus {
            name: c.spec.name.clone(),
            kind: c.kind,
            state: c.state,
            health,
            pid: c.pid,
            started_at: c.started_at.filter(|_| {
                c.pid.is_some() || (c.kind == ComponentKind::Linked && c.state == RunState::Running)
            }),
            restarts: c.restarts,
            metrics: c.metrics.clone(),
            reported: c.reported.clone(),
            last_exit: c.last_exit.clone(),
            depends_on: c.spec.depends_on.clone(),
            restart: c.spec.restart,
            recovery_actions: c.spec.recovery_actions.clone(),
            healing: HealingStatus {
                level: c.spec.healing_level,
                auto_healing: c.spec.auto_healing,
                breaker: c.governor.breaker(),
                backoff: c.governor.current_backoff(),
                next_trial_at,
                last_issue: c.last_issue.clone(),
                last_action: c.last_action.clone(),
            },
        }
    }
}
