//! Knowledge registry benchmarks (issue 9). Run: `cargo bench --bench knowledge` (or
//! scripts/bench/knowledge.sh). Each figure is printed beside its goal, at 10k, 100k and 1M
//! items so that growth shows. `HMS_BENCH_KNOWLEDGE_MAX=100000` stops earlier;
//! `HMS_BENCH_KNOWLEDGE_KEEP=1` leaves the file behind for a look with the `sqlite3` shell;
//! `HMS_BENCH_KNOWLEDGE_BATCH=N` applies at most N writes in one transaction (the core's
//! default otherwise), to compare batch sizes.
//!
//! The file is filled with batched inserts in one transaction per 50k rows (recovery records
//! 80%, issue patterns and notes 20%, 50 components, 30 issue types, four strategies, symptom
//! lines drawn from twenty messages with numbers in them). Queries go through the registry's
//! handle as the core runs them (a reader connection on a blocking thread).
//!
//! Contributions are timestamped as they arrive (now), as the core learns; the fill's 30 days of
//! history are written in time order before them. The same contributions timestamped at random
//! over the 30 days are printed apart, labelled as not real use. Last, the core's crash →
//! restart latency (the probe child of a crash-looping component killed 40 times, timed from
//! just before the kill to the new child's `main`, as in benches/core.rs) is timed on the filled file with the registry idle, then while eight clients
//! contribute one at a time as fast as they are acknowledged.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use hms::core::knowledge::{KnowledgeHandle, KnowledgeSettings, Synchronous, store};
use hms::model::{HealingAction, Issue, IssuePattern, RecoveryRecord, Severity};
use hms::protocol::{KnowledgeItem, KnowledgeQuery};

const MESSAGES: [&str; 20] = [
    "connection refused",
    "connection reset by peer",
    "read timeout",
    "write timeout",
    "pool exhausted",
    "too many open files",
    "out of memory",
    "certificate expired",
    "dns lookup failed",
    "broken pipe",
    "deadlock detected",
    "slow query",
    "queue full",
    "upstream unavailable",
    "rate limited",
    "lock wait timeout",
    "replica lag high",
    "cache miss storm",
    "health check failed",
    "disk quota exceeded",
];
const STRATEGIES: [&str; 4] = ["restart", "clear_cache", "reconnect", "failover"];
/// The fill's history: 30 days, ending an hour before the run.
const HISTORY_MS: u64 = 30 * 24 * 3600 * 1000;

/// A small deterministic generator (xorshift), so every run fills the same file.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// When a generated item happened.
#[derive(Clone, Copy)]
enum When {
    /// This instant: learned items arrive in time order (timestamp = now), as in real use.
    At(SystemTime),
    /// Anywhere in the 30 days before this instant: the time-ordered indexes are written at
    /// random places (not how the core learns; kept for comparison).
    Random(SystemTime),
}

fn item(rng: &mut Rng, when: When) -> KnowledgeItem {
    let component = format!("svc-{}", rng.below(50));
    let issue_type = format!("issue-{}", rng.below(30));
    // "disk quota exceeded" is rare (about 0.1% of items): the symptom a `contains` looks for.
    let message = if rng.below(1000) == 0 {
        MESSAGES[19]
    } else {
        MESSAGES[rng.below(19) as usize]
    };
    let line = format!(
        "ERROR {message} at 10.0.{}.{}:{} after {}ms",
        rng.below(256),
        rng.below(256),
        1024 + rng.below(60000),
        rng.below(5000)
    );
    let at = match when {
        When::At(t) => t,
        When::Random(now) => now - Duration::from_millis(rng.below(HISTORY_MS)),
    };
    let issue = Issue {
        id: format!("{:x}", rng.next()),
        component: component.clone(),
        issue_type: issue_type.clone(),
        severity: Severity::Error,
        detected_at: at,
        context: BTreeMap::from([("line".to_string(), line.clone())]),
    };
    if rng.below(10) < 8 {
        let strategy = STRATEGIES[rng.below(4) as usize];
        let record = RecoveryRecord {
            issue,
            strategy: strategy.into(),
            successful: rng.below(10) < 7,
            action: HealingAction::Recover {
                name: strategy.into(),
            },
            timestamp: at,
            duration: Duration::from_millis(rng.below(30_000)),
        };
        KnowledgeItem::new()
            .component(component)
            .tags(["recovery", "healing"])
            .content(serde_json::to_string(&record).unwrap())
            .source("bench")
    } else {
        let pattern = IssuePattern {
            issue_type,
            symptoms: vec![line],
            severity: Severity::Warning,
        };
        KnowledgeItem::new()
            .component(component)
            .tags(["issue", "pattern"])
            .content(serde_json::to_string(&pattern).unwrap())
            .at(at)
            .source("bench")
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "MISSED" }
}

