//! Linked Rust components (guide §4): services that run outside the core and register over the
//! socket instead of being started by it.
//!
//! A linked component is a [`Component`] of kind `Linked` with no process. It is Running from its
//! registration; its health is what it reports; a component that announced a heartbeat interval and
//! misses [`HeartbeatMonitor::MISSED`] of them is Failed (with an Issue) until it reports again.
//! Its recovery actions and the operator's commands are sent to it as [`Event::Command`] on the
//! Commands topic, each with an id; it answers with `CommandOutcome` carrying that id, and the
//! answer goes back to whoever sent the command (a requester waiting on the socket, a plan step,
//! or nobody for an episode's action). A command not answered within [`COMMAND_TIMEOUT`] is
//! answered as failed (its timer is a kernel timer); a connection that closes answers its
//! component's waiting commands (a `Shutdown` as done). An `UpdateConfig` is checked against the
//! config keys the component declared when it registered before it is sent.
//!
//! The error-rate and response-time thresholds applied to what it reports are its own when it
//! declared them at registration, else [`LINKED_THRESHOLDS`].
//!
//! When the connection that registered it closes, the component is gone: it becomes Stopped if the
//! operator (or a plan) had asked it to stop, otherwise Exited with health Failed and an Issue
//! `disconnected` (severity Error): the core cannot restart what it does not run, so it reports and
//! waits for the component to register again, which makes it Running once more.
//!
//! Nothing here does I/O: it changes state and returns effects.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::{
    Component, ComponentKind, ConnId, Effect, Goal, Kernel, Refusal, ReplyTo, Timer, TimerKind,
};
use crate::config::{
    BackoffConfig, BreakerConfig, CommandLine, ComponentSpec, IntensityConfig, Threshold,
    ThresholdsConfig,
};
use crate::healing::detect::{self, HeartbeatMonitor};
use crate::model::{
    ComponentCapabilities, HealingLevel, HealthMetrics, HealthStatus, Issue, ReportLimit,
    ReportThresholds, RestartPolicy, RunState, Severity, SupervisorCommand,
};
use crate::protocol::{ErrorCode, Event, NoticeLevel, Response};
use crate::text::{duration as format_duration, valid_name};

/// Thresholds applied to what a linked component reports (it has no `hms.toml` entry): error rate
/// in percent and response time in milliseconds.
pub const LINKED_THRESHOLDS: ThresholdsConfig = ThresholdsConfig {
    cpu_percent: None,
    rss_mb: None,
    error_rate: Some(Threshold {
        degraded: Some(5.0),
        critical: Some(25.0),
    }),
    response_time_ms: Some(Threshold {
        degraded: Some(1000.0),
        critical: Some(5000.0),
    }),
};

/// How long a linked component has to answer a command.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// What only a linked component has.
pub(super) struct Linked {
    /// The connection that registered it.
    conn: ConnId,
    capabilities: ComponentCapabilities,
    heartbeat: Option<HeartbeatMonitor>,
    /// The keys its `UpdateConfig` accepts (`None`: it checks updates itself).
    config_keys: Option<Vec<String>>,
    /// What its reports are judged by.
    thresholds: ThresholdsConfig,
}

impl Linked {
    pub(super) fn thresholds(&self) -> ThresholdsConfig {
        self.thresholds
    }
}

/// The thresholds for a linked component: its own levels where it declared them, else the
/// built-in ones.
fn thresholds_from(declared: Option<ReportThresholds>) -> ThresholdsConfig {
    let own = |limit: Option<ReportLimit>, builtin: Option<Threshold>| match limit {
        Some(l) => Some(Threshold {
            degraded: l.degraded,
            critical: l.critical,
        }),
        None => builtin,
    };
    let declared = declared.unwrap_or_default();
    ThresholdsConfig {
        error_rate: own(declared.error_rate, LINKED_THRESHOLDS.error_rate),
        response_time_ms: own(
            declared.response_time_ms,
            LINKED_THRESHOLDS.response_time_ms,
        ),
        ..LINKED_THRESHOLDS
    }
}

/// Who waits for a linked component's answer to a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Waiter {
    /// A requester on the socket (the actions pane, `hms-console action`, the CLI).
    Requester(ReplyTo),
    /// A step of this recovery plan.
    Plan(u64),
    /// Nobody: an episode's action (judged by health) or a stop the core only asks for.
    Nobody,
}

/// A command sent to a linked component and not answered yet.
pub(super) struct PendingCommand {
    id: u64,
    component: String,
    command: SupervisorCommand,
    waiter: Waiter,
}

