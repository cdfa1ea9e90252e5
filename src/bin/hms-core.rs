//! `hms-core`: the core daemon alone, what `hms-console up` runs when it is installed beside
//! `hms-console` (`hms::core::launch`), and the helpers the core starts from its own program (the
//! reaper that outlives a killed core, the probe runner). Its command line, written by
//! `hms-console up`, is in `hms::core::args`.
//!
//! Why a program of its own (issue 12, the core's idle memory): it links the core and what that
//! reaches (config, healing, protocol, knowledge) and nothing else (no clap, console, panels or
//! terminal code), so the code the core's pages hold is the core's. And only the core needs
//! jemalloc and its settings, which are here.
// One item needs `unsafe`: the allocator's start-up settings, which jemalloc reads by symbol name.
#![deny(unsafe_code)]

use std::process::ExitCode;

use hms::core::args::{Invocation, USAGE, parse};

/// jemalloc rather than glibc's malloc: glibc keeps what a spike made the core allocate (measured:
/// 20 subscribers that never read took the core from 21 to 132 MB, and 105 MB were still held 30 s
/// after they left), while jemalloc gives freed pages back to the system after a decay time.
/// mimalloc gave its memory back too, but idled about 4.5 MB higher in the same test.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read before the first allocation (issue 12, the core with 100 idle
/// children): one arena rather than four per CPU, and no thread caches. The core's threads are
/// mostly asleep; per-thread arenas and caches each held pages of their own (measured: 7.2 MB of
/// the core's anonymous memory by default, 6.7 with one arena, 6.1 with caches of objects up to
/// 1 kB; then, on a core whose start-up pages are handed back, 2.65 → 2.30 MB of anonymous memory
/// without caches, means of three runs). An allocation without a cache takes its bin's lock, which
/// the core's few busy threads seldom contend for.
// SAFETY: jemalloc reads `malloc_conf` (prefixed `_rjem_` by tikv-jemalloc-sys) as a `const char *`
// to a NUL-terminated string; this is a pointer to a static one, never written.
#[allow(unsafe_code)]
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: &u8 = &b"narenas:1,tcache:false\0"[0];

fn main() -> ExitCode {
    let invocation = match parse(std::env::args_os().skip(1)) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("hms-core: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match invocation {
        Invocation::Up(args) => {
            // The same sources, in the same order, as `hms-console --socket/--data-dir` (which
            // always passes both): the command line, then HMS_SOCKET / HMS_DATA_DIR (an empty
            // one counts as unset), then the defaults: `hms::paths` applies the last two.
            let socket = hms::paths::socket_path(args.socket.as_deref());
            let data_dir = hms::paths::data_dir(args.data_dir.as_deref());
            let result = hms::core::launch::run_up(
                args,
                socket,
                data_dir,
                return_freed_memory_to_the_system,
            );
            // Its errors are those of the command the user typed, `hms-console up`.
            hms::cli::report("hms-console", result)
        }
        Invocation::Reaper { core_id, cgroup } => {
            // Plain blocking code: no runtime, no logging setup, nothing to slow the sweep.
            hms::core::orphans::reaper_main(&core_id, cgroup.as_deref());
            ExitCode::SUCCESS
        }
        Invocation::ProbeRunner => {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("hms-core: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            runtime.block_on(hms::core::probe_runner::runner_main());
            ExitCode::SUCCESS
        }
        Invocation::Help => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Invocation::Version => {
            println!("hms-core {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
    }
}

/// For the core only (a helper needs no extra thread): one background thread of jemalloc's
/// purges freed pages about a second after they were freed, whether or not the core allocates
/// again (without it, pages are purged only as the same arena allocates, so a core that went
/// quiet after a spike would keep them). The settings are best effort: the core runs without.
fn return_freed_memory_to_the_system() {
    use tikv_jemalloc_ctl::{Access, AsName, background_thread, max_background_threads};
    // Arenas made from now on, then the ones that exist (4096 = MALLCTL_ARENAS_ALL).
    let _ = b"arenas.dirty_decay_ms\0".name().write(1000isize);
    let _ = b"arena.4096.dirty_decay_ms\0".name().write(1000isize);
    let _ = max_background_threads::write(1);
    let _ = background_thread::write(true);
}
