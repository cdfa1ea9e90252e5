//! Starting and stopping one component's process, and capturing its output.
//!
//! Each child runs in its own process group, so a stop reaches its grandchildren too, and carries the
//! core's id in `HMS_CORE_ID`, so that if the core is killed the reaper ([`super::orphans`]) finds and
//! kills everything it started. No `pre_exec` hook is used: that keeps std on its `posix_spawn`
//! (vfork) path, several times faster than fork + exec, which is most of the restart latency. This
//! module holds no supervision state: it spawns, signals and reads pipes, and reports to its caller.

use std::os::fd::OwnedFd;
use std::process::Stdio;
use std::sync::Arc;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};
use tokio::net::unix::pipe;
use tokio::process::{Child, Command};

use crate::config::ComponentSpec;
use crate::model::LogStream;

use super::logs::{LogSink, MAX_LOG_LINE};

/// The environment variable every child gets with the id of the core that started it; the orphan
/// sweep looks for it.
pub const CORE_ID_ENV: &str = "HMS_CORE_ID";
/// The environment variable every child gets with its component name.
pub const COMPONENT_ENV: &str = "HMS_COMPONENT";

/// The read buffer of each output pipe, made when the pipe first has something to read (see
/// [`OutputPipe`]) and kept while the component runs. At tokio's default of 8 kB, zero-filled at
/// start, two per component were 1.6 MB of an idle core with 100 components (issue 12). A longer
/// line takes several reads and is joined as before.
const PIPE_BUFFER: usize = 2048;

/// A freshly started child.
pub struct Spawned {
    /// Waited for on the runtime that spawned it (a pidfd registered with that runtime).
    pub child: Child,
    pub pid: u32,
    /// The read ends of the child's stdout and stderr, not yet registered with any runtime: see
    /// [`Spawned::read_output`].
    output: Vec<(std::io::PipeReader, LogStream)>,
}

impl Spawned {
    /// Hands the child's output pipes to tasks on `io` (the core's shared runtime), which copy
    /// each line to `sink`; `on_line` sees each line first (the healing engine uses it for log
    /// patterns). The pipes are registered with `io`'s reactor, not the spawning thread's, so the
    /// end of a child's output (or a flood of it) never wakes the supervisor's thread. Until this
    /// is called the output waits in the pipe, so the caller may do what must come first.
    pub fn read_output(
        &mut self,
        sink: Arc<LogSink>,
        on_line: Arc<dyn Fn(&str) + Send + Sync>,
        io: &tokio::runtime::Handle,
    ) {
        for (reader, stream) in self.output.drain(..) {
            let (sink, on_line) = (sink.clone(), on_line.clone());
            io.spawn(async move {
                // On `io`'s thread, so that the pipe joins that runtime's reactor.
                match pipe::Receiver::from_owned_fd(OwnedFd::from(reader)) {
                    Ok(rx) => pump(OutputPipe::new(rx), stream, sink, on_line).await,
                    Err(e) => tracing::warn!(cause = %e, "cannot read a child's output pipe"),
                }
            });
        }
    }
}

/// Starts a component's process in its own process group with its stdout and stderr on pipes;
/// [`Spawned::read_output`] starts reading them.
///
/// Returns once the program has been exec'd (std reports exec failures through a close-on-exec
/// pipe, so an `Ok` means the new program is running). Only the exit waiter is registered with
/// the calling thread's runtime.
pub fn spawn(spec: &ComponentSpec, core_id: &str) -> std::io::Result<Spawned> {
    let argv = spec.command.argv();
    let (out_r, out_w) = std::io::pipe()?;
    let (err_r, err_w) = std::io::pipe()?;
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .envs(&spec.env)
        .env(CORE_ID_ENV, core_id)
        .env(COMPONENT_ENV, &spec.name)
        .stdin(Stdio::null())
        .stdout(out_w)
        .stderr(err_w)
        .process_group(0)
        .kill_on_drop(false);
    if let Some(cwd) = &spec.cwd {
        cmd.current_dir(cwd);
    }
    let child = cmd.spawn()?;
    // The command holds the pipes' write ends: without dropping it the readers never see the end.
    drop(cmd);
    let pid = child.id().expect("a child that was just spawned has a pid");
    Ok(Spawned {
        child,
        pid,
        output: vec![(out_r, LogStream::Stdout), (err_r, LogStream::Stderr)],
    })
}

