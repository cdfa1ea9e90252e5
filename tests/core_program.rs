//! `hms-console up` runs the core as the `hms-core` program installed beside it, and runs it
//! itself when there is none (issue 12). Cargo builds every binary for the tests, so `hms-core`
//! sits beside `hms-console` in target/<profile>/; the lone case uses a hard link (or copy) of
//! `hms-console` in a directory of its own.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{Core, wait_for};

const SECS10: Duration = Duration::from_secs(10);
const FLEET: &str = "[[component]]\nname = \"a\"\ncommand = [\"sleep\", \"1000\"]\n";

fn exe_of(pid: u32) -> PathBuf {
    std::fs::read_link(format!("/proc/{pid}/exe")).expect("the process runs")
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .expect("a file")
        .to_string_lossy()
        .into_owned()
}

/// The reaper the core forked at start (it runs the core's program).
fn reaper_of(core: u32) -> u32 {
    wait_for("the reaper", SECS10, || {
        common::children_of(core).into_iter().find(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm"))
                .is_ok_and(|c| c.trim() == "hms-reaper")
        })
    })
}

/// An `hms-console` with no `hms-core` beside it: a hard link in a directory of its own under
/// the target directory (the same file system as the binary), or a copy where linking fails.
fn lone_console() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("lone")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir");
    let lone = dir.path().join("hms-console");
    if std::fs::hard_link(common::BIN, &lone).is_err() {
        std::fs::copy(common::BIN, &lone).expect("copy hms-console");
    }
    (dir, lone)
}

/// `program --socket … --data-dir … ARGS` with no terminal.
fn run(program: &Path, dir: &Path, args: &[&str]) -> Output {
    Command::new(program)
        .arg("--socket")
        .arg(dir.join("run/core.sock"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run hms-console")
}

#[test]
fn up_runs_the_core_as_the_hms_core_program_beside_it() {
    let core = Core::start(FLEET);
    let exe = exe_of(core.pid());
    assert_eq!(file_name(&exe), "hms-core", "{}", exe.display());
    assert_eq!(exe.parent(), Path::new(common::BIN).parent());
    // The reaper is forked by the core, and the same program.
    assert_eq!(exe_of(reaper_of(core.pid())), exe);
    // And it is the whole core: it supervises, answers, and stops on `down`.
    core.wait_component("a", "running", SECS10, |c| c.pid.is_some());
    let down = core.cli(&["down"]);
    assert!(down.status.success(), "{down:?}");
}

#[test]
fn up_detach_starts_hms_core_in_the_background() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("hms.toml");
    std::fs::write(&config, FLEET).expect("config");
    let bin = Path::new(common::BIN);
    let out = run(
        bin,
        dir.path(),
        &["up", "-c", config.to_str().unwrap(), "-d"],
    );
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let pid: u32 = text
        .split("(pid ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {text}"));
    assert_eq!(file_name(&exe_of(pid)), "hms-core");
    assert!(run(bin, dir.path(), &["down"]).status.success());
}

#[test]
fn a_lone_hms_console_runs_its_core_itself() {
    let (_lone_dir, lone) = lone_console();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("hms.toml");
    std::fs::write(&config, FLEET).expect("config");
    let mut core = Command::new(&lone)
        .arg("--socket")
        .arg(dir.path().join("run/core.sock"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["up", "-c", config.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the lone core");
    let socket = dir.path().join("run/core.sock");
    wait_for("the lone core's socket", SECS10, || {
        std::os::unix::net::UnixStream::connect(&socket).ok()
    });
    assert_eq!(exe_of(core.id()), lone);
    assert_eq!(exe_of(reaper_of(core.id())), lone);
    wait_for("the component to run", SECS10, || {
        let out = run(&lone, dir.path(), &["status", "a", "--json"]);
        String::from_utf8_lossy(&out.stdout)
            .contains("\"running\"")
            .then_some(())
    });
    assert!(run(&lone, dir.path(), &["down"]).status.success());
    let status = wait_for("the lone core to exit", SECS10, || {
        core.try_wait().ok().flatten()
    });
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_bad_config_is_refused_the_same_with_or_without_hms_core() {
    let (_lone_dir, lone) = lone_console();
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("bad.toml"), "[[component]]\nname = \"a\"\n").expect("config");
    let up = |program: &Path| {
        let out = Command::new(program)
            .current_dir(dir.path())
            .arg("--socket")
            .arg(dir.path().join("run/core.sock"))
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["up", "-c", "bad.toml"])
            .stdin(Stdio::null())
            .output()
            .expect("run up");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, beside) = up(Path::new(common::BIN));
    assert_eq!(code, Some(1), "{beside}");
    assert!(
        beside.starts_with("hms-console: bad.toml"),
        "named as the user wrote it: {beside}"
    );
    assert_eq!(up(&lone), (code, beside));
}
