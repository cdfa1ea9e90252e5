//! The task bus's decisions, as a synchronous state machine: which agent gets a task, when it is
//! delivered, how it ends. Every method takes the clock and leaves [`Effect`]s for the room to
//! carry out; nothing here touches a socket, a channel or a timer.
//!
//! The story of a task: it is routed ([`super::routing`]) and queued in its agent's queue
//! ([`super::queue`]), or refused at once (no such agent, unsupported type, busy). When the agent
//! is ready and has a free slot it is delivered ([`Effect::Deliver`]). It ends exactly once
//! ([`Effect::Finish`]): with the agent's result or error, at its deadline (the core's timeout,
//! whatever the agent does), or when the agent's connection closes (in flight: failed at once;
//! queued: routed to another capable agent, else failed). A result that comes after the end is
//! ignored. An agent is ready when every agent it requires is provided by another one and, if it
//! is also a supervised component, that component is running.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::queue::{AgentQueue, Deadlines, TaskId};
use super::routing::{self, Candidate};
use crate::core::supervisor::{ConnId, Refusal};
use crate::model::{
    AgentCapabilities, AgentState, AgentStatus, MacTask, RunState, TaskFailure, TaskOutcome,
    TaskRecord,
};
use crate::protocol::{ErrorCode, TaskReply};

/// The bus's bounds and defaults.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Tasks delivered to one agent at once unless it says otherwise.
    pub concurrency: usize,
    /// Tasks one agent's queue holds unless it says otherwise.
    pub queue_capacity: usize,
    /// The most either may be set to.
    pub max_concurrency: usize,
    pub max_queue_capacity: usize,
    /// Agents registered at once.
    pub max_agents: usize,
    /// Finished tasks kept for `mac tasks`.
    pub recent: usize,
    /// The longest timeout a task may ask for.
    pub max_timeout: Duration,
    /// How often, at most, the agents' list is published because only counters moved.
    pub publish_every: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            concurrency: 4,
            queue_capacity: 1024,
            max_concurrency: 1024,
            max_queue_capacity: 65_536,
            max_agents: 1000,
            recent: 200,
            max_timeout: Duration::from_secs(24 * 3600),
            publish_every: Duration::from_secs(1),
        }
    }
}

/// What the room must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Hand the task to its agent (an [`crate::protocol::Event::Task`] for a connected agent;
    /// the built-in agent's own code for a built-in one).
    Deliver {
        agent: String,
        task_id: TaskId,
        task: MacTask,
        builtin: bool,
    },
    /// The task ended: answer its requester.
    Finish {
        task_id: TaskId,
        agent: String,
        outcome: TaskOutcome,
    },
    /// Publish the agents' list.
    PublishAgents,
    /// Find out whether the agent is also a supervised component, and in what state.
    AskComponentState { agent: String },
}

/// An agent's registration.
#[derive(Debug, Clone, PartialEq)]
pub struct Registration {
    pub name: String,
    pub capabilities: AgentCapabilities,
    /// Tasks delivered at once; `None`: [`Settings::concurrency`].
    pub concurrency: Option<usize>,
    /// Tasks queued at most; `None`: [`Settings::queue_capacity`].
    pub queue_capacity: Option<usize>,
    /// The core's own agent (runs in the core, has no connection).
    pub builtin: bool,
}

impl Registration {
    /// A connected agent's registration.
    pub fn agent(
        name: &str,
        capabilities: AgentCapabilities,
        concurrency: Option<usize>,
        queue_capacity: Option<usize>,
    ) -> Registration {
        Registration {
            name: name.to_string(),
            capabilities,
            concurrency,
            queue_capacity,
            builtin: false,
        }
    }
}

/// The clocks of one input: `now` decides (deadlines), `wall` stamps records.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub now: Instant,
    pub wall: SystemTime,
}

/// How a request for a task went at once.
#[derive(Debug, Clone, PartialEq)]
pub enum Submitted {
    /// Queued (maybe delivered already); its end will be an [`Effect::Finish`].
    Queued(TaskId),
    /// Refused at once.
    Refused {
        task_id: TaskId,
        agent: String,
        failure: TaskFailure,
    },
}

