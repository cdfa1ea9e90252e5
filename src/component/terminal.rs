//! The guide's `TerminalInterface` (§3): a linked Rust component builds its own tmux view, writes
//! text into its panels, and receives what the operator types into its input pane.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use hms::{TerminalInterface, TerminalLayout, TerminalMode};
//! let terminal = TerminalInterface::new("my-component", TerminalLayout::TwoByTwo, TerminalMode::Observe);
//! terminal.initialize().await?;
//! terminal.define_panel("metrics", 0, 0, "Component Metrics");
//! terminal.define_panel("logs", 0, 1, "Component Logs");
//! terminal.define_panel("status", 1, 0, "Health Status");
//! terminal.define_panel("actions", 1, 1, "Actions");
//! terminal.update_panel("metrics", "CPU: 3%\nMemory: 41MB");
//! terminal.append_to_panel("logs", "connected to db");
//! terminal.set_input_handler(|line| println!("operator typed {line}"));
//! terminal.start_input_handling().await?;
//! # Ok(()) }
//! ```
//!
//! How it maps onto hms-console: the view is a tmux session `hms-<id>` whose panes run
//! `hms-console panel` processes. A panel named `actions` is an input pane; `system-health` /
//! `system_health` shows the fleet; [`TerminalInterface::add_component_panel`] adds another
//! component's live tile; every other panel is a `text` panel showing what this component writes
//! with [`TerminalInterface::update_panel`] and [`TerminalInterface::append_to_panel`]. The text
//! travels through the core (`PanelUpdate`), which keeps the latest text, so a pane started later
//! or reconnected shows it too. Typed lines travel back through the core as `PanelInput` events.
//!
//! # Shape
//! A [`TerminalInterface`] is a cheap handle on one background task that owns the view's running
//! state: the connection that carries panel text, the input handler, whether the view is built,
//! and the pending rebuild. The calls the guide writes without `.await` (update, append, set
//! handler) queue a command for it, in order; `initialize`, `start_input_handling` and `refresh`
//! wait for its answer. Panel definitions are the one thing the handle keeps: it is their only
//! writer and publishes them on a watch channel, because [`TerminalInterface::grid`] is
//! synchronous and must see a definition just made; the task watches them and rebuilds the view
//! when they change after `initialize` (once input handling has started). Typed lines are read by
//! a helper task that asks the owner for the current handler for each line, so the component's
//! handler never runs in the owner and a handler set later takes effect.
//!
//! This module never parses what the operator types and never talks to tmux except to build the
//! view's own session.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::mailbox::{Mailbox, Stopped, ask_weak};
use crate::client::{Client, ClientError};
use crate::console::session::{ConsoleOptions, panel_command, sh_quote, this_program};
use crate::model::PanelKind;
use crate::protocol::{Event, Topic};
use crate::tmux::driver::{NewSession, Tmux, TmuxDriver, TmuxError, build_window, ensure_session};
use crate::tmux::layout::{Grid, LayoutError, Panel};

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
    /// This program's path could not be found (needed to start panel processes).
    #[error("cannot find the hms-console program: {0}")]
    Program(std::io::Error),
    /// The interface's background task has ended (it panicked); make a new interface.
    #[error("the terminal interface's background task has stopped")]
    Stopped,
}

impl From<Stopped> for TerminalError {
    fn from(_: Stopped) -> Self {
        TerminalError::Stopped
    }
}

type InputHandler = Arc<dyn Fn(String) + Send + Sync>;

#[derive(Debug, Clone)]
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
    /// The panel program (`HMS_CONSOLE_BIN`, or this program).
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
    /// Text for one of the view's text panels (dropped before `initialize`).
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
            initialized: false,
            handler: None,
            listener: None,
            rebuild_on_change: false,
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
                program: std::env::var_os("HMS_CONSOLE_BIN").map(PathBuf::from),
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

    /// Starts panels with this `hms-console` program (call before `initialize`).
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

    /// Defines a panel in one cell.
    pub fn define_panel(&self, name: &str, row: u16, col: u16, title: &str) {
        self.define_spanning_panel(name, row, col, 1, 1, title);
    }

    /// Defines a panel spanning `rowspan` × `colspan` cells (the guide's six-argument form).
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

    /// Replaces a text panel's content.
    pub fn update_panel(&self, name: &str, text: impl Into<String>) {
        self.send_text(name, text.into(), false);
    }

    /// Appends a line to a text panel.
    pub fn append_to_panel(&self, name: &str, line: &str) {
        self.send_text(name, line.to_string(), true);
    }

    fn send_text(&self, panel: &str, text: String, append: bool) {
        self.owner.post(Command::Text {
            panel: panel.to_string(),
            text,
            append,
        });
    }

    /// What to call with each line the operator types into this view's input pane; it takes
    /// effect for the next line, also once input handling has started.
    pub fn set_input_handler(&self, handler: impl Fn(String) + Send + Sync + 'static) {
        self.owner.post(Command::SetHandler(Arc::new(handler)));
    }

    /// Creates the tmux session with the panels defined so far (the guide's four TwoByTwo
    /// panels when none are), and starts delivering panel text.
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

    /// Starts delivering typed lines to the input handler, and rebuilding the view when panels
    /// are defined after `initialize`.
    pub async fn start_input_handling(&self) -> Result<(), TerminalError> {
        let view = self.view.clone();
        let owner = self.owner.weak();
        self.owner
            .ask(|reply| Command::StartInputHandling { view, owner, reply })
            .await?
    }

    /// Rebuilds the view now, after panel definitions changed.
    pub async fn refresh(&self) -> Result<(), TerminalError> {
        let view = self.view.clone();
        self.owner
            .ask(|reply| Command::Refresh { view, reply })
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
    /// The view has been built.
    initialized: bool,
    handler: Option<InputHandler>,
    /// The task reading typed lines.
    listener: Option<JoinHandle<()>>,
    /// Rebuild when the definitions change: set by `start_input_handling` after `initialize`.
    rebuild_on_change: bool,
    /// When the gathered definition changes are built.
    rebuild_at: Option<Instant>,
}

