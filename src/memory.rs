//! The heap allocator's behaviour (glibc malloc on Linux; a no-op elsewhere): how many arenas
//! threads share, and handing the free memory of transient peaks back to the kernel.
//!
//! Why (measured with `scripts/bench-scale.sh`, see README "Scale"): glibc gives each thread
//! that allocates under contention an arena of its own, up to 8 per core, and keeps what is
//! freed in an arena for that arena's later allocations. The agent's large transient work (an
//! evaluation's snapshot, a scrape's samples, a `/metrics` page rendered on a blocking thread, a
//! checkpoint image) runs on whichever thread is free, so every arena grew to the peak of the
//! work that ever ran on it, and RSS stayed about 20 KiB per SLO above the live heap. Two
//! arenas and a fixed mmap threshold ([`tune`]) and [`release_free_memory`] after each such
//! piece of work bound that to what the next one reuses.

/// Arenas the agent's threads share: its runtime has two kinds of busy threads (the async
/// workers and the blocking ones), and glibc's per-thread caches keep small allocations off the
/// arena locks.
pub const ARENAS: i32 = 2;

/// Allocations from this size up get pages of their own (`mmap`), returned to the kernel when
/// freed. glibc starts at 128 KiB but raises the threshold to the size of every such block
/// freed, up to 32 MiB, after which a `/metrics` page, a snapshot's report vector or a
/// checkpoint image of tens of MB came from an arena and stayed there; a fixed threshold keeps
/// them returned.
pub const MMAP_THRESHOLD: i32 = 512 * 1024;

/// Sets [`ARENAS`] and [`MMAP_THRESHOLD`]; call before the runtime starts its threads (threads
/// that already have an arena keep it).
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets allocator parameters; both values are in their valid ranges.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

/// Returns the free pages of every arena to the kernel (`malloc_trim(0)`): after work whose
/// peak the process will not need again soon. It walks the free lists (about a millisecond per
/// hundred MiB of heap here), so call it after large transient work, not per allocation.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` has no preconditions; it only advises the kernel about free pages.
    unsafe {
        libc::malloc_trim(0);
    }
}
