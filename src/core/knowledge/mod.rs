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

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::{broadcast, oneshot};

pub use advice::Advice;
pub use store::{KnowledgeSettings, StoreError, Synchronous};

use super::supervisor::Answer;
use crate::config::KnowledgeConfig;
use crate::model::{Issue, RecoveryRecord};
use crate::protocol::{
    ErrorCode, Event, KnowledgeAnswer, KnowledgeItem, KnowledgeQuery, KnowledgeRequest,
    KnowledgeResult, KnowledgeStats, Response,
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

struct Open {
    writer: store::WriterHandle,
    readers: Arc<store::Readers>,
    /// As `stats` reports them; the retention changes on a config reload.
    settings: std::sync::Mutex<KnowledgeSettings>,
}

impl Open {
    fn settings(&self) -> KnowledgeSettings {
        self.settings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// The registry's handle: for the router, the CLI's requests and the supervisor's hooks.
#[derive(Clone)]
pub struct KnowledgeHandle {
    inner: Result<Arc<Open>, Arc<str>>,
}

impl KnowledgeHandle {
    /// Opens `DATA_DIR/knowledge.db` (creating or migrating it) and starts its writer. Stored
    /// items are announced on `bus` as [`Event::Knowledge`].
    pub fn open(
        data_dir: &Path,
        settings: KnowledgeSettings,
        bus: Option<broadcast::Sender<Event>>,
    ) -> Result<KnowledgeHandle, StoreError> {
        Self::open_file(&data_dir.join(FILE_NAME), settings, bus)
    }

    /// Opens the file `[knowledge]` names (its directory created if need be), else
    /// `DATA_DIR/knowledge.db`, with the retention it asks for.
    pub fn open_configured(
        data_dir: &Path,
        config: &KnowledgeConfig,
        bus: Option<broadcast::Sender<Event>>,
    ) -> Result<KnowledgeHandle, StoreError> {
        let settings = KnowledgeSettings::from_config(config);
        let Some(path) = &config.path else {
            return Self::open(data_dir, settings, bus);
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::File {
                path: parent.display().to_string(),
                source,
            })?;
        }
        Self::open_file(path, settings, bus)
    }

    /// [`KnowledgeHandle::open`] on any file.
    pub fn open_file(
        path: &Path,
        settings: KnowledgeSettings,
        bus: Option<broadcast::Sender<Event>>,
    ) -> Result<KnowledgeHandle, StoreError> {
        let (writer, readers) = store::open(path, &settings, bus)?;
        Ok(KnowledgeHandle {
            inner: Ok(Arc::new(Open {
                writer,
                readers,
                settings: std::sync::Mutex::new(settings),
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

    fn open_ref(&self) -> Result<&Arc<Open>, KnowledgeError> {
        self.inner
            .as_ref()
            .map_err(|r| KnowledgeError::Unavailable(r.to_string()))
    }

    /// The file, when open.
    pub fn path(&self) -> Option<PathBuf> {
        self.inner
            .as_ref()
            .ok()
            .map(|o| o.readers.path().to_path_buf())
    }

    /// Runs a read on a blocking thread with a reader connection.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Connection, &Open) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, KnowledgeError> {
        let open = self.open_ref()?.clone();
        tokio::task::spawn_blocking(move || {
            let readers = open.readers.clone();
            readers.with(|conn| f(conn, &open))
        })
        .await
        .map_err(|e| KnowledgeError::Unavailable(format!("a query failed: {e}")))?
        .map_err(Into::into)
    }

    /// Sends a write and waits for it to be committed.
    async fn write<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> store::Write,
    ) -> Result<T, KnowledgeError> {
        let open = self.open_ref()?;
        let (reply, answer) = oneshot::channel();
        open.writer.send(make(reply))?;
        Ok(answer.await.map_err(|_| StoreError::Stopped)??)
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
        let Ok(open) = self.open_ref() else { return };
        let item = KnowledgeItem::new()
            .component(&record.issue.component)
            .tags(["recovery", "healing"])
            .content(serde_json::to_string(&record).expect("a record serialises"))
            .source("core");
        let sent = store::derive(&item, SystemTime::now())
            .and_then(|row| open.writer.send(store::Write::Insert { row, reply: None }));
        if let Err(e) = sent {
            tracing::warn!(component = %record.issue.component, cause = %e, "a recovery record was not stored");
        }
    }

    /// Learning hook: stores the issue's symptoms as an [`crate::model::IssuePattern`] tagged
    /// `issue` and `pattern`, or adds them to the pattern already known for that component and
    /// issue type. Returns at once.
    pub fn pattern(&self, issue: &Issue) {
        let Ok(open) = self.open_ref() else { return };
        if let Err(e) = open.writer.send(store::Write::Pattern {
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
        let open = self.open_ref()?;
        let (reply, answer) = oneshot::channel();
        open.writer.send(store::Write::Flush { reply })?;
        answer.await.map_err(|_| StoreError::Stopped.into())
    }

    /// [`KnowledgeHandle::flush`], and the items the text index trails by (see
    /// [`store::TEXT_TAIL`]) are added to it before the answer. The writer does this by itself
    /// when it is idle; `contains` never needs it.
    pub async fn index_text(&self) -> Result<(), KnowledgeError> {
        let open = self.open_ref()?;
        let (reply, answer) = oneshot::channel();
        open.writer.send(store::Write::IndexText { reply })?;
        answer.await.map_err(|_| StoreError::Stopped.into())
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
        let Ok(open) = self.open_ref() else { return };
        {
            let mut settings = open
                .settings
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            settings.max_per_component = config.max_items_per_component;
            settings.max_age = config.max_age;
            settings.prune_every = config.prune_every;
        }
        if let Err(e) = open.writer.send_always(store::Write::Retention {
            max_per_component: config.max_items_per_component,
            max_age: config.max_age,
            prune_every: config.prune_every,
        }) {
            tracing::warn!(cause = %e, "the knowledge registry did not take the new retention");
        }
    }

    pub async fn stats(&self) -> Result<KnowledgeStats, KnowledgeError> {
        self.read(|conn, open| store::stats(conn, open.readers.path(), &open.settings()))
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

#[cfg(test)]
mod tests;
