//! The notification log: what each receiver integration was last told about each group, and
//! the DedupStage decision built on it (Alertmanager's `nflog` and `notify.DedupStage`).
//!
//! An entry is keyed by (group key, receiver, integration index) and records the firing and
//! resolved alert sets of the last *successful* send. Entries are written only when a send is
//! confirmed, so a failed send is decided again (and retried) at the group's next tick. Alert
//! sets are kept as Alertmanager fingerprints; Alertmanager hashes the same label bytes with
//! xxhash, and only set equality matters.
//!
//! Pure: no I/O, no clock.

use std::collections::{BTreeMap, BTreeSet};

use crate::alert::Fingerprint;
use crate::notify::NotifyReason;
use crate::time::{Dur, Timestamp};

/// How long an entry is kept at most (Alertmanager's `--data.retention`).
pub const DEFAULT_RETENTION: Dur = Dur::from_hours(120);

/// Which receiver integration an entry is about.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct NflogKey {
    /// The group key.
    pub group_key: String,
    /// The receiver name.
    pub receiver: String,
    /// The integration's index within the receiver.
    pub integration: usize,
}

/// The timers of the group an entry belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// The route's `group_interval`.
    pub group_interval: Dur,
    /// The route's `repeat_interval`.
    pub repeat_interval: Dur,
}

/// The last successful send to one receiver integration for one group.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    /// Alerts that were firing in that send.
    pub firing: BTreeSet<Fingerprint>,
    /// Alerts that were resolved in that send.
    pub resolved: BTreeSet<Fingerprint>,
    /// When the send was confirmed.
    pub at: Timestamp,
    /// When the entry is dropped: `at + min(retention, 2 × max(repeat_interval,
    /// group_interval))`. Alertmanager (v0.25+) uses `2 × repeat_interval` but only drops
    /// expired entries at its 15-minute maintenance, so in practice an entry always outlives
    /// the next tick; here expiry is exact, so it is never shorter than two group intervals
    /// (otherwise a tiny `repeat_interval` would make every tick a "first notification" and
    /// lose the resolve).
    pub expires_at: Timestamp,
}

/// Every entry, keyed by receiver integration and group. Serialized as a list of
/// `{key, entry}` records (the keys are structs, which JSON maps cannot hold).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(into = "NflogRepr", from = "NflogRepr")]
pub struct Nflog {
    entries: BTreeMap<NflogKey, Entry>,
    retention: Dur,
}

/// The serialized form of [`Nflog`].
#[derive(serde::Serialize, serde::Deserialize)]
struct NflogRepr {
    entries: Vec<KeyedEntry>,
    retention: Dur,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct KeyedEntry {
    key: NflogKey,
    entry: Entry,
}

impl From<Nflog> for NflogRepr {
    fn from(n: Nflog) -> NflogRepr {
        NflogRepr {
            entries: n
                .entries
                .into_iter()
                .map(|(key, entry)| KeyedEntry { key, entry })
                .collect(),
            retention: n.retention,
        }
    }
}

impl From<NflogRepr> for Nflog {
    fn from(r: NflogRepr) -> Nflog {
        Nflog {
            entries: r.entries.into_iter().map(|e| (e.key, e.entry)).collect(),
            retention: r.retention,
        }
    }
}

impl Default for Nflog {
    fn default() -> Self {
        Nflog::new(DEFAULT_RETENTION)
    }
}

impl Nflog {
    /// An empty log whose entries live at most `retention`.
    pub fn new(retention: Dur) -> Nflog {
        Nflog {
            entries: BTreeMap::new(),
            retention,
        }
    }

    /// The entry for a key, if any (expired entries count as absent).
    pub fn get(&self, key: &NflogKey, now: Timestamp) -> Option<&Entry> {
        self.entries.get(key).filter(|e| e.expires_at > now)
    }

    /// Records a confirmed send (the group's timers decide how long the entry lives).
    pub fn record(
        &mut self,
        key: NflogKey,
        firing: BTreeSet<Fingerprint>,
        resolved: BTreeSet<Fingerprint>,
        timers: Timers,
        now: Timestamp,
    ) {
        let longest = timers.repeat_interval.max(timers.group_interval);
        let keep = self.retention.min(Dur(longest.millis().saturating_mul(2)));
        self.entries.insert(
            key,
            Entry {
                firing,
                resolved,
                at: now,
                expires_at: now.add(keep),
            },
        );
    }

    /// The entry for a key as stored, expired or not (what the alerting journal records).
    pub fn entry(&self, key: &NflogKey) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// Puts back an entry exactly as it was recorded (replaying the alerting journal).
    pub fn put(&mut self, key: NflogKey, entry: Entry) {
        self.entries.insert(key, entry);
    }

    /// Drops expired entries; returns how many.
    pub fn gc(&mut self, now: Timestamp) -> usize {
        let before = self.entries.len();
        self.entries.retain(|_, e| e.expires_at > now);
        before - self.entries.len()
    }

