//! Which agent gets a task: by name (the guide's `request_task("database-agent", task)`) or by
//! capability (`request_task_any`), and which agents wait for what they require. Pure: it reads
//! a snapshot of the agents and returns a name or the reason there is none.
//!
//! Rules:
//! - by name: the agent must exist and list the task type in `can_process`; a waiting or
//!   not-running agent still takes it (into its queue), since the requester chose it;
//! - by capability: among the agents that process the type, ready ones first, then the least
//!   loaded (waiting plus in flight, per slot of concurrency), then by name, so the choice is
//!   stable;
//! - an agent's requirement is met when another registered agent provides it.

use std::collections::BTreeSet;

use crate::model::TaskFailure;

/// What routing needs to know of one agent.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub name: &'a str,
    pub can_process: &'a [String],
    /// Receives tasks now (requirements met, its component running).
    pub ready: bool,
    /// Tasks waiting and in flight.
    pub load: usize,
    pub concurrency: usize,
}

impl Candidate<'_> {
    fn processes(&self, task_type: &str) -> bool {
        self.can_process.iter().any(|t| t == task_type)
    }

    /// Load per slot, in millionths, so agents of different concurrency compare fairly.
    fn relative_load(&self) -> usize {
        self.load.saturating_mul(1_000_000) / self.concurrency.max(1)
    }
}

fn known<'a>(agents: impl IntoIterator<Item = &'a Candidate<'a>>) -> Vec<String> {
    let names: BTreeSet<&str> = agents.into_iter().map(|a| a.name).collect();
    names.into_iter().map(str::to_string).collect()
}

/// The agent called `agent`, if it processes `task_type`.
pub fn by_name<'a>(
    agents: &[Candidate<'a>],
    agent: &str,
    task_type: &str,
) -> Result<&'a str, TaskFailure> {
    let Some(found) = agents.iter().find(|a| a.name == agent) else {
        return Err(TaskFailure::NoSuchAgent {
            agent: agent.to_string(),
            known: known(agents),
        });
    };
    if !found.processes(task_type) {
        return Err(TaskFailure::UnsupportedTask {
            agent: agent.to_string(),
            task_type: task_type.to_string(),
            processes: found.can_process.to_vec(),
        });
    }
    Ok(found.name)
}

/// The best agent that processes `task_type`, other than `except`.
pub fn by_capability<'a>(
    agents: &[Candidate<'a>],
    task_type: &str,
    except: Option<&str>,
) -> Result<&'a str, TaskFailure> {
    agents
        .iter()
        .filter(|a| a.processes(task_type) && Some(a.name) != except)
        .min_by_key(|a| (!a.ready, a.relative_load(), a.name))
        .map(|a| a.name)
        .ok_or_else(|| TaskFailure::NoCapableAgent {
            task_type: task_type.to_string(),
            known: known(agents),
        })
}

/// What `requires` lacks: the requirements no agent but the requirer itself provides. `agents`
/// is every registered agent as (name, provides).
pub fn missing<'a>(
    name: &str,
    requires: &[String],
    agents: impl IntoIterator<Item = (&'a str, &'a [String])> + Clone,
) -> Vec<String> {
    requires
        .iter()
        .filter(|need| {
            !agents
                .clone()
                .into_iter()
                .any(|(other, provides)| other != name && provides.contains(need))
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn by_name_finds_the_agent_that_processes_the_type() {
        let db = names(&["execute-query"]);
        let agents = [Candidate {
            name: "database-agent",
            can_process: &db,
            ready: false,
            load: 9,
            concurrency: 1,
        }];
        assert_eq!(
            by_name(&agents, "database-agent", "execute-query"),
            Ok("database-agent"),
            "a busy, waiting agent still takes what is addressed to it"
        );
        assert_eq!(
            by_name(&agents, "x", "execute-query"),
            Err(TaskFailure::NoSuchAgent {
                agent: "x".into(),
                known: names(&["database-agent"]),
            })
        );
        assert_eq!(
            by_name(&agents, "database-agent", "make-coffee"),
            Err(TaskFailure::UnsupportedTask {
                agent: "database-agent".into(),
                task_type: "make-coffee".into(),
                processes: db.clone(),
            })
        );
    }

    #[test]
    fn by_capability_prefers_ready_then_least_loaded_per_slot() {
        let q = names(&["execute-query"]);
        let other = names(&["analyze-data"]);
        let agents = [
            Candidate {
                name: "a",
                can_process: &q,
                ready: true,
                load: 2,
                concurrency: 1,
            },
            Candidate {
                name: "b",
                can_process: &q,
                ready: true,
                load: 3,
                concurrency: 8,
            },
            Candidate {
                name: "c",
                can_process: &q,
                ready: false,
                load: 0,
                concurrency: 8,
            },
            Candidate {
                name: "d",
                can_process: &other,
                ready: true,
                load: 0,
                concurrency: 8,
            },
        ];
        assert_eq!(by_capability(&agents, "execute-query", None), Ok("b"));
        assert_eq!(by_capability(&agents, "execute-query", Some("b")), Ok("a"));
        assert_eq!(
            by_capability(&agents[2..3], "execute-query", None),
            Ok("c"),
            "a waiting agent is better than none"
        );
        assert_eq!(
            by_capability(&agents, "make-coffee", None),
            Err(TaskFailure::NoCapableAgent {
                task_type: "make-coffee".into(),
                known: names(&["a", "b", "c", "d"]),
            })
        );
    }

    #[test]
    fn equal_loads_choose_by_name() {
        let q = names(&["t"]);
        let agents = [
            Candidate {
                name: "zeta",
                can_process: &q,
                ready: true,
                load: 1,
                concurrency: 2,
            },
            Candidate {
                name: "alpha",
                can_process: &q,
                ready: true,
                load: 1,
                concurrency: 2,
            },
        ];
        assert_eq!(by_capability(&agents, "t", None), Ok("alpha"));
    }

    #[test]
    fn a_requirement_is_met_only_by_another_agents_provision() {
        let storage = names(&["storage"]);
        let db = names(&["database-access"]);
        let requires = names(&["database-access", "storage"]);
        let agents = [("analysis", &storage[..]), ("db", &db[..])];
        assert_eq!(
            missing("analysis", &requires, agents.iter().copied()),
            names(&["storage"]),
            "its own provision does not count"
        );
        let agents = [("db", &db[..]), ("store", &storage[..])];
        assert!(missing("analysis", &requires, agents.iter().copied()).is_empty());
    }
}
