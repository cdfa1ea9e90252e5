//! Tests of the registry against real SQLite files in temp dirs.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use super::*;
use crate::model::{HealingAction, Severity};

fn open(dir: &tempfile::TempDir, settings: KnowledgeSettings) -> KnowledgeHandle {
    KnowledgeHandle::open(dir.path(), settings, None).expect("open")
}

fn issue(component: &str, issue_type: &str) -> Issue {
    Issue {
        id: "i".into(),
        component: component.into(),
        issue_type: issue_type.into(),
        severity: Severity::Error,
        detected_at: SystemTime::now(),
        context: BTreeMap::from([("line".into(), "ERROR connection refused".into())]),
    }
}

fn record(
    component: &str,
    issue_type: &str,
    strategy: &str,
    cured: bool,
    at: SystemTime,
) -> RecoveryRecord {
    RecoveryRecord {
        issue: issue(component, issue_type),
        strategy: strategy.into(),
        successful: cured,
        action: HealingAction::Recover {
            name: strategy.into(),
        },
        timestamp: at,
        duration: Duration::from_millis(300),
    }
}

fn ago(secs: u64) -> SystemTime {
    SystemTime::now() - Duration::from_secs(secs)
}

#[tokio::test]
async fn the_guides_healing_query_finds_the_newest_successful_records() {
    let dir = tempfile::tempdir().unwrap();
    let k = open(&dir, KnowledgeSettings::default());
    for (i, (strategy, cured)) in [
        ("restart", true),
        ("clear_cache", false),
        ("clear_cache", true),
        ("restart", true),
    ]
    .into_iter()
    .enumerate()
    {
        k.record(record(
            "db",
            "db-connection-lost",
            strategy,
            cured,
            ago(100 - i as u64),
        ));
    }
    k.record(record("db", "crash", "restart", true, ago(1)));
    k.flush().await.unwrap();
    let results = k
        .query(
            KnowledgeQuery::new()
                .tag("recovery")
                .related_to("db-connection-lost")
                .filter("successful = true")
                .sort("timestamp", "desc")
                .limit(5),
        )
        .await
        .unwrap();
    let strategies: Vec<String> = results
        .iter()
        .map(|r| r.recovery_record().unwrap().strategy)
        .collect();
    assert_eq!(strategies, vec!["restart", "clear_cache", "restart"]);
    assert_eq!(results[0].tags, vec!["recovery", "healing"]);
    assert_eq!(results[0].related_to.as_deref(), Some("db-connection-lost"));
}

#[tokio::test]
async fn the_guides_healing_query_walks_the_issue_index() {
    let dir = tempfile::tempdir().unwrap();
    let k = open(&dir, KnowledgeSettings::default());
    k.flush().await.unwrap();
    let compiled = query::compile(
        &KnowledgeQuery::new()
            .tag("recovery")
            .related_to("x")
            .filter("successful = true")
            .sort("timestamp", "desc")
            .limit(5),
    )
    .unwrap();
    let conn = store::open_read_only(&dir.path().join(FILE_NAME)).unwrap();
    let plan = store::plan(&conn, &compiled).unwrap();
    assert!(plan.contains("items_issue"), "{plan}");
    assert!(!plan.contains("TEMP B-TREE"), "no sort step: {plan}");
}

#[tokio::test]
async fn hostile_text_is_only_ever_data() {
    let dir = tempfile::tempdir().unwrap();
    let k = open(&dir, KnowledgeSettings::default());
    let hostile = "x'); DROP TABLE items; --";
    k.contribute(
        KnowledgeItem::new()
            .component(hostile)
            .tags([hostile])
            .related_to(hostile)
            .content(hostile),
    )
    .await
    .unwrap();
    let found = k
        .query(
            KnowledgeQuery::new()
                .component(hostile)
                .tag(hostile)
                .contains(hostile)
                .related_to(hostile)
                .filter(format!("issue_type = '{}'", hostile.replace('\'', "''"))),
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].content, hostile);
    assert_eq!(
        k.stats().await.unwrap().items,
        1,
        "the table is still there"
    );
    let refused = k
        .query(KnowledgeQuery::new().filter(format!("strategy = {hostile}")))
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("filter error at column"),
        "{refused}"
    );
}

