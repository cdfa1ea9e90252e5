//! The tmux console end to end: the real `hms-console` binary builds windows on a real tmux
//! server, its panel processes talk to a real core, and the test reads what tmux shows
//! (`list-panes`, `capture-pane`). Each test runs its own core (temp socket and data directory)
//! and its own tmux server on a private socket (`-L hms-t-<pid>-<n>`), and kills only those two,
//! also when it panics. Every wait polls with a deadline.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{BIN, Core, wait_for};
use hms::console::session::LayoutSource;
use hms::model::RunState;
use hms::tmux::{Grid, compile};

/// Generous: tests run in parallel, each with a core and a dozen or more panel processes.
const DEADLINE: Duration = Duration::from_secs(15);

/// Three components that never exit by themselves.
const FLEET: &str = r#"
[[component]]
name = "alpha"
command = ["sleep", "1000"]

[[component]]
name = "beta"
command = ["sleep", "1000"]

[[component]]
name = "gamma"
command = ["sleep", "1000"]
"#;

const NAMES: [&str; 3] = ["alpha", "beta", "gamma"];

/// The size `attach --no-attach` gives a new session.
const WIDTH: u16 = 200;
const HEIGHT: u16 = 50;

/// A private tmux server, killed (and its socket file removed) when the test ends, however it
/// ends. The server is started by `hms-console` itself; its environment has `HOME` pointing at
/// an empty directory, so no user tmux config changes what the test sees.
struct TmuxServer {
    name: String,
    home: tempfile::TempDir,
}

