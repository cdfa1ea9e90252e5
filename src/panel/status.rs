//! The status panel (guide §3.1 "Health Status"): health with its icon and message, run state,
//! pid, uptime, restarts, the healing engine's backoff delay or breaker state with the next trial
//! time, the last issue, the last healing action and the strategy its last recovery episode tried
//! first, with the reason (the knowledge registry's advice, or the level's default order).
//! Without a component it falls back to the system health table.
//!
//! Below them, the component's recent issues and healing attempts as a timeline: a strip over the
//! last ten minutes with a mark for each (`!` an issue, `+` a healing attempt that worked, `x` one
//! that did not, `>` a healing action the core's history saw begin), then the newest entries, one
//! a line, as many as fit. The core keeps that history (`Request::History`), so the timeline is
//! there as soon as the panel opens.
//!
//! It only reads the model; times are measured against the model's clock, never the system's.

use std::collections::VecDeque;
use std::time::Duration;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

use super::app::Shared;
use super::format;
use super::system_health;
use super::theme::known_health;
use crate::model::{BreakerState, ComponentStatus, Severity};
use crate::protocol::{ComponentHistory, TimelineEntry};

const LABEL: usize = 10;

/// Timeline entries kept.
pub const TIMELINE: usize = 50;
/// How far back the timeline strip reaches.
pub const STRIP_SPAN: Duration = Duration::from_secs(600);

/// The component's recent issues and healing attempts, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatusState {
    pub timeline: VecDeque<TimelineEntry>,
}

impl StatusState {
    pub fn push(&mut self, entry: TimelineEntry) {
        if self.timeline.len() == TIMELINE {
            self.timeline.pop_front();
        }
        self.timeline.push_back(entry);
    }

    /// The core's history replaces what the panel had (it holds everything the panel saw).
    pub fn seed_history(&mut self, history: &ComponentHistory) {
        let newest = history.timeline.last().map(TimelineEntry::at);
        let newer: Vec<TimelineEntry> = self
            .timeline
            .iter()
            .filter(|e| newest.is_none_or(|n| e.at() > n))
            .cloned()
            .collect();
        self.timeline.clear();
        for entry in history.timeline.iter().cloned().chain(newer) {
            self.push(entry);
        }
    }
}

pub(super) fn render(view: Shared<'_>, state: &StatusState, area: Rect, buf: &mut Buffer) {
    if view.component.is_none() {
        system_health::render_table(view, area, buf);
        return;
    }
    match view.status() {
        Some(status) => {
            let mut all = lines(view, status);
            let room = usize::from(area.height).saturating_sub(all.len());
            all.extend(timeline_lines(view, state, usize::from(area.width), room));
            Paragraph::new(all)
                .wrap(Wrap { trim: false })
                .render(area, buf)
        }
        None => view.render_placeholder(area, buf),
    }
}

/// The timeline in `rows` rows at most: the strip, then the newest entries.
fn timeline_lines(
    view: Shared<'_>,
    state: &StatusState,
    width: usize,
    rows: usize,
) -> Vec<Line<'static>> {
    let theme = view.theme;
    if rows < 2 {
        return Vec::new();
    }
    let strip_width = width.saturating_sub(LABEL + 6).clamp(1, 120);
    let mut cells: Vec<(char, ratatui::style::Style)> = vec![('·', theme.dim()); strip_width];
    if theme.ascii {
        cells.iter_mut().for_each(|c| c.0 = '.');
    }
    for entry in &state.timeline {
        let Ok(age) = view.now.duration_since(entry.at()) else {
            continue;
        };
        if age > STRIP_SPAN {
            continue;
        }
        let from_right =
            (age.as_secs_f64() / STRIP_SPAN.as_secs_f64() * strip_width as f64) as usize;
        let i = strip_width - 1 - from_right.min(strip_width - 1);
        cells[i] = mark(view, entry);
    }
    let mut strip = vec![Span::styled(
        format!("{:<LABEL$}", "timeline"),
        theme.label(),
    )];
    strip.extend(
        cells
            .into_iter()
            .map(|(c, style)| Span::styled(c.to_string(), style)),
    );
    strip.push(Span::styled(" now", theme.dim()));
    let mut out = vec![Line::from(strip)];
    if state.timeline.is_empty() {
        out.push(Line::styled(
            format!("{:<LABEL$}no issues or healing yet", ""),
            theme.dim(),
        ));
        return out;
    }
    for entry in state.timeline.iter().rev().take(rows - 1) {
        let (symbol, style) = mark(view, entry);
        let when = format::relative(view.now, entry.at());
        let text = match entry {
            TimelineEntry::Issue { issue } => {
                format!("{} ({})", issue.issue_type, issue.severity)
            }
            TimelineEntry::Healing { record } => format!(
                "{} {} in {}",
                record.action,
                if record.successful {
                    "worked"
                } else {
                    "failed"
                },
                format::delay(record.duration)
            ),
            TimelineEntry::Action { action, .. } => format!("{action} (healing)"),
        };
        out.push(Line::from(vec![
            Span::styled(format!("{:<LABEL$}", when), theme.dim()),
            Span::styled(format!("{symbol} "), style),
            Span::styled(text, style),
        ]));
    }
    out
}

/// The mark of an entry on the strip.
fn mark(view: Shared<'_>, entry: &TimelineEntry) -> (char, ratatui::style::Style) {
    let theme = view.theme;
    match entry {
        TimelineEntry::Issue { issue } => match issue.severity {
            Severity::Critical | Severity::Error => ('!', theme.error()),
            Severity::Warning | Severity::Info => ('!', theme.warning()),
        },
        TimelineEntry::Healing { record } if record.successful => ('+', theme.good()),
        TimelineEntry::Healing { .. } => ('x', theme.error()),
        TimelineEntry::Action { .. } => ('>', theme.label()),
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
    let health = match known_health(status) {
        Some(health) => health.to_string(),
        None => "unknown (no process)".to_string(),
    };
    let mut lines = vec![Line::from(vec![
        Span::raw(format!("{} ", theme.status_icon(status))),
        Span::styled(health, theme.status_style(status)),
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
    if let Some(strategy) = &healing.strategy {
        // What the last recovery episode tried first and why: `knowledge: clear_cache cured
        // crash 7 of the last 8 times`, or `default order: restart, then clear_cache`.
        lines.push(row("strategy", Span::raw(strategy.clone())));
    }
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
