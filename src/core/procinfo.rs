//! Resource use of a running process, read from /proc.
//!
//! Read directly rather than through sysinfo (2-4× slower for a handful of known pids, per
//! DESIGN.md) or procfs (which parses every field of `stat` when we need three): `status` with 100
//! components samples 100 processes, and that must stay well under a millisecond or two.

use std::borrow::Cow;
use std::sync::OnceLock;
use std::time::Instant;

use crate::model::ProcessMetrics;

/// A raw reading of one process.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
    pub rss_bytes: u64,
    pub open_fds: u32,
    pub at: Instant,
}

fn clock_ticks() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .map_or(100, |t| t as u64)
    })
}

fn page_size() -> u64 {
    static PAGE: OnceLock<u64> = OnceLock::new();
    *PAGE.get_or_init(|| {
        nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .map_or(4096, |p| p as u64)
    })
}

/// The fields of a `/proc/.../stat` text that follow the command, from field 3 (the state) on.
/// The command is in parentheses and may itself hold spaces and parentheses, so the fields start
/// after the last `)`.
pub fn stat_fields(stat: &str) -> Option<std::str::SplitAsciiWhitespace<'_>> {
    Some(stat[stat.rfind(')')? + 1..].split_ascii_whitespace())
}

/// The text of a small kernel file (`/proc/PID/stat`, a cgroup's `cpu.stat`), read with plain
/// reads into `buf`: `std::fs::read_to_string` first asks the file's size (which such files give
/// as 0) and then reads 32, 32, 64, 128… bytes at a time, 8 system calls for a 300-byte `stat`
/// where this makes 3 (seen with strace on a status of 100 components; the history room samples
/// every component every 5 s, which is most of what an idle core does). A read that leaves room
/// in `buf` ends the file: the kernel hands a seq_file's whole text to one read that has room
/// for it, as a regular file's rest, so asking again only to hear "end of file" was a system call
/// per file for nothing (strace, an idle core of 1,000 components: 16,000 reads in 20 s, 8,000
/// of them that). A file longer than `buf` is read whole the std way. `None` when it cannot be
/// read or is not UTF-8.
pub fn read_small<'b>(path: &std::path::Path, buf: &'b mut [u8]) -> Option<Cow<'b, str>> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).ok()?;
    let len = loop {
        match file.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            read => break read.ok()?,
        }
    };
    if len < buf.len() {
        return std::str::from_utf8(&buf[..len]).ok().map(Cow::Borrowed);
    }
    std::fs::read_to_string(path).ok().map(Cow::Owned)
}

/// Room for a `/proc/PID/stat` or a `cpu.stat` (about 300 bytes; 52 fields at most).
pub const SMALL_FILE: usize = 2048;

/// Reads a process; `None` when it is gone.
pub fn read(pid: u32) -> Option<Reading> {
    let mut buf = [0u8; SMALL_FILE];
    let stat = read_small(std::path::Path::new(&format!("/proc/{pid}/stat")), &mut buf)?;
    let fields: Vec<&str> = stat_fields(&stat)?.collect();
    // rest[0] is field 3 (state); utime is field 14, stime 15, rss 24 (in pages).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let rss_pages: u64 = fields.get(21)?.parse().ok()?;
    let open_fds = open_fds(pid);
    Some(Reading {
        cpu_ticks: utime + stime,
        rss_bytes: rss_pages * page_size(),
        open_fds,
        at: Instant::now(),
    })
}

/// How many descriptors a process holds open. Since Linux 6.2 the size of `/proc/PID/fd` is that
/// number: one `statx` rather than opening and listing the directory (five system calls, and the
/// largest part of sampling an idle component). Older kernels give 0 there: the entries are
/// counted then, and when the count is 0.
fn open_fds(pid: u32) -> u32 {
    let dir = format!("/proc/{pid}/fd");
    match std::fs::metadata(&dir) {
        Ok(meta) if meta.len() > 0 => u32::try_from(meta.len()).unwrap_or(u32::MAX),
        _ => std::fs::read_dir(&dir).map_or(0, |d| d.count() as u32),
    }
}

/// Metrics from a new reading and, for CPU %, the previous one (or the process's start).
pub fn metrics(now: &Reading, previous: Option<&Reading>, started: Instant) -> ProcessMetrics {
    let (ticks, since) = match previous {
        Some(p) => (now.cpu_ticks.saturating_sub(p.cpu_ticks), p.at),
        None => (now.cpu_ticks, started),
    };
    let elapsed = now.at.saturating_duration_since(since).as_secs_f64();
    let cpu_percent = if elapsed > 0.0 {
        (ticks as f64 / clock_ticks() as f64) / elapsed * 100.0
    } else {
        0.0
    };
    ProcessMetrics {
        cpu_percent,
        rss_bytes: now.rss_bytes,
        open_fds: now.open_fds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_process() {
        let r = read(std::process::id()).expect("we exist");
        assert!(r.rss_bytes > 0);
        assert!(r.open_fds > 0);
        let m = metrics(&r, None, r.at - std::time::Duration::from_secs(1));
        assert!(m.cpu_percent >= 0.0);
    }

    /// The count, whichever way the kernel lets it be taken, is the directory's entries: for a
    /// child whose table does not move (this test process's own does, as other tests run).
    #[test]
    fn open_descriptors_are_the_entries_of_proc_pid_fd() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        let counted = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count() as u32;
        let n = open_fds(pid);
        let _ = child.kill();
        let _ = child.wait();
        assert!(counted >= 3, "stdin, stdout and stderr: {counted}");
        assert_eq!(n, counted);
        assert_eq!(open_fds(u32::MAX - 1), 0);
    }

    #[test]
    fn a_missing_process_reads_as_none() {
        assert!(read(u32::MAX - 1).is_none());
    }

    /// The same text as std's read, for a file that fits the buffer, one that does not (read the
    /// std way), one as long as the buffer and one a byte shorter, an empty one, kernel files
    /// (a seq_file of ~1.3 kB among them), and one that is gone.
    #[test]
    fn a_small_file_reads_as_std_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, text: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let paths = [
            file("fits", "usage_usec 901\nuser_usec 901\n".into()),
            file("long", "x".repeat(3 * SMALL_FILE)),
            file("as long", "y".repeat(SMALL_FILE)),
            file("a byte shorter", "z".repeat(SMALL_FILE - 1)),
            file("empty", String::new()),
            std::path::PathBuf::from("/proc/self/limits"),
            std::path::PathBuf::from("/proc/self/stat"),
        ];
        for path in paths {
            let mut buf = [0u8; SMALL_FILE];
            let ours = read_small(&path, &mut buf).unwrap().into_owned();
            let std = std::fs::read_to_string(&path).unwrap();
            if path.starts_with("/proc") {
                // Our own stat moves between the two reads: same shape, same pid.
                assert_eq!(ours.split(' ').next(), std.split(' ').next());
                assert_eq!(ours.split(' ').count(), std.split(' ').count());
            } else {
                assert_eq!(ours, std, "{}", path.display());
            }
        }
        let mut buf = [0u8; SMALL_FILE];
        assert!(read_small(&dir.path().join("gone"), &mut buf).is_none());
    }
}