/// Why a process does not take `UpdateConfig`.
pub(super) fn process_config_refusal(name: &str) -> String {
    format!(
        "{name} is a process the core runs: it has no runtime config to update; edit its [[component]] in hms.toml and run `hms-console reload`"
    )
}

/// The spec of a linked component: the fleet's defaults, its own level and recovery actions.
fn linked_spec(
    name: &str,
    capabilities: &ComponentCapabilities,
    thresholds: ThresholdsConfig,
) -> ComponentSpec {
    ComponentSpec {
        name: name.to_string(),
        command: CommandLine::Argv(Vec::new()),
        cwd: None,
        env: BTreeMap::new(),
        depends_on: Vec::new(),
        restart: RestartPolicy::Permanent,
        healing_level: capabilities.healing_level,
        auto_healing: true,
        circuit_breaker: true,
        healing_timeout: Duration::from_secs(30),
        stop_signal: nix::sys::signal::Signal::SIGTERM,
        stop_grace: Duration::from_secs(5),
        min_uptime: Duration::from_secs(1),
        backoff: BackoffConfig::default(),
        intensity: IntensityConfig::default(),
        breaker: BreakerConfig::default(),
        log_lines: 1000,
        log_max_size: crate::config::DEFAULT_LOG_MAX_SIZE,
        log_backups: crate::config::DEFAULT_LOG_BACKUPS,
        recovery_actions: capabilities.supported_recovery_actions.clone(),
        actions: BTreeMap::new(),
        liveness: None,
        readiness: None,
        thresholds,
        log_patterns: Vec::new(),
    }
}

impl Kernel {
    fn linked_index(&self, name: &str) -> Result<usize, Refusal> {
        let i = self.find(name)?;
        match self.components[i].kind {
            ComponentKind::Linked => Ok(i),
            ComponentKind::Process => Err((
                ErrorCode::Rejected,
                format!(
                    "{name} is a process the core runs and watches itself, not a linked component"
                ),
            )),
        }
    }

    /// `Register`: creates the linked component, or updates it when it registers again.
    pub(super) fn register(
        &mut self,
        conn: ConnId,
        name: &str,
        capabilities: ComponentCapabilities,
        heartbeat_ms: Option<u64>,
        config_keys: Option<Vec<String>>,
        thresholds: Option<ReportThresholds>,
    ) -> Result<Response, Refusal> {
        if !valid_name(name) {
            return Err((
                ErrorCode::BadRequest,
                format!(
                    "invalid component name \"{name}\": {}",
                    crate::text::NAME_RULE
                ),
            ));
        }
        let now = self.clock.now;
        let heartbeat = heartbeat_ms
            .filter(|ms| *ms > 0)
            .map(|ms| HeartbeatMonitor::new(Duration::from_millis(ms), now));
        let thresholds = thresholds_from(thresholds);
        let linked = Linked {
            conn,
            capabilities: capabilities.clone(),
            heartbeat,
            config_keys,
            thresholds,
        };
        let i = match self.index.get(name).copied() {
            Some(i) => {
                if self.components[i].kind == ComponentKind::Process {
                    return Err((
                        ErrorCode::Rejected,
                        format!(
                            "{name} is a process in this fleet's config; register the linked component under another name"
                        ),
                    ));
                }
                let c = &mut self.components[i];
                let mut spec = (*c.spec).clone();
                spec.healing_level = capabilities.healing_level;
                spec.recovery_actions = capabilities.supported_recovery_actions.clone();
                spec.thresholds = thresholds;
                c.set_spec(Arc::new(spec));
                c.linked = Some(linked);
                i
            }
            None => {
                let spec = Arc::new(linked_spec(name, &capabilities, thresholds));
                self.effects.push(Effect::OpenLog {
                    component: name.to_string(),
                    policy: super::log_policy(&spec),
                });
                let mut component = Component::new(spec, ComponentKind::Linked);
                component.linked = Some(linked);
                self.components.push(component);
                let i = self.components.len() - 1;
                self.index.insert(name.to_string(), i);
                i
            }
        };
        let c = &mut self.components[i];
        c.goal = Goal::Up;
        c.epoch += 1;
        c.health = HealthStatus::Healthy;
        c.started = Some(now);
        c.started_at = Some(self.clock.wall);
        c.last_exit = None;
        let interval = heartbeat_ms.map_or("no heartbeat".to_string(), |ms| {
            format!(
                "heartbeat every {}",
                format_duration(Duration::from_millis(ms))
            )
        });
        self.log(
            i,
            &format!(
                "registered (linked, {} healing, actions: {}, {interval})",
                capabilities.healing_level,
                if capabilities.supported_recovery_actions.is_empty() {
                    "none".to_string()
                } else {
                    capabilities.supported_recovery_actions.join(", ")
                }
            ),
        );
        self.set_state(i, RunState::Running);
        self.arm_heartbeat(i);
        self.start_ready();
        Ok(Response::Done {
            message: format!("{name} registered"),
        })
    }

