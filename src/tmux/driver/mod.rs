//! The tmux driver: the [`TmuxDriver`] trait, [`Tmux`] (its implementation over the `tmux`
//! binary) and the helpers the CLI and the core call: [`ensure_session`], [`build_window`] and
//! [`reapply`].
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
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::debug;

use super::layout::{Grid, LayoutCell, LayoutError, LayoutParseError, Panel, compile};

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

    /// Switches the calling client (inside tmux) to a session.
    fn switch_client(&self, session: &str) -> impl Future<Output = Result<(), TmuxError>> + Send;

    /// Kills a window.
    fn kill_window(&self, window: WindowId) -> impl Future<Output = Result<(), TmuxError>> + Send;

    /// Kills the whole server on this socket (tests and `hms-console down` on a private socket).
    fn kill_server(&self) -> impl Future<Output = Result<(), TmuxError>> + Send;
}

/// The tmux server on one socket, driven through the `tmux` binary.
#[derive(Debug, Clone)]
pub struct Tmux {
    binary: PathBuf,
    socket: Option<String>,
    config: Option<PathBuf>,
}

/// Makes temporary window names unique within this process.
static BUILD_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Tmux {
    /// The server named by `HMS_TMUX_SOCKET`, else the user's default server.
    pub fn from_env() -> Tmux {
        match std::env::var(SOCKET_ENV) {
            Ok(name) if !name.is_empty() => Tmux::with_socket(name),
            _ => Tmux::default_server(),
        }
    }

    /// The server on socket `name` (`tmux -L name`).
    pub fn with_socket(name: impl Into<String>) -> Tmux {
        Tmux {
            binary: PathBuf::from("tmux"),
            socket: Some(name.into()),
            config: None,
        }
    }

    /// The user's default server.
    pub fn default_server() -> Tmux {
        Tmux {
            binary: PathBuf::from("tmux"),
            socket: None,
            config: None,
        }
    }

    /// The config file a server started by this driver reads (`tmux -f`); tests pass `/dev/null`
    /// so a user's `~/.tmux.conf` cannot change what they measure.
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Tmux {
        self.config = Some(path.into());
        self
    }

    /// The tmux binary to run (default `tmux` from `PATH`).
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Tmux {
        self.binary = path.into();
        self
    }

    /// The socket name, `None` for the default server.
    pub fn socket(&self) -> Option<&str> {
        self.socket.as_deref()
    }

    /// The global arguments (`-L`, `-f`) that select this server.
    pub fn server_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(socket) = &self.socket {
            args.extend(["-L".to_string(), socket.clone()]);
        }
        if let Some(config) = &self.config {
            args.extend(["-f".to_string(), config.display().to_string()]);
        }
        args
    }

    /// A command that attaches the terminal to a session, for the CLI to run with inherited
    /// stdio (it needs the terminal, so it is a std command).
    pub fn attach_command(&self, session: &str) -> std::process::Command {
        let mut cmd = std::process::Command::new(&self.binary);
        cmd.args(self.server_args())
            .args(["attach-session", "-t", &exact_session(session)]);
        cmd
    }

    /// A tokio command for this server with the global arguments set; used by the control-mode
    /// client.
    pub fn command(&self) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.binary);
        cmd.args(self.server_args());
        cmd
    }

    fn socket_label(&self) -> String {
        self.socket.clone().unwrap_or_else(|| "default".to_string())
    }

    /// Runs one tmux invocation: one command, or several joined by [`chain`].
    pub async fn run(&self, args: &[String]) -> Result<String, TmuxError> {
        let output = self
            .command()
            .args(args)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|source| TmuxError::Spawn {
                binary: self.binary.display().to_string(),
                source,
            })?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if output.status.success() {
            return Ok(stdout);
        }
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
        if stderr.starts_with("no server running") || stderr.starts_with("error connecting to") {
            return Err(TmuxError::NoServer {
                socket: self.socket_label(),
            });
        }
        Err(TmuxError::Command {
            command: args.first().cloned().unwrap_or_default(),
            stderr,
        })
    }

    async fn run_args(&self, args: &[&str]) -> Result<String, TmuxError> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        self.run(&args).await
    }
}

