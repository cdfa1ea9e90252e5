//! Nothing a client does grows the core without bound: a client that pipelines requests and never
//! reads, subscribers that never read while a component floods its output, and the answers that
//! are larger than a request may be. Each against a real core over its real socket.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::*;
use hms::model::RunState;
use hms::protocol::PROTOCOL_VERSION;

const SECS10: Duration = Duration::from_secs(10);

/// The core's resident memory, from /proc.
fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    kb / 1024.0
}

/// A raw connection that said hello, or `None` when the core refused it.
fn try_greet(core: &Core) -> Option<UnixStream> {
    let mut s = UnixStream::connect(&core.socket).ok()?;
    s.set_read_timeout(Some(SECS10)).unwrap();
    writeln!(
        s,
        "{{\"type\":\"hello\",\"version\":{PROTOCOL_VERSION},\"client\":\"bounds\"}}"
    )
    .ok()?;
    let mut line = String::new();
    BufReader::new(s.try_clone().unwrap())
        .read_line(&mut line)
        .ok()?;
    line.contains("\"hello\"").then_some(s)
}

/// A raw connection that has said hello.
fn greeted(core: &Core) -> UnixStream {
    let mut s = UnixStream::connect(&core.socket).unwrap();
    s.set_read_timeout(Some(SECS10)).unwrap();
    writeln!(
        s,
        "{{\"type\":\"hello\",\"version\":{PROTOCOL_VERSION},\"client\":\"bounds\"}}"
    )
    .unwrap();
    let mut line = String::new();
    BufReader::new(s.try_clone().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("\"hello\""), "{line}");
    s
}

