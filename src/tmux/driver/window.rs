//! Windows of panel panes, on any [`TmuxDriver`]: making the session once ([`ensure_session`]),
//! building a window from a grid in one go ([`build_window`]) and re-laying it out after a
//! resize ([`reapply`]).
//!
//! The layout is compiled here, from the grid, for the window's size; which command a pane runs
//! is the caller's (`pane_command`). This file must not spawn `tmux` itself: it goes through the
//! driver, so it is tested with [`crate::tmux::fake::FakeTmux`].

use super::{
    NewSession, OptionScope, PaneId, PanePlan, TmuxDriver, TmuxError, WindowId, WindowPlan,
};
use crate::tmux::layout::{Grid, LayoutCell, Panel, compile};

/// Whether [`ensure_session`] made the session or found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// The session was created (and, if the server was new, the server too).
    Created,
    /// The session existed already and was left as it was.
    Reused,
}

/// Returns the session of `spec.name`, creating it only if it does not exist: running `attach`
/// twice never makes a second session. When the session is created on a server that had no
/// sessions (so hms-console started it), `escape-time` is set to 10 ms there: it is a server
/// option in tmux 3.3a, and we never change it on a server the user already runs.
pub async fn ensure_session<D: TmuxDriver>(
    driver: &D,
    spec: &NewSession,
) -> Result<SessionState, TmuxError> {
    let sessions = driver.list_sessions().await?;
    if sessions.contains(&spec.name) {
        return Ok(SessionState::Reused);
    }
    match driver.new_session(spec).await {
        Ok(_) => {}
        // Another `attach` created it between our look and our create.
        Err(TmuxError::Command { stderr, .. }) if stderr.starts_with("duplicate session") => {
            return Ok(SessionState::Reused);
        }
        Err(e) => return Err(e),
    }
    if sessions.is_empty() {
        driver
            .set_option(&OptionScope::Server, "escape-time", "10")
            .await?;
    }
    Ok(SessionState::Created)
}

/// A window built from a grid, and which pane shows which panel: what [`reapply`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedWindow {
    pub window: WindowId,
    pub session: String,
    pub name: String,
    /// The grid, with components bound.
    pub grid: Grid,
    /// `(pane, index into grid.panels())`, in leaf (= pane list) order.
    pub panes: Vec<(PaneId, usize)>,
}

impl ManagedWindow {
    /// The pane showing the first panel of `kind` (e.g. the actions pane).
    pub fn pane_of_kind(&self, kind: crate::model::PanelKind) -> Option<PaneId> {
        self.panes
            .iter()
            .find(|(_, i)| self.grid.panels()[*i].kind == kind)
            .map(|(p, _)| *p)
    }

    /// Given the window's current `#{window_layout}` (e.g. from a `%layout-change`
    /// notification), the layout string to apply so the grid is exact again, or `None` when it
    /// already is (so re-applying on every layout change cannot loop).
    pub fn layout_to_apply(&self, current: &str) -> Result<Option<String>, TmuxError> {
        let current = LayoutCell::parse(current)?;
        let leaves = current.leaves();
        if leaves.len() != self.panes.len() {
            return Err(TmuxError::LayoutMismatch {
                window: self.window,
                expected: format!("{} panes", self.panes.len()),
                found: format!("{} panes", leaves.len()),
            });
        }
        let compiled = compile(&self.grid, current.rect.width, current.rect.height)?;
        if compiled.root().same_shape(&current) {
            return Ok(None);
        }
        let ids: Vec<u32> = self.panes.iter().map(|(p, _)| p.0).collect();
        Ok(Some(compiled.layout_string_with_ids(&ids)))
    }
}

