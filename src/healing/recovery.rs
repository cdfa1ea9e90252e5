//! One healing episode: which recovery action to try next for an issue, when an action counts as
//! failed, and what to escalate when none worked.
//!
//! A plain state machine taking `now`: it never carries out an action, waits, or reads the clock
//! for decisions (the wall-clock `timestamp` of a [`RecoveryRecord`] is the only `SystemTime::now`).
//! The caller carries out each [`EpisodeStep::Act`], arms a timer for its deadline, and feeds back
//! health reports, the deadline and action errors.
//!
//! The choice by level (guide §2.1, issue 3):
//! - `Basic`: restart only;
//! - `Advanced`: the component's `recovery_actions` in order (restart when it lists none), a
//!   preferred action first when one is given (knowledge-driven choice), escalation to the operator
//!   when all fail;
//! - `Full`: as Advanced, and the steps it returns ask the supervisor to coordinate dependents:
//!   after a successful restart the dependents are restarted too; when every action failed, a
//!   rest-for-one plan (stop dependents, restart the component, start dependents) is escalated.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::model::{
    HealingAction, HealingLevel, HealthStatus, Issue, RecoveryRecord, RecoveryStep,
    SupervisorCommand,
};

/// The built-in action that restarts the component.
pub const RESTART: &str = "restart";

/// What the caller should do next.
#[derive(Debug, Clone, PartialEq)]
pub enum EpisodeStep {
    /// Carry out `action` now, arm a timer for `deadline` ([`RecoveryEpisode::on_deadline`]) and
    /// report the component's health as it changes ([`RecoveryEpisode::on_health`]). If the action
    /// cannot be carried out, report [`RecoveryEpisode::on_action_failed`].
    Act { action: String, deadline: Instant },
    /// Nothing to do; keep waiting for health or the deadline.
    Wait,
    /// The component is healthy again after `action`; carry out `follow_up` (Full level only: the
    /// supervisor's coordination of dependents), then the episode is over.
    Recovered {
        action: HealingAction,
        follow_up: Vec<RecoveryStep>,
    },
    /// Every action failed: report `action` (an [`HealingAction::Escalate`]) and hand `plan` to the
    /// supervisor. The episode is over.
    Escalate {
        action: HealingAction,
        plan: Vec<RecoveryStep>,
    },
}

/// The answer to an event: an attempt that just ended (to publish and keep for the knowledge
/// registry), and the next step.
#[derive(Debug, Clone, PartialEq)]
pub struct EpisodeUpdate {
    pub record: Option<RecoveryRecord>,
    pub step: EpisodeStep,
}

impl EpisodeUpdate {
    fn wait() -> Self {
        EpisodeUpdate {
            record: None,
            step: EpisodeStep::Wait,
        }
    }
}

#[derive(Debug, Clone)]
struct Attempt {
    action: String,
    started: Instant,
    started_wall: SystemTime,
    deadline: Instant,
}

/// The healing of one issue of one component, from the first action to recovery or escalation.
#[derive(Debug, Clone)]
pub struct RecoveryEpisode {
    issue: Issue,
    level: HealingLevel,
    timeout: Duration,
    /// Action names in the order they will be tried; never empty.
    plan: Vec<String>,
    /// Index in `plan` of the next action to try.
    next: usize,
    current: Option<Attempt>,
    /// Components that depend on this one (for Full level's coordination).
    dependents: Vec<String>,
    records: Vec<RecoveryRecord>,
    finished: bool,
}

/// The `HealingAction` reported for carrying out the named action.
pub fn action_for(name: &str) -> HealingAction {
    if name == RESTART {
        HealingAction::Restart
    } else {
        HealingAction::Recover {
            name: name.to_string(),
        }
    }
}

impl RecoveryEpisode {
    /// An episode for `issue`. `recovery_actions` is the component's list (ignored at Basic level);
    /// `healing_timeout` is how long each action has to bring the component back to Healthy.
    pub fn new(
        issue: Issue,
        level: HealingLevel,
        recovery_actions: &[String],
        healing_timeout: Duration,
        dependents: Vec<String>,
    ) -> Self {
        let plan = match level {
            HealingLevel::Basic => vec![RESTART.to_string()],
            HealingLevel::Advanced | HealingLevel::Full => {
                let mut plan: Vec<String> = Vec::new();
                for a in recovery_actions {
                    if !plan.contains(a) {
                        plan.push(a.clone());
                    }
                }
                if plan.is_empty() {
                    plan.push(RESTART.to_string());
                }
                plan
            }
        };
        RecoveryEpisode {
            issue,
            level,
            timeout: healing_timeout,
            plan,
            next: 0,
            current: None,
            dependents,
            records: Vec::new(),
            finished: false,
        }
    }

