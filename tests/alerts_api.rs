//! The alerting API and CLI against the real `burnwatch run` binary: a probe of a closed
//! loopback port fires `ProbeDown`, which reaches an in-process webhook and PagerDuty endpoint;
//! `/api/v1/alerts` and `burnwatch alerts` show it; the `burnwatch silence add` command printed in
//! the PagerDuty notification, run word for word, silences it (suppressed, silenced by that id);
//! `burnwatch silence expire` makes it active again; bad requests get 400/404 JSON; `/metrics`
//! carries the alerting families. Without an alerting task the routes answer 503.

mod common;

use std::net::SocketAddr;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    Received, exchange, free_addr, get_json, request, run_agent, start_receiver, wait_for,
};
use serde_json::Value;

/// The words a POSIX shell makes of `cmd`, for the forms `alert::silence_command` prints:
/// bare words and single-quoted words (a quote written as `'\''`).
fn shell_words(cmd: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = cmd.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    cur.push(q);
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            ' ' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// Runs the CLI with `args`, bounded by the child's own 10 s request timeout.
fn cli(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_burnwatch"))
        .args(args)
        .env("USER", "oncall-tester")
        .env("NO_COLOR", "1")
        .output()
        .expect("run burnwatch")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The single ProbeDown alert of `/api/v1/alerts`.
async fn probe_down(agent: SocketAddr) -> Result<Value, String> {
    let v = get_json(agent, "/api/v1/alerts").await?;
    let alerts = v["alerts"].as_array().ok_or("no alerts list")?;
    match alerts.as_slice() {
        [a] if a["labels"]["alertname"] == "ProbeDown" => Ok(a.clone()),
        _ => Err(format!("alerts: {v}")),
    }
}

/// The silence command of the first PagerDuty notification received.
fn silence_command(got: &Received) -> Result<String, String> {
    let got = got.lock().expect("not poisoned");
    got.iter()
        .find(|(path, _)| path == "/v2/enqueue")
        .and_then(|(_, body)| body["payload"]["custom_details"]["silence"].as_str())
        .map(str::to_owned)
        .ok_or_else(|| format!("received: {got:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_are_listed_silenced_and_unsilenced_through_the_api_and_cli() {
    let started = Instant::now();
    let (hooks, got, hooks_stop) = start_receiver().await;
    let closed = free_addr();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("shop.yaml"),
        format!(
            r#"version: burnwatch/v1
service: shop
probes:
  - name: health
    http: {{url: "http://{closed}/healthz"}}
    interval: 1s
    alert: {{failures: 1, summary: "shop health check is down"}}
slos:
  - name: health
    objective: 99
    indicator: {{probe: health}}
    alerting: {{disabled: true}}
"#
        ),
    )
    .expect("rules");
    let agent = free_addr();
    let cfg = dir.path().join("burnwatch.yaml");
    std::fs::write(
        &cfg,
        format!(
            r#"listen: {agent}
rules: [shop.yaml]
evaluation_interval: 1s
checkpoint_interval: 1s
alerting:
  route:
    receiver: oncall
    group_by: [alertname, probe]
    group_wait: 1s
    group_interval: 1s
    repeat_interval: 1h
  receivers:
    - name: oncall
      webhook:
        - url: http://{hooks}/hook
      pagerduty:
        - routing_key: 0123456789abcdef0123456789abcdef
          url: http://{hooks}/v2/enqueue
"#
        ),
    )
    .expect("config");
    let _agent = run_agent(&cfg);
    let url = format!("http://{agent}");

    // The alert fires and is shown as Alertmanager's API v2 shows it.
    let alert = wait_for("ProbeDown in /api/v1/alerts", || probe_down(agent)).await;
    assert_eq!(alert["labels"]["probe"], "health", "{alert}");
    assert_eq!(alert["status"]["state"], "active", "{alert}");
    assert_eq!(alert["status"]["silencedBy"], serde_json::json!([]));
    assert_eq!(alert["status"]["flapping"], false);
    assert_eq!(alert["receivers"], serde_json::json!([{"name": "oncall"}]));
    assert_eq!(alert["endsAt"], Value::Null);
    let fingerprint = alert["fingerprint"]
        .as_str()
        .expect("fingerprint")
        .to_owned();
    assert_eq!(fingerprint.len(), 16);
    let starts = alert["startsAt"].as_str().expect("startsAt");
    assert!(starts.parse::<jiff::Timestamp>().is_ok(), "{starts}");

    // The group holds it; the notification reaches both integrations.
    let groups = get_json(agent, "/api/v1/alerts/groups")
        .await
        .expect("groups");
    let group = &groups["groups"][0];
    assert_eq!(group["receiver"], "oncall", "{groups}");
    assert_eq!(group["labels"]["probe"], "health", "{groups}");
    assert_eq!(group["alerts"], serde_json::json!([fingerprint]));
    let command = wait_for("the PagerDuty notification", || async {
        silence_command(&got)
    })
    .await;
    assert!(
        got.lock()
            .expect("not poisoned")
            .iter()
            .any(|(p, b)| p == "/hook" && b["alerts"][0]["fingerprint"] == fingerprint.as_str()),
        "the webhook got the alert too"
    );

    // `burnwatch alerts` lists it.
    let out = cli(&["alerts".into(), "--url".into(), url.clone()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing = text(&out.stdout);
    let row = listing
        .lines()
        .find(|l| l.starts_with("ProbeDown"))
        .unwrap_or_else(|| panic!("no ProbeDown row:\n{listing}"));
    for want in [
        "probe/health",
        "page",
        "active",
        "shop health check is down",
    ] {
        assert!(row.contains(want), "{want} missing: {row}");
    }
    assert!(!listing.contains('\x1b'), "no colour off a terminal");

    // The command the notification printed, run word for word (plus the agent's address).
    let mut words = shell_words(&command);
    assert_eq!(words[..3], ["burnwatch", "silence", "add"], "{command}");
    assert!(
        command.ends_with("--duration 2h --comment '<why>'"),
        "{command}"
    );
    words.remove(0);
    words.extend(["--url".into(), url.clone()]);
    let out = cli(&words);
    assert!(out.status.success(), "{command}: {}", text(&out.stderr));
    let id = text(&out.stdout).trim().to_owned();
    assert_eq!(id.len(), 36, "a UUID: {id}");

    let alert = probe_down(agent).await.expect("still firing");
    assert_eq!(alert["status"]["state"], "suppressed", "{alert}");
    assert_eq!(alert["status"]["silencedBy"], serde_json::json!([id]));
    let unsilenced = get_json(agent, "/api/v1/alerts?silenced=false")
        .await
        .expect("filtered");
    assert_eq!(unsilenced["alerts"], serde_json::json!([]), "{unsilenced}");
    let by_matcher = get_json(
        agent,
        "/api/v1/alerts?filter=probe%3D%22health%22&active=false",
    )
    .await
    .expect("filtered");
    assert_eq!(by_matcher["alerts"].as_array().map(Vec::len), Some(1));
    let silence = get_json(agent, &format!("/api/v1/silences/{id}"))
        .await
        .expect("the silence");
    assert_eq!(silence["status"]["state"], "active", "{silence}");
    assert_eq!(silence["createdBy"], "oncall-tester");
    assert_eq!(silence["comment"], "<why>");
    let ends = silence["endsAt"].as_str().expect("endsAt");
    let starts = silence["startsAt"].as_str().expect("startsAt");
    let span = ends
        .parse::<jiff::Timestamp>()
        .expect("RFC 3339")
        .as_millisecond()
        - starts
            .parse::<jiff::Timestamp>()
            .expect("RFC 3339")
            .as_millisecond();
    // The end is now + 2h on the agent, the start the agent's now a moment later.
    assert!(
        (7_190_000..=7_200_000).contains(&span),
        "2h silence spans {span} ms"
    );

    let out = cli(&["alerts".into(), "--url".into(), url.clone()]);
    let listing = text(&out.stdout);
    assert!(listing.contains("silenced"), "{listing}");
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with(&id) && l.contains("oncall-tester")),
        "silences in force are listed:\n{listing}"
    );
    let out = cli(&["silence".into(), "list".into(), "--url".into(), url.clone()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&id));

    // Metrics: one firing, one suppressed, one active silence, the delivered notifications.
    let metrics = metrics_page(agent).await;
    for want in [
        "burnwatch_alerts{state=\"firing\"} 1",
        "burnwatch_alerts{state=\"suppressed\"} 1",
        "burnwatch_silences{state=\"active\"} 1",
        "burnwatch_notifications_total{receiver=\"oncall\",integration=\"pagerduty\",reason=\"first\"} 1",
        "burnwatch_notifications_total{receiver=\"oncall\",integration=\"webhook\",reason=\"first\"} 1",
        "burnwatch_notification_breaker_open{receiver=\"oncall\",integration=\"webhook\"} 0",
        "burnwatch_alerting_state_save_timestamp_seconds ",
    ] {
        assert!(metrics.contains(want), "{want} missing:\n{metrics}");
    }

    // Expiring makes it active again; expiring twice is refused with the agent's message.
    let expire = [
        "silence".into(),
        "expire".into(),
        id.clone(),
        "--url".into(),
        url.clone(),
    ];
    let out = cli(&expire);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let alert = probe_down(agent).await.expect("still firing");
    assert_eq!(alert["status"]["state"], "active", "{alert}");
    assert_eq!(alert["status"]["silencedBy"], serde_json::json!([]));
    let out = cli(&expire);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("already expired"),
        "{}",
        text(&out.stderr)
    );
    let listed = get_json(agent, "/api/v1/silences").await.expect("silences");
    assert_eq!(
        listed["silences"][0]["status"]["state"], "expired",
        "{listed}"
    );

    // Bad requests: JSON errors with the right status.
    let post = |body: &'static str| request(agent, "POST", "/api/v1/silences", body);
    for (status, body, want) in [
        (400, "{not json", "not JSON"),
        (
            400,
            r#"{"matchers": [], "duration": "2h", "createdBy": "a", "comment": "c"}"#,
            "at least one matcher",
        ),
        (
            400,
            r#"{"matchers": ["probe=~\".*\""], "duration": "2h", "createdBy": "a", "comment": "c"}"#,
            "empty string",
        ),
        (
            400,
            r#"{"matchers": ["probe=\"health\""], "endsAt": "2001-01-01T00:00:00Z", "createdBy": "a", "comment": "c"}"#,
            "past",
        ),
        (
            400,
            r#"{"matchers": ["probe=\"health\""], "duration": "2h", "createdBy": "a"}"#,
            "comment",
        ),
        (
            404,
            r#"{"id": "nope", "matchers": ["probe=\"health\""], "duration": "2h", "createdBy": "a", "comment": "c"}"#,
            "no silence",
        ),
    ] {
        let (code, v) = post(body).await.expect("answer");
        assert_eq!(code, status, "{body}: {v}");
        assert!(
            v["error"].as_str().is_some_and(|e| e.contains(want)),
            "{body}: {v}"
        );
    }
    let big = format!(
        r#"{{"matchers": ["probe=\"health\""], "duration": "2h", "createdBy": "a", "comment": "{}"}}"#,
        "x".repeat(70_000)
    );
    let (code, v) = request(agent, "POST", "/api/v1/silences", &big)
        .await
        .expect("answer");
    assert_eq!(code, 413, "{v}");
    for (method, path, status) in [
        ("DELETE", "/api/v1/silences/nope", 404),
        ("GET", "/api/v1/silences/nope", 404),
        ("GET", "/api/v1/alerts?filter=1probe%3D%22x%22", 400),
        ("GET", "/api/v1/alerts?silenced=maybe", 400),
        ("PUT", "/api/v1/silences", 405),
        ("POST", "/api/v1/slos", 405),
    ] {
        let (code, v) = request(agent, method, path, "").await.expect("answer");
        assert_eq!(code, status, "{method} {path}: {v}");
        assert!(v["error"].is_string(), "{method} {path}: {v}");
    }
    let out = cli(&[
        "silence".into(),
        "add".into(),
        "probe".into(),
        "--duration".into(),
        "2h".into(),
        "--comment".into(),
        "x".into(),
        "--url".into(),
        url.clone(),
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("name=\"value\""),
        "{}",
        text(&out.stderr)
    );

    let stats = get_json(agent, "/api/v1/alerts/stats")
        .await
        .expect("stats");
    let first_pages: Vec<&Value> = stats["notifications"]
        .as_array()
        .expect("notifications")
        .iter()
        .filter(|n| n["reason"] == "first")
        .collect();
    assert_eq!(first_pages.len(), 2, "webhook and PagerDuty: {stats}");
    assert!(first_pages.iter().all(|n| n["count"] == 1), "{stats}");
    assert_eq!(
        stats["integrations"].as_array().map(Vec::len),
        Some(2),
        "{stats}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    let _ = hooks_stop.send(true);
}

async fn metrics_page(agent: SocketAddr) -> String {
    let (status, body) = exchange(agent, "GET", "/metrics", "")
        .await
        .expect("/metrics");
    assert_eq!(status, 200);
    text(&body)
}

#[tokio::test]
async fn without_alerting_the_alerting_routes_answer_503() {
    let rules = burnwatch::rules::load_str(
        "r.yaml",
        "version: burnwatch/v1\nservice: shop\nprobes:\n  - name: p\n    tcp: {address: '127.0.0.1:1'}\nslos:\n  - name: up\n    objective: 99\n    indicator: {probe: p}\n",
    )
    .expect("rules");
    let t = burnwatch::time::Timestamp(1_780_000_000_000);
    let mut ev = burnwatch::agent::evaluator::Evaluator::new(rules, t);
    let (_tx, rx) = tokio::sync::watch::channel(Arc::new(ev.evaluate(t)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(burnwatch::server::serve(listener, rx, async move {
        let _ = stopped.wait_for(|s| *s).await;
    }));
    for (method, path) in [
        ("GET", "/api/v1/alerts"),
        ("GET", "/api/v1/alerts/groups"),
        ("GET", "/api/v1/silences"),
        ("POST", "/api/v1/silences"),
        ("DELETE", "/api/v1/silences/x"),
    ] {
        let (code, v) = request(addr, method, path, "{}").await.expect("answer");
        assert_eq!(code, 503, "{method} {path}");
        assert!(
            v["error"].as_str().is_some_and(|e| e.contains("alerting")),
            "{v}"
        );
    }
    let (code, _) = request(addr, "GET", "/api/v1/status", "")
        .await
        .expect("answer");
    assert_eq!(code, 200);
    let _ = stop.send(true);
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("server stops")
        .expect("joins")
        .expect("serves");
}
