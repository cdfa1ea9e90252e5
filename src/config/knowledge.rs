//! The `[knowledge]` table: where the knowledge registry keeps its file and how much it keeps
//! (retention). Plain data; the core maps it onto the registry's own settings.
//!
//! On a config reload ([`on_reload`]) the retention keys take effect at once; a new `path` waits
//! for the next start (a live SQLite file is not moved under its readers and writer).
//!
//! Pure: the path is resolved against the config's directory, never opened here.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::raw::invalid_at;
use super::{ConfigDuration, ConfigError};

/// Items kept per component by default (the oldest go first).
pub const DEFAULT_MAX_ITEMS_PER_COMPONENT: u64 = 100_000;
/// The most items per component a config may ask for: beyond it a component's rows would make
/// every pruning round and every per-component query slow (the benchmark goes to 1M in all).
pub const MAX_ITEMS_PER_COMPONENT: u64 = 10_000_000;
/// How long items are kept by default.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(90 * 24 * 3600);
/// How often retention runs by default.
pub const DEFAULT_PRUNE_EVERY: Duration = Duration::from_secs(600);
/// Retention runs at most this often: each round counts every component's items.
pub const MIN_PRUNE_EVERY: Duration = Duration::from_secs(1);

/// The knowledge registry's settings from `[knowledge]`; every key has a default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnowledgeConfig {
    /// The SQLite file; `None` means `DATA_DIR/knowledge.db`. Absolute (a relative path in the
    /// file is resolved against the config's directory).
    pub path: Option<PathBuf>,
    /// Retention: at most this many items per component, its oldest pruned first. 1 to
    /// [`MAX_ITEMS_PER_COMPONENT`].
    pub max_items_per_component: u64,
    /// Retention: items older than this are pruned. Longer than zero.
    pub max_age: Duration,
    /// How often retention runs. At least [`MIN_PRUNE_EVERY`].
    pub prune_every: Duration,
}

impl Default for KnowledgeConfig {
    fn default() -> Self {
        KnowledgeConfig {
            path: None,
            max_items_per_component: DEFAULT_MAX_ITEMS_PER_COMPONENT,
            max_age: DEFAULT_MAX_AGE,
            prune_every: DEFAULT_PRUNE_EVERY,
        }
    }
}

impl KnowledgeConfig {
    /// The same retention (`max_items_per_component`, `max_age`, `prune_every`), whatever the
    /// path.
    pub fn same_retention(&self, other: &KnowledgeConfig) -> bool {
        self.max_items_per_component == other.max_items_per_component
            && self.max_age == other.max_age
            && self.prune_every == other.prune_every
    }

    /// One line for the operator: `at most 500 items per component, kept 7d 0h, pruned every 30s`.
    pub fn retention_summary(&self) -> String {
        format!(
            "at most {} items per component, kept {}, pruned every {}",
            self.max_items_per_component,
            crate::text::duration(self.max_age),
            crate::text::duration(self.prune_every)
        )
    }
}

/// What a config reload does with `[knowledge]` (see [`on_reload`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnowledgeReload {
    /// The table in force after the reload: the new retention, the file the registry runs on.
    pub in_force: KnowledgeConfig,
    /// The retention differs from the running one: the registry must be told.
    pub retention_changed: bool,
    /// Set when the new config names another file: it waits for the next start.
    pub path_deferred: Option<String>,
}

/// Compares the running `[knowledge]` with a reloaded, already validated one. Both paths are
/// compared as given: the core fills in the default file (`DATA_DIR/knowledge.db`) on both sides
/// first, so leaving `path` out and writing the default are the same.
///
/// The retention is taken from `new`; the path stays `running`'s, because the registry's file is
/// open (its writer, readers and WAL) and moving it under them could lose acknowledged writes.
/// A changed path is answered with a warning saying it takes effect at the next start.
pub fn on_reload(running: &KnowledgeConfig, new: &KnowledgeConfig) -> KnowledgeReload {
    let path_deferred = (running.path != new.path).then(|| {
        let shown = |p: &Option<PathBuf>| match p {
            Some(p) => p.display().to_string(),
            None => "DATA_DIR/knowledge.db".to_string(),
        };
        let (old, new) = (shown(&running.path), shown(&new.path));
        format!(
            "[knowledge] path changed to {new}: the registry stays on {old} until the core is restarted (a live database is not moved); to keep what it learned, copy {old} to {new} while the core is stopped"
        )
    });
    KnowledgeReload {
        in_force: KnowledgeConfig {
            path: running.path.clone(),
            ..new.clone()
        },
        retention_changed: !running.same_retention(new),
        path_deferred,
    }
}

/// `[knowledge]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKnowledge {
    path: Option<Spanned<String>>,
    /// Signed, so that `-1` is answered with this table's own message rather than serde's.
    max_items_per_component: Option<Spanned<i64>>,
    max_age: Option<Spanned<ConfigDuration>>,
    prune_every: Option<Spanned<ConfigDuration>>,
}

