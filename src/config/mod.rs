//! The fleet configuration (`hms.toml`) and Procfile import: parsing, defaults and validation.
//!
//! Parsing is strict: an unknown key, a bad duration, a duplicate component, an unknown dependency or a
//! dependency cycle is a [`ConfigError`] that names the file, the line and the key, and says what
//! would be right. Validation is pure: nothing is started or changed here, so a caller can check a
//! new config completely before replacing the one that runs (a bad reload keeps the last good one).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use toml::Spanned;

use crate::model::{HealingLevel, RestartPolicy, Severity};
use crate::text::{nearest, valid_name};

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

/// A duration written with a unit, e.g. `"250ms"`, `"2s"`, `"1m 30s"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConfigDuration(pub Duration);

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text)
            .map(ConfigDuration)
            .map_err(serde::de::Error::custom)
    }
}

/// Parses a duration with a unit; a bare number is refused because `5` could mean anything.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(format!(
            "invalid duration \"{text}\": a unit is required, e.g. \"{t}s\" or \"{t}ms\""
        ));
    }
    humantime::parse_duration(t).map_err(|e| {
        format!("invalid duration \"{text}\" ({e}): write a number with a unit, e.g. \"500ms\", \"2s\", \"1m\"")
    })
}

/// A signal name as written in config: `TERM`, `SIGTERM`, `hup` …
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignalName(pub nix::sys::signal::Signal);

impl<'de> Deserialize<'de> for SignalName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl FromStr for SignalName {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let upper = text.trim().to_ascii_uppercase();
        let full = if upper.starts_with("SIG") {
            upper
        } else {
            format!("SIG{upper}")
        };
        nix::sys::signal::Signal::from_str(&full)
            .map(SignalName)
            .map_err(|_| {
                format!(
                    "unknown signal \"{text}\": use a name such as TERM, INT, HUP, QUIT, KILL, USR1"
                )
            })
    }
}

impl fmt::Display for SignalName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str().trim_start_matches("SIG"))
    }
}

/// `command` is either an argv list (run as is) or a string (run through `sh -c`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum CommandLine {
    Shell(String),
    Argv(Vec<String>),
}

impl CommandLine {
    /// The argv to exec.
    pub fn argv(&self) -> Vec<String> {
        match self {
            CommandLine::Shell(s) => vec!["sh".into(), "-c".into(), s.clone()],
            CommandLine::Argv(v) => v.clone(),
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            CommandLine::Shell(s) => s.trim().is_empty(),
            CommandLine::Argv(v) => v.first().is_none_or(|p| p.trim().is_empty()),
        }
    }
}

impl fmt::Display for CommandLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandLine::Shell(s) => f.write_str(s),
            CommandLine::Argv(v) => f.write_str(&v.join(" ")),
        }
    }
}

/// Backoff between automatic restarts of a component that keeps failing.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackoffConfig {
    #[serde(default = "BackoffConfig::default_initial")]
    pub initial: ConfigDuration,
    #[serde(default = "BackoffConfig::default_max")]
    pub max: ConfigDuration,
    #[serde(default = "BackoffConfig::default_factor")]
    pub factor: f64,
}

impl BackoffConfig {
    fn default_initial() -> ConfigDuration {
        ConfigDuration(Duration::from_millis(100))
    }
    fn default_max() -> ConfigDuration {
        ConfigDuration(Duration::from_secs(30))
    }
    fn default_factor() -> f64 {
        2.0
    }
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            initial: Self::default_initial(),
            max: Self::default_max(),
            factor: Self::default_factor(),
        }
    }
}

/// OTP's restart intensity: more than `max_restarts` automatic restarts within `window` opens the
/// circuit breaker. The defaults are systemd's StartLimitBurst=5 / StartLimitIntervalSec=10s.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntensityConfig {
    #[serde(default = "IntensityConfig::default_max")]
    pub max_restarts: u32,
    #[serde(default = "IntensityConfig::default_window")]
    pub window: ConfigDuration,
}

