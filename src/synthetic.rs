//! A built-in synthetic HTTP service with a controllable, deterministic error rate and latency, and a
//! small steady-rate load generator for it.
//!
//! It exists for two users: `burnwatch demo`, so that a new user sees SLIs move without installing
//! anything else, and the integration tests, which need "a real HTTP target with known failures and
//! latencies" whose exact counts are the ground truth. [`rules_yaml`] is the rules that measure it
//! (the demo's).
//!
//! Determinism is the point. Every `/api` request gets a sequence number `n` (0-based, per
//! [`Service`], restarted by [`Service::set_behaviour`]) and the [`Behaviour`] maps `n` to a status and
//! a delay by pure arithmetic, so over any run of `error_every * k` consecutive requests exactly
//! `k * errors_per_cycle` fail. The latency recorded in the histogram is the *served delay* (the
//! configured one, slept with `tokio::time::sleep`), not the wall time, so bucket counts are exact too.
//!
//! Routes:
//! - `GET /`, `GET /api`, `GET /api/...`: 200 `ok` or 500 `error` after the scheduled delay.
//! - `GET /healthz`: 200 `ok`, or 503 when [`Behaviour::health_down`].
//! - `GET /metrics`: Prometheus text format 0.0.4 (see [`Stats::to_prometheus`]).
//! - `POST /control` with a body such as `outage`, `healthy` or `error_every=10 latency=50ms`
//!   (see [`Behaviour`]'s `FromStr`) switches the behaviour; `GET /control` shows the current one.
//!
//! [`InProcess`] answers the agent's collectors (its `/metrics` and `/healthz`) without sockets
//! and [`Service::request`] serves one `/api` request, so a test can run the whole agent and its
//! traffic on tokio's paused clock.
//!
//! A third user is the scale benchmark (`scripts/bench-scale.sh`, `burnwatch synthetic`): a
//! [`Fleet`] serves many routes' request counters over a few metrics pages and thousands of health
//! endpoints from one process, its counters a pure function of time (see [`Fleet::route_counts`]).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full, Limited};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::time::Dur;

mod in_process;
pub use in_process::InProcess;

/// Upper edges (`le`) of the finite latency histogram buckets; `+Inf` follows implicitly. 300 ms is
/// included so that a typical "under 300 ms" latency SLO reads an exact bucket.
pub const LATENCY_BUCKETS: [Duration; 12] = [
    Duration::from_millis(5),
    Duration::from_millis(10),
    Duration::from_millis(25),
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(300),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_millis(2500),
    Duration::from_secs(5),
    Duration::from_secs(10),
];

/// How long [`serve`] lets in-flight requests finish after shutdown before aborting them.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// How many requests [`generate_load`] keeps in flight at most; ticks beyond it are skipped.
pub const LOAD_CONCURRENCY: usize = 64;

/// The deadline of one load request (connect, send and read the whole response).
pub const LOAD_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A slow client must send its request headers within this time; protects the demo from idle sockets.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// `/control` bodies are one short line; anything longer is a mistake, not a behaviour.
const CONTROL_BODY_LIMIT: usize = 1024;

/// Pause after an accept error that is not about a single connection (e.g. out of file descriptors),
/// so the loop does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Consecutive non-connection accept errors after which [`serve`] gives up (about 10 s of backoff).
const MAX_ACCEPT_FAILURES: u32 = 100;

/// What the service does with each `/api` request: a deterministic schedule of failures and delays.
///
/// For the request with sequence number `n` (0-based, per [`Service`], restarted on
/// [`Service::set_behaviour`]):
/// - it fails with 500 when `error_every > 0` and `n % error_every < errors_per_cycle`, otherwise 200;
/// - it is delayed by `slow_latency` when `slow_every > 0` and `n % slow_every == slow_every - 1`
///   (the `slow_every`-th, `2*slow_every`-th, ... request), otherwise by `latency`.
///
/// So in any run of `error_every * k` consecutive requests exactly `k * min(errors_per_cycle,
/// error_every)` fail, and in any run of `slow_every * k` exactly `k` are slow. The two schedules are
/// independent.
///
/// Text form (`FromStr`/`Display`, used by `POST /control`): an optional preset name (`healthy`,
/// `degraded`, `outage`; default `healthy`) followed by `key=value` overrides separated by spaces or
/// commas, keys being the field names, durations written like `250ms` or `1s`, e.g.
/// `outage health_down=false` or `error_every=10 errors_per_cycle=1 latency=20ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Behaviour {
    /// Length of the error cycle in requests; 0 means no request ever fails.
    pub error_every: u32,
    /// How many requests at the start of each error cycle fail (values above `error_every` mean all).
    pub errors_per_cycle: u32,
    /// Delay before answering a request that is not slow.
    pub latency: Duration,
    /// Every `slow_every`-th request is slow; 0 means none is.
    pub slow_every: u32,
    /// Delay before answering a slow request.
    pub slow_latency: Duration,
    /// When true, `/healthz` answers 503.
    pub health_down: bool,
}

impl Behaviour {
    /// No errors, 10 ms per request, healthy.
    pub const fn healthy() -> Self {
        Behaviour {
            error_every: 0,
            errors_per_cycle: 0,
            latency: Duration::from_millis(10),
            slow_every: 0,
            slow_latency: Duration::ZERO,
            health_down: false,
        }
    }

    /// A mild incident: 1 request in 20 fails (5%), 1 in 10 takes 400 ms (over a 300 ms threshold),
    /// the rest 20 ms; `/healthz` still says ok.
    pub const fn degraded() -> Self {
        Behaviour {
            error_every: 20,
            errors_per_cycle: 1,
            latency: Duration::from_millis(20),
            slow_every: 10,
            slow_latency: Duration::from_millis(400),
            health_down: false,
        }
    }

    /// A hard outage: every other request fails (50%), every other one takes 800 ms and the rest
    /// 100 ms, and `/healthz` answers 503.
    pub const fn outage() -> Self {
        Behaviour {
            error_every: 2,
            errors_per_cycle: 1,
            latency: Duration::from_millis(100),
            slow_every: 2,
            slow_latency: Duration::from_millis(800),
            health_down: true,
        }
    }

