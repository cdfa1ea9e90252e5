//! The agents panel (guide §6): the MAC task bus's agents, one row each: an icon for its state,
//! name, state (`ready`, `waiting for: storage`, `component backoff`), queue depth, tasks in
//! flight, done, failed and mean latency, and what it processes.
//!
//! It shows what the core publishes ([`crate::protocol::Event::Agents`]) and decides nothing.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Cell, Row, Table, Widget};

use super::app::Shared;
use super::format;
use crate::model::{AgentState, AgentStatus, HealthStatus};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentsState {
    /// Every registered agent, by name, as last published.
    pub agents: Vec<AgentStatus>,
    /// Set once the core has said which agents there are.
    pub loaded: bool,
}

impl AgentsState {
    pub fn replace(&mut self, agents: Vec<AgentStatus>) {
        self.agents = agents;
        self.loaded = true;
    }
}

/// The health an agent's state reads as, for its icon and colour.
fn as_health(state: &AgentState) -> HealthStatus {
    match state {
        AgentState::Ready => HealthStatus::Healthy,
        AgentState::WaitingFor { .. } => HealthStatus::Degraded(state.to_string()),
        AgentState::ComponentDown { .. } => HealthStatus::Failed(state.to_string()),
    }
}

pub(super) fn render(view: Shared<'_>, state: &AgentsState, area: Rect, buf: &mut Buffer) {
    if !state.loaded || !view.live() {
        view.render_placeholder(area, buf);
        return;
    }
    let theme = view.theme;
    if state.agents.is_empty() {
        Span::styled("no agents registered", theme.dim()).render(area, buf);
        return;
    }
    let width = |items: &mut dyn Iterator<Item = usize>, min: usize| {
        items.max().unwrap_or(0).max(min) as u16
    };
    let name_width = width(&mut state.agents.iter().map(|a| a.name.chars().count()), 4);
    let state_width = width(
        &mut state
            .agents
            .iter()
            .map(|a| a.state.to_string().chars().count()),
        5,
    );
    let icon_width = if theme.ascii { 4 } else { 2 };
    let header = Row::new([
        "",
        "NAME",
        "STATE",
        "QUEUE",
        "RUN",
        "DONE",
        "FAIL",
        "MEAN",
        "PROCESSES",
    ])
    .style(theme.heading());
    let rows = state.agents.iter().map(|a| {
        let health = as_health(&a.state);
        Row::new(vec![
            Cell::from(Span::styled(
                theme.health_icon(&health),
                theme.health_style(&health),
            )),
            Cell::from(a.name.clone()),
            Cell::from(Span::styled(
                a.state.to_string(),
                theme.health_style(&health),
            )),
            Cell::from(format!("{:>5}", a.queued)),
            Cell::from(format!("{:>3}", a.in_flight)),
            Cell::from(format!("{:>6}", a.done)),
            Cell::from(Span::styled(
                format!("{:>4}", a.failed),
                if a.failed > 0 {
                    theme.warning()
                } else {
                    theme.dim()
                },
            )),
            Cell::from(format!(
                "{:>6}",
                a.mean_latency.map_or("-".to_string(), latency)
            )),
            Cell::from(Span::styled(
                a.capabilities.can_process.join(", "),
                theme.dim(),
            )),
        ])
    });
    Table::new(
        rows,
        [
            Constraint::Length(icon_width),
            Constraint::Length(name_width),
            Constraint::Length(state_width),
            Constraint::Length(5),
            Constraint::Length(3),
            Constraint::Length(6),
            Constraint::Length(4),
            Constraint::Length(6),
            Constraint::Fill(1),
        ],
    )
    .header(header)
    .render(area, buf);
}

/// A latency in the unit that keeps it short: `850µs`, `12ms`, `1.5s`.
fn latency(d: std::time::Duration) -> String {
    if d < std::time::Duration::from_millis(1) {
        format!("{}µs", d.as_micros())
    } else {
        format::delay(d)
    }
}
