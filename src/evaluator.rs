//! The single writer: owns the engine and every status, applies observations from the
//! collectors, evaluates, and produces the immutable [`AgentSnapshot`] that readers share.
//! Synchronous and clock-free (every instant is an argument), so it is tested on a simulated
//! clock; the async loop in [`crate::agent`] only feeds it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use crate::probe::ProbeOutcome;
use crate::rules::model::{
    Grouping, Indicator, LatencySource, ProbeKind, RatioNumerator, RuleSet, Service, Slo, SloId,
};
use crate::scrape::{Matched, ScrapePlan};
use crate::slo::checkpoint::{EngineCheckpoint, RestoreReport};
use crate::slo::engine::{Engine, SloIdx};
use crate::slo::histogram::HistogramWindows;
use crate::source::{QueryRead, REASONS, ReadError, WindowCarry};
use crate::time::{Dur, Timestamp};
use crate::view::{
    AgentSnapshot, CheckpointStatus, GroupStatus, ProbeResultView, ProbeStatus, RulesStatus,
    ScrapeFailure, SourceStatus, TargetStatus,
};

/// What a collector reports to the evaluator. `generation` is the rule set it was started for;
/// observations of an older generation (in flight during a reload) are dropped.
#[derive(Debug, Clone)]
pub enum Observation {
    /// One probe check.
    Probe {
        /// Rule set generation.
        generation: u64,
        /// Probe name.
        name: Arc<str>,
        /// Its result.
        outcome: ProbeOutcome,
    },
    /// One scrape.
    Scrape {
        /// Rule set generation.
        generation: u64,
        /// Target name.
        target: Arc<str>,
        /// When the scrape started (its samples' timestamp).
        at: Timestamp,
        /// How long it took, in seconds.
        duration_secs: f64,
        /// Body size in bytes (after decompression), when a body arrived.
        bytes: u64,
        /// The samples per SLO, or why the scrape failed.
        result: Result<Matched, ScrapeFailure>,
    },
    /// One read of a `query` SLO's queries from its source.
    Query {
        /// Rule set generation.
        generation: u64,
        /// The SLO.
        slo: Arc<SloId>,
        /// The source's name.
        source: Arc<str>,
        /// The read instant (the queries' `time`).
        at: Timestamp,
        /// What the queries gave, or why they gave nothing.
        result: Result<QueryRead, ReadError>,
    },
}

/// The [`crate::slo::counter::CounterSet`] source id of counters read through a query source
/// (a scrape target's id is its own; a query SLO is read from one source only).
const QUERY_COUNTERS: u64 = 0x7175_6572_7900_0001;

/// What the evaluator keeps per `query` SLO between reads.
#[derive(Debug, Clone, Copy, Default)]
struct QueryState {
    /// Whole events of the window-mode reads.
    carry: WindowCarry,
    /// The newest read applied (window mode: where the next read's window starts).
    last_read: Option<Timestamp>,
}

/// How a probe feeds an SLO.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Feed {
    /// Success is a good event.
    Availability,
    /// A successful check's duration is a latency; a failed check is a bad event.
    Latency,
}

/// The instances of one grouped rule (`group_by`).
#[derive(Debug, Clone)]
struct Group {
    /// The rule as written.
    template: Slo,
    /// `max_instances`.
    max: u32,
    /// Each instance by its label values: its engine index and when a scrape last showed one
    /// of its series.
    instances: HashMap<Vec<String>, Instance>,
    /// Label sets refused (counted at each scrape that showed them) because the rule had
    /// `max_instances` instances already.
    refused_total: u64,
    /// The newest refused label set, as `{label="value"}`.
    refused_example: Option<String>,
    /// Instances created and aged out since the agent started, kept across reloads (restored
    /// ones count as created).
    created_total: u64,
    aged_out_total: u64,
}

#[derive(Debug, Clone, Copy)]
struct Instance {
    idx: SloIdx,
    last_seen: Timestamp,
}

impl Group {
    fn new(template: &Slo) -> Group {
        let max = match &template.group {
            Some(Grouping::Template { max_instances, .. }) => *max_instances,
            _ => 0,
        };
        Group {
            template: template.clone(),
            max,
            instances: HashMap::new(),
            refused_total: 0,
            refused_example: None,
            created_total: 0,
            aged_out_total: 0,
        }
    }

    /// Instances sorted by their values (the order of the SLOs that stand in for the rule).
    fn sorted(&self) -> Vec<(&Vec<String>, &Instance)> {
        let mut v: Vec<_> = self.instances.iter().collect();
        v.sort_by(|a, b| a.0.cmp(b.0));
        v
    }
}

/// The evaluator: engine plus statuses.
pub struct Evaluator {
    /// The rule set as loaded (grouped rules as written).
    base: Arc<RuleSet>,
    /// The rule set in force: `base` with each grouped rule replaced by its instances, what
    /// every reader (exports, alerting, the API) sees.
    rules: Arc<RuleSet>,
    /// The grouped rules, in the order of [`ScrapePlan::groups`].
    groups: Vec<Group>,
    /// Per scrape target, the grouped rules (positions in `groups`) that may read it.
    group_readers: HashMap<String, HashSet<u32>>,
    /// Instances were created or aged out since `rules` was built.
    instances_changed: bool,
    engine: Engine,
    feeds: HashMap<String, Vec<(SloIdx, Feed)>>,
    /// Per scrape target, the SLOs whose selectors may read its series
    /// ([`crate::scrape::TargetIndex`]): only a scrape of one of those is a collection of the
    /// SLO, so its coverage starts when its own source first answered, not another target.
    readers: HashMap<String, HashSet<SloIdx>>,
    plan: Arc<ScrapePlan>,
    probes: BTreeMap<String, ProbeStatus>,
    targets: BTreeMap<String, TargetStatus>,
    rules_status: RulesStatus,
    /// Checkpoint bookkeeping (written by the agent loop).
    pub checkpoint: CheckpointStatus,
    stale: u64,
    /// Events counted since start, by engine index (good, bad).
    events: Vec<(u64, u64)>,
    /// Windows reported besides each SLO's own (see [`Evaluator::report_extra_windows`]).
    extra_windows: Option<fn(&Slo) -> Vec<Dur>>,
    /// Bucket increases of the histogram-fed latency SLOs, for their percentiles.
    histograms: HashMap<SloId, HistogramWindows>,
    /// Per `query` SLO: its carry and newest read.
    queries: HashMap<SloId, QueryState>,
    /// Reads and errors per query source, by name.
    sources: BTreeMap<String, SourceStatus>,
}

