//! `LocalHealing`: the in-process engine behind every [`ImplementationConfig`] that is wired.
//!
//! A [`LocalHealing`] is a cheap handle on one background task, the owner, that holds the
//! component's healing state: the restart governor and the component's last start, heartbeats, the
//! last metrics, open issues, the registered handlers, and the history. The guide's synchronous
//! reads (`status`, `issues`, `recovery_records`) come from a [`Published`] view the owner alone
//! writes, on a watch channel.
//!
//! A healing episode runs in the future of the `heal` that asked for it, one at a time (the owner
//! hands out [`Turn`]s): it asks the owner for each decision, handler and health verdict, and runs
//! the component's action handlers and health check itself. So the owner never waits on the
//! component's code and keeps taking metrics and issues while an action works, and dropping a
//! `heal` future ends its episode (and its turn) as it did before.
//!
//! The decisions are the engine's shared per-component [`Healer`] (the same one the core's
//! supervisor kernel uses for every component it runs): the owner holds it, and the episode in a
//! `heal` asks the owner for each step (the last section of this file). This module decides nothing
//! itself and does not talk to the supervisor.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::{
    ActionHandler, BoxFuture, HealingError, HealthCheck, ImplementationConfig, SelfHealing,
    Settings, UnifiedHealingConfig, parse_settings,
};
use crate::component::mailbox::{Mailbox, Stopped};
use crate::healing::detect::{self, HeartbeatMonitor};
use crate::healing::healer::{Healer, HealerConfig, NotStarted};
use crate::healing::policy::{PolicyConfig, RestartDecision};
use crate::healing::recovery::{self, EpisodeStep, EpisodeUpdate};
use crate::model::{
    BreakerState, HealingAction, HealingStatus, HealthMetrics, HealthStatus, Issue, RecoveryRecord,
    RecoveryStep, Severity,
};

/// How many issues and records are kept.
const HISTORY: usize = 1000;

impl From<Stopped> for HealingError {
    fn from(_: Stopped) -> Self {
        HealingError::Stopped
    }
}

/// The handle behind `HealingFactory::create`.
pub(super) struct LocalHealing {
    config: Arc<UnifiedHealingConfig>,
    settings: Result<Arc<Settings>, HealingError>,
    owner: Mailbox<Command>,
    published: watch::Receiver<Published>,
}

/// What the owner publishes for the synchronous reads; it is the only writer.
struct Published {
    breaker: BreakerState,
    backoff: Option<Duration>,
    next_trial_at: Option<Instant>,
    last_issue: Option<Issue>,
    last_action: Option<HealingAction>,
    /// Most recent last, at most [`HISTORY`].
    issues: VecDeque<Issue>,
    /// Most recent last, at most [`HISTORY`].
    records: VecDeque<RecoveryRecord>,
}

/// An answer from the owner that may refuse because `initialize` has not succeeded.
type Answer<T> = oneshot::Sender<Result<T, HealingError>>;

