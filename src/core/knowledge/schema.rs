//! The registry's schema and its migrations, numbered by `PRAGMA user_version`.
//!
//! Migration `n` (1-based) takes a database at version `n - 1` to version `n`; each runs in its
//! own transaction with the version bump, so a crash leaves the file at a whole version. A file
//! from a newer hms-console (a version above [`VERSION`]) is refused rather than guessed at.
//! docs/knowledge.md describes every table and column for people reading the file with the
//! `sqlite3` shell; keep the two in step.

use rusqlite::Connection;

/// The schema version this build writes.
pub const VERSION: u32 = MIGRATIONS.len() as u32;

/// Each step, in order. Never edit a step that has shipped: add one.
const MIGRATIONS: &[&str] = &[
    // 1: items, their tags, the symptom text index.
    r#"
    CREATE TABLE items (
        id          INTEGER PRIMARY KEY,  -- grows with every item stored
        component   TEXT    NOT NULL,
        timestamp   INTEGER NOT NULL,     -- ms since 1970, UTC: when it was learned
        tags        TEXT    NOT NULL,     -- JSON array, as contributed (item_tags indexes them)
        content     TEXT    NOT NULL,     -- as contributed, usually JSON
        source      TEXT    NOT NULL,     -- who contributed it
        kind        TEXT    NOT NULL,     -- 'recovery', 'pattern' or 'note' (read from content)
        issue_type  TEXT,                 -- what it relates to
        strategy    TEXT,                 -- recovery records: the action tried
        successful  INTEGER,              -- recovery records: 1 cured, 0 did not
        severity    INTEGER,              -- 0 info, 1 warning, 2 error, 3 critical
        duration_ms INTEGER,              -- recovery records: how long the attempt took
        symptom     TEXT    NOT NULL      -- the text `contains` searches
    );
    CREATE INDEX items_component ON items (component, timestamp);
    CREATE INDEX items_issue ON items (issue_type, successful, timestamp);
    CREATE INDEX items_time ON items (timestamp);

    CREATE TABLE item_tags (
        item_id   INTEGER NOT NULL,
        tag       TEXT    NOT NULL,
        timestamp INTEGER NOT NULL,       -- the item's, so a tag's newest items come first
        PRIMARY KEY (item_id, tag)
    ) WITHOUT ROWID;
    CREATE INDEX item_tags_tag ON item_tags (tag, timestamp);

    CREATE VIRTUAL TABLE items_fts USING fts5 (
        symptom, content = 'items', content_rowid = 'id', tokenize = 'trigram'
    );

    CREATE TRIGGER items_after_insert AFTER INSERT ON items BEGIN
        INSERT INTO items_fts (rowid, symptom) VALUES (new.id, new.symptom);
    END;
    CREATE TRIGGER items_after_delete AFTER DELETE ON items BEGIN
        INSERT INTO items_fts (items_fts, rowid, symptom) VALUES ('delete', old.id, old.symptom);
        DELETE FROM item_tags WHERE item_id = old.id;
    END;
    CREATE TRIGGER items_after_update AFTER UPDATE OF symptom, timestamp ON items BEGIN
        INSERT INTO items_fts (items_fts, rowid, symptom) VALUES ('delete', old.id, old.symptom);
        INSERT INTO items_fts (rowid, symptom) VALUES (new.id, new.symptom);
        UPDATE item_tags SET timestamp = new.timestamp WHERE item_id = new.id;
    END;
    "#,
    // 2: the advice's walks, and new items' text indexed by the writer a batch at a time.
    // `advice` asks, per component and issue type, for the newest successful records and for
    // each candidate strategy's newest attempts; `items_issue` made both read a whole issue
    // type's rows to pick one component's (12-28 ms at 100k items). `items_advice` walks one
    // component's rows of one issue type and outcome, newest first. The insert trigger made
    // every item an FTS5 segment of its own (see `store::index_symptoms`): the writer now adds
    // each transaction's new items to `items_fts` in one statement before it commits.
    r#"
    CREATE INDEX items_advice ON items (component, issue_type, successful, timestamp);
    DROP TRIGGER items_after_insert;
    "#,
    // 3: the text index trails the newest items by up to a batch (`store::TEXT_TAIL`).
    // Indexing every commit's items wrote a new FTS5 segment per commit and merged segments
    // again and again: most of the cost of a contribution written alone. `items_fts_upto`
    // says how far the index goes; `contains` reads the items after it directly, so a
    // committed item is still always found. The triggers touch the index only for items in
    // it, and keep `upto` at or below the newest item (a rowid freed by deleting the newest
    // items is given again, and must not count as indexed).
    r#"
    CREATE TABLE items_fts_upto (
        id   INTEGER PRIMARY KEY CHECK (id = 1),
        upto INTEGER NOT NULL      -- every item with id <= upto is in items_fts, none after it
    );
    INSERT INTO items_fts_upto (id, upto) VALUES (1, (SELECT coalesce(max(id), 0) FROM items));
    DROP TRIGGER items_after_delete;
    DROP TRIGGER items_after_update;
    CREATE TRIGGER items_after_delete AFTER DELETE ON items BEGIN
        INSERT INTO items_fts (items_fts, rowid, symptom)
            SELECT 'delete', old.id, old.symptom FROM items_fts_upto WHERE old.id <= upto;
        DELETE FROM item_tags WHERE item_id = old.id;
        UPDATE items_fts_upto SET upto = (SELECT coalesce(max(id), 0) FROM items)
            WHERE upto > (SELECT coalesce(max(id), 0) FROM items);
    END;
    CREATE TRIGGER items_after_update AFTER UPDATE OF symptom, timestamp ON items BEGIN
        INSERT INTO items_fts (items_fts, rowid, symptom)
            SELECT 'delete', old.id, old.symptom FROM items_fts_upto WHERE old.id <= upto;
        INSERT INTO items_fts (rowid, symptom)
            SELECT new.id, new.symptom FROM items_fts_upto WHERE new.id <= upto;
        UPDATE item_tags SET timestamp = new.timestamp WHERE item_id = new.id;
    END;
    "#,
];

