//! Silences: matchers that mute alerts for a time, with Alertmanager's rules for creating,
//! updating, expiring and garbage-collecting them (`silence/silence.go`).
//!
//! A silence's state is computed from the time, never stored: pending before `starts_at`,
//! active in `[starts_at, ends_at)`, expired from `ends_at` on. (Alertmanager counts `ends_at`
//! itself as active; with exact simulated ticks the half-open interval makes "expire now" take
//! effect at the same instant, which is what an operator means.) Ids are supplied by the caller
//! (a UUID v4 in the agent), so this module stays pure and deterministic.
//!
//! Pure: no I/O, no clock, no randomness.

use std::collections::{BTreeMap, BTreeSet};

use crate::alert::{MatchOp, Matchers};
use crate::rules::model::Labels;
use crate::time::{Dur, Timestamp};

/// How long expired silences are kept before garbage collection (Alertmanager's
/// `--data.retention`).
pub const DEFAULT_RETENTION: Dur = Dur::from_hours(120);

/// A silence.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Silence {
    /// Unique id (a UUID v4 string in the agent).
    pub id: String,
    /// Alerts matching all of these are muted while the silence is active.
    pub matchers: Matchers,
    /// Start of the muting (inclusive).
    pub starts_at: Timestamp,
    /// End of the muting (exclusive).
    pub ends_at: Timestamp,
    /// Who created it.
    pub created_by: String,
    /// Why.
    pub comment: String,
    /// Last change.
    pub updated_at: Timestamp,
}

/// A silence's state at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SilenceState {
    /// Not started yet.
    Pending,
    /// Muting matching alerts.
    Active,
    /// Over (kept until garbage collection).
    Expired,
}

impl SilenceState {
    /// `pending`, `active` or `expired`, as in Alertmanager's API.
    pub fn as_str(self) -> &'static str {
        match self {
            SilenceState::Pending => "pending",
            SilenceState::Active => "active",
            SilenceState::Expired => "expired",
        }
    }
}

impl Silence {
    /// The state at `now`.
    pub fn state(&self, now: Timestamp) -> SilenceState {
        if now < self.starts_at {
            SilenceState::Pending
        } else if now >= self.ends_at {
            SilenceState::Expired
        } else {
            SilenceState::Active
        }
    }
}

/// A request to create a silence (`id: None`) or change one (`id: Some`).
#[derive(Debug, Clone, PartialEq)]
pub struct SilenceRequest {
    /// The silence to change; `None` creates a new one.
    pub id: Option<String>,
    /// Matchers (at least one; not all of them may match the empty string).
    pub matchers: Matchers,
    /// Start; `None` means now for a new silence, and the current start for an update.
    /// A start in the past is moved to now.
    pub starts_at: Option<Timestamp>,
    /// End; must be in the future and after the start.
    pub ends_at: Timestamp,
    /// Who asks.
    pub created_by: String,
    /// Why.
    pub comment: String,
}

/// Why a silence request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SilenceError {
    /// No matchers.
    #[error("a silence needs at least one matcher, e.g. alertname=\"SloBurnRate\"")]
    NoMatchers,
    /// Every matcher matches the empty string, so the silence would mute every alert.
    #[error(
        "every matcher of the silence matches the empty string, so it would mute every alert; add a matcher such as service=\"checkout\""
    )]
    MatchesEverything,
    /// `ends_at` is not after `starts_at`.
    #[error(
        "the silence ends ({ends_at}) before it starts ({starts_at}); give an end after the start"
    )]
    EndBeforeStart {
        /// Start, ms since the epoch.
        starts_at: i64,
        /// End, ms since the epoch.
        ends_at: i64,
    },
    /// `ends_at` is not in the future.
    #[error("the silence would end in the past; give an end after now")]
    EndInPast,
    /// The id to update does not exist.
    #[error("no silence with id {0}")]
    NotFound(String),
    /// Expiring an expired silence.
    #[error("silence {0} is already expired")]
    AlreadyExpired(String),
    /// The silence would last longer than [`SilenceLimits::max_duration`].
    #[error(
        "the silence would last {asked}, longer than the {max} allowed (api.max_silence_duration); give an earlier end, or disable the alert in the rules"
    )]
    TooLong {
        /// The length asked for.
        asked: Dur,
        /// The limit.
        max: Dur,
    },
    /// [`SilenceLimits::max_count`] silences are already in force.
    #[error(
        "{0} silences are already in force, the most allowed (api.max_silences); expire some first"
    )]
    TooMany(usize),
}

