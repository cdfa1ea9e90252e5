//! The metrics panel (guide §3.1 "Component Metrics"): time-series charts of CPU, memory,
//! restarts and, when a linked component reports it, response time, over the last minutes, with
//! axes and units; they fill the pane. A small pane gets one line per series with a sparkline
//! instead. Without a component it shows one line per component.
//!
//! Figures are only shown for a process that exists: a component without one (stopped, backing
//! off, breaker open) shows `-` and its state, and its charts a gap, never its last process's
//! numbers. Scales start at zero and leave headroom above the largest value, so a constant value
//! draws a flat line below the top, not a full bar.
//!
//! The history comes from the core (`Request::History`, asked on connect, so a panel opened now
//! shows the last minutes at once) and grows with `Metrics` and `Component` events. It is bounded,
//! and this module must not ask the core for anything itself.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, SystemTime};

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Paragraph, Widget};

use super::app::Shared;
use super::format;
use super::theme::Theme;
use crate::model::{ComponentStatus, HealthMetrics, ProcessMetrics, RunState};
use crate::protocol::ComponentHistory;

/// Points kept per series: ten minutes at the core's 2 s tick.
pub const HISTORY: usize = 300;
/// How far back the charts reach at most.
pub const WINDOW: Duration = Duration::from_secs(600);
/// How far back they reach at least, so a young history does not stretch over the whole width.
pub const MIN_WINDOW: Duration = Duration::from_secs(60);
/// Below this many rows the pane gets sparkline rows instead of charts.
pub const CHART_ROWS: u16 = 12;

const LABEL: usize = 11;
const VALUE: usize = 11;

/// One point: a value, or `None` while there was no process (a gap in the chart).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub at: SystemTime,
    pub value: Option<f64>,
}

/// One bounded series, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series(VecDeque<Point>);

impl Series {
    pub fn push(&mut self, at: SystemTime, value: Option<f64>) {
        // Out of order (an event that raced the history snapshot): keep time moving forward.
        if self.0.back().is_some_and(|p| p.at > at) {
            return;
        }
        if self.0.len() == HISTORY {
            self.0.pop_front();
        }
        self.0.push_back(Point { at, value });
    }

    /// The newest value, `None` when the newest point is a gap or there is none.
    pub fn last(&self) -> Option<f64> {
        self.0.back().and_then(|p| p.value)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The values, gaps left out (for sparklines).
    pub fn values(&self) -> Vec<f64> {
        self.0.iter().filter_map(|p| p.value).collect()
    }

    fn newest(&self) -> Option<SystemTime> {
        self.0.back().map(|p| p.at)
    }
}

/// The series of one component.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Samples {
    pub cpu: Series,
    pub rss: Series,
    pub fds: Series,
    pub restarts: Series,
    pub error_rate: Series,
    pub throughput: Series,
    pub response_time: Series,
    /// The timestamp of the last reported sample, so a status repeated in another event is not
    /// counted twice.
    last_reported: Option<SystemTime>,
}

impl Samples {
    fn process(&mut self, at: SystemTime, metrics: Option<&ProcessMetrics>) {
        self.cpu.push(at, metrics.map(|m| m.cpu_percent));
        self.rss.push(at, metrics.map(|m| m.rss_bytes as f64));
        self.fds.push(at, metrics.map(|m| f64::from(m.open_fds)));
    }

