//! The typed values a config holds: durations with units, signal names, commands, backoff,
//! restart intensity, the circuit breaker, probes, thresholds, log patterns and custom actions,
//! each with its built-in defaults and its own parse errors.
//!
//! Pure: these are serde values; how they combine into a component is `validate.rs`'s job.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::model::Severity;

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

/// A size in bytes written with a unit, e.g. `"512KB"`, `"10MB"`, `"1GB"`; `0` alone (a TOML
/// integer or string) means none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConfigSize(pub u64);

impl<'de> Deserialize<'de> for ConfigSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// A size is a string, or the integer 0.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Number(i64),
            Text(String),
        }
        let text = match Written::deserialize(d)? {
            Written::Number(n) => n.to_string(),
            Written::Text(t) => t,
        };
        parse_size(&text)
            .map(ConfigSize)
            .map_err(serde::de::Error::custom)
    }
}

/// The units a size may be written in, with their multipliers: 1024-based, as supervisord's
/// `logfile_maxbytes` reads `KB`, `MB` and `GB`; the `KiB` spellings mean the same.
const SIZE_UNITS: [(&str, u64); 10] = [
    ("b", 1),
    ("k", 1 << 10),
    ("kb", 1 << 10),
    ("kib", 1 << 10),
    ("m", 1 << 20),
    ("mb", 1 << 20),
    ("mib", 1 << 20),
    ("g", 1 << 30),
    ("gb", 1 << 30),
    ("gib", 1 << 30),
];

/// Parses a size: a whole number and a unit (`B`, `KB`, `MB`, `GB`, any case, 1024-based), or
/// `0` alone. A bare number other than 0 is refused because `10` could mean anything.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(digits_end);
    let unit = unit.trim();
    if digits.is_empty() {
        return Err(format!(
            "invalid size \"{text}\": write a whole number with a unit, e.g. \"512KB\", \"10MB\", \"1GB\""
        ));
    }
    let Ok(number) = digits.parse::<u64>() else {
        return Err(format!("invalid size \"{text}\": the number is too large"));
    };
    if unit.is_empty() {
        if number == 0 {
            return Ok(0);
        }
        return Err(format!(
            "invalid size \"{text}\": a unit is required, e.g. \"{number}KB\" or \"{number}MB\""
        ));
    }
    let lower = unit.to_ascii_lowercase();
    let Some((_, multiplier)) = SIZE_UNITS.iter().find(|(u, _)| *u == lower) else {
        return Err(format!(
            "invalid size \"{text}\": unknown unit \"{unit}\"; use B, KB, MB or GB (1KB = 1024 bytes), e.g. \"10MB\""
        ));
    };
    number
        .checked_mul(*multiplier)
        .ok_or_else(|| format!("invalid size \"{text}\": the number is too large"))
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

    pub(super) fn is_empty(&self) -> bool {
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
    /// `"host:port"` (connect only) or `{ address, send, expect }`.
    #[serde(default)]
    pub tcp: Option<TcpCheck>,
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
        } else if let Some(check) = &self.tcp {
            ProbeTarget::Tcp(check.clone())
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
    Tcp(TcpCheck),
    Http {
        url: String,
        expect_status: Option<u16>,
    },
}

/// A tcp probe, as HAProxy's tcp-check does it: connect to `address`; then, if given, send
/// `send` and read until `expect` appears, the peer closes, or the probe's timeout. Written as
/// `tcp = "127.0.0.1:6379"` (connect only) or
/// `tcp = { address = "127.0.0.1:6379", send = "PING\r\n", expect = "+PONG" }`.
///
/// Connecting alone does not see a hung server: the kernel completes connections for a stopped
/// process until its accept queue fills. An answer does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpCheck {
    /// `host:port`.
    pub address: String,
    /// The bytes to send once connected (escapes decoded); empty: send nothing.
    pub send: Vec<u8>,
    /// Bytes the answer must contain (escapes decoded); `None`: connecting (and sending) is
    /// enough. Never empty.
    pub expect: Option<Vec<u8>>,
}

impl TcpCheck {
    /// A check that only connects.
    pub fn connect(address: impl Into<String>) -> TcpCheck {
        TcpCheck {
            address: address.into(),
            send: Vec::new(),
            expect: None,
        }
    }
}

