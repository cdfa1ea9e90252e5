//! Benchmark: building a detached 3×3 window of 9 `sleep` panes into a running private tmux
//! server, with [`hms::tmux::build_window`] (one chained tmux invocation plus one query) against
//! a plain script of 17 separate tmux calls (new-window, then split-window and
//! select-layout tiled eight times). Prints the medians side by side with the goal.
//!
//! Run with `scripts/bench/tmux_layout.sh` (release build). Uses its own socket
//! `hms-bench-<pid>` and kills only that server.

use std::process::Command;
use std::time::{Duration, Instant};

use hms::model::PanelKind;
use hms::tmux::{Grid, NewSession, Panel, Tmux, TmuxDriver, build_window, ensure_session};

const RUNS: usize = 25;
const GOAL: Duration = Duration::from_millis(60);

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Kills the bench server on every exit path.
struct Guard(String);

impl Drop for Guard {
    fn drop(&mut self) {
        // tmux 3.3a leaves its socket file behind on kill-server; remove ours.
        let path = Command::new("tmux")
            .args(["-L", &self.0, "display-message", "-p", "#{socket_path}"])
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|p| !p.is_empty());
        let _ = Command::new("tmux")
            .args(["-L", &self.0, "kill-server"])
            .output();
        if let Some(path) = path {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn tmux(socket: &str, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("tmux")
        .args(["-L", socket])
        .args(args)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "tmux {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let socket = format!("hms-bench-{}", std::process::id());
    let _guard = Guard(socket.clone());
    let driver = Tmux::with_socket(&socket).config_file("/dev/null");
    ensure_session(
        &driver,
        &NewSession {
            name: "bench".into(),
            window_name: "main".into(),
            width: 200,
            height: 50,
            command: Some("sleep 3600".into()),
        },
    )
    .await?;
    let mut nine = Vec::new();
    for r in 0..3 {
        for c in 0..3 {
            nine.push(Panel::new(PanelKind::Text, r, c));
        }
    }
    let grid = Grid::new("bench-3x3", 3, 3, nine)?;

    let mut ours = Vec::new();
    for i in 0..RUNS {
        let name = format!("grid{i}");
        let start = Instant::now();
        let w = build_window(&driver, "bench", &name, &grid, |_| "sleep 600".into()).await?;
        ours.push(start.elapsed());
        anyhow::ensure!(driver.list_panes(w.window).await?.len() == 9, "9 panes");
        driver.kill_window(w.window).await?;
    }

    let mut script = Vec::new();
    for i in 0..RUNS {
        let target = format!("=bench:=plain{i}");
        let start = Instant::now();
        tmux(
            &socket,
            &[
                "new-window",
                "-d",
                "-t",
                "=bench:",
                "-n",
                &format!("plain{i}"),
                "sleep 600",
            ],
        )?;
        for _ in 0..8 {
            tmux(&socket, &["split-window", "-t", &target, "sleep 600"])?;
            tmux(&socket, &["select-layout", "-t", &target, "tiled"])?;
        }
        script.push(start.elapsed());
        tmux(&socket, &["kill-window", "-t", &target])?;
    }

    let (ours, script) = (median(ours), median(script));
    println!("detached 3x3 window of 9 sleep panes into a running server, median of {RUNS}:");
    println!(
        "  hms build_window (1 query + 1 chained call): {:>9}   goal <= {} {}",
        ms(ours),
        ms(GOAL),
        if ours <= GOAL { "(met)" } else { "(MISSED)" }
    );
    println!(
        "  plain script, 17 separate tmux calls:       {:>9}",
        ms(script)
    );
    Ok(())
}
