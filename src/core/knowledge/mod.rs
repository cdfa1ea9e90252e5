//! The knowledge registry (guide §5): a room of the core behind the router, storing what the
//! core and components learn in `DATA_DIR/knowledge.db` and answering queries over it.
//!
//! # Layout
//! - [`store`]: the SQLite file: the writer thread (the one owner of all writes, fed by a
//!   channel of [`store::Write`]s and batching what is queued), the readers' connections, rows
//!   derived from items, retention, export and import.
//! - [`schema`]: tables, indexes and migrations (`PRAGMA user_version`); docs/knowledge.md
//!   explains them.
//! - [`query`]: `KnowledgeQuery` → one parameterised SQL statement.
//! - [`filter`]: the filter expression language (`successful = true and severity >= error`).
//! - [`advice`]: which recovery action to try first, from the newest successful records.
//!
//! # Shape
//! [`KnowledgeHandle`] is cheap to clone. Writes go to the writer thread and are answered once
//! committed; reads run on tokio's blocking threads, each on a reader connection of its own, so
//! a query never waits behind a write, a batch or a prune. The supervisor's learning hooks
//! ([`KnowledgeHandle::record`], [`KnowledgeHandle::pattern`]) only queue and return;
//! [`KnowledgeHandle::advice`] is a future the caller may drop when it does not answer in time.
//! Nothing here holds supervisor state or decides anything about healing beyond the advice.
//!
//! # Measured (benches/knowledge.rs, this 2-core machine, release; docs/knowledge.md)
//! At 10k and 100k items (medians of three runs, load average 1.2-1.5): the §5.2 query
//! 0.05-0.07 ms (it walks `items_issue` newest first and stops after five); advice 0.20 and
//! 0.49 ms (`items_advice`); `contains` of a rare symptom 2.2 and 3.1 ms, of a common one for
//! one component 1.3 and 0.4 ms (a bounded walk first, then the FTS5 trigram index);
//! contributions 27k and 18k a second in flight together, 3.2k and 2.1k one at a time. At 1M
//! one at a time was 0.9-1.5k/s: each write alone was an FTS5 segment of its own, merged again
//! and again as the index grew. Since schema 3 the text index trails the newest items by up to
//! [`store::TEXT_TAIL`] (read directly by `contains`): one at a time 8.0k / 6.3k / 5.6k/s at
//! 10k / 100k / 1M against 2.8k / 1.8k / 1.4k/s, in flight 24k / 17k / 16k/s (1M still short
//! of 20k), runs in turn at load average 0.3-1.1. A batch without a savepoint per write (see
//! [`store`]) took the writer's CPU a contribution in flight from 44-48 / 63-65 / 61 µs to
//! 18-30 / 27-41 / 30-39 µs, and in flight to 25-52k / 20-31k / 18-25k/s (22.4k / 15.6k /
//! 15.8k/s with the savepoints in the same conditions), at load average 3-5; where 100k and 1M
//! fell short of 20k/s the writer was waiting for a CPU (docs/knowledge.md, "Speed").

pub mod advice;
pub mod filter;
pub mod query;
pub mod schema;
pub mod store;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use tokio::sync::oneshot;

pub use advice::Advice;
pub use store::{KnowledgeSettings, StoreError, Synchronous};

use super::supervisor::Answer;
use crate::config::KnowledgeConfig;
use crate::model::{Issue, RecoveryRecord};
use crate::protocol::{
    ErrorCode, KnowledgeAnswer, KnowledgeItem, KnowledgeQuery, KnowledgeRequest, KnowledgeResult,
    KnowledgeStats, Response,
};

/// The file's name in the data directory.
pub const FILE_NAME: &str = "knowledge.db";

/// Why the registry could not answer.
#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    /// The query is not valid (the message says where and why).
    #[error(transparent)]
    Query(#[from] query::QueryError),
    /// The store failed or refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The registry could not be opened when the core started; the reason is kept.
    #[error("the knowledge registry is unavailable: {0}")]
    Unavailable(String),
}

impl KnowledgeError {
    fn code(&self) -> ErrorCode {
        match self {
            KnowledgeError::Query(_)
            | KnowledgeError::Store(StoreError::Invalid(_) | StoreError::BadLine { .. })
            | KnowledgeError::Store(StoreError::File { .. }) => ErrorCode::Rejected,
            KnowledgeError::Store(StoreError::Open { .. }) => ErrorCode::Internal,
            KnowledgeError::Store(StoreError::Busy(_)) => ErrorCode::Rejected,
            KnowledgeError::Store(StoreError::Stopped) => ErrorCode::ShuttingDown,
            KnowledgeError::Store(StoreError::Sqlite(_) | StoreError::Schema(_))
            | KnowledgeError::Unavailable(_) => ErrorCode::Internal,
        }
    }
}

