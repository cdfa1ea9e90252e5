//! Grid layouts: layout files, their validation, and the compiler from a grid to tmux's custom
//! layout string (guide §3.1 TwoByTwo, §3.2 Custom(rows, cols)).
//!
//! A [`Grid`] is rows × cols cells covered exactly once by [`Panel`]s with row/col spans. tmux can
//! only build a window by splitting a pane in two along a full straight line, so a grid is accepted
//! only if it can be cut recursively by full lines (a "guillotine" grid); the cuts are found once, at
//! validation, and kept as a tree that [`compile`] sizes for a window.
//!
//! The layout string format follows tmux 3.3a `layout-custom.c`: `CSUM,WxH,X,Y` followed by `{…}`
//! (children side by side), `[…]` (children stacked) or `,ID` for a pane; siblings are separated by
//! one cell of border; `CSUM` is a 16-bit rotate-and-add checksum of the rest, in 4 hex digits.
//! tmux ignores the pane ids when it reads a layout and hands the window's panes to the leaves in
//! order, so the leaf order of [`CompiledLayout`] is the pane order.
//!
//! This module is pure: it reads files only in [`Grid::load`], never talks to tmux, and knows
//! nothing of panel processes.

use std::fmt;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::model::PanelKind;

/// The most rows or columns a grid may have. Past that, panes in a normal terminal are too small to
/// show anything.
pub const MAX_TRACKS: u16 = 12;

/// Where an error is: a file (or the name of a programmatic grid) and, when known, a 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: Option<usize>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}", self.file, line),
            None => write!(f, "{}", self.file),
        }
    }
}

/// Why a layout is rejected. Messages name the place, the problem and what to change.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// The layout file could not be read.
    #[error("{file}: cannot read layout file: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a field is unknown, missing or of the wrong type.
    #[error("{at}: {message}")]
    Toml { at: Location, message: String },
    /// `rows` or `cols` is outside 1..=12.
    #[error("{at}: {field} = {value} is out of range; use a number from 1 to {MAX_TRACKS}")]
    GridSize {
        at: Location,
        field: &'static str,
        value: i64,
    },
    /// A panel's `row`/`col` is negative or its `rowspan`/`colspan` is below 1.
    #[error("{at}: {field} = {value} is invalid; {fix}")]
    BadNumber {
        at: Location,
        field: &'static str,
        value: i64,
        fix: &'static str,
    },
    /// A panel's `kind` is none of the panel kinds.
    #[error("{at}: unknown panel kind \"{kind}\"; use one of {}", kind_names())]
    UnknownKind { at: Location, kind: String },
    /// A panel reaches outside the grid.
    #[error(
        "{at}: panel {panel} covers rows {row_first}..={row_last}, cols {col_first}..={col_last}, \
         outside the {rows}x{cols} grid (rows 0..={}, cols 0..={}); move it or shrink its span",
        rows - 1,
        cols - 1
    )]
    OutOfGrid {
        at: Location,
        panel: String,
        row_first: u32,
        row_last: u32,
        col_first: u32,
        col_last: u32,
        rows: u16,
        cols: u16,
    },
    /// Two panels cover the same cell.
    #[error(
        "{at}: panel {panel} overlaps panel {other} ({other_at}) in cell (row {row}, col {col}); \
         every cell belongs to exactly one panel, so move one or shrink its span"
    )]
    Overlap {
        at: Location,
        panel: String,
        other: String,
        other_at: String,
        row: u16,
        col: u16,
    },
    /// Some cells are covered by no panel.
    #[error(
        "{at}: {} covered by no panel: {}; add a panel there or widen a neighbour's rowspan/colspan",
        if cells.len() == 1 { "this cell is" } else { "these cells are" },
        cells.iter().map(|(r, c)| format!("(row {r}, col {c})")).collect::<Vec<_>>().join(", ")
    )]
    EmptyCells {
        at: Location,
        /// (row, col) pairs in reading order.
        cells: Vec<(u16, u16)>,
    },
    /// The panels cannot be cut apart by full straight lines (the "pinwheel"), so tmux cannot
    /// build them.
    #[error(
        "{at}: rows {row_first}..={row_last}, cols {col_first}..={col_last} cannot be split by a \
         straight line running all the way across (a \"pinwheel\"): every row and column boundary \
         there is crossed by a panel (panels here: {crossing}); tmux builds a window only by splitting a pane in \
         two along a full line, so it cannot make this layout; change the spans so that one full \
         row or column boundary runs through this area"
    )]
    NotGuillotine {
        at: Location,
        row_first: u16,
        row_last: u16,
        col_first: u16,
        col_last: u16,
        /// The panels in the region, for the message.
        crossing: String,
    },
    /// A grid with no panels.
    #[error("{at}: the layout has no panels; add [[panel]] tables")]
    NoPanels { at: Location },
    /// More components than a custom grid has component slots.
    #[error(
        "a {rows}x{cols} grid has {slots} component slots but {given} components were given; \
         use a bigger grid or fewer components"
    )]
    TooManyComponents {
        rows: u16,
        cols: u16,
        slots: usize,
        given: usize,
    },
    /// The window is too small to give every track one cell plus the separators.
    #[error(
        "a {width}x{height} window is too small for the {rows}x{cols} grid of {name:?}; it needs \
         at least {min_width}x{min_height}"
    )]
    TooSmall {
        name: String,
        rows: u16,
        cols: u16,
        width: u16,
        height: u16,
        min_width: u32,
        min_height: u32,
    },
}

fn kind_names() -> String {
    PanelKind::ALL
        .iter()
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Looks a panel kind up by its layout-file name (`system_health`, …).
pub fn panel_kind_from_name(name: &str) -> Option<PanelKind> {
    PanelKind::ALL.into_iter().find(|k| k.name() == name)
}

/// One panel of a grid: which cells it covers and what it shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Panel {
    /// Top row, 0-based.
    pub row: u16,
    /// Left column, 0-based.
    pub col: u16,
    /// Rows covered, at least 1.
    pub rowspan: u16,
    /// Columns covered, at least 1.
    pub colspan: u16,
    pub kind: PanelKind,
    /// The component shown. `None` means "to be bound": see [`Grid::bind_fleet`] and
    /// [`Grid::for_component`].
    pub component: Option<String>,
    /// The pane title; `None` means [`Panel::display_title`]'s default.
    pub title: Option<String>,
}

impl Panel {
    /// A 1×1 panel at (row, col) with no component and no title.
    pub fn new(kind: PanelKind, row: u16, col: u16) -> Self {
        Panel {
            row,
            col,
            rowspan: 1,
            colspan: 1,
            kind,
            component: None,
            title: None,
        }
    }

