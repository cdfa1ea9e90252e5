//! `hms-console up` runs the core as the `hms-core` program installed beside it, and runs it
//! itself (as `hms-cli`, which carries out every command line but a plain `status`) when there is
//! none (issue 12). Cargo builds every binary for the tests, so `hms-core` sits beside
//! `hms-console` in target/<profile>/; the lone cases use hard links (or copies) of some of the
//! programs in a directory of their own.

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

/// An `hms-console` and the `hms-cli` that carries out its commands, with no `hms-core` (nor
/// `hms-panel`) beside them. Returns the directory and the `hms-console` in it.
fn lone_console() -> (tempfile::TempDir, PathBuf) {
    common::programs_alone(&["hms-console", "hms-cli"])
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

/// Issue 12: a few seconds after start the core unmaps the program pages only its start-up ran
/// (`hms::pages`), and goes on supervising and answering with the pages it maps again.
#[test]
fn the_core_hands_back_its_start_up_pages_and_runs_on() {
    let core = Core::start(FLEET);
    let first = core.wait_component("a", "running", SECS10, |c| c.pid.is_some());
    let line = wait_for(
        "the core to hand back its start-up pages",
        SECS10 * 3,
        || {
            core.log()
                .lines()
                .find(|l| l.contains("handed back the program's start-up pages"))
                .map(str::to_string)
        },
    );
    let kb: u64 = line
        .split("kb=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the line names what it handed back: {line}"));
    assert!(kb > 0, "{line}");
    // It still supervises: a crash is healed, and it still answers.
    let pid = first.pid.unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    core.wait_component("a", "running again", SECS10, |c| {
        c.pid.is_some_and(|p| p != pid)
    });
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
    // `hms-console` handed `up` to `hms-cli` (same pid), which runs the core itself.
    let full = lone.with_file_name("hms-cli");
    assert_eq!(exe_of(core.id()), full);
    assert_eq!(exe_of(reaper_of(core.id())), full);
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

#[test]
fn hms_console_answers_a_plain_status_itself_and_hands_every_other_command_to_hms_cli() {
    let core = Core::start(FLEET);
    core.wait_component("a", "running", SECS10, |c| c.pid.is_some());
    let (_alone_dir, alone) = common::programs_alone(&["hms-console"]);
    let socket = core.socket.to_str().unwrap();
    let run_alone = |args: &[&str]| {
        Command::new(&alone)
            .args(["--socket", socket])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run hms-console")
    };
    // A plain status needs nothing beside hms-console.
    let status = run_alone(&["status"]);
    assert!(status.status.success(), "{status:?}");
    let table = String::from_utf8_lossy(&status.stdout);
    assert!(table.starts_with("NAME  STATE "), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("a ") && l.contains("running")),
        "{table}"
    );
    assert!(table.contains("\ncontainment: "), "{table}");
    let json = run_alone(&["status", "a", "--json"]);
    assert!(json.status.success(), "{json:?}");
    assert!(String::from_utf8_lossy(&json.stdout).contains("\"running\""));
    // Anything else is hms-cli's: without it, a clear error that says how to get it, and the
    // running core is left alone.
    for args in [&["down"][..], &["status", "-v"], &["--help"]] {
        let out = run_alone(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        let missing = alone.with_file_name("hms-cli");
        assert!(
            err.starts_with(&format!("hms-console: {} is missing", missing.display()))
                && err.contains("cargo build --release")
                && err.contains("cargo install --path ."),
            "{args:?}: {err}"
        );
    }
    core.wait_component("a", "still running", SECS10, |c| c.pid.is_some());
    // With hms-cli beside it, hms-cli replaces hms-console (same pid) and still speaks as
    // hms-console (its usage line, its exit codes).
    let bin = Path::new(common::BIN);
    let help = Command::new(bin).arg("--help").output().expect("help");
    assert!(help.status.success(), "{help:?}");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("Usage: hms-console"), "{help}");
    let dir = tempfile::tempdir().expect("temp dir");
    let no_core = run(bin, dir.path(), &["down"]);
    assert_eq!(no_core.status.code(), Some(3), "{no_core:?}");
    assert!(
        String::from_utf8_lossy(&no_core.stderr).starts_with("hms-console: "),
        "{no_core:?}"
    );
}

/// `hms-console` starts at C's `main` (no std start-up, issue 12): with its standard streams
/// closed it still runs and ends well, and its output read through a pipe is the table.
#[test]
fn hms_console_status_runs_with_closed_standard_streams_and_through_a_pipe() {
    let core = Core::start(FLEET);
    core.wait_component("a", "running", SECS10, |c| c.pid.is_some());
    let socket = core.socket.to_str().unwrap();
    for redirect in ["<&- >&-", ">&-", "<&-"] {
        let closed = Command::new("sh")
            .args([
                "-c",
                &format!(r#"exec "$0" --socket "$1" status {redirect}"#),
            ])
            .args([common::BIN, socket])
            .output()
            .expect("sh");
        assert_eq!(closed.status.code(), Some(0), "{redirect}: {closed:?}");
        assert!(closed.stderr.is_empty(), "{redirect}: {closed:?}");
    }
    let piped = Command::new("sh")
        .args(["-c", r#""$0" --socket "$1" status | cat"#])
        .args([common::BIN, socket])
        .output()
        .expect("sh");
    assert!(piped.status.success(), "{piped:?}");
    assert!(String::from_utf8_lossy(&piped.stdout).starts_with("NAME"));
    core.wait_component("a", "still running", SECS10, |c| c.pid.is_some());
}

/// Our programs carry gcc's unwinder instead of loading libgcc_s (issue 12, see build.rs): the
/// dynamic loader lists no libgcc_s for them, and a panic still unwinds to `hms-console`'s
/// `catch_unwind`, which ends it with 101 (here: the error for a missing core cannot be written
/// to a full standard error, and `eprintln!` panics).
#[test]
fn our_programs_unwind_a_panic_without_loading_libgcc_s() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("no-core.sock");
    let full = std::fs::File::options()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let out = Command::new(common::BIN)
        .args(["--socket", missing.to_str().unwrap(), "status"])
        .stdin(Stdio::null())
        .stderr(full)
        .output()
        .expect("run hms-console");
    assert_eq!(out.status.code(), Some(101), "{out:?}");
    if option_env!("HMS_STATIC_UNWINDER").is_none() {
        eprintln!("this compiler has no libgcc_eh.a: the programs load libgcc_s (build.rs)");
        return;
    }
    let bin = Path::new(common::BIN);
    for program in ["hms-console", "hms-cli", "hms-core", "hms-panel"] {
        // What `ldd` does: the loader lists the libraries it would load, and runs nothing.
        let listed = Command::new(bin.with_file_name(program))
            .env("LD_TRACE_LOADED_OBJECTS", "1")
            .output()
            .expect("list libraries");
        let listed = String::from_utf8_lossy(&listed.stdout);
        assert!(listed.contains("libc.so"), "{program}: {listed}");
        assert!(!listed.contains("libgcc_s"), "{program}: {listed}");
    }
}
