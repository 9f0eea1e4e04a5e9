//! A fixed-size ring of time buckets: the storage primitive under every count and sketch tier.
//!
//! Bucket `k` holds the instants `[k*r, (k+1)*r)` (`k = t.div_euclid(r)`). The ring keeps the
//! newest `N` buckets; moving the head forward clears the buckets it skips, and an instant older
//! than the oldest held bucket is dropped and counted as late. Time only moves forward: the head
//! never goes back.
//!
//! [`CountRing`] is the ring of the count tiers: the same buckets packed in 8 bytes (two `u32`),
//! a bucket that outgrows 32 bits moved whole to a side list, so it counts exactly what a
//! `Ring<Counts>` counts in half the memory. `Ring<Counts>` stays as its reference (and the
//! serialized form).

use serde::{Deserialize, Serialize};

use crate::time::{Dur, Timestamp};

/// Exact good/bad counts of one bucket (16 bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Every event in the bucket.
    pub total: u64,
    /// The bad ones among them (`bad <= total`).
    pub bad: u64,
}

impl Counts {
    /// Good events, `total - bad`.
    pub fn good(self) -> u64 {
        self.total - self.bad
    }
    /// Adds another bucket's counts, saturating (2^64 events do not happen, but never panic).
    pub fn add(&mut self, other: Counts) {
        self.total = self.total.saturating_add(other.total);
        self.bad = self.bad.saturating_add(other.bad);
    }
}

/// An exact sum of bucket counts: 2^64 buckets of 2^64 events each cannot overflow it, so it can
/// be kept up to date by adding and subtracting buckets, unlike a saturating `u64` sum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WideCounts {
    /// Every event.
    pub total: u128,
    /// The bad ones.
    pub bad: u128,
}

impl WideCounts {
    /// Adds a bucket.
    #[inline]
    pub fn add(&mut self, c: Counts) {
        self.total += u128::from(c.total);
        self.bad += u128::from(c.bad);
    }

    /// Removes a bucket that was added before.
    #[inline]
    pub fn sub(&mut self, c: Counts) {
        self.total -= u128::from(c.total);
        self.bad -= u128::from(c.bad);
    }

    /// The sum saturated to `u64`: the same as summing the buckets with saturating additions
    /// (all terms are non-negative, and `bad <= total` survives the clamp).
    pub fn counts(self) -> Counts {
        let clamp = |v: u128| u64::try_from(v).unwrap_or(u64::MAX);
        Counts {
            total: clamp(self.total),
            bad: clamp(self.bad),
        }
    }
}

/// Where an instant falls relative to a ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// In the held slot with this index.
    Slot(usize),
    /// Older than the oldest held bucket.
    Late,
    /// Before the epoch (refused: bucket arithmetic assumes `t >= 0`).
    Negative,
}

/// [`Place`] with the slot's distance behind the head, in buckets.
enum Located {
    Slot { slot: usize, back: usize },
    Late,
    Negative,
}

/// A time-bucketed ring of `len` buckets of `res` milliseconds each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ring<T> {
    res: u64,
    slots: Vec<T>,
    /// Index of the newest bucket, once the ring has seen any time.
    head: Option<i64>,
    /// Slot of `head` (kept so the hot path needs no modulo).
    head_slot: usize,
    /// Start of the head bucket in ms (kept so the hot path usually needs no division).
    head_start: i64,
    late_dropped: u64,
}

impl<T: Default> Ring<T> {
    /// An empty ring; `res` and `len` are at least 1 (smaller values are raised to 1).
    pub fn new(res: Dur, len: usize) -> Ring<T> {
        let len = len.max(1);
        Ring {
            res: res.millis().max(1),
            slots: (0..len).map(|_| T::default()).collect(),
            head: None,
            head_slot: 0,
            head_start: 0,
            late_dropped: 0,
        }
    }

    /// Bucket width.
    pub fn resolution(&self) -> Dur {
        Dur(self.res)
    }

    /// Number of buckets.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Always false: a ring has at least one bucket (present for clippy's `len` convention).
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Time covered by all buckets, `res x len`.
    pub fn span(&self) -> Dur {
        Dur(self.res.saturating_mul(self.slots.len() as u64))
    }

