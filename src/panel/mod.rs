//! The panels shown in tmux panes: one ratatui app per [`PanelKind`](crate::model::PanelKind),
//! run by `hms-console panel <kind>`.
//!
//! # Layout
//! - [`app`]: the Elm shape shared by every panel: [`Model`], [`Msg`], [`Model::update`] returning
//!   [`Effect`]s, and [`Model::view`].
//! - One module per kind: [`metrics`], [`logs`], [`status`], [`actions`], [`system_health`],
//!   [`component`] (the overview tile), [`text`] (free text from a linked component) and
//!   [`knowledge`] (what the knowledge registry learned recently).
//!   [`agents`] (the MAC task bus's agents).
//! - [`theme`] (icons, colours, ASCII and `NO_COLOR`) and [`format`] (short durations and sizes).
//! - [`runtime`]: [`run`], the async shell: terminal, connections to the core, reconnects, clock.
//! - [`args`]: the command line of the slim panel program `hms-panel` (src/bin/hms-panel.rs),
//!   which runs a panel without the rest of `hms-console`.
//!
//! Panels reach the core only through the protocol; nothing here may import the core. Models do
//! no I/O: every byte read or written goes through the runtime.

#![forbid(unsafe_code)]

pub mod actions;
pub mod agents;
pub mod app;
pub mod args;
pub mod component;
pub mod format;
pub mod knowledge;
pub mod logs;
pub mod metrics;
pub mod runtime;
pub mod status;
pub mod system_health;
pub mod text;
pub mod theme;

pub use app::{Connection, Effect, Model, Msg};
pub use runtime::{PanelOptions, run};
pub use theme::Theme;

#[cfg(test)]
mod tests;
