//! The SLO history (`/api/v1/slos/{service}/{slo}/history`) against a brute-force model: random
//! event streams into the engine, and every point, budget figure and burn rate of the history
//! recounted from the raw events (the events of `[start, end)` up to now; the budget spent point
//! by point against all the range's events, scaled by the range's coverage since the first
//! event; a burn rate over the window's whole steps, scaled by its coverage, `None` when the
//! steps reach back past what the tier holds).

use burnwatch::rules::model::{Slo, Window};
use burnwatch::slo::Engine;
use burnwatch::slo::history::{HistoryError, HistoryQuery};
use burnwatch::time::{Dur, Timestamp};
use proptest::prelude::*;

const MIN: i64 = 60_000;
const DAY: i64 = 24 * 60 * MIN;

fn slo() -> Slo {
    crate::engine_model::slo(
        "history",
        99.0,
        Window::Rolling(Dur::from_days(30)),
        crate::engine_model::probe(),
    )
}

/// Events `(at, bad)` in `[from, to)`.
fn count(events: &[(i64, bool)], from: i64, to: i64) -> (u64, u64) {
    let inside = events.iter().filter(|(t, _)| *t >= from && *t < to);
    let total = inside.clone().count() as u64;
    let bad = inside.filter(|(_, b)| *b).count() as u64;
    (total, bad)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn history_recounts_from_the_raw_events(
        // Offsets back from now (ms, up to 4 days), bad or not.
        raw in prop::collection::vec((0i64..4 * DAY, prop::bool::weighted(0.2)), 0..300),
        now_offset in 0i64..DAY,
        query in prop::sample::select(vec![
            (60u64, Some(1u64)), (60, Some(5)), (6 * 60 - 1, Some(1)), (24 * 60, Some(10)),
            (24 * 60, Some(60)), (3 * 24 * 60 - 10, None), (7 * 24 * 60, Some(60)),
            (30 * 24 * 60, None),
        ]),
    ) {
        let now = 100 * DAY + now_offset;
        let mut events: Vec<(i64, bool)> = raw.iter().map(|(back, bad)| (now - back, *bad)).collect();
        events.sort();
        let mut engine = Engine::new();
        let s = slo();
        let idx = engine.add_slo(&s);
        for (t, bad) in &events {
            engine.record(idx, Timestamp(*t), !bad).expect("record");
        }
        let (range_mins, step_mins) = query;
        let q = HistoryQuery {
            range: Dur::from_mins(range_mins),
            step: step_mins.map(Dur::from_mins),
        };
        let h = engine
            .history(idx, Timestamp(now), q)
            .expect("the SLO exists")
            .expect("a range the SLO holds");
        let step = h.step.millis() as i64;
        if let Some(m) = step_mins {
            prop_assert_eq!(step, m as i64 * MIN);
        }
        // Points tile [now - range, now] on multiples of the step.
        let first = h.points.first().expect("points");
        prop_assert!(first.start.0 <= now - range_mins as i64 * MIN);
        prop_assert!(first.start.0 + step > now - range_mins as i64 * MIN);
        prop_assert!(h.points.last().expect("points").start.0 <= now);
        prop_assert!(h.points.last().expect("points").end.0 > now);
        // The share of [from, to] after the first event (the first collection).
        let first_event = events.first().map(|e| e.0);
        let coverage = |from: i64, to: i64| -> f64 {
            let Some(f) = first_event else { return 0.0 };
            let to = to.min(now);
            if to <= from {
                return if f <= to { 1.0 } else { 0.0 };
            }
            ((to - f.max(from)) as f64 / (to - from) as f64).clamp(0.0, 1.0)
        };
        let range_total: u64 = h.points.iter().map(|p| p.total).sum();
        let range_coverage = coverage(now - range_mins as i64 * MIN, now);
        let mut bad = 0u64;
        for (i, p) in h.points.iter().enumerate() {
            prop_assert_eq!(p.start.0 % step, 0);
            prop_assert_eq!(p.end.0 - p.start.0, step);
            // Events at or before now: the engine holds every one within the range's tier.
            let (t, b) = count(&events, p.start.0, p.end.0.min(now + 1));
            prop_assert_eq!((p.total, p.bad), (t, b), "point {} [{}, {})", i, p.start.0, p.end.0);
            bad += b;
            let want = if range_total == 0 {
                1.0
            } else {
                1.0 - range_coverage * bad as f64 / (0.01 * range_total as f64)
            };
            prop_assert!((h.budget_remaining[i] - want).abs() < 1e-9);
        }
        // Burn rates: the windows that are whole steps, recounted over their steps.
        for (w, series) in &h.burn_rates {
            prop_assert_eq!(w.millis() as i64 % step, 0);
            let held_from = {
                // The tier that holds the range holds its own span back from now's bucket.
                let res = h.resolution.millis() as i64;
                let len = engine.layout(idx).expect("layout").lens
                    [[MIN, 10 * MIN, 60 * MIN].iter().position(|r| *r == res).expect("a tier")]
                    as i64;
                (now.div_euclid(res) - len + 1) * res
            };
            for (i, got) in series.iter().enumerate() {
                let end = h.points[i].end.0;
                let from = end - w.millis() as i64;
                if from < held_from {
                    prop_assert_eq!(*got, None, "window {} at point {}", w, i);
                    continue;
                }
                let (t, b) = count(&events, from, end.min(now + 1));
                let want = if t == 0 { 0.0 } else { coverage(from, end) * b as f64 / t as f64 / 0.01 };
                let got = got.expect("held");
                prop_assert!((got - want).abs() < 1e-9, "window {} at point {}: {} != {}", w, i, got, want);
            }
        }
        // The default tiers' windows that are whole steps all have a series.
        let whole: Vec<Dur> = [5u64, 30, 60, 120, 360, 1440, 4320]
            .iter()
            .map(|m| Dur::from_mins(*m))
            .filter(|w| w.millis() as i64 % step == 0)
            .collect();
        let got: Vec<Dur> = h.burn_rates.iter().map(|(w, _)| *w).collect();
        prop_assert_eq!(got, whole);
    }
}

