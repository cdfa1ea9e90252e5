//! The registry's SQLite file: one writer thread, a small pool of reader connections, and the
//! rows derived from what is contributed.
//!
//! - **One writer.** A dedicated std thread owns the only write connection and takes [`Write`]s
//!   from a bounded channel. It waits for the first, takes whatever else is already queued (up to
//!   `batch`), applies them in one transaction, commits, and only then answers each. One bad
//!   write fails alone: when one fails, the batch is rolled back and applied again with each
//!   write under its own savepoint (see [`write_batch`]). Contributions that arrive together share
//!   one commit. Between batches, with nothing queued, it prunes by the retention rules, a few
//!   thousand rows at a time so that writes never wait long behind it.
//! - **Durability.** WAL with `synchronous = NORMAL`: a commit has been written into the WAL file
//!   (the kernel's page cache) before it returns, so an acknowledged write survives a `kill -9` of
//!   the core (tests/knowledge.rs kills a core under concurrent writers and counts). It may be
//!   lost with the machine's power; `synchronous = FULL` (an fsync per commit) covers that too, at
//!   the cost the benchmark reports.
//! - **Readers** have their own connections (WAL readers never wait for the writer) taken from a
//!   pool and used on tokio's blocking threads, so no query waits behind a write or a prune.
//!
//! It must not decide anything about healing: the advice is computed in [`super::advice`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use tokio::sync::oneshot;

use super::query::{COLUMNS, Compiled};
use super::schema;
use crate::config::KnowledgeConfig;
use crate::model::{Issue, IssuePattern, RecoveryRecord, Severity};
use crate::protocol::{Event, KnowledgeItem, KnowledgeResult, KnowledgeStats};

/// The longest content accepted, in bytes.
pub const MAX_CONTENT: usize = 256 * 1024;
/// The most tags on one item.
pub const MAX_ITEM_TAGS: usize = 32;
/// The longest component name or tag.
pub const MAX_NAME: usize = 128;
/// Symptoms a pattern keeps (its newest).
pub const MAX_SYMPTOMS: usize = 16;
/// Rows deleted per pruning transaction.
const PRUNE_CHUNK: usize = 2000;
/// The text index may trail the newest items by this many: the writer indexes them in the
/// transaction that brings the trail to it, or after [`TEXT_IDLE`] with nothing to do, or on a
/// flush. `contains` reads the trail directly (at most this many rows, newest, in id order).
pub const TEXT_TAIL: i64 = 2048;
/// How long the writer waits with nothing to do before it indexes a shorter trail.
const TEXT_IDLE: Duration = Duration::from_millis(200);
/// Idle reader connections kept.
const IDLE_READERS: usize = 4;
/// The writer wakes the checkpointer after this many commits or rows since it last did: about
/// SQLite's own 1,000 WAL pages (a write alone dirties some ten pages; a row of a batch fewer).
const CHECKPOINT_COMMITS: usize = 64;
const CHECKPOINT_ROWS: usize = 2000;

/// How the file is synced (`PRAGMA synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    /// Survives a crash of the process (kill -9); the default.
    Normal,
    /// Also survives a power cut: an fsync per commit.
    Full,
}

/// The registry's settings: retention from hms.toml's `[knowledge]`
/// ([`KnowledgeSettings::from_config`]), the rest fixed by the core (the benchmark and tests
/// change them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnowledgeSettings {
    /// Retention: at most this many items per component (its oldest go first).
    pub max_per_component: u64,
    /// Retention: items older than this go.
    pub max_age: Duration,
    /// How often the writer prunes.
    pub prune_every: Duration,
    pub synchronous: Synchronous,
    /// Writes applied in one transaction at most.
    pub batch: usize,
    /// Writes waiting for the writer at most; beyond that a contribution is refused as busy and
    /// a learning hook's record is dropped with a warning.
    pub queue: usize,
}

impl Default for KnowledgeSettings {
    fn default() -> Self {
        KnowledgeSettings::from_config(&KnowledgeConfig::default())
    }
}

