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
                    | Effect::LoadConfig { .. }
                    | Effect::Retention { .. }
                    | Effect::Notify { .. } => {}
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

#[tokio::test(start_paused = true)]
async fn a_reload_hands_the_new_retention_to_the_registry_and_keeps_its_file() {
    let mut w = World::new(ONE);
    let pid = w.pid("api");
    let reload = |w: &mut World, knowledge: &str| {
        let fleet = FleetConfig::parse(
            &format!("[knowledge]\n{knowledge}\n{ONE}"),
            "test.toml",
            None,
        )
        .unwrap();
        let id = w.request(Request::Reload);
        w.input(Input::ConfigLoaded {
            result: Ok(fleet),
            reply: ReplyTo(id),
        });
        match w.answer(id) {
            Some(Ok(Response::Done { message })) => message.clone(),
            other => panic!("{other:?}"),
        }
    };
    let retention = |w: &World| -> Vec<u64> {
        w.effects
            .iter()
            .filter_map(|e| match e {
                Effect::Retention { config } => Some(config.max_items_per_component),
                _ => None,
            })
            .collect()
    };
    let message = reload(&mut w, "max_items_per_component = 7");
    assert!(
        message.contains("knowledge retention: at most 7 items per component"),
        "{message}"
    );
    assert_eq!(retention(&w), [7]);
    assert_eq!(w.pid("api"), pid, "the fleet is not touched");
    // The same again: nothing to hand over.
    reload(&mut w, "max_items_per_component = 7");
    assert_eq!(retention(&w), [7]);
    // Another file: kept, with a warning; the retention in it still applies.
    let message = reload(
        &mut w,
        "max_items_per_component = 3\npath = \"/elsewhere/k.db\"",
    );
    assert!(
        message.contains("warning: [knowledge] path changed to /elsewhere/k.db"),
        "{message}"
    );
    assert!(message.contains("until the core is restarted"), "{message}");
    assert_eq!(retention(&w), [7, 3]);
    // Still the old file in force: the same new path warns again on the next reload.
    let message = reload(
        &mut w,
        "max_items_per_component = 3\npath = \"/elsewhere/k.db\"",
    );
    assert!(
        message.contains("warning: [knowledge] path changed"),
        "{message}"
    );
    assert_eq!(retention(&w), [7, 3]);
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
            Effect::Publish(Event::Command {
                component, command, ..
            }) if component == name => Some((**command).clone()),
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
        config_keys: None,
        thresholds: None,
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
    assert_eq!(commands_to(&w, "svc"), [SupervisorCommand::Shutdown]);
    // The stop is answered once the component has: done, or gone (it shut down).
    assert!(w.answer(id).is_none());
    w.input(Input::ConnectionClosed { conn: NO_CONN });
    assert!(
        matches!(w.answer(id), Some(Ok(Response::Done { message })) if message == "sent shutdown to svc: done"),
        "{:?}",
        w.answer(id)
    );

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

// ----- coordinated recovery (issue 10) -----

/// db with a readiness probe, api on db, both at Full level.
const FULL: &str = r#"
[defaults]
healing_level = "full"
healing_timeout = "5s"
notify_command = "notify"
min_uptime = "1s"

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

impl World {
    /// Lets db's next readiness probe run and answers it with `outcome`.
    async fn probe_db(&mut self, outcome: ProbeOutcome) {
        self.advance(Duration::from_secs(1)).await;
        let at = self
            .probes
            .iter()
            .rposition(|(n, k, ..)| n == "db" && *k == ProbeKind::Readiness)
            .expect("a readiness probe of db ran");
        let (name, kind, ticket, epoch) = self.probes.remove(at);
        self.input(Input::ProbeResult {
            name,
            epoch,
            kind,
            ticket,
            outcome,
        });
    }

    fn plans(&mut self) -> Vec<PlanStatus> {
        let id = self.request(Request::Plans);
        match self.answer(id) {
            Some(Ok(Response::Plans { plans })) => plans.clone(),
            other => panic!("no plans: {other:?}"),
        }
    }

    /// The names of the components spawned since effect `from`, in order.
    fn spawned_since(&self, from: usize) -> Vec<String> {
        self.effects[from..]
            .iter()
            .filter_map(|e| match e {
                Effect::Spawn { spec, .. } => Some(spec.name.clone()),
                _ => None,
            })
            .collect()
    }

    /// The notify commands run so far: (message, component, plan).
    fn notified(&self) -> Vec<(String, String, u64)> {
        self.effects
            .iter()
            .filter_map(|e| match e {
                Effect::Notify {
                    message,
                    component,
                    plan,
                    ..
                } => Some((message.clone(), component.clone(), *plan)),
                _ => None,
            })
            .collect()
    }
}

fn step_states(plan: &PlanStatus) -> Vec<(String, crate::model::StepState)> {
    plan.steps
        .iter()
        .map(|s| {
            let words = match &s.step {
                crate::model::RecoveryStep::ComponentAction { component, action } => {
                    format!("{} {component}", action.action_name())
                }
                crate::model::RecoveryStep::WaitForHealth { component, .. } => {
                    format!("wait {component}")
                }
                crate::model::RecoveryStep::NotifyOperator { .. } => "notify".into(),
            };
            (words, s.state)
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_db_crash_at_full_level_restarts_db_waits_for_it_then_restarts_api() {
    use crate::model::{PlanState, StepState};
    let mut w = World::new(FULL);
    w.probe_db(ProbeOutcome::Success).await;
    assert_eq!(w.state("api"), RunState::Running);
    let api_pid = w.pid("api").unwrap();
    w.advance(Duration::from_secs(2)).await;

    let from = w.effects.len();
    w.exits("db", 1);
    // db is restarted at once (a stable run), api is stopped, the plan waits for db.
    assert_eq!(w.spawned_since(from), ["db"]);
    assert!(w.signals().contains(&(api_pid, Signal::SIGTERM)));
    assert_eq!(w.state("api"), RunState::Stopped);
    let plan = w.plans().pop().expect("a plan runs");
    assert_eq!(plan.state, PlanState::Running);
    assert_eq!(plan.component, "db");
    assert_eq!(plan.affected, ["db", "api"]);
    assert_eq!(
        step_states(&plan),
        [
            ("stop api".to_string(), StepState::Done),
            ("restart db".into(), StepState::Done),
            ("wait db".into(), StepState::Running),
            ("start api".into(), StepState::Pending),
            ("wait api".into(), StepState::Pending),
        ]
    );

    // Not ready yet: api stays down.
    w.probe_db(ProbeOutcome::Failed("warming up".into())).await;
    assert_eq!(w.spawned_since(from), ["db"]);
    // db ready: only now is api started, and the plan is done once it is healthy.
    w.probe_db(ProbeOutcome::Success).await;
    assert_eq!(w.spawned_since(from), ["db", "api"]);
    assert_eq!(w.state("api"), RunState::Running);
    let plan = w.plans().pop().unwrap();
    assert_eq!(plan.state, PlanState::Done, "{plan:?}");
    assert!(plan.steps.iter().all(|s| s.state == StepState::Done));
    let wait_db = &plan.steps[2];
    assert_eq!(
        wait_db.duration,
        Some(Duration::from_secs(2)),
        "two probe periods"
    );
    assert!(w.notified().is_empty());
    // The plan was on the bus as it went.
    let events = w
        .effects
        .iter()
        .filter(|e| matches!(e, Effect::Publish(Event::Plan { .. })))
        .count();
    assert!(events >= 3, "{events} plan events");
}

#[tokio::test(start_paused = true)]
async fn a_wait_for_health_that_times_out_ends_the_plan_and_notifies_the_operator() {
    use crate::model::{PlanState, RecoveryStep, StepState};
    let mut w = World::new(FULL);
    w.probe_db(ProbeOutcome::Success).await;
    w.advance(Duration::from_secs(2)).await;
    w.exits("db", 1);
    // db never gets ready within healing_timeout (5 s).
    for _ in 0..4 {
        w.probe_db(ProbeOutcome::Failed("no disk".into())).await;
    }
    assert_eq!(w.plans()[0].state, PlanState::Running);
    w.advance(Duration::from_secs(1)).await;
    let plan = w.plans().pop().unwrap();
    assert_eq!(plan.state, PlanState::Failed);
    let reason = plan.reason.clone().unwrap();
    assert!(reason.contains("db is not healthy within 5s"), "{reason}");
    assert_eq!(plan.steps[2].state, StepState::TimedOut);
    assert_eq!(
        plan.steps[3].state,
        StepState::Pending,
        "api was not started by the plan"
    );
    let RecoveryStep::NotifyOperator { message } = &plan.steps.last().unwrap().step else {
        panic!("the plan ends with NotifyOperator: {plan:?}");
    };
    assert!(message.contains(&reason), "{message}");
    assert!(message.contains("api handed back"), "{message}");
    let notified = w.notified();
    assert_eq!(notified.len(), 1);
    assert_eq!(notified[0].1, "db");
    assert_eq!(notified[0].2, plan.id);
    assert!(w.effects.iter().any(|e| matches!(e,
        Effect::Publish(Event::Notice { level: NoticeLevel::Error, message, .. }) if message.contains("not healthy within"))));
    // api is back under normal supervision: it starts as soon as db is ready.
    assert_eq!(w.state("api"), RunState::Starting);
    w.probe_db(ProbeOutcome::Success).await;
    assert_eq!(w.state("api"), RunState::Running);
}

#[tokio::test(start_paused = true)]
async fn a_second_failure_during_a_plan_joins_it() {
    use crate::model::PlanState;
    let mut w = World::new(FULL);
    w.probe_db(ProbeOutcome::Success).await;
    w.advance(Duration::from_secs(2)).await;
    w.exits("db", 1);
    assert_eq!(w.plans().len(), 1);
    // db crashes again while the plan waits for it.
    w.exits("db", 1);
    let plans = w.plans();
    assert_eq!(plans.len(), 1, "no second plan: {plans:?}");
    assert_eq!(plans[0].joined.len(), 1);
    assert!(plans[0].joined[0].starts_with("crash of db"), "{plans:?}");
    // The governor still restarts db (after its backoff); the plan goes on once it is ready.
    let delay = w.pending_restart_delay("db").expect("db backs off");
    w.advance(delay).await;
    assert_eq!(w.state("db"), RunState::Running);
    w.probe_db(ProbeOutcome::Success).await;
    let plan = w.plans().pop().unwrap();
    assert_eq!(plan.state, PlanState::Done, "{plan:?}");
    assert_eq!(w.state("api"), RunState::Running);
}

#[tokio::test(start_paused = true)]
async fn a_plan_that_outlives_its_timeout_is_cancelled() {
    use crate::model::{PlanState, StepState};
    let mut w = World::new(
        &FULL
            .replace("healing_timeout = \"5s\"", "healing_timeout = \"60s\"")
            .replace(
                "min_uptime = \"1s\"",
                "min_uptime = \"1s\"\nplan_timeout = \"3s\"",
            ),
    );
    w.probe_db(ProbeOutcome::Success).await;
    w.advance(Duration::from_secs(2)).await;
    w.exits("db", 1);
    w.advance(Duration::from_millis(2900)).await;
    assert_eq!(w.plans()[0].state, PlanState::Running);
    w.advance(Duration::from_millis(200)).await;
    let plan = w.plans().pop().unwrap();
    assert_eq!(plan.state, PlanState::TimedOut);
    assert!(plan.reason.as_deref().unwrap().contains("3s"), "{plan:?}");
    assert_eq!(plan.steps[2].state, StepState::TimedOut);
    assert_eq!(w.notified().len(), 1);
    // Cancelled cleanly: its wait timer firing later changes nothing.
    w.advance(Duration::from_secs(60)).await;
    assert_eq!(w.plans().len(), 1);
    assert_eq!(w.notified().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn one_for_one_and_lower_levels_keep_the_plain_restart() {
    for fleet in [
        FULL.replace("healing_level = \"full\"", "healing_level = \"advanced\""),
        FULL.replace("[defaults]", "[defaults]\nstrategy = \"one_for_one\""),
    ] {
        let mut w = World::new(&fleet);
        w.probe_db(ProbeOutcome::Success).await;
        w.advance(Duration::from_secs(2)).await;
        w.exits("db", 1);
        assert!(w.plans().is_empty());
        assert_eq!(w.state("api"), RunState::Running, "api is left alone");
    }
}

#[tokio::test(start_paused = true)]
async fn a_cross_component_issue_plans_across_the_components_it_names() {
    use crate::model::PlanState;
    let mut w = World::new(
        r#"
[defaults]
healing_level = "full"
[[component]]
name = "queue"
command = ["queue"]
[[component]]
name = "worker"
command = ["worker"]
"#,
    );
    let issue = Issue::new("queue", "poisoned_message", Severity::Error).with_affected(["worker"]);
    let id = w.request(Request::ReportIssue { issue });
    assert!(
        matches!(w.answer(id), Some(Ok(Response::Done { message })) if message.contains("plan 1")),
        "{:?}",
        w.answer(id)
    );
    // queue is restarted through its governor (a short run backs off), then worker after it.
    w.advance(Duration::from_secs(1)).await;
    let plan = w.plans().pop().unwrap();
    assert_eq!(plan.affected, ["queue", "worker"]);
    assert_eq!(plan.state, PlanState::Done, "{plan:?}");
    assert_eq!(w.spawns("queue"), 2);
    assert_eq!(w.spawns("worker"), 2);
}

/// The id of the last command published to `name`.
fn last_command_id(w: &World, name: &str) -> u64 {
    w.effects
        .iter()
        .rev()
        .find_map(|e| match e {
            Effect::Publish(Event::Command { component, id, .. }) if component == name => *id,
            _ => None,
        })
        .expect("a command with an id")
}

#[tokio::test(start_paused = true)]
async fn a_linked_components_answer_goes_back_to_whoever_sent_the_command() {
    let mut w = World::new(ONE);
    register_linked(&mut w, "svc");
    let ask = |w: &mut World| {
        w.request(Request::Command {
            component: "svc".into(),
            command: SupervisorCommand::ClearCache,
        })
    };
    // Done.
    let id = ask(&mut w);
    assert!(w.answer(id).is_none(), "the answer waits for the component");
    let cmd = last_command_id(&w, "svc");
    w.request(Request::CommandOutcome {
        component: "svc".into(),
        command: SupervisorCommand::ClearCache,
        error: None,
        id: Some(cmd),
        unsupported: false,
    });
    assert!(
        matches!(w.answer(id), Some(Ok(Response::Done { message })) if message == "sent clear_cache to svc: done"),
        "{:?}",
        w.answer(id)
    );
    // Its error text.
    let id = ask(&mut w);
    let cmd = last_command_id(&w, "svc");
    w.request(Request::CommandOutcome {
        component: "svc".into(),
        command: SupervisorCommand::ClearCache,
        error: Some("cache locked".into()),
        id: Some(cmd),
        unsupported: false,
    });
    assert!(
        matches!(w.answer(id), Some(Err((ErrorCode::Rejected, m))) if m.ends_with("it failed: cache locked")),
        "{:?}",
        w.answer(id)
    );
    // UnsupportedCommand.
    let id = ask(&mut w);
    let cmd = last_command_id(&w, "svc");
    w.request(Request::CommandOutcome {
        component: "svc".into(),
        command: SupervisorCommand::ClearCache,
        error: Some("unsupported command clear_cache".into()),
        id: Some(cmd),
        unsupported: true,
    });
    assert!(
        matches!(w.answer(id), Some(Err((_, m))) if m.contains("UnsupportedCommand")),
        "{:?}",
        w.answer(id)
    );
    // No answer: the kernel's timer answers.
    let id = ask(&mut w);
    w.advance(linked::COMMAND_TIMEOUT - ms(1)).await;
    assert!(w.answer(id).is_none());
    w.advance(ms(2)).await;
    assert!(
        matches!(w.answer(id), Some(Err((_, m))) if m.contains("no answer within 10s")),
        "{:?}",
        w.answer(id)
    );
}

#[tokio::test(start_paused = true)]
async fn an_update_config_is_checked_before_it_is_sent() {
    let mut w = World::new(ONE);
    let id = w.request(Request::Register {
        component: "svc".into(),
        capabilities: crate::model::ComponentCapabilities {
            can_restart: true,
            can_scale: false,
            can_failover: false,
            supported_recovery_actions: vec![],
            healing_level: crate::model::HealingLevel::Basic,
        },
        heartbeat_ms: None,
        config_keys: Some(vec!["log_level".into(), "pool_size".into()]),
        thresholds: None,
    });
    assert!(matches!(w.answer(id), Some(Ok(_))));
    let update = |pairs: &[(&str, &str)]| {
        SupervisorCommand::UpdateConfig(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    };
    let id = w.request(Request::Command {
        component: "svc".into(),
        command: update(&[("log_level", "debug"), ("log_levle", "x")]),
    });
    assert!(
        matches!(w.answer(id), Some(Err((ErrorCode::Rejected, m)))
            if m.contains("'log_levle'") && m.contains("did you mean 'log_level'") && m.contains("nothing was changed")),
        "{:?}",
        w.answer(id)
    );
    assert!(commands_to(&w, "svc").is_empty(), "nothing was sent");
    w.request(Request::Command {
        component: "svc".into(),
        command: update(&[("pool_size", "8")]),
    });
    assert_eq!(commands_to(&w, "svc"), [update(&[("pool_size", "8")])]);
    // A process has no runtime config.
    let id = w.request(Request::Command {
        component: "api".into(),
        command: update(&[("pool_size", "8")]),
    });
    assert!(
        matches!(w.answer(id), Some(Err((ErrorCode::Rejected, m))) if m.contains("edit its [[component]] in hms.toml")),
        "{:?}",
        w.answer(id)
    );
}

#[tokio::test(start_paused = true)]
async fn a_linked_components_own_thresholds_judge_its_reports() {
    let mut w = World::new(ONE);
    w.request(Request::Register {
        component: "svc".into(),
        capabilities: crate::model::ComponentCapabilities {
            can_restart: false,
            can_scale: false,
            can_failover: false,
            supported_recovery_actions: vec![],
            healing_level: crate::model::HealingLevel::Basic,
        },
        heartbeat_ms: None,
        config_keys: None,
        thresholds: Some(crate::model::ReportThresholds {
            error_rate: Some(crate::model::ReportLimit {
                degraded: Some(0.5),
                critical: Some(2.0),
            }),
            response_time_ms: None,
        }),
    });
    let report = |w: &mut World, error_rate: f64, response_time: f64| {
        w.request(Request::ReportMetrics {
            component: "svc".into(),
            metrics: crate::model::HealthMetrics {
                error_rate,
                response_time,
                ..Default::default()
            },
        });
    };
    // 1 % errors: healthy by the built-in 5 %, degraded by its own 0.5 %.
    report(&mut w, 1.0, 10.0);
    assert!(matches!(w.status("svc").health, HealthStatus::Degraded(_)));
    report(&mut w, 3.0, 10.0);
    assert!(matches!(w.status("svc").health, HealthStatus::Critical(_)));
    // The response time it left out keeps the built-in levels (degraded from 1000 ms).
    report(&mut w, 0.0, 1500.0);
    assert!(matches!(w.status("svc").health, HealthStatus::Degraded(_)));
}
