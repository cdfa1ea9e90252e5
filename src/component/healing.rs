//! The guide's self-healing API for a linked Rust component (§2.1): `UnifiedHealingConfig`,
//! `ImplementationConfig`, `HealingFactory::create` and the `SelfHealing` trait.
//!
//! The engine behind the trait is the one the core uses for its processes: [`RestartGovernor`]
//! for backoff, restart intensity and the circuit breaker, [`RecoveryEpisode`] for the choice of
//! recovery action and healing timeouts, and [`crate::healing::detect`] for thresholds and heartbeats. This
//! module is the async shell around them: it runs the component's registered handlers and waits for
//! health, and holds its state behind one small lock that is never held across an `.await`. It does
//! not talk to the supervisor itself (see [`ImplementationConfig`] for what is wired and what is not).
//!
//! ```no_run
//! use std::collections::HashMap;
//! use hms::{HealingFactory, HealingLevel, ImplementationConfig, UnifiedHealingConfig};
//! use hms::component::healing::action;
//!
//! # async fn demo() -> Result<(), hms::component::healing::HealingError> {
//! let healing = HealingFactory::create(UnifiedHealingConfig {
//!     component_id: "my-component".to_string(),
//!     level: HealingLevel::Advanced,
//!     auto_healing_enabled: true,
//!     circuit_breaker_enabled: true,
//!     healing_timeout: 30,
//!     implementation_config: ImplementationConfig::Standalone(HashMap::from([(
//!         "recovery_actions".to_string(),
//!         "clear_cache,restart".to_string(),
//!     )])),
//! });
//! healing.on_action("clear_cache", action(|| async { Ok(()) }));
//! healing.on_action("restart", action(|| async { Ok(()) }));
//! healing.initialize().await?;
//! let taken = healing.heal().await?;
//! println!("healing: {taken}");
//! # Ok(())
//! # }
//! ```

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::config::{self, Threshold, ThresholdsConfig};
use crate::healing::detect::{self, HeartbeatMonitor};
use crate::healing::policy::{PolicyConfig, RestartDecision, RestartGovernor};
use crate::healing::recovery::{self, EpisodeStep, EpisodeUpdate, RecoveryEpisode};
use crate::model::{
    BreakerState, HealingAction, HealingLevel, HealingStatus, HealthMetrics, HealthStatus, Issue,
    RecoveryRecord, Severity,
};

/// A boxed, sendable future: what the object-safe [`SelfHealing`] methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Carries out one recovery action (e.g. `clear_cache`, `restart`) for a linked component. `Err`
/// says why it could not be done; the engine then tries the next action.
pub type ActionHandler = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// The component's own view of its health, asked after each recovery action.
pub type HealthCheck = Arc<dyn Fn() -> BoxFuture<'static, HealthStatus> + Send + Sync>;

/// Wraps an async closure as an [`ActionHandler`].
pub fn action<F, Fut>(f: F) -> ActionHandler
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    Arc::new(move || Box::pin(f()))
}

/// Wraps an async closure as a [`HealthCheck`].
pub fn health_check<F, Fut>(f: F) -> HealthCheck
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HealthStatus> + Send + 'static,
{
    Arc::new(move || Box::pin(f()))
}

/// The guide's healing configuration (§2.1 step 2).
#[derive(Debug, Clone, PartialEq)]
pub struct UnifiedHealingConfig {
    pub component_id: String,
    /// What healing does (see [`HealingLevel`]): Basic restarts (through the `restart` handler)
    /// with backoff; Advanced also applies metric thresholds, the circuit breaker and the
    /// component's recovery actions in order; Full also returns coordination plans for dependents
    /// and escalates when its own actions fail.
    pub level: HealingLevel,
    /// False: issues and metrics are recorded and health is reported, but `heal` takes no action.
    pub auto_healing_enabled: bool,
    /// False: the breaker never opens; past the restart-intensity limit healing waits the full
    /// backoff cap each time instead.
    pub circuit_breaker_enabled: bool,
    /// Seconds each recovery action has to bring the component back to Healthy.
    pub healing_timeout: u64,
    pub implementation_config: ImplementationConfig,
}

