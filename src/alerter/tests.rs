//! Alert sources on a simulated clock: SLO alerts from the real evaluator and engine, probe
//! thresholds (Gatus parity), scrape targets, no data, reload and restart.

use std::sync::Arc;

use super::*;
use crate::evaluator::{Evaluator, Observation};
use crate::view::ScrapeFailure;

use crate::probe::{Failure, Phases, ProbeOutcome};
use crate::rules::load_str;

/// 2026-05-28T00:00:00Z, on a whole hour so every bucket boundary is exact.
const T0: i64 = 1_779_926_400_000;
const S: i64 = 1_000;
const M: i64 = 60_000;

const RULES: &str = r#"
version: burnwatch/v1
service: checkout
owner: payments-oncall
runbook: https://runbooks.example.com/checkout
dashboard: https://grafana.example.com/d/checkout
labels: {team: payments}
probes:
  - name: health
    interval: 1s
    timeout: 500ms
    tcp: {address: "checkout.internal:443"}
    labels: {probe_kind: health}
slos:
  - name: availability
    objective: 99.9
    indicator: {probe: health}
"#;

fn outcome(at: i64, success: bool) -> ProbeOutcome {
    ProbeOutcome {
        started_ms: at,
        success,
        duration_secs: 0.01,
        phases: Phases::default(),
        status: None,
        cert_not_after_ms: None,
        failure: (!success).then(|| Failure::Refused("checkout.internal:443".into())),
    }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn by_name<'a>(set: &'a AlertSet, alertname: &str) -> Vec<&'a Alert> {
    set.alerts
        .iter()
        .filter(|a| a.label(names::ALERTNAME) == alertname)
        .collect()
}

#[test]
fn slo_burn_rate_from_the_real_engine() {
    let rules = load_str("r.yaml", RULES).expect("rules");
    let mut ev = Evaluator::new(rules.clone(), Timestamp(T0));
    let mut al = Alerter::new(&rules, "http://burnwatch.example:9090/");
    let g = ev.generation();
    // One check per second for 24h, from a fresh start; the newest 54 fail (all in the newest
    // minute). Over the last hour 54 of 3600 fail: error ratio 1.5%, burn 15.0 (> 14.4); over
    // the last 5m 54 of 300: burn 180.0. Over 6h (page_slow, 6x) the burn is 2.5, over 1d
    // 0.625: only page_fast fires. The 30d window holds all 86400 checks, burn 0.625, but one
    // day of data is 1/30 of the window: the 54 failures spend 0.625/30 = 2.08% of the
    // 30-day budget, so 97.9% is left, spent in 0.979 x 720h / 15.0 = 47h at the 1h burn rate.
    let n = 86_400;
    for i in 0..n {
        let at = T0 + i * S;
        let ok = i < n - 54;
        ev.apply(Observation::Probe {
            generation: g,
            name: Arc::from("health"),
            outcome: outcome(at, ok),
        });
        al.observe_probe("health", Timestamp(at), ok);
    }
    // The minute boundary after the newest check: the 5m window is exactly the newest five
    // one-minute buckets, plus the current one, empty.
    let now = Timestamp(T0 + n * S);
    let snap = ev.evaluate(now);
    let set = al.evaluate(&snap, now);

    let burn = by_name(&set, SLO_BURN_RATE);
    assert_eq!(burn.len(), 1, "{:#?}", set.alerts);
    let a = burn[0];
    assert_eq!(
        a.labels,
        labels(&[
            ("alertname", "SloBurnRate"),
            ("service", "checkout"),
            ("slo", "availability"),
            ("severity", "page"),
            ("team", "payments"),
            ("tier", "page_fast"),
            ("window", "1h/5m"),
        ])
    );
    assert_eq!((a.starts_at, a.ends_at), (now, None));
    assert_eq!(
        a.generator_url,
        "http://burnwatch.example:9090/api/v1/slos/checkout/availability"
    );
    let want = labels(&[
        (
            "summary",
            "checkout/availability is burning its error budget 15.0x (page_fast: 1h and 5m windows above 14.4x)",
        ),
        ("burn_rate", "15.0x over 1h, 180.0x over 5m"),
        (
            "description",
            "Errors are 1.50% of events over the last 1h and 18.00% over the last 5m, against an error budget of 0.100% (99.9% over 30d). At the current 1h burn rate the budget (97.9% left) is spent in 1d 23h.",
        ),
        ("objective", "99.9%"),
        ("sli", "99.937%"),
        ("budget_remaining", "97.9%"),
        ("time_to_exhaustion", "1d 23h"),
        ("owner", "payments-oncall"),
        ("runbook_url", "https://runbooks.example.com/checkout"),
        ("dashboard_url", "https://grafana.example.com/d/checkout"),
    ]);
    assert_eq!(a.annotations, want);

    // The probe itself is down (54 failures in a row >= 3); budget left and data flowing.
    let probe = by_name(&set, PROBE_DOWN);
    assert_eq!(probe.len(), 1);
    assert_eq!(
        probe[0].labels,
        labels(&[
            ("alertname", "ProbeDown"),
            ("probe", "health"),
            ("probe_kind", "health"),
            ("service", "checkout"),
            ("severity", "page"),
        ])
    );
    assert_eq!(
        probe[0].annotations[names::SUMMARY],
        "probe health is failing: 54 failures in a row (last: connection refused by checkout.internal:443)"
    );
    assert_eq!(
        probe[0].annotations[names::DESCRIPTION],
        "Probe health (tcp check of checkout.internal:443): 54 failures in a row. Last success: 2026-05-28T23:59:05.000Z. It counts as up again after 2 successful checks in a row."
    );
    assert_eq!(set.alerts.len(), 2, "{:#?}", set.alerts);
    assert!(set.flapping.is_empty());
    let mut moves: Vec<(&str, State, State, Timestamp)> = set
        .transitions
        .iter()
        .map(|t| (t.labels[names::ALERTNAME].as_str(), t.from, t.to, t.at))
        .collect();
    moves.sort();
    assert_eq!(
        moves,
        vec![
            ("ProbeDown", State::Inactive, State::Firing, now),
            ("SloBurnRate", State::Inactive, State::Firing, now),
        ]
    );
}

