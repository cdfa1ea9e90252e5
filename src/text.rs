//! Short human text shared by every part of hms: durations, sizes, truncation, the "did you mean"
//! suggestion and the rule for component names. One home, so the CLI, the panels, the core and the
//! config loader say things the same way.
//!
//! Pure functions only: nothing here reads the clock, the environment or a file.

use std::time::Duration;

/// The longest accepted component name.
pub const MAX_NAME: usize = 64;

/// A short human duration: `850ms`, `12s`, `3m 4s`, `2h 5m`, `1d 3h`.
pub fn duration(d: Duration) -> String {
    ShortDuration(d).to_string()
}

/// [`duration`] to write where it is wanted (the status table writes all its cells into one
/// string).
pub struct ShortDuration(pub Duration);

impl std::fmt::Display for ShortDuration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = self.0.as_millis();
        if ms < 1000 {
            return write!(f, "{ms}ms");
        }
        let s = self.0.as_secs();
        match s {
            0..=59 => write!(f, "{s}s"),
            60..=3599 => write!(f, "{}m {}s", s / 60, s % 60),
            3600..=86_399 => write!(f, "{}h {}m", s / 3600, (s % 3600) / 60),
            _ => write!(f, "{}d {}h", s / 86_400, (s % 86_400) / 3600),
        }
    }
}

/// A duration cut to whole milliseconds, so `humantime` prints `1s 250ms`, not nanoseconds.
pub fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis().min(u64::MAX as u128) as u64)
}

/// `512 B`, `12.4 MiB`, `1.2 GiB`.
pub fn bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if b < 1024 {
        return format!("{b} B");
    }
    let mut value = b as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// At most `max` characters, ending in `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// The candidate nearest to a mistyped word: the only one it is a prefix of, or else the closest by
/// edit distance (transpositions count once) if close enough for the word's length, or else the
/// longest candidate the word starts with. Case is ignored.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word = word.to_lowercase();
    let candidates: Vec<&str> = candidates.into_iter().collect();
    let prefixed: Vec<&str> = candidates
        .iter()
        .copied()
        .filter(|c| word.len() >= 2 && c.to_lowercase().starts_with(&word))
        .collect();
    if let [only] = prefixed[..] {
        return Some(only);
    }
    let limit = match word.chars().count() {
        0..=3 => 1,
        4..=6 => 2,
        _ => 3,
    };
    let close = candidates
        .iter()
        .map(|c| (strsim::osa_distance(&word, &c.to_lowercase()), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c);
    // A word that says more than a candidate (`restart_policy` for `restart`).
    close.or_else(|| {
        let extended: Vec<&str> = candidates
            .iter()
            .copied()
            .filter(|c| c.len() >= 3 && word.starts_with(&c.to_lowercase()))
            .collect();
        extended.iter().copied().max_by_key(|c| c.len())
    })
}

/// The rule [`valid_name`] checks, in words, for error messages.
pub const NAME_RULE: &str =
    "use 1-64 letters, digits, '-', '_' or '.', and do not start with '-' or '.'";

/// Is `name` acceptable as a component name: 1–[`MAX_NAME`] ASCII letters, digits, `-`, `_` or
/// `.`, not starting with `-` or `.`. Every consumer of a name must accept it as it is: tmux and
/// the CLI read a leading `-` as a flag (`rename-window -rf` fails half-way through building a
/// session) and a leading `.` as part of a target, so such names are refused where they enter
/// (config, Procfile import, linked registration).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && !name.starts_with(['-', '.'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_short_and_exact_below_a_second() {
        assert_eq!(duration(Duration::from_millis(850)), "850ms");
        assert_eq!(duration(Duration::from_secs(12)), "12s");
        assert_eq!(duration(Duration::from_secs(184)), "3m 4s");
        assert_eq!(duration(Duration::from_secs(7500)), "2h 5m");
        assert_eq!(duration(Duration::from_secs(97_200)), "1d 3h");
    }

    #[test]
    fn bytes_use_binary_units() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(13 * 1024 * 1024), "13.0 MiB");
    }

    #[test]
    fn truncate_marks_the_cut() {
        assert_eq!(truncate("abcdef", 6), "abcdef");
        assert_eq!(truncate("abcdefg", 6), "abcde…");
        assert_eq!(truncate("ééééé", 3), "éé…");
    }

    #[test]
    fn nearest_prefers_a_unique_prefix_and_respects_the_limit() {
        assert_eq!(nearest("res", ["restart", "status"]), Some("restart"));
        assert_eq!(nearest("st", ["start", "stop", "status"]), None);
        assert_eq!(nearest("x", ["db"]), None);
        assert_eq!(nearest("dv", ["db"]), Some("db"));
        assert_eq!(nearest("comand", ["command", "cwd"]), Some("command"));
        assert_eq!(
            nearest("restart_policy", ["name", "restart"]),
            Some("restart")
        );
    }

    #[test]
    fn names_are_short_and_plain() {
        assert!(valid_name("api-2.v1_x"));
        assert!(!valid_name(""));
        assert!(!valid_name("a b"));
        assert!(!valid_name(&"a".repeat(MAX_NAME + 1)));
    }

    #[test]
    fn names_that_tmux_or_the_cli_would_read_as_flags_or_targets_are_refused() {
        for name in ["-rf", "-", ".", ".hidden", "--help"] {
            assert!(!valid_name(name), "{name}");
        }
        assert!(valid_name("a-"));
        assert!(valid_name("a."));
        assert!(valid_name("_private"));
        assert!(NAME_RULE.contains(&MAX_NAME.to_string()));
    }
}
