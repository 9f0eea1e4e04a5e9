//! The engine proper: SLOs addressed by a dense [`SloIdx`], the ingest hot path, and evaluation
//! into reports, with each alert tier's raw condition. The engine holds no alert state: the alert
//! lifecycle ([`crate::alert::lifecycle`]) is the one machine that decides pending, firing,
//! held, flapping and resolved.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::rules::model::{
    BudgetingMethod, Indicator, NoDataPolicy, RatioNumerator, RuleSet, Slo, SloId, Window,
};
use crate::slo::counter::CounterSet;
use crate::slo::ring::Counts;
use crate::slo::sketch::{LatencyQuantiles, LatencyTiers, sketch_days};
use crate::slo::slice::{SliceAcc, SliceJudge};
use crate::slo::tiers::{
    COUNT_RES, MAX_TIMESTAMP, TierLayout, calendar_period, first_bucket_at_or_after, needed_span,
};
use crate::slo::window_sums::CountTiers;
use crate::time::{Dur, Timestamp};

/// Dense index of an SLO in an [`Engine`], returned by [`Engine::add_slo`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SloIdx(pub u32);

/// Why an ingest call was refused (the engine state is unchanged).
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum IngestError {
    /// No SLO has this index.
    #[error("no SLO with index {0}")]
    UnknownSlo(u32),
    /// Instants before the epoch or after year 9000 are refused.
    #[error("timestamp {0} ms is outside [0, year 9000]")]
    Timestamp(i64),
    /// A latency must be a finite number of seconds >= 0.
    #[error("latency {0} s is not a finite non-negative number")]
    InvalidLatency(f64),
    /// The SLO's indicator has no latencies.
    #[error("SLO index {0} is not a latency SLO")]
    NotLatency(u32),
}

/// Counts and derived figures of one window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowReport {
    /// Nominal length (rolling) or the true length of the current period (calendar).
    pub length: Dur,
    /// Start of the first bucket counted.
    pub start: Timestamp,
    /// Resolution of the tier the counts come from.
    pub resolution: Dur,
    /// Good events (or good slices).
    pub good: u64,
    /// All events (or slices).
    pub total: u64,
    /// good / total; by the no-data policy when `total` is 0 (before the SLO's first collection,
    /// 1: a source not collected yet is not data).
    pub sli: f64,
    /// (bad / total) / budget: the burn rate of the data seen, as Prometheus would compute it from
    /// the same counters; by the no-data policy when `total` is 0 (0 before the first collection).
    /// Not scaled by `coverage`: the figures that spend budget ([`TierReport`] burn rates,
    /// [`BudgetReport`]) are.
    pub burn_rate: f64,
    /// Share of the window, in `[0, 1]`, that lies after the SLO's first collection: of the last
    /// `length` for a rolling window, of the period so far for a calendar one. 0 before the first
    /// collection, 1 once the SLO has been collected for the whole window (a source that stopped
    /// answering later does not lower it: its silence is what `no_data` judges).
    pub coverage: f64,
    /// False when the window holds no event.
    pub has_data: bool,
    /// Latency percentiles (latency SLIs with observations only; boxed, so the windows of the
    /// many SLOs without latencies do not carry its 40 bytes in every snapshot).
    pub latency: Option<Box<LatencyQuantiles>>,
}

/// The error budget over the SLO window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetReport {
    /// 1 - objective.
    pub ratio: f64,
    /// Fraction of the budget of the whole SLO window left: 1 - coverage x burn rate of the SLO
    /// window (negative when overspent). The bad events seen count against the budget of the
    /// whole window, the events expected over it being the events seen / coverage, so a few
    /// seconds of data cannot spend a month's budget many times over.
    pub remaining: f64,
    /// Budget in minutes: ratio x true window length.
    pub total_minutes: f64,
    /// remaining x total_minutes.
    pub remaining_minutes: f64,
}

/// One alert tier at evaluation time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TierReport {
    /// Tier name.
    pub name: String,
    /// Severity word.
    pub severity: String,
    /// Burn-rate threshold.
    pub factor: f64,
    /// Long window.
    pub long: Dur,
    /// Short window.
    pub short: Dur,
    /// Burn rate over the long window against the budget of the whole window: the window's burn
    /// rate x its coverage (the same once the window is covered), so a tier fires when the
    /// share of the SLO's budget it names has really been spent (see docs/rules.md).
    pub long_burn: f64,
    /// Burn rate over the short window, scaled by its coverage likewise.
    pub short_burn: f64,
    /// Events in the long window (for the min_events guard).
    pub long_events: u64,
    /// Whether the firing condition held at this evaluation: the raw input of the tier's
    /// alert. Whether the alert is pending, firing, held or flapping is decided by its
    /// lifecycle ([`crate::alert::lifecycle`]) and read from the alerting view, never here.
    pub condition: bool,
}

/// Everything the engine knows about one SLO at one instant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SloReport {
    /// Index in the engine.
    pub idx: SloIdx,
    /// `service/slo`.
    pub id: SloId,
    /// The effective evaluation instant (never earlier than the newest data).
    pub at: Timestamp,
    /// The compliance window.
    pub window: WindowReport,
    /// Every distinct alert window (long and short), shortest first.
    pub alert_windows: Vec<WindowReport>,
    /// Rolling windows a reader asked for (see [`Engine::evaluate_with`]) that are neither the
    /// compliance window nor an alert window, in the order asked; empty unless asked.
    pub extra_windows: Vec<WindowReport>,
    /// Error budget.
    pub budget: BudgetReport,
    /// Time until the budget is spent at the 1 h burn rate (`None` at burn 0).
    pub time_to_exhaustion: Option<Dur>,
    /// Alert tiers, in rule order.
    pub tiers: Vec<TierReport>,
    /// Events lost because they arrived later than every tier's span (or after their slice).
    pub late_dropped: u64,
    /// Values refused at the door (invalid latencies and counter samples).
    pub rejected: u64,
}

/// Reports of every SLO at one instant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    /// The requested instant.
    pub at: Timestamp,
    /// One report per SLO, by index.
    pub slos: Vec<SloReport>,
}

/// What one counter scrape added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScrapeOutcome {
    /// Good events added.
    pub good: u64,
    /// Events added.
    pub total: u64,
    /// Samples refused.
    pub rejected: u64,
}

/// Serializable state of one SLO.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SloState {
    pub(crate) counts: CountTiers,
    /// Latency SLOs' percentile sketches, allocated at the first latency observed (boxed: most
    /// SLOs have none, and the tiers are a few hundred bytes even empty).
    pub(crate) sketches: Option<Box<LatencyTiers>>,
    pub(crate) numerator: CounterSet,
    pub(crate) total: CounterSet,
    pub(crate) slices: Option<SliceAcc>,
    pub(crate) latest: Option<Timestamp>,
    pub(crate) rejected: u64,
    /// The instant of the SLO's first collection: the timestamp of the first event (or batch,
    /// or scrape of its counters) it received, in arrival order. Before it, windows hold no data
    /// rather than bad data, and coverage counts from it.
    pub(crate) first: Option<Timestamp>,
}

/// Derived, immutable facts about an SLO, computed once when it is added.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) layout: TierLayout,
    budget: f64,
    threshold_secs: Option<f64>,
    numerator: RatioNumerator,
    judge: Option<SliceJudge>,
    /// Distinct alert windows, shortest first.
    alert_windows: Vec<Dur>,
    /// Per tier: (long, short) indexes into `alert_windows`.
    tier_windows: Vec<(usize, usize)>,
    /// Every rolling window evaluated (the SLO window, alert windows, 1 h) as (tier, buckets):
    /// the windows whose sums the count tiers keep.
    rolling: Vec<(usize, i64)>,
    pub(crate) sketch_days: usize,
}

