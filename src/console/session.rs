//! Building the operator's tmux session: the §3.2 overview, a §3.1 TwoByTwo window for each
//! component the operator opens, and windows from layout files, each pane started with its
//! `hms-console panel …` command.
//!
//! The console's cost follows the screen: `attach` builds the overview only; a component's window
//! is built the first time it is opened ([`open_component`]: `open api` in an actions pane, Enter
//! on a tile, or `layout twobytwo api`), and shown after that.
//!
//! Each window we build carries its layout's source in the window option `@hms-layout` (e.g.
//! `twobytwo:api`, `custom:3x3:a,b,c`, `file:/abs/path.toml`), so whoever re-lays it out later
//! (after a resize, or when its layout file changes) can compile the same grid again from tmux
//! alone. This module only drives tmux through [`TmuxDriver`]; it never talks to the core.

use std::path::{Path, PathBuf};

use crate::model::PanelKind;
use crate::tmux::driver::{
    ManagedWindow, NewSession, OptionScope, PaneId, SessionState, TmuxDriver, TmuxError, WindowId,
    build_window_with_options, ensure_session,
};
use crate::tmux::layout::{Grid, LayoutError, Panel};

/// The window option that records a window's layout source.
pub const LAYOUT_OPTION: &str = "@hms-layout";

/// The window option that records a fingerprint of the grid the window was built from, so a
/// rebuild can be skipped when a layout file event brings no change.
pub const GRID_OPTION: &str = "@hms-grid";

/// The session option naming the core's socket the session shows, so `down` finds the
/// sessions that go away with that core.
pub const CORE_OPTION: &str = "@hms-core-socket";

/// The session hook that brings a dead pane back: a second later, the pane's own command again
/// (a panel that cannot start at all is retried once a second, not in a tight loop).
pub const RESPAWN_HOOK: &str = "pane-died";
const RESPAWN_COMMAND: &str = "run-shell -b -d 1 -C \"respawn-pane -t #{hook_pane}\"";

/// Makes dead panes come back: respawns those dead now and sets [`RESPAWN_HOOK`] for the rest
/// of the session's life. Called by `attach` and by the console watcher when it starts.
pub async fn keep_panes_alive<D: TmuxDriver>(
    driver: &D,
    session: &str,
) -> Result<usize, TmuxError> {
    // Per window: tmux 3.3a cannot name a session-wide hook (see `set_window_hook`).
    for window in driver.list_windows(session).await? {
        driver
            .set_window_hook(window.id, RESPAWN_HOOK, RESPAWN_COMMAND)
            .await?;
    }
    driver.respawn_dead_panes(session).await
}

/// A fingerprint of a grid (stable within one build of hms-console).
pub fn grid_fingerprint(grid: &Grid) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    format!("{grid:?}").hash(&mut h);
    format!("{:016x}", h.finish())
}

/// Errors building the console.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// tmux refused or failed.
    #[error(transparent)]
    Tmux(#[from] TmuxError),
    /// The layout is not valid or cannot be built.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// A `RxC` grid size that does not parse.
    #[error("invalid grid size '{0}': write ROWSxCOLS, e.g. 3x3 (1 to 12 each)")]
    GridSize(String),
    /// A layout names a component the fleet does not have; `known` is in fleet order.
    #[error("unknown component '{name}'{}; known components: {known}", .nearest.as_ref().map(|n| format!(" (did you mean '{n}'?)")).unwrap_or_default())]
    UnknownComponent {
        name: String,
        nearest: Option<String>,
        known: String,
    },
}

/// What the console needs to start panels.
#[derive(Debug, Clone)]
pub struct ConsoleOptions {
    /// The tmux session's name.
    pub session: String,
    /// The core's socket, passed to every panel.
    pub socket: PathBuf,
    /// The data directory, passed to every panel (their logs go there).
    pub data_dir: PathBuf,
    /// The `hms-console` program, as an absolute path (tmux runs pane commands through a shell
    /// elsewhere).
    pub exe: PathBuf,
    /// The slim panel program (`hms-panel`) when one is installed beside `exe`: panes run it
    /// rather than `exe panel` (see [`slim_panel_beside`]).
    pub slim_panel: Option<PathBuf>,
    /// Panels draw ASCII icons and borders.
    pub ascii: bool,
}

