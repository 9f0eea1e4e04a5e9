//! OTLP metrics push: every number of the newest [`AgentSnapshot`] sent to an OpenTelemetry
//! collector over gRPC or HTTP/protobuf at a fixed interval.
//!
//! This module owns the OpenTelemetry SDK pipeline (resource, exporter, periodic reader) and the
//! instruments: one per family of the [`catalogue`](super::catalogue), which also says what each
//! reports, in the series set of `export.series` (the same samples as `/metrics`; families the
//! compact set leaves out get no instrument). Every instrument is *observable*: its callback reads the published snapshot at
//! export time and reports only what that snapshot holds, so an SLO, probe or target deleted on
//! a rules reload disappears at the next export (a synchronous OTel gauge would re-export its
//! last value forever). Callbacks only read and copy; they never block, because a slow or
//! panicking callback stalls or kills the SDK's reader.
//!
//! **One snapshot per export.** The SDK observes instruments one after another while the
//! evaluator may publish in between; the first callback of a collection pins the newest
//! snapshot and alerting view ([`Pin`]) and the others read the pin, so every value of one
//! push comes from the same evaluation (`tests/agent/otlp.rs` publishes continuously and checks).
//!
//! **Cardinality.** The SDK keeps at most a *cardinality limit* of attribute sets per
//! instrument (2,000 unless a view says otherwise) and folds any beyond into one
//! `otel.metric.overflow` set, which would lose series silently from 2,000 SLOs on (one
//! `burnwatch_slo_objective_ratio` per SLO; an SLO has about 40 series across the families,
//! 60 with latency percentiles). So each family's limit is what the snapshot emits
//! ([`series_counts`], the catalogue's own readers with a counting sink) plus a quarter, never
//! below the SDK's 2,000, set by a view when the pipeline is built. A snapshot that outgrows a
//! limit (a reload adding SLOs, percentiles appearing with latency data) is not sent: the
//! collection sends the last snapshot that fitted and [`resize`] builds a pipeline sized for the
//! new one and retires the old, so no export ever folds a series (`tests/agent/otlp.rs`, 2,100
//! SLOs, at start and after a reload). Memory per series: the SDK's map entry (sorted
//! attributes at `56 B` each, so one entry rather than two; SLO attributes are shared strings;
//! tracker and hash slot, the table preallocated to the limit at `33 B` a slot), then, while a
//! push is built, the data point's copy of the attributes, the protobuf copy and about `120 B`
//! of encoded request. Measured (debug build, 10,000 availability SLOs = 420,030 series): the
//! process grew by about 650 MB, some 1.5 KB a series, while pushes ran back to back.
//!
//! **Bounded requests.** The SDK hands one collection to the exporter ([`Split`]), which
//! converts it to the protobuf `ExportMetricsServiceRequest` and, when that is larger than
//! [`OtlpConfig::max_request_bytes`], sends it as several requests ([`split_request`]): each
//! complete (resource, scope, metric descriptions), with a share of the data points, every
//! point in exactly one, in order, all from the collection's one snapshot. Collectors bound a
//! request (the OpenTelemetry Collector's gRPC receiver to 4 MiB by default), and 10,000 SLOs
//! make a 70 MB collection. The requests go one after another over the exporter's own
//! transports (tonic's `MetricsService` client; the shared HTTP client with protobuf bodies),
//! since the SDK's exporter sends one request per collection.
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
//! the shared [`crate::http_client::HttpClient`], so neither reqwest nor a second TLS stack is
//! built.
//!
//! **Secrets.** Header values are usually credentials: the `Debug` form of [`OtlpConfig`] shows
//! header names only, and no error or log line carries a value.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use opentelemetry::metrics::{
    AsyncInstrument, Meter, MeterProvider as _, ObservableCounter, ObservableGauge,
};
use opentelemetry::{Key, KeyValue};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::{
    ExponentialHistogramDataPoint, HistogramDataPoint, NumberDataPoint, SummaryDataPoint,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{
    Instrument as SdkInstrument, PeriodicReader, SdkMeterProvider, Stream, Temporality,
};
use prost::Message as _;
use tokio::sync::{Notify, watch};
use tonic::transport::{Certificate, ClientTlsConfig};

use crate::config::SeriesSet;
use crate::export::catalogue::{FAMILIES, Family, Sink, Sources};
use crate::export::text::{Kind, Value};
use crate::http_client::{ClientError, HttpClient};
use crate::time::Dur;
use crate::view::{AgentSnapshot, AlertingView};

pub use crate::config::otlp::{
    DEFAULT_MAX_REQUEST_BYTES, DEFAULT_SERVICE_NAME, MIN_MAX_REQUEST_BYTES, OtlpConfig,
    OtlpConfigError, OtlpProtocol,
};
use crate::config::otlp::{endpoint, header_map, read_ca};

/// Why the exporter could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    /// The settings cannot be used.
    #[error(transparent)]
    Config(#[from] OtlpConfigError),
    /// Both transports run their connections on the caller's tokio runtime.
    #[error("OTLP exporter must be started inside a tokio runtime")]
    NoRuntime,
    /// The transport cannot be built for the endpoint.
    #[error("building the OTLP exporter for {endpoint}: {reason}")]
    Build {
        /// The endpoint used.
        endpoint: String,
        /// What was refused.
        reason: String,
    },
    /// The final flush on shutdown failed or did not finish in time.
    #[error("OTLP shutdown: {0}")]
    Shutdown(String),
}

/// A running OTLP push. Dropping it without [`OtlpExporter::shutdown`] stops exports without
/// the final flush.
pub struct OtlpExporter {
    shared: Arc<Shared>,
    timeout: Duration,
    // Rebuilds the pipeline when the snapshot outgrows its cardinality limits.
    resizer: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for OtlpExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let limits = self
            .shared
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|p| p.pin.limits.clone());
        f.debug_struct("OtlpExporter")
            .field("limits", &limits)
            .finish_non_exhaustive()
    }
}