/// Fills `path` up to `target` items; returns items per second. The history is written in
/// time order: item `n` of `max` is at `start + n * 30 days / max` (`start` 30 days and an hour
/// before the run), so every fill is older than what is contributed during the run.
fn fill(
    path: &Path,
    rng: &mut Rng,
    start: SystemTime,
    max: usize,
    from: usize,
    target: usize,
) -> f64 {
    let now = SystemTime::now();
    let t0 = Instant::now();
    let mut n = from;
    while n < target {
        let chunk = (target - n).min(50_000);
        let rows: Vec<store::Row> = (n..n + chunk)
            .map(|i| {
                let at = start + Duration::from_millis(HISTORY_MS * i as u64 / max as u64);
                store::derive(&item(rng, When::At(at)), now).unwrap()
            })
            .collect();
        store::bulk_insert(path, &rows).unwrap();
        n += chunk;
    }
    store::analyze(path).unwrap();
    (target - from) as f64 / t0.elapsed().as_secs_f64()
}

async fn time_queries(
    k: &KnowledgeHandle,
    runs: usize,
    make: impl Fn(usize) -> KnowledgeQuery,
) -> (f64, usize) {
    let mut samples = Vec::new();
    let mut found = 0;
    for i in 0..runs {
        let q = make(i);
        let t0 = Instant::now();
        let r = k.query(q).await.unwrap();
        samples.push(t0.elapsed().as_secs_f64() * 1000.0);
        found = found.max(r.len());
    }
    (median(samples), found)
}

fn like_scan_ms(path: &Path, text: &str) -> f64 {
    let conn = store::open_read_only(path).unwrap();
    let mut samples = Vec::new();
    for _ in 0..3 {
        let t0 = Instant::now();
        let n: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM (SELECT id FROM items WHERE symptom LIKE ? ORDER BY timestamp DESC LIMIT 20)",
                [format!("%{text}%")],
                |r| r.get(0),
            )
            .unwrap();
        assert!(n > 0);
        samples.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    median(samples)
}

/// CPU time so far, in ns: of this process's threads whose name starts with `prefix`
/// (their `schedstat`), or of the whole process with `None` (`stat`'s utime + stime, which
/// keeps the time of threads that ended; clock ticks, 10 ms).
fn cpu_ns(prefix: Option<&str>) -> u64 {
    if let Some(prefix) = prefix {
        return schedstat_ns(prefix, 0);
    }
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, a)| a).unwrap_or("");
    let ticks: u64 = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    ticks * 10_000_000
}

/// The time so far, in ns, that the threads whose name starts with `prefix` were ready to run
/// and waited for a CPU.
fn queued_ns(prefix: &str) -> u64 {
    schedstat_ns(prefix, 1)
}

/// The sum of one field of `schedstat` (0: ns on a CPU, 1: ns waiting for one) over this
/// process's threads whose name starts with `prefix`.
fn schedstat_ns(prefix: &str, field: usize) -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.starts_with(prefix) {
            total += std::fs::read_to_string(task.path().join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().nth(field)?.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    total
}

/// CPU µs a contribution: the writer thread, the checkpointer thread, the whole process; and
/// how long the writer waited for a CPU while it was ready to run.
/// On this shared 2-core machine the rates move with the other work on it (the writer thread
/// runs at a lowered priority); CPU time per contribution moves much less, so it is what an
/// A/B of the store compares.
#[derive(Clone, Copy)]
struct CpuPer {
    writer: f64,
    checkpointer: f64,
    process: f64,
    writer_queued: f64,
}

impl CpuPer {
    fn start() -> [u64; 4] {
        [
            cpu_ns(Some("knowledge-write")),
            cpu_ns(Some("knowledge-check")),
            cpu_ns(None),
            queued_ns("knowledge-write"),
        ]
    }

    fn since(start: [u64; 4], n: usize) -> CpuPer {
        let now = CpuPer::start();
        let per = |i: usize| now[i].saturating_sub(start[i]) as f64 / 1000.0 / n as f64;
        CpuPer {
            writer: per(0),
            checkpointer: per(1),
            process: per(2),
            writer_queued: per(3),
        }
    }
}

impl std::fmt::Display for CpuPer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CPU a contribution: writer {:.1} µs, checkpointer {:.1} µs, whole process {:.0} µs; the writer waited {:.1} µs for a CPU",
            self.writer, self.checkpointer, self.process, self.writer_queued
        )
    }
}

