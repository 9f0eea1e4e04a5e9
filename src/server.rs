//! The agent's HTTP server (hyper 1, HTTP/1.1): health, readiness, the JSON API and the
//! alerting API. SLO, probe and target answers are read from the newest published snapshot (never
//! from the engine); alerting answers from the newest [`AlertingView`], and silence changes go to
//! the alerting task through its [`AlertingHandle`]. Graceful: when the daemon's [`Shutdown`]
//! fires it stops accepting, tells open connections to finish, and gives them [`DRAIN`].
//!
//! Routes: `GET /metrics` (OpenMetrics or text 0.0.4 by `Accept`, gzip when `Accept-Encoding`
//! allows it, rendered off the runtime's threads; see [`crate::export::prometheus`]), `GET /healthz` (alive),
//! `GET /readyz` (rules loaded and state restored: 200, else 503), `GET /api/v1/slos`,
//! `GET /api/v1/slos/{service}/{slo}`, `GET /api/v1/probes`, `GET /api/v1/targets`,
//! `GET /api/v1/status`, `GET /api/v1/alerts` (filters as Alertmanager's API v2),
//! `GET /api/v1/alerts/groups`, `GET /api/v1/alerts/stats`, `GET|POST /api/v1/silences`,
//! `GET|DELETE /api/v1/silences/{id}`, `POST /-/reload`. Errors are JSON: `{"error": "..."}`;
//! the alerting routes answer 503 when the server runs without alerting.
//!
//! It also owns the API's protection ([`guard`]: bearer token, allowed `Host` names, no
//! cross-site changes, JSON-only POSTs) and its resource bounds (connections served at once,
//! header and body read timeouts, body size), configured by the agent config's `api:` section.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::alert::{MatchOp, Matcher, Matchers, rfc3339};
use crate::clock::Clock;
use crate::config::ApiConfig;
use crate::export::prometheus::PageOptions;
use crate::notify::dispatch::{AlertView, SuppressionState};
use crate::notify::silence::{Silence, SilenceError, SilenceRequest};
use crate::rules::model::{BudgetingMethod, Slo, SloId, Window};
use crate::secret::SecretValue;
use crate::shutdown::Shutdown;
use crate::slo::engine::{SloReport, TierReport};
use crate::slo::history::History;
use crate::time::{Dur, Timestamp};
use crate::view::{
    AgentSnapshot, AlertingHandle, AlertingView, CommandError, HistoryHandle, Reloader, TierPhases,
};

/// How long open connections may take to finish after shutdown starts.
pub const DRAIN: Duration = Duration::from_secs(5);

/// The largest request body accepted (silences are small; this bounds what a client can make
/// the agent buffer).
pub const MAX_BODY: usize = 64 * 1024;

/// What the server serves and how it is protected: the agent config's `api:` section, the
/// `/metrics` page options and the handles of the tasks the API talks to.
#[derive(Clone)]
pub struct ServerOptions {
    /// `/metrics` page options (`export.prometheus`).
    pub page: PageOptions,
    /// The alerting task (alerting routes, silences); without it those routes answer 503.
    pub alerting: Option<AlertingHandle>,
    /// The agent's reload handle (`POST /-/reload`); without it that route answers 503.
    pub reload: Option<Reloader>,
    /// The agent's history handle (`GET /api/v1/slos/{service}/{slo}/history`); without it that
    /// route answers 503.
    pub history: Option<HistoryHandle>,
    /// `api.token`: required as `Authorization: Bearer ...` on every state-changing request
    /// (and on reads with `protect_reads`).
    pub token: Option<SecretValue>,
    /// `api.protect_reads`.
    pub protect_reads: bool,
    /// `api.hostnames`: names accepted in `Host` besides IP addresses and `localhost`.
    pub hostnames: Vec<String>,
    /// `api.max_connections`: connections served at once.
    pub max_connections: usize,
    /// `api.request_timeout`: bound on reading a request's headers, and then its body.
    pub request_timeout: Duration,
    /// The agent's clock: "now" for silences and the alerting routes.
    pub clock: Clock,
}

impl ServerOptions {
    /// Open access (no token) with the default limits: what a loopback agent without an
    /// `api:` section gets.
    pub fn new(page: PageOptions) -> ServerOptions {
        ServerOptions::from_api(&ApiConfig::default(), page)
    }

    /// The options of an `api:` section (handles still to be set).
    pub fn from_api(api: &ApiConfig, page: PageOptions) -> ServerOptions {
        ServerOptions {
            page,
            alerting: None,
            reload: None,
            history: None,
            token: api.token.clone(),
            protect_reads: api.protect_reads,
            hostnames: api.hostnames.clone(),
            max_connections: api.max_connections.max(1),
            request_timeout: api.request_timeout.to_std(),
            clock: Clock::system(),
        }
    }
}

/// [`serve_api`] with open access and default limits ([`ServerOptions::new`]): `/metrics`
/// carries burnwatch's own families only, and the alerting routes answer 503 (no alerting
/// task).
pub async fn serve(
    listener: TcpListener,
    snapshots: watch::Receiver<Arc<AgentSnapshot>>,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    let opts = ServerOptions::new(PageOptions::default());
    serve_api(listener, snapshots, opts, shutdown).await
}

