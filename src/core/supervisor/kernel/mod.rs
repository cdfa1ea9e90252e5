//! The supervisor's kernel: every decision about the fleet's components, as a synchronous state
//! machine. [`Kernel::handle`] takes the clock and one [`Input`] (a request, an exit, a timer, a
//! probe result …) and returns the [`Effect`]s to carry out (spawn, signal, arm a timer, reply,
//! publish, log …). Nothing in here spawns, signals, sleeps, reads /proc or files, or touches a
//! channel: the async shell ([`super::Supervisor`]) does that, and the kernel's scenario tests
//! (`tests.rs`) tell the stories of crash, backoff, breaker and recovery with no process at all.
//!
//! Restart decisions are made by the healing engine's pure [`RestartGovernor`] from `now`; timers
//! carry the component's epoch, so a timer armed for an earlier life of the component is ignored
//! when it fires.
//!
//! # Layout
//! - this file: requests, the process lifecycle and the exit decision tree;
//! - [`healing`]: probes, metric thresholds, log symptoms and recovery episodes;
//! - [`plans`]: Full-level recovery plans across components (the planner's steps, carried out);
//! - [`linked`]: Rust components linked over the socket (register, reports, heartbeats, commands
//!   and their answers);
//! - [`reload`]: applying a config that was read again;
//! - [`effect`]: the inputs and effects.

pub mod effect;
mod healing;
mod linked;
mod plans;
mod reload;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::time::Instant;

pub use effect::{
    Answer, Clock, ConnId, Effect, ExitCode, Input, NO_CONN, Refusal, ReplyTo, Timer, TimerKind,
};

use crate::config::{ComponentSpec, FleetConfig};
use crate::healing::detect;
use crate::healing::healer::{Healer, HealerConfig};
use crate::healing::policy::{PolicyConfig, RestartDecision};
use crate::healing::probe::ProbeKind;
use crate::model::{
    ComponentKind, ComponentStatus, ExitInfo, HealingAction, HealingStatus, HealthMetrics,
    HealthStatus, Issue, PlanStatus, ProcessMetrics, RestartPolicy, RunState, Severity,
    SupervisorCommand,
};
use crate::protocol::{ErrorCode, Event, NoticeLevel, Request, Response};
use crate::text::duration as format_duration;

/// Whether the operator wants the component running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Goal {
    Up,
    Down,
}

/// What happens when the current process has exited. One field, so the exit decision tree reads
/// one value instead of a cluster of flags.
#[derive(Debug, Clone, PartialEq)]
enum AfterExit {
    /// An exit is a failure (or not) by the component's restart type.
    Judge,
    /// Asked to stop: it stays stopped.
    StayDown,
    /// The operator (or a reload) restarts it: start it again at once, counters cleared.
    StartAgain,
    /// Killed by the healing path: its exit is no new failure; carry out this decision.
    Heal(RestartDecision),
}

struct Component {
    spec: Arc<ComponentSpec>,
    state: RunState,
    goal: Goal,
    pid: Option<u32>,
    /// Bumped on every spawn; exit notices for older generations are ignored.
    generation: u64,
    /// Bumped whenever armed timers become stale.
    epoch: u64,
    /// A spawn was asked for and its outcome is not known yet.
    spawning: bool,
    started_at: Option<std::time::SystemTime>,
    started: Option<Instant>,
    restarts: u32,
    last_exit: Option<ExitInfo>,
    /// Backoff, breaker, probes and the recovery episode: the engine's pieces, combined once.
    healer: Healer,
    health: HealthStatus,
    last_issue: Option<Issue>,
    last_action: Option<HealingAction>,
    after_exit: AfterExit,
    /// Answered when the component is next stopped.
    stop_waiters: Vec<ReplyTo>,
    /// Answered when the component is next running.
    start_waiters: Vec<ReplyTo>,
    /// The latest /proc figures of the current run (sampled by the shell).
    metrics: Option<ProcessMetrics>,
    kind: ComponentKind,
    /// True when the component has no readiness probe or its probe passed in this run;
    /// dependents start only once it is running and ready.
    ready: bool,
    /// What the metric thresholds say (Healthy without thresholds).
    threshold_health: HealthStatus,
    /// The health episodes and plans were last told about.
    told_health: HealthStatus,
    /// What the knowledge registry advised last, by issue type: (action to try first, why).
    advice: HashMap<String, (String, String)>,
    /// Why the last episode tried its first action first.
    strategy: Option<String>,
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
    /// A component from its spec, not started yet.
    fn new(spec: Arc<ComponentSpec>, kind: ComponentKind) -> Component {
        Component {
            healer: Healer::new(healer_config(&spec)),
            spec,
            state: RunState::Stopped,
            goal: Goal::Up,
            pid: None,
            generation: 0,
            epoch: 0,
            spawning: false,
            started_at: None,
            started: None,
            restarts: 0,
            last_exit: None,
            health: HealthStatus::Healthy,
            last_issue: None,
            last_action: None,
            after_exit: AfterExit::Judge,
            stop_waiters: Vec::new(),
            start_waiters: Vec::new(),
            metrics: None,
            kind,
            ready: true,
            threshold_health: HealthStatus::Healthy,
            told_health: HealthStatus::Healthy,
            advice: HashMap::new(),
            strategy: None,
            reported: None,
            linked: None,
            retired: false,
            ended_group: None,
        }
    }

