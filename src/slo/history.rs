//! Time series of one SLO read from its count buckets, for charts and scripts
//! (`GET /api/v1/slos/{service}/{slo}/history`): the events (or, for a timeslice SLO, the
//! slices) good and bad in each step, the error budget burning down over the range, and the
//! burn rate over each alert window at the end of each step.
//!
//! Exact at the resolution of the bucket tier that holds the range (1 m up to 6 h, 10 m up to
//! 3 d, 1 h beyond): a step is a whole number of buckets and steps are aligned to multiples of
//! the step since the Unix epoch, so a point is the plain sum of its buckets, with nothing
//! interpolated. A burn-rate series is given for each alert window that is a whole number of
//! steps; at a point whose window reaches back past what the tier holds it is `None`.
//!
//! Pure: counts in, series out; the engine passes its rings and the instant.

use crate::slo::ring::Counts;
use crate::slo::tiers::{COUNT_RES, TierLayout};
use crate::time::{Dur, Timestamp};

/// Most points one answer holds; a finer step over a long range is refused with the finest step
/// that fits.
pub const MAX_POINTS: u64 = 2_000;

/// Points an answer holds when no step is asked for (about; the step is rounded up to whole
/// buckets).
pub const DEFAULT_POINTS: u64 = 240;

/// What is asked: the range ending now, and the step (`None`: about [`DEFAULT_POINTS`] points).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryQuery {
    /// How far back from now.
    pub range: Dur,
    /// The length of one point; a whole number of the tier's buckets.
    pub step: Option<Dur>,
}

/// Why a history cannot be given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    /// The range is zero.
    #[error("`range` must be more than 0, e.g. 30d")]
    EmptyRange,
    /// The SLO's buckets do not reach back that far.
    #[error("`range` {asked} is longer than this SLO keeps ({held}); ask for at most {held}")]
    RangeTooLong {
        /// What was asked.
        asked: Dur,
        /// What the SLO's coarsest tier holds.
        held: Dur,
    },
    /// The step is not a whole number of the tier's buckets.
    #[error(
        "`step` {step} is not a whole number of this range's {resolution} buckets; use a multiple of {resolution}"
    )]
    StepNotWhole {
        /// What was asked.
        step: Dur,
        /// The resolution of the tier that holds the range.
        resolution: Dur,
    },
    /// Too many points.
    #[error(
        "`step` {step} gives {points} points over {range}, more than {max}; use a step of at least {finest}"
    )]
    TooManyPoints {
        /// What was asked.
        step: Dur,
        /// The range.
        range: Dur,
        /// Points that would be.
        points: u64,
        /// [`MAX_POINTS`].
        max: u64,
        /// The finest step that fits.
        finest: Dur,
    },
}

/// One step: `[start, end)`, with what it counted (the first step may start before the buckets
/// held, which then count nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    /// Start of the step (inclusive).
    pub start: Timestamp,
    /// End of the step (exclusive; the last step ends after now).
    pub end: Timestamp,
    /// Events (or slices) in the step.
    pub total: u64,
    /// Bad events (or slices) in the step.
    pub bad: u64,
}

/// The series of one SLO.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    /// The bucket width the points are summed from.
    pub resolution: Dur,
    /// The step.
    pub step: Dur,
    /// The points, oldest first; the first starts at or before `now - range`, the last holds now.
    pub points: Vec<Point>,
    /// Error budget left at the end of each point (a burn-down): the range's budget is
    /// `budget x` all its events, and each point spends its bad events from it,
    /// `1 - coverage x bad so far / (budget x total)`, with `coverage` the share of the range after
    /// the first collection, as the engine's budget figures count (so the last point equals the
    /// SLO's `budget_remaining` when the range is its window). 1 without events.
    pub budget_remaining: Vec<f64>,
    /// Per alert window that is a whole number of steps: the burn rate over the window ending at
    /// each point's end, `coverage x bad / total / budget` as the engine's tiers count it
    /// (`Some(0.0)` without events; `None` where the window reaches back past the buckets held).
    pub burn_rates: Vec<(Dur, Vec<Option<f64>>)>,
}

