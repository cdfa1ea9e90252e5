//! The library side: what a Rust service links to take part in HMS (guide §2.1, §3.1, §4.1).
//!
//! # Layout
//! - [`supervisor_client`]: the guide's `SupervisorClient`: register, report health, metrics and
//!   issues, keep a heartbeat, carry out the supervisor's commands.
//! - [`terminal`]: the guide's `TerminalInterface`: a component's own tmux view, its text panels
//!   and its input pane.
//! - [`healing`]: the guide's `HealingFactory` / `SelfHealing`: in-process self-healing driven by
//!   the engine in [`crate::healing`].
//! - `healed`: what local healing recovered, so a report made afterwards says so (§7).
//! - [`mac`]: the guide's `MacClient` (§6.1): register an agent with its capabilities, handle
//!   the tasks delivered to it, and ask other agents for tasks, by name or by capability.
//!
//! - [`knowledge`]: the guide's `KnowledgeClient` (§5.1): query the knowledge registry and
//!   contribute to it, with `KnowledgeQuery` and `KnowledgeItem`.
//!
//! Authors import all of it, and the guide's data types, with `use hms::prelude::*;`. The
//! guide's `HmsComponent` and `MacClient` join here.
//!
//! Each is a cheap handle on one background task that owns the state; the core is reached only
//! through [`crate::client`] and the protocol. Nothing here decides about supervision: the core
//! does, and the healing decisions are the engine's.

mod healed;
pub mod healing;
pub mod knowledge;
pub mod mac;
mod mailbox;
pub mod supervisor_client;
pub mod terminal;

pub use healing::{
    ActionError, ActionHandler, HealingError, HealingFactory, HealthCheck, ImplementationConfig,
    SelfHealing, UnifiedHealingConfig, action, health_check,
};
pub use knowledge::{KnowledgeClient, KnowledgeClientError};
pub use mac::{MacClient, MacError, TaskError, TaskHandler};
pub use supervisor_client::{CommandError, SupervisorClient, SupervisorClientError};
pub use terminal::{InputOutcome, TerminalError, TerminalInterface, TerminalLayout, TerminalMode};
