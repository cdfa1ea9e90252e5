//! The kernel's healing: it drives the engine's pure pieces ([`ProbeTracker`],
//! [`detect`], [`RecoveryEpisode`], the [`RestartGovernor`](crate::healing::policy::RestartGovernor))
//! for each component and carries out what they decide.
//!
//! - Probes: one timer chain per probe and run (armed at `next_due`, guarded by the component's
//!   epoch); the shell runs the probe and its outcome comes back as [`Input::ProbeResult`]. A liveness failure is an Issue, health Failed, and healing: at Basic a
//!   hard restart through the governor, at Advanced/Full a recovery episode whose restarts are hard
//!   (a hung process does not honour SIGTERM). A readiness probe gates dependents.
//! - Metric thresholds: judged on the readings the shell takes on its metrics tick.
//! - Log symptoms of severity Error or worse make the run Critical until it is restarted (the core
//!   cannot tell that a custom action fixed a symptom it only saw in text).
//! - Episodes: each attempt has a serial; its deadline and its command's result carry the serial,
//!   so late ones are ignored. Once an input is handled, every component whose health changed
//!   tells its episode and the plans waiting on it ([`Kernel::tell_health`]), never re-entrantly.
//! - At Full level an episode's follow-up (dependents after a restart) and its escalation are
//!   recovery plans, carried out by `plans.rs`.
//!
//! Nothing here does I/O: probes and action commands are effects the shell carries out.

use super::{AfterExit, ComponentKind, Effect, Goal, Kernel, Refusal, ReplyTo, Timer, TimerKind};
use crate::healing::detect::{self, BreachLevel};
use crate::healing::healer::NotStarted;
use crate::healing::policy::RestartDecision;
use crate::healing::probe::{ProbeKind, ProbeOutcome, ProbeTicket, ProbeTransition};
use crate::healing::recovery::{self, EpisodeStep, EpisodeUpdate};
use crate::model::{
    HealingAction, HealingLevel, HealthStatus, Issue, RecoveryRecord, RecoveryStrategy, RunState,
    Severity, SupervisorCommand,
};
use crate::protocol::{ErrorCode, Event};
use crate::text::duration as format_duration;

/// Who starts an episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Start {
    /// A detector: refused when automatic healing is off.
    Automatic,
    /// A failed liveness probe: the process is hung, its restarts are hard kills.
    Hung,
    /// The operator (`heal X`): acts even when automatic healing is off, and clears the counters.
    Operator,
}

impl Kernel {
    /// Tells every component whose health changed (or whose action just finished well) to its
    /// episode and to the plans waiting on it. Telling may change other components' health (a
    /// plan restarts a dependent); those are told in turn, each only when its health changed, so
    /// this ends when nothing changes any more.
    pub(super) fn tell_health(&mut self) {
        while !self.touched.is_empty() {
            for i in std::mem::take(&mut self.touched) {
                let health = self.health_of(i);
                let c = &mut self.components[i];
                let changed = health != c.told_health;
                if c.healer.wants_health(changed) {
                    let update = c.healer.health(&health, self.clock.now);
                    c.told_health = health;
                    if let Some(update) = update {
                        self.episode_update(i, update);
                    }
                } else {
                    c.told_health = health;
                }
                if changed {
                    self.plans_health_changed(i);
                }
            }
        }
    }

    // ----- probes -----

    /// Arms the timer for the component's next probe of `kind`, if it has one.
    pub(super) fn arm_probe(&mut self, i: usize, kind: ProbeKind) {
        let due = self.components[i].healer.probe(kind).map(|t| t.next_due());
        if let Some(at) = due {
            self.arm_component(i, TimerKind::Probe(kind), at);
        }
    }

    pub(super) fn on_probe_due(&mut self, i: usize, kind: ProbeKind) {
        let now = self.clock.now;
        let c = &mut self.components[i];
        if c.state != RunState::Running {
            return;
        }
        let cfg = match kind {
            ProbeKind::Liveness => c.spec.liveness.as_ref(),
            ProbeKind::Readiness => c.spec.readiness.as_ref(),
        };
        let (Some(tracker), Some(cfg)) = (c.healer.probe(kind), cfg) else {
            return;
        };
        let Some(ticket) = tracker.start(now) else {
            return;
        };
        self.effects.push(Effect::RunProbe {
            name: c.spec.name.clone(),
            epoch: c.epoch,
            kind,
            ticket,
            target: cfg.target(),
            timeout: cfg.timeout.0,
        });
    }

