//! The `hms-console` binary: everything lives in the `hms` library; see `hms::cli`. It uses the
//! system allocator: a command or a panel allocates little and briefly, and `up` runs the core as
//! the `hms-core` program (with jemalloc, see src/bin/hms-core.rs) when it is installed beside.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    hms::cli::main()
}
