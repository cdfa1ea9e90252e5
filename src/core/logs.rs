//! Every component's recent output and its log file: the log store, an owner of its own (not a
//! supervisor field). The pipe readers append to a component's [`LogSink`], the supervisor's shell
//! appends its system lines, and the router answers `logs` requests from here, so reading logs
//! never waits on the supervisor.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use tokio::sync::broadcast;

use crate::model::{LogLine, LogStream};
use crate::protocol::Event;

/// Longest output line kept; the rest of a longer line is dropped and the line marked with `…`.
pub const MAX_LOG_LINE: usize = 16 * 1024;

/// A component's recent output and its log file.
///
/// Shared between the pipe readers (which append) and the supervisor (which reads for `logs`);
/// a `std::sync::Mutex` because each critical section is a push or a copy, never an `.await`.
pub struct LogSink {
    component: String,
    capacity: usize,
    ring: Mutex<VecDeque<LogLine>>,
    file: Mutex<Option<std::fs::File>>,
    bus: broadcast::Sender<Event>,
}

impl LogSink {
    /// A sink keeping `capacity` lines, appending to `file` (created if missing).
    pub fn new(
        component: &str,
        capacity: usize,
        file: &Path,
        bus: broadcast::Sender<Event>,
    ) -> Arc<LogSink> {
        let handle = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
            .map_err(|e| tracing::warn!(component, file = %file.display(), cause = %e, "cannot open log file; keeping output in memory only"))
            .ok();
        Arc::new(LogSink {
            component: component.to_string(),
            capacity,
            ring: Mutex::new(VecDeque::with_capacity(capacity.min(256))),
            file: Mutex::new(handle),
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
        if let Some(file) = self.file.lock().expect("log file lock").as_mut() {
            let tag = match stream {
                LogStream::Stdout => "out",
                LogStream::Stderr => "err",
                LogStream::System => "hms",
            };
            let stamp = humantime::format_rfc3339_millis(line.at);
            // A full disk must not stop the component: the line stays in memory.
            let _ = writeln!(file, "{stamp} {tag} {}", line.text);
        }
        {
            let mut ring = self.ring.lock().expect("log ring lock");
            if ring.len() == self.capacity {
                ring.pop_front();
            }
            ring.push_back(line.clone());
        }
        // No subscribers is fine.
        let _ = self.bus.send(Event::Log { line });
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
    bus: broadcast::Sender<Event>,
    /// A `std::sync::RwLock`: each critical section is a map lookup or insert, never an `.await`;
    /// the supervisor's shell writes (a new component), the router reads (`logs`).
    sinks: Arc<RwLock<HashMap<String, Arc<LogSink>>>>,
}

impl LogStore {
    /// A store writing `DIR/NAME.log` files and publishing lines on `bus`.
    pub fn new(dir: &Path, bus: broadcast::Sender<Event>) -> LogStore {
        LogStore {
            dir: dir.to_path_buf(),
            bus,
            sinks: Arc::default(),
        }
    }

    /// The component's sink, opened with `lines` lines of memory when it has none yet.
    pub fn open(&self, component: &str, lines: usize) -> Arc<LogSink> {
        if let Some(sink) = self.get(component) {
            return sink;
        }
        let sink = LogSink::new(
            component,
            lines,
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
            None => self.open(component, 1000).push(LogStream::System, text),
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
        let (tx, _) = broadcast::channel(4);
        let sink = LogSink::new("c", 3, &tmp.path().join("c.log"), tx);
        for i in 0..5 {
            sink.push(LogStream::Stdout, format!("line {i}"));
        }
        let tail: Vec<String> = sink.tail(10).into_iter().map(|l| l.text).collect();
        assert_eq!(tail, ["line 2", "line 3", "line 4"]);
        let file = std::fs::read_to_string(tmp.path().join("c.log")).unwrap();
        assert_eq!(file.lines().count(), 5);
    }
}