/// Where healing decisions are made, with settings as strings.
///
/// Recognised keys (all optional; durations take units, e.g. `"500ms"`):
/// `recovery_actions` (comma-separated, in order; default `restart`), `min_uptime`,
/// `backoff_initial`, `backoff_max`, `backoff_factor`, `max_restarts`, `intensity_window`,
/// `breaker_cooldown`, `breaker_max_cooldown`, `heartbeat_interval` (Failed after 3 intervals
/// without `report_metrics`), `health_poll` (how often health is checked while waiting for an
/// action's effect; default 250ms), thresholds `cpu_percent_degraded|critical`,
/// `memory_mb_degraded|critical`, `error_rate_degraded|critical`,
/// `response_time_ms_degraded|critical`, and `supervisor_socket` (for the modes that talk to the
/// supervisor). An unknown key or a bad value makes `initialize` fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImplementationConfig {
    /// Heals in-process only: detection, decisions and actions all happen in the component; the
    /// supervisor learns nothing from this engine.
    Standalone(HashMap<String, String>),
    /// Defers decisions to the supervisor over the control socket: the component reports issues
    /// and metrics and carries out the commands it receives. **Not wired yet**: `initialize`
    /// returns [`HealingError::Unsupported`]. Use Hybrid meanwhile.
    Distributed(HashMap<String, String>),
    /// Acts locally as Standalone does and reports issues, actions and recovery records to the
    /// supervisor. **The reporting half is not wired yet**: the engine keeps them (see
    /// [`SelfHealing::issues`], [`SelfHealing::recovery_records`]) and logs them with `tracing`,
    /// and the linked component forwards them with its supervisor client.
    Hybrid(HashMap<String, String>),
}

impl ImplementationConfig {
    fn settings(&self) -> &HashMap<String, String> {
        match self {
            ImplementationConfig::Standalone(m)
            | ImplementationConfig::Distributed(m)
            | ImplementationConfig::Hybrid(m) => m,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            ImplementationConfig::Standalone(_) => "standalone",
            ImplementationConfig::Distributed(_) => "distributed",
            ImplementationConfig::Hybrid(_) => "hybrid",
        }
    }
}

/// What the healing API can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HealingError {
    /// A key of `implementation_config` is unknown or its value cannot be used.
    #[error("implementation_config key '{key}': {message}")]
    InvalidConfig { key: String, message: String },
    /// The requested implementation is not available in this build.
    #[error("{0}")]
    Unsupported(String),
    /// A method other than `initialize` was called before `initialize` succeeded.
    #[error("self-healing for '{0}' is not initialized: call initialize() first")]
    NotInitialized(String),
}

/// The guide's self-healing interface (§2.1 steps 3-4), object safe so `Box<dyn SelfHealing>`
/// works: async methods return [`BoxFuture`].
pub trait SelfHealing: Send + Sync {
    /// Checks the configuration and starts watching (heartbeats count from here).
    fn initialize(&self) -> BoxFuture<'_, Result<(), HealingError>>;
    /// The health as the engine sees it: the registered health check, metric thresholds,
    /// heartbeats and the breaker, combined worst-first (§7).
    fn check_health(&self) -> BoxFuture<'_, Result<HealthStatus, HealingError>>;
    /// Heals the last reported issue (or the current ill health) and returns the action taken:
    /// `NoAction` with a reason when healing is disabled, the breaker is open or nothing is wrong;
    /// `Escalate` when every action failed or the breaker just opened.
    fn heal(&self) -> BoxFuture<'_, Result<HealingAction, HealingError>>;
    /// Records metrics (checked against thresholds) and counts as a heartbeat.
    fn report_metrics(&self, metrics: HealthMetrics) -> BoxFuture<'_, Result<(), HealingError>>;
    /// Records an issue; the next `heal` works on it.
    fn report_issue(&self, issue: Issue) -> BoxFuture<'_, Result<(), HealingError>>;
    /// Registers how a recovery action is carried out (`restart` included).
    fn on_action(&self, name: &str, handler: ActionHandler);
    /// Registers the component's own health check, asked after each action.
    fn on_health_check(&self, check: HealthCheck);
    /// What the engine is doing, for display.
    fn status(&self) -> HealingStatus;
    /// Every healing attempt so far (most recent last, at most 1000).
    fn recovery_records(&self) -> Vec<RecoveryRecord>;
    /// Issues reported or raised so far (most recent last, at most 1000).
    fn issues(&self) -> Vec<Issue>;
}

/// Creates the healing implementation a config asks for (§2.1 step 3).
pub struct HealingFactory;

impl HealingFactory {
    pub fn create(config: UnifiedHealingConfig) -> Box<dyn SelfHealing> {
        Box::new(LocalHealing::new(config))
    }
}

/// How many issues and records are kept.
const HISTORY: usize = 1000;

/// Settings parsed from the implementation config's map.
#[derive(Debug, Clone)]
struct Settings {
    policy: PolicyConfig,
    recovery_actions: Vec<String>,
    thresholds: ThresholdsConfig,
    heartbeat_interval: Option<Duration>,
    health_poll: Duration,
}

