//! The room with paused time: what a requester sees, whatever the agent does.

use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::model::{MacTask, TaskFailure, TaskOutcome, TaskPriority};

fn caps(can: &[&str]) -> AgentCapabilities {
    AgentCapabilities {
        can_process: AgentCapabilities::names(can.iter().copied()),
        ..AgentCapabilities::default()
    }
}

fn task(timeout: Duration) -> MacTask {
    MacTask {
        task_type: "execute-query".into(),
        payload: "SELECT 1".into(),
        priority: TaskPriority::Normal,
        timeout,
    }
}

async fn register(mac: &MacHandle, conn: ConnId, name: &str) {
    mac.request(
        conn,
        MacRequest::RegisterAgent {
            name: name.into(),
            capabilities: caps(&["execute-query"]),
            concurrency: Some(1),
            queue_capacity: None,
        },
    )
    .await
    .expect("registered");
}

fn outcome(answer: Answer) -> TaskOutcome {
    match answer {
        Ok(Response::Mac {
            answer: MacAnswer::Outcome { outcome, .. },
        }) => outcome,
        other => panic!("not an outcome: {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn the_requester_gets_timed_out_on_time_when_the_agent_never_answers() {
    let bus = crate::core::bus::Bus::new(64);
    let mut events = bus.subscribe();
    let mac = MacHandle::spawn(bus, Settings::default());
    register(&mac, 7, "database-agent").await;
    let t0 = Instant::now();
    let asked = mac.request(
        8,
        MacRequest::RequestTask {
            agent: Some("database-agent".into()),
            task: task(Duration::from_secs(5)),
            requester: None,
        },
    );
    let answer = asked.await;
    assert_eq!(
        Instant::now() - t0,
        Duration::from_secs(5),
        "exactly at its timeout"
    );
    assert_eq!(
        outcome(answer),
        TaskOutcome::Failed {
            failure: TaskFailure::TimedOut {
                after: Duration::from_secs(5)
            }
        }
    );
    // The agent had it, and never answered.
    let mut delivered = false;
    while let Ok(event) = events.try_recv() {
        delivered |=
            matches!(event.event(), Event::Task { agent, .. } if agent == "database-agent");
    }
    assert!(delivered);
}

#[tokio::test(start_paused = true)]
async fn a_result_answers_the_requester_and_a_closed_connection_fails_the_next_at_once() {
    let bus = crate::core::bus::Bus::new(64);
    let mut events = bus.subscribe();
    let mac = MacHandle::spawn(bus, Settings::default());
    register(&mac, 7, "database-agent").await;
    let agent = mac.clone();
    tokio::spawn(async move {
        // The agent: answers the first task, then its connection closes during the second.
        let mut answered = 0;
        loop {
            let Ok(event) = events.recv().await else {
                continue;
            };
            let Event::Task { task_id, .. } = *event.event() else {
                continue;
            };
            if answered == 0 {
                answered += 1;
                let _ = agent
                    .request(
                        7,
                        MacRequest::TaskResult {
                            agent: "database-agent".into(),
                            task_id,
                            reply: TaskReply::Done {
                                result: "[1]".into(),
                            },
                        },
                    )
                    .await;
            } else {
                agent.connection_closed(7);
                return;
            }
        }
    });
    let ask = || {
        mac.request(
            8,
            MacRequest::RequestTask {
                agent: Some("database-agent".into()),
                task: task(Duration::from_secs(30)),
                requester: Some("test".into()),
            },
        )
    };
    assert_eq!(
        outcome(ask().await),
        TaskOutcome::Completed {
            result: "[1]".into()
        }
    );
    let t0 = Instant::now();
    assert_eq!(
        outcome(ask().await),
        TaskOutcome::Failed {
            failure: TaskFailure::AgentDisconnected {
                agent: "database-agent".into()
            }
        }
    );
    assert!(
        Instant::now() - t0 < Duration::from_secs(1),
        "at once, not at the timeout"
    );
    let Ok(Response::Mac {
        answer: MacAnswer::Agents { agents },
    }) = mac.request(8, MacRequest::Agents).await
    else {
        panic!("agents");
    };
    let names: Vec<&str> = agents.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, vec![SUPERVISOR_AGENT], "the built-in agent stays");
}

#[tokio::test(start_paused = true)]
async fn the_supervisor_agent_without_a_supervisor_says_so() {
    let bus = crate::core::bus::Bus::new(64);
    let _events = bus.subscribe();
    let mac = MacHandle::spawn(bus, Settings::default());
    let coordination = HealingCoordination {
        issue: crate::model::Issue::new("db", "connection-lost", crate::model::Severity::Error),
        affected_agents: vec!["api".into()],
        priority: TaskPriority::High,
    };
    let answer = mac
        .request(
            1,
            MacRequest::RequestTask {
                agent: Some(SUPERVISOR_AGENT.into()),
                task: MacTask {
                    task_type: COORDINATE_HEALING.into(),
                    payload: serde_json::to_string(&coordination).unwrap(),
                    priority: TaskPriority::High,
                    timeout: Duration::from_secs(120),
                },
                requester: None,
            },
        )
        .await;
    assert_eq!(
        outcome(answer),
        TaskOutcome::Failed {
            failure: TaskFailure::HandlerFailed {
                agent: SUPERVISOR_AGENT.into(),
                error: "the supervisor is not reachable from the task bus".into()
            }
        }
    );
}