    /// The preset called `name`, if there is one (`healthy`, `degraded`, `outage`).
    pub fn preset(name: &str) -> Option<Self> {
        match name {
            "healthy" => Some(Self::healthy()),
            "degraded" => Some(Self::degraded()),
            "outage" => Some(Self::outage()),
            _ => None,
        }
    }

    /// Failures per error cycle, clamped to the cycle length (0 when errors are off).
    pub fn errors_in_cycle(&self) -> u32 {
        if self.error_every == 0 {
            0
        } else {
            self.errors_per_cycle.min(self.error_every)
        }
    }

    /// Whether request `n` fails.
    pub fn is_error(&self, n: u64) -> bool {
        self.error_every > 0 && n % u64::from(self.error_every) < u64::from(self.errors_per_cycle)
    }

    /// Whether request `n` is slow.
    pub fn is_slow(&self, n: u64) -> bool {
        self.slow_every > 0 && n % u64::from(self.slow_every) == u64::from(self.slow_every) - 1
    }

    /// The status code request `n` gets: 500 or 200.
    pub fn status(&self, n: u64) -> u16 {
        if self.is_error(n) { 500 } else { 200 }
    }

    /// The delay request `n` is served with (and recorded as its latency).
    pub fn delay(&self, n: u64) -> Duration {
        if self.is_slow(n) {
            self.slow_latency
        } else {
            self.latency
        }
    }
}

impl Default for Behaviour {
    fn default() -> Self {
        Self::healthy()
    }
}

impl fmt::Display for Behaviour {
    /// Prints every field in the `FromStr` syntax; delays are printed in whole milliseconds, so
    /// sub-millisecond parts (which the text form cannot express) are truncated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Duration| Dur(u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        write!(
            f,
            "error_every={} errors_per_cycle={} latency={} slow_every={} slow_latency={} health_down={}",
            self.error_every,
            self.errors_per_cycle,
            ms(self.latency),
            self.slow_every,
            ms(self.slow_latency),
            self.health_down
        )
    }
}

/// Why a behaviour text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BehaviourError {
    /// Nothing was given.
    #[error(
        "empty behaviour; write a preset (healthy, degraded, outage) and/or key=value settings"
    )]
    Empty,
    /// A word that is neither a preset nor `key=value`.
    #[error(
        "`{0}` is not a preset (healthy, degraded, outage) nor a key=value setting; presets may only come first"
    )]
    NotASetting(String),
    /// A key that is not a field of [`Behaviour`].
    #[error(
        "unknown setting `{0}`; settings are error_every, errors_per_cycle, latency, slow_every, slow_latency, health_down"
    )]
    UnknownKey(String),
    /// A value that does not parse for its key.
    #[error("bad value `{value}` for `{key}`: {reason}")]
    BadValue {
        /// The setting.
        key: String,
        /// The text given for it.
        value: String,
        /// What was expected.
        reason: String,
    },
}

impl FromStr for Behaviour {
    type Err = BehaviourError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut words = text
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|w| !w.is_empty())
            .peekable();
        let first = words.peek().ok_or(BehaviourError::Empty)?;
        let mut behaviour = match Behaviour::preset(first) {
            Some(preset) => {
                words.next();
                preset
            }
            None => Behaviour::healthy(),
        };
        for word in words {
            let (key, value) = word
                .split_once('=')
                .ok_or_else(|| BehaviourError::NotASetting(word.to_owned()))?;
            let bad = |reason: String| BehaviourError::BadValue {
                key: key.to_owned(),
                value: value.to_owned(),
                reason,
            };
            let count = || {
                value
                    .parse::<u32>()
                    .map_err(|_| bad("expected a whole number of requests".to_owned()))
            };
            let delay = || {
                Dur::parse(value)
                    .map(|d| Duration::from_millis(d.millis()))
                    .map_err(|e| bad(e.to_string()))
            };
            match key {
                "error_every" => behaviour.error_every = count()?,
                "errors_per_cycle" => behaviour.errors_per_cycle = count()?,
                "latency" => behaviour.latency = delay()?,
                "slow_every" => behaviour.slow_every = count()?,
                "slow_latency" => behaviour.slow_latency = delay()?,
                "health_down" => {
                    behaviour.health_down = value
                        .parse::<bool>()
                        .map_err(|_| bad("expected true or false".to_owned()))?;
                }
                _ => return Err(BehaviourError::UnknownKey(key.to_owned())),
            }
        }
        Ok(behaviour)
    }
}

/// One cumulative latency histogram bucket, as a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    /// The upper edge: requests with a served delay `<= le` are counted.
    pub le: Duration,
    /// Requests with a served delay `<= le` (cumulative, as in Prometheus).
    pub count: u64,
    /// Requests with a served delay `> le` (the complement of `count`).
    pub slower: u64,
}

/// A consistent snapshot of what the service has answered on `/api`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// All `/api` requests answered.
    pub requests: u64,
    /// Answered `/api` requests by status code; 200 and 500 are always present, possibly at 0.
    pub by_code: BTreeMap<u16, u64>,
    /// One entry per [`LATENCY_BUCKETS`] edge, in order; the `+Inf` bucket is `requests`.
    pub buckets: Vec<Bucket>,
    /// Sum of the served delays.
    pub latency_sum: Duration,
}

impl Stats {
    /// Requests answered with `code` (0 if none).
    pub fn code(&self, code: u16) -> u64 {
        self.by_code.get(&code).copied().unwrap_or(0)
    }

    /// Requests served slower than the bucket edge `le`, or `None` if `le` is not an edge.
    pub fn slower_than(&self, le: Duration) -> Option<u64> {
        self.buckets.iter().find(|b| b.le == le).map(|b| b.slower)
    }