impl Drop for OtlpExporter {
    fn drop(&mut self) {
        // Without the resizer the last reference to the pipeline goes, which stops it.
        self.resizer.abort();
    }
}

/// What a (re)build of the pipeline needs, and the pipeline running now.
struct Shared {
    cfg: OtlpConfig,
    snapshots: watch::Receiver<Arc<AgentSnapshot>>,
    alerting: Option<watch::Receiver<Arc<AlertingView>>>,
    /// Woken by a collection whose snapshot does not fit the running pipeline's limits.
    grow: Arc<Notify>,
    /// `None` once [`OtlpExporter::shutdown`] took it.
    current: Mutex<Option<Pipeline>>,
}

/// One SDK pipeline: provider, reader, exporter and instruments, with the cardinality limits
/// it was built with.
struct Pipeline {
    provider: SdkMeterProvider,
    pin: Arc<Pin>,
    // Held so the callbacks stay registered for the pipeline's life.
    _instruments: Vec<Instrument>,
}

impl OtlpExporter {
    /// Builds the pipeline and starts exporting the newest snapshot every `cfg.interval`,
    /// without the alerting families. Must be called inside a tokio runtime (the connections
    /// of both transports run on it).
    pub fn start(
        cfg: &OtlpConfig,
        snapshots: watch::Receiver<Arc<AgentSnapshot>>,
    ) -> Result<OtlpExporter, OtlpError> {
        OtlpExporter::start_with(cfg, snapshots, None)
    }

    /// As [`OtlpExporter::start`], with the alerting task's views: the alerting families and
    /// the tier alert states (`burnwatch_slo_alert_state`) are read from them, as `/metrics`
    /// reads them. Without views none of these is exported.
    pub fn start_with(
        cfg: &OtlpConfig,
        snapshots: watch::Receiver<Arc<AgentSnapshot>>,
        alerting: Option<watch::Receiver<Arc<AlertingView>>>,
    ) -> Result<OtlpExporter, OtlpError> {
        cfg.check()?;
        let shared = Arc::new(Shared {
            cfg: cfg.clone(),
            snapshots,
            alerting,
            grow: Arc::new(Notify::new()),
            current: Mutex::new(None),
        });
        let first = shared.build(None)?;
        *shared
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(first);
        let resizer = tokio::spawn(resize(shared.clone()));
        Ok(OtlpExporter {
            shared,
            timeout: cfg.timeout,
            resizer,
        })
    }

    /// Exports the newest values one last time and stops. Bounded: returns within about
    /// twice the export timeout even when the collector does not answer.
    pub async fn shutdown(self) -> Result<(), OtlpError> {
        self.resizer.abort();
        let current = self
            .shared
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(pipeline) = current else {
            return Ok(());
        };
        stop(pipeline.provider, self.timeout).await
    }
}

/// Shuts `provider` down (its final export included), bounded by about twice `timeout`.
async fn stop(provider: SdkMeterProvider, timeout: Duration) -> Result<(), OtlpError> {
    // The SDK's shutdown blocks on its reader thread; off the runtime so a current-thread
    // runtime cannot deadlock on it.
    let done = tokio::task::spawn_blocking(move || provider.shutdown());
    let bound = timeout * 2 + Duration::from_secs(1);
    match tokio::time::timeout(bound, done).await {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(e))) => Err(OtlpError::Shutdown(e.to_string())),
        Ok(Err(join)) => Err(OtlpError::Shutdown(join.to_string())),
        Err(_) => Err(OtlpError::Shutdown(format!(
            "final export did not finish within {bound:?}"
        ))),
    }
}

