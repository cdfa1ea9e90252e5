//! The panel as an Elm-shaped app: a [`Model`], the [`Msg`]s that change it, [`Model::update`]
//! which returns [`Effect`]s as data, and [`Model::view`] which draws it.
//!
//! One `Model` serves every [`PanelKind`]: what all panels share (the title, the connection, the
//! clock, the fleet's statuses) lives here, and each kind keeps its own state in a [`Body`] variant
//! handled by its module (`metrics`, `logs`, …). A kind's module never sees the whole `Model`: it
//! gets its own state and a [`Shared`] view of the common part, so it depends on what it draws and
//! not on every other kind's state. `update` must not do I/O or read the clock (time arrives as
//! [`Msg::Tick`]); `view` must not change anything. The runtime owns all I/O.

use std::time::SystemTime;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Widget, Wrap};

use super::theme::Theme;
use super::{actions, agents, component, knowledge, logs, metrics, status, system_health, text};
use crate::command::ParseContext;
use crate::model::{ComponentStatus, PanelKind};
use crate::protocol::{
    Event, KnowledgeAnswer, KnowledgeRequest, MacAnswer, MacRequest, Request, Response, Topic,
};

/// Everything that can happen to a panel.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    /// A key the operator pressed (presses only; releases and repeats are filtered out).
    Key(KeyEvent),
    /// Text pasted into the terminal (bracketed paste), whole.
    Paste(String),
    /// The terminal (the tmux pane) has a new size.
    Resize { width: u16, height: u16 },
    /// The clock moved on; sent before each batch of messages and every second while a clock is on
    /// screen (see [`Model::wants_tick`]).
    Tick(SystemTime),
    /// The listening connection to the core is up.
    Connected,
    /// The core could not be reached or went away; the runtime is retrying.
    Disconnected { reason: String },
    /// The answer to one of the panel's own requests on (re)connect (see
    /// [`Model::sync_requests`]), or the core's error message.
    Snapshot(Result<Response, String>),
    /// Something happened in the core.
    Event(Event),
    /// The answer to an [`Effect::Send`] with the same id, or why it failed.
    Reply {
        id: u64,
        result: Result<Response, String>,
    },
}

/// What the runtime should do after an update.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Send a request on the command connection; the answer comes back as [`Msg::Reply`] with
    /// the same id.
    Send { id: u64, request: Request },
    /// Show a component's window in the console, building it if it is not built yet (tmux work,
    /// done by the runtime). With an id, the outcome comes back as [`Msg::Reply`] (a
    /// `Response::Done` or the error's text); `fleet` is what the name was checked against.
    Open {
        id: Option<u64>,
        component: String,
        fleet: Vec<String>,
    },
    /// Leave: restore the terminal and exit. No key asks for it (a pane never dies from a key);
    /// only the terminal going away ends a panel.
    Quit,
}

/// The state of the connection that feeds the panel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    /// Not connected yet since the panel started.
    Connecting,
    Connected,
    /// Lost or never reached; the runtime retries with backoff.
    Unreachable {
        reason: String,
    },
}

/// The statuses of the components this panel knows about, in the core's order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fleet {
    pub components: Vec<ComponentStatus>,
}

