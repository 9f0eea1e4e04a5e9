//! The dispatcher: routes alerts into aggregation groups, runs each group's timers
//! (`group_wait`, `group_interval`, `repeat_interval`), and at each flush removes inhibited and
//! silenced alerts, asks the notification log whether each receiver integration needs to hear
//! about the group (Alertmanager's DedupStage), and hands out notifications with their reason.
//!
//! "Decide" and "mark done" are separate: [`Dispatcher::tick`] returns what to send, and only
//! [`Dispatcher::mark_sent`], called once a send succeeded, writes the notification log. A
//! failed send is therefore decided again, and retried, at the group's next tick; a write-ahead
//! log can sit between the two calls.
//!
//! Timers, exactly (all integer milliseconds on the caller's clock):
//! - a group is created when its first alert arrives and flushes `group_wait` later; when an
//!   alert arriving before the first flush is old (`starts_at + group_wait < now`) the group
//!   flushes at once, as Alertmanager does;
//! - after a flush at `t` the next one is at `t + group_interval`;
//! - a group whose alerts are all resolved and notified is removed, so a new incident starts a
//!   new group (with a fresh `group_wait`).
//!
//! Pure: no I/O, no tokio, no clock reads; `now` is always passed in.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use crate::alert::{Alert, Fingerprint, labels_string};
use crate::notify::inhibit::{Inhibition, Inhibitor};
use crate::notify::nflog::{self, Nflog, NflogKey, Timers};
use crate::notify::route::{DEFAULT_GROUP_INTERVAL, DEFAULT_REPEAT_INTERVAL, Route};
use crate::notify::silence::Silences;
use crate::notify::{Notification, SuppressReason};
use crate::rules::model::Labels;
use crate::time::{Dur, Timestamp};

/// Receiver name → `send_resolved` of each of its integrations, in config order. A receiver
/// with no integrations swallows its alerts.
pub type Receivers = BTreeMap<String, Vec<bool>>;

/// Why a dispatcher could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DispatchError {
    /// A route names a receiver that is not configured.
    #[error(
        "route {route} sends to receiver `{receiver}`, which is not configured; add it under `receivers:` or fix the name"
    )]
    UnknownReceiver {
        /// The route key.
        route: String,
        /// The missing receiver.
        receiver: String,
    },
}

/// One notification for one receiver integration.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// The integration's index within `notification.receiver`.
    pub integration: usize,
    /// What to send.
    pub notification: Notification,
}

/// An alert held back from one receiver integration at a flush, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Suppression {
    /// The group's key.
    pub group_key: String,
    /// The receiver.
    pub receiver: String,
    /// The integration's index within the receiver.
    pub integration: usize,
    /// The alert.
    pub fingerprint: Fingerprint,
    /// The alert's labels.
    pub labels: Labels,
    /// Silenced, inhibited or deduplicated.
    pub reason: SuppressReason,
    /// Silence ids (silenced) or inhibiting alert fingerprints (inhibited); empty when
    /// deduplicated.
    pub by: Vec<String>,
}

/// What one [`Dispatcher::tick`] decided.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Flush {
    /// Notifications to send; confirm each success with [`Dispatcher::mark_sent`].
    pub notifications: Vec<Outgoing>,
    /// Alerts held back, with the reason.
    pub suppressed: Vec<Suppression>,
    /// Notification-log entries cleared without a send: every alert of the group resolved and
    /// the integration does not want resolved notifications (Alertmanager logs the empty firing
    /// set so that a re-fire is a "first notification" again).
    pub cleared: Vec<NflogKey>,
}

/// Whether a firing alert currently reaches anyone (silences and inhibition), as Alertmanager's
/// API `status.state` says it. Not the alert's lifecycle state (pending, firing, held,
/// flapping, resolved): that is [`crate::alert::lifecycle::Phase`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SuppressionState {
    /// Not silenced, not inhibited.
    Active,
    /// Silenced or inhibited.
    Suppressed,
}

impl SuppressionState {
    /// `active` or `suppressed`, as in Alertmanager's API.
    pub fn as_str(self) -> &'static str {
        match self {
            SuppressionState::Active => "active",
            SuppressionState::Suppressed => "suppressed",
        }
    }
}

/// A firing alert as the API shows it (Alertmanager's `gettableAlert`): its status is computed
/// now, not at the last flush.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertView {
    /// The alert (`ends_at` is `None` while firing).
    pub alert: Alert,
    /// Its fingerprint.
    pub fingerprint: Fingerprint,
    /// Active or suppressed.
    pub state: SuppressionState,
    /// Ids of the active silences matching it.
    pub silenced_by: Vec<String>,
    /// Fingerprints of the firing alerts inhibiting it.
    pub inhibited_by: Vec<Fingerprint>,
    /// The receivers its routes send to, in routing order.
    pub receivers: Vec<String>,
}

/// An aggregation group as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupView {
    /// The group key.
    pub group_key: String,
    /// The receiver.
    pub receiver: String,
    /// The group labels.
    pub group_labels: Labels,
    /// The alerts held (firing and not yet notified resolved ones).
    pub alerts: Vec<Fingerprint>,
    /// When the group flushes next.
    pub next_flush: Timestamp,
}

/// The unconfirmed sends of a group's last flush.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Pending {
    /// The flush time (`Notification::at`).
    at: Timestamp,
    /// Integrations still to confirm.
    outstanding: BTreeSet<usize>,
    /// Alerts resolved at the flush, with their end: dropped once every send is confirmed,
    /// unless they changed since.
    resolved: BTreeMap<Fingerprint, Timestamp>,
}

/// A group's key in the dispatcher: (route id, group labels as a string).
pub type GroupId = (String, String);

/// One aggregation group: the alerts of one route with the same group labels. Opaque outside
/// the dispatcher; the alerting journal stores it as a value.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Group {
    route_id: String,
    group_key: String,
    group_labels: Labels,
    receiver: String,
    group_wait: Dur,
    group_interval: Dur,
    repeat_interval: Dur,
    alerts: BTreeSet<Fingerprint>,
    next_flush: Timestamp,
    has_flushed: bool,
    pending: Option<Pending>,
}