/// The SDK's limit of attribute sets per instrument when no view sets one; ours never go
/// below it.
pub const SDK_DEFAULT_CARDINALITY_LIMIT: usize = 2_000;

/// The cardinality limit for a family that emits `series` attribute sets: a quarter more, so
/// that a reload adding a few SLOs needs no rebuild, and at least the SDK's default.
fn limit_for(series: usize) -> usize {
    series
        .saturating_add(series / 4)
        .max(SDK_DEFAULT_CARDINALITY_LIMIT)
}

/// How many samples (attribute sets) each family of [`FAMILIES`] emits for `snap` and `view`
/// in the `series` set, in catalogue order. The same readers as the export, with a sink that only counts.
pub fn series_counts(
    snap: &AgentSnapshot,
    view: Option<&AlertingView>,
    series: SeriesSet,
) -> Vec<usize> {
    struct Count(usize);
    impl Sink for Count {
        fn sample(&mut self, _: Option<usize>, _: &[(&'static str, &str)], _: Value) {
            self.0 += 1;
        }
    }
    let sources = Sources::new(snap, view, series);
    FAMILIES
        .iter()
        .map(|f| {
            let mut c = Count(0);
            f.emit(&sources, &mut c);
            c.0
        })
        .collect()
}

impl Shared {
    /// A new pipeline whose limits fit the newest snapshot and view, and at least `need`
    /// (the counts that outgrew the previous pipeline).
    fn build(&self, need: Option<&[usize]>) -> Result<Pipeline, OtlpError> {
        let pinned = Pinned::newest(&self.snapshots, self.alerting.as_ref());
        let mut counts = series_counts(&pinned.snap, pinned.view.as_deref(), self.cfg.series);
        for (c, n) in counts.iter_mut().zip(need.unwrap_or(&[])) {
            *c = (*c).max(*n);
        }
        let limits: Vec<usize> = counts.into_iter().map(limit_for).collect();
        let pin = Arc::new(Pin {
            series: self.cfg.series,
            snapshots: self.snapshots.clone(),
            alerting: self.alerting.clone(),
            limits: limits.clone(),
            grow: self.grow.clone(),
            retired: AtomicBool::new(false),
            current: Mutex::new(None),
            fitting: Mutex::new(Some(Arc::new(pinned))),
            need: Mutex::new(None),
        });
        let exporter = Split {
            transport: build_transport(&self.cfg)?,
            endpoint: self.cfg.endpoint.clone(),
            timeout: self.cfg.timeout,
            max_request_bytes: self.cfg.max_request_bytes,
            failing: AtomicBool::new(false),
            pin: pin.clone(),
        };
        let reader = PeriodicReader::builder(exporter)
            .with_interval(self.cfg.interval)
            .build();
        // Each family's instrument holds up to its limit of attribute sets; the SDK folds any
        // beyond into one `otel.metric.overflow` set, so the limits are what the snapshot emits
        // (plus headroom), not the SDK's 2,000.
        let view = move |i: &SdkInstrument| {
            let at = FAMILIES.iter().position(|f| f.name == i.name())?;
            Stream::builder()
                .with_cardinality_limit(*limits.get(at)?)
                .build()
                .ok()
        };
        let provider = SdkMeterProvider::builder()
            .with_resource(resource(&self.cfg.resource))
            .with_reader(reader)
            .with_view(view)
            .build();
        let meter = provider.meter("burnwatch");
        // A family the series set leaves out gets no instrument, so no empty metric is sent.
        let instruments = FAMILIES
            .iter()
            .enumerate()
            .filter(|(_, f)| self.cfg.series == SeriesSet::Full || f.in_compact())
            .map(|(i, f)| instrument(&meter, i, f, pin.clone()))
            .collect();
        Ok(Pipeline {
            provider,
            pin,
            _instruments: instruments,
        })
    }
}

/// Rebuilds the pipeline each time a collection finds the snapshot larger than its limits
/// (more SLOs after a reload, percentiles once latency data arrives): the new pipeline is sized
/// for the newest snapshot, the old one is retired (its callbacks observe nothing, so its final
/// export carries no point) and shut down. Until the new one exports, the old one keeps
/// exporting the last snapshot that fitted, so no export folds series into overflow.
async fn resize(shared: Arc<Shared>) {
    loop {
        shared.grow.notified().await;
        let need = {
            let cur = shared
                .current
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match cur.as_ref() {
                Some(p) => p
                    .pin
                    .need
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone(),
                None => return,
            }
        };
        let Some(need) = need else { continue };
        let next = match shared.build(Some(&need)) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(
                    endpoint = %shared.cfg.endpoint,
                    error = %e,
                    "OTLP: cannot rebuild the exporter for more series; the previous snapshot is sent until it can"
                );
                continue;
            }
        };
        let limits = next.pin.limits.clone();
        // `Err(next)`: shut down meanwhile, the new pipeline is not needed.
        let swapped = {
            let mut cur = shared
                .current
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match cur.as_mut() {
                Some(c) => Ok(std::mem::replace(c, next)),
                None => Err(next),
            }
        };
        let old = match swapped {
            Ok(old) => old,
            Err(next) => {
                next.pin.retired.store(true, Ordering::Relaxed);
                let _ = stop(next.provider, shared.cfg.timeout).await;
                return;
            }
        };
        let largest = limits.iter().copied().max().unwrap_or(0);
        tracing::info!(
            endpoint = %shared.cfg.endpoint,
            largest_limit = largest,
            "OTLP: instruments resized for a larger snapshot"
        );
        old.pin.retired.store(true, Ordering::Relaxed);
        if let Err(e) = stop(old.provider, shared.cfg.timeout).await {
            tracing::debug!(error = %e, "OTLP: stopping the previous pipeline");
        }
    }
}

