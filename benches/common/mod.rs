//! Shared by the benches: a rule set of `n` probe-availability SLOs and the snapshot the
//! evaluator publishes for it after ten minutes of probe results, some failing.

use std::sync::Arc;

use burnwatch::evaluator::{Evaluator, Observation};
use burnwatch::probe::{Phases, ProbeOutcome};
use burnwatch::rules::load_str;
use burnwatch::rules::model::RuleSet;
use burnwatch::time::Timestamp;

/// SLOs in the benches' snapshot.
pub const SLOS: u32 = 10_000;
/// The snapshot's first probe result (ms since the epoch).
pub const T0: i64 = 1_780_000_000_000;

/// `n` probe-availability SLOs over 100 probes, each with a label, so every family has rows.
pub fn rules(n: u32) -> String {
    rules_of("bench", "p", 0..n)
}

/// The rules document of service `service`: probes `<probe>0` to `<probe>99`, and SLO `s<i>` for
/// each `i` of `slos`, read by probe `i % 100`.
fn rules_of(service: &str, probe: &str, slos: std::ops::Range<u32>) -> String {
    let mut y =
        format!("version: burnwatch/v1\nservice: {service}\nlabels: {{team: core}}\nprobes:\n");
    for p in 0..100 {
        y.push_str(&format!(
            "  - name: {probe}{p}\n    http: {{url: 'http://127.0.0.1:1/'}}\n    interval: 30s\n    timeout: 5s\n"
        ));
    }
    y.push_str("slos:\n");
    for i in slos {
        y.push_str(&format!(
            "  - name: s{i}\n    objective: 99.9\n    labels: {{tier: t{}}}\n    indicator: {{probe: {probe}{}}}\n",
            i % 3,
            i % 100
        ));
    }
    y
}

/// The checked rule set of [`rules`]`(SLOS)`.
pub fn rule_set() -> RuleSet {
    match load_str("bench.yaml", &rules(SLOS)) {
        Ok(s) => s,
        Err(d) => panic!("bench rules do not check: {d:?}"),
    }
}

/// Every SLO of [`rule_set`] with traffic in every window; about one probe result in seven
/// fails, so every burn-rate tier fires.
pub fn snapshot() -> Arc<burnwatch::view::AgentSnapshot> {
    snapshot_of(rule_set())
}

/// The snapshot of [`rules`]`(n)` as [`snapshot`] has it, for sizes whose engine state would
/// not fit the bench machine: the reports of a 100-SLO evaluation (one per probe) repeated
/// under every SLO's id, so an exporter sees `n` SLOs with the labels, windows and values
/// the agent publishes.
#[allow(dead_code)]
pub fn scaled_snapshot(n: u32) -> Arc<burnwatch::view::AgentSnapshot> {
    // One file (and service) per 10,000 SLOs: a rules file is bounded in size and YAML nodes.
    let sources: Vec<(std::path::PathBuf, Vec<u8>)> = (0..n.div_ceil(10_000))
        .map(|k| {
            let slos = k * 10_000..((k + 1) * 10_000).min(n);
            let doc = rules_of(&format!("bench{k}"), &format!("k{k}p"), slos);
            (format!("bench{k}.yaml").into(), doc.into_bytes())
        })
        .collect();
    let report = burnwatch::rules::check_sources(&sources);
    let Some(set) = report.rules else {
        panic!("bench rules do not check: {:?}", report.diagnostics);
    };
    let small = match load_str("bench.yaml", &rules(100)) {
        Ok(s) => s,
        Err(d) => panic!("bench rules do not check: {d:?}"),
    };
    let template = snapshot_of(small);
    let mut snap = (*template).clone();
    snap.slos.clear();
    snap.events_total.clear();
    for (i, slo) in set.services.iter().flat_map(|s| &s.slos).enumerate() {
        let t = &template.slos[i % template.slos.len()];
        let mut r = t.clone();
        r.id = slo.id.clone();
        if let Some(e) = template.events_total.get(&t.id) {
            snap.events_total.insert(slo.id.clone(), *e);
        }
        snap.slos.push(r);
    }
    snap.rules = Arc::new(set);
    Arc::new(snap)
}

fn snapshot_of(set: RuleSet) -> Arc<burnwatch::view::AgentSnapshot> {
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

/// The alerting benches' dispatcher: one receiver, alerts grouped by service and SLO, the
/// default inhibition.
#[allow(dead_code)]
pub fn dispatcher(rules: &RuleSet) -> burnwatch::notify::dispatch::Dispatcher {
    use burnwatch::notify::dispatch::{Dispatcher, Receivers};
    use burnwatch::notify::inhibit::{Dependencies, Inhibitor};
    use burnwatch::notify::route::{GroupBy, Route, RouteSpec};
    let spec = RouteSpec {
        receiver: Some("oncall".to_owned()),
        group_by: Some(GroupBy::Labels(
            ["service", "slo"].iter().map(|s| s.to_string()).collect(),
        )),
        ..RouteSpec::default()
    };
    let route = match Route::build(spec) {
        Ok(r) => r,
        Err(e) => panic!("route: {e}"),
    };
    let inhibitor = Inhibitor::new(Vec::new(), true, Dependencies::from_rules(rules));
    let receivers: Receivers = [("oncall".to_owned(), vec![true])].into_iter().collect();
    match Dispatcher::new(route, inhibitor, receivers) {
        Ok(d) => d,
        Err(e) => panic!("dispatcher: {e}"),
    }
}