impl Evaluator {
    /// An evaluator for `rules` (generation 1), loaded at `now`.
    pub fn new(rules: RuleSet, now: Timestamp) -> Evaluator {
        let mut ev = Evaluator {
            base: Arc::new(RuleSet::default()),
            rules: Arc::new(RuleSet::default()),
            groups: Vec::new(),
            group_readers: HashMap::new(),
            instances_changed: false,
            engine: Engine::new(),
            feeds: HashMap::new(),
            readers: HashMap::new(),
            plan: Arc::default(),
            probes: BTreeMap::new(),
            targets: BTreeMap::new(),
            rules_status: RulesStatus::default(),
            checkpoint: CheckpointStatus::default(),
            stale: 0,
            events: Vec::new(),
            extra_windows: None,
            histograms: HashMap::new(),
            queries: HashMap::new(),
            sources: BTreeMap::new(),
        };
        ev.install(rules, now);
        ev
    }

    /// Makes every later snapshot also report, per SLO, the rolling windows `windows` lists
    /// (in `SloReport::extra_windows`, computed exactly from the count rings), e.g.
    /// [`crate::export::sloth::windows`] for the Sloth-compatible series. Kept across reloads.
    pub fn report_extra_windows(&mut self, windows: fn(&Slo) -> Vec<Dur>) {
        self.extra_windows = Some(windows);
    }

    /// The rule set in force: as loaded, each grouped rule replaced by its instances so far.
    pub fn rules(&self) -> &Arc<RuleSet> {
        &self.rules
    }

    /// The generation of the rule set in force.
    pub fn generation(&self) -> u64 {
        self.rules_status.generation
    }

    /// The engine (read-only: its per-SLO figures, e.g. for memory accounting).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The history of an SLO (or grouped-SLO instance) from the engine's buckets, up to `now`
    /// (see [`crate::slo::history`]); `None` for an unknown id.
    pub fn history(
        &mut self,
        id: &SloId,
        now: Timestamp,
        query: crate::slo::history::HistoryQuery,
    ) -> Option<Result<crate::slo::history::History, crate::slo::history::HistoryError>> {
        let idx = self.engine.index_of(id)?;
        self.engine.history(idx, now, query)
    }

    /// The scrape plan collectors of this generation use.
    pub fn plan(&self) -> &Arc<ScrapePlan> {
        &self.plan
    }

    /// Restores engine state saved earlier (matching SLOs by id and fingerprint). Instances of
    /// grouped rules come back first (the checkpoint keeps them by id), up to each rule's
    /// `max_instances`, as seen at load time: they age out a window after that unless their
    /// series show up again.
    pub fn restore(&mut self, cp: EngineCheckpoint) -> RestoreReport {
        let at = Timestamp(self.rules_status.loaded_at_ms);
        for c in &cp.slos {
            if !c.id.is_instance() {
                continue;
            }
            let template = c.id.template();
            let Some(g) = self.groups.iter().position(|g| g.template.id == template) else {
                continue;
            };
            let Some(pairs) = c.id.instance_values() else {
                continue;
            };
            let by = self.groups[g].template.group_by();
            if pairs.len() != by.len() || pairs.iter().zip(by).any(|((l, _), b)| l != b) {
                // The rule groups by other labels now: the old instances are gone.
                continue;
            }
            if self.groups[g].instances.len() >= self.groups[g].max as usize {
                // A lower max_instances than when the checkpoint was written: the rest start
                // over when their series show up (and are refused, and counted, then).
                continue;
            }
            let values: Vec<String> = pairs.into_iter().map(|(_, v)| v).collect();
            self.add_instance(g, values, at);
        }
        let report = self.engine.restore(cp);
        // Every read applied before the checkpoint was at or before the SLO's newest instant:
        // window-mode reads resume from there, so a restart neither re-reads nor skips them.
        for id in &report.kept {
            if let Some(idx) = self.engine.index_of(id)
                && self
                    .engine
                    .slo(idx)
                    .is_some_and(|s| s.indicator.query_source().is_some())
            {
                self.queries.entry(id.clone()).or_default().last_read = self.engine.latest(idx);
            }
        }
        self.checkpoint.restored = Some([
            report.kept.len(),
            report.reset.len(),
            report.added.len(),
            report.dropped.len(),
        ]);
        self.publish_instances();
        report
    }

    /// The checkpoint file image of the engine state (see [`Engine::encode_checkpoint`]).
    pub fn encode_checkpoint(&mut self) -> Result<Vec<u8>, crate::storage::StorageError> {
        self.engine.encode_checkpoint()
    }

    /// Writes the engine state's checkpoint to `path`, streamed (see
    /// [`Engine::save_checkpoint`]).
    pub fn save_checkpoint(
        &mut self,
        path: &std::path::Path,
    ) -> Result<(), crate::storage::StorageError> {
        self.engine.save_checkpoint(path)
    }

    /// Replaces the rule set: unchanged SLOs keep their state; probe and target statuses of
    /// names still configured are kept. Returns what happened to each SLO.
    pub fn reload(&mut self, rules: RuleSet, now: Timestamp) -> RestoreReport {
        let before = self.events_by_id();
        // A grouped rule that stays (same id, same labels) keeps its instances, redefined by the
        // new rule (its objective or alerting may have changed); their state is kept like any
        // SLO's. Plain SLOs first, then instances: plain indices never move when instances go.
        let mut groups = Vec::new();
        let mut instances: Vec<Slo> = Vec::new();
        let mut placed: Vec<(usize, Vec<String>)> = Vec::new();
        for t in rules.slos().filter(|s| s.is_template()) {
            let mut g = Group::new(t);
            // The rule's counters go on across reloads (they are exported as counters).
            if let Some(old) = self.groups.iter().find(|o| o.template.id == t.id) {
                g.refused_total = old.refused_total;
                g.refused_example.clone_from(&old.refused_example);
                g.created_total = old.created_total;
                g.aged_out_total = old.aged_out_total;
            }
            if let Some(old) = self
                .groups
                .iter()
                .find(|o| o.template.id == t.id && o.template.group_by() == t.group_by())
            {
                for (values, inst) in old.sorted().into_iter().take(g.max as usize) {
                    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
                    instances.push(t.instance(&refs));
                    placed.push((groups.len(), values.clone()));
                    g.instances.insert(values.clone(), *inst);
                }
            }
            groups.push(g);
        }
        let report = self.engine.reload(
            rules
                .slos()
                .filter(|s| !s.is_template())
                .chain(instances.iter()),
        );
        for ((g, values), slo) in placed.into_iter().zip(&instances) {
            let idx = self.engine.index_of(&slo.id);
            if let (Some(inst), Some(idx)) = (groups[g].instances.get_mut(&values), idx) {
                inst.idx = idx;
            }
        }
        self.groups = groups;
        self.install_definitions(rules, now);
        // A changed or removed query starts over; a kept one resumes from its newest read.
        for id in report.reset.iter().chain(&report.dropped) {
            self.queries.remove(id);
        }
        for (id, counts) in before {
            if let Some(idx) = self.engine.index_of(&id) {
                self.events[idx.0 as usize] = counts;
            }
        }
        report
    }

