//! The database agent of the integration guide's §6.1: an agent that `provides`
//! `database-access` and processes `execute-query` tasks, whose payload is the query as a JSON
//! string (`serde_json::to_string(&query)`, as step 4 writes it) and whose result is a
//! `QueryResult` as JSON. Its "database" is a small table in memory.
//!
//! It also processes `slow-query` (the payload is how many milliseconds to take), so a test can
//! catch it in the middle of a task.
//!
//! ```sh
//! cargo run -- up --detach
//! cargo run --example database_agent &
//! cargo run -- mac request database-agent execute-query '"SELECT * FROM orders"'
//! ```
//!
//! The core is found at `HMS_SOCKET` (else the default socket). It runs until killed or Ctrl-C.

use hms::prelude::*;
use serde::{Deserialize, Serialize};

const NAME: &str = "database-agent";

/// What an `execute-query` task answers.
#[derive(Debug, Serialize, Deserialize)]
struct QueryResult {
    query: String,
    columns: Vec<String>,
    rows: Vec<(String, u64)>,
}

fn execute_query(payload: &str) -> Result<String, TaskError> {
    let query: String = serde_json::from_str(payload)
        .map_err(|e| TaskError::Failed(format!("the payload is not a JSON string: {e}")))?;
    let table = query
        .split_whitespace()
        .skip_while(|w| !w.eq_ignore_ascii_case("from"))
        .nth(1)
        .unwrap_or_default()
        .trim_end_matches(';')
        .to_string();
    let rows = match table.as_str() {
        "orders" => vec![
            ("apples".to_string(), 120),
            ("pears".to_string(), 80),
            ("plums".to_string(), 45),
        ],
        "" => return Err(TaskError::Failed(format!("no table in query {query:?}"))),
        other => return Err(TaskError::Failed(format!("no such table: {other}"))),
    };
    let result = QueryResult {
        query,
        columns: vec!["item".into(), "amount".into()],
        rows,
    };
    serde_json::to_string(&result).map_err(|e| TaskError::Failed(e.to_string()))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), MacError> {
    // §6.1 step 1: create the MAC client and connect.
    let mac = MacClient::new(NAME);
    mac.connect().await?;

    // Step 2: register the agent's capabilities.
    let agent_capabilities = AgentCapabilities {
        can_process: AgentCapabilities::names(["execute-query", "slow-query"]),
        requires: Vec::new(),
        provides: AgentCapabilities::names(["database-access"]),
        healing_level: HealingLevel::Advanced,
    };
    mac.register_agent(NAME, agent_capabilities).await?;

    // Step 3: handle MAC tasks (async, because a slow query waits).
    mac.set_async_task_handler(|task: MacTask| async move {
        match task.task_type.as_str() {
            "execute-query" => execute_query(&task.payload),
            "slow-query" => {
                let ms: u64 = task.payload.trim().parse().unwrap_or(60_000);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(format!("slept {ms} ms"))
            }
            _ => Err(TaskError::UnsupportedTask(task.task_type)),
        }
    });
    mac.start_task_handling().await?;
    println!("{NAME} ready");

    let _ = tokio::signal::ctrl_c().await;
    mac.disconnect().await;
    Ok(())
}
