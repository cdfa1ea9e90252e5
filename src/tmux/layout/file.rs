//! Layout files: TOML with a `name`, `rows`, `cols` and `[[panel]]` tables, read with spans so
//! that every error names the file and the line, then validated into a [`Grid`].
//!
//! Reading the file in [`Grid::load`] is the only I/O of the layout module.

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::{Grid, LayoutError, Location, MAX_TRACKS, Panel};
use crate::model::PanelKind;

/// Looks a panel kind up by its layout-file name (`system_health`, …).
pub fn panel_kind_from_name(name: &str) -> Option<PanelKind> {
    PanelKind::ALL.into_iter().find(|k| k.name() == name)
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
}
