//! Encoding the `/metrics` page for 10,000 SLOs (target: under 200 ms). The snapshot holds every
//! SLO's reports with traffic in every window, as the agent publishes it; encoding runs at each
//! Prometheus scrape.

use std::hint::black_box;
use std::sync::Arc;

use burnwatch::agent::evaluator::{Evaluator, Observation};
use burnwatch::export::prometheus::encode;
use burnwatch::probe::{Phases, ProbeOutcome};
use burnwatch::rules::load_str;
use burnwatch::time::Timestamp;
use criterion::{Criterion, criterion_group, criterion_main};

const SLOS: u32 = 10_000;
const T0: i64 = 1_780_000_000_000;

/// `n` probe-availability SLOs over 100 probes, each with a label, so every family has rows.
fn rules(n: u32) -> String {
    let mut y =
        String::from("version: burnwatch/v1\nservice: bench\nlabels: {team: core}\nprobes:\n");
    for p in 0..100 {
        y.push_str(&format!(
            "  - name: p{p}\n    http: {{url: 'http://127.0.0.1:1/'}}\n    interval: 30s\n    timeout: 5s\n"
        ));
    }
    y.push_str("slos:\n");
    for i in 0..n {
        y.push_str(&format!(
            "  - name: s{i}\n    objective: 99.9\n    labels: {{tier: t{}}}\n    indicator: {{probe: p{}}}\n",
            i % 3,
            i % 100
        ));
    }
    y
}

fn snapshot() -> Arc<burnwatch::agent::AgentSnapshot> {
    let set = match load_str("bench.yaml", &rules(SLOS)) {
        Ok(s) => s,
        Err(d) => panic!("bench rules do not check: {d:?}"),
    };
    let mut ev = Evaluator::new(set, Timestamp(T0));
    for k in 0..20i64 {
        for p in 0..100 {
            ev.apply(Observation::Probe {
                generation: ev.generation(),
                name: format!("p{p}").into(),
                outcome: ProbeOutcome {
                    started_ms: T0 + k * 30_000,
                    success: (k + p) % 7 != 0,
                    duration_secs: 0.05,
                    phases: Phases::default(),
                    status: Some(200),
                    cert_not_after_ms: None,
                    failure: None,
                },
            });
        }
    }
    Arc::new(ev.evaluate(Timestamp(T0 + 20 * 30_000)))
}

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
