//! What a killed core leaves running is killed, twice over.
//!
//! Every child carries the core's id in `HMS_CORE_ID` (its own children inherit it).
//!
//! 1. The reaper: a small process in its own process group that blocks reading a socket only the
//!    core holds open. However the core ends, even by SIGKILL, the kernel closes the socket; the
//!    reaper wakes and kills every process carrying the core's id, within milliseconds. If the
//!    reaper itself dies the core starts another.
//!
//!    The first reaper is forked by the core's start-up ([`super::launch::run_up`]) before the
//!    core's runtime or any thread of its own starts ([`fork_reaper`]): plain blocking code, one
//!    thread, no exec, so it shares the core's pages and costs a few hundred kB (issue 12; an exec
//!    of this program cost 2.5 MB PSS and 5.8 MB RSS, mostly the pages the command line's start-up
//!    touches). The core tells it its id, once it has one, in a few NUL-terminated words
//!    ([`Orders`]). A reaper started later (after one died, or by a core run in-process without
//!    `up`) is the core's own program run as `reaper` (`hms-core reaper`, or `hms-console reaper`
//!    for a core run by a lone `hms-console`), exec'd as before.
//! 2. The sweep: the core records its id in `core.json` in its data directory while it runs. A core
//!    that starts and finds the record of a core that is no longer alive kills whatever still carries
//!    that id (for the case where the reaper was killed together with the core).
//!
//! A process that scrubs its environment escapes both; that is documented in the README.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::process::CORE_ID_ENV;

/// What a running core records about itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CoreRecord {
    pub id: String,
    pub pid: u32,
    /// The core's cgroup tree (`…/hms-<id>`), when it contained its components in one.
    #[serde(default)]
    pub cgroup: Option<PathBuf>,
}

fn record_path(data_dir: &Path) -> PathBuf {
    data_dir.join("core.json")
}

/// Writes this core's record.
pub fn write_record(data_dir: &Path, record: &CoreRecord) -> std::io::Result<()> {
    let tmp = data_dir.join("core.json.tmp");
    std::fs::write(
        &tmp,
        serde_json::to_vec(record).map_err(std::io::Error::other)?,
    )?;
    std::fs::rename(tmp, record_path(data_dir))
}

/// Removes the record on a clean shutdown.
pub fn remove_record(data_dir: &Path) {
    let _ = std::fs::remove_file(record_path(data_dir));
}

/// Kills whatever a dead previous core left behind. Returns the pids it killed.
pub fn sweep(data_dir: &Path) -> Vec<u32> {
    let Ok(bytes) = std::fs::read(record_path(data_dir)) else {
        return Vec::new();
    };
    let Ok(old) = serde_json::from_slice::<CoreRecord>(&bytes) else {
        return Vec::new();
    };
    if old.pid != std::process::id() && kill(Pid::from_raw(old.pid as i32), None).is_ok() {
        // The old core is alive (the data-dir lock should have stopped us before this).
        return Vec::new();
    }
    if let Some(tree) = &old.cgroup {
        kill_tree(tree);
    }
    let killed = kill_core_children(&old.id);
    if !killed.is_empty() {
        tracing::warn!(count = killed.len(), pids = ?killed, "killed processes left behind by a core that was killed");
    }
    killed
}

/// Kills every process that carries `HMS_CORE_ID=core_id`, scanning again until none is left (a
/// child may fork while we kill), at most a few rounds. Returns the pids killed.
pub fn kill_core_children(core_id: &str) -> Vec<u32> {
    let marker = format!("{CORE_ID_ENV}={core_id}");
    let mut killed = Vec::new();
    for _ in 0..5 {
        let found = pids_with_env(&marker);
        if found.is_empty() {
            break;
        }
        for pid in &found {
            let _ = kill(Pid::from_raw(*pid as i32), Signal::SIGKILL);
        }
        killed.extend(found);
    }
    killed
}

/// Kills everything in a core's cgroup tree, waits a moment for it to empty, and removes it.
pub fn kill_tree(tree: &Path) {
    let tree = super::cgroup::ComponentCgroup::at(tree);
    if let Err(e) = tree.kill() {
        tracing::warn!(cause = %e, "cannot kill a core's cgroup tree");
        return;
    }
    if tree.wait_empty(std::time::Duration::from_secs(2)) {
        let _ = tree.remove();
    }
}

