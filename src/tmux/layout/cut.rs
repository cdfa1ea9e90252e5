//! The guillotine cut: a grid's panels cut apart recursively by full straight lines into a tree
//! of top/bottom and left/right splits, which is the only shape tmux can build; or the region
//! where no full line runs (the "pinwheel").
//!
//! Done once, at validation; [`compile`](super::compile()) only sizes the tree.

use super::Panel;

/// A rectangle of grid cells and how it is cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Node {
    pub(super) rows: (u16, u16),
    pub(super) cols: (u16, u16),
    pub(super) cut: Cut,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Cut {
    Leaf(usize),
    /// Children stacked top to bottom (tmux `[]`).
    TopBottom(Vec<Node>),
    /// Children side by side (tmux `{}`).
    LeftRight(Vec<Node>),
}

/// Region that cannot be cut: its rows, cols and the panels inside.
pub(super) type Uncuttable = ((u16, u16), (u16, u16), Vec<usize>);

/// Cuts the region (`rows`, `cols`, half-open) holding `inside` into a tree. Rows are tried first
/// so a stack of full-width rows (the §3.2 overview) becomes one flat `[]`.
pub(super) fn cut(
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

#[cfg(test)]
mod tests {
    use crate::model::PanelKind;
    use crate::tmux::layout::{Grid, LayoutError, Panel};

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
}