    /// New settings (a reload, a linked component registering again).
    fn set_spec(&mut self, spec: Arc<ComponentSpec>) {
        self.healer.set_config(healer_config(&spec));
        self.spec = spec;
    }

    fn uptime(&self, now: Instant) -> Duration {
        self.started
            .map_or(Duration::ZERO, |s| now.saturating_duration_since(s))
    }
}

/// What a component's healer heals with, from its spec.
fn healer_config(spec: &ComponentSpec) -> HealerConfig {
    HealerConfig {
        policy: PolicyConfig::from_spec(spec),
        level: spec.healing_level,
        recovery_actions: spec.recovery_actions.clone(),
        healing_timeout: spec.healing_timeout,
    }
}

/// How the component's output is kept, from its spec.
pub fn log_policy(spec: &ComponentSpec) -> crate::core::logs::LogPolicy {
    crate::core::logs::LogPolicy {
        lines: spec.log_lines,
        max_size: spec.log_max_size,
        backups: spec.log_backups,
    }
}

/// The kernel's state: the fleet's components and what is being done to them.
pub struct Kernel {
    components: Vec<Component>,
    index: HashMap<String, usize>,
    /// Answered once every component is stopped after a `Shutdown`.
    shutdown: Option<Vec<ReplyTo>>,
    /// Components whose health may have changed while handling the current input: their
    /// episodes and the plans waiting on them are told once the input is handled.
    touched: Vec<usize>,
    /// Full-level recovery plans being carried out.
    plans: Vec<plans::PlanRun>,
    /// The last plans that ended, oldest first (at most [`plans::KEPT_PLANS`]).
    plan_history: VecDeque<PlanStatus>,
    next_plan: u64,
    /// Commands sent to linked components and not answered yet.
    commands: Vec<linked::PendingCommand>,
    next_command: u64,
    /// Process groups of components that ended during shutdown: the core waits for them to be
    /// gone before it exits, so `down` returns with nothing left running.
    ended_groups: Vec<u32>,
    /// The config that runs.
    fleet: FleetConfig,
    /// The clock of the input being handled.
    clock: Clock,
    /// What the input being handled asks the shell to do.
    effects: Vec<Effect>,
    /// The shutdown is complete.
    done: bool,
    /// Whether anyone listens for full status events (building them is skipped otherwise).
    pub observed: bool,
}

impl Kernel {
    /// The kernel for a fleet; nothing starts until [`Input::Boot`].
    pub fn new(fleet: &FleetConfig, clock: Clock) -> Kernel {
        let components: Vec<Component> = fleet
            .components
            .iter()
            .map(|spec| Component::new(Arc::new(spec.clone()), ComponentKind::Process))
            .collect();
        let index = components
            .iter()
            .enumerate()
            .map(|(i, c)| (c.spec.name.clone(), i))
            .collect();
        Kernel {
            components,
            index,
            shutdown: None,
            touched: Vec::new(),
            plans: Vec::new(),
            plan_history: VecDeque::new(),
            next_plan: 0,
            commands: Vec::new(),
            next_command: 0,
            ended_groups: Vec::new(),
            fleet: fleet.clone(),
            clock,
            effects: Vec::new(),
            done: false,
            observed: true,
        }
    }

    /// Handles one input and returns what to carry out, in order.
    pub fn handle(&mut self, clock: Clock, input: Input) -> Vec<Effect> {
        self.clock = clock;
        match input {
            Input::Boot => self.boot(),
            Input::Request {
                request,
                reply,
                conn,
            } => self.on_request(request, reply, conn),
            Input::Spawned {
                name,
                generation,
                result,
            } => self.on_spawned(&name, generation, result),
            Input::Exited {
                name,
                generation,
                exit,
            } => self.on_exit(&name, generation, exit),
            Input::TimerFired(timer) => self.on_timer(timer),
            Input::LogIssue { issue, generation } => self.on_log_issue(issue, generation),
            Input::ProbeResult {
                name,
                epoch,
                kind,
                ticket,
                outcome,
            } => self.on_probe_result(&name, epoch, kind, ticket, outcome),
            Input::ActionDone { name, serial, ok } => self.on_action_done(&name, serial, ok),
            Input::Sampled { samples, check } => self.on_sampled(samples, check),
            Input::ConfigLoaded { result, reply } => {
                let answer = self.reloaded(result);
                self.reply(reply, answer);
            }
            Input::ConnectionClosed { conn } => self.on_connection_closed(conn),
            Input::Advice {
                component,
                issue_type,
                advice,
            } => {
                if let Some(&i) = self.index.get(&component) {
                    match advice {
                        Some(a) => self.components[i].advice.insert(issue_type, a),
                        None => self.components[i].advice.remove(&issue_type),
                    };
                }
            }
        }
        self.tell_health();
        self.check_shutdown_complete();
        std::mem::take(&mut self.effects)
    }

