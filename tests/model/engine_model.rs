//! Model-based tests of the SLO engine: random event streams against a brute-force model that
//! keeps every raw event and recounts each window from scratch, with the documented semantics
//! (rolling windows of `W` holding every bucket that overlaps `[now - W, now]`, calendar windows
//! at tier resolution, counter increments with resets, timeslice judgements, no-data policies
//! from the first collection on, coverage and the figures it scales, alert conditions and
//! `for`), plus checkpoint round trips and calendar edge cases.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use burnwatch::rules::model::{
    Alerting, BudgetingMethod, BurnTier, CalendarUnit, Indicator, Labels, LatencySource,
    NoDataPolicy, Objective, Percentile, RatioNumerator, Slo, SloId, Window, default_tiers,
};
use burnwatch::rules::selector::Selector;
use burnwatch::slo::{Engine, EngineCheckpoint, SloIdx, SloReport, TierLayout, WindowReport};
use burnwatch::storage;
use burnwatch::time::{Dur, Timestamp};
use proptest::prelude::*;

const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const RES: [i64; 3] = [MIN, 10 * MIN, HOUR];

fn zoned_ms(s: &str) -> i64 {
    let z: jiff::Zoned = s.parse().expect("valid zoned literal");
    z.timestamp().as_millisecond()
}

fn calendar(unit: CalendarUnit, tz: &str) -> Window {
    Window::Calendar {
        unit,
        tz: jiff::tz::TimeZone::get(tz).expect("known zone"),
        tz_name: tz.to_owned(),
    }
}

/// An occurrences SLO of service `model` with the default tiers for its window.
pub(crate) fn slo(name: &str, objective: f64, window: Window, indicator: Indicator) -> Slo {
    Slo {
        id: SloId {
            service: "model".into(),
            slo: name.into(),
        },
        description: None,
        labels: Labels::new(),
        objective: Objective::from_percent(objective).expect("valid objective"),
        alerting: Alerting {
            tiers: default_tiers(&window),
            ..Alerting::default()
        },
        window,
        method: BudgetingMethod::Occurrences,
        indicator,
        no_data: NoDataPolicy::Ignore,
        group: None,
    }
}

pub(crate) fn probe() -> Indicator {
    Indicator::ProbeAvailability { probe: "p".into() }
}

fn custom_tier(name: &str, long: u64, short: u64, factor: f64, for_: u64) -> BurnTier {
    BurnTier {
        name: name.into(),
        severity: "page".into(),
        long: Dur::from_mins(long),
        short: Dur::from_mins(short),
        factor,
        for_: Dur::from_mins(for_),
        keep_firing_for: Dur(0),
        labels: Labels::new(),
        annotations: Labels::new(),
    }
}

/// The eight SLOs every stream drives.
fn slos() -> Vec<Slo> {
    let mut a = slo(
        "rolling30d",
        99.0,
        Window::Rolling(Dur::from_days(30)),
        probe(),
    );
    a.alerting.tiers.push(custom_tier("odd", 97, 7, 2.0, 13));
    a.alerting.min_events = 20;
    let b = slo(
        "month_berlin",
        95.0,
        calendar(CalendarUnit::Month, "Europe/Berlin"),
        probe(),
    );
    let mut c = slo(
        "week_ny",
        90.0,
        calendar(CalendarUnit::Week, "America/New_York"),
        probe(),
    );
    c.no_data = NoDataPolicy::Bad;
    let mut d = slo(
        "slices5m",
        99.0,
        Window::Rolling(Dur::from_days(7)),
        probe(),
    );
    d.method = BudgetingMethod::Timeslices {
        slice: Dur::from_mins(5),
        target: 0.9,
    };
    d.no_data = NoDataPolicy::Bad;
    let e = slo(
        "latency_quarter",
        99.5,
        calendar(CalendarUnit::Quarter, "Europe/Berlin"),
        Indicator::LatencyThreshold {
            threshold: Dur(300),
            source: LatencySource::Probe { probe: "p".into() },
        },
    );
    let mut f = slo(
        "counters2d",
        99.9,
        Window::Rolling(Dur::from_days(2)),
        Indicator::Ratio {
            numerator: RatioNumerator::Bad,
            numerator_selector: Arc::new(Selector::parse("errors_total").expect("valid selector")),
            total: Arc::new(Selector::parse("requests_total").expect("valid selector")),
        },
    );
    f.no_data = NoDataPolicy::Good;
    let mut g = slo(
        "p90slices",
        98.0,
        Window::Rolling(Dur::from_days(1)),
        Indicator::LatencyPercentile {
            percentile: Percentile::from_percent(90.0).expect("valid"),
            threshold: Dur(250),
            source: LatencySource::Probe { probe: "p".into() },
        },
    );
    g.method = BudgetingMethod::Timeslices {
        slice: Dur::MINUTE,
        target: 0.98,
    };
    g.no_data = NoDataPolicy::Good;
    // A half-hour zone: period starts fall inside an hour bucket.
    let h = slo(
        "month_kolkata",
        99.0,
        calendar(CalendarUnit::Month, "Asia/Kolkata"),
        probe(),
    );
    vec![a, b, c, d, e, f, g, h]
}

