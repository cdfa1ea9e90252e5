//! The console's state in the core: the text panels that linked components and
//! `TerminalInterface` views write (`PanelUpdate`, read back with `PanelText`), what operators type
//! into those panels (`PanelInput`), and notices (`Notify`). An actor of its own behind the router,
//! not supervisor fields: nothing here decides about components, and the supervisor never waits on
//! it.

use std::collections::{HashMap, VecDeque};

use tokio::sync::{broadcast, mpsc, oneshot};

use super::supervisor::{Answer, Refusal};
use crate::protocol::{ErrorCode, Event, Request, Response};

/// How many lines an append-mode text panel keeps.
pub const PANEL_LINES: usize = 500;

/// How many text panels the core keeps at most (a misbehaving client cannot grow it without bound).
const MAX_PANELS: usize = 1000;

/// The text panels, by (component, panel).
struct ConsoleRoom {
    panels: HashMap<(String, String), VecDeque<String>>,
    bus: broadcast::Sender<Event>,
}

/// Sends console requests to the room.
#[derive(Clone)]
pub struct ConsoleHandle {
    tx: mpsc::UnboundedSender<(Request, oneshot::Sender<Answer>)>,
}

impl ConsoleHandle {
    /// Starts the room's task; it ends when every handle is dropped.
    pub fn spawn(bus: broadcast::Sender<Event>) -> ConsoleHandle {
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
        let (reply, rx) = oneshot::channel();
        let gone = || {
            (
                ErrorCode::ShuttingDown,
                "the core is shutting down".to_string(),
            )
        };
        self.tx.send((request, reply)).map_err(|_| gone())?;
        rx.await.unwrap_or_else(|_| Err(gone()))
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
                    .map(|lines| lines.iter().cloned().collect::<Vec<_>>().join("\n"))
                    .unwrap_or_default(),
            }),
            Request::PanelInput {
                component,
                panel,
                line,
            } => {
                // Straight to the component that owns the pane; nothing here interprets it.
                let delivered = self.bus.send(Event::PanelInput {
                    component: component.clone(),
                    panel,
                    line,
                });
                match delivered {
                    Ok(_) => Ok(Response::Done {
                        message: format!("sent to {component}"),
                    }),
                    Err(_) => Err((
                        ErrorCode::Rejected,
                        format!("{component} is not listening for input"),
                    )),
                }
            }
            Request::Notify { level, message } => {
                let _ = self.bus.send(Event::Notice {
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
        let lines = self.panels.entry(key.clone()).or_default();
        if append {
            lines.extend(text.lines().map(str::to_string));
            if text.is_empty() {
                lines.push_back(String::new());
            }
        } else {
            *lines = text.lines().map(str::to_string).collect();
        }
        while lines.len() > PANEL_LINES {
            lines.pop_front();
        }
        let (component, panel) = key;
        let _ = self.bus.send(Event::PanelText {
            component,
            panel,
            text,
            append,
        });
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
