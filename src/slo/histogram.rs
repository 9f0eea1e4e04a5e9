//! Latency percentiles of histogram-fed latency SLOs: the increases of every `le` bucket of the
//! scraped histogram, kept per time slot, and `histogram_quantile` over a window's increases.
//!
//! Owns the bucket counts only; the good/total counting of those SLOs stays the engine's
//! (exact, at the threshold's edge). Per `le` edge a [`CounterSet`] turns the scraped
//! cumulative bucket counters into increases (baselines, resets, vanished series: one place
//! for those rules); the increases are summed over the matching series into 1-minute slots for
//! the last 6 hours and 1-hour slots for up to the SLO window. A window up to 6 h reads the
//! minute slots that start in it (plus the current partial minute), a longer one the hour
//! slots, so a window is exact at that resolution, like the engine's.
//!
//! [`histogram_quantile`] is Prometheus 2.42's (`promql/quantile.go`): the buckets' counts are
//! made monotonic, the rank `q * count(+Inf)` is located, and the value is interpolated
//! linearly within its bucket (from 0 for the first bucket when its edge is positive); a rank
//! in the `+Inf` bucket gives the largest finite edge. `tests/peers/prometheus_parity.rs` compares it
//! with the real Prometheus. The state is not checkpointed: after a restart the percentiles
//! start again from the first two scrapes (the SLO's counts are restored by the engine).
//!
//! Memory: (360 + window hours) slots of one `f64` per edge at most, only for slots with
//! traffic; edges are bounded by the target's `sample_limit`. Pure: no I/O, no clock.

use std::collections::{BTreeMap, VecDeque};

use crate::slo::counter::CounterSet;
use crate::slo::sketch::LatencyQuantiles;
use crate::time::{Dur, Timestamp};

/// A bucket's upper bound, ordered as numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Le(f64);

impl Eq for Le {}

impl PartialOrd for Le {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Le {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Per-edge increases of one slot.
type Slot = (i64, BTreeMap<Le, f64>);

const MINUTE: i64 = 60_000;
const HOUR: i64 = 3_600_000;
/// Windows up to this length read the minute slots.
const FINE_SPAN: i64 = 6 * HOUR;

/// The bucket increases of one histogram-fed latency SLO.
#[derive(Debug, Clone, Default)]
pub struct HistogramWindows {
    counters: BTreeMap<Le, CounterSet>,
    minutes: VecDeque<Slot>,
    hours: VecDeque<Slot>,
    /// Hour slots kept: the longest window read, plus one.
    keep_hours: i64,
}

impl HistogramWindows {
    /// A store able to answer windows up to `longest`.
    pub fn new(longest: Dur) -> HistogramWindows {
        HistogramWindows {
            keep_hours: longest.millis().div_ceil(HOUR as u64) as i64 + 1,
            ..HistogramWindows::default()
        }
    }

    /// One scrape at `at` of `source` (a target): every bucket sample as (series id without
    /// `le`, `le`, cumulative count). Buckets of the source missing from it are forgotten (a
    /// series that comes back starts from a baseline), as for any counter.
    pub fn record(&mut self, source: u64, at: Timestamp, buckets: &[(u64, f64, f64)]) {
        let mut by_le: BTreeMap<Le, Vec<(u64, f64)>> = BTreeMap::new();
        for &(id, le, v) in buckets {
            if !le.is_nan() {
                by_le.entry(Le(le)).or_default().push((id, v));
            }
        }
        for le in self.counters.keys().copied().collect::<Vec<_>>() {
            by_le.entry(le).or_default();
        }
        let mut increases: BTreeMap<Le, f64> = BTreeMap::new();
        for (le, samples) in by_le {
            let d = self
                .counters
                .entry(le)
                .or_default()
                .scrape(source, &samples);
            if d.delta > 0.0 {
                increases.insert(le, d.delta);
            }
        }
        self.counters.retain(|_, c| !c.is_empty());
        if increases.is_empty() {
            return;
        }
        add(
            &mut self.minutes,
            at.0.div_euclid(MINUTE) * MINUTE,
            &increases,
        );
        add(&mut self.hours, at.0.div_euclid(HOUR) * HOUR, &increases);
        prune(&mut self.minutes, at.0 - FINE_SPAN - MINUTE);
        prune(&mut self.hours, at.0 - self.keep_hours * HOUR);
    }

