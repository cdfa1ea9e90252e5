//! Console benchmarks (issue 4). Run: `cargo bench --bench console` (or scripts/bench/console.sh).
//! Each figure is printed beside its goal; times are medians over several runs, each run on a
//! fresh private tmux server (`-L hms-bench-<pid>-<n>`, config /dev/null) that is killed (and its
//! socket file removed) when the run ends, also on panic. The user's tmux server is never touched.
//!
//! - (a) `hms-console layout custom 3x3` into a running session: until tmux holds every pane with
//!   its panel process started (`exec`'d: the pane's pid runs `hms-panel`, or `hms-console panel`
//!   where no slim panel is installed), and until
//!   every pane shows live content. The same for `layout file` of a 3×3 grid of nine tiles (the
//!   issue's peer workload), and for `tmuxp load` of the same nine panel commands, when tmuxp is
//!   installed.
//! - (b) `attach --no-attach` for a fleet of 4 (the overview: component windows are built when
//!   first opened) on a fresh server.
//! - (c) a restart sent with the client until the new pid shows in the System Health pane.
//! - (d) 16 idle panels: CPU of all of them together and the peak RSS of each.
//!
//! Environment: HMS_BENCH_RUNS (default 7), HMS_BENCH_IDLE_SECS (default 10, the CPU window).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hms-console");

/// Polls `f` until it returns `Some`, or panics after `timeout`.
fn wait<T>(what: &str, timeout: Duration, poll: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(poll);
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::MIN, f64::max)
}

/// `name: median X ms (goal <= G ms) [max M ms, n=N]`
fn report(name: &str, samples: Vec<f64>, goal_ms: Option<f64>) -> f64 {
    let n = samples.len();
    let worst = max(&samples);
    let med = median(samples);
    let goal = goal_ms.map_or(String::new(), |g| {
        format!(
            " (goal <= {g:.0} ms{})",
            if med <= g { "" } else { ", MISSED" }
        )
    });
    println!("  {name}: median {med:.1} ms{goal}, max {worst:.1} ms, n={n}");
    med
}

/// A core on a temp socket and data directory, stopped with `down` when dropped.
struct Core {
    child: Child,
    dir: tempfile::TempDir,
}

