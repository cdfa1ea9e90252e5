//! `hms-console mac …`: the MAC task bus (guide §6) from the shell: its agents, a task asked by
//! hand, and the recent tasks with their outcomes. Arguments are checked here (a priority name, a
//! timeout such as `30s`); a task that ends without a result is an error whose message is the
//! bus's typed reason (`no such agent 'x' — known: …`), so the command exits 1.

use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::{Result, bail};
use clap::Subcommand;

use crate::client::Client;
use crate::model::{AgentStatus, MacTask, TaskOutcome, TaskPriority, TaskRecord};

pub const AFTER_HELP: &str = "\
Examples:
  hms-console mac agents                       every agent: state, queue, in flight, done, failed, latency
  hms-console mac agents --json                the same, for scripts
  hms-console mac request database-agent execute-query '\"SELECT 1\"'
  hms-console mac request supervisor-agent coordinate-healing \"$(cat coordination.json)\" --priority high --timeout 2m
  hms-console mac tasks -n 50                  the last 50 tasks and how each ended

A task that ends without a result exits 1 and says why: no such agent, the agent cannot process
the task type, its queue is full, timed out, the agent disconnected, or its handler's error.";

#[derive(Debug, Subcommand)]
pub enum MacCommand {
    /// List the agents: capabilities, state (ready, waiting for …), queue depth, tasks in
    /// flight, done, failed, mean latency.
    #[command(
        after_help = "Examples:\n  hms-console mac agents\n  hms-console mac agents --json | jq '.[] | select(.state.state != \"ready\")'"
    )]
    Agents {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Ask an agent for a task and print its result.
    #[command(
        after_help = "Examples:\n  hms-console mac request database-agent execute-query '\"SELECT * FROM orders\"'\n  hms-console mac request analysis-agent data-analysis '{\"table\":\"orders\"}' --priority high --timeout 5s\n\nExits 1 with the reason when the task ends without a result, e.g.\n  no such agent 'x' — known: database-agent, supervisor-agent\n  agent 'database-agent' cannot process 'make-coffee' (it processes: execute-query)"
    )]
    Request {
        /// The agent's name.
        agent: String,
        /// The task type, one of the agent's `can_process`.
        task_type: String,
        /// The task's payload (the agent's own format, often JSON).
        #[arg(default_value = "")]
        payload: String,
        /// low, normal, high or critical.
        #[arg(long, default_value = "normal", value_parser = parse_priority)]
        priority: TaskPriority,
        /// The longest to wait for the result, queueing included (e.g. 500ms, 30s, 2m).
        #[arg(long, default_value = "30s", value_parser = parse_timeout)]
        timeout: Duration,
        /// Print the whole outcome as JSON (and still exit 1 when it failed).
        #[arg(long)]
        json: bool,
    },
    /// List the most recent tasks and how each ended, oldest first.
    #[command(
        after_help = "Examples:\n  hms-console mac tasks\n  hms-console mac tasks -n 200 --json"
    )]
    Tasks {
        /// How many.
        #[arg(short = 'n', long, default_value_t = 20)]
        limit: usize,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

fn parse_priority(text: &str) -> Result<TaskPriority, String> {
    TaskPriority::parse(text).ok_or_else(|| {
        format!("unknown priority '{text}'; priorities: low, normal, high, critical")
    })
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("the timeout must be longer than zero".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(format!(
            "'{text}' is not a duration ({e}); e.g. 500ms, 30s, 2m"
        )),
    }
}

pub async fn run(socket: &Path, command: MacCommand) -> Result<()> {
    let mut client = Client::connect(socket, "cli").await?;
    match command {
        MacCommand::Agents { json } => {
            let agents = client.agents().await?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&agents)?)?;
            } else {
                out!("{}", agents_table(&agents))?;
            }
        }
        MacCommand::Request {
            agent,
            task_type,
            payload,
            priority,
            timeout,
            json,
        } => {
            let task = MacTask {
                task_type,
                payload,
                priority,
                timeout,
            };
            let done = client.request_task(Some(&agent), task, Some("cli")).await?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&done.outcome)?)?;
            }
            match done.outcome {
                TaskOutcome::Completed { result } => {
                    if !json {
                        outln!("{result}")?;
                    }
                }
                TaskOutcome::Failed { failure } => bail!("{failure}"),
            }
        }
        MacCommand::Tasks { limit, json } => {
            let tasks = client.tasks(limit).await?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&tasks)?)?;
            } else if tasks.is_empty() {
                outln!("no tasks yet")?;
            } else {
                out!("{}", tasks_table(&tasks, SystemTime::now()))?;
            }
        }
    }
    Ok(())
}

