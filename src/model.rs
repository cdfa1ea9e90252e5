//! The integration guide's data types, as plain serde values.
//!
//! Everything here is data: no I/O, no async, no imports from elsewhere in the crate. The protocol,
//! the core and the clients all speak in these types, so a change here is a protocol change: keep
//! additions backwards compatible (new optional fields, new variants) and never rename a variant.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// How much self-healing a component gets (guide §2.1 step 1).
///
/// - `Basic`: restart on failure, with exponential backoff when it keeps failing.
/// - `Advanced`: Basic plus liveness/readiness probes, metric thresholds, a circuit breaker and a
///   choice among the component's own recovery actions.
/// - `Full`: Advanced plus recovery plans coordinated across dependent components and escalation
///   when the component's own actions fail.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum HealingLevel {
    #[default]
    Basic,
    Advanced,
    Full,
}

impl fmt::Display for HealingLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HealingLevel::Basic => "basic",
            HealingLevel::Advanced => "advanced",
            HealingLevel::Full => "full",
        })
    }
}

/// How serious an [`Issue`] is. Ordered, so `issue.severity >= Severity::Error` reads as the guide
/// writes it (§7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Error,
    Critical,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        })
    }
}

/// A component's health (guide §2.1 step 4 and §7).
///
/// The variants are ordered from best to worst; [`HealthStatus::worse`] combines two statuses the way
/// §7's `check_health` does: the worse one wins, and between equals the first one's message is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", content = "message", rename_all = "snake_case")]
pub enum HealthStatus {
    Healthy,
    Degraded(String),
    Critical(String),
    Failed(String),
}

impl HealthStatus {
    /// 0 for Healthy up to 3 for Failed.
    pub fn rank(&self) -> u8 {
        match self {
            HealthStatus::Healthy => 0,
            HealthStatus::Degraded(_) => 1,
            HealthStatus::Critical(_) => 2,
            HealthStatus::Failed(_) => 3,
        }
    }

    /// The worse of two statuses (§7): Failed beats Critical beats Degraded beats Healthy. When both
    /// are equally bad, `self` is kept.
    pub fn worse(self, other: HealthStatus) -> HealthStatus {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }

    /// Combines any number of statuses with [`HealthStatus::worse`]; no statuses is Healthy.
    pub fn combine(statuses: impl IntoIterator<Item = HealthStatus>) -> HealthStatus {
        statuses
            .into_iter()
            .fold(HealthStatus::Healthy, HealthStatus::worse)
    }

    pub fn is_healthy(&self) -> bool {
        matches!(self, HealthStatus::Healthy)
    }

    /// The message carried by a non-healthy status.
    pub fn message(&self) -> Option<&str> {
        match self {
            HealthStatus::Healthy => None,
            HealthStatus::Degraded(m) | HealthStatus::Critical(m) | HealthStatus::Failed(m) => {
                Some(m)
            }
        }
    }

    /// One lower-case word: healthy, degraded, critical, failed.
    pub fn word(&self) -> &'static str {
        match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded(_) => "degraded",
            HealthStatus::Critical(_) => "critical",
            HealthStatus::Failed(_) => "failed",
        }
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.message() {
            None => f.write_str(self.word()),
            Some(m) => write!(f, "{}: {}", self.word(), m),
        }
    }
}

/// A component's metrics as the guide reports them (§2.1 step 4). Units: `cpu_usage` in percent of
/// one core, `memory_usage` in MiB, `response_time` in milliseconds, `error_rate` in percent,
/// `throughput` in operations per second.
///
/// Where the guide's literal differs, for Rust's sake: `custom_metrics` is a `BTreeMap` (the guide
/// writes `HashMap::new()`; a sorted map keeps the JSON stable): write `BTreeMap::new()`, or
/// `..HealthMetrics::default()` for every field not given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthMetrics {
    #[serde(with = "rfc3339")]
    pub timestamp: SystemTime,
    pub cpu_usage: f64,
    pub memory_usage: f64,
    pub response_time: f64,
    pub error_rate: f64,
    pub throughput: f64,
    #[serde(default)]
    pub custom_metrics: BTreeMap<String, f64>,
}

impl Default for HealthMetrics {
    fn default() -> Self {
        HealthMetrics {
            timestamp: SystemTime::UNIX_EPOCH,
            cpu_usage: 0.0,
            memory_usage: 0.0,
            response_time: 0.0,
            error_rate: 0.0,
            throughput: 0.0,
            custom_metrics: BTreeMap::new(),
        }
    }
}

