//! Every invalid config under tests/fixtures/config/ is refused by `hms-console validate` with the
//! exact message its first line (`# expect: …`) names: file, line, column, key and the fix.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_hms-console");

#[test]
fn each_invalid_config_fixture_prints_its_message() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} has no `# expect:` first line", path.display()));
        let name = path.file_name().unwrap().to_str().unwrap();
        let out = Command::new(BIN)
            .current_dir(&dir)
            .args(["validate", "-c", name])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{name} must be refused");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let first = stderr.lines().next().unwrap_or("");
        assert_eq!(first, format!("hms-console: {expect}"), "fixture {name}");
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} fixtures found");
}

#[test]
fn the_demo_fleet_and_the_examples_validate() {
    let out = Command::new(BIN)
        .current_dir(std::env::temp_dir())
        .args(["validate"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("<embedded demo fleet>: ok"));
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    for entry in std::fs::read_dir(examples).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "toml") {
            let out = Command::new(BIN)
                .args(["validate", "-c", path.to_str().unwrap()])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// examples/hms.toml promises to show every key: each table's known keys, as the config loader
/// itself lists them when it meets an unknown one, appear in it (issue 13, item 11).
#[test]
fn the_example_config_shows_every_known_key() {
    let example =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hms.toml"))
            .unwrap();
    let base = "[[component]]\nname = \"api\"\ncommand = \"sleep 1\"\n";
    let tables = [
        (
            "[defaults]",
            "[defaults]\nzzz_unknown = 1\n".to_string() + base,
        ),
        ("[limits]", "[limits]\nzzz_unknown = 1\n".to_string() + base),
        (
            "[knowledge]",
            "[knowledge]\nzzz_unknown = 1\n".to_string() + base,
        ),
        ("[[component]]", format!("{base}zzz_unknown = 1\n")),
        (
            "a probe",
            format!("{base}[component.liveness]\nexec = [\"true\"]\nzzz_unknown = 1\n"),
        ),
        (
            "an action",
            format!("{base}[component.actions.x]\ncommand = \"true\"\nzzz_unknown = 1\n"),
        ),
        (
            "a log pattern",
            format!("{base}[[component.log_patterns]]\nregex = \"x\"\nzzz_unknown = 1\n"),
        ),
        (
            "[[group]]",
            format!("{base}[[group]]\nname = \"g\"\ncomponents = [\"api\"]\nzzz_unknown = 1\n"),
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut missing = Vec::new();
    for (table, text) in tables {
        let path = dir.path().join("probe.toml");
        std::fs::write(&path, text).unwrap();
        let out = Command::new(BIN)
            .args(["validate", "-c", path.to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        let known = err
            .split_once("(known keys: ")
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(keys, _)| keys.to_string())
            .unwrap_or_else(|| panic!("{table}: no list of known keys in: {err}"));
        for key in known.split(", ") {
            // `key = …`, `{ key = …`, a commented `# key = …`, or a `[component.key]` table.
            let shown = regex::Regex::new(&format!(
                r"(?m)((^|[{{,]\s*|#\s*){key}\s*=|\[component\.{key}[\].])"
            ))
            .unwrap()
            .is_match(&example);
            if !shown {
                missing.push(format!("{table}: {key}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "examples/hms.toml does not show: {missing:?}"
    );
}

/// `validate FILE` (and `up FILE`, `attach FILE`: the same arguments) takes the config as `-c`
/// does; a file given both ways is a usage error, and a missing one is named.
#[test]
fn the_config_may_be_named_without_c() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hms.toml");
    let example = example.to_str().unwrap();
    let validate = |args: &[&str]| {
        Command::new(BIN)
            .arg("validate")
            .args(args)
            .output()
            .unwrap()
    };
    let out = validate(&[example]);
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.starts_with(&format!("{example}: ok")), "{said}");
    let out = validate(&[example, "-c", example]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot be used with"),
        "{out:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let out = validate(&[missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("missing.toml"),
        "{out:?}"
    );
}
