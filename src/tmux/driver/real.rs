//! [`Tmux`]: the [`TmuxDriver`] over the `tmux` binary, one server chosen by its socket name.
//!
//! Each call is one `tmux` process; a whole window is one chained invocation ([`chain`]). Output
//! is read through fixed `-F` formats. This file must not decide layouts or what a pane runs: it
//! carries out what [`TmuxDriver`] asks, and nothing else.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::debug;

use super::{
    BuiltWindow, NewSession, OptionScope, PaneId, PaneInfo, SOCKET_ENV, TmuxDriver, TmuxError,
    WindowId, WindowInfo, WindowPlan,
};

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
        // A server that is exiting (its last session was just killed) answers with the last two.
        if stderr.starts_with("no server running")
            || stderr.starts_with("error connecting to")
            || stderr.starts_with("server exited unexpectedly")
            || stderr.starts_with("lost server")
        {
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
            Err(e) if e.no_such_session() => Ok(false),
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
        // After the last window: a new window never lands before the ones the operator knows.
        let mut new_window = strings([
            "new-window",
            "-d",
            "-a",
            "-t",
            &format!("{session}:{{end}}"),
        ]);
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
        // A replaced window's place goes to the new one (a swap that leaves the current window
        // current), so replacing keeps the window order and never moves the focus.
        for (i, old) in plan.replace.iter().enumerate() {
            if i == 0 {
                commands.push(strings([
                    "swap-window",
                    "-d",
                    "-s",
                    &target,
                    "-t",
                    &old.to_string(),
                ]));
            }
            commands.push(strings(["kill-window", "-t", &old.to_string()]));
        }
        // `select-pane -T` above makes the new window current; give the focus back to the
        // window that had it (or to the new one, when it replaced the current window: selected
        // before the rename below, while its temporary name still finds it).
        let current = self
            .run_args(&[
                "display-message",
                "-p",
                "-t",
                &format!("{session}:"),
                "#{window_id}",
            ])
            .await
            .ok()
            .and_then(|id| id.trim().parse::<WindowId>().ok());
        match current {
            Some(id) if plan.replace.contains(&id) => {
                commands.push(strings(["select-window", "-t", &target]));
                commands.push(strings(["rename-window", "-t", &target, &plan.name]));
            }
            Some(id) => {
                commands.push(strings(["rename-window", "-t", &target, &plan.name]));
                commands.push(strings(["select-window", "-t", &id.to_string()]));
            }
            None => commands.push(strings(["rename-window", "-t", &target, &plan.name])),
        }
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

    async fn set_window_hook(
        &self,
        window: WindowId,
        hook: &str,
        command: &str,
    ) -> Result<(), TmuxError> {
        self.run_args(&["set-hook", "-w", "-t", &window.to_string(), hook, command])
            .await
            .map(drop)
    }

    async fn kill_window(&self, window: WindowId) -> Result<(), TmuxError> {
        self.run_args(&["kill-window", "-t", &window.to_string()])
            .await
            .map(drop)
    }

    async fn kill_session(&self, session: &str) -> Result<(), TmuxError> {
        self.run_args(&["kill-session", "-t", &exact_session(session)])
            .await
            .map(drop)
    }

    async fn respawn_dead_panes(&self, session: &str) -> Result<usize, TmuxError> {
        let listing = self
            .run_args(&[
                "list-panes",
                "-s",
                "-t",
                &exact_session(session),
                "-F",
                "#{pane_dead} #{pane_id}",
            ])
            .await?;
        let mut respawned = 0;
        for line in listing.lines() {
            if let Some(pane) = line.strip_prefix("1 ") {
                self.run_args(&["respawn-pane", "-t", pane]).await?;
                respawned += 1;
            }
        }
        Ok(respawned)
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

#[cfg(test)]
mod tests {
    use super::*;

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
