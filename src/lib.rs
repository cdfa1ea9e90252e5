//! hms: the library behind hms-console, and the HMS Component Integration Guide's API for Rust
//! components that want to be supervised, healed and shown in tmux.
//!
//! # Layout
//! - [`model`]: the guide's data types (HealthStatus, Issue, SupervisorCommand …) as serde values.
//! - [`protocol`]: the JSON-lines control protocol spoken over the core's Unix socket.
//! - [`text`]: short human text shared by all: durations, sizes, truncation, "did you mean".
//! - [`paths`]: where the socket, the data directory and log files live.
//! - [`client`]: the typed async client for the control socket.
//! - [`component`]: the library side for Rust services: the guide's `SupervisorClient` (§4),
//!   `TerminalInterface` (§3), `HealingFactory` / `SelfHealing` (§2) and `MacClient` (§6),
//!   re-exported here.
//! - [`prelude`]: every guide name in one import, `use hms::prelude::*;`.
//! - [`cli`]: the `hms-console` command line.
//! - [`core`]: the daemon: the control socket and the router, and the rooms requests go to (the
//!   supervisor — a pure kernel in an async shell —, the log store, the issue journal, the console
//!   room, the MAC task bus), processes, cgroup containment and the reaper.
//! - [`fswatch`]: event-driven file watching with debouncing on the receiving side.
//! - [`config`]: `hms.toml` and Procfile parsing and validation (`config/`: the value types, the raw
//!   TOML, validation section by section, Procfile import, reload plans); the embedded demo fleet.
//! - [`healing`]: the self-healing engine, pure: backoff and circuit breakers, probes, detection,
//!   recovery episodes, and the per-component healer that combines them for the core and the
//!   library alike.
//! - [`tmux`]: grid layouts (`tmux/layout/`: layout files and their validation, the guillotine
//!   cut, tmux layout strings and their checksum, the compiler from grid to string), the tmux
//!   driver (`tmux/driver/`: the trait, the real driver over the `tmux` binary, building windows
//!   of panel panes), control mode, and an in-memory fake driver for tests.
//! - [`command`]: the actions pane's command language (`restart api`, `help` …): parsing, help
//!   texts and the request each line maps to. Pure: no I/O, no tokio, no tmux.
//! - [`console`]: builds the operator's tmux session of panel windows and watches it (re-lays
//!   out resized windows, rebuilds windows whose layout file changed); talks to tmux and the core.
//! - [`panel`]: the ratatui panels shown in tmux panes (metrics, logs, status, actions …).
//!
//! docs/ARCHITECTURE.md says how the parts fit and how a request travels through them.
//!
//! Layers point one way: `model` ← `protocol` ← `core` and `client` ← the CLI, panels, tmux and
//! `component` (which reaches the core only through `client`).
// One place needs `unsafe`: the fork of the reaper before the core's runtime starts
// (`core::orphans::fork_reaper`, issue 12); everything else is safe code.
#![deny(unsafe_code)]

pub mod cli;
pub mod client;
pub mod command;
pub mod component;
pub mod config;
pub mod console;
pub mod core;
pub mod fswatch;
pub mod healing;
pub mod model;
pub mod pages;
pub mod panel;
pub mod paths;
pub mod protocol;
pub mod text;
pub mod tmux;

pub use component::{
    HealingError, HealingFactory, ImplementationConfig, SelfHealing, SupervisorClient,
    TerminalInterface, TerminalLayout, TerminalMode, UnifiedHealingConfig,
};
pub use component::{KnowledgeClient, KnowledgeClientError};
pub use component::{MacClient, MacError, TaskError};
pub use model::{
    AgentCapabilities, HealingCoordination, MacTask, TaskPriority, map_severity_to_priority,
};
pub use model::{HealingAction, HealingLevel, HealthMetrics, HealthStatus, Issue, Severity};
pub use model::{IssuePattern, RecoveryRecord};
pub use protocol::{KnowledgeItem, KnowledgeQuery, KnowledgeResult};