impl Fleet {
    pub fn get(&self, name: &str) -> Option<&ComponentStatus> {
        self.components.iter().find(|c| c.name == name)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut ComponentStatus> {
        self.components.iter_mut().find(|c| c.name == name)
    }

    /// Replaces a component's status, or adds it at the end.
    pub fn upsert(&mut self, status: ComponentStatus) {
        match self.get_mut(&status.name) {
            Some(slot) => *slot = status,
            None => self.components.push(status),
        }
    }

    pub fn names(&self) -> Vec<String> {
        self.components.iter().map(|c| c.name.clone()).collect()
    }
}

/// The part of the model that belongs to one kind of panel.
#[derive(Debug, Clone, PartialEq)]
// One model per panel process: the size of the largest kind's state costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
pub enum Body {
    Metrics(metrics::MetricsState),
    Logs(logs::LogsState),
    Status(status::StatusState),
    Actions(Box<actions::ActionsState>),
    SystemHealth(system_health::HealthState),
    Component(component::TileState),
    Text(text::TextState),
    Knowledge(knowledge::KnowledgeState),
    Agents(agents::AgentsState),
}

/// What a panel kind may read while it draws: the part of the [`Model`] every kind shares,
/// read-only. Never another kind's state.
#[derive(Debug, Clone, Copy)]
pub(super) struct Shared<'a> {
    pub(super) theme: &'a Theme,
    /// The model's clock; panels measure time against it, never against the system's.
    pub(super) now: SystemTime,
    /// The component the panel is about; `None` for fleet-wide panels.
    pub(super) component: Option<&'a str>,
    pub(super) fleet: &'a Fleet,
    conn: &'a Connection,
    loaded: bool,
    problem: Option<&'a str>,
}

impl Shared<'_> {
    /// The status of the panel's own component, if known.
    pub(super) fn status(&self) -> Option<&ComponentStatus> {
        self.component.and_then(|c| self.fleet.get(c))
    }

    /// True when an empty body really is empty: connected, and the core did not refuse the
    /// panel's request. Otherwise the panel shows [`Shared::placeholder`].
    pub(super) fn live(&self) -> bool {
        self.problem.is_none() && matches!(self.conn, Connection::Connected)
    }

    /// What a panel shows in place of its component while it has nothing to show.
    pub(super) fn placeholder(&self) -> Line<'static> {
        if let Some(problem) = self.problem {
            return Line::styled(problem.to_string(), self.theme.error());
        }
        match (self.conn, self.loaded, self.component) {
            (Connection::Unreachable { .. }, _, _) => {
                Line::styled("core unreachable, retrying", self.theme.error())
            }
            (Connection::Connecting, _, _) | (Connection::Connected, false, _) => {
                Line::styled("waiting for the core…", self.theme.dim())
            }
            (Connection::Connected, true, Some(c)) => {
                Line::styled(format!("no component named '{c}'"), self.theme.warning())
            }
            (Connection::Connected, true, None) => Line::styled("no components", self.theme.dim()),
        }
    }

    pub(super) fn render_placeholder(&self, area: Rect, buf: &mut Buffer) {
        Paragraph::new(self.placeholder())
            .wrap(Wrap { trim: true })
            .render(area, buf);
    }
}

/// A panel's whole state.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub(super) kind: PanelKind,
    pub(super) title: String,
    /// The component the panel is about; `None` for fleet-wide panels.
    pub(super) component: Option<String>,
    /// For text panels: which of the component's named panels to show (`None`: any).
    pub(super) panel: Option<String>,
    pub(super) theme: Theme,
    pub(super) conn: Connection,
    pub(super) now: SystemTime,
    /// The terminal size, from the last [`Msg::Resize`].
    pub(super) size: (u16, u16),
    pub(super) fleet: Fleet,
    /// Set once a status snapshot has arrived, so "not known" can be told from "not loaded".
    pub(super) loaded: bool,
    /// The core's answer when it refused the panel's own request (e.g. an unknown component).
    pub(super) problem: Option<String>,
    pub(super) next_id: u64,
    pub(super) body: Body,
    /// Draw the panel's own border and title. Off in the console's panes, where tmux draws the
    /// title in the pane border (drawing it twice would cost two rows).
    pub(super) framed: bool,
}

/// The title a panel has when none is given.
pub fn default_title(kind: PanelKind, component: Option<&str>, panel: Option<&str>) -> String {
    match kind {
        PanelKind::Metrics => "Component Metrics".into(),
        PanelKind::Logs => "Component Logs".into(),
        PanelKind::Status => "Health Status".into(),
        PanelKind::Actions => "Actions".into(),
        PanelKind::SystemHealth => "System Health".into(),
        PanelKind::Component => component.unwrap_or("Component").into(),
        PanelKind::Text => panel.unwrap_or("Text").into(),
        PanelKind::Knowledge => "Knowledge".into(),
        PanelKind::Agents => "Agents".into(),
    }
}