    /// The Prometheus text exposition (format 0.0.4) served on `/metrics`:
    /// `demo_http_requests_total{code,path="/api"}` and the histogram
    /// `demo_http_request_duration_seconds` (`_bucket{le}`, `_sum`, `_count`). Numbers are printed
    /// exactly (the sum from integer nanoseconds), never NaN or infinite.
    pub fn to_prometheus(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::with_capacity(1024);
        // Writing to a String cannot fail; the results are ignored for that reason.
        let _ = writeln!(
            out,
            "# HELP demo_http_requests_total Requests answered by the synthetic service on /api, by status code."
        );
        let _ = writeln!(out, "# TYPE demo_http_requests_total counter");
        for (code, n) in &self.by_code {
            let _ = writeln!(
                out,
                "demo_http_requests_total{{code=\"{code}\",path=\"/api\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP demo_http_request_duration_seconds Served delay of /api requests (the configured latency, not wall time)."
        );
        let _ = writeln!(out, "# TYPE demo_http_request_duration_seconds histogram");
        for b in &self.buckets {
            let _ = writeln!(
                out,
                "demo_http_request_duration_seconds_bucket{{le=\"{}\"}} {}",
                seconds_text(b.le),
                b.count
            );
        }
        let _ = writeln!(
            out,
            "demo_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {}",
            self.requests
        );
        let _ = writeln!(
            out,
            "demo_http_request_duration_seconds_sum {}",
            seconds_text(self.latency_sum)
        );
        let _ = writeln!(
            out,
            "demo_http_request_duration_seconds_count {}",
            self.requests
        );
        out
    }
}

/// The rules `burnwatch demo` writes for this service listening at `base`
/// (`http://127.0.0.1:PORT`): its health probe, its `/metrics` page and three SLOs on them.
pub fn rules_yaml(base: &str) -> String {
    format!(
        r#"# Rules written by `burnwatch demo` for its built-in service.
version: burnwatch/v1
service: demo-shop
owner: you@example.com
runbook: https://example.com/runbooks/demo-shop
probes:
  - name: demo-health
    http:
      url: {base}/healthz
    interval: 5s
scrape:
  - name: demo-shop
    url: {base}/metrics
    interval: 5s
slos:
  # 99.9% of 30d: 43 minutes of errors a month. The outage (half the requests failing) spends
  # 2% of it, page_fast's threshold, about 105 s in, so it pages; at 99.5% it would take 8 min.
  - name: availability
    description: Share of API requests that do not fail with a 5xx.
    objective: 99.9
    window: 30d
    indicator:
      ratio:
        bad: 'demo_http_requests_total{{code=~"5.."}}'
        total: demo_http_requests_total
  # 99% of requests within 300ms.
  - name: latency
    description: Share of API requests served within 300ms.
    objective: 99
    window: 30d
    indicator:
      latency_threshold:
        threshold: 300ms
        histogram: demo_http_request_duration_seconds
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1, 2.5, 5, 10]
  # The health endpoint, checked every 5s.
  - name: health
    objective: 99.9
    window: 30d
    indicator:
      probe: demo-health
"#
    )
}

/// Exact decimal seconds with no trailing zeros: `0.005`, `1`, `2.5`, `0.68`.
fn seconds_text(d: Duration) -> String {
    let nanos = d.subsec_nanos();
    if nanos == 0 {
        return d.as_secs().to_string();
    }
    let frac = format!("{nanos:09}");
    format!("{}.{}", d.as_secs(), frac.trim_end_matches('0'))
}

/// Raw counters; buckets are per-bucket (not cumulative) here, cumulated in the snapshot.
#[derive(Debug, Default)]
struct Counts {
    ok: u64,
    errors: u64,
    /// `LATENCY_BUCKETS.len()` finite buckets, then the overflow (`> 10 s`) bucket.
    per_bucket: [u64; LATENCY_BUCKETS.len() + 1],
    sum: Duration,
}

#[derive(Debug)]
struct State {
    behaviour: Behaviour,
    next_seq: u64,
    counts: Counts,
}

/// The synthetic service: its behaviour and its exact counters. A cheap [`Clone`] handle; clones
/// share state, so a test can keep one while [`serve`] uses another.
#[derive(Debug, Clone)]
pub struct Service {
    state: Arc<Mutex<State>>,
}

impl Service {
    /// A service with `behaviour`, no requests counted yet, sequence numbers starting at 0.
    pub fn new(behaviour: Behaviour) -> Self {
        Service {
            state: Arc::new(Mutex::new(State {
                behaviour,
                next_seq: 0,
                counts: Counts::default(),
            })),
        }
    }

    /// Switches the behaviour for requests arriving from now on and restarts the sequence at 0, so
    /// the new schedule starts at a known phase. Counters are kept.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        let mut state = self.lock();
        state.behaviour = behaviour;
        state.next_seq = 0;
    }

    /// The current behaviour.
    pub fn behaviour(&self) -> Behaviour {
        self.lock().behaviour
    }

    /// A consistent snapshot of the counters (taken under one lock, so buckets agree with totals).
    pub fn stats(&self) -> Stats {
        let state = self.lock();
        let c = &state.counts;
        let requests = c.ok + c.errors;
        let mut cumulative = 0;
        let buckets = LATENCY_BUCKETS
            .iter()
            .zip(c.per_bucket.iter())
            .map(|(&le, &n)| {
                cumulative += n;
                Bucket {
                    le,
                    count: cumulative,
                    slower: requests - cumulative,
                }
            })
            .collect();
        Stats {
            requests,
            by_code: BTreeMap::from([(200, c.ok), (500, c.errors)]),
            buckets,
            latency_sum: c.sum,
        }
    }

    // A panic while holding the lock cannot leave the counters half-updated (each update is a few
    // integer additions), so a poisoned lock is still consistent and is used as is.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Serves one `/api` request without a socket: waits the scheduled delay (on tokio's clock,
    /// so paused time applies) and returns its status, 200 or 500. What the HTTP route does,
    /// for tests that run the agent in process on paused time.
    pub async fn request(&self) -> u16 {
        let (error, delay) = self.plan();
        tokio::time::sleep(delay).await;
        // Counted before the response leaves, so a scrape that follows a response always
        // includes it.
        self.record(error, delay);
        if error { 500 } else { 200 }
    }

    /// Takes the next sequence number and returns whether it fails and its delay.
    fn plan(&self) -> (bool, Duration) {
        let mut state = self.lock();
        let n = state.next_seq;
        state.next_seq += 1;
        (state.behaviour.is_error(n), state.behaviour.delay(n))
    }

    fn record(&self, error: bool, delay: Duration) {
        let mut state = self.lock();
        let c = &mut state.counts;
        if error {
            c.errors += 1;
        } else {
            c.ok += 1;
        }
        let index = LATENCY_BUCKETS
            .iter()
            .position(|&le| delay <= le)
            .unwrap_or(LATENCY_BUCKETS.len());
        c.per_bucket[index] += 1;
        c.sum = c.sum.saturating_add(delay);
    }
}

