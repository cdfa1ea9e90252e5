//! The typed async client for the core's control socket.
//!
//! The CLI, the panels and linked Rust components all reach the core through this type; later it
//! grows into the guide's SupervisorClient, KnowledgeClient and MacClient. One `Client` is one
//! connection. Requests are answered in order; after [`Client::subscribe`] events arrive too, and a
//! response that comes while events are queued is matched to its request by id, so a client may
//! both listen and ask on one connection.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use crate::protocol::{
    ClientMessage, ErrorCode, Event, Frame, FrameError, MAX_ANSWER_LINE, PROTOCOL_VERSION, Request,
    Response, ServerMessage, Topic, encode, read_frame,
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

    /// Sends a request and waits for its answer. Events that arrive meanwhile are kept for
    /// [`Client::next_event`].
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
            other => Err(ClientError::Protocol(format!("{other:?}"))),
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
