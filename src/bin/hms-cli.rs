//! `hms-cli`: the whole `hms-console` command line (every command, the console, the panels, and
//! the core itself when `hms-core` is not beside it); see `hms::cli`. `hms-console` answers a
//! plain `status` itself and hands every other command line to this program, which replaces it
//! (`hms::cli::front`). It uses the system allocator: a command or a panel allocates little and
//! briefly, and `up` runs the core as the `hms-core` program (with jemalloc, see
//! src/bin/hms-core.rs) when it is installed beside.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    hms::cli::main()
}
