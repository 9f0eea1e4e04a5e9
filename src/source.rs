//! SLIs read from a Prometheus-compatible query API: the `query` indicators of the rules, read
//! through the `sources.prometheus` entries of the agent config (docs/sources.md).
//!
//! This module owns the instant query (`POST <url>/api/v1/query` with the form fields `query`
//! and `time`, through the one HTTP client), the parsing of its JSON answer into samples (pure,
//! bounded: [`MAX_RESPONSE_BYTES`], [`MAX_SERIES`]; a malformed or hostile answer is a
//! [`ReadError`], never a panic), and how one read becomes events ([`QueryRead`],
//! [`window_events`], [`WindowCarry`]). Prometheus, Thanos Query, Mimir's Prometheus API (with
//! `X-Scope-OrgID`) and VictoriaMetrics answer this endpoint the same way.
//!
//! Two modes, by the query's text ([`QueryMode`]):
//! - counter (no `{{.window}}`): the query's series are cumulative counters; each read hands
//!   their values to the engine, which tracks them per series exactly as scraped counters
//!   (differences, resets, series that come and go), and checkpoints their last values, so a
//!   restart neither loses nor double counts;
//! - window (`{{.window}}`): the placeholder becomes the exact time since the previous read,
//!   evaluated at the read instant; a rate is multiplied by the window's seconds.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Method, Request};

use crate::config::sources::PrometheusSource;
use crate::http_client::HttpAuth;
use crate::http_client::{ClientError, HttpClient, NoAnswer, Url, body_excerpt, secret_header};
use crate::rules::model::QueryMode;
use crate::slo::fingerprint::fnv1a64;
use crate::time::{Dur, Timestamp};

/// The largest answer read: a query of an SLO sums to a few series; a body beyond this is an
/// error (`invalid_response`), not a memory spike.
pub const MAX_RESPONSE_BYTES: usize = 8 << 20;

/// The most series one query may return: counter-mode series are tracked one by one (in the
/// engine's checkpointed state), so an unbounded selector must not become unbounded state.
pub const MAX_SERIES: usize = 10_000;

/// Every reason a read fails, as `burnwatch_source_errors_total` counts them.
pub const REASONS: [&str; 8] = [
    "unreachable",
    "timeout",
    "status",
    "query_error",
    "invalid_response",
    "invalid_value",
    "too_many_series",
    "secret",
];

/// Why a read gave no data. Messages name no URL path or secret.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReadError {
    /// Connecting, TLS, sending or reading failed.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// No whole answer within the source's `timeout`.
    #[error("no answer within {0}")]
    Timeout(Dur),
    /// An HTTP status other than 2xx without a Prometheus error body.
    #[error("status {status}{excerpt}")]
    Status {
        /// The status code.
        status: u16,
        /// `: <start of the body>` or nothing.
        excerpt: String,
    },
    /// The API answered `"status": "error"` (bad PromQL, a query timeout, ...).
    #[error("query error ({error_type}): {message}")]
    Query {
        /// `errorType`, e.g. `bad_data`.
        error_type: String,
        /// `error`, at most 200 characters.
        message: String,
    },
    /// Not the JSON of the query API, or over [`MAX_RESPONSE_BYTES`].
    #[error("invalid response: {0}")]
    Invalid(String),
    /// A value that is not a finite number where events are summed (window mode).
    #[error("the query's value is {0}, not a number of events")]
    Value(f64),
    /// More than [`MAX_SERIES`] series.
    #[error("{0} series, over the limit of {MAX_SERIES}; narrow the query")]
    TooManySeries(usize),
    /// A credential could not be read.
    #[error("credentials: {0}")]
    Secret(String),
}

impl ReadError {
    /// The `reason` label (one of [`REASONS`]).
    pub fn reason(&self) -> &'static str {
        match self {
            ReadError::Unreachable(_) => "unreachable",
            ReadError::Timeout(_) => "timeout",
            ReadError::Status { .. } => "status",
            ReadError::Query { .. } => "query_error",
            ReadError::Invalid(_) => "invalid_response",
            ReadError::Value(_) => "invalid_value",
            ReadError::TooManySeries(_) => "too_many_series",
            ReadError::Secret(_) => "secret",
        }
    }
}