/// The tier and step a query reads, or why it cannot be read.
pub fn plan(layout: &TierLayout, q: HistoryQuery) -> Result<(usize, Dur), HistoryError> {
    if q.range.millis() == 0 {
        return Err(HistoryError::EmptyRange);
    }
    if !layout.holds(q.range) {
        let held = Dur(layout.span(2).millis() - COUNT_RES[2].millis());
        return Err(HistoryError::RangeTooLong {
            asked: q.range,
            held,
        });
    }
    let tier = layout.rolling_tier(q.range);
    let res = COUNT_RES[tier];
    let buckets = q.range.millis().div_ceil(res.millis());
    let step = match q.step {
        Some(s) => {
            if s.millis() == 0 || s.millis() % res.millis() != 0 {
                return Err(HistoryError::StepNotWhole {
                    step: s,
                    resolution: res,
                });
            }
            s
        }
        None => Dur(buckets.div_ceil(DEFAULT_POINTS).max(1) * res.millis()),
    };
    let points = q.range.millis().div_ceil(step.millis()) + 1;
    if points > MAX_POINTS {
        let finest = Dur(buckets.div_ceil(MAX_POINTS - 1).max(1) * res.millis());
        return Err(HistoryError::TooManyPoints {
            step,
            range: q.range,
            points,
            max: MAX_POINTS,
            finest,
        });
    }
    Ok((tier, step))
}

/// What [`read`] reads: the plan's resolution and step, the range up to `now`, and the SLO's
/// figures the derived series need.
#[derive(Debug, Clone, Copy)]
pub struct Reading<'a> {
    /// The width of the tier's buckets (bucket `k` covers `[k x res, (k + 1) x res)`).
    pub res: Dur,
    /// The step, a whole number of buckets.
    pub step: Dur,
    /// How far back from now.
    pub range: Dur,
    /// Now.
    pub now: Timestamp,
    /// The SLO's error budget ratio.
    pub budget: f64,
    /// The SLO's alert windows.
    pub windows: &'a [Dur],
    /// The SLO's first collection (coverage counts from it).
    pub first_collection: Option<Timestamp>,
}

/// The history of the counts in the tier's buckets, read with `bucket(k)`: `None` for a bucket
/// the tier no longer holds.
pub fn read(at: &Reading<'_>, bucket: impl Fn(i64) -> Option<Counts>) -> History {
    let Reading {
        res,
        step,
        range,
        now,
        budget,
        windows,
        first_collection,
    } = *at;
    // The share of `[from, to)` after the first collection: before it nothing was data, and
    // budget figures count the bad events seen against the budget of the whole span, as the
    // engine's reports do.
    let coverage = |from: i64, to: i64| -> f64 {
        let Some(f) = first_collection else {
            return 0.0;
        };
        let to = to.min(now.0);
        if to <= from {
            return if f.0 <= to { 1.0 } else { 0.0 };
        }
        (to.saturating_sub(f.0.max(from)) as f64 / (to - from) as f64).clamp(0.0, 1.0)
    };
    let r = res.millis() as i64;
    let s = step.millis() as i64;
    let per_step = s / r;
    let last = now.0.div_euclid(s);
    let first = (now.0 - range.millis() as i64).div_euclid(s);
    // Each step's counts (of the buckets held), and whether every bucket of it is held.
    let step_counts = |j: i64| -> (Counts, bool) {
        let mut c = Counts::default();
        let mut whole = true;
        for k in j * per_step..(j + 1) * per_step {
            // Buckets after now hold nothing yet.
            if k * r > now.0 {
                break;
            }
            match bucket(k) {
                Some(b) => c.add(b),
                None => whole = false,
            }
        }
        (c, whole)
    };
    let longest = windows
        .iter()
        .filter(|w| w.millis() % step.millis() == 0)
        .map(|w| (w.millis() / step.millis()) as i64)
        .max()
        .unwrap_or(0);
    // Every step from the oldest the longest whole window reads to now's.
    let steps: Vec<(Counts, bool)> = (first - longest..=last).map(step_counts).collect();
    let offset = longest as usize;
    let points: Vec<Point> = (first..=last)
        .zip(&steps[offset..])
        .map(|(j, (c, _))| Point {
            start: Timestamp(j * s),
            end: Timestamp((j + 1) * s),
            total: c.total,
            bad: c.bad,
        })
        .collect();
    // The budget of the range is fixed by all its events (scaled to the whole range by its
    // coverage); each point spends its bad events from it.
    let range_total = points.iter().fold(0u64, |t, p| t.saturating_add(p.total));
    let range_coverage = coverage(now.0 - range.millis() as i64, now.0);
    let mut budget_remaining = Vec::with_capacity(points.len());
    let mut bad = 0u64;
    for p in &points {
        bad = bad.saturating_add(p.bad);
        budget_remaining.push(1.0 - range_coverage * burn(bad, range_total, budget));
    }
    let mut burn_rates = Vec::new();
    for w in windows {
        if w.millis() % step.millis() != 0 {
            continue;
        }
        let n = (w.millis() / step.millis()) as usize;
        let series = (0..points.len())
            .map(|i| {
                let end = offset + i + 1;
                let mut c = Counts::default();
                for (x, whole) in &steps[end.checked_sub(n)?..end] {
                    if !whole {
                        return None;
                    }
                    c.add(*x);
                }
                let to = points[i].end.0;
                Some(coverage(to - w.millis() as i64, to) * burn(c.bad, c.total, budget))
            })
            .collect();
        burn_rates.push((*w, series));
    }
    History {
        resolution: res,
        step,
        points,
        budget_remaining,
        burn_rates,
    }
}

