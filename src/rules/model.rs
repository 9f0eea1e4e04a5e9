//! The validated rules model: what a rules file means once it has been checked.
//!
//! Everything here is built exactly once, by [`crate::rules::decode`], from the YAML the SRE wrote.
//! Newtypes carry their invariants ([`Objective`] is in (0, 1), [`Window`] is a whole number of
//! minutes, selectors are compiled), so the engine and the runtime never re-check them.
//! The YAML reference for every field is `docs/rules.md`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::rules::selector::Selector;
use crate::time::Dur;

/// Labels attached to a service, an SLO or an alert tier (sorted, unique names).
pub type Labels = BTreeMap<String, String>;

/// Every service, probe and scrape target of a set of rules files.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    /// One entry per `service:` document, in file order.
    pub services: Vec<Service>,
    /// Health checks declared in any file; names are unique across the set.
    pub probes: Vec<Probe>,
    /// Scrape targets declared in any file; names are unique across the set.
    pub scrapes: Vec<ScrapeTarget>,
}

impl RuleSet {
    /// All SLOs of all services.
    pub fn slos(&self) -> impl Iterator<Item = &Slo> {
        self.services.iter().flat_map(|s| s.slos.iter())
    }
}

/// A service and its SLOs, from one YAML document.
#[derive(Debug, Clone)]
pub struct Service {
    /// The file the service was read from.
    pub file: PathBuf,
    /// Service name, `[A-Za-z0-9][-A-Za-z0-9_.]*`.
    pub name: String,
    /// Labels added to every SLO of the service (and so to every export and alert).
    pub labels: Labels,
    /// Team or person who owns the service; shown in notifications.
    pub owner: Option<String>,
    /// Runbook URL; shown in notifications.
    pub runbook: Option<String>,
    /// Dashboard URL; shown in notifications.
    pub dashboard: Option<String>,
    /// The service's SLOs, in file order.
    pub slos: Vec<Slo>,
    /// The spec the document was written in.
    pub spec: Spec,
}

/// The specs a rules document may be written in (told apart by `version`, or `apiVersion` and
/// `kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Spec {
    /// `version: burnwatch/v1`.
    #[default]
    Burnwatch,
    /// Sloth's `version: prometheus/v1`.
    SlothPrometheus,
    /// Sloth's `apiVersion: sloth.slok.dev/v1`, `kind: PrometheusServiceLevel`.
    SlothKubernetes,
    /// OpenSLO's `apiVersion: openslo/v1` (any of its kinds).
    OpenSlo,
}

impl Spec {
    /// The spec's name as its documents write it (`version`, or `apiVersion`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Spec::Burnwatch => "burnwatch/v1",
            Spec::SlothPrometheus => "prometheus/v1",
            Spec::SlothKubernetes => "sloth.slok.dev/v1",
            Spec::OpenSlo => "openslo/v1",
        }
    }
}

/// The stable identity of an SLO: `service/slo`. State (budget history) is keyed by it, so label
/// or objective edits keep the history.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct SloId {
    /// The service name.
    pub service: String,
    /// The SLO name, unique within the service.
    pub slo: String,
}

impl fmt::Display for SloId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.service, self.slo)
    }
}

impl SloId {
    /// The SLO's name as the rules write it: `availability` for a plain SLO and for every
    /// instance of a grouped one (whose `slo` is `availability{route="/api"}`, see
    /// [`Slo::instance`]). Exports label series with this and the group labels apart.
    pub fn name(&self) -> &str {
        // Rule names never hold `{` (see `Decoder::name`), so the first one opens the group.
        self.slo.split_once('{').map_or(&self.slo, |(name, _)| name)
    }

    /// True for an instance of a grouped SLO.
    pub fn is_instance(&self) -> bool {
        self.slo.contains('{')
    }

    /// An instance id's `(label, value)` pairs, read back from the form [`Slo::instance`]
    /// writes (`None` for a plain id or text not in that form). A checkpoint keeps instances
    /// by id only, so this is how they come back after a restart.
    pub fn instance_values(&self) -> Option<Vec<(String, String)>> {
        let (_, rest) = self.slo.split_once('{')?;
        let mut body = rest.strip_suffix('}')?;
        let mut out = Vec::new();
        while !body.is_empty() {
            let (label, after) = body.split_once("=\"")?;
            let mut value = String::new();
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next()? {
                    (i, '"') => break i,
                    (_, '\\') => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        c => value.push(c),
                    },
                    (_, c) => value.push(c),
                }
            };
            out.push((label.to_owned(), value));
            body = &after[end + 1..];
            if let Some(next) = body.strip_prefix(',') {
                body = next;
            } else if !body.is_empty() {
                return None;
            }
        }
        Some(out)
    }

    /// `service/slo` as two URL path segments, percent-encoded (an instance's `slo` holds `{`,
    /// `"` and maybe `/`): what `/api/v1/slos/` links and alert generator URLs end with.
    pub fn url_path(&self) -> String {
        use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
        // Everything but RFC 3986's unreserved characters.
        const SEGMENT: &percent_encoding::AsciiSet = &NON_ALPHANUMERIC
            .remove(b'-')
            .remove(b'_')
            .remove(b'.')
            .remove(b'~');
        format!(
            "{}/{}",
            utf8_percent_encode(&self.service, SEGMENT),
            utf8_percent_encode(&self.slo, SEGMENT)
        )
    }

    /// The id of the grouped SLO an instance id belongs to (itself for any other id).
    pub fn template(&self) -> SloId {
        SloId {
            service: self.service.clone(),
            slo: self.name().to_owned(),
        }
    }
}