    /// Index of the newest bucket, `None` before the ring has seen any time.
    pub fn head(&self) -> Option<i64> {
        self.head
    }

    /// Weight of the additions refused because they were older than the ring's span.
    pub fn late_dropped(&self) -> u64 {
        self.late_dropped
    }

    /// Records `n` refused late units (events or observations).
    pub fn note_late(&mut self, n: u64) {
        self.late_dropped = self.late_dropped.saturating_add(n);
    }

    /// Bucket index of an instant.
    #[inline]
    pub fn bucket_of(&self, t: Timestamp) -> i64 {
        t.0.div_euclid(self.res as i64)
    }

    /// Moves the head forward to the bucket of `t` (clearing skipped buckets); never backward.
    pub fn advance(&mut self, t: Timestamp) {
        if t.0 < 0 {
            return;
        }
        let k = self.bucket_of(t);
        self.rotate_to(k);
    }

    fn rotate_to(&mut self, k: i64) {
        let len = self.slots.len();
        match self.head {
            Some(h) if k <= h => {}
            Some(h) => {
                let steps = (k - h) as u64;
                if steps >= len as u64 {
                    self.slots.iter_mut().for_each(|s| *s = T::default());
                    self.head_slot = k.rem_euclid(len as i64) as usize;
                } else {
                    let mut slot = self.head_slot;
                    for _ in 0..steps {
                        slot += 1;
                        if slot == len {
                            slot = 0;
                        }
                        self.slots[slot] = T::default();
                    }
                    self.head_slot = slot;
                }
                self.head = Some(k);
                self.head_start = k * self.res as i64;
            }
            None => {
                self.head = Some(k);
                self.head_slot = k.rem_euclid(len as i64) as usize;
                self.head_start = k * self.res as i64;
            }
        }
    }

    /// Finds (rotating forward if needed) the slot for an instant. The common case (same bucket
    /// as the head) costs two comparisons.
    #[inline]
    pub fn place(&mut self, t: Timestamp) -> Place {
        match self.locate(t) {
            Located::Slot { slot, .. } => Place::Slot(slot),
            Located::Late => Place::Late,
            Located::Negative => Place::Negative,
        }
    }

    /// [`Ring::place`], also telling how many buckets behind the head the slot is.
    #[inline]
    fn locate(&mut self, t: Timestamp) -> Located {
        if t.0 >= self.head_start && t.0 - self.head_start < self.res as i64 && self.head.is_some()
        {
            return Located::Slot {
                slot: self.head_slot,
                back: 0,
            };
        }
        if t.0 < 0 {
            return Located::Negative;
        }
        let k = self.bucket_of(t);
        match self.head {
            Some(h) if k <= h => {
                let back = (h - k) as u64;
                let len = self.slots.len();
                if back >= len as u64 {
                    Located::Late
                } else {
                    let back = back as usize;
                    let slot = if back <= self.head_slot {
                        self.head_slot - back
                    } else {
                        self.head_slot + len - back
                    };
                    Located::Slot { slot, back }
                }
            }
            _ => {
                self.rotate_to(k);
                Located::Slot {
                    slot: self.head_slot,
                    back: 0,
                }
            }
        }
    }

    /// Mutable access to a slot found by [`Ring::place`].
    #[inline]
    pub fn slot_mut(&mut self, slot: usize) -> &mut T {
        &mut self.slots[slot]
    }

    /// The bucket `k`, if the ring holds it (`head - len < k <= head`).
    pub fn get(&self, k: i64) -> Option<&T> {
        let h = self.head?;
        let len = self.slots.len() as i64;
        if k > h || k <= h - len {
            return None;
        }
        let back = (h - k) as usize;
        let len = self.slots.len();
        let slot = (self.head_slot + len - back) % len;
        Some(&self.slots[slot])
    }

    /// The held buckets with index in `(lo_excl, hi_incl]`, newest first.
    pub fn range(&self, lo_excl: i64, hi_incl: i64) -> impl Iterator<Item = &T> {
        let (lo, hi) = match self.head {
            Some(h) => {
                let len = self.slots.len() as i64;
                ((lo_excl + 1).max(h - len + 1), hi_incl.min(h))
            }
            None => (1, 0),
        };
        (lo..=hi).rev().filter_map(move |k| self.get(k))
    }

