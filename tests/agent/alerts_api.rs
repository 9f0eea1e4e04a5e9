//! The alerting API and CLI against the real `burnwatch run` binary: a probe of a closed
//! loopback port fires `ProbeDown`, which reaches an in-process webhook and PagerDuty endpoint;
//! `/api/v1/alerts` and `burnwatch alerts` show it; the `burnwatch silence add` command printed in
//! the PagerDuty notification, run word for word, silences it (suppressed, silenced by that id);
//! `burnwatch silence expire` makes it active again; bad requests get 400/404 JSON; `/metrics`
//! carries the alerting families. Without an alerting task the routes answer 503.

use crate::common;

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
    let mut ev = burnwatch::evaluator::Evaluator::new(rules, t);
    let (_tx, rx) = tokio::sync::watch::channel(Arc::new(ev.evaluate(t)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stop = burnwatch::shutdown::Shutdown::new();
    let server = tokio::spawn(burnwatch::server::serve(listener, rx, stop.clone()));
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
    stop.trigger();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("server stops")
        .expect("joins")
        .expect("serves");
}

// ---- The API's protection (docs/api.md, "Security") and the CLI's one client. ----

/// One HTTP/1.1 request with exactly these headers (`host` defaults to `addr`), bounded to
/// 10 s: (status, response headers, JSON body or `Null`).
async fn raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, hyper::HeaderMap, Value) {
    use http_body_util::{BodyExt as _, Full};
    let go = async {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .expect("handshake");
        tokio::spawn(conn);
        let mut req = hyper::Request::builder().method(method).uri(path);
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            req = req.header("host", addr.to_string());
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(Full::new(hyper::body::Bytes::from(body.to_owned())))
            .expect("request");
        let resp = sender.send_request(req).await.expect("answer");
        let status = resp.status().as_u16();
        let h = resp.headers().clone();
        let b = resp.into_body().collect().await.expect("body").to_bytes();
        (status, h, serde_json::from_slice(&b).unwrap_or(Value::Null))
    };
    tokio::time::timeout(Duration::from_secs(10), go)
        .await
        .unwrap_or_else(|_| panic!("{method} {path} timed out"))
}

const TOKEN: &str = "t0ken-for-tests-4242";

fn shop_rules(extra: &str) -> String {
    format!(
        "version: burnwatch/v1\nservice: shop\nprobes:\n  - name: p\n    tcp: {{address: '127.0.0.1:1'}}\n    interval: 1s\nslos:\n  - name: up\n    objective: 99\n    indicator: {{probe: p}}\n{extra}"
    )
}