fn parse_settings(cfg: &UnifiedHealingConfig) -> Result<Settings, HealingError> {
    let bad = |key: &str, message: String| HealingError::InvalidConfig {
        key: key.to_string(),
        message,
    };
    let mut policy = PolicyConfig {
        circuit_breaker: cfg.circuit_breaker_enabled,
        auto_healing: cfg.auto_healing_enabled,
        ..PolicyConfig::default()
    };
    let mut s = Settings {
        policy: policy.clone(),
        recovery_actions: vec![recovery::RESTART.to_string()],
        thresholds: ThresholdsConfig::default(),
        heartbeat_interval: None,
        health_poll: Duration::from_millis(250),
    };
    let mut keys: Vec<(&String, &String)> = cfg.implementation_config.settings().iter().collect();
    keys.sort();
    for (key, value) in keys {
        let dur = || config::parse_duration(value).map_err(|m| bad(key, m));
        let num = || {
            value
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| bad(key, format!("\"{value}\" is not a number")))
        };
        let set = |t: &mut Option<Threshold>, critical: bool, x: f64| {
            let th = t.get_or_insert(Threshold {
                degraded: None,
                critical: None,
            });
            if critical {
                th.critical = Some(x);
            } else {
                th.degraded = Some(x);
            }
        };
        match key.as_str() {
            "recovery_actions" => {
                let list: Vec<String> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .map(str::to_string)
                    .collect();
                if list.is_empty() {
                    return Err(bad(
                        key,
                        "name at least one action, e.g. \"restart\"".into(),
                    ));
                }
                s.recovery_actions = list;
            }
            "min_uptime" => policy.min_uptime = dur()?,
            "backoff_initial" => policy.backoff.initial = config::ConfigDuration(dur()?),
            "backoff_max" => policy.backoff.max = config::ConfigDuration(dur()?),
            "backoff_factor" => {
                let f = num()?;
                if f < 1.0 {
                    return Err(bad(key, format!("must be at least 1.0, found {f}")));
                }
                policy.backoff.factor = f;
            }
            "max_restarts" => {
                policy.intensity.max_restarts = value
                    .trim()
                    .parse()
                    .map_err(|_| bad(key, format!("\"{value}\" is not a whole number")))?
            }
            "intensity_window" => {
                let w = dur()?;
                if w.is_zero() {
                    return Err(bad(key, "must be longer than zero".into()));
                }
                policy.intensity.window = config::ConfigDuration(w);
            }
            "breaker_cooldown" => policy.breaker.cooldown = config::ConfigDuration(dur()?),
            "breaker_max_cooldown" => policy.breaker.max_cooldown = config::ConfigDuration(dur()?),
            "heartbeat_interval" => s.heartbeat_interval = Some(dur()?).filter(|d| !d.is_zero()),
            "health_poll" => s.health_poll = dur()?.max(Duration::from_millis(1)),
            "cpu_percent_degraded" => set(&mut s.thresholds.cpu_percent, false, num()?),
            "cpu_percent_critical" => set(&mut s.thresholds.cpu_percent, true, num()?),
            "memory_mb_degraded" => set(&mut s.thresholds.rss_mb, false, num()?),
            "memory_mb_critical" => set(&mut s.thresholds.rss_mb, true, num()?),
            "error_rate_degraded" => set(&mut s.thresholds.error_rate, false, num()?),
            "error_rate_critical" => set(&mut s.thresholds.error_rate, true, num()?),
            "response_time_ms_degraded" => set(&mut s.thresholds.response_time_ms, false, num()?),
            "response_time_ms_critical" => set(&mut s.thresholds.response_time_ms, true, num()?),
            "supervisor_socket" => {}
            other => {
                return Err(bad(
                    other,
                    "unknown key; see ImplementationConfig's documentation for the known ones"
                        .into(),
                ));
            }
        }
    }
    if policy.backoff.initial.0 > policy.backoff.max.0 {
        return Err(bad(
            "backoff_initial",
            "must not exceed backoff_max".to_string(),
        ));
    }
    s.policy = policy;
    Ok(s)
}

/// Everything mutable about one component's healing.
struct State {
    initialized: bool,
    governor: RestartGovernor,
    /// When the component last (re)started, as far as the engine knows: initialization or the end
    /// of the last healing episode.
    last_start: Instant,
    heartbeat: Option<HeartbeatMonitor>,
    last_metrics: Option<HealthMetrics>,
    /// Issues not yet dealt with by a healing episode, oldest first.
    open_issues: Vec<Issue>,
    issues: VecDeque<Issue>,
    records: VecDeque<RecoveryRecord>,
    last_issue: Option<Issue>,
    last_action: Option<HealingAction>,
    handlers: HashMap<String, ActionHandler>,
    health_check: Option<HealthCheck>,
}

