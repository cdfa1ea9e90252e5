//! The actions pane (guide §3.1 "Actions" and §3.2 "System Actions"): the commands and recovery
//! actions available, the outcome of the last command, and an input line with history.
//!
//! Enter parses the line with [`crate::command::parse`]: a valid line becomes an
//! [`Effect::Send`] and its answer is shown when it comes back; an invalid line sends nothing and
//! shows the parser's message; `help` is answered here. Answers pile up like a terminal's
//! scrollback (the last [`TRANSCRIPT`]) and the view follows the newest line; PgUp PgDn scroll,
//! and a hint line says so whenever something is out of sight. A paste is taken whole: each of its
//! lines runs as if typed and entered, the last one (without a newline) stays in the input. The
//! input slides sideways by display width, so the cursor and the end of long or wide input stay
//! on screen. No key closes the pane (Ctrl-C clears the line, and on an empty line says how to
//! close the window instead). This module must not send anything itself: requests leave as
//! effects.

use std::collections::BTreeMap;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::buffer::Buffer;
use ratatui::layout::{Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::app::{Effect, Shared, clamp_position};
use super::format;
use crate::command::{ActionLine, ParseContext, Verb, help_text, parse, to_request};
use crate::protocol::{Request, Response};

/// Lines of history kept.
pub const HISTORY: usize = 100;
/// Earlier outcomes kept above the newest one.
pub const TRANSCRIPT: usize = 20;
/// Lines one paste may run at most (the rest is dropped, and the pane says so).
pub const PASTE_LINES: usize = 100;

const PROMPT: &str = "> ";

/// The result of the last line, for display.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Outcome {
    /// Nothing typed yet.
    #[default]
    None,
    /// Sent; waiting for the core.
    Pending { line: String },
    /// The core's answer.
    Answer { line: String, response: Response },
    /// The core refused, or the line did not parse (then nothing was sent).
    Error { line: String, message: String },
    /// Help, answered locally.
    Help { line: String, text: String },
    /// A word from the pane itself (e.g. how to close it).
    Note(String),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActionsState {
    pub input: String,
    /// The cursor, in characters from the start of `input`.
    pub cursor: usize,
    /// Lines entered, oldest first; no two equal neighbours.
    pub history: Vec<String>,
    /// While browsing history: the entry shown, and the line that was being typed.
    browsing: Option<(usize, String)>,
    /// The newest outcome.
    pub outcome: Outcome,
    /// The request `outcome` waits for, if any.
    outcome_id: Option<u64>,
    /// Earlier outcomes, oldest first, with the request each waited for.
    pub transcript: std::collections::VecDeque<(Option<u64>, Outcome)>,
    /// Requests sent and not answered: id → the line typed.
    pending: BTreeMap<u64, String>,
    /// Output rows scrolled back from the newest with PgUp; 0 follows the newest.
    scroll: usize,
    /// For a component's own input pane (`TerminalInterface`): `(component, panel)`; lines go to
    /// the component as typed instead of being parsed as commands.
    pub raw: Option<(String, String)>,
}

impl ActionsState {
    /// Handles one key; `next_id` numbers the requests the panel sends.
    pub fn on_key(&mut self, key: KeyEvent, ctx: &ParseContext, next_id: &mut u64) -> Vec<Effect> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        match key.code {
            KeyCode::Enter => return self.submit(ctx, next_id),
            KeyCode::Char('c' | 'd') if ctrl && self.input.is_empty() => {
                self.show(None, Outcome::Note(CLOSE_HINT.to_string()));
            }
            KeyCode::Char('c') if ctrl => self.set_input(String::new()),
            KeyCode::Char('d') if ctrl => self.delete_at_cursor(),
            KeyCode::Char('u') if ctrl => {
                let rest: String = self.input.chars().skip(self.cursor).collect();
                self.input = rest;
                self.cursor = 0;
            }
            KeyCode::Char('k') if ctrl => {
                self.input = self.input.chars().take(self.cursor).collect();
            }
            KeyCode::Char('w') if ctrl => self.delete_word_before(),
            KeyCode::Char('a') if ctrl => self.cursor = 0,
            KeyCode::Char('e') if ctrl => self.cursor = self.len(),
            KeyCode::Char('l') if ctrl => {
                self.outcome = Outcome::None;
                self.outcome_id = None;
                self.transcript.clear();
                self.scroll = 0;
            }
            KeyCode::Char(c) if !ctrl && !alt => {
                let at = self.byte_index(self.cursor);
                self.input.insert(at, c);
                self.cursor += 1;
                self.browsing = None;
            }
            KeyCode::Backspace if self.cursor > 0 => {
                self.cursor -= 1;
                self.delete_at_cursor();
            }
            KeyCode::Delete => self.delete_at_cursor(),
            KeyCode::Left => self.cursor = self.cursor.saturating_sub(1),
            KeyCode::Right => self.cursor = (self.cursor + 1).min(self.len()),
            KeyCode::Home => self.cursor = 0,
            KeyCode::End => self.cursor = self.len(),
            KeyCode::Up => self.history_back(),
            KeyCode::Down => self.history_forward(),
            KeyCode::Esc => {
                self.browsing = None;
                self.set_input(String::new());
            }
            KeyCode::PageUp => self.scroll = self.scroll.saturating_add(5),
            KeyCode::PageDown => self.scroll = self.scroll.saturating_sub(5),
            _ => {}
        }
        Vec::new()
    }

    /// A paste, whole: every complete line runs, the rest stays in the input.
    pub fn on_paste(&mut self, text: &str, ctx: &ParseContext, next_id: &mut u64) -> Vec<Effect> {
        let text = text
            .replace("\r\n", "\n")
            .replace('\r', "\n")
            .replace('\t', " ");
        let mut parts: Vec<&str> = text.split('\n').collect();
        let rest = parts.pop().unwrap_or("");
        let mut effects = Vec::new();
        let dropped = parts.len().saturating_sub(PASTE_LINES);
        for line in parts.into_iter().take(PASTE_LINES) {
            self.insert(line);
            effects.extend(self.submit(ctx, next_id));
        }
        self.insert(rest);
        if dropped > 0 {
            self.show(
                None,
                Outcome::Note(format!(
                    "the paste had more than {PASTE_LINES} lines; the last {dropped} were not run"
                )),
            );
        }
        effects
    }

    /// Inserts text at the cursor, control characters left out.
    fn insert(&mut self, text: &str) {
        let clean: String = text.chars().filter(|c| !c.is_control()).collect();
        let at = self.byte_index(self.cursor);
        self.input.insert_str(at, &clean);
        self.cursor += clean.chars().count();
        self.browsing = None;
    }

    /// Makes `outcome` the newest, moving the one before into the transcript.
    fn show(&mut self, id: Option<u64>, outcome: Outcome) {
        let previous = std::mem::replace(&mut self.outcome, outcome);
        let previous_id = std::mem::replace(&mut self.outcome_id, id);
        if previous != Outcome::None {
            if self.transcript.len() == TRANSCRIPT {
                self.transcript.pop_front();
            }
            self.transcript.push_back((previous_id, previous));
        }
        self.scroll = 0;
    }

    fn len(&self) -> usize {
        self.input.chars().count()
    }

    fn byte_index(&self, chars: usize) -> usize {
        self.input
            .char_indices()
            .nth(chars)
            .map_or(self.input.len(), |(i, _)| i)
    }

    fn set_input(&mut self, input: String) {
        self.cursor = input.chars().count();
        self.input = input;
    }

    fn delete_at_cursor(&mut self) {
        if self.cursor < self.len() {
            let at = self.byte_index(self.cursor);
            self.input.remove(at);
        }
    }

    fn delete_word_before(&mut self) {
        let chars: Vec<char> = self.input.chars().collect();
        let mut start = self.cursor.min(chars.len());
        while start > 0 && chars[start - 1] == ' ' {
            start -= 1;
        }
        while start > 0 && chars[start - 1] != ' ' {
            start -= 1;
        }
        self.input = chars[..start].iter().chain(&chars[self.cursor..]).collect();
        self.cursor = start;
    }

    fn history_back(&mut self) {
        let index = match &self.browsing {
            None if self.history.is_empty() => return,
            None => {
                self.browsing = Some((self.history.len() - 1, self.input.clone()));
                self.history.len() - 1
            }
            Some((i, draft)) => {
                let i = i.saturating_sub(1);
                self.browsing = Some((i, draft.clone()));
                i
            }
        };
        self.set_input(self.history[index].clone());
    }

    fn history_forward(&mut self) {
        match self.browsing.take() {
            None => {}
            Some((i, draft)) if i + 1 >= self.history.len() => self.set_input(draft),
            Some((i, draft)) => {
                self.browsing = Some((i + 1, draft));
                self.set_input(self.history[i + 1].clone());
            }
        }
    }

    fn submit(&mut self, ctx: &ParseContext, next_id: &mut u64) -> Vec<Effect> {
        let line = self.input.trim().to_string();
        self.browsing = None;
        self.set_input(String::new());
        if line.is_empty() {
            return Vec::new();
        }
        if self.history.last() != Some(&line) {
            if self.history.len() == HISTORY {
                self.history.remove(0);
            }
            self.history.push(line.clone());
        }
        self.scroll = 0;
        if let Some((component, panel)) = self.raw.clone() {
            let id = *next_id;
            *next_id += 1;
            self.pending.insert(id, line.clone());
            self.show(Some(id), Outcome::Pending { line: line.clone() });
            return vec![Effect::Send {
                id,
                request: Request::PanelInput {
                    component: component.clone(),
                    panel: panel.clone(),
                    line,
                },
            }];
        }
        let action = match parse(&line, ctx) {
            Ok(action) => action,
            Err(error) => {
                self.show(
                    None,
                    Outcome::Error {
                        line,
                        message: error.to_string(),
                    },
                );
                return Vec::new();
            }
        };
        match (to_request(&action), action) {
            (Some(request), _) => {
                let id = *next_id;
                *next_id += 1;
                self.pending.insert(id, line.clone());
                self.show(Some(id), Outcome::Pending { line });
                vec![Effect::Send { id, request }]
            }
            (None, ActionLine::Open(component)) => {
                let id = *next_id;
                *next_id += 1;
                self.pending.insert(id, line.clone());
                self.show(Some(id), Outcome::Pending { line });
                vec![Effect::Open {
                    id: Some(id),
                    component,
                    fleet: ctx.components.clone(),
                }]
            }
            (None, ActionLine::Help(topic)) => {
                self.show(
                    None,
                    Outcome::Help {
                        line,
                        text: help_text(topic),
                    },
                );
                Vec::new()
            }
            (
                None,
                ActionLine::Command { .. }
                | ActionLine::Status(_)
                | ActionLine::Heal(_)
                | ActionLine::Logs(_),
            ) => {
                self.show(
                    None,
                    Outcome::Error {
                        line,
                        message: "nothing to send for this line".into(),
                    },
                );
                Vec::new()
            }
        }
    }

    /// The core answered request `id`.
    pub fn on_reply(&mut self, id: u64, result: Result<Response, String>) {
        let line = self.pending.remove(&id).unwrap_or_default();
        self.scroll = 0;
        let outcome = match result {
            Ok(response) => Outcome::Answer { line, response },
            Err(message) => Outcome::Error { line, message },
        };
        if self.outcome_id == Some(id) {
            self.outcome = outcome;
            return;
        }
        match self.transcript.iter_mut().find(|(i, _)| *i == Some(id)) {
            Some(slot) => slot.1 = outcome,
            // Answered after it scrolled out of the transcript: show it as the newest.
            None => self.show(Some(id), outcome),
        }
    }

    /// The visible part of the input and the cursor's column within it, for a row `width` wide
    /// (prompt included): the view slides so the cursor always shows.
    /// Widths are display columns (an emoji takes two); when the start is cut off, `…` says so.
    fn input_view(&self, width: usize) -> (String, usize) {
        let chars: Vec<char> = self.input.chars().collect();
        let cursor = self.cursor.min(chars.len());
        let cols = |c: char| format::width(c.encode_utf8(&mut [0; 4]));
        // Columns for text, keeping one free for the cursor after the last character.
        let room = width.saturating_sub(PROMPT.len() + 1).max(1);
        let mut start = cursor;
        let mut used = 0;
        while start > 0 && used + cols(chars[start - 1]) <= room {
            used += cols(chars[start - 1]);
            start -= 1;
        }
        let marker = if start > 0 { "…" } else { "" };
        if start > 0 {
            while used + 1 > room && start < cursor {
                used -= cols(chars[start]);
                start += 1;
            }
        }
        let marker_cols = usize::from(start > 0);
        let column = PROMPT.len() + marker_cols + used;
        let mut visible = marker.to_string();
        let mut shown = marker_cols;
        for &c in &chars[start..] {
            if shown + cols(c) > room + 1 {
                break;
            }
            shown += cols(c);
            visible.push(c);
        }
        (visible, column)
    }

    /// Where the terminal cursor goes, given the panel's inner area.
    pub fn cursor(&self, area: Rect) -> Option<Position> {
        if area.is_empty() {
            return None;
        }
        let (_, column) = self.input_view(usize::from(area.width));
        let x = area
            .x
            .saturating_add(u16::try_from(column).unwrap_or(u16::MAX));
        Some(clamp_position(area, x, area.bottom() - 1))
    }
}

