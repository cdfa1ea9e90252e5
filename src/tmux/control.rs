//! A tmux control-mode client (`tmux -L NAME -C attach -t SESSION` as a child process): pushed
//! notifications (`%layout-change`, `%window-add`, `%exit`, …) as a stream, and commands whose
//! replies come back framed by `%begin` / `%end` (or `%error`).
//!
//! One such client in the core replaces polling: it learns of resizes from `%layout-change` and
//! answers queries without a fork per query. It asks tmux not to send pane output
//! (`attach-session -f no-output`), so its traffic stays small. A control client has no size of
//! its own, so it never changes the size of the windows it watches.
//!
//! This module only frames and parses; deciding what to do about a notification (e.g. re-apply
//! a layout with [`super::driver::ManagedWindow::layout_to_apply`]) is the caller's job.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use super::driver::{PaneId, Tmux, TmuxError, WindowId};

/// A notification pushed by tmux to a control client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// A window's layout changed (split, kill, resize, select-layout).
    LayoutChange {
        window: WindowId,
        layout: String,
        visible_layout: String,
        flags: String,
    },
    /// A window was added to the attached session.
    WindowAdd(WindowId),
    /// A window of the attached session was closed.
    WindowClose(WindowId),
    /// A window was renamed.
    WindowRenamed { window: WindowId, name: String },
    /// A window was added to another session.
    UnlinkedWindowAdd(WindowId),
    /// A window of another session was closed.
    UnlinkedWindowClose(WindowId),
    /// The active pane of a window changed.
    WindowPaneChanged { window: WindowId, pane: PaneId },
    /// The client is now attached to another session (`$N`, name).
    SessionChanged { session: String, name: String },
    /// A session was created or destroyed.
    SessionsChanged,
    /// Pane output (only if output was turned back on); `data` is tmux's octal-escaped text.
    Output { pane: PaneId, data: String },
    /// The client is exiting (the session or server went away, or it was detached).
    Exit { reason: Option<String> },
    /// Any other notification, as tmux sent it.
    Other(String),
}

impl Notification {
    /// Parses one notification line (a line starting with `%` outside a reply block).
    pub fn parse(line: &str) -> Notification {
        let mut words = line.splitn(2, ' ');
        let name = words.next().unwrap_or("");
        let rest = words.next().unwrap_or("");
        let window = |s: &str| s.parse::<WindowId>().ok();
        let other = || Notification::Other(line.to_string());
        match name {
            "%layout-change" => {
                let f: Vec<&str> = rest.splitn(4, ' ').collect();
                match (f.first().and_then(|w| window(w)), f.get(1)) {
                    (Some(window), Some(layout)) => Notification::LayoutChange {
                        window,
                        layout: layout.to_string(),
                        visible_layout: f.get(2).unwrap_or(layout).to_string(),
                        flags: f.get(3).unwrap_or(&"").to_string(),
                    },
                    _ => other(),
                }
            }
            "%window-add" => window(rest).map_or_else(other, Notification::WindowAdd),
            "%window-close" => window(rest).map_or_else(other, Notification::WindowClose),
            "%unlinked-window-add" => {
                window(rest).map_or_else(other, Notification::UnlinkedWindowAdd)
            }
            "%unlinked-window-close" => {
                window(rest).map_or_else(other, Notification::UnlinkedWindowClose)
            }
            "%window-renamed" => match rest
                .split_once(' ')
                .and_then(|(w, n)| Some((window(w)?, n)))
            {
                Some((window, name)) => Notification::WindowRenamed {
                    window,
                    name: name.to_string(),
                },
                None => other(),
            },
            "%window-pane-changed" => match rest
                .split_once(' ')
                .and_then(|(w, p)| Some((window(w)?, p.parse::<PaneId>().ok()?)))
            {
                Some((window, pane)) => Notification::WindowPaneChanged { window, pane },
                None => other(),
            },
            "%session-changed" => match rest.split_once(' ') {
                Some((session, name)) => Notification::SessionChanged {
                    session: session.to_string(),
                    name: name.to_string(),
                },
                None => other(),
            },
            "%sessions-changed" => Notification::SessionsChanged,
            "%output" => match rest
                .split_once(' ')
                .and_then(|(p, d)| Some((p.parse::<PaneId>().ok()?, d)))
            {
                Some((pane, data)) => Notification::Output {
                    pane,
                    data: data.to_string(),
                },
                None => other(),
            },
            "%exit" => Notification::Exit {
                reason: (!rest.is_empty()).then(|| rest.to_string()),
            },
            _ => other(),
        }
    }
}

