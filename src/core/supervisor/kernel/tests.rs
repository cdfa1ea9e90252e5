//! Scenario tests of the kernel: each tells one story of the fleet with paused time and no process.
//!
//! [`World`] plays the shell: it carries out the kernel's effects in memory (a spawn gets the next
//! fake pid, a stop signal makes the process exit unless the story says it is hung, timers wait in
//! a list until time is advanced past them) and keeps every effect for the story to read.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use nix::sys::signal::Signal;
use tokio::time::Instant;

use super::*;
use crate::healing::probe::{ProbeOutcome, ProbeTicket};
use crate::model::BreakerState;

struct World {
    kernel: Kernel,
    /// Armed timers, in the order they were armed.
    timers: Vec<(Instant, Timer)>,
    /// The running fake processes: component → (generation, pid).
    running: HashMap<String, (u64, u32)>,
    next_pid: u32,
    /// Processes that ignore their stop signal (hung).
    hung: HashSet<String>,
    /// Every effect so far, in order.
    effects: Vec<Effect>,
    answers: HashMap<u64, Answer>,
    next_reply: u64,
    /// Probes asked for: (component, kind, ticket, epoch).
    probes: Vec<(String, ProbeKind, ProbeTicket, u64)>,
}

fn clock() -> Clock {
    Clock {
        now: Instant::now(),
        wall: SystemTime::now(),
    }
}

impl World {
    fn new(toml: &str) -> World {
        let fleet = FleetConfig::parse(toml, "test.toml", None).expect("a valid test fleet");
        let mut world = World {
            kernel: Kernel::new(&fleet, clock()),
            timers: Vec::new(),
            running: HashMap::new(),
            next_pid: 100,
            hung: HashSet::new(),
            effects: Vec::new(),
            answers: HashMap::new(),
            next_reply: 0,
            probes: Vec::new(),
        };
        world.input(Input::Boot);
        world
    }

    /// Feeds an input and carries out its effects, like the shell.
    fn input(&mut self, input: Input) {
        let mut queue = std::collections::VecDeque::from([input]);
        while let Some(input) = queue.pop_front() {
            for effect in self.kernel.handle(clock(), input) {
                match &effect {
                    Effect::Spawn { spec, generation } => {
                        self.next_pid += 1;
                        self.running
                            .insert(spec.name.clone(), (*generation, self.next_pid));
                        queue.push_back(Input::Spawned {
                            name: spec.name.clone(),
                            generation: *generation,
                            result: Ok(self.next_pid),
                        });
                    }
                    Effect::Signal { pgid, signal, .. } => {
                        let target = self
                            .running
                            .iter()
                            .find(|(_, (_, pid))| pid == pgid)
                            .map(|(n, (g, _))| (n.clone(), *g));
                        if let Some((name, generation)) = target {
                            let dies = *signal == Signal::SIGKILL || !self.hung.contains(&name);
                            if dies {
                                self.running.remove(&name);
                                queue.push_back(Input::Exited {
                                    name,
                                    generation,
                                    exit: ExitCode {
                                        code: None,
                                        signal: Some(*signal as i32),
                                    },
                                });
                            }
                        }
                    }
                    Effect::Arm { at, timer } => self.timers.push((*at, timer.clone())),
                    Effect::Reply { to, answer } => {
                        self.answers.insert(to.0, answer.clone());
                    }
                    Effect::ReplyWhenGone { to, answer, .. } => {
                        for t in to {
                            self.answers.insert(t.0, answer.clone());
                        }
                    }
                    Effect::RunProbe {
                        name,
                        epoch,
                        kind,
                        ticket,
                        ..
                    } => self.probes.push((name.clone(), *kind, *ticket, *epoch)),
                    Effect::Then(_) | Effect::AskAdvice { .. } => {}
                    Effect::Publish(_)
                    | Effect::Log { .. }
                    | Effect::OpenLog { .. }
                    | Effect::RunAction { .. }
                    | Effect::LoadConfig { .. } => {}
                }
                if let Effect::Then(input) = effect {
                    queue.push_back(input);
                } else {
                    self.effects.push(effect);
                }
            }
        }
    }

