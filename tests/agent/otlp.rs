//! The OTLP push against in-process receivers on loopback (a tonic `MetricsService` and a hyper
//! server decoding OTLP/HTTP protobuf bodies): the values that arrive equal the snapshot's, the
//! configured resource attributes and headers arrive, a deleted SLO disappears from the next
//! export, and a collector that is not listening does not hold shutdown beyond a bound. Both
//! transports work over TLS with a private CA given as `ca_file`, and refuse a server whose
//! CA is not trusted.
//!
//! The metric catalogue: every family of `burnwatch::export::catalogue::FAMILIES` is on the
//! `/metrics` page (both formats) and in one OTLP export with the same samples (labels and
//! values), type and unit. One export reads one snapshot: with snapshots published
//! continuously, every export's values come from a single one.
//!
//! The real `burnwatch run` binary with an `export.otlp` block: the pushed values equal its own
//! `/metrics` page (and the synthetic target's exact counts), the header from `{env: ...}` and
//! the resource attributes arrive, SIGTERM pushes the last values once more, and a collector
//! that is down is logged while evaluation goes on.

use crate::common;

use common::TestPki;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use burnwatch::config::SeriesSet;
use burnwatch::export::catalogue::{FAMILIES, Subject};
use burnwatch::export::otlp::{
    OtlpConfig, OtlpExporter, OtlpProtocol, SDK_DEFAULT_CARDINALITY_LIMIT,
};
use burnwatch::export::prometheus::{PageOptions, render};
use burnwatch::export::text::Kind;
use burnwatch::exposition::{Format, OwnedSample, parse_owned};
use burnwatch::probe::{FetchRequest, Prober};
use burnwatch::rules::load_str;
use burnwatch::synthetic::Behaviour;
use burnwatch::time::{Dur, Timestamp};
use burnwatch::view::{AgentSnapshot, AlertingView};
use common::{Proc, drive, free_addr, start_service};
use http_body_util::{BodyExt, Full};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{metric::Data, number_data_point::Value};
use prost::Message;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

/// Every wait in these tests is bounded by this.
const DEADLINE: Duration = Duration::from_secs(20);
/// The bound on waiting for an export of thousands of SLOs (over 100,000 series): building and
/// decoding it in a debug build takes seconds, and more when the suite's other tests share the
/// two cores.
const LARGE_DEADLINE: Duration = Duration::from_secs(90);

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
    indicator: {probe: home}
"#;

fn snapshot() -> Arc<AgentSnapshot> {
    snapshot_of(RULES)
}

fn snapshot_of(rules: &str) -> Arc<AgentSnapshot> {
    let rules = load_str("r.yaml", rules).expect("rules");
    Arc::new(burnwatch::evaluator::probe_fixture(
        rules,
        1_780_000_000_000,
    ))
}

/// What one export request carried, flattened.
#[derive(Debug, Default)]
struct Received {
    resource: BTreeMap<String, String>,
    /// (metric name, sorted attributes) → value.
    points: BTreeMap<(String, Vec<(String, String)>), f64>,
    /// Monotonic cumulative sums seen (by name).
    counters: Vec<String>,
    /// Metric name → (unit, description).
    meta: BTreeMap<String, (String, String)>,
    /// The test header, as the receiver saw it.
    token: Option<String>,
    /// The request's encoded size.
    bytes: usize,
}

fn text(v: &Option<AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        other => format!("{other:?}"),
    }
}

fn attrs(kv: &[KeyValue]) -> Vec<(String, String)> {
    let mut a: Vec<_> = kv.iter().map(|k| (k.key.clone(), text(&k.value))).collect();
    a.sort();
    a
}

fn flatten(req: &ExportMetricsServiceRequest, token: Option<String>) -> Received {
    let mut out = Received {
        token,
        bytes: req.encoded_len(),
        ..Received::default()
    };
    for rm in &req.resource_metrics {
        if let Some(r) = &rm.resource {
            out.resource.extend(attrs(&r.attributes));
        }
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                out.meta
                    .insert(m.name.clone(), (m.unit.clone(), m.description.clone()));
                let points = match &m.data {
                    Some(Data::Gauge(g)) => &g.data_points,
                    Some(Data::Sum(s)) => {
                        // 2 = cumulative.
                        if s.is_monotonic && s.aggregation_temporality == 2 {
                            out.counters.push(m.name.clone());
                        }
                        &s.data_points
                    }
                    _ => continue,
                };
                for p in points {
                    let v = match p.value {
                        Some(Value::AsDouble(d)) => d,
                        Some(Value::AsInt(i)) => i as f64,
                        None => continue,
                    };
                    out.points.insert((m.name.clone(), attrs(&p.attributes)), v);
                }
            }
        }
    }
    out
}

struct Mock(mpsc::UnboundedSender<Received>);

#[tonic::async_trait]
impl MetricsService for Mock {
    async fn export(
        &self,
        req: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let token = req
            .metadata()
            .get("x-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let _ = self.0.send(flatten(req.get_ref(), token));
        Ok(tonic::Response::new(ExportMetricsServiceResponse {
            partial_success: None,
        }))
    }
}

async fn grpc_receiver() -> (String, mpsc::UnboundedReceiver<Received>) {
    grpc_receiver_with(None).await
}

async fn http_receiver() -> (String, mpsc::UnboundedReceiver<Received>) {
    http_receiver_with(None).await
}

/// A gRPC collector, behind TLS with `pki`'s leaf when given.
async fn grpc_receiver_with(pki: Option<&TestPki>) -> (String, mpsc::UnboundedReceiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = mpsc::unbounded_channel();
    let mut server = tonic::transport::Server::builder();
    let scheme = match pki {
        Some(p) => {
            server = server
                .tls_config(tonic::transport::ServerTlsConfig::new().identity(
                    tonic::transport::Identity::from_pem(&p.leaf_pem, &p.leaf_key_pem),
                ))
                .expect("server TLS config");
            "https"
        }
        None => "http",
    };
    tokio::spawn(
        server
            .add_service(MetricsServiceServer::new(Mock(tx)))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (format!("{scheme}://{addr}"), rx)
}

/// An OTLP/HTTP collector, behind TLS with `pki`'s leaf when given.
async fn http_receiver_with(pki: Option<&TestPki>) -> (String, mpsc::UnboundedReceiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = mpsc::unbounded_channel();
    let acceptor = pki.map(|p| tokio_rustls::TlsAcceptor::from(p.server_config()));
    let scheme = if pki.is_some() { "https" } else { "http" };
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                match acceptor {
                    Some(a) => {
                        if let Ok(tls) = a.accept(stream).await {
                            serve_otlp_http(tls, tx).await;
                        }
                    }
                    None => serve_otlp_http(stream, tx).await,
                }
            });
        }
    });
    (format!("{scheme}://{addr}"), rx)
}

