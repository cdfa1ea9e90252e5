//! The self-healing engine (guide §2): deciding when and how to heal a component.
//!
//! The same code serves both kinds of component: the core drives it for the processes it runs, and
//! a linked Rust component gets it through the guide's `HealingFactory`. Everything here is a
//! decision made from events and `now`; nothing in this module tree owns a process, a socket or a
//! timer of the core's.
//!
//! # Layout
//! - [`policy`]: the restart governor: backoff, restart intensity and the circuit breaker.
pub mod policy;