/// Sends a signal to a whole process group. A group that is already gone is not an error.
pub fn signal_group(pgid: u32, signal: Signal) -> nix::Result<()> {
    match killpg(Pid::from_raw(pgid as i32), signal) {
        Err(nix::errno::Errno::ESRCH) => Ok(()),
        other => other,
    }
}

/// Waits until no live (non-zombie) process belongs to any of `groups`, or `timeout` passes.
///
/// After SIGKILL a process takes a moment to die, and an orphaned grandchild becomes a zombie
/// of init, which may reap it late; `kill(-pgid, 0)` counts zombies, so /proc is read instead.
/// Used only when stopping (an operator's `stop`, `down`), never on the restart path.
pub async fn wait_groups_gone(groups: &[u32], timeout: std::time::Duration) -> bool {
    if groups.is_empty() {
        return true;
    }
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if !any_live_member(groups) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

fn any_live_member(groups: &[u32]) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .any(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            let Some((_, rest)) = stat.rsplit_once(')') else {
                return false;
            };
            let mut fields = rest.split_ascii_whitespace();
            let state = fields.next().unwrap_or("Z");
            let pgrp: u32 = fields.nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
            !matches!(state, "Z" | "X") && groups.contains(&pgrp)
        })
}

/// A child's output pipe, buffered like tokio's `BufReader`, except that the buffer is made when
/// the pipe first has something to read: a component that prints nothing costs no buffer
/// (measured: 0.4 MB of the core's memory with 100 idle components, with 2 kB buffers made at
/// start).
struct OutputPipe {
    pipe: pipe::Receiver,
    /// Empty until the first read; then [`PIPE_BUFFER`] bytes, of which `pos..filled` are unread.
    buf: Vec<u8>,
    pos: usize,
    filled: usize,
}

impl OutputPipe {
    fn new(pipe: pipe::Receiver) -> OutputPipe {
        OutputPipe {
            pipe,
            buf: Vec::new(),
            pos: 0,
            filled: 0,
        }
    }
}

impl AsyncBufRead for OutputPipe {
    fn poll_fill_buf(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<&[u8]>> {
        let me = self.get_mut();
        while me.pos >= me.filled {
            std::task::ready!(me.pipe.poll_read_ready(cx))?;
            if me.buf.is_empty() {
                me.buf = vec![0; PIPE_BUFFER];
            }
            match me.pipe.try_read(&mut me.buf) {
                // 0 is the end of the stream: an empty slice says so.
                Ok(n) => {
                    me.pos = 0;
                    me.filled = n;
                    break;
                }
                // Readiness was stale; `try_read` cleared it, so the next poll waits.
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return std::task::Poll::Ready(Err(e)),
            }
        }
        std::task::Poll::Ready(Ok(&me.buf[me.pos..me.filled]))
    }

    fn consume(self: std::pin::Pin<&mut Self>, amt: usize) {
        let me = self.get_mut();
        me.pos = (me.pos + amt).min(me.filled);
    }
}

impl tokio::io::AsyncRead for OutputPipe {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        out: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let available = std::task::ready!(self.as_mut().poll_fill_buf(cx))?;
        let n = available.len().min(out.remaining());
        out.put_slice(&available[..n]);
        self.consume(n);
        std::task::Poll::Ready(Ok(()))
    }
}

/// Copies lines from a pipe into the sink until the pipe closes.
async fn pump<R: AsyncBufRead + Unpin>(
    mut reader: R,
    stream: LogStream,
    sink: Arc<LogSink>,
    on_line: Arc<dyn Fn(&str) + Send + Sync>,
) {
    // Grown by the first line, kept for the next.
    let mut buf = Vec::new();
    loop {
        match read_log_line(&mut reader, &mut buf).await {
            Ok(Some(line)) => {
                on_line(&line);
                sink.push(stream, line);
            }
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(cause = %e, "output pipe read failed");
                return;
            }
        }
    }
}