impl IntensityConfig {
    fn default_max() -> u32 {
        5
    }
    fn default_window() -> ConfigDuration {
        ConfigDuration(Duration::from_secs(10))
    }
}

impl Default for IntensityConfig {
    fn default() -> Self {
        IntensityConfig {
            max_restarts: Self::default_max(),
            window: Self::default_window(),
        }
    }
}

/// The circuit breaker's cooldown before its half-open trial; it doubles on each reopening, up to
/// `max_cooldown`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerConfig {
    #[serde(default = "BreakerConfig::default_cooldown")]
    pub cooldown: ConfigDuration,
    #[serde(default = "BreakerConfig::default_max_cooldown")]
    pub max_cooldown: ConfigDuration,
}

impl BreakerConfig {
    fn default_cooldown() -> ConfigDuration {
        ConfigDuration(Duration::from_secs(30))
    }
    fn default_max_cooldown() -> ConfigDuration {
        ConfigDuration(Duration::from_secs(600))
    }
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            cooldown: Self::default_cooldown(),
            max_cooldown: Self::default_max_cooldown(),
        }
    }
}

/// A liveness or readiness probe: exactly one of `exec`, `tcp`, `http`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    #[serde(default)]
    pub exec: Option<Vec<String>>,
    #[serde(default)]
    pub tcp: Option<String>,
    #[serde(default)]
    pub http: Option<String>,
    /// For `http`: the status that counts as success (default: any 2xx or 3xx).
    #[serde(default)]
    pub expect_status: Option<u16>,
    #[serde(default = "ProbeConfig::default_period")]
    pub period: ConfigDuration,
    #[serde(default = "ProbeConfig::default_timeout")]
    pub timeout: ConfigDuration,
    #[serde(default = "ProbeConfig::default_initial_delay")]
    pub initial_delay: ConfigDuration,
    #[serde(default = "ProbeConfig::default_failure_threshold")]
    pub failure_threshold: u32,
    #[serde(default = "ProbeConfig::default_success_threshold")]
    pub success_threshold: u32,
}

impl ProbeConfig {
    fn default_period() -> ConfigDuration {
        ConfigDuration(Duration::from_secs(10))
    }
    fn default_timeout() -> ConfigDuration {
        ConfigDuration(Duration::from_secs(1))
    }
    fn default_initial_delay() -> ConfigDuration {
        ConfigDuration(Duration::ZERO)
    }
    fn default_failure_threshold() -> u32 {
        3
    }
    fn default_success_threshold() -> u32 {
        1
    }

    /// What the probe checks.
    pub fn target(&self) -> ProbeTarget {
        if let Some(argv) = &self.exec {
            ProbeTarget::Exec(argv.clone())
        } else if let Some(addr) = &self.tcp {
            ProbeTarget::Tcp(addr.clone())
        } else {
            ProbeTarget::Http {
                url: self.http.clone().unwrap_or_default(),
                expect_status: self.expect_status,
            }
        }
    }
}

/// The kind of check a probe makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeTarget {
    Exec(Vec<String>),
    Tcp(String),
    Http {
        url: String,
        expect_status: Option<u16>,
    },
}

/// Two levels for one metric: at or above `degraded` the component is Degraded, at or above
/// `critical` it is Critical.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    #[serde(default)]
    pub degraded: Option<f64>,
    #[serde(default)]
    pub critical: Option<f64>,
}

/// Metric thresholds (guide §2: metrics feed health).
#[derive(Debug, Clone, Copy, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdsConfig {
    /// Percent of one core.
    #[serde(default)]
    pub cpu_percent: Option<Threshold>,
    /// Resident memory in MiB.
    #[serde(default)]
    pub rss_mb: Option<Threshold>,
    /// Percent, as reported by a linked component.
    #[serde(default)]
    pub error_rate: Option<Threshold>,
    /// Milliseconds, as reported by a linked component.
    #[serde(default)]
    pub response_time_ms: Option<Threshold>,
}