/// One series of an instant vector: a stable id of its label set and its value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// FNV-1a 64 of the sorted label pairs (the same series gets the same id across reads
    /// and restarts).
    pub id: u64,
    /// The value (NaN and infinities as Prometheus writes them).
    pub value: f64,
}

/// What one read of an SLO's two queries gave.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryRead {
    /// Counter mode: every series of each query as `(series id, value)`, for the engine's
    /// counter tracking.
    Counters {
        /// The numerator's series.
        numerator: Vec<(u64, f64)>,
        /// The total's series.
        total: Vec<(u64, f64)>,
    },
    /// Window mode: the events of each query since the previous read (fractional: Prometheus
    /// extrapolates; [`WindowCarry`] makes whole events of them).
    Window {
        /// The numerator's events.
        numerator: f64,
        /// All events.
        total: f64,
    },
}

/// The value Prometheus writes as a string: a decimal, `NaN`, `+Inf` or `-Inf`.
fn parse_value(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => s.parse::<f64>().ok().filter(|v| v.is_finite()),
    }
}

/// The id of a label set: FNV-1a 64 over `name=value` pairs sorted by name, each ended by 0xff
/// (a byte UTF-8 never holds, so no two label sets share a text).
fn series_id(labels: &serde_json::Map<String, serde_json::Value>) -> Option<u64> {
    let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(labels.len());
    for (k, v) in labels {
        pairs.push((k, v.as_str()?));
    }
    pairs.sort_unstable();
    let mut text = Vec::new();
    for (k, v) in pairs {
        text.extend_from_slice(k.as_bytes());
        text.push(b'=');
        text.extend_from_slice(v.as_bytes());
        text.push(0xff);
    }
    Some(fnv1a64(&text))
}

/// Parses an answer of `/api/v1/query` (pure): a vector's series (a series repeated in one
/// answer is taken once, its first value, as a scrape does), or a scalar as one unlabelled
/// series. An error answer, another result type, malformed JSON or too many series is an error.
pub fn parse_response(body: &[u8]) -> Result<Vec<Sample>, ReadError> {
    let invalid = |what: &str| ReadError::Invalid(what.to_owned());
    if body.is_empty() {
        return Err(invalid(&format!(
            "an empty body (or one over {MAX_RESPONSE_BYTES} bytes)"
        )));
    }
    let json: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| ReadError::Invalid(format!("not JSON ({e})")))?;
    match json.get("status").and_then(|s| s.as_str()) {
        Some("success") => {}
        Some("error") => {
            let text = |k: &str| {
                json.get(k)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .chars()
                    .take(200)
                    .collect::<String>()
            };
            return Err(ReadError::Query {
                error_type: text("errorType"),
                message: text("error"),
            });
        }
        _ => return Err(invalid("no `status` of success or error")),
    }
    let data = json.get("data").ok_or_else(|| invalid("no `data`"))?;
    let result = data
        .get("result")
        .ok_or_else(|| invalid("no `data.result`"))?;
    match data.get("resultType").and_then(|t| t.as_str()) {
        Some("vector") => {}
        Some("scalar") => {
            let value = point_value(result).ok_or_else(|| invalid("a malformed scalar"))?;
            return Ok(vec![Sample {
                id: fnv1a64(b""),
                value,
            }]);
        }
        Some(other) => {
            return Err(ReadError::Invalid(format!(
                "a {other} result; the query must give an instant vector (no range selector outside a function)"
            )));
        }
        None => return Err(invalid("no `data.resultType`")),
    }
    let rows = result
        .as_array()
        .ok_or_else(|| invalid("`data.result` is not a list"))?;
    if rows.len() > MAX_SERIES {
        return Err(ReadError::TooManySeries(rows.len()));
    }
    let mut seen = HashSet::with_capacity(rows.len());
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let labels = row
            .get("metric")
            .and_then(|m| m.as_object())
            .ok_or_else(|| invalid("a series without `metric` labels"))?;
        let id = series_id(labels).ok_or_else(|| invalid("a label value that is not a string"))?;
        let value = row
            .get("value")
            .and_then(point_value)
            .ok_or_else(|| invalid("a series without a `[time, \"value\"]` value"))?;
        if seen.insert(id) {
            out.push(Sample { id, value });
        }
    }
    Ok(out)
}