/// Reads one output line, lossily decoded, cut at [`MAX_LOG_LINE`] bytes. A last line without a
/// newline is returned too. Hand-written because tokio's `read_line` buffers a line of any length
/// and fails on invalid UTF-8, and a component's output must never cost the core unbounded memory.
async fn read_log_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<String>> {
    buf.clear();
    let mut cut = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok((!buf.is_empty() || cut).then(|| finish(buf, cut)));
        }
        let (chunk, newline) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (&available[..i], true),
            None => (available, false),
        };
        let room = MAX_LOG_LINE.saturating_sub(buf.len());
        if chunk.len() > room {
            cut = true;
        }
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let consumed = chunk.len() + usize::from(newline);
        reader.consume(consumed);
        if newline {
            return Ok(Some(finish(buf, cut)));
        }
    }
}

fn finish(buf: &mut Vec<u8>, cut: bool) -> String {
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    let mut s = String::from_utf8_lossy(buf).into_owned();
    if cut {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::BufReader;

    #[tokio::test]
    async fn a_pipe_gets_its_buffer_with_its_first_output_and_reads_like_a_bufreader() {
        use std::io::Write;
        let (rx, mut tx) = std::io::pipe().unwrap();
        let mut pipe = OutputPipe::new(pipe::Receiver::from_owned_fd(OwnedFd::from(rx)).unwrap());
        // Nothing written yet: no read is ready, and no buffer was made.
        let mut buf = Vec::new();
        let pending = tokio::time::timeout(
            std::time::Duration::from_millis(20),
            read_log_line(&mut pipe, &mut buf),
        )
        .await;
        assert!(pending.is_err(), "no line before any output");
        assert!(pipe.buf.is_empty(), "no buffer before any output");
        // A line longer than the buffer, one cut at MAX_LOG_LINE, then a last one with no newline.
        let long = "x".repeat(PIPE_BUFFER * 2 + 7);
        let too_long = "y".repeat(MAX_LOG_LINE + 5);
        let writer = std::thread::spawn(move || {
            write!(tx, "{long}\r\n{too_long}\nlast").unwrap();
        });
        let first = read_log_line(&mut pipe, &mut buf).await.unwrap().unwrap();
        assert_eq!(first.len(), PIPE_BUFFER * 2 + 7);
        assert_eq!(pipe.buf.len(), PIPE_BUFFER);
        let cut = read_log_line(&mut pipe, &mut buf).await.unwrap().unwrap();
        assert_eq!(cut.chars().count(), MAX_LOG_LINE + 1);
        assert!(cut.ends_with('…'));
        writer.join().unwrap();
        assert_eq!(
            read_log_line(&mut pipe, &mut buf).await.unwrap().as_deref(),
            Some("last")
        );
        assert_eq!(read_log_line(&mut pipe, &mut buf).await.unwrap(), None);
    }

    #[tokio::test]
    async fn long_lines_are_cut_and_the_last_line_kept() {
        let mut input = vec![b'a'; MAX_LOG_LINE + 10];
        input.extend_from_slice(b"\nnext\nlast");
        let mut r = BufReader::with_capacity(64, &input[..]);
        let mut buf = Vec::new();
        let first = read_log_line(&mut r, &mut buf).await.unwrap().unwrap();
        assert!(first.ends_with('…'));
        assert_eq!(first.chars().count(), MAX_LOG_LINE + 1);
        assert_eq!(
            read_log_line(&mut r, &mut buf).await.unwrap().unwrap(),
            "next"
        );
        assert_eq!(
            read_log_line(&mut r, &mut buf).await.unwrap().unwrap(),
            "last"
        );
        assert!(read_log_line(&mut r, &mut buf).await.unwrap().is_none());
    }
}