/// Why the schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The file was written by a newer hms-console.
    #[error(
        "the knowledge database is at schema version {found}, newer than this hms-console's {VERSION}; use a newer hms-console or another data directory"
    )]
    TooNew { found: u32 },
    /// A migration failed; the file stays at the version before it.
    #[error("migrating the knowledge database to schema version {to}: {source}")]
    Migration {
        to: u32,
        #[source]
        source: rusqlite::Error,
    },
}

/// The 16 bytes every SQLite database file starts with.
pub const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// What the first bytes of a knowledge file (`head`: up to its first 100, the header's size)
/// say, read without SQLite: the core's check at start, so that a file it cannot use is
/// reported then, while the file itself is opened at first use. An empty file is a new one;
/// anything else must carry SQLite's header, and a `user_version` (bytes 60..64, big-endian)
/// above [`VERSION`] is refused as migrating would refuse it. In WAL mode the header may trail
/// the WAL: the open at first use has the last word.
pub fn check_header(head: &[u8]) -> Result<(), HeaderError> {
    if head.is_empty() {
        return Ok(());
    }
    if head.len() < 100 || !head.starts_with(SQLITE_MAGIC) {
        return Err(HeaderError::NotSqlite);
    }
    let found = u32::from_be_bytes([head[60], head[61], head[62], head[63]]);
    if found > VERSION {
        return Err(HeaderError::Schema(SchemaError::TooNew { found }));
    }
    Ok(())
}

/// Why [`check_header`] refused a file.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    #[error("it is not a SQLite database (it does not start with SQLite's header)")]
    NotSqlite,
    #[error(transparent)]
    Schema(SchemaError),
}

/// The file's schema version.
pub fn version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Runs the migrations the file lacks. Returns the version it was at.
pub fn migrate(conn: &mut Connection) -> Result<u32, SchemaError> {
    migrate_to(conn, VERSION)
}

/// Runs the migrations the file lacks up to version `target` (at most [`VERSION`]; tests make
/// files as older releases wrote them). Returns the version it was at.
pub fn migrate_to(conn: &mut Connection, target: u32) -> Result<u32, SchemaError> {
    let found = version(conn).map_err(|source| SchemaError::Migration { to: 1, source })?;
    if found > VERSION {
        return Err(SchemaError::TooNew { found });
    }
    let steps = MIGRATIONS.iter().take(target.min(VERSION) as usize);
    for (i, step) in steps.enumerate().skip(found as usize) {
        let to = i as u32 + 1;
        let run = |conn: &mut Connection| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            tx.execute_batch(step)?;
            // A pragma takes no parameters; `to` is our own number.
            tx.execute_batch(&format!("PRAGMA user_version = {to}"))?;
            tx.commit()
        };
        run(conn).map_err(|source| SchemaError::Migration { to, source })?;
        tracing::info!(version = to, "knowledge database migrated");
    }
    Ok(found)
}
