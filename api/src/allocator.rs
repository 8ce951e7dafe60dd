//! The allocator's two settings: keep the memory it frees, and no transparent huge
//! pages ([`configure`] sets both).
//!
//! Both binaries allocate with mimalloc (`#[global_allocator]` in each). By default
//! mimalloc hands freed pages back to the system a second after they are freed, and
//! SurrealKV frees and allocates large buffers all the time: a memtable of up to
//! `db.memtable_mb` each time one fills, a table file's blocks as it is written. Every
//! page handed back and taken again costs a page fault and zeroing in the kernel: a
//! twelfth of a bulk import's time (BENCHMARKS.md, "Bulk import, smaller blocks").
//! Kept, freed memory is reused, so the process's peak is unchanged; what it does not
//! do is shrink after a peak.
//!
//! mimalloc also asks the kernel for transparent huge pages (`MADV_HUGEPAGE` on its
//! arenas), and a kernel set to `defrag = madvise` (Debian's default) then compacts
//! memory on the page fault to find each 2 MiB page, synchronously. How long that
//! takes depends on how fragmented the host's memory is, not on nhigov: the graph
//! index's load at 100,000 NHIs took 11.6 to 12.1 s with huge pages and 4.6 to 4.9 s
//! without, on the same binary and store, an hour after the same load had taken 5.1 s
//! with them; about half of its CPU time was the kernel clearing and compacting pages
//! (BENCHMARKS.md, "Huge pages"). The process turns them off for itself
//! (`PR_SET_THP_DISABLE`), unless `MIMALLOC_ALLOW_THP` in the environment says
//! otherwise.

use std::ffi::{c_int, c_long};

// The `mimalloc` crate links the library the functions below come from, also into a
// binary (such as this crate's tests) that does not name it as its allocator.
extern crate mimalloc as _;

/// `mi_option_purge_delay` in mimalloc 3's `mimalloc.h` (the version `mimalloc` 0.1.52
/// builds): how long freed memory waits before it goes back to the system, in
/// milliseconds, -1 for never.
const MI_OPTION_PURGE_DELAY: c_int = 15;

/// `mi_option_allow_thp` in the same header: whether mimalloc asks for transparent
/// huge pages.
const MI_OPTION_ALLOW_THP: c_int = 43;

/// `PR_SET_THP_DISABLE` in Linux's `prctl.h`: no transparent huge page for any mapping
/// of this process from then on, whatever `madvise` asks.
#[cfg(target_os = "linux")]
const PR_SET_THP_DISABLE: c_int = 41;

unsafe extern "C" {
    /// mimalloc's option setter, in the library the `mimalloc` crate links.
    fn mi_option_set(option: c_int, value: c_long);
    /// The C library's `prctl`.
    #[cfg(target_os = "linux")]
    fn prctl(option: c_int, ...) -> c_int;
}

/// Both settings of this module. Call first thing in `main`.
pub fn configure() {
    keep_freed_memory();
    no_huge_pages();
}

/// Keep freed memory for reuse, unless `MIMALLOC_PURGE_DELAY` in the environment says
/// otherwise (mimalloc reads it at start).
pub fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one integer option; mimalloc reads its options atomically, and
        // an out-of-range option number is ignored.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
    }
}

/// No transparent huge pages for this process, unless `MIMALLOC_ALLOW_THP` in the
/// environment says otherwise (then mimalloc has read it at start, and turned them off
/// itself if it is 0). Mappings made before the call keep what they have.
pub fn no_huge_pages() {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
        return;
    }
    // SAFETY: sets one integer option, as above.
    unsafe { mi_option_set(MI_OPTION_ALLOW_THP, 0) }
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `prctl` with this option reads its second argument only and changes a
        // flag of the calling process; the trailing arguments must be zero. A kernel
        // older than 3.15 refuses it, and huge pages stay as the kernel's setting has them.
        unsafe { prctl(PR_SET_THP_DISABLE, 1 as c_long, 0 as c_long, 0 as c_long, 0 as c_long) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    unsafe extern "C" {
        fn mi_option_get(option: c_int) -> c_long;
    }

    fn purge_delay() -> c_long {
        // SAFETY: reads one integer option.
        unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) }
    }

    #[test]
    fn freed_memory_is_kept_unless_the_environment_says_otherwise() {
        match std::env::var_os("MIMALLOC_PURGE_DELAY") {
            None => {
                // mimalloc 3's default purge delay, 1000 ms: the number is that option's.
                assert_eq!(purge_delay(), 1000);
                keep_freed_memory();
                assert_eq!(purge_delay(), -1);
            }
            Some(_) => {
                let set = purge_delay();
                keep_freed_memory();
                assert_eq!(purge_delay(), set, "the environment's setting stands");
            }
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_process_asks_for_no_huge_pages_unless_the_environment_says_otherwise() {
        const PR_GET_THP_DISABLE: c_int = 42;
        // SAFETY: reads one flag of the calling process.
        let disabled = || unsafe { prctl(PR_GET_THP_DISABLE, 0 as c_long, 0 as c_long, 0 as c_long, 0 as c_long) };
        let before = disabled();
        no_huge_pages();
        match std::env::var_os("MIMALLOC_ALLOW_THP") {
            None => assert_eq!(disabled(), 1, "turned off"),
            Some(_) => assert_eq!(disabled(), before, "the environment's setting stands"),
        }
    }
}