type Body = Full<Bytes>;

fn text_response(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn plain(status: StatusCode, body: impl Into<String>) -> Response<Body> {
    text_response(status, "text/plain; charset=utf-8", body.into())
}

fn is_api(path: &str) -> bool {
    path == "/" || path == "/api" || path.starts_with("/api/")
}

async fn route(service: Service, request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    let response = if is_api(&path) {
        if method == Method::GET {
            api(&service).await
        } else {
            plain(StatusCode::METHOD_NOT_ALLOWED, "use GET\n")
        }
    } else {
        match (path.as_str(), method) {
            ("/healthz", Method::GET) => {
                if service.behaviour().health_down {
                    plain(StatusCode::SERVICE_UNAVAILABLE, "down\n")
                } else {
                    plain(StatusCode::OK, "ok\n")
                }
            }
            ("/metrics", Method::GET) => text_response(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                service.stats().to_prometheus(),
            ),
            ("/control", Method::GET) => {
                plain(StatusCode::OK, format!("{}\n", service.behaviour()))
            }
            ("/control", Method::POST) => control(&service, request.into_body()).await,
            ("/healthz" | "/metrics", _) => plain(StatusCode::METHOD_NOT_ALLOWED, "use GET\n"),
            ("/control", _) => plain(StatusCode::METHOD_NOT_ALLOWED, "use GET or POST\n"),
            _ => plain(
                StatusCode::NOT_FOUND,
                "not found; routes: /api/..., /healthz, /metrics, /control\n",
            ),
        }
    };
    Ok(response)
}

async fn api(service: &Service) -> Response<Body> {
    if service.request().await == 500 {
        plain(StatusCode::INTERNAL_SERVER_ERROR, "error\n")
    } else {
        plain(StatusCode::OK, "ok\n")
    }
}

async fn control(service: &Service, body: Incoming) -> Response<Body> {
    let bytes = match Limited::new(body, CONTROL_BODY_LIMIT).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => return plain(StatusCode::BAD_REQUEST, format!("cannot read body: {e}\n")),
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return plain(StatusCode::BAD_REQUEST, "body is not UTF-8\n");
    };
    match text.parse::<Behaviour>() {
        Ok(behaviour) => {
            service.set_behaviour(behaviour);
            tracing::info!(%behaviour, "synthetic service behaviour changed");
            plain(StatusCode::OK, format!("{behaviour}\n"))
        }
        Err(e) => plain(StatusCode::BAD_REQUEST, format!("{e}\n")),
    }
}

/// Serves `service` on `listener` until `shutdown` resolves, then shuts down gracefully: stops
/// accepting, lets in-flight requests finish (idle keep-alive connections close at once) and aborts
/// whatever is still running after [`DRAIN_TIMEOUT`].
///
/// Errors: returns the accept error if accepting keeps failing for reasons other than a single
/// broken connection (about 10 s of consecutive failures).
pub async fn serve(
    listener: TcpListener,
    service: Service,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    serve_with_drain(listener, service, shutdown, DRAIN_TIMEOUT).await
}

/// [`serve`] with an explicit bound on how long in-flight requests may run after shutdown.
pub async fn serve_with_drain(
    listener: TcpListener,
    service: Service,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) -> io::Result<()> {
    serve_site(listener, Site::Service(service), shutdown, drain).await
}

/// Serves `fleet` on `listener` until `shutdown` resolves, as [`serve`] serves a [`Service`]
/// (same graceful shutdown and accept-error bound).
pub async fn serve_fleet(
    listener: TcpListener,
    fleet: Arc<Fleet>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    serve_site(listener, Site::Fleet(fleet), shutdown, DRAIN_TIMEOUT).await
}

/// What a listener serves: the demo's single service or the scale-benchmark fleet.
#[derive(Debug, Clone)]
enum Site {
    Service(Service),
    Fleet(Arc<Fleet>),
}

async fn serve_site(
    listener: TcpListener,
    site: Site,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) -> io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(());
    let mut connections = JoinSet::new();
    let mut failures = 0u32;
    tokio::pin!(shutdown);
    let outcome = loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break Ok(()),
            // Reap finished connections so the set does not grow with the demo's lifetime.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    failures = 0;
                    connections.spawn(serve_connection(stream, site.clone(), stop_rx.clone()));
                }
                Err(e) if is_connection_error(&e) => {
                    tracing::debug!(error = %e, "accept: connection failed before it was accepted");
                }
                Err(e) => {
                    failures += 1;
                    if failures >= MAX_ACCEPT_FAILURES {
                        break Err(e);
                    }
                    tracing::warn!(error = %e, "accept failed; retrying");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    };
    drop(listener);
    stop_tx.send_replace(());
    let drained = tokio::time::timeout(drain, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            remaining = connections.len(),
            ?drain,
            "synthetic service: requests still running after the drain bound; aborting them"
        );
        connections.shutdown().await;
    }
    outcome
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

async fn serve_connection(stream: TcpStream, site: Site, mut stop: watch::Receiver<()>) {
    // Latency is what this service is about; Nagle's delay would blur it.
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
    }
    let handler = service_fn(move |request| {
        let site = site.clone();
        async move {
            match site {
                Site::Service(service) => route(service, request).await,
                Site::Fleet(fleet) => Ok(fleet.route(request.method(), request.uri().path())),
            }
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let connection = builder.serve_connection(TokioIo::new(stream), handler);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        // Also taken when the sender is gone: either way the server is stopping.
        _ = stop.changed() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "synthetic service connection ended with an error");
    }
}

