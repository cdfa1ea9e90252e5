//! The recovery planner (guide §4.2, `coordinate_healing`): which components an issue touches and
//! the steps that bring them back, in dependency order.
//!
//! Pure: it reads a [`DependencyGraph`] and an [`Issue`] and returns a [`Plan`] of
//! [`RecoveryStep`]s. It never carries a step out, waits or reads a clock; the supervisor's kernel
//! runs the plan step by step (one plan at a time per component, an overall timeout, a wait that
//! runs out ends the plan with `NotifyOperator`).
//!
//! Rules, as OTP states them for one supervisor (here: a group of components, or the fleet):
//! - The failed components are the issue's component and the components it names as affected
//!   ([`Issue::affected_components`], §2.2), those of the graph only.
//! - `one_for_one`: restart each failed component, then wait for it to be healthy.
//! - `rest_for_one`: the failed components and everything that depends on them, directly or not
//!   (`depends_on`, and a `requires` met by another member's `provides`).
//! - `one_for_all`: every member of the graph.
//! - In both of the latter, the members that did not fail are stopped first, last started first
//!   (a linked component cannot be stopped and started by the core: it is restarted in its turn
//!   instead); then, in start order, each member is restarted (a failed one) or started (one the
//!   plan stopped) and waited for healthy before the next one.
//!
//! A plan that touches only the failed component under `one_for_one` is what the supervisor does
//! without a plan; [`Plan::is_coordinated`] tells the two apart.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use crate::model::{ComponentKind, Issue, RecoveryStep, RecoveryStrategy, SupervisorCommand};

/// One component as the planner sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub name: String,
    pub kind: ComponentKind,
    /// Components it needs running (names of other members; others are ignored).
    pub depends_on: Vec<String>,
    /// Capabilities it needs from another member (MAC's `requires`). Hook: MAC agents are not
    /// registered yet, so the core passes none today; the graph already honours them.
    pub requires: Vec<String>,
    /// Capabilities it offers to others (MAC's `provides`).
    pub provides: Vec<String>,
    /// How long the plan waits for it to be healthy after (re)starting it.
    pub wait: Duration,
}

impl Member {
    /// A member with no capabilities, for components from `hms.toml`.
    pub fn new(name: &str, kind: ComponentKind, depends_on: &[String], wait: Duration) -> Member {
        Member {
            name: name.to_string(),
            kind,
            depends_on: depends_on.to_vec(),
            requires: Vec::new(),
            provides: Vec::new(),
            wait,
        }
    }
}

/// The components of a group (or the fleet) and who depends on whom, in start order: every member
/// after the members it depends on. The config refuses a dependency cycle, so the fleet's order
/// is one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DependencyGraph {
    members: Vec<Member>,
}

impl DependencyGraph {
    /// The graph of `members`, put in start order: each after the members it depends on, the
    /// given order kept otherwise (a fleet's config is in start order already; components a
    /// reload added come last and move up where they must). A cycle (refused at config load) is
    /// left in the given order.
    pub fn new(members: Vec<Member>) -> DependencyGraph {
        let graph = DependencyGraph { members };
        let mut order: Vec<usize> = Vec::with_capacity(graph.members.len());
        let mut state = vec![0u8; graph.members.len()];
        fn visit(g: &DependencyGraph, i: usize, state: &mut [u8], order: &mut Vec<usize>) {
            if state[i] != 0 {
                return;
            }
            state[i] = 1;
            for (j, m) in g.members.iter().enumerate() {
                if j != i && g.depends_directly(&g.members[i], m) {
                    visit(g, j, state, order);
                }
            }
            state[i] = 2;
            order.push(i);
        }
        for i in 0..graph.members.len() {
            visit(&graph, i, &mut state, &mut order);
        }
        let mut slots: Vec<Option<Member>> = graph.members.into_iter().map(Some).collect();
        DependencyGraph {
            members: order.into_iter().filter_map(|i| slots[i].take()).collect(),
        }
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.members.iter().position(|m| m.name == name)
    }

    /// Does member `a` depend on member `b` directly (by name or by a capability `b` provides)?
    fn depends_directly(&self, a: &Member, b: &Member) -> bool {
        a.depends_on.contains(&b.name) || a.requires.iter().any(|r| b.provides.contains(r))
    }

    /// The members that depend on `name`, directly or not, in start order (`name` excluded).
    pub fn dependents_of(&self, name: &str) -> Vec<String> {
        let mut reached: BTreeSet<usize> = BTreeSet::new();
        let Some(start) = self.position(name) else {
            return Vec::new();
        };
        let mut frontier = vec![start];
        while let Some(i) = frontier.pop() {
            for (j, m) in self.members.iter().enumerate() {
                if j != start && !reached.contains(&j) && self.depends_directly(m, &self.members[i])
                {
                    reached.insert(j);
                    frontier.push(j);
                }
            }
        }
        reached
            .into_iter()
            .map(|j| self.members[j].name.clone())
            .collect()
    }
}