/// A regular expression over output lines that turns a symptom into an Issue.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogPattern {
    pub regex: String,
    pub issue_type: String,
    #[serde(default = "LogPattern::default_severity")]
    pub severity: Severity,
}

impl LogPattern {
    fn default_severity() -> Severity {
        Severity::Warning
    }
}

/// How a custom recovery action is carried out: a command, or a signal to the component.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionConfig {
    #[serde(default)]
    pub command: Option<CommandLine>,
    #[serde(default)]
    pub signal: Option<SignalName>,
    /// How long the command may run.
    #[serde(default)]
    pub timeout: Option<ConfigDuration>,
}

/// Fleet-wide defaults: every component key here may be set per component too.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    restart: Option<RestartPolicy>,
    healing_level: Option<HealingLevel>,
    auto_healing: Option<bool>,
    circuit_breaker: Option<bool>,
    healing_timeout: Option<ConfigDuration>,
    stop_signal: Option<SignalName>,
    stop_grace: Option<ConfigDuration>,
    min_uptime: Option<ConfigDuration>,
    backoff: Option<BackoffConfig>,
    intensity: Option<IntensityConfig>,
    breaker: Option<BreakerConfig>,
    log_lines: Option<usize>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComponent {
    name: Spanned<String>,
    command: Spanned<CommandLine>,
    #[serde(default)]
    cwd: Option<PathBuf>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    depends_on: Vec<Spanned<String>>,
    restart: Option<RestartPolicy>,
    healing_level: Option<HealingLevel>,
    auto_healing: Option<bool>,
    circuit_breaker: Option<bool>,
    healing_timeout: Option<ConfigDuration>,
    stop_signal: Option<SignalName>,
    stop_grace: Option<ConfigDuration>,
    min_uptime: Option<ConfigDuration>,
    backoff: Option<BackoffConfig>,
    intensity: Option<IntensityConfig>,
    breaker: Option<BreakerConfig>,
    log_lines: Option<usize>,
    #[serde(default)]
    recovery_actions: Vec<Spanned<String>>,
    #[serde(default)]
    actions: BTreeMap<String, Spanned<ActionConfig>>,
    liveness: Option<Spanned<ProbeConfig>>,
    readiness: Option<Spanned<ProbeConfig>>,
    #[serde(default)]
    thresholds: ThresholdsConfig,
    #[serde(default)]
    log_patterns: Vec<Spanned<LogPattern>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default)]
    component: Vec<RawComponent>,
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
        let raw: RawConfig = toml::from_str(text).map_err(|e| toml_error(text, file, &e))?;
        validate(raw, text, file, base_dir)
    }

    /// Imports a Procfile (foreman/overmind format: `name: command` per line, `#` comments).
    pub fn from_procfile(path: &Path) -> Result<FleetConfig, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        FleetConfig::parse_procfile(&text, &file, path.parent())
    }

    /// Parses Procfile text.
    pub fn parse_procfile(
        text: &str,
        file: &str,
        base_dir: Option<&Path>,
    ) -> Result<FleetConfig, ConfigError> {
        let mut toml_text = String::new();
        let mut lines_seen: HashMap<String, usize> = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let invalid = |message: String| ConfigError::Invalid {
                file: file.to_string(),
                line: i + 1,
                column: 1,
                key: None,
                message,
            };
            let Some((name, command)) = trimmed.split_once(':') else {
                return Err(invalid(format!(
                    "expected `name: command`, found \"{trimmed}\""
                )));
            };
            let name = name.trim();
            if !valid_name(name) {
                return Err(invalid(format!(
                    "invalid process name \"{name}\": use letters, digits, '-' and '_'"
                )));
            }
            if let Some(first) = lines_seen.insert(name.to_string(), i + 1) {
                return Err(invalid(format!(
                    "duplicate process name \"{name}\" (first defined on line {first})"
                )));
            }
            if command.trim().is_empty() {
                return Err(invalid(format!("process \"{name}\" has no command")));
            }
            toml_text.push_str(&format!(
                "[[component]]\nname = {}\ncommand = {}\n",
                toml_string(name),
                toml_string(command.trim())
            ));
        }
        if toml_text.is_empty() {
            return Err(ConfigError::Empty {
                file: file.to_string(),
            });
        }
        FleetConfig::parse(&toml_text, file, base_dir)
    }

    pub fn get(&self, name: &str) -> Option<&ComponentSpec> {
        self.components.iter().find(|c| c.name == name)
    }

    pub fn names(&self) -> Vec<String> {
        self.components.iter().map(|c| c.name.clone()).collect()
    }
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The key written on the line of a byte offset, e.g. `stop_grace` in `stop_grace = "5 parsecs"`.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next().unwrap_or("");
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    (!key.is_empty() && !key.starts_with('[')).then(|| key.to_string())
}