#[derive(Debug, Clone)]
enum Op {
    /// One good/bad event to the event SLOs (a, b, c, d), `back` ms before the clock.
    Event { good: bool, back: i64 },
    /// A pre-aggregated batch to the event SLOs.
    Batch { good: u64, total: u64, back: i64 },
    /// A latency (seconds, possibly invalid) to the latency SLOs (e, g).
    Latency { secs: f64, back: i64 },
    /// A counter scrape for f: per series (id, value or None when absent).
    Scrape {
        bad: Vec<(u64, f64)>,
        total: Vec<(u64, f64)>,
    },
    /// Evaluate everything at the clock, `back` ms before it.
    Evaluate { back: i64 },
    /// Checkpoint, encode, decode, restore into a fresh engine and compare reports.
    Checkpoint,
}

fn op() -> impl Strategy<Value = (i64, Op)> {
    let step = prop_oneof![
        6 => 0i64..(5 * MIN),
        3 => 0i64..(2 * HOUR),
        1 => 0i64..(4 * 24 * HOUR),
    ];
    let back = prop_oneof![8 => Just(0i64), 2 => 0i64..(8 * HOUR)];
    let counter = || {
        prop::collection::vec(
            (
                0u64..4,
                prop_oneof![
                    9 => (0u32..5000).prop_map(f64::from),
                    1 => Just(f64::NAN),
                    1 => Just(-3.0),
                ],
            ),
            0..4,
        )
    };
    let op = prop_oneof![
        4 => (any::<bool>(), back.clone()).prop_map(|(good, back)| Op::Event { good, back }),
        3 => (0u64..50, 0u64..50, back.clone()).prop_map(|(good, total, back)| Op::Batch { good, total, back }),
        3 => (prop_oneof![
                9 => 0.0f64..0.6,
                1 => Just(f64::NAN),
                1 => Just(f64::INFINITY),
                1 => Just(-0.1),
            ], back.clone())
            .prop_map(|(secs, back)| Op::Latency { secs, back }),
        2 => (counter(), counter()).prop_map(|(bad, total)| Op::Scrape { bad, total }),
        3 => back.prop_map(|back| Op::Evaluate { back }),
        1 => Just(Op::Checkpoint),
    ];
    (step, op)
}

/// Brute-force model of one SLO.
#[derive(Default)]
struct Model {
    /// Latest instant seen by the SLO (ingest or evaluation).
    latest: Option<i64>,
    /// Occurrence events `(ts, good, total)`; for timeslice SLOs, the accepted raw observations.
    events: Vec<(i64, u64, u64)>,
    /// Timestamp of the first collection (first ingest or scrape, in arrival order).
    first: Option<i64>,
    /// First slice index (timeslice SLOs): slices are judged from the first collection on.
    first_slice: Option<i64>,
    /// The open slice (timeslice SLOs).
    cur_slice: Option<i64>,
    /// Counter trackers (f): id -> last value, per numerator and total.
    bad_series: BTreeMap<u64, f64>,
    total_series: BTreeMap<u64, f64>,
}

fn threshold_secs(s: &Slo) -> f64 {
    match &s.indicator {
        Indicator::LatencyThreshold { threshold, .. }
        | Indicator::LatencyPercentile { threshold, .. } => threshold.millis() as f64 / 1000.0,
        _ => unreachable!("latency SLOs only"),
    }
}

fn slice_ms(s: &Slo) -> Option<i64> {
    match &s.method {
        BudgetingMethod::Timeslices { slice, .. } => Some(slice.millis() as i64),
        BudgetingMethod::Occurrences => None,
    }
}

impl Model {
    /// Moves the open slice forward to the slice of `t` (once collected).
    fn roll(&mut self, s: &Slo, t: i64) {
        if let Some(sl) = slice_ms(s)
            && self.first.is_some()
        {
            let k = t.div_euclid(sl);
            self.first_slice.get_or_insert(k);
            self.cur_slice = Some(self.cur_slice.map_or(k, |c| c.max(k)));
        }
    }

    /// Time moves to `t` (an evaluation): slices roll to the newest instant seen.
    fn see(&mut self, s: &Slo, t: i64) {
        if self.latest.is_none_or(|l| t > l) {
            self.latest = Some(t);
        }
        let latest = self.latest.expect("just set");
        self.roll(s, latest);
    }

