//! Timeslice accumulation: the current slice's good/total counts and the judgement of each slice
//! once time has passed its end.
//!
//! A closed slice becomes ONE event at its last millisecond. Ratio, probe and latency-threshold
//! slices are good iff `good x 10^6 >= target_ppm x total` (the target kept to one part per
//! million, so the comparison is exact integer arithmetic); latency-percentile slices are good iff
//! `good >= percentile.rank(total)` where `good` counts observations at or under the threshold.
//! Empty slices follow the SLO's no-data policy.

use serde::{Deserialize, Serialize};

use crate::rules::model::{NoDataPolicy, Percentile};

/// How a non-empty slice is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SliceJudge {
    /// Good iff `good x 10^6 >= ppm x total`.
    Ratio {
        /// The slice target in parts per million (0, 10^6].
        ppm: u64,
    },
    /// Good iff `good >= percentile.rank(total)`.
    Percentile(
        /// Percentile in ppm (see [`Percentile`]).
        u32,
    ),
}

impl SliceJudge {
    /// The judge for a ratio-like slice target in (0, 1].
    pub fn ratio(target: f64) -> SliceJudge {
        let ppm = (target * 1_000_000.0).round().clamp(1.0, 1_000_000.0) as u64;
        SliceJudge::Ratio { ppm }
    }

    /// Judges a non-empty slice.
    pub fn is_good(self, good: u64, total: u64) -> bool {
        match self {
            SliceJudge::Ratio { ppm } => good as u128 * 1_000_000 >= ppm as u128 * total as u128,
            SliceJudge::Percentile(ppm) => {
                let rank = (ppm as u128 * total as u128).div_ceil(1_000_000) as u64;
                good >= rank
            }
        }
    }

    /// From a model percentile.
    pub fn percentile(p: Percentile) -> SliceJudge {
        SliceJudge::Percentile(p.ppm())
    }
}

/// The open slice of an SLO.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SliceAcc {
    /// Slice length in ms.
    pub slice_ms: i64,
    /// Index of the open slice, once any time has been seen.
    pub cur: Option<i64>,
    /// Good events in the open slice.
    pub good: u64,
    /// Events in the open slice.
    pub total: u64,
    /// Events refused because their slice had already been judged.
    pub late_dropped: u64,
}

impl SliceAcc {
    /// A fresh accumulator for slices of `slice_ms` (at least 1).
    pub fn new(slice_ms: u64) -> SliceAcc {
        SliceAcc {
            slice_ms: slice_ms.max(1) as i64,
            cur: None,
            good: 0,
            total: 0,
            late_dropped: 0,
        }
    }

    /// Closes every slice before the one containing `t` (`t >= 0`), calling `emit(last_ms,
    /// good)` for each judged slice, oldest first. Empty slices are emitted per `no_data`, but
    /// none older than `fill_span_ms` before the new slice's start (older ones could not be stored).
    pub fn roll(
        &mut self,
        t: i64,
        judge: SliceJudge,
        no_data: NoDataPolicy,
        fill_span_ms: i64,
        mut emit: impl FnMut(i64, bool),
    ) {
        let s = t.div_euclid(self.slice_ms);
        let Some(cur) = self.cur else {
            self.cur = Some(s);
            return;
        };
        if s <= cur {
            return;
        }
        let last_ms = |k: i64| (k + 1) * self.slice_ms - 1;
        if self.total > 0 {
            emit(last_ms(cur), judge.is_good(self.good, self.total));
        } else if let Some(g) = empty_slice(no_data) {
            emit(last_ms(cur), g);
        }
        if let Some(g) = empty_slice(no_data) {
            let oldest = s - fill_span_ms.div_euclid(self.slice_ms) - 1;
            for k in (cur + 1).max(oldest)..s {
                emit(last_ms(k), g);
            }
        }
        self.cur = Some(s);
        self.good = 0;
        self.total = 0;
    }

    /// Adds events to the open slice (after [`SliceAcc::roll`] to `t`). Events of an already
    /// judged slice are dropped and counted; returns whether they were taken.
    pub fn add(&mut self, t: i64, good: u64, total: u64) -> bool {
        let s = t.div_euclid(self.slice_ms);
        if self.cur != Some(s) {
            self.late_dropped = self.late_dropped.saturating_add(total);
            return false;
        }
        self.good = self.good.saturating_add(good);
        self.total = self.total.saturating_add(total);
        true
    }
}

/// The verdict for an empty slice under a no-data policy (`None`: record nothing).
pub fn empty_slice(no_data: NoDataPolicy) -> Option<bool> {
    match no_data {
        NoDataPolicy::Ignore => None,
        NoDataPolicy::Good => Some(true),
        NoDataPolicy::Bad => Some(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judges() {
        let j = SliceJudge::ratio(0.99);
        assert!(j.is_good(99, 100));
        assert!(!j.is_good(98, 100));
        let p = SliceJudge::percentile(Percentile::from_percent(95.0).unwrap());
        assert!(p.is_good(95, 100));
        assert!(!p.is_good(95, 101));
        assert!(p.is_good(1, 1));
    }

    #[test]
    fn rolls_and_fills() {
        let mut a = SliceAcc::new(10);
        let j = SliceJudge::ratio(0.5);
        let mut out = Vec::new();
        a.roll(5, j, NoDataPolicy::Bad, 1000, |t, g| out.push((t, g)));
        assert!(a.add(5, 1, 2));
        a.roll(42, j, NoDataPolicy::Bad, 1000, |t, g| out.push((t, g)));
        assert_eq!(out, vec![(9, true), (19, false), (29, false), (39, false)]);
        assert!(!a.add(39, 1, 1));
        assert_eq!(a.late_dropped, 1);
        out.clear();
        a.roll(1000, j, NoDataPolicy::Ignore, 1000, |t, g| out.push((t, g)));
        assert!(out.is_empty());
        // Fill limited to the span.
        a.roll(2000, j, NoDataPolicy::Good, 50, |t, g| out.push((t, g)));
        assert_eq!(out.first(), Some(&(1009, true)));
        assert_eq!(
            out.iter().map(|o| o.0).collect::<Vec<_>>(),
            vec![1009, 1949, 1959, 1969, 1979, 1989, 1999]
        );
    }
}