/// What the owner task is asked to do.
enum Command {
    Initialize {
        settings: Arc<Settings>,
        reply: oneshot::Sender<()>,
    },
    ReportMetrics {
        metrics: HealthMetrics,
        reply: Answer<()>,
    },
    ReportIssue {
        issue: Issue,
        reply: Answer<()>,
    },
    OnAction {
        name: String,
        handler: ActionHandler,
    },
    OnHealthCheck(HealthCheck),
    /// The component's registered health check.
    HealthCheck {
        reply: Answer<Option<HealthCheck>>,
    },
    /// The health as the engine sees it, given the component's own.
    EngineHealth {
        own: HealthStatus,
        reply: oneshot::Sender<HealthStatus>,
    },
    /// A turn to heal: granted at once, or when the episode before it ends.
    BeginHeal {
        /// For the [`Turn`], which must not keep the owner alive.
        owner: mpsc::WeakUnboundedSender<Command>,
        reply: Answer<Turn>,
    },
    /// A [`Turn`] was dropped.
    EndHeal,
    /// What to heal and after which delay, or the action that ends `heal` at once.
    Decide {
        health: HealthStatus,
        reply: oneshot::Sender<Decision>,
    },
    /// The handler for a recovery action.
    Handler {
        name: String,
        reply: oneshot::Sender<Option<ActionHandler>>,
    },
    /// The episode's restart point: its delay is over; begin the episode for `issue`.
    Begin {
        issue: Issue,
        reply: oneshot::Sender<Result<(Vec<String>, EpisodeStep), NotStarted>>,
    },
    /// The next attempt's action is about to run: its serial.
    Attempt {
        reply: oneshot::Sender<u64>,
    },
    /// How attempt `serial`'s action went: `None` failed to run (no handler), else whether it did
    /// what it should.
    Outcome {
        serial: u64,
        ok: bool,
        reply: oneshot::Sender<Option<EpisodeUpdate>>,
    },
    /// Attempt `serial`'s deadline came.
    Deadline {
        serial: u64,
        reply: oneshot::Sender<Option<EpisodeUpdate>>,
    },
    /// The health after the attempt's action, for the episode.
    Judge {
        status: HealthStatus,
        reply: oneshot::Sender<Option<EpisodeUpdate>>,
    },
    /// A `restart` action succeeded: the component started afresh.
    Started {
        at: Instant,
    },
    Record(RecoveryRecord),
    /// How a `heal` ended.
    Finish {
        action: HealingAction,
        ending: Ending,
        reply: oneshot::Sender<()>,
    },
}

/// What [`Command::Decide`] answers.
enum Decision {
    /// `heal` ends with this action (already noted by the owner).
    Done(HealingAction),
    /// Heal `issue` after `delay`.
    Heal { issue: Issue, delay: Duration },
}

/// How a `heal` ended, for [`Command::Finish`].
enum Ending {
    /// Without an episode (healing disabled) or with one that had nothing to do.
    NoEpisode,
    /// Healthy again; `follow_up` is the coordination the supervisor would carry out.
    Recovered { follow_up: Vec<RecoveryStep> },
    /// Every action failed; `plan` is the escalation the supervisor would carry out.
    Escalated { plan: Vec<RecoveryStep> },
}

/// The right to run the one healing episode; dropping it (also with a dropped `heal` future, or
/// unread in the owner's answer) lets the next `heal` go.
struct Turn {
    owner: mpsc::WeakUnboundedSender<Command>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        if let Some(owner) = self.owner.upgrade() {
            let _ = owner.send(Command::EndHeal);
        }
    }
}

impl LocalHealing {
    pub(super) fn new(config: UnifiedHealingConfig) -> Self {
        let settings = parse_settings(&config).map(Arc::new);
        let policy = settings
            .as_ref()
            .map(|s| s.policy.clone())
            .unwrap_or_default();
        let restarts = Restarts {
            healer: Healer::new(healer_config(&config, policy, settings.as_deref().ok())),
            last_start: Instant::now(),
        };
        let mut view = Published {
            breaker: BreakerState::Closed,
            backoff: None,
            next_trial_at: None,
            last_issue: None,
            last_action: None,
            issues: VecDeque::new(),
            records: VecDeque::new(),
        };
        restarts.publish(&mut view);
        let (published, reads) = watch::channel(view);
        let config = Arc::new(config);
        let owner = Owner {
            config: config.clone(),
            ready: None,
            restarts,
            last_metrics: None,
            open_issues: Vec::new(),
            handlers: HashMap::new(),
            health_check: None,
            healing: false,
            waiting: VecDeque::new(),
            published,
        };
        LocalHealing {
            config,
            settings,
            owner: Mailbox::new(|inbox| owner.run(inbox)),
            published: reads,
        }
    }

    fn id(&self) -> &str {
        &self.config.component_id
    }

    fn settings(&self) -> Result<Arc<Settings>, HealingError> {
        self.settings.clone()
    }