/// Where a window's grid comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayoutSource {
    /// The §3.2 overview of the whole fleet.
    Overview,
    /// The §3.1 window of one component (the first when `None`).
    TwoByTwo(Option<String>),
    /// `Custom(rows, cols)`: component tiles in order, then system health and actions rows.
    Custom {
        rows: u8,
        cols: u8,
        components: Option<Vec<String>>,
    },
    /// A layout file.
    File(PathBuf),
}

impl LayoutSource {
    /// The `@hms-layout` tag.
    pub fn tag(&self) -> String {
        match self {
            LayoutSource::Overview => "overview".into(),
            LayoutSource::TwoByTwo(c) => format!("twobytwo:{}", c.as_deref().unwrap_or("")),
            LayoutSource::Custom {
                rows,
                cols,
                components,
            } => format!(
                "custom:{rows}x{cols}:{}",
                components.as_ref().map(|c| c.join(",")).unwrap_or_default()
            ),
            LayoutSource::File(p) => format!("file:{}", p.display()),
        }
    }

    /// Reads a tag back.
    pub fn from_tag(tag: &str) -> Option<LayoutSource> {
        let (kind, rest) = tag.split_once(':').unwrap_or((tag, ""));
        match kind {
            "overview" => Some(LayoutSource::Overview),
            "twobytwo" => Some(LayoutSource::TwoByTwo(
                (!rest.is_empty()).then(|| rest.to_string()),
            )),
            "custom" => {
                let (size, comps) = rest.split_once(':').unwrap_or((rest, ""));
                let (rows, cols) = parse_grid_size(size).ok()?;
                Some(LayoutSource::Custom {
                    rows,
                    cols,
                    components: (!comps.is_empty())
                        .then(|| comps.split(',').map(str::to_string).collect()),
                })
            }
            "file" => Some(LayoutSource::File(PathBuf::from(rest))),
            _ => None,
        }
    }

    /// The window name: `overview`, the component's name, `custom-3x3`, or the layout's name.
    pub fn window_name(&self, grid: &Grid) -> String {
        match self {
            LayoutSource::Overview => "overview".into(),
            LayoutSource::TwoByTwo(_) => grid
                .panels()
                .iter()
                .find_map(|p| p.component.clone())
                .unwrap_or_else(|| "twobytwo".into()),
            LayoutSource::Custom { rows, cols, .. } => format!("custom-{rows}x{cols}"),
            LayoutSource::File(_) => grid.name().to_string(),
        }
    }

    /// The components of the fleet a grid from this source has no tile for (a `custom` grid
    /// without `--components` takes the first ones that fit), in fleet order.
    pub fn left_out(&self, fleet: &[String]) -> Vec<String> {
        match self {
            LayoutSource::Custom {
                rows,
                cols,
                components: None,
            } => fleet
                .iter()
                .skip(tile_count(*rows, *cols))
                .cloned()
                .collect(),
            LayoutSource::Custom {
                components: Some(_),
                ..
            }
            | LayoutSource::Overview
            | LayoutSource::TwoByTwo(_)
            | LayoutSource::File(_) => Vec::new(),
        }
    }

