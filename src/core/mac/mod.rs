//! The MAC task bus (guide §6): a room of the core where agents register what they can do and
//! ask each other for tasks.
//!
//! # Layout
//! - [`queue`]: one agent's bounded priority queue with its concurrency, and the deadlines. Pure.
//! - [`routing`]: which agent gets a task (by name, by capability, least loaded first), and what
//!   an agent waits for. Pure.
//! - [`kernel`]: the bus's decisions as a state machine over both, taking the clock and returning
//!   effects.
//! - this module: the room's actor ([`MacHandle`] and its task), which receives requests from the
//!   router, feeds the kernel, and carries out its effects: it pushes tasks to agents as
//!   [`Event::Task`] on the bus (an agent's connection subscribes to [`crate::protocol::Topic::Tasks`]
//!   with the agent's name, as a linked component receives its commands), answers requesters,
//!   arms the one timer that enforces every task's timeout, publishes the agents' list, and runs
//!   the built-in `supervisor-agent`.
//!
//! The room owns the bus's state and nothing else: the supervisor is reached only by requests
//! through the router (the supervisor-agent's `coordinate-healing` becomes a `ReportIssue`; an
//! agent's component state is asked with `Status` and then followed from `StateChanged` events).
//! The healing path never waits on this room.

pub mod kernel;
pub mod queue;
pub mod routing;

use std::collections::HashMap;
use std::pin::pin;
use std::time::{Duration, SystemTime};

use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;

pub use kernel::{Clock, Effect, Kernel, Registration, Settings, Submitted};
pub use queue::TaskId;

use super::router::Router;
use super::supervisor::{Answer, ConnId, NO_CONN};
use crate::model::{AgentCapabilities, HealingCoordination, HealingLevel, RunState};
use crate::protocol::{Event, MacAnswer, MacRequest, Request, Response, TaskReply};

/// The core's own agent: it processes [`COORDINATE_HEALING`] tasks.
pub const SUPERVISOR_AGENT: &str = "supervisor-agent";

/// The task type of §6.2: its payload is a [`HealingCoordination`].
pub const COORDINATE_HEALING: &str = "coordinate-healing";

/// The issue context key that names the other components an issue touches, which the
/// supervisor's recovery planner reads (comma-separated).
pub const AFFECTED_COMPONENTS: &str = "affected_components";

/// What the room receives.
enum Cmd {
    Request {
        conn: ConnId,
        request: MacRequest,
        reply: oneshot::Sender<Answer>,
    },
    ConnectionClosed(ConnId),
    ComponentState {
        name: String,
        state: RunState,
    },
    /// The built-in agent finished a task.
    BuiltinDone {
        task_id: TaskId,
        reply: TaskReply,
    },
    /// The router, for the built-in agent's requests to the supervisor.
    Attach(Router),
}

/// Sends task-bus requests to the room. Cheap to clone.
#[derive(Clone)]
pub struct MacHandle {
    tx: mpsc::UnboundedSender<Cmd>,
}

impl MacHandle {
    /// Starts the room, with the built-in `supervisor-agent` registered. Until
    /// [`MacHandle::attach`] gives it the router, the supervisor-agent's tasks fail and agents'
    /// component states are not asked for.
    pub fn spawn(bus: crate::core::bus::Bus, settings: Settings) -> MacHandle {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut kernel = Kernel::new(settings);
        kernel
            .register(
                clock(),
                NO_CONN,
                Registration {
                    builtin: true,
                    ..Registration::agent(
                        SUPERVISOR_AGENT,
                        supervisor_agent_capabilities(),
                        Some(4),
                        None,
                    )
                },
            )
            .expect("the built-in agent's name and capabilities are valid");
        let _ = kernel.take_effects();
        tokio::spawn(follow_component_states(bus.subscribe(), tx.downgrade()));
        let room = Room {
            kernel,
            waiting: HashMap::new(),
            bus,
            router: None,
            me: tx.downgrade(),
        };
        tokio::spawn(room.run(rx));
        MacHandle { tx }
    }

    /// Gives the room the router through which the supervisor-agent reaches the supervisor.
    pub fn attach(&self, router: Router) {
        let _ = self.tx.send(Cmd::Attach(router));
    }

    /// A task-bus request made on connection `conn`; a task request is answered when its task
    /// ends (at the latest at its timeout).
    pub async fn request(&self, conn: ConnId, request: MacRequest) -> Answer {
        super::router::ask(&self.tx, |reply| Cmd::Request {
            conn,
            request,
            reply,
        })
        .await
        .and_then(|answer| answer)
    }

