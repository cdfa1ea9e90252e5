//! The supervisor actor: the async shell around the [`kernel`].
//!
//! The router sends it requests with a oneshot for the answer; process waiters, pipe readers,
//! probes and timers send it what happened. Each of these becomes a kernel [`Input`]; the shell
//! hands it to [`Kernel::handle`] with the clock and carries out the [`Effect`]s that come back:
//! it spawns, signals, arms timers, runs probes and action commands, answers, publishes and
//! writes log lines. It decides nothing itself.
//!
//! It must not block: no file or socket I/O beyond spawning children, signalling them and reading
//! a few /proc files for `status` and metric thresholds. Probes, action commands and config reads
//! run in spawned tasks that send their outcome back as inputs.
//!
//! It runs on a thread of its own ([`Supervisor::run_on_own_thread`]) with the process waiters
//! and timers, so a crash is seen and restarted without waiting for the shared runtime's workers,
//! which socket traffic (a busy task bus, a flood of subscribers) may keep busy. What may take
//! long (output pipes, probes, action commands, advice, config reads) runs on the shared runtime.

pub mod kernel;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

pub use kernel::{Answer, Clock, ConnId, Effect, Input, Kernel, NO_CONN, Refusal, ReplyTo};

use super::cgroup::{ComponentCgroup, Containment};
use super::journal::IssueJournal;
use super::logs::LogStore;
use super::probe_runner::ProbeRunner;
use super::process;
use super::procinfo;
use crate::config::{ComponentSpec, FleetConfig, FleetOrigin};
use crate::healing::detect;
use crate::model::LogStream;
use crate::protocol::{ErrorCode, Event, Request, Response};

/// What the supervisor actor receives.
pub enum Cmd {
    /// A client's request, from connection `conn`.
    Request {
        request: Request,
        reply: oneshot::Sender<Answer>,
        conn: ConnId,
    },
    /// Something happened that the kernel should know.
    Input(Input),
}

/// Handles shared with the router.
#[derive(Clone)]
pub struct SupervisorHandle {
    pub tx: mpsc::UnboundedSender<Cmd>,
    /// How many connections subscribed to metrics (sampling is skipped when none did).
    pub metrics_subscribers: Arc<AtomicUsize>,
}

impl SupervisorHandle {
    /// Sends a request made on connection `conn` and waits for the answer.
    pub async fn request_from(&self, conn: ConnId, request: Request) -> Answer {
        super::router::ask(&self.tx, |reply| Cmd::Request {
            request,
            reply,
            conn,
        })
        .await
        .and_then(|answer| answer)
    }

    /// Tells the supervisor that a connection ended.
    pub fn connection_closed(&self, conn: ConnId) {
        let _ = self.tx.send(Cmd::Input(Input::ConnectionClosed { conn }));
    }
}

/// A running process as the shell knows it: for sampling /proc (and its cgroup, where it has one).
struct Live {
    generation: u64,
    pid: u32,
    started: std::time::Instant,
    last: Option<procinfo::Reading>,
    /// The cgroup's CPU time at the last reading: the whole tree's CPU %, not only the leader's.
    last_cpu_usec: Option<(std::time::Instant, u64)>,
    /// The figures of the last reading, given again while it is fresh (a `status` poller must not
    /// keep the metrics tick from judging thresholds).
    last_metrics: Option<crate::model::ProcessMetrics>,
}

