//! The knowledge registry end to end: a real core on a private socket and data directory, the
//! real CLI, the library's `KnowledgeClient`, and the SQLite file read back after a `kill -9`.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Core, wait_for};
use hms::{KnowledgeClient, KnowledgeItem, KnowledgeQuery, KnowledgeResult};

const FLEET: &str = r#"
[[component]]
name = "sleeper"
command = ["sleep", "1000"]
"#;

const SECS10: Duration = Duration::from_secs(10);

#[test]
fn the_cli_queries_as_json_and_explains_a_bad_filter() {
    let core = Core::start(FLEET);
    let out = core.cli_ok(&[
        "knowledge",
        "add",
        "--component",
        "api",
        "--tag",
        "runbook",
        "--related-to",
        "oom",
        "raise the heap to 2G",
    ]);
    assert!(out.starts_with("stored as item "), "{out}");
    core.cli_ok(&[
        "knowledge",
        "add",
        "-c",
        "db",
        "-t",
        "note",
        "vacuum weekly",
    ]);
    let json = core.cli_ok(&[
        "knowledge",
        "query",
        "--tag",
        "runbook",
        "--related-to",
        "oom",
        "--contains",
        "HEAP",
        "--json",
    ]);
    let results: Vec<KnowledgeResult> = serde_json::from_str(&json).expect("a JSON array");
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].component, "api");
    assert_eq!(results[0].content, "raise the heap to 2G");
    assert_eq!(results[0].source, "cli");
    let all: Vec<KnowledgeResult> = serde_json::from_str(&core.cli_ok(&[
        "knowledge",
        "query",
        "--sort",
        "component:asc",
        "--json",
    ]))
    .unwrap();
    assert_eq!(
        all.iter().map(|r| r.component.as_str()).collect::<Vec<_>>(),
        vec!["api", "db"]
    );
    let table = core.cli_ok(&["knowledge", "query", "-c", "db"]);
    assert!(table.contains("vacuum weekly"), "{table}");

    let bad = core.cli(&[
        "knowledge",
        "query",
        "--filter",
        "successful = true and colour = red",
    ]);
    assert_eq!(bad.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("filter error at column 23"), "{stderr}");
    assert!(stderr.contains("fields: successful, severity"), "{stderr}");
}

