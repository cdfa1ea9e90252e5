//! Full-level recovery plans (guide §4.2): the kernel carries out what the pure
//! [`planner`](crate::healing::planner) decided, one step at a time.
//!
//! - A plan starts when a component at `healing_level = "full"` crashes and its strategy touches
//!   more than itself, when a component reports an issue naming other affected components (§2.2),
//!   and when a Full-level episode gives up or recovers by a restart.
//! - One plan at a time per component: a later issue of a component in a running plan joins it
//!   (it is listed in the plan's `joined`) instead of starting another.
//! - `ComponentAction` carries out the action (a linked component's answer is waited for, with
//!   the command timeout); `WaitForHealth` parks the plan until the component is healthy or the
//!   step's timer fires, which ends the plan with `NotifyOperator` and the reason. The plan's
//!   overall timeout (`plan_timeout`) cancels it the same way. Components the plan had stopped
//!   and not started again are handed back to normal supervision when it ends early.
//! - Every change is published as [`Event::Plan`]; the last [`KEPT_PLANS`] that ended are kept for
//!   `Request::Plans`.
//!
//! Nothing here does I/O: the notify command is an [`Effect::Notify`] the shell runs.

use std::time::Duration;

use tokio::time::Instant;

use super::linked::Waiter;
use super::{ComponentKind, Effect, Goal, Kernel, ReplyTo, Timer};
use crate::healing::planner::{self, DependencyGraph, Member};
use crate::healing::policy::RestartDecision;
use crate::model::{
    Issue, PlanState, PlanStatus, PlanStep, RecoveryStep, RecoveryStrategy, RunState, StepState,
    SupervisorCommand,
};
use crate::protocol::{Event, NoticeLevel};
use crate::text::duration as format_duration;

/// How many ended plans `Request::Plans` still shows.
pub(super) const KEPT_PLANS: usize = 20;

/// A plan being carried out.
pub(super) struct PlanRun {
    /// What the operator sees; kept current.
    status: PlanStatus,
    started: Instant,
    /// When each step started (index as `status.steps`).
    step_started: Vec<Option<Instant>>,
    /// The step being carried out, or the next one.
    next: usize,
    /// Waiting for this component to be healthy until this deadline.
    waiting: Option<(usize, Instant)>,
    /// Waiting for a linked component's answer to this command.
    command: Option<u64>,
    /// The components that failed: their restart goes through the restart governor.
    failed: Vec<String>,
    /// Components this plan stopped and has not started again.
    stopped: Vec<usize>,
    /// Crashed components whose restart the governor allowed and the plan holds until its
    /// step comes (so they start in the plan's order).
    held: Vec<(usize, RestartDecision)>,
}

/// Whether an issue was coordinated by a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Coordinated {
    /// A new plan started.
    Started(u64),
    /// A running plan already covers the component: the issue joined it.
    Joined(u64),
    /// Nothing to coordinate beyond the component itself.
    No,
}

impl Kernel {
    /// The dependency graph and strategy of the group `name` belongs to (the fleet when none).
    fn scope(&self, name: &str) -> (RecoveryStrategy, DependencyGraph) {
        let (strategy, members) = self.fleet.recovery.scope_of(name);
        let graph = self
            .components
            .iter()
            .filter(|c| !c.retired)
            .filter(|c| members.is_none_or(|m| m.contains(&c.spec.name)))
            .map(|c| {
                Member::new(
                    &c.spec.name,
                    c.kind,
                    &c.spec.depends_on,
                    c.spec.healing_timeout,
                )
            })
            .collect();
        (strategy, DependencyGraph::new(graph))
    }

    /// The running plan that acts on component `name`, if any.
    pub(super) fn plan_of(&self, name: &str) -> Option<u64> {
        self.plans
            .iter()
            .find(|p| p.status.affected.iter().any(|a| a == name))
            .map(|p| p.status.id)
    }