impl Model {
    pub fn new(
        kind: PanelKind,
        component: Option<String>,
        title: Option<String>,
        panel: Option<String>,
        theme: Theme,
    ) -> Model {
        let title =
            title.unwrap_or_else(|| default_title(kind, component.as_deref(), panel.as_deref()));
        let body = match kind {
            PanelKind::Metrics => Body::Metrics(metrics::MetricsState::default()),
            PanelKind::Logs => Body::Logs(logs::LogsState::default()),
            PanelKind::Status => Body::Status(status::StatusState::default()),
            PanelKind::Actions => {
                let mut state = actions::ActionsState::default();
                state.raw = component.clone().zip(panel.clone());
                Body::Actions(Box::new(state))
            }
            PanelKind::SystemHealth => Body::SystemHealth(system_health::HealthState::default()),
            PanelKind::Component => Body::Component(component::TileState::default()),
            PanelKind::Text => Body::Text(text::TextState::default()),
            PanelKind::Knowledge => Body::Knowledge(knowledge::KnowledgeState::default()),
            PanelKind::Agents => Body::Agents(agents::AgentsState::default()),
        };
        Model {
            kind,
            title,
            component,
            panel,
            theme,
            conn: Connection::Connecting,
            now: SystemTime::UNIX_EPOCH,
            size: (0, 0),
            fleet: Fleet::default(),
            loaded: false,
            problem: None,
            next_id: 1,
            body,
            framed: true,
        }
    }

    /// The same panel without its own border and title (tmux's pane border shows the title).
    pub fn frameless(mut self) -> Model {
        self.framed = false;
        self
    }

    pub fn kind(&self) -> PanelKind {
        self.kind
    }

