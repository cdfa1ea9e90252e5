//! The typed async client for the core's control socket.
//!
//! The CLI, the panels and the library side (`hms::component`) all reach the core through this
//! type. One `Client` is one connection. Requests are answered in order; after
//! [`Client::subscribe`] events arrive too, and a response that comes while events are queued is
//! matched to its request by id, so a client may both listen and ask on one connection.
//!
//! Each request has its own method returning what that request answers (`status` the components,
//! `logs` the lines, `restart` the core's message …): an answer of another kind is
//! [`ClientError::Unexpected`], here and nowhere else. [`Client::request`] stays for callers that
//! carry requests as data (the panels' Elm model, the actions line). This module keeps no state
//! beyond its one connection and never retries: reconnecting is the caller's choice.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use crate::model::{
    ComponentCapabilities, ComponentStatus, HealthMetrics, HealthStatus, Issue, LogLine,
    SupervisorCommand,
};
use crate::protocol::{
    ClientMessage, ComponentHistory, ErrorCode, Event, Frame, FrameError, MAX_ANSWER_LINE,
    NoticeLevel, PROTOCOL_VERSION, Request, Response, ServerMessage, Topic, encode, read_frame,
};

/// Why a request could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the socket (no core running, or a stale socket file).
    #[error("no core is running on {socket} ({source}); start one with `hms-console up`")]
    NotRunning {
        socket: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The connection failed after it was made.
    #[error("connection to the core failed: {0}")]
    Io(#[from] std::io::Error),
    /// The core hung up.
    #[error("the core closed the connection")]
    Closed,
    /// The core sent something this client cannot read.
    #[error("unexpected message from the core: {0}")]
    Protocol(String),
    /// The core speaks another protocol version.
    #[error("the core speaks protocol version {core}, this client {ours}; use matching binaries")]
    Version { core: u32, ours: u32 },
    /// The core refused the request.
    #[error("{message}")]
    Server { code: ErrorCode, message: String },
    /// The core answered a request with a response of another kind (a core and a client that
    /// disagree about the protocol without a version bump).
    #[error("unexpected answer to {request}: {response:?}")]
    Unexpected {
        /// The request's `op`, e.g. `status`.
        request: &'static str,
        response: Box<Response>,
    },
}

impl ClientError {
    fn unexpected(request: &'static str, response: Response) -> ClientError {
        ClientError::Unexpected {
            request,
            response: Box::new(response),
        }
    }
}

impl From<FrameError> for ClientError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::Truncated => ClientError::Closed,
            FrameError::Io(e) => ClientError::Io(e),
        }
    }
}

/// Facts the core told us in its hello.
#[derive(Debug, Clone)]
pub struct CoreInfo {
    pub version: u32,
    pub pid: u32,
    pub data_dir: PathBuf,
    /// How the core contains its components, as it says.
    pub containment: Option<String>,
}

/// One connection to the core.
pub struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    buf: Vec<u8>,
    next_id: u64,
    /// Events that arrived while waiting for a response.
    pending_events: VecDeque<Event>,
    info: CoreInfo,
}

impl Client {
    /// Connects and exchanges hellos. `name` tells the core who we are (for its log).
    pub async fn connect(socket: &Path, name: &str) -> Result<Client, ClientError> {
        let stream =
            UnixStream::connect(socket)
                .await
                .map_err(|source| ClientError::NotRunning {
                    socket: socket.to_path_buf(),
                    source,
                })?;
        let (read, mut writer) = stream.into_split();
        // A core that refuses us says why and hangs up, maybe before our hello is written: read
        // its answer even when the write failed.
        let sent = writer
            .write_all(&encode(&ClientMessage::Hello {
                version: PROTOCOL_VERSION,
                client: name.to_string(),
            }))
            .await;
        let mut reader = BufReader::new(read);
        let mut buf = Vec::new();
        let answer = match (read_message(&mut reader, &mut buf).await, sent) {
            (Ok(answer), _) => answer,
            (Err(_), Err(e)) => return Err(ClientError::Io(e)),
            (Err(e), Ok(())) => return Err(e),
        };
        let info = match answer {
            ServerMessage::Hello {
                version,
                pid,
                data_dir,
                containment,
            } => {
                if version != PROTOCOL_VERSION {
                    return Err(ClientError::Version {
                        core: version,
                        ours: PROTOCOL_VERSION,
                    });
                }
                CoreInfo {
                    version,
                    pid,
                    data_dir: PathBuf::from(data_dir),
                    containment,
                }
            }
            ServerMessage::Error { code, message, .. } => {
                return Err(ClientError::Server { code, message });
            }
            other => return Err(ClientError::Protocol(format!("{other:?}"))),
        };
        Ok(Client {
            reader,
            writer,
            buf,
            next_id: 1,
            pending_events: VecDeque::new(),
            info,
        })
    }