/// What the planner decided: the components it acts on (in start order) and the steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub strategy: RecoveryStrategy,
    /// The components that failed (the issue's and the affected ones it names).
    pub failed: Vec<String>,
    /// Every component the plan acts on, in start order.
    pub affected: Vec<String>,
    pub steps: Vec<RecoveryStep>,
}

impl Plan {
    /// True when the plan does more than restart the one failed component, which the supervisor
    /// does by itself without a plan.
    pub fn is_coordinated(&self) -> bool {
        self.affected.len() > 1
    }
}

/// Plans the recovery of `issue` over `graph` by `strategy` (§4.2's `determine_affected_components`
/// and `plan_recovery` in one).
pub fn coordinate_healing(
    issue: &Issue,
    graph: &DependencyGraph,
    strategy: RecoveryStrategy,
) -> Plan {
    let by_name: HashMap<&str, usize> = graph
        .members
        .iter()
        .enumerate()
        .map(|(i, m)| (m.name.as_str(), i))
        .collect();
    // A component outside the graph has nothing to coordinate: `failed` stays empty.
    let failed: BTreeSet<usize> = std::iter::once(issue.component.clone())
        .chain(issue.affected_components())
        .filter_map(|n| by_name.get(n.as_str()).copied())
        .collect();
    let affected: BTreeSet<usize> = match strategy {
        RecoveryStrategy::OneForOne => failed.clone(),
        RecoveryStrategy::RestForOne => {
            let mut all = failed.clone();
            for &f in &failed {
                for d in graph.dependents_of(&graph.members[f].name) {
                    all.insert(by_name[d.as_str()]);
                }
            }
            all
        }
        RecoveryStrategy::OneForAll if failed.is_empty() => BTreeSet::new(),
        RecoveryStrategy::OneForAll => (0..graph.members.len()).collect(),
    };
    let mut steps = Vec::new();
    let restart_only = strategy == RecoveryStrategy::OneForOne;
    if !restart_only {
        // Stop what did not fail, last started first, so nothing runs without what it needs.
        for &i in affected.iter().rev() {
            let m = &graph.members[i];
            if !failed.contains(&i) && m.kind == ComponentKind::Process {
                steps.push(RecoveryStep::ComponentAction {
                    component: m.name.clone(),
                    action: SupervisorCommand::Stop,
                });
            }
        }
    }
    for &i in &affected {
        let m = &graph.members[i];
        let action = if failed.contains(&i) || m.kind == ComponentKind::Linked {
            SupervisorCommand::Restart
        } else {
            SupervisorCommand::Start
        };
        steps.push(RecoveryStep::ComponentAction {
            component: m.name.clone(),
            action,
        });
        steps.push(RecoveryStep::WaitForHealth {
            component: m.name.clone(),
            timeout: m.wait,
        });
    }
    let names = |set: &BTreeSet<usize>| -> Vec<String> {
        set.iter().map(|&i| graph.members[i].name.clone()).collect()
    };
    Plan {
        strategy,
        failed: names(&failed),
        affected: names(&affected),
        steps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Severity;

    const WAIT: Duration = Duration::from_secs(5);

    fn process(name: &str, deps: &[&str]) -> Member {
        let deps: Vec<String> = deps.iter().map(|d| d.to_string()).collect();
        Member::new(name, ComponentKind::Process, &deps, WAIT)
    }

    /// db ← cache ← api ← web, and a mailer that depends on nothing.
    fn fleet() -> DependencyGraph {
        DependencyGraph::new(vec![
            process("db", &[]),
            process("cache", &["db"]),
            process("mailer", &[]),
            process("api", &["cache"]),
            process("web", &["api"]),
        ])
    }

    /// The steps in a short form: `stop api`, `restart db`, `wait db`.
    fn short(plan: &Plan) -> Vec<String> {
        plan.steps
            .iter()
            .map(|s| match s {
                RecoveryStep::ComponentAction { component, action } => {
                    format!("{} {component}", action.action_name())
                }
                RecoveryStep::WaitForHealth { component, .. } => format!("wait {component}"),
                RecoveryStep::NotifyOperator { message } => format!("notify {message}"),
            })
            .collect()
    }

    fn crash(component: &str) -> Issue {
        Issue::new(component, "crash", Severity::Error)
    }

    #[test]
    fn one_for_one_restarts_only_the_failed_component_and_waits_for_it() {
        let plan = coordinate_healing(&crash("cache"), &fleet(), RecoveryStrategy::OneForOne);
        assert_eq!(short(&plan), ["restart cache", "wait cache"]);
        assert_eq!(plan.affected, ["cache"]);
        assert!(
            !plan.is_coordinated(),
            "the supervisor does this without a plan"
        );
    }

    #[test]
    fn rest_for_one_stops_the_dependents_restarts_the_failed_one_then_starts_them_in_order() {
        let plan = coordinate_healing(&crash("cache"), &fleet(), RecoveryStrategy::RestForOne);
        assert_eq!(
            short(&plan),
            [
                "stop web",
                "stop api",
                "restart cache",
                "wait cache",
                "start api",
                "wait api",
                "start web",
                "wait web",
            ]
        );
        assert_eq!(plan.failed, ["cache"]);
        assert_eq!(plan.affected, ["cache", "api", "web"]);
        assert!(plan.is_coordinated());
    }

    #[test]
    fn rest_for_one_of_a_component_without_dependents_is_a_plain_restart() {
        let plan = coordinate_healing(&crash("mailer"), &fleet(), RecoveryStrategy::RestForOne);
        assert_eq!(short(&plan), ["restart mailer", "wait mailer"]);
        assert!(!plan.is_coordinated());
    }

    #[test]
    fn one_for_all_restarts_every_member_in_start_order_after_stopping_them_in_reverse() {
        let plan = coordinate_healing(&crash("api"), &fleet(), RecoveryStrategy::OneForAll);
        assert_eq!(
            short(&plan),
            [
                "stop web",
                "stop mailer",
                "stop cache",
                "stop db",
                "start db",
                "wait db",
                "start cache",
                "wait cache",
                "start mailer",
                "wait mailer",
                "restart api",
                "wait api",
                "start web",
                "wait web",
            ]
        );
    }

    #[test]
    fn a_cross_component_issue_plans_for_every_component_it_names() {
        let issue = crash("mailer").with_affected(["db", "nonexistent", "mailer"]);
        let plan = coordinate_healing(&issue, &fleet(), RecoveryStrategy::RestForOne);
        assert_eq!(plan.failed, ["db", "mailer"]);
        assert_eq!(
            short(&plan),
            [
                "stop web",
                "stop api",
                "stop cache",
                "restart db",
                "wait db",
                "start cache",
                "wait cache",
                "restart mailer",
                "wait mailer",
                "start api",
                "wait api",
                "start web",
                "wait web",
            ]
        );
    }

    #[test]
    fn each_wait_is_the_members_own_timeout() {
        let mut graph = fleet();
        graph.members[3].wait = Duration::from_secs(42);
        let plan = coordinate_healing(&crash("api"), &graph, RecoveryStrategy::RestForOne);
        assert!(plan.steps.contains(&RecoveryStep::WaitForHealth {
            component: "api".into(),
            timeout: Duration::from_secs(42),
        }));
    }

    #[test]
    fn linked_dependents_are_restarted_in_their_turn_not_stopped() {
        let mut members = fleet().members;
        members[4].kind = ComponentKind::Linked;
        let plan = coordinate_healing(
            &crash("api"),
            &DependencyGraph::new(members),
            RecoveryStrategy::RestForOne,
        );
        assert_eq!(
            short(&plan),
            ["restart api", "wait api", "restart web", "wait web"]
        );
    }

    #[test]
    fn requires_met_by_anothers_provides_is_a_dependency() {
        let mut members = vec![process("store", &[]), process("indexer", &[])];
        members[0].provides = vec!["storage".into()];
        members[1].requires = vec!["storage".into()];
        let graph = DependencyGraph::new(members);
        assert_eq!(graph.dependents_of("store"), ["indexer"]);
        let plan = coordinate_healing(&crash("store"), &graph, RecoveryStrategy::RestForOne);
        assert_eq!(plan.affected, ["store", "indexer"]);
    }

    #[test]
    fn members_are_put_in_start_order() {
        let graph = DependencyGraph::new(vec![
            process("web", &["api"]),
            process("api", &["db"]),
            process("db", &[]),
        ]);
        let names: Vec<&str> = graph.members().iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["db", "api", "web"]);
    }

    #[test]
    fn an_issue_of_a_component_outside_the_graph_plans_nothing() {
        for strategy in [
            RecoveryStrategy::OneForOne,
            RecoveryStrategy::RestForOne,
            RecoveryStrategy::OneForAll,
        ] {
            let plan = coordinate_healing(&crash("ghost"), &fleet(), strategy);
            assert!(plan.steps.is_empty(), "{strategy}");
            assert!(!plan.is_coordinated());
        }
    }
}