    async fn initialize_impl(&self) -> Result<(), HealingError> {
        let settings = self.settings()?;
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
        self.owner
            .ask(|reply| Command::Initialize { settings, reply })
            .await?;
        Ok(())
    }

    async fn check_health_impl(&self) -> Result<HealthStatus, HealingError> {
        self.settings()?;
        let check = self
            .owner
            .ask(|reply| Command::HealthCheck { reply })
            .await??;
        let own = match check {
            Some(check) => check().await,
            None => HealthStatus::Healthy,
        };
        Ok(self
            .owner
            .ask(|reply| Command::EngineHealth { own, reply })
            .await?)
    }

    async fn heal_impl(&self) -> Result<HealingAction, HealingError> {
        let settings = self.settings()?;
        let owner = self.owner.weak();
        let _turn = self
            .owner
            .ask(|reply| Command::BeginHeal { owner, reply })
            .await??;
        if !self.config.auto_healing_enabled {
            let action = HealingAction::NoAction {
                reason: "automatic healing is disabled; the issue is reported only".into(),
            };
            return self.finish(action, Ending::NoEpisode).await;
        }
        let health = self.check_health_impl().await?;
        match self
            .owner
            .ask(|reply| Command::Decide { health, reply })
            .await?
        {
            Decision::Done(action) => Ok(action),
            Decision::Heal { issue, delay } => self.run_episode(&settings, issue, delay).await,
        }
    }

    /// Has the owner note how `heal` ended, then returns `action`.
    async fn finish(
        &self,
        action: HealingAction,
        ending: Ending,
    ) -> Result<HealingAction, HealingError> {
        let noted = action.clone();
        self.owner
            .ask(|reply| Command::Finish {
                action: noted,
                ending,
                reply,
            })
            .await?;
        Ok(action)
    }

    fn status_impl(&self) -> HealingStatus {
        let now_i = Instant::now();
        let now_s = SystemTime::now();
        let view = self.published.borrow();
        HealingStatus {
            level: self.config.level,
            auto_healing: self.config.auto_healing_enabled,
            breaker: view.breaker,
            backoff: view.backoff,
            next_trial_at: view
                .next_trial_at
                .map(|at| now_s + at.saturating_duration_since(now_i)),
            last_issue: view.last_issue.clone(),
            last_action: view.last_action.clone(),
            strategy: None,
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
            self.settings()?;
            self.owner
                .ask(|reply| Command::ReportMetrics { metrics, reply })
                .await?
        })
    }

    fn report_issue(&self, issue: Issue) -> BoxFuture<'_, Result<(), HealingError>> {
        Box::pin(async move {
            self.settings()?;
            self.owner
                .ask(|reply| Command::ReportIssue { issue, reply })
                .await?
        })
    }

    fn on_action(&self, name: &str, handler: ActionHandler) {
        self.owner.post(Command::OnAction {
            name: name.to_string(),
            handler,
        });
    }

    fn on_health_check(&self, check: HealthCheck) {
        self.owner.post(Command::OnHealthCheck(check));
    }

    fn status(&self) -> HealingStatus {
        self.status_impl()
    }

    fn recovery_records(&self) -> Vec<RecoveryRecord> {
        self.published.borrow().records.iter().cloned().collect()
    }

    fn issues(&self) -> Vec<Issue> {
        self.published.borrow().issues.iter().cloned().collect()
    }
}

/// What `initialize` sets up.
struct Ready {
    settings: Arc<Settings>,
    heartbeat: Option<HeartbeatMonitor>,
}

/// The owner task's state: everything mutable about one component's healing.
struct Owner {
    config: Arc<UnifiedHealingConfig>,
    /// `None` until `initialize` succeeds; every report and `heal` is refused before.
    ready: Option<Ready>,
    restarts: Restarts,
    last_metrics: Option<HealthMetrics>,
    /// Issues not yet dealt with by a healing episode, oldest first.
    open_issues: Vec<Issue>,
    handlers: HashMap<String, ActionHandler>,
    health_check: Option<HealthCheck>,
    /// A [`Turn`] is out.
    healing: bool,
    /// `heal`s waiting for their turn, in order.
    waiting: VecDeque<(mpsc::WeakUnboundedSender<Command>, Answer<Turn>)>,
    published: watch::Sender<Published>,
}

