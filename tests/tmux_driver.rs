//! The tmux driver against a real tmux server. Each test runs its own server on a private
//! socket (`hms-test-<pid>-<n>`, config `/dev/null`) and kills only that server, also when it
//! panics.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use hms::model::PanelKind;
use hms::tmux::layout::{LayoutCell, Rect};
use hms::tmux::{
    ControlClient, Grid, ManagedWindow, NewSession, Notification, Panel, SessionState, Tmux,
    TmuxDriver, TmuxError, build_window, compile, ensure_session, reapply,
};

/// A private tmux server that is killed when the test ends, however it ends.
struct Server {
    tmux: Tmux,
    socket: String,
}

impl Server {
    fn new() -> Server {
        static N: AtomicU32 = AtomicU32::new(0);
        let socket = format!(
            "hms-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        Server {
            tmux: Tmux::with_socket(&socket).config_file("/dev/null"),
            socket,
        }
    }

    async fn session(&self, width: u16, height: u16) {
        let spec = NewSession {
            name: "hms".into(),
            window_name: "main".into(),
            width,
            height,
            command: Some("sleep 600".into()),
        };
        assert_eq!(
            ensure_session(&self.tmux, &spec).await.unwrap(),
            SessionState::Created
        );
    }

    async fn raw(&self, args: &[&str]) -> String {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        self.tmux.run(&args).await.unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Blocking is fine here: a test is ending. Only this test's socket is touched; tmux
        // 3.3a leaves the socket file behind, so remove it too.
        let path = std::process::Command::new("tmux")
            .args([
                "-L",
                &self.socket,
                "display-message",
                "-p",
                "#{socket_path}",
            ])
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|p| !p.is_empty());
        let _ = std::process::Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
        if let Some(path) = path {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn echo_command(p: &Panel) -> String {
    format!("sh -c 'echo PANEL-{}; sleep 600'", p.kind.name())
}

/// Polls until `check` holds or 5 s pass.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Checks that the window holds exactly the grid's compiled layout for `width` × `height`, and
/// that list-panes agrees (a top-row pane gives its first line to the border title).
async fn assert_grid(server: &Server, w: &ManagedWindow, width: u16, height: u16) {
    let compiled = compile(&w.grid, width, height).unwrap();
    let ids: Vec<u32> = w.panes.iter().map(|(p, _)| p.0).collect();
    let layout = server.tmux.window_layout(w.window).await.unwrap();
    assert_eq!(layout, compiled.layout_string_with_ids(&ids));
    let panes = server.tmux.list_panes(w.window).await.unwrap();
    assert_eq!(panes.len(), w.panes.len());
    let leaves: Vec<(Rect, Option<u32>)> = LayoutCell::parse(&layout).unwrap().leaves();
    for (rect, id) in leaves {
        let pane = panes.iter().find(|p| Some(p.id.0) == id).unwrap();
        assert_eq!((pane.left, pane.width), (rect.x, rect.width));
        let border = u16::from(rect.y == 0);
        assert_eq!(
            (pane.top, pane.height),
            (rect.y + border, rect.height - border)
        );
    }
}

#[tokio::test]
async fn two_by_two_window_starts_every_panel_in_its_cell() {
    let server = Server::new();
    server.session(120, 40).await;
    let grid = Grid::two_by_two("api");
    let w = build_window(&server.tmux, "hms", "api", &grid, echo_command)
        .await
        .unwrap();
    assert_grid(&server, &w, 120, 40).await;

    let panes = server.tmux.list_panes(w.window).await.unwrap();
    for (pane, panel) in &w.panes {
        let panel = &grid.panels()[*panel];
        let info = panes.iter().find(|p| p.id == *pane).unwrap();
        assert_eq!(info.title, panel.display_title());
        let marker = format!("PANEL-{}", panel.kind.name());
        eventually(&marker, || async {
            server
                .tmux
                .capture_pane(*pane)
                .await
                .unwrap()
                .contains(&marker)
        })
        .await;
    }
    // Metrics top left, actions bottom right, as in the guide.
    let metrics = w.pane_of_kind(PanelKind::Metrics).unwrap();
    let actions = w.pane_of_kind(PanelKind::Actions).unwrap();
    let at = |id| panes.iter().find(|p| p.id == id).unwrap();
    assert_eq!((at(metrics).left, at(metrics).top), (0, 1));
    assert!(at(actions).left > 0 && at(actions).top > 1);
}

#[tokio::test]
async fn custom_3x3_grid_yields_a_3x3_geometry() {
    let server = Server::new();
    server.session(150, 45).await;
    // The guide's overview: three tiles, then two full-width rows.
    let overview = Grid::custom(3, 3, &["a".into(), "b".into(), "c".into()]).unwrap();
    let w = build_window(&server.tmux, "hms", "overview", &overview, echo_command)
        .await
        .unwrap();
    assert_grid(&server, &w, 150, 45).await;
    let panes = server.tmux.list_panes(w.window).await.unwrap();
    let mut tops: Vec<u16> = panes.iter().map(|p| p.top).collect();
    tops.dedup();
    assert_eq!(tops.len(), 3, "three rows: {panes:?}");
    assert_eq!(panes.iter().filter(|p| p.top == tops[0]).count(), 3);

    // And nine separate cells: three distinct columns and three distinct rows.
    let mut nine = Vec::new();
    for r in 0..3 {
        for c in 0..3 {
            nine.push(Panel::new(PanelKind::Text, r, c));
        }
    }
    let grid = Grid::new("nine", 3, 3, nine).unwrap();
    let w = build_window(&server.tmux, "hms", "nine", &grid, echo_command)
        .await
        .unwrap();
    assert_grid(&server, &w, 150, 45).await;
    let panes = server.tmux.list_panes(w.window).await.unwrap();
    assert_eq!(panes.len(), 9);
    let mut lefts: Vec<u16> = panes.iter().map(|p| p.left).collect();
    lefts.sort();
    lefts.dedup();
    assert_eq!(lefts, [0, 51, 101], "tracks of 50, 49, 49 columns");
}

#[tokio::test]
async fn resize_then_reapply_keeps_the_grid() {
    let server = Server::new();
    server.session(100, 30).await;
    let grid = Grid::load("layouts/ops-wide.toml".as_ref()).unwrap();
    let w = build_window(&server.tmux, "hms", "ops", &grid, echo_command)
        .await
        .unwrap();
    assert_grid(&server, &w, 100, 30).await;
    let window = w.window.to_string();
    server
        .raw(&["resize-window", "-t", &window, "-x", "120", "-y", "40"])
        .await;
    assert!(
        reapply(&server.tmux, &w).await.unwrap(),
        "tmux stretched the old layout"
    );
    assert_grid(&server, &w, 120, 40).await;
    assert!(!reapply(&server.tmux, &w).await.unwrap(), "already exact");
}

#[tokio::test]
async fn attach_twice_reuses_the_session_and_replaces_windows_by_name() {
    let server = Server::new();
    server.session(80, 24).await;
    let spec = NewSession {
        name: "hms".into(),
        window_name: "main".into(),
        width: 80,
        height: 24,
        command: None,
    };
    assert_eq!(
        ensure_session(&server.tmux, &spec).await.unwrap(),
        SessionState::Reused
    );
    assert_eq!(server.tmux.list_sessions().await.unwrap(), ["hms"]);
    let grid = Grid::two_by_two("api");
    let first = build_window(&server.tmux, "hms", "api", &grid, echo_command)
        .await
        .unwrap();
    let second = build_window(&server.tmux, "hms", "api", &grid, echo_command)
        .await
        .unwrap();
    let windows = server.tmux.list_windows("hms").await.unwrap();
    let named: Vec<_> = windows.iter().filter(|w| w.name == "api").collect();
    assert_eq!(named.len(), 1);
    assert_eq!(named[0].id, second.window);
    assert_ne!(first.window, second.window);
}

#[tokio::test]
async fn control_client_sees_a_resize_and_restores_the_grid() {
    let server = Server::new();
    server.session(100, 30).await;
    let grid = Grid::custom(3, 2, &[]).unwrap();
    let w = build_window(&server.tmux, "hms", "overview", &grid, echo_command)
        .await
        .unwrap();
    let (control, mut notes) = ControlClient::attach(&server.tmux, "hms").await.unwrap();
    assert_eq!(
        control
            .command("display-message -p '#{session_name}'")
            .await
            .unwrap(),
        ["hms"]
    );
    let err = control.command("no-such-command").await.unwrap_err();
    assert!(matches!(err, TmuxError::Command { .. }), "{err}");

    let window = w.window.to_string();
    server
        .raw(&["resize-window", "-t", &window, "-x", "130", "-y", "35"])
        .await;
    let layout = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match notes.next().await {
                Some(Notification::LayoutChange { window, layout, .. }) if window == w.window => {
                    break layout;
                }
                Some(_) => continue,
                None => panic!("control client exited"),
            }
        }
    })
    .await
    .expect("a %layout-change within 5 s");
    let apply = w.layout_to_apply(&layout).unwrap().expect("stretched");
    control
        .command(&format!(
            "select-layout -t {window} {}",
            hms::tmux::control::quote(&apply)
        ))
        .await
        .unwrap();
    assert_grid(&server, &w, 130, 35).await;
    // The control client has no size of its own: the window keeps the size we gave it.
    let size = server
        .raw(&[
            "display-message",
            "-p",
            "-t",
            &window,
            "#{window_width}x#{window_height}",
        ])
        .await;
    assert_eq!(size.trim(), "130x35");
    control.close().await.unwrap();
}