/// The commands and actions on offer, as text to wrap: what is particular to this pane first
/// (the component's own recovery actions, or the components of the fleet), then the commands.
fn available(view: Shared<'_>) -> Vec<String> {
    let mut lines = Vec::new();
    match (view.component, view.status()) {
        (Some(_), Some(status)) if !status.recovery_actions.is_empty() => {
            lines.push(format!(
                "{} actions: {}",
                status.name,
                status.recovery_actions.join(" ")
            ));
        }
        (Some(_), Some(_) | None) => {}
        (None, _) => {
            let names = view.fleet.names();
            lines.push(if names.is_empty() {
                "components: none known yet".to_string()
            } else if names.len() > crate::console::session::OVERVIEW_TILES_MAX {
                // A large fleet's names would push the commands off the pane.
                format!(
                    "components: {} ({} … {}; status lists them, open NAME shows one)",
                    names.len(),
                    names[0],
                    names[names.len() - 1]
                )
            } else {
                format!("components: {}", names.join(" "))
            });
        }
    }
    let commands: Vec<&str> = Verb::ALL.iter().map(|v| v.name()).collect();
    lines.push(format!("commands: {}", commands.join(" ")));
    lines
}

/// What Ctrl-C or Ctrl-D on an empty line says instead of closing the pane.
pub const CLOSE_HINT: &str = "this pane stays open; to close the console: tmux prefix then & (this window) or `hms-console down`";