/// Serves with `opts` until `shutdown` fires, then drains for at most [`DRAIN`]. At most
/// `opts.max_connections` connections are served at once: further ones wait in the kernel's
/// accept queue, so slow or idle clients cannot take the file descriptors probes and scrapes
/// need. A client slower than `opts.request_timeout` to send its headers or its body is cut.
pub async fn serve_api(
    listener: TcpListener,
    snapshots: watch::Receiver<Arc<AgentSnapshot>>,
    opts: ServerOptions,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    let mut conns = tokio::task::JoinSet::new();
    let slots = Arc::new(Semaphore::new(opts.max_connections.max(1)));
    let opts = Arc::new(opts);
    let stop = shutdown.requested();
    tokio::pin!(stop);
    loop {
        // A slot first: over the limit, connections stay in the accept queue (no descriptor
        // of ours) until one finishes.
        let permit = tokio::select! {
            _ = &mut stop => break,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, _) = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let snaps = snapshots.clone();
        let opts = opts.clone();
        // Open connections finish when the same signal fires: the current request is
        // answered, keep-alive ends.
        let drain = shutdown.requested();
        conns.spawn(async move {
            let _permit = permit;
            let timeout = opts.request_timeout;
            let svc = service_fn(move |req| {
                let snap = snaps.borrow().clone();
                let opts = opts.clone();
                async move { Ok::<_, Infallible>(handle(req, snap, &opts).await) }
            });
            let conn = http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(timeout)
                .serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = drain => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
        // Reap finished connections so the set does not grow.
        while conns.try_join_next().is_some() {}
    }
    let all = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(DRAIN, all).await.is_err() {
        conns.abort_all();
    }
    Ok(())
}

pub(crate) type Resp = Response<Full<Bytes>>;

fn json_response(status: StatusCode, v: &Value) -> Resp {
    let body = serde_json::to_vec_pretty(v).unwrap_or_else(|_| b"{}".to_vec());
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

fn error(status: StatusCode, message: &str) -> Resp {
    json_response(status, &json!({ "error": message }))
}

fn no_alerting() -> Resp {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "alerting is not running in this server",
    )
}

/// Answers one request: the security checks ([`guard`]) first, then the route.
async fn handle(req: Request<Incoming>, snap: Arc<AgentSnapshot>, opts: &ServerOptions) -> Resp {
    // A body nobody reads would keep the connection busy at the client's pace: close it.
    let unread_body = !hyper::body::Body::is_end_stream(req.body());
    let (mut resp, body_read) = match guard(&req, opts) {
        Some(refused) => (refused, false),
        None => dispatch(req, snap, opts).await,
    };
    if unread_body && !body_read {
        resp.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
    }
    resp
}

/// The API's access rules (docs/api.md, "Security"): the refusal, or None to go on. In order:
/// - `Host` must be an IP address, `localhost` or a name in `api.hostnames` (421 otherwise):
///   a page that rebinds its own DNS name to the agent's address sends its own name;
/// - with `api.token`, state-changing requests (anything but GET and HEAD), and reads under
///   `protect_reads`, need `Authorization: Bearer <token>` (401 otherwise);
/// - a state-changing request from a browser page of another origin is refused (403);
/// - a POST must say `Content-Type: application/json` (415): browsers send other types
///   cross-site without asking first.
///
/// `/healthz` and `/readyz` are always open: they tell nothing and liveness checks rarely
/// carry credentials.
fn guard(req: &Request<Incoming>, opts: &ServerOptions) -> Option<Resp> {
    let path = req.uri().path().trim_end_matches('/');
    if matches!(path, "/healthz" | "/readyz") && is_read(req.method()) {
        return None;
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or("");
    if !host_allowed(host, &opts.hostnames) {
        return Some(error(
            StatusCode::MISDIRECTED_REQUEST,
            &format!(
                "this agent does not answer to the host name {host:?}; use its IP address or localhost, or add the name to api.hostnames"
            ),
        ));
    }
    let mutating = !is_read(req.method());
    if mutating
        && let Some(origin) = req.headers().get(header::ORIGIN)
        && !same_origin(origin.to_str().unwrap_or("null"), host)
    {
        return Some(error(
            StatusCode::FORBIDDEN,
            "cross-site requests cannot change the agent; use `burnwatch silence` or the API from a script",
        ));
    }
    if let Some(token) = &opts.token
        && (mutating || opts.protect_reads)
        && !bearer_matches(req.headers().get(header::AUTHORIZATION), token)
    {
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            "this request needs `Authorization: Bearer <api.token>` (the CLI reads it from --token-file or BURNWATCH_TOKEN)",
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"burnwatch\""),
        );
        return Some(r);
    }
    if req.method() == Method::POST {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Some(error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "a POST needs `Content-Type: application/json`",
            ));
        }
    }
    None
}

fn is_read(m: &Method) -> bool {
    m == Method::GET || m == Method::HEAD
}

/// Whether a `Host` header names this agent: an IP address (any port; rebinding cannot
/// produce one), `localhost`, or a configured name (`name` for any port, `name:port` for one).
fn host_allowed(host: &str, hostnames: &[String]) -> bool {
    let host = host.trim().to_ascii_lowercase();
    let name = match host.strip_prefix('[') {
        // [v6]:port
        Some(rest) => match rest.split_once(']') {
            Some((ip, _)) => return ip.parse::<std::net::Ipv6Addr>().is_ok(),
            None => return false,
        },
        None => host.rsplit_once(':').map_or(host.as_str(), |(n, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                n
            } else {
                ""
            }
        }),
    };
    if name.is_empty() {
        return false;
    }
    name.parse::<std::net::IpAddr>().is_ok()
        || name == "localhost"
        || hostnames.iter().any(|h| *h == host || *h == name)
}

/// Whether a browser's `Origin` (`scheme://host[:port]`) is the agent itself (`host`).
fn same_origin(origin: &str, host: &str) -> bool {
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host.trim()))
}

