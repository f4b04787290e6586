//! Hands back the pages of the executable that only start-up used, so a process at rest keeps
//! resident what it runs, not what it ran once.
//!
//! Why: a fresh `ebb producer` or `ebb consumer` was ~90 % file-backed pages of its own binary
//! (RssFile ≈ 10 of 11 MB; RssAnon ≈ 1 MB). Start-up (argument parsing, logging, the runtime,
//! the first connections) touches code all over the binary, and every fault maps a whole
//! fault-around window (64 KB) from the page cache, which the disk's read-ahead has filled.
//! Those pages stay mapped, and counted in VmRSS, for the life of the process.
//!
//! What: once start-up is over, `MADV_DONTNEED` on the executable's read-only mappings whose
//! every page is still the file's (no private copy: smaps' `Anonymous: 0 kB`). That only drops
//! this process's page-table entries: the bytes are unchanged, the pages stay in the page cache
//! (shared, and now reclaimable without unmapping anything), and what the process runs next
//! faults back in as a minor fault. `MADV_RANDOM` (no read-around on later faults) was
//! measured too and changed nothing here, since fault-around maps from the page cache whatever
//! read-ahead did; `MADV_PAGEOUT` skips pages another process maps (a producer and consumers
//! of one binary on a node), so it is not used.
//!
//! Never touched: writable mappings, the RELRO segment and any other mapping with private
//! copies (relocated data: dropping those would bring back the unrelocated file bytes), shared
//! libraries (a `dlopen`ed one could be unmapped and its range reused between reading smaps and
//! the call), and anything not a file.

use std::ffi::c_void;
use std::io;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

use nix::sys::mman::{MmapAdvise, madvise};

/// What [`release_start_up_pages`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Released {
    /// Mappings of the executable handed back.
    pub mappings: usize,
    /// Their resident bytes just before (what VmRSS drops by, less what faults back at once).
    pub resident_bytes: u64,
}

/// One mapping of `/proc/self/smaps` that may be handed back.
#[derive(Debug, PartialEq, Eq)]
struct Candidate {
    start: usize,
    end: usize,
    resident_bytes: u64,
}

/// Drops this process's mappings of the executable's read-only, unmodified pages (see the
/// module docs); they fault back from the page cache when used. Call it once start-up is over.
pub fn release_start_up_pages() -> io::Result<Released> {
    let executable = std::fs::read_link("/proc/self/exe")?;
    let smaps = std::fs::read_to_string("/proc/self/smaps")?;
    let mut released = Released::default();
    for candidate in candidates(&smaps, &executable) {
        let Some(start) = NonNull::new(candidate.start as *mut c_void) else {
            continue;
        };
        // SAFETY: `[start, end)` is a mapping of this process's own executable (never unmapped
        // while the process lives, so the range cannot have been reused since smaps was read),
        // private, without write permission, and with no private (copied-on-write) page: every
        // byte in it is the file's, and nothing can write to it. MADV_DONTNEED removes the
        // page-table entries only; the next access faults the same bytes back from the page
        // cache, so no code and no reference into this range (string constants, vtables in
        // `.rodata`) can ever observe a change. A thread running code in the range meanwhile
        // just takes that fault.
        #[allow(unsafe_code)]
        let advised = unsafe {
            madvise(
                start,
                candidate.end - candidate.start,
                MmapAdvise::MADV_DONTNEED,
            )
        };
        if advised.is_ok() {
            released.mappings += 1;
            released.resident_bytes += candidate.resident_bytes;
        }
    }
    Ok(released)
}

/// The mappings of `executable` in `smaps` that are private, read-only, backed by the file
/// and free of private copies.
fn candidates(smaps: &str, executable: &Path) -> Vec<Candidate> {
    let mut found = Vec::new();
    // The mapping whose fields are being read, while it is still eligible.
    let mut current: Option<Candidate> = None;
    for line in smaps.lines() {
        if let Some(header) = mapping_header(line) {
            current = header
                .filter(|(_, path, eligible)| *eligible && path == executable)
                .map(|(candidate, _, _)| candidate);
            continue;
        }
        let (Some(candidate), Some((field, value))) = (current.as_mut(), line.split_once(':'))
        else {
            continue;
        };
        let kb = value
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse::<u64>()
            .ok();
        match field {
            "Rss" => candidate.resident_bytes = kb.unwrap_or(0) * 1024,
            // Private copies: relocated or written pages, which only the mapping holds.
            "Anonymous" if kb != Some(0) => current = None,
            // The last field of a mapping.
            "VmFlags" => {
                found.extend(current.take().filter(|found| found.resident_bytes > 0));
            }
            _ => {}
        }
    }
    found
}

/// A smaps header line (`start-end perms offset dev inode path`): `Some(None)` for a header
/// that names no file, `Some(Some((range, path, eligible by its permissions)))` for one that
/// does, `None` for a field line.
fn mapping_header(line: &str) -> Option<Option<(Candidate, PathBuf, bool)>> {
    let mut fields = line.split_whitespace();
    let range = fields.next()?;
    let (start, end) = range.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    let perms = fields.next()?;
    let (_offset, _device, _inode) = (fields.next()?, fields.next()?, fields.next()?);
    let path: String = fields.collect::<Vec<_>>().join(" ");
    if !path.starts_with('/') {
        return Some(None);
    }
    let perms = perms.as_bytes();
    let eligible = perms.len() == 4 && perms[0] == b'r' && perms[1] == b'-' && perms[3] == b'p';
    let range = Candidate {
        start,
        end,
        resident_bytes: 0,
    };
    Some(Some((range, PathBuf::from(path), eligible)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
5560b7bcd000-5560b8187000 r--p 00000000 fe:00 5663208                    /bin/ebb
Rss:                1924 kB
Anonymous:             0 kB
VmFlags: rd mr mw me sd
5560b8187000-5560b951d000 r-xp 005b9000 fe:00 5663208                    /bin/ebb
Rss:                6004 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me sd
5560b951d000-5560b95cd000 r--p 0194e000 fe:00 5663208                    /bin/ebb
Rss:                 704 kB
Anonymous:           704 kB
VmFlags: rd mr mw me ac sd
5560b95cd000-5560b95d2000 rw-p 019fd000 fe:00 5663208                    /bin/ebb
Rss:                  20 kB
Anonymous:            20 kB
VmFlags: rd wr mr mw me ac sd
5560db3e1000-5560db426000 rw-p 00000000 00:00 0                          [heap]
Rss:                 168 kB
Anonymous:           168 kB
VmFlags: rd wr mr mw me ac sd
7efde3c6d000-7efde3dc3000 r-xp 00026000 fe:00 326269                     /usr/lib/libc.so.6
Rss:                1036 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me sd
7efde3c00000-7efde3c01000 r--p 00000000 fe:00 4                          /bin/ebb two (deleted)
Rss:                   4 kB
Anonymous:             0 kB
VmFlags: rd mr mw me sd
";

    #[test]
    fn only_the_executables_unmodified_read_only_mappings_are_handed_back() {
        let found = candidates(SMAPS, Path::new("/bin/ebb"));
        assert_eq!(
            found,
            [
                Candidate {
                    start: 0x5560b7bcd000,
                    end: 0x5560b8187000,
                    resident_bytes: 1924 * 1024,
                },
                Candidate {
                    start: 0x5560b8187000,
                    end: 0x5560b951d000,
                    resident_bytes: 6004 * 1024,
                },
            ]
        );
        let spaced = candidates(SMAPS, Path::new("/bin/ebb two (deleted)"));
        assert_eq!(spaced.len(), 1);
    }
}
