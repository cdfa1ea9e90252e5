//! Every component's recent output and its log file: the log store, an owner of its own (not a
//! supervisor field). The pipe readers append to a component's [`LogSink`], the supervisor's shell
//! appends its system lines, and the router answers `logs` requests from here, so reading logs
//! never waits on the supervisor.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use crate::model::{LogLine, LogStream};
use crate::protocol::Event;

/// Longest output line kept; the rest of a longer line is dropped and the line marked with `…`.
pub const MAX_LOG_LINE: usize = 16 * 1024;

/// How a component's output is kept: lines in memory, and the log file's rotation (like
/// supervisord's `logfile_maxbytes` and `logfile_backups`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogPolicy {
    /// Lines kept in memory for `logs`.
    pub lines: usize,
    /// The file is rotated once it reaches this many bytes; 0 never rotates.
    pub max_size: u64,
    /// Rotated files kept (`NAME.log.1` is the newest); 0 truncates instead.
    pub backups: u32,
}

impl Default for LogPolicy {
    fn default() -> Self {
        LogPolicy {
            lines: 1000,
            max_size: 10 * 1024 * 1024,
            backups: 3,
        }
    }
}

/// A log file that rotates at a size: a flood costs the disk at most
/// `max_size × (backups + 1)`.
struct LogFile {
    path: PathBuf,
    file: Option<std::fs::File>,
    size: u64,
    max_size: u64,
    backups: u32,
}

impl LogFile {
    fn open(path: &Path, policy: LogPolicy) -> LogFile {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| tracing::warn!(file = %path.display(), cause = %e, "cannot open log file; keeping output in memory only"))
            .ok();
        let size = file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map_or(0, |m| m.len());
        LogFile {
            path: path.to_path_buf(),
            file,
            size,
            max_size: policy.max_size,
            backups: policy.backups,
        }
    }

    fn write(&mut self, line: &[u8]) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        // A full disk must not stop the component: the line stays in memory.
        if file.write_all(line).is_ok() {
            self.size += line.len() as u64;
        }
        if self.max_size > 0 && self.size >= self.max_size {
            self.rotate();
        }
    }

    /// `NAME.log` becomes `NAME.log.1`, `.1` becomes `.2` …, the oldest is dropped.
    fn rotate(&mut self) {
        self.file = None;
        let numbered = |n: u32| {
            let mut p = self.path.clone().into_os_string();
            p.push(format!(".{n}"));
            PathBuf::from(p)
        };
        if self.backups > 0 {
            for n in (1..self.backups).rev() {
                let _ = std::fs::rename(numbered(n), numbered(n + 1));
            }
            let _ = std::fs::rename(&self.path, numbered(1));
        } else {
            let _ = std::fs::remove_file(&self.path);
        }
        self.file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .ok();
        self.size = 0;
    }
}

/// A component's recent output and its log file.
///
/// Shared between the pipe readers (which append) and the supervisor (which reads for `logs`);
/// a `std::sync::Mutex` because each critical section is a push or a copy, never an `.await`.
pub struct LogSink {
    component: String,
    capacity: usize,
    ring: Mutex<VecDeque<LogLine>>,
    file: Mutex<LogFile>,
    bus: crate::core::bus::Bus,
}

impl LogSink {
    /// A sink keeping `policy.lines` lines, appending to `file` (created if missing) and rotating
    /// it by `policy`.
    pub fn new(
        component: &str,
        policy: LogPolicy,
        file: &Path,
        bus: crate::core::bus::Bus,
    ) -> Arc<LogSink> {
        Arc::new(LogSink {
            component: component.to_string(),
            capacity: policy.lines,
            // Empty, grown as lines come (a few reallocations up to `capacity`): reserving 256
            // lines (72 bytes each) up front cost the core 0.42 MB with 100 idle components that
            // print nothing (issue 12).
            ring: Mutex::new(VecDeque::new()),
            file: Mutex::new(LogFile::open(file, policy)),
            bus,
        })
    }

    /// Records one line: ring buffer, log file, and an event for subscribers.
    pub fn push(&self, stream: LogStream, text: String) {
        let line = LogLine {
            component: self.component.clone(),
            at: SystemTime::now(),
            stream,
            text,
        };
        {
            let tag = match stream {
                LogStream::Stdout => "out",
                LogStream::Stderr => "err",
                LogStream::System => "hms",
            };
            let stamp = humantime::format_rfc3339_millis(line.at);
            let text = format!("{stamp} {tag} {}\n", line.text);
            self.file
                .lock()
                .expect("log file lock")
                .write(text.as_bytes());
        }
        {
            let mut ring = self.ring.lock().expect("log ring lock");
            if ring.len() == self.capacity {
                ring.pop_front();
            }
            ring.push_back(line.clone());
        }
        // No subscribers is fine.
        self.bus.publish(Event::Log {
            line: Box::new(line),
        });
    }