/// Every name of the integration guide a Rust component uses, in one import:
///
/// ```
/// use hms::prelude::*;
///
/// let level = HealingLevel::Advanced;
/// let config = UnifiedHealingConfig {
///     component_id: "my-component".to_string(),
///     level,
///     auto_healing_enabled: true,
///     circuit_breaker_enabled: true,
///     healing_timeout: 30,
///     implementation_config: ImplementationConfig::Standalone(HashMap::new()),
/// };
/// let healing: Box<dyn SelfHealing> = HealingFactory::create(config);
/// let terminal = TerminalInterface::new("my-component", TerminalLayout::TwoByTwo, TerminalMode::Observe);
/// let supervisor = SupervisorClient::new("my-component");
/// let step = RecoveryStep::notify_operator("cache rebuilt");
/// # let _ = (healing, terminal, supervisor, step);
/// ```
///
/// It brings §2's `HealingLevel`, `UnifiedHealingConfig`, `ImplementationConfig`,
/// `HealingFactory`, `SelfHealing`, `HealthStatus`, `HealthMetrics`, `Issue`, `Severity`,
/// `HealingAction`, `RecoveryRecord` and `IssuePattern`; §3's `TerminalInterface`,
/// `TerminalLayout` and `TerminalMode`; §4's `SupervisorClient`, `ComponentCapabilities`,
/// `SupervisorCommand` and `RecoveryStep`; the errors a component meets (`HealingError`,
/// `SupervisorClientError`, `CommandError` — the guide's `Error::UnsupportedCommand` —,
/// `TerminalError`, `ActionError`); the helpers `action` and `health_check` that wrap async
/// closures for `SelfHealing::on_action` / `on_health_check`; and, because the guide's snippets
/// use them unqualified, `HashMap`, `BTreeMap` (what `custom_metrics`, `Issue::context` and
/// `UpdateConfig` hold), `Arc`, `Duration` and `SystemTime`.
///
/// Where a guide type differs only for Rust's sake, its own documentation says how and what to
/// write instead ([`ComponentCapabilities`](crate::model::ComponentCapabilities),
/// [`HealthMetrics`](crate::model::HealthMetrics), [`Issue`](crate::model::Issue),
/// [`RecoveryStep`](crate::model::RecoveryStep),
/// [`SupervisorCommand`](crate::model::SupervisorCommand)).
///
/// §5's `KnowledgeClient`, `KnowledgeQuery`, `KnowledgeItem` and `KnowledgeResult` are here too,
/// and §6's `MacClient`, `AgentCapabilities`, `MacTask`, `TaskPriority`, `HealingCoordination`
/// and `map_severity_to_priority`, with `MacError` (one variant per way a task ends without a
/// result) and `TaskError` (the guide's `Error::UnsupportedTask`).
///
/// Not here yet: the guide's `HmsComponent` (§7); it joins this prelude when it is built.
pub mod prelude {
    pub use std::collections::{BTreeMap, HashMap};
    pub use std::sync::Arc;
    pub use std::time::{Duration, SystemTime};

    pub use crate::component::supervisor_client::{CommandError, SupervisorClientError};
    pub use crate::component::{
        ActionError, HealingError, HealingFactory, ImplementationConfig, InputOutcome, SelfHealing,
        SupervisorClient, TerminalError, TerminalInterface, TerminalLayout, TerminalMode,
        UnifiedHealingConfig, action, health_check,
    };
    pub use crate::component::{KnowledgeClient, KnowledgeClientError};
    pub use crate::component::{MacClient, MacError, TaskError};
    pub use crate::model::{
        AgentCapabilities, HealingCoordination, MacTask, TaskPriority, map_severity_to_priority,
    };
    pub use crate::model::{
        BreakerState, ComponentCapabilities, HealingAction, HealingLevel, HealingStatus,
        HealthMetrics, HealthStatus, Issue, IssuePattern, RecoveryRecord, RecoveryStep, Severity,
        SupervisorCommand,
    };
    pub use crate::protocol::{KnowledgeItem, KnowledgeQuery, KnowledgeResult};
}
