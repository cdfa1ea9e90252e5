//! The guide's self-healing API for a linked Rust component (§2.1): `UnifiedHealingConfig`,
//! `ImplementationConfig`, `HealingFactory::create` and the `SelfHealing` trait.
//!
//! The engine behind the trait is the one the core uses for its processes:
//! [`RestartGovernor`](crate::healing::policy::RestartGovernor) for backoff, restart intensity and
//! the circuit breaker, [`RecoveryEpisode`](crate::healing::recovery::RecoveryEpisode) for the
//! choice of recovery action and healing timeouts, and [`crate::healing::detect`] for thresholds
//! and heartbeats. This module holds the guide's types and the parsing of the implementation
//! config; its private `local` module is the async shell around the engine: a handle on one
//! background task that owns the component's healing state, while the component's handlers run in
//! the `heal` that called for them. It does not talk to the supervisor itself (see
//! [`ImplementationConfig`] for what is wired and what is not), and decides nothing the engine
//! does not.
//!
//! In the guide's order (§2.1 steps 1-4); this runs as it is, no core needed:
//!
//! ```
//! use hms::prelude::*;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), HealingError> {
//! let level = HealingLevel::Advanced;
//! let config = UnifiedHealingConfig {
//!     component_id: "my-component".to_string(),
//!     level,
//!     auto_healing_enabled: true,
//!     circuit_breaker_enabled: true,
//!     healing_timeout: 30,
//!     implementation_config: ImplementationConfig::Standalone(HashMap::from([(
//!         "recovery_actions".to_string(),
//!         "clear_cache,restart".to_string(),
//!     )])),
//! };
//! let healing = HealingFactory::create(config);
//! healing.on_action("clear_cache", action(|| async { Ok(()) }));
//! healing.on_action("restart", action(|| async { Ok(()) }));
//! healing.initialize().await?;
//!
//! healing.report_issue(Issue::new("my-component", "cache_corrupt", Severity::Error)).await?;
//! let taken = healing.heal().await?;
//! assert_eq!(taken, HealingAction::Recover { name: "clear_cache".into() });
//! assert_eq!(healing.check_health().await?, HealthStatus::Healthy);
//! # Ok(())
//! # }
//! ```
//!
//! Reporting the issue to the supervisor afterwards (§7) with
//! [`SupervisorClient::report_issue`](crate::component::SupervisorClient::report_issue) marks it
//! [`Issue::HEALED_BY`] this action, so the core does not heal it a second time.

mod local;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{self, Threshold, ThresholdsConfig};
use crate::healing::policy::PolicyConfig;
use crate::healing::recovery;
use crate::model::{
    HealingAction, HealingLevel, HealingStatus, HealthMetrics, HealthStatus, Issue, RecoveryRecord,
};
use local::LocalHealing;

/// A boxed, sendable future: what the object-safe [`SelfHealing`] methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Carries out one recovery action (e.g. `clear_cache`, `restart`) for a linked component. `Err`
/// says why it could not be done; the engine then tries the next action.
pub type ActionHandler = Arc<dyn Fn() -> BoxFuture<'static, Result<(), ActionError>> + Send + Sync>;

/// Why a recovery action was not carried out. Either way the engine goes on to the next action;
/// the text is logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    /// The component does not support this action (the guide's `UnsupportedCommand`).
    #[error("unsupported recovery action {0}")]
    Unsupported(String),
    /// The component tried and could not carry it out; the text says why.
    #[error("{0}")]
    Failed(String),
}

impl From<String> for ActionError {
    fn from(why: String) -> Self {
        ActionError::Failed(why)
    }
}

impl From<&str> for ActionError {
    fn from(why: &str) -> Self {
        ActionError::Failed(why.to_string())
    }
}

/// The component's own view of its health, asked after each recovery action.
pub type HealthCheck = Arc<dyn Fn() -> BoxFuture<'static, HealthStatus> + Send + Sync>;

/// Wraps an async closure as an [`ActionHandler`].
pub fn action<F, Fut>(f: F) -> ActionHandler
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), ActionError>> + Send + 'static,
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
    /// The healing's background task has ended (it panicked); create a new one.
    #[error("the self-healing background task has stopped")]
    Stopped,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BreakerState, Severity};
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use tokio::time::Instant;

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

    #[tokio::test(start_paused = true)]
    async fn a_heal_dropped_mid_episode_does_not_block_the_next_one() {
        let h = HealingFactory::create(config(
            HealingLevel::Advanced,
            &[("recovery_actions", "clear_cache, restart")],
        ));
        flag_health(&h, &Arc::new(AtomicBool::new(false)));
        h.on_action(
            "clear_cache",
            action(|| async { Err("the cache is locked".into()) }),
        );
        let restarts = Arc::new(AtomicU32::new(0));
        h.on_action("restart", counting(&restarts));
        h.initialize().await.expect("initialize");
        tokio::time::advance(Duration::from_secs(5)).await;
        // Abandoned while its restart waits for health.
        let abandoned = tokio::time::timeout(Duration::from_secs(1), h.heal()).await;
        assert!(abandoned.is_err(), "{abandoned:?}");
        assert_eq!(restarts.load(Ordering::SeqCst), 1);
        let next = tokio::time::timeout(Duration::from_secs(300), h.heal())
            .await
            .expect("the next heal is not kept waiting by the dropped one");
        assert!(
            matches!(next, Ok(HealingAction::Escalate { .. })),
            "{next:?}"
        );
        assert_eq!(restarts.load(Ordering::SeqCst), 2);
        let failed = h.recovery_records();
        assert!(
            failed
                .iter()
                .any(|r| r.strategy == "clear_cache" && !r.successful),
            "{failed:?}"
        );
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
