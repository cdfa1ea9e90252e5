//! Detection: turning what the core observes (exits, probe verdicts, metrics, output lines,
//! heartbeats) into a [`HealthStatus`] and structured [`Issue`]s.
//!
//! Pure functions and one small state machine ([`HeartbeatMonitor`]); nothing here reads `/proc`,
//! runs a probe, takes an action or decides whether to heal (that is [`super::policy`] and
//! [`super::recovery`]).

use std::time::Duration;

use tokio::time::Instant;

use crate::config::{CompiledLogPattern, Threshold, ThresholdsConfig};
use crate::model::{ExitInfo, HealthMetrics, HealthStatus, Issue, ProcessMetrics, Severity};

/// Issue types the engine itself raises (log patterns bring their own).
pub mod issue_types {
    /// The process ended although its restart type wanted it running.
    pub const CRASH: &str = "crash";
    pub const LIVENESS_FAILED: &str = "liveness_failed";
    pub const READINESS_FAILED: &str = "readiness_failed";
    /// A metric crossed a threshold.
    pub const THRESHOLD: &str = "threshold_exceeded";
    /// A linked component stopped reporting.
    pub const HEARTBEAT_MISSED: &str = "heartbeat_missed";
    /// Too many restarts: the circuit breaker opened.
    pub const BREAKER_OPEN: &str = "breaker_open";
    /// The engine's own actions did not bring the component back.
    pub const HEALING_FAILED: &str = "healing_failed";
}

/// A metric a threshold applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    CpuPercent,
    RssMb,
    ErrorRate,
    ResponseTimeMs,
}

impl Metric {
    pub fn name(&self) -> &'static str {
        match self {
            Metric::CpuPercent => "cpu",
            Metric::RssMb => "rss",
            Metric::ErrorRate => "error rate",
            Metric::ResponseTimeMs => "response time",
        }
    }

    fn unit(&self) -> &'static str {
        match self {
            Metric::CpuPercent | Metric::ErrorRate => "%",
            Metric::RssMb => " MiB",
            Metric::ResponseTimeMs => " ms",
        }
    }
}

/// How bad a crossed threshold is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BreachLevel {
    Degraded,
    Critical,
}

/// One metric at or above one of its thresholds.
#[derive(Debug, Clone, PartialEq)]
pub struct Breach {
    pub metric: Metric,
    pub value: f64,
    /// The threshold crossed (the critical one when both are).
    pub limit: f64,
    pub level: BreachLevel,
}

impl Breach {
    /// E.g. `cpu 93.5% >= critical 90%`.
    pub fn message(&self) -> String {
        let level = match self.level {
            BreachLevel::Degraded => "degraded",
            BreachLevel::Critical => "critical",
        };
        let unit = self.metric.unit();
        format!(
            "{} {:.1}{unit} >= {level} limit {}{unit}",
            self.metric.name(),
            self.value,
            self.limit
        )
    }

    pub fn status(&self) -> HealthStatus {
        match self.level {
            BreachLevel::Degraded => HealthStatus::Degraded(self.message()),
            BreachLevel::Critical => HealthStatus::Critical(self.message()),
        }
    }

    pub fn issue(&self, component: &str) -> Issue {
        let severity = match self.level {
            BreachLevel::Degraded => Severity::Warning,
            BreachLevel::Critical => Severity::Error,
        };
        Issue::new(component, issue_types::THRESHOLD, severity)
            .with("metric", self.metric.name())
            .with("value", format!("{:.1}", self.value))
            .with("limit", self.limit)
            .with("message", self.message())
    }
}

fn breach(metric: Metric, value: f64, t: &Option<Threshold>) -> Option<Breach> {
    let t = t.as_ref()?;
    if !value.is_finite() {
        return None;
    }
    if let Some(limit) = t.critical
        && value >= limit
    {
        return Some(Breach {
            metric,
            value,
            limit,
            level: BreachLevel::Critical,
        });
    }
    if let Some(limit) = t.degraded
        && value >= limit
    {
        return Some(Breach {
            metric,
            value,
            limit,
            level: BreachLevel::Degraded,
        });
    }
    None
}