    pub fn title(&self) -> &str {
        &self.title
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The requests the runtime makes on each (re)connect, before subscribing; their answers come
    /// back as [`Msg::Snapshot`].
    pub fn sync_requests(&self) -> Vec<Request> {
        let component = self.component.clone();
        let fleet_wide = matches!(
            self.kind,
            PanelKind::Actions | PanelKind::SystemHealth | PanelKind::Agents
        );
        let mut requests = vec![Request::Status {
            component: if fleet_wide { None } else { component.clone() },
        }];
        match (self.kind, component) {
            (PanelKind::Logs, Some(c)) => requests.push(Request::Logs {
                component: c,
                lines: logs::SNAPSHOT_LINES,
            }),
            (PanelKind::Component, Some(c)) => {
                requests.push(Request::Logs {
                    component: c.clone(),
                    lines: component::LOG_LINES,
                });
                requests.push(Request::History { component: c });
            }
            (PanelKind::Metrics | PanelKind::Status, Some(c)) => {
                requests.push(Request::History { component: c });
            }
            (PanelKind::Text, Some(c)) => {
                if let Some(panel) = self.panel.clone() {
                    requests.push(Request::PanelText {
                        component: c,
                        panel,
                    });
                }
            }
            (PanelKind::Knowledge, c) => requests.push(Request::Knowledge {
                request: KnowledgeRequest::Query {
                    query: knowledge::snapshot_query(c.as_deref()),
                },
            }),
            (PanelKind::Agents, _) => requests.push(Request::Mac {
                request: MacRequest::Agents,
            }),
            (
                PanelKind::Metrics
                | PanelKind::Logs
                | PanelKind::Status
                | PanelKind::Actions
                | PanelKind::SystemHealth
                | PanelKind::Component
                | PanelKind::Text,
                _,
            ) => {}
        }
        requests
    }

    /// The topics and components to subscribe to after the snapshot.
    pub fn subscription(&self) -> (Vec<Topic>, Vec<String>) {
        let topics = match self.kind {
            PanelKind::Metrics => vec![Topic::State, Topic::Metrics],
            PanelKind::Logs => vec![Topic::Logs],
            PanelKind::Status => vec![Topic::State, Topic::Issues, Topic::Healing],
            PanelKind::Actions => vec![Topic::State],
            PanelKind::SystemHealth => vec![Topic::State, Topic::Notices, Topic::Plans],
            PanelKind::Component => vec![Topic::State, Topic::Logs, Topic::Metrics],
            PanelKind::Text => vec![Topic::Panels],
            PanelKind::Knowledge => vec![Topic::Knowledge],
            PanelKind::Agents => vec![Topic::Agents],
        };
        // The actions pane parses names of every component, so it listens to the whole fleet.
        let components = match (self.kind, &self.component) {
            (PanelKind::Actions | PanelKind::SystemHealth | PanelKind::Agents, _) | (_, None) => {
                Vec::new()
            }
            (
                PanelKind::Metrics
                | PanelKind::Logs
                | PanelKind::Status
                | PanelKind::Component
                | PanelKind::Text
                | PanelKind::Knowledge,
                Some(c),
            ) => vec![c.clone()],
        };
        (topics, components)
    }

    /// True while something on screen counts time (an uptime, a breaker's trial countdown), so
    /// the runtime ticks once a second; otherwise it does not tick at all.
    pub fn wants_tick(&self) -> bool {
        let clock_kind = matches!(self.kind, PanelKind::Status | PanelKind::Component);
        clock_kind
            && self
                .component
                .as_deref()
                .and_then(|c| self.fleet.get(c))
                .is_some_and(|s| s.started_at.is_some() || s.healing.next_trial_at.is_some())
    }

    /// Is this event about what the panel shows?
    pub(super) fn concerns(&self, component: Option<&str>) -> bool {
        match (&self.component, component) {
            (None, _) => true,
            (Some(mine), Some(theirs)) => mine == theirs,
            (Some(_), None) => false,
        }
    }

    /// The shared part of the model, as the kinds' modules see it.
    pub(super) fn shared(&self) -> Shared<'_> {
        Shared {
            theme: &self.theme,
            now: self.now,
            component: self.component.as_deref(),
            fleet: &self.fleet,
            conn: &self.conn,
            loaded: self.loaded,
            problem: self.problem.as_deref(),
        }
    }

    /// Rows inside the border (or the whole pane, frameless).
    pub(super) fn inner_height(&self) -> usize {
        let border = if self.framed { 2 } else { 0 };
        usize::from(self.size.1.saturating_sub(border))
    }

    pub fn update(&mut self, msg: Msg) -> Vec<Effect> {
        match msg {
            Msg::Tick(now) => {
                self.now = now;
                Vec::new()
            }
            Msg::Resize { width, height } => {
                self.size = (width, height);
                let page = self.inner_height();
                match &mut self.body {
                    Body::Logs(logs) => logs.clamp(page),
                    Body::SystemHealth(state) => state.clamp(self.fleet.components.len(), page),
                    Body::Metrics(_)
                    | Body::Status(_)
                    | Body::Actions(_)
                    | Body::Component(_)
                    | Body::Text(_)
                    | Body::Knowledge(_)
                    | Body::Agents(_) => {}
                }
                Vec::new()
            }
            Msg::Connected => {
                self.conn = Connection::Connected;
                Vec::new()
            }
            Msg::Disconnected { reason } => {
                self.conn = Connection::Unreachable { reason };
                Vec::new()
            }
            Msg::Snapshot(Ok(response)) => {
                self.apply_snapshot(response);
                Vec::new()
            }
            Msg::Snapshot(Err(message)) => {
                self.problem = Some(message);
                Vec::new()
            }
            Msg::Event(event) => {
                self.apply_event(event);
                Vec::new()
            }
            Msg::Reply { id, result } => {
                if let Ok(Response::Status { components }) = &result {
                    for status in components {
                        self.fleet.upsert(status.clone());
                    }
                }
                match &mut self.body {
                    Body::Actions(state) => state.on_reply(id, result),
                    Body::Metrics(_)
                    | Body::Logs(_)
                    | Body::Status(_)
                    | Body::SystemHealth(_)
                    | Body::Component(_)
                    | Body::Text(_)
                    | Body::Knowledge(_)
                    | Body::Agents(_) => {}
                }
                Vec::new()
            }
            Msg::Key(key) => self.on_key(key),
            Msg::Paste(text) => match &mut self.body {
                Body::Actions(state) => {
                    let ctx = ParseContext::new(self.fleet.names(), self.component.as_deref());
                    state.on_paste(&text, &ctx, &mut self.next_id)
                }
                Body::Metrics(_)
                | Body::Logs(_)
                | Body::Status(_)
                | Body::SystemHealth(_)
                | Body::Component(_)
                | Body::Text(_)
                | Body::Knowledge(_)
                | Body::Agents(_) => Vec::new(),
            },
        }
    }

