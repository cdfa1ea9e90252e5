//! The async shell around a panel's [`Model`]: the terminal, the connections to the core, the
//! clock. This is the only part of a panel that does I/O.
//!
//! Three sources feed one loop: crossterm's `EventStream` (keys, resizes), a listener task (one
//! connection: the snapshot requests, then the subscription's events; reconnects by itself with
//! backoff 200 ms → 2 s while the core is away) and, for the actions pane, a command task (a
//! fresh connection per operator command, so a core restart never leaves a stale one). The loop
//! redraws only after a message; with nothing happening it sleeps, and it ticks once a second
//! only while a clock is on screen. Keys that are already waiting are applied together before the
//! next draw, so a paste typed as keys costs a few draws, not one per character. Bracketed paste
//! is on, so a paste arrives whole ([`Msg::Paste`]). Terminal input is read through `/dev/tty`
//! (crossterm's `use-dev-tty`), which drains everything the terminal has at each wake-up: the
//! default reader takes 1 KiB per edge-triggered wake-up and leaves the rest of a large paste
//! unread until the next key. Logs go to a file via tracing, never to the pane.
//!
//! It must not make decisions about what to show: that is [`Model::update`]'s job.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use crossterm::event::{Event as TermEvent, EventStream, KeyEventKind};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use super::app::{Effect, Model, Msg};
use super::theme::Theme;
use crate::client::{Client, ClientError};
use crate::model::PanelKind;
use crate::protocol::{Request, Response, Topic};

/// First reconnect delay.
pub const RECONNECT_FIRST: Duration = Duration::from_millis(200);
/// Longest reconnect delay.
pub const RECONNECT_MAX: Duration = Duration::from_secs(2);

/// Messages queued between the tasks and the loop; a burst of events waits here (and then in
/// the socket) rather than growing memory.
const QUEUE: usize = 256;
/// Messages applied before a redraw, so a burst of log lines costs one draw but keys stay snappy.
const BATCH: usize = 64;
/// Keys applied before a redraw.
const KEY_BATCH: usize = 4096;

/// Work the command task carries out for the loop: a request to the core, or a window to open.
#[derive(Debug)]
enum Job {
    Request(u64, Request),
    Open {
        id: Option<u64>,
        component: String,
        fleet: Vec<String>,
    },
}

/// What `hms-console panel <kind>` runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanelOptions {
    pub kind: PanelKind,
    /// The component shown; `None` for fleet-wide panels (or a fleet view of a per-component kind).
    pub component: Option<String>,
    /// The block title; `None` for the kind's default ("Component Metrics" …).
    pub title: Option<String>,
    /// For `text` panels: which of the component's named panels to show (`None`: any of them).
    pub panel: Option<String>,
    /// The core's control socket.
    pub socket: PathBuf,
    /// ASCII icons and borders (also with `HMS_ASCII=1`).
    pub ascii: bool,
    /// Where the panel logs; `None`: `<data dir>/logs/panel-<kind>[-<component>].log`.
    pub log_file: Option<PathBuf>,
    /// Draw no border or title of its own (tmux's pane border shows the title).
    pub frameless: bool,
    /// The data directory the console's panes are given (for windows this panel opens);
    /// `None`: the default one.
    pub data_dir: Option<PathBuf>,
}

impl PanelOptions {
    /// Options for a panel of `kind` on `socket`, everything else default.
    pub fn new(kind: PanelKind, socket: PathBuf) -> PanelOptions {
        PanelOptions {
            kind,
            component: None,
            title: None,
            panel: None,
            socket,
            ascii: false,
            log_file: None,
            frameless: false,
            data_dir: None,
        }
    }

    /// The log file used when none is given.
    pub fn default_log_file(&self) -> PathBuf {
        let name = match &self.component {
            Some(c) => format!("panel-{}-{c}.log", self.kind.name()),
            None => format!("panel-{}.log", self.kind.name()),
        };
        crate::paths::log_dir(&crate::paths::data_dir(None)).join(name)
    }

