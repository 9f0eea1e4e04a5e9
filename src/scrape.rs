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

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::exposition::{self, Format, ParseError, Sample};
use crate::rules::model::{Indicator, LatencySource, RuleSet, ScrapeTarget};
use crate::rules::selector::Selector;
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

#[derive(Debug, Clone)]
struct Entry {
    slo: SloIdx,
    role: Role,
    /// The metric name the samples must have (histograms: with the `_bucket`/`_count` suffix).
    name: Option<String>,
    selector: Arc<Selector>,
}

/// Which SLOs read which selectors, built once per rule set and shared by every scrape.
#[derive(Debug, Clone, Default)]
pub struct ScrapePlan {
    entries: Vec<Entry>,
    /// Names any entry needs; `None` when a selector has no name (every sample is checked).
    names: Option<HashSet<String>>,
}

impl ScrapePlan {
    /// The plan for `rules`, with engine indices from `index_of`.
    pub fn new(
        rules: &RuleSet,
        index_of: impl Fn(&crate::rules::model::SloId) -> Option<SloIdx>,
    ) -> ScrapePlan {
        let mut entries = Vec::new();
        for slo in rules.services.iter().flat_map(|s| &s.slos) {
            let Some(idx) = index_of(&slo.id) else {
                continue;
            };
            let mut push = |role, name: Option<String>, selector: &Arc<Selector>| {
                entries.push(Entry {
                    slo: idx,
                    role,
                    name,
                    selector: selector.clone(),
                })
            };
            match &slo.indicator {
                Indicator::Ratio {
                    numerator_selector,
                    total,
                    ..
                } => {
                    push(
                        Role::Numerator,
                        numerator_selector.metric().map(str::to_owned),
                        numerator_selector,
                    );
                    push(Role::Total, total.metric().map(str::to_owned), total);
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
                    let base = selector.metric().unwrap_or_default();
                    push(
                        Role::Bucket {
                            threshold: threshold.as_secs_f64(),
                        },
                        Some(format!("{base}_bucket")),
                        selector,
                    );
                    push(Role::Count, Some(format!("{base}_count")), selector);
                }
                _ => {}
            }
        }
        let names = entries
            .iter()
            .map(|e| e.name.clone())
            .collect::<Option<HashSet<String>>>();
        ScrapePlan { entries, names }
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

/// The counter samples of one SLO from one scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct SloSamples {
    /// The SLO.
    pub slo: SloIdx,
    /// `(series id, value)` of the numerator (ratio numerator or histogram good bucket).
    pub numerator: Vec<(u64, f64)>,
    /// `(series id, value)` of the total.
    pub total: Vec<(u64, f64)>,
    /// Every `_bucket` sample of a histogram-fed latency SLO: `(series id without le, le,
    /// value)`, for its percentiles ([`crate::slo::histogram`]).
    pub buckets: Vec<(u64, f64, f64)>,
}

/// What one scrape yielded for the SLOs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Matched {
    /// Per SLO with at least one entry in the plan, in plan order.
    pub slos: Vec<SloSamples>,
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
pub struct SeenSeries(HashSet<u64>);

impl SeenSeries {
    /// True the first time a series (`sorted_labels` sorted by name) is offered.
    pub fn first(&mut self, name: &str, sorted_labels: &[(&str, &str)]) -> bool {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(name.as_bytes());
        for (k, v) in sorted_labels.iter().filter(|(_, v)| !v.is_empty()) {
            buf.push(0xff);
            buf.extend_from_slice(k.as_bytes());
            buf.push(0xfe);
            buf.extend_from_slice(v.as_bytes());
        }
        self.0.insert(fnv1a64(&buf))
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

/// Parses `body` and picks the samples of every SLO in `plan`. All or nothing: an error
/// discards the scrape.
pub fn match_page(
    plan: &ScrapePlan,
    target: &TargetLabels,
    body: &[u8],
    format: Format,
    sample_limit: u64,
) -> Result<Matched, ScrapeError> {
    let mut per_slo: Vec<SloSamples> = Vec::new();
    let mut slot_of: HashMap<SloIdx, usize> = HashMap::new();
    for e in &plan.entries {
        slot_of.entry(e.slo).or_insert_with(|| {
            per_slo.push(SloSamples {
                slo: e.slo,
                numerator: Vec::new(),
                total: Vec::new(),
                buckets: Vec::new(),
            });
            per_slo.len() - 1
        });
    }
    // Histogram buckets: per (entry, series without `le`) the best bucket so far.
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
        if over_limit || plan.names.as_ref().is_some_and(|n| !n.contains(s.name)) {
            return;
        }
        let mut labels: Vec<(Cow<'_, str>, &str)> = Vec::with_capacity(s.labels.len() + 4);
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
                    let id = series_id(s.name, &view);
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
                    let id = series_id(s.name, &rest);
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
        samples: summary.samples,
        duplicates,
        duplicate_example,
    })
}

/// FNV-1a over the name and the sorted label pairs, with separators no name or value holds.
fn series_id(name: &str, sorted_labels: &[(&str, &str)]) -> u64 {
    let mut buf = Vec::with_capacity(64);
    buf.extend_from_slice(name.as_bytes());
    for (k, v) in sorted_labels {
        buf.push(0xff);
        buf.extend_from_slice(k.as_bytes());
        buf.push(0xfe);
        buf.extend_from_slice(v.as_bytes());
    }
    fnv1a64(&buf)
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
}