/// Builds (or replaces) the window `window_name` in `session` from a grid: every pane starts
/// with `pane_command(panel)` and is titled with the panel's title, in one tmux invocation.
/// A window of the same name is replaced once the new one is complete. The window is not
/// selected; call [`TmuxDriver::select_window`] to show it.
///
/// The layout is compiled for the size of the session's current window (the size a new window
/// gets); if tmux gives the window another size, it is compiled again for that size.
pub async fn build_window<D: TmuxDriver>(
    driver: &D,
    session: &str,
    window_name: &str,
    grid: &Grid,
    pane_command: impl Fn(&Panel) -> String,
) -> Result<ManagedWindow, TmuxError> {
    build_window_with_options(driver, session, window_name, grid, &[], pane_command).await
}

/// [`build_window`], also setting `options` on the new window in the same tmux invocation.
pub async fn build_window_with_options<D: TmuxDriver>(
    driver: &D,
    session: &str,
    window_name: &str,
    grid: &Grid,
    options: &[(String, String)],
    pane_command: impl Fn(&Panel) -> String,
) -> Result<ManagedWindow, TmuxError> {
    let windows = driver.list_windows(session).await?;
    let (width, height) = windows
        .iter()
        .find(|w| w.active)
        .or(windows.first())
        .map(|w| (w.width, w.height))
        .unwrap_or((80, 24));
    let compiled = compile(grid, width, height)?;
    let plan = WindowPlan {
        session: session.to_string(),
        name: window_name.to_string(),
        panes: compiled
            .leaf_panels()
            .iter()
            .map(|&i| {
                let panel = &grid.panels()[i];
                PanePlan {
                    command: pane_command(panel),
                    title: panel.display_title(),
                }
            })
            .collect(),
        layout: compiled.layout_string(),
        env: Vec::new(),
        replace: windows
            .iter()
            .filter(|w| w.name == window_name)
            .map(|w| w.id)
            .collect(),
        options: options.to_vec(),
    };
    let built = driver.build_window(&plan).await?;
    let managed = ManagedWindow {
        window: built.window,
        session: session.to_string(),
        name: window_name.to_string(),
        grid: grid.clone(),
        panes: built
            .panes
            .iter()
            .copied()
            .zip(compiled.leaf_panels().iter().copied())
            .collect(),
    };
    // tmux hands panes to leaves in pane list order; check it gave them in creation order, so
    // each panel process sits in its own panel's cell.
    let readback = LayoutCell::parse(&built.layout)?;
    let leaf_ids: Vec<u32> = readback.leaves().iter().filter_map(|(_, id)| *id).collect();
    let created: Vec<u32> = built.panes.iter().map(|p| p.0).collect();
    if leaf_ids != created {
        return Err(TmuxError::LayoutMismatch {
            window: built.window,
            expected: format!("panes {created:?} in leaf order"),
            found: built.layout,
        });
    }
    if let Some(layout) = managed.layout_to_apply(&built.layout)? {
        driver.select_layout(built.window, &layout).await?;
    }
    Ok(managed)
}