#[tokio::test]
async fn no_server_is_reported_as_such() {
    let server = Server::new();
    assert!(server.tmux.list_sessions().await.unwrap().is_empty());
    assert!(!server.tmux.has_session("hms").await.unwrap());
    let err = server.tmux.list_windows("hms").await.unwrap_err();
    assert!(matches!(err, TmuxError::NoServer { .. }), "{err}");
}

/// A server that holds no session at all (its last one just killed, not exited yet) answers
/// `has-session` with "no current target": that is "no such session", not an error (a flake
/// in CI, right after an attach removed its half-built session).
#[tokio::test]
async fn a_server_without_sessions_has_no_session() {
    let server = Server::new();
    server.session(80, 24).await;
    // Keep the server up once it is empty, as it is for a moment after its last session ends.
    let kept = std::process::Command::new("tmux")
        .args(["-L", &server.socket, "set", "-g", "exit-empty", "off"])
        .status()
        .unwrap();
    assert!(kept.success());
    server.tmux.kill_session("hms").await.unwrap();
    assert!(server.tmux.list_sessions().await.unwrap().is_empty());
    assert!(!server.tmux.has_session("hms").await.unwrap());
}

#[tokio::test]
async fn control_client_reports_a_missing_session() {
    let server = Server::new();
    server.session(80, 24).await;
    let err = ControlClient::attach(&server.tmux, "nope")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TmuxError::Command { stderr, .. } if stderr.contains("can't find session")),
        "{err}"
    );
}

