//! Grid layouts: layout files, their validation, and the compiler from a grid to tmux's custom
//! layout string (guide §3.1 TwoByTwo, §3.2 Custom(rows, cols)).
//!
//! A [`Grid`] is rows × cols cells covered exactly once by [`Panel`]s with row/col spans. tmux can
//! only build a window by splitting a pane in two along a full straight line, so a grid is accepted
//! only if it can be cut recursively by full lines (a "guillotine" grid); the cuts are found once, at
//! validation, and kept as a tree that [`compile()`] sizes for a window.
//!
//! - `grid.rs`: [`Grid`] and [`Panel`], the guide's built-in grids, binding a fleet to a grid, and
//!   the validation every constructor goes through.
//! - `file.rs`: layout files: TOML read with spans, so every error names its file and line.
//! - `cut.rs`: the guillotine cut that turns a grid into a tree of splits, or finds the pinwheel.
//! - `string.rs`: tmux layout strings ([`LayoutCell`]), their parser and their [`checksum`].
//! - `compile.rs`: [`compile()`], which sizes the cut tree for a window into a [`CompiledLayout`].
//!
//! [`LayoutError`] (why a layout is rejected) and [`Location`] (where) are shared by all of them.
//!
//! This module is pure: it reads files only in [`Grid::load`], never talks to tmux, and knows
//! nothing of panel processes.

use std::fmt;

use crate::model::PanelKind;

mod compile;
mod cut;
mod file;
mod grid;
mod string;

pub use compile::{CompiledLayout, compile};
pub use file::panel_kind_from_name;
pub use grid::{Grid, Panel};
pub use string::{CellContent, LayoutCell, LayoutParseError, Rect, checksum};

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

/// Layout strings a real tmux 3.3a printed, shared by the tests of the parser and the compiler.
#[cfg(test)]
mod tmux_printed {
    // Each pair: a grid compiled for a size, and the `#{window_layout}` a real tmux 3.3a printed
    // after `select-layout` with the compiled string (pane ids are that server's).
    pub(super) const TMUX_2X2_80X24: &str = "974c,80x24,0,0[80x12,0,0{40x12,0,0,1,39x12,41,0,2},80x11,0,13{40x11,0,13,3,39x11,41,13,4}]";
    pub(super) const TMUX_2X2_200X50: &str = "676e,200x50,0,0[200x25,0,0{100x25,0,0,5,99x25,101,0,6},200x24,0,26{100x24,0,26,7,99x24,101,26,8}]";
    pub(super) const TMUX_3X3_80X24: &str =
        "cf24,80x24,0,0[80x8,0,0{26x8,0,0,9,26x8,27,0,10,26x8,54,0,11},80x7,0,9,12,80x7,0,17,13]";
    pub(super) const TMUX_3X3_120X40: &str = "e3ed,120x40,0,0[120x13,0,0{40x13,0,0,14,39x13,41,0,15,39x13,81,0,16},120x13,0,14,17,120x12,0,28,18]";
    pub(super) const TMUX_OPS_WIDE_200X50: &str = "b289,200x50,0,0[200x33,0,0{50x33,0,0,19,49x33,51,0[49x16,51,0,20,49x16,51,17,21],49x33,101,0[49x16,101,0,22,49x16,101,17,23],49x33,151,0[49x16,151,0,24,49x16,151,17,25]},200x16,0,34,26]";
    pub(super) const TMUX_1X1_80X24: &str = "d966,80x24,0,0,27";
    pub(super) const TMUX_4X5_97X31: &str = "3d66,97x31,0,0[97x7,0,0{19x7,0,0,28,19x7,20,0,29,19x7,40,0,30,18x7,60,0,31,18x7,79,0,32},97x7,0,8{19x7,0,8,33,19x7,20,8,34,19x7,40,8,35,18x7,60,8,36,18x7,79,8,37},97x7,0,16,38,97x7,0,24,39]";
}