/// Constant-time comparison of the bearer token with the configured one (both hashed first,
/// so neither the content nor the length leaks through timing).
fn bearer_matches(header: Option<&header::HeaderValue>, token: &SecretValue) -> bool {
    let Some(given) = header
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
    else {
        return false;
    };
    let a = ring::digest::digest(&ring::digest::SHA256, given.as_bytes());
    let b = ring::digest::digest(&ring::digest::SHA256, token.expose().trim().as_bytes());
    a.as_ref()
        .iter()
        .zip(b.as_ref())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Dispatches one allowed request: the alerting routes and reload (which may read a body or
/// wait for another task) first, everything else from the snapshot. Also says whether the
/// body was read.
async fn dispatch(
    req: Request<Incoming>,
    snap: Arc<AgentSnapshot>,
    opts: &ServerOptions,
) -> (Resp, bool) {
    let path = req.uri().path().trim_end_matches('/').to_owned();
    let parts: Vec<&str> = path.split('/').skip(1).collect();
    let method = req.method().clone();
    let read_only = is_read(&method);
    match parts.as_slice() {
        ["api", "v1", "alerts", ..] | ["api", "v1", "silences", ..] => {}
        ["api", "v1", "slos", service, slo, "history"] if read_only => {
            let resp = history(opts, &snap, service, slo, req.uri().query()).await;
            return (resp, false);
        }
        ["-", "reload"] if method == Method::POST => return (reload(opts).await, false),
        ["-", "reload"] => {
            return (
                error(StatusCode::METHOD_NOT_ALLOWED, "use POST on /-/reload"),
                false,
            );
        }
        _ if !read_only => {
            return (
                error(StatusCode::METHOD_NOT_ALLOWED, "only GET is supported"),
                false,
            );
        }
        ["metrics"] => {
            let view = opts.alerting.as_ref().map(AlertingHandle::view);
            let text = |h| req.headers().get(h).and_then(|v| v.to_str().ok());
            let accept = text(header::ACCEPT).map(str::to_owned);
            let gzip = crate::export::prometheus::accepts_gzip(text(header::ACCEPT_ENCODING));
            let page = opts.page;
            // A page of 100,000 SLOs takes a good part of a second to render and compress:
            // off the runtime's worker threads, so the API and the collectors keep going.
            let built = tokio::task::spawn_blocking(move || {
                metrics_response(&snap, view.as_ref(), page, accept.as_deref(), gzip)
            })
            .await;
            return match built {
                Ok(r) => (r, false),
                Err(e) => (
                    error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
                    false,
                ),
            };
        }
        _ => {
            let view = opts.alerting.as_ref().map(AlertingHandle::view);
            let accept = req
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok());
            return (
                route_accepting(&parts, &snap, view.as_ref(), opts.page, accept),
                false,
            );
        }
    }
    let Some(alerting) = opts.alerting.clone() else {
        return (no_alerting(), false);
    };
    let now = opts.clock.now();
    let resp = match (parts.as_slice(), read_only) {
        (["api", "v1", "alerts"], true) => match AlertFilter::parse(req.uri().query()) {
            Ok(f) => json_response(StatusCode::OK, &alerts_json(&alerting.view(), &f)),
            Err(e) => error(StatusCode::BAD_REQUEST, &e),
        },
        (["api", "v1", "alerts", "groups"], true) => {
            json_response(StatusCode::OK, &groups_json(&alerting.view()))
        }
        (["api", "v1", "alerts", "stats"], true) => {
            json_response(StatusCode::OK, &stats_json(&alerting.view()))
        }
        (["api", "v1", "silences"], true) => {
            let view = alerting.view();
            let silences: Vec<Value> = view.silences.iter().map(|s| silence_json(s, now)).collect();
            json_response(StatusCode::OK, &json!({ "silences": silences }))
        }
        (["api", "v1", "silences", id], true) => {
            let id = percent_decode(id).unwrap_or_default();
            match alerting.view().silences.iter().find(|s| s.id == id) {
                Some(s) => json_response(StatusCode::OK, &silence_json(s, now)),
                None => error(StatusCode::NOT_FOUND, &format!("no silence with id {id}")),
            }
        }
        (["api", "v1", "silences"], false) if method == Method::POST => {
            let body = match read_body(req, opts.request_timeout).await {
                Ok(b) => b,
                // Too large or too slow: the rest is not read, so the connection closes.
                Err(r) => return (r, false),
            };
            let sreq = match parse_postable_silence(&body, now) {
                Ok(r) => r,
                Err(e) => return (error(StatusCode::BAD_REQUEST, &e), true),
            };
            let r = match alerting.set_silence(sreq).await {
                Ok(id) => json_response(StatusCode::OK, &json!({ "silenceID": id })),
                Err(e) => command_error(&e),
            };
            return (r, true);
        }
        (["api", "v1", "silences", id], false) if method == Method::DELETE => {
            match alerting
                .expire_silence(percent_decode(id).unwrap_or_default())
                .await
            {
                Ok(()) => json_response(StatusCode::OK, &json!({ "expired": id })),
                Err(e) => command_error(&e),
            }
        }
        (["api", "v1", "silences"] | ["api", "v1", "silences", _], false) => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "use GET or POST on /api/v1/silences, GET or DELETE on /api/v1/silences/{id}",
        ),
        (_, false) => error(StatusCode::METHOD_NOT_ALLOWED, "only GET is supported"),
        _ => error(
            StatusCode::NOT_FOUND,
            "unknown path; try /api/v1/alerts, /api/v1/alerts/groups, /api/v1/alerts/stats, /api/v1/silences",
        ),
    };
    (resp, false)
}

/// `GET /api/v1/slos/{service}/{slo}/history?range=30d&step=1h`: the SLO's counts, budget and
/// burn rates over time from the engine's buckets (see [`crate::slo::history`]). `range`
/// defaults to the SLO's window (a calendar window's period so far), `step` to about
/// [`crate::slo::history::DEFAULT_POINTS`] points.
async fn history(
    opts: &ServerOptions,
    snap: &AgentSnapshot,
    service: &str,
    slo: &str,
    query: Option<&str>,
) -> Resp {
    let Some(handle) = &opts.history else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "this server has no agent to read histories from",
        );
    };
    let slo = percent_decode(slo).unwrap_or_default();
    let Some((report, def)) = snap
        .slo_rows()
        .into_iter()
        .find(|(r, _, _)| r.id.service == service && r.id.slo == slo)
        .map(|(r, _, def)| (r.clone(), def.clone()))
    else {
        return error(
            StatusCode::NOT_FOUND,
            &format!("no SLO `{slo}` in service `{service}`; GET /api/v1/slos lists them"),
        );
    };
    let pairs = match query_pairs(query.unwrap_or("")) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    let mut range = None;
    let mut step = None;
    for (k, v) in &pairs {
        let slot = match k.as_str() {
            "range" => &mut range,
            "step" => &mut step,
            other => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "unknown parameter `{other}`; use `range` and `step`, e.g. ?range=30d&step=1h"
                    ),
                );
            }
        };
        match v.parse::<Dur>() {
            Ok(d) => *slot = Some(d),
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("`{k}`: {e}; write a duration such as 30d, 6h or 5m"),
                );
            }
        }
    }
    let now = opts.clock.now();
    // The SLO's window: rolling, or the calendar period so far.
    let range = range.unwrap_or(match &def.window {
        Window::Rolling(w) => *w,
        Window::Calendar { unit, tz, .. } => {
            let (start, _) = crate::slo::tiers::calendar_period(*unit, tz, now);
            Dur(now.0.saturating_sub(start.0).max(1) as u64)
        }
    });
    let q = crate::slo::history::HistoryQuery { range, step };
    let h = match handle.history(report.id.clone(), q).await {
        Ok(h) => h,
        Err(e @ crate::view::HistoryFailure::Query(_)) => {
            return error(StatusCode::BAD_REQUEST, &e.to_string());
        }
        Err(e @ crate::view::HistoryFailure::UnknownSlo(_)) => {
            return error(StatusCode::NOT_FOUND, &e.to_string());
        }
        Err(e @ crate::view::HistoryFailure::Stopped) => {
            return error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string());
        }
    };
    json_response(
        StatusCode::OK,
        &history_json(&report.id, &def, range, now, &h),
    )
}

