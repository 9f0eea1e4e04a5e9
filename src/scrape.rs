//! From a scraped metrics page to the counter samples of the SLOs that read it. Pure: the
//! fetching is [`crate::probe::Prober::fetch`]'s, the counting is the engine's.
//!
//! Each scraped series gets the target's labels as Prometheus attaches them: `job` (the target's
//! name), `instance` (`host:port` of its URL) and the target's configured labels. A label the
//! page itself exposes under one of those names is kept as `exported_<name>` (Prometheus's
//! default, `honor_labels: false`), so selectors written for Prometheus match the same series.
//!
//! A series is identified by a hash of its name and full label set; matching series of a
//! selector are handed to the engine one by one, which sums their increments (counter resets
//! and appearing or vanishing series are handled there, per target). A scrape is taken whole
//! or not at all: a parse error or a sample limit overrun discards it, so a broken page never
//! corrupts counts.
//!
//! A series that appears twice on one page (same name and labels, after the target's labels
//! are attached; an empty label value counts as no label) is taken as Prometheus 2.42 takes it:
//! the first sample counts and the later ones are dropped, the scrape still succeeds (checked
//! against the real Prometheus in `tests/peers/prometheus_parity.rs`). Summing them instead once
//! counted 1,274,998,674 events on a page where Prometheus counted 4,949. The page is reported
//! as a scrape problem ([`Matched::problem`], reason `duplicate_series`) on the target's status.
//! Only series of the names the SLOs read are checked (the rest are never looked at).
//!
//! Matching scales with the matches, not with the selectors: the [`ScrapePlan`] files every
//! selector, once per rule set, under the metric name it needs and then under the value of its
//! most selective `label="value"` matcher (the one fewest selectors share, such as `route`). A
//! sample is tested only against the selectors filed under its name and its own value of those
//! labels (an absent label looked up as the empty value, which is what `label=""` matches), plus
//! the selectors of its name with no equality matcher (only `!=`, `=~`, `!~`) and the selectors
//! without a metric name, which every sample reaches. Each one reached is still tested whole, so
//! the result is exactly the one of testing every selector on every sample (the property test
//! below compares the two). A page costs about one hash lookup per sample and label filed under
//! instead of samples x selectors: `benches/matching.rs` matches 100,000 series against 100,000
//! SLOs.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::exposition::{self, Format, Label, ParseError, Sample};
use crate::rules::model::{Indicator, LatencySource, RuleSet, ScrapeTarget, SloId};
use crate::rules::selector::{MatchOp, Matcher, Selector};
use crate::slo::engine::SloIdx;
use crate::slo::fingerprint::fnv1a64;

/// What a scrape failed on (the scrape is discarded whole).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScrapeError {
    /// The page is not valid exposition text.
    #[error("malformed metrics page: {0}")]
    Parse(#[from] ParseError),
    /// The page holds more samples than the target allows.
    #[error("more than {limit} samples (the target's sample_limit); raise it or trim the page")]
    SampleLimit {
        /// The configured limit.
        limit: u64,
    },
}

impl ScrapeError {
    /// Stable short machine name, for exports.
    pub fn reason(&self) -> &'static str {
        match self {
            ScrapeError::Parse(_) => "parse",
            ScrapeError::SampleLimit { .. } => "sample_limit",
        }
    }
}

/// What a selector's samples are to its SLO.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    /// The numerator counter of a ratio.
    Numerator,
    /// The total counter of a ratio.
    Total,
    /// A histogram's `_count` (matched by the selector's base name).
    Count,
    /// A histogram's `_bucket` series; the bucket with the largest `le` at or under the threshold
    /// counts good events (exactly the threshold when it is an edge, fewer good otherwise).
    Bucket {
        /// Threshold in seconds.
        threshold: f64,
    },
}

/// Whose samples an entry's are: one SLO's, or a grouped rule's, to be split by the values of
/// its `group_by` labels into instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Owner {
    Slo(SloIdx),
    /// Position in [`ScrapePlan::groups`].
    Group(u32),
}

#[derive(Debug, Clone)]
struct Entry {
    slo: Owner,
    role: Role,
    /// The metric name the samples must have (histograms: with the `_bucket`/`_count` suffix).
    name: Option<String>,
    selector: Arc<Selector>,
}

impl Entry {
    #[cfg(test)]
    fn new(slo: SloIdx, role: Role, selector: &Arc<Selector>) -> Entry {
        Entry::owned(Owner::Slo(slo), role, selector)
    }

    fn owned(slo: Owner, role: Role, selector: &Arc<Selector>) -> Entry {
        let base = || selector.metric().unwrap_or_default();
        let name = match role {
            Role::Numerator | Role::Total => selector.metric().map(str::to_owned),
            Role::Bucket { .. } => Some(format!("{}_bucket", base())),
            Role::Count => Some(format!("{}_count", base())),
        };
        Entry {
            slo,
            role,
            name,
            selector: selector.clone(),
        }
    }

    /// The `label="value"` matchers a sample's own label value must equal for this entry to
    /// match it, so the entry can be filed under any one of them. `__name__` is left out (the
    /// name is indexed first, and histogram roles test the base name), and so is `le` for a
    /// bucket entry, whose selector is tested on the labels without `le`.
    /// Each comes with its position among the selector's matchers.
    fn equalities(&self) -> impl Iterator<Item = (usize, &str, &str)> {
        let bucket = matches!(self.role, Role::Bucket { .. });
        self.selector
            .matchers()
            .iter()
            .enumerate()
            .filter(move |(_, m)| {
                m.op() == MatchOp::Eq && m.label() != "__name__" && !(bucket && m.label() == "le")
            })
            .map(|(at, m)| (at, m.label(), m.value()))
    }
}

/// What a sample is tested with for one entry, laid out for the per-sample loop.
#[derive(Debug, Clone)]
struct Test {
    role: Role,
    /// Position of the entry's SLO in [`ScrapePlan::slos`].
    slot: u32,
    /// The selector's matchers but the one the entry is filed under in the index (a sample that
    /// reaches the entry has passed it): `matcher_ids[start..end]`, indices into
    /// [`ScrapePlan::matchers`].
    start: u32,
    end: u32,
}

/// Which SLOs read which selectors, built once per rule set (at start and at each reload) and
/// shared by every scrape of every target.
#[derive(Debug, Clone, Default)]
pub struct ScrapePlan {
    entries: Vec<Entry>,
    /// Per entry, what a sample is tested with.
    tests: Vec<Test>,
    /// The SLOs and grouped rules with at least one entry, in plan order (the order of
    /// [`Matched::slos`] and of the rules in [`Matched::groups`]).
    slos: Vec<Owner>,
    /// The grouped rules, by [`GroupKey::group`].
    groups: Vec<GroupRule>,
    /// Every distinct matcher of the plan once: thousands of selectors that share
    /// `code=~"5.."` share one compiled regex (each selector compiled its own), which stays in
    /// cache across a page instead of one cold regex per SLO.
    matchers: Vec<Matcher>,
    matcher_ids: Vec<u32>,
    index: Index,
}

/// The plan's entries filed so that a sample reaches only the entries that can match it: first
/// by the metric name they need, then by the value one of their equality matchers requires.
/// Filing is exact, never a guess: an entry under `label="v"` cannot match a sample whose
/// `label` is not `v` (an absent label is looked up as the empty value, as it matches), and every
/// entry reached is still tested with all its matchers.
#[derive(Debug, Clone, Default)]
struct Index {
    /// Entries of selectors with a metric name, by the sample name they need.
    by_name: HashMap<String, Group, PlanHash>,
    /// Entries of selectors without a metric name (such as `{job="api"}`): any sample may match.
    any_name: Group,
}

