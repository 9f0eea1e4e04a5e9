//! The three count tiers of one SLO together with the running sums of its rolling windows, so
//! an evaluation reads a few buckets per window instead of every bucket of every window (a 30d
//! SLO with the default tiers would otherwise sum ~1,900 buckets, ~30 KB, per evaluation).
//!
//! A tracked window of `n` buckets on a ring of `len` is read as two parts, both exact and
//! together equal, bucket for bucket, to summing the ring ([`CountRing::sum`]; the proptests check
//! this against raw events):
//! - a running sum (`u128`, see [`WideCounts`]) of its newest `m = min(n, len - SLACK)` buckets
//!   `(at - m, at]` for the head `at` it was last read at. Adds into that range update it; when
//!   the head has moved, the next read slides it (subtract the buckets that left, add the ones
//!   that entered) if the buckets that left are still held, otherwise it is summed afresh;
//! - the oldest `n - m` buckets (at most [`SLACK`]), read from the ring.
//!
//! Keeping `m` at least `SLACK` buckets short of the ring means the buckets leaving it stay held
//! for `SLACK` head moves, so reads at least every `SLACK` buckets (8 minutes on the minute
//! tier) always slide. Sliding happens on reads, never on ingest: ingest pays a comparison per
//! window at most, and never reads a bucket it does not write (a read of the bucket a rotation
//! clears would be a cache miss per flush).
//!
//! The sums are a cache: not serialized, rebuilt from the rings after a restore or resize, and
//! any window not tracked (or queried at an instant other than the head) is summed from the ring.

use serde::{Deserialize, Serialize};

use crate::slo::ring::{CountRing, Counts, WideCounts};
use crate::time::{Dur, Timestamp};

/// Buckets of head movement a window sum tolerates between reads and still slides (see the
/// module docs); also the most buckets a read sums from the ring per window.
pub const SLACK: i64 = 8;

/// Count rings of one SLO (1 m, 10 m, 1 h) and their window sums.
///
/// `repr(C)` with the sums first: ingest reads `top` and the rings' heads, which then share
/// cache lines (an extra line per flush measurably slows ingest across 10,000 SLOs).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
#[repr(C)]
pub struct CountTiers {
    #[serde(skip)]
    sums: Sums,
    rings: [CountRing; 3],
}

#[derive(Debug, Clone)]
#[repr(C)]
struct Sums {
    /// Per tier: the newest `at` among that tier's windows; an add to a newer bucket touches no
    /// window sum (the common case: ingest into the current minute before the next evaluation).
    top: [i64; 3],
    windows: Vec<WindowSum>,
}

impl Default for Sums {
    fn default() -> Sums {
        Sums {
            top: [i64::MIN; 3],
            windows: Vec::new(),
        }
    }
}

/// [`WindowSum::at`] of a sum not read yet (never a bucket index: instants are >= 0).
const UNREAD: i64 = i64::MIN;

/// A window of `n` buckets of one tier: the running sum of its newest `m` buckets
/// `(at - m, at]` (the other `n - m` are read from the ring).
#[derive(Debug, Clone, Copy)]
struct WindowSum {
    tier: usize,
    n: i64,
    m: i64,
    /// Head bucket the sum is exact for, [`UNREAD`] until first read (not an `Option`: the
    /// sum is 16-aligned, and the tag would grow each of an SLO's ~8 sums from 64 to 80 bytes).
    at: i64,
    sum: WideCounts,
}

impl WindowSum {
    /// Brings the sum to the head `h` of `ring`.
    fn slide(&mut self, ring: &CountRing, h: i64) {
        let (n, len) = (self.m, ring.len() as i64);
        match (self.at != UNREAD).then_some(self.at) {
            Some(a) if a == h => return,
            // The buckets leaving, `(a - n, h - n]`, are all still held iff `a - n >= h - len`.
            Some(a) if a < h && h - a < n && h - a <= len - n => {
                let left = ring.sum_wide(a - n, h - n);
                let entered = ring.sum_wide(a, h);
                self.sum.total = self.sum.total - left.total + entered.total;
                self.sum.bad = self.sum.bad - left.bad + entered.bad;
            }
            _ => self.sum = ring.sum_wide(h - n, h),
        }
        self.at = h;
    }
}

impl CountTiers {
    /// Empty rings of `lens` buckets at the resolutions `res`, tracking the windows `(tier, n)`.
    pub fn new(res: [Dur; 3], lens: [usize; 3], windows: &[(usize, i64)]) -> CountTiers {
        let mut t = CountTiers {
            sums: Sums::default(),
            rings: [0, 1, 2].map(|i| CountRing::new(res[i], lens[i])),
        };
        t.track(windows);
        t
    }

    /// Resizes the rings (keeping the newest buckets) and tracks `windows`; the sums are rebuilt
    /// from the rings as they are read.
    pub fn adapt(&mut self, lens: [usize; 3], windows: &[(usize, i64)]) {
        for (r, len) in self.rings.iter_mut().zip(lens) {
            r.resize(len);
        }
        self.track(windows);
    }

