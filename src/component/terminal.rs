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
//! The calls the guide writes without `.await` (define, update, append, set handler) are plain
//! methods here: they queue work for a background task of this interface, in order.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::client::{Client, ClientError};
use crate::console::session::{ConsoleOptions, panel_command, sh_quote, this_program};
use crate::model::PanelKind;
use crate::protocol::{Event, Request, Topic};
use crate::tmux::driver::{NewSession, Tmux, TmuxDriver, TmuxError, build_window, ensure_session};
use crate::tmux::layout::{Grid, LayoutError, Panel};

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
    #[error(transparent)]
    Tmux(#[from] TmuxError),
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Client(#[from] ClientError),
    /// This program's path could not be found (needed to start panel processes).
    #[error("cannot find the hms-console program: {0}")]
    Program(std::io::Error),
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

/// What building the view needs, shared with the background rebuild task.
struct View {
    id: String,
    layout: TerminalLayout,
    session: String,
    socket: PathBuf,
    data_dir: PathBuf,
    tmux: Tmux,
    /// The panel program (`HMS_CONSOLE_BIN`, or this program).
    program: Option<PathBuf>,
    /// Definitions; a std mutex because each use is a push or a copy, never across an await.
    panels: Mutex<Vec<PanelDef>>,
}

/// A component's tmux view (guide §3).
pub struct TerminalInterface {
    view: Arc<View>,
    mode: TerminalMode,
    initialized: Mutex<bool>,
    handler: Mutex<Option<InputHandler>>,
    /// Text updates, sent in order by a background task.
    updates: Mutex<Option<mpsc::UnboundedSender<Request>>>,
    /// Rebuild requests after a definition changed once initialized.
    rebuild: Mutex<Option<mpsc::UnboundedSender<()>>>,
}

impl TerminalInterface {
    /// A view for component `id`. Nothing happens until [`TerminalInterface::initialize`]. The core
    /// is found through `HMS_SOCKET` (or the default socket), tmux through `HMS_TMUX_SOCKET`.
    pub fn new(id: &str, layout: TerminalLayout, mode: TerminalMode) -> TerminalInterface {
        TerminalInterface {
            view: Arc::new(View {
                id: id.to_string(),
                layout,
                session: format!("hms-{id}"),
                socket: crate::paths::socket_path(None),
                data_dir: crate::paths::data_dir(None),
                tmux: Tmux::from_env(),
                program: std::env::var_os("HMS_CONSOLE_BIN").map(PathBuf::from),
                panels: Mutex::new(Vec::new()),
            }),
            mode,
            initialized: Mutex::new(false),
            handler: Mutex::new(None),
            updates: Mutex::new(None),
            rebuild: Mutex::new(None),
        }
    }

    fn view_mut(&mut self) -> &mut View {
        Arc::get_mut(&mut self.view).expect("configured before initialize, while not shared")
    }

    /// Uses this core socket and data directory instead of the defaults.
    pub fn with_socket(mut self, socket: impl Into<PathBuf>, data_dir: impl Into<PathBuf>) -> Self {
        let view = self.view_mut();
        view.socket = socket.into();
        view.data_dir = data_dir.into();
        self
    }

    /// Uses this tmux server.
    pub fn with_tmux(mut self, tmux: Tmux) -> Self {
        self.view_mut().tmux = tmux;
        self
    }

    /// Starts panels with this `hms-console` program.
    pub fn with_program(mut self, program: impl Into<PathBuf>) -> Self {
        self.view_mut().program = Some(program.into());
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
        {
            let mut panels = self.view.panels.lock().expect("panels lock");
            panels.retain(|p| p.name != def.name);
            panels.push(def);
        }
        if let Some(tx) = self.rebuild.lock().expect("rebuild lock").as_ref() {
            let _ = tx.send(());
        }
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
        if let Some(tx) = self.updates.lock().expect("updates lock").as_ref() {
            let _ = tx.send(Request::PanelUpdate {
                component: self.view.id.clone(),
                panel: panel.to_string(),
                text,
                append,
            });
        }
    }

    /// What to call with each line the operator types into this view's input pane.
    pub fn set_input_handler(&self, handler: impl Fn(String) + Send + Sync + 'static) {
        *self.handler.lock().expect("handler lock") = Some(Arc::new(handler));
    }

    /// Creates the tmux session with the panels defined so far (the guide's four TwoByTwo
    /// panels when none are), and starts the background task that delivers panel text.
    pub async fn initialize(&self) -> Result<(), TerminalError> {
        let view = &self.view;
        let client = Client::connect(&view.socket, &format!("terminal:{}", view.id)).await?;
        let (tx, mut rx) = mpsc::unbounded_channel::<Request>();
        *self.updates.lock().expect("updates lock") = Some(tx);
        tokio::spawn(async move {
            let mut client = client;
            while let Some(request) = rx.recv().await {
                if let Err(e) = client.request(request).await {
                    tracing::warn!(cause = %e, "panel update failed");
                }
            }
        });
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
        view.build().await?;
        for w in view.tmux.list_windows(&view.session).await? {
            if w.name == "hms-starting" {
                view.tmux.kill_window(w.id).await?;
            }
        }
        *self.initialized.lock().expect("init lock") = true;
        Ok(())
    }

    /// The grid for the panels defined so far.
    pub fn grid(&self) -> Result<Grid, LayoutError> {
        self.view.grid()
    }

    /// Starts delivering typed lines to the input handler, and rebuilding the view when panels
    /// are defined after `initialize`.
    pub async fn start_input_handling(&self) -> Result<(), TerminalError> {
        let view = &self.view;
        let mut listener =
            Client::connect(&view.socket, &format!("terminal-input:{}", view.id)).await?;
        listener
            .subscribe(&[Topic::Panels], std::slice::from_ref(&view.id))
            .await?;
        let handler = self.handler.lock().expect("handler lock").clone();
        let id = view.id.clone();
        tokio::spawn(async move {
            while let Ok(Some(event)) = listener.next_event().await {
                if let Event::PanelInput {
                    component, line, ..
                } = event
                    && component == id
                    && let Some(h) = &handler
                {
                    h(line);
                }
            }
        });
        // Definitions made after initialize rebuild the window, a burst at a time.
        if *self.initialized.lock().expect("init lock") {
            let (tx, mut rx) = mpsc::unbounded_channel::<()>();
            *self.rebuild.lock().expect("rebuild lock") = Some(tx);
            let view = self.view.clone();
            tokio::spawn(async move {
                while rx.recv().await.is_some() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    while rx.try_recv().is_ok() {}
                    if let Err(e) = view.build().await {
                        tracing::warn!(cause = %e, "rebuilding the terminal view failed");
                    }
                }
            });
        }
        Ok(())
    }

    /// Rebuilds the view now, after panel definitions changed.
    pub async fn refresh(&self) -> Result<(), TerminalError> {
        self.view.build().await
    }
}

impl View {
    fn grid(&self) -> Result<Grid, LayoutError> {
        let (rows, cols) = self.layout.size();
        let mut defs = self.panels.lock().expect("panels lock").clone();
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

    async fn build(&self) -> Result<(), TerminalError> {
        let grid = self.grid()?;
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
        let defs = self.panels.lock().expect("panels lock").clone();
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