/// One service level objective, fully resolved (service labels merged in, defaults applied).
#[derive(Debug, Clone)]
pub struct Slo {
    /// `service/name`.
    pub id: SloId,
    /// Free text for people.
    pub description: Option<String>,
    /// Service labels overlaid with the SLO's own labels.
    pub labels: Labels,
    /// Target fraction of good events (or good slices).
    pub objective: Objective,
    /// The compliance window.
    pub window: Window,
    /// How the budget is counted.
    pub method: BudgetingMethod,
    /// What is measured.
    pub indicator: Indicator,
    /// Burn-rate alert tiers and their guards.
    pub alerting: Alerting,
    /// What a window without any data means.
    pub no_data: NoDataPolicy,
    /// `group_by`: this rule stands for one SLO per label set seen in the data (a template), or
    /// is one of those SLOs (an instance). `None` for a plain SLO.
    pub group: Option<Grouping>,
}

/// The grouping side of an SLO (`group_by` in the rules, see "Grouped SLOs" in docs/rules.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grouping {
    /// A grouped rule as written: no SLO of its own, an instance per label set its selectors'
    /// series carry. Only selector-fed indicators group.
    Template {
        /// The label names whose values tell instances apart, in the order written.
        by: Vec<String>,
        /// Most instances at once; label sets past it are refused (counted, never evaluated).
        max_instances: u32,
    },
    /// One instance: the template's `by` labels and their values (an empty value is a series
    /// without the label, as in PromQL's `sum by`).
    Instance {
        /// `(label, value)` in the template's `by` order.
        values: Vec<(String, String)>,
    },
}

/// Label names burnwatch sets itself on exported series; a rules label with one of these names
/// is not exported rather than duplicated, and `group_by` may not use them.
pub const RESERVED_LABELS: [&str; 8] = [
    "service",
    "slo",
    "window",
    "tier",
    "severity",
    "percentile",
    "result",
    "phase",
];

/// The default of `max_instances`: a label that explodes (a user id instead of a route) is
/// stopped long before it costs the agent its memory, and a thousand routes per rule is more
/// than any dashboard shows.
pub const DEFAULT_MAX_INSTANCES: u32 = 1_000;

/// The hard ceiling of `max_instances` (every instance is a whole SLO, about 13 KiB of counts).
pub const MAX_MAX_INSTANCES: u32 = 100_000;

impl Slo {
    /// True for a grouped rule as written (it has instances, not state of its own).
    pub fn is_template(&self) -> bool {
        matches!(self.group, Some(Grouping::Template { .. }))
    }

    /// The `group_by` labels of a grouped rule (empty for any other SLO).
    pub fn group_by(&self) -> &[String] {
        match &self.group {
            Some(Grouping::Template { by, .. }) => by,
            _ => &[],
        }
    }

    /// The instance of this grouped rule for `values` (one per `group_by` label, in order):
    /// the same objective, window, indicator and alerting, the id
    /// `service/name{label="value",...}` (values escaped as in the exposition format) and the
    /// group labels added to its labels, so every export, alert and notification of it carries
    /// them. A label with an empty value is left off the labels, as Prometheus drops it.
    pub fn instance(&self, values: &[&str]) -> Slo {
        let by = self.group_by();
        let mut slo = self.clone();
        let mut name = String::with_capacity(self.id.slo.len() + 16);
        name.push_str(&self.id.slo);
        name.push('{');
        let mut pairs = Vec::with_capacity(by.len());
        for (i, (label, value)) in by.iter().zip(values).enumerate() {
            if i > 0 {
                name.push(',');
            }
            name.push_str(label);
            name.push_str("=\"");
            for c in value.chars() {
                match c {
                    '\\' => name.push_str("\\\\"),
                    '"' => name.push_str("\\\""),
                    '\n' => name.push_str("\\n"),
                    c => name.push(c),
                }
            }
            name.push('"');
            if !value.is_empty() {
                slo.labels.insert(label.clone(), (*value).to_owned());
            }
            pairs.push((label.clone(), (*value).to_owned()));
        }
        name.push('}');
        slo.id.slo = name;
        slo.group = Some(Grouping::Instance { values: pairs });
        slo
    }
}

