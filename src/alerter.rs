//! Alert sources: which alerts a rule set defines, and what they are at each evaluation.
//!
//! The [`Alerter`] turns the agent's snapshots (SLO reports, probe and scrape-target statuses)
//! and every probe result into [`Alert`]s: one [`Lifecycle`] per alert identity (fingerprint),
//! stepped with the alert's raw condition at each evaluation. It owns these alerts:
//!
//! | alertname | condition |
//! |---|---|
//! | `SloBurnRate` | the tier's multiwindow condition (`TierReport::condition`) |
//! | `SloErrorBudgetExhausted` | budget remaining over the compliance window <= 0 |
//! | `SloNoData` | no event counted for the SLO for `no_data.for` |
//! | `ProbeDown` | the probe's thresholds (N in a row, m of n, failing for a duration) |
//! | `ScrapeTargetDown` | the newest scrape of the target failed |
//!
//! Pure: no clock, no I/O. Deciding ([`Alerter::evaluate`]) returns the new alerts and
//! transitions and changes only in-memory state; [`Alerter::state`] exports that state whole
//! (serde) so a write-ahead log can persist it before the decisions are acted upon.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use crate::alert::lifecycle::{Lifecycle, Params, Phase, State};
use crate::alert::names::{
    PROBE_DOWN, SCRAPE_TARGET_DOWN, SLO_BURN_RATE, SLO_ERROR_BUDGET_EXHAUSTED, SLO_NO_DATA,
};
use crate::alert::{Alert, Fingerprint, names, rfc3339};
use crate::rules::model::{Labels, ProbeAlert, ProbeTrigger, RuleSet, Service, Slo, SloId, Window};
use crate::slo::engine::{SloReport, TierReport, WindowReport};
use crate::time::{Dur, Timestamp};
use crate::view::{AgentSnapshot, ProbeStatus, TargetStatus, TierPhases};

/// What one evaluation (or reload) decided.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AlertSet {
    /// Every firing alert (plain, held by `keep_firing_for`, or flapping) and every alert that
    /// resolved in this step, sorted by fingerprint: the dispatcher's upsert.
    pub alerts: Vec<Alert>,
    /// Fingerprints of the alerts held by flap damping (a subset of the firing `alerts`).
    pub flapping: Vec<Fingerprint>,
    /// State changes of this step, for logs.
    pub transitions: Vec<Transition>,
}

/// One state change of one alert.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Transition {
    /// The alert's identity.
    pub fingerprint: Fingerprint,
    /// Its labels.
    pub labels: Labels,
    /// State before.
    pub from: State,
    /// State after.
    pub to: State,
    /// The evaluation instant.
    pub at: Timestamp,
}

/// Where an alert's condition comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    Burn { slo: SloId, tier: String },
    Budget { slo: SloId },
    NoData { slo: SloId, after: Dur },
    Probe { name: String },
    Target { name: String },
}

/// One alert the rules define. Every SLO defines several and most never fire, so a
/// definition is kept small: its labels packed in one allocation, the generator URL shared by
/// the alerts of one SLO.
#[derive(Debug, Clone)]
struct Def {
    labels: PackedLabels,
    source: Source,
    params: Params,
    generator_url: Arc<str>,
}

/// A label set in one allocation: `name 0xff value 0xff` per pair in name order (0xff never
/// occurs in UTF-8), unpacked when an alert needs its labels (it starts to hold, or is
/// reported).
#[derive(Debug, Clone, PartialEq, Eq)]
struct PackedLabels(Box<[u8]>);

impl PackedLabels {
    fn pack(labels: &Labels) -> PackedLabels {
        let mut b = Vec::with_capacity(labels.iter().map(|(k, v)| k.len() + v.len() + 2).sum());
        for (k, v) in labels {
            b.extend_from_slice(k.as_bytes());
            b.push(0xff);
            b.extend_from_slice(v.as_bytes());
            b.push(0xff);
        }
        PackedLabels(b.into_boxed_slice())
    }

    fn unpack(&self) -> Labels {
        let mut out = Labels::new();
        // Every part was a whole `str` when packed: cut at 0xff, it is valid UTF-8 again.
        let mut parts = self
            .0
            .split(|b| *b == 0xff)
            .map(|p| String::from_utf8_lossy(p).into_owned());
        while let (Some(k), Some(v)) = (parts.next(), parts.next()) {
            out.insert(k, v);
        }
        out
    }
}

/// One alert's lifecycle with what it last reported.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AlertEntry {
    /// Identity labels.
    pub labels: Labels,
    /// The state machine.
    pub lifecycle: Lifecycle,
    /// The newest annotations computed for it.
    pub annotations: Labels,
    /// The newest generator URL.
    pub generator_url: String,
}

