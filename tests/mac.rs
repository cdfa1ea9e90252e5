//! The MAC task bus over a real core (issue 11): agents built from the library, real agent
//! processes (examples/analysis_agent.rs asking examples/database_agent.rs, as in §6.1 step 4),
//! routing by name and by capability, the typed refusals, an agent killed mid-task, and
//! coordinate-healing through the core's supervisor-agent. Every wait has a deadline.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{BIN, Core, wait_for};
use hms::model::{AgentState, AgentStatus, Issue, Severity, TaskOutcome, TaskRecord};
use hms::prelude::*;

const FLEET: &str = "[[component]]\nname = \"db\"\ncommand = [\"sleep\", \"1000\"]\n";

/// An example's process; killed if the test ends early.
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The example as cargo builds it, beside the `hms-console` this test runs.
fn example(name: &str) -> PathBuf {
    let path = Path::new(BIN)
        .parent()
        .expect("hms-console lives in a directory")
        .join("examples")
        .join(name);
    assert!(
        path.exists(),
        "{} is not built: `cargo test` builds examples; alone, run `cargo build --examples` first",
        path.display()
    );
    path
}

fn start_agent(core: &Core, name: &str) -> Agent {
    let log = std::fs::File::create(core.dir.path().join(format!("{name}.log"))).unwrap();
    Agent(
        Command::new(example(name))
            .env("HMS_SOCKET", &core.socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the example"),
    )
}

fn agents(core: &Core) -> Vec<AgentStatus> {
    serde_json::from_str(&core.cli_ok(&["mac", "agents", "--json"])).expect("agents json")
}

fn wait_agent(
    core: &Core,
    name: &str,
    what: &str,
    pred: impl Fn(&AgentStatus) -> bool,
) -> AgentStatus {
    wait_for(&format!("{name}: {what}"), Duration::from_secs(30), || {
        agents(core).into_iter().find(|a| a.name == name && pred(a))
    })
}

fn task(task_type: &str, payload: &str, timeout: Duration) -> MacTask {
    MacTask {
        task_type: task_type.into(),
        payload: payload.into(),
        priority: TaskPriority::Normal,
        timeout,
    }
}

fn capabilities(can: &[&str]) -> AgentCapabilities {
    AgentCapabilities {
        can_process: AgentCapabilities::names(can.iter().copied()),
        requires: vec![],
        provides: vec![],
        healing_level: HealingLevel::Basic,
    }
}

/// §6.1 end to end with two real agent processes: the analysis agent waits for what it requires,
/// then a request to it makes it ask the database agent for `execute-query`, and the result comes
/// back through both.
#[test]
fn an_analysis_agent_asks_the_database_agent_through_the_core() {
    let core = Core::start(FLEET);
    let _analysis = start_agent(&core, "analysis_agent");
    let waiting = wait_agent(&core, "analysis-agent", "registered", |_| true);
    assert_eq!(
        waiting.state.to_string(),
        "waiting for: database-access",
        "{waiting:?}"
    );
    let listed = core.cli_ok(&["mac", "agents"]);
    assert!(listed.contains("waiting for: database-access"), "{listed}");

    let _database = start_agent(&core, "database_agent");
    wait_agent(&core, "analysis-agent", "ready", |a| {
        a.state == AgentState::Ready
    });
    let answer = core.cli_ok(&[
        "mac",
        "request",
        "analysis-agent",
        "data-analysis",
        r#"{"table":"orders"}"#,
        "--timeout",
        "20s",
    ]);
    assert_eq!(
        answer.trim(),
        r#"{"table":"orders","rows":3,"total":245,"largest":"apples"}"#
    );

    // Both agents count their task; the bus remembers who asked whom.
    let database = wait_agent(&core, "database-agent", "one done", |a| a.done == 1);
    assert!(database.mean_latency.is_some());
    let tasks: Vec<TaskRecord> =
        serde_json::from_str(&core.cli_ok(&["mac", "tasks", "--json"])).expect("tasks json");
    let query = tasks
        .iter()
        .find(|t| t.task_type == "execute-query")
        .expect("the query task is recorded");
    assert_eq!(query.requester, "analysis-agent");
    assert_eq!(query.agent, "database-agent");
    assert!(matches!(query.outcome, TaskOutcome::Completed { .. }));
    let table = core.cli_ok(&["mac", "tasks"]);
    assert!(table.contains("data-analysis"), "{table}");
}

/// The typed refusals, from the command line: exit 1 with the reason.
#[test]
fn unknown_agents_and_unsupported_task_types_are_refused_with_what_exists() {
    let core = Core::start(FLEET);
    let _database = start_agent(&core, "database_agent");
    wait_agent(&core, "database-agent", "ready", |a| {
        a.state == AgentState::Ready
    });

    let out = core.cli(&["mac", "request", "x", "execute-query"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no such agent 'x' — known: database-agent, supervisor-agent"),
        "{stderr}"
    );

    let out = core.cli(&["mac", "request", "database-agent", "make-coffee"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "agent 'database-agent' cannot process 'make-coffee' (it processes: execute-query, slow-query)"
        ),
        "{stderr}"
    );

    // The handler's own error text reaches the requester.
    let out = core.cli(&[
        "mac",
        "request",
        "database-agent",
        "execute-query",
        r#""SELECT * FROM nowhere""#,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("agent 'database-agent' failed: no such table: nowhere"),
        "{stderr}"
    );
    let out = core.cli(&[
        "mac",
        "request",
        "database-agent",
        "x",
        "--priority",
        "urgent",
    ]);
    assert_eq!(out.status.code(), Some(2), "bad usage");
}

/// By name and by capability with agents built from the library in this test: a capability
/// request goes to the least loaded agent that processes the type, and an agent's handler saying
/// `UnsupportedTask` is the requester's `UnsupportedTask`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_route_by_name_and_by_capability_to_the_least_loaded() {
    let core = Core::start(FLEET);
    let socket = core.socket.clone();
    let mut lookups = Vec::new();
    for name in ["lookup-a", "lookup-b"] {
        let mac = MacClient::with_socket(name, socket.clone()).with_concurrency(1);
        mac.connect().await.expect("connect");
        mac.register_agent(name, capabilities(&["lookup", "refuse", "boom"]))
            .await
            .expect("register");
        let me = name.to_string();
        mac.set_async_task_handler(move |task: MacTask| {
            let me = me.clone();
            async move {
                match task.task_type.as_str() {
                    "lookup" => {
                        let ms: u64 = task.payload.parse().unwrap_or(0);
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        Ok(me)
                    }
                    "boom" => panic!("boom"),
                    _ => Err(TaskError::UnsupportedTask(task.task_type)),
                }
            }
        });
        mac.start_task_handling().await.expect("handling");
        lookups.push(mac);
    }
    let requester = Arc::new(MacClient::with_socket("requester", socket.clone()));
    requester.connect().await.expect("connect");

    // By name.
    let by_name = requester
        .request_task("lookup-b", task("lookup", "0", Duration::from_secs(10)))
        .await
        .expect("lookup-b answers");
    assert_eq!(by_name, "lookup-b");

    // lookup-a busy with a long task: a capability request goes to lookup-b.
    let busy = {
        let requester = requester.clone();
        tokio::spawn(async move {
            requester
                .request_task("lookup-a", task("lookup", "3000", Duration::from_secs(10)))
                .await
        })
    };
    let core_ref = &core;
    tokio::task::block_in_place(|| {
        wait_agent(core_ref, "lookup-a", "busy", |a| a.in_flight == 1);
    });
    let any = requester
        .request_task_any(task("lookup", "0", Duration::from_secs(10)))
        .await
        .expect("some lookup agent answers");
    assert_eq!(any, "lookup-b", "the least loaded");
    assert_eq!(busy.await.expect("joined").expect("answered"), "lookup-a");

    // A type nobody processes, and a handler that refuses its type.
    match requester
        .request_task_any(task("make-coffee", "", Duration::from_secs(5)))
        .await
    {
        Err(MacError::NoCapableAgent { task_type, known }) => {
            assert_eq!(task_type, "make-coffee");
            assert!(known.contains(&"lookup-a".to_string()), "{known:?}");
        }
        other => panic!("{other:?}"),
    }
    match requester
        .request_task("lookup-a", task("refuse", "", Duration::from_secs(5)))
        .await
    {
        Err(MacError::UnsupportedTask {
            agent,
            task_type,
            processes,
        }) => {
            assert_eq!(agent, "lookup-a");
            assert_eq!(task_type, "refuse");
            assert_eq!(
                processes,
                capabilities(&["lookup", "refuse", "boom"]).can_process
            );
        }
        other => panic!("{other:?}"),
    }
    // A handler that panics is a failed task, at once.
    match requester
        .request_task("lookup-b", task("boom", "", Duration::from_secs(30)))
        .await
    {
        Err(MacError::HandlerFailed { agent, error }) => {
            assert_eq!(agent, "lookup-b");
            assert_eq!(error, "the task handler panicked: boom");
        }
        other => panic!("{other:?}"),
    }
    // Timeouts are the core's: a task longer than its timeout ends at it.
    let t0 = Instant::now();
    match requester
        .request_task(
            "lookup-a",
            task("lookup", "5000", Duration::from_millis(300)),
        )
        .await
    {
        Err(MacError::TimedOut { after }) => assert_eq!(after, Duration::from_millis(300)),
        other => panic!("{other:?}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
}

/// The database agent is killed while it works on a task: the requester is told at once, not
/// at the task's timeout, and the agent is gone from the list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_killed_mid_task_fails_its_task_at_once() {
    let core = Core::start(FLEET);
    let mut database = start_agent(&core, "database_agent");
    let core_ref = &core;
    tokio::task::block_in_place(|| {
        wait_agent(core_ref, "database-agent", "ready", |a| {
            a.state == AgentState::Ready
        })
    });
    let requester = Arc::new(MacClient::with_socket("requester", core.socket.clone()));
    requester.connect().await.expect("connect");
    let asked = {
        let requester = requester.clone();
        tokio::spawn(async move {
            requester
                .request_task(
                    "database-agent",
                    task("slow-query", "60000", Duration::from_secs(60)),
                )
                .await
        })
    };
    tokio::task::block_in_place(|| {
        wait_agent(core_ref, "database-agent", "working", |a| a.in_flight == 1)
    });
    let t0 = Instant::now();
    database.0.kill().expect("kill the agent");
    let _ = database.0.wait();
    let answer = tokio::time::timeout(Duration::from_secs(10), asked)
        .await
        .expect("answered long before the task's timeout")
        .expect("joined");
    match answer {
        Err(MacError::AgentDisconnected { agent }) => assert_eq!(agent, "database-agent"),
        other => panic!("{other:?}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    tokio::task::block_in_place(|| {
        wait_for("the agent gone", Duration::from_secs(10), || {
            agents(core_ref)
                .iter()
                .all(|a| a.name != "database-agent")
                .then_some(())
        })
    });
}

/// §6.2: a coordinate-healing task to the core's supervisor-agent becomes an issue the
/// supervisor records and handles, naming the affected agents; the result is the supervisor's
/// answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinate_healing_goes_to_the_supervisor_through_the_supervisor_agent() {
    let core = Core::start(FLEET);
    let mac = MacClient::with_socket("coordinator", core.socket.clone());
    mac.connect().await.expect("connect");
    let issue = Issue::new("db", "connection-pool-exhausted", Severity::Error);
    let task = MacTask {
        task_type: "coordinate-healing".to_string(),
        payload: serde_json::to_string(&HealingCoordination {
            issue: issue.clone(),
            affected_agents: vec!["analysis-agent".into(), "database-agent".into()],
            priority: map_severity_to_priority(issue.severity),
        })
        .expect("serialises"),
        priority: TaskPriority::High,
        timeout: Duration::from_secs(120),
    };
    let answer = mac
        .request_task("supervisor-agent", task)
        .await
        .expect("the supervisor answers");
    assert!(!answer.is_empty());
    let core_ref = &core;
    let recorded = tokio::task::block_in_place(|| {
        wait_for("the issue in the journal", Duration::from_secs(10), || {
            core_ref
                .issues(Some("db"))
                .into_iter()
                .find(|i| i.id == issue.id)
        })
    });
    assert_eq!(
        recorded
            .context
            .get("affected_components")
            .map(String::as_str),
        Some("analysis-agent,database-agent")
    );
    assert!(
        recorded
            .context
            .get("coordinated_by")
            .is_some_and(|c| c.contains("supervisor-agent (high priority)")),
        "{recorded:?}"
    );

    // An issue about no component: the supervisor's refusal is the handler's error.
    let stray = Issue::new("nothing-here", "x", Severity::Error);
    let task = MacTask {
        task_type: "coordinate-healing".to_string(),
        payload: serde_json::to_string(&HealingCoordination {
            issue: stray,
            affected_agents: vec![],
            priority: TaskPriority::High,
        })
        .expect("serialises"),
        priority: TaskPriority::High,
        timeout: Duration::from_secs(10),
    };
    match mac.request_task("supervisor-agent", task).await {
        Err(MacError::HandlerFailed { agent, error }) => {
            assert_eq!(agent, "supervisor-agent");
            assert!(error.contains("nothing-here"), "{error}");
        }
        other => panic!("{other:?}"),
    }
}

/// An agent that is also a supervised component follows the component's state: while the
/// component is stopped the agent shows it and gets no task (it waits in its queue); once the
/// component runs again the task is delivered and answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_follows_its_components_state() {
    let core = Core::start(
        "[[component]]\nname = \"worker\"\ncommand = [\"sleep\", \"1000\"]\nstop_grace = \"1s\"\n",
    );
    let core_ref = &core;
    tokio::task::block_in_place(|| {
        core_ref.wait_component("worker", "running", Duration::from_secs(10), |c| {
            c.state == hms::model::RunState::Running
        })
    });
    let worker = MacClient::with_socket("worker", core.socket.clone());
    worker.connect().await.expect("connect");
    worker
        .register_agent("worker", capabilities(&["work"]))
        .await
        .expect("register");
    worker.set_task_handler(|task: MacTask| Ok::<_, TaskError>(format!("did {}", task.payload)));
    worker.start_task_handling().await.expect("handling");
    tokio::task::block_in_place(|| {
        wait_agent(core_ref, "worker", "ready", |a| {
            a.state == AgentState::Ready
        })
    });

    tokio::task::block_in_place(|| core_ref.cli_ok(&["stop", "worker"]));
    let down = tokio::task::block_in_place(|| {
        wait_agent(core_ref, "worker", "its component stopped", |a| {
            matches!(a.state, AgentState::ComponentDown { .. })
        })
    });
    assert_eq!(down.state.to_string(), "component stopped");

    let requester = Arc::new(MacClient::with_socket("requester", core.socket.clone()));
    requester.connect().await.expect("connect");
    let asked = {
        let requester = requester.clone();
        tokio::spawn(async move {
            requester
                .request_task("worker", task("work", "it", Duration::from_secs(30)))
                .await
        })
    };
    tokio::task::block_in_place(|| {
        wait_agent(core_ref, "worker", "the task queued", |a| {
            a.queued == 1 && a.in_flight == 0
        })
    });
    tokio::task::block_in_place(|| core_ref.cli_ok(&["start", "worker"]));
    let answer = tokio::time::timeout(Duration::from_secs(20), asked)
        .await
        .expect("answered once the component runs")
        .expect("joined")
        .expect("done");
    assert_eq!(answer, "did it");
}

/// A core that is killed and started again: the agent's client connects again by itself,
/// registers its agent again with the same capabilities, and answers tasks on the new core.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_reconnects_and_registers_again_when_the_core_comes_back() {
    let mut core = Core::start(FLEET);
    let agent = MacClient::with_socket("lookup", core.socket.clone());
    agent.connect().await.expect("connect");
    agent
        .register_agent("lookup", capabilities(&["lookup"]))
        .await
        .expect("register");
    agent.set_task_handler(|task: MacTask| Ok::<_, TaskError>(format!("found {}", task.payload)));
    agent.start_task_handling().await.expect("handling");
    let core_ref = &core;
    tokio::task::block_in_place(|| {
        wait_agent(core_ref, "lookup", "ready", |a| {
            a.state == AgentState::Ready
        })
    });

    let old = core.pid();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(old as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the core");
    tokio::task::block_in_place(|| core.wait_exit(Duration::from_secs(10)));
    tokio::task::block_in_place(|| core.spawn());
    assert_ne!(core.pid(), old, "a new core");

    let core_ref = &core;
    let again = tokio::task::block_in_place(|| {
        wait_agent(
            core_ref,
            "lookup",
            "registered again on the new core",
            |a| a.state == AgentState::Ready,
        )
    });
    assert_eq!(again.capabilities.can_process, vec!["lookup".to_string()]);
    let requester = MacClient::with_socket("requester", core.socket.clone());
    requester.connect().await.expect("connect");
    let answer = requester
        .request_task("lookup", task("lookup", "it", Duration::from_secs(10)))
        .await
        .expect("the agent answers on the new core");
    assert_eq!(answer, "found it");

    // `disconnect` ends it: the agent is gone from the core.
    agent.disconnect().await;
    tokio::task::block_in_place(|| {
        wait_for("the agent gone", Duration::from_secs(10), || {
            (!agents(core_ref).iter().any(|a| a.name == "lookup")).then_some(())
        })
    });
}