    /// Sets the spans.
    pub fn span(mut self, rowspan: u16, colspan: u16) -> Self {
        self.rowspan = rowspan;
        self.colspan = colspan;
        self
    }

    /// Sets the component.
    pub fn component(mut self, component: impl Into<String>) -> Self {
        self.component = Some(component.into());
        self
    }

    /// Sets the title.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// The title to show: the explicit one, else a default from the kind and component
    /// ("api Metrics", "System Health", …).
    pub fn display_title(&self) -> String {
        if let Some(title) = &self.title {
            return title.clone();
        }
        let base = match self.kind {
            PanelKind::Metrics => "Metrics",
            PanelKind::Logs => "Logs",
            PanelKind::Status => "Health Status",
            PanelKind::Actions => "Actions",
            PanelKind::SystemHealth => "System Health",
            PanelKind::Component => "Component",
            PanelKind::Text => "Text",
        };
        match (&self.component, self.kind) {
            (Some(c), PanelKind::Component) => c.clone(),
            (Some(c), _) => format!("{c} {base}"),
            (None, _) => base.to_string(),
        }
    }

    fn label(&self) -> String {
        format!(
            "\"{}\" at (row {}, col {})",
            self.kind.name(),
            self.row,
            self.col
        )
    }
}

/// A validated grid layout. Every cell is covered by exactly one panel and the panels can be cut
/// apart by full straight lines; the only way to get a `Grid` is through a validating
/// constructor, so [`compile`] cannot meet a bad one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grid {
    name: String,
    rows: u16,
    cols: u16,
    panels: Vec<Panel>,
    /// The cuts found at validation; leaves index `panels`.
    tree: Node,
}

