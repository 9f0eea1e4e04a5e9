//! Percentile sketches for latency reporting: `sketches-ddsketch` 0.4.2 (what burnwatch uses)
//! against `tdigest` 1.0.1 (a dev-dependency baseline only), on deterministic data.
//!
//! Before any timing it prints, once, a table of accuracy against the exact sorted values
//! (relative error of p50/p90/p95/p99 at the project's nearest-rank convention, and the error
//! of the fraction under a threshold, also relative to the error budget it would eat), then what
//! each sketch does with NaN and infinity, and what the input guard does. Then criterion times
//! ingest of 100k values per iteration (divide the time by 100,000 for ns/value).
//!
//! Run: `cargo bench --bench sketch` (about a minute; add `-- --measurement-time 2` to shorten).
//! The table alone: `cargo bench --bench sketch -- --list`.

use std::hint::black_box;
use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

use burnwatch::rules::model::Percentile;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sketches_ddsketch::{Config, DDSketch};
use tdigest::TDigest;

/// Values per stream and per timed iteration.
const N: usize = 100_000;
/// Seed of every stream, so each run measures the same values.
const SEED: u64 = 1;
/// tdigest compression used by the reference measurements.
const TDIGEST_SIZE: usize = 100;
/// Largest latency the guard accepts (1 h); larger values are garbage (e.g. a timestamp).
const MAX_SECS: f64 = 3600.0;

/// splitmix64: a tiny, well-mixed deterministic generator (no `rand` dependency).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1): never 0, so `ln` below is finite.
    fn open01(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal by Box-Muller (one of the pair; simplicity over speed).
    fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.open01(), self.open01());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Lognormal with the given median (seconds) and sigma of the log.
    fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * self.normal()).exp()
    }
}

/// One test stream and the threshold whose good fraction is checked.
struct Stream {
    name: &'static str,
    values: Vec<f64>,
    threshold: f64,
}

/// 90% lognormal(median 20 ms, sigma 0.25), 10% lognormal(median 2 s, sigma 0.25), mixed per
/// value: p90 sits on the gap between the modes, where an interpolating sketch invents values.
fn bimodal() -> Stream {
    let mut g = SplitMix64(SEED);
    let values = (0..N)
        .map(|_| {
            if g.open01() < 0.9 {
                g.lognormal(0.020, 0.25)
            } else {
                g.lognormal(2.0, 0.25)
            }
        })
        .collect();
    Stream {
        name: "bimodal",
        values,
        threshold: 0.1,
    }
}

/// lognormal(median 50 ms, sigma 0.8): a long single tail, about 0.2% over 500 ms.
fn lognormal() -> Stream {
    let mut g = SplitMix64(SEED);
    let values = (0..N).map(|_| g.lognormal(0.050, 0.8)).collect();
    Stream {
        name: "lognormal",
        values,
        threshold: 0.5,
    }
}

/// Why the guard turned a value away.
#[derive(Debug, PartialEq)]
enum Rejected {
    NotFinite,
    NotPositive,
    TooLarge,
}

/// The input guard burnwatch puts in front of DDSketch: `+inf` would panic inside the sketch,
/// NaN would be counted as 0, and one absurd value would collapse its low bins.
fn guarded_add(sketch: &mut DDSketch, secs: f64) -> Result<(), Rejected> {
    if !secs.is_finite() {
        return Err(Rejected::NotFinite);
    }
    if secs <= 0.0 {
        return Err(Rejected::NotPositive);
    }
    if secs > MAX_SECS {
        return Err(Rejected::TooLarge);
    }
    sketch.add(secs);
    Ok(())
}

fn ddsketch_of(values: &[f64]) -> DDSketch {
    let mut s = DDSketch::new(Config::defaults());
    for &v in values {
        s.add(v);
    }
    s
}

fn tdigest_of(values: &[f64]) -> TDigest {
    let mut d = TDigest::new_with_size(TDIGEST_SIZE);
    d.extend_values(values.iter().copied());
    // Without this, queries answer from stale centroids in release builds.
    d.flush();
    d
}

/// The exact nearest-rank value (the convention burnwatch's `Percentile::rank` defines).
fn exact_quantile(sorted: &[f64], p: Percentile) -> f64 {
    let rank = p.rank(sorted.len() as u64).max(1) as usize;
    sorted[rank - 1]
}

/// DDSketch has no rank API: find the quantile whose value crosses `t` by bisection.
fn ddsketch_fraction_under(s: &DDSketch, t: f64) -> f64 {
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for _ in 0..40 {
        let mid = (lo + hi) / 2.0;
        match s.quantile(mid) {
            Ok(Some(v)) if v < t => lo = mid,
            _ => hi = mid,
        }
    }
    lo
}

fn rel_err(est: f64, exact: f64) -> f64 {
    (est - exact).abs() / exact
}

fn pct(x: f64) -> String {
    if x.is_finite() {
        format!("{:.3}%", 100.0 * x)
    } else {
        format!("{x}")
    }
}

