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

use std::ops::Range;

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
        let (a, b) = self.held_slots(lo_excl, hi_incl);
        a.chain(b).map(move |slot| (slot, &self.slots[slot]))
    }

    /// The slots of the held buckets with index in `(lo_excl, hi_incl]`, oldest first, as two
    /// contiguous runs (the second one empty unless the range wraps around the end).
    fn held_slots(&self, lo_excl: i64, hi_incl: i64) -> (Range<usize>, Range<usize>) {
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
        (first..first + (n - wrapped), 0..wrapped)
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

/// One count (the totals, or the bad counts) of every bucket of a [`CountRing`], by slot, in the
/// narrowest width that holds every count it has held: no storage while every count is 0, then
/// 1, 2, 4 or 8 bytes a bucket. A count that does not fit widens the whole column (at most four
/// times in its life, since counts only grow between rotations); it never narrows while the
/// agent runs (a restore picks the width of the restored counts again).
#[derive(Debug, Clone)]
enum Column {
    /// Every count is 0.
    Zero,
    U8(Box<[u8]>),
    U16(Box<[u16]>),
    U32(Box<[u32]>),
    U64(Box<[u64]>),
}

/// The narrowest [`Column`] width, in bytes, that holds `v` (0 for 0).
fn width_of(v: u64) -> u8 {
    if v == 0 {
        0
    } else if v <= u64::from(u8::MAX) {
        1
    } else if v <= u64::from(u16::MAX) {
        2
    } else if v <= u64::from(u32::MAX) {
        4
    } else {
        8
    }
}

/// Sum of the counts of a run of slots; `u64` is exact for runs shorter than 2^32 buckets of
/// a width up to 4 bytes.
fn sum_narrow<T: Copy + Into<u64>>(s: &[T]) -> u128 {
    u128::from(s.iter().map(|&v| v.into()).sum::<u64>())
}

impl Column {
    /// Bytes per bucket.
    fn width(&self) -> u8 {
        match self {
            Column::Zero => 0,
            Column::U8(_) => 1,
            Column::U16(_) => 2,
            Column::U32(_) => 4,
            Column::U64(_) => 8,
        }
    }

    /// The column of `len` buckets with these counts (by slot), in the narrowest width.
    fn from_counts(len: usize, count: impl Fn(usize) -> u64) -> Column {
        let width = (0..len).map(|i| width_of(count(i))).max().unwrap_or(0);
        let mut c = Column::Zero;
        c.widen(len, width);
        for i in 0..len {
            c.store(i, count(i));
        }
        c
    }

    /// The count of `slot`.
    #[inline]
    fn get(&self, slot: usize) -> u64 {
        match self {
            Column::Zero => 0,
            Column::U8(s) => s[slot].into(),
            Column::U16(s) => s[slot].into(),
            Column::U32(s) => s[slot].into(),
            Column::U64(s) => s[slot],
        }
    }

    /// Stores `v` in `slot`; the column is at least as wide as `v` needs (truncating casts are
    /// guarded by that).
    #[inline]
    fn store(&mut self, slot: usize, v: u64) {
        match self {
            Column::Zero => debug_assert_eq!(v, 0),
            Column::U8(s) => s[slot] = v as u8,
            Column::U16(s) => s[slot] = v as u16,
            Column::U32(s) => s[slot] = v as u32,
            Column::U64(s) => s[slot] = v,
        }
    }

    /// Adds `n` to `slot`'s count, saturating at `u64::MAX` as [`Ring<Counts>`] does, widening the
    /// column when the sum needs it; returns what the count actually grew by.
    #[inline]
    fn add(&mut self, len: usize, slot: usize, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let before = self.get(slot);
        let after = before.saturating_add(n);
        let need = width_of(after);
        if need > self.width() {
            self.widen(len, need);
        }
        self.store(slot, after);
        after - before
    }

    /// Re-stores the `len` counts in `width` bytes each (wider than now).
    #[cold]
    fn widen(&mut self, len: usize, width: u8) {
        let old = std::mem::replace(self, Column::Zero);
        let get = |i: usize| old.get(i);
        *self = match width {
            0 => Column::Zero,
            1 => Column::U8((0..len).map(|i| get(i) as u8).collect()),
            2 => Column::U16((0..len).map(|i| get(i) as u16).collect()),
            4 => Column::U32((0..len).map(|i| get(i) as u32).collect()),
            _ => Column::U64((0..len).map(get).collect()),
        };
    }

    /// Sets `slot`'s count to 0.
    #[inline]
    fn clear(&mut self, slot: usize) {
        match self {
            Column::Zero => {}
            Column::U8(s) => s[slot] = 0,
            Column::U16(s) => s[slot] = 0,
            Column::U32(s) => s[slot] = 0,
            Column::U64(s) => s[slot] = 0,
        }
    }

    /// Sum of the counts of the slots `r`.
    #[inline]
    fn sum(&self, r: Range<usize>) -> u128 {
        match self {
            Column::Zero => 0,
            Column::U8(s) => sum_narrow(&s[r]),
            Column::U16(s) => sum_narrow(&s[r]),
            Column::U32(s) => sum_narrow(&s[r]),
            Column::U64(s) => s[r].iter().map(|&v| u128::from(v)).sum(),
        }
    }

    /// Heap bytes.
    fn bytes(&self, len: usize) -> usize {
        len * usize::from(self.width())
    }
}

/// A [`Ring`] of exact [`Counts`], stored as two columns (totals, bad counts) each in the
/// narrowest width that holds its counts: the count tiers are most of an SLO's memory, and
/// their buckets rarely need 8 bytes a count. An SLO without a bad event stores no bad counts;
/// one of a few events a second stores a minute in 1 byte and an hour in 2. Counts are the same
/// as in a `Ring<Counts>` in every case, saturation at `u64::MAX` included (the tests compare
/// the two across every width edge). Serialized as the equivalent `Ring<Counts>`, so
/// checkpoints are unchanged.
#[derive(Debug, Clone)]
pub struct CountRing {
    /// Head and bucket arithmetic (its slots are zero-sized).
    ring: Ring<()>,
    total: Column,
    bad: Column,
}

impl PartialEq for CountRing {
    /// Equal counts in the same buckets, whatever the columns' widths.
    fn eq(&self, other: &CountRing) -> bool {
        self.ring == other.ring
            && (0..self.len()).all(|i| {
                self.total.get(i) == other.total.get(i) && self.bad.get(i) == other.bad.get(i)
            })
    }
}

impl CountRing {
    /// An empty ring; `res` and `len` are at least 1 (see [`Ring::new`]).
    pub fn new(res: Dur, len: usize) -> CountRing {
        CountRing {
            ring: Ring::new(res, len),
            total: Column::Zero,
            bad: Column::Zero,
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

    /// Bytes per bucket of the totals and of the bad counts (0, 1, 2, 4 or 8 each).
    pub fn widths(&self) -> (u8, u8) {
        (self.total.width(), self.bad.width())
    }

    /// Moves the head forward to the bucket of `t` (clearing skipped buckets); never backward.
    pub fn advance(&mut self, t: Timestamp) {
        let (head, slot) = (self.ring.head, self.ring.head_slot);
        self.ring.advance(t);
        self.cleared(head, slot);
    }

    /// Clears the buckets the head skipped since it was `head` in `slot` (the zero-sized ring
    /// clears nothing itself).
    #[inline]
    fn cleared(&mut self, head: Option<i64>, slot: usize) {
        let (Some(old), Some(new)) = (head, self.ring.head) else {
            return;
        };
        if new <= old {
            return;
        }
        let len = self.ring.len();
        if (new - old) as u64 >= len as u64 {
            // Everything left the ring: its columns go back to holding nothing.
            self.total = Column::Zero;
            self.bad = Column::Zero;
            return;
        }
        let mut s = slot;
        for _ in 0..new - old {
            s += 1;
            if s == len {
                s = 0;
            }
            self.total.clear(s);
            self.bad.clear(s);
        }
    }

    /// The bucket `k`, if the ring holds it.
    pub fn get(&self, k: i64) -> Option<Counts> {
        let (a, _) = self.ring.held_slots(k.saturating_sub(1), k);
        (!a.is_empty()).then(|| Counts {
            total: self.total.get(a.start),
            bad: self.bad.get(a.start),
        })
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
        let (head, head_slot) = (self.ring.head, self.ring.head_slot);
        let located = self.ring.locate(t);
        if self.ring.head != head {
            self.cleared(head, head_slot);
        }
        match located {
            Located::Slot { slot, back } => {
                let len = self.ring.len();
                let grew = Counts {
                    total: self.total.add(len, slot, total),
                    bad: self.bad.add(len, slot, bad),
                };
                // `locate` placed the instant, so the ring has a head.
                Some((self.ring.head.unwrap_or(0) - back as i64, grew))
            }
            Located::Late => {
                self.ring.note_late(total);
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

    /// The exact (unsaturated) sum of the held buckets in `(lo_excl, hi_incl]`: at most two
    /// contiguous runs of each column.
    pub fn sum_wide(&self, lo_excl: i64, hi_incl: i64) -> WideCounts {
        let (a, b) = self.ring.held_slots(lo_excl, hi_incl);
        WideCounts {
            total: self.total.sum(a.clone()) + self.total.sum(b.clone()),
            bad: self.bad.sum(a) + self.bad.sum(b),
        }
    }

    /// Changes the number of buckets, keeping the newest ones (and the head), as [`Ring::resize`].
    pub fn resize(&mut self, new_len: usize) {
        let mut wide = self.to_wide();
        wide.resize(new_len);
        *self = CountRing::from_wide(&wide);
    }

    /// The same buckets as a full-width ring.
    pub fn to_wide(&self) -> Ring<Counts> {
        self.ring.map(|slot, _| self.counts(slot))
    }

    /// The counts of `slot`.
    fn counts(&self, slot: usize) -> Counts {
        Counts {
            total: self.total.get(slot),
            bad: self.bad.get(slot),
        }
    }

    /// The same buckets from a full-width ring, each column in the narrowest width for them.
    pub fn from_wide(wide: &Ring<Counts>) -> CountRing {
        let len = wide.len();
        CountRing {
            ring: wide.map(|_, _| ()),
            total: Column::from_counts(len, |i| wide.slots[i].total),
            bad: Column::from_counts(len, |i| wide.slots[i].bad),
        }
    }

    /// Heap bytes: the two columns' widths per bucket.
    pub fn bytes(&self) -> usize {
        let len = self.ring.len();
        self.total.bytes(len) + self.bad.bytes(len)
    }
}

impl Serialize for CountRing {
    /// Field for field what `Ring<Counts>` writes, read straight from the columns (no wide copy
    /// of the ring per checkpoint).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        /// The buckets as the sequence of `Counts` a `Ring<Counts>` holds.
        struct Slots<'a>(&'a CountRing);
        impl Serialize for Slots<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq((0..self.0.len()).map(|i| self.0.counts(i)))
            }
        }
        let r = &self.ring;
        let mut st = s.serialize_struct("Ring", 6)?;
        st.serialize_field("res", &r.res)?;
        st.serialize_field("slots", &Slots(self))?;
        st.serialize_field("head", &r.head)?;
        st.serialize_field("head_slot", &r.head_slot)?;
        st.serialize_field("head_start", &r.head_start)?;
        st.serialize_field("late_dropped", &r.late_dropped)?;
        st.end()
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

    /// An amount of events: mostly small, often just below or above the edge of a column width
    /// up to `widest` (0: 1-byte edge only, 1: up to 2 bytes, 2: up to 4 bytes, 3: up to 8,
    /// near 2^64 included), so rings stay narrow for a while in some runs and widen in others.
    fn amount(seed: &mut u64, widest: u64) -> u64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let r = *seed >> 33;
        let edges = [
            u64::from(u8::MAX),
            u64::from(u16::MAX),
            u64::from(u32::MAX),
            u64::MAX,
        ];
        let near = |edge: u64| edge.saturating_sub(2).saturating_add((r >> 6) % 4);
        match r % 8 {
            0 => near(edges[((r >> 3) % (widest + 1)) as usize]),
            1 => edges[((r >> 3) % (widest + 1)) as usize] / 2 + (r >> 6) % 3,
            2 => 0,
            _ => (r >> 4) % 5,
        }
    }

    #[test]
    fn count_ring_equals_the_wide_ring_across_every_width_edge() {
        let mut widths = std::collections::BTreeSet::new();
        for seed0 in 0..48u64 {
            let mut seed = seed0;
            let widest = seed0 % 4;
            let (res, len) = (5u64, 7usize);
            let mut wide: Ring<Counts> = Ring::new(Dur(res), len);
            let mut packed = CountRing::new(Dur(res), len);
            let mut t = 0i64;
            for step in 0..1500 {
                let r = amount(&mut seed, widest);
                match r % 11 {
                    // Backward, forward and far jumps, so wide buckets rotate out and back in.
                    0..=6 => {
                        t = (t + (r % 13) as i64 - 5).max(0);
                        if r.is_multiple_of(97) {
                            t += 100;
                        }
                        let total = amount(&mut seed, widest);
                        let bad = amount(&mut seed, widest).min(total);
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
                assert_eq!(packed, CountRing::from_wide(&wide));
                let h = wide.head().unwrap_or(0);
                for k in h - 12..=h + 1 {
                    assert_eq!(packed.get(k), wide.get(k).copied(), "bucket {k}");
                    for lo in k - 12..k {
                        assert_eq!(packed.sum_wide(lo, k), wide.sum_wide(lo, k));
                    }
                }
                // Each column is as narrow as the largest count it held since it was last
                // emptied or decoded, and never narrower than the counts it holds.
                let (tw, bw) = packed.widths();
                let most = |f: fn(&Counts) -> u64| wide.iter().map(f).max().unwrap_or(0);
                assert!(
                    tw >= width_of(most(|c| c.total)),
                    "seed {seed0} step {step}"
                );
                assert!(bw >= width_of(most(|c| c.bad)), "seed {seed0} step {step}");
                assert_eq!(packed.bytes(), packed.len() * usize::from(tw + bw));
                widths.insert(tw);
                widths.insert(bw);
            }
        }
        // The runs went through every width.
        assert_eq!(widths.into_iter().collect::<Vec<_>>(), [0, 1, 2, 4, 8]);
    }

    #[test]
    fn columns_widen_at_each_edge_and_stay_exact() {
        let mut r = CountRing::new(Dur(10), 3);
        assert_eq!(r.bytes(), 0, "an empty ring stores no counts");
        assert_eq!(
            r.add_tracked(ts(0), 3, 0),
            Some((0, Counts { total: 3, bad: 0 }))
        );
        assert_eq!(r.widths(), (1, 0));
        for (edge, width) in [(255u64, 1u8), (65_535, 2), (u64::from(u32::MAX), 4)] {
            // Up to the edge in this width, one more in the next.
            let have = r.get(0).map_or(0, |c| c.total);
            assert!(r.add(ts(1), edge - have, 0));
            assert_eq!(r.widths().0, width, "at {edge}");
            assert!(r.add(ts(2), 1, 1));
            assert_eq!(r.get(0).map(|c| c.total), Some(edge + 1));
            assert!(r.widths().0 > width, "past {edge}");
        }
        assert_eq!(r.widths(), (8, 1));
        // Saturation at u64::MAX, as Ring<Counts>.
        let have = r.get(0).map_or(0, |c| c.total);
        assert_eq!(
            r.add_tracked(ts(2), u64::MAX, 0),
            Some((
                0,
                Counts {
                    total: u64::MAX - have,
                    bad: 0
                }
            ))
        );
        assert_eq!(r.sum(-1, 0).total, u64::MAX);
        // A later bucket reads and sums in the wide column; a jump past the whole ring frees it.
        assert!(r.add(ts(20), 7, 2));
        assert_eq!(r.sum(0, 2), Counts { total: 7, bad: 2 });
        assert_eq!(r.bytes(), 3 * (8 + 1));
        r.advance(ts(100));
        assert_eq!(r.widths(), (0, 0));
        assert_eq!(r.bytes(), 0);
        assert_eq!(r.sum(-1, 10), Counts::default());
        // A decoded ring takes the width of its counts again.
        assert!(r.add(ts(95), 300, 0));
        let back: CountRing =
            postcard::from_bytes(&postcard::to_allocvec(&r).expect("encode")).expect("decode");
        assert_eq!(back.widths(), (2, 0));
        assert_eq!(back, r);
    }
}