/// A snapshot with no SLO reports, for probe and target alerts.
fn bare(rules: &RuleSet, at: Timestamp, targets: Vec<TargetStatus>) -> AgentSnapshot {
    AgentSnapshot {
        at,
        rules: Arc::new(rules.clone()),
        slos: Vec::new(),
        probes: Vec::new(),
        targets,
        rules_status: Default::default(),
        checkpoint: Default::default(),
        stale_observations: 0,
        sources: Vec::new(),
        events_total: BTreeMap::new(),
        evaluation_seconds: 0.0,
        pace: Default::default(),
        groups: Vec::new(),
    }
}

fn probe_rules(alert: &str) -> RuleSet {
    load_str(
        "p.yaml",
        &format!(
            "version: burnwatch/v1\nservice: s\nprobes:\n  - name: p\n    tcp: {{address: \"h:1\"}}\n    alert: {alert}\nslos:\n  - name: a\n    objective: 99\n    indicator: {{probe: p}}\n    alerting: {{disabled: true}}\n"
        ),
    )
    .expect("rules")
}

/// Feeds `results` (one per 10s from t = 0, 'F' fail, 'S' success) and evaluates after each;
/// returns the probe alert's state after each result.
fn probe_states(alert: &str, results: &str) -> Vec<State> {
    let rules = probe_rules(alert);
    let mut al = Alerter::new(&rules, "http://x");
    let fp = al.defined()[0].0;
    let mut out = Vec::new();
    for (i, c) in results.chars().enumerate() {
        let at = Timestamp(i as i64 * 10 * S);
        al.observe_probe("p", at, c == 'S');
        al.evaluate(&bare(&rules, at, Vec::new()), at);
        out.push(al.phase(fp).state());
    }
    out
}