fn toml_error(text: &str, file: &str, err: &toml::de::Error) -> ConfigError {
    let span = err.span().unwrap_or(0..0);
    let (line, column) = line_col(text, span.start);
    let message = err.message().trim().to_string();
    if let Some(field) = message
        .strip_prefix("unknown field `")
        .and_then(|m| m.split('`').next())
    {
        let field = field.to_string();
        let known: Vec<String> = message
            .split_once("expected")
            .map(|(_, k)| {
                k.split('`')
                    .enumerate()
                    .filter(|(i, _)| i % 2 == 1)
                    .map(|(_, name)| name.to_string())
                    .collect()
            })
            .unwrap_or_default();
        let message = match nearest(&field, known.iter().map(String::as_str)) {
            Some(near) => format!(
                "unknown key \"{field}\" — did you mean \"{near}\"? (known keys: {})",
                known.join(", ")
            ),
            None if !known.is_empty() => {
                format!("unknown key \"{field}\" (known keys: {})", known.join(", "))
            }
            None => format!("unknown key \"{field}\""),
        };
        return ConfigError::Invalid {
            file: file.to_string(),
            line,
            column,
            key: Some(field),
            message,
        };
    }
    ConfigError::Invalid {
        file: file.to_string(),
        line,
        column,
        key: key_at(text, span.start),
        message,
    }
}

