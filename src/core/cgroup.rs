//! Containment: keeping every process a component starts, however it tries to leave, where the core
//! can find and kill it. A cgroup v2 per component when the machine lets us make one; process
//! groups and a child subreaper when it does not.
//!
//! Why: a process group and the `HMS_CORE_ID` variable are both things a child can leave. A child
//! that calls `setsid` or double-forks leaves the group that stop signals; one that rewrites its
//! argv area (redis does, so does `perl -e '$0 = "x" x 3000'`) wipes /proc/PID/environ and so
//! escapes the reaper too. A cgroup is not the child's to leave: every descendant is born in it,
//! unprivileged processes cannot move out of a cgroup they do not own, and the kernel can kill the
//! whole tree at once (`cgroup.kill`) and tells us when it is empty (`cgroup.events`).
//!
//! This module only finds, makes, reads, kills and removes cgroups, and offers the spawn helper
//! and the subreaper fallback. It decides nothing about when to stop or restart; the supervisor
//! calls it. It must never touch a cgroup it did not make (only `hms-<core id>` directories under
//! the core's own cgroup, and their children).
//!
//! # Discovery
//! The cgroup v2 mount is found in /proc/self/mountinfo (filesystem type `cgroup2`), never assumed:
//! a pure-v2 box has it at /sys/fs/cgroup, a hybrid one (as our test VM) at
//! /sys/fs/cgroup/unified, and a container may mount it anywhere. The core's own cgroup is the `0::`
//! line of /proc/self/cgroup, relative to the mount's root (its fourth mountinfo field, which is
//! not `/` inside a cgroup namespace or a bind mount).
//!
//! # Who may make cgroups
//! - root may make cgroups anywhere; the core makes its tree under its own cgroup, not at the top,
//!   so a core started by a systemd unit stays inside that unit.
//! - a user may make cgroups only in a subtree delegated to them: the directory and its
//!   `cgroup.procs` belong to their uid. systemd delegates `user@UID.service` to the user, so a
//!   core started from a desktop terminal usually sits in an `app-….scope` or
//!   `vte-spawn-….scope` under it that the user owns (writable: containment works); one started
//!   from an SSH login sits in `session-N.scope`, which belongs to root (not writable: fallback).
//!   `systemd-run --user --scope -p Delegate=yes hms-console up` always gives a delegated scope.
//!   Moving a process between two cgroups needs write access to `cgroup.procs` of their common
//!   ancestor, which is the core's own cgroup here, so the check is on that file.
//! - [`Containment::detect`] tries: no cgroup2 mount, no `0::` line, no write access, or a failed
//!   `mkdir` each give [`Containment::ProcessGroup`] with the reason, which `status`/`up` show.
//!
//! # Layout and the "no internal processes" rule
//! ```text
//! <the core's cgroup>/            (unchanged unless the core is alone in it, see below)
//!   hms-<core id>/                 one per core; the core id names it so a sweep can find it
//!     core/                        the core itself, only after enable_controllers moved it here
//!     c-<component>/               one per component; all its descendants live here
//! ```
//! cgroup v2 lets a cgroup with processes have child cgroups, but not hand domain controllers
//! (memory, cpu, io, pids) to them: a cgroup that enables one in `cgroup.subtree_control` must
//! hold no process itself (the root cgroup is exempt). Killing, listing, `cgroup.events` and
//! `cpu.stat`'s `usage_usec` need no controller, so containment works even when the core shares
//! its cgroup with the shell that started it. Only `memory.current` (and limits, later) need the
//! memory controller enabled all the way down; [`Containment::enable_controllers`] does that when
//! it may: if the core is the only process in its cgroup, it moves itself into `hms-<id>/core`
//! first, then enables what `cgroup.controllers` offers in its cgroup and in `hms-<id>`. It never
//! writes `subtree_control` of the mount's root (that is the whole machine's choice) and never
//! moves other processes. Where it may not, readings are `None` and that is said in the log.
//!
//! # Getting a child into its cgroup without a race
//! Measured on a shared, busy 2-core VM (kernel 6.18, hybrid hierarchy): the median of 300
//! spawn-and-reap round trips of `cat` (stdin closed at once), the methods interleaved.
//! `scripts/bench/cgroup.sh` prints the first three rows; the two `unsafe` ones were measured
//! with a throwaway program that is not in the repository (no unsafe code here).
//!
//! | method                                                  | median      | race-free | unsafe |
//! |---------------------------------------------------------|-------------|-----------|--------|
//! | plain `Command::spawn` (posix_spawn, vfork-like)        | 0.95 ms     | —         | no     |
//! | spawn, then write the pid to `cgroup.procs` (`add`)     | +0.03 ms    | no        | no     |
//! | `sh -c 'echo 0 > …/cgroup.procs; exec "$@"'` (chosen)   | +0.8 ms     | yes       | no     |
//! | `pre_exec` writes `0` to `cgroup.procs` (forces fork)   | +0.2–0.5 ms | yes       | yes    |
//! | clone3 + `CLONE_INTO_CGROUP`, fork-like, hand-written   | ±0          | yes       | yes    |
//!
//! Spawning then moving leaves a window (exec to the write) in which the program can fork a child
//! that stays behind in the core's cgroup. `pre_exec` closes it but makes std fork the whole core
//! instead of posix_spawn: cheap in a small benchmark process, but fork copies the core's page tables and
//! earlier tripled our restart latency, and it needs `unsafe`. clone3 with `CLONE_INTO_CGROUP` is
//! the right primitive (no migration at all) but neither std, tokio, nix nor rustix offers a spawn
//! on top of it (glibc 2.39's `posix_spawnattr_setcgroup_np` is newer than Debian 12's 2.36); doing
//! it by hand means our own unsafe fork/exec and losing tokio's `Child`. So the child moves
//! itself: [`ComponentCgroup::command`] starts `/bin/sh`, which writes `0` (itself) into the
//! component's `cgroup.procs` before it `exec`s the program. Nothing runs before the move, so
//! nothing can escape, and the pid std and tokio see is the program's own. It costs one extra exec
//! of sh, about 0.8 ms per spawn (1.75 ms instead of 0.95 ms), next to a restart backoff of at
//! least 100 ms.
//! Differences the caller sees: a program that cannot be run is not an `Err` from `spawn` but an
//! exit with status 127 (not found) or 126 (not executable), with sh's message on stderr; a failed
//! move exits with [`JOIN_FAILED`] before the program starts. `PATH` lookup uses the child's own
//! environment, and sh adds `PWD` (the child's working directory) when the environment lacks it.
//!
//! # Without cgroups: the subreaper
//! Where no cgroup can be made, [`become_subreaper`] makes the core a child subreaper, so a
//! grandchild whose parent exits (a double fork, a daemonising `setsid`) is re-parented to the core
//! instead of to init. The core can then still find it ([`adopted_orphans`]: processes whose parent
//! is the core but which the core did not spawn), kill it on stop and at shutdown, and must reap
//! it ([`reap_orphans`]) or it stays a zombie. The supervisor should call `become_subreaper` once
//! at start, before spawning anything; on each child exit (and on a timer while orphans are
//! known) call `reap_orphans` with the pids it spawned itself, so tokio keeps reaping its own
//! children (never `waitpid(-1)`, which would steal their exit statuses); on stop, kill the
//! orphans whose `HMS_COMPONENT` names the component, and at shutdown all of them. It does not help
//! against a process that also scrubs its environment while its parent is still alive; only a
//! cgroup does.