/// The entries filed under one label value: the usual one or two (a ratio's two selectors) kept
/// in the table itself, so a lookup reads no second array.
#[derive(Debug, Clone, Copy)]
enum Run {
    One(u32),
    Two(u32, u32),
    /// `filed[start..end]`.
    Many(u32, u32),
}

/// The hasher of the plan's tables: their keys are names and values from the rules (trusted),
/// looked up by a page's names and values, which can only miss, never add a key. So the
/// flooding resistance of the default hasher buys nothing here, and a multiply-rotate over
/// words is several times cheaper than SipHash on the short strings of label values.
#[derive(Debug, Clone, Copy, Default)]
struct PlanHash;

impl std::hash::BuildHasher for PlanHash {
    type Hasher = WordHasher;
    fn build_hasher(&self) -> WordHasher {
        WordHasher(0)
    }
}

/// FxHash's step (rotate, xor a word, multiply) over 8-byte words, then MurmurHash3's final
/// mix: the step alone leaves the low bits, which pick the table slot, a function of the first
/// bytes only, and label values that share a prefix (`/r1`, `/r10`, ...) would pile up.
#[derive(Debug, Clone, Copy)]
struct WordHasher(u64);

impl WordHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl std::hash::Hasher for WordHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }
    fn write_u8(&mut self, b: u8) {
        self.add(u64::from(b));
    }
    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// The entries filed under each value of one label.
type ByValue = HashMap<Box<str>, Run, PlanHash>;

/// The entries of one name (or of no name), filed by label value.
#[derive(Debug, Clone, Default)]
struct Group {
    /// Per label, the entries filed under each value of it. Usually one label per group (the
    /// one that tells the SLOs apart, such as `route`), so a sample costs one lookup per group.
    by_label: Vec<(String, ByValue)>,
    /// The entries of the runs longer than two, one run per value.
    filed: Vec<u32>,
    /// Entries with no equality matcher to file them under (only `!=`, `=~`, `!~` matchers):
    /// tried on every sample of the group.
    rest: Vec<u32>,
}

impl Group {
    /// Files `members` (indices into `entries`) each under its most selective equality: the
    /// `label="value"` fewest members of the group share, ties going to the label most members
    /// can be filed under (fewer labels to look up per sample). Records in `filed_at` the
    /// position of that matcher in each filed entry's selector.
    fn build(entries: &[Entry], members: &[u32], filed_at: &mut [Option<usize>]) -> Group {
        let mut pairs: HashMap<(&str, &str), usize> = HashMap::new();
        let mut labels: HashMap<&str, usize> = HashMap::new();
        for &i in members {
            let mut seen_labels: Vec<&str> = Vec::new();
            for (_, label, value) in entries[i as usize].equalities() {
                *pairs.entry((label, value)).or_default() += 1;
                if !seen_labels.contains(&label) {
                    seen_labels.push(label);
                    *labels.entry(label).or_default() += 1;
                }
            }
        }
        let mut group = Group::default();
        let mut chosen: Vec<(usize, &str, u32)> = Vec::new();
        for &i in members {
            let best = entries[i as usize]
                .equalities()
                .min_by_key(|&(_, label, value)| {
                    (
                        pairs[&(label, value)],
                        std::cmp::Reverse(labels[label]),
                        label,
                        value,
                    )
                });
            let Some((at, label, value)) = best else {
                group.rest.push(i);
                continue;
            };
            filed_at[i as usize] = Some(at);
            let slot = match group.by_label.iter().position(|(l, _)| l == label) {
                Some(p) => p,
                None => {
                    group
                        .by_label
                        .push((label.to_owned(), HashMap::with_hasher(PlanHash)));
                    group.by_label.len() - 1
                }
            };
            chosen.push((slot, value, i));
        }
        // One contiguous run per (label, value), entries in plan order within it.
        chosen.sort_unstable();
        for run in chosen.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
            let filed = match run {
                [(_, _, a)] => Run::One(*a),
                [(_, _, a), (_, _, b)] => Run::Two(*a, *b),
                _ => {
                    let start = index_u32(group.filed.len());
                    group.filed.extend(run.iter().map(|&(_, _, i)| i));
                    Run::Many(start, index_u32(group.filed.len()))
                }
            };
            let (slot, value, _) = run[0];
            group.by_label[slot].1.insert(value.into(), filed);
        }
        group
    }

    fn is_empty(&self) -> bool {
        self.by_label.is_empty() && self.rest.is_empty()
    }

    /// Appends the entries that may match a sample with these labels (sorted by name; the
    /// first of a repeated name counts, as in [`Selector::matches`]).
    fn candidates(&self, labels: &[(&str, &str)], out: &mut Vec<u32>) {
        for (label, by_value) in &self.by_label {
            let value = label_value(labels, label);
            match by_value.get(value) {
                None => {}
                Some(&Run::One(a)) => out.push(a),
                Some(&Run::Two(a, b)) => out.extend([a, b]),
                Some(&Run::Many(start, end)) => {
                    out.extend_from_slice(&self.filed[start as usize..end as usize]);
                }
            }
        }
        out.extend_from_slice(&self.rest);
    }
}

impl Index {
    /// The index of `entries`, and per entry the position in its selector of the matcher it is
    /// filed under, if any.
    fn build(entries: &[Entry]) -> (Index, Vec<Option<usize>>) {
        let mut filed_at = vec![None; entries.len()];
        let mut by_name: HashMap<&str, Vec<u32>> = HashMap::new();
        let mut any_name = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let i = index_u32(i);
            match &e.name {
                Some(n) => by_name.entry(n).or_default().push(i),
                None => any_name.push(i),
            }
        }
        let index = Index {
            by_name: by_name
                .into_iter()
                .map(|(n, members)| {
                    let group = Group::build(entries, &members, &mut filed_at);
                    (n.to_owned(), group)
                })
                .collect(),
            any_name: Group::build(entries, &any_name, &mut filed_at),
        };
        (index, filed_at)
    }
}

/// A position in one of the plan's tables. A plan holds at most two entries per SLO and SLO
/// indices are `u32`, so positions fit.
fn index_u32(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// The value of `label` among labels sorted by name: the first one, or the empty string when it
/// is absent, as [`Selector::matches`] looks labels up.
fn label_value<'a>(labels: &[(&str, &'a str)], label: &str) -> &'a str {
    labels
        .iter()
        .find(|(k, _)| *k == label)
        .map_or("", |(_, v)| v)
}

/// A grouped rule (`group_by`) as the plan reads it: its series are split by the values of these
/// labels, one instance per distinct set.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRule {
    /// The rule's id (`service/name`, the instances' template).
    pub id: SloId,
    /// Its `group_by` labels, in order.
    pub by: Vec<String>,
}

impl ScrapePlan {
    /// The plan for `rules`, with engine indices from `index_of`. A grouped rule's selectors
    /// are read once for all its instances ([`Matched::groups`]).
    pub fn new(rules: &RuleSet, index_of: impl Fn(&SloId) -> Option<SloIdx>) -> ScrapePlan {
        let mut entries = Vec::new();
        let mut groups = Vec::new();
        for slo in rules.services.iter().flat_map(|s| &s.slos) {
            let idx = if slo.is_template() {
                groups.push(GroupRule {
                    id: slo.id.clone(),
                    by: slo.group_by().to_vec(),
                });
                Owner::Group(index_u32(groups.len() - 1))
            } else {
                let Some(idx) = index_of(&slo.id) else {
                    continue;
                };
                Owner::Slo(idx)
            };
            match &slo.indicator {
                Indicator::Ratio {
                    numerator_selector,
                    total,
                    ..
                } => {
                    entries.push(Entry::owned(idx, Role::Numerator, numerator_selector));
                    entries.push(Entry::owned(idx, Role::Total, total));
                }
                Indicator::LatencyThreshold {
                    threshold,
                    source: LatencySource::Histogram { selector, .. },
                }
                | Indicator::LatencyPercentile {
                    threshold,
                    source: LatencySource::Histogram { selector, .. },
                    ..
                } => {
                    let role = Role::Bucket {
                        threshold: threshold.as_secs_f64(),
                    };
                    entries.push(Entry::owned(idx, role, selector));
                    entries.push(Entry::owned(idx, Role::Count, selector));
                }
                _ => {}
            }
        }
        let mut plan = ScrapePlan::from_entries(entries);
        plan.groups = groups;
        plan
    }

