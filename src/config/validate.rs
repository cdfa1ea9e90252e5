//! Validation: the raw TOML of a fleet checked section by section and turned into a
//! [`FleetConfig`], every default applied and the components in a valid start order.
//!
//! Each component is checked in full, section after section, before the next one, and the fleet's
//! dependencies last, so the first error reported is the first one in the file's own order. Every
//! error names the place (file, line, column), the key and what would be right.
//!
//! Pure: nothing is started or read here; the text is only used to locate errors.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use super::raw::{RawComponent, RawConfig, RawDefaults, RawLimits, invalid_at, line_col};
use super::{
    ActionConfig, BackoffConfig, CompiledLogPattern, ComponentSpec, ConfigError, ConfigSize,
    DEFAULT_LOG_BACKUPS, DEFAULT_LOG_MAX_SIZE, FleetConfig, IntensityConfig, Limits,
    MAX_LOG_BACKUPS, MIN_LOG_MAX_SIZE,
};
use crate::text::{NAME_RULE, nearest, valid_name};

/// Checks a parsed config, applies the defaults and orders the components.
pub(super) fn validate(
    raw: RawConfig,
    text: &str,
    file: &str,
    base_dir: Option<&Path>,
) -> Result<FleetConfig, ConfigError> {
    let at = At { text, file };
    if raw.component.is_empty() {
        return Err(ConfigError::Empty {
            file: file.to_string(),
        });
    }
    let RawConfig {
        defaults,
        limits,
        component,
        group,
        knowledge,
    } = raw;
    let limits = check_limits(&limits, &at)?;
    let knowledge = super::knowledge::check(&knowledge, text, file, base_dir)?;
    check_log_files(
        &defaults.log_max_size,
        &defaults.log_backups,
        "[defaults]",
        &at,
    )?;
    let mut entries = Vec::with_capacity(component.len());
    let mut first_line: HashMap<String, usize> = HashMap::new();
    for c in component {
        let name = check_name(&c, &at, &mut first_line)?;
        check_command(&c, &name, &at)?;
        check_log_files(
            &c.log_max_size,
            &c.log_backups,
            &format!("component \"{name}\""),
            &at,
        )?;
        let (backoff, intensity) = restart_limits(&c, &defaults, &name, &at)?;
        let actions = actions(&c, &name, &at)?;
        check_probes(&c, &name, &at)?;
        let log_patterns = log_patterns(&c, &at)?;
        let checked = Checked {
            name,
            backoff,
            intensity,
            actions,
            log_patterns,
        };
        entries.push(with_defaults(c, &defaults, base_dir, checked));
    }
    check_dependencies(&entries, &at)?;
    let names: Vec<&str> = entries.iter().map(|e| e.spec.name.as_str()).collect();
    let recovery = super::strategy::check(&defaults, &group, &names, text, file)?;
    let components = in_start_order(entries, &at)?;
    Ok(FleetConfig {
        source: file.to_string(),
        components,
        limits,
        recovery,
        knowledge,
    })
}

/// Where errors point: the config's text (for line and column) and its file name.
struct At<'a> {
    text: &'a str,
    file: &'a str,
}

impl At<'_> {
    /// An error about `key` at the start of `span`.
    fn error(&self, span: Range<usize>, key: &str, message: String) -> ConfigError {
        invalid_at(self.text, self.file, span.start, key, message)
    }
}

/// What the checks of one component produced, for [`with_defaults`].
struct Checked {
    name: String,
    backoff: BackoffConfig,
    intensity: IntensityConfig,
    actions: BTreeMap<String, ActionConfig>,
    log_patterns: Vec<CompiledLogPattern>,
}

/// A checked component, with what the dependency checks still need from the file.
struct Entry {
    /// Where its name is written: a dependency cycle is reported there.
    name_span: Range<usize>,
    depends_on: Vec<Spanned<String>>,
    spec: ComponentSpec,
}

/// The component's name: well formed, and not taken by an earlier component.
fn check_name(
    c: &RawComponent,
    at: &At,
    first_line: &mut HashMap<String, usize>,
) -> Result<String, ConfigError> {
    let name = c.name.get_ref().clone();
    if !valid_name(&name) {
        return Err(at.error(
            c.name.span(),
            "name",
            format!("invalid component name \"{name}\": {NAME_RULE} (tmux and the CLI would read it as a flag or a target)"),
        ));
    }
    let line = line_col(at.text, c.name.span().start).0;
    if let Some(first) = first_line.insert(name.clone(), line) {
        return Err(at.error(
            c.name.span(),
            "name",
            format!(
                "duplicate component \"{name}\" (first defined on line {first}); names must be unique"
            ),
        ));
    }
    Ok(name)
}