    /// The percentiles of the observations in the window of `length` ending at `now`: `None`
    /// without observations or without a `+Inf` bucket.
    pub fn quantiles(&self, length: Dur, now: Timestamp) -> Option<LatencyQuantiles> {
        let len = length.millis() as i64;
        let (slots, unit) = if len <= FINE_SPAN {
            (&self.minutes, MINUTE)
        } else {
            (&self.hours, HOUR)
        };
        // The slots that start in the window (the current one is partial).
        let first = (now.0 - len).div_euclid(unit) * unit + unit;
        let mut sums: BTreeMap<Le, f64> = BTreeMap::new();
        for (start, incs) in slots.iter().filter(|(s, _)| *s >= first && *s <= now.0) {
            let _ = start;
            for (le, d) in incs {
                *sums.entry(*le).or_default() += d;
            }
        }
        let buckets: Vec<(f64, f64)> = sums.into_iter().map(|(le, n)| (le.0, n)).collect();
        let count = buckets.last().filter(|(le, _)| *le == f64::INFINITY)?.1;
        if count <= 0.0 {
            return None;
        }
        let q = |p| histogram_quantile(p, &buckets);
        Some(LatencyQuantiles {
            count: count.round() as u64,
            p50: q(0.5)?,
            p90: q(0.9)?,
            p95: q(0.95)?,
            p99: q(0.99)?,
        })
    }
}

fn add(slots: &mut VecDeque<Slot>, start: i64, increases: &BTreeMap<Le, f64>) {
    let slot = match slots.iter_mut().rev().find(|(s, _)| *s == start) {
        Some(s) => s,
        None => {
            // Scrapes arrive in time order per target; another target's may be a little
            // older, so the slot is inserted in order.
            let at = slots.partition_point(|(s, _)| *s < start);
            slots.insert(at, (start, BTreeMap::new()));
            &mut slots[at]
        }
    };
    for (le, d) in increases {
        *slot.1.entry(*le).or_default() += d;
    }
}

fn prune(slots: &mut VecDeque<Slot>, before: i64) {
    while slots.front().is_some_and(|(s, _)| *s < before) {
        slots.pop_front();
    }
}

/// Prometheus' `histogram_quantile(q, buckets)` over cumulative `(le, count)` buckets sorted
/// by `le` (the last one `+Inf`): `None` where Prometheus answers NaN (fewer than two buckets,
/// no `+Inf` bucket, no observations, `q` not a number), `-Inf`/`+Inf` for `q` below 0 or above 1.
pub fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    if q.is_nan() {
        return None;
    }
    if q < 0.0 {
        return Some(f64::NEG_INFINITY);
    }
    if q > 1.0 {
        return Some(f64::INFINITY);
    }
    if buckets.len() < 2 || buckets.last().is_none_or(|(le, _)| *le != f64::INFINITY) {
        return None;
    }
    // Counts that go down (scraped at slightly different times) are made monotonic.
    let mut counts: Vec<f64> = Vec::with_capacity(buckets.len());
    let mut max = f64::NEG_INFINITY;
    for (_, c) in buckets {
        max = max.max(*c);
        counts.push(max);
    }
    let total = counts[counts.len() - 1];
    if total.is_nan() || total <= 0.0 {
        return None;
    }
    let mut rank = q * total;
    let b = counts.partition_point(|c| *c < rank);
    if b == buckets.len() - 1 {
        return Some(buckets[buckets.len() - 2].0);
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return Some(buckets[0].0);
    }
    let (mut start, end, mut count) = (0.0, buckets[b].0, counts[b]);
    if b > 0 {
        start = buckets[b - 1].0;
        count -= counts[b - 1];
        rank -= counts[b - 1];
    }
    Some(start + (end - start) * (rank / count))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INF: f64 = f64::INFINITY;