struct Agent {
    capabilities: AgentCapabilities,
    /// The connection that registered it (the built-in agent: none of the server's).
    conn: ConnId,
    builtin: bool,
    queue: AgentQueue,
    /// Requirements no other agent provides.
    missing: Vec<String>,
    /// Its component's state, when the agent is also a supervised component.
    component: Option<RunState>,
    done: u64,
    failed: u64,
    latency_sum: Duration,
}

impl Agent {
    fn ready(&self) -> bool {
        self.missing.is_empty() && self.component.is_none_or(|s| s == RunState::Running)
    }

    fn state(&self) -> AgentState {
        match self.component {
            Some(state) if state != RunState::Running => AgentState::ComponentDown {
                component_state: state,
            },
            Some(_) | None if !self.missing.is_empty() => AgentState::WaitingFor {
                missing: self.missing.clone(),
            },
            Some(_) | None => AgentState::Ready,
        }
    }
}

struct Task {
    agent: String,
    task: MacTask,
    requester: String,
    requested: Instant,
    requested_at: SystemTime,
    deadline: Instant,
}

/// The task bus's state.
pub struct Kernel {
    settings: Settings,
    agents: BTreeMap<String, Agent>,
    tasks: HashMap<TaskId, Task>,
    deadlines: Deadlines,
    recent: VecDeque<TaskRecord>,
    next_id: TaskId,
    effects: Vec<Effect>,
    /// Counters moved since the agents' list was last published.
    stale: bool,
    last_published: Option<Instant>,
}

impl Kernel {
    pub fn new(settings: Settings) -> Kernel {
        Kernel {
            settings,
            agents: BTreeMap::new(),
            tasks: HashMap::new(),
            deadlines: Deadlines::default(),
            recent: VecDeque::new(),
            next_id: 1,
            effects: Vec::new(),
            stale: false,
            last_published: None,
        }
    }