    /// How the panel introduces itself to the core, e.g. `panel:logs:api`.
    fn client_name(&self) -> String {
        match &self.component {
            Some(c) => format!("panel:{}:{c}", self.kind.name()),
            None => format!("panel:{}", self.kind.name()),
        }
    }
}

/// Runs a panel until the operator quits (or the terminal goes away).
///
/// Installs a tracing subscriber writing to the log file unless the process already has one (the
/// caller's must then not write to the terminal either).
pub async fn run(opts: PanelOptions) -> anyhow::Result<()> {
    init_logging(&opts);
    tracing::info!(kind = opts.kind.name(), component = ?opts.component, "panel starting");
    let theme = Theme::from_env(opts.ascii);
    let mut model = Model::new(
        opts.kind,
        opts.component.clone(),
        opts.title.clone(),
        opts.panel.clone(),
        theme,
    );
    if opts.frameless {
        model = model.frameless();
    }
    let (tx, rx) = mpsc::channel(QUEUE);
    let listener = tokio::spawn(listen(
        opts.socket.clone(),
        opts.client_name(),
        model.sync_requests(),
        model.subscription(),
        tx.clone(),
    ));
    let (command_tx, command_rx) = mpsc::channel(16);
    let commander = tokio::spawn(carry_out(
        opts.clone(),
        format!("{}:commands", opts.client_name()),
        command_rx,
        tx,
    ));
    // Once the panel has connected and drawn, the pages of the program only its start-up ran
    // are handed back (`hms::pages`; measured at 200x50, median panel RSS 3 s after start and
    // once settled: demo console 4.87 → 4.62 MB, the 100-component overview 5.01 → 3.00 MB).
    let release_pages = tokio::spawn(crate::pages::release_after_start_up());
    let result = match Screen::enter() {
        Ok(mut screen) => event_loop(&mut screen, &mut model, rx, command_tx).await,
        Err(e) => Err(e),
    };
    listener.abort();
    commander.abort();
    release_pages.abort();
    if let Err(e) = &result {
        tracing::error!(cause = %format!("{e:#}"), "panel failed");
    }
    result
}

/// The terminal in raw mode on the alternate screen; restored when dropped, and by ratatui's panic
/// hook on a panic.
struct Screen {
    terminal: ratatui::DefaultTerminal,
}

impl Screen {
    fn enter() -> anyhow::Result<Screen> {
        match ratatui::try_init() {
            Ok(terminal) => {
                // Without it a paste is a stream of keys; with it, one message. Not fatal.
                let _ =
                    crossterm::execute!(std::io::stdout(), crossterm::event::EnableBracketedPaste);
                Ok(Screen { terminal })
            }
            Err(e) => {
                // Raw mode may be on even though the alternate screen failed.
                ratatui::restore();
                Err(e).context("while setting up the terminal (is this a terminal?)")
            }
        }
    }
}

/// Takes the pane's new size, and gives back what a larger size made the frame buffers hold:
/// ratatui keeps a buffer's capacity when it shrinks, and the first pane of a window starts at
/// the whole window's size before it is split (measured: a 66x11 pane's panel kept 952 kB, two
/// buffers of the 200x50 window it started in). Only when the size changed, so both buffers are
/// blank (ratatui clears the screen and the buffers on a resize) and the swaps that reach the
/// second one lose nothing. Returns the pane's size.
fn fit_to_pane<B: ratatui::backend::Backend>(
    terminal: &mut ratatui::Terminal<B>,
) -> anyhow::Result<ratatui::layout::Rect>
where
    B::Error: Send + Sync + 'static,
{
    let before = terminal.current_buffer_mut().area;
    terminal
        .autoresize()
        .context("while reading the terminal size")?;
    let now = terminal.current_buffer_mut().area;
    if now != before {
        for _ in 0..2 {
            terminal.current_buffer_mut().content.shrink_to_fit();
            terminal.swap_buffers();
        }
    }
    Ok(now)
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableBracketedPaste);
        ratatui::restore();
    }
}

