//! Link settings for the `hms-console` binary only.
//!
//! `-z pack-relative-relocs` stores the binary's relative relocations as a bitmap (DT_RELR, glibc
//! 2.36 and later) instead of a 24-byte entry each: the dynamic loader of every `hms-console`
//! process (each CLI command, panel, the core and its helpers) reads a few KB instead of ~350 KB
//! of relocation entries before `main`. The linker says if it does not know the option; glibc
//! before 2.36 refuses to start such a binary, so it is only asked for where glibc is new enough.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let linux_gnu = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    if linux_gnu && glibc_has_relr() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// Whether the glibc we link against understands DT_RELR (2.36 and later), from `ldd --version`.
fn glibc_has_relr() -> bool {
    let Ok(out) = std::process::Command::new("ldd").arg("--version").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(version) = text
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().last())
    else {
        return false;
    };
    let mut parts = version.split('.').filter_map(|p| p.parse::<u32>().ok());
    matches!((parts.next(), parts.next()), (Some(major), Some(minor)) if (major, minor) >= (2, 36))
}