    /// The grid for a fleet.
    pub fn grid(&self, fleet: &[String]) -> Result<Grid, ConsoleError> {
        let check = |name: &str| -> Result<(), ConsoleError> {
            if fleet.iter().any(|c| c == name) {
                Ok(())
            } else {
                Err(ConsoleError::UnknownComponent {
                    name: name.to_string(),
                    nearest: crate::text::nearest(name, fleet.iter().map(String::as_str))
                        .map(str::to_string),
                    known: fleet.join(", "),
                })
            }
        };
        match self {
            LayoutSource::Overview if fleet.len() > OVERVIEW_TILES_MAX => {
                // Folded: the System Health table (worst first, scrolling) takes the tiles'
                // place, so a large fleet costs two panes and stays readable at 80x24.
                let panels = vec![
                    Panel::new(PanelKind::SystemHealth, 0, 0)
                        .span(2, 1)
                        .title("System Health"),
                    Panel::new(PanelKind::Actions, 2, 0).title("System Actions"),
                ];
                Ok(Grid::new("overview-folded", 3, 1, panels)?)
            }
            LayoutSource::Overview => {
                let (rows, cols) = overview_size(fleet.len());
                let grid = Grid::custom(rows.into(), cols.into(), fleet)?;
                // No empty tiles: the last component's tile takes the rest of its row.
                let mut panels: Vec<Panel> = grid
                    .panels()
                    .iter()
                    .filter(|p| p.kind != PanelKind::Component || p.component.is_some())
                    .cloned()
                    .collect();
                if let Some(last) = panels
                    .iter_mut()
                    .filter(|p| p.kind == PanelKind::Component)
                    .max_by_key(|p| (p.row, p.col))
                {
                    last.colspan = grid.cols() - last.col;
                }
                Ok(Grid::new(grid.name(), grid.rows(), grid.cols(), panels)?)
            }
            LayoutSource::TwoByTwo(c) => {
                let name = match c {
                    Some(c) => {
                        check(c)?;
                        c.clone()
                    }
                    None => fleet.first().cloned().unwrap_or_default(),
                };
                Ok(Grid::two_by_two(&name))
            }
            LayoutSource::Custom {
                rows,
                cols,
                components,
            } => {
                let list = match components {
                    Some(list) => {
                        for c in list {
                            check(c)?;
                        }
                        list.clone()
                    }
                    None => {
                        let tiles = tile_count(*rows, *cols);
                        fleet.iter().take(tiles).cloned().collect()
                    }
                };
                Ok(Grid::custom((*rows).into(), (*cols).into(), &list)?.bind_fleet(fleet))
            }
            LayoutSource::File(path) => Ok(Grid::load(path)?.bind_fleet(fleet)),
        }
    }
}

/// The most components the overview draws as tiles (a pane each). A larger fleet's overview is
/// folded into the System Health table, worst first, and a component's window is one
/// `open NAME` away.
pub const OVERVIEW_TILES_MAX: usize = 9;

/// How many component tiles `Grid::custom(rows, cols)` has.
fn tile_count(rows: u8, cols: u8) -> usize {
    let tile_rows = match rows {
        0 | 1 => rows,
        2 => 1,
        r => r - 2,
    };
    usize::from(tile_rows) * usize::from(cols)
}

/// The overview grid for `n` components: at most three tiles across (four when that leaves no
/// hole), tile rows as needed, then the system health and actions rows.
pub fn overview_size(n: usize) -> (u8, u8) {
    let n = n.max(1);
    let cols = if n <= 3 {
        n
    } else if n.is_multiple_of(3) || !n.is_multiple_of(4) {
        3
    } else {
        4
    };
    let tile_rows = n.div_ceil(cols);
    ((tile_rows + 2).min(12) as u8, cols as u8)
}

/// Parses `RxC` (e.g. `3x3`).
pub fn parse_grid_size(text: &str) -> Result<(u8, u8), ConsoleError> {
    let bad = || ConsoleError::GridSize(text.to_string());
    let (r, c) = text.split_once(['x', 'X', '×']).ok_or_else(bad)?;
    let r: u8 = r.trim().parse().map_err(|_| bad())?;
    let c: u8 = c.trim().parse().map_err(|_| bad())?;
    if !(1..=12).contains(&r) || !(1..=12).contains(&c) {
        return Err(bad());
    }
    Ok((r, c))
}

/// Quotes one word for `sh`. Written by hand because it is one line: single quotes, and each `'`
/// inside as `'\''`.
pub fn sh_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', "'\\''"))
}