    /// What the core said about itself.
    pub fn core(&self) -> &CoreInfo {
        &self.info
    }

    /// Sends a request and waits for its answer, whatever its kind. Events that arrive meanwhile
    /// are kept for [`Client::next_event`]. Prefer the typed method of each request; this one is
    /// for callers that carry requests as data.
    pub async fn request(&mut self, request: Request) -> Result<Response, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        self.writer
            .write_all(&encode(&ClientMessage::Request { id, request }))
            .await?;
        loop {
            match read_message(&mut self.reader, &mut self.buf).await? {
                ServerMessage::Response { id: rid, response } if rid == id => return Ok(response),
                ServerMessage::Error {
                    id: rid,
                    code,
                    message,
                } if rid == Some(id) || rid.is_none() => {
                    return Err(ClientError::Server { code, message });
                }
                ServerMessage::Event { event } => self.pending_events.push_back(event),
                other => return Err(ClientError::Protocol(format!("{other:?}"))),
            }
        }
    }

    /// Subscribes to events of the given topics (about the given components, or all when empty).
    pub async fn subscribe(
        &mut self,
        topics: &[Topic],
        components: &[String],
    ) -> Result<(), ClientError> {
        match self
            .request(Request::Subscribe {
                topics: topics.to_vec(),
                components: components.to_vec(),
            })
            .await?
        {
            Response::Subscribed => Ok(()),
            other => Err(ClientError::unexpected("subscribe", other)),
        }
    }

    /// Sends a request the core answers with `Done` and returns the core's message.
    async fn done(&mut self, op: &'static str, request: Request) -> Result<String, ClientError> {
        match self.request(request).await? {
            Response::Done { message } => Ok(message),
            other => Err(ClientError::unexpected(op, other)),
        }
    }

    /// Is the core there and answering?
    pub async fn ping(&mut self) -> Result<(), ClientError> {
        match self.request(Request::Ping).await? {
            Response::Pong => Ok(()),
            other => Err(ClientError::unexpected("ping", other)),
        }
    }

    /// The status of every component, or of one.
    pub async fn status(
        &mut self,
        component: Option<&str>,
    ) -> Result<Vec<ComponentStatus>, ClientError> {
        let request = Request::Status {
            component: component.map(str::to_string),
        };
        match self.request(request).await? {
            Response::Status { components } => Ok(components),
            other => Err(ClientError::unexpected("status", other)),
        }
    }

    /// The names of the fleet's components, in the core's order.
    pub async fn fleet_names(&mut self) -> Result<Vec<String>, ClientError> {
        Ok(self
            .status(None)
            .await?
            .into_iter()
            .map(|c| c.name)
            .collect())
    }

    /// Starts a component; returns the core's message.
    pub async fn start(&mut self, component: &str) -> Result<String, ClientError> {
        let component = component.to_string();
        self.done("start", Request::Start { component }).await
    }

    /// Stops a component; returns the core's message.
    pub async fn stop(&mut self, component: &str) -> Result<String, ClientError> {
        let component = component.to_string();
        self.done("stop", Request::Stop { component }).await
    }

    /// An operator's restart (also resets backoff and closes the breaker); returns the core's
    /// message.
    pub async fn restart(&mut self, component: &str) -> Result<String, ClientError> {
        let component = component.to_string();
        self.done("restart", Request::Restart { component }).await
    }

    /// Any supervisor command; returns the core's message.
    pub async fn command(
        &mut self,
        component: &str,
        command: SupervisorCommand,
    ) -> Result<String, ClientError> {
        let component = component.to_string();
        self.done("command", Request::Command { component, command })
            .await
    }

    /// The last `lines` lines of a component's output.
    pub async fn logs(
        &mut self,
        component: &str,
        lines: usize,
    ) -> Result<Vec<LogLine>, ClientError> {
        let request = Request::Logs {
            component: component.to_string(),
            lines,
        };
        match self.request(request).await? {
            Response::Logs { lines } => Ok(lines),
            other => Err(ClientError::unexpected("logs", other)),
        }
    }

    /// Recent issues (of one component, or all), newest last, at most `limit`.
    pub async fn issues(
        &mut self,
        component: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Issue>, ClientError> {
        let request = Request::Issues {
            component: component.map(str::to_string),
            limit,
        };
        match self.request(request).await? {
            Response::Issues { issues } => Ok(issues),
            other => Err(ClientError::unexpected("issues", other)),
        }
    }

    /// Runs the healing path for a component by hand; returns the core's message.
    pub async fn heal(&mut self, component: &str) -> Result<String, ClientError> {
        let component = component.to_string();
        self.done("heal", Request::Heal { component }).await
    }

    /// Re-reads the fleet config and applies the difference; returns the core's message.
    pub async fn reload(&mut self) -> Result<String, ClientError> {
        self.done("reload", Request::Reload).await
    }

    /// Stops every component, then the core; returns the core's message.
    pub async fn down(&mut self) -> Result<String, ClientError> {
        self.done("down", Request::Down).await
    }

    /// Registers a linked component with its capabilities and the heartbeat interval it
    /// promises; returns the core's message.
    pub async fn register(
        &mut self,
        component: &str,
        capabilities: ComponentCapabilities,
        heartbeat: Option<Duration>,
    ) -> Result<String, ClientError> {
        let request = Request::Register {
            component: component.to_string(),
            capabilities,
            heartbeat_ms: heartbeat.map(|d| d.as_millis().min(u64::MAX as u128) as u64),
        };
        self.done("register", request).await
    }

    /// Reports a linked component's health; returns the core's message.
    pub async fn report_health(
        &mut self,
        component: &str,
        health: HealthStatus,
    ) -> Result<String, ClientError> {
        let component = component.to_string();
        self.done("report_health", Request::ReportHealth { component, health })
            .await
    }

    /// Reports a linked component's metrics; returns the core's message.
    pub async fn report_metrics(
        &mut self,
        component: &str,
        metrics: HealthMetrics,
    ) -> Result<String, ClientError> {
        let component = component.to_string();
        self.done(
            "report_metrics",
            Request::ReportMetrics { component, metrics },
        )
        .await
    }

    /// Reports an issue; returns the core's message.
    pub async fn report_issue(&mut self, issue: Issue) -> Result<String, ClientError> {
        self.done("report_issue", Request::ReportIssue { issue })
            .await
    }

    /// Tells the core how a command sent to a linked component went (`error` is `None` when it
    /// was carried out); returns the core's message.
    pub async fn command_outcome(
        &mut self,
        component: &str,
        command: SupervisorCommand,
        error: Option<String>,
    ) -> Result<String, ClientError> {
        let request = Request::CommandOutcome {
            component: component.to_string(),
            command,
            error,
        };
        self.done("command_outcome", request).await
    }

    /// Replaces a text panel's text, or appends one line to it; returns the core's message.
    pub async fn panel_update(
        &mut self,
        component: &str,
        panel: &str,
        text: String,
        append: bool,
    ) -> Result<String, ClientError> {
        let request = Request::PanelUpdate {
            component: component.to_string(),
            panel: panel.to_string(),
            text,
            append,
        };
        self.done("panel_update", request).await
    }

    /// The current text of one text panel.
    pub async fn panel_text(
        &mut self,
        component: &str,
        panel: &str,
    ) -> Result<String, ClientError> {
        let request = Request::PanelText {
            component: component.to_string(),
            panel: panel.to_string(),
        };
        match self.request(request).await? {
            Response::PanelText { text } => Ok(text),
            other => Err(ClientError::unexpected("panel_text", other)),
        }
    }

    /// Passes a line typed into a component's own input pane to that component; returns the
    /// core's message.
    pub async fn panel_input(
        &mut self,
        component: &str,
        panel: &str,
        line: &str,
    ) -> Result<String, ClientError> {
        let request = Request::PanelInput {
            component: component.to_string(),
            panel: panel.to_string(),
            line: line.to_string(),
        };
        self.done("panel_input", request).await
    }

    /// A message for the operator (shown in System Health); returns the core's message.
    pub async fn notify(
        &mut self,
        level: NoticeLevel,
        message: impl Into<String>,
    ) -> Result<String, ClientError> {
        let message = message.into();
        self.done("notify", Request::Notify { level, message })
            .await
    }

    /// One component's recent history: samples and timeline, oldest first.
    pub async fn history(&mut self, component: &str) -> Result<ComponentHistory, ClientError> {
        let request = Request::History {
            component: component.to_string(),
        };
        match self.request(request).await? {
            Response::History { history } => Ok(history),
            other => Err(ClientError::unexpected("history", other)),
        }
    }

    /// The next event; `Ok(None)` when the core hung up cleanly.
    pub async fn next_event(&mut self) -> Result<Option<Event>, ClientError> {
        if let Some(e) = self.pending_events.pop_front() {
            return Ok(Some(e));
        }
        match read_message(&mut self.reader, &mut self.buf).await {
            Ok(ServerMessage::Event { event }) => Ok(Some(event)),
            Ok(other) => Err(ClientError::Protocol(format!("{other:?}"))),
            Err(ClientError::Closed) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

async fn read_message(
    reader: &mut BufReader<OwnedReadHalf>,
    buf: &mut Vec<u8>,
) -> Result<ServerMessage, ClientError> {
    match read_frame(reader, buf, MAX_ANSWER_LINE).await? {
        None => Err(ClientError::Closed),
        Some(Frame::Line(line)) => {
            serde_json::from_str(&line).map_err(|e| ClientError::Protocol(format!("{e}: {line}")))
        }
        Some(Frame::TooLong) => Err(ClientError::Protocol("a line over the maximum".into())),
        Some(Frame::NotUtf8) => Err(ClientError::Protocol("a line that is not UTF-8".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::UnixListener;

    /// A fake core for one connection that answers every request with `answer`.
    async fn fake_core(listener: UnixListener, answer: Response) {
        let (stream, _) = listener.accept().await.expect("accept");
        let (read, mut write) = stream.into_split();
        let mut reader = BufReader::new(read);
        let mut buf = Vec::new();
        while let Ok(Some(Frame::Line(line))) =
            read_frame(&mut reader, &mut buf, crate::protocol::MAX_LINE).await
        {
            let reply = match serde_json::from_str::<ClientMessage>(&line).expect("valid") {
                ClientMessage::Hello { .. } => ServerMessage::Hello {
                    version: PROTOCOL_VERSION,
                    pid: 1,
                    data_dir: "/tmp".into(),
                    containment: None,
                },
                ClientMessage::Request { id, .. } => ServerMessage::Response {
                    id,
                    response: answer.clone(),
                },
            };
            write.write_all(&encode(&reply)).await.expect("write");
        }
    }

    #[tokio::test]
    async fn an_answer_of_another_kind_is_unexpected_naming_the_request() {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("core.sock");
        let listener = UnixListener::bind(&socket).expect("bind");
        let core = tokio::spawn(fake_core(listener, Response::Pong));
        let mut client = Client::connect(&socket, "test").await.expect("connect");
        client.ping().await.expect("a pong answers a ping");
        match client.status(None).await {
            Err(ClientError::Unexpected { request, response }) => {
                assert_eq!(request, "status");
                assert_eq!(*response, Response::Pong);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            client.restart("api").await,
            Err(ClientError::Unexpected {
                request: "restart",
                ..
            })
        ));
        drop(client);
        core.await.expect("fake core");
    }
}