#[test]
fn an_import_with_a_bad_line_imports_nothing_and_names_the_line() {
    let core = Core::start(FLEET);
    let file = core.dir.path().join("runbook.jsonl");
    std::fs::write(
        &file,
        concat!(
            "# a runbook\n",
            r#"{"component":"api","tags":["runbook"],"content":"restart it"}"#,
            "\n",
            r#"{"component":"api","tags":["runbook"],"content":""}"#,
            "\n",
        ),
    )
    .unwrap();
    let out = core.cli(&["knowledge", "import", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 3: an item needs content; nothing was imported"),
        "{stderr}"
    );
    let stats: hms::protocol::KnowledgeStats =
        serde_json::from_str(&core.cli_ok(&["knowledge", "stats", "--json"])).unwrap();
    assert_eq!(stats.items, 0);

    // The starter set for the demo fleet is valid, and round-trips through export.
    let starter = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/knowledge/demo.jsonl");
    let out = core.cli_ok(&["knowledge", "import", starter]);
    assert!(out.starts_with("imported 10 items"), "{out}");
    let exported = core.cli_ok(&["knowledge", "export", "--jsonl"]);
    assert_eq!(exported.lines().count(), 10);
    let copy = core.dir.path().join("copy.jsonl");
    std::fs::write(&copy, &exported).unwrap();
    core.cli_ok(&["knowledge", "import", copy.to_str().unwrap()]);
    let array: Vec<KnowledgeResult> =
        serde_json::from_str(&core.cli_ok(&["knowledge", "export"])).unwrap();
    assert_eq!(array.len(), 20);
    let strategies = core.cli_ok(&[
        "knowledge",
        "query",
        "--tag",
        "recovery-strategy",
        "--related-to",
        "slow",
        "--json",
    ]);
    assert!(strategies.contains("clear_cache"), "{strategies}");
}

#[tokio::test]
async fn the_guides_knowledge_client_contributes_and_queries() {
    let core = Core::start(FLEET);
    let knowledge = KnowledgeClient::with_socket("my-component", core.socket.clone());
    knowledge.connect().await.expect("connect");
    for (strategy, cured) in [("restart", false), ("clear_cache", true)] {
        let issue = hms::Issue::new("my-component", "db-connection-lost", hms::Severity::Error)
            .with("line", "ECONNREFUSED 127.0.0.1:5432");
        let record = hms::RecoveryRecord {
            issue,
            strategy: strategy.into(),
            successful: cured,
            action: hms::HealingAction::Recover {
                name: strategy.into(),
            },
            timestamp: std::time::SystemTime::now(),
            duration: Duration::from_secs(1),
        };
        knowledge
            .contribute(
                KnowledgeItem::new()
                    .tags(vec!["recovery", "healing"])
                    .content(serde_json::to_string(&record).unwrap()),
            )
            .await
            .expect("contribute");
    }
    let results = knowledge
        .query(
            KnowledgeQuery::new()
                .tag("recovery")
                .related_to("db-connection-lost")
                .filter("successful = true")
                .sort("timestamp", "desc")
                .limit(5),
        )
        .await
        .expect("query");
    assert_eq!(results.len(), 1);
    let record: hms::RecoveryRecord = serde_json::from_str(&results[0].content).unwrap();
    assert_eq!(record.strategy, "clear_cache");
    assert_eq!(results[0].component, "my-component", "the client's own id");
    let known = knowledge
        .query(
            KnowledgeQuery::new()
                .component("my-component")
                .contains("econnrefused"),
        )
        .await
        .unwrap();
    assert_eq!(known.len(), 2);
    let refused = knowledge
        .query(KnowledgeQuery::new().sort("colour", "desc"))
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("cannot sort by 'colour'"),
        "{refused}"
    );
}

/// `[knowledge]` in hms.toml: the file where `path` says (relative to the config, its
/// directory made) and the retention the core reports.
#[test]
fn the_registry_uses_the_file_and_retention_the_config_names() {
    let core = Core::start(&format!(
        "[knowledge]\npath = \"learned/team.db\"\nmax_items_per_component = 500\nmax_age = \"7days\"\n{FLEET}"
    ));
    let stats: hms::protocol::KnowledgeStats = wait_for("the registry", SECS10, || {
        let out = core.cli(&["knowledge", "stats", "--json"]);
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).unwrap())
    });
    let expected = core.config.parent().unwrap().join("learned/team.db");
    assert_eq!(stats.path, expected.display().to_string());
    assert!(expected.exists());
    assert!(!core.data.join("knowledge.db").exists());
    assert_eq!(stats.max_per_component, 500);
    assert_eq!(stats.max_age_days, 7);
}

/// Acknowledged contributions survive a SIGKILL of the core taken while four clients write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9_under_concurrent_writers() {
    let mut core = Core::start(FLEET);
    let acked = Arc::new(Mutex::new(Vec::<i64>::new()));
    let mut writers = Vec::new();
    for w in 0..4 {
        let socket = core.socket.clone();
        let acked = acked.clone();
        writers.push(tokio::spawn(async move {
            let Ok(mut client) = hms::client::Client::connect(&socket, "writer").await else {
                return;
            };
            for n in 0.. {
                let item = KnowledgeItem::new()
                    .component(format!("w{w}"))
                    .tags(["load"])
                    .content(format!("write {n} of writer {w}"));
                match client.knowledge_contribute(item).await {
                    Ok(id) => acked.lock().unwrap().push(id),
                    Err(_) => return,
                }
            }
        }));
    }
    let deadline = Instant::now() + SECS10;
    while acked.lock().unwrap().len() < 400 {
        assert!(Instant::now() < deadline, "400 writes acknowledged in time");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let pid = core.pid();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    core.wait_exit(SECS10);
    for w in writers {
        w.await.unwrap();
    }
    let acked: HashSet<i64> = acked.lock().unwrap().iter().copied().collect();
    let db = rusqlite::Connection::open(core.data.join("knowledge.db")).unwrap();
    let mut stmt = db.prepare("SELECT id FROM items").unwrap();
    let stored: HashSet<i64> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let lost: Vec<&i64> = acked.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged writes lost: {lost:?}",
        lost.len()
    );
    assert!(stored.len() >= acked.len());
    eprintln!(
        "acknowledged {}, stored {} (committed but not yet acknowledged when killed: {})",
        acked.len(),
        stored.len(),
        stored.len() - acked.len()
    );

    // A new core on the same data directory reads them back.
    core.spawn();
    let count = wait_for("the registry after restart", SECS10, || {
        let out = core.cli(&["knowledge", "stats", "--json"]);
        out.status.success().then(|| {
            serde_json::from_slice::<hms::protocol::KnowledgeStats>(&out.stdout)
                .unwrap()
                .items
        })
    });
    assert_eq!(count as usize, stored.len());
}

