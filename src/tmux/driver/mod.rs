//! The tmux driver: the [`TmuxDriver`] trait and the types it speaks in (pane and window ids,
//! plans of windows to build, what `list-panes` and `list-windows` report, [`TmuxError`]).
//!
//! - [`Tmux`] (in `real.rs`): the trait over the `tmux` binary, on one server.
//! - `window.rs`: the helpers the CLI and the console call on any driver: [`ensure_session`],
//!   [`build_window`] and [`reapply`], and the [`ManagedWindow`] they keep.
//!
//! Every call goes to one server, chosen by a socket name (`tmux -L NAME`, from
//! `HMS_TMUX_SOCKET` or [`Tmux::with_socket`]), so tests and demos never touch the user's
//! default server. Panes are started with their command (never typed with send-keys, which races
//! the shell), and a whole window is built in one chained tmux invocation because each tmux
//! process costs a few milliseconds.
//!
//! This module must not decide what a panel shows, and must not change the user's global tmux
//! configuration: options are set on our session and windows only (the one server option we
//! set, `escape-time`, only on a server this module started).

use std::fmt;
use std::future::Future;
use std::str::FromStr;

use super::layout::{LayoutError, LayoutParseError};

mod real;
mod window;

pub use real::{Tmux, chain};
pub use window::{
    ManagedWindow, SessionState, build_window, build_window_with_options, ensure_session, reapply,
};

/// The environment variable naming the tmux socket (`tmux -L NAME`) hms-console uses.
pub const SOCKET_ENV: &str = "HMS_TMUX_SOCKET";

/// A pane's stable id, `%N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PaneId(pub u32);

/// A window's stable id, `@N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WindowId(pub u32);

impl fmt::Display for PaneId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "%{}", self.0)
    }
}

impl fmt::Display for WindowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{}", self.0)
    }
}

fn parse_id(s: &str, sigil: char) -> Option<u32> {
    s.strip_prefix(sigil)?.parse().ok()
}

impl FromStr for PaneId {
    type Err = TmuxError;
    fn from_str(s: &str) -> Result<Self, TmuxError> {
        parse_id(s, '%')
            .map(PaneId)
            .ok_or_else(|| TmuxError::parse("a pane id %N", s))
    }
}

impl FromStr for WindowId {
    type Err = TmuxError;
    fn from_str(s: &str) -> Result<Self, TmuxError> {
        parse_id(s, '@')
            .map(WindowId)
            .ok_or_else(|| TmuxError::parse("a window id @N", s))
    }
}

/// Why a tmux operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TmuxError {
    /// The tmux binary could not be run (not installed, not executable).
    #[error("cannot run {binary}: {source}")]
    Spawn {
        binary: String,
        #[source]
        source: std::io::Error,
    },
    /// No tmux server listens on the socket.
    #[error("no tmux server is running on socket {socket}")]
    NoServer { socket: String },
    /// tmux ran and reported an error; `stderr` is tmux's own message.
    #[error("tmux {command} failed: {stderr}")]
    Command { command: String, stderr: String },
    /// tmux printed something this module cannot read.
    #[error("cannot read tmux output: expected {expected}, got {output:?}")]
    Parse { expected: String, output: String },
    /// tmux printed a layout string this module cannot read.
    #[error("tmux printed an unreadable layout: {0}")]
    Layout(#[from] LayoutParseError),
    /// The grid does not fit the window.
    #[error(transparent)]
    Grid(#[from] LayoutError),
    /// After a window was built or re-laid-out, tmux holds a different layout than the compiled
    /// one (e.g. a pane was closed or added behind our back).
    #[error(
        "window {window} does not hold the expected layout: expected {expected}, tmux has {found}"
    )]
    LayoutMismatch {
        window: WindowId,
        expected: String,
        found: String,
    },
    /// The control-mode client has exited (the server or session went away).
    #[error("the tmux control-mode client has exited")]
    ControlClosed,
    /// tmux did not answer a control-mode command in time (a lost reply must not hang us).
    #[error("tmux did not answer `{command}` within {seconds} s")]
    ControlTimeout { command: String, seconds: u64 },
}