use std::ffi::OsStr;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::{AccessFlags, Pid, access};

/// Names the per-core cgroup: `hms-<core id>`.
pub const PARENT_PREFIX: &str = "hms-";
/// Names a component's cgroup: `c-<component>`. The prefix keeps a component called `core` or
/// `cgroup.procs` from meeting the core's leaf or an interface file.
pub const COMPONENT_PREFIX: &str = "c-";
/// The leaf the core moves itself into when it enables controllers.
pub const CORE_LEAF: &str = "core";
/// The exit status of a child made by [`ComponentCgroup::command`] that could not join its cgroup.
pub const JOIN_FAILED: i32 = 125;
/// How often the `wait_*` helpers look again.
const POLL: Duration = Duration::from_millis(2);

/// Why a cgroup operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A cgroup file or directory could not be read, written, made or removed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A component or core id that cannot name a cgroup directory.
    #[error("'{0}' cannot name a cgroup: use letters, digits, '-', '_' and '.'")]
    BadName(String),
    /// The cgroup still has processes (or child cgroups with processes), so it cannot be removed.
    #[error("{} still has processes", .0.display())]
    Busy(PathBuf),
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CgroupError {
    let path = path.to_path_buf();
    move |source| CgroupError::Io {
        action,
        path,
        source,
    }
}

