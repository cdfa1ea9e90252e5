//! Which recovery action to try first for an issue, from what the registry remembers (guide
//! §5.2): a pure decision over data the store has read, in the manner of `healing::policy`.
//!
//! Rules, in order:
//! 1. The candidates are the strategies of the component's five newest *successful* recovery
//!    records for the issue type (the guide's query), that the component can still carry out.
//! 2. A candidate whose most recent attempt failed is dropped: a strategy that stops working
//!    loses its place at once, and wins it back only by curing again.
//! 3. The candidate with the most of those five wins comes first; between equals, the one that
//!    won most recently.
//!
//! The reason says how the chosen strategy did over its recent attempts, for `status`, the
//! Health Status panel and the issue's record. No I/O, no clock.

use serde::{Deserialize, Serialize};

/// How many successful records the choice looks at (the guide's `limit(5)`).
pub const WINS: usize = 5;
/// How many attempts of the chosen strategy its reason counts.
pub const HISTORY: usize = 8;

/// The action to try first, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Advice {
    pub action: String,
    /// e.g. `knowledge: clear_cache cured db-connection-lost 7 of the last 8 times`.
    pub reason: String,
}

/// Chooses. `wins`: the strategies of the newest successful records, newest first (at most
/// [`WINS`]); `actions`: what the component can do; `history(strategy)`: that strategy's newest
/// attempts, newest first, `true` for cured (at most [`HISTORY`]).
pub fn choose(
    issue_type: &str,
    actions: &[String],
    wins: &[String],
    history: impl Fn(&str) -> Vec<bool>,
) -> Option<Advice> {
    let mut best: Option<(usize, usize, &str, Vec<bool>)> = None;
    for (first_seen, strategy) in wins.iter().enumerate() {
        if !actions.contains(strategy) || wins[..first_seen].contains(strategy) {
            continue;
        }
        let attempts = history(strategy);
        if attempts.first() == Some(&false) {
            continue;
        }
        let count = wins.iter().filter(|w| *w == strategy).count();
        // More wins first; between equals the earlier (newer) first seen, already in `best`.
        if best.as_ref().is_none_or(|(c, _, _, _)| count > *c) {
            best = Some((count, first_seen, strategy, attempts));
        }
    }
    let (_, _, strategy, attempts) = best?;
    let cured = attempts.iter().filter(|c| **c).count();
    let reason = match attempts.len() {
        0 | 1 => format!("knowledge: {strategy} cured {issue_type} the last time it was tried"),
        n => format!("knowledge: {strategy} cured {issue_type} {cured} of the last {n} times"),
    };
    Some(Advice {
        action: strategy.to_string(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn always_cured(_: &str) -> Vec<bool> {
        vec![true; 3]
    }

    #[test]
    fn the_strategy_with_most_recent_wins_comes_first() {
        let advice = choose(
            "db-connection-lost",
            &s(&["restart", "clear_cache"]),
            &s(&[
                "restart",
                "clear_cache",
                "clear_cache",
                "restart",
                "clear_cache",
            ]),
            |_| vec![true, true, false, true, true, true, true, true],
        )
        .unwrap();
        assert_eq!(advice.action, "clear_cache");
        assert_eq!(
            advice.reason,
            "knowledge: clear_cache cured db-connection-lost 7 of the last 8 times"
        );
    }

    #[test]
    fn between_equals_the_newest_win_comes_first() {
        let advice = choose(
            "crash",
            &s(&["restart", "reconnect"]),
            &s(&["reconnect", "restart"]),
            always_cured,
        )
        .unwrap();
        assert_eq!(advice.action, "reconnect");
    }

    #[test]
    fn a_strategy_that_stopped_working_loses_its_place() {
        let advice = choose(
            "crash",
            &s(&["restart", "clear_cache"]),
            &s(&["clear_cache", "clear_cache", "clear_cache", "restart"]),
            |strategy| {
                if strategy == "clear_cache" {
                    vec![false, true, true]
                } else {
                    vec![true]
                }
            },
        )
        .unwrap();
        assert_eq!(advice.action, "restart");
        assert_eq!(
            advice.reason,
            "knowledge: restart cured crash the last time it was tried"
        );
    }

    #[test]
    fn strategies_the_component_cannot_do_and_no_wins_give_no_advice() {
        assert_eq!(
            choose("crash", &s(&["restart"]), &s(&["failover"]), always_cured),
            None
        );
        assert_eq!(choose("crash", &s(&["restart"]), &[], always_cured), None);
    }
}