fn states(s: &str) -> Vec<State> {
    s.chars()
        .map(|c| match c {
            '.' => State::Inactive,
            'F' => State::Firing,
            'R' => State::Resolved,
            'P' => State::Pending,
            _ => State::Flapping,
        })
        .collect()
}

#[test]
fn probe_thresholds_match_gatus() {
    // Default: 3 failures in a row trigger, 2 successes in a row resolve.
    assert_eq!(probe_states("true", "FFSFFFSS"), states(".....FFR"));
    // Almost resolved, then failing again: one success is not enough, and a failure resets it.
    assert_eq!(
        probe_states("{failures: 3, successes: 2}", "FFFSFSSF"),
        states("..FFFFRR")
    );
    // m of n: 3 failures among the last 5, not in a row. Up again once 2 successes in a row
    // came and the window (S F S S ... ) holds fewer than 3 failures: F S F S F S S has
    // [F S F S S] = 2 failures at the 7th result.
    assert_eq!(
        probe_states("{failures: 3, of: 5}", "FSFSFSS"),
        states("....FFR")
    );
    // Almost resolved with m of n: F S F S F S then F keeps it down (the success run is reset),
    // and it takes S S again.
    assert_eq!(
        probe_states("{failures: 3, of: 5}", "FSFSFSFSS"),
        states("....FFFFR")
    );
    // With 3 of 5 and F F F S S the window still holds 3 failures: not up yet.
    assert_eq!(
        probe_states("{failures: 3, of: 5}", "FFFSSS"),
        states("..FFFR")
    );
    // failing_for 30s: the first failure at 0s, down from the check at 30s on.
    assert_eq!(
        probe_states("{failing_for: 30s}", "FFFFSS"),
        states("...FFR")
    );
    // `for` on top of a threshold: down at the 1st failure, firing 20s later.
    assert_eq!(
        probe_states("{failures: 1, for: 20s}", "FFFS"),
        states("PPFF")
    );
    assert_eq!(
        probe_states("{failures: 1, for: 20s}", "FFFSS"),
        states("PPFFR")
    );
}

#[test]
fn failing_for_is_reached_by_time_alone() {
    let rules = probe_rules("{failing_for: 2m}");
    let mut al = Alerter::new(&rules, "http://x");
    al.observe_probe("p", Timestamp(0), false);
    let set = al.evaluate(
        &bare(&rules, Timestamp(119_999), Vec::new()),
        Timestamp(119_999),
    );
    assert!(set.alerts.is_empty());
    // No new result, but the probe has been failing since 0 for 2m at 120s.
    let set = al.evaluate(
        &bare(&rules, Timestamp(2 * M), Vec::new()),
        Timestamp(2 * M),
    );
    assert_eq!(set.alerts.len(), 1);
    assert_eq!(set.alerts[0].starts_at, Timestamp(2 * M));
    assert_eq!(
        set.alerts[0].annotations[names::SUMMARY],
        "probe p is failing: failing since 1970-01-01T00:00:00.000Z"
    );
    assert_eq!(set.alerts[0].generator_url, "http://x/api/v1/probes");
}

fn target(up: bool, at_ms: i64) -> TargetStatus {
    TargetStatus {
        name: "app".into(),
        service: "s".into(),
        url: "http://app.internal:9100/metrics".into(),
        up,
        last_scrape_ms: Some(at_ms),
        last_success_ms: Some(0),
        duration_secs: 0.1,
        samples: 10,
        bytes: 100,
        failure: (!up).then(|| ScrapeFailure {
            reason: "refused",
            message: "connection refused".into(),
        }),
        problem: None,
        duplicate_samples: 0,
        consecutive_failures: if up { 0 } else { at_ms as u64 / 60_000 },
        scrapes_total: 1,
        failures_total: 0,
    }
}