/// Re-lays-out a managed window for its current size (after a resize); returns whether a new
/// layout was applied.
pub async fn reapply<D: TmuxDriver>(driver: &D, window: &ManagedWindow) -> Result<bool, TmuxError> {
    let current = driver.window_layout(window.window).await?;
    match window.layout_to_apply(&current)? {
        Some(layout) => {
            driver.select_layout(window.window, &layout).await?;
            Ok(true)
        }
        None => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PanelKind;
    use crate::tmux::fake::FakeTmux;

    fn session(name: &str) -> NewSession {
        NewSession {
            name: name.into(),
            window_name: "main".into(),
            width: 120,
            height: 40,
            command: None,
        }
    }

    fn panel_command(p: &Panel) -> String {
        format!("hms-console panel {}", p.kind.name())
    }

    #[tokio::test]
    async fn ensure_session_creates_once_then_reuses() {
        let fake = FakeTmux::new();
        assert_eq!(
            ensure_session(&fake, &session("hms")).await.unwrap(),
            SessionState::Created
        );
        assert_eq!(
            ensure_session(&fake, &session("hms")).await.unwrap(),
            SessionState::Reused
        );
        assert_eq!(fake.state().sessions.len(), 1);
    }

    #[tokio::test]
    async fn escape_time_is_set_only_on_a_server_we_started() {
        let fake = FakeTmux::new();
        ensure_session(&fake, &session("users")).await.unwrap();
        assert_eq!(fake.state().server_options.len(), 1);
        ensure_session(&fake, &session("hms")).await.unwrap();
        // The second session joined a server that already had one: leave its options alone.
        assert_eq!(fake.state().server_options.len(), 1);
    }

    #[tokio::test]
    async fn build_window_maps_each_pane_to_its_panel() {
        let fake = FakeTmux::new();
        ensure_session(&fake, &session("hms")).await.unwrap();
        let grid = Grid::custom(3, 3, &["a".into(), "b".into(), "c".into()]).unwrap();
        let w = build_window(&fake, "hms", "overview", &grid, panel_command)
            .await
            .unwrap();
        assert_eq!(w.panes.len(), 5);
        let state = fake.state();
        let window = state.sessions[0]
            .windows
            .iter()
            .find(|x| x.id == w.window)
            .unwrap();
        for (pane, panel) in &w.panes {
            let fp = window.panes.iter().find(|p| p.id == *pane).unwrap();
            let panel = &grid.panels()[*panel];
            assert_eq!(fp.command.as_deref(), Some(panel_command(panel).as_str()));
            assert_eq!(fp.title, panel.display_title());
        }
        assert_eq!(
            w.pane_of_kind(PanelKind::Actions),
            Some(w.panes[4].0),
            "the actions row is the last leaf"
        );
        // The window holds the compiled layout for its size, with the real pane ids.
        let compiled = compile(&grid, 120, 40).unwrap();
        let ids: Vec<u32> = w.panes.iter().map(|(p, _)| p.0).collect();
        assert_eq!(window.layout, compiled.layout_string_with_ids(&ids));
    }

    #[tokio::test]
    async fn build_window_replaces_a_window_of_the_same_name() {
        let fake = FakeTmux::new();
        ensure_session(&fake, &session("hms")).await.unwrap();
        let grid = Grid::two_by_two("api");
        let first = build_window(&fake, "hms", "api", &grid, panel_command)
            .await
            .unwrap();
        let second = build_window(&fake, "hms", "api", &grid, panel_command)
            .await
            .unwrap();
        let names: Vec<(WindowId, String)> = fake.state().sessions[0]
            .windows
            .iter()
            .map(|w| (w.id, w.name.clone()))
            .collect();
        assert!(!names.iter().any(|(id, _)| *id == first.window));
        assert_eq!(names.iter().filter(|(_, n)| n == "api").count(), 1);
        assert!(names.iter().any(|(id, _)| *id == second.window));
    }

    #[tokio::test]
    async fn reapply_restores_the_grid_after_a_resize_and_then_does_nothing() {
        let fake = FakeTmux::new();
        ensure_session(&fake, &session("hms")).await.unwrap();
        let grid = Grid::custom(3, 3, &[]).unwrap();
        let w = build_window(&fake, "hms", "overview", &grid, panel_command)
            .await
            .unwrap();
        fake.resize_window(w.window, 200, 50);
        assert!(reapply(&fake, &w).await.unwrap());
        let ids: Vec<u32> = w.panes.iter().map(|(p, _)| p.0).collect();
        let expected = compile(&grid, 200, 50)
            .unwrap()
            .layout_string_with_ids(&ids);
        assert_eq!(fake.window_layout(w.window).await.unwrap(), expected);
        assert!(!reapply(&fake, &w).await.unwrap(), "already exact");
    }

    #[tokio::test]
    async fn layout_to_apply_refuses_a_window_whose_panes_changed() {
        let fake = FakeTmux::new();
        ensure_session(&fake, &session("hms")).await.unwrap();
        let grid = Grid::two_by_two("api");
        let w = build_window(&fake, "hms", "api", &grid, panel_command)
            .await
            .unwrap();
        fake.split_window(w.panes[0].0, true, None).await.unwrap();
        let err = reapply(&fake, &w).await.unwrap_err();
        assert!(matches!(err, TmuxError::LayoutMismatch { .. }), "{err}");
    }
}