fn validate(
    raw: RawConfig,
    text: &str,
    file: &str,
    base_dir: Option<&Path>,
) -> Result<FleetConfig, ConfigError> {
    let at = |span: std::ops::Range<usize>, key: &str, message: String| {
        let (line, column) = line_col(text, span.start);
        ConfigError::Invalid {
            file: file.to_string(),
            line,
            column,
            key: Some(key.to_string()),
            message,
        }
    };
    if raw.component.is_empty() {
        return Err(ConfigError::Empty {
            file: file.to_string(),
        });
    }
    let d = raw.defaults;
    let mut specs = Vec::with_capacity(raw.component.len());
    let mut first_line: HashMap<String, usize> = HashMap::new();
    for c in raw.component {
        let name = c.name.get_ref().clone();
        if !valid_name(&name) {
            return Err(at(
                c.name.span(),
                "name",
                format!(
                    "invalid component name \"{name}\": use 1-64 letters, digits, '-', '_' or '.'"
                ),
            ));
        }
        let line = line_col(text, c.name.span().start).0;
        if let Some(first) = first_line.insert(name.clone(), line) {
            return Err(at(
                c.name.span(),
                "name",
                format!(
                    "duplicate component \"{name}\" (first defined on line {first}); names must be unique"
                ),
            ));
        }
        if c.command.get_ref().is_empty() {
            return Err(at(
                c.command.span(),
                "command",
                format!("component \"{name}\" has an empty command"),
            ));
        }
        let backoff = c.backoff.or(d.backoff).unwrap_or_default();
        if backoff.factor < 1.0 || !backoff.factor.is_finite() {
            return Err(at(
                c.name.span(),
                "backoff.factor",
                format!(
                    "component \"{name}\": backoff factor must be at least 1.0, found {}",
                    backoff.factor
                ),
            ));
        }
        if backoff.initial.0 > backoff.max.0 {
            return Err(at(
                c.name.span(),
                "backoff",
                format!("component \"{name}\": backoff.initial must not exceed backoff.max"),
            ));
        }
        let intensity = c.intensity.or(d.intensity).unwrap_or_default();
        if intensity.window.0.is_zero() {
            return Err(at(
                c.name.span(),
                "intensity.window",
                format!("component \"{name}\": the intensity window must be longer than zero"),
            ));
        }
        let recovery_actions: Vec<String> = c
            .recovery_actions
            .iter()
            .map(|a| a.get_ref().clone())
            .collect();
        let mut actions = BTreeMap::new();
        for (action, cfg) in &c.actions {
            let inner = cfg.get_ref();
            if inner.command.is_some() == inner.signal.is_some() {
                return Err(at(
                    cfg.span(),
                    &format!("actions.{action}"),
                    format!("action \"{action}\" needs exactly one of `command` or `signal`"),
                ));
            }
            actions.insert(action.clone(), inner.clone());
        }
        for a in &c.recovery_actions {
            let a_name = a.get_ref();
            let builtin = matches!(a_name.as_str(), "restart" | "stop" | "start");
            if !builtin && !actions.contains_key(a_name) {
                return Err(at(
                    a.span(),
                    "recovery_actions",
                    format!(
                        "recovery action \"{a_name}\" of \"{name}\" is not built in (restart, stop, start) and has no [component.actions.{a_name}] table saying how to carry it out"
                    ),
                ));
            }
        }
        for (key, probe) in [("liveness", &c.liveness), ("readiness", &c.readiness)] {
            if let Some(p) = probe {
                let inner = p.get_ref();
                let kinds = [
                    inner.exec.is_some(),
                    inner.tcp.is_some(),
                    inner.http.is_some(),
                ]
                .iter()
                .filter(|x| **x)
                .count();
                if kinds != 1 {
                    return Err(at(
                        p.span(),
                        key,
                        format!(
                            "{key} probe of \"{name}\" needs exactly one of `exec`, `tcp` or `http`"
                        ),
                    ));
                }
                if inner.exec.as_ref().is_some_and(|v| v.is_empty()) {
                    return Err(at(
                        p.span(),
                        key,
                        format!("{key} probe of \"{name}\": `exec` is empty"),
                    ));
                }
                if let Some(addr) = &inner.tcp
                    && addr
                        .rsplit_once(':')
                        .and_then(|(_, port)| port.parse::<u16>().ok())
                        .is_none()
                {
                    return Err(at(
                        p.span(),
                        key,
                        format!(
                            "{key} probe of \"{name}\": tcp address \"{addr}\" needs a host and a port, e.g. \"127.0.0.1:6379\""
                        ),
                    ));
                }
                if let Some(url) = &inner.http
                    && !url.starts_with("http://")
                {
                    return Err(at(
                        p.span(),
                        key,
                        format!(
                            "{key} probe of \"{name}\": url \"{url}\" must start with http:// (https is not supported for probes)"
                        ),
                    ));
                }
                if inner.failure_threshold == 0 || inner.success_threshold == 0 {
                    return Err(at(
                        p.span(),
                        key,
                        format!("{key} probe of \"{name}\": thresholds must be at least 1"),
                    ));
                }
                if inner.period.0.is_zero() {
                    return Err(at(
                        p.span(),
                        key,
                        format!("{key} probe of \"{name}\": period must be longer than zero"),
                    ));
                }
            }
        }
        let mut log_patterns = Vec::new();
        for p in &c.log_patterns {
            let inner = p.get_ref();
            let regex = regex::Regex::new(&inner.regex).map_err(|e| {
                at(
                    p.span(),
                    "log_patterns.regex",
                    format!(
                        "invalid regex \"{}\": {}",
                        inner.regex,
                        first_line_of(&e.to_string())
                    ),
                )
            })?;
            log_patterns.push(CompiledLogPattern {
                regex,
                issue_type: inner.issue_type.clone(),
                severity: inner.severity,
            });
        }
        let cwd = c.cwd.map(|p| match base_dir {
            Some(base) if p.is_relative() => base.join(p),
            _ => p,
        });
        specs.push((
            c.name.span(),
            c.depends_on.clone(),
            ComponentSpec {
                name: name.clone(),
                command: c.command.into_inner(),
                cwd,
                env: c.env,
                depends_on: c.depends_on.iter().map(|x| x.get_ref().clone()).collect(),
                restart: c.restart.or(d.restart).unwrap_or_default(),
                healing_level: c.healing_level.or(d.healing_level).unwrap_or_default(),
                auto_healing: c.auto_healing.or(d.auto_healing).unwrap_or(true),
                circuit_breaker: c.circuit_breaker.or(d.circuit_breaker).unwrap_or(true),
                healing_timeout: c
                    .healing_timeout
                    .or(d.healing_timeout)
                    .map_or(Duration::from_secs(30), |x| x.0),
                stop_signal: c
                    .stop_signal
                    .or(d.stop_signal)
                    .map_or(nix::sys::signal::Signal::SIGTERM, |s| s.0),
                stop_grace: c
                    .stop_grace
                    .or(d.stop_grace)
                    .map_or(Duration::from_secs(5), |x| x.0),
                min_uptime: c
                    .min_uptime
                    .or(d.min_uptime)
                    .map_or(Duration::from_secs(1), |x| x.0),
                backoff,
                intensity,
                breaker: c.breaker.or(d.breaker).unwrap_or_default(),
                log_lines: c
                    .log_lines
                    .or(d.log_lines)
                    .unwrap_or(1000)
                    .clamp(10, 100_000),
                recovery_actions,
                actions,
                liveness: c.liveness.map(Spanned::into_inner),
                readiness: c.readiness.map(Spanned::into_inner),
                thresholds: c.thresholds,
                log_patterns,
            },
        ));
    }
    // Unknown dependencies, then cycles.
    let names: HashMap<String, usize> = specs
        .iter()
        .enumerate()
        .map(|(i, (_, _, s))| (s.name.clone(), i))
        .collect();
    for (_, deps, spec) in &specs {
        for dep in deps {
            if !names.contains_key(dep.get_ref()) {
                let mut known: Vec<&str> = names.keys().map(String::as_str).collect();
                known.sort();
                let hint = nearest(dep.get_ref(), known.iter().copied())
                    .map(|n| format!(" — did you mean \"{n}\"?"))
                    .unwrap_or_default();
                return Err(at(
                    dep.span(),
                    "depends_on",
                    format!(
                        "\"{}\" depends on unknown component \"{}\"{hint} (known components: {})",
                        spec.name,
                        dep.get_ref(),
                        known.join(", ")
                    ),
                ));
            }
            if dep.get_ref() == &spec.name {
                return Err(at(
                    dep.span(),
                    "depends_on",
                    format!("\"{}\" depends on itself", spec.name),
                ));
            }
        }
    }
    let order = match start_order(&specs.iter().map(|(_, _, s)| s).collect::<Vec<_>>()) {
        Ok(order) => order,
        Err(cycle) => {
            let first = names[&cycle[0]];
            return Err(at(
                specs[first].0.clone(),
                "depends_on",
                format!("dependency cycle: {}", cycle.join(" -> ")),
            ));
        }
    };
    let mut by_index: Vec<Option<ComponentSpec>> =
        specs.into_iter().map(|(_, _, s)| Some(s)).collect();
    let components = order
        .into_iter()
        .map(|i| {
            by_index[i]
                .take()
                .expect("start_order yields each index once")
        })
        .collect();
    Ok(FleetConfig {
        source: file.to_string(),
        components,
    })
}