#[test]
fn a_client_that_pipelines_requests_without_reading_is_held_back_not_buffered() {
    let core = Core::start("[[component]]\nname = \"one\"\ncommand = [\"sleep\", \"1000\"]\n");
    core.wait_component("one", "running", SECS10, |c| c.state == RunState::Running);
    let before = rss_mb(core.pid());
    let mut greedy = greeted(&core);
    greedy.set_nonblocking(true).unwrap();
    // Write until the core stops reading (the socket's buffers fill), at most 200,000 requests.
    let request = b"{\"type\":\"request\",\"id\":1,\"request\":{\"op\":\"status\"}}\n";
    let mut sent = 0;
    let mut stalled = 0;
    while sent < 200_000 && stalled < 200 {
        match greedy.write(request) {
            Ok(n) if n == request.len() => {
                sent += 1;
                stalled = 0;
            }
            Ok(_) => break,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                stalled += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(
        sent < 200_000,
        "the core kept reading requests it could not answer ({sent} sent)"
    );
    // The core still answers everyone else, and holds only a bounded backlog.
    let status = core.cli_ok(&["status", "one"]);
    assert!(status.contains("running"), "{status}");
    let grown = rss_mb(core.pid()) - before;
    assert!(
        grown < 64.0,
        "the core grew by {grown:.1} MB for {sent} unread requests"
    );
    drop(greedy);
}

#[test]
fn subscribers_that_never_read_cost_a_bounded_amount_while_a_component_floods() {
    let core = flooding_core();
    let before = rss_mb(core.pid());
    let sleepers = subscribers_that_never_read(&core, 20);
    // Let the flood run well past what the bounds allow to queue: 20 × 4 MiB.
    wait_for(
        "the flood to pass 12 MB of output (one rotation)",
        SECS10 * 3,
        || {
            let log = std::fs::metadata(core.data.join("logs/flood.log"))
                .ok()?
                .len();
            let rotated =
                std::fs::metadata(core.data.join("logs/flood.log.1")).map_or(0, |m| m.len());
            (log + rotated > 12 * 1024 * 1024).then_some(())
        },
    );
    // They are sent the same lines, which are queued once for all of them: they cost about one
    // queue's worth (4 MiB; 13-16 MB of growth measured, 100 MB and more when each connection
    // queued a copy of its own).
    let grown = rss_mb(core.pid()) - before;
    assert!(
        grown < 40.0,
        "20 subscribers that never read cost the core {grown:.1} MB"
    );
    // The log on disk stays within its rotation: 10 MB × (3 backups + the live file).
    let on_disk: u64 = std::fs::read_dir(core.data.join("logs"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("flood.log"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(
        on_disk <= 4 * 10 * 1024 * 1024 + 64 * 1024,
        "{on_disk} bytes on disk"
    );
    drop(sleepers);
    core.cli_ok(&["stop", "flood"]);
}

#[test]
fn the_core_returns_memory_to_the_system_after_a_spike_of_subscribers_that_never_read() {
    let core = flooding_core();
    let before = rss_mb(core.pid());
    // The spike: subscribers that never read make the core queue events for each of them, up to
    // max_queued_bytes (4 MiB) apiece. Subscribers share the lines they are sent, so they come
    // one after another, each once the one before holds some 2 MB: each holds lines of its own.
    let mut sleepers = Vec::new();
    for _ in 0..20 {
        let was = rss_mb(core.pid());
        sleepers.extend(subscribers_that_never_read(&core, 1));
        wait_for("a subscriber's queue to fill", SECS10, || {
            (rss_mb(core.pid()) - was > 2.0).then_some(())
        });
    }
    let peak = wait_for("the core to grow by 40 MB", SECS10 * 3, || {
        let now = rss_mb(core.pid());
        (now - before > 40.0).then_some(now)
    });
    // They go, and so does the flood; the core keeps what it needs and gives back the rest.
    drop(sleepers);
    core.cli_ok(&["stop", "flood"]);
    let settled = before + (peak - before) / 4.0;
    wait_for(
        &format!(
            "the core's RSS to fall from {peak:.1} MB to {settled:.1} MB or less (it was {before:.1} MB before the spike)"
        ),
        SECS10 * 3,
        || (rss_mb(core.pid()) <= settled).then_some(()),
    );
}

#[test]
fn an_answer_larger_than_a_request_line_arrives_whole() {
    // 3,000 components' status is well over the 1 MiB a request may be.
    let mut config = String::from("[defaults]\nstop_grace = \"1s\"\n");
    for i in 0..3000 {
        config.push_str(&format!(
            "[[component]]\nname = \"component-with-a-long-name-{i:04}\"\ncommand = [\"sleep\", \"1000\"]\nrecovery_actions = [\"restart\"]\n"
        ));
    }
    let core = Core::start(&config);
    wait_for("3,000 components running", SECS10 * 6, || {
        let s = core.status();
        (s.iter().filter(|c| c.state == RunState::Running).count() == 3000).then_some(())
    });
    let json = core.cli_ok(&["status", "--json"]);
    assert!(json.len() > 1024 * 1024, "{} bytes", json.len());
    let parsed: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed.len(), 3000);
    core.cli_ok(&["down"]);
}

#[test]
fn a_connection_that_says_no_hello_is_closed_after_the_hello_timeout() {
    let core = Core::start(
        "[limits]\nhello_timeout = \"300ms\"\n[[component]]\nname = \"one\"\ncommand = [\"sleep\", \"1000\"]\n",
    );
    let silent = UnixStream::connect(&core.socket).unwrap();
    silent.set_read_timeout(Some(SECS10)).unwrap();
    let started = std::time::Instant::now();
    let mut reader = BufReader::new(silent);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.contains("hello_required"), "{line}");
    assert!(line.contains("no hello within 300ms"), "{line}");
    // Then the core hangs up.
    line.clear();
    assert_eq!(reader.read_line(&mut line).unwrap(), 0, "{line}");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "closed before its hello timeout"
    );
}

#[test]
fn connections_past_the_limit_are_told_and_closed_and_the_fleet_is_untouched() {
    let core = Core::start(
        "[limits]\nmax_connections = 3\n[[component]]\nname = \"one\"\ncommand = [\"sleep\", \"1000\"]\n",
    );
    let pid = core
        .wait_component("one", "running", SECS10, |c| c.state == RunState::Running)
        .pid;
    // The CLI's connections may still be closing: hold three once there is room for them.
    let mut held: Vec<UnixStream> = Vec::new();
    wait_for("three connections held", SECS10, || {
        if let Some(s) = try_greet(&core) {
            held.push(s);
        }
        (held.len() == 3).then_some(())
    });
    let extra = UnixStream::connect(&core.socket).unwrap();
    extra.set_read_timeout(Some(SECS10)).unwrap();
    let mut line = String::new();
    BufReader::new(extra).read_line(&mut line).unwrap();
    assert!(line.contains("too many connections"), "{line}");
    assert!(line.contains("the limit is 3"), "{line}");
    drop(held);
    // Room again once they close; the component never noticed.
    let status = wait_for("a connection to be accepted again", SECS10, || {
        let out = core.cli(&["status", "one", "--json"]);
        out.status.success().then_some(out)
    });
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(json[0]["pid"].as_u64().map(|p| p as u32), pid);
}

#[test]
fn a_log_rotates_at_its_configured_size_and_keeps_its_configured_backups() {
    let core = Core::start(
        "[[component]]\nname = \"chatty\"\ncommand = [\"sh\", \"-c\", \"exec yes 'a line of output that repeats'\"]\nlog_max_size = \"64KB\"\nlog_backups = 2\n",
    );
    let logs = core.data.join("logs");
    wait_for("two rotations", SECS10, || {
        std::fs::metadata(logs.join("chatty.log.2"))
            .ok()
            .map(|_| ())
    });
    core.cli_ok(&["stop", "chatty"]);
    // The output still in the pipe is written after the stop, maybe with one more rotation.
    let names = wait_for("the live file and two backups", SECS10, || {
        let mut names: Vec<String> = std::fs::read_dir(&logs)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("chatty.log"))
            .collect();
        names.sort();
        (names == ["chatty.log", "chatty.log.1", "chatty.log.2"]).then_some(names)
    });
    for name in &names {
        let size = std::fs::metadata(logs.join(name)).unwrap().len();
        assert!(size <= 64 * 1024 + 200, "{name}: {size} bytes");
    }
}

/// A core whose one component, `flood`, writes 16 KB lines as fast as it can; returned running.
fn flooding_core() -> Core {
    let core = Core::start(
        "[[component]]\nname = \"flood\"\ncommand = [\"sh\", \"-c\", \"exec yes \\\"$(head -c 16000 /dev/zero | tr '\\\\0' x)\\\"\"]\nlog_lines = 100\n",
    );
    core.wait_component("flood", "running", SECS10, |c| c.state == RunState::Running);
    core
}

/// `n` connections that subscribe to every component's logs and then never read.
fn subscribers_that_never_read(core: &Core, n: usize) -> Vec<UnixStream> {
    let subscribe = "{\"type\":\"request\",\"id\":1,\"request\":{\"op\":\"subscribe\",\"topics\":[\"logs\"]}}\n";
    (0..n)
        .map(|_| {
            let mut s = greeted(core);
            s.write_all(subscribe.as_bytes()).unwrap();
            s
        })
        .collect()
}