/// The thresholds' view of one probe: recent results and the down latch.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProbeTracker {
    /// Newest results, oldest first (as many as an `of` threshold looks at; at least one).
    recent: VecDeque<bool>,
    /// Failures in a row up to the newest result.
    failures_in_row: u64,
    /// Successes in a row up to the newest result.
    successes_in_row: u64,
    /// Start of the first failure of the current failing run.
    failing_since: Option<Timestamp>,
    /// Whether the thresholds consider the probe down.
    down: bool,
}

impl ProbeTracker {
    /// Whether the failure threshold holds at `now`.
    fn trigger_holds(&self, trigger: ProbeTrigger, now: Timestamp) -> bool {
        match trigger {
            ProbeTrigger::Consecutive(n) => self.failures_in_row >= u64::from(n),
            ProbeTrigger::OutOf { failures, .. } => {
                self.recent.iter().filter(|ok| !**ok).count() as u64 >= u64::from(failures)
            }
            ProbeTrigger::FailingFor(d) => self.failing_since.is_some_and(|s| now.since(s) >= d),
        }
    }

    /// Counts one result. A down probe comes back up after `successes` successes in a row, once
    /// the trigger no longer holds (for `m of n`, the window must also have dropped below `m`).
    fn observe(&mut self, at: Timestamp, success: bool, a: &ProbeAlert) {
        let keep = match a.trigger {
            ProbeTrigger::OutOf { of, .. } => of as usize,
            _ => 1,
        };
        self.recent.push_back(success);
        while self.recent.len() > keep {
            self.recent.pop_front();
        }
        if success {
            self.successes_in_row += 1;
            self.failures_in_row = 0;
            self.failing_since = None;
            if self.down
                && self.successes_in_row >= u64::from(a.successes)
                && !self.trigger_holds(a.trigger, at)
            {
                self.down = false;
            }
        } else {
            self.failures_in_row += 1;
            self.successes_in_row = 0;
            self.failing_since.get_or_insert(at);
            if self.trigger_holds(a.trigger, at) {
                self.down = true;
            }
        }
    }

    /// The condition at `now`: a `failing_for` threshold can be reached by time alone.
    fn condition(&mut self, a: &ProbeAlert, now: Timestamp) -> bool {
        if !self.down && self.trigger_holds(a.trigger, now) {
            self.down = true;
        }
        self.down
    }

    /// Failures among the newest results (as many as an `of` threshold looks at).
    fn recent_failures(&self) -> usize {
        self.recent.iter().filter(|ok| !**ok).count()
    }
}

/// When each SLO last counted a new event (for `SloNoData`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EventMark {
    /// Events (good + bad) counted since the agent started, at the newest evaluation.
    pub count: u64,
    /// The first evaluation that saw `count` (or the first evaluation at all).
    pub since: Timestamp,
}

/// Everything an [`Alerter`] remembers, for persistence.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AlerterState {
    /// Every alert lifecycle, by fingerprint.
    pub alerts: BTreeMap<Fingerprint, AlertEntry>,
    /// Threshold state per probe name.
    pub probes: BTreeMap<String, ProbeTracker>,
    /// Newest event count per SLO.
    pub events: BTreeMap<SloId, EventMark>,
}

/// Owns the lifecycles of every alert of a rule set.
#[derive(Debug, Clone)]
pub struct Alerter {
    external_url: String,
    defs: BTreeMap<Fingerprint, Def>,
    probe_rules: BTreeMap<String, ProbeAlert>,
    state: AlerterState,
}

impl Alerter {
    /// The alerts of `rules`; `external_url` (e.g. `http://burnwatch.example:9090`) prefixes
    /// every generator URL.
    pub fn new(rules: &RuleSet, external_url: &str) -> Alerter {
        let mut a = Alerter {
            external_url: external_url.trim_end_matches('/').to_owned(),
            defs: BTreeMap::new(),
            probe_rules: BTreeMap::new(),
            state: AlerterState::default(),
        };
        a.set_rules(rules);
        a
    }

    /// Every alert identity the rules define, with its labels (sorted by fingerprint).
    pub fn defined(&self) -> Vec<(Fingerprint, Labels)> {
        self.defs
            .iter()
            .map(|(f, d)| (*f, d.labels.unpack()))
            .collect()
    }

    /// The phase of one alert (inactive when it has no lifecycle: never held, or idle).
    pub fn phase(&self, fp: Fingerprint) -> Phase {
        self.state
            .alerts
            .get(&fp)
            .map_or(Phase::Inactive, |e| e.lifecycle.phase)
    }

    /// The state to persist.
    pub fn state(&self) -> &AlerterState {
        &self.state
    }

    /// How many alerts are pending (their condition holds, `for` has not elapsed yet).
    pub fn pending_count(&self) -> usize {
        self.state
            .alerts
            .values()
            .filter(|e| e.lifecycle.state() == State::Pending)
            .count()
    }