    fn request(&mut self, request: Request) -> u64 {
        self.next_reply += 1;
        let id = self.next_reply;
        self.input(Input::Request {
            request,
            reply: ReplyTo(id),
            conn: NO_CONN,
        });
        id
    }

    fn answer(&self, id: u64) -> Option<&Answer> {
        self.answers.get(&id)
    }

    /// The component's process exits by itself with `code`.
    fn exits(&mut self, name: &str, code: i32) {
        let (generation, _) = self.running.remove(name).expect("it is running");
        self.input(Input::Exited {
            name: name.to_string(),
            generation,
            exit: ExitCode {
                code: Some(code),
                signal: None,
            },
        });
    }

    /// Lets time pass, firing every timer that falls due, in time order.
    async fn advance(&mut self, d: Duration) {
        let end = Instant::now() + d;
        loop {
            let next = self
                .timers
                .iter()
                .enumerate()
                .filter(|(_, (at, _))| *at <= end)
                .min_by_key(|(_, (at, _))| *at)
                .map(|(i, _)| i);
            let Some(i) = next else { break };
            let (at, timer) = self.timers.remove(i);
            let now = Instant::now();
            if at > now {
                tokio::time::advance(at - now).await;
            }
            self.input(Input::TimerFired(timer));
        }
        let now = Instant::now();
        if end > now {
            tokio::time::advance(end - now).await;
        }
    }

    fn status(&mut self, name: &str) -> ComponentStatus {
        let id = self.request(Request::Status {
            component: Some(name.to_string()),
        });
        match self.answer(id) {
            Some(Ok(Response::Status { components })) => components[0].clone(),
            other => panic!("no status for {name}: {other:?}"),
        }
    }

    fn state(&mut self, name: &str) -> RunState {
        self.status(name).state
    }

    fn pid(&self, name: &str) -> Option<u32> {
        self.running.get(name).map(|(_, pid)| *pid)
    }

    /// How many times the component was spawned so far.
    fn spawns(&self, name: &str) -> usize {
        self.effects
            .iter()
            .filter(|e| matches!(e, Effect::Spawn { spec, .. } if spec.name == name))
            .count()
    }

    /// The signals sent so far, in order.
    fn signals(&self) -> Vec<(u32, Signal)> {
        self.effects
            .iter()
            .filter_map(|e| match e {
                Effect::Signal { pgid, signal, .. } => Some((*pgid, *signal)),
                _ => None,
            })
            .collect()
    }

    /// `max_restarts = 3` in [`ONE`]: three short runs restarted after their backoff, and the
    /// fourth failure opens the breaker.
    async fn crash_until_the_breaker_opens(&mut self, name: &str) {
        for _ in 0..3 {
            self.exits(name, 1);
            let delay = self.pending_restart_delay(name).unwrap();
            self.advance(delay).await;
        }
        self.exits(name, 1);
    }

