//! Healing that learns which recovery works (issue 9), end to end: a real core, a real process, the
//! real SQLite registry in the core's data directory. The component's failure (it spins on a CPU
//! while a `corrupt` marker exists) is cured only by its `clear_cache` action (which removes the
//! marker): a restart alone does not help. The first episode tries the default order (restart,
//! then clear_cache) and the registry records both attempts; the next failure of that type is
//! healed with clear_cache first.

mod common;

use std::time::Duration;

use common::*;
use hms::model::{HealthStatus, RunState};

const WAIT: Duration = Duration::from_secs(40);

/// The strategies tried by the episodes of `component`, in order, from its log.
fn tried(core: &Core, component: &str) -> Vec<String> {
    core.log_texts(component, 500)
        .iter()
        .filter_map(|l| {
            l.split_once(" * healing: trying ")
                .map(|(_, action)| action.trim().to_string())
        })
        .collect()
}

/// Waits until `app` is healthy and its marker gone; on a timeout, says what the log says.
fn healthy_again(core: &Core, marker: &std::path::Path) -> hms::model::ComponentStatus {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let c = core.component("app");
        if c.health == HealthStatus::Healthy && !marker.exists() {
            return c;
        }
        if std::time::Instant::now() > deadline {
            panic!(
                "app is not healthy again: {:?}\n{}",
                c.health,
                core.log_texts("app", 200).join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn after_learning_that_clear_cache_cures_it_the_next_failure_is_healed_with_clear_cache_first() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("corrupt");
    let core = Core::start(&format!(
        r#"
[[component]]
name = "app"
cwd = "{dir}"
command = "while :; do if [ -e corrupt ]; then :; else sleep 1; fi; done"
healing_level = "advanced"
recovery_actions = ["restart", "clear_cache"]
healing_timeout = "6s"
[component.thresholds]
cpu_percent = {{ critical = 10.0 }}
[component.actions.clear_cache]
command = "rm -f corrupt"
"#,
        dir = dir.path().display()
    ));
    core.wait_component("app", "running", WAIT, |c| c.state == RunState::Running);

    // First failure: nothing learned yet, so the default order — a restart that does not help,
    // then clear_cache, which does.
    std::fs::write(&marker, "").unwrap();
    wait_for("the first episode to try clear_cache", WAIT, || {
        (tried(&core, "app").len() >= 2).then_some(())
    });
    assert_eq!(
        tried(&core, "app")[..2],
        ["restart", "clear_cache"],
        "{}",
        core.log_texts("app", 200).join("\n")
    );
    healthy_again(&core, &marker);
    // The registry holds both attempts, the successful one newest.
    let records = wait_for("two recovery records", WAIT, || {
        let json = core.cli_ok(&[
            "knowledge",
            "query",
            "--component",
            "app",
            "--tag",
            "recovery",
            "--sort",
            "timestamp:asc",
            "--json",
        ]);
        let records: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
        (records.len() >= 2).then_some(records)
    });
    let strategies: Vec<String> = records
        .iter()
        .map(|r| r.to_string())
        .filter_map(|text| {
            ["restart", "clear_cache"]
                .into_iter()
                .find(|s| text.contains(&format!("\\\"strategy\\\":\\\"{s}\\\"")))
                .map(str::to_string)
        })
        .collect();
    assert_eq!(strategies, ["restart", "clear_cache"], "{records:?}");

    // The next failure of that type: clear_cache first, and healthy without a restart.
    let pid = core.component("app").pid;
    std::fs::write(&marker, "").unwrap();
    wait_for("the second episode", WAIT, || {
        (tried(&core, "app").len() >= 3).then_some(())
    });
    assert_eq!(
        tried(&core, "app")[2],
        "clear_cache",
        "{}",
        core.log_texts("app", 200).join("\n")
    );
    let healed = healthy_again(&core, &marker);
    assert_eq!(healed.pid, pid, "cured without a restart");
    let strategy = healed.healing.strategy.unwrap_or_default();
    assert!(
        strategy.starts_with("knowledge: clear_cache cured"),
        "status says why: {strategy}"
    );
    assert_eq!(tried(&core, "app").len(), 3, "{:?}", tried(&core, "app"));
}
