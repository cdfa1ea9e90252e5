//! The config as written: what the TOML deserializes into before any check (every key optional
//! where the file may leave it out, spans kept for error messages), and a TOML error turned into a
//! [`ConfigError`] that names the line, the column, the key and, for a typo, the nearest key.
//!
//! Pure: no defaults are applied here and nothing is checked beyond the TOML's shape.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::{
    ActionConfig, BackoffConfig, BreakerConfig, CommandLine, ConfigDuration, ConfigError,
    ConfigSize, IntensityConfig, LogPattern, ProbeConfig, SignalName, ThresholdsConfig,
};
use crate::model::{HealingLevel, RestartPolicy};
use crate::text::nearest;

/// Fleet-wide defaults: every component key here may be set per component too.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDefaults {
    pub(super) restart: Option<RestartPolicy>,
    pub(super) healing_level: Option<HealingLevel>,
    pub(super) auto_healing: Option<bool>,
    pub(super) circuit_breaker: Option<bool>,
    pub(super) healing_timeout: Option<ConfigDuration>,
    /// Coordinated recovery (`strategy.rs`): fleet-wide only.
    pub(super) strategy: Option<crate::model::RecoveryStrategy>,
    pub(super) plan_timeout: Option<Spanned<ConfigDuration>>,
    pub(super) notify_command: Option<Spanned<String>>,
    pub(super) stop_signal: Option<SignalName>,
    pub(super) stop_grace: Option<ConfigDuration>,
    pub(super) min_uptime: Option<ConfigDuration>,
    pub(super) backoff: Option<BackoffConfig>,
    pub(super) intensity: Option<IntensityConfig>,
    pub(super) breaker: Option<BreakerConfig>,
    pub(super) log_lines: Option<usize>,
    pub(super) log_max_size: Option<Spanned<ConfigSize>>,
    pub(super) log_backups: Option<Spanned<u32>>,
}

/// The core's own bounds (`[limits]`), each optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    pub(super) max_connections: Option<Spanned<usize>>,
    pub(super) hello_timeout: Option<Spanned<ConfigDuration>>,
    pub(super) max_requests_in_flight: Option<Spanned<usize>>,
    pub(super) max_queued_bytes: Option<Spanned<ConfigSize>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawComponent {
    pub(super) name: Spanned<String>,
    pub(super) command: Spanned<CommandLine>,
    #[serde(default)]
    pub(super) cwd: Option<PathBuf>,
    #[serde(default)]
    pub(super) env: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) depends_on: Vec<Spanned<String>>,
    pub(super) restart: Option<RestartPolicy>,
    pub(super) healing_level: Option<HealingLevel>,
    pub(super) auto_healing: Option<bool>,
    pub(super) circuit_breaker: Option<bool>,
    pub(super) healing_timeout: Option<ConfigDuration>,
    pub(super) stop_signal: Option<SignalName>,
    pub(super) stop_grace: Option<ConfigDuration>,
    pub(super) min_uptime: Option<ConfigDuration>,
    pub(super) backoff: Option<BackoffConfig>,
    pub(super) intensity: Option<IntensityConfig>,
    pub(super) breaker: Option<BreakerConfig>,
    pub(super) log_lines: Option<usize>,
    pub(super) log_max_size: Option<Spanned<ConfigSize>>,
    pub(super) log_backups: Option<Spanned<u32>>,
    #[serde(default)]
    pub(super) recovery_actions: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) actions: BTreeMap<String, Spanned<ActionConfig>>,
    pub(super) liveness: Option<Spanned<ProbeConfig>>,
    pub(super) readiness: Option<Spanned<ProbeConfig>>,
    #[serde(default)]
    pub(super) thresholds: ThresholdsConfig,
    #[serde(default)]
    pub(super) log_patterns: Vec<Spanned<LogPattern>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) defaults: RawDefaults,
    #[serde(default)]
    pub(super) limits: RawLimits,
    #[serde(default)]
    pub(super) component: Vec<RawComponent>,
    /// Groups of components recovered together (`strategy.rs`).
    #[serde(default)]
    pub(super) group: Vec<super::strategy::RawGroup>,
    /// The knowledge registry's file and retention (`knowledge.rs`).
    #[serde(default)]
    pub(super) knowledge: super::knowledge::RawKnowledge,
}

/// 1-based line and column of a byte offset.
pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The error for `key` whose value starts at byte `offset` of `file`'s `text`.
pub(super) fn invalid_at(
    text: &str,
    file: &str,
    offset: usize,
    key: &str,
    message: String,
) -> ConfigError {
    let (line, column) = line_col(text, offset);
    ConfigError::Invalid {
        file: file.to_string(),
        line,
        column,
        key: Some(key.to_string()),
        message,
    }
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

pub(super) fn toml_error(text: &str, file: &str, err: &toml::de::Error) -> ConfigError {
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
    // `period = 2`: serde says only that it wanted a string; say which string.
    let message = if message.contains("expected a string")
        && (message.starts_with("invalid type: integer")
            || message.starts_with("invalid type: floating point"))
    {
        format!(
            "{message}: durations and sizes are strings with a unit, e.g. \"2s\", \"500ms\" or \"10MB\""
        )
    } else {
        message
    };
    ConfigError::Invalid {
        file: file.to_string(),
        line,
        column,
        key: key_at(text, span.start),
        message,
    }
}
