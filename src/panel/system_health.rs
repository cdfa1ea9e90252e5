//! The system health panel (guide §3.2 "System Health"): one row per component with its icon,
//! name, state, health, restarts and pid, worst first (failed, critical, degraded, unknown,
//! healthy; fleet order among equals), and below them the latest notices from the core
//! (escalations, breaker openings, a rejected config or layout edit), each with its time, under
//! the recovery plans that are running (coordinated recovery, guide §4.2), each with its step.
//! When the rows do not fit, the last one says `+N more` and ↑ ↓ PgUp PgDn scroll.
//!
//! It only reads the model; it must not decide anything about health itself.

use std::collections::VecDeque;
use std::time::SystemTime;

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Widget};

use super::app::Shared;
use super::format;
use super::theme::{badness_rank, known_health};
use crate::model::{ComponentStatus, PlanState, PlanStatus, RecoveryStep, StepState};
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
    /// Component rows scrolled past, from the top.
    pub scroll: usize,
    /// The recovery plans running, oldest first.
    pub plans: Vec<PlanStatus>,
}

impl HealthState {
    /// ↑ ↓ (or k j) one row, PgUp PgDn a page, Home End; `rows` components, `page` rows shown.
    pub fn on_key(&mut self, key: KeyEvent, rows: usize, page: usize) {
        let step = page.saturating_sub(2).max(1);
        self.scroll = match key.code {
            KeyCode::Up | KeyCode::Char('k') => self.scroll.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => self.scroll.saturating_add(1),
            KeyCode::PageUp => self.scroll.saturating_sub(step),
            KeyCode::PageDown => self.scroll.saturating_add(step),
            KeyCode::Home | KeyCode::Char('g') => 0,
            KeyCode::End | KeyCode::Char('G') => usize::MAX,
            _ => self.scroll,
        };
        self.clamp(rows, page);
    }

    /// Keeps the scroll inside the rows.
    pub fn clamp(&mut self, rows: usize, page: usize) {
        // The last page shows the last rows under the header and above the hint.
        let last_page = page.saturating_sub(2).max(1);
        self.scroll = self.scroll.min(rows.saturating_sub(last_page));
    }

    /// A plan started, moved on a step, or ended (an ended plan leaves the panel; its notice, if
    /// it failed, stays).
    pub fn on_plan(&mut self, plan: PlanStatus) {
        self.plans.retain(|p| p.id != plan.id);
        if plan.state == PlanState::Running {
            self.plans.push(plan);
        }
    }

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
    let plan_rows = state.plans.len().min(NOTICE_ROWS);
    let notice_rows = ((state.notices.len().min(NOTICE_ROWS) + plan_rows) as u16).min(room);
    let [table_area, notice_area] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(notice_rows)]).areas(area);
    render_rows(view, state.scroll, table_area, buf);
    let theme = view.theme;
    let plans = state.plans.iter().take(plan_rows).map(|p| {
        Line::from(vec![
            Span::styled(format!("plan #{} ", p.id), theme.warning()),
            Span::raw(plan_line(p)),
        ])
    });
    let shown_notices = usize::from(notice_rows).saturating_sub(plan_rows);
    let notices = state
        .notices
        .iter()
        .rev()
        .take(shown_notices)
        .rev()
        .map(|n| {
            let (word, style) = match n.level {
                NoticeLevel::Info => ("info", theme.label()),
                NoticeLevel::Warning => ("warning", theme.warning()),
                NoticeLevel::Error => ("error", theme.error()),
            };
            Line::from(vec![
                Span::styled(format!("{} ", clock(n.at)), theme.dim()),
                Span::styled(format!("{word}: "), style),
                Span::raw(n.message.clone()),
            ])
        });
    let lines: Vec<Line> = plans.chain(notices).collect();
    Paragraph::new(lines).render(notice_area, buf);
}

