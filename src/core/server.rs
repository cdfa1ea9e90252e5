//! The control socket: one task per connection, speaking [`crate::protocol`].
//!
//! A connection must say hello first, with our protocol version. Each request is handed to the
//! supervisor and answered with its id; a subscription forwards bus events that match its topics.
//! A peer whose uid differs from ours is refused before anything else. Bad lines (too long, not
//! UTF-8, not JSON, unknown messages) are answered with an error and the connection goes on: no
//! client can crash or block the core. Slow subscribers lose events (and are told so), never stall
//! the supervisor.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::router::Router;
use super::supervisor::{ConnId, NO_CONN};
use crate::protocol::{
    ClientMessage, ErrorCode, Event, Frame, MAX_LINE, NoticeLevel, PROTOCOL_VERSION, Request,
    Response, ServerMessage, Topic, encode, read_frame,
};

/// What the server says in its hello.
#[derive(Clone)]
pub struct ServerInfo {
    pub data_dir: PathBuf,
}

/// Accepts connections until cancelled.
pub async fn serve(
    listener: UnixListener,
    handle: Router,
    info: ServerInfo,
    cancel: CancellationToken,
) {
    let tracker = TaskTracker::new();
    let my_uid = nix::unistd::geteuid().as_raw();
    // Connection ids start after NO_CONN.
    let mut next_conn: ConnId = NO_CONN;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let handle = handle.clone();
                    let info = info.clone();
                    let cancel = cancel.clone();
                    next_conn += 1;
                    let conn = next_conn;
                    tracker.spawn(async move {
                        connection(stream, conn, my_uid, handle, info, cancel).await;
                    });
                }
                Err(e) => {
                    tracing::warn!(cause = %e, "accept failed");
                    // Out of descriptors, most likely: give the fleet a moment.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }
    tracker.close();
    // Connections end with the cancellation; give them a moment to say goodbye.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), tracker.wait()).await;
}

/// What one connection subscribed to.
#[derive(Default)]
struct Filter {
    topics: HashSet<Topic>,
    components: HashSet<String>,
}

impl Filter {
    fn wants(&self, event: &Event) -> bool {
        self.topics.contains(&event.topic())
            && (self.components.is_empty()
                || event
                    .component()
                    .is_none_or(|c| self.components.contains(c)))
    }
}

