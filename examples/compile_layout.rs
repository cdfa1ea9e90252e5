//! Prints the tmux layout string of a layout file (or `twobytwo` / `custom RxC`) for a window
//! size, and the panel of each leaf: `cargo run --example compile_layout -- layouts/ops-wide.toml 200 50`.
use hms::tmux::{Grid, compile};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (grid, rest) = match args.first().map(String::as_str) {
        Some("twobytwo") => (Grid::two_by_two("api"), &args[1..]),
        Some("custom") => {
            let spec = args.get(1).map(String::as_str).unwrap_or("3x3");
            let (r, c) = spec
                .split_once('x')
                .ok_or_else(|| anyhow::anyhow!("custom RxC"))?;
            (Grid::custom(r.parse()?, c.parse()?, &[])?, &args[2..])
        }
        Some(path) => (Grid::load(path.as_ref())?, &args[1..]),
        None => anyhow::bail!("usage: compile_layout FILE|twobytwo|custom RxC [WIDTH HEIGHT]"),
    };
    let width = rest.first().map(|s| s.parse()).transpose()?.unwrap_or(80);
    let height = rest.get(1).map(|s| s.parse()).transpose()?.unwrap_or(24);
    let compiled = compile(&grid, width, height)?;
    println!("{}", compiled.layout_string());
    for (leaf, &panel) in compiled.leaf_panels().iter().enumerate() {
        let p = &grid.panels()[panel];
        println!("leaf {leaf}: {} {:?}", p.kind.name(), p.display_title());
    }
    Ok(())
}
