//! Memory per SLO (issue 11: <= 16 KiB per added SLO, all in): the heap the agent's parts hold
//! per SLO on the workload of `scripts/bench-scale.sh` (one 30d 99.9 % ratio SLO per route of
//! the synthetic fleet, its two series per route over four scrape targets, the default page
//! and ticket tiers), counted by a global allocator that tracks live and peak bytes.
//!
//! For two SLO counts it builds the parts the agent builds (rules, evaluator with engine,
//! scrape plan and counter trackers, snapshots, a checkpoint streamed to a file and, for
//! comparison, as a whole image, the `/metrics` page, the alerting lifecycles) and prints, per
//! part, the bytes held at each count and the slope between them: bytes per added SLO. Bytes are counted twice: as requested, and as glibc
//! malloc's chunks take them (8 bytes of header, rounded up to 16, at least 32), which is what
//! RSS sees of a heap without fragmentation. What RSS holds beyond that is the allocator's
//! retention, measured by `scripts/bench-scale.sh`.
//!
//! Run: `cargo bench --bench memory` (5,000 and 20,000 SLOs); `cargo test --all-targets` runs it
//! on 200 and 400 SLOs to check that it works.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};

use burnwatch::alerter::Alerter;
use burnwatch::evaluator::{Evaluator, Observation};
use burnwatch::export::prometheus::{PageOptions, render};
use burnwatch::exposition::Format;
use burnwatch::rules::check_sources;
use burnwatch::rules::model::RuleSet;
use burnwatch::scrape::{ScrapePlan, TargetLabels, match_page};
use burnwatch::slo::{Engine, SloIdx};
use burnwatch::synthetic::Fleet;
use burnwatch::time::Timestamp;

/// Counts live and peak heap bytes, requested and as glibc chunks.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);
static LIVE_CHUNKS: AtomicIsize = AtomicIsize::new(0);
static PEAK_CHUNKS: AtomicIsize = AtomicIsize::new(0);

/// The bytes a glibc malloc chunk of a `size`-byte request takes.
fn chunk(size: usize) -> isize {
    ((size + 8).div_ceil(16) * 16).max(32) as isize
}

fn grow(size: usize) {
    let live = LIVE.fetch_add(size as isize, Ordering::Relaxed) + size as isize;
    PEAK.fetch_max(live, Ordering::Relaxed);
    let c = chunk(size);
    let chunks = LIVE_CHUNKS.fetch_add(c, Ordering::Relaxed) + c;
    PEAK_CHUNKS.fetch_max(chunks, Ordering::Relaxed);
}

fn shrink(size: usize) {
    LIVE.fetch_sub(size as isize, Ordering::Relaxed);
    LIVE_CHUNKS.fetch_sub(chunk(size), Ordering::Relaxed);
}