fn silence_body(duration: &str, matcher: &str) -> String {
    format!(
        r#"{{"matchers": ["{matcher}"], "duration": "{duration}", "createdBy": "t", "comment": "c"}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_wants_the_token_a_known_host_json_and_no_cross_site_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("shop.yaml");
    std::fs::write(&rules, shop_rules("")).expect("rules");
    let token_file = dir.path().join("api-token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).expect("token");
    let agent = free_addr();
    let cfg = dir.path().join("burnwatch.yaml");
    std::fs::write(
        &cfg,
        format!(
            "listen: {agent}\nrules: [shop.yaml]\nevaluation_interval: 1s\nreload_check_interval: 0s\napi:\n  token: {{file: api-token}}\n  max_silences: 2\n  max_silence_duration: 7d\n"
        ),
    )
    .expect("config");
    let _agent = run_agent(&cfg);
    wait_for("the agent", || get_json(agent, "/readyz")).await;
    let bearer = format!("Bearer {TOKEN}");
    let json = ("content-type", "application/json");
    let auth = ("authorization", bearer.as_str());
    let ok_body = silence_body("1h", "alertname=\\\"A\\\"");

    // Reads stay open without protect_reads.
    let (code, _, _) = raw(agent, "GET", "/api/v1/slos", &[], "").await;
    assert_eq!(code, 200);

    // No token, a wrong one, another scheme: 401 with the challenge.
    for headers in [
        vec![json],
        vec![json, ("authorization", "Bearer wrong")],
        vec![json, ("authorization", "Basic dDp0")],
    ] {
        let (code, h, v) = raw(agent, "POST", "/api/v1/silences", &headers, &ok_body).await;
        assert_eq!(code, 401, "{headers:?}: {v}");
        assert!(
            h.get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("Bearer")),
            "{h:?}"
        );
        assert!(
            v["error"]
                .as_str()
                .is_some_and(|e| e.contains("--token-file")),
            "{v}"
        );
    }
    let (code, _, _) = raw(agent, "DELETE", "/api/v1/silences/x", &[], "").await;
    assert_eq!(code, 401);
    // A body that is not declared JSON (what a cross-site form or fetch sends): 415.
    for ct in ["text/plain", "application/x-www-form-urlencoded"] {
        let (code, _, v) = raw(
            agent,
            "POST",
            "/api/v1/silences",
            &[auth, ("content-type", ct)],
            &ok_body,
        )
        .await;
        assert_eq!(code, 415, "{ct}: {v}");
    }
    // DNS rebinding: a name the agent does not answer to, for changes and reads alike.
    let evil = format!("evil.example:{}", agent.port());
    for (method, path) in [
        ("POST", "/api/v1/silences"),
        ("GET", "/api/v1/slos"),
        ("GET", "/metrics"),
    ] {
        let (code, _, v) = raw(
            agent,
            method,
            path,
            &[auth, json, ("host", &evil)],
            &ok_body,
        )
        .await;
        assert_eq!(code, 421, "{method} {path}: {v}");
    }
    let (code, _, _) = raw(agent, "GET", "/healthz", &[("host", &evil)], "").await;
    assert_eq!(code, 200, "health checks stay open");
    let localhost = format!("localhost:{}", agent.port());
    let (code, _, _) = raw(agent, "GET", "/api/v1/slos", &[("host", &localhost)], "").await;
    assert_eq!(code, 200);
    // A page of another origin cannot change anything, even with the token.
    let (code, _, v) = raw(
        agent,
        "POST",
        "/api/v1/silences",
        &[auth, json, ("origin", "http://evil.example")],
        &ok_body,
    )
    .await;
    assert_eq!(code, 403, "{v}");

    // Limits: 292 years is refused; the third silence in force is refused.
    let (code, _, v) = raw(
        agent,
        "POST",
        "/api/v1/silences",
        &[auth, json],
        r#"{"matchers": ["alertname=~\".+\""], "endsAt": "2318-01-01T00:00:00Z", "createdBy": "t", "comment": "c"}"#,
    )
    .await;
    assert_eq!(code, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("api.max_silence_duration")),
        "{v}"
    );
    let same_origin = format!("http://{agent}");
    let mut ids = Vec::new();
    for (i, origin) in [None, Some(same_origin.as_str())].into_iter().enumerate() {
        let mut h = vec![auth, json];
        h.extend(origin.map(|o| ("origin", o)));
        let body = silence_body("1h", &format!("alertname=\\\"A{i}\\\""));
        let (code, _, v) = raw(agent, "POST", "/api/v1/silences", &h, &body).await;
        assert_eq!(code, 200, "{v}");
        ids.push(v["silenceID"].as_str().expect("id").to_owned());
    }
    let (code, _, v) = raw(agent, "POST", "/api/v1/silences", &[auth, json], &ok_body).await;
    assert_eq!(code, 409, "{v}");
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("api.max_silences")),
        "{v}"
    );
    let v = get_json(agent, "/api/v1/silences").await.expect("silences");
    assert_eq!(
        v["silences"].as_array().map(Vec::len),
        Some(2),
        "only the accepted ones: {v}"
    );

    // POST /-/reload: authenticated, answers with the outcome.
    let (code, _, _) = raw(agent, "POST", "/-/reload", &[json], "").await;
    assert_eq!(code, 401);
    let (code, _, v) = raw(agent, "POST", "/-/reload", &[auth, json], "").await;
    assert_eq!(
        (code, &v["ok"], &v["generation"]),
        (200, &Value::Bool(true), &serde_json::json!(2)),
        "{v}"
    );
    std::fs::write(
        &rules,
        shop_rules("  - name: up\n    objective: 250\n    indicator: {probe: nope}\n"),
    )
    .expect("bad rules");
    let (code, _, v) = raw(agent, "POST", "/-/reload", &[auth, json], "").await;
    assert_eq!(code, 422, "{v}");
    assert_eq!(v["generation"], 2, "the last good rules stay: {v}");
    let errors = v["errors"].as_array().expect("errors");
    assert!(
        !errors.is_empty()
            && errors
                .iter()
                .all(|e| e.as_str().is_some_and(|e| e.contains("shop.yaml:"))),
        "{v}"
    );

    // The CLI: --url without a scheme, the token from --token-file or BURNWATCH_TOKEN, and
    // an author where $USER is unset.
    let url = agent.to_string();
    let run = |args: &[&str], env_token: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_burnwatch"));
        c.args(args)
            .env_remove("USER")
            .env_remove("BURNWATCH_TOKEN")
            .env("NO_COLOR", "1");
        if env_token {
            c.env("BURNWATCH_TOKEN", TOKEN);
        }
        c.output().expect("run burnwatch")
    };
    let out = run(&["silence", "list", "--url", &url], false);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        ids.iter().all(|id| text(&out.stdout).contains(id.as_str())),
        "{}",
        text(&out.stdout)
    );
    let out = run(&["silence", "expire", &ids[0], "--url", &url], false);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("401"), "{}", text(&out.stderr));
    let tf = token_file.display().to_string();
    let out = run(
        &[
            "silence",
            "expire",
            &ids[0],
            "--url",
            &url,
            "--token-file",
            &tf,
        ],
        false,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let add = [
        "silence",
        "add",
        "alertname=\"B\"",
        "--duration",
        "30m",
        "--comment",
        "cron",
        "--url",
        &url,
    ];
    let out = run(&add, true);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let id = text(&out.stdout).trim().to_owned();
    let s = get_json(agent, &format!("/api/v1/silences/{id}"))
        .await
        .expect("silence");
    assert!(
        s["createdBy"]
            .as_str()
            .is_some_and(|a| a.starts_with("burnwatch")),
        "{s}"
    );
    let out = run(&["status", "--url", &url, "--token-file", &tf], false);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protect_reads_closes_everything_but_health() {
    let rules = burnwatch::rules::load_str("r.yaml", &shop_rules("")).expect("rules");
    let t = burnwatch::time::Timestamp(1_780_000_000_000);
    let mut ev = burnwatch::evaluator::Evaluator::new(rules, t);
    let (_tx, rx) = tokio::sync::watch::channel(Arc::new(ev.evaluate(t)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("rules.yaml"), shop_rules("")).expect("rules");
    std::fs::write(dir.path().join("t"), TOKEN).expect("token");
    let api = burnwatch::config::parse(
        &dir.path().join("bw.yaml"),
        b"rules: [rules.yaml]\napi: {token: {file: t}, protect_reads: true}\n",
    )
    .expect("config")
    .api;
    let opts = burnwatch::server::ServerOptions::from_api(&api, Default::default());
    let stop = burnwatch::shutdown::Shutdown::new();
    let server = tokio::spawn(burnwatch::server::serve_api(
        listener,
        rx,
        opts,
        stop.clone(),
    ));
    let bearer = format!("Bearer {TOKEN}");
    for path in [
        "/api/v1/status",
        "/api/v1/slos",
        "/metrics",
        "/api/v1/alerts",
    ] {
        let (code, _, _) = raw(addr, "GET", path, &[], "").await;
        assert_eq!(code, 401, "{path}");
        let (code, _, _) = raw(addr, "GET", path, &[("authorization", &bearer)], "").await;
        assert_ne!(code, 401, "{path}");
    }
    for path in ["/healthz", "/readyz"] {
        let (code, _, _) = raw(addr, "GET", path, &[], "").await;
        assert_eq!(code, 200, "{path}");
    }
    // A CORS preflight gets no allowance.
    let (code, h, _) = raw(
        addr,
        "OPTIONS",
        "/api/v1/silences",
        &[("origin", "http://evil.example")],
        "",
    )
    .await;
    assert!(
        code >= 400 && !h.contains_key("access-control-allow-origin"),
        "{code}"
    );
    stop.trigger();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("server stops")
        .expect("joins")
        .expect("serves");
}

/// Waits for a child to exit within 30 s (killing it otherwise): its exit code and stderr.
fn exit_of(mut cmd: Command) -> (Option<i32>, String) {
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let end = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break Some(s);
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read as _;
        let _ = e.read_to_string(&mut err);
    }
    (status.and_then(|s| s.code()), err)
}

#[test]
fn a_listen_other_hosts_reach_refuses_to_start_without_a_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("shop.yaml"), shop_rules("")).expect("rules");
    let cfg = dir.path().join("burnwatch.yaml");
    let port = free_addr().port();
    std::fs::write(
        &cfg,
        format!("listen: 0.0.0.0:{port}\nrules: [shop.yaml]\n"),
    )
    .expect("config");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_burnwatch"));
    cmd.args(["run", "--config"]).arg(&cfg);
    let (code, err) = exit_of(cmd);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("api: {token: {file: /etc/burnwatch/api-token}}")
            && err.contains("api.allow_unauthenticated: true"),
        "{err}"
    );
}

