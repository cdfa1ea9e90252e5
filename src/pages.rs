//! Handing back the program's pages that only start-up used (issue 12, idle memory).
//!
//! A long-lived process (the core, its reaper, a panel) keeps mapped every page of its program
//! that it ever ran or read: start-up's (the config parser, the runtime's and the logger's set-up,
//! the first connect) as well as the few its idle loop runs, and the kernel maps code 64 kB at a
//! time around each page touched (fault-around). Measured with 100 idle children: the core's own
//! code held 4.1 MB of its 9.5 MB RSS, of which its idle loop runs about 2.3 MB.
//!
//! [`release_program_pages`] unmaps the program's read-only pages once start-up is over
//! (`madvise(MADV_DONTNEED)`): the next use of any of them maps it again from the page cache, a
//! minor fault, so nothing changes but what the process holds mapped. The page cache keeps the
//! file's pages until the kernel needs the memory, charged to no process, and reclaims them
//! more readily than pages a process maps.
//!
//! Only what is safe to drop is dropped: mappings of the program's own file that are not
//! writable and hold no private copy of any page (`Anonymous: 0 kB` in `/proc/self/smaps`). The
//! relocated read-only data (RELRO) holds private copies and is kept; dropping it would bring back
//! the file's unrelocated bytes. A page a debugger patched (a breakpoint) is a private copy too,
//! and keeps its whole mapping.
// One item needs `unsafe`: the madvise call, whose safety rests on the checks above.
#![deny(unsafe_code)]

use std::os::unix::fs::MetadataExt;

/// A mapping that may be dropped: its start address and length in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub start: usize,
    pub len: usize,
}

/// What [`release_program_pages`] did: the mappings dropped and the kB they held resident.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Released {
    pub mappings: usize,
    pub kb: u64,
}

/// The file a mapping maps, as `/proc/<pid>/smaps` names it: device (major, minor) and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    pub major: u64,
    pub minor: u64,
    pub inode: u64,
}

/// The mappings of `file` in `smaps` (the text of `/proc/<pid>/smaps`) that may be dropped: not
/// writable, private, and holding no anonymous page; with the kB each holds resident. Anything
/// this cannot read (a header or a field in another shape) is not dropped: a mapping counts only
/// when its header and its `Rss` and `Anonymous` fields were all read.
pub fn releasable(smaps: &str, file: FileId) -> Vec<(Range, u64)> {
    /// The mapping being read: its range if it is one of the file's, read-only and private.
    struct Current {
        range: Option<Range>,
        rss: Option<u64>,
        anonymous: Option<u64>,
    }
    let mut out = Vec::new();
    let mut current: Option<Current> = None;
    let mut finish = |c: Option<Current>| {
        if let Some(Current {
            range: Some(range),
            rss: Some(rss),
            anonymous: Some(0),
        }) = c
        {
            out.push((range, rss));
        }
    };
    for line in smaps.lines() {
        if let Some(range) = header(line) {
            finish(current.take());
            current = Some(Current {
                range: range.filter(|(_, f)| *f == file).map(|(r, _)| r),
                rss: None,
                anonymous: None,
            });
        } else if let Some(c) = current.as_mut() {
            if let Some(kb) = field_kb(line, "Rss:") {
                c.rss = Some(kb);
            } else if let Some(kb) = field_kb(line, "Anonymous:") {
                c.anonymous = Some(kb);
            }
        }
    }
    finish(current);
    out
}

/// A mapping's header line (`start-end perms offset major:minor inode [path]`): `None` when the
/// line is not one; `Some(None)` for a mapping that may not be dropped (writable, shared, or of no
/// file); else its range and file.
fn header(line: &str) -> Option<Option<(Range, FileId)>> {
    let mut words = line.split_ascii_whitespace();
    let (range, perms, _offset, dev, inode) = (
        words.next()?,
        words.next()?,
        words.next()?,
        words.next()?,
        words.next()?,
    );
    let (start, end) = range.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    let perms = perms.as_bytes();
    if perms.len() != 4 || end < start {
        return None;
    }
    let (major, minor) = dev.split_once(':')?;
    let file = FileId {
        major: u64::from_str_radix(major, 16).ok()?,
        minor: u64::from_str_radix(minor, 16).ok()?,
        inode: inode.parse().ok()?,
    };
    // Not writable, private ('p', not 's'), of a file (inode 0 is anonymous memory).
    let droppable = perms[1] == b'-' && perms[3] == b'p' && file.inode != 0 && end > start;
    Some(droppable.then_some((
        Range {
            start,
            len: end - start,
        },
        file,
    )))
}