/// The transport of [`Split`]: the gRPC client of the collector's `MetricsService`, or the
/// shared HTTP client posting protobuf bodies.
fn build_transport(cfg: &OtlpConfig) -> Result<Transport, OtlpError> {
    let endpoint = endpoint(cfg)?;
    let headers = header_map(&cfg.headers)?;
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| OtlpError::NoRuntime)?;
    let kind = match cfg.protocol {
        OtlpProtocol::Grpc => {
            let build_err = |e: &dyn std::fmt::Display| OtlpError::Build {
                endpoint: endpoint.clone(),
                reason: e.to_string(),
            };
            let mut ep = tonic::transport::Endpoint::from_shared(endpoint.clone())
                .map_err(|e| build_err(&e))?
                .connect_timeout(cfg.timeout);
            if cfg.is_https() {
                // tonic's default for https trusts no root at all; give it the same roots as
                // the HTTP transport and the probes.
                let mut tls = ClientTlsConfig::new().with_webpki_roots();
                if let Some(path) = &cfg.ca_file {
                    tls = tls.ca_certificate(Certificate::from_pem(read_ca(path)?));
                }
                ep = ep.tls_config(tls).map_err(|e| build_err(&e))?;
            }
            // The channel's worker runs on the exporter's runtime; it connects at the first
            // request and reconnects after a failure.
            let channel = {
                let _in_runtime = runtime.enter();
                ep.connect_lazy()
            };
            TransportKind::Grpc {
                client: MetricsServiceClient::new(channel),
                metadata: tonic::metadata::MetadataMap::from_headers(headers),
            }
        }
        OtlpProtocol::HttpProtobuf => TransportKind::Http {
            client: Box::new(HttpClient::with_ca_file(cfg.ca_file.as_deref()).map_err(
                |e| match e {
                    ClientError::CaFile { path, reason } => {
                        OtlpConfigError::CaFile { path, reason }
                    }
                    ClientError::Tls(e) => OtlpConfigError::Tls(e),
                },
            )?),
            uri: endpoint
                .parse::<http::Uri>()
                .map_err(|e| OtlpError::Build {
                    endpoint: endpoint.clone(),
                    reason: e.to_string(),
                })?,
            headers,
        },
    };
    Ok(Transport { runtime, kind })
}

/// Largest collector response read.
const MAX_RESPONSE_BYTES: usize = 4 << 20;

/// Sends requests on the runtime the exporter was started in (the SDK calls the exporter from
/// its own reader thread, outside any runtime).
struct Transport {
    runtime: tokio::runtime::Handle,
    kind: TransportKind,
}

enum TransportKind {
    /// OTLP/gRPC: the header map is sent as metadata.
    Grpc {
        client: MetricsServiceClient<tonic::transport::Channel>,
        metadata: tonic::metadata::MetadataMap,
    },
    /// OTLP/HTTP with protobuf bodies, through the shared client (its connection is kept
    /// between requests).
    Http {
        client: Box<HttpClient>,
        uri: http::Uri,
        headers: http::HeaderMap,
    },
}