/// What one agent accepts (from `api.max_silences` and `api.max_silence_duration`): a bound
/// on memory, on the state file, and on a mistaken or hostile "mute everything forever".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SilenceLimits {
    /// Silences kept at once: pending and active ones count; expired ones are dropped
    /// oldest first to make room, so they never block a new silence.
    pub max_count: usize,
    /// The longest silence (end minus start).
    pub max_duration: Dur,
}

/// The set of silences, keyed by id, with an index so that finding the silences of one alert
/// looks only at silences that can match it (not at every silence: an agent with 10,000
/// silences and 50,000 alerts would otherwise test 5 x 10^8 matchers for one view).
///
/// Serialized as `{silences, retention}` (the index is rebuilt when read), the layout of
/// every earlier release.
#[derive(Debug, Clone)]
pub struct Silences {
    silences: BTreeMap<String, Silence>,
    retention: Dur,
    /// Silence ids by one label name and value an alert must carry for the silence to match
    /// it (the silence's first `name="value"` matcher with a non-empty value).
    by_label: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    /// Silences without such a matcher (only regex or negative ones): tested for every alert.
    unindexed: BTreeSet<String>,
    /// Counts every change, so a reader can keep what it derived until the next one.
    changes: u64,
}

impl PartialEq for Silences {
    fn eq(&self, other: &Silences) -> bool {
        // The index follows from the silences.
        self.silences == other.silences && self.retention == other.retention
    }
}

/// The serialized form of [`Silences`].
#[derive(serde::Serialize)]
struct SilencesRef<'a> {
    silences: &'a BTreeMap<String, Silence>,
    retention: Dur,
}

#[derive(serde::Deserialize)]
struct SilencesRepr {
    silences: BTreeMap<String, Silence>,
    retention: Dur,
}

impl serde::Serialize for Silences {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        SilencesRef {
            silences: &self.silences,
            retention: self.retention,
        }
        .serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Silences {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Silences, D::Error> {
        let r = SilencesRepr::deserialize(d)?;
        let mut out = Silences::new(r.retention);
        for (_, s) in r.silences {
            out.insert(s);
        }
        Ok(out)
    }
}

/// The label an alert must carry for `m` to match it, if there is one.
fn required_label(m: &Matchers) -> Option<(&str, &str)> {
    m.0.iter()
        .find(|m| m.op == MatchOp::Eq && !m.value.is_empty())
        .map(|m| (m.name.as_str(), m.value.as_str()))
}

impl Default for Silences {
    fn default() -> Self {
        Silences::new(DEFAULT_RETENTION)
    }
}

impl Silences {
    /// No silences; expired ones are kept for `retention` after their end.
    pub fn new(retention: Dur) -> Silences {
        Silences {
            silences: BTreeMap::new(),
            retention,
            by_label: BTreeMap::new(),
            unindexed: BTreeSet::new(),
            changes: 0,
        }
    }

    /// Stores a silence, replacing the one with its id, and indexes it.
    fn insert(&mut self, s: Silence) {
        self.remove(&s.id);
        self.changes += 1;
        match required_label(&s.matchers) {
            Some((name, value)) => {
                self.by_label
                    .entry(name.to_owned())
                    .or_default()
                    .entry(value.to_owned())
                    .or_default()
                    .insert(s.id.clone());
            }
            None => {
                self.unindexed.insert(s.id.clone());
            }
        }
        self.silences.insert(s.id.clone(), s);
    }

    /// Removes a silence and its index entry.
    fn remove(&mut self, id: &str) -> Option<Silence> {
        let s = self.silences.remove(id)?;
        self.changes += 1;
        match required_label(&s.matchers) {
            Some((name, value)) => {
                if let Some(values) = self.by_label.get_mut(name) {
                    if let Some(ids) = values.get_mut(value) {
                        ids.remove(id);
                        if ids.is_empty() {
                            values.remove(value);
                        }
                    }
                    if values.is_empty() {
                        self.by_label.remove(name);
                    }
                }
            }
            None => {
                self.unindexed.remove(id);
            }
        }
        Some(s)
    }

