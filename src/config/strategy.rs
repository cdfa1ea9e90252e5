//! Coordinated recovery's settings: the OTP strategy of the fleet (`[defaults] strategy`) and of
//! groups of components (`[[group]]` tables), how long a recovery plan may run
//! (`[defaults] plan_timeout`), and the command that tells the operator when a plan gives up
//! (`[defaults] notify_command`).
//!
//! ```toml
//! [defaults]
//! strategy = "rest_for_one"        # one_for_one | rest_for_one | one_for_all
//! plan_timeout = "2m"
//! notify_command = "notify-send HMS \"$HMS_NOTIFY_MESSAGE\""
//!
//! [[group]]
//! name = "storage"
//! components = ["db", "cache"]
//! strategy = "one_for_all"
//! ```
//!
//! Pure: parsing and checks only. Every error names file:line:column, the key and the fix.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::ConfigError;
use super::raw::{RawDefaults, invalid_at, line_col};
use crate::model::RecoveryStrategy;
use crate::text::nearest;

/// How long a recovery plan may run in all unless `[defaults] plan_timeout` says otherwise.
pub const DEFAULT_PLAN_TIMEOUT: Duration = Duration::from_secs(120);

/// A `[[group]]` table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGroup {
    name: Spanned<String>,
    components: Spanned<Vec<Spanned<String>>>,
    strategy: Option<RecoveryStrategy>,
}

/// A group of components recovered together by one strategy (an OTP supervisor of its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    pub name: String,
    pub components: Vec<String>,
    pub strategy: RecoveryStrategy,
}

/// Coordinated recovery's settings, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryConfig {
    /// The strategy of every component in no group.
    pub strategy: RecoveryStrategy,
    pub groups: Vec<GroupConfig>,
    /// How long one plan may run before it is cancelled.
    pub plan_timeout: Duration,
    /// Run through `sh -c` when a plan notifies the operator, with `HMS_NOTIFY_MESSAGE`,
    /// `HMS_NOTIFY_COMPONENT` and `HMS_NOTIFY_PLAN` in its environment.
    pub notify_command: Option<String>,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        RecoveryConfig {
            strategy: RecoveryStrategy::default(),
            groups: Vec::new(),
            plan_timeout: DEFAULT_PLAN_TIMEOUT,
            notify_command: None,
        }
    }
}

impl RecoveryConfig {
    /// The strategy for `component` and the members it is recovered with: its group's, else the
    /// fleet's (`None`: every component of the fleet).
    pub fn scope_of(&self, component: &str) -> (RecoveryStrategy, Option<&[String]>) {
        match self
            .groups
            .iter()
            .find(|g| g.components.iter().any(|c| c == component))
        {
            Some(g) => (g.strategy, Some(&g.components)),
            None => (self.strategy, None),
        }
    }
}

