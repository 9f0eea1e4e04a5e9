//! OTLP metrics push: every number of the newest [`AgentSnapshot`] sent to an OpenTelemetry
//! collector over gRPC or HTTP/protobuf at a fixed interval.
//!
//! This module owns the OpenTelemetry SDK pipeline (resource, exporter, periodic reader) and the
//! instruments. Every instrument is *observable*: its callback reads the newest snapshot from the
//! agent's `watch` channel at export time and reports only what that snapshot holds, so an SLO,
//! probe or target deleted on a rules reload disappears at the next export (a synchronous OTel
//! gauge would re-export its last value forever). Callbacks only read and copy; they never
//! compute or block, because a slow or panicking callback stalls or kills the SDK's reader.
//! The SDK observes instruments one after another, so when the evaluator publishes a snapshot
//! during an export, the instruments observed after it report the newer one: one push may mix
//! two consecutive evaluations (values at most one `evaluation_interval` apart).
//!
//! **Names.** The metric names are exactly the Prometheus family names of `/metrics`
//! ([`super::prometheus`]), with counters named without the `_total` suffix (as OTLP sums
//! are): `burnwatch_slo_sli_ratio`, `burnwatch_slo_burn_rate`, `burnwatch_slo_events`, ...
//! Attributes are the Prometheus labels. Units are set so that Prometheus' own OTLP translation
//! (`_total` for monotonic sums, unit suffixes only when not already present) arrives at the
//! same series names as a scrape of `/metrics`; one set of dashboards and alert queries serves
//! both paths. Ratios have unit `1`, durations `s`, the budget `min`, counts `{event}` etc.
//!
//! **Failure.** The SDK exports on its own thread ("OpenTelemetry.Metrics.PeriodicReader"), so a
//! collector that is down never blocks evaluation: each failed export is logged by the SDK and
//! the next interval simply tries again with fresh values (observable values need no replay).
//! Every export is bounded by [`OtlpConfig::timeout`].
//!
//! Failed exports are logged here (one `warn` line per failed interval, naming the endpoint and
//! the error, never a header value), because the SDK's own logging is compiled out.
//!
//! **TLS.** `https://` endpoints work for both transports with the crate's one TLS stack:
//! rustls with the `ring` provider and the Mozilla roots of `webpki-roots`, plus
//! [`OtlpConfig::ca_file`]. gRPC goes through tonic's rustls connector; OTLP/HTTP goes through
//! `HyperClient` (hyper + tokio-rustls), so neither reqwest nor a second TLS stack is built.
//!
//! **Secrets.** Header values are usually credentials: the `Debug` form of [`OtlpConfig`] shows
//! header names only, and no error or log line carries a value.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::metrics::{Meter, MeterProvider as _, ObservableCounter, ObservableGauge};
use opentelemetry::{Key, KeyValue};
use opentelemetry_otlp::tonic_types::transport::{Certificate, ClientTlsConfig};
use opentelemetry_otlp::{
    MetricExporter, Protocol, WithExportConfig, WithHttpConfig, WithTonicConfig,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};
use tokio::sync::watch;

use crate::agent::AgentSnapshot;
use crate::export::{alert_state_value, quantile_points, rule_labels, window_name};
use crate::rules::model::Slo;
use crate::slo::engine::{SloReport, WindowReport};

/// The `service.name` resource attribute when [`OtlpConfig::resource`] sets none.
pub const DEFAULT_SERVICE_NAME: &str = "burnwatch";

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// OTLP/gRPC (the collector's port 4317 by convention).
    Grpc,
    /// OTLP/HTTP with protobuf bodies, POSTed to `<endpoint>/v1/metrics` (port 4318).
    HttpProtobuf,
}

