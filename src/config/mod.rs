//! The fleet configuration (`hms.toml`) and Procfile import: parsing, defaults and validation.
//!
//! Parsing is strict: an unknown key, a bad duration, a duplicate component, an unknown dependency or a
//! dependency cycle is a [`ConfigError`] that names the file, the line and the key, and says what
//! would be right. Validation is pure: nothing is started or changed here, so a caller can check a
//! new config completely before replacing the one that runs (a bad reload keeps the last good one).
//!
//! - `values.rs`: the typed values a config holds (durations, signals, commands, backoff, probes,
//!   thresholds, log patterns, actions) and their built-in defaults.
//! - `raw.rs`: the TOML as written, before checks, and TOML errors turned into [`ConfigError`]s.
//! - `validate.rs`: the checks, section by section, that turn the raw TOML into a [`FleetConfig`].
//! - `strategy.rs`: coordinated recovery's keys (strategies, groups, plan timeout, notify command).
//! - `procfile.rs`: Procfile import.
//! - `reload.rs`: [`ReloadPlan`], what a reload changes.
//!
//! This file keeps what callers hold: [`ConfigError`], the validated [`FleetConfig`] and
//! [`ComponentSpec`], and [`FleetOrigin`], where a running fleet's config came from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::model::{HealingLevel, RestartPolicy, Severity};

mod knowledge;
mod procfile;
mod raw;
mod reload;
mod strategy;
mod validate;
mod values;

pub use knowledge::{
    DEFAULT_MAX_AGE, DEFAULT_MAX_ITEMS_PER_COMPONENT, DEFAULT_PRUNE_EVERY, KnowledgeConfig,
    KnowledgeReload, on_reload as knowledge_on_reload,
};
pub use reload::ReloadPlan;
pub use strategy::{DEFAULT_PLAN_TIMEOUT, GroupConfig, RecoveryConfig};
pub use values::{
    ActionConfig, BackoffConfig, BreakerConfig, CommandLine, ConfigDuration, ConfigSize,
    IntensityConfig, LogPattern, ProbeConfig, ProbeTarget, SignalName, TcpCheck, Threshold,
    ThresholdsConfig, parse_duration, parse_size, unescape,
};

/// The demo fleet that runs when no config is given, compiled in.
pub const DEMO_FLEET: &str = include_str!("../../assets/demo.toml");

/// The name the demo fleet is reported under in messages.
pub const DEMO_FLEET_NAME: &str = "<embedded demo fleet>";

/// A config that could not be used. Every variant names the file; those about one place in it also
/// name the line, column and key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// A syntax error, an unknown key or a value of the wrong kind.
    #[error("{file}:{line}:{column}: {key_part}{message}", key_part = key_prefix(.key))]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        key: Option<String>,
        message: String,
    },
    /// The config has no components at all.
    #[error(
        "{file}: no components: add at least one [[component]] table with a name and a command"
    )]
    Empty { file: String },
}

fn key_prefix(key: &Option<String>) -> String {
    match key {
        Some(k) => format!("key '{k}': "),
        None => String::new(),
    }
}

impl ConfigError {
    /// The 1-based line the error is about, if it is about one place.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::Invalid { line, .. } => Some(*line),
            _ => None,
        }
    }
}

/// One component, with every default applied and every value checked.
#[derive(Debug, Clone)]
pub struct ComponentSpec {
    pub name: String,
    pub command: CommandLine,
    /// Resolved against the config file's directory.
    pub cwd: Option<PathBuf>,
    pub env: BTreeMap<String, String>,
    pub depends_on: Vec<String>,
    pub restart: RestartPolicy,
    pub healing_level: HealingLevel,
    pub auto_healing: bool,
    pub circuit_breaker: bool,
    pub healing_timeout: Duration,
    pub stop_signal: nix::sys::signal::Signal,
    pub stop_grace: Duration,
    pub min_uptime: Duration,
    pub backoff: BackoffConfig,
    pub intensity: IntensityConfig,
    pub breaker: BreakerConfig,
    /// How many output lines the core keeps in memory for `logs`.
    pub log_lines: usize,
    /// The size in bytes at which the component's log file is rotated; 0: never rotated.
    /// Either 0 or at least [`MIN_LOG_MAX_SIZE`].
    pub log_max_size: u64,
    /// How many rotated log files are kept (`name.log.1` … `name.log.N`); 0: the file is cut
    /// and nothing is kept. At most [`MAX_LOG_BACKUPS`].
    pub log_backups: u32,
    /// Recovery actions in the order the healing engine tries them.
    pub recovery_actions: Vec<String>,
    /// How custom actions are carried out (built-in ones — restart, stop, start — need no entry).
    pub actions: BTreeMap<String, ActionConfig>,
    pub liveness: Option<ProbeConfig>,
    pub readiness: Option<ProbeConfig>,
    pub thresholds: ThresholdsConfig,
    pub log_patterns: Vec<CompiledLogPattern>,
}

impl ComponentSpec {
    /// True when `other` would run and heal the same way. Compared through `Debug` because the
    /// compiled regexes have no `PartialEq`; their `Debug` is their pattern, and every map here is
    /// ordered, so equal specs print equally.
    pub fn same_as(&self, other: &ComponentSpec) -> bool {
        format!("{self:?}") == format!("{other:?}")
    }
}