/// A rectangle of grid cells and how it is cut.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    rows: (u16, u16),
    cols: (u16, u16),
    cut: Cut,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Cut {
    Leaf(usize),
    /// Children stacked top to bottom (tmux `[]`).
    TopBottom(Vec<Node>),
    /// Children side by side (tmux `{}`).
    LeftRight(Vec<Node>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrid {
    name: String,
    rows: Spanned<i64>,
    cols: Spanned<i64>,
    #[serde(default)]
    panel: Vec<Spanned<RawPanel>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPanel {
    row: Spanned<i64>,
    col: Spanned<i64>,
    rowspan: Option<Spanned<i64>>,
    colspan: Option<Spanned<i64>>,
    kind: Spanned<String>,
    component: Option<String>,
    title: Option<String>,
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

impl Grid {
    /// Validates panels into a grid; errors name it `<layout NAME>`.
    pub fn new(
        name: impl Into<String>,
        rows: u16,
        cols: u16,
        panels: Vec<Panel>,
    ) -> Result<Grid, LayoutError> {
        let name = name.into();
        let source = format!("<layout {name}>");
        let n = panels.len();
        Grid::validate(name, rows, cols, panels, &source, &vec![None; n])
    }

    /// Reads and validates a layout file.
    pub fn load(path: &Path) -> Result<Grid, LayoutError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| LayoutError::Read {
            file: file.clone(),
            source,
        })?;
        Grid::from_toml_str(&text, &file)
    }

    /// Parses and validates layout TOML; `file` names it in error messages.
    pub fn from_toml_str(text: &str, file: &str) -> Result<Grid, LayoutError> {
        let at = |span: std::ops::Range<usize>| Location {
            file: file.to_string(),
            line: Some(line_of(text, span.start)),
        };
        let raw: RawGrid = toml::from_str(text).map_err(|e| LayoutError::Toml {
            at: Location {
                file: file.to_string(),
                line: e.span().map(|s| line_of(text, s.start)),
            },
            message: match e.message() {
                m if m.starts_with("missing field") => format!("{m}; add it"),
                m => m.to_string(),
            },
        })?;
        let track = |v: &Spanned<i64>, field: &'static str| -> Result<u16, LayoutError> {
            match u16::try_from(*v.get_ref()) {
                Ok(n) if (1..=MAX_TRACKS).contains(&n) => Ok(n),
                _ => Err(LayoutError::GridSize {
                    at: at(v.span()),
                    field,
                    value: *v.get_ref(),
                }),
            }
        };
        let rows = track(&raw.rows, "rows")?;
        let cols = track(&raw.cols, "cols")?;
        let mut panels = Vec::with_capacity(raw.panel.len());
        let mut lines = Vec::with_capacity(raw.panel.len());
        for spanned in &raw.panel {
            let p = spanned.get_ref();
            let position = |v: &Spanned<i64>, field| match u16::try_from(*v.get_ref()) {
                Ok(n) => Ok(n),
                Err(_) => Err(LayoutError::BadNumber {
                    at: at(v.span()),
                    field,
                    value: *v.get_ref(),
                    fix: "rows and columns count from 0",
                }),
            };
            let span = |v: &Option<Spanned<i64>>, field| match v {
                None => Ok(1),
                Some(v) => match u16::try_from(*v.get_ref()) {
                    Ok(n) if n >= 1 => Ok(n),
                    _ => Err(LayoutError::BadNumber {
                        at: at(v.span()),
                        field,
                        value: *v.get_ref(),
                        fix: "a span is at least 1 (leave it out for 1)",
                    }),
                },
            };
            let kind =
                panel_kind_from_name(p.kind.get_ref()).ok_or_else(|| LayoutError::UnknownKind {
                    at: at(p.kind.span()),
                    kind: p.kind.get_ref().clone(),
                })?;
            panels.push(Panel {
                row: position(&p.row, "row")?,
                col: position(&p.col, "col")?,
                rowspan: span(&p.rowspan, "rowspan")?,
                colspan: span(&p.colspan, "colspan")?,
                kind,
                component: p.component.clone(),
                title: p.title.clone(),
            });
            lines.push(Some(line_of(text, spanned.span().start)));
        }
        Grid::validate(raw.name, rows, cols, panels, file, &lines)
    }

    /// The guide's §3.1 TwoByTwo window for one component: Component Metrics, Component Logs,
    /// Health Status, Actions.
    pub fn two_by_two(component: &str) -> Grid {
        let panels = vec![
            Panel::new(PanelKind::Metrics, 0, 0)
                .component(component)
                .title("Component Metrics"),
            Panel::new(PanelKind::Logs, 0, 1)
                .component(component)
                .title("Component Logs"),
            Panel::new(PanelKind::Status, 1, 0)
                .component(component)
                .title("Health Status"),
            Panel::new(PanelKind::Actions, 1, 1)
                .component(component)
                .title("Actions"),
        ];
        Grid::new(component, 2, 2, panels).expect("the 2x2 grid is a fixed valid layout")
    }

    /// The guide's §3.2 multi-component overview, `Custom(rows, cols)`.
    ///
    /// - rows ≥ 3: the first rows − 2 rows are component tiles in reading order, then a full-width
    ///   System Health row, then a full-width System Actions row.
    /// - rows = 2: row 0 is component tiles, row 1 a full-width System Actions row (the tiles
    ///   already show each component's health, and an overview without an input line is useless).
    /// - rows = 1: component tiles only.
    ///
    /// `components` fills the tiles in order; tiles past its end are left unbound for
    /// [`Grid::bind_fleet`]. More components than tiles is an error.
    pub fn custom(rows: u16, cols: u16, components: &[String]) -> Result<Grid, LayoutError> {
        let name = format!("custom-{rows}x{cols}");
        for (field, value) in [("rows", rows), ("cols", cols)] {
            if !(1..=MAX_TRACKS).contains(&value) {
                return Err(LayoutError::GridSize {
                    at: Location {
                        file: format!("<layout {name}>"),
                        line: None,
                    },
                    field,
                    value: i64::from(value),
                });
            }
        }
        let tile_rows = match rows {
            1 => 1,
            2 => 1,
            _ => rows - 2,
        };
        let slots = usize::from(tile_rows) * usize::from(cols);
        if components.len() > slots {
            return Err(LayoutError::TooManyComponents {
                rows,
                cols,
                slots,
                given: components.len(),
            });
        }
        let mut panels = Vec::new();
        let mut names = components.iter();
        for row in 0..tile_rows {
            for col in 0..cols {
                let mut tile = Panel::new(PanelKind::Component, row, col);
                tile.component = names.next().cloned();
                panels.push(tile);
            }
        }
        if rows >= 3 {
            panels.push(
                Panel::new(PanelKind::SystemHealth, rows - 2, 0)
                    .span(1, cols)
                    .title("System Health"),
            );
        }
        if rows >= 2 {
            panels.push(
                Panel::new(PanelKind::Actions, rows - 1, 0)
                    .span(1, cols)
                    .title("System Actions"),
            );
        }
        Grid::new(name, rows, cols, panels)
    }

    /// Binds unbound `component` tiles to the fleet: each tile without a `component` gets the next
    /// fleet component, in fleet order, that no panel of the grid names already. Tiles left over
    /// when the fleet runs out stay unbound (their panel shows an empty slot); fleet components
    /// left over are not shown.
    pub fn bind_fleet(&self, fleet: &[String]) -> Grid {
        let named: Vec<&String> = self
            .panels
            .iter()
            .filter_map(|p| p.component.as_ref())
            .collect();
        let mut free = fleet.iter().filter(|c| !named.contains(c));
        let mut grid = self.clone();
        for panel in &mut grid.panels {
            if panel.kind == PanelKind::Component && panel.component.is_none() {
                panel.component = free.next().cloned();
            }
        }
        grid
    }

    /// Binds every panel without a `component`, except system-wide ones (system_health, and
    /// `component` tiles, which are fleet slots), to `component`: this turns a per-component
    /// layout such as `twobytwo.toml` into the window of one component.
    pub fn for_component(&self, component: &str) -> Grid {
        let mut grid = self.clone();
        for panel in &mut grid.panels {
            let per_component = match panel.kind {
                PanelKind::Metrics
                | PanelKind::Logs
                | PanelKind::Status
                | PanelKind::Actions
                | PanelKind::Text => true,
                PanelKind::SystemHealth | PanelKind::Component => false,
            };
            if per_component && panel.component.is_none() {
                panel.component = Some(component.to_string());
            }
        }
        grid
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn rows(&self) -> u16 {
        self.rows
    }

    pub fn cols(&self) -> u16 {
        self.cols
    }

    /// The panels in the order they were given (file order).
    pub fn panels(&self) -> &[Panel] {
        &self.panels
    }

    /// The smallest window this grid compiles for: one cell per track plus the separators.
    pub fn min_size(&self) -> (u32, u32) {
        (2 * u32::from(self.cols) - 1, 2 * u32::from(self.rows) - 1)
    }

    fn validate(
        name: String,
        rows: u16,
        cols: u16,
        panels: Vec<Panel>,
        file: &str,
        lines: &[Option<usize>],
    ) -> Result<Grid, LayoutError> {
        let at = |i: Option<usize>| Location {
            file: file.to_string(),
            line: i.and_then(|i| lines.get(i).copied().flatten()),
        };
        if panels.is_empty() {
            return Err(LayoutError::NoPanels { at: at(None) });
        }
        for (field, value) in [("rows", rows), ("cols", cols)] {
            if !(1..=MAX_TRACKS).contains(&value) {
                return Err(LayoutError::GridSize {
                    at: at(None),
                    field,
                    value: i64::from(value),
                });
            }
        }
        // owner[r][c] = index of the panel covering the cell.
        let mut owner = vec![vec![None::<usize>; usize::from(cols)]; usize::from(rows)];
        for (i, p) in panels.iter().enumerate() {
            let row_end = u32::from(p.row) + u32::from(p.rowspan);
            let col_end = u32::from(p.col) + u32::from(p.colspan);
            if p.rowspan == 0 || p.colspan == 0 {
                return Err(LayoutError::BadNumber {
                    at: at(Some(i)),
                    field: if p.rowspan == 0 { "rowspan" } else { "colspan" },
                    value: 0,
                    fix: "a span is at least 1 (leave it out for 1)",
                });
            }
            if row_end > u32::from(rows) || col_end > u32::from(cols) {
                return Err(LayoutError::OutOfGrid {
                    at: at(Some(i)),
                    panel: p.label(),
                    row_first: u32::from(p.row),
                    row_last: row_end - 1,
                    col_first: u32::from(p.col),
                    col_last: col_end - 1,
                    rows,
                    cols,
                });
            }
            for r in p.row..p.row + p.rowspan {
                for c in p.col..p.col + p.colspan {
                    let cell = &mut owner[usize::from(r)][usize::from(c)];
                    if let Some(other) = *cell {
                        return Err(LayoutError::Overlap {
                            at: at(Some(i)),
                            panel: p.label(),
                            other: panels[other].label(),
                            other_at: match lines.get(other).copied().flatten() {
                                Some(line) => format!("line {line}"),
                                None => format!("panel #{}", other + 1),
                            },
                            row: r,
                            col: c,
                        });
                    }
                    *cell = Some(i);
                }
            }
        }
        let empty: Vec<(u16, u16)> = (0..rows)
            .flat_map(|r| (0..cols).map(move |c| (r, c)))
            .filter(|&(r, c)| owner[usize::from(r)][usize::from(c)].is_none())
            .collect();
        if !empty.is_empty() {
            return Err(LayoutError::EmptyCells {
                at: at(None),
                cells: empty,
            });
        }
        let all: Vec<usize> = (0..panels.len()).collect();
        let tree = cut(&panels, &all, (0, rows), (0, cols)).map_err(|(rows, cols, inside)| {
            LayoutError::NotGuillotine {
                at: at(inside.first().copied()),
                row_first: rows.0,
                row_last: rows.1 - 1,
                col_first: cols.0,
                col_last: cols.1 - 1,
                crossing: inside
                    .iter()
                    .map(|&i| panels[i].label())
                    .collect::<Vec<_>>()
                    .join(", "),
            }
        })?;
        Ok(Grid {
            name,
            rows,
            cols,
            panels,
            tree,
        })
    }
}

/// Region that cannot be cut: its rows, cols and the panels inside.
type Uncuttable = ((u16, u16), (u16, u16), Vec<usize>);

/// Cuts the region (`rows`, `cols`, half-open) holding `inside` into a tree. Rows are tried first
/// so a stack of full-width rows (the §3.2 overview) becomes one flat `[]`.
fn cut(
    panels: &[Panel],
    inside: &[usize],
    rows: (u16, u16),
    cols: (u16, u16),
) -> Result<Node, Uncuttable> {
    if let [only] = inside {
        return Ok(Node {
            rows,
            cols,
            cut: Cut::Leaf(*only),
        });
    }
    // A boundary b (between track b-1 and b) is a full cut if no panel crosses it.
    let row_cuts: Vec<u16> = (rows.0 + 1..rows.1)
        .filter(|&b| {
            inside.iter().all(|&i| {
                let p = &panels[i];
                !(p.row < b && b < p.row + p.rowspan)
            })
        })
        .collect();
    let col_cuts: Vec<u16> = (cols.0 + 1..cols.1)
        .filter(|&b| {
            inside.iter().all(|&i| {
                let p = &panels[i];
                !(p.col < b && b < p.col + p.colspan)
            })
        })
        .collect();
    if !row_cuts.is_empty() {
        let mut children = Vec::new();
        let bounds: Vec<u16> = std::iter::once(rows.0)
            .chain(row_cuts)
            .chain(std::iter::once(rows.1))
            .collect();
        for w in bounds.windows(2) {
            let part: Vec<usize> = inside
                .iter()
                .copied()
                .filter(|&i| panels[i].row >= w[0] && panels[i].row < w[1])
                .collect();
            children.push(cut(panels, &part, (w[0], w[1]), cols)?);
        }
        Ok(Node {
            rows,
            cols,
            cut: Cut::TopBottom(children),
        })
    } else if !col_cuts.is_empty() {
        let mut children = Vec::new();
        let bounds: Vec<u16> = std::iter::once(cols.0)
            .chain(col_cuts)
            .chain(std::iter::once(cols.1))
            .collect();
        for w in bounds.windows(2) {
            let part: Vec<usize> = inside
                .iter()
                .copied()
                .filter(|&i| panels[i].col >= w[0] && panels[i].col < w[1])
                .collect();
            children.push(cut(panels, &part, rows, (w[0], w[1]))?);
        }
        Ok(Node {
            rows,
            cols,
            cut: Cut::LeftRight(children),
        })
    } else {
        Err((rows, cols, inside.to_vec()))
    }
}

/// A rectangle of terminal cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rect {
    pub x: u16,
    pub y: u16,
    pub width: u16,
    pub height: u16,
}

/// One cell of a tmux layout: a pane or a split, as tmux prints it in `#{window_layout}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutCell {
    pub rect: Rect,
    pub content: CellContent,
}

