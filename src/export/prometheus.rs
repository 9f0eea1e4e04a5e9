//! The `/metrics` page: every family of the [`catalogue`] in the configured series set (compact
//! by default, see [`crate::export::catalogue::Compact`]; and, when configured, Sloth's series)
//! over one snapshot, in the exposition format the scraper asks for ([`negotiate`]):
//! OpenMetrics 1.0 when its `Accept` names `application/openmetrics-text`, Prometheus text
//! 0.0.4 otherwise (curl, `promtool check metrics`, older scrapers), gzip-compressed when its
//! `Accept-Encoding` allows ([`accepts_gzip`], [`gzip`]). The page is computed at
//! scrape time; nothing is cached between scrapes, so a deleted SLO, probe or target disappears
//! at once. Label sets come from the rules (bounded by config), never from scraped data, except the
//! `group_by` labels of grouped SLOs, whose instances are bounded by each rule's `max_instances`.
//!
//! Cost: the full page for 10,000 SLOs has ~380k samples (the compact one ~150k), and each
//! carries its SLO's whole label set. So an SLO's labels are escaped and rendered to text once
//! per page and copied in with one call per sample, and the buffer is sized from the rows up
//! front (see `benches/export.rs`: 0.6 s of CPU for the compact page of 100,000 SLOs).

use std::fmt;
use std::sync::Arc;

use crate::config::SeriesSet;
use crate::export::catalogue::{FAMILIES, Sink, Sources};
use crate::export::text::{PageWriter, Value, render_label};
use crate::exposition::Format;
use crate::view::{AgentSnapshot, AlertingView};

/// The content type of an OpenMetrics page.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The content type of a text 0.0.4 page.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The content type of a page in `format`.
pub fn content_type(format: Format) -> &'static str {
    match format {
        Format::OpenMetrics => CONTENT_TYPE,
        Format::Text => TEXT_CONTENT_TYPE,
    }
}

/// The format to serve for a request's `Accept` header: OpenMetrics when a media range
/// `application/openmetrics-text` is accepted (a `q` above 0), text 0.0.4 otherwise, including
/// without the header and for `*/*`. Prometheus asks for OpenMetrics first; `promtool`, curl
/// and text-only scrapers get the text format they read.
pub fn negotiate(accept: Option<&str>) -> Format {
    let Some(accept) = accept else {
        return Format::Text;
    };
    let om = accept.split(',').any(|range| {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default();
        if !media.eq_ignore_ascii_case("application/openmetrics-text") {
            return false;
        }
        // `q=0` means "not acceptable".
        !parts.any(|p| {
            p.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("q")
                    && v.trim().parse::<f64>().is_ok_and(|q| q <= 0.0)
            })
        })
    });
    if om {
        Format::OpenMetrics
    } else {
        Format::Text
    }
}

/// Whether a request's `Accept-Encoding` accepts gzip: `gzip` (or `x-gzip`) listed with a `q`
/// above 0, or, when gzip is not listed, `*` with a `q` above 0 (RFC 9110 12.5.3). Without the
/// header: no (the page goes uncompressed to clients that do not ask). Prometheus sends `gzip`.
pub fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    let Some(header) = accept_encoding else {
        return false;
    };
    let mut star = false;
    for coding in header.split(',') {
        let mut parts = coding.split(';').map(str::trim);
        let name = parts.next().unwrap_or_default();
        let q_positive = !parts.any(|p| {
            p.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("q")
                    && v.trim().parse::<f64>().is_ok_and(|q| q <= 0.0)
            })
        });
        if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
            return q_positive;
        }
        if name == "*" {
            star = q_positive;
        }
    }
    star
}

/// `page` gzip-compressed at the fastest level: a page is repetitive (the same family names and
/// label sets on every line), so level 1 already shrinks it about tenfold, at several times the
/// speed of the default level (figures in `benches/export.rs` and the README).
pub fn gzip(page: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write as _;
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(page.len() / 8 + 64),
        flate2::Compression::fast(),
    );
    enc.write_all(page)?;
    enc.finish()
}

