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

use std::collections::HashMap;
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
use opentelemetry_sdk::metrics::{
    Instrument as SdkInstrument, PeriodicReader, SdkMeterProvider, Stream, Temporality,
};
use tokio::sync::{Notify, watch};

use crate::config::SeriesSet;
use crate::export::catalogue::{FAMILIES, Family, Sink, Sources};
use crate::export::text::{Kind, Value};
use crate::http_client::{ClientError, HttpClient};
use crate::time::Dur;
use crate::view::{AgentSnapshot, AlertingView};

pub use crate::config::otlp::{DEFAULT_SERVICE_NAME, OtlpConfig, OtlpConfigError, OtlpProtocol};
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
        let exporter = Logged {
            inner: build_exporter(&self.cfg)?,
            endpoint: self.cfg.endpoint.clone(),
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
            let client = OtlpHttp {
                runtime,
                client: HttpClient::with_ca_file(cfg.ca_file.as_deref()).map_err(|e| match e {
                    ClientError::CaFile { path, reason } => {
                        OtlpConfigError::CaFile { path, reason }
                    }
                    ClientError::Tls(e) => OtlpConfigError::Tls(e),
                })?,
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

/// Largest collector response read (the SDK's own clients use the same bound).
const MAX_RESPONSE_BYTES: usize = 4 << 20;

/// The OTLP/HTTP transport: the shared client (its connection is kept between exports when
/// they are closer than its idle timeout). The SDK calls it from its own reader thread, outside
/// any runtime, so each request runs on the runtime the exporter was started in.
#[derive(Debug)]
struct OtlpHttp {
    runtime: tokio::runtime::Handle,
    client: HttpClient,
    timeout: Duration,
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for OtlpHttp {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let client = self.client.clone();
        let timeout = Dur(u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX));
        let send = async move { client.send(request, timeout, MAX_RESPONSE_BYTES).await };
        let r = self.runtime.spawn(send).await?;
        let r = r?;
        let mut response = http::Response::new(r.body);
        *response.status_mut() = http::StatusCode::from_u16(r.status).map_err(|e| e.to_string())?;
        *response.headers_mut() = r.headers;
        Ok(response)
    }
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
/// ([`Logged::export`]) releases it, so one push never mixes two evaluations. A callback that
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