    fn arm_heartbeat(&mut self, i: usize) {
        let deadline = self.components[i]
            .linked
            .as_ref()
            .and_then(|l| l.heartbeat.as_ref())
            .map(HeartbeatMonitor::deadline);
        if let Some(at) = deadline {
            self.arm_component(i, TimerKind::Heartbeat, at);
        }
    }

    /// The heartbeat deadline came: Failed if nothing arrived, else wait for the new deadline.
    pub(super) fn on_heartbeat_due(&mut self, i: usize) {
        let now = self.clock.now;
        if self.components[i].state != RunState::Running {
            return;
        }
        let Some(status) = self.components[i]
            .linked
            .as_ref()
            .and_then(|l| l.heartbeat.as_ref())
            .map(|hb| hb.check(now))
        else {
            return;
        };
        if status.is_healthy() {
            self.arm_heartbeat(i);
            return;
        }
        let name = self.components[i].spec.name.clone();
        let issue = detect::heartbeat_issue(&name, &status);
        self.log(i, status.message().unwrap_or("missed heartbeats"));
        self.components[i].health = status.clone();
        self.set_state(i, RunState::Failed);
        self.record_issue(issue);
        self.notice(NoticeLevel::Error, format!("{name}: {status}"));
    }

    /// A report arrived: the heartbeat is fresh, and a component that had gone quiet is back.
    fn beat(&mut self, i: usize) {
        let now = self.clock.now;
        if let Some(hb) = self.components[i]
            .linked
            .as_mut()
            .and_then(|l| l.heartbeat.as_mut())
        {
            hb.beat(now);
        }
        if self.components[i].state == RunState::Failed && self.wants_up(i) {
            self.components[i].epoch += 1;
            self.log(i, "reporting again");
            self.set_state(i, RunState::Running);
            self.arm_heartbeat(i);
        }
    }

    pub(super) fn report_health(
        &mut self,
        name: &str,
        health: HealthStatus,
    ) -> Result<Response, Refusal> {
        let i = self.linked_index(name)?;
        if self.components[i].health != health {
            self.log(i, &format!("reports {health}"));
        }
        self.components[i].health = health;
        self.beat(i);
        self.publish(i);
        Ok(Response::Done {
            message: "health recorded".into(),
        })
    }

    pub(super) fn report_metrics(
        &mut self,
        name: &str,
        metrics: HealthMetrics,
    ) -> Result<Response, Refusal> {
        let i = self.linked_index(name)?;
        self.components[i].reported = Some(metrics);
        self.beat(i);
        self.check_thresholds(i);
        self.publish(i);
        Ok(Response::Done {
            message: "metrics recorded".into(),
        })
    }

    /// `ReportIssue`: recorded; Error or worse is escalated to the operator and, at Advanced/Full,
    /// healed with a recovery episode, unless the issue says the component already healed it
    /// locally ([`Issue::HEALED_BY`], guide §7: heal, then report): then it is recorded and shown
    /// with what healed it, and the core does not repeat an action that worked.
    pub(super) fn report_issue(&mut self, issue: Issue) -> Result<Response, Refusal> {
        let i = self.find(&issue.component)?;
        let name = issue.component.clone();
        self.record_issue(issue.clone());
        if issue.severity < Severity::Error {
            return Ok(Response::Done {
                message: "issue recorded".into(),
            });
        }
        if let Some(healed_by) = issue.healed_locally() {
            let what = format!(
                "{name} reports {} ({}), already healed locally: {healed_by}",
                issue.issue_type, issue.severity
            );
            self.log(i, &what);
            self.notice(NoticeLevel::Warning, what);
            return Ok(Response::Done {
                message: format!(
                    "issue recorded; healed locally ({healed_by}), so the core does not heal it again"
                ),
            });
        }
        self.notice(
            NoticeLevel::Error,
            format!("{name} reports {} ({})", issue.issue_type, issue.severity),
        );
        // §2.2: an issue that names other affected components is planned across them.
        let full = self.components[i].spec.healing_level == HealingLevel::Full;
        if full && self.components[i].spec.auto_healing && !issue.affected_components().is_empty() {
            match self.coordinate(i, &issue) {
                super::plans::Coordinated::Started(id) => {
                    return Ok(Response::Done {
                        message: format!("issue recorded; recovery plan {id} started"),
                    });
                }
                super::plans::Coordinated::Joined(id) => {
                    return Ok(Response::Done {
                        message: format!("issue recorded; it joined recovery plan {id}"),
                    });
                }
                super::plans::Coordinated::No => {}
            }
        }
        let message = match self.components[i].spec.healing_level {
            HealingLevel::Basic => "issue recorded and escalated".to_string(),
            HealingLevel::Advanced | HealingLevel::Full => {
                if self.components[i].spec.auto_healing {
                    match self.start_episode(i, issue, super::healing::Start::Automatic) {
                        Ok(m) => m,
                        Err((_, m)) => m,
                    }
                } else {
                    self.no_action(i, "automatic healing is disabled for this component");
                    "issue recorded and escalated".to_string()
                }
            }
        };
        Ok(Response::Done { message })
    }