    /// Plans the recovery of `issue` (of component `i`, or naming affected components) by its
    /// group's strategy, and starts the plan when it does more than restart `i` alone. A component
    /// already in a running plan joins it.
    pub(super) fn coordinate(&mut self, i: usize, issue: &Issue) -> Coordinated {
        if let Some(id) = self.joinable(i, issue) {
            self.join_plan(id, issue);
            return Coordinated::Joined(id);
        }
        let name = self.components[i].spec.name.clone();
        let (strategy, graph) = self.scope(&name);
        let plan = planner::coordinate_healing(issue, &graph, strategy);
        if !plan.is_coordinated() {
            return Coordinated::No;
        }
        Coordinated::Started(self.start_plan(i, issue, plan, Vec::new(), Vec::new()))
    }

    /// The running plan that acts on component `i` or on a component `issue` names.
    fn joinable(&self, i: usize, issue: &Issue) -> Option<u64> {
        std::iter::once(self.components[i].spec.name.clone())
            .chain(issue.affected_components())
            .find_map(|c| self.plan_of(&c))
    }

    /// Component `i` crashed at Full level and wants restarting. The governor decides whether
    /// and when (backoff, the breaker); when the group's strategy touches more than `i`, the
    /// restart it allows is held for the plan's step, so `i` starts in the plan's order. A crash
    /// of a component already in a running plan joins it and is restarted as usual.
    pub(super) fn crash_at_full_level(&mut self, i: usize, issue: &Issue, uptime: Duration) {
        if let Some(id) = self.joinable(i, issue) {
            self.join_plan(id, issue);
            return self.after_failure(i, uptime);
        }
        let name = self.components[i].spec.name.clone();
        let (strategy, graph) = self.scope(&name);
        let plan = planner::coordinate_healing(issue, &graph, strategy);
        if !plan.is_coordinated() {
            return self.after_failure(i, uptime);
        }
        let now = self.clock.now;
        let decision = self.components[i]
            .healer
            .governor_mut()
            .on_failure(now, uptime);
        match decision {
            RestartDecision::RestartNow | RestartDecision::RestartAfter(_) => {
                self.log(i, "restart held for the recovery plan");
                self.components[i].epoch += 1;
                self.set_state(i, RunState::Backoff);
                self.start_plan(i, issue, plan, Vec::new(), vec![(i, decision)]);
            }
            // The breaker (or a policy) says no: nothing to coordinate.
            RestartDecision::BreakerOpened { .. } | RestartDecision::NoAction { .. } => {
                self.apply_decision(i, decision)
            }
        }
    }

    /// A Full-level episode of component `i` gave up: the operator is told first (`notify`), then
    /// the group's strategy restarts the component and what depends on it.
    pub(super) fn escalate_plan(&mut self, i: usize, issue: &Issue, notify: Vec<RecoveryStep>) {
        let name = self.components[i].spec.name.clone();
        if let Some(id) = self.plan_of(&name) {
            for step in notify {
                if let RecoveryStep::NotifyOperator { message } = step {
                    self.notify_operator(id, &name, &message);
                }
            }
            self.join_plan(id, issue);
            return;
        }
        let (strategy, graph) = self.scope(&name);
        let plan = planner::coordinate_healing(issue, &graph, strategy);
        self.start_plan(i, issue, plan, notify, Vec::new());
    }

    /// A Full-level episode of component `i` recovered by a restart: its dependents are
    /// restarted after it (`steps`, the episode's follow-up), as a plan.
    pub(super) fn follow_up_plan(
        &mut self,
        i: usize,
        issue: &Issue,
        strategy: RecoveryStrategy,
        steps: Vec<RecoveryStep>,
    ) {
        let name = self.components[i].spec.name.clone();
        if let Some(id) = self.plan_of(&name) {
            return self.join_plan(id, issue);
        }
        let mut affected = vec![name];
        for step in &steps {
            if let RecoveryStep::ComponentAction { component, .. } = step
                && !affected.contains(component)
            {
                affected.push(component.clone());
            }
        }
        let plan = planner::Plan {
            strategy,
            failed: Vec::new(),
            affected,
            steps,
        };
        self.start_plan(i, issue, plan, Vec::new(), Vec::new());
    }