/// Every threshold crossed by the latest samples: `process` from `/proc` (cpu, rss) and `reported`
/// by a linked component (error rate, response time). A missing sample crosses nothing.
pub fn threshold_breaches(
    thresholds: &ThresholdsConfig,
    process: Option<&ProcessMetrics>,
    reported: Option<&HealthMetrics>,
) -> Vec<Breach> {
    let mut out = Vec::new();
    if let Some(p) = process {
        out.extend(breach(
            Metric::CpuPercent,
            p.cpu_percent,
            &thresholds.cpu_percent,
        ));
        let mib = p.rss_bytes as f64 / (1024.0 * 1024.0);
        out.extend(breach(Metric::RssMb, mib, &thresholds.rss_mb));
    }
    if let Some(r) = reported {
        out.extend(breach(
            Metric::ErrorRate,
            r.error_rate,
            &thresholds.error_rate,
        ));
        out.extend(breach(
            Metric::ResponseTimeMs,
            r.response_time,
            &thresholds.response_time_ms,
        ));
    }
    out
}

/// The health the metrics alone imply: the worst breach, Healthy when none.
pub fn threshold_status(
    thresholds: &ThresholdsConfig,
    process: Option<&ProcessMetrics>,
    reported: Option<&HealthMetrics>,
) -> HealthStatus {
    HealthStatus::combine(
        threshold_breaches(thresholds, process, reported)
            .iter()
            .map(Breach::status),
    )
}

/// The first pattern that matches `line` as an Issue of its type and severity. Context: `line`,
/// `pattern`, `capture` (the first capture group, when there is one) and every named group.
pub fn match_log_line(
    component: &str,
    patterns: &[CompiledLogPattern],
    line: &str,
) -> Option<Issue> {
    patterns.iter().find_map(|p| {
        let caps = p.regex.captures(line)?;
        let mut issue = Issue::new(component, &p.issue_type, p.severity)
            .with("line", line)
            .with("pattern", p.regex.as_str());
        if let Some(first) = caps.get(1) {
            issue = issue.with("capture", first.as_str());
        }
        for name in p.regex.capture_names().flatten() {
            if let Some(m) = caps.name(name) {
                issue = issue.with(name, m.as_str());
            }
        }
        Some(issue)
    })
}

/// Watches a linked component's health reports: one that misses [`HeartbeatMonitor::MISSED`] of its
/// intervals in a row is Failed.
#[derive(Debug, Clone)]
pub struct HeartbeatMonitor {
    interval: Duration,
    last: Instant,
}

impl HeartbeatMonitor {
    /// How many intervals without a report make a component Failed.
    pub const MISSED: u32 = 3;

    /// Starts watching at `now` (registration counts as the first beat).
    pub fn new(interval: Duration, now: Instant) -> Self {
        HeartbeatMonitor {
            interval,
            last: now,
        }
    }

    /// A report (health or metrics) arrived.
    pub fn beat(&mut self, now: Instant) {
        self.last = self.last.max(now);
    }

    /// When the component becomes overdue if nothing arrives: arm a timer for it (and re-arm after
    /// each beat; a stale timer just finds the component alive).
    pub fn deadline(&self) -> Instant {
        self.last + self.interval.saturating_mul(Self::MISSED)
    }

    /// Failed once the deadline has passed; Healthy (as far as heartbeats tell) before.
    pub fn check(&self, now: Instant) -> HealthStatus {
        if now >= self.deadline() {
            HealthStatus::Failed(format!(
                "no health report for {} (expected every {})",
                humantime::format_duration(crate::text::round_ms(
                    now.saturating_duration_since(self.last)
                )),
                humantime::format_duration(self.interval)
            ))
        } else {
            HealthStatus::Healthy
        }
    }
}