/// `bad / total / budget`, 0 without events.
fn burn(bad: u64, total: u64, budget: f64) -> f64 {
    if total == 0 {
        0.0
    } else {
        bad as f64 / total as f64 / budget
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(days: u64) -> TierLayout {
        let slo = crate::rules::load_str(
            "t.yaml",
            &format!(
                "version: burnwatch/v1\nservice: s\nslos:\n  - name: a\n    objective: 99\n    window: {days}d\n    indicator:\n      ratio:\n        bad: 'x{{c=\"1\"}}'\n        total: x\n"
            ),
        )
        .expect("rules");
        TierLayout::for_slo(slo.slos().next().expect("slo"))
    }

    #[test]
    fn the_tier_is_the_finest_that_holds_the_range_and_steps_are_whole_buckets() {
        let l = layout(30);
        let q = |range: u64, step: Option<u64>| HistoryQuery {
            range: Dur::from_mins(range),
            step: step.map(Dur::from_mins),
        };
        assert_eq!(plan(&l, q(60, Some(1))), Ok((0, Dur::MINUTE)));
        assert_eq!(plan(&l, q(24 * 60, Some(10))), Ok((1, Dur::from_mins(10))));
        assert_eq!(plan(&l, q(30 * 24 * 60, None)), Ok((2, Dur::from_hours(3))));
        assert_eq!(
            plan(&l, q(24 * 60, Some(5))),
            Err(HistoryError::StepNotWhole {
                step: Dur::from_mins(5),
                resolution: Dur::from_mins(10)
            })
        );
        assert!(matches!(
            plan(&l, q(60 * 24 * 60, None)),
            Err(HistoryError::RangeTooLong { .. })
        ));
        // 90 days of hours are 2,161 points: refused, with the finest step that fits.
        assert_eq!(
            plan(&layout(90), q(90 * 24 * 60, Some(60))),
            Err(HistoryError::TooManyPoints {
                step: Dur::HOUR,
                range: Dur::from_days(90),
                points: 2_161,
                max: MAX_POINTS,
                finest: Dur::from_hours(2),
            })
        );
    }

    #[test]
    fn points_budget_and_burn_rates_follow_the_buckets() {
        // 1-minute buckets, 10 events a minute, minute 30 all bad.
        let bucket = |k: i64| {
            (k >= 0).then_some(Counts {
                total: 10,
                bad: if k == 30 { 10 } else { 0 },
            })
        };
        let h = read(
            &Reading {
                res: Dur::MINUTE,
                step: Dur::from_mins(5),
                range: Dur::from_mins(60),
                now: Timestamp(60 * 60_000 + 1),
                budget: 0.01,
                windows: &[Dur::from_mins(5), Dur::from_mins(7), Dur::from_mins(30)],
                first_collection: Some(Timestamp(0)),
            },
            bucket,
        );
        // Steps [0, 5m) ... [60m, 65m): 13 points, the last holding one bucket so far.
        assert_eq!(h.points.len(), 13);
        assert_eq!(h.points[6].bad, 10);
        assert_eq!(h.points[12].total, 10);
        // Budget: 10 bad of 610 events at a 1% budget.
        let last = *h.budget_remaining.last().expect("points");
        assert!(
            (last - (1.0 - 10.0 / (0.01 * 610.0))).abs() < 1e-12,
            "{last}"
        );
        // 5m and 30m are whole steps; 7m is not.
        let windows: Vec<Dur> = h.burn_rates.iter().map(|(w, _)| *w).collect();
        assert_eq!(windows, [Dur::from_mins(5), Dur::from_mins(30)]);
        let five = &h.burn_rates[0].1;
        assert_eq!(five[6], Some(10.0 / 50.0 / 0.01));
        assert_eq!(five[7], Some(0.0));
        // The 30m window before minute 30 reaches before the first bucket: not held.
        let thirty = &h.burn_rates[1].1;
        assert_eq!(thirty[0], None);
        assert_eq!(thirty[6], Some(10.0 / 300.0 / 0.01));
    }
}