    /// Every live entry.
    pub fn iter(&self) -> impl Iterator<Item = (&NflogKey, &Entry)> {
        self.entries.iter()
    }
}

/// Alertmanager's DedupStage decision (`needsUpdate`), checked in this order:
/// 1. no entry: notify (`First`) if anything fires, else nothing (the receiver never heard of
///    these alerts);
/// 2. firing alerts the receiver was not told about: `First` if the last send had nothing
///    firing, else `NewAlerts`;
/// 3. nothing firing: `AllResolved` if the last send had firing alerts (even without
///    `send_resolved`, to clear the entry), else nothing (fire and resolve within one interval
///    is silent);
/// 4. `send_resolved` and resolved alerts the receiver was not told about: `SomeResolved`;
/// 5. the last send is `repeat_interval` old or older: `Repeat`. (Alertmanager compares
///    strictly and stamps the entry after the send, so a tick landing exactly on the boundary
///    waits one more `group_interval` — prometheus/alertmanager#676; here the boundary counts.)
pub fn needs_update(
    entry: Option<&Entry>,
    firing: &BTreeSet<Fingerprint>,
    resolved: &BTreeSet<Fingerprint>,
    send_resolved: bool,
    repeat_interval: Dur,
    now: Timestamp,
) -> Option<NotifyReason> {
    let Some(e) = entry else {
        return (!firing.is_empty()).then_some(NotifyReason::First);
    };
    if !firing.is_subset(&e.firing) {
        return Some(if e.firing.is_empty() {
            NotifyReason::First
        } else {
            NotifyReason::NewAlerts
        });
    }
    if firing.is_empty() {
        return (!e.firing.is_empty()).then_some(NotifyReason::AllResolved);
    }
    if send_resolved && !resolved.is_subset(&e.resolved) {
        return Some(NotifyReason::SomeResolved);
    }
    (e.at.add(repeat_interval) <= now).then_some(NotifyReason::Repeat)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[u64]) -> BTreeSet<Fingerprint> {
        ids.iter().copied().map(Fingerprint).collect()
    }

    fn entry(firing: &[u64], resolved: &[u64], at: i64) -> Entry {
        Entry {
            firing: set(firing),
            resolved: set(resolved),
            at: Timestamp::from_secs(at),
            expires_at: Timestamp::from_secs(at + 1000),
        }
    }

    #[test]
    fn dedup_truth_table() {
        let ri = Dur::from_secs(100);
        let now = Timestamp::from_secs(50);
        use NotifyReason::*;
        type Case<'a> = (
            Option<Entry>,
            &'a [u64],
            &'a [u64],
            bool,
            Option<NotifyReason>,
        );
        let cases: Vec<Case> = vec![
            (None, &[1], &[], false, Some(First)),
            (None, &[], &[1], true, None),
            (None, &[], &[], true, None),
            (Some(entry(&[], &[1], 0)), &[1], &[], false, Some(First)),
            (
                Some(entry(&[1], &[], 0)),
                &[1, 2],
                &[],
                false,
                Some(NewAlerts),
            ),
            (
                Some(entry(&[1], &[], 0)),
                &[],
                &[1],
                false,
                Some(AllResolved),
            ),
            (
                Some(entry(&[1], &[], 0)),
                &[],
                &[1],
                true,
                Some(AllResolved),
            ),
            (Some(entry(&[], &[1], 0)), &[], &[1, 2], true, None),
            (
                Some(entry(&[1, 2], &[], 0)),
                &[1],
                &[2],
                true,
                Some(SomeResolved),
            ),
            (Some(entry(&[1, 2], &[], 0)), &[1], &[2], false, None),
            (Some(entry(&[1], &[2], 0)), &[1], &[2], true, None),
            // A firing alert that vanishes (subset) does not notify.
            (Some(entry(&[1, 2], &[], 0)), &[1], &[], true, None),
            (Some(entry(&[1], &[], -50)), &[1], &[], false, Some(Repeat)),
            (Some(entry(&[1], &[], -49)), &[1], &[], false, None),
        ];
        for (i, (e, f, r, sr, want)) in cases.into_iter().enumerate() {
            assert_eq!(
                needs_update(e.as_ref(), &set(f), &set(r), sr, ri, now),
                want,
                "case {i}"
            );
        }
    }

    fn timers(gi: u64, ri: u64) -> Timers {
        Timers {
            group_interval: Dur::from_secs(gi),
            repeat_interval: Dur::from_secs(ri),
        }
    }

    #[test]
    fn entries_expire_after_twice_the_longest_interval_or_retention() {
        let mut log = Nflog::new(Dur::from_secs(300));
        let key = |g: &str| NflogKey {
            group_key: g.into(),
            receiver: "r".into(),
            integration: 0,
        };
        log.record(key("a"), set(&[1]), set(&[]), timers(10, 100), Timestamp(0));
        log.record(
            key("b"),
            set(&[1]),
            set(&[]),
            timers(10, 1000),
            Timestamp(0),
        );
        // A repeat interval below the group interval: the group interval decides.
        log.record(key("c"), set(&[1]), set(&[]), timers(50, 0), Timestamp(0));
        assert!(log.get(&key("c"), Timestamp::from_secs(99)).is_some());
        assert!(log.get(&key("c"), Timestamp::from_secs(100)).is_none());
        assert!(log.get(&key("a"), Timestamp::from_secs(199)).is_some());
        assert!(log.get(&key("a"), Timestamp::from_secs(200)).is_none());
        assert!(log.get(&key("b"), Timestamp::from_secs(299)).is_some());
        assert_eq!(log.gc(Timestamp::from_secs(250)), 2);
        assert_eq!(log.gc(Timestamp::from_secs(300)), 1);
        assert_eq!(log.iter().count(), 0);
    }
}