/// `[<time>, "<value>"]`.
fn point_value(v: &serde_json::Value) -> Option<f64> {
    match v.as_array()?.as_slice() {
        [t, value] if t.is_number() => parse_value(value.as_str()?),
        _ => None,
    }
}

/// The events a window-mode query's samples stand for over `secs` seconds: their sum, times
/// `secs` for a rate; no series is no events (an error query without errors returns none).
/// NaN or an infinity is an error (no data for the interval); a negative sum (a difference
/// of two extrapolated sums) is no events.
pub fn window_events(samples: &[Sample], increase: bool, secs: f64) -> Result<f64, ReadError> {
    let mut sum = 0.0;
    for s in samples {
        if !s.value.is_finite() {
            return Err(ReadError::Value(s.value));
        }
        sum += s.value;
    }
    let events = if increase { sum } else { sum * secs };
    Ok(events.max(0.0))
}

/// Whole events of the fractional window-mode reads of one SLO: each read counts the change of
/// the rounded running sums, so however many reads, the events counted stay within half an
/// event of the sums Prometheus gave. A read's numerator events are at most its total events
/// (the engine counts a read as so many events of which so many good): what the numerator
/// cannot count yet waits for the total's next whole event, so it lags by at most one event.
/// Held in memory only: a restart loses under one event.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WindowCarry {
    numerator: f64,
    total: f64,
    counted_numerator: u64,
    counted_total: u64,
}

impl WindowCarry {
    /// Adds one read's events; returns the whole (numerator, total) events it makes, the
    /// numerator at most the total.
    pub fn add(&mut self, numerator: f64, total: f64) -> (u64, u64) {
        let whole = |x: f64| x.round() as u64;
        self.numerator += numerator.max(0.0);
        self.total += total.max(0.0);
        let t = whole(self.total).saturating_sub(self.counted_total);
        self.counted_total += t;
        let n = whole(self.numerator)
            .saturating_sub(self.counted_numerator)
            .min(t);
        self.counted_numerator += n;
        (n, t)
    }
}

/// The PromQL range of a window: whole milliseconds, which every backend reads.
pub fn range(window: Dur) -> String {
    format!("{}ms", window.millis())
}

/// `time=` of a read: seconds with milliseconds.
fn time_param(at: Timestamp) -> String {
    format!("{}.{:03}", at.0.div_euclid(1000), at.0.rem_euclid(1000))
}

/// `application/x-www-form-urlencoded` encoding of a value.
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3 / 2);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char);
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Why a source cannot be used at all (checked at start).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SourceError {
    /// The URL does not parse.
    #[error("source `{name}`: url: {reason}")]
    Url {
        /// The source.
        name: String,
        /// Why.
        reason: String,
    },
    /// The CA file or TLS setup failed.
    #[error("source `{name}`: {source}")]
    Client {
        /// The source.
        name: String,
        /// Why.
        source: ClientError,
    },
}

/// One `sources.prometheus` entry, ready to query: cheap to share between the SLOs that read
/// it (one connection pool per source).
#[derive(Debug)]
pub struct PrometheusClient {
    /// The source's name (the `source` label of its self-metrics).
    pub name: Arc<str>,
    /// How often its SLOs are read.
    pub interval: Dur,
    endpoint: String,
    http: HttpClient,
    headers: Vec<(HeaderName, HeaderValue)>,
    auth: Option<HttpAuth>,
    timeout: Dur,
    /// When a failure was last logged, and whether reads are failing: one log gate per source,
    /// so a backend that is down logs one line per [`LOG_EVERY`], not one per SLO.
    log: std::sync::Mutex<(Option<std::time::Instant>, bool)>,
}

/// How often a failing source logs: when failures start, then at most this often while they
/// go on (every failure is counted in `burnwatch_source_errors_total`), and once when a read
/// answers again.
pub const LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(300);

