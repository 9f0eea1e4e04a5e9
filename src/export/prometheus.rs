//! The `/metrics` page: every number of a snapshot in OpenMetrics text, written with
//! `prometheus-client` through a collector that reads the snapshot at scrape time. Nothing is
//! cached between scrapes, so a deleted SLO, probe or target disappears at once and nothing goes
//! stale. Label sets come from the rules (bounded by config), never from scraped data.
//!
//! Cost: the page for 10,000 SLOs has ~340k samples, and each carries its SLO's whole label set.
//! So an SLO's labels are escaped and rendered to text once per page ([`RenderedLabels`]) and
//! written with one call per sample, window names are formatted once per distinct length, and
//! the buffer is sized from the rows up front (see `benches/export.rs`).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabel, EncodeLabelSet, EncodeMetric, LabelSetEncoder,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::agent::AgentSnapshot;
use crate::agent::alerting::AlertingView;
use crate::agent::evaluator::{ProbeStatus, TargetStatus};
use crate::alert::source::TierPhases;
use crate::export::sloth::SlothCollector;
use crate::export::{alert_state_value, quantile_points, rule_labels, window_name};
use crate::notify::delivery::{BreakerState, DeliveryError};
use crate::notify::dispatch::SuppressionState;
use crate::notify::silence::SilenceState;
use crate::notify::{NotifyReason, SuppressReason};
use crate::rules::model::{Service, Slo};
use crate::slo::engine::{SloReport, WindowReport};
use crate::time::Dur;

/// The content type of [`encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What the page carries besides burnwatch's own families (agent config `export.prometheus`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageOptions {
    /// Add the Sloth-compatible `slo:*` and `sloth_slo_info` series (see
    /// [`crate::export::sloth`]).
    pub sloth_compatible: bool,
}

/// The page for `snap` with burnwatch's families only.
pub fn encode(snap: &Arc<AgentSnapshot>) -> Result<String, fmt::Error> {
    encode_with(snap, PageOptions::default())
}

/// The page for `snap` with the families `opts` asks for.
pub fn encode_with(snap: &Arc<AgentSnapshot>, opts: PageOptions) -> Result<String, fmt::Error> {
    encode_page(snap, None, opts)
}

/// The page for `snap` and, when given, the alerting families of `alerting` (the newest view
/// of the alerting task), with the families `opts` asks for.
pub fn encode_page(
    snap: &Arc<AgentSnapshot>,
    alerting: Option<&Arc<AlertingView>>,
    opts: PageOptions,
) -> Result<String, fmt::Error> {
    let mut reg = Registry::with_prefix("burnwatch");
    reg.register_collector(Box::new(SnapshotCollector(
        snap.clone(),
        alerting.map(|v| v.tiers.clone()),
    )));
    if let Some(view) = alerting {
        reg.register_collector(Box::new(AlertingCollector(view.clone())));
    }
    let mut out = String::with_capacity(page_estimate(snap, opts));
    prometheus_client::encoding::text::encode_registry(&mut out, &reg)?;
    if opts.sloth_compatible {
        // Sloth's names carry no prefix, so they live in a registry of their own.
        let mut sloth = Registry::default();
        sloth.register_collector(Box::new(SlothCollector(snap.clone())));
        prometheus_client::encoding::text::encode_registry(&mut out, &sloth)?;
    }
    prometheus_client::encoding::text::encode_eof(&mut out)?;
    Ok(out)
}

/// Bytes the page will take, from above: samples per SLO times (name, labels and value), so the
/// buffer of a 30 MB page is allocated once instead of doubling (and copying) its way there.
fn page_estimate(snap: &AgentSnapshot, opts: PageOptions) -> usize {
    let per_slo: usize = snap
        .slos
        .iter()
        .map(|r| {
            let windows = 1 + r.alert_windows.len();
            let latency = if r.window.latency.is_some() {
                4 * windows
            } else {
                0
            };
            let sloth = if opts.sloth_compatible { 16 } else { 0 };
            let samples = 3 * windows + 7 + r.tiers.len() + latency + sloth;
            samples * (SAMPLE_OVERHEAD + r.id.service.len() + r.id.slo.len())
        })
        .sum();
    4096 + per_slo + (snap.probes.len() + snap.targets.len()) * 16 * SAMPLE_OVERHEAD
}

/// Bytes of a sample besides its SLO's names: family name, rules labels, extra labels, value.
const SAMPLE_OVERHEAD: usize = 160;