    /// Creates the instance of grouped rule `g` for `values` (seen at `at`), unless the rule has
    /// `max_instances` already; returns its engine index.
    fn add_instance(&mut self, g: usize, values: Vec<String>, at: Timestamp) -> Option<SloIdx> {
        let group = self.groups.get_mut(g)?;
        if let Some(inst) = group.instances.get_mut(&values) {
            inst.last_seen = inst.last_seen.max(at);
            return Some(inst.idx);
        }
        // A value longer than any route or namespace would be an instance id, a label on
        // every series and alert, for as long as it lives: a target's data, so bounded.
        if group.instances.len() >= group.max as usize
            || values.iter().any(|v| v.len() > MAX_GROUP_VALUE_BYTES)
        {
            group.refused_total += 1;
            group.refused_example = Some(label_set(group.template.group_by(), &values));
            return None;
        }
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let idx = self.engine.add_slo(&group.template.instance(&refs));
        group
            .instances
            .insert(values, Instance { idx, last_seen: at });
        group.created_total += 1;
        if self.events.len() <= idx.0 as usize {
            self.events.resize(idx.0 as usize + 1, (0, 0));
        }
        self.instances_changed = true;
        Some(idx)
    }

    /// Drops the instances no scrape has shown for a whole window (the rule's nominal window):
    /// their budget no longer holds anything, and a route that went away must not stay an SLO
    /// (or an alert) forever. Their alerts resolve at the next alerting evaluation.
    fn age_out(&mut self, now: Timestamp) {
        let mut gone: HashSet<u32> = HashSet::new();
        for g in &mut self.groups {
            let window = g.template.window.nominal().millis() as i64;
            let before = g.instances.len();
            g.instances.retain(|_, inst| {
                let keep = now.0.saturating_sub(inst.last_seen.0) <= window;
                if !keep {
                    gone.insert(inst.idx.0);
                }
                keep
            });
            g.aged_out_total += (before - g.instances.len()) as u64;
        }
        if gone.is_empty() {
            return;
        }
        // Every instance comes after every plain SLO, so plain indices (which in-flight scrape
        // results carry) do not move; an instance's index drops by the instances gone before it.
        let mut moved_to = Vec::with_capacity(self.engine.len());
        let mut kept = 0u32;
        for i in 0..self.engine.len() as u32 {
            moved_to.push(kept);
            kept += u32::from(!gone.contains(&i));
        }
        let mut i = 0u32;
        self.engine.retain(|_| {
            i += 1;
            !gone.contains(&(i - 1))
        });
        let mut i = 0u32;
        self.events.retain(|_| {
            i += 1;
            !gone.contains(&(i - 1))
        });
        for g in &mut self.groups {
            for inst in g.instances.values_mut() {
                inst.idx = SloIdx(moved_to[inst.idx.0 as usize]);
            }
        }
        let engine = &self.engine;
        self.histograms
            .retain(|id, _| engine.index_of(id).is_some());
        self.instances_changed = true;
    }

    /// Rebuilds the rule set in force when instances came or went: the loaded rules with each
    /// grouped rule replaced by its instances, sorted by their values.
    fn publish_instances(&mut self) {
        if !std::mem::take(&mut self.instances_changed) {
            return;
        }
        let mut rules = RuleSet {
            services: Vec::with_capacity(self.base.services.len()),
            probes: self.base.probes.clone(),
            scrapes: self.base.scrapes.clone(),
        };
        let mut groups = self.groups.iter();
        for svc in &self.base.services {
            let mut slos = Vec::with_capacity(svc.slos.len());
            for slo in &svc.slos {
                if !slo.is_template() {
                    slos.push(slo.clone());
                    continue;
                }
                let Some(g) = groups.next() else { continue };
                for (_, inst) in g.sorted() {
                    if let Some(def) = self.engine.slo(inst.idx) {
                        slos.push(def.clone());
                    }
                }
            }
            rules.services.push(Service {
                file: svc.file.clone(),
                name: svc.name.clone(),
                labels: svc.labels.clone(),
                owner: svc.owner.clone(),
                runbook: svc.runbook.clone(),
                dashboard: svc.dashboard.clone(),
                slos,
                spec: svc.spec,
            });
        }
        self.rules_status.slos = self.engine.len();
        self.rules_status.slo_set += 1;
        self.rules = Arc::new(rules);
    }

    fn events_by_id(&self) -> BTreeMap<SloId, (u64, u64)> {
        (0..self.engine.len() as u32)
            .filter_map(|i| {
                let slo = self.engine.slo(SloIdx(i))?;
                Some((slo.id.clone(), *self.events.get(i as usize)?))
            })
            .collect()
    }

    fn count(&mut self, idx: SloIdx, good: u64, bad: u64) {
        count(&mut self.events, idx, good, bad);
    }

    /// Notes a rejected reload: the rule set in force stays.
    pub fn reload_failed(&mut self, errors: Vec<String>) {
        self.rules_status.last_reload_ok = false;
        self.rules_status.last_reload_errors = errors;
        self.rules_status.reload_failures_total += 1;
    }

    fn install(&mut self, rules: RuleSet, now: Timestamp) {
        self.engine = Engine::from_rules(&rules);
        self.groups = rules
            .slos()
            .filter(|s| s.is_template())
            .map(Group::new)
            .collect();
        self.install_definitions(rules, now);
    }