/// Where and how often to push metrics.
#[derive(Clone, PartialEq)]
pub struct OtlpConfig {
    /// Collector URL, `http://host:port` or `https://host:port`. For HTTP, `/v1/metrics` is
    /// appended unless the path already ends with it.
    pub endpoint: String,
    /// The transport.
    pub protocol: OtlpProtocol,
    /// Time between exports (must be positive).
    pub interval: Duration,
    /// Extra request headers (gRPC metadata for gRPC), e.g. an auth token. Values are treated
    /// as secrets: never shown by `Debug`, errors or logs.
    pub headers: Vec<(String, String)>,
    /// Resource attributes; `service.name` defaults to [`DEFAULT_SERVICE_NAME`].
    pub resource: Vec<(String, String)>,
    /// Bound on one export, connection included (must be positive).
    pub timeout: Duration,
    /// A PEM bundle trusted on top of the Mozilla roots for an `https://` endpoint (e.g. the
    /// private CA that signed the collector's certificate).
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for OtlpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Header values are credentials: show that they exist, not what they are.
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(k, _)| format!("{k}: <redacted>"))
            .collect();
        f.debug_struct("OtlpConfig")
            .field("endpoint", &self.endpoint)
            .field("protocol", &self.protocol)
            .field("interval", &self.interval)
            .field("headers", &headers)
            .field("resource", &self.resource)
            .field("timeout", &self.timeout)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl OtlpConfig {
    /// A config with the OpenTelemetry defaults: 60 s interval, 10 s timeout, no headers.
    pub fn new(endpoint: impl Into<String>, protocol: OtlpProtocol) -> OtlpConfig {
        OtlpConfig {
            endpoint: endpoint.into(),
            protocol,
            interval: Duration::from_secs(60),
            headers: Vec::new(),
            resource: Vec::new(),
            timeout: Duration::from_secs(10),
            ca_file: None,
        }
    }

    /// Everything [`OtlpExporter::start`] would refuse, checked without starting anything:
    /// the endpoint, the headers, the durations and the CA file. The agent config calls it so
    /// that these are config errors with a position.
    pub fn check(&self) -> Result<(), OtlpError> {
        if self.interval.is_zero() {
            return Err(OtlpError::ZeroDuration { what: "interval" });
        }
        if self.timeout.is_zero() {
            return Err(OtlpError::ZeroDuration { what: "timeout" });
        }
        endpoint(self)?;
        header_map(&self.headers)?;
        if let Some(path) = &self.ca_file {
            read_ca(path)?;
        }
        Ok(())
    }

    fn is_https(&self) -> bool {
        self.endpoint.starts_with("https://")
    }
}

/// Why the exporter could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    /// The endpoint is not an `http://` or `https://` URL.
    #[error("OTLP endpoint {endpoint:?}: {reason}")]
    Endpoint {
        /// The configured endpoint.
        endpoint: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A header name or value is not valid in HTTP/gRPC.
    #[error("OTLP header {name:?}: {reason}")]
    Header {
        /// The header name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The interval or timeout is zero.
    #[error("OTLP {what} must be positive")]
    ZeroDuration {
        /// `interval` or `timeout`.
        what: &'static str,
    },
    /// Both transports run their connections on the caller's tokio runtime.
    #[error("OTLP exporter must be started inside a tokio runtime")]
    NoRuntime,
    /// The `ca_file` cannot be read or holds no usable certificate.
    #[error("OTLP ca_file {path}: {reason}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The TLS client configuration cannot be built.
    #[error("OTLP TLS setup: {0}")]
    Tls(String),
    /// The SDK refused the exporter configuration.
    #[error("building the OTLP exporter for {endpoint}: {source}")]
    Build {
        /// The endpoint used.
        endpoint: String,
        /// The SDK's error.
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
    /// The final flush on shutdown failed or did not finish in time.
    #[error("OTLP shutdown: {0}")]
    Shutdown(String),
}

/// A running OTLP push. Dropping it without [`OtlpExporter::shutdown`] stops exports without
/// the final flush.
pub struct OtlpExporter {
    provider: SdkMeterProvider,
    timeout: Duration,
    // Held so the callbacks stay registered for the exporter's life.
    _gauges: Vec<ObservableGauge<f64>>,
    _counters: Vec<ObservableCounter<u64>>,
}

impl std::fmt::Debug for OtlpExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpExporter")
            .field("instruments", &(self._gauges.len() + self._counters.len()))
            .finish_non_exhaustive()
    }
}

impl OtlpExporter {
    /// Builds the pipeline and starts exporting every `cfg.interval`. Must be called inside a
    /// tokio runtime (the connections of both transports run on it).
    pub fn start(
        cfg: &OtlpConfig,
        snapshots: watch::Receiver<Arc<AgentSnapshot>>,
    ) -> Result<OtlpExporter, OtlpError> {
        cfg.check()?;
        let exporter = Logged {
            inner: build_exporter(cfg)?,
            endpoint: cfg.endpoint.clone(),
            failing: AtomicBool::new(false),
        };
        let reader = PeriodicReader::builder(exporter)
            .with_interval(cfg.interval)
            .build();
        let provider = SdkMeterProvider::builder()
            .with_resource(resource(&cfg.resource))
            .with_reader(reader)
            .build();
        let meter = provider.meter("burnwatch");
        let gauges = GAUGES
            .iter()
            .map(|f| gauge(&meter, f, snapshots.clone()))
            .collect();
        let counters = COUNTERS
            .iter()
            .map(|f| counter(&meter, f, snapshots.clone()))
            .collect();
        Ok(OtlpExporter {
            provider,
            timeout: cfg.timeout,
            _gauges: gauges,
            _counters: counters,
        })
    }