#[test]
fn scrape_target_down_after_five_minutes() {
    let rules = load_str(
        "t.yaml",
        "version: burnwatch/v1\nservice: s\nscrape:\n  - name: app\n    url: http://app.internal:9100/metrics\n    labels: {region: eu, service: spoofed}\nslos:\n  - name: a\n    objective: 99\n    indicator: {ratio: {bad: 'x{code=\"500\"}', total: x}}\n    alerting: {disabled: true}\n",
    )
    .expect("rules");
    let mut al = Alerter::new(&rules, "http://x");
    let mut fired = Vec::new();
    // Up at minute 0, down from minute 1 to 7, up at minute 8.
    for min in 0..=8 {
        let at = Timestamp(min * M);
        let up = min == 0 || min == 8;
        let set = al.evaluate(&bare(&rules, at, vec![target(up, min * M)]), at);
        for t in &set.transitions {
            fired.push((min, t.from, t.to));
        }
        if min == 6 {
            assert_eq!(set.alerts.len(), 1);
            let a = &set.alerts[0];
            assert_eq!(
                a.labels,
                labels(&[
                    ("alertname", "ScrapeTargetDown"),
                    ("region", "eu"),
                    // The declaring document's service wins over a rules label.
                    ("service", "s"),
                    ("severity", "ticket"),
                    ("target", "app"),
                ])
            );
            assert_eq!(
                a.annotations,
                labels(&[
                    ("summary", "scrape target app is down: connection refused"),
                    (
                        "description",
                        "Scraping http://app.internal:9100/metrics failed 6 times in a row (connection refused). Last success: 1970-01-01T00:00:00.000Z. SLOs whose selectors match this target's series count no events while it is down."
                    ),
                ])
            );
            assert_eq!(a.generator_url, "http://x/api/v1/targets");
        }
        if min == 8 {
            assert_eq!(set.alerts.len(), 1);
            assert_eq!(set.alerts[0].starts_at, Timestamp(6 * M));
            assert_eq!(set.alerts[0].ends_at, Some(Timestamp(8 * M)));
        }
    }
    assert_eq!(
        fired,
        vec![
            (1, State::Inactive, State::Pending),
            (6, State::Pending, State::Firing),
            (8, State::Firing, State::Resolved),
        ]
    );
}

/// A fresh start into an outage: every check fails from the first. Two minutes in, page_fast
/// fires (1h: 120 s of data at 100% errors spend 3.3% x 1000 = 33.3x the 1h budget rate) and
/// its text says how much of each window has data; the 30d budget is barely touched.
#[test]
fn fresh_start_page_says_how_much_data_it_saw() {
    let rules = load_str("r.yaml", RULES).expect("rules");
    let mut ev = Evaluator::new(rules.clone(), Timestamp(T0));
    let mut al = Alerter::new(&rules, "http://x");
    let g = ev.generation();
    for i in 0..=120 {
        ev.apply(Observation::Probe {
            generation: g,
            name: Arc::from("health"),
            outcome: outcome(T0 + i * S, false),
        });
    }
    let now = Timestamp(T0 + 120 * S);
    let set = al.evaluate(&ev.evaluate(now), now);
    let burn = by_name(&set, SLO_BURN_RATE);
    let tiers: Vec<&str> = burn.iter().map(|a| a.label("tier")).collect();
    assert_eq!(tiers, ["page_fast"], "{:#?}", set.alerts);
    let a = &burn[0].annotations;
    assert_eq!(a[names::BURN_RATE], "33.3x over 1h, 400.0x over 5m");
    let d = &a[names::DESCRIPTION];
    assert!(
        d.starts_with(
            "Errors are 100.00% of events over the last 1h (over 2m of data, 3.3% of the 1h window) and 100.00% over the last 5m (over 2m of data, 40% of the 5m window), against an error budget of 0.100% (99.9% over 30d). The burn rates count the errors seen against the budget of each whole window. At the current 1h burn rate the budget (95.4% left) is spent in "
        ),
        "{d}"
    );
    assert_eq!(a[names::BUDGET_REMAINING], "95.4%");
    assert!(by_name(&set, SLO_ERROR_BUDGET_EXHAUSTED).is_empty());
}

