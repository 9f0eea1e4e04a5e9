//! Engine benchmarks: ingest cost per event and the time to evaluate 10,000 SLOs holding 30 days
//! of history. Targets (issue 2): ingest <= 50 ns/event; 10,000 SLOs evaluated in < 50 ms on one
//! core; < 64 KiB of state per occurrences SLO with a 30d window (printed before the timings).
//!
//! Run: `cargo bench --bench engine` (add `-- --warm-up-time 1 --measurement-time 3` for a quick
//! look).

use std::hint::black_box;

use burnwatch::rules::load_str;
use burnwatch::slo::{Engine, SloIdx};
use burnwatch::time::{Dur, Timestamp};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

/// 2026-11-01T00:00:00Z.
const T0: i64 = 1_793_491_200_000;
const SLOS: u32 = 10_000;

/// A rules file with `n` occurrences SLOs (30d window, default tiers) and, when `latency`, the
/// same number of latency-threshold SLOs fed by a probe.
fn rules(n: u32, latency: bool) -> String {
    let mut y = String::from("version: burnwatch/v1\nservice: bench\n");
    if latency {
        y.push_str(
            "probes:\n  - name: p\n    http: {url: 'http://127.0.0.1:1/'}\n    interval: 30s\n    timeout: 5s\n",
        );
    }
    y.push_str("slos:\n");
    for i in 0..n {
        if latency {
            y.push_str(&format!(
                "  - name: s{i}\n    objective: 99.9\n    indicator:\n      latency_threshold: {{threshold: 300ms, probe: p}}\n"
            ));
        } else {
            y.push_str(&format!(
                "  - name: s{i}\n    objective: 99.9\n    indicator:\n      ratio:\n        bad: 'errors_total{{slo=\"{i}\"}}'\n        total: 'requests_total{{slo=\"{i}\"}}'\n"
            ));
        }
    }
    y
}

fn engine(n: u32, latency: bool) -> Engine {
    let set = match load_str("bench.yaml", &rules(n, latency)) {
        Ok(set) => set,
        Err(diags) => panic!("bench rules do not check: {diags:?}"),
    };
    Engine::from_rules(&set)
}

/// A cheap deterministic index sequence (xorshift), so events hit SLOs in no cache-friendly order.
fn indices(count: usize, n: u32) -> Vec<SloIdx> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..count)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            SloIdx((x % u64::from(n)) as u32)
        })
        .collect()
}

fn ingest(c: &mut Criterion) {
    const EVENTS: usize = 100_000;
    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Elements(EVENTS as u64));
    g.sample_size(20);

    let idx = indices(EVENTS, SLOS);
    // Timestamps advance 1 ms per event, so every minute crosses 60,000 events: realistic
    // rotation work is included.
    let mut e = engine(SLOS, false);
    let mut t = T0;
    g.bench_function("record/10k_slos_random", |b| {
        b.iter(|| {
            for &i in &idx {
                t += 1;
                let r = e.record(i, Timestamp(t), t % 97 != 0);
                black_box(r).ok();
            }
        })
    });
    let mut t = T0;
    let mut e = engine(SLOS, false);
    g.bench_function("record_counts/10k_slos_random", |b| {
        b.iter(|| {
            for &i in &idx {
                t += 1;
                black_box(e.record_counts(i, Timestamp(t), 9, 10)).ok();
            }
        })
    });
    let mut e1 = engine(1, false);
    let mut t = T0;
    g.bench_function("record/1_slo", |b| {
        b.iter(|| {
            for _ in 0..EVENTS {
                t += 1;
                black_box(e1.record(SloIdx(0), Timestamp(t), t % 97 != 0)).ok();
            }
        })
    });
    let mut el = engine(1_000, true);
    let lidx = indices(EVENTS, 1_000);
    let mut t = T0;
    g.bench_function("record_latency/1k_slos_random", |b| {
        b.iter(|| {
            for &i in &lidx {
                t += 1;
                let secs = 0.02 + (t % 1000) as f64 * 0.001;
                black_box(el.record_latency(i, Timestamp(t), secs)).ok();
            }
        })
    });
    g.finish();
}

/// 10,000 SLOs with 30 days of history: one count batch per SLO per hour for 30 days and one per
/// minute for the last 6 hours, so every tier and every window holds data.
fn filled_engine() -> (Engine, Timestamp) {
    let mut e = engine(SLOS, false);
    let start = T0;
    let hours = 30 * 24;
    for h in 0..hours {
        let ts = Timestamp(start + h * 3_600_000);
        for i in 0..SLOS {
            e.record_counts(SloIdx(i), ts, 9_990, 10_000)
                .expect("in range");
        }
    }
    let end = start + hours * 3_600_000;
    for m in 0..360 {
        let ts = Timestamp(end + m * 60_000);
        for i in 0..SLOS {
            let bad = u64::from(i % 3 == 0) * 50;
            e.record_counts(SloIdx(i), ts, 1_000 - bad, 1_000)
                .expect("in range");
        }
    }
    (e, Timestamp(end + 360 * 60_000))
}

fn evaluate(c: &mut Criterion) {
    let (mut e, now) = filled_engine();
    let bytes = e.count_bytes(SloIdx(0)).unwrap_or(0);
    eprintln!(
        "state: {} B of count buckets and window sums per 30d occurrences SLO ({:.1} KiB; target < 64 KiB)",
        bytes,
        bytes as f64 / 1024.0
    );
    let mut g = c.benchmark_group("evaluate");
    g.sample_size(10);
    g.throughput(Throughput::Elements(u64::from(SLOS)));
    let step = Dur::from_secs(30);
    let mut at = now;
    g.bench_function("10k_slos_30d", |b| {
        b.iter_batched(
            || {
                at = at.add(step);
                at
            },
            |t| black_box(e.evaluate(t)),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, ingest, evaluate);
criterion_main!(benches);
