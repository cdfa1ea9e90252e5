//! Liveness and readiness probes: running one check ([`run_probe`]) and judging a series of results
//! ([`ProbeTracker`]).
//!
//! [`run_probe`] is the only I/O here: it runs an exec, TCP or HTTP check under a timeout and always
//! returns an outcome, never an error (a probe that cannot even be attempted has failed). A hung
//! probe fails at its timeout, and an exec probe runs in its own process group that is killed with
//! it, so a hung probe's children die too. A TCP probe with `send`/`expect` sees a hung server
//! (the kernel accepts connections for a stopped process until its queue fills; only an answer
//! tells it is alive) and says, when it fails, what it expected and what came. [`ProbeTracker`] is a plain state machine taking `now`:
//! it does no I/O and arms no timers; the caller runs the probe when [`ProbeTracker::next_due`] says
//! and feeds the outcome back.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::config::{ProbeConfig, ProbeTarget, TcpCheck};

/// The largest HTTP response head (status line and headers) a probe reads.
const MAX_HTTP_HEAD: usize = 16 * 1024;

/// The most a TCP probe reads while looking for its `expect`: a peer that talks on without
/// saying it has failed.
const MAX_TCP_ANSWER: usize = 16 * 1024;

/// How many characters of a wrong answer a failure reason quotes.
const SHOWN_ANSWER: usize = 64;

/// The result of one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    Success,
    /// The check ran and failed, or could not be attempted; the text says why.
    Failed(String),
    /// The check did not finish within its timeout (counted as a failure).
    TimedOut(Duration),
}

impl ProbeOutcome {
    pub fn is_success(&self) -> bool {
        match self {
            ProbeOutcome::Success => true,
            ProbeOutcome::Failed(_) | ProbeOutcome::TimedOut(_) => false,
        }
    }

    /// Why the probe failed, for an Issue's context; `None` on success.
    pub fn reason(&self) -> Option<String> {
        match self {
            ProbeOutcome::Success => None,
            ProbeOutcome::Failed(why) => Some(why.clone()),
            ProbeOutcome::TimedOut(t) => Some(format!(
                "no answer within {}",
                humantime::format_duration(*t)
            )),
        }
    }
}

/// Runs one probe. Never takes much longer than `timeout`: a check still running then is abandoned
/// (an exec probe's whole process group is killed) and reported as [`ProbeOutcome::TimedOut`].
pub async fn run_probe(target: &ProbeTarget, timeout: Duration) -> ProbeOutcome {
    let check = async {
        match target {
            ProbeTarget::Exec(argv) => exec_probe(argv).await,
            // It keeps its own deadline, to say what came before it.
            ProbeTarget::Tcp(check) => tcp_probe(check, timeout).await,
            ProbeTarget::Http { url, expect_status } => http_probe(url, *expect_status).await,
        }
    };
    // Dropping `check` on timeout drops the child (kill_on_drop) and its group guard.
    match tokio::time::timeout(timeout, check).await {
        Ok(outcome) => outcome,
        Err(_) => ProbeOutcome::TimedOut(timeout),
    }
}