    /// What the room must do now.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// When the room's timer should next call [`Kernel::tick`].
    pub fn next_deadline(&self) -> Option<Instant> {
        // Counters that moved within `publish_every` of the last publication wait for it.
        let publish = self
            .last_published
            .filter(|_| self.stale)
            .map(|at| at + self.settings.publish_every);
        match (self.deadlines.next(), publish) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Tasks waiting or in flight.
    pub fn pending(&self) -> usize {
        self.tasks.len()
    }

    /// Registers an agent for connection `conn` (again: updates it). A name held by another
    /// connection passes to this one (a restarted agent comes back before its old connection is
    /// seen closed): the tasks delivered to the old one fail, the queued ones stay.
    pub fn register(
        &mut self,
        clock: Clock,
        conn: ConnId,
        registration: Registration,
    ) -> Result<AgentStatus, Refusal> {
        let Registration {
            name,
            capabilities,
            concurrency,
            queue_capacity,
            builtin,
        } = registration;
        let name = name.as_str();
        if !crate::text::valid_name(name) {
            return Err((
                ErrorCode::Rejected,
                format!(
                    "'{name}' is not a valid agent name: use 1-{} letters, digits, '-', '_' or '.'",
                    crate::text::MAX_NAME
                ),
            ));
        }
        if let Some(bad) = capabilities
            .can_process
            .iter()
            .chain(&capabilities.requires)
            .chain(&capabilities.provides)
            .find(|t| !crate::text::valid_name(t))
        {
            return Err((
                ErrorCode::Rejected,
                format!("'{bad}' is not a valid task type or capability name"),
            ));
        }
        if !self.agents.contains_key(name) && self.agents.len() >= self.settings.max_agents {
            return Err((
                ErrorCode::Rejected,
                format!(
                    "the task bus holds at most {} agents",
                    self.settings.max_agents
                ),
            ));
        }
        if let Some(existing) = self.agents.get(name)
            && existing.builtin != builtin
        {
            return Err((
                ErrorCode::Rejected,
                format!("'{name}' is the core's own agent"),
            ));
        }
        let concurrency = concurrency
            .unwrap_or(self.settings.concurrency)
            .clamp(1, self.settings.max_concurrency);
        let capacity = queue_capacity
            .unwrap_or(self.settings.queue_capacity)
            .clamp(1, self.settings.max_queue_capacity);
        let taken_over = match self.agents.get_mut(name) {
            Some(agent) => {
                agent.capabilities = capabilities;
                agent.queue.resize(capacity, concurrency);
                let old = std::mem::replace(&mut agent.conn, conn);
                old != conn
            }
            None => {
                self.agents.insert(
                    name.to_string(),
                    Agent {
                        capabilities,
                        conn,
                        builtin,
                        queue: AgentQueue::new(capacity, concurrency),
                        missing: Vec::new(),
                        component: None,
                        done: 0,
                        failed: 0,
                        latency_sum: Duration::ZERO,
                    },
                );
                if !builtin {
                    self.effects.push(Effect::AskComponentState {
                        agent: name.to_string(),
                    });
                }
                false
            }
        };
        if taken_over {
            let in_flight: Vec<TaskId> = self
                .tasks
                .iter()
                .filter(|(id, t)| t.agent == name && self.agents[name].queue.is_in_flight(**id))
                .map(|(id, _)| *id)
                .collect();
            for id in in_flight {
                self.finish(
                    clock,
                    id,
                    TaskOutcome::Failed {
                        failure: TaskFailure::AgentDisconnected {
                            agent: name.to_string(),
                        },
                    },
                );
            }
        }
        self.requirements_changed();
        self.publish_now(clock.now);
        Ok(self.status(name).expect("just registered"))
    }

    /// A request for a task: by `agent`, or by capability when `None`.
    pub fn request(
        &mut self,
        clock: Clock,
        agent: Option<&str>,
        mut task: MacTask,
        requester: String,
    ) -> Submitted {
        let task_id = self.next_id;
        self.next_id += 1;
        task.timeout = task.timeout.min(self.settings.max_timeout);
        let candidates = self.candidates();
        let routed = match agent {
            Some(name) => routing::by_name(&candidates, name, &task.task_type),
            None => routing::by_capability(&candidates, &task.task_type, None),
        }
        .map(str::to_string);
        let name = match routed {
            Ok(name) => name,
            Err(failure) => {
                let agent = agent.unwrap_or_default().to_string();
                self.record(
                    clock,
                    task_id,
                    &agent,
                    &task,
                    requester,
                    clock.now,
                    clock.wall,
                    TaskOutcome::Failed {
                        failure: failure.clone(),
                    },
                );
                return Submitted::Refused {
                    task_id,
                    agent,
                    failure,
                };
            }
        };
        let queue = &mut self.agents.get_mut(&name).expect("routed to it").queue;
        if let Err(full) = queue.push(task_id, task.priority) {
            let failure = TaskFailure::Busy {
                agent: name.clone(),
                queued: full.queued,
            };
            self.record(
                clock,
                task_id,
                &name,
                &task,
                requester,
                clock.now,
                clock.wall,
                TaskOutcome::Failed {
                    failure: failure.clone(),
                },
            );
            return Submitted::Refused {
                task_id,
                agent: name,
                failure,
            };
        }
        let deadline = clock.now + task.timeout;
        self.deadlines.arm(task_id, deadline);
        self.tasks.insert(
            task_id,
            Task {
                agent: name.clone(),
                task,
                requester,
                requested: clock.now,
                requested_at: clock.wall,
                deadline,
            },
        );
        self.pump(&name);
        self.counters_moved(clock.now);
        Submitted::Queued(task_id)
    }

    /// An agent's answer to a task delivered to it, from connection `conn`. Returns what the
    /// agent is told.
    pub fn result(
        &mut self,
        clock: Clock,
        conn: ConnId,
        agent: &str,
        task_id: TaskId,
        reply: TaskReply,
    ) -> Result<String, Refusal> {
        let Some(owner) = self.agents.get(agent) else {
            return Err((
                ErrorCode::Rejected,
                format!("no agent '{agent}' is registered"),
            ));
        };
        if owner.conn != conn {
            return Err((
                ErrorCode::Rejected,
                format!("agent '{agent}' was registered by another connection"),
            ));
        }
        let delivered = self.tasks.get(&task_id).is_some_and(|t| t.agent == agent)
            && owner.queue.is_in_flight(task_id);
        if !delivered {
            return Ok(format!(
                "task {task_id} is no longer waiting for '{agent}' (it timed out or was withdrawn)"
            ));
        }
        let outcome = match reply {
            TaskReply::Done { result } => TaskOutcome::Completed { result },
            TaskReply::Failed { error } => TaskOutcome::Failed {
                failure: TaskFailure::HandlerFailed {
                    agent: agent.to_string(),
                    error,
                },
            },
            TaskReply::Unsupported => TaskOutcome::Failed {
                failure: TaskFailure::UnsupportedTask {
                    agent: agent.to_string(),
                    task_type: self.tasks[&task_id].task.task_type.clone(),
                    processes: owner.capabilities.can_process.clone(),
                },
            },
        };
        self.finish(clock, task_id, outcome);
        Ok(format!("task {task_id} done"))
    }

    /// Ends every task whose deadline has come, and publishes counters that are due.
    pub fn tick(&mut self, clock: Clock) {
        for id in self.deadlines.expired(clock.now) {
            let Some(task) = self.tasks.get(&id) else {
                continue;
            };
            let after = task.task.timeout;
            self.finish(
                clock,
                id,
                TaskOutcome::Failed {
                    failure: TaskFailure::TimedOut { after },
                },
            );
        }
        let due = self
            .last_published
            .is_none_or(|at| clock.now >= at + self.settings.publish_every);
        if self.stale && due {
            self.publish_now(clock.now);
        }
    }

    /// Connection `conn` closed: its agents are gone. Their delivered tasks fail at once; their
    /// queued tasks go to another agent that processes the type, else fail.
    pub fn connection_closed(&mut self, clock: Clock, conn: ConnId) {
        let gone: Vec<String> = self
            .agents
            .iter()
            .filter(|(_, a)| a.conn == conn && !a.builtin)
            .map(|(name, _)| name.clone())
            .collect();
        if gone.is_empty() {
            return;
        }
        let mut orphans = Vec::new();
        for name in &gone {
            let mut agent = self.agents.remove(name).expect("listed above");
            let (in_flight, waiting) = agent.queue.drain();
            for id in in_flight {
                self.finish_gone(clock, id, name);
            }
            orphans.extend(waiting.into_iter().map(|id| (id, name.clone())));
        }
        self.requirements_changed();
        for (id, from) in orphans {
            let Some(task) = self.tasks.get(&id) else {
                continue;
            };
            let candidates = self.candidates();
            let to = routing::by_capability(&candidates, &task.task.task_type, None)
                .ok()
                .map(str::to_string);
            let priority = task.task.priority;
            let moved = to.filter(|to| {
                self.agents
                    .get_mut(to)
                    .is_some_and(|a| a.queue.push(id, priority).is_ok())
            });
            match moved {
                Some(to) => {
                    tracing::debug!(task = id, from = %from, to = %to, "task rerouted");
                    self.tasks.get_mut(&id).expect("still pending").agent = to.clone();
                    self.pump(&to);
                }
                None => self.finish_gone(clock, id, &from),
            }
        }
        self.publish_now(clock.now);
    }

    /// The component called `name` is now in `state` (it may not be an agent).
    pub fn component_state(&mut self, clock: Clock, name: &str, state: RunState) {
        let Some(agent) = self.agents.get_mut(name) else {
            return;
        };
        if agent.builtin || agent.component == Some(state) {
            return;
        }
        agent.component = Some(state);
        self.pump(name);
        self.publish_now(clock.now);
    }

    /// Every agent, by name.
    pub fn agents(&self) -> Vec<AgentStatus> {
        self.agents
            .keys()
            .filter_map(|name| self.status(name))
            .collect()
    }

    /// The last `limit` finished tasks, oldest first.
    pub fn tasks(&self, limit: usize) -> Vec<TaskRecord> {
        let skip = self.recent.len().saturating_sub(limit);
        self.recent.iter().skip(skip).cloned().collect()
    }

    pub fn status(&self, name: &str) -> Option<AgentStatus> {
        let a = self.agents.get(name)?;
        Some(AgentStatus {
            name: name.to_string(),
            capabilities: a.capabilities.clone(),
            state: a.state(),
            queued: a.queue.queued(),
            in_flight: a.queue.in_flight(),
            concurrency: a.queue.concurrency(),
            queue_capacity: a.queue.capacity(),
            done: a.done,
            failed: a.failed,
            mean_latency: (a.done > 0)
                .then(|| a.latency_sum / u32::try_from(a.done).unwrap_or(u32::MAX).max(1)),
            builtin: a.builtin,
        })
    }

    fn candidates(&self) -> Vec<Candidate<'_>> {
        self.agents
            .iter()
            .map(|(name, a)| Candidate {
                name,
                can_process: &a.capabilities.can_process,
                ready: a.ready(),
                load: a.queue.load(),
                concurrency: a.queue.concurrency(),
            })
            .collect()
    }