fn history_json(id: &SloId, def: &Slo, range: Dur, now: Timestamp, h: &History) -> Value {
    let unit = match def.method {
        BudgetingMethod::Occurrences => "events",
        BudgetingMethod::Timeslices { .. } => "slices",
    };
    let points: Vec<Value> = h
        .points
        .iter()
        .zip(&h.budget_remaining)
        .map(|(p, remaining)| {
            json!({
                "start": p.start,
                "end": p.end,
                "total": p.total,
                "good": p.total - p.bad,
                "bad": p.bad,
                "sli": (p.total > 0).then(|| (p.total - p.bad) as f64 / p.total as f64),
                "budget_remaining": remaining,
            })
        })
        .collect();
    let tiers: Vec<Value> = def
        .alerting
        .tiers
        .iter()
        .map(|t| {
            json!({
                "name": t.name,
                "severity": t.severity,
                "long": t.long.to_string(),
                "short": t.short.to_string(),
                "factor": t.factor,
            })
        })
        .collect();
    let burn: serde_json::Map<String, Value> = h
        .burn_rates
        .iter()
        .map(|(w, series)| (w.to_string(), json!(series)))
        .collect();
    json!({
        "service": id.service,
        "slo": id.slo,
        "at": now,
        "range": range.to_string(),
        "step": h.step.to_string(),
        "resolution": h.resolution.to_string(),
        "unit": unit,
        "objective": def.objective.percent(),
        "points": points,
        "burn_rates": burn,
        "tiers": tiers,
    })
}