/// An objective as a ratio in the open interval (0, 1). Written in YAML as a percentage
/// (`99.9` or `"99.9%"`); 100 is refused because it leaves no error budget.
///
/// Kept in parts per billion so that the error budget is computed from integers: 99.9 gives a
/// budget of exactly `1_000_000 / 1e9`, the float nearest 0.001, where `1.0 - 0.999` gives
/// 0.0010000000000000009 and turns exact burn-rate ties into false alerts. Percentages are kept
/// to 7 decimals (99.9999999%), far beyond any real objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Objective(u64);

/// Why an objective was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ObjectiveError {
    /// 100% leaves no budget.
    #[error(
        "objective 100% leaves no error budget, so every failure is an infinite burn; use 99.99 or lower"
    )]
    Hundred,
    /// Outside (0, 100).
    #[error("objective {0} is outside (0, 100); write a percentage such as 99.9 or \"99.9%\"")]
    OutOfRange(String),
    /// Not a number.
    #[error("objective `{0}` is not a number; write a percentage such as 99.9 or \"99.9%\"")]
    NotANumber(String),
}

/// Parts per billion in one.
const PPB: u64 = 1_000_000_000;

impl Objective {
    /// From a percentage such as 99.9.
    pub fn from_percent(p: f64) -> Result<Objective, ObjectiveError> {
        if !p.is_finite() {
            return Err(ObjectiveError::NotANumber(p.to_string()));
        }
        if p <= 0.0 || p > 100.0 {
            return Err(ObjectiveError::OutOfRange(p.to_string()));
        }
        // p is in (0, 100], so the product is in (0, 1e9] and the cast cannot overflow.
        let ppb = (p * 10_000_000.0).round() as u64;
        if ppb >= PPB {
            return Err(ObjectiveError::Hundred);
        }
        if ppb == 0 {
            return Err(ObjectiveError::OutOfRange(p.to_string()));
        }
        Ok(Objective(ppb))
    }
    /// From text: `99.9`, `99.9%` or ` 99.9 % `.
    pub fn parse(text: &str) -> Result<Objective, ObjectiveError> {
        let t = text.trim();
        let num = t.strip_suffix('%').unwrap_or(t).trim();
        let p: f64 = num
            .parse()
            .map_err(|_| ObjectiveError::NotANumber(text.to_owned()))?;
        Objective::from_percent(p)
    }
    /// The target ratio, e.g. 0.999.
    pub fn ratio(self) -> f64 {
        self.0 as f64 / PPB as f64
    }
    /// The target as a percentage, e.g. 99.9.
    pub fn percent(self) -> f64 {
        self.0 as f64 / 10_000_000.0
    }
    /// The target in parts per billion (99.9% is 999_000_000), for exact arithmetic.
    pub fn ppb(self) -> u64 {
        self.0
    }
    /// The error budget ratio, `1 - objective`, from integers (always > 0): 99.9 gives the
    /// float nearest 0.001.
    pub fn budget(self) -> f64 {
        (PPB - self.0) as f64 / PPB as f64
    }
}

/// The compliance window.
#[derive(Debug, Clone, PartialEq)]
pub enum Window {
    /// The last `Dur` up to now (a whole number of minutes, at least one minute).
    Rolling(Dur),
    /// The current calendar period in a time zone, e.g. this month in Europe/Berlin.
    Calendar {
        /// Month, ISO week (Monday first) or quarter.
        unit: CalendarUnit,
        /// The IANA zone the period boundaries are computed in (default UTC).
        tz: jiff::tz::TimeZone,
        /// The zone's IANA name as written, for display.
        tz_name: String,
    },
}

impl Window {
    /// The nominal length used to derive burn-rate factors: the rolling length, or 30d for a
    /// month, 7d for a week, 90d for a quarter. (The budget in minutes uses the true length of the
    /// current calendar period.)
    pub fn nominal(&self) -> Dur {
        match self {
            Window::Rolling(d) => *d,
            Window::Calendar { unit, .. } => unit.nominal(),
        }
    }
}

/// A calendar period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalendarUnit {
    /// ISO week, starting Monday 00:00.
    Week,
    /// Calendar month, starting on the 1st at 00:00.
    Month,
    /// Calendar quarter, starting 1 Jan, 1 Apr, 1 Jul and 1 Oct at 00:00.
    Quarter,
}

impl CalendarUnit {
    /// Nominal length (7d, 30d, 90d) for burn-rate factors.
    pub fn nominal(self) -> Dur {
        match self {
            CalendarUnit::Week => Dur::from_days(7),
            CalendarUnit::Month => Dur::from_days(30),
            CalendarUnit::Quarter => Dur::from_days(90),
        }
    }
    /// The YAML keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            CalendarUnit::Week => "week",
            CalendarUnit::Month => "month",
            CalendarUnit::Quarter => "quarter",
        }
    }
}