/// The supervisor's shell: the kernel and the means to carry out its effects.
pub struct Supervisor {
    kernel: Kernel,
    core_id: String,
    tx: mpsc::UnboundedSender<Cmd>,
    bus: crate::core::bus::Bus,
    logs: LogStore,
    journal: IssueJournal,
    metrics_subscribers: Arc<AtomicUsize>,
    /// Requesters waiting for an answer, by the id the kernel knows them by.
    replies: HashMap<u64, oneshot::Sender<Answer>>,
    next_reply: u64,
    /// Running processes, by component.
    live: HashMap<String, Live>,
    /// Runs exec probes in a helper process (started with the first one). Made by the first probe,
    /// on the supervisor's thread and runtime, so that the helper process is started from that
    /// thread and keeps its priority (see `core::priority`).
    probe_runner: Option<ProbeRunner>,
    /// Cgroups per component, or process groups (and the core a subreaper).
    containment: Arc<Containment>,
    /// The knowledge registry: told every healing attempt and symptom, asked for advice.
    knowledge: super::knowledge::KnowledgeHandle,
    /// The registry's file when `[knowledge]` names none (`DATA_DIR/knowledge.db`): a reloaded
    /// config is compared with the running one with this filled in.
    knowledge_file: std::path::PathBuf,
    /// Each component's cgroup, made at its first spawn and kept across restarts.
    cgroups: HashMap<String, ComponentCgroup>,
    /// Whether the components' cgroups count their memory (`memory.current`), once a reading
    /// has shown it: the controllers are the same for every component's cgroup and fixed when
    /// the core starts (see [`super::cgroup::Usage::memory_bytes`]). Without it every sample of every
    /// component tried to open the missing file (strace, an idle core of 1,000 components:
    /// 4,000 failed opens in 20 s).
    memory_counted: Option<bool>,
    /// Where the config is read again on reload.
    origin: FleetOrigin,
    /// The core's shared runtime: output pipes, probes, action commands, advice and config reads
    /// run there, never on the supervisor's own thread.
    io: tokio::runtime::Handle,
    /// Publishing and log lines held back while an input's effects are carried out, done in
    /// order once the effects that do not observe them (signals, timers, a spawn) are done: a
    /// restart's spawn does not wait behind the log file, the journal, the registry's writer and
    /// the subscribers it wakes. They are done before any other effect, before the new process's
    /// output is read, and before [`Supervisor::feed`] returns, so their order is unchanged.
    deferred: Vec<Effect>,
}

/// How long the operator's notify command may run.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a CPU sample stays fresh enough to answer `status` without reading /proc again.
const SAMPLE_FRESH: Duration = Duration::from_millis(250);

/// What the supervisor needs from the core.
pub struct SupervisorParts {
    pub core_id: String,
    /// Where healing attempts and symptoms are learned, and advice comes from.
    pub knowledge: super::knowledge::KnowledgeHandle,
    /// The registry's file when `[knowledge]` names none (`DATA_DIR/knowledge.db`).
    pub knowledge_file: std::path::PathBuf,
    /// Cgroups per component, or process groups.
    pub containment: Arc<Containment>,
    pub origin: FleetOrigin,
    pub bus: crate::core::bus::Bus,
    pub logs: LogStore,
    pub journal: IssueJournal,
}

impl Supervisor {
    /// Builds the supervisor for a fleet. Nothing is started until [`Supervisor::run`].
    pub fn new(
        fleet: &FleetConfig,
        parts: SupervisorParts,
    ) -> (Supervisor, SupervisorHandle, mpsc::UnboundedReceiver<Cmd>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let metrics_subscribers = Arc::new(AtomicUsize::new(0));
        let handle = SupervisorHandle {
            tx: tx.clone(),
            metrics_subscribers: metrics_subscribers.clone(),
        };
        let clock = Clock {
            now: Instant::now(),
            wall: SystemTime::now(),
        };
        (
            Supervisor {
                kernel: Kernel::new(fleet, clock),
                probe_runner: None,
                containment: parts.containment,
                knowledge: parts.knowledge,
                knowledge_file: parts.knowledge_file,
                cgroups: HashMap::new(),
                memory_counted: None,
                core_id: parts.core_id,
                tx,
                bus: parts.bus,
                logs: parts.logs,
                journal: parts.journal,
                metrics_subscribers,
                replies: HashMap::new(),
                next_reply: 0,
                live: HashMap::new(),
                origin: parts.origin,
                io: tokio::runtime::Handle::current(),
                deferred: Vec::new(),
            },
            handle,
            rx,
        )
    }

