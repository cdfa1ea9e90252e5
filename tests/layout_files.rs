//! Layout files: every shipped layout in `layouts/` loads and compiles, and every invalid layout
//! under `tests/fixtures/layouts/` fails with the message on its first line (`# expect: …`).

use std::path::{Path, PathBuf};

use hms::tmux::{Grid, compile};

fn toml_files(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_shipped_layout_loads_and_compiles() {
    let files = toml_files("layouts");
    assert!(files.len() >= 3, "layouts/ holds at least three layouts");
    for path in files {
        let grid = Grid::load(&path).unwrap_or_else(|e| panic!("{e}"));
        for (width, height) in [(80, 24), (120, 40), (238, 62)] {
            let compiled = compile(&grid, width, height).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(compiled.leaf_panels().len(), grid.panels().len());
        }
    }
}

#[test]
fn every_invalid_layout_fixture_fails_with_its_message() {
    let files = toml_files("tests/fixtures/layouts");
    assert!(!files.is_empty());
    let mut failures = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} lacks a first line `# expect: …`", path.display()));
        // Errors name the file as given; use the bare name so messages do not depend on the
        // checkout's path.
        let name = path.file_name().unwrap().to_string_lossy();
        match Grid::from_toml_str(&text, &name) {
            Ok(_) => failures.push(format!("{name}: accepted, expected: {expect}")),
            Err(e) if e.to_string() == expect => {}
            Err(e) => failures.push(format!("{name}:\n  got:    {e}\n  expect: {expect}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