/// Joins tmux commands into the arguments of one invocation (`cmd1 \; cmd2`). An argument that
/// itself ends in `;` gets its `;` escaped, since tmux would take it for a separator.
pub fn chain(commands: &[Vec<String>]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, command) in commands.iter().enumerate() {
        if i > 0 {
            out.push(";".to_string());
        }
        for arg in command {
            match arg.strip_suffix(';') {
                Some(head) => out.push(format!("{head}\\;")),
                None => out.push(arg.clone()),
            }
        }
    }
    out
}

/// `=NAME`: an exact session match (a bare name would also match by prefix).
fn exact_session(session: &str) -> String {
    format!("={session}")
}

fn strings<const N: usize>(args: [&str; N]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

fn parse_u16(s: Option<&str>, what: &str, line: &str) -> Result<u16, TmuxError> {
    s.and_then(|s| s.parse().ok())
        .ok_or_else(|| TmuxError::parse(what, line))
}

const PANE_FORMAT: &str =
    "#{pane_id} #{pane_index} #{pane_width} #{pane_height} #{pane_left} #{pane_top} #{pane_title}";

fn parse_pane(line: &str) -> Result<PaneInfo, TmuxError> {
    let mut f = line.splitn(7, ' ');
    let id = f
        .next()
        .ok_or_else(|| TmuxError::parse("a pane line", line))?
        .parse()?;
    let index = f
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| TmuxError::parse("a pane index", line))?;
    Ok(PaneInfo {
        id,
        index,
        width: parse_u16(f.next(), "a pane width", line)?,
        height: parse_u16(f.next(), "a pane height", line)?,
        left: parse_u16(f.next(), "a pane left", line)?,
        top: parse_u16(f.next(), "a pane top", line)?,
        title: f.next().unwrap_or("").to_string(),
    })
}

const WINDOW_FORMAT: &str =
    "#{window_id} #{window_width} #{window_height} #{window_active} #{window_name}";

fn parse_window(line: &str) -> Result<WindowInfo, TmuxError> {
    let mut f = line.splitn(5, ' ');
    let id = f
        .next()
        .ok_or_else(|| TmuxError::parse("a window line", line))?
        .parse()?;
    Ok(WindowInfo {
        id,
        width: parse_u16(f.next(), "a window width", line)?,
        height: parse_u16(f.next(), "a window height", line)?,
        active: f.next() == Some("1"),
        name: f.next().unwrap_or("").to_string(),
    })
}