/// Contribution rates (batched, one at a time), each item timestamped now (`random` false) or
/// at a random time in the last 30 days, with the CPU each took.
async fn contribute_rates(
    k: &KnowledgeHandle,
    rng: &mut Rng,
    random: bool,
) -> ((f64, CpuPer), (f64, CpuPer)) {
    let when = || {
        if random {
            When::Random(SystemTime::now())
        } else {
            When::At(SystemTime::now())
        }
    };
    // Batched: 10,000 contributions in flight at once share the writer's commits.
    let items: Vec<KnowledgeItem> = (0..10_000).map(|_| item(rng, when())).collect();
    let (t0, cpu) = (Instant::now(), CpuPer::start());
    let all = futures::future::join_all(items.into_iter().map(|i| k.contribute(i))).await;
    let batched = all.len() as f64 / t0.elapsed().as_secs_f64();
    let batched_cpu = CpuPer::since(cpu, all.len());
    assert!(all.iter().all(|r| r.is_ok()));
    // One at a time: each waits for its own commit.
    let items: Vec<KnowledgeItem> = (0..2_000).map(|_| item(rng, when())).collect();
    let (t0, cpu) = (Instant::now(), CpuPer::start());
    for i in items {
        k.contribute(i).await.unwrap();
    }
    let single = 2_000.0 / t0.elapsed().as_secs_f64();
    ((batched, batched_cpu), (single, CpuPer::since(cpu, 2_000)))
}

fn settings(synchronous: Synchronous) -> KnowledgeSettings {
    let core = KnowledgeSettings::default();
    KnowledgeSettings {
        batch: std::env::var("HMS_BENCH_KNOWLEDGE_BATCH")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(core.batch),
        max_per_component: 10_000_000,
        prune_every: Duration::from_secs(3600),
        synchronous,
        ..core
    }
}