    /// Changes the number of buckets, keeping the newest ones (and the head).
    pub fn resize(&mut self, new_len: usize) {
        let new_len = new_len.max(1);
        if new_len == self.slots.len() {
            return;
        }
        let mut slots: Vec<T> = (0..new_len).map(|_| T::default()).collect();
        if let Some(h) = self.head {
            let keep = new_len.min(self.slots.len());
            for back in 0..keep {
                let k = h - back as i64;
                let old_slot = (self.head_slot + self.slots.len() - back) % self.slots.len();
                let new_slot = k.rem_euclid(new_len as i64) as usize;
                slots[new_slot] = std::mem::take(&mut self.slots[old_slot]);
            }
            self.head_slot = h.rem_euclid(new_len as i64) as usize;
        }
        self.slots = slots;
    }

    /// Total number of buckets holding a non-default value (for memory accounting in tests).
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.slots.iter()
    }

    /// The held buckets with index in `(lo_excl, hi_incl]` with their slots, oldest first. The
    /// range maps to at most two contiguous runs of slots, walked without per-bucket index
    /// arithmetic.
    fn held(&self, lo_excl: i64, hi_incl: i64) -> impl Iterator<Item = (usize, &T)> {
        let len = self.slots.len();
        let (first, n) = match self.head {
            Some(h) => {
                let lo = lo_excl.saturating_add(1).max(h - len as i64 + 1);
                let hi = hi_incl.min(h);
                if lo > hi {
                    (0, 0)
                } else {
                    // Slot of bucket `lo`, `h - lo` buckets behind the head.
                    let back = (h - lo) as usize;
                    ((self.head_slot + len - back) % len, (hi - lo + 1) as usize)
                }
            }
            None => (0, 0),
        };
        let wrapped = (first + n).saturating_sub(len);
        let a = first..first + (n - wrapped);
        let b = 0..wrapped;
        a.chain(b).map(move |slot| (slot, &self.slots[slot]))
    }

    /// The same ring with every bucket mapped by `f(slot, bucket)`.
    fn map<U>(&self, mut f: impl FnMut(usize, &T) -> U) -> Ring<U> {
        Ring {
            res: self.res,
            slots: self
                .slots
                .iter()
                .enumerate()
                .map(|(i, v)| f(i, v))
                .collect(),
            head: self.head,
            head_slot: self.head_slot,
            head_start: self.head_start,
            late_dropped: self.late_dropped,
        }
    }
}

impl Ring<Counts> {
    /// Adds `total` events of which `bad` are bad at `t`. Returns false (and counts the events as
    /// late) when `t` is older than the span; negative instants are refused without counting.
    #[inline]
    pub fn add(&mut self, t: Timestamp, total: u64, bad: u64) -> bool {
        self.add_tracked(t, total, bad).is_some()
    }

    /// [`Ring::add`], returning on success the bucket written and what it actually grew by
    /// (less than asked only when a count saturates), so sums kept elsewhere stay exact.
    #[inline]
    pub fn add_tracked(&mut self, t: Timestamp, total: u64, bad: u64) -> Option<(i64, Counts)> {
        match self.locate(t) {
            Located::Slot { slot, back } => {
                let c = &mut self.slots[slot];
                let before = *c;
                c.total = c.total.saturating_add(total);
                c.bad = c.bad.saturating_add(bad);
                let grew = Counts {
                    total: c.total - before.total,
                    bad: c.bad - before.bad,
                };
                // `locate` placed the instant, so the ring has a head.
                Some((self.head.unwrap_or(0) - back as i64, grew))
            }
            Located::Late => {
                self.note_late(total);
                None
            }
            Located::Negative => None,
        }
    }

    /// Sum of the held buckets in `(lo_excl, hi_incl]`, saturated to `u64` (see
    /// [`WideCounts::counts`]).
    pub fn sum(&self, lo_excl: i64, hi_incl: i64) -> Counts {
        self.sum_wide(lo_excl, hi_incl).counts()
    }

