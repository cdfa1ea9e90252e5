//! The `hms-console` binary: everything lives in the `hms` library; see `hms::cli`.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    hms::cli::main()
}
