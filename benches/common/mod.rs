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
    let set = rule_set();
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
