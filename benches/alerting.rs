//! The alerting path at scale, per evaluation: the alert sources over a 10,000-SLO snapshot
//! (every SLO burning, so every tier, budget and probe alert fires), the dispatcher taking in
//! all those alerts and flushing one group per SLO, and rendering one notification.
//!
//! Targets: the alerting task runs once per evaluation (default every 10 s) beside the engine's
//! evaluation of the same SLOs (about 15 ms for 10,000); sources plus dispatch should stay
//! well under a second for 10,000 burning SLOs, so alerting never lags the evaluator.

use std::hint::black_box;

use burnwatch::alerter::Alerter;
use burnwatch::notify::render::{self, RenderContext};
use burnwatch::notify::silence::Silences;
use burnwatch::time::Dur;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

mod common;
use common::{SLOS, dispatcher, rule_set, snapshot};

fn bench_alerting(c: &mut Criterion) {
    let rules = rule_set();
    let snap = snapshot();
    let now = snap.at;
    let mut alerter = Alerter::new(&rules, "http://127.0.0.1:9464");
    let set = alerter.evaluate(&snap, now);
    let mut d = dispatcher(&rules);
    d.upsert(set.alerts.clone(), now);
    let flush = d.tick(now.add(Dur::from_secs(30)), &Silences::default());
    println!(
        "{SLOS} SLOs: {} alerts firing, first flush: {} notifications, {} alerts held back",
        set.alerts.len(),
        flush.notifications.len(),
        flush.suppressed.len()
    );
    let mut g = c.benchmark_group("alerting");
    g.sample_size(10);
    g.bench_function("sources/evaluate/10k_slos", |b| {
        b.iter(|| black_box(alerter.evaluate(&snap, now).alerts.len()))
    });
    g.bench_function("dispatch/upsert_and_flush/10k_slos", |b| {
        b.iter_batched(
            || (dispatcher(&rules), set.alerts.clone()),
            |(mut d, alerts)| {
                d.upsert(alerts, now);
                black_box(
                    d.tick(now.add(Dur::from_secs(30)), &Silences::default())
                        .notifications
                        .len(),
                )
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("dispatch/steady_upsert_and_tick/10k_slos", |b| {
        // The common case: the same alerts again (new annotations), nothing due to send.
        b.iter(|| {
            d.upsert(set.alerts.iter().cloned(), now);
            black_box(d.tick(now.add(Dur::from_secs(31)), &Silences::default()))
        })
    });
    g.bench_function("dispatch/next_deadline/10k_groups", |b| {
        // Once per alerting loop turn: the first of the ordered deadlines, not a scan.
        b.iter(|| black_box(d.next_deadline()))
    });
    let ctx = RenderContext::new("http://127.0.0.1:9464");
    let one = &flush.notifications[0].notification;
    g.bench_function("render/text_and_html", |b| {
        b.iter(|| black_box(render::text(one, &ctx).len() + render::html(one, &ctx).len()))
    });
    g.finish();
}

criterion_group!(benches, bench_alerting);
criterion_main!(benches);