async fn event_loop(
    screen: &mut Screen,
    model: &mut Model,
    mut rx: mpsc::Receiver<Msg>,
    commands: mpsc::Sender<Job>,
) -> anyhow::Result<()> {
    model.update(Msg::Tick(SystemTime::now()));
    let mut keys = EventStream::new();
    let mut clock = tokio::time::interval(Duration::from_secs(1));
    clock.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        // The model lays out for the size the terminal has now, asked before every frame (one
        // ioctl): a resize whose signal came before the event stream listened (the pane split
        // while the panel started) would otherwise leave it paging by the old size.
        let area = fit_to_pane(&mut screen.terminal)?;
        if model.size != (area.width, area.height) {
            model.update(Msg::Resize {
                width: area.width,
                height: area.height,
            });
        }
        screen
            .terminal
            .draw(|frame| model.view(frame))
            .context("while drawing")?;
        let msg = next_msg(&mut keys, &mut rx, &mut clock, model).await?;
        let Some(msg) = msg else { return Ok(()) };
        model.update(Msg::Tick(SystemTime::now()));
        if apply(model, msg, &commands) {
            return Ok(());
        }
        for _ in 0..BATCH {
            let Ok(msg) = rx.try_recv() else { break };
            if apply(model, msg, &commands) {
                return Ok(());
            }
        }
        // Keys already read (a paste typed as keys) go in before the next draw.
        // Polled with this task's own waker (`poll!`, not `now_or_never`): EventStream keeps
        // the waker of the poll that found nothing, and a throwaway one would never wake us.
        for _ in 0..KEY_BATCH {
            let std::task::Poll::Ready(event) = futures::poll!(keys.next()) else {
                break;
            };
            let Some(msg) = term_msg(event)? else {
                return Ok(());
            };
            if let Some(msg) = msg
                && apply(model, msg, &commands)
            {
                return Ok(());
            }
        }
    }
}

/// A terminal event as a message: `Ok(None)` when the terminal is gone, `Ok(Some(None))` for an
/// event the panel ignores.
fn term_msg(event: Option<std::io::Result<TermEvent>>) -> anyhow::Result<Option<Option<Msg>>> {
    Ok(Some(match event {
        Some(Ok(TermEvent::Key(key))) if key.kind == KeyEventKind::Press => Some(Msg::Key(key)),
        Some(Ok(TermEvent::Paste(text))) => Some(Msg::Paste(text)),
        Some(Ok(TermEvent::Resize(width, height))) => Some(Msg::Resize { width, height }),
        Some(Ok(_)) => None,
        Some(Err(e)) => return Err(e).context("while reading the terminal"),
        None => return Ok(None),
    }))
}

/// Waits for the next message worth an update; `None` when the terminal is gone. Key releases,
/// mouse and focus events are skipped without a redraw.
async fn next_msg(
    keys: &mut EventStream,
    rx: &mut mpsc::Receiver<Msg>,
    clock: &mut tokio::time::Interval,
    model: &Model,
) -> anyhow::Result<Option<Msg>> {
    loop {
        let msg = tokio::select! {
            event = keys.next() => match term_msg(event)? {
                Some(Some(msg)) => msg,
                Some(None) => continue,
                None => return Ok(None),
            },
            Some(msg) = rx.recv() => msg,
            _ = clock.tick(), if model.wants_tick() => Msg::Tick(SystemTime::now()),
        };
        return Ok(Some(msg));
    }
}