    /// The grouped rules, by [`GroupKey::group`].
    pub fn groups(&self) -> &[GroupRule] {
        &self.groups
    }

    fn from_entries(entries: Vec<Entry>) -> ScrapePlan {
        let mut slos = Vec::new();
        let mut slot_of: HashMap<Owner, u32> = HashMap::new();
        let mut matchers: Vec<Matcher> = Vec::new();
        let mut matcher_of: HashMap<(&str, MatchOp, &str), u32> = HashMap::new();
        let mut matcher_ids = Vec::new();
        let mut tests = Vec::with_capacity(entries.len());
        let (index, filed_at) = Index::build(&entries);
        for (e, filed_at) in entries.iter().zip(filed_at) {
            let slot = *slot_of.entry(e.slo).or_insert_with(|| {
                slos.push(e.slo);
                index_u32(slos.len() - 1)
            });
            let start = index_u32(matcher_ids.len());
            for (at, m) in e.selector.matchers().iter().enumerate() {
                if Some(at) == filed_at {
                    continue;
                }
                let id = *matcher_of
                    .entry((m.label(), m.op(), m.value()))
                    .or_insert_with(|| {
                        matchers.push(m.clone());
                        index_u32(matchers.len() - 1)
                    });
                matcher_ids.push(id);
            }
            tests.push(Test {
                role: e.role,
                slot,
                start,
                end: index_u32(matcher_ids.len()),
            });
        }
        ScrapePlan {
            entries,
            tests,
            slos,
            groups: Vec::new(),
            matchers,
            matcher_ids,
            index,
        }
    }

    /// Whether entry `t`'s selector selects a series named `name` (for histogram roles the
    /// selector's base name) with `labels`, given that the index handed the entry out for them:
    /// [`Selector::matches`] with the plan's shared matchers. The selector's metric name and the
    /// matcher the entry is filed under need no test here: the index only hands out entries of
    /// the sample's name (a histogram role is tested with its own base name) and of its value of
    /// the filed label.
    fn selects(&self, t: &Test, name: &str, labels: &[(&str, &str)]) -> bool {
        self.matcher_ids[t.start as usize..t.end as usize]
            .iter()
            .all(|&id| {
                let m = &self.matchers[id as usize];
                let v = if m.label() == "__name__" {
                    name
                } else {
                    label_value(labels, m.label())
                };
                m.matches(v)
            })
    }

    /// True when no SLO reads scraped metrics.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The labels a target attaches to every series it yields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetLabels(Vec<(String, String)>);

impl TargetLabels {
    /// A page's labels with the target's attached, sorted by name (stable: a page label renamed
    /// to `exported_<name>` comes before a target label of that same name). `renamed` holds the
    /// renamed names; it stays empty, and nothing is allocated for it, on pages that expose no
    /// label of the target's.
    fn attach<'a>(
        &'a self,
        page: &'a [Label<'a>],
        renamed: &'a mut Vec<String>,
    ) -> Vec<(&'a str, &'a str)> {
        let clashes = |k: &str| self.0.iter().any(|(n, _)| n == k);
        renamed.clear();
        renamed.extend(
            page.iter()
                .filter(|(k, _)| clashes(k))
                .map(|(k, _)| format!("exported_{k}")),
        );
        let mut renamed = renamed.iter();
        let mut view: Vec<(&str, &str)> = Vec::with_capacity(page.len() + self.0.len());
        for (k, v) in page {
            let k = if clashes(k) {
                renamed.next().map_or(*k, String::as_str)
            } else {
                *k
            };
            view.push((k, v.as_ref()));
        }
        view.extend(self.0.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        view.sort_by(|a, b| a.0.cmp(b.0));
        view
    }

    /// `job`, `instance` and the target's own labels.
    pub fn for_target(t: &ScrapeTarget) -> TargetLabels {
        let mut v = vec![
            ("job".to_owned(), t.name.clone()),
            ("instance".to_owned(), instance_of(&t.url)),
        ];
        for (k, val) in &t.labels {
            v.retain(|(n, _)| n != k);
            v.push((k.clone(), val.clone()));
        }
        v.sort();
        TargetLabels(v)
    }

    /// The value the target gives label `name`, if it attaches one.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `host:port` of a URL, with the scheme's default port made explicit as Prometheus does.
pub fn instance_of(url: &str) -> String {
    let (rest, port) = match url.split_once("://") {
        Some(("https", r)) => (r, "443"),
        Some((_, r)) => (r, "80"),
        None => (url, "80"),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let has_port = match authority.rfind(']') {
        Some(close) => authority[close..].contains(':'),
        None => authority.contains(':'),
    };
    if has_port {
        authority.to_owned()
    } else {
        format!("{authority}:{port}")
    }
}

/// The counter samples of one SLO (or of one instance of a grouped rule) from one scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct SloSamples<K = SloIdx> {
    /// The SLO (or the grouped rule and the instance's label values).
    pub slo: K,
    /// `(series id, value)` of the numerator (ratio numerator or histogram good bucket).
    pub numerator: Vec<(u64, f64)>,
    /// `(series id, value)` of the total.
    pub total: Vec<(u64, f64)>,
    /// Every `_bucket` sample of a histogram-fed latency SLO: `(series id without le, le,
    /// value)`, for its percentiles ([`crate::slo::histogram`]).
    pub buckets: Vec<(u64, f64, f64)>,
}

impl<K> SloSamples<K> {
    fn empty(slo: K) -> SloSamples<K> {
        SloSamples {
            slo,
            numerator: Vec::new(),
            total: Vec::new(),
            buckets: Vec::new(),
        }
    }
}

/// Which instance of which grouped rule samples belong to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupKey {
    /// The rule's position in [`ScrapePlan::groups`].
    pub group: u32,
    /// The values of its `group_by` labels, in order (empty for a series without the label).
    pub values: Vec<String>,
}

/// What one scrape yielded for the SLOs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Matched {
    /// Per SLO with at least one entry in the plan, in plan order.
    pub slos: Vec<SloSamples>,
    /// Per grouped rule and label set its series on the page carry, the samples of that set:
    /// by rule in plan order, then in the order the sets first appear on the page. A set is
    /// here as long as one of its series is on the page (its counters may not have moved).
    pub groups: Vec<SloSamples<GroupKey>>,
    /// Samples on the page.
    pub samples: u64,
    /// Samples dropped because their series had already appeared on the page.
    pub duplicates: u64,
    /// The first duplicated series, as `name{labels}` (cut at [`MAX_EXAMPLE_BYTES`]).
    pub duplicate_example: Option<String>,
}

/// Longest duplicated-series example kept for the problem message: a page's labels are the
/// target's data, so they are bounded before they reach the API.
pub const MAX_EXAMPLE_BYTES: usize = 256;

impl Matched {
    /// The page was used, but something on it was not as it should be: `(reason, message)`,
    /// today only `duplicate_series`.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        let example = self.duplicate_example.as_deref()?;
        Some((
            "duplicate_series",
            format!(
                "{} sample(s) repeat a series already on the page, e.g. {example}; the first \
                 sample of each series counts and the repeats are dropped, as Prometheus does",
                self.duplicates
            ),
        ))
    }
}