/// How the error budget is counted.
#[derive(Debug, Clone, PartialEq)]
pub enum BudgetingMethod {
    /// Good events over total events (the default).
    Occurrences,
    /// Good time slices over total time slices.
    Timeslices {
        /// Length of one slice (divides one hour evenly; 1m by default).
        slice: Dur,
        /// For ratio, probe and latency-threshold indicators: a slice is good when its own
        /// good/total ratio is at least this (0, 1]. Ignored by latency-percentile indicators,
        /// whose slices are judged by the percentile.
        target: f64,
    },
}

/// What an SLO measures.
#[derive(Debug, Clone)]
pub enum Indicator {
    /// Good (or bad) events over total events, from selectors on scraped counters.
    Ratio {
        /// Which selector the numerator is: `good` or `bad` events.
        numerator: RatioNumerator,
        /// Selector of the numerator counter(s); matching series are summed.
        numerator_selector: Arc<Selector>,
        /// Selector of the total counter(s); matching series are summed.
        total: Arc<Selector>,
    },
    /// Good (or bad) events over total events, read from a Prometheus-compatible query API
    /// (a `sources.prometheus` entry of the agent config) instead of scraped targets; see
    /// [`QueryMode`] for how each read becomes events, and docs/sources.md.
    Query {
        /// The source's name; `None`: the agent's only (or default) Prometheus source.
        source: Option<String>,
        /// Which query the numerator is: `good` or `bad` events.
        numerator: RatioNumerator,
        /// The numerator's PromQL.
        numerator_query: String,
        /// The total's PromQL.
        total_query: String,
    },
    /// Success ratio of a named health-check probe.
    ProbeAvailability {
        /// Name of a probe declared in the rule set.
        probe: String,
    },
    /// Fraction of requests at or under a latency threshold (`le`).
    LatencyThreshold {
        /// Requests at or under this are good.
        threshold: Dur,
        /// Where the latencies come from.
        source: LatencySource,
    },
    /// A percentile of each time slice must be at or under a threshold.
    LatencyPercentile {
        /// The percentile, e.g. 95 for p95.
        percentile: Percentile,
        /// A slice is good when its percentile is at or under this.
        threshold: Dur,
        /// Where the latencies come from.
        source: LatencySource,
    },
}

impl Indicator {
    /// The selectors it reads scraped series with (none for probe-fed indicators).
    pub fn selectors(&self) -> Vec<&Selector> {
        match self {
            Indicator::Ratio {
                numerator_selector,
                total,
                ..
            } => vec![numerator_selector, total],
            Indicator::LatencyThreshold { source, .. }
            | Indicator::LatencyPercentile { source, .. } => match source {
                LatencySource::Histogram { selector, .. } => vec![selector],
                LatencySource::Probe { .. } => Vec::new(),
            },
            Indicator::ProbeAvailability { .. } | Indicator::Query { .. } => Vec::new(),
        }
    }

    /// The query source it reads (`Some(None)`: the default source), if it is query-fed.
    pub fn query_source(&self) -> Option<Option<&str>> {
        match self {
            Indicator::Query { source, .. } => Some(source.as_deref()),
            _ => None,
        }
    }

    /// The probe it reads, if it is probe-fed.
    pub fn probe(&self) -> Option<&str> {
        match self {
            Indicator::ProbeAvailability { probe }
            | Indicator::LatencyThreshold {
                source: LatencySource::Probe { probe },
                ..
            }
            | Indicator::LatencyPercentile {
                source: LatencySource::Probe { probe },
                ..
            } => Some(probe),
            _ => None,
        }
    }

    /// True for the indicators that carry latencies (and so have percentiles to report).
    pub fn is_latency(&self) -> bool {
        matches!(
            self,
            Indicator::LatencyThreshold { .. } | Indicator::LatencyPercentile { .. }
        )
    }
}

/// How the reads of a query indicator's PromQL become events (decided per query by its text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryMode {
    /// The query holds the window placeholder `{{.window}}` (Sloth's and OpenSLO's style): each
    /// read replaces it with the exact time since the previous read and evaluates at the read
    /// instant; the value is the events of that interval, multiplied by its seconds unless the
    /// query uses `increase(` (a per-second rate otherwise, as Sloth writes them). Prometheus
    /// extrapolates at the interval's edges, so the sum of the reads can differ from the
    /// counters' increase (docs/sources.md says by how much).
    Window {
        /// The query is an `increase(...)` (a count), not a rate.
        increase: bool,
    },
    /// No placeholder: the query's result is cumulative counters (e.g. a plain selector such as
    /// `http_requests_total{code=~"5.."}`), read at each interval and tracked per series like
    /// scraped counters (differences, resets), so the events equal the counters' increase
    /// exactly and a restart recounts from the checkpointed values.
    Counter,
}

impl QueryMode {
    /// The mode of a query's text.
    pub fn of(query: &str) -> QueryMode {
        if query.contains("{{") {
            QueryMode::Window {
                increase: query.contains("increase("),
            }
        } else {
            QueryMode::Counter
        }
    }

