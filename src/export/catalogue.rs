//! The metric catalogue: every family burnwatch exports, once. Each row says a family's name,
//! type, unit, help, labels and how to read its samples off the published state
//! ([`AgentSnapshot`] and [`AlertingView`]); the `/metrics` page ([`super::prometheus`]), the
//! OTLP push ([`super::otlp`]) and the tables of `docs/metrics.md` ([`doc_table`]) are all
//! rendered from [`FAMILIES`], so a family cannot be on one and missing from another, or carry
//! another name, unit or label there. Adding a family is one row here plus its reader. Each row
//! also says which of its samples the compact series set (`export.series`, the default) keeps
//! ([`Compact`]); every exporter emits through [`Family::emit`], which applies it.
//!
//! Names are the Prometheus family names; a counter's samples are `<name>_total` on the page
//! and an OTLP monotonic sum named `<name>`. Units are UCUM for OTLP, chosen so that
//! Prometheus' own OTLP translation (unit suffix only when not already in the name, `_total`
//! for sums) arrives at the page's names. A family's labels are its subject's (an SLO's
//! `service`, `slo` and rules labels; a probe's `service`, `probe`; ...) then its own, in that
//! order. Non-finite values are left out here, for every exporter at once.
//!
//! Pure: reads snapshots, no I/O, no clock.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::SeriesSet;
use crate::export::text::{Kind, Value};
use crate::export::{alert_state_value, percentile_points, rule_labels, window_name};
use crate::notify::delivery::{BreakerState, DeliveryError};
use crate::notify::dispatch::SuppressionState;
use crate::notify::silence::SilenceState;
use crate::notify::{NotifyReason, SuppressReason};
use crate::rules::model::{Service, Slo, Window};
use crate::slo::engine::{SloReport, WindowReport};
use crate::time::Dur;
use crate::view::{AgentSnapshot, AlertingView, GroupStatus, Lag, ProbeStatus, TargetStatus};

/// Whose labels start every sample of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Subject {
    /// An SLO: `service`, `slo`, then the rules' labels (see [`rule_labels`]).
    Slo,
    /// A probe: `service` (of the declaring document) and `probe`.
    Probe,
    /// A scrape target: `service` and `target`.
    Target,
    /// The agent itself: no labels of its own.
    Agent,
    /// The alerting task (present only when alerting runs).
    Alerting,
}

impl Subject {
    /// Every subject, in the order of the docs.
    pub const ALL: [Subject; 5] = [
        Subject::Slo,
        Subject::Probe,
        Subject::Target,
        Subject::Agent,
        Subject::Alerting,
    ];

    /// The subject's own label names (an SLO's rules labels come after these).
    pub fn labels(self) -> &'static [&'static str] {
        match self {
            Subject::Slo => &["service", "slo"],
            Subject::Probe => &["service", "probe"],
            Subject::Target => &["service", "target"],
            Subject::Agent | Subject::Alerting => &[],
        }
    }

    /// The key of the subject's table in `docs/metrics.md`.
    pub fn key(self) -> &'static str {
        match self {
            Subject::Slo => "slo",
            Subject::Probe => "probe",
            Subject::Target => "target",
            Subject::Agent => "agent",
            Subject::Alerting => "alerting",
        }
    }
}

/// Where the samples of a family go: a page writer or an OTLP observer.
pub trait Sink {
    /// One sample: the labels of SLO row `slo` (an index into [`Sources::rows`]) when given,
    /// then `labels`, in this order.
    fn sample(&mut self, slo: Option<usize>, labels: &[(&'static str, &str)], value: Value);
}

/// Which of a family's samples the compact series set ([`SeriesSet::Compact`], the default)
/// carries; the full set carries every sample of every family. The compact set is what the
/// shipped dashboards, alerting on burn rates and budget reports read: per-window families
/// keep the windows those use, and what can be derived from the rest is left to the full set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compact {
    /// Every sample.
    All,
    /// The SLO window's samples (`window` = the SLO window's name) only.
    SloWindow,
    /// The alert windows' samples (every `window` but the SLO window's) only.
    AlertWindows,
    /// None: the family is in the full set only.
    None,
}

impl Compact {
    /// What the docs' `compact` column says.
    pub fn doc(self) -> &'static str {
        match self {
            Compact::All => "yes",
            Compact::SloWindow => "SLO window",
            Compact::AlertWindows => "alert windows",
            Compact::None => "no",
        }
    }
}

/// One exported family.
#[derive(Debug)]
pub struct Family {
    /// Family name (a counter's without `_total`).
    pub name: &'static str,
    /// Which samples the compact series set keeps.
    pub compact: Compact,
    /// Gauge or counter.
    pub kind: Kind,
    /// UCUM unit for OTLP (`1` ratios, `s` seconds, `{event}` counts; empty: none).
    pub unit: &'static str,
    /// One line of help (HELP and OTLP description; the docs' meaning column).
    pub help: &'static str,
    /// Whose labels come first.
    pub subject: Subject,
    /// The family's own labels after the subject's, each with its values for the docs
    /// (empty when open-ended).
    pub labels: &'static [(&'static str, &'static str)],
    /// Emits every sample of the family.
    pub points: fn(&Sources<'_>, &mut dyn Sink),
}

impl Family {
    /// Emits the family's samples that the series set of `s` carries (see [`Compact`]). Every
    /// exporter emits through here, so `/metrics` and OTLP carry the same series.
    pub fn emit(&self, s: &Sources<'_>, out: &mut dyn Sink) {
        let slo_window = match (s.series, self.compact) {
            (SeriesSet::Full, _) | (_, Compact::All) => {
                (self.points)(s, out);
                return;
            }
            (_, Compact::None) => return,
            (_, Compact::SloWindow) => true,
            (_, Compact::AlertWindows) => false,
        };
        let mut windows = WindowFilter {
            rows: &s.rows,
            slo_window,
            out,
        };
        (self.points)(s, &mut windows);
    }

    /// Whether the compact series set carries any of the family's samples.
    pub fn in_compact(&self) -> bool {
        self.compact != Compact::None
    }