/// Prints the accuracy table for one stream.
fn print_accuracy(stream: &Stream) {
    let mut sorted = stream.values.clone();
    sorted.sort_unstable_by(f64::total_cmp);
    let ps: Vec<Percentile> = [50.0, 90.0, 95.0, 99.0]
        .iter()
        .map(|&p| Percentile::from_percent(p).expect("a valid percentile"))
        .collect();
    let exact: Vec<f64> = ps.iter().map(|&p| exact_quantile(&sorted, p)).collect();
    let t = stream.threshold;
    let good = sorted.partition_point(|&v| v < t) as f64 / sorted.len() as f64;
    let bad = 1.0 - good;

    eprintln!(
        "{:<10} {:<9} {:>9} {:>9} {:>9} {:>9}   frac<{t}s  abs err    err/bad",
        stream.name, "exact", "p50", "p90", "p95", "p99"
    );
    eprintln!(
        "{:<10} {:<9} {:>8.4}s {:>8.4}s {:>8.4}s {:>8.4}s   {:>9.5}  {:>8}  {:>9}",
        "", "values", exact[0], exact[1], exact[2], exact[3], good, "-", "-"
    );

    let dd = ddsketch_of(&stream.values);
    let td = tdigest_of(&stream.values);
    let rows: [(&str, Vec<f64>, f64); 2] = [
        (
            "ddsketch",
            ps.iter()
                .map(|p| dd.quantile(p.quantile()).ok().flatten().unwrap_or(f64::NAN))
                .collect(),
            ddsketch_fraction_under(&dd, t),
        ),
        (
            "tdigest",
            ps.iter()
                .map(|p| td.estimate_quantile(p.quantile()).unwrap_or(f64::NAN))
                .collect(),
            td.estimate_rank(t).unwrap_or(f64::NAN),
        ),
    ];
    for (name, est, frac) in rows {
        let errs: Vec<String> = est
            .iter()
            .zip(&exact)
            .map(|(&e, &x)| pct(rel_err(e, x)))
            .collect();
        let abs = (frac - good).abs();
        eprintln!(
            "{:<10} {:<9} {:>9} {:>9} {:>9} {:>9}   {:>9.5}  {:>8}  {:>9}",
            "",
            name,
            errs[0],
            errs[1],
            errs[2],
            errs[3],
            frac,
            pct(abs),
            pct(abs / bad)
        );
    }
}

/// Runs `f`, turning a panic into its message, with the default panic printout silenced.
fn outcome<T: std::fmt::Debug>(f: impl FnOnce() -> T) -> String {
    let hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let r = panic::catch_unwind(AssertUnwindSafe(f));
    panic::set_hook(hook);
    match r {
        Ok(v) => format!("returns {v:?}"),
        Err(e) => {
            let msg = e
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| e.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".to_owned());
            format!("PANICS: {msg}")
        }
    }
}

/// Prints what each sketch does with bad input, and what the guard does.
fn print_bad_input() {
    let base: Vec<f64> = lognormal().values[..10_000].to_vec();
    let build = if cfg!(debug_assertions) {
        "debug build: the crates' debug_asserts fire first"
    } else {
        "release build"
    };
    eprintln!("\nbad input (10k lognormal values plus one bad value; {build}):");
    let with = |bad: f64| {
        let mut v = base.clone();
        v.insert(5_000, bad);
        v
    };
    eprintln!(
        "  ddsketch add(NaN), then count/sum/p50: {}",
        outcome(|| {
            let s = ddsketch_of(&with(f64::NAN));
            (s.count(), s.sum(), s.quantile(0.5).ok().flatten())
        })
    );
    eprintln!(
        "  ddsketch add(+inf):                    {}",
        outcome(|| ddsketch_of(&with(f64::INFINITY)).count())
    );
    eprintln!(
        "  tdigest merge_unsorted with NaN, p50:  {}",
        outcome(|| TDigest::new_with_size(TDIGEST_SIZE)
            .merge_unsorted(with(f64::NAN))
            .estimate_quantile(0.5))
    );
    eprintln!(
        "  tdigest push NaN + flush, p99.99:      {}",
        outcome(|| tdigest_of(&with(f64::NAN)).estimate_quantile(0.9999))
    );
    let mut guarded = ddsketch_of(&base);
    let results: Vec<(f64, Result<(), Rejected>)> =
        [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.01, 0.0, 1e9]
            .into_iter()
            .map(|v| (v, guarded_add(&mut guarded, v)))
            .collect();
    eprintln!("  guarded_add before ddsketch:          {results:?}");
    eprintln!(
        "  ddsketch after the guard: count {} (unchanged: {}), p50 {:?}",
        guarded.count(),
        guarded.count() == base.len(),
        guarded.quantile(0.5).ok().flatten()
    );
}

fn sketches(c: &mut Criterion) {
    let streams = [bimodal(), lognormal()];
    eprintln!(
        "\naccuracy on {N} values (seed {SEED}); relative error against the exact nearest-rank \
         value; frac = fraction under the threshold, err/bad = its error over the exact bad fraction"
    );
    for s in &streams {
        print_accuracy(s);
    }
    print_bad_input();
    eprintln!();

    let mut group = c.benchmark_group("ingest_100k");
    group.throughput(Throughput::Elements(N as u64));
    for s in &streams {
        let values = &s.values[..];
        group.bench_with_input(BenchmarkId::new("exact_count", s.name), values, |b, v| {
            b.iter(|| {
                let t = black_box(s.threshold);
                v.iter().filter(|&&x| x < t).count()
            })
        });
        group.bench_with_input(BenchmarkId::new("ddsketch_add", s.name), values, |b, v| {
            b.iter(|| ddsketch_of(black_box(v)))
        });
        group.bench_with_input(
            BenchmarkId::new("ddsketch_guarded_add", s.name),
            values,
            |b, v| {
                b.iter(|| {
                    let mut sk = DDSketch::new(Config::defaults());
                    let mut rejected = 0u32;
                    for &x in black_box(v) {
                        rejected += u32::from(guarded_add(&mut sk, x).is_err());
                    }
                    (sk, rejected)
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("tdigest_push_flush", s.name),
            values,
            |b, v| b.iter(|| tdigest_of(black_box(v))),
        );
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = sketches
}
criterion_main!(benches);