/// How long a control-mode command may wait for its reply.
const COMMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What the reader makes of one line of control-mode output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A notification outside a reply.
    Notification(Notification),
    /// A complete reply: `ours` is true for commands this client sent (flags 1), false for
    /// blocks tmux sends on its own (the attach itself).
    Reply {
        ours: bool,
        ok: bool,
        lines: Vec<String>,
    },
}

/// Turns control-mode lines into frames; synchronous so it can be tested line by line.
#[derive(Debug, Default)]
pub struct Framer {
    /// The open `%begin` block: its "TIME NUMBER" tag, flags and lines so far.
    block: Option<(String, bool, Vec<String>)>,
}

impl Framer {
    /// Feeds one line (without its newline); returns a frame when one is complete.
    pub fn feed(&mut self, line: &str) -> Option<Frame> {
        if let Some((tag, ours, lines)) = &mut self.block {
            for (guard, ok) in [("%end ", true), ("%error ", false)] {
                if let Some(rest) = line.strip_prefix(guard)
                    && rest.starts_with(tag.as_str())
                {
                    let frame = Frame::Reply {
                        ours: *ours,
                        ok,
                        lines: std::mem::take(lines),
                    };
                    self.block = None;
                    return Some(frame);
                }
            }
            lines.push(line.to_string());
            return None;
        }
        if let Some(rest) = line.strip_prefix("%begin ") {
            let f: Vec<&str> = rest.split(' ').collect();
            let tag = format!("{} {} ", f.first().unwrap_or(&""), f.get(1).unwrap_or(&""));
            self.block = Some((tag, f.get(2) == Some(&"1"), Vec::new()));
            return None;
        }
        if line.starts_with('%') {
            return Some(Frame::Notification(Notification::parse(line)));
        }
        debug!(line, "control-mode line outside a block");
        None
    }
}

/// Quotes one argument for a control-mode command line (tmux command syntax: `{`, `;`, `#`,
/// spaces and quotes are special there).
pub fn quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', r#"'"'"'"#))
}

type Reply = oneshot::Sender<Result<Vec<String>, String>>;

/// A running control-mode client. Dropping it kills the child process.
#[derive(Debug)]
pub struct ControlClient {
    stdin: tokio::sync::Mutex<ChildStdin>,
    /// Waiters for replies, in the order their commands were written; tmux answers a client's
    /// commands in order. A std mutex: held only to push or pop, never across an await.
    pending: Arc<Mutex<VecDeque<Reply>>>,
    child: Child,
}

/// The notifications of a [`ControlClient`]; ends after `%exit` when tmux closes the stream.
#[derive(Debug)]
pub struct Notifications {
    rx: mpsc::UnboundedReceiver<Notification>,
}

impl Notifications {
    /// The next notification, `None` once the client has exited.
    pub async fn next(&mut self) -> Option<Notification> {
        self.rx.recv().await
    }
}

impl futures::Stream for Notifications {
    type Item = Notification;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Notification>> {
        self.rx.poll_recv(cx)
    }
}