    /// The last `n` lines, oldest first.
    pub fn tail(&self, n: usize) -> Vec<LogLine> {
        let ring = self.ring.lock().expect("log ring lock");
        ring.iter()
            .skip(ring.len().saturating_sub(n))
            .cloned()
            .collect()
    }
}

/// The log sinks of every component the core has known, by name.
#[derive(Clone)]
pub struct LogStore {
    dir: PathBuf,
    bus: crate::core::bus::Bus,
    /// A `std::sync::RwLock`: each critical section is a map lookup or insert, never an `.await`;
    /// the supervisor's shell writes (a new component), the router reads (`logs`).
    sinks: Arc<RwLock<HashMap<String, Arc<LogSink>>>>,
}

impl LogStore {
    /// A store writing `DIR/NAME.log` files and publishing lines on `bus`.
    pub fn new(dir: &Path, bus: crate::core::bus::Bus) -> LogStore {
        LogStore {
            dir: dir.to_path_buf(),
            bus,
            sinks: Arc::default(),
        }
    }

    /// The component's sink, opened with `policy` when it has none yet.
    pub fn open(&self, component: &str, policy: LogPolicy) -> Arc<LogSink> {
        if let Some(sink) = self.get(component) {
            return sink;
        }
        let sink = LogSink::new(
            component,
            policy,
            &self.dir.join(format!("{component}.log")),
            self.bus.clone(),
        );
        self.sinks
            .write()
            .expect("log store lock")
            .entry(component.to_string())
            .or_insert(sink)
            .clone()
    }

    /// The component's sink, if it has one.
    pub fn get(&self, component: &str) -> Option<Arc<LogSink>> {
        self.sinks
            .read()
            .expect("log store lock")
            .get(component)
            .cloned()
    }

    /// A line written by the core itself into the component's log.
    pub fn system(&self, component: &str, text: String) {
        match self.get(component) {
            Some(sink) => sink.push(LogStream::System, text),
            None => self
                .open(component, LogPolicy::default())
                .push(LogStream::System, text),
        }
    }

    /// The component's last `n` lines, oldest first; `None` when the core never knew it.
    pub fn tail(&self, component: &str, n: usize) -> Option<Vec<LogLine>> {
        self.get(component).map(|s| s.tail(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_newest_lines() {
        let tmp = tempfile::tempdir().unwrap();
        let tx = crate::core::bus::Bus::new(4);
        let policy = LogPolicy {
            lines: 3,
            ..LogPolicy::default()
        };
        let sink = LogSink::new("c", policy, &tmp.path().join("c.log"), tx);
        for i in 0..5 {
            sink.push(LogStream::Stdout, format!("line {i}"));
        }
        let tail: Vec<String> = sink.tail(10).into_iter().map(|l| l.text).collect();
        assert_eq!(tail, ["line 2", "line 3", "line 4"]);
        let file = std::fs::read_to_string(tmp.path().join("c.log")).unwrap();
        assert_eq!(file.lines().count(), 5);
    }

    #[test]
    fn a_flood_costs_the_disk_at_most_the_files_it_keeps() {
        let tmp = tempfile::tempdir().unwrap();
        let tx = crate::core::bus::Bus::new(4);
        let policy = LogPolicy {
            lines: 10,
            max_size: 10_000,
            backups: 2,
        };
        let path = tmp.path().join("c.log");
        let sink = LogSink::new("c", policy, &path, tx);
        for i in 0..5_000 {
            sink.push(LogStream::Stdout, format!("line {i} {}", "y".repeat(40)));
        }
        let mut names: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["c.log", "c.log.1", "c.log.2"]);
        let total: u64 = names
            .iter()
            .map(|n| std::fs::metadata(tmp.path().join(n)).unwrap().len())
            .sum();
        assert!(total <= 3 * 10_000 + 200, "{total} bytes");
        // The newest line is in the live file, the one before a rotation in .1.
        let live = std::fs::read_to_string(&path).unwrap();
        assert!(
            live.trim_end()
                .ends_with(&format!("line 4999 {}", "y".repeat(40)))
        );
    }
}