/// Everything the dispatcher must persist to survive a restart without re-paging or losing a
/// resolve (the silences are persisted separately).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DispatcherState {
    alerts: Vec<Alert>,
    groups: Vec<Group>,
    nflog: Nflog,
}

impl Group {
    /// Its key in the dispatcher.
    pub fn id(&self) -> GroupId {
        (self.route_id.clone(), labels_string(&self.group_labels))
    }
}

impl DispatcherState {
    /// The stored alerts, the groups and the notification log, for the alerting journal.
    pub fn into_parts(self) -> (Vec<Alert>, Vec<Group>, Nflog) {
        (self.alerts, self.groups, self.nflog)
    }

    /// The inverse of [`DispatcherState::into_parts`].
    pub fn from_parts(alerts: Vec<Alert>, groups: Vec<Group>, nflog: Nflog) -> DispatcherState {
        DispatcherState {
            alerts,
            groups,
            nflog,
        }
    }
}

/// The aggregation groups with two indexes kept in step with them: the ordered set of their
/// deadlines (so the next deadline and the due groups cost O(log groups), not a scan per loop
/// turn) and the groups of each (group key, receiver) (so a delivery confirmation finds its
/// group without a scan). Every change of a group's `next_flush`, `group_key` or `receiver`
/// goes through here.
#[derive(Debug, Clone, Default)]
struct Groups {
    by_id: BTreeMap<GroupId, Group>,
    deadlines: BTreeSet<(Timestamp, GroupId)>,
    by_key: BTreeMap<(String, String), BTreeSet<GroupId>>,
}

impl Groups {
    fn from_map(by_id: BTreeMap<GroupId, Group>) -> Groups {
        let mut g = Groups {
            by_id,
            ..Groups::default()
        };
        for (id, group) in &g.by_id {
            g.deadlines.insert((group.next_flush, id.clone()));
            g.by_key
                .entry((group.group_key.clone(), group.receiver.clone()))
                .or_default()
                .insert(id.clone());
        }
        g
    }

    fn get(&self, id: &GroupId) -> Option<&Group> {
        self.by_id.get(id)
    }

    /// A group to change; its `next_flush`, `group_key` and `receiver` must not change through
    /// it (use [`Groups::set_next_flush`]).
    fn get_mut(&mut self, id: &GroupId) -> Option<&mut Group> {
        self.by_id.get_mut(id)
    }

    /// The group `id`, created by `new` when missing.
    fn get_or_insert(&mut self, id: &GroupId, new: impl FnOnce() -> Group) -> &mut Group {
        if !self.by_id.contains_key(id) {
            let g = new();
            self.deadlines.insert((g.next_flush, id.clone()));
            self.by_key
                .entry((g.group_key.clone(), g.receiver.clone()))
                .or_default()
                .insert(id.clone());
            self.by_id.insert(id.clone(), g);
        }
        match self.by_id.get_mut(id) {
            Some(g) => g,
            None => unreachable!("inserted above"),
        }
    }

    fn set_next_flush(&mut self, id: &GroupId, at: Timestamp) {
        if let Some(g) = self.by_id.get_mut(id)
            && g.next_flush != at
        {
            self.deadlines.remove(&(g.next_flush, id.clone()));
            self.deadlines.insert((at, id.clone()));
            g.next_flush = at;
        }
    }

    fn remove(&mut self, id: &GroupId) -> Option<Group> {
        let g = self.by_id.remove(id)?;
        self.deadlines.remove(&(g.next_flush, id.clone()));
        let key = (g.group_key.clone(), g.receiver.clone());
        if let Some(ids) = self.by_key.get_mut(&key) {
            ids.remove(id);
            if ids.is_empty() {
                self.by_key.remove(&key);
            }
        }
        Some(g)
    }

    fn clear(&mut self) {
        *self = Groups::default();
    }

    fn retain(&mut self, mut keep: impl FnMut(&Group) -> bool) {
        let gone: Vec<GroupId> = self
            .by_id
            .iter()
            .filter(|(_, g)| !keep(g))
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            self.remove(&id);
        }
    }

    fn values(&self) -> impl Iterator<Item = &Group> {
        self.by_id.values()
    }

    fn next_deadline(&self) -> Option<Timestamp> {
        self.deadlines.first().map(|(t, _)| *t)
    }

    /// The groups due at `now`, earliest deadline first.
    fn due(&self, now: Timestamp) -> Vec<GroupId> {
        self.deadlines
            .iter()
            .take_while(|(t, _)| *t <= now)
            .map(|(_, id)| id.clone())
            .collect()
    }

    /// The groups with this group key and receiver (in id order).
    fn with_key(&self, group_key: &str, receiver: &str) -> Vec<GroupId> {
        self.by_key
            .get(&(group_key.to_owned(), receiver.to_owned()))
            .map(|ids| ids.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Panics when an index disagrees with the groups (for tests).
    #[cfg(test)]
    fn check(&self) {
        let rebuilt = Groups::from_map(self.by_id.clone());
        assert_eq!(self.deadlines, rebuilt.deadlines, "deadline index");
        assert_eq!(self.by_key, rebuilt.by_key, "group key index");
    }
}

/// The notification pipeline's state machine.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    route: Route,
    inhibitor: Inhibitor,
    receivers: Receivers,
    alerts: BTreeMap<Fingerprint, Alert>,
    /// Keyed by (route id, group labels string).
    groups: Groups,
    nflog: Nflog,
    /// Counts the changes to what [`Dispatcher::alerts_view`] and [`Dispatcher::groups`] show
    /// (alerts, groups and their members and deadlines, the routing and inhibition config).
    changes: u64,
}

fn check_receivers(route: &Route, receivers: &Receivers) -> Result<(), DispatchError> {
    for r in route.walk() {
        if !receivers.contains_key(&r.receiver) {
            return Err(DispatchError::UnknownReceiver {
                route: r.key().to_string(),
                receiver: r.receiver.clone(),
            });
        }
    }
    Ok(())
}

/// True when the alert is resolved at `now` (its end is not in the future).
fn resolved_at(a: &Alert, now: Timestamp) -> bool {
    a.ends_at.is_some_and(|e| e <= now)
}

