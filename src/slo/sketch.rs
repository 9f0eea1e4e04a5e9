//! Latency sketches in time tiers (5 m x 36, 1 h x 72, 1 d x (window days + 1)) for the
//! p50/p90/p95/p99 of latency SLIs. Percentiles are approximate (DDSketch, 1% relative
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

/// Number of sketch tiers.
const TIERS: usize = SKETCH_RES.len();

/// The sketch tiers of one latency SLO, each with a write-combining head.
///
/// An observation goes into one sketch only: the head of the finest tier (one logarithm, one
/// bin). When a newer bucket starts, the finished head moves into its ring slot and is merged
/// into the head of the next tier, which in turn settles when its own bucket ends. So a 5 m
/// bucket costs one merge, not one per tier, and no tier re-reads another. Readers call
/// [`LatencyTiers::advance`] or [`LatencyTiers::flush`] first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LatencyTiers {
    rings: [Ring<SketchSlot>; TIERS],
    /// Pending buckets per tier; never serialized (callers flush before a checkpoint).
    #[serde(skip)]
    heads: [Option<SketchHead>; TIERS],
}

/// The pending observations of one bucket of one tier.
#[derive(Clone)]
struct SketchHead {
    /// Index of the bucket (`t / SKETCH_RES[tier]`).
    bucket: i64,
    sketch: Box<DDSketch>,
}

impl fmt::Debug for SketchHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SketchHead(bucket={}, n={})",
            self.bucket,
            self.sketch.count()
        )
    }
}

fn new_sketch() -> DDSketch {
    DDSketch::new(Config::defaults())
}

fn res_ms(tier: usize) -> i64 {
    SKETCH_RES[tier].millis() as i64
}

impl LatencyTiers {
    /// Tiers whose daily ring holds `days` days (window days + 1).
    pub fn new(days: usize) -> LatencyTiers {
        LatencyTiers {
            rings: [
                Ring::new(SKETCH_RES[0], SKETCH_FINE_LEN[0]),
                Ring::new(SKETCH_RES[1], SKETCH_FINE_LEN[1]),
                Ring::new(SKETCH_RES[2], days),
            ],
            heads: Default::default(),
        }
    }

    /// Number of days the daily ring holds.
    pub fn days(&self) -> usize {
        self.rings[TIERS - 1].len()
    }

    /// Changes the daily ring's length, keeping the newest days.
    pub fn resize_days(&mut self, days: usize) {
        self.flush();
        self.rings[TIERS - 1].resize(days);
    }

    /// Adds one finite, non-negative latency (checked by the caller): into the finest head when
    /// it holds the same bucket; a newer bucket settles the head first; an older one (a late
    /// observation) goes to the rings directly.
    #[inline]
    pub fn add(&mut self, t: Timestamp, secs: f64) {
        if t.0 < 0 {
            return;
        }
        let bucket = t.0.div_euclid(res_ms(0));
        if let Some(h) = &mut self.heads[0]
            && h.bucket == bucket
        {
            h.sketch.add(secs);
            return;
        }
        self.add_slow(t, bucket, secs);
    }

    #[cold]
    #[inline(never)]
    fn add_slow(&mut self, t: Timestamp, bucket: i64, secs: f64) {
        if self.heads[0].as_ref().is_some_and(|h| bucket < h.bucket) {
            for r in &mut self.rings {
                merge_into(r, t, 1, |slot| {
                    slot.get_or_insert_with(|| Box::new(new_sketch())).add(secs)
                });
            }
            return;
        }
        if let Some(h) = self.heads[0].take() {
            self.settle(0, h);
        }
        let mut sketch = Box::new(new_sketch());
        sketch.add(secs);
        self.heads[0] = Some(SketchHead { bucket, sketch });
    }

    /// Puts a finished head of `tier` into its ring slot and carries its observations to the
    /// coarser tiers: merged into their head when it holds the same bucket, else starting it (an
    /// older coarse head settles first).
    fn settle(&mut self, tier: usize, h: SketchHead) {
        let t = Timestamp(h.bucket * res_ms(tier));
        let n = h.sketch.count() as u64;
        if tier + 1 < TIERS {
            let up = t.0.div_euclid(res_ms(tier + 1));
            match &mut self.heads[tier + 1] {
                Some(next) if next.bucket == up => merge(&mut next.sketch, &h.sketch),
                Some(next) if next.bucket > up => {
                    // Only after a flush can a finer head be older than a coarser one; its
                    // observations then go to the coarser rings directly.
                    for r in &mut self.rings[tier + 1..] {
                        merge_into(r, t, n, |slot| put(slot, &h.sketch));
                    }
                }
                next => {
                    let fresh = SketchHead {
                        bucket: up,
                        sketch: h.sketch.clone(),
                    };
                    if let Some(old) = next.replace(fresh) {
                        self.settle(tier + 1, old);
                    }
                }
            }
        }
        let sketch = h.sketch;
        merge_into(&mut self.rings[tier], t, n, move |slot| match slot {
            Some(existing) => merge(existing, &sketch),
            None => *slot = Some(sketch),
        });
    }