impl Plan {
    fn new(slo: &Slo) -> Plan {
        let threshold_secs = match &slo.indicator {
            Indicator::LatencyThreshold { threshold, .. }
            | Indicator::LatencyPercentile { threshold, .. } => Some(threshold.as_secs_f64()),
            _ => None,
        };
        let numerator = match &slo.indicator {
            Indicator::Ratio { numerator, .. } | Indicator::Query { numerator, .. } => *numerator,
            // Histogram `le` buckets count good events.
            _ => RatioNumerator::Good,
        };
        let judge = match (&slo.method, &slo.indicator) {
            (BudgetingMethod::Occurrences, _) => None,
            (
                BudgetingMethod::Timeslices { .. },
                Indicator::LatencyPercentile { percentile, .. },
            ) => Some(SliceJudge::percentile(*percentile)),
            (BudgetingMethod::Timeslices { target, .. }, _) => Some(SliceJudge::ratio(*target)),
        };
        let mut alert_windows: Vec<Dur> = slo
            .alerting
            .tiers
            .iter()
            .flat_map(|t| [t.long, t.short])
            .collect();
        alert_windows.sort();
        alert_windows.dedup();
        let pos = |d: Dur| alert_windows.binary_search(&d).unwrap_or(0);
        let tier_windows = slo
            .alerting
            .tiers
            .iter()
            .map(|t| (pos(t.long), pos(t.short)))
            .collect();
        let layout = TierLayout::for_slo(slo);
        let rolling = match slo.window {
            Window::Rolling(w) => Some(w),
            Window::Calendar { .. } => None,
        }
        .into_iter()
        .chain(alert_windows.iter().copied())
        .chain([Dur::HOUR])
        .map(|w| {
            let tier = layout.rolling_tier(w);
            (tier, layout.rolling_buckets(tier, w))
        })
        .collect();
        Plan {
            layout,
            rolling,
            budget: slo.objective.budget(),
            threshold_secs,
            numerator,
            judge,
            alert_windows,
            tier_windows,
            sketch_days: sketch_days(needed_span(slo)),
        }
    }
}

impl SloState {
    pub(crate) fn fresh(slo: &Slo, plan: &Plan) -> SloState {
        SloState {
            counts: CountTiers::new(COUNT_RES, plan.layout.lens, &plan.rolling),
            sketches: None,
            numerator: CounterSet::new(),
            total: CounterSet::new(),
            slices: match &slo.method {
                BudgetingMethod::Timeslices { slice, .. } => Some(SliceAcc::new(slice.millis())),
                BudgetingMethod::Occurrences => None,
            },
            latest: None,
            rejected: 0,
            first: None,
        }
    }

    /// Notes a collection at `ts` (see `first`: only the first one is kept).
    #[inline]
    pub(crate) fn collected(&mut self, ts: Timestamp) {
        if self.first.is_none() {
            self.first = Some(ts);
        }
    }

    /// Share of `[from, now]` after the first collection (see [`WindowReport::coverage`]).
    fn coverage(&self, from: i64, now: Timestamp) -> f64 {
        let Some(first) = self.first else {
            return 0.0;
        };
        let span = now.0.saturating_sub(from);
        if span <= 0 {
            return if first <= now { 1.0 } else { 0.0 };
        }
        (now.0.saturating_sub(first.0.max(from)) as f64 / span as f64).clamp(0.0, 1.0)
    }

    /// Fits restored state to a (possibly edited) SLO with the same fingerprint: rings resized
    /// keeping the newest buckets (window sums rebuilt from them); tier states of an old
    /// checkpoint are dropped (the alerting state file holds the alert lifecycles).
    pub(crate) fn adapt(&mut self, slo: &Slo, plan: &Plan) {
        self.counts.adapt(plan.layout.lens, &plan.rolling);
        match (&mut self.sketches, slo.indicator.is_latency()) {
            (Some(s), true) => s.resize_days(plan.sketch_days),
            (None, true) => {}
            (s, false) => *s = None,
        }
    }

    /// Bytes of the count rings (8 B per bucket, see [`crate::slo::ring::CountRing`]) and their
    /// window sums.
    pub fn count_bytes(&self) -> usize {
        self.counts.bytes()
    }

    fn late_dropped(&self) -> u64 {
        self.counts.late_dropped() + self.slices.as_ref().map_or(0, |s| s.late_dropped)
    }
}

/// Judges every slice that ended before `t` and records each as one good or bad event in all
/// count tiers (empty slices per the no-data policy, back at most one coarse-tier span).
fn roll_slices(
    plan: &Plan,
    no_data: NoDataPolicy,
    acc: &mut SliceAcc,
    counts: &mut CountTiers,
    t: Timestamp,
) {
    let judge = plan.judge.unwrap_or(SliceJudge::Ratio { ppm: 1_000_000 });
    let span = plan.layout.span(2).millis() as i64;
    acc.roll(t.0, judge, no_data, span, |last, g| {
        counts.add(Timestamp(last), 1, u64::from(!g));
    });
}

pub(crate) struct Entry {
    pub(crate) slo: Slo,
    pub(crate) fingerprint: u64,
    pub(crate) plan: Plan,
    pub(crate) state: SloState,
}

impl Entry {
    pub(crate) fn new(slo: &Slo) -> Entry {
        let plan = Plan::new(slo);
        let state = SloState::fresh(slo, &plan);
        Entry {
            slo: slo.clone(),
            fingerprint: crate::slo::fingerprint::fingerprint(slo),
            plan,
            state,
        }
    }

    /// Adds events: to the open slice (timeslices) or straight into the count rings.
    #[inline]
    fn ingest(&mut self, ts: Timestamp, good: u64, total: u64) {
        let st = &mut self.state;
        if st.latest.is_none_or(|l| ts > l) {
            st.latest = Some(ts);
        }
        let good = good.min(total);
        match &mut st.slices {
            None => st.counts.add(ts, total, total - good),
            Some(acc) => {
                roll_slices(&self.plan, self.slo.no_data, acc, &mut st.counts, ts);
                acc.add(ts.0, good, total);
            }
        }
    }

    /// Moves time to `now`: judges finished slices and rotates every ring.
    fn advance(&mut self, now: Timestamp) {
        let st = &mut self.state;
        if st.latest.is_none_or(|l| now > l) {
            st.latest = Some(now);
        }
        let now = st.latest.unwrap_or(now);
        // Before the first collection there is nothing to judge: empty slices are not yet
        // "no data" (see `no_data` in docs/rules.md).
        if let Some(acc) = &mut st.slices
            && st.first.is_some()
        {
            roll_slices(&self.plan, self.slo.no_data, acc, &mut st.counts, now);
        }
        st.counts.advance(now);
        if let Some(s) = &mut st.sketches {
            s.advance(now);
        }
    }

    /// The report of a window whose counts `c` are tier `tier`'s buckets from `first` to the
    /// bucket of `now`, and whose share after the first collection is `coverage`.
    fn window(
        &self,
        c: Counts,
        first: i64,
        tier: usize,
        now: Timestamp,
        length: Dur,
        coverage: f64,
    ) -> WindowReport {
        let r = COUNT_RES[tier].millis() as i64;
        let budget = self.plan.budget;
        let (sli, burn_rate) = if c.total > 0 {
            let bad = c.bad as f64 / c.total as f64;
            (c.good() as f64 / c.total as f64, bad / budget)
        } else if self.state.first.is_none() {
            // Not collected yet: no data, whatever the policy says about data that stopped.
            (1.0, 0.0)
        } else {
            match self.slo.no_data {
                NoDataPolicy::Ignore | NoDataPolicy::Good => (1.0, 0.0),
                NoDataPolicy::Bad => (0.0, 1.0 / budget),
            }
        };
        WindowReport {
            length,
            start: Timestamp(first * r),
            resolution: COUNT_RES[tier],
            good: c.good(),
            total: c.total,
            sli,
            burn_rate,
            coverage,
            has_data: c.total > 0,
            latency: self
                .state
                .sketches
                .as_ref()
                .and_then(|s| s.quantiles(Timestamp(first * r), now))
                .map(Box::new),
        }
    }