/// A problem detected in a component (§2.1 step 4): a crash, a failed probe, a threshold crossed, a
/// log line that matched a pattern, or an error a linked component reported itself.
///
/// Where the guide's literal differs, for Rust's sake: `context` is a `BTreeMap<String, String>`
/// (the guide's `error.context()` is unspecified; a sorted map keeps issues comparable and their
/// JSON stable), and [`Issue::new`] fills `id` (a UUID v4) and `detected_at` so a component needs
/// no `uuid` dependency. The guide's struct literal still works with `context: BTreeMap::new()`.
///
/// An issue that local healing already dealt with carries [`Issue::HEALED_BY`]; the supervisor
/// records and shows it but does not heal it again (§7 heals locally, then reports).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Issue {
    /// A UUID v4.
    pub id: String,
    pub component: String,
    /// A short machine-friendly kind, e.g. `crash`, `liveness_failed`, `oom`.
    pub issue_type: String,
    pub severity: Severity,
    #[serde(with = "rfc3339")]
    pub detected_at: SystemTime,
    #[serde(default)]
    pub context: BTreeMap<String, String>,
}

impl Issue {
    /// A new issue with a fresh id, detected now.
    pub fn new(component: &str, issue_type: &str, severity: Severity) -> Issue {
        Issue {
            id: uuid::Uuid::new_v4().to_string(),
            component: component.to_string(),
            issue_type: issue_type.to_string(),
            severity,
            detected_at: SystemTime::now(),
            context: BTreeMap::new(),
        }
    }

    /// Adds one context entry.
    pub fn with(mut self, key: &str, value: impl fmt::Display) -> Issue {
        self.context.insert(key.to_string(), value.to_string());
        self
    }

    /// The context key that says local healing already dealt with the issue; its value is the
    /// [`HealingAction`] that worked (its `Display`, e.g. `recover: clear_cache`).
    /// `SupervisorClient::report_issue` sets it when the component's own `SelfHealing` recovered
    /// after the issue was detected.
    pub const HEALED_BY: &'static str = "healed_by";

    /// Marks the issue as healed locally by `action` (see [`Issue::HEALED_BY`]).
    pub fn healed_by(self, action: &HealingAction) -> Issue {
        self.with(Issue::HEALED_BY, action)
    }

    /// What healed the issue locally, if anything did.
    pub fn healed_locally(&self) -> Option<&str> {
        self.context.get(Issue::HEALED_BY).map(String::as_str)
    }

    /// The context key naming the other components an issue touches (§2.2's cross-component
    /// issues), comma-separated: the supervisor plans their recovery together at Full level.
    ///
    /// A context entry rather than a field of its own so that the guide's `Issue { id, component,
    /// issue_type, severity, detected_at, context }` literal (§7) still compiles; it travels in
    /// the JSON as `context.affected_components`, and a missing key is no affected component.
    pub const AFFECTED_COMPONENTS: &'static str = "affected_components";

    /// Says which other components the issue touches (see [`Issue::AFFECTED_COMPONENTS`]).
    pub fn with_affected<S: AsRef<str>>(self, components: impl IntoIterator<Item = S>) -> Issue {
        let names: Vec<String> = components
            .into_iter()
            .map(|c| c.as_ref().trim().to_string())
            .filter(|c| !c.is_empty())
            .collect();
        self.with(Issue::AFFECTED_COMPONENTS, names.join(","))
    }

    /// The other components the issue touches, in the order given, without the issue's own
    /// component and without repeats.
    pub fn affected_components(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for name in self
            .context
            .get(Issue::AFFECTED_COMPONENTS)
            .map(String::as_str)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
        {
            if !name.is_empty() && name != self.component && !out.iter().any(|o| o == name) {
                out.push(name.to_string());
            }
        }
        out
    }
}

/// What a component can do, as it tells the supervisor when it registers (§4.1 step 2).
///
/// Where the guide's literal differs, for Rust's sake: `supported_recovery_actions` is a
/// `Vec<String>` (the guide writes `vec!["restart", "clear_cache", "reconnect"]`, a `Vec<&str>`,
/// which a serde type sent over the socket cannot hold); write `vec!["restart".into(), …]`, or
/// build the list with [`ComponentCapabilities::actions`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentCapabilities {
    pub can_restart: bool,
    pub can_scale: bool,
    pub can_failover: bool,
    /// Names of recovery actions, e.g. `restart`, `clear_cache`, `reconnect`.
    pub supported_recovery_actions: Vec<String>,
    pub healing_level: HealingLevel,
}