    /// Tells the room that a connection ended: the agents it registered are gone. The server
    /// says so for every connection; one that registered no agent costs a lookup.
    pub fn connection_closed(&self, conn: ConnId) {
        let _ = self.tx.send(Cmd::ConnectionClosed(conn));
    }
}

fn supervisor_agent_capabilities() -> AgentCapabilities {
    AgentCapabilities {
        can_process: vec![COORDINATE_HEALING.to_string()],
        requires: Vec::new(),
        provides: vec![
            "supervision".to_string(),
            "healing-coordination".to_string(),
        ],
        healing_level: HealingLevel::Full,
    }
}

fn clock() -> Clock {
    Clock {
        now: Instant::now(),
        wall: SystemTime::now(),
    }
}

/// The room: the kernel, the requesters waiting for their tasks, and the means to reach agents.
struct Room {
    kernel: Kernel,
    /// Requesters waiting, by task.
    waiting: HashMap<TaskId, oneshot::Sender<Answer>>,
    bus: crate::core::bus::Bus,
    router: Option<Router>,
    /// For the room's own helper tasks; does not keep the room alive.
    me: mpsc::WeakUnboundedSender<Cmd>,
}

impl Room {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Cmd>) {
        // One timer for every deadline: re-armed only when the earliest one changes.
        let far = || Instant::now() + Duration::from_secs(365 * 24 * 3600);
        let mut timer = pin!(tokio::time::sleep_until(far()));
        let mut armed: Option<Instant> = None;
        loop {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.on(cmd),
                    None => break,
                },
                () = &mut timer, if armed.is_some() => {
                    armed = None;
                    self.kernel.tick(clock());
                }
            }
            self.carry_out();
            let next = self.kernel.next_deadline();
            if next != armed {
                armed = next;
                timer.as_mut().reset(next.unwrap_or_else(far));
            }
        }
    }

    fn on(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Request {
                conn,
                request,
                reply,
            } => self.on_request(conn, request, reply),
            Cmd::ConnectionClosed(conn) => self.kernel.connection_closed(clock(), conn),
            Cmd::ComponentState { name, state } => {
                self.kernel.component_state(clock(), &name, state)
            }
            Cmd::BuiltinDone { task_id, reply } => {
                if let Err((_, why)) =
                    self.kernel
                        .result(clock(), NO_CONN, SUPERVISOR_AGENT, task_id, reply)
                {
                    tracing::warn!(task = task_id, cause = %why, "the supervisor-agent's result was refused");
                }
            }
            Cmd::Attach(router) => self.router = Some(router),
        }
    }

    fn on_request(&mut self, conn: ConnId, request: MacRequest, reply: oneshot::Sender<Answer>) {
        let answer = |answer: MacAnswer| Ok(Response::Mac { answer });
        let now = clock();
        let _ = match request {
            MacRequest::RegisterAgent {
                name,
                capabilities,
                concurrency,
                queue_capacity,
            } => reply.send(
                self.kernel
                    .register(
                        now,
                        conn,
                        Registration::agent(&name, capabilities, concurrency, queue_capacity),
                    )
                    .map(|agent| Response::Mac {
                        answer: MacAnswer::Registered { agent },
                    }),
            ),
            MacRequest::RequestTask {
                agent,
                task,
                requester,
            } => {
                let requester = requester.unwrap_or_else(|| format!("connection {conn}"));
                match self.kernel.request(now, agent.as_deref(), task, requester) {
                    Submitted::Queued(id) => {
                        self.waiting.insert(id, reply);
                        Ok(())
                    }
                    Submitted::Refused {
                        task_id,
                        agent,
                        failure,
                    } => reply.send(answer(MacAnswer::Outcome {
                        task_id,
                        agent,
                        outcome: crate::model::TaskOutcome::Failed { failure },
                    })),
                }
            }
            MacRequest::TaskResult {
                agent,
                task_id,
                reply: result,
            } => reply.send(self.kernel.result(now, conn, &agent, task_id, result).map(
                |message| Response::Mac {
                    answer: MacAnswer::Noted { message },
                },
            )),
            MacRequest::Agents => reply.send(answer(MacAnswer::Agents {
                agents: self.kernel.agents(),
            })),
            MacRequest::Tasks { limit } => reply.send(answer(MacAnswer::Tasks {
                tasks: self.kernel.tasks(limit),
            })),
        };
    }

    fn carry_out(&mut self) {
        for effect in self.kernel.take_effects() {
            match effect {
                Effect::Deliver {
                    agent,
                    task_id,
                    task,
                    builtin: false,
                } => {
                    // No subscriber means no agent listening: the task's deadline ends it.
                    self.bus.publish(Event::Task {
                        agent,
                        task_id,
                        task: Box::new(task),
                    });
                }
                Effect::Deliver {
                    task_id,
                    task,
                    builtin: true,
                    ..
                } => {
                    let router = self.router.clone();
                    let me = self.me.clone();
                    tokio::spawn(async move {
                        let reply = coordinate_healing(router, &task.payload).await;
                        if let Some(room) = me.upgrade() {
                            let _ = room.send(Cmd::BuiltinDone { task_id, reply });
                        }
                    });
                }
                Effect::Finish {
                    task_id,
                    agent,
                    outcome,
                } => {
                    if let Some(reply) = self.waiting.remove(&task_id) {
                        let _ = reply.send(Ok(Response::Mac {
                            answer: MacAnswer::Outcome {
                                task_id,
                                agent,
                                outcome,
                            },
                        }));
                    }
                }
                Effect::PublishAgents => {
                    self.bus.publish(Event::Agents {
                        agents: self.kernel.agents(),
                    });
                }
                Effect::AskComponentState { agent } => {
                    let (Some(router), Some(me)) = (self.router.clone(), self.me.upgrade()) else {
                        continue;
                    };
                    tokio::spawn(async move {
                        let asked = Request::Status {
                            component: Some(agent.clone()),
                        };
                        // Not a component: nothing to follow.
                        if let Ok(Response::Status { components }) = router.request(asked).await
                            && let Some(c) = components.into_iter().find(|c| c.name == agent)
                        {
                            let _ = me.send(Cmd::ComponentState {
                                name: agent,
                                state: c.state,
                            });
                        }
                    });
                }
            }
        }
    }
}