impl Transport {
    /// Sends one request, answered within `timeout`; the error names no header value.
    async fn send(
        &self,
        request: ExportMetricsServiceRequest,
        timeout: Duration,
    ) -> Result<(), String> {
        let send = match &self.kind {
            TransportKind::Grpc { client, metadata } => {
                let mut client = client.clone();
                let mut req = tonic::Request::new(request);
                *req.metadata_mut() = metadata.clone();
                req.set_timeout(timeout);
                let call = async move {
                    match tokio::time::timeout(timeout, client.export(req)).await {
                        Ok(Ok(_)) => Ok(()),
                        Ok(Err(status)) => Err(format!(
                            "gRPC status {:?}: {}",
                            status.code(),
                            status.message()
                        )),
                        Err(_) => Err(format!("no answer within {timeout:?}")),
                    }
                };
                self.runtime.spawn(call)
            }
            TransportKind::Http {
                client,
                uri,
                headers,
            } => {
                let mut req = http::Request::new(bytes::Bytes::from(request.encode_to_vec()));
                *req.method_mut() = http::Method::POST;
                *req.uri_mut() = uri.clone();
                *req.headers_mut() = headers.clone();
                req.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/x-protobuf"),
                );
                let client = (**client).clone();
                let bound = Dur(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
                let call = async move {
                    let r = client
                        .send(req, bound, MAX_RESPONSE_BYTES)
                        .await
                        .map_err(|e| e.to_string())?;
                    if (200..300).contains(&r.status) {
                        Ok(())
                    } else {
                        Err(format!("HTTP status {}", r.status))
                    }
                };
                self.runtime.spawn(call)
            }
        };
        send.await.map_err(|e| e.to_string())?
    }
}

/// The exporter: turns a collection into requests of at most
/// [`OtlpConfig::max_request_bytes`] ([`split_request`]) and sends them one after another,
/// all within [`OtlpConfig::timeout`]; logs each failed export (the SDK's own logging is
/// compiled out) and the recovery after a failure; ends each collection's [`Pin`].
struct Split {
    transport: Transport,
    endpoint: String,
    timeout: Duration,
    max_request_bytes: usize,
    failing: AtomicBool,
    pin: Arc<Pin>,
}

impl Split {
    /// Sends every request of one export; stops at the first that fails (the next interval
    /// sends fresh values anyway).
    async fn send_all(&self, requests: Vec<ExportMetricsServiceRequest>) -> Result<(), String> {
        let deadline = std::time::Instant::now() + self.timeout;
        let n = requests.len();
        for (i, r) in requests.into_iter().enumerate() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(format!(
                    "request {} of {n} not sent: the export took longer than {:?}",
                    i + 1,
                    self.timeout
                ));
            }
            self.transport.send(r, left).await.map_err(|e| {
                if n == 1 {
                    e
                } else {
                    format!("request {} of {n}: {e}", i + 1)
                }
            })?;
        }
        Ok(())
    }
}

impl PushMetricExporter for Split {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        // The collection is complete: the next one pins the snapshot newest by then.
        self.pin.release();
        let requests = split_request(
            ExportMetricsServiceRequest::from(metrics),
            self.max_request_bytes,
        );
        match self.send_all(requests).await {
            Ok(()) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(endpoint = %self.endpoint, "OTLP export works again");
                }
                Ok(())
            }
            Err(e) => {
                self.failing.store(true, Ordering::Relaxed);
                tracing::warn!(
                    endpoint = %self.endpoint,
                    error = %e,
                    "OTLP export failed; the next interval sends fresh values"
                );
                Err(OTelSdkError::InternalFailure(e))
            }
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }

    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
}

/// Bytes a message field of `len` bytes takes inside its parent: a one-byte tag (every field
/// number on the way from a request to a data point is below 16) and the length as a varint.
fn framed(len: usize) -> usize {
    1 + prost::length_delimiter_len(len) + len
}

/// One data point of any metric type, taken out of its metric.
enum Point {
    Number(NumberDataPoint),
    Histogram(HistogramDataPoint),
    Exponential(ExponentialHistogramDataPoint),
    Summary(SummaryDataPoint),
}

impl Point {
    fn encoded_len(&self) -> usize {
        match self {
            Point::Number(p) => p.encoded_len(),
            Point::Histogram(p) => p.encoded_len(),
            Point::Exponential(p) => p.encoded_len(),
            Point::Summary(p) => p.encoded_len(),
        }
    }
}

/// Takes the data points out of `data`, leaving the metric's type, temporality and
/// monotonicity.
fn take_points(data: &mut Option<Data>) -> Vec<Point> {
    match data {
        Some(Data::Gauge(g)) => g.data_points.drain(..).map(Point::Number).collect(),
        Some(Data::Sum(s)) => s.data_points.drain(..).map(Point::Number).collect(),
        Some(Data::Histogram(h)) => h.data_points.drain(..).map(Point::Histogram).collect(),
        Some(Data::ExponentialHistogram(h)) => {
            h.data_points.drain(..).map(Point::Exponential).collect()
        }
        Some(Data::Summary(s)) => s.data_points.drain(..).map(Point::Summary).collect(),
        None => Vec::new(),
    }
}