impl ComponentCapabilities {
    /// The guide's `vec!["restart", "clear_cache"]` as the `Vec<String>` the field holds.
    pub fn actions<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Vec<String> {
        names.into_iter().map(Into::into).collect()
    }
}

/// A command the supervisor sends to a component (§4.1 step 4), and what an operator's line in the
/// actions pane becomes.
///
/// What a linked component (one that registered with `SupervisorClient`) receives for each
/// operator command:
///
/// | operator | delivered |
/// |---|---|
/// | `stop c`, `shutdown c`, `down` (and a reload that removes it) | [`SupervisorCommand::Shutdown`] |
/// | `restart c` (when it registered `can_restart`) | [`SupervisorCommand::Restart`] |
/// | `clear-cache c` | [`SupervisorCommand::ClearCache`] |
/// | `config c key=value …` | [`SupervisorCommand::UpdateConfig`] |
/// | `action c NAME` | [`SupervisorCommand::from_action`]`(NAME)`, e.g. `Action("reconnect")` |
/// | `start c` | [`SupervisorCommand::Start`] |
/// | `heal c`, and healing after an issue of severity Error | each recovery action in turn, as `from_action` maps it |
///
/// So the guide's handler, with arms for `Restart`, `ClearCache`, `UpdateConfig` and `Shutdown`
/// and `_ => Err(UnsupportedCommand(command))`, handles the operator's stop. `Stop` is delivered
/// only when a component lists `stop` among its own recovery actions. The guide's
/// `Error::UnsupportedCommand(command)` is `CommandError::UnsupportedCommand(command)` in
/// `hms::component::supervisor_client`; `UpdateConfig` carries a `BTreeMap` (sorted, for stable
/// JSON) where the guide leaves the map type open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", content = "args", rename_all = "snake_case")]
pub enum SupervisorCommand {
    Start,
    Stop,
    Restart,
    ClearCache,
    /// New configuration values, key to value.
    UpdateConfig(BTreeMap<String, String>),
    /// A graceful shutdown: the component finishes what it is doing and exits; it is not restarted.
    Shutdown,
    /// A named recovery action from the component's `recovery_actions`, e.g. `reconnect`.
    Action(String),
}

impl SupervisorCommand {
    /// The action name used in config files and the actions pane, e.g. `clear_cache`.
    pub fn action_name(&self) -> &str {
        match self {
            SupervisorCommand::Start => "start",
            SupervisorCommand::Stop => "stop",
            SupervisorCommand::Restart => "restart",
            SupervisorCommand::ClearCache => "clear_cache",
            SupervisorCommand::UpdateConfig(_) => "update_config",
            SupervisorCommand::Shutdown => "shutdown",
            SupervisorCommand::Action(name) => name,
        }
    }

    /// The command for a recovery action name (`restart`, `clear_cache`, or any other name).
    pub fn from_action(name: &str) -> SupervisorCommand {
        match name {
            "start" => SupervisorCommand::Start,
            "stop" => SupervisorCommand::Stop,
            "restart" => SupervisorCommand::Restart,
            "clear_cache" | "clear-cache" => SupervisorCommand::ClearCache,
            "shutdown" => SupervisorCommand::Shutdown,
            other => SupervisorCommand::Action(other.to_string()),
        }
    }
}

/// One step of a recovery plan the supervisor carries out across components (§4.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum RecoveryStep {
    ComponentAction {
        component: String,
        action: SupervisorCommand,
    },
    WaitForHealth {
        component: String,
        #[serde(with = "duration_ms")]
        timeout: Duration,
    },
    NotifyOperator {
        message: String,
    },
}

/// The guide writes `RecoveryStep::NotifyOperator(message)`, a tuple variant; ours has a named
/// field because the steps travel as internally tagged JSON (`{"step": "notify_operator",
/// "message": …}`), which cannot carry a bare string. Match it with `NotifyOperator { message }`
/// and build it with [`RecoveryStep::notify_operator`].
impl RecoveryStep {
    /// `NotifyOperator { message }`, from anything that becomes a `String`.
    pub fn notify_operator(message: impl Into<String>) -> RecoveryStep {
        RecoveryStep::NotifyOperator {
            message: message.into(),
        }
    }
}

