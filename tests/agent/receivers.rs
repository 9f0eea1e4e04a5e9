//! Receivers against real HTTP peers: in-process hyper servers on 127.0.0.1 that record every
//! request (with its arrival time) and answer from a script. Covers the webhook payload round
//! trip, retries on 5xx, `Retry-After` on 429, permanent 4xx, the circuit breaker, Slack's
//! `200 ok` rule, PagerDuty trigger/resolve dedup keys, and that secrets never reach `Debug`
//! output or logs. Every wait is bounded.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;

use burnwatch::alert::Alert;
use burnwatch::http_client::HttpAuth;
use burnwatch::notify::delivery::{
    BreakerState, Delivery, DeliveryConfig, DeliveryError, DeliveryOutcome,
};
use burnwatch::notify::pagerduty::{self, PagerDutyConfig};
use burnwatch::notify::receiver::{self, ReceiverConfig, Secret};
use burnwatch::notify::render::RenderContext;
use burnwatch::notify::slack::SlackConfig;
use burnwatch::notify::webhook::{Payload, WebhookConfig};
use burnwatch::notify::{Integration, Notification, NotifyReason, SendError};
use burnwatch::rules::model::Labels;
use burnwatch::time::{Dur, Timestamp};

const WAIT: Duration = Duration::from_secs(10);

#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

fn reply(status: u16, body: &str) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        body: body.to_owned(),
    }
}

#[derive(Debug, Clone)]
struct Recorded {
    at: Instant,
    path: String,
    headers: hyper::HeaderMap,
    body: Vec<u8>,
}

/// A scripted HTTP peer: answers from `script`, then `fallback` forever.
struct Sink {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Recorded>>>,
    /// TCP connections accepted.
    accepted: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Sink {
    async fn start(script: Vec<Reply>, fallback: Reply) -> Sink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        Sink::serve(listener, script, fallback)
    }