/// How this core keeps its components' processes together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Containment {
    /// A cgroup v2 tree of our own: `root` is `…/hms-<core id>`, made by [`Containment::detect`].
    Cgroup { root: PathBuf },
    /// No cgroup could be made; components run in process groups (with [`become_subreaper`]).
    ProcessGroup { reason: String },
}

/// Where the cgroup v2 hierarchy is mounted: `(mount point, the mount's root in the hierarchy)`,
/// from the text of /proc/self/mountinfo.
pub fn find_v2_mount(mountinfo: &str) -> Option<(PathBuf, String)> {
    mountinfo.lines().find_map(|line| {
        // "36 25 0:30 / /sys/fs/cgroup rw,… shared:9 - cgroup2 cgroup2 rw,…": optional fields
        // end at " - ", then the filesystem type.
        let (left, right) = line.split_once(" - ")?;
        if right.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        let mut fields = left.split_whitespace();
        let root = fields.nth(3)?;
        let point = fields.next()?;
        Some((PathBuf::from(unescape(point)), unescape(root)))
    })
}

/// mountinfo writes space, tab, newline and backslash as octal escapes (`\040`).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The process's cgroup v2 path (relative to the hierarchy's root), from the `0::` line of the
/// text of /proc/PID/cgroup.
pub fn own_cgroup(proc_cgroup: &str) -> Option<String> {
    proc_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| p.trim_end_matches(" (deleted)").to_string())
}

/// The directory of a cgroup given its hierarchy path, the mount point and the mount's root.
fn cgroup_dir(mount: &Path, mount_root: &str, cgroup: &str) -> Option<PathBuf> {
    let rel = if mount_root == "/" {
        cgroup
    } else {
        // Outside the mount's root (a cgroup namespace shows "/.." paths): not reachable.
        let rest = cgroup.strip_prefix(mount_root)?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        rest
    };
    let rel = rel.trim_start_matches('/');
    if rel.split('/').any(|part| part == "..") {
        return None;
    }
    Some(if rel.is_empty() {
        mount.to_path_buf()
    } else {
        mount.join(rel)
    })
}

fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= 200
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

impl Containment {
    /// Finds the cgroup v2 hierarchy and the core's cgroup, and makes `hms-<core_id>` under it;
    /// any step that fails gives [`Containment::ProcessGroup`] with the reason.
    pub fn detect(core_id: &str) -> Containment {
        match Self::try_detect(core_id) {
            Ok(root) => Containment::Cgroup { root },
            Err(reason) => Containment::ProcessGroup { reason },
        }
    }