/// What [`generate_load`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadStats {
    /// Requests started (one per tick that found a free concurrency slot).
    pub attempted: u64,
    /// Requests that got a complete response, by status code.
    pub by_status: BTreeMap<u16, u64>,
    /// Requests that failed to connect, send or read (not counting timeouts).
    pub transport_errors: u64,
    /// Requests that did not finish within [`LOAD_REQUEST_TIMEOUT`].
    pub timeouts: u64,
    /// Ticks skipped because [`LOAD_CONCURRENCY`] requests were already in flight.
    pub skipped: u64,
    /// Time from the start until `shutdown` resolved (the sending phase, without the final drain).
    pub elapsed: Duration,
}

impl LoadStats {
    /// Requests that got a complete response, whatever the status.
    pub fn completed(&self) -> u64 {
        self.by_status.values().sum()
    }

    /// Requests answered with `code` (0 if none).
    pub fn status(&self, code: u16) -> u64 {
        self.by_status.get(&code).copied().unwrap_or(0)
    }
}

/// Why [`generate_load`] could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The URL is not a plain `http://host[:port][/path]`.
    #[error("load target `{url}` is not an http://host[:port]/path URL: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A rate of 0 would send nothing.
    #[error("the load rate must be at least 1 request per second")]
    ZeroRate,
}

#[derive(Debug)]
struct Target {
    host: String,
    port: u16,
    authority: HeaderValue,
    path: String,
}

impl Target {
    fn parse(url: &str) -> Result<Self, LoadError> {
        let invalid = |reason: &str| LoadError::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: Uri = url.parse().map_err(|_| invalid("not a URL"))?;
        if uri.scheme_str() != Some("http") {
            return Err(invalid("only http:// is supported"));
        }
        let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let authority_header = HeaderValue::from_str(authority.as_str())
            .map_err(|_| invalid("the host is not a valid header value"))?;
        let path = uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
        Ok(Target {
            host,
            port: authority.port_u16().unwrap_or(80),
            authority: authority_header,
            path,
        })
    }
}

type Sender = SendRequest<Empty<Bytes>>;

/// Idle keep-alive connections; at most [`LOAD_CONCURRENCY`] since only finished requests return one.
type Pool = Arc<Mutex<Vec<Sender>>>;

enum Outcome {
    Status(u16),
    TransportError,
    Timeout,
}

/// Sends `GET url` at a steady `rps` until `shutdown` resolves, over keep-alive HTTP/1.1 connections,
/// with at most [`LOAD_CONCURRENCY`] requests in flight (ticks beyond that are counted as skipped, so
/// a slow target is not hit by a catch-up burst). After `shutdown` it waits for the requests in
/// flight, each bounded by [`LOAD_REQUEST_TIMEOUT`], and returns the counts by outcome.
///
/// Errors: [`LoadError`] when the URL is not `http://host[:port][/path]` or `rps` is 0; failures of
/// individual requests are counted, never returned.
pub async fn generate_load(
    url: String,
    rps: u32,
    shutdown: impl Future<Output = ()>,
) -> Result<LoadStats, LoadError> {
    if rps == 0 {
        return Err(LoadError::ZeroRate);
    }
    let target = Arc::new(Target::parse(&url)?);
    let pool: Pool = Arc::new(Mutex::new(Vec::new()));
    let slots = Arc::new(Semaphore::new(LOAD_CONCURRENCY));
    let mut in_flight = JoinSet::new();
    let mut stats = LoadStats::default();
    let start = Instant::now();
    // The default (burst) missed-tick policy keeps the average rate when ticks are shorter than the
    // timer's millisecond resolution.
    // Above 10^9 rps the period would round to zero, which `interval` refuses.
    let period = (Duration::from_secs(1) / rps).max(Duration::from_nanos(1));
    let mut ticker = tokio::time::interval(period);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(done) = in_flight.join_next(), if !in_flight.is_empty() => absorb(&mut stats, done),
            _ = ticker.tick() => match Arc::clone(&slots).try_acquire_owned() {
                Ok(permit) => {
                    stats.attempted += 1;
                    let target = Arc::clone(&target);
                    let pool = Arc::clone(&pool);
                    in_flight.spawn(async move {
                        let outcome = one_request(&target, &pool).await;
                        drop(permit);
                        outcome
                    });
                }
                Err(_) => stats.skipped += 1,
            },
        }
    }
    stats.elapsed = start.elapsed();
    while let Some(done) = in_flight.join_next().await {
        absorb(&mut stats, done);
    }
    Ok(stats)
}

fn absorb(stats: &mut LoadStats, done: Result<Outcome, tokio::task::JoinError>) {
    match done {
        Ok(Outcome::Status(code)) => *stats.by_status.entry(code).or_insert(0) += 1,
        Ok(Outcome::Timeout) => stats.timeouts += 1,
        // A request task cannot panic short of a bug in a dependency; count it rather than hide it.
        Ok(Outcome::TransportError) | Err(_) => stats.transport_errors += 1,
    }
}

async fn one_request(target: &Target, pool: &Pool) -> Outcome {
    match tokio::time::timeout(LOAD_REQUEST_TIMEOUT, attempt(target, pool)).await {
        Ok(Ok(code)) => Outcome::Status(code),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "load request failed");
            Outcome::TransportError
        }
        Err(_) => Outcome::Timeout,
    }
}

type AttemptError = Box<dyn std::error::Error + Send + Sync>;

fn lock_pool(pool: &Pool) -> MutexGuard<'_, Vec<Sender>> {
    // The pool is a plain Vec of handles; a panic elsewhere cannot corrupt it.
    pool.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn attempt(target: &Target, pool: &Pool) -> Result<u16, AttemptError> {
    let mut sender = loop {
        let idle = lock_pool(pool).pop();
        match idle {
            // A connection the server closed while idle fails `ready`; drop it and try the next.
            Some(mut sender) => {
                if sender.ready().await.is_ok() {
                    break sender;
                }
            }
            None => break connect(target).await?,
        }
    };
    let mut request = Request::new(Empty::<Bytes>::new());
    *request.uri_mut() = target.path.parse()?;
    request.headers_mut().insert(HOST, target.authority.clone());
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    // The body must be read to the end before the connection can carry the next request.
    response.into_body().collect().await?;
    lock_pool(pool).push(sender);
    Ok(status)
}

async fn connect(target: &Target) -> Result<Sender, AttemptError> {
    let stream = TcpStream::connect((target.host.as_str(), target.port)).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    // The connection task ends when its sender is dropped (pool dropped) or the server closes it.
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "load connection ended with an error");
        }
    });
    Ok(sender)
}