    /// Creates or updates a silence with Alertmanager's rules and returns its id:
    /// - a new silence gets `fresh_id`, and a start in the past (or none) becomes `now`;
    /// - an update is done in place only when the matchers are identical and either the
    ///   silence is active and keeps its start, or it is pending and the new start is not in
    ///   the past;
    /// - otherwise the old silence is expired (if it is not already) and a new one is created
    ///   with `fresh_id`.
    pub fn set(
        &mut self,
        req: SilenceRequest,
        now: Timestamp,
        fresh_id: impl FnOnce() -> String,
    ) -> Result<String, SilenceError> {
        validate_matchers(&req.matchers)?;
        let prev = match &req.id {
            Some(id) => Some(
                self.silences
                    .get(id)
                    .cloned()
                    .ok_or_else(|| SilenceError::NotFound(id.clone()))?,
            ),
            None => None,
        };
        let starts_at = req.starts_at.unwrap_or_else(|| match &prev {
            Some(p) if p.state(now) != SilenceState::Expired => p.starts_at,
            _ => now,
        });
        if req.ends_at <= now {
            return Err(SilenceError::EndInPast);
        }
        if req.ends_at <= starts_at {
            return Err(SilenceError::EndBeforeStart {
                starts_at: starts_at.millis(),
                ends_at: req.ends_at.millis(),
            });
        }
        if let Some(p) = &prev {
            let in_place = p.matchers == req.matchers
                && match p.state(now) {
                    SilenceState::Active => starts_at == p.starts_at,
                    SilenceState::Pending => starts_at >= now,
                    SilenceState::Expired => false,
                };
            if in_place {
                let s = Silence {
                    id: p.id.clone(),
                    matchers: req.matchers,
                    starts_at,
                    ends_at: req.ends_at,
                    created_by: req.created_by,
                    comment: req.comment,
                    updated_at: now,
                };
                self.insert(s);
                return Ok(p.id.clone());
            }
            if p.state(now) != SilenceState::Expired {
                self.expire(&p.id, now)?;
            }
        }
        let s = Silence {
            id: fresh_id(),
            matchers: req.matchers,
            starts_at: starts_at.max(now),
            ends_at: req.ends_at,
            created_by: req.created_by,
            comment: req.comment,
            updated_at: now,
        };
        let id = s.id.clone();
        self.insert(s);
        Ok(id)
    }

    /// [`Silences::set`] within `limits`: refuses a silence longer than the limit, or a new
    /// one when as many are in force as allowed; afterwards drops the oldest expired silences
    /// beyond the count, so the set never holds more than `limits.max_count`.
    pub fn set_within(
        &mut self,
        req: SilenceRequest,
        now: Timestamp,
        limits: &SilenceLimits,
        fresh_id: impl FnOnce() -> String,
    ) -> Result<String, SilenceError> {
        self.set_within_dropping(req, now, limits, fresh_id)
            .map(|(id, _)| id)
    }

    /// [`Silences::set_within`], also returning the expired silences it dropped to make room,
    /// so that a caller recording changes (the alerting journal) or undoing them knows every
    /// silence the request touched: the returned id, the request's id, and these.
    pub fn set_within_dropping(
        &mut self,
        req: SilenceRequest,
        now: Timestamp,
        limits: &SilenceLimits,
        fresh_id: impl FnOnce() -> String,
    ) -> Result<(String, Vec<Silence>), SilenceError> {
        // The start `set` will use: given, else the current silence's, else now; never past.
        let prev_start = req
            .id
            .as_deref()
            .and_then(|id| self.silences.get(id))
            .filter(|p| p.state(now) != SilenceState::Expired)
            .map(|p| p.starts_at);
        let start = req.starts_at.or(prev_start).unwrap_or(now).max(now);
        if req.ends_at > start {
            let asked = Dur::from_millis((req.ends_at.millis() - start.millis()) as u64);
            if asked > limits.max_duration {
                return Err(SilenceError::TooLong {
                    asked,
                    max: limits.max_duration,
                });
            }
        }
        let live = |s: &Silence| s.state(now) != SilenceState::Expired;
        // Below the limit nothing needs counting or dropping (`set` adds one silence at
        // most), so a POST costs the change, not a scan of every silence.
        if self.silences.len() < limits.max_count {
            return self.set(req, now, fresh_id).map(|id| (id, Vec::new()));
        }
        let in_force = self.silences.values().filter(|s| live(s)).count();
        // An update replaces a silence in force, so it never adds one.
        let replaces = req
            .id
            .as_deref()
            .and_then(|id| self.silences.get(id))
            .is_some_and(live);
        if !replaces && in_force >= limits.max_count {
            return Err(SilenceError::TooMany(in_force));
        }
        let id = self.set(req, now, fresh_id)?;
        let mut expired: Vec<(Timestamp, String)> = self
            .silences
            .values()
            .filter(|s| !live(s))
            .map(|s| (s.ends_at, s.id.clone()))
            .collect();
        expired.sort();
        let excess = self.silences.len().saturating_sub(limits.max_count);
        let dropped = expired
            .into_iter()
            .take(excess)
            .filter_map(|(_, old)| self.remove(&old))
            .collect();
        Ok((id, dropped))
    }