/// OTP's supervision strategies, for a group of components (or the whole fleet) at Full level:
/// which components a failure's recovery plan restarts.
///
/// - `one_for_one`: only the failed component (today's restart, no plan);
/// - `rest_for_one`: the failed component and every component that depends on it, directly or
///   not: the dependents are stopped (last started first), the failed component is restarted and
///   waited for healthy, then each dependent is started in dependency order and waited for;
/// - `one_for_all`: every component of the group, the same way (stopped in reverse start order,
///   then started again in start order, each waited for healthy before the next).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryStrategy {
    OneForOne,
    OneForAll,
    #[default]
    RestForOne,
}

impl fmt::Display for RecoveryStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecoveryStrategy::OneForOne => "one_for_one",
            RecoveryStrategy::OneForAll => "one_for_all",
            RecoveryStrategy::RestForOne => "rest_for_one",
        })
    }
}

/// Where a step of a recovery plan is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// Not reached yet (or never, when the plan ended before it).
    Pending,
    /// Being carried out: an action waiting for its answer, or a wait for health.
    Running,
    Done,
    /// The action could not be carried out; the step's `detail` says why.
    Failed,
    /// Its wait (or the plan's overall timeout) ran out.
    TimedOut,
}

/// Where a recovery plan is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanState {
    Running,
    /// Every step was carried out.
    Done,
    /// A step failed or its wait for health ran out; the operator was notified.
    Failed,
    /// The plan's overall timeout passed: it was cancelled and the operator notified.
    TimedOut,
}

impl PlanState {
    pub fn word(&self) -> &'static str {
        match self {
            PlanState::Running => "running",
            PlanState::Done => "done",
            PlanState::Failed => "failed",
            PlanState::TimedOut => "timed out",
        }
    }
}

/// One step of a plan with how it went. In JSON the step's own fields come first, its kind
/// named by `step` (`component_action`, `wait_for_health`, `notify_operator`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanStep {
    #[serde(flatten)]
    pub step: RecoveryStep,
    pub state: StepState,
    /// How long it took (or has taken so far), once started.
    #[serde(default, with = "opt_duration_ms")]
    pub duration: Option<Duration>,
    /// Why it failed, or what it did besides the obvious.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A recovery plan the supervisor carries out (§4.2), while it runs and afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanStatus {
    /// Counts up from 1 in one core's life.
    pub id: u64,
    /// The component whose issue started the plan.
    pub component: String,
    /// The issue that started it (its type and id).
    pub issue_type: String,
    pub issue_id: String,
    pub strategy: RecoveryStrategy,
    pub state: PlanState,
    /// Every component the plan acts on, in the order it starts them.
    pub affected: Vec<String>,
    pub steps: Vec<PlanStep>,
    /// Later issues of components in the plan that joined it instead of starting another.
    #[serde(default)]
    pub joined: Vec<String>,
    #[serde(with = "rfc3339")]
    pub started_at: SystemTime,
    /// How long it ran (so far, while it runs).
    #[serde(with = "duration_ms")]
    pub duration: Duration,
    /// Why it failed or was cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Degraded and critical levels for one figure a linked component reports.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ReportLimit {
    #[serde(default)]
    pub degraded: Option<f64>,
    #[serde(default)]
    pub critical: Option<f64>,
}

/// The thresholds a linked component asks the core to apply to the metrics it reports (its
/// `error_rate` in percent and `response_time` in milliseconds), declared when it registers; a
/// figure left out keeps the core's built-in levels.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ReportThresholds {
    #[serde(default)]
    pub error_rate: Option<ReportLimit>,
    #[serde(default)]
    pub response_time_ms: Option<ReportLimit>,
}

/// What a healing attempt did (§2.1 step 4, `heal()`'s result).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum HealingAction {
    /// The component was restarted.
    Restart,
    /// One of the component's recovery actions was carried out.
    Recover { name: String },
    /// Nothing was done automatically; the reason says why (healing disabled, breaker open, backing
    /// off, nothing to do).
    NoAction { reason: String },
    /// The engine gave up on its own actions and handed the issue to the supervisor / operator.
    Escalate { reason: String },
}

impl fmt::Display for HealingAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HealingAction::Restart => f.write_str("restart"),
            HealingAction::Recover { name } => write!(f, "recover: {name}"),
            HealingAction::NoAction { reason } => write!(f, "no action: {reason}"),
            HealingAction::Escalate { reason } => write!(f, "escalate: {reason}"),
        }
    }
}

/// The record of one healing attempt (§5.1 step 3), kept so the knowledge registry can learn which
/// recovery works.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecoveryRecord {
    pub issue: Issue,
    pub strategy: String,
    pub successful: bool,
    pub action: HealingAction,
    #[serde(with = "rfc3339")]
    pub timestamp: SystemTime,
    #[serde(with = "duration_ms")]
    pub duration: Duration,
}