fn first_line_of(s: &str) -> String {
    s.lines().last().unwrap_or(s).trim().to_string()
}

/// A start order in which every component comes after its dependencies, stable with respect to the
/// file's order; or the names along a cycle (first name repeated at the end).
fn start_order(specs: &[&ComponentSpec]) -> Result<Vec<usize>, Vec<String>> {
    let index: HashMap<&str, usize> = specs
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    // 0 = unvisited, 1 = on the stack, 2 = done.
    let mut mark = vec![0u8; specs.len()];
    let mut order = Vec::with_capacity(specs.len());
    let mut stack: Vec<usize> = Vec::new();
    fn visit(
        i: usize,
        specs: &[&ComponentSpec],
        index: &HashMap<&str, usize>,
        mark: &mut [u8],
        order: &mut Vec<usize>,
        stack: &mut Vec<usize>,
    ) -> Result<(), Vec<String>> {
        match mark[i] {
            2 => return Ok(()),
            1 => {
                let from = stack.iter().position(|x| *x == i).unwrap_or(0);
                let mut cycle: Vec<String> = stack[from..]
                    .iter()
                    .map(|x| specs[*x].name.clone())
                    .collect();
                cycle.push(specs[i].name.clone());
                return Err(cycle);
            }
            _ => {}
        }
        mark[i] = 1;
        stack.push(i);
        for dep in &specs[i].depends_on {
            if let Some(&j) = index.get(dep.as_str()) {
                visit(j, specs, index, mark, order, stack)?;
            }
        }
        stack.pop();
        mark[i] = 2;
        order.push(i);
        Ok(())
    }
    for i in 0..specs.len() {
        visit(i, specs, &index, &mut mark, &mut order, &mut stack)?;
    }
    Ok(order)
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
    fn components_start_after_their_dependencies() {
        let fleet = FleetConfig::parse(
            r#"
[[component]]
name = "api"
command = "sleep 1"
depends_on = ["db", "cache"]
[[component]]
name = "cache"
command = "sleep 1"
depends_on = ["db"]
[[component]]
name = "db"
command = ["sleep", "1"]
"#,
            "t.toml",
            None,
        )
        .unwrap();
        assert_eq!(fleet.names(), ["db", "cache", "api"]);
    }

    #[test]
    fn a_string_command_runs_through_sh() {
        assert_eq!(
            CommandLine::Shell("echo hi".into()).argv(),
            ["sh", "-c", "echo hi"]
        );
    }

    #[test]
    fn durations_need_units() {
        assert_eq!(parse_duration("200ms").unwrap(), Duration::from_millis(200));
        assert_eq!(parse_duration("1m 30s").unwrap(), Duration::from_secs(90));
        assert!(
            parse_duration("5")
                .unwrap_err()
                .contains("unit is required")
        );
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn defaults_apply_and_components_override_them() {
        let fleet = FleetConfig::parse(
            r#"
[defaults]
min_uptime = "3s"
backoff = { initial = "50ms", max = "5s", factor = 3.0 }
[[component]]
name = "a"
command = "true"
[[component]]
name = "b"
command = "true"
min_uptime = "10s"
stop_signal = "INT"
"#,
            "t.toml",
            None,
        )
        .unwrap();
        let a = fleet.get("a").unwrap();
        let b = fleet.get("b").unwrap();
        assert_eq!(a.min_uptime, Duration::from_secs(3));
        assert_eq!(a.backoff.factor, 3.0);
        assert_eq!(b.min_uptime, Duration::from_secs(10));
        assert_eq!(b.stop_signal, nix::sys::signal::Signal::SIGINT);
        assert_eq!(a.intensity.max_restarts, 5);
    }

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
    fn procfile_lines_become_components() {
        let fleet = FleetConfig::parse_procfile(
            "# comment\nweb: python3 -m http.server 8000\nworker:   sh -c 'sleep 10'\n",
            "Procfile",
            None,
        )
        .unwrap();
        assert_eq!(fleet.names(), ["web", "worker"]);
        assert_eq!(
            fleet.get("worker").unwrap().command.argv(),
            ["sh", "-c", "sh -c 'sleep 10'"]
        );
        let err = FleetConfig::parse_procfile("web python\n", "Procfile", None).unwrap_err();
        assert_eq!(err.line(), Some(1));
    }
}