/// The snapshot, and the tier alert phases of the alerting view when there is one (without
/// it the page has no `slo_alert_state` samples: no alert state is decided).
#[derive(Debug)]
struct SnapshotCollector(Arc<AgentSnapshot>, Option<Arc<TierPhases>>);

/// Fixed label names are borrowed; names from the rules are owned.
type Labels = Vec<(Cow<'static, str>, String)>;

/// Writes one family: its descriptor, then one sample per row.
fn family<L: EncodeLabelSet, M: EncodeMetric>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    kind: MetricType,
    rows: impl IntoIterator<Item = (L, M)>,
) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, kind)?;
    for (labels, metric) in rows {
        metric.encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

fn gauges<L: EncodeLabelSet>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (L, f64)>,
) -> fmt::Result {
    family(
        enc,
        name,
        help,
        MetricType::Gauge,
        rows.into_iter().map(|(l, v)| (l, ConstGauge::new(v))),
    )
}

fn counters<L: EncodeLabelSet>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (L, u64)>,
) -> fmt::Result {
    family(
        enc,
        name,
        help,
        MetricType::Counter,
        rows.into_iter().map(|(l, v)| (l, ConstCounter::new(v))),
    )
}

/// Appends `name="value"` (comma-separated from what `out` holds) with the value escaped as
/// prometheus-client escapes label values (`\\`, `\"`, `\n`), so rendered and encoded labels
/// are byte-identical.
pub(crate) fn render_label(out: &mut String, name: &str, value: &str) {
    if !out.is_empty() {
        out.push(',');
    }
    out.push_str(name);
    out.push_str("=\"");
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `service`, `slo` and the rules' labels (see [`rule_labels`]), rendered.
fn slo_labels(svc: &Service, slo: &Slo) -> String {
    let mut out = String::with_capacity(64);
    render_label(&mut out, "service", &slo.id.service);
    render_label(&mut out, "slo", &slo.id.slo);
    for (k, v) in rule_labels(svc, slo) {
        render_label(&mut out, k, v);
    }
    out
}

/// A label set without copies: an SLO's labels rendered once (see [`render_label`]), plus up to
/// two of burnwatch's own.
#[derive(Debug)]
pub(crate) struct RenderedLabels<'a> {
    base: &'a str,
    extra: [(&'static str, &'a str); 2],
    n: usize,
}

impl<'a> RenderedLabels<'a> {
    /// `base` (rendered labels, possibly empty) plus `extra` (at most two; more would be a bug
    /// in this module).
    pub(crate) fn new(base: &'a str, extra: &[(&'static str, &'a str)]) -> RenderedLabels<'a> {
        debug_assert!(extra.len() <= 2);
        let mut set = RenderedLabels {
            base,
            extra: [("", ""); 2],
            n: extra.len().min(2),
        };
        set.extra[..set.n].copy_from_slice(&extra[..set.n]);
        set
    }
}

impl EncodeLabelSet for RenderedLabels<'_> {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> fmt::Result {
        if !self.base.is_empty() {
            // The text encoder writes a label key verbatim (after the separating comma), so
            // the rendered `k="v",...` text goes out as one write. Only the text format is
            // compiled in (no `protobuf` feature), which is the one this relies on.
            let mut label = encoder.encode_label();
            label.encode_label_key()?.write_str(self.base)?;
        }
        for (k, v) in &self.extra[..self.n] {
            (*k, *v).encode(encoder.encode_label())?;
        }
        Ok(())
    }
}

fn one(name: &'static str, value: &str) -> Labels {
    vec![(Cow::Borrowed(name), value.to_owned())]
}

/// Two labels, in this order.
fn two(a: &'static str, a_value: &str, b: &'static str, b_value: &str) -> Labels {
    vec![
        (Cow::Borrowed(a), a_value.to_owned()),
        (Cow::Borrowed(b), b_value.to_owned()),
    ]
}

/// One SLO report with its rendered labels and window name.
struct Row<'a> {
    r: &'a SloReport,
    labels: String,
    window: Cow<'static, str>,
    objective: f64,
}

/// A row's labels alone.
fn plain<'r>(row: &'r Row<'r>) -> RenderedLabels<'r> {
    RenderedLabels::new(&row.labels, &[])
}