/// The series already seen on one page, by identity as Prometheus stores them: the name and
/// the labels with a non-empty value, in name order.
#[derive(Debug, Default)]
pub struct SeenSeries {
    ids: HashSet<u64>,
    /// Scratch space for the identity's bytes, reused across series.
    buf: Vec<u8>,
}

impl SeenSeries {
    /// True the first time a series (`sorted_labels` sorted by name) is offered.
    pub fn first(&mut self, name: &str, sorted_labels: &[(&str, &str)]) -> bool {
        self.first_with_id(name, sorted_labels).0
    }

    /// [`SeenSeries::first`], and the series' id ([`series_id`]) when no label value is empty:
    /// then the identity hashed here is the id's text, so a page hashes each series once.
    fn first_with_id(&mut self, name: &str, sorted_labels: &[(&str, &str)]) -> (bool, Option<u64>) {
        let buf = &mut self.buf;
        buf.clear();
        buf.extend_from_slice(name.as_bytes());
        let mut all_set = true;
        for (k, v) in sorted_labels {
            if v.is_empty() {
                all_set = false;
                continue;
            }
            buf.push(0xff);
            buf.extend_from_slice(k.as_bytes());
            buf.push(0xfe);
            buf.extend_from_slice(v.as_bytes());
        }
        let id = fnv1a64(buf);
        (self.ids.insert(id), all_set.then_some(id))
    }
}

/// `name{k="v",...}` for a problem message, cut at [`MAX_EXAMPLE_BYTES`].
fn example(name: &str, labels: &[(&str, &str)]) -> String {
    let mut out = String::from(name);
    out.push('{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!("{k}={v:?}"));
        if out.len() > MAX_EXAMPLE_BYTES {
            break;
        }
    }
    out.push('}');
    if out.len() > MAX_EXAMPLE_BYTES {
        let mut cut = MAX_EXAMPLE_BYTES;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str("...");
    }
    out
}

/// The label sets of the grouped rules' series on one page: which set each series belongs to,
/// so a rule's samples are split into its instances once the page is read.
#[derive(Debug, Default)]
struct GroupSplit {
    /// `(slot, series id)` to its set, a position in `sets`.
    of_series: HashMap<(u32, u64), u32>,
    /// A set's text (the slot, then each value followed by a byte no UTF-8 text holds) to its
    /// position in `sets`.
    by_text: HashMap<Vec<u8>, u32>,
    /// `(slot, values)` in the order first seen.
    sets: Vec<(u32, Vec<String>)>,
    buf: Vec<u8>,
}

impl GroupSplit {
    /// Files series `id` of `slot` under its values of `by` among `labels` (sorted by name).
    fn note(&mut self, slot: u32, id: u64, by: &[String], labels: &[(&str, &str)]) {
        if self.of_series.contains_key(&(slot, id)) {
            return;
        }
        self.buf.clear();
        self.buf.extend_from_slice(&slot.to_le_bytes());
        for label in by {
            self.buf
                .extend_from_slice(label_value(labels, label).as_bytes());
            self.buf.push(0xff);
        }
        let set = match self.by_text.get(&self.buf) {
            Some(&set) => set,
            None => {
                let set = index_u32(self.sets.len());
                self.by_text.insert(self.buf.clone(), set);
                let values = by
                    .iter()
                    .map(|l| label_value(labels, l).to_owned())
                    .collect();
                self.sets.push((slot, values));
                set
            }
        };
        self.of_series.insert((slot, id), set);
    }

    /// The grouped rules' samples of `per_slot`, split into their label sets, in rule order then
    /// first appearance; the plain SLOs' samples stay in `per_slot`.
    fn split(
        self,
        plan: &ScrapePlan,
        per_slot: &mut [SloSamples<Owner>],
    ) -> Vec<SloSamples<GroupKey>> {
        let mut order: Vec<u32> = (0..index_u32(self.sets.len())).collect();
        order.sort_by_key(|&set| self.sets[set as usize].0);
        let mut position = vec![0u32; self.sets.len()];
        for (at, &set) in order.iter().enumerate() {
            position[set as usize] = index_u32(at);
        }
        let mut sets: Vec<Option<(u32, Vec<String>)>> = self.sets.into_iter().map(Some).collect();
        let mut out: Vec<SloSamples<GroupKey>> = order
            .iter()
            .filter_map(|&set| {
                let (slot, values) = sets[set as usize].take()?;
                let Owner::Group(group) = plan.slos[slot as usize] else {
                    return None;
                };
                Some(SloSamples::empty(GroupKey { group, values }))
            })
            .collect();
        let of = |slot: usize, id: u64| {
            self.of_series
                .get(&(index_u32(slot), id))
                .map(|&set| position[set as usize] as usize)
        };
        for (slot, s) in per_slot.iter_mut().enumerate() {
            if !matches!(s.slo, Owner::Group(_)) {
                continue;
            }
            for (id, v) in s.numerator.drain(..) {
                if let Some(at) = of(slot, id) {
                    out[at].numerator.push((id, v));
                }
            }
            for (id, v) in s.total.drain(..) {
                if let Some(at) = of(slot, id) {
                    out[at].total.push((id, v));
                }
            }
            for (id, le, v) in s.buckets.drain(..) {
                if let Some(at) = of(slot, id) {
                    out[at].buckets.push((id, le, v));
                }
            }
        }
        out
    }
}

