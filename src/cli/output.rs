//! Plain-text rendering for the CLI: the status table, issues, log lines. Health is shown as the
//! panels show it (`unknown` for a component without a process, never a stale `healthy`).

use std::fmt::Write;
use std::time::SystemTime;

use crate::model::{BreakerState, ComponentStatus, Issue, LogLine, LogStream};
use crate::panel::metrics::has_process;
use crate::panel::theme::known_health;
use crate::text::ShortDuration;

/// The `status` columns, in the order they are printed; the first [`ALWAYS`] always are.
const STATUS_COLUMNS: [&str; 12] = [
    "NAME",
    "STATE",
    "HEALTH",
    "PID",
    "UPTIME",
    "RESTARTS",
    "CPU%",
    "RSS",
    "LAST EXIT",
    "HEALING",
    "LAST ISSUE",
    "LAST ACTION",
];
const ALWAYS: usize = 6;

/// The exit status of a command whose reader went away (standard output a pipe whose other end
/// closed, `hms-console logs api | head`): 128 + SIGPIPE, what a shell reports for `cat` or
/// `grep` ended the same way, so that `set -o pipefail` scripts see the same as with them.
pub const READER_GONE: u8 = 141;

/// Writes the command's output, as `print!` does, but hands a failed write to the caller
/// (`print!` panics with a backtrace). Rust ignores SIGPIPE (we keep it so: a core that goes away
/// mid-request is an error to report, not a silent death), so a reader that went away is an
/// error here, which [`super::exit_code`] turns into a quiet [`READER_GONE`]
/// ([`reader_went_away`]); any other (a full disk) is said, and the command ends with 1.
pub fn write_stdout(text: std::fmt::Arguments) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::io::Write;
    std::io::stdout()
        .lock()
        .write_fmt(text)
        .context("cannot write the output")
}