/// What the outcome looks like, as styled lines before wrapping.
fn outcome_lines(view: Shared<'_>, outcome: &Outcome) -> Vec<(String, ratatui::style::Style)> {
    let theme = view.theme;
    let echo = |line: &str| (format!("{PROMPT}{line}"), theme.dim());
    match outcome {
        Outcome::None => vec![(
            "type a command and press Enter; 'help' lists them".into(),
            theme.dim(),
        )],
        Outcome::Note(text) => vec![(text.clone(), theme.warning())],
        Outcome::Pending { line } => vec![echo(line), ("sending…".into(), theme.dim())],
        Outcome::Error { line, message } => vec![echo(line), (message.clone(), theme.error())],
        Outcome::Help { line, text } => {
            let mut out = vec![echo(line)];
            out.extend(
                text.lines()
                    .map(|l| (l.to_string(), ratatui::style::Style::new())),
            );
            out
        }
        Outcome::Answer { line, response } => {
            let mut out = vec![echo(line)];
            out.extend(describe(view, response));
            out
        }
    }
}

/// A response in the operator's words.
fn describe(view: Shared<'_>, response: &Response) -> Vec<(String, ratatui::style::Style)> {
    let theme = view.theme;
    let plain = ratatui::style::Style::new();
    match response {
        Response::Done { message } => vec![(message.clone(), theme.good())],
        Response::Status { components } if components.is_empty() => {
            vec![("no components".into(), theme.dim())]
        }
        Response::Status { components } => components
            .iter()
            .map(|c| {
                let uptime = c
                    .uptime(view.now)
                    .map_or(String::new(), |u| format!(" · up {}", format::duration(u)));
                let pid = c.pid.map_or(String::new(), |p| format!(" · pid {p}"));
                let health = match super::theme::known_health(c) {
                    Some(h) => h.to_string(),
                    None => "unknown".to_string(),
                };
                (
                    format!(
                        "{} {} {} · {health}{pid}{uptime} · restarts {}",
                        theme.status_icon(c),
                        c.name,
                        c.state,
                        c.restarts
                    ),
                    theme.status_style(c),
                )
            })
            .collect(),
        Response::Logs { lines } if lines.is_empty() => vec![("no output yet".into(), theme.dim())],
        Response::Logs { lines } => lines
            .iter()
            .map(|l| (format::clean(&l.text), super::logs::line_style(theme, l)))
            .collect(),
        Response::Issues { issues } => issues
            .iter()
            .map(|i| {
                (
                    format!("{} {} ({})", i.component, i.issue_type, i.severity),
                    theme.warning(),
                )
            })
            .collect(),
        Response::PanelText { text } => text.lines().map(|l| (l.to_string(), plain)).collect(),
        Response::History { history } => vec![(
            format!(
                "{}: {} samples, {} timeline entries",
                history.component,
                history.samples.len(),
                history.timeline.len()
            ),
            plain,
        )],
        Response::Pong => vec![("pong".into(), theme.good())],
        Response::Knowledge { answer } => vec![(format!("{answer:?}"), plain)],
        Response::Mac { answer } => vec![(format!("{answer:?}"), plain)],
        Response::Subscribed => vec![("subscribed".into(), theme.good())],
        // No actions-pane command asks for plans yet (`hms-console plans` does).
        Response::Plans { plans } => plans
            .iter()
            .map(|p| {
                (
                    format!("plan {} for {}: {}", p.id, p.component, p.state.word()),
                    plain,
                )
            })
            .collect(),
    }
}