fn push_bounded<T>(q: &mut VecDeque<T>, item: T) {
    if q.len() == HISTORY {
        q.pop_front();
    }
    q.push_back(item);
}

/// The in-process engine behind every [`ImplementationConfig`] that is wired.
struct LocalHealing {
    config: UnifiedHealingConfig,
    settings: Result<Settings, HealingError>,
    /// The one lock around the state: held only for short, synchronous sections (never across an
    /// `.await`), because `check_health`, `report_*` and `heal` take `&self` as the guide calls
    /// them, possibly from several tasks.
    state: Mutex<State>,
    /// One healing episode at a time; a second `heal` waits for the first to finish.
    healing: tokio::sync::Mutex<()>,
}

impl LocalHealing {
    fn new(config: UnifiedHealingConfig) -> Self {
        let settings = parse_settings(&config);
        let policy = settings
            .as_ref()
            .map(|s| s.policy.clone())
            .unwrap_or_default();
        LocalHealing {
            state: Mutex::new(State {
                initialized: false,
                governor: RestartGovernor::new(policy),
                last_start: Instant::now(),
                heartbeat: None,
                last_metrics: None,
                open_issues: Vec::new(),
                issues: VecDeque::new(),
                records: VecDeque::new(),
                last_issue: None,
                last_action: None,
                handlers: HashMap::new(),
                health_check: None,
            }),
            config,
            settings,
            healing: tokio::sync::Mutex::new(()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-updated in a way that matters
        // more than losing healing altogether, so a poisoned lock is used as is.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn ready(&self) -> Result<&Settings, HealingError> {
        let settings = self.settings.as_ref().map_err(Clone::clone)?;
        if !self.lock().initialized {
            return Err(HealingError::NotInitialized(
                self.config.component_id.clone(),
            ));
        }
        Ok(settings)
    }

    fn id(&self) -> &str {
        &self.config.component_id
    }

    fn note_issue(&self, state: &mut State, issue: Issue) {
        tracing::warn!(
            component = %self.id(),
            issue_type = %issue.issue_type,
            severity = %issue.severity,
            mode = self.config.implementation_config.name(),
            "issue"
        );
        state.last_issue = Some(issue.clone());
        push_bounded(&mut state.issues, issue);
    }

    fn note_action(&self, state: &mut State, action: &HealingAction) {
        tracing::info!(component = %self.id(), action = %action, "healing action");
        state.last_action = Some(action.clone());
    }

    async fn initialize_impl(&self) -> Result<(), HealingError> {
        let settings = self.settings.as_ref().map_err(Clone::clone)?;
        match &self.config.implementation_config {
            ImplementationConfig::Distributed(_) => {
                return Err(HealingError::Unsupported(format!(
                    "ImplementationConfig::Distributed for '{}': deferring healing decisions to the \
                     supervisor is not wired yet; use Hybrid (acts locally) meanwhile",
                    self.id()
                )));
            }
            ImplementationConfig::Standalone(_) | ImplementationConfig::Hybrid(_) => {}
        }
        let now = Instant::now();
        let mut s = self.lock();
        s.initialized = true;
        s.last_start = now;
        s.heartbeat = settings
            .heartbeat_interval
            .map(|i| HeartbeatMonitor::new(i, now));
        Ok(())
    }

    /// The engine's health without the component's own check: thresholds, heartbeats, breaker.
    /// Also closes a half-open breaker / resets backoff once the component has been up and healthy
    /// for `min_uptime` (the engine's lazy stand-in for the core's stable timer).
    fn engine_health(&self, settings: &Settings, own: HealthStatus) -> HealthStatus {
        let now = Instant::now();
        let mut s = self.lock();
        let thresholds =
            detect::threshold_status(&settings.thresholds, None, s.last_metrics.as_ref());
        let heartbeat = s
            .heartbeat
            .as_ref()
            .map_or(HealthStatus::Healthy, |h| h.check(now));
        let status = HealthStatus::combine([own, thresholds, heartbeat]);
        let up = now.saturating_duration_since(s.last_start);
        if status.is_healthy() && up >= settings.policy.min_uptime {
            s.governor.on_stable(now);
        }
        let breaker = match s.governor.breaker() {
            BreakerState::Open => HealthStatus::Critical(
                "circuit breaker open: automatic healing paused until the half-open trial".into(),
            ),
            BreakerState::Closed | BreakerState::HalfOpen => HealthStatus::Healthy,
        };
        status.worse(breaker)
    }

    async fn check_health_impl(&self) -> Result<HealthStatus, HealingError> {
        let settings = self.ready()?;
        let check = self.lock().health_check.clone();
        let own = match check {
            Some(check) => check().await,
            None => HealthStatus::Healthy,
        };
        Ok(self.engine_health(settings, own))
    }

    async fn heal_impl(&self) -> Result<HealingAction, HealingError> {
        let settings = self.ready()?;
        let _one_at_a_time = self.healing.lock().await;
        if !self.config.auto_healing_enabled {
            let action = HealingAction::NoAction {
                reason: "automatic healing is disabled; the issue is reported only".into(),
            };
            self.note_action(&mut self.lock(), &action);
            return Ok(action);
        }
        let health = self.check_health_impl().await?;
        let now = Instant::now();
        // Decide under the lock, act outside it.
        let (issue, delay) = {
            let mut s = self.lock();
            let issue = match s.open_issues.last().cloned() {
                Some(issue) => issue,
                None if health.is_healthy() => {
                    let action = HealingAction::NoAction {
                        reason: "healthy and no open issue: nothing to heal".into(),
                    };
                    self.note_action(&mut s, &action);
                    return Ok(action);
                }
                None => {
                    let issue =
                        Issue::new(self.id(), "unhealthy", Severity::Error).with("health", &health);
                    self.note_issue(&mut s, issue.clone());
                    issue
                }
            };
            let trial = s.governor.breaker() == BreakerState::Open && s.governor.on_trial_due(now);
            let decision = if trial {
                RestartDecision::RestartNow
            } else {
                let up = now.saturating_duration_since(s.last_start);
                s.governor.on_failure(now, up)
            };
            let delay = match decision {
                RestartDecision::RestartNow => Duration::ZERO,
                RestartDecision::RestartAfter(d) => d,
                RestartDecision::NoAction { reason } => {
                    let action = HealingAction::NoAction { reason };
                    self.note_action(&mut s, &action);
                    return Ok(action);
                }
                RestartDecision::BreakerOpened { cooldown } => {
                    s.open_issues.clear();
                    let open = detect::breaker_issue(self.id(), cooldown, Some(&issue));
                    self.note_issue(&mut s, open);
                    let action = HealingAction::Escalate {
                        reason: format!(
                            "too many healing attempts: circuit breaker open for {}",
                            humantime::format_duration(cooldown)
                        ),
                    };
                    self.note_action(&mut s, &action);
                    return Ok(action);
                }
            };
            // This episode deals with every open issue (it heals the component, not one symptom).
            s.open_issues.clear();
            (issue, delay)
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let started = Instant::now();
        self.lock().governor.on_restarted(started);
        let mut episode = RecoveryEpisode::new(
            issue,
            self.config.level,
            &settings.recovery_actions,
            Duration::from_secs(self.config.healing_timeout),
            Vec::new(),
        );
        let mut step = episode.start(started);
        loop {
            match step {
                EpisodeStep::Act { action, deadline } => {
                    let update = self
                        .attempt(settings, &mut episode, &action, deadline)
                        .await;
                    let mut s = self.lock();
                    if let Some(record) = update.record {
                        tracing::info!(
                            component = %self.id(),
                            strategy = %record.strategy,
                            successful = record.successful,
                            duration_ms = record.duration.as_millis() as u64,
                            "recovery attempt"
                        );
                        push_bounded(&mut s.records, record);
                    }
                    step = update.step;
                }
                EpisodeStep::Recovered { action, follow_up } => {
                    let mut s = self.lock();
                    s.last_start = Instant::now();
                    if !follow_up.is_empty() {
                        // In-process there is no supervisor to hand these to (see Hybrid).
                        tracing::info!(component = %self.id(), steps = ?follow_up, "coordination steps for the supervisor");
                    }
                    self.note_action(&mut s, &action);
                    return Ok(action);
                }
                EpisodeStep::Escalate { action, plan } => {
                    let mut s = self.lock();
                    s.last_start = Instant::now();
                    let failed = Issue::new(
                        self.id(),
                        detect::issue_types::HEALING_FAILED,
                        Severity::Critical,
                    )
                    .with("reason", &action);
                    self.note_issue(&mut s, failed);
                    tracing::error!(component = %self.id(), plan = ?plan, "healing escalated");
                    self.note_action(&mut s, &action);
                    return Ok(action);
                }
                EpisodeStep::Wait => {
                    // `start` and the updates below never leave the episode idle; if they did,
                    // waiting would hang, so report instead.
                    let action = HealingAction::NoAction {
                        reason: "healing episode had nothing to do".into(),
                    };
                    self.note_action(&mut self.lock(), &action);
                    return Ok(action);
                }
            }
        }
    }

    /// Carries out one action and waits (polling health) until it healed or its deadline passed.
    async fn attempt(
        &self,
        settings: &Settings,
        episode: &mut RecoveryEpisode,
        action: &str,
        deadline: Instant,
    ) -> EpisodeUpdate {
        let handler = self.lock().handlers.get(action).cloned();
        let Some(handler) = handler else {
            tracing::warn!(component = %self.id(), action, "no handler registered for recovery action");
            return episode.on_action_failed(Instant::now());
        };
        match tokio::time::timeout_at(deadline, handler()).await {
            Err(_) => return episode.on_deadline(Instant::now()),
            Ok(Err(why)) => {
                tracing::warn!(component = %self.id(), action, cause = %why, "recovery action failed");
                return episode.on_action_failed(Instant::now());
            }
            Ok(Ok(())) => {}
        }
        if action == recovery::RESTART {
            self.lock().last_start = Instant::now();
        }
        loop {
            let check = self.lock().health_check.clone();
            let own = match check {
                Some(check) => match tokio::time::timeout_at(deadline, check()).await {
                    Ok(status) => status,
                    Err(_) => return episode.on_deadline(Instant::now()),
                },
                None => HealthStatus::Healthy,
            };
            let status = self.engine_health(settings, own);
            let update = episode.on_health(Instant::now(), &status);
            if update.step != EpisodeStep::Wait {
                return update;
            }
            let now = Instant::now();
            if now >= deadline {
                return episode.on_deadline(now);
            }
            tokio::time::sleep_until((now + settings.health_poll).min(deadline)).await;
        }
    }

    fn status_impl(&self) -> HealingStatus {
        let s = self.lock();
        let now_i = Instant::now();
        let now_s = SystemTime::now();
        HealingStatus {
            level: self.config.level,
            auto_healing: self.config.auto_healing_enabled,
            breaker: s.governor.breaker(),
            backoff: s.governor.current_backoff(),
            next_trial_at: s
                .governor
                .next_trial_at()
                .map(|at| now_s + at.saturating_duration_since(now_i)),
            last_issue: s.last_issue.clone(),
            last_action: s.last_action.clone(),
        }
    }
}

impl SelfHealing for LocalHealing {
    fn initialize(&self) -> BoxFuture<'_, Result<(), HealingError>> {
        Box::pin(self.initialize_impl())
    }

    fn check_health(&self) -> BoxFuture<'_, Result<HealthStatus, HealingError>> {
        Box::pin(self.check_health_impl())
    }

    fn heal(&self) -> BoxFuture<'_, Result<HealingAction, HealingError>> {
        Box::pin(self.heal_impl())
    }