#[tokio::test]
async fn contains_finds_symptoms_in_any_case_long_or_short() {
    let dir = tempfile::tempdir().unwrap();
    let k = open(&dir, KnowledgeSettings::default());
    k.pattern_stored(&issue("api", "db-connection-lost"))
        .await
        .unwrap();
    k.contribute(
        KnowledgeItem::new()
            .component("api")
            .content("disk is full"),
    )
    .await
    .unwrap();
    for (text, expected) in [
        ("CONNECTION REFUSED", 1),
        ("refus", 1),
        ("is", 1),
        ("nothing like it", 0),
    ] {
        let found = k.query(KnowledgeQuery::new().contains(text)).await.unwrap();
        assert_eq!(found.len(), expected, "{text}");
    }
}

#[tokio::test]
async fn a_pattern_seen_again_is_matched_not_duplicated() {
    let dir = tempfile::tempdir().unwrap();
    let k = open(&dir, KnowledgeSettings::default());
    let first = k
        .pattern_stored(&issue("api", "crash").with("exit", 3))
        .await
        .unwrap();
    let mut again = issue("api", "crash").with("exit", 4);
    again.severity = Severity::Critical;
    let second = k.pattern_stored(&again).await.unwrap();
    assert_eq!(first.id, second.id);
    let p = second.issue_pattern().unwrap();
    assert_eq!(
        p.symptoms,
        vec!["exit 3", "ERROR connection refused", "exit 4"],
        "seen again moves to the end: newest last"
    );
    assert_eq!(p.severity, Severity::Critical);
    let other = k.pattern_stored(&issue("db", "crash")).await.unwrap();
    assert_ne!(other.id, first.id);
    let patterns = k
        .query(KnowledgeQuery::new().tag("issue").tag("pattern"))
        .await
        .unwrap();
    assert_eq!(patterns.len(), 2);
}

#[tokio::test]
async fn advice_prefers_what_cured_most_recently_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let k = open(&dir, KnowledgeSettings::default());
    let actions = vec!["clear_cache".to_string(), "restart".to_string()];
    assert_eq!(k.advice("db", "db-connection-lost", &actions).await, None);
    let mut t = 1000;
    let mut attempt = |k: &KnowledgeHandle, strategy: &str, cured: bool| {
        t -= 1;
        k.record(record("db", "db-connection-lost", strategy, cured, ago(t)));
    };
    attempt(&k, "restart", false);
    for _ in 0..7 {
        attempt(&k, "clear_cache", true);
    }
    attempt(&k, "clear_cache", false);
    attempt(&k, "clear_cache", true);
    k.flush().await.unwrap();
    let advice = k
        .advice("db", "db-connection-lost", &actions)
        .await
        .unwrap();
    assert_eq!(advice.action, "clear_cache");
    assert_eq!(
        advice.reason,
        "knowledge: clear_cache cured db-connection-lost 7 of the last 8 times"
    );
    // It stops working: its place goes to what cured instead.
    attempt(&k, "clear_cache", false);
    attempt(&k, "restart", true);
    k.flush().await.unwrap();
    let advice = k
        .advice("db", "db-connection-lost", &actions)
        .await
        .unwrap();
    assert_eq!(advice.action, "restart");
    // Another component learned nothing.
    assert_eq!(k.advice("api", "db-connection-lost", &actions).await, None);
}

