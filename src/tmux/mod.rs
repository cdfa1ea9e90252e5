//! The tmux layer: grid layouts compiled to tmux layout strings, and the driver that builds
//! sessions and windows of panel panes on a tmux server.
//!
//! - [`layout`]: layout files, validation (guillotine grids only) and the layout compiler. Pure.
//! - [`driver`]: the [`driver::TmuxDriver`] trait, its implementation over the `tmux` binary, and
//!   the helpers that build, reuse and re-lay-out windows.
//! - [`control`]: a tmux control-mode client (`tmux -C`) for notifications and cheap queries.
//!
//! This layer starts panel processes only as pane commands; it never talks to the core and never
//! draws anything itself.

pub mod layout;

pub use layout::{CompiledLayout, Grid, LayoutError, Panel, compile};