#[tokio::test]
async fn kill_server_stops_only_this_server_and_removes_its_socket() {
    let server = Server::new();
    let other = Server::new();
    server.session(80, 24).await;
    other.session(80, 24).await;
    let path = server
        .raw(&["display-message", "-p", "#{socket_path}"])
        .await
        .trim()
        .to_string();
    server.tmux.kill_server().await.unwrap();
    assert!(server.tmux.list_sessions().await.unwrap().is_empty());
    assert!(!std::path::Path::new(&path).exists());
    assert_eq!(other.tmux.list_sessions().await.unwrap(), ["hms"]);
    server.tmux.kill_server().await.unwrap();
}

#[tokio::test]
async fn hooks_options_and_keys_stay_on_our_session_and_panes() {
    let server = Server::new();
    server.session(80, 24).await;
    server
        .tmux
        .set_hook("hms", "window-resized", "display-message resized")
        .await
        .unwrap();
    // show-hooks lists a session's hook only when asked for it by name.
    let hooks = server
        .raw(&["show-hooks", "-t", "=hms:", "window-resized"])
        .await;
    assert!(hooks.contains("display-message resized"), "{hooks}");
    let global = server.raw(&["show-hooks", "-g", "window-resized"]).await;
    assert!(!global.contains("display-message resized"), "{global}");

    let (window, pane) = server
        .tmux
        .new_window("hms", "echo", Some("cat"))
        .await
        .unwrap();
    server
        .tmux
        .set_option(
            &hms::tmux::OptionScope::Window(window),
            "remain-on-exit",
            "on",
        )
        .await
        .unwrap();
    let global = server.raw(&["show-options", "-gw", "remain-on-exit"]).await;
    assert_eq!(global.trim(), "remain-on-exit off");
    server
        .tmux
        .send_keys(pane, &["restart api", "Enter"])
        .await
        .unwrap();
    eventually("cat echoes the line", || async {
        let text = server.tmux.capture_pane(pane).await.unwrap();
        text.matches("restart api").count() >= 2
    })
    .await;
}

#[tokio::test]
async fn an_attach_that_fails_half_way_leaves_no_session_and_the_next_attach_builds_it_whole() {
    use hms::console::session::{ConsoleOptions, attach_session};
    use std::os::unix::fs::PermissionsExt;
    let server = Server::new();
    // The "panel" every pane runs: a script that ignores its arguments and waits.
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("panel");
    std::fs::write(&exe, "#!/bin/sh\nexec sleep 600\n").unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let opts = ConsoleOptions {
        session: "hms".into(),
        socket: dir.path().join("core.sock"),
        data_dir: dir.path().to_path_buf(),
        exe,
        slim_panel: None,
        ascii: true,
    };
    let fleet: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
    // A terminal too small for the overview's grid: the session is made, its windows cannot be.
    let err = attach_session(&server.tmux, &opts, &fleet, (6, 4))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("too small"), "{err}");
    assert!(
        !server.tmux.has_session("hms").await.unwrap(),
        "the half-built session was removed"
    );
    let console = attach_session(&server.tmux, &opts, &fleet, (200, 50))
        .await
        .unwrap();
    assert_eq!(
        console.state,
        SessionState::Created,
        "not the half-built one"
    );
    let names: Vec<String> = server
        .tmux
        .list_windows("hms")
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.name)
        .collect();
    assert_eq!(
        names,
        ["overview"],
        "component windows are built when opened"
    );
}