async fn connection(
    stream: UnixStream,
    conn: ConnId,
    my_uid: u32,
    handle: Router,
    info: ServerInfo,
    cancel: CancellationToken,
) {
    let peer_uid = stream.peer_cred().map(|c| c.uid()).ok();
    let (read, mut write) = stream.into_split();
    if peer_uid != Some(my_uid) {
        tracing::warn!(?peer_uid, "refused a peer with another uid");
        let _ = write
            .write_all(&encode(&ServerMessage::Error {
                id: None,
                code: ErrorCode::Rejected,
                message: format!(
                    "permission denied: this core belongs to uid {my_uid}, you are uid {}",
                    peer_uid.map_or("unknown".into(), |u| u.to_string())
                ),
            }))
            .await;
        return;
    }
    // Every line to the client goes through one writer task, so responses and events never
    // interleave mid-line.
    let (out, mut out_rx) = mpsc::channel::<Vec<u8>>(1024);
    let writer = tokio::spawn(async move {
        while let Some(line) = out_rx.recv().await {
            if write.write_all(&line).await.is_err() {
                return;
            }
        }
    });
    let mut reader = BufReader::new(read);
    let mut buf = Vec::new();
    let filter = Arc::new(Mutex::new(Filter::default()));
    let mut forwarder: Option<tokio::task::JoinHandle<()>> = None;
    let mut counted_metrics = false;
    let mut greeted = false;
    let mut client_name = String::from("?");
    // Whether this connection registered a linked component (which ends with the connection).
    let mut registered = false;

    loop {
        let frame = tokio::select! {
            _ = cancel.cancelled() => break,
            f = read_frame(&mut reader, &mut buf, MAX_LINE) => f,
        };
        let line = match frame {
            Ok(Some(Frame::Line(line))) => line,
            Ok(Some(Frame::TooLong)) => {
                send_error(
                    &out,
                    None,
                    ErrorCode::LineTooLong,
                    format!("line longer than {MAX_LINE} bytes skipped"),
                )
                .await;
                continue;
            }
            Ok(Some(Frame::NotUtf8)) => {
                send_error(
                    &out,
                    None,
                    ErrorCode::BadRequest,
                    "line is not UTF-8".into(),
                )
                .await;
                continue;
            }
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(client = %client_name, cause = %e, "connection ended");
                break;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let message: ClientMessage = match serde_json::from_str(&line) {
            Ok(m) => m,
            Err(e) => {
                let id = serde_json::from_str::<serde_json::Value>(&line)
                    .ok()
                    .and_then(|v| v.get("id")?.as_u64());
                send_error(&out, id, ErrorCode::BadRequest, format!("bad message: {e}")).await;
                continue;
            }
        };
        match message {
            ClientMessage::Hello { version, client } => {
                if version != PROTOCOL_VERSION {
                    send_error(
                        &out,
                        None,
                        ErrorCode::VersionMismatch,
                        format!("this core speaks protocol version {PROTOCOL_VERSION}, you sent {version}"),
                    )
                    .await;
                    break;
                }
                greeted = true;
                tracing::debug!(%client, "client connected");
                client_name = client;
                let _ = out
                    .send(encode(&ServerMessage::Hello {
                        version: PROTOCOL_VERSION,
                        pid: std::process::id(),
                        data_dir: info.data_dir.display().to_string(),
                    }))
                    .await;
            }
            ClientMessage::Request { id, .. } if !greeted => {
                send_error(
                    &out,
                    Some(id),
                    ErrorCode::HelloRequired,
                    "send a hello first".into(),
                )
                .await;
            }
            ClientMessage::Request {
                id,
                request: Request::Subscribe { topics, components },
            } => {
                let wants_metrics = topics.contains(&Topic::Metrics);
                {
                    let mut f = filter.lock().expect("filter lock");
                    f.topics.extend(topics);
                    f.components.extend(components);
                }
                if wants_metrics && !counted_metrics {
                    counted_metrics = true;
                    handle
                        .supervisor
                        .metrics_subscribers
                        .fetch_add(1, Ordering::Relaxed);
                }
                if forwarder.is_none() {
                    forwarder = Some(tokio::spawn(forward(
                        handle.bus.subscribe(),
                        filter.clone(),
                        out.clone(),
                    )));
                }
                let _ = out
                    .send(encode(&ServerMessage::Response {
                        id,
                        response: Response::Subscribed,
                    }))
                    .await;
            }
            ClientMessage::Request { id, request } => {
                registered |= matches!(request, Request::Register { .. });
                let handle = handle.clone();
                let out = out.clone();
                // Each request runs on its own, so a slow `stop` does not hold up a `status`.
                tokio::spawn(async move {
                    let message = match handle.request_from(conn, request).await {
                        Ok(response) => ServerMessage::Response { id, response },
                        Err((code, message)) => ServerMessage::Error {
                            id: Some(id),
                            code,
                            message,
                        },
                    };
                    let _ = out.send(encode(&message)).await;
                });
            }
        }
    }
    if let Some(f) = forwarder {
        f.abort();
    }
    if counted_metrics {
        handle
            .supervisor
            .metrics_subscribers
            .fetch_sub(1, Ordering::Relaxed);
    }
    if registered {
        handle.supervisor.connection_closed(conn);
    }
    drop(out);
    let _ = writer.await;
}

async fn send_error(
    out: &mpsc::Sender<Vec<u8>>,
    id: Option<u64>,
    code: ErrorCode,
    message: String,
) {
    let _ = out
        .send(encode(&ServerMessage::Error { id, code, message }))
        .await;
}

async fn forward(
    mut rx: broadcast::Receiver<Event>,
    filter: Arc<Mutex<Filter>>,
    out: mpsc::Sender<Vec<u8>>,
) {
    loop {
        let event = match rx.recv().await {
            Ok(e) => e,
            Err(broadcast::error::RecvError::Lagged(n)) => Event::Notice {
                level: NoticeLevel::Warning,
                message: format!("{n} events were dropped because this client read too slowly"),
                at: std::time::SystemTime::now(),
            },
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let wanted = matches!(event, Event::Notice { .. })
            && filter
                .lock()
                .expect("filter lock")
                .topics
                .contains(&Topic::Notices)
            || filter.lock().expect("filter lock").wants(&event);
        if wanted
            && out
                .send(encode(&ServerMessage::Event { event }))
                .await
                .is_err()
        {
            return;
        }
    }
}