/// A recurring issue and the symptoms that give it away (§5.1 step 3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuePattern {
    pub issue_type: String,
    pub symptoms: Vec<String>,
    pub severity: Severity,
}

/// OTP's restart types: when a process that ended is started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RestartPolicy {
    /// Always restarted.
    #[default]
    Permanent,
    /// Restarted only when it ended abnormally (non-zero exit or killed by a signal).
    Transient,
    /// Never restarted.
    Temporary,
}

impl fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RestartPolicy::Permanent => "permanent",
            RestartPolicy::Transient => "transient",
            RestartPolicy::Temporary => "temporary",
        })
    }
}

/// Where a component is in its life, as the supervisor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Not running, and not going to be started until asked.
    Stopped,
    /// Waiting for its dependencies or being spawned.
    Starting,
    Running,
    /// Asked to stop; waiting for it to exit within its grace period.
    Stopping,
    /// Waiting out a backoff delay before the next restart.
    Backoff,
    /// Ended and, by its restart policy, not restarted.
    Exited,
    /// Restarted too often: automatic healing is paused until the breaker's half-open trial.
    BreakerOpen,
    /// Could not be started at all (e.g. the program does not exist).
    Failed,
}

impl RunState {
    pub fn word(&self) -> &'static str {
        match self {
            RunState::Stopped => "stopped",
            RunState::Starting => "starting",
            RunState::Running => "running",
            RunState::Stopping => "stopping",
            RunState::Backoff => "backoff",
            RunState::Exited => "exited",
            RunState::BreakerOpen => "breaker open",
            RunState::Failed => "failed",
        }
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// How a process ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitInfo {
    /// The exit code, when it exited by itself.
    pub code: Option<i32>,
    /// The signal number, when a signal ended it.
    pub signal: Option<i32>,
    #[serde(with = "rfc3339")]
    pub at: SystemTime,
}

impl ExitInfo {
    /// True for exit code 0 only (OTP's `normal`).
    pub fn is_success(&self) -> bool {
        self.code == Some(0)
    }
}

impl fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.signal) {
            (Some(c), _) => write!(f, "exit {c}"),
            (None, Some(s)) => {
                let name = nix::sys::signal::Signal::try_from(s)
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_else(|_| format!("signal {s}"));
                f.write_str(&name)
            }
            (None, None) => f.write_str("ended"),
        }
    }
}

/// Resource use of a running process, read from /proc.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessMetrics {
    /// Percent of one core since the previous sample (or since start, for the first sample).
    pub cpu_percent: f64,
    pub rss_bytes: u64,
    pub open_fds: u32,
}

/// The state of a circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    #[default]
    Closed,
    Open,
    HalfOpen,
}

/// What the healing engine is doing for one component, for display.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HealingStatus {
    pub level: HealingLevel,
    pub auto_healing: bool,
    pub breaker: BreakerState,
    /// The delay before the next automatic restart, when backing off.
    #[serde(default, with = "opt_duration_ms")]
    pub backoff: Option<Duration>,
    /// When the breaker's half-open trial is due.
    #[serde(default, with = "opt_rfc3339")]
    pub next_trial_at: Option<SystemTime>,
    pub last_issue: Option<Issue>,
    pub last_action: Option<HealingAction>,
    /// Which strategy the last recovery episode tried first, and why, e.g. `knowledge:
    /// clear_cache cured db-connection-lost 7 of the last 8 times`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
}

/// Is the component a process the core runs, or a Rust service that registered itself?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ComponentKind {
    #[default]
    Process,
    Linked,
}

/// One row of `hms-console status`: everything the operator sees about a component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentStatus {
    pub name: String,
    pub kind: ComponentKind,
    pub state: RunState,
    pub health: HealthStatus,
    pub pid: Option<u32>,
    /// When the current process started.
    #[serde(default, with = "opt_rfc3339")]
    pub started_at: Option<SystemTime>,
    /// Restarts since the core started (or since the operator last reset them).
    pub restarts: u32,
    pub metrics: Option<ProcessMetrics>,
    /// The guide's metrics, as last reported by a linked component.
    #[serde(default)]
    pub reported: Option<HealthMetrics>,
    pub last_exit: Option<ExitInfo>,
    pub depends_on: Vec<String>,
    pub restart: RestartPolicy,
    pub recovery_actions: Vec<String>,
    pub healing: HealingStatus,
}