    fn install_definitions(&mut self, rules: RuleSet, now: Timestamp) {
        let mut feeds: HashMap<String, Vec<(SloIdx, Feed)>> = HashMap::new();
        for slo in rules.services.iter().flat_map(|s| &s.slos) {
            let Some(idx) = self.engine.index_of(&slo.id) else {
                continue;
            };
            let feed = match &slo.indicator {
                Indicator::ProbeAvailability { probe } => Some((probe, Feed::Availability)),
                Indicator::LatencyThreshold {
                    source: LatencySource::Probe { probe },
                    ..
                }
                | Indicator::LatencyPercentile {
                    source: LatencySource::Probe { probe },
                    ..
                } => Some((probe, Feed::Latency)),
                _ => None,
            };
            if let Some((probe, f)) = feed {
                feeds.entry(probe.clone()).or_default().push((idx, f));
            }
        }
        self.feeds = feeds;
        let targets = crate::scrape::TargetIndex::new(&rules.scrapes);
        let mut readers: HashMap<String, HashSet<SloIdx>> = rules
            .scrapes
            .iter()
            .map(|t| (t.name.clone(), HashSet::new()))
            .collect();
        for slo in rules.services.iter().flat_map(|s| &s.slos) {
            let Some(idx) = self.engine.index_of(&slo.id) else {
                continue;
            };
            for sel in slo.indicator.selectors() {
                for t in targets.read_by(sel).0 {
                    if let Some(set) = readers.get_mut(&rules.scrapes[t].name) {
                        set.insert(idx);
                    }
                }
            }
        }
        self.readers = readers;
        let mut group_readers: HashMap<String, HashSet<u32>> = HashMap::new();
        for (g, slo) in rules.slos().filter(|s| s.is_template()).enumerate() {
            for sel in slo.indicator.selectors() {
                for t in targets.read_by(sel).0 {
                    group_readers
                        .entry(rules.scrapes[t].name.clone())
                        .or_default()
                        .insert(g as u32);
                }
            }
        }
        self.group_readers = group_readers;
        // Percentiles go on for histogram-fed latency SLOs (and instances) that stay.
        let engine = &self.engine;
        self.histograms.retain(|id, _| {
            engine
                .index_of(id)
                .and_then(|i| engine.slo(i))
                .is_some_and(|s| histogram_window(s).is_some())
        });
        self.events = vec![(0, 0); self.engine.len()];
        self.plan = Arc::new(ScrapePlan::new(&rules, |id| self.engine.index_of(id)));
        let mut probes = BTreeMap::new();
        for p in &rules.probes {
            let (kind, target) = match &p.kind {
                ProbeKind::Http(h) => ("http", h.url.clone()),
                ProbeKind::Tcp { address, .. } => ("tcp", address.clone()),
                ProbeKind::Dns { name, .. } => ("dns", name.clone()),
            };
            let old = self.probes.remove(&p.name);
            probes.insert(
                p.name.clone(),
                ProbeStatus {
                    name: p.name.clone(),
                    service: p.service.clone(),
                    kind,
                    target,
                    labels: p
                        .labels
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    last: old.as_ref().and_then(|o| o.last.clone()),
                    consecutive_failures: old.as_ref().map_or(0, |o| o.consecutive_failures),
                    checks_total: old.as_ref().map_or(0, |o| o.checks_total),
                    failures_total: old.as_ref().map_or(0, |o| o.failures_total),
                    last_success_ms: old.as_ref().and_then(|o| o.last_success_ms),
                },
            );
        }
        self.probes = probes;
        let mut targets = BTreeMap::new();
        for t in &rules.scrapes {
            let mut st = self.targets.remove(&t.name).unwrap_or(TargetStatus {
                name: t.name.clone(),
                service: t.service.clone(),
                url: t.url.clone(),
                up: false,
                last_scrape_ms: None,
                last_success_ms: None,
                duration_secs: 0.0,
                samples: 0,
                bytes: 0,
                failure: None,
                problem: None,
                duplicate_samples: 0,
                consecutive_failures: 0,
                scrapes_total: 0,
                failures_total: 0,
            });
            // A reload may move the target to another document (service) or URL.
            st.service.clone_from(&t.service);
            st.url = t.url.clone();
            targets.insert(t.name.clone(), st);
        }
        self.targets = targets;
        self.rules_status = RulesStatus {
            generation: self.rules_status.generation + 1,
            loaded_at_ms: now.0,
            slos: self.engine.len(),
            probes: rules.probes.len(),
            targets: rules.scrapes.len(),
            last_reload_ok: true,
            last_reload_errors: Vec::new(),
            reload_failures_total: self.rules_status.reload_failures_total,
            slo_set: self.rules_status.slo_set,
        };
        self.base = Arc::new(rules);
        self.instances_changed = true;
        self.publish_instances();
    }

    /// Applies one observation: SLO events into the engine, and the probe or target status.
    pub fn apply(&mut self, obs: Observation) {
        match obs {
            Observation::Probe {
                generation,
                name,
                outcome,
            } => {
                if generation != self.generation() {
                    self.stale += 1;
                    return;
                }
                self.apply_probe(&name, &outcome);
            }
            Observation::Scrape {
                generation,
                target,
                at,
                duration_secs,
                bytes,
                result,
            } => {
                if generation != self.generation() {
                    self.stale += 1;
                    return;
                }
                self.apply_scrape(&target, at, duration_secs, bytes, result);
            }
            Observation::Query {
                generation,
                slo,
                source,
                at,
                result,
            } => {
                if generation != self.generation() {
                    self.stale += 1;
                    return;
                }
                self.apply_query(&slo, &source, at, result);
            }
        }
    }