/// Crash → restart latency of a core on `path` (the filled file), idle and then while eight
/// clients contribute as fast as they are acknowledged; prints both.
async fn restart_latency(path: &Path, rng: &mut Rng) {
    let probe = Arc::new(common::Probe::new());
    let core = common::Core::start(&format!(
        "[knowledge]\npath = \"{}\"\nmax_items_per_component = 10000000\n{}",
        path.display(),
        probe.victim()
    ));
    let socket = std::path::PathBuf::from(common::sock(core.dir.path()));
    let p = probe.clone();
    let idle = tokio::task::spawn_blocking(move || restart_figures(&p))
        .await
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for w in 0..8 {
        let items: Vec<KnowledgeItem> = (0..50_000)
            .map(|_| item(rng, When::At(SystemTime::now())))
            .collect();
        let (socket, stop, acked) = (socket.clone(), stop.clone(), acked.clone());
        writers.push(tokio::spawn(async move {
            let mut client = hms::client::Client::connect(&socket, &format!("bench-writer-{w}"))
                .await
                .unwrap();
            for i in items {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                client.knowledge_contribute(i).await.unwrap();
                acked.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    while acked.load(Ordering::Relaxed) < 500 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (from, t0) = (acked.load(Ordering::Relaxed), Instant::now());
    let p = probe.clone();
    let busy = tokio::task::spawn_blocking(move || restart_figures(&p))
        .await
        .unwrap();
    let rate = (acked.load(Ordering::Relaxed) - from) as f64 / t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    println!("\n== the core's crash -> restart latency (n=40 each), on this file, in the same run");
    println!(
        "  registry idle: median {:.2} ms, p95 {:.2} ms   goal <= 2 ms median, <= 5 ms p95 (issue 2)   {}",
        idle.0,
        idle.1,
        verdict(idle.0 <= 2.0 && idle.1 <= 5.0)
    );
    println!(
        "  registry busy (8 clients contributing one at a time, {rate:.0}/s acknowledged meanwhile): median {:.2} ms, p95 {:.2} ms   goal unchanged from idle   {}",
        busy.0,
        busy.1,
        verdict(busy.0 <= 2.0 && busy.1 <= 5.0)
    );
}

fn main() {
    // First: as the restart probe, this executable starts no runtime.
    common::probe_main();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(bench_main());
}

async fn bench_main() {
    let max: usize = std::env::var("HMS_BENCH_KNOWLEDGE_MAX")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("knowledge.db");
    if std::env::var_os("HMS_BENCH_KNOWLEDGE_KEEP").is_some() {
        // For a look with the `sqlite3` shell afterwards (EXPLAIN QUERY PLAN and the like).
        let kept = dir.keep();
        println!(
            "(HMS_BENCH_KNOWLEDGE_KEEP: the file stays in {})",
            kept.display()
        );
        return run(&kept.join("knowledge.db"), max).await;
    }
    run(&path, max).await;
}

async fn run(path: &Path, max: usize) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut have = 0;
    let sizes: Vec<usize> = [10_000, 100_000, 1_000_000]
        .into_iter()
        .filter(|t| *t <= max)
        .collect();
    let last = sizes.last().copied().unwrap_or(1);
    let start = SystemTime::now() - Duration::from_millis(HISTORY_MS + 3_600_000);
    println!(
        "knowledge registry benchmark (goals from issue 9), file in {}",
        path.display()
    );
    for target in sizes {
        let rate = fill(path, &mut rng, start, last, have, target);
        have = target;
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        println!(
            "\n== {target} items ({:.0} MB): filled at {rate:.0} items/s (batched inserts, one transaction per 50k, 30 days of history in time order)",
            size as f64 / 1e6
        );
        let k = KnowledgeHandle::open_file(path, settings(Synchronous::Normal), None).unwrap();
        let (guide, found) = time_queries(&k, 300, |i| {
            KnowledgeQuery::new()
                .tag("recovery")
                .related_to(format!("issue-{}", i % 30))
                .filter("successful = true")
                .sort("timestamp", "desc")
                .limit(5)
        })
        .await;
        println!(
            "  §5.2 query (tag + related_to + successful + newest first + limit 5): median {guide:.3} ms ({found} results)   goal <= 2 ms   {}",
            verdict(guide <= 2.0)
        );
        let (advice, _) = {
            let mut samples = Vec::new();
            let actions: Vec<String> = STRATEGIES.iter().map(|s| s.to_string()).collect();
            for i in 0..100 {
                let t0 = Instant::now();
                let _ = k
                    .advice(
                        &format!("svc-{}", i % 50),
                        &format!("issue-{}", i % 30),
                        &actions,
                    )
                    .await;
                samples.push(t0.elapsed().as_secs_f64() * 1000.0);
            }
            (median(samples), 0)
        };
        println!(
            "  advice (the §5.2 query per component + each candidate's last 8 attempts): median {advice:.3} ms   goal <= 2 ms (the §5.2 query's)   {}",
            verdict(advice <= 2.0)
        );
        let (rare, found) = time_queries(&k, 100, |_| {
            KnowledgeQuery::new()
                .contains("disk quota exceeded")
                .limit(20)
        })
        .await;
        println!(
            "  contains a rare symptom (~0.1% of items, FTS5 trigram): median {rare:.3} ms ({found} results)   goal <= 20 ms   {}",
            verdict(rare <= 20.0)
        );
        let (common, found) = time_queries(&k, 30, |_| {
            KnowledgeQuery::new()
                .component("svc-7")
                .contains("connection refused")
                .limit(20)
        })
        .await;
        println!(
            "  contains a common symptom (~5% of items) for one component: median {common:.3} ms ({found} results)   goal <= 20 ms   {}",
            verdict(common <= 20.0)
        );
        println!(
            "  for comparison, LIKE '%…%' scan for the rare symptom: median {:.1} ms",
            like_scan_ms(path, "disk quota exceeded")
        );
        let ((batched, batched_cpu), (single, single_cpu)) =
            contribute_rates(&k, &mut rng, false).await;
        have += 12_000;
        println!(
            "  contribute, 10,000 in flight (group commit), timestamped now, synchronous=NORMAL: {batched:.0}/s   goal >= 20,000/s   {}",
            verdict(batched >= 20_000.0)
        );
        println!("    ({batched_cpu})");
        println!(
            "  contribute, one at a time (each waits for its commit), timestamped now, synchronous=NORMAL: {single:.0}/s   goal >= 2,000/s   {}",
            verdict(single >= 2_000.0)
        );
        println!("    ({single_cpu})");
        let ((batched, _), (single, _)) = contribute_rates(&k, &mut rng, true).await;
        have += 12_000;
        println!(
            "  (not real use: timestamps at random over the last 30 days, so the time-ordered indexes are written at random places: {batched:.0}/s in flight, {single:.0}/s one at a time)"
        );
        drop(k);
        if target == 10_000 {
            // Let the writer thread close the file before another opens it.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let full = KnowledgeHandle::open_file(path, settings(Synchronous::Full), None).unwrap();
            let ((batched, _), (single, _)) = contribute_rates(&full, &mut rng, false).await;
            have += 12_000;
            println!(
                "  (for comparison, synchronous=FULL, an fsync per commit: {batched:.0}/s batched, {single:.0}/s one at a time)"
            );
            drop(full);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    restart_latency(path, &mut rng).await;
}

/// 40 crashes of the probe child, 60 ms apart: (median, p95, min) in ms.
fn restart_figures(probe: &common::Probe) -> (f64, f64, f64) {
    let samples = probe.time_restarts(40, std::time::Duration::from_millis(60));
    (
        common::percentile(&samples, 0.5),
        common::percentile(&samples, 0.95),
        samples[0],
    )
}
