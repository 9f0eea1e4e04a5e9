//! The `export.otlp` block of the agent config: where and how often to push, and everything the
//! exporter ([`crate::export::otlp`]) would refuse at start (endpoint, headers, durations, the CA
//! file), checked here so the config reports it at its line. The exporter reads these settings;
//! the config does not depend on the exporter.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::SeriesSet;

/// The `service.name` resource attribute when [`OtlpConfig::resource`] sets none.
pub const DEFAULT_SERVICE_NAME: &str = "burnwatch";

/// The default of [`OtlpConfig::max_request_bytes`]: half of the 4 MiB that the OpenTelemetry
/// Collector's gRPC receiver accepts by default (`max_recv_msg_size_mib`), so a default
/// collector takes every request with room to spare (about 17,000 series a request).
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 2 << 20;

/// The smallest [`OtlpConfig::max_request_bytes`] accepted: a data point with its attributes
/// is about 120 bytes, so even this bound carries over a hundred of them per request.
pub const MIN_MAX_REQUEST_BYTES: usize = 16 << 10;

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
    /// The largest request of an export, in encoded bytes: an export whose request would be
    /// larger is sent as several requests, each a complete `ExportMetricsServiceRequest` (the
    /// resource, scope and metric descriptions repeated) with a share of the data points, all
    /// from the same snapshot. A single data point larger than this goes alone. At least
    /// [`MIN_MAX_REQUEST_BYTES`]; [`DEFAULT_MAX_REQUEST_BYTES`] unless set.
    pub max_request_bytes: usize,
    /// The series set pushed: `export.series` (shared with `/metrics`, not a key of
    /// `export.otlp`), so the push and the page carry the same series.
    pub series: SeriesSet,
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
            .field("max_request_bytes", &self.max_request_bytes)
            .field("series", &self.series)
            .finish()
    }
}

impl OtlpConfig {
    /// A config with the OpenTelemetry defaults: 60 s interval, 10 s timeout, no headers;
    /// requests of at most [`DEFAULT_MAX_REQUEST_BYTES`].
    pub fn new(endpoint: impl Into<String>, protocol: OtlpProtocol) -> OtlpConfig {
        OtlpConfig {
            endpoint: endpoint.into(),
            protocol,
            interval: Duration::from_secs(60),
            headers: Vec::new(),
            resource: Vec::new(),
            timeout: Duration::from_secs(10),
            ca_file: None,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            series: SeriesSet::default(),
        }
    }

    /// Everything [`crate::export::otlp::OtlpExporter::start`] would refuse, checked without starting anything:
    /// the endpoint, the headers, the durations and the CA file. The agent config calls it so
    /// that these are config errors with a position.
    pub fn check(&self) -> Result<(), OtlpConfigError> {
        if self.interval.is_zero() {
            return Err(OtlpConfigError::ZeroDuration { what: "interval" });
        }
        if self.timeout.is_zero() {
            return Err(OtlpConfigError::ZeroDuration { what: "timeout" });
        }
        if self.max_request_bytes < MIN_MAX_REQUEST_BYTES {
            return Err(OtlpConfigError::RequestBytes(self.max_request_bytes));
        }
        endpoint(self)?;
        header_map(&self.headers)?;
        if let Some(path) = &self.ca_file {
            read_ca(path)?;
        }
        Ok(())
    }

    /// Whether the endpoint is `https://`.
    pub(crate) fn is_https(&self) -> bool {
        self.endpoint.starts_with("https://")
    }
}

/// Why an OTLP block cannot be used (what the exporter would refuse at start).
#[derive(Debug, thiserror::Error)]
pub enum OtlpConfigError {
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
    /// `max_request_bytes` is below [`MIN_MAX_REQUEST_BYTES`].
    #[error(
        "OTLP max_request_bytes {0} is below the minimum of {MIN_MAX_REQUEST_BYTES} (a request \
         must hold more than a handful of data points); the default is {DEFAULT_MAX_REQUEST_BYTES}"
    )]
    RequestBytes(usize),
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
}

/// Reads and checks the CA bundle (see [`crate::probe::tls::read_ca_file`]); returns its bytes.
pub(crate) fn read_ca(path: &std::path::Path) -> Result<Vec<u8>, OtlpConfigError> {
    crate::probe::tls::read_ca_file(path).map_err(tls_error)
}

/// The error of a CA file or TLS setup.
pub(crate) fn tls_error(e: crate::probe::ProbeError) -> OtlpConfigError {
    match e {
        crate::probe::ProbeError::CaFile { path, reason } => {
            OtlpConfigError::CaFile { path, reason }
        }
        e => OtlpConfigError::Tls(e.to_string()),
    }
}

/// The URL the SDK gets: checked to be `http://` or `https://` with a host, with the OTLP/HTTP
/// path for HTTP (the SDK uses a programmatic endpoint verbatim).
pub(crate) fn endpoint(cfg: &OtlpConfig) -> Result<String, OtlpConfigError> {
    let bad = |reason| OtlpConfigError::Endpoint {
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
pub(crate) fn header_map(headers: &[(String, String)]) -> Result<http::HeaderMap, OtlpConfigError> {
    let mut map = http::HeaderMap::new();
    for (name, value) in headers {
        let bad = |reason: String| OtlpConfigError::Header {
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
                    Err(OtlpConfigError::Endpoint { .. })
                ),
                "{e}"
            );
        }
        assert!(matches!(
            header_map(&[("bad name".into(), "v".into())]),
            Err(OtlpConfigError::Header { .. })
        ));
        assert!(matches!(
            header_map(&[("x".into(), "line\nbreak".into())]),
            Err(OtlpConfigError::Header { .. })
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
        assert!(matches!(
            zero.check(),
            Err(OtlpConfigError::ZeroDuration { .. })
        ));
    }
}