/// The command: not empty.
fn check_command(c: &RawComponent, name: &str, at: &At) -> Result<(), ConfigError> {
    if c.command.get_ref().is_empty() {
        return Err(at.error(
            c.command.span(),
            "command",
            format!("component \"{name}\" has an empty command"),
        ));
    }
    Ok(())
}

/// Log rotation, where it is written (`whose`: `[defaults]` or `component "x"`): a size of 0
/// (never rotate) or at least [`MIN_LOG_MAX_SIZE`], and at most [`MAX_LOG_BACKUPS`] backups.
fn check_log_files(
    max_size: &Option<Spanned<ConfigSize>>,
    backups: &Option<Spanned<u32>>,
    whose: &str,
    at: &At,
) -> Result<(), ConfigError> {
    if let Some(size) = max_size
        && size.get_ref().0 != 0
        && size.get_ref().0 < MIN_LOG_MAX_SIZE
    {
        return Err(at.error(
            size.span(),
            "log_max_size",
            format!(
                "{whose}: a log_max_size of {} bytes would rotate every few lines; use 0 (never rotate) or at least 1KB, e.g. \"10MB\"",
                size.get_ref().0
            ),
        ));
    }
    if let Some(n) = backups
        && *n.get_ref() > MAX_LOG_BACKUPS
    {
        return Err(at.error(
            n.span(),
            "log_backups",
            format!(
                "{whose}: log_backups = {} is more than {MAX_LOG_BACKUPS}; keep at most {MAX_LOG_BACKUPS} rotated files (0 keeps none)",
                n.get_ref()
            ),
        ));
    }
    Ok(())
}

/// The core's bounds: counts of at least 1, a hello timeout longer than zero, and a queue per
/// connection within [`Limits::MIN_QUEUED_BYTES`] and [`Limits::MAX_QUEUED_BYTES`].
fn check_limits(raw: &RawLimits, at: &At) -> Result<Limits, ConfigError> {
    let mut limits = Limits::default();
    for (key, value, field) in [
        (
            "max_connections",
            &raw.max_connections,
            &mut limits.max_connections,
        ),
        (
            "max_requests_in_flight",
            &raw.max_requests_in_flight,
            &mut limits.max_requests_in_flight,
        ),
    ] {
        if let Some(v) = value {
            if *v.get_ref() == 0 {
                return Err(at.error(
                    v.span(),
                    key,
                    format!("[limits] {key} must be at least 1 (default {})", *field),
                ));
            }
            *field = *v.get_ref();
        }
    }
    if let Some(t) = &raw.hello_timeout {
        if t.get_ref().0.is_zero() {
            return Err(at.error(
                t.span(),
                "hello_timeout",
                "[limits] hello_timeout must be longer than zero (default \"5s\")".to_string(),
            ));
        }
        limits.hello_timeout = t.get_ref().0;
    }
    if let Some(q) = &raw.max_queued_bytes {
        let bytes = q.get_ref().0;
        if !(Limits::MIN_QUEUED_BYTES..=Limits::MAX_QUEUED_BYTES).contains(&bytes) {
            return Err(at.error(
                q.span(),
                "max_queued_bytes",
                format!(
                    "[limits] max_queued_bytes of {bytes} bytes is out of range; use 64KB to 1GB (default \"4MB\")"
                ),
            ));
        }
        limits.max_queued_bytes =
            usize::try_from(bytes).expect("at most 1 GiB, which fits a usize");
    }
    Ok(limits)
}

/// Backoff and restart intensity, the fleet's defaults applied: a backoff that does not shrink,
/// an initial delay within its maximum, and an intensity window longer than zero.
fn restart_limits(
    c: &RawComponent,
    d: &RawDefaults,
    name: &str,
    at: &At,
) -> Result<(BackoffConfig, IntensityConfig), ConfigError> {
    let backoff = c.backoff.or(d.backoff).unwrap_or_default();
    if backoff.factor < 1.0 || !backoff.factor.is_finite() {
        return Err(at.error(
            c.name.span(),
            "backoff.factor",
            format!(
                "component \"{name}\": backoff factor must be at least 1.0, found {}",
                backoff.factor
            ),
        ));
    }
    if backoff.initial.0 > backoff.max.0 {
        return Err(at.error(
            c.name.span(),
            "backoff",
            format!("component \"{name}\": backoff.initial must not exceed backoff.max"),
        ));
    }
    let intensity = c.intensity.or(d.intensity).unwrap_or_default();
    if intensity.window.0.is_zero() {
        return Err(at.error(
            c.name.span(),
            "intensity.window",
            format!("component \"{name}\": the intensity window must be longer than zero"),
        ));
    }
    Ok((backoff, intensity))
}