impl ComponentStatus {
    /// Seconds the current process has been up, measured against `now`.
    pub fn uptime(&self, now: SystemTime) -> Option<Duration> {
        match self.state {
            RunState::Running | RunState::Stopping => {
                self.started_at.and_then(|s| now.duration_since(s).ok())
            }
            _ => None,
        }
    }
}

/// One line a component wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub component: String,
    #[serde(with = "rfc3339")]
    pub at: SystemTime,
    pub stream: LogStream,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogStream {
    Stdout,
    Stderr,
    /// Written by the core about the component (started, exited, restarted …).
    System,
}

/// What a tmux pane shows: one panel process of `hms-console panel <kind>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PanelKind {
    /// CPU, memory, error rate, throughput with sparklines (guide §3.1 "Component Metrics").
    Metrics,
    /// The tail of a component's output (guide §3.1 "Component Logs").
    Logs,
    /// Health with icon, pid, uptime, restarts, backoff / breaker, last issue and action.
    Status,
    /// The operator's input line and the list of available actions.
    Actions,
    /// One row per component (guide §3.2 "System Health").
    SystemHealth,
    /// A compact tile for one component in the overview grid (guide §3.2 component panels).
    Component,
    /// Free text a linked component writes with `update_panel` / `append_to_panel`.
    Text,
    /// What the knowledge registry learned recently (guide §5).
    Knowledge,
    /// The MAC task bus's agents: state, queue, in flight, done, failed, latency (guide §6).
    Agents,
}

impl PanelKind {
    pub const ALL: [PanelKind; 9] = [
        PanelKind::Metrics,
        PanelKind::Logs,
        PanelKind::Status,
        PanelKind::Actions,
        PanelKind::SystemHealth,
        PanelKind::Component,
        PanelKind::Text,
        PanelKind::Knowledge,
        PanelKind::Agents,
    ];

    /// The name used in layout files and on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            PanelKind::Metrics => "metrics",
            PanelKind::Logs => "logs",
            PanelKind::Status => "status",
            PanelKind::Actions => "actions",
            PanelKind::SystemHealth => "system_health",
            PanelKind::Component => "component",
            PanelKind::Text => "text",
            PanelKind::Knowledge => "knowledge",
            PanelKind::Agents => "agents",
        }
    }
}

/// What an agent can do, as it tells the MAC task bus when it registers (§6.1 step 2).
///
/// The guide writes the lists as `vec!["data-analysis", …]`; a serde type sent over the socket
/// holds `String`s, so write `vec!["data-analysis".into(), …]` or build a list with
/// [`AgentCapabilities::names`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AgentCapabilities {
    /// Task types the agent's handler processes, e.g. `execute-query`.
    pub can_process: Vec<String>,
    /// What the agent needs from other agents (e.g. `storage`). While no registered agent
    /// provides one of them, the agent is registered but waiting, and receives no task.
    #[serde(default)]
    pub requires: Vec<String>,
    /// What the agent offers to others (e.g. `database-access`).
    #[serde(default)]
    pub provides: Vec<String>,
    #[serde(default)]
    pub healing_level: HealingLevel,
}

impl AgentCapabilities {
    /// The guide's `vec!["data-analysis", "user-requests"]` as the `Vec<String>` a field holds.
    pub fn names<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Vec<String> {
        names.into_iter().map(Into::into).collect()
    }
}

/// How urgent a task is: an agent's queue serves higher priorities first, and tasks of one
/// priority in the order they came.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum TaskPriority {
    Low,
    #[default]
    Normal,
    High,
    Critical,
}

impl TaskPriority {
    /// Every priority, lowest first.
    pub const ALL: [TaskPriority; 4] = [
        TaskPriority::Low,
        TaskPriority::Normal,
        TaskPriority::High,
        TaskPriority::Critical,
    ];

    /// The priority named `name` (`low`, `normal`, `high`, `critical`; any case).
    pub fn parse(name: &str) -> Option<TaskPriority> {
        TaskPriority::ALL
            .into_iter()
            .find(|p| p.to_string().eq_ignore_ascii_case(name.trim()))
    }
}

impl fmt::Display for TaskPriority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TaskPriority::Low => "low",
            TaskPriority::Normal => "normal",
            TaskPriority::High => "high",
            TaskPriority::Critical => "critical",
        })
    }
}