// SAFETY: every call is forwarded to the system allocator unchanged; the counters are only
// bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is `System`'s.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) };
        shrink(layout.size());
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            shrink(layout.size());
            grow(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Live bytes (requested, chunks).
fn live() -> (isize, isize) {
    (
        LIVE.load(Ordering::Relaxed),
        LIVE_CHUNKS.load(Ordering::Relaxed),
    )
}

/// Starts a new peak from the live bytes.
fn reset_peak() {
    PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
    PEAK_CHUNKS.store(LIVE_CHUNKS.load(Ordering::Relaxed), Ordering::Relaxed);
}

/// Peak bytes since [`reset_peak`] (requested, chunks).
fn peak() -> (isize, isize) {
    (
        PEAK.load(Ordering::Relaxed),
        PEAK_CHUNKS.load(Ordering::Relaxed),
    )
}

fn minus(a: (isize, isize), b: (isize, isize)) -> (isize, isize) {
    (a.0 - b.0, a.1 - b.1)
}

const TARGETS: u32 = 4;
/// The row of the checkpoint streamed to a file, which must not grow with the SLOs.
const STREAMED: &str = "checkpoint save, streamed to a file: peak";
/// SLOs per rules file, as `scripts/bench-scale.sh` writes them.
const CHUNK: u32 = 4_000;
/// The fleet's counters at the first scrape: an hour after its start.
const T0: i64 = 1_780_000_000_000;

/// The rules `scripts/bench-scale.sh` writes for `n` SLOs (without probes): per target, files
/// of at most [`CHUNK`] of its routes, the first declaring the target.
fn rules(n: u32) -> RuleSet {
    let mut sources = Vec::new();
    let per_target = n / TARGETS + 1;
    for k in 0..TARGETS {
        for c in 0..per_target.div_ceil(CHUNK) {
            let first = k + c * CHUNK * TARGETS;
            let last = k + (c + 1) * CHUNK * TARGETS;
            let mut y = format!(
                "version: burnwatch/v1\nservice: bench-{k}{}\nowner: bench@example.com\n",
                if c > 0 {
                    format!("-{c}")
                } else {
                    String::new()
                }
            );
            if c == 0 {
                let _ = write!(
                    y,
                    "scrape:\n  - name: bench-{k}\n    url: http://127.0.0.1:1/targets/{k}/metrics\n    \
                     interval: 15s\n    sample_limit: 1000000\n    body_limit: 256MiB\n"
                );
            }
            if first < n {
                y.push_str("slos:\n");
                for r in (first..n.min(last)).step_by(TARGETS as usize) {
                    let _ = write!(
                        y,
                        "  - name: r{r}\n    objective: 99.9\n    window: 30d\n    indicator:\n      \
                         ratio:\n        bad: 'bench_requests_total{{route=\"r{r}\",code=~\"5..\"}}'\n        \
                         total: 'bench_requests_total{{route=\"r{r}\"}}'\n"
                    );
                }
            }
            sources.push((PathBuf::from(format!("bench-{k}-{c}.yaml")), y.into_bytes()));
        }
    }
    let report = check_sources(&sources);
    match report.rules {
        Some(r) => r,
        None => panic!("bench rules do not check: {:?}", report.diagnostics),
    }
}

/// One part's bytes at each SLO count.
struct Row {
    what: &'static str,
    bytes: Vec<(isize, isize)>,
}

/// Sum of the count-state bytes (buckets and window sums) of every SLO of `engine`.
fn count_bytes(engine: &Engine) -> isize {
    (0..engine.len() as u32)
        .filter_map(|i| engine.count_bytes(SloIdx(i)))
        .sum::<usize>() as isize
}

/// Builds every part for `n` SLOs, `minutes` of scrapes (every 15 s) and evaluations (every
/// 30 s), and returns the bytes of each.
fn measure(n: u32, minutes: i64) -> Vec<(&'static str, (isize, isize))> {
    let mut out = Vec::new();
    let base = live();
    let rules = rules(n);
    let with_rules = live();
    out.push(("rules (RuleSet, held once)", minus(with_rules, base)));

    // The evaluator's parts, built alone to tell them apart.
    let before = live();
    let engine = Engine::from_rules(&rules);
    let engine_fresh = minus(live(), before);
    out.push((
        "engine, fresh: entries (rule copy, plan, window sums), heads, index by id",
        engine_fresh,
    ));
    let before = live();
    let plan = ScrapePlan::new(&rules, |id| engine.index_of(id));
    out.push((
        "scrape plan (selectors filed by metric and label value)",
        minus(live(), before),
    ));
    let plan_bytes = minus(live(), before);
    drop(plan);
    drop(engine);

    let labels: Vec<TargetLabels> = rules.scrapes.iter().map(TargetLabels::for_target).collect();
    let names: Vec<Arc<str>> = rules
        .scrapes
        .iter()
        .map(|t| Arc::from(t.name.as_str()))
        .collect();
    let alerter_rules = rules.clone();
    let before_ev = live();
    let mut ev = Evaluator::new(rules, Timestamp(T0));
    let fresh = minus(live(), before_ev);
    out.push((
        "evaluator's own maps (readers, feeds, statuses, events)",
        minus(
            fresh,
            (engine_fresh.0 + plan_bytes.0, engine_fresh.1 + plan_bytes.1),
        ),
    ));
    let counts_fresh = count_bytes(ev.engine());
    let fleet = Fleet::new(n, TARGETS, 0);
    let mut snap: Option<Arc<burnwatch::view::AgentSnapshot>> = None;
    let mut scrape_peak = (0, 0);
    let scrape = |ev: &mut Evaluator, step: i64, peak_seen: &mut (isize, isize)| {
        let at = T0 + step * 15_000;
        for k in 0..TARGETS {
            let page = fleet.page(k, 3_600_000 + (step * 15_000) as u64);
            let before = live();
            reset_peak();
            let matched = match match_page(
                ev.plan(),
                &labels[k as usize],
                page.as_bytes(),
                Format::Text,
                u64::MAX,
            ) {
                Ok(m) => m,
                Err(e) => panic!("page {k}: {e}"),
            };
            ev.apply(Observation::Scrape {
                generation: ev.generation(),
                target: names[k as usize].clone(),
                at: Timestamp(at),
                duration_secs: 0.01,
                bytes: page.len() as u64,
                result: Ok(matched),
            });
            let p = minus(peak(), before);
            *peak_seen = (peak_seen.0.max(p.0), peak_seen.1.max(p.1));
        }
        at
    };
    let steps = minutes * 4;
    for step in 0..steps {
        let at = scrape(&mut ev, step, &mut scrape_peak);
        if step % 2 == 1 {
            // As the agent: the newest snapshot stays published while the next one is built.
            let s = Arc::new(ev.evaluate(Timestamp(at)));
            drop(snap.replace(s));
        }
    }
    // Steady state: one more evaluation, measured.
    let at = scrape(&mut ev, steps, &mut scrape_peak);
    let before = live();
    reset_peak();
    let s = Arc::new(ev.evaluate(Timestamp(at)));
    let eval_peak = minus(peak(), before);
    drop(snap.replace(s));
    let with_snapshot = live();
    let Some(snap) = snap else {
        panic!("no evaluation ran");
    };
    let counts_grown = count_bytes(ev.engine()) - counts_fresh;
    out.push((
        "count buckets filled (columns allocated)",
        (counts_grown, counts_grown),
    ));
    let snapshot_bytes = {
        let copy = Arc::new((*snap).clone());
        let b = minus(live(), with_snapshot);
        drop(copy);
        b
    };
    let grown = minus(
        minus(with_snapshot, before_ev),
        (fresh.0 + snapshot_bytes.0, fresh.1 + snapshot_bytes.1),
    );
    // Everything else the run added to the evaluator: the counter trackers of each SLO's series.
    out.push((
        "counter trackers (last value per series)",
        minus(grown, (counts_grown, counts_grown)),
    ));
    out.push(("one snapshot (SloReports, events by id)", snapshot_bytes));
    out.push(("evaluate: peak, above the held snapshot", eval_peak));
    out.push(("scrape of one target: peak", scrape_peak));

    // The agent's checkpoint: streamed to the file, no image held (src/storage.rs `save`).
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("a temporary directory: {e}"),
    };
    let before = live();
    reset_peak();
    if let Err(e) = ev.save_checkpoint(&dir.path().join("state.bwcp")) {
        panic!("checkpoint: {e}");
    }
    out.push((STREAMED, minus(peak(), before)));
    drop(dir);

    // The image the agent built whole before (kept for comparison: the alerting snapshot is
    // still written this way).
    let before = live();
    reset_peak();
    let image = match ev.encode_checkpoint() {
        Ok(b) => b,
        Err(e) => panic!("checkpoint: {e}"),
    };
    out.push(("checkpoint encode: peak", minus(peak(), before)));
    out.push(("checkpoint image (bytes)", (image.len() as isize, 0)));
    drop(image);

    let before = live();
    reset_peak();
    let page = render(&snap, None, PageOptions::default(), Format::OpenMetrics);
    out.push(("/metrics render (compact): peak", minus(peak(), before)));
    out.push(("/metrics page (bytes)", (page.len() as isize, 0)));
    drop(page);

    let before = live();
    let mut alerter = Alerter::new(&alerter_rules, "http://127.0.0.1:1");
    let _ = alerter.evaluate(&snap, snap.at);
    out.push(("alerting: Alerter after one step", minus(live(), before)));
    drop(alerter);

    // What handing free memory back costs (the agent does it once a checkpoint: src/memory.rs).
    let started = std::time::Instant::now();
    burnwatch::memory::release_free_memory();
    println!(
        "{n} SLOs: malloc_trim with {:.0} MB live took {:.1} ms",
        live().0 as f64 / 1e6,
        started.elapsed().as_secs_f64() * 1e3
    );
    out
}

