//! The status panel (guide §3.1 "Health Status"): health with its icon and message, run state,
//! pid, uptime, restarts, the healing engine's backoff delay or breaker state with the next trial
//! time, the last issue and the last healing action. Without a component it falls back to the
//! system health table.
//!
//! It only reads the model; times are measured against the model's clock, never the system's.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

use super::app::Shared;
use super::format;
use super::system_health;
use crate::model::{BreakerState, ComponentStatus};

const LABEL: usize = 10;

pub(super) fn render(view: Shared<'_>, area: Rect, buf: &mut Buffer) {
    if view.component.is_none() {
        system_health::render_table(view, area, buf);
        return;
    }
    match view.status() {
        Some(status) => Paragraph::new(lines(view, status))
            .wrap(Wrap { trim: false })
            .render(area, buf),
        None => view.render_placeholder(area, buf),
    }
}

fn lines(view: Shared<'_>, status: &ComponentStatus) -> Vec<Line<'static>> {
    let theme = view.theme;
    let now = view.now;
    let row = |label: &str, value: Span<'static>| {
        Line::from(vec![
            Span::styled(format!("{label:<LABEL$}"), theme.label()),
            value,
        ])
    };
    let mut lines = vec![Line::from(vec![
        Span::raw(format!("{} ", theme.health_icon(&status.health))),
        Span::styled(
            status.health.to_string(),
            theme.health_style(&status.health),
        ),
    ])];
    lines.push(row(
        "state",
        Span::styled(status.state.word(), theme.state_style(status.state)),
    ));
    let pid = status.pid.map_or("-".to_string(), |p| p.to_string());
    lines.push(row("pid", Span::raw(pid)));
    let uptime = status.uptime(now).map_or("-".to_string(), format::duration);
    lines.push(row("uptime", Span::raw(uptime)));
    let mut restarts = status.restarts.to_string();
    if let Some(exit) = &status.last_exit {
        restarts.push_str(&format!(
            " (last: {exit}, {})",
            format::relative(now, exit.at)
        ));
    }
    lines.push(row("restarts", Span::raw(restarts)));
    let healing = &status.healing;
    if let Some(backoff) = healing.backoff {
        lines.push(row(
            "backoff",
            Span::styled(
                format!("next restart in {}", format::delay(backoff)),
                theme.warning(),
            ),
        ));
    }
    let breaker = match healing.breaker {
        BreakerState::Closed => "closed".to_string(),
        BreakerState::HalfOpen => "half-open (trial running)".to_string(),
        BreakerState::Open => match healing.next_trial_at {
            Some(at) => format!("open, trial {}", format::relative(now, at)),
            None => "open".to_string(),
        },
    };
    lines.push(row(
        "breaker",
        Span::styled(breaker, theme.breaker_style(healing.breaker)),
    ));
    let issue = match &healing.last_issue {
        Some(issue) => Span::styled(
            format!(
                "{} ({}) {}",
                issue.issue_type,
                issue.severity,
                format::relative(now, issue.detected_at)
            ),
            theme.warning(),
        ),
        None => Span::styled("none", theme.dim()),
    };
    lines.push(row("issue", issue));
    let action = match &healing.last_action {
        Some(action) => Span::raw(action.to_string()),
        None => Span::styled("none", theme.dim()),
    };
    lines.push(row("action", action));
    lines.push(row(
        "healing",
        Span::styled(
            format!(
                "{}, {}",
                healing.level,
                if healing.auto_healing {
                    "automatic"
                } else {
                    "manual"
                }
            ),
            theme.dim(),
        ),
    ));
    lines
}