/// The reaper's main loop (`hms-console reaper --core-id ID [--cgroup TREE]`): wait for standard
/// input to close, which happens when the core exits however it exits, then kill what it left:
/// its cgroup tree (which nothing in it can leave) and whatever carries its id.
pub fn reaper_main(core_id: &str, cgroup: Option<&Path>) {
    let mut stdin = std::io::stdin();
    // It only waits from here: its start-up's pages are handed back, as the forked reaper's are.
    let _ = crate::pages::release_program_pages();
    // Anything the core writes is ignored; only the end of the stream matters.
    drain(&mut stdin);
    if let Some(message) = reap(core_id, cgroup) {
        eprintln!("{message}");
    }
}

/// Reads until the end of the stream (or an error, which ends it as well).
fn drain(from: &mut impl std::io::Read) {
    let mut sink = [0u8; 64];
    while matches!(from.read(&mut sink), Ok(n) if n > 0) {}
}

/// Kills what the core `core_id` left: its cgroup tree, then whatever carries its id. Returns the
/// line to log when it killed anything.
fn reap(core_id: &str, cgroup: Option<&Path>) -> Option<String> {
    if let Some(tree) = cgroup {
        kill_tree(tree);
    }
    let killed = kill_core_children(core_id);
    (!killed.is_empty()).then(|| {
        format!(
            "hms-console reaper: the core is gone; killed {} process(es) it left: {killed:?}",
            killed.len()
        )
    })
}

/// What the core tells a forked reaper once it knows it: three NUL-terminated words, the core's
/// id, its cgroup tree (empty for none) and its log file. Not JSON: the reaper reads them into
/// a buffer on its stack without allocating or running serde's code, so that until the core
/// ends it touches as few of the program's pages as it can (each page it touches counts in its
/// RSS, and the code it runs is faulted in 64 kB at a time). Measured with 100 idle children,
/// against a JSON line read through `BufReader` and serde: the reaper's RSS 2.44 → 2.31 MB, PSS
/// 1.16 → 1.08 MB (medians of two).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Orders<'a> {
    core_id: &'a str,
    cgroup: Option<&'a Path>,
    /// Where the reaper says what it killed (the core's log).
    log: &'a Path,
}

/// The most the orders may take: an id and two paths of at most PATH_MAX (4096) bytes each.
const MAX_ORDERS: usize = 3 * 4096 + 64;

impl<'a> Orders<'a> {
    fn encode(&self) -> Vec<u8> {
        use std::os::unix::ffi::OsStrExt;
        let mut out = Vec::new();
        for word in [
            self.core_id.as_bytes(),
            self.cgroup.map_or(&[][..], |c| c.as_os_str().as_bytes()),
            self.log.as_os_str().as_bytes(),
        ] {
            out.extend_from_slice(word);
            out.push(0);
        }
        out
    }

    /// The orders in `bytes` when they are complete: three NUL-terminated words, the first
    /// UTF-8 and not empty, the last not empty, no word holding a NUL.
    fn decode(bytes: &'a [u8]) -> Option<Orders<'a>> {
        use std::os::unix::ffi::OsStrExt;
        let mut words = bytes.split(|b| *b == 0);
        let (id, cgroup, log) = (words.next()?, words.next()?, words.next()?);
        // A fourth word, empty: the bytes end with the third NUL.
        if words.next() != Some(&[]) || words.next().is_some() {
            return None;
        }
        let core_id = std::str::from_utf8(id).ok().filter(|i| !i.is_empty())?;
        let path = |w: &'a [u8]| Path::new(std::ffi::OsStr::from_bytes(w));
        Some(Orders {
            core_id,
            cgroup: (!cgroup.is_empty()).then(|| path(cgroup)),
            log: Some(log).filter(|l| !l.is_empty()).map(path)?,
        })
    }
}

/// A reaper forked by [`fork_reaper`]: its pid, and the core's end of the socket between them
/// (close-on-exec, so no component holds it).
pub struct ForkedReaper {
    pid: nix::unistd::Pid,
    link: OwnedFd,
}

/// The reaper forked at start, until the core takes it ([`take_forked_reaper`]). A mutex only to
/// hand it from `up`'s start-up to the core once.
static FORKED: Mutex<Option<ForkedReaper>> = Mutex::new(None);

/// Forks the reaper. Call it once, as the core starts, before the runtime or any thread of the
/// core starts: the child runs in a copy of this process with only the calling thread. Best effort: when it
/// fails the core starts its program's `reaper` command instead.
#[allow(unsafe_code)]
pub fn fork_reaper() {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
    let Ok((core_end, reaper_end)) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    ) else {
        return;
    };
    // SAFETY: fork is unsafe because the child gets only the calling thread, and a lock another
    // thread held stays locked in it. The core's start-up calls this before its runtime starts; the
    // only other thread that may exist then is the log writer of a detached core, whose locks the
    // child never takes (it writes to its own file, never through `tracing` or the std streams'
    // locks), and the allocator (jemalloc in hms-core, glibc's in a lone hms-console) makes its
    // own locks safe across fork (pthread_atfork). The child never returns into the caller's
    // code: it runs `forked_reaper_main` and exits, catching any panic.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => {
            drop(core_end);
            let code =
                std::panic::catch_unwind(|| forked_reaper_main(reaper_end)).map_or(1, |()| 0);
            std::process::exit(code);
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => {
            drop(reaper_end);
            *FORKED.lock().unwrap_or_else(PoisonError::into_inner) = Some(ForkedReaper {
                pid: child,
                link: core_end,
            });
        }
        Err(_) => {}
    }
}