/// `POST /-/reload`: reloads the rules as SIGHUP does and answers with the outcome: 200 with
/// the new generation, or 422 with every error (the last good rules keep running).
async fn reload(opts: &ServerOptions) -> Resp {
    let Some(r) = &opts.reload else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "reloading is not available in this server",
        );
    };
    match r.reload().await {
        Ok(o) => {
            let code = if o.ok {
                StatusCode::OK
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            json_response(code, &json!(o))
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

/// The body, at most [`MAX_BODY`] bytes read within `timeout`; an error response otherwise
/// (which closes the connection: the rest of the body is never read).
async fn read_body(req: Request<Incoming>, timeout: Duration) -> Result<Bytes, Resp> {
    let read = Limited::new(req.into_body(), MAX_BODY).collect();
    let Ok(r) = tokio::time::timeout(timeout, read).await else {
        return Err(error(
            StatusCode::REQUEST_TIMEOUT,
            &format!(
                "the body did not arrive within {}s (api.request_timeout)",
                timeout.as_secs_f64()
            ),
        ));
    };
    match r {
        Ok(b) => Ok(b.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the body is larger than {MAX_BODY} bytes"),
        )),
        Err(e) => Err(error(
            StatusCode::BAD_REQUEST,
            &format!("cannot read the body: {e}"),
        )),
    }
}

fn command_error(e: &CommandError) -> Resp {
    let status = match e {
        CommandError::Silence(SilenceError::NotFound(_)) => StatusCode::NOT_FOUND,
        CommandError::Silence(SilenceError::AlreadyExpired(_)) => StatusCode::CONFLICT,
        CommandError::Silence(SilenceError::TooMany(_)) => StatusCode::CONFLICT,
        CommandError::Silence(_) => StatusCode::BAD_REQUEST,
        CommandError::Stopped => StatusCode::SERVICE_UNAVAILABLE,
        CommandError::NotSaved(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, &e.to_string())
}

/// Answers a read-only request from the snapshot and the alerting view (every route but the
/// alerting ones) as it answers Prometheus (`/metrics` in OpenMetrics); the agent tests call it
/// to read the API as a client does.
#[cfg(test)]
pub(crate) fn route(
    parts: &[&str],
    snap: &Arc<AgentSnapshot>,
    alerting: Option<&Arc<AlertingView>>,
    page: PageOptions,
) -> Resp {
    route_accepting(
        parts,
        snap,
        alerting,
        page,
        Some(crate::exposition::Format::ACCEPT),
    )
}

/// The `/metrics` response: the page in the format `accept` picks, gzip-compressed when `gzip`
/// (the request's `Accept-Encoding` accepts it), with `Vary` naming both request headers the
/// answer depends on.
fn metrics_response(
    snap: &AgentSnapshot,
    alerting: Option<&Arc<AlertingView>>,
    page: PageOptions,
    accept: Option<&str>,
    gzip: bool,
) -> Resp {
    use crate::export::prometheus::{content_type, negotiate, render};
    let format = negotiate(accept);
    let text = render(snap, alerting, page, format);
    let compressed = if gzip {
        // Compressing into memory fails only if memory does; then the page goes as it is.
        crate::export::prometheus::gzip(text.as_bytes()).ok()
    } else {
        None
    };
    let encoded = compressed.is_some();
    let body = compressed.unwrap_or_else(|| text.into_bytes());
    let mut r = Response::new(Full::new(Bytes::from(body)));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type(format)),
    );
    h.insert(
        header::VARY,
        header::HeaderValue::from_static("Accept, Accept-Encoding"),
    );
    if encoded {
        h.insert(
            header::CONTENT_ENCODING,
            header::HeaderValue::from_static("gzip"),
        );
    }
    r
}

/// [`route`] for a request whose `Accept` header is `accept` (it picks the `/metrics` format).
fn route_accepting(
    parts: &[&str],
    snap: &Arc<AgentSnapshot>,
    alerting: Option<&Arc<AlertingView>>,
    page: PageOptions,
    accept: Option<&str>,
) -> Resp {
    let tiers = alerting.map(|v| &*v.tiers);
    match parts {
        ["healthz"] => json_response(StatusCode::OK, &json!({"status": "ok"})),
        ["metrics"] => metrics_response(snap, alerting, page, accept, false),
        ["readyz"] => {
            // The agent publishes its first snapshot only after the rules loaded and the
            // checkpoint was restored, so a snapshot with a rule generation means ready.
            let ready = snap.rules_status.generation > 0;
            let code = if ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            json_response(code, &json!({"ready": ready}))
        }
        ["api", "v1", "slos"] => {
            let slos: Vec<Value> = snap
                .slo_rows()
                .into_iter()
                .map(|(r, _, def)| slo_json(r, def, tiers, false))
                .collect();
            json_response(StatusCode::OK, &json!({"at": snap.at, "slos": slos}))
        }
        ["api", "v1", "slos", service, slo] => {
            // An instance of a grouped SLO is `name{label="value"}`, percent-encoded.
            let slo = percent_decode(slo).unwrap_or_default();
            match snap
                .slo_rows()
                .into_iter()
                .find(|(r, _, _)| r.id.service == *service && r.id.slo == slo)
                .map(|(r, _, def)| slo_json(r, def, tiers, true))
            {
                Some(v) => json_response(StatusCode::OK, &v),
                None => error(
                    StatusCode::NOT_FOUND,
                    &format!("no SLO `{slo}` in service `{service}`; GET /api/v1/slos lists them"),
                ),
            }
        }
        ["api", "v1", "probes"] => json_response(StatusCode::OK, &json!({"probes": snap.probes})),
        ["api", "v1", "targets"] => {
            json_response(StatusCode::OK, &json!({"targets": snap.targets}))
        }
        ["api", "v1", "status"] => json_response(
            StatusCode::OK,
            &json!({
                "at": snap.at,
                "version": env!("CARGO_PKG_VERSION"),
                "rules": snap.rules_status,
                "checkpoint": snap.checkpoint,
                "stale_observations": snap.stale_observations,
                "sources": snap.sources,
            }),
        ),
        _ => error(
            StatusCode::NOT_FOUND,
            "unknown path; try /api/v1/slos, /api/v1/probes, /api/v1/targets, /api/v1/alerts, /api/v1/silences, /healthz",
        ),
    }
}

fn window_text(w: &Window) -> String {
    match w {
        Window::Rolling(d) => d.to_string(),
        Window::Calendar { unit, tz_name, .. } => format!("{} ({tz_name})", unit.as_str()),
    }
}

/// One tier alert's state as its lifecycle decided it, in plain values: `state` (`inactive`,
/// `pending`, `firing`, `flapping`, `resolved`; `null` without alerting), `since` (ms since the
/// epoch: when that state began) and `held_since` (ms: when the condition cleared while
/// `keep_firing_for` holds a firing alert).
fn tier_json(r: &SloReport, t: &TierReport, tiers: Option<&TierPhases>) -> Value {
    let phase = tiers.map(|p| p.get(&r.id, &t.name));
    json!({
        "tier": t.name,
        "severity": t.severity,
        "state": phase.map(|p| p.state().as_str()),
        "since": phase.and_then(|p| p.since()),
        "held_since": phase.and_then(|p| p.held_since()),
    })
}

/// An instance's `group_by` labels and values (`null` for a plain SLO).
fn group_json(def: &Slo) -> Value {
    match &def.group {
        Some(crate::rules::model::Grouping::Instance { values }) => {
            Value::Object(values.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
        }
        _ => Value::Null,
    }
}

/// One SLO: definition, headline numbers, tier alert states (from the alerting view), and
/// (detail) every window and tier.
fn slo_json(r: &SloReport, def: &Slo, tiers: Option<&TierPhases>, detail: bool) -> Value {
    let fastest = r
        .alert_windows
        .iter()
        .map(|w| w.burn_rate)
        .fold(0.0f64, f64::max);
    let mut v = json!({
        "service": r.id.service,
        "slo": r.id.slo,
        "name": r.id.name(),
        "group": group_json(def),
        "objective_percent": def.objective.percent(),
        "window": window_text(&def.window),
        "labels": def.labels,
        "sli": r.window.sli,
        "good": r.window.good,
        "total": r.window.total,
        "budget_remaining_ratio": r.budget.remaining,
        "coverage": r.window.coverage,
        "budget_total_minutes": r.budget.total_minutes,
        "time_to_exhaustion_seconds": r.time_to_exhaustion.map(|d| d.as_secs_f64()),
        "fastest_burn_rate": fastest,
        "alerts": r.tiers.iter().map(|t| tier_json(r, t, tiers)).collect::<Vec<_>>(),
    });
    if detail && let Some(obj) = v.as_object_mut() {
        obj.insert("report".into(), json!(r));
        obj.insert("description".into(), json!(def.description));
    }
    v
}

/// Which alerts `GET /api/v1/alerts` lists: Alertmanager API v2's query parameters.
#[derive(Debug)]
struct AlertFilter {
    /// Every one must match (`filter=`, repeatable).
    matchers: Vec<Matcher>,
    /// Include alerts that are neither silenced nor inhibited (`active`, default true).
    active: bool,
    /// Include silenced alerts (`silenced`, default true).
    silenced: bool,
    /// Include inhibited alerts (`inhibited`, default true).
    inhibited: bool,
    /// Only alerts routed to a receiver whose name matches this anchored regex (`receiver`).
    receiver: Option<regex::Regex>,
}

impl AlertFilter {
    /// Every alert (no query).
    fn all() -> AlertFilter {
        AlertFilter {
            matchers: Vec::new(),
            active: true,
            silenced: true,
            inhibited: true,
            receiver: None,
        }
    }

    fn parse(query: Option<&str>) -> Result<AlertFilter, String> {
        let mut f = AlertFilter::all();
        let flag = |k: &str, v: &str| match v {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(format!("`{k}` must be true or false, not {v:?}")),
        };
        for (k, v) in query_pairs(query.unwrap_or_default())? {
            match k.as_str() {
                "filter" => {
                    let m = Matchers::parse(&v).map_err(|e| format!("filter: {e}"))?;
                    f.matchers.extend(m.0);
                }
                "active" => f.active = flag(&k, &v)?,
                "silenced" => f.silenced = flag(&k, &v)?,
                "inhibited" => f.inhibited = flag(&k, &v)?,
                "receiver" => {
                    let re = regex::Regex::new(&format!("^(?:{v})$"))
                        .map_err(|e| format!("receiver: invalid regex: {e}"))?;
                    f.receiver = Some(re);
                }
                _ => {
                    return Err(format!(
                        "unknown query parameter `{k}`; use filter, active, silenced, inhibited or receiver"
                    ));
                }
            }
        }
        Ok(f)
    }

    /// Alertmanager's rules: each excluded kind is dropped, and every matcher must hold.
    fn keeps(&self, a: &AlertView) -> bool {
        if !self.silenced && !a.silenced_by.is_empty() {
            return false;
        }
        if !self.inhibited && !a.inhibited_by.is_empty() {
            return false;
        }
        if !self.active && a.state == SuppressionState::Active {
            return false;
        }
        if let Some(re) = &self.receiver
            && !a.receivers.iter().any(|r| re.is_match(r))
        {
            return false;
        }
        self.matchers.iter().all(|m| m.matches(&a.alert.labels))
    }
}

/// `a=1&b=x%20y` as decoded pairs (`+` is a space, as browsers and curl send it).
fn query_pairs(q: &str) -> Result<Vec<(String, String)>, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Ok((percent_decode(k)?, percent_decode(v)?))
        })
        .collect()
}