    /// Starts carrying out `plan` for `issue` of component `i`, after the `prefix` steps; `held`
    /// are the governor's restarts the plan carries out at their components' steps.
    fn start_plan(
        &mut self,
        i: usize,
        issue: &Issue,
        plan: planner::Plan,
        prefix: Vec<RecoveryStep>,
        held: Vec<(usize, RestartDecision)>,
    ) -> u64 {
        self.next_plan += 1;
        let id = self.next_plan;
        let now = self.clock.now;
        let steps: Vec<PlanStep> = prefix
            .into_iter()
            .chain(plan.steps)
            .map(|step| PlanStep {
                step,
                state: StepState::Pending,
                duration: None,
                detail: None,
            })
            .collect();
        let summary = steps
            .iter()
            .map(|s| step_words(&s.step))
            .collect::<Vec<_>>()
            .join(", ");
        let name = self.components[i].spec.name.clone();
        let status = PlanStatus {
            id,
            component: name.clone(),
            issue_type: issue.issue_type.clone(),
            issue_id: issue.id.clone(),
            strategy: plan.strategy,
            state: PlanState::Running,
            affected: plan.affected,
            steps,
            joined: Vec::new(),
            started_at: self.clock.wall,
            duration: Duration::ZERO,
            reason: None,
        };
        let count = status.steps.len();
        self.plans.push(PlanRun {
            status,
            started: now,
            step_started: vec![None; count],
            next: 0,
            waiting: None,
            command: None,
            failed: plan.failed,
            stopped: Vec::new(),
            held,
        });
        let message = format!(
            "recovery plan {id} for {name} ({}, {}): {summary}",
            issue.issue_type, plan.strategy
        );
        self.log(i, &message);
        self.notice(NoticeLevel::Warning, message);
        let at = now + self.fleet.recovery.plan_timeout;
        self.arm(at, Timer::PlanTimeout { plan: id });
        self.advance_plan(id);
        id
    }

    /// A later issue of a component in plan `id`: it joins the plan.
    fn join_plan(&mut self, id: u64, issue: &Issue) {
        let Some(pos) = self.plans.iter().position(|p| p.status.id == id) else {
            return;
        };
        let what = format!("{} of {} ({})", issue.issue_type, issue.component, issue.id);
        self.plans[pos].status.joined.push(what.clone());
        if let Some(&i) = self.index.get(&issue.component) {
            self.log(i, &format!("joins recovery plan {id}: {what}"));
        }
        self.publish_plan(pos);
    }

    fn publish_plan(&mut self, pos: usize) {
        let now = self.clock.now;
        let run = &mut self.plans[pos];
        run.status.duration = now.saturating_duration_since(run.started);
        for (k, started) in run.step_started.iter().enumerate() {
            if let (Some(at), StepState::Running) = (started, run.status.steps[k].state) {
                run.status.steps[k].duration = Some(now.saturating_duration_since(*at));
            }
        }
        let plan = Box::new(run.status.clone());
        self.effects.push(Effect::Publish(Event::Plan { plan }));
    }

    /// Marks step `k` of the plan at `pos` as ended in `state`.
    fn end_step(&mut self, pos: usize, k: usize, state: StepState, detail: Option<String>) {
        let now = self.clock.now;
        let run = &mut self.plans[pos];
        let started = run.step_started[k].unwrap_or(now);
        let step = &mut run.status.steps[k];
        step.state = state;
        step.duration = Some(now.saturating_duration_since(started));
        if detail.is_some() {
            step.detail = detail;
        }
    }

