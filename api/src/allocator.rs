//! The allocator's one setting: keep the memory it frees.
//!
//! Both binaries allocate with mimalloc (`#[global_allocator]` in each). By default
//! mimalloc hands freed pages back to the system a second after they are freed, and
//! SurrealKV frees and allocates large buffers all the time: a memtable of up to
//! `db.memtable_mb` each time one fills, a table file's blocks as it is written. Every
//! page handed back and taken again costs a page fault and zeroing in the kernel: a
//! twelfth of a bulk import's time (BENCHMARKS.md, "Bulk import, smaller blocks").
//! Kept, freed memory is reused, so the process's peak is unchanged; what it does not
//! do is shrink after a peak.

use std::ffi::{c_int, c_long};

// The `mimalloc` crate links the library the functions below come from, also into a
// binary (such as this crate's tests) that does not name it as its allocator.
extern crate mimalloc as _;

/// `mi_option_purge_delay` in mimalloc 3's `mimalloc.h` (the version `mimalloc` 0.1.52
/// builds): how long freed memory waits before it goes back to the system, in
/// milliseconds, -1 for never.
const MI_OPTION_PURGE_DELAY: c_int = 15;

unsafe extern "C" {
    /// mimalloc's option setter, in the library the `mimalloc` crate links.
    fn mi_option_set(option: c_int, value: c_long);
}

/// Keep freed memory for reuse, unless `MIMALLOC_PURGE_DELAY` in the environment says
/// otherwise (mimalloc reads it at start). Call first thing in `main`.
pub fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one integer option; mimalloc reads its options atomically, and
        // an out-of-range option number is ignored.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
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
}