    /// Settles every head, finest first, so the rings hold every observation.
    pub fn flush(&mut self) {
        for tier in 0..TIERS {
            if let Some(h) = self.heads[tier].take() {
                self.settle(tier, h);
            }
        }
    }

    /// Flushes the heads and moves every tier's head to `t`.
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
        let tier = (0..TIERS)
            .find(|&i| {
                let r = SKETCH_RES[i].millis() as i64;
                first_bucket_at_or_after(start, r)
                    > now.0.div_euclid(r) - self.rings[i].len() as i64
            })
            .unwrap_or(TIERS - 1);
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
        self.heads
            .iter()
            .flatten()
            .map(|h| std::mem::size_of::<SketchHead>() + 8 * h.sketch.length())
            .sum::<usize>()
            + self
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

/// Merges `from` into the slot's sketch, or puts a copy there.
fn put(slot: &mut Option<Box<DDSketch>>, from: &DDSketch) {
    match slot {
        Some(existing) => merge(existing, from),
        None => *slot = Some(Box::new(from.clone())),
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

    /// Feeds `(t, secs)` pairs to tiers (then advances to `now`) and to one direct sketch per
    /// query range, and checks that every range's quantiles are exactly the direct sketch's.
    fn check_against_direct(events: &[(i64, f64)], now: i64, ranges: &[(i64, i64)]) {
        let mut t = LatencyTiers::new(4);
        for &(ts, secs) in events {
            t.add(Timestamp(ts), secs);
        }
        t.advance(Timestamp(now));
        for &(lo, hi) in ranges {
            let mut direct = new_sketch();
            events
                .iter()
                .filter(|&&(ts, _)| ts >= lo && ts <= hi)
                .for_each(|&(_, secs)| direct.add(secs));
            let q = t
                .quantiles(Timestamp(lo), Timestamp(hi))
                .expect("observations");
            assert_eq!(q.count, direct.count() as u64, "range {lo}..={hi}");
            for (p, got) in [(0.5, q.p50), (0.9, q.p90), (0.95, q.p95), (0.99, q.p99)] {
                let want = direct.quantile(p).expect("valid").expect("non-empty");
                assert_eq!(got, want, "p{p} over {lo}..={hi}");
            }
        }
    }

    /// The write-combining heads change nothing: out-of-order and late observations across
    /// 5-minute buckets give exactly the quantiles of one sketch fed them directly.
    #[test]
    fn heads_equal_direct_sketch_within_hours() {
        const B: i64 = 300_000;
        let mut events = Vec::new();
        // Buckets in the order 3, 1, 3, 7, 2, 7, 0, 9 (late, equal and newer buckets).
        for (k, b) in [3i64, 1, 3, 7, 2, 7, 0, 9].into_iter().enumerate() {
            for j in 0..50 {
                events.push((
                    b * B + j * 1000,
                    0.001 * ((k + 1) * 7 + j as usize * 13) as f64,
                ));
            }
        }
        // The whole span, and bucket 7 alone (100 observations, through the head or not).
        check_against_direct(&events, 10 * B, &[(0, 10 * B), (7 * B, 8 * B - 1)]);
    }

    /// Across hours and days: coarse heads settle into their rings when their bucket ends, and a
    /// flush in between (a reader) does not lose or double anything.
    #[test]
    fn heads_equal_direct_sketch_across_days() {
        const H: i64 = 3_600_000;
        let mut events = Vec::new();
        let mut x = 7u64;
        for i in 0..3000i64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            // Mostly forward in time over 3 days, every 10th observation 1-5 hours late.
            let mut ts = i * 86;
            ts *= 1000;
            if i % 10 == 0 {
                ts = (ts - ((x >> 40) % 5 + 1) as i64 * H).max(0);
            }
            events.push((ts, 0.001 + ((x >> 33) % 5000) as f64 / 1000.0));
        }
        let now = 3000 * 86_000;
        let mut ranges = vec![(0, now)];
        ranges.extend((0..3).map(|d| (d * 24 * H, (d + 1) * 24 * H - 1)));
        ranges.push((70 * H, now));
        check_against_direct(&events, now, &ranges);
        // Same events with a flush (an evaluation) every 500 observations.
        let mut t = LatencyTiers::new(4);
        let mut plain = LatencyTiers::new(4);
        for (i, &(ts, secs)) in events.iter().enumerate() {
            t.add(Timestamp(ts), secs);
            plain.add(Timestamp(ts), secs);
            if i % 500 == 0 {
                t.flush();
            }
        }
        t.advance(Timestamp(now));
        plain.advance(Timestamp(now));
        for &(lo, hi) in &ranges {
            assert_eq!(
                t.quantiles(Timestamp(lo), Timestamp(hi)),
                plain.quantiles(Timestamp(lo), Timestamp(hi))
            );
        }
    }
}
