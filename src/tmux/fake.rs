//! [`FakeTmux`]: an in-memory [`TmuxDriver`] for unit tests of code above the driver (the CLI,
//! the core's layout keeper). It models sessions, windows, panes, titles, options and layouts
//! closely enough for that code, records every call, and never runs a process.
//!
//! It is not a tmux emulator: a layout it cannot apply exactly (a size mismatch, a resize) is
//! replaced by panes side by side, which is enough to make a caller re-apply its layout.

use std::sync::Mutex;

use super::driver::{
    BuiltWindow, NewSession, OptionScope, PaneId, PaneInfo, TmuxDriver, TmuxError, WindowId,
    WindowInfo, WindowPlan,
};
use super::layout::{CellContent, LayoutCell, Rect};

/// A pane of the fake server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakePane {
    pub id: PaneId,
    pub command: Option<String>,
    pub title: String,
    /// Keys sent with send-keys, in order.
    pub keys: Vec<String>,
}

/// A window of the fake server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeWindow {
    pub id: WindowId,
    pub name: String,
    pub width: u16,
    pub height: u16,
    pub panes: Vec<FakePane>,
    /// The current layout (with pane ids), as `#{window_layout}` would print it.
    pub layout: String,
    pub options: Vec<(String, String)>,
}

/// A session of the fake server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeSession {
    pub name: String,
    pub width: u16,
    pub height: u16,
    pub windows: Vec<FakeWindow>,
    pub current: Option<WindowId>,
}

/// Everything the fake server holds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FakeState {
    pub sessions: Vec<FakeSession>,
    pub server_options: Vec<(String, String)>,
    /// One line per driver call, e.g. `build_window overview 5 panes`.
    pub calls: Vec<String>,
    next_window: u32,
    next_pane: u32,
}

/// An in-memory tmux server.
#[derive(Debug, Default)]
pub struct FakeTmux {
    /// A std mutex: every method locks it briefly and never across an await.
    state: Mutex<FakeState>,
}

/// Panes side by side, filling the window: what the fake shows after a resize.
fn side_by_side(width: u16, height: u16, panes: &[FakePane]) -> String {
    let n = panes.len().max(1) as u16;
    let each = (width.saturating_sub(n - 1) / n).max(1);
    let mut children = Vec::new();
    let mut x = 0;
    for (i, pane) in panes.iter().enumerate() {
        let w = if i + 1 == panes.len() {
            width.saturating_sub(x).max(1)
        } else {
            each
        };
        children.push(LayoutCell {
            rect: Rect {
                x,
                y: 0,
                width: w,
                height,
            },
            content: CellContent::Pane(Some(pane.id.0)),
        });
        x += w + 1;
    }
    let root = if children.len() == 1 {
        children.remove(0)
    } else {
        LayoutCell {
            rect: Rect {
                x: 0,
                y: 0,
                width,
                height,
            },
            content: CellContent::LeftRight(children),
        }
    };
    root.to_layout_string()
}

fn not_found(what: impl std::fmt::Display) -> TmuxError {
    TmuxError::Command {
        command: "fake".to_string(),
        stderr: format!("can't find {what}"),
    }
}

impl FakeTmux {
    pub fn new() -> FakeTmux {
        FakeTmux::default()
    }

