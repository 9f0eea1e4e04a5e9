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
//! the shared [`crate::http_client::HttpClient`], so neither reqwest nor a second TLS stack is
//! built.
//!
//! **Secrets.** Header values are usually credentials: the `Debug` form of [`OtlpConfig`] shows
//! header names only, and no error or log line carries a value.

use std::collections::HashMap;
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
use crate::agent::alerting::AlertingView;
use crate::export::{alert_state_value, quantile_points, rule_labels, window_name};
use crate::http_client::{ClientError, HttpClient};
use crate::rules::model::Slo;
use crate::slo::engine::{SloReport, WindowReport};
use crate::time::Dur;

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
        OtlpExporter::start_with(cfg, snapshots, None)
    }

    /// As [`OtlpExporter::start`], with the alerting task's views: tier alert states
    /// (`burnwatch_slo_alert_state`) are read from them, as `/metrics` reads them. Without
    /// views no alert state is exported.
    pub fn start_with(
        cfg: &OtlpConfig,
        snapshots: watch::Receiver<Arc<AgentSnapshot>>,
        alerting: Option<watch::Receiver<Arc<AlertingView>>>,
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
        let mut gauges: Vec<ObservableGauge<f64>> = GAUGES
            .iter()
            .map(|f| gauge(&meter, f, snapshots.clone()))
            .collect();
        if let Some(views) = alerting {
            gauges.push(alert_state_gauge(&meter, snapshots.clone(), views));
        }
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

/// `burnwatch_slo_alert_state`: each tier of the snapshot's SLOs with the phase its lifecycle
/// decided (the alerting view), as `/metrics` shows it.
fn alert_state_gauge(
    meter: &Meter,
    snapshots: watch::Receiver<Arc<AgentSnapshot>>,
    views: watch::Receiver<Arc<AlertingView>>,
) -> ObservableGauge<f64> {
    meter
        .f64_observable_gauge("burnwatch_slo_alert_state")
        .with_description("Burn-rate tier alert state, as its lifecycle decided it: 0 not firing, 1 pending, 2 firing (also held by keep_firing_for or flap damping)")
        .with_unit("")
        .with_callback(move |obs| {
            let snap = snapshots.borrow().clone();
            let view = views.borrow().clone();
            for (r, _, attrs) in slo_rows(&snap) {
                for t in &r.tiers {
                    let v = alert_state_value(view.tiers.get(&r.id, &t.name));
                    let attrs = with(
                        &attrs,
                        [("tier", t.name.clone()), ("severity", t.severity.clone())],
                    );
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

static GAUGES: [Family<f64>; 23] = [
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