/// Custom actions (each exactly one of a command or a signal), and recovery actions that are
/// either built in or one of them.
fn actions(
    c: &RawComponent,
    name: &str,
    at: &At,
) -> Result<BTreeMap<String, ActionConfig>, ConfigError> {
    let mut actions = BTreeMap::new();
    for (action, cfg) in &c.actions {
        let inner = cfg.get_ref();
        if inner.command.is_some() == inner.signal.is_some() {
            return Err(at.error(
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
            return Err(at.error(
                a.span(),
                "recovery_actions",
                format!(
                    "recovery action \"{a_name}\" of \"{name}\" is not built in (restart, stop, start) and has no [component.actions.{a_name}] table saying how to carry it out"
                ),
            ));
        }
    }
    Ok(actions)
}

/// The liveness and readiness probes: one kind each, a usable target, thresholds of at least 1
/// and a period longer than zero.
fn check_probes(c: &RawComponent, name: &str, at: &At) -> Result<(), ConfigError> {
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
                return Err(at.error(
                    p.span(),
                    key,
                    format!(
                        "{key} probe of \"{name}\" needs exactly one of `exec`, `tcp` or `http`"
                    ),
                ));
            }
            if inner.exec.as_ref().is_some_and(|v| v.is_empty()) {
                return Err(at.error(
                    p.span(),
                    key,
                    format!("{key} probe of \"{name}\": `exec` is empty"),
                ));
            }
            if let Some(addr) = inner.tcp.as_ref().map(|t| &t.address)
                && addr
                    .rsplit_once(':')
                    .and_then(|(_, port)| port.parse::<u16>().ok())
                    .is_none()
            {
                return Err(at.error(
                    p.span(),
                    key,
                    format!(
                        "{key} probe of \"{name}\": tcp address \"{addr}\" needs a host and a port, e.g. \"127.0.0.1:6379\""
                    ),
                ));
            }
            if inner
                .tcp
                .as_ref()
                .is_some_and(|t| t.expect.as_ref().is_some_and(Vec::is_empty))
            {
                return Err(at.error(
                    p.span(),
                    key,
                    format!(
                        "{key} probe of \"{name}\": tcp `expect` is empty, so any answer would pass; give the bytes the answer must contain, e.g. expect = \"+PONG\", or leave it out"
                    ),
                ));
            }
            if let Some(url) = &inner.http
                && !url.starts_with("http://")
            {
                return Err(at.error(
                    p.span(),
                    key,
                    format!(
                        "{key} probe of \"{name}\": url \"{url}\" must start with http:// (https is not supported for probes)"
                    ),
                ));
            }
            if inner.failure_threshold == 0 || inner.success_threshold == 0 {
                return Err(at.error(
                    p.span(),
                    key,
                    format!("{key} probe of \"{name}\": thresholds must be at least 1"),
                ));
            }
            if inner.period.0.is_zero() {
                return Err(at.error(
                    p.span(),
                    key,
                    format!("{key} probe of \"{name}\": period must be longer than zero"),
                ));
            }
        }
    }
    Ok(())
}

