//! The console watcher (`hms-console console-watch`): keeps the operator's tmux session in shape.
//!
//! One per session, started by `attach` and `layout` in the background. It attaches a tmux
//! control-mode client to the session and
//! - on `%layout-change` of a window we built (tagged `@hms-layout`), compiles that window's grid
//!   for its new size and re-applies it when tmux's proportional resize has bent it, so a resized
//!   terminal or pane keeps the grid; an exact layout is left alone, so this cannot loop;
//! - watches the directory of every layout file a window came from (notify, debounced) and
//!   rebuilds the window when its file changes. An invalid edit is reported in the session's
//!   status line and as a notice to the core (shown in System Health); the window keeps its last
//!   good layout.
//!
//! - makes sure a pane whose panel died comes back: respawns dead panes and sets the
//!   `pane-died` hook (see [`super::session::keep_panes_alive`]), and looks for dead panes every
//!   [`DEAD_PANE_CHECK`] through its control connection (no process started) and respawns them.
//!   The hook alone is not enough: a Debian tmux 3.3a (linked with libutempter) sets SIGCHLD to
//!   SIG_DFL while its utempter helper runs, which it does when a pane's terminal closes; a panel
//!   whose exit signal lands in that window is not reaped, its exit status is never read, and
//!   `pane-died` (which waits for the status) does not fire, though the pane is dead. (A
//!   `refresh-client -B` subscription to `#{pane_dead}` would be the event-driven way, but tmux
//!   3.3a sends a `no-output` control client no subscription notifications.)
//!
//! It exits when the session ends (`%exit`). It never talks to the core except to read the fleet's
//! names and to post notices.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::mpsc;

use super::session::{
    ConsoleOptions, GRID_OPTION, LAYOUT_OPTION, LayoutSource, build, grid_fingerprint,
    managed_from_tmux,
};
use crate::protocol::NoticeLevel;
use crate::text::truncate;
use crate::tmux::control::{ControlClient, Notification};
use crate::tmux::driver::{ManagedWindow, OptionScope, Tmux, TmuxDriver, WindowId};

/// The session option holding the watcher's pid, so a second one is not started.
pub const WATCHER_OPTION: &str = "@hms-watcher";

/// How often the watcher looks for dead panes (one `list-panes` over the control connection,
/// ~0.1 ms of tmux's time).
pub const DEAD_PANE_CHECK: Duration = Duration::from_secs(2);

/// A window we manage, as last built.
struct Watched {
    /// The grid and panes, for re-laying it out; `None` when the window does not match what its
    /// source gives now (its layout file changed before we saw the window): then it is rebuilt.
    managed: Option<ManagedWindow>,
    source: LayoutSource,
    name: String,
}