impl Core {
    fn start(components: &[String]) -> Core {
        let dir = tempfile::Builder::new()
            .prefix("hms-bench")
            .tempdir()
            .expect("temp dir");
        let mut config = String::from("[defaults]\nstop_grace = \"1s\"\nmin_uptime = \"10ms\"\n");
        for c in components {
            config.push_str(&format!(
                "[[component]]\nname = \"{c}\"\ncommand = [\"sleep\", \"100000\"]\n"
            ));
        }
        std::fs::write(dir.path().join("hms.toml"), config).expect("config");
        let child = Command::new(BIN)
            .arg("--socket")
            .arg(dir.path().join("core.sock"))
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["-q", "up", "-c"])
            .arg(dir.path().join("hms.toml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn core");
        let core = Core { child, dir };
        wait(
            "the core's socket",
            Duration::from_secs(20),
            Duration::from_millis(5),
            || std::os::unix::net::UnixStream::connect(core.socket()).ok(),
        );
        core
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("core.sock")
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `hms-console` on this core and the tmux server `tmux`.
    fn hms(&self, tmux: &TmuxServer, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("--socket")
            .arg(self.socket())
            .arg("--data-dir")
            .arg(self.data())
            .args(["--tmux-socket", &tmux.name])
            .args(args)
            .env("HOME", tmux.home.path())
            .env_remove("TMUX")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd
    }

    /// The shell command of a panel pane, as hms-console writes it (for tmuxp).
    fn panel_command(&self, component: &str) -> String {
        format!(
            "exec '{BIN}' --socket '{}' --data-dir '{}' panel component --component {component} --title {component}",
            self.socket().display(),
            self.data().display()
        )
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        let _ = Command::new(BIN)
            .arg("--socket")
            .arg(self.socket())
            .args(["-q", "down"])
            .output();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private tmux server, killed with its socket file when dropped.
struct TmuxServer {
    name: String,
    home: tempfile::TempDir,
}

impl TmuxServer {
    fn new() -> TmuxServer {
        static N: AtomicU32 = AtomicU32::new(0);
        TmuxServer {
            name: format!(
                "hms-bench-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ),
            home: tempfile::Builder::new()
                .prefix("hms-bench-home")
                .tempdir()
                .expect("temp home"),
        }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.args(["-L", &self.name, "-f", "/dev/null"])
            .env("HOME", self.home.path())
            .env_remove("TMUX")
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Option<String> {
        let out = self.command().args(args).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn tmux(&self, args: &[&str]) -> String {
        self.run(args)
            .unwrap_or_else(|| panic!("tmux {args:?} failed"))
    }

    /// A running session `hms` of 200×50 with one placeholder pane.
    fn session(&self) {
        self.tmux(&[
            "new-session",
            "-d",
            "-s",
            "hms",
            "-x",
            "200",
            "-y",
            "50",
            "sleep 100000",
        ]);
    }

    /// (pane id, pane pid, title) of every pane of `target` (`-s`: the whole session).
    fn panes(&self, args: &[&str]) -> Vec<(String, u32, String)> {
        let mut all = vec!["list-panes"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-F", "#{pane_id}\t#{pane_pid}\t#{pane_title}"]);
        self.run(&all)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut f = l.splitn(3, '\t');
                Some((
                    f.next()?.to_string(),
                    f.next()?.parse().ok()?,
                    f.next()?.to_string(),
                ))
            })
            .collect()
    }

    /// What each pane shows, in one tmux invocation.
    fn capture_all(&self, panes: &[&str]) -> Vec<String> {
        const SEP: &str = "\u{1}hms-bench-sep\u{1}";
        let mut args: Vec<String> = Vec::new();
        for (i, p) in panes.iter().enumerate() {
            if i > 0 {
                args.extend([";".into(), "display-message".into(), "-p".into()]);
                args.push(SEP.into());
                args.push(";".into());
            }
            args.extend(["capture-pane".into(), "-p".into(), "-t".into()]);
            args.push(p.to_string());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.run(&args).unwrap_or_default();
        out.split(&format!("{SEP}\n")).map(str::to_string).collect()
    }
}

impl Drop for TmuxServer {
    fn drop(&mut self) {
        let path = self
            .run(&["display-message", "-p", "#{socket_path}"])
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        let _ = self.command().arg("kill-server").output();
        if let Some(path) = path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The pane's process has exec'd the panel: the slim `hms-panel`, or `hms-console … panel`.
fn is_panel(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
        let mut words = c.split(|b| *b == 0);
        words.next().is_some_and(|w| w.ends_with(b"/hms-panel"))
            || words.any(|w| w == b"panel".as_slice())
    })
}

/// Waits (polling /proc only, which costs tmux nothing) until every pid runs its panel.
fn wait_panels(pids: &[u32]) {
    wait(
        "every pane's panel process",
        Duration::from_secs(10),
        Duration::from_micros(200),
        || pids.iter().all(|p| is_panel(*p)).then_some(()),
    );
}

/// What a pane shows only once its panel has data from the core, judged by its title.
fn live_marker(title: &str) -> &'static str {
    match title {
        "System Health" => "running",
        "System Actions" => "components: c",
        t if t.ends_with("Actions") => "commands:",
        t if t.ends_with("Metrics") => "CPU",
        t if t.ends_with("Logs") => "started (pid",
        // Health Status panes and component tiles.
        _ => "running",
    }
}

fn is_live(title: &str, text: &str) -> bool {
    text.contains(live_marker(title))
        && !["connecting…", "waiting for the core", "core unreachable"]
            .iter()
            .any(|s| text.contains(s))
}

/// Waits until every pane shows live content (one chained capture per round).
fn wait_live(tmux: &TmuxServer, panes: &[(String, u32, String)]) {
    let mut pending: Vec<&(String, u32, String)> = panes.iter().collect();
    wait(
        "every pane to show live content",
        Duration::from_secs(15),
        Duration::from_millis(3),
        || {
            let ids: Vec<&str> = pending.iter().map(|p| p.0.as_str()).collect();
            let texts = tmux.capture_all(&ids);
            let mut still = Vec::new();
            for (i, p) in pending.iter().enumerate() {
                // The title drawn by the panel itself also proves the capture is this pane's.
                if !texts
                    .get(i)
                    .is_some_and(|t| t.contains(p.2.as_str()) && is_live(&p.2, t))
                {
                    still.push(*p);
                }
            }
            pending = still;
            pending.is_empty().then_some(())
        },
    );
}

fn fleet(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("c{i}")).collect()
}

fn run_ok(mut cmd: Command, what: &str) -> Output {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// One `hms-console layout …` into a running session on a fresh server: (command returned,
/// all panes' panel processes started, all panes live), in ms from the spawn.
fn layout_once(core: &Core, args: &[&str], window: &str, panes: usize) -> (f64, f64, f64) {
    let tmux = TmuxServer::new();
    tmux.session();
    let t0 = Instant::now();
    run_ok(core.hms(&tmux, args), "hms-console layout");
    let returned = t0.elapsed();
    let list = tmux.panes(&["-t", &format!("=hms:{window}")]);
    assert_eq!(list.len(), panes, "{window}: {list:?}");
    let pids: Vec<u32> = list.iter().map(|p| p.1).collect();
    wait_panels(&pids);
    let started = t0.elapsed();
    wait_live(&tmux, &list);
    (ms(returned), ms(started), ms(t0.elapsed()))
}

fn bench_layout(runs: usize) {
    let core = Core::start(&fleet(9));
    let nine = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/layouts-live/nine.toml");
    let nine = nine.to_str().expect("utf-8 path");
    let cases: [(&str, Vec<&str>, &str, usize); 2] = [
        (
            "layout custom 3x3 (Grid::custom: 3 tiles + System Health + System Actions = 5 panes)",
            vec!["layout", "custom", "3x3"],
            "custom-3x3",
            5,
        ),
        (
            "layout file nine.toml (3x3 of 9 component tiles, the peer workload)",
            vec!["layout", "file", nine],
            "nine",
            9,
        ),
    ];
    let mut hms_nine = None;
    for (name, args, window, panes) in cases {
        // One warm-up run so the binary and the panels are in the page cache.
        layout_once(&core, &args, window, panes);
        let samples: Vec<(f64, f64, f64)> = (0..runs)
            .map(|_| layout_once(&core, &args, window, panes))
            .collect();
        println!("(a) {name}, into a running session:");
        report(
            "command returned",
            samples.iter().map(|s| s.0).collect(),
            None,
        );
        let started = report(
            &format!("all {panes} panes with their panel processes started"),
            samples.iter().map(|s| s.1).collect(),
            Some(60.0),
        );
        report(
            "every pane shows live content",
            samples.iter().map(|s| s.2).collect(),
            Some(500.0),
        );
        if window == "nine" {
            hms_nine = Some(started);
        }
    }
    bench_tmuxp(&core, runs, hms_nine.expect("measured"));
}

/// tmuxp loading the same nine panel commands as a 3×3 (`tiled`) window, into a running server
/// (a new session: tmuxp cannot add a window to ours without attaching), and on a fresh server
/// (the 461 ms figure).
fn bench_tmuxp(core: &Core, runs: usize, hms_nine_ms: f64) {
    let version = Command::new("tmuxp").arg("--version").output().ok();
    let Some(version) = version.filter(|o| o.status.success()) else {
        println!("(a) tmuxp: not installed (`pip install tmuxp`), peer comparison skipped");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("nine.yaml");
    let mut yaml = String::from(
        "session_name: peer\nwindows:\n  - window_name: nine\n    layout: tiled\n    panes:\n",
    );
    for c in fleet(9) {
        yaml.push_str(&format!(
            "      - shell_command:\n          - {:?}\n",
            core.panel_command(&c)
        ));
    }
    std::fs::write(&file, yaml).expect("tmuxp config");
    let once = |running: bool| -> (f64, f64) {
        let tmux = TmuxServer::new();
        if running {
            tmux.session();
        }
        let t0 = Instant::now();
        let out = Command::new("tmuxp")
            .args(["load", "-d", "-y", "--no-progress", "-L", &tmux.name])
            .args(["-f", "/dev/null"])
            .arg(&file)
            .env("HOME", tmux.home.path())
            .env_remove("TMUX")
            .stdin(Stdio::null())
            .output()
            .expect("tmuxp");
        assert!(
            out.status.success(),
            "tmuxp load failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let returned = t0.elapsed();
        // tmuxp types each command into a shell: the pane pid becomes the panel at `exec`.
        let list = wait(
            "tmuxp's nine panes",
            Duration::from_secs(10),
            Duration::from_millis(1),
            || {
                let l = tmux.panes(&["-t", "=peer:nine"]);
                (l.len() == 9).then_some(l)
            },
        );
        let pids: Vec<u32> = list.iter().map(|p| p.1).collect();
        wait_panels(&pids);
        (ms(returned), ms(t0.elapsed()))
    };
    once(true);
    let running: Vec<(f64, f64)> = (0..runs).map(|_| once(true)).collect();
    let fresh: Vec<(f64, f64)> = (0..runs).map(|_| once(false)).collect();
    println!(
        "(a) peer: {} loading the same 9 panel commands as a tiled 3x3:",
        String::from_utf8_lossy(&version.stdout).trim()
    );
    report(
        "into a running server: tmuxp returned",
        running.iter().map(|s| s.0).collect(),
        None,
    );
    let peer = report(
        "into a running server: all 9 panel processes started",
        running.iter().map(|s| s.1).collect(),
        None,
    );
    report(
        "fresh server (the issue's 461 ms measure): tmuxp returned",
        fresh.iter().map(|s| s.0).collect(),
        None,
    );
    println!(
        "  ratio tmuxp / hms-console (9 panel processes started, same run): {:.1}x",
        peer / hms_nine_ms
    );
}

/// `attach --no-attach` for a fleet of 4 on a fresh server: (returned, panels started, live).
fn attach_once(core: &Core) -> (f64, f64, f64) {
    let tmux = TmuxServer::new();
    let t0 = Instant::now();
    run_ok(core.hms(&tmux, &["attach", "--no-attach"]), "attach");
    let returned = t0.elapsed();
    let windows = tmux.tmux(&["list-windows", "-t", "=hms", "-F", "#{window_name}"]);
    assert_eq!(windows.lines().collect::<Vec<_>>(), ["overview"]);
    let list = tmux.panes(&["-s", "-t", "=hms"]);
    assert_eq!(list.len(), 6, "{list:?}");
    let pids: Vec<u32> = list.iter().map(|p| p.1).collect();
    wait_panels(&pids);
    let started = t0.elapsed();
    wait_live(&tmux, &list);
    (ms(returned), ms(started), ms(t0.elapsed()))
}

fn bench_attach(runs: usize) {
    let core = Core::start(&fleet(4));
    attach_once(&core);
    let samples: Vec<(f64, f64, f64)> = (0..runs).map(|_| attach_once(&core)).collect();
    println!("(b) attach --no-attach, the overview of 4 components (6 panes), fresh server:");
    report(
        "command returned",
        samples.iter().map(|s| s.0).collect(),
        None,
    );
    report(
        "complete layout, all 6 panel processes started",
        samples.iter().map(|s| s.1).collect(),
        Some(250.0),
    );
    report(
        "every pane shows live content",
        samples.iter().map(|s| s.2).collect(),
        Some(1000.0),
    );
}

/// Does `row` hold `pid` as a whole number?
fn shows_pid(row: &str, pid: u32) -> bool {
    let n = pid.to_string();
    row.split(|c: char| !c.is_ascii_digit()).any(|w| w == n)
}

fn bench_restart_visible(restarts: usize) {
    use hms::client::Client;
    use hms::protocol::{Request, Response};
    let core = Core::start(&fleet(4));
    let tmux = TmuxServer::new();
    run_ok(core.hms(&tmux, &["attach", "--no-attach"]), "attach");
    let list = tmux.panes(&["-s", "-t", "=hms"]);
    wait_live(&tmux, &list);
    let health = list
        .iter()
        .find(|p| p.2 == "System Health")
        .expect("a System Health pane")
        .0
        .clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let socket = core.socket();
    let mut visible = Vec::new();
    let mut answered = Vec::new();
    for i in 0..restarts {
        let c = format!("c{}", i % 4 + 1);
        // Let the previous restart's redraws settle.
        std::thread::sleep(Duration::from_millis(200));
        let t0 = Instant::now();
        let pid = runtime.block_on(async {
            let mut client = Client::connect(&socket, "bench").await.expect("connect");
            let done = client
                .request(Request::Restart {
                    component: c.clone(),
                })
                .await
                .expect("restart");
            assert!(matches!(done, Response::Done { .. }), "{done:?}");
            match client
                .request(Request::Status {
                    component: Some(c.clone()),
                })
                .await
                .expect("status")
            {
                Response::Status { components } => components[0].pid.expect("running"),
                other => panic!("{other:?}"),
            }
        });
        answered.push(ms(t0.elapsed()));
        wait(
            "the new pid in System Health",
            Duration::from_secs(5),
            Duration::from_micros(500),
            || {
                let text = tmux.tmux(&["capture-pane", "-p", "-t", &health]);
                text.lines()
                    .any(|l| l.contains(&format!(" {c} ")) && shows_pid(l, pid))
                    .then_some(())
            },
        );
        visible.push(ms(t0.elapsed()));
    }
    println!("(c) restart sent with the client -> the new pid in the System Health pane:");
    report("restart answered (new pid known)", answered, None);
    report("new pid visible in capture-pane", visible, Some(100.0));
}

/// Nanoseconds the process has run on a CPU, all threads (`/proc/PID/task/*/schedstat`, exact;
/// the tick counts in `/proc/PID/stat` would hide up to a tick per process).
fn cpu_ns(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("task dir")
        .flatten()
        .filter_map(|t| {
            std::fs::read_to_string(t.path().join("schedstat"))
                .ok()?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// A `/proc/PID/smaps_rollup` field in kB (e.g. `Pss`, the process's share of its pages), as MB.
fn rollup_mb(pid: u32, field: &str) -> f64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    text.lines()
        .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// A `/proc/PID/status` field in kB (e.g. `VmHWM`, the peak RSS), as MB.
fn status_mb(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let kb: f64 = status
        .lines()
        .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"));
    kb / 1024.0
}

fn bench_idle(secs: u64) {
    let core = Core::start(&fleet(4));
    let tmux = TmuxServer::new();
    tmux.session();
    let sixteen =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/layouts-live/sixteen.toml");
    run_ok(
        core.hms(
            &tmux,
            &["layout", "file", sixteen.to_str().expect("utf-8 path")],
        ),
        "layout file sixteen.toml",
    );
    let list = tmux.panes(&["-t", "=hms:sixteen"]);
    assert_eq!(list.len(), 16, "{list:?}");
    let pids: Vec<u32> = list.iter().map(|p| p.1).collect();
    wait_panels(&pids);
    wait_live(&tmux, &list);
    // Let start-up work (first draws, snapshots) finish before the window opens.
    std::thread::sleep(Duration::from_secs(2));
    let ns0: u64 = pids.iter().map(|p| cpu_ns(*p)).sum();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let ns: u64 = pids.iter().map(|p| cpu_ns(*p)).sum::<u64>() - ns0;
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = ns as f64 / 1e9 / elapsed * 100.0;
    let rss: Vec<f64> = pids.iter().map(|p| status_mb(*p, "VmHWM")).collect();
    println!("(d) 16 panels open, nothing changing, over {elapsed:.1} s:");
    println!(
        "  all 16 panel processes together: {cpu:.4} % of one core (goal <= 0.5 %{}), {:.2} ms of CPU",
        if cpu <= 0.5 { "" } else { ", MISSED" },
        ns as f64 / 1e6
    );
    let worst = max(&rss);
    println!(
        "  peak RSS per panel: max {worst:.1} MB (goal <= 10 MB{}), median {:.1} MB",
        if worst <= 10.0 { "" } else { ", MISSED" },
        median(rss.clone())
    );
    let share = |field: &str| -> Vec<f64> { pids.iter().map(|p| rollup_mb(*p, field)).collect() };
    let (pss, anon, file) = (share("Pss"), share("Pss_Anon"), share("Pss_File"));
    println!(
        "  of which each panel's own share (PSS): max {:.1} MB, median {:.1} MB (anonymous max {:.1} MB, \
         file-backed max {:.1} MB); all 16 together {:.1} MB",
        max(&pss),
        median(pss.clone()),
        max(&anon),
        max(&file),
        pss.iter().sum::<f64>()
    );
    // Which panels are the big ones: peak and current RSS by kind (the title's last word).
    let mut kinds: Vec<(String, f64, f64)> = Vec::new();
    for ((_, pid, title), peak) in list.iter().zip(&rss) {
        let kind = match title.as_str() {
            "System Health" | "System Actions" => title.clone(),
            t if t.contains(' ') => t.rsplit(' ').next().unwrap_or(t).to_string(),
            _ => "tile".to_string(),
        };
        let now = status_mb(*pid, "VmRSS");
        match kinds.iter_mut().find(|k| k.0 == kind) {
            Some(k) => {
                k.1 = k.1.max(*peak);
                k.2 = k.2.max(now);
            }
            None => kinds.push((kind, *peak, now)),
        }
    }
    let by_kind: Vec<String> = kinds
        .iter()
        .map(|(k, peak, now)| format!("{k} {peak:.1}/{now:.1}"))
        .collect();
    println!(
        "  by kind, max peak/current RSS in MB: {}",
        by_kind.join(", ")
    );
}

fn main() {
    // `cargo test --benches` runs this too; only measure under `cargo bench` (it passes --bench).
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let runs = env("HMS_BENCH_RUNS", 7) as usize;
    let idle = env("HMS_BENCH_IDLE_SECS", 10).max(1);
    let tmux = Command::new("tmux").arg("-V").output().ok();
    let Some(tmux) = tmux.filter(|o| o.status.success()) else {
        println!("tmux not found: console benchmarks skipped");
        return;
    };
    println!(
        "hms-console console benchmarks ({}, {} cores, {runs} runs each, medians)",
        String::from_utf8_lossy(&tmux.stdout).trim(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    bench_layout(runs);
    bench_attach(runs);
    bench_restart_visible(env("HMS_BENCH_RESTARTS", 12) as usize);
    bench_idle(idle);
}