/// The slim panel program's file name (src/bin/hms-panel.rs): the panel code alone, with the
/// system allocator and a single-threaded runtime, so a pane costs a fraction of a whole
/// `hms-console` (issue 12). Its command line is `hms-console panel`'s: see
/// [`crate::panel::args`].
pub const SLIM_PANEL: &str = "hms-panel";

/// The slim panel program installed beside `exe` (the `hms-console` the console runs), if there
/// is one: same directory, an executable file. `cargo build` puts both in `target/<profile>/`,
/// `cargo install` both in `~/.cargo/bin`; a lone `hms-console` (copied, or built with
/// `--bin hms-console`) runs its panels itself.
pub fn slim_panel_beside(exe: &Path) -> Option<PathBuf> {
    crate::paths::program_beside(exe, SLIM_PANEL)
}

/// The program for pane commands when this process is `this` (from [`this_program`]): itself
/// (`hms-cli`, or a lone program that runs every command), or when it is the slim panel, the
/// `hms-cli` beside it (the one that carries out `hms-console`'s commands, see
/// [`crate::cli::front`]), else the `hms-console` beside it (a slim panel is only ever started as
/// the one found beside one of them).
pub fn console_program(this: PathBuf) -> PathBuf {
    if this.file_name().is_some_and(|n| n == SLIM_PANEL) {
        crate::paths::program_beside(&this, crate::cli::FULL_PROGRAM)
            .unwrap_or_else(|| this.with_file_name("hms-console"))
    } else {
        this
    }
}

/// The shell command that starts a panel's process in a pane: the slim panel program when there
/// is one, else `hms-console panel`; the same arguments either way.
pub fn panel_command(opts: &ConsoleOptions, panel: &Panel) -> String {
    let program = match &opts.slim_panel {
        Some(slim) => vec![sh_quote(&slim.to_string_lossy())],
        None => vec![sh_quote(&opts.exe.to_string_lossy())],
    };
    let mut cmd = program;
    cmd.extend([
        "--socket".into(),
        sh_quote(&opts.socket.to_string_lossy()),
        "--data-dir".into(),
        sh_quote(&opts.data_dir.to_string_lossy()),
    ]);
    if opts.slim_panel.is_none() {
        cmd.push("panel".into());
    }
    cmd.extend([
        panel.kind.name().replace('_', "-"),
        // tmux's pane border shows the title; the panel does not draw it again.
        "--frameless".into(),
    ]);
    if let Some(c) = &panel.component {
        cmd.push("--component".into());
        cmd.push(sh_quote(c));
    }
    cmd.push("--title".into());
    cmd.push(sh_quote(&panel.display_title()));
    if opts.ascii {
        cmd.push("--ascii".into());
    }
    // `exec`: the panel replaces the shell, so the pane's process is the panel itself.
    format!("exec {}", cmd.join(" "))
}

/// Builds (or replaces) one window from a layout source and tags it.
pub async fn build<D: TmuxDriver>(
    driver: &D,
    opts: &ConsoleOptions,
    source: &LayoutSource,
    fleet: &[String],
) -> Result<ManagedWindow, ConsoleError> {
    let grid = source.grid(fleet)?;
    let name = source.window_name(&grid);
    // The tags are set in the same tmux invocation that makes the window: a watcher never sees
    // the window untagged.
    let options = [
        (LAYOUT_OPTION.to_string(), source.tag()),
        (GRID_OPTION.to_string(), grid_fingerprint(&grid)),
    ];
    let window = build_window_with_options(driver, &opts.session, &name, &grid, &options, |p| {
        panel_command(opts, p)
    })
    .await?;
    // Its panes come back if they die, like every console window's.
    driver
        .set_window_hook(window.window, RESPAWN_HOOK, RESPAWN_COMMAND)
        .await?;
    Ok(window)
}

/// What [`attach_session`] did.
#[derive(Debug)]
pub struct Console {
    pub state: SessionState,
    /// The windows built now (none when an existing session was reused).
    pub windows: Vec<ManagedWindow>,
}