/// A piece of work one agent asks another to do (§6.1 step 4). The payload is the requester's
/// own text (the guide's is JSON made with `serde_json::to_string`); the answer is the handler's
/// result string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MacTask {
    pub task_type: String,
    #[serde(default)]
    pub payload: String,
    #[serde(default)]
    pub priority: TaskPriority,
    /// The longest the requester waits, queueing included; the core answers `timed out` then,
    /// whatever the agent does.
    #[serde(with = "duration_ms")]
    pub timeout: Duration,
}

/// The payload of a `coordinate-healing` task for the core's `supervisor-agent` (§6.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealingCoordination {
    pub issue: Issue,
    /// The agents (components) the issue touches besides its own component.
    #[serde(default)]
    pub affected_agents: Vec<String>,
    pub priority: TaskPriority,
}

/// The task priority an issue of `severity` deserves (§6.2): info low, warning normal, error
/// high, critical critical.
pub fn map_severity_to_priority(severity: Severity) -> TaskPriority {
    match severity {
        Severity::Info => TaskPriority::Low,
        Severity::Warning => TaskPriority::Normal,
        Severity::Error => TaskPriority::High,
        Severity::Critical => TaskPriority::Critical,
    }
}

/// Whether an agent receives tasks now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AgentState {
    /// Registered, its requirements met: tasks are delivered to it.
    Ready,
    /// Some of its `requires` are provided by no registered agent; its tasks wait in its queue.
    WaitingFor { missing: Vec<String> },
    /// The agent is also a supervised component that is not running (crashed, backing off, its
    /// breaker open …); its tasks wait in its queue until the component runs again.
    ComponentDown { component_state: RunState },
}

impl fmt::Display for AgentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentState::Ready => f.write_str("ready"),
            AgentState::WaitingFor { missing } => write!(f, "waiting for: {}", missing.join(", ")),
            AgentState::ComponentDown { component_state } => {
                write!(f, "component {component_state}")
            }
        }
    }
}

/// An agent as `hms-console mac agents` and the agents panel show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentStatus {
    pub name: String,
    pub capabilities: AgentCapabilities,
    pub state: AgentState,
    /// Tasks waiting in its queue.
    pub queued: usize,
    /// Tasks delivered and not yet answered.
    pub in_flight: usize,
    /// How many tasks it may work on at once.
    pub concurrency: usize,
    /// How many tasks its queue holds before it answers `busy`.
    pub queue_capacity: usize,
    /// Tasks it answered with a result.
    pub done: u64,
    /// Tasks that failed with it: its handler's errors, timeouts, a disconnect.
    pub failed: u64,
    /// The mean time from request to result of its done tasks (`mean_latency_us` on the wire:
    /// round trips take well under a millisecond).
    #[serde(default, rename = "mean_latency_us", with = "opt_duration_us")]
    pub mean_latency: Option<Duration>,
    /// True for agents built into the core (`supervisor-agent`).
    #[serde(default)]
    pub builtin: bool,
}

/// Why a task produced no result. Each is an error of its own for the requester.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "failure", rename_all = "snake_case")]
pub enum TaskFailure {
    /// No agent of that name is registered.
    NoSuchAgent { agent: String, known: Vec<String> },
    /// No registered agent processes the task type (capability routing).
    NoCapableAgent {
        task_type: String,
        known: Vec<String>,
    },
    /// The agent does not process this task type (it said so, or its capabilities do).
    UnsupportedTask {
        agent: String,
        task_type: String,
        processes: Vec<String>,
    },
    /// The agent's queue is full.
    Busy { agent: String, queued: usize },
    /// No result within the task's timeout.
    TimedOut {
        #[serde(with = "duration_ms")]
        after: Duration,
    },
    /// The agent went away while the task was delivered to it (or queued, with no other agent
    /// able to take it).
    AgentDisconnected { agent: String },
    /// The agent's handler returned an error; `error` is its text.
    HandlerFailed { agent: String, error: String },
}

impl fmt::Display for TaskFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |names: &[String]| {
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        };
        match self {
            TaskFailure::NoSuchAgent { agent, known } => {
                write!(f, "no such agent '{agent}' — known: {}", list(known))
            }
            TaskFailure::NoCapableAgent { task_type, known } => write!(
                f,
                "no agent processes '{task_type}' — known agents: {}",
                list(known)
            ),
            TaskFailure::UnsupportedTask {
                agent,
                task_type,
                processes,
            } => write!(
                f,
                "agent '{agent}' cannot process '{task_type}' (it processes: {})",
                list(processes)
            ),
            TaskFailure::Busy { agent, queued } => write!(
                f,
                "agent '{agent}' is busy: its queue is full ({queued} tasks waiting)"
            ),
            TaskFailure::TimedOut { after } => write!(
                f,
                "timed out: no result within {}",
                humantime::format_duration(*after)
            ),
            TaskFailure::AgentDisconnected { agent } => {
                write!(f, "agent '{agent}' disconnected before answering")
            }
            TaskFailure::HandlerFailed { agent, error } => {
                write!(f, "agent '{agent}' failed: {error}")
            }
        }
    }
}