/// The reaper forked at start, if there is one and no core took it yet.
pub fn take_forked_reaper() -> Option<ForkedReaper> {
    FORKED.lock().unwrap_or_else(PoisonError::into_inner).take()
}

impl ForkedReaper {
    /// Tells the reaper whose children to kill. Written before the first component starts, so
    /// none can escape it. Fails when the reaper is gone.
    pub fn instruct(
        &self,
        core_id: &str,
        cgroup: Option<&Path>,
        log: &Path,
    ) -> std::io::Result<()> {
        use std::io::Write;
        let orders = Orders {
            core_id,
            cgroup,
            log,
        };
        std::fs::File::from(self.link.try_clone()?).write_all(&orders.encode())
    }
}

/// The forked reaper: its own process group and name, the std streams on /dev/null; then the
/// orders, the end of the stream, and the kill. Without orders the core ended before it had an
/// id (it failed to start, or it was the launcher of a detached core): nothing to kill.
fn forked_reaper_main(link: OwnedFd) {
    use std::io::{Read, Write};
    let _ = nix::unistd::setpgid(nix::unistd::Pid::from_raw(0), nix::unistd::Pid::from_raw(0));
    let _ = nix::sys::prctl::set_name(c"hms-reaper");
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
        let _ = nix::unistd::dup2_stderr(&null);
    }
    let mut link = std::fs::File::from(link);
    // On the stack, read by plain reads: nothing is allocated until the core is gone.
    let mut buf = [0u8; MAX_ORDERS];
    let mut len = 0;
    let orders = loop {
        if let Some(orders) = Orders::decode(&buf[..len]) {
            break orders;
        }
        match link.read(&mut buf[len..]) {
            Ok(n) if n > 0 => len += n,
            // The end (or no room left) before whole orders: nothing to kill.
            _ => return,
        }
    };
    // From here it only waits: the code it ran so far is handed back (`hms::pages`; measured
    // with 100 idle children, allocator caches off too: its PSS 1.0 → 0.66 MB, RSS 1.9 → 1.5).
    // It maps again what it runs when the core ends.
    let _ = crate::pages::release_program_pages();
    drain(&mut link);
    if let Some(message) = reap(orders.core_id, orders.cgroup) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(orders.log);
        if let Ok(mut log) = log {
            let _ = writeln!(log, "{message}");
        }
    }
}