/// Every window of a row as (`window` label, report): the SLO window, then the alert windows
/// (named from `names`, which holds every alert window length of the page).
fn all_windows<'r>(
    row: &'r Row<'r>,
    names: &'r BTreeMap<Dur, String>,
) -> impl Iterator<Item = (&'r str, &'r WindowReport)> {
    std::iter::once((row.window.as_ref(), &row.r.window)).chain(
        row.r
            .alert_windows
            .iter()
            .map(|w| (names.get(&w.length).map_or("", String::as_str), w)),
    )
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let snap = &self.0;
        let rows: Vec<Row<'_>> = snap
            .slo_rows()
            .into_iter()
            .map(|(r, svc, s)| Row {
                r,
                labels: slo_labels(svc, s),
                window: window_name(&s.window),
                objective: s.objective.ratio(),
            })
            .collect();
        // Alert windows repeat across SLOs: each length is formatted once.
        let names: &BTreeMap<Dur, String> = &rows
            .iter()
            .flat_map(|row| row.r.alert_windows.iter().map(|w| w.length))
            .map(|d| (d, d.to_string()))
            .collect();
        let windows = |f: fn(&WindowReport) -> f64| {
            rows.iter().flat_map(move |row| {
                all_windows(row, names)
                    .map(move |(n, w)| (RenderedLabels::new(&row.labels, &[("window", n)]), f(w)))
            })
        };

        gauges(
            &mut enc,
            "slo_objective_ratio",
            "The SLO's objective as a ratio (99.9% is 0.999)",
            rows.iter().map(|row| (plain(row), row.objective)),
        )?;
        gauges(
            &mut enc,
            "slo_sli_ratio",
            "Good events over all events in the window (the SLO window and each alert window)",
            windows(|w| w.sli),
        )?;
        gauges(
            &mut enc,
            "slo_burn_rate",
            "Error rate in the window divided by the error budget rate (1 spends the budget exactly over the SLO window)",
            windows(|w| w.burn_rate),
        )?;
        gauges(
            &mut enc,
            "slo_window_events",
            "Events in the window (exact counts at bucket resolution)",
            windows(|w| w.total as f64),
        )?;
        gauges(
            &mut enc,
            "slo_window_coverage_ratio",
            "Share of the window after the SLO's first collection (1 once collected for the whole window); tier burn rates and the budget count the window's events against its whole budget",
            windows(|w| w.coverage),
        )?;
        gauges(
            &mut enc,
            "slo_error_budget_remaining_ratio",
            "Share of the SLO window's error budget left (negative when overspent)",
            rows.iter().map(|row| (plain(row), row.r.budget.remaining)),
        )?;
        gauges(
            &mut enc,
            "slo_error_budget_seconds",
            "The SLO window's error budget as time (2592 for 99.9% of 30 days: 43m12s)",
            rows.iter()
                .map(|row| (plain(row), row.r.budget.total_minutes * 60.0)),
        )?;
        gauges(
            &mut enc,
            "slo_error_budget_exhaustion_seconds",
            "Time until the budget is spent at the 1h burn rate (absent when not burning)",
            rows.iter().filter_map(|row| {
                row.r
                    .time_to_exhaustion
                    .map(|d| (plain(row), d.as_secs_f64()))
            }),
        )?;
        counters(
            &mut enc,
            "slo_events",
            "Events counted since the agent started, by result",
            rows.iter().flat_map(|row| {
                let (good, bad) = snap
                    .events_total
                    .get(&row.r.id)
                    .copied()
                    .unwrap_or_default();
                [
                    (
                        RenderedLabels::new(&row.labels, &[("result", "good")]),
                        good,
                    ),
                    (RenderedLabels::new(&row.labels, &[("result", "bad")]), bad),
                ]
            }),
        )?;
        gauges(
            &mut enc,
            "slo_latency_seconds",
            "Latency percentiles per window (DDSketch, 1% relative error); latency SLOs fed by probes",
            rows.iter().flat_map(|row| {
                all_windows(row, names).flat_map(move |(n, w)| {
                    w.latency.iter().flat_map(move |q| {
                        quantile_points(q).into_iter().map(move |(p, v)| {
                            (
                                RenderedLabels::new(&row.labels, &[("window", n), ("quantile", p)]),
                                v,
                            )
                        })
                    })
                })
            }),
        )?;
        gauges(
            &mut enc,
            "slo_alert_state",
            "Burn-rate tier alert state, as its lifecycle decided it: 0 not firing, 1 pending, 2 firing (also held by keep_firing_for or flap damping)",
            self.1.iter().flat_map(|phases| {
                rows.iter().flat_map(move |row| {
                    row.r.tiers.iter().map(move |t| {
                        (
                            RenderedLabels::new(
                                &row.labels,
                                &[("tier", t.name.as_str()), ("severity", t.severity.as_str())],
                            ),
                            alert_state_value(phases.get(&row.r.id, &t.name)),
                        )
                    })
                })
            }),
        )?;

        // Probes, named after blackbox_exporter's probe_* series.
        // `service` (the declaring document's) first, as on SLO series.
        let probe = |p: &ProbeStatus| two("service", &p.service, "probe", &p.name);
        gauges(
            &mut enc,
            "probe_success",
            "Whether the newest check passed (1) or failed (0)",
            snap.probes.iter().filter_map(|p| {
                p.last
                    .as_ref()
                    .map(|l| (probe(p), f64::from(u8::from(l.success))))
            }),
        )?;
        gauges(
            &mut enc,
            "probe_duration_seconds",
            "Duration of the newest check",
            snap.probes
                .iter()
                .filter_map(|p| p.last.as_ref().map(|l| (probe(p), l.duration_secs))),
        )?;
        gauges(
            &mut enc,
            "probe_phase_duration_seconds",
            "Duration of each phase of the newest check (resolve, connect, tls, processing, transfer, as blackbox_exporter names them)",
            snap.probes.iter().flat_map(|p| {
                const NAMES: [&str; 5] = ["resolve", "connect", "tls", "processing", "transfer"];
                p.last.iter().flat_map(move |l| {
                    NAMES.iter().zip(l.phases).map(move |(n, v)| {
                        let mut l = probe(p);
                        l.push((Cow::Borrowed("phase"), (*n).to_owned()));
                        (l, v)
                    })
                })
            }),
        )?;
        gauges(
            &mut enc,
            "probe_http_status_code",
            "HTTP status of the newest check",
            snap.probes.iter().filter_map(|p| {
                p.last
                    .as_ref()
                    .and_then(|l| l.status)
                    .map(|c| (probe(p), f64::from(c)))
            }),
        )?;
        gauges(
            &mut enc,
            "probe_ssl_earliest_cert_expiry",
            "Expiry of the TLS leaf certificate, Unix seconds",
            snap.probes.iter().filter_map(|p| {
                p.last
                    .as_ref()
                    .and_then(|l| l.cert_not_after_ms)
                    .map(|ms| (probe(p), ms as f64 / 1000.0))
            }),
        )?;
        gauges(
            &mut enc,
            "probe_consecutive_failures",
            "Failed checks in a row",
            snap.probes
                .iter()
                .map(|p| (probe(p), p.consecutive_failures as f64)),
        )?;
        counters(
            &mut enc,
            "probe_checks",
            "Checks since the agent started",
            snap.probes.iter().map(|p| (probe(p), p.checks_total)),
        )?;
        counters(
            &mut enc,
            "probe_failures",
            "Failed checks since the agent started",
            snap.probes.iter().map(|p| (probe(p), p.failures_total)),
        )?;

        // Scrape targets.
        let target = |t: &TargetStatus| two("service", &t.service, "target", &t.name);
        gauges(
            &mut enc,
            "target_up",
            "Whether the newest scrape succeeded",
            snap.targets
                .iter()
                .map(|t| (target(t), f64::from(u8::from(t.up)))),
        )?;
        gauges(
            &mut enc,
            "target_scrape_duration_seconds",
            "Duration of the newest scrape",
            snap.targets.iter().map(|t| (target(t), t.duration_secs)),
        )?;
        gauges(
            &mut enc,
            "target_scrape_samples",
            "Samples on the newest successful page",
            snap.targets.iter().map(|t| (target(t), t.samples as f64)),
        )?;
        counters(
            &mut enc,
            "target_scrapes",
            "Scrapes since the agent started",
            snap.targets.iter().map(|t| (target(t), t.scrapes_total)),
        )?;
        counters(
            &mut enc,
            "target_scrape_failures",
            "Failed scrapes since the agent started",
            snap.targets.iter().map(|t| (target(t), t.failures_total)),
        )?;

        // The agent itself.
        gauges(
            &mut enc,
            "build_info",
            "Always 1; the version as a label",
            [(one("version", env!("CARGO_PKG_VERSION")), 1.0)],
        )?;
        gauges(
            &mut enc,
            "evaluation_duration_seconds",
            "Duration of the newest evaluation of every SLO",
            [(Labels::new(), snap.evaluation_seconds)],
        )?;
        gauges(
            &mut enc,
            "checkpoint_last_success_timestamp_seconds",
            "When state was last checkpointed, Unix seconds (absent before the first)",
            snap.checkpoint
                .last_ok_ms
                .map(|ms| (Labels::new(), ms as f64 / 1000.0)),
        )?;
        gauges(
            &mut enc,
            "rules_last_reload_success",
            "Whether the newest rules reload succeeded",
            [(
                Labels::new(),
                f64::from(u8::from(snap.rules_status.last_reload_ok)),
            )],
        )?;
        counters(
            &mut enc,
            "rules_reload_failures",
            "Rejected rules reloads since the agent started",
            [(Labels::new(), snap.rules_status.reload_failures_total)],
        )?;
        gauges(
            &mut enc,
            "rules_slos",
            "SLOs in force",
            [(Labels::new(), snap.rules_status.slos as f64)],
        )?;
        Ok(())
    }
}