    /// The query with every `{{ .window }}` placeholder (any spacing) replaced by `range`.
    pub fn with_window(query: &str, range: &str) -> String {
        let mut out = String::with_capacity(query.len());
        let mut rest = query;
        while let Some(open) = rest.find("{{") {
            out.push_str(&rest[..open]);
            match rest[open..].find("}}") {
                Some(close) => {
                    out.push_str(range);
                    rest = &rest[open + close + 2..];
                }
                None => {
                    out.push_str(&rest[open..]);
                    rest = "";
                }
            }
        }
        out.push_str(rest);
        out
    }
}

/// Whether a ratio indicator's numerator counts good or bad events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RatioNumerator {
    /// `good:` was given; bad = total - good.
    Good,
    /// `bad:` was given.
    Bad,
}

/// Where latency observations come from.
#[derive(Debug, Clone)]
pub enum LatencySource {
    /// Total durations of a named probe.
    Probe {
        /// Name of a probe declared in the rule set.
        probe: String,
    },
    /// A scraped classic histogram: its `_bucket{le=...}` and `_count` series.
    Histogram {
        /// Selector of the histogram by base name (no `_bucket` suffix), e.g.
        /// `http_request_duration_seconds{job="api"}`.
        selector: Arc<Selector>,
        /// Bucket edges (seconds) the histogram is declared to have, if given; used to warn when
        /// the threshold is not an edge.
        buckets: Option<Vec<f64>>,
    },
}

/// A percentile in (0, 100), kept in parts per million so rank arithmetic is exact
/// (p99.9 is 999_000 ppm).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Percentile(u32);

impl Percentile {
    /// From a percentage such as 95 or 99.9 (at most 4 decimals are kept).
    pub fn from_percent(p: f64) -> Option<Percentile> {
        if !(p.is_finite() && p > 0.0 && p < 100.0) {
            return None;
        }
        let ppm = (p * 10_000.0).round();
        if ppm <= 0.0 || ppm >= 1_000_000.0 {
            return None;
        }
        Some(Percentile(ppm as u32))
    }
    /// Parts per million.
    pub fn ppm(self) -> u32 {
        self.0
    }
    /// As a quantile in (0, 1).
    pub fn quantile(self) -> f64 {
        self.0 as f64 / 1_000_000.0
    }
    /// The nearest-rank position for `n` observations: the smallest `k` such that at least
    /// `percentile` of the observations are among the first `k` sorted ones, `ceil(p * n)`.
    /// The slice percentile is at or under a threshold exactly when at least this many
    /// observations are at or under it.
    pub fn rank(self, n: u64) -> u64 {
        let num = self.0 as u128 * n as u128;
        num.div_ceil(1_000_000) as u64
    }
}

/// Burn-rate alerting for one SLO.
#[derive(Debug, Clone)]
pub struct Alerting {
    /// The multiwindow tiers, in order (defaults: page_fast, page_slow, ticket_fast, ticket_slow).
    pub tiers: Vec<BurnTier>,
    /// A tier does not fire while its long window holds fewer events (or slices) than this
    /// (low-traffic protection). 0 disables the guard.
    pub min_events: u64,
    /// The `SloErrorBudgetExhausted` alert (budget remaining <= 0); `None` when turned off.
    pub budget_exhausted: Option<AlertRule>,
    /// The `SloNoData` alert (no event counted for `for_`); `None` when turned off.
    pub no_data_alert: Option<AlertRule>,
    /// Flap damping for every alert of the SLO; `None` when turned off.
    pub flap: Option<FlapPolicy>,
    /// The name of the burn-rate alert rules `burnwatch generate prometheus` writes for the SLO
    /// (Sloth's `alerting.name`); `SloBurnRate` when `None`. The agent's own burn-rate alerts
    /// are always `SloBurnRate`, the name its built-in inhibition and the docs' routes match.
    pub alert_name: Option<String>,
}

impl Default for Alerting {
    /// No tiers, no guard, and the default budget, no-data and flap settings: what code that
    /// builds SLOs by hand starts from (`Alerting { tiers, ..Alerting::default() }`).
    fn default() -> Alerting {
        Alerting {
            tiers: Vec::new(),
            min_events: 0,
            budget_exhausted: Some(AlertRule::budget_exhausted_default()),
            no_data_alert: Some(AlertRule::no_data_default()),
            flap: Some(FlapPolicy::default()),
            alert_name: None,
        }
    }
}

/// Settings of one alert that is not a burn tier (budget exhausted, no data, scrape target down).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AlertRule {
    /// Routing word (`page`, `ticket`, ...), the alert's `severity` label.
    pub severity: String,
    /// How long the condition must hold before the alert fires (0 = at once).
    pub for_: Dur,
    /// How long the alert keeps firing after the condition cleared (0 = resolve at once).
    pub keep_firing_for: Dur,
}