    /// Carries the plan on until it must wait (for health or an answer) or it ends.
    pub(super) fn advance_plan(&mut self, id: u64) {
        loop {
            let Some(pos) = self.plans.iter().position(|p| p.status.id == id) else {
                return;
            };
            if self.shutdown.is_some() {
                return self.end_plan(pos, PlanState::Failed, "the core is shutting down".into());
            }
            if let Some((j, _)) = self.plans[pos].waiting {
                if !self.health_of(j).is_healthy() {
                    return;
                }
                self.plans[pos].waiting = None;
                let k = self.plans[pos].next;
                self.end_step(pos, k, StepState::Done, None);
                self.plans[pos].next += 1;
            }
            if self.plans[pos].command.is_some() {
                return;
            }
            let k = self.plans[pos].next;
            let Some(step) = self.plans[pos].status.steps.get(k).map(|s| s.step.clone()) else {
                return self.end_plan(pos, PlanState::Done, String::new());
            };
            self.plans[pos].step_started[k] = Some(self.clock.now);
            self.plans[pos].status.steps[k].state = StepState::Running;
            match step {
                RecoveryStep::NotifyOperator { message } => {
                    let component = self.plans[pos].status.component.clone();
                    self.notify_operator(id, &component, &message);
                    self.end_step(pos, k, StepState::Done, None);
                    self.plans[pos].next += 1;
                }
                RecoveryStep::ComponentAction { component, action } => {
                    let outcome = match self.find(&component) {
                        Ok(j) => self.plan_action(id, j, action),
                        Err((_, why)) => Err(why),
                    };
                    let Some(pos) = self.plans.iter().position(|p| p.status.id == id) else {
                        return;
                    };
                    match outcome {
                        Ok(None) => {
                            self.end_step(pos, k, StepState::Done, None);
                            self.plans[pos].next += 1;
                        }
                        Ok(Some(command)) => {
                            self.plans[pos].command = Some(command);
                            return self.publish_plan(pos);
                        }
                        Err(why) => {
                            self.end_step(pos, k, StepState::Failed, Some(why.clone()));
                            let reason = format!(
                                "step {} ({}) failed: {why}",
                                k + 1,
                                step_words(&self.plans[pos].status.steps[k].step)
                            );
                            return self.end_plan(pos, PlanState::Failed, reason);
                        }
                    }
                }
                RecoveryStep::WaitForHealth { component, timeout } => {
                    let j = match self.find(&component) {
                        Ok(j) => j,
                        Err((_, why)) => {
                            self.end_step(pos, k, StepState::Failed, Some(why.clone()));
                            return self.end_plan(pos, PlanState::Failed, why);
                        }
                    };
                    if self.health_of(j).is_healthy() {
                        self.end_step(pos, k, StepState::Done, None);
                        self.plans[pos].next += 1;
                    } else {
                        let deadline = self.clock.now + timeout;
                        self.plans[pos].waiting = Some((j, deadline));
                        self.arm(deadline, Timer::Plan { plan: id });
                        return self.publish_plan(pos);
                    }
                }
            }
        }
    }

    /// Carries out one `ComponentAction` of plan `id` on component `j`: `Ok(None)` when it is
    /// done, `Ok(Some(command))` when a linked component's answer to `command` is awaited.
    fn plan_action(
        &mut self,
        id: u64,
        j: usize,
        action: SupervisorCommand,
    ) -> Result<Option<u64>, String> {
        let name = self.components[j].spec.name.clone();
        let failed = self
            .plans
            .iter()
            .find(|p| p.status.id == id)
            .is_some_and(|p| p.failed.contains(&name));
        self.log(j, &format!("recovery plan {id}: {}", action.action_name()));
        if self.components[j].kind == ComponentKind::Linked {
            return self
                .send_command(j, action, Waiter::Plan(id))
                .map(Some)
                .map_err(|(_, why)| why);
        }
        let held = self
            .plans
            .iter_mut()
            .find(|p| p.status.id == id)
            .and_then(|p| {
                let k = p.held.iter().position(|(h, _)| *h == j)?;
                Some(p.held.remove(k).1)
            });
        match action {
            // A crashed component: the restart its governor allowed (now, or after its backoff).
            SupervisorCommand::Restart if held.is_some() => {
                if let Some(decision) = held {
                    self.apply_decision(j, decision);
                }
                Ok(None)
            }
            // A failed component is restarted through its governor: backoff and the breaker
            // still hold.
            SupervisorCommand::Restart if failed => self.heal_restart(j, false).map(|()| None),
            SupervisorCommand::Restart => match self.components[j].state {
                RunState::Stopped if self.components[j].goal == Goal::Down => {
                    self.log(j, "recovery plan: left stopped (stopped by the operator)");
                    Ok(None)
                }
                RunState::BreakerOpen => Err(format!("{name}'s circuit breaker is open")),
                RunState::Running
                | RunState::Stopping
                | RunState::Stopped
                | RunState::Starting
                | RunState::Backoff
                | RunState::Exited
                | RunState::Failed => {
                    self.begin_restart(j, &format!("recovery plan {id}: restart"));
                    Ok(None)
                }
            },
            SupervisorCommand::Stop | SupervisorCommand::Shutdown => {
                self.stop_by_request(j, action, ReplyTo::NOBODY);
                if let Some(run) = self.plans.iter_mut().find(|p| p.status.id == id)
                    && !run.stopped.contains(&j)
                {
                    run.stopped.push(j);
                }
                Ok(None)
            }
            SupervisorCommand::Start => {
                if let Some(run) = self.plans.iter_mut().find(|p| p.status.id == id) {
                    run.stopped.retain(|s| *s != j);
                }
                self.start(j, ReplyTo::NOBODY);
                Ok(None)
            }
            SupervisorCommand::UpdateConfig(_) => Err(super::linked::process_config_refusal(&name)),
            SupervisorCommand::ClearCache | SupervisorCommand::Action(_) => self
                .run_action(j, action.action_name(), None, ReplyTo::NOBODY)
                .map(|()| None)
                .map_err(|(_, why)| why),
        }
    }