/// A process that ended although its restart type wanted it running.
pub fn crash_issue(component: &str, exit: &ExitInfo, uptime: Duration) -> Issue {
    Issue::new(component, issue_types::CRASH, Severity::Error)
        .with("exit", exit)
        .with(
            "uptime",
            humantime::format_duration(crate::text::round_ms(uptime)),
        )
}

/// A liveness or readiness probe that crossed its failure threshold.
pub fn probe_issue(
    component: &str,
    kind: super::probe::ProbeKind,
    failures: u32,
    reason: &str,
) -> Issue {
    let (issue_type, severity) = match kind {
        super::probe::ProbeKind::Liveness => (issue_types::LIVENESS_FAILED, Severity::Error),
        super::probe::ProbeKind::Readiness => (issue_types::READINESS_FAILED, Severity::Warning),
    };
    Issue::new(component, issue_type, severity)
        .with("failures", failures)
        .with("reason", reason)
}

/// A linked component that stopped reporting.
pub fn heartbeat_issue(component: &str, status: &HealthStatus) -> Issue {
    Issue::new(component, issue_types::HEARTBEAT_MISSED, Severity::Error)
        .with("message", status.message().unwrap_or("missed heartbeats"))
}

/// The breaker opened: always escalated (severity Critical), with the time to the trial.
pub fn breaker_issue(component: &str, cooldown: Duration, cause: Option<&Issue>) -> Issue {
    let mut issue = Issue::new(component, issue_types::BREAKER_OPEN, Severity::Critical).with(
        "cooldown",
        humantime::format_duration(crate::text::round_ms(cooldown)),
    );
    if let Some(cause) = cause {
        issue = issue
            .with("cause", &cause.issue_type)
            .with("cause_id", &cause.id);
    }
    issue
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ThresholdsConfig;

    fn thresholds() -> ThresholdsConfig {
        ThresholdsConfig {
            cpu_percent: Some(Threshold {
                degraded: Some(80.0),
                critical: Some(95.0),
            }),
            rss_mb: Some(Threshold {
                degraded: Some(512.0),
                critical: None,
            }),
            error_rate: Some(Threshold {
                degraded: Some(5.0),
                critical: Some(20.0),
            }),
            response_time_ms: Some(Threshold {
                degraded: None,
                critical: Some(1000.0),
            }),
        }
    }

    #[test]
    fn metrics_under_every_threshold_are_healthy() {
        let p = ProcessMetrics {
            cpu_percent: 10.0,
            rss_bytes: 10 << 20,
            open_fds: 3,
        };
        assert_eq!(
            threshold_status(&thresholds(), Some(&p), Some(&HealthMetrics::default())),
            HealthStatus::Healthy
        );
        assert_eq!(
            threshold_status(&ThresholdsConfig::default(), Some(&p), None),
            HealthStatus::Healthy
        );
    }

    #[test]
    fn cpu_over_the_degraded_limit_degrades_with_a_message_naming_it() {
        let p = ProcessMetrics {
            cpu_percent: 85.25,
            rss_bytes: 0,
            open_fds: 0,
        };
        assert_eq!(
            threshold_status(&thresholds(), Some(&p), None),
            HealthStatus::Degraded("cpu 85.2% >= degraded limit 80%".into())
        );
    }

    #[test]
    fn the_worst_breach_wins_and_rss_is_measured_in_mib() {
        let p = ProcessMetrics {
            cpu_percent: 0.0,
            rss_bytes: 600 << 20,
            open_fds: 0,
        };
        let r = HealthMetrics {
            error_rate: 25.0,
            response_time: 1500.0,
            ..HealthMetrics::default()
        };
        let breaches = threshold_breaches(&thresholds(), Some(&p), Some(&r));
        assert_eq!(breaches.len(), 3);
        assert_eq!(
            breaches[0].message(),
            "rss 600.0 MiB >= degraded limit 512 MiB"
        );
        assert_eq!(
            threshold_status(&thresholds(), Some(&p), Some(&r)),
            HealthStatus::Critical("error rate 25.0% >= critical limit 20%".into())
        );
        let issue = breaches[2].issue("api");
        assert_eq!(issue.issue_type, issue_types::THRESHOLD);
        assert_eq!(issue.severity, Severity::Error);
        assert_eq!(issue.context["metric"], "response time");
        assert_eq!(issue.context["limit"], "1000");
    }

    fn patterns() -> Vec<CompiledLogPattern> {
        vec![
            CompiledLogPattern {
                regex: regex::Regex::new(r"panic: (.*)").expect("valid"),
                issue_type: "panic".into(),
                severity: Severity::Error,
            },
            CompiledLogPattern {
                regex: regex::Regex::new(r"ERROR job (?P<job>\d+)").expect("valid"),
                issue_type: "job_failed".into(),
                severity: Severity::Warning,
            },
        ]
    }

    #[test]
    fn a_matching_log_line_becomes_an_issue_with_its_capture() {
        let issue =
            match_log_line("api", &patterns(), "api: panic: pool exhausted").expect("matches");
        assert_eq!(issue.component, "api");
        assert_eq!(issue.issue_type, "panic");
        assert_eq!(issue.severity, Severity::Error);
        assert_eq!(issue.context["line"], "api: panic: pool exhausted");
        assert_eq!(issue.context["capture"], "pool exhausted");
        let job = match_log_line("w", &patterns(), "worker: ERROR job 17 failed").expect("matches");
        assert_eq!(job.issue_type, "job_failed");
        assert_eq!(job.context["job"], "17");
        assert_eq!(job.context["capture"], "17");
    }

    #[test]
    fn a_line_matching_no_pattern_is_no_issue() {
        assert_eq!(match_log_line("api", &patterns(), "GET /orders 200"), None);
        assert_eq!(match_log_line("api", &[], "panic: x"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_component_that_misses_three_heartbeats_is_failed() {
        let mut hb = HeartbeatMonitor::new(Duration::from_secs(5), Instant::now());
        tokio::time::advance(Duration::from_secs(14)).await;
        assert_eq!(hb.check(Instant::now()), HealthStatus::Healthy);
        hb.beat(Instant::now());
        tokio::time::advance(Duration::from_secs(14)).await;
        assert_eq!(hb.check(Instant::now()), HealthStatus::Healthy);
        assert_eq!(hb.deadline(), Instant::now() + Duration::from_secs(1));
        tokio::time::advance(Duration::from_secs(1)).await;
        match hb.check(Instant::now()) {
            HealthStatus::Failed(msg) => {
                assert_eq!(msg, "no health report for 15s (expected every 5s)")
            }
            other => panic!("{other:?}"),
        }
        hb.beat(Instant::now());
        assert_eq!(hb.check(Instant::now()), HealthStatus::Healthy);
    }

    #[test]
    fn engine_issues_carry_their_context() {
        let exit = ExitInfo {
            code: Some(3),
            signal: None,
            at: std::time::SystemTime::UNIX_EPOCH,
        };
        let crash = crash_issue("api", &exit, Duration::from_millis(1500));
        assert_eq!(crash.issue_type, "crash");
        assert_eq!(crash.context["exit"], "exit 3");
        assert_eq!(crash.context["uptime"], "1s 500ms");
        let probe = probe_issue(
            "api",
            super::super::probe::ProbeKind::Liveness,
            3,
            "refused",
        );
        assert_eq!(probe.issue_type, "liveness_failed");
        assert!(probe.severity >= Severity::Error);
        let open = breaker_issue("api", Duration::from_secs(30), Some(&crash));
        assert_eq!(open.severity, Severity::Critical);
        assert_eq!(open.context["cause"], "crash");
        assert_eq!(open.context["cooldown"], "30s");
    }
}
