//! The control socket: one task per connection, speaking [`crate::protocol`].
//!
//! A connection must say hello first, with our protocol version. Each request is handed to the
//! router and answered with its id; a subscription forwards bus events that match its topics.
//! A peer whose uid differs from ours is refused before anything else. Bad lines (too long, not
//! UTF-8, not JSON, unknown messages) are answered with an error and the connection goes on: no
//! client can crash or block the core.
//!
//! Every resource a client can grow is bounded ([`ConnLimits`]): the number of connections (and
//! descriptors are kept in reserve for the fleet's spawns), the time to say hello, the requests in
//! flight per connection (the next line is read only when there is room), and the bytes queued for
//! a connection that does not read: events beyond them are dropped and the client is told how
//! many; answers wait for room, which in turn stops the reading of further requests.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::bus::Published;
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
    /// How the components are contained, for `status` and `up`.
    pub containment: String,
}

/// The bounds on what clients can make the core hold.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Connections open at once; one more is told so and closed.
    pub max_connections: usize,
    /// A connection that has not said hello by then is closed.
    pub hello_deadline: Duration,
    /// Requests of one connection being handled at once.
    pub max_in_flight: usize,
    /// Bytes waiting to be written to one connection.
    pub max_queued_bytes: usize,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            max_connections: 1024,
            hello_deadline: Duration::from_secs(5),
            max_in_flight: 32,
            max_queued_bytes: 4 * 1024 * 1024,
        }
    }
}

impl ConnLimits {
    /// The limits an `hms.toml` sets in its `[limits]` table.
    pub fn from_config(limits: &crate::config::Limits) -> ConnLimits {
        ConnLimits {
            max_connections: limits.max_connections,
            hello_deadline: limits.hello_timeout,
            max_in_flight: limits.max_requests_in_flight,
            max_queued_bytes: limits.max_queued_bytes,
        }
    }

    /// These limits, with `max_connections` lowered so that the connections' descriptors leave
    /// `reserve` of `fd_limit` for the fleet (each connection costs one descriptor).
    pub fn within_fds(mut self, fd_limit: u64, reserve: u64) -> ConnLimits {
        let room = fd_limit.saturating_sub(reserve).max(16);
        self.max_connections = self.max_connections.min(room as usize);
        self
    }
}

/// Accepts connections until cancelled.
pub async fn serve(
    listener: UnixListener,
    handle: Router,
    info: ServerInfo,
    limits: ConnLimits,
    cancel: CancellationToken,
) {
    let tracker = TaskTracker::new();
    let my_uid = nix::unistd::geteuid().as_raw();
    let open = Arc::new(AtomicUsize::new(0));
    // Connection ids start after NO_CONN.
    let mut next_conn: ConnId = NO_CONN;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    if open.load(Ordering::Relaxed) >= limits.max_connections {
                        tracker.spawn(refuse(stream, format!(
                            "too many connections to this core (the limit is {}); close some and try again",
                            limits.max_connections
                        )));
                        continue;
                    }
                    open.fetch_add(1, Ordering::Relaxed);
                    let handle = handle.clone();
                    let info = info.clone();
                    let cancel = cancel.clone();
                    let open = open.clone();
                    next_conn += 1;
                    let conn = next_conn;
                    tracker.spawn(async move {
                        connection(stream, conn, my_uid, handle, info, limits, cancel).await;
                        open.fetch_sub(1, Ordering::Relaxed);
                    });
                }
                Err(e) => {
                    tracing::warn!(cause = %e, "accept failed");
                    // Out of descriptors, most likely: give the fleet a moment.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    tracker.close();
    // Connections end with the cancellation; give them a moment to say goodbye.
    let _ = tokio::time::timeout(Duration::from_secs(1), tracker.wait()).await;
}

/// Tells a connection why it is closed, without waiting long for it to listen.
async fn refuse(mut stream: UnixStream, message: String) {
    let line = encode(&ServerMessage::Error {
        id: None,
        code: ErrorCode::Rejected,
        message,
    });
    let _ = tokio::time::timeout(Duration::from_millis(200), stream.write_all(&line)).await;
}

