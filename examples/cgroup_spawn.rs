//! What it costs to start a component inside its own cgroup (src/core/cgroup.rs): the median of
//! N spawn-and-reap round trips of `cat` (stdin closed at once) for a plain spawn, the chosen
//! race-free spawn (`ComponentCgroup::command`), and spawn-then-move (`add(pid)`, which leaves a
//! window). Run with `scripts/bench/cgroup.sh` (`HMS_BENCH_SPAWNS=300` by default).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hms::core::cgroup::Containment;

fn median_us(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1e6
}

/// Spawns, lets `after` act on the child, closes its stdin and reaps it; returns the time taken.
fn round_trip(mut cmd: Command, after: impl Fn(&Child)) -> Duration {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawning cat");
    after(&child);
    drop(child.stdin.take());
    let status = child.wait().expect("reaping cat");
    assert!(status.success(), "{status}");
    start.elapsed()
}

fn main() {
    let spawns: usize = std::env::var("HMS_BENCH_SPAWNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let containment = Containment::detect(&format!("bench-{}", std::process::id()));
    println!("containment: {}", containment.describe());
    match containment.enable_controllers() {
        Ok(enabled) => println!("controllers for components: {enabled:?}"),
        Err(e) => println!("controllers not enabled: {e}"),
    }
    let Ok(Some(cgroup)) = containment.create("bench") else {
        println!("no cgroup to spawn into; nothing to measure");
        return;
    };
    // Interleaved, so a busy neighbour on a shared machine slows every method alike.
    let methods: [&dyn Fn() -> Duration; 3] = [
        &|| round_trip(Command::new("cat"), |_| {}),
        &|| round_trip(cgroup.command(&["cat"]), |_| {}),
        &|| {
            round_trip(Command::new("cat"), |child| {
                cgroup.add(child.id()).expect("moving cat")
            })
        },
    ];
    let mut samples = vec![Vec::with_capacity(spawns); methods.len()];
    for round in 0..spawns + spawns / 10 {
        for (method, out) in methods.iter().zip(&mut samples) {
            let took = method();
            // The first tenth warms the caches and is not counted.
            if round >= spawns / 10 {
                out.push(took);
            }
        }
    }
    let [plain, chosen, moved] = [0, 1, 2].map(|i| median_us(std::mem::take(&mut samples[i])));
    println!("median of {spawns} spawn-and-reap round trips:");
    println!("  plain spawn                        {plain:>7.0} µs");
    println!(
        "  spawn into cgroup (sh joins, exec) {chosen:>7.0} µs  ({:+.0} µs, race-free, chosen)",
        chosen - plain
    );
    println!(
        "  spawn, then add(pid)               {moved:>7.0} µs  ({:+.0} µs, leaves a window)",
        moved - plain
    );
    if let Err(e) = containment.cleanup(Duration::from_secs(5)) {
        eprintln!("cleanup: {e}");
    }
}