#[test]
fn no_data_and_budget_exhausted_from_the_engine() {
    let rules = load_str(
        "r.yaml",
        &RULES.replace(
            "    indicator: {probe: health}\n",
            "    indicator: {probe: health}\n    alerting:\n      no_data: {for: 10m}\n      tiers: {page_fast: {disabled: true}, page_slow: {disabled: true}, ticket_fast: {disabled: true}, ticket_slow: {disabled: true}}\n",
        ),
    )
    .expect("rules");
    let mut ev = Evaluator::new(rules.clone(), Timestamp(T0));
    let mut al = Alerter::new(&rules, "http://x");
    let g = ev.generation();
    // A check 30 days back (the first collection: the 30d window is covered), then 2 checks,
    // 1 failure: 1 bad of 3 against a 0.1% budget, so the budget is overspent (remaining
    // 1 - 333.3 = -332.3, i.e. -33233.3%).
    for (at, ok) in [(T0 - 30 * 1440 * M, true), (T0, true), (T0 + S, false)] {
        ev.apply(Observation::Probe {
            generation: g,
            name: Arc::from("health"),
            outcome: outcome(at, ok),
        });
    }
    let mut log = Vec::new();
    for min in [1, 5, 10, 11, 12] {
        let now = Timestamp(T0 + min * M);
        let snap = ev.evaluate(now);
        let set = al.evaluate(&snap, now);
        for t in &set.transitions {
            log.push((min, t.labels[names::ALERTNAME].clone(), t.to));
        }
        if min == 11 {
            let nd = by_name(&set, SLO_NO_DATA);
            assert_eq!(nd.len(), 1);
            assert_eq!(
                nd[0].annotations[names::SUMMARY],
                "checkout/availability has counted no events for 10m"
            );
            let be = by_name(&set, SLO_ERROR_BUDGET_EXHAUSTED);
            assert_eq!(
                be[0].annotations[names::SUMMARY],
                "checkout/availability has exhausted its error budget (-33233.3% left over 30d)"
            );
            assert_eq!(be[0].annotations[names::SLI], "66.666%");
            assert_eq!(
                be[0].annotations[names::TIME_TO_EXHAUSTION],
                "already exhausted"
            );
            assert_eq!(
                be[0].labels,
                labels(&[
                    ("alertname", "SloErrorBudgetExhausted"),
                    ("service", "checkout"),
                    ("severity", "ticket"),
                    ("slo", "availability"),
                    ("team", "payments"),
                ])
            );
        }
        if min == 12 {
            // A new check arrives: data flows again, so no-data resolves.
            ev.apply(Observation::Probe {
                generation: g,
                name: Arc::from("health"),
                outcome: outcome(T0 + 12 * M, true),
            });
            let now = Timestamp(T0 + 12 * M + 1);
            let set = al.evaluate(&ev.evaluate(now), now);
            let nd = by_name(&set, SLO_NO_DATA);
            assert_eq!(nd[0].ends_at, Some(now));
        }
    }
    // The first evaluation (minute 1) saw 2 events: no data is counted from there, so it fires
    // at minute 11 (10m later), not at 10.
    assert_eq!(
        log,
        vec![
            (1, SLO_ERROR_BUDGET_EXHAUSTED.to_owned(), State::Firing),
            (11, SLO_NO_DATA.to_owned(), State::Firing),
        ]
    );
}