/// Updates the model and carries out its effects; true when the panel should quit.
fn apply(model: &mut Model, msg: Msg, commands: &mpsc::Sender<Job>) -> bool {
    let mut effects = model.update(msg);
    while !effects.is_empty() {
        let mut follow_up = Vec::new();
        for effect in effects {
            match effect {
                Effect::Quit => return true,
                Effect::Send { id, request } => {
                    if let Err(e) = commands.try_send(Job::Request(id, request)) {
                        tracing::warn!(cause = %e, "command queue full");
                        follow_up.extend(model.update(Msg::Reply {
                            id,
                            result: Err("too many commands waiting; try again".into()),
                        }));
                    }
                }
                Effect::Open {
                    id,
                    component,
                    fleet,
                } => {
                    if let Err(e) = commands.try_send(Job::Open {
                        id,
                        component,
                        fleet,
                    }) {
                        tracing::warn!(cause = %e, "command queue full");
                        if let Some(id) = id {
                            follow_up.extend(model.update(Msg::Reply {
                                id,
                                result: Err("too many commands waiting; try again".into()),
                            }));
                        }
                    }
                }
            }
        }
        effects = follow_up;
    }
    false
}

/// Reconnect delays: doubling from [`RECONNECT_FIRST`] up to [`RECONNECT_MAX`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            next: RECONNECT_FIRST,
        }
    }
}

impl Backoff {
    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(RECONNECT_MAX);
        delay
    }

    /// After a successful connection.
    pub fn reset(&mut self) {
        self.next = RECONNECT_FIRST;
    }
}

