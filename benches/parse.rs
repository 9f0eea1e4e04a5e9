//! Exposition parser throughput on a realistic ~10 MB body generated here: many families of
//! counters, gauges, histograms (12 buckets) and summaries, 3–6 labels per sample, some label
//! values with escapes, integer and fractional values. Both formats are measured on the same
//! content (OpenMetrics adds `_total`, float-second timestamps on some lines and `# EOF`).
//!
//! Criterion reports bytes/s (Throughput::Bytes); before that, samples/s is printed once.
//! Run: `cargo bench --bench parse -- --warm-up-time 1 --measurement-time 3`.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Instant;

use burnwatch::exposition::{Format, parse};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Target body size in bytes.
const TARGET_BYTES: usize = 10 * 1024 * 1024;

/// splitmix64: deterministic, no `rand` dependency.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];
const CODES: [&str; 6] = ["200", "201", "204", "404", "500", "503"];
const PATHS: [&str; 6] = [
    "/api/v1/users",
    "/api/v1/orders/{id}",
    "/healthz",
    "/search?q=a,b=c",
    "/files/\\\"quoted\\\"",
    "/multi\\nline",
];
const LE: [&str; 12] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
];

fn generate(format: Format) -> Vec<u8> {
    let om = format == Format::OpenMetrics;
    let mut rng = SplitMix64(7);
    let mut out = String::with_capacity(TARGET_BYTES + 64 * 1024);
    let mut family = 0u32;
    while out.len() < TARGET_BYTES {
        family += 1;
        let service = format!("svc{}", rng.below(50));
        match family % 4 {
            0 => {
                let name = format!("app_http_requests_{family}");
                let sample = if om {
                    format!("{name}_total")
                } else {
                    name.clone()
                };
                let _ = writeln!(out, "# HELP {name} Requests handled, by method and code.");
                let _ = writeln!(out, "# TYPE {name} counter");
                for m in METHODS {
                    for c in CODES {
                        let path = PATHS[rng.below(PATHS.len() as u64) as usize];
                        let v = rng.below(10_000_000);
                        let _ = write!(
                            out,
                            "{sample}{{service=\"{service}\",method=\"{m}\",code=\"{c}\",path=\"{path}\",instance_zone=\"eu-west-1a\"}} {v}"
                        );
                        if om && rng.below(8) == 0 {
                            let _ = write!(out, " 1700000000.{:03}", rng.below(1000));
                        }
                        out.push('\n');
                    }
                }
            }
            1 => {
                let name = format!("app_request_duration_seconds_{family}");
                let _ = writeln!(out, "# HELP {name} Request latency.");
                let _ = writeln!(out, "# TYPE {name} histogram");
                for m in METHODS {
                    let mut cumulative = 0u64;
                    for le in LE {
                        cumulative += rng.below(5000);
                        let _ = writeln!(
                            out,
                            "{name}_bucket{{service=\"{service}\",method=\"{m}\",le=\"{le}\"}} {cumulative}"
                        );
                    }
                    let sum = cumulative as f64 * 0.123_456_7;
                    let _ = writeln!(
                        out,
                        "{name}_sum{{service=\"{service}\",method=\"{m}\"}} {sum}"
                    );
                    let _ = writeln!(
                        out,
                        "{name}_count{{service=\"{service}\",method=\"{m}\"}} {cumulative}"
                    );
                }
            }
            2 => {
                let name = format!("app_rpc_latency_seconds_{family}");
                let _ = writeln!(out, "# TYPE {name} summary");
                for q in ["0.5", "0.9", "0.99"] {
                    let v = rng.below(1_000_000) as f64 / 1e6;
                    let _ = writeln!(out, "{name}{{service=\"{service}\",quantile=\"{q}\"}} {v}");
                }
                let _ = writeln!(out, "{name}_sum{{service=\"{service}\"}} 1.5e+03");
                let _ = writeln!(out, "{name}_count{{service=\"{service}\"}} 2693");
            }
            _ => {
                let name = format!("app_queue_depth_{family}");
                let _ = writeln!(out, "# TYPE {name} gauge");
                for q in 0..8 {
                    let v = if rng.below(50) == 0 {
                        "NaN".to_owned()
                    } else {
                        format!("{}", rng.below(100_000) as f64 / 100.0)
                    };
                    let _ = writeln!(
                        out,
                        "{name}{{service=\"{service}\",queue=\"q{q}\",host=\"node-{}.example.internal\"}} {v}",
                        rng.below(200)
                    );
                }
            }
        }
    }
    if om {
        out.push_str("# EOF\n");
    }
    out.into_bytes()
}

fn bench_parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    for (label, format) in [("text", Format::Text), ("openmetrics", Format::OpenMetrics)] {
        let body = generate(format);
        let summary = parse(&body, format, |_| {}).expect("generated body parses");
        // One untimed-by-criterion pass to report samples/s alongside criterion's bytes/s.
        let start = Instant::now();
        let runs = 5;
        for _ in 0..runs {
            black_box(parse(black_box(&body), format, |s| {
                black_box(s.value);
            }))
            .expect("parses");
        }
        let secs = start.elapsed().as_secs_f64() / f64::from(runs);
        println!(
            "parse/{label}: {:.1} MB, {} samples, {} families; {:.0} MB/s, {:.1} M samples/s",
            body.len() as f64 / 1e6,
            summary.samples,
            summary.families,
            body.len() as f64 / secs / 1e6,
            summary.samples as f64 / secs / 1e6
        );
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.sample_size(10);
        group.bench_function(label, |b| {
            b.iter(|| {
                parse(black_box(&body), format, |s| {
                    black_box(s.value);
                })
                .expect("parses")
            })
        });
    }
    group.finish();
}

/// Worst cases for parts of the parser (many labels per line: the duplicate-name check;
/// escape-heavy values: unescaping; newline floods; exemplars; garbage), each at 1x and 16x the
/// size: bytes/s must stay flat (linear time), which criterion's throughput shows directly.
fn bench_pathological(c: &mut Criterion) {
    let units: [(&str, &str, Format); 5] = [
        (
            "labels",
            "m{a=\"1\",b=\"2\",c=\"3\",d=\"4\",e=\"5\",f=\"6\",g=\"7\",h=\"8\"} 1\n",
            Format::Text,
        ),
        (
            "escapes",
            "m{a=\"\\\\\\\"\\n\\\\\\\"\\n\"} 1\n",
            Format::Text,
        ),
        ("newlines", "\n", Format::Text),
        (
            "exemplars",
            "m_total{a=\"b\"} 1 # {t=\"x\"} 1 1\n",
            Format::OpenMetrics,
        ),
        ("garbage", "{{{{{{{{{{{{{{{{", Format::Text),
    ];
    let mut group = c.benchmark_group("parse_pathological");
    for (name, unit, format) in units {
        for times in [4096usize, 4096 * 16] {
            let body = unit.repeat(times).into_bytes();
            group.throughput(Throughput::Bytes(body.len() as u64));
            group.bench_function(format!("{name}/{}k_units", times / 1024), |b| {
                b.iter(|| std::hint::black_box(parse(&body, format, |_| {})).is_ok())
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_parse, bench_pathological);
criterion_main!(benches);