/// Puts a data point back into a metric of its type.
fn put_point(data: &mut Option<Data>, p: Point) {
    match (data, p) {
        (Some(Data::Gauge(g)), Point::Number(p)) => g.data_points.push(p),
        (Some(Data::Sum(s)), Point::Number(p)) => s.data_points.push(p),
        (Some(Data::Histogram(h)), Point::Histogram(p)) => h.data_points.push(p),
        (Some(Data::ExponentialHistogram(h)), Point::Exponential(p)) => h.data_points.push(p),
        (Some(Data::Summary(s)), Point::Summary(p)) => s.data_points.push(p),
        // Points come from a metric of the same type (take_points).
        _ => {}
    }
}

/// Splits one export into requests of at most `max_bytes` encoded bytes each, in order: each
/// is a complete request carrying the resource, scope and metric descriptions of its data
/// points, and together they carry every data point once. A data point that does not fit even
/// alone goes in a request of its own. The request itself when it fits.
pub fn split_request(
    req: ExportMetricsServiceRequest,
    max_bytes: usize,
) -> Vec<ExportMetricsServiceRequest> {
    if req.encoded_len() <= max_bytes {
        return vec![req];
    }
    let mut out = Vec::new();
    let mut cur = ExportMetricsServiceRequest::default();
    let mut cur_len = 0usize;
    for mut rm in req.resource_metrics {
        let scopes = std::mem::take(&mut rm.scope_metrics);
        // Whether `cur`'s last resource, scope and metric are the ones being split.
        let mut rm_open = false;
        for mut sm in scopes {
            let metrics = std::mem::take(&mut sm.metrics);
            let mut sm_open = false;
            for mut m in metrics {
                let points = take_points(&mut m.data);
                let mut m_open = false;
                // A metric without points still travels (as the SDK sent it).
                let mut points = points.into_iter().map(Some).collect::<Vec<_>>();
                if points.is_empty() {
                    points.push(None);
                }
                for p in points {
                    let point_len = p.as_ref().map_or(0, |p| framed(p.encoded_len()));
                    // Opening a container costs its description, framed, and the growth of
                    // its length prefix as it fills (at most four bytes below 256 MiB).
                    let opening = |open: bool, len: usize| if open { 0 } else { framed(len) + 4 };
                    let mut need = point_len
                        + opening(m_open, m.encoded_len())
                        + opening(sm_open, sm.encoded_len())
                        + opening(rm_open, rm.encoded_len());
                    if cur_len > 0 && cur_len + need > max_bytes {
                        out.push(std::mem::take(&mut cur));
                        (rm_open, sm_open, m_open) = (false, false, false);
                        need = point_len
                            + opening(false, m.encoded_len())
                            + opening(false, sm.encoded_len())
                            + opening(false, rm.encoded_len());
                        cur_len = 0;
                    }
                    if !rm_open {
                        cur.resource_metrics.push(rm.clone());
                        rm_open = true;
                        sm_open = false;
                    }
                    let Some(r) = cur.resource_metrics.last_mut() else {
                        continue;
                    };
                    if !sm_open {
                        r.scope_metrics.push(sm.clone());
                        sm_open = true;
                        m_open = false;
                    }
                    let Some(s) = r.scope_metrics.last_mut() else {
                        continue;
                    };
                    if !m_open {
                        s.metrics.push(m.clone());
                        m_open = true;
                    }
                    if let (Some(p), Some(dst)) = (p, s.metrics.last_mut()) {
                        put_point(&mut dst.data, p);
                    }
                    cur_len += need;
                }
            }
        }
    }
    if cur_len > 0 {
        out.push(cur);
    }
    out
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
    /// [`Sources::new`] over `snap`. Shared strings, so a sample's copy allocates no text.
    slo_attrs: Vec<Vec<KeyValue>>,
}

impl Pinned {
    /// The newest snapshot and view.
    fn newest(
        snapshots: &watch::Receiver<Arc<AgentSnapshot>>,
        alerting: Option<&watch::Receiver<Arc<AlertingView>>>,
    ) -> Pinned {
        let snap = snapshots.borrow().clone();
        let view = alerting.map(|rx| rx.borrow().clone());
        let slo_attrs = Sources::new(&snap, view.as_deref(), SeriesSet::Full)
            .rows
            .iter()
            .map(|row| {
                row.labels()
                    .into_iter()
                    .map(|(k, v)| {
                        KeyValue::new(Key::from(Arc::<str>::from(k)), Arc::<str>::from(v))
                    })
                    .collect()
            })
            .collect();
        Pinned {
            snap,
            view,
            slo_attrs,
        }
    }
}

