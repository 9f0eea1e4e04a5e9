//! OTLP metrics push: every number of the newest [`AgentSnapshot`] sent to an OpenTelemetry
//! collector over gRPC or HTTP/protobuf at a fixed interval.
//!
//! This module owns the OpenTelemetry SDK pipeline (resource, exporter, periodic reader) and the
//! instruments: one per family of the [`catalogue`](super::catalogue), which also says what each
//! reports. Every instrument is *observable*: its callback reads the published snapshot at
//! export time and reports only what that snapshot holds, so an SLO, probe or target deleted on
//! a rules reload disappears at the next export (a synchronous OTel gauge would re-export its
//! last value forever). Callbacks only read and copy; they never block, because a slow or
//! panicking callback stalls or kills the SDK's reader.
//!
//! **One snapshot per export.** The SDK observes instruments one after another while the
//! evaluator may publish in between; the first callback of a collection pins the newest
//! snapshot and alerting view ([`Pin`]) and the others read the pin, so every value of one
//! push comes from the same evaluation (`tests/otlp.rs` publishes continuously and checks).
//!
//! **Names.** The metric names, units, descriptions and attributes are the catalogue's, so
//! they are the Prometheus family names and labels of `/metrics`, with counters named without
//! the `_total` suffix (as OTLP sums are): `burnwatch_slo_sli_ratio`, `burnwatch_slo_events`,
//! ... Units are set so that Prometheus' own OTLP translation (`_total` for monotonic sums,
//! unit suffixes only when not already present) arrives at the same series names as a scrape
//! of `/metrics`; one set of dashboards and alert queries serves both paths.
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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use opentelemetry::metrics::{
    AsyncInstrument, Meter, MeterProvider as _, ObservableCounter, ObservableGauge,
};
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
use crate::agent::alerting::AlertingView;
use crate::export::catalogue::{FAMILIES, Family, Sink, Sources};
use crate::export::text::{Kind, Value};

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
    instruments: Vec<Instrument>,
}

impl std::fmt::Debug for OtlpExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpExporter")
            .field("instruments", &self.instruments.len())
            .finish_non_exhaustive()
    }
}

