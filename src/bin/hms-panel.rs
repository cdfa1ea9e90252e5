//! `hms-panel`: one panel in this terminal, the same as `hms-console panel KIND …` in a program
//! that holds only the panel code (issue 12: a pane should cost what a `top` costs, not what the
//! whole console costs). The console's panes run it when it is installed beside `hms-console`
//! (`hms::console::session::slim_panel_beside`), else `hms-console panel`.
//!
//! What makes it slim: it links `hms::panel` and what that reaches (the client, the protocol,
//! the tmux driver for `open`) and nothing else (no core, SQLite, clap or CLI), uses the system
//! allocator (jemalloc's arenas and background thread serve the core; a panel allocates little),
//! and runs on a current-thread runtime. Its command line is in `hms::panel::args`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use hms::panel::args::{Invocation, USAGE, parse};

fn main() -> ExitCode {
    let args = match parse(std::env::args_os().skip(1)) {
        Ok(Invocation::Run(args)) => args,
        Ok(Invocation::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Invocation::Version) => {
            println!("hms-panel {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("hms-panel: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // The same sources, in the same order, as `hms-console --socket/--data-dir`: the command
    // line, then HMS_SOCKET / HMS_DATA_DIR (an empty one counts as unset), then the defaults:
    // `hms::paths` applies the last two.
    let socket = hms::paths::socket_path(args.socket.as_deref());
    let data_dir = hms::paths::data_dir(args.data_dir.as_deref());
    let opts = args.options(socket, data_dir);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hms-panel: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    hms::cli::report("hms-panel", runtime.block_on(hms::panel::run(opts)))
}