/// Parses `body` and picks the samples of every SLO in `plan`. All or nothing: an error
/// discards the scrape.
///
/// Each sample is tested only against the entries the plan's index files under its name and
/// label values, so the cost follows the samples and the selectors that can match them, not
/// samples x selectors. The result is the one of testing every selector on every sample, in the
/// same order (checked against that brute force by the property test of this module).
pub fn match_page(
    plan: &ScrapePlan,
    target: &TargetLabels,
    body: &[u8],
    format: Format,
    sample_limit: u64,
) -> Result<Matched, ScrapeError> {
    let mut per_slo: Vec<SloSamples<Owner>> = plan
        .slos
        .iter()
        .map(|&slo| SloSamples::empty(slo))
        .collect();
    let mut split = GroupSplit::default();
    // Histogram buckets: per (entry, series without `le`) the best bucket so far.
    let mut buckets: HashMap<(usize, u64), (f64, f64)> = HashMap::new();
    let mut samples = 0u64;
    let mut over_limit = false;
    let mut seen = SeenSeries::default();
    let mut duplicates = 0u64;
    let mut duplicate_example = None;
    let mut candidates: Vec<u32> = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut renamed: Vec<String> = Vec::new();
    let summary = exposition::parse(body, format, |s: &Sample<'_>| {
        samples += 1;
        if samples > sample_limit {
            over_limit = true;
            return;
        }
        if over_limit {
            return;
        }
        let named = plan.index.by_name.get(s.name);
        if named.is_none() && plan.index.any_name.is_empty() {
            return;
        }
        let view = target.attach(s.labels, &mut renamed);
        let (first, mut view_id) = seen.first_with_id(s.name, &view);
        if !first {
            duplicates += 1;
            if duplicate_example.is_none() {
                duplicate_example = Some(example(s.name, &view));
            }
            return;
        }
        candidates.clear();
        if let Some(group) = named {
            group.candidates(&view, &mut candidates);
        }
        plan.index.any_name.candidates(&view, &mut candidates);
        // In plan order, so every SLO's samples come in the order of a test of every entry.
        candidates.sort_unstable();
        for &i in &candidates {
            let i = i as usize;
            let t = &plan.tests[i];
            let slot = &mut per_slo[t.slot as usize];
            match t.role {
                Role::Numerator | Role::Total | Role::Count => {
                    let name = match t.role {
                        Role::Count => plan.entries[i].selector.metric().unwrap_or_default(),
                        _ => s.name,
                    };
                    if !plan.selects(t, name, &view) {
                        continue;
                    }
                    let id = *view_id.get_or_insert_with(|| series_id(&mut buf, s.name, &view));
                    if let Owner::Group(g) = slot.slo {
                        split.note(t.slot, id, &plan.groups[g as usize].by, &view);
                    }
                    if t.role == Role::Numerator {
                        slot.numerator.push((id, s.value));
                    } else {
                        slot.total.push((id, s.value));
                    }
                }
                Role::Bucket { threshold } => {
                    let Some(le) = view
                        .iter()
                        .find(|(k, _)| *k == "le")
                        .and_then(|(_, v)| exposition::parse_float(v.as_bytes()))
                    else {
                        continue;
                    };
                    let rest: Vec<(&str, &str)> =
                        view.iter().copied().filter(|(k, _)| *k != "le").collect();
                    let base = plan.entries[i].selector.metric().unwrap_or_default();
                    if !plan.selects(t, base, &rest) {
                        continue;
                    }
                    let id = series_id(&mut buf, s.name, &rest);
                    if let Owner::Group(g) = slot.slo {
                        split.note(t.slot, id, &plan.groups[g as usize].by, &rest);
                    }
                    slot.buckets.push((id, le, s.value));
                    if le > threshold {
                        continue;
                    }
                    let best = buckets.entry((i, id)).or_insert((f64::NEG_INFINITY, 0.0));
                    if le > best.0 {
                        *best = (le, s.value);
                    }
                }
            }
        }
    })?;
    if over_limit {
        return Err(ScrapeError::SampleLimit {
            limit: sample_limit,
        });
    }
    let mut picked: Vec<((usize, u64), (f64, f64))> = buckets.into_iter().collect();
    picked.sort_by_key(|(k, _)| *k);
    for ((i, id), (_, v)) in picked {
        per_slo[plan.tests[i].slot as usize].numerator.push((id, v));
    }
    let groups = if plan.groups.is_empty() {
        Vec::new()
    } else {
        split.split(plan, &mut per_slo)
    };
    Ok(Matched {
        slos: per_slo
            .into_iter()
            .filter_map(|s| match s.slo {
                Owner::Slo(slo) => Some(SloSamples {
                    slo,
                    numerator: s.numerator,
                    total: s.total,
                    buckets: s.buckets,
                }),
                Owner::Group(_) => None,
            })
            .collect(),
        groups,
        samples: summary.samples,
        duplicates,
        duplicate_example,
    })
}

/// FNV-1a over the name and the sorted label pairs, with separators no name or value holds
/// (`buf` is scratch space, reused across samples).
fn series_id(buf: &mut Vec<u8>, name: &str, sorted_labels: &[(&str, &str)]) -> u64 {
    buf.clear();
    buf.extend_from_slice(name.as_bytes());
    for (k, v) in sorted_labels {
        buf.push(0xff);
        buf.extend_from_slice(k.as_bytes());
        buf.push(0xfe);
        buf.extend_from_slice(v.as_bytes());
    }
    fnv1a64(buf)
}

/// Which scrape targets each selector may read, for the work that follows a target rather
/// than a page: an SLO's first collection (a scrape of a target its series may come from) and
/// the shard a service goes to.
///
/// A selector can match a target's series only if each of its matchers on a label the target
/// attaches (`job`, `instance` and the target's `labels`, which replace the page's own) accepts
/// the target's value; a matcher on any other label may be satisfied by the page. With an
/// equality matcher on `job` that is at most one target, found by name.
#[derive(Debug, Clone, Default)]
pub struct TargetIndex {
    labels: Vec<TargetLabels>,
    by_job: HashMap<String, usize>,
}

impl TargetIndex {
    /// The index of `targets` (positions in it are what [`TargetIndex::read_by`] returns).
    pub fn new(targets: &[ScrapeTarget]) -> TargetIndex {
        TargetIndex {
            labels: targets.iter().map(TargetLabels::for_target).collect(),
            by_job: targets
                .iter()
                .enumerate()
                .map(|(i, t)| (t.name.clone(), i))
                .collect(),
        }
    }