    fn try_detect(core_id: &str) -> Result<PathBuf, String> {
        if !safe_name(core_id) {
            return Err(format!("core id '{core_id}' cannot name a cgroup"));
        }
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("reading /proc/self/mountinfo: {e}"))?;
        let (mount, mount_root) =
            find_v2_mount(&mountinfo).ok_or("no cgroup v2 hierarchy is mounted")?;
        let proc_cgroup = std::fs::read_to_string("/proc/self/cgroup")
            .map_err(|e| format!("reading /proc/self/cgroup: {e}"))?;
        let ours = own_cgroup(&proc_cgroup).ok_or("this process has no cgroup v2 path")?;
        let dir = cgroup_dir(&mount, &mount_root, &ours).ok_or_else(|| {
            format!(
                "our cgroup {ours} is outside the mount at {}",
                mount.display()
            )
        })?;
        for path in [dir.clone(), dir.join("cgroup.procs")] {
            access(&path, AccessFlags::W_OK).map_err(|e| {
                format!(
                    "{} is not writable by uid {} ({e}); start the core in a delegated cgroup, \
                     e.g. `systemd-run --user --scope -p Delegate=yes hms-console up`",
                    path.display(),
                    nix::unistd::geteuid()
                )
            })?;
        }
        let root = dir.join(format!("{PARENT_PREFIX}{core_id}"));
        match std::fs::create_dir(&root) {
            Ok(()) => Ok(root),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(root),
            Err(e) => Err(format!("cannot make {}: {e}", root.display())),
        }
    }

    /// One line for `status` and `up`.
    pub fn describe(&self) -> String {
        match self {
            Containment::Cgroup { root } => format!("cgroup v2 at {}", root.display()),
            Containment::ProcessGroup { reason } => {
                format!("process groups (no writable cgroup: {reason})")
            }
        }
    }

    /// The per-core cgroup, when there is one.
    pub fn root(&self) -> Option<&Path> {
        match self {
            Containment::Cgroup { root } => Some(root),
            Containment::ProcessGroup { .. } => None,
        }
    }

    /// Makes (or finds again, after a restart) the cgroup of one component; `None` without
    /// cgroups.
    pub fn create(&self, component: &str) -> Result<Option<ComponentCgroup>, CgroupError> {
        let Some(root) = self.root() else {
            return Ok(None);
        };
        if !safe_name(component) {
            return Err(CgroupError::BadName(component.to_string()));
        }
        let path = root.join(format!("{COMPONENT_PREFIX}{component}"));
        match std::fs::create_dir(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io("making", &path)(e)),
        }
        Ok(Some(ComponentCgroup { path }))
    }

    /// The component cgroups under the core's cgroup (not the core's own leaf).
    pub fn components(&self) -> Result<Vec<ComponentCgroup>, CgroupError> {
        let Some(root) = self.root() else {
            return Ok(Vec::new());
        };
        Ok(child_cgroups(root)?
            .into_iter()
            .filter(|p| p.file_name() != Some(OsStr::new(CORE_LEAF)))
            .map(|path| ComponentCgroup { path })
            .collect())
    }

    /// Kills every process of every component of this core (the reaper's and shutdown's sweep).
    pub fn kill_all(&self) -> Result<(), CgroupError> {
        for component in self.components()? {
            component.kill()?;
        }
        Ok(())
    }

    /// Kills everything, waits up to `timeout` for the cgroups to empty, and removes them and the
    /// core's cgroup. If the core moved itself into its leaf, the (empty once it exits) tree stays:
    /// the core cannot move back into a cgroup that hands out controllers; the next core's
    /// [`Containment::sweep_stale`] removes it.
    pub fn cleanup(&self, timeout: Duration) -> Result<(), CgroupError> {
        let Some(root) = self.root() else {
            return Ok(());
        };
        self.kill_all()?;
        let deadline = Instant::now() + timeout;
        for component in self.components()? {
            component.wait_empty(deadline.saturating_duration_since(Instant::now()));
            component.remove()?;
        }
        remove_if_unused(root)
    }

    /// Enables the memory, cpu and pids controllers for the components where the kernel lets us
    /// without touching anyone else (see the module header); returns those now available to
    /// component cgroups. Moves the core into `hms-<id>/core` when it is alone in its cgroup.
    pub fn enable_controllers(&self) -> Result<Vec<String>, CgroupError> {
        let Some(root) = self.root() else {
            return Ok(Vec::new());
        };
        let ours = root.parent().expect("the core's cgroup is under a mount");
        let wanted = ["cpu", "memory", "pids"];
        let is_mount_root = !ours.join("cgroup.type").exists();
        if !is_mount_root
            && !controllers(root, "cgroup.controllers")?
                .iter()
                .any(|c| wanted.contains(&c.as_str()))
        {
            let me = std::process::id();
            let others = read_pids(&ours.join("cgroup.procs"))?
                .into_iter()
                .any(|p| p != me);
            if !others {
                let leaf = root.join(CORE_LEAF);
                match std::fs::create_dir(&leaf) {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(io("making", &leaf)(e)),
                }
                write(&leaf.join("cgroup.procs"), "0")?;
                enable(ours, &wanted)?;
            }
        }
        enable(root, &wanted)?;
        let available = controllers(root, "cgroup.subtree_control")?;
        Ok(available)
    }

    /// Kills and removes the cgroups of cores that are gone: every `hms-<id>` beside ours whose id
    /// `is_alive` denies (the caller knows its cores, e.g. from `core.json`). Returns the swept
    /// ids; one that does not empty in `timeout` is left and logged.
    pub fn sweep_stale(
        &self,
        is_alive: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Result<Vec<String>, CgroupError> {
        let Some(root) = self.root() else {
            return Ok(Vec::new());
        };
        let ours = root.parent().expect("the core's cgroup is under a mount");
        let mut swept = Vec::new();
        for dir in child_cgroups(ours)? {
            let Some(id) = dir
                .file_name()
                .and_then(OsStr::to_str)
                .and_then(|n| n.strip_prefix(PARENT_PREFIX))
            else {
                continue;
            };
            if dir == root || is_alive(id) {
                continue;
            }
            let stale = ComponentCgroup { path: dir.clone() };
            stale.kill()?;
            if !stale.wait_empty(timeout) {
                tracing::warn!(cgroup = %dir.display(), "a dead core's cgroup did not empty");
                continue;
            }
            stale.remove()?;
            swept.push(id.to_string());
        }
        Ok(swept)
    }

    /// Kills and removes what the core `dead_core_id` left (a core killed by SIGKILL).
    pub fn sweep_dead_core(
        &self,
        dead_core_id: &str,
        timeout: Duration,
    ) -> Result<bool, CgroupError> {
        Ok(!self
            .sweep_stale(|id| id != dead_core_id, timeout)?
            .is_empty())
    }
}

