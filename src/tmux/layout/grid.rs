//! [`Grid`] and [`Panel`]: what a layout is made of, the guide's built-in grids (§3.1 TwoByTwo,
//! §3.2 Custom), binding a fleet's components to a grid, and the validation every constructor
//! goes through (cells covered exactly once, within the grid, cut apart by full lines).
//!
//! A `Grid` exists only once validated: its fields are private to this file, so nothing else can
//! build or change one behind the checks.

use super::cut::{Node, cut};
use super::{LayoutError, Location, MAX_TRACKS};
use crate::model::PanelKind;

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
            PanelKind::Knowledge => "Knowledge",
            PanelKind::Agents => "Agents",
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
/// constructor, so [`compile`](super::compile()) cannot meet a bad one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grid {
    name: String,
    rows: u16,
    cols: u16,
    panels: Vec<Panel>,
    /// The cuts found at validation; leaves index `panels`.
    tree: Node,
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
                | PanelKind::Text
                | PanelKind::Knowledge => true,
                PanelKind::SystemHealth | PanelKind::Component | PanelKind::Agents => false,
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

    /// Checks the panels and finds the cuts; `lines` gives each panel's line in `file`, if any.
    pub(super) fn validate(
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

    /// The cuts found at validation.
    pub(super) fn tree(&self) -> &Node {
        &self.tree
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