/// What a layout cell holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CellContent {
    /// A pane; tmux prints the pane id number (`%N` without the `%`), which it ignores on input.
    Pane(Option<u32>),
    /// Children side by side, `{…}`.
    LeftRight(Vec<LayoutCell>),
    /// Children stacked, `[…]`.
    TopBottom(Vec<LayoutCell>),
}

/// tmux's layout checksum (`layout_checksum` in layout-custom.c): rotate right by one bit, add
/// the byte, in 16 bits.
pub fn checksum(body: &str) -> u16 {
    body.bytes().fold(0u16, |csum, b| {
        let rotated = (csum >> 1) | ((csum & 1) << 15);
        rotated.wrapping_add(u16::from(b))
    })
}

/// A layout string tmux did not or would not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutParseError {
    /// The string does not start with four hex digits and a comma.
    #[error("layout {0:?} does not start with a 4-digit hex checksum")]
    NoChecksum(String),
    /// The checksum does not match the rest.
    #[error("layout checksum {found:04x} does not match {expected:04x}")]
    Checksum { found: u16, expected: u16 },
    /// The body is malformed at a byte offset.
    #[error("layout is malformed at byte {at}: {what}")]
    Syntax { at: usize, what: &'static str },
}

impl LayoutCell {
    /// Parses a layout string as tmux prints it (`#{window_layout}`, `%layout-change`).
    pub fn parse(layout: &str) -> Result<LayoutCell, LayoutParseError> {
        let (csum, body) = match layout.split_once(',') {
            Some((c, b)) if c.len() == 4 => (c, b),
            _ => return Err(LayoutParseError::NoChecksum(layout.to_string())),
        };
        let found = u16::from_str_radix(csum, 16)
            .map_err(|_| LayoutParseError::NoChecksum(layout.to_string()))?;
        let expected = checksum(body);
        if found != expected {
            return Err(LayoutParseError::Checksum { found, expected });
        }
        let mut parser = Parser {
            bytes: body.as_bytes(),
            pos: 0,
        };
        let cell = parser.cell()?;
        if parser.pos != body.len() {
            return Err(LayoutParseError::Syntax {
                at: parser.pos,
                what: "trailing characters",
            });
        }
        Ok(cell)
    }

    /// The layout string with its checksum, as tmux reads and prints it.
    pub fn to_layout_string(&self) -> String {
        let mut body = String::new();
        self.write_body(&mut body);
        format!("{:04x},{body}", checksum(&body))
    }