/// The supervisor-agent's work (§6.2): the coordination's issue, with the affected agents named
/// in its context, goes to the supervisor as a `ReportIssue`, which heals it (across components
/// when the recovery planner sees affected ones); the supervisor's answer is the result.
async fn coordinate_healing(router: Option<Router>, payload: &str) -> TaskReply {
    let coordination: HealingCoordination = match serde_json::from_str(payload) {
        Ok(c) => c,
        Err(e) => {
            return TaskReply::Failed {
                error: format!("the payload is not a HealingCoordination: {e}"),
            };
        }
    };
    let Some(router) = router else {
        return TaskReply::Failed {
            error: "the supervisor is not reachable from the task bus".into(),
        };
    };
    let mut issue = coordination.issue;
    let mut affected: Vec<String> = issue
        .context
        .get(AFFECTED_COMPONENTS)
        .map(|list| list.split(',').map(|s| s.trim().to_string()).collect())
        .unwrap_or_default();
    for agent in coordination.affected_agents {
        if agent != issue.component && !affected.contains(&agent) {
            affected.push(agent);
        }
    }
    affected.retain(|a| !a.is_empty());
    if !affected.is_empty() {
        issue
            .context
            .insert(AFFECTED_COMPONENTS.to_string(), affected.join(","));
    }
    issue.context.insert(
        "coordinated_by".to_string(),
        format!("{SUPERVISOR_AGENT} ({} priority)", coordination.priority),
    );
    match router.request(Request::ReportIssue { issue }).await {
        Ok(Response::Done { message }) => TaskReply::Done { result: message },
        Ok(other) => TaskReply::Done {
            result: format!("{other:?}"),
        },
        Err((_, message)) => TaskReply::Failed { error: message },
    }
}

/// Follows components' states for the agents that are also components.
async fn follow_component_states(
    mut events: crate::core::bus::BusReceiver,
    room: mpsc::WeakUnboundedSender<Cmd>,
) {
    loop {
        let received = events.recv().await;
        match received.as_deref().map(|p| p.event()) {
            Ok(Event::StateChanged { component, to, .. }) => {
                let Some(room) = room.upgrade() else {
                    return;
                };
                let _ = room.send(Cmd::ComponentState {
                    name: component.clone(),
                    state: *to,
                });
            }
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                if room.strong_count() == 0 {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests;