    /// Sets one silence as recorded (`None` removes it): replaying the alerting journal, or
    /// undoing a change that could not be made durable. No rule is checked.
    pub fn put(&mut self, id: &str, silence: Option<Silence>) {
        self.remove(id);
        if let Some(s) = silence {
            // Keyed by the id asked for, as recorded.
            self.insert(Silence {
                id: id.to_owned(),
                ..s
            });
        }
    }

    /// Ends a silence now (Alertmanager's "delete"): an active one ends at `now`, a pending
    /// one starts and ends at `now`.
    pub fn expire(&mut self, id: &str, now: Timestamp) -> Result<(), SilenceError> {
        let s = self
            .silences
            .get_mut(id)
            .ok_or_else(|| SilenceError::NotFound(id.to_string()))?;
        self.changes += 1;
        match s.state(now) {
            SilenceState::Expired => return Err(SilenceError::AlreadyExpired(id.to_string())),
            SilenceState::Active => s.ends_at = now,
            SilenceState::Pending => {
                s.starts_at = now;
                s.ends_at = now;
            }
        }
        s.updated_at = now;
        Ok(())
    }

    /// Removes silences that ended more than the retention ago; returns how many.
    pub fn gc(&mut self, now: Timestamp) -> usize {
        let retention = self.retention;
        let gone: Vec<String> = self
            .silences
            .values()
            .filter(|s| s.ends_at.add(retention) <= now)
            .map(|s| s.id.clone())
            .collect();
        for id in &gone {
            self.remove(id);
        }
        gone.len()
    }

    /// A number that changes whenever a silence is set, expired or removed: what was derived
    /// from the silences at one value holds until it changes or time passes a silence's
    /// [`Silences::next_change`].
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// The first start or end of a silence after `now`: when time alone changes which alerts
    /// the silences mute.
    pub fn next_change(&self, now: Timestamp) -> Option<Timestamp> {
        self.silences
            .values()
            .flat_map(|s| [s.starts_at, s.ends_at])
            .filter(|t| *t > now)
            .min()
    }

    /// One silence.
    pub fn get(&self, id: &str) -> Option<&Silence> {
        self.silences.get(id)
    }

    /// Every silence (any state), by id.
    pub fn iter(&self) -> impl Iterator<Item = &Silence> {
        self.silences.values()
    }