    /// A collection at `t` (a scrape, or any ingest).
    fn collect(&mut self, t: i64) {
        self.first.get_or_insert(t);
    }

    fn ingest(&mut self, s: &Slo, ts: i64, good: u64, total: u64) {
        let good = good.min(total);
        self.collect(ts);
        if self.latest.is_none_or(|l| ts > l) {
            self.latest = Some(ts);
        }
        if let Some(sl) = slice_ms(s) {
            // An observation for a slice that time has already left is dropped.
            self.roll(s, ts);
            if self.cur_slice == Some(ts.div_euclid(sl)) {
                self.events.push((ts, good, total));
            }
        } else {
            self.events.push((ts, good, total));
        }
    }

    /// Share of `[from, now]` after the first collection.
    fn coverage(&self, from: i64, now: i64) -> f64 {
        let Some(first) = self.first else {
            return 0.0;
        };
        if now - from <= 0 {
            return if first <= now { 1.0 } else { 0.0 };
        }
        ((now - first.max(from)) as f64 / (now - from) as f64).clamp(0.0, 1.0)
    }

    fn counter_delta(series: &mut BTreeMap<u64, f64>, samples: &[(u64, f64)]) -> f64 {
        let mut seen = BTreeSet::new();
        let mut delta = 0.0;
        for &(id, v) in samples {
            seen.insert(id);
            if !(v.is_finite() && v >= 0.0) {
                continue;
            }
            match series.get(&id) {
                None => {
                    series.insert(id, v);
                }
                Some(&last) => {
                    delta += if v >= last { v - last } else { v };
                    series.insert(id, v);
                }
            }
        }
        series.retain(|id, _| seen.contains(id));
        delta
    }

    /// The judged events `(ts, good, total)` the windows are made of.
    fn judged(&self, s: &Slo, now: i64) -> Vec<(i64, u64, u64)> {
        let Some(sl) = slice_ms(s) else {
            return self.events.clone();
        };
        let Some(first) = self.first_slice else {
            return Vec::new();
        };
        let mut per: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
        for &(ts, g, t) in &self.events {
            let e = per.entry(ts.div_euclid(sl)).or_default();
            e.0 += g;
            e.1 += t;
        }
        let mut out = Vec::new();
        for k in first..now.div_euclid(sl) {
            let (g, t) = per.get(&k).copied().unwrap_or((0, 0));
            let verdict = if t == 0 {
                match s.no_data {
                    NoDataPolicy::Ignore => None,
                    NoDataPolicy::Good => Some(true),
                    NoDataPolicy::Bad => Some(false),
                }
            } else {
                Some(match (&s.indicator, &s.method) {
                    (Indicator::LatencyPercentile { percentile, .. }, _) => g >= percentile.rank(t),
                    (_, BudgetingMethod::Timeslices { target, .. }) => {
                        let ppm = (target * 1e6).round() as u128;
                        g as u128 * 1_000_000 >= ppm * t as u128
                    }
                    _ => unreachable!("timeslices only"),
                })
            };
            if let Some(v) = verdict {
                out.push(((k + 1) * sl - 1, u64::from(v), 1));
            }
        }
        out
    }
}

/// Expected counts of a window: events with bucket index in [first, k(now)] at resolution r.
fn count(events: &[(i64, u64, u64)], r: i64, first: i64, now: i64) -> (u64, u64) {
    let last = now.div_euclid(r);
    events
        .iter()
        .filter(|(ts, _, _)| {
            let k = ts.div_euclid(r);
            k >= first && k <= last
        })
        .fold((0, 0), |(g, t), &(_, eg, et)| (g + eg, t + et))
}

/// Calendar period computed through `Zoned` arithmetic (a different path from the engine's).
fn period(unit: CalendarUnit, tz: &jiff::tz::TimeZone, now: i64) -> (i64, i64) {
    let z = jiff::Timestamp::from_millisecond(now)
        .expect("in range")
        .to_zoned(tz.clone());
    let day = z.start_of_day().expect("day start");
    let (start, months, days) = match unit {
        CalendarUnit::Month => (
            day.first_of_month()
                .expect("first")
                .start_of_day()
                .expect("sod"),
            1,
            0,
        ),
        CalendarUnit::Week => {
            let mut d = day.clone();
            while d.weekday() != jiff::civil::Weekday::Monday {
                d = d
                    .yesterday()
                    .expect("yesterday")
                    .start_of_day()
                    .expect("sod");
            }
            (d, 0, 7)
        }
        CalendarUnit::Quarter => {
            let mut d = day
                .first_of_month()
                .expect("first")
                .start_of_day()
                .expect("sod");
            while !matches!(d.month(), 1 | 4 | 7 | 10) {
                d = d
                    .checked_sub(jiff::Span::new().months(1))
                    .expect("month back")
                    .start_of_day()
                    .expect("sod");
            }
            (d, 3, 0)
        }
    };
    let end = start
        .checked_add(jiff::Span::new().months(months).days(days))
        .expect("end")
        .start_of_day()
        .expect("sod");
    (
        start.timestamp().as_millisecond(),
        end.timestamp().as_millisecond(),
    )
}