    #[test]
    fn quantile_as_prometheus() {
        let b = [
            (0.1, 50.0),
            (0.25, 80.0),
            (0.5, 95.0),
            (1.0, 100.0),
            (INF, 100.0),
        ];
        // Rank 50 is the first bucket's edge.
        assert_eq!(histogram_quantile(0.5, &b), Some(0.1));
        // Rank 90: 10 of the 15 in (0.25, 0.5].
        let p90 = histogram_quantile(0.9, &b).expect("value");
        assert!((p90 - (0.25 + 0.25 * 10.0 / 15.0)).abs() < 1e-12, "{p90}");
        // Rank 99 in (0.5, 1]: 4 of 5.
        let p99 = histogram_quantile(0.99, &b).expect("value");
        assert!((p99 - (0.5 + 0.5 * 4.0 / 5.0)).abs() < 1e-12, "{p99}");
        // From 0 in the first bucket.
        assert_eq!(histogram_quantile(0.25, &b), Some(0.05));
        // In the +Inf bucket: the largest finite edge.
        let tail = [(0.1, 1.0), (INF, 10.0)];
        assert_eq!(histogram_quantile(0.9, &tail), Some(0.1));
        assert_eq!(histogram_quantile(0.5, &[(INF, 3.0)]), None);
        assert_eq!(histogram_quantile(0.5, &[(0.1, 0.0), (INF, 0.0)]), None);
        assert_eq!(histogram_quantile(0.5, &[(0.1, 1.0), (0.2, 2.0)]), None);
        // Non-monotonic counts are raised to their running maximum.
        let wobbly = [(0.1, 5.0), (0.2, 4.0), (INF, 10.0)];
        let w = histogram_quantile(0.4, &wobbly).expect("value");
        assert!((w - 0.08).abs() < 1e-12, "{w}");
    }

    /// A brute-force model: every scrape's cumulative buckets, increases per (series, le) with
    /// resets, summed over the slots that start in the window, then the quantile.
    #[test]
    fn windows_follow_a_brute_force_model() {
        let edges = [0.05, 0.1, 0.25, 0.5, INF];
        let mut store = HistogramWindows::new(Dur::from_days(30));
        // (at ms, per (series, le index) increase) for the model.
        let mut model: Vec<(i64, [f64; 5])> = Vec::new();
        let mut cumulative = [[0.0f64; 5]; 2];
        let mut seed = 7u64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let t0 = 1_780_000_000_000i64;
        for step in 0..2_000i64 {
            let at = t0 + step * 15_000;
            let mut incs = [0.0; 5];
            for (series, cum) in cumulative.iter_mut().enumerate() {
                let reset = rnd() % 97 == 0;
                let mut new = [0.0; 5];
                let mut running = 0.0;
                for (i, n) in new.iter_mut().enumerate() {
                    running += (rnd() % 4) as f64;
                    *n = if reset { running } else { cum[i] + running };
                }
                if step > 0 {
                    // Prometheus' rule: a lower value is a reset and counts itself.
                    for i in 0..5 {
                        incs[i] += if new[i] >= cum[i] {
                            new[i] - cum[i]
                        } else {
                            new[i]
                        };
                    }
                }
                *cum = new;
                let _ = series;
            }
            let samples: Vec<(u64, f64, f64)> = (0..2)
                .flat_map(|s| (0..5).map(move |i| (s as u64, i)))
                .map(|(s, i)| (s, edges[i], cumulative[s as usize][i]))
                .collect();
            store.record(1, Timestamp(at), &samples);
            model.push((at, incs));
        }
        let now = Timestamp(t0 + 2_000 * 15_000);
        for len in [
            Dur::from_mins(5),
            Dur::from_hours(1),
            Dur::from_hours(6),
            Dur::from_days(1),
        ] {
            let unit = if len.millis() as i64 <= FINE_SPAN {
                MINUTE
            } else {
                HOUR
            };
            let first = (now.0 - len.millis() as i64).div_euclid(unit) * unit + unit;
            let mut sums = [0.0; 5];
            for (at, incs) in &model {
                if at.div_euclid(unit) * unit >= first {
                    for i in 0..5 {
                        sums[i] += incs[i];
                    }
                }
            }
            let buckets: Vec<(f64, f64)> = edges.iter().copied().zip(sums).collect();
            let got = store.quantiles(len, now).expect("observations");
            assert_eq!(got.count, sums[4] as u64, "{len}");
            for (p, v) in [
                (0.5, got.p50),
                (0.9, got.p90),
                (0.95, got.p95),
                (0.99, got.p99),
            ] {
                assert_eq!(Some(v), histogram_quantile(p, &buckets), "{len} p{p}");
            }
        }
        // No traffic in the window: no percentiles.
        let later = Timestamp(now.0 + 2 * 86_400_000);
        assert_eq!(store.quantiles(Dur::from_hours(1), later), None);
    }
}