/// Requests per second of route `r` of a [`Fleet`]: `1 + r % 4`, so pages mix rates.
const FLEET_BASE_RPS: u64 = 1;

/// One route in [`FLEET_FAILING_EVERY`] fails half its requests (a burn rate of 500 at 99.9 %,
/// so its `page_fast` tier fires within two minutes of a fresh start and the benchmark exercises
/// notifications); the others fail [`FLEET_BACKGROUND_PPM`] parts per million.
pub const FLEET_FAILING_EVERY: u32 = 10;

/// Error share of a failing fleet route, in parts per million (50 %).
const FLEET_FAILING_PPM: u64 = 500_000;

/// Error share of every other fleet route, in parts per million (0.01 %: a burn rate of 0.1 at
/// 99.9 %, which never alerts).
const FLEET_BACKGROUND_PPM: u64 = 100;

/// The scale-benchmark fleet (`burnwatch synthetic`, `scripts/bench-scale.sh`): `targets`
/// metrics pages that together expose one request counter per route, and `health` health
/// endpoints, all from one listener and one process.
///
/// Routes: `GET /targets/{k}/metrics` (k in `0..targets`) exposes, for every route `r` with
/// `r % targets == k`, `bench_requests_total{route="r<r>",code="200"}` and `{...,code="500"}`;
/// `GET /health/{i}` (i in `0..health`) and `GET /healthz` answer 200 `ok`. Nothing else exists
/// (404).
///
/// The counters are a pure function of the time since the fleet started, read at whole seconds
/// ([`Fleet::route_counts`]): that is the exact ground truth, and it lets a page be generated once
/// per second and target and then served from a cache, so 100,000 routes cost one formatting
/// pass per scrape interval, not per request.
#[derive(Debug)]
pub struct Fleet {
    routes: u32,
    targets: u32,
    health: u32,
    started: std::time::Instant,
    /// Per target: the second the cached page was generated for, and the page.
    pages: Vec<Mutex<Option<(u64, Bytes)>>>,
}

impl Fleet {
    /// A fleet of `routes` routes over `targets` pages (at least 1) and `health` health
    /// endpoints; its counters start at 0 now.
    pub fn new(routes: u32, targets: u32, health: u32) -> Fleet {
        let targets = targets.max(1);
        Fleet {
            routes,
            targets,
            health,
            started: std::time::Instant::now(),
            pages: (0..targets).map(|_| Mutex::new(None)).collect(),
        }
    }

    /// Requests answered with 200 and with 500 by route `r` in the first `elapsed_ms`
    /// milliseconds: `total = elapsed_ms * (1 + r % 4) / 1000` (integer division), of which
    /// `total * ppm / 10^6` failed, `ppm` being 50 % for every [`FLEET_FAILING_EVERY`]-th route
    /// and 0.01 % otherwise. Both are non-decreasing in `elapsed_ms`.
    pub fn route_counts(r: u32, elapsed_ms: u64) -> (u64, u64) {
        let rps = FLEET_BASE_RPS + u64::from(r % 4);
        let total = elapsed_ms.saturating_mul(rps) / 1000;
        let ppm = if Self::is_failing(r) {
            FLEET_FAILING_PPM
        } else {
            FLEET_BACKGROUND_PPM
        };
        // u128: `total * ppm` overflows u64 after ~58,000 years at 4 rps; be exact anyway.
        let errors = (u128::from(total) * u128::from(ppm) / 1_000_000) as u64;
        (total - errors, errors)
    }

    /// Whether route `r` is one of the failing ones (50 % errors).
    pub fn is_failing(r: u32) -> bool {
        r.is_multiple_of(FLEET_FAILING_EVERY)
    }

    /// The page of target `k` with the counters at `elapsed_ms` (Prometheus text 0.0.4).
    pub fn page(&self, k: u32, elapsed_ms: u64) -> String {
        use std::fmt::Write as _;
        let routes = (k..self.routes).step_by(self.targets as usize);
        let mut out = String::with_capacity(routes.len() * 96 + 128);
        out.push_str(
            "# HELP bench_requests_total Requests answered by the synthetic fleet, by route and code.\n\
             # TYPE bench_requests_total counter\n",
        );
        for r in routes {
            let (ok, errors) = Self::route_counts(r, elapsed_ms);
            // Writing to a String cannot fail.
            let _ = writeln!(
                out,
                "bench_requests_total{{route=\"r{r}\",code=\"200\"}} {ok}"
            );
            let _ = writeln!(
                out,
                "bench_requests_total{{route=\"r{r}\",code=\"500\"}} {errors}"
            );
        }
        out
    }

    /// The page of target `k` now: generated at most once per second (at the whole second) and
    /// served from the cache in between.
    fn cached_page(&self, k: u32) -> Bytes {
        let second = self.started.elapsed().as_secs();
        let mut slot = self.pages[k as usize]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match &*slot {
            Some((s, page)) if *s == second => page.clone(),
            _ => {
                let page = Bytes::from(self.page(k, second.saturating_mul(1000)));
                *slot = Some((second, page.clone()));
                page
            }
        }
    }