/// What the page carries besides burnwatch's own families (agent config `export.prometheus`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageOptions {
    /// Add the Sloth-compatible `slo:*` and `sloth_slo_info` series (see
    /// [`crate::export::sloth`]).
    pub sloth_compatible: bool,
    /// Which series of each family (config `export.series`; see
    /// [`crate::export::catalogue::Compact`]).
    pub series: SeriesSet,
}

/// The OpenMetrics page for `snap` with burnwatch's families only.
pub fn encode(snap: &Arc<AgentSnapshot>) -> Result<String, fmt::Error> {
    encode_with(snap, PageOptions::default())
}

/// The OpenMetrics page for `snap` with the families `opts` asks for.
pub fn encode_with(snap: &Arc<AgentSnapshot>, opts: PageOptions) -> Result<String, fmt::Error> {
    encode_page(snap, None, opts)
}

/// The OpenMetrics page for `snap` and, when given, the alerting families of `alerting`.
pub fn encode_page(
    snap: &Arc<AgentSnapshot>,
    alerting: Option<&Arc<AlertingView>>,
    opts: PageOptions,
) -> Result<String, fmt::Error> {
    Ok(render(snap, alerting, opts, Format::OpenMetrics))
}

/// The page for `snap` and, when given, the alerting families of `alerting` (the newest view
/// of the alerting task), with the families `opts` asks for, in `format`.
pub fn render(
    snap: &AgentSnapshot,
    alerting: Option<&Arc<AlertingView>>,
    opts: PageOptions,
    format: Format,
) -> String {
    let sources = Sources::new(snap, alerting.map(|v| v.as_ref()), opts.series);
    let mut out = String::with_capacity(page_estimate(snap, opts));
    let mut writer = PageWriter::new(&mut out, format);
    let rendered: Vec<String> = sources
        .rows
        .iter()
        .map(|row| {
            let mut l = String::with_capacity(64);
            for (k, v) in row.labels() {
                render_label(&mut l, k, v);
            }
            l
        })
        .collect();
    for f in FAMILIES {
        if f.subject == crate::export::catalogue::Subject::Alerting && alerting.is_none()
            || opts.series == SeriesSet::Compact && !f.in_compact()
        {
            continue;
        }
        writer.family(f.name, f.help, f.kind);
        let mut sink = PageSink {
            writer: &mut writer,
            rendered: &rendered,
        };
        f.emit(&sources, &mut sink);
    }
    if opts.sloth_compatible {
        crate::export::sloth::write(&mut writer, snap);
    }
    writer.finish();
    out
}

/// Writes catalogue samples with their SLO's pre-rendered labels.
struct PageSink<'w, 'o> {
    writer: &'w mut PageWriter<'o>,
    rendered: &'w [String],
}

