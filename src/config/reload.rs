//! [`ReloadPlan`]: what a config reload changes, component by component, so the supervisor
//! restarts only what changed.
//!
//! Pure: it compares two validated fleets and changes nothing.

use super::FleetConfig;

/// What a config reload changes, by component name, each list in the new config's start order
/// (removed ones in the old config's reverse order, so they can be stopped in that order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadPlan {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub unchanged: Vec<String>,
}

impl ReloadPlan {
    /// Compares the running fleet with a new, already validated one.
    pub fn new(old: &FleetConfig, new: &FleetConfig) -> ReloadPlan {
        let mut plan = ReloadPlan::default();
        for spec in &new.components {
            match old.get(&spec.name) {
                None => plan.added.push(spec.name.clone()),
                Some(o) if o.same_as(spec) => plan.unchanged.push(spec.name.clone()),
                Some(_) => plan.changed.push(spec.name.clone()),
            }
        }
        plan.removed = old
            .components
            .iter()
            .rev()
            .filter(|c| new.get(&c.name).is_none())
            .map(|c| c.name.clone())
            .collect();
        plan
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    /// One line for the operator: `added: x; changed: y; removed: z` or `no changes`.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = [
            ("added", &self.added),
            ("changed", &self.changed),
            ("removed", &self.removed),
        ]
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}: {}", v.join(", ")))
        .collect();
        if parts.is_empty() {
            "no changes".into()
        } else {
            parts.join("; ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reload_plan_names_what_was_added_changed_and_removed() {
        let old = FleetConfig::parse(
            "[[component]]\nname = \"a\"\ncommand = \"sleep 1\"\n[[component]]\nname = \"b\"\ncommand = \"sleep 1\"\n[[component]]\nname = \"c\"\ncommand = \"sleep 1\"\n",
            "old",
            None,
        )
        .unwrap();
        let new = FleetConfig::parse(
            "[[component]]\nname = \"a\"\ncommand = \"sleep 1\"\n[[component]]\nname = \"b\"\ncommand = \"sleep 2\"\n[[component]]\nname = \"d\"\ncommand = \"sleep 1\"\n",
            "new",
            None,
        )
        .unwrap();
        let plan = ReloadPlan::new(&old, &new);
        assert_eq!(plan.unchanged, ["a"]);
        assert_eq!(plan.changed, ["b"]);
        assert_eq!(plan.added, ["d"]);
        assert_eq!(plan.removed, ["c"]);
        assert_eq!(plan.summary(), "added: d; changed: b; removed: c");
        assert!(ReloadPlan::new(&old, &old).is_empty());
    }

    #[test]
    fn a_changed_log_rotation_is_a_change_of_the_component() {
        let fleet = |extra: &str| {
            FleetConfig::parse(
                &format!(
                    "{extra}\n[[component]]\nname = \"a\"\ncommand = \"sleep 1\"\n[[component]]\nname = \"b\"\ncommand = \"sleep 1\"\nlog_backups = 3\n"
                ),
                "t",
                None,
            )
            .unwrap()
        };
        let old = fleet("");
        // The default written out changes nothing.
        assert!(ReloadPlan::new(&old, &fleet("[defaults]\nlog_max_size = \"10MB\"")).is_empty());
        let bigger = ReloadPlan::new(&old, &fleet("[defaults]\nlog_max_size = \"20MB\""));
        assert_eq!(bigger.changed, ["a", "b"]);
        let fewer = ReloadPlan::new(&old, &fleet("[defaults]\nlog_backups = 1"));
        assert_eq!(fewer.changed, ["a"], "b sets its own log_backups");
        assert_eq!(fewer.unchanged, ["b"]);
    }
}
