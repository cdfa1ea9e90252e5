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
//!   `TerminalInterface` (§3) and `HealingFactory` / `SelfHealing` (§2), re-exported here.
//! - [`cli`]: the `hms-console` command line.
//! - [`core`]: the daemon: control socket, supervisor, processes.
//! - [`fswatch`]: event-driven file watching with debouncing on the receiving side.
//! - [`config`]: `hms.toml` and Procfile parsing and validation (`config/`: the value types, the raw
//!   TOML, validation section by section, Procfile import, reload plans); the embedded demo fleet.
//! - [`healing`]: the self-healing engine: backoff, circuit breakers, probes, detection, recovery.
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
//! Layers point one way: `model` ← `protocol` ← `core` and `client` ← the CLI, panels, tmux and
//! `component` (which reaches the core only through `client`).
#![forbid(unsafe_code)]

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
pub use model::{HealingAction, HealingLevel, HealthMetrics, HealthStatus, Issue, Severity};
pub use model::{IssuePattern, RecoveryRecord};
pub use protocol::{KnowledgeItem, KnowledgeQuery, KnowledgeResult};