    /// Forgets every sum and tracks `windows` (lengths capped to their ring).
    fn track(&mut self, windows: &[(usize, i64)]) {
        self.sums = Sums::default();
        for &(tier, n) in windows {
            let len = self.rings[tier].len() as i64;
            let n = n.clamp(1, len);
            if !self.sums.windows.iter().any(|w| (w.tier, w.n) == (tier, n)) {
                self.sums.windows.push(WindowSum {
                    tier,
                    n,
                    m: n.min(len - SLACK).max(0),
                    at: UNREAD,
                    sum: WideCounts::default(),
                });
            }
        }
    }

    /// The ring of tier `i`.
    pub fn ring(&self, i: usize) -> &CountRing {
        &self.rings[i]
    }

    /// Adds `total` events of which `bad` are bad at `t` to every tier (see [`CountRing::add`]).
    #[inline]
    pub fn add(&mut self, t: Timestamp, total: u64, bad: u64) {
        for i in 0..3 {
            let Some((k, grew)) = self.rings[i].add_tracked(t, total, bad) else {
                continue;
            };
            if k <= self.sums.top[i] {
                for w in &mut self.sums.windows {
                    // An unread sum (`at` = i64::MIN) holds no bucket: `k > a - m` fails.
                    if w.tier == i && k <= w.at && k > w.at.saturating_sub(w.m) {
                        w.sum.add(grew);
                    }
                }
            }
        }
    }

    /// Moves every tier's head forward to the bucket of `t` (never backward).
    pub fn advance(&mut self, t: Timestamp) {
        for r in &mut self.rings {
            r.advance(t);
        }
    }

    /// Counts of tier `i`'s buckets `(lo_excl, hi_incl]` (summed from the ring).
    pub fn sum(&self, i: usize, lo_excl: i64, hi_incl: i64) -> Counts {
        self.rings[i].sum(lo_excl, hi_incl)
    }

    /// Counts of the `n` buckets `(k - n, k]` of tier `i`: from the sums when `k` is the head,
    /// otherwise from the ring. Equal to [`CountTiers::sum`] over the same range.
    pub fn rolling(&mut self, i: usize, n: i64, k: i64) -> Counts {
        self.rolling_from(i, n, k - n, k)
    }

    /// Counts of tier `i`'s buckets `(lo_excl, k]`, a range of at most `n` buckets (`lo_excl` is
    /// raised to `k - n`), read with the sum of the tracked window of `n` buckets: a window whose
    /// length is not a multiple of the resolution spans `n` or `n - 1` buckets depending on where
    /// `now` falls in its bucket, and shares one sum. Equal to [`CountTiers::sum`] over the range.
    pub fn rolling_from(&mut self, i: usize, n: i64, lo_excl: i64, k: i64) -> Counts {
        let ring = &self.rings[i];
        let n = n.min(ring.len() as i64);
        let lo_excl = lo_excl.max(k - n);
        if ring.head() != Some(k) {
            return ring.sum(lo_excl, k);
        }
        let Some(w) = self
            .sums
            .windows
            .iter_mut()
            .find(|w| w.tier == i && w.n == n)
        else {
            return ring.sum(lo_excl, k);
        };
        w.slide(ring, k);
        self.sums.top[i] = self.sums.top[i].max(k);
        let mut c = w.sum;
        // The sum holds `(k - m, k]`: add the older buckets from the ring, or take off the ones
        // it holds that the range does not (exact: the sums are unsaturated).
        if lo_excl <= k - w.m {
            let oldest = ring.sum_wide(lo_excl, k - w.m);
            c.total += oldest.total;
            c.bad += oldest.bad;
        } else {
            let extra = ring.sum_wide(k - w.m, lo_excl);
            c.total -= extra.total;
            c.bad -= extra.bad;
        }
        c.counts()
    }

    /// Start of the oldest bucket holding events: on the coarsest tier that has any, refined on
    /// each finer tier whose ring still reaches back to that instant. `None` without events.
    pub fn oldest_data(&self) -> Option<Timestamp> {
        let mut first: Option<i64> = None;
        for ring in self.rings.iter().rev() {
            let Some(head) = ring.head() else { continue };
            let r = ring.resolution().millis() as i64;
            let held_from = (head - ring.len() as i64 + 1) * r;
            let Some(k) = ((head - ring.len() as i64 + 1)..=head)
                .find(|&k| ring.get(k).is_some_and(|c| c.total > 0))
            else {
                continue;
            };
            first = match first {
                None => Some(k * r),
                Some(f) if held_from <= f => Some((k * r).max(f)),
                keep => keep,
            };
        }
        first.map(Timestamp)
    }

    /// Events the coarsest tier refused as older than its span (no tier could hold them).
    pub fn late_dropped(&self) -> u64 {
        self.rings[2].late_dropped()
    }