    fn write_body(&self, out: &mut String) {
        use std::fmt::Write;
        let r = self.rect;
        let _ = write!(out, "{}x{},{},{}", r.width, r.height, r.x, r.y);
        let (open, close, children) = match &self.content {
            CellContent::Pane(Some(id)) => {
                let _ = write!(out, ",{id}");
                return;
            }
            CellContent::Pane(None) => return,
            CellContent::LeftRight(c) => ('{', '}', c),
            CellContent::TopBottom(c) => ('[', ']', c),
        };
        out.push(open);
        for (i, child) in children.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            child.write_body(out);
        }
        out.push(close);
    }

    /// The panes in layout order (depth first), which is the order tmux assigns panes.
    pub fn leaves(&self) -> Vec<(Rect, Option<u32>)> {
        let mut out = Vec::new();
        self.collect_leaves(&mut out);
        out
    }

    fn collect_leaves(&self, out: &mut Vec<(Rect, Option<u32>)>) {
        match &self.content {
            CellContent::Pane(id) => out.push((self.rect, *id)),
            CellContent::LeftRight(c) | CellContent::TopBottom(c) => {
                for child in c {
                    child.collect_leaves(out);
                }
            }
        }
    }

    /// Same cells and nesting, pane ids ignored.
    pub fn same_shape(&self, other: &LayoutCell) -> bool {
        if self.rect != other.rect {
            return false;
        }
        match (&self.content, &other.content) {
            (CellContent::Pane(_), CellContent::Pane(_)) => true,
            (CellContent::LeftRight(a), CellContent::LeftRight(b))
            | (CellContent::TopBottom(a), CellContent::TopBottom(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same_shape(y))
            }
            _ => false,
        }
    }

    fn set_pane_ids(&mut self, ids: &mut impl Iterator<Item = u32>) {
        match &mut self.content {
            CellContent::Pane(id) => *id = ids.next(),
            CellContent::LeftRight(c) | CellContent::TopBottom(c) => {
                for child in c {
                    child.set_pane_ids(ids);
                }
            }
        }
    }
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn number(&mut self) -> Result<u32, LayoutParseError> {
        let start = self.pos;
        let mut n: u32 = 0;
        while let Some(&b) = self.bytes.get(self.pos) {
            if !b.is_ascii_digit() {
                break;
            }
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u32::from(b - b'0')))
                .ok_or(LayoutParseError::Syntax {
                    at: start,
                    what: "number too large",
                })?;
            self.pos += 1;
        }
        if self.pos == start {
            return Err(LayoutParseError::Syntax {
                at: start,
                what: "expected a number",
            });
        }
        Ok(n)
    }

    fn size(&mut self) -> Result<u16, LayoutParseError> {
        let at = self.pos;
        u16::try_from(self.number()?).map_err(|_| LayoutParseError::Syntax {
            at,
            what: "size out of range",
        })
    }

    fn expect(&mut self, c: u8, what: &'static str) -> Result<(), LayoutParseError> {
        if self.bytes.get(self.pos) == Some(&c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(LayoutParseError::Syntax { at: self.pos, what })
        }
    }

    fn cell(&mut self) -> Result<LayoutCell, LayoutParseError> {
        let width = self.size()?;
        self.expect(b'x', "expected 'x'")?;
        let height = self.size()?;
        self.expect(b',', "expected ','")?;
        let x = self.size()?;
        self.expect(b',', "expected ','")?;
        let y = self.size()?;
        let rect = Rect {
            x,
            y,
            width,
            height,
        };
        // Like tmux: ",N" is a pane id unless the digits are followed by 'x' (the next cell).
        let mut id = None;
        if self.bytes.get(self.pos) == Some(&b',') {
            let saved = self.pos;
            self.pos += 1;
            let n = self.number();
            if self.bytes.get(self.pos) == Some(&b'x') {
                self.pos = saved;
            } else {
                id = Some(n?);
            }
        }
        let (close, left_right) = match self.bytes.get(self.pos) {
            Some(b'{') => (b'}', true),
            Some(b'[') => (b']', false),
            _ => {
                return Ok(LayoutCell {
                    rect,
                    content: CellContent::Pane(id),
                });
            }
        };
        let mut children = Vec::new();
        loop {
            self.pos += 1;
            children.push(self.cell()?);
            match self.bytes.get(self.pos) {
                Some(b',') => continue,
                Some(&c) if c == close => {
                    self.pos += 1;
                    break;
                }
                _ => {
                    return Err(LayoutParseError::Syntax {
                        at: self.pos,
                        what: "expected ',' or a closing bracket",
                    });
                }
            }
        }
        Ok(LayoutCell {
            rect,
            content: if left_right {
                CellContent::LeftRight(children)
            } else {
                CellContent::TopBottom(children)
            },
        })
    }
}

/// A grid sized for one window: the layout tree and which panel each leaf shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledLayout {
    root: LayoutCell,
    /// `leaf_panels[i]` is the index into [`Grid::panels`] of the panel in the i-th leaf.
    leaf_panels: Vec<usize>,
}

impl CompiledLayout {
    /// The layout string for `select-layout`, with pane ids 0, 1, 2 … (tmux ignores them).
    pub fn layout_string(&self) -> String {
        self.root.to_layout_string()
    }

    /// The layout string with the window's real pane ids (numbers of `%N`) in leaf order: what
    /// tmux prints back in `#{window_layout}` once the layout is applied.
    pub fn layout_string_with_ids(&self, ids: &[u32]) -> String {
        let mut root = self.root.clone();
        root.set_pane_ids(&mut ids.iter().copied());
        root.to_layout_string()
    }

    /// The order in which tmux gives panes to panels: when the layout is applied, the window's
    /// i-th pane (pane index order) fills leaf i, which shows `grid.panels()[leaf_panels()[i]]`.
    pub fn leaf_panels(&self) -> &[usize] {
        &self.leaf_panels
    }

    /// The leaves' rectangles in leaf order.
    pub fn leaf_rects(&self) -> Vec<Rect> {
        self.root.leaves().into_iter().map(|(r, _)| r).collect()
    }

    /// The root cell.
    pub fn root(&self) -> &LayoutCell {
        &self.root
    }

    /// The window size this layout is for.
    pub fn size(&self) -> (u16, u16) {
        (self.root.rect.width, self.root.rect.height)
    }
}

/// Splits `total` cells into `n` tracks separated by one-cell borders; the remainder goes one
/// cell each to the first tracks. Returns each track's start and size.
fn tracks(total: u16, n: u16) -> Vec<(u16, u16)> {
    let content = total - (n - 1);
    let base = content / n;
    let extra = content % n;
    let mut out = Vec::with_capacity(usize::from(n));
    let mut pos = 0;
    for i in 0..n {
        let size = base + u16::from(i < extra);
        out.push((pos, size));
        pos += size + 1;
    }
    out
}