impl<'de> Deserialize<'de> for TcpCheck {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// The table form.
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Table {
            address: String,
            #[serde(default)]
            send: Option<Escaped>,
            #[serde(default)]
            expect: Option<Escaped>,
        }
        struct Form;
        impl<'de> serde::de::Visitor<'de> for Form {
            type Value = TcpCheck;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "an address \"host:port\" or a table { address = \"host:port\", send = \"…\", expect = \"…\" }",
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<TcpCheck, E> {
                Ok(TcpCheck::connect(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<TcpCheck, A::Error> {
                let t = Table::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(TcpCheck {
                    address: t.address,
                    send: t.send.map(|e| e.0).unwrap_or_default(),
                    expect: t.expect.map(|e| e.0),
                })
            }
        }
        d.deserialize_any(Form)
    }
}

/// A string whose escapes are decoded into bytes, see [`unescape`].
struct Escaped(Vec<u8>);

impl<'de> Deserialize<'de> for Escaped {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        unescape(&text)
            .map(Escaped)
            .map_err(serde::de::Error::custom)
    }
}

/// Decodes the escapes of a probe's `send` and `expect`: `\r`, `\n`, `\t`, `\\` and `\xNN` (one
/// byte, two hex digits); every other character stands for its UTF-8 bytes. TOML's own basic
/// strings already decode `\r`, `\n`, `\t` and `\\`; these escapes are for literal strings
/// (`'PING\r\n'`) and for bytes TOML cannot write (`\x00`).
pub fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let bad = |what: String| {
        format!(
            "invalid escape in \"{text}\": {what}; use \\r, \\n, \\t, \\\\ or \\xNN (two hex digits)"
        )
    };
    let mut out = Vec::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next() {
            Some('r') => out.push(b'\r'),
            Some('n') => out.push(b'\n'),
            Some('t') => out.push(b'\t'),
            Some('\\') => out.push(b'\\'),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                match u8::from_str_radix(&hex, 16) {
                    Ok(byte) if hex.len() == 2 && hex.chars().all(|h| h.is_ascii_hexdigit()) => {
                        out.push(byte)
                    }
                    _ => return Err(bad(format!("\"\\x{hex}\" needs two hex digits"))),
                }
            }
            Some(other) => return Err(bad(format!("unknown escape \"\\{other}\""))),
            None => return Err(bad("a lone \\ at the end".to_string())),
        }
    }
    Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn sizes_need_units_except_zero() {
        assert_eq!(parse_size("10MB"), Ok(10 * 1024 * 1024));
        assert_eq!(parse_size("512KB"), Ok(512 * 1024));
        assert_eq!(parse_size("1GB"), Ok(1 << 30));
        assert_eq!(parse_size(" 4 mib "), Ok(4 << 20));
        assert_eq!(parse_size("100B"), Ok(100));
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("0MB"), Ok(0));
        assert!(parse_size("10").unwrap_err().contains("a unit is required"));
        assert!(parse_size("1.5MB").unwrap_err().contains("unknown unit"));
        assert!(
            parse_size("10 parsecs")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(parse_size("MB").unwrap_err().contains("whole number"));
        assert!(parse_size("-1MB").unwrap_err().contains("whole number"));
        assert!(
            parse_size("99999999999999GB")
                .unwrap_err()
                .contains("too large")
        );
        assert!(
            parse_size("99999999999999999999999")
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn escapes_decode_to_bytes_and_bad_ones_are_explained() {
        assert_eq!(unescape(r"PING\r\n").unwrap(), b"PING\r\n");
        assert_eq!(
            unescape("PING\r\n").unwrap(),
            b"PING\r\n",
            "already decoded by TOML"
        );
        assert_eq!(unescape(r"\x00\xfF\t\\é").unwrap(), b"\x00\xff\t\\\xc3\xa9");
        assert!(
            unescape(r"\q")
                .unwrap_err()
                .contains(r#"unknown escape "\q""#)
        );
        assert!(unescape(r"\x4").unwrap_err().contains("two hex digits"));
        assert!(unescape(r"\x+1").unwrap_err().contains("two hex digits"));
        assert!(unescape("a\\").unwrap_err().contains("lone"));
    }

    #[test]
    fn a_tcp_probe_is_an_address_or_a_table() {
        #[derive(Deserialize)]
        struct P {
            tcp: TcpCheck,
        }
        let plain: P = toml::from_str(r#"tcp = "127.0.0.1:6379""#).unwrap();
        assert_eq!(plain.tcp, TcpCheck::connect("127.0.0.1:6379"));
        let table: P = toml::from_str(
            r#"tcp = { address = "127.0.0.1:6379", send = 'PING\r\n', expect = "+PONG" }"#,
        )
        .unwrap();
        assert_eq!(
            table.tcp,
            TcpCheck {
                address: "127.0.0.1:6379".into(),
                send: b"PING\r\n".to_vec(),
                expect: Some(b"+PONG".to_vec()),
            }
        );
        let typo = toml::from_str::<P>(r#"tcp = { address = "h:1", sned = "x" }"#)
            .err()
            .unwrap();
        assert!(typo.message().contains("unknown field `sned`"), "{typo}");
    }

    proptest::proptest! {
        #[test]
        fn escaped_bytes_decode_to_themselves(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let written: String = bytes
                .iter()
                .map(|b| match b {
                    b'\\' => r"\\".to_string(),
                    b'\r' => r"\r".to_string(),
                    b' '..=b'~' => char::from(*b).to_string(),
                    _ => format!(r"\x{b:02x}"),
                })
                .collect();
            proptest::prop_assert_eq!(unescape(&written), Ok(bytes));
        }

        #[test]
        fn any_text_unescapes_or_is_refused_with_the_text_quoted(text in "\\PC{0,24}") {
            if let Err(message) = unescape(&text) {
                proptest::prop_assert!(message.contains(&text), "{}", message);
            }
        }

        #[test]
        fn a_number_and_a_unit_parse_to_their_product(
            n in 0u64..(1 << 33),
            unit in proptest::sample::select(SIZE_UNITS.to_vec()),
            upper in proptest::bool::ANY,
            space in proptest::bool::ANY,
        ) {
            let (name, multiplier) = unit;
            let name = if upper { name.to_ascii_uppercase() } else { name.to_string() };
            let text = format!("{n}{}{name}", if space { " " } else { "" });
            proptest::prop_assert_eq!(parse_size(&text), Ok(n * multiplier));
        }

        #[test]
        fn any_text_parses_or_is_refused_with_the_text_quoted(text in "\\PC{0,24}") {
            if let Err(message) = parse_size(&text) {
                proptest::prop_assert!(message.starts_with("invalid size \""), "{}", message);
                proptest::prop_assert!(message.contains(&text), "{}", message);
            }
        }
    }
}