impl Owner {
    async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Command>) {
        while let Some(command) = inbox.recv().await {
            self.handle(command);
            self.published
                .send_modify(|view| self.restarts.publish(view));
        }
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Initialize { settings, reply } => {
                let now = Instant::now();
                self.restarts.healer.set_config(healer_config(
                    &self.config,
                    settings.policy.clone(),
                    Some(&settings),
                ));
                self.restarts.started(now);
                let heartbeat = settings
                    .heartbeat_interval
                    .map(|i| HeartbeatMonitor::new(i, now));
                self.ready = Some(Ready {
                    settings,
                    heartbeat,
                });
                let _ = reply.send(());
            }
            Command::ReportMetrics { metrics, reply } => {
                let _ = reply.send(self.report_metrics(metrics));
            }
            Command::ReportIssue { issue, reply } => {
                let _ = reply.send(self.report_issue(issue));
            }
            Command::OnAction { name, handler } => {
                self.handlers.insert(name, handler);
            }
            Command::OnHealthCheck(check) => self.health_check = Some(check),
            Command::HealthCheck { reply } => {
                let _ = reply.send(self.ready().map(|_| self.health_check.clone()));
            }
            Command::EngineHealth { own, reply } => {
                let _ = reply.send(self.engine_health(own));
            }
            Command::BeginHeal { owner, reply } => match self.ready() {
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
                Ok(_) if self.healing => self.waiting.push_back((owner, reply)),
                Ok(_) => {
                    self.healing = true;
                    // Unread or undelivered, the turn is dropped and ends at once.
                    let _ = reply.send(Ok(Turn { owner }));
                }
            },
            Command::EndHeal => {
                // A `heal` that ended, or was dropped mid-episode: its episode ends with it.
                self.restarts.healer.finish();
                self.healing = false;
                if let Some((owner, reply)) = self.waiting.pop_front() {
                    self.healing = true;
                    let _ = reply.send(Ok(Turn { owner }));
                }
            }
            Command::Decide { health, reply } => {
                let _ = reply.send(self.decide(health));
            }
            Command::Handler { name, reply } => {
                let _ = reply.send(self.handlers.get(&name).cloned());
            }
            Command::Begin { issue, reply } => {
                let now = Instant::now();
                let healer = &mut self.restarts.healer;
                healer.governor_mut().on_restarted(now);
                let _ = reply.send(healer.begin(issue, Vec::new(), None, false, now));
            }
            Command::Attempt { reply } => {
                let _ = reply.send(self.restarts.healer.attempt(true));
            }
            Command::Outcome { serial, ok, reply } => {
                let healer = &mut self.restarts.healer;
                let update = healer.action_done(serial, ok, Instant::now());
                let _ = reply.send(update);
            }
            Command::Deadline { serial, reply } => {
                let update = self.restarts.healer.deadline(serial, Instant::now());
                let _ = reply.send(update);
            }
            Command::Judge { status, reply } => {
                let healer = &mut self.restarts.healer;
                let update = if healer.wants_health(true) {
                    healer.health(&status, Instant::now())
                } else {
                    None
                };
                let _ = reply.send(update);
            }
            Command::Started { at } => self.restarts.started(at),
            Command::Record(record) => {
                self.restarts.healer.keep(record.clone());
                tracing::info!(
                    component = %self.id(),
                    strategy = %record.strategy,
                    successful = record.successful,
                    duration_ms = record.duration.as_millis() as u64,
                    "recovery attempt"
                );
                self.published
                    .send_modify(|view| push_bounded(&mut view.records, record));
            }
            Command::Finish {
                action,
                ending,
                reply,
            } => {
                self.finish(&action, ending);
                let _ = reply.send(());
            }
        }
    }

    fn id(&self) -> &str {
        &self.config.component_id
    }

    fn ready(&self) -> Result<&Ready, HealingError> {
        self.ready
            .as_ref()
            .ok_or_else(|| HealingError::NotInitialized(self.id().to_string()))
    }

    fn report_metrics(&mut self, metrics: HealthMetrics) -> Result<(), HealingError> {
        let id = self.id().to_string();
        let ready = self
            .ready
            .as_mut()
            .ok_or_else(|| HealingError::NotInitialized(id.clone()))?;
        if let Some(h) = ready.heartbeat.as_mut() {
            h.beat(Instant::now());
        }
        let breaches = detect::threshold_breaches(&ready.settings.thresholds, None, Some(&metrics));
        for breach in breaches {
            let issue = breach.issue(&id);
            self.open_issues.push(issue.clone());
            self.note_issue(issue);
        }
        self.last_metrics = Some(metrics);
        Ok(())
    }

    fn report_issue(&mut self, issue: Issue) -> Result<(), HealingError> {
        self.ready()?;
        self.open_issues.push(issue.clone());
        self.note_issue(issue);
        Ok(())
    }

    fn note_issue(&mut self, issue: Issue) {
        tracing::warn!(
            component = %self.id(),
            issue_type = %issue.issue_type,
            severity = %issue.severity,
            mode = self.config.implementation_config.name(),
            "issue"
        );
        self.published.send_modify(|view| {
            view.last_issue = Some(issue.clone());
            push_bounded(&mut view.issues, issue);
        });
    }

    fn note_action(&mut self, action: &HealingAction) {
        tracing::info!(component = %self.id(), action = %action, "healing action");
        self.published
            .send_modify(|view| view.last_action = Some(action.clone()));
    }

    /// The engine's health without the component's own check: thresholds, heartbeats, breaker.
    /// Also closes a half-open breaker / resets backoff once the component has been up and healthy
    /// for `min_uptime` (the engine's lazy stand-in for the core's stable timer).
    fn engine_health(&mut self, own: HealthStatus) -> HealthStatus {
        let now = Instant::now();
        let Some(ready) = &self.ready else {
            return own;
        };
        let thresholds =
            detect::threshold_status(&ready.settings.thresholds, None, self.last_metrics.as_ref());
        let heartbeat = ready
            .heartbeat
            .as_ref()
            .map_or(HealthStatus::Healthy, |h| h.check(now));
        let status = HealthStatus::combine([own, thresholds, heartbeat]);
        let min_uptime = ready.settings.policy.min_uptime;
        self.restarts
            .saw_health(now, status.is_healthy(), min_uptime);
        let breaker = match self.restarts.breaker() {
            BreakerState::Open => HealthStatus::Critical(
                "circuit breaker open: automatic healing paused until the half-open trial".into(),
            ),
            BreakerState::Closed | BreakerState::HalfOpen => HealthStatus::Healthy,
        };
        status.worse(breaker)
    }

    /// Which issue a `heal` works on, and whether the governor lets it heal now, later or not at
    /// all.
    fn decide(&mut self, health: HealthStatus) -> Decision {
        let now = Instant::now();
        let issue = match self.open_issues.last().cloned() {
            Some(issue) => issue,
            None if health.is_healthy() => {
                let action = HealingAction::NoAction {
                    reason: "healthy and no open issue: nothing to heal".into(),
                };
                self.note_action(&action);
                return Decision::Done(action);
            }
            None => {
                let issue =
                    Issue::new(self.id(), "unhealthy", Severity::Error).with("health", &health);
                self.note_issue(issue.clone());
                issue
            }
        };
        let delay = match self.restarts.on_failure(now) {
            RestartDecision::RestartNow => Duration::ZERO,
            RestartDecision::RestartAfter(d) => d,
            RestartDecision::NoAction { reason } => {
                let action = HealingAction::NoAction { reason };
                self.note_action(&action);
                return Decision::Done(action);
            }
            RestartDecision::BreakerOpened { cooldown } => {
                self.open_issues.clear();
                let open = detect::breaker_issue(self.id(), cooldown, Some(&issue));
                self.note_issue(open);
                let action = HealingAction::Escalate {
                    reason: format!(
                        "too many healing attempts: circuit breaker open for {}",
                        humantime::format_duration(cooldown)
                    ),
                };
                self.note_action(&action);
                return Decision::Done(action);
            }
        };
        // This episode deals with every open issue (it heals the component, not one symptom).
        self.open_issues.clear();
        Decision::Heal { issue, delay }
    }

    fn finish(&mut self, action: &HealingAction, ending: Ending) {
        self.restarts.healer.finish();
        match ending {
            Ending::NoEpisode => {}
            Ending::Recovered { follow_up } => {
                self.restarts.started(Instant::now());
                // A report of the issue made from now on says it was healed here (§7).
                crate::component::healed::recovered(self.id(), action, SystemTime::now());
                if !follow_up.is_empty() {
                    // In-process there is no supervisor to hand these to (see Hybrid).
                    tracing::info!(component = %self.id(), steps = ?follow_up, "coordination steps for the supervisor");
                }
            }
            Ending::Escalated { plan } => {
                self.restarts.started(Instant::now());
                let failed = Issue::new(
                    self.id(),
                    detect::issue_types::HEALING_FAILED,
                    Severity::Critical,
                )
                .with("reason", action);
                self.note_issue(failed);
                tracing::error!(component = %self.id(), plan = ?plan, "healing escalated");
            }
        }
        self.note_action(action);
    }
}

