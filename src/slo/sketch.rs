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

/// The four sketch tiers of one latency SLO, plus a write-combining head for the current minute.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LatencyTiers {
    rings: [Ring<SketchSlot>; 4],
    /// Observations of the newest minute, merged into the rings when the minute changes or a
    /// reader needs them ([`LatencyTiers::flush`]). Adding to one sketch instead of four (one
    /// logarithm, one bin) is what keeps latency ingest cheap. Never serialized: callers flush
    /// before a checkpoint.
    #[serde(skip)]
    head: Option<SketchHead>,
}

/// The pending observations of one minute.
#[derive(Clone)]
struct SketchHead {
    /// Index of the minute (`t / SKETCH_RES[0]`).
    minute: i64,
    sketch: DDSketch,
}

impl fmt::Debug for SketchHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SketchHead(minute={}, n={})",
            self.minute,
            self.sketch.count()
        )
    }
}

fn new_sketch() -> DDSketch {
    DDSketch::new(Config::defaults())
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
            head: None,
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

    /// Adds one finite, non-negative latency (checked by the caller): into the head when it holds
    /// the same minute; a newer minute flushes the head first; an older one (a late observation)
    /// goes to the rings directly.
    #[inline]
    pub fn add(&mut self, t: Timestamp, secs: f64) {
        if t.0 < 0 {
            return;
        }
        let minute = t.0.div_euclid(SKETCH_RES[0].millis() as i64);
        if let Some(h) = &mut self.head
            && h.minute == minute
        {
            h.sketch.add(secs);
            return;
        }
        self.add_slow(t, minute, secs);
    }

    #[cold]
    #[inline(never)]
    fn add_slow(&mut self, t: Timestamp, minute: i64, secs: f64) {
        if self.head.as_ref().is_some_and(|h| minute < h.minute) {
            for r in &mut self.rings {
                merge_into(r, t, 1, |slot| {
                    slot.get_or_insert_with(|| Box::new(new_sketch())).add(secs)
                });
            }
            return;
        }
        self.flush();
        let mut sketch = new_sketch();
        sketch.add(secs);
        self.head = Some(SketchHead { minute, sketch });
    }

    /// Merges the head into every tier and empties it.
    pub fn flush(&mut self) {
        let Some(h) = self.head.take() else {
            return;
        };
        let t = Timestamp(h.minute * SKETCH_RES[0].millis() as i64);
        let n = h.sketch.count() as u64;
        // Coarse tiers merge a copy; the finest tier takes the sketch itself when its slot is
        // empty (the usual case: the head covers the whole minute).
        let (finest, coarse) = self.rings.split_at_mut(1);
        for r in coarse {
            merge_into(r, t, n, |slot| match slot {
                Some(existing) => merge(existing, &h.sketch),
                None => *slot = Some(Box::new(h.sketch.clone())),
            });
        }
        let sketch = h.sketch;
        merge_into(&mut finest[0], t, n, move |slot| match slot {
            Some(existing) => merge(existing, &sketch),
            None => *slot = Some(Box::new(sketch)),
        });
    }

    /// Flushes the head and moves every tier's head to `t`.
    pub fn advance(&mut self, t: Timestamp) {
        self.flush();
        for r in &mut self.rings {
            r.advance(t);
        }
    }

    /// Percentiles over the buckets of the finest tier covering `[start, now]`, at that tier's
    /// resolution (`None` when no observation falls in it). Observations still in the head are
    /// not seen: readers [`advance`](LatencyTiers::advance) or [`flush`](LatencyTiers::flush) first.
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

    /// Rough heap bytes: slots plus allocated sketches (each counted by its bin count), and the
    /// head.
    pub fn approx_bytes(&self) -> usize {
        self.head.as_ref().map_or(0, |h| {
            std::mem::size_of::<SketchHead>() + 8 * h.sketch.length()
        }) + self
            .rings
            .iter()
            .flat_map(|r| r.iter())
            .map(|s| {
                std::mem::size_of::<SketchSlot>()
                    + s.0
                        .as_ref()
                        .map_or(0, |k| std::mem::size_of::<DDSketch>() + 8 * k.length())
            })
            .sum::<usize>()
    }
}

/// Applies `f` to the slot of `t` in `r`, or counts `n` late observations.
fn merge_into(
    r: &mut Ring<SketchSlot>,
    t: Timestamp,
    n: u64,
    f: impl FnOnce(&mut Option<Box<DDSketch>>),
) {
    match r.place(t) {
        Place::Slot(s) => f(&mut r.slot_mut(s).0),
        Place::Late => r.note_late(n),
        Place::Negative => {}
    }
}

fn merge(into: &mut DDSketch, from: &DDSketch) {
    // Every sketch is built with Config::defaults(), so merging cannot meet a config mismatch; a
    // sketch that did (a foreign checkpoint) keeps its own observations rather than fail.
    let _ = into.merge(from);
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

    /// The write-combining head changes nothing: out-of-order and late observations across
    /// minutes give exactly the quantiles of one sketch fed every observation directly.
    #[test]
    fn head_merges_equal_direct_sketch() {
        let mut t = LatencyTiers::new(2);
        let mut direct = new_sketch();
        let mut n = 0u64;
        // Minutes 0..10 in the order 3, 1, 3, 7, 2, 7, 0, 9 (late, equal and newer minutes).
        for (k, m) in [3i64, 1, 3, 7, 2, 7, 0, 9].into_iter().enumerate() {
            for j in 0..50 {
                let secs = 0.001 * ((k as f64 + 1.0) * 7.0 + j as f64 * 13.0);
                t.add(Timestamp(m * 60_000 + j), secs);
                direct.add(secs);
                n += 1;
            }
        }
        let now = Timestamp(10 * 60_000);
        t.advance(now);
        let q = t.quantiles(Timestamp(0), now).expect("observations");
        assert_eq!(q.count, n);
        for (p, got) in [(0.5, q.p50), (0.9, q.p90), (0.95, q.p95), (0.99, q.p99)] {
            let want = direct.quantile(p).expect("valid").expect("non-empty");
            assert_eq!(got, want, "p{p}");
        }
        // Minute 7 alone: 100 observations, whether they went through the head or not.
        let q = t.quantiles(Timestamp(7 * 60_000), Timestamp(7 * 60_000 + 59_999));
        assert_eq!(q.expect("observations").count, 100);
    }
}