    fn on_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if let Body::Actions(state) = &mut self.body {
            let ctx = ParseContext::new(self.fleet.names(), self.component.as_deref());
            return state.on_key(key, &ctx, &mut self.next_id);
        }
        // No key quits a panel: a pane that dies from a stray Ctrl-C leaves a hole in the grid.
        if key.modifiers.contains(KeyModifiers::CONTROL) {
            return Vec::new();
        }
        let page = self.inner_height();
        match &mut self.body {
            Body::Logs(state) => state.on_key(key, page),
            Body::SystemHealth(state) => {
                let rows = self.fleet.components.len();
                state.on_key(key, rows, page);
            }
            // Enter on a tile opens the component's window (built on first open).
            Body::Component(_) if key.code == KeyCode::Enter => {
                if let Some(component) = self.component.clone() {
                    return vec![Effect::Open {
                        id: None,
                        component,
                        fleet: self.fleet.names(),
                    }];
                }
            }
            Body::Metrics(_)
            | Body::Status(_)
            | Body::Actions(_)
            | Body::Component(_)
            | Body::Text(_)
            | Body::Knowledge(_)
            | Body::Agents(_) => {}
        }
        Vec::new()
    }

    fn apply_snapshot(&mut self, response: Response) {
        match response {
            Response::Status { components } => {
                self.loaded = true;
                self.problem = None;
                for status in components {
                    if let Body::Metrics(state) = &mut self.body
                        && self.component.as_ref().is_none_or(|c| *c == status.name)
                    {
                        state.seed(&status, self.now);
                    }
                    self.fleet.upsert(status);
                }
            }
            Response::Logs { lines } => match &mut self.body {
                Body::Logs(state) => state.replace(lines),
                Body::Component(state) => state.replace(lines),
                Body::Metrics(_)
                | Body::Status(_)
                | Body::Actions(_)
                | Body::SystemHealth(_)
                | Body::Text(_)
                | Body::Knowledge(_)
                | Body::Agents(_) => {}
            },
            Response::PanelText { text } => {
                if let Body::Text(state) = &mut self.body {
                    state.set(&text, false);
                }
            }
            Response::Knowledge {
                answer: KnowledgeAnswer::Results { results },
            } => {
                if let Body::Knowledge(state) = &mut self.body {
                    state.replace(results);
                }
            }
            Response::Mac {
                answer: MacAnswer::Agents { agents },
            } => {
                if let Body::Agents(state) = &mut self.body {
                    state.replace(agents);
                }
            }
            Response::History { history } => match &mut self.body {
                Body::Metrics(state) => state.seed_history(&history),
                Body::Status(state) => state.seed_history(&history),
                Body::Component(state) => state.seed_history(&history),
                Body::Logs(_)
                | Body::Actions(_)
                | Body::SystemHealth(_)
                | Body::Text(_)
                | Body::Knowledge(_)
                | Body::Agents(_) => {}
            },
            Response::Pong
            | Response::Done { .. }
            | Response::Subscribed
            | Response::Issues { .. }
            | Response::Knowledge { .. }
            | Response::Plans { .. }
            | Response::Mac { .. } => {}
        }
    }

    fn apply_event(&mut self, event: Event) {
        // Fleet-wide panels take everything; the actions pane needs every component's name.
        let fleet_wide = matches!(
            self.kind,
            PanelKind::Actions | PanelKind::SystemHealth | PanelKind::Agents
        );
        if !fleet_wide && !self.concerns(event.component()) {
            return;
        }
        let page = self.inner_height();
        match event {
            Event::Component { status } => {
                match &mut self.body {
                    Body::Metrics(state) => state.on_status(&status, self.now),
                    Body::Component(state) => state.on_status(&status),
                    Body::Logs(_)
                    | Body::Status(_)
                    | Body::Actions(_)
                    | Body::SystemHealth(_)
                    | Body::Text(_)
                    | Body::Knowledge(_)
                    | Body::Agents(_) => {}
                }
                self.loaded = true;
                self.fleet.upsert(*status);
            }
            Event::StateChanged {
                component, to, pid, ..
            } => {
                if let Some(status) = self.fleet.get_mut(&component) {
                    status.state = to;
                    status.pid = pid;
                }
            }
            Event::Log { line } => match &mut self.body {
                Body::Logs(state) => state.push(*line, page),
                Body::Component(state) => state.push(*line),
                Body::Metrics(_)
                | Body::Status(_)
                | Body::Actions(_)
                | Body::SystemHealth(_)
                | Body::Text(_)
                | Body::Knowledge(_)
                | Body::Agents(_) => {}
            },
            Event::Metrics {
                component,
                metrics,
                at,
            } => {
                match &mut self.body {
                    Body::Metrics(state) => state.on_process(&component, &metrics, at),
                    Body::Component(state) => state.on_process(&metrics, at),
                    Body::Logs(_)
                    | Body::Status(_)
                    | Body::Actions(_)
                    | Body::SystemHealth(_)
                    | Body::Text(_)
                    | Body::Knowledge(_)
                    | Body::Agents(_) => {}
                }
                if let Some(status) = self.fleet.get_mut(&component) {
                    status.metrics = Some(*metrics);
                }
            }
            Event::Issue { issue } => {
                if let Body::Status(state) = &mut self.body {
                    state.push(crate::protocol::TimelineEntry::Issue {
                        issue: (*issue).clone(),
                    });
                }
                if let Some(status) = self.fleet.get_mut(&issue.component) {
                    status.healing.last_issue = Some(*issue);
                }
            }
            Event::Healing { record } => {
                if let Some(status) = self.fleet.get_mut(&record.issue.component) {
                    status.healing.last_action = Some(record.action.clone());
                }
                if let Body::Status(state) = &mut self.body {
                    state.push(crate::protocol::TimelineEntry::Healing { record: *record });
                }
            }
            // Input goes from a pane to its component, never to other panels.
            Event::PanelInput(_) => {}
            Event::Notice { level, message, at } => {
                if let Body::SystemHealth(state) = &mut self.body {
                    state.push_notice(level, message, at);
                }
            }
            Event::Command { .. } | Event::Task { .. } => {}
            Event::Knowledge { item } => {
                if let Body::Knowledge(state) = &mut self.body {
                    state.push(*item);
                }
            }
            Event::Plan { plan } => {
                if let Body::SystemHealth(state) = &mut self.body {
                    state.on_plan(*plan);
                }
            }
            Event::Agents { agents } => {
                if let Body::Agents(state) = &mut self.body {
                    state.replace(agents);
                }
            }
            Event::PanelText(update) => {
                if let Body::Text(state) = &mut self.body
                    && self.panel.as_ref().is_none_or(|p| *p == update.panel)
                {
                    state.set(&update.text, update.append);
                }
            }
        }
    }

    /// Draws the panel; the actions pane also places the terminal cursor on its input line.
    pub fn view(&self, frame: &mut Frame) {
        let area = frame.area();
        frame.render_widget(self, area);
        if let Body::Actions(state) = &self.body
            && let Some(position) = state.cursor(self.body_area(area))
        {
            frame.set_cursor_position(position);
        }
    }

    /// Where the body goes: inside the border, or (frameless) the pane less a footer row while
    /// there is something to say in it.
    fn body_area(&self, area: Rect) -> Rect {
        if self.framed {
            return self.block().inner(area);
        }
        match self.footer() {
            Some(_) if area.height > 1 => Rect {
                height: area.height - 1,
                ..area
            },
            Some(_) | None => area,
        }
    }

    /// Frameless: what the framed panel says in its bottom border (the connection state, a
    /// scroll hint), as one row.
    fn footer(&self) -> Option<Line<'static>> {
        let mut spans = Vec::new();
        match &self.conn {
            Connection::Connected => {}
            Connection::Connecting => spans.push(Span::styled("connecting…", self.theme.dim())),
            Connection::Unreachable { .. } => spans.push(Span::styled(
                "core unreachable, retrying",
                self.theme.error(),
            )),
        }
        if let Body::Logs(state) = &self.body
            && let Some(hint) = state.scroll_hint(&self.theme)
        {
            spans.push(Span::styled(hint.trim().to_string(), self.theme.dim()));
        }
        (!spans.is_empty()).then(|| Line::from(spans))
    }

    /// The frame around every panel: the title at the top left, the component at the top right,
    /// the connection state at the bottom left.
    pub(super) fn block(&self) -> Block<'_> {
        let mut block = Block::bordered()
            .border_set(self.theme.border_set())
            .title(Line::from(Span::styled(
                format!(" {} ", self.title),
                self.theme.heading(),
            )));
        if let Some(c) = &self.component
            && *c != self.title
        {
            block = block.title_top(Line::from(format!(" {c} ")).right_aligned());
        }
        match &self.conn {
            Connection::Connected => {}
            Connection::Connecting => {
                block = block.title_bottom(Line::styled(" connecting… ", self.theme.dim()));
            }
            Connection::Unreachable { .. } => {
                block = block.title_bottom(Line::styled(
                    " core unreachable, retrying ",
                    self.theme.error(),
                ));
            }
        }
        if let Body::Logs(state) = &self.body
            && let Some(hint) = state.scroll_hint(&self.theme)
        {
            block = block.title_bottom(Line::styled(hint, self.theme.dim()).right_aligned());
        }
        block
    }
}