    /// The phase of every burn-rate tier alert the rules define.
    pub fn tier_phases(&self) -> TierPhases {
        let mut out: BTreeMap<SloId, BTreeMap<String, Phase>> = BTreeMap::new();
        // Inactive is what a missing phase reads as: only the others are kept (a few SLOs of
        // a large rule set have any), from the lifecycles rather than every definition.
        for (fp, e) in &self.state.alerts {
            if e.lifecycle.phase == Phase::Inactive {
                continue;
            }
            if let Some(Source::Burn { slo, tier }) = self.defs.get(fp).map(|d| &d.source) {
                let phase = e.lifecycle.phase;
                out.entry(slo.clone())
                    .or_default()
                    .insert(tier.clone(), phase);
            }
        }
        TierPhases::from(out)
    }

    /// Restores persisted state: lifecycles of alerts the rules still define are kept; firing
    /// ones whose rules are gone resolve at `now` (returned, like a reload).
    pub fn restore(&mut self, state: AlerterState, now: Timestamp) -> AlertSet {
        self.state = state;
        self.state
            .probes
            .retain(|name, _| self.probe_rules.contains_key(name));
        self.drop_undefined(now)
    }

    /// Takes a new rule set: lifecycles of alerts that still exist (same fingerprint) are kept;
    /// firing alerts whose rules disappeared (or whose labels changed) resolve at `now`.
    pub fn reload(&mut self, rules: &RuleSet, now: Timestamp) -> AlertSet {
        self.set_rules(rules);
        self.state
            .probes
            .retain(|name, _| self.probe_rules.contains_key(name));
        self.drop_undefined(now)
    }

    /// Counts one probe result (every one, in order: `m of n` needs them all).
    pub fn observe_probe(&mut self, name: &str, at: Timestamp, success: bool) {
        if let Some(rule) = self.probe_rules.get(name) {
            self.state
                .probes
                .entry(name.to_owned())
                .or_default()
                .observe(at, success, rule);
        }
    }

    /// Steps every alert with the snapshot's conditions at `now`.
    pub fn evaluate(&mut self, snap: &AgentSnapshot, now: Timestamp) -> AlertSet {
        let rows: HashMap<&SloId, (&SloReport, &Service, &Slo)> = snap
            .slo_rows()
            .into_iter()
            .map(|row| (&row.0.id, row))
            .collect();
        let probes: HashMap<&str, &ProbeStatus> =
            snap.probes.iter().map(|p| (p.name.as_str(), p)).collect();
        let targets: HashMap<&str, &TargetStatus> =
            snap.targets.iter().map(|t| (t.name.as_str(), t)).collect();
        // Event marks first: several alerts of one SLO read the same mark.
        for (id, _) in rows.iter() {
            let count = snap
                .events_total
                .get(*id)
                .map_or(0, |(g, b)| g.saturating_add(*b));
            let mark = self
                .state
                .events
                .entry((*id).clone())
                .or_insert(EventMark { count, since: now });
            // A lower count is a restarted agent: keep the instant of the newest event seen.
            if count > mark.count {
                mark.since = now;
            }
            mark.count = count;
        }
        let mut out = AlertSet::default();
        for (fp, def) in &self.defs {
            let cond = match &def.source {
                Source::Burn { slo, tier } => rows.get(slo).and_then(|&(r, _, _)| {
                    r.tiers
                        .iter()
                        .find(|t| &t.name == tier)
                        .map(|t| t.condition)
                }),
                Source::Budget { slo } => rows.get(slo).map(|&(r, _, _)| r.budget.remaining <= 0.0),
                Source::NoData { slo, after } => rows.get(slo).map(|_| {
                    let since = self.state.events.get(slo).map_or(now, |m| m.since);
                    now.since(since) >= *after
                }),
                Source::Probe { name } => self.probe_rules.get(name).map(|rule| {
                    let tracker = self.state.probes.entry(name.clone()).or_default();
                    tracker.condition(rule, now)
                }),
                Source::Target { name } => targets
                    .get(name.as_str())
                    .map(|t| t.last_scrape_ms.is_some() && !t.up),
            };
            // Only alerts whose condition holds or held get a lifecycle: an idle one (never held,
            // or back to inactive with nothing to remember) is the same as none, and most
            // alerts of a large rule set are idle (their entries were most of its memory).
            if cond != Some(true) && !self.state.alerts.contains_key(fp) {
                continue;
            }
            let entry = self.state.alerts.entry(*fp).or_insert_with(|| AlertEntry {
                labels: def.labels.unpack(),
                lifecycle: Lifecycle::new(),
                annotations: Labels::new(),
                generator_url: def.generator_url.to_string(),
            });
            if *entry.generator_url != *def.generator_url {
                entry.generator_url = def.generator_url.to_string();
            }
            let mut newly_resolved = false;
            if let Some(cond) = cond {
                if let Some((from, to)) = entry.lifecycle.step(cond, now, &def.params) {
                    newly_resolved = to == State::Resolved;
                    out.transitions.push(Transition {
                        fingerprint: *fp,
                        labels: entry.labels.clone(),
                        from,
                        to,
                        at: now,
                    });
                }
                // Annotations are text for people: only worth formatting for an alert that is
                // (about to be) shown or sent, not for the quiet majority.
                let shown = match entry.lifecycle.state() {
                    State::Inactive => false,
                    State::Resolved => newly_resolved,
                    State::Pending | State::Firing | State::Flapping => true,
                };
                if shown {
                    let context = Context {
                        rows: &rows,
                        probes: &probes,
                        targets: &targets,
                        events: &self.state.events,
                        trackers: &self.state.probes,
                        probe_rules: &self.probe_rules,
                        now,
                    };
                    if let Some(a) = context.annotations(&def.source, newly_resolved) {
                        entry.annotations = a;
                    }
                }
            }
            push_alert(&mut out, *fp, entry, newly_resolved);
            if entry.lifecycle.is_idle() {
                self.state.alerts.remove(fp);
            }
        }
        out
    }