/// Sizes a grid for a `width` × `height` window.
pub fn compile(grid: &Grid, width: u16, height: u16) -> Result<CompiledLayout, LayoutError> {
    let (min_width, min_height) = grid.min_size();
    if u32::from(width) < min_width || u32::from(height) < min_height {
        return Err(LayoutError::TooSmall {
            name: grid.name.clone(),
            rows: grid.rows,
            cols: grid.cols,
            width,
            height,
            min_width,
            min_height,
        });
    }
    let col_tracks = tracks(width, grid.cols);
    let row_tracks = tracks(height, grid.rows);
    let mut leaf_panels = Vec::with_capacity(grid.panels.len());
    let root = size_node(&grid.tree, &row_tracks, &col_tracks, &mut leaf_panels);
    Ok(CompiledLayout { root, leaf_panels })
}

fn span_rect(tracks: &[(u16, u16)], range: (u16, u16)) -> (u16, u16) {
    let (start, _) = tracks[usize::from(range.0)];
    let (last_start, last_size) = tracks[usize::from(range.1 - 1)];
    (start, last_start + last_size - start)
}

fn size_node(
    node: &Node,
    rows: &[(u16, u16)],
    cols: &[(u16, u16)],
    leaf_panels: &mut Vec<usize>,
) -> LayoutCell {
    let (y, height) = span_rect(rows, node.rows);
    let (x, width) = span_rect(cols, node.cols);
    let rect = Rect {
        x,
        y,
        width,
        height,
    };
    let content = match &node.cut {
        Cut::Leaf(panel) => {
            let id = u32::try_from(leaf_panels.len()).unwrap_or(u32::MAX);
            leaf_panels.push(*panel);
            CellContent::Pane(Some(id))
        }
        Cut::TopBottom(children) => CellContent::TopBottom(
            children
                .iter()
                .map(|c| size_node(c, rows, cols, leaf_panels))
                .collect(),
        ),
        Cut::LeftRight(children) => CellContent::LeftRight(
            children
                .iter()
                .map(|c| size_node(c, rows, cols, leaf_panels))
                .collect(),
        ),
    };
    LayoutCell { rect, content }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Each pair: a grid compiled for a size, and the `#{window_layout}` a real tmux 3.3a printed
    // after `select-layout` with the compiled string (pane ids are that server's).
    const TMUX_2X2_80X24: &str = "974c,80x24,0,0[80x12,0,0{40x12,0,0,1,39x12,41,0,2},80x11,0,13{40x11,0,13,3,39x11,41,13,4}]";
    const TMUX_2X2_200X50: &str = "676e,200x50,0,0[200x25,0,0{100x25,0,0,5,99x25,101,0,6},200x24,0,26{100x24,0,26,7,99x24,101,26,8}]";
    const TMUX_3X3_80X24: &str =
        "cf24,80x24,0,0[80x8,0,0{26x8,0,0,9,26x8,27,0,10,26x8,54,0,11},80x7,0,9,12,80x7,0,17,13]";
    const TMUX_3X3_120X40: &str = "e3ed,120x40,0,0[120x13,0,0{40x13,0,0,14,39x13,41,0,15,39x13,81,0,16},120x13,0,14,17,120x12,0,28,18]";
    const TMUX_OPS_WIDE_200X50: &str = "b289,200x50,0,0[200x33,0,0{50x33,0,0,19,49x33,51,0[49x16,51,0,20,49x16,51,17,21],49x33,101,0[49x16,101,0,22,49x16,101,17,23],49x33,151,0[49x16,151,0,24,49x16,151,17,25]},200x16,0,34,26]";
    const TMUX_1X1_80X24: &str = "d966,80x24,0,0,27";
    const TMUX_4X5_97X31: &str = "3d66,97x31,0,0[97x7,0,0{19x7,0,0,28,19x7,20,0,29,19x7,40,0,30,18x7,60,0,31,18x7,79,0,32},97x7,0,8{19x7,0,8,33,19x7,20,8,34,19x7,40,8,35,18x7,60,8,36,18x7,79,8,37},97x7,0,16,38,97x7,0,24,39]";

    fn ids(layout: &str) -> Vec<u32> {
        LayoutCell::parse(layout)
            .unwrap()
            .leaves()
            .into_iter()
            .map(|(_, id)| id.unwrap())
            .collect()
    }

    fn assert_matches_tmux(grid: &Grid, width: u16, height: u16, tmux: &str) {
        let compiled = compile(grid, width, height).unwrap();
        assert_eq!(compiled.layout_string_with_ids(&ids(tmux)), tmux);
    }

    fn ops_wide() -> Grid {
        Grid::from_toml_str(include_str!("../../../layouts/ops-wide.toml"), "ops-wide.toml").unwrap()
    }

    #[test]
    fn checksum_matches_what_tmux_printed() {
        for layout in [
            TMUX_2X2_80X24,
            TMUX_2X2_200X50,
            TMUX_3X3_80X24,
            TMUX_3X3_120X40,
            TMUX_OPS_WIDE_200X50,
            TMUX_1X1_80X24,
            TMUX_4X5_97X31,
        ] {
            let (csum, body) = layout.split_once(',').unwrap();
            assert_eq!(format!("{:04x}", checksum(body)), csum, "{layout}");
        }
    }

    #[test]
    fn checksum_wraps_instead_of_overflowing() {
        // A long body drives the 16-bit sum past u16::MAX many times; the fold must wrap.
        let body = "9".repeat(10_000);
        let expected = body.bytes().fold(0u32, |c, b| {
            (((c >> 1) | ((c & 1) << 15)) + u32::from(b)) & 0xffff
        });
        assert_eq!(u32::from(checksum(&body)), expected);
        assert_eq!(checksum(""), 0);
    }

    #[test]
    fn two_by_two_compiles_to_what_tmux_reads_back() {
        let grid = Grid::two_by_two("api");
        assert_matches_tmux(&grid, 80, 24, TMUX_2X2_80X24);
        assert_matches_tmux(&grid, 200, 50, TMUX_2X2_200X50);
    }

    #[test]
    fn custom_grids_compile_to_what_tmux_reads_back() {
        let grid = Grid::custom(3, 3, &[]).unwrap();
        assert_matches_tmux(&grid, 80, 24, TMUX_3X3_80X24);
        assert_matches_tmux(&grid, 120, 40, TMUX_3X3_120X40);
        assert_matches_tmux(&Grid::custom(1, 1, &[]).unwrap(), 80, 24, TMUX_1X1_80X24);
        assert_matches_tmux(&Grid::custom(4, 5, &[]).unwrap(), 97, 31, TMUX_4X5_97X31);
    }

    #[test]
    fn spanning_layout_compiles_to_what_tmux_reads_back() {
        assert_matches_tmux(&ops_wide(), 200, 50, TMUX_OPS_WIDE_200X50);
    }

    #[test]
    fn parsing_a_tmux_layout_round_trips() {
        for layout in [TMUX_3X3_120X40, TMUX_OPS_WIDE_200X50, TMUX_1X1_80X24] {
            assert_eq!(
                LayoutCell::parse(layout).unwrap().to_layout_string(),
                layout
            );
        }
    }

    #[test]
    fn parse_rejects_bad_checksum_and_garbage() {
        assert!(matches!(
            LayoutCell::parse("0000,80x24,0,0,1"),
            Err(LayoutParseError::Checksum { .. })
        ));
        assert!(matches!(
            LayoutCell::parse("80x24,0,0,1"),
            Err(LayoutParseError::NoChecksum(_))
        ));
        let body = "80x24,0,0{40x24,0,0,1";
        let bad = format!("{:04x},{body}", checksum(body));
        assert!(matches!(
            LayoutCell::parse(&bad),
            Err(LayoutParseError::Syntax { .. })
        ));
    }

    #[test]
    fn parse_accepts_leaves_without_pane_ids() {
        let body = "80x24,0,0{40x24,0,0,39x24,41,0}";
        let cell = LayoutCell::parse(&format!("{:04x},{body}", checksum(body))).unwrap();
        assert_eq!(cell.leaves().len(), 2);
        assert!(cell.leaves().iter().all(|(_, id)| id.is_none()));
    }

    #[test]
    fn leaf_order_is_reading_order_of_the_cuts() {
        let grid = ops_wide();
        let compiled = compile(&grid, 200, 50).unwrap();
        let kinds: Vec<&str> = compiled
            .leaf_panels()
            .iter()
            .map(|&i| grid.panels()[i].kind.name())
            .collect();
        assert_eq!(
            kinds,
            [
                "system_health",
                "component",
                "component",
                "component",
                "component",
                "component",
                "component",
                "actions"
            ]
        );
        // Column-major inside the tiles: (0,1), (1,1), (0,2), …
        let tile_cells: Vec<(u16, u16)> = compiled.leaf_panels()[1..7]
            .iter()
            .map(|&i| (grid.panels()[i].row, grid.panels()[i].col))
            .collect();
        assert_eq!(tile_cells, [(0, 1), (1, 1), (0, 2), (1, 2), (0, 3), (1, 3)]);
    }

    #[test]
    fn custom_3x3_follows_the_guide() {
        let names: Vec<String> = ["component1", "component2", "component3"]
            .map(String::from)
            .to_vec();
        let grid = Grid::custom(3, 3, &names).unwrap();
        let p = grid.panels();
        assert_eq!(p.len(), 5);
        for (i, name) in names.iter().enumerate() {
            assert_eq!(p[i].kind, PanelKind::Component);
            assert_eq!((p[i].row, p[i].col), (0, i as u16));
            assert_eq!(p[i].component.as_ref(), Some(name));
        }
        assert_eq!(
            (p[3].kind, p[3].row, p[3].colspan, p[3].display_title()),
            (PanelKind::SystemHealth, 1, 3, "System Health".to_string())
        );
        assert_eq!(
            (p[4].kind, p[4].row, p[4].colspan, p[4].display_title()),
            (PanelKind::Actions, 2, 3, "System Actions".to_string())
        );
    }

    #[test]
    fn custom_small_grids_keep_an_actions_row_when_they_can() {
        let two = Grid::custom(2, 4, &[]).unwrap();
        assert_eq!(two.panels().len(), 5);
        assert_eq!(two.panels()[4].kind, PanelKind::Actions);
        let one = Grid::custom(1, 3, &[]).unwrap();
        assert!(one.panels().iter().all(|p| p.kind == PanelKind::Component));
    }

    #[test]
    fn custom_rejects_too_many_components_and_bad_sizes() {
        let five: Vec<String> = (1..=5).map(|i| format!("c{i}")).collect();
        let err = Grid::custom(3, 3, &five).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a 3x3 grid has 3 component slots but 5 components were given; use a bigger grid or \
             fewer components"
        );
        assert!(matches!(
            Grid::custom(13, 1, &[]),
            Err(LayoutError::GridSize { field: "rows", .. })
        ));
        assert!(matches!(
            Grid::custom(1, 0, &[]),
            Err(LayoutError::GridSize { field: "cols", .. })
        ));
    }

    #[test]
    fn two_by_two_follows_the_guide() {
        let grid = Grid::two_by_two("api");
        let got: Vec<(PanelKind, u16, u16, String)> = grid
            .panels()
            .iter()
            .map(|p| (p.kind, p.row, p.col, p.display_title()))
            .collect();
        assert_eq!(
            got,
            [
                (PanelKind::Metrics, 0, 0, "Component Metrics".into()),
                (PanelKind::Logs, 0, 1, "Component Logs".into()),
                (PanelKind::Status, 1, 0, "Health Status".into()),
                (PanelKind::Actions, 1, 1, "Actions".into()),
            ]
        );
        assert!(
            grid.panels()
                .iter()
                .all(|p| p.component.as_deref() == Some("api"))
        );
    }

    #[test]
    fn bind_fleet_fills_slots_in_order_skipping_pinned_components() {
        let panels = vec![
            Panel::new(PanelKind::Component, 0, 0),
            Panel::new(PanelKind::Component, 0, 1).component("db"),
            Panel::new(PanelKind::Component, 0, 2),
            Panel::new(PanelKind::Component, 0, 3),
        ];
        let grid = Grid::new("t", 1, 4, panels).unwrap();
        let fleet: Vec<String> = ["api", "db", "worker"].map(String::from).to_vec();
        let bound = grid.bind_fleet(&fleet);
        let got: Vec<Option<&str>> = bound
            .panels()
            .iter()
            .map(|p| p.component.as_deref())
            .collect();
        assert_eq!(got, [Some("api"), Some("db"), Some("worker"), None]);
    }

    #[test]
    fn for_component_binds_per_component_panels_only() {
        let panels = vec![
            Panel::new(PanelKind::Logs, 0, 0),
            Panel::new(PanelKind::SystemHealth, 0, 1),
            Panel::new(PanelKind::Component, 0, 2),
        ];
        let grid = Grid::new("t", 1, 3, panels).unwrap().for_component("api");
        let got: Vec<Option<&str>> = grid
            .panels()
            .iter()
            .map(|p| p.component.as_deref())
            .collect();
        assert_eq!(got, [Some("api"), None, None]);
    }

    #[test]
    fn pinwheel_is_rejected_with_the_reason() {
        let panels = vec![
            Panel::new(PanelKind::Text, 0, 0).span(1, 2),
            Panel::new(PanelKind::Text, 0, 2).span(2, 1),
            Panel::new(PanelKind::Text, 1, 0).span(2, 1),
            Panel::new(PanelKind::Text, 2, 1).span(1, 2),
            Panel::new(PanelKind::Text, 1, 1),
        ];
        let err = Grid::new("pin", 3, 3, panels).unwrap_err();
        assert!(matches!(err, LayoutError::NotGuillotine { .. }), "{err}");
        assert!(err.to_string().contains("pinwheel"));
        assert!(
            err.to_string()
                .contains("tmux builds a window only by splitting")
        );
    }

    #[test]
    fn too_small_window_is_an_error() {
        let grid = Grid::custom(3, 3, &[]).unwrap();
        assert!(compile(&grid, 5, 5).is_ok());
        let err = compile(&grid, 4, 5).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a 4x5 window is too small for the 3x3 grid of \"custom-3x3\"; it needs at least 5x5"
        );
    }

    /// Cuts a region at random into a guillotine set of panels, driven by `rng`.
    fn random_guillotine(rng: &mut u64, rows: (u16, u16), cols: (u16, u16), out: &mut Vec<Panel>) {
        let mut next = |n: u64| {
            *rng ^= *rng << 13;
            *rng ^= *rng >> 7;
            *rng ^= *rng << 17;
            *rng % n
        };
        let h = rows.1 - rows.0;
        let w = cols.1 - cols.0;
        let choice = next(4);
        if (h == 1 && w == 1) || choice == 0 {
            let kind = PanelKind::ALL[next(7) as usize];
            out.push(Panel::new(kind, rows.0, cols.0).span(h, w));
        } else if (choice == 1 || w == 1) && h > 1 {
            let at = rows.0 + 1 + next(u64::from(h - 1)) as u16;
            random_guillotine(rng, (rows.0, at), cols, out);
            random_guillotine(rng, (at, rows.1), cols, out);
        } else {
            let at = cols.0 + 1 + next(u64::from(w - 1)) as u16;
            random_guillotine(rng, rows, (cols.0, at), out);
            random_guillotine(rng, rows, (at, cols.1), out);
        }
    }

    /// Checks a layout the way tmux's `layout_check` does, plus exact offsets.
    fn check_cell(cell: &LayoutCell) {
        let (children, horizontal) = match &cell.content {
            CellContent::Pane(_) => return,
            CellContent::LeftRight(c) => (c, true),
            CellContent::TopBottom(c) => (c, false),
        };
        let mut pos = if horizontal { cell.rect.x } else { cell.rect.y };
        for child in children {
            if horizontal {
                assert_eq!((child.rect.x, child.rect.y), (pos, cell.rect.y));
                assert_eq!(child.rect.height, cell.rect.height);
                pos += child.rect.width + 1;
            } else {
                assert_eq!((child.rect.x, child.rect.y), (cell.rect.x, pos));
                assert_eq!(child.rect.width, cell.rect.width);
                pos += child.rect.height + 1;
            }
            check_cell(child);
        }
        let end = if horizontal {
            cell.rect.x + cell.rect.width
        } else {
            cell.rect.y + cell.rect.height
        };
        assert_eq!(pos - 1, end, "children and separators fill the parent");
    }

    proptest! {
        #[test]
        fn every_guillotine_grid_tiles_the_window_exactly(
            rows in 1u16..=12,
            cols in 1u16..=12,
            seed in 1u64..,
            extra_w in 0u16..200,
            extra_h in 0u16..80,
        ) {
            let mut rng = seed;
            let mut panels = Vec::new();
            random_guillotine(&mut rng, (0, rows), (0, cols), &mut panels);
            let grid = Grid::new("random", rows, cols, panels).unwrap();
            let (min_w, min_h) = grid.min_size();
            let width = min_w as u16 + extra_w;
            let height = min_h as u16 + extra_h;
            let compiled = compile(&grid, width, height).unwrap();
            prop_assert_eq!(compiled.size(), (width, height));
            check_cell(compiled.root());

            // Every cell of the window is in exactly one leaf, or a separator.
            let leaves = compiled.leaf_rects();
            prop_assert_eq!(leaves.len(), grid.panels().len());
            let mut owner = vec![0u8; usize::from(width) * usize::from(height)];
            for r in &leaves {
                prop_assert!(r.width >= 1 && r.height >= 1);
                prop_assert!(r.x + r.width <= width && r.y + r.height <= height);
                for y in r.y..r.y + r.height {
                    for x in r.x..r.x + r.width {
                        let cell = &mut owner[usize::from(y) * usize::from(width) + usize::from(x)];
                        prop_assert_eq!(*cell, 0, "leaves overlap at {},{}", x, y);
                        *cell = 1;
                    }
                }
            }
            // Each uncovered cell is a separator: it lies on a column or row boundary line.
            let col_edges: Vec<u16> = tracks(width, cols).iter().skip(1).map(|t| t.0 - 1).collect();
            let row_edges: Vec<u16> = tracks(height, rows).iter().skip(1).map(|t| t.0 - 1).collect();
            for y in 0..height {
                for x in 0..width {
                    if owner[usize::from(y) * usize::from(width) + usize::from(x)] == 0 {
                        prop_assert!(col_edges.contains(&x) || row_edges.contains(&y),
                            "gap at {},{}", x, y);
                    }
                }
            }
            // Each leaf shows the panel whose cells it spans.
            for (rect, &i) in leaves.iter().zip(compiled.leaf_panels()) {
                let p = &grid.panels()[i];
                let (cx, cw) = span_rect(&tracks(width, cols), (p.col, p.col + p.colspan));
                let (ry, rh) = span_rect(&tracks(height, rows), (p.row, p.row + p.rowspan));
                prop_assert_eq!(*rect, Rect { x: cx, y: ry, width: cw, height: rh });
            }
            // And the string parses back to the same tree.
            let reparsed = LayoutCell::parse(&compiled.layout_string()).unwrap();
            prop_assert_eq!(&reparsed, compiled.root());
        }
    }
}
