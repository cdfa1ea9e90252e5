//! The guide's `TerminalInterface` (§3): a linked Rust component builds its own tmux view, writes
//! text into its panels, and receives what the operator types into its input pane.
//!
//! In the guide's order (§3.1: create, `initialize`, define the panels, update them, handle input):
//!
//! ```no_run
//! // no_run: needs a running core (`hms-console up`) and tmux; examples/guide_service.rs and
//! // tests/guide_service.rs run this against real ones.
//! use hms::prelude::*;
//!
//! # async fn demo() -> Result<(), TerminalError> {
//! let terminal = TerminalInterface::new("my-component", TerminalLayout::TwoByTwo, TerminalMode::Observe);
//! terminal.initialize().await?;
//! terminal.define_panel("metrics", 0, 0, "Component Metrics");
//! terminal.define_panel("logs", 0, 1, "Component Logs");
//! terminal.define_panel("status", 1, 0, "Health Status");
//! terminal.define_panel("actions", 1, 1, "Actions");
//! terminal.update_panel("metrics", format!("CPU: {}%\nMemory: {}MB", 3, 41));
//! terminal.append_to_panel("logs", "connected to db");
//! terminal.update_panel("actions", ["restart", "status", "help"].join("\n"));
//! terminal.set_input_handler(|input: String| match input.trim() {
//!     "help" => Ok(()),
//!     other => Err(format!("unknown command {other}")),
//! });
//! terminal.start_input_handling().await?;
//! # Ok(()) }
//! ```
//!
//! How it maps onto hms-console: the view is a tmux session `hms-<id>` (on the tmux server named
//! by `HMS_TMUX_SOCKET`, else the default one) whose panes run `hms-console panel` processes.
//! Every panel the component names is a `text` panel showing what it writes with
//! [`TerminalInterface::update_panel`] and [`TerminalInterface::append_to_panel`], whatever the
//! order of definitions, `initialize` and updates: definitions made after `initialize` rebuild
//! the view (a burst of them once). The panel named `actions` shows its text too, and under it
//! the input pane where the operator types (in grids of more than six rows there is no room to
//! split it: there `actions` is the input pane alone). `system-health` / `system_health` shows
//! the fleet; [`TerminalInterface::add_component_panel`] adds another component's live tile. The
//! text travels through the core (`PanelUpdate`), which keeps the latest text, so a pane started
//! later or reconnected shows it too. Typed lines travel back through the core as `PanelInput`
//! events. With no panel defined, a `TwoByTwo` view shows the guide's four.
//!
//! # The panel program
//! Panes never run the component's own program. They run `hms-console`, found in this order: the
//! path given to [`TerminalInterface::with_program`]; the `HMS_CONSOLE_BIN` environment variable;
//! this program itself when it is `hms-console`; an `hms-console` beside this program, or one
//! directory up from it (what `cargo run --example` and `cargo test` build:
//! `target/<profile>/hms-console` beside `target/<profile>/examples/` and `deps/`); `hms-console`
//! on `PATH`. Without one, `initialize` fails with [`TerminalError::NoPanelProgram`], naming
//! every place it looked.
//!
//! # Handlers
//! The guide's input handler is a closure that uses `self`. Rust wants it `'static`, so share
//! the component behind an `Arc` and move a clone in (see examples/guide_service.rs):
//! `let svc = service.clone(); terminal.set_input_handler(move |input| svc.on_input(&input));`.
//! A handler may return `()` or a `Result` (an `Err` is logged), and
//! [`TerminalInterface::set_async_input_handler`] takes one that returns a future.
//!
//! # Shape
//! A [`TerminalInterface`] is a cheap handle on one background task that owns the view's running
//! state: the connection that carries panel text, the input handler, what was built, and the
//! pending rebuild. The calls the guide writes without `.await` (update, append, set handler)
//! queue a command for it, in order; `initialize`, `start_input_handling`, `refresh` and `close`
//! wait for its answer. Panel definitions are the one thing the handle keeps: it is their only
//! writer and publishes them on a watch channel, because [`TerminalInterface::grid`] is
//! synchronous and must see a definition just made; the task watches them and rebuilds the view
//! when they differ from what it built. Typed lines are read by a helper task that asks the owner
//! for the current handler for each line, so the component's handler never runs in the owner and
//! a handler set later takes effect.
//!
//! This module never parses what the operator types and never talks to tmux except to build and
//! close the view's own session.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::healing::BoxFuture;
use super::mailbox::{Mailbox, Stopped, ask_weak};
use crate::client::{Client, ClientError};
use crate::console::session::{
    ConsoleOptions, panel_command, sh_quote, slim_panel_beside, this_program,
};
use crate::model::PanelKind;
use crate::protocol::{Event, Topic};
use crate::tmux::driver::{NewSession, Tmux, TmuxDriver, TmuxError, build_window, ensure_session};
use crate::tmux::layout::{Grid, LayoutError, MAX_TRACKS, Panel};

