//! The console's state in the core: the text panels that linked components and
//! `TerminalInterface` views write (`PanelUpdate`, read back with `PanelText`), what operators type
//! into those panels (`PanelInput`), and notices (`Notify`). An actor of its own behind the router,
//! not supervisor fields: nothing here decides about components, and the supervisor never waits on
//! it.

use std::collections::{HashMap, VecDeque};

use tokio::sync::{mpsc, oneshot};

use super::supervisor::{Answer, Refusal};
use crate::protocol::{ErrorCode, Event, PanelInput, Request, Response};

/// How many lines an append-mode text panel keeps.
pub const PANEL_LINES: usize = 500;

/// How many bytes of text a panel keeps (its newest lines; a longer line keeps its end).
pub const PANEL_BYTES: usize = 64 * 1024;

/// How many text panels the core keeps at most (a misbehaving client cannot grow it without bound).
const MAX_PANELS: usize = 1000;

/// One panel's text: its newest lines, at most [`PANEL_LINES`] and [`PANEL_BYTES`].
#[derive(Default)]
struct PanelText {
    lines: VecDeque<String>,
    bytes: usize,
}

impl PanelText {
    fn push(&mut self, line: &str) {
        let line = tail_bytes(line, PANEL_BYTES);
        self.bytes += line.len();
        self.lines.push_back(line.to_string());
        while self.lines.len() > PANEL_LINES || self.bytes > PANEL_BYTES {
            let Some(old) = self.lines.pop_front() else {
                break;
            };
            self.bytes -= old.len();
        }
    }

    fn clear(&mut self) {
        self.lines.clear();
        self.bytes = 0;
    }
}

/// The last `max` bytes of `text`, cut at a character boundary.
fn tail_bytes(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// The text panels, by (component, panel).
struct ConsoleRoom {
    panels: HashMap<(String, String), PanelText>,
    bus: crate::core::bus::Bus,
}

/// Sends console requests to the room.
#[derive(Clone)]
pub struct ConsoleHandle {
    tx: mpsc::UnboundedSender<(Request, oneshot::Sender<Answer>)>,
}

impl ConsoleHandle {
    /// Starts the room's task; it ends when every handle is dropped.
    pub fn spawn(bus: crate::core::bus::Bus) -> ConsoleHandle {
        let (tx, mut rx) = mpsc::unbounded_channel::<(Request, oneshot::Sender<Answer>)>();
        let mut room = ConsoleRoom {
            panels: HashMap::new(),
            bus,
        };
        tokio::spawn(async move {
            while let Some((request, reply)) = rx.recv().await {
                let _ = reply.send(room.handle(request));
            }
        });
        ConsoleHandle { tx }
    }

    /// Asks the room and waits for its answer.
    pub async fn request(&self, request: Request) -> Answer {
        super::router::ask(&self.tx, |reply| (request, reply))
            .await
            .and_then(|answer| answer)
    }
}

impl ConsoleRoom {
    fn handle(&mut self, request: Request) -> Answer {
        match request {
            Request::PanelUpdate {
                component,
                panel,
                text,
                append,
            } => self.panel_update(component, panel, text, append),
            Request::PanelText { component, panel } => Ok(Response::PanelText {
                text: self
                    .panels
                    .get(&(component, panel))
                    .map(|p| p.lines.iter().cloned().collect::<Vec<_>>().join("\n"))
                    .unwrap_or_default(),
            }),
            Request::PanelInput {
                component,
                panel,
                line,
            } => {
                // Straight to the component that owns the pane; nothing here interprets it.
                let delivered = self.bus.publish(Event::PanelInput(Box::new(PanelInput {
                    component: component.clone(),
                    panel,
                    line,
                })));
                if delivered {
                    Ok(Response::Done {
                        message: format!("sent to {component}"),
                    })
                } else {
                    Err((
                        ErrorCode::Rejected,
                        format!("{component} is not listening for input"),
                    ))
                }
            }
            Request::Notify { level, message } => {
                self.bus.publish(Event::Notice {
                    level,
                    message,
                    at: std::time::SystemTime::now(),
                });
                Ok(Response::Done {
                    message: "noted".into(),
                })
            }
            other => Err(misrouted(&other)),
        }
    }

    /// Replaces (or appends lines to) a text panel and tells subscribers. Any component name: a
    /// TerminalInterface view may belong to a component that is not supervised.
    fn panel_update(
        &mut self,
        component: String,
        panel: String,
        text: String,
        append: bool,
    ) -> Answer {
        let key = (component, panel);
        if !self.panels.contains_key(&key) && self.panels.len() >= MAX_PANELS {
            return Err((
                ErrorCode::Rejected,
                format!("the core keeps at most {MAX_PANELS} text panels"),
            ));
        }
        let panel_text = self.panels.entry(key.clone()).or_default();
        if !append {
            panel_text.clear();
        }
        for line in text.lines() {
            panel_text.push(line);
        }
        if append && text.is_empty() {
            panel_text.push("");
        }
        let (component, panel) = key;
        // Subscribers get what the panel keeps, not more.
        let text = tail_bytes(&text, PANEL_BYTES).to_string();
        self.bus
            .publish(Event::PanelText(Box::new(crate::protocol::PanelText {
                component,
                panel,
                text,
                append,
            })));
        Ok(Response::Done {
            message: "panel updated".into(),
        })
    }
}

/// The answer to a request the router should have sent elsewhere.
pub fn misrouted(request: &Request) -> Refusal {
    (
        ErrorCode::Internal,
        format!("this part of the core does not handle {request:?}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room() -> ConsoleRoom {
        ConsoleRoom {
            panels: HashMap::new(),
            bus: crate::core::bus::Bus::new(16),
        }
    }

    fn text(room: &ConsoleRoom) -> String {
        match room.panels.get(&("c".to_string(), "p".to_string())) {
            Some(p) => p.lines.iter().cloned().collect::<Vec<_>>().join("\n"),
            None => String::new(),
        }
    }

    #[test]
    fn a_panel_keeps_at_most_its_bytes_however_much_is_appended() {
        let mut room = room();
        let mb = "x".repeat(1024 * 1024);
        for _ in 0..20 {
            room.panel_update("c".into(), "p".into(), mb.clone(), true)
                .unwrap();
        }
        let kept = &room.panels[&("c".to_string(), "p".to_string())];
        assert!(kept.bytes <= PANEL_BYTES);
        assert_eq!(
            kept.bytes,
            kept.lines.iter().map(String::len).sum::<usize>()
        );
        assert_eq!(text(&room).len(), PANEL_BYTES);
    }

    #[test]
    fn a_panel_keeps_its_newest_lines() {
        let mut room = room();
        for n in 0..PANEL_LINES + 10 {
            room.panel_update("c".into(), "p".into(), format!("line {n}"), true)
                .unwrap();
        }
        let text = text(&room);
        assert_eq!(text.lines().count(), PANEL_LINES);
        assert!(text.ends_with(&format!("line {}", PANEL_LINES + 9)));
        room.panel_update("c".into(), "p".into(), "fresh".into(), false)
            .unwrap();
        assert_eq!(super::tests::text(&room), "fresh");
    }

    #[test]
    fn a_cut_keeps_whole_characters() {
        assert_eq!(tail_bytes("héllo", 4), "llo");
        assert_eq!(tail_bytes("abc", 10), "abc");
    }
}