/// What a component's whole tree has used, when the kernel counts it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// CPU time of every process that ever ran in the cgroup (`cpu.stat` `usage_usec`; no
    /// controller needed).
    pub cpu_usec: Option<u64>,
    /// Memory charged to the cgroup now (`memory.current`; needs the memory controller, which
    /// the core enables for its components' cgroups when it starts, if it may, and never after:
    /// so a core that finds no `memory.current` once need not look for it again).
    pub memory_bytes: Option<u64>,
}

/// One component's cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentCgroup {
    path: PathBuf,
}

impl ComponentCgroup {
    /// The cgroup at `path` (one this core made, or a dead core's tree named in its record).
    pub fn at(path: &Path) -> ComponentCgroup {
        ComponentCgroup {
            path: path.to_path_buf(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves a process that was just spawned, and any children it already forked, into this
    /// cgroup. The spawn path uses this rather than [`ComponentCgroup::command`]: posix_spawn
    /// returns once the program has been exec'd and the move follows within tens of
    /// microseconds, before a dynamically linked program has finished loading, let alone forked;
    /// the children it may have forked by then are moved too (from
    /// `/proc/PID/task/*/children`). That keeps a restart at its ~1 ms instead of the +0.8 ms of
    /// an extra exec of sh (measured in the module header).
    pub fn add_tree(&self, pid: u32) -> Result<(), CgroupError> {
        self.add(pid)?;
        let mut stack = vec![pid];
        let mut seen = 0;
        while let Some(p) = stack.pop() {
            seen += 1;
            if seen > 4096 {
                break;
            }
            let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
                continue;
            };
            for task in tasks.filter_map(Result::ok) {
                let Ok(text) = std::fs::read_to_string(task.path().join("children")) else {
                    continue;
                };
                for child in text
                    .split_ascii_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok())
                {
                    // A child that exited in between is no error.
                    let _ = self.add(child);
                    stack.push(child);
                }
            }
        }
        Ok(())
    }

    /// A command that runs `argv` inside this cgroup (see "without a race" in the module header).
    /// Add env, stdio, `process_group` and the rest as for any command; for tokio, use
    /// `tokio::process::Command::from(cgroup.command(argv))`.
    pub fn command<S: AsRef<OsStr>>(&self, argv: &[S]) -> Command {
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(format!(
                "echo 0 > \"$0/cgroup.procs\" || exit {JOIN_FAILED}; exec \"$@\""
            ))
            .arg(&self.path)
            .args(argv);
        cmd
    }

    /// Moves a running process (and none of the children it already has) into this cgroup.
    pub fn add(&self, pid: u32) -> Result<(), CgroupError> {
        write(&self.path.join("cgroup.procs"), &pid.to_string())
    }

    /// SIGKILLs every process in the cgroup and below, at once where the kernel can
    /// (`cgroup.kill`, Linux 5.14); older kernels: freeze (5.2), kill each, thaw.
    pub fn kill(&self) -> Result<(), CgroupError> {
        let kill_file = self.path.join("cgroup.kill");
        match std::fs::write(&kill_file, "1") {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound && self.path.exists() => {}
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io("writing", &kill_file)(e)),
        }
        self.kill_each()
    }