impl AlertRule {
    /// `SloErrorBudgetExhausted` by default: ticket, at once.
    pub fn budget_exhausted_default() -> AlertRule {
        AlertRule {
            severity: "ticket".to_owned(),
            for_: Dur(0),
            keep_firing_for: Dur(0),
        }
    }
    /// `SloNoData` by default: ticket after 30 minutes without any event.
    pub fn no_data_default() -> AlertRule {
        AlertRule {
            severity: "ticket".to_owned(),
            for_: Dur::from_mins(30),
            keep_firing_for: Dur(0),
        }
    }
    /// `ScrapeTargetDown` by default: ticket after 5 minutes down.
    pub fn target_down_default() -> AlertRule {
        AlertRule {
            severity: "ticket".to_owned(),
            for_: Dur::from_mins(5),
            keep_firing_for: Dur(0),
        }
    }
}

/// Flap damping: an alert that changes between firing and resolved more than `max_changes` times
/// within `window` is held firing (reported as flapping, not re-sent) until its condition has
/// been stable for `hold`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FlapPolicy {
    /// The sliding window the changes are counted in (default 1h).
    pub window: Dur,
    /// Changes allowed within `window`; one more makes the alert flapping (default 4).
    pub max_changes: u32,
    /// How long the condition must stay unchanged before a flapping alert settles (default 30m).
    pub hold: Dur,
}

impl Default for FlapPolicy {
    fn default() -> FlapPolicy {
        FlapPolicy {
            window: Dur::HOUR,
            max_changes: 4,
            hold: Dur::from_mins(30),
        }
    }
}

/// One multiwindow, multi-burn-rate alert tier: fires when the burn rate over both the long and
/// the short window is above `factor` (for `for_` in a row).
#[derive(Debug, Clone)]
pub struct BurnTier {
    /// Tier name, e.g. `page_fast`; unique within the SLO.
    pub name: String,
    /// `page` or `ticket` (or any routing word the user chose).
    pub severity: String,
    /// The long window, e.g. 1h.
    pub long: Dur,
    /// The short window, e.g. 5m (long/12 by default).
    pub short: Dur,
    /// Burn-rate threshold: budget fraction x nominal window / long window (14.4 for 2% of a 30d
    /// budget in 1h).
    pub factor: f64,
    /// How long the condition must hold before the tier fires (0 = at once).
    pub for_: Dur,
    /// How long the tier's alert keeps firing after the condition cleared (0 = resolve at once).
    pub keep_firing_for: Dur,
    /// Extra labels for the alert.
    pub labels: Labels,
    /// Annotations of the tier's alert, added to the ones burnwatch computes (a name both have
    /// takes the user's text): a runbook line, a team's own summary.
    pub annotations: Labels,
}

/// What a window with no data at all means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum NoDataPolicy {
    /// No data is neither good nor bad: SLI reported as 1, burn 0, tiers quiet (the default).
    #[default]
    Ignore,
    /// No data counts as meeting the objective (for timeslices: empty slices are good).
    Good,
    /// No data counts as failing (for timeslices: empty slices are bad; for occurrences: an empty
    /// window burns as if every event failed).
    Bad,
}

/// A health check declared in a rules file (run by the agent; see `burnwatch run`).
#[derive(Debug, Clone)]
pub struct Probe {
    /// The file it was declared in.
    pub file: PathBuf,
    /// Unique name, used by `probe:` in indicators.
    pub name: String,
    /// The service of the rules document that declares it (the `service` label of its alerts).
    pub service: String,
    /// What to check.
    pub kind: ProbeKind,
    /// Time between two checks.
    pub interval: Dur,
    /// Give-up time for one check; below `interval`.
    pub timeout: Dur,
    /// Labels added to the probe's exports.
    pub labels: Labels,
    /// Names of probes this one depends on (their failure inhibits this one's alerts).
    pub depends_on: Vec<String>,
    /// The `ProbeDown` alert; `None` when turned off (`alert: false`).
    pub alert: Option<ProbeAlert>,
}

/// When a probe counts as down, and how its `ProbeDown` alert is sent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProbeAlert {
    /// What makes the probe down.
    pub trigger: ProbeTrigger,
    /// Successes in a row that make a down probe up again (Gatus' success-threshold; default 2).
    pub successes: u32,
    /// The `severity` label (default `page`).
    pub severity: String,
    /// How long the probe must be down before the alert fires (default 0: the trigger already
    /// waits for failures).
    pub for_: Dur,
    /// How long the alert keeps firing after the probe is up again (default 0).
    pub keep_firing_for: Dur,
    /// Runbook URL for the alert.
    pub runbook: Option<String>,
    /// Dashboard URL for the alert.
    pub dashboard: Option<String>,
    /// One-line summary replacing the generated one.
    pub summary: Option<String>,
    /// Flap damping; `None` when turned off.
    pub flap: Option<FlapPolicy>,
}