    /// Recomputes what each agent waits for and delivers to those now ready.
    fn requirements_changed(&mut self) {
        let provided: Vec<(String, Vec<String>)> = self
            .agents
            .iter()
            .map(|(n, a)| (n.clone(), a.capabilities.provides.clone()))
            .collect();
        let names: Vec<String> = self.agents.keys().cloned().collect();
        for name in &names {
            let agent = self.agents.get_mut(name).expect("listed");
            agent.missing = routing::missing(
                name,
                &agent.capabilities.requires,
                provided.iter().map(|(n, p)| (n.as_str(), p.as_slice())),
            );
        }
        for name in &names {
            self.pump(name);
        }
    }

    /// Delivers what the agent can take now.
    fn pump(&mut self, name: &str) {
        let Some(agent) = self.agents.get_mut(name) else {
            return;
        };
        if !agent.ready() {
            return;
        }
        while let Some(id) = agent.queue.take() {
            let task = self.tasks[&id].task.clone();
            self.effects.push(Effect::Deliver {
                agent: name.to_string(),
                task_id: id,
                task,
                builtin: agent.builtin,
            });
        }
    }

    fn finish_gone(&mut self, clock: Clock, id: TaskId, agent: &str) {
        self.finish(
            clock,
            id,
            TaskOutcome::Failed {
                failure: TaskFailure::AgentDisconnected {
                    agent: agent.to_string(),
                },
            },
        );
    }