/// The listening connection, kept up for as long as the panel runs.
async fn listen(
    socket: PathBuf,
    name: String,
    requests: Vec<Request>,
    (topics, components): (Vec<Topic>, Vec<String>),
    tx: mpsc::Sender<Msg>,
) {
    let mut backoff = Backoff::default();
    // Tell the model once per outage, not once per attempt, so a panel waiting for the core does
    // not redraw every retry.
    let mut announced = false;
    loop {
        let outcome = session(
            &socket,
            &name,
            &requests,
            &topics,
            &components,
            &tx,
            &mut backoff,
            &mut announced,
        )
        .await;
        if tx.is_closed() {
            return;
        }
        let reason = match outcome {
            Ok(()) => "the core closed the connection".to_string(),
            Err(e) => e.to_string(),
        };
        if !announced {
            tracing::warn!(cause = %reason, "core unreachable, retrying");
            if tx.send(Msg::Disconnected { reason }).await.is_err() {
                return;
            }
            announced = true;
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

/// One connection: subscribe, snapshot, then events until it ends.
#[allow(clippy::too_many_arguments)]
async fn session(
    socket: &Path,
    name: &str,
    requests: &[Request],
    topics: &[Topic],
    components: &[String],
    tx: &mpsc::Sender<Msg>,
    backoff: &mut Backoff,
    announced: &mut bool,
) -> Result<(), ClientError> {
    let mut client = Client::connect(socket, name).await?;
    backoff.reset();
    *announced = false;
    tracing::info!(socket = %socket.display(), "connected to the core");
    if tx.send(Msg::Connected).await.is_err() {
        return Ok(());
    }
    // Subscribe first, then take the snapshot: an event that happens in between is queued by the
    // client and applied after the snapshot, so nothing is lost (at worst a log or text line that
    // made it into the snapshot shows twice).
    client.subscribe(topics, components).await?;
    for request in requests {
        let answer = match client.request(request.clone()).await {
            Ok(response) => Ok(response),
            Err(ClientError::Server { message, .. }) => Err(message),
            Err(e) => return Err(e),
        };
        if tx.send(Msg::Snapshot(answer)).await.is_err() {
            return Ok(());
        }
    }
    while let Some(event) = client.next_event().await? {
        if tx.send(Msg::Event(event)).await.is_err() {
            return Ok(());
        }
    }
    Ok(())
}

/// Carries out the operator's requests one at a time, each on a fresh connection, and reports
/// every answer back as [`Msg::Reply`].
async fn carry_out(
    opts: PanelOptions,
    name: String,
    mut requests: mpsc::Receiver<Job>,
    tx: mpsc::Sender<Msg>,
) {
    let socket = opts.socket.clone();
    while let Some(job) = requests.recv().await {
        let (id, request) = match job {
            Job::Request(id, request) => (id, request),
            Job::Open {
                id,
                component,
                fleet,
            } => {
                let result = open_window(&opts, &component, &fleet)
                    .await
                    .map(|message| Response::Done { message })
                    .map_err(|e| format!("{e:#}"));
                match (&result, id) {
                    (Err(message), _) => tracing::warn!(cause = %message, "open failed"),
                    (Ok(_), _) => tracing::info!(component, "window opened"),
                }
                if let Some(id) = id
                    && tx.send(Msg::Reply { id, result }).await.is_err()
                {
                    return;
                }
                continue;
            }
        };
        tracing::info!(?request, "operator request");
        let result = match Client::connect(&socket, &name).await {
            Ok(mut client) => client.request(request).await,
            Err(e) => Err(e),
        };
        let result = result.map_err(|e| match e {
            ClientError::Server { message, .. } => message,
            other => other.to_string(),
        });
        if let Err(message) = &result {
            tracing::warn!(cause = %message, "operator request failed");
        }
        if tx.send(Msg::Reply { id, result }).await.is_err() {
            return;
        }
    }
}

/// Opens a component's window in the tmux session this panel's pane belongs to (`$TMUX` and
/// `$TMUX_PANE`, which tmux gives every pane), building it on first open.
async fn open_window(
    opts: &PanelOptions,
    component: &str,
    fleet: &[String],
) -> anyhow::Result<String> {
    use crate::console::session::{
        ConsoleOptions, console_program, open_component, slim_panel_beside, this_program,
    };
    use crate::tmux::driver::Tmux;
    let pane = std::env::var("TMUX_PANE")
        .ok()
        .filter(|p| !p.is_empty() && std::env::var_os("TMUX").is_some())
        .context("open works in the console's panes (tmux); from a shell: hms-console layout twobytwo COMPONENT")?;
    // No -L: a tmux client inside a pane finds its server through $TMUX.
    let tmux = Tmux::default_server();
    let session = tmux
        .run(&[
            "display-message".into(),
            "-p".into(),
            "-t".into(),
            pane,
            "#{session_name}".into(),
        ])
        .await
        .context("while finding this pane's tmux session")?
        .trim()
        .to_string();
    let exe =
        console_program(this_program().context("while finding this program's path for the panes")?);
    let console = ConsoleOptions {
        session,
        socket: std::path::absolute(&opts.socket)?,
        data_dir: std::path::absolute(
            opts.data_dir
                .clone()
                .unwrap_or_else(|| crate::paths::data_dir(None)),
        )?,
        slim_panel: slim_panel_beside(&exe),
        exe,
        ascii: opts.ascii,
    };
    let opened = open_component(&tmux, &console, component, fleet).await?;
    Ok(opened.message(component))
}

/// A tracing subscriber writing to the panel's log file. Failing to log is not a reason to fail
/// the panel: it then runs without logs.
///
/// The file is written directly (a mutex around it): a panel logs a few lines an hour. The
/// non-blocking appender it used before kept a writer thread and a 128,000-line channel whose
/// slots are allocated and touched up front: 4 MB of each panel's 5.3 MB private memory.
///
/// `RUST_LOG` is read as a list of `target=level` directives (`Targets`), not as an `EnvFilter`:
/// the latter's span and field filters bring a regex engine into the slim panel program, about
/// 0.4 MB of code for a feature a panel's few log lines do not need.
fn init_logging(opts: &PanelOptions) {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::prelude::*;
    let path = opts
        .log_file
        .clone()
        .unwrap_or_else(|| opts.default_log_file());
    if let Some(dir) = path.parent()
        && std::fs::create_dir_all(dir).is_err()
    {
        return;
    }
    let Ok(file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    else {
        return;
    };
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|directives| directives.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_target("hms", tracing::Level::INFO));
    let layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file));
    let _ = tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{
        ClientMessage, Event, Frame, MAX_LINE, NoticeLevel, PROTOCOL_VERSION, Response,
        ServerMessage, encode, read_frame,
    };
    use tokio::io::{AsyncWriteExt, BufReader};
    use tokio::net::{UnixListener, UnixStream};

    const PATIENCE: Duration = Duration::from_secs(5);

    /// A pane that started at its window's size and was then split: the frame buffers hold what
    /// the small pane needs, and the next frame is drawn whole at the new size.
    #[test]
    fn a_pane_made_smaller_gives_back_its_frame_buffers_and_draws_whole() {
        use ratatui::backend::TestBackend;
        use ratatui::widgets::Paragraph;
        let mut terminal = ratatui::Terminal::new(TestBackend::new(200, 50)).unwrap();
        let text = |f: &mut ratatui::Frame| f.render_widget(Paragraph::new("db running"), f.area());
        terminal.draw(text).unwrap();
        terminal.backend_mut().resize(66, 11);
        fit_to_pane(&mut terminal).unwrap();
        for _ in 0..2 {
            let buffer = terminal.current_buffer_mut();
            assert_eq!(buffer.content.len(), 66 * 11);
            assert!(
                buffer.content.capacity() < 2 * 66 * 11,
                "capacity {} kept from the 200x50 buffer",
                buffer.content.capacity()
            );
            terminal.swap_buffers();
        }
        terminal.draw(text).unwrap();
        terminal.backend().assert_buffer_lines(
            std::iter::once(format!("{:66}", "db running"))
                .chain(std::iter::repeat_n(" ".repeat(66), 10))
                .map(ratatui::text::Line::from),
        );
        // The same size again: nothing is swapped away, the screen stays as drawn.
        fit_to_pane(&mut terminal).unwrap();
        terminal.draw(text).unwrap();
        assert_eq!(terminal.backend().buffer().content[0].symbol(), "d");
    }

    async fn recv(rx: &mut mpsc::Receiver<Msg>) -> Msg {
        tokio::time::timeout(PATIENCE, rx.recv())
            .await
            .expect("a message in time")
            .expect("the channel is open")
    }

    /// A fake core for one connection: answers the hello, then each request with `answer`, then
    /// pushes `events` after the subscription and hangs up.
    /// Answers requests; once the client has subscribed and then made `snapshots` more requests,
    /// sends `events` and hangs up.
    async fn fake_core(
        stream: UnixStream,
        mut answer: impl FnMut(&Request) -> Response,
        events: Vec<Event>,
        snapshots: usize,
    ) -> Vec<Request> {
        let mut subscribed_at: Option<usize> = None;
        let (read, mut write) = stream.into_split();
        let mut reader = BufReader::new(read);
        let mut buf = Vec::new();
        let mut seen = Vec::new();
        while let Ok(Some(Frame::Line(line))) = read_frame(&mut reader, &mut buf, MAX_LINE).await {
            let reply = match serde_json::from_str::<ClientMessage>(&line).expect("valid") {
                ClientMessage::Hello { .. } => ServerMessage::Hello {
                    version: PROTOCOL_VERSION,
                    pid: 1,
                    data_dir: "/tmp".into(),
                    containment: None,
                },
                ClientMessage::Request { id, request } => {
                    let response = answer(&request);
                    if matches!(request, Request::Subscribe { .. }) {
                        subscribed_at = Some(seen.len());
                    }
                    seen.push(request);
                    write
                        .write_all(&encode(&ServerMessage::Response { id, response }))
                        .await
                        .expect("write");
                    if subscribed_at.is_some_and(|k| seen.len() - k - 1 == snapshots) {
                        for event in &events {
                            write
                                .write_all(&encode(&ServerMessage::Event {
                                    event: event.clone(),
                                }))
                                .await
                                .expect("write");
                        }
                        return seen;
                    }
                    continue;
                }
            };
            write.write_all(&encode(&reply)).await.expect("write");
        }
        seen
    }

    fn answer(request: &Request) -> Response {
        match request {
            Request::Subscribe { .. } => Response::Subscribed,
            Request::Status { .. } => Response::Status { components: vec![] },
            _ => Response::Done {
                message: "done".into(),
            },
        }
    }

    fn notice() -> Event {
        Event::Notice {
            level: NoticeLevel::Info,
            message: "hello".into(),
            at: SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn reconnect_backoff_doubles_to_two_seconds_and_resets() {
        let mut backoff = Backoff::default();
        let delays: Vec<u64> = (0..6)
            .map(|_| backoff.next_delay().as_millis() as u64)
            .collect();
        assert_eq!(delays, vec![200, 400, 800, 1600, 2000, 2000]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), RECONNECT_FIRST);
    }

    #[tokio::test]
    async fn listener_waits_for_the_core_then_subscribes_snapshots_and_reconnects() {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("core.sock");
        let (tx, mut rx) = mpsc::channel(16);
        let requests = vec![Request::Status {
            component: Some("api".into()),
        }];
        let task = tokio::spawn(listen(
            socket.clone(),
            "panel:test".into(),
            requests.clone(),
            (vec![Topic::State], vec!["api".into()]),
            tx,
        ));
        match recv(&mut rx).await {
            Msg::Disconnected { reason } => {
                assert!(reason.contains("no core is running"), "{reason}")
            }
            other => panic!("expected Disconnected, got {other:?}"),
        }

        let core = UnixListener::bind(&socket).expect("bind");
        let (stream, _) = tokio::time::timeout(PATIENCE, core.accept())
            .await
            .expect("the panel retries")
            .expect("accept");
        let seen = fake_core(stream, answer, vec![notice()], 1).await;
        assert_eq!(
            seen,
            vec![
                Request::Subscribe {
                    topics: vec![Topic::State],
                    components: vec!["api".into()]
                },
                requests[0].clone(),
            ]
        );
        assert_eq!(recv(&mut rx).await, Msg::Connected);
        assert_eq!(
            recv(&mut rx).await,
            Msg::Snapshot(Ok(Response::Status { components: vec![] }))
        );
        assert_eq!(recv(&mut rx).await, Msg::Event(notice()));
        assert!(matches!(recv(&mut rx).await, Msg::Disconnected { .. }));

        // The core comes back on the same socket: the panel reconnects by itself.
        let (stream, _) = tokio::time::timeout(PATIENCE, core.accept())
            .await
            .expect("the panel reconnects")
            .expect("accept");
        tokio::spawn(fake_core(stream, answer, vec![], 1));
        assert_eq!(recv(&mut rx).await, Msg::Connected);
        task.abort();
    }

    #[tokio::test]
    async fn snapshot_refusals_reach_the_model_and_the_session_goes_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("core.sock");
        let core = UnixListener::bind(&socket).expect("bind");
        let (tx, mut rx) = mpsc::channel(16);
        let task = tokio::spawn(listen(
            socket.clone(),
            "panel:test".into(),
            vec![Request::Status {
                component: Some("ghost".into()),
            }],
            (vec![Topic::State], vec!["ghost".into()]),
            tx,
        ));
        let (stream, _) = core.accept().await.expect("accept");
        // A core that refuses the status request with an error line.
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut reader = BufReader::new(read);
            let mut buf = Vec::new();
            while let Ok(Some(Frame::Line(line))) =
                read_frame(&mut reader, &mut buf, MAX_LINE).await
            {
                let reply = match serde_json::from_str::<ClientMessage>(&line).expect("valid") {
                    ClientMessage::Hello { .. } => ServerMessage::Hello {
                        version: PROTOCOL_VERSION,
                        pid: 1,
                        data_dir: "/tmp".into(),
                        containment: None,
                    },
                    ClientMessage::Request {
                        id,
                        request: Request::Status { .. },
                    } => ServerMessage::Error {
                        id: Some(id),
                        code: crate::protocol::ErrorCode::UnknownComponent,
                        message: "unknown component 'ghost'".into(),
                    },
                    ClientMessage::Request { id, .. } => ServerMessage::Response {
                        id,
                        response: Response::Subscribed,
                    },
                };
                write.write_all(&encode(&reply)).await.expect("write");
            }
        });
        assert_eq!(recv(&mut rx).await, Msg::Connected);
        assert_eq!(
            recv(&mut rx).await,
            Msg::Snapshot(Err("unknown component 'ghost'".into()))
        );
        task.abort();
    }

    #[tokio::test]
    async fn operator_requests_are_answered_or_explained() {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("core.sock");
        let (command_tx, command_rx) = mpsc::channel(4);
        let (tx, mut rx) = mpsc::channel(16);
        let task = tokio::spawn(carry_out(
            PanelOptions::new(PanelKind::Actions, socket.clone()),
            "test".into(),
            command_rx,
            tx,
        ));
        let restart = Request::Restart {
            component: "api".into(),
        };

        command_tx
            .send(Job::Request(7, restart.clone()))
            .await
            .expect("send");
        match recv(&mut rx).await {
            Msg::Reply {
                id: 7,
                result: Err(message),
            } => assert!(message.contains("no core is running"), "{message}"),
            other => panic!("expected a failed reply, got {other:?}"),
        }

        let core = UnixListener::bind(&socket).expect("bind");
        command_tx
            .send(Job::Request(8, restart.clone()))
            .await
            .expect("send");
        let (stream, _) = core.accept().await.expect("accept");
        let seen = fake_core(stream, answer, vec![], 0).await;
        assert_eq!(seen, vec![restart]);
        assert_eq!(
            recv(&mut rx).await,
            Msg::Reply {
                id: 8,
                result: Ok(Response::Done {
                    message: "done".into()
                })
            }
        );
        task.abort();
    }

    #[test]
    fn a_full_command_queue_answers_the_operator_instead_of_blocking() {
        let mut model = Model::new(PanelKind::Actions, None, None, None, Theme::default());
        model.update(Msg::Snapshot(Ok(Response::Status { components: vec![] })));
        let (commands, _keep) = mpsc::channel(1);
        commands
            .try_send(Job::Request(0, Request::Ping))
            .expect("fills the queue");
        for c in "status".chars() {
            apply(
                &mut model,
                Msg::Key(crossterm::event::KeyEvent::from(
                    crossterm::event::KeyCode::Char(c),
                )),
                &commands,
            );
        }
        let quit = apply(
            &mut model,
            Msg::Key(crossterm::event::KeyEvent::from(
                crossterm::event::KeyCode::Enter,
            )),
            &commands,
        );
        assert!(!quit);
        let super::super::app::Body::Actions(state) = &model.body else {
            panic!("actions body")
        };
        assert_eq!(
            state.outcome,
            super::super::actions::Outcome::Error {
                line: "status".into(),
                message: "too many commands waiting; try again".into()
            }
        );
    }

    #[test]
    fn default_log_file_is_per_panel_under_the_data_dir() {
        let mut opts = PanelOptions::new(PanelKind::Logs, "/tmp/s.sock".into());
        assert!(opts.default_log_file().ends_with("logs/panel-logs.log"));
        opts.component = Some("api".into());
        assert!(opts.default_log_file().ends_with("logs/panel-logs-api.log"));
        assert_eq!(opts.client_name(), "panel:logs:api");
    }
}