    /// The exact (unsaturated) sum of the held buckets in `(lo_excl, hi_incl]`.
    ///
    /// The held range maps to at most two contiguous runs of slots, summed without per-bucket
    /// index arithmetic.
    pub fn sum_wide(&self, lo_excl: i64, hi_incl: i64) -> WideCounts {
        let mut sum = WideCounts::default();
        for (_, c) in self.held(lo_excl, hi_incl) {
            sum.add(*c);
        }
        sum
    }
}

/// One bucket of a [`CountRing`] in 8 bytes: the counts when both fit below `u32::MAX`, else
/// the marker `total == SPILLED` and the full counts kept in the ring's spill list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PackedCounts {
    total: u32,
    bad: u32,
}

/// `PackedCounts::total` of a bucket whose counts live in the spill list.
const SPILLED: u32 = u32::MAX;

/// A [`Ring`] of exact [`Counts`] in 8 bytes a bucket instead of 16: the count tiers of an SLO
/// are most of its memory, and a bucket rarely holds 2^32 events (a 1-minute bucket would need
/// 71 million events a second). A bucket that would reach `u32::MAX` moves, whole and exact, to a
/// short list of full-width buckets ("spilled"), so every count is the same as in a
/// `Ring<Counts>`, saturation at `u64::MAX` included (the tests compare the two). Serialized as
/// the equivalent `Ring<Counts>`, so checkpoints are unchanged.
#[derive(Debug, Clone, PartialEq)]
pub struct CountRing {
    ring: Ring<PackedCounts>,
    /// Full counts of spilled buckets by slot; an entry whose slot is no longer marked (rotated
    /// out and cleared) is stale and ignored, and dropped at the next spill. At most one per slot.
    spilled: Vec<(usize, Counts)>,
}

impl CountRing {
    /// An empty ring; `res` and `len` are at least 1 (see [`Ring::new`]).
    pub fn new(res: Dur, len: usize) -> CountRing {
        CountRing {
            ring: Ring::new(res, len),
            spilled: Vec::new(),
        }
    }

    /// Bucket width.
    pub fn resolution(&self) -> Dur {
        self.ring.resolution()
    }

    /// Number of buckets.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// Always false (see [`Ring::is_empty`]).
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// Index of the newest bucket, `None` before the ring has seen any time.
    pub fn head(&self) -> Option<i64> {
        self.ring.head()
    }

    /// Events refused because they were older than the ring's span.
    pub fn late_dropped(&self) -> u64 {
        self.ring.late_dropped()
    }

    /// Moves the head forward to the bucket of `t` (clearing skipped buckets); never backward.
    pub fn advance(&mut self, t: Timestamp) {
        self.ring.advance(t);
    }

    /// The counts of the bucket in `slot` holding `cell`.
    #[inline]
    fn unpack(&self, slot: usize, cell: PackedCounts) -> Counts {
        if cell.total != SPILLED {
            return Counts {
                total: cell.total.into(),
                bad: cell.bad.into(),
            };
        }
        // A marked slot always has its entry (`spill` writes both); the fallback is unreachable.
        self.spilled
            .iter()
            .find(|(s, _)| *s == slot)
            .map_or(Counts::default(), |(_, c)| *c)
    }

    /// The bucket `k`, if the ring holds it.
    pub fn get(&self, k: i64) -> Option<Counts> {
        self.ring
            .held(k.saturating_sub(1), k)
            .next()
            .map(|(slot, cell)| self.unpack(slot, *cell))
    }

    /// Adds `total` events of which `bad` are bad at `t` (see [`Ring::add`]).
    #[inline]
    pub fn add(&mut self, t: Timestamp, total: u64, bad: u64) -> bool {
        self.add_tracked(t, total, bad).is_some()
    }