/// One snapshot (and alerting view) per collection. The SDK calls each instrument's callback
/// once per collection, one after another; the first to run pins the newest snapshot and view,
/// every later one of that collection reads the pin, and the export of the collection
/// ([`Split::export`]) releases it, so one push never mixes two evaluations. A callback that
/// finds its own family already observed under the pin is the first of a new collection (one
/// that failed before its export never released the pin), and pins afresh.
///
/// A snapshot with more series in a family than the pipeline's limit for it is not pinned:
/// the collection reads the last snapshot that fitted (complete, one interval older) and
/// [`resize`] is woken to build a pipeline with larger limits.
struct Pin {
    /// The series set exported (`export.series`).
    series: SeriesSet,
    snapshots: watch::Receiver<Arc<AgentSnapshot>>,
    alerting: Option<watch::Receiver<Arc<AlertingView>>>,
    /// Each family's cardinality limit (by catalogue index) in this pipeline.
    limits: Vec<usize>,
    /// Wakes [`resize`].
    grow: Arc<Notify>,
    /// Set when a newer pipeline replaced this one: callbacks observe nothing.
    retired: AtomicBool,
    /// The pinned state and which families (by catalogue index) have read it.
    current: Mutex<Option<(Arc<Pinned>, Vec<bool>)>>,
    /// The newest state whose every family fits [`Pin::limits`] (one snapshot kept alive
    /// beyond the agent's own, at most).
    fitting: Mutex<Option<Arc<Pinned>>>,
    /// The series counts of a newer state that did not fit, for [`resize`].
    need: Mutex<Option<Vec<usize>>>,
}