/// A reload's retention: the writer prunes by it by itself, at once when it is tighter, and
/// `stats` reports it.
#[tokio::test]
async fn a_new_retention_is_taken_at_once_and_prunes_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let k = open(
        &dir,
        KnowledgeSettings {
            max_per_component: 100,
            // No round by itself unless the retention asks for one.
            prune_every: Duration::from_secs(3600),
            ..KnowledgeSettings::default()
        },
    );
    for i in 0..20u64 {
        k.record(record("a", "crash", "restart", true, ago(100 - i)));
    }
    k.flush().await.unwrap();
    k.set_retention(&KnowledgeConfig {
        max_items_per_component: 6,
        prune_every: Duration::from_secs(3600),
        ..KnowledgeConfig::default()
    });
    assert_eq!(k.stats().await.unwrap().max_per_component, 6);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let n = k
            .query(KnowledgeQuery::new().component("a"))
            .await
            .unwrap()
            .len();
        if n <= 6 {
            assert_eq!(n, 6, "the newest six stay");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still {n} items");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn retention_keeps_the_newest_per_component_and_drops_the_old() {
    let dir = tempfile::tempdir().unwrap();
    let k = open(
        &dir,
        KnowledgeSettings {
            max_per_component: 5,
            max_age: Duration::from_secs(30 * 24 * 3600),
            // No round by itself during the test: the test asks for one.
            prune_every: Duration::from_secs(3600),
            ..KnowledgeSettings::default()
        },
    );
    for i in 0..8u64 {
        k.record(record("a", "crash", "restart", true, ago(100 - i)));
    }
    for i in 0..3u64 {
        k.record(record("b", "crash", "restart", true, ago(100 - i)));
    }
    k.record(record("b", "crash", "restart", true, ago(40 * 24 * 3600)));
    // Indexed now, so that the text index's rows can be counted below.
    k.index_text().await.unwrap();
    assert_eq!(k.prune().await.unwrap(), 4);
    let a = k.query(KnowledgeQuery::new().component("a")).await.unwrap();
    assert_eq!(a.len(), 5);
    assert!(
        a.iter().all(|r| r.timestamp > ago(98)),
        "the newest five stay"
    );
    assert_eq!(
        k.query(KnowledgeQuery::new().component("b"))
            .await
            .unwrap()
            .len(),
        3
    );
    // Their tags and symptom text went with them.
    let conn = store::open_read_only(&dir.path().join(FILE_NAME)).unwrap();
    let tags: i64 = conn
        .query_row("SELECT COUNT(*) FROM item_tags", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tags, 16);
    let fts: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM items_fts WHERE items_fts MATCH '\"crash\"'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(fts, 8);
}

#[tokio::test]
async fn an_import_with_a_bad_line_stores_nothing_and_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let k = open(&dir, KnowledgeSettings::default());
    let good = serde_json::to_string(&KnowledgeItem::new().component("api").content("ok")).unwrap();
    let lines = vec![
        "# a runbook".to_string(),
        good.clone(),
        String::new(),
        good.clone(),
        r#"{"component": "", "content": "no component"}"#.to_string(),
        good.clone(),
    ];
    let e = k.import(lines, 1).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 5: an item needs a component; nothing was imported"
    );
    let e = k
        .import(vec![good.clone(), "{not json".into()], 1)
        .await
        .unwrap_err();
    assert!(
        e.to_string().starts_with("line 2: not a knowledge item"),
        "{e}"
    );
    assert_eq!(k.stats().await.unwrap().items, 0);
    assert_eq!(k.import(vec![good.clone(), good], 1).await.unwrap(), 2);
}

#[tokio::test]
async fn export_pages_round_trip_through_import() {
    let dir = tempfile::tempdir().unwrap();
    let k = open(&dir, KnowledgeSettings::default());
    for i in 0..5 {
        k.record(record("a", "crash", "restart", i % 2 == 0, ago(10 - i)));
    }
    k.flush().await.unwrap();
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let (page, next) = k.export_page(after, 2).await.unwrap();
        all.extend(page);
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(all.len(), 5);
    let other = tempfile::tempdir().unwrap();
    let copy = open(&other, KnowledgeSettings::default());
    let lines = all
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
    assert_eq!(copy.import(lines, 1).await.unwrap(), 5);
    let (again, _) = copy.export_page(None, 10).await.unwrap();
    for (a, b) in all.iter().zip(&again) {
        assert_eq!(
            (&a.content, &a.tags, a.timestamp),
            (&b.content, &b.tags, b.timestamp)
        );
    }
}