fn push_bounded<T>(q: &mut VecDeque<T>, item: T) {
    if q.len() == HISTORY {
        q.pop_front();
    }
    q.push_back(item);
}

// ----- The engine: the shared per-component healer, and the episode a `heal` runs. -----

/// What the component's healer heals with.
fn healer_config(
    config: &UnifiedHealingConfig,
    policy: PolicyConfig,
    settings: Option<&Settings>,
) -> HealerConfig {
    HealerConfig {
        policy,
        level: config.level,
        recovery_actions: settings.map_or_else(
            || vec![recovery::RESTART.to_string()],
            |s| s.recovery_actions.clone(),
        ),
        healing_timeout: Duration::from_secs(config.healing_timeout),
    }
}

/// The component's healer and what it needs to know about the component; owned by the owner task.
struct Restarts {
    healer: Healer,
    /// When the component last (re)started, as far as the engine knows: initialization or the end
    /// of the last healing episode.
    last_start: Instant,
}

impl Restarts {
    /// A failure to heal: the half-open trial when the breaker's cooldown is over, else the
    /// governor's verdict on a failure after this run's uptime.
    fn on_failure(&mut self, now: Instant) -> RestartDecision {
        let governor = self.healer.governor_mut();
        let trial = governor.breaker() == BreakerState::Open && governor.on_trial_due(now);
        if trial {
            RestartDecision::RestartNow
        } else {
            let up = now.saturating_duration_since(self.last_start);
            governor.on_failure(now, up)
        }
    }