impl Owner {
    async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Command>) {
        loop {
            tokio::select! {
                command = inbox.recv() => match command {
                    Some(command) => self.handle(command).await,
                    None => break,
                },
                changed = self.panels.changed(), if self.rebuild_on_change => match changed {
                    Ok(()) => {
                        self.rebuild_at.get_or_insert(Instant::now() + REBUILD_DEBOUNCE);
                    }
                    // The handle is gone; the inbox closes next.
                    Err(_) => self.rebuild_on_change = false,
                },
                () = sleep_until(self.rebuild_at) => {
                    self.rebuild_at = None;
                    if let Err(e) = self.build().await {
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
        }
    }

    fn view(&self) -> Arc<View> {
        self.view
            .clone()
            .expect("every command that needs the view carries it")
    }

    async fn initialize(&mut self) -> Result<(), TerminalError> {
        let view = self.view();
        let client = Client::connect(&view.socket, &format!("terminal:{}", view.id)).await?;
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
        self.initialized = true;
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
        // Definitions made from now on rebuild the window, a burst at a time.
        if self.initialized {
            self.panels.mark_unchanged();
            self.rebuild_on_change = true;
        }
        Ok(())
    }

    async fn build(&self) -> Result<(), TerminalError> {
        let defs = self.panels.borrow().clone();
        self.view().build(&defs).await
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
        if let Event::PanelInput {
            component, line, ..
        } = event
            && component == id
        {
            let Some(handler) = ask_weak(&owner, |reply| Command::Handler { reply }).await else {
                return;
            };
            if let Some(handler) = handler {
                handler(line);
            }
        }
    }
}

impl View {
    fn grid(&self, defs: &[PanelDef]) -> Result<Grid, LayoutError> {
        let (rows, cols) = self.layout.size();
        let mut defs = defs.to_vec();
        if defs.is_empty() && self.layout == TerminalLayout::TwoByTwo {
            for (name, row, col, title) in [
                ("metrics", 0, 0, "Component Metrics"),
                ("logs", 0, 1, "Component Logs"),
                ("status", 1, 0, "Health Status"),
                ("actions", 1, 1, "Actions"),
            ] {
                defs.push(PanelDef {
                    name: name.into(),
                    row,
                    col,
                    rowspan: 1,
                    colspan: 1,
                    title: title.into(),
                    tile_of: None,
                });
            }
        }
        let panels = defs
            .iter()
            .map(|d| {
                let (kind, component) = match (&d.tile_of, d.name.as_str()) {
                    (Some(c), _) => (PanelKind::Component, c.clone()),
                    (None, "actions") => (PanelKind::Actions, self.id.clone()),
                    (None, "system-health" | "system_health") => {
                        (PanelKind::SystemHealth, self.id.clone())
                    }
                    (None, _) => (PanelKind::Text, self.id.clone()),
                };
                let mut panel = Panel::new(kind, d.row, d.col)
                    .span(d.rowspan, d.colspan)
                    .title(d.title.clone());
                if kind != PanelKind::SystemHealth {
                    panel = panel.component(component);
                }
                panel
            })
            .collect();
        Grid::new(&self.id, rows, cols, panels)
    }

    async fn build(&self, defs: &[PanelDef]) -> Result<(), TerminalError> {
        let grid = self.grid(defs)?;
        let exe = match &self.program {
            Some(p) => p.clone(),
            None => this_program().map_err(TerminalError::Program)?,
        };
        let opts = ConsoleOptions {
            session: self.session.clone(),
            socket: std::path::absolute(&self.socket).unwrap_or(self.socket.clone()),
            data_dir: self.data_dir.clone(),
            exe,
            ascii: false,
        };
        build_window(&self.tmux, &self.session, &self.id, &grid, |p| {
            let mut cmd = panel_command(&opts, p);
            // Text panels and the input pane name which of our panels they are.
            if matches!(p.kind, PanelKind::Text | PanelKind::Actions) {
                let name = defs
                    .iter()
                    .find(|d| d.row == p.row && d.col == p.col)
                    .map_or_else(|| default_name(p), |d| d.name.clone());
                cmd.push_str(&format!(" --panel {}", sh_quote(&name)));
            }
            cmd
        })
        .await?;
        Ok(())
    }
}

fn default_name(p: &Panel) -> String {
    p.kind.name().to_string()
}