    fn report_metrics(&self, metrics: HealthMetrics) -> BoxFuture<'_, Result<(), HealingError>> {
        Box::pin(async move {
            let settings = self.ready()?;
            let now = Instant::now();
            let mut s = self.lock();
            if let Some(h) = s.heartbeat.as_mut() {
                h.beat(now);
            }
            for breach in detect::threshold_breaches(&settings.thresholds, None, Some(&metrics)) {
                let issue = breach.issue(self.id());
                s.open_issues.push(issue.clone());
                self.note_issue(&mut s, issue);
            }
            s.last_metrics = Some(metrics);
            Ok(())
        })
    }

    fn report_issue(&self, issue: Issue) -> BoxFuture<'_, Result<(), HealingError>> {
        Box::pin(async move {
            self.ready()?;
            let mut s = self.lock();
            s.open_issues.push(issue.clone());
            self.note_issue(&mut s, issue);
            Ok(())
        })
    }

    fn on_action(&self, name: &str, handler: ActionHandler) {
        self.lock().handlers.insert(name.to_string(), handler);
    }

    fn on_health_check(&self, check: HealthCheck) {
        self.lock().health_check = Some(check);
    }

    fn status(&self) -> HealingStatus {
        self.status_impl()
    }

    fn recovery_records(&self) -> Vec<RecoveryRecord> {
        self.lock().records.iter().cloned().collect()
    }

    fn issues(&self) -> Vec<Issue> {
        self.lock().issues.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    fn config(level: HealingLevel, map: &[(&str, &str)]) -> UnifiedHealingConfig {
        UnifiedHealingConfig {
            component_id: "cache".into(),
            level,
            auto_healing_enabled: true,
            circuit_breaker_enabled: true,
            healing_timeout: 30,
            implementation_config: ImplementationConfig::Standalone(
                map.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
        }
    }

    fn counting(counter: &Arc<AtomicU32>) -> ActionHandler {
        let c = counter.clone();
        action(move || {
            let c = c.clone();
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        })
    }

    /// A component that is Critical until its flag says otherwise.
    fn flag_health(h: &SelfHealingBox, healthy: &Arc<AtomicBool>) {
        let f = healthy.clone();
        h.on_health_check(health_check(move || {
            let ok = f.load(Ordering::SeqCst);
            async move {
                if ok {
                    HealthStatus::Healthy
                } else {
                    HealthStatus::Critical("cache corrupted".into())
                }
            }
        }));
    }

    type SelfHealingBox = Box<dyn SelfHealing>;

    #[tokio::test(start_paused = true)]
    async fn a_recovery_action_that_does_not_heal_in_time_falls_through_to_restart() {
        let h = HealingFactory::create(config(
            HealingLevel::Advanced,
            &[("recovery_actions", "clear_cache, restart")],
        ));
        let healthy = Arc::new(AtomicBool::new(false));
        flag_health(&h, &healthy);
        let cleared = Arc::new(AtomicU32::new(0));
        h.on_action("clear_cache", counting(&cleared));
        let f = healthy.clone();
        h.on_action(
            "restart",
            action(move || {
                let f = f.clone();
                async move {
                    f.store(true, Ordering::SeqCst);
                    Ok(())
                }
            }),
        );
        h.initialize().await.expect("initialize");
        // Up for a while (a stable run) before the issue: no backoff before the first action.
        tokio::time::advance(Duration::from_secs(5)).await;
        h.report_issue(Issue::new("cache", "corruption", Severity::Error))
            .await
            .expect("report");
        let t0 = Instant::now();
        assert_eq!(h.heal().await, Ok(HealingAction::Restart));
        assert_eq!(cleared.load(Ordering::SeqCst), 1);
        assert_eq!(
            Instant::now() - t0,
            Duration::from_secs(30),
            "one healing timeout"
        );
        let records = h.recovery_records();
        assert_eq!(
            records
                .iter()
                .map(|r| (r.strategy.as_str(), r.successful, r.duration))
                .collect::<Vec<_>>(),
            [
                ("clear_cache", false, Duration::from_secs(30)),
                ("restart", true, Duration::ZERO)
            ]
        );
        assert_eq!(records[0].issue.issue_type, "corruption");
        assert_eq!(h.status().last_action, Some(HealingAction::Restart));
    }

    #[tokio::test(start_paused = true)]
    async fn when_every_action_fails_advanced_escalates() {
        let h = HealingFactory::create(config(
            HealingLevel::Advanced,
            &[("recovery_actions", "clear_cache,restart")],
        ));
        flag_health(&h, &Arc::new(AtomicBool::new(false)));
        let restarts = Arc::new(AtomicU32::new(0));
        h.on_action("restart", counting(&restarts));
        // No clear_cache handler: that action fails at once.
        h.initialize().await.expect("initialize");
        tokio::time::advance(Duration::from_secs(5)).await;
        let t0 = Instant::now();
        match h.heal().await {
            Ok(HealingAction::Escalate { reason }) => {
                assert!(reason.contains("clear_cache, then restart"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(restarts.load(Ordering::SeqCst), 1);
        assert_eq!(Instant::now() - t0, Duration::from_secs(30));
        assert!(
            h.issues()
                .iter()
                .any(|i| i.issue_type == "healing_failed" && i.severity == Severity::Critical)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn with_auto_healing_disabled_heal_only_reports() {
        let mut cfg = config(HealingLevel::Full, &[]);
        cfg.auto_healing_enabled = false;
        let h = HealingFactory::create(cfg);
        let restarts = Arc::new(AtomicU32::new(0));
        h.on_action("restart", counting(&restarts));
        h.initialize().await.expect("initialize");
        h.report_issue(Issue::new("cache", "oom", Severity::Critical))
            .await
            .expect("report");
        match h.heal().await {
            Ok(HealingAction::NoAction { reason }) => assert!(reason.contains("disabled")),
            other => panic!("{other:?}"),
        }
        assert_eq!(restarts.load(Ordering::SeqCst), 0);
        assert_eq!(h.issues().len(), 1);
        assert_eq!(
            h.status().last_issue.map(|i| i.issue_type),
            Some("oom".into())
        );
        assert!(h.recovery_records().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn repeated_failed_healing_opens_the_breaker_instead_of_storming() {
        let mut cfg = config(HealingLevel::Basic, &[("max_restarts", "3")]);
        cfg.healing_timeout = 1;
        let h = HealingFactory::create(cfg);
        flag_health(&h, &Arc::new(AtomicBool::new(false)));
        let restarts = Arc::new(AtomicU32::new(0));
        h.on_action("restart", counting(&restarts));
        h.initialize().await.expect("initialize");
        let mut actions = Vec::new();
        for _ in 0..6 {
            actions.push(h.heal().await.expect("heal"));
        }
        assert_eq!(restarts.load(Ordering::SeqCst), 3, "{actions:?}");
        assert!(
            matches!(&actions[3], HealingAction::Escalate { reason } if reason.contains("circuit breaker")),
            "{actions:?}"
        );
        assert!(matches!(actions[4], HealingAction::NoAction { .. }));
        let status = h.status();
        assert_eq!(status.breaker, BreakerState::Open);
        assert!(status.next_trial_at.is_some());
        assert!(matches!(
            h.check_health().await,
            Ok(HealthStatus::Critical(_))
        ));
        assert!(h.issues().iter().any(|i| i.issue_type == "breaker_open"));
        // After the cooldown one trial is made.
        tokio::time::advance(Duration::from_secs(30)).await;
        h.heal().await.expect("trial");
        assert_eq!(restarts.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn healthy_and_nothing_reported_means_nothing_to_heal() {
        let h = HealingFactory::create(config(HealingLevel::Basic, &[]));
        h.initialize().await.expect("initialize");
        assert_eq!(h.check_health().await, Ok(HealthStatus::Healthy));
        assert!(matches!(
            h.heal().await,
            Ok(HealingAction::NoAction { reason }) if reason.contains("nothing to heal")
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn metrics_over_thresholds_degrade_health_and_open_an_issue() {
        let h = HealingFactory::create(config(
            HealingLevel::Advanced,
            &[("error_rate_degraded", "5"), ("error_rate_critical", "50")],
        ));
        h.initialize().await.expect("initialize");
        h.report_metrics(HealthMetrics {
            error_rate: 12.0,
            ..HealthMetrics::default()
        })
        .await
        .expect("report");
        assert_eq!(
            h.check_health().await,
            Ok(HealthStatus::Degraded(
                "error rate 12.0% >= degraded limit 5%".into()
            ))
        );
        assert_eq!(h.issues()[0].issue_type, "threshold_exceeded");
    }

    #[tokio::test(start_paused = true)]
    async fn a_component_that_stops_reporting_metrics_is_failed() {
        let h =
            HealingFactory::create(config(HealingLevel::Basic, &[("heartbeat_interval", "5s")]));
        h.initialize().await.expect("initialize");
        tokio::time::advance(Duration::from_secs(10)).await;
        h.report_metrics(HealthMetrics::default())
            .await
            .expect("report");
        tokio::time::advance(Duration::from_secs(14)).await;
        assert_eq!(h.check_health().await, Ok(HealthStatus::Healthy));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(matches!(
            h.check_health().await,
            Ok(HealthStatus::Failed(_))
        ));
    }

    #[tokio::test]
    async fn bad_implementation_config_fails_initialize_naming_the_key() {
        let h = HealingFactory::create(config(HealingLevel::Basic, &[("min_uptime", "5")]));
        match h.initialize().await {
            Err(HealingError::InvalidConfig { key, message }) => {
                assert_eq!(key, "min_uptime");
                assert!(message.contains("unit"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let h = HealingFactory::create(config(HealingLevel::Basic, &[("colour", "blue")]));
        assert!(matches!(
            h.initialize().await,
            Err(HealingError::InvalidConfig { key, .. }) if key == "colour"
        ));
        assert!(matches!(
            h.heal().await,
            Err(HealingError::InvalidConfig { .. })
        ));
    }

    #[tokio::test]
    async fn methods_before_initialize_are_refused() {
        let h = HealingFactory::create(config(HealingLevel::Basic, &[]));
        assert_eq!(
            h.check_health().await,
            Err(HealingError::NotInitialized("cache".into()))
        );
    }

    #[tokio::test]
    async fn distributed_says_honestly_that_it_is_not_wired_yet() {
        let mut cfg = config(HealingLevel::Full, &[]);
        cfg.implementation_config = ImplementationConfig::Distributed(HashMap::new());
        let h = HealingFactory::create(cfg);
        assert!(matches!(
            h.initialize().await,
            Err(HealingError::Unsupported(m)) if m.contains("Hybrid")
        ));
        let mut cfg = config(HealingLevel::Full, &[]);
        cfg.implementation_config = ImplementationConfig::Hybrid(HashMap::new());
        assert_eq!(HealingFactory::create(cfg).initialize().await, Ok(()));
    }
}