#[tokio::test]
async fn the_schema_is_versioned_and_a_newer_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(&dir, KnowledgeSettings::default()));
    let path = dir.path().join(FILE_NAME);
    let conn = rusqlite::Connection::open(&path).unwrap();
    assert_eq!(schema::version(&conn).unwrap(), schema::VERSION);
    conn.execute_batch("PRAGMA user_version = 99").unwrap();
    drop(conn);
    let e = KnowledgeHandle::open(dir.path(), KnowledgeSettings::default(), None)
        .err()
        .expect("refused");
    assert!(e.to_string().contains("schema version 99"), "{e}");
    let down = KnowledgeHandle::unavailable(e.to_string());
    assert!(down.query(KnowledgeQuery::new()).await.is_err());
    down.record(record("a", "crash", "restart", true, ago(1)));
}

#[tokio::test]
async fn invalid_items_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let k = open(&dir, KnowledgeSettings::default());
    for (item, says) in [
        (KnowledgeItem::new().content("x"), "needs a component"),
        (KnowledgeItem::new().component("a"), "needs content"),
        (
            KnowledgeItem::new().component("a").tags([""]).content("x"),
            "tags are",
        ),
    ] {
        let e = k.contribute(item).await.unwrap_err();
        assert!(e.to_string().contains(says), "{e}");
    }
}

#[tokio::test]
async fn a_version_1_file_migrates_and_keeps_its_items() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    {
        // A file as the first release wrote it, with a record in it.
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        schema::migrate_to(&mut conn, 1).unwrap();
        assert_eq!(schema::version(&conn).unwrap(), 1);
        let row = store::derive(
            &KnowledgeItem::new()
                .component("db")
                .tags(["recovery", "healing"])
                .content(
                    serde_json::to_string(&record("db", "crash", "clear_cache", true, ago(5)))
                        .unwrap(),
                ),
            SystemTime::now(),
        )
        .unwrap();
        store::insert(&conn, &row).unwrap();
    }
    let k = KnowledgeHandle::open(dir.path(), KnowledgeSettings::default(), None).unwrap();
    let conn = store::open_read_only(&path).unwrap();
    assert_eq!(schema::version(&conn).unwrap(), schema::VERSION);
    const { assert!(schema::VERSION >= 2) };
    let advice = k
        .advice("db", "crash", &["restart".into(), "clear_cache".into()])
        .await
        .expect("the migrated file still advises");
    assert_eq!(advice.action, "clear_cache");
    // The advice's walks use the index version 2 added.
    let plan: Vec<String> = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {}", store::ATTEMPTS_SQL))
        .unwrap()
        .query_map(
            rusqlite::params!["crash", true, "db", "clear_cache", 8],
            |r| r.get::<_, String>(3),
        )
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(plan.iter().any(|p| p.contains("items_advice")), "{plan:?}");
}

/// A write that fails inside the writer (here a pattern of an issue with no component) is
/// refused alone: the writes queued beside it in the same batch are stored and answered, and
/// nothing of the failed one is left behind. The writer applies a batch without a savepoint per
/// write and, when one fails, applies it again with them (see `store::write_batch`).
#[tokio::test]
async fn a_write_that_fails_in_a_batch_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let k = open(&dir, KnowledgeSettings::default());
    let note = |n: usize| {
        k.contribute(
            KnowledgeItem::new()
                .component("db")
                .tags(["note"])
                .content(format!("note {n} okapi")),
        )
    };
    // Queued without waiting, so that they share the writer's batches.
    let before: Vec<_> = (0..50).map(note).collect();
    let bad = issue("", "crash");
    let failed = k.pattern_stored(&bad);
    let after: Vec<_> = (50..100).map(note).collect();
    let (before, failed, after) = tokio::join!(
        futures::future::join_all(before),
        failed,
        futures::future::join_all(after)
    );
    let e = failed.expect_err("a pattern needs a component");
    assert!(e.to_string().contains("needs a component"), "{e}");
    let stored: Vec<i64> = before
        .into_iter()
        .chain(after)
        .map(|r| r.expect("the others are stored").id)
        .collect();
    assert_eq!(stored.len(), 100);
    let conn = store::open_read_only(&dir.path().join(FILE_NAME)).unwrap();
    let (items, tags): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT COUNT(*) FROM items), (SELECT COUNT(*) FROM item_tags)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((items, tags), (100, 100));
    let found = k
        .query(
            KnowledgeQuery::new()
                .tag("note")
                .contains("okapi")
                .limit(1000),
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 100);
}