    fn restarts(&mut self, at: SystemTime, restarts: u32) {
        if self.restarts.last() != Some(f64::from(restarts)) {
            self.restarts.push(at, Some(f64::from(restarts)));
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsState {
    pub samples: BTreeMap<String, Samples>,
}

/// Does the component have a process whose figures mean something now?
pub fn has_process(status: &ComponentStatus) -> bool {
    match status.state {
        RunState::Running | RunState::Stopping => true,
        RunState::Stopped
        | RunState::Starting
        | RunState::Backoff
        | RunState::Exited
        | RunState::BreakerOpen
        | RunState::Failed => false,
    }
}

impl MetricsState {
    /// A process sample from /proc, taken at `at`.
    pub fn on_process(&mut self, component: &str, metrics: &ProcessMetrics, at: SystemTime) {
        let s = self.samples.entry(component.to_string()).or_default();
        s.process(at, Some(metrics));
    }

    /// A status change: restarts, reported metrics, and a gap once the process is gone.
    pub fn on_status(&mut self, status: &ComponentStatus, now: SystemTime) {
        if let Some(reported) = &status.reported {
            self.on_reported(&status.name, reported);
        }
        let s = self.samples.entry(status.name.clone()).or_default();
        s.restarts(now, status.restarts);
        if !has_process(status) && s.cpu.last().is_some() {
            s.process(now, None);
        }
    }

    /// Metrics a linked component reported; repeated reports (same timestamp) count once.
    pub fn on_reported(&mut self, component: &str, metrics: &HealthMetrics) {
        let s = self.samples.entry(component.to_string()).or_default();
        if s.last_reported == Some(metrics.timestamp) {
            return;
        }
        s.last_reported = Some(metrics.timestamp);
        let at = metrics.timestamp;
        s.error_rate.push(at, Some(metrics.error_rate));
        s.throughput.push(at, Some(metrics.throughput));
        s.response_time.push(at, Some(metrics.response_time));
    }

    /// The first values, from a status snapshot taken at `now`.
    pub fn seed(&mut self, status: &ComponentStatus, now: SystemTime) {
        let known = self
            .samples
            .get(&status.name)
            .is_some_and(|s| !s.cpu.is_empty());
        if !known {
            let s = self.samples.entry(status.name.clone()).or_default();
            let metrics = status.metrics.as_ref().filter(|_| has_process(status));
            s.process(now, metrics);
        }
        self.on_status(status, now);
    }

    /// The core's history of a component: the minutes before the panel opened. What the panel
    /// already has that is newer is kept after it.
    pub fn seed_history(&mut self, history: &ComponentHistory) {
        if history.samples.is_empty() {
            return;
        }
        let mut seeded = Samples::default();
        for sample in &history.samples {
            seeded.process(sample.at, sample.metrics.as_ref());
            seeded.restarts(sample.at, sample.restarts);
            if let Some(ms) = sample.response_ms {
                seeded.response_time.push(sample.at, Some(ms));
            }
        }
        let old = self.samples.remove(&history.component).unwrap_or_default();
        let keep_newer = |into: &mut Series, from: &Series| {
            let after = into.newest();
            for p in &from.0 {
                if after.is_none_or(|a| p.at > a) {
                    into.push(p.at, p.value);
                }
            }
        };
        keep_newer(&mut seeded.cpu, &old.cpu);
        keep_newer(&mut seeded.rss, &old.rss);
        keep_newer(&mut seeded.fds, &old.fds);
        keep_newer(&mut seeded.restarts, &old.restarts);
        keep_newer(&mut seeded.response_time, &old.response_time);
        seeded.error_rate = old.error_rate;
        seeded.throughput = old.throughput;
        seeded.last_reported = old.last_reported;
        self.samples.insert(history.component.clone(), seeded);
    }
}

pub(super) fn render(view: Shared<'_>, state: &MetricsState, area: Rect, buf: &mut Buffer) {
    match view.component {
        Some(name) => match (view.status(), state.samples.get(name)) {
            (None, None) => view.render_placeholder(area, buf),
            (status, samples) => {
                let empty = Samples::default();
                let samples = samples.unwrap_or(&empty);
                if area.height >= CHART_ROWS && area.width >= 30 {
                    render_charts(view, status, samples, area, buf);
                } else {
                    Paragraph::new(component_lines(view, status, samples, area.width))
                        .render(area, buf);
                }
            }
        },
        None if view.fleet.components.is_empty() => view.render_placeholder(area, buf),
        None => Paragraph::new(fleet_lines(view, state, area.width)).render(area, buf),
    }
}

/// The figures now: `None` when there is no process to measure.
fn current(status: Option<&ComponentStatus>, samples: &Samples) -> Option<(f64, f64, f64)> {
    if status.is_some_and(|s| !has_process(s)) {
        return None;
    }
    Some((
        samples.cpu.last()?,
        samples.rss.last()?,
        samples.fds.last()?,
    ))
}

/// What stands in for the figures while there is no process, or no sample of the new one yet.
fn no_process(status: Option<&ComponentStatus>) -> String {
    match status {
        Some(s) if has_process(s) => format!("new process, first sample soon ({})", s.state.word()),
        Some(s) => format!("no process ({})", s.state.word()),
        None => "no process (unknown)".to_string(),
    }
}

/// The first line over the charts: the figures now, or why there are none.
fn summary(view: Shared<'_>, status: Option<&ComponentStatus>, samples: &Samples) -> Line<'static> {
    let theme = view.theme;
    let restarts = status.map_or(0, |s| s.restarts);
    let mut spans = match current(status, samples) {
        Some((cpu, rss, fds)) => vec![
            Span::styled("CPU ", theme.label()),
            Span::raw(format!("{cpu:.1} %  ")),
            Span::styled("Memory ", theme.label()),
            Span::raw(format!("{}  ", format::bytes(rss as u64))),
            Span::styled("fds ", theme.label()),
            Span::raw(format!("{fds:.0}  ")),
        ],
        None => vec![Span::styled(
            format!("{}  ", no_process(status)),
            theme.warning(),
        )],
    };
    spans.push(Span::styled("restarts ", theme.label()));
    spans.push(Span::raw(restarts.to_string()));
    Line::from(spans)
}

/// One chart to draw: its title, unit formatter, series and the scale's floor.
struct ChartSpec<'a> {
    title: &'static str,
    series: &'a Series,
    /// The top of the scale is at least this (so noise near zero stays near the bottom).
    floor: f64,
    unit: fn(f64) -> String,
}

fn render_charts(
    view: Shared<'_>,
    status: Option<&ComponentStatus>,
    samples: &Samples,
    area: Rect,
    buf: &mut Buffer,
) {
    let [top, rest] = Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(area);
    summary(view, status, samples).render(top, buf);
    let mut charts = vec![
        ChartSpec {
            title: "CPU",
            series: &samples.cpu,
            floor: 5.0,
            unit: |v| format!("{v:.0}%"),
        },
        ChartSpec {
            title: "Memory",
            series: &samples.rss,
            floor: 1024.0 * 1024.0,
            unit: |v| format::bytes(v as u64),
        },
        ChartSpec {
            title: "Restarts",
            series: &samples.restarts,
            floor: 4.0,
            unit: |v| format!("{v:.0}"),
        },
    ];
    if !samples.response_time.is_empty() {
        charts.push(ChartSpec {
            title: "Response time",
            series: &samples.response_time,
            floor: 10.0,
            unit: |v| format!("{v:.0}ms"),
        });
    }
    // Each chart needs a title, two rows of plot and its x axis; drop the last ones otherwise.
    let fit = usize::from(rest.height / 6).clamp(1, charts.len());
    charts.truncate(fit);
    let areas = Layout::vertical(vec![Constraint::Fill(1); charts.len()]).split(rest);
    let span = window(view.now, samples);
    for (spec, area) in charts.iter().zip(areas.iter()) {
        render_chart(view, spec, span, *area, buf);
    }
}

/// How far back the x axis reaches: the history's age, between [`MIN_WINDOW`] and [`WINDOW`].
fn window(now: SystemTime, samples: &Samples) -> Duration {
    let oldest = [&samples.cpu, &samples.restarts, &samples.response_time]
        .iter()
        .filter_map(|s| s.0.front().map(|p| p.at))
        .min();
    let age = oldest
        .and_then(|o| now.duration_since(o).ok())
        .unwrap_or_default();
    age.clamp(MIN_WINDOW, WINDOW)
}

/// The top of a scale: headroom above the largest value, rounded up to a figure that reads well.
pub fn scale_top(max: f64, floor: f64) -> f64 {
    let wanted = (max * 1.25).max(floor);
    let magnitude = 10f64.powf(wanted.log10().floor());
    for step in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if magnitude * step >= wanted {
            return magnitude * step;
        }
    }
    wanted
}

fn render_chart(
    view: Shared<'_>,
    spec: &ChartSpec<'_>,
    span: Duration,
    area: Rect,
    buf: &mut Buffer,
) {
    let theme = view.theme;
    let [title, plot] = Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(area);
    let now_value = spec
        .series
        .last()
        .map_or_else(|| "-".to_string(), |v| (spec.unit)(v));
    Line::from(vec![
        Span::styled(spec.title, theme.heading()),
        Span::styled(format!("  {now_value}"), theme.dim()),
    ])
    .render(title, buf);
    let seconds = span.as_secs_f64();
    // Runs of points without a gap, as (seconds before now, value).
    let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for p in &spec.series.0 {
        let age = view
            .now
            .duration_since(p.at)
            .unwrap_or_default()
            .as_secs_f64();
        match p.value {
            Some(v) if age <= seconds => runs.last_mut().expect("one run").push((-age, v)),
            Some(_) => {}
            None => runs.push(Vec::new()),
        }
    }
    // A value kept until now (restarts change rarely): the line reaches the right edge.
    if spec.title == "Restarts"
        && let Some(last) = runs.last_mut()
        && let Some(&(_, v)) = last.last()
    {
        last.push((0.0, v));
    }
    runs.retain(|r| !r.is_empty());
    let max = runs
        .iter()
        .flatten()
        .map(|(_, v)| *v)
        .fold(0.0_f64, f64::max);
    let top = scale_top(max, spec.floor);
    let marker = if theme.ascii {
        Marker::Dot
    } else {
        Marker::Braille
    };
    let datasets: Vec<Dataset> = runs
        .iter()
        .map(|run| {
            Dataset::default()
                .marker(marker)
                .graph_type(if run.len() == 1 {
                    GraphType::Scatter
                } else {
                    GraphType::Line
                })
                .style(theme.good())
                .data(run)
        })
        .collect();
    let span_label = format!("-{}", format::duration(span));
    let chart = Chart::new(datasets)
        .x_axis(
            Axis::default()
                .style(theme.dim())
                .bounds([-seconds, 0.0])
                .labels([Line::from(span_label), Line::from("now").right_aligned()]),
        )
        .y_axis(
            Axis::default()
                .style(theme.dim())
                .bounds([0.0, top])
                .labels([Line::from("0"), Line::from((spec.unit)(top))]),
        )
        .style(Style::new());
    chart.render(plot, buf);
}

fn component_lines(
    view: Shared<'_>,
    status: Option<&ComponentStatus>,
    samples: &Samples,
    width: u16,
) -> Vec<Line<'static>> {
    let theme = view.theme;
    let spark_width = usize::from(width).saturating_sub(LABEL + VALUE + 1);
    let row = |label: &str, value: String, series: &Series| {
        Line::from(vec![
            Span::styled(format!("{label:<LABEL$}"), theme.label()),
            Span::raw(format!("{value:>VALUE$} ")),
            Span::styled(
                theme.sparkline(series.values().iter(), spark_width),
                theme.good(),
            ),
        ])
    };
    let mut lines = Vec::new();
    match current(status, samples) {
        Some((cpu, rss, fds)) => {
            lines.push(row("CPU", format!("{cpu:.1} %"), &samples.cpu));
            lines.push(row("Memory", format::bytes(rss as u64), &samples.rss));
            lines.push(row("Open fds", format!("{fds:.0}"), &samples.fds));
        }
        None if samples.cpu.values().is_empty() => {
            let state = status.map(|s| s.state.word()).unwrap_or("unknown");
            lines.push(Line::styled(
                format!("no process metrics yet (state: {state})"),
                theme.dim(),
            ));
        }
        None => {
            lines.push(Line::styled(no_process(status), theme.warning()));
            lines.push(row("CPU", "-".into(), &samples.cpu));
            lines.push(row("Memory", "-".into(), &samples.rss));
        }
    }
    if let Some(restarts) = status.map(|s| s.restarts) {
        lines.push(row("Restarts", restarts.to_string(), &samples.restarts));
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
            let mut spans = vec![
                Span::styled(
                    format!("{} ", theme.status_icon(status)),
                    theme.status_style(status),
                ),
                Span::raw(format!("{:<name_width$} ", status.name)),
            ];
            match samples.and_then(|s| current(Some(status), s)) {
                Some((cpu, rss, _)) => {
                    spans.push(Span::raw(format!(
                        "{:>6.1} %{:>11} ",
                        cpu,
                        format::bytes(rss as u64)
                    )));
                    if let Some(s) = samples {
                        spans.push(Span::styled(
                            theme.sparkline(s.cpu.values().iter(), spark_width),
                            theme.good(),
                        ));
                    }
                }
                None => spans.push(Span::styled(status.state.word(), theme.dim())),
            }
            Line::from(spans)
        })
        .collect()
}

/// A trend for a small space (the overview tile): CPU over the last samples.
pub fn trend(theme: &Theme, series: &Series, width: usize) -> String {
    theme.sparkline(series.values().iter(), width)
}