    /// `CommandOutcome`: how a command sent to a linked component went; its sender is answered.
    pub(super) fn command_outcome(
        &mut self,
        name: &str,
        command: &SupervisorCommand,
        error: Option<String>,
        id: Option<u64>,
        unsupported: bool,
    ) -> Result<Response, Refusal> {
        let i = self.find(name)?;
        let action = command.action_name().to_string();
        match &error {
            None => self.log(i, &format!("{action}: done")),
            Some(e) => self.log(i, &format!("{action}: failed: {e}")),
        }
        let pending = self.commands.iter().position(|p| match id {
            Some(id) => p.id == id,
            None => p.component == name && p.command.action_name() == action,
        });
        if let Some(pos) = pending {
            let p = self.commands.remove(pos);
            let result = match (&error, unsupported) {
                (None, _) => Ok(()),
                (Some(_), true) => {
                    Err(format!("it does not support {action} (UnsupportedCommand)"))
                }
                (Some(e), false) => Err(format!("it failed: {e}")),
            };
            self.resolve_command(p, result);
        }
        let current = self.components[i]
            .healer
            .episode()
            .and_then(|e| e.current_action())
            == Some(action.as_str());
        if current {
            let serial = self.components[i].healer.serial();
            self.on_action_done(name, serial, error.is_none());
        }
        Ok(Response::Done {
            message: "outcome recorded".into(),
        })
    }

    /// Sends a command to linked component `i` for a requester who waits for its answer; a
    /// command that cannot be sent is refused at once.
    pub(super) fn send_for(&mut self, i: usize, command: SupervisorCommand, reply: ReplyTo) {
        let waiter = if reply == ReplyTo::NOBODY {
            Waiter::Nobody
        } else {
            Waiter::Requester(reply)
        };
        if let Err(e) = self.send_command(i, command, waiter) {
            self.reply(reply, Err(e));
        }
    }

    /// Sends a supervisor command to a linked component over the Commands topic; `waiter` is told
    /// how it went once the component answers (or does not in time). Returns the command's id.
    pub(super) fn send_command(
        &mut self,
        i: usize,
        command: SupervisorCommand,
        waiter: Waiter,
    ) -> Result<u64, Refusal> {
        let name = self.components[i].spec.name.clone();
        let action = command.action_name().to_string();
        if let SupervisorCommand::UpdateConfig(config) = &command {
            self.check_update(i, config)?;
        }
        if let Some(l) = &self.components[i].linked {
            let supported = &l.capabilities.supported_recovery_actions;
            let builtin = matches!(
                command,
                SupervisorCommand::Start
                    | SupervisorCommand::Stop
                    | SupervisorCommand::Shutdown
                    | SupervisorCommand::UpdateConfig(_)
            ) || (command == SupervisorCommand::Restart
                && l.capabilities.can_restart);
            if !builtin && !supported.contains(&action) {
                return Err((
                    ErrorCode::Rejected,
                    format!(
                        "{name} does not support '{action}'; it supports: {}",
                        supported.join(", ")
                    ),
                ));
            }
        }
        self.log(i, &format!("sent {action} to the component"));
        self.next_command += 1;
        let id = self.next_command;
        self.commands.push(PendingCommand {
            id,
            component: name.clone(),
            command: command.clone(),
            waiter,
        });
        let at = self.clock.now + COMMAND_TIMEOUT;
        self.arm(at, Timer::Command { id });
        self.effects.push(Effect::Publish(Event::Command {
            component: name,
            command: Box::new(command),
            id: Some(id),
        }));
        Ok(id)
    }