/// The size at which a component's log file is rotated unless the config says otherwise (as
/// supervisord's `logfile_maxbytes`).
pub const DEFAULT_LOG_MAX_SIZE: u64 = 10 * 1024 * 1024;

/// How many rotated log files are kept unless the config says otherwise (supervisord keeps 10;
/// three is enough to read back past a flood and bounds the disk at four times the size).
pub const DEFAULT_LOG_BACKUPS: u32 = 3;

/// The smallest rotation size other than 0: below it a file would rotate every few lines.
pub const MIN_LOG_MAX_SIZE: u64 = 1024;

/// The most rotated log files a component may keep.
pub const MAX_LOG_BACKUPS: u32 = 100;

/// The core's bounds on what its clients can make it hold (`[limits]`), plain data: the core
/// maps them onto its connection limits. Each has a default that a config may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Client connections open at once; one more is told so and closed. At least 1.
    pub max_connections: usize,
    /// A connection that has not said hello by then is closed. Longer than zero.
    pub hello_timeout: Duration,
    /// Requests of one connection handled at once; the next line is read only when there is
    /// room. At least 1.
    pub max_requests_in_flight: usize,
    /// Bytes waiting to be written to one connection; past it events are dropped (and the
    /// client told). Between [`Limits::MIN_QUEUED_BYTES`] and [`Limits::MAX_QUEUED_BYTES`].
    pub max_queued_bytes: usize,
}

impl Limits {
    /// The smallest per-connection queue: smaller ones would drop events all the time.
    pub const MIN_QUEUED_BYTES: u64 = 64 * 1024;
    /// The largest per-connection queue.
    pub const MAX_QUEUED_BYTES: u64 = 1024 * 1024 * 1024;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            hello_timeout: Duration::from_secs(5),
            max_requests_in_flight: 32,
            max_queued_bytes: 4 * 1024 * 1024,
        }
    }
}

/// A log pattern with its regex compiled.
#[derive(Debug, Clone)]
pub struct CompiledLogPattern {
    pub regex: regex::Regex,
    pub issue_type: String,
    pub severity: Severity,
}

/// Where a running fleet's config came from, so it can be read again on reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FleetOrigin {
    /// The embedded demo fleet.
    Demo,
    /// An `hms.toml`.
    Toml(PathBuf),
    /// A Procfile.
    Procfile(PathBuf),
}

impl FleetOrigin {
    /// Reads and validates the config again.
    pub fn load(&self) -> Result<FleetConfig, ConfigError> {
        match self {
            FleetOrigin::Demo => Ok(FleetConfig::demo()),
            FleetOrigin::Toml(p) => FleetConfig::load(p),
            FleetOrigin::Procfile(p) => FleetConfig::from_procfile(p),
        }
    }

    /// The file to watch, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            FleetOrigin::Demo => None,
            FleetOrigin::Toml(p) | FleetOrigin::Procfile(p) => Some(p),
        }
    }
}

/// A whole fleet: components in a valid start order (every component after its dependencies).
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// Where it came from: a path, or [`DEMO_FLEET_NAME`].
    pub source: String,
    pub components: Vec<ComponentSpec>,
    /// The core's bounds (`[limits]`); a Procfile or a config without the table gets the
    /// defaults.
    pub limits: Limits,
    /// Coordinated recovery: strategies, plan timeout, notify command.
    pub recovery: RecoveryConfig,
    /// The knowledge registry's file and retention (`[knowledge]`). The retention applies again on
    /// a reload; the file is the one the core started with (see [`knowledge_on_reload`]).
    pub knowledge: KnowledgeConfig,
}

impl FleetConfig {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<FleetConfig, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        let base = path.parent().map(Path::to_path_buf);
        FleetConfig::parse(&text, &file, base.as_deref())
    }

    /// The embedded demo fleet.
    pub fn demo() -> FleetConfig {
        FleetConfig::parse(DEMO_FLEET, DEMO_FLEET_NAME, None)
            .expect("the embedded demo fleet is valid (checked by a unit test)")
    }

    /// Parses and validates config text. `file` names it in errors; relative `cwd`s are resolved
    /// against `base_dir`.
    pub fn parse(
        text: &str,
        file: &str,
        base_dir: Option<&Path>,
    ) -> Result<FleetConfig, ConfigError> {
        let raw: raw::RawConfig =
            toml::from_str(text).map_err(|e| raw::toml_error(text, file, &e))?;
        validate::validate(raw, text, file, base_dir)
    }

    pub fn get(&self, name: &str) -> Option<&ComponentSpec> {
        self.components.iter().find(|c| c.name == name)
    }

    pub fn names(&self) -> Vec<String> {
        self.components.iter().map(|c| c.name.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_fleet_is_valid_and_has_at_least_four_components() {
        let fleet = FleetConfig::demo();
        assert!(fleet.components.len() >= 4, "{:?}", fleet.names());
    }

    #[test]
    fn a_config_without_bounds_gets_the_defaults() {
        let fleet = FleetConfig::parse(
            "[[component]]\nname = \"a\"\ncommand = \"true\"\n",
            "t",
            None,
        )
        .unwrap();
        assert_eq!(fleet.limits, Limits::default());
        let a = fleet.get("a").unwrap();
        assert_eq!(a.log_max_size, 10 * 1024 * 1024);
        assert_eq!(a.log_backups, 3);
    }
}
