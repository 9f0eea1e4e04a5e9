//! The life of one alert: inactive → pending (`for`) → firing → held (`keep_firing_for`) →
//! resolved, with flap damping.
//!
//! A [`Lifecycle`] is stepped once per evaluation with the raw condition of its alert (is the
//! symptom present right now?) and the evaluation instant; it decides what the alert is. It owns
//! no clock and does no I/O, and it serializes whole, so the agent can write it ahead before
//! acting on a decision and resume it after a restart.
//!
//! Semantics, at evaluation instants `now` (the only instants that exist for a lifecycle):
//! - **pending**: the condition became true at `since` and `for` has not elapsed; with `for = 0`
//!   the alert fires at the first true evaluation. A false evaluation while pending returns to
//!   inactive without any notification.
//! - **firing** from the first evaluation with `now - since >= for`; that instant is the alert's
//!   `startsAt` (as Prometheus' `FiredAt`).
//! - **held**: a firing alert whose condition turned false at `cleared_at` keeps firing until the
//!   first evaluation with `now - cleared_at >= keep_firing_for` (0: the first false evaluation),
//!   and then resolves with `endsAt = now`. A true evaluation while held bridges the dip: the
//!   same instance keeps firing with its original `startsAt`.
//! - **resolved** is the last instance's memory; firing again is a new instance (new `startsAt`).
//! - **flap damping**: each fire and each resolve is a *change*, counted in a sliding window
//!   `(now - window, now]`. A change that makes the count exceed `max_changes` turns the alert
//!   *flapping*: it stays firing (a resolve is held back; a fire opens one instance that is then
//!   held), and is not re-sent on every change. It settles at the first evaluation where the raw
//!   condition has not changed for `hold`: still true → plain firing (same instance), false →
//!   resolved at that instant. Settling forgets the counted changes.

use std::collections::VecDeque;
use std::fmt;

use crate::rules::model::FlapPolicy;
use crate::time::{Dur, Timestamp};

/// The timing settings of one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Params {
    /// How long the condition must hold before the alert fires.
    pub for_: Dur,
    /// How long a firing alert keeps firing after its condition cleared.
    pub keep_firing_for: Dur,
    /// Flap damping; `None` turns it off.
    pub flap: Option<FlapPolicy>,
}

/// Where an alert is, with the instants its next decision needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Phase {
    /// Never fired (or a pending spell ended without firing).
    #[default]
    Inactive,
    /// Condition true since `since`, waiting for `for`.
    Pending {
        /// First evaluation of the current true spell.
        since: Timestamp,
    },
    /// Firing since `starts_at`; `cleared_at` is set while the condition is false and
    /// `keep_firing_for` holds the alert.
    Firing {
        /// The instance's `startsAt`.
        starts_at: Timestamp,
        /// First false evaluation of the current dip, if in one.
        cleared_at: Option<Timestamp>,
    },
    /// Firing, held by flap damping.
    Flapping {
        /// The instance's `startsAt`.
        starts_at: Timestamp,
    },
    /// The last instance resolved.
    Resolved {
        /// Its `startsAt`.
        starts_at: Timestamp,
        /// Its `endsAt`.
        ends_at: Timestamp,
    },
}

/// The name of a [`Phase`], for transitions and logs.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum State {
    /// Not firing and never fired, or a pending spell ended.
    Inactive,
    /// Waiting for `for`.
    Pending,
    /// Firing (including while held by `keep_firing_for`).
    Firing,
    /// Firing, held by flap damping.
    Flapping,
    /// Resolved.
    Resolved,
}

