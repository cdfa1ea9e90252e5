//! The metrics panel (guide §3.1 "Component Metrics"): CPU, memory and open files from /proc,
//! plus error rate, throughput and response time when a linked component reports them, each with
//! a sparkline of recent samples. Without a component it shows one line per component.
//!
//! It keeps a bounded history per component and must not ask the core for anything: samples
//! arrive as events.

use std::collections::{BTreeMap, VecDeque};
use std::time::SystemTime;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::app::Shared;
use super::format;
use crate::model::{ComponentStatus, HealthMetrics, ProcessMetrics};

/// Samples kept per series: enough for a wide pane.
pub const HISTORY: usize = 240;

const LABEL: usize = 11;
const VALUE: usize = 11;

/// One bounded series of samples, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series(VecDeque<f64>);

impl Series {
    pub fn push(&mut self, value: f64) {
        if self.0.len() == HISTORY {
            self.0.pop_front();
        }
        self.0.push_back(value);
    }

    pub fn last(&self) -> Option<f64> {
        self.0.back().copied()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The samples of one component.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Samples {
    pub cpu: Series,
    pub rss: Series,
    pub fds: Series,
    pub error_rate: Series,
    pub throughput: Series,
    pub response_time: Series,
    /// The timestamp of the last reported sample, so a status repeated in another event is not
    /// counted twice.
    last_reported: Option<SystemTime>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsState {
    pub samples: BTreeMap<String, Samples>,
}

impl MetricsState {
    /// A process sample from /proc.
    pub fn on_process(&mut self, component: &str, metrics: &ProcessMetrics) {
        let s = self.samples.entry(component.to_string()).or_default();
        s.cpu.push(metrics.cpu_percent);
        s.rss.push(metrics.rss_bytes as f64);
        s.fds.push(f64::from(metrics.open_fds));
    }

    /// Metrics a linked component reported; repeated reports (same timestamp) count once.
    pub fn on_reported(&mut self, component: &str, metrics: &HealthMetrics) {
        let s = self.samples.entry(component.to_string()).or_default();
        if s.last_reported == Some(metrics.timestamp) {
            return;
        }
        s.last_reported = Some(metrics.timestamp);
        s.error_rate.push(metrics.error_rate);
        s.throughput.push(metrics.throughput);
        s.response_time.push(metrics.response_time);
    }

    /// The first values, from a status snapshot.
    pub fn seed(&mut self, status: &ComponentStatus) {
        let known = self
            .samples
            .get(&status.name)
            .is_some_and(|s| !s.cpu.is_empty());
        if let (Some(metrics), false) = (&status.metrics, known) {
            self.on_process(&status.name, metrics);
        }
        if let Some(reported) = &status.reported {
            self.on_reported(&status.name, reported);
        }
    }
}

pub(super) fn render(view: Shared<'_>, state: &MetricsState, area: Rect, buf: &mut Buffer) {
    let lines = match view.component {
        Some(name) => match (view.status(), state.samples.get(name)) {
            (None, None) => {
                view.render_placeholder(area, buf);
                return;
            }
            (status, samples) => component_lines(view, status, samples, area.width),
        },
        None if view.fleet.components.is_empty() => {
            view.render_placeholder(area, buf);
            return;
        }
        None => fleet_lines(view, state, area.width),
    };
    Paragraph::new(lines).render(area, buf);
}

fn component_lines(
    view: Shared<'_>,
    status: Option<&ComponentStatus>,
    samples: Option<&Samples>,
    width: u16,
) -> Vec<Line<'static>> {
    let theme = view.theme;
    let spark_width = usize::from(width).saturating_sub(LABEL + VALUE + 1);
    let empty = Samples::default();
    let samples = samples.unwrap_or(&empty);
    let row = |label: &str, value: String, series: &Series| {
        Line::from(vec![
            Span::styled(format!("{label:<LABEL$}"), theme.label()),
            Span::raw(format!("{value:>VALUE$} ")),
            Span::styled(theme.sparkline(series.0.iter(), spark_width), theme.good()),
        ])
    };
    let mut lines = Vec::new();
    match samples.cpu.last() {
        Some(cpu) => {
            lines.push(row("CPU", format!("{cpu:.1} %"), &samples.cpu));
            let rss = samples.rss.last().unwrap_or(0.0) as u64;
            lines.push(row("Memory", format::bytes(rss), &samples.rss));
            let fds = samples.fds.last().unwrap_or(0.0);
            lines.push(row("Open fds", format!("{fds:.0}"), &samples.fds));
        }
        None => {
            let state = status.map(|s| s.state.word()).unwrap_or("unknown");
            lines.push(Line::styled(
                format!("no process metrics yet (state: {state})"),
                theme.dim(),
            ));
        }
    }
    if let Some(rate) = samples.error_rate.last() {
        lines.push(row(
            "Error rate",
            format!("{rate:.1} %"),
            &samples.error_rate,
        ));
        let tp = samples.throughput.last().unwrap_or(0.0);
        lines.push(row("Throughput", format!("{tp:.1}/s"), &samples.throughput));
        let rt = samples.response_time.last().unwrap_or(0.0);
        lines.push(row(
            "Response",
            format!("{rt:.0} ms"),
            &samples.response_time,
        ));
    }
    if let Some(reported) = status.and_then(|s| s.reported.as_ref()) {
        for (name, value) in &reported.custom_metrics {
            lines.push(Line::from(vec![
                Span::styled(format!("{name:<LABEL$}"), theme.label()),
                Span::raw(format!("{value:>VALUE$.2}")),
            ]));
        }
    }
    lines
}

/// One line per component: icon, name, CPU, memory and a CPU sparkline.
fn fleet_lines(view: Shared<'_>, state: &MetricsState, width: u16) -> Vec<Line<'static>> {
    let theme = view.theme;
    let name_width = view
        .fleet
        .components
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(0);
    let icon_width = if theme.ascii { 5 } else { 3 };
    let spark_width = usize::from(width).saturating_sub(icon_width + name_width + 1 + 8 + 11 + 1);
    view.fleet
        .components
        .iter()
        .map(|status| {
            let samples = state.samples.get(&status.name);
            let cpu = samples.and_then(|s| s.cpu.last());
            let rss = samples.and_then(|s| s.rss.last());
            let mut spans = vec![
                Span::styled(
                    format!("{} ", theme.health_icon(&status.health)),
                    theme.health_style(&status.health),
                ),
                Span::raw(format!("{:<name_width$} ", status.name)),
            ];
            match (cpu, rss) {
                (Some(cpu), Some(rss)) => {
                    spans.push(Span::raw(format!(
                        "{:>6.1} %{:>11} ",
                        cpu,
                        format::bytes(rss as u64)
                    )));
                    if let Some(s) = samples {
                        spans.push(Span::styled(
                            theme.sparkline(s.cpu.0.iter(), spark_width),
                            theme.good(),
                        ));
                    }
                }
                (None, _) | (Some(_), None) => {
                    spans.push(Span::styled(status.state.word(), theme.dim()));
                }
            }
            Line::from(spans)
        })
        .collect()
}