impl Default for ProbeAlert {
    /// Gatus' defaults: down after 3 failures in a row, up after 2 successes in a row; page.
    fn default() -> ProbeAlert {
        ProbeAlert {
            trigger: ProbeTrigger::Consecutive(3),
            successes: 2,
            severity: "page".to_owned(),
            for_: Dur(0),
            keep_firing_for: Dur(0),
            runbook: None,
            dashboard: None,
            summary: None,
            flap: Some(FlapPolicy::default()),
        }
    }
}

/// What makes a probe down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ProbeTrigger {
    /// This many failed checks in a row (`failures: N`).
    Consecutive(u32),
    /// At least `failures` failed checks among the newest `of` (`failures: m, of: n`).
    OutOf {
        /// Failed checks needed.
        failures: u32,
        /// Checks looked at.
        of: u32,
    },
    /// Every check failed since the first failure at least this long ago (`failing_for: 2m`).
    FailingFor(Dur),
}

/// The protocol of a probe.
#[derive(Debug, Clone)]
pub enum ProbeKind {
    /// An HTTP(S) request.
    Http(HttpProbe),
    /// A TCP connect, optionally sending a line and expecting a reply.
    Tcp {
        /// `host:port`.
        address: String,
        /// Line to send after connecting.
        send: Option<String>,
        /// Regex the first reply line must match.
        expect: Option<Arc<regex::Regex>>,
    },
    /// A DNS resolution of a host name.
    Dns {
        /// Name to resolve.
        name: String,
        /// Record type, `A` or `AAAA` (default `A`).
        record: String,
    },
}

/// An HTTP probe.
#[derive(Debug, Clone)]
pub struct HttpProbe {
    /// `http://` or `https://` URL.
    pub url: String,
    /// Request method (default GET).
    pub method: String,
    /// Request headers.
    pub headers: BTreeMap<String, String>,
    /// Request body.
    pub body: Option<String>,
    /// Acceptable status codes (default 200-299).
    pub expect_status: Vec<StatusRange>,
    /// The body must match this regex.
    pub body_matches: Option<Arc<regex::Regex>>,
    /// The body must not match this regex.
    pub body_not_matches: Option<Arc<regex::Regex>>,
    /// Follow redirects (default true).
    pub follow_redirects: bool,
    /// Verify TLS certificates (default true).
    pub tls_verify: bool,
    /// Extra CA bundle (PEM) to trust.
    pub ca_file: Option<PathBuf>,
}

/// An inclusive range of HTTP status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRange {
    /// Lowest accepted code.
    pub lo: u16,
    /// Highest accepted code.
    pub hi: u16,
}

/// A Prometheus-format metrics endpoint to scrape.
#[derive(Debug, Clone)]
pub struct ScrapeTarget {
    /// The file it was declared in.
    pub file: PathBuf,
    /// Unique name.
    pub name: String,
    /// The service of the rules document that declares it (the `service` label of its alerts).
    pub service: String,
    /// `http://` or `https://` URL of the metrics page.
    pub url: String,
    /// Time between two scrapes.
    pub interval: Dur,
    /// Give-up time; below `interval`.
    pub timeout: Dur,
    /// Largest accepted body in bytes (after decompression).
    pub body_limit: u64,
    /// Largest accepted number of samples.
    pub sample_limit: u64,
    /// Labels added to the target's exports.
    pub labels: Labels,
    /// The `ScrapeTargetDown` alert; `None` when turned off (`alert: false`).
    pub alert: Option<AlertRule>,
    /// Flap damping of that alert; `None` when turned off.
    pub flap: Option<FlapPolicy>,
}

/// The SRE Workbook's four default tiers as (name, severity, budget consumed, long window).
/// Short windows are long/12.
pub const DEFAULT_TIERS: [(&str, &str, f64, Dur); 4] = [
    ("page_fast", "page", 0.02, Dur::HOUR),
    ("page_slow", "page", 0.05, Dur::from_hours(6)),
    ("ticket_fast", "ticket", 0.10, Dur::DAY),
    ("ticket_slow", "ticket", 0.10, Dur::from_days(3)),
];

/// Burn-rate factor for consuming `budget_fraction` of the budget of a `nominal` window within
/// `long`: `budget_fraction x nominal / long`. For 2% of 30d in 1h that is 14.4; of 28d, 13.44.
pub fn burn_factor(budget_fraction: f64, nominal: Dur, long: Dur) -> f64 {
    // Multiply before dividing, in the order Sloth uses, so 30d gives exactly 14.4/6/3/1.
    budget_fraction * 100.0 * (nominal.millis() as f64 / 3_600_000.0)
        / 100.0
        / (long.millis() as f64 / 3_600_000.0)
}

/// The default tiers for a window: the four Workbook tiers, minus any whose long window is longer
/// than the window itself (a 3d tier makes no sense for a 1d SLO).
pub fn default_tiers(window: &Window) -> Vec<BurnTier> {
    let nominal = window.nominal();
    DEFAULT_TIERS
        .iter()
        .filter(|(_, _, _, long)| *long <= nominal)
        .map(|&entry| default_tier(entry, nominal))
        .collect()
}

