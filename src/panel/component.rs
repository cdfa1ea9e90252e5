//! The component tile for the overview grid (guide §3.2 component panels): icon and state, the
//! health message when unhealthy, pid and uptime, restarts, and the last lines the component wrote.
//!
//! Made for small panes: every line is short and the log tail takes whatever rows are left. It only
//! reads the model.

use std::collections::VecDeque;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::app::Shared;
use super::{format, logs};
use crate::model::LogLine;

/// Log lines kept (and asked for on connect).
pub const LOG_LINES: usize = 20;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TileState {
    pub tail: VecDeque<LogLine>,
}

impl TileState {
    pub fn push(&mut self, line: LogLine) {
        if self.tail.len() == LOG_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line);
    }

    pub fn replace(&mut self, lines: Vec<LogLine>) {
        let skip = lines.len().saturating_sub(LOG_LINES);
        self.tail = lines.into_iter().skip(skip).collect();
    }
}

pub(super) fn render(view: Shared<'_>, state: &TileState, area: Rect, buf: &mut Buffer) {
    let Some(status) = view.status() else {
        view.render_placeholder(area, buf);
        return;
    };
    let theme = view.theme;
    let mut lines = vec![Line::from(vec![
        Span::raw(format!("{} ", theme.health_icon(&status.health))),
        Span::styled(status.state.word(), theme.state_style(status.state)),
    ])];
    if let Some(message) = status.health.message() {
        lines.push(Line::styled(
            format!("{}: {message}", status.health.word()),
            theme.health_style(&status.health),
        ));
    }
    let pid = status.pid.map_or("-".to_string(), |p| p.to_string());
    let uptime = status
        .uptime(view.now)
        .map_or("-".to_string(), format::duration);
    lines.push(Line::from(vec![
        Span::styled("pid ", theme.label()),
        Span::raw(pid),
        Span::styled("  up ", theme.label()),
        Span::raw(uptime),
    ]));
    lines.push(Line::from(vec![
        Span::styled("restarts ", theme.label()),
        Span::raw(status.restarts.to_string()),
    ]));
    let room = usize::from(area.height).saturating_sub(lines.len());
    let skip = state.tail.len().saturating_sub(room);
    for line in state.tail.iter().skip(skip) {
        // Quiet output is dimmed so the tile's own facts stand out; stderr and errors keep their
        // colour.
        let style = match logs::line_style(theme, line) {
            plain if plain == Style::new() => theme.dim(),
            highlighted => highlighted,
        };
        lines.push(Line::styled(format::clean(&line.text), style));
    }
    Paragraph::new(lines).render(area, buf);
}