/// The writer indexes a batch's text once, before it commits; a pattern updated in the batch
/// that stored it, a bad write undone alone, an import and a prune all leave the text index
/// whole (FTS5's own integrity check) and every stored symptom searchable.
#[tokio::test]
async fn the_text_index_follows_every_kind_of_write_in_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    let k = open(
        &dir,
        KnowledgeSettings {
            max_per_component: 30,
            ..KnowledgeSettings::default()
        },
    );
    // Queued without waiting, so that they share the writer's batches.
    let mut waiting = Vec::new();
    for n in 0..40 {
        k.record(record("db", "crash", "restart", n % 2 == 0, ago(100 - n)));
        k.pattern(&issue("db", "crash").with("exit", n));
        waiting.push(
            k.contribute(
                KnowledgeItem::new()
                    .component("db")
                    .content(format!("note {n} zebra")),
            ),
        );
        waiting.push(k.contribute(KnowledgeItem::new().component("db").content("")));
    }
    let results = futures::future::join_all(waiting).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 40);
    k.import(
        vec![r#"{"component":"api","tags":["runbook"],"content":"giraffe steps"}"#.into()],
        1,
    )
    .await
    .unwrap();
    k.index_text().await.unwrap();
    let check = |conn: &rusqlite::Connection| {
        conn.execute_batch("INSERT INTO items_fts (items_fts, rank) VALUES ('integrity-check', 1)")
    };
    // The check is written as an insert: it needs a writable connection (it changes nothing).
    let conn = rusqlite::Connection::open(dir.path().join(FILE_NAME)).unwrap();
    check(&conn).expect("the text index matches the items");
    let found = |text: &'static str| {
        let k = k.clone();
        async move {
            k.query(KnowledgeQuery::new().contains(text))
                .await
                .unwrap()
                .len()
        }
    };
    assert_eq!(found("zebra").await, 40);
    assert_eq!(found("giraffe").await, 1);
    assert_eq!(found("exit 39").await, 1, "the pattern's newest symptom");
    assert!(k.prune().await.unwrap() > 0);
    check(&conn).expect("the text index matches the items after a prune");
    let notes_left: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM items WHERE content LIKE '%zebra%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let notes_left = notes_left as usize;
    assert!(notes_left < 40);
    assert_eq!(found("zebra").await, notes_left);
}