/// The registry behind a handle: its file, and once opened (at first use, see
/// [`KnowledgeHandle::open_configured`]) its readers; the writer's queue exists from the start,
/// so that what the hooks send before the file is open is written first, in order.
struct Registry {
    path: PathBuf,
    bus: Option<crate::core::bus::Bus>,
    writer: store::WriterHandle,
    /// The writer's end of the queue, until the file is opened.
    queued: std::sync::Mutex<Option<std::sync::mpsc::Receiver<store::Write>>>,
    /// As `stats` reports them; the retention changes on a config reload.
    settings: std::sync::Mutex<KnowledgeSettings>,
    /// Set once: the readers, or why the file could not be opened.
    opened: OnceLock<Result<Arc<store::Readers>, Arc<str>>>,
    /// An open was started in the background (by a write).
    opening: AtomicBool,
}

impl Registry {
    fn settings(&self) -> KnowledgeSettings {
        self.settings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The readers, opening the file (creating or migrating it, starting the writer on what
    /// was queued) when it is not open yet. Blocking: call it from a blocking thread.
    fn readers(&self) -> Result<&Arc<store::Readers>, KnowledgeError> {
        self.opened
            .get_or_init(|| {
                let queued = self
                    .queued
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .take()
                    .expect("the queue is taken once, by the one open");
                store::start(
                    &self.path,
                    &self.settings(),
                    self.bus.clone(),
                    queued,
                    &self.writer,
                )
                .map_err(|e| {
                    tracing::error!(cause = %e, "the knowledge registry is unavailable");
                    Arc::from(e.to_string())
                })
            })
            .as_ref()
            .map_err(|reason| KnowledgeError::Unavailable(reason.to_string()))
    }

    /// Why the open failed, when it did.
    fn failed(&self) -> Option<KnowledgeError> {
        match self.opened.get() {
            Some(Err(reason)) => Some(KnowledgeError::Unavailable(reason.to_string())),
            _ => None,
        }
    }

    /// Opens the file in the background, once, for a write just queued: whoever queues never
    /// waits for SQLite (the supervisor's hooks run on its own thread).
    fn open_soon(self: &Arc<Self>) {
        if self.opened.get().is_some() || self.opening.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name("knowledge-open".into())
            .spawn(move || {
                let _ = me.readers();
            });
        if spawned.is_err() {
            // No thread to spare: open here rather than leave the writes queued for ever.
            let _ = self.readers();
        }
    }

    /// Queues `write` and makes sure the file is being opened.
    fn send(self: &Arc<Self>, write: store::Write) -> Result<(), KnowledgeError> {
        self.writer.send(write)?;
        self.open_soon();
        Ok(())
    }
}

/// The registry's handle: for the router, the CLI's requests and the supervisor's hooks.
#[derive(Clone)]
pub struct KnowledgeHandle {
    inner: Result<Arc<Registry>, Arc<str>>,
}

impl KnowledgeHandle {
    /// Opens `DATA_DIR/knowledge.db` (creating or migrating it) and starts its writer. Stored
    /// items are announced on `bus` as [`Event::Knowledge`].
    pub fn open(
        data_dir: &Path,
        settings: KnowledgeSettings,
        bus: Option<crate::core::bus::Bus>,
    ) -> Result<KnowledgeHandle, StoreError> {
        Self::open_file(&data_dir.join(FILE_NAME), settings, bus)
    }

    /// The core's registry: the file `[knowledge]` names (its directory created if need be),
    /// else `DATA_DIR/knowledge.db`, with the retention it asks for. Checked now (the file can
    /// be opened for writing and its header is SQLite's at a schema version this program
    /// knows: [`schema::check_header`]), opened at first use (issue 12: SQLite, its page
    /// caches and its threads cost an idle core some 2 MB, and many cores never learn
    /// anything). The first write queued opens it in the background and is written first; a
    /// query opens it on its blocking thread. Pruning starts with the open: a registry nothing
    /// uses does not grow, and is pruned when it is next used.
    pub fn open_configured(
        data_dir: &Path,
        config: &KnowledgeConfig,
        bus: Option<crate::core::bus::Bus>,
    ) -> Result<KnowledgeHandle, StoreError> {
        let settings = KnowledgeSettings::from_config(config);
        let path = match &config.path {
            Some(path) => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(|source| StoreError::File {
                        path: parent.display().to_string(),
                        source,
                    })?;
                }
                path.clone()
            }
            None => data_dir.join(FILE_NAME),
        };
        Self::prepare(&path, settings, bus)
    }