#[test]
fn reload_keeps_lifecycles_and_resolves_removed_rules() {
    let rules = probe_rules("{failures: 1}");
    let mut al = Alerter::new(&rules, "http://x");
    al.observe_probe("p", Timestamp(0), false);
    let set = al.evaluate(&bare(&rules, Timestamp(0), Vec::new()), Timestamp(0));
    assert_eq!(set.alerts.len(), 1);
    // Same identity (a threshold change keeps labels): the instance continues.
    let same = probe_rules("{failures: 2, successes: 1}");
    let set = al.reload(&same, Timestamp(10 * S));
    assert_eq!(set, AlertSet::default());
    let set = al.evaluate(
        &bare(&same, Timestamp(20 * S), Vec::new()),
        Timestamp(20 * S),
    );
    assert_eq!(set.alerts[0].starts_at, Timestamp(0));
    assert!(set.transitions.is_empty());
    // Severity changes the labels, so the old alert resolves and the new one starts over.
    let other = probe_rules("{failures: 1, severity: ticket}");
    let set = al.reload(&other, Timestamp(30 * S));
    assert_eq!(set.alerts.len(), 1);
    assert_eq!(set.alerts[0].label(names::SEVERITY), "page");
    assert_eq!(set.alerts[0].ends_at, Some(Timestamp(30 * S)));
    assert_eq!(set.transitions[0].to, State::Resolved);
    // The probe's tracker survived: still down, so the ticket fires at the next evaluation.
    let set = al.evaluate(
        &bare(&other, Timestamp(40 * S), Vec::new()),
        Timestamp(40 * S),
    );
    assert_eq!(set.alerts[0].label(names::SEVERITY), "ticket");
    assert_eq!(set.alerts[0].starts_at, Timestamp(40 * S));
    // `alert: false` removes it.
    let off = probe_rules("false");
    let set = al.reload(&off, Timestamp(50 * S));
    assert_eq!(set.alerts[0].ends_at, Some(Timestamp(50 * S)));
    assert!(al.state().alerts.is_empty() && al.state().probes.is_empty());
}

#[test]
fn restart_round_trips_through_serde() {
    let rules = probe_rules("{failures: 2, keep_firing_for: 1m}");
    let mut al = Alerter::new(&rules, "http://x");
    for i in 0..2 {
        al.observe_probe("p", Timestamp(i * 10 * S), false);
    }
    al.evaluate(
        &bare(&rules, Timestamp(10 * S), Vec::new()),
        Timestamp(10 * S),
    );
    let text = serde_json::to_string(al.state()).expect("serialize");
    let mut back = Alerter::new(&rules, "http://x");
    let state: AlerterState = serde_json::from_str(&text).expect("deserialize");
    assert_eq!(back.restore(state, Timestamp(15 * S)), AlertSet::default());
    assert_eq!(back.state(), al.state());
    // Recovery after the restart: 2 successes, then keep_firing_for 1m holds it.
    back.observe_probe("p", Timestamp(20 * S), true);
    back.observe_probe("p", Timestamp(30 * S), true);
    let set = back.evaluate(
        &bare(&rules, Timestamp(30 * S), Vec::new()),
        Timestamp(30 * S),
    );
    assert_eq!(
        (set.alerts[0].starts_at, set.alerts[0].ends_at),
        (Timestamp(10 * S), None)
    );
    let set = back.evaluate(
        &bare(&rules, Timestamp(90 * S), Vec::new()),
        Timestamp(90 * S),
    );
    assert_eq!(set.alerts[0].ends_at, Some(Timestamp(90 * S)));
    // A state from other rules: its firing alerts resolve on restore.
    let other = probe_rules("{failures: 2, severity: ticket}");
    let mut fresh = Alerter::new(&other, "http://x");
    let set = fresh.restore(
        serde_json::from_str(&text).expect("deserialize"),
        Timestamp(S),
    );
    assert_eq!(set.alerts.len(), 1);
    assert_eq!(set.alerts[0].ends_at, Some(Timestamp(S)));
}

#[test]
fn flapping_probe_is_held_and_reported() {
    let rules =
        probe_rules("{failures: 1, successes: 1, flap: {window: 1h, max_changes: 2, hold: 5m}}");
    let mut al = Alerter::new(&rules, "http://x");
    let mut sent = Vec::new();
    // Fails and recovers every minute up to minute 8, then stays up from 9: stable for the 5m
    // hold at 14.
    for min in 0..20 {
        let at = Timestamp(min * M);
        al.observe_probe("p", at, min >= 10 || min % 2 == 1);
        let set = al.evaluate(&bare(&rules, at, Vec::new()), at);
        for t in &set.transitions {
            sent.push((min, t.to));
        }
        if (2..14).contains(&min) {
            assert_eq!(set.flapping.len(), 1, "minute {min}");
            assert_eq!(set.alerts[0].starts_at, Timestamp(2 * M));
        }
    }
    assert_eq!(
        sent,
        vec![
            (0, State::Firing),
            (1, State::Resolved),
            (2, State::Flapping),
            (14, State::Resolved),
        ]
    );
}