    /// Names the query sources whose reads the snapshots report (all of them from the start,
    /// so their error counters exist before the first failure).
    pub fn declare_sources<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) {
        for n in names {
            self.sources
                .entry(n.to_owned())
                .or_insert_with(|| SourceStatus::new(n, &REASONS));
        }
    }

    /// Where the next window-mode read of a `query` SLO starts: its newest read applied (or,
    /// after a restart, its newest instant in the checkpoint); `None` for an SLO never read.
    pub fn query_resume(&self, id: &SloId) -> Option<Timestamp> {
        self.queries.get(id).and_then(|q| q.last_read)
    }

    /// One read of a query SLO: counters go to the engine's counter tracking (as a scrape's),
    /// window events through the SLO's carry; a failed read is no data, counted by reason.
    fn apply_query(
        &mut self,
        id: &SloId,
        source: &str,
        at: Timestamp,
        result: Result<QueryRead, ReadError>,
    ) {
        let status = self
            .sources
            .entry(source.to_owned())
            .or_insert_with(|| SourceStatus::new(source, &REASONS));
        let read = match result {
            Ok(r) => {
                status.reads_total += 1;
                status.last_error = None;
                r
            }
            Err(e) => {
                *status.errors_total.entry(e.reason()).or_default() += 1;
                status.last_error = Some(e.to_string());
                return;
            }
        };
        let Some(idx) = self.engine.index_of(id) else {
            return;
        };
        let numerator = match self.engine.slo(idx).map(|s| &s.indicator) {
            Some(Indicator::Query { numerator, .. }) => *numerator,
            _ => return,
        };
        let state = self.queries.entry(id.clone()).or_default();
        if state.last_read.is_some_and(|l| at <= l) {
            // Already counted up to here (a read from before a reload finishing late).
            return;
        }
        state.last_read = Some(at);
        let counted = match read {
            QueryRead::Counters { numerator, total } => self
                .engine
                .record_counter_scrape(idx, at, QUERY_COUNTERS, &numerator, &total)
                .map(|o| (o.good, o.total)),
            QueryRead::Window {
                numerator: n,
                total: t,
            } => {
                let (n, total) = state.carry.add(n, t);
                let n = n.min(total);
                let good = match numerator {
                    RatioNumerator::Good => n,
                    RatioNumerator::Bad => total - n,
                };
                // Recorded even when empty: a read is a collection (coverage starts with it).
                self.engine
                    .record_counts(idx, at, good, total)
                    .map(|()| (good, total))
            }
        };
        if let Ok((good, total)) = counted {
            self.count(idx, good, total - good);
        }
    }

    fn apply_probe(&mut self, name: &str, o: &ProbeOutcome) {
        let ts = Timestamp(o.started_ms.max(0));
        let feeds = self.feeds.get(name).cloned().unwrap_or_default();
        for (idx, feed) in feeds {
            // Errors here are an unknown index (cannot happen: feeds are rebuilt with the
            // engine) or a refused value, which the engine already counts as rejected.
            let (r, good) = match feed {
                Feed::Availability => (self.engine.record(idx, ts, o.success), o.success),
                Feed::Latency if o.success => {
                    let slo = self.engine.slo(idx);
                    let threshold = slo.and_then(|s| match &s.indicator {
                        Indicator::LatencyThreshold { threshold, .. }
                        | Indicator::LatencyPercentile { threshold, .. } => Some(*threshold),
                        _ => None,
                    });
                    let fast = threshold.is_some_and(|t| o.duration_secs <= t.as_secs_f64());
                    (self.engine.record_latency(idx, ts, o.duration_secs), fast)
                }
                Feed::Latency => (self.engine.record(idx, ts, false), false),
            };
            if r.is_ok() {
                self.count(idx, u64::from(good), u64::from(!good));
            }
        }
        if let Some(st) = self.probes.get_mut(name) {
            st.checks_total += 1;
            if o.success {
                st.consecutive_failures = 0;
                st.last_success_ms = Some(o.started_ms);
            } else {
                st.consecutive_failures += 1;
                st.failures_total += 1;
            }
            st.last = Some(ProbeResultView::from(o));
        }
    }

    /// One scrape's samples of one SLO: its percentiles' buckets, then its counters.
    fn record(
        &mut self,
        idx: SloIdx,
        at: Timestamp,
        source: u64,
        numerator: &[(u64, f64)],
        total: &[(u64, f64)],
        buckets: &[(u64, f64, f64)],
    ) {
        if !buckets.is_empty()
            && let Some(slo) = self.engine.slo(idx)
            && let Some(longest) = histogram_window(slo)
        {
            self.histograms
                .entry(slo.id.clone())
                .or_insert_with(|| HistogramWindows::new(longest))
                .record(source, at, buckets);
        }
        if let Ok(out) = self
            .engine
            .record_counter_scrape(idx, at, source, numerator, total)
        {
            self.count(idx, out.good, out.total - out.good);
        }
    }

    fn apply_scrape(
        &mut self,
        target: &str,
        at: Timestamp,
        duration_secs: f64,
        bytes: u64,
        result: Result<Matched, ScrapeFailure>,
    ) {
        // The source of a target's series: its name's hash, so a renamed target starts over.
        let source = crate::slo::fingerprint::fnv1a64(target.as_bytes());
        let Some(st) = self.targets.get_mut(target) else {
            return;
        };
        st.scrapes_total += 1;
        st.last_scrape_ms = Some(at.0);
        st.duration_secs = duration_secs;
        st.bytes = bytes;
        match result {
            Ok(m) => {
                st.up = true;
                st.failure = None;
                st.consecutive_failures = 0;
                st.last_success_ms = Some(at.0);
                st.samples = m.samples;
                st.duplicate_samples = m.duplicates;
                st.problem = m
                    .problem()
                    .map(|(reason, message)| ScrapeFailure { reason, message });
                // Taken out for the loop (put back below), so recording may borrow the rest.
                let readers = std::mem::take(&mut self.readers);
                let reads = readers.get(target);
                for s in &m.slos {
                    // A target none of the SLO's selectors can read carries none of its
                    // series: its scrape is no collection of the SLO (and leaves its counters
                    // alone).
                    if reads.is_some_and(|r| r.contains(&s.slo)) {
                        self.record(s.slo, at, source, &s.numerator, &s.total, &s.buckets);
                    }
                }
                self.readers = readers;
                for s in m.groups {
                    let g = s.slo.group;
                    let reads = self.group_readers.get(target);
                    if !reads.is_some_and(|r| r.contains(&g)) {
                        continue;
                    }
                    // Each label set on the page is an instance (new ones are created here,
                    // up to the rule's `max_instances`), fed like any SLO.
                    let Some(idx) = self.add_instance(g as usize, s.slo.values, at) else {
                        continue;
                    };
                    self.record(idx, at, source, &s.numerator, &s.total, &s.buckets);
                }
            }
            Err(f) => {
                st.up = false;
                st.failure = Some(f);
                st.consecutive_failures += 1;
                st.failures_total += 1;
            }
        }
    }

    /// Evaluates every SLO at `now` and builds the snapshot readers share.
    pub fn evaluate(&mut self, now: Timestamp) -> AgentSnapshot {
        self.age_out(now);
        self.publish_instances();
        let mut snap = match self.extra_windows {
            Some(f) => self.engine.evaluate_with(now, f),
            None => self.engine.evaluate(now),
        };
        for r in &mut snap.slos {
            if let Some(h) = self.histograms.get(&r.id) {
                let windows = std::iter::once(&mut r.window)
                    .chain(&mut r.alert_windows)
                    .chain(&mut r.extra_windows);
                for w in windows {
                    w.latency = h
                        .quantiles(Dur::from_millis((now.0 - w.start.0).max(0) as u64), now)
                        .map(Box::new);
                }
            }
        }
        AgentSnapshot {
            at: now,
            rules: self.rules.clone(),
            slos: snap.slos,
            probes: self.probes.values().cloned().collect(),
            targets: self.targets.values().cloned().collect(),
            rules_status: self.rules_status.clone(),
            checkpoint: self.checkpoint.clone(),
            stale_observations: self.stale,
            sources: self.sources.values().cloned().collect(),
            events_total: self.events_by_id(),
            evaluation_seconds: 0.0,
            pace: Default::default(),
            groups: self
                .groups
                .iter()
                .map(|g| GroupStatus {
                    id: g.template.id.clone(),
                    by: g.template.group_by().to_vec(),
                    instances: g.instances.len(),
                    max_instances: g.max,
                    refused_total: g.refused_total,
                    refused_example: g.refused_example.clone(),
                    created_total: g.created_total,
                    aged_out_total: g.aged_out_total,
                })
                .collect(),
        }
    }
}