    /// Positions of the targets `sel` may read, and whether it names its `job` (without, it
    /// is tried against every target).
    pub fn read_by(&self, sel: &Selector) -> (Vec<usize>, bool) {
        let job = sel
            .matchers()
            .iter()
            .find(|m| m.label() == "job" && m.op() == crate::rules::selector::MatchOp::Eq)
            .map(|m| m.value());
        let may_read = |i: &usize| {
            let t = &self.labels[*i];
            sel.matchers().iter().all(|m| match t.get(m.label()) {
                Some(v) => m.matches(v),
                None => true,
            })
        };
        match job {
            Some(j) => (
                self.by_job
                    .get(j)
                    .copied()
                    .into_iter()
                    .filter(may_read)
                    .collect(),
                true,
            ),
            None => ((0..self.labels.len()).filter(may_read).collect(), false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::load_str;
    use crate::slo::engine::Engine;
    use std::borrow::Cow;

    const RULES: &str = r#"
version: burnwatch/v1
service: api
scrape:
  - name: api
    url: http://127.0.0.1:8080/metrics
    labels: {env: prod}
slos:
  - name: availability
    objective: 99.9
    indicator:
      ratio:
        bad: http_requests_total{job="api",code=~"5.."}
        total: http_requests_total{job="api"}
  - name: latency
    objective: 99
    indicator:
      latency_threshold:
        threshold: 300ms
        histogram: http_request_duration_seconds{job="api"}
"#;

    const PAGE: &str = r#"# TYPE http_requests_total counter
http_requests_total{code="200",path="/a"} 90
http_requests_total{code="500",path="/a"} 7
http_requests_total{code="503",path="/b",job="spoof"} 3
other_total 5
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.1"} 50
http_request_duration_seconds_bucket{le="0.25"} 80
http_request_duration_seconds_bucket{le="0.3"} 85
http_request_duration_seconds_bucket{le="0.5"} 95
http_request_duration_seconds_bucket{le="+Inf"} 100
http_request_duration_seconds_sum 20
http_request_duration_seconds_count 100
"#;

    fn plan() -> (ScrapePlan, TargetLabels) {
        let rules = load_str("r.yaml", RULES).expect("valid rules");
        let engine = Engine::from_rules(&rules);
        let plan = ScrapePlan::new(&rules, |id| engine.index_of(id));
        (plan, TargetLabels::for_target(&rules.scrapes[0]))
    }

    fn values(v: &[(u64, f64)]) -> Vec<f64> {
        let mut out: Vec<f64> = v.iter().map(|(_, x)| *x).collect();
        out.sort_by(f64::total_cmp);
        out
    }

    #[test]
    fn ratio_and_histogram_samples() {
        let (plan, target) = plan();
        let m = match_page(&plan, &target, PAGE.as_bytes(), Format::Text, 1000).expect("ok");
        assert_eq!(m.samples, 11);
        assert_eq!(m.slos.len(), 2);
        // The page's own `job="spoof"` became `exported_job`; the target's job is `api`.
        assert_eq!(values(&m.slos[0].numerator), vec![3.0, 7.0]);
        assert_eq!(values(&m.slos[0].total), vec![3.0, 7.0, 90.0]);
        // The 0.3 bucket is the threshold's edge.
        assert_eq!(values(&m.slos[1].numerator), vec![85.0]);
        assert_eq!(values(&m.slos[1].total), vec![100.0]);
        // Every bucket goes to the percentiles, the ones above the threshold too.
        let les: Vec<f64> = m.slos[1].buckets.iter().map(|(_, le, _)| *le).collect();
        assert_eq!(les, vec![0.1, 0.25, 0.3, 0.5, f64::INFINITY]);
        assert!(m.slos[0].buckets.is_empty());
    }

    #[test]
    fn threshold_between_edges_takes_the_edge_below() {
        let rules = load_str("r.yaml", &RULES.replace("300ms", "400ms")).expect("valid");
        let engine = Engine::from_rules(&rules);
        let plan = ScrapePlan::new(&rules, |id| engine.index_of(id));
        let target = TargetLabels::for_target(&rules.scrapes[0]);
        let m = match_page(&plan, &target, PAGE.as_bytes(), Format::Text, 1000).expect("ok");
        assert_eq!(values(&m.slos[1].numerator), vec![85.0]);
    }

    #[test]
    fn limits_and_parse_errors_discard_the_scrape() {
        let (plan, target) = plan();
        let e = match_page(&plan, &target, PAGE.as_bytes(), Format::Text, 10).expect_err("limit");
        assert_eq!(e, ScrapeError::SampleLimit { limit: 10 });
        let bad = format!("{PAGE}broken{{ 1\n");
        let e = match_page(&plan, &target, bad.as_bytes(), Format::Text, 1000).expect_err("parse");
        assert_eq!(e.reason(), "parse");
    }

    #[test]
    fn series_ids_are_stable_and_distinct() {
        let (plan, target) = plan();
        let a = match_page(&plan, &target, PAGE.as_bytes(), Format::Text, 1000).expect("ok");
        let b = match_page(&plan, &target, PAGE.as_bytes(), Format::Text, 1000).expect("ok");
        assert_eq!(a, b);
        let mut ids: Vec<u64> = a.slos[0].total.iter().map(|(i, _)| *i).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 3);
    }

    #[test]
    fn duplicate_series_count_once_as_in_prometheus() {
        // The page of the report: one series twice, the repeat with a huge value. Empty label
        // values are no labels, and label order does not matter, as in Prometheus.
        let page = r#"# TYPE http_requests_total counter
http_requests_total{code="200"} 4942
http_requests_total{code="500"} 7
http_requests_total{code="200"} 1274993725
http_requests_total{code="500",path=""} 9
http_request_duration_seconds_bucket{le="0.3"} 85
http_request_duration_seconds_bucket{le="0.3"} 1000
http_request_duration_seconds_count 100
http_request_duration_seconds_count 5000
"#;
        let (plan, target) = plan();
        let m = match_page(&plan, &target, page.as_bytes(), Format::Text, 1000).expect("ok");
        assert_eq!(values(&m.slos[0].numerator), vec![7.0]);
        assert_eq!(values(&m.slos[0].total), vec![7.0, 4942.0]);
        assert_eq!(values(&m.slos[1].numerator), vec![85.0]);
        assert_eq!(values(&m.slos[1].total), vec![100.0]);
        assert_eq!(m.duplicates, 4);
        let (reason, message) = m.problem().expect("a problem");
        assert_eq!(reason, "duplicate_series");
        assert!(
            message.contains(r#"http_requests_total{code="200",env="prod""#),
            "{message}"
        );
        // A clean page has none.
        let clean = match_page(&plan, &target, PAGE.as_bytes(), Format::Text, 1000).expect("ok");
        assert_eq!((clean.duplicates, clean.problem()), (0, None));
        // A hostile example is bounded.
        let long = format!("http_requests_total{{code=\"{}\"}} 1\n", "x".repeat(10_000));
        let m = match_page(
            &plan,
            &target,
            format!("{long}{long}").as_bytes(),
            Format::Text,
            10,
        )
        .expect("ok");
        assert!(m.problem().expect("a problem").1.len() < 2 * MAX_EXAMPLE_BYTES);
    }

    #[test]
    fn instances() {
        assert_eq!(instance_of("http://h/metrics"), "h:80");
        assert_eq!(instance_of("https://h/metrics"), "h:443");
        assert_eq!(instance_of("http://u:p@h:9100/m?x"), "h:9100");
        assert_eq!(instance_of("http://[::1]/m"), "[::1]:80");
        assert_eq!(instance_of("http://[::1]:9/m"), "[::1]:9");
    }

    /// The matcher before the index, kept as the reference the index is checked against: every
    /// entry is tried on every sample of a name some entry needs.
    fn plain_match_page(
        plan: &ScrapePlan,
        target: &TargetLabels,
        body: &[u8],
        format: Format,
        sample_limit: u64,
    ) -> Result<Matched, ScrapeError> {
        let mut per_slo: Vec<SloSamples> = Vec::new();
        let mut slot_of: HashMap<Owner, usize> = HashMap::new();
        for e in &plan.entries {
            let Owner::Slo(idx) = e.slo else {
                panic!("the plain reference reads plans without grouped rules");
            };
            slot_of.entry(e.slo).or_insert_with(|| {
                per_slo.push(SloSamples::empty(idx));
                per_slo.len() - 1
            });
        }
        let names = plan
            .entries
            .iter()
            .map(|e| e.name.clone())
            .collect::<Option<HashSet<String>>>();
        let mut buckets: HashMap<(usize, u64), (f64, f64)> = HashMap::new();
        let mut samples = 0u64;
        let mut over_limit = false;
        let mut seen = SeenSeries::default();
        let mut duplicates = 0u64;
        let mut duplicate_example = None;
        let summary = exposition::parse(body, format, |s: &Sample<'_>| {
            samples += 1;
            if samples > sample_limit {
                over_limit = true;
                return;
            }
            if over_limit || names.as_ref().is_some_and(|n| !n.contains(s.name)) {
                return;
            }
            let mut labels: Vec<(Cow<'_, str>, &str)> = Vec::new();
            for (k, v) in s.labels {
                let k: Cow<'_, str> = if target.0.iter().any(|(n, _)| n == k) {
                    Cow::Owned(format!("exported_{k}"))
                } else {
                    Cow::Borrowed(k)
                };
                labels.push((k, v.as_ref()));
            }
            for (k, v) in &target.0 {
                labels.push((Cow::Borrowed(k.as_str()), v.as_str()));
            }
            labels.sort_by(|a, b| a.0.cmp(&b.0));
            let view: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (k.as_ref(), *v)).collect();
            if !seen.first(s.name, &view) {
                duplicates += 1;
                if duplicate_example.is_none() {
                    duplicate_example = Some(example(s.name, &view));
                }
                return;
            }
            for (i, e) in plan.entries.iter().enumerate() {
                if e.name.as_deref().is_some_and(|n| n != s.name) {
                    continue;
                }
                let slot = &mut per_slo[slot_of[&e.slo]];
                match e.role {
                    Role::Numerator | Role::Total | Role::Count => {
                        let name = match e.role {
                            Role::Count => e.selector.metric().unwrap_or_default(),
                            _ => s.name,
                        };
                        if !e.selector.matches(name, &view) {
                            continue;
                        }
                        let id = series_id(&mut Vec::new(), s.name, &view);
                        if e.role == Role::Numerator {
                            slot.numerator.push((id, s.value));
                        } else {
                            slot.total.push((id, s.value));
                        }
                    }
                    Role::Bucket { threshold } => {
                        let Some(le) = view
                            .iter()
                            .find(|(k, _)| *k == "le")
                            .and_then(|(_, v)| exposition::parse_float(v.as_bytes()))
                        else {
                            continue;
                        };
                        let rest: Vec<(&str, &str)> =
                            view.iter().copied().filter(|(k, _)| *k != "le").collect();
                        let base = e.selector.metric().unwrap_or_default();
                        if !e.selector.matches(base, &rest) {
                            continue;
                        }
                        let id = series_id(&mut Vec::new(), s.name, &rest);
                        slot.buckets.push((id, le, s.value));
                        if le > threshold {
                            continue;
                        }
                        let best = buckets.entry((i, id)).or_insert((f64::NEG_INFINITY, 0.0));
                        if le > best.0 {
                            *best = (le, s.value);
                        }
                    }
                }
            }
        })?;
        if over_limit {
            return Err(ScrapeError::SampleLimit {
                limit: sample_limit,
            });
        }
        let mut picked: Vec<((usize, u64), (f64, f64))> = buckets.into_iter().collect();
        picked.sort_by_key(|(k, _)| *k);
        for ((i, id), (_, v)) in picked {
            let slot = slot_of[&plan.entries[i].slo];
            per_slo[slot].numerator.push((id, v));
        }
        Ok(Matched {
            slos: per_slo,
            groups: Vec::new(),
            samples: summary.samples,
            duplicates,
            duplicate_example,
        })
    }

    /// Both matchers on one page; the index must give what trying every entry gives.
    fn assert_same(plan: &ScrapePlan, target: &TargetLabels, page: &str, limit: u64) {
        let indexed = match_page(plan, target, page.as_bytes(), Format::Text, limit);
        let plain = plain_match_page(plan, target, page.as_bytes(), Format::Text, limit);
        // Debug, not `==`: NaN values must compare equal to themselves (f64 Debug round-trips).
        assert_eq!(
            format!("{indexed:?}"),
            format!("{plain:?}"),
            "page:\n{page}"
        );
    }

    fn sel(text: &str) -> Arc<Selector> {
        Arc::new(Selector::parse(text).expect("valid selector"))
    }

    /// The entries a sample is tested against, as the index hands them out.
    fn candidates_of(plan: &ScrapePlan, name: &str, labels: &[(&str, &str)]) -> Vec<u32> {
        let mut out = Vec::new();
        if let Some(g) = plan.index.by_name.get(name) {
            g.candidates(labels, &mut out);
        }
        plan.index.any_name.candidates(labels, &mut out);
        out.sort_unstable();
        out
    }

    #[test]
    fn a_sample_reaches_only_the_entries_that_can_match_it() {
        // 1,000 routes, each with a bad and a total selector that share `job` and differ in
        // `route`: the index files them by route, the more selective label.
        let mut entries = Vec::new();
        for r in 0..1000u32 {
            let total = format!(r#"http_requests_total{{job="api",route="/r{r}"}}"#);
            let bad = format!(r#"http_requests_total{{job="api",route="/r{r}",code=~"5.."}}"#);
            entries.push(Entry::new(SloIdx(r), Role::Numerator, &sel(&bad)));
            entries.push(Entry::new(SloIdx(r), Role::Total, &sel(&total)));
        }
        // Only a regex to file by; a name-less selector; a histogram with `le` (never filed
        // under `le`: a bucket's selector is tested without it).
        entries.push(Entry::new(
            SloIdx(1000),
            Role::Total,
            &sel(r#"http_requests_total{route=~"/x.*"}"#),
        ));
        entries.push(Entry::new(
            SloIdx(1001),
            Role::Total,
            &sel(r#"{route="/r7"}"#),
        ));
        let hist = sel(r#"lat_seconds{le="1",svc="a"}"#);
        entries.push(Entry::new(
            SloIdx(1002),
            Role::Bucket { threshold: 0.3 },
            &hist,
        ));
        entries.push(Entry::new(SloIdx(1002), Role::Count, &hist));
        let plan = ScrapePlan::from_entries(entries);
        let group = &plan.index.by_name["http_requests_total"];
        assert_eq!(group.by_label.len(), 1);
        assert_eq!(group.by_label[0].0, "route");
        assert_eq!(group.rest, vec![2000]);
        let labels = [("code", "500"), ("job", "api"), ("route", "/r7")];
        assert_eq!(
            candidates_of(&plan, "http_requests_total", &labels),
            vec![14, 15, 2000, 2001]
        );
        // A route no SLO reads reaches the regex and the name-less entries only.
        let labels = [("job", "api"), ("route", "/nope")];
        assert_eq!(
            candidates_of(&plan, "http_requests_total", &labels),
            vec![2000]
        );
        let bucket = &plan.index.by_name["lat_seconds_bucket"];
        assert_eq!(bucket.by_label[0].0, "svc");
        let count = &plan.index.by_name["lat_seconds_count"];
        assert_eq!(count.by_label[0].0, "le");
        // A name no entry needs is not looked at.
        assert_eq!(
            candidates_of(&plan, "other", &[("job", "api")]),
            Vec::<u32>::new()
        );
    }

    #[test]
    fn the_plan_hash_spreads_values_that_share_a_prefix() {
        use std::hash::BuildHasher;
        // Table slots come from the low bits and the control byte from the top 7; route-like
        // values differ only in their last bytes. 10,000 random hashes fill about 3,700 of
        // 4,096 low-bit slots and all 128 control bytes.
        let hashes: Vec<u64> = (0..10_000)
            .map(|i| PlanHash.hash_one(format!("/r{i}").as_str()))
            .collect();
        let low: HashSet<u64> = hashes.iter().map(|h| h & 0xfff).collect();
        let top: HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        assert!(low.len() > 3_500, "{} low-bit slots", low.len());
        assert_eq!(top.len(), 128);
    }

    #[test]
    fn an_absent_label_is_filed_as_the_empty_value() {
        // `path=""` selects series without `path` (and with an empty one), as in Prometheus.
        let plan = ScrapePlan::from_entries(vec![
            Entry::new(SloIdx(0), Role::Total, &sel(r#"m{path=""}"#)),
            Entry::new(SloIdx(1), Role::Total, &sel(r#"m{path="/a"}"#)),
        ]);
        let target = TargetLabels(vec![("job".into(), "t".into())]);
        let page = "m{code=\"1\"} 1\nm{path=\"\",code=\"2\"} 2\nm{path=\"/a\"} 3\n";
        assert_same(&plan, &target, page, 100);
        let m = match_page(&plan, &target, page.as_bytes(), Format::Text, 100).expect("ok");
        assert_eq!(values(&m.slos[0].total), vec![1.0, 2.0]);
        assert_eq!(values(&m.slos[1].total), vec![3.0]);
    }

    #[test]
    fn the_fixture_pages_match_as_before() {
        let (plan, target) = plan();
        assert_same(&plan, &target, PAGE, 1000);
        assert_same(&plan, &target, PAGE, 10);
        assert_same(&plan, &target, &format!("{PAGE}broken{{ 1\n"), 1000);
    }

    mod property {
        use super::*;
        use proptest::prelude::*;

        const LABELS: [&str; 8] = [
            "a",
            "b",
            "job",
            "instance",
            "le",
            "exported_job",
            "code",
            "env",
        ];
        const VALUES: [&str; 6] = ["", "x", "y", "500", "0.1", "+Inf"];
        const REGEXES: [&str; 7] = ["", "x|y", ".*", ".+", "5..", "x.*", "(x|)"];
        const OPS: [&str; 4] = ["=", "!=", "=~", "!~"];
        const SAMPLE_NAMES: [&str; 6] = ["m", "m_total", "h_bucket", "h_count", "h", "other"];
        const NUMBERS: [&str; 7] = ["0", "1", "7", "NaN", "+Inf", "2.5", "-3"];

        /// A selector's text: maybe a name, then matchers (some on `__name__` when unnamed).
        fn selector_text() -> impl Strategy<Value = String> {
            let matcher = (
                0..LABELS.len() + 1,
                0..OPS.len(),
                0..VALUES.len().max(REGEXES.len()),
            )
                .prop_map(|(l, o, v)| {
                    let label = LABELS.get(l).copied().unwrap_or("__name__");
                    let value = match (label, o) {
                        ("__name__", 0 | 1) => SAMPLE_NAMES[v % SAMPLE_NAMES.len()],
                        ("__name__", _) => ["m.*", "h_.*", "m|other"][v % 3],
                        (_, 0 | 1) => VALUES[v % VALUES.len()],
                        _ => REGEXES[v % REGEXES.len()],
                    };
                    format!("{label}{}\"{value}\"", OPS[o])
                });
            (
                prop::sample::select(vec!["", "m", "h", "m_total"]),
                prop::collection::vec(matcher, 0..4),
            )
                .prop_map(|(name, matchers)| format!("{name}{{{}}}", matchers.join(",")))
        }

        fn entries() -> impl Strategy<Value = Vec<Entry>> {
            let entry = (0u32..5, 0..6usize, selector_text()).prop_map(|(slo, r, text)| {
                let role = match r {
                    0 => Role::Numerator,
                    1 => Role::Total,
                    2 => Role::Count,
                    3 => Role::Bucket { threshold: 0.1 },
                    4 => Role::Bucket { threshold: 0.3 },
                    _ => Role::Bucket {
                        threshold: f64::INFINITY,
                    },
                };
                // Selectors the rules would refuse (no name and only empty-matching matchers,
                // the name twice) are left out.
                Selector::parse(&text)
                    .ok()
                    .map(|s| Entry::new(SloIdx(slo), role, &Arc::new(s)))
            });
            prop::collection::vec(entry, 0..24).prop_map(|v| v.into_iter().flatten().collect())
        }

        fn target() -> impl Strategy<Value = TargetLabels> {
            prop::sample::subsequence(
                vec![
                    ("a", "x"),
                    ("env", "x"),
                    ("exported_job", "y"),
                    ("instance", "h:80"),
                    ("job", "x"),
                ],
                0..=5,
            )
            .prop_map(|v| {
                TargetLabels(
                    v.into_iter()
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect(),
                )
            })
        }

        /// Pages of few names and values, so series repeat (duplicates) and selectors hit.
        fn page() -> impl Strategy<Value = String> {
            let line = (
                0..SAMPLE_NAMES.len(),
                prop::collection::btree_map(0..LABELS.len(), 0..VALUES.len() + 1, 0..4),
                0..NUMBERS.len(),
            )
                .prop_map(|(n, labels, v)| {
                    let labels: Vec<String> = labels
                        .into_iter()
                        .map(|(l, v)| {
                            format!(
                                "{}=\"{}\"",
                                LABELS[l],
                                VALUES.get(v).copied().unwrap_or("abc")
                            )
                        })
                        .collect();
                    format!(
                        "{}{{{}}} {}\n",
                        SAMPLE_NAMES[n],
                        labels.join(","),
                        NUMBERS[v]
                    )
                });
            prop::collection::vec(line, 0..40).prop_map(|lines| lines.concat())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn indexed_matches_as_every_selector_on_every_sample(
                entries in entries(),
                target in target(),
                page in page(),
                limit in prop_oneof![Just(u64::MAX), 0u64..40],
            ) {
                let plan = ScrapePlan::from_entries(entries);
                assert_same(&plan, &target, &page, limit);
            }

            /// A grouped rule's samples, split by the values of its label, are exactly what
            /// one plain SLO per value gets, its selectors narrowed by `label="value"` (which is
            /// what an instance means), and each set on the page is one of those values.
            #[test]
            fn a_group_splits_as_one_selector_per_value(
                entries in entries(),
                target in target(),
                page in page(),
                label in prop::sample::select(vec!["a", "b", "code", "job", "env", "instance"]),
            ) {
                let grouped_entries: Vec<Entry> = entries
                    .iter()
                    .map(|e| match e.slo {
                        Owner::Slo(SloIdx(0)) => Entry::owned(Owner::Group(0), e.role, &e.selector),
                        _ => e.clone(),
                    })
                    .collect();
                let mut plan = ScrapePlan::from_entries(grouped_entries);
                plan.groups = vec![GroupRule {
                    id: SloId { service: "s".into(), slo: "g".into() },
                    by: vec![label.to_owned()],
                }];
                let m = match_page(&plan, &target, page.as_bytes(), Format::Text, u64::MAX)
                    .expect("the generated pages parse");
                // The plain SLOs are untouched by the grouped rule beside them.
                let others = ScrapePlan::from_entries(
                    entries.iter().filter(|e| e.slo != Owner::Slo(SloIdx(0))).cloned().collect(),
                );
                let plain = match_page(&others, &target, page.as_bytes(), Format::Text, u64::MAX)
                    .expect("parses");
                prop_assert_eq!(format!("{:?}", m.slos), format!("{:?}", plain.slos));
                // Every value the label takes on the page, and the empty one (series without it).
                let mut values: Vec<String> = VALUES.iter().map(|v| (*v).to_owned()).collect();
                values.extend(["abc", "h:80"].map(str::to_owned));
                values.extend(target.0.iter().map(|(_, v)| v.clone()));
                values.sort();
                values.dedup();
                let mut expected = Vec::new();
                let mut refused: Vec<&String> = Vec::new();
                for v in &values {
                    let mut narrowed = Vec::new();
                    for e in entries.iter().filter(|e| e.slo == Owner::Slo(SloIdx(0))) {
                        let text = e.selector.to_string();
                        let escaped = v.replace('\\', "\\\\").replace('"', "\\\"");
                        let matcher = format!("{label}=\"{escaped}\"");
                        // `m` or `m{...}`: the matcher joins the braces, or opens them.
                        let text = match text.strip_suffix('}') {
                            Some(open) if open.ends_with('{') => format!("{open}{matcher}}}"),
                            Some(open) => format!("{open},{matcher}}}"),
                            None => format!("{text}{{{matcher}}}"),
                        };
                        let Ok(sel) = Selector::parse(&text) else {
                            // `{label=""}` alone matches everything; the rules refuse it.
                            refused.push(v);
                            continue;
                        };
                        narrowed.push(Entry::new(SloIdx(0), e.role, &Arc::new(sel)));
                    }
                    let one = ScrapePlan::from_entries(narrowed);
                    let got = match_page(&one, &target, page.as_bytes(), Format::Text, u64::MAX)
                        .expect("parses");
                    if let Some(s) = got.slos.into_iter().next()
                        && !(s.numerator.is_empty() && s.total.is_empty() && s.buckets.is_empty())
                    {
                        expected.push((v.clone(), s));
                    }
                }
                let mut got: Vec<(String, SloSamples)> = m
                    .groups
                    .into_iter()
                    .map(|g| {
                        assert_eq!(g.slo.group, 0);
                        let [v] = <[String; 1]>::try_from(g.slo.values).expect("one label");
                        (v, SloSamples {
                            slo: SloIdx(0),
                            numerator: g.numerator,
                            total: g.total,
                            buckets: g.buckets,
                        })
                    })
                    .collect();
                got.sort_by(|a, b| a.0.cmp(&b.0));
                // A set whose series matched none of the narrowed selectors cannot be here, and
                // the narrowed selector `{label=""}` is refused, so compare where both exist.
                for (v, s) in &got {
                    prop_assert!(
                        !(s.numerator.is_empty() && s.total.is_empty() && s.buckets.is_empty()),
                        "set {v:?} is on the page but has no samples"
                    );
                }
                let got_values: Vec<&String> = got.iter().map(|(v, _)| v).collect();
                for v in &got_values {
                    prop_assert!(
                        expected.iter().any(|(e, _)| e == *v) || refused.contains(v),
                        "set {v:?} has samples no narrowed selector has"
                    );
                }
                for (v, s) in &expected {
                    let at = got_values.iter().position(|g| *g == v);
                    prop_assert!(at.is_some(), "value {v:?} has samples but no set");
                    prop_assert_eq!(format!("{:?}", got[at.unwrap_or(0)].1), format!("{s:?}"));
                }
            }
        }
    }
}