/// A latency short enough for a column: `240µs`, `12.5ms`, `3.2s`.
fn latency(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{}µs", d.as_micros())
    } else if d < Duration::from_secs(1) {
        format!("{:.1}ms", d.as_secs_f64() * 1000.0)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

fn agents_table(agents: &[AgentStatus]) -> String {
    let mut rows = vec![
        [
            "NAME",
            "STATE",
            "QUEUE",
            "IN FLIGHT",
            "DONE",
            "FAILED",
            "MEAN LATENCY",
            "PROCESSES",
            "REQUIRES",
            "PROVIDES",
        ]
        .map(String::from)
        .to_vec(),
    ];
    let list = |names: &[String]| {
        if names.is_empty() {
            "-".to_string()
        } else {
            names.join(",")
        }
    };
    for a in agents {
        rows.push(vec![
            a.name.clone(),
            a.state.to_string(),
            format!("{}/{}", a.queued, a.queue_capacity),
            format!("{}/{}", a.in_flight, a.concurrency),
            a.done.to_string(),
            a.failed.to_string(),
            a.mean_latency.map_or("-".into(), latency),
            list(&a.capabilities.can_process),
            list(&a.capabilities.requires),
            list(&a.capabilities.provides),
        ]);
    }
    table(&rows)
}

fn tasks_table(tasks: &[TaskRecord], now: SystemTime) -> String {
    let mut rows = vec![
        [
            "ID",
            "AGO",
            "REQUESTER",
            "AGENT",
            "TYPE",
            "PRIORITY",
            "TOOK",
            "OUTCOME",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for t in tasks {
        let ago = now.duration_since(t.requested_at).unwrap_or_default();
        rows.push(vec![
            t.id.to_string(),
            crate::text::duration(ago),
            t.requester.clone(),
            if t.agent.is_empty() {
                "-".into()
            } else {
                t.agent.clone()
            },
            t.task_type.clone(),
            t.priority.to_string(),
            latency(t.took),
            match &t.outcome {
                TaskOutcome::Completed { result } => {
                    format!("done: {}", crate::text::truncate(result, 60))
                }
                TaskOutcome::Failed { failure } => {
                    format!(
                        "failed: {}",
                        crate::text::truncate(&failure.to_string(), 160)
                    )
                }
            },
        ]);
    }
    table(&rows)
}

/// Columns padded to their widest cell, two spaces apart; the last one is not padded.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(widths[c] - cell.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AgentCapabilities, AgentState, TaskFailure};

    #[test]
    fn arguments_are_checked_with_the_fix_in_the_message() {
        assert_eq!(parse_priority("High"), Ok(TaskPriority::High));
        assert!(
            parse_priority("urgent")
                .unwrap_err()
                .contains("low, normal, high, critical")
        );
        assert_eq!(parse_timeout("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_timeout("0s").is_err());
        assert!(parse_timeout("soon").unwrap_err().contains("e.g. 500ms"));
    }

    #[test]
    fn the_agents_table_shows_state_load_counters_and_latency() {
        let agents = vec![AgentStatus {
            name: "analysis-agent".into(),
            capabilities: AgentCapabilities {
                can_process: vec!["data-analysis".into()],
                requires: vec!["storage".into()],
                provides: vec![],
                healing_level: Default::default(),
            },
            state: AgentState::WaitingFor {
                missing: vec!["storage".into()],
            },
            queued: 2,
            in_flight: 0,
            concurrency: 4,
            queue_capacity: 1024,
            done: 7,
            failed: 1,
            mean_latency: Some(Duration::from_micros(240)),
            builtin: false,
        }];
        let text = agents_table(&agents);
        let row = text.lines().nth(1).expect("a row");
        for part in [
            "analysis-agent",
            "waiting for: storage",
            "2/1024",
            "0/4",
            "240µs",
            "data-analysis",
        ] {
            assert!(row.contains(part), "{part} missing from {row}");
        }
    }

    #[test]
    fn a_failed_task_shows_its_reason() {
        let tasks = vec![TaskRecord {
            id: 3,
            agent: "database-agent".into(),
            task_type: "make-coffee".into(),
            priority: TaskPriority::Normal,
            requester: "cli".into(),
            requested_at: SystemTime::UNIX_EPOCH,
            took: Duration::from_micros(80),
            outcome: TaskOutcome::Failed {
                failure: TaskFailure::UnsupportedTask {
                    agent: "database-agent".into(),
                    task_type: "make-coffee".into(),
                    processes: vec!["execute-query".into()],
                },
            },
        }];
        let text = tasks_table(&tasks, SystemTime::UNIX_EPOCH + Duration::from_secs(5));
        assert!(
            text.contains(
                "failed: agent 'database-agent' cannot process 'make-coffee' (it processes: execute-query)"
            ),
            "{text}"
        );
    }
}
