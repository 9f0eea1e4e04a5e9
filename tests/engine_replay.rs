//! A month of synthetic traffic replayed minute by minute through the engine, with the exact
//! evaluation minute of every alert transition derived by hand from the burn-rate math.
//!
//! Traffic is aggregated per minute and recorded with `record_counts` at the minute's start;
//! the engine is evaluated at the minute's last millisecond, so "minute M" below means the
//! evaluation that includes minute M's traffic. The 1 m tier serves windows up to 6 h, the 10 m
//! tier 1 d and 3 d (whose oldest bucket is partial: the window is buckets (K-n, K] at 10 m, i.e.
//! 143 or 431 whole buckets plus the minutes of the current one), the 1 h tier 30 d.

use std::collections::BTreeMap;

use burnwatch::alert::lifecycle::{Lifecycle, Params, State};
use burnwatch::rules::model::{
    Alerting, BudgetingMethod, Indicator, Labels, NoDataPolicy, Objective, Slo, SloId, Window,
    default_tiers,
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
    for m in 0..30 * DAY_MINS {
        let ts = Timestamp(T0 + m * MIN);
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

    // Outage: 12 bad of 60 per minute from day 12 10:00 for 40 minutes. After m outage minutes
    // the 1 h window (60 whole minutes, 3600 events) holds 12m bad.
    // page_fast (1h/5m > 14.4, i.e. > 1.44% errors): 12m/3600 > 0.0144 <=> m > 4.32, so the
    // condition first holds with m = 5, at minute 10:04 -> Pending; `for: 2m` -> Firing at 10:06.
    // It resolves when the 5 m window is clean: minutes 10:40..10:44, i.e. at 10:44.
    assert_eq!(
        get(o, "page_fast"),
        vec![
            (at(12, 10, 4), Pending),
            (at(12, 10, 6), Firing),
            (at(12, 10, 44), Quiet)
        ]
    );
    // page_slow (6h/30m > 6, > 0.6%): 12m/21600 > 0.006 <=> m > 10.8: m = 11 at 10:10.
    // The 30 m window holds >= one bad minute (12/1800 = 0.67% > 0.6%) while it reaches back to
    // 10:39: up to minute 11:08; quiet at 11:09.
    assert_eq!(
        get(o, "page_slow"),
        vec![(at(12, 10, 10), Firing), (at(12, 11, 9), Quiet)]
    );
    // ticket_fast (1d/2h > 3, > 0.3%): the 1 d window at minute 10:(m-1) is 143 whole 10 m
    // buckets (from yesterday 10:30) plus 10:20..10:(m-1): at 10:20 that is 1431 minutes =
    // 85860 events with 252 bad (0.2935%); at 10:21, 1432 minutes = 85920 events with 264 bad
    // (0.3073%) -> fires at 10:21. The 2 h window needs > 21.6 bad, two bad minutes: the last two
    // (10:38, 10:39) leave it at 12:38.
    assert_eq!(
        get(o, "ticket_fast"),
        vec![(at(12, 10, 21), Firing), (at(12, 12, 38), Quiet)]
    );
    // ticket_slow (3d/6h > 1, > 0.1%): the 3 d window at 10:20 is 4311 minutes (258660 events,
    // 252 bad < 258.66), at 10:21 4312 minutes (258720 events, 264 bad > 258.72) -> 10:21. The
    // 6 h window needs > 21.6 bad: two bad minutes, until 16:37; quiet at 16:38.
    assert_eq!(
        get(o, "ticket_slow"),
        vec![(at(12, 10, 21), Firing), (at(12, 16, 38), Quiet)]
    );

    // Slow burn: 5 bad per 1000 (burn 5) from day 5 00:00 to day 9 00:00. Page tiers need 14.4 and
    // 6: never. ticket_fast needs the 1 d window above 0.3%: after j+1 burn minutes (evaluation
    // minute j) the window spans 1430 + (j mod 10) + 1 minutes W, and 5(j+1) > 0.003 x 1000 W.
    // j = 859: W = 1440, 4300 <= 4320; j = 860: W = 1431, 4305 > 4293 -> fires at 14:20.
    assert_eq!(
        get(s, "ticket_fast"),
        vec![(burn_start + 860, Firing), (burn_end + 47, Quiet)],
        "ticket_fast"
    );
    // It resolves when the 2 h window (120000 events) has at most 360 bad, 72 bad minutes:
    // minute burn_end + 47 (73 bad minutes at +46: 365 > 360). At +47 the burn is exactly 3, a
    // tie, which is not above the factor (see `BURN_TIE_EPSILON`). ticket_slow needs 5(j+1) > W with
    // W = 4310 + (j mod 10) + 1: j = 861: 4310 <= 4312; j = 862: 4315 > 4313 -> 14:22; its 6 h
    // window (360000 events) drops to 72 bad minutes at burn_end + 287.
    assert_eq!(
        get(s, "ticket_slow"),
        vec![(burn_start + 862, Firing), (burn_end + 287, Quiet)]
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

    // End of the month: the 30 d window (720 hour buckets) is the whole replay: 2,592,000 events,
    // 480 bad. Budget 0.1% x 43200 min = 43.2 min; the outage spent 40 min x 20% = 8 min.
    let r = final_report.expect("evaluated");
    assert_eq!(
        (r.window.total, r.window.total - r.window.good),
        (2_592_000, 480)
    );
    assert!((r.budget.total_minutes - 43.2).abs() < 1e-9);
    assert!(
        (r.budget.remaining_minutes - 35.2).abs() < 1e-9,
        "{}",
        r.budget.remaining_minutes
    );
    assert!((r.budget.remaining - (1.0 - 480.0 / 2_592_000.0 / 0.001)).abs() < 1e-12);
    // The last hour is clean: no exhaustion in sight.
    assert_eq!(r.time_to_exhaustion, None);
}