#[test]
fn every_client_command_reports_an_unreachable_agent_the_same_way() {
    let closed = free_addr();
    let mut lines = Vec::new();
    for args in [
        vec!["status"],
        vec!["alerts"],
        vec!["silence", "list"],
        vec!["silence", "expire", "x"],
        vec![
            "silence",
            "add",
            "a=\"b\"",
            "--duration",
            "1h",
            "--comment",
            "c",
        ],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_burnwatch"))
            .args(&args)
            .args(["--url", &closed.to_string()])
            .env_remove("USER")
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = text(&out.stderr);
        let first = err.lines().next().unwrap_or_default().to_owned();
        assert!(
            first.starts_with(&format!(
                "burnwatch: cannot reach the agent at http://{closed}: "
            )),
            "{args:?}: {err}"
        );
        lines.push(first);
    }
    lines.dedup();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    // The demo's durations take units, as everywhere; a bare number gets a hint.
    let out = Command::new(env!("CARGO_BIN_EXE_burnwatch"))
        .args(["demo", "--outage-after", "60"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("write e.g. 60s"),
        "{}",
        text(&out.stderr)
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_burnwatch"));
    cmd.args([
        "demo",
        "--outage-after",
        "1s",
        "--outage-for",
        "1s",
        "--print-every",
        "1s",
        "--duration",
        "2s",
        "--listen",
    ])
    .arg(free_addr().to_string())
    .arg("--data-dir")
    .arg(dir.path());
    let (code, err) = exit_of(cmd);
    assert_eq!(code, Some(0), "{err}");
}

/// Open file descriptors of a process.
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// One slow client: `head` then, every 300 ms, one more byte of `drip` (nothing when empty),
/// for at most 30 s. Whether the agent cut it (closed, or answered and closed).
async fn slow_client(addr: SocketAddr, head: String, drip: bool) -> bool {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return true;
    };
    if s.write_all(head.as_bytes()).await.is_err() {
        return true;
    }
    let mut buf = [0u8; 1024];
    for _ in 0..100 {
        tokio::select! {
            r = s.read(&mut buf) => match r {
                Ok(0) | Err(_) => return true,
                // An answer (408): keep reading until the agent closes.
                Ok(_) => continue,
            },
            _ = tokio::time::sleep(Duration::from_millis(300)) => {
                if drip && s.write_all(b" ").await.is_err() {
                    return true;
                }
            }
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_cannot_take_the_agents_file_descriptors() {
    // The probe's target: accepts and drops connections.
    let target = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let target_addr = target.local_addr().expect("addr");
    let accept = tokio::spawn(async move {
        while let Ok((c, _)) = target.accept().await {
            drop(c);
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("shop.yaml"),
        format!("version: burnwatch/v1\nservice: shop\nprobes:\n  - name: p\n    tcp: {{address: '{target_addr}'}}\n    interval: 1s\nslos:\n  - name: up\n    objective: 99\n    indicator: {{probe: p}}\n"),
    )
    .expect("rules");
    let agent = free_addr();
    let cfg = dir.path().join("burnwatch.yaml");
    std::fs::write(
        &cfg,
        format!("listen: {agent}\nrules: [shop.yaml]\nevaluation_interval: 1s\napi: {{max_connections: 16, request_timeout: 1s}}\n"),
    )
    .expect("config");
    // 96 descriptors: 150 slow clients would take them all without the connection limit
    // (as 1,100 did against the default 1024), and the probe would fail with EMFILE.
    let child = common::Proc(
        Command::new("prlimit")
            .arg("--nofile=96")
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_burnwatch"))
            .args(["run", "--config"])
            .arg(&cfg)
            .env("RUST_LOG", "error")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("prlimit (util-linux) runs burnwatch"),
    );
    let pid = child.0.id();
    let probe = |v: &Value| {
        (
            v["probes"][0]["checks_total"].as_u64().unwrap_or(0),
            v["probes"][0]["failures_total"].as_u64().unwrap_or(0),
        )
    };
    let before = wait_for("two probe checks", || async {
        let v = get_json(agent, "/api/v1/probes").await?;
        let p = probe(&v);
        if p.0 >= 2 { Ok(p) } else { Err(format!("{v}")) }
    })
    .await;
    let baseline = fds(pid);

    let drip_head = "POST /api/v1/silences HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{".to_owned();
    let idle_head = "GET /api/v1/slos HTTP/1.1\r\nHo".to_owned();
    // A whole request, then an idle kept-alive connection.
    let kept_alive = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".to_owned();
    let mut clients = tokio::task::JoinSet::new();
    for i in 0..150 {
        let (head, drip) = match i % 3 {
            0 => (drip_head.clone(), true),
            1 => (idle_head.clone(), false),
            _ => (kept_alive.clone(), false),
        };
        clients.spawn(slow_client(agent, head, drip));
    }
    let mut most = 0;
    let mut cut = 0;
    let mut waited = 0;
    while !clients.is_empty() && waited < 400 {
        most = most.max(fds(pid));
        while let Some(r) = clients.try_join_next() {
            cut += usize::from(r.expect("client task"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    while let Some(r) = clients.join_next().await {
        cut += usize::from(r.expect("client task"));
    }
    eprintln!("descriptors: baseline {baseline}, most under attack {most}; {cut} of 150 cut");
    assert_eq!(
        cut, 150,
        "slow clients were not cut after api.request_timeout"
    );
    assert!(
        most <= baseline + 16 + 8,
        "the agent held {most} descriptors under attack (baseline {baseline}, limit 16 connections)"
    );
    // The agent's own checks went on, and none failed.
    let after = wait_for("more probe checks", || async {
        let v = get_json(agent, "/api/v1/probes").await?;
        let p = probe(&v);
        if p.0 >= before.0 + 3 {
            Ok(p)
        } else {
            Err(format!("{v}"))
        }
    })
    .await;
    assert_eq!(
        after.1, before.1,
        "probe failures during the attack: {before:?} -> {after:?}"
    );
    accept.abort();
    drop(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silence_is_acknowledged_only_once_saved() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("shop.yaml"), shop_rules("")).expect("rules");
    let agent = free_addr();
    let cfg = dir.path().join("burnwatch.yaml");
    std::fs::write(
        &cfg,
        format!("listen: {agent}\nrules: [shop.yaml]\nevaluation_interval: 1s\ndata_dir: data\n"),
    )
    .expect("config");
    let child = run_agent(&cfg);
    wait_for("the agent", || get_json(agent, "/readyz")).await;
    // The state's log cannot be written (as on a lost disk): it was moved away and a
    // directory stands in its place.
    let log = dir.path().join("data/alerting.bwcp.log");
    let away = dir.path().join("data/alerting.bwcp.log.away");
    std::fs::rename(&log, &away).expect("move the log away");
    std::fs::create_dir(&log).expect("block the log");
    let (code, v) = request(
        agent,
        "POST",
        "/api/v1/silences",
        &silence_body("1h", "alertname=\\\"A\\\""),
    )
    .await
    .expect("answer");
    assert_eq!(code, 500, "{v}");
    assert!(
        v["error"].as_str().is_some_and(|e| e.contains("not saved")),
        "{v}"
    );
    let v = get_json(agent, "/api/v1/silences").await.expect("silences");
    assert_eq!(
        v["silences"],
        serde_json::json!([]),
        "nothing acknowledged, nothing kept"
    );
    // Once the log is back the same request is saved, and survives a crash.
    std::fs::remove_dir(&log).expect("unblock");
    std::fs::rename(&away, &log).expect("put the log back");
    let (code, v) = request(
        agent,
        "POST",
        "/api/v1/silences",
        &silence_body("1h", "alertname=\\\"A\\\""),
    )
    .await
    .expect("answer");
    assert_eq!(code, 200, "{v}");
    let id = v["silenceID"].as_str().expect("id").to_owned();
    drop(child); // SIGKILL
    let _again = run_agent(&cfg);
    let path = format!("/api/v1/silences/{id}");
    let s = wait_for("the silence after the crash", || get_json(agent, &path)).await;
    assert_eq!(s["status"]["state"], "active", "{s}");
}