    /// Answers one request (see the type's docs for the routes).
    fn route(&self, method: &Method, path: &str) -> Response<Body> {
        if method != Method::GET {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "use GET\n");
        }
        let index = |rest: &str, bound: u32| rest.parse::<u32>().ok().filter(|&i| i < bound);
        if path == "/healthz" {
            return plain(StatusCode::OK, "ok\n");
        }
        if let Some(i) = path.strip_prefix("/health/")
            && index(i, self.health).is_some()
        {
            return plain(StatusCode::OK, "ok\n");
        }
        if let Some(k) = path
            .strip_prefix("/targets/")
            .and_then(|rest| rest.strip_suffix("/metrics"))
            .and_then(|k| index(k, self.targets))
        {
            let mut response = Response::new(Full::new(self.cached_page(k)));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            return response;
        }
        plain(
            StatusCode::NOT_FOUND,
            "not found; routes: /targets/{k}/metrics, /health/{i}, /healthz\n",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn count_over(b: &Behaviour, start: u64, len: u64, f: fn(&Behaviour, u64) -> bool) -> u64 {
        (start..start + len).filter(|&n| f(b, n)).count() as u64
    }

    proptest! {
        #[test]
        fn errors_are_exact_over_whole_cycles(
            every in 1u32..60, per_cycle in 0u32..80, start in 0u64..100_000, k in 1u64..6,
        ) {
            let b = Behaviour { error_every: every, errors_per_cycle: per_cycle, ..Behaviour::healthy() };
            let len = u64::from(every) * k;
            let expected = k * u64::from(per_cycle.min(every));
            prop_assert_eq!(count_over(&b, start, len, Behaviour::is_error), expected);
            prop_assert_eq!(u64::from(b.errors_in_cycle()) * k, expected);
        }

        #[test]
        fn slow_requests_are_exact_over_whole_cycles(
            every in 1u32..60, start in 0u64..100_000, k in 1u64..6,
        ) {
            let b = Behaviour {
                slow_every: every,
                slow_latency: Duration::from_millis(400),
                ..Behaviour::healthy()
            };
            let len = u64::from(every) * k;
            prop_assert_eq!(count_over(&b, start, len, Behaviour::is_slow), k);
            let slow_delays = (start..start + len)
                .filter(|&n| b.delay(n) == Duration::from_millis(400))
                .count() as u64;
            prop_assert_eq!(slow_delays, k);
        }
    }

    #[test]
    fn zero_cycles_never_fail_nor_slow_down() {
        let b = Behaviour {
            error_every: 0,
            errors_per_cycle: 5,
            slow_every: 0,
            slow_latency: Duration::from_secs(3),
            ..Behaviour::healthy()
        };
        assert_eq!(count_over(&b, 0, 1000, Behaviour::is_error), 0);
        assert_eq!(count_over(&b, 0, 1000, Behaviour::is_slow), 0);
        assert_eq!(b.errors_in_cycle(), 0);
        assert!((0..1000).all(|n| b.status(n) == 200 && b.delay(n) == b.latency));
    }

    #[test]
    fn schedule_positions_are_as_documented() {
        let b = Behaviour {
            error_every: 4,
            errors_per_cycle: 1,
            slow_every: 5,
            slow_latency: Duration::from_millis(30),
            latency: Duration::from_millis(1),
            health_down: false,
        };
        let errors: Vec<u64> = (0..12).filter(|&n| b.is_error(n)).collect();
        assert_eq!(errors, vec![0, 4, 8]);
        let slow: Vec<u64> = (0..12).filter(|&n| b.is_slow(n)).collect();
        assert_eq!(slow, vec![4, 9]);
        assert_eq!(b.status(4), 500);
        assert_eq!(b.status(5), 200);
        assert_eq!(b.delay(4), Duration::from_millis(30));
        assert_eq!(b.delay(5), Duration::from_millis(1));
    }

    #[test]
    fn outage_is_half_errors_half_slow_and_health_down() {
        let b = Behaviour::outage();
        assert_eq!(count_over(&b, 0, 1000, Behaviour::is_error), 500);
        assert_eq!(count_over(&b, 0, 1000, Behaviour::is_slow), 500);
        assert!(b.health_down);
        assert!(b.slow_latency > Duration::from_millis(300));
        let d = Behaviour::degraded();
        assert_eq!(count_over(&d, 0, 1000, Behaviour::is_error), 50);
        assert_eq!(count_over(&d, 0, 1000, Behaviour::is_slow), 100);
    }

    #[test]
    fn text_form_parses_presets_and_overrides() {
        assert_eq!("outage".parse::<Behaviour>(), Ok(Behaviour::outage()));
        assert_eq!(" healthy\n".parse::<Behaviour>(), Ok(Behaviour::healthy()));
        assert_eq!(
            "outage health_down=false".parse::<Behaviour>(),
            Ok(Behaviour {
                health_down: false,
                ..Behaviour::outage()
            })
        );
        assert_eq!(
            "error_every=10,errors_per_cycle=2 latency=1s slow_latency=250ms slow_every=3"
                .parse::<Behaviour>(),
            Ok(Behaviour {
                error_every: 10,
                errors_per_cycle: 2,
                latency: Duration::from_secs(1),
                slow_every: 3,
                slow_latency: Duration::from_millis(250),
                health_down: false,
            })
        );
        assert_eq!("".parse::<Behaviour>(), Err(BehaviourError::Empty));
        assert_eq!(
            "bogus".parse::<Behaviour>(),
            Err(BehaviourError::NotASetting("bogus".to_owned()))
        );
        assert_eq!(
            "latency=3"
                .parse::<Behaviour>()
                .map_err(|e| matches!(e, BehaviourError::BadValue { .. })),
            Err(true)
        );
        assert_eq!(
            "colour=red".parse::<Behaviour>(),
            Err(BehaviourError::UnknownKey("colour".to_owned()))
        );
        assert_eq!(
            "healthy outage".parse::<Behaviour>(),
            Err(BehaviourError::NotASetting("outage".to_owned()))
        );
    }

    #[test]
    fn display_round_trips_whole_milliseconds() {
        for b in [
            Behaviour::healthy(),
            Behaviour::degraded(),
            Behaviour::outage(),
            Behaviour {
                error_every: 7,
                errors_per_cycle: 3,
                latency: Duration::from_millis(1500),
                slow_every: 9,
                slow_latency: Duration::ZERO,
                health_down: true,
            },
        ] {
            assert_eq!(b.to_string().parse::<Behaviour>(), Ok(b));
        }
    }

    #[test]
    fn seconds_are_printed_exactly() {
        let texts: Vec<String> = LATENCY_BUCKETS.iter().map(|&d| seconds_text(d)).collect();
        assert_eq!(
            texts,
            [
                "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.3", "0.5", "1", "2.5", "5",
                "10"
            ]
        );
        assert_eq!(seconds_text(Duration::ZERO), "0");
        assert_eq!(seconds_text(Duration::from_millis(680)), "0.68");
        assert_eq!(seconds_text(Duration::new(3, 1)), "3.000000001");
    }

    #[test]
    fn recorded_delays_land_in_le_buckets() {
        let s = Service::new(Behaviour::healthy());
        // On an edge counts as `<=` that edge, as Prometheus' `le` says.
        for (error, ms) in [
            (false, 5),
            (false, 6),
            (true, 300),
            (false, 301),
            (true, 20_000),
        ] {
            s.record(error, Duration::from_millis(ms));
        }
        let stats = s.stats();
        assert_eq!(stats.requests, 5);
        assert_eq!(stats.code(200), 3);
        assert_eq!(stats.code(500), 2);
        let counts: Vec<u64> = stats.buckets.iter().map(|b| b.count).collect();
        assert_eq!(counts, [1, 2, 2, 2, 2, 2, 3, 4, 4, 4, 4, 4]);
        assert_eq!(stats.slower_than(Duration::from_millis(300)), Some(2));
        assert_eq!(stats.slower_than(Duration::from_millis(301)), None);
        assert_eq!(stats.latency_sum, Duration::from_millis(20_612));
        let text = stats.to_prometheus();
        assert!(text.contains("demo_http_requests_total{code=\"500\",path=\"/api\"} 2\n"));
        assert!(text.contains("demo_http_request_duration_seconds_bucket{le=\"0.3\"} 3\n"));
        assert!(text.contains("demo_http_request_duration_seconds_bucket{le=\"+Inf\"} 5\n"));
        assert!(text.contains("demo_http_request_duration_seconds_sum 20.612\n"));
        assert!(text.contains("demo_http_request_duration_seconds_count 5\n"));
    }

    #[test]
    fn plan_follows_the_schedule_and_set_behaviour_restarts_it() {
        let s = Service::new(Behaviour {
            error_every: 3,
            errors_per_cycle: 1,
            ..Behaviour::healthy()
        });
        let first: Vec<bool> = (0..4).map(|_| s.plan().0).collect();
        assert_eq!(first, [true, false, false, true]);
        s.set_behaviour(Behaviour {
            error_every: 2,
            errors_per_cycle: 1,
            ..Behaviour::healthy()
        });
        let second: Vec<bool> = (0..3).map(|_| s.plan().0).collect();
        assert_eq!(second, [true, false, true]);
    }

    #[test]
    fn load_targets_parse() {
        let t = Target::parse("http://127.0.0.1:8080/api/x?y=1").expect("valid URL");
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("127.0.0.1", 8080, "/api/x?y=1")
        );
        let t = Target::parse("http://[::1]/").expect("valid URL");
        assert_eq!((t.host.as_str(), t.port), ("::1", 80));
        assert!(matches!(
            Target::parse("https://a/"),
            Err(LoadError::InvalidUrl { .. })
        ));
        assert!(matches!(
            Target::parse("no url"),
            Err(LoadError::InvalidUrl { .. })
        ));
    }