/// What one connection subscribed to.
#[derive(Default)]
struct Filter {
    topics: HashSet<Topic>,
    components: HashSet<String>,
}

impl Filter {
    fn wants(&self, event: &Event) -> bool {
        if matches!(event, Event::Notice { .. }) {
            return self.topics.contains(&Topic::Notices);
        }
        self.topics.contains(&event.topic())
            && (self.components.is_empty()
                || event
                    .component()
                    .is_none_or(|c| self.components.contains(c)))
    }
}

/// A line for a client: an answer of its own, or an event's line every subscriber shares
/// (encoded once, see [`Published::line`]).
enum Line {
    Own(Vec<u8>),
    Shared(Arc<[u8]>),
}

impl Line {
    fn bytes(&self) -> &[u8] {
        match self {
            Line::Own(line) => line,
            Line::Shared(line) => line,
        }
    }
}

/// The lines waiting to be written to one client, bounded in bytes: each queued line holds as
/// many permits of `room` as it has bytes (at most all of them), given back once written. A
/// shared event counts whole against every queue it is in, though it is held once.
#[derive(Clone)]
struct Outbox {
    tx: mpsc::UnboundedSender<(Line, OwnedSemaphorePermit)>,
    room: Arc<Semaphore>,
    capacity: u32,
    /// Events dropped since the client was last told.
    dropped: Arc<AtomicU64>,
}

impl Outbox {
    fn cost(&self, line: &[u8]) -> u32 {
        (line.len().min(u32::MAX as usize) as u32).min(self.capacity)
    }

    /// Queues an answer, waiting for room.
    async fn send(&self, line: Vec<u8>) {
        let Ok(permit) = self.room.clone().acquire_many_owned(self.cost(&line)).await else {
            return;
        };
        let _ = self.tx.send((Line::Own(line), permit));
    }

    /// Queues an event's line if there is room, else counts it as dropped. Returns false once
    /// the connection is gone.
    fn offer(&self, event: &Published) -> bool {
        let line = event.line();
        match self.room.clone().try_acquire_many_owned(self.cost(line)) {
            Ok(permit) => {
                let dropped = self.dropped.swap(0, Ordering::Relaxed);
                if dropped > 0 {
                    // The notice may overdraw the room a little: it is short.
                    let notice = encode(&ServerMessage::Event {
                        event: dropped_notice(dropped),
                    });
                    let _ = self.tx.send((Line::Own(notice), permit_none(&self.room)));
                }
                self.tx.send((Line::Shared(line.clone()), permit)).is_ok()
            }
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                !self.tx.is_closed()
            }
            Err(tokio::sync::TryAcquireError::Closed) => false,
        }
    }
}

/// The most bytes of waiting lines gathered into one write (a line that is longer goes whole).
const WRITE_BATCH: usize = 64 * 1024;

/// A permit of nothing, for a line that costs no room.
fn permit_none(room: &Arc<Semaphore>) -> OwnedSemaphorePermit {
    room.clone()
        .try_acquire_many_owned(0)
        .expect("zero permits are always available")
}

fn dropped_notice(n: u64) -> Event {
    Event::Notice {
        level: NoticeLevel::Warning,
        message: format!("{n} events were dropped because this client read too slowly"),
        at: std::time::SystemTime::now(),
    }
}

