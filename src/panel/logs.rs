//! The logs panel (guide §3.1 "Component Logs"): the tail of a component's output, stderr and
//! error lines highlighted, following the end unless the operator scrolled up (↑ ↓ PgUp PgDn,
//! Home, End). Without a component it interleaves every component's output with a name prefix.
//!
//! The buffer is bounded; lines are cleaned of terminal escapes before they are drawn. This module
//! must not ask the core for anything: lines arrive as events and as the snapshot on connect.

use std::collections::VecDeque;

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::app::Shared;
use super::format;
use super::theme::Theme;
use crate::model::{LogLine, LogStream};

/// Lines kept in memory.
pub const CAPACITY: usize = 2000;
/// Lines asked for on connect.
pub const SNAPSHOT_LINES: usize = 500;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogsState {
    pub lines: VecDeque<LogLine>,
    /// How many lines the view is scrolled up from the end; 0 follows new output.
    pub offset: usize,
}

impl LogsState {
    /// A new line; a scrolled view keeps showing the same lines.
    pub fn push(&mut self, line: LogLine, page: usize) {
        if self.lines.len() == CAPACITY {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
        if self.offset > 0 {
            self.offset += 1;
            self.clamp(page);
        }
    }

    /// The snapshot on (re)connect replaces what was there, so nothing is shown twice.
    pub fn replace(&mut self, lines: Vec<LogLine>) {
        let skip = lines.len().saturating_sub(CAPACITY);
        self.lines = lines.into_iter().skip(skip).collect();
        self.offset = 0;
    }

    fn max_offset(&self, page: usize) -> usize {
        self.lines.len().saturating_sub(page.max(1))
    }

    /// Keeps the view inside the buffer after a resize or new lines.
    pub fn clamp(&mut self, page: usize) {
        self.offset = self.offset.min(self.max_offset(page));
    }

    pub fn on_key(&mut self, key: KeyEvent, page: usize) {
        let step = page.saturating_sub(1).max(1);
        self.offset = match key.code {
            KeyCode::Up | KeyCode::Char('k') => self.offset.saturating_add(1),
            KeyCode::Down | KeyCode::Char('j') => self.offset.saturating_sub(1),
            KeyCode::PageUp => self.offset.saturating_add(step),
            KeyCode::PageDown => self.offset.saturating_sub(step),
            KeyCode::Home | KeyCode::Char('g') => usize::MAX,
            KeyCode::End | KeyCode::Char('G') => 0,
            _ => self.offset,
        };
        self.clamp(page);
    }

    /// The bottom-right hint while scrolled.
    pub fn scroll_hint(&self, theme: &Theme) -> Option<String> {
        (self.offset > 0).then(|| {
            format!(
                " {} {} newer · End follows ",
                theme.down_arrow(),
                self.offset
            )
        })
    }
}

/// Does a line read like an error?
pub fn is_error(text: &str) -> bool {
    let lower = text.to_lowercase();
    [
        "error",
        "panic",
        "fatal",
        "exception",
        "traceback",
        "failed",
    ]
    .iter()
    .any(|w| lower.contains(w))
}

pub(super) fn line_style(theme: &Theme, line: &LogLine) -> Style {
    if is_error(&line.text) {
        return theme.error();
    }
    match line.stream {
        LogStream::Stdout => Style::new(),
        LogStream::Stderr => theme.warning(),
        LogStream::System => theme.label(),
    }
}

pub(super) fn render(view: Shared<'_>, state: &LogsState, area: Rect, buf: &mut Buffer) {
    if state.lines.is_empty() {
        if view.live() {
            Paragraph::new(Line::styled("no output yet", view.theme.dim())).render(area, buf)
        } else {
            view.render_placeholder(area, buf)
        }
        return;
    }
    let height = usize::from(area.height);
    let end = state.lines.len() - state.offset.min(state.lines.len());
    let start = end.saturating_sub(height);
    let prefix = view.component.is_none();
    let separator = if view.theme.ascii { "|" } else { "│" };
    let lines: Vec<Line> = state
        .lines
        .range(start..end)
        .map(|line| {
            let style = line_style(view.theme, line);
            let mut spans = Vec::with_capacity(2);
            if prefix {
                spans.push(Span::styled(
                    format!("{} {separator} ", line.component),
                    view.theme.dim(),
                ));
            }
            spans.push(Span::styled(format::clean(&line.text), style));
            Line::from(spans)
        })
        .collect();
    Paragraph::new(lines).render(area, buf);
}