#[allow(clippy::too_many_arguments)]
fn check_window(
    s: &Slo,
    m: &Model,
    got: &WindowReport,
    judged: &[(i64, u64, u64)],
    r: i64,
    first: i64,
    now: i64,
    length_ms: i64,
    coverage: f64,
) -> Result<(), TestCaseError> {
    let (g, t) = count(judged, r, first, now);
    let budget = s.objective.budget();
    prop_assert_eq!(
        (got.good, got.total),
        (g, t),
        "window {} of {}",
        got.length,
        s.id
    );
    prop_assert_eq!(got.start, Timestamp(first * r));
    prop_assert_eq!(got.resolution, Dur(r as u64));
    prop_assert_eq!(got.length, Dur(length_ms as u64));
    prop_assert_eq!(got.has_data, t > 0);
    prop_assert!(
        (got.coverage - coverage).abs() <= 1e-12,
        "coverage {} vs {} of {}",
        got.coverage,
        coverage,
        got.length
    );
    let (sli, burn) = if t > 0 {
        (g as f64 / t as f64, ((t - g) as f64 / t as f64) / budget)
    } else if m.first.is_none() {
        // Not collected yet: no data, whatever the policy.
        (1.0, 0.0)
    } else if s.no_data == NoDataPolicy::Bad {
        (0.0, 1.0 / budget)
    } else {
        (1.0, 0.0)
    };
    prop_assert!((got.sli - sli).abs() <= 1e-12, "sli {} vs {}", got.sli, sli);
    prop_assert!(
        (got.burn_rate - burn).abs() <= 1e-9 * burn.max(1.0),
        "burn {} vs {}",
        got.burn_rate,
        burn
    );
    Ok(())
}

fn all_finite(r: &SloReport) -> bool {
    let w = |w: &WindowReport| {
        w.sli.is_finite()
            && w.burn_rate.is_finite()
            && w.latency
                .as_ref()
                .is_none_or(|q| [q.p50, q.p90, q.p95, q.p99].iter().all(|v| v.is_finite()))
    };
    w(&r.window)
        && r.alert_windows.iter().all(w)
        && [
            r.budget.ratio,
            r.budget.remaining,
            r.budget.total_minutes,
            r.budget.remaining_minutes,
        ]
        .iter()
        .all(|v| v.is_finite())
        && r.tiers
            .iter()
            .all(|t| t.long_burn.is_finite() && t.short_burn.is_finite())
}

