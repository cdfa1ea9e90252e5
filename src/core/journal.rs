//! The issue history behind `hms-console issues`: an owner of its own, not a supervisor field.
//! The supervisor's shell records every issue the kernel publishes; the router answers `issues`
//! requests from here.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::model::Issue;

/// How many recent issues the core keeps.
pub const ISSUE_HISTORY: usize = 500;

/// The last [`ISSUE_HISTORY`] issues, oldest first.
#[derive(Clone, Default)]
pub struct IssueJournal {
    /// A `std::sync::Mutex`: each critical section is a push or a copy, never an `.await`.
    issues: Arc<Mutex<VecDeque<Issue>>>,
}

impl IssueJournal {
    pub fn record(&self, issue: Issue) {
        let mut issues = self.issues.lock().expect("journal lock");
        if issues.len() == ISSUE_HISTORY {
            issues.pop_front();
        }
        issues.push_back(issue);
    }

    /// The last `limit` issues of `component` (or of all), oldest first.
    pub fn recent(&self, component: Option<&str>, limit: usize) -> Vec<Issue> {
        let issues = self.issues.lock().expect("journal lock");
        let mut picked: Vec<Issue> = issues
            .iter()
            .filter(|i| component.is_none_or(|c| i.component == c))
            .cloned()
            .collect();
        let skip = picked.len().saturating_sub(limit);
        picked.drain(..skip);
        picked
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Severity;

    #[test]
    fn the_journal_keeps_the_newest_issues_per_component() {
        let journal = IssueJournal::default();
        for n in 0..ISSUE_HISTORY + 3 {
            let c = if n % 2 == 0 { "a" } else { "b" };
            journal.record(Issue::new(c, &format!("t{n}"), Severity::Error));
        }
        let all = journal.recent(None, usize::MAX);
        assert_eq!(all.len(), ISSUE_HISTORY);
        assert_eq!(
            all.last().unwrap().issue_type,
            format!("t{}", ISSUE_HISTORY + 2)
        );
        let a = journal.recent(Some("a"), 2);
        assert_eq!(a.len(), 2);
        assert!(a.iter().all(|i| i.component == "a"));
    }
}
