//! The analysis agent of the integration guide's §6.1: it processes `data-analysis` tasks by
//! asking the database agent (examples/database_agent.rs) to `execute-query`, exactly as step 4
//! writes `request_database_query`, and answers with a small summary of the rows as JSON.
//!
//! It `requires` `database-access`: started before the database agent, it is registered but
//! shown as `waiting for: database-access`, and takes tasks once the database agent is there.
//!
//! ```sh
//! cargo run -- up --detach
//! cargo run --example database_agent &
//! cargo run --example analysis_agent &
//! cargo run -- mac request analysis-agent data-analysis '{"table":"orders"}'
//! ```
//!
//! The core is found at `HMS_SOCKET` (else the default socket). It runs until killed or Ctrl-C.
//! The handler uses the component (the guide's `self`), so the component lives behind an `Arc`
//! and the closure moves a clone in.

use hms::prelude::*;
use serde::{Deserialize, Serialize};

const NAME: &str = "analysis-agent";

type Result<T, E = Box<dyn std::error::Error + Send + Sync>> = std::result::Result<T, E>;

/// What the database agent answers to `execute-query`.
#[derive(Debug, Deserialize)]
struct QueryResult {
    rows: Vec<(String, u64)>,
}

/// What this agent answers to `data-analysis`.
#[derive(Debug, Serialize)]
struct Analysis {
    table: String,
    rows: usize,
    total: u64,
    largest: Option<String>,
}

#[derive(Debug, Deserialize)]
struct AnalysisRequest {
    table: String,
}

struct AnalysisComponent {
    mac: MacClient,
}

impl AnalysisComponent {
    /// §6.1 step 4, as the guide writes it.
    async fn request_database_query(&self, query: &str) -> Result<QueryResult> {
        let task = MacTask {
            task_type: "execute-query".to_string(),
            payload: serde_json::to_string(&query)?,
            priority: TaskPriority::Normal,
            timeout: Duration::from_secs(30),
        };

        let result = self.mac.request_task("database-agent", task).await?;

        // Parse result
        let query_result: QueryResult = serde_json::from_str(&result)?;
        Ok(query_result)
    }

    async fn analyze_data(&self, payload: &str) -> Result<String> {
        let request: AnalysisRequest = serde_json::from_str(payload)?;
        let result = self
            .request_database_query(&format!("SELECT item, amount FROM {}", request.table))
            .await?;
        let analysis = Analysis {
            table: request.table,
            rows: result.rows.len(),
            total: result.rows.iter().map(|(_, n)| n).sum(),
            largest: result
                .rows
                .iter()
                .max_by_key(|(_, n)| *n)
                .map(|(item, _)| item.clone()),
        };
        Ok(serde_json::to_string(&analysis)?)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    // §6.1 step 1.
    let component = Arc::new(AnalysisComponent {
        mac: MacClient::new(NAME),
    });
    component.mac.connect().await?;

    // Step 2.
    let agent_capabilities = AgentCapabilities {
        can_process: AgentCapabilities::names(["data-analysis"]),
        requires: AgentCapabilities::names(["database-access"]),
        provides: AgentCapabilities::names(["analysis-results"]),
        healing_level: HealingLevel::Advanced,
    };
    component
        .mac
        .register_agent(NAME, agent_capabilities)
        .await?;

    // Step 3.
    let this = component.clone();
    component.mac.set_async_task_handler(move |task: MacTask| {
        let this = this.clone();
        async move {
            match task.task_type.as_str() {
                "data-analysis" => this
                    .analyze_data(&task.payload)
                    .await
                    .map_err(|e| TaskError::Failed(e.to_string())),
                _ => Err(TaskError::UnsupportedTask(task.task_type)),
            }
        }
    });
    component.mac.start_task_handling().await?;
    println!("{NAME} ready");

    let _ = tokio::signal::ctrl_c().await;
    component.mac.disconnect().await;
    Ok(())
}