impl TmuxError {
    /// Whether the error says the session asked for is not there: tmux names it missing, the
    /// server holds no session at all (its last one just ended and it has not exited yet: "no
    /// current target", seen in CI right after an attach removed its half-built session), or no
    /// server runs.
    pub fn no_such_session(&self) -> bool {
        match self {
            TmuxError::NoServer { .. } => true,
            TmuxError::Command { stderr, .. } => [
                "can't find session",
                "no current target",
                "no server running",
            ]
            .iter()
            .any(|said| stderr.contains(said)),
            _ => false,
        }
    }

    fn parse(expected: &str, output: &str) -> TmuxError {
        TmuxError::Parse {
            expected: expected.to_string(),
            output: output.to_string(),
        }
    }
}

/// A pane and its geometry, from `list-panes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaneInfo {
    pub id: PaneId,
    /// Position in the window's pane list (from `pane-base-index`).
    pub index: u32,
    pub width: u16,
    pub height: u16,
    pub left: u16,
    pub top: u16,
    pub title: String,
}

/// A window of a session, from `list-windows`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowInfo {
    pub id: WindowId,
    pub name: String,
    pub width: u16,
    pub height: u16,
    /// The session's current window.
    pub active: bool,
}

/// Where an option is set. There is no "global" scope on purpose: we never change the user's
/// defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionScope {
    /// A session option on one session (`set-option -t =NAME`).
    Session(String),
    /// A window option on one window (`set-option -w -t @N`).
    Window(WindowId),
    /// A server option (`set-option -s`); only for servers hms-console started.
    Server,
}

/// A detached session to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub name: String,
    /// The first window's name.
    pub window_name: String,
    /// The size of the session's windows while no client is attached.
    pub width: u16,
    pub height: u16,
    /// The first pane's shell command; `None` runs the default shell.
    pub command: Option<String>,
}

/// One pane of a window to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanePlan {
    /// A shell command, run by tmux through `default-shell -c`.
    pub command: String,
    /// The pane title (shown in the top border).
    pub title: String,
}

/// A whole window to build in one go, see [`TmuxDriver::build_window`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowPlan {
    pub session: String,
    pub name: String,
    /// One pane per layout leaf, in leaf order.
    pub panes: Vec<PanePlan>,
    /// The layout string to apply once all panes exist.
    pub layout: String,
    /// Environment for every pane (`-e NAME=VALUE`).
    pub env: Vec<(String, String)>,
    /// Windows to kill once the new one is complete (the window being replaced).
    pub replace: Vec<WindowId>,
    /// Window options to set as part of the same invocation (e.g. user options `@name` that tag
    /// the window), so nobody ever sees the window without them.
    pub options: Vec<(String, String)>,
}

/// What [`TmuxDriver::build_window`] made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltWindow {
    pub window: WindowId,
    /// The panes in creation order, which is the pane list order and so the leaf order.
    pub panes: Vec<PaneId>,
    /// `#{window_layout}` right after the layout was applied.
    pub layout: String,
}

/// The tmux operations hms-console needs. [`Tmux`] runs them on a real server;
/// [`super::fake::FakeTmux`] keeps an in-memory model for unit tests.
pub trait TmuxDriver: Send + Sync {
    /// The names of the server's sessions; empty when no server runs.
    fn list_sessions(&self) -> impl Future<Output = Result<Vec<String>, TmuxError>> + Send;

    /// Whether a session of exactly this name exists (false when no server runs).
    fn has_session(&self, session: &str) -> impl Future<Output = Result<bool, TmuxError>> + Send;

    /// Creates a detached session (starting the server if needed); returns its first pane.
    fn new_session(
        &self,
        spec: &NewSession,
    ) -> impl Future<Output = Result<PaneId, TmuxError>> + Send;

    /// Creates a window at the session's next free index without selecting it, its first pane
    /// running `command` (the default shell when `None`).
    fn new_window(
        &self,
        session: &str,
        name: &str,
        command: Option<&str>,
    ) -> impl Future<Output = Result<(WindowId, PaneId), TmuxError>> + Send;