pub(super) fn render(view: Shared<'_>, state: &ActionsState, area: Rect, buf: &mut Buffer) {
    let width = usize::from(area.width);
    let height = usize::from(area.height);
    let theme = view.theme;
    // The input takes the last row. The output (earlier outcomes, then the newest) matters most,
    // so it gets the rows it needs; the list of actions gets the rest, but always one row when
    // there are three. The output shows its newest lines; a hint row says what is out of sight.
    let budget = height.saturating_sub(1);
    let offered: Vec<String> = available(view)
        .iter()
        .flat_map(|l| format::wrap(l, width))
        .collect();
    let wrap = |outcome: &Outcome| -> Vec<(String, ratatui::style::Style)> {
        outcome_lines(view, outcome)
            .into_iter()
            .flat_map(|(text, style)| {
                format::wrap(&text, width)
                    .into_iter()
                    .map(move |l| (l, style))
            })
            .collect()
    };
    let mut output: Vec<(String, ratatui::style::Style)> = Vec::new();
    for (_, earlier) in &state.transcript {
        output.extend(wrap(earlier));
    }
    output.extend(wrap(&state.outcome));
    let floor = usize::from(budget >= 3);
    let offered_rows = offered
        .len()
        .min(budget.saturating_sub(output.len()).max(floor));
    let mut output_rows = budget - offered_rows;
    let overflow = output.len() > output_rows;
    if overflow && output_rows >= 2 {
        output_rows -= 1;
    }
    let max_scroll = output.len().saturating_sub(output_rows);
    let scroll = state.scroll.min(max_scroll);
    let end = output.len() - scroll;
    let start = end.saturating_sub(output_rows);
    let mut lines: Vec<Line> = offered
        .into_iter()
        .take(offered_rows)
        .map(|l| Line::styled(l, theme.dim()))
        .collect();
    if overflow && budget - offered_rows >= 2 {
        let mut hint = Vec::new();
        if start > 0 {
            hint.push(format!("{start} more above"));
        }
        if scroll > 0 {
            hint.push(format!("{scroll} below"));
        }
        hint.push("PgUp/PgDn scroll".to_string());
        lines.push(Line::styled(hint.join(" · "), theme.dim()));
    }
    lines.extend(
        output[start..end]
            .iter()
            .map(|(l, style)| Line::styled(l.clone(), *style)),
    );
    while lines.len() < budget {
        lines.push(Line::default());
    }
    lines.truncate(budget);
    let (visible, _) = state.input_view(width);
    lines.push(Line::from(vec![
        Span::styled(PROMPT, theme.label()),
        Span::raw(visible),
    ]));
    Paragraph::new(lines).render(area, buf);
}
