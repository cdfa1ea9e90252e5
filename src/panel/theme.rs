//! How panels look: health icons, colours, borders and sparkline glyphs, in three flavours: wide
//! emoji with colour (the default), ASCII (`--ascii` / `HMS_ASCII=1`) and no colour (`NO_COLOR`).
//!
//! Icons are single code points with emoji presentation (✅ 🟡 🔴 ❌), two columns wide everywhere.
//! This module must never use a VS16 sequence such as ⚠️: tmux 3.3a draws those one column wide and
//! the rest of the line shifts. Apart from [`Theme::from_env`] it reads nothing from the outside.

use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::border;

use crate::model::{BreakerState, ComponentStatus, HealthStatus, RunState};

/// Borders drawn with ASCII only.
const ASCII_BORDER: border::Set<'static> = border::Set {
    top_left: "+",
    top_right: "+",
    bottom_left: "+",
    bottom_right: "+",
    vertical_left: "|",
    vertical_right: "|",
    horizontal_top: "-",
    horizontal_bottom: "-",
};

const SPARK: [&str; 8] = ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"];
const SPARK_ASCII: [&str; 8] = ["_", ".", ",", "-", "=", "+", "*", "#"];

/// The health worth showing for a component: its health while it runs; `None` (unknown) when it
/// has no process and its last word was "healthy", since that only described a process that is
/// gone. A failure stays shown: a crash loop's `failed` is still news.
pub fn known_health(status: &ComponentStatus) -> Option<&HealthStatus> {
    let runs = match status.state {
        RunState::Running | RunState::Stopping => true,
        RunState::Stopped
        | RunState::Starting
        | RunState::Backoff
        | RunState::Exited
        | RunState::BreakerOpen
        | RunState::Failed => false,
    };
    match (&status.health, runs) {
        (health, true) => Some(health),
        (HealthStatus::Healthy, false) => None,
        (
            health @ (HealthStatus::Degraded(_)
            | HealthStatus::Critical(_)
            | HealthStatus::Failed(_)),
            false,
        ) => Some(health),
    }
}

/// How bad a component looks, for sorting worst first: failed 0, critical 1, degraded 2,
/// unknown 3, healthy 4.
pub fn badness_rank(status: &ComponentStatus) -> u8 {
    match known_health(status) {
        Some(HealthStatus::Failed(_)) => 0,
        Some(HealthStatus::Critical(_)) => 1,
        Some(HealthStatus::Degraded(_)) => 2,
        None => 3,
        Some(HealthStatus::Healthy) => 4,
    }
}

/// The look of a panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    /// Only ASCII characters: `[ok]` instead of ✅, `+-|` borders.
    pub ascii: bool,
    /// Colours allowed; false under `NO_COLOR` (modifiers such as bold stay).
    pub color: bool,
}

impl Default for Theme {
    fn default() -> Theme {
        Theme {
            ascii: false,
            color: true,
        }
    }
}

impl Theme {
    /// The theme asked for: ASCII when `ascii` is set or `HMS_ASCII=1`; no colour when `NO_COLOR`
    /// is set to anything non-empty (no-color.org).
    pub fn from_env(ascii: bool) -> Theme {
        let ascii = ascii || std::env::var("HMS_ASCII").is_ok_and(|v| v == "1");
        let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Theme { ascii, color }
    }

