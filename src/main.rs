//! `hms-console`: answers a plain `status` itself and hands every other command line to the
//! `hms-cli` program beside it, which replaces this process (same pid, arguments and exit code):
//! see `hms::cli::front` for why. Everything lives in the `hms` library.
//!
//! Its entry point is C's `main`, not Rust's (issue 12, `status` of 100 components within
//! 1.5 ms, process start included). Before a Rust `fn main` runs, std's start-up reads
//! /proc/self/maps to find the main thread's stack (for its overflow guard) and sets up a signal
//! stack (measured, `perf stat -r 300`: the status of 100 components 1.63–1.70 → 1.59–1.61 ms,
//! 124 → 117 page faults, beside a C client's 1.18–1.24 ms; a program printing one line,
//! 1.07 → 0.96 ms). This program does the parts of that start-up
//! it needs itself: the standard streams are open, SIGPIPE is ignored (so a closed pipe is an
//! error it reports, as in any Rust program, and a program it starts gets it back: std's
//! `Command` restores it), a panic ends it with 101, and standard output is flushed before it
//! ends. What it goes without: the message std prints on a stack overflow.
// Two items need `unsafe`: the C entry point's name, and ignoring SIGPIPE.
// (The test harness brings its own `main`: a test build of this file has none.)
#![cfg_attr(not(test), no_main)]
#![deny(unsafe_code)]

#[cfg(not(test))]
use std::ffi::{c_char, c_int};
#[cfg(not(test))]
use std::io::Write;

#[cfg(not(test))]
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
extern "C" fn main(_argc: c_int, _argv: *const *const c_char) -> c_int {
    standard_streams_open();
    // SAFETY: SIG_IGN installs no handler, so no code of ours can run in a signal context.
    let _ = unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigIgn,
        )
    };
    // std reads the arguments and environment itself (glibc hands them over at load time).
    let code = std::panic::catch_unwind(hms::cli::front).unwrap_or(101);
    let _ = std::io::stdout().flush();
    c_int::from(code)
}

/// A standard stream the caller closed is opened on /dev/null, as std's start-up does, so that
/// no socket or file this program opens takes its number (and is written to as `stdout`).
#[cfg(not(test))]
fn standard_streams_open() {
    use std::os::fd::AsRawFd;
    while let Ok(null) = std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        if null.as_raw_fd() > 2 {
            break;
        }
        // It took the number of a closed standard stream: it stays open as that stream.
        std::mem::forget(null);
    }
}
