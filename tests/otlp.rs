//! The OTLP push against in-process receivers on loopback (a tonic `MetricsService` and a hyper
//! server decoding OTLP/HTTP protobuf bodies): the values that arrive equal the snapshot's, the
//! configured resource attributes and headers arrive, a deleted SLO disappears from the next
//! export, and a collector that is not listening does not hold shutdown beyond a bound.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use burnwatch::agent::AgentSnapshot;
use burnwatch::agent::evaluator::{Evaluator, Observation};
use burnwatch::export::otlp::{OtlpConfig, OtlpExporter, OtlpProtocol};
use burnwatch::probe::{Phases, ProbeOutcome};
use burnwatch::rules::load_str;
use burnwatch::time::Timestamp;
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

/// What one export request carried, flattened.
#[derive(Debug, Default)]
struct Received {
    resource: BTreeMap<String, String>,
    /// (metric name, sorted attributes) → value.
    points: BTreeMap<(String, Vec<(String, String)>), f64>,
    /// Monotonic cumulative sums seen (by name).
    counters: Vec<String>,
    /// The test header, as the receiver saw it.
    token: Option<String>,
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
        ..Received::default()
    };
    for rm in &req.resource_metrics {
        if let Some(r) = &rm.resource {
            out.resource.extend(attrs(&r.attributes));
        }
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
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
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(MetricsServiceServer::new(Mock(tx)))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (format!("http://{addr}"), rx)
}

async fn http_receiver() -> (String, mpsc::UnboundedReceiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let tx = tx.clone();
                        async move {
                            let ok = req.method() == hyper::Method::POST
                                && req.uri().path() == "/v1/metrics";
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
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (format!("http://{addr}"), rx)
}

/// The first export for which `pred` holds, within [`DEADLINE`].
async fn wait_for(
    rx: &mut mpsc::UnboundedReceiver<Received>,
    pred: impl Fn(&Received) -> bool,
) -> Received {
    tokio::time::timeout(DEADLINE, async {
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
    let exporter = OtlpExporter::start(&config(endpoint, protocol), snaps).expect("starts");

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
        get(&r, "burnwatch_slo_error_budget_minutes", &slo),
        report.budget.total_minutes
    );
    let mut good = slo.to_vec();
    good.push(("result", "good"));
    let mut bad = slo.to_vec();
    bad.push(("result", "bad"));
    assert_eq!(get(&r, "burnwatch_slo_events", &good), 9.0);
    assert_eq!(get(&r, "burnwatch_slo_events", &bad), 1.0);
    assert!(r.counters.iter().any(|n| n == "burnwatch_slo_events"));
    let p = [("probe", "home")];
    assert_eq!(get(&r, "burnwatch_probe_success", &p), 1.0);
    assert_eq!(get(&r, "burnwatch_probe_checks", &p), 10.0);
    assert_eq!(get(&r, "burnwatch_probe_failures", &p), 1.0);
    assert_eq!(get(&r, "burnwatch_probe_http_status_code", &p), 200.0);
    assert_eq!(
        get(
            &r,
            "burnwatch_probe_phase_duration_seconds",
            &[("probe", "home"), ("phase", "connect")]
        ),
        0.02
    );
    assert_eq!(get(&r, "burnwatch_rules_slos", &[]), 1.0);
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
