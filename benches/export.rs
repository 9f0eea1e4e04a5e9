//! Encoding the `/metrics` page for 10,000 SLOs (target: under 200 ms). The snapshot holds every
//! SLO's reports with traffic in every window, as the agent publishes it; encoding runs at each
//! Prometheus scrape.

use std::hint::black_box;

use burnwatch::export::prometheus::encode;
use criterion::{Criterion, criterion_group, criterion_main};

mod common;
use common::{SLOS, snapshot};

fn bench_encode(c: &mut Criterion) {
    let snap = snapshot();
    let page = match encode(&snap) {
        Ok(p) => p,
        Err(e) => panic!("encoding failed: {e}"),
    };
    // The checksum tells whether a speed-up changed a byte of the page.
    println!(
        "metrics page for {SLOS} SLOs: {} lines, {:.1} MB, crc32 {:08x}",
        page.lines().count(),
        page.len() as f64 / 1e6,
        crc32fast::hash(page.as_bytes())
    );
    let mut g = c.benchmark_group("metrics");
    g.sample_size(10);
    g.bench_function("encode/10k_slos", |b| {
        b.iter(|| black_box(encode(&snap)).is_ok())
    });
    g.finish();
}

criterion_group!(benches, bench_encode);
criterion_main!(benches);