    /// A copy of the whole state, for assertions.
    pub fn state(&self) -> FakeState {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        // A test that panicked while holding the lock has failed already; keep the state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resizes a window the way an attaching client would: the old layout no longer fits, and
    /// the panes are laid side by side.
    pub fn resize_window(&self, window: WindowId, width: u16, height: u16) {
        let mut state = self.lock();
        state
            .calls
            .push(format!("resize {window} {width}x{height}"));
        if let Some(w) = state
            .sessions
            .iter_mut()
            .flat_map(|s| s.windows.iter_mut())
            .find(|w| w.id == window)
        {
            w.width = width;
            w.height = height;
            w.layout = side_by_side(width, height, &w.panes);
        }
    }

    fn with_window<T>(
        &self,
        window: WindowId,
        call: String,
        f: impl FnOnce(&mut FakeWindow) -> Result<T, TmuxError>,
    ) -> Result<T, TmuxError> {
        let mut state = self.lock();
        state.calls.push(call);
        let w = state
            .sessions
            .iter_mut()
            .flat_map(|s| s.windows.iter_mut())
            .find(|w| w.id == window)
            .ok_or_else(|| not_found(window))?;
        f(w)
    }

    fn with_pane<T>(
        &self,
        pane: PaneId,
        call: String,
        f: impl FnOnce(&mut FakePane) -> T,
    ) -> Result<T, TmuxError> {
        let mut state = self.lock();
        state.calls.push(call);
        state
            .sessions
            .iter_mut()
            .flat_map(|s| s.windows.iter_mut())
            .flat_map(|w| w.panes.iter_mut())
            .find(|p| p.id == pane)
            .map(f)
            .ok_or_else(|| not_found(pane))
    }
}

impl FakeState {
    fn new_pane(&mut self, command: Option<String>) -> FakePane {
        let id = PaneId(self.next_pane);
        self.next_pane += 1;
        FakePane {
            id,
            command,
            title: String::new(),
            keys: Vec::new(),
        }
    }

    fn new_window(&mut self, name: &str, width: u16, height: u16, pane: FakePane) -> FakeWindow {
        let id = WindowId(self.next_window);
        self.next_window += 1;
        let panes = vec![pane];
        FakeWindow {
            id,
            name: name.to_string(),
            width,
            height,
            layout: side_by_side(width, height, &panes),
            panes,
            options: Vec::new(),
        }
    }

    fn session(&mut self, name: &str) -> Result<&mut FakeSession, TmuxError> {
        self.sessions
            .iter_mut()
            .find(|s| s.name == name)
            .ok_or_else(|| not_found(format!("session: {name}")))
    }
}

/// Applies a layout like tmux: the panes fill the leaves in order; a layout of another size
/// than the window is stretched by tmux, which the fake models as "side by side".
fn apply_layout(w: &mut FakeWindow, layout: &str) -> Result<(), TmuxError> {
    let mut cell = LayoutCell::parse(layout)?;
    if cell.leaves().len() != w.panes.len() {
        return Err(TmuxError::Command {
            command: "select-layout".into(),
            stderr: format!(
                "have {} panes but need {}",
                w.panes.len(),
                cell.leaves().len()
            ),
        });
    }
    if (cell.rect.width, cell.rect.height) != (w.width, w.height) {
        w.layout = side_by_side(w.width, w.height, &w.panes);
        return Ok(());
    }
    fn set_ids(cell: &mut LayoutCell, ids: &mut impl Iterator<Item = u32>) {
        match &mut cell.content {
            CellContent::Pane(id) => *id = ids.next(),
            CellContent::LeftRight(c) | CellContent::TopBottom(c) => {
                c.iter_mut().for_each(|c| set_ids(c, ids))
            }
        }
    }
    set_ids(&mut cell, &mut w.panes.iter().map(|p| p.id.0));
    w.layout = cell.to_layout_string();
    Ok(())
}

impl TmuxDriver for FakeTmux {
    async fn list_sessions(&self) -> Result<Vec<String>, TmuxError> {
        let mut state = self.lock();
        state.calls.push("list_sessions".into());
        Ok(state.sessions.iter().map(|s| s.name.clone()).collect())
    }

    async fn has_session(&self, session: &str) -> Result<bool, TmuxError> {
        let mut state = self.lock();
        state.calls.push(format!("has_session {session}"));
        Ok(state.sessions.iter().any(|s| s.name == session))
    }

    async fn new_session(&self, spec: &NewSession) -> Result<PaneId, TmuxError> {
        let mut state = self.lock();
        state.calls.push(format!("new_session {}", spec.name));
        if state.sessions.iter().any(|s| s.name == spec.name) {
            return Err(TmuxError::Command {
                command: "new-session".into(),
                stderr: format!("duplicate session: {}", spec.name),
            });
        }
        let pane = state.new_pane(spec.command.clone());
        let id = pane.id;
        let window = state.new_window(&spec.window_name, spec.width, spec.height, pane);
        state.sessions.push(FakeSession {
            name: spec.name.clone(),
            width: spec.width,
            height: spec.height,
            current: Some(window.id),
            windows: vec![window],
        });
        Ok(id)
    }