/// Makes the operator's session: reuses it when it exists (never a duplicate); otherwise creates
/// it with the overview, selected. Component windows are built when first opened
/// ([`open_component`]).
///
/// A session this call created and could not finish (tmux refused a window, the terminal is too
/// small for a grid) is killed before the error is returned: a half-built session would
/// otherwise be taken as the console by the next attach. A session that existed before is never
/// killed, only added to.
pub async fn attach_session<D: TmuxDriver>(
    driver: &D,
    opts: &ConsoleOptions,
    fleet: &[String],
    size: (u16, u16),
) -> Result<Console, ConsoleError> {
    let state = ensure_session(
        driver,
        &NewSession {
            name: opts.session.clone(),
            window_name: "hms-starting".into(),
            width: size.0,
            height: size.1,
            command: None,
        },
    )
    .await?;
    driver
        .set_option(
            &OptionScope::Session(opts.session.clone()),
            CORE_OPTION,
            &opts.socket.to_string_lossy(),
        )
        .await?;
    if state == SessionState::Reused {
        let windows = driver.list_windows(&opts.session).await?;
        if windows.iter().any(|w| w.name == "overview") {
            keep_panes_alive(driver, &opts.session).await?;
            return Ok(Console {
                state,
                windows: Vec::new(),
            });
        }
    }
    match build_console(driver, opts, fleet).await {
        Ok(windows) => Ok(Console { state, windows }),
        Err(e) => {
            if state == SessionState::Created
                && let Err(kill) = driver.kill_session(&opts.session).await
            {
                tracing::warn!(
                    session = %opts.session,
                    cause = %kill,
                    "cannot remove the half-built session"
                );
            }
            Err(e)
        }
    }
}

/// The console's first window in a session that has none yet: the overview, the placeholder
/// window removed, the overview selected.
async fn build_console<D: TmuxDriver>(
    driver: &D,
    opts: &ConsoleOptions,
    fleet: &[String],
) -> Result<Vec<ManagedWindow>, ConsoleError> {
    let windows = vec![build(driver, opts, &LayoutSource::Overview, fleet).await?];
    // The placeholder window the session was created with.
    for w in driver.list_windows(&opts.session).await? {
        if w.name == "hms-starting" {
            driver.kill_window(w.id).await?;
        }
    }
    driver.select_window(windows[0].window).await?;
    keep_panes_alive(driver, &opts.session).await?;
    Ok(windows)
}

/// What [`open_component`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// The window existed and is now the session's current window.
    Shown(WindowId),
    /// The window was built now (with its hook) and selected.
    Built(WindowId),
}

impl Opened {
    /// What the operator is told.
    pub fn message(&self, component: &str) -> String {
        match self {
            Opened::Shown(_) => format!("window '{component}' shown"),
            Opened::Built(_) => format!("window '{component}' built and shown"),
        }
    }
}

/// Shows a component's TwoByTwo window, building it first when the session has none: the lazy
/// half of the console. The component must be in `fleet` (the error names the nearest known).
pub async fn open_component<D: TmuxDriver>(
    driver: &D,
    opts: &ConsoleOptions,
    component: &str,
    fleet: &[String],
) -> Result<Opened, ConsoleError> {
    let source = LayoutSource::TwoByTwo(Some(component.to_string()));
    // Checks the name before touching tmux.
    source.grid(fleet)?;
    let existing = driver
        .list_windows(&opts.session)
        .await?
        .into_iter()
        .find(|w| w.name == component);
    let opened = match existing {
        Some(w) => Opened::Shown(w.id),
        None => Opened::Built(build(driver, opts, &source, fleet).await?.window),
    };
    let (Opened::Shown(id) | Opened::Built(id)) = opened;
    driver.select_window(id).await?;
    Ok(opened)
}