    /// Tries `action` first (e.g. the strategy that most recently worked for this issue type), if
    /// it is one of the component's actions and the level allows a choice. Call before `start`.
    pub fn prefer(mut self, action: &str) -> Self {
        match self.level {
            HealingLevel::Basic => {}
            HealingLevel::Advanced | HealingLevel::Full => {
                if let Some(i) = self.plan.iter().position(|a| a == action)
                    && self.next == 0
                {
                    let a = self.plan.remove(i);
                    self.plan.insert(0, a);
                }
            }
        }
        self
    }

    pub fn issue(&self) -> &Issue {
        &self.issue
    }

    /// The actions in the order they are (or were) tried.
    pub fn plan(&self) -> &[String] {
        &self.plan
    }

    /// The action being tried, if one is.
    pub fn current_action(&self) -> Option<&str> {
        self.current.as_ref().map(|a| a.action.as_str())
    }

    /// The deadline of the action being tried.
    pub fn deadline(&self) -> Option<Instant> {
        self.current.as_ref().map(|a| a.deadline)
    }

    /// Every attempt so far.
    pub fn records(&self) -> &[RecoveryRecord] {
        &self.records
    }

    /// True once the episode recovered or escalated.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Begins the episode: the first action to carry out.
    pub fn start(&mut self, now: Instant) -> EpisodeStep {
        if self.finished || self.current.is_some() {
            return EpisodeStep::Wait;
        }
        self.advance(now)
    }

    /// The component's health changed (or was checked). Healthy ends the current attempt as a
    /// success; anything else keeps waiting for the deadline.
    pub fn on_health(&mut self, now: Instant, status: &HealthStatus) -> EpisodeUpdate {
        if self.finished || !status.is_healthy() {
            return EpisodeUpdate::wait();
        }
        let Some(attempt) = self.current.take() else {
            return EpisodeUpdate::wait();
        };
        let record = self.record(&attempt, now, true);
        self.finished = true;
        let follow_up = self.follow_up(&attempt.action);
        EpisodeUpdate {
            record: Some(record),
            step: EpisodeStep::Recovered {
                action: action_for(&attempt.action),
                follow_up,
            },
        }
    }

    /// The current action's deadline timer fired. Ignored (Wait) when it is early or stale.
    pub fn on_deadline(&mut self, now: Instant) -> EpisodeUpdate {
        match &self.current {
            Some(a) if now >= a.deadline => self.fail_current(now),
            Some(_) | None => EpisodeUpdate::wait(),
        }
    }

    /// The current action could not be carried out at all (no handler, the command failed, the
    /// breaker refused a restart …): it fails now and the next one is tried.
    pub fn on_action_failed(&mut self, now: Instant) -> EpisodeUpdate {
        match &self.current {
            Some(_) => self.fail_current(now),
            None => EpisodeUpdate::wait(),
        }
    }

    fn fail_current(&mut self, now: Instant) -> EpisodeUpdate {
        let Some(attempt) = self.current.take() else {
            return EpisodeUpdate::wait();
        };
        let record = self.record(&attempt, now, false);
        EpisodeUpdate {
            record: Some(record),
            step: self.advance(now),
        }
    }

    fn advance(&mut self, now: Instant) -> EpisodeStep {
        match self.plan.get(self.next) {
            Some(action) => {
                let action = action.clone();
                self.next += 1;
                let deadline = now + self.timeout;
                self.current = Some(Attempt {
                    action: action.clone(),
                    started: now,
                    started_wall: SystemTime::now(),
                    deadline,
                });
                EpisodeStep::Act { action, deadline }
            }
            None => {
                self.finished = true;
                let reason = format!(
                    "{} did not bring {} back to healthy within {} each",
                    self.plan.join(", then "),
                    self.issue.component,
                    humantime::format_duration(self.timeout)
                );
                let plan = self.escalation_plan(&reason);
                EpisodeStep::Escalate {
                    action: HealingAction::Escalate { reason },
                    plan,
                }
            }
        }
    }

    fn record(&mut self, attempt: &Attempt, now: Instant, successful: bool) -> RecoveryRecord {
        let record = RecoveryRecord {
            issue: self.issue.clone(),
            strategy: attempt.action.clone(),
            successful,
            action: action_for(&attempt.action),
            timestamp: attempt.started_wall,
            duration: now.saturating_duration_since(attempt.started),
        };
        self.records.push(record.clone());
        record
    }

    fn follow_up(&self, action: &str) -> Vec<RecoveryStep> {
        match self.level {
            HealingLevel::Basic | HealingLevel::Advanced => Vec::new(),
            HealingLevel::Full if action == RESTART => self
                .dependents
                .iter()
                .flat_map(|d| {
                    [
                        RecoveryStep::ComponentAction {
                            component: d.clone(),
                            action: SupervisorCommand::Restart,
                        },
                        RecoveryStep::WaitForHealth {
                            component: d.clone(),
                            timeout: self.timeout,
                        },
                    ]
                })
                .collect(),
            HealingLevel::Full => Vec::new(),
        }
    }