/// The panel programs' names, in the order they are looked for in a directory: `hms-console`,
/// else the `hms-cli` that carries out its commands (all `cargo run -- …` builds).
const PANEL_PROGRAMS: [&str; 2] = ["hms-console", crate::cli::FULL_PROGRAM];

/// The environment variable that names the panel program.
pub const HMS_CONSOLE_BIN: &str = "HMS_CONSOLE_BIN";

/// How long definitions made after `initialize` are gathered before the view is rebuilt once.
const REBUILD_DEBOUNCE: Duration = Duration::from_millis(50);

/// The grid of a component's view (guide §3.1 / §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TerminalLayout {
    /// Two rows, two columns.
    TwoByTwo,
    /// `rows` × `cols`.
    Custom(u16, u16),
}

impl TerminalLayout {
    fn size(self) -> (u16, u16) {
        match self {
            TerminalLayout::TwoByTwo => (2, 2),
            TerminalLayout::Custom(r, c) => (r, c),
        }
    }
}

/// What the operator may do in the view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TerminalMode {
    /// Watch; the input pane still reaches the component's handler.
    Observe,
    /// Watch and control: the same panes, and the component is expected to act on input.
    Control,
}

/// Errors of the terminal interface.
#[derive(Debug, thiserror::Error)]
pub enum TerminalError {
    /// A tmux command failed while building the view.
    #[error(transparent)]
    Tmux(#[from] TmuxError),
    /// The panels defined do not make a valid grid.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// The core could not be reached, refused, or answered something unexpected.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// No `hms-console` program was found to run in the panes; `looked` lists where.
    #[error(
        "cannot find the hms-console program to run the view's panels (looked at: {looked}); \
         build it (`cargo build --bin hms-console`), put it on PATH, set HMS_CONSOLE_BIN, or call \
         TerminalInterface::with_program"
    )]
    NoPanelProgram { looked: String },
    /// The interface's background task has ended (it panicked); make a new interface.
    #[error("the terminal interface's background task has stopped")]
    Stopped,
}

impl From<Stopped> for TerminalError {
    fn from(_: Stopped) -> Self {
        TerminalError::Stopped
    }
}

/// The input handler as the owner keeps it: every handler is run as a future.
type InputHandler = Arc<dyn Fn(String) -> BoxFuture<'static, ()> + Send + Sync>;

/// What an input handler may return: nothing, or a `Result` whose `Err` is logged (so the guide's
/// arms, `"restart" => self.restart()`, need no `;`).
pub trait InputOutcome {
    /// Deals with the outcome of handling `line`.
    fn finish(self, line: &str);
}

impl InputOutcome for () {
    fn finish(self, _line: &str) {}
}

