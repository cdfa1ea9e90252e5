//! What goes into the kernel ([`Input`]) and what comes out ([`Effect`]): plain data, so a test can
//! feed inputs and read effects without a process, a socket or a runtime.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use nix::sys::signal::Signal;
use tokio::time::Instant;

use crate::config::{ComponentSpec, FleetConfig, ProbeTarget};
use crate::healing::probe::{ProbeKind, ProbeOutcome, ProbeTicket};
use crate::model::ProcessMetrics;
use crate::protocol::{ErrorCode, Event, Request, Response};

/// An error answer: a code and a message for the operator.
pub type Refusal = (ErrorCode, String);

/// The answer to a request.
pub type Answer = Result<Response, Refusal>;

/// Names one waiting requester; the shell keeps the channel that answers it. [`ReplyTo::NOBODY`]
/// is the kernel's own requests (a recovery plan's steps), whose answers go nowhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReplyTo(pub u64);

impl ReplyTo {
    /// Nobody waits for this answer.
    pub const NOBODY: ReplyTo = ReplyTo(0);
}

/// Identifies one client connection; [`NO_CONN`] for requests that come from the core itself.
pub type ConnId = u64;

/// The connection id of requests made by the core itself (signals, tests).
pub const NO_CONN: ConnId = 0;

/// The two clocks the kernel is given with every input: `now` decides (timers, backoff, uptime),
/// `wall` only stamps what operators read (start times, exits, notices).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub now: Instant,
    pub wall: SystemTime,
}

/// What a timer is for. Component timers carry the component's epoch: one armed for an earlier
/// life of the component is ignored when it fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timer {
    Component {
        name: String,
        epoch: u64,
        kind: TimerKind,
    },
    /// The deadline of recovery attempt `serial` of the component's episode.
    Episode { name: String, serial: u64 },
    /// A plan's wait for health may be over.
    Plan { plan: u64 },
    /// A plan's overall timeout: it is cancelled if it still runs.
    PlanTimeout { plan: u64 },
    /// Command `id` sent to a linked component has had its time to answer.
    Command { id: u64 },
}

/// What a component timer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerKind {
    /// The backoff delay is over: restart.
    RestartDue,
    /// The stop grace period is over: SIGKILL the group.
    StopGrace,
    /// The process has stayed up for `min_uptime`.
    Stable,
    /// The breaker's cooldown is over: one half-open trial.
    TrialDue,
    /// A liveness or readiness probe is due.
    Probe(ProbeKind),
    /// A linked component's heartbeat deadline.
    Heartbeat,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitCode {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

/// Everything the kernel reacts to.
#[derive(Debug)]
pub enum Input {
    /// The fleet starts: every component is started in dependency order.
    Boot,
    /// A client's request, from connection `conn` (a linked component belongs to the connection
    /// that registered it).
    Request {
        request: Request,
        reply: ReplyTo,
        conn: ConnId,
    },
    /// A [`Effect::Spawn`] was carried out: the process runs with this pid, or could not start.
    Spawned {
        name: String,
        generation: u64,
        result: Result<u32, String>,
    },
    /// A child exited.
    Exited {
        name: String,
        generation: u64,
        exit: ExitCode,
    },
    /// A timer fired.
    TimerFired(Timer),
    /// A log pattern matched a line of run `generation`.
    LogIssue {
        issue: crate::model::Issue,
        generation: u64,
    },
    /// A probe started for the component's life `epoch` finished.
    ProbeResult {
        name: String,
        epoch: u64,
        kind: ProbeKind,
        ticket: ProbeTicket,
        outcome: ProbeOutcome,
    },
    /// A recovery action finished (`serial` names the attempt).
    ActionDone { name: String, serial: u64, ok: bool },
    /// Fresh /proc readings of running processes (run `generation`). `check` when they come from
    /// the metrics tick: thresholds are judged on them.
    Sampled {
        samples: Vec<(String, u64, ProcessMetrics)>,
        check: bool,
    },
    /// The config was read again for a reload.
    ConfigLoaded {
        result: Result<FleetConfig, String>,
        reply: ReplyTo,
    },
    /// A client connection ended (its linked components are gone with it).
    ConnectionClosed { conn: ConnId },
    /// The knowledge registry's advice for healing `issue_type` on `component` (asked for with
    /// [`Effect::AskAdvice`]): which action to try first, and why; `None` when it knows nothing.
    Advice {
        component: String,
        issue_type: String,
        advice: Option<(String, String)>,
    },
}

/// What the shell carries out for the kernel, in order.
#[derive(Debug)]
pub enum Effect {
    /// Start run `generation` of the component; answer with [`Input::Spawned`] (at once: nothing
    /// else is handled in between), then [`Input::Exited`] when it ends.
    Spawn {
        spec: Arc<ComponentSpec>,
        generation: u64,
    },
    /// Send `signal` to the component's process group `pgid`; a SIGKILL reaches everything the
    /// component contains (its cgroup, where it has one), not only the group.
    Signal {
        component: String,
        pgid: u32,
        signal: Signal,
    },
    /// Fire `timer` at `at` as [`Input::TimerFired`].
    Arm { at: Instant, timer: Timer },
    /// Answer a requester.
    Reply { to: ReplyTo, answer: Answer },
    /// Answer requesters once no live process of `groups` (and of the component's cgroup) is left
    /// (a `stop` answers only then).
    ReplyWhenGone {
        component: String,
        to: Vec<ReplyTo>,
        groups: Vec<u32>,
        answer: Answer,
    },
    /// Send an event to subscribers (issues also go to the issue history).
    Publish(Event),
    /// A system line in the component's log.
    Log { component: String, text: String },
    /// Open (or keep) the component's log, kept by `policy`.
    OpenLog {
        component: String,
        policy: crate::core::logs::LogPolicy,
    },
    /// Run a configured action's command; with a `serial` (a recovery attempt) answer with
    /// [`Input::ActionDone`] when it has finished. `reply` is told whether it could be started.
    RunAction {
        component: String,
        action: String,
        spec: Arc<ComponentSpec>,
        pid: Option<u32>,
        serial: Option<u64>,
        reply: ReplyTo,
    },
    /// Run a probe; answer with [`Input::ProbeResult`].
    RunProbe {
        name: String,
        epoch: u64,
        kind: ProbeKind,
        ticket: ProbeTicket,
        target: ProbeTarget,
        timeout: Duration,
    },
    /// Read the config again; answer with [`Input::ConfigLoaded`].
    LoadConfig { reply: ReplyTo },
    /// A reload changed `[knowledge]`'s retention: hand it to the knowledge registry, which
    /// prunes by it in the background (nothing to answer; the kernel never waits for it).
    Retention {
        config: crate::config::KnowledgeConfig,
    },
    /// Ask the knowledge registry which of `actions` to try first for `issue_type`; answer with
    /// [`Input::Advice`] if it answers in time. The kernel never waits for it: advice is kept and
    /// used by the next episode of that issue type.
    AskAdvice {
        component: String,
        issue_type: String,
        actions: Vec<String>,
    },
    /// Feed this input back once the current ones are handled (an outcome known at once, such as
    /// a signal action's).
    Then(Input),
    /// Run the configured `notify_command` (through `sh -c`) with `HMS_NOTIFY_MESSAGE`,
    /// `HMS_NOTIFY_COMPONENT` and `HMS_NOTIFY_PLAN` in its environment; nothing comes back.
    Notify {
        command: String,
        message: String,
        component: String,
        plan: u64,
    },
}