    /// What [`ComponentCgroup::kill`] does where `cgroup.kill` is missing (Linux before 5.14);
    /// public so that it is tested on newer kernels too.
    pub fn kill_each(&self) -> Result<(), CgroupError> {
        let freeze = self.path.join("cgroup.freeze");
        let frozen = std::fs::write(&freeze, "1").is_ok();
        // Frozen, nothing can fork; unfrozen, a fork may land between reading and killing, so look
        // again a few times.
        for _ in 0..if frozen { 1 } else { 5 } {
            for pid in self.pids()? {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
        }
        if frozen {
            // SIGKILL takes effect on frozen tasks once they are thawed.
            let _ = std::fs::write(&freeze, "0");
        }
        Ok(())
    }

    /// True when no process is left in the cgroup or below (`cgroup.events`: `populated 0`). A
    /// cgroup that is gone is empty.
    pub fn is_empty(&self) -> Result<bool, CgroupError> {
        let events = self.path.join("cgroup.events");
        match std::fs::read_to_string(&events) {
            Ok(text) => Ok(text.lines().any(|l| l.trim() == "populated 0")),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(true),
            Err(e) => Err(io("reading", &events)(e)),
        }
    }

    /// Waits up to `timeout` for [`ComponentCgroup::is_empty`]; true if it emptied.
    pub fn wait_empty(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.is_empty().unwrap_or(false) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(POLL);
        }
    }

    /// Every process in the cgroup and its descendants.
    pub fn pids(&self) -> Result<Vec<u32>, CgroupError> {
        let mut pids = Vec::new();
        let mut stack = vec![self.path.clone()];
        while let Some(dir) = stack.pop() {
            pids.extend(read_pids(&dir.join("cgroup.procs"))?);
            stack.extend(child_cgroups(&dir)?);
        }
        Ok(pids)
    }