    /// A rolling window `w` at `now`, which the rings' heads have been advanced to.
    fn rolling(&mut self, w: Dur, now: Timestamp) -> WindowReport {
        let layout = &self.plan.layout;
        let tier = layout.rolling_tier(w);
        let (lo_excl, k) = layout.rolling_range(tier, w, now);
        let n = layout.rolling_buckets(tier, w);
        let c = self.state.counts.rolling_from(tier, n, lo_excl, k);
        let coverage = self
            .state
            .coverage(now.0.saturating_sub(w.millis() as i64), now);
        self.window(c, lo_excl + 1, tier, now, w, coverage)
    }

    fn evaluate(&mut self, idx: SloIdx, now: Timestamp, extra: &[Dur]) -> SloReport {
        let now = Timestamp(now.0.clamp(0, MAX_TIMESTAMP.0));
        self.advance(now);
        let now = self.state.latest.unwrap_or(now);
        let window = match &self.slo.window {
            Window::Rolling(w) => self.rolling(*w, now),
            Window::Calendar { unit, tz, .. } => {
                let (start, end) = calendar_period(*unit, tz, now);
                let tier = self.plan.layout.calendar_tier(start, now);
                let r = COUNT_RES[tier].millis() as i64;
                let first = first_bucket_at_or_after(start, r);
                let c = self.state.counts.sum(tier, first - 1, now.0.div_euclid(r));
                let coverage = self.state.coverage(start.0, now);
                self.window(c, first, tier, now, end.since(start), coverage)
            }
        };
        let alert_windows: Vec<WindowReport> = (0..self.plan.alert_windows.len())
            .map(|i| {
                let w = self.plan.alert_windows[i];
                self.rolling(w, now)
            })
            .collect();
        // Summed from the rings (exact); a window longer than the rings hold is left out
        // rather than cut short.
        let mut extra_windows: Vec<WindowReport> = Vec::new();
        for &w in extra {
            let known = self.slo.window == Window::Rolling(w)
                || self.plan.alert_windows.contains(&w)
                || extra_windows.iter().any(|r| r.length == w);
            if !known && w > Dur(0) && self.plan.layout.holds(w) {
                extra_windows.push(self.rolling(w, now));
            }
        }
        let budget = self.plan.budget;
        // Budget-spending figures count the bad events seen against the whole window's budget.
        let spent = |w: &WindowReport| w.coverage * w.burn_rate;
        let remaining = 1.0 - spent(&window);
        let total_minutes = budget * window.length.as_mins_f64();
        let budget_report = BudgetReport {
            ratio: budget,
            remaining,
            total_minutes,
            remaining_minutes: remaining * total_minutes,
        };
        let hour_burn = match self.plan.alert_windows.binary_search(&Dur::HOUR) {
            Ok(i) => spent(&alert_windows[i]),
            Err(_) => spent(&self.rolling(Dur::HOUR, now)),
        };
        let time_to_exhaustion = if remaining <= 0.0 {
            Some(Dur(0))
        } else if hour_burn <= 0.0 {
            None
        } else {
            // f64 -> u64 casts saturate, and both operands are finite and positive.
            Some(Dur(
                (remaining * window.length.millis() as f64 / hour_burn) as u64
            ))
        };
        let min_events = self.slo.alerting.min_events;
        let bad_no_data = self.slo.no_data == NoDataPolicy::Bad;
        let mut tiers = Vec::with_capacity(self.slo.alerting.tiers.len());
        for (i, t) in self.slo.alerting.tiers.iter().enumerate() {
            let (li, si) = self.plan.tier_windows[i];
            let (long, short) = (&alert_windows[li], &alert_windows[si]);
            let guard_ok = long.total >= min_events || (bad_no_data && !long.has_data);
            let (long_burn, short_burn) = (spent(long), spent(short));
            let condition =
                exceeds(long_burn, t.factor) && exceeds(short_burn, t.factor) && guard_ok;
            tiers.push(TierReport {
                name: t.name.clone(),
                severity: t.severity.clone(),
                factor: t.factor,
                long: t.long,
                short: t.short,
                long_burn,
                short_burn,
                long_events: long.total,
                condition,
            });
        }
        SloReport {
            idx,
            id: self.slo.id.clone(),
            at: now,
            window,
            alert_windows,
            extra_windows,
            budget: budget_report,
            time_to_exhaustion,
            tiers,
            late_dropped: self.state.late_dropped(),
            rejected: self.state.rejected,
        }
    }
}

/// Relative margin by which a burn rate must exceed a tier factor. An exact tie (e.g. 360 bad of
/// 120000 against 99.9%, burn exactly 3) is not "above", but `Objective::budget()` for 99.9 is
/// 0.000999999999999943, which would turn the tie into 3.0000000000002 and fire; the margin keeps
/// ties quiet as the arithmetic intends, and is far below any meaningful burn difference.
pub const BURN_TIE_EPSILON: f64 = 1e-9;

/// Whether `burn` is above `factor` (by more than [`BURN_TIE_EPSILON`], relative).
pub fn exceeds(burn: f64, factor: f64) -> bool {
    burn > factor * (1.0 + BURN_TIE_EPSILON)
}

/// Marks a head with no pending events.
const HEAD_EMPTY: i64 = -1;
/// Marks the head of an SLO whose events do not go straight into the rings (timeslices): such
/// events are never write-combined. Never equal to a minute of an accepted instant (those are >= 0).
const HEAD_OFF: i64 = i64::MIN;
/// Width of a head's bucket: the finest count tier, so a head's minute lies in one bucket of
/// every tier.
const HEAD_RES: i64 = COUNT_RES[0].millis() as i64;

/// Write-combining buffer of one SLO's newest minute: the pending good/bad counts of events that
/// arrived consecutively for the same minute, not yet added to the three count rings.
///
/// Flushing a head adds its counts to the rings in one call, which is exactly what the separate
/// calls would have done: consecutive additions to one bucket cannot be told apart from their sum
/// (saturating sums of non-negative numbers are associative, and a late bucket is late for every
/// event in it). Heads are 32 bytes and contiguous, so the ingest of an event for the SLO's
/// current minute touches one cache line instead of three ring slots.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(32))]
pub(crate) struct Head {
    /// Minute (`ts / 60 s`) of the pending counts, or [`HEAD_EMPTY`] / [`HEAD_OFF`].
    minute: i64,
    /// Pending events.
    total: u64,
    /// Pending bad events.
    bad: u64,
    /// Newest instant among the pending events.
    latest: i64,
}

impl Head {
    fn for_entry(e: &Entry) -> Head {
        Head {
            minute: if e.state.slices.is_some() {
                HEAD_OFF
            } else {
                HEAD_EMPTY
            },
            total: 0,
            bad: 0,
            latest: 0,
        }
    }
}

/// Adds a head's pending events to a state (as if they had been ingested one by one).
pub(crate) fn apply_head(state: &mut SloState, h: &Head) {
    if h.minute < 0 {
        return;
    }
    if state.latest.is_none_or(|l| h.latest > l.0) {
        state.latest = Some(Timestamp(h.latest));
    }
    state
        .counts
        .add(Timestamp(h.minute * HEAD_RES), h.total, h.bad);
}