/// A reload applies `[knowledge]`'s retention to the running registry (a tighter limit prunes
/// in the background, at once), refuses an invalid table with its file, line and key while the
/// old retention stays in force, and keeps the registry's file when `path` changes, saying so.
#[test]
fn a_reload_applies_the_knowledge_retention_and_an_invalid_one_changes_nothing() {
    let config = |knowledge: &str| format!("[knowledge]\n{knowledge}\n{FLEET}");
    // --no-watch: the test reloads by hand, so the file watcher must not race it.
    let core = Core::start_with(
        &config("max_items_per_component = 50\nmax_age = \"1h\"\nprune_every = \"1s\""),
        &["--no-watch"],
    );
    let stats = || -> hms::protocol::KnowledgeStats {
        wait_for("the registry's stats", SECS10, || {
            let out = core.cli(&["knowledge", "stats", "--json"]);
            out.status
                .success()
                .then(|| serde_json::from_slice(&out.stdout).unwrap())
        })
    };
    let count = |component: &str| {
        stats()
            .components
            .iter()
            .find(|(c, _)| c == component)
            .map_or(0, |(_, n)| *n)
    };
    let file = core.dir.path().join("items.jsonl");
    let import = |component: &str, n: usize, timestamp: Option<std::time::SystemTime>| {
        let lines: Vec<String> = (0..n)
            .map(|i| {
                let mut item = KnowledgeItem::new()
                    .component(component)
                    .tags(vec!["note"])
                    .content(format!("note {i}"));
                item.timestamp = timestamp;
                serde_json::to_string(&item).unwrap()
            })
            .collect();
        std::fs::write(&file, lines.join("\n")).unwrap();
        core.cli_ok(&["knowledge", "import", file.to_str().unwrap()]);
    };
    // A whole round of pruning has started and ended since this call. Each marker is older than
    // max_age and is deleted by the age step of a round that started after the round that
    // deleted the one before had ended: the first one's round may have started before the call,
    // the second one's round after it, and the third one's round after that one ended.
    let whole_round = |marker: &str| {
        for round in 0..3 {
            let name = format!("{marker}-{round}");
            import(
                &name,
                1,
                Some(std::time::SystemTime::now() - Duration::from_secs(2 * 3600)),
            );
            wait_for(&format!("{name} pruned by age"), SECS10, || {
                (count(&name) == 0).then_some(())
            });
        }
    };
    let reload = |knowledge: &str| {
        std::fs::write(&core.config, config(knowledge)).unwrap();
        core.cli(&["reload"])
    };
    import("a", 20, None);
    assert_eq!(count("a"), 20);

    // Invalid: refused with the file, the line and the key; the old retention stays.
    let out = reload("max_items_per_component = 0\nmax_age = \"1h\"\nprune_every = \"1s\"");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("hms.toml:2"), "{err}");
    assert!(err.contains("max_items_per_component"), "{err}");
    assert!(err.contains("the running one stays"), "{err}");
    // A lower limit beside a bad duration: nothing of the table is taken.
    let out = reload("max_items_per_component = 3\nmax_age = \"soon\"\nprune_every = \"1s\"");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("hms.toml:3"), "{err}");
    assert!(err.contains("max_age"), "{err}");
    whole_round("marker");
    assert_eq!(count("a"), 20, "the refused limit of 3 was not applied");
    assert_eq!(stats().max_per_component, 50);

    // Valid and lower: taken at once, pruned without waiting out prune_every.
    let out = reload("max_items_per_component = 5\nmax_age = \"1h\"\nprune_every = \"1h\"");
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("knowledge retention: at most 5 items per component"),
        "{said}"
    );
    assert_eq!(stats().max_per_component, 5);
    wait_for("a pruned to the new limit", SECS10, || {
        (count("a") <= 5).then_some(())
    });
    assert_eq!(count("a"), 5, "the newest five stay");

    // Another file: the registry stays on its file; the answer and the core's log say so.
    let out = reload(
        "path = \"moved/k.db\"\nmax_items_per_component = 5\nmax_age = \"1h\"\nprune_every = \"1h\"",
    );
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("warning: [knowledge] path changed to"),
        "{said}"
    );
    assert!(said.contains("until the core is restarted"), "{said}");
    let kept = core.data.join("knowledge.db");
    assert_eq!(stats().path, kept.display().to_string());
    assert!(!core.config.parent().unwrap().join("moved/k.db").exists());
    assert_eq!(count("a"), 5, "the same file, still answering");
    wait_for("the warning in the core's log", SECS10, || {
        let log = core.log();
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("[knowledge] path changed to"))
            .then_some(())
    });
}

