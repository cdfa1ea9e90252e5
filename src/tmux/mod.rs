//! The tmux layer: grid layouts compiled to tmux layout strings, and the driver that builds
//! sessions and windows of panel panes on a tmux server.
//!
//! - [`layout`]: layout files, validation (guillotine grids only), tmux layout strings and the
//!   layout compiler. Pure.
//! - [`driver`]: the [`TmuxDriver`] trait and the types it speaks in; [`Tmux`], its
//!   implementation over the `tmux` binary (`driver/real.rs`); and the window helpers
//!   [`ensure_session`], [`build_window`] and [`reapply`] (`driver/window.rs`).
//! - [`control`]: a tmux control-mode client (`tmux -C`) for notifications and cheap queries.
//! - [`fake`]: an in-memory [`TmuxDriver`] for unit tests of the code above this layer.
//!
//! This layer starts panel processes only as pane commands; it never talks to the core and never
//! draws anything itself.

pub mod control;
pub mod driver;
pub mod fake;
pub mod layout;

pub use control::{ControlClient, Notification, Notifications};
pub use driver::{
    BuiltWindow, ManagedWindow, NewSession, OptionScope, PaneId, PaneInfo, PanePlan, SOCKET_ENV,
    SessionState, Tmux, TmuxDriver, TmuxError, WindowId, WindowInfo, WindowPlan, build_window,
    ensure_session, reapply,
};
pub use layout::{CompiledLayout, Grid, LayoutError, Panel, compile};
