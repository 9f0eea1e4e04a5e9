//! The agent's HTTP server (hyper 1, HTTP/1.1): health, readiness and the JSON API, all read
//! from the newest published snapshot (never from the engine). Graceful: on shutdown it stops
//! accepting and gives open connections a bounded time to finish.
//!
//! Routes: `GET /metrics` (OpenMetrics, see [`crate::export::prometheus`]), `GET /healthz` (alive), `GET /readyz` (rules loaded and state restored: 200, else
//! 503), `GET /api/v1/slos`, `GET /api/v1/slos/{service}/{slo}`, `GET /api/v1/probes`,
//! `GET /api/v1/targets`, `GET /api/v1/status`. Errors are JSON: `{"error": "..."}`.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::agent::AgentSnapshot;
use crate::export::prometheus::PageOptions;
use crate::rules::model::{Slo, Window};
use crate::slo::engine::SloReport;

/// How long open connections may take to finish after shutdown starts.
pub const DRAIN: Duration = Duration::from_secs(5);

/// Serves until `shutdown` resolves, then drains for at most [`DRAIN`]; `/metrics` carries
/// burnwatch's own families only.
pub async fn serve(
    listener: TcpListener,
    snapshots: watch::Receiver<Arc<AgentSnapshot>>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    serve_with(listener, snapshots, PageOptions::default(), shutdown).await
}

/// [`serve`] with the `/metrics` page options of the agent config (`export.prometheus`).
pub async fn serve_with(
    listener: TcpListener,
    snapshots: watch::Receiver<Arc<AgentSnapshot>>,
    page: PageOptions,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let (drain_tx, drain_rx) = watch::channel(false);
    let mut conns = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            _ = &mut shutdown => break,
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
        let mut drain = drain_rx.clone();
        conns.spawn(async move {
            let svc = service_fn(move |req| {
                let snap = snaps.borrow().clone();
                async move { Ok::<_, Infallible>(route(&req, &snap, page)) }
            });
            let conn = http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = crate::agent::collect::stopped(&mut drain) => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
        // Reap finished connections so the set does not grow.
        while conns.try_join_next().is_some() {}
    }
    let _ = drain_tx.send(true);
    let all = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(DRAIN, all).await.is_err() {
        conns.abort_all();
    }
    Ok(())
}

fn json_response(status: StatusCode, v: &Value) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec_pretty(v).unwrap_or_else(|_| b"{}".to_vec());
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    json_response(status, &json!({ "error": message }))
}

fn route(
    req: &Request<Incoming>,
    snap: &Arc<AgentSnapshot>,
    page: PageOptions,
) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return error(StatusCode::METHOD_NOT_ALLOWED, "only GET is supported");
    }
    let path = req.uri().path().trim_end_matches('/');
    let parts: Vec<&str> = path.split('/').skip(1).collect();
    match parts.as_slice() {
        ["healthz"] => json_response(StatusCode::OK, &json!({"status": "ok"})),
        ["metrics"] => match crate::export::prometheus::encode_with(snap, page) {
            Ok(page) => {
                let mut r = Response::new(Full::new(Bytes::from(page)));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static(crate::export::prometheus::CONTENT_TYPE),
                );
                r
            }
            Err(_) => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "encoding the metrics failed",
            ),
        },
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
                .map(|(r, _, def)| slo_json(r, def, false))
                .collect();
            json_response(StatusCode::OK, &json!({"at": snap.at, "slos": slos}))
        }
        ["api", "v1", "slos", service, slo] => {
            match snap
                .slo_rows()
                .into_iter()
                .find(|(r, _, _)| r.id.service == *service && r.id.slo == *slo)
                .map(|(r, _, def)| slo_json(r, def, true))
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
            }),
        ),
        _ => error(
            StatusCode::NOT_FOUND,
            "unknown path; try /api/v1/slos, /api/v1/probes, /api/v1/targets, /healthz",
        ),
    }
}

fn window_text(w: &Window) -> String {
    match w {
        Window::Rolling(d) => d.to_string(),
        Window::Calendar { unit, tz_name, .. } => format!("{} ({tz_name})", unit.as_str()),
    }
}

/// One SLO: definition, headline numbers, and (detail) every window and tier.
fn slo_json(r: &SloReport, def: &Slo, detail: bool) -> Value {
    let fastest = r
        .alert_windows
        .iter()
        .map(|w| w.burn_rate)
        .fold(0.0f64, f64::max);
    let mut v = json!({
        "service": r.id.service,
        "slo": r.id.slo,
        "objective_percent": def.objective.percent(),
        "window": window_text(&def.window),
        "labels": def.labels,
        "sli": r.window.sli,
        "good": r.window.good,
        "total": r.window.total,
        "budget_remaining_ratio": r.budget.remaining,
        "budget_total_minutes": r.budget.total_minutes,
        "time_to_exhaustion_seconds": r.time_to_exhaustion.map(|d| d.as_secs_f64()),
        "fastest_burn_rate": fastest,
        "alerts": r.tiers.iter().map(|t| json!({"tier": t.name, "severity": t.severity, "state": t.state})).collect::<Vec<_>>(),
    });
    if detail && let Some(obj) = v.as_object_mut() {
        obj.insert("report".into(), json!(r));
        obj.insert("description".into(), json!(def.description));
    }
    v
}