    /// Serves on `listener` (a port chosen by the test).
    fn serve(listener: tokio::net::TcpListener, script: Vec<Reply>, fallback: Reply) -> Sink {
        let addr = listener.local_addr().expect("addr");
        let log: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let (log2, fallback) = (log.clone(), Arc::new(fallback));
        let accepted: Arc<std::sync::atomic::AtomicUsize> = Arc::default();
        let accepted2 = accepted.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                accepted2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let (log, script, fallback) = (log2.clone(), script.clone(), fallback.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let (log, script, fallback) =
                            (log.clone(), script.clone(), fallback.clone());
                        async move {
                            let at = Instant::now();
                            let path = req.uri().path().to_owned();
                            let headers = req.headers().clone();
                            let body = req.into_body().collect().await?.to_bytes().to_vec();
                            log.lock().expect("log").push(Recorded {
                                at,
                                path,
                                headers,
                                body,
                            });
                            let r = script
                                .lock()
                                .expect("script")
                                .pop_front()
                                .unwrap_or_else(|| (*fallback).clone());
                            let mut resp = Response::builder().status(r.status);
                            for (k, v) in &r.headers {
                                resp = resp.header(*k, v.as_str());
                            }
                            Ok::<_, hyper::Error>(
                                resp.body(Full::new(Bytes::from(r.body))).expect("response"),
                            )
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Sink {
            addr,
            log,
            accepted,
            task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn requests(&self) -> Vec<Recorded> {
        self.log.lock().expect("log").clone()
    }

    /// Waits (bounded) until `n` requests arrived.
    async fn wait_for(&self, n: usize) -> Vec<Recorded> {
        let deadline = Instant::now() + WAIT;
        loop {
            let got = self.requests();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {n} requests arrived within {WAIT:?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn alert(instance: &str, ended: Option<i64>) -> Alert {
    Alert {
        labels: labels(&[
            ("alertname", "SloBurnRate"),
            ("service", "checkout"),
            ("slo", "availability"),
            ("severity", "page"),
            ("instance", instance),
        ]),
        annotations: labels(&[
            ("summary", "checkout availability: burning 14.4x"),
            ("objective", "99.9%"),
            ("budget_remaining", "61%"),
            ("runbook_url", "https://runbooks.example/checkout"),
        ]),
        starts_at: Timestamp::from_millis(1_795_273_324_422),
        ends_at: ended.map(Timestamp::from_millis),
        generator_url: "http://agent.example:9464/api/v1/slos/checkout/availability".into(),
    }
}

fn notification(alerts: Vec<Alert>) -> Notification {
    Notification {
        receiver: "oncall".into(),
        group_key: "{}/{severity=\"page\"}:{service=\"checkout\"}".into(),
        group_labels: labels(&[("service", "checkout")]),
        reason: NotifyReason::NewAlerts,
        alerts,
        inhibited: 2,
        at: Timestamp::from_millis(1_795_273_400_000),
    }
}

fn ctx() -> RenderContext {
    RenderContext::new("http://agent.example:9464")
}

fn webhook(url: &str) -> WebhookConfig {
    WebhookConfig {
        url: Secret::Literal(url.to_owned()),
        send_resolved: true,
        max_alerts: 0,
        timeout: Dur::from_secs(5),
        auth: None,
    }
}

fn receiver_with(webhook: Vec<WebhookConfig>, slack: Vec<SlackConfig>) -> ReceiverConfig {
    ReceiverConfig {
        name: "oncall".into(),
        webhook,
        slack,
        pagerduty: Vec::new(),
        email: Vec::new(),
    }
}

fn one(cfg: ReceiverConfig) -> Arc<dyn Integration> {
    let mut built = receiver::build(&cfg, &ctx()).expect("build");
    assert_eq!(built.len(), 1);
    built.remove(0)
}

/// Runs delivery for one integration until `outcomes` outcomes arrived (bounded), then shuts it
/// down and returns them with the final counters.
async fn deliver(
    integration: Arc<dyn Integration>,
    config: DeliveryConfig,
    notifications: Vec<Notification>,
    outcomes: usize,
) -> (
    Vec<DeliveryOutcome>,
    burnwatch::notify::delivery::IntegrationStats,
) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let d = Delivery::new(config, vec![("oncall".into(), vec![integration])], tx);
    let h = d.handle();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(d.run(async {
        let _ = stop_rx.await;
    }));
    for n in notifications {
        h.submit(0, n).expect("submit");
    }
    let mut got = Vec::new();
    while got.len() < outcomes {
        let o = tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("outcome within the bound")
            .expect("channel open");
        got.push(o);
    }
    let stats = h.stats().remove(0);
    let _ = stop_tx.send(());
    tokio::time::timeout(WAIT, run)
        .await
        .expect("shutdown within the bound")
        .expect("run");
    (got, stats)
}

fn fast() -> DeliveryConfig {
    DeliveryConfig {
        initial_backoff: Dur::from_millis(20),
        max_backoff: Dur::from_millis(100),
        shutdown_grace: Dur::from_millis(500),
        ..DeliveryConfig::default()
    }
}

#[tokio::test]
async fn webhook_payload_parses_back_to_the_notification() {
    let sink = Sink::start(vec![], reply(200, "")).await;
    let dir = tempfile::tempdir().expect("tmp");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "tok-123\n").expect("write");
    let mut cfg = webhook(&sink.url("/hook"));
    cfg.auth = Some(HttpAuth::Bearer(Secret::File(token_file)));
    let hook = one(receiver_with(vec![cfg], vec![]));
    let n = notification(vec![alert("a", None), alert("b", Some(1_795_273_390_000))]);
    hook.send(&n).await.expect("delivered");
    let got = sink.wait_for(1).await;
    let r = &got[0];
    assert_eq!(r.path, "/hook");
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.headers["authorization"], "Bearer tok-123");
    let raw: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(raw["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(raw["alerts"][0]["startsAt"], "2026-11-21T15:02:04.422Z");
    assert_eq!(raw["alerts"][1]["endsAt"], "2026-11-21T15:03:10.000Z");
    let p: Payload = serde_json::from_slice(&r.body).expect("payload");
    assert_eq!(p.version, "4");
    assert_eq!(p.status, "firing");
    assert_eq!(p.receiver, "oncall");
    assert_eq!(p.group_key, n.group_key);
    assert_eq!(p.group_labels, n.group_labels);
    assert_eq!(p.common_labels, n.common_labels());
    assert_eq!(p.common_labels.get("instance"), None);
    assert_eq!(p.common_annotations, n.common_annotations());
    assert_eq!(p.external_url, "http://agent.example:9464");
    assert_eq!(p.truncated_alerts, 0);
    assert_eq!(p.notification_reason, "new alerts added");
    let fps: Vec<String> = p.alerts.iter().map(|a| a.fingerprint.clone()).collect();
    let want: Vec<String> = n
        .alerts
        .iter()
        .map(|a| a.fingerprint().to_string())
        .collect();
    assert_eq!(fps, want);
    assert_eq!(p.to_alerts().expect("alerts"), n.alerts);
}

#[tokio::test]
async fn five_hundred_then_two_hundred_is_delivered_on_attempt_two() {
    let sink = Sink::start(vec![reply(500, "boom")], reply(200, "")).await;
    let hook = one(receiver_with(vec![webhook(&sink.url("/"))], vec![]));
    let (out, stats) = deliver(hook, fast(), vec![notification(vec![alert("a", None)])], 1).await;
    assert_eq!(out[0].result, Ok(()));
    assert_eq!(out[0].attempts, 2);
    assert_eq!(out[0].receiver, "oncall");
    assert_eq!(out[0].integration_idx, 0);
    assert_eq!(sink.requests().len(), 2);
    assert_eq!((stats.sent, stats.retries), (1, 1));
}

#[tokio::test]
async fn too_many_requests_waits_for_retry_after() {
    let mut limited = reply(429, "rate limited");
    limited.headers.push(("retry-after", "1".into()));
    let sink = Sink::start(vec![limited], reply(200, "")).await;
    let hook = one(receiver_with(vec![webhook(&sink.url("/"))], vec![]));
    let (out, _) = deliver(hook, fast(), vec![notification(vec![alert("a", None)])], 1).await;
    assert_eq!(out[0].result, Ok(()));
    assert_eq!(out[0].attempts, 2);
    let got = sink.requests();
    assert_eq!(got.len(), 2);
    let gap = got[1].at.duration_since(got[0].at);
    assert!(gap >= Duration::from_secs(1), "retried after {gap:?}");
    assert!(gap < Duration::from_secs(5), "retried after {gap:?}");
}

#[tokio::test]
async fn bad_request_is_permanent_after_one_attempt() {
    let sink = Sink::start(vec![], reply(400, "bad payload")).await;
    let hook = one(receiver_with(vec![webhook(&sink.url("/"))], vec![]));
    let (out, stats) = deliver(hook, fast(), vec![notification(vec![alert("a", None)])], 1).await;
    let host = sink.addr.ip().to_string();
    assert_eq!(
        out[0].result,
        Err(DeliveryError::Permanent(format!(
            "webhook {host}: HTTP 400: bad payload"
        )))
    );
    assert_eq!(out[0].attempts, 1);
    assert_eq!(sink.requests().len(), 1);
    assert_eq!(
        (stats.failed_permanent, stats.sent, stats.retries),
        (1, 0, 0)
    );
}

#[tokio::test]
async fn breaker_opens_after_consecutive_failures_and_stops_attempts() {
    let sink = Sink::start(vec![], reply(503, "down")).await;
    let hook = one(receiver_with(vec![webhook(&sink.url("/"))], vec![]));
    let config = DeliveryConfig {
        breaker_threshold: 3,
        breaker_cooldown: Dur::from_secs(60),
        shutdown_grace: Dur::from_millis(200),
        ..fast()
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let d = Delivery::new(config, vec![("oncall".into(), vec![hook])], tx);
    let h = d.handle();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(d.run(async {
        let _ = stop_rx.await;
    }));
    h.submit(0, notification(vec![alert("a", None)]))
        .expect("submit");
    sink.wait_for(3).await;
    // Well past every backoff (≤100 ms): still three attempts, because the breaker is open.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.requests().len(), 3);
    let st = h.stats().remove(0);
    assert_eq!(st.breaker, BreakerState::Open);
    assert_eq!((st.breaker_opened, st.consecutive_failures), (1, 3));
    let _ = stop_tx.send(());
    tokio::time::timeout(WAIT, run)
        .await
        .expect("bounded shutdown")
        .expect("run");
    let out = rx.recv().await.expect("outcome");
    let host = sink.addr.ip().to_string();
    assert_eq!(
        out.result,
        Err(DeliveryError::Shutdown {
            last: Some(format!("webhook {host}: HTTP 503: down"))
        })
    );
    assert_eq!(out.attempts, 3);
}

/// A notification of group `key` whose firing alerts are `instances`.
fn grouped(key: &str, instances: &[&str]) -> Notification {
    let mut n = notification(instances.iter().map(|i| alert(i, None)).collect());
    n.group_key = key.to_owned();
    n
}

/// Requests per group key, from the webhook payloads the sink received.
fn deliveries_per_group(sink: &Sink) -> std::collections::BTreeMap<String, usize> {
    let mut per = std::collections::BTreeMap::new();
    for r in sink.requests() {
        let p: Payload = serde_json::from_slice(&r.body).expect("payload");
        *per.entry(p.group_key).or_default() += 1;
    }
    per
}

/// Submits `first`, waits until its attempt failed, submits the same group again (as the
/// dispatcher does at the group's next flush) and another group, and collects three outcomes.
async fn resubmit_while_retrying(
    hook: Arc<dyn Integration>,
    config: DeliveryConfig,
    failed_once: impl AsyncFnOnce(),
) -> Vec<DeliveryOutcome> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let d = Delivery::new(config, vec![("oncall".into(), vec![hook])], tx);
    let h = d.handle();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(d.run(async {
        let _ = stop_rx.await;
    }));
    h.submit(0, grouped("g1", &["a"])).expect("submit");
    failed_once().await;
    h.submit(0, grouped("g1", &["a"])).expect("submit");
    h.submit(0, grouped("g2", &["b"])).expect("submit");
    let mut got = Vec::new();
    while got.len() < 3 {
        let o = tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("outcome within the bound")
            .expect("channel open");
        got.push(o);
    }
    let _ = stop_tx.send(());
    tokio::time::timeout(WAIT, run)
        .await
        .expect("shutdown within the bound")
        .expect("run");
    got
}

fn summary(outcomes: &[DeliveryOutcome]) -> Vec<(String, Result<(), DeliveryError>)> {
    outcomes
        .iter()
        .map(|o| (o.notification.group_key.clone(), o.result.clone()))
        .collect()
}

#[tokio::test]
async fn a_group_retried_after_429_is_delivered_once() {
    let mut limited = reply(429, "slow down");
    limited.headers.push(("retry-after", "1".into()));
    let sink = Sink::start(vec![limited], reply(200, "")).await;
    let hook = one(receiver_with(vec![webhook(&sink.url("/"))], vec![]));
    let out = resubmit_while_retrying(hook, fast(), async || {
        sink.wait_for(1).await;
    })
    .await;
    assert_eq!(
        summary(&out),
        vec![
            ("g1".to_owned(), Err(DeliveryError::Superseded)),
            ("g1".to_owned(), Ok(())),
            ("g2".to_owned(), Ok(())),
        ]
    );
    let per = deliveries_per_group(&sink);
    // g1: the 429 and one delivery; never the same state twice.
    assert_eq!(per.get("g1"), Some(&2), "{per:?}");
    assert_eq!(per.get("g2"), Some(&1), "{per:?}");
    let got = sink.requests();
    let gap = got[1].at.duration_since(got[0].at);
    assert!(
        gap >= Duration::from_secs(1),
        "Retry-After not honoured: {gap:?}"
    );
}

#[tokio::test]
async fn a_group_retried_while_the_receiver_was_down_is_delivered_once() {
    // Down: a port that refuses connections, until a sink binds it again.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = probe.local_addr().expect("addr");
    drop(probe);
    let url = format!("http://{addr}/");
    let hook = one(receiver_with(vec![webhook(&url)], vec![]));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let config = DeliveryConfig {
        initial_backoff: Dur::from_millis(300),
        max_backoff: Dur::from_millis(300),
        ..fast()
    };
    let d = Delivery::new(config, vec![("oncall".into(), vec![hook])], tx);
    let h = d.handle();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(d.run(async {
        let _ = stop_rx.await;
    }));
    h.submit(0, grouped("g1", &["a"])).expect("submit");
    let deadline = Instant::now() + WAIT;
    while h.stats()[0].consecutive_failures == 0 {
        assert!(
            Instant::now() < deadline,
            "no failed attempt within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    h.submit(0, grouped("g1", &["a"])).expect("submit");
    h.submit(0, grouped("g2", &["b"])).expect("submit");
    // Up again on the same port.
    let listener = tokio::net::TcpListener::bind(addr).await.expect("rebind");
    let sink = Sink::serve(listener, vec![], reply(200, ""));
    let mut out = Vec::new();
    while out.len() < 3 {
        let o = tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("outcome within the bound")
            .expect("channel open");
        out.push(o);
    }
    let _ = stop_tx.send(());
    tokio::time::timeout(WAIT, run)
        .await
        .expect("shutdown within the bound")
        .expect("run");
    assert_eq!(
        summary(&out),
        vec![
            ("g1".to_owned(), Err(DeliveryError::Superseded)),
            ("g1".to_owned(), Ok(())),
            ("g2".to_owned(), Ok(())),
        ]
    );
    let per = deliveries_per_group(&sink);
    assert_eq!(per.get("g1"), Some(&1), "{per:?}");
    assert_eq!(per.get("g2"), Some(&1), "{per:?}");
}

/// A burst of 5,000 groups (the first flush of 5,000 burning SLOs), each submitted ten times
/// as its state changes, to a receiver that is slower than the burst: every group is delivered
/// once, with its newest state; the queue never holds more than one notification per group.
#[tokio::test]
async fn a_burst_of_five_thousand_groups_is_delivered_whole() {
    const GROUPS: usize = 5_000;
    const ROUNDS: usize = 10;
    let sink = Sink::start(vec![], reply(200, "")).await;
    let hook = one(receiver_with(vec![webhook(&sink.url("/"))], vec![]));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let d = Delivery::new(
        DeliveryConfig::default(),
        vec![("oncall".into(), vec![hook])],
        tx,
    );
    let h = d.handle();
    // All submitted before the worker starts: the receiver has taken none of them yet.
    for round in 0..ROUNDS {
        let instance = format!("r{round}");
        for g in 0..GROUPS {
            h.submit(0, grouped(&format!("g{g}"), &[instance.as_str()]))
                .expect("submit");
        }
        let queued = h.stats()[0].queue_len;
        assert!(queued <= GROUPS, "{queued} queued for {GROUPS} groups");
    }
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(d.run(async {
        let _ = stop_rx.await;
    }));
    let (mut delivered, mut superseded, mut lost) = (0, 0, Vec::new());
    let deadline = Instant::now() + Duration::from_secs(120);
    while delivered + superseded + lost.len() < GROUPS * ROUNDS {
        let left = deadline.saturating_duration_since(Instant::now());
        let o = tokio::time::timeout(left, rx.recv())
            .await
            .expect("every outcome within the bound")
            .expect("channel open");
        match o.result {
            Ok(()) => delivered += 1,
            Err(DeliveryError::Superseded) => superseded += 1,
            Err(e) => lost.push(e),
        }
    }
    let _ = stop_tx.send(());
    tokio::time::timeout(WAIT, run)
        .await
        .expect("shutdown within the bound")
        .expect("run");
    assert!(
        lost.is_empty(),
        "{} notifications lost, the first: {:?}",
        lost.len(),
        lost.first()
    );
    assert_eq!((delivered, superseded), (GROUPS, GROUPS * (ROUNDS - 1)));
    let mut seen = std::collections::BTreeSet::new();
    for r in sink.requests() {
        let p: Payload = serde_json::from_slice(&r.body).expect("payload");
        assert_eq!(
            p.alerts[0].labels.get("instance").map(String::as_str),
            Some("r9")
        );
        assert!(
            seen.insert(p.group_key.clone()),
            "{} delivered twice",
            p.group_key
        );
    }
    assert_eq!(seen.len(), GROUPS);
    let st = h.stats().remove(0);
    assert_eq!((st.sent, st.rejected, st.queue_len), (GROUPS as u64, 0, 0));
}

#[tokio::test]
async fn sends_to_one_receiver_reuse_one_connection() {
    let sink = Sink::start(vec![reply(500, "once")], reply(200, "")).await;
    let hook = one(receiver_with(vec![webhook(&sink.url("/hook"))], vec![]));
    // A failed answer does not cost the connection either.
    assert!(matches!(
        hook.send(&grouped("g1", &["a"])).await,
        Err(SendError::Retryable { .. })
    ));
    hook.send(&grouped("g1", &["a"])).await.expect("delivered");
    hook.send(&grouped("g2", &["b"])).await.expect("delivered");
    assert_eq!(sink.wait_for(3).await.len(), 3);
    assert_eq!(
        sink.accepted.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "three sends, one connection"
    );
}

/// The Alertmanager push reads `Retry-After` with the shared parser: HTTP dates too, capped.
#[tokio::test]
async fn alertmanager_push_honours_retry_after_dates_and_the_cap() {
    use burnwatch::http_client::MAX_RETRY_AFTER;
    use burnwatch::notify::alertmanager::{AlertmanagerClient, AlertmanagerConfig};
    let in_a_minute = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(60);
    let date = jiff::fmt::rfc2822::DateTimePrinter::new()
        .timestamp_to_rfc9110_string(&in_a_minute)
        .expect("date");
    let mut dated = reply(503, "busy");
    dated.headers.push(("retry-after", date));
    let mut long = reply(429, "slow down");
    long.headers.push(("retry-after", "86400".into()));
    let sink = Sink::start(vec![dated, long], reply(200, "")).await;
    let config = AlertmanagerConfig::from_yaml(
        std::path::Path::new("a.yaml"),
        &format!("urls: [{}]\n", sink.url("")),
    )
    .expect("config");
    let client = AlertmanagerClient::new(&config, Dur::from_secs(15)).expect("client");
    let now = Timestamp::from_millis(jiff::Timestamp::now().as_millisecond());
    let alerts = [alert("a", None)];
    match client.push(&alerts, now).await {
        Err(SendError::Retryable {
            retry_after: Some(d),
            ..
        }) => assert!(
            d > Dur::from_secs(50) && d <= Dur::from_secs(60),
            "date read as {d}"
        ),
        other => panic!("{other:?}"),
    }
    match client.push(&alerts, now).await {
        Err(SendError::Retryable { retry_after, .. }) => {
            assert_eq!(retry_after, Some(MAX_RETRY_AFTER));
        }
        other => panic!("{other:?}"),
    }
    client.push(&alerts, now).await.expect("accepted");
    let got = sink.wait_for(3).await;
    assert!(got.iter().all(|r| r.path == "/api/v2/alerts"));
    assert_eq!(sink.accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
}

fn slack(url: &str) -> SlackConfig {
    SlackConfig {
        url: Secret::Literal(url.to_owned()),
        send_resolved: false,
        channel: None,
        username: None,
        timeout: Dur::from_secs(5),
    }
}

#[tokio::test]
async fn slack_success_is_exactly_200_ok() {
    let mut limited = reply(429, "");
    limited.headers.push(("retry-after", "3".into()));
    let sink = Sink::start(
        vec![
            reply(200, "ok"),
            reply(200, "invalid_payload"),
            reply(400, "invalid_blocks"),
            limited,
            reply(500, "rollup_error"),
        ],
        reply(404, "no_service"),
    )
    .await;
    let s = one(receiver_with(
        vec![],
        vec![slack(&sink.url("/services/T/B/x"))],
    ));
    assert_eq!(s.kind(), "slack");
    assert!(!s.send_resolved());
    let n = notification(vec![alert("a", None)]);
    assert_eq!(s.send(&n).await, Ok(()));
    assert_eq!(
        s.send(&n).await,
        Err(SendError::Permanent {
            message: "slack: HTTP 200: invalid_payload".into()
        })
    );
    assert_eq!(
        s.send(&n).await,
        Err(SendError::Permanent {
            message: "slack: HTTP 400: invalid_blocks".into()
        })
    );
    assert_eq!(
        s.send(&n).await,
        Err(SendError::Retryable {
            message: "slack: HTTP 429".into(),
            retry_after: Some(Dur::from_secs(3))
        })
    );
    assert!(matches!(s.send(&n).await, Err(SendError::Retryable { .. })));
    assert!(matches!(s.send(&n).await, Err(SendError::Permanent { .. })));
    let body: serde_json::Value = serde_json::from_slice(&sink.requests()[0].body).expect("json");
    assert_eq!(
        body["text"],
        "[FIRING:1] checkout availability: burning 14.4x"
    );
    assert_eq!(body["blocks"][0]["type"], "header");
}

#[tokio::test]
async fn pagerduty_triggers_then_resolves_with_one_dedup_key() {
    let accepted = r#"{"status":"success","message":"Event processed"}"#;
    let sink = Sink::start(
        vec![
            reply(202, accepted),
            reply(202, accepted),
            reply(400, "bad"),
        ],
        reply(429, ""),
    )
    .await;
    let mut cfg = PagerDutyConfig::new(Secret::Literal("R0UTINGKEY0123456789abcdef012345".into()));
    cfg.url = sink.url("/v2/enqueue");
    let pd = one(ReceiverConfig {
        name: "oncall".into(),
        webhook: vec![],
        slack: vec![],
        pagerduty: vec![cfg],
        email: Vec::new(),
    });
    let firing = notification(vec![alert("a", None), alert("b", None)]);
    let mut resolved = firing.clone();
    for a in &mut resolved.alerts {
        a.ends_at = Some(Timestamp::from_millis(1_795_273_500_000));
    }
    resolved.reason = NotifyReason::AllResolved;
    pd.send(&firing).await.expect("trigger");
    pd.send(&resolved).await.expect("resolve");
    let got = sink.wait_for(2).await;
    let trigger: serde_json::Value = serde_json::from_slice(&got[0].body).expect("json");
    let resolve: serde_json::Value = serde_json::from_slice(&got[1].body).expect("json");
    assert_eq!(got[0].path, "/v2/enqueue");
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(resolve["event_action"], "resolve");
    // Alertmanager's key: hex SHA-256 of the group key, computed here independently.
    let digest = ring::digest::digest(&ring::digest::SHA256, firing.group_key.as_bytes());
    let want: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(want.len(), 64);
    assert_eq!(trigger["dedup_key"], want);
    assert_eq!(resolve["dedup_key"], want);
    assert_eq!(pagerduty::dedup_key(&firing.group_key), want);
    assert_eq!(trigger["routing_key"], "R0UTINGKEY0123456789abcdef012345");
    assert_eq!(trigger["payload"]["severity"], "critical");
    assert_eq!(
        trigger["payload"]["summary"],
        "[FIRING:2] checkout availability: burning 14.4x (+1 more)"
    );
    assert_eq!(
        trigger["payload"]["custom_details"]["dependent_alerts_suppressed"],
        2
    );
    assert_eq!(
        trigger["links"][0]["href"],
        "https://runbooks.example/checkout"
    );
    assert!(matches!(
        pd.send(&firing).await,
        Err(SendError::Permanent { .. })
    ));
    assert!(matches!(
        pd.send(&firing).await,
        Err(SendError::Retryable { .. })
    ));
}

/// A `MakeWriter` collecting log output in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn secrets_stay_out_of_debug_output_and_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // A current-thread runtime: every task below logs through this thread's subscriber.
    let _guard = tracing::subscriber::set_default(subscriber);

    const SLACK_TOKEN: &str = "XOXB-slack-path-token-zz9";
    const PASSWORD: &str = "pw-hunter2-zz9";
    const ROUTING: &str = "routing-key-zz9";
    let sink = Sink::start(vec![], reply(400, "nope")).await;
    let mut hook = webhook(&sink.url("/hook"));
    hook.auth = Some(HttpAuth::Basic {
        username: "bw".into(),
        password: Secret::Literal(PASSWORD.into()),
    });
    let mut pd = PagerDutyConfig::new(Secret::Literal(ROUTING.into()));
    pd.url = sink.url("/v2/enqueue");
    let cfg = ReceiverConfig {
        name: "oncall".into(),
        webhook: vec![hook],
        slack: vec![slack(&sink.url(&format!("/services/{SLACK_TOKEN}")))],
        pagerduty: vec![pd],
        email: Vec::new(),
    };
    let integrations = receiver::build(&cfg, &ctx()).expect("build");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let d = Delivery::new(fast(), vec![("oncall".into(), integrations)], tx);
    let h = d.handle();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(d.run(async {
        let _ = stop_rx.await;
    }));
    for idx in 0..3 {
        h.submit(idx, notification(vec![alert("a", None)]))
            .expect("submit");
    }
    for _ in 0..3 {
        let out = tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("bounded")
            .expect("outcome");
        assert!(matches!(out.result, Err(DeliveryError::Permanent(_))));
        let shown = format!(
            "{out:?} {}",
            out.result
                .as_ref()
                .err()
                .map(ToString::to_string)
                .unwrap_or_default()
        );
        for secret in [SLACK_TOKEN, PASSWORD, ROUTING] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
    let _ = stop_tx.send(());
    tokio::time::timeout(WAIT, run)
        .await
        .expect("bounded")
        .expect("run");
    // The peer did get the credentials.
    let got = sink.requests();
    assert_eq!(got.len(), 3);
    assert!(got.iter().any(|r| r.path.contains(SLACK_TOKEN)));
    assert!(got.iter().any(|r| r.headers.contains_key("authorization")));
    let debug = format!("{cfg:?}");
    let logs = String::from_utf8(captured.0.lock().expect("log").clone()).expect("utf8");
    assert!(
        logs.contains("notification not delivered"),
        "the test must see the failure logs: {logs}"
    );
    for secret in [SLACK_TOKEN, PASSWORD, ROUTING] {
        assert!(!debug.contains(secret), "Debug leaks {secret}: {debug}");
        assert!(!logs.contains(secret), "logs leak {secret}: {logs}");
    }
}