/// A `contains` first walks the other conditions' rows (at most `query::WALK`) and falls back
/// to the text index when that finds too few: both ways give the same answer, common symptom
/// or rare, with a component or without, newest first or oldest.
#[tokio::test]
async fn the_bounded_walk_and_the_text_index_agree() {
    let dir = tempfile::tempdir().unwrap();
    let k = open(&dir, KnowledgeSettings::default());
    let mut lines = Vec::new();
    for n in 0..(query::WALK + 500) {
        let symptom = if n % 997 == 0 {
            "Disk Quota exceeded"
        } else if n % 3 == 0 {
            "connection refused"
        } else {
            "slow query"
        };
        let item = KnowledgeItem::new()
            .component(if n % 2 == 0 { "api" } else { "db" })
            .content(format!("ERROR {symptom} #{n}"))
            .at(ago(100_000 - n as u64));
        lines.push(serde_json::to_string(&item).unwrap());
    }
    k.import(lines, 1).await.unwrap();
    let conn = store::open_read_only(&dir.path().join(FILE_NAME)).unwrap();
    for (component, text, order, limit) in [
        (None, "connection refused", "desc", 20),
        (Some("api"), "CONNECTION refused", "desc", 20),
        (Some("db"), "disk quota", "desc", 20),
        (None, "disk quota", "asc", 2),
        (None, "slow query", "asc", 5),
        (Some("api"), "nothing like it", "desc", 5),
    ] {
        let mut q = KnowledgeQuery::new()
            .contains(text)
            .sort("timestamp", order)
            .limit(limit);
        if let Some(c) = component {
            q = q.component(c);
        }
        let compiled = query::compile(&q).unwrap();
        assert!(compiled.walk.is_some(), "{text}");
        let both = store::run_query(&conn, &compiled).unwrap();
        let index_only = store::run_query(
            &conn,
            &query::Compiled {
                walk: None,
                ..compiled.clone()
            },
        )
        .unwrap();
        let ids = |r: &[KnowledgeResult]| r.iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(ids(&both), ids(&index_only), "{component:?} {text} {order}");
    }
}

/// The text index trails the newest items (`store::TEXT_TAIL`): `contains` finds an item the
/// index does not hold yet, and deleting or updating such an item, or deleting the newest items
/// so that their rowids are given again, leaves the index whole once the trail is indexed.
#[test]
fn contains_finds_items_the_text_index_has_not_reached_yet() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let note = |n: usize, text: &str| {
        store::derive(
            &KnowledgeItem::new()
                .component("db")
                .content(format!("{text} #{n}"))
                .at(ago(1000 - n as u64)),
            SystemTime::now(),
        )
        .unwrap()
    };
    // Five items in the text index.
    let indexed: Vec<store::Row> = (0..5).map(|n| note(n, "slow query")).collect();
    store::bulk_insert(&path, &indexed).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let upto = |conn: &rusqlite::Connection| -> i64 {
        conn.query_row("SELECT upto FROM items_fts_upto", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(upto(&conn), 5);
    // Stored as the writer stores a contribution, and not indexed yet.
    for n in 5..9 {
        store::insert(&conn, &note(n, "Disk Quota exceeded")).unwrap();
    }
    assert_eq!(upto(&conn), 5, "the trail is not indexed by an insert");
    let found = |conn: &rusqlite::Connection, text: &str| -> Vec<i64> {
        let q = query::compile(&KnowledgeQuery::new().contains(text)).unwrap();
        let index_only = query::Compiled { walk: None, ..q };
        store::run_query(conn, &index_only)
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect()
    };
    assert_eq!(found(&conn, "disk QUOTA"), vec![9, 8, 7, 6]);
    assert_eq!(found(&conn, "slow query").len(), 5);
    // A trail item updated and one deleted: the index is not asked to forget what it never had.
    conn.execute(
        "UPDATE items SET symptom = 'giraffe', timestamp = timestamp + 1 WHERE id = 8",
        [],
    )
    .unwrap();
    conn.execute("DELETE FROM items WHERE id = 7", []).unwrap();
    // The newest items deleted, so that the next insert is given id 4 again: it must count as
    // not indexed.
    conn.execute("DELETE FROM items WHERE id >= 4", []).unwrap();
    assert_eq!(upto(&conn), 3, "upto follows the newest item down");
    store::insert(&conn, &note(9, "Disk Quota exceeded")).unwrap();
    assert_eq!(found(&conn, "disk quota"), vec![4]);
    // The writer's indexing (an empty bulk insert indexes the trail), then FTS5's own check.
    drop(conn);
    store::bulk_insert(&path, &[]).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    assert_eq!(upto(&conn), 4);
    conn.execute_batch("INSERT INTO items_fts (items_fts, rank) VALUES ('integrity-check', 1)")
        .expect("the text index matches the items");
    assert_eq!(found(&conn, "disk quota"), vec![4]);
    assert!(found(&conn, "giraffe").is_empty());
    assert_eq!(found(&conn, "slow query").len(), 3);
}

#[tokio::test]
async fn a_version_2_file_migrates_with_its_text_index_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    {
        // A file as version 2 wrote it: the writer indexed each transaction's items.
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        schema::migrate_to(&mut conn, 2).unwrap();
        for n in 0..3 {
            let row = store::derive(
                &KnowledgeItem::new()
                    .component("db")
                    .content(format!("ERROR pool exhausted #{n}")),
                SystemTime::now(),
            )
            .unwrap();
            store::insert(&conn, &row).unwrap();
        }
        conn.execute_batch("INSERT INTO items_fts (rowid, symptom) SELECT id, symptom FROM items")
            .unwrap();
    }
    let k = KnowledgeHandle::open(dir.path(), KnowledgeSettings::default(), None).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    assert_eq!(schema::version(&conn).unwrap(), schema::VERSION);
    let upto: i64 = conn
        .query_row("SELECT upto FROM items_fts_upto", [], |r| r.get(0))
        .unwrap();
    assert_eq!(upto, 3, "everything version 2 stored was indexed");
    // A pattern update and a prune go through the new triggers.
    k.contribute(
        KnowledgeItem::new()
            .component("db")
            .content("pool exhausted again"),
    )
    .await
    .unwrap();
    k.index_text().await.unwrap();
    conn.execute_batch("INSERT INTO items_fts (items_fts, rank) VALUES ('integrity-check', 1)")
        .expect("the text index matches the items");
    let found = k
        .query(KnowledgeQuery::new().contains("pool exhausted"))
        .await
        .unwrap();
    assert_eq!(found.len(), 4);
}