    pub(super) fn on_probe_result(
        &mut self,
        name: &str,
        epoch: u64,
        kind: ProbeKind,
        ticket: ProbeTicket,
        outcome: ProbeOutcome,
    ) {
        let Some(&i) = self.index.get(name) else {
            return;
        };
        let c = &mut self.components[i];
        if c.epoch != epoch || c.state != RunState::Running {
            return;
        }
        let now = self.clock.now;
        let Some(tracker) = c.healer.probe(kind) else {
            return;
        };
        let transition = tracker.record(ticket, now, &outcome);
        self.arm_probe(i, kind);
        match (kind, transition) {
            (_, None) => {}
            (ProbeKind::Liveness, Some(ProbeTransition::BecameReady)) => {
                self.log(i, "liveness probe passes again");
            }
            (ProbeKind::Liveness, Some(ProbeTransition::BecameUnhealthy { failures, reason })) => {
                self.on_liveness_failed(i, failures, &reason);
            }
            (ProbeKind::Readiness, Some(ProbeTransition::BecameReady)) => {
                self.components[i].ready = true;
                self.log(i, "ready (readiness probe passed)");
                self.publish(i);
                self.start_ready();
            }
            (ProbeKind::Readiness, Some(ProbeTransition::BecameUnhealthy { failures, reason })) => {
                self.components[i].ready = false;
                self.log(i, &format!("not ready any more: {reason}"));
                let issue =
                    detect::probe_issue(name, ProbeKind::Readiness, failures, reason.as_str());
                self.record_issue(issue);
            }
        }
    }

    fn on_liveness_failed(&mut self, i: usize, failures: u32, reason: &str) {
        let name = self.components[i].spec.name.clone();
        let issue = detect::probe_issue(&name, ProbeKind::Liveness, failures, reason);
        self.components[i].health =
            HealthStatus::Failed(format!("liveness probe failed {failures} times: {reason}"));
        self.log(
            i,
            &format!("liveness probe failed {failures} times in a row: {reason}"),
        );
        self.record_issue(issue.clone());
        if !self.components[i].spec.auto_healing {
            self.no_action(i, "automatic healing is disabled for this component");
            return;
        }
        match self.components[i].spec.healing_level {
            HealingLevel::Basic => {
                if let Err(why) = self.heal_restart(i, true) {
                    self.no_action(i, &why);
                }
            }
            HealingLevel::Advanced | HealingLevel::Full => {
                if let Err((_, why)) = self.start_episode(i, issue, Start::Hung) {
                    self.log(i, &why);
                }
            }
        }
    }

    /// Records that healing did nothing, and why.
    pub(super) fn no_action(&mut self, i: usize, reason: &str) {
        self.log(i, &format!("not healed: {reason}"));
        self.components[i].last_action = Some(HealingAction::NoAction {
            reason: reason.to_string(),
        });
        self.publish(i);
    }

    // ----- thresholds and log symptoms -----

    /// Re-evaluates the component's thresholds; an increase in severity is an Issue, and crossing
    /// into Critical starts healing at Advanced/Full.
    pub(super) fn check_thresholds(&mut self, i: usize) {
        let c = &self.components[i];
        let thresholds = match c.kind {
            ComponentKind::Process => c.spec.thresholds,
            ComponentKind::Linked => c.linked.as_ref().map_or(
                super::linked::LINKED_THRESHOLDS,
                super::linked::Linked::thresholds,
            ),
        };
        let breaches =
            detect::threshold_breaches(&thresholds, c.metrics.as_ref(), c.reported.as_ref());
        let status = HealthStatus::combine(breaches.iter().map(detect::Breach::status));
        let before = std::mem::replace(&mut self.components[i].threshold_health, status.clone());
        if status == before {
            return;
        }
        self.publish(i);
        if status.rank() <= before.rank() {
            return;
        }
        let Some(worst) = breaches.iter().max_by_key(|b| b.level) else {
            return;
        };
        let name = self.components[i].spec.name.clone();
        let issue = worst.issue(&name);
        self.log(i, &format!("threshold crossed: {}", worst.message()));
        self.record_issue(issue.clone());
        if worst.level == BreachLevel::Critical {
            self.heal_issue(i, issue);
        }
    }