    /// True once a shutdown was asked for and nothing runs any more; the waiting requesters were
    /// answered in the effects of the input that finished it.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The process groups of the components that ended during the shutdown.
    pub fn ended_groups(&self) -> &[u32] {
        &self.ended_groups
    }

    // ----- effects, as the rest of the kernel writes them -----

    fn reply(&mut self, to: ReplyTo, answer: Answer) {
        if to != ReplyTo::NOBODY {
            self.effects.push(Effect::Reply { to, answer });
        }
    }

    fn arm(&mut self, at: Instant, timer: Timer) {
        self.effects.push(Effect::Arm { at, timer });
    }

    /// Arms a timer of component `i`'s current life.
    fn arm_component(&mut self, i: usize, kind: TimerKind, at: Instant) {
        let timer = Timer::Component {
            name: self.components[i].spec.name.clone(),
            epoch: self.components[i].epoch,
            kind,
        };
        self.arm(at, timer);
    }

    fn signal(&mut self, i: usize, pgid: u32, signal: Signal) {
        self.effects.push(Effect::Signal {
            component: self.components[i].spec.name.clone(),
            pgid,
            signal,
        });
    }

    fn log(&mut self, i: usize, text: &str) {
        self.effects.push(Effect::Log {
            component: self.components[i].spec.name.clone(),
            text: text.to_string(),
        });
    }

    fn record_issue(&mut self, issue: Issue) {
        if let Some(&i) = self.index.get(&issue.component) {
            self.components[i].last_issue = Some(issue.clone());
            self.publish(i);
        }
        self.effects.push(Effect::Publish(Event::Issue {
            issue: Box::new(issue),
        }));
    }

    fn notice(&mut self, level: NoticeLevel, message: String) {
        self.effects.push(Effect::Publish(Event::Notice {
            level,
            message,
            at: self.clock.wall,
        }));
    }

    fn set_state(&mut self, i: usize, to: RunState) {
        let from = self.components[i].state;
        self.components[i].state = to;
        if from != to {
            let c = &self.components[i];
            self.effects.push(Effect::Publish(Event::StateChanged {
                component: c.spec.name.clone(),
                from,
                to,
                pid: c.pid,
                at: self.clock.wall,
            }));
        }
        self.publish(i);
    }

    /// Sends the component's full status to subscribers, and marks it for [`Kernel::tell_health`].
    fn publish(&mut self, i: usize) {
        if !self.touched.contains(&i) {
            self.touched.push(i);
        }
        if self.observed {
            let status = Box::new(self.snapshot(i));
            self.effects
                .push(Effect::Publish(Event::Component { status }));
        }
    }

    fn find(&self, name: &str) -> Result<usize, Refusal> {
        self.index.get(name).copied().ok_or_else(|| {
            // In fleet order, as every other list of components.
            let mut known: Vec<(usize, &str)> =
                self.index.iter().map(|(n, &i)| (i, n.as_str())).collect();
            known.sort_unstable();
            let known: Vec<&str> = known.into_iter().map(|(_, n)| n).collect();
            (
                ErrorCode::UnknownComponent,
                format!(
                    "unknown component '{name}'; known components: {}",
                    known.join(", ")
                ),
            )
        })
    }

    /// Runs `f` on the component named `name`, or answers `reply` that there is none.
    fn with_component(&mut self, name: &str, reply: ReplyTo, f: impl FnOnce(&mut Self, usize)) {
        match self.find(name) {
            Ok(i) => f(self, i),
            Err(e) => self.reply(reply, Err(e)),
        }
    }

    // ----- requests -----

    fn boot(&mut self) {
        for i in 0..self.components.len() {
            let spec = &self.components[i].spec;
            self.effects.push(Effect::OpenLog {
                component: spec.name.clone(),
                policy: log_policy(spec),
            });
            self.set_state(i, RunState::Starting);
        }
        self.start_ready();
    }