    /// The name of the family's samples on the page: `_total` added to a counter's.
    pub fn sample_name(&self) -> Cow<'static, str> {
        match self.kind {
            Kind::Gauge => Cow::Borrowed(self.name),
            Kind::Counter => Cow::Owned(format!("{}_total", self.name)),
        }
    }
}

/// Passes on the samples of the SLO window (`slo_window`) or of the alert windows only,
/// told apart by the `window` label against the row's SLO window name.
struct WindowFilter<'a, 'o> {
    rows: &'a [SloRow<'a>],
    slo_window: bool,
    out: &'o mut dyn Sink,
}

impl Sink for WindowFilter<'_, '_> {
    fn sample(&mut self, slo: Option<usize>, labels: &[(&'static str, &str)], value: Value) {
        let window = labels.iter().find(|(k, _)| *k == "window").map(|(_, v)| *v);
        let row = slo.and_then(|i| self.rows.get(i));
        if let (Some(w), Some(row)) = (window, row)
            && (w == row.window.as_ref()) != self.slo_window
        {
            return;
        }
        self.out.sample(slo, labels, value);
    }
}

/// One SLO report with its rules.
#[derive(Debug)]
pub struct SloRow<'a> {
    /// The newest report.
    pub report: &'a SloReport,
    /// The service that declares it.
    pub service: &'a Service,
    /// The SLO's rules.
    pub slo: &'a Slo,
    /// The SLO window's `window` label (shared by every SLO of the same window).
    pub window: Arc<str>,
}

impl SloRow<'_> {
    /// `service`, `slo` and the rules' labels, in this order.
    pub fn labels(&self) -> Vec<(&str, &str)> {
        let mut v = vec![
            ("service", self.slo.id.service.as_str()),
            ("slo", self.slo.id.name()),
        ];
        v.extend(rule_labels(self.service, self.slo));
        v
    }
}

/// What one export reads: one snapshot, one alerting view, and the SLO rows of the snapshot.
#[derive(Debug)]
pub struct Sources<'a> {
    /// The evaluation snapshot.
    pub snap: &'a AgentSnapshot,
    /// The alerting task's view, when alerting runs.
    pub alerting: Option<&'a AlertingView>,
    /// Every SLO report that has its rules, in snapshot order.
    pub rows: Vec<SloRow<'a>>,
    /// Which series of each family are emitted ([`Family::emit`]).
    pub series: SeriesSet,
    /// Alert window lengths as `window` labels, each formatted once.
    names: BTreeMap<Dur, String>,
}

impl<'a> Sources<'a> {
    /// The sources of one export of the `series` set.
    pub fn new(
        snap: &'a AgentSnapshot,
        alerting: Option<&'a AlertingView>,
        series: SeriesSet,
    ) -> Sources<'a> {
        // Window names are formatted once per distinct window, not once per SLO and window:
        // at 100,000 SLOs that formatting was a good part of an export.
        // (A rule set has a handful of distinct SLO windows.)
        let mut slo_windows: Vec<(&Window, Arc<str>)> = Vec::new();
        let rows: Vec<SloRow<'a>> = snap
            .slo_rows()
            .into_iter()
            .map(|(report, service, slo)| {
                let window = match slo_windows.iter().find(|(w, _)| **w == slo.window) {
                    Some((_, name)) => name.clone(),
                    None => {
                        let name: Arc<str> = Arc::from(window_name(&slo.window).as_ref());
                        slo_windows.push((&slo.window, name.clone()));
                        name
                    }
                };
                SloRow {
                    report,
                    service,
                    slo,
                    window,
                }
            })
            .collect();
        let mut names = BTreeMap::new();
        for w in rows.iter().flat_map(|r| &r.report.alert_windows) {
            names
                .entry(w.length)
                .or_insert_with(|| w.length.to_string());
        }
        Sources {
            snap,
            alerting,
            rows,
            series,
            names,
        }
    }

    /// Every window of row `i` as (`window` label, report): the SLO window, then its alert
    /// windows.
    pub fn windows(&self, i: usize) -> impl Iterator<Item = (&str, &WindowReport)> {
        let row = &self.rows[i];
        std::iter::once((row.window.as_ref(), &row.report.window)).chain(
            row.report
                .alert_windows
                .iter()
                .map(|w| (self.names.get(&w.length).map_or("", String::as_str), w)),
        )
    }
}

/// A gauge per grouped rule (`service`, `slo`).
fn group_gauge(s: &Sources<'_>, out: &mut dyn Sink, value: fn(&GroupStatus) -> f64) {
    for g in &s.snap.groups {
        let l = [
            ("service", g.id.service.as_str()),
            ("slo", g.id.slo.as_str()),
        ];
        gauge(out, None, &l, value(g));
    }
}

/// A counter per grouped rule (`service`, `slo`).
fn group_count(s: &Sources<'_>, out: &mut dyn Sink, value: fn(&GroupStatus) -> u64) {
    for g in &s.snap.groups {
        let l = [
            ("service", g.id.service.as_str()),
            ("slo", g.id.slo.as_str()),
        ];
        count(out, None, &l, value(g));
    }
}