    fn started(&mut self, at: Instant) {
        self.last_start = at;
    }

    /// A health verdict: healthy and up for `min_uptime` counts as a stable run.
    fn saw_health(&mut self, now: Instant, healthy: bool, min_uptime: Duration) {
        let up = now.saturating_duration_since(self.last_start);
        if healthy && up >= min_uptime {
            self.healer.governor_mut().on_stable(now);
        }
    }

    fn breaker(&self) -> BreakerState {
        self.healer.governor().breaker()
    }

    fn publish(&self, view: &mut Published) {
        let governor = self.healer.governor();
        view.breaker = governor.breaker();
        view.backoff = governor.current_backoff();
        view.next_trial_at = governor.next_trial_at();
    }
}

impl LocalHealing {
    /// One healing episode for `issue` after `delay`: the component's actions in order, each
    /// given the healing timeout to bring it back to health.
    async fn run_episode(
        &self,
        settings: &Settings,
        issue: Issue,
        delay: Duration,
    ) -> Result<HealingAction, HealingError> {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let begun = self
            .owner
            .ask(|reply| Command::Begin { issue, reply })
            .await?;
        let mut step = match begun {
            Ok((_plan, step)) => step,
            Err(NotStarted::AlreadyHealing { issue_type, .. }) => {
                // One `heal` at a time holds the turn, so this is a leftover: report it.
                let action = HealingAction::NoAction {
                    reason: format!("already healing {issue_type}"),
                };
                return self.finish(action, Ending::NoEpisode).await;
            }
        };
        loop {
            match step {
                EpisodeStep::Act { action, deadline } => {
                    let update = self.attempt(settings, &action, deadline).await?;
                    if let Some(record) = update.record {
                        self.owner.post(Command::Record(record));
                    }
                    step = update.step;
                }
                EpisodeStep::Recovered { action, follow_up } => {
                    return self.finish(action, Ending::Recovered { follow_up }).await;
                }
                EpisodeStep::Escalate { action, plan } => {
                    return self.finish(action, Ending::Escalated { plan }).await;
                }
                EpisodeStep::Wait => {
                    // `begin` and the updates below never leave the episode idle; if they did,
                    // waiting would hang, so report instead.
                    let action = HealingAction::NoAction {
                        reason: "healing episode had nothing to do".into(),
                    };
                    return self.finish(action, Ending::NoEpisode).await;
                }
            }
        }
    }

