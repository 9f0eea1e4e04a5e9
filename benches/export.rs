//! Encoding the `/metrics` page: 10,000 SLOs in the compact default series set and in the full
//! set, and 100,000 SLOs in the compact set (target: under 1 s), and gzip-compressing that page
//! as it is served to Prometheus. The snapshots hold every SLO's reports with traffic in every
//! window, as the agent publishes them; encoding (and compressing) runs at each scrape. Sizes
//! (bytes per SLO, page sizes, compressed sizes) are printed first.

use std::hint::black_box;

use burnwatch::config::SeriesSet;
use burnwatch::export::prometheus::{PageOptions, encode, encode_with, gzip};
use criterion::{Criterion, criterion_group, criterion_main};

mod common;
use common::{SLOS, scaled_snapshot, snapshot};

/// SLOs of the large page.
const LARGE: u32 = 100_000;

/// Whether this is a measuring run (`cargo bench` passes `--bench`); `cargo test --all-targets`
/// runs each benchmark once to check it works, on a page small enough for a debug build.
fn measuring() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn page(snap: &std::sync::Arc<burnwatch::view::AgentSnapshot>, series: SeriesSet) -> String {
    let opts = PageOptions {
        series,
        ..PageOptions::default()
    };
    match encode_with(snap, opts) {
        Ok(p) => p,
        Err(e) => panic!("encoding failed: {e}"),
    }
}

/// CPU time this thread has run, from the kernel's scheduler statistics (Linux): on a shared
/// machine wall time also counts the time other processes held the cores.
fn cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

/// Mean CPU seconds of `runs` calls of `f`, when the kernel tells.
fn cpu_secs<T>(runs: u32, mut f: impl FnMut() -> T) -> Option<f64> {
    let start = cpu_ns()?;
    for _ in 0..runs {
        black_box(f());
    }
    Some((cpu_ns()? - start) as f64 / 1e9 / f64::from(runs))
}

fn compressed(page: &str) -> Vec<u8> {
    match gzip(page.as_bytes()) {
        Ok(z) => z,
        Err(e) => panic!("gzip failed: {e}"),
    }
}

fn bench_encode(c: &mut Criterion) {
    let snap = snapshot();
    let empty = {
        let mut e = (*snap).clone();
        e.slos.clear();
        std::sync::Arc::new(e)
    };
    for series in [SeriesSet::Compact, SeriesSet::Full] {
        let p = page(&snap, series);
        let base = page(&empty, series).len();
        // The checksum tells whether a speed-up changed a byte of the page.
        println!(
            "{series:?} page for {SLOS} SLOs: {} lines, {:.1} MB ({} bytes per SLO), gzip {:.2} MB, crc32 {:08x}; CPU per page {:.3?} s",
            p.lines().count(),
            p.len() as f64 / 1e6,
            (p.len() - base) / SLOS as usize,
            compressed(&p).len() as f64 / 1e6,
            crc32fast::hash(p.as_bytes()),
            cpu_secs(if measuring() { 5 } else { 1 }, || page(&snap, series)),
        );
    }
    let mut g = c.benchmark_group("metrics");
    g.sample_size(10);
    g.bench_function("encode/10k_slos", |b| {
        b.iter(|| black_box(encode(&snap)).is_ok())
    });
    g.bench_function("encode_full/10k_slos", |b| {
        b.iter(|| black_box(page(&snap, SeriesSet::Full)).len())
    });
    drop(snap);

    let (n, runs) = if measuring() { (LARGE, 3) } else { (1_000, 1) };
    let large = scaled_snapshot(n);
    let p = page(&large, SeriesSet::Compact);
    let z = compressed(&p);
    println!(
        "Compact page for {n} SLOs: {:.1} MB, gzip {:.1} MB; CPU per page: encode {:.3?} s, gzip {:.3?} s",
        p.len() as f64 / 1e6,
        z.len() as f64 / 1e6,
        cpu_secs(runs, || encode(&large)),
        cpu_secs(runs, || compressed(&p)),
    );
    g.bench_function("encode/100k_slos", |b| {
        b.iter(|| black_box(encode(&large)).is_ok())
    });
    g.bench_function("gzip/100k_slos", |b| {
        b.iter(|| black_box(compressed(&p)).len())
    });
    g.finish();
}

criterion_group!(benches, bench_encode);
criterion_main!(benches);