async fn connection(
    stream: UnixStream,
    conn: ConnId,
    my_uid: u32,
    handle: Router,
    info: ServerInfo,
    limits: ConnLimits,
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
    let capacity = limits.max_queued_bytes.clamp(64 * 1024, u32::MAX as usize) as u32;
    let (tx, mut out_rx) = mpsc::unbounded_channel::<(Line, OwnedSemaphorePermit)>();
    let out = Outbox {
        tx,
        room: Arc::new(Semaphore::new(capacity as usize)),
        capacity,
        dropped: Arc::default(),
    };
    let mut writer = tokio::spawn(async move {
        // Lines that are already waiting go out in one write (a busy agent or subscriber gets
        // many at once): fewer system calls and fewer wake-ups on both sides. Their permits are
        // given back once the whole batch is written, as each line's was after its own write.
        let mut batch = Vec::new();
        let mut permits = Vec::new();
        while let Some((line, permit)) = out_rx.recv().await {
            let written = match out_rx.try_recv() {
                Err(_) => write.write_all(line.bytes()).await,
                Ok((next, next_permit)) => {
                    batch.extend_from_slice(line.bytes());
                    batch.extend_from_slice(next.bytes());
                    permits.push(next_permit);
                    while batch.len() < WRITE_BATCH {
                        let Ok((more, more_permit)) = out_rx.try_recv() else {
                            break;
                        };
                        batch.extend_from_slice(more.bytes());
                        permits.push(more_permit);
                    }
                    let written = write.write_all(&batch).await;
                    batch.clear();
                    if batch.capacity() > 4 * WRITE_BATCH {
                        batch = Vec::new();
                    }
                    written
                }
            };
            drop(permit);
            permits.clear();
            if written.is_err() {
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
    let in_flight = Arc::new(Semaphore::new(limits.max_in_flight.max(1)));
    let hello_by = tokio::time::Instant::now() + limits.hello_deadline;

    loop {
        // Read the next request only when there is room to handle it.
        let permit = tokio::select! {
            _ = cancel.cancelled() => break,
            p = in_flight.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let frame = tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep_until(hello_by), if !greeted => {
                send_error(&out, None, ErrorCode::HelloRequired, format!(
                    "no hello within {}: closing",
                    crate::text::duration(limits.hello_deadline)
                )).await;
                break;
            }
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
                out.send(encode(&ServerMessage::Hello {
                    version: PROTOCOL_VERSION,
                    pid: std::process::id(),
                    data_dir: info.data_dir.display().to_string(),
                    containment: Some(info.containment.clone()),
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
                        cancel.clone(),
                    )));
                }
                out.send(encode(&ServerMessage::Response {
                    id,
                    response: Response::Subscribed,
                }))
                .await;
            }
            ClientMessage::Request { id, request } => {
                registered |= matches!(request, Request::Register { .. });
                let handle = handle.clone();
                let out = out.clone();
                // Each request runs on its own, so a slow `stop` does not hold up a `status`; the
                // permit bounds how many do at once.
                tokio::spawn(async move {
                    let message = match handle.request_from(conn, request).await {
                        Ok(response) => ServerMessage::Response { id, response },
                        Err((code, message)) => ServerMessage::Error {
                            id: Some(id),
                            code,
                            message,
                        },
                    };
                    out.send(encode(&message)).await;
                    drop(permit);
                });
            }
        }
    }
    if let Some(mut f) = forwarder {
        if cancel.is_cancelled() {
            // The core is exiting: what it published last (the last components stopping) is
            // still delivered; the forwarder drains it and ends.
            if tokio::time::timeout(Duration::from_secs(1), &mut f)
                .await
                .is_err()
            {
                f.abort();
            }
        } else {
            f.abort();
        }
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
    handle.mac.connection_closed(conn);
    // Answers still being worked on are written if the client still reads; one that does not
    // read has its queue dropped after a moment.
    drop(out);
    if tokio::time::timeout(Duration::from_secs(5), &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
}

async fn send_error(out: &Outbox, id: Option<u64>, code: ErrorCode, message: String) {
    out.send(encode(&ServerMessage::Error { id, code, message }))
        .await;
}

async fn forward(
    mut rx: crate::core::bus::BusReceiver,
    filter: Arc<Mutex<Filter>>,
    out: Outbox,
    cancel: CancellationToken,
) {
    loop {
        let received = tokio::select! {
            biased;
            r = rx.recv() => r,
            _ = cancel.cancelled() => match rx.try_recv() {
                Ok(e) => Ok(e),
                // Nothing more was published before the end.
                Err(_) => return,
            },
        };
        let event = match received {
            Ok(e) => e,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                Arc::new(Published::new(dropped_notice(n)))
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let wanted = filter.lock().expect("filter lock").wants(event.event());
        // The bus shares one event among its subscribers, and its line: the first connection
        // that sends it encodes it, the others queue the same bytes.
        if wanted && !out.offer(&event) {
            return;
        }
    }
}