fn main() {
    // The agent's allocator settings (its `main` sets them before any thread starts).
    burnwatch::memory::tune();
    let measuring = std::env::args().any(|a| a == "--bench");
    let (counts, minutes) = if measuring {
        (vec![5_000u32, 20_000], 10)
    } else {
        (vec![200u32, 400], 2)
    };
    let mut rows: Vec<Row> = Vec::new();
    for &n in &counts {
        for (i, (what, b)) in measure(n, minutes).into_iter().enumerate() {
            if rows.len() <= i {
                rows.push(Row {
                    what,
                    bytes: Vec::new(),
                });
            }
            rows[i].bytes.push(b);
        }
    }
    let (n0, n1) = (counts[0] as f64, counts[counts.len() - 1] as f64);
    println!(
        "| part | {} SLOs, MB | {} SLOs, MB | bytes per added SLO (glibc chunks) |",
        counts[0],
        counts[counts.len() - 1]
    );
    println!("|---|---|---|---|");
    for r in &rows {
        let (a, b) = (r.bytes[0], r.bytes[r.bytes.len() - 1]);
        let slope = |x: isize, y: isize| (y - x) as f64 / (n1 - n0);
        println!(
            "| {} | {:.1} | {:.1} | {:.0} ({:.0}) |",
            r.what,
            a.0 as f64 / 1e6,
            b.0 as f64 / 1e6,
            slope(a.0, b.0),
            slope(a.1, b.1)
        );
        assert!(b.0 >= 0, "{}: negative bytes", r.what);
        if r.what == STREAMED {
            // O(1): the write buffer and the file handle, whatever the SLO count (a few bytes
            // of slack per SLO for the allocator's bookkeeping of the count).
            assert!(
                slope(a.0, b.0) < 16.0 && b.0 < 256 * 1024,
                "a streamed checkpoint grows with the SLOs: {a:?} -> {b:?}"
            );
        }
    }
}