    /// [`CountRing::add`], returning on success the bucket written and what it actually grew by
    /// (less than asked only when a count saturates at `u64::MAX`), as [`Ring::add_tracked`].
    #[inline]
    pub fn add_tracked(&mut self, t: Timestamp, total: u64, bad: u64) -> Option<(i64, Counts)> {
        let slot = match self.ring.locate(t) {
            Located::Slot { slot, back } => {
                // `locate` placed the instant, so the ring has a head.
                let k = self.ring.head.unwrap_or(0) - back as i64;
                (slot, k)
            }
            Located::Late => {
                self.ring.note_late(total);
                return None;
            }
            Located::Negative => return None,
        };
        let (slot, k) = slot;
        let cell = &mut self.ring.slots[slot];
        if cell.total != SPILLED {
            let fits = |now: u32, add: u64| {
                u64::from(now)
                    .checked_add(add)
                    .and_then(|v| u32::try_from(v).ok())
                    .filter(|&v| v != SPILLED)
            };
            if let (Some(t2), Some(b2)) = (fits(cell.total, total), fits(cell.bad, bad)) {
                *cell = PackedCounts { total: t2, bad: b2 };
                return Some((k, Counts { total, bad }));
            }
            let before = Counts {
                total: cell.total.into(),
                bad: cell.bad.into(),
            };
            self.spill(slot, before);
        }
        let c = self
            .spilled
            .iter_mut()
            .find(|(s, _)| *s == slot)
            .map(|(_, c)| c)?;
        let before = *c;
        c.add(Counts { total, bad });
        Some((
            k,
            Counts {
                total: c.total - before.total,
                bad: c.bad - before.bad,
            },
        ))
    }

    /// Marks `slot` spilled with `counts`, dropping stale entries (and the slot's old one).
    #[cold]
    fn spill(&mut self, slot: usize, counts: Counts) {
        let slots = &self.ring.slots;
        self.spilled
            .retain(|&(s, _)| s != slot && slots[s].total == SPILLED);
        self.spilled.push((slot, counts));
        self.ring.slots[slot] = PackedCounts {
            total: SPILLED,
            bad: 0,
        };
    }

    /// Sum of the held buckets in `(lo_excl, hi_incl]`, saturated to `u64` (see
    /// [`WideCounts::counts`]).
    pub fn sum(&self, lo_excl: i64, hi_incl: i64) -> Counts {
        self.sum_wide(lo_excl, hi_incl).counts()
    }

    /// The exact (unsaturated) sum of the held buckets in `(lo_excl, hi_incl]`.
    pub fn sum_wide(&self, lo_excl: i64, hi_incl: i64) -> WideCounts {
        let mut sum = WideCounts::default();
        for (slot, cell) in self.ring.held(lo_excl, hi_incl) {
            if cell.total == SPILLED {
                sum.add(self.unpack(slot, *cell));
            } else {
                sum.total += u128::from(cell.total);
                sum.bad += u128::from(cell.bad);
            }
        }
        sum
    }

    /// Changes the number of buckets, keeping the newest ones (and the head), as [`Ring::resize`].
    pub fn resize(&mut self, new_len: usize) {
        let mut wide = self.to_wide();
        wide.resize(new_len);
        *self = CountRing::from_wide(&wide);
    }

    /// The same buckets as a full-width ring.
    pub fn to_wide(&self) -> Ring<Counts> {
        self.ring.map(|slot, cell| self.unpack(slot, *cell))
    }

    /// The same buckets from a full-width ring.
    pub fn from_wide(wide: &Ring<Counts>) -> CountRing {
        let mut spilled = Vec::new();
        let ring = wide.map(
            |slot, c| match (u32::try_from(c.total), u32::try_from(c.bad)) {
                (Ok(total), Ok(bad)) if total != SPILLED && bad != SPILLED => {
                    PackedCounts { total, bad }
                }
                _ => {
                    spilled.push((slot, *c));
                    PackedCounts {
                        total: SPILLED,
                        bad: 0,
                    }
                }
            },
        );
        CountRing { ring, spilled }
    }

    /// Heap bytes: 8 per bucket plus the spill list.
    pub fn bytes(&self) -> usize {
        self.ring.len() * std::mem::size_of::<PackedCounts>()
            + self.spilled.capacity() * std::mem::size_of::<(usize, Counts)>()
    }
}

impl Serialize for CountRing {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_wide().serialize(s)
    }
}