impl Dispatcher {
    /// A dispatcher with no alerts and an empty notification log.
    pub fn new(
        route: Route,
        inhibitor: Inhibitor,
        receivers: Receivers,
    ) -> Result<Dispatcher, DispatchError> {
        Dispatcher::with_nflog(route, inhibitor, receivers, Nflog::default())
    }

    /// A dispatcher with no alerts and the given notification log (e.g. one with a different
    /// retention).
    pub fn with_nflog(
        route: Route,
        inhibitor: Inhibitor,
        receivers: Receivers,
        nflog: Nflog,
    ) -> Result<Dispatcher, DispatchError> {
        check_receivers(&route, &receivers)?;
        Ok(Dispatcher {
            route,
            inhibitor,
            receivers,
            alerts: BTreeMap::new(),
            groups: Groups::default(),
            nflog,
            changes: 0,
        })
    }

    /// Takes in alerts from the sources: new ones, changed annotations, resolves (`ends_at`
    /// set; an `ends_at` in the future is a lease that resolves the alert when it passes).
    /// Empty-valued labels are dropped and alerts without labels ignored, as Alertmanager does.
    /// An alert whose activity overlaps the stored one of the same fingerprint is merged with
    /// Alertmanager's rules (earliest start wins, annotations from the newest, the latest end
    /// wins between two resolves); otherwise it replaces it (a re-fire is a new incident).
    /// Returns how many alerts were ignored.
    pub fn upsert(&mut self, alerts: impl IntoIterator<Item = Alert>, now: Timestamp) -> usize {
        let mut ignored = 0;
        self.changes += 1;
        for mut a in alerts {
            a.labels.retain(|_, v| !v.is_empty());
            if a.labels.is_empty() {
                ignored += 1;
                continue;
            }
            let fp = a.fingerprint();
            let merged = match self.alerts.get(&fp) {
                Some(old) if overlaps(old, &a) => merge(old, a, now),
                _ => a,
            };
            self.insert(fp, &merged, now, true);
            self.alerts.insert(fp, merged);
        }
        ignored
    }

    /// Puts an alert into the groups of every route it matches, creating groups as needed.
    fn insert(&mut self, fp: Fingerprint, a: &Alert, now: Timestamp, old_skips_wait: bool) {
        for r in self.route.matching(&a.labels) {
            let group_labels = r.group_by.group_labels(&a.labels);
            let id = (r.id().to_string(), labels_string(&group_labels));
            let g = self.groups.get_or_insert(&id, || Group {
                route_id: r.id().to_string(),
                group_key: r.group_key(&group_labels),
                group_labels,
                receiver: r.receiver.clone(),
                group_wait: r.group_wait,
                group_interval: r.group_interval,
                repeat_interval: r.repeat_interval,
                alerts: BTreeSet::new(),
                next_flush: now.add(r.group_wait),
                has_flushed: false,
                pending: None,
            });
            g.alerts.insert(fp);
            if old_skips_wait
                && !g.has_flushed
                && a.starts_at.add(g.group_wait) < now
                && g.next_flush > now
            {
                self.groups.set_next_flush(&id, now);
            }
        }
    }