    /// The delay of the last restart timer armed for the component, measured from now.
    fn pending_restart_delay(&self, name: &str) -> Option<Duration> {
        self.timers
            .iter()
            .rev()
            .find(|(_, t)| {
                matches!(t, Timer::Component { name: n, kind: TimerKind::RestartDue, .. } if n == name)
            })
            .map(|(at, _)| at.saturating_duration_since(Instant::now()))
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

const ONE: &str = r#"
[defaults]
min_uptime = "1s"
backoff = { initial = "100ms", max = "30s", factor = 2.0 }
intensity = { max_restarts = 3, window = "10s" }
breaker = { cooldown = "5s" }

[[component]]
name = "api"
command = ["api"]
"#;

#[tokio::test(start_paused = true)]
async fn a_crash_after_a_stable_run_restarts_at_once() {
    let mut w = World::new(ONE);
    assert_eq!(w.state("api"), RunState::Running);
    let first = w.pid("api").unwrap();
    w.advance(Duration::from_secs(2)).await;
    w.exits("api", 1);
    // No timer in between: the new process is spawned in the same step.
    assert_eq!(w.state("api"), RunState::Running);
    assert_ne!(w.pid("api"), Some(first));
    assert_eq!(w.status("api").restarts, 1);
    assert_eq!(w.spawns("api"), 2);
}

#[tokio::test(start_paused = true)]
async fn short_runs_back_off_longer_each_time() {
    let mut w = World::new(ONE);
    let mut delays = Vec::new();
    for _ in 0..3 {
        w.exits("api", 1);
        assert_eq!(w.state("api"), RunState::Backoff);
        let delay = w.pending_restart_delay("api").expect("a restart is armed");
        delays.push(delay);
        w.advance(delay).await;
        assert_eq!(
            w.state("api"),
            RunState::Running,
            "restarted after {delay:?}"
        );
    }
    // 100 ms, 200 ms, 400 ms, each ±10 % jitter.
    for (delay, base) in delays.iter().zip([100u64, 200, 400]) {
        assert!(
            *delay >= ms(base * 9 / 10) && *delay <= ms(base * 11 / 10),
            "{delays:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn too_many_restarts_open_the_breaker_whose_trial_closes_it_when_the_run_is_stable() {
    let mut w = World::new(ONE);
    w.crash_until_the_breaker_opens("api").await;
    let s = w.status("api");
    assert_eq!(s.state, RunState::BreakerOpen);
    assert_eq!(s.healing.breaker, BreakerState::Open);
    assert_eq!(s.restarts, 3);
    assert_eq!(s.healing.last_issue.unwrap().issue_type, "breaker_open");
    // Nothing happens during the cooldown …
    w.advance(Duration::from_millis(4900)).await;
    assert_eq!(w.state("api"), RunState::BreakerOpen);
    // … then one half-open trial.
    w.advance(ms(200)).await;
    let s = w.status("api");
    assert_eq!(s.state, RunState::Running);
    assert_eq!(s.healing.breaker, BreakerState::HalfOpen);
    // A stable run closes it.
    w.advance(Duration::from_secs(2)).await;
    assert_eq!(w.status("api").healing.breaker, BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_failed_trial_reopens_the_breaker_with_a_doubled_cooldown() {
    let mut w = World::new(ONE);
    w.crash_until_the_breaker_opens("api").await;
    assert_eq!(w.state("api"), RunState::BreakerOpen);
    w.advance(Duration::from_secs(5)).await;
    assert_eq!(w.state("api"), RunState::Running);
    w.exits("api", 1);
    assert_eq!(w.state("api"), RunState::BreakerOpen);
    // Not after 5 s this time, but after 10 s.
    w.advance(Duration::from_millis(9900)).await;
    assert_eq!(w.state("api"), RunState::BreakerOpen);
    w.advance(ms(200)).await;
    assert_eq!(w.state("api"), RunState::Running);
}

#[tokio::test(start_paused = true)]
async fn an_operator_restart_during_backoff_starts_at_once_and_clears_the_counters() {
    let mut w = World::new(ONE);
    w.exits("api", 1);
    w.advance(w.pending_restart_delay("api").unwrap()).await;
    w.exits("api", 1);
    assert_eq!(w.state("api"), RunState::Backoff);
    assert!(w.status("api").healing.backoff.is_some());
    let id = w.request(Request::Restart {
        component: "api".into(),
    });
    assert!(
        matches!(w.answer(id), Some(Ok(Response::Done { message })) if message.contains("started")),
        "{:?}",
        w.answer(id)
    );
    let s = w.status("api");
    assert_eq!(s.state, RunState::Running);
    assert_eq!(s.healing.backoff, None);
    // The backoff's timer is stale now: when it fires nothing is spawned again.
    let spawns = w.spawns("api");
    w.advance(Duration::from_secs(1)).await;
    assert_eq!(w.spawns("api"), spawns);
}

#[tokio::test(start_paused = true)]
async fn a_stop_during_backoff_stays_stopped_when_the_backoff_ends() {
    let mut w = World::new(ONE);
    w.exits("api", 1);
    assert_eq!(w.state("api"), RunState::Backoff);
    let id = w.request(Request::Stop {
        component: "api".into(),
    });
    assert!(matches!(w.answer(id), Some(Ok(_))));
    assert_eq!(w.state("api"), RunState::Stopped);
    let spawns = w.spawns("api");
    w.advance(Duration::from_secs(5)).await;
    assert_eq!(w.state("api"), RunState::Stopped);
    assert_eq!(w.spawns("api"), spawns);
}

#[tokio::test(start_paused = true)]
async fn a_stop_signals_the_group_and_kills_it_after_the_grace_period() {
    let mut w = World::new(
        r#"
[[component]]
name = "api"
command = ["api"]
stop_grace = "3s"
"#,
    );
    let pid = w.pid("api").unwrap();
    w.hung.insert("api".into());
    let id = w.request(Request::Stop {
        component: "api".into(),
    });
    assert_eq!(w.signals(), [(pid, Signal::SIGTERM)]);
    assert_eq!(w.state("api"), RunState::Stopping);
    // The grace period is waited in full before the SIGKILL.
    w.advance(ms(2900)).await;
    assert_eq!(w.signals(), [(pid, Signal::SIGTERM)]);
    assert!(w.answer(id).is_none());
    w.advance(ms(200)).await;
    assert_eq!(w.signals()[1], (pid, Signal::SIGKILL));
    assert_eq!(w.state("api"), RunState::Stopped);
    assert!(matches!(w.answer(id), Some(Ok(_))));
}

#[tokio::test(start_paused = true)]
async fn a_reload_that_changes_a_component_during_its_backoff_starts_it_with_the_new_settings() {
    let mut w = World::new(ONE);
    w.exits("api", 1);
    assert_eq!(w.state("api"), RunState::Backoff);
    let changed = ONE.replace(r#"command = ["api"]"#, r#"command = ["api", "--v2"]"#);
    let fleet = FleetConfig::parse(&changed, "test.toml", None).unwrap();
    let id = w.request(Request::Reload);
    assert!(w.answer(id).is_none(), "the config is read by the shell");
    w.input(Input::ConfigLoaded {
        result: Ok(fleet),
        reply: ReplyTo(id),
    });
    assert!(
        matches!(w.answer(id), Some(Ok(Response::Done { message })) if message.contains("changed: api")),
        "{:?}",
        w.answer(id)
    );
    assert_eq!(w.state("api"), RunState::Running);
    let last = w
        .effects
        .iter()
        .rev()
        .find_map(|e| match e {
            Effect::Spawn { spec, .. } => Some(spec.command.to_string()),
            _ => None,
        })
        .unwrap();
    assert!(last.contains("--v2"), "{last}");
    // The old backoff timer is stale.
    let spawns = w.spawns("api");
    w.advance(Duration::from_secs(1)).await;
    assert_eq!(w.spawns("api"), spawns);
}

#[tokio::test(start_paused = true)]
async fn an_invalid_reload_changes_nothing() {
    let mut w = World::new(ONE);
    let pid = w.pid("api");
    let id = w.request(Request::Reload);
    w.input(Input::ConfigLoaded {
        result: Err("test.toml:3:1: bad".into()),
        reply: ReplyTo(id),
    });
    assert!(
        matches!(w.answer(id), Some(Err((ErrorCode::Rejected, m))) if m.contains("the running one stays"))
    );
    assert_eq!(w.pid("api"), pid);
    assert_eq!(w.state("api"), RunState::Running);
}

const GATED: &str = r#"
[[component]]
name = "db"
command = ["db"]
[component.readiness]
exec = ["db-ready"]
period = "1s"
[[component]]
name = "api"
command = ["api"]
depends_on = ["db"]
"#;

#[tokio::test(start_paused = true)]
async fn readiness_gates_the_start_of_dependents() {
    let mut w = World::new(GATED);
    assert_eq!(w.state("db"), RunState::Running);
    assert_eq!(
        w.status("db").health,
        HealthStatus::Degraded("not ready".into())
    );
    assert_eq!(w.state("api"), RunState::Starting);
    // A failing readiness probe keeps api waiting.
    w.advance(Duration::from_secs(1)).await;
    let (name, kind, ticket, epoch) = w.probes.pop().expect("a readiness probe ran");
    assert_eq!((name.as_str(), kind), ("db", ProbeKind::Readiness));
    w.input(Input::ProbeResult {
        name: name.clone(),
        epoch,
        kind,
        ticket,
        outcome: ProbeOutcome::Failed("not yet".into()),
    });
    assert_eq!(w.state("api"), RunState::Starting);
    w.advance(Duration::from_secs(1)).await;
    let (name, kind, ticket, epoch) = w.probes.pop().expect("the next readiness probe ran");
    w.input(Input::ProbeResult {
        name,
        epoch,
        kind,
        ticket,
        outcome: ProbeOutcome::Success,
    });
    assert_eq!(w.status("db").health, HealthStatus::Healthy);
    assert_eq!(w.state("api"), RunState::Running);
}

#[tokio::test(start_paused = true)]
async fn a_hung_process_is_killed_hard_when_its_liveness_probe_fails() {
    let mut w = World::new(
        r#"
[[component]]
name = "api"
command = ["api"]
[component.liveness]
exec = ["api-alive"]
period = "1s"
failure_threshold = 2
"#,
    );
    let pid = w.pid("api").unwrap();
    // SIGSTOPped: it would ignore a SIGTERM.
    w.hung.insert("api".into());
    for _ in 0..2 {
        w.advance(Duration::from_secs(1)).await;
        let (name, kind, ticket, epoch) = w.probes.pop().expect("a liveness probe ran");
        w.input(Input::ProbeResult {
            name,
            epoch,
            kind,
            ticket,
            outcome: ProbeOutcome::TimedOut(Duration::from_secs(1)),
        });
    }
    assert_eq!(
        w.signals(),
        [(pid, Signal::SIGKILL), (pid, Signal::SIGKILL)],
        "killed hard, then its group swept"
    );
    assert_eq!(w.state("api"), RunState::Running);
    assert_ne!(w.pid("api"), Some(pid));
    assert_eq!(
        w.status("api").healing.last_issue.unwrap().issue_type,
        "liveness_failed"
    );
}

#[tokio::test(start_paused = true)]
async fn down_stops_dependents_before_what_they_depend_on() {
    let mut w = World::new(
        r#"
[[component]]
name = "db"
command = ["db"]
[[component]]
name = "api"
command = ["api"]
depends_on = ["db"]
[[component]]
name = "web"
command = ["web"]
depends_on = ["api"]
"#,
    );
    let pids: Vec<u32> = ["web", "api", "db"]
        .iter()
        .map(|n| w.pid(n).unwrap())
        .collect();
    let id = w.request(Request::Down);
    let terms: Vec<u32> = w
        .signals()
        .into_iter()
        .filter(|(_, s)| *s == Signal::SIGTERM)
        .map(|(p, _)| p)
        .collect();
    assert_eq!(terms, pids, "web, then api, then db");
    assert!(w.kernel.is_done());
    assert!(matches!(w.answer(id), Some(Ok(_))));
    // Nothing is started again while the core exits.
    let refused = w.request(Request::Start {
        component: "db".into(),
    });
    assert!(matches!(
        w.answer(refused),
        Some(Err((ErrorCode::ShuttingDown, _)))
    ));
}

#[tokio::test(start_paused = true)]
async fn a_program_that_cannot_start_fails_and_backs_off() {
    let fleet = FleetConfig::parse(ONE, "test.toml", None).unwrap();
    let mut kernel = Kernel::new(&fleet, clock());
    let effects = kernel.handle(clock(), Input::Boot);
    let generation = effects
        .iter()
        .find_map(|e| match e {
            Effect::Spawn { generation, .. } => Some(*generation),
            _ => None,
        })
        .unwrap();
    let effects = kernel.handle(
        clock(),
        Input::Spawned {
            name: "api".into(),
            generation,
            result: Err("No such file or directory".into()),
        },
    );
    assert!(effects.iter().any(|e| matches!(e,
        Effect::Publish(Event::Issue { issue }) if issue.issue_type == "spawn_failed")));
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::Arm {
            timer: Timer::Component {
                kind: TimerKind::RestartDue,
                ..
            },
            ..
        }
    )));
}

/// The commands published to linked component `name` so far, in order.
fn commands_to(w: &World, name: &str) -> Vec<SupervisorCommand> {
    w.effects
        .iter()
        .filter_map(|e| match e {
            Effect::Publish(Event::Command { component, command }) if component == name => {
                Some(command.clone())
            }
            _ => None,
        })
        .collect()
}

fn register_linked(w: &mut World, name: &str) {
    let id = w.request(Request::Register {
        component: name.to_string(),
        capabilities: crate::model::ComponentCapabilities {
            can_restart: true,
            can_scale: false,
            can_failover: false,
            supported_recovery_actions: vec!["clear_cache".into(), "restart".into()],
            healing_level: crate::model::HealingLevel::Advanced,
        },
        heartbeat_ms: None,
    });
    assert!(matches!(w.answer(id), Some(Ok(_))), "{:?}", w.answer(id));
}

#[tokio::test(start_paused = true)]
async fn the_operators_stop_shutdown_and_down_deliver_the_guides_shutdown_to_a_linked_component() {
    let mut w = World::new(ONE);
    register_linked(&mut w, "svc");
    let id = w.request(Request::Stop {
        component: "svc".into(),
    });
    assert!(matches!(w.answer(id), Some(Ok(_))));
    assert_eq!(commands_to(&w, "svc"), [SupervisorCommand::Shutdown]);

    register_linked(&mut w, "svc");
    w.request(Request::Command {
        component: "svc".into(),
        command: SupervisorCommand::Shutdown,
    });
    assert_eq!(commands_to(&w, "svc").len(), 2);

    register_linked(&mut w, "svc");
    w.request(Request::Down);
    assert_eq!(
        commands_to(&w, "svc"),
        [const { SupervisorCommand::Shutdown }; 3],
        "never Stop, which the guide's handler does not know"
    );
}

#[tokio::test(start_paused = true)]
async fn an_issue_healed_locally_is_recorded_and_not_healed_again() {
    let mut w = World::new(ONE);
    register_linked(&mut w, "svc");
    let healed =
        Issue::new("svc", "cache_corrupt", Severity::Error).healed_by(&HealingAction::Recover {
            name: "clear_cache".into(),
        });
    let id = w.request(Request::ReportIssue {
        issue: healed.clone(),
    });
    match w.answer(id) {
        Some(Ok(Response::Done { message })) => {
            assert!(message.contains("healed locally"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert!(commands_to(&w, "svc").is_empty(), "no second healing");
    assert!(w.effects.iter().any(|e| matches!(e,
        Effect::Publish(Event::Issue { issue }) if issue.id == healed.id)));

    // The same issue not healed locally is healed by the core: its first recovery action.
    w.request(Request::ReportIssue {
        issue: Issue::new("svc", "cache_corrupt", Severity::Error),
    });
    assert_eq!(commands_to(&w, "svc"), [SupervisorCommand::ClearCache]);
}

#[tokio::test(start_paused = true)]
async fn an_episode_tries_first_what_the_knowledge_registry_advised_and_says_why() {
    let mut w = World::new(
        r#"
[[component]]
name = "db"
command = ["db"]
healing_level = "advanced"
recovery_actions = ["restart", "clear_cache"]
[component.actions.clear_cache]
command = "db-clear-cache"
"#,
    );
    let pid = w.pid("db");
    // The registry advised clear_cache for this issue type; it is asked again for next time.
    w.input(Input::Advice {
        component: "db".into(),
        issue_type: "manual_heal".into(),
        advice: Some((
            "clear_cache".into(),
            "knowledge: clear_cache cured manual_heal 3 of the last 3 times".into(),
        )),
    });
    w.request(Request::Heal {
        component: "db".into(),
    });
    let first_action = w.effects.iter().find_map(|e| match e {
        Effect::RunAction { action, .. } => Some(action.clone()),
        Effect::Signal { .. } => Some("restart".into()),
        _ => None,
    });
    assert_eq!(first_action.as_deref(), Some("clear_cache"));
    assert_eq!(w.pid("db"), pid, "no restart first");
    assert!(w.effects.iter().any(|e| matches!(e,
        Effect::AskAdvice { issue_type, actions, .. }
            if issue_type == "manual_heal" && actions == &["restart", "clear_cache"])));
    let strategy = w.status("db").healing.strategy.unwrap();
    assert_eq!(
        strategy,
        "knowledge: clear_cache cured manual_heal 3 of the last 3 times"
    );
}