/// The kB of a field line such as `Rss:   4084 kB`.
fn field_kb(line: &str, name: &str) -> Option<u64> {
    let rest = line.strip_prefix(name)?.trim();
    rest.strip_suffix("kB")?.trim().parse().ok()
}

/// The running program's file.
fn program_file() -> std::io::Result<FileId> {
    // The link follows the file even when it was replaced or removed since the start.
    let meta = std::fs::metadata("/proc/self/exe")?;
    let dev = meta.dev();
    Ok(FileId {
        major: nix::sys::stat::major(dev),
        minor: nix::sys::stat::minor(dev),
        inode: meta.ino(),
    })
}

/// Drops this process's mappings of its own program file that hold no private copy of a page
/// (see the module's doc). Best effort: a range the kernel refuses is left as it was.
#[allow(unsafe_code)]
pub fn release_program_pages() -> std::io::Result<Released> {
    let file = program_file()?;
    let ranges = releasable(&std::fs::read_to_string("/proc/self/smaps")?, file);
    // From the first madvise on, whatever code runs is mapped again: as little as can be (the
    // text of smaps is freed before).
    let mut released = Released::default();
    for (range, kb) in ranges {
        let Some(addr) = std::ptr::NonNull::new(range.start as *mut std::ffi::c_void) else {
            continue;
        };
        // SAFETY: the range is a whole mapping of this process's own program file, private, not
        // writable, and held no anonymous page when smaps was read: every page of it has the
        // file's bytes, and nothing can write one (a debugger's patch aside, which the check
        // above keeps). MADV_DONTNEED removes the range's pages from this process's page tables;
        // the next access to any of them, by any thread, maps the same bytes from the file again.
        // No Rust value is invalidated: the bytes do not change.
        if unsafe {
            nix::sys::mman::madvise(addr, range.len, nix::sys::mman::MmapAdvise::MADV_DONTNEED)
        }
        .is_ok()
        {
            released.mappings += 1;
            released.kb += kb;
        }
    }
    Ok(released)
}

/// How long a long-lived process keeps mapped the pages its start-up ran: the core has asked its
/// whole fleet to start well before then (1,000 components all run in under 2 s), a panel has
/// connected and drawn its first frames.
pub const START_UP_LASTS: std::time::Duration = std::time::Duration::from_secs(5);