/// Rebuilds a managed window's grid from tmux alone (its `@hms-layout` tag and pane list), for
/// re-laying it out.
pub async fn managed_from_tmux<D: TmuxDriver>(
    driver: &D,
    session: &str,
    window: WindowId,
    name: &str,
    tag: &str,
    fleet: &[String],
) -> Result<Option<ManagedWindow>, ConsoleError> {
    let Some(source) = LayoutSource::from_tag(tag) else {
        return Ok(None);
    };
    let grid = source.grid(fleet)?;
    let panes = driver.list_panes(window).await?;
    let compiled = crate::tmux::layout::compile(&grid, 80, 24)?;
    let order = compiled.leaf_panels();
    if order.len() != panes.len() {
        return Ok(None);
    }
    let mut ids: Vec<PaneId> = panes.iter().map(|p| p.id).collect();
    ids.sort_by_key(|p| p.0);
    Ok(Some(ManagedWindow {
        window,
        session: session.to_string(),
        name: name.to_string(),
        grid,
        panes: ids.into_iter().zip(order.iter().copied()).collect(),
    }))
}

/// The panel kind names accepted on the command line (`system-health` or `system_health`).
pub fn panel_kind(name: &str) -> Option<PanelKind> {
    let norm = name.replace('-', "_");
    PanelKind::ALL.into_iter().find(|k| k.name() == norm)
}

/// The absolute path of this program, for pane commands.
pub fn this_program() -> std::io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    Ok(exe
        .to_string_lossy()
        .strip_suffix(" (deleted)")
        .map_or(exe.clone(), PathBuf::from))
}