impl TmuxDriver for Tmux {
    async fn list_sessions(&self) -> Result<Vec<String>, TmuxError> {
        match self
            .run_args(&["list-sessions", "-F", "#{session_name}"])
            .await
        {
            Ok(out) => Ok(out.lines().map(str::to_string).collect()),
            Err(TmuxError::NoServer { .. }) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    async fn has_session(&self, session: &str) -> Result<bool, TmuxError> {
        match self
            .run_args(&["has-session", "-t", &exact_session(session)])
            .await
        {
            Ok(_) => Ok(true),
            Err(TmuxError::NoServer { .. }) => Ok(false),
            Err(TmuxError::Command { stderr, .. }) if stderr.starts_with("can't find session") => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    async fn new_session(&self, spec: &NewSession) -> Result<PaneId, TmuxError> {
        let (w, h) = (spec.width.to_string(), spec.height.to_string());
        let mut args = strings(["new-session", "-d", "-P", "-F", "#{pane_id}"]);
        args.extend(strings(["-s", &spec.name, "-n", &spec.window_name]));
        args.extend(strings(["-x", &w, "-y", &h]));
        args.extend(spec.command.clone());
        self.run(&args).await?.trim().parse()
    }

    async fn new_window(
        &self,
        session: &str,
        name: &str,
        command: Option<&str>,
    ) -> Result<(WindowId, PaneId), TmuxError> {
        let target = format!("{}:", exact_session(session));
        let mut args = strings(["new-window", "-d", "-t", &target, "-n", name]);
        args.extend(strings(["-P", "-F", "#{window_id} #{pane_id}"]));
        args.extend(command.map(str::to_string));
        let out = self.run(&args).await?;
        let (w, p) = out
            .trim()
            .split_once(' ')
            .ok_or_else(|| TmuxError::parse("@W %P", &out))?;
        Ok((w.parse()?, p.parse()?))
    }

    async fn split_window(
        &self,
        pane: PaneId,
        below: bool,
        command: Option<&str>,
    ) -> Result<PaneId, TmuxError> {
        let target = pane.to_string();
        let direction = if below { "-v" } else { "-h" };
        let mut args = strings(["split-window", direction, "-t", &target]);
        args.extend(strings(["-P", "-F", "#{pane_id}"]));
        args.extend(command.map(str::to_string));
        self.run(&args).await?.trim().parse()
    }

    async fn build_window(&self, plan: &WindowPlan) -> Result<BuiltWindow, TmuxError> {
        // The window is addressed by a temporary unique name until it is complete: ids are not
        // known inside the one invocation, and the real name may belong to the window being
        // replaced.
        let temp = format!(
            "hms-build-{}-{}",
            std::process::id(),
            BUILD_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let session = exact_session(&plan.session);
        let target = format!("{session}:={temp}");
        let env: Vec<String> = plan
            .env
            .iter()
            .flat_map(|(k, v)| ["-e".to_string(), format!("{k}={v}")])
            .collect();
        let mut commands: Vec<Vec<String>> = Vec::new();
        let Some((first, rest)) = plan.panes.split_first() else {
            return Err(TmuxError::parse("at least one pane", "an empty plan"));
        };
        let mut new_window = strings(["new-window", "-d", "-t", &format!("{session}:")]);
        new_window.extend(strings([
            "-n",
            &temp,
            "-P",
            "-F",
            "W #{window_id} #{pane_id}",
        ]));
        new_window.extend(env.iter().cloned());
        new_window.push(first.command.clone());
        commands.push(new_window);
        // Set before the panes start so a panel that dies at once leaves its pane (and the grid).
        commands.push(strings([
            "set-option",
            "-w",
            "-t",
            &target,
            "remain-on-exit",
            "on",
        ]));
        commands.push(strings([
            "set-option",
            "-w",
            "-t",
            &target,
            "pane-border-status",
            "top",
        ]));
        commands.push(strings([
            "set-option",
            "-w",
            "-t",
            &target,
            "pane-border-format",
            " #{pane_title} ",
        ]));
        for (name, value) in &plan.options {
            commands.push(strings(["set-option", "-w", "-t", &target, name, value]));
        }
        commands.push(strings(["select-pane", "-t", &target, "-T", &first.title]));
        for pane in rest {
            // Splitting the active pane (the newest) keeps the pane list in creation order;
            // re-tiling after each split keeps every pane big enough to be split again.
            let mut split = strings(["split-window", "-t", &target, "-P", "-F", "P #{pane_id}"]);
            split.extend(env.iter().cloned());
            split.push(pane.command.clone());
            commands.push(split);
            commands.push(strings(["select-layout", "-t", &target, "tiled"]));
            commands.push(strings(["select-pane", "-t", &target, "-T", &pane.title]));
        }
        commands.push(strings(["select-layout", "-t", &target, &plan.layout]));
        commands.push(strings([
            "display-message",
            "-p",
            "-t",
            &target,
            "L #{window_layout}",
        ]));
        for old in &plan.replace {
            commands.push(strings(["kill-window", "-t", &old.to_string()]));
        }
        commands.push(strings(["rename-window", "-t", &target, &plan.name]));
        let out = match self.run(&chain(&commands)).await {
            Ok(out) => out,
            Err(e) => {
                // tmux stops a chain at the first failing command: do not leave a half-built
                // window behind under its temporary name.
                let _ = self.run(&strings(["kill-window", "-t", &target])).await;
                return Err(e);
            }
        };
        let mut window = None;
        let mut panes = Vec::with_capacity(plan.panes.len());
        let mut layout = None;
        for line in out.lines() {
            match line.split_once(' ') {
                Some(("W", rest)) => {
                    let (w, p) = rest
                        .split_once(' ')
                        .ok_or_else(|| TmuxError::parse("W @W %P", line))?;
                    window = Some(w.parse()?);
                    panes.push(p.parse()?);
                }
                Some(("P", p)) => panes.push(p.parse()?),
                Some(("L", l)) => layout = Some(l.to_string()),
                _ => debug!(line, "unexpected tmux output while building a window"),
            }
        }
        match (window, layout) {
            (Some(window), Some(layout)) => Ok(BuiltWindow {
                window,
                panes,
                layout,
            }),
            _ => Err(TmuxError::parse("window id and layout", &out)),
        }
    }

    async fn list_windows(&self, session: &str) -> Result<Vec<WindowInfo>, TmuxError> {
        let out = self
            .run_args(&[
                "list-windows",
                "-t",
                &exact_session(session),
                "-F",
                WINDOW_FORMAT,
            ])
            .await?;
        out.lines().map(parse_window).collect()
    }

    async fn list_panes(&self, window: WindowId) -> Result<Vec<PaneInfo>, TmuxError> {
        let out = self
            .run_args(&["list-panes", "-t", &window.to_string(), "-F", PANE_FORMAT])
            .await?;
        out.lines().map(parse_pane).collect()
    }

    async fn window_layout(&self, window: WindowId) -> Result<String, TmuxError> {
        let out = self
            .run_args(&[
                "display-message",
                "-p",
                "-t",
                &window.to_string(),
                "#{window_layout}",
            ])
            .await?;
        Ok(out.trim().to_string())
    }

    async fn select_layout(&self, window: WindowId, layout: &str) -> Result<(), TmuxError> {
        self.run_args(&["select-layout", "-t", &window.to_string(), layout])
            .await
            .map(drop)
    }

    async fn select_window(&self, window: WindowId) -> Result<(), TmuxError> {
        self.run_args(&["select-window", "-t", &window.to_string()])
            .await
            .map(drop)
    }

    async fn capture_pane(&self, pane: PaneId) -> Result<String, TmuxError> {
        self.run_args(&["capture-pane", "-p", "-t", &pane.to_string()])
            .await
    }

    async fn send_keys(&self, pane: PaneId, keys: &[&str]) -> Result<(), TmuxError> {
        let mut args = strings(["send-keys", "-t", &pane.to_string()]);
        args.extend(keys.iter().map(|k| k.to_string()));
        self.run(&args).await.map(drop)
    }

    async fn set_pane_title(&self, pane: PaneId, title: &str) -> Result<(), TmuxError> {
        self.run_args(&["select-pane", "-t", &pane.to_string(), "-T", title])
            .await
            .map(drop)
    }

    async fn set_option(
        &self,
        scope: &OptionScope,
        name: &str,
        value: &str,
    ) -> Result<(), TmuxError> {
        let args = match scope {
            // -t is a pane target in 3.3a: `=NAME:` names the session exactly.
            OptionScope::Session(s) => strings([
                "set-option",
                "-t",
                &format!("{}:", exact_session(s)),
                name,
                value,
            ]),
            OptionScope::Window(w) => {
                strings(["set-option", "-w", "-t", &w.to_string(), name, value])
            }
            OptionScope::Server => strings(["set-option", "-s", name, value]),
        };
        self.run(&args).await.map(drop)
    }

    async fn set_hook(&self, session: &str, hook: &str, command: &str) -> Result<(), TmuxError> {
        // -t is a pane target in 3.3a; `=NAME:` resolves to the session, and without -w/-p
        // the hook is set among that session's options.
        let target = format!("{}:", exact_session(session));
        self.run_args(&["set-hook", "-t", &target, hook, command])
            .await
            .map(drop)
    }

    async fn switch_client(&self, session: &str) -> Result<(), TmuxError> {
        self.run_args(&["switch-client", "-t", &exact_session(session)])
            .await
            .map(drop)
    }

    async fn kill_window(&self, window: WindowId) -> Result<(), TmuxError> {
        self.run_args(&["kill-window", "-t", &window.to_string()])
            .await
            .map(drop)
    }

    async fn kill_server(&self) -> Result<(), TmuxError> {
        let path = match self
            .run_args(&["display-message", "-p", "#{socket_path}"])
            .await
        {
            Ok(path) => path.trim().to_string(),
            Err(TmuxError::NoServer { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        match self.run_args(&["kill-server"]).await {
            Ok(_) | Err(TmuxError::NoServer { .. }) => {}
            Err(e) => return Err(e),
        }
        // tmux 3.3a leaves the socket file behind; a private socket's file is ours to remove.
        if self.socket.is_some() && !path.is_empty() {
            let _ = tokio::fs::remove_file(&path).await;
        }
        Ok(())
    }
}

/// Whether [`ensure_session`] made the session or found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// The session was created (and, if the server was new, the server too).
    Created,
    /// The session existed already and was left as it was.
    Reused,
}

/// Returns the session of `spec.name`, creating it only if it does not exist: running `attach`
/// twice never makes a second session. When the session is created on a server that had no
/// sessions (so hms-console started it), `escape-time` is set to 10 ms there: it is a server
/// option in tmux 3.3a, and we never change it on a server the user already runs.
pub async fn ensure_session<D: TmuxDriver>(
    driver: &D,
    spec: &NewSession,
) -> Result<SessionState, TmuxError> {
    let sessions = driver.list_sessions().await?;
    if sessions.contains(&spec.name) {
        return Ok(SessionState::Reused);
    }
    match driver.new_session(spec).await {
        Ok(_) => {}
        // Another `attach` created it between our look and our create.
        Err(TmuxError::Command { stderr, .. }) if stderr.starts_with("duplicate session") => {
            return Ok(SessionState::Reused);
        }
        Err(e) => return Err(e),
    }
    if sessions.is_empty() {
        driver
            .set_option(&OptionScope::Server, "escape-time", "10")
            .await?;
    }
    Ok(SessionState::Created)
}

/// A window built from a grid, and which pane shows which panel: what [`reapply`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedWindow {
    pub window: WindowId,
    pub session: String,
    pub name: String,
    /// The grid, with components bound.
    pub grid: Grid,
    /// `(pane, index into grid.panels())`, in leaf (= pane list) order.
    pub panes: Vec<(PaneId, usize)>,
}

impl ManagedWindow {
    /// The pane showing the first panel of `kind` (e.g. the actions pane).
    pub fn pane_of_kind(&self, kind: crate::model::PanelKind) -> Option<PaneId> {
        self.panes
            .iter()
            .find(|(_, i)| self.grid.panels()[*i].kind == kind)
            .map(|(p, _)| *p)
    }

    /// Given the window's current `#{window_layout}` (e.g. from a `%layout-change`
    /// notification), the layout string to apply so the grid is exact again, or `None` when it
    /// already is (so re-applying on every layout change cannot loop).
    pub fn layout_to_apply(&self, current: &str) -> Result<Option<String>, TmuxError> {
        let current = LayoutCell::parse(current)?;
        let leaves = current.leaves();
        if leaves.len() != self.panes.len() {
            return Err(TmuxError::LayoutMismatch {
                window: self.window,
                expected: format!("{} panes", self.panes.len()),
                found: format!("{} panes", leaves.len()),
            });
        }
        let compiled = compile(&self.grid, current.rect.width, current.rect.height)?;
        if compiled.root().same_shape(&current) {
            return Ok(None);
        }
        let ids: Vec<u32> = self.panes.iter().map(|(p, _)| p.0).collect();
        Ok(Some(compiled.layout_string_with_ids(&ids)))
    }
}

/// Builds (or replaces) the window `window_name` in `session` from a grid: every pane starts
/// with `pane_command(panel)` and is titled with the panel's title, in one tmux invocation.
/// A window of the same name is replaced once the new one is complete. The window is not
/// selected; call [`TmuxDriver::select_window`] to show it.
///
/// The layout is compiled for the size of the session's current window (the size a new window
/// gets); if tmux gives the window another size, it is compiled again for that size.
pub async fn build_window<D: TmuxDriver>(
    driver: &D,
    session: &str,
    window_name: &str,
    grid: &Grid,
    pane_command: impl Fn(&Panel) -> String,
) -> Result<ManagedWindow, TmuxError> {
    build_window_with_options(driver, session, window_name, grid, &[], pane_command).await
}

/// [`build_window`], also setting `options` on the new window in the same tmux invocation.
pub async fn build_window_with_options<D: TmuxDriver>(
    driver: &D,
    session: &str,
    window_name: &str,
    grid: &Grid,
    options: &[(String, String)],
    pane_command: impl Fn(&Panel) -> String,
) -> Result<ManagedWindow, TmuxError> {
    let windows = driver.list_windows(session).await?;
    let (width, height) = windows
        .iter()
        .find(|w| w.active)
        .or(windows.first())
        .map(|w| (w.width, w.height))
        .unwrap_or((80, 24));
    let compiled = compile(grid, width, height)?;
    let plan = WindowPlan {
        session: session.to_string(),
        name: window_name.to_string(),
        panes: compiled
            .leaf_panels()
            .iter()
            .map(|&i| {
                let panel = &grid.panels()[i];
                PanePlan {
                    command: pane_command(panel),
                    title: panel.display_title(),
                }
            })
            .collect(),
        layout: compiled.layout_string(),
        env: Vec::new(),
        replace: windows
            .iter()
            .filter(|w| w.name == window_name)
            .map(|w| w.id)
            .collect(),
        options: options.to_vec(),
    };
    let built = driver.build_window(&plan).await?;
    let managed = ManagedWindow {
        window: built.window,
        session: session.to_string(),
        name: window_name.to_string(),
        grid: grid.clone(),
        panes: built
            .panes
            .iter()
            .copied()
            .zip(compiled.leaf_panels().iter().copied())
            .collect(),
    };
    // tmux hands panes to leaves in pane list order; check it gave them in creation order, so
    // each panel process sits in its own panel's cell.
    let readback = LayoutCell::parse(&built.layout)?;
    let leaf_ids: Vec<u32> = readback.leaves().iter().filter_map(|(_, id)| *id).collect();
    let created: Vec<u32> = built.panes.iter().map(|p| p.0).collect();
    if leaf_ids != created {
        return Err(TmuxError::LayoutMismatch {
            window: built.window,
            expected: format!("panes {created:?} in leaf order"),
            found: built.layout,
        });
    }
    if let Some(layout) = managed.layout_to_apply(&built.layout)? {
        driver.select_layout(built.window, &layout).await?;
    }
    Ok(managed)
}

/// Re-lays-out a managed window for its current size (after a resize); returns whether a new
/// layout was applied.
pub async fn reapply<D: TmuxDriver>(driver: &D, window: &ManagedWindow) -> Result<bool, TmuxError> {
    let current = driver.window_layout(window.window).await?;
    match window.layout_to_apply(&current)? {
        Some(layout) => {
            driver.select_layout(window.window, &layout).await?;
            Ok(true)
        }
        None => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PanelKind;
    use crate::tmux::fake::FakeTmux;

    fn session(name: &str) -> NewSession {
        NewSession {
            name: name.into(),
            window_name: "main".into(),
            width: 120,
            height: 40,
            command: None,
        }
    }

    fn panel_command(p: &Panel) -> String {
        format!("hms-console panel {}", p.kind.name())
    }

    #[tokio::test]
    async fn ensure_session_creates_once_then_reuses() {
        let fake = FakeTmux::new();
        assert_eq!(
            ensure_session(&fake, &session("hms")).await.unwrap(),
            SessionState::Created
        );
        assert_eq!(
            ensure_session(&fake, &session("hms")).await.unwrap(),
            SessionState::Reused
        );
        assert_eq!(fake.state().sessions.len(), 1);
    }

    #[tokio::test]
    async fn escape_time_is_set_only_on_a_server_we_started() {
        let fake = FakeTmux::new();
        ensure_session(&fake, &session("users")).await.unwrap();
        assert_eq!(fake.state().server_options.len(), 1);
        ensure_session(&fake, &session("hms")).await.unwrap();
        // The second session joined a server that already had one: leave its options alone.
        assert_eq!(fake.state().server_options.len(), 1);
    }

    #[tokio::test]
    async fn build_window_maps_each_pane_to_its_panel() {
        let fake = FakeTmux::new();
        ensure_session(&fake, &session("hms")).await.unwrap();
        let grid = Grid::custom(3, 3, &["a".into(), "b".into(), "c".into()]).unwrap();
        let w = build_window(&fake, "hms", "overview", &grid, panel_command)
            .await
            .unwrap();
        assert_eq!(w.panes.len(), 5);
        let state = fake.state();
        let window = state.sessions[0]
            .windows
            .iter()
            .find(|x| x.id == w.window)
            .unwrap();
        for (pane, panel) in &w.panes {
            let fp = window.panes.iter().find(|p| p.id == *pane).unwrap();
            let panel = &grid.panels()[*panel];
            assert_eq!(fp.command.as_deref(), Some(panel_command(panel).as_str()));
            assert_eq!(fp.title, panel.display_title());
        }
        assert_eq!(
            w.pane_of_kind(PanelKind::Actions),
            Some(w.panes[4].0),
            "the actions row is the last leaf"
        );
        // The window holds the compiled layout for its size, with the real pane ids.
        let compiled = compile(&grid, 120, 40).unwrap();
        let ids: Vec<u32> = w.panes.iter().map(|(p, _)| p.0).collect();
        assert_eq!(window.layout, compiled.layout_string_with_ids(&ids));
    }

    #[tokio::test]
    async fn build_window_replaces_a_window_of_the_same_name() {
        let fake = FakeTmux::new();
        ensure_session(&fake, &session("hms")).await.unwrap();
        let grid = Grid::two_by_two("api");
        let first = build_window(&fake, "hms", "api", &grid, panel_command)
            .await
            .unwrap();
        let second = build_window(&fake, "hms", "api", &grid, panel_command)
            .await
            .unwrap();
        let names: Vec<(WindowId, String)> = fake.state().sessions[0]
            .windows
            .iter()
            .map(|w| (w.id, w.name.clone()))
            .collect();
        assert!(!names.iter().any(|(id, _)| *id == first.window));
        assert_eq!(names.iter().filter(|(_, n)| n == "api").count(), 1);
        assert!(names.iter().any(|(id, _)| *id == second.window));
    }

    #[tokio::test]
    async fn reapply_restores_the_grid_after_a_resize_and_then_does_nothing() {
        let fake = FakeTmux::new();
        ensure_session(&fake, &session("hms")).await.unwrap();
        let grid = Grid::custom(3, 3, &[]).unwrap();
        let w = build_window(&fake, "hms", "overview", &grid, panel_command)
            .await
            .unwrap();
        fake.resize_window(w.window, 200, 50);
        assert!(reapply(&fake, &w).await.unwrap());
        let ids: Vec<u32> = w.panes.iter().map(|(p, _)| p.0).collect();
        let expected = compile(&grid, 200, 50)
            .unwrap()
            .layout_string_with_ids(&ids);
        assert_eq!(fake.window_layout(w.window).await.unwrap(), expected);
        assert!(!reapply(&fake, &w).await.unwrap(), "already exact");
    }

    #[tokio::test]
    async fn layout_to_apply_refuses_a_window_whose_panes_changed() {
        let fake = FakeTmux::new();
        ensure_session(&fake, &session("hms")).await.unwrap();
        let grid = Grid::two_by_two("api");
        let w = build_window(&fake, "hms", "api", &grid, panel_command)
            .await
            .unwrap();
        fake.split_window(w.panes[0].0, true, None).await.unwrap();
        let err = reapply(&fake, &w).await.unwrap_err();
        assert!(matches!(err, TmuxError::LayoutMismatch { .. }), "{err}");
    }

    #[test]
    fn chain_separates_commands_and_escapes_trailing_semicolons() {
        let commands = vec![
            strings(["new-window", "sh -c 'echo a; sleep 1'"]),
            strings(["display-message", "-p", "done;"]),
        ];
        assert_eq!(
            chain(&commands),
            strings([
                "new-window",
                "sh -c 'echo a; sleep 1'",
                ";",
                "display-message",
                "-p",
                "done\\;"
            ])
        );
    }

    #[test]
    fn list_formats_parse() {
        assert_eq!(
            parse_pane("%3 1 40 12 41 0 Component Logs").unwrap(),
            PaneInfo {
                id: PaneId(3),
                index: 1,
                width: 40,
                height: 12,
                left: 41,
                top: 0,
                title: "Component Logs".into()
            }
        );
        assert_eq!(
            parse_window("@2 120 40 1 my window").unwrap(),
            WindowInfo {
                id: WindowId(2),
                name: "my window".into(),
                width: 120,
                height: 40,
                active: true
            }
        );
        assert!(parse_pane("x 1 2").is_err());
        assert_eq!("%12".parse::<PaneId>().unwrap(), PaneId(12));
        assert!("12".parse::<PaneId>().is_err());
    }
}