    /// A linked component answered command `command` of plan `id` (`Err`: why it did not do it).
    pub(super) fn plan_command_done(&mut self, id: u64, command: u64, result: Result<(), String>) {
        let Some(pos) = self
            .plans
            .iter()
            .position(|p| p.status.id == id && p.command == Some(command))
        else {
            return;
        };
        self.plans[pos].command = None;
        let k = self.plans[pos].next;
        match result {
            Ok(()) => {
                self.end_step(pos, k, StepState::Done, None);
                self.plans[pos].next += 1;
                self.advance_plan(id);
            }
            Err(why) => {
                self.end_step(pos, k, StepState::Failed, Some(why.clone()));
                let reason = format!(
                    "step {} ({}) failed: {why}",
                    k + 1,
                    step_words(&self.plans[pos].status.steps[k].step)
                );
                self.end_plan(pos, PlanState::Failed, reason);
            }
        }
    }

    /// Ends the plan at `pos`. Unless it is done, the operator is told why (a `NotifyOperator`
    /// step is added to the plan so its record shows it) and the components it stopped are
    /// handed back to normal supervision.
    fn end_plan(&mut self, pos: usize, state: PlanState, reason: String) {
        let id = self.plans[pos].status.id;
        let component = self.plans[pos].status.component.clone();
        self.plans[pos].status.state = state;
        let origin = self.index.get(&component).copied();
        match state {
            PlanState::Done | PlanState::Running => {
                if let Some(i) = origin {
                    self.log(i, &format!("recovery plan {id} done"));
                }
            }
            PlanState::Failed | PlanState::TimedOut => {
                let stopped = std::mem::take(&mut self.plans[pos].stopped);
                let held = std::mem::take(&mut self.plans[pos].held);
                let mut message = format!(
                    "recovery plan {id} for {component} {}: {reason}",
                    state.word()
                );
                let names: Vec<String> = stopped
                    .iter()
                    .map(|&j| self.components[j].spec.name.clone())
                    .collect();
                if !names.is_empty() {
                    message.push_str(&format!(
                        "; {} handed back to normal supervision",
                        names.join(", ")
                    ));
                }
                self.plans[pos].status.reason = Some(reason);
                self.plans[pos].status.steps.push(PlanStep {
                    step: RecoveryStep::notify_operator(message.clone()),
                    state: StepState::Done,
                    duration: Some(Duration::ZERO),
                    detail: None,
                });
                self.plans[pos].step_started.push(Some(self.clock.now));
                if let Some(i) = origin {
                    self.log(i, &message);
                }
                if self.shutdown.is_none() {
                    self.notify_operator(id, &component, &message);
                    for (j, decision) in held {
                        if self.components[j].state == RunState::Backoff {
                            self.apply_decision(j, decision);
                        }
                    }
                    for j in stopped {
                        if self.components[j].goal == Goal::Down {
                            self.start(j, ReplyTo::NOBODY);
                        }
                    }
                }
            }
        }
        let Some(pos) = self.plans.iter().position(|p| p.status.id == id) else {
            return;
        };
        self.publish_plan(pos);
        let run = self.plans.remove(pos);
        self.plan_history.push_back(run.status);
        while self.plan_history.len() > KEPT_PLANS {
            self.plan_history.pop_front();
        }
    }