    fn on_request(&mut self, request: Request, reply: ReplyTo, conn: ConnId) {
        if (self.shutdown.is_some() || self.done)
            && !matches!(request, Request::Ping | Request::Status { .. })
        {
            self.reply(
                reply,
                Err((ErrorCode::ShuttingDown, "the core is shutting down".into())),
            );
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
            Request::Down => return self.begin_shutdown(reply),
            Request::Heal { component } => return self.heal_request(&component, reply),
            Request::Reload => {
                self.effects.push(Effect::LoadConfig { reply });
                return;
            }
            Request::Register {
                component,
                capabilities,
                heartbeat_ms,
                config_keys,
                thresholds,
            } => self.register(
                conn,
                &component,
                capabilities,
                heartbeat_ms,
                config_keys,
                thresholds,
            ),
            Request::ReportHealth { component, health } => self.report_health(&component, health),
            Request::ReportMetrics { component, metrics } => {
                self.report_metrics(&component, metrics)
            }
            Request::ReportIssue { issue } => self.report_issue(issue),
            Request::CommandOutcome {
                component,
                command,
                error,
                id,
                unsupported,
            } => self.command_outcome(&component, &command, error, id, unsupported),
            Request::Plans => Ok(Response::Plans {
                plans: self.plan_statuses(),
            }),
            Request::Logs { .. }
            | Request::Mac { .. }
            | Request::Issues { .. }
            | Request::Subscribe { .. }
            | Request::PanelUpdate { .. }
            | Request::PanelText { .. }
            | Request::PanelInput { .. }
            | Request::Notify { .. }
            | Request::Knowledge { .. }
            | Request::History { .. } => Err((
                ErrorCode::Internal,
                "the router sends this request to another part of the core".into(),
            )),
        };
        self.reply(reply, answer);
    }

    fn status(&mut self, component: Option<&str>) -> Answer {
        let selected: Vec<usize> = match component {
            Some(name) => vec![self.find(name)?],
            None => (0..self.components.len())
                .filter(|&i| self.index.get(&self.components[i].spec.name) == Some(&i))
                .collect(),
        };
        let components = selected.into_iter().map(|i| self.snapshot(i)).collect();
        Ok(Response::Status { components })
    }

    /// Which running processes a `status` of `component` (or all) shows, for the shell to sample
    /// before it hands the request over: (name, generation, pid).
    pub fn sample_targets(&self, component: Option<&str>) -> Vec<(String, u64, u32)> {
        self.components
            .iter()
            .filter(|c| component.is_none_or(|n| c.spec.name == n))
            .filter_map(|c| Some((c.spec.name.clone(), c.generation, c.pid?)))
            .collect()
    }

    fn start_request(&mut self, name: &str, reply: ReplyTo) {
        self.with_component(name, reply, |k, i| k.start(i, reply));
    }

    fn start(&mut self, i: usize, reply: ReplyTo) {
        if self.components[i].kind == ComponentKind::Linked {
            self.components[i].goal = Goal::Up;
            return self.send_for(i, SupervisorCommand::Start, reply);
        }
        let c = &mut self.components[i];
        c.goal = Goal::Up;
        match c.state {
            RunState::Running => {
                let message = format!(
                    "{} is already running (pid {})",
                    c.spec.name,
                    c.pid.unwrap_or(0)
                );
                self.reply(reply, Ok(Response::Done { message }));
            }
            RunState::Stopping => {
                c.after_exit = AfterExit::StartAgain;
                c.start_waiters.push(reply);
            }
            RunState::Stopped
            | RunState::Starting
            | RunState::Backoff
            | RunState::Exited
            | RunState::BreakerOpen
            | RunState::Failed => {
                c.healer.governor_mut().reset();
                c.epoch += 1;
                c.start_waiters.push(reply);
                self.set_state(i, RunState::Starting);
                self.start_ready();
            }
        }
    }

    /// The operator's `stop`: a linked component is asked for the guide's graceful `Shutdown`
    /// (§4.1 step 4 has no `Stop`), as `shutdown c` and `down` ask it.
    fn stop_request(&mut self, name: &str, reply: ReplyTo) {
        self.with_component(name, reply, |k, i| {
            k.stop_by_request(i, SupervisorCommand::Shutdown, reply)
        });
    }

    /// The operator's (or a plan's) stop; a linked component is sent `command` (`Shutdown` for the
    /// operator's `stop` and `shutdown`).
    fn stop_by_request(&mut self, i: usize, command: SupervisorCommand, reply: ReplyTo) {
        self.components[i].goal = Goal::Down;
        if self.components[i].kind == ComponentKind::Linked {
            return self.send_for(i, command, reply);
        }
        self.components[i].after_exit = AfterExit::StayDown;
        self.components[i].stop_waiters.push(reply);
        self.stop(i);
    }

    fn restart_request(&mut self, name: &str, reply: ReplyTo) {
        self.with_component(name, reply, |k, i| k.operator_restart(i, reply));
    }

    /// An operator's restart always clears the counters and closes the breaker.
    fn operator_restart(&mut self, i: usize, reply: ReplyTo) {
        let c = &mut self.components[i];
        c.healer.governor_mut().reset();
        c.goal = Goal::Up;
        c.last_action = Some(HealingAction::Restart);
        if c.kind == ComponentKind::Linked {
            return self.send_for(i, SupervisorCommand::Restart, reply);
        }
        c.start_waiters.push(reply);
        self.begin_restart(i, "restart requested by the operator");
    }

