//! Latency sketches in time tiers (1 m x 60, 10 m x 36, 1 h x 72, 1 d x (window days + 1)) for
//! the p50/p90/p95/p99 of latency SLIs. Percentiles are approximate (DDSketch, 1% relative
//! accuracy); the good/bad classification that drives budgets never uses them.
//!
//! Empty buckets are `None` (one pointer), so a quiet SLO costs little; a bucket's sketch is
//! allocated on its first observation (once per bucket, not per event).

use std::fmt;

use serde::{Deserialize, Serialize};
use sketches_ddsketch::{Config, DDSketch};

use crate::slo::ring::{Place, Ring};
use crate::slo::tiers::{SKETCH_FINE_LEN, SKETCH_RES, first_bucket_at_or_after};
use crate::time::{Dur, Timestamp};

/// One sketch bucket: `None` until it receives an observation.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct SketchSlot(pub Option<Box<DDSketch>>);

impl fmt::Debug for SketchSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(s) => write!(f, "Sketch(n={})", s.count()),
            None => f.write_str("Empty"),
        }
    }
}

/// Percentiles of the latencies (seconds) observed in a window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencyQuantiles {
    /// Observations merged.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

/// The four sketch tiers of one latency SLO.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LatencyTiers {
    rings: [Ring<SketchSlot>; 4],
}

impl LatencyTiers {
    /// Tiers whose daily ring holds `days` days (window days + 1).
    pub fn new(days: usize) -> LatencyTiers {
        LatencyTiers {
            rings: [
                Ring::new(SKETCH_RES[0], SKETCH_FINE_LEN[0]),
                Ring::new(SKETCH_RES[1], SKETCH_FINE_LEN[1]),
                Ring::new(SKETCH_RES[2], SKETCH_FINE_LEN[2]),
                Ring::new(SKETCH_RES[3], days),
            ],
        }
    }

    /// Number of days the daily ring holds.
    pub fn days(&self) -> usize {
        self.rings[3].len()
    }

    /// Changes the daily ring's length, keeping the newest days.
    pub fn resize_days(&mut self, days: usize) {
        self.rings[3].resize(days);
    }

    /// Adds one finite, non-negative latency (checked by the caller) to every tier.
    #[inline]
    pub fn add(&mut self, t: Timestamp, secs: f64) {
        for r in &mut self.rings {
            match r.place(t) {
                Place::Slot(s) => r
                    .slot_mut(s)
                    .0
                    .get_or_insert_with(|| Box::new(DDSketch::new(Config::defaults())))
                    .add(secs),
                Place::Late => r.note_late(1),
                Place::Negative => {}
            }
        }
    }

    /// Moves every tier's head to `t`.
    pub fn advance(&mut self, t: Timestamp) {
        for r in &mut self.rings {
            r.advance(t);
        }
    }

    /// Percentiles over the buckets of the finest tier covering `[start, now]`, at that tier's
    /// resolution (`None` when no observation falls in it).
    pub fn quantiles(&self, start: Timestamp, now: Timestamp) -> Option<LatencyQuantiles> {
        let tier = (0..4)
            .find(|&i| {
                let r = SKETCH_RES[i].millis() as i64;
                first_bucket_at_or_after(start, r)
                    > now.0.div_euclid(r) - self.rings[i].len() as i64
            })
            .unwrap_or(3);
        let ring = &self.rings[tier];
        let r = SKETCH_RES[tier].millis() as i64;
        let first = first_bucket_at_or_after(start, r);
        let mut merged = DDSketch::new(Config::defaults());
        for slot in ring.range(first - 1, now.0.div_euclid(r)) {
            if let Some(s) = &slot.0 {
                // Every sketch is built with Config::defaults(), so merging cannot meet a config
                // mismatch; a bucket that did (a foreign checkpoint) is left out rather than fail.
                let _ = merged.merge(s);
            }
        }
        let count = merged.count() as u64;
        if count == 0 {
            return None;
        }
        let q = |p: f64| match merged.quantile(p) {
            Ok(Some(v)) if v.is_finite() => v,
            _ => 0.0,
        };
        Some(LatencyQuantiles {
            count,
            p50: q(0.5),
            p90: q(0.9),
            p95: q(0.95),
            p99: q(0.99),
        })
    }

    /// Rough heap bytes: slots plus allocated sketches (each counted by its bin count).
    pub fn approx_bytes(&self) -> usize {
        self.rings
            .iter()
            .flat_map(|r| r.iter())
            .map(|s| {
                std::mem::size_of::<SketchSlot>()
                    + s.0
                        .as_ref()
                        .map_or(0, |k| std::mem::size_of::<DDSketch>() + 8 * k.length())
            })
            .sum()
    }
}

/// The daily ring length for a window of `len`: whole days, plus one for a period that does not
/// start at UTC midnight.
pub fn sketch_days(len: Dur) -> usize {
    len.millis().div_ceil(Dur::DAY.millis()) as usize + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_within_accuracy() {
        let mut t = LatencyTiers::new(31);
        // 1000 latencies 1 ms .. 1000 ms spread over 3 hours.
        for i in 0..1000i64 {
            t.add(Timestamp(i * 10_800), (i + 1) as f64 / 1000.0);
        }
        let now = Timestamp(3 * 3_600_000);
        t.advance(now);
        let q = t.quantiles(Timestamp(0), now).unwrap();
        assert_eq!(q.count, 1000);
        for (got, exact) in [(q.p50, 0.5), (q.p90, 0.9), (q.p95, 0.95), (q.p99, 0.99)] {
            assert!((got - exact).abs() / exact < 0.02, "{got} vs {exact}");
        }
        // The last hour only (1 m tier holds 60 minutes): observations 667..=1000 roughly.
        let q = t.quantiles(Timestamp(2 * 3_600_000), now).unwrap();
        assert!(q.count > 300 && q.count < 340, "{}", q.count);
        assert!(
            t.quantiles(now.add(Dur::HOUR), now.add(Dur::HOUR))
                .is_none()
        );
    }
}
