//! The compiler: a validated [`Grid`] sized for a `width` × `height` window, into a
//! [`CompiledLayout`] (the layout tree and which panel each leaf shows).
//!
//! Tracks share the window evenly, one cell of border between them, the remainder one cell each
//! to the first tracks. Pure arithmetic on the cut tree found at validation.

use super::cut::{Cut, Node};
use super::{CellContent, Grid, LayoutCell, LayoutError, Rect};

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
            name: grid.name().to_string(),
            rows: grid.rows(),
            cols: grid.cols(),
            width,
            height,
            min_width,
            min_height,
        });
    }
    let col_tracks = tracks(width, grid.cols());
    let row_tracks = tracks(height, grid.rows());
    let mut leaf_panels = Vec::with_capacity(grid.panels().len());
    let root = size_node(grid.tree(), &row_tracks, &col_tracks, &mut leaf_panels);
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
    use crate::model::PanelKind;
    use crate::tmux::layout::Panel;
    use crate::tmux::layout::tmux_printed::*;
    use proptest::prelude::*;

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
        Grid::from_toml_str(
            include_str!("../../../layouts/ops-wide.toml"),
            "ops-wide.toml",
        )
        .unwrap()
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