impl ControlClient {
    /// Attaches a control client to `session` and turns pane output off.
    pub async fn attach(
        tmux: &Tmux,
        session: &str,
    ) -> Result<(ControlClient, Notifications), TmuxError> {
        let mut child = tmux
            .command()
            // `-f no-output` at attach: asking afterwards with `refresh-client -f no-output`
            // sometimes never got its reply under load (tmux 3.3a).
            .args([
                "-C",
                "attach-session",
                "-f",
                "no-output",
                "-t",
                &format!("={session}"),
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| TmuxError::Spawn {
                binary: "tmux".to_string(),
                source,
            })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(TmuxError::ControlClosed);
        };
        let pending: Arc<Mutex<VecDeque<Reply>>> = Arc::default();
        let (tx, rx) = mpsc::unbounded_channel();
        let (attached_tx, attached) = oneshot::channel();
        tokio::spawn(read_loop(
            BufReader::new(stdout),
            Arc::clone(&pending),
            tx,
            attached_tx,
        ));
        // Commands written before tmux has finished the attach itself fail with "no current
        // client", so wait for the attach's own reply (the first block tmux sends).
        let attached = tokio::time::timeout(COMMAND_TIMEOUT, attached)
            .await
            .map_err(|_| TmuxError::ControlTimeout {
                command: "attach-session".to_string(),
                seconds: COMMAND_TIMEOUT.as_secs(),
            })?;
        match attached {
            Ok(Ok(())) => {}
            Ok(Err(stderr)) => {
                return Err(TmuxError::Command {
                    command: "attach-session".to_string(),
                    stderr,
                });
            }
            Err(_) => return Err(TmuxError::ControlClosed),
        }
        let client = ControlClient {
            stdin: tokio::sync::Mutex::new(stdin),
            pending,
            child,
        };
        Ok((client, Notifications { rx }))
    }

    /// Runs one command line (tmux syntax; quote arguments with [`quote`]) and returns its
    /// output lines. A tmux error comes back as [`TmuxError::Command`].
    pub async fn command(&self, line: &str) -> Result<Vec<String>, TmuxError> {
        if line.contains('\n') {
            return Err(TmuxError::Command {
                command: line.to_string(),
                stderr: "a control-mode command is one line".to_string(),
            });
        }
        let (tx, rx) = oneshot::channel();
        {
            // Hold the writer while queueing so queue order is write order.
            let mut stdin = self.stdin.lock().await;
            self.pending
                .lock()
                .map_err(|_| TmuxError::ControlClosed)?
                .push_back(tx);
            let written = async {
                stdin.write_all(line.as_bytes()).await?;
                stdin.write_all(b"\n").await?;
                stdin.flush().await
            };
            if written.await.is_err() {
                return Err(TmuxError::ControlClosed);
            }
        }
        let answer = match tokio::time::timeout(COMMAND_TIMEOUT, rx).await {
            Ok(answer) => answer,
            Err(_) => {
                return Err(TmuxError::ControlTimeout {
                    command: line.split(' ').next().unwrap_or("").to_string(),
                    seconds: COMMAND_TIMEOUT.as_secs(),
                });
            }
        };
        match answer {
            Ok(Ok(lines)) => Ok(lines),
            Ok(Err(stderr)) => Err(TmuxError::Command {
                command: line.split(' ').next().unwrap_or("").to_string(),
                stderr,
            }),
            Err(_) => Err(TmuxError::ControlClosed),
        }
    }

    /// Detaches: closes tmux's stdin (tmux answers with `%exit`) and waits for the child.
    pub async fn close(mut self) -> Result<(), TmuxError> {
        drop(self.stdin);
        self.child
            .wait()
            .await
            .map(drop)
            .map_err(|_| TmuxError::ControlClosed)
    }
}

