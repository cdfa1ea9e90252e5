//! Exec probes run in a helper process, `hms-console probe-runner`, not in the core.
//!
//! Why: every spawn copies the spawning process's descriptor table, and the core holds three
//! descriptors per component (two output pipes and a pidfd). With 500 components probed once a
//! second by `exec`, that copy dominated the core's CPU (measured: 6.3 % of a core against a goal
//! of 5 %). The runner holds a handful of descriptors, so its spawns are cheap, and the core only
//! writes and reads one JSON line per probe.
//!
//! The runner is started on the first exec probe, carries the core's `HMS_CORE_ID` (so the reaper
//! sweeps it and its probes if the core is killed), exits when the core closes its stdin, and is
//! started again if it dies. While it cannot run, probes run in the core as before: a probe is
//! never lost to the runner's trouble.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};

use crate::config::ProbeTarget;
use crate::healing::probe::{ProbeOutcome, run_probe};

/// One probe for the runner.
#[derive(Debug, Serialize, Deserialize)]
struct RunnerRequest {
    id: u64,
    argv: Vec<String>,
    timeout_ms: u64,
}

/// Its result.
#[derive(Debug, Serialize, Deserialize)]
struct RunnerReply {
    id: u64,
    ok: bool,
    #[serde(default)]
    timed_out: bool,
    #[serde(default)]
    reason: String,
}

/// Probes sent to the runner, by id: who waits, and the probe's timeout (for the answer's text).
type Pending = Arc<Mutex<HashMap<u64, (oneshot::Sender<ProbeOutcome>, Duration)>>>;

struct Job {
    argv: Vec<String>,
    timeout: Duration,
    reply: oneshot::Sender<ProbeOutcome>,
}

/// The core's side: hands exec probes to the runner process.
#[derive(Clone)]
pub struct ProbeRunner {
    jobs: mpsc::UnboundedSender<Job>,
}

impl ProbeRunner {
    /// A runner for the core `core_id`; its process starts with the first probe.
    pub fn new(core_id: &str) -> ProbeRunner {
        let (jobs, rx) = mpsc::unbounded_channel();
        tokio::spawn(manage(core_id.to_string(), rx));
        ProbeRunner { jobs }
    }

    /// Runs a probe: exec probes through the runner, others (tcp, http) right here.
    pub async fn run(&self, target: &ProbeTarget, timeout: Duration) -> ProbeOutcome {
        let ProbeTarget::Exec(argv) = target else {
            return run_probe(target, timeout).await;
        };
        let (reply, answer) = oneshot::channel();
        let job = Job {
            argv: argv.clone(),
            timeout,
            reply,
        };
        if self.jobs.send(job).is_err() {
            return run_probe(target, timeout).await;
        }
        match answer.await {
            Ok(outcome) => outcome,
            // The runner went away with our probe: run it here.
            Err(_) => run_probe(target, timeout).await,
        }
    }
}

/// Owns the runner process: starts it on demand, feeds it, restarts it when it dies.
async fn manage(core_id: String, mut jobs: mpsc::UnboundedReceiver<Job>) {
    let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
    let mut next_id: u64 = 0;
    let mut runner: Option<(tokio::process::Child, tokio::process::ChildStdin)> = None;
    while let Some(job) = jobs.recv().await {
        if runner
            .as_mut()
            .is_some_and(|(child, _)| child.try_wait().ok().flatten().is_some())
        {
            tracing::warn!("the probe runner exited; starting another");
            runner = None;
        }
        if runner.is_none() {
            runner = start(&core_id, pending.clone());
        }
        let Some((_, stdin)) = runner.as_mut() else {
            // Could not start one: the probe runs in the core.
            tokio::spawn(async move {
                let target = ProbeTarget::Exec(job.argv);
                let _ = job.reply.send(run_probe(&target, job.timeout).await);
            });
            continue;
        };
        next_id += 1;
        let request = RunnerRequest {
            id: next_id,
            argv: job.argv,
            timeout_ms: job.timeout.as_millis().min(u64::MAX as u128) as u64,
        };
        pending
            .lock()
            .expect("pending lock")
            .insert(next_id, (job.reply, job.timeout));
        let mut line = serde_json::to_vec(&request).expect("a probe request serialises");
        line.push(b'\n');
        if stdin.write_all(&line).await.is_err() {
            // Dropping the sender lets the caller fall back to running it here.
            pending.lock().expect("pending lock").remove(&next_id);
            runner = None;
        }
    }
}