impl OtlpExporter {
    /// Builds the pipeline and starts exporting every `cfg.interval`: the newest snapshot
    /// and, when `alerting` is given, the alerting families of the newest alerting view. Must
    /// be called inside a tokio runtime (the connections of both transports run on it).
    pub fn start(
        cfg: &OtlpConfig,
        snapshots: watch::Receiver<Arc<AgentSnapshot>>,
        alerting: Option<watch::Receiver<Arc<AlertingView>>>,
    ) -> Result<OtlpExporter, OtlpError> {
        cfg.check()?;
        let pin = Arc::new(Pin {
            snapshots,
            alerting,
            current: Mutex::new(None),
        });
        let exporter = Logged {
            inner: build_exporter(cfg)?,
            endpoint: cfg.endpoint.clone(),
            failing: AtomicBool::new(false),
            pin: pin.clone(),
        };
        let reader = PeriodicReader::builder(exporter)
            .with_interval(cfg.interval)
            .build();
        let provider = SdkMeterProvider::builder()
            .with_resource(resource(&cfg.resource))
            .with_reader(reader)
            .build();
        let meter = provider.meter("burnwatch");
        let instruments = FAMILIES
            .iter()
            .enumerate()
            .map(|(i, f)| instrument(&meter, i, f, pin.clone()))
            .collect();
        Ok(OtlpExporter {
            provider,
            timeout: cfg.timeout,
            instruments,
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
/// the recovery after a failure; it also ends each collection's [`Pin`].
struct Logged {
    inner: MetricExporter,
    endpoint: String,
    failing: AtomicBool,
    pin: Arc<Pin>,
}

impl PushMetricExporter for Logged {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        // The collection is complete: the next one pins the snapshot newest by then.
        self.pin.release();
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

/// What one collection reads, pinned by its first callback (see [`Pin`]).
struct Pinned {
    snap: Arc<AgentSnapshot>,
    view: Option<Arc<AlertingView>>,
    /// Each SLO row's attributes (`service`, `slo`, the rules' labels), in the row order of
    /// [`Sources::new`] over `snap`.
    slo_attrs: Vec<Vec<KeyValue>>,
}

/// One snapshot (and alerting view) per collection. The SDK calls each instrument's callback
/// once per collection, one after another; the first to run pins the newest snapshot and view,
/// every later one of that collection reads the pin, and the export of the collection
/// ([`Logged::export`]) releases it, so one push never mixes two evaluations. A callback that
/// finds its own family already observed under the pin is the first of a new collection (one
/// that failed before its export never released the pin), and pins afresh.
struct Pin {
    snapshots: watch::Receiver<Arc<AgentSnapshot>>,
    alerting: Option<watch::Receiver<Arc<AlertingView>>>,
    /// The pinned state and which families (by catalogue index) have read it.
    current: Mutex<Option<(Arc<Pinned>, Vec<bool>)>>,
}

impl Pin {
    /// The state family `family` (its index in [`FAMILIES`]) reads in this collection.
    fn get(&self, family: usize) -> Arc<Pinned> {
        let mut cur = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((p, seen)) = cur.as_mut()
            && let Some(s) = seen.get_mut(family)
            && !*s
        {
            *s = true;
            return p.clone();
        }
        let snap = self.snapshots.borrow().clone();
        let view = self.alerting.as_ref().map(|rx| rx.borrow().clone());
        let slo_attrs = Sources::new(&snap, view.as_deref())
            .rows
            .iter()
            .map(|row| {
                row.labels()
                    .into_iter()
                    .map(|(k, v)| KeyValue::new(Key::new(k.to_owned()), v.to_owned()))
                    .collect()
            })
            .collect();
        let p = Arc::new(Pinned {
            snap,
            view,
            slo_attrs,
        });
        let mut seen = vec![false; FAMILIES.len()];
        if let Some(s) = seen.get_mut(family) {
            *s = true;
        }
        *cur = Some((p.clone(), seen));
        p
    }

    fn release(&self) {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

/// Observes catalogue samples with their SLO's prepared attributes.
struct Observe<'a, T> {
    obs: &'a dyn AsyncInstrument<T>,
    slo_attrs: &'a [Vec<KeyValue>],
    value: fn(Value) -> T,
}

impl<T> Sink for Observe<'_, T> {
    fn sample(&mut self, slo: Option<usize>, labels: &[(&'static str, &str)], value: Value) {
        let base = slo.and_then(|i| self.slo_attrs.get(i));
        let mut attrs = Vec::with_capacity(base.map_or(0, Vec::len) + labels.len());
        if let Some(b) = base {
            attrs.extend_from_slice(b);
        }
        attrs.extend(
            labels
                .iter()
                .map(|(k, v)| KeyValue::new(*k, (*v).to_owned())),
        );
        self.obs.observe((self.value)(value), &attrs);
    }
}

/// Runs family `f` (index `i` of [`FAMILIES`]) over the pinned state of the current
/// collection.
fn observe<T>(
    (i, f): (usize, &Family),
    pin: &Pin,
    obs: &dyn AsyncInstrument<T>,
    value: fn(Value) -> T,
) {
    let p = pin.get(i);
    let sources = Sources::new(&p.snap, p.view.as_deref());
    let mut sink = Observe {
        obs,
        slo_attrs: &p.slo_attrs,
        value,
    };
    (f.points)(&sources, &mut sink);
}

/// The instrument of family `f`: an observable gauge or counter named and described as the
/// catalogue says.
fn instrument(meter: &Meter, i: usize, f: &'static Family, pin: Arc<Pin>) -> Instrument {
    match f.kind {
        Kind::Gauge => Instrument::Gauge(
            meter
                .f64_observable_gauge(f.name)
                .with_description(f.help)
                .with_unit(f.unit)
                .with_callback(move |obs| observe((i, f), &pin, obs, Value::as_f64))
                .build(),
        ),
        Kind::Counter => Instrument::Counter(
            meter
                .u64_observable_counter(f.name)
                .with_description(f.help)
                .with_unit(f.unit)
                .with_callback(move |obs| {
                    observe((i, f), &pin, obs, |v| match v {
                        Value::Count(n) => n,
                        // Counters emit counts; a float here would be a catalogue bug.
                        Value::Gauge(g) => g as u64,
                    })
                })
                .build(),
        ),
    }
}

/// A registered instrument, held so its callback stays registered.
#[allow(dead_code)]
enum Instrument {
    Gauge(ObservableGauge<f64>),
    Counter(ObservableCounter<u64>),
}

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
}
