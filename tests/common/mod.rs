//! Shared test harness: a real core (`hms-console up`) on a private socket and data directory,
//! talked to through the real CLI binary and the real client. Every wait polls with a deadline.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use hms::client::Client;
use hms::model::ComponentStatus;
use hms::protocol::{Request, Response};

pub const BIN: &str = env!("CARGO_BIN_EXE_hms-console");

/// The package's programs `names` (e.g. `["hms-console", "hms-cli"]`: no `hms-core`, no
/// `hms-panel`) alone in a directory of their own under the target directory (the file system of
/// the binaries): hard links, or copies where linking fails. Returns the directory and the path
/// of the first program in it.
pub fn programs_alone(names: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("lone")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir");
    for name in names {
        let built = std::path::Path::new(BIN).with_file_name(name);
        let alone = dir.path().join(name);
        if std::fs::hard_link(&built, &alone).is_err() {
            std::fs::copy(&built, &alone)
                .unwrap_or_else(|e| panic!("copy {}: {e}", built.display()));
        }
    }
    let first = dir.path().join(names[0]);
    (dir, first)
}

/// Polls `f` until it returns `Some`, or panics with `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A core running in its own process for one test.
pub struct Core {
    /// Extra arguments for `up`.
    pub up_args: Vec<String>,
    pub child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub data: PathBuf,
    pub config: PathBuf,
}

impl Core {
    /// Writes `config` to a temp hms.toml and starts `hms-console up -c` on it.
    pub fn start(config: &str) -> Core {
        Core::start_with(config, &[])
    }

    /// [`Core::start`] with extra arguments for `up`.
    pub fn start_with(config: &str, up_args: &[&str]) -> Core {
        let dir = tempfile::Builder::new()
            .prefix("hms-t")
            .tempdir()
            .expect("temp dir");
        let config_path = dir.path().join("hms.toml");
        std::fs::write(&config_path, config).expect("write config");
        let mut core = Core {
            up_args: up_args.iter().map(|s| s.to_string()).collect(),
            child: None,
            socket: dir.path().join("run/core.sock"),
            data: dir.path().join("data"),
            config: config_path,
            dir,
        };
        core.spawn();
        core
    }

    /// Starts (another) core process on the same socket and data directory.
    pub fn spawn(&mut self) {
        let log = std::fs::File::create(
            self.dir
                .path()
                .join(format!("core-{}.log", Instant::now().elapsed().as_nanos())),
        )
        .expect("core log");
        let child = Command::new(BIN)
            .args(["--socket", self.socket.to_str().unwrap()])
            .args(["--data-dir", self.data.to_str().unwrap()])
            .args(["up", "-c", self.config.to_str().unwrap()])
            .args(&self.up_args)
            .env("RUST_LOG", "hms=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn core");
        self.child = Some(child);
        let socket = self.socket.clone();
        wait_for(
            "the core's socket to answer",
            Duration::from_secs(10),
            || std::os::unix::net::UnixStream::connect(&socket).ok(),
        );
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("core running").id()
    }

    /// Runs the CLI against this core.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(["--socket", self.socket.to_str().unwrap()])
            .args(["--data-dir", self.data.to_str().unwrap()])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run cli")
    }

    /// Runs the CLI and returns stdout, panicking with stderr on failure.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "hms-console {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    pub fn status(&self) -> Vec<ComponentStatus> {
        serde_json::from_str(&self.cli_ok(&["status", "--json"])).expect("status json")
    }

    pub fn component(&self, name: &str) -> ComponentStatus {
        self.status()
            .into_iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no component {name}"))
    }

    /// Waits until `name` satisfies `pred` and returns its status.
    pub fn wait_component(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&ComponentStatus) -> bool,
    ) -> ComponentStatus {
        wait_for(&format!("{name}: {what}"), timeout, || {
            let c = self.component(name);
            pred(&c).then_some(c)
        })
    }

    pub async fn client(&self) -> Client {
        Client::connect(&self.socket, "test")
            .await
            .expect("connect")
    }

    pub async fn request(&self, request: Request) -> Response {
        self.client().await.request(request).await.expect("request")
    }

    /// Waits for the core process to exit and returns its status code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let child = self.child.as_mut().expect("core running");
        let status = wait_for("the core to exit", timeout, || {
            child.try_wait().ok().flatten()
        });
        self.child = None;
        status.code()
    }

    /// The core's log so far (all runs).
    pub fn log(&self) -> String {
        let mut all = String::new();
        for e in std::fs::read_dir(self.dir.path()).unwrap().flatten() {
            if e.file_name().to_string_lossy().starts_with("core-") {
                all.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
        all
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Is `pid` alive (zombies count as dead)?
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
    })
}

/// Live pids whose process group is `pgid`.
pub fn group_members(pgid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // fields[0] = state, [1] = ppid, [2] = pgrp
        if fields.len() > 2 && fields[2] == pgid.to_string() && !["Z", "X"].contains(&fields[0]) {
            out.push(pid);
        }
    }
    out
}

/// Pids of live children of `ppid` (forked by any of its threads).
pub fn children_of(ppid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{ppid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let text = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        out.extend(
            text.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok())
                .filter(|p| alive(*p)),
        );
    }
    out
}

impl Core {
    /// Recent issues (`hms-console issues --json`), oldest first.
    pub fn issues(&self, component: Option<&str>) -> Vec<hms::model::Issue> {
        let mut args = vec!["issues", "--json", "-n", "500"];
        args.extend(component);
        serde_json::from_str(&self.cli_ok(&args)).expect("issues json")
    }

    /// Waits for an issue of `issue_type` about `component` and returns it.
    pub fn wait_issue(
        &self,
        component: &str,
        issue_type: &str,
        timeout: Duration,
    ) -> hms::model::Issue {
        wait_for(
            &format!("an issue {issue_type} of {component}"),
            timeout,
            || {
                self.issues(Some(component))
                    .into_iter()
                    .find(|i| i.issue_type == issue_type)
            },
        )
    }

    /// The texts of a component's last `n` log lines (its output and the core's notes).
    pub fn log_texts(&self, component: &str, n: usize) -> Vec<String> {
        self.cli_ok(&["logs", component, "-n", &n.to_string()])
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}