    /// Splits `pane` (`below`: top/bottom, else left/right) and starts `command` in the new pane.
    fn split_window(
        &self,
        pane: PaneId,
        below: bool,
        command: Option<&str>,
    ) -> impl Future<Output = Result<PaneId, TmuxError>> + Send;

    /// Builds a whole window: creates it, starts every pane with its command and title, applies
    /// the layout, kills the replaced windows. Does not select the window.
    fn build_window(
        &self,
        plan: &WindowPlan,
    ) -> impl Future<Output = Result<BuiltWindow, TmuxError>> + Send;

    /// The session's windows.
    fn list_windows(
        &self,
        session: &str,
    ) -> impl Future<Output = Result<Vec<WindowInfo>, TmuxError>> + Send;

    /// The window's panes in pane list order.
    fn list_panes(
        &self,
        window: WindowId,
    ) -> impl Future<Output = Result<Vec<PaneInfo>, TmuxError>> + Send;

    /// `#{window_layout}` of a window.
    fn window_layout(
        &self,
        window: WindowId,
    ) -> impl Future<Output = Result<String, TmuxError>> + Send;

    /// Applies a layout string (`select-layout`).
    fn select_layout(
        &self,
        window: WindowId,
        layout: &str,
    ) -> impl Future<Output = Result<(), TmuxError>> + Send;

    /// Makes the window its session's current window.
    fn select_window(&self, window: WindowId)
    -> impl Future<Output = Result<(), TmuxError>> + Send;

    /// The visible text of a pane (`capture-pane -p`).
    fn capture_pane(&self, pane: PaneId) -> impl Future<Output = Result<String, TmuxError>> + Send;

    /// Sends keys to a pane: each item is a key name (`Enter`, `C-c`) or literal text.
    fn send_keys(
        &self,
        pane: PaneId,
        keys: &[&str],
    ) -> impl Future<Output = Result<(), TmuxError>> + Send;

    /// Sets a pane's title (`select-pane -T`).
    fn set_pane_title(
        &self,
        pane: PaneId,
        title: &str,
    ) -> impl Future<Output = Result<(), TmuxError>> + Send;

    /// Sets an option in one scope.
    fn set_option(
        &self,
        scope: &OptionScope,
        name: &str,
        value: &str,
    ) -> impl Future<Output = Result<(), TmuxError>> + Send;

    /// Sets a hook on one session, e.g. `window-resized` → a tmux command.
    fn set_hook(
        &self,
        session: &str,
        hook: &str,
        command: &str,
    ) -> impl Future<Output = Result<(), TmuxError>> + Send;

    /// Sets a hook on one window (`set-hook -w`). tmux 3.3a has no per-session hook that a
    /// target can name: `set-hook -t SESSION:` lands on the session's current window only.
    fn set_window_hook(
        &self,
        window: WindowId,
        hook: &str,
        command: &str,
    ) -> impl Future<Output = Result<(), TmuxError>> + Send;

    /// Switches the calling client (inside tmux) to a session.
    fn switch_client(&self, session: &str) -> impl Future<Output = Result<(), TmuxError>> + Send;

    /// Kills a window.
    fn kill_window(&self, window: WindowId) -> impl Future<Output = Result<(), TmuxError>> + Send;

    /// Kills a session with every window in it. The default kills its windows one by one (tmux
    /// ends a session with its last window); [`Tmux`] runs `kill-session`.
    fn kill_session(&self, session: &str) -> impl Future<Output = Result<(), TmuxError>> + Send {
        async move {
            for window in self.list_windows(session).await? {
                self.kill_window(window.id).await?;
            }
            Ok(())
        }
    }

    /// Restarts every dead pane of the session with the command it was started with
    /// (`respawn-pane`); returns how many.
    fn respawn_dead_panes(
        &self,
        session: &str,
    ) -> impl Future<Output = Result<usize, TmuxError>> + Send;

    /// Kills the whole server on this socket (tests and `hms-console down` on a private socket).
    fn kill_server(&self) -> impl Future<Output = Result<(), TmuxError>> + Send;
}