    proptest! {
        #[test]
        fn fleet_counts_are_monotone_and_split_exactly(r in 0u32..1_000_000, a in 0u64..10_000_000_000, d in 0u64..1_000_000) {
            let (ok_a, err_a) = Fleet::route_counts(r, a);
            let (ok_b, err_b) = Fleet::route_counts(r, a + d);
            prop_assert!(ok_a <= ok_b && err_a <= err_b);
            let total = (ok_b + err_b) as u128;
            prop_assert_eq!(total, u128::from(a + d) * u128::from(1 + r % 4) / 1000);
            let ppm = if Fleet::is_failing(r) { 500_000 } else { 100 };
            prop_assert_eq!(u128::from(err_b), total * ppm / 1_000_000);
        }
    }

    #[test]
    fn fleet_pages_expose_every_route_once_with_its_exact_counts() {
        let fleet = Fleet::new(103, 4, 5);
        let at = 61_000;
        let mut seen = std::collections::BTreeMap::new();
        for k in 0..4 {
            let page = fleet.page(k, at);
            let samples =
                crate::exposition::parse_owned(page.as_bytes(), crate::exposition::Format::Text)
                    .expect("the fleet's page parses");
            for s in samples {
                assert_eq!(s.name, "bench_requests_total");
                let label = |name: &str| {
                    s.labels
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, v)| v.clone())
                        .expect("label")
                };
                let r: u32 = label("route")
                    .trim_start_matches('r')
                    .parse()
                    .expect("route number");
                assert_eq!(r % 4, k, "route r{r} is on target {k}");
                let previous = seen.insert((r, label("code")), s.value);
                assert!(previous.is_none(), "route r{r} appears twice");
            }
        }
        assert_eq!(seen.len(), 2 * 103);
        for r in 0..103 {
            let (ok, errors) = Fleet::route_counts(r, at);
            assert_eq!(seen[&(r, "200".to_owned())], ok as f64);
            assert_eq!(seen[&(r, "500".to_owned())], errors as f64);
        }
        // Route 0 fails half its requests: 61 s at 1 rps.
        assert_eq!(Fleet::route_counts(0, at), (31, 30));
    }

    #[test]
    fn fleet_routes_answer_within_their_bounds_only() {
        let fleet = Fleet::new(10, 2, 3);
        let status = |m: Method, p: &str| fleet.route(&m, p).status();
        assert_eq!(status(Method::GET, "/health/0"), StatusCode::OK);
        assert_eq!(status(Method::GET, "/health/2"), StatusCode::OK);
        assert_eq!(status(Method::GET, "/health/3"), StatusCode::NOT_FOUND);
        assert_eq!(status(Method::GET, "/health/x"), StatusCode::NOT_FOUND);
        assert_eq!(status(Method::GET, "/healthz"), StatusCode::OK);
        assert_eq!(status(Method::GET, "/targets/1/metrics"), StatusCode::OK);
        assert_eq!(
            status(Method::GET, "/targets/2/metrics"),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(Method::GET, "/targets//metrics"),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(Method::POST, "/health/0"),
            StatusCode::METHOD_NOT_ALLOWED
        );
        // The cached page is the page at the current whole second.
        let page = fleet.cached_page(1);
        let second = fleet.started.elapsed().as_secs();
        let fresh = fleet.page(1, second * 1000);
        // The second may have turned between the two reads; then the cache is one second old.
        assert!(
            page == fresh.as_bytes()
                || page == fleet.page(1, second.saturating_sub(1) * 1000).as_bytes()
        );
    }
}
