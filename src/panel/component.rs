//! The component tile for the overview grid (guide §3.2 component panels): icon and state, the
//! health message when unhealthy, pid and uptime, restarts, a CPU trend with the figures now, and
//! the last lines the component wrote.
//!
//! Made for small panes: every line is short and the log tail takes whatever rows are left. It only
//! reads the model.

use std::collections::VecDeque;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use std::time::SystemTime;

use super::app::Shared;
use super::metrics::{Series, has_process};
use super::{format, logs};
use crate::model::{ComponentStatus, LogLine, ProcessMetrics};
use crate::protocol::ComponentHistory;

/// Log lines kept (and asked for on connect).
pub const LOG_LINES: usize = 20;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TileState {
    pub tail: VecDeque<LogLine>,
    /// CPU samples for the trend (gaps while there is no process).
    pub cpu: Series,
}

impl TileState {
    pub fn on_process(&mut self, metrics: &ProcessMetrics, at: SystemTime) {
        self.cpu.push(at, Some(metrics.cpu_percent));
    }

    /// A process that is gone leaves a gap and no figures.
    pub fn on_status(&mut self, status: &ComponentStatus) {
        if !has_process(status)
            && self.cpu.last().is_some()
            && let Some(at) = status.last_exit.as_ref().map(|e| e.at)
        {
            self.cpu.push(at, None);
        }
    }

    /// The core's history: the trend starts full.
    pub fn seed_history(&mut self, history: &ComponentHistory) {
        let mut cpu = Series::default();
        for sample in &history.samples {
            cpu.push(sample.at, sample.metrics.as_ref().map(|m| m.cpu_percent));
        }
        if !cpu.is_empty() {
            self.cpu = cpu;
        }
    }

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
        Span::raw(format!("{} ", theme.status_icon(status))),
        Span::styled(status.state.word(), theme.state_style(status.state)),
    ])];
    if let Some(health) = super::theme::known_health(status)
        && let Some(message) = health.message()
    {
        lines.push(Line::styled(
            format!("{}: {message}", health.word()),
            theme.health_style(health),
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
    // The CPU trend and the figure now, while there is a process (a stopped tile gives its rows
    // to the output that says why it stopped).
    if has_process(status)
        && let Some(cpu) = state.cpu.last()
    {
        let now = format!("{cpu:.1}% ");
        let width = usize::from(area.width)
            .saturating_sub(4 + now.len())
            .min(60);
        lines.push(Line::from(vec![
            Span::styled("cpu ", theme.label()),
            Span::raw(now),
            Span::styled(
                super::metrics::trend(theme, &state.cpu, width),
                theme.good(),
            ),
        ]));
    }
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