    /// Rebuilds the definitions from `rules`.
    fn set_rules(&mut self, rules: &RuleSet) {
        let base = &self.external_url;
        let mut defs = BTreeMap::new();
        let mut add = |labels: Labels, source: Source, params: Params, url: Arc<str>| {
            defs.insert(
                Fingerprint::of(&labels),
                Def {
                    labels: PackedLabels::pack(&labels),
                    source,
                    params,
                    generator_url: url,
                },
            );
        };
        for svc in &rules.services {
            // A grouped rule has no alerts of its own; its instances have theirs.
            for slo in svc.slos.iter().filter(|s| !s.is_template()) {
                let url: Arc<str> = format!("{base}/api/v1/slos/{}", slo.id.url_path()).into();
                let flap = slo.alerting.flap;
                let slo_labels = |alertname: &str, severity: &str, extra: &Labels| {
                    let mut own = slo.labels.clone();
                    own.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
                    with_builtins(
                        own,
                        &[
                            (names::ALERTNAME, alertname),
                            (names::SERVICE, &slo.id.service),
                            (names::SLO, slo.id.name()),
                            (names::SEVERITY, severity),
                        ],
                    )
                };
                for t in &slo.alerting.tiers {
                    let mut l = slo_labels(SLO_BURN_RATE, &t.severity, &t.labels);
                    l.insert(names::TIER.into(), t.name.clone());
                    l.insert(names::WINDOW.into(), format!("{}/{}", t.long, t.short));
                    let params = Params {
                        for_: t.for_,
                        keep_firing_for: t.keep_firing_for,
                        flap,
                    };
                    let source = Source::Burn {
                        slo: slo.id.clone(),
                        tier: t.name.clone(),
                    };
                    add(l, source, params, url.clone());
                }
                if let Some(r) = &slo.alerting.budget_exhausted {
                    let l = slo_labels(SLO_ERROR_BUDGET_EXHAUSTED, &r.severity, &Labels::new());
                    let params = Params {
                        for_: r.for_,
                        keep_firing_for: r.keep_firing_for,
                        flap,
                    };
                    add(
                        l,
                        Source::Budget {
                            slo: slo.id.clone(),
                        },
                        params,
                        url.clone(),
                    );
                }
                if let Some(r) = &slo.alerting.no_data_alert {
                    let l = slo_labels(SLO_NO_DATA, &r.severity, &Labels::new());
                    // `for` is the length of the silence itself, measured by the source.
                    let params = Params {
                        for_: Dur(0),
                        keep_firing_for: r.keep_firing_for,
                        flap,
                    };
                    let source = Source::NoData {
                        slo: slo.id.clone(),
                        after: r.for_,
                    };
                    add(l, source, params, url.clone());
                }
            }
        }
        let mut probe_rules = BTreeMap::new();
        let probes_url: Arc<str> = format!("{base}/api/v1/probes").into();
        let targets_url: Arc<str> = format!("{base}/api/v1/targets").into();
        for p in &rules.probes {
            let Some(a) = &p.alert else { continue };
            let l = with_builtins(
                p.labels.clone(),
                &[
                    (names::ALERTNAME, PROBE_DOWN),
                    (names::SERVICE, &p.service),
                    (names::PROBE, &p.name),
                    (names::SEVERITY, &a.severity),
                ],
            );
            let params = Params {
                for_: a.for_,
                keep_firing_for: a.keep_firing_for,
                flap: a.flap,
            };
            let source = Source::Probe {
                name: p.name.clone(),
            };
            add(l, source, params, probes_url.clone());
            probe_rules.insert(p.name.clone(), a.clone());
        }
        for t in &rules.scrapes {
            let Some(a) = &t.alert else { continue };
            let l = with_builtins(
                t.labels.clone(),
                &[
                    (names::ALERTNAME, SCRAPE_TARGET_DOWN),
                    (names::SERVICE, &t.service),
                    (names::TARGET, &t.name),
                    (names::SEVERITY, &a.severity),
                ],
            );
            let params = Params {
                for_: a.for_,
                keep_firing_for: a.keep_firing_for,
                flap: t.flap,
            };
            let source = Source::Target {
                name: t.name.clone(),
            };
            add(l, source, params, targets_url.clone());
        }
        self.defs = defs;
        self.probe_rules = probe_rules;
    }