    /// When the next group flushes (`None` without groups). Call [`Dispatcher::tick`] then.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.groups.next_deadline()
    }

    /// Flushes every group that is due at `now`: evaluates inhibition over all alerts, removes
    /// inhibited and silenced alerts per receiver integration, keeps a resolved alert only for
    /// the integrations that were told it was firing (for them its resolve always goes
    /// through), runs the dedup
    /// decision and returns the notifications to send with their reasons, and the suppressions.
    pub fn tick(&mut self, now: Timestamp, silences: &Silences) -> Flush {
        let mut flush = Flush::default();
        let mut due = self.groups.due(now);
        // In id order, as before the deadline index: the order of the notifications.
        due.sort();
        if !due.is_empty() {
            self.changes += 1;
            let inhibition = self.inhibitor.evaluate(self.alerts.values(), now);
            let mut silenced: BTreeMap<Fingerprint, Vec<String>> = BTreeMap::new();
            for id in due {
                self.flush_group(&id, now, silences, &inhibition, &mut silenced, &mut flush);
            }
            self.collect_garbage(now);
        }
        flush
    }

    fn flush_group(
        &mut self,
        id: &(String, String),
        now: Timestamp,
        silences: &Silences,
        inhibition: &Inhibition,
        silenced: &mut BTreeMap<Fingerprint, Vec<String>>,
        flush: &mut Flush,
    ) {
        let Some(interval) = self.groups.get(id).map(|g| g.group_interval) else {
            return;
        };
        self.groups.set_next_flush(id, now.add(interval));
        let Some(g) = self.groups.get_mut(id) else {
            return;
        };
        g.has_flushed = true;
        // The snapshot: firing alerts carry no end (Alertmanager zeroes `EndsAt` at flush).
        let mut snapshot: Vec<(Fingerprint, Alert)> = g
            .alerts
            .iter()
            .filter_map(|fp| self.alerts.get(fp).map(|a| (*fp, a.clone())))
            .collect();
        for (_, a) in &mut snapshot {
            if !resolved_at(a, now) {
                a.ends_at = None;
            }
        }
        snapshot.sort_by(|(_, a), (_, b)| alert_order(&a.labels, &b.labels));
        let resolved: BTreeMap<Fingerprint, Timestamp> = snapshot
            .iter()
            .filter_map(|(fp, a)| a.ends_at.map(|e| (*fp, e)))
            .collect();
        let integrations = self.receivers.get(&g.receiver).cloned().unwrap_or_default();
        let mut outstanding = BTreeSet::new();
        for (idx, send_resolved) in integrations.into_iter().enumerate() {
            let key = NflogKey {
                group_key: g.group_key.clone(),
                receiver: g.receiver.clone(),
                integration: idx,
            };
            let entry = self.nflog.get(&key, now);
            let mut kept: Vec<&(Fingerprint, Alert)> = Vec::with_capacity(snapshot.len());
            for item in &snapshot {
                let (fp, a) = item;
                let told_firing = entry.is_some_and(|e| e.firing.contains(fp));
                if a.ends_at.is_some() {
                    // A resolve is news only to an integration that was told the alert fired
                    // (then it goes through silences and inhibition). One that never heard of
                    // it (inhibited, silenced, or fired and resolved between two flushes)
                    // gets no resolve for it, stricter than Alertmanager, which lists such an
                    // alert in the group's next notification once nothing mutes it.
                    if told_firing {
                        kept.push(item);
                    }
                    continue;
                }
                let suppress = |reason, by: Vec<String>| Suppression {
                    group_key: g.group_key.clone(),
                    receiver: g.receiver.clone(),
                    integration: idx,
                    fingerprint: *fp,
                    labels: a.labels.clone(),
                    reason,
                    by,
                };
                let inhibitors = inhibition.inhibited_by(*fp);
                if !inhibitors.is_empty() {
                    let by = inhibitors.iter().map(ToString::to_string).collect();
                    flush
                        .suppressed
                        .push(suppress(SuppressReason::Inhibited, by));
                    continue;
                }
                let sil = silenced
                    .entry(*fp)
                    .or_insert_with(|| silences.silenced_by(&a.labels, now));
                if !sil.is_empty() {
                    flush
                        .suppressed
                        .push(suppress(SuppressReason::Silenced, sil.clone()));
                    continue;
                }
                kept.push(item);
            }
            // Alertmanager's pipeline stops when nothing is left after muting.
            if kept.is_empty() {
                continue;
            }
            let firing: BTreeSet<Fingerprint> = kept
                .iter()
                .filter(|(_, a)| a.ends_at.is_none())
                .map(|(fp, _)| *fp)
                .collect();
            let resolved_set: BTreeSet<Fingerprint> = kept
                .iter()
                .filter(|(_, a)| a.ends_at.is_some())
                .map(|(fp, _)| *fp)
                .collect();
            let Some(reason) = nflog::needs_update(
                entry,
                &firing,
                &resolved_set,
                send_resolved,
                g.repeat_interval,
                now,
            ) else {
                for (fp, a) in &kept {
                    flush.suppressed.push(Suppression {
                        group_key: g.group_key.clone(),
                        receiver: g.receiver.clone(),
                        integration: idx,
                        fingerprint: *fp,
                        labels: a.labels.clone(),
                        reason: SuppressReason::Deduplicated,
                        by: Vec::new(),
                    });
                }
                continue;
            };
            let alerts: Vec<Alert> = kept
                .iter()
                .filter(|(_, a)| send_resolved || a.ends_at.is_none())
                .map(|(_, a)| a.clone())
                .collect();
            if alerts.is_empty() {
                // All resolved, resolved not wanted: nothing to send, but the log is cleared.
                let timers = Timers {
                    group_interval: g.group_interval,
                    repeat_interval: g.repeat_interval,
                };
                self.nflog
                    .record(key.clone(), firing, resolved_set, timers, now);
                flush.cleared.push(key);
                continue;
            }
            outstanding.insert(idx);
            flush.notifications.push(Outgoing {
                integration: idx,
                notification: Notification {
                    receiver: g.receiver.clone(),
                    group_key: g.group_key.clone(),
                    group_labels: g.group_labels.clone(),
                    reason,
                    inhibited: inhibition.count_any(&firing),
                    alerts,
                    at: now,
                },
            });
        }
        g.pending = Some(Pending {
            at: now,
            outstanding,
            resolved,
        });
        self.finish_if_done(id);
    }

    /// When a group's last flush is fully confirmed, drops the resolved alerts it notified
    /// (unless they changed since), and the group itself once empty; returns the alerts it
    /// dropped from the group.
    fn finish_if_done(&mut self, id: &(String, String)) -> Vec<Fingerprint> {
        let mut dropped = Vec::new();
        let Some(g) = self.groups.get_mut(id) else {
            return dropped;
        };
        let Some(p) = &g.pending else {
            return dropped;
        };
        if !p.outstanding.is_empty() {
            return dropped;
        }
        let resolved = p.resolved.clone();
        g.pending = None;
        for (fp, end) in resolved {
            if self.alerts.get(&fp).is_some_and(|a| a.ends_at == Some(end)) {
                g.alerts.remove(&fp);
                dropped.push(fp);
            }
        }
        if g.alerts.is_empty() {
            self.groups.remove(id);
        }
        dropped
    }

    /// Drops the resolved alerts among `fps` that no group holds any more: the part of
    /// [`Dispatcher::collect_garbage`] a confirmation can make due, found through the groups
    /// each alert routes to instead of a walk over every group and alert.
    fn collect_dropped(&mut self, fps: Vec<Fingerprint>, now: Timestamp) {
        for fp in fps {
            let Some(a) = self.alerts.get(&fp) else {
                continue;
            };
            if !resolved_at(a, now) {
                continue;
            }
            let held = self.route.matching(&a.labels).into_iter().any(|r| {
                let id = (
                    r.id().to_string(),
                    labels_string(&r.group_by.group_labels(&a.labels)),
                );
                self.groups.get(&id).is_some_and(|g| g.alerts.contains(&fp))
            });
            if !held {
                self.alerts.remove(&fp);
            }
        }
    }

    /// Drops resolved alerts no group holds any more, and expired log entries.
    fn collect_garbage(&mut self, now: Timestamp) {
        let held: BTreeSet<Fingerprint> = self
            .groups
            .values()
            .flat_map(|g| g.alerts.iter().copied())
            .collect();
        self.alerts
            .retain(|fp, a| held.contains(fp) || !resolved_at(a, now));
        self.nflog.gc(now);
    }

    /// Confirms a successful send of `n` to integration `integration` of its receiver: writes
    /// the notification log (firing and resolved sets of `n`, stamped `now`) and, once every
    /// send of the group's flush is confirmed, drops the resolved alerts it carried.
    pub fn mark_sent(&mut self, integration: usize, n: &Notification, now: Timestamp) {
        let ids = self.groups.with_key(&n.group_key, &n.receiver);
        // The group may be gone (a reload in between): fall back to its route's timers.
        let timers = ids
            .first()
            .and_then(|id| self.groups.get(id))
            .map(|g| (g.group_interval, g.repeat_interval))
            .or_else(|| {
                self.route
                    .walk()
                    .into_iter()
                    .find(|r| {
                        n.group_key
                            .strip_prefix(r.key())
                            .is_some_and(|rest| rest.starts_with(':'))
                    })
                    .map(|r| (r.group_interval, r.repeat_interval))
            })
            .map_or(
                Timers {
                    group_interval: DEFAULT_GROUP_INTERVAL,
                    repeat_interval: DEFAULT_REPEAT_INTERVAL,
                },
                |(group_interval, repeat_interval)| Timers {
                    group_interval,
                    repeat_interval,
                },
            );
        let firing = n.firing().map(Alert::fingerprint).collect();
        let resolved = n.resolved().map(Alert::fingerprint).collect();
        self.nflog.record(
            NflogKey {
                group_key: n.group_key.clone(),
                receiver: n.receiver.clone(),
                integration,
            },
            firing,
            resolved,
            timers,
            now,
        );
        let mut dropped = Vec::new();
        for id in ids {
            if let Some(p) = self.groups.get_mut(&id).and_then(|g| g.pending.as_mut())
                && p.at == n.at
            {
                p.outstanding.remove(&integration);
            }
            dropped.extend(self.finish_if_done(&id));
        }
        // Only what this confirmation released: a full collection (every group, every alert,
        // the whole log) per delivery would cost the state, not the change; the next tick
        // collects the rest.
        if !dropped.is_empty() {
            // A confirmation changes what the views show only when it releases alerts (and
            // perhaps their groups); the log is not shown.
            self.changes += 1;
        }
        self.collect_dropped(dropped, now);
    }

    /// The firing alerts with their current status (silenced, inhibited, receivers), computed
    /// at `now` rather than at the last flush, sorted in notification order.
    pub fn alerts_view(&self, now: Timestamp, silences: &Silences) -> Vec<AlertView> {
        let inhibition = self.inhibitor.evaluate(self.alerts.values(), now);
        let mut out: Vec<AlertView> = self
            .alerts
            .iter()
            .filter(|(_, a)| !resolved_at(a, now))
            .map(|(fp, a)| {
                let silenced_by = silences.silenced_by(&a.labels, now);
                let inhibited_by = inhibition.inhibited_by(*fp).to_vec();
                let mut receivers: Vec<String> = Vec::new();
                for r in self.route.matching(&a.labels) {
                    if !receivers.contains(&r.receiver) {
                        receivers.push(r.receiver.clone());
                    }
                }
                let mut alert = a.clone();
                alert.ends_at = None;
                AlertView {
                    state: if silenced_by.is_empty() && inhibited_by.is_empty() {
                        SuppressionState::Active
                    } else {
                        SuppressionState::Suppressed
                    },
                    alert,
                    fingerprint: *fp,
                    silenced_by,
                    inhibited_by,
                    receivers,
                }
            })
            .collect();
        out.sort_by(|a, b| alert_order(&a.alert.labels, &b.alert.labels));
        out
    }

    /// A number that changes whenever what [`Dispatcher::alerts_view`] and
    /// [`Dispatcher::groups`] show may have changed, other than by time alone (see
    /// [`Dispatcher::next_lease_end`]): a reader keeps what it built until then.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// The first end of an alert's lease after `now` (an `ends_at` in the future): when time
    /// alone resolves an alert, and so changes the alerts view and inhibition.
    pub fn next_lease_end(&self, now: Timestamp) -> Option<Timestamp> {
        self.alerts
            .values()
            .filter_map(|a| a.ends_at)
            .filter(|t| *t > now)
            .min()
    }

    /// The aggregation groups, by group key and receiver.
    pub fn groups(&self) -> Vec<GroupView> {
        let mut out: Vec<GroupView> = self
            .groups
            .values()
            .map(|g| GroupView {
                group_key: g.group_key.clone(),
                receiver: g.receiver.clone(),
                group_labels: g.group_labels.clone(),
                alerts: g.alerts.iter().copied().collect(),
                next_flush: g.next_flush,
            })
            .collect();
        out.sort_by(|a, b| (&a.group_key, &a.receiver).cmp(&(&b.group_key, &b.receiver)));
        out
    }

    /// The stored alerts and the groups as they are persisted, by key, so that the alerting
    /// journal can record what changed without copying the whole state.
    pub fn persisted(&self) -> (&BTreeMap<Fingerprint, Alert>, &BTreeMap<GroupId, Group>) {
        (&self.alerts, &self.groups.by_id)
    }

    /// The notification log.
    pub fn nflog(&self) -> &Nflog {
        &self.nflog
    }

    /// A snapshot of everything to persist (alerts, groups with their timers, the log).
    pub fn state(&self) -> DispatcherState {
        DispatcherState {
            alerts: self.alerts.values().cloned().collect(),
            groups: self.groups.values().cloned().collect(),
            nflog: self.nflog.clone(),
        }
    }

    /// Rebuilds a dispatcher from a snapshot after a restart. Groups whose route still exists
    /// keep their timers (a flush that was due while the process was down happens at the first
    /// tick, and the log dedups it); unconfirmed sends are decided again. Alerts are re-routed,
    /// so a changed routing tree takes effect.
    pub fn restore(
        route: Route,
        inhibitor: Inhibitor,
        receivers: Receivers,
        state: DispatcherState,
        now: Timestamp,
    ) -> Result<Dispatcher, DispatchError> {
        let mut d = Dispatcher::with_nflog(route, inhibitor, receivers, state.nflog)?;
        let routes: BTreeMap<&str, &Route> =
            d.route.walk().into_iter().map(|r| (r.id(), r)).collect();
        let mut kept = BTreeMap::new();
        for g in state.groups {
            let Some(r) = routes.get(g.route_id.as_str()) else {
                continue;
            };
            let id = (g.route_id.clone(), labels_string(&g.group_labels));
            kept.insert(
                id,
                Group {
                    group_key: r.group_key(&g.group_labels),
                    receiver: r.receiver.clone(),
                    group_wait: r.group_wait,
                    group_interval: r.group_interval,
                    repeat_interval: r.repeat_interval,
                    alerts: BTreeSet::new(),
                    pending: None,
                    ..g
                },
            );
        }
        d.groups = Groups::from_map(kept);
        d.alerts = state
            .alerts
            .into_iter()
            .map(|a| (a.fingerprint(), a))
            .collect();
        d.regroup(now);
        Ok(d)
    }

    /// Applies a new configuration, as an Alertmanager reload does: every group is rebuilt and
    /// its timers restart (`group_wait` from `now`; alerts older than that flush at once and
    /// are deduplicated against the log). Alerts and the log are kept.
    pub fn reload(
        &mut self,
        route: Route,
        inhibitor: Inhibitor,
        receivers: Receivers,
        now: Timestamp,
    ) -> Result<(), DispatchError> {
        check_receivers(&route, &receivers)?;
        self.route = route;
        self.inhibitor = inhibitor;
        self.receivers = receivers;
        self.changes += 1;
        self.groups.clear();
        self.regroup(now);
        Ok(())
    }

    /// Re-inserts every stored alert into its groups, then drops groups left empty.
    fn regroup(&mut self, now: Timestamp) {
        let alerts: Vec<(Fingerprint, Alert)> =
            self.alerts.iter().map(|(k, v)| (*k, v.clone())).collect();
        for (fp, a) in &alerts {
            self.insert(*fp, a, now, true);
        }
        self.groups.retain(|g| !g.alerts.is_empty());
    }
}

