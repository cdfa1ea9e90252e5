//! The knowledge panel: what the registry learned recently, newest first — healing attempts
//! (✅ cured, ❌ did not), issue patterns (🟡) and other contributions — for one component or the
//! whole fleet.
//!
//! It fills itself with a query on (re)connect and then follows `Event::Knowledge`. It only
//! shows what the registry says; it must not judge strategies itself.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::app::Shared;
use super::format;
use crate::model::HealthStatus;
use crate::protocol::{KnowledgeQuery, KnowledgeResult};

/// Items kept; the snapshot asks for as many.
pub const KEPT: usize = 100;

/// The query the panel starts from.
pub fn snapshot_query(component: Option<&str>) -> KnowledgeQuery {
    let query = KnowledgeQuery::new().limit(KEPT);
    match component {
        Some(c) => query.component(c),
        None => query,
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct KnowledgeState {
    /// Newest first, at most [`KEPT`].
    pub items: Vec<KnowledgeResult>,
}

impl KnowledgeState {
    pub fn replace(&mut self, items: Vec<KnowledgeResult>) {
        self.items = items;
        self.items.truncate(KEPT);
    }

    /// A new item, or a newer version of one shown (a pattern seen again) moved to the top.
    pub fn push(&mut self, item: KnowledgeResult) {
        self.items.retain(|i| i.id != item.id);
        self.items.insert(0, item);
        self.items.truncate(KEPT);
    }
}

pub(super) fn render(view: Shared<'_>, state: &KnowledgeState, area: Rect, buf: &mut Buffer) {
    if state.items.is_empty() {
        if view.live() {
            Paragraph::new(Line::styled("nothing learned yet", view.theme.dim())).render(area, buf);
        } else {
            view.render_placeholder(area, buf);
        }
        return;
    }
    let theme = view.theme;
    let fleet_wide = view.component.is_none();
    let name_width = state
        .items
        .iter()
        .map(|i| i.component.chars().count())
        .max()
        .unwrap_or(0);
    let lines: Vec<Line> = state
        .items
        .iter()
        .take(usize::from(area.height))
        .map(|item| {
            let (icon, style) = match (item.recovery_record(), item.issue_pattern()) {
                (Some(r), _) if r.successful => (
                    theme.health_icon(&HealthStatus::Healthy),
                    theme.health_style(&HealthStatus::Healthy),
                ),
                (Some(_), _) => {
                    let failed = HealthStatus::Failed(String::new());
                    (theme.health_icon(&failed), theme.health_style(&failed))
                }
                (None, Some(_)) => {
                    let pattern = HealthStatus::Degraded(String::new());
                    (theme.health_icon(&pattern), theme.health_style(&pattern))
                }
                (None, None) => (if theme.ascii { "[..]" } else { "📝" }, theme.label()),
            };
            let mut spans = vec![
                Span::styled(
                    format!("{:>10} ", format::relative(view.now, item.timestamp)),
                    theme.dim(),
                ),
                Span::styled(icon, style),
                Span::raw(" "),
            ];
            if fleet_wide {
                spans.push(Span::styled(
                    format!("{:<name_width$} ", item.component),
                    theme.label(),
                ));
            }
            spans.push(Span::raw(format::clean(&item.summary())));
            Line::from(spans)
        })
        .collect();
    Paragraph::new(lines).render(area, buf);
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::{Duration, SystemTime};

    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;
    use crate::model::{HealingAction, Issue, IssuePattern, PanelKind, RecoveryRecord, Severity};
    use crate::panel::{Model, Msg, Theme};
    use crate::protocol::{Event, KnowledgeAnswer, KnowledgeRequest, Request, Response, Topic};

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000)
    }

    fn record(id: i64, component: &str, strategy: &str, cured: bool, ago: u64) -> KnowledgeResult {
        let issue = Issue {
            id: "i".into(),
            component: component.into(),
            issue_type: "db-connection-lost".into(),
            severity: Severity::Error,
            detected_at: now(),
            context: BTreeMap::new(),
        };
        let record = RecoveryRecord {
            issue,
            strategy: strategy.into(),
            successful: cured,
            action: HealingAction::Recover {
                name: strategy.into(),
            },
            timestamp: now() - Duration::from_secs(ago),
            duration: Duration::from_millis(1200),
        };
        KnowledgeResult {
            id,
            component: component.into(),
            tags: vec!["recovery".into(), "healing".into()],
            content: serde_json::to_string(&record).unwrap(),
            related_to: Some("db-connection-lost".into()),
            timestamp: now() - Duration::from_secs(ago),
            source: "core".into(),
        }
    }

    fn pattern(id: i64, ago: u64) -> KnowledgeResult {
        let p = IssuePattern {
            issue_type: "db-connection-lost".into(),
            symptoms: vec!["log matches /connection refused/".into()],
            severity: Severity::Error,
        };
        KnowledgeResult {
            id,
            component: "api".into(),
            tags: vec!["issue".into(), "pattern".into()],
            content: serde_json::to_string(&p).unwrap(),
            related_to: Some("db-connection-lost".into()),
            timestamp: now() - Duration::from_secs(ago),
            source: "core".into(),
        }
    }

    fn screen(model: &Model, width: u16, height: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|f| model.view(f)).unwrap();
        let buffer = terminal.backend().buffer().clone();
        (0..height)
            .map(|y| {
                let mut line = String::new();
                let mut x = 0;
                while x < width {
                    let cell = &buffer[(x, y)];
                    line.push_str(cell.symbol());
                    x += 1;
                }
                line.trim_end().to_string()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_panel_asks_for_recent_knowledge_and_follows_new_items() {
        let model = Model::new(
            PanelKind::Knowledge,
            Some("api".into()),
            None,
            None,
            Theme::default(),
        );
        assert!(model.sync_requests().contains(&Request::Knowledge {
            request: KnowledgeRequest::Query {
                query: snapshot_query(Some("api"))
            }
        }));
        assert_eq!(
            model.subscription(),
            (vec![Topic::Knowledge], vec!["api".to_string()])
        );
    }

    #[test]
    fn whole_screen_lists_what_was_learned_newest_first() {
        let mut model = Model::new(PanelKind::Knowledge, None, None, None, Theme::default());
        model.update(Msg::Tick(now()));
        model.update(Msg::Connected);
        model.update(Msg::Snapshot(Ok(Response::Status { components: vec![] })));
        model.update(Msg::Snapshot(Ok(Response::Knowledge {
            answer: KnowledgeAnswer::Results {
                results: vec![
                    pattern(3, 30),
                    record(2, "db", "restart", false, 90),
                    record(1, "api", "clear_cache", true, 120),
                ],
            },
        })));
        model.update(Msg::Event(Event::Knowledge {
            item: Box::new(record(4, "api", "clear_cache", true, 5)),
        }));
        let expected = [
            "┌ Knowledge ───────────────────────────────────────────────────────┐",
            "│    5s ago ✅  api clear_cache cured db-connection-lost in 1s 200ms│",
            "│   30s ago 🟡  api pattern db-connection-lost (error): log matches │",
            "│1m 30s ago ❌  db  restart did not cure db-connection-lost (1s 200m│",
            "│2m 00s ago ✅  api clear_cache cured db-connection-lost in 1s 200ms│",
            "│                                                                  │",
            "└──────────────────────────────────────────────────────────────────┘",
        ];
        assert_eq!(screen(&model, 68, 7), expected.join("\n"));
    }

    #[test]
    fn an_empty_registry_says_so_once_connected() {
        let mut model = Model::new(
            PanelKind::Knowledge,
            Some("api".into()),
            None,
            None,
            Theme::default(),
        );
        model.update(Msg::Connected);
        model.update(Msg::Snapshot(Ok(Response::Knowledge {
            answer: KnowledgeAnswer::Results { results: vec![] },
        })));
        assert!(screen(&model, 40, 4).contains("nothing learned yet"));
    }
}