/// Keeps a reaper running for this core until `cancel`; then lets it exit. `forked`, the reaper
/// forked at start and already instructed, is watched first; when it dies (or without one) the
/// core starts `hms-console reaper`.
pub async fn keep_reaper(
    core_id: String,
    cgroup: Option<PathBuf>,
    log: PathBuf,
    forked: Option<ForkedReaper>,
    cancel: tokio_util::sync::CancellationToken,
) {
    if let Some(forked) = forked {
        if watch_forked(forked, &cancel).await {
            return;
        }
        tracing::warn!("the reaper exited; starting another");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    loop {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map(std::process::Stdio::from)
            .unwrap_or_else(|_| std::process::Stdio::null());
        // /proc/self/exe still works when the binary was replaced on disk since we started.
        let mut command = tokio::process::Command::new("/proc/self/exe");
        command.args(["reaper", "--core-id", &core_id]);
        if let Some(tree) = &cgroup {
            command.arg("--cgroup").arg(tree);
        }
        let spawned = command
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .process_group(0)
            .kill_on_drop(false)
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(cause = %e, "cannot start the reaper; orphans will be swept on the next start");
                return;
            }
        };
        // Holding the pipe's write end is the whole protocol.
        let pipe = child.stdin.take();
        tokio::select! {
            _ = cancel.cancelled() => {
                drop(pipe);
                let _ = tokio::time::timeout(std::time::Duration::from_secs(2), child.wait()).await;
                return;
            }
            status = child.wait() => {
                drop(pipe);
                tracing::warn!(?status, "the reaper exited; starting another");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// Watches a forked reaper until `cancel` (then tells it to finish, waits up to 2 s for it, and
/// answers true) or until it dies (false).
async fn watch_forked(forked: ForkedReaper, cancel: &tokio_util::sync::CancellationToken) -> bool {
    use tokio::io::AsyncReadExt;
    let ForkedReaper { pid, link } = forked;
    let link = std::os::unix::net::UnixStream::from(link);
    let watched = link
        .set_nonblocking(true)
        .and_then(|()| tokio::net::UnixStream::from_std(link));
    let Ok(mut link) = watched else {
        // Cannot watch it: it still reaps when the core ends (its end stays open in this task).
        cancel.cancelled().await;
        return true;
    };
    // The reaper never writes: the read ends when it is gone.
    let gone = async {
        let mut sink = [0u8; 64];
        while matches!(link.read(&mut sink).await, Ok(n) if n > 0) {}
    };
    let reap_zombie = move || {
        let _ = nix::sys::wait::waitpid(pid, None);
    };
    tokio::select! {
        _ = cancel.cancelled() => {}
        () = gone => {
            let _ = tokio::task::spawn_blocking(reap_zombie).await;
            return false;
        }
    }
    // The end of the stream is the reaper's signal; it closes its end as it exits.
    let _ = tokio::io::AsyncWriteExt::shutdown(&mut link).await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        let mut sink = [0u8; 64];
        while matches!(link.read(&mut sink).await, Ok(n) if n > 0) {}
        let _ = tokio::task::spawn_blocking(reap_zombie).await;
    })
    .await;
    true
}

/// Pids whose environment holds exactly `entry` (`NAME=value`).
pub fn pids_with_env(entry: &str) -> Vec<u32> {
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|env| env.split(|b| *b == 0).any(|v| v == entry.as_bytes()))
                .unwrap_or(false)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn any_path() -> impl Strategy<Value = PathBuf> {
        use std::os::unix::ffi::OsStringExt;
        // Any bytes but NUL, which no path holds: spaces, newlines, non-UTF-8 included.
        proptest::collection::vec(1u8..=255, 1..64)
            .prop_map(|b| PathBuf::from(std::ffi::OsString::from_vec(b)))
    }

    proptest! {
        /// What the core writes reads back the same, and no part of it reads as orders: the
        /// reaper never acts on orders it has only part of.
        #[test]
        fn orders_round_trip_and_a_part_is_never_orders(
            core_id in "[a-f0-9-]{1,40}",
            cgroup in proptest::option::of(any_path()),
            log in any_path(),
        ) {
            let orders = Orders { core_id: &core_id, cgroup: cgroup.as_deref(), log: &log };
            let bytes = orders.encode();
            prop_assert_eq!(Orders::decode(&bytes), Some(orders));
            for end in 0..bytes.len() {
                prop_assert_eq!(Orders::decode(&bytes[..end]), None);
            }
        }

        /// No bytes make the decoder panic.
        #[test]
        fn any_bytes_are_orders_or_not(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = Orders::decode(&bytes);
        }
    }

    #[test]
    fn orders_without_an_id_or_a_log_are_refused() {
        assert_eq!(Orders::decode(b"\0\0/log\0"), None);
        assert_eq!(Orders::decode(b"id\0\0\0"), None);
        assert_eq!(Orders::decode(b"id\0/cg\0/log\0extra"), None);
        assert_eq!(
            Orders::decode(b"id\0\0/log\0"),
            Some(Orders {
                core_id: "id",
                cgroup: None,
                log: Path::new("/log")
            })
        );
    }
}