#[tokio::test]
async fn the_cores_registry_is_opened_at_first_use_and_what_was_queued_is_written_first_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let config = KnowledgeConfig::default();
    let k = KnowledgeHandle::open_configured(dir.path(), &config, None).expect("checked");
    let file = dir.path().join(FILE_NAME);
    assert!(!file.exists(), "no file before first use");
    assert!(!k.is_open());
    assert_eq!(k.path(), Some(file.clone()));
    // Nothing queued: flushing does not open it either.
    k.flush().await.unwrap();
    assert!(!file.exists());
    // The hooks return at once and queue; the first opens the file in the background.
    for (n, strategy) in ["restart", "clear_cache", "rollback"]
        .into_iter()
        .enumerate()
    {
        k.record(record("db", "crash", strategy, n == 1, ago(30 - n as u64)));
    }
    k.pattern(&issue("db", "crash"));
    k.flush().await.unwrap();
    assert!(k.is_open() && file.exists());
    let stored = k
        .query(KnowledgeQuery::new().component("db").tag("recovery"))
        .await
        .unwrap();
    let mut by_id: Vec<(i64, String)> = stored
        .iter()
        .map(|r| (r.id, r.recovery_record().unwrap().strategy))
        .collect();
    by_id.sort();
    let order: Vec<&str> = by_id.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(order, ["restart", "clear_cache", "rollback"], "in order");
    let patterns = k
        .query(KnowledgeQuery::new().tag("issue").tag("pattern"))
        .await
        .unwrap();
    assert_eq!(patterns.len(), 1);
}

#[tokio::test]
async fn a_query_opens_the_cores_registry_and_stats_name_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let k = KnowledgeHandle::open_configured(dir.path(), &KnowledgeConfig::default(), None)
        .expect("checked");
    let stats = k.stats().await.unwrap();
    assert_eq!(stats.items, 0);
    assert_eq!(stats.path, dir.path().join(FILE_NAME).display().to_string());
    assert!(k.is_open());
}

