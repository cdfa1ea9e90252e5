//! The `hms-console` binary: everything lives in the `hms` library; see `hms::cli`. Here only what
//! belongs to the program rather than the library: its memory allocator.
// One item needs `unsafe`: the allocator's start-up settings, which jemalloc reads by symbol name.
#![deny(unsafe_code)]

/// jemalloc rather than glibc's malloc: glibc keeps what a spike made the core allocate (measured:
/// 20 subscribers that never read took the core from 21 to 132 MB, and 105 MB were still held 30 s
/// after they left), while jemalloc gives freed pages back to the system after a decay time.
/// mimalloc gave its memory back too, but idled about 4.5 MB higher in the same test.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read before the first allocation (issue 12, the core with 100 idle
/// children): one arena rather than four per CPU, and small thread caches (objects of at most
/// 1 kB). The core's threads are mostly asleep; per-thread arenas and caches each held pages of
/// their own (measured: 7.2 MB of the core's anonymous memory by default, 6.7 with one arena, 6.1
/// with small caches too). A command or a panel has a thread or two and loses nothing.
// SAFETY: jemalloc reads `malloc_conf` (prefixed `_rjem_` by tikv-jemalloc-sys) as a `const char *`
// to a NUL-terminated string; this is a pointer to a static one, never written.
#[allow(unsafe_code)]
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: &u8 = &b"narenas:1,tcache_max:1024\0"[0];

fn main() -> std::process::ExitCode {
    hms::cli::main_with(return_freed_memory_to_the_system)
}

/// For the core only (a one-shot command or a panel needs no extra thread): one background thread
/// of jemalloc's purges freed pages about a second after they were freed, whether or not the core
/// allocates again (without it, pages are purged only as the same arena allocates, so a core that
/// went quiet after a spike would keep them). The settings are best effort: the core runs without.
fn return_freed_memory_to_the_system() {
    use tikv_jemalloc_ctl::{Access, AsName, background_thread, max_background_threads};
    // Arenas made from now on, then the ones that exist (4096 = MALLCTL_ARENAS_ALL).
    let _ = b"arenas.dirty_decay_ms\0".name().write(1000isize);
    let _ = b"arena.4096.dirty_decay_ms\0".name().write(1000isize);
    let _ = max_background_threads::write(1);
    let _ = background_thread::write(true);
}