    /// Runs [`Supervisor::run`] on a thread of its own, on a current-thread runtime: a child's
    /// exit wakes that thread, which restarts it without a hand-off between threads and without
    /// waiting behind socket traffic on the shared runtime's workers. The answer carries the
    /// process groups that ended during the shutdown (none if the thread panicked). The runtime,
    /// with the process waiters and the output pipes registered with it, lives on until `release`
    /// is sent or dropped, so output written while the core shuts down is still read.
    pub fn run_on_own_thread(
        self,
        rx: mpsc::UnboundedReceiver<Cmd>,
        release: oneshot::Receiver<()>,
    ) -> std::io::Result<oneshot::Receiver<Vec<u32>>> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (done, ended) = oneshot::channel();
        std::thread::Builder::new()
            .name("hms-supervisor".into())
            .spawn(move || {
                let groups = runtime.block_on(self.run(rx));
                let _ = done.send(groups);
                runtime.block_on(async {
                    let _ = release.await;
                });
            })?;
        Ok(ended)
    }

    /// Starts the fleet and handles commands until a shutdown completes. Returns the process
    /// groups of the components that ended during the shutdown.
    pub async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Cmd>) -> Vec<u32> {
        self.feed(Input::Boot);
        let mut metrics_tick = tokio::time::interval(Duration::from_secs(2));
        metrics_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                cmd = rx.recv() => {
                    let Some(cmd) = cmd else { break };
                    self.on_cmd(cmd);
                    if self.kernel.is_done() {
                        break;
                    }
                }
                _ = metrics_tick.tick() => self.on_metrics_tick(),
            }
        }
        self.kernel.ended_groups().to_vec()
    }

    fn on_cmd(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Request {
                request,
                reply,
                conn,
            } => {
                if let Request::Status { component } = &request {
                    // The kernel reads no /proc: give it fresh figures first.
                    let targets = self.kernel.sample_targets(component.as_deref());
                    let samples = self.sample(targets);
                    if !samples.is_empty() {
                        self.feed(Input::Sampled {
                            samples,
                            check: false,
                        });
                    }
                }
                self.next_reply += 1;
                let id = self.next_reply;
                self.replies.insert(id, reply);
                self.feed(Input::Request {
                    request,
                    reply: ReplyTo(id),
                    conn,
                });
            }
            Cmd::Input(input) => {
                if let Input::Exited {
                    name, generation, ..
                } = &input
                    && self
                        .live
                        .get(name)
                        .is_some_and(|l| l.generation == *generation)
                {
                    self.live.remove(name);
                }
                self.feed(input);
            }
        }
    }

    /// On the metrics tick: figures for subscribers (when there are any) and for the components
    /// with metric thresholds.
    fn on_metrics_tick(&mut self) {
        let publish = self.metrics_subscribers.load(Ordering::Relaxed) > 0;
        let targets = if publish {
            self.kernel.sample_targets(None)
        } else {
            self.kernel.threshold_targets()
        };
        if targets.is_empty() {
            return;
        }
        let samples = self.sample(targets);
        if publish {
            for (component, _, metrics) in &samples {
                self.bus.publish(Event::Metrics {
                    component: component.clone(),
                    metrics: Box::new(metrics.clone()),
                    at: SystemTime::now(),
                });
            }
        }
        self.feed(Input::Sampled {
            samples,
            check: true,
        });
    }

    /// Reads /proc for each target, reusing a reading younger than [`SAMPLE_FRESH`].
    fn sample(
        &mut self,
        targets: Vec<(String, u64, u32)>,
    ) -> Vec<(String, u64, crate::model::ProcessMetrics)> {
        let now = std::time::Instant::now();
        let mut samples = Vec::with_capacity(targets.len());
        for (name, generation, pid) in targets {
            let Some(live) = self.live.get_mut(&name) else {
                continue;
            };
            if live.generation != generation || live.pid != pid {
                continue;
            }
            let fresh = live
                .last
                .is_some_and(|r| now.saturating_duration_since(r.at) < SAMPLE_FRESH);
            if fresh {
                if let Some(metrics) = &live.last_metrics {
                    samples.push((name, generation, metrics.clone()));
                }
                continue;
            }
            if let Some(reading) = procinfo::read(pid) {
                let mut metrics = procinfo::metrics(&reading, live.last.as_ref(), live.started);
                live.last = Some(reading);
                // The cgroup counts the component's whole tree, children included.
                if let Some(cg) = self.cgroups.get(&name) {
                    let usage = cg.usage(self.memory_counted != Some(false));
                    if self.memory_counted.is_none() && usage.cpu_usec.is_some() {
                        self.memory_counted = Some(usage.memory_bytes.is_some());
                    }
                    if let Some(usec) = usage.cpu_usec {
                        if let Some((at, before)) = live.last_cpu_usec {
                            let elapsed = now.saturating_duration_since(at).as_secs_f64();
                            if elapsed > 0.0 {
                                metrics.cpu_percent =
                                    usec.saturating_sub(before) as f64 / 1e6 / elapsed * 100.0;
                            }
                        }
                        live.last_cpu_usec = Some((now, usec));
                    }
                    if let Some(bytes) = usage.memory_bytes {
                        metrics.rss_bytes = bytes;
                    }
                }
                live.last_metrics = Some(metrics.clone());
                samples.push((name, generation, metrics));
            }
        }
        samples
    }

    /// Hands one input to the kernel and carries out the effects, and the inputs they give at once,
    /// until none is left.
    fn feed(&mut self, input: Input) {
        let mut queue = VecDeque::from([input]);
        while let Some(input) = queue.pop_front() {
            self.kernel.observed = self.bus.receiver_count() > 0;
            let clock = Clock {
                now: Instant::now(),
                wall: SystemTime::now(),
            };
            for effect in self.kernel.handle(clock, input) {
                self.carry_out(effect, &mut queue);
            }
        }
        self.flush_deferred();
    }

    /// Carries out the held-back publishing and log lines, in the order they came.
    fn flush_deferred(&mut self) {
        if self.deferred.is_empty() {
            return;
        }
        for effect in std::mem::take(&mut self.deferred) {
            match effect {
                Effect::Publish(event) => self.publish(event),
                Effect::Log { component, text } => {
                    tracing::debug!(%component, %text);
                    self.logs.system(&component, text);
                }
                other => unreachable!("only publishing and log lines are held back: {other:?}"),
            }
        }
    }

    fn publish(&mut self, event: Event) {
        match &event {
            Event::Issue { issue } => {
                tracing::info!(component = %issue.component, issue_type = %issue.issue_type, severity = %issue.severity, "issue");
                self.journal.record((**issue).clone());
                self.knowledge.pattern(issue);
            }
            Event::Healing { record } => self.knowledge.record((**record).clone()),
            Event::Notice { level, message, .. } => match level {
                crate::protocol::NoticeLevel::Info => tracing::info!(?level, "{message}"),
                _ => tracing::warn!(?level, "{message}"),
            },
            _ => {}
        }
        self.bus.publish(event);
    }

    fn carry_out(&mut self, effect: Effect, queue: &mut VecDeque<Input>) {
        match &effect {
            Effect::Publish(_) | Effect::Log { .. } => {
                self.deferred.push(effect);
                return;
            }
            // These observe nothing that was published or logged.
            Effect::Spawn { .. } | Effect::Signal { .. } | Effect::Arm { .. } | Effect::Then(_) => {
            }
            _ => self.flush_deferred(),
        }
        match effect {
            Effect::Spawn { spec, generation } => {
                let result = self.spawn(&spec, generation);
                queue.push_back(Input::Spawned {
                    name: spec.name.clone(),
                    generation,
                    result,
                });
            }
            Effect::Signal {
                component,
                pgid,
                signal,
            } => {
                if let Err(e) = process::signal_group(pgid, signal) {
                    tracing::warn!(pgid, %signal, cause = %e, "cannot signal the process group");
                }
                if signal == nix::sys::signal::Signal::SIGKILL {
                    self.kill_contained(&component);
                }
            }
            Effect::Arm { at, timer } => {
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    tokio::time::sleep_until(at).await;
                    let _ = tx.send(Cmd::Input(Input::TimerFired(timer)));
                });
            }
            Effect::Reply { to, answer } => {
                if let Some(reply) = self.replies.remove(&to.0) {
                    let _ = reply.send(answer);
                }
            }
            Effect::ReplyWhenGone {
                component,
                to,
                groups,
                answer,
            } => {
                let replies: Vec<_> = to
                    .iter()
                    .filter_map(|t| self.replies.remove(&t.0))
                    .collect();
                let cgroup = self.cgroups.get(&component).cloned();
                self.io.spawn(async move {
                    let deadline = Instant::now() + Duration::from_secs(2);
                    process::wait_groups_gone(&groups, Duration::from_secs(2)).await;
                    if let Some(cg) = cgroup {
                        while !cg.is_empty().unwrap_or(true) && Instant::now() < deadline {
                            tokio::time::sleep(Duration::from_millis(2)).await;
                        }
                    }
                    for reply in replies {
                        let _ = reply.send(answer.clone());
                    }
                });
            }
            Effect::Publish(_) | Effect::Log { .. } => unreachable!("held back above"),
            Effect::OpenLog { component, policy } => {
                self.logs.open(&component, policy);
            }
            Effect::RunAction {
                component,
                action,
                spec,
                pid,
                serial,
                reply,
            } => {
                let answer = self.run_action(&component, &action, &spec, pid, serial);
                if let (Err((_, why)), Some(serial)) = (&answer, serial) {
                    self.logs.system(
                        &component,
                        format!("healing: {action} could not be done: {why}"),
                    );
                    queue.push_back(Input::ActionDone {
                        name: component.clone(),
                        serial,
                        ok: false,
                    });
                }
                if let Some(reply) = self.replies.remove(&reply.0) {
                    let _ = reply.send(answer);
                }
            }
            Effect::RunProbe {
                name,
                epoch,
                kind,
                ticket,
                target,
                timeout,
            } => {
                let tx = self.tx.clone();
                let runner = self
                    .probe_runner
                    .get_or_insert_with(|| ProbeRunner::new(&self.core_id))
                    .clone();
                let starts_a_process = matches!(target, crate::config::ProbeTarget::Exec(_));
                let probe = async move {
                    let outcome = runner.run(&target, timeout).await;
                    let _ = tx.send(Cmd::Input(Input::ProbeResult {
                        name,
                        epoch,
                        kind,
                        ticket,
                        outcome,
                    }));
                };
                if starts_a_process {
                    // An exec probe only waits for the runner's answer here; if the runner is
                    // gone, it starts the probe itself, from this (unlowered) thread.
                    tokio::spawn(probe);
                } else {
                    self.io.spawn(probe);
                }
            }
            Effect::LoadConfig { reply } => {
                let origin = self.origin.clone();
                let tx = self.tx.clone();
                let knowledge_file = self.knowledge_file.clone();
                self.io.spawn_blocking(move || {
                    let result = origin
                        .load()
                        .map(|mut fleet| {
                            // As at start: no `path` is the data directory's file.
                            fleet.knowledge.path.get_or_insert(knowledge_file);
                            fleet
                        })
                        .map_err(|e| e.to_string());
                    let _ = tx.send(Cmd::Input(Input::ConfigLoaded { result, reply }));
                });
            }
            Effect::Retention { config } => {
                // Only queues a message for the registry's writer: never waits for it.
                self.knowledge.set_retention(&config);
            }
            Effect::AskAdvice {
                component,
                issue_type,
                actions,
            } => {
                // Off the healing path: the answer comes back as an input when (and if) it comes.
                let knowledge = self.knowledge.clone();
                let tx = self.tx.clone();
                self.io.spawn(async move {
                    let answer = tokio::time::timeout(Duration::from_secs(2), async {
                        // What was just recorded counts.
                        let _ = knowledge.flush().await;
                        knowledge.advice(&component, &issue_type, &actions).await
                    })
                    .await;
                    if let Ok(advice) = answer {
                        let advice = advice.map(|a| (a.action, a.reason));
                        let _ = tx.send(Cmd::Input(Input::Advice {
                            component,
                            issue_type,
                            advice,
                        }));
                    }
                });
            }
            Effect::Then(input) => queue.push_back(input),
            Effect::Notify {
                command,
                message,
                component,
                plan,
            } => self.notify(command, message, component, plan),
        }
    }

    /// Runs the operator's notify command for a plan's `NotifyOperator`, in a task of its own (at
    /// most [`NOTIFY_TIMEOUT`]); how it went is written to the component's log.
    fn notify(&self, command: String, message: String, component: String, plan: u64) {
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c")
            .arg(&command)
            .env("HMS_NOTIFY_MESSAGE", &message)
            .env("HMS_NOTIFY_COMPONENT", &component)
            .env("HMS_NOTIFY_PLAN", plan.to_string())
            .env(process::CORE_ID_ENV, &self.core_id)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let logs = self.logs.clone();
        // Started here, not on the shared runtime, whose threads run at a lower priority that
        // the command would inherit (see `core::priority`).
        let spawned = cmd.spawn();
        self.io.spawn(async move {
            let said = match spawned {
                Err(e) => format!("notify command `{command}` cannot run: {e}"),
                Ok(child) => {
                    match tokio::time::timeout(NOTIFY_TIMEOUT, child.wait_with_output()).await {
                        Ok(Ok(out)) if out.status.success() => {
                            format!("notify command ran for plan {plan}")
                        }
                        Ok(Ok(out)) => format!(
                            "notify command `{command}` failed ({}): {}",
                            out.status,
                            String::from_utf8_lossy(&out.stderr).trim()
                        ),
                        Ok(Err(e)) => format!("notify command `{command}` failed: {e}"),
                        Err(_) => format!(
                            "notify command `{command}` killed after {}",
                            crate::text::duration(NOTIFY_TIMEOUT)
                        ),
                    }
                }
            };
            tracing::info!(%component, plan, "{said}");
            logs.system(&component, said);
        });
    }

    /// Starts a component's process: its output goes to its log, log patterns come back as
    /// [`Input::LogIssue`], its exit as [`Input::Exited`].
    fn spawn(&mut self, spec: &Arc<ComponentSpec>, generation: u64) -> Result<u32, String> {
        let name = spec.name.clone();
        match process::spawn(spec, &self.core_id) {
            Ok(mut spawned) => {
                let pid = spawned.pid;
                self.contain(&name, pid);
                // The new program runs: now what the exit published and logged, then its output.
                self.flush_deferred();
                let sink = self.logs.open(&name, kernel::log_policy(spec));
                let on_line: Arc<dyn Fn(&str) + Send + Sync> = if spec.log_patterns.is_empty() {
                    Arc::new(|_: &str| {})
                } else {
                    let tx = self.tx.clone();
                    let spec = spec.clone();
                    Arc::new(move |line: &str| {
                        if let Some(issue) =
                            detect::match_log_line(&spec.name, &spec.log_patterns, line)
                        {
                            let _ = tx.send(Cmd::Input(Input::LogIssue { issue, generation }));
                        }
                    })
                };
                spawned.read_output(sink, on_line, &self.io);
                self.live.insert(
                    name.clone(),
                    Live {
                        generation,
                        pid,
                        started: std::time::Instant::now(),
                        last: None,
                        last_cpu_usec: None,
                        last_metrics: None,
                    },
                );
                let mut child = spawned.child;
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    match child.wait().await {
                        Ok(status) => {
                            use std::os::unix::process::ExitStatusExt;
                            let exit = kernel::ExitCode {
                                code: status.code(),
                                signal: status.signal(),
                            };
                            let _ = tx.send(Cmd::Input(Input::Exited {
                                name,
                                generation,
                                exit,
                            }));
                        }
                        Err(e) => {
                            tracing::error!(component = %name, cause = %e, "waiting for the child failed")
                        }
                    }
                });
                tracing::info!(component = %spec.name, pid, "started");
                Ok(pid)
            }
            Err(e) => {
                tracing::error!(component = %name, cause = %e, "cannot start");
                Err(e.to_string())
            }
        }
    }

    /// Puts a freshly spawned process (and whatever it already forked) into its component's cgroup,
    /// made at the component's first spawn. Without cgroups the process group is all there is.
    fn contain(&mut self, name: &str, pid: u32) {
        if self.containment.root().is_none() {
            return;
        }
        if !self.cgroups.contains_key(name) {
            match self.containment.create(name) {
                Ok(Some(cg)) => {
                    self.cgroups.insert(name.to_string(), cg);
                }
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(component = %name, cause = %e, "cannot make the component's cgroup; its process group contains it");
                    return;
                }
            }
        }
        if let Some(cg) = self.cgroups.get(name)
            && let Err(e) = cg.add_tree(pid)
        {
            tracing::warn!(component = %name, pid, cause = %e, "cannot move the process into its cgroup");
        }
    }

    /// Kills whatever of the component is left beyond its process group: its whole cgroup; or,
    /// without cgroups, the processes the core adopted as subreaper that carry the component's
    /// name (a double fork or a `setsid` left its group). Without cgroups an action command of
    /// the component that runs at that moment is among them: the fallback cannot tell them apart.
    fn kill_contained(&self, name: &str) {
        if let Some(cg) = self.cgroups.get(name) {
            if let Err(e) = cg.kill() {
                tracing::warn!(component = %name, cause = %e, "cannot kill the component's cgroup");
            }
            return;
        }
        if self.containment.root().is_some() {
            return;
        }
        let me = format!("{}={}", process::CORE_ID_ENV, self.core_id);
        let component = format!("{}={name}", process::COMPONENT_ENV);
        let spawned: Vec<u32> = self.live.values().map(|l| l.pid).collect();
        for pid in super::cgroup::adopted_orphans(&spawned) {
            let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            let carries = |entry: &str| env.split(|b| *b == 0).any(|v| v == entry.as_bytes());
            if carries(&me) && carries(&component) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
                // Adopted, so ours to reap; it is gone once SIGKILL lands.
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid as i32), None);
            }
        }
    }

    /// Runs an action's command; with a `serial`, reports [`Input::ActionDone`] when it finished.
    /// Answers whether it could be started.
    fn run_action(
        &self,
        name: &str,
        action: &str,
        spec: &ComponentSpec,
        pid: Option<u32>,
        serial: Option<u64>,
    ) -> Answer {
        let cfg = spec
            .actions
            .get(action)
            .expect("the kernel runs only configured actions");
        let command = cfg
            .command
            .as_ref()
            .expect("the kernel runs only actions with a command");
        let argv = command.argv();
        let mut cmd = tokio::process::Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .envs(&spec.env)
            .env(process::COMPONENT_ENV, name)
            .env(process::CORE_ID_ENV, &self.core_id)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        if let Some(pid) = pid {
            cmd.env("HMS_PID", pid.to_string());
        }
        if let Some(cwd) = &spec.cwd {
            cmd.current_dir(cwd);
        }
        let timeout = cfg.timeout.map_or(Duration::from_secs(30), |t| t.0);
        let child = cmd.spawn().map_err(|e| {
            (
                ErrorCode::Rejected,
                format!("{action}: cannot run `{command}`: {e}"),
            )
        })?;
        let sink = self.logs.open(name, kernel::log_policy(spec));
        let tx = self.tx.clone();
        let (action_name, component) = (action.to_string(), name.to_string());
        self.io.spawn(async move {
            let ok = match tokio::time::timeout(timeout, child.wait_with_output()).await {
                Ok(Ok(out)) => {
                    for line in String::from_utf8_lossy(&out.stdout)
                        .lines()
                        .chain(String::from_utf8_lossy(&out.stderr).lines())
                    {
                        sink.push(LogStream::System, format!("[{action_name}] {line}"));
                    }
                    sink.push(
                        LogStream::System,
                        format!("action {action_name} finished: {}", out.status),
                    );
                    out.status.success()
                }
                Ok(Err(e)) => {
                    sink.push(
                        LogStream::System,
                        format!("action {action_name} failed: {e}"),
                    );
                    false
                }
                Err(_) => {
                    sink.push(
                        LogStream::System,
                        format!("action {action_name} timed out after {timeout:?}"),
                    );
                    false
                }
            };
            if let Some(serial) = serial {
                let _ = tx.send(Cmd::Input(Input::ActionDone {
                    name: component,
                    serial,
                    ok,
                }));
            }
        });
        Ok(Response::Done {
            message: format!("{action}: started `{command}` for {name}"),
        })
    }
}