/// Runs the watcher until the session ends. A second watcher for the same tmux server and
/// session exits at once (a lock file in the data directory), so two `attach`/`layout` calls in
/// quick succession never leave two control clients fighting over one session.
pub async fn run(tmux: Tmux, opts: ConsoleOptions) -> Result<()> {
    let lock_path = crate::paths::log_dir(&opts.data_dir).join(format!(
        "console-watch-{}-{}.lock",
        tmux.socket().unwrap_or("default"),
        opts.session
    ));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("while opening {}", lock_path.display()))?;
    let Ok(_lock) = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
    else {
        tracing::debug!("another watcher runs for this session");
        return Ok(());
    };
    let (client, mut notes) = ControlClient::attach(&tmux, &opts.session)
        .await
        .with_context(|| format!("while attaching to tmux session '{}'", opts.session))?;
    tmux.set_option(
        &OptionScope::Session(opts.session.clone()),
        WATCHER_OPTION,
        &std::process::id().to_string(),
    )
    .await?;
    // A panel that died (a crash, a kill) comes back in its pane.
    match super::session::keep_panes_alive(&tmux, &opts.session).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(panes = n, "respawned dead panes"),
        Err(e) => tracing::warn!(cause = %e, "cannot keep panes alive"),
    }
    tracing::info!(session = %opts.session, "console watcher running");
    let (file_tx, mut file_rx) = mpsc::unbounded_channel::<PathBuf>();
    let mut debouncer =
        crate::fswatch::watcher(file_tx).context("while starting the file watcher")?;
    let mut watched_dirs: Vec<PathBuf> = Vec::new();
    let mut windows: HashMap<WindowId, Watched> = HashMap::new();
    let new_files = refresh(&tmux, &opts, &mut windows).await;
    watch_dirs(&windows, &mut debouncer, &mut watched_dirs);
    catch_up(&tmux, &opts, &mut windows, new_files).await;
    let mut dead_check = tokio::time::interval(DEAD_PANE_CHECK);
    dead_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = dead_check.tick() => respawn_dead(&client, &opts.session).await,
            note = notes.next() => {
                tracing::trace!(?note, "notification");
                match note {
                None | Some(Notification::Exit { .. }) => break,
                Some(Notification::LayoutChange { window, layout, .. }) => {
                    if !windows.contains_key(&window) {
                        let new_files = refresh(&tmux, &opts, &mut windows).await;
                        watch_dirs(&windows, &mut debouncer, &mut watched_dirs);
                        catch_up(&tmux, &opts, &mut windows, new_files).await;
                    }
                    if let Some(m) = windows.get(&window).and_then(|w| w.managed.as_ref()) {
                        match m.layout_to_apply(&layout) {
                            Ok(Some(exact)) => {
                                if let Err(e) = tmux.select_layout(window, &exact).await {
                                    tracing::warn!(cause = %e, "re-applying the layout failed");
                                }
                            }
                            Ok(None) => {}
                            // Panes were added or closed by hand: the grid no longer applies.
                            Err(e) => tracing::debug!(cause = %e, "window no longer matches its grid"),
                        }
                    }
                }
                Some(Notification::WindowAdd(_)) | Some(Notification::WindowClose(_))
                | Some(Notification::WindowRenamed { .. }) => {
                    let new_files = refresh(&tmux, &opts, &mut windows).await;
                    watch_dirs(&windows, &mut debouncer, &mut watched_dirs);
                    catch_up(&tmux, &opts, &mut windows, new_files).await;
                }
                Some(_) => {}
            }},
            Some(first) = file_rx.recv() => {
                // Only layout files of our windows extend a burst (logs may be written nearby).
                let ours: Vec<PathBuf> = windows
                    .values()
                    .filter_map(|w| match &w.source {
                        LayoutSource::File(p) => Some(p.clone()),
                        LayoutSource::Overview
                        | LayoutSource::TwoByTwo(_)
                        | LayoutSource::Custom { .. } => None,
                    })
                    .collect();
                if !ours.contains(&first) {
                    continue;
                }
                let paths = crate::fswatch::rest_of_burst(
                    first,
                    &mut file_rx,
                    Duration::from_millis(150),
                    |p| ours.iter().any(|o| o == p),
                )
                .await;
                tracing::debug!(files = ?paths, "file events");
                // A burst of events (one save is several) settles into one rebuild per file.
                for path in paths {
                    file_changed(&tmux, &opts, &mut windows, &path).await;
                }
            }
        }
    }
    let _ = client.close().await;
    Ok(())
}

/// Respawns the session's dead panes whose `pane-died` hook did not (see the module header).
async fn respawn_dead(client: &ControlClient, session: &str) {
    let listing = match client
        .command(&format!(
            "list-panes -s -t {} -F '#{{pane_dead}} #{{pane_id}}'",
            crate::tmux::control::quote(&format!("={session}"))
        ))
        .await
    {
        Ok(lines) => lines,
        Err(e) => {
            tracing::debug!(cause = %e, "cannot list panes");
            return;
        }
    };
    for pane in listing.iter().filter_map(|l| l.strip_prefix("1 ")) {
        // The hook may have respawned it meanwhile: then tmux says it is still active.
        match client.command(&format!("respawn-pane -t {pane}")).await {
            Ok(_) => tracing::info!(pane, "respawned a dead pane"),
            Err(e) => tracing::debug!(pane, cause = %e, "no respawn"),
        }
    }
}