    /// [`KnowledgeHandle::open`] on any file: opened now.
    pub fn open_file(
        path: &Path,
        settings: KnowledgeSettings,
        bus: Option<crate::core::bus::Bus>,
    ) -> Result<KnowledgeHandle, StoreError> {
        let handle = Self::prepare(path, settings, bus)?;
        if let Ok(registry) = &handle.inner {
            // The handle is dropped with the error: the writer never started.
            registry.readers().map_err(|e| match e {
                KnowledgeError::Unavailable(reason) => StoreError::Invalid(reason),
                other => StoreError::Invalid(other.to_string()),
            })?;
        }
        Ok(handle)
    }

    /// A handle on `path`, checked ([`preflight`]) but not opened yet.
    fn prepare(
        path: &Path,
        settings: KnowledgeSettings,
        bus: Option<crate::core::bus::Bus>,
    ) -> Result<KnowledgeHandle, StoreError> {
        preflight(path)?;
        let (writer, queued) = store::queue(&settings);
        Ok(KnowledgeHandle {
            inner: Ok(Arc::new(Registry {
                path: path.to_path_buf(),
                bus,
                writer,
                queued: std::sync::Mutex::new(Some(queued)),
                settings: std::sync::Mutex::new(settings),
                opened: OnceLock::new(),
                opening: AtomicBool::new(false),
            })),
        })
    }

    /// A registry that could not be opened: every request is answered with `reason`; the
    /// hooks do nothing. The core runs on without it (healing never depends on it).
    pub fn unavailable(reason: impl Into<String>) -> KnowledgeHandle {
        KnowledgeHandle {
            inner: Err(Arc::from(reason.into())),
        }
    }

    fn registry(&self) -> Result<&Arc<Registry>, KnowledgeError> {
        let registry = self
            .inner
            .as_ref()
            .map_err(|r| KnowledgeError::Unavailable(r.to_string()))?;
        match registry.failed() {
            Some(e) => Err(e),
            None => Ok(registry),
        }
    }

    /// The file, unless it could not be opened.
    pub fn path(&self) -> Option<PathBuf> {
        self.registry().ok().map(|r| r.path.clone())
    }

    /// Whether the file has been opened (at first use; see
    /// [`KnowledgeHandle::open_configured`]).
    pub fn is_open(&self) -> bool {
        self.registry()
            .is_ok_and(|r| r.opened.get().is_some_and(Result::is_ok))
    }

