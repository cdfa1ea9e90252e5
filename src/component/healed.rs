//! What the component's own healing recovered, so that a report made afterwards says so (guide §7:
//! heal locally, then report the issue to the supervisor).
//!
//! The guide builds `HealingFactory::create(..)` and `SupervisorClient::new(..)` as two separate
//! handles and never connects them, yet the supervisor must not heal again what local healing
//! already healed. So the healing engine notes here each episode that ended with the component
//! healthy again, and [`SupervisorClient::report_issue`](super::SupervisorClient::report_issue)
//! marks an issue it reports with [`Issue::HEALED_BY`] when such an episode ended after the
//! issue was detected. The core then records and shows the issue without healing it again.
//!
//! This module decides nothing else and talks to nobody.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use crate::model::{HealingAction, Issue};

/// Component id → when its last local healing episode recovered, and the action that worked.
/// Process-wide because the two handles that meet here are built apart (see the module docs); a
/// std mutex because each section is one insert or one lookup, never across an `.await`.
static RECOVERED: Mutex<BTreeMap<String, (SystemTime, HealingAction)>> =
    Mutex::new(BTreeMap::new());

/// Local healing of `component` recovered at `at` with `action`.
pub(crate) fn recovered(component: &str, action: &HealingAction, at: SystemTime) {
    RECOVERED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(component.to_string(), (at, action.clone()));
}

/// Marks `issue` as healed locally when its component's healing recovered after it was detected
/// (and it does not say already).
pub(crate) fn mark(issue: &mut Issue) {
    if issue.healed_locally().is_some() {
        return;
    }
    let healed = RECOVERED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&issue.component)
        .filter(|(at, _)| *at >= issue.detected_at)
        .map(|(_, action)| action.clone());
    if let Some(action) = healed {
        *issue = issue.clone().healed_by(&action);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::model::Severity;

    #[test]
    fn an_issue_is_marked_only_by_healing_that_recovered_after_it_was_detected() {
        let action = HealingAction::Recover {
            name: "clear_cache".into(),
        };
        let mut before = Issue::new("healed-test-a", "cache_corrupt", Severity::Error);
        recovered(
            "healed-test-a",
            &action,
            SystemTime::now() + Duration::from_millis(1),
        );
        mark(&mut before);
        assert_eq!(before.healed_locally(), Some("recover: clear_cache"));

        let mut later = Issue::new("healed-test-a", "cache_corrupt", Severity::Error);
        later.detected_at = SystemTime::now() + Duration::from_secs(60);
        mark(&mut later);
        assert_eq!(later.healed_locally(), None, "healed before it happened");

        let mut other = Issue::new("healed-test-b", "cache_corrupt", Severity::Error);
        mark(&mut other);
        assert_eq!(other.healed_locally(), None, "another component");
    }
}