    fn escalation_plan(&self, reason: &str) -> Vec<RecoveryStep> {
        let component = &self.issue.component;
        let notify = RecoveryStep::NotifyOperator {
            message: format!(
                "{component}: automatic healing gave up ({}): {reason}",
                self.issue.issue_type
            ),
        };
        match self.level {
            HealingLevel::Basic | HealingLevel::Advanced => vec![notify],
            HealingLevel::Full => {
                // OTP's rest_for_one: stop the dependents (last started first), restart the
                // component, start the dependents again once it is healthy.
                let mut plan = vec![notify];
                for d in self.dependents.iter().rev() {
                    plan.push(RecoveryStep::ComponentAction {
                        component: d.clone(),
                        action: SupervisorCommand::Stop,
                    });
                }
                plan.push(RecoveryStep::ComponentAction {
                    component: component.clone(),
                    action: SupervisorCommand::Restart,
                });
                plan.push(RecoveryStep::WaitForHealth {
                    component: component.clone(),
                    timeout: self.timeout,
                });
                for d in &self.dependents {
                    plan.push(RecoveryStep::ComponentAction {
                        component: d.clone(),
                        action: SupervisorCommand::Start,
                    });
                }
                plan
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Severity;

    const TIMEOUT: Duration = Duration::from_secs(30);

    fn issue() -> Issue {
        Issue::new("cache", "liveness_failed", Severity::Error)
    }

    fn actions(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn act(step: &EpisodeStep) -> &str {
        match step {
            EpisodeStep::Act { action, .. } => action,
            other => panic!("expected an action, got {other:?}"),
        }
    }

    fn critical() -> HealthStatus {
        HealthStatus::Critical("still bad".into())
    }

    #[tokio::test(start_paused = true)]
    async fn basic_level_only_restarts() {
        let mut e = RecoveryEpisode::new(
            issue(),
            HealingLevel::Basic,
            &actions(&["clear_cache", "restart"]),
            TIMEOUT,
            vec![],
        )
        .prefer("clear_cache");
        assert_eq!(e.plan(), ["restart"]);
        assert_eq!(act(&e.start(Instant::now())), "restart");
    }

    #[tokio::test(start_paused = true)]
    async fn an_action_that_heals_within_the_timeout_ends_the_episode_with_a_record() {
        let mut e = RecoveryEpisode::new(
            issue(),
            HealingLevel::Advanced,
            &actions(&["clear_cache", "restart"]),
            TIMEOUT,
            vec![],
        );
        assert_eq!(act(&e.start(Instant::now())), "clear_cache");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(
            e.on_health(Instant::now(), &critical()),
            EpisodeUpdate::wait()
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        let u = e.on_health(Instant::now(), &HealthStatus::Healthy);
        let record = u.record.expect("a record of the attempt");
        assert!(record.successful);
        assert_eq!(record.strategy, "clear_cache");
        assert_eq!(record.duration, Duration::from_secs(3));
        assert_eq!(record.issue.issue_type, "liveness_failed");
        assert_eq!(
            u.step,
            EpisodeStep::Recovered {
                action: HealingAction::Recover {
                    name: "clear_cache".into()
                },
                follow_up: vec![]
            }
        );
        assert!(e.is_finished());
    }

    #[tokio::test(start_paused = true)]
    async fn an_action_not_healthy_within_the_healing_timeout_falls_through_to_the_next() {
        let mut e = RecoveryEpisode::new(
            issue(),
            HealingLevel::Advanced,
            &actions(&["clear_cache", "restart"]),
            TIMEOUT,
            vec![],
        );
        let first = e.start(Instant::now());
        assert_eq!(act(&first), "clear_cache");
        let EpisodeStep::Act { deadline, .. } = first else {
            unreachable!()
        };
        assert_eq!(deadline, Instant::now() + TIMEOUT);
        // A stale or early timer changes nothing.
        tokio::time::advance(Duration::from_secs(29)).await;
        assert_eq!(e.on_deadline(Instant::now()), EpisodeUpdate::wait());
        tokio::time::advance(Duration::from_secs(1)).await;
        let u = e.on_deadline(Instant::now());
        let failed = u.record.expect("the failed attempt is recorded");
        assert!(!failed.successful);
        assert_eq!(failed.duration, TIMEOUT);
        assert_eq!(act(&u.step), "restart");
        tokio::time::advance(Duration::from_secs(4)).await;
        let u = e.on_health(Instant::now(), &HealthStatus::Healthy);
        assert_eq!(
            u.step,
            EpisodeStep::Recovered {
                action: HealingAction::Restart,
                follow_up: vec![]
            }
        );
        assert_eq!(
            e.records()
                .iter()
                .map(|r| (r.strategy.as_str(), r.successful))
                .collect::<Vec<_>>(),
            [("clear_cache", false), ("restart", true)]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_action_that_cannot_be_carried_out_fails_at_once() {
        let mut e = RecoveryEpisode::new(
            issue(),
            HealingLevel::Advanced,
            &actions(&["reconnect", "restart"]),
            TIMEOUT,
            vec![],
        );
        e.start(Instant::now());
        let u = e.on_action_failed(Instant::now());
        assert_eq!(u.record.map(|r| r.duration), Some(Duration::ZERO));
        assert_eq!(act(&u.step), "restart");
    }

    #[tokio::test(start_paused = true)]
    async fn advanced_level_escalates_to_the_operator_when_every_action_failed() {
        let mut e = RecoveryEpisode::new(
            issue(),
            HealingLevel::Advanced,
            &actions(&["clear_cache", "restart"]),
            TIMEOUT,
            vec!["api".into()],
        );
        e.start(Instant::now());
        tokio::time::advance(TIMEOUT).await;
        e.on_deadline(Instant::now());
        tokio::time::advance(TIMEOUT).await;
        let u = e.on_deadline(Instant::now());
        match u.step {
            EpisodeStep::Escalate {
                action: HealingAction::Escalate { reason },
                plan,
            } => {
                assert!(reason.contains("clear_cache, then restart"), "{reason}");
                assert!(matches!(
                    plan.as_slice(),
                    [RecoveryStep::NotifyOperator { .. }]
                ));
            }
            other => panic!("{other:?}"),
        }
        assert!(e.is_finished());
        assert_eq!(e.records().len(), 2);
        assert_eq!(
            e.on_health(Instant::now(), &HealthStatus::Healthy),
            EpisodeUpdate::wait()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn full_level_escalates_a_rest_for_one_plan_for_its_dependents() {
        let mut e = RecoveryEpisode::new(
            issue(),
            HealingLevel::Full,
            &actions(&["restart"]),
            TIMEOUT,
            vec!["api".into(), "worker".into()],
        );
        e.start(Instant::now());
        tokio::time::advance(TIMEOUT).await;
        let EpisodeStep::Escalate { plan, .. } = e.on_deadline(Instant::now()).step else {
            panic!("expected escalation");
        };
        let comp = |c: &str, a| RecoveryStep::ComponentAction {
            component: c.into(),
            action: a,
        };
        assert!(matches!(plan[0], RecoveryStep::NotifyOperator { .. }));
        assert_eq!(
            plan[1..],
            [
                comp("worker", SupervisorCommand::Stop),
                comp("api", SupervisorCommand::Stop),
                comp("cache", SupervisorCommand::Restart),
                RecoveryStep::WaitForHealth {
                    component: "cache".into(),
                    timeout: TIMEOUT
                },
                comp("api", SupervisorCommand::Start),
                comp("worker", SupervisorCommand::Start),
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn full_level_restarts_dependents_after_the_component_recovers_by_restart() {
        let mut e = RecoveryEpisode::new(
            issue(),
            HealingLevel::Full,
            &actions(&["restart"]),
            TIMEOUT,
            vec!["api".into()],
        );
        e.start(Instant::now());
        let u = e.on_health(Instant::now(), &HealthStatus::Healthy);
        assert_eq!(
            u.step,
            EpisodeStep::Recovered {
                action: HealingAction::Restart,
                follow_up: vec![
                    RecoveryStep::ComponentAction {
                        component: "api".into(),
                        action: SupervisorCommand::Restart
                    },
                    RecoveryStep::WaitForHealth {
                        component: "api".into(),
                        timeout: TIMEOUT
                    }
                ]
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_preferred_action_is_tried_first() {
        let mut e = RecoveryEpisode::new(
            issue(),
            HealingLevel::Advanced,
            &actions(&["clear_cache", "reconnect", "restart"]),
            TIMEOUT,
            vec![],
        )
        .prefer("reconnect")
        .prefer("not_an_action");
        assert_eq!(e.plan(), ["reconnect", "clear_cache", "restart"]);
        assert_eq!(act(&e.start(Instant::now())), "reconnect");
    }

    #[tokio::test(start_paused = true)]
    async fn a_component_without_recovery_actions_is_restarted() {
        let mut e = RecoveryEpisode::new(issue(), HealingLevel::Full, &[], TIMEOUT, vec![]);
        assert_eq!(act(&e.start(Instant::now())), "restart");
    }
}