    async fn new_window(
        &self,
        session: &str,
        name: &str,
        command: Option<&str>,
    ) -> Result<(WindowId, PaneId), TmuxError> {
        let mut state = self.lock();
        state.calls.push(format!("new_window {session} {name}"));
        let pane = state.new_pane(command.map(str::to_string));
        let pane_id = pane.id;
        let (width, height) = {
            let s = state.session(session)?;
            (s.width, s.height)
        };
        let window = state.new_window(name, width, height, pane);
        let id = window.id;
        state.session(session)?.windows.push(window);
        Ok((id, pane_id))
    }

    async fn split_window(
        &self,
        pane: PaneId,
        below: bool,
        command: Option<&str>,
    ) -> Result<PaneId, TmuxError> {
        let mut state = self.lock();
        state
            .calls
            .push(format!("split_window {pane} below={below}"));
        let new = state.new_pane(command.map(str::to_string));
        let id = new.id;
        let w = state
            .sessions
            .iter_mut()
            .flat_map(|s| s.windows.iter_mut())
            .find(|w| w.panes.iter().any(|p| p.id == pane))
            .ok_or_else(|| not_found(pane))?;
        let at = w.panes.iter().position(|p| p.id == pane).unwrap_or(0);
        w.panes.insert(at + 1, new);
        w.layout = side_by_side(w.width, w.height, &w.panes);
        Ok(id)
    }

    async fn build_window(&self, plan: &WindowPlan) -> Result<BuiltWindow, TmuxError> {
        let mut state = self.lock();
        state.calls.push(format!(
            "build_window {} {} panes",
            plan.name,
            plan.panes.len()
        ));
        let (width, height) = {
            let s = state.session(&plan.session)?;
            (s.width, s.height)
        };
        let mut panes = Vec::new();
        for p in &plan.panes {
            let mut pane = state.new_pane(Some(p.command.clone()));
            pane.title = p.title.clone();
            panes.push(pane);
        }
        let Some(first) = panes.first().cloned() else {
            return Err(TmuxError::Parse {
                expected: "at least one pane".into(),
                output: "an empty plan".into(),
            });
        };
        let mut window = state.new_window(&plan.name, width, height, first);
        window.panes = panes;
        for (k, v) in [
            ("remain-on-exit", "on"),
            ("pane-border-status", "top"),
            ("pane-border-format", " #{pane_title} "),
        ] {
            window.options.push((k.into(), v.into()));
        }
        apply_layout(&mut window, &plan.layout)?;
        let built = BuiltWindow {
            window: window.id,
            panes: window.panes.iter().map(|p| p.id).collect(),
            layout: window.layout.clone(),
        };
        let session = state.session(&plan.session)?;
        // As tmux does it: a replaced window's place goes to the new one; otherwise at the end.
        let place = session
            .windows
            .iter()
            .position(|w| plan.replace.first() == Some(&w.id));
        match place {
            Some(i) => session.windows.insert(i, window),
            None => session.windows.push(window),
        }
        session.windows.retain(|w| !plan.replace.contains(&w.id));
        Ok(built)
    }

    async fn list_windows(&self, session: &str) -> Result<Vec<WindowInfo>, TmuxError> {
        let mut state = self.lock();
        state.calls.push(format!("list_windows {session}"));
        let s = state.session(session)?;
        Ok(s.windows
            .iter()
            .map(|w| WindowInfo {
                id: w.id,
                name: w.name.clone(),
                width: w.width,
                height: w.height,
                active: s.current == Some(w.id),
            })
            .collect())
    }