    /// ✅ 🟡 🔴 ❌, or `[ok] [~~] [!!] [xx]` in ASCII mode.
    pub fn health_icon(&self, health: &HealthStatus) -> &'static str {
        match (health, self.ascii) {
            (HealthStatus::Healthy, false) => "✅",
            (HealthStatus::Degraded(_), false) => "🟡",
            (HealthStatus::Critical(_), false) => "🔴",
            (HealthStatus::Failed(_), false) => "❌",
            (HealthStatus::Healthy, true) => "[ok]",
            (HealthStatus::Degraded(_), true) => "[~~]",
            (HealthStatus::Critical(_), true) => "[!!]",
            (HealthStatus::Failed(_), true) => "[xx]",
        }
    }

    /// A component's icon: its health's, or [`Theme::unknown_icon`] when it has no process.
    pub fn status_icon(&self, status: &ComponentStatus) -> &'static str {
        match known_health(status) {
            Some(health) => self.health_icon(health),
            None => self.unknown_icon(),
        }
    }

    /// The style of a component's health: its health's, or dim when unknown.
    pub fn status_style(&self, status: &ComponentStatus) -> Style {
        match known_health(status) {
            Some(health) => self.health_style(health),
            None => self.dim(),
        }
    }

    /// Shown where a component's health is not known yet.
    pub fn unknown_icon(&self) -> &'static str {
        if self.ascii { "[..]" } else { "⚪" }
    }

    /// A foreground colour, or nothing under `NO_COLOR`.
    pub fn fg(&self, color: Color) -> Style {
        if self.color {
            Style::new().fg(color)
        } else {
            Style::new()
        }
    }

    pub fn health_style(&self, health: &HealthStatus) -> Style {
        match health {
            HealthStatus::Healthy => self.fg(Color::Green),
            HealthStatus::Degraded(_) => self.fg(Color::Yellow),
            HealthStatus::Critical(_) => self.fg(Color::Red),
            HealthStatus::Failed(_) => self.fg(Color::Red).add_modifier(Modifier::BOLD),
        }
    }

    pub fn state_style(&self, state: RunState) -> Style {
        match state {
            RunState::Running => self.fg(Color::Green),
            RunState::Starting | RunState::Stopping | RunState::Backoff => self.fg(Color::Yellow),
            RunState::Stopped | RunState::Exited => self.dim(),
            RunState::BreakerOpen | RunState::Failed => {
                self.fg(Color::Red).add_modifier(Modifier::BOLD)
            }
        }
    }

    pub fn breaker_style(&self, breaker: BreakerState) -> Style {
        match breaker {
            BreakerState::Closed => self.fg(Color::Green),
            BreakerState::HalfOpen => self.fg(Color::Yellow),
            BreakerState::Open => self.fg(Color::Red).add_modifier(Modifier::BOLD),
        }
    }

    /// Errors: red and bold (bold alone without colour).
    pub fn error(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    pub fn warning(&self) -> Style {
        self.fg(Color::Yellow)
    }

    pub fn good(&self) -> Style {
        self.fg(Color::Green)
    }

    /// Secondary text: labels, system log lines, hints.
    pub fn dim(&self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new()
        }
    }

    pub fn label(&self) -> Style {
        self.fg(Color::Cyan)
    }

    pub fn heading(&self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }

    pub fn border_set(&self) -> border::Set<'static> {
        if self.ascii {
            ASCII_BORDER
        } else {
            border::PLAIN
        }
    }

    /// The keys that scroll a list: "↑↓ PgUp/PgDn" or "Up/Down PgUp/PgDn".
    pub fn scroll_keys(&self) -> &'static str {
        if self.ascii {
            "Up/Down PgUp/PgDn"
        } else {
            "↑↓ PgUp/PgDn"
        }
    }

    /// "↓" or "v".
    pub fn down_arrow(&self) -> &'static str {
        if self.ascii { "v" } else { "↓" }
    }

    /// A one-line sparkline of the last `width` values, scaled from 0 to their maximum. Values
    /// that hardly change (within 1 % of their maximum) draw a flat line at mid height, not a row
    /// of full bars that would read like 100 %.
    pub fn sparkline<'a>(
        &self,
        values: impl DoubleEndedIterator<Item = &'a f64>,
        width: usize,
    ) -> String {
        let glyphs = if self.ascii { &SPARK_ASCII } else { &SPARK };
        let mut recent: Vec<f64> = values.rev().take(width).copied().collect();
        recent.reverse();
        let max = recent.iter().copied().fold(0.0_f64, f64::max);
        let min = recent.iter().copied().fold(f64::INFINITY, f64::min);
        let flat = max > 0.0 && max - min <= max * 0.01;
        recent
            .iter()
            .map(|v| {
                let level = if flat {
                    3
                } else if max > 0.0 && v.is_finite() {
                    ((v.max(0.0) / max) * 7.0).round() as usize
                } else {
                    0
                };
                glyphs[level.min(7)]
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icons_are_wide_emoji_without_variation_selectors() {
        let theme = Theme::default();
        for health in [
            HealthStatus::Healthy,
            HealthStatus::Degraded("x".into()),
            HealthStatus::Critical("x".into()),
            HealthStatus::Failed("x".into()),
        ] {
            let icon = theme.health_icon(&health);
            assert_eq!(icon.chars().count(), 1, "{icon} is one code point");
            assert!(!icon.contains('\u{FE0F}'), "{icon} has no VS16");
            assert_eq!(ratatui::text::Span::raw(icon).width(), 2, "{icon} is wide");
        }
        assert_eq!(ratatui::text::Span::raw(theme.unknown_icon()).width(), 2);
    }

    #[test]
    fn ascii_mode_is_ascii() {
        let theme = Theme {
            ascii: true,
            color: true,
        };
        for health in [
            HealthStatus::Healthy,
            HealthStatus::Degraded("x".into()),
            HealthStatus::Critical("x".into()),
            HealthStatus::Failed("x".into()),
        ] {
            assert!(theme.health_icon(&health).is_ascii());
        }
        assert!(theme.sparkline([1.0, 5.0, 9.0].iter(), 10).is_ascii());
        assert_eq!(theme.sparkline([0.0, 4.0, 8.0].iter(), 10), "_=#");
    }

    #[test]
    fn no_color_means_no_colours() {
        let theme = Theme {
            ascii: false,
            color: false,
        };
        for style in [
            theme.error(),
            theme.dim(),
            theme.label(),
            theme.good(),
            theme.state_style(RunState::Failed),
            theme.health_style(&HealthStatus::Degraded("x".into())),
        ] {
            assert_eq!(style.fg, None);
            assert_eq!(style.bg, None);
        }
    }

    #[test]
    fn sparkline_shows_the_most_recent_values_scaled_to_their_maximum() {
        let theme = Theme::default();
        let values = [100.0, 0.0, 1.0, 2.0, 4.0];
        assert_eq!(theme.sparkline(values.iter(), 4), "▁▃▅█");
        assert_eq!(theme.sparkline([0.0, 0.0].iter(), 4), "▁▁");
        assert_eq!(theme.sparkline([].iter(), 4), "");
    }

    #[test]
    fn a_constant_value_draws_a_flat_line_not_full_bars() {
        let theme = Theme::default();
        assert_eq!(theme.sparkline([1.5, 1.5, 1.5].iter(), 4), "▄▄▄");
        assert_eq!(theme.sparkline([0.0, 0.0].iter(), 4), "▁▁");
    }
}