    /// Carries out one action and waits (polling health) until it healed or its deadline passed.
    async fn attempt(
        &self,
        settings: &Settings,
        action: &str,
        deadline: Instant,
    ) -> Result<EpisodeUpdate, HealingError> {
        let serial = self.owner.ask(|reply| Command::Attempt { reply }).await?;
        let name = action.to_string();
        let handler = self
            .owner
            .ask(|reply| Command::Handler { name, reply })
            .await?;
        let ok = match handler {
            None => {
                tracing::warn!(component = %self.id(), action, "no handler registered for recovery action");
                false
            }
            Some(handler) => match tokio::time::timeout_at(deadline, handler()).await {
                Err(_) => return self.deadline(serial).await,
                Ok(Err(why)) => {
                    tracing::warn!(component = %self.id(), action, cause = %why, "recovery action failed");
                    false
                }
                Ok(Ok(())) => true,
            },
        };
        let failed = self
            .owner
            .ask(|reply| Command::Outcome { serial, ok, reply })
            .await?;
        if let Some(update) = failed {
            return Ok(update);
        }
        if action == recovery::RESTART {
            self.owner.post(Command::Started { at: Instant::now() });
        }
        loop {
            let check = self
                .owner
                .ask(|reply| Command::HealthCheck { reply })
                .await??;
            let own = match check {
                Some(check) => match tokio::time::timeout_at(deadline, check()).await {
                    Ok(status) => status,
                    Err(_) => return self.deadline(serial).await,
                },
                None => HealthStatus::Healthy,
            };
            let status = self
                .owner
                .ask(|reply| Command::EngineHealth { own, reply })
                .await?;
            let update = self
                .owner
                .ask(|reply| Command::Judge { status, reply })
                .await?;
            if let Some(update) = update.filter(|u| u.step != EpisodeStep::Wait) {
                return Ok(update);
            }
            if Instant::now() >= deadline {
                return self.deadline(serial).await;
            }
            tokio::time::sleep_until((Instant::now() + settings.health_poll).min(deadline)).await;
        }
    }

    /// The attempt's deadline passed: the episode moves on.
    async fn deadline(&self, serial: u64) -> Result<EpisodeUpdate, HealingError> {
        let update = self
            .owner
            .ask(|reply| Command::Deadline { serial, reply })
            .await?;
        Ok(update.unwrap_or(EpisodeUpdate {
            record: None,
            step: EpisodeStep::Wait,
        }))
    }
}