/// True when a command failed only because its reader went away (a write to standard output
/// got EPIPE): it ends quietly with [`READER_GONE`]. A broken pipe to the core is not this: it
/// reaches the command as a client error, not as a bare I/O error.
pub fn reader_went_away(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

/// The order in which the other columns are given room when the width is limited.
const PRIORITY: [usize; 6] = [6, 7, 9, 8, 10, 11];

/// The `status` table: one row per component, columns sized to their content, no cell cut. With
/// a `width`, columns that do not fit are left out (CPU% and RSS go last, LAST ACTION first) and
/// a last line says how many and that `--wide` shows them; `None` prints every column.
pub fn status_table(
    components: &[ComponentStatus],
    now: SystemTime,
    width: Option<usize>,
) -> String {
    // Cells borrow what they can (names, fixed words) and write the rest into one string: with
    // 100 components, a String for every cell and copies of the rows were most of
    // `hms-console status`'s allocations (issue 12).
    let mut text = String::with_capacity(components.len() * 64);
    let mut cells: Vec<[Cell<'_>; 12]> = Vec::with_capacity(components.len() + 1);
    cells.push(STATUS_COLUMNS.map(Cell::Word));
    let dash = Cell::Word("-");
    for c in components {
        let mut made = |cell: std::fmt::Arguments<'_>| Cell::made(&mut text, cell);
        let (cpu, rss) = match (&c.metrics, has_process(c)) {
            (Some(m), true) => (
                made(format_args!("{:.1}", m.cpu_percent)),
                made(format_args!("{}", Rss(m.rss_bytes))),
            ),
            (Some(_) | None, _) => (dash.clone(), dash.clone()),
        };
        let healing = match (c.healing.breaker, c.healing.backoff) {
            (BreakerState::Open, _) => match c.healing.next_trial_at {
                Some(t) => made(format_args!(
                    "breaker open, trial in {}",
                    ShortDuration(t.duration_since(now).unwrap_or_default())
                )),
                None => Cell::Word("breaker open"),
            },
            (BreakerState::HalfOpen, _) => Cell::Word("breaker half-open (trial)"),
            (BreakerState::Closed, Some(d)) => made(format_args!("backoff {}", ShortDuration(d))),
            (BreakerState::Closed, None) => dash.clone(),
        };
        let health = match known_health(c) {
            Some(h) => h.word(),
            None => "unknown",
        };
        cells.push([
            Cell::Word(c.name.as_str()),
            Cell::Word(c.state.word()),
            Cell::Word(health),
            c.pid
                .map_or_else(|| dash.clone(), |p| made(format_args!("{p}"))),
            c.uptime(now).map_or_else(
                || dash.clone(),
                |u| made(format_args!("{}", ShortDuration(u))),
            ),
            made(format_args!("{}", c.restarts)),
            cpu,
            rss,
            c.last_exit
                .as_ref()
                .map_or_else(|| dash.clone(), |e| made(format_args!("{e}"))),
            healing,
            c.healing.last_issue.as_ref().map_or_else(
                || dash.clone(),
                |i| made(format_args!("{} ({})", i.issue_type, i.severity)),
            ),
            c.healing
                .last_action
                .as_ref()
                .map_or_else(|| dash.clone(), |a| made(format_args!("{a}"))),
        ]);
    }
    let rows: Vec<[&str; 12]> = cells
        .iter()
        .map(|row| {
            row.each_ref().map(|cell| match cell {
                Cell::Word(word) => word,
                Cell::Made(range) => &text[range.clone()],
            })
        })
        .collect();
    let widths = column_widths(&rows);
    let mut shown: Vec<usize> = (0..ALWAYS).collect();
    let mut used: usize = widths[..ALWAYS].iter().sum::<usize>() + 2 * (ALWAYS - 1);
    let mut hidden = Vec::new();
    for &i in &PRIORITY {
        if width.is_none_or(|w| used + 2 + widths[i] <= w) {
            used += 2 + widths[i];
            shown.push(i);
        } else {
            hidden.push(STATUS_COLUMNS[i]);
        }
    }
    shown.sort_unstable();
    let mut out = render_columns(&rows, &shown, &widths);
    if !hidden.is_empty() {
        out.push_str(&format!(
            "({} more column{}: --wide)\n",
            hidden.len(),
            if hidden.len() == 1 { "" } else { "s" }
        ));
    }
    out
}

/// A cell of the status table: a word it borrows, or a range of the text it wrote.
#[derive(Clone)]
enum Cell<'a> {
    Word(&'a str),
    Made(std::ops::Range<usize>),
}

impl Cell<'_> {
    /// Writes `cell` at the end of `text`.
    fn made(text: &mut String, cell: std::fmt::Arguments<'_>) -> Self {
        let start = text.len();
        let _ = text.write_fmt(cell);
        Cell::Made(start..text.len())
    }
}

/// Recent issues, oldest first.
pub fn issues_table(issues: &[Issue]) -> String {
    let mut rows = vec![vec![
        "TIME".to_string(),
        "COMPONENT".into(),
        "SEVERITY".into(),
        "TYPE".into(),
        "CONTEXT".into(),
    ]];
    for i in issues {
        let context: Vec<String> = i.context.iter().map(|(k, v)| format!("{k}={v}")).collect();
        rows.push(vec![
            clock(i.detected_at),
            i.component.clone(),
            i.severity.to_string(),
            i.issue_type.clone(),
            context.join(" "),
        ]);
    }
    render(&rows)
}

/// One output line as `logs` prints it: time, component, a stream mark, the text.
pub fn log_line(line: &LogLine) -> String {
    let mark = match line.stream {
        LogStream::Stdout => "|",
        LogStream::Stderr => "!",
        LogStream::System => "*",
    };
    format!("{} {} {mark} {}", clock(line.at), line.component, line.text)
}

/// `HH:MM:SS.mmm` in UTC.
fn clock(t: SystemTime) -> String {
    let stamp = humantime::format_rfc3339_millis(t).to_string();
    stamp.get(11..23).map_or(stamp.clone(), |s| s.to_string())
}

/// RSS as the status table shows it: `1.6M`, `2.0G`.
struct Rss(u64);

impl std::fmt::Display for Rss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const MIB: f64 = 1024.0 * 1024.0;
        let b = self.0 as f64;
        if b >= 1024.0 * MIB {
            write!(f, "{:.1}G", b / (1024.0 * MIB))
        } else {
            write!(f, "{:.1}M", b / MIB)
        }
    }
}

fn render(rows: &[Vec<String>]) -> String {
    let columns: Vec<usize> = (0..rows.first().map_or(0, Vec::len)).collect();
    render_columns(rows, &columns, &column_widths(rows))
}

/// The width of each column (by index): its widest cell, in characters.
fn column_widths<S: AsRef<str>>(rows: &[impl AsRef<[S]>]) -> Vec<usize> {
    let mut widths = Vec::new();
    for row in rows {
        let row = row.as_ref();
        widths.resize(widths.len().max(row.len()), 0);
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.as_ref().chars().count());
        }
    }
    widths
}