    /// Exports the newest values one last time and stops. Bounded: returns within about
    /// twice the export timeout even when the collector does not answer.
    pub async fn shutdown(self) -> Result<(), OtlpError> {
        let provider = self.provider;
        // The SDK's shutdown blocks on its reader thread; off the runtime so a current-thread
        // runtime cannot deadlock on it.
        let done = tokio::task::spawn_blocking(move || provider.shutdown());
        let bound = self.timeout * 2 + Duration::from_secs(1);
        match tokio::time::timeout(bound, done).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(OtlpError::Shutdown(e.to_string())),
            Ok(Err(join)) => Err(OtlpError::Shutdown(join.to_string())),
            Err(_) => Err(OtlpError::Shutdown(format!(
                "final export did not finish within {bound:?}"
            ))),
        }
    }
}

fn build_exporter(cfg: &OtlpConfig) -> Result<MetricExporter, OtlpError> {
    let endpoint = endpoint(cfg)?;
    let build_err = |source| OtlpError::Build {
        endpoint: endpoint.clone(),
        source,
    };
    let headers = header_map(&cfg.headers)?;
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| OtlpError::NoRuntime)?;
    match cfg.protocol {
        OtlpProtocol::Grpc => {
            let mut b = MetricExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint.clone())
                .with_timeout(cfg.timeout)
                .with_temporality(Temporality::Cumulative)
                .with_metadata(
                    opentelemetry_otlp::tonic_types::metadata::MetadataMap::from_headers(headers),
                );
            if cfg.is_https() {
                // tonic's default for https trusts no root at all; give it the same roots as
                // the HTTP transport and the probes.
                let mut tls = ClientTlsConfig::new().with_webpki_roots();
                if let Some(path) = &cfg.ca_file {
                    tls = tls.ca_certificate(Certificate::from_pem(read_ca(path)?));
                }
                b = b.with_tls_config(tls);
            }
            b.build().map_err(build_err)
        }
        OtlpProtocol::HttpProtobuf => {
            let tls = if cfg.is_https() {
                Some(tls_config(cfg.ca_file.as_deref())?)
            } else {
                None
            };
            let client = HyperClient {
                runtime,
                tls,
                timeout: cfg.timeout,
            };
            let headers: HashMap<String, String> = cfg.headers.iter().cloned().collect();
            MetricExporter::builder()
                .with_http()
                .with_http_client(client)
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(endpoint.clone())
                .with_timeout(cfg.timeout)
                .with_temporality(Temporality::Cumulative)
                .with_headers(headers)
                .build()
                .map_err(build_err)
        }
    }
}

/// Reads and checks the CA bundle (see [`crate::probe::tls::read_ca_file`]); returns its bytes.
fn read_ca(path: &std::path::Path) -> Result<Vec<u8>, OtlpError> {
    crate::probe::tls::read_ca_file(path).map_err(tls_error)
}

/// The rustls client configuration of the HTTP transport: the one every outbound HTTPS client
/// shares (ring, Mozilla roots, the CA file).
fn tls_config(ca_file: Option<&std::path::Path>) -> Result<Arc<rustls::ClientConfig>, OtlpError> {
    crate::probe::tls::verifying_config(ca_file).map_err(tls_error)
}

fn tls_error(e: crate::probe::ProbeError) -> OtlpError {
    match e {
        crate::probe::ProbeError::CaFile { path, reason } => OtlpError::CaFile { path, reason },
        e => OtlpError::Tls(e.to_string()),
    }
}

/// Largest collector response read (the SDK's own clients use the same bound).
const MAX_RESPONSE_BYTES: usize = 4 << 20;

