//! The console as a person sees it: a core, an inner tmux server holding the session `attach`
//! builds, and an outer tmux server whose one pane runs `tmux attach` on it at a chosen size, so
//! `capture-pane` of the outer pane is the whole screen (borders, titles, status line). Both tmux
//! servers are private (`-L hms-s-<pid>-<n>`) and killed when the harness is dropped; nothing
//! touches the user's default server. Every wait polls with a deadline.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::common::{BIN, Core};

/// Generous: tests run in parallel, each with a core and a dozen panel processes.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// One private tmux server.
pub struct Tmux {
    pub name: String,
    pub home: PathBuf,
}

impl Tmux {
    fn new(kind: &str, home: &Path) -> Tmux {
        static N: AtomicU32 = AtomicU32::new(0);
        Tmux {
            name: format!(
                "hms-{kind}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ),
            home: home.to_path_buf(),
        }
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.args(["-L", &self.name, "-f", "/dev/null"])
            .env("HOME", &self.home)
            .env_remove("TMUX")
            .env_remove("XDG_CONFIG_HOME")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs one tmux command; panics when it fails.
    pub fn run(&self, args: &[&str]) -> String {
        let out = self.command().args(args).output().expect("run tmux");
        assert!(
            out.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs one tmux command, whatever its outcome.
    pub fn try_run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run tmux")
    }

    fn socket_path(&self) -> PathBuf {
        let dir = std::env::var_os("TMUX_TMPDIR").unwrap_or_else(|| "/tmp".into());
        Path::new(&dir)
            .join(format!("tmux-{}", nix::unistd::getuid()))
            .join(&self.name)
    }
}

impl Drop for Tmux {
    /// `kill-server`, then, if the server's process is still there after a deadline, SIGKILL to
    /// it: a `kill-server` that failed (seen under load: the server outlived the test, its socket
    /// file removed, a watcher's control client still attached to it) must not leave it behind.
    fn drop(&mut self) {
        let pid = self
            .command()
            .args(["display-message", "-p", "#{pid}"])
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .parse::<i32>()
                    .ok()
            });
        let _ = self.command().arg("kill-server").output();
        if let Some(pid) = pid {
            let pid = nix::unistd::Pid::from_raw(pid);
            // A zombie is gone: the server is a daemon, reaped by init when init gets to it.
            let alive = || {
                std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .ok()
                    .and_then(|stat| {
                        let state = stat.rsplit_once(')')?.1.split_whitespace().next()?;
                        Some(state != "Z" && state != "X")
                    })
                    .unwrap_or(false)
            };
            let deadline = Instant::now() + Duration::from_secs(5);
            while alive() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if alive() {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
        let _ = std::fs::remove_file(self.socket_path());
    }
}

/// A console at a terminal size: the outer server is declared first so it goes first, then the
/// inner one (and the panels with it), then the core.
pub struct Screen {
    pub outer: Tmux,
    pub inner: Tmux,
    pub core: Core,
    _home: tempfile::TempDir,
    pub width: u16,
    pub height: u16,
}

impl Screen {
    /// A core running `config`, every component in `running` running.
    pub fn start(config: &str, running: &[&str], width: u16, height: u16) -> Screen {
        let home = tempfile::Builder::new()
            .prefix("hms-home")
            .tempdir()
            .expect("temp home");
        let core = Core::start(config);
        for name in running {
            core.wait_component(name, "running", DEADLINE, |c| {
                c.state == hms::model::RunState::Running
            });
        }
        Screen {
            outer: Tmux::new("so", home.path()),
            inner: Tmux::new("si", home.path()),
            core,
            _home: home,
            width,
            height,
        }
    }

    /// `hms-console` against this core and the inner tmux server.
    pub fn hms(&self, args: &[&str]) -> Output {
        self.hms_command()
            .args(args)
            .output()
            .expect("run hms-console")
    }

    pub fn hms_command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(["--socket", self.core.socket.to_str().expect("utf-8 path")])
            .args(["--data-dir", self.core.data.to_str().expect("utf-8 path")])
            .env("HOME", &self.inner.home)
            .env("HMS_TMUX_SOCKET", &self.inner.name)
            .env_remove("TMUX")
            .env_remove("HMS_SOCKET")
            .env_remove("HMS_DATA_DIR")
            .env_remove("NO_COLOR")
            .env_remove("COLUMNS")
            .env_remove("LINES")
            .stdin(Stdio::null());
        cmd
    }

    pub fn hms_ok(&self, args: &[&str]) -> String {
        let out = self.hms(args);
        assert!(
            out.status.success(),
            "hms-console {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    /// Builds the session at this screen's size and attaches the outer pane to it.
    pub fn attach(&self) {
        let out = self
            .hms_command()
            .env("COLUMNS", self.width.to_string())
            .env("LINES", self.height.to_string())
            .args(["attach", "--no-attach"])
            .output()
            .expect("attach");
        assert!(
            out.status.success(),
            "attach failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The clock and date in the status line change; the window list stays.
        self.inner
            .run(&["set-option", "-t", "=hms:", "status-right", ""]);
        let attach = format!(
            "env -u TMUX HOME='{}' tmux -L {} -f /dev/null attach -t =hms",
            self.inner.home.display(),
            self.inner.name
        );
        // The outer terminal's status line is turned off before the inner client starts, so the
        // client is exactly the size the session was built for: no resize, so no re-layout by
        // the watcher racing the capture (a status line taken away after the client attached
        // made the panes a row taller or shorter depending on when the watcher re-applied).
        self.outer.run(&[
            "new-session",
            "-d",
            "-s",
            "screen",
            "-x",
            &self.width.to_string(),
            "-y",
            &self.height.to_string(),
            "sleep 100000",
        ]);
        self.outer
            .run(&["set-option", "-t", "=screen:", "status", "off"]);
        self.outer
            .run(&["respawn-pane", "-k", "-t", "=screen:", &attach]);
    }

    /// What the terminal shows now.
    pub fn capture(&self) -> String {
        self.outer.run(&["capture-pane", "-p", "-t", "=screen:"])
    }

    /// Waits until the screen shows every needle and stays the same (masked) for a moment;
    /// returns the masked screen.
    pub fn settled(&self, needles: &[&str]) -> String {
        let deadline = Instant::now() + DEADLINE;
        let mut last = String::new();
        let mut same = 0;
        loop {
            let now = mask(&self.capture());
            if needles.iter().all(|n| now.contains(n)) && now == last {
                same += 1;
                if same >= 3 {
                    return now;
                }
            } else {
                same = 0;
            }
            last = now;
            if Instant::now() > deadline {
                panic!("the screen did not settle showing {needles:?}; it shows:\n{last}");
            }
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    /// Waits until the (unmasked) screen shows every needle; returns it.
    pub fn shows(&self, needles: &[&str]) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let now = self.capture();
            if needles.iter().all(|n| now.contains(n)) {
                return now;
            }
            if Instant::now() > deadline {
                panic!("the screen did not show {needles:?} within {DEADLINE:?}; it shows:\n{now}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Shows a window of the session.
    pub fn select(&self, window: &str) {
        self.inner
            .run(&["select-window", "-t", &format!("=hms:{window}")]);
    }

    /// The pane id of the pane titled `title` in `window`.
    pub fn pane(&self, window: &str, title: &str) -> String {
        let listing = self.inner.run(&[
            "list-panes",
            "-t",
            &format!("=hms:{window}"),
            "-F",
            "#{pane_id}\t#{pane_title}",
        ]);
        listing
            .lines()
            .find_map(|l| {
                let (id, t) = l.split_once('\t')?;
                (t == title).then(|| id.to_string())
            })
            .unwrap_or_else(|| panic!("no pane '{title}' in {window}: {listing}"))
    }

    /// Types text into a pane (as keys) and, if `enter`, presses Enter.
    pub fn type_in(&self, pane: &str, text: &str, enter: bool) {
        self.inner.run(&["send-keys", "-t", pane, "-l", text]);
        if enter {
            self.inner.run(&["send-keys", "-t", pane, "Enter"]);
        }
    }
}

/// The screen with what changes from run to run masked: every number (pids, times, sizes,
/// percentages) with its unit becomes `#`, chart and sparkline glyphs become blanks, runs of
/// blanks and of `─` (whose length follows the width of a masked label) become one, blanks before
/// a `│` are dropped, rows of only borders and blanks are dropped, line ends are trimmed. What stays is what a regression would change: which
/// words are on which row, titles, borders, hints.
pub fn mask(screen: &str) -> String {
    let number = regex::Regex::new(
        r"\d+(\.\d+)?(\s?(ms|s|m|h|d|%|B|KiB|MiB|GiB|M|G)\b)?(\s\d+(ms|s|m|h)\b)?",
    )
    .expect("a valid regex");
    screen
        .lines()
        .map(|line| {
            let glyphs: String = line
                .chars()
                .map(|c| match c {
                    '\u{2800}'..='\u{28FF}' | '\u{2581}'..='\u{2588}' => ' ',
                    c => c,
                })
                .collect();
            let masked = number.replace_all(&glyphs, "#");
            let mut out = String::new();
            let mut previous = None;
            for c in masked.chars() {
                let repeat = previous == Some(c) && (c == ' ' || c == '─');
                if !repeat {
                    out.push(c);
                }
                previous = Some(c);
            }
            // The padding before a border follows the width of what was masked (a 4- or
            // 5-digit pid): drop it.
            while out.contains(" │") {
                out = out.replace(" │", "│");
            }
            out.trim_end().to_string()
        })
        // Rows with nothing but borders and blanks: how many a tile has left over depends on
        // how many lines of output arrived in time, not on what a person reads.
        .filter(|line| !line.chars().all(|c| " │─┼┬┴├┤".contains(c)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Compares a masked screen with `tests/snapshots/NAME.txt`; `UPDATE_SNAPSHOTS=1` writes it.
pub fn assert_snapshot(name: &str, masked: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("snapshot dir");
        std::fs::write(&path, format!("{masked}\n")).expect("write snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no snapshot {}; run with UPDATE_SNAPSHOTS=1 to write it. The screen:\n{masked}",
            path.display()
        )
    });
    let expected = expected.trim_end_matches('\n');
    if expected != masked {
        let mut diff = String::new();
        for (i, (e, a)) in expected.lines().zip(masked.lines()).enumerate() {
            if e != a {
                diff.push_str(&format!("row {i}:\n  expected: {e}\n  actual:   {a}\n"));
            }
        }
        panic!(
            "screen {name} differs from {} ({} rows expected, {} shown):\n{diff}\nwhole screen:\n{masked}",
            path.display(),
            expected.lines().count(),
            masked.lines().count()
        );
    }
}