    /// An `UpdateConfig` for linked component `i`: not empty, and only keys it declared.
    fn check_update(
        &self,
        i: usize,
        config: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), Refusal> {
        let name = &self.components[i].spec.name;
        if config.is_empty() {
            return Err((
                ErrorCode::BadRequest,
                format!(
                    "no config given for {name}: write key=value pairs, e.g. `config {name} log_level=debug`"
                ),
            ));
        }
        let Some(keys) = self.components[i]
            .linked
            .as_ref()
            .and_then(|l| l.config_keys.as_ref())
        else {
            return Ok(());
        };
        let unknown: Vec<&str> = config
            .keys()
            .filter(|k| !keys.contains(k))
            .map(String::as_str)
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        let hint = unknown
            .first()
            .and_then(|u| crate::text::nearest(u, keys.iter().map(String::as_str)))
            .map(|n| format!(" — did you mean '{n}'?"))
            .unwrap_or_default();
        Err((
            ErrorCode::Rejected,
            format!(
                "{name} does not accept config key{} '{}'{hint}; it accepts: {}; nothing was changed",
                if unknown.len() == 1 { "" } else { "s" },
                unknown.join("', '"),
                if keys.is_empty() {
                    "none".to_string()
                } else {
                    keys.join(", ")
                }
            ),
        ))
    }

    /// Command `p` was answered (or not in time): its waiter is told.
    fn resolve_command(&mut self, p: PendingCommand, result: Result<(), String>) {
        let action = p.command.action_name().to_string();
        match p.waiter {
            Waiter::Requester(reply) => {
                let answer = match result {
                    Ok(()) => Ok(Response::Done {
                        message: format!("sent {action} to {}: done", p.component),
                    }),
                    Err(why) => Err((
                        ErrorCode::Rejected,
                        format!("sent {action} to {}: {why}", p.component),
                    )),
                };
                self.reply(reply, answer);
            }
            Waiter::Plan(plan) => self.plan_command_done(plan, p.id, result),
            Waiter::Nobody => {}
        }
    }

    /// Command `id`'s answer is no longer awaited by anyone (its plan was cancelled).
    pub(super) fn forget_waiter(&mut self, id: u64) {
        if let Some(p) = self.commands.iter_mut().find(|p| p.id == id) {
            p.waiter = Waiter::Nobody;
        }
    }

    /// Command `id` had its time: if it is still not answered, it failed.
    pub(super) fn on_command_timeout(&mut self, id: u64) {
        let Some(pos) = self.commands.iter().position(|p| p.id == id) else {
            return;
        };
        let p = self.commands.remove(pos);
        let why = format!("no answer within {}", format_duration(COMMAND_TIMEOUT));
        if let Some(&i) = self.index.get(&p.component) {
            self.log(i, &format!("{}: {why}", p.command.action_name()));
        }
        self.resolve_command(p, Err(why));
    }

    /// The connection that registered linked components closed.
    pub(super) fn on_connection_closed(&mut self, conn: ConnId) {
        for i in 0..self.components.len() {
            let owned = self.components[i]
                .linked
                .as_ref()
                .is_some_and(|l| l.conn == conn);
            if !owned {
                continue;
            }
            match self.components[i].state {
                RunState::Running | RunState::Failed => {}
                RunState::Stopped
                | RunState::Starting
                | RunState::Stopping
                | RunState::Backoff
                | RunState::Exited
                | RunState::BreakerOpen => continue,
            }
            self.components[i].epoch += 1;
            self.components[i].started = None;
            if self.wants_up(i) {
                let name = self.components[i].spec.name.clone();
                let status = HealthStatus::Failed("its connection to the core closed".into());
                self.log(i, "connection closed");
                let issue = Issue::new(&name, "disconnected", Severity::Error)
                    .with("message", status.message().unwrap_or_default());
                self.components[i].health = status;
                self.set_state(i, RunState::Exited);
                self.record_issue(issue);
            } else {
                self.log(i, "connection closed (stopped)");
                self.set_state(i, RunState::Stopped);
            }
        }
        // Commands its components had not answered: a shutdown did what it was asked.
        let gone: Vec<usize> = (0..self.commands.len())
            .filter(|&k| {
                self.index
                    .get(&self.commands[k].component)
                    .and_then(|&i| self.components[i].linked.as_ref())
                    .is_some_and(|l| l.conn == conn)
            })
            .collect();
        for k in gone.into_iter().rev() {
            let p = self.commands.remove(k);
            let result = match p.command {
                SupervisorCommand::Shutdown | SupervisorCommand::Stop => Ok(()),
                _ => Err("its connection closed before it answered".to_string()),
            };
            self.resolve_command(p, result);
        }
    }
}