/// `db crash (rest_for_one): step 2/4 wait for api to be healthy`.
fn plan_line(plan: &PlanStatus) -> String {
    let total = plan.steps.len();
    let current = plan
        .steps
        .iter()
        .position(|s| s.state == StepState::Running)
        .or_else(|| {
            plan.steps
                .iter()
                .position(|s| s.state == StepState::Pending)
        });
    let step = match current {
        Some(i) => {
            let what = match &plan.steps[i].step {
                RecoveryStep::ComponentAction { component, action } => {
                    format!("{} {component}", action.action_name())
                }
                RecoveryStep::WaitForHealth { component, .. } => {
                    format!("wait for {component} to be healthy")
                }
                RecoveryStep::NotifyOperator { .. } => "notify the operator".to_string(),
            };
            format!("step {}/{total} {what}", i + 1)
        }
        None => format!("{total} steps"),
    };
    format!(
        "{} {} ({}): {step}",
        plan.component, plan.issue_type, plan.strategy
    )
}

/// `HH:MM:SS` (UTC) of a notice, as `hms-console issues` prints times.
fn clock(at: SystemTime) -> String {
    let stamp = humantime::format_rfc3339_seconds(at).to_string();
    stamp.get(11..19).map_or(stamp.clone(), str::to_string)
}

/// The components worst first; fleet order among equals.
pub(super) fn worst_first<'a>(view: &Shared<'a>) -> Vec<&'a ComponentStatus> {
    let mut rows: Vec<&ComponentStatus> = view.fleet.components.iter().collect();
    rows.sort_by_key(|c| badness_rank(c));
    rows
}

/// The table alone; the status panel shows it too when it has no component.
pub(super) fn render_table(view: Shared<'_>, area: Rect, buf: &mut Buffer) {
    render_rows(view, 0, area, buf);
}

/// The table from row `scroll` on, worst first; when rows are left below, the last row says how
/// many.
fn render_rows(view: Shared<'_>, scroll: usize, area: Rect, buf: &mut Buffer) {
    if view.fleet.components.is_empty() {
        view.render_placeholder(area, buf);
        return;
    }
    let sorted = worst_first(&view);
    // Rows under the header; when not all fit, the last one is the hint.
    let room = usize::from(area.height.saturating_sub(1));
    let scroll = scroll.min(sorted.len().saturating_sub(1));
    let fits = scroll == 0 && sorted.len() <= room;
    let shown_rows = if fits {
        sorted.len()
    } else {
        room.saturating_sub(1)
    };
    let shown = &sorted[scroll..(scroll + shown_rows).min(sorted.len())];
    let more = sorted.len() - scroll - shown.len();
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
    let rows: Vec<Row> = shown
        .iter()
        .map(|c| {
            let health = match known_health(c) {
                Some(h) => health_text(h),
                None => "unknown".to_string(),
            };
            Row::new(vec![
                Cell::from(Span::styled(theme.status_icon(c), theme.status_style(c))),
                Cell::from(c.name.clone()),
                Cell::from(Span::styled(c.state.word(), theme.state_style(c.state))),
                Cell::from(Span::styled(health, theme.status_style(c))),
                Cell::from(format!("{:>8}", c.restarts)),
                Cell::from(c.pid.map_or("-".to_string(), |p| p.to_string())),
            ])
        })
        .collect();
    if !fits {
        // What is off-screen, and how to get there, on the row under the table.
        let mut text = if more > 0 {
            format!("+{more} more")
        } else {
            "end".to_string()
        };
        if scroll > 0 {
            text.push_str(&format!(" · {scroll} above"));
        }
        text.push_str(&format!(" · {} scroll", theme.scroll_keys()));
        let table_height = u16::try_from(shown.len() + 1).unwrap_or(u16::MAX);
        if table_height < area.height {
            let hint = Rect {
                y: area.y + table_height,
                height: 1,
                ..area
            };
            Paragraph::new(Line::styled(text, theme.dim())).render(hint, buf);
        }
        let area = Rect {
            height: table_height.min(area.height),
            ..area
        };
        return render_table_rows(view, rows, name_width, icon_width, area, buf);
    }
    render_table_rows(view, rows, name_width, icon_width, area, buf);
}

fn render_table_rows(
    view: Shared<'_>,
    rows: Vec<Row<'_>>,
    name_width: u16,
    icon_width: u16,
    area: Rect,
    buf: &mut Buffer,
) {
    let header =
        Row::new(["", "NAME", "STATE", "HEALTH", "RESTARTS", "PID"]).style(view.theme.heading());
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