    /// The ids of the active silences that mute an alert with these labels, sorted.
    pub fn silenced_by(&self, labels: &Labels, now: Timestamp) -> Vec<String> {
        let indexed = labels.iter().filter_map(|(name, value)| {
            self.by_label
                .get(name.as_str())
                .and_then(|values| values.get(value.as_str()))
        });
        let mut out: Vec<String> = indexed
            .flatten()
            .chain(&self.unindexed)
            .filter_map(|id| self.silences.get(id))
            .filter(|s| s.state(now) == SilenceState::Active && s.matchers.matches(labels))
            .map(|s| s.id.clone())
            .collect();
        out.sort();
        out
    }
}

/// Alertmanager's matcher checks: at least one matcher, and not all of them matching the empty
/// string (such a silence would mute every alert, including ones without the label).
fn validate_matchers(m: &Matchers) -> Result<(), SilenceError> {
    if m.is_empty() {
        return Err(SilenceError::NoMatchers);
    }
    if m.0.iter().all(|m| m.matches_value("")) {
        return Err(SilenceError::MatchesEverything);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_secs(s)
    }

    fn req(id: Option<&str>, m: &str, start: Option<i64>, end: i64) -> SilenceRequest {
        SilenceRequest {
            id: id.map(str::to_string),
            matchers: Matchers::parse(m).expect("valid matchers"),
            starts_at: start.map(t),
            ends_at: t(end),
            created_by: "me".into(),
            comment: "maintenance".into(),
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn states_follow_the_clock() {
        let mut s = Silences::default();
        let id = s
            .set(
                req(None, r#"alertname="Silly""#, Some(10), 20),
                t(5),
                || "a".into(),
            )
            .expect("valid");
        let sil = s.get(&id).expect("stored");
        assert_eq!(sil.state(t(9)), SilenceState::Pending);
        assert_eq!(sil.state(t(10)), SilenceState::Active);
        assert_eq!(sil.state(t(19)), SilenceState::Active);
        assert_eq!(sil.state(t(20)), SilenceState::Expired);
        let l = labels(&[("alertname", "Silly"), ("cluster", "c1")]);
        assert!(s.silenced_by(&l, t(9)).is_empty());
        assert_eq!(s.silenced_by(&l, t(10)), ["a"]);
        assert!(
            s.silenced_by(&labels(&[("alertname", "Other")]), t(10))
                .is_empty()
        );
    }

    #[test]
    fn start_defaults_and_clamps_to_now() {
        let mut s = Silences::default();
        let a = s
            .set(req(None, "a=x", None, 100), t(10), || "a".into())
            .expect("valid");
        assert_eq!(s.get(&a).expect("a").starts_at, t(10));
        let b = s
            .set(req(None, "a=x", Some(1), 100), t(10), || "b".into())
            .expect("valid");
        assert_eq!(s.get(&b).expect("b").starts_at, t(10));
    }

    #[test]
    fn updates_in_place_only_when_the_rules_hold() {
        let mut s = Silences::default();
        let id = s
            .set(req(None, "a=x", None, 100), t(10), || "one".into())
            .expect("valid");
        // Active, same matchers, same start, later end: in place.
        let same = s
            .set(req(Some("one"), "a=x", None, 200), t(20), || "two".into())
            .expect("valid");
        assert_eq!(same, id);
        assert_eq!(s.get("one").expect("one").ends_at, t(200));
        assert_eq!(s.get("one").expect("one").updated_at, t(20));
        // Active, matchers changed: a new id and the old one expired now.
        let new = s
            .set(req(Some("one"), "a=y", None, 200), t(30), || "three".into())
            .expect("valid");
        assert_eq!(new, "three");
        assert_eq!(
            s.get("one").expect("one").state(t(30)),
            SilenceState::Expired
        );
        assert_eq!(s.get("one").expect("one").ends_at, t(30));
        assert_eq!(s.get("three").expect("three").starts_at, t(30));
        // Active, start moved: a new silence.
        let moved = s
            .set(req(Some("three"), "a=y", Some(40), 200), t(35), || {
                "four".into()
            })
            .expect("valid");
        assert_eq!(moved, "four");
        assert_eq!(s.get("four").expect("four").starts_at, t(40));
        // Pending, start still in the future: in place.
        let kept = s
            .set(req(Some("four"), "a=y", Some(50), 300), t(36), || {
                "five".into()
            })
            .expect("valid");
        assert_eq!(kept, "four");
        assert_eq!(s.get("four").expect("four").starts_at, t(50));
        // Expired: updating creates a new one and leaves the old as it was.
        let again = s
            .set(req(Some("one"), "a=x", None, 400), t(60), || "six".into())
            .expect("valid");
        assert_eq!(again, "six");
        assert_eq!(s.get("one").expect("one").ends_at, t(30));
    }

    #[test]
    fn validation_refuses_what_alertmanager_refuses() {
        let mut s = Silences::default();
        let id = || "x".to_string();
        assert_eq!(
            s.set(req(None, "{}", None, 100), t(10), id),
            Err(SilenceError::NoMatchers)
        );
        assert_eq!(
            s.set(req(None, r#"a="", b=~".*""#, None, 100), t(10), id),
            Err(SilenceError::MatchesEverything)
        );
        assert_eq!(
            s.set(req(None, "a=x", None, 5), t(10), id),
            Err(SilenceError::EndInPast)
        );
        assert_eq!(
            s.set(req(None, "a=x", Some(50), 40), t(10), id),
            Err(SilenceError::EndBeforeStart {
                starts_at: 50_000,
                ends_at: 40_000
            })
        );
        assert_eq!(
            s.set(req(Some("nope"), "a=x", None, 40), t(10), id),
            Err(SilenceError::NotFound("nope".into()))
        );
        // One matcher that needs a value is enough.
        assert!(
            s.set(req(None, r#"a="", b="x""#, None, 100), t(10), id)
                .is_ok()
        );
    }

    #[test]
    fn expire_and_gc() {
        let mut s = Silences::new(Dur::from_secs(100));
        s.set(req(None, "a=x", None, 50), t(10), || "act".into())
            .expect("valid");
        s.set(req(None, "a=x", Some(30), 50), t(10), || "pend".into())
            .expect("valid");
        s.expire("act", t(20)).expect("active");
        s.expire("pend", t(20)).expect("pending");
        assert_eq!(s.get("pend").expect("pend").starts_at, t(20));
        assert_eq!(
            s.get("act").expect("act").state(t(20)),
            SilenceState::Expired
        );
        assert_eq!(
            s.expire("act", t(21)),
            Err(SilenceError::AlreadyExpired("act".into()))
        );
        assert!(s.silenced_by(&labels(&[("a", "x")]), t(20)).is_empty());
        assert_eq!(s.gc(t(119)), 0);
        assert_eq!(s.gc(t(120)), 2);
        assert_eq!(s.iter().count(), 0);
    }

    #[test]
    fn state_round_trips_through_serde() {
        let mut s = Silences::default();
        s.set(
            req(None, r#"alertname="Silly", cluster=~"c[0-9]""#, None, 3600),
            t(0),
            || "1a3be03e-40f2-45fd-bd67-873b7251f9df".into(),
        )
        .expect("valid");
        let json = serde_json::to_string(&s).expect("serialize");
        let back: Silences = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, s);
        assert_eq!(
            back.silenced_by(&labels(&[("alertname", "Silly"), ("cluster", "c1")]), t(1)),
            ["1a3be03e-40f2-45fd-bd67-873b7251f9df"]
        );
    }

    #[test]
    fn limits_bound_duration_and_count_and_expired_silences_make_room() {
        let limits = SilenceLimits {
            max_count: 2,
            max_duration: Dur::from_secs(100),
        };
        let mut s = Silences::default();
        let mut n = 0;
        let mut id = || {
            n += 1;
            format!("s{n}")
        };
        // 292 years of muting is refused; exactly the limit is accepted.
        let e = s
            .set_within(
                req(None, "a=x", None, 9_214_646_400),
                t(10),
                &limits,
                &mut id,
            )
            .expect_err("too long");
        assert!(matches!(e, SilenceError::TooLong { .. }), "{e}");
        assert!(e.to_string().contains("api.max_silence_duration"), "{e}");
        // The length counts from the start actually used (a past start is moved to now).
        assert!(
            s.set_within(req(None, "a=x", Some(0), 111), t(10), &limits, &mut id)
                .is_err()
        );
        let a = s
            .set_within(req(None, "a=x", None, 110), t(10), &limits, &mut id)
            .expect("exactly the limit");
        let b = s
            .set_within(req(None, "b=x", Some(50), 150), t(10), &limits, &mut id)
            .expect("a pending one");
        let e = s
            .set_within(req(None, "c=x", None, 20), t(10), &limits, &mut id)
            .expect_err("full");
        assert_eq!(e, SilenceError::TooMany(2));
        // Updating one in force is allowed at the cap (it replaces, it does not add).
        let a2 = s
            .set_within(req(Some(&a), "a=y", None, 30), t(10), &limits, &mut id)
            .expect("replace");
        assert_ne!(a2, a);
        assert_eq!(
            s.iter().count(),
            2,
            "the replaced silence was dropped to stay within 2"
        );
        assert!(s.get(&b).is_some() && s.get(&a2).is_some());
        // Once one expires there is room again, and the expired one goes.
        s.expire(&a2, t(12)).expect("expire");
        let c = s
            .set_within(req(None, "c=x", None, 20), t(12), &limits, &mut id)
            .expect("room");
        let mut ids: Vec<&str> = s.iter().map(|x| x.id.as_str()).collect();
        ids.sort_unstable();
        let mut want = vec![b.as_str(), c.as_str()];
        want.sort_unstable();
        assert_eq!(ids, want);
    }

    /// The layout earlier releases derived: state files they wrote must keep loading.
    #[derive(serde::Serialize)]
    struct Derived {
        silences: BTreeMap<String, Silence>,
        retention: Dur,
    }

    #[test]
    fn serialized_layout_is_the_derived_one_of_earlier_releases() {
        let mut s = Silences::new(Dur::from_hours(3));
        s.set(
            req(None, r#"alertname="A", b=~"x.*""#, None, 100),
            t(10),
            || "one".into(),
        )
        .expect("valid");
        s.set(req(None, r#"b!="y", c="z""#, None, 100), t(10), || {
            "two".into()
        })
        .expect("valid");
        let old = Derived {
            silences: s.iter().map(|x| (x.id.clone(), x.clone())).collect(),
            retention: Dur::from_hours(3),
        };
        let bytes = postcard::to_stdvec(&old).expect("old");
        assert_eq!(postcard::to_stdvec(&s).expect("new"), bytes);
        let back: Silences = postcard::from_bytes(&bytes).expect("read");
        assert_eq!(back, s);
        assert_eq!(
            back.silenced_by(
                &labels(&[("alertname", "A"), ("b", "xx"), ("c", "z")]),
                t(20)
            ),
            ["one", "two"]
        );
    }

    /// Every silence, tested the plain way: what the index must reproduce.
    fn brute_force(s: &Silences, l: &Labels, now: Timestamp) -> Vec<String> {
        s.iter()
            .filter(|x| x.state(now) == SilenceState::Active && x.matchers.matches(l))
            .map(|x| x.id.clone())
            .collect()
    }

    proptest::proptest! {
        /// After any sequence of sets, expiries, puts, garbage collections and a serialization
        /// round trip, the indexed lookup names exactly the silences a scan of all of them finds.
        #[test]
        fn indexed_lookup_equals_a_scan_of_every_silence(
            ops in proptest::collection::vec((0u8..5, 0usize..6, 0usize..6, 0usize..4, 1i64..40), 1..60),
            alerts in proptest::collection::vec(proptest::collection::vec((0usize..3, 0usize..4), 0..4), 1..8),
        ) {
            let names = ["a", "b", "alertname"];
            let values = ["x", "y", "", "z"];
            let matcher = |k: usize, v: usize, op: usize| {
                let ops = ["=", "!=", "=~", "!~"];
                format!("{}{}\"{}\"", names[k % 3], ops[op], values[v % 4])
            };
            let mut s = Silences::new(Dur::from_secs(5));
            let mut now = 0;
            let limits = SilenceLimits { max_count: 8, max_duration: Dur::from_secs(100) };
            for (i, (op, k, v, o, dt)) in ops.into_iter().enumerate() {
                now += dt % 7;
                let ids: Vec<String> = s.iter().map(|x| x.id.clone()).collect();
                let m = format!("{}, {}", matcher(k, v, o), matcher(k + 1, v + 1, (o + 1) % 4));
                match op {
                    0 | 1 => {
                        let id = (op == 1).then(|| ids.get(k % ids.len().max(1)).cloned()).flatten();
                        if let Ok(ms) = Matchers::parse(&m) {
                            let r = SilenceRequest {
                                id,
                                matchers: ms,
                                starts_at: Some(t(now + dt % 3)),
                                ends_at: t(now + dt),
                                created_by: "p".into(),
                                comment: String::new(),
                            };
                            let _ = s.set_within(r, t(now), &limits, || format!("s{i}"));
                        }
                    }
                    2 => {
                        if let Some(id) = ids.get(k % ids.len().max(1)) {
                            let _ = s.expire(id, t(now));
                        }
                    }
                    3 => {
                        if let Some(id) = ids.get(k % ids.len().max(1)) {
                            let old = s.get(id).cloned();
                            s.put(id, if v % 2 == 0 { None } else { old });
                        }
                    }
                    _ => {
                        s.gc(t(now));
                    }
                }
            }
            let s: Silences = serde_json::from_str(&serde_json::to_string(&s).expect("json")).expect("back");
            for a in alerts {
                let l: Labels = a.iter().map(|(k, v)| (names[*k].to_string(), values[*v].to_string())).filter(|(_, v)| !v.is_empty()).collect();
                for at in [now - 3, now, now + 3] {
                    proptest::prop_assert_eq!(s.silenced_by(&l, t(at)), brute_force(&s, &l, t(at)));
                }
            }
        }
    }
}