    /// What the whole tree has used; a reading the kernel does not offer here is `None`, and
    /// the memory charged is read only when `memory` (see [`Usage::memory_bytes`]).
    pub fn usage(&self, memory: bool) -> Usage {
        let mut buf = [0u8; super::procinfo::SMALL_FILE];
        let cpu_usec =
            super::procinfo::read_small(&self.path.join("cpu.stat"), &mut buf).and_then(|text| {
                text.lines()
                    .find_map(|l| l.strip_prefix("usage_usec "))
                    .and_then(|v| v.trim().parse().ok())
            });
        let memory_bytes = memory
            .then(|| super::procinfo::read_small(&self.path.join("memory.current"), &mut buf))
            .flatten()
            .and_then(|v| v.trim().parse().ok());
        Usage {
            cpu_usec,
            memory_bytes,
        }
    }

    /// Removes the cgroup and any below it once they are empty. Gone already is fine.
    pub fn remove(&self) -> Result<(), CgroupError> {
        if !self.path.exists() {
            return Ok(());
        }
        for child in child_cgroups(&self.path)? {
            ComponentCgroup { path: child }.remove()?;
        }
        match std::fs::remove_dir(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) if e.raw_os_error() == Some(nix::libc::EBUSY) => {
                Err(CgroupError::Busy(self.path.clone()))
            }
            Err(e) => Err(io("removing", &self.path)(e)),
        }
    }
}

/// Removes `dir` unless a process (the core in its leaf) still lives below it.
fn remove_if_unused(dir: &Path) -> Result<(), CgroupError> {
    let tree = ComponentCgroup {
        path: dir.to_path_buf(),
    };
    if tree.is_empty()? {
        tree.remove()
    } else {
        Ok(())
    }
}

fn child_cgroups(dir: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("listing", dir)(e)),
    };
    Ok(entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect())
}

fn read_pids(procs: &Path) -> Result<Vec<u32>, CgroupError> {
    match std::fs::read_to_string(procs) {
        Ok(text) => Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io("reading", procs)(e)),
    }
}

fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    std::fs::write(path, value).map_err(io("writing", path))
}

fn controllers(dir: &Path, file: &str) -> Result<Vec<String>, CgroupError> {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).map_err(io("reading", &path))?;
    Ok(text.split_whitespace().map(str::to_string).collect())
}

/// Enables in `dir`'s subtree those of `wanted` that `dir` has; one at a time, so one the kernel
/// refuses does not stop the others.
fn enable(dir: &Path, wanted: &[&str]) -> Result<(), CgroupError> {
    let offered = controllers(dir, "cgroup.controllers")?;
    for c in wanted.iter().filter(|c| offered.iter().any(|o| o == *c)) {
        if let Err(e) = std::fs::write(dir.join("cgroup.subtree_control"), format!("+{c}")) {
            tracing::info!(cgroup = %dir.display(), controller = c, cause = %e, "controller not enabled");
        }
    }
    Ok(())
}

/// Makes the core a child subreaper: orphaned descendants re-parent to it instead of init (see
/// the module header for what the supervisor must then do).
pub fn become_subreaper() -> nix::Result<()> {
    nix::sys::prctl::set_child_subreaper(true)
}

/// The parent pid and state letter of a process, from /proc/PID/stat.
fn parent_and_state(pid: u32) -> Option<(u32, char)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut rest = super::procinfo::stat_fields(&stat)?;
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((ppid, state))
}

/// Processes whose parent is this process but which it did not spawn itself (`spawned`): orphans
/// it adopted as a subreaper. Zombies included (see [`reap_orphans`]).
///
/// Read from the `children` file of each of this process's threads (an adopted orphan is listed
/// under the thread the kernel gave it to), not by reading the stat of every process on the
/// machine: without cgroups this runs on every SIGKILL of a component, on the way to its restart.
/// Where the kernel has no `children` files (CONFIG_PROC_CHILDREN), every process is read.
pub fn adopted_orphans(spawned: &[u32]) -> Vec<u32> {
    let mut children = match own_children() {
        Some(children) => children,
        None => {
            let me = std::process::id();
            let Ok(entries) = std::fs::read_dir("/proc") else {
                return Vec::new();
            };
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter(|pid| parent_and_state(*pid).is_some_and(|(ppid, _)| ppid == me))
                .collect()
        }
    };
    children.retain(|pid| !spawned.contains(pid));
    children
}

