//! A month of synthetic traffic replayed minute by minute through the engine, with the exact
//! evaluation minute of every alert transition derived by hand from the burn-rate math.
//!
//! Traffic is aggregated per minute and recorded with `record_counts` at the minute's start;
//! the engine is evaluated at the minute's last millisecond, so "minute M" below means the
//! evaluation that includes minute M's traffic. A window of `W` reads every bucket overlapping
//! `[now - W, now]`: evaluated at the end of minute M, a window of w minutes on the 1 m tier
//! (up to 6 h) is minutes [M - w, M], w + 1 of them; on the 10 m tier (1 d, 3 d) it starts at
//! the 10-minute bucket holding minute M - w, so it is w + (M mod 10) + 1 minutes; the 1 h tier
//! serves 30 d. A second engine replays one check every 10 s, evaluated every 10 s between the
//! checks, for a page on a `1m` short window.

use std::collections::BTreeMap;

use burnwatch::alert::lifecycle::{Lifecycle, Params, State};
use burnwatch::rules::model::{
    Alerting, BudgetingMethod, BurnTier, Indicator, Labels, NoDataPolicy, Objective, Slo, SloId,
    Window, default_tiers,
};
use burnwatch::slo::Engine;
use burnwatch::time::{Dur, Timestamp};

/// 2024-01-01T00:00:00Z.
const T0: i64 = 1_704_067_200_000;
const MIN: i64 = 60_000;
const DAY_MINS: i64 = 1440;

fn slo(name: &str, min_events: u64) -> Slo {
    let window = Window::Rolling(Dur::from_days(30));
    Slo {
        id: SloId {
            service: "replay".into(),
            slo: name.into(),
        },
        description: None,
        labels: Labels::new(),
        objective: Objective::from_percent(99.9).expect("valid"),
        alerting: Alerting {
            tiers: default_tiers(&window),
            min_events,
            ..Alerting::default()
        },
        window,
        method: BudgetingMethod::Occurrences,
        indicator: Indicator::ProbeAvailability { probe: "p".into() },
        no_data: NoDataPolicy::Ignore,
        group: None,
    }
}

/// Minute index of day `d` at `h:m`.
fn at(d: i64, h: i64, m: i64) -> i64 {
    d * DAY_MINS + h * 60 + m
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Quiet,
    Pending,
    Firing,
}

/// The tier alert's state as the agent decides it: its lifecycle stepped with the engine's raw
/// condition (the engine keeps no alert state).
fn kind(s: State) -> Kind {
    match s {
        State::Inactive | State::Resolved => Kind::Quiet,
        State::Pending => Kind::Pending,
        State::Firing | State::Flapping => Kind::Firing,
    }
}

