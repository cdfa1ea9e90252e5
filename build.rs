//! Link settings for our programs (the `[[bin]]`s; the test and bench programs are left alone).
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
    if linux_gnu {
        static_unwinder();
    }
}

/// Our programs carry gcc's unwinder in themselves instead of loading `libgcc_s.so.1` (issue 12):
/// loading that one library cost `hms-console status` about as much time as reading and printing
/// the status of 100 components (measured, interleaved runs of both builds of `hms-console`
/// against one core of 100: medians 2.13, 2.61, 2.48 → 1.80, 2.32, 2.17 ms, beside a C client's
/// 1.52, 1.89, 1.82; a C program printing one line takes 1.00 → 1.17 ms with libgcc_s loaded).
///
/// std asks for the unwinder as `-lgcc_s` and takes the static `libgcc_eh.a` only in a whole
/// `crt-static` build (a static glibc, which is not what we want, and no per-binary switch). So
/// the linker of our programs first finds, on a search path of their own, a `libgcc_s.so` that is
/// a linker script naming `libgcc_eh.a` (a linker script under a library's name is how glibc and
/// gcc ship `libc.so` and `libgcc_s.so` themselves). Panics unwind as before (`tests/core_program.rs`
/// checks `hms-console` still ends a panic with 101). Where the compiler has no `libgcc_eh.a`
/// nothing changes: the programs load `libgcc_s.so.1` as before.
fn static_unwinder() {
    let Ok(out) = std::process::Command::new("cc")
        .arg("-print-file-name=libgcc_eh.a")
        .output()
    else {
        return;
    };
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let Ok(archive) = std::fs::canonicalize(&path) else {
        return;
    };
    // A path the script cannot quote is left alone (the usual library paths are plain).
    let Some(archive) = archive.to_str().filter(|p| !p.contains(['"', '\n'])) else {
        return;
    };
    let Some(out_dir) = std::env::var_os("OUT_DIR") else {
        return;
    };
    let dir = std::path::Path::new(&out_dir).join("static-unwinder");
    let script =
        format!("/* hms-console: the unwinder linked in (see build.rs) */\nINPUT(\"{archive}\")\n");
    if std::fs::create_dir_all(&dir).is_err()
        || std::fs::write(dir.join("libgcc_s.so"), script).is_err()
    {
        return;
    }
    println!("cargo:rustc-link-arg-bins=-L{}", dir.display());
    // For the test that checks the programs do without libgcc_s.
    println!("cargo:rustc-env=HMS_STATIC_UNWINDER=1");
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