/// Waits [`START_UP_LASTS`], then hands back the program's pages (see the module's doc) and logs
/// what it did. Reading smaps takes about a millisecond, once: run it as a task of the caller's
/// runtime, no thread of its own.
pub async fn release_after_start_up() {
    tokio::time::sleep(START_UP_LASTS).await;
    match release_program_pages() {
        Ok(released) => tracing::debug!(
            mappings = released.mappings,
            kb = released.kb,
            "handed back the program's start-up pages"
        ),
        Err(e) => tracing::debug!(cause = %e, "cannot hand back the program's start-up pages"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROGRAM: FileId = FileId {
        major: 0xfe,
        minor: 0,
        inode: 5309912,
    };

    const SMAPS: &str = "\
55bbf96bb000-55bbf9835000 r--p 00000000 fe:00 5309912                    /work/hms-core
Size:               1512 kB
Rss:                 580 kB
Anonymous:             0 kB
55bbf9835000-55bbf9eee000 r-xp 00179000 fe:00 5309912                    /work/hms-core
Size:               6884 kB
Rss:                4084 kB
Anonymous:             0 kB
55bbf9eee000-55bbf9f30000 r--p 00831000 fe:00 5309912                    /work/hms-core
Rss:                 264 kB
Anonymous:           260 kB
55bbf9f30000-55bbf9f36000 rw-p 00872000 fe:00 5309912                    /work/hms-core
Rss:                  24 kB
Anonymous:            24 kB
7f6214800000-7f6214c00000 rw-p 00000000 00:00 0
Rss:                1812 kB
Anonymous:          1812 kB
7f6215005000-7f6215007000 r-xp 00000000 fe:00 77                         /usr/lib/libc.so.6
Rss:                   8 kB
Anonymous:             0 kB
";

    #[test]
    fn only_the_programs_read_only_mappings_without_private_pages_are_releasable() {
        let found = releasable(SMAPS, PROGRAM);
        assert_eq!(
            found,
            vec![
                (
                    Range {
                        start: 0x55bbf96bb000,
                        len: 0x55bbf9835000 - 0x55bbf96bb000
                    },
                    580
                ),
                (
                    Range {
                        start: 0x55bbf9835000,
                        len: 0x55bbf9eee000 - 0x55bbf9835000
                    },
                    4084
                ),
            ],
            "the RELRO mapping (private copies), the writable data, anonymous memory and other \
             files are kept"
        );
    }

    #[test]
    fn a_mapping_whose_fields_are_missing_or_unreadable_is_kept() {
        let no_anonymous = "1000-2000 r-xp 00000000 fe:00 5309912 /p\nRss: 4 kB\n";
        assert!(releasable(no_anonymous, PROGRAM).is_empty());
        let garbled = "1000-2000 r-xp 00000000 fe:00 5309912 /p\nRss: 4 kB\nAnonymous: x kB\n";
        assert!(releasable(garbled, PROGRAM).is_empty());
        let shared = "1000-2000 r--s 00000000 fe:00 5309912 /p\nRss: 4 kB\nAnonymous: 0 kB\n";
        assert!(releasable(shared, PROGRAM).is_empty());
        let patched = "1000-2000 r-xp 00000000 fe:00 5309912 /p\nRss: 8 kB\nAnonymous: 4 kB\n";
        assert!(releasable(patched, PROGRAM).is_empty());
    }

    /// The real thing, in this test process: its own code is unmapped and then runs on (each page
    /// mapped again as it is used), and what it held resident goes down.
    #[test]
    fn releasing_the_programs_pages_lowers_what_it_holds_and_it_runs_on() {
        let resident = || {
            let file = program_file().unwrap();
            let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
            releasable(&smaps, file)
                .iter()
                .map(|(_, kb)| kb)
                .sum::<u64>()
        };
        let before = resident();
        assert!(before > 0, "the test program maps its own code");
        let released = release_program_pages().unwrap();
        assert!(released.mappings >= 1, "{released:?}");
        assert!(released.kb > 0, "{released:?}");
        // Code and read-only data are still there: format, parse, allocate.
        let text = format!("{:?}", releasable(SMAPS, PROGRAM));
        assert!(text.contains("4084"));
        let after = resident();
        assert!(
            after < before,
            "resident program pages {before} kB before, {after} kB after"
        );
    }

    proptest::proptest! {
        /// Whatever smaps says, a range given back is a whole read-only private mapping of the
        /// program that the text listed with no anonymous page.
        #[test]
        fn only_listed_read_only_private_mappings_are_ever_released(
            lines in proptest::collection::vec(
                proptest::prop_oneof![
                    "[0-9a-f]{1,12}-[0-9a-f]{1,12} [r-][w-][x-][ps] [0-9a-f]{8} fe:00 (5309912|0|77)( /p)?",
                    "(Rss|Anonymous|Size): {1,8}[0-9]{1,5} kB",
                    ".{0,40}",
                ],
                0..40,
            )
        ) {
            let text = lines.join("\n");
            for (range, _) in releasable(&text, PROGRAM) {
                let starts_here = |l: &&String| {
                    l.split('-').next().and_then(|s| usize::from_str_radix(s, 16).ok())
                        == Some(range.start)
                };
                let fits = |l: &&String| {
                    let perms: Vec<char> =
                        l.split(' ').nth(1).map_or(Vec::new(), |p| p.chars().collect());
                    perms.len() == 4
                        && perms[1] == '-'
                        && perms[3] == 'p'
                        && l.contains(" 5309912")
                };
                proptest::prop_assert!(
                    lines.iter().filter(starts_here).any(|l| fits(&l)),
                    "{range:?} from {text}"
                );
                proptest::prop_assert!(range.len > 0);
            }
        }
    }
}
