//! The Alertmanager API v2 client against a real Alertmanager 0.25 on 127.0.0.1 (Debian's
//! `prometheus-alertmanager`, HA disabled): pushed alerts appear in its `GET /api/v2/alerts`
//! with our labels, annotations and fingerprint and with `endsAt` = the lease; a resolve makes
//! the alert leave the active set; re-sending keeps a firing alert active past its first lease
//! while an alert that is not re-sent expires at it. Every wait is bounded.

use crate::common;

use common::labels;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use burnwatch::alert::{Alert, Fingerprint};
use burnwatch::notify::alertmanager::{
    AlertmanagerClient, AlertmanagerConfig, AlertmanagerSender, lease,
};
use burnwatch::rules::model::Labels;
use burnwatch::time::{Dur, Timestamp};
use serde_json::Value;

fn now() -> Timestamp {
    Timestamp::from_millis(jiff::Timestamp::now().as_millisecond())
}

fn alert(slo: &str, started: Timestamp) -> Alert {
    Alert {
        labels: labels(&[
            ("alertname", "SloBurnRate"),
            ("service", "checkout"),
            ("slo", slo),
            ("severity", "page"),
        ]),
        annotations: labels(&[
            ("summary", &format!("checkout {slo} burning 14.4x")),
            ("runbook_url", "https://runbooks.example/checkout"),
            ("budget_remaining", "61.0%"),
        ]),
        starts_at: started,
        ends_at: None,
        generator_url: format!("http://127.0.0.1:9000/api/v1/slos/checkout/{slo}"),
    }
}

async fn active_alerts(addr: SocketAddr) -> Vec<Value> {
    common::get_json(addr, "/api/v2/alerts")
        .await
        .expect("GET /api/v2/alerts")
        .as_array()
        .expect("array")
        .clone()
}

/// Polls until `ok` holds for the active alerts (bounded).
async fn wait_for(addr: SocketAddr, what: &str, ok: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let alerts = active_alerts(addr).await;
        if ok(&alerts) {
            return alerts;
        }
        assert!(
            Instant::now() < deadline,
            "{what} within 5s; have {alerts:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn find<'a>(alerts: &'a [Value], a: &Alert) -> Option<&'a Value> {
    let fp = Fingerprint::of(&a.labels).to_string();
    alerts.iter().find(|v| v["fingerprint"] == fp.as_str())
}

fn millis(v: &Value) -> i64 {
    v.as_str()
        .expect("time string")
        .parse::<jiff::Timestamp>()
        .expect("RFC 3339")
        .as_millisecond()
}

fn string_map(v: &Value) -> Labels {
    v.as_object()
        .expect("object")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("string").to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_leases_resolves_and_resends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_am, addr) = common::start_alertmanager(dir.path()).await;

    // Evaluation interval 1s and resend interval 1s: a 4s lease, as Prometheus computes it.
    let yaml = format!("urls: [http://{addr}/]\nresend_interval: 1s\ntimeout: 5s\n");
    let config = AlertmanagerConfig::from_yaml(Path::new("alerting.yaml"), &yaml)
        .unwrap_or_else(|d| panic!("config rejected: {d:?}"));
    let eval = Dur::from_secs(1);
    let client = AlertmanagerClient::new(&config, eval).expect("client");
    let mut sender = AlertmanagerSender::new(eval, config.resend_interval);
    assert_eq!(client.lease(), Dur::from_secs(4));
    assert_eq!(sender.lease(), lease(eval, config.resend_interval));

    let t0 = now();
    let started = t0.sub(Dur::from_secs(60));
    let a = alert("availability", started);
    let b = alert("latency", started);
    sender.update(&[a.clone(), b.clone()], t0);
    let due = sender.due(t0);
    assert_eq!(due.len(), 2);
    client.push(&due, t0).await.expect("push accepted");
    sender.mark_sent(&due, t0);
    // A control alert pushed once and never again: it must expire with its lease.
    let control = alert("freshness", started);
    client
        .push(std::slice::from_ref(&control), t0)
        .await
        .expect("control accepted");

    let got = wait_for(addr, "three alerts visible", |v| {
        [&a, &b, &control].iter().all(|x| find(v, x).is_some())
    })
    .await;
    for x in [&a, &b, &control] {
        let v = find(&got, x).expect("present");
        assert_eq!(string_map(&v["labels"]), x.labels);
        assert_eq!(string_map(&v["annotations"]), x.annotations);
        assert_eq!(v["generatorURL"], x.generator_url.as_str());
        assert_eq!(v["status"]["state"], "active");
        assert_eq!(millis(&v["startsAt"]), started.millis());
        assert_eq!(millis(&v["endsAt"]), t0.add(Dur::from_secs(4)).millis());
    }

    // Resolve b: it is sent at once with its real end, and leaves the active set.
    let t1 = now();
    let mut b_resolved = b.clone();
    b_resolved.ends_at = Some(t1);
    sender.update(&[a.clone(), b_resolved.clone()], t1);
    let due = sender.due(t1);
    assert!(due.contains(&b_resolved), "{due:?}");
    client.push(&due, t1).await.expect("resolve accepted");
    sender.mark_sent(&due, t1);
    wait_for(addr, "b gone, a active", |v| {
        find(v, &b).is_none() && find(v, &a).is_some()
    })
    .await;

    // Keep evaluating until 6.5s after the first push: the sender re-sends a every second.
    let until = t0.add(Dur::from_millis(6_500));
    let mut pushes = 0;
    while now() < until {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let t = now();
        sender.update(&[a.clone(), b_resolved.clone()], t);
        let due = sender.due(t);
        if !due.is_empty() {
            client.push(&due, t).await.expect("resend accepted");
            sender.mark_sent(&due, t);
            pushes += 1;
        }
    }
    assert!(pushes >= 4, "only {pushes} resends in 6s");
    let last_a = sender.tracked()[&a.fingerprint()]
        .last_sent
        .expect("a was sent");
    let got = active_alerts(addr).await;
    let va = find(&got, &a).expect("a still active after its first lease ran out");
    assert_eq!(va["status"]["state"], "active");
    assert_eq!(
        millis(&va["endsAt"]),
        last_a.add(Dur::from_secs(4)).millis()
    );
    assert!(millis(&va["endsAt"]) > t0.add(Dur::from_secs(6)).millis());
    assert!(find(&got, &b).is_none(), "b came back: {got:?}");
    assert!(
        find(&got, &control).is_none(),
        "the control alert outlived its lease: {got:?}"
    );

    // An alert Alertmanager refuses (ends before it starts): 400, which no retry fixes.
    let mut bad = alert("broken", t0);
    bad.ends_at = Some(t0.sub(Dur::from_secs(1)));
    let err = client.push(&[bad], now()).await.expect_err("400");
    assert!(
        matches!(&err, burnwatch::notify::SendError::Permanent { message } if message.contains("400")),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_alertmanager_is_retryable() {
    let addr = common::free_addr();
    let config =
        AlertmanagerConfig::from_yaml(Path::new("a.yaml"), &format!("urls: [http://{addr}]\n"))
            .expect("config");
    let client = AlertmanagerClient::new(&config, Dur::from_secs(15)).expect("client");
    let err = client
        .push(&[alert("availability", now())], now())
        .await
        .expect_err("nobody listens");
    assert!(
        matches!(err, burnwatch::notify::SendError::Retryable { .. }),
        "{err:?}"
    );
}