impl Widget for &Model {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let inner = self.body_area(area);
        if self.framed {
            self.block().render(area, buf);
        } else if let Some(footer) = self.footer()
            && area.height > 1
        {
            let row = Rect {
                y: area.bottom() - 1,
                height: 1,
                ..area
            };
            footer.render(row, buf);
        }
        if inner.is_empty() {
            return;
        }
        let shared = self.shared();
        match &self.body {
            Body::Metrics(state) => metrics::render(shared, state, inner, buf),
            Body::Logs(state) => logs::render(shared, state, inner, buf),
            Body::Status(state) => status::render(shared, state, inner, buf),
            Body::Actions(state) => actions::render(shared, state, inner, buf),
            Body::SystemHealth(state) => system_health::render(shared, state, inner, buf),
            Body::Component(state) => component::render(shared, state, inner, buf),
            Body::Text(state) => text::render(shared, state, inner, buf),
            Body::Knowledge(state) => knowledge::render(shared, state, inner, buf),
            Body::Agents(state) => agents::render(shared, state, inner, buf),
        }
    }
}

/// Where the cursor goes, as a position inside `area`, clamped to it.
pub(super) fn clamp_position(area: Rect, x: u16, y: u16) -> Position {
    Position::new(
        x.min(area.right().saturating_sub(1)),
        y.min(area.bottom().saturating_sub(1)),
    )
}