fn gauge(out: &mut dyn Sink, slo: Option<usize>, labels: &[(&'static str, &str)], v: f64) {
    if v.is_finite() {
        out.sample(slo, labels, Value::Gauge(v));
    }
}

fn count(out: &mut dyn Sink, slo: Option<usize>, labels: &[(&'static str, &str)], n: u64) {
    out.sample(slo, labels, Value::Count(n));
}

fn per_slo(s: &Sources<'_>, out: &mut dyn Sink, f: fn(&SloRow<'_>) -> Option<f64>) {
    for (i, row) in s.rows.iter().enumerate() {
        if let Some(v) = f(row) {
            gauge(out, Some(i), &[], v);
        }
    }
}

fn per_window(s: &Sources<'_>, out: &mut dyn Sink, f: fn(&WindowReport) -> f64) {
    for i in 0..s.rows.len() {
        for (n, w) in s.windows(i) {
            gauge(out, Some(i), &[("window", n)], f(w));
        }
    }
}

fn per_probe(s: &Sources<'_>, out: &mut dyn Sink, f: fn(&ProbeStatus) -> Option<Value>) {
    for p in &s.snap.probes {
        if let Some(v) = f(p) {
            let labels = [("service", p.service.as_str()), ("probe", p.name.as_str())];
            match v {
                Value::Gauge(g) => gauge(out, None, &labels, g),
                Value::Count(n) => count(out, None, &labels, n),
            }
        }
    }
}

/// A count of every probe's lag ([`AgentSnapshot::pace`]), 0 for a probe without a run yet.
fn per_probe_lag(s: &Sources<'_>, out: &mut dyn Sink, f: fn(&Lag) -> u64) {
    for p in &s.snap.probes {
        let n = s.snap.pace.probes.get(&p.name).map_or(0, f);
        let labels = [("service", p.service.as_str()), ("probe", p.name.as_str())];
        count(out, None, &labels, n);
    }
}

/// A count of every scrape target's lag, 0 for a target without a run yet.
fn per_target_lag(s: &Sources<'_>, out: &mut dyn Sink, f: fn(&Lag) -> u64) {
    for t in &s.snap.targets {
        let n = s.snap.pace.targets.get(&t.name).map_or(0, f);
        let labels = [("service", t.service.as_str()), ("target", t.name.as_str())];
        count(out, None, &labels, n);
    }
}

fn per_target(s: &Sources<'_>, out: &mut dyn Sink, f: fn(&TargetStatus) -> Value) {
    for t in &s.snap.targets {
        let labels = [("service", t.service.as_str()), ("target", t.name.as_str())];
        match f(t) {
            Value::Gauge(g) => gauge(out, None, &labels, g),
            Value::Count(n) => count(out, None, &labels, n),
        }
    }
}

/// Why a notification is sent, as counted.
const NOTIFY_REASONS: [NotifyReason; 5] = [
    NotifyReason::First,
    NotifyReason::NewAlerts,
    NotifyReason::SomeResolved,
    NotifyReason::AllResolved,
    NotifyReason::Repeat,
];

/// Why a delivery failed for good, as counted (one value of each kind; superseded ones are
/// not failures and have their own family).
fn failure_reasons() -> [&'static str; 3] {
    [
        DeliveryError::Permanent(String::new()),
        DeliveryError::RetriesExhausted {
            attempts: 0,
            last: String::new(),
        },
        DeliveryError::Shutdown { last: None },
    ]
    .map(|e| e.key())
}

/// Every configured (receiver, integration kind) pair with its queued notifications and open
/// breakers summed over the integrations of that kind.
fn integration_pairs(v: &AlertingView) -> BTreeMap<(&str, &'static str), (usize, u64)> {
    let mut pairs: BTreeMap<(&str, &'static str), (usize, u64)> = BTreeMap::new();
    for s in &v.integrations {
        let e = pairs.entry((s.receiver.as_str(), s.kind)).or_default();
        e.0 += s.queue_len;
        e.1 += u64::from(s.breaker == BreakerState::Open);
    }
    pairs
}

/// A per-(receiver, kind, reason) counter with a row for every configured pair and every
/// reason, at 0 until it happens, so rates work from the first export.
fn per_reason(
    v: &AlertingView,
    out: &mut dyn Sink,
    counted: &BTreeMap<(String, &'static str, &'static str), u64>,
    reasons: &[&'static str],
) {
    let mut rows: BTreeMap<(&str, &str, &str), u64> = integration_pairs(v)
        .keys()
        .flat_map(|(r, i)| reasons.iter().map(move |why| ((*r, *i, *why), 0)))
        .collect();
    for ((r, i, why), n) in counted {
        *rows.entry((r.as_str(), i, why)).or_default() += n;
    }
    for ((r, i, why), n) in rows {
        count(
            out,
            None,
            &[("receiver", r), ("integration", i), ("reason", why)],
            n,
        );
    }
}

/// Every exported family, in page order.
pub static FAMILIES: &[Family] = &[
    // ---- SLOs ----
    Family {
        name: "burnwatch_slo_objective_ratio",
        compact: Compact::All,
        kind: Kind::Gauge,
        unit: "1",
        help: "The SLO's objective as a ratio (99.9% is 0.999); window is the SLO window",
        subject: Subject::Slo,
        labels: &[("window", "")],
        points: |s, out| {
            for (i, row) in s.rows.iter().enumerate() {
                gauge(
                    out,
                    Some(i),
                    &[("window", row.window.as_ref())],
                    row.slo.objective.ratio(),
                );
            }
        },
    },
    Family {
        name: "burnwatch_slo_sli_ratio",
        compact: Compact::SloWindow,
        kind: Kind::Gauge,
        unit: "1",
        help: "Good events over all events in the window (the SLO window and each alert window); 1 without traffic, 0 under no_data: bad",
        subject: Subject::Slo,
        labels: &[("window", "")],
        points: |s, out| per_window(s, out, |w| w.sli),
    },
    Family {
        name: "burnwatch_slo_burn_rate",
        compact: Compact::AlertWindows,
        kind: Kind::Gauge,
        unit: "",
        help: "Error rate in the window divided by the error budget rate (1 spends the budget exactly over the SLO window)",
        subject: Subject::Slo,
        labels: &[("window", "")],
        points: |s, out| per_window(s, out, |w| w.burn_rate),
    },
    Family {
        name: "burnwatch_slo_window_events",
        compact: Compact::SloWindow,
        kind: Kind::Gauge,
        unit: "{event}",
        help: "Events in the window (exact counts at bucket resolution)",
        subject: Subject::Slo,
        labels: &[("window", "")],
        points: |s, out| per_window(s, out, |w| w.total as f64),
    },
    Family {
        name: "burnwatch_slo_window_coverage_ratio",
        compact: Compact::SloWindow,
        kind: Kind::Gauge,
        unit: "1",
        help: "Share of the window after the SLO's first collection (0 before it, 1 once collected for the whole window); tier burn rates and the budget count the window's events against its whole budget",
        subject: Subject::Slo,
        labels: &[("window", "")],
        points: |s, out| per_window(s, out, |w| w.coverage),
    },
    Family {
        name: "burnwatch_slo_error_budget_remaining_ratio",
        compact: Compact::All,
        kind: Kind::Gauge,
        unit: "1",
        help: "Share of the whole SLO window's error budget left: the bad events seen against the budget of the whole window (negative when overspent)",
        subject: Subject::Slo,
        labels: &[],
        points: |s, out| per_slo(s, out, |r| Some(r.report.budget.remaining)),
    },
    Family {
        name: "burnwatch_slo_error_budget_seconds",
        compact: Compact::None,
        kind: Kind::Gauge,
        unit: "s",
        help: "The SLO window's error budget as time (2592 for 99.9% of 30 days: 43m12s)",
        subject: Subject::Slo,
        labels: &[],
        points: |s, out| per_slo(s, out, |r| Some(r.report.budget.total_minutes * 60.0)),
    },
    Family {
        name: "burnwatch_slo_error_budget_exhaustion_seconds",
        compact: Compact::All,
        kind: Kind::Gauge,
        unit: "s",
        help: "Time until the budget is spent at the 1h burn rate (absent when not burning)",
        subject: Subject::Slo,
        labels: &[],
        points: |s, out| {
            per_slo(s, out, |r| {
                r.report.time_to_exhaustion.map(|d| d.as_secs_f64())
            })
        },
    },
    Family {
        name: "burnwatch_slo_events",
        compact: Compact::All,
        kind: Kind::Counter,
        unit: "{event}",
        help: "Events counted since the agent started, by result (resets on restart, like any counter)",
        subject: Subject::Slo,
        labels: &[("result", "`good`/`bad`")],
        points: |s, out| {
            for (i, row) in s.rows.iter().enumerate() {
                let (good, bad) = s
                    .snap
                    .events_total
                    .get(&row.report.id)
                    .copied()
                    .unwrap_or_default();
                count(out, Some(i), &[("result", "good")], good);
                count(out, Some(i), &[("result", "bad")], bad);
            }
        },
    },
    Family {
        name: "burnwatch_slo_latency_seconds",
        compact: Compact::SloWindow,
        kind: Kind::Gauge,
        unit: "s",
        help: "Latency percentiles per window of latency SLOs: probe-fed from a DDSketch (1% relative error), histogram-fed interpolated within the bucket as histogram_quantile does; absent without observations",
        subject: Subject::Slo,
        labels: &[("window", ""), ("percentile", "`50`/`90`/`95`/`99`")],
        points: |s, out| {
            for i in 0..s.rows.len() {
                for (n, w) in s.windows(i) {
                    let Some(q) = &w.latency else { continue };
                    for (p, v) in percentile_points(q) {
                        gauge(out, Some(i), &[("window", n), ("percentile", p)], v);
                    }
                }
            }
        },
    },
    Family {
        name: "burnwatch_slo_alert_state",
        compact: Compact::All,
        kind: Kind::Gauge,
        unit: "",
        help: "Burn-rate tier alert state, as its lifecycle decided it (the state /api/v1/alerts and the notifications show): 0 not firing, 1 pending, 2 firing (also held by keep_firing_for or flap damping); absent without alerting",
        subject: Subject::Slo,
        labels: &[("tier", ""), ("severity", "")],
        points: |s, out| {
            // The lifecycles decide the state; without the alerting task none is decided.
            let Some(v) = s.alerting else { return };
            for (i, row) in s.rows.iter().enumerate() {
                for t in &row.report.tiers {
                    gauge(
                        out,
                        Some(i),
                        &[("tier", t.name.as_str()), ("severity", t.severity.as_str())],
                        alert_state_value(v.tiers.get(&row.report.id, &t.name)),
                    );
                }
            }
        },
    },
    // ---- probes, named after blackbox_exporter's probe_* series ----
    Family {
        name: "burnwatch_probe_success",
        compact: Compact::All,
        kind: Kind::Gauge,
        unit: "",
        help: "Whether the newest check passed (1) or failed (0); blackbox_exporter's probe_success",
        subject: Subject::Probe,
        labels: &[],
        points: |s, out| {
            per_probe(s, out, |p| {
                p.last
                    .as_ref()
                    .map(|l| Value::Gauge(f64::from(u8::from(l.success))))
            })
        },
    },
    Family {
        name: "burnwatch_probe_duration_seconds",
        compact: Compact::All,
        kind: Kind::Gauge,
        unit: "s",
        help: "Duration of the newest check; blackbox_exporter's probe_duration_seconds",
        subject: Subject::Probe,
        labels: &[],
        points: |s, out| {
            per_probe(s, out, |p| {
                p.last.as_ref().map(|l| Value::Gauge(l.duration_secs))
            })
        },
    },
    Family {
        name: "burnwatch_probe_phase_duration_seconds",
        compact: Compact::All,
        kind: Kind::Gauge,
        unit: "s",
        help: "Duration of each phase of the newest check; blackbox_exporter's probe_http_duration_seconds",
        subject: Subject::Probe,
        labels: &[("phase", "`resolve`/`connect`/`tls`/`processing`/`transfer`")],
        points: |s, out| {
            const NAMES: [&str; 5] = ["resolve", "connect", "tls", "processing", "transfer"];
            for p in &s.snap.probes {
                let Some(l) = &p.last else { continue };
                for (n, v) in NAMES.iter().zip(l.phases) {
                    gauge(
                        out,
                        None,
                        &[
                            ("service", p.service.as_str()),
                            ("probe", p.name.as_str()),
                            ("phase", n),
                        ],
                        v,
                    );
                }
            }
        },
    },
    Family {
        name: "burnwatch_probe_http_status_code",
        compact: Compact::All,
        kind: Kind::Gauge,
        unit: "",
        help: "HTTP status of the newest check; blackbox_exporter's probe_http_status_code",
        subject: Subject::Probe,
        labels: &[],
        points: |s, out| {
            per_probe(s, out, |p| {
                p.last
                    .as_ref()
                    .and_then(|l| l.status)
                    .map(|c| Value::Gauge(f64::from(c)))
            })
        },
    },
    Family {
        name: "burnwatch_probe_ssl_earliest_cert_expiry",
        compact: Compact::All,
        kind: Kind::Gauge,
        // No unit: Prometheus' OTLP translation would append `_seconds`.
        unit: "",
        help: "Expiry of the TLS leaf certificate, Unix seconds; blackbox_exporter's probe_ssl_earliest_cert_expiry",
        subject: Subject::Probe,
        labels: &[],
        points: |s, out| {
            per_probe(s, out, |p| {
                p.last
                    .as_ref()
                    .and_then(|l| l.cert_not_after_ms)
                    .map(|ms| Value::Gauge(ms as f64 / 1000.0))
            })
        },
    },
    Family {
        name: "burnwatch_probe_consecutive_failures",
        compact: Compact::All,
        kind: Kind::Gauge,
        unit: "{check}",
        help: "Failed checks in a row",
        subject: Subject::Probe,
        labels: &[],
        points: |s, out| {
            per_probe(s, out, |p| {
                Some(Value::Gauge(p.consecutive_failures as f64))
            })
        },
    },
    Family {
        name: "burnwatch_probe_checks",
        compact: Compact::All,
        kind: Kind::Counter,
        unit: "{check}",
        help: "Checks since the agent started",
        subject: Subject::Probe,
        labels: &[],
        points: |s, out| per_probe(s, out, |p| Some(Value::Count(p.checks_total))),
    },
    Family {
        name: "burnwatch_probe_failures",
        compact: Compact::All,
        kind: Kind::Counter,
        unit: "{check}",
        help: "Failed checks since the agent started",
        subject: Subject::Probe,
        labels: &[],
        points: |s, out| per_probe(s, out, |p| Some(Value::Count(p.failures_total))),
    },
    Family {
        name: "burnwatch_probe_checks_late",
        compact: Compact::All,
        kind: Kind::Counter,
        unit: "{check}",
        help: "Checks that started more than a tenth of the interval after their scheduled instant (waiting for a check slot, the evaluator's queue or the previous check): the agent is not keeping up",
        subject: Subject::Probe,
        labels: &[],
        points: |s, out| per_probe_lag(s, out, |l| l.late),
    },
    Family {
        name: "burnwatch_probe_checks_missed",
        compact: Compact::All,
        kind: Kind::Counter,
        unit: "{check}",
        help: "Scheduled checks that never ran: whole intervals gone by while the probe was behind its schedule",
        subject: Subject::Probe,
        labels: &[],
        points: |s, out| per_probe_lag(s, out, |l| l.missed),
    },
    // ---- scrape targets ----
    Family {
        name: "burnwatch_target_up",
        compact: Compact::All,
        kind: Kind::Gauge,
        unit: "",
        help: "Whether the newest scrape succeeded",
        subject: Subject::Target,
        labels: &[],
        points: |s, out| per_target(s, out, |t| Value::Gauge(f64::from(u8::from(t.up)))),
    },
    Family {
        name: "burnwatch_target_scrape_duration_seconds",
        compact: Compact::All,
        kind: Kind::Gauge,
        unit: "s",
        help: "Duration of the newest scrape",
        subject: Subject::Target,
        labels: &[],
        points: |s, out| per_target(s, out, |t| Value::Gauge(t.duration_secs)),
    },
    Family {
        name: "burnwatch_target_scrape_samples",
        compact: Compact::All,
        kind: Kind::Gauge,
        unit: "{sample}",
        help: "Samples on the newest successful page",
        subject: Subject::Target,
        labels: &[],
        points: |s, out| per_target(s, out, |t| Value::Gauge(t.samples as f64)),
    },
    Family {
        name: "burnwatch_target_scrape_duplicate_samples",
        compact: Compact::All,
        kind: Kind::Gauge,
        unit: "{sample}",
        help: "Samples of the newest successful page that repeat a series already on it (dropped: the first counts, as in Prometheus)",
        subject: Subject::Target,
        labels: &[],
        points: |s, out| per_target(s, out, |t| Value::Gauge(t.duplicate_samples as f64)),
    },
    Family {
        name: "burnwatch_target_scrapes",
        compact: Compact::All,
        kind: Kind::Counter,
        unit: "{scrape}",
        help: "Scrapes since the agent started",
        subject: Subject::Target,
        labels: &[],
        points: |s, out| per_target(s, out, |t| Value::Count(t.scrapes_total)),
    },
    Family {
        name: "burnwatch_target_scrape_failures",
        compact: Compact::All,
        kind: Kind::Counter,
        unit: "{scrape}",
        help: "Failed scrapes since the agent started (timeouts, non-2xx, parse errors, limits)",
        subject: Subject::Target,
        labels: &[],
        points: |s, out| per_target(s, out, |t| Value::Count(t.failures_total)),
    },
    Family {
        name: "burnwatch_target_scrapes_late",
        compact: Compact::All,
        kind: Kind::Counter,
        unit: "{scrape}",
        help: "Scrapes that started more than a tenth of the interval after their scheduled instant (waiting for a scrape slot, the evaluator's queue or the previous scrape): the agent is not keeping up",
        subject: Subject::Target,
        labels: &[],
        points: |s, out| per_target_lag(s, out, |l| l.late),
    },
    Family {
        name: "burnwatch_target_scrapes_missed",
        compact: Compact::All,
        kind: Kind::Counter,
        unit: "{scrape}",
        help: "Scheduled scrapes that never ran: whole intervals gone by while the target was behind its schedule",
        subject: Subject::Target,
        labels: &[],
        points: |s, out| per_target_lag(s, out, |l| l.missed),
    },
    // ---- the agent itself ----
    Family {
        name: "burnwatch_build_info",
        compact: Compact::All,
        kind: Kind::Gauge,
        unit: "",
        help: "Always 1; the version as a label",
        subject: Subject::Agent,
        labels: &[("version", "")],
        points: |_, out| gauge(out, None, &[("version", env!("CARGO_PKG_VERSION"))], 1.0),
    },
    Family {
        name: "burnwatch_evaluation_duration_seconds",
        compact: Compact::All,
        kind: Kind::Gauge,
        unit: "s",
        help: "Duration of the newest evaluation of every SLO",
        subject: Subject::Agent,
        labels: &[],
        points: |s, out| gauge(out, None, &[], s.snap.evaluation_seconds),
    },
    Family {
        name: "burnwatch_evaluations_late",
        compact: Compact::All,
        kind: Kind::Counter,
        unit: "{evaluation}",
        help: "Evaluations that started more than a tenth of evaluation_interval after their scheduled instant (the evaluator busy applying results, reloading or checkpointing)",
        subject: Subject::Agent,
        labels: &[],
        points: |s, out| count(out, None, &[], s.snap.pace.evaluations.late),
    },
    Family {
        name: "burnwatch_evaluations_missed",
        compact: Compact::All,
        kind: Kind::Counter,
        unit: "{evaluation}",
        help: "Scheduled evaluations that never ran: whole evaluation intervals gone by while the evaluator was behind",
        subject: Subject::Agent,
        labels: &[],
        points: |s, out| count(out, None, &[], s.snap.pace.evaluations.missed),
    },
    Family {
        name: "burnwatch_observation_queue_length",
        compact: Compact::All,
        kind: Kind::Gauge,
        unit: "{observation}",
        help: "Probe and scrape results waiting for the evaluator when the snapshot was taken (collectors wait while it is full)",
        subject: Subject::Agent,
        labels: &[],
        points: |s, out| gauge(out, None, &[], s.snap.pace.queue_length as f64),
    },
    Family {
        name: "burnwatch_observation_queue_capacity",
        compact: Compact::All,
        kind: Kind::Gauge,
        unit: "{observation}",
        help: "Capacity of the queue from the collectors to the evaluator (queue_length in the agent config)",
        subject: Subject::Agent,
        labels: &[],
        points: |s, out| gauge(out, None, &[], s.snap.pace.queue_capacity as f64),
    },
    Family {
        name: "burnwatch_source_reads",
        compact: Compact::All,
        kind: Kind::Counter,
        unit: "{read}",
        help: "Reads of a query SLO's queries that a query source (sources.prometheus) answered",
        subject: Subject::Agent,
        labels: &[("source", "")],
        points: |s, out| {
            for src in &s.snap.sources {
                count(out, None, &[("source", src.name.as_str())], src.reads_total);
            }
        },
    },
    Family {
        name: "burnwatch_source_errors",
        compact: Compact::All,
        kind: Kind::Counter,
        unit: "{read}",
        help: "Reads of a query SLO that a query source did not answer with data, by reason: no data for that interval, counted by the next read that answers",
        subject: Subject::Agent,
        labels: &[
            ("source", ""),
            (
                "reason",
                "`unreachable`/`timeout`/`status`/`query_error`/`invalid_response`/`invalid_value`/`too_many_series`/`secret`",
            ),
        ],
        points: |s, out| {
            for src in &s.snap.sources {
                for (reason, n) in &src.errors_total {
                    count(
                        out,
                        None,
                        &[("source", src.name.as_str()), ("reason", reason)],
                        *n,
                    );
                }
            }
        },
    },
    Family {
        name: "burnwatch_observations_stale",
        compact: Compact::All,
        kind: Kind::Counter,
        unit: "{observation}",
        help: "Probe and scrape results dropped because a rules reload replaced their rule set while they were in flight",
        subject: Subject::Agent,
        labels: &[],
        points: |s, out| count(out, None, &[], s.snap.stale_observations),
    },
    Family {
        name: "burnwatch_probe_results_dropped",
        compact: Compact::All,
        kind: Kind::Counter,
        unit: "{result}",
        help: "Probe results not counted for alerting's probe thresholds because alerting's queue was full (the SLOs still count them)",
        subject: Subject::Agent,
        labels: &[],
        points: |s, out| count(out, None, &[], s.snap.pace.probe_results_dropped),
    },
    Family {
        name: "burnwatch_checkpoint_last_success_timestamp_seconds",
        compact: Compact::All,
        kind: Kind::Gauge,
        unit: "s",
        help: "When state was last checkpointed, Unix seconds (absent before the first)",
        subject: Subject::Agent,
        labels: &[],
        points: |s, out| {
            if let Some(ms) = s.snap.checkpoint.last_ok_ms {
                gauge(out, None, &[], ms as f64 / 1000.0);
            }
        },
    },
    Family {
        name: "burnwatch_rules_last_reload_success",
        compact: Compact::All,
        kind: Kind::Gauge,
        unit: "",
        help: "Whether the newest rules reload succeeded (0 after a rejected reload; the last good rules keep running)",
        subject: Subject::Agent,
        labels: &[],
        points: |s, out| {
            gauge(
                out,
                None,
                &[],
                f64::from(u8::from(s.snap.rules_status.last_reload_ok)),
            )
        },
    },
    Family {
        name: "burnwatch_rules_reload_failures",
        compact: Compact::All,
        kind: Kind::Counter,
        unit: "{reload}",
        help: "Rejected rules reloads since the agent started",
        subject: Subject::Agent,
        labels: &[],
        points: |s, out| count(out, None, &[], s.snap.rules_status.reload_failures_total),
    },
    Family {
        name: "burnwatch_rules_slos",
        compact: Compact::All,
        kind: Kind::Gauge,
        unit: "{slo}",
        help: "SLOs in force",
        subject: Subject::Agent,
        labels: &[],
        points: |s, out| gauge(out, None, &[], s.snap.rules_status.slos as f64),
    },
    Family {
        name: "burnwatch_slo_group_instances",
        compact: Compact::All,
        kind: Kind::Gauge,
        unit: "{slo}",
        help: "Instances of a grouped SLO (group_by) in force: one per label set its series carry",
        subject: Subject::Agent,
        labels: &[("service", ""), ("slo", "")],
        points: |s, out| group_gauge(s, out, |g| g.instances as f64),
    },
    Family {
        name: "burnwatch_slo_group_max_instances",
        compact: Compact::All,
        kind: Kind::Gauge,
        unit: "{slo}",
        help: "max_instances of a grouped SLO: label sets past it are refused",
        subject: Subject::Agent,
        labels: &[("service", ""), ("slo", "")],
        points: |s, out| group_gauge(s, out, |g| f64::from(g.max_instances)),
    },
    Family {
        name: "burnwatch_slo_group_refused",
        compact: Compact::All,
        kind: Kind::Counter,
        unit: "{instance}",
        help: "Label sets of a grouped SLO refused because it had max_instances instances, counted at each scrape that showed them (their events are not counted anywhere)",
        subject: Subject::Agent,
        labels: &[("service", ""), ("slo", "")],
        points: |s, out| group_count(s, out, |g| g.refused_total),
    },
    Family {
        name: "burnwatch_slo_group_aged_out",
        compact: Compact::All,
        kind: Kind::Counter,
        unit: "{instance}",
        help: "Instances of a grouped SLO dropped because no scrape showed their series for a whole SLO window",
        subject: Subject::Agent,
        labels: &[("service", ""), ("slo", "")],
        points: |s, out| group_count(s, out, |g| g.aged_out_total),
    },
    // ---- alerting ----
    Family {
        name: "burnwatch_alerts",
        compact: Compact::All,
        kind: Kind::Gauge,
        unit: "{alert}",
        help: "Alerts by state: firing (suppressed ones included), pending (condition true, for not elapsed), suppressed (silenced or inhibited), flapping (held firing by flap damping)",
        subject: Subject::Alerting,
        labels: &[("state", "`firing`/`pending`/`suppressed`/`flapping`")],
        points: |s, out| {
            let Some(v) = s.alerting else { return };
            let suppressed = v
                .alerts
                .iter()
                .filter(|a| a.state == SuppressionState::Suppressed)
                .count();
            for (state, n) in [
                ("firing", v.alerts.len()),
                ("pending", v.pending),
                ("suppressed", suppressed),
                ("flapping", v.flapping.len()),
            ] {
                gauge(out, None, &[("state", state)], n as f64);
            }
        },
    },
    Family {
        name: "burnwatch_notifications",
        compact: Compact::All,
        kind: Kind::Counter,
        unit: "{notification}",
        help: "Notifications delivered, by receiver, integration kind and why they were sent",
        subject: Subject::Alerting,
        labels: &[
            ("receiver", ""),
            ("integration", "`webhook`/`slack`/`pagerduty`/`email`"),
            (
                "reason",
                "`first`/`new_alerts`/`resolved`/`all_resolved`/`repeat`",
            ),
        ],
        points: |s, out| {
            let Some(v) = s.alerting else { return };
            per_reason(
                v,
                out,
                &v.counters.notifications,
                &NOTIFY_REASONS.map(NotifyReason::key),
            );
        },
    },
    Family {
        name: "burnwatch_notifications_failed",
        compact: Compact::All,
        kind: Kind::Counter,
        unit: "{notification}",
        help: "Notifications that failed for good, by receiver, integration kind and failure (a failed group is decided again at its next flush)",
        subject: Subject::Alerting,
        labels: &[
            ("receiver", ""),
            ("integration", ""),
            ("reason", "`permanent`/`retries_exhausted`/`shutdown`"),
        ],
        points: |s, out| {
            let Some(v) = s.alerting else { return };
            per_reason(v, out, &v.counters.failed, &failure_reasons());
        },
    },
    Family {
        name: "burnwatch_notifications_superseded",
        compact: Compact::All,
        kind: Kind::Counter,
        unit: "{notification}",
        help: "Notifications replaced by a newer one for the same group before they were sent (not failures: the group's newest state is delivered in their place), by receiver and integration kind",
        subject: Subject::Alerting,
        labels: &[("receiver", ""), ("integration", "")],
        points: |s, out| {
            let Some(v) = s.alerting else { return };
            for (r, i) in integration_pairs(v).into_keys() {
                let n = v
                    .counters
                    .superseded
                    .get(&(r.to_owned(), i))
                    .copied()
                    .unwrap_or(0);
                count(out, None, &[("receiver", r), ("integration", i)], n);
            }
        },
    },
    Family {
        name: "burnwatch_notification_queue_length",
        compact: Compact::All,
        kind: Kind::Gauge,
        unit: "{notification}",
        help: "Notifications waiting for delivery (the one in flight excluded), summed over the integrations of a kind",
        subject: Subject::Alerting,
        labels: &[("receiver", ""), ("integration", "")],
        points: |s, out| {
            let Some(v) = s.alerting else { return };
            for ((r, i), (q, _)) in integration_pairs(v) {
                gauge(out, None, &[("receiver", r), ("integration", i)], q as f64);
            }
        },
    },
    Family {
        name: "burnwatch_notification_breaker_open",
        compact: Compact::All,
        kind: Kind::Gauge,
        unit: "{integration}",
        help: "Integrations of this kind whose circuit breaker is open (deliveries held until the cool-down ends)",
        subject: Subject::Alerting,
        labels: &[("receiver", ""), ("integration", "")],
        points: |s, out| {
            let Some(v) = s.alerting else { return };
            for ((r, i), (_, open)) in integration_pairs(v) {
                gauge(
                    out,
                    None,
                    &[("receiver", r), ("integration", i)],
                    open as f64,
                );
            }
        },
    },
    Family {
        name: "burnwatch_alert_suppressions",
        compact: Compact::All,
        kind: Kind::Counter,
        unit: "{alert}",
        help: "Alerts held back, by reason: one per alert, integration and flush (flapping: one per alert that starts flapping)",
        subject: Subject::Alerting,
        labels: &[("reason", "`silenced`/`inhibited`/`deduplicated`/`flapping`")],
        points: |s, out| {
            let Some(v) = s.alerting else { return };
            let mut rows: BTreeMap<&str, u64> = [
                SuppressReason::Silenced,
                SuppressReason::Inhibited,
                SuppressReason::Deduplicated,
                SuppressReason::Flapping,
            ]
            .iter()
            .map(|r| (r.key(), 0))
            .collect();
            for (k, n) in &v.counters.suppressed {
                *rows.entry(k).or_default() += n;
            }
            for (k, n) in rows {
                count(out, None, &[("reason", k)], n);
            }
        },
    },
    Family {
        name: "burnwatch_silences",
        compact: Compact::All,
        kind: Kind::Gauge,
        unit: "{silence}",
        help: "Silences kept, by state (expired ones until silence_retention drops them)",
        subject: Subject::Alerting,
        labels: &[("state", "`pending`/`active`/`expired`")],
        points: |s, out| {
            let Some(v) = s.alerting else { return };
            let mut rows: BTreeMap<&str, u64> = [
                SilenceState::Pending,
                SilenceState::Active,
                SilenceState::Expired,
            ]
            .iter()
            .map(|s| (s.as_str(), 0))
            .collect();
            for sil in v.silences.iter() {
                *rows.entry(sil.state(v.at).as_str()).or_default() += 1;
            }
            for (k, n) in rows {
                gauge(out, None, &[("state", k)], n as f64);
            }
        },
    },
    Family {
        name: "burnwatch_alerting_state_save_timestamp_seconds",
        compact: Compact::All,
        kind: Kind::Gauge,
        unit: "s",
        help: "When the alerting state file was last saved, Unix seconds (absent before the first save)",
        subject: Subject::Alerting,
        labels: &[],
        points: |s, out| {
            if let Some(ms) = s.alerting.and_then(|v| v.last_save_ms) {
                gauge(out, None, &[], ms as f64 / 1000.0);
            }
        },
    },
    Family {
        name: "burnwatch_alerting_state_save_failures",
        compact: Compact::All,
        kind: Kind::Counter,
        unit: "{failure}",
        help: "Failed saves of the alerting state file since start",
        subject: Subject::Alerting,
        labels: &[],
        points: |s, out| {
            if let Some(v) = s.alerting {
                count(out, None, &[], v.counters.state_save_failures);
            }
        },
    },
    Family {
        name: "burnwatch_alertmanager_push_failures",
        compact: Compact::All,
        kind: Kind::Counter,
        unit: "{failure}",
        help: "Failed pushes to the configured Alertmanager since start",
        subject: Subject::Alerting,
        labels: &[],
        points: |s, out| {
            if let Some(v) = s.alerting {
                count(out, None, &[], v.counters.alertmanager_push_failures);
            }
        },
    },
];

/// The table of `subject`'s families as `docs/metrics.md` shows it.
pub fn doc_table(subject: Subject) -> String {
    let mut out = String::from(
        "| family | type | unit (OTLP) | extra labels | compact | meaning |\n|---|---|---|---|---|---|\n",
    );
    for f in FAMILIES.iter().filter(|f| f.subject == subject) {
        let labels: Vec<String> = f
            .labels
            .iter()
            .map(|(k, v)| {
                if v.is_empty() {
                    format!("`{k}`")
                } else {
                    format!("`{k}` = {v}")
                }
            })
            .collect();
        let unit = if f.unit.is_empty() {
            String::new()
        } else {
            format!("`{}`", f.unit)
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} |\n",
            f.sample_name(),
            f.kind.keyword(),
            unit,
            labels.join(", "),
            f.compact.doc(),
            f.help
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text between `<!-- catalogue:KEY -->` and the next `<!-- /catalogue -->`.
    fn section<'d>(doc: &'d str, key: &str) -> &'d str {
        let open = format!("<!-- catalogue:{key} -->\n");
        let start = doc.find(&open).map(|i| i + open.len());
        let start = start.unwrap_or_else(|| panic!("docs/metrics.md lacks {open}"));
        let len = doc[start..]
            .find("<!-- /catalogue -->")
            .expect("section closed");
        &doc[start..start + len]
    }

    #[test]
    fn docs_tables_are_the_catalogue() {
        let doc = include_str!("../../docs/metrics.md");
        for subject in Subject::ALL {
            let want = doc_table(subject);
            assert_eq!(
                section(doc, subject.key()),
                want,
                "docs/metrics.md's {} table differs from the catalogue; it should read:\n{want}",
                subject.key()
            );
        }
    }

    /// Checks that every sample has its family's value kind and label names.
    struct Check {
        family: &'static Family,
        samples: usize,
    }

    impl Sink for Check {
        fn sample(&mut self, slo: Option<usize>, labels: &[(&'static str, &str)], value: Value) {
            let f = self.family;
            match (f.kind, value) {
                (Kind::Gauge, Value::Gauge(v)) => assert!(v.is_finite(), "{}", f.name),
                (Kind::Counter, Value::Count(_)) => {}
                (kind, v) => panic!("{}: a {kind:?} family emitted {v:?}", f.name),
            }
            assert_eq!(slo.is_some(), f.subject == Subject::Slo, "{}", f.name);
            let want: Vec<&str> = match f.subject {
                Subject::Slo => Vec::new(),
                s => s.labels().to_vec(),
            }
            .into_iter()
            .chain(f.labels.iter().map(|(k, _)| *k))
            .collect();
            let got: Vec<&str> = labels.iter().map(|(k, _)| *k).collect();
            assert_eq!(got, want, "{}", f.name);
            self.samples += 1;
        }
    }

    #[test]
    fn every_family_emits_its_kind_and_labels() {
        use crate::evaluator::{Evaluator, Observation};
        use crate::probe::{Phases, ProbeOutcome};
        use crate::time::Timestamp;
        let rules = crate::rules::load_str(
            "r.yaml",
            "version: burnwatch/v1\nservice: shop\nprobes:\n  - name: home\n    http: {url: \"http://127.0.0.1:1/\"}\n    interval: 10s\nscrape:\n  - name: app\n    url: http://127.0.0.1:1/metrics\nslos:\n  - name: up\n    objective: 99.5\n    indicator: {probe: home}\n  - name: fast\n    objective: 99\n    indicator:\n      latency_threshold: {threshold: 300ms, probe: home}\n  - name: routes\n    objective: 99\n    group_by: [route]\n    indicator:\n      ratio: {bad: 'req_total{code=\"500\"}', total: req_total}\n",
        )
        .expect("rules");
        let t0 = 1_780_000_000_000;
        let mut ev = Evaluator::new(rules, Timestamp(t0));
        for i in 0..10i64 {
            ev.apply(Observation::Probe {
                generation: ev.generation(),
                name: "home".into(),
                outcome: ProbeOutcome {
                    started_ms: t0 + i * 10_000,
                    success: i != 3,
                    duration_secs: 0.25,
                    phases: Phases::default(),
                    status: Some(200),
                    cert_not_after_ms: Some(1_900_000_000_000),
                    failure: None,
                },
            });
        }
        let mut snap = ev.evaluate(Timestamp(t0 + 120_000));
        snap.checkpoint.last_ok_ms = Some(t0);
        snap.sources.push(crate::view::SourceStatus::new(
            "prom",
            &crate::source::REASONS,
        ));
        let mut view = AlertingView {
            last_save_ms: Some(t0),
            ..AlertingView::default()
        };
        view.integrations
            .push(crate::notify::delivery::IntegrationStats {
                receiver: "oncall".into(),
                kind: "webhook",
                ..Default::default()
            });
        let sources = Sources::new(&snap, Some(&view), SeriesSet::Full);
        for family in FAMILIES {
            let mut check = Check { family, samples: 0 };
            family.emit(&sources, &mut check);
            assert!(check.samples > 0, "{} emitted nothing", family.name);
        }
    }

    #[test]
    fn names_are_unique_and_help_fits_one_line() {
        let mut names: Vec<&str> = FAMILIES.iter().map(|f| f.name).collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n);
        for f in FAMILIES {
            assert!(f.name.starts_with("burnwatch_"), "{}", f.name);
            assert!(!f.name.ends_with("_total"), "{}", f.name);
            assert!(
                !f.help.contains(['\n', '\\', '|']) && !f.help.is_empty(),
                "{}",
                f.name
            );
            for (k, _) in f.labels {
                assert!(!f.subject.labels().contains(k), "{} {k}", f.name);
            }
        }
    }
}