/// A path segment or query value with everything but unreserved characters percent-encoded
/// (the inverse of what the server decodes); used by the CLI and the tests.
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad percent-encoding in the query: {s:?}"))?;
                out.push(hex);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| format!("the query is not UTF-8: {s:?}"))
}

/// One alert as Alertmanager's API v2 `gettableAlert`, plus `status.flapping`.
fn alert_json(a: &AlertView, flapping: bool) -> Value {
    json!({
        "labels": a.alert.labels,
        "annotations": a.alert.annotations,
        "startsAt": rfc3339(a.alert.starts_at),
        "endsAt": a.alert.ends_at.map(rfc3339),
        "generatorURL": a.alert.generator_url,
        "fingerprint": a.fingerprint.to_string(),
        "status": {
            "state": a.state.as_str(),
            "silencedBy": a.silenced_by,
            "inhibitedBy": a.inhibited_by.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "flapping": flapping,
        },
        "receivers": a.receivers.iter().map(|r| json!({"name": r})).collect::<Vec<_>>(),
    })
}

/// The body of `GET /api/v1/alerts` without filters.
#[cfg(test)]
pub(crate) fn alerts_page(view: &AlertingView) -> Value {
    alerts_json(view, &AlertFilter::all())
}

fn alerts_json(view: &AlertingView, f: &AlertFilter) -> Value {
    let alerts: Vec<Value> = view
        .alerts
        .iter()
        .filter(|a| f.keeps(a))
        .map(|a| alert_json(a, view.flapping.contains(&a.fingerprint)))
        .collect();
    let suppressed = view
        .alerts
        .iter()
        .filter(|a| a.state == SuppressionState::Suppressed)
        .count();
    json!({
        "at": rfc3339(view.at),
        "alerts": alerts,
        "firing": view.alerts.len(),
        "suppressed": suppressed,
        "flapping": view.flapping.len(),
        "pending": view.pending,
    })
}

fn groups_json(view: &AlertingView) -> Value {
    let groups: Vec<Value> = view
        .groups
        .iter()
        .map(|g| {
            json!({
                "groupKey": g.group_key,
                "receiver": g.receiver,
                "labels": g.group_labels,
                "alerts": g.alerts.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "nextFlush": rfc3339(g.next_flush),
            })
        })
        .collect();
    json!({ "at": rfc3339(view.at), "groups": groups })
}

fn stats_json(view: &AlertingView) -> Value {
    let c = &view.counters;
    let by_reason = |m: &std::collections::BTreeMap<(String, &'static str, &'static str), u64>| {
        m.iter()
            .map(|((r, i, why), n)| json!({"receiver": r, "integration": i, "reason": why, "count": n}))
            .collect::<Vec<_>>()
    };
    let integrations: Vec<Value> = view
        .integrations
        .iter()
        .map(|s| {
            json!({
                "receiver": s.receiver,
                "index": s.integration_idx,
                "integration": s.kind,
                "sent": s.sent,
                "failedPermanent": s.failed_permanent,
                "failedRetriesExhausted": s.failed_retries_exhausted,
                "rejected": s.rejected,
                "superseded": s.superseded,
                "failedShutdown": s.failed_shutdown,
                "retries": s.retries,
                "queueLength": s.queue_len,
                "breaker": s.breaker.as_str(),
                "breakerOpened": s.breaker_opened,
                "consecutiveFailures": s.consecutive_failures,
            })
        })
        .collect();
    json!({
        "at": rfc3339(view.at),
        "notifications": by_reason(&c.notifications),
        "failed": by_reason(&c.failed),
        "suppressions": c.suppressed,
        "transitions": c.transitions,
        "alertmanagerPushFailures": c.alertmanager_push_failures,
        "stateSaveFailures": c.state_save_failures,
        "lastStateSave": view.last_save_ms.map(|ms| rfc3339(Timestamp(ms))),
        "integrations": integrations,
    })
}

/// One silence as Alertmanager's API v2 `gettableSilence`, its state computed at `now`.
fn silence_json(s: &Silence, now: Timestamp) -> Value {
    let matchers: Vec<Value> = s
        .matchers
        .0
        .iter()
        .map(|m| {
            json!({
                "name": m.name,
                "value": m.value,
                "isRegex": matches!(m.op, MatchOp::Re | MatchOp::NotRe),
                "isEqual": matches!(m.op, MatchOp::Eq | MatchOp::Re),
            })
        })
        .collect();
    json!({
        "id": s.id,
        "status": {"state": s.state(now).as_str()},
        "matchers": matchers,
        "startsAt": rfc3339(s.starts_at),
        "endsAt": rfc3339(s.ends_at),
        "updatedAt": rfc3339(s.updated_at),
        "createdBy": s.created_by,
        "comment": s.comment,
    })
}

