//! The text panel: free text a linked component writes into its own tmux view through
//! `TerminalInterface::update_panel` (replace) and `append_to_panel` (one more line).
//!
//! The text is bounded by lines; when it is taller than the pane the newest lines show. This
//! module must not interpret the text beyond cleaning terminal escapes.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Widget};

use super::app::Shared;
use super::format;

/// Lines kept.
pub const MAX_LINES: usize = 1000;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TextState {
    pub lines: Vec<String>,
}

impl TextState {
    /// Replaces the text, or appends one line (which may itself hold newlines).
    pub fn set(&mut self, text: &str, append: bool) {
        if !append {
            self.lines.clear();
        }
        self.lines.extend(text.lines().map(format::clean));
        if self.lines.len() > MAX_LINES {
            let excess = self.lines.len() - MAX_LINES;
            self.lines.drain(..excess);
        }
    }
}

pub(super) fn render(view: Shared<'_>, state: &TextState, area: Rect, buf: &mut Buffer) {
    if state.lines.is_empty() {
        if view.live() {
            Paragraph::new(Line::styled("nothing written yet", view.theme.dim())).render(area, buf);
        } else {
            view.render_placeholder(area, buf);
        }
        return;
    }
    let start = state.lines.len().saturating_sub(usize::from(area.height));
    let lines: Vec<Line> = state.lines[start..]
        .iter()
        .map(|l| Line::raw(l.clone()))
        .collect();
    Paragraph::new(lines).render(area, buf);
}
