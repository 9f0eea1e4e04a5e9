//! Scrape matching at scale (issue 11): one page of N series matched against N ratio SLOs, the
//! shape of the scale workload (one route series per SLO; each SLO reads
//! `http_requests_total{job="bench",route="/r<i>"}` as total and the same with `code=~"5.."` as
//! bad events). Target: N = 100,000 in < 100 ms on one core. N = 10,000 is measured too, and the
//! parse alone of the same pages, so the share of the parser is visible.
//!
//! Each is measured twice: `matching/...` in wall time, as every bench here, and
//! `matching_cpu/...` in the on-CPU time of the measuring thread (Linux's
//! `/proc/thread-self/schedstat`, updated at every scheduler tick, so a few ms of resolution
//! against samples of 100 ms and more). On a shared machine whose cores are oversubscribed the
//! wall time also counts the time the thread waited for a core; the CPU time is the work.
//!
//! Run: `cargo bench --bench matching -- --warm-up-time 1 --measurement-time 3`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hint::black_box;
use std::path::PathBuf;

use burnwatch::exposition::{Format, parse};
use burnwatch::rules::check_sources;
use burnwatch::rules::model::RuleSet;
use burnwatch::scrape::{ScrapePlan, TargetLabels, match_page};
use burnwatch::slo::SloIdx;
use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// SLOs per rules file (a file is bounded in nodes, so large sets span files, as in practice).
const PER_FILE: usize = 1_000;

/// `n` ratio SLOs over one scrape target, in files of [`PER_FILE`] SLOs (one service each).
fn rule_set(n: usize) -> RuleSet {
    let mut sources = Vec::new();
    for (f, start) in (0..n).step_by(PER_FILE).enumerate() {
        let mut y = format!("version: burnwatch/v1\nservice: svc{f}\n");
        if f == 0 {
            y.push_str("scrape:\n  - name: bench\n    url: http://127.0.0.1:9/metrics\n");
        }
        y.push_str("slos:\n");
        for i in start..(start + PER_FILE).min(n) {
            let _ = write!(
                y,
                "  - name: r{i}\n    objective: 99.9\n    indicator:\n      ratio:\n        \
                 bad: 'http_requests_total{{job=\"bench\",route=\"/r{i}\",code=~\"5..\"}}'\n        \
                 total: 'http_requests_total{{job=\"bench\",route=\"/r{i}\"}}'\n"
            );
        }
        sources.push((PathBuf::from(format!("svc{f}.yaml")), y.into_bytes()));
    }
    let report = check_sources(&sources);
    match report.rules {
        Some(rules) => rules,
        None => panic!("bench rules do not check: {:?}", report.diagnostics),
    }
}

/// One series per route; every tenth route answers 500. Series come sorted by label values, as
/// the Go client writes them (`/r10` before `/r2`), not in the order of the rules.
fn page(n: usize) -> Vec<u8> {
    let mut out = String::from("# TYPE http_requests_total counter\n");
    let mut routes: Vec<usize> = (0..n).collect();
    routes.sort_by_key(|i| format!("/r{i}"));
    for i in routes {
        let code = if i % 10 == 0 { 500 } else { 200 };
        let _ = writeln!(
            out,
            "http_requests_total{{route=\"/r{i}\",code=\"{code}\",method=\"GET\"}} {}",
            i * 7 + 3
        );
    }
    out.into_bytes()
}

/// The measuring thread's time on a CPU, in ns, if the kernel tells.
fn thread_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

/// Criterion measurement: the on-CPU time of the measuring thread.
struct ThreadCpu;

static WALL: WallTime = WallTime;

impl Measurement for ThreadCpu {
    type Intermediate = u64;
    type Value = Duration;
    fn start(&self) -> u64 {
        thread_cpu_ns().unwrap_or(0)
    }
    fn end(&self, start: u64) -> Duration {
        Duration::from_nanos(thread_cpu_ns().unwrap_or(0).saturating_sub(start))
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        WALL.formatter()
    }
}

fn bench_wall(c: &mut Criterion) {
    bench_matching(c, "matching");
}

fn bench_cpu(c: &mut Criterion<ThreadCpu>) {
    if thread_cpu_ns().is_none() {
        println!("matching_cpu: skipped, /proc/thread-self/schedstat is not readable here");
        return;
    }
    bench_matching(c, "matching_cpu");
}

fn bench_matching<M: Measurement>(c: &mut Criterion<M>, name: &str) {
    let mut group = c.benchmark_group(name);
    group.sample_size(10);
    for n in [10_000usize, 100_000] {
        let rules = rule_set(n);
        let ids: HashMap<_, _> = rules
            .services
            .iter()
            .flat_map(|s| &s.slos)
            .enumerate()
            .map(|(i, s)| (s.id.clone(), SloIdx(i as u32)))
            .collect();
        let plan = ScrapePlan::new(&rules, |id| ids.get(id).copied());
        let target = TargetLabels::for_target(&rules.scrapes[0]);
        let body = page(n);
        let m = match_page(&plan, &target, &body, Format::Text, u64::MAX).expect("page parses");
        // Every SLO reads its route's series; every tenth also has bad events.
        assert_eq!(m.slos.len(), n);
        assert!(m.slos.iter().all(|s| s.total.len() == 1));
        assert_eq!(
            m.slos.iter().filter(|s| !s.numerator.is_empty()).count(),
            n / 10
        );
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(format!("match_page/{n}_series_x_{n}_slos"), |b| {
            b.iter(|| {
                match_page(&plan, &target, black_box(&body), Format::Text, u64::MAX)
                    .expect("page parses")
            })
        });
        group.bench_function(format!("parse_only/{n}_series"), |b| {
            b.iter(|| {
                parse(black_box(&body), Format::Text, |s| {
                    black_box(s.value);
                })
                .expect("page parses")
            })
        });
    }
    group.finish();
}

criterion_group!(wall, bench_wall);
criterion_group! {
    name = cpu;
    config = Criterion::default().with_measurement(ThreadCpu);
    targets = bench_cpu
}
criterion_main!(wall, cpu);