    /// Ends a pending task: it leaves its queue and the deadlines, counts for its agent, is
    /// recorded, and its requester is answered; its agent's next task may go.
    fn finish(&mut self, clock: Clock, id: TaskId, outcome: TaskOutcome) {
        let Some(task) = self.tasks.remove(&id) else {
            return;
        };
        self.deadlines.disarm(id, task.deadline);
        let took = clock.now.saturating_duration_since(task.requested);
        if let Some(agent) = self.agents.get_mut(&task.agent) {
            agent.queue.remove(id, task.task.priority);
            match &outcome {
                TaskOutcome::Completed { .. } => {
                    agent.done += 1;
                    agent.latency_sum += took;
                }
                TaskOutcome::Failed { .. } => agent.failed += 1,
            }
        }
        self.effects.push(Effect::Finish {
            task_id: id,
            agent: task.agent.clone(),
            outcome: outcome.clone(),
        });
        let agent = task.agent.clone();
        self.record(
            clock,
            id,
            &agent,
            &task.task,
            task.requester,
            task.requested,
            task.requested_at,
            outcome,
        );
        self.pump(&agent);
        self.counters_moved(clock.now);
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        clock: Clock,
        id: TaskId,
        agent: &str,
        task: &MacTask,
        requester: String,
        requested: Instant,
        requested_at: SystemTime,
        outcome: TaskOutcome,
    ) {
        if self.recent.len() >= self.settings.recent {
            self.recent.pop_front();
        }
        // Results can be large: the record keeps their start.
        let outcome = match outcome {
            TaskOutcome::Completed { result } => TaskOutcome::Completed {
                result: crate::text::truncate(&result, 200),
            },
            failed @ TaskOutcome::Failed { .. } => failed,
        };
        self.recent.push_back(TaskRecord {
            id,
            agent: agent.to_string(),
            task_type: task.task_type.clone(),
            priority: task.priority,
            requester,
            requested_at,
            took: clock.now.saturating_duration_since(requested),
            outcome,
        });
    }