/// Checks `[knowledge]` and applies its defaults.
pub(super) fn check(
    raw: &RawKnowledge,
    text: &str,
    file: &str,
    base_dir: Option<&Path>,
) -> Result<KnowledgeConfig, ConfigError> {
    let error = |span: std::ops::Range<usize>, key: &str, message: String| {
        invalid_at(text, file, span.start, key, message)
    };
    let mut config = KnowledgeConfig::default();
    if let Some(path) = &raw.path {
        let written = path.get_ref().trim();
        if written.is_empty() {
            return Err(error(
                path.span(),
                "path",
                "[knowledge] path is empty; leave it out for DATA_DIR/knowledge.db, or name a file, e.g. \"/var/lib/hms/knowledge.db\"".into(),
            ));
        }
        if written.ends_with('/') {
            return Err(error(
                path.span(),
                "path",
                format!(
                    "[knowledge] path \"{written}\" names a directory; name the file, e.g. \"{written}knowledge.db\""
                ),
            ));
        }
        let written = PathBuf::from(written);
        config.path = Some(match base_dir {
            Some(base) if written.is_relative() => base.join(written),
            _ => written,
        });
    }
    if let Some(n) = &raw.max_items_per_component {
        let value = *n.get_ref();
        if value < 1 || value as u64 > MAX_ITEMS_PER_COMPONENT {
            return Err(error(
                n.span(),
                "max_items_per_component",
                format!(
                    "[knowledge] max_items_per_component must be between 1 and {MAX_ITEMS_PER_COMPONENT}, not {value} (default {DEFAULT_MAX_ITEMS_PER_COMPONENT})"
                ),
            ));
        }
        config.max_items_per_component = value as u64;
    }
    if let Some(age) = &raw.max_age {
        if age.get_ref().0.is_zero() {
            return Err(error(
                age.span(),
                "max_age",
                "[knowledge] max_age must be longer than zero, e.g. \"30days\" (default \"90days\")"
                    .into(),
            ));
        }
        config.max_age = age.get_ref().0;
    }
    if let Some(every) = &raw.prune_every {
        if every.get_ref().0 < MIN_PRUNE_EVERY {
            return Err(error(
                every.span(),
                "prune_every",
                "[knowledge] prune_every must be at least \"1s\" (default \"10m\")".into(),
            ));
        }
        config.prune_every = every.get_ref().0;
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::super::FleetConfig;
    use super::*;

    const COMPONENT: &str = "\n[[component]]\nname = \"a\"\ncommand = \"true\"\n";

    #[test]
    fn a_config_without_the_table_gets_the_defaults() {
        let fleet = FleetConfig::parse(COMPONENT, "t", None).unwrap();
        assert_eq!(fleet.knowledge, KnowledgeConfig::default());
    }

    #[test]
    fn keys_are_read_and_a_relative_path_is_resolved_against_the_config() {
        let text = format!(
            "[knowledge]\npath = \"state/k.db\"\nmax_items_per_component = 500\nmax_age = \"7days\"\nprune_every = \"30s\"\n{COMPONENT}"
        );
        let fleet = FleetConfig::parse(&text, "t", Some(Path::new("/etc/hms"))).unwrap();
        assert_eq!(
            fleet.knowledge,
            KnowledgeConfig {
                path: Some(PathBuf::from("/etc/hms/state/k.db")),
                max_items_per_component: 500,
                max_age: Duration::from_secs(7 * 24 * 3600),
                prune_every: Duration::from_secs(30),
            }
        );
    }

    fn config(path: Option<&str>, max: u64) -> KnowledgeConfig {
        KnowledgeConfig {
            path: path.map(PathBuf::from),
            max_items_per_component: max,
            ..KnowledgeConfig::default()
        }
    }

    #[test]
    fn a_reload_takes_the_new_retention_at_once() {
        let running = config(Some("/d/knowledge.db"), 1000);
        let new = KnowledgeConfig {
            max_age: Duration::from_secs(3600),
            prune_every: Duration::from_secs(5),
            ..config(Some("/d/knowledge.db"), 10)
        };
        let reload = on_reload(&running, &new);
        assert!(reload.retention_changed);
        assert_eq!(reload.in_force, new);
        assert_eq!(reload.path_deferred, None);
        // Each key alone counts as a change.
        for changed in [
            config(Some("/d/knowledge.db"), 999),
            KnowledgeConfig {
                max_age: Duration::from_secs(1),
                ..running.clone()
            },
            KnowledgeConfig {
                prune_every: Duration::from_secs(1),
                ..running.clone()
            },
        ] {
            assert!(
                on_reload(&running, &changed).retention_changed,
                "{changed:?}"
            );
        }
    }

    #[test]
    fn an_unchanged_table_changes_nothing() {
        let running = config(None, 1000);
        let reload = on_reload(&running, &running.clone());
        assert!(!reload.retention_changed);
        assert_eq!(reload.path_deferred, None);
        assert_eq!(reload.in_force, running);
    }

    #[test]
    fn a_new_path_waits_for_the_next_start_and_the_retention_still_applies() {
        let running = config(Some("/d/knowledge.db"), 1000);
        let reload = on_reload(&running, &config(Some("/elsewhere/k.db"), 5));
        assert_eq!(reload.in_force, config(Some("/d/knowledge.db"), 5));
        assert!(reload.retention_changed);
        let warning = reload.path_deferred.expect("a warning");
        assert!(warning.contains("/elsewhere/k.db"), "{warning}");
        assert!(
            warning.contains("stays on /d/knowledge.db until the core is restarted"),
            "{warning}"
        );
        // Only the path: the retention is unchanged.
        let only_path = on_reload(&running, &config(Some("/elsewhere/k.db"), 1000));
        assert!(!only_path.retention_changed);
        assert!(only_path.path_deferred.is_some());
    }

    #[test]
    fn the_retention_summary_reads_as_a_sentence() {
        let c = KnowledgeConfig {
            max_items_per_component: 500,
            max_age: Duration::from_secs(7 * 24 * 3600),
            prune_every: Duration::from_secs(30),
            path: None,
        };
        assert_eq!(
            c.retention_summary(),
            "at most 500 items per component, kept 7d 0h, pruned every 30s"
        );
    }
}