/// The log patterns, their regexes compiled.
fn log_patterns(c: &RawComponent, at: &At) -> Result<Vec<CompiledLogPattern>, ConfigError> {
    let mut log_patterns = Vec::new();
    for p in &c.log_patterns {
        let inner = p.get_ref();
        let regex = regex::Regex::new(&inner.regex).map_err(|e| {
            at.error(
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
    Ok(log_patterns)
}

/// The component with every default applied: its own value, else the fleet's `[defaults]`, else
/// the built-in default; a relative `cwd` is resolved against `base_dir`.
fn with_defaults(
    c: RawComponent,
    d: &RawDefaults,
    base_dir: Option<&Path>,
    checked: Checked,
) -> Entry {
    let Checked {
        name,
        backoff,
        intensity,
        actions,
        log_patterns,
    } = checked;
    let recovery_actions: Vec<String> = c
        .recovery_actions
        .iter()
        .map(|a| a.get_ref().clone())
        .collect();
    let cwd = c.cwd.map(|p| match base_dir {
        Some(base) if p.is_relative() => base.join(p),
        _ => p,
    });
    Entry {
        name_span: c.name.span(),
        depends_on: c.depends_on.clone(),
        spec: ComponentSpec {
            name,
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
            log_max_size: c
                .log_max_size
                .as_ref()
                .or(d.log_max_size.as_ref())
                .map_or(DEFAULT_LOG_MAX_SIZE, |s| s.get_ref().0),
            log_backups: c
                .log_backups
                .as_ref()
                .or(d.log_backups.as_ref())
                .map_or(DEFAULT_LOG_BACKUPS, |n| *n.get_ref()),
            recovery_actions,
            actions,
            liveness: c.liveness.map(Spanned::into_inner),
            readiness: c.readiness.map(Spanned::into_inner),
            thresholds: c.thresholds,
            log_patterns,
        },
    }
}

/// Every dependency names another component of the fleet (with a "did you mean" on a typo).
fn check_dependencies(entries: &[Entry], at: &At) -> Result<(), ConfigError> {
    let mut known: Vec<&str> = entries.iter().map(|e| e.spec.name.as_str()).collect();
    known.sort();
    for e in entries {
        for dep in &e.depends_on {
            if !known.contains(&dep.get_ref().as_str()) {
                let hint = nearest(dep.get_ref(), known.iter().copied())
                    .map(|n| format!(" — did you mean \"{n}\"?"))
                    .unwrap_or_default();
                return Err(at.error(
                    dep.span(),
                    "depends_on",
                    format!(
                        "\"{}\" depends on unknown component \"{}\"{hint} (known components: {})",
                        e.spec.name,
                        dep.get_ref(),
                        known.join(", ")
                    ),
                ));
            }
            if dep.get_ref() == &e.spec.name {
                return Err(at.error(
                    dep.span(),
                    "depends_on",
                    format!("\"{}\" depends on itself", e.spec.name),
                ));
            }
        }
    }
    Ok(())
}

/// The components in a start order where each comes after its dependencies; a cycle is an error
/// at the name of the first component on it.
fn in_start_order(entries: Vec<Entry>, at: &At) -> Result<Vec<ComponentSpec>, ConfigError> {
    let order = match start_order(&entries.iter().map(|e| &e.spec).collect::<Vec<_>>()) {
        Ok(order) => order,
        Err(cycle) => {
            let first = entries
                .iter()
                .find(|e| e.spec.name == cycle[0])
                .expect("a cycle runs through components of the fleet");
            return Err(at.error(
                first.name_span.clone(),
                "depends_on",
                format!("dependency cycle: {}", cycle.join(" -> ")),
            ));
        }
    };
    let mut by_index: Vec<Option<ComponentSpec>> =
        entries.into_iter().map(|e| Some(e.spec)).collect();
    Ok(order
        .into_iter()
        .map(|i| {
            by_index[i]
                .take()
                .expect("start_order yields each index once")
        })
        .collect())
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
    use std::time::Duration;

    use crate::config::FleetConfig;

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
    fn log_rotation_comes_from_the_component_then_the_defaults() {
        let fleet = FleetConfig::parse(
            r#"
[defaults]
log_max_size = "512KB"
log_backups = 5
[[component]]
name = "a"
command = "true"
[[component]]
name = "b"
command = "true"
log_max_size = 0
log_backups = 0
[[component]]
name = "c"
command = "true"
log_max_size = "1GB"
"#,
            "t.toml",
            None,
        )
        .unwrap();
        let size_and_backups = |n: &str| {
            let c = fleet.get(n).unwrap();
            (c.log_max_size, c.log_backups)
        };
        assert_eq!(size_and_backups("a"), (512 * 1024, 5));
        assert_eq!(size_and_backups("b"), (0, 0));
        assert_eq!(size_and_backups("c"), (1 << 30, 5));
    }

    #[test]
    fn limits_are_read_and_the_rest_keep_their_defaults() {
        let fleet = FleetConfig::parse(
            r#"
[limits]
max_connections = 64
hello_timeout = "250ms"
max_queued_bytes = "1MB"
[[component]]
name = "a"
command = "true"
"#,
            "t.toml",
            None,
        )
        .unwrap();
        assert_eq!(
            fleet.limits,
            crate::config::Limits {
                max_connections: 64,
                hello_timeout: Duration::from_millis(250),
                max_requests_in_flight: 32,
                max_queued_bytes: 1 << 20,
            }
        );
    }
}