/// One HTTP/1.1 connection of the OTLP/HTTP collector.
async fn serve_otlp_http<IO>(io: IO, tx: mpsc::UnboundedSender<Received>)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let tx = tx.clone();
        async move {
            let ok = req.method() == hyper::Method::POST && req.uri().path() == "/v1/metrics";
            let token = req
                .headers()
                .get("x-token")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = req.into_body().collect().await.map(|b| b.to_bytes());
            let decoded = body
                .ok()
                .and_then(|b| ExportMetricsServiceRequest::decode(b).ok());
            let status = match decoded {
                Some(r) if ok => {
                    let _ = tx.send(flatten(&r, token));
                    200
                }
                _ => 400,
            };
            let reply = ExportMetricsServiceResponse {
                partial_success: None,
            }
            .encode_to_vec();
            Ok::<_, Infallible>(
                hyper::Response::builder()
                    .status(status)
                    .header("content-type", "application/x-protobuf")
                    .body(Full::new(bytes::Bytes::from(reply)))
                    .expect("static response"),
            )
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(io), svc)
        .await;
}

/// The first export for which `pred` holds, within [`DEADLINE`].
async fn wait_for(
    rx: &mut mpsc::UnboundedReceiver<Received>,
    pred: impl Fn(&Received) -> bool,
) -> Received {
    wait_within(DEADLINE, rx, pred).await
}

/// The first export for which `pred` holds, within `within`.
async fn wait_within(
    within: Duration,
    rx: &mut mpsc::UnboundedReceiver<Received>,
    pred: impl Fn(&Received) -> bool,
) -> Received {
    tokio::time::timeout(within, async {
        loop {
            let r = rx.recv().await.expect("receiver alive");
            if pred(&r) {
                return r;
            }
        }
    })
    .await
    .expect("an export within the deadline")
}

fn config(endpoint: String, protocol: OtlpProtocol) -> OtlpConfig {
    OtlpConfig {
        interval: Duration::from_millis(200),
        timeout: Duration::from_secs(2),
        headers: vec![("X-Token".into(), "s3cret".into())],
        resource: vec![("deployment.environment.name".into(), "test".into())],
        ..OtlpConfig::new(endpoint, protocol)
    }
}

fn get(r: &Received, name: &str, labels: &[(&str, &str)]) -> f64 {
    let hits: Vec<f64> = r
        .points
        .iter()
        .filter(|((n, a), _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| a.iter().any(|(x, y)| x == k && y == v))
        })
        .map(|(_, v)| *v)
        .collect();
    assert_eq!(hits.len(), 1, "{name} {labels:?}: {hits:?}");
    hits[0]
}

const SLI: &str = "burnwatch_slo_sli_ratio";

