//! Plain-text rendering for the CLI: the status table, issues, log lines.

use std::time::SystemTime;

use crate::model::{BreakerState, ComponentStatus, Issue, LogLine, LogStream};
use crate::text::{duration as format_duration, truncate};

/// The `status` table: one row per component, columns sized to their content.
pub fn status_table(components: &[ComponentStatus], now: SystemTime) -> String {
    let header = [
        "NAME",
        "STATE",
        "HEALTH",
        "PID",
        "UPTIME",
        "RESTARTS",
        "CPU%",
        "RSS",
        "LAST EXIT",
        "HEALING",
        "LAST ISSUE",
        "LAST ACTION",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for c in components {
        let (cpu, rss) = match &c.metrics {
            Some(m) => (format!("{:.1}", m.cpu_percent), human_bytes(m.rss_bytes)),
            None => ("-".into(), "-".into()),
        };
        let healing = match (c.healing.breaker, c.healing.backoff) {
            (BreakerState::Open, _) => match c.healing.next_trial_at {
                Some(t) => format!(
                    "breaker open, trial in {}",
                    format_duration(t.duration_since(now).unwrap_or_default())
                ),
                None => "breaker open".into(),
            },
            (BreakerState::HalfOpen, _) => "breaker half-open (trial)".into(),
            (BreakerState::Closed, Some(d)) => format!("backoff {}", format_duration(d)),
            (BreakerState::Closed, None) => "-".into(),
        };
        rows.push(vec![
            c.name.clone(),
            c.state.to_string(),
            c.health.word().to_string(),
            c.pid.map_or("-".into(), |p| p.to_string()),
            c.uptime(now).map_or("-".into(), format_duration),
            c.restarts.to_string(),
            cpu,
            rss,
            c.last_exit.as_ref().map_or("-".into(), |e| e.to_string()),
            healing,
            c.healing
                .last_issue
                .as_ref()
                .map_or("-".into(), |i| format!("{} ({})", i.issue_type, i.severity)),
            c.healing
                .last_action
                .as_ref()
                .map_or("-".into(), |a| truncate(&a.to_string(), 60)),
        ]);
    }
    render(&rows)
}

/// Recent issues, oldest first.
pub fn issues_table(issues: &[Issue]) -> String {
    let mut rows = vec![vec![
        "TIME".to_string(),
        "COMPONENT".into(),
        "SEVERITY".into(),
        "TYPE".into(),
        "CONTEXT".into(),
    ]];
    for i in issues {
        let context: Vec<String> = i.context.iter().map(|(k, v)| format!("{k}={v}")).collect();
        rows.push(vec![
            clock(i.detected_at),
            i.component.clone(),
            i.severity.to_string(),
            i.issue_type.clone(),
            context.join(" "),
        ]);
    }
    render(&rows)
}

/// One output line as `logs` prints it: time, component, a stream mark, the text.
pub fn log_line(line: &LogLine) -> String {
    let mark = match line.stream {
        LogStream::Stdout => "|",
        LogStream::Stderr => "!",
        LogStream::System => "*",
    };
    format!("{} {} {mark} {}", clock(line.at), line.component, line.text)
}

/// `HH:MM:SS.mmm` in UTC.
fn clock(t: SystemTime) -> String {
    let stamp = humantime::format_rfc3339_millis(t).to_string();
    stamp.get(11..23).map_or(stamp.clone(), |s| s.to_string())
}

fn human_bytes(b: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if b as f64 >= 1024.0 * MIB {
        format!("{:.1}G", b as f64 / (1024.0 * MIB))
    } else {
        format!("{:.1}M", b as f64 / MIB)
    }
}

fn render(rows: &[Vec<String>]) -> String {
    let cols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == cols {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