impl<T, E: std::fmt::Display> InputOutcome for Result<T, E> {
    fn finish(self, line: &str) {
        if let Err(e) = self {
            tracing::warn!(line, cause = %e, "the input handler failed");
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct PanelDef {
    name: String,
    row: u16,
    col: u16,
    rowspan: u16,
    colspan: u16,
    title: String,
    /// A component tile of another component.
    tile_of: Option<String>,
}

/// What building the view needs besides the panel definitions. Set by the builders before
/// `initialize`; each command that builds carries the handle's current copy to the owner.
#[derive(Debug, Clone)]
struct View {
    id: String,
    layout: TerminalLayout,
    session: String,
    socket: PathBuf,
    data_dir: PathBuf,
    tmux: Tmux,
    /// The panel program given with `with_program` (else it is found at build, see the module
    /// docs).
    program: Option<PathBuf>,
}

/// A component's tmux view (guide §3): a handle on the task that runs it.
pub struct TerminalInterface {
    view: Arc<View>,
    mode: TerminalMode,
    /// The panel definitions, in the order made (a redefinition replaces the old one). The
    /// handle is the only writer; the owner task holds a receiver.
    panels: watch::Sender<Vec<PanelDef>>,
    owner: Mailbox<Command>,
}

/// An answer from the owner task.
type Answer<T> = oneshot::Sender<Result<T, TerminalError>>;

/// What the owner task is asked to do.
enum Command {
    /// Text for one of the view's text panels (kept until `initialize` has connected).
    Text {
        panel: String,
        text: String,
        append: bool,
    },
    SetHandler(InputHandler),
    /// From the input listener: the handler to call now (`None`: none is set).
    Handler {
        reply: oneshot::Sender<Option<InputHandler>>,
    },
    Initialize {
        view: Arc<View>,
        reply: Answer<()>,
    },
    StartInputHandling {
        view: Arc<View>,
        /// For the input listener, which must not keep the owner alive.
        owner: mpsc::WeakUnboundedSender<Command>,
        reply: Answer<()>,
    },
    Refresh {
        view: Arc<View>,
        reply: Answer<()>,
    },
    Close {
        view: Arc<View>,
        reply: Answer<()>,
    },
}

impl TerminalInterface {
    /// A view for component `id`. Nothing happens until [`TerminalInterface::initialize`]. The core
    /// is found through `HMS_SOCKET` (or the default socket), tmux through `HMS_TMUX_SOCKET`.
    pub fn new(id: &str, layout: TerminalLayout, mode: TerminalMode) -> TerminalInterface {
        let (panels, definitions) = watch::channel(Vec::new());
        let owner = Owner {
            view: None,
            panels: definitions,
            updates: None,
            unsent: Vec::new(),
            built: None,
            handler: None,
            listener: None,
            rebuild_at: None,
        };
        TerminalInterface {
            view: Arc::new(View {
                id: id.to_string(),
                layout,
                session: format!("hms-{id}"),
                socket: crate::paths::socket_path(None),
                data_dir: crate::paths::data_dir(None),
                tmux: Tmux::from_env(),
                program: None,
            }),
            mode,
            panels,
            owner: Mailbox::new(|inbox| owner.run(inbox)),
        }
    }

    /// Uses this core socket and data directory instead of the defaults (call before
    /// `initialize`).
    pub fn with_socket(mut self, socket: impl Into<PathBuf>, data_dir: impl Into<PathBuf>) -> Self {
        let view = Arc::make_mut(&mut self.view);
        view.socket = socket.into();
        view.data_dir = data_dir.into();
        self
    }

    /// Uses this tmux server (call before `initialize`).
    pub fn with_tmux(mut self, tmux: Tmux) -> Self {
        Arc::make_mut(&mut self.view).tmux = tmux;
        self
    }

    /// Starts panels with this `hms-console` program (call before `initialize`); otherwise it is
    /// found as the module docs say.
    pub fn with_program(mut self, program: impl Into<PathBuf>) -> Self {
        Arc::make_mut(&mut self.view).program = Some(program.into());
        self
    }

    /// The tmux session this view lives in.
    pub fn session(&self) -> &str {
        &self.view.session
    }

    pub fn mode(&self) -> TerminalMode {
        self.mode
    }

    /// Defines a panel in one cell; after `initialize` the view is rebuilt to show it.
    pub fn define_panel(&self, name: &str, row: u16, col: u16, title: &str) {
        self.define_spanning_panel(name, row, col, 1, 1, title);
    }

    /// Defines a panel spanning `rowspan` × `colspan` cells: the guide's six-argument
    /// `define_panel(name, row, col, rowspan, colspan, title)` (§3.2), under its own name because
    /// Rust has no overloading.
    pub fn define_spanning_panel(
        &self,
        name: &str,
        row: u16,
        col: u16,
        rowspan: u16,
        colspan: u16,
        title: &str,
    ) {
        self.add(PanelDef {
            name: name.to_string(),
            row,
            col,
            rowspan,
            colspan,
            title: title.to_string(),
            tile_of: None,
        });
    }

    /// Adds another component's live tile (guide §3.2).
    pub fn add_component_panel(
        &self,
        component: &str,
        row: u16,
        col: u16,
        rowspan: u16,
        colspan: u16,
    ) {
        self.add(PanelDef {
            name: component.to_string(),
            row,
            col,
            rowspan,
            colspan,
            title: component.to_string(),
            tile_of: Some(component.to_string()),
        });
    }

    fn add(&self, def: PanelDef) {
        self.panels.send_modify(|panels| {
            panels.retain(|p| p.name != def.name);
            panels.push(def);
        });
    }

    /// Replaces a panel's text (`&str`, `String` or `&String`).
    pub fn update_panel(&self, name: &str, text: impl Into<String>) {
        self.send_text(name, text.into(), false);
    }

    /// Appends a line to a panel's text (`&str`, `String` or `&String`).
    pub fn append_to_panel(&self, name: &str, line: impl Into<String>) {
        self.send_text(name, line.into(), true);
    }

    fn send_text(&self, panel: &str, text: String, append: bool) {
        self.owner.post(Command::Text {
            panel: panel.to_string(),
            text,
            append,
        });
    }

    /// What to call with each line the operator types into this view's input pane; it takes
    /// effect for the next line, also once input handling has started. It may return `()` or a
    /// `Result` (an `Err` is logged). It runs on the interface's input task, one line at a time.
    pub fn set_input_handler<R: InputOutcome + 'static>(
        &self,
        handler: impl Fn(String) -> R + Send + Sync + 'static,
    ) {
        let handler: InputHandler = Arc::new(move |line: String| {
            let outcome = handler(line.clone());
            outcome.finish(&line);
            Box::pin(std::future::ready(()))
        });
        self.owner.post(Command::SetHandler(handler));
    }

    /// [`TerminalInterface::set_input_handler`] for a handler that returns a future (awaited
    /// before the next line is handled).
    pub fn set_async_input_handler<F, Fut>(&self, handler: F)
    where
        F: Fn(String) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: InputOutcome,
    {
        let handler: InputHandler = Arc::new(move |line: String| {
            let outcome = handler(line.clone());
            Box::pin(async move { outcome.await.finish(&line) })
        });
        self.owner.post(Command::SetHandler(handler));
    }

    /// Creates the tmux session with the panels defined so far (the guide's four TwoByTwo
    /// panels when none are), and starts delivering panel text. Panels defined later are added
    /// by rebuilding the view. Fails with [`TerminalError::NoPanelProgram`] when no `hms-console`
    /// program can be found for the panes.
    pub async fn initialize(&self) -> Result<(), TerminalError> {
        let view = self.view.clone();
        self.owner
            .ask(|reply| Command::Initialize { view, reply })
            .await?
    }

    /// The grid for the panels defined so far.
    pub fn grid(&self) -> Result<Grid, LayoutError> {
        self.view.grid(&self.panels.borrow())
    }

    /// Starts delivering typed lines to the input handler.
    pub async fn start_input_handling(&self) -> Result<(), TerminalError> {
        let view = self.view.clone();
        let owner = self.owner.weak();
        self.owner
            .ask(|reply| Command::StartInputHandling { view, owner, reply })
            .await?
    }

    /// Rebuilds the view now (it is rebuilt by itself shortly after definitions change).
    pub async fn refresh(&self) -> Result<(), TerminalError> {
        let view = self.view.clone();
        self.owner
            .ask(|reply| Command::Refresh { view, reply })
            .await?
    }

    /// Stops input handling and closes the view: its tmux session and every pane in it (their
    /// panel processes end with them). A component calls it on its way out.
    pub async fn close(&self) -> Result<(), TerminalError> {
        let view = self.view.clone();
        self.owner
            .ask(|reply| Command::Close { view, reply })
            .await?
    }
}

/// The owner task's state. Dropping the handle ends the task (the input listener holds only a
/// weak sender), which closes its connections.
struct Owner {
    /// The configuration the latest command carried (`None` before the first).
    view: Option<Arc<View>>,
    panels: watch::Receiver<Vec<PanelDef>>,
    /// The connection that carries panel text, once `initialize` has connected.
    updates: Option<Client>,
    /// Text written before `initialize` connected, in order: (panel, text, append).
    unsent: Vec<(String, String, bool)>,
    /// The definitions the view was last built from; `None` until `initialize` built it (and
    /// after `close`). Definitions that differ from these are built after [`REBUILD_DEBOUNCE`].
    built: Option<Vec<PanelDef>>,
    handler: Option<InputHandler>,
    /// The task reading typed lines.
    listener: Option<JoinHandle<()>>,
    /// When the gathered definition changes are built.
    rebuild_at: Option<Instant>,
}

impl Owner {
    async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Command>) {
        let mut watching = true;
        loop {
            tokio::select! {
                command = inbox.recv() => match command {
                    Some(command) => self.handle(command).await,
                    None => break,
                },
                changed = self.panels.changed(), if watching => match changed {
                    Ok(()) => {
                        if self.built.is_some() {
                            self.rebuild_at.get_or_insert(Instant::now() + REBUILD_DEBOUNCE);
                        }
                    }
                    // The handle is gone; the inbox closes next.
                    Err(_) => watching = false,
                },
                () = sleep_until(self.rebuild_at) => {
                    self.rebuild_at = None;
                    let current = self.view().effective(&self.panels.borrow_and_update());
                    if self.built.as_ref().is_some_and(|built| *built != current)
                        && let Err(e) = self.build().await
                    {
                        tracing::warn!(cause = %e, "rebuilding the terminal view failed");
                    }
                }
            }
        }
        if let Some(listener) = self.listener.take() {
            listener.abort();
        }
    }

    async fn handle(&mut self, command: Command) {
        match command {
            Command::Text {
                panel,
                text,
                append,
            } => {
                let (Some(client), Some(view)) = (self.updates.as_mut(), &self.view) else {
                    self.unsent.push((panel, text, append));
                    return;
                };
                if let Err(e) = client.panel_update(&view.id, &panel, text, append).await {
                    tracing::warn!(cause = %e, "panel update failed");
                }
            }
            Command::SetHandler(handler) => self.handler = Some(handler),
            Command::Handler { reply } => {
                let _ = reply.send(self.handler.clone());
            }
            Command::Initialize { view, reply } => {
                self.view = Some(view);
                let _ = reply.send(self.initialize().await);
            }
            Command::StartInputHandling { view, owner, reply } => {
                self.view = Some(view);
                let _ = reply.send(self.start_input_handling(owner).await);
            }
            Command::Refresh { view, reply } => {
                self.view = Some(view);
                let _ = reply.send(self.build().await);
            }
            Command::Close { view, reply } => {
                self.view = Some(view);
                let _ = reply.send(self.close().await);
            }
        }
    }

    fn view(&self) -> Arc<View> {
        self.view
            .clone()
            .expect("every command that needs the view carries it")
    }

    async fn initialize(&mut self) -> Result<(), TerminalError> {
        let view = self.view();
        // Before anything is created, so a missing program leaves nothing behind.
        view.panel_program()?;
        let mut client = Client::connect(&view.socket, &format!("terminal:{}", view.id)).await?;
        for (panel, text, append) in std::mem::take(&mut self.unsent) {
            client.panel_update(&view.id, &panel, text, append).await?;
        }
        self.updates = Some(client);
        ensure_session(
            &view.tmux,
            &NewSession {
                name: view.session.clone(),
                window_name: "hms-starting".into(),
                width: 160,
                height: 48,
                command: None,
            },
        )
        .await?;
        self.build().await?;
        for w in view.tmux.list_windows(&view.session).await? {
            if w.name == "hms-starting" {
                view.tmux.kill_window(w.id).await?;
            }
        }
        Ok(())
    }

    async fn start_input_handling(
        &mut self,
        owner: mpsc::WeakUnboundedSender<Command>,
    ) -> Result<(), TerminalError> {
        let view = self.view();
        let mut listener =
            Client::connect(&view.socket, &format!("terminal-input:{}", view.id)).await?;
        listener
            .subscribe(&[Topic::Panels], std::slice::from_ref(&view.id))
            .await?;
        if let Some(old) =
            self.listener
                .replace(tokio::spawn(listen(listener, view.id.clone(), owner)))
        {
            old.abort();
        }
        Ok(())
    }

    /// Builds the view from the current definitions and remembers them as built.
    async fn build(&mut self) -> Result<(), TerminalError> {
        let view = self.view();
        let defs = view.effective(&self.panels.borrow_and_update());
        view.build(&defs).await?;
        self.built = Some(defs);
        Ok(())
    }

    async fn close(&mut self) -> Result<(), TerminalError> {
        if let Some(listener) = self.listener.take() {
            listener.abort();
        }
        self.rebuild_at = None;
        if self.built.take().is_none() {
            return Ok(());
        }
        let view = self.view();
        let args = ["kill-session", "-t", &format!("={}", view.session)].map(String::from);
        match view.tmux.run(&args).await {
            Ok(_) => Ok(()),
            // Already gone (the operator closed it, or the tmux server ended).
            Err(e) if e.no_such_session() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Waits until `at`, or forever when nothing is due.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The input listener: reads the lines typed into the view's input pane and calls the owner's
/// current handler with each. Ends with the subscription or with the owner.
async fn listen(mut listener: Client, id: String, owner: mpsc::WeakUnboundedSender<Command>) {
    while let Ok(Some(event)) = listener.next_event().await {
        if let Event::PanelInput(input) = event
            && input.component == id
        {
            let Some(handler) = ask_weak(&owner, |reply| Command::Handler { reply }).await else {
                return;
            };
            if let Some(handler) = handler {
                handler(input.line).await;
            }
        }
    }
}

/// The panel named `actions`: its text, and the input pane under it.
const ACTIONS: &str = "actions";

/// One pane of the view: a tmux grid panel and the name of the component's panel it shows.
struct Pane {
    panel: Panel,
    /// The `--panel` name given to text panels and the input pane.
    name: Option<String>,
}

impl View {
    /// The definitions the view shows: those made, or the guide's four TwoByTwo panels (§3.1
    /// step 2) when none are.
    fn effective(&self, defs: &[PanelDef]) -> Vec<PanelDef> {
        if !defs.is_empty() || self.layout != TerminalLayout::TwoByTwo {
            return defs.to_vec();
        }
        [
            ("metrics", 0, 0, "Component Metrics"),
            ("logs", 0, 1, "Component Logs"),
            ("status", 1, 0, "Health Status"),
            (ACTIONS, 1, 1, "Actions"),
        ]
        .into_iter()
        .map(|(name, row, col, title)| PanelDef {
            name: name.into(),
            row,
            col,
            rowspan: 1,
            colspan: 1,
            title: title.into(),
            tile_of: None,
        })
        .collect()
    }

    /// The panes for the definitions. Rows are doubled (while that fits tmux's grid limit) so
    /// the `actions` cell can hold its text above the input pane.
    fn panes(&self, defs: &[PanelDef]) -> (u16, u16, Vec<Pane>) {
        let (rows, cols) = self.layout.size();
        let defs = self.effective(defs);
        let split = rows.saturating_mul(2) <= MAX_TRACKS;
        let scale = if split { 2 } else { 1 };
        let mut panes = Vec::new();
        for d in &defs {
            let (row, rowspan) = (d.row.saturating_mul(scale), d.rowspan.saturating_mul(scale));
            let panel = |kind: PanelKind, row: u16, rowspan: u16, title: &str| {
                let panel = Panel::new(kind, row, d.col)
                    .span(rowspan, d.colspan)
                    .title(title);
                match kind {
                    PanelKind::SystemHealth => panel,
                    _ => panel.component(d.tile_of.clone().unwrap_or_else(|| self.id.clone())),
                }
            };
            let named = Some(d.name.clone());
            match (&d.tile_of, d.name.as_str()) {
                (Some(_), _) => panes.push(Pane {
                    panel: panel(PanelKind::Component, row, rowspan, &d.title),
                    name: None,
                }),
                (None, "system-health" | "system_health") => panes.push(Pane {
                    panel: panel(PanelKind::SystemHealth, row, rowspan, &d.title),
                    name: None,
                }),
                (None, ACTIONS) if split => {
                    panes.push(Pane {
                        panel: panel(PanelKind::Text, row, rowspan - 1, &d.title),
                        name: named.clone(),
                    });
                    panes.push(Pane {
                        panel: panel(PanelKind::Actions, row + rowspan - 1, 1, "Input"),
                        name: named,
                    });
                }
                (None, ACTIONS) => panes.push(Pane {
                    panel: panel(PanelKind::Actions, row, rowspan, &d.title),
                    name: named,
                }),
                (None, _) => panes.push(Pane {
                    panel: panel(PanelKind::Text, row, rowspan, &d.title),
                    name: named,
                }),
            }
        }
        (rows.saturating_mul(scale), cols, panes)
    }

    fn grid(&self, defs: &[PanelDef]) -> Result<Grid, LayoutError> {
        let (rows, cols, panes) = self.panes(defs);
        Grid::new(
            &self.id,
            rows,
            cols,
            panes.into_iter().map(|p| p.panel).collect(),
        )
    }

    /// The `hms-console` program the panes run (see the module docs for where it is looked for).
    fn panel_program(&self) -> Result<PathBuf, TerminalError> {
        if let Some(p) = &self.program {
            return Ok(p.clone());
        }
        let env = std::env::var_os(HMS_CONSOLE_BIN).map(PathBuf::from);
        let exe = this_program().ok();
        let path = std::env::var_os("PATH");
        find_panel_program(env, exe.as_deref(), path.as_deref())
    }

    async fn build(&self, defs: &[PanelDef]) -> Result<(), TerminalError> {
        let (rows, cols, panes) = self.panes(defs);
        let grid = Grid::new(
            &self.id,
            rows,
            cols,
            panes.iter().map(|p| p.panel.clone()).collect(),
        )?;
        let exe = self.panel_program()?;
        let opts = ConsoleOptions {
            session: self.session.clone(),
            socket: std::path::absolute(&self.socket).unwrap_or(self.socket.clone()),
            data_dir: std::path::absolute(&self.data_dir).unwrap_or(self.data_dir.clone()),
            exe: exe.clone(),
            slim_panel: slim_panel_beside(&exe),
            ascii: false,
        };
        build_window(&self.tmux, &self.session, &self.id, &grid, |p| {
            let mut cmd = panel_command(&opts, p);
            let name = panes
                .iter()
                .find(|pane| pane.panel.row == p.row && pane.panel.col == p.col)
                .and_then(|pane| pane.name.as_deref());
            if let Some(name) = name {
                cmd.push_str(&format!(" --panel {}", sh_quote(name)));
            }
            cmd
        })
        .await?;
        Ok(())
    }
}

/// Finds the panel program: `env` (`HMS_CONSOLE_BIN`) when set; `exe` itself when it is
/// `hms-console` or `hms-cli`; `hms-console` (else `hms-cli`) beside `exe` or one directory up
/// (cargo's `examples/` and `deps/`); then on `path`.
fn find_panel_program(
    env: Option<PathBuf>,
    exe: Option<&Path>,
    path: Option<&std::ffi::OsStr>,
) -> Result<PathBuf, TerminalError> {
    let mut looked = Vec::new();
    if let Some(p) = env {
        if crate::paths::is_program(&p) {
            return Ok(p);
        }
        looked.push(format!(
            "{HMS_CONSOLE_BIN}={} (not an executable file)",
            p.display()
        ));
    }
    let mut candidates = Vec::new();
    if let Some(exe) = exe {
        if exe
            .file_name()
            .is_some_and(|n| PANEL_PROGRAMS.iter().any(|p| n == *p))
        {
            candidates.push(exe.to_path_buf());
        }
        let dir = exe.parent();
        for d in dir.into_iter().chain(dir.and_then(Path::parent)) {
            candidates.extend(PANEL_PROGRAMS.map(|p| d.join(p)));
        }
    }
    if let Some(path) = path {
        for d in std::env::split_paths(path) {
            candidates.extend(PANEL_PROGRAMS.map(|p| d.join(p)));
        }
    }
    for c in candidates {
        if crate::paths::is_program(&c) {
            return Ok(c);
        }
        looked.push(c.display().to_string());
    }
    Err(TerminalError::NoPanelProgram {
        looked: if looked.is_empty() {
            "nowhere: no HMS_CONSOLE_BIN, no path for this program, no PATH".into()
        } else {
            looked.join(", ")
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program(dir: &Path, rel: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn an_example_finds_the_hms_console_cargo_built_beside_its_examples_dir() {
        let dir = tempfile::tempdir().unwrap();
        let console = program(dir.path(), "target/debug/hms-console");
        let example = program(dir.path(), "target/debug/examples/guide_service");
        assert_eq!(
            find_panel_program(None, Some(&example), None).unwrap(),
            console
        );
    }

    #[test]
    fn an_example_finds_hms_cli_where_cargo_run_built_only_it() {
        let dir = tempfile::tempdir().unwrap();
        let full = program(dir.path(), "target/debug/hms-cli");
        let example = program(dir.path(), "target/debug/examples/guide_service");
        assert_eq!(
            find_panel_program(None, Some(&example), None).unwrap(),
            full
        );
        // hms-console first when both are there.
        let console = program(dir.path(), "target/debug/hms-console");
        assert_eq!(
            find_panel_program(None, Some(&example), None).unwrap(),
            console
        );
    }

    #[test]
    fn the_components_own_program_is_never_the_panel_program() {
        let dir = tempfile::tempdir().unwrap();
        let service = program(dir.path(), "bin/my-service");
        match find_panel_program(None, Some(&service), Some(std::ffi::OsStr::new(""))) {
            Err(TerminalError::NoPanelProgram { looked }) => {
                assert!(looked.contains("bin/hms-console"), "{looked}");
                let message = TerminalError::NoPanelProgram { looked }.to_string();
                assert!(message.contains("HMS_CONSOLE_BIN"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_setting_comes_first_then_path() {
        let dir = tempfile::tempdir().unwrap();
        let set = program(dir.path(), "opt/hms-console");
        let on_path = program(dir.path(), "usr/bin/hms-console");
        let service = program(dir.path(), "srv/my-service");
        assert_eq!(
            find_panel_program(Some(set.clone()), Some(&service), None).unwrap(),
            set
        );
        let path = std::env::join_paths([on_path.parent().unwrap()]).unwrap();
        assert_eq!(
            find_panel_program(None, Some(&service), Some(&path)).unwrap(),
            on_path
        );
    }

    #[test]
    fn panels_defined_in_the_guides_order_are_text_panes_named_as_defined() {
        let t = TerminalInterface::new("svc", TerminalLayout::TwoByTwo, TerminalMode::Observe);
        let defaults = t.view.panes(&[]);
        for (name, row, col, title) in [
            ("metrics", 0, 0, "Component Metrics"),
            ("logs", 0, 1, "Component Logs"),
            ("status", 1, 0, "Health Status"),
            ("actions", 1, 1, "Actions"),
        ] {
            t.define_panel(name, row, col, title);
        }
        let defined = t.view.panes(&t.panels.borrow());
        for (rows, cols, panes) in [defaults, defined] {
            assert_eq!((rows, cols), (4, 2));
            let shown: Vec<(PanelKind, Option<&str>, u16, u16)> = panes
                .iter()
                .map(|p| {
                    (
                        p.panel.kind,
                        p.name.as_deref(),
                        p.panel.row,
                        p.panel.rowspan,
                    )
                })
                .collect();
            assert_eq!(
                shown,
                [
                    (PanelKind::Text, Some("metrics"), 0, 2),
                    (PanelKind::Text, Some("logs"), 0, 2),
                    (PanelKind::Text, Some("status"), 2, 2),
                    (PanelKind::Text, Some("actions"), 2, 1),
                    (PanelKind::Actions, Some("actions"), 3, 1),
                ]
            );
        }
        assert!(t.grid().is_ok());
    }
}