    /// Starts a fresh process for a component: a running one is stopped first (and started again
    /// once it has exited), any other is started as soon as its dependencies allow.
    fn begin_restart(&mut self, i: usize, why: &str) {
        match self.components[i].state {
            RunState::Running | RunState::Stopping => {
                self.components[i].after_exit = AfterExit::StartAgain;
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

    /// A command that is not start, stop or restart: delivered to a linked component, carried out
    /// by its configured action for a process (a process's `shutdown` is its stop).
    fn command_request(&mut self, name: &str, command: SupervisorCommand, reply: ReplyTo) {
        if let SupervisorCommand::Start | SupervisorCommand::Stop | SupervisorCommand::Restart =
            command
        {
            let op = command.action_name();
            let refusal = format!("'{op}' is a request of its own: send {{\"op\":\"{op}\"}}");
            return self.reply(reply, Err((ErrorCode::BadRequest, refusal)));
        }
        self.with_component(name, reply, |k, i| k.command(i, command, reply));
    }

    fn command(&mut self, i: usize, command: SupervisorCommand, reply: ReplyTo) {
        match (command, self.components[i].kind) {
            (SupervisorCommand::Start, _) => self.start(i, reply),
            (SupervisorCommand::Restart, _) => self.operator_restart(i, reply),
            (command @ (SupervisorCommand::Stop | SupervisorCommand::Shutdown), _) => {
                self.stop_by_request(i, command, reply)
            }
            (
                command @ (SupervisorCommand::ClearCache
                | SupervisorCommand::UpdateConfig(_)
                | SupervisorCommand::Action(_)),
                ComponentKind::Linked,
            ) => self.send_for(i, command, reply),
            (SupervisorCommand::UpdateConfig(_), ComponentKind::Process) => {
                let why = linked::process_config_refusal(&self.components[i].spec.name);
                self.reply(reply, Err((ErrorCode::Rejected, why)));
            }
            (
                command @ (SupervisorCommand::ClearCache | SupervisorCommand::Action(_)),
                ComponentKind::Process,
            ) => {
                if let Err(e) = self.run_action(i, command.action_name(), None, reply) {
                    self.reply(reply, Err(e));
                }
            }
        }
    }

    /// `hms-console heal X`: at Basic level a restart (as an operator's); at Advanced and Full a
    /// recovery episode through the component's recovery actions. An operator's request acts even
    /// when automatic healing is off: it is not automatic.
    fn heal_request(&mut self, name: &str, reply: ReplyTo) {
        self.with_component(name, reply, |k, i| {
            let issue = Issue::new(&k.components[i].spec.name, "manual_heal", Severity::Warning)
                .with("requested_by", "operator");
            k.record_issue(issue.clone());
            match k.components[i].spec.healing_level {
                crate::model::HealingLevel::Basic => k.operator_restart(i, reply),
                crate::model::HealingLevel::Advanced | crate::model::HealingLevel::Full => {
                    let answer = k.start_episode(i, issue, healing::Start::Operator);
                    k.reply(reply, answer.map(|message| Response::Done { message }));
                }
            }
        });
    }

    /// Carries out a configured custom action (a command or a signal). With a `serial` (a recovery
    /// attempt), [`Input::ActionDone`] comes back when it has finished. A command's requester is
    /// answered by the shell once it knows whether the command could be started; a signal's
    /// requester is answered here.
    fn run_action(
        &mut self,
        i: usize,
        action: &str,
        serial: Option<u64>,
        reply: ReplyTo,
    ) -> Result<(), Refusal> {
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
            self.signal(i, pid, sig.0);
            self.log(
                i,
                &format!("action {action}: sent SIG{sig} to the process group"),
            );
            if let Some(serial) = serial {
                self.effects.push(Effect::Then(Input::ActionDone {
                    name: name.clone(),
                    serial,
                    ok: true,
                }));
            }
            self.publish(i);
            let message = format!("{action}: sent SIG{sig} to {name}");
            self.reply(reply, Ok(Response::Done { message }));
            return Ok(());
        }
        let command = cfg
            .command
            .expect("validated: an action has a command or a signal");
        self.log(i, &format!("action {action}: running `{command}`"));
        self.publish(i);
        self.effects.push(Effect::RunAction {
            component: name,
            action: action.to_string(),
            spec: self.components[i].spec.clone(),
            pid: self.components[i].pid,
            serial,
            reply,
        });
        Ok(())
    }

    fn begin_shutdown(&mut self, reply: ReplyTo) {
        self.shutdown.get_or_insert_with(Vec::new).push(reply);
        for c in &mut self.components {
            c.goal = Goal::Down;
            if c.after_exit == AfterExit::StartAgain {
                c.after_exit = AfterExit::StayDown;
            }
        }
        self.stop_ready_for_shutdown();
    }

    /// During shutdown, stops every component none of whose dependents is still alive.
    fn stop_ready_for_shutdown(&mut self) {
        let alive = |c: &Component| matches!(c.state, RunState::Running | RunState::Stopping);
        for i in 0..self.components.len() {
            if !matches!(self.components[i].state, RunState::Running) {
                if !alive(&self.components[i]) && self.components[i].state != RunState::Stopped {
                    // Backing off, waiting or exited: nothing to signal.
                    self.components[i].epoch += 1;
                    self.set_state(i, RunState::Stopped);
                }
                continue;
            }
            let name = &self.components[i].spec.name;
            let dependents_alive = self
                .components
                .iter()
                .any(|d| d.spec.depends_on.contains(name) && alive(d));
            if !dependents_alive {
                self.stop(i);
            }
        }
    }

    fn check_shutdown_complete(&mut self) {
        if self.shutdown.is_none()
            || self
                .components
                .iter()
                .any(|c| matches!(c.state, RunState::Running | RunState::Stopping))
        {
            return;
        }
        for reply in self.shutdown.take().unwrap_or_default() {
            let message = "all components stopped; the core is exiting".to_string();
            self.reply(reply, Ok(Response::Done { message }));
        }
        self.done = true;
    }

    // ----- lifecycle -----

    /// Starts every component that wants to run and whose dependencies are running and ready.
    fn start_ready(&mut self) {
        for i in 0..self.components.len() {
            let c = &self.components[i];
            if c.state != RunState::Starting || c.goal != Goal::Up || c.spawning {
                continue;
            }
            let deps_up = c.spec.depends_on.iter().all(|d| {
                self.index.get(d).is_some_and(|&j| {
                    self.components[j].state == RunState::Running && self.components[j].ready
                })
            });
            if deps_up {
                self.spawn(i);
            }
        }
    }

    fn spawn(&mut self, i: usize) {
        let c = &mut self.components[i];
        c.generation += 1;
        c.epoch += 1;
        c.spawning = true;
        self.effects.push(Effect::Spawn {
            spec: c.spec.clone(),
            generation: c.generation,
        });
    }

    fn on_spawned(&mut self, name: &str, generation: u64, result: Result<u32, String>) {
        let Some(&i) = self.index.get(name) else {
            return;
        };
        if self.components[i].generation != generation || !self.components[i].spawning {
            return;
        }
        self.components[i].spawning = false;
        let now = self.clock.now;
        match result {
            Ok(pid) => {
                let c = &mut self.components[i];
                c.pid = Some(pid);
                c.started = Some(now);
                c.started_at = Some(self.clock.wall);
                c.metrics = None;
                c.health = HealthStatus::Healthy;
                // A new run's metrics are unknown until the shell's first reading: a restart is
                // not "healthy again" just because nothing was measured yet.
                let t = &c.spec.thresholds;
                c.threshold_health = if t.cpu_percent.is_some() || t.rss_mb.is_some() {
                    HealthStatus::Degraded("metrics not measured yet".into())
                } else {
                    HealthStatus::Healthy
                };
                c.after_exit = AfterExit::Judge;
                c.healer
                    .start_run(c.spec.liveness.as_ref(), c.spec.readiness.as_ref(), now);
                c.ready = !c.healer.gates_readiness();
                let stable_at = now + c.spec.min_uptime;
                self.arm_component(i, TimerKind::Stable, stable_at);
                self.arm_probe(i, ProbeKind::Liveness);
                self.arm_probe(i, ProbeKind::Readiness);
                self.log(i, &format!("started (pid {pid})"));
                self.set_state(i, RunState::Running);
                let message = format!("{name} started (pid {pid})");
                for w in std::mem::take(&mut self.components[i].start_waiters) {
                    self.reply(
                        w,
                        Ok(Response::Done {
                            message: message.clone(),
                        }),
                    );
                }
                // Its dependents may start now.
                self.start_ready();
            }
            Err(e) => {
                let c = &mut self.components[i];
                let command = c.spec.command.to_string();
                c.pid = None;
                c.started = None;
                c.health = HealthStatus::Failed(format!("cannot start: {e}"));
                self.log(i, &format!("cannot start `{command}`: {e}"));
                let issue = Issue::new(name, "spawn_failed", Severity::Error)
                    .with("error", &e)
                    .with("command", &command);
                let refusal = format!("{name} cannot start `{command}`: {e}");
                for w in std::mem::take(&mut self.components[i].start_waiters) {
                    self.reply(w, Err((ErrorCode::Rejected, refusal.clone())));
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
            // The core cannot stop a process it does not own: it asks for the guide's graceful
            // shutdown, and forgets it.
            let _ = self.send_command(i, SupervisorCommand::Shutdown, linked::Waiter::Nobody);
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
                c.epoch += 1;
                self.signal(i, pid, sig);
                self.log(
                    i,
                    &format!("stopping: {} to process group {pid}", sig.as_str()),
                );
                let at = self.clock.now + grace;
                self.arm_component(i, TimerKind::StopGrace, at);
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
            self.effects.push(Effect::ReplyWhenGone {
                component: name.clone(),
                to: waiters,
                groups: group.into_iter().collect(),
                answer: Ok(Response::Done {
                    message: format!("{name} stopped"),
                }),
            });
        }
        self.retire_if_removed(i);
        let again = std::mem::replace(&mut self.components[i].after_exit, AfterExit::Judge);
        if again == AfterExit::StartAgain && self.shutdown.is_none() {
            self.components[i].restarts += 1;
            self.set_state(i, RunState::Starting);
            self.start_ready();
        }
        if self.shutdown.is_some() {
            self.stop_ready_for_shutdown();
        }
    }

    /// The exit decision tree: what the operator wants (down, or a restart of their own), what
    /// the healing path decided when it killed the process, else the restart type and the
    /// governor.
    fn on_exit(&mut self, name: &str, generation: u64, exit: ExitCode) {
        let Some(&i) = self.index.get(name) else {
            return;
        };
        if self.components[i].generation != generation {
            return;
        }
        let exit = ExitInfo {
            code: exit.code,
            signal: exit.signal,
            at: self.clock.wall,
        };
        let pid = self.components[i].pid.take();
        // No grandchild outlives its component's main process.
        if let Some(pid) = pid {
            self.signal(i, pid, Signal::SIGKILL);
            if self.shutdown.is_some() {
                self.ended_groups.push(pid);
            }
        }
        let c = &mut self.components[i];
        c.ended_group = pid;
        let uptime = c.uptime(self.clock.now);
        c.epoch += 1;
        c.last_exit = Some(exit.clone());
        c.started = None;
        c.metrics = None;
        self.log(
            i,
            &format!("exited: {exit} after {}", format_duration(uptime)),
        );
        let state = self.components[i].state;
        let after = std::mem::replace(&mut self.components[i].after_exit, AfterExit::Judge);
        match after {
            AfterExit::StayDown | AfterExit::StartAgain => {
                self.components[i].after_exit = after;
                self.set_state(i, RunState::Stopped);
                self.stopped(i);
            }
            _ if self.components[i].goal == Goal::Down
                || state == RunState::Stopping && !matches!(after, AfterExit::Heal(_)) =>
            {
                self.set_state(i, RunState::Stopped);
                self.stopped(i);
            }
            AfterExit::Heal(decision) => self.apply_decision(i, decision),
            AfterExit::Judge => {
                let wants_restart = match self.components[i].spec.restart {
                    RestartPolicy::Permanent => true,
                    RestartPolicy::Transient => !exit.is_success(),
                    RestartPolicy::Temporary => false,
                };
                let issue = (!exit.is_success()).then(|| detect::crash_issue(name, &exit, uptime));
                if let Some(issue) = &issue {
                    self.components[i].health = HealthStatus::Failed(format!("crashed: {exit}"));
                    self.record_issue(issue.clone());
                }
                if !wants_restart {
                    self.set_state(i, RunState::Exited);
                    return;
                }
                let spec = &self.components[i].spec;
                let full =
                    spec.healing_level == crate::model::HealingLevel::Full && spec.auto_healing;
                match issue.filter(|_| full) {
                    Some(issue) => self.crash_at_full_level(i, &issue, uptime),
                    None => self.after_failure(i, uptime),
                }
            }
        }
    }

    /// Asks the governor what to do after a failure, and does it.
    fn after_failure(&mut self, i: usize, uptime: Duration) {
        let decision = self.components[i]
            .healer
            .governor_mut()
            .on_failure(self.clock.now, uptime);
        self.apply_decision(i, decision);
    }

    /// Starts the component again now, as the governor allowed: the one place a restart is
    /// counted.
    fn restart_now(&mut self, i: usize) {
        let now = self.clock.now;
        let c = &mut self.components[i];
        c.healer.governor_mut().on_restarted(now);
        c.restarts += 1;
        c.last_action = Some(HealingAction::Restart);
        self.set_state(i, RunState::Starting);
        self.start_ready();
    }

    /// Carries out the governor's decision for a component that is not running.
    fn apply_decision(&mut self, i: usize, decision: RestartDecision) {
        match decision {
            RestartDecision::RestartNow => self.restart_now(i),
            RestartDecision::RestartAfter(delay) => {
                self.log(
                    i,
                    &format!("restarting in {} (backoff)", format_duration(delay)),
                );
                let at = self.clock.now + delay;
                self.arm_component(i, TimerKind::RestartDue, at);
                self.set_state(i, RunState::Backoff);
            }
            RestartDecision::BreakerOpened { cooldown } => {
                let message = self.breaker_opened(i, cooldown);
                self.components[i].last_action = Some(HealingAction::Escalate {
                    reason: message.clone(),
                });
                self.components[i].health =
                    HealthStatus::Failed("restarting too often: circuit breaker open".into());
                self.log(i, &message);
                let at = self.clock.now + cooldown;
                self.arm_component(i, TimerKind::TrialDue, at);
                self.set_state(i, RunState::BreakerOpen);
            }
            RestartDecision::NoAction { reason } => {
                self.log(i, &format!("not restarted: {reason}"));
                self.components[i].last_action = Some(HealingAction::NoAction { reason });
                self.set_state(i, RunState::Exited);
            }
        }
    }

    /// The breaker opened: an issue of its own and a notice, whoever restarted the component.
    /// Returns the message.
    fn breaker_opened(&mut self, i: usize, cooldown: Duration) -> String {
        let c = &self.components[i];
        let name = c.spec.name.clone();
        let intensity = c.spec.intensity;
        let message = format!(
            "{name}: circuit breaker open after more than {} restarts in {}; next trial in {}",
            intensity.max_restarts,
            format_duration(intensity.window.0),
            format_duration(cooldown)
        );
        let issue = detect::breaker_issue(&name, cooldown, c.last_issue.as_ref())
            .with("max_restarts", intensity.max_restarts)
            .with("window", format_duration(intensity.window.0));
        self.record_issue(issue);
        self.notice(NoticeLevel::Error, message.clone());
        message
    }

    fn on_timer(&mut self, timer: Timer) {
        let (name, epoch, kind) = match timer {
            Timer::Component { name, epoch, kind } => (name, epoch, kind),
            Timer::Episode { name, serial } => return self.on_episode_deadline(&name, serial),
            Timer::Plan { plan } => return self.on_plan_deadline(plan),
            Timer::PlanTimeout { plan } => return self.on_plan_timeout(plan),
            Timer::Command { id } => return self.on_command_timeout(id),
        };
        let Some(&i) = self.index.get(&name) else {
            return;
        };
        if self.components[i].epoch != epoch {
            return;
        }
        let now = self.clock.now;
        match kind {
            TimerKind::RestartDue => {
                if self.components[i].state == RunState::Backoff {
                    self.restart_now(i);
                }
            }
            TimerKind::StopGrace => {
                if let (RunState::Stopping, Some(pid)) =
                    (self.components[i].state, self.components[i].pid)
                {
                    self.log(i, "grace period over: SIGKILL to the process group");
                    self.signal(i, pid, Signal::SIGKILL);
                }
            }
            TimerKind::Stable => {
                if self.components[i].state == RunState::Running {
                    self.components[i].healer.governor_mut().on_stable(now);
                    self.publish(i);
                }
            }
            TimerKind::TrialDue => {
                if self.components[i].state == RunState::BreakerOpen
                    && self.components[i].healer.governor_mut().on_trial_due(now)
                {
                    self.log(i, "circuit breaker half-open: one trial restart");
                    self.restart_now(i);
                }
            }
            TimerKind::Probe(kind) => self.on_probe_due(i, kind),
            TimerKind::Heartbeat => self.on_heartbeat_due(i),
        }
    }

    // ----- observation -----

    fn on_sampled(&mut self, samples: Vec<(String, u64, ProcessMetrics)>, check: bool) {
        for (name, generation, metrics) in samples {
            let Some(&i) = self.index.get(&name) else {
                continue;
            };
            let c = &mut self.components[i];
            if c.generation != generation || c.pid.is_none() {
                continue;
            }
            c.metrics = Some(metrics);
            let t = &c.spec.thresholds;
            if check
                && c.state == RunState::Running
                && (t.cpu_percent.is_some() || t.rss_mb.is_some())
            {
                self.check_thresholds(i);
            }
        }
    }

    /// The running processes whose metric thresholds the shell should sample on its tick:
    /// (name, generation, pid).
    pub fn threshold_targets(&self) -> Vec<(String, u64, u32)> {
        self.components
            .iter()
            .filter(|c| {
                let t = &c.spec.thresholds;
                !c.retired
                    && c.state == RunState::Running
                    && (t.cpu_percent.is_some() || t.rss_mb.is_some())
            })
            .filter_map(|c| Some((c.spec.name.clone(), c.generation, c.pid?)))
            .collect()
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
        let Clock { now, wall } = self.clock;
        let governor = c.healer.governor();
        let next_trial_at = governor
            .next_trial_at()
            .map(|t| wall + t.saturating_duration_since(now));
        ComponentStatus {
            name: c.spec.name.clone(),
            kind: c.kind,
            state: c.state,
            health: self.health_of(i),
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
                breaker: governor.breaker(),
                backoff: governor.current_backoff(),
                next_trial_at,
                last_issue: c.last_issue.clone(),
                last_action: c.last_action.clone(),
                strategy: c.strategy.clone(),
            },
        }
    }
}