fn check_report(
    s: &Slo,
    m: &mut Model,
    layout: TierLayout,
    rep: &SloReport,
) -> Result<(), TestCaseError> {
    prop_assert!(all_finite(rep), "non-finite value in {rep:?}");
    let now = m.latest.expect("evaluated");
    prop_assert_eq!(rep.at, Timestamp(now));
    let judged = m.judged(s, now);
    // The first bucket of a rolling window: the one holding `now - W`, so that every bucket
    // overlapping `[now - W, now]` is counted (found by walking, not by the engine's formula).
    let rolling = |w: Dur| -> Result<(i64, i64), TestCaseError> {
        let tier = layout.rolling_tier(w);
        let r = RES[tier];
        prop_assert!(layout.lens[tier] as i64 * r >= w.millis() as i64 + r);
        let mut k = now.div_euclid(r);
        while k * r > now - w.millis() as i64 {
            k -= 1;
        }
        // At least the last W, at most W + 2 buckets.
        prop_assert!(now - k * r >= w.millis() as i64 && now - k * r < w.millis() as i64 + 2 * r);
        Ok((r, k))
    };
    let (len_ms, (r, first), cov) = match &s.window {
        Window::Rolling(w) => (
            w.millis() as i64,
            rolling(*w)?,
            m.coverage(now - w.millis() as i64, now),
        ),
        Window::Calendar { unit, tz, .. } => {
            let (start, end) = period(*unit, tz, now);
            let r = RES[layout.calendar_tier(Timestamp(start), Timestamp(now))];
            (
                end - start,
                (r, start.div_euclid(r) + i64::from(start.rem_euclid(r) != 0)),
                m.coverage(start, now),
            )
        }
    };
    check_window(s, m, &rep.window, &judged, r, first, now, len_ms, cov)?;
    let budget = s.objective.budget();
    // Figures that spend budget count the bad events seen against the whole window's budget.
    let spent = |w: &WindowReport| w.coverage * w.burn_rate;
    let remaining = 1.0 - spent(&rep.window);
    prop_assert!((rep.budget.remaining - remaining).abs() < 1e-12);
    let total_minutes = budget * len_ms as f64 / 60_000.0;
    prop_assert!((rep.budget.total_minutes - total_minutes).abs() < 1e-9);
    // Alert windows: distinct long/short durations, shortest first.
    let mut ws: Vec<Dur> = s
        .alerting
        .tiers
        .iter()
        .flat_map(|t| [t.long, t.short])
        .collect();
    ws.sort();
    ws.dedup();
    prop_assert_eq!(rep.alert_windows.len(), ws.len());
    for (w, got) in ws.iter().zip(&rep.alert_windows) {
        let (r, first) = rolling(*w)?;
        let cov = m.coverage(now - w.millis() as i64, now);
        check_window(s, m, got, &judged, r, first, now, w.millis() as i64, cov)?;
    }
    let find = |d: Dur| &rep.alert_windows[ws.binary_search(&d).expect("alert window")];
    // Time to exhaustion from the 1 h burn.
    let hour = spent(find(Dur::HOUR));
    let tte = if remaining <= 0.0 {
        Some(Dur(0))
    } else if hour <= 0.0 {
        None
    } else {
        Some(Dur((remaining * len_ms as f64 / hour) as u64))
    };
    prop_assert_eq!(rep.time_to_exhaustion, tte);
    for (i, t) in s.alerting.tiers.iter().enumerate() {
        let (long, short) = (find(t.long), find(t.short));
        let guard = long.total >= s.alerting.min_events
            || (s.no_data == NoDataPolicy::Bad && long.total == 0);
        // Same tie rule as the engine: above the factor by more than 1e-9 relative.
        let above = |b: f64| b > t.factor * (1.0 + 1e-9);
        let (long_burn, short_burn) = (spent(long), spent(short));
        prop_assert_eq!(rep.tiers[i].long_burn, long_burn);
        prop_assert_eq!(rep.tiers[i].short_burn, short_burn);
        let cond = above(long_burn) && above(short_burn) && guard;
        prop_assert_eq!(
            rep.tiers[i].condition,
            cond,
            "tier {} of {}",
            &t.name,
            &s.id
        );
    }
    Ok(())
}

fn fresh_engine(slos: &[Slo]) -> (Engine, Vec<SloIdx>) {
    let mut e = Engine::new();
    let idx = slos.iter().map(|s| e.add_slo(s)).collect();
    (e, idx)
}

const STARTS: [&str; 4] = [
    "2024-03-04T22:00[America/New_York]",
    "2024-10-21T05:00[Europe/Berlin]",
    "2024-02-25T12:00[Europe/Berlin]",
    "2023-12-27T17:30[Europe/Berlin]",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn engine_matches_brute_force(start in 0usize..STARTS.len(), ops in prop::collection::vec(op(), 1..160)) {
        let slos = slos();
        let (mut engine, idx) = fresh_engine(&slos);
        let mut models: Vec<Model> = slos.iter().map(|_| Model::default()).collect();
        let mut clock = zoned_ms(STARTS[start]);
        let (event_slos, latency_slos, counter_slo) = ([0usize, 1, 2, 3, 7], [4usize, 6], 5usize);
        for (step, op) in ops {
            clock += step;
            match op {
                Op::Event { good, back } => {
                    for &i in &event_slos {
                        engine.record(idx[i], Timestamp(clock - back), good).expect("valid");
                        models[i].ingest(&slos[i], clock - back, u64::from(good), 1);
                    }
                }
                Op::Batch { good, total, back } => {
                    for &i in &event_slos {
                        engine.record_counts(idx[i], Timestamp(clock - back), good, total).expect("valid");
                        models[i].ingest(&slos[i], clock - back, good, total);
                    }
                }
                Op::Latency { secs, back } => {
                    for &i in &latency_slos {
                        let r = engine.record_latency(idx[i], Timestamp(clock - back), secs);
                        let valid = secs.is_finite() && secs >= 0.0;
                        prop_assert_eq!(r.is_ok(), valid);
                        if valid {
                            let good = secs <= threshold_secs(&slos[i]);
                            models[i].ingest(&slos[i], clock - back, u64::from(good), 1);
                        }
                    }
                }
                Op::Scrape { bad, total } => {
                    let i = counter_slo;
                    let out = engine.record_counter_scrape(idx[i], Timestamp(clock), 0, &bad, &total).expect("valid");
                    let m = &mut models[i];
                    m.collect(clock);
                    let b = Model::counter_delta(&mut m.bad_series, &bad).round() as u64;
                    let t = Model::counter_delta(&mut m.total_series, &total).round() as u64;
                    let bad_events = b.min(t);
                    prop_assert_eq!((out.good, out.total), (t - bad_events, t));
                    if t > 0 {
                        m.ingest(&slos[i], clock, t - bad_events, t);
                    }
                }
                Op::Evaluate { back } => {
                    let now = clock - back;
                    let snap = engine.evaluate(Timestamp(now));
                    for (i, s) in slos.iter().enumerate() {
                        models[i].see(s, now);
                        let layout = engine.layout(idx[i]).expect("idx");
                        check_report(s, &mut models[i], layout, &snap.slos[i])?;
                    }
                }
                Op::Checkpoint => {
                    let bytes = storage::encode(&engine.checkpoint()).expect("encode");
                    let cp: EngineCheckpoint = storage::decode(&bytes).expect("decode");
                    let (mut restored, _) = fresh_engine(&slos);
                    let report = restored.restore(cp);
                    prop_assert_eq!(report.kept.len(), slos.len());
                    let a = engine.evaluate(Timestamp(clock));
                    let b = restored.evaluate(Timestamp(clock));
                    prop_assert_eq!(&a, &b);
                    for (i, s) in slos.iter().enumerate() {
                        models[i].see(s, clock);
                        let layout = engine.layout(idx[i]).expect("idx");
                        check_report(s, &mut models[i], layout, &a.slos[i])?;
                    }
                    engine = restored;
                }
            }
        }
    }
}