async fn read_loop(
    mut stdout: BufReader<tokio::process::ChildStdout>,
    pending: Arc<Mutex<VecDeque<Reply>>>,
    notifications: mpsc::UnboundedSender<Notification>,
    attached: oneshot::Sender<Result<(), String>>,
) {
    let mut attached = Some(attached);
    let mut framer = Framer::default();
    let mut line = String::new();
    loop {
        line.clear();
        match stdout.read_line(&mut line).await {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                warn!(cause = %e, "reading tmux control-mode output");
                break;
            }
        }
        let text = line.trim_end_matches(['\n', '\r']);
        match framer.feed(text) {
            Some(Frame::Notification(n)) => {
                // Nobody listening is fine: the client may be used for commands only.
                let _ = notifications.send(n);
            }
            Some(Frame::Reply {
                ours: true,
                ok,
                lines,
            }) => {
                let waiter = pending.lock().ok().and_then(|mut q| q.pop_front());
                if let Some(waiter) = waiter {
                    let _ = waiter.send(if ok { Ok(lines) } else { Err(lines.join("\n")) });
                }
            }
            Some(Frame::Reply {
                ours: false,
                ok,
                lines,
            }) => {
                if let Some(attached) = attached.take() {
                    let _ = attached.send(if ok { Ok(()) } else { Err(lines.join("\n")) });
                }
            }
            None => {}
        }
    }
    // Wake every waiter with "closed" by dropping their senders.
    if let Ok(mut q) = pending.lock() {
        q.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framer_separates_replies_from_notifications() {
        let mut f = Framer::default();
        assert_eq!(f.feed("%begin 1795606576 324 0"), None);
        assert_eq!(
            f.feed("%end 1795606576 324 0"),
            Some(Frame::Reply {
                ours: false,
                ok: true,
                lines: vec![]
            })
        );
        assert_eq!(
            f.feed("%session-changed $0 t"),
            Some(Frame::Notification(Notification::SessionChanged {
                session: "$0".into(),
                name: "t".into()
            }))
        );
        assert_eq!(f.feed("%begin 1795606576 329 1"), None);
        // A reply line that looks like a notification stays inside the block.
        assert_eq!(f.feed("%layout-change is just text here"), None);
        assert_eq!(f.feed("80x24"), None);
        assert_eq!(
            f.feed("%end 1795606576 329 1"),
            Some(Frame::Reply {
                ours: true,
                ok: true,
                lines: vec!["%layout-change is just text here".into(), "80x24".into()]
            })
        );
        assert_eq!(f.feed("%begin 1795606990 270 1"), None);
        assert_eq!(f.feed("invalid layout: ab,1"), None);
        assert_eq!(
            f.feed("%error 1795606990 270 1"),
            Some(Frame::Reply {
                ours: true,
                ok: false,
                lines: vec!["invalid layout: ab,1".into()]
            })
        );
    }

    #[test]
    fn notifications_parse() {
        assert_eq!(
            Notification::parse("%layout-change @0 aafd,120x40,0,0,0 aafd,120x40,0,0,0 *"),
            Notification::LayoutChange {
                window: WindowId(0),
                layout: "aafd,120x40,0,0,0".into(),
                visible_layout: "aafd,120x40,0,0,0".into(),
                flags: "*".into()
            }
        );
        assert_eq!(
            Notification::parse("%window-add @3"),
            Notification::WindowAdd(WindowId(3))
        );
        assert_eq!(
            Notification::parse("%window-renamed @3 overview"),
            Notification::WindowRenamed {
                window: WindowId(3),
                name: "overview".into()
            }
        );
        assert_eq!(
            Notification::parse("%output %2 hello\\015\\012"),
            Notification::Output {
                pane: PaneId(2),
                data: "hello\\015\\012".into()
            }
        );
        assert_eq!(
            Notification::parse("%exit"),
            Notification::Exit { reason: None }
        );
        assert_eq!(
            Notification::parse("%exit server exited"),
            Notification::Exit {
                reason: Some("server exited".into())
            }
        );
        assert_eq!(
            Notification::parse("%paste-buffer-changed buffer0"),
            Notification::Other("%paste-buffer-changed buffer0".into())
        );
    }

    #[test]
    fn quote_survives_tmux_special_characters() {
        assert_eq!(quote("a{b}[c];#d"), "'a{b}[c];#d'");
        assert_eq!(quote("it's"), r#"'it'"'"'s'"#);
    }
}