    /// A log pattern matched. Error or worse makes the run Critical and heals at Advanced/Full.
    pub(super) fn on_log_issue(&mut self, issue: Issue, generation: u64) {
        let Some(&i) = self.index.get(&issue.component) else {
            return;
        };
        let current = self.components[i].generation == generation
            && self.components[i].state == RunState::Running;
        self.record_issue(issue.clone());
        if !current || issue.severity < Severity::Error {
            return;
        }
        let symptom = HealthStatus::Critical(format!("{} in its output", issue.issue_type));
        let c = &mut self.components[i];
        c.health = std::mem::replace(&mut c.health, HealthStatus::Healthy).worse(symptom);
        self.publish(i);
        self.heal_issue(i, issue);
    }

    /// The healing path for an issue that is not a crash: a recovery episode at Advanced/Full;
    /// Basic only restarts on failures (crash, liveness), so here it reports.
    fn heal_issue(&mut self, i: usize, issue: Issue) {
        match self.components[i].spec.healing_level {
            HealingLevel::Basic => {}
            HealingLevel::Advanced | HealingLevel::Full => {
                if !self.components[i].spec.auto_healing {
                    self.no_action(i, "automatic healing is disabled for this component");
                    return;
                }
                if let Err((_, why)) = self.start_episode(i, issue, Start::Automatic) {
                    self.log(i, &why);
                }
            }
        }
    }

    // ----- recovery episodes -----

    /// Starts a recovery episode for `issue`. Returns what is being done, for the operator.
    pub(super) fn start_episode(
        &mut self,
        i: usize,
        issue: Issue,
        start: Start,
    ) -> Result<String, Refusal> {
        let name = self.components[i].spec.name.clone();
        if self.shutdown.is_some() {
            return Err((ErrorCode::ShuttingDown, "the core is shutting down".into()));
        }
        if start != Start::Operator && !self.components[i].spec.auto_healing {
            self.no_action(i, "automatic healing is disabled for this component");
            return Err((
                ErrorCode::Rejected,
                format!("automatic healing is disabled for {name}"),
            ));
        }
        let dependents: Vec<String> = self
            .components
            .iter()
            .filter(|d| d.spec.depends_on.contains(&name))
            .map(|d| d.spec.name.clone())
            .collect();
        let now = self.clock.now;
        // Knowledge-driven choice (Advanced and Full): the strategy that cured this issue type
        // most recently goes first, if the registry said so in time; ask again for next time.
        self.effects.push(Effect::AskAdvice {
            component: name.clone(),
            issue_type: issue.issue_type.clone(),
            actions: self.components[i].spec.recovery_actions.clone(),
        });
        let c = &mut self.components[i];
        let advice = c.advice.get(&issue.issue_type).cloned();
        let prefer = advice.as_ref().map(|(action, _)| action.as_str());
        let (plan, step) =
            match c
                .healer
                .begin(issue.clone(), dependents, prefer, start == Start::Hung, now)
            {
                Ok(started) => started,
                Err(NotStarted::AlreadyHealing { issue_type, action }) => {
                    return Ok(format!(
                        "{name} is already being healed (issue {issue_type}): trying {}",
                        action.as_deref().unwrap_or("-")
                    ));
                }
            };
        if start == Start::Operator {
            // The operator's request: like a manual restart, it clears the counters.
            c.healer.governor_mut().reset();
        }
        let chosen = advice
            .filter(|(action, _)| plan.first() == Some(action))
            .map(|(_, reason)| reason);
        c.strategy = Some(
            chosen
                .clone()
                .unwrap_or_else(|| format!("default order: {}", plan.join(", then "))),
        );
        let message = format!(
            "healing {name} ({}): {}, {} each{}",
            issue.issue_type,
            plan.join(", then "),
            format_duration(c.spec.healing_timeout),
            chosen.map_or(String::new(), |reason| format!(" ({reason})"))
        );
        self.log(i, &message);
        self.episode_step(i, step);
        Ok(message)
    }