    fn counters_moved(&mut self, now: Instant) {
        self.stale = true;
        if self
            .last_published
            .is_none_or(|at| now >= at + self.settings.publish_every)
        {
            self.publish_now(now);
        }
    }

    fn publish_now(&mut self, now: Instant) {
        self.stale = false;
        self.last_published = Some(now);
        if !self.effects.contains(&Effect::PublishAgents) {
            self.effects.push(Effect::PublishAgents);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TaskPriority;

    fn clock(t0: Instant, ms: u64) -> Clock {
        Clock {
            now: t0 + Duration::from_millis(ms),
            wall: SystemTime::UNIX_EPOCH + Duration::from_millis(ms),
        }
    }

    fn caps(can: &[&str], requires: &[&str], provides: &[&str]) -> AgentCapabilities {
        AgentCapabilities {
            can_process: AgentCapabilities::names(can.iter().copied()),
            requires: AgentCapabilities::names(requires.iter().copied()),
            provides: AgentCapabilities::names(provides.iter().copied()),
            healing_level: Default::default(),
        }
    }

    fn task(task_type: &str, priority: TaskPriority, timeout_ms: u64) -> MacTask {
        MacTask {
            task_type: task_type.into(),
            payload: String::new(),
            priority,
            timeout: Duration::from_millis(timeout_ms),
        }
    }

    fn delivered(k: &mut Kernel) -> Vec<TaskId> {
        k.take_effects()
            .into_iter()
            .filter_map(|e| match e {
                Effect::Deliver { task_id, .. } => Some(task_id),
                _ => None,
            })
            .collect()
    }

    fn finished(effects: &[Effect]) -> Vec<(TaskId, TaskOutcome)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Finish {
                    task_id, outcome, ..
                } => Some((*task_id, outcome.clone())),
                _ => None,
            })
            .collect()
    }

    /// Requester "t" asks `agent` for `task`, which is queued.
    fn ask(k: &mut Kernel, at: Clock, agent: &str, task: MacTask) -> TaskId {
        queued(k.request(at, Some(agent), task, "t".into()))
    }

    fn queued(s: Submitted) -> TaskId {
        match s {
            Submitted::Queued(id) => id,
            other => panic!("refused: {other:?}"),
        }
    }

    #[test]
    fn an_agent_that_requires_what_nobody_provides_waits_and_gets_nothing_until_then() {
        let t0 = Instant::now();
        let mut k = Kernel::new(Settings::default());
        k.register(
            clock(t0, 0),
            1,
            Registration::agent(
                "analysis",
                caps(&["analyze"], &["storage"], &[]),
                None,
                None,
            ),
        )
        .unwrap();
        assert_eq!(
            k.status("analysis").unwrap().state,
            AgentState::WaitingFor {
                missing: vec!["storage".into()]
            }
        );
        assert_eq!(
            k.status("analysis").unwrap().state.to_string(),
            "waiting for: storage"
        );
        let id = ask(
            &mut k,
            clock(t0, 1),
            "analysis",
            task("analyze", TaskPriority::Normal, 1000),
        );
        assert!(delivered(&mut k).is_empty(), "not while waiting");
        k.register(
            clock(t0, 2),
            2,
            Registration::agent("store", caps(&[], &[], &["storage"]), None, None),
        )
        .unwrap();
        assert_eq!(k.status("analysis").unwrap().state, AgentState::Ready);
        assert_eq!(delivered(&mut k), vec![id]);
    }

    #[test]
    fn the_deadline_ends_a_task_the_agent_never_answers_and_frees_its_slot() {
        let t0 = Instant::now();
        let mut k = Kernel::new(Settings::default());
        k.register(
            clock(t0, 0),
            1,
            Registration::agent("db", caps(&["q"], &[], &[]), Some(1), None),
        )
        .unwrap();
        let a = ask(
            &mut k,
            clock(t0, 0),
            "db",
            task("q", TaskPriority::Normal, 500),
        );
        let b = ask(
            &mut k,
            clock(t0, 0),
            "db",
            task("q", TaskPriority::Normal, 5000),
        );
        assert_eq!(delivered(&mut k), vec![a]);
        assert_eq!(
            k.next_deadline().map(|d| d - t0),
            Some(Duration::from_millis(500)),
            "the earliest deadline, before the counters' next publication"
        );
        k.tick(clock(t0, 499));
        assert!(finished(&k.take_effects()).is_empty());
        k.tick(clock(t0, 500));
        let effects = k.take_effects();
        assert_eq!(
            finished(&effects),
            vec![(
                a,
                TaskOutcome::Failed {
                    failure: TaskFailure::TimedOut {
                        after: Duration::from_millis(500)
                    }
                }
            )]
        );
        assert!(effects.contains(&Effect::Deliver {
            agent: "db".into(),
            task_id: b,
            task: task("q", TaskPriority::Normal, 5000),
            builtin: false
        }));
        assert_eq!(
            k.result(
                clock(t0, 600),
                1,
                "db",
                a,
                TaskReply::Done {
                    result: "late".into()
                }
            )
            .unwrap(),
            format!("task {a} is no longer waiting for 'db' (it timed out or was withdrawn)")
        );
        assert_eq!(k.status("db").unwrap().failed, 1);
    }

    #[test]
    fn a_closed_connection_fails_in_flight_tasks_and_reroutes_queued_ones() {
        let t0 = Instant::now();
        let mut k = Kernel::new(Settings::default());
        k.register(
            clock(t0, 0),
            1,
            Registration::agent("db1", caps(&["q"], &[], &[]), Some(1), None),
        )
        .unwrap();
        let first = ask(
            &mut k,
            clock(t0, 0),
            "db1",
            task("q", TaskPriority::Normal, 9000),
        );
        let second = ask(
            &mut k,
            clock(t0, 0),
            "db1",
            task("q", TaskPriority::Normal, 9000),
        );
        let _ = k.take_effects();
        k.register(
            clock(t0, 1),
            2,
            Registration::agent("db2", caps(&["q"], &[], &[]), Some(1), None),
        )
        .unwrap();
        let _ = k.take_effects();
        k.connection_closed(clock(t0, 2), 1);
        let effects = k.take_effects();
        assert_eq!(
            finished(&effects),
            vec![(
                first,
                TaskOutcome::Failed {
                    failure: TaskFailure::AgentDisconnected {
                        agent: "db1".into()
                    }
                }
            )]
        );
        assert!(effects.iter().any(|e| matches!(e, Effect::Deliver { agent, task_id, .. } if agent == "db2" && *task_id == second)));
        assert!(k.status("db1").is_none());
        k.result(
            clock(t0, 3),
            2,
            "db2",
            second,
            TaskReply::Done {
                result: "ok".into(),
            },
        )
        .unwrap();
        assert_eq!(
            finished(&k.take_effects()),
            vec![(
                second,
                TaskOutcome::Completed {
                    result: "ok".into()
                }
            )]
        );
    }

    #[test]
    fn queued_tasks_with_nowhere_to_go_fail_when_their_agent_leaves() {
        let t0 = Instant::now();
        let mut k = Kernel::new(Settings::default());
        k.register(
            clock(t0, 0),
            1,
            Registration::agent("db", caps(&["q"], &[], &[]), Some(1), None),
        )
        .unwrap();
        let a = ask(
            &mut k,
            clock(t0, 0),
            "db",
            task("q", TaskPriority::Normal, 9000),
        );
        let b = ask(
            &mut k,
            clock(t0, 0),
            "db",
            task("q", TaskPriority::Normal, 9000),
        );
        let _ = k.take_effects();
        k.connection_closed(clock(t0, 1), 1);
        let ended: Vec<TaskId> = finished(&k.take_effects())
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(ended, vec![a, b]);
        assert_eq!(k.pending(), 0);
        assert!(
            k.next_deadline().is_none_or(|d| d >= t0),
            "no task deadline left"
        );
    }

    #[test]
    fn unsupported_and_unknown_and_busy_are_refused_at_once() {
        let t0 = Instant::now();
        let mut k = Kernel::new(Settings::default());
        k.register(
            clock(t0, 0),
            1,
            Registration::agent("db", caps(&["q"], &[], &[]), Some(1), Some(1)),
        )
        .unwrap();
        let refused = |s: Submitted| match s {
            Submitted::Refused { failure, .. } => failure.to_string(),
            Submitted::Queued(id) => panic!("queued {id}"),
        };
        assert_eq!(
            refused(k.request(
                clock(t0, 0),
                Some("x"),
                task("q", TaskPriority::Normal, 10),
                "t".into()
            )),
            "no such agent 'x' — known: db"
        );
        assert_eq!(
            refused(k.request(
                clock(t0, 0),
                Some("db"),
                task("make-coffee", TaskPriority::Normal, 10),
                "t".into()
            )),
            "agent 'db' cannot process 'make-coffee' (it processes: q)"
        );
        ask(
            &mut k,
            clock(t0, 0),
            "db",
            task("q", TaskPriority::Normal, 10),
        );
        ask(
            &mut k,
            clock(t0, 0),
            "db",
            task("q", TaskPriority::Normal, 10),
        );
        assert!(
            refused(k.request(
                clock(t0, 0),
                Some("db"),
                task("q", TaskPriority::Critical, 10),
                "t".into()
            ))
            .contains("busy")
        );
        assert_eq!(k.tasks(10).len(), 3, "refusals are recorded too");
    }

    #[test]
    fn an_agent_whose_component_is_down_gets_no_task_until_it_runs() {
        let t0 = Instant::now();
        let mut k = Kernel::new(Settings::default());
        k.register(
            clock(t0, 0),
            1,
            Registration::agent("db", caps(&["q"], &[], &[]), None, None),
        )
        .unwrap();
        assert!(
            k.take_effects()
                .contains(&Effect::AskComponentState { agent: "db".into() })
        );
        k.component_state(clock(t0, 1), "db", RunState::Backoff);
        assert_eq!(
            k.status("db").unwrap().state.to_string(),
            "component backoff"
        );
        let id = ask(
            &mut k,
            clock(t0, 2),
            "db",
            task("q", TaskPriority::Normal, 9000),
        );
        assert!(delivered(&mut k).is_empty());
        k.component_state(clock(t0, 3), "db", RunState::Running);
        assert_eq!(delivered(&mut k), vec![id]);
    }

    #[test]
    fn a_handlers_unsupported_answer_names_what_the_agent_processes() {
        let t0 = Instant::now();
        let mut k = Kernel::new(Settings::default());
        k.register(
            clock(t0, 0),
            1,
            Registration::agent("db", caps(&["q", "r"], &[], &[]), None, None),
        )
        .unwrap();
        let id = ask(
            &mut k,
            clock(t0, 0),
            "db",
            task("r", TaskPriority::Normal, 9000),
        );
        let _ = k.take_effects();
        assert!(
            k.result(clock(t0, 1), 9, "db", id, TaskReply::Unsupported)
                .is_err(),
            "only its own connection answers"
        );
        k.result(clock(t0, 1), 1, "db", id, TaskReply::Unsupported)
            .unwrap();
        assert_eq!(
            finished(&k.take_effects()),
            vec![(
                id,
                TaskOutcome::Failed {
                    failure: TaskFailure::UnsupportedTask {
                        agent: "db".into(),
                        task_type: "r".into(),
                        processes: vec!["q".into(), "r".into()]
                    }
                }
            )]
        );
    }
}