/// How a task ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum TaskOutcome {
    /// The handler's result string.
    Completed {
        result: String,
    },
    Failed {
        failure: TaskFailure,
    },
}

/// One recent task, for `hms-console mac tasks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRecord {
    pub id: u64,
    /// The agent it was routed to (empty when it could not be routed).
    pub agent: String,
    pub task_type: String,
    pub priority: TaskPriority,
    /// Who asked (the requesting connection's client name).
    pub requester: String,
    #[serde(with = "rfc3339")]
    pub requested_at: SystemTime,
    /// From request to outcome (`took_us` on the wire).
    #[serde(rename = "took_us", with = "duration_us")]
    pub took: Duration,
    pub outcome: TaskOutcome,
}

/// Durations too short for milliseconds (task latencies) are whole microseconds on the wire.
pub mod duration_us {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_micros().min(u64::MAX as u128) as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_micros(u64::deserialize(d)?))
    }
}

/// Optional [`duration_us`]: whole microseconds or null.
pub mod opt_duration_us {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_micros().min(u64::MAX as u128) as u64)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_micros))
    }
}

/// Times on the wire are RFC 3339 strings in UTC with milliseconds (`2026-11-25T11:30:08.123Z`),
/// readable by people and by `jq` alike.
pub mod rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::SystemTime;

    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_rfc3339_millis(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_rfc3339_weak(&text).map_err(serde::de::Error::custom)
    }
}

/// Optional times on the wire: an RFC 3339 string or null.
pub mod opt_rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::SystemTime;

    pub fn serialize<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.collect_str(&humantime::format_rfc3339_millis(*t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| humantime::parse_rfc3339_weak(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// Durations on the wire are whole milliseconds.
pub mod duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis().min(u64::MAX as u128) as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// Optional durations on the wire are whole milliseconds or null.
pub mod opt_duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_millis().min(u64::MAX as u128) as u64)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worse_of_two_follows_section_seven() {
        let d = HealthStatus::Degraded("slow".into());
        let c = HealthStatus::Critical("disk".into());
        let f = HealthStatus::Failed("gone".into());
        assert_eq!(HealthStatus::Healthy.worse(d.clone()), d);
        assert_eq!(d.clone().worse(c.clone()), c);
        assert_eq!(c.clone().worse(f.clone()), f);
        assert_eq!(f.clone().worse(HealthStatus::Healthy), f);
        assert_eq!(
            HealthStatus::Degraded("first".into()).worse(HealthStatus::Degraded("second".into())),
            HealthStatus::Degraded("first".into())
        );
        assert_eq!(
            HealthStatus::combine([d.clone(), f.clone(), c]),
            f,
            "failed beats everything"
        );
        assert_eq!(HealthStatus::combine([]), HealthStatus::Healthy);
    }

    #[test]
    fn severity_orders_so_error_and_above_escalate() {
        assert!(Severity::Critical >= Severity::Error);
        assert!(Severity::Error >= Severity::Error);
        assert!(Severity::Warning < Severity::Error);
        assert!(Severity::Info < Severity::Warning);
    }

    #[test]
    fn severity_maps_to_the_priority_of_its_rank() {
        assert_eq!(map_severity_to_priority(Severity::Info), TaskPriority::Low);
        assert_eq!(
            map_severity_to_priority(Severity::Warning),
            TaskPriority::Normal
        );
        assert_eq!(
            map_severity_to_priority(Severity::Error),
            TaskPriority::High
        );
        assert_eq!(
            map_severity_to_priority(Severity::Critical),
            TaskPriority::Critical
        );
        assert!(TaskPriority::Critical > TaskPriority::High);
        assert_eq!(TaskPriority::parse("HIGH"), Some(TaskPriority::High));
        assert_eq!(TaskPriority::parse("urgent"), None);
    }

    #[test]
    fn recovery_action_names_round_trip() {
        for name in [
            "start",
            "stop",
            "restart",
            "clear_cache",
            "shutdown",
            "reconnect",
        ] {
            assert_eq!(SupervisorCommand::from_action(name).action_name(), name);
        }
    }
}
