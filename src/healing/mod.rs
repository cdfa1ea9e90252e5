//! The self-healing engine (guide §2): deciding when and how to heal a component.
//!
//! The same code serves both kinds of component: the core drives it for the processes it runs, and
//! a linked Rust component gets it through the guide's `HealingFactory` ([`crate::component`]).
//! The decisions are plain state machines fed events and `now`; the only I/O is a probe's own
//! short-lived check. Nothing here owns one of the core's processes, sockets or timers: the core
//! (or the linked component's healing task) carries out what these decide.
//!
//! # Layout
//! - [`policy`]: the restart governor: backoff, restart intensity and the circuit breaker.
//! - [`probe`]: liveness/readiness probes (exec, TCP, HTTP) and the tracker that applies thresholds.
//! - [`detect`]: metric thresholds, log patterns, heartbeats and the issues they raise.
//! - [`recovery`]: one healing episode: actions in order, healing timeouts, escalation plans.
//! - [`planner`]: coordinated recovery across components (§4.2): OTP strategies over the
//!   dependency graph, as a list of recovery steps.
//!
//! # Driving it from the core (one owner per component, timers guarded by epochs)
//! - Process exit wanted restarting (or a liveness [`probe::ProbeTransition::BecameUnhealthy`]):
//!   raise the issue ([`detect::crash_issue`] / [`detect::probe_issue`]) and ask
//!   [`policy::RestartGovernor::on_failure`] with the run's uptime. `RestartNow`: restart, then
//!   `on_restarted`; `RestartAfter(d)`: arm a timer, restart, `on_restarted`; `BreakerOpened`:
//!   escalate [`detect::breaker_issue`] and arm a timer for `next_trial_at` that calls
//!   `on_trial_due` (true: make one trial restart and call `on_restarted`); `NoAction`: report.
//! - After every start arm a timer for `min_uptime`; if the same run is still up, `on_stable`.
//! - An operator's `restart X`: `reset`, then restart.
//! - Probes: per probe a [`probe::ProbeTracker`]; arm a timer for `next_due`, `start` (a
//!   ticket), spawn [`probe::run_probe`], feed the result to `record`; `restart` it on each start.
//! - Other issues (thresholds, log patterns, `hms-console heal X`) at Advanced/Full: a
//!   [`recovery::RecoveryEpisode`]: carry out each `Act` (a `restart` goes through the governor
//!   as above), arm its deadline, feed health changes to `on_health`, publish every record.
pub mod detect;
pub mod healer;
pub mod planner;
pub mod policy;
pub mod probe;
pub mod recovery;