/// The SLO engine: every SLO's counts, sketches, counters and slices.
#[derive(Default)]
pub struct Engine {
    pub(crate) entries: Vec<Entry>,
    /// One write-combining head per entry, by index (see [`Head`]). Readers flush them first.
    pub(crate) heads: Vec<Head>,
    pub(crate) by_id: BTreeMap<SloId, u32>,
}

#[inline]
fn check_ts(ts: Timestamp) -> Result<(), IngestError> {
    if ts.0 < 0 || ts.0 > MAX_TIMESTAMP.0 {
        Err(IngestError::Timestamp(ts.0))
    } else {
        Ok(())
    }
}

impl Engine {
    /// An engine without SLOs.
    pub fn new() -> Engine {
        Engine::default()
    }

    /// An engine with every SLO of a rule set, in rule order. A grouped rule has no state of
    /// its own: its instances are added as their label sets appear.
    pub fn from_rules(rules: &RuleSet) -> Engine {
        let mut e = Engine::new();
        for slo in rules.slos().filter(|s| !s.is_template()) {
            e.add_slo(slo);
        }
        e
    }

    /// Drops every SLO `keep` refuses, with its state; the others keep their state and their
    /// order, so an SLO before the first one dropped keeps its index. Returns how many went.
    pub fn retain(&mut self, mut keep: impl FnMut(&Slo) -> bool) -> usize {
        let before = self.entries.len();
        let mut kept = vec![false; before];
        for (k, e) in kept.iter_mut().zip(&self.entries) {
            *k = keep(&e.slo);
        }
        let mut flags = kept.iter();
        self.entries
            .retain(|_| flags.next().copied().unwrap_or(true));
        let mut flags = kept.iter();
        self.heads.retain(|_| flags.next().copied().unwrap_or(true));
        self.by_id = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.slo.id.clone(), i as u32))
            .collect();
        before - self.entries.len()
    }

    /// Adds an SLO with fresh state and returns its index. Adding an id that is already present
    /// replaces that SLO's definition in place (same index, fresh state).
    pub fn add_slo(&mut self, slo: &Slo) -> SloIdx {
        let entry = Entry::new(slo);
        let head = Head::for_entry(&entry);
        if let Some(&i) = self.by_id.get(&slo.id) {
            self.entries[i as usize] = entry;
            self.heads[i as usize] = head;
            return SloIdx(i);
        }
        let i = self.entries.len() as u32;
        self.entries.push(entry);
        self.heads.push(head);
        self.by_id.insert(slo.id.clone(), i);
        SloIdx(i)
    }

    /// Number of SLOs.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True without SLOs.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The index of an SLO by id.
    pub fn index_of(&self, id: &SloId) -> Option<SloIdx> {
        self.by_id.get(id).map(|&i| SloIdx(i))
    }

    /// The model of an SLO.
    pub fn slo(&self, idx: SloIdx) -> Option<&Slo> {
        self.entries.get(idx.0 as usize).map(|e| &e.slo)
    }

    /// The count-tier layout of an SLO (which resolution serves which window).
    pub fn layout(&self, idx: SloIdx) -> Option<TierLayout> {
        self.entries.get(idx.0 as usize).map(|e| e.plan.layout)
    }

    /// Bytes of an SLO's count rings and their window sums.
    pub fn count_bytes(&self, idx: SloIdx) -> Option<usize> {
        self.entries
            .get(idx.0 as usize)
            .map(|e| e.state.count_bytes())
    }

    /// Approximate heap bytes of an SLO's latency sketches (0 for other SLOs).
    pub fn sketch_bytes(&self, idx: SloIdx) -> Option<usize> {
        self.entries
            .get(idx.0 as usize)
            .map(|e| e.state.sketches.as_ref().map_or(0, |s| s.approx_bytes()))
    }

    /// The history of an SLO over `q.range` up to `now` (see [`crate::slo::history`]); `None`
    /// for an unknown index. Pending events are flushed first, so it counts what an evaluation
    /// at `now` counts.
    pub fn history(
        &mut self,
        idx: SloIdx,
        now: Timestamp,
        q: crate::slo::history::HistoryQuery,
    ) -> Option<Result<crate::slo::history::History, crate::slo::history::HistoryError>> {
        use crate::slo::history;
        let i = idx.0 as usize;
        self.flush_head(i);
        let e = self.entries.get(i)?;
        let (tier, step) = match history::plan(&e.plan.layout, q) {
            Ok(p) => p,
            Err(err) => return Some(Err(err)),
        };
        let ring = e.state.counts.ring(tier);
        let r = COUNT_RES[tier].millis() as i64;
        // What an evaluation at `now` would hold: the ring advanced to now's bucket keeps its
        // `len` newest buckets; a bucket after the head holds nothing yet.
        let newest = now.0.div_euclid(r);
        let oldest = newest - ring.len() as i64 + 1;
        let head = ring.head();
        let bucket = |k: i64| {
            if k < oldest {
                return None;
            }
            match head {
                Some(h) if k <= h => ring.get(k),
                _ => Some(Counts::default()),
            }
        };
        let at = history::Reading {
            res: COUNT_RES[tier],
            step,
            range: q.range,
            now,
            budget: e.plan.budget,
            windows: &e.plan.alert_windows,
            first_collection: e.state.first,
        };
        Some(Ok(history::read(&at, bucket)))
    }

    #[inline]
    fn entry_mut(&mut self, idx: SloIdx) -> Result<&mut Entry, IngestError> {
        self.entries
            .get_mut(idx.0 as usize)
            .ok_or(IngestError::UnknownSlo(idx.0))
    }

    /// Adds the pending events of every head to the rings and empties the heads.
    pub(crate) fn flush_heads(&mut self) {
        for (e, h) in self.entries.iter_mut().zip(&mut self.heads) {
            if h.minute >= 0 {
                apply_head(&mut e.state, h);
                h.minute = HEAD_EMPTY;
            }
        }
    }

    /// Adds the pending events of one head to its rings and empties it.
    fn flush_head(&mut self, i: usize) {
        if let (Some(e), Some(h)) = (self.entries.get_mut(i), self.heads.get_mut(i))
            && h.minute >= 0
        {
            apply_head(&mut e.state, h);
            h.minute = HEAD_EMPTY;
        }
    }

    /// Resets every head to empty (after the entries' states were replaced wholesale).
    pub(crate) fn reset_heads(&mut self) {
        self.heads = self.entries.iter().map(Head::for_entry).collect();
    }

    /// Ingests `total` events of which `bad` are bad (`bad <= total`) at an accepted `ts`: into
    /// the SLO's head when it holds the same minute (one cache line), otherwise flushing the head
    /// and starting a new one; timeslice SLOs go to their entry directly.
    #[inline]
    fn ingest(
        &mut self,
        idx: SloIdx,
        ts: Timestamp,
        bad: u64,
        total: u64,
    ) -> Result<(), IngestError> {
        let i = idx.0 as usize;
        let Some(h) = self.heads.get_mut(i) else {
            return Err(IngestError::UnknownSlo(idx.0));
        };
        let minute = ts.0 / HEAD_RES;
        if h.minute == minute {
            h.total = h.total.saturating_add(total);
            h.bad = h.bad.saturating_add(bad);
            h.latest = h.latest.max(ts.0);
            return Ok(());
        }
        self.ingest_slow(i, ts, minute, bad, total);
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn ingest_slow(&mut self, i: usize, ts: Timestamp, minute: i64, bad: u64, total: u64) {
        let (e, h) = (&mut self.entries[i], &mut self.heads[i]);
        // An SLO's first event always passes here (its head starts empty), so the hot path
        // above never needs to look at `first`.
        e.state.collected(ts);
        if h.minute == HEAD_OFF {
            e.ingest(ts, total - bad, total);
            return;
        }
        apply_head(&mut e.state, h);
        *h = Head {
            minute,
            total,
            bad,
            latest: ts.0,
        };
    }

    /// One event (ratio or probe): good or bad, at `ts`.
    #[inline]
    pub fn record(&mut self, idx: SloIdx, ts: Timestamp, good: bool) -> Result<(), IngestError> {
        check_ts(ts)?;
        self.ingest(idx, ts, u64::from(!good), 1)
    }

    /// Pre-aggregated events at `ts`: `total` events of which `good` (clamped to `total`) good.
    #[inline]
    pub fn record_counts(
        &mut self,
        idx: SloIdx,
        ts: Timestamp,
        good: u64,
        total: u64,
    ) -> Result<(), IngestError> {
        check_ts(ts)?;
        self.ingest(idx, ts, total - good.min(total), total)
    }

    /// One latency observation of a latency SLO: good iff `secs <= threshold`; also feeds the
    /// percentile sketches. NaN, infinities and negatives are refused (and counted).
    #[inline]
    pub fn record_latency(
        &mut self,
        idx: SloIdx,
        ts: Timestamp,
        secs: f64,
    ) -> Result<(), IngestError> {
        check_ts(ts)?;
        let e = self.entry_mut(idx)?;
        let Some(threshold) = e.plan.threshold_secs else {
            return Err(IngestError::NotLatency(idx.0));
        };
        if !(secs.is_finite() && secs >= 0.0) {
            e.state.rejected += 1;
            return Err(IngestError::InvalidLatency(secs));
        }
        let accepted_slice = e
            .state
            .slices
            .as_ref()
            .is_none_or(|acc| acc.cur.is_none_or(|c| ts.0.div_euclid(acc.slice_ms) >= c));
        if accepted_slice {
            let days = e.plan.sketch_days;
            e.state
                .sketches
                .get_or_insert_with(|| Box::new(LatencyTiers::new(days)))
                .add(ts, secs);
        }
        self.ingest(idx, ts, u64::from(secs > threshold), 1)
    }

    /// One scrape of cumulative counters for an SLO from one `source` (a scrape target):
    /// `numerator` and `total` are `(series id, value)` samples. Only the source's own series
    /// absent from the scrape are forgotten. Per-series increments are summed and rounded to whole events;
    /// the numerator counts good or bad events per the indicator (`le` buckets of a histogram:
    /// good), and is clamped to the total.
    pub fn record_counter_scrape(
        &mut self,
        idx: SloIdx,
        ts: Timestamp,
        source: u64,
        numerator: &[(u64, f64)],
        total: &[(u64, f64)],
    ) -> Result<ScrapeOutcome, IngestError> {
        check_ts(ts)?;
        let e = self.entry_mut(idx)?;
        // A scrape is a collection even when it only sets the counters' baseline.
        e.state.collected(ts);
        let n = e.state.numerator.scrape(source, numerator);
        let t = e.state.total.scrape(source, total);
        let rejected = n.rejected + t.rejected;
        e.state.rejected += rejected;
        // Saturating float-to-int casts; deltas are finite and >= 0.
        let total = t.delta.round() as u64;
        let num = (n.delta.round() as u64).min(total);
        let good = match e.plan.numerator {
            RatioNumerator::Good => num,
            RatioNumerator::Bad => total - num,
        };
        if total > 0 {
            self.ingest(idx, ts, total - good, total)?;
        }
        Ok(ScrapeOutcome {
            good,
            total,
            rejected,
        })
    }

    /// The newest instant an SLO has seen: its newest event, collection or evaluation (`None`
    /// before any). A query source resumes its window-mode reads from it after a restart,
    /// since every read applied before the checkpoint is at or before it.
    pub fn latest(&self, idx: SloIdx) -> Option<Timestamp> {
        let i = idx.0 as usize;
        let state = self.entries.get(i)?.state.latest;
        let head = self
            .heads
            .get(i)
            .filter(|h| h.minute >= 0)
            .map(|h| Timestamp(h.latest));
        state.max(head)
    }

    /// Moves every SLO's clock to `now`: judges finished slices and rotates rings.
    pub fn advance(&mut self, now: Timestamp) {
        let now = Timestamp(now.0.clamp(0, MAX_TIMESTAMP.0));
        self.flush_heads();
        for e in &mut self.entries {
            e.advance(now);
        }
    }

    /// Evaluates one SLO at `now` (or at its newest data, if later).
    pub fn evaluate_slo(&mut self, idx: SloIdx, now: Timestamp) -> Result<SloReport, IngestError> {
        self.flush_head(idx.0 as usize);
        Ok(self.entry_mut(idx)?.evaluate(idx, now, &[]))
    }

    /// Evaluates every SLO at `now`.
    pub fn evaluate(&mut self, now: Timestamp) -> Snapshot {
        self.evaluate_with(now, |_| Vec::new())
    }

    /// Evaluates every SLO at `now`, also reporting the rolling windows `extra` lists for each
    /// SLO in [`SloReport::extra_windows`] (those that are not already the compliance window or
    /// an alert window, and that the SLO's rings hold). Such windows are summed from the rings
    /// at each call, so they cost a ring read per window and evaluation.
    pub fn evaluate_with(&mut self, now: Timestamp, extra: impl Fn(&Slo) -> Vec<Dur>) -> Snapshot {
        self.flush_heads();
        let slos = self
            .entries
            .iter_mut()
            .enumerate()
            .map(|(i, e)| {
                let more = extra(&e.slo);
                e.evaluate(SloIdx(i as u32), now, &more)
            })
            .collect();
        Snapshot { at: now, slos }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::model::{
        Alerting, BurnTier, Labels, LatencySource, Objective, Percentile, default_tiers,
    };
    use crate::slo::checkpoint::EngineCheckpoint;

    pub(crate) fn slo(name: &str, window: Window, indicator: Indicator) -> Slo {
        Slo {
            id: SloId {
                service: "svc".into(),
                slo: name.into(),
            },
            description: None,
            labels: Labels::new(),
            objective: Objective::from_percent(99.0).expect("valid"),
            alerting: Alerting {
                tiers: default_tiers(&window),
                ..Alerting::default()
            },
            window,
            method: BudgetingMethod::Occurrences,
            indicator,
            no_data: NoDataPolicy::Ignore,
            group: None,
        }
    }

    fn probe() -> Indicator {
        Indicator::ProbeAvailability { probe: "p".into() }
    }

    fn latency(ms: u64) -> Indicator {
        Indicator::LatencyThreshold {
            threshold: Dur(ms),
            source: LatencySource::Probe { probe: "p".into() },
        }
    }

    const DAY0: i64 = 20_000 * 86_400_000;

    fn t(mins: i64) -> Timestamp {
        Timestamp(DAY0 + mins * 60_000)
    }

    /// Marks an SLO as first collected 31 days before `t(0)` (a scrape that finds no series), so
    /// every window is covered.
    fn collected_long_ago(e: &mut Engine, i: SloIdx) {
        let ago = Timestamp(DAY0 - Dur::from_days(31).millis() as i64);
        e.record_counter_scrape(i, ago, 0, &[], &[]).expect("ok");
    }

    #[test]
    fn rejected_latencies_leave_state_untouched() {
        let mut e = Engine::new();
        let i = e.add_slo(&slo(
            "lat",
            Window::Rolling(Dur::from_days(30)),
            latency(300),
        ));
        e.record_latency(i, t(0), 0.3).expect("valid");
        e.record_latency(i, t(0), 0.301).expect("valid");
        let before = e.evaluate_slo(i, t(1)).expect("idx");
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.5] {
            let r = e.record_latency(i, t(0), bad);
            assert!(
                matches!(r, Err(IngestError::InvalidLatency(v)) if v.to_bits() == bad.to_bits())
            );
        }
        let after = e.evaluate_slo(i, t(1)).expect("idx");
        assert_eq!(after.window.total, 2);
        assert_eq!(after.window.good, 1);
        assert_eq!(after.rejected, 4);
        assert_eq!(before.window, after.window);
        assert_eq!(
            e.record_latency(i, Timestamp(-1), 0.1),
            Err(IngestError::Timestamp(-1))
        );
        let p = e.add_slo(&slo("probe", Window::Rolling(Dur::from_days(30)), probe()));
        assert_eq!(
            e.record_latency(p, t(0), 0.1),
            Err(IngestError::NotLatency(p.0))
        );
        assert_eq!(
            e.record(SloIdx(99), t(0), true),
            Err(IngestError::UnknownSlo(99))
        );
    }

    #[test]
    fn no_data_policies() {
        for (policy, sli, burn) in [
            (NoDataPolicy::Ignore, 1.0, 0.0),
            (NoDataPolicy::Good, 1.0, 0.0),
            (NoDataPolicy::Bad, 0.0, 100.0),
        ] {
            let mut s = slo("nd", Window::Rolling(Dur::from_days(30)), probe());
            s.no_data = policy;
            s.alerting.min_events = 1_000;
            let mut e = Engine::new();
            let i = e.add_slo(&s);
            // Collected once, a month ago, silent since (before that the policy does not apply:
            // see no_data_bad_waits_for_the_first_collection).
            collected_long_ago(&mut e, i);
            let r = e.evaluate_slo(i, t(0)).expect("idx");
            assert!(!r.window.has_data);
            assert_eq!(r.window.coverage, 1.0);
            assert_eq!(r.window.sli, sli);
            assert!(
                (r.window.burn_rate - burn).abs() < 1e-9,
                "{}",
                r.window.burn_rate
            );
            let firing = r.tiers.iter().any(|t| t.condition);
            // Bad: the min_events guard does not hide an empty window.
            assert_eq!(firing, policy == NoDataPolicy::Bad);
            if policy == NoDataPolicy::Bad {
                assert_eq!(r.time_to_exhaustion, Some(Dur(0)));
            } else {
                assert_eq!(r.time_to_exhaustion, None);
                assert_eq!(r.budget.remaining, 1.0);
            }
        }
    }

    #[test]
    fn counter_scrapes_with_numerator_kinds() {
        let mut s = slo("ratio", Window::Rolling(Dur::from_days(1)), probe());
        s.indicator = Indicator::Ratio {
            numerator: RatioNumerator::Bad,
            numerator_selector: std::sync::Arc::new(
                crate::rules::selector::Selector::parse("errors_total").expect("valid selector"),
            ),
            total: std::sync::Arc::new(
                crate::rules::selector::Selector::parse("requests_total").expect("valid selector"),
            ),
        };
        let mut e = Engine::new();
        let i = e.add_slo(&s);
        let o = e
            .record_counter_scrape(i, t(0), 0, &[(1, 5.0)], &[(1, 100.0), (2, 50.0)])
            .expect("ok");
        assert_eq!(
            o,
            ScrapeOutcome {
                good: 0,
                total: 0,
                rejected: 0
            }
        );
        let o = e
            .record_counter_scrape(i, t(1), 0, &[(1, 7.0)], &[(1, 120.0), (2, 60.0)])
            .expect("ok");
        assert_eq!(
            o,
            ScrapeOutcome {
                good: 28,
                total: 30,
                rejected: 0
            }
        );
        // Reset of total series 1 (value 4 counts as 4), bad counter jumps by more than the total:
        // clamped to the total.
        let o = e
            .record_counter_scrape(i, t(2), 0, &[(1, 100.0)], &[(1, 4.0), (2, f64::NAN)])
            .expect("ok");
        assert_eq!(
            o,
            ScrapeOutcome {
                good: 0,
                total: 4,
                rejected: 1
            }
        );
        let r = e.evaluate_slo(i, t(3)).expect("idx");
        assert_eq!((r.window.good, r.window.total), (28, 34));
        assert_eq!(r.rejected, 1);
    }

    #[test]
    fn tier_conditions_are_raw_and_for_is_left_to_the_lifecycle() {
        let mut s = slo("for", Window::Rolling(Dur::from_days(30)), probe());
        s.alerting.tiers = vec![BurnTier {
            name: "fast".into(),
            severity: "page".into(),
            long: Dur::HOUR,
            short: Dur::from_mins(5),
            factor: 10.0,
            for_: Dur::from_mins(3),
            keep_firing_for: Dur(0),
            labels: Labels::new(),
            annotations: Labels::new(),
        }];
        let mut e = Engine::new();
        let i = e.add_slo(&s);
        collected_long_ago(&mut e, i);
        // `for` does not delay the condition: the lifecycle applies it, once.
        for m in 0..8 {
            e.record_counts(i, t(m), 50, 100).expect("ok");
            assert!(e.evaluate_slo(i, t(m)).expect("idx").tiers[0].condition);
        }
        // Budget overspent: 50% errors against a 1% budget.
        let r = e.evaluate_slo(i, t(8)).expect("idx");
        assert!((r.budget.remaining - (1.0 - 50.0)).abs() < 1e-9);
        assert_eq!(r.time_to_exhaustion, Some(Dur(0)));
    }

    #[test]
    fn time_to_exhaustion_from_hour_burn() {
        let mut e = Engine::new();
        let i = e.add_slo(&slo("tte", Window::Rolling(Dur::from_days(30)), probe()));
        collected_long_ago(&mut e, i);
        // 60 minutes of 1000 events with 2 bad: 0.2% errors, burn 0.2 against a 1% budget.
        for m in 0..60 {
            e.record_counts(i, t(m), 998, 1000).expect("ok");
        }
        let r = e.evaluate_slo(i, t(59)).expect("idx");
        let burn = 0.002 / 0.01;
        assert!((r.window.burn_rate - burn).abs() < 1e-9);
        assert!((r.budget.remaining - 0.8).abs() < 1e-9);
        assert!((r.budget.total_minutes - 0.01 * 30.0 * 1440.0).abs() < 1e-9);
        // remaining x window / burn = 0.8 x 30 d / 0.2 = 120 d.
        let tte = r.time_to_exhaustion.expect("burning").millis() as f64;
        assert!((tte - 120.0 * 86_400_000.0).abs() < 10.0, "{tte}");
    }

    #[test]
    fn latency_percentile_slices() {
        let mut s = slo("p95", Window::Rolling(Dur::from_days(1)), probe());
        s.indicator = Indicator::LatencyPercentile {
            percentile: Percentile::from_percent(95.0).expect("valid"),
            threshold: Dur(500),
            source: LatencySource::Probe { probe: "p".into() },
        };
        s.method = BudgetingMethod::Timeslices {
            slice: Dur::MINUTE,
            target: 0.99,
        };
        let mut e = Engine::new();
        let i = e.add_slo(&s);
        // Minute 0: 19 fast + 1 slow of 20 (rank(20) = 19): good. Minute 1: 18 fast + 2 slow: bad.
        for k in 0..20 {
            e.record_latency(i, t(0).add(Dur(k)), if k == 0 { 0.9 } else { 0.1 })
                .expect("ok");
        }
        for k in 0..20 {
            e.record_latency(i, t(1).add(Dur(k)), if k < 2 { 0.9 } else { 0.1 })
                .expect("ok");
        }
        let r = e.evaluate_slo(i, t(2)).expect("idx");
        assert_eq!((r.window.good, r.window.total), (1, 2));
        let q = r.window.latency.expect("observations");
        assert_eq!(q.count, 40);
        // A late observation for a judged slice is dropped, from the sketches too.
        e.record_latency(i, t(0), 0.1).expect("ok");
        let r = e.evaluate_slo(i, t(2)).expect("idx");
        assert_eq!(r.late_dropped, 1);
        assert_eq!(r.window.latency.expect("observations").count, 40);
    }

    #[test]
    fn checkpoint_includes_pending_heads() {
        let mut e = Engine::new();
        let i = e.add_slo(&slo("cp", Window::Rolling(Dur::from_days(30)), probe()));
        let l = e.add_slo(&slo(
            "lat",
            Window::Rolling(Dur::from_days(30)),
            latency(300),
        ));
        // Out of order across minutes, then several events left pending in the same minute.
        for (m, ms, good) in [(3, 0, true), (1, 5, false), (3, 9, false), (3, 7, true)] {
            e.record(i, t(m).add(Dur(ms)), good).expect("ok");
            e.record_latency(l, t(m).add(Dur(ms)), if good { 0.1 } else { 0.5 })
                .expect("ok");
        }
        let cp = e.checkpoint();
        let mut restored = Engine::new();
        restored.add_slo(&slo("cp", Window::Rolling(Dur::from_days(30)), probe()));
        restored.add_slo(&slo(
            "lat",
            Window::Rolling(Dur::from_days(30)),
            latency(300),
        ));
        restored.restore(cp);
        for idx in [i, l] {
            let a = e.evaluate_slo(idx, t(3)).expect("idx");
            let b = restored.evaluate_slo(idx, t(3)).expect("idx");
            assert_eq!((a.window.good, a.window.total), (2, 4));
            assert_eq!(a.at, t(3).add(Dur(9)));
            assert_eq!(a, b);
        }
        let lat = restored.evaluate_slo(l, t(3)).expect("idx").window.latency;
        assert_eq!(lat.expect("observations").count, 4);
        // A restore discards pending events of the replaced state.
        e.record(i, t(5), false).expect("ok");
        e.restore(EngineCheckpoint::default());
        assert_eq!(e.evaluate_slo(i, t(6)).expect("idx").window.total, 0);
    }

    #[test]
    fn sketches_are_allocated_at_the_first_latency() {
        let w = Window::Rolling(Dur::from_days(30));
        let mut e = Engine::new();
        let l = e.add_slo(&slo("lat", w.clone(), latency(300)));
        assert_eq!(e.sketch_bytes(l), Some(0));
        // Probe failures are events but no latencies.
        e.record(l, t(0), false).expect("ok");
        assert_eq!(e.sketch_bytes(l), Some(0));
        // A checkpoint of the SLO without sketches restores without them, and the same.
        let mut restored = Engine::new();
        restored.add_slo(&slo("lat", w.clone(), latency(300)));
        restored.restore(e.checkpoint());
        assert_eq!(restored.sketch_bytes(l), Some(0));
        let a = e.evaluate_slo(l, t(1)).expect("idx");
        assert_eq!(a, restored.evaluate_slo(l, t(1)).expect("idx"));
        assert_eq!(a.window.latency, None);
        for r in [&mut e, &mut restored] {
            r.record_latency(l, t(2), 0.2).expect("ok");
            assert!(r.sketch_bytes(l).expect("idx") > 0);
        }
        let (a, b) = (
            e.evaluate_slo(l, t(3)).expect("idx"),
            restored.evaluate_slo(l, t(3)).expect("idx"),
        );
        assert_eq!(a, b);
        assert_eq!(a.window.latency.expect("observed").count, 1);
    }

    fn secs(s: i64) -> Timestamp {
        Timestamp(DAY0 + s * 1000)
    }

    /// Issue 10: a `1m` short window read just after a minute boundary held only the current,
    /// empty minute, read as burn 0, and resolved a live page mid-outage.
    #[test]
    fn short_window_holds_the_minute_before_a_boundary() {
        let mut s = slo("short", Window::Rolling(Dur::from_days(30)), probe());
        s.alerting.tiers = vec![BurnTier {
            name: "fast".into(),
            severity: "page".into(),
            long: Dur::from_mins(10),
            short: Dur::MINUTE,
            factor: 10.0,
            for_: Dur(0),
            keep_firing_for: Dur(0),
            labels: Labels::new(),
            annotations: Labels::new(),
        }];
        let mut e = Engine::new();
        let i = e.add_slo(&s);
        // A day of good checks every 10 s (windows fully covered), then an outage from minute
        // 1440 on: every check fails.
        for k in 0..(1450 * 6) {
            let good = k < 1440 * 6;
            e.record(i, secs(k * 10 - 1440 * 60), good).expect("ok");
        }
        // 0.5 s after the boundary of minute 10 of the outage: the newest failed check was at
        // 9:50, the current minute has none yet.
        let now = t(10).add(Dur(500));
        let r = e.evaluate_slo(i, now).expect("idx");
        let short = &r.alert_windows[0];
        assert_eq!(short.length, Dur::MINUTE);
        // Every check of [now - 1m, now] is counted: 9:10 ... 9:50, and the minute bucket starts
        // at 9:00, so 6 failed checks.
        assert_eq!((short.good, short.total), (0, 6));
        assert!(short.start <= Timestamp(now.0 - 60_000));
        assert!(r.tiers[0].condition, "{:?}", r.tiers[0]);
        // Exactly on a boundary with the window a multiple of the resolution: exactly the last
        // minute, [9:00, 10:00], whose checks are 9:00 ... 9:50.
        let r = e.evaluate_slo(i, t(10)).expect("idx");
        assert_eq!(r.alert_windows[0].start, t(9));
        assert_eq!(r.alert_windows[0].total, 6);
    }

    /// A probe every 10 s against 99.9 %, failing from the very first check of a fresh start:
    /// page_fast (2 % of the 30-day budget within 1 h: 14.4x over 1h and 5m) pages once that
    /// much budget is really spent, after the sixth failed check, not after the first.
    #[test]
    fn fresh_start_outage_pages_after_six_failed_checks() {
        let mut s = slo("fresh", Window::Rolling(Dur::from_days(30)), probe());
        s.objective = Objective::from_percent(99.9).expect("valid");
        let mut e = Engine::new();
        let i = e.add_slo(&s);
        let fast = s
            .alerting
            .tiers
            .iter()
            .position(|t| t.name == "page_fast")
            .expect("default tier");
        // Evaluations every 5 s from the start, checks every 10 s.
        let mut checks = 0;
        let mut fired_after = None;
        for step in 0..40 {
            let now = secs(step * 5);
            if step % 2 == 0 {
                e.record(i, now, false).expect("ok");
                checks += 1;
            }
            let r = e.evaluate_slo(i, now).expect("idx");
            let tier = &r.tiers[fast];
            if tier.condition && fired_after.is_none() {
                fired_after = Some(checks);
                // 55 s of a 1 h window at 100 % errors: 55/3600 x 1000 = 15.3x.
                assert!((tier.long_burn - 55.0 / 3600.0 * 1000.0).abs() < 1e-9);
                assert!(
                    (r.alert_windows
                        .iter()
                        .find(|w| w.length == Dur::HOUR)
                        .expect("1h")
                        .burn_rate
                        - 1000.0)
                        .abs()
                        < 1e-9
                );
            }
            if checks == 1 {
                assert!(
                    r.tiers.iter().all(|t| !t.condition),
                    "one failed check paged"
                );
            }
        }
        assert_eq!(fired_after, Some(6));
    }

    /// The budget of the whole SLO window: 15 s of data with one failed check of two cannot
    /// leave "-4087 %" of a 30-day budget.
    #[test]
    fn budget_counts_against_the_whole_window() {
        let mut s = slo("budget", Window::Rolling(Dur::from_days(30)), probe());
        s.objective = Objective::from_percent(99.9).expect("valid");
        let mut e = Engine::new();
        let i = e.add_slo(&s);
        e.record(i, secs(0), false).expect("ok");
        e.record(i, secs(15), true).expect("ok");
        let r = e.evaluate_slo(i, secs(15)).expect("idx");
        // Exact counts and SLI of what was seen.
        assert_eq!((r.window.good, r.window.total), (1, 2));
        assert!((r.window.sli - 0.5).abs() < 1e-12);
        assert!((r.window.burn_rate - 500.0).abs() < 1e-9);
        let cov = 15.0 / (30.0 * 86_400.0);
        assert!((r.window.coverage - cov).abs() < 1e-15);
        assert!((r.budget.remaining - (1.0 - cov * 500.0)).abs() < 1e-12);
        assert!(r.budget.remaining > 0.99, "{}", r.budget.remaining);
        // Covered: one bucket after 30 days the same SLO reads coverage 1.
        let r = e.evaluate_slo(i, secs(30 * 86_400 + 15)).expect("idx");
        assert_eq!(r.window.coverage, 1.0);
    }

    #[test]
    fn coverage_of_rolling_and_calendar_windows() {
        let tz = jiff::tz::TimeZone::UTC;
        let month = Window::Calendar {
            unit: crate::rules::model::CalendarUnit::Month,
            tz,
            tz_name: "UTC".into(),
        };
        let mut e = Engine::new();
        let i = e.add_slo(&slo("m", month, probe()));
        let r = e.evaluate_slo(i, t(0)).expect("idx");
        assert_eq!(r.window.coverage, 0.0);
        assert!(r.alert_windows.iter().all(|w| w.coverage == 0.0));
        // t(0) is day 20000 = 2024-10-04T00:00Z: 3 days into October.
        e.record(i, t(0), true).expect("ok");
        let r = e.evaluate_slo(i, t(24 * 60)).expect("idx");
        // One day of data of the four days of the period so far.
        assert!(
            (r.window.coverage - 0.25).abs() < 1e-12,
            "{}",
            r.window.coverage
        );
        for w in &r.alert_windows {
            let want = (Dur::DAY.millis() as f64 / w.length.millis() as f64).min(1.0);
            assert!(
                (w.coverage - want).abs() < 1e-12,
                "{} {}",
                w.length,
                w.coverage
            );
        }
    }

    /// `no_data: bad` before the first collection: nothing is data yet, nothing burns or pages;
    /// once collected and then silent for a whole window, the policy applies as before.
    #[test]
    fn no_data_bad_waits_for_the_first_collection() {
        let mut s = slo("nd", Window::Rolling(Dur::from_days(30)), probe());
        s.no_data = NoDataPolicy::Bad;
        let mut e = Engine::new();
        let i = e.add_slo(&s);
        for m in [0, 10, 600] {
            let r = e.evaluate_slo(i, t(m)).expect("idx");
            assert!(r.tiers.iter().all(|t| !t.condition));
            assert_eq!(r.budget.remaining, 1.0);
            assert_eq!(r.window.sli, 1.0);
            assert_eq!(r.time_to_exhaustion, None);
        }
        // A scrape that only sets the counters' baseline is a collection.
        let mut c = s.clone();
        c.indicator = Indicator::Ratio {
            numerator: RatioNumerator::Good,
            numerator_selector: std::sync::Arc::new(
                crate::rules::selector::Selector::parse("ok_total").expect("valid selector"),
            ),
            total: std::sync::Arc::new(
                crate::rules::selector::Selector::parse("all_total").expect("valid selector"),
            ),
        };
        c.id.slo = "nd-scrape".into();
        let j = e.add_slo(&c);
        e.record_counter_scrape(j, t(600), 0, &[(1, 5.0)], &[(1, 5.0)])
            .expect("ok");
        // Then the source disappears for longer than page_fast's hour.
        let r = e.evaluate_slo(j, t(600 + 61)).expect("idx");
        let fast = &r.tiers[0];
        assert_eq!(fast.name, "page_fast");
        assert!(fast.condition, "{fast:?}");
        assert!((fast.long_burn - 100.0).abs() < 1e-9);
        assert_eq!(r.time_to_exhaustion.map(|d| d.millis() > 0), Some(true));
    }

    /// A timeslice SLO with `no_data: bad` judges no empty slice before its first collection.
    #[test]
    fn no_bad_slices_before_the_first_collection() {
        let mut s = slo("slices", Window::Rolling(Dur::from_days(1)), probe());
        s.no_data = NoDataPolicy::Bad;
        s.method = BudgetingMethod::Timeslices {
            slice: Dur::MINUTE,
            target: 0.9,
        };
        let mut e = Engine::new();
        let i = e.add_slo(&s);
        for m in 0..30 {
            assert_eq!(e.evaluate_slo(i, t(m)).expect("idx").window.total, 0);
        }
        e.record(i, t(30), true).expect("ok");
        // Slice 30 judged good, 31 and 32 empty: bad.
        let r = e.evaluate_slo(i, t(33)).expect("idx");
        assert_eq!((r.window.good, r.window.total), (1, 3));
    }

    #[test]
    fn memory_of_a_30d_occurrences_slo() {
        let mut e = Engine::new();
        let w = Window::Rolling(Dur::from_days(30));
        let quiet = e.add_slo(&slo("quiet", w.clone(), probe()));
        let small = e.add_slo(&slo("small", w.clone(), probe()));
        let busy = e.add_slo(&slo("busy", w.clone(), probe()));
        // Before any event: the window sums only (8 rolling windows), no bucket storage.
        let sums = 560;
        assert_eq!(e.count_bytes(quiet), Some(sums));
        // 31 days, a minute at a time: 4 events a second with a bad one every 17 minutes, and
        // 1,000 a second of which 0.1 % bad.
        for m in 0..31 * 24 * 60 {
            e.record_counts(small, t(m), 240 - u64::from(m % 17 == 0), 240)
                .expect("ok");
            e.record_counts(busy, t(m), 59_940, 60_000).expect("ok");
        }
        e.evaluate(t(31 * 24 * 60));
        // The figures of the module docs and docs/rules.md ("Memory per SLO"): per bucket of the
        // 1 m, 10 m and 1 h tiers (361, 433, 721 buckets) the widths of the largest total and
        // bad count (1 + 1, 2 + 1, 2 + 1 bytes; 2 + 1, 4 + 2, 4 + 2 bytes).
        assert_eq!(
            e.count_bytes(small),
            Some(sums + 361 * 2 + 433 * 3 + 721 * 3)
        );
        assert_eq!(e.count_bytes(small), Some(4_744));
        assert_eq!(
            e.count_bytes(busy),
            Some(sums + 361 * 3 + 433 * 6 + 721 * 6)
        );
        assert_eq!(e.count_bytes(busy), Some(8_567));
        // At most 16 bytes a bucket (counts beyond 2^32 a bucket), as a Ring<Counts>.
        assert!(8_567 < sums + 16 * (361 + 433 + 721));
    }
}