/// RFC 3339 text to a timestamp.
fn parse_time(field: &str, v: &Value) -> Result<Timestamp, String> {
    let text = v
        .as_str()
        .ok_or_else(|| format!("`{field}` must be an RFC 3339 string"))?;
    let t: jiff::Timestamp = text.parse().map_err(|e| {
        format!("`{field}`: {text:?} is not an RFC 3339 time (e.g. 2026-01-02T15:04:05Z): {e}")
    })?;
    Ok(Timestamp(t.as_millisecond()))
}

fn required_text(o: &serde_json::Map<String, Value>, field: &str) -> Result<String, String> {
    match o.get(field).and_then(Value::as_str).map(str::trim) {
        Some(t) if !t.is_empty() => Ok(t.to_owned()),
        _ => Err(format!("`{field}` is required (a non-empty string)")),
    }
}

/// A matcher in either of Alertmanager's forms: `{name, value, isRegex, isEqual}` or the
/// string `name="value"` (which may hold several, `{a="x", b="y"}`).
fn parse_matcher(v: &Value, out: &mut Vec<Matcher>) -> Result<(), String> {
    match v {
        Value::String(text) => {
            out.extend(Matchers::parse(text).map_err(|e| e.to_string())?.0);
            Ok(())
        }
        Value::Object(o) => {
            let name = o
                .get("name")
                .and_then(Value::as_str)
                .ok_or("a matcher object needs `name` (a string)")?;
            let value = o
                .get("value")
                .and_then(Value::as_str)
                .ok_or("a matcher object needs `value` (a string)")?;
            let flag = |k: &str, default: bool| match o.get(k) {
                None | Some(Value::Null) => Ok(default),
                Some(Value::Bool(b)) => Ok(*b),
                Some(_) => Err(format!("matcher `{k}` must be true or false")),
            };
            let op = match (flag("isRegex", false)?, flag("isEqual", true)?) {
                (false, true) => MatchOp::Eq,
                (false, false) => MatchOp::Ne,
                (true, true) => MatchOp::Re,
                (true, false) => MatchOp::NotRe,
            };
            out.push(Matcher::new(name, op, value).map_err(|e| e.to_string())?);
            Ok(())
        }
        _ => Err(
            "each matcher is an object {name, value, isRegex, isEqual} or a string name=\"value\""
                .into(),
        ),
    }
}