/// Evaluates a calendar SLO fed one good event per minute over `[from, to)` and returns the
/// report at `to - 1 ms`.
fn calendar_run(window: Window, from: &str, to: &str) -> SloReport {
    let mut s = slo("cal", 99.0, window, probe());
    s.alerting.tiers.clear();
    let mut e = Engine::new();
    let i = e.add_slo(&s);
    let (a, b) = (zoned_ms(from), zoned_ms(to));
    let mut t = a;
    while t < b {
        e.record(i, Timestamp(t), t % (7 * MIN) != 0)
            .expect("valid");
        t += MIN;
    }
    e.evaluate_slo(i, Timestamp(b - 1)).expect("idx")
}

#[test]
fn calendar_month_ends_and_leap_years() {
    let utc = || calendar(CalendarUnit::Month, "UTC");
    // Jan 31 23:59 is still January (31 days); Feb 1 00:00 starts February afresh.
    let r = calendar_run(utc(), "2024-01-31T00:00[UTC]", "2024-02-01T00:00[UTC]");
    assert_eq!(r.window.length, Dur::from_days(31));
    assert_eq!(r.window.total, 1440);
    let r = calendar_run(utc(), "2024-01-31T00:00[UTC]", "2024-02-01T00:01[UTC]");
    assert_eq!(r.window.start, Timestamp(zoned_ms("2024-02-01T00:00[UTC]")));
    assert_eq!((r.window.total, r.window.length), (1, Dur::from_days(29)));
    // Leap and common Februaries: budget minutes follow the true length (1% x 29 d / 28 d).
    assert!((r.budget.total_minutes - 0.01 * 29.0 * 1440.0).abs() < 1e-9);
    let r = calendar_run(utc(), "2023-02-27T00:00[UTC]", "2023-03-01T00:00[UTC]");
    assert_eq!(r.window.length, Dur::from_days(28));
    assert!((r.budget.total_minutes - 0.01 * 28.0 * 1440.0).abs() < 1e-9);
    // Two days of traffic, counted on the 1 h tier (the period start is 27 days back).
    assert_eq!(r.window.total, 2 * 1440);
    assert_eq!(r.window.resolution, Dur::HOUR);
}