/// An absolute path for a layout file, so the tag stays valid from anywhere.
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(session: &str) -> ConsoleOptions {
        ConsoleOptions {
            session: session.into(),
            socket: "/tmp/core.sock".into(),
            data_dir: "/tmp/d".into(),
            exe: "/usr/bin/hms-console".into(),
            slim_panel: None,
            ascii: false,
        }
    }

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("c{i}")).collect()
    }

    #[tokio::test]
    async fn an_attach_that_fails_half_way_removes_the_session_it_created() {
        let tmux = crate::tmux::fake::FakeTmux::new();
        // Too small for the overview's grid: the session exists, its first window cannot.
        let err = attach_session(&tmux, &options("hms"), &names(4), (6, 4))
            .await
            .unwrap_err();
        assert!(matches!(err, ConsoleError::Tmux(_)), "{err:?}");
        let state = tmux.state();
        let windows: Vec<usize> = state.sessions.iter().map(|s| s.windows.len()).collect();
        assert_eq!(windows, [0], "nothing of the session is left: {state:?}");
        assert!(
            state.calls.iter().any(|c| c.starts_with("kill_window")),
            "{:?}",
            state.calls
        );
    }

    #[tokio::test]
    async fn an_attach_that_fails_on_an_existing_session_leaves_it_alone() {
        let tmux = crate::tmux::fake::FakeTmux::new();
        let spec = NewSession {
            name: "hms".into(),
            window_name: "mine".into(),
            width: 6,
            height: 4,
            command: None,
        };
        tmux.new_session(&spec).await.unwrap();
        attach_session(&tmux, &options("hms"), &names(4), (6, 4))
            .await
            .unwrap_err();
        let state = tmux.state();
        assert_eq!(state.sessions.len(), 1);
        assert_eq!(
            state.sessions[0].windows.len(),
            1,
            "the user's window stays"
        );
        assert!(
            !state.calls.iter().any(|c| c.starts_with("kill")),
            "{:?}",
            state.calls
        );
    }

    #[test]
    fn tags_round_trip() {
        for s in [
            LayoutSource::Overview,
            LayoutSource::TwoByTwo(Some("api".into())),
            LayoutSource::TwoByTwo(None),
            LayoutSource::Custom {
                rows: 3,
                cols: 3,
                components: Some(vec!["a".into(), "b".into()]),
            },
            LayoutSource::Custom {
                rows: 2,
                cols: 4,
                components: None,
            },
            LayoutSource::File("/x/y.toml".into()),
        ] {
            assert_eq!(LayoutSource::from_tag(&s.tag()), Some(s));
        }
    }

    #[test]
    fn the_overview_fits_the_fleet() {
        assert_eq!(overview_size(1), (3, 1));
        assert_eq!(overview_size(3), (3, 3));
        assert_eq!(overview_size(4), (3, 4));
        assert_eq!(overview_size(5), (4, 3));
        assert_eq!(overview_size(9), (5, 3));
        let fleet: Vec<String> = (0..5).map(|i| format!("c{i}")).collect();
        let grid = LayoutSource::Overview.grid(&fleet).unwrap();
        let tiles: Vec<&Panel> = grid
            .panels()
            .iter()
            .filter(|p| p.kind == PanelKind::Component)
            .collect();
        assert_eq!(tiles.len(), 5, "no empty tile");
        assert!(tiles.iter().all(|t| t.component.is_some()));
        let last = tiles
            .iter()
            .find(|t| t.component.as_deref() == Some("c4"))
            .unwrap();
        assert_eq!((last.row, last.col, last.colspan), (1, 1, 2));
    }

    #[test]
    fn a_large_fleet_folds_the_overview_into_the_health_table() {
        let grid = LayoutSource::Overview.grid(&names(100)).unwrap();
        let kinds: Vec<PanelKind> = grid.panels().iter().map(|p| p.kind).collect();
        assert_eq!(kinds, [PanelKind::SystemHealth, PanelKind::Actions]);
        let at_most = LayoutSource::Overview
            .grid(&names(OVERVIEW_TILES_MAX))
            .unwrap();
        let tiles = at_most
            .panels()
            .iter()
            .filter(|p| p.kind == PanelKind::Component)
            .count();
        assert_eq!(tiles, OVERVIEW_TILES_MAX, "tiles up to the limit");
    }

    #[tokio::test]
    async fn attach_builds_the_overview_only_and_open_builds_a_window_once() {
        let tmux = crate::tmux::fake::FakeTmux::new();
        let opts = options("hms");
        let console = attach_session(&tmux, &opts, &names(3), (200, 50))
            .await
            .unwrap();
        assert_eq!(console.windows.len(), 1, "the overview only");
        let first = open_component(&tmux, &opts, "c1", &names(3)).await.unwrap();
        let Opened::Built(id) = first else {
            panic!("built: {first:?}")
        };
        assert_eq!(
            open_component(&tmux, &opts, "c1", &names(3)).await.unwrap(),
            Opened::Shown(id)
        );
        let calls = tmux.state().calls;
        assert!(
            calls
                .iter()
                .any(|c| c.starts_with(&format!("set_window_hook {id} pane-died"))),
            "{calls:?}"
        );
        let err = open_component(&tmux, &opts, "c9", &names(3))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown component 'c9'"), "{err}");
        let err = open_component(&tmux, &opts, "cl", &names(3))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("did you mean"), "{err}");
    }

    #[test]
    fn grid_sizes_parse_and_bad_ones_are_explained() {
        assert_eq!(parse_grid_size("3x3").unwrap(), (3, 3));
        assert_eq!(parse_grid_size("2X4").unwrap(), (2, 4));
        assert!(parse_grid_size("0x3").is_err());
        assert!(
            parse_grid_size("three")
                .unwrap_err()
                .to_string()
                .contains("ROWSxCOLS")
        );
    }

    #[test]
    fn panel_commands_quote_every_word() {
        let opts = ConsoleOptions {
            session: "hms".into(),
            socket: "/tmp/it's here/core.sock".into(),
            data_dir: "/tmp/d".into(),
            exe: "/usr/bin/hms-console".into(),
            slim_panel: None,
            ascii: false,
        };
        let panel = Panel::new(PanelKind::SystemHealth, 0, 0).title("System Health");
        let cmd = panel_command(&opts, &panel);
        assert_eq!(
            cmd,
            "exec '/usr/bin/hms-console' --socket '/tmp/it'\\''s here/core.sock' --data-dir '/tmp/d' panel system-health --frameless --title 'System Health'"
        );
    }

    #[test]
    fn panes_run_the_slim_panel_with_the_same_arguments_when_there_is_one() {
        let mut opts = options("hms");
        opts.slim_panel = Some("/usr/bin/hms-panel".into());
        let panel = Panel::new(PanelKind::Logs, 0, 0).component("api");
        assert_eq!(
            panel_command(&opts, &panel),
            "exec '/usr/bin/hms-panel' --socket '/tmp/core.sock' --data-dir '/tmp/d' logs --frameless --component 'api' --title 'api Logs'"
        );
    }

    fn program(dir: &Path, name: &str, mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join(name);
        std::fs::write(&p, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn the_slim_panel_is_the_executable_beside_hms_console_and_only_that() {
        let dir = tempfile::tempdir().unwrap();
        let exe = program(dir.path(), "hms-console", 0o755);
        assert_eq!(slim_panel_beside(&exe), None, "none installed");
        let slim = program(dir.path(), SLIM_PANEL, 0o644);
        assert_eq!(slim_panel_beside(&exe), None, "not executable");
        let slim = program(
            dir.path(),
            slim.file_name().unwrap().to_str().unwrap(),
            0o755,
        );
        assert_eq!(slim_panel_beside(&exe), Some(slim.clone()));
        // A slim panel opening a window hands the panes the hms-console beside it, or the
        // hms-cli that carries out its commands when it is there.
        assert_eq!(console_program(slim.clone()), exe);
        assert_eq!(console_program(exe.clone()), exe);
        let full = program(dir.path(), crate::cli::FULL_PROGRAM, 0o755);
        assert_eq!(console_program(slim), full);
        assert_eq!(console_program(full.clone()), full);
    }

    /// Splits a command made of [`sh_quote`]d and bare words as `sh` would (no other quoting).
    fn sh_words(cmd: &str) -> Vec<String> {
        let mut words = Vec::new();
        let mut word: Option<String> = None;
        let mut chars = cmd.chars();
        while let Some(c) = chars.next() {
            match c {
                ' ' => words.extend(word.take()),
                '\\' => word.get_or_insert_default().extend(chars.next()),
                '\'' => {
                    let w = word.get_or_insert_default();
                    for q in chars.by_ref() {
                        if q == '\'' {
                            break;
                        }
                        w.push(q);
                    }
                }
                c => word.get_or_insert_default().push(c),
            }
        }
        words.extend(word);
        words
    }

    proptest::proptest! {
        /// Every pane command, for either program, starts the panel it was made for: the slim
        /// panel's parser and `hms-console panel` read the same words.
        #[test]
        fn pane_commands_parse_back_to_their_panel(
            kind in proptest::sample::select(PanelKind::ALL.to_vec()),
            component in proptest::option::of("[ -~]{1,10}"),
            title in proptest::option::of("[ -~]{1,10}"),
            socket in "/[ -~]{0,12}",
            ascii: bool,
            slim: bool,
        ) {
            use crate::panel::args::{Invocation, parse};
            let mut opts = options("hms");
            opts.socket = socket.clone().into();
            opts.ascii = ascii;
            opts.slim_panel = slim.then(|| "/opt/hms-panel".into());
            let mut panel = Panel::new(kind, 0, 0);
            panel.component = component.clone();
            panel.title = title;
            let words = sh_words(&panel_command(&opts, &panel));
            proptest::prop_assert_eq!(words[0].as_str(), "exec");
            // `exec`, then the program.
            let mut rest: Vec<String> = words[2..].to_vec();
            if !slim {
                let at = rest.iter().position(|w| w == "panel").expect("the panel word");
                rest.remove(at);
            }
            let parsed = parse(rest.iter().map(std::ffi::OsString::from));
            let Ok(Invocation::Run(a)) = parsed else {
                return Err(proptest::test_runner::TestCaseError::fail(format!("{parsed:?}")));
            };
            proptest::prop_assert_eq!(a.kind, kind);
            proptest::prop_assert_eq!(a.component, component);
            proptest::prop_assert_eq!(a.title, Some(panel.display_title()));
            proptest::prop_assert_eq!(a.socket, Some(PathBuf::from(socket)));
            proptest::prop_assert_eq!(a.data_dir, Some(PathBuf::from("/tmp/d")));
            proptest::prop_assert!(a.frameless);
            proptest::prop_assert_eq!(a.ascii, ascii);
        }
    }
}