    /// Resolves (and forgets) the lifecycles the definitions no longer have.
    fn drop_undefined(&mut self, now: Timestamp) -> AlertSet {
        let mut out = AlertSet::default();
        let gone: Vec<Fingerprint> = self
            .state
            .alerts
            .keys()
            .filter(|fp| !self.defs.contains_key(fp))
            .copied()
            .collect();
        for fp in gone {
            let Some(mut entry) = self.state.alerts.remove(&fp) else {
                continue;
            };
            if let Some((from, to)) = entry.lifecycle.force_resolve(now) {
                if to == State::Resolved {
                    // No report to recount: say why it ended instead of repeating the symptom.
                    let name = entry
                        .labels
                        .get(names::ALERTNAME)
                        .map_or("", String::as_str);
                    entry.annotations.insert(
                        names::SUMMARY.into(),
                        format!(
                            "{name} {} resolved: its rule was removed or changed",
                            crate::alert::labels_string(&entry.labels)
                        ),
                    );
                    entry.annotations.remove(names::DESCRIPTION);
                }
                out.transitions.push(Transition {
                    fingerprint: fp,
                    labels: entry.labels.clone(),
                    from,
                    to,
                    at: now,
                });
                push_alert(&mut out, fp, &entry, to == State::Resolved);
            }
        }
        // The SLOs collected first: a scan of every definition per SLO is quadratic (10^10
        // steps at 100,000 SLOs, at every restart and reload).
        let slos: std::collections::BTreeSet<&SloId> = self
            .defs
            .values()
            .filter_map(|d| source_slo(&d.source))
            .collect();
        self.state.events.retain(|id, _| slos.contains(id));
        out
    }
}