/// Alertmanager's `postableSilence`, with `duration` (`2h`) as an alternative to `endsAt` and
/// `startsAt` optional (now). The silence rules themselves (end after start and now, matchers
/// that do not match everything) are checked by the alerting task.
fn parse_postable_silence(body: &[u8], now: Timestamp) -> Result<SilenceRequest, String> {
    const KEYS: [&str; 7] = [
        "id",
        "matchers",
        "startsAt",
        "endsAt",
        "duration",
        "createdBy",
        "comment",
    ];
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let o = v
        .as_object()
        .ok_or("the body must be a JSON object (Alertmanager's postableSilence)")?;
    if let Some(k) = o.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(format!("unknown field `{k}`; fields: {}", KEYS.join(", ")));
    }
    let mut matchers = Vec::new();
    match o.get("matchers") {
        Some(Value::Array(items)) => {
            for m in items {
                parse_matcher(m, &mut matchers)?;
            }
        }
        _ => return Err("`matchers` is required: a list such as [\"alertname=\\\"X\\\"\"]".into()),
    }
    let starts_at = match o.get("startsAt") {
        None | Some(Value::Null) => None,
        Some(v) => Some(parse_time("startsAt", v)?),
    };
    let ends_at = match (o.get("endsAt"), o.get("duration")) {
        (Some(e), None) => parse_time("endsAt", e)?,
        (None, Some(d)) => {
            let text = d
                .as_str()
                .ok_or("`duration` must be a string such as \"2h\"")?;
            let d = Dur::parse(text).map_err(|e| format!("`duration`: {e}"))?;
            if d.is_zero() {
                return Err("`duration` must be more than 0".into());
            }
            starts_at.unwrap_or(now).add(d)
        }
        (Some(_), Some(_)) => return Err("give `endsAt` or `duration`, not both".into()),
        (None, None) => {
            return Err("`endsAt` (RFC 3339) or `duration` (e.g. \"2h\") is required".into());
        }
    };
    let id = match o.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err("`id` must be a string".into()),
    };
    Ok(SilenceRequest {
        id,
        matchers: Matchers(matchers),
        starts_at,
        ends_at,
        created_by: required_text(o, "createdBy")?,
        comment: required_text(o, "comment")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_780_000_000_000);

    #[test]
    fn postable_silence_in_both_matcher_forms() {
        let body = br#"{"matchers": [{"name": "alertname", "value": "ProbeDown", "isRegex": false, "isEqual": true},
                        "service=~\"shop|cart\"", {"name": "probe", "value": "x", "isEqual": false}],
                        "duration": "2h", "createdBy": "ann", "comment": "deploy"}"#;
        let r = parse_postable_silence(body, NOW).expect("valid");
        assert_eq!(
            r.matchers.to_string(),
            r#"{alertname="ProbeDown",service=~"shop|cart",probe!="x"}"#
        );
        assert_eq!(r.starts_at, None);
        assert_eq!(r.ends_at, NOW.add(Dur::from_hours(2)));
        assert_eq!(
            (r.created_by.as_str(), r.comment.as_str()),
            ("ann", "deploy")
        );
        assert_eq!(r.id, None);

        let body = br#"{"id": "abc", "matchers": ["a=\"1\""], "startsAt": "2026-05-28T20:26:40Z",
                        "endsAt": "2026-05-28T22:26:40.5Z", "createdBy": "b", "comment": "c"}"#;
        let r = parse_postable_silence(body, NOW).expect("valid");
        assert_eq!(r.id.as_deref(), Some("abc"));
        // 2026-05-28T20:26:40Z is 1_780_000_000 s after the epoch.
        assert_eq!(r.starts_at, Some(Timestamp(1_780_000_000_000)));
        assert_eq!(r.ends_at, Timestamp(1_780_007_200_500));
    }

    #[test]
    fn bad_silences_say_what_is_wrong() {
        let cases: [(&[u8], &str); 9] = [
            (b"nope", "not JSON"),
            (b"[]", "JSON object"),
            (br#"{"duration": "2h", "createdBy": "a", "comment": "c"}"#, "`matchers` is required"),
            (br#"{"matchers": ["a=1"], "createdBy": "a", "comment": "c"}"#, "`endsAt`"),
            (br#"{"matchers": ["a=\"1\""], "duration": "2x", "createdBy": "a", "comment": "c"}"#, "`duration`"),
            (br#"{"matchers": ["a=\"1\""], "endsAt": "tomorrow", "createdBy": "a", "comment": "c"}"#, "RFC 3339"),
            (br#"{"matchers": ["a=\"1\""], "duration": "2h", "comment": "c"}"#, "`createdBy`"),
            (br#"{"matchers": ["1a=\"1\""], "duration": "2h", "createdBy": "a", "comment": "c"}"#, "label name"),
            (br#"{"matchers": ["a=\"1\""], "duration": "2h", "createdBy": "a", "comment": "c", "endAt": 1}"#, "unknown field `endAt`"),
        ];
        for (body, want) in cases {
            let e = parse_postable_silence(body, NOW).expect_err("invalid");
            assert!(e.contains(want), "{}: {e}", String::from_utf8_lossy(body));
        }
    }

    fn view(labels: &[(&str, &str)], silenced: bool, inhibited: bool) -> AlertView {
        let labels: crate::rules::model::Labels = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        AlertView {
            fingerprint: crate::alert::Fingerprint::of(&labels),
            alert: crate::alert::Alert {
                labels,
                annotations: Default::default(),
                starts_at: NOW,
                ends_at: None,
                generator_url: String::new(),
            },
            state: if silenced || inhibited {
                SuppressionState::Suppressed
            } else {
                SuppressionState::Active
            },
            silenced_by: if silenced { vec!["s1".into()] } else { vec![] },
            inhibited_by: if inhibited {
                vec![crate::alert::Fingerprint(7)]
            } else {
                vec![]
            },
            receivers: vec!["oncall".into()],
        }
    }

    #[test]
    fn alert_filters_follow_alertmanager() {
        let active = view(&[("alertname", "A"), ("service", "shop")], false, false);
        let silenced = view(&[("alertname", "B"), ("service", "shop")], true, false);
        let inhibited = view(&[("alertname", "C"), ("service", "cart")], false, true);
        let all = [&active, &silenced, &inhibited];
        let names = |q: &str| -> Vec<String> {
            let f = AlertFilter::parse(Some(q)).expect("valid query");
            all.iter()
                .filter(|a| f.keeps(a))
                .map(|a| a.alert.label("alertname").to_owned())
                .collect()
        };
        assert_eq!(names(""), ["A", "B", "C"]);
        assert_eq!(names("silenced=false"), ["A", "C"]);
        assert_eq!(names("inhibited=false&silenced=false"), ["A"]);
        assert_eq!(names("active=false"), ["B", "C"]);
        assert_eq!(names("filter=service%3D%22shop%22"), ["A", "B"]);
        assert_eq!(
            names("filter=service%3D%22shop%22&filter=alertname%21%3D%22A%22"),
            ["B"]
        );
        assert_eq!(names("filter=alertname%3D~%22A%7CC%22"), ["A", "C"]);
        assert_eq!(names("receiver=on.*"), ["A", "B", "C"]);
        assert!(names("receiver=other").is_empty());
        for bad in [
            "filter=1x%3D%22a%22",
            "silenced=maybe",
            "nope=1",
            "filter=%zz",
        ] {
            assert!(AlertFilter::parse(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn silences_render_as_alertmanager_does() {
        let s = Silence {
            id: "x".into(),
            matchers: Matchers::parse(r#"a="1", b!~"2|3""#).expect("valid"),
            starts_at: NOW,
            ends_at: NOW.add(Dur::from_hours(1)),
            created_by: "me".into(),
            comment: "why".into(),
            updated_at: NOW,
        };
        let v = silence_json(&s, NOW);
        assert_eq!(v["status"]["state"], "active");
        assert_eq!(
            v["matchers"],
            json!([{"name": "a", "value": "1", "isRegex": false, "isEqual": true},
                   {"name": "b", "value": "2|3", "isRegex": true, "isEqual": false}])
        );
        assert_eq!(v["startsAt"], "2026-05-28T20:26:40.000Z");
        assert_eq!(v["endsAt"], "2026-05-28T21:26:40.000Z");
        assert_eq!(
            silence_json(&s, NOW.add(Dur::from_hours(1)))["status"]["state"],
            "expired"
        );
        assert_eq!(silence_json(&s, Timestamp(0))["status"]["state"], "pending");
    }

    #[test]
    fn host_names_that_rebinding_cannot_produce() {
        let names = vec![
            "burnwatch.internal".to_owned(),
            "bw.example:8080".to_owned(),
        ];
        for ok in [
            "127.0.0.1:9464",
            "127.0.0.1",
            "[::1]:9464",
            "LOCALHOST:9464",
            "10.1.2.3:80",
            "burnwatch.internal",
            "Burnwatch.Internal:9464",
            "bw.example:8080",
        ] {
            assert!(host_allowed(ok, &names), "{ok}");
        }
        for bad in [
            "",
            "evil.example:9464",
            "bw.example:9464",
            "localhost.evil.example",
            "127.0.0.1.nip.io:9464",
            "[::1",
            "[evil]:1",
            "localhost:port",
        ] {
            assert!(!host_allowed(bad, &names), "{bad}");
        }
    }

    #[test]
    fn only_the_agent_itself_is_same_origin() {
        assert!(same_origin("http://127.0.0.1:9464", "127.0.0.1:9464"));
        assert!(!same_origin("http://evil.example", "127.0.0.1:9464"));
        assert!(!same_origin("null", "127.0.0.1:9464"));
        assert!(!same_origin("http://127.0.0.1:9465", "127.0.0.1:9464"));
    }

    #[test]
    fn bearer_tokens_must_match_exactly() {
        let token = SecretValue::new("s3cret".into());
        let h = |v: &str| header::HeaderValue::from_str(v).expect("header");
        assert!(bearer_matches(Some(&h("Bearer s3cret")), &token));
        assert!(bearer_matches(Some(&h("bearer s3cret")), &token));
        for bad in [
            "Bearer s3cre",
            "Bearer s3crett",
            "Basic s3cret",
            "s3cret",
            "Bearer ",
        ] {
            assert!(!bearer_matches(Some(&h(bad)), &token), "{bad}");
        }
        assert!(!bearer_matches(None, &token));
    }
}