#[test]
fn calendar_week_with_dst_changes() {
    // Berlin springs forward on Sunday 2024-03-31: that ISO week is 167 h.
    let r = calendar_run(
        calendar(CalendarUnit::Week, "Europe/Berlin"),
        "2024-03-25T00:00[Europe/Berlin]",
        "2024-04-01T00:00[Europe/Berlin]",
    );
    assert_eq!(r.window.length, Dur::from_hours(167));
    assert_eq!(r.window.total, 167 * 60);
    assert!((r.budget.total_minutes - 0.01 * 167.0 * 60.0).abs() < 1e-9);
    // New York falls back on Sunday 2024-11-03: 169 h.
    let r = calendar_run(
        calendar(CalendarUnit::Week, "America/New_York"),
        "2024-10-28T00:00[America/New_York]",
        "2024-11-04T00:00[America/New_York]",
    );
    assert_eq!(r.window.length, Dur::from_hours(169));
    assert_eq!(r.window.total, 169 * 60);
    assert!((r.budget.total_minutes - 0.01 * 169.0 * 60.0).abs() < 1e-9);
    // Good events: every minute except multiples of 7 minutes since the epoch.
    let bad = (0..169 * 60)
        .map(|k| zoned_ms("2024-10-28T00:00[America/New_York]") + k * MIN)
        .filter(|t| t % (7 * MIN) == 0)
        .count() as u64;
    assert_eq!(r.window.total - r.window.good, bad);
    let burn = (bad as f64 / (169.0 * 60.0)) / 0.01;
    assert!((r.budget.remaining - (1.0 - burn)).abs() < 1e-12);
    assert!((r.budget.remaining_minutes - (1.0 - burn) * 0.01 * 169.0 * 60.0).abs() < 1e-9);
}

#[test]
fn calendar_quarter_boundaries() {
    let q = || calendar(CalendarUnit::Quarter, "Europe/Berlin");
    // Q4 2024 in Berlin: Oct 1 to Jan 1 with the October fall-back, 92 d + 1 h.
    let r = calendar_run(
        q(),
        "2024-12-30T00:00[Europe/Berlin]",
        "2025-01-01T00:00[Europe/Berlin]",
    );
    assert_eq!(r.window.length, Dur::from_hours(92 * 24 + 1));
    assert_eq!(
        r.window.start,
        Timestamp(zoned_ms("2024-10-01T00:00[Europe/Berlin]"))
    );
    assert_eq!(r.window.total, 2 * 1440);
    assert_eq!(r.window.resolution, Dur::HOUR);
    // One minute into Q1 2025 (90 d less the March spring-forward hour): only that minute counts.
    let r = calendar_run(
        q(),
        "2024-12-31T23:00[Europe/Berlin]",
        "2025-01-01T00:01[Europe/Berlin]",
    );
    assert_eq!(r.window.length, Dur::from_hours(90 * 24 - 1));
    assert_eq!(r.window.total, 1);
    assert_eq!(r.window.resolution, Dur::MINUTE);
}

#[test]
fn reload_keeps_counts_unless_the_indicator_changes() {
    let slos = slos();
    let (mut engine, idx) = fresh_engine(&slos);
    let t0 = zoned_ms("2024-05-10T12:00[UTC]");
    for k in 0..120 {
        for &i in &idx {
            if engine.slo(i).is_some_and(|s| !s.indicator.is_latency()) {
                engine
                    .record(i, Timestamp(t0 + k * MIN), k % 5 != 0)
                    .expect("valid");
            }
        }
    }
    let before = engine.evaluate(Timestamp(t0 + 120 * MIN));
    let mut edited = slos.clone();
    // Objective, window and tiers edited: counts kept (30 d -> 10 d ring, newest buckets kept).
    edited[0].objective = Objective::from_percent(99.5).expect("valid");
    edited[0].window = Window::Rolling(Dur::from_days(10));
    edited[0].alerting.tiers.truncate(2);
    // Indicator edited: starts fresh.
    edited[1].indicator = Indicator::ProbeAvailability {
        probe: "other".into(),
    };
    // Removed: dropped.
    let removed = edited.remove(2);
    let report = engine.reload(&edited);
    assert_eq!(report.reset, vec![slos[1].id.clone()]);
    assert_eq!(report.dropped, vec![removed.id.clone()]);
    assert!(report.added.is_empty());
    assert_eq!(report.kept.len(), edited.len() - 1);
    let after = engine.evaluate(Timestamp(t0 + 120 * MIN));
    let a = engine.index_of(&slos[0].id).expect("kept");
    assert_eq!(
        after.slos[a.0 as usize].window.total,
        before.slos[0].window.total
    );
    assert_eq!(after.slos[a.0 as usize].tiers.len(), 2);
    let b = engine.index_of(&slos[1].id).expect("kept");
    assert_eq!(after.slos[b.0 as usize].window.total, 0);
    assert_eq!(engine.index_of(&removed.id), None);
    // A checkpoint survives the storage framing byte for byte.
    let bytes = storage::encode(&engine.checkpoint()).expect("encode");
    let again = storage::encode(&storage::decode::<EngineCheckpoint>(&bytes).expect("decode"))
        .expect("encode");
    assert_eq!(bytes, again);
}