/// The longest value of a `group_by` label that makes an instance; a label set with a longer
/// one is refused (and counted) as one past `max_instances` is.
pub const MAX_GROUP_VALUE_BYTES: usize = 1024;

/// `{label="value",...}` of a label set, for messages: a target's data, so cut at
/// [`crate::scrape::MAX_EXAMPLE_BYTES`].
fn label_set(by: &[String], values: &[String]) -> String {
    let pairs: Vec<String> = by
        .iter()
        .zip(values)
        .map(|(l, v)| format!("{l}={v:?}"))
        .collect();
    let mut out = format!("{{{}}}", pairs.join(","));
    if out.len() > crate::scrape::MAX_EXAMPLE_BYTES {
        let mut cut = crate::scrape::MAX_EXAMPLE_BYTES;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str("...");
    }
    out
}

/// Adds events to an SLO's counts since start (`Evaluator::events`, by engine index).
fn count(events: &mut [(u64, u64)], idx: SloIdx, good: u64, bad: u64) {
    if let Some(e) = events.get_mut(idx.0 as usize) {
        e.0 += good;
        e.1 += bad;
    }
}

/// For a histogram-fed latency SLO, the longest window its percentiles are read over (the SLO
/// window, or the longest default alert window when that is longer).
fn histogram_window(slo: &Slo) -> Option<Dur> {
    match &slo.indicator {
        Indicator::LatencyThreshold {
            source: LatencySource::Histogram { .. },
            ..
        }
        | Indicator::LatencyPercentile {
            source: LatencySource::Histogram { .. },
            ..
        } => Some(slo.window.nominal().max(Dur::from_days(7))),
        _ => None,
    }
}