impl Sink for PageSink<'_, '_> {
    fn sample(&mut self, slo: Option<usize>, labels: &[(&'static str, &str)], value: Value) {
        let base = slo
            .and_then(|i| self.rendered.get(i))
            .map_or("", String::as_str);
        self.writer.sample(base, labels, value);
    }
}

/// Bytes the page will take, from above: samples per SLO times (name, labels and value), so the
/// buffer of a 30 MB page is allocated once instead of doubling (and copying) its way there.
fn page_estimate(snap: &AgentSnapshot, opts: PageOptions) -> usize {
    let per_slo: usize = snap
        .slos
        .iter()
        .map(|r| {
            let windows = 1 + r.alert_windows.len();
            // Per-window families: all four in every window, or (compact) three in the SLO
            // window and the burn rate in the alert windows.
            let (per_window, latency_windows) = match opts.series {
                SeriesSet::Full => (4 * windows, windows),
                SeriesSet::Compact => (3 + r.alert_windows.len(), 1),
            };
            let latency = if r.window.latency.is_some() {
                4 * latency_windows
            } else {
                0
            };
            let sloth = if opts.sloth_compatible { 16 } else { 0 };
            let samples = per_window + 7 + r.tiers.len() + latency + sloth;
            samples * (SAMPLE_OVERHEAD + r.id.service.len() + r.id.slo.len())
        })
        .sum();
    4096 + per_slo + (snap.probes.len() + snap.targets.len()) * 16 * SAMPLE_OVERHEAD
}

/// Bytes of a sample besides its SLO's names: family name, rules labels, extra labels, value.
const SAMPLE_OVERHEAD: usize = 160;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::{Format, parse_owned};
    use crate::notify::delivery::BreakerState;
    use crate::notify::dispatch::SuppressionState;
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
        let rules = load_str("r.yaml", RULES).expect("rules");
        Arc::new(crate::evaluator::probe_fixture(rules, 1_780_000_000_000))
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
        // First check at t0, evaluated at t0 + 120 s: 2 of the 5 minutes have data. The alert
        // windows' coverage is in the full series set only.
        let full = encode_with(
            &snapshot(),
            PageOptions {
                series: SeriesSet::Full,
                ..PageOptions::default()
            },
        )
        .expect("encodes");
        let full = parse_owned(full.as_bytes(), Format::OpenMetrics).expect("valid OpenMetrics");
        let coverage = |w: &str| {
            value(
                &full,
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
        let mut alerter = crate::alerter::Alerter::new(&snap.rules, "http://bw");
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

    /// The compact page is the full page filtered as the catalogue declares, sample for sample
    /// (checked against the full page, not against the filter's own code), and smaller.
    #[test]
    fn compact_page_is_the_full_page_filtered_as_the_catalogue_says() {
        use crate::export::catalogue::{Compact, FAMILIES};
        let rules = load_str(
            "r.yaml",
            &(RULES.to_owned()
                + "  - name: fast\n    objective: 99\n    window: 7d\n    indicator:\n      latency_threshold: {threshold: 300ms, probe: home}\n"),
        )
        .expect("rules");
        let snap = Arc::new(crate::evaluator::probe_fixture(rules, 1_780_000_000_000));
        let mut alerter = crate::alerter::Alerter::new(&snap.rules, "http://bw");
        alerter.evaluate(&snap, snap.at);
        let view = Arc::new(AlertingView {
            tiers: Arc::new(alerter.tier_phases()),
            ..AlertingView::default()
        });
        let page = |series| {
            let opts = PageOptions {
                series,
                ..PageOptions::default()
            };
            render(&snap, Some(&view), opts, Format::OpenMetrics)
        };
        let (compact, full) = (page(SeriesSet::Compact), page(SeriesSet::Full));
        assert_eq!(PageOptions::default().series, SeriesSet::Compact);
        let c = parse_owned(compact.as_bytes(), Format::OpenMetrics).expect("valid");
        let f = parse_owned(full.as_bytes(), Format::OpenMetrics).expect("valid");
        let slo_window = |s: &crate::exposition::OwnedSample| {
            let slo = s
                .labels
                .iter()
                .find(|(k, _)| k == "slo")
                .map(|(_, v)| v.as_str());
            match slo {
                Some("up") => "30d",
                Some("fast") => "7d",
                other => panic!("{other:?}"),
            }
        };
        let want: Vec<_> = f
            .iter()
            .filter(|s| {
                let fam = FAMILIES
                    .iter()
                    .find(|fam| fam.sample_name() == s.name)
                    .expect("a catalogue family");
                let window = s.labels.iter().find(|(k, _)| k == "window");
                match fam.compact {
                    Compact::All => true,
                    Compact::None => false,
                    Compact::SloWindow => window.is_some_and(|(_, w)| w == slo_window(s)),
                    Compact::AlertWindows => window.is_some_and(|(_, w)| w != slo_window(s)),
                }
            })
            .cloned()
            .collect();
        assert_eq!(c, want);
        // Every kind of selection is exercised, and the compact set keeps no empty family.
        for name in [
            "burnwatch_slo_sli_ratio",
            "burnwatch_slo_burn_rate",
            "burnwatch_slo_latency_seconds",
        ] {
            let n =
                |v: &[crate::exposition::OwnedSample]| v.iter().filter(|s| s.name == name).count();
            assert!(0 < n(&c) && n(&c) < n(&f), "{name}: {} of {}", n(&c), n(&f));
        }
        assert!(!compact.contains("burnwatch_slo_error_budget_seconds"));
        assert!(full.contains("burnwatch_slo_error_budget_seconds"));
        assert!(
            compact.len() < full.len(),
            "{} vs {}",
            compact.len(),
            full.len()
        );
    }

    #[test]
    fn pace_families_read_the_snapshot() {
        use crate::view::Lag;
        let mut snap = (*snapshot()).clone();
        snap.pace
            .probes
            .insert("home".into(), Lag { late: 3, missed: 2 });
        snap.pace.evaluations = Lag { late: 5, missed: 4 };
        snap.pace.queue_length = 7;
        snap.pace.queue_capacity = 4096;
        snap.pace.probe_results_dropped = 11;
        snap.stale_observations = 6;
        let page = encode(&Arc::new(snap)).expect("encodes");
        let samples = parse_owned(page.as_bytes(), Format::OpenMetrics).expect("valid OpenMetrics");
        let p = [("service", "shop"), ("probe", "home")];
        assert_eq!(
            value(&samples, "burnwatch_probe_checks_late_total", &p),
            3.0
        );
        assert_eq!(
            value(&samples, "burnwatch_probe_checks_missed_total", &p),
            2.0
        );
        assert_eq!(
            value(&samples, "burnwatch_evaluations_late_total", &[]),
            5.0
        );
        assert_eq!(
            value(&samples, "burnwatch_evaluations_missed_total", &[]),
            4.0
        );
        assert_eq!(
            value(&samples, "burnwatch_observation_queue_length", &[]),
            7.0
        );
        assert_eq!(
            value(&samples, "burnwatch_observation_queue_capacity", &[]),
            4096.0
        );
        assert_eq!(
            value(&samples, "burnwatch_probe_results_dropped_total", &[]),
            11.0
        );
        assert_eq!(
            value(&samples, "burnwatch_observations_stale_total", &[]),
            6.0
        );
    }

    #[test]
    fn accept_header_picks_the_format() {
        assert_eq!(negotiate(None), Format::Text);
        assert_eq!(negotiate(Some("*/*")), Format::Text);
        assert_eq!(negotiate(Some("text/plain;version=0.0.4")), Format::Text);
        assert_eq!(negotiate(Some(Format::ACCEPT)), Format::OpenMetrics);
        assert_eq!(
            negotiate(Some("Application/OpenMetrics-Text; version=1.0.0")),
            Format::OpenMetrics
        );
        assert_eq!(
            negotiate(Some("application/openmetrics-text;q=0,text/plain")),
            Format::Text
        );
    }

    #[test]
    fn text_and_openmetrics_pages_carry_the_same_samples() {
        let snap = snapshot();
        let text = render(&snap, None, PageOptions::default(), Format::Text);
        let om = render(&snap, None, PageOptions::default(), Format::OpenMetrics);
        // Counters are described under their sample name in text 0.0.4.
        assert!(
            text.contains("# HELP burnwatch_slo_events_total "),
            "{text}"
        );
        assert!(text.contains("# TYPE burnwatch_slo_events_total counter\n"));
        assert!(!text.contains("# EOF"));
        assert!(om.contains("# TYPE burnwatch_slo_events counter\n"));
        let t = parse_owned(text.as_bytes(), Format::Text).expect("valid text");
        let o = parse_owned(om.as_bytes(), Format::OpenMetrics).expect("valid OpenMetrics");
        assert_eq!(t, o);
        assert!(
            t.iter()
                .all(|s| !s.labels.iter().any(|(k, _)| k == "quantile"))
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
            alerts: Arc::new(vec![
                alert("A", SuppressionState::Active),
                alert("B", SuppressionState::Suppressed),
            ]),
            pending: 3,
            silences: Arc::new(vec![silence("s1", 60), silence("s2", 0), silence("s3", 0)]),
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