/// Re-reads which windows we manage from their `@hms-layout` tags; returns the layout files of
/// windows it had not seen, which may have been edited before we started watching them.
async fn refresh(
    tmux: &Tmux,
    opts: &ConsoleOptions,
    windows: &mut HashMap<WindowId, Watched>,
) -> Vec<PathBuf> {
    let mut new_files = Vec::new();
    let fleet = fleet_names(&opts.socket).await;
    let Ok(listing) = tmux
        .run(&[
            "list-windows".into(),
            "-t".into(),
            format!("={}", opts.session),
            "-F".into(),
            format!("#{{window_id}}\t#{{window_name}}\t#{{{LAYOUT_OPTION}}}"),
        ])
        .await
    else {
        return new_files;
    };
    let mut seen = Vec::new();
    for line in listing.lines() {
        let mut parts = line.splitn(3, '\t');
        let (Some(id), Some(name), Some(tag)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let Some(id) = id
            .strip_prefix('@')
            .and_then(|n| n.parse().ok())
            .map(WindowId)
        else {
            continue;
        };
        seen.push(id);
        if tag.is_empty() || windows.contains_key(&id) {
            continue;
        }
        let Some(source) = LayoutSource::from_tag(tag) else {
            continue;
        };
        // A window still being built (under its temporary name) is looked at once it is renamed.
        if name.starts_with("hms-build-") {
            continue;
        }
        let managed = match managed_from_tmux(tmux, &opts.session, id, name, tag, &fleet).await {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(window = id.0, cause = %e, "window does not match its source now");
                None
            }
        };
        tracing::debug!(
            window = id.0,
            tag,
            matches = managed.is_some(),
            "managing window"
        );
        if let LayoutSource::File(path) = &source {
            new_files.push(path.clone());
        }
        windows.insert(
            id,
            Watched {
                managed,
                source,
                name: name.to_string(),
            },
        );
    }
    windows.retain(|id, _| seen.contains(id));
    new_files
}

/// A file may have changed between its window being built and our watch starting: compare and
/// rebuild now if so (a no-op when the window matches its file).
async fn catch_up(
    tmux: &Tmux,
    opts: &ConsoleOptions,
    windows: &mut HashMap<WindowId, Watched>,
    files: Vec<PathBuf>,
) {
    for path in files {
        file_changed(tmux, opts, windows, &path).await;
    }
}

fn watch_dirs(
    windows: &HashMap<WindowId, Watched>,
    debouncer: &mut notify::RecommendedWatcher,
    watched: &mut Vec<PathBuf>,
) {
    for w in windows.values() {
        if let LayoutSource::File(path) = &w.source {
            // Watch the directory, not the file: editors replace files by renaming.
            let Some(dir) = path.parent().map(Path::to_path_buf) else {
                continue;
            };
            if !watched.contains(&dir) {
                match crate::fswatch::watch_dir(debouncer, &dir) {
                    Ok(()) => {
                        tracing::debug!(dir = %dir.display(), "watching layout files");
                        watched.push(dir)
                    }
                    Err(e) => tracing::warn!(dir = %dir.display(), cause = %e, "cannot watch"),
                }
            }
        }
    }
}