/// The names of a process's threads.
fn threads_of(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|tasks| {
            tasks
                .flatten()
                .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
                .map(|c| c.trim().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// A core that has learned nothing has not opened its registry (issue 12: SQLite's pages and
/// threads are most of an idle core's memory); the first use opens it.
#[test]
fn the_core_opens_its_registry_at_first_use() {
    let core = Core::start(FLEET);
    core.wait_component("sleeper", "running", SECS10, |c| c.pid.is_some());
    let file = core.data.join("knowledge.db");
    assert!(!file.exists(), "no file before first use");
    let threads = threads_of(core.pid());
    assert!(
        !threads.iter().any(|t| t.starts_with("knowledge")),
        "{threads:?}"
    );
    let stats = core.cli_ok(&["knowledge", "stats"]);
    assert!(stats.contains(&file.display().to_string()), "{stats}");
    assert!(file.exists());
    wait_for("the registry's writer", SECS10, || {
        threads_of(core.pid())
            .iter()
            .any(|t| t == "knowledge-write")
            .then_some(())
    });
}

/// A file from a newer hms-console is reported when the core starts, not at first use; the
/// core runs on without its registry and the file is left as it was.
#[test]
fn a_registry_file_from_a_newer_version_is_reported_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let file = data.join("knowledge.db");
    let conn = rusqlite::Connection::open(&file).unwrap();
    conn.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 999")
        .unwrap();
    drop(conn);
    let before = std::fs::read(&file).unwrap();
    let mut core = Core::start(FLEET);
    // The same data directory holds the newer file: restart the core on it.
    let out = core.cli(&["down"]);
    assert!(out.status.success(), "{out:?}");
    core.wait_exit(SECS10);
    std::fs::create_dir_all(&core.data).unwrap();
    std::fs::copy(&file, core.data.join("knowledge.db")).unwrap();
    core.spawn();
    let log = wait_for("the start-up report", SECS10, || {
        let log = core.log();
        log.contains("the knowledge registry is unavailable")
            .then_some(log)
    });
    assert!(log.contains("schema version 999"), "{log}");
    core.wait_component("sleeper", "running", SECS10, |c| c.pid.is_some());
    let out = core.cli(&["knowledge", "stats"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("schema version 999"),
        "{out:?}"
    );
    assert_eq!(
        std::fs::read(core.data.join("knowledge.db")).unwrap(),
        before
    );
}