/// Kills a probe's process group when dropped before the probe's leader was reaped: a probe that
/// timed out (or whose caller gave up) must not leave `sh -c 'sleep 1000 | …'` children behind.
struct GroupGuard {
    pgid: Option<nix::unistd::Pid>,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            // ESRCH (the group is gone already) is fine.
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

async fn exec_probe(argv: &[String]) -> ProbeOutcome {
    let Some((program, args)) = argv.split_first() else {
        return ProbeOutcome::Failed("exec probe has no command".to_string());
    };
    let mut child = match tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
    {
        Ok(child) => child,
        Err(e) => return ProbeOutcome::Failed(format!("cannot run {program}: {e}")),
    };
    // Declared after `child`, so dropped before it: the group is killed while its leader is
    // still unreaped, which keeps the group id from being reused.
    let mut guard = GroupGuard {
        pgid: child
            .id()
            .and_then(|pid| i32::try_from(pid).ok())
            .map(nix::unistd::Pid::from_raw),
    };
    let status = child.wait().await;
    // The leader is reaped: its id may be reused from now on, so the guard must not fire.
    guard.pgid = None;
    match status {
        Ok(s) if s.success() => ProbeOutcome::Success,
        Ok(s) => ProbeOutcome::Failed(
            match (s.code(), std::os::unix::process::ExitStatusExt::signal(&s)) {
                (Some(code), _) => format!("{program} exited with code {code}"),
                (None, Some(sig)) => format!("{program} was killed by signal {sig}"),
                (None, None) => format!("{program} ended abnormally"),
            },
        ),
        Err(e) => ProbeOutcome::Failed(format!("waiting for {program}: {e}")),
    }
}

/// Connects; sends `check.send` if any; then, if `check.expect` is set, reads until it appears
/// (success), the peer closes, [`MAX_TCP_ANSWER`] bytes came without it, or `timeout` has passed
/// since the start (failures that quote what came). A connection still not made at the timeout
/// is [`ProbeOutcome::TimedOut`]. Returns by the timeout: [`run_probe`]'s own timeout around it
/// is only a backstop.
async fn tcp_probe(check: &TcpCheck, timeout: Duration) -> ProbeOutcome {
    let addr = &check.address;
    let deadline = Instant::now() + timeout;
    let mut stream = match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return ProbeOutcome::Failed(format!("connect to {addr}: {e}")),
        Err(_) => return ProbeOutcome::TimedOut(timeout),
    };
    let Some(expect) = &check.expect else {
        if check.send.is_empty() {
            return ProbeOutcome::Success;
        }
        return match tokio::time::timeout_at(deadline, stream.write_all(&check.send)).await {
            Ok(Ok(())) => ProbeOutcome::Success,
            Ok(Err(e)) => ProbeOutcome::Failed(format!("send to {addr}: {e}")),
            Err(_) => ProbeOutcome::Failed(format!(
                "send to {addr}: not taken within {}",
                humantime::format_duration(timeout)
            )),
        };
    };
    let mut answer = Vec::new();
    let exchange = async {
        if !check.send.is_empty() {
            stream
                .write_all(&check.send)
                .await
                .map_err(|e| format!("send to {addr}: {e}"))?;
        }
        let mut chunk = [0u8; 2048];
        loop {
            if contains(&answer, expect) {
                return Ok(());
            }
            if answer.len() >= MAX_TCP_ANSWER {
                return Err(format!(
                    "expected {} from {addr}, got {MAX_TCP_ANSWER} bytes without it: {}",
                    shown(expect),
                    shown(&answer)
                ));
            }
            let room = (MAX_TCP_ANSWER - answer.len()).min(chunk.len());
            match stream.read(&mut chunk[..room]).await {
                Ok(0) => {
                    return Err(format!(
                        "expected {} from {addr}, but it closed the connection after {}",
                        shown(expect),
                        got(&answer)
                    ));
                }
                Ok(n) => answer.extend_from_slice(&chunk[..n]),
                Err(e) => {
                    return Err(format!(
                        "expected {} from {addr}, but reading failed ({e}) after {}",
                        shown(expect),
                        got(&answer)
                    ));
                }
            }
        }
    };
    let result = tokio::time::timeout_at(deadline, exchange).await;
    match result {
        Ok(Ok(())) => ProbeOutcome::Success,
        Ok(Err(why)) => ProbeOutcome::Failed(why),
        Err(_) => ProbeOutcome::Failed(format!(
            "expected {} from {addr} within {}, got {}",
            shown(&expect[..]),
            humantime::format_duration(timeout),
            got(&answer)
        )),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// Bytes quoted for a reason: as text with escapes, cut to [`SHOWN_ANSWER`] characters.
fn shown(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    format!("{:?}", crate::text::truncate(&text, SHOWN_ANSWER))
}

/// What came: `nothing`, or the bytes quoted.
fn got(answer: &[u8]) -> String {
    if answer.is_empty() {
        "nothing".to_string()
    } else {
        shown(answer)
    }
}

/// Splits `http://host:port/path` into the address to connect to, the Host header and the path.
/// Config validation already insists on `http://`; userinfo, IPv6 literals and fragments are not
/// supported by probes (a probe URL is a local health endpoint, not a general URL).
fn split_http_url(url: &str) -> Result<(String, String, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("url \"{url}\" must start with http://"))?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
        Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
        None => (rest, "/".to_string()),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("url \"{url}\" has no usable host"));
    }
    let addr = if authority.rsplit_once(':').is_some() {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Ok((addr, authority.to_string(), path))
}