impl Pin {
    /// The state family `family` (its index in [`FAMILIES`]) reads in this collection;
    /// `None` once the pipeline is retired.
    fn get(&self, family: usize) -> Option<Arc<Pinned>> {
        let mut cur = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((p, seen)) = cur.as_mut()
            && let Some(s) = seen.get_mut(family)
            && !*s
        {
            *s = true;
            return Some(p.clone());
        }
        // A collection under way when the pipeline was replaced still completes (above); the
        // next ones, its final flush included, observe nothing.
        if self.retired.load(Ordering::Relaxed) {
            return None;
        }
        let newest = Pinned::newest(&self.snapshots, self.alerting.as_ref());
        let counts = series_counts(&newest.snap, newest.view.as_deref(), self.series);
        let fits = counts.iter().zip(&self.limits).all(|(c, l)| c <= l);
        let mut fitting = self.fitting.lock().unwrap_or_else(PoisonError::into_inner);
        let p = match (fits, fitting.as_ref()) {
            (false, Some(older)) => {
                tracing::debug!(
                    "OTLP: the snapshot outgrew the instruments' limits; sending the previous one while they grow"
                );
                *self.need.lock().unwrap_or_else(PoisonError::into_inner) = Some(counts);
                self.grow.notify_one();
                older.clone()
            }
            _ => {
                let p = Arc::new(newest);
                *fitting = Some(p.clone());
                p
            }
        };
        let mut seen = vec![false; FAMILIES.len()];
        if let Some(s) = seen.get_mut(family) {
            *s = true;
        }
        *cur = Some((p.clone(), seen));
        Some(p)
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
        // Sorted by key, as the SDK keys its map: otherwise it stores every attribute set
        // twice (as given and sorted), doubling its memory per series.
        attrs.sort_by(|a, b| a.key.cmp(&b.key));
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
    let Some(p) = pin.get(i) else { return };
    let sources = Sources::new(&p.snap, p.view.as_deref(), pin.series);
    let mut sink = Observe {
        obs,
        slo_attrs: &p.slo_attrs,
        value,
    };
    f.emit(&sources, &mut sink);
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
    use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, any_value};
    use opentelemetry_proto::tonic::metrics::v1::{
        Gauge, Metric, ResourceMetrics as ProtoResourceMetrics, ScopeMetrics, Sum,
        number_data_point,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource as ProtoResource;

    fn kv(k: &str, v: &str) -> opentelemetry_proto::tonic::common::v1::KeyValue {
        opentelemetry_proto::tonic::common::v1::KeyValue {
            key: k.to_owned(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(v.to_owned())),
            }),
            ..Default::default()
        }
    }

    fn point(i: usize, attrs: usize) -> NumberDataPoint {
        NumberDataPoint {
            attributes: (0..attrs)
                .map(|a| kv(&format!("k{a}"), &format!("value-{i}-{a}")))
                .collect(),
            time_unix_nano: 1_780_000_000_000_000_000,
            value: Some(number_data_point::Value::AsDouble(i as f64 / 7.0)),
            ..NumberDataPoint::default()
        }
    }

    /// Two resources; metrics of both kinds, one without points, one with a huge point.
    fn request() -> ExportMetricsServiceRequest {
        let metric = |name: &str, n: usize, sum: bool, attrs: usize| {
            let points = (0..n).map(|i| point(i, attrs)).collect();
            Metric {
                name: name.to_owned(),
                description: format!("what {name} means"),
                unit: "1".to_owned(),
                data: Some(if sum {
                    Data::Sum(Sum {
                        data_points: points,
                        aggregation_temporality: 2,
                        is_monotonic: true,
                    })
                } else {
                    Data::Gauge(Gauge {
                        data_points: points,
                    })
                }),
                ..Metric::default()
            }
        };
        let resource = |svc: &str, metrics: Vec<Metric>| ProtoResourceMetrics {
            resource: Some(ProtoResource {
                attributes: vec![kv("service.name", svc)],
                ..ProtoResource::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "burnwatch".to_owned(),
                    ..InstrumentationScope::default()
                }),
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        };
        ExportMetricsServiceRequest {
            resource_metrics: vec![
                resource(
                    "a",
                    vec![
                        metric("g", 700, false, 3),
                        metric("empty", 0, false, 1),
                        metric("c", 300, true, 2),
                    ],
                ),
                resource(
                    "b",
                    vec![metric("big", 2, false, 400), metric("g", 50, false, 3)],
                ),
            ],
        }
    }

    /// Every data point as (resource, scope, metric with its description, point), in order.
    fn flat(reqs: &[ExportMetricsServiceRequest]) -> Vec<(String, String, String, String)> {
        let mut out = Vec::new();
        for r in reqs {
            for rm in &r.resource_metrics {
                let res = format!("{:?}", rm.resource);
                for sm in &rm.scope_metrics {
                    let scope = format!("{:?}", sm.scope);
                    for m in &sm.metrics {
                        let mut shell = m.clone();
                        let points = take_points(&mut shell.data);
                        let desc = format!("{shell:?}");
                        if points.is_empty() {
                            out.push((res.clone(), scope.clone(), desc.clone(), String::new()));
                        }
                        for p in points {
                            let Point::Number(p) = p else {
                                panic!("only number points here")
                            };
                            out.push((res.clone(), scope.clone(), desc.clone(), format!("{p:?}")));
                        }
                    }
                }
            }
        }
        out
    }

    #[test]
    fn a_request_that_fits_is_sent_whole() {
        let req = request();
        let len = req.encoded_len();
        let parts = split_request(req.clone(), len);
        assert_eq!(parts, vec![req]);
    }

    #[test]
    fn split_requests_are_bounded_and_carry_every_point_once_in_order() {
        let req = request();
        let whole = flat(std::slice::from_ref(&req));
        let big_point = framed(point(0, 400).encoded_len());
        for max in [600, 1_000, 4_096, 10_000, 30_000, req.encoded_len() - 1] {
            let parts = split_request(req.clone(), max);
            assert!(parts.len() > 1, "max {max}: {} parts", parts.len());
            assert_eq!(
                flat(&parts),
                whole,
                "max {max}: the points, once each, in order"
            );
            for p in &parts {
                let n: usize = flat(std::slice::from_ref(p)).len();
                assert!(n >= 1, "max {max}: an empty request");
                // Only a request holding a point too large for any request may exceed.
                assert!(
                    p.encoded_len() <= max || (n == 1 && big_point + 200 > max),
                    "max {max}: a request of {} bytes with {n} points",
                    p.encoded_len()
                );
                // Each part is a valid request: it decodes to itself.
                let bytes = p.encode_to_vec();
                assert_eq!(
                    ExportMetricsServiceRequest::decode(bytes.as_slice()).expect("decode"),
                    *p
                );
            }
        }
    }

    #[test]
    fn the_bound_is_used_not_just_respected() {
        // 2,000 small points of one metric in 16 KiB requests: the requests are nearly full.
        let req = ExportMetricsServiceRequest {
            resource_metrics: vec![ProtoResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: "g".to_owned(),
                        data: Some(Data::Gauge(Gauge {
                            data_points: (0..2_000).map(|i| point(i, 2)).collect(),
                        })),
                        ..Metric::default()
                    }],
                    ..ScopeMetrics::default()
                }],
                ..ProtoResourceMetrics::default()
            }],
        };
        let max = MIN_MAX_REQUEST_BYTES;
        let parts = split_request(req.clone(), max);
        let total: usize = parts.iter().map(prost::Message::encoded_len).sum();
        assert!(parts.iter().all(|p| p.encoded_len() <= max));
        let least = (req.encoded_len()).div_ceil(max);
        assert!(
            parts.len() <= least + 1,
            "{} requests for {} bytes ({total} sent), {least} would do",
            parts.len(),
            req.encoded_len()
        );
    }
}