/// The cells of `columns` (indices into each row, in order) as aligned columns, two spaces
/// apart, each column as wide as its widest cell (`widths`, from [`column_widths`]), no
/// trailing spaces: written into one string.
fn render_columns<S: AsRef<str>>(
    rows: &[impl AsRef<[S]>],
    columns: &[usize],
    widths: &[usize],
) -> String {
    let line_width: usize = columns.iter().map(|&i| widths[i] + 2).sum();
    let mut out = String::with_capacity(rows.len() * (line_width + 1));
    for row in rows {
        let start = out.len();
        for (n, &i) in columns.iter().enumerate() {
            let cell = row.as_ref()[i].as_ref();
            out.push_str(cell);
            if n + 1 < columns.len() {
                out.extend(std::iter::repeat_n(
                    ' ',
                    widths[i] - cell.chars().count() + 2,
                ));
            }
        }
        let line = out[start..].trim_end().len();
        out.truncate(start + line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ComponentKind, HealingStatus, HealthStatus, RestartPolicy, RunState};

    fn component(name: &str, state: RunState) -> ComponentStatus {
        ComponentStatus {
            name: name.into(),
            kind: ComponentKind::Process,
            state,
            health: HealthStatus::Healthy,
            pid: (state == RunState::Running).then_some(4242),
            started_at: None,
            restarts: 0,
            metrics: None,
            reported: None,
            last_exit: None,
            depends_on: vec![],
            restart: RestartPolicy::Permanent,
            recovery_actions: vec![],
            healing: HealingStatus::default(),
        }
    }

    #[test]
    fn a_stopped_component_is_not_healthy_in_the_table() {
        let table = status_table(
            &[
                component("api", RunState::Running),
                component("worker", RunState::Stopped),
            ],
            SystemTime::UNIX_EPOCH,
            None,
        );
        let worker = table.lines().find(|l| l.starts_with("worker")).unwrap();
        assert!(
            worker.contains("unknown") && !worker.contains("healthy"),
            "{worker}"
        );
        let api = table.lines().find(|l| l.starts_with("api")).unwrap();
        assert!(api.contains("healthy"), "{api}");
    }

    #[test]
    fn the_table_fits_the_width_and_names_what_it_left_out() {
        let mut c = component("api", RunState::Running);
        c.healing.last_action = Some(crate::model::HealingAction::Restart);
        let now = SystemTime::UNIX_EPOCH;
        let wide = status_table(std::slice::from_ref(&c), now, None);
        assert!(
            wide.lines().next().unwrap().ends_with("LAST ACTION"),
            "{wide}"
        );
        let narrow = status_table(std::slice::from_ref(&c), now, Some(60));
        for line in narrow.lines().take(2) {
            assert!(line.chars().count() <= 60, "{line:?} fits 60 columns");
        }
        assert!(narrow.starts_with("NAME"));
        assert!(!narrow.lines().next().unwrap().contains("LAST ACTION"));
        assert!(narrow.contains("more columns: --wide"), "{narrow}");
        let eighty = status_table(&[c], now, Some(80));
        assert!(eighty.lines().next().unwrap().contains("CPU%"), "{eighty}");
    }

    /// Every kind of cell, against the table as it was printed before the cells were written
    /// into one string (the expected text below was printed by that code).
    #[test]
    fn every_kind_of_cell_prints_as_before() {
        use crate::model::{
            BreakerState, ExitInfo, HealingAction, Issue, ProcessMetrics, Severity,
        };
        use std::time::Duration;
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut api = component("api", RunState::Running);
        api.started_at = Some(now - Duration::from_secs(3 * 3600 + 125));
        api.restarts = 12;
        api.metrics = Some(ProcessMetrics {
            cpu_percent: 12.25,
            rss_bytes: 3 * 1024 * 1024 * 1024 + 5,
            open_fds: 7,
        });
        api.last_exit = Some(ExitInfo {
            code: Some(3),
            signal: None,
            at: now,
        });
        api.healing.backoff = Some(Duration::from_millis(1500));
        api.healing.last_issue = Some(Issue::new("api", "crash", Severity::Critical));
        api.healing.last_action = Some(HealingAction::Recover {
            name: "clear_cache".into(),
        });
        let mut db = component("db", RunState::Running);
        db.started_at = Some(now - Duration::from_millis(850));
        db.metrics = Some(ProcessMetrics {
            cpu_percent: 0.05,
            rss_bytes: 1_700_000,
            open_fds: 3,
        });
        let mut mailer = component("mailer", RunState::BreakerOpen);
        mailer.healing.breaker = BreakerState::Open;
        mailer.healing.next_trial_at = Some(now + Duration::from_secs(90));
        mailer.last_exit = Some(ExitInfo {
            code: None,
            signal: Some(9),
            at: now,
        });
        let mut worker = component("worker-with-a-long-name", RunState::Running);
        worker.healing.breaker = BreakerState::HalfOpen;
        worker.started_at = Some(now - Duration::from_secs(2 * 86_400 + 7200));
        let mut cache = component("cache", RunState::Stopped);
        cache.healing.breaker = BreakerState::Open;
        let table = status_table(&[api, db, mailer, worker, cache], now, None);
        assert_eq!(table, EXPECTED, "\n{table}");
    }

    const EXPECTED: &str = concat!(
        "NAME                     STATE         HEALTH   PID   UPTIME  RESTARTS  CPU%  RSS   LAST EXIT  HEALING                        LAST ISSUE        LAST ACTION\n",
        "api                      running       healthy  4242  3h 2m   12        12.2  3.0G  exit 3     backoff 1s                     crash (critical)  recover: clear_cache\n",
        "db                       running       healthy  4242  850ms   0         0.1   1.6M  -          -                              -                 -\n",
        "mailer                   breaker open  unknown  -     -       0         -     -     SIGKILL    breaker open, trial in 1m 30s  -                 -\n",
        "worker-with-a-long-name  running       healthy  4242  2d 2h   0         -     -     -          breaker half-open (trial)      -                 -\n",
        "cache                    stopped       unknown  -     -       0         -     -     -          breaker open                   -                 -\n",
    );
}