    /// Runs a read on a blocking thread with a reader connection (opening the file first if
    /// need be).
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Connection, &Registry) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, KnowledgeError> {
        let registry = self.registry()?.clone();
        tokio::task::spawn_blocking(move || {
            let readers = registry.readers()?.clone();
            Ok(readers.with(|conn| f(conn, &registry))?)
        })
        .await
        .map_err(|e| KnowledgeError::Unavailable(format!("a query failed: {e}")))?
    }

    /// Sends a write and waits for it to be committed.
    async fn write<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> store::Write,
    ) -> Result<T, KnowledgeError> {
        Ok(self.signal(make).await??)
    }

    /// Sends a write and waits for its answer.
    async fn signal<R>(
        &self,
        make: impl FnOnce(oneshot::Sender<R>) -> store::Write,
    ) -> Result<R, KnowledgeError> {
        let registry = self.registry()?;
        let (reply, answer) = oneshot::channel();
        registry.send(make(reply))?;
        answer.await.map_err(|_| {
            // Dropped unanswered: the open failed (and the queue with it), or the writer died.
            registry
                .failed()
                .unwrap_or(KnowledgeError::Store(StoreError::Stopped))
        })
    }

    /// Runs a query (guide §5.1 step 2).
    pub async fn query(&self, q: KnowledgeQuery) -> Result<Vec<KnowledgeResult>, KnowledgeError> {
        let compiled = query::compile(&q)?;
        self.read(move |conn, _| store::run_query(conn, &compiled))
            .await
    }

    /// Stores an item (guide §5.1 step 3); returns it as stored once it is durable.
    pub async fn contribute(&self, item: KnowledgeItem) -> Result<KnowledgeResult, KnowledgeError> {
        let row = store::derive(&item, SystemTime::now())?;
        self.write(|reply| store::Write::Insert {
            row,
            reply: Some(reply),
        })
        .await
    }

    /// Learning hook: stores a healing attempt, tagged `recovery` and `healing`. Returns at
    /// once; the write happens in the background (dropped with a warning when the registry is
    /// unavailable or overloaded).
    pub fn record(&self, record: RecoveryRecord) {
        let Ok(registry) = self.registry() else {
            return;
        };
        let item = KnowledgeItem::new()
            .component(&record.issue.component)
            .tags(["recovery", "healing"])
            .content(serde_json::to_string(&record).expect("a record serialises"))
            .source("core");
        let sent = store::derive(&item, SystemTime::now())
            .map_err(KnowledgeError::from)
            .and_then(|row| registry.send(store::Write::Insert { row, reply: None }));
        if let Err(e) = sent {
            tracing::warn!(component = %record.issue.component, cause = %e, "a recovery record was not stored");
        }
    }

    /// Learning hook: stores the issue's symptoms as an [`crate::model::IssuePattern`] tagged
    /// `issue` and `pattern`, or adds them to the pattern already known for that component and
    /// issue type. Returns at once.
    pub fn pattern(&self, issue: &Issue) {
        let Ok(registry) = self.registry() else {
            return;
        };
        if let Err(e) = registry.send(store::Write::Pattern {
            issue: issue.clone(),
            reply: None,
        }) {
            tracing::warn!(component = %issue.component, cause = %e, "an issue pattern was not stored");
        }
    }

    /// [`KnowledgeHandle::pattern`], waiting for the stored (or updated) pattern.
    pub async fn pattern_stored(&self, issue: &Issue) -> Result<KnowledgeResult, KnowledgeError> {
        let issue = issue.clone();
        self.write(|reply| store::Write::Pattern {
            issue,
            reply: Some(reply),
        })
        .await
    }

    /// Which of `actions` to try first for `issue_type` on `component`, from its newest
    /// successful recovery records (guide §5.2); `None` when the registry knows nothing useful.
    /// Answered from a reader: never waits behind writes. The caller decides how long to wait.
    pub async fn advice(
        &self,
        component: &str,
        issue_type: &str,
        actions: &[String],
    ) -> Option<Advice> {
        let component = component.to_string();
        let issue_type = issue_type.to_string();
        let actions = actions.to_vec();
        let compiled = query::compile(
            &KnowledgeQuery::new()
                .component(&component)
                .tag("recovery")
                .related_to(&issue_type)
                .filter("successful = true")
                .sort("timestamp", "desc")
                .limit(advice::WINS),
        )
        .expect("the advice query is valid");
        let chosen = self
            .read(move |conn, _| {
                let wins: Vec<String> = store::run_query(conn, &compiled)?
                    .iter()
                    .filter_map(|r| r.recovery_record().map(|rec| rec.strategy))
                    .collect();
                let history = |strategy: &str| {
                    store::attempts(conn, &component, &issue_type, strategy, advice::HISTORY)
                        .unwrap_or_default()
                };
                Ok(advice::choose(&issue_type, &actions, &wins, history))
            })
            .await;
        match chosen {
            Ok(advice) => advice,
            Err(e) => {
                tracing::debug!(cause = %e, "no advice from the knowledge registry");
                None
            }
        }
    }

    /// Waits until every write queued before this call is committed.
    pub async fn flush(&self) -> Result<(), KnowledgeError> {
        let registry = self.registry()?;
        if registry.opened.get().is_none() && registry.writer.waiting() == 0 {
            // Not open and nothing queued: nothing to wait for, and no reason to open it.
            return Ok(());
        }
        self.signal(|reply| store::Write::Flush { reply }).await
    }

    /// [`KnowledgeHandle::flush`], and the items the text index trails by (see
    /// [`store::TEXT_TAIL`]) are added to it before the answer. The writer does this by itself
    /// when it is idle; `contains` never needs it.
    pub async fn index_text(&self) -> Result<(), KnowledgeError> {
        self.signal(|reply| store::Write::IndexText { reply }).await
    }

    /// A whole pruning round now (it also runs by itself every `prune_every`); returns the
    /// items deleted.
    pub async fn prune(&self) -> Result<u64, KnowledgeError> {
        self.write(|reply| store::Write::Prune { reply }).await
    }

    /// Takes the retention of a reloaded `[knowledge]` (its `path` is not looked at: the file
    /// stays open where it is). Returns at once: the writer takes it between batches, and when
    /// a limit got tighter starts a pruning round right away, in chunks, in the background;
    /// queries never wait for it. `stats` reports the new retention from now on.
    pub fn set_retention(&self, config: &KnowledgeConfig) {
        let Ok(registry) = self.registry() else {
            return;
        };
        {
            let mut settings = registry
                .settings
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            settings.max_per_component = config.max_items_per_component;
            settings.max_age = config.max_age;
            settings.prune_every = config.prune_every;
        }
        // Not open yet: the writer starts with these settings, and takes this message after.
        if let Err(e) = registry.writer.send_always(store::Write::Retention {
            max_per_component: config.max_items_per_component,
            max_age: config.max_age,
            prune_every: config.prune_every,
        }) {
            tracing::warn!(cause = %e, "the knowledge registry did not take the new retention");
        }
    }

    pub async fn stats(&self) -> Result<KnowledgeStats, KnowledgeError> {
        self.read(|conn, registry| store::stats(conn, &registry.path, &registry.settings()))
            .await
    }

    /// One page of everything, in id order.
    pub async fn export_page(
        &self,
        after: Option<i64>,
        limit: usize,
    ) -> Result<(Vec<KnowledgeResult>, Option<i64>), KnowledgeError> {
        self.read(move |conn, _| store::export_page(conn, after, limit))
            .await
    }

    /// Imports JSON lines in one transaction: all or, when a line is bad, none.
    pub async fn import(
        &self,
        lines: Vec<String>,
        first_line: usize,
    ) -> Result<usize, KnowledgeError> {
        let rows = store::parse_import(&lines, first_line, SystemTime::now())?;
        self.write(|reply| store::Write::Import { rows, reply })
            .await
    }

    /// Imports a JSON-lines file the core reads itself.
    pub async fn import_file(&self, path: String) -> Result<usize, KnowledgeError> {
        let text = tokio::fs::read_to_string(&path)
            .await
            .map_err(|source| StoreError::File {
                path: path.clone(),
                source,
            })?;
        let lines = text.lines().map(str::to_string).collect();
        self.import(lines, 1).await
    }

    /// Answers a protocol request (the router's arm).
    pub async fn request(&self, request: KnowledgeRequest) -> Answer {
        let answer = match request {
            KnowledgeRequest::Query { query } => self
                .query(query)
                .await
                .map(|results| KnowledgeAnswer::Results { results }),
            KnowledgeRequest::Contribute { item } => self
                .contribute(item)
                .await
                .map(|stored| KnowledgeAnswer::Stored { id: stored.id }),
            KnowledgeRequest::Stats => self
                .stats()
                .await
                .map(|stats| KnowledgeAnswer::Stats { stats }),
            KnowledgeRequest::Export { after, limit } => self
                .export_page(after, limit)
                .await
                .map(|(results, next)| KnowledgeAnswer::Page { results, next }),
            KnowledgeRequest::Import { lines, first_line } => self
                .import(lines, first_line.unwrap_or(1))
                .await
                .map(|count| KnowledgeAnswer::Imported { count }),
            KnowledgeRequest::ImportFile { path } => {
                if !Path::new(&path).is_absolute() {
                    return Err((
                        ErrorCode::Rejected,
                        format!("{path}: the core needs an absolute path"),
                    ));
                }
                self.import_file(path)
                    .await
                    .map(|count| KnowledgeAnswer::Imported { count })
            }
        };
        answer
            .map(|answer| Response::Knowledge { answer })
            .map_err(|e| (e.code(), e.to_string()))
    }
}

/// The start-up check of a registry file, without SQLite: it can be opened for reading and
/// writing (or, when there is none yet, created in its directory), and its first bytes pass
/// [`schema::check_header`].
fn preflight(path: &Path) -> Result<(), StoreError> {
    let file_error = |source| StoreError::File {
        path: path.display().to_string(),
        source,
    };
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
    {
        Ok(file) => {
            let mut head = Vec::with_capacity(100);
            file.take(100).read_to_end(&mut head).map_err(file_error)?;
            schema::check_header(&head).map_err(|e| match e {
                schema::HeaderError::Schema(e) => StoreError::Schema(e),
                e @ schema::HeaderError::NotSqlite => StoreError::Invalid(format!(
                    "the knowledge database {}: {e}; move it aside, or name another file in \
                     [knowledge] path",
                    path.display()
                )),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            // SQLite creates the file (and its -wal and -shm) there at first use.
            use nix::unistd::{AccessFlags, access};
            access(dir, AccessFlags::W_OK | AccessFlags::X_OK).map_err(|e| StoreError::File {
                path: dir.display().to_string(),
                source: std::io::Error::from(e),
            })
        }
        Err(e) => Err(file_error(e)),
    }
}

#[cfg(test)]
mod tests;