    /// Heap and inline bytes: the bucket columns (see [`CountRing`]) plus the window sums.
    pub fn bytes(&self) -> usize {
        self.rings.iter().map(CountRing::bytes).sum::<usize>()
            + std::mem::size_of::<Sums>()
            + self.sums.windows.len() * std::mem::size_of::<WindowSum>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random numbers (LCG).
    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *seed >> 33
    }

    /// Small rings (res 1, 10, 100 ms; 12, 9, 15 buckets) and windows of every length.
    fn tiers() -> CountTiers {
        let windows: Vec<(usize, i64)> =
            (0..3).flat_map(|i| (1..=16).map(move |n| (i, n))).collect();
        CountTiers::new([Dur(1), Dur(10), Dur(100)], [12, 9, 15], &windows)
    }

    #[test]
    fn sums_match_the_rings_under_late_adds_jumps_and_reads() {
        for seed0 in 0..20u64 {
            let mut seed = seed0;
            let mut c = tiers();
            let mut now = 0i64;
            for _ in 0..3000 {
                match lcg(&mut seed) % 10 {
                    // Mostly small steps, sometimes a jump longer than some rings.
                    0..=5 => {
                        let back = (lcg(&mut seed) % 40) as i64;
                        let (total, bad) = (lcg(&mut seed) % 5, lcg(&mut seed) % 3);
                        c.add(Timestamp((now - back).max(0)), total + bad, bad);
                    }
                    6 | 7 => {
                        now += match lcg(&mut seed) % 8 {
                            0 => (lcg(&mut seed) % 3000) as i64,
                            _ => (lcg(&mut seed) % 25) as i64,
                        };
                        c.advance(Timestamp(now));
                    }
                    _ => {
                        c.advance(Timestamp(now));
                        for i in 0..3 {
                            let k = now.div_euclid([1, 10, 100][i]);
                            let n = (lcg(&mut seed) % 17) as i64 + 1;
                            assert_eq!(c.rolling(i, n, k), c.sum(i, k - n, k), "tier {i} n {n}");
                            // A range up to two buckets shorter than the tracked window.
                            let lo = k - n + (lcg(&mut seed) % 3) as i64;
                            assert_eq!(c.rolling_from(i, n, lo, k), c.sum(i, lo, k), "from {lo}");
                            // Not at the head: read from the ring.
                            assert_eq!(c.rolling(i, n, k - 1), c.sum(i, k - 1 - n, k - 1));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_window_sum_takes_64_bytes() {
        // The figure behind "Memory per SLO" (docs/rules.md): 8 sums per default 30d SLO.
        assert_eq!(std::mem::size_of::<WindowSum>(), 64);
    }

    #[test]
    fn saturated_buckets_stay_exact() {
        let mut c = tiers();
        let big = u64::MAX - 5;
        c.add(Timestamp(0), big, big);
        assert_eq!(
            c.rolling(0, 3, 0),
            Counts {
                total: big,
                bad: big
            }
        );
        c.add(Timestamp(1), big, 1);
        c.add(Timestamp(1), big, 1);
        // Bucket 1 saturated at u64::MAX; the window total saturates too.
        let want = Counts {
            total: u64::MAX,
            bad: big.saturating_add(2),
        };
        assert_eq!(c.rolling(0, 3, 1), want);
        assert_eq!(c.rolling(0, 12, 1), want);
        c.advance(Timestamp(2));
        assert_eq!(
            c.rolling(0, 2, 2),
            Counts {
                total: u64::MAX,
                bad: 2
            }
        );
        c.advance(Timestamp(3));
        // Bucket 1 left the 2-bucket window: its saturated value is subtracted exactly.
        assert_eq!(c.rolling(0, 2, 3), Counts::default());
        assert_eq!(
            c.rolling(0, 3, 3),
            Counts {
                total: u64::MAX,
                bad: 2
            }
        );
    }

    #[test]
    fn rebuilt_after_adapt_and_deserialization() {
        let mut c = tiers();
        for t in 0..200 {
            c.add(Timestamp(t), 2, t as u64 % 2);
        }
        assert_eq!(c.rolling(0, 5, 199).total, 10);
        let bytes = postcard::to_allocvec(&c).expect("encode");
        let mut d: CountTiers = postcard::from_bytes(&bytes).expect("decode");
        // Untracked after decoding: still exact, from the rings.
        assert_eq!(d.rolling(0, 5, 199), c.rolling(0, 5, 199));
        assert_eq!(d.rolling(2, 15, 1), c.rolling(2, 15, 1));
        d.adapt([6, 9, 15], &[(0, 5), (1, 3)]);
        d.add(Timestamp(199), 7, 7);
        d.add(Timestamp(180), 1, 1);
        assert_eq!(d.rolling(0, 5, 199), Counts { total: 17, bad: 10 });
        assert_eq!(d.rolling(0, 6, 199), d.sum(0, 193, 199));
        assert_eq!(d.rolling(1, 3, 19), d.sum(1, 16, 19));
    }
}