    async fn list_panes(&self, window: WindowId) -> Result<Vec<PaneInfo>, TmuxError> {
        self.with_window(window, format!("list_panes {window}"), |w| {
            let cell = LayoutCell::parse(&w.layout)?;
            Ok(cell
                .leaves()
                .iter()
                .zip(&w.panes)
                .enumerate()
                .map(|(i, ((rect, _), pane))| PaneInfo {
                    id: pane.id,
                    index: i as u32,
                    width: rect.width,
                    height: rect.height,
                    left: rect.x,
                    top: rect.y,
                    title: pane.title.clone(),
                })
                .collect())
        })
    }

    async fn window_layout(&self, window: WindowId) -> Result<String, TmuxError> {
        self.with_window(window, format!("window_layout {window}"), |w| {
            Ok(w.layout.clone())
        })
    }

    async fn select_layout(&self, window: WindowId, layout: &str) -> Result<(), TmuxError> {
        self.with_window(window, format!("select_layout {window} {layout}"), |w| {
            apply_layout(w, layout)
        })
    }

    async fn select_window(&self, window: WindowId) -> Result<(), TmuxError> {
        let mut state = self.lock();
        state.calls.push(format!("select_window {window}"));
        let s = state
            .sessions
            .iter_mut()
            .find(|s| s.windows.iter().any(|w| w.id == window))
            .ok_or_else(|| not_found(window))?;
        s.current = Some(window);
        Ok(())
    }

    async fn capture_pane(&self, pane: PaneId) -> Result<String, TmuxError> {
        self.with_pane(pane, format!("capture_pane {pane}"), |p| {
            format!("{}\n{}\n", p.title, p.keys.join(""))
        })
    }

    async fn send_keys(&self, pane: PaneId, keys: &[&str]) -> Result<(), TmuxError> {
        self.with_pane(pane, format!("send_keys {pane} {keys:?}"), |p| {
            p.keys.extend(keys.iter().map(|k| k.to_string()))
        })
    }

    async fn set_pane_title(&self, pane: PaneId, title: &str) -> Result<(), TmuxError> {
        self.with_pane(pane, format!("set_pane_title {pane} {title}"), |p| {
            p.title = title.to_string()
        })
    }

    async fn set_option(
        &self,
        scope: &OptionScope,
        name: &str,
        value: &str,
    ) -> Result<(), TmuxError> {
        let call = format!("set_option {scope:?} {name} {value}");
        let option = (name.to_string(), value.to_string());
        match scope {
            OptionScope::Window(w) => self.with_window(*w, call, |w| {
                w.options.push(option);
                Ok(())
            }),
            OptionScope::Session(s) => {
                let mut state = self.lock();
                state.calls.push(call);
                state.session(s).map(drop)
            }
            OptionScope::Server => {
                let mut state = self.lock();
                state.calls.push(call);
                state.server_options.push(option);
                Ok(())
            }
        }
    }

    async fn set_hook(&self, session: &str, hook: &str, command: &str) -> Result<(), TmuxError> {
        let mut state = self.lock();
        state
            .calls
            .push(format!("set_hook {session} {hook} {command}"));
        state.session(session).map(drop)
    }

    async fn set_window_hook(
        &self,
        window: WindowId,
        hook: &str,
        command: &str,
    ) -> Result<(), TmuxError> {
        self.lock()
            .calls
            .push(format!("set_window_hook {window} {hook} {command}"));
        Ok(())
    }

    async fn switch_client(&self, session: &str) -> Result<(), TmuxError> {
        let mut state = self.lock();
        state.calls.push(format!("switch_client {session}"));
        state.session(session).map(drop)
    }

    async fn kill_window(&self, window: WindowId) -> Result<(), TmuxError> {
        let mut state = self.lock();
        state.calls.push(format!("kill_window {window}"));
        for s in &mut state.sessions {
            s.windows.retain(|w| w.id != window);
        }
        Ok(())
    }

    async fn respawn_dead_panes(&self, session: &str) -> Result<usize, TmuxError> {
        let mut state = self.lock();
        state.calls.push(format!("respawn_dead_panes {session}"));
        state.session(session).map(|_| 0)
    }

    async fn kill_server(&self) -> Result<(), TmuxError> {
        let mut state = self.lock();
        state.calls.push("kill_server".into());
        state.sessions.clear();
        Ok(())
    }
}