/// Whether two versions of an alert overlap in activity (Alertmanager's merge condition); a
/// missing end is "still firing", later than any time.
fn overlaps(old: &Alert, new: &Alert) -> bool {
    let before_old_end = |t: Timestamp| old.ends_at.is_none_or(|e| t < e);
    let end_inside = new
        .ends_at
        .is_some_and(|e| e > old.starts_at && before_old_end(e));
    let start_inside = new.starts_at > old.starts_at && before_old_end(new.starts_at);
    end_inside || start_inside
}

/// Alertmanager's `Alert.Merge` with `new` the younger: earliest start, newest annotations and
/// end, except that between two resolves the latest end wins. (Alertmanager also keeps a later
/// explicit end over a newer synthesised one; burnwatch's sources are in-process and ordered,
/// so the newest end is always the truth for a firing alert.)
fn merge(old: &Alert, new: Alert, now: Timestamp) -> Alert {
    let mut res = new;
    res.starts_at = res.starts_at.min(old.starts_at);
    if let (Some(o), Some(n)) = (old.ends_at, res.ends_at)
        && n <= now
        && o <= now
        && o > n
    {
        res.ends_at = Some(o);
    }
    res
}

/// Alertmanager's send order (`types.AlertSlice`): by `job`, then `instance` (alerts having
/// the label first), then the whole label set (fewer labels first, then pairwise by name and
/// value).
pub fn alert_order(a: &Labels, b: &Labels) -> Ordering {
    for key in ["job", "instance"] {
        match (a.get(key), b.get(key)) {
            (None, None) => continue,
            (None, Some(_)) => return Ordering::Greater,
            (Some(_), None) => return Ordering::Less,
            (Some(x), Some(y)) if x != y => return x.cmp(y),
            _ => {}
        }
    }
    label_set_order(a, b)
}