/// One entry of [`DEFAULT_TIERS`] as a tier for a window of `nominal` length: short window
/// long/12, factor from [`burn_factor`], no `for`, no labels.
pub fn default_tier(
    (name, severity, fraction, long): (&str, &str, f64, Dur),
    nominal: Dur,
) -> BurnTier {
    BurnTier {
        name: name.to_owned(),
        severity: severity.to_owned(),
        long,
        short: Dur(long.millis() / 12),
        factor: burn_factor(fraction, nominal, long),
        for_: Dur(0),
        keep_firing_for: Dur(0),
        labels: Labels::new(),
        annotations: Labels::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workbook_factors() {
        let f = |d: u64| -> Vec<f64> {
            default_tiers(&Window::Rolling(Dur::from_days(d)))
                .iter()
                .map(|t| t.factor)
                .collect()
        };
        let close = |a: &[f64], b: &[f64]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12)
        };
        assert!(close(&f(30), &[14.4, 6.0, 3.0, 1.0]), "{:?}", f(30));
        assert!(
            close(&f(28), &[13.44, 5.6, 2.8, 28.0 * 24.0 * 0.1 / 72.0]),
            "{:?}",
            f(28)
        );
        let t = default_tiers(&Window::Rolling(Dur::from_days(30)));
        let shorts: Vec<Dur> = t.iter().map(|t| t.short).collect();
        assert_eq!(
            shorts,
            vec![
                Dur::from_mins(5),
                Dur::from_mins(30),
                Dur::from_hours(2),
                Dur::from_hours(6)
            ]
        );
    }

    #[test]
    fn objective_bounds() {
        assert_eq!(Objective::parse("99.9%").unwrap().percent(), 99.9);
        assert_eq!(Objective::parse("99.9").unwrap().budget(), 0.001);
        assert_eq!(Objective::parse("99.95").unwrap().budget(), 0.0005);
        assert_eq!(Objective::parse("99").unwrap().budget(), 0.01);
        assert_eq!(Objective::parse("99.9").unwrap().ratio(), 0.999);
        assert_eq!(
            Objective::parse("99.99999999"),
            Err(ObjectiveError::Hundred)
        );
        assert_eq!(Objective::parse("100"), Err(ObjectiveError::Hundred));
        assert!(Objective::parse("0").is_err());
        assert!(Objective::parse("101").is_err());
        assert!(Objective::parse("abc").is_err());
    }

    #[test]
    fn percentile_rank() {
        let p95 = Percentile::from_percent(95.0).unwrap();
        assert_eq!(p95.rank(100), 95);
        assert_eq!(p95.rank(101), 96);
        assert_eq!(p95.rank(1), 1);
        assert_eq!(Percentile::from_percent(99.9).unwrap().ppm(), 999_000);
    }

    #[test]
    fn an_instance_id_reads_back_its_values_whatever_they_hold() {
        let rules = crate::rules::load_str(
            "r.yaml",
            "version: burnwatch/v1\nservice: shop\nlabels: {team: pay}\nslos:\n  - name: routes\n    objective: 99\n    group_by: [route, code]\n    indicator: {ratio: {bad: 'x{code=\"500\"}', total: x}}\n",
        )
        .expect("rules");
        let template = rules.slos().next().expect("one");
        assert!(template.is_template());
        for value in [
            "/api/cart",
            "a\"b",
            "c\\d",
            "line\nbreak",
            "x},y=\"z",
            "",
            "ünï",
        ] {
            let slo = template.instance(&[value, "200"]);
            assert!(slo.id.is_instance() && !slo.is_template());
            assert_eq!(slo.id.name(), "routes");
            assert_eq!(slo.id.template(), template.id);
            assert_eq!(
                slo.id.instance_values(),
                Some(vec![
                    ("route".to_owned(), value.to_owned()),
                    ("code".to_owned(), "200".to_owned())
                ]),
                "{}",
                slo.id
            );
            // Empty values are no label, as in Prometheus; the service's labels stay.
            assert_eq!(
                slo.labels.get("route").map(String::as_str),
                Some(value).filter(|v| !v.is_empty())
            );
            assert_eq!(slo.labels.get("team").map(String::as_str), Some("pay"));
            // One `/` between service and SLO; nothing of the value breaks the path.
            let path = slo.id.url_path();
            assert_eq!(path.matches('/').count(), 1, "{path}");
            assert!(!path.contains(['{', '"', '}', '\n']), "{path}");
        }
        assert_eq!(
            template.instance(&["/a", "500"]).id.to_string(),
            "shop/routes{route=\"/a\",code=\"500\"}"
        );
        assert_eq!(
            template.instance(&["/a", "500"]).id.url_path(),
            "shop/routes%7Broute%3D%22%2Fa%22%2Ccode%3D%22500%22%7D"
        );
        assert_eq!(template.id.instance_values(), None);
        assert_eq!(template.id.name(), "routes");
    }
}
