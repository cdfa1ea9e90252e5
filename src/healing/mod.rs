//! The self-healing engine (guide §2): deciding when and how to heal a component.
//!
//! The same code serves both kinds of component: the core drives it for the processes it runs, and
//! a linked Rust component gets it through the guide's `HealingFactory`. Everything here is a
//! decision made from events and `now`; nothing in this module tree owns a process, a socket or a
//! timer of the core's.
//!
//! # Layout
//! - [`policy`]: the restart governor: backoff, restart intensity and the circuit breaker.
//! - [`probe`]: liveness/readiness probes (exec, TCP, HTTP) and the tracker that applies thresholds.
//! - [`detect`]: metric thresholds, log patterns, heartbeats and the issues they raise.
//! - [`recovery`]: one healing episode: actions in order, healing timeouts, escalation plans.
//! - [`api`]: the guide's `HealingFactory` / `SelfHealing` API for linked Rust components, re-exported
//!   here and at the crate root.
pub mod api;
pub mod detect;
pub mod policy;
pub mod probe;
pub mod recovery;

pub use api::{
    ActionHandler, HealingError, HealingFactory, HealthCheck, ImplementationConfig, SelfHealing,
    UnifiedHealingConfig,
};