/// The OTLP/HTTP transport: one HTTP/1.1 connection per export (exports are seconds to
/// minutes apart, so pooling buys nothing), TLS through tokio-rustls. The SDK calls it from
/// its own reader thread, outside any runtime, so each request runs on the runtime the
/// exporter was started in.
#[derive(Debug)]
struct HyperClient {
    runtime: tokio::runtime::Handle,
    tls: Option<Arc<rustls::ClientConfig>>,
    timeout: Duration,
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for HyperClient {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let send = send(self.tls.clone(), request);
        let timeout = self.timeout;
        // The timer too must be created on the runtime, not on the SDK's thread.
        let bounded = async move { tokio::time::timeout(timeout, send).await };
        match self.runtime.spawn(bounded).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(format!("no answer within {:?}", self.timeout).into()),
            Err(join) => Err(join.to_string().into()),
        }
    }
}

async fn send(
    tls: Option<Arc<rustls::ClientConfig>>,
    request: http::Request<bytes::Bytes>,
) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
    use http_body_util::{BodyExt, Full, Limited};
    use hyper_util::rt::TokioIo;
    let uri = request.uri().clone();
    let host = uri.host().ok_or("the endpoint has no host")?.to_owned();
    let port = uri
        .port_u16()
        .unwrap_or(if tls.is_some() { 443 } else { 80 });
    let (mut parts, body) = request.into_parts();
    // HTTP/1.1 wants origin-form and a Host header.
    parts.uri = uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse()
        .map_err(|e: http::uri::InvalidUri| e.to_string())?;
    let authority = uri.authority().map_or(host.as_str(), |a| a.as_str());
    parts.headers.insert(
        http::header::HOST,
        http::HeaderValue::from_str(authority).map_err(|e| e.to_string())?,
    );
    let request = http::Request::from_parts(parts, Full::new(body));
    // IPv6 literals arrive bracketed in the URI; the resolver and SNI want them bare.
    let bare = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let tcp = tokio::net::TcpStream::connect((bare.as_str(), port)).await?;
    let _ = tcp.set_nodelay(true);
    let response = match tls {
        Some(cfg) => {
            let name = rustls::pki_types::ServerName::try_from(bare)?;
            let stream = tokio_rustls::TlsConnector::from(cfg)
                .connect(name, tcp)
                .await?;
            let (mut tx, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            tx.send_request(request).await?
        }
        None => {
            let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
            tokio::spawn(conn);
            tx.send_request(request).await?
        }
    };
    let (parts, body) = response.into_parts();
    let body = Limited::new(body, MAX_RESPONSE_BYTES)
        .collect()
        .await?
        .to_bytes();
    Ok(http::Response::from_parts(parts, body))
}

/// The SDK exporter, logging each failed export (the SDK's own logging is compiled out) and
/// the recovery after a failure.
struct Logged {
    inner: MetricExporter,
    endpoint: String,
    failing: AtomicBool,
}

impl PushMetricExporter for Logged {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let r = self.inner.export(metrics).await;
        match &r {
            Ok(()) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(endpoint = %self.endpoint, "OTLP export works again");
                }
            }
            Err(e) => {
                self.failing.store(true, Ordering::Relaxed);
                tracing::warn!(
                    endpoint = %self.endpoint,
                    error = %e,
                    "OTLP export failed; the next interval sends fresh values"
                );
            }
        }
        r
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> Temporality {
        self.inner.temporality()
    }
}

/// The URL the SDK gets: checked to be `http://` or `https://` with a host, with the OTLP/HTTP
/// path for HTTP (the SDK uses a programmatic endpoint verbatim).
fn endpoint(cfg: &OtlpConfig) -> Result<String, OtlpError> {
    let bad = |reason| OtlpError::Endpoint {
        endpoint: cfg.endpoint.clone(),
        reason,
    };
    let Some(rest) = cfg
        .endpoint
        .strip_prefix("http://")
        .or_else(|| cfg.endpoint.strip_prefix("https://"))
    else {
        return Err(bad("must start with http:// or https://"));
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Err(bad("has no host"));
    }
    match cfg.endpoint.parse::<http::Uri>() {
        Ok(u) if u.host().is_some_and(|h| !h.is_empty()) => {}
        _ => return Err(bad("is not a valid URL")),
    }
    let base = cfg.endpoint.trim_end_matches('/');
    Ok(match cfg.protocol {
        OtlpProtocol::Grpc => base.to_owned(),
        OtlpProtocol::HttpProtobuf if base.ends_with("/v1/metrics") => base.to_owned(),
        OtlpProtocol::HttpProtobuf => format!("{base}/v1/metrics"),
    })
}