async fn http_probe(url: &str, expect_status: Option<u16>) -> ProbeOutcome {
    let (addr, host, path) = match split_http_url(url) {
        Ok(parts) => parts,
        Err(e) => return ProbeOutcome::Failed(e),
    };
    let mut stream = match TcpStream::connect(&addr).await {
        Ok(s) => s,
        Err(e) => return ProbeOutcome::Failed(format!("connect to {addr}: {e}")),
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: hms-console-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    if let Err(e) = stream.write_all(request.as_bytes()).await {
        return ProbeOutcome::Failed(format!("send request to {url}: {e}"));
    }
    let mut buf = Vec::with_capacity(1024);
    let code = loop {
        let mut chunk = [0u8; 2048];
        let n = match stream.read(&mut chunk).await {
            Ok(n) => n,
            Err(e) => return ProbeOutcome::Failed(format!("read response from {url}: {e}")),
        };
        if n == 0 {
            return ProbeOutcome::Failed(format!(
                "{url} closed the connection before a complete response head"
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => match response.code {
                Some(code) => break code,
                None => return ProbeOutcome::Failed(format!("{url}: response without status")),
            },
            Ok(httparse::Status::Partial) if buf.len() < MAX_HTTP_HEAD => continue,
            Ok(httparse::Status::Partial) => {
                return ProbeOutcome::Failed(format!(
                    "{url}: response head longer than {MAX_HTTP_HEAD} bytes"
                ));
            }
            Err(e) => return ProbeOutcome::Failed(format!("{url}: invalid HTTP response: {e}")),
        }
    };
    let ok = match expect_status {
        Some(want) => code == want,
        None => (200..400).contains(&code),
    };
    if ok {
        ProbeOutcome::Success
    } else {
        let want = expect_status.map_or_else(|| "2xx or 3xx".to_string(), |s| s.to_string());
        ProbeOutcome::Failed(format!("{url} answered {code}, expected {want}"))
    }
}

/// Which question a probe answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    /// Is it alive? Assumed passing at start; `failure_threshold` failures in a row mean it is
    /// unhealthy and should be healed (restarted).
    Liveness,
    /// Is it ready for work? Assumed not ready at start; `success_threshold` successes in a row make
    /// it ready, `failure_threshold` failures in a row make it not ready again.
    Readiness,
}

/// A change in what a series of probes says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeTransition {
    /// `success_threshold` successes in a row after failing (or, for readiness, since the start).
    BecameReady,
    /// `failure_threshold` failures in a row after passing. For liveness: the component is
    /// unhealthy; for readiness: it is no longer ready.
    BecameUnhealthy {
        /// Consecutive failures so far.
        failures: u32,
        /// The last failure's reason.
        reason: String,
    },
}

/// A probe's schedule and verdict for one run of a component.
#[derive(Debug, Clone)]
pub struct ProbeTracker {
    kind: ProbeKind,
    period: Duration,
    failure_threshold: u32,
    success_threshold: u32,
    initial_delay: Duration,
    /// The current verdict: passing (alive / ready) or not.
    passing: bool,
    consecutive_failures: u32,
    consecutive_successes: u32,
    /// When the next probe may start.
    next_due: Instant,
    /// The ticket of the probe in flight, if any; results carrying another ticket are stale.
    in_flight: Option<u64>,
    next_ticket: u64,
}

/// Identifies one probe run, so that a result that arrives after a restart (or after a newer probe
/// started) is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeTicket(u64);

impl ProbeTracker {
    /// A tracker for a component (re)started at `started`.
    pub fn new(kind: ProbeKind, cfg: &ProbeConfig, started: Instant) -> Self {
        ProbeTracker {
            kind,
            period: cfg.period.0,
            failure_threshold: cfg.failure_threshold.max(1),
            success_threshold: cfg.success_threshold.max(1),
            initial_delay: cfg.initial_delay.0,
            passing: Self::initially_passing(kind),
            consecutive_failures: 0,
            consecutive_successes: 0,
            next_due: started + cfg.initial_delay.0,
            in_flight: None,
            next_ticket: 0,
        }
    }

    fn initially_passing(kind: ProbeKind) -> bool {
        match kind {
            ProbeKind::Liveness => true,
            ProbeKind::Readiness => false,
        }
    }

    pub fn kind(&self) -> ProbeKind {
        self.kind
    }

    /// When the next probe should start: arm a timer for it.
    pub fn next_due(&self) -> Instant {
        self.next_due
    }

    /// Starts a probe if one is due at `now` and none is in flight. The period counts from probe
    /// start to probe start; a probe that runs longer than the period delays the next one (never
    /// two at once).
    pub fn start(&mut self, now: Instant) -> Option<ProbeTicket> {
        if now < self.next_due || self.in_flight.is_some() {
            return None;
        }
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.in_flight = Some(ticket);
        self.next_due = now + self.period;
        Some(ProbeTicket(ticket))
    }

    /// Feeds back the outcome of the probe started with `ticket`. Stale tickets are ignored.
    pub fn record(
        &mut self,
        ticket: ProbeTicket,
        now: Instant,
        outcome: &ProbeOutcome,
    ) -> Option<ProbeTransition> {
        if self.in_flight != Some(ticket.0) {
            return None;
        }
        self.in_flight = None;
        // A probe that ran past the period: the next one may start at once.
        self.next_due = self.next_due.max(now);
        match outcome {
            ProbeOutcome::Success => {
                self.consecutive_failures = 0;
                self.consecutive_successes = self.consecutive_successes.saturating_add(1);
                if !self.passing && self.consecutive_successes >= self.success_threshold {
                    self.passing = true;
                    return Some(ProbeTransition::BecameReady);
                }
                None
            }
            ProbeOutcome::Failed(_) | ProbeOutcome::TimedOut(_) => {
                self.consecutive_successes = 0;
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                if self.passing && self.consecutive_failures >= self.failure_threshold {
                    self.passing = false;
                    return Some(ProbeTransition::BecameUnhealthy {
                        failures: self.consecutive_failures,
                        reason: outcome.reason().unwrap_or_default(),
                    });
                }
                None
            }
        }
    }

    /// The component was (re)started at `now`: start over, initial delay included. A probe still in
    /// flight becomes stale.
    pub fn restart(&mut self, now: Instant) {
        self.passing = Self::initially_passing(self.kind);
        self.consecutive_failures = 0;
        self.consecutive_successes = 0;
        self.next_due = now + self.initial_delay;
        self.in_flight = None;
    }

    /// Alive (liveness) or ready (readiness), by the thresholds.
    pub fn is_passing(&self) -> bool {
        self.passing
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigDuration;
    use tokio::net::TcpListener;

    /// Real I/O tests finish well inside this; a hang fails the test instead of blocking it.
    const DEADLINE: Duration = Duration::from_secs(10);

    async fn probe(target: ProbeTarget, timeout: Duration) -> ProbeOutcome {
        tokio::time::timeout(DEADLINE, run_probe(&target, timeout))
            .await
            .expect("run_probe must return within its own timeout")
    }

    fn sh(script: &str) -> ProbeTarget {
        ProbeTarget::Exec(vec!["sh".into(), "-c".into(), script.into()])
    }

    /// A one-shot HTTP responder on 127.0.0.1 answering every connection with `status`.
    async fn http_responder(status: &'static str) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let mut seen = Vec::new();
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    let body = "ok";
                    let reply = format!(
                        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(reply.as_bytes()).await;
                });
            }
        });
        format!("http://{addr}/health")
    }

    #[tokio::test]
    async fn exec_probe_passes_on_exit_zero_and_fails_otherwise() {
        assert_eq!(probe(sh("exit 0"), DEADLINE).await, ProbeOutcome::Success);
        match probe(sh("exit 3"), DEADLINE).await {
            ProbeOutcome::Failed(why) => assert!(why.contains("code 3"), "{why}"),
            other => panic!("{other:?}"),
        }
        match probe(
            ProbeTarget::Exec(vec!["/nonexistent/probe".into()]),
            DEADLINE,
        )
        .await
        {
            ProbeOutcome::Failed(why) => assert!(why.contains("cannot run"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn hung_exec_probe_fails_at_its_timeout_and_its_children_die() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pidfile = dir.path().join("child.pid");
        // The shell starts a grandchild that would outlive it, records its pid, then hangs.
        let script = format!("sleep 300 & echo $! > {}; wait", pidfile.display());
        let started = std::time::Instant::now();
        let outcome = probe(sh(&script), Duration::from_millis(300)).await;
        assert_eq!(outcome, ProbeOutcome::TimedOut(Duration::from_millis(300)));
        assert!(started.elapsed() < Duration::from_secs(3));
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .expect("the probe wrote its child's pid")
            .trim()
            .parse()
            .expect("a pid");
        // The grandchild was SIGKILLed with the group; wait (bounded) until it is gone or a
        // zombie waiting for init to reap it.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat
                .rsplit_once(')')
                .map(|(_, r)| r.trim_start().chars().next());
            if stat.is_empty() || state == Some(Some('Z')) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "grandchild {pid} still alive: {stat}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn tcp_probe_passes_when_something_listens_and_fails_when_nothing_does() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        assert_eq!(
            probe(ProbeTarget::Tcp(TcpCheck::connect(&addr)), DEADLINE).await,
            ProbeOutcome::Success
        );
        drop(listener);
        assert!(
            !probe(ProbeTarget::Tcp(TcpCheck::connect(addr)), DEADLINE)
                .await
                .is_success()
        );
    }

    fn ping(addr: &str) -> ProbeTarget {
        ProbeTarget::Tcp(TcpCheck {
            address: addr.to_string(),
            send: b"PING\r\n".to_vec(),
            expect: Some(b"+PONG".to_vec()),
        })
    }

    /// A server on 127.0.0.1 that reads one line from each connection and answers `answer`
    /// (if any), then holds the connection open, or closes it when `close`. Returns its address.
    async fn line_server(answer: Option<Vec<u8>>, close: bool) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let answer = answer.clone();
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    let mut buf = [0u8; 256];
                    while !seen.contains(&b'\n') {
                        match sock.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    if let Some(answer) = answer {
                        // Two writes: the probe must read on until the expectation is whole.
                        let (head, tail) = answer.split_at(answer.len() / 2);
                        let _ = sock.write_all(head).await;
                        let _ = sock.flush().await;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        let _ = sock.write_all(tail).await;
                    }
                    if !close {
                        // Hold the connection until the probe hangs up.
                        let _ = sock.read(&mut buf).await;
                    }
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn tcp_probe_passes_when_the_answer_contains_the_expectation() {
        let addr = line_server(Some(b"+PONG\r\n".to_vec()), false).await;
        assert_eq!(probe(ping(&addr), DEADLINE).await, ProbeOutcome::Success);
    }

    #[tokio::test]
    async fn tcp_probe_against_a_server_that_accepts_but_never_answers_fails_at_its_timeout() {
        // The SIGSTOPped redis: the kernel completes the connection, nobody answers.
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let timeout = Duration::from_millis(300);
        let started = std::time::Instant::now();
        let outcome = probe(ping(&addr), timeout).await;
        let took = started.elapsed();
        assert_eq!(
            outcome,
            ProbeOutcome::Failed(format!(
                "expected \"+PONG\" from {addr} within 300ms, got nothing"
            ))
        );
        assert!(took >= timeout, "failed before its timeout: {took:?}");
        assert!(took < Duration::from_secs(3), "took {took:?}");
        drop(listener);
    }

    #[tokio::test]
    async fn tcp_probe_with_a_wrong_answer_fails_and_says_what_came() {
        let addr = line_server(Some(b"-ERR unknown command 'PING'\r\n".to_vec()), false).await;
        assert_eq!(
            probe(ping(&addr), Duration::from_millis(300)).await,
            ProbeOutcome::Failed(format!(
                "expected \"+PONG\" from {addr} within 300ms, got \"-ERR unknown command 'PING'\\r\\n\""
            ))
        );
        let closing = line_server(Some(b"-ERR\r\n".to_vec()), true).await;
        assert_eq!(
            probe(ping(&closing), DEADLINE).await,
            ProbeOutcome::Failed(format!(
                "expected \"+PONG\" from {closing}, but it closed the connection after \"-ERR\\r\\n\""
            ))
        );
        let silent = line_server(None, true).await;
        assert_eq!(
            probe(ping(&silent), DEADLINE).await,
            ProbeOutcome::Failed(format!(
                "expected \"+PONG\" from {silent}, but it closed the connection after nothing"
            ))
        );
    }

    #[tokio::test]
    async fn tcp_probe_reads_a_bounded_answer_and_quotes_it_cut() {
        let addr = line_server(Some(vec![b'x'; 3 * MAX_TCP_ANSWER]), false).await;
        match probe(ping(&addr), DEADLINE).await {
            ProbeOutcome::Failed(why) => {
                assert!(
                    why.starts_with(&format!(
                        "expected \"+PONG\" from {addr}, got {MAX_TCP_ANSWER} bytes without it: \"xxx"
                    )),
                    "{why}"
                );
                assert!(why.ends_with("x…\""), "{why}");
                assert!(why.len() < 200, "{why}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn tcp_probe_that_only_sends_passes_once_the_bytes_are_taken() {
        let addr = line_server(None, false).await;
        let target = ProbeTarget::Tcp(TcpCheck {
            address: addr,
            send: b"QUIT\r\n".to_vec(),
            expect: None,
        });
        assert_eq!(probe(target, DEADLINE).await, ProbeOutcome::Success);
    }

    #[tokio::test]
    async fn http_probe_accepts_2xx_and_3xx_by_default() {
        for status in ["200 OK", "204 No Content", "302 Found"] {
            let url = http_responder(status).await;
            let outcome = probe(
                ProbeTarget::Http {
                    url,
                    expect_status: None,
                },
                DEADLINE,
            )
            .await;
            assert_eq!(outcome, ProbeOutcome::Success, "{status}");
        }
        let url = http_responder("503 Service Unavailable").await;
        match probe(
            ProbeTarget::Http {
                url,
                expect_status: None,
            },
            DEADLINE,
        )
        .await
        {
            ProbeOutcome::Failed(why) => assert!(why.contains("503"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn http_probe_honours_the_expected_status() {
        let url = http_responder("418 I'm a teapot").await;
        let target = |expect| ProbeTarget::Http {
            url: url.clone(),
            expect_status: Some(expect),
        };
        assert_eq!(probe(target(418), DEADLINE).await, ProbeOutcome::Success);
        assert!(!probe(target(200), DEADLINE).await.is_success());
    }

    #[tokio::test]
    async fn http_probe_against_a_server_that_never_answers_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/health", listener.local_addr().expect("addr"));
        let (hold_tx, mut hold_rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            // Accept and keep the sockets open, never writing a byte.
            while let Ok((sock, _)) = listener.accept().await {
                if hold_tx.send(sock).is_err() {
                    return;
                }
            }
        });
        let outcome = probe(
            ProbeTarget::Http {
                url,
                expect_status: None,
            },
            Duration::from_millis(200),
        )
        .await;
        assert_eq!(outcome, ProbeOutcome::TimedOut(Duration::from_millis(200)));
        hold_rx.close();
    }

    #[tokio::test]
    async fn http_probe_rejects_garbage() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            if let Ok((mut sock, _)) = listener.accept().await {
                let _ = sock.write_all(b"SSH-2.0-OpenSSH\r\n\r\n").await;
            }
        });
        match probe(
            ProbeTarget::Http {
                url,
                expect_status: None,
            },
            DEADLINE,
        )
        .await
        {
            ProbeOutcome::Failed(why) => assert!(why.contains("invalid HTTP"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn http_urls_split_into_address_host_and_path() {
        assert_eq!(
            split_http_url("http://127.0.0.1:8080/health?x=1").expect("valid"),
            (
                "127.0.0.1:8080".into(),
                "127.0.0.1:8080".into(),
                "/health?x=1".into()
            )
        );
        assert_eq!(
            split_http_url("http://localhost").expect("valid"),
            ("localhost:80".into(), "localhost".into(), "/".into())
        );
        assert_eq!(
            split_http_url("http://h:1?q").expect("valid").2,
            "/?q".to_string()
        );
        assert!(split_http_url("https://x/").is_err());
        assert!(split_http_url("http:///x").is_err());
    }

    fn probe_cfg(failure: u32, success: u32, delay: Duration) -> ProbeConfig {
        ProbeConfig {
            exec: Some(vec!["true".into()]),
            tcp: None,
            http: None,
            expect_status: None,
            period: ConfigDuration(Duration::from_millis(200)),
            timeout: ConfigDuration(Duration::from_millis(100)),
            initial_delay: ConfigDuration(delay),
            failure_threshold: failure,
            success_threshold: success,
        }
    }

    fn fail() -> ProbeOutcome {
        ProbeOutcome::Failed("boom".into())
    }

    /// Waits for the tracker's next due time, runs a "probe" with the given outcome.
    async fn step(t: &mut ProbeTracker, outcome: ProbeOutcome) -> Option<ProbeTransition> {
        tokio::time::advance(t.next_due().saturating_duration_since(Instant::now())).await;
        let ticket = t.start(Instant::now()).expect("due");
        t.record(ticket, Instant::now(), &outcome)
    }

    #[tokio::test(start_paused = true)]
    async fn liveness_becomes_unhealthy_after_failure_threshold_failures_in_a_row() {
        let mut t = ProbeTracker::new(
            ProbeKind::Liveness,
            &probe_cfg(3, 1, Duration::ZERO),
            Instant::now(),
        );
        assert!(t.is_passing());
        assert_eq!(step(&mut t, fail()).await, None);
        assert_eq!(step(&mut t, fail()).await, None);
        assert_eq!(step(&mut t, ProbeOutcome::Success).await, None, "resets");
        assert_eq!(step(&mut t, fail()).await, None);
        assert_eq!(step(&mut t, fail()).await, None);
        assert_eq!(
            step(&mut t, ProbeOutcome::TimedOut(Duration::from_millis(100))).await,
            Some(ProbeTransition::BecameUnhealthy {
                failures: 3,
                reason: "no answer within 100ms".into()
            })
        );
        assert!(!t.is_passing());
        assert_eq!(step(&mut t, fail()).await, None, "reported once");
        assert_eq!(
            step(&mut t, ProbeOutcome::Success).await,
            Some(ProbeTransition::BecameReady)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn readiness_needs_success_threshold_successes_in_a_row() {
        let mut t = ProbeTracker::new(
            ProbeKind::Readiness,
            &probe_cfg(2, 3, Duration::ZERO),
            Instant::now(),
        );
        assert!(!t.is_passing());
        assert_eq!(step(&mut t, ProbeOutcome::Success).await, None);
        assert_eq!(step(&mut t, ProbeOutcome::Success).await, None);
        assert_eq!(step(&mut t, fail()).await, None, "not ready yet, no change");
        assert_eq!(step(&mut t, ProbeOutcome::Success).await, None);
        assert_eq!(step(&mut t, ProbeOutcome::Success).await, None);
        assert_eq!(
            step(&mut t, ProbeOutcome::Success).await,
            Some(ProbeTransition::BecameReady)
        );
        assert_eq!(step(&mut t, fail()).await, None);
        assert!(matches!(
            step(&mut t, fail()).await,
            Some(ProbeTransition::BecameUnhealthy { failures: 2, .. })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn no_probe_runs_before_the_initial_delay_or_more_often_than_the_period() {
        let start = Instant::now();
        let mut t = ProbeTracker::new(
            ProbeKind::Liveness,
            &probe_cfg(1, 1, Duration::from_secs(5)),
            start,
        );
        assert_eq!(t.next_due(), start + Duration::from_secs(5));
        assert!(t.start(start).is_none());
        tokio::time::advance(Duration::from_millis(4999)).await;
        assert!(t.start(Instant::now()).is_none());
        tokio::time::advance(Duration::from_millis(1)).await;
        let ticket = t
            .start(Instant::now())
            .expect("due after the initial delay");
        assert!(t.start(Instant::now()).is_none(), "one at a time");
        assert_eq!(
            t.record(ticket, Instant::now(), &ProbeOutcome::Success),
            None
        );
        assert!(t.start(Instant::now()).is_none(), "not before the period");
        assert_eq!(
            t.next_due(),
            start + Duration::from_secs(5) + Duration::from_millis(200)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_result_from_before_a_restart_is_ignored() {
        let mut t = ProbeTracker::new(
            ProbeKind::Liveness,
            &probe_cfg(1, 1, Duration::ZERO),
            Instant::now(),
        );
        let old = t.start(Instant::now()).expect("due");
        t.restart(Instant::now());
        assert_eq!(t.record(old, Instant::now(), &fail()), None);
        assert!(t.is_passing());
        let fresh = t.start(Instant::now()).expect("due again after restart");
        assert!(matches!(
            t.record(fresh, Instant::now(), &fail()),
            Some(ProbeTransition::BecameUnhealthy { .. })
        ));
    }
}