/// Prometheus' `LabelSet.Before` as an ordering.
fn label_set_order(a: &Labels, b: &Labels) -> Ordering {
    if a.len() != b.len() {
        return a.len().cmp(&b.len());
    }
    // Both sets iterate in name order: walking them side by side visits the union of the
    // names in order (Prometheus sorts it), without collecting it for every comparison.
    let (mut ai, mut bi) = (a.iter().peekable(), b.iter().peekable());
    loop {
        match (ai.peek(), bi.peek()) {
            (None, None) => return Ordering::Equal,
            // The smallest name is missing from `a` (the other side ran out or is further).
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some((na, va)), Some((nb, vb))) => match na.cmp(nb) {
                Ordering::Less => return Ordering::Greater,
                Ordering::Greater => return Ordering::Less,
                Ordering::Equal => {
                    if va != vb {
                        return va.cmp(vb);
                    }
                    ai.next();
                    bi.next();
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::NotifyReason;
    use crate::notify::inhibit::Dependencies;
    use crate::notify::route::{RouteSpec, parse_route};

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn alert(pairs: &[(&str, &str)], start: i64, end: Option<i64>) -> Alert {
        Alert {
            labels: labels(pairs),
            annotations: Labels::new(),
            starts_at: Timestamp::from_secs(start),
            ends_at: end.map(Timestamp::from_secs),
            generator_url: String::new(),
        }
    }

    #[test]
    fn send_order_is_job_instance_then_labels() {
        let mut v = [
            labels(&[("a", "1"), ("b", "2")]),
            labels(&[("instance", "b")]),
            labels(&[("job", "z")]),
            labels(&[("a", "1")]),
            labels(&[("instance", "a"), ("x", "1")]),
            labels(&[("job", "a"), ("instance", "z")]),
            labels(&[("a", "0"), ("c", "2")]),
        ];
        v.sort_by(alert_order);
        let shown: Vec<String> = v.iter().map(labels_string).collect();
        assert_eq!(
            shown,
            [
                r#"{instance="z", job="a"}"#,
                r#"{job="z"}"#,
                r#"{instance="a", x="1"}"#,
                r#"{instance="b"}"#,
                r#"{a="1"}"#,
                r#"{a="0", c="2"}"#,
                r#"{a="1", b="2"}"#,
            ]
        );
    }

    #[test]
    fn merge_follows_alertmanager() {
        let now = Timestamp::from_secs(100);
        let old = alert(&[("a", "x")], 10, None);
        // Later start, still firing: overlap, earliest start kept.
        let m = merge(&old, alert(&[("a", "x")], 20, None), now);
        assert!(overlaps(&old, &alert(&[("a", "x")], 20, None)));
        assert_eq!(m.starts_at, Timestamp::from_secs(10));
        // Two resolves: the latest end wins.
        let r1 = alert(&[("a", "x")], 10, Some(50));
        let r2 = alert(&[("a", "x")], 30, Some(40));
        assert!(overlaps(&r1, &r2));
        assert_eq!(merge(&r1, r2, now).ends_at, Some(Timestamp::from_secs(50)));
        // A resolve now of an alert with a lease: the explicit resolve wins.
        let lease = alert(&[("a", "x")], 10, Some(200));
        let res = alert(&[("a", "x")], 10, Some(100));
        assert!(overlaps(&lease, &res));
        assert_eq!(merge(&lease, res, now).ends_at, Some(now));
        // A shorter lease from a newer push wins too (TestResolvedFilter's `Active(1, 4)`).
        let shorter = alert(&[("a", "x")], 10, Some(150));
        assert_eq!(
            merge(&lease, shorter, now).ends_at,
            Some(Timestamp::from_secs(150))
        );
        // No overlap after a resolve: a new incident.
        assert!(!overlaps(&r1, &alert(&[("a", "x")], 60, None)));
    }

    fn dispatcher(send_resolved: bool) -> Dispatcher {
        let route = Route::build(RouteSpec {
            receiver: Some("r".into()),
            group_wait: Some(Dur::from_secs(1)),
            group_interval: Some(Dur::from_secs(5)),
            repeat_interval: Some(Dur::from_secs(60)),
            ..RouteSpec::default()
        })
        .expect("valid");
        Dispatcher::new(
            route,
            Inhibitor::new(Vec::new(), true, Dependencies::default()),
            [("r".to_string(), vec![send_resolved])].into(),
        )
        .expect("receivers exist")
    }

    #[test]
    fn a_confirmed_resolve_drops_the_alert_once_no_group_holds_it() {
        // Two sibling routes (the first with `continue`) put the alert in two groups with
        // their own receivers.
        let route = parse_route(
            std::path::Path::new("am.yml"),
            "receiver: a\ngroup_wait: 1s\ngroup_interval: 5s\nroutes:\n  - receiver: a\n    continue: true\n  - receiver: b\n",
        )
        .expect("route");
        let mut d = Dispatcher::new(
            route,
            Inhibitor::new(Vec::new(), true, Dependencies::default()),
            [("a".to_string(), vec![true]), ("b".to_string(), vec![true])].into(),
        )
        .expect("receivers exist");
        let s = Silences::default();
        let fp = alert(&[("alertname", "A")], 0, None).fingerprint();
        d.upsert(
            [alert(&[("alertname", "A")], 0, None)],
            Timestamp::from_secs(0),
        );
        let f = d.tick(Timestamp::from_secs(1), &s);
        assert_eq!(f.notifications.len(), 2);
        for o in &f.notifications {
            d.mark_sent(o.integration, &o.notification, Timestamp::from_secs(1));
        }
        d.upsert(
            [alert(&[("alertname", "A")], 0, Some(2))],
            Timestamp::from_secs(2),
        );
        let f = d.tick(Timestamp::from_secs(6), &s);
        assert_eq!(
            f.notifications.len(),
            2,
            "both receivers are told of the resolve"
        );
        let at = Timestamp::from_secs(6);
        d.mark_sent(
            f.notifications[0].integration,
            &f.notifications[0].notification,
            at,
        );
        assert!(
            d.persisted().0.contains_key(&fp),
            "the other group still holds the resolved alert"
        );
        d.mark_sent(
            f.notifications[1].integration,
            &f.notifications[1].notification,
            at,
        );
        assert!(
            !d.persisted().0.contains_key(&fp),
            "confirmed everywhere: the resolved alert is dropped at once"
        );
        assert!(d.persisted().1.is_empty(), "and its groups with it");
    }

    #[test]
    fn unknown_receivers_are_refused() {
        let route = Route::build(RouteSpec {
            receiver: Some("nobody".into()),
            ..RouteSpec::default()
        })
        .expect("valid");
        let e = Dispatcher::new(route, Inhibitor::default(), Receivers::new())
            .expect_err("unknown receiver");
        assert!(e.to_string().contains("`nobody`"), "{e}");
    }

    #[test]
    fn restore_keeps_timers_and_dedups_after_restart() {
        let mut d = dispatcher(true);
        let s = Silences::default();
        d.upsert(
            [alert(&[("alertname", "A")], 0, None)],
            Timestamp::from_secs(0),
        );
        let f = d.tick(Timestamp::from_secs(1), &s);
        assert_eq!(f.notifications.len(), 1);
        let n = &f.notifications[0].notification;
        assert_eq!(n.reason, NotifyReason::First);
        d.mark_sent(0, n, Timestamp::from_secs(1));
        let json = serde_json::to_string(&d.state()).expect("serialize");
        let state: DispatcherState = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(state, d.state());
        // Down from 2s to 20s: the tick due at 6s happens at 20s and is deduplicated.
        let mut back = Dispatcher::restore(
            d.route.clone(),
            d.inhibitor.clone(),
            d.receivers.clone(),
            state,
            Timestamp::from_secs(20),
        )
        .expect("same config");
        assert_eq!(back.next_deadline(), Some(Timestamp::from_secs(6)));
        let f = back.tick(Timestamp::from_secs(20), &s);
        assert!(f.notifications.is_empty());
        assert_eq!(f.suppressed.len(), 1);
        assert_eq!(f.suppressed[0].reason, SuppressReason::Deduplicated);
        assert_eq!(back.next_deadline(), Some(Timestamp::from_secs(25)));
    }

    #[test]
    fn unconfirmed_sends_are_decided_again() {
        let mut d = dispatcher(false);
        let s = Silences::default();
        d.upsert(
            [alert(&[("alertname", "A")], 0, None)],
            Timestamp::from_secs(0),
        );
        let f = d.tick(Timestamp::from_secs(1), &s);
        assert_eq!(f.notifications.len(), 1);
        // No mark_sent: the next tick sends the first notification again.
        let f = d.tick(Timestamp::from_secs(6), &s);
        assert_eq!(f.notifications.len(), 1);
        assert_eq!(f.notifications[0].notification.reason, NotifyReason::First);
        d.mark_sent(0, &f.notifications[0].notification, Timestamp::from_secs(6));
        // Resolve without send_resolved: the log is cleared silently and the group goes away.
        d.upsert(
            [alert(&[("alertname", "A")], 0, Some(7))],
            Timestamp::from_secs(7),
        );
        let f = d.tick(Timestamp::from_secs(11), &s);
        assert!(f.notifications.is_empty());
        assert_eq!(f.cleared.len(), 1);
        let key = &f.cleared[0];
        let e = d.nflog().get(key, Timestamp::from_secs(11)).expect("entry");
        assert!(e.firing.is_empty());
        assert_eq!(d.next_deadline(), None);
        assert!(d.alerts_view(Timestamp::from_secs(11), &s).is_empty());
        assert!(d.groups().is_empty());
    }

    #[test]
    fn view_shows_status_immediately() {
        let mut d = dispatcher(true);
        let mut s = Silences::default();
        let page = alert(
            &[
                ("alertname", "SloBurnRate"),
                ("severity", "page"),
                ("service", "a"),
                ("slo", "x"),
            ],
            0,
            None,
        );
        let ticket = alert(
            &[
                ("alertname", "SloBurnRate"),
                ("severity", "ticket"),
                ("service", "a"),
                ("slo", "x"),
            ],
            0,
            None,
        );
        let now = Timestamp::from_secs(0);
        d.upsert([page.clone(), ticket.clone()], now);
        s.set(
            crate::notify::silence::SilenceRequest {
                id: None,
                matchers: crate::alert::Matchers::parse("severity=page").expect("valid"),
                starts_at: None,
                ends_at: Timestamp::from_secs(100),
                created_by: "me".into(),
                comment: "test".into(),
            },
            now,
            || "s1".into(),
        )
        .expect("valid");
        let v = d.alerts_view(now, &s);
        assert_eq!(v.len(), 2);
        let by_fp = |fp: Fingerprint| v.iter().find(|x| x.fingerprint == fp).expect("present");
        let p = by_fp(page.fingerprint());
        assert_eq!(p.state, SuppressionState::Suppressed);
        assert_eq!(p.silenced_by, ["s1"]);
        assert_eq!(p.receivers, ["r"]);
        // A silenced source still inhibits.
        let t = by_fp(ticket.fingerprint());
        assert_eq!(t.inhibited_by, [page.fingerprint()]);
        assert_eq!(t.state, SuppressionState::Suppressed);
        assert_eq!(d.groups().len(), 1);
        assert_eq!(d.groups()[0].group_key, "{}:{}");
    }

    proptest::proptest! {
        /// Over random upserts, resolves, flushes, confirmations (some never sent), reloads and
        /// restores, the ordered deadline set names the same next deadline as a scan of every
        /// group, the due groups are the ones a scan finds, and both indexes match the groups.
        #[test]
        fn the_deadline_set_agrees_with_a_scan_of_every_group(
            ops in proptest::collection::vec((0u8..6, 0usize..5, 0usize..3, 0i64..9), 1..80),
        ) {
            let route = parse_route(
                std::path::Path::new("am.yml"),
                "receiver: a\ngroup_by: [g]\ngroup_wait: 2s\ngroup_interval: 5s\nrepeat_interval: 30s\nroutes:\n  - receiver: b\n    group_by: [alertname]\n    group_wait: 0s\n    group_interval: 3s\n    continue: true\n    matchers: ['g=~\"x|y\"']\n  - receiver: a\n",
            )
            .expect("route");
            let receivers: Receivers =
                [("a".to_string(), vec![true]), ("b".to_string(), vec![false, true])].into();
            let mut d = Dispatcher::new(
                route.clone(),
                Inhibitor::new(Vec::new(), true, Dependencies::default()),
                receivers.clone(),
            )
            .expect("receivers exist");
            let s = Silences::default();
            let mut now = 0i64;
            let groups = ["x", "y", "z"];
            for (op, i, g, dt) in ops {
                now += dt;
                let at = Timestamp::from_secs(now);
                let name = format!("A{i}");
                match op {
                    0 | 1 => {
                        let start = now - dt * (i as i64);
                        let a = alert(&[("alertname", &name), ("g", groups[g])], start, None);
                        d.upsert([a], at);
                    }
                    2 => {
                        let a = alert(&[("alertname", &name), ("g", groups[g])], 0, Some(now));
                        d.upsert([a], at);
                    }
                    3 => {
                        let due: BTreeSet<GroupId> = d
                            .groups
                            .by_id
                            .iter()
                            .filter(|(_, g)| g.next_flush <= at)
                            .map(|(id, _)| id.clone())
                            .collect();
                        let indexed: BTreeSet<GroupId> = d.groups.due(at).into_iter().collect();
                        proptest::prop_assert_eq!(indexed, due);
                        let f = d.tick(at, &s);
                        // Confirm some sends, leave others outstanding.
                        for (k, o) in f.notifications.iter().enumerate() {
                            if (k + i) % 3 != 0 {
                                d.mark_sent(o.integration, &o.notification, at);
                            }
                        }
                    }
                    4 => {
                        d.reload(
                            route.clone(),
                            Inhibitor::new(Vec::new(), true, Dependencies::default()),
                            receivers.clone(),
                            at,
                        )
                        .expect("same config");
                    }
                    _ => {
                        d = Dispatcher::restore(
                            route.clone(),
                            Inhibitor::new(Vec::new(), true, Dependencies::default()),
                            receivers.clone(),
                            d.state(),
                            at,
                        )
                        .expect("same config");
                    }
                }
                d.groups.check();
                let scan = d.groups.by_id.values().map(|g| g.next_flush).min();
                proptest::prop_assert_eq!(d.next_deadline(), scan);
            }
        }
    }

    /// Prometheus' `LabelSet.Before` as written: the sorted union of the names, then pairwise.
    fn label_set_order_by_the_book(a: &Labels, b: &Labels) -> Ordering {
        if a.len() != b.len() {
            return a.len().cmp(&b.len());
        }
        let names: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        for n in names {
            match (a.get(n), b.get(n)) {
                (None, _) => return Ordering::Less,
                (_, None) => return Ordering::Greater,
                (Some(x), Some(y)) if x != y => return x.cmp(y),
                _ => {}
            }
        }
        Ordering::Equal
    }

    proptest::proptest! {
        /// The side-by-side walk orders label sets exactly as the sorted union of names does.
        #[test]
        fn label_set_order_walks_the_sorted_union(
            a in proptest::collection::btree_map("[a-d]", "[xy]{0,2}", 0..4),
            b in proptest::collection::btree_map("[a-d]", "[xy]{0,2}", 0..4),
        ) {
            proptest::prop_assert_eq!(label_set_order(&a, &b), label_set_order_by_the_book(&a, &b));
            proptest::prop_assert_eq!(label_set_order(&a, &a), Ordering::Equal);
        }
    }
}