/// Validates the headers once at start (the HTTP exporter would otherwise drop bad ones
/// silently); the result is the gRPC metadata.
fn header_map(headers: &[(String, String)]) -> Result<http::HeaderMap, OtlpError> {
    let mut map = http::HeaderMap::new();
    for (name, value) in headers {
        let bad = |reason: String| OtlpError::Header {
            name: name.clone(),
            reason,
        };
        let n = http::HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
            .map_err(|e| bad(e.to_string()))?;
        let v = http::HeaderValue::from_str(value).map_err(|e| bad(e.to_string()))?;
        map.append(n, v);
    }
    Ok(map)
}

/// The SDK's resource (`telemetry.sdk.*`, `OTEL_RESOURCE_ATTRIBUTES`), then our service name
/// and version, then the configured attributes, each overriding the one before.
fn resource(attrs: &[(String, String)]) -> Resource {
    Resource::builder()
        .with_service_name(DEFAULT_SERVICE_NAME)
        .with_attributes([KeyValue::new("service.version", env!("CARGO_PKG_VERSION"))])
        .with_attributes(
            attrs
                .iter()
                .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
        )
        .build()
}

/// Data points: attributes and value.
type Points<T> = Vec<(Vec<KeyValue>, T)>;

/// One instrument: its name, description, unit and how to read its points off a snapshot.
struct Family<T> {
    name: &'static str,
    help: &'static str,
    unit: &'static str,
    points: fn(&AgentSnapshot) -> Points<T>,
}

fn gauge(
    meter: &Meter,
    f: &'static Family<f64>,
    rx: watch::Receiver<Arc<AgentSnapshot>>,
) -> ObservableGauge<f64> {
    meter
        .f64_observable_gauge(f.name)
        .with_description(f.help)
        .with_unit(f.unit)
        .with_callback(move |obs| {
            let snap = rx.borrow().clone();
            for (attrs, v) in (f.points)(&snap) {
                // The SDK drops them too; skipping here keeps a NaN from ever reaching the wire.
                if v.is_finite() {
                    obs.observe(v, &attrs);
                }
            }
        })
        .build()
}

fn counter(
    meter: &Meter,
    f: &'static Family<u64>,
    rx: watch::Receiver<Arc<AgentSnapshot>>,
) -> ObservableCounter<u64> {
    meter
        .u64_observable_counter(f.name)
        .with_description(f.help)
        .with_unit(f.unit)
        .with_callback(move |obs| {
            let snap = rx.borrow().clone();
            for (attrs, v) in (f.points)(&snap) {
                obs.observe(v, &attrs);
            }
        })
        .build()
}

/// An SLO report, its rule and its attributes.
type SloRow<'a> = (&'a SloReport, &'a Slo, Vec<KeyValue>);

/// Each SLO report with its rule and its attributes (`service`, `slo`, then the rules' labels:
/// see [`rule_labels`]). Reports without a rule are skipped.
fn slo_rows(snap: &AgentSnapshot) -> Vec<SloRow<'_>> {
    snap.slo_rows()
        .into_iter()
        .map(|(report, svc, slo)| {
            let mut attrs = vec![
                KeyValue::new("service", slo.id.service.clone()),
                KeyValue::new("slo", slo.id.slo.clone()),
            ];
            attrs.extend(
                rule_labels(svc, slo)
                    .into_iter()
                    .map(|(k, v)| KeyValue::new(Key::new(k.to_owned()), v.to_owned())),
            );
            (report, slo, attrs)
        })
        .collect()
}