    fn episode_update(&mut self, i: usize, update: EpisodeUpdate) {
        if let Some(record) = update.record {
            self.publish_record(i, record);
        }
        self.episode_step(i, update.step);
    }

    fn episode_step(&mut self, i: usize, step: EpisodeStep) {
        match step {
            EpisodeStep::Wait => {}
            EpisodeStep::Act { .. } if self.shutdown.is_some() => {
                // Nothing is healed while everything is being stopped.
                self.components[i].healer.finish();
            }
            EpisodeStep::Act { action, deadline } => {
                // A process's own action (a command or a signal) is judged once it has finished.
                let runs_on = self.components[i].kind == ComponentKind::Process
                    && action != recovery::RESTART;
                let c = &mut self.components[i];
                let serial = c.healer.attempt(runs_on);
                c.last_action = Some(recovery::action_for(&action));
                let name = c.spec.name.clone();
                self.arm(deadline, Timer::Episode { name, serial });
                self.log(i, &format!("healing: trying {action}"));
                if let Err(why) = self.carry_out(i, &action, serial) {
                    self.log(i, &format!("healing: {action} could not be done: {why}"));
                    if let Some(update) = self.components[i].healer.action_failed(self.clock.now) {
                        self.episode_update(i, update);
                    }
                }
                self.publish(i);
            }
            EpisodeStep::Recovered { action, follow_up } => {
                let episode = self.components[i].healer.finish();
                self.log(i, &format!("healed by {action}"));
                self.components[i].last_action = Some(action);
                self.publish(i);
                let name = self.components[i].spec.name.clone();
                let (strategy, _) = self.fleet.recovery.scope_of(&name);
                if !follow_up.is_empty()
                    && strategy != RecoveryStrategy::OneForOne
                    && let Some(issue) = episode.map(|e| e.issue().clone())
                {
                    // Its dependents are restarted after it, as a plan.
                    self.follow_up_plan(i, &issue, strategy, follow_up);
                }
            }
            EpisodeStep::Escalate { action, plan } => {
                let name = self.components[i].spec.name.clone();
                let cause = self.components[i].healer.finish();
                let reason = match &action {
                    HealingAction::Escalate { reason } => reason.clone(),
                    other => other.to_string(),
                };
                self.log(i, &format!("healing gave up: {reason}"));
                self.components[i].last_action = Some(action);
                let mut issue =
                    Issue::new(&name, detect::issue_types::HEALING_FAILED, Severity::Error)
                        .with("reason", &reason);
                if let Some(e) = &cause {
                    issue = issue
                        .with("cause", &e.issue().issue_type)
                        .with("cause_id", &e.issue().id);
                }
                self.record_issue(issue.clone());
                match self.components[i].spec.healing_level {
                    // The operator is told; nothing else is left to try.
                    HealingLevel::Basic | HealingLevel::Advanced => {
                        for step in plan {
                            if let crate::model::RecoveryStep::NotifyOperator { message } = step {
                                self.notice(crate::protocol::NoticeLevel::Error, message);
                            }
                        }
                    }
                    // The operator is told, then the group's strategy restarts the component
                    // and what depends on it.
                    HealingLevel::Full => {
                        let notify = plan
                            .into_iter()
                            .filter(|s| {
                                matches!(s, crate::model::RecoveryStep::NotifyOperator { .. })
                            })
                            .collect();
                        let cause = cause.map_or(issue, |e| e.issue().clone());
                        self.escalate_plan(i, &cause, notify);
                    }
                }
            }
        }
    }