/// An alert's labels: the rules' `own` labels, then the built-in ones, which win on a clash so
/// a rules label can never change an alert's identity labels (`service`, `probe`, ...).
fn with_builtins(mut own: Labels, builtins: &[(&str, &str)]) -> Labels {
    own.extend(
        builtins
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    own
}

fn source_slo(s: &Source) -> Option<&SloId> {
    match s {
        Source::Burn { slo, .. } | Source::Budget { slo } | Source::NoData { slo, .. } => Some(slo),
        Source::Probe { .. } | Source::Target { .. } => None,
    }
}

/// What the annotations of one evaluation are computed from.
struct Context<'a> {
    rows: &'a HashMap<&'a SloId, (&'a SloReport, &'a Service, &'a Slo)>,
    probes: &'a HashMap<&'a str, &'a ProbeStatus>,
    targets: &'a HashMap<&'a str, &'a TargetStatus>,
    events: &'a BTreeMap<SloId, EventMark>,
    trackers: &'a BTreeMap<String, ProbeTracker>,
    probe_rules: &'a BTreeMap<String, ProbeAlert>,
    now: Timestamp,
}

impl Context<'_> {
    /// The current annotations of an alert from `source`; None when its SLO, probe or target
    /// is not in the snapshot. A `resolved` alert's summary and description say that it
    /// recovered, with the final figures, instead of repeating the symptom. A burn tier's own
    /// `annotations` go on last, the same text firing and resolved, as the user wrote it.
    fn annotations(&self, source: &Source, resolved: bool) -> Option<Labels> {
        let mut a = self.symptom_annotations(source)?;
        if resolved {
            recovered(&mut a, source, self.rows);
        }
        if let Source::Burn { slo, tier } = source {
            let own = self
                .rows
                .get(slo)
                .and_then(|(_, _, s)| s.alerting.tiers.iter().find(|t| &t.name == tier));
            if let Some(t) = own {
                a.extend(t.annotations.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        Some(a)
    }

    fn symptom_annotations(&self, source: &Source) -> Option<Labels> {
        match source {
            Source::Burn { slo, tier } => self.rows.get(slo).and_then(|&(r, svc, s)| {
                let t = r.tiers.iter().find(|t| &t.name == tier)?;
                Some(burn_annotations(r, svc, s, t))
            }),
            Source::Budget { slo } => self
                .rows
                .get(slo)
                .map(|&(r, svc, s)| budget_annotations(r, svc, s)),
            Source::NoData { slo, .. } => self.rows.get(slo).map(|&(r, svc, s)| {
                let since = self.events.get(slo).map_or(self.now, |m| m.since);
                no_data_annotations(r, svc, s, since, self.now)
            }),
            Source::Probe { name } => {
                let rule = self.probe_rules.get(name)?;
                let tracker = self.trackers.get(name)?;
                Some(probe_annotations(
                    name,
                    rule,
                    tracker,
                    self.probes.get(name.as_str()).copied(),
                ))
            }
            Source::Target { name } => self
                .targets
                .get(name.as_str())
                .map(|t| target_annotations(t)),
        }
    }
}

/// Adds the entry's alert to `out` when it is firing, or when it resolved in this step.
fn push_alert(out: &mut AlertSet, fp: Fingerprint, entry: &AlertEntry, newly_resolved: bool) {
    let phase = &entry.lifecycle.phase;
    let Some((starts_at, ends_at)) = phase.instance() else {
        return;
    };
    if ends_at.is_some() && !newly_resolved {
        return;
    }
    if entry.lifecycle.state() == State::Flapping {
        out.flapping.push(fp);
    }
    out.alerts.push(Alert {
        labels: entry.labels.clone(),
        annotations: entry.annotations.clone(),
        starts_at,
        ends_at,
        generator_url: entry.generator_url.clone(),
    });
}

// ---- annotations ----

/// Service-level links and owner, common to every SLO alert.
fn service_annotations(svc: &Service, slo: &Slo, r: &SloReport) -> Labels {
    let mut a = Labels::new();
    if let Some(u) = &svc.runbook {
        a.insert(names::RUNBOOK_URL.into(), u.clone());
    }
    if let Some(u) = &svc.dashboard {
        a.insert(names::DASHBOARD_URL.into(), u.clone());
    }
    if let Some(o) = &svc.owner {
        a.insert(names::OWNER.into(), o.clone());
    }
    a.insert(
        names::OBJECTIVE.into(),
        format!("{}%", fmt_trim(slo.objective.percent(), 7)),
    );
    a.insert(names::SLI.into(), fmt_sli(r.window.sli));
    a.insert(
        names::BUDGET_REMAINING.into(),
        fmt_percent(r.budget.remaining, 1),
    );
    a.insert(
        names::TIME_TO_EXHAUSTION.into(),
        fmt_exhaustion(r.time_to_exhaustion),
    );
    a
}

fn burn_annotations(r: &SloReport, svc: &Service, slo: &Slo, t: &TierReport) -> Labels {
    let mut a = service_annotations(svc, slo, r);
    let (long, short) = (fmt_rate(t.long_burn), fmt_rate(t.short_burn));
    let factor = fmt_trim(t.factor, 2);
    a.insert(
        names::SUMMARY.into(),
        format!(
            "{} is burning its error budget {long} ({}: {} and {} windows above {factor}x)",
            slo.id, t.name, t.long, t.short
        ),
    );
    a.insert(
        names::BURN_RATE.into(),
        format!("{long} over {}, {short} over {}", t.long, t.short),
    );
    let budget = r.budget.ratio;
    let left = &a[names::BUDGET_REMAINING];
    let outlook = match r.time_to_exhaustion {
        Some(d) if d.is_zero() => format!("The budget is already exhausted ({left} left)."),
        None => format!("The budget ({left} left) is not being spent at the current 1h burn rate."),
        Some(_) => format!(
            "At the current 1h burn rate the budget ({left} left) is spent in {}.",
            a[names::TIME_TO_EXHAUSTION]
        ),
    };
    let window = |d: Dur| r.alert_windows.iter().find(|w| w.length == d);
    // The error ratio of the events seen (the tier's burn rates are scaled by coverage).
    let errors = |d: Dur, burn: f64| window(d).map_or(burn * budget, |w| 1.0 - w.sli);
    let (lw, sw) = (window(t.long), window(t.short));
    let partly = lw.is_some_and(|w| w.coverage < 1.0);
    a.insert(
        names::DESCRIPTION.into(),
        format!(
            "Errors are {:.2}% of events over the last {}{} and {:.2}% over the last {}{}, against an error budget of {} ({} over {}).{} {outlook}",
            finite(errors(t.long, t.long_burn)) * 100.0,
            t.long,
            fmt_coverage(lw),
            finite(errors(t.short, t.short_burn)) * 100.0,
            t.short,
            fmt_coverage(sw),
            fmt_percent(budget, 3),
            a[names::OBJECTIVE],
            fmt_window(&slo.window),
            if partly {
                " The burn rates count the errors seen against the budget of each whole window."
            } else {
                ""
            },
        ),
    );
    a
}

/// Rewrites a resolved alert's `summary` and `description`: it recovered, with the figures at
/// the evaluation that resolved it (the other annotations keep those figures too).
fn recovered(
    a: &mut Labels,
    source: &Source,
    rows: &HashMap<&SloId, (&SloReport, &Service, &Slo)>,
) {
    let (summary, description) = match source {
        Source::Burn { slo, tier } => {
            let Some(t) = rows
                .get(slo)
                .and_then(|(r, _, _)| r.tiers.iter().find(|t| &t.name == tier))
            else {
                return;
            };
            let factor = fmt_trim(t.factor, 2);
            (
                format!(
                    "{slo} recovered: burn rate {} over {} and {} over {} ({}: no longer both above {factor}x)",
                    fmt_rate(t.long_burn),
                    t.long,
                    fmt_rate(t.short_burn),
                    t.short,
                    t.name
                ),
                format!(
                    "The {} condition no longer holds: the burn rate is {} over the last {} and {} over the last {}, against a threshold of {factor}x. Error budget left: {} over {}.",
                    t.name,
                    fmt_rate(t.long_burn),
                    t.long,
                    fmt_rate(t.short_burn),
                    t.short,
                    a.get(names::BUDGET_REMAINING).map_or("", String::as_str),
                    rows.get(slo)
                        .map_or_else(String::new, |(_, _, s)| fmt_window(&s.window)),
                ),
            )
        }
        Source::Budget { slo } => {
            let window = rows
                .get(slo)
                .map_or_else(String::new, |(_, _, s)| fmt_window(&s.window));
            let left = a.get(names::BUDGET_REMAINING).map_or("", String::as_str);
            (
                format!("{slo} has error budget left again ({left} left over {window})"),
                format!(
                    "The SLI over {window} is {} against an objective of {}: the error budget is no longer spent ({left} left).",
                    a.get(names::SLI).map_or("", String::as_str),
                    a.get(names::OBJECTIVE).map_or("", String::as_str),
                ),
            )
        }
        Source::NoData { slo, .. } => (
            format!("{slo} counts events again"),
            format!("{slo} has counted new events since the last evaluation."),
        ),
        Source::Probe { name } => (
            format!("probe {name} is up again"),
            format!("Probe {name} passed enough checks in a row to count as up."),
        ),
        Source::Target { name } => (
            format!("scrape target {name} is up again"),
            format!("The newest scrape of target {name} succeeded."),
        ),
    };
    a.insert(names::SUMMARY.into(), summary);
    a.insert(names::DESCRIPTION.into(), description);
}

fn budget_annotations(r: &SloReport, svc: &Service, slo: &Slo) -> Labels {
    let mut a = service_annotations(svc, slo, r);
    a.insert(
        names::SUMMARY.into(),
        format!(
            "{} has exhausted its error budget ({} left over {})",
            slo.id,
            a[names::BUDGET_REMAINING],
            fmt_window(&slo.window)
        ),
    );
    a.insert(
        names::DESCRIPTION.into(),
        format!(
            "The SLI over {}{} is {} ({} good of {}) against an objective of {}: the error budget is spent, so the SLO is broken for this window. Freeze risky changes and work on reliability until the budget recovers.",
            fmt_window(&slo.window),
            fmt_coverage(Some(&r.window)),
            a[names::SLI],
            r.window.good,
            r.window.total,
            a[names::OBJECTIVE],
        ),
    );
    a
}

fn no_data_annotations(
    r: &SloReport,
    svc: &Service,
    slo: &Slo,
    since: Timestamp,
    now: Timestamp,
) -> Labels {
    let mut a = service_annotations(svc, slo, r);
    a.insert(
        names::SUMMARY.into(),
        format!("{} has counted no events for {}", slo.id, now.since(since)),
    );
    a.insert(
        names::DESCRIPTION.into(),
        format!(
            "No good or bad event has been counted for {} since {}, so its SLI cannot be judged. Check that the indicator's selectors still match series and that its scrape targets or probes are up.",
            slo.id,
            rfc3339(since)
        ),
    );
    a
}

fn probe_annotations(
    name: &str,
    rule: &ProbeAlert,
    tracker: &ProbeTracker,
    status: Option<&ProbeStatus>,
) -> Labels {
    let mut a = Labels::new();
    let why = match rule.trigger {
        ProbeTrigger::Consecutive(_) => {
            format!("{} failures in a row", tracker.failures_in_row)
        }
        ProbeTrigger::OutOf { of, .. } => {
            format!(
                "{} of the last {} checks failed",
                tracker.recent_failures(),
                tracker.recent.len().min(of as usize)
            )
        }
        ProbeTrigger::FailingFor(_) => match tracker.failing_since {
            Some(s) => format!("failing since {}", rfc3339(s)),
            None => "no failure since the newest success".to_owned(),
        },
    };
    let last = status
        .and_then(|s| s.last.as_ref())
        .and_then(|l| l.failure.clone());
    let summary = rule.summary.clone().unwrap_or_else(|| match &last {
        Some(f) => format!("probe {name} is failing: {why} (last: {f})"),
        None => format!("probe {name} is failing: {why}"),
    });
    a.insert(names::SUMMARY.into(), summary);
    let target = status.map_or_else(String::new, |s| {
        format!(" {} check of {}", s.kind, s.target)
    });
    let last_ok = status
        .and_then(|s| s.last_success_ms)
        .map_or_else(|| "never".to_owned(), |ms| rfc3339(Timestamp(ms)));
    a.insert(
        names::DESCRIPTION.into(),
        format!(
            "Probe {name} ({}): {why}. Last success: {last_ok}. It counts as up again after {} successful checks in a row.",
            target.trim_start(),
            rule.successes
        ),
    );
    if let Some(u) = &rule.runbook {
        a.insert(names::RUNBOOK_URL.into(), u.clone());
    }
    if let Some(u) = &rule.dashboard {
        a.insert(names::DASHBOARD_URL.into(), u.clone());
    }
    a
}

fn target_annotations(t: &TargetStatus) -> Labels {
    let mut a = Labels::new();
    let why = t
        .failure
        .as_ref()
        .map_or_else(|| "no successful scrape".to_owned(), |f| f.message.clone());
    a.insert(
        names::SUMMARY.into(),
        format!("scrape target {} is down: {why}", t.name),
    );
    let last_ok = t
        .last_success_ms
        .map_or_else(|| "never".to_owned(), |ms| rfc3339(Timestamp(ms)));
    a.insert(
        names::DESCRIPTION.into(),
        format!(
            "Scraping {} failed {} times in a row ({why}). Last success: {last_ok}. SLOs whose selectors match this target's series count no events while it is down.",
            t.url, t.consecutive_failures
        ),
    );
    a
}

// ---- numbers for people: never NaN or infinity ----

/// `x`, or 0 when it is not finite.
fn finite(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

/// A burn rate with one decimal: `14.9x`.
fn fmt_rate(x: f64) -> String {
    format!("{:.1}x", finite(x))
}

/// At most `decimals` decimals, trailing zeros removed: `14.4`, `6`, `99.95`.
fn fmt_trim(x: f64, decimals: usize) -> String {
    let s = format!("{:.*}", decimals, finite(x));
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// A ratio as a percentage with `decimals` decimals: `61.0%`, `-25.3%`.
fn fmt_percent(ratio: f64, decimals: usize) -> String {
    let s = format!("{:.*}%", decimals, finite(ratio) * 100.0);
    if s.starts_with("-0.")
        && s[1..]
            .trim_matches(|c| c == '0' || c == '.' || c == '%')
            .is_empty()
    {
        s[1..].to_owned()
    } else {
        s
    }
}

/// An SLI as a percentage with 3 decimals, rounded down so 99.9996% never shows as 100%.
fn fmt_sli(ratio: f64) -> String {
    let thousandths = (finite(ratio) * 100_000.0).floor() / 1000.0;
    format!("{}%", fmt_trim(thousandths, 3))
}

/// Time to exhaustion in its two largest units: `1d 6h`, `18h`, `45m 10s`.
fn fmt_exhaustion(d: Option<Dur>) -> String {
    match d {
        None => "never at the current burn rate".to_owned(),
        Some(d) if d.is_zero() => "already exhausted".to_owned(),
        Some(d) => fmt_span(d),
    }
}

/// A duration in its two largest units: `1d 6h`, `18h`, `45m 10s`, `under a second`.
fn fmt_span(d: Dur) -> String {
    let mut parts = Vec::new();
    let mut rest = d.millis();
    for (unit, ms) in [
        ("d", 86_400_000u64),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if rest >= ms || !parts.is_empty() {
            parts.push((rest / ms, unit));
            rest %= ms;
        }
    }
    let shown: Vec<String> = parts
        .iter()
        .take(2)
        .filter(|(n, _)| *n > 0)
        .map(|(n, u)| format!("{n}{u}"))
        .collect();
    if shown.is_empty() {
        "under a second".to_owned()
    } else {
        shown.join(" ")
    }
}

/// ` (over 15s of data, 0.42% of the 1h window)` for a window only partly after the SLO's
/// first collection; empty for a covered one.
fn fmt_coverage(w: Option<&WindowReport>) -> String {
    match w {
        Some(w) if w.coverage < 1.0 => {
            let seen = Dur((finite(w.coverage) * w.length.millis() as f64) as u64);
            let pct = finite(w.coverage) * 100.0;
            format!(
                " (over {} of data, {}% of the {} window)",
                fmt_span(seen),
                fmt_trim(pct, if pct < 1.0 { 2 } else { 1 }),
                w.length
            )
        }
        _ => String::new(),
    }
}

/// The compliance window as people say it: `30d`, `month (Europe/Berlin)`.
fn fmt_window(w: &Window) -> String {
    match w {
        Window::Rolling(d) => d.to_string(),
        Window::Calendar { unit, tz_name, .. } => format!("{} ({tz_name})", unit.as_str()),
    }
}

#[cfg(test)]
mod tests;
