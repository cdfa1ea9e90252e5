//! Short human forms of durations, sizes and times for narrow panes, and cleaning of the text
//! components write (terminal escapes and tabs would break a pane's layout).
//!
//! Pure functions only: they must not read the clock; callers pass `now`.

use std::time::{Duration, SystemTime};

/// `7s`, `2m 05s`, `1h 02m`, `3d 04h`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {:02}h", s / 86400, (s % 86400) / 3600),
    }
}

/// Sub-second durations in milliseconds (`400ms`), longer ones as [`duration`].
pub fn delay(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else if d < Duration::from_secs(60) && d.subsec_millis() != 0 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        duration(d)
    }
}

pub use crate::text::bytes;

/// `12s ago` for a past time, `in 12s` for a future one.
pub fn relative(now: SystemTime, at: SystemTime) -> String {
    match now.duration_since(at) {
        Ok(past) => format!("{} ago", duration(past)),
        Err(future) => format!("in {}", duration(future.duration())),
    }
}

/// A line of program output made safe to draw: ANSI escape sequences removed, tabs expanded to
/// spaces, other control characters dropped.
pub fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.peek() {
                // CSI: ESC [ parameters… final byte in @..~
                Some('[') => {
                    chars.next();
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC: ESC ] … BEL or ESC \
                Some(']') => {
                    chars.next();
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                            break;
                        }
                    }
                }
                _ => {
                    chars.next();
                }
            },
            '\t' => {
                let pad = 4 - out.chars().count() % 4;
                out.extend(std::iter::repeat_n(' ', pad));
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Display width of a string in terminal columns.
pub fn width(text: &str) -> usize {
    ratatui::text::Span::raw(text).width()
}

/// Word-wraps text to `width` columns; newlines start new lines; a word wider than the width
/// gets a line of its own (and is cut when drawn).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut out = Vec::new();
    for paragraph in text.split('\n') {
        let mut line = String::new();
        for word in paragraph.split(' ') {
            let needed = if line.is_empty() {
                self::width(word)
            } else {
                self::width(&line) + 1 + self::width(word)
            };
            if needed > width && !line.is_empty() {
                out.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        out.push(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_short() {
        assert_eq!(duration(Duration::from_secs(7)), "7s");
        assert_eq!(duration(Duration::from_secs(125)), "2m 05s");
        assert_eq!(duration(Duration::from_secs(3720)), "1h 02m");
        assert_eq!(
            duration(Duration::from_secs(3 * 86400 + 4 * 3600)),
            "3d 04h"
        );
        assert_eq!(delay(Duration::from_millis(400)), "400ms");
        assert_eq!(delay(Duration::from_millis(1600)), "1.6s");
        assert_eq!(delay(Duration::from_secs(30)), "30s");
    }

    #[test]
    fn sizes_use_binary_units() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(13_000_000), "12.4 MiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
    }

    #[test]
    fn relative_times_go_both_ways() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        assert_eq!(relative(now, now - Duration::from_secs(12)), "12s ago");
        assert_eq!(relative(now, now + Duration::from_secs(90)), "in 1m 30s");
    }

    #[test]
    fn wrap_breaks_at_words_and_newlines() {
        assert_eq!(
            wrap("restart start stop status\nhelp", 12),
            vec!["restart", "start stop", "status", "help"]
        );
        assert_eq!(wrap("", 5), vec![""]);
        assert_eq!(
            wrap("averyveryverylongword x", 5),
            vec!["averyveryverylongword", "x"]
        );
    }

    #[test]
    fn escapes_and_tabs_are_cleaned() {
        assert_eq!(clean("\u{1b}[31merror\u{1b}[0m: x"), "error: x");
        assert_eq!(clean("a\tb"), "a   b");
        assert_eq!(clean("\u{1b}]0;title\u{7}text\r"), "text");
    }
}