impl KnowledgeSettings {
    /// The retention `[knowledge]` asks for; the rest as the core runs it.
    pub fn from_config(config: &KnowledgeConfig) -> KnowledgeSettings {
        KnowledgeSettings {
            max_per_component: config.max_items_per_component,
            max_age: config.max_age,
            prune_every: config.prune_every,
            synchronous: Synchronous::Normal,
            batch: 1024,
            queue: 16_384,
        }
    }
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite said no.
    #[error("knowledge database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The schema could not be brought up to date.
    #[error(transparent)]
    Schema(#[from] schema::SchemaError),
    /// The item is not acceptable; the text says why.
    #[error("{0}")]
    Invalid(String),
    /// An import line is bad; nothing of the import was stored.
    #[error("line {line}: {message}; nothing was imported")]
    BadLine { line: usize, message: String },
    /// Too many writes are waiting.
    #[error("the knowledge registry is busy ({0} writes waiting); try again")]
    Busy(usize),
    /// The writer thread has stopped.
    #[error("the knowledge registry's writer has stopped")]
    Stopped,
    /// The file could not be opened or created.
    #[error("cannot open the knowledge database {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    /// Reading an import file failed.
    #[error("{path}: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// A row of `items`, derived from a [`KnowledgeItem`].
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub component: String,
    pub timestamp: i64,
    pub tags: Vec<String>,
    pub content: String,
    pub source: String,
    pub kind: &'static str,
    pub issue_type: Option<String>,
    pub strategy: Option<String>,
    pub successful: Option<bool>,
    pub severity: Option<i64>,
    pub duration_ms: Option<i64>,
    pub symptom: String,
}

pub fn millis(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub fn from_millis(ms: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

pub fn severity_rank(s: Severity) -> i64 {
    match s {
        Severity::Info => 0,
        Severity::Warning => 1,
        Severity::Error => 2,
        Severity::Critical => 3,
    }
}

/// The text `contains` searches for an issue: its type and what its context says.
fn issue_text(issue: &Issue) -> String {
    let mut text = issue.issue_type.clone();
    for value in issue.context.values() {
        text.push('\n');
        text.push_str(value);
    }
    text
}

/// Checks an item and derives its row: what the registry indexes is read out of the content
/// (a [`RecoveryRecord`], an [`IssuePattern`], or any JSON object with `issue_type`,
/// `strategy`, `successful` keys); anything else is a note whose whole content is searchable.
pub fn derive(item: &KnowledgeItem, now: SystemTime) -> Result<Row, StoreError> {
    let invalid = |m: String| Err(StoreError::Invalid(m));
    if item.component.trim().is_empty() {
        return invalid("an item needs a component".into());
    }
    if item.component.len() > MAX_NAME {
        return invalid(format!("a component name is at most {MAX_NAME} bytes"));
    }
    if item.tags.len() > MAX_ITEM_TAGS {
        return invalid(format!("an item carries at most {MAX_ITEM_TAGS} tags"));
    }
    let mut tags: Vec<String> = Vec::new();
    for tag in &item.tags {
        if tag.trim().is_empty() || tag.len() > MAX_NAME {
            return invalid(format!(
                "tags are 1 to {MAX_NAME} bytes, and '{tag}' is not"
            ));
        }
        if !tags.contains(tag) {
            tags.push(tag.clone());
        }
    }
    if item.content.is_empty() {
        return invalid("an item needs content".into());
    }
    if item.content.len() > MAX_CONTENT {
        return invalid(format!("content is at most {MAX_CONTENT} bytes"));
    }
    let mut row = Row {
        component: item.component.clone(),
        timestamp: millis(item.timestamp.unwrap_or(now)),
        tags,
        content: item.content.clone(),
        source: item.source.clone().unwrap_or_default(),
        kind: "note",
        issue_type: item.related_to.clone(),
        strategy: None,
        successful: None,
        severity: None,
        duration_ms: None,
        symptom: item.content.clone(),
    };
    if let Ok(record) = serde_json::from_str::<RecoveryRecord>(&item.content) {
        row.kind = "recovery";
        row.symptom = issue_text(&record.issue);
        row.issue_type = Some(record.issue.issue_type);
        row.strategy = Some(record.strategy);
        row.successful = Some(record.successful);
        row.severity = Some(severity_rank(record.issue.severity));
        row.duration_ms = Some(millis(SystemTime::UNIX_EPOCH + record.duration));
        if item.timestamp.is_none() {
            row.timestamp = millis(record.timestamp);
        }
    } else if let Ok(pattern) = serde_json::from_str::<IssuePattern>(&item.content) {
        row.kind = "pattern";
        row.symptom = format!("{}\n{}", pattern.issue_type, pattern.symptoms.join("\n"));
        row.issue_type = Some(pattern.issue_type);
        row.severity = Some(severity_rank(pattern.severity));
    } else if let Ok(serde_json::Value::Object(map)) =
        serde_json::from_str::<serde_json::Value>(&item.content)
    {
        if let Some(t) = map.get("issue_type").and_then(|v| v.as_str()) {
            row.issue_type = Some(t.to_string());
        }
        row.strategy = map
            .get("strategy")
            .and_then(|v| v.as_str())
            .map(str::to_string);
        row.successful = map.get("successful").and_then(|v| v.as_bool());
    }
    Ok(row)
}

/// The symptoms an issue shows: what its detector saw, short and stable where it can be (a log
/// pattern rather than the line, an exit code, a metric and its limit).
pub fn symptoms_of(issue: &Issue) -> Vec<String> {
    let c = &issue.context;
    let mut out = Vec::new();
    if let Some(p) = c.get("pattern") {
        out.push(format!("log matches /{p}/"));
    } else if let Some(line) = c.get("line") {
        out.push(crate::text::truncate(line, 200));
    }
    if let Some(code) = c.get("exit") {
        out.push(format!("exit {code}"));
    }
    if let (Some(metric), Some(limit)) = (c.get("metric"), c.get("limit")) {
        out.push(format!("{metric} over {limit}"));
    }
    for key in ["reason", "message", "error", "health"] {
        if let Some(v) = c.get(key) {
            out.push(crate::text::truncate(v, 200));
        }
    }
    if out.is_empty() {
        out.push(issue.issue_type.clone());
    }
    out.dedup();
    out
}

/// Reads a result from a row selected with [`COLUMNS`].
pub fn result_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<KnowledgeResult> {
    let tags: String = row.get(2)?;
    Ok(KnowledgeResult {
        id: row.get(0)?,
        component: row.get(1)?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        content: row.get(3)?,
        related_to: row.get(4)?,
        timestamp: from_millis(row.get(5)?),
        source: row.get(6)?,
    })
}

/// What the writer thread is asked to do.
pub enum Write {
    Insert {
        row: Row,
        reply: Option<oneshot::Sender<Result<KnowledgeResult, StoreError>>>,
    },
    /// Store or match the pattern of an issue (see [`Writer::pattern`]).
    Pattern {
        issue: Issue,
        reply: Option<oneshot::Sender<Result<KnowledgeResult, StoreError>>>,
    },
    /// All rows or none.
    Import {
        rows: Vec<Row>,
        reply: oneshot::Sender<Result<usize, StoreError>>,
    },
    /// Answered once everything queued before it is committed.
    Flush { reply: oneshot::Sender<()> },
    /// A flush that also adds the trail to the text index (see [`TEXT_TAIL`]).
    IndexText { reply: oneshot::Sender<()> },
    /// A whole pruning round now; answered with the rows deleted.
    Prune {
        reply: oneshot::Sender<Result<u64, StoreError>>,
    },
    /// New retention (a config reload): used from the next pruning round on, which starts at
    /// once when a limit got tighter (see [`next_prune_after`]).
    Retention {
        max_per_component: u64,
        max_age: Duration,
        prune_every: Duration,
    },
}

/// The writer's side of the channel.
///
/// The channel is unbounded and the bound is counted apart (`waiting`): std's bounded channel
/// allocates and touches all its slots when it is made, and 16,384 writes of some 260 bytes
/// were 4.2 MB of the core's resident memory before anything was learned.
#[derive(Clone)]
pub struct WriterHandle {
    tx: Sender<Write>,
    /// Writes sent and not yet taken by the writer.
    waiting: Arc<AtomicUsize>,
    queue: usize,
}

impl WriterHandle {
    /// Queues a write without waiting; refused as busy when the queue is full.
    pub fn send(&self, write: Write) -> Result<(), StoreError> {
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.queue {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(StoreError::Busy(self.queue));
        }
        self.tx.send(write).map_err(|_| {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            StoreError::Stopped
        })
    }

    /// Writes sent and not yet taken by the writer.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// Queues a write that must not be refused as busy (a change of settings: one small
    /// message, not a row).
    pub fn send_always(&self, write: Write) -> Result<(), StoreError> {
        self.waiting.fetch_add(1, Ordering::AcqRel);
        self.tx.send(write).map_err(|_| {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            StoreError::Stopped
        })
    }
}

fn configure(conn: &Connection, synchronous: Synchronous) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(mode = %mode, "the knowledge database is not in WAL mode");
    }
    conn.execute_batch(match synchronous {
        Synchronous::Normal => "PRAGMA synchronous = NORMAL",
        Synchronous::Full => "PRAGMA synchronous = FULL",
    })?;
    // Keep the WAL from staying large after a big import or prune.
    conn.execute_batch("PRAGMA journal_size_limit = 67108864; PRAGMA cache_size = -16000")?;
    Ok(())
}

/// The writer's queue, before there is a writer: writes sent to the handle wait, in order, for
/// [`start`] to be given the other end (or are dropped with it, their answers with them).
pub fn queue(settings: &KnowledgeSettings) -> (WriterHandle, Receiver<Write>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = WriterHandle {
        tx,
        waiting: Arc::new(AtomicUsize::new(0)),
        queue: settings.queue.max(1),
    };
    (handle, rx)
}

/// Opens (creating and migrating) the file and starts the writer thread on the queue `queued`
/// of `handle` (from [`queue`]); what was queued before is written first. Returns the readers.
pub fn start(
    path: &Path,
    settings: &KnowledgeSettings,
    bus: Option<crate::core::bus::Bus>,
    queued: Receiver<Write>,
    handle: &WriterHandle,
) -> Result<Arc<Readers>, StoreError> {
    let mut conn = Connection::open(path).map_err(|source| StoreError::Open {
        path: path.display().to_string(),
        source,
    })?;
    configure(&conn, settings.synchronous)?;
    schema::migrate(&mut conn)?;
    // Fresh statistics for the planner where they are stale (cheap when they are not).
    conn.execute_batch("PRAGMA optimize = 0x10002")?;
    // Checkpoints run on a thread of their own (see `checkpointer`), not inside a commit.
    conn.execute_batch("PRAGMA wal_autocheckpoint = 0")?;
    let checkpoints = checkpointer(path)?;
    let writer = Writer {
        conn,
        settings: settings.clone(),
        bus,
        prune: None,
        // The first round soon after start, not at once: the core has more urgent things to do.
        next_prune: Instant::now() + settings.prune_every.min(Duration::from_secs(60)),
        checkpoints,
        since_checkpoint: (0, 0),
        // An item stored before a kill -9 may wait: it is indexed when the writer is idle.
        text_behind: true,
    };
    std::thread::Builder::new()
        .name("knowledge-writer".into())
        .spawn({
            let waiting = handle.waiting.clone();
            move || {
                crate::core::priority::lower_this_thread();
                writer.run(queued, &waiting)
            }
        })
        .map_err(|e| StoreError::Invalid(format!("cannot start the writer thread: {e}")))?;
    Ok(Arc::new(Readers {
        path: path.to_path_buf(),
        idle: Mutex::new(Vec::new()),
    }))
}

/// Starts the checkpointer: a thread with a connection of its own that folds the WAL back into
/// the database file (`PRAGMA wal_checkpoint(PASSIVE)`) whenever the writer wakes it.
///
/// Why not SQLite's automatic checkpoint: it runs inside the commit that crosses 1,000 WAL
/// pages, and a checkpoint syncs the WAL and the database file (two fsyncs, some 15 ms each on
/// this machine's disk), so every hundredth acknowledgement waited for them. A passive
/// checkpoint on another connection never blocks the writer; durability is unchanged (a commit
/// is in the WAL before it is acknowledged, whatever the checkpoints do).
fn checkpointer(path: &Path) -> Result<SyncSender<()>, StoreError> {
    let path = path.to_path_buf();
    // One wake-up waiting is enough: a checkpoint takes whatever the WAL holds by then.
    let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
    std::thread::Builder::new()
        .name("knowledge-checkpoint".into())
        .spawn(move || {
            crate::core::priority::lower_this_thread();
            // Opened at the first wake-up: a core that learns little never pays for it.
            let mut conn: Option<Connection> = None;
            // Ends when the writer (the only sender) is gone.
            for () in rx {
                let mut checkpoint = || -> rusqlite::Result<()> {
                    if conn.is_none() {
                        let c = Connection::open(&path)?;
                        c.busy_timeout(Duration::from_secs(5))?;
                        c.execute_batch("PRAGMA cache_size = -512")?;
                        conn = Some(c);
                    }
                    let c = conn.as_ref().expect("opened above");
                    c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                };
                if let Err(e) = checkpoint() {
                    tracing::warn!(cause = %e, "a knowledge checkpoint failed");
                }
            }
        })
        .map_err(|e| StoreError::Invalid(format!("cannot start the checkpoint thread: {e}")))?;
    Ok(tx)
}

/// What is left of a pruning round.
struct PruneRound {
    /// Items older than this go first.
    cutoff: i64,
    age_done: bool,
    /// Components over their limit, and by how many.
    excess: Vec<(String, u64)>,
    deleted: u64,
}

struct Writer {
    conn: Connection,
    settings: KnowledgeSettings,
    bus: Option<crate::core::bus::Bus>,
    prune: Option<PruneRound>,
    /// When the next pruning round starts (once the writer is idle).
    next_prune: Instant,
    /// Wakes the checkpointer; dropped with the writer, which ends it.
    checkpoints: SyncSender<()>,
    /// Commits and rows since the checkpointer was last woken.
    since_checkpoint: (usize, usize),
    /// Committed items are not in the text index yet (see [`TEXT_TAIL`]).
    text_behind: bool,
}

/// What a write in a batch came to, before the commit.
enum Done {
    Stored(Result<KnowledgeResult, StoreError>),
    Imported(Result<usize, StoreError>),
    /// A flush, a prune or new retention: done after the commit.
    Later,
}

/// Applies the writes of a batch in the open transaction `tx`. `alone`: each under its own
/// savepoint, so one that fails is undone alone and the others stand; without, the first that
/// fails stops the batch (`None`), which the caller rolls back and applies again alone.
///
/// Why not a savepoint for every write always: while a savepoint is open SQLite copies every
/// page a write changes for the first time into its statement journal (some ten pages of 4 KB
/// for an item: the table, five indexes, the tags), to undo them; writes rarely fail (the items
/// were checked before they were queued), so the batch goes without and pays only when one does.
fn write_batch(tx: &Connection, batch: &[Write], alone: bool) -> Option<Vec<Done>> {
    fn each<T>(
        tx: &Connection,
        alone: bool,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if alone { one(tx, f) } else { f(tx) }
    }
    let mut done = Vec::with_capacity(batch.len());
    for write in batch {
        let outcome = match write {
            Write::Insert { row, .. } => Done::Stored(each(tx, alone, |c| insert(c, row))),
            Write::Pattern { issue, .. } => Done::Stored(each(tx, alone, |c| pattern(c, issue))),
            Write::Import { rows, .. } => Done::Imported(each(tx, alone, |c| {
                for row in rows {
                    insert(c, row)?;
                }
                Ok(rows.len())
            })),
            Write::Flush { .. }
            | Write::IndexText { .. }
            | Write::Prune { .. }
            | Write::Retention { .. } => Done::Later,
        };
        if !alone && matches!(outcome, Done::Stored(Err(_)) | Done::Imported(Err(_))) {
            return None;
        }
        done.push(outcome);
    }
    Some(done)
}

impl Writer {
    fn run(mut self, rx: Receiver<Write>, waiting: &AtomicUsize) {
        loop {
            let next_prune = self.next_prune;
            let wait = if self.prune.is_some() {
                Duration::ZERO
            } else if self.text_behind || self.since_checkpoint.0 > 0 {
                TEXT_IDLE.min(next_prune.saturating_duration_since(Instant::now()))
            } else {
                next_prune.saturating_duration_since(Instant::now())
            };
            match rx.recv_timeout(wait) {
                Ok(first) => {
                    let mut batch = vec![first];
                    while batch.len() < self.settings.batch {
                        match rx.try_recv() {
                            Ok(w) => batch.push(w),
                            Err(_) => break,
                        }
                    }
                    waiting.fetch_sub(batch.len(), Ordering::AcqRel);
                    self.apply(batch);
                }
                Err(RecvTimeoutError::Timeout) => {
                    if self.text_behind || self.since_checkpoint.0 > 0 {
                        if self.text_behind
                            && let Err(e) = self.index_trail()
                        {
                            tracing::warn!(cause = %e, "indexing knowledge symptoms failed");
                        }
                        self.checkpoint_when_idle();
                        continue;
                    }
                    if self.prune.is_none() {
                        self.prune = self.start_prune().ok();
                        self.next_prune = Instant::now() + self.settings.prune_every;
                    }
                    if let Err(e) = self.prune_step() {
                        tracing::warn!(cause = %e, "pruning the knowledge registry failed");
                        self.prune = None;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        // Index the trail and fold the WAL back into the file on a clean shutdown.
        let _ = self.index_trail();
        let _ = self
            .conn
            .execute_batch("PRAGMA optimize; PRAGMA wal_checkpoint(TRUNCATE)");
    }

    fn apply(&mut self, batch: Vec<Write>) {
        let index_now = batch.iter().any(|w| matches!(w, Write::IndexText { .. }));
        let outcome = (|| -> rusqlite::Result<(Vec<Done>, bool)> {
            let mut tx = self.conn.transaction()?;
            let done = match write_batch(&tx, &batch, false) {
                Some(done) => done,
                None => {
                    // A write failed: undo the batch and apply it again, each write under its
                    // own savepoint, so that only the one that fails is refused.
                    tx.rollback()?;
                    tx = self.conn.transaction()?;
                    write_batch(&tx, &batch, true).expect("each write alone has its outcome")
                }
            };
            let trail = newest_id(&tx)? - text_upto(&tx)?;
            let indexed = index_now || trail >= TEXT_TAIL;
            if indexed {
                index_symptoms(&tx)?;
            }
            tx.commit()?;
            Ok((done, trail > 0 && !indexed))
        })();
        let (mut done, failed) = match outcome {
            Ok((done, behind)) => {
                self.text_behind = behind;
                self.committed(batch.len());
                (Some(done.into_iter()), None)
            }
            Err(e) => (None, Some(e.to_string())),
        };
        let commit_failed = || {
            StoreError::Invalid(format!(
                "commit failed: {}",
                failed.as_deref().unwrap_or("no outcome")
            ))
        };
        let mut prunes = Vec::new();
        let mut retention = Vec::new();
        for write in batch {
            let outcome = done.as_mut().and_then(Iterator::next);
            match write {
                Write::Insert { reply, .. } | Write::Pattern { reply, .. } => {
                    let result = match outcome {
                        Some(Done::Stored(result)) => result,
                        _ => Err(commit_failed()),
                    };
                    if let (Ok(item), Some(bus)) = (&result, &self.bus) {
                        bus.publish(Event::Knowledge {
                            item: Box::new(item.clone()),
                        });
                    }
                    if let Err(e) = &result
                        && reply.is_none()
                    {
                        tracing::warn!(cause = %e, "a learned item was not stored");
                    }
                    if let Some(reply) = reply {
                        let _ = reply.send(result);
                    }
                }
                Write::Import { reply, .. } => {
                    let result = match outcome {
                        Some(Done::Imported(result)) => result,
                        _ => Err(commit_failed()),
                    };
                    if result.is_ok() {
                        let _ = self.conn.execute_batch("PRAGMA optimize");
                    }
                    let _ = reply.send(result);
                }
                Write::Flush { reply } | Write::IndexText { reply } => {
                    let _ = reply.send(());
                }
                Write::Prune { reply } => prunes.push(reply),
                Write::Retention {
                    max_per_component,
                    max_age,
                    prune_every,
                } => retention.push((max_per_component, max_age, prune_every)),
            }
        }
        for (max_per_component, max_age, prune_every) in retention {
            self.set_retention(max_per_component, max_age, prune_every);
        }
        for reply in prunes {
            let result = self.prune_all();
            let _ = reply.send(result);
        }
    }

    /// Takes new retention. A round under way was counted by the old limits, so it ends here
    /// (what it deleted stays deleted); the next one starts as [`next_prune_after`] says.
    fn set_retention(&mut self, max_per_component: u64, max_age: Duration, prune_every: Duration) {
        let old = self.settings.clone();
        self.settings.max_per_component = max_per_component;
        self.settings.max_age = max_age;
        self.settings.prune_every = prune_every;
        if old == self.settings {
            return;
        }
        self.prune = None;
        self.next_prune = next_prune_after(&old, &self.settings, self.next_prune, Instant::now());
        tracing::info!(
            max_per_component,
            max_age_secs = max_age.as_secs(),
            prune_every_secs = prune_every.as_secs(),
            "knowledge retention changed"
        );
    }

    /// Adds the trail to the text index in a transaction of its own.
    fn index_trail(&mut self) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        index_symptoms(&tx)?;
        tx.commit()?;
        self.text_behind = false;
        self.committed(1);
        Ok(())
    }

    /// Wakes the checkpointer for what the WAL holds since it was last woken. With no write
    /// after it, its passive checkpoint completes, and the next write starts the WAL again
    /// from its beginning (cut to `journal_size_limit`). Woken only every 64 commits, it was
    /// not woken for a burst's last commits, so the WAL could not start again and grew from
    /// burst to burst until the core stopped.
    fn checkpoint_when_idle(&mut self) {
        let _ = self.checkpoints.try_send(());
        self.since_checkpoint = (0, 0);
    }

    /// Counts a commit of `rows` writes and wakes the checkpointer when the WAL has grown.
    fn committed(&mut self, rows: usize) {
        let (commits, written) = &mut self.since_checkpoint;
        *commits += 1;
        *written += rows;
        if *commits >= CHECKPOINT_COMMITS || *written >= CHECKPOINT_ROWS {
            // Full: a wake-up is already waiting, which is as good.
            let _ = self.checkpoints.try_send(());
            self.since_checkpoint = (0, 0);
        }
    }

    fn start_prune(&self) -> rusqlite::Result<PruneRound> {
        let max_age = i64::try_from(self.settings.max_age.as_millis()).unwrap_or(i64::MAX);
        let cutoff = millis(SystemTime::now()).saturating_sub(max_age);
        let mut stmt = self.conn.prepare(
            "SELECT component, COUNT(*) FROM items GROUP BY component HAVING COUNT(*) > ?",
        )?;
        let excess = stmt
            .query_map([self.settings.max_per_component as i64], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })?
            .map(|r| r.map(|(c, n)| (c, n as u64 - self.settings.max_per_component)))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(PruneRound {
            cutoff,
            age_done: false,
            excess,
            deleted: 0,
        })
    }

    /// One chunk of the current round, in its own transaction.
    fn prune_step(&mut self) -> rusqlite::Result<()> {
        let Some(round) = self.prune.as_mut() else {
            return Ok(());
        };
        if !round.age_done {
            let n = self.conn.execute(
                "DELETE FROM items WHERE id IN \
                 (SELECT id FROM items WHERE timestamp < ? ORDER BY timestamp LIMIT ?)",
                params![round.cutoff, PRUNE_CHUNK as i64],
            )?;
            round.deleted += n as u64;
            if n < PRUNE_CHUNK {
                round.age_done = true;
                // Ageing may have brought components under their limit: count again.
                let deleted = round.deleted;
                let mut fresh = self.start_prune()?;
                fresh.age_done = true;
                fresh.deleted = deleted;
                self.prune = Some(fresh);
            }
            return Ok(());
        }
        let Some((component, excess)) = round.excess.last_mut() else {
            let deleted = round.deleted;
            self.prune = None;
            if deleted > 0 {
                tracing::info!(deleted, "knowledge registry pruned");
                let _ = self.conn.execute_batch("PRAGMA optimize");
            }
            return Ok(());
        };
        let take = (*excess).min(PRUNE_CHUNK as u64);
        let n = self.conn.execute(
            "DELETE FROM items WHERE id IN (SELECT id FROM items WHERE component = ? \
             ORDER BY timestamp, id LIMIT ?)",
            params![component.as_str(), take as i64],
        )? as u64;
        round.deleted += n;
        *excess -= n.min(*excess);
        if *excess == 0 || n == 0 {
            round.excess.pop();
        }
        Ok(())
    }

    fn prune_all(&mut self) -> Result<u64, StoreError> {
        self.prune = Some(self.start_prune()?);
        let mut deleted = 0;
        while let Some(round) = &self.prune {
            deleted = round.deleted;
            self.prune_step()?;
        }
        Ok(deleted)
    }
}

/// When the next pruning round starts once the retention changed from `old` to `new`, the round
/// having been `planned` for then: at once (`now`) when a limit got tighter (fewer items per
/// component, or a shorter age), so the registry shrinks without waiting out the old interval;
/// else by the new interval counted from `now`, but never later than planned.
pub fn next_prune_after(
    old: &KnowledgeSettings,
    new: &KnowledgeSettings,
    planned: Instant,
    now: Instant,
) -> Instant {
    if new.max_per_component < old.max_per_component || new.max_age < old.max_age {
        now
    } else {
        planned.min(now + new.prune_every)
    }
}

/// The highest item id stored (0 for none).
fn newest_id(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT coalesce(max(id), 0) FROM items")?
        .query_row([], |r| r.get(0))
}

/// How far the text index goes: every item with an id up to it is in `items_fts`.
fn text_upto(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT upto FROM items_fts_upto")?
        .query_row([], |r| r.get(0))
}

/// Adds the symptom text of the items after `items_fts_upto` to the text index in one
/// statement, and moves `upto` to the newest item.
///
/// Why not a trigger per insert (schema version 1 did that): FTS5 writes what it has pending
/// to disk as a new segment at every savepoint and at every statement that needs a statement
/// journal, which an insert firing a trigger does, so each item became a segment of its own,
/// merged again and again: 120 µs an item against 30 µs without the index. Why not every
/// commit (schema version 2): a contribution written alone was then still a segment of its
/// own. A trail of up to [`TEXT_TAIL`] items is one segment; `contains` reads the trail
/// directly, so a committed item is always found.
fn index_symptoms(conn: &Connection) -> rusqlite::Result<()> {
    let upto = text_upto(conn)?;
    conn.prepare_cached(
        "INSERT INTO items_fts (rowid, symptom) SELECT id, symptom FROM items WHERE id > ?",
    )?
    .execute([upto])?;
    conn.prepare_cached(
        "UPDATE items_fts_upto SET upto = (SELECT coalesce(max(id), 0) FROM items)",
    )?
    .execute([])?;
    Ok(())
}

/// Runs one write under its own savepoint: on error it is undone alone.
fn one<T>(
    tx: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    // Prepared once and kept: parsing the statements again for every write cost as much as
    // the savepoints themselves.
    tx.prepare_cached("SAVEPOINT one")?.execute([])?;
    match f(tx) {
        Ok(v) => {
            tx.prepare_cached("RELEASE one")?.execute([])?;
            Ok(v)
        }
        Err(e) => {
            tx.prepare_cached("ROLLBACK TO one")?.execute([])?;
            tx.prepare_cached("RELEASE one")?.execute([])?;
            Err(e)
        }
    }
}

/// Inserts one row (and its tags): the writer's step, and a test's way to fill an old file.
pub fn insert(conn: &Connection, row: &Row) -> Result<KnowledgeResult, StoreError> {
    let tags = serde_json::to_string(&row.tags).expect("strings serialise");
    let mut stmt = conn.prepare_cached(
        "INSERT INTO items (component, timestamp, tags, content, source, kind, issue_type, \
         strategy, successful, severity, duration_ms, symptom) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )?;
    stmt.execute(params![
        row.component,
        row.timestamp,
        tags,
        row.content,
        row.source,
        row.kind,
        row.issue_type,
        row.strategy,
        row.successful,
        row.severity,
        row.duration_ms,
        row.symptom,
    ])?;
    let id = conn.last_insert_rowid();
    let mut tag_stmt =
        conn.prepare_cached("INSERT INTO item_tags (item_id, tag, timestamp) VALUES (?, ?, ?)")?;
    for tag in &row.tags {
        tag_stmt.execute(params![id, tag, row.timestamp])?;
    }
    Ok(KnowledgeResult {
        id,
        component: row.component.clone(),
        tags: row.tags.clone(),
        content: row.content.clone(),
        related_to: row.issue_type.clone(),
        timestamp: from_millis(row.timestamp),
        source: row.source.clone(),
    })
}

/// Stores the pattern of an issue, or adds its symptoms to the pattern already known for that
/// component and issue type (newest symptoms kept, severity the worst seen, time refreshed).
fn pattern(conn: &Connection, issue: &Issue) -> Result<KnowledgeResult, StoreError> {
    let now = SystemTime::now();
    let symptoms = symptoms_of(issue);
    let known: Option<(i64, String)> = conn
        .prepare_cached(
            "SELECT id, content FROM items WHERE issue_type = ? AND successful IS NULL \
             AND component = ? AND kind = 'pattern' ORDER BY timestamp DESC LIMIT 1",
        )?
        .query_row(params![issue.issue_type, issue.component], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    let known = known.and_then(|(id, content)| {
        serde_json::from_str::<IssuePattern>(&content)
            .ok()
            .map(|p| (id, p))
    });
    let Some((id, mut known)) = known else {
        let pattern = IssuePattern {
            issue_type: issue.issue_type.clone(),
            symptoms,
            severity: issue.severity,
        };
        let item = KnowledgeItem::new()
            .component(&issue.component)
            .tags(["issue", "pattern"])
            .content(serde_json::to_string(&pattern).expect("a pattern serialises"))
            .source("core")
            .at(now);
        return insert(conn, &derive(&item, now)?);
    };
    for s in symptoms {
        known.symptoms.retain(|k| *k != s);
        known.symptoms.push(s);
    }
    let excess = known.symptoms.len().saturating_sub(MAX_SYMPTOMS);
    known.symptoms.drain(..excess);
    known.severity = known.severity.max(issue.severity);
    let content = serde_json::to_string(&known).expect("a pattern serialises");
    let symptom = format!("{}\n{}", known.issue_type, known.symptoms.join("\n"));
    conn.prepare_cached(
        "UPDATE items SET content = ?, symptom = ?, severity = ?, timestamp = ? WHERE id = ?",
    )?
    .execute(params![
        content,
        symptom,
        severity_rank(known.severity),
        millis(now),
        id
    ])?;
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM items WHERE id = ?"))?
        .query_row([id], result_from_row)?)
}

/// The readers' connections.
pub struct Readers {
    path: PathBuf,
    /// Idle connections. A std mutex: held only to push or pop one, never across a query.
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    fn take(&self) -> Result<Connection, StoreError> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        if let Some(conn) = idle {
            return Ok(conn);
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.execute_batch("PRAGMA query_only = 1; PRAGMA cache_size = -16000")?;
        Ok(conn)
    }

    /// Runs `f` on a reader connection (blocking: call it from a blocking thread).
    pub fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.take()?;
        let result = f(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
        result
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Runs a compiled query: its bounded walk first, when it has one and that finds enough.
pub fn run_query(conn: &Connection, q: &Compiled) -> Result<Vec<KnowledgeResult>, StoreError> {
    if let Some(walk) = &q.walk {
        let found = run_query(conn, walk)?;
        if found.len() >= q.limit {
            return Ok(found);
        }
    }
    let mut stmt = conn.prepare_cached(&q.sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(q.params.iter()), result_from_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// `EXPLAIN QUERY PLAN` of a compiled query, one step per line (for tests and the benchmark).
pub fn plan(conn: &Connection, q: &Compiled) -> Result<String, StoreError> {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {}", q.sql))?;
    let rows = stmt.query_map(rusqlite::params_from_iter(q.params.iter()), |r| {
        r.get::<_, String>(3)
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?.join("\n"))
}

/// One page of everything, in id order.
pub fn export_page(
    conn: &Connection,
    after: Option<i64>,
    limit: usize,
) -> Result<(Vec<KnowledgeResult>, Option<i64>), StoreError> {
    let limit = limit.clamp(1, 10_000);
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM items WHERE items.id > ? ORDER BY items.id LIMIT ?"
    ))?;
    let rows = stmt
        .query_map(params![after.unwrap_or(0), limit as i64], result_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let next = (rows.len() == limit)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    Ok((rows, next))
}

/// What the file holds.
pub fn stats(
    conn: &Connection,
    path: &Path,
    settings: &KnowledgeSettings,
) -> Result<KnowledgeStats, StoreError> {
    let count = |sql: &str| -> Result<Vec<(String, u64)>, StoreError> {
        let mut stmt = conn.prepare(sql)?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    };
    let (items, oldest, newest): (i64, Option<i64>, Option<i64>) = conn.query_row(
        "SELECT COUNT(*), MIN(timestamp), MAX(timestamp) FROM items",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let size = |p: PathBuf| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    Ok(KnowledgeStats {
        path: path.display().to_string(),
        schema_version: schema::version(conn)?,
        items: items as u64,
        components: count(
            "SELECT component, COUNT(*) AS n FROM items GROUP BY component ORDER BY n DESC, component",
        )?,
        tags: count(
            "SELECT tag, COUNT(*) AS n FROM item_tags GROUP BY tag ORDER BY n DESC, tag LIMIT 50",
        )?,
        oldest: oldest.map(from_millis),
        newest: newest.map(from_millis),
        db_bytes: size(path.to_path_buf()),
        wal_bytes: size(PathBuf::from(wal)),
        max_per_component: settings.max_per_component,
        max_age_days: settings.max_age.as_secs() / 86_400,
    })
}

/// [`attempts`]' statement: parameters issue type, cured, component, strategy, limit.
pub const ATTEMPTS_SQL: &str = "SELECT timestamp, id FROM items WHERE issue_type = ? \
     AND successful = ? AND component = ? AND strategy = ? AND kind = 'recovery' \
     ORDER BY timestamp DESC, id DESC LIMIT ?";

/// The outcomes of the newest attempts of `strategy` at `issue_type` on `component`, newest
/// first, at most `n`: two index walks (cured, not cured) merged by time.
pub fn attempts(
    conn: &Connection,
    component: &str,
    issue_type: &str,
    strategy: &str,
    n: usize,
) -> Result<Vec<bool>, StoreError> {
    let mut stmt = conn.prepare_cached(ATTEMPTS_SQL)?;
    let mut all: Vec<(i64, i64, bool)> = Vec::new();
    for cured in [true, false] {
        let rows = stmt.query_map(
            params![issue_type, cured, component, strategy, n as i64],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, cured)),
        )?;
        for row in rows {
            all.push(row?);
        }
    }
    all.sort_by_key(|a| std::cmp::Reverse((a.0, a.1)));
    Ok(all.into_iter().take(n).map(|(_, _, cured)| cured).collect())
}

/// Parses and checks import lines (JSON of a [`KnowledgeItem`] or of an exported
/// [`KnowledgeResult`]); the first bad line fails the whole import.
pub fn parse_import(
    lines: &[String],
    first_line: usize,
    now: SystemTime,
) -> Result<Vec<Row>, StoreError> {
    let mut rows = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let number = first_line + i;
        let text = line.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let item = match serde_json::from_str::<KnowledgeResult>(text) {
            Ok(result) => result.to_item(),
            Err(_) => {
                serde_json::from_str::<KnowledgeItem>(text).map_err(|e| StoreError::BadLine {
                    line: number,
                    message: format!("not a knowledge item: {e}"),
                })?
            }
        };
        let mut item = item;
        if item.source.is_none() {
            item.source = Some("import".into());
        }
        let row = derive(&item, now).map_err(|e| StoreError::BadLine {
            line: number,
            message: e.to_string(),
        })?;
        rows.push(row);
    }
    Ok(rows)
}

/// Binds values for ad-hoc statements in tests and the benchmark.
pub fn values(v: &[SqlValue]) -> rusqlite::ParamsFromIter<std::slice::Iter<'_, SqlValue>> {
    rusqlite::params_from_iter(v.iter())
}

/// Opens the file read-only for a one-off look (tests, the benchmark).
pub fn open_read_only(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

/// Inserts rows straight into a file in one transaction, bypassing the writer (the benchmark's
/// fill; never used while a core runs on the file).
pub fn bulk_insert(path: &Path, rows: &[Row]) -> Result<(), StoreError> {
    let mut conn = Connection::open(path)?;
    configure(&conn, Synchronous::Normal)?;
    schema::migrate(&mut conn)?;
    let tx = conn.transaction()?;
    for row in rows {
        insert(&tx, row)?;
    }
    index_symptoms(&tx)?;
    tx.commit()?;
    Ok(())
}

/// Refreshes the planner's statistics (after a bulk fill).
pub fn analyze(path: &Path) -> Result<(), StoreError> {
    let conn = Connection::open(path)?;
    conn.execute_batch("ANALYZE")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tighter_retention_prunes_at_once_and_a_looser_one_waits() {
        let now = Instant::now();
        let planned = now + Duration::from_secs(600);
        let old = KnowledgeSettings::default();
        let with = |f: &dyn Fn(&mut KnowledgeSettings)| {
            let mut s = old.clone();
            f(&mut s);
            s
        };
        let fewer = with(&|s| s.max_per_component = old.max_per_component - 1);
        assert_eq!(next_prune_after(&old, &fewer, planned, now), now);
        let younger = with(&|s| s.max_age = old.max_age / 2);
        assert_eq!(next_prune_after(&old, &younger, planned, now), now);
        // Looser: as planned, or sooner when the new interval is shorter.
        let more = with(&|s| s.max_per_component = old.max_per_component + 1);
        assert_eq!(next_prune_after(&old, &more, planned, now), planned);
        let often = with(&|s| s.prune_every = Duration::from_secs(5));
        assert_eq!(
            next_prune_after(&old, &often, planned, now),
            now + Duration::from_secs(5)
        );
        let seldom = with(&|s| s.prune_every = Duration::from_secs(3600));
        assert_eq!(next_prune_after(&old, &seldom, planned, now), planned);
    }

    #[test]
    fn a_full_queue_refuses_writes_as_busy_until_the_writer_takes_some() {
        let (tx, rx) = std::sync::mpsc::channel();
        let handle = WriterHandle {
            tx,
            waiting: Arc::new(AtomicUsize::new(0)),
            queue: 2,
        };
        let flush = || Write::Flush {
            reply: oneshot::channel().0,
        };
        handle.send(flush()).unwrap();
        handle.send(flush()).unwrap();
        assert!(matches!(handle.send(flush()), Err(StoreError::Busy(2))));
        // The writer takes one (and counts it, as `Writer::run` does).
        rx.recv().unwrap();
        handle.waiting.fetch_sub(1, Ordering::AcqRel);
        handle.send(flush()).unwrap();
        drop(rx);
        handle.waiting.store(0, Ordering::Release);
        assert!(matches!(handle.send(flush()), Err(StoreError::Stopped)));
        assert_eq!(handle.waiting.load(Ordering::Acquire), 0);
    }
}