#[test]
fn bad_queries_say_what_would_do() {
    let mut engine = Engine::new();
    let idx = engine.add_slo(&slo());
    let now = Timestamp(100 * DAY);
    let ask = |e: &mut Engine, range: Dur, step: Option<Dur>| {
        e.history(idx, now, HistoryQuery { range, step })
            .expect("the SLO exists")
            .map_err(|e| e.to_string())
    };
    assert_eq!(
        ask(&mut engine, Dur::from_days(31), None).err().as_deref(),
        Some("`range` 31d is longer than this SLO keeps (30d); ask for at most 30d")
    );
    assert_eq!(
        ask(&mut engine, Dur::from_days(1), Some(Dur::from_mins(5)))
            .err()
            .as_deref(),
        Some("`step` 5m is not a whole number of this range's 10m buckets; use a multiple of 10m")
    );
    assert!(matches!(
        engine.history(
            idx,
            now,
            HistoryQuery {
                range: Dur(0),
                step: None
            }
        ),
        Some(Err(HistoryError::EmptyRange))
    ));
    assert!(
        engine
            .history(
                burnwatch::slo::SloIdx(7),
                now,
                HistoryQuery {
                    range: Dur::HOUR,
                    step: None
                }
            )
            .is_none()
    );
    // An SLO without events: every point empty, the budget whole.
    let h = ask(&mut engine, Dur::from_days(30), None).expect("history");
    assert_eq!(h.step, Dur::from_hours(3));
    assert!(h.points.iter().all(|p| p.total == 0));
    assert!(h.budget_remaining.iter().all(|r| *r == 1.0));
}