#[test]
fn people_numbers_are_finite_and_short() {
    assert_eq!(fmt_rate(f64::NAN), "0.0x");
    assert_eq!(fmt_rate(f64::INFINITY), "0.0x");
    assert_eq!(fmt_trim(14.4, 2), "14.4");
    assert_eq!(fmt_trim(6.0, 2), "6");
    assert_eq!(fmt_sli(0.999996), "99.999%");
    assert_eq!(fmt_sli(1.0), "100%");
    assert_eq!(fmt_percent(-0.253, 1), "-25.3%");
    assert_eq!(fmt_percent(-0.00001, 1), "0.0%");
    assert_eq!(fmt_exhaustion(Some(Dur::from_hours(30))), "1d 6h");
    assert_eq!(fmt_exhaustion(Some(Dur::from_mins(61))), "1h 1m");
    assert_eq!(fmt_exhaustion(Some(Dur::from_days(2))), "2d");
    assert_eq!(fmt_exhaustion(Some(Dur(500))), "under a second");
    assert_eq!(fmt_exhaustion(None), "never at the current burn rate");
}

#[test]
fn exhausted_budgets_and_resolved_alerts_are_worded_as_such() {
    let rules = load_str("r.yaml", RULES).expect("rules");
    let mut ev = Evaluator::new(rules.clone(), Timestamp(T0));
    let g = ev.generation();
    for i in 0..600 {
        ev.apply(Observation::Probe {
            generation: g,
            name: Arc::from("health"),
            outcome: outcome(T0 + i * S, i % 2 == 0),
        });
    }
    let now = Timestamp(T0 + 600 * S - 1);
    let mut snap = ev.evaluate(now);
    // The figures of a budget spent 29 times over, whatever the engine made of 10 minutes.
    {
        let r = &mut snap.slos[0];
        r.budget.remaining = -28.222;
        r.time_to_exhaustion = Some(Dur(0));
        for t in &mut r.tiers {
            t.condition = t.name == "page_fast";
            t.long_burn = 19.1;
            t.short_burn = 20.0;
        }
    }
    let mut al = Alerter::new(&rules, "http://x");
    let set = al.evaluate(&snap, now);
    let firing = by_name(&set, SLO_BURN_RATE);
    assert_eq!(firing.len(), 1);
    let d = &firing[0].annotations[names::DESCRIPTION];
    assert!(
        d.ends_with("The budget is already exhausted (-2822.2% left)."),
        "{d}"
    );
    assert!(!d.contains("spent in already"), "{d}");
    // Recovered: the resolved alert says so, with the final figures, and its notification's
    // title does not say it is burning.
    let later = Timestamp(now.0 + M);
    for t in &mut snap.slos[0].tiers {
        t.condition = false;
        t.long_burn = 9.5;
        t.short_burn = 0.0;
    }
    snap.at = later;
    let set = al.evaluate(&snap, later);
    let resolved = by_name(&set, SLO_BURN_RATE);
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].ends_at, Some(later));
    assert_eq!(
        resolved[0].annotations[names::SUMMARY],
        "checkout/availability recovered: burn rate 9.5x over 1h and 0.0x over 5m (page_fast: no longer both above 14.4x)"
    );
    let n = crate::notify::render::tests::notification(vec![resolved[0].clone()]);
    let title = crate::notify::render::summary(&n);
    assert!(
        title.starts_with("[RESOLVED] checkout/availability recovered"),
        "{title}"
    );
    assert!(!title.contains("is burning"), "{title}");
}
