//! tmux layout strings, as tmux 3.3a `layout-custom.c` reads and prints them: `CSUM,WxH,X,Y`
//! followed by `{…}` (children side by side), `[…]` (children stacked) or `,ID` for a pane;
//! siblings are separated by one cell of border; `CSUM` is a 16-bit rotate-and-add checksum of the
//! rest, in 4 hex digits. tmux ignores the pane ids when it reads a layout and hands the window's
//! panes to the leaves in order, so the leaf order is the pane order.
//!
//! [`LayoutCell`] is both what the compiler produces and what `#{window_layout}` and
//! `%layout-change` are parsed into, so the two can be compared.

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

    pub(super) fn set_pane_ids(&mut self, ids: &mut impl Iterator<Item = u32>) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tmux::layout::tmux_printed::*;

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
}