/// A fixture shared by the exporter tests (unit and integration): the snapshot of `rules` after
/// ten checks of probe `home`, 10 s apart from `t0` (ms), the fourth failing with a 503,
/// evaluated two minutes after `t0`. Not part of the agent; kept here so that one copy feeds
/// every test that compares exporters on the same numbers.
#[doc(hidden)]
pub fn probe_fixture(rules: RuleSet, t0: i64) -> AgentSnapshot {
    let mut ev = Evaluator::new(rules, Timestamp(t0));
    for i in 0..10i64 {
        ev.apply(Observation::Probe {
            generation: ev.generation(),
            name: "home".into(),
            outcome: ProbeOutcome {
                started_ms: t0 + i * 10_000,
                success: i != 3,
                duration_secs: 0.25,
                phases: crate::probe::Phases {
                    dns: 0.01,
                    connect: 0.02,
                    tls: 0.0,
                    first_byte: 0.2,
                    transfer: 0.02,
                },
                status: Some(if i == 3 { 503 } else { 200 }),
                cert_not_after_ms: Some(1_900_000_000_000),
                failure: None,
            },
        });
    }
    ev.evaluate(Timestamp(t0 + 120_000))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::Format;
    use crate::probe::{Failure, Phases};
    use crate::rules::load_str;
    use crate::scrape::{TargetLabels, match_page};
    use crate::slo::engine::SloReport;
    use crate::time::Dur;

    const RULES: &str = r#"
version: burnwatch/v1
service: shop
probes:
  - name: home
    http: {url: "http://127.0.0.1:1/"}
    interval: 10s
scrape:
  - name: api
    url: http://127.0.0.1:2/metrics
slos:
  - name: up
    objective: 99
    indicator: {probe: home}
  - name: fast
    objective: 90
    indicator:
      latency_threshold: {threshold: 300ms, probe: home}
  - name: errors
    objective: 99.9
    indicator:
      ratio:
        bad: req_total{code="500"}
        total: req_total
"#;

    const T0: i64 = 1_780_000_000_000;

    fn outcome(at: i64, success: bool, secs: f64) -> ProbeOutcome {
        ProbeOutcome {
            started_ms: at,
            success,
            duration_secs: secs,
            phases: Phases::default(),
            status: Some(if success { 200 } else { 503 }),
            cert_not_after_ms: None,
            failure: (!success).then(|| Failure::Status {
                status: 503,
                expected: "200-299".into(),
            }),
        }
    }

    fn scrape(ev: &Evaluator, at: i64, ok: u64, bad: u64) -> Observation {
        let page = format!("req_total{{code=\"200\"}} {ok}\nreq_total{{code=\"500\"}} {bad}\n");
        let target = TargetLabels::for_target(&ev.rules().scrapes[0]);
        Observation::Scrape {
            generation: ev.generation(),
            target: "api".into(),
            at: Timestamp(at),
            duration_secs: 0.01,
            bytes: page.len() as u64,
            result: Ok(
                match_page(ev.plan(), &target, page.as_bytes(), Format::Text, 100)
                    .expect("valid page"),
            ),
        }
    }

    fn report<'a>(s: &'a AgentSnapshot, name: &str) -> &'a SloReport {
        s.slos.iter().find(|r| r.id.slo == name).expect("slo")
    }

    #[test]
    fn probes_and_scrapes_feed_exact_counts() {
        let mut ev = Evaluator::new(load_str("r.yaml", RULES).expect("rules"), Timestamp(T0));
        let g = ev.generation();
        // 10 checks: 2 failures, 3 slow (0.5 s) successes, 5 fast (0.1 s) successes.
        for i in 0..10i64 {
            let (ok, secs) = match i {
                0 | 5 => (false, 0.01),
                1..=3 => (true, 0.5),
                _ => (true, 0.1),
            };
            ev.apply(Observation::Probe {
                generation: g,
                name: "home".into(),
                outcome: outcome(T0 + i * 10_000, ok, secs),
            });
        }
        // Counters: baseline, +100 (+2 bad), then a reset to 50 (+1 bad), then a failed scrape.
        ev.apply(scrape(&ev, T0, 1000, 10));
        ev.apply(scrape(&ev, T0 + 15_000, 1098, 12));
        ev.apply(scrape(&ev, T0 + 30_000, 49, 1));
        ev.apply(Observation::Scrape {
            generation: g,
            target: "api".into(),
            at: Timestamp(T0 + 45_000),
            duration_secs: 1.0,
            bytes: 0,
            result: Err(ScrapeFailure {
                reason: "timeout",
                message: "timeout after 1s".into(),
            }),
        });
        let s = ev.evaluate(Timestamp(T0 + 120_000));
        let up = report(&s, "up");
        assert_eq!((up.window.good, up.window.total), (8, 10));
        let fast = report(&s, "fast");
        assert_eq!((fast.window.good, fast.window.total), (5, 10));
        assert_eq!(fast.window.latency.as_ref().expect("sketched").count, 8);
        let errors = report(&s, "errors");
        // 100 events (2 bad) then a reset: 49 + 1 = 50 events (1 bad).
        assert_eq!((errors.window.good, errors.window.total), (147, 150));
        let p = &s.probes[0];
        assert_eq!(
            (p.checks_total, p.failures_total, p.consecutive_failures),
            (10, 2, 0)
        );
        assert_eq!(p.last_success_ms, Some(T0 + 90_000));
        let totals = |n: &str| {
            s.events_total[&SloId {
                service: "shop".into(),
                slo: n.into(),
            }]
        };
        assert_eq!(totals("up"), (8, 2));
        assert_eq!(totals("fast"), (5, 5));
        assert_eq!(totals("errors"), (147, 3));
        let t = &s.targets[0];
        assert!(!t.up);
        assert_eq!((t.scrapes_total, t.failures_total), (4, 1));
        assert_eq!(t.last_success_ms, Some(T0 + 30_000));
        assert_eq!(t.failure.as_ref().map(|f| f.reason), Some("timeout"));
        assert_eq!(t.samples, 2);
    }

    #[test]
    fn a_repeated_series_counts_once_and_is_the_targets_problem() {
        let mut ev = Evaluator::new(load_str("r.yaml", RULES).expect("rules"), Timestamp(T0));
        ev.apply(scrape(&ev, T0, 1000, 10));
        // The second page repeats the 200 series with a huge value: Prometheus keeps the first.
        let page = "req_total{code=\"200\"} 1098\nreq_total{code=\"500\"} 12\nreq_total{code=\"200\"} 999999999\n";
        let target = TargetLabels::for_target(&ev.rules().scrapes[0]);
        ev.apply(Observation::Scrape {
            generation: ev.generation(),
            target: "api".into(),
            at: Timestamp(T0 + 15_000),
            duration_secs: 0.01,
            bytes: page.len() as u64,
            result: Ok(
                match_page(ev.plan(), &target, page.as_bytes(), Format::Text, 100).expect("valid"),
            ),
        });
        let s = ev.evaluate(Timestamp(T0 + 60_000));
        let errors = report(&s, "errors");
        assert_eq!((errors.window.good, errors.window.total), (98, 100));
        let t = &s.targets[0];
        assert!(t.up);
        assert_eq!(t.duplicate_samples, 1);
        let problem = t.problem.as_ref().expect("a problem");
        assert_eq!(problem.reason, "duplicate_series");
        assert!(
            problem.message.contains("req_total{"),
            "{}",
            problem.message
        );
        // A clean page clears it.
        ev.apply(scrape(&ev, T0 + 30_000, 1100, 12));
        let s = ev.evaluate(Timestamp(T0 + 60_000));
        assert_eq!(
            (
                s.targets[0].problem.as_ref(),
                s.targets[0].duplicate_samples
            ),
            (None, 0)
        );
    }

    #[test]
    fn reload_keeps_unchanged_state_and_drops_stale_observations() {
        let mut ev = Evaluator::new(load_str("r.yaml", RULES).expect("rules"), Timestamp(T0));
        let old = ev.generation();
        for i in 0..4 {
            ev.apply(Observation::Probe {
                generation: old,
                name: "home".into(),
                outcome: outcome(T0 + i * 1000, i != 0, 0.1),
            });
        }
        // Change the objective of `up` only (same indicator: state kept) and the latency
        // threshold of `fast` (new indicator: state reset).
        let changed = RULES
            .replace("objective: 99\n", "objective: 98\n")
            .replace("300ms", "200ms");
        let report = ev.reload(
            load_str("r.yaml", &changed).expect("rules"),
            Timestamp(T0 + 5000),
        );
        assert_eq!(report.kept.len(), 2, "{report:?}");
        assert_eq!(report.reset.len(), 1, "{report:?}");
        assert_eq!(ev.generation(), old + 1);
        // An observation from the old collectors is dropped, a new one counts.
        ev.apply(Observation::Probe {
            generation: old,
            name: "home".into(),
            outcome: outcome(T0 + 6000, false, 0.1),
        });
        ev.apply(Observation::Probe {
            generation: ev.generation(),
            name: "home".into(),
            outcome: outcome(T0 + 7000, true, 0.1),
        });
        let s = ev.evaluate(Timestamp(T0 + Dur::MINUTE.millis() as i64));
        assert_eq!(s.stale_observations, 1);
        let up = report_of(&s, "up");
        assert_eq!((up.window.good, up.window.total), (4, 5));
        let fast = report_of(&s, "fast");
        assert_eq!((fast.window.good, fast.window.total), (1, 1));
        assert_eq!(s.probes[0].checks_total, 5);
        ev.reload_failed(vec!["r.yaml:1:1: error: x".into()]);
        let s = ev.evaluate(Timestamp(T0 + 61_000));
        assert!(!s.rules_status.last_reload_ok);
        assert_eq!(s.rules_status.reload_failures_total, 1);
        assert_eq!(s.rules_status.generation, old + 1);
    }

    const QUERY_RULES: &str = r#"
version: burnwatch/v1
service: shop
slos:
  - name: counters
    objective: 99
    indicator:
      query:
        bad: 'req_total{code="500"}'
        total: req_total
  - name: windows
    objective: 99
    indicator:
      query:
        source: prom
        good: 'sum(rate(req_total{code="200"}[{{.window}}]))'
        total: 'sum(rate(req_total[{{.window}}]))'
