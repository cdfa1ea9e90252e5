//! `hms-console`: answers a plain `status` itself and hands every other command line to the
//! `hms-cli` program beside it, which replaces this process (same pid, arguments and exit code):
//! see `hms::cli::front` for why. Everything lives in the `hms` library.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    hms::cli::front()
}
