//! Coordinated recovery and linked-component benchmarks (issue 10). Run: `cargo bench --bench
//! plans`. Each figure is printed beside its goal. HMS_BENCH_IDLE_SECS sets the CPU window
//! (default 15 s, at least 10 s).
//!
//! - command round trip core → linked component → result: `Request::Command(ClearCache)` from a
//!   client to a linked component (a `SupervisorClient` in this process) until its answer comes
//!   back through the core, median and p99 of 2,000;
//! - 200 linked components reporting health every second (their heartbeat) and metrics every 5 s:
//!   the core's CPU over the window (all threads, /proc/PID/task/*/schedstat);
//! - a plan's own time: for 20 crashes of `db` at Full level (`api` depends on it), the plan's
//!   duration less the sum of its steps' durations (the time between steps, which is all the
//!   plan adds to the waits and actions it contains).

mod common;

use std::time::{Duration, Instant};

use common::*;
use hms::SupervisorClient;
use hms::client::Client;
use hms::model::{
    ComponentCapabilities, HealingLevel, HealthMetrics, HealthStatus, PlanState, SupervisorCommand,
};

fn socket(core: &Core) -> std::path::PathBuf {
    std::path::PathBuf::from(sock(core.dir.path()))
}

fn capabilities() -> ComponentCapabilities {
    ComponentCapabilities {
        can_restart: true,
        can_scale: false,
        can_failover: false,
        supported_recovery_actions: ComponentCapabilities::actions(["clear_cache"]),
        healing_level: HealingLevel::Advanced,
    }
}

async fn command_round_trip() {
    let core = Core::start("[[component]]\nname = \"anchor\"\ncommand = [\"sleep\", \"100000\"]\n");
    let linked = SupervisorClient::with_socket("svc", socket(&core));
    linked.connect().await.unwrap();
    linked
        .register_component("svc", capabilities())
        .await
        .unwrap();
    linked.set_command_handler(|_| Ok::<(), String>(()));
    linked.start_command_handling().await.unwrap();
    let mut client = Client::connect(&socket(&core), "bench").await.unwrap();
    for _ in 0..100 {
        client
            .command("svc", SupervisorCommand::ClearCache)
            .await
            .unwrap();
    }
    let mut samples: Vec<f64> = Vec::with_capacity(2000);
    for _ in 0..2000 {
        let t = Instant::now();
        let answer = client
            .command("svc", SupervisorCommand::ClearCache)
            .await
            .unwrap();
        samples.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(answer.ends_with("done"), "{answer}");
    }
    samples.sort_by(f64::total_cmp);
    println!(
        "command round trip core → linked component → result: median {:.3} ms, p99 {:.3} ms (goal: median ≤ 1 ms)",
        percentile(&samples, 0.5),
        percentile(&samples, 0.99)
    );
    linked.disconnect().await;
}

async fn many_linked(count: usize, window: u64) {
    let core = Core::start("[[component]]\nname = \"anchor\"\ncommand = [\"sleep\", \"100000\"]\n");
    let mut clients = Vec::with_capacity(count);
    for n in 0..count {
        let name = format!("svc-{n}");
        let c = SupervisorClient::with_socket(&name, socket(&core))
            .with_heartbeat(Duration::from_secs(1))
            .with_metrics_interval(Duration::from_secs(5));
        c.connect().await.unwrap();
        c.register_component(&name, capabilities()).await.unwrap();
        c.report_health(HealthStatus::Healthy).await.unwrap();
        clients.push(std::sync::Arc::new(c));
    }
    // Metrics every 5 s each, spread over the interval (the heartbeat reports health each second).
    let mut tasks = Vec::new();
    for (n, c) in clients.iter().enumerate() {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis((n as u64 * 5000) / count as u64)).await;
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                let metrics = HealthMetrics {
                    error_rate: 0.5,
                    response_time: 12.0,
                    throughput: 100.0,
                    ..HealthMetrics::default()
                };
                let _ = c.report_metrics(metrics).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pid = core.pid();
    let t0 = cpu_ns(pid);
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(window)).await;
    let percent =
        cpu_ns(pid).saturating_sub(t0) as f64 / 1e9 / start.elapsed().as_secs_f64() * 100.0;
    let status = core.cli(&["status", "--json"]);
    let statuses: Vec<hms::model::ComponentStatus> =
        serde_json::from_slice(&status.stdout).unwrap();
    let running = statuses
        .iter()
        .filter(|s| s.name.starts_with("svc-") && s.health.is_healthy())
        .count();
    println!(
        "{count} linked components, health every 1 s and metrics every 5 s: core CPU {percent:.2} % of one core over {window} s, {running} of {count} healthy (goal: ≤ 5 %)"
    );
    for t in tasks {
        t.abort();
    }
    for c in clients {
        c.disconnect().await;
    }
}

async fn plan_overhead(crashes: usize) {
    let core = Core::start(
        r#"
[defaults]
healing_level = "full"
min_uptime = "20ms"
intensity = { max_restarts = 100000, window = "1s" }

[[component]]
name = "db"
command = ["sleep", "100000"]

[[component]]
name = "api"
command = ["sleep", "100000"]
depends_on = ["db"]
"#,
    );
    let mut client = Client::connect(&socket(&core), "bench").await.unwrap();
    let mut own: Vec<f64> = Vec::new();
    let mut total: Vec<f64> = Vec::new();
    for n in 1..=crashes as u64 {
        let db = loop {
            let s = client.status(Some("db")).await.unwrap();
            let api = client.status(Some("api")).await.unwrap();
            if let (Some(pid), true) =
                (s[0].pid, api[0].health.is_healthy() && api[0].pid.is_some())
            {
                break pid;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        tokio::time::sleep(Duration::from_millis(40)).await; // a stable run: restarted at once
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(db as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let plan = loop {
            let plans = client.plans().await.unwrap();
            if let Some(p) = plans
                .into_iter()
                .find(|p| p.id == n && p.state != PlanState::Running)
            {
                break p;
            }
            assert!(Instant::now() < deadline, "plan {n} did not end");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        assert_eq!(plan.state, PlanState::Done, "{plan:?}");
        let steps: Duration = plan.steps.iter().filter_map(|s| s.duration).sum();
        own.push(plan.duration.saturating_sub(steps).as_secs_f64() * 1e3);
        total.push(plan.duration.as_secs_f64() * 1e3);
    }
    own.sort_by(f64::total_cmp);
    total.sort_by(f64::total_cmp);
    println!(
        "a plan's own time beyond its steps (stop api, restart db, wait db, start api, wait api): median {:.3} ms, max {:.3} ms over {crashes} plans; plan duration median {:.1} ms (goal: ≤ 5 ms of its own)",
        percentile(&own, 0.5),
        own.last().copied().unwrap_or_default(),
        percentile(&total, 0.5)
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let window: u64 = std::env::var("HMS_BENCH_IDLE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15)
        .max(10);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        command_round_trip().await;
        plan_overhead(20).await;
        many_linked(200, window).await;
    });
}
