//! The router: each family of requests goes to the part of the core that owns that state.
//!
//! | requests | owner |
//! |---|---|
//! | status, start, stop, restart, command, heal, reload, down, register, report_*, command_outcome, plans | the supervisor actor ([`super::supervisor`]) |
//! | logs | the log store ([`super::logs`]) |
//! | issues | the issue journal ([`super::journal`]) |
//! | panel_update, panel_text, panel_input, notify | the console room ([`super::console_room`]) |
//! | knowledge (query, contribute, stats, export, import) | the knowledge registry ([`super::knowledge`]) |
//! | mac (register_agent, request_task, task_result, agents, tasks) | the task bus ([`super::mac`]) |
//! | history | the history room ([`super::history`]) |
//! | subscribe | the connection itself ([`super::server`]) |
//!
//! A new part of the core (the knowledge registry, the task bus) is a new room and a new arm of
//! [`Router::request`]; nothing else changes. The router holds no state of its own.

use super::console_room::ConsoleHandle;
use super::history::HistoryHandle;
use super::journal::IssueJournal;
use super::knowledge::KnowledgeHandle;
use super::logs::LogStore;
use super::mac::MacHandle;
use super::supervisor::{Answer, ConnId, NO_CONN, SupervisorHandle};
use crate::protocol::{ErrorCode, Request, Response};

/// Sends a room the message `make` builds around a oneshot, and waits for the answer: the one way
/// every room's handle asks its room. A room that is gone (the core is exiting) is a refusal.
pub(crate) async fn ask<C, T>(
    tx: &tokio::sync::mpsc::UnboundedSender<C>,
    make: impl FnOnce(tokio::sync::oneshot::Sender<T>) -> C,
) -> Result<T, super::supervisor::Refusal> {
    let gone = || {
        (
            ErrorCode::ShuttingDown,
            "the core is shutting down".to_string(),
        )
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    tx.send(make(reply)).map_err(|_| gone())?;
    answer.await.map_err(|_| gone())
}

/// Where requests go. Cheap to clone: every connection has one.
#[derive(Clone)]
pub struct Router {
    pub supervisor: SupervisorHandle,
    pub console: ConsoleHandle,
    pub knowledge: KnowledgeHandle,
    pub mac: MacHandle,
    pub history: HistoryHandle,
    pub logs: LogStore,
    pub journal: IssueJournal,
    pub bus: crate::core::bus::Bus,
}

impl Router {
    /// A request made by the core itself (a signal, the config watcher).
    pub async fn request(&self, request: Request) -> Answer {
        self.request_from(NO_CONN, request).await
    }

    /// Sends a request made on connection `conn` to its owner and waits for the answer.
    pub async fn request_from(&self, conn: ConnId, request: Request) -> Answer {
        match request {
            Request::Ping
            | Request::Status { .. }
            | Request::Start { .. }
            | Request::Stop { .. }
            | Request::Restart { .. }
            | Request::Command { .. }
            | Request::Heal { .. }
            | Request::Reload
            | Request::Down
            | Request::Register { .. }
            | Request::ReportHealth { .. }
            | Request::ReportMetrics { .. }
            | Request::ReportIssue { .. }
            | Request::CommandOutcome { .. }
            | Request::Plans => self.supervisor.request_from(conn, request).await,
            Request::Logs { component, lines } => match self.logs.tail(&component, lines) {
                Some(lines) => Ok(Response::Logs { lines }),
                // Let the supervisor say which components there are.
                None => self
                    .supervisor
                    .request_from(
                        conn,
                        Request::Status {
                            component: Some(component),
                        },
                    )
                    .await
                    .map(|_| Response::Logs { lines: Vec::new() }),
            },
            Request::Issues { component, limit } => Ok(Response::Issues {
                issues: self.journal.recent(component.as_deref(), limit),
            }),
            Request::PanelUpdate { .. }
            | Request::PanelText { .. }
            | Request::PanelInput { .. }
            | Request::Notify { .. } => self.console.request(request).await,
            Request::Knowledge { request } => self.knowledge.request(request).await,
            Request::Mac { request } => self.mac.request(conn, request).await,
            Request::History { .. } => self.history.request(request).await,
            Request::Subscribe { .. } => Err((
                ErrorCode::Internal,
                "subscriptions are handled by the connection".into(),
            )),
        }
    }
}