impl TmuxServer {
    fn new() -> TmuxServer {
        static N: AtomicU32 = AtomicU32::new(0);
        TmuxServer {
            name: format!(
                "hms-t-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ),
            home: tempfile::Builder::new()
                .prefix("hms-home")
                .tempdir()
                .expect("temp home"),
        }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.args(["-L", &self.name, "-f", "/dev/null"])
            .env("HOME", self.home.path())
            .env_remove("TMUX")
            .env_remove("XDG_CONFIG_HOME")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs one tmux command on this server and returns its stdout; panics if it fails.
    fn tmux(&self, args: &[&str]) -> String {
        let out = self.command().args(args).output().expect("run tmux");
        assert!(
            out.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn socket_path(&self) -> PathBuf {
        let out = self
            .command()
            .args(["display-message", "-p", "#{socket_path}"])
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        if !out.is_empty() {
            return out.into();
        }
        let dir = std::env::var_os("TMUX_TMPDIR").unwrap_or_else(|| "/tmp".into());
        Path::new(&dir)
            .join(format!("tmux-{}", nix::unistd::getuid()))
            .join(&self.name)
    }

    /// The panes of a window (a `session:window` or `@N` target), in pane index order.
    fn panes(&self, window: &str) -> Vec<Pane> {
        self.tmux(&[
            "list-panes",
            "-t",
            window,
            "-F",
            "#{pane_id}\t#{pane_left}\t#{pane_top}\t#{pane_width}\t#{pane_height}\t#{pane_pid}\t#{pane_title}",
        ])
        .lines()
        .map(Pane::parse)
        .collect()
    }

    /// The session's windows in index order.
    fn windows(&self, session: &str) -> Vec<Window> {
        self.tmux(&[
            "list-windows",
            "-t",
            &format!("={session}"),
            "-F",
            "#{window_id}\t#{window_name}\t#{window_panes}\t#{window_layout}\t#{@hms-layout}",
        ])
        .lines()
        .map(Window::parse)
        .collect()
    }

    fn window(&self, session: &str, name: &str) -> Window {
        let windows = self.windows(session);
        let mut named = windows.iter().filter(|w| w.name == name);
        let found = named
            .next()
            .unwrap_or_else(|| panic!("no window '{name}' in {windows:?}"))
            .clone();
        assert!(named.next().is_none(), "two windows '{name}': {windows:?}");
        found
    }

    fn sessions(&self) -> Vec<String> {
        self.tmux(&["list-sessions", "-F", "#{session_name}"])
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn capture(&self, pane: &str) -> String {
        self.tmux(&["capture-pane", "-p", "-t", pane])
    }

    /// Waits until the pane shows every one of `needles`; returns what it showed.
    fn wait_shows(&self, pane: &Pane, needles: &[&str]) -> String {
        let mut last = String::new();
        let found = wait_for_quiet(DEADLINE, || {
            last = self.capture(&pane.id);
            needles
                .iter()
                .all(|n| last.contains(n))
                .then(|| last.clone())
        });
        found.unwrap_or_else(|| {
            panic!(
                "pane {} ({}) did not show {needles:?} within {DEADLINE:?}; it shows:\n{last}",
                pane.id, pane.title
            )
        })
    }
}

impl Drop for TmuxServer {
    fn drop(&mut self) {
        // Only this test's server; tmux 3.3a leaves the socket file behind, so remove it too.
        let path = self.socket_path();
        let _ = self.command().arg("kill-server").output();
        let _ = std::fs::remove_file(path);
    }
}

/// Like `wait_for`, but gives up with `None` instead of panicking, so the caller can say what it
/// saw last.
fn wait_for_quiet<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pane {
    id: String,
    left: u16,
    top: u16,
    width: u16,
    height: u16,
    pid: u32,
    title: String,
}

impl Pane {
    fn parse(line: &str) -> Pane {
        let f: Vec<&str> = line.splitn(7, '\t').collect();
        assert_eq!(f.len(), 7, "list-panes line: {line:?}");
        let n = |i: usize| f[i].parse::<u16>().expect("a number");
        Pane {
            id: f[0].into(),
            left: n(1),
            top: n(2),
            width: n(3),
            height: n(4),
            pid: f[5].parse().expect("a pid"),
            title: f[6].into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Window {
    id: String,
    name: String,
    panes: usize,
    layout: String,
    tag: String,
}

impl Window {
    fn parse(line: &str) -> Window {
        let f: Vec<&str> = line.splitn(5, '\t').collect();
        assert_eq!(f.len(), 5, "list-windows line: {line:?}");
        Window {
            id: f[0].into(),
            name: f[1].into(),
            panes: f[2].parse().expect("a count"),
            layout: f[3].into(),
            tag: f[4].into(),
        }
    }
}

/// A core and a tmux server for one test. The tmux server is declared first so it is dropped
/// first: the panels go before the core they watch.
struct Console {
    tmux: TmuxServer,
    core: Core,
}

impl Console {
    /// A core running [`FLEET`] and an empty private tmux server name (no server yet).
    fn start() -> Console {
        let console = Console {
            tmux: TmuxServer::new(),
            core: Core::start(FLEET),
        };
        for name in NAMES {
            console
                .core
                .wait_component(name, "running", DEADLINE, |c| c.state == RunState::Running);
        }
        console
    }

    /// `hms-console` against this console's core and tmux server, the server named by
    /// `HMS_TMUX_SOCKET` (how scripts select it).
    fn hms(&self, args: &[&str]) -> Output {
        self.hms_command()
            .env("HMS_TMUX_SOCKET", &self.tmux.name)
            .args(args)
            .output()
            .expect("run hms-console")
    }

    /// The same, with the server named by `--tmux-socket` and `HMS_TMUX_SOCKET` unset.
    fn hms_flag(&self, args: &[&str]) -> Output {
        self.hms_command()
            .env_remove("HMS_TMUX_SOCKET")
            .args(["--tmux-socket", &self.tmux.name])
            .args(args)
            .output()
            .expect("run hms-console")
    }

    fn hms_command(&self) -> Command {
        self.program_command(Path::new(BIN))
    }

    /// [`Console::hms_command`] for another copy of `hms-console`.
    fn program_command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(["--socket", self.core.socket.to_str().expect("utf-8 path")])
            .args(["--data-dir", self.core.data.to_str().expect("utf-8 path")])
            .env("HOME", self.tmux.home.path())
            .env_remove("TMUX")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("HMS_SOCKET")
            .env_remove("HMS_DATA_DIR")
            .env_remove("NO_COLOR")
            .env("RUST_LOG", "hms=debug")
            .stdin(Stdio::null());
        cmd
    }

    fn hms_ok(&self, args: &[&str]) -> String {
        ok(self.hms(args), args)
    }

    /// `attach --no-attach`, checked; returns what it printed.
    fn attach(&self) -> String {
        self.hms_ok(&["attach", "--no-attach"])
    }

    fn pid(&self, component: &str) -> u32 {
        self.core
            .component(component)
            .pid
            .unwrap_or_else(|| panic!("{component} has no pid"))
    }

    /// The pane of `window` whose title is `title`.
    fn pane(&self, window: &str, title: &str) -> Pane {
        let panes = self.tmux.panes(&format!("=hms:{window}"));
        panes
            .iter()
            .find(|p| p.title == title)
            .unwrap_or_else(|| panic!("no pane titled '{title}' in window {window}: {panes:?}"))
            .clone()
    }

    /// Waits until an actions pane is ready for input (its prompt and the fleet are drawn), so
    /// that keys sent next reach the panel and not a terminal still in cooked mode.
    fn wait_actions_ready(&self, pane: &Pane) {
        self.tmux.wait_shows(pane, &["commands:", "\n>"]);
    }

    /// Types a line into a pane and presses Enter.
    fn type_line(&self, pane: &Pane, line: &str) {
        self.tmux.tmux(&["send-keys", "-t", &pane.id, "-l", line]);
        self.tmux.tmux(&["send-keys", "-t", &pane.id, "Enter"]);
    }

    /// Waits until `component` runs with a pid other than `old`; returns the new pid.
    fn wait_new_pid(&self, component: &str, old: u32) -> u32 {
        self.core
            .wait_component(component, "a new pid", DEADLINE, |c| {
                c.state == RunState::Running && c.pid.is_some_and(|p| p != old)
            })
            .pid
            .expect("running has a pid")
    }
}

fn ok(out: Output, args: &[&str]) -> String {
    assert!(
        out.status.success(),
        "hms-console {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn fleet() -> Vec<String> {
    NAMES.iter().map(|s| s.to_string()).collect()
}

/// Does `text` hold `number` as a whole word (so pid 123 does not match in 1234)?
fn shows_number(text: &str, number: u32) -> bool {
    let n = number.to_string();
    text.split(|c: char| !c.is_ascii_digit()).any(|w| w == n)
}

/// Checks that the panes form full-width rows of aligned columns, tiling the `width` × `height`
/// window: panes of a row share their top and height, sit left to right with one-cell borders
/// from column 0 to the right edge, rows follow one another with one border line from the top
/// (the first row starts below the pane-border-status line) to the bottom, and rows with the
/// same number of panes have the same columns. Returns the rows' pane counts, top to bottom.
fn assert_aligned_rows(panes: &[Pane], width: u16, height: u16) -> Vec<usize> {
    let mut rows: BTreeMap<u16, Vec<&Pane>> = BTreeMap::new();
    for p in panes {
        rows.entry(p.top).or_default().push(p);
    }
    let mut bottom = 0;
    let mut columns: BTreeMap<usize, Vec<(u16, u16)>> = BTreeMap::new();
    for (top, row) in &mut rows {
        assert_eq!(*top, bottom + 1, "rows follow one another: {panes:#?}");
        row.sort_by_key(|p| p.left);
        let h = row[0].height;
        let mut right = 0;
        for (i, p) in row.iter().enumerate() {
            assert_eq!(p.height, h, "a row has one height: {panes:#?}");
            let expected_left = if i == 0 { 0 } else { right + 1 };
            assert_eq!(p.left, expected_left, "columns touch: {panes:#?}");
            right = p.left + p.width;
        }
        assert_eq!(right, width, "a row spans the width: {panes:#?}");
        let cols: Vec<(u16, u16)> = row.iter().map(|p| (p.left, p.width)).collect();
        let same = columns.entry(row.len()).or_insert_with(|| cols.clone());
        assert_eq!(*same, cols, "rows of {} panes share columns", row.len());
        bottom = top + h;
    }
    assert_eq!(bottom, height, "the rows fill the height: {panes:#?}");
    rows.values().map(Vec::len).collect()
}

/// Checks that the panes are exactly the grid compiled for `width` × `height`: each pane in
/// its panel's cell (a first-row pane gives its top line to the border title) and titled with
/// its panel's title.
fn assert_compiled(panes: &[Pane], grid: &Grid, width: u16, height: u16) {
    let compiled = compile(grid, width, height).expect("the grid compiles");
    let rects = compiled.leaf_rects();
    assert_eq!(panes.len(), rects.len(), "{panes:#?}");
    for ((pane, rect), &panel) in panes.iter().zip(&rects).zip(compiled.leaf_panels()) {
        let border = u16::from(rect.y == 0);
        assert_eq!(
            (pane.left, pane.top, pane.width, pane.height),
            (rect.x, rect.y + border, rect.width, rect.height - border),
            "pane {} in its cell {rect:?}",
            pane.id
        );
        assert_eq!(pane.title, grid.panels()[panel].display_title());
    }
}

/// The pane's process is the panel itself (the pane command `exec`s it): the slim `hms-panel`
/// or `hms-console … panel`.
fn is_panel_process(pid: u32) -> bool {
    let words = command_line(pid);
    words.first().is_some_and(|w| w.ends_with("/hms-panel")) || words.iter().any(|w| w == "panel")
}

/// A process's arguments, its program first.
fn command_line(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| {
            c.split(|b| *b == 0)
                .filter(|w| !w.is_empty())
                .map(|w| String::from_utf8_lossy(w).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until every pane of `window` runs `program`, started as `program … panel KIND` when
/// `panel_word`, and returns the panes.
fn wait_panes_run(c: &Console, window: &str, program: &Path, panel_word: bool) -> Vec<Pane> {
    let panes = c.tmux.panes(window);
    for p in &panes {
        wait_for(
            &format!("pane {} to run {}", p.title, program.display()),
            DEADLINE,
            || {
                let words = command_line(p.pid);
                (words.first().map(PathBuf::from).as_deref() == Some(program)
                    && words.iter().any(|w| w == "panel") == panel_word)
                    .then_some(())
            },
        );
    }
    panes
}

#[test]
fn panes_run_the_slim_panel_program_installed_beside_hms_console() {
    // `cargo test` builds every binary of the package into the same directory.
    let slim = Path::new(BIN).with_file_name("hms-panel");
    assert!(slim.is_file(), "{} is built", slim.display());
    let c = Console::start();
    c.attach();
    wait_panes_run(&c, "=hms:overview", &slim, false);
    let health = c.pane("overview", "System Health");
    c.tmux.wait_shows(&health, &["alpha", "beta", "gamma"]);
    // A window a slim panel opens (the actions pane's `open`) runs slim panels too.
    let actions = c.pane("overview", "System Actions");
    c.wait_actions_ready(&actions);
    c.type_line(&actions, "open gamma");
    c.tmux
        .wait_shows(&actions, &["window 'gamma' built and shown"]);
    wait_panes_run(&c, "=hms:gamma", &slim, false);
    c.tmux
        .wait_shows(&c.pane("gamma", "Component Metrics"), &["CPU", "Memory"]);
}

#[test]
fn the_slim_panel_explains_its_command_line_and_refuses_a_bad_one() {
    let slim = env!("CARGO_BIN_EXE_hms-panel");
    let help = Command::new(slim)
        .arg("--help")
        .output()
        .expect("run hms-panel");
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.starts_with("Usage: hms-panel"), "{text}");
    assert!(text.contains("system-health"), "{text}");
    let bad = Command::new(slim)
        .args(["--socket", "/nowhere", "graphs"])
        .output()
        .expect("run hms-panel");
    assert_eq!(bad.status.code(), Some(2), "bad usage, as clap's");
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.starts_with("hms-panel: unknown panel kind 'graphs'; kinds: metrics"),
        "{err}"
    );
}

#[test]
fn a_lone_hms_console_runs_its_panels_itself() {
    // hms-console and the hms-cli that carries out its commands, with no hms-panel beside them
    // (hard links when the file system allows: the debug binaries are large).
    let (_dir, lone) = common::programs_alone(&["hms-console", "hms-cli"]);
    let full = lone.with_file_name("hms-cli");
    let c = Console::start();
    let out = c
        .program_command(&lone)
        .env("HMS_TMUX_SOCKET", &c.tmux.name)
        .args(["attach", "--no-attach"])
        .output()
        .expect("run the lone hms-console");
    ok(out, &["attach", "--no-attach"]);
    wait_panes_run(&c, "=hms:overview", &full, true);
    let health = c.pane("overview", "System Health");
    c.tmux.wait_shows(&health, &["alpha", "beta", "gamma"]);
    // Its panels open windows of panels run the same way.
    let actions = c.pane("overview", "System Actions");
    c.wait_actions_ready(&actions);
    c.type_line(&actions, "open beta");
    c.tmux
        .wait_shows(&actions, &["window 'beta' built and shown"]);
    wait_panes_run(&c, "=hms:beta", &full, true);
}

#[test]
fn attach_builds_the_overview_only_and_component_windows_are_built_when_first_opened() {
    let c = Console::start();
    assert_eq!(c.attach(), "hms\n", "prints the session name, nothing else");
    assert_eq!(c.tmux.sessions(), ["hms"]);
    let windows = c.tmux.windows("hms");
    let names: Vec<&str> = windows.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(
        names,
        ["overview"],
        "no component window before it is opened"
    );

    // The overview: three tiles side by side, then System Health and System Actions rows across
    // the whole width.
    let overview = c.tmux.panes("=hms:overview");
    assert_eq!(assert_aligned_rows(&overview, WIDTH, HEIGHT), [3, 1, 1]);
    let titles: Vec<&str> = overview.iter().map(|p| p.title.as_str()).collect();
    assert_eq!(
        titles,
        ["alpha", "beta", "gamma", "System Health", "System Actions"]
    );
    let grid = LayoutSource::Overview
        .grid(&fleet())
        .expect("overview grid");
    assert_compiled(&overview, &grid, WIDTH, HEIGHT);
    assert_eq!(windows[0].tag, "overview");

    // Three ways to open a component's window: `open` in the actions pane, Enter on a tile,
    // and `layout twobytwo` from a shell.
    let actions = c.pane("overview", "System Actions");
    c.wait_actions_ready(&actions);
    c.type_line(&actions, "open beta");
    c.tmux
        .wait_shows(&actions, &["> open beta", "window 'beta' built and shown"]);
    let tile = c.pane("overview", "gamma");
    c.tmux.wait_shows(&tile, &["running"]);
    c.tmux.tmux(&["send-keys", "-t", &tile.id, "Enter"]);
    wait_for("gamma's window", DEADLINE, || {
        c.tmux
            .windows("hms")
            .iter()
            .any(|w| w.name == "gamma")
            .then_some(())
    });
    ok(
        c.hms(&["layout", "twobytwo", "alpha"]),
        &["layout", "twobytwo", "alpha"],
    );
    let windows = c.tmux.windows("hms");
    let mut names: Vec<&str> = windows.iter().map(|w| w.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["alpha", "beta", "gamma", "overview"]);

    // Opening again shows the same window; nothing is built twice.
    let beta = c.tmux.window("hms", "beta");
    c.type_line(&actions, "open beta");
    c.tmux.wait_shows(&actions, &["window 'beta' shown"]);
    assert_eq!(c.tmux.window("hms", "beta").id, beta.id);
    // A name the fleet does not have is refused, naming the nearest.
    c.type_line(&actions, "open bta");
    c.tmux.wait_shows(&actions, &["did you mean 'beta'?"]);

    // Each TwoByTwo window: metrics and logs above, status and actions below.
    for name in NAMES {
        let w = c.tmux.window("hms", name);
        assert_eq!(w.tag, format!("twobytwo:{name}"));
        let panes = c.tmux.panes(&w.id);
        assert_eq!(assert_aligned_rows(&panes, WIDTH, HEIGHT), [2, 2]);
        let titles: Vec<&str> = panes.iter().map(|p| p.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "Component Metrics",
                "Component Logs",
                "Health Status",
                "Actions"
            ]
        );
        assert_compiled(&panes, &Grid::two_by_two(name), WIDTH, HEIGHT);
    }

    // Every pane runs its panel process, started as the pane's command.
    for w in &c.tmux.windows("hms") {
        for p in c.tmux.panes(&w.id) {
            wait_for(&format!("pane {} to run a panel", p.id), DEADLINE, || {
                is_panel_process(p.pid).then_some(())
            });
        }
    }

    // A window built later keeps its panes alive like the first: a killed panel comes back.
    let metrics = c.pane("gamma", "Component Metrics");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(metrics.pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the panel");
    wait_for("the pane respawned", DEADLINE, || {
        let now = c.pane("gamma", "Component Metrics");
        (now.pid != metrics.pid && is_panel_process(now.pid)).then_some(())
    });
    let hook = c
        .tmux
        .tmux(&["show-hooks", "-w", "-t", &c.tmux.window("hms", "gamma").id]);
    assert!(hook.contains("pane-died"), "{hook}");
}

#[test]
fn attach_twice_reuses_the_session_and_its_windows() {
    let c = Console::start();
    c.attach();
    let before = c.tmux.windows("hms");
    let panes_before: Vec<Vec<Pane>> = before.iter().map(|w| c.tmux.panes(&w.id)).collect();
    // The second time through the flag rather than the environment: the same server either way.
    let out = ok(
        c.hms_flag(&["attach", "--no-attach"]),
        &["attach", "--no-attach"],
    );
    assert_eq!(out, "hms\n");
    assert_eq!(c.tmux.sessions(), ["hms"], "no second session");
    let after = c.tmux.windows("hms");
    assert_eq!(after, before, "same windows, same ids, same layouts");
    let panes_after: Vec<Vec<Pane>> = after.iter().map(|w| c.tmux.panes(&w.id)).collect();
    assert_eq!(panes_after, panes_before, "the same panel processes");
}

#[test]
fn every_pane_shows_its_title_and_live_content() {
    let c = Console::start();
    c.attach();
    let status = c.core.status();
    let pid = |name: &str| {
        status
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.pid)
            .expect("running")
    };

    // The titles are the pane borders' (tmux draws them); the panels draw them nowhere else,
    // so a pane's own content never repeats its title.
    // The overview's tiles: state and the pid the core reports, under the name in the border.
    for name in NAMES {
        let tile = c.pane("overview", name);
        let text = c.tmux.wait_shows(&tile, &["running", "pid "]);
        assert!(
            !text.contains(name),
            "the tile's name only in its border:\n{text}"
        );
        assert!(shows_number(&text, pid(name)), "{name}'s pid in:\n{text}");
    }
    let health = c.pane("overview", "System Health");
    let text = c.tmux.wait_shows(&health, &["alpha", "beta", "gamma"]);
    assert!(!text.contains("System Health"), "{text}");
    for name in NAMES {
        let row = text
            .lines()
            .find(|l| l.contains(name))
            .expect("a row per component");
        assert!(row.contains("running"), "{row}");
        assert!(shows_number(row, pid(name)), "{name}'s pid in: {row}");
    }
    let actions = c.pane("overview", "System Actions");
    c.tmux
        .wait_shows(&actions, &["components: alpha beta gamma", "restart"]);

    // A component's own window (named after the component), built when opened.
    ok(c.hms(&["layout", "twobytwo", "beta"]), &["layout"]);
    let metrics = c.pane("beta", "Component Metrics");
    c.tmux.wait_shows(&metrics, &["CPU", "Memory"]);
    let logs = c.pane("beta", "Component Logs");
    let started = format!("started (pid {})", pid("beta"));
    c.tmux.wait_shows(&logs, &[&started]);
    let health = c.pane("beta", "Health Status");
    let text = c.tmux.wait_shows(&health, &["running", "pid "]);
    assert!(shows_number(&text, pid("beta")), "{text}");
    let actions = c.pane("beta", "Actions");
    c.tmux.wait_shows(&actions, &["commands:", "restart"]);
}

#[test]
fn typing_restart_in_the_overview_actions_pane_restarts_the_component() {
    let c = Console::start();
    c.attach();
    let actions = c.pane("overview", "System Actions");
    c.wait_actions_ready(&actions);
    let old = c.pid("beta");
    let untouched = c.pid("alpha");
    c.type_line(&actions, "restart beta");
    let new = c.wait_new_pid("beta", old);
    c.tmux.wait_shows(
        &actions,
        &["> restart beta", &format!("beta started (pid {new})")],
    );
    assert_eq!(c.core.component("beta").restarts, 1);
    assert_eq!(c.pid("alpha"), untouched, "only beta restarted");
    // And the system health row follows.
    let health = c.pane("overview", "System Health");
    wait_for("the new pid in System Health", DEADLINE, || {
        let text = c.tmux.capture(&health.id);
        let row = text.lines().find(|l| l.contains("beta"))?.to_string();
        shows_number(&row, new).then_some(())
    });
}

#[test]
fn bare_restart_in_a_component_window_restarts_that_component() {
    let c = Console::start();
    c.attach();
    ok(c.hms(&["layout", "twobytwo", "gamma"]), &["layout"]);
    let actions = c.pane("gamma", "Actions");
    c.wait_actions_ready(&actions);
    let old: Vec<u32> = NAMES.iter().map(|n| c.pid(n)).collect();
    c.type_line(&actions, "restart");
    let new = c.wait_new_pid("gamma", old[2]);
    c.tmux
        .wait_shows(&actions, &[&format!("gamma started (pid {new})")]);
    assert_eq!(c.pid("alpha"), old[0]);
    assert_eq!(c.pid("beta"), old[1]);
}

#[test]
fn a_typo_in_the_actions_pane_suggests_the_command_and_changes_nothing() {
    let c = Console::start();
    c.attach();
    let actions = c.pane("overview", "System Actions");
    c.wait_actions_ready(&actions);
    let before = c.core.status();
    c.type_line(&actions, "rstart alpha");
    c.tmux.wait_shows(
        &actions,
        &["unknown command 'rstart'", "did you mean 'restart'?"],
    );
    // Nothing was sent: the line is refused before it reaches the core.
    let after = c.core.status();
    for (b, a) in before.iter().zip(&after) {
        assert_eq!((&a.name, a.pid, a.restarts), (&b.name, b.pid, b.restarts));
    }
    let log = std::fs::read_to_string(c.core.data.join("logs/alpha.log")).unwrap_or_default();
    assert!(!log.contains("restart requested"), "{log}");
}

#[test]
fn action_command_restarts_prints_help_and_lists_known_components() {
    // No tmux here: `action` runs a line from the shell through the actions pane's parser.
    let core = Core::start(FLEET);
    let old = core
        .wait_component("alpha", "running", DEADLINE, |c| {
            c.state == RunState::Running
        })
        .pid
        .expect("pid");
    let out = core.cli_ok(&["action", "restart alpha"]);
    let new = core
        .wait_component("alpha", "a new pid", DEADLINE, |c| {
            c.pid.is_some_and(|p| p != old)
        })
        .pid
        .expect("pid");
    assert_eq!(out.trim(), format!("alpha started (pid {new})"));

    let help = core.cli_ok(&["action", "help"]);
    for verb in ["restart [component]", "status", "stop", "start", "help"] {
        assert!(help.contains(verb), "help lists {verb}:\n{help}");
    }

    let out = core.cli(&["action", "restart zeta"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown component 'zeta'") && err.contains("known: alpha, beta, gamma"),
        "{err}"
    );
    let out = core.cli(&["action", "rstart beta"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("did you mean 'restart'?"), "{err}");
    assert_eq!(core.component("beta").restarts, 0);
}

#[test]
fn layout_custom_3x3_yields_tiles_then_health_and_actions_rows() {
    let c = Console::start();
    c.attach();
    let out = ok(
        c.hms_flag(&["layout", "custom", "3x3"]),
        &["layout", "custom", "3x3"],
    );
    assert!(out.contains("custom-3x3"), "{out}");
    let w = c.tmux.window("hms", "custom-3x3");
    assert_eq!(w.tag, "custom:3x3:");
    // Grid::custom(3, 3): rows − 2 = one row of three tiles, then the two full-width rows.
    let panes = c.tmux.panes(&w.id);
    assert_eq!(assert_aligned_rows(&panes, WIDTH, HEIGHT), [3, 1, 1]);
    let grid = Grid::custom(3, 3, &fleet()).expect("3x3");
    assert_compiled(&panes, &grid, WIDTH, HEIGHT);
    // Three equal grid rows: the full-width rows are as tall as the tiles (±1 for the
    // remainder and the border line).
    let heights: Vec<u16> = panes.iter().map(|p| p.height).collect();
    assert!(
        heights.iter().max().unwrap() - heights.iter().min().unwrap() <= 1,
        "{heights:?}"
    );
    // The new window is the one shown.
    let active = c
        .tmux
        .tmux(&["display-message", "-p", "-t", "=hms:", "#{window_name}"]);
    assert_eq!(active.trim(), "custom-3x3");

    // A bigger custom grid fills its tiles in fleet order and leaves the rest empty.
    ok(
        c.hms_flag(&["layout", "custom", "4x3"]),
        &["layout", "custom", "4x3"],
    );
    let panes = c.tmux.panes(&c.tmux.window("hms", "custom-4x3").id);
    assert_eq!(assert_aligned_rows(&panes, WIDTH, HEIGHT), [3, 3, 1, 1]);
    let titles: Vec<&str> = panes.iter().map(|p| p.title.as_str()).collect();
    assert_eq!(&titles[..3], NAMES);
}

#[test]
fn layout_twobytwo_replaces_the_component_window_with_a_2x2() {
    let c = Console::start();
    c.attach();
    ok(c.hms(&["layout", "twobytwo", "beta"]), &["layout"]);
    let old = c.tmux.window("hms", "beta");
    let others: Vec<Window> = c
        .tmux
        .windows("hms")
        .into_iter()
        .filter(|w| w.name != "beta")
        .collect();
    ok(c.hms(&["layout", "twobytwo", "beta"]), &["layout"]);
    let new = c.tmux.window("hms", "beta");
    assert_ne!(new.id, old.id, "rebuilt");
    assert_eq!(new.tag, "twobytwo:beta");
    let panes = c.tmux.panes(&new.id);
    assert_eq!(assert_aligned_rows(&panes, WIDTH, HEIGHT), [2, 2]);
    assert_compiled(&panes, &Grid::two_by_two("beta"), WIDTH, HEIGHT);
    let rest: Vec<Window> = c
        .tmux
        .windows("hms")
        .into_iter()
        .filter(|w| w.name != "beta")
        .collect();
    assert_eq!(rest, others, "the other windows are untouched");
    // The rebuilt window's panels are live.
    c.tmux
        .wait_shows(&c.pane("beta", "Health Status"), &["running", "pid "]);

    // An unknown component is refused with the known ones.
    let out = c.hms(&["layout", "twobytwo", "zeta"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown component 'zeta'"), "{err}");
    assert!(err.contains("alpha, beta, gamma"), "{err}");
}

#[test]
fn layout_file_builds_the_ops_wide_layout() {
    let c = Console::start();
    c.attach();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("layouts/ops-wide.toml");
    ok(
        c.hms(&["layout", "file", path.to_str().unwrap()]),
        &["layout", "file"],
    );
    let w = c.tmux.window("hms", "ops-wide");
    assert_eq!(w.tag, format!("file:{}", path.display()));
    let panes = c.tmux.panes(&w.id);
    assert_eq!(panes.len(), 8);
    let grid = Grid::load(&path).expect("ops-wide").bind_fleet(&fleet());
    assert_compiled(&panes, &grid, WIDTH, HEIGHT);
    // System Health spans two rows on the left; System Actions the whole bottom row.
    let health = c.pane("ops-wide", "System Health");
    let actions = c.pane("ops-wide", "System Actions");
    assert_eq!((health.left, health.top), (0, 1));
    assert_eq!((actions.left, actions.width), (0, WIDTH));
    assert_eq!(health.height + 1, actions.top - 1, "health spans both rows");
    // Tiles in fleet order, then empty slots.
    let tiles: Vec<&str> = panes
        .iter()
        .filter(|p| p.left > 0 && p.top < actions.top)
        .map(|p| p.title.as_str())
        .collect();
    assert_eq!(
        tiles,
        [
            "alpha",
            "Component",
            "beta",
            "Component",
            "gamma",
            "Component"
        ]
    );
    c.tmux
        .wait_shows(&c.pane("ops-wide", "gamma"), &["running"]);
}

#[test]
fn invalid_layout_file_is_refused_and_the_windows_stay() {
    let c = Console::start();
    c.attach();
    let before = c.tmux.windows("hms");
    let panes_before: Vec<Vec<Pane>> = before.iter().map(|w| c.tmux.panes(&w.id)).collect();
    // Every invalid layout fixture, through the real command: the message is the one on the
    // fixture's first line (`# expect: …`), which names the file and, where known, the line.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/layouts");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).expect("fixture");
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .expect("a first line `# expect: …`");
        let out = c
            .hms_command()
            .env("HMS_TMUX_SOCKET", &c.tmux.name)
            .current_dir(&dir)
            .args(["layout", "file", &name])
            .output()
            .expect("run hms-console");
        assert_eq!(out.status.code(), Some(1), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            err.lines().next().unwrap_or_default(),
            format!("hms-console: {expect}"),
            "{name}"
        );
        assert_eq!(c.tmux.windows("hms"), before, "{name}: windows unchanged");
    }
    let panes_after: Vec<Vec<Pane>> = before.iter().map(|w| c.tmux.panes(&w.id)).collect();
    assert_eq!(panes_after, panes_before, "the same panes and panels");
}

#[test]
fn resize_keeps_the_grid_and_reapply_makes_it_exact() {
    let c = Console::start();
    c.attach();
    ok(c.hms(&["layout", "twobytwo", "alpha"]), &["layout"]);
    let overview = c.tmux.window("hms", "overview");
    let alpha = c.tmux.window("hms", "alpha");
    for w in [&overview, &alpha] {
        c.tmux
            .tmux(&["resize-window", "-t", &w.id, "-x", "150", "-y", "40"]);
    }
    // What holds now: tmux's proportional resize keeps every row and column aligned.
    for (w, rows) in [(&overview, vec![3, 1, 1]), (&alpha, vec![2, 2])] {
        let panes = wait_for("the window to take its new size", DEADLINE, || {
            let panes = c.tmux.panes(&w.id);
            let right = panes.iter().map(|p| p.left + p.width).max()?;
            let bottom = panes.iter().map(|p| p.top + p.height).max()?;
            (right == 150 && bottom == 40).then_some(panes)
        });
        assert_eq!(assert_aligned_rows(&panes, 150, 40), rows, "{}", w.name);
    }
    // Re-laying out from what tmux holds (the window's @hms-layout tag and its panes) gives the
    // exact grid for the new size, with every panel process still in its cell.
    let pids_before: Vec<u32> = c.tmux.panes(&overview.id).iter().map(|p| p.pid).collect();
    let tmux = hms::tmux::Tmux::with_socket(&c.tmux.name);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for w in [&overview, &alpha] {
        let id = hms::tmux::WindowId(w.id.trim_start_matches('@').parse().expect("@N"));
        let managed = runtime
            .block_on(hms::console::session::managed_from_tmux(
                &tmux,
                "hms",
                id,
                &w.name,
                &w.tag,
                &fleet(),
            ))
            .expect("read the window back")
            .expect("a managed window");
        runtime
            .block_on(hms::tmux::reapply(&tmux, &managed))
            .expect("reapply");
        assert_compiled(&c.tmux.panes(&w.id), &managed.grid, 150, 40);
    }
    let pids_after: Vec<u32> = c.tmux.panes(&overview.id).iter().map(|p| p.pid).collect();
    assert_eq!(pids_after, pids_before, "no panel restarted");
    // And the panels redraw for their new size.
    let health = c.pane("overview", "System Health");
    c.tmux.wait_shows(&health, &["alpha", "gamma"]);
    // The header's last column (PID) sits at the right of the 150-column pane, once the panel
    // has had its resize (it may still show the old width when first captured).
    let mut text = String::new();
    let redrawn = wait_for_quiet(DEADLINE, || {
        text = c.tmux.capture(&health.id);
        (text.lines().next().unwrap_or_default().chars().count() > 140).then_some(())
    });
    assert!(redrawn.is_some(), "{text}");
}

#[test]
fn panels_say_core_unreachable_and_reconnect_when_it_returns() {
    let mut c = Console::start();
    c.attach();
    ok(c.hms(&["layout", "twobytwo", "beta"]), &["layout"]);
    // Each pane with what it shows only when the core answers.
    let panes = [
        (c.pane("overview", "alpha"), "running"),
        (c.pane("overview", "System Health"), "running"),
        (c.pane("overview", "System Actions"), "components: alpha"),
        (c.pane("beta", "Health Status"), "running"),
        (c.pane("beta", "Component Metrics"), "CPU"),
    ];
    for (p, live) in &panes {
        c.tmux.wait_shows(p, &[live]);
    }
    let old = c.pid("alpha");
    let out = c.core.cli_ok(&["down"]);
    assert!(out.contains("core is exiting"), "{out}");
    c.core.wait_exit(DEADLINE);
    for (p, _) in &panes {
        c.tmux.wait_shows(p, &["core unreachable, retrying"]);
    }

    // A new core on the same socket: the panels find it by themselves.
    c.core.spawn();
    let new = c.core.wait_component("alpha", "running", DEADLINE, |s| {
        s.state == RunState::Running
    });
    let new = new.pid.expect("pid");
    assert_ne!(new, old);
    for (p, live) in &panes {
        let text = wait_for_quiet(DEADLINE, || {
            let text = c.tmux.capture(&p.id);
            (!text.contains("core unreachable") && text.contains(live)).then_some(text)
        });
        assert!(
            text.is_some(),
            "pane {} did not reconnect: {}",
            p.title,
            c.tmux.capture(&p.id)
        );
    }
    let tile = c.tmux.capture(&panes[0].0.id);
    assert!(shows_number(&tile, new), "the new pid in the tile:\n{tile}");
}

#[test]
fn layout_without_a_console_session_is_refused() {
    let c = Console::start();
    let out = c.hms(&["layout", "custom", "3x3"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no tmux session 'hms'"), "{err}");
    assert!(err.contains("hms-console attach"), "{err}");
}

#[test]
fn the_benchmark_layouts_load_and_compile_at_the_session_size() {
    // benches/console.rs builds these into live sessions; a broken one would fail only there.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/layouts-live");
    for (file, panels) in [("nine.toml", 9), ("sixteen.toml", 16)] {
        let grid = Grid::load(&dir.join(file)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(grid.panels().len(), panels, "{file}");
        let fleet: Vec<String> = (1..=9).map(|i| format!("c{i}")).collect();
        let bound = grid.bind_fleet(&fleet);
        assert!(
            bound.panels().iter().all(|p| p.component.is_some()
                || matches!(
                    p.kind,
                    hms::model::PanelKind::SystemHealth | hms::model::PanelKind::Actions
                )),
            "{file}: every tile and per-component panel has a component"
        );
        compile(&bound, WIDTH, HEIGHT).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
}

/// [`wait_for`] that adds `explain()` to the panic message when it times out.
fn wait_for_or<T>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> Option<T>,
    explain: impl Fn() -> String,
) -> T {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if std::time::Instant::now() > deadline {
            panic!(
                "timed out after {timeout:?} waiting for {what}; {}",
                explain()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn editing_a_layout_file_reapplies_it_and_an_invalid_edit_keeps_the_old_layout() {
    let c = Console::start();
    c.attach();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("edited.toml");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("layouts/supervisor-3x3.toml");
    std::fs::copy(&shipped, &path).expect("copy a shipped layout");
    ok(
        c.hms(&["layout", "file", path.to_str().unwrap()]),
        &["layout", "file"],
    );
    let built = c.tmux.window("hms", "supervisor-3x3");
    assert_eq!(built.panes, 5);

    // A valid edit: two tile rows instead of one (the name stays, so the window is the same one).
    let text = std::fs::read_to_string(&shipped).expect("layout");
    let taller = text
        .replace("rows = 3", "rows = 4")
        .replace(
            "row = 2\ncol = 0\ncolspan = 3",
            "row = 3\ncol = 0\ncolspan = 3",
        )
        .replace(
            "row = 1\ncol = 0\ncolspan = 3",
            "row = 2\ncol = 0\ncolspan = 3",
        )
        + "\n[[panel]]\nrow = 1\ncol = 0\ncolspan = 3\nkind = \"component\"\n";
    Grid::from_toml_str(&taller, "taller").expect("the edit is valid");
    std::fs::write(&path, &taller).expect("edit");
    let edited = wait_for_or(
        "the edit to be applied",
        DEADLINE,
        || {
            let w = c.tmux.window("hms", "supervisor-3x3");
            (w.panes == 6 && !w.tag.is_empty()).then_some(w)
        },
        || {
            let log = c.core.data.join("logs/console-watch.log");
            let ps = std::process::Command::new("sh")
                .args(["-c", "ps -eo pid,etime,args | grep [c]onsole-watch"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            format!(
                "watcher log:\n{}\nwatchers:\n{ps}\nwindows: {:?}",
                std::fs::read_to_string(log).unwrap_or_default(),
                c.tmux.window("hms", "supervisor-3x3")
            )
        },
    );
    let panes = c.tmux.panes(&edited.id);
    assert_eq!(assert_aligned_rows(&panes, WIDTH, HEIGHT), [3, 1, 1, 1]);

    // An invalid edit (two panels in one cell): the layout stays as it was.
    let overlap = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/layouts/overlap.toml"),
    )
    .expect("fixture");
    std::fs::write(&path, overlap).expect("edit");
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while std::time::Instant::now() < deadline {
        assert_eq!(c.tmux.window("hms", "supervisor-3x3"), edited, "kept");
        std::thread::sleep(Duration::from_millis(100));
    }
}