/// Checks the recovery keys of `[defaults]` and the `[[group]]` tables against the fleet's
/// component names.
pub(super) fn check(
    defaults: &RawDefaults,
    groups: &[RawGroup],
    names: &[&str],
    text: &str,
    file: &str,
) -> Result<RecoveryConfig, ConfigError> {
    let error = |span: std::ops::Range<usize>, key: &str, message: String| {
        invalid_at(text, file, span.start, key, message)
    };
    let d = defaults;
    let plan_timeout = match &d.plan_timeout {
        Some(t) if t.get_ref().0.is_zero() => {
            return Err(error(
                t.span(),
                "plan_timeout",
                "the plan timeout must be longer than zero, e.g. \"2m\"".into(),
            ));
        }
        Some(t) => t.get_ref().0,
        None => DEFAULT_PLAN_TIMEOUT,
    };
    let notify_command = match &d.notify_command {
        Some(c) if c.get_ref().trim().is_empty() => {
            return Err(error(
                c.span(),
                "notify_command",
                "the notify command is empty: give one such as \"notify-send HMS \\\"$HMS_NOTIFY_MESSAGE\\\"\", or leave the key out".into(),
            ));
        }
        Some(c) => Some(c.get_ref().clone()),
        None => None,
    };
    let mut checked: Vec<GroupConfig> = Vec::new();
    let mut member_of: HashMap<String, (String, usize)> = HashMap::new();
    let mut group_line: HashMap<String, usize> = HashMap::new();
    for g in groups {
        let name = g.name.get_ref().clone();
        let line = line_col(text, g.name.span().start).0;
        if let Some(first) = group_line.insert(name.clone(), line) {
            return Err(error(
                g.name.span(),
                "name",
                format!(
                    "duplicate group \"{name}\" (first defined on line {first}); group names must be unique"
                ),
            ));
        }
        if g.components.get_ref().is_empty() {
            return Err(error(
                g.components.span(),
                "components",
                format!(
                    "group \"{name}\" has no components: list at least one, e.g. components = [\"db\", \"api\"]"
                ),
            ));
        }
        let mut components = Vec::new();
        for c in g.components.get_ref() {
            let member = c.get_ref();
            if !names.contains(&member.as_str()) {
                let mut known = names.to_vec();
                known.sort();
                let hint = nearest(member, known.iter().copied())
                    .map(|n| format!(" — did you mean \"{n}\"?"))
                    .unwrap_or_default();
                return Err(error(
                    c.span(),
                    "components",
                    format!(
                        "group \"{name}\" names unknown component \"{member}\"{hint} (known components: {})",
                        known.join(", ")
                    ),
                ));
            }
            let at = line_col(text, c.span().start).0;
            if let Some((other, first)) = member_of.insert(member.clone(), (name.clone(), at)) {
                return Err(error(
                    c.span(),
                    "components",
                    format!(
                        "\"{member}\" is already in group \"{other}\" (line {first}); a component belongs to one group at most"
                    ),
                ));
            }
            components.push(member.clone());
        }
        checked.push(GroupConfig {
            name,
            components,
            strategy: g.strategy.or(d.strategy).unwrap_or_default(),
        });
    }
    Ok(RecoveryConfig {
        strategy: d.strategy.unwrap_or_default(),
        groups: checked,
        plan_timeout,
        notify_command,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::FleetConfig;
    use crate::model::RecoveryStrategy;

    const FLEET: &str = r#"
[defaults]
strategy = "one_for_one"
plan_timeout = "30s"
notify_command = "true"
[[component]]
name = "db"
command = "sleep 1"
[[component]]
name = "api"
command = "sleep 1"
depends_on = ["db"]
[[component]]
name = "mailer"
command = "sleep 1"
[[group]]
name = "backend"
components = ["db", "api"]
strategy = "rest_for_one"
"#;

    #[test]
    fn a_group_has_its_own_strategy_and_the_rest_the_fleets() {
        let fleet = FleetConfig::parse(FLEET, "t.toml", None).unwrap();
        let r = &fleet.recovery;
        assert_eq!(r.plan_timeout, std::time::Duration::from_secs(30));
        assert_eq!(r.notify_command.as_deref(), Some("true"));
        let (s, members) = r.scope_of("api");
        assert_eq!(s, RecoveryStrategy::RestForOne);
        assert_eq!(members.unwrap(), ["db", "api"]);
        assert_eq!(r.scope_of("mailer"), (RecoveryStrategy::OneForOne, None));
    }

    #[test]
    fn without_keys_the_fleet_recovers_rest_for_one_within_two_minutes() {
        let fleet = FleetConfig::parse(
            "[[component]]\nname = \"a\"\ncommand = \"true\"\n",
            "t.toml",
            None,
        )
        .unwrap();
        assert_eq!(fleet.recovery, super::RecoveryConfig::default());
        assert_eq!(fleet.recovery.strategy, RecoveryStrategy::RestForOne);
    }
}