/// The alerting families, from the alerting task's newest view. Label sets are bounded by the
/// config (receivers, integrations) and fixed word lists (states, reasons), never by alerts.
#[derive(Debug)]
struct AlertingCollector(Arc<AlertingView>);

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

impl Collector for AlertingCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let v = &self.0;
        let c = &v.counters;
        let suppressed = v
            .alerts
            .iter()
            .filter(|a| a.state == SuppressionState::Suppressed)
            .count();
        gauges(
            &mut enc,
            "alerts",
            "Alerts by state: firing (suppressed ones included), pending (condition true, `for` not elapsed), suppressed (silenced or inhibited), flapping (held by flap damping)",
            [
                ("firing", v.alerts.len()),
                ("pending", v.pending),
                ("suppressed", suppressed),
                ("flapping", v.flapping.len()),
            ]
            .map(|(s, n)| (one("state", s), n as f64)),
        )?;
        // Every (receiver, integration) pair of the config gets every reason, at 0 until it
        // happens, so rates and alerts on these counters work from the first scrape.
        let mut pairs: BTreeMap<(&str, &str), (usize, u64)> = BTreeMap::new();
        for s in &v.integrations {
            let e = pairs.entry((s.receiver.as_str(), s.kind)).or_default();
            e.0 += s.queue_len;
            e.1 += u64::from(s.breaker == BreakerState::Open);
        }
        let counted = |m: &'_ BTreeMap<(String, &'static str, &'static str), u64>,
                       reasons: &[&'static str]| {
            let mut rows: BTreeMap<(String, &'static str, &'static str), u64> = pairs
                .keys()
                .flat_map(|(r, i)| {
                    reasons
                        .iter()
                        .map(move |why| (((*r).to_owned(), *i, *why), 0))
                })
                .collect();
            for (k, n) in m {
                *rows.entry(k.clone()).or_default() += n;
            }
            rows.into_iter().map(|((r, i, why), n)| {
                (
                    vec![
                        (Cow::Borrowed("receiver"), r),
                        (Cow::Borrowed("integration"), i.to_owned()),
                        (Cow::Borrowed("reason"), why.to_owned()),
                    ],
                    n,
                )
            })
        };
        counters(
            &mut enc,
            "notifications",
            "Notifications delivered, by receiver, integration kind and why they were sent",
            counted(&c.notifications, &NOTIFY_REASONS.map(NotifyReason::key)),
        )?;
        counters(
            &mut enc,
            "notifications_failed",
            "Notifications that failed for good, by receiver, integration kind and failure",
            counted(&c.failed, &failure_reasons()),
        )?;
        let pair_labels = |r: &str, i: &str| two("receiver", r, "integration", i);
        counters(
            &mut enc,
            "notifications_superseded",
            "Notifications replaced by a newer one for the same group before they were sent (not failures), by receiver and integration kind",
            pairs.keys().map(|&(r, i)| {
                let n = c.superseded.get(&(r.to_owned(), i)).copied().unwrap_or(0);
                (pair_labels(r, i), n)
            }),
        )?;
        gauges(
            &mut enc,
            "notification_queue_length",
            "Notifications waiting for delivery (the one in flight excluded)",
            pairs
                .iter()
                .map(|((r, i), (q, _))| (pair_labels(r, i), *q as f64)),
        )?;
        gauges(
            &mut enc,
            "notification_breaker_open",
            "Integrations of this kind whose circuit breaker is open (deliveries held until the cool-down ends)",
            pairs
                .iter()
                .map(|((r, i), (_, open))| (pair_labels(r, i), *open as f64)),
        )?;
        let mut suppressions: BTreeMap<&str, u64> = [
            SuppressReason::Silenced,
            SuppressReason::Inhibited,
            SuppressReason::Deduplicated,
            SuppressReason::Flapping,
        ]
        .iter()
        .map(|r| (r.key(), 0))
        .collect();
        for (k, n) in &c.suppressed {
            *suppressions.entry(k).or_default() += n;
        }
        counters(
            &mut enc,
            "alert_suppressions",
            "Alerts held back, by reason: one per alert, integration and flush (flapping: one per alert that starts flapping)",
            suppressions.into_iter().map(|(k, n)| (one("reason", k), n)),
        )?;
        let mut silences: BTreeMap<&str, u64> = [
            SilenceState::Pending,
            SilenceState::Active,
            SilenceState::Expired,
        ]
        .iter()
        .map(|s| (s.as_str(), 0))
        .collect();
        for s in &v.silences {
            *silences.entry(s.state(v.at).as_str()).or_default() += 1;
        }
        gauges(
            &mut enc,
            "silences",
            "Silences kept, by state (expired ones until the retention drops them)",
            silences
                .into_iter()
                .map(|(k, n)| (one("state", k), n as f64)),
        )?;
        gauges(
            &mut enc,
            "alerting_state_save_timestamp_seconds",
            "When the alerting state was last saved, Unix seconds (absent before the first)",
            v.last_save_ms.map(|ms| (Labels::new(), ms as f64 / 1000.0)),
        )?;
        counters(
            &mut enc,
            "alerting_state_save_failures",
            "Failed saves of the alerting state file since start",
            [(Labels::new(), c.state_save_failures)],
        )?;
        counters(
            &mut enc,
            "alertmanager_push_failures",
            "Failed pushes to the configured Alertmanager since start",
            [(Labels::new(), c.alertmanager_push_failures)],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::evaluator::{Evaluator, Observation};
    use crate::exposition::{Format, parse_owned};
    use crate::probe::{Phases, ProbeOutcome};
    use crate::rules::load_str;
    use crate::time::Timestamp;

    const RULES: &str = r#"
version: burnwatch/v1
service: shop
labels: {team: payments}
probes:
  - name: home
    http: {url: "http://127.0.0.1:1/"}
    interval: 10s
slos:
  - name: up
    objective: 99.5
    labels: {tier: "1", env: prod}
    indicator: {probe: home}
"#;

    fn snapshot() -> Arc<AgentSnapshot> {
        let t0 = 1_780_000_000_000;
        let mut ev = Evaluator::new(load_str("r.yaml", RULES).expect("rules"), Timestamp(t0));
        for i in 0..10i64 {
            ev.apply(Observation::Probe {
                generation: ev.generation(),
                name: "home".into(),
                outcome: ProbeOutcome {
                    started_ms: t0 + i * 10_000,
                    success: i != 3,
                    duration_secs: 0.25,
                    phases: Phases {
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
        Arc::new(ev.evaluate(Timestamp(t0 + 120_000)))
    }

    fn value(
        samples: &[crate::exposition::OwnedSample],
        name: &str,
        labels: &[(&str, &str)],
    ) -> f64 {
        let hits: Vec<f64> = samples
            .iter()
            .filter(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.iter().any(|(a, b)| a == k && b == v))
            })
            .map(|s| s.value)
            .collect();
        assert_eq!(hits.len(), 1, "{name} {labels:?}: {hits:?}");
        hits[0]
    }

    #[test]
    fn page_is_valid_openmetrics_with_the_snapshot_values() {
        let page = encode(&snapshot()).expect("encodes");
        let samples = parse_owned(page.as_bytes(), Format::OpenMetrics).expect("valid OpenMetrics");
        let slo = [("service", "shop"), ("slo", "up")];
        assert_eq!(
            value(&samples, "burnwatch_slo_objective_ratio", &slo),
            0.995
        );
        let w30 = [("slo", "up"), ("window", "30d")];
        assert_eq!(value(&samples, "burnwatch_slo_sli_ratio", &w30), 0.9);
        assert_eq!(value(&samples, "burnwatch_slo_window_events", &w30), 10.0);
        // Burn over 5m: (1/10) / 0.005 = 20.
        let w5 = [("slo", "up"), ("window", "5m")];
        assert!((value(&samples, "burnwatch_slo_burn_rate", &w5) - 20.0).abs() < 1e-9);
        // First check at t0, evaluated at t0 + 120 s: 2 of the 5 minutes have data.
        let coverage = |w: &str| {
            value(
                &samples,
                "burnwatch_slo_window_coverage_ratio",
                &[("slo", "up"), ("window", w)],
            )
        };
        assert!((coverage("5m") - 0.4).abs() < 1e-12);
        assert!((coverage("30d") - 120.0 / (30.0 * 86_400.0)).abs() < 1e-15);
        let good = [("slo", "up"), ("result", "good")];
        assert_eq!(value(&samples, "burnwatch_slo_events_total", &good), 9.0);
        let bad = [("slo", "up"), ("result", "bad")];
        assert_eq!(value(&samples, "burnwatch_slo_events_total", &bad), 1.0);
        // The rules' labels (service's and SLO's) are on every SLO series, except one named like
        // a label burnwatch sets itself (`tier`), which is left out rather than duplicated.
        let labelled = [("team", "payments"), ("env", "prod")];
        assert_eq!(
            value(&samples, "burnwatch_slo_objective_ratio", &labelled),
            0.995
        );
        assert!(
            samples
                .iter()
                .filter(|s| s.name == "burnwatch_slo_objective_ratio")
                .all(|s| !s.labels.iter().any(|(k, _)| k == "tier"))
        );
        // Tier alert states are the lifecycles' decisions: none without an alerting view.
        assert!(
            samples
                .iter()
                .all(|s| s.name != "burnwatch_slo_alert_state")
        );
        let snap = snapshot();
        let mut alerter = crate::alert::source::Alerter::new(&snap.rules, "http://bw");
        alerter.evaluate(&snap, snap.at);
        let view = AlertingView {
            tiers: Arc::new(alerter.tier_phases()),
            ..AlertingView::default()
        };
        let page =
            encode_page(&snap, Some(&Arc::new(view)), PageOptions::default()).expect("encodes");
        let samples = parse_owned(page.as_bytes(), Format::OpenMetrics).expect("valid OpenMetrics");
        let page_fast = [("slo", "up"), ("tier", "page_fast"), ("severity", "page")];
        // One failed check in the first 2 minutes spends 1/10 x 120 s / 1 h / 0.5% = 0.67x of
        // page_fast's 1 h budget, not 20x: quiet (see "Fresh starts and coverage" in rules.md).
        assert_eq!(
            value(&samples, "burnwatch_slo_alert_state", &page_fast),
            0.0
        );
        let p = [("service", "shop"), ("probe", "home")];
        assert_eq!(value(&samples, "burnwatch_probe_success", &p), 1.0);
        // Exactly the declaring service and the name: the rules' labels stay off probe series.
        let success = samples
            .iter()
            .find(|s| s.name == "burnwatch_probe_success")
            .expect("a probe_success sample");
        let want: Vec<(String, String)> = p
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(success.labels, want);
        assert_eq!(
            value(&samples, "burnwatch_probe_http_status_code", &p),
            200.0
        );
        assert_eq!(
            value(&samples, "burnwatch_probe_ssl_earliest_cert_expiry", &p),
            1_900_000_000.0
        );
        assert_eq!(value(&samples, "burnwatch_probe_checks_total", &p), 10.0);
        assert_eq!(value(&samples, "burnwatch_probe_failures_total", &p), 1.0);
        let connect = [("service", "shop"), ("probe", "home"), ("phase", "connect")];
        assert_eq!(
            value(&samples, "burnwatch_probe_phase_duration_seconds", &connect),
            0.02
        );
        assert_eq!(
            value(
                &samples,
                "burnwatch_build_info",
                &[("version", env!("CARGO_PKG_VERSION"))]
            ),
            1.0
        );
        assert!(
            samples.iter().all(|s| s.value.is_finite()),
            "no NaN or infinity"
        );
    }

    #[test]
    fn deleted_slos_disappear() {
        let snap = snapshot();
        let mut gone = (*snap).clone();
        gone.slos.clear();
        let page = encode(&Arc::new(gone)).expect("encodes");
        assert!(!page.contains("slo=\"up\""), "{page}");
        assert!(encode(&snap).expect("encodes").contains("slo=\"up\""));
    }

    #[test]
    fn alerting_families_read_the_view() {
        use crate::alert::{Alert, Fingerprint, Matchers};
        use crate::notify::delivery::IntegrationStats;
        use crate::notify::dispatch::AlertView;
        use crate::notify::silence::Silence;
        let at = Timestamp(1_780_000_000_000);
        let alert = |name: &str, state: SuppressionState| {
            let labels: crate::rules::model::Labels =
                [("alertname".to_owned(), name.to_owned())].into();
            AlertView {
                fingerprint: Fingerprint::of(&labels),
                alert: Alert {
                    labels,
                    annotations: Default::default(),
                    starts_at: at,
                    ends_at: None,
                    generator_url: String::new(),
                },
                state,
                silenced_by: Vec::new(),
                inhibited_by: Vec::new(),
                receivers: vec!["oncall".into()],
            }
        };
        let silence = |id: &str, end_s: u64| Silence {
            id: id.into(),
            matchers: Matchers::parse(r#"a="1""#).expect("valid"),
            starts_at: Timestamp(0),
            ends_at: at.add(crate::time::Dur::from_secs(end_s)),
            created_by: "me".into(),
            comment: "c".into(),
            updated_at: Timestamp(0),
        };
        let hook = |idx: usize, queue_len: usize, breaker: BreakerState| IntegrationStats {
            receiver: "oncall".into(),
            integration_idx: idx,
            kind: "webhook",
            queue_len,
            breaker,
            ..Default::default()
        };
        let mut view = AlertingView {
            at,
            alerts: vec![
                alert("A", SuppressionState::Active),
                alert("B", SuppressionState::Suppressed),
            ],
            pending: 3,
            silences: vec![silence("s1", 60), silence("s2", 0), silence("s3", 0)],
            integrations: vec![
                hook(0, 2, BreakerState::Open),
                hook(1, 1, BreakerState::Closed),
            ],
            last_save_ms: Some(1_780_000_000_500),
            ..Default::default()
        };
        view.flapping.insert(Fingerprint(1));
        view.counters
            .notifications
            .insert(("oncall".into(), "webhook", "first"), 4);
        view.counters
            .failed
            .insert(("oncall".into(), "webhook", "permanent"), 1);
        view.counters
            .superseded
            .insert(("oncall".into(), "webhook"), 7);
        view.counters.suppressed.insert("silenced", 5);
        let page = encode_page(&snapshot(), Some(&Arc::new(view)), PageOptions::default())
            .expect("encodes");
        let samples = parse_owned(page.as_bytes(), Format::OpenMetrics).expect("valid OpenMetrics");
        let v = |name: &str, labels: &[(&str, &str)]| value(&samples, name, labels);
        for (state, n) in [
            ("firing", 2.0),
            ("pending", 3.0),
            ("suppressed", 1.0),
            ("flapping", 1.0),
        ] {
            assert_eq!(v("burnwatch_alerts", &[("state", state)]), n, "{state}");
        }
        let hook_l = [("receiver", "oncall"), ("integration", "webhook")];
        let with = |why: &'static str| [hook_l[0], hook_l[1], ("reason", why)];
        assert_eq!(v("burnwatch_notifications_total", &with("first")), 4.0);
        assert_eq!(v("burnwatch_notifications_total", &with("repeat")), 0.0);
        assert_eq!(
            samples
                .iter()
                .filter(|s| s.name == "burnwatch_notifications_total")
                .count(),
            5,
            "one row per reason for the one (receiver, kind) pair"
        );
        assert_eq!(
            v("burnwatch_notifications_failed_total", &with("permanent")),
            1.0
        );
        assert_eq!(
            v("burnwatch_notifications_failed_total", &with("shutdown")),
            0.0
        );
        // Superseded is not a failure: its own family, not a failure reason.
        assert_eq!(v("burnwatch_notifications_superseded_total", &hook_l), 7.0);
        assert!(
            !samples
                .iter()
                .any(|s| s.name == "burnwatch_notifications_failed_total"
                    && s.labels.iter().any(|(_, v)| v == "superseded")),
            "superseded counted as a failure"
        );
        // Two webhooks of one receiver: queues add up, one breaker is open.
        assert_eq!(v("burnwatch_notification_queue_length", &hook_l), 3.0);
        assert_eq!(v("burnwatch_notification_breaker_open", &hook_l), 1.0);
        assert_eq!(
            v(
                "burnwatch_alert_suppressions_total",
                &[("reason", "silenced")]
            ),
            5.0
        );
        assert_eq!(
            v(
                "burnwatch_alert_suppressions_total",
                &[("reason", "inhibited")]
            ),
            0.0
        );
        // s1 ends a minute after the view; s2 and s3 end at it (the end is exclusive).
        assert_eq!(v("burnwatch_silences", &[("state", "active")]), 1.0);
        assert_eq!(v("burnwatch_silences", &[("state", "expired")]), 2.0);
        assert_eq!(v("burnwatch_silences", &[("state", "pending")]), 0.0);
        assert_eq!(
            v("burnwatch_alerting_state_save_timestamp_seconds", &[]),
            1_780_000_000.5
        );
        assert_eq!(v("burnwatch_alerting_state_save_failures_total", &[]), 0.0);
        // The SLO families are still there, and without a view none of these are.
        assert_eq!(v("burnwatch_slo_objective_ratio", &[("slo", "up")]), 0.995);
        assert!(
            !encode(&snapshot())
                .expect("encodes")
                .contains("burnwatch_alerts")
        );
    }
}