"#;

    fn read(
        ev: &Evaluator,
        slo: &str,
        at: i64,
        result: Result<QueryRead, ReadError>,
    ) -> Observation {
        Observation::Query {
            generation: ev.generation(),
            slo: Arc::new(SloId {
                service: "shop".into(),
                slo: slo.into(),
            }),
            source: "prom".into(),
            at: Timestamp(at),
            result,
        }
    }

    fn counters(bad: &[(u64, f64)], total: &[(u64, f64)]) -> Result<QueryRead, ReadError> {
        Ok(QueryRead::Counters {
            numerator: bad.to_vec(),
            total: total.to_vec(),
        })
    }

    #[test]
    fn counter_reads_count_like_scrapes_with_resets_nan_and_missing_series() {
        let mut ev = Evaluator::new(
            load_str("q.yaml", QUERY_RULES).expect("rules"),
            Timestamp(T0),
        );
        ev.declare_sources(["prom"]);
        // Two instances (series 1 and 2 of the total, 11 of the errors). The first read is
        // the baseline, as a first scrape is.
        let steps: Vec<Result<QueryRead, ReadError>> = vec![
            counters(&[(11, 5.0)], &[(1, 100.0), (2, 50.0)]),
            // +10 and +5 requests, +2 errors.
            counters(&[(11, 7.0)], &[(1, 110.0), (2, 55.0)]),
            // Instance 1 restarted: its counter is 4 (4 new requests), instance 2 +5;
            // the error series is missing (no errors yet since the restart): forgotten.
            counters(&[], &[(1, 4.0), (2, 60.0)]),
            // The backend failed: no data, nothing changes.
            Err(ReadError::Timeout(Dur::from_secs(10))),
            // A NaN sample is refused; the other series counts +1; the error series comes
            // back and is a baseline again.
            counters(&[(11, 1.0)], &[(1, f64::NAN), (2, 61.0)]),
            // An empty vector: every series gone (nothing counted).
            counters(&[], &[]),
        ];
        for (i, r) in steps.into_iter().enumerate() {
            ev.apply(read(&ev, "counters", T0 + 1000 + i as i64 * 10_000, r));
        }
        let s = ev.evaluate(Timestamp(T0 + 120_000));
        let c = report_of(&s, "counters");
        // Total: 15 + 9 + 1 = 25; bad: 2.
        assert_eq!((c.window.total, c.window.total - c.window.good), (25, 2));
        assert_eq!(c.rejected, 1);
        let src = &s.sources[0];
        assert_eq!((src.name.as_str(), src.reads_total), ("prom", 5));
        assert_eq!(src.errors_total["timeout"], 1);
        assert_eq!(src.errors_total["unreachable"], 0);
        assert!(src.last_error.is_none(), "cleared by the next read");
    }

    #[test]
    fn window_reads_count_whole_events_and_resume_after_a_restart() {
        let rules = || load_str("q.yaml", QUERY_RULES).expect("rules");
        let mut ev = Evaluator::new(rules(), Timestamp(T0));
        let id = SloId {
            service: "shop".into(),
            slo: "windows".into(),
        };
        assert_eq!(ev.query_resume(&id), None);
        let w = |numerator, total| Ok(QueryRead::Window { numerator, total });
        // Fractional events (extrapolated): 9.6 good of 10.4, then 0.6 of 0.6, then 0.3 of 0.3.
        for (i, r) in [w(9.6, 10.4), w(0.6, 0.6), w(0.3, 0.3)]
            .into_iter()
            .enumerate()
        {
            ev.apply(read(&ev, "windows", T0 + 60_000 * (i as i64 + 1), r));
        }
        assert_eq!(ev.query_resume(&id), Some(Timestamp(T0 + 180_000)));
        // A read older than the newest applied one (from before a reload) is not counted.
        ev.apply(read(&ev, "windows", T0 + 120_000, w(100.0, 100.0)));
        let s = ev.evaluate(Timestamp(T0 + 200_000));
        let r = report_of(&s, "windows");
        // Sums 10.5 good of 11.3 total: 11 events by rounding the running sum, 10 of them
        // good (the 11th good one waits for a total event to be counted with).
        assert_eq!((r.window.good, r.window.total), (10, 11));
        // A restart: the checkpoint's newest instant is where reads resume (the evaluation
        // above, which is after every read applied), so no read is counted twice.
        let cp = ev.engine.checkpoint();
        let mut again = Evaluator::new(rules(), Timestamp(T0 + 300_000));
        again.restore(cp);
        assert_eq!(again.query_resume(&id), Some(Timestamp(T0 + 200_000)));
        // A changed query starts over (fresh state, no resume point).
        let changed = QUERY_RULES.replace("code=\"200\"", "code=\"204\"");
        again.reload(
            load_str("q.yaml", &changed).expect("rules"),
            Timestamp(T0 + 301_000),
        );
        assert_eq!(again.query_resume(&id), None);
    }

    fn report_of<'a>(s: &'a AgentSnapshot, name: &str) -> &'a SloReport {
        report(s, name)
    }

    #[test]
    fn another_targets_scrape_is_no_collection_of_an_slo() {
        // `a` and `b` each read their own target by job; `any` reads whatever has req_total.
        let rules = load_str(
            "r.yaml",
            r#"
version: burnwatch/v1
service: shop
scrape:
  - {name: a, url: "http://127.0.0.1:1/metrics"}
  - {name: b, url: "http://127.0.0.1:2/metrics"}
slos:
  - name: a
    objective: 99
    indicator: {ratio: {bad: 'req_total{job="a",code="500"}', total: 'req_total{job="a"}'}}
  - name: b
    objective: 99
    indicator: {ratio: {bad: 'req_total{job="b",code="500"}', total: 'req_total{job="b"}'}}
  - name: any
    objective: 99
    indicator: {ratio: {bad: 'req_total{code="500"}', total: 'req_total'}}
"#,
        )
        .expect("rules");
        let mut ev = Evaluator::new(rules, Timestamp(T0));
        let scrape_of = |ev: &Evaluator, target: usize, at: i64| {
            let t = &ev.rules().scrapes[target];
            let page = "req_total{code=\"200\"} 10\nreq_total{code=\"500\"} 1\n";
            Observation::Scrape {
                generation: ev.generation(),
                target: t.name.as_str().into(),
                at: Timestamp(at),
                duration_secs: 0.01,
                bytes: page.len() as u64,
                result: Ok(match_page(
                    ev.plan(),
                    &TargetLabels::for_target(t),
                    page.as_bytes(),
                    Format::Text,
                    100,
                )
                .expect("valid page")),
            }
        };
        // Target a answers at T0 + 10s, target b not before T0 + 40s.
        ev.apply(scrape_of(&ev, 0, T0 + 10_000));
        ev.apply(scrape_of(&ev, 1, T0 + 40_000));
        let snap = ev.evaluate(Timestamp(T0 + 70_000));
        let first = |name: &str| {
            let w = &report(&snap, name).window;
            T0 + 70_000 - (w.coverage * w.length.millis() as f64).round() as i64
        };
        assert_eq!(first("a"), T0 + 10_000);
        // Before the fix, b's coverage started at a's scrape.
        assert_eq!(first("b"), T0 + 40_000);
        assert_eq!(first("any"), T0 + 10_000);
    }
}
