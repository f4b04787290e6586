//! Handing back the executable's start-up pages lowers what the process keeps resident, as the
//! kernel counts it, and the code whose pages were dropped still runs. Alone in its test binary,
//! so no other test faults pages in between the readings.

use ebb_runtime::release_start_up_pages;

/// A field of `/proc/self/status`, in kB.
fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

#[test]
fn handing_back_start_up_pages_lowers_the_resident_set_and_the_code_still_runs() {
    let (rss_before, file_before) = (status_kb("VmRSS"), status_kb("RssFile"));
    let released = release_start_up_pages().expect("release");
    let (rss_after, file_after) = (status_kb("VmRSS"), status_kb("RssFile"));
    eprintln!(
        "VmRSS {rss_before} → {rss_after} kB, RssFile {file_before} → {file_after} kB; {released:?}"
    );
    assert!(released.mappings > 0, "{released:?}");
    assert!(released.resident_bytes > 0, "{released:?}");
    assert!(
        file_after < file_before,
        "RssFile {file_before} → {file_after} kB"
    );
    assert!(
        rss_after < rss_before,
        "VmRSS {rss_before} → {rss_after} kB"
    );

    // The same code again, its pages faulted back from the page cache: it finds the mappings
    // as before (their bytes unchanged, or the parsing would not recognise them).
    let again = release_start_up_pages().expect("release again");
    assert_eq!(again.mappings, released.mappings, "{again:?}");
}