async fn file_changed(
    tmux: &Tmux,
    opts: &ConsoleOptions,
    windows: &mut HashMap<WindowId, Watched>,
    path: &Path,
) {
    let affected: Vec<WindowId> = windows
        .iter()
        .filter(|(_, w)| matches!(&w.source, LayoutSource::File(p) if p == path))
        .map(|(id, _)| *id)
        .collect();
    if affected.is_empty() {
        tracing::debug!(file = %path.display(), "no window uses this file");
        return;
    }
    if !path.exists() {
        // Mid-save (rename dance) or deleted: keep what runs.
        return;
    }
    let fleet = fleet_names(&opts.socket).await;
    let source = LayoutSource::File(path.to_path_buf());
    let grid = match source.grid(&fleet) {
        Ok(grid) => grid,
        Err(e) => {
            let message = format!("layout not applied, keeping the previous one: {e}");
            tracing::warn!(%message);
            report(tmux, opts, &message, NoticeLevel::Error).await;
            return;
        }
    };
    for id in affected {
        // One save often arrives as several file events: rebuild only when the grid differs from
        // the one the window was built from (recorded in the window itself).
        let built_from = tmux
            .run(&[
                "show-options".into(),
                "-wqv".into(),
                "-t".into(),
                id.to_string(),
                GRID_OPTION.into(),
            ])
            .await
            .unwrap_or_default();
        if built_from.trim() == grid_fingerprint(&grid) {
            tracing::debug!(window = id.0, "layout file event without a change");
            continue;
        }
        tracing::info!(window = id.0, file = %path.display(), "layout file changed: rebuilding");
        let old_name = windows.get(&id).map(|w| w.name.clone()).unwrap_or_default();
        match build(tmux, opts, &source, &fleet).await {
            Ok(managed) => {
                // A renamed layout builds a window of a new name: remove the old one.
                if managed.name != old_name {
                    let _ = tmux.kill_window(id).await;
                }
                windows.remove(&id);
                let name = managed.name.clone();
                windows.insert(
                    managed.window,
                    Watched {
                        name: name.clone(),
                        managed: Some(managed),
                        source: source.clone(),
                    },
                );
                clear_report(tmux, opts).await;
                report(
                    tmux,
                    opts,
                    &format!("layout '{name}' reloaded from {}", path.display()),
                    NoticeLevel::Info,
                )
                .await;
            }
            Err(e) => {
                report(
                    tmux,
                    opts,
                    &format!("layout not applied, keeping the previous one: {e}"),
                    NoticeLevel::Error,
                )
                .await;
            }
        }
    }
}

/// Shows a message in the session's status line and sends it to the core as a notice.
async fn report(tmux: &Tmux, opts: &ConsoleOptions, message: &str, level: NoticeLevel) {
    if level == NoticeLevel::Error {
        let text = message.replace('#', "##");
        let _ = tmux
            .set_option(
                &OptionScope::Session(opts.session.clone()),
                "status-right",
                &format!("#[fg=red,bold]{}", truncate(&text, 120)),
            )
            .await;
        let _ = tmux
            .set_option(
                &OptionScope::Session(opts.session.clone()),
                "status-right-length",
                "130",
            )
            .await;
    }
    if let Ok(mut client) = crate::client::Client::connect(&opts.socket, "console-watch").await {
        let _ = client.notify(level, message).await;
    }
}

async fn clear_report(tmux: &Tmux, opts: &ConsoleOptions) {
    let _ = tmux
        .run(&[
            "set-option".into(),
            "-u".into(),
            "-t".into(),
            format!("={}:", opts.session),
            "status-right".into(),
        ])
        .await;
}

/// The fleet's names, or none when the core cannot say (grids then show only what names itself).
async fn fleet_names(socket: &Path) -> Vec<String> {
    match crate::client::Client::connect(socket, "console-watch").await {
        Ok(mut client) => client.fleet_names().await.unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

/// Is a watcher already running for the session (its pid recorded and alive)?
pub async fn running(tmux: &Tmux, session: &str) -> bool {
    let Ok(out) = tmux
        .run(&[
            "show-options".into(),
            "-qv".into(),
            "-t".into(),
            format!("={session}:"),
            WATCHER_OPTION.into(),
        ])
        .await
    else {
        return false;
    };
    let Ok(pid) = out.trim().parse::<u32>() else {
        return false;
    };
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| String::from_utf8_lossy(&c).contains("console-watch"))
}
