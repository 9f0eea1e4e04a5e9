//! The heap allocator's behaviour (glibc malloc on Linux; a no-op elsewhere): how many arenas
//! threads share, and handing the free memory of transient peaks back to the kernel.
//!
//! Why (measured with `scripts/bench-scale.sh`, see README "Scale"): glibc gives each thread
//! that allocates under contention an arena of its own, up to 8 per core, and keeps what is
//! freed in an arena for that arena's later allocations. The agent's large transient work (an
//! evaluation's snapshot, a scrape's samples, a `/metrics` page rendered on a blocking thread, a
//! checkpoint image) runs on whichever thread is free, so every arena grew to the peak of the
//! work that ever ran on it, and RSS stayed about 20 KiB per SLO above the live heap. One arena
//! and a fixed mmap threshold ([`tune`]) bound that to what the next piece of work reuses, and
//! [`release_free_memory`] after each checkpoint hands back what earlier peaks (start-up's
//! among them) left free in the middle of the heap: 156 MiB at 5,000 SLOs with it, 187 without.
//!
//! `malloc_trim` walks the free lists holding the arena's lock: 29 ms with 216 MB live (`cargo
//! bench --bench memory`), so a few hundred ms at 100,000 SLOs during which other threads wait
//! to allocate. Hence once a checkpoint (a minute by default), not after every `/metrics` page.

/// Arenas the agent's threads share: one. The agent has one writer (the evaluator) and a few
/// threads that allocate at the same time only briefly, and glibc's per-thread caches keep most
/// small allocations off the arena's lock. Measured with `scripts/bench-scale.sh 20000 1000 90`:
/// 608 MiB with 2 arenas, 562 MiB with 1 (and 1,028 before any of this, with up to 16).
pub const ARENAS: i32 = 1;

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

/// Returns the free pages of every arena to the kernel (`malloc_trim(0)`); see the module docs
/// for what it costs.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` has no preconditions; it only advises the kernel about free pages.
    unsafe {
        libc::malloc_trim(0);
    }
}