impl State {
    /// `inactive`, `pending`, `firing`, `flapping` or `resolved`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Inactive => "inactive",
            State::Pending => "pending",
            State::Firing => "firing",
            State::Flapping => "flapping",
            State::Resolved => "resolved",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Phase {
    /// The phase's name.
    pub fn state(&self) -> State {
        match self {
            Phase::Inactive => State::Inactive,
            Phase::Pending { .. } => State::Pending,
            Phase::Firing { .. } => State::Firing,
            Phase::Flapping { .. } => State::Flapping,
            Phase::Resolved { .. } => State::Resolved,
        }
    }

    /// `(startsAt, endsAt)` of the instance to report: a firing or flapping alert (`endsAt`
    /// `None`) or the last resolved one.
    pub fn instance(&self) -> Option<(Timestamp, Option<Timestamp>)> {
        match *self {
            Phase::Firing { starts_at, .. } | Phase::Flapping { starts_at } => {
                Some((starts_at, None))
            }
            Phase::Resolved { starts_at, ends_at } => Some((starts_at, Some(ends_at))),
            Phase::Inactive | Phase::Pending { .. } => None,
        }
    }

    /// True while the alert is firing (plainly, held by `keep_firing_for`, or flapping).
    pub fn is_firing(&self) -> bool {
        matches!(self, Phase::Firing { .. } | Phase::Flapping { .. })
    }

    /// When the current state began: pending since, firing or flapping since `startsAt`,
    /// resolved at `endsAt`; `None` while inactive.
    pub fn since(&self) -> Option<Timestamp> {
        match *self {
            Phase::Inactive => None,
            Phase::Pending { since } => Some(since),
            Phase::Firing { starts_at, .. } | Phase::Flapping { starts_at } => Some(starts_at),
            Phase::Resolved { ends_at, .. } => Some(ends_at),
        }
    }

    /// While firing only because `keep_firing_for` holds it: when its condition cleared.
    pub fn held_since(&self) -> Option<Timestamp> {
        match *self {
            Phase::Firing { cleared_at, .. } => cleared_at,
            _ => None,
        }
    }
}

/// One alert's state machine (see the module documentation for the exact semantics).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Lifecycle {
    /// Where the alert is.
    pub phase: Phase,
    /// Instants of the fires and resolves within the flap window, oldest first.
    changes: VecDeque<Timestamp>,
    /// The raw condition at the newest step.
    cond: bool,
    /// When the raw condition took its current value (`None` before the first step).
    cond_since: Option<Timestamp>,
}

impl Lifecycle {
    /// A lifecycle that has never been stepped.
    pub fn new() -> Lifecycle {
        Lifecycle::default()
    }

    /// The current state's name.
    pub fn state(&self) -> State {
        self.phase.state()
    }

    /// True when the lifecycle holds nothing a fresh one would not: inactive, no counted
    /// change, condition false. Stepping it and stepping a fresh [`Lifecycle`] decide the same
    /// from then on (only `cond_since` differs, which matters only while flapping), so its
    /// owner may drop it and start a fresh one when the condition next holds.
    pub fn is_idle(&self) -> bool {
        self.phase == Phase::Inactive && self.changes.is_empty() && !self.cond
    }

    /// Advances with the raw condition at `now`. Returns `(from, to)` when the state changed.
    /// Steps must come with non-decreasing instants; an older instant is treated as `now`.
    pub fn step(&mut self, cond: bool, now: Timestamp, p: &Params) -> Option<(State, State)> {
        let now = match self.cond_since {
            Some(s) if now < s => s,
            _ => now,
        };
        if self.cond_since.is_none() || cond != self.cond {
            self.cond = cond;
            self.cond_since = Some(now);
        }
        if let Some(f) = p.flap {
            while self
                .changes
                .front()
                .is_some_and(|&t| now.since(t) >= f.window)
            {
                self.changes.pop_front();
            }
        }
        let from = self.state();
        self.phase = match self.phase {
            Phase::Inactive | Phase::Resolved { .. } if cond => {
                if p.for_.is_zero() {
                    self.fire(now, p)
                } else {
                    Phase::Pending { since: now }
                }
            }
            phase @ (Phase::Inactive | Phase::Resolved { .. }) => phase,
            Phase::Pending { since } if cond => {
                if now.since(since) >= p.for_ {
                    self.fire(now, p)
                } else {
                    Phase::Pending { since }
                }
            }
            Phase::Pending { .. } => Phase::Inactive,
            Phase::Firing { starts_at, .. } if cond => Phase::Firing {
                starts_at,
                cleared_at: None,
            },
            Phase::Firing {
                starts_at,
                cleared_at,
            } => {
                let cleared = cleared_at.unwrap_or(now);
                if now.since(cleared) >= p.keep_firing_for {
                    self.resolve(starts_at, now, p)
                } else {
                    Phase::Firing {
                        starts_at,
                        cleared_at: Some(cleared),
                    }
                }
            }
            Phase::Flapping { starts_at } => {
                let hold = p.flap.map_or(Dur(0), |f| f.hold);
                let stable = self.cond_since.map_or(Dur(0), |s| now.since(s));
                if stable >= hold {
                    self.changes.clear();
                    if cond {
                        Phase::Firing {
                            starts_at,
                            cleared_at: None,
                        }
                    } else {
                        Phase::Resolved {
                            starts_at,
                            ends_at: now,
                        }
                    }
                } else {
                    Phase::Flapping { starts_at }
                }
            }
        };
        let to = self.state();
        (from != to).then_some((from, to))
    }

