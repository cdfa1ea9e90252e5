//! The actions pane (guide §3.1 "Actions" and §3.2 "System Actions"): the commands and recovery
//! actions available, the outcome of the last command, and an input line with history.
//!
//! Enter parses the line with [`crate::command::parse`]: a valid line becomes an
//! [`Effect::Send`] and its answer is shown when it comes back; an invalid line sends nothing and
//! shows the parser's message; `help` is answered here. This module must not send anything
//! itself: requests leave as effects.

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
    pub outcome: Outcome,
    /// Requests sent and not answered: id → the line typed.
    pending: BTreeMap<u64, String>,
    /// Outcome lines scrolled past with PgDn.
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
            KeyCode::Char('c') if ctrl => {
                if self.input.is_empty() {
                    return vec![Effect::Quit];
                }
                self.set_input(String::new());
            }
            KeyCode::Char('d') if ctrl => {
                if self.input.is_empty() {
                    return vec![Effect::Quit];
                }
                self.delete_at_cursor();
            }
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
            KeyCode::Char('l') if ctrl => self.outcome = Outcome::None,
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
            KeyCode::PageUp => self.scroll = self.scroll.saturating_sub(5),
            KeyCode::PageDown => self.scroll = self.scroll.saturating_add(5),
            _ => {}
        }
        Vec::new()
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
        if let Some((component, panel)) = &self.raw {
            let id = *next_id;
            *next_id += 1;
            self.pending.insert(id, line.clone());
            self.outcome = Outcome::Pending { line: line.clone() };
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
                self.outcome = Outcome::Error {
                    line,
                    message: error.to_string(),
                };
                return Vec::new();
            }
        };
        match (to_request(&action), action) {
            (Some(request), _) => {
                let id = *next_id;
                *next_id += 1;
                self.pending.insert(id, line.clone());
                self.outcome = Outcome::Pending { line };
                vec![Effect::Send { id, request }]
            }
            (None, ActionLine::Help(topic)) => {
                self.outcome = Outcome::Help {
                    line,
                    text: help_text(topic),
                };
                Vec::new()
            }
            (
                None,
                ActionLine::Command { .. }
                | ActionLine::Status(_)
                | ActionLine::Heal(_)
                | ActionLine::Logs(_),
            ) => {
                self.outcome = Outcome::Error {
                    line,
                    message: "nothing to send for this line".into(),
                };
                Vec::new()
            }
        }
    }

    /// The core answered request `id`.
    pub fn on_reply(&mut self, id: u64, result: Result<Response, String>) {
        let line = self.pending.remove(&id).unwrap_or_default();
        self.scroll = 0;
        self.outcome = match result {
            Ok(response) => Outcome::Answer { line, response },
            Err(message) => Outcome::Error { line, message },
        };
    }

    /// The visible part of the input and the cursor's column within it, for a row `width` wide
    /// (prompt included): the view slides so the cursor always shows.
    fn input_view(&self, width: usize) -> (String, usize) {
        let room = width.saturating_sub(PROMPT.len() + 1).max(1);
        let start = self.cursor.saturating_sub(room);
        let visible: String = self.input.chars().skip(start).take(room + 1).collect();
        (visible, PROMPT.len() + self.cursor - start)
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
            } else {
                format!("components: {}", names.join(" "))
            });
        }
    }
    let commands: Vec<&str> = Verb::ALL.iter().map(|v| v.name()).collect();
    lines.push(format!("commands: {}", commands.join(" ")));
    lines
}

/// What the outcome looks like, as styled lines before wrapping.
fn outcome_lines(view: Shared<'_>, outcome: &Outcome) -> Vec<(String, ratatui::style::Style)> {
    let theme = view.theme;
    let echo = |line: &str| (format!("{PROMPT}{line}"), theme.dim());
    match outcome {
        Outcome::None => vec![(
            "type a command and press Enter; 'help' lists them".into(),
            theme.dim(),
        )],
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
                (
                    format!(
                        "{} {} {} · {}{pid}{uptime} · restarts {}",
                        theme.health_icon(&c.health),
                        c.name,
                        c.state,
                        c.health,
                        c.restarts
                    ),
                    theme.health_style(&c.health),
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
    // The input takes the last row. The outcome of the last line matters most, so it gets the
    // rows it needs; the list of actions gets the rest, but always one row when there are three.
    let budget = height.saturating_sub(1);
    let offered: Vec<String> = available(view)
        .iter()
        .flat_map(|l| format::wrap(l, width))
        .collect();
    let outcome: Vec<(String, ratatui::style::Style)> = outcome_lines(view, &state.outcome)
        .into_iter()
        .flat_map(|(text, style)| {
            format::wrap(&text, width)
                .into_iter()
                .map(move |l| (l, style))
        })
        .collect();
    let floor = usize::from(budget >= 3);
    let offered_rows = offered
        .len()
        .min(budget.saturating_sub(outcome.len()).max(floor));
    let outcome_rows = budget - offered_rows;
    let max_scroll = outcome.len().saturating_sub(outcome_rows);
    let scroll = state.scroll.min(max_scroll);
    let mut lines: Vec<Line> = offered
        .into_iter()
        .take(offered_rows)
        .map(|l| Line::styled(l, theme.dim()))
        .collect();
    lines.extend(
        outcome
            .into_iter()
            .skip(scroll)
            .take(outcome_rows)
            .map(|(l, style)| Line::styled(l, style)),
    );
    while lines.len() < budget {
        lines.push(Line::default());
    }
    let (visible, _) = state.input_view(width);
    lines.push(Line::from(vec![
        Span::styled(PROMPT, theme.label()),
        Span::raw(visible),
    ]));
    Paragraph::new(lines).render(area, buf);
}