    /// `NotifyOperator`: an error-level notice, and the configured notify command.
    fn notify_operator(&mut self, plan: u64, component: &str, message: &str) {
        self.notice(NoticeLevel::Error, message.to_string());
        if let Some(command) = self.fleet.recovery.notify_command.clone() {
            self.effects.push(Effect::Notify {
                command,
                message: message.to_string(),
                component: component.to_string(),
                plan,
            });
        }
    }

    /// Component `j`'s health changed: the plans waiting on it go on.
    pub(super) fn plans_health_changed(&mut self, j: usize) {
        let waiting: Vec<u64> = self
            .plans
            .iter()
            .filter(|p| p.waiting.is_some_and(|(w, _)| w == j))
            .map(|p| p.status.id)
            .collect();
        for id in waiting {
            self.advance_plan(id);
        }
    }

    /// A wait for health ran out: the plan ends with the reason.
    pub(super) fn on_plan_deadline(&mut self, id: u64) {
        let now = self.clock.now;
        let Some(pos) = self.plans.iter().position(|p| p.status.id == id) else {
            return;
        };
        let Some((j, deadline)) = self.plans[pos].waiting else {
            return;
        };
        if now < deadline {
            return;
        }
        self.plans[pos].waiting = None;
        let k = self.plans[pos].next;
        let name = self.components[j].spec.name.clone();
        let waited = self.plans[pos].step_started[k]
            .map_or(Duration::ZERO, |s| now.saturating_duration_since(s));
        let why = format!(
            "{name} is not healthy within {} ({})",
            format_duration(waited),
            self.health_of(j)
        );
        self.end_step(pos, k, StepState::TimedOut, Some(why.clone()));
        self.end_plan(pos, PlanState::Failed, why);
    }

    /// The plan's overall timeout: a plan still running is cancelled.
    pub(super) fn on_plan_timeout(&mut self, id: u64) {
        let Some(pos) = self.plans.iter().position(|p| p.status.id == id) else {
            return;
        };
        let k = self.plans[pos].next;
        self.plans[pos].waiting = None;
        if let Some(command) = self.plans[pos].command.take() {
            // Its answer, if it still comes, goes nowhere.
            self.forget_waiter(command);
        }
        if self.plans[pos]
            .status
            .steps
            .get(k)
            .is_some_and(|s| s.state == StepState::Running)
        {
            self.end_step(pos, k, StepState::TimedOut, None);
        }
        let why = format!(
            "not finished within its timeout of {}; cancelled",
            format_duration(self.fleet.recovery.plan_timeout)
        );
        self.end_plan(pos, PlanState::TimedOut, why);
    }

    /// The running plans and the last ones that ended, oldest first.
    pub(super) fn plan_statuses(&mut self) -> Vec<PlanStatus> {
        let now = self.clock.now;
        let mut all: Vec<PlanStatus> = self.plan_history.iter().cloned().collect();
        for run in &self.plans {
            let mut status = run.status.clone();
            status.duration = now.saturating_duration_since(run.started);
            for (k, started) in run.step_started.iter().enumerate() {
                if let (Some(at), StepState::Running) = (started, status.steps[k].state) {
                    status.steps[k].duration = Some(now.saturating_duration_since(*at));
                }
            }
            all.push(status);
        }
        all.sort_by_key(|p| p.id);
        all
    }
}

/// A step in a few words: `restart db`, `wait for db`, `notify the operator`.
fn step_words(step: &RecoveryStep) -> String {
    match step {
        RecoveryStep::ComponentAction { component, action } => {
            format!("{} {component}", action.action_name())
        }
        RecoveryStep::WaitForHealth { component, .. } => format!("wait for {component}"),
        RecoveryStep::NotifyOperator { .. } => "notify the operator".to_string(),
    }
}