#[test]
fn one_month_outage_slow_burn_and_low_traffic() {
    let mut outage = slo("outage", 0);
    // page_fast waits 2 minutes before firing, to show Pending.
    outage.alerting.tiers[0].for_ = Dur::from_mins(2);
    let slow = slo("slow_burn", 0);
    let quiet = slo("low_traffic", 1000);
    let mut engine = Engine::new();
    let (io, is, iq) = (
        engine.add_slo(&outage),
        engine.add_slo(&slow),
        engine.add_slo(&quiet),
    );

    let outage_start = at(12, 10, 0);
    let outage_end = outage_start + 40; // first clean minute
    let burn_start = at(5, 0, 0);
    let burn_end = at(9, 0, 0);

    // (slo, tier) -> transitions (minute, new kind).
    let mut seen: BTreeMap<(usize, String), Vec<(i64, Kind)>> = BTreeMap::new();
    let mut last: BTreeMap<(usize, String), Kind> = BTreeMap::new();
    let mut lifecycles: BTreeMap<(usize, String), Lifecycle> = BTreeMap::new();
    let slos = [&outage, &slow, &quiet];
    let mut low_traffic_conditions_blocked = 0u64;
    let mut final_report = None;

    // A page on a 1 h / 1 m window pair, fed one check every 10 s (at :05, :15, ... :55) and
    // evaluated every 10 s (at :00, :10, ... :50, between the checks, so right after every
    // minute boundary the current minute holds no check yet). Checks fail for 2 minutes, from
    // day 20 03:00:30 to 03:02:30 (12 failed checks: 03:00:35 ... 03:02:25).
    let mut short = slo("short_window", 0);
    short.alerting.tiers = vec![BurnTier {
        name: "page".into(),
        severity: "page".into(),
        long: Dur::HOUR,
        short: Dur::MINUTE,
        factor: 14.4,
        for_: Dur(0),
        keep_firing_for: Dur(0),
        labels: Labels::new(),
        annotations: Labels::new(),
    }];
    let mut checks = Engine::new();
    let ic = checks.add_slo(&short);
    let check_outage = (
        T0 + at(20, 3, 0) * MIN + 30_000,
        T0 + at(20, 3, 2) * MIN + 30_000,
    );
    let mut page: Vec<(i64, bool)> = Vec::new();

    for m in 0..30 * DAY_MINS {
        let ts = Timestamp(T0 + m * MIN);
        for k in 0..6 {
            let eval = T0 + m * MIN + k * 10_000;
            let cond = checks.evaluate_slo(ic, Timestamp(eval)).expect("idx").tiers[0].condition;
            if page.last().map_or(cond, |&(_, c)| c != cond) {
                page.push((eval, cond));
            }
            let check = eval + 5_000;
            let failed = (check_outage.0..check_outage.1).contains(&check);
            checks.record(ic, Timestamp(check), !failed).expect("valid");
        }
        // 1 event/s; 20% errors during the outage.
        let bad = if (outage_start..outage_end).contains(&m) {
            12
        } else {
            0
        };
        engine.record_counts(io, ts, 60 - bad, 60).expect("valid");
        // 1000 events/min; 0.5% errors (burn 5) for four days.
        let bad = if (burn_start..burn_end).contains(&m) {
            5
        } else {
            0
        };
        engine
            .record_counts(is, ts, 1000 - bad, 1000)
            .expect("valid");
        // One event every 10 minutes, every other one bad (burn 500), under min_events.
        if m % 10 == 0 {
            engine.record(iq, ts, (m / 10) % 2 == 0).expect("valid");
        }
        let snap = engine.evaluate(Timestamp(T0 + m * MIN + MIN - 1));
        for (i, rep) in snap.slos.iter().enumerate() {
            for (t, rule) in rep.tiers.iter().zip(&slos[i].alerting.tiers) {
                let key = (i, t.name.clone());
                let params = Params {
                    for_: rule.for_,
                    keep_firing_for: rule.keep_firing_for,
                    flap: None,
                };
                let l = lifecycles.entry(key.clone()).or_default();
                l.step(t.condition, rep.at, &params);
                let k = kind(l.state());
                if last.get(&key).copied().unwrap_or(Kind::Quiet) != k {
                    seen.entry(key.clone()).or_default().push((m, k));
                    last.insert(key, k);
                }
                if i == iq.0 as usize
                    && m >= 3 * DAY_MINS
                    && t.long_burn > t.factor
                    && t.short_burn > t.factor
                {
                    low_traffic_conditions_blocked += 1;
                }
                assert!(t.long_burn.is_finite() && t.short_burn.is_finite());
            }
            assert!(rep.window.sli.is_finite() && rep.budget.remaining_minutes.is_finite());
        }
        final_report = Some(snap.slos[io.0 as usize].clone());
    }

    let get = |i: usize, tier: &str| seen.get(&(i, tier.to_owned())).cloned().unwrap_or_default();
    let (o, s) = (io.0 as usize, is.0 as usize);
    use Kind::*;

    // Outage: 12 bad of 60 per minute from day 12 10:00 for 40 minutes. At minute 10:x the 1 h
    // window (61 minutes, 3660 events) holds 12(x + 1) bad.
    // page_fast (1h/5m > 14.4, i.e. > 1.44% errors): 12(x + 1)/3660 > 0.0144 <=> x + 1 > 4.39,
    // so the condition first holds at minute 10:04 -> Pending; `for: 2m` -> Firing at 10:06.
    // It resolves when the 5 m window (minutes [M - 5, M]) is clean: 10:40..10:45, at 10:45.
    assert_eq!(
        get(o, "page_fast"),
        vec![
            (at(12, 10, 4), Pending),
            (at(12, 10, 6), Firing),
            (at(12, 10, 45), Quiet)
        ]
    );
    // page_slow (6h/30m > 6, > 0.6%): 12(x + 1)/21660 > 0.006 <=> x + 1 > 10.83: 10:10.
    // The 30 m window (31 minutes) holds >= one bad minute (12/1860 = 0.645% > 0.6%) while it
    // reaches back to 10:39: up to minute 11:09; quiet at 11:10.
    assert_eq!(
        get(o, "page_slow"),
        vec![(at(12, 10, 10), Firing), (at(12, 11, 10), Quiet)]
    );
    // ticket_fast (1d/2h > 3, > 0.3%): the 1 d window at minute 10:x starts at yesterday's
    // 10:(x - x mod 10), so it is 1440 + (x mod 10) + 1 minutes: at 10:20, 1441 minutes = 86460
    // events with 252 bad (0.2915%); at 10:21, 1442 minutes = 86520 events with 264 bad
    // (0.3051%) -> fires at 10:21. The 2 h window (121 minutes) needs > 21.78 bad, two bad
    // minutes: the last two (10:38, 10:39) leave it at 12:39.
    assert_eq!(
        get(o, "ticket_fast"),
        vec![(at(12, 10, 21), Firing), (at(12, 12, 39), Quiet)]
    );
    // ticket_slow (3d/6h > 1, > 0.1%): the 3 d window at 10:20 is 4321 minutes (259260 events,
    // 252 bad < 259.26), at 10:21 4322 minutes (259320 events, 264 bad > 259.32) -> 10:21. The
    // 6 h window (361 minutes) needs > 21.66 bad: two bad minutes, until 16:38; quiet at 16:39.
    assert_eq!(
        get(o, "ticket_slow"),
        vec![(at(12, 10, 21), Firing), (at(12, 16, 39), Quiet)]
    );

    // Slow burn: 5 bad per 1000 (burn 5) from day 5 00:00 to day 9 00:00. Page tiers need 14.4 and
    // 6: never. ticket_fast needs the 1 d window above 0.3%: after j+1 burn minutes (evaluation
    // minute j) the window spans W = 1440 + (j mod 10) + 1 minutes, and 5(j+1) > 0.003 x 1000 W.
    // j = 860: W = 1441, 4305 <= 4323; j = 869: W = 1450, 4350 = 4350, a tie, which is not above
    // the factor (see `BURN_TIE_EPSILON`); j = 870: W = 1441, 4355 > 4323 -> fires at 14:30.
    assert_eq!(
        get(s, "ticket_fast"),
        vec![(burn_start + 870, Firing), (burn_end + 48, Quiet)],
        "ticket_fast"
    );
    // It resolves when the 2 h window (121 minutes, 121000 events) has at most 363 bad, 72 bad
    // minutes: at burn_end + t it holds 120 - t, so at burn_end + 48. ticket_slow needs
    // 5(j+1) > W with W = 4320 + (j mod 10) + 1: j = 864: 4325 = 4325, a tie; j = 865:
    // 4330 > 4326 -> 14:25; its 6 h window (361 minutes, at most 361 bad) holds 360 - t bad
    // minutes, 72 at burn_end + 288.
    assert_eq!(
        get(s, "ticket_slow"),
        vec![(burn_start + 865, Firing), (burn_end + 288, Quiet)]
    );
    assert!(get(s, "page_fast").is_empty() && get(s, "page_slow").is_empty());

    // Low traffic: burn 500 everywhere, but the 3 d window holds 432 events < 1000.
    let q = iq.0 as usize;
    for tier in ["page_fast", "page_slow", "ticket_fast", "ticket_slow"] {
        assert!(
            get(q, tier).is_empty(),
            "{tier} left Quiet: {:?}",
            get(q, tier)
        );
    }
    assert!(low_traffic_conditions_blocked > 0);

    // End of the month: the 30 d window (721 hour buckets, from the one holding T0 - 1 ms) is
    // the whole replay: 2,592,000 events, 480 bad. Budget 0.1% x 43200 min = 43.2 min; the outage
    // spent 40 min x 20% = 8 min. The first event was at T0, so the window is covered but for
    // its first millisecond.
    let r = final_report.expect("evaluated");
    assert_eq!(
        (r.window.total, r.window.total - r.window.good),
        (2_592_000, 480)
    );
    let month_ms = 30.0 * DAY_MINS as f64 * MIN as f64;
    assert_eq!(r.window.coverage, (month_ms - 1.0) / month_ms);
    assert!((r.budget.total_minutes - 43.2).abs() < 1e-9);
    assert!(
        (r.budget.remaining_minutes - 35.2).abs() < 1e-6,
        "{}",
        r.budget.remaining_minutes
    );
    let burn = 480.0 / 2_592_000.0 / 0.001;
    assert!((r.budget.remaining - (1.0 - r.window.coverage * burn)).abs() < 1e-12);
    // The last hour is clean: no exhaustion in sight.
    assert_eq!(r.time_to_exhaustion, None);

    // The 1 m page: the 1 h window (61 minutes, about 366 checks) needs > 1.44% failed, 6 failed
    // checks: the 6th is 03:01:25, so it fires at 03:01:30. Its 1 m window is minutes [M - 1, M]:
    // at 03:02:00, with no check yet in minute 03:02, it still holds the 6 failed checks of
    // 03:01 (the old one-bucket window was empty there and resolved the page mid-outage). It
    // resolves when minutes [M - 1, M] are clean: the last failed check is 03:02:25, so at
    // 03:04:00, after the outage ended at 03:02:30. One firing, one resolve.
    let ms = |h: i64, m: i64, s: i64| T0 + at(20, h, m) * MIN + s * 1000;
    assert_eq!(page, vec![(ms(3, 1, 30), true), (ms(3, 4, 0), false)]);
}