    /// Resolves a firing alert at once (its rule disappeared). Returns `(from, to)` when it was
    /// firing.
    pub fn force_resolve(&mut self, now: Timestamp) -> Option<(State, State)> {
        let from = self.state();
        match self.phase {
            Phase::Firing { starts_at, .. } | Phase::Flapping { starts_at } => {
                self.phase = Phase::Resolved {
                    starts_at,
                    ends_at: now,
                };
                Some((from, State::Resolved))
            }
            Phase::Pending { .. } => {
                self.phase = Phase::Inactive;
                Some((from, State::Inactive))
            }
            Phase::Inactive | Phase::Resolved { .. } => None,
        }
    }

    /// Records a change; true when it makes the alert flapping.
    fn count_change(&mut self, now: Timestamp, p: &Params) -> bool {
        let Some(f) = p.flap else {
            return false;
        };
        self.changes.push_back(now);
        self.changes.len() > f.max_changes as usize
    }

    fn fire(&mut self, now: Timestamp, p: &Params) -> Phase {
        if self.count_change(now, p) {
            Phase::Flapping { starts_at: now }
        } else {
            Phase::Firing {
                starts_at: now,
                cleared_at: None,
            }
        }
    }

    fn resolve(&mut self, starts_at: Timestamp, now: Timestamp, p: &Params) -> Phase {
        if self.count_change(now, p) {
            Phase::Flapping { starts_at }
        } else {
            Phase::Resolved {
                starts_at,
                ends_at: now,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: i64 = 60_000;

    fn t(min: i64) -> Timestamp {
        Timestamp(min * M)
    }

    fn params(for_min: u64, keep_min: u64, flap: Option<(u64, u32, u64)>) -> Params {
        Params {
            for_: Dur::from_mins(for_min),
            keep_firing_for: Dur::from_mins(keep_min),
            flap: flap.map(|(w, c, h)| FlapPolicy {
                window: Dur::from_mins(w),
                max_changes: c,
                hold: Dur::from_mins(h),
            }),
        }
    }

    fn firing(s: i64) -> Phase {
        Phase::Firing {
            starts_at: t(s),
            cleared_at: None,
        }
    }
    fn held(s: i64, c: i64) -> Phase {
        Phase::Firing {
            starts_at: t(s),
            cleared_at: Some(t(c)),
        }
    }
    fn resolved(s: i64, e: i64) -> Phase {
        Phase::Resolved {
            starts_at: t(s),
            ends_at: t(e),
        }
    }
    fn pending(s: i64) -> Phase {
        Phase::Pending { since: t(s) }
    }
    fn flapping(s: i64) -> Phase {
        Phase::Flapping { starts_at: t(s) }
    }

    /// Runs `(minute, condition, expected phase)` rows on one lifecycle.
    fn run(p: Params, rows: &[(i64, bool, Phase)]) -> Vec<(i64, State, State)> {
        let mut l = Lifecycle::new();
        let mut transitions = Vec::new();
        for (i, &(min, cond, want)) in rows.iter().enumerate() {
            if let Some((a, b)) = l.step(cond, t(min), &p) {
                transitions.push((min, a, b));
            }
            assert_eq!(l.phase, want, "row {i} (minute {min}, cond {cond})");
        }
        transitions
    }

    #[test]
    fn for_zero_fires_and_resolves_at_once() {
        let tr = run(
            params(0, 0, None),
            &[
                (0, false, Phase::Inactive),
                (1, true, firing(1)),
                (2, true, firing(1)),
                (3, false, resolved(1, 3)),
                (4, false, resolved(1, 3)),
                (5, true, firing(5)),
            ],
        );
        assert_eq!(
            tr,
            vec![
                (1, State::Inactive, State::Firing),
                (3, State::Firing, State::Resolved),
                (5, State::Resolved, State::Firing),
            ]
        );
    }

    #[test]
    fn for_waits_and_a_dip_restarts_it() {
        let tr = run(
            params(3, 0, None),
            &[
                (0, true, pending(0)),
                (2, true, pending(0)),
                (3, false, Phase::Inactive),
                (4, true, pending(4)),
                (6, true, pending(4)),
                (7, true, firing(7)),
                (8, true, firing(7)),
            ],
        );
        assert_eq!(
            tr,
            vec![
                (0, State::Inactive, State::Pending),
                (3, State::Pending, State::Inactive),
                (4, State::Inactive, State::Pending),
                (7, State::Pending, State::Firing),
            ]
        );
    }

    #[test]
    fn keep_firing_for_bridges_a_short_dip() {
        let tr = run(
            params(0, 5, None),
            &[
                (0, true, firing(0)),
                (1, false, held(0, 1)),
                (3, false, held(0, 1)),
                (4, true, firing(0)),
                (10, false, held(0, 10)),
                (14, false, held(0, 10)),
                (15, false, resolved(0, 15)),
                (16, true, firing(16)),
            ],
        );
        assert_eq!(
            tr,
            vec![
                (0, State::Inactive, State::Firing),
                (15, State::Firing, State::Resolved),
                (16, State::Resolved, State::Firing),
            ]
        );
    }

    #[test]
    fn since_and_held_since_name_when_each_state_began() {
        assert_eq!(Phase::Inactive.since(), None);
        assert_eq!(pending(2).since(), Some(t(2)));
        assert_eq!(firing(3).since(), Some(t(3)));
        assert_eq!(held(3, 5).since(), Some(t(3)));
        assert_eq!(held(3, 5).held_since(), Some(t(5)));
        assert_eq!(firing(3).held_since(), None);
        assert_eq!(flapping(4).since(), Some(t(4)));
        assert_eq!(resolved(3, 9).since(), Some(t(9)));
        assert_eq!(resolved(3, 9).held_since(), None);
    }

    #[test]
    fn condition_flapping_every_evaluation_is_damped() {
        // window 60m, 4 changes allowed, settle after 30m of a stable condition.
        let p = params(0, 0, Some((60, 4, 30)));
        let mut rows = vec![
            (0, true, firing(0)),
            (1, false, resolved(0, 1)),
            (2, true, firing(2)),
            (3, false, resolved(2, 3)),
            // The fifth change in the hour: fires one instance and holds it.
            (4, true, flapping(4)),
            (5, false, flapping(4)),
            (6, true, flapping(4)),
            (7, false, flapping(4)),
        ];
        // Stable false from minute 7: settles (resolves) at 37, not before.
        rows.push((36, false, flapping(4)));
        rows.push((37, false, resolved(4, 37)));
        // Counted changes were forgotten on settling: a new fire is plain.
        rows.push((38, true, firing(38)));
        let tr = run(p, &rows);
        assert_eq!(
            tr,
            vec![
                (0, State::Inactive, State::Firing),
                (1, State::Firing, State::Resolved),
                (2, State::Resolved, State::Firing),
                (3, State::Firing, State::Resolved),
                (4, State::Resolved, State::Flapping),
                (37, State::Flapping, State::Resolved),
                (38, State::Resolved, State::Firing),
            ]
        );
    }

    #[test]
    fn flapping_settles_into_firing_when_the_condition_stays_true() {
        let p = params(0, 0, Some((60, 3, 10)));
        run(
            p,
            &[
                (0, true, firing(0)),
                (1, false, resolved(0, 1)),
                // The fourth change is a resolve: it is held back.
                (2, true, firing(2)),
                (3, false, flapping(2)),
                (4, true, flapping(2)),
                (13, true, flapping(2)),
                (14, true, firing(2)),
            ],
        );
    }

    #[test]
    fn changes_leave_the_sliding_window() {
        // 2 changes allowed per 10m: changes at 0, 5 and 10 are fine because the one at 0 has
        // left (10 - 0 >= 10) when the one at 10 is counted.
        let p = params(0, 0, Some((10, 2, 5)));
        run(
            p,
            &[
                (0, true, firing(0)),
                (5, false, resolved(0, 5)),
                (10, true, firing(10)),
                (12, false, flapping(10)),
            ],
        );
    }

    #[test]
    fn restart_round_trips_through_serde() {
        let p = params(3, 5, Some((60, 4, 30)));
        let mut l = Lifecycle::new();
        l.step(true, t(0), &p);
        l.step(true, t(3), &p);
        l.step(false, t(4), &p);
        assert_eq!(l.phase, held(3, 4));
        let text = serde_json::to_string(&l).expect("serialize");
        let mut back: Lifecycle = serde_json::from_str(&text).expect("deserialize");
        assert_eq!(back, l);
        assert_eq!(
            back.step(false, t(9), &p),
            Some((State::Firing, State::Resolved))
        );
        assert_eq!(back.phase, resolved(3, 9));
        // A pending spell also survives: `for` counts from before the restart.
        let mut l = Lifecycle::new();
        l.step(true, t(0), &p);
        let mut back: Lifecycle =
            serde_json::from_str(&serde_json::to_string(&l).expect("serialize"))
                .expect("deserialize");
        assert_eq!(
            back.step(true, t(3), &p),
            Some((State::Pending, State::Firing))
        );
        assert_eq!(back.phase, firing(3));
    }

    #[test]
    fn force_resolve_ends_firing_and_pending() {
        let p = params(0, 10, None);
        let mut l = Lifecycle::new();
        l.step(true, t(1), &p);
        assert_eq!(
            l.force_resolve(t(2)),
            Some((State::Firing, State::Resolved))
        );
        assert_eq!(l.phase, resolved(1, 2));
        assert_eq!(l.force_resolve(t(3)), None);
        let mut l = Lifecycle::new();
        l.step(true, t(1), &params(5, 0, None));
        assert_eq!(
            l.force_resolve(t(2)),
            Some((State::Pending, State::Inactive))
        );
    }

    proptest::proptest! {
        /// Dropping a lifecycle once it is idle, and starting a fresh one only when the
        /// condition next holds (what the alert source does to save memory), decides exactly
        /// what one lifecycle kept throughout decides: the same state changes at every step.
        #[test]
        fn an_idle_lifecycle_dropped_and_started_afresh_decides_the_same(
            for_min in 0u64..4,
            keep_min in 0u64..4,
            flap in proptest::option::of((5u64..30, 1u32..4, 0u64..8)),
            steps in proptest::collection::vec((proptest::bool::ANY, 0i64..4), 1..80),
        ) {
            let p = params(for_min, keep_min, flap);
            let mut kept = Lifecycle::new();
            let mut compact: Option<Lifecycle> = None;
            let mut now = 0;
            for (cond, dt) in steps {
                now += dt;
                let want = kept.step(cond, t(now), &p);
                let got = match compact.as_mut() {
                    Some(l) => l.step(cond, t(now), &p),
                    None if cond => compact.insert(Lifecycle::new()).step(cond, t(now), &p),
                    // No lifecycle and no condition: nothing to decide.
                    None => None,
                };
                proptest::prop_assert_eq!(got, want, "at minute {}", now);
                let state = compact.as_ref().map_or(State::Inactive, Lifecycle::state);
                proptest::prop_assert_eq!(state, kept.state());
                if compact.as_ref().is_some_and(Lifecycle::is_idle) {
                    compact = None;
                }
            }
        }
    }
}