/// Rolling SLOs whose windows cover every way the engine keeps a window sum: windows shorter
/// than their tier's ring (slid on reads), as long as it (whole-ring sums), one bucket short of
/// it, and off-by-one-bucket lengths on every tier.
fn rolling_slos() -> Vec<Slo> {
    let mut a = slo(
        "rolling30d_odd",
        99.0,
        Window::Rolling(Dur::from_days(30)),
        probe(),
    );
    a.alerting.tiers.extend([
        custom_tier("a", 359, 1, 2.0, 0),
        custom_tier("b", 361, 61, 1.5, 2),
        custom_tier("c", 1439, 11, 3.0, 0),
        custom_tier("d", 4320, 4319, 1.0, 0),
        custom_tier("e", 4321, 7, 1.0, 5),
    ]);
    let mut b = slo(
        "rolling90m",
        95.0,
        Window::Rolling(Dur::from_mins(90)),
        probe(),
    );
    b.alerting.tiers = vec![custom_tier("fast", 60, 5, 2.0, 0)];
    let mut c = slo(
        "rolling1d",
        99.9,
        Window::Rolling(Dur::from_days(1)),
        probe(),
    );
    c.no_data = NoDataPolicy::Bad;
    vec![a, b, c]
}

#[derive(Debug, Clone)]
enum SumOp {
    /// A batch `back` ms before the clock (late by up to more than every ring's span).
    Batch { good: u64, total: u64, back: i64 },
    /// Moves the clock forward without evaluating.
    Step(i64),
    /// Evaluates every SLO (`all`) or one, at the clock.
    Evaluate { all: bool, which: usize },
    /// Checkpoint round trip into a fresh engine, which then carries on.
    Checkpoint,
    /// Reload with the same rules (state kept, sums rebuilt).
    Reload,
}

fn sum_op() -> impl Strategy<Value = SumOp> {
    let back = prop_oneof![
        6 => Just(0i64),
        3 => 0i64..(10 * MIN),
        2 => 0i64..(8 * HOUR),
        1 => 0i64..(32 * 24 * HOUR),
    ];
    let step = prop_oneof![
        6 => 0i64..(2 * MIN),
        3 => 0i64..(3 * HOUR),
        1 => (5 * HOUR)..(7 * HOUR),
        1 => 0i64..(4 * 24 * HOUR),
        1 => 0i64..(40 * 24 * HOUR),
    ];
    prop_oneof![
        6 => (0u64..20, 0u64..20, back).prop_map(|(good, total, back)| SumOp::Batch { good, total, back }),
        3 => step.prop_map(SumOp::Step),
        4 => (any::<bool>(), 0usize..3).prop_map(|(all, which)| SumOp::Evaluate { all, which }),
        1 => Just(SumOp::Checkpoint),
        1 => Just(SumOp::Reload),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// The running window sums against the brute-force model: late and out-of-order batches,
    /// clock steps of every size between evaluations (so sums slide, fall back to a recount, or
    /// see their whole ring cleared), single and full evaluations, checkpoints and reloads.
    #[test]
    fn window_sums_match_brute_force(start in 0usize..STARTS.len(), ops in prop::collection::vec(sum_op(), 1..200)) {
        let slos = rolling_slos();
        let (mut engine, idx) = fresh_engine(&slos);
        let mut models: Vec<Model> = slos.iter().map(|_| Model::default()).collect();
        let mut clock = zoned_ms(STARTS[start]);
        for op in ops {
            match op {
                SumOp::Batch { good, total, back } => {
                    let ts = (clock - back).max(0);
                    for (i, s) in slos.iter().enumerate() {
                        engine.record_counts(idx[i], Timestamp(ts), good, total).expect("valid");
                        models[i].ingest(s, ts, good, total);
                    }
                }
                SumOp::Step(d) => clock += d,
                SumOp::Evaluate { all, which } => {
                    for (i, s) in slos.iter().enumerate() {
                        if !all && i != which {
                            continue;
                        }
                        let rep = engine.evaluate_slo(idx[i], Timestamp(clock)).expect("idx");
                        models[i].see(s, clock);
                        let layout = engine.layout(idx[i]).expect("idx");
                        check_report(s, &mut models[i], layout, &rep)?;
                    }
                }
                SumOp::Checkpoint => {
                    let bytes = storage::encode(&engine.checkpoint()).expect("encode");
                    let cp: EngineCheckpoint = storage::decode(&bytes).expect("decode");
                    let (mut restored, _) = fresh_engine(&slos);
                    restored.restore(cp);
                    engine = restored;
                }
                SumOp::Reload => {
                    let report = engine.reload(slos.iter());
                    prop_assert_eq!(report.kept.len(), slos.len());
                }
            }
        }
        let snap = engine.evaluate(Timestamp(clock));
        for (i, s) in slos.iter().enumerate() {
            models[i].see(s, clock);
            let layout = engine.layout(idx[i]).expect("idx");
            check_report(s, &mut models[i], layout, &snap.slos[i])?;
        }
    }
}