#[tokio::test]
async fn a_file_the_core_cannot_use_is_refused_at_start_without_opening_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    // Written by a newer hms-console. Made here on one connection, not by a registry: a
    // registry's writer thread closes its connection (and checkpoints) after its handle is
    // dropped, and until it has, the header may not hold the version yet.
    let mut conn = rusqlite::Connection::open(&path).unwrap();
    schema::migrate(&mut conn).unwrap();
    conn.execute_batch("PRAGMA user_version = 99").unwrap();
    // The last connection to close leaves everything in the file itself.
    drop(conn);
    let e = KnowledgeHandle::open_configured(dir.path(), &KnowledgeConfig::default(), None)
        .err()
        .expect("refused at start");
    assert!(e.to_string().contains("schema version 99"), "{e}");
    // Not SQLite at all.
    std::fs::write(&path, "name,value\nalpha,1\n").unwrap();
    let e = KnowledgeHandle::open_configured(dir.path(), &KnowledgeConfig::default(), None)
        .err()
        .expect("refused at start");
    assert!(
        e.to_string().contains("is not a SQLite database")
            && e.to_string().contains(&path.display().to_string()),
        "{e}"
    );
    // Untouched by the check.
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "name,value\nalpha,1\n"
    );
    // A directory where there is no file and none can be made.
    let config = KnowledgeConfig {
        path: Some(path.join("under-a-file.db")),
        ..KnowledgeConfig::default()
    };
    assert!(KnowledgeHandle::open_configured(dir.path(), &config, None).is_err());
}

#[tokio::test]
async fn a_registry_whose_open_fails_at_first_use_answers_why_and_the_hooks_stay_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let k = KnowledgeHandle::open_configured(dir.path(), &KnowledgeConfig::default(), None)
        .expect("checked");
    // After the check, before first use, the file becomes one no version can read.
    let path = dir.path().join(FILE_NAME);
    let mut head = vec![0u8; 4096];
    head[..16].copy_from_slice(schema::SQLITE_MAGIC);
    std::fs::write(&path, &head).unwrap();
    k.record(record("db", "crash", "restart", true, ago(1)));
    let e = k.query(KnowledgeQuery::new()).await.unwrap_err();
    assert!(
        e.to_string()
            .starts_with("the knowledge registry is unavailable"),
        "{e}"
    );
    let e = k
        .contribute(KnowledgeItem::new().component("a").content("x"))
        .await
        .unwrap_err();
    assert!(matches!(e, KnowledgeError::Unavailable(_)), "{e}");
    k.record(record("db", "crash", "restart", true, ago(1)));
    k.pattern(&issue("db", "crash"));
    assert!(!k.is_open());
}

#[test]
fn the_header_check_agrees_with_sqlite_on_real_files() {
    let dir = tempfile::tempdir().unwrap();
    for version in [0, 1, schema::VERSION, schema::VERSION + 1, 99] {
        let path = dir.path().join(format!("v{version}.db"));
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(&format!(
            "CREATE TABLE t (x); PRAGMA user_version = {version}"
        ))
        .unwrap();
        drop(conn);
        let head = std::fs::read(&path).unwrap();
        let refused = schema::check_header(&head[..100]).is_err();
        assert_eq!(refused, version > schema::VERSION, "version {version}");
    }
}

proptest::proptest! {
    /// Any bytes: never a panic; refused unless empty or SQLite's header, and a header is
    /// refused exactly when its `user_version` is above ours.
    #[test]
    fn the_header_check_reads_any_bytes(
        head in proptest::collection::vec(proptest::num::u8::ANY, 0..120),
        magic in proptest::bool::ANY,
        version in 0u32..200,
    ) {
        let mut head = head;
        if magic && head.len() >= 100 {
            head[..16].copy_from_slice(schema::SQLITE_MAGIC);
            head[60..64].copy_from_slice(&version.to_be_bytes());
        }
        let result = schema::check_header(&head);
        let is_sqlite = head.len() >= 100 && head.starts_with(schema::SQLITE_MAGIC);
        if head.is_empty() {
            proptest::prop_assert!(result.is_ok());
        } else if !is_sqlite {
            proptest::prop_assert!(matches!(result, Err(schema::HeaderError::NotSqlite)));
        } else {
            let found = u32::from_be_bytes([head[60], head[61], head[62], head[63]]);
            proptest::prop_assert_eq!(result.is_err(), found > schema::VERSION);
        }
    }
}