async fn round_trip(protocol: OtlpProtocol) {
    let (endpoint, mut rx) = match protocol {
        OtlpProtocol::Grpc => grpc_receiver().await,
        OtlpProtocol::HttpProtobuf => http_receiver().await,
    };
    let snap = snapshot();
    let (tx, snaps) = watch::channel(snap.clone());
    // Tier alert states come from the alerting view (the lifecycles' decisions), as on /metrics.
    let mut alerter = burnwatch::alerter::Alerter::new(&snap.rules, "http://bw");
    alerter.evaluate(&snap, snap.at);
    let view = burnwatch::view::AlertingView {
        tiers: Arc::new(alerter.tier_phases()),
        ..Default::default()
    };
    let (_views_tx, views) = watch::channel(Arc::new(view));
    // The full series set, so that every window's numbers are compared with the snapshot's.
    let cfg = OtlpConfig {
        series: SeriesSet::Full,
        ..config(endpoint, protocol)
    };
    let exporter = OtlpExporter::start_with(&cfg, snaps, Some(views)).expect("starts");

    let r = wait_for(&mut rx, |r| r.points.keys().any(|(n, _)| n == SLI)).await;
    assert_eq!(r.token.as_deref(), Some("s3cret"));
    assert_eq!(
        r.resource.get("service.name").map(String::as_str),
        Some("burnwatch")
    );
    assert_eq!(
        r.resource
            .get("deployment.environment.name")
            .map(String::as_str),
        Some("test")
    );

    let report = &snap.slos[0];
    let slo = [("service", "shop"), ("slo", "up"), ("team", "payments")];
    fn win<'a>(slo: &[(&'a str, &'a str)], w: &'a str) -> Vec<(&'a str, &'a str)> {
        let mut l = slo.to_vec();
        l.push(("window", w));
        l
    }
    // Ground truth: 9 good of 10 checks, objective 99.5%.
    assert_eq!(report.window.sli, 0.9);
    assert_eq!(get(&r, SLI, &win(&slo, "30d")), report.window.sli);
    assert_eq!(get(&r, "burnwatch_slo_objective_ratio", &slo), 0.995);
    assert_eq!(
        get(&r, "burnwatch_slo_window_events", &win(&slo, "30d")),
        report.window.total as f64
    );
    assert!(!report.alert_windows.is_empty());
    for w in &report.alert_windows {
        let name = w.length.to_string();
        assert_eq!(get(&r, SLI, &win(&slo, &name)), w.sli, "{name}");
        assert_eq!(
            get(&r, "burnwatch_slo_burn_rate", &win(&slo, &name)),
            w.burn_rate,
            "{name}"
        );
    }
    // Burn over 5m: (1/10) / 0.005 = 20.
    assert!((get(&r, "burnwatch_slo_burn_rate", &win(&slo, "5m")) - 20.0).abs() < 1e-9);
    assert_eq!(
        get(&r, "burnwatch_slo_error_budget_remaining_ratio", &slo),
        report.budget.remaining
    );
    assert_eq!(
        get(&r, "burnwatch_slo_error_budget_seconds", &slo),
        report.budget.total_minutes * 60.0
    );
    let mut good = slo.to_vec();
    good.push(("result", "good"));
    let mut bad = slo.to_vec();
    bad.push(("result", "bad"));
    assert_eq!(get(&r, "burnwatch_slo_events", &good), 9.0);
    assert_eq!(get(&r, "burnwatch_slo_events", &bad), 1.0);
    assert!(r.counters.iter().any(|n| n == "burnwatch_slo_events"));
    let p = [("service", "shop"), ("probe", "home")];
    assert_eq!(get(&r, "burnwatch_probe_success", &p), 1.0);
    assert_eq!(get(&r, "burnwatch_probe_checks", &p), 10.0);
    assert_eq!(get(&r, "burnwatch_probe_failures", &p), 1.0);
    assert_eq!(get(&r, "burnwatch_probe_http_status_code", &p), 200.0);
    assert_eq!(
        get(
            &r,
            "burnwatch_probe_phase_duration_seconds",
            &[("service", "shop"), ("probe", "home"), ("phase", "connect")]
        ),
        0.02
    );
    assert_eq!(get(&r, "burnwatch_rules_slos", &[]), 1.0);
    let page_fast = [("slo", "up"), ("tier", "page_fast"), ("severity", "page")];
    // One failed check in the first 2 minutes spends 0.67x of page_fast's 1 h budget, not 20x
    // (the whole-window rule of rules.md): quiet, on the page and in the push alike.
    assert_eq!(get(&r, "burnwatch_slo_alert_state", &page_fast), 0.0);
    let page = burnwatch::export::prometheus::encode_page(
        &snap,
        Some(&Arc::new(burnwatch::view::AlertingView {
            tiers: Arc::new(alerter.tier_phases()),
            ..Default::default()
        })),
        Default::default(),
    )
    .expect("page");
    let samples = parse_owned(page.as_bytes(), Format::OpenMetrics).expect("page parses");
    assert_eq!(
        sample(&samples, "burnwatch_slo_alert_state", &page_fast),
        Some(0.0)
    );
    assert_eq!(
        get(
            &r,
            "burnwatch_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    assert!(r.points.values().all(|v| v.is_finite()));

    // A rules reload that drops the SLO: the next exports no longer carry it.
    let mut gone = (*snap).clone();
    gone.slos.clear();
    tx.send(Arc::new(gone)).expect("exporter holds a receiver");
    let r = wait_for(&mut rx, |r| {
        !r.points
            .keys()
            .any(|(n, _)| n.starts_with("burnwatch_slo_"))
    })
    .await;
    assert_eq!(get(&r, "burnwatch_probe_success", &p), 1.0);

    tokio::time::timeout(DEADLINE, exporter.shutdown())
        .await
        .expect("shutdown is bounded")
        .expect("final flush reaches the receiver");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_carries_the_snapshot() {
    round_trip(OtlpProtocol::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protobuf_carries_the_snapshot() {
    round_trip(OtlpProtocol::HttpProtobuf).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_port_does_not_hold_shutdown() {
    for protocol in [OtlpProtocol::Grpc, OtlpProtocol::HttpProtobuf] {
        // A port that was just free: nothing listens there.
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            l.local_addr().expect("addr").port()
        };
        let cfg = OtlpConfig {
            timeout: Duration::from_secs(1),
            ..config(format!("http://127.0.0.1:{port}"), protocol)
        };
        let (_tx, snaps) = watch::channel(snapshot());
        let exporter = OtlpExporter::start(&cfg, snaps).expect("starts without a collector");
        // Let a few exports fail first.
        tokio::time::sleep(Duration::from_millis(700)).await;
        let started = std::time::Instant::now();
        let flushed = tokio::time::timeout(Duration::from_secs(6), exporter.shutdown())
            .await
            .expect("shutdown returns within its bound");
        assert!(
            flushed.is_err(),
            "{protocol:?}: nothing can have received it"
        );
        assert!(started.elapsed() < Duration::from_secs(6));
    }
}

/// Exports over TLS to a collector whose certificate a private CA signed: they arrive when the
/// CA is given as `ca_file`, and none arrives without it (the Mozilla roots do not know it).
async fn tls_round_trip(protocol: OtlpProtocol) {
    let pki = TestPki::new();
    let ca = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(ca.path(), &pki.ca_pem).expect("write CA");
    let (endpoint, mut rx) = match protocol {
        OtlpProtocol::Grpc => grpc_receiver_with(Some(&pki)).await,
        OtlpProtocol::HttpProtobuf => http_receiver_with(Some(&pki)).await,
    };
    assert!(endpoint.starts_with("https://127.0.0.1:"), "{endpoint}");

    let (_tx, snaps) = watch::channel(snapshot());
    let untrusted = OtlpConfig {
        timeout: Duration::from_secs(1),
        ..config(endpoint.clone(), protocol)
    };
    let exporter = OtlpExporter::start(&untrusted, snaps.clone()).expect("starts");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let flushed = tokio::time::timeout(DEADLINE, exporter.shutdown())
        .await
        .expect("shutdown is bounded");
    assert!(
        flushed.is_err(),
        "{protocol:?}: an unknown CA must be refused"
    );
    assert!(rx.try_recv().is_err(), "{protocol:?}: nothing got through");

    let trusted = OtlpConfig {
        ca_file: Some(ca.path().to_owned()),
        ..config(endpoint, protocol)
    };
    let exporter = OtlpExporter::start(&trusted, snaps).expect("starts");
    let r = wait_for(&mut rx, |r| r.points.keys().any(|(n, _)| n == SLI)).await;
    assert_eq!(r.token.as_deref(), Some("s3cret"));
    let slo = [("service", "shop"), ("slo", "up"), ("window", "30d")];
    // Ground truth: 9 good of 10 checks.
    assert_eq!(get(&r, SLI, &slo), 0.9);
    tokio::time::timeout(DEADLINE, exporter.shutdown())
        .await
        .expect("shutdown is bounded")
        .expect("final flush over TLS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_over_tls_with_a_private_ca() {
    tls_round_trip(OtlpProtocol::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_over_tls_with_a_private_ca() {
    tls_round_trip(OtlpProtocol::HttpProtobuf).await;
}

// ---- the catalogue: /metrics and OTLP carry the same families ----

/// Every kind of subject, with a probe-fed latency SLO (percentiles) and a scrape target.
const FULL_RULES: &str = r#"
version: burnwatch/v1
service: shop
labels: {team: payments}
probes:
  - name: home
    http: {url: "http://127.0.0.1:1/"}
    interval: 10s
scrape:
  - name: app
    url: http://127.0.0.1:1/metrics
slos:
  - name: up
    objective: 99.5
    indicator: {probe: home}
  - name: fast
    objective: 99
    labels: {env: prod}
    indicator:
      latency_threshold: {threshold: 300ms, probe: home}
  - name: routes
    objective: 99
    group_by: [route]
    indicator: {ratio: {bad: 'req_total{code="500"}', total: req_total}}
"#;

/// An alerting view with an alert of each state, silences, integrations and counters.
fn alerting_view() -> Arc<AlertingView> {
    use burnwatch::alert::{Alert, Fingerprint, Matchers};
    use burnwatch::notify::delivery::{BreakerState, IntegrationStats};
    use burnwatch::notify::dispatch::{AlertView, SuppressionState};
    use burnwatch::notify::silence::Silence;
    let at = Timestamp(1_780_000_000_000);
    let alert = |name: &str, state: SuppressionState| {
        let labels: burnwatch::rules::model::Labels =
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
        ends_at: at.add(Dur::from_secs(end_s)),
        created_by: "me".into(),
        comment: "c".into(),
        updated_at: Timestamp(0),
    };
    let hook = |idx: usize, kind: &'static str, queue_len: usize, breaker| IntegrationStats {
        receiver: "oncall".into(),
        integration_idx: idx,
        kind,
        queue_len,
        breaker,
        ..Default::default()
    };
    let mut view = AlertingView {
        at,
        alerts: std::sync::Arc::new(vec![
            alert("A", SuppressionState::Active),
            alert("B", SuppressionState::Suppressed),
        ]),
        pending: 3,
        silences: std::sync::Arc::new(vec![silence("s1", 60), silence("s2", 0)]),
        integrations: vec![
            hook(0, "webhook", 2, BreakerState::Open),
            hook(1, "slack", 1, BreakerState::Closed),
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
        .insert(("oncall".into(), "slack", "permanent"), 1);
    view.counters.suppressed.insert("silenced", 5);
    view.counters
        .superseded
        .insert(("oncall".into(), "webhook"), 3);
    view.counters.alertmanager_push_failures = 2;
    view.counters.state_save_failures = 1;
    Arc::new(view)
}

/// Samples of a page, by family sample name: sorted labels → value.
type Series = BTreeMap<String, BTreeMap<Vec<(String, String)>, f64>>;

fn page_series(page: &str, format: Format) -> Series {
    let mut out = Series::new();
    for s in parse_owned(page.as_bytes(), format).expect("a valid page") {
        let mut labels = s.labels;
        labels.sort();
        let previous = out.entry(s.name).or_default().insert(labels, s.value);
        assert!(previous.is_none(), "a series twice on the page");
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_catalogue_family_is_the_same_on_the_page_and_in_otlp() {
    same_on_the_page_and_in_otlp(SeriesSet::Full).await;
}

/// The default series set: the page and the push leave out the same samples.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compact_set_is_the_same_on_the_page_and_in_otlp() {
    same_on_the_page_and_in_otlp(SeriesSet::Compact).await;
}

/// Every family of `series` is on the page and in one push with the same samples, type, unit
/// and labels, and nothing else is on either.
async fn same_on_the_page_and_in_otlp(series: SeriesSet) {
    let mut snap = (*snapshot_of(FULL_RULES)).clone();
    snap.checkpoint.last_ok_ms = Some(1_780_000_100_000);
    snap.evaluation_seconds = 0.125;
    // A query source, so its families have samples.
    snap.sources.push(burnwatch::view::SourceStatus::new(
        "prom",
        &burnwatch::source::REASONS,
    ));
    let snap = Arc::new(snap);
    let view = alerting_view();
    let (_tx, snaps) = watch::channel(snap.clone());
    let (_vtx, views) = watch::channel(view.clone());
    let (endpoint, mut rx) = grpc_receiver().await;
    let cfg = OtlpConfig {
        series,
        ..config(endpoint, OtlpProtocol::Grpc)
    };
    let exporter = OtlpExporter::start_with(&cfg, snaps, Some(views)).expect("starts");
    let r = wait_for(&mut rx, |r| r.points.keys().any(|(n, _)| n == SLI)).await;

    let opts = PageOptions {
        series,
        ..PageOptions::default()
    };
    let text = page_series(
        &render(&snap, Some(&view), opts, Format::Text),
        Format::Text,
    );
    let om = page_series(
        &render(&snap, Some(&view), opts, Format::OpenMetrics),
        Format::OpenMetrics,
    );
    assert_eq!(text, om, "both formats carry the same samples");
    let mut pushed = Series::new();
    for ((name, labels), v) in &r.points {
        pushed
            .entry(name.clone())
            .or_default()
            .insert(labels.clone(), *v);
    }
    let in_set =
        |f: &&burnwatch::export::catalogue::Family| series == SeriesSet::Full || f.in_compact();
    for f in FAMILIES {
        let on_page = text.get(f.sample_name().as_ref());
        let in_otlp = pushed.get(f.name);
        if !in_set(&f) {
            assert!(on_page.is_none() && in_otlp.is_none(), "{}", f.name);
            continue;
        }
        assert!(
            on_page.is_some_and(|s| !s.is_empty()),
            "{} is not on the page",
            f.sample_name()
        );
        assert_eq!(on_page, in_otlp, "{}: page and OTLP differ", f.name);
        // Labels: the subject's (and an SLO's rules labels), then the family's own.
        for labels in on_page.into_iter().flat_map(|s| s.keys()) {
            let mut want: Vec<&str> = f.subject.labels().to_vec();
            if f.subject == Subject::Slo {
                want.push("team");
                if labels.iter().any(|(k, v)| k == "slo" && v == "fast") {
                    want.push("env");
                }
            }
            want.extend(f.labels.iter().map(|(k, _)| *k));
            want.sort_unstable();
            let got: Vec<&str> = labels.iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(got, want, "{}", f.name);
        }
        let (unit, help) = &r.meta[f.name];
        assert_eq!(
            (unit.as_str(), help.as_str()),
            (f.unit, f.help),
            "{}",
            f.name
        );
        assert_eq!(
            r.counters.iter().any(|n| n == f.name),
            f.kind == Kind::Counter,
            "{}: counters are cumulative monotonic sums, gauges are not",
            f.name
        );
    }
    // Nothing else is on either side.
    let families: Vec<String> = FAMILIES
        .iter()
        .filter(in_set)
        .map(|f| f.sample_name().into_owned())
        .collect();
    assert!(
        text.keys().all(|n| families.contains(n)),
        "{:?}",
        text.keys()
    );
    assert_eq!(pushed.len(), families.len());
    // Spot checks against the inputs.
    let bad = [("slo".to_owned(), "up".to_owned())];
    assert!(
        text["burnwatch_slo_events_total"]
            .iter()
            .any(|(l, v)| l.contains(&bad[0])
                && l.contains(&("result".into(), "bad".into()))
                && *v == 1.0)
    );
    assert_eq!(
        text["burnwatch_alertmanager_push_failures_total"]
            .values()
            .next(),
        Some(&2.0)
    );
    tokio::time::timeout(DEADLINE, exporter.shutdown())
        .await
        .expect("shutdown is bounded")
        .expect("final flush");
}

/// The rules of `n` SLOs read by one probe: a snapshot large enough that observing every
/// instrument takes a while.
fn many_slos(n: usize) -> String {
    let mut rules = String::from(
        "version: burnwatch/v1\nservice: shop\nprobes:\n  - name: home\n    http: {url: \"http://127.0.0.1:1/\"}\n    interval: 10s\nslos:\n",
    );
    for i in 0..n {
        rules.push_str(&format!(
            "  - name: s{i}\n    objective: 99.5\n    indicator: {{probe: home}}\n"
        ));
    }
    rules
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_export_reads_one_snapshot() {
    let base = snapshot_of(&many_slos(300));
    // Snapshot `i` says `i` in a family observed first (the SLOs' event counters) and in
    // families observed last (rules, evaluation duration).
    let numbered = move |i: u64| {
        let mut s = (*base).clone();
        for v in s.events_total.values_mut() {
            *v = (i, 0);
        }
        s.rules_status.slos = i as usize;
        s.evaluation_seconds = i as f64;
        Arc::new(s)
    };
    let (tx, snaps) = watch::channel(numbered(0));
    let (endpoint, mut rx) = grpc_receiver().await;
    let cfg = OtlpConfig {
        interval: Duration::from_millis(100),
        ..config(endpoint, OtlpProtocol::Grpc)
    };
    let exporter = OtlpExporter::start(&cfg, snaps).expect("starts");
    // A publisher as fast as it can go, so every export overlaps several publications.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let publisher = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut i = 1u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && i < 10_000_000 {
                if tx.send(numbered(i)).is_err() {
                    break;
                }
                i += 1;
            }
            i
        })
    };
    let mut checked = 0;
    let mut distinct = std::collections::BTreeSet::new();
    while checked < 8 {
        let r = tokio::time::timeout(DEADLINE, rx.recv())
            .await
            .expect("an export within the deadline")
            .expect("receiver alive");
        let mut seen: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        for ((name, _), v) in &r.points {
            let which = match name.as_str() {
                "burnwatch_slo_events" if *v != 0.0 => *v as u64,
                "burnwatch_rules_slos" | "burnwatch_evaluation_duration_seconds" => *v as u64,
                _ => continue,
            };
            seen.entry(which).or_default().push(name.clone());
        }
        assert_eq!(
            seen.len(),
            1,
            "one export read several snapshots: {:?}",
            seen.iter().map(|(k, v)| (k, v.len())).collect::<Vec<_>>()
        );
        distinct.extend(seen.into_keys());
        checked += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let published = publisher.join().expect("publisher");
    assert!(published > 8, "the snapshots changed during the exports");
    assert!(distinct.len() > 1, "exports followed the publications");
    tokio::time::timeout(DEADLINE, exporter.shutdown())
        .await
        .expect("shutdown is bounded")
        .expect("final flush");
}

// ---- bounded requests: a large export split, arriving whole ----

/// An export larger than `max_request_bytes` arrives as several requests, each within the
/// bound and complete (resource, metric descriptions), which together carry exactly the
/// points of the same export sent as one request, each point once.
async fn a_large_export_arrives_whole_in_bounded_requests(protocol: OtlpProtocol) {
    let snap = snapshot_of(&mixed_slos(300));
    let view = tiers_view(&snap);
    let start = |endpoint: String, max: usize| {
        let cfg = OtlpConfig {
            max_request_bytes: max,
            timeout: Duration::from_secs(8),
            ..config(endpoint, protocol)
        };
        let (_tx, snaps) = watch::channel(snap.clone());
        let (_vtx, views) = watch::channel(view.clone());
        let e = OtlpExporter::start_with(&cfg, snaps, Some(views)).expect("starts");
        (e, _tx, _vtx)
    };
    let receiver = || async {
        match protocol {
            OtlpProtocol::Grpc => grpc_receiver().await,
            OtlpProtocol::HttpProtobuf => http_receiver().await,
        }
    };
    // The reference: the export as one request.
    let (endpoint, mut rx) = receiver().await;
    let (one, _t1, _v1) = start(endpoint, usize::MAX);
    let whole = wait_within(LARGE_DEADLINE, &mut rx, |_| true).await;
    let _ = tokio::time::timeout(DEADLINE, one.shutdown()).await;
    let max = 64 << 10;
    assert!(
        whole.bytes > 4 * max,
        "large enough to split: {} bytes",
        whole.bytes
    );
    // The same export in requests of at most 64 KiB: the first requests received are the
    // first export's, in order (the reader sends one export after the other).
    let (endpoint, mut rx) = receiver().await;
    let (split, _t2, _v2) = start(endpoint, max);
    let mut union: BTreeMap<(String, Vec<(String, String)>), f64> = BTreeMap::new();
    let mut meta = BTreeMap::new();
    let mut requests = 0;
    while union.len() < whole.points.len() && requests < 10_000 {
        let r = wait_within(LARGE_DEADLINE, &mut rx, |_| true).await;
        requests += 1;
        assert!(r.bytes <= max, "request {requests}: {} bytes", r.bytes);
        assert!(!r.points.is_empty(), "request {requests} carries no point");
        assert_eq!(r.resource, whole.resource, "request {requests}: resource");
        assert_eq!(
            r.token.as_deref(),
            Some("s3cret"),
            "request {requests}: header"
        );
        for (k, v) in r.points {
            assert!(
                union.insert(k.clone(), v).is_none(),
                "request {requests} repeats {k:?}"
            );
        }
        meta.extend(r.meta);
    }
    let _ = tokio::time::timeout(DEADLINE, split.shutdown()).await;
    assert!(
        requests >= whole.bytes / max,
        "{requests} requests for {} bytes",
        whole.bytes
    );
    assert_eq!(union, whole.points, "the requests together are the export");
    assert_eq!(
        meta, whole.meta,
        "every metric keeps its unit and description"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_splits_a_large_export_into_bounded_requests() {
    a_large_export_arrives_whole_in_bounded_requests(OtlpProtocol::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_splits_a_large_export_into_bounded_requests() {
    a_large_export_arrives_whole_in_bounded_requests(OtlpProtocol::HttpProtobuf).await;
}

// ---- cardinality: thousands of SLOs, every series in every export ----

/// `n` SLOs on one probe, every other one a latency SLO (four percentiles per window), each
/// with a rules label: every per-SLO family has thousands of series.
fn mixed_slos(n: usize) -> String {
    let mut rules = String::from(
        "version: burnwatch/v1\nservice: shop\nlabels: {team: payments}\nprobes:\n  - name: home\n    http: {url: \"http://127.0.0.1:1/\"}\n    interval: 10s\nslos:\n",
    );
    for i in 0..n {
        let indicator = if i % 2 == 0 {
            "{probe: home}".to_owned()
        } else {
            "{latency_threshold: {threshold: 300ms, probe: home}}".to_owned()
        };
        rules.push_str(&format!(
            "  - name: s{i}\n    objective: 99.5\n    labels: {{shard: x{}}}\n    indicator: {indicator}\n",
            i % 7
        ));
    }
    rules
}

/// The push settings of the large tests: an export of 120k series takes a few seconds in a
/// debug build on a busy machine, more than [`config`]'s timeout.
/// One request per export (no bound), so that each request received is a whole export.
fn large_config(endpoint: String) -> OtlpConfig {
    OtlpConfig {
        timeout: Duration::from_secs(8),
        max_request_bytes: usize::MAX,
        ..config(endpoint, OtlpProtocol::HttpProtobuf)
    }
}

/// The alerting view of `snap` with its tier alert states, as the alerting task publishes it.
fn tiers_view(snap: &AgentSnapshot) -> Arc<AlertingView> {
    let mut alerter = burnwatch::alerter::Alerter::new(&snap.rules, "http://bw");
    alerter.evaluate(snap, snap.at);
    Arc::new(AlertingView {
        tiers: Arc::new(alerter.tier_phases()),
        ..Default::default()
    })
}

/// The first export that carries `slos` SLOs (`burnwatch_rules_slos`); then every family has
/// as many distinct attribute sets in it as the `/metrics` page of the same snapshot has
/// samples, and none is the SDK's overflow set (`otel.metric.overflow`), which would fold
/// series beyond its cardinality limit into one. Returns the largest family's series count.
async fn every_series_arrives(
    rx: &mut mpsc::UnboundedReceiver<Received>,
    snap: &AgentSnapshot,
    view: &Arc<AlertingView>,
    slos: usize,
) -> usize {
    let r = wait_within(LARGE_DEADLINE, rx, |r| {
        r.points
            .iter()
            .any(|((n, _), v)| n == "burnwatch_rules_slos" && *v == slos as f64)
    })
    .await;
    let overflow: Vec<&String> = r
        .points
        .keys()
        .filter(|(_, a)| a.iter().any(|(k, _)| k == "otel.metric.overflow"))
        .map(|(n, _)| n)
        .collect();
    assert!(
        overflow.is_empty(),
        "series folded into overflow: {overflow:?}"
    );
    let page = page_series(
        &render(snap, Some(view), PageOptions::default(), Format::Text),
        Format::Text,
    );
    let mut pushed: BTreeMap<&str, usize> = BTreeMap::new();
    for (name, _) in r.points.keys() {
        *pushed.entry(name.as_str()).or_default() += 1;
    }
    let mut largest = 0;
    for f in FAMILIES {
        let on_page = page.get(f.sample_name().as_ref()).map_or(0, BTreeMap::len);
        largest = largest.max(on_page);
        assert_eq!(
            pushed.get(f.name).copied().unwrap_or(0),
            on_page,
            "{}: series in one OTLP export vs samples on /metrics",
            f.name
        );
    }
    largest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_slos_reach_otlp_without_overflow() {
    let snap = snapshot_of(&mixed_slos(2_100));
    let view = tiers_view(&snap);
    let (_tx, snaps) = watch::channel(snap.clone());
    let (_vtx, views) = watch::channel(view.clone());
    // OTLP/HTTP: the test's gRPC server keeps tonic's 4 MiB message bound.
    let (endpoint, mut rx) = http_receiver().await;
    let exporter =
        OtlpExporter::start_with(&large_config(endpoint), snaps, Some(views)).expect("starts");
    let largest = every_series_arrives(&mut rx, &snap, &view, 2_100).await;
    assert!(
        largest > 4 * SDK_DEFAULT_CARDINALITY_LIMIT,
        "large enough: {largest}"
    );
    // Bounded; whether the final flush of 120k series fits the SDK's fixed 5 s shutdown in a
    // debug build on a busy machine is not this test's question (the small tests check it).
    let _ = tokio::time::timeout(DEADLINE, exporter.shutdown())
        .await
        .expect("shutdown is bounded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slos_added_by_a_reload_reach_otlp_without_overflow() {
    // The exporter starts on a small rule set; a reload then brings thousands of SLOs.
    let small = snapshot_of(&mixed_slos(10));
    let (tx, snaps) = watch::channel(small.clone());
    let (vtx, views) = watch::channel(tiers_view(&small));
    let (endpoint, mut rx) = http_receiver().await;
    let exporter =
        OtlpExporter::start_with(&large_config(endpoint), snaps, Some(views)).expect("starts");
    every_series_arrives(&mut rx, &small, &tiers_view(&small), 10).await;
    let big = snapshot_of(&mixed_slos(2_100));
    let view = tiers_view(&big);
    vtx.send(view.clone()).expect("exporter alive");
    tx.send(big.clone()).expect("exporter alive");
    let largest = every_series_arrives(&mut rx, &big, &view, 2_100).await;
    assert!(
        largest > 4 * SDK_DEFAULT_CARDINALITY_LIMIT,
        "large enough: {largest}"
    );
    // Bounded; whether the final flush of 120k series fits the SDK's fixed 5 s shutdown in a
    // debug build on a busy machine is not this test's question (the small tests check it).
    let _ = tokio::time::timeout(DEADLINE, exporter.shutdown())
        .await
        .expect("shutdown is bounded");
}

// ---- the real agent binary ----

fn agent_rules(base: &str) -> String {
    format!(
        r#"version: burnwatch/v1
service: shop
labels: {{team: payments}}
scrape:
  - name: shop
    url: {base}/metrics
    interval: 1s
slos:
  - name: availability
    objective: 99
    indicator:
      ratio:
        bad: 'demo_http_requests_total{{code=~"5..",job="shop"}}'
        total: 'demo_http_requests_total{{job="shop"}}'
"#
    )
}

/// A directory with rules for the service at `base` and an agent config pushing to `endpoint`
/// every `interval`; returns (directory, config file, listen address).
fn agent_dir(base: &str, endpoint: &str, interval: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("shop.yaml"), agent_rules(base)).expect("rules");
    let listen = free_addr().to_string();
    let cfg = format!(
        "listen: {listen}\nrules: [shop.yaml]\nevaluation_interval: 1s\ncheckpoint_interval: 1s\n\
         export:\n  series: full\n  otlp:\n    endpoint: {endpoint}\n    interval: {interval}\n    timeout: 1s\n    \
         headers: {{x-token: {{env: BURNWATCH_TEST_OTLP_TOKEN}}}}\n    \
         resource: {{deployment.environment.name: e2e, service.name: slo-agent}}\n"
    );
    std::fs::write(dir.path().join("burnwatch.yaml"), cfg).expect("config");
    (dir, listen)
}

fn spawn_agent(dir: &Path, stderr: Stdio) -> Proc {
    Proc(
        Command::new(env!("CARGO_BIN_EXE_burnwatch"))
            .args(["run", "--config"])
            .arg(dir.join("burnwatch.yaml"))
            .env("RUST_LOG", "warn")
            .env("BURNWATCH_TEST_OTLP_TOKEN", "s3cret")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start burnwatch run"),
    )
}

/// SIGTERM, then the exit status within the deadline.
fn terminate(agent: &mut Proc) -> std::process::ExitStatus {
    let pid = agent.0.id().to_string();
    let sent = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(sent.success(), "kill -TERM {pid}");
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = agent.0.try_wait().expect("wait") {
            return status;
        }
        assert!(Instant::now() < end, "the agent did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The agent's `/metrics` page, parsed.
async fn metrics(prober: &Prober, listen: &str) -> Option<Vec<OwnedSample>> {
    let url = format!("http://{listen}/metrics");
    let r = prober
        .fetch(&FetchRequest::new(&url, Dur::from_secs(2), 16 << 20))
        .await
        .ok()?;
    if r.status != 200 {
        return None;
    }
    parse_owned(
        &r.body,
        Format::from_content_type(r.content_type.as_deref()),
    )
    .ok()
}

fn sample(samples: &[OwnedSample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(x, y)| x == k && y == v))
        })
        .map(|s| s.value)
}

/// Polls `/metrics` until `f` holds.
async fn wait_metrics(
    prober: &Prober,
    listen: &str,
    what: &str,
    f: impl Fn(&[OwnedSample]) -> bool,
) -> Vec<OwnedSample> {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(m) = metrics(prober, listen).await
            && f(&m)
        {
            return m;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

const GOOD: [(&str, &str); 2] = [("slo", "availability"), ("result", "good")];
const BAD: [(&str, &str); 2] = [("slo", "availability"), ("result", "bad")];

/// Starts traffic accounting: waits for the first scrape, drives 40 requests (every 4th fails)
/// and waits until `/metrics` counts exactly 30 good and 10 bad.
async fn counted_traffic(prober: &Prober, base: &str, listen: &str) -> Vec<OwnedSample> {
    wait_metrics(prober, listen, "a first scrape", |m| {
        sample(
            m,
            "burnwatch_target_up",
            &[("service", "shop"), ("target", "shop")],
        ) == Some(1.0)
    })
    .await;
    drive(prober, base, 40).await;
    wait_metrics(prober, listen, "30 good and 10 bad events", |m| {
        sample(m, "burnwatch_slo_events_total", &GOOD) == Some(30.0)
            && sample(m, "burnwatch_slo_events_total", &BAD) == Some(10.0)
    })
    .await
}

fn erring() -> Behaviour {
    Behaviour {
        error_every: 4,
        errors_per_cycle: 1,
        latency: Duration::from_millis(1),
        ..Behaviour::healthy()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_pushes_what_its_metrics_page_shows() {
    let (base, svc, _svc_stop) = start_service(erring()).await;
    let (endpoint, mut rx) = grpc_receiver().await;
    let (dir, listen) = agent_dir(&base, &endpoint, "1s");
    let mut agent = spawn_agent(dir.path(), Stdio::inherit());
    let prober = Prober::new(&[]).expect("prober");
    let page = counted_traffic(&prober, &base, &listen).await;
    // The synthetic service's own counters are the ground truth.
    let truth = svc.stats();
    assert_eq!((truth.requests, truth.code(500)), (40, 10));

    // Every sample of these families on /metrics arrives with the same attributes and value.
    let families = [
        (
            "burnwatch_slo_objective_ratio",
            "burnwatch_slo_objective_ratio",
        ),
        ("burnwatch_slo_sli_ratio", "burnwatch_slo_sli_ratio"),
        ("burnwatch_slo_window_events", "burnwatch_slo_window_events"),
        ("burnwatch_slo_burn_rate", "burnwatch_slo_burn_rate"),
        ("burnwatch_slo_events_total", "burnwatch_slo_events"),
    ];
    // Once the agent has taken in the last scrape these stay put, so a push equals the page
    // sample for sample. The budget left does not: it counts the errors against the whole
    // window, scaled by the window's coverage, which grows at every evaluation; it is checked
    // below against the push's own coverage and burn rate.
    let expected: Vec<_> = families
        .iter()
        .flat_map(|(prom, otlp)| {
            page.iter().filter(move |s| s.name == *prom).map(move |s| {
                let mut labels = s.labels.clone();
                labels.sort();
                ((*otlp).to_owned(), labels, s.value)
            })
        })
        .collect();
    let r = wait_for(&mut rx, |r| {
        expected
            .iter()
            .all(|(n, l, v)| r.points.get(&(n.clone(), l.clone())) == Some(v))
    })
    .await;
    assert_eq!(
        r.token.as_deref(),
        Some("s3cret"),
        "header from {{env: ...}}"
    );
    assert_eq!(
        r.resource.get("service.name").map(String::as_str),
        Some("slo-agent")
    );
    assert_eq!(
        r.resource
            .get("deployment.environment.name")
            .map(String::as_str),
        Some("e2e")
    );
    let mut compared = 0;
    for (prom, otlp) in families {
        for s in page.iter().filter(|s| s.name == prom) {
            let mut labels = s.labels.clone();
            labels.sort();
            let pushed = r.points.get(&(otlp.to_owned(), labels.clone()));
            assert_eq!(pushed, Some(&s.value), "{otlp} {labels:?}");
            compared += 1;
        }
    }
    // objective 1, SLI/events/burn per window (30d + 4 alert windows), events 2.
    assert!(compared >= 1 + 3 * 5 + 2, "{compared}");
    let slo = [("slo", "availability"), ("team", "payments")];
    // The budget left in the same push: 1 - coverage x burn over the SLO window, and close to
    // the page's (the coverage of 30 days moves by a few millionths in the seconds between).
    let mut month = slo.to_vec();
    month.push(("window", "30d"));
    let coverage = get(&r, "burnwatch_slo_window_coverage_ratio", &month);
    let burn = get(&r, "burnwatch_slo_burn_rate", &month);
    let left = get(&r, "burnwatch_slo_error_budget_remaining_ratio", &slo);
    assert!(coverage > 0.0 && coverage < 1e-3, "{coverage}");
    assert!(
        (left - (1.0 - coverage * burn)).abs() < 1e-9,
        "{left} vs {coverage} x {burn}"
    );
    let on_page = page
        .iter()
        .find(|s| {
            s.name == "burnwatch_slo_error_budget_remaining_ratio"
                && s.labels
                    .iter()
                    .any(|(k, v)| k == "slo" && v == "availability")
        })
        .expect("budget left on the page")
        .value;
    assert!((on_page - left).abs() < 1e-3, "{left} vs {on_page}");
    assert_eq!(get(&r, "burnwatch_slo_objective_ratio", &slo), 0.99);
    let mut w = slo.to_vec();
    w.push(("window", "30d"));
    assert_eq!(get(&r, SLI, &w), 30.0 / 40.0);
    assert_eq!(get(&r, "burnwatch_slo_events", &BAD), 10.0);

    let status = terminate(&mut agent);
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_pushes_the_last_values() {
    let (base, _svc, _svc_stop) = start_service(erring()).await;
    let (endpoint, mut rx) = http_receiver().await;
    // An interval no test waits for: whatever arrives is the shutdown push.
    let (dir, listen) = agent_dir(&base, &endpoint, "1h");
    let cfg = dir.path().join("burnwatch.yaml");
    let text = std::fs::read_to_string(&cfg).expect("config");
    std::fs::write(
        &cfg,
        text.replace("timeout: 1s", "protocol: http/protobuf\n    timeout: 1s"),
    )
    .expect("config");
    let mut agent = spawn_agent(dir.path(), Stdio::inherit());
    let prober = Prober::new(&[]).expect("prober");
    counted_traffic(&prober, &base, &listen).await;
    assert!(rx.try_recv().is_err(), "no periodic push before the hour");

    let signalled = Instant::now();
    let status = terminate(&mut agent);
    assert!(status.success(), "{status}");
    let r = tokio::time::timeout(Duration::from_secs(1), rx.recv())
        .await
        .expect("the shutdown push had arrived when the agent exited")
        .expect("receiver alive");
    assert!(signalled.elapsed() < DEADLINE);
    assert_eq!(r.token.as_deref(), Some("s3cret"));
    assert_eq!(get(&r, "burnwatch_slo_events", &GOOD), 30.0);
    assert_eq!(get(&r, "burnwatch_slo_events", &BAD), 10.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_collector_is_logged_and_evaluation_goes_on() {
    let (base, _svc, _svc_stop) = start_service(erring()).await;
    let endpoint = format!("http://{}", free_addr());
    let (dir, listen) = agent_dir(&base, &endpoint, "1s");
    let mut agent = spawn_agent(dir.path(), Stdio::piped());
    let mut stderr = agent.0.stderr.take().expect("piped stderr");
    let log = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let prober = Prober::new(&[]).expect("prober");
    counted_traffic(&prober, &base, &listen).await;
    // Pushes fail every second meanwhile; the API's numbers keep advancing.
    let addr = listen.parse().expect("listen address");
    let end = Instant::now() + DEADLINE;
    drive(&prober, &base, 8).await;
    loop {
        let v = common::get_json(addr, "/api/v1/slos").await;
        if let Ok(v) = &v
            && v["slos"][0]["total"] == 48
        {
            assert_eq!(v["slos"][0]["good"], 36);
            break;
        }
        assert!(Instant::now() < end, "the API did not advance: {v:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let status = terminate(&mut agent);
    assert!(status.success(), "{status}");
    let log = log.join().expect("stderr reader");
    assert!(
        log.contains("OTLP export failed") && log.contains(&endpoint),
        "{log}"
    );
    assert!(!log.contains("s3cret"), "a secret reached the log: {log}");
}