    /// Carries out one recovery action of an episode.
    fn carry_out(&mut self, i: usize, action: &str, serial: u64) -> Result<(), String> {
        match self.components[i].kind {
            ComponentKind::Linked => {
                if action == recovery::RESTART {
                    let now = self.clock.now;
                    let uptime = self.components[i].uptime(now);
                    match self.components[i]
                        .healer
                        .governor_mut()
                        .on_failure(now, uptime)
                    {
                        RestartDecision::RestartNow | RestartDecision::RestartAfter(_) => {
                            self.components[i].healer.governor_mut().on_restarted(now);
                            self.components[i].restarts += 1;
                        }
                        RestartDecision::BreakerOpened { cooldown } => {
                            self.breaker_opened(i, cooldown);
                            return Err("circuit breaker opened".into());
                        }
                        RestartDecision::NoAction { reason } => return Err(reason),
                    }
                }
                self.send_command(
                    i,
                    SupervisorCommand::from_action(action),
                    super::linked::Waiter::Nobody,
                )
                .map(|_| ())
                .map_err(|(_, m)| m)
            }
            ComponentKind::Process => match action {
                recovery::RESTART => {
                    let hard = self.components[i].healer.is_hard();
                    self.heal_restart(i, hard)
                }
                "start" | "stop" => Err(format!("{action} is not a recovery action")),
                other => self
                    .run_action(i, other, Some(serial), ReplyTo::NOBODY)
                    .map_err(|(_, m)| m),
            },
        }
    }

    /// Restarts a process component through the governor (which may back off or open the breaker).
    /// `hard`: the process is hung, SIGKILL it instead of asking it to stop.
    pub(super) fn heal_restart(&mut self, i: usize, hard: bool) -> Result<(), String> {
        let now = self.clock.now;
        let state = self.components[i].state;
        match state {
            RunState::Starting | RunState::Backoff => return Ok(()),
            RunState::Stopping => return Err("it is stopping".into()),
            RunState::Stopped => return Err("it was stopped by the operator".into()),
            RunState::Running | RunState::Exited | RunState::Failed | RunState::BreakerOpen => {}
        }
        let uptime = self.components[i].uptime(now);
        let decision = self.components[i]
            .healer
            .governor_mut()
            .on_failure(now, uptime);
        if let RestartDecision::NoAction { reason } = decision {
            return Err(reason);
        }
        let opened = matches!(decision, RestartDecision::BreakerOpened { .. });
        if state == RunState::Running {
            self.components[i].after_exit = AfterExit::Heal(decision);
            if hard {
                let pid = self.components[i]
                    .pid
                    .expect("a running component has a pid");
                self.log(i, "healing: SIGKILL to the process group (hung)");
                self.signal(i, pid, nix::sys::signal::Signal::SIGKILL);
                self.components[i].epoch += 1;
                self.set_state(i, RunState::Stopping);
            } else {
                self.stop(i);
            }
        } else {
            self.apply_decision(i, decision);
        }
        if opened {
            Err("restarting too often: the circuit breaker opened".into())
        } else {
            Ok(())
        }
    }

    /// A recovery action's command (or a linked component's handler) finished.
    pub(super) fn on_action_done(&mut self, name: &str, serial: u64, ok: bool) {
        let Some(&i) = self.index.get(name) else {
            return;
        };
        match self.components[i]
            .healer
            .action_done(serial, ok, self.clock.now)
        {
            Some(update) => self.episode_update(i, update),
            // Judge its effect now, and again whenever health changes until the deadline.
            None => self.publish(i),
        }
    }

    pub(super) fn on_episode_deadline(&mut self, name: &str, serial: u64) {
        let Some(&i) = self.index.get(name) else {
            return;
        };
        if let Some(update) = self.components[i].healer.deadline(serial, self.clock.now) {
            self.episode_update(i, update);
        }
    }

    /// Publishes a healing record and keeps it with the component.
    fn publish_record(&mut self, i: usize, record: RecoveryRecord) {
        self.log(
            i,
            &format!(
                "healing attempt {}: {} after {}",
                record.strategy,
                if record.successful {
                    "healthy again"
                } else {
                    "not healthy"
                },
                format_duration(record.duration)
            ),
        );
        self.components[i].healer.keep(record.clone());
        // What was learned changes the advice for the next episode of this issue type.
        let ask = Effect::AskAdvice {
            component: record.issue.component.clone(),
            issue_type: record.issue.issue_type.clone(),
            actions: self.components[i].spec.recovery_actions.clone(),
        };
        self.effects.push(Effect::Publish(Event::Healing {
            record: Box::new(record),
        }));
        self.effects.push(ask);
    }

    /// True when the operator wants the component up (used by linked components).
    pub(super) fn wants_up(&self, i: usize) -> bool {
        self.components[i].goal == Goal::Up
    }
}