/// What to log after a read, by [`PrometheusClient::log_outcome`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLine {
    /// Nothing.
    None,
    /// The failure (the first, or the first for [`LOG_EVERY`]).
    Failure,
    /// The source answers again after failures.
    Recovered,
}

impl PrometheusClient {
    /// Whether the outcome of a read (`failed` or not) is worth a log line, by the source's
    /// gate (see [`LOG_EVERY`]).
    pub fn log_outcome(&self, failed: bool) -> LogLine {
        let mut g = self
            .log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !failed {
            return if std::mem::take(&mut g.1) {
                g.0 = None;
                LogLine::Recovered
            } else {
                LogLine::None
            };
        }
        g.1 = true;
        if g.0.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
            g.0 = Some(std::time::Instant::now());
            LogLine::Failure
        } else {
            LogLine::None
        }
    }

    /// A client for `cfg` (its CA file read now). Does not connect.
    pub fn new(cfg: &PrometheusSource) -> Result<PrometheusClient, SourceError> {
        let endpoint = format!("{}/api/v1/query", cfg.url);
        Url::parse(&endpoint).map_err(|e| SourceError::Url {
            name: cfg.name.clone(),
            reason: e.to_string(),
        })?;
        let http = HttpClient::with_ca_file(cfg.tls_ca.as_deref()).map_err(|source| {
            SourceError::Client {
                name: cfg.name.clone(),
                source,
            }
        })?;
        let mut headers = Vec::new();
        for (k, v) in &cfg.headers {
            // The config checked names and values; a header that still fails is skipped
            // rather than sent wrong.
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes()),
                secret_header(v),
            ) {
                headers.push((n, v));
            }
        }
        Ok(PrometheusClient {
            name: cfg.name.as_str().into(),
            interval: cfg.interval,
            endpoint,
            http,
            headers,
            auth: cfg.auth.clone(),
            timeout: cfg.timeout,
            log: std::sync::Mutex::new((None, false)),
        })
    }

    /// One instant query of `promql` at `at`.
    pub async fn query(&self, promql: &str, at: Timestamp) -> Result<Vec<Sample>, ReadError> {
        let body = format!("query={}&time={}", form_encode(promql), time_param(at));
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(self.endpoint.as_str())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json");
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        if let Some(auth) = &self.auth {
            let value = auth
                .authorization()
                .map_err(|e| ReadError::Secret(e.to_string()))?;
            let value = secret_header(value.expose())
                .map_err(|_| ReadError::Secret("not a valid header value".into()))?;
            req = req.header(header::AUTHORIZATION, value);
        }
        let req = req
            .body(Bytes::from(body))
            .map_err(|e| ReadError::Invalid(format!("the request could not be built: {e}")))?;
        let resp = self
            .http
            .exchange(req, self.timeout, MAX_RESPONSE_BYTES)
            .await
            .map_err(|e| match e {
                NoAnswer::Timeout(d) => ReadError::Timeout(d),
                NoAnswer::Network(m) => ReadError::Unreachable(m),
            })?;
        // Prometheus answers bad queries with 400 or 422 and a JSON error: that says more.
        match parse_response(&resp.body) {
            Err(e @ ReadError::Query { .. }) => Err(e),
            _ if !(200..300).contains(&resp.status) => Err(ReadError::Status {
                status: resp.status,
                excerpt: body_excerpt(&resp.body),
            }),
            r => r,
        }
    }

    /// One read of an SLO's queries at `at`; `from` is the previous read (window mode).
    pub async fn read(
        &self,
        numerator: &str,
        total: &str,
        from: Timestamp,
        at: Timestamp,
    ) -> Result<QueryRead, ReadError> {
        match QueryMode::of(total) {
            QueryMode::Counter => {
                let (n, t) = tokio::join!(self.query(numerator, at), self.query(total, at));
                let pairs = |v: Vec<Sample>| v.into_iter().map(|s| (s.id, s.value)).collect();
                Ok(QueryRead::Counters {
                    numerator: pairs(n?),
                    total: pairs(t?),
                })
            }
            QueryMode::Window { increase } => {
                let window = Dur::from_millis(at.0.saturating_sub(from.0).max(0) as u64);
                if window.is_zero() {
                    return Ok(QueryRead::Window {
                        numerator: 0.0,
                        total: 0.0,
                    });
                }
                let r = range(window);
                let nq = QueryMode::with_window(numerator, &r);
                let tq = QueryMode::with_window(total, &r);
                let (n, t) = tokio::join!(self.query(&nq, at), self.query(&tq, at));
                let secs = window.as_secs_f64();
                let n_increase = matches!(
                    QueryMode::of(numerator),
                    QueryMode::Window { increase: true }
                );
                Ok(QueryRead::Window {
                    numerator: window_events(&n?, n_increase, secs)?,
                    total: window_events(&t?, increase, secs)?,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector(rows: &str) -> String {
        format!(r#"{{"status":"success","data":{{"resultType":"vector","result":[{rows}]}}}}"#)
    }

    fn row(labels: &str, value: &str) -> String {
        format!(r#"{{"metric":{{{labels}}},"value":[1701741234.567,"{value}"]}}"#)
    }

    #[test]
    fn a_vector_is_parsed_with_stable_ids_and_duplicates_taken_once() {
        let body = vector(
            &[
                row(r#""__name__":"x","code":"500""#, "12"),
                row(r#""code":"200","__name__":"x""#, "30.5"),
                // The same label set in another key order: one series, its first value.
                row(r#""code":"500","__name__":"x""#, "99"),
            ]
            .join(","),
        );
        let s = parse_response(body.as_bytes()).expect("valid");
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].value, s[1].value), (12.0, 30.5));
        let again = parse_response(vector(&row(r#""code":"500","__name__":"x""#, "13")).as_bytes())
            .expect("valid");
        assert_eq!(again[0].id, s[0].id);
        assert_ne!(s[0].id, s[1].id);
    }

    #[test]
    fn special_values_empty_vectors_and_scalars() {
        let body = vector(
            &[
                row(r#""a":"1""#, "NaN"),
                row(r#""a":"2""#, "+Inf"),
                row(r#""a":"3""#, "-Inf"),
                row(r#""a":"4""#, "1e3"),
            ]
            .join(","),
        );
        let s = parse_response(body.as_bytes()).expect("valid");
        assert!(s[0].value.is_nan());
        assert_eq!(
            (s[1].value, s[2].value, s[3].value),
            (f64::INFINITY, f64::NEG_INFINITY, 1000.0)
        );
        assert_eq!(parse_response(vector("").as_bytes()), Ok(Vec::new()));
        let scalar = r#"{"status":"success","data":{"resultType":"scalar","result":[1.5,"7"]}}"#;
        assert_eq!(
            parse_response(scalar.as_bytes()).expect("scalar")[0].value,
            7.0
        );
    }

    #[test]
    fn malformed_and_hostile_answers_are_errors_not_panics() {
        let cases: &[(&str, &str)] = &[
            ("", "invalid_response"),
            ("<html>502 Bad Gateway</html>", "invalid_response"),
            ("{}", "invalid_response"),
            (r#"{"status":"success"}"#, "invalid_response"),
            (
                r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#,
                "invalid_response",
            ),
            (
                r#"{"status":"success","data":{"resultType":"vector","result":{}}}"#,
                "invalid_response",
            ),
            (
                r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":1},"value":[1,"2"]}]}}"#,
                "invalid_response",
            ),
            (
                r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,2]}]}}"#,
                "invalid_response",
            ),
            (
                r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"x"]}]}}"#,
                "invalid_response",
            ),
            (
                r#"{"status":"error","errorType":"bad_data","error":"parse error at char 5"}"#,
                "query_error",
            ),
        ];
        for (body, reason) in cases {
            let e = parse_response(body.as_bytes()).expect_err(body);
            assert_eq!(e.reason(), *reason, "{body}: {e}");
        }
        // Deep nesting stops at serde_json's recursion limit.
        let deep = "[".repeat(100_000);
        assert_eq!(
            parse_response(deep.as_bytes()).expect_err("deep").reason(),
            "invalid_response"
        );
        let many: Vec<String> = (0..=MAX_SERIES)
            .map(|i| row(&format!(r#""i":"{i}""#), "1"))
            .collect();
        assert_eq!(
            parse_response(vector(&many.join(",")).as_bytes()),
            Err(ReadError::TooManySeries(MAX_SERIES + 1))
        );
    }

    #[test]
    fn window_events_are_rates_times_seconds_or_increases() {
        let s = |v: &[f64]| {
            v.iter()
                .map(|&value| Sample { id: 0, value })
                .collect::<Vec<_>>()
        };
        assert_eq!(window_events(&s(&[0.5, 0.25]), false, 60.0), Ok(45.0));
        assert_eq!(window_events(&s(&[3.0, 4.0]), true, 60.0), Ok(7.0));
        // No series: no events (an error query while nothing fails).
        assert_eq!(window_events(&[], false, 60.0), Ok(0.0));
        // A difference of extrapolated sums below zero: none.
        assert_eq!(window_events(&s(&[-0.1]), true, 60.0), Ok(0.0));
        assert_eq!(
            window_events(&s(&[1.0, f64::NAN]), true, 60.0).map_err(|e| e.reason()),
            Err("invalid_value")
        );
    }

    #[test]
    fn the_carry_keeps_whole_events_within_half_an_event_of_the_sums() {
        // Brute force against the running float sums.
        let reads = [0.4, 0.4, 0.4, 2.7, 0.0, 9.999_999, 0.3, 0.2];
        let mut c = WindowCarry::default();
        let (mut counted, mut sum) = (0u64, 0.0f64);
        for r in reads {
            let (n, t) = c.add(r, r * 2.0);
            counted += n;
            sum += r;
            assert!(
                (counted as f64 - sum).abs() <= 0.5 + 1e-9,
                "{counted} vs {sum}"
            );
            assert!(t >= n);
        }
        assert_eq!(counted, 14);
        // A numerator rounding up before its total waits for the total's next event.
        let mut c = WindowCarry::default();
        assert_eq!(c.add(9.6, 10.4), (10, 10));
        assert_eq!(c.add(0.6, 0.6), (0, 1));
        assert_eq!(c.add(0.3, 0.3), (0, 0));
        assert_eq!(c.add(0.0, 1.0), (1, 1));
    }

    #[test]
    fn a_failing_source_logs_once_then_once_more_when_it_answers() {
        let cfg = PrometheusSource {
            name: "prom".into(),
            url: "http://127.0.0.1:1".into(),
            auth: None,
            headers: vec![("X-Scope-OrgID".into(), "t1".into())],
            tls_ca: None,
            timeout: Dur::from_secs(1),
            interval: Dur::from_secs(60),
            default: false,
        };
        let c = PrometheusClient::new(&cfg).expect("client");
        assert_eq!(c.log_outcome(false), LogLine::None);
        // Many SLOs of the source failing together: one line.
        assert_eq!(c.log_outcome(true), LogLine::Failure);
        assert_eq!(c.log_outcome(true), LogLine::None);
        assert_eq!(c.log_outcome(true), LogLine::None);
        assert_eq!(c.log_outcome(false), LogLine::Recovered);
        assert_eq!(c.log_outcome(false), LogLine::None);
        assert_eq!(c.log_outcome(true), LogLine::Failure);
        let bad = PrometheusSource {
            url: "http://a b".into(),
            ..cfg
        };
        assert!(matches!(
            PrometheusClient::new(&bad),
            Err(SourceError::Url { .. })
        ));
    }

    #[test]
    fn requests_encode_the_query_and_the_time() {
        assert_eq!(
            form_encode(r#"sum(rate(x{a="b c"}[5m]))"#),
            "sum%28rate%28x%7Ba%3D%22b%20c%22%7D%5B5m%5D%29%29"
        );
        assert_eq!(time_param(Timestamp(1_701_741_234_567)), "1701741234.567");
        assert_eq!(time_param(Timestamp(5)), "0.005");
        assert_eq!(range(Dur::from_millis(61_234)), "61234ms");
        assert_eq!(
            QueryMode::with_window(
                "sum(rate(x[{{ .window }}]))/sum(rate(y[{{.window}}]))",
                "5m"
            ),
            "sum(rate(x[5m]))/sum(rate(y[5m]))"
        );
    }
}