impl<'de> Deserialize<'de> for CountRing {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<CountRing, D::Error> {
        Ring::<Counts>::deserialize(d).map(|wide| CountRing::from_wide(&wide))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(ms: i64) -> Timestamp {
        Timestamp(ms)
    }

    #[test]
    fn rotation_clears_skipped_buckets() {
        let mut r: Ring<Counts> = Ring::new(Dur(10), 4);
        assert!(r.add(ts(5), 1, 0)); // bucket 0
        assert!(r.add(ts(15), 2, 1)); // bucket 1
        assert_eq!(r.sum(-1, 1), Counts { total: 3, bad: 1 });
        // Jump to bucket 4: buckets 2,3,4 are cleared, bucket 0 falls out.
        assert!(r.add(ts(45), 1, 1));
        assert_eq!(r.head(), Some(4));
        assert_eq!(r.get(0), None);
        assert_eq!(r.get(1), Some(&Counts { total: 2, bad: 1 }));
        assert_eq!(r.sum(0, 4), Counts { total: 3, bad: 2 });
        // Late: bucket 0 is gone now.
        assert!(!r.add(ts(3), 7, 0));
        assert_eq!(r.late_dropped(), 7);
        // Out-of-order but still held.
        assert!(r.add(ts(21), 1, 0));
        assert_eq!(r.get(2), Some(&Counts { total: 1, bad: 0 }));
        // A jump longer than the ring clears everything.
        r.advance(ts(1000));
        assert_eq!(r.sum(i64::MIN / 2, 100), Counts::default());
        assert_eq!(r.head(), Some(100));
    }

    #[test]
    fn negative_refused() {
        let mut r: Ring<Counts> = Ring::new(Dur(10), 4);
        assert!(!r.add(ts(-1), 1, 0));
        assert_eq!(r.late_dropped(), 0);
        assert_eq!(r.head(), None);
    }

    #[test]
    fn resize_keeps_newest() {
        let mut r: Ring<Counts> = Ring::new(Dur(1), 5);
        for t in 0..10 {
            r.add(ts(t), t as u64, 0);
        }
        r.resize(3);
        assert_eq!(r.get(9).map(|c| c.total), Some(9));
        assert_eq!(r.get(7).map(|c| c.total), Some(7));
        assert_eq!(r.get(6), None);
        r.resize(8);
        assert_eq!(r.get(9).map(|c| c.total), Some(9));
        assert_eq!(r.get(7).map(|c| c.total), Some(7));
        assert_eq!(r.get(6).map(|c| c.total), Some(0));
        r.add(ts(10), 10, 0);
        assert_eq!(r.sum(2, 10).total, 9 + 8 + 7 + 10);
    }

    #[test]
    fn matches_brute_force_on_random_walk() {
        // Deterministic pseudo-random walk (LCG) of forward and backward instants.
        let mut seed: u64 = 42;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            seed >> 33
        };
        let (res, len) = (7i64, 9usize);
        let mut r: Ring<Counts> = Ring::new(Dur(res as u64), len);
        let mut raw: Vec<(i64, u64)> = Vec::new();
        let mut newest = 0i64;
        let mut t = 0i64;
        for _ in 0..2000 {
            t = (t + (next() % 20) as i64 - 8).max(0);
            let n = next() % 3 + 1;
            let k = t.div_euclid(res);
            let head = newest.div_euclid(res).max(k);
            let accepted = r.add(ts(t), n, 0);
            assert_eq!(accepted, k > head - len as i64);
            if accepted {
                raw.push((t, n));
            }
            newest = newest.max(t);
            let h = newest.div_euclid(res);
            let lo = h - len as i64;
            let expect: u64 = raw
                .iter()
                .filter(|(t, _)| t.div_euclid(res) > lo)
                .map(|(_, n)| n)
                .sum();
            assert_eq!(r.sum(lo, h).total, expect);
        }
    }