fn start(
    core_id: &str,
    pending: Pending,
) -> Option<(tokio::process::Child, tokio::process::ChildStdin)> {
    let spawned = tokio::process::Command::new("/proc/self/exe")
        .arg("probe-runner")
        .env(super::process::CORE_ID_ENV, core_id)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(cause = %e, "cannot start the probe runner; exec probes run in the core");
            return None;
        }
    };
    let stdin = child.stdin.take()?;
    let stdout = child.stdout.take()?;
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let Ok(reply) = serde_json::from_str::<RunnerReply>(&line) else {
                continue;
            };
            let Some((tx, timeout)) = pending.lock().expect("pending lock").remove(&reply.id)
            else {
                continue;
            };
            let outcome = if reply.ok {
                ProbeOutcome::Success
            } else if reply.timed_out {
                ProbeOutcome::TimedOut(timeout)
            } else {
                ProbeOutcome::Failed(reply.reason)
            };
            let _ = tx.send(outcome);
        }
        // The runner is gone: callers still waiting run their probes themselves.
        pending.lock().expect("pending lock").clear();
    });
    Some((child, stdin))
}

/// The runner process's main loop (`hms-console probe-runner`): one JSON request per line in,
/// one reply per line out, probes run concurrently; exits when stdin closes.
pub async fn runner_main() {
    use std::os::fd::AsFd;
    use tokio::net::unix::pipe;
    // The core gives us pipes: read and write them through the reactor. tokio's stdin/stdout go
    // through the blocking thread pool, a thread hand-off per line, which cost more CPU than the
    // probes themselves (measured with perf: futex wake-ups and context switches dominated).
    let input = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .and_then(pipe::Receiver::from_owned_fd);
    let output = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .and_then(pipe::Sender::from_owned_fd);
    let (Ok(input), Ok(mut output)) = (input, output) else {
        eprintln!("hms-console probe-runner: standard input and output must be pipes");
        return;
    };
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<RunnerReply>();
    let writer = tokio::spawn(async move {
        let mut buf = Vec::new();
        while let Some(reply) = out_rx.recv().await {
            // Everything ready goes out in one write.
            buf.clear();
            let mut next = Some(reply);
            while let Some(r) = next {
                serde_json::to_writer(&mut buf, &r).expect("a probe reply serialises");
                buf.push(b'\n');
                next = out_rx.try_recv().ok();
            }
            if output.write_all(&buf).await.is_err() {
                return;
            }
        }
    });
    let mut lines = BufReader::new(input).lines();
    let mut tasks = tokio::task::JoinSet::new();
    while let Ok(Some(line)) = lines.next_line().await {
        let Ok(request) = serde_json::from_str::<RunnerRequest>(&line) else {
            continue;
        };
        let out = out_tx.clone();
        tasks.spawn(async move {
            let timeout = Duration::from_millis(request.timeout_ms);
            let outcome = run_probe(&ProbeTarget::Exec(request.argv), timeout).await;
            let reply = match outcome {
                ProbeOutcome::Success => RunnerReply {
                    id: request.id,
                    ok: true,
                    timed_out: false,
                    reason: String::new(),
                },
                ProbeOutcome::TimedOut(_) => RunnerReply {
                    id: request.id,
                    ok: false,
                    timed_out: true,
                    reason: String::new(),
                },
                ProbeOutcome::Failed(reason) => RunnerReply {
                    id: request.id,
                    ok: false,
                    timed_out: false,
                    reason,
                },
            };
            let _ = out.send(reply);
        });
        // Reap finished tasks as we go so the set does not grow.
        while tasks.try_join_next().is_some() {}
    }
    // The core is gone: in-flight probes are dropped, which kills their process groups.
    tasks.shutdown().await;
    drop(out_tx);
    let _ = writer.await;
}