/// The children of every thread of this process, or `None` where /proc does not list them.
fn own_children() -> Option<Vec<u32>> {
    std::fs::metadata("/proc/thread-self/children").ok()?;
    let mut children = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        // A thread that ended meanwhile has no file, and no children.
        let Ok(text) = std::fs::read_to_string(task.path().join("children")) else {
            continue;
        };
        children.extend(
            text.split_ascii_whitespace()
                .filter_map(|c| c.parse::<u32>().ok()),
        );
    }
    Some(children)
}

/// Reaps adopted orphans that have exited, without touching the children in `spawned` (tokio
/// reaps those). Returns the pids reaped.
pub fn reap_orphans(spawned: &[u32]) -> Vec<u32> {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    adopted_orphans(spawned)
        .into_iter()
        .filter(|pid| {
            matches!(
                waitpid(Pid::from_raw(*pid as i32), Some(WaitPidFlag::WNOHANG)),
                Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..))
            )
        })
        .collect()
}

/// True while `pid` runs: it exists and is not a zombie.
pub fn is_running(pid: u32) -> bool {
    parent_and_state(pid).is_some_and(|(_, state)| state != 'Z' && state != 'X')
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const PURE_V2: &str = "\
25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 25 0:24 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:8 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";
    const NAMESPACED: &str =
        "900 800 0:24 /user.slice/x.scope /my\\040cgroup rw shared:1 - cgroup2 cgroup2 rw\n";

    #[test]
    fn the_v2_mount_is_found_on_a_hybrid_and_a_pure_hierarchy() {
        assert_eq!(
            find_v2_mount(HYBRID),
            Some((PathBuf::from("/sys/fs/cgroup/unified"), "/".into()))
        );
        assert_eq!(
            find_v2_mount(PURE_V2),
            Some((PathBuf::from("/sys/fs/cgroup"), "/".into()))
        );
        assert_eq!(find_v2_mount("31 23 0:28 / /x rw - tmpfs tmpfs rw\n"), None);
    }

    #[test]
    fn a_mount_with_a_root_and_an_escaped_space_maps_paths_under_it() {
        let (mount, root) = find_v2_mount(NAMESPACED).expect("a cgroup2 line");
        assert_eq!(mount, PathBuf::from("/my cgroup"));
        assert_eq!(
            cgroup_dir(&mount, &root, "/user.slice/x.scope/sub"),
            Some(PathBuf::from("/my cgroup/sub"))
        );
        assert_eq!(cgroup_dir(&mount, &root, "/user.slice/other"), None);
        assert_eq!(cgroup_dir(&mount, &root, "/user.slice/x.scope2"), None);
    }

    #[test]
    fn our_cgroup_is_the_zero_line() {
        let text =
            "4:memory:/a\n0::/user.slice/user-1000.slice/user@1000.service/app.slice/x.scope\n";
        assert_eq!(
            own_cgroup(text).as_deref(),
            Some("/user.slice/user-1000.slice/user@1000.service/app.slice/x.scope")
        );
        assert_eq!(
            cgroup_dir(Path::new("/sys/fs/cgroup/unified"), "/", "/"),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(own_cgroup("1:cpu:/\n"), None);
    }

    #[test]
    fn names_that_could_leave_the_tree_are_refused() {
        assert!(safe_name("web-1.api_x"));
        for bad in ["", ".", "..", "a/b", "a b", "x\n"] {
            assert!(!safe_name(bad), "{bad:?}");
        }
        let c = Containment::ProcessGroup {
            reason: "test".into(),
        };
        assert_eq!(c.create("a/b").ok(), Some(None), "no cgroups: nothing made");
        assert_eq!(c.describe(), "process groups (no writable cgroup: test)");
    }
}
