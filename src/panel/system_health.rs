//! The system health panel (guide §3.2 "System Health"): one row per component with its icon,
//! name, state, health, restarts and pid, and below them the latest notices from the core
//! (escalations, breaker openings, a rejected config or layout edit).
//!
//! It only reads the model; it must not decide anything about health itself.

use std::collections::VecDeque;
use std::time::SystemTime;

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Widget};

use super::app::Shared;
use super::format;
use crate::protocol::NoticeLevel;

/// Notices kept; the panel shows the newest that fit in up to [`NOTICE_ROWS`] rows.
pub const NOTICES: usize = 20;
pub const NOTICE_ROWS: usize = 3;

#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub level: NoticeLevel,
    pub message: String,
    pub at: SystemTime,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct HealthState {
    pub notices: VecDeque<Notice>,
}

impl HealthState {
    pub fn push_notice(&mut self, level: NoticeLevel, message: String, at: SystemTime) {
        // The same message again (a burst of file events, say) refreshes the time only.
        if let Some(last) = self.notices.back_mut()
            && last.level == level
            && last.message == message
        {
            last.at = at;
            return;
        }
        if self.notices.len() == NOTICES {
            self.notices.pop_front();
        }
        self.notices.push_back(Notice { level, message, at });
    }
}

pub(super) fn render(view: Shared<'_>, state: &HealthState, area: Rect, buf: &mut Buffer) {
    // Components come first: notices get what the table leaves, at most NOTICE_ROWS.
    let table_rows = view.fleet.names().len() as u16 + 1;
    let room = area.height.saturating_sub(table_rows);
    let notice_rows = (state.notices.len().min(NOTICE_ROWS) as u16).min(room);
    let [table_area, notice_area] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(notice_rows)]).areas(area);
    render_table(view, table_area, buf);
    let theme = view.theme;
    let lines: Vec<Line> = state
        .notices
        .iter()
        .rev()
        .take(usize::from(notice_rows))
        .rev()
        .map(|n| {
            let (word, style) = match n.level {
                NoticeLevel::Info => ("info", theme.label()),
                NoticeLevel::Warning => ("warning", theme.warning()),
                NoticeLevel::Error => ("error", theme.error()),
            };
            Line::from(vec![
                Span::styled(format!("{word}: "), style),
                Span::raw(n.message.clone()),
            ])
        })
        .collect();
    Paragraph::new(lines).render(notice_area, buf);
}

/// The table alone; the status panel shows it too when it has no component.
pub(super) fn render_table(view: Shared<'_>, area: Rect, buf: &mut Buffer) {
    if view.fleet.components.is_empty() {
        view.render_placeholder(area, buf);
        return;
    }
    let theme = view.theme;
    let name_width = view
        .fleet
        .components
        .iter()
        .map(|c| c.name.chars().count())
        .chain([4])
        .max()
        .unwrap_or(4) as u16;
    let icon_width = if theme.ascii { 4 } else { 2 };
    // What the HEALTH column gets: the rest after the fixed columns and five gaps. A message that
    // does not fit is left out rather than cut, so the word stays whole.
    let health_width = usize::from(area.width)
        .saturating_sub(usize::from(icon_width + name_width) + 12 + 8 + 7 + 5);
    let health_text = |h: &crate::model::HealthStatus| {
        let full = h.to_string();
        if format::width(&full) <= health_width {
            full
        } else {
            h.word().to_string()
        }
    };
    let header =
        Row::new(["", "NAME", "STATE", "HEALTH", "RESTARTS", "PID"]).style(theme.heading());
    let rows = view.fleet.components.iter().map(|c| {
        Row::new(vec![
            Cell::from(Span::styled(
                theme.health_icon(&c.health),
                theme.health_style(&c.health),
            )),
            Cell::from(c.name.clone()),
            Cell::from(Span::styled(c.state.word(), theme.state_style(c.state))),
            Cell::from(Span::styled(
                health_text(&c.health),
                theme.health_style(&c.health),
            )),
            Cell::from(format!("{:>8}", c.restarts)),
            Cell::from(c.pid.map_or("-".to_string(), |p| p.to_string())),
        ])
    });
    Table::new(
        rows,
        [
            Constraint::Length(icon_width),
            Constraint::Length(name_width),
            Constraint::Length(12),
            Constraint::Fill(1),
            Constraint::Length(8),
            Constraint::Length(7),
        ],
    )
    .header(header)
    .render(area, buf);
}