fn with(
    attrs: &[KeyValue],
    extra: impl IntoIterator<Item = (&'static str, String)>,
) -> Vec<KeyValue> {
    let mut a = attrs.to_vec();
    a.extend(extra.into_iter().map(|(k, v)| KeyValue::new(k, v)));
    a
}

/// Every window of every SLO (the SLO window, then each alert window) with `window` set.
fn per_window<T>(snap: &AgentSnapshot, f: fn(&WindowReport) -> T) -> Points<T> {
    let mut out = Vec::new();
    for (r, s, attrs) in slo_rows(snap) {
        out.push((
            with(&attrs, [("window", window_name(&s.window).into_owned())]),
            f(&r.window),
        ));
        for w in &r.alert_windows {
            out.push((with(&attrs, [("window", w.length.to_string())]), f(w)));
        }
    }
    out
}

fn per_slo<T>(snap: &AgentSnapshot, f: fn(&SloReport, &Slo) -> Option<T>) -> Points<T> {
    slo_rows(snap)
        .into_iter()
        .filter_map(|(r, s, attrs)| f(r, s).map(|v| (attrs, v)))
        .collect()
}

fn per_probe<T>(
    snap: &AgentSnapshot,
    f: fn(&crate::agent::evaluator::ProbeStatus) -> Option<T>,
) -> Points<T> {
    snap.probes
        .iter()
        .filter_map(|p| f(p).map(|v| (probe_attrs(p), v)))
        .collect()
}

fn per_target<T>(
    snap: &AgentSnapshot,
    f: fn(&crate::agent::evaluator::TargetStatus) -> T,
) -> Points<T> {
    snap.targets
        .iter()
        .map(|t| {
            let attrs = vec![
                KeyValue::new("service", t.service.clone()),
                KeyValue::new("target", t.name.clone()),
            ];
            (attrs, f(t))
        })
        .collect()
}

/// A probe's attributes: the service that declares it and its name.
fn probe_attrs(p: &crate::agent::evaluator::ProbeStatus) -> Vec<KeyValue> {
    vec![
        KeyValue::new("service", p.service.clone()),
        KeyValue::new("probe", p.name.clone()),
    ]
}

fn agent<T>(v: Option<T>) -> Points<T> {
    v.into_iter().map(|v| (Vec::new(), v)).collect()
}

static GAUGES: [Family<f64>; 24] = [
    Family {
        name: "burnwatch_slo_objective_ratio",
        help: "The SLO's objective as a ratio (99.9% is 0.999)",
        unit: "1",
        points: |s| per_slo(s, |_, slo| Some(slo.objective.ratio())),
    },
    Family {
        name: "burnwatch_slo_sli_ratio",
        help: "Good events over all events in the window (the SLO window and each alert window)",
        unit: "1",
        points: |s| per_window(s, |w| w.sli),
    },
    Family {
        name: "burnwatch_slo_burn_rate",
        help: "Error rate in the window divided by the error budget rate (1 spends the budget exactly over the SLO window)",
        unit: "",
        points: |s| per_window(s, |w| w.burn_rate),
    },
    Family {
        name: "burnwatch_slo_window_events",
        help: "Events in the window (exact counts at bucket resolution)",
        unit: "{event}",
        points: |s| per_window(s, |w| w.total as f64),
    },
    Family {
        name: "burnwatch_slo_window_coverage_ratio",
        help: "Share of the window after the SLO's first collection (1 once collected for the whole window); tier burn rates and the budget count the window's events against its whole budget",
        unit: "1",
        points: |s| per_window(s, |w| w.coverage),
    },
    Family {
        name: "burnwatch_slo_error_budget_remaining_ratio",
        help: "Share of the SLO window's error budget left (negative when overspent)",
        unit: "1",
        points: |s| per_slo(s, |r, _| Some(r.budget.remaining)),
    },
    Family {
        name: "burnwatch_slo_error_budget_minutes",
        help: "The SLO window's error budget as time (e.g. 43.2 for 99.9% of 30 days)",
        unit: "min",
        points: |s| per_slo(s, |r, _| Some(r.budget.total_minutes)),
    },
    Family {
        name: "burnwatch_slo_error_budget_exhaustion_seconds",
        help: "Time until the budget is spent at the 1h burn rate (absent when not burning)",
        unit: "s",
        points: |s| per_slo(s, |r, _| r.time_to_exhaustion.map(|d| d.as_secs_f64())),
    },
    Family {
        name: "burnwatch_slo_latency_seconds",
        help: "Latency percentiles per window (DDSketch, 1% relative error); latency SLOs fed by probes",
        unit: "s",
        points: |snap| {
            let mut out = Vec::new();
            for (r, s, attrs) in slo_rows(snap) {
                let all = std::iter::once((window_name(&s.window).into_owned(), &r.window))
                    .chain(r.alert_windows.iter().map(|w| (w.length.to_string(), w)));
                for (name, w) in all {
                    let Some(q) = &w.latency else { continue };
                    for (p, v) in quantile_points(q) {
                        out.push((
                            with(
                                &attrs,
                                [("window", name.clone()), ("quantile", p.to_owned())],
                            ),
                            v,
                        ));
                    }
                }
            }
            out
        },
    },
    Family {
        name: "burnwatch_slo_alert_state",
        help: "Burn-rate alert tier state: 0 quiet, 1 pending, 2 firing",
        unit: "",
        points: |snap| {
            let mut out = Vec::new();
            for (r, _, attrs) in slo_rows(snap) {
                for t in &r.tiers {
                    let v = alert_state_value(t.state);
                    out.push((
                        with(
                            &attrs,
                            [("tier", t.name.clone()), ("severity", t.severity.clone())],
                        ),
                        v,
                    ));
                }
            }
            out
        },
    },
    Family {
        name: "burnwatch_probe_success",
        help: "Whether the newest check passed (1) or failed (0)",
        unit: "",
        points: |s| {
            per_probe(s, |p| {
                p.last.as_ref().map(|l| f64::from(u8::from(l.success)))
            })
        },
    },
    Family {
        name: "burnwatch_probe_duration_seconds",
        help: "Duration of the newest check",
        unit: "s",
        points: |s| per_probe(s, |p| p.last.as_ref().map(|l| l.duration_secs)),
    },
    Family {
        name: "burnwatch_probe_phase_duration_seconds",
        help: "Duration of each phase of the newest check (resolve, connect, tls, processing, transfer, as blackbox_exporter names them)",
        unit: "s",
        points: |snap| {
            const NAMES: [&str; 5] = ["resolve", "connect", "tls", "processing", "transfer"];
            let mut out = Vec::new();
            for p in &snap.probes {
                let Some(l) = &p.last else { continue };
                for (n, v) in NAMES.iter().zip(l.phases) {
                    let mut attrs = probe_attrs(p);
                    attrs.push(KeyValue::new("phase", *n));
                    out.push((attrs, v));
                }
            }
            out
        },
    },
    Family {
        name: "burnwatch_probe_http_status_code",
        help: "HTTP status of the newest check",
        unit: "",
        points: |s| per_probe(s, |p| p.last.as_ref().and_then(|l| l.status).map(f64::from)),
    },
    Family {
        name: "burnwatch_probe_ssl_earliest_cert_expiry",
        help: "Expiry of the TLS leaf certificate, Unix seconds",
        // No unit: Prometheus' translation would append `_seconds`, unlike the scraped name.
        unit: "",
        points: |s| {
            per_probe(s, |p| {
                p.last
                    .as_ref()
                    .and_then(|l| l.cert_not_after_ms)
                    .map(|ms| ms as f64 / 1000.0)
            })
        },
    },
    Family {
        name: "burnwatch_probe_consecutive_failures",
        help: "Failed checks in a row",
        unit: "{check}",
        points: |s| per_probe(s, |p| Some(p.consecutive_failures as f64)),
    },
    Family {
        name: "burnwatch_target_up",
        help: "Whether the newest scrape succeeded",
        unit: "",
        points: |s| per_target(s, |t| f64::from(u8::from(t.up))),
    },
    Family {
        name: "burnwatch_target_scrape_duration_seconds",
        help: "Duration of the newest scrape",
        unit: "s",
        points: |s| per_target(s, |t| t.duration_secs),
    },
    Family {
        name: "burnwatch_target_scrape_samples",
        help: "Samples on the newest successful page",
        unit: "{sample}",
        points: |s| per_target(s, |t| t.samples as f64),
    },
    Family {
        name: "burnwatch_evaluation_duration_seconds",
        help: "Duration of the newest evaluation of every SLO",
        unit: "s",
        points: |s| agent(Some(s.evaluation_seconds)),
    },
    Family {
        name: "burnwatch_build_info",
        help: "Always 1; the version as an attribute",
        unit: "",
        points: |_| {
            vec![(
                vec![KeyValue::new("version", env!("CARGO_PKG_VERSION"))],
                1.0,
            )]
        },
    },
    Family {
        name: "burnwatch_checkpoint_last_success_timestamp_seconds",
        help: "When state was last checkpointed, Unix seconds (absent before the first)",
        unit: "s",
        points: |s| agent(s.checkpoint.last_ok_ms.map(|ms| ms as f64 / 1000.0)),
    },
    Family {
        name: "burnwatch_rules_last_reload_success",
        help: "Whether the newest rules reload succeeded",
        unit: "",
        points: |s| agent(Some(f64::from(u8::from(s.rules_status.last_reload_ok)))),
    },
    Family {
        name: "burnwatch_rules_slos",
        help: "SLOs in force",
        unit: "{slo}",
        points: |s| agent(Some(s.rules_status.slos as f64)),
    },
];

static COUNTERS: [Family<u64>; 6] = [
    Family {
        name: "burnwatch_slo_events",
        help: "Events counted since the agent started, by result",
        unit: "{event}",
        points: |snap| {
            let mut out = Vec::new();
            for (r, _, attrs) in slo_rows(snap) {
                let (good, bad) = snap.events_total.get(&r.id).copied().unwrap_or_default();
                out.push((with(&attrs, [("result", "good".to_owned())]), good));
                out.push((with(&attrs, [("result", "bad".to_owned())]), bad));
            }
            out
        },
    },
    Family {
        name: "burnwatch_probe_checks",
        help: "Checks since the agent started",
        unit: "{check}",
        points: |s| per_probe(s, |p| Some(p.checks_total)),
    },
    Family {
        name: "burnwatch_probe_failures",
        help: "Failed checks since the agent started",
        unit: "{check}",
        points: |s| per_probe(s, |p| Some(p.failures_total)),
    },
    Family {
        name: "burnwatch_target_scrapes",
        help: "Scrapes since the agent started",
        unit: "{scrape}",
        points: |s| per_target(s, |t| t.scrapes_total),
    },
    Family {
        name: "burnwatch_target_scrape_failures",
        help: "Failed scrapes since the agent started",
        unit: "{scrape}",
        points: |s| per_target(s, |t| t.failures_total),
    },
    Family {
        name: "burnwatch_rules_reload_failures",
        help: "Rejected rules reloads since the agent started",
        unit: "{reload}",
        points: |s| agent(Some(s.rules_status.reload_failures_total)),
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(endpoint: &str, protocol: OtlpProtocol) -> OtlpConfig {
        OtlpConfig::new(endpoint, protocol)
    }

    #[test]
    fn http_endpoint_gets_the_metrics_path_once() {
        let h = OtlpProtocol::HttpProtobuf;
        assert_eq!(
            endpoint(&cfg("http://127.0.0.1:4318", h)).expect("valid"),
            "http://127.0.0.1:4318/v1/metrics"
        );
        assert_eq!(
            endpoint(&cfg("http://c:4318/v1/metrics/", h)).expect("valid"),
            "http://c:4318/v1/metrics"
        );
        assert_eq!(
            endpoint(&cfg("http://c:4317/", OtlpProtocol::Grpc)).expect("valid"),
            "http://c:4317"
        );
    }

    #[test]
    fn bad_endpoints_and_headers_are_refused() {
        for e in [
            "ftp://c:4317",
            "c:4317",
            "http://",
            "http:///x",
            "http://a b:1",
        ] {
            assert!(
                matches!(
                    endpoint(&cfg(e, OtlpProtocol::Grpc)),
                    Err(OtlpError::Endpoint { .. })
                ),
                "{e}"
            );
        }
        assert!(matches!(
            header_map(&[("bad name".into(), "v".into())]),
            Err(OtlpError::Header { .. })
        ));
        assert!(matches!(
            header_map(&[("x".into(), "line\nbreak".into())]),
            Err(OtlpError::Header { .. })
        ));
        let ok = header_map(&[("X-Token".into(), "abc".into())]).expect("valid");
        assert_eq!(ok.get("x-token").map(|v| v.as_bytes()), Some(&b"abc"[..]));
    }

    #[test]
    fn https_is_accepted_and_secrets_stay_out_of_debug() {
        assert_eq!(
            endpoint(&cfg("https://c:4318", OtlpProtocol::HttpProtobuf)).expect("valid"),
            "https://c:4318/v1/metrics"
        );
        let c = OtlpConfig {
            headers: vec![("x-api-key".into(), "hunter2".into())],
            ..cfg("https://c:4317", OtlpProtocol::Grpc)
        };
        c.check().expect("valid");
        let dbg = format!("{c:?}");
        assert!(
            dbg.contains("x-api-key: <redacted>") && !dbg.contains("hunter2"),
            "{dbg}"
        );
        let zero = OtlpConfig {
            interval: Duration::ZERO,
            ..c
        };
        assert!(matches!(zero.check(), Err(OtlpError::ZeroDuration { .. })));
    }

    #[test]
    fn families_have_unique_names() {
        let mut names: Vec<&str> = GAUGES
            .iter()
            .map(|f| f.name)
            .chain(COUNTERS.iter().map(|f| f.name))
            .collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n);
    }
}
