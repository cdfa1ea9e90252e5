//! Procfile import (foreman/overmind format: `name: command` per line, `#` comments): each line
//! becomes a `[[component]]` table, and the result is validated like any `hms.toml`.
//!
//! Reading the file in [`FleetConfig::from_procfile`] is its only I/O.

use std::collections::HashMap;
use std::path::Path;

use super::{ConfigError, FleetConfig};
use crate::text::{NAME_RULE, valid_name};

impl FleetConfig {
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
                    "invalid process name \"{name}\": {NAME_RULE}"
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
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn a_process_named_like_a_flag_is_refused() {
        let err = FleetConfig::parse_procfile("web: true\n-rf: true\n", "Procfile", None)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "Procfile:2:1: invalid process name \"-rf\": use 1-64 letters, digits, '-', '_' or '.', and do not start with '-' or '.'"
        );
    }
}
