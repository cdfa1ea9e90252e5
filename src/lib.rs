//! hms: the library behind hms-console, and the HMS Component Integration Guide's API for Rust
//! components that want to be supervised, healed and shown in tmux.
//!
//! # Layout
//! - [`model`]: the guide's data types (HealthStatus, Issue, SupervisorCommand …) as serde values.
//! - [`protocol`]: the JSON-lines control protocol spoken over the core's Unix socket.
//! - [`config`]: `hms.toml` and Procfile parsing and validation; the embedded demo fleet.
//! - [`console`]: the actions pane's command language (`restart api`, `help` …), parsed purely.
//! - [`panel`]: the ratatui panels shown in tmux panes (metrics, logs, status, actions …).
//!
//! Layers point one way: `model` ← `protocol` ← `core` and `client` ← the CLI, panels and tmux.
#![forbid(unsafe_code)]

pub mod config;
pub mod console;
pub mod model;
pub mod panel;
pub mod protocol;
