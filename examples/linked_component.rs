//! A small linked component on [`SupervisorClient`] (guide §4.1), used by `tests/plans.rs` and
//! the plans benchmark: it registers at Full level with a config schema and its own thresholds,
//! answers the supervisor's commands, reports health and metrics, and outlives a core restart
//! by reconnecting.
//!
//! ```sh
//! HMS_SOCKET=/path/to/core.sock cargo run --example linked_component -- my-service
//! ```
//!
//! Commands: `ClearCache` clears its (pretend) cache; `UpdateConfig` takes `log_level` (one of
//! error, warn, info, debug; the core refuses any other key before sending it) and refuses a bad
//! value; `Restart` and `Action("reconnect")` succeed; `Shutdown` makes it exit 0; anything else
//! is `UnsupportedCommand`. Each handled command is printed on stdout.
//!
//! Environment: `HMS_SOCKET` (the core), `LINKED_REPORT_MS` (how often it reports health and
//! metrics, default 1000), `LINKED_METRICS_MS` (the metrics batching interval, default 1000).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hms::prelude::*;

/// What the component's handlers change.
struct State {
    log_level: String,
    cache_clears: u32,
}

fn env_ms(key: &str, default: u64) -> Duration {
    Duration::from_millis(
        std::env::var(key)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

fn handle(state: &Mutex<State>, command: SupervisorCommand) -> Result<(), CommandError> {
    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
    match command {
        SupervisorCommand::ClearCache => {
            state.cache_clears += 1;
            println!("cache cleared ({} times)", state.cache_clears);
            Ok(())
        }
        SupervisorCommand::UpdateConfig(config) => {
            let level = config.get("log_level").ok_or("only log_level can be set")?;
            if !["error", "warn", "info", "debug"].contains(&level.as_str()) {
                return Err(format!(
                    "log_level must be one of error, warn, info, debug, not '{level}'"
                )
                .into());
            }
            state.log_level = level.clone();
            println!("log_level = {level}");
            Ok(())
        }
        SupervisorCommand::Restart => {
            println!("restarted");
            Ok(())
        }
        SupervisorCommand::Action(name) if name == "reconnect" => {
            println!("reconnected");
            Ok(())
        }
        SupervisorCommand::Shutdown => {
            println!("shutting down");
            Ok(())
        }
        other => Err(CommandError::UnsupportedCommand(other)),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "linked".to_string());
    let report = env_ms("LINKED_REPORT_MS", 1000);
    let supervisor = SupervisorClient::new(&name)
        .with_heartbeat(report.max(Duration::from_millis(100)))
        .with_metrics_interval(env_ms("LINKED_METRICS_MS", 1000))
        .with_config_schema(["log_level"])
        .with_thresholds(hms::model::ReportThresholds {
            error_rate: Some(hms::model::ReportLimit {
                degraded: Some(2.0),
                critical: Some(10.0),
            }),
            response_time_ms: None,
        });
    // The core may still be starting: try for a few seconds.
    let mut tries = 0;
    while let Err(e) = supervisor.connect().await {
        tries += 1;
        if tries > 100 {
            return Err(e.into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let capabilities = ComponentCapabilities {
        can_restart: true,
        can_scale: false,
        can_failover: false,
        supported_recovery_actions: ComponentCapabilities::actions(["clear_cache", "reconnect"]),
        healing_level: HealingLevel::Full,
    };
    supervisor.register_component(&name, capabilities).await?;

    let state = Arc::new(Mutex::new(State {
        log_level: "info".into(),
        cache_clears: 0,
    }));
    let (shutdown_tx, mut shutdown) = tokio::sync::mpsc::unbounded_channel();
    let handler_state = state.clone();
    supervisor.set_command_handler(move |command| {
        let stop = command == SupervisorCommand::Shutdown;
        let outcome = handle(&handler_state, command);
        if stop {
            let _ = shutdown_tx.send(());
        }
        outcome
    });
    supervisor.start_command_handling().await?;
    supervisor.report_health(HealthStatus::Healthy).await?;
    println!("registered as {name}");

    let mut tick = tokio::time::interval(report);
    loop {
        tokio::select! {
            _ = shutdown.recv() => break,
            _ = tick.tick() => {
                // Reports while the core is away are kept and sent once it is back.
                let _ = supervisor.report_health(HealthStatus::Healthy).await;
                let metrics = HealthMetrics {
                    timestamp: SystemTime::now(),
                    throughput: 10.0,
                    ..HealthMetrics::default()
                };
                let _ = supervisor.report_metrics(metrics).await;
            }
        }
    }
    // Let the Shutdown's answer reach the core before the connection closes.
    tokio::time::sleep(Duration::from_millis(50)).await;
    supervisor.disconnect().await;
    Ok(())
}