    /// An amount of events: mostly small, often around the 32-bit edge, sometimes near 2^64.
    fn amount(seed: &mut u64) -> u64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let r = *seed >> 33;
        match r % 8 {
            0 => u64::from(u32::MAX) - (r >> 4) % 4,
            1 => (u64::from(u32::MAX) >> 1) + (r >> 4) % 3,
            2 => u64::MAX - (r >> 4) % 3,
            3 => 0,
            _ => (r >> 4) % 5,
        }
    }

    #[test]
    fn packed_ring_equals_the_wide_ring_across_the_32_bit_edge() {
        for seed0 in 0..40u64 {
            let mut seed = seed0;
            let (res, len) = (5u64, 7usize);
            let mut wide: Ring<Counts> = Ring::new(Dur(res), len);
            let mut packed = CountRing::new(Dur(res), len);
            let mut t = 0i64;
            for step in 0..1500 {
                let r = amount(&mut seed);
                match r % 11 {
                    // Backward, forward and far jumps, so spilled buckets rotate out and back in.
                    0..=6 => {
                        t = (t + (r % 13) as i64 - 5).max(0);
                        if r.is_multiple_of(97) {
                            t += 100;
                        }
                        let total = amount(&mut seed);
                        let bad = amount(&mut seed).min(total);
                        assert_eq!(
                            packed.add_tracked(Timestamp(t), total, bad),
                            wide.add_tracked(Timestamp(t), total, bad),
                            "seed {seed0} step {step}"
                        );
                    }
                    7 => {
                        let n = 1 + (r as usize >> 3) % 10;
                        wide.resize(n);
                        packed.resize(n);
                    }
                    8 => {
                        let bytes = postcard::to_allocvec(&packed).expect("encode");
                        assert_eq!(bytes, postcard::to_allocvec(&wide).expect("encode"));
                        packed = postcard::from_bytes(&bytes).expect("decode");
                    }
                    _ => {
                        packed.advance(Timestamp(t));
                        wide.advance(Timestamp(t));
                    }
                }
                assert_eq!(packed.head(), wide.head());
                assert_eq!(packed.late_dropped(), wide.late_dropped());
                assert_eq!(packed.to_wide(), wide);
                let h = wide.head().unwrap_or(0);
                for k in h - 12..=h + 1 {
                    assert_eq!(packed.get(k), wide.get(k).copied(), "bucket {k}");
                    for lo in k - 12..k {
                        assert_eq!(packed.sum_wide(lo, k), wide.sum_wide(lo, k));
                    }
                }
                assert!(packed.spilled.len() <= packed.len());
            }
        }
    }

    #[test]
    fn a_bucket_at_the_32_bit_edge_spills_exactly() {
        let mut r = CountRing::new(Dur(10), 3);
        let edge = u64::from(u32::MAX);
        // One below the marker still packs.
        assert_eq!(
            r.add_tracked(ts(0), edge - 1, 0),
            Some((
                0,
                Counts {
                    total: edge - 1,
                    bad: 0
                }
            ))
        );
        assert!(r.spilled.is_empty());
        assert_eq!(
            r.add_tracked(ts(1), 2, 1),
            Some((0, Counts { total: 2, bad: 1 }))
        );
        assert_eq!(r.spilled.len(), 1);
        assert_eq!(
            r.get(0),
            Some(Counts {
                total: edge + 1,
                bad: 1
            })
        );
        assert_eq!(
            r.add_tracked(ts(2), u64::MAX, 0),
            Some((
                0,
                Counts {
                    total: u64::MAX - edge - 1,
                    bad: 0
                }
            ))
        );
        assert_eq!(
            r.sum(-1, 0),
            Counts {
                total: u64::MAX,
                bad: 1
            }
        );
        // Rotated out and reused: the slot packs again, the stale entry goes at the next spill.
        r.advance(ts(30));
        assert!(r.add(ts(30), 3, 1));
        assert_eq!(r.get(3), Some(Counts { total: 3, bad: 1 }));
        assert_eq!(r.sum(-1, 3), Counts { total: 3, bad: 1 });
        assert!(r.add(ts(20), edge, edge));
        assert_eq!(r.spilled.len(), 1, "the stale entry was dropped");
        assert_eq!(
            r.get(2),
            Some(Counts {
                total: edge,
                bad: edge
            })
        );
        assert_eq!(r.bytes(), 3 * 8 + r.spilled.capacity() * 24);
    }
}
