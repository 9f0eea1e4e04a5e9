//! `/metrics` over a real socket from the in-process server: gzip-compressed exactly when the
//! request's `Accept-Encoding` accepts gzip (as Prometheus's does), with `Content-Encoding` and
//! `Vary`; the decoded body is byte for byte the page rendered from the same snapshot, and a
//! client that does not ask (or refuses with `q=0`) gets the plain page.
//!
//! The self-metrics of a `burnwatch run` agent that cannot keep up: with one probe slot for
//! three probes whose checks take most of their interval, checks start late and scheduled
//! checks are skipped, and `/metrics` counts both per probe; the queue gauges show the
//! configured queue.

use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::Arc;

use burnwatch::export::prometheus::{PageOptions, render};
use burnwatch::exposition::Format;
use burnwatch::rules::load_str;
use burnwatch::shutdown::Shutdown;
use burnwatch::time::Dur;

use crate::common::{free_addr, run_agent, wait_for};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::watch;

const RULES: &str = r#"
version: burnwatch/v1
service: shop
probes:
  - name: home
    http: {url: "http://127.0.0.1:1/"}
    interval: 10s
slos:
  - name: up
    objective: 99.5
    indicator: {probe: home}
"#;

/// One `GET /metrics` with `headers`: (lower-cased response headers, body).
async fn get(addr: SocketAddr, headers: &str) -> (Vec<(String, String)>, Vec<u8>) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req =
        format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}\r\n");
    s.write_all(req.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.expect("read");
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let head = String::from_utf8(raw[..end].to_vec()).expect("ASCII headers");
    let mut lines = head.lines();
    assert!(lines.next().is_some_and(|l| l.contains(" 200 ")), "{head}");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (headers, raw[end + 4..].to_vec())
}

fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_gzipped_for_clients_that_ask_and_plain_for_the_rest() {
    let rules = load_str("r.yaml", RULES).expect("rules");
    let snap = Arc::new(burnwatch::evaluator::probe_fixture(
        rules,
        1_780_000_000_000,
    ));
    let (_tx, snaps) = watch::channel(snap.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let shutdown = Shutdown::new();
    let server = tokio::spawn(burnwatch::server::serve(listener, snaps, shutdown.clone()));

    let text = render(&snap, None, PageOptions::default(), Format::Text);
    let om = render(&snap, None, PageOptions::default(), Format::OpenMetrics);
    assert!(text.contains("burnwatch_slo_objective_ratio{"), "{text}");

    // What Prometheus sends.
    let (h, body) = get(
        addr,
        &format!("Accept: {}\r\nAccept-Encoding: gzip\r\n", Format::ACCEPT),
    )
    .await;
    assert_eq!(header(&h, "content-encoding"), Some("gzip"), "{h:?}");
    assert_eq!(header(&h, "vary"), Some("Accept, Accept-Encoding"));
    assert!(body.len() < om.len(), "{} vs {}", body.len(), om.len());
    let mut decoded = String::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_string(&mut decoded)
        .expect("a gzip body");
    assert_eq!(decoded, om);

    // Other spellings that accept gzip.
    for enc in ["deflate, GZIP;q=0.5", "br, *"] {
        let (h, body) = get(addr, &format!("Accept-Encoding: {enc}\r\n")).await;
        assert_eq!(header(&h, "content-encoding"), Some("gzip"), "{enc}");
        let mut decoded = String::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_string(&mut decoded)
            .expect("a gzip body");
        assert_eq!(decoded, text, "{enc}");
    }

    // No header, gzip refused, or only other codings: the plain page.
    for headers in [
        "",
        "Accept-Encoding: gzip;q=0\r\n",
        "Accept-Encoding: gzip;q=0, *\r\n",
        "Accept-Encoding: identity, br\r\n",
        "Accept-Encoding: *;q=0\r\n",
    ] {
        let (h, body) = get(addr, headers).await;
        assert_eq!(header(&h, "content-encoding"), None, "{headers:?}");
        assert_eq!(header(&h, "vary"), Some("Accept, Accept-Encoding"));
        assert_eq!(String::from_utf8(body).expect("text"), text, "{headers:?}");
    }

    shutdown.trigger();
    server.await.expect("joins").expect("serves");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_cannot_keep_up_counts_late_and_missed_checks() {
    // Accepts connections (the kernel does, from the backlog) and never answers: every check
    // runs into its 900 ms timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_addr = silent.local_addr().expect("address");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rules = String::from("version: burnwatch/v1\nservice: shop\nprobes:\n");
    for p in ["a", "b", "c"] {
        rules.push_str(&format!(
            "  - name: {p}\n    http: {{url: 'http://{silent_addr}/'}}\n    interval: 1s\n    timeout: 900ms\n"
        ));
    }
    rules.push_str("slos:\n  - name: up\n    objective: 99\n    indicator: {probe: a}\n");
    std::fs::write(dir.path().join("shop.yaml"), rules).expect("rules");
    let addr = free_addr();
    let cfg = dir.path().join("burnwatch.yaml");
    std::fs::write(
        &cfg,
        format!(
            "listen: {addr}\nrules: [shop.yaml]\nevaluation_interval: 1s\nmax_concurrent_probes: 1\nqueue_length: 77\n"
        ),
    )
    .expect("config");
    let _agent = run_agent(&cfg);

    let prober = burnwatch::probe::Prober::new(&[]).expect("prober");
    let url = format!("http://{addr}/metrics");
    let value = |samples: &[burnwatch::exposition::OwnedSample],
                 name: &str,
                 probe: Option<&str>| {
        samples
            .iter()
            .filter(|s| {
                s.name == name
                    && probe.is_none_or(|p| s.labels.iter().any(|(k, v)| k == "probe" && v == p))
            })
            .map(|s| s.value)
            .sum::<f64>()
    };
    let samples = wait_for("late and skipped checks of every probe", || async {
        let r = prober
            .fetch(&burnwatch::probe::FetchRequest::new(
                &url,
                Dur::from_secs(2),
                16 << 20,
            ))
            .await
            .map_err(|e| e.to_string())?;
        let samples = burnwatch::exposition::parse_owned(
            &r.body,
            Format::from_content_type(r.content_type.as_deref()),
        )
        .map_err(|e| e.to_string())?;
        let behind = ["a", "b", "c"].iter().all(|p| {
            value(&samples, "burnwatch_probe_checks_late_total", Some(p)) >= 1.0
                && value(&samples, "burnwatch_probe_checks_missed_total", Some(p)) >= 1.0
        });
        if behind {
            Ok(samples)
        } else {
            Err("not behind yet".to_owned())
        }
    })
    .await;
    assert_eq!(
        value(&samples, "burnwatch_observation_queue_capacity", None),
        77.0
    );
    let queued = value(&samples, "burnwatch_observation_queue_length", None);
    assert!((0.0..=77.0).contains(&queued), "{queued}");
    // Every family is there, at 0 for what did not happen.
    for name in [
        "burnwatch_evaluations_late_total",
        "burnwatch_evaluations_missed_total",
        "burnwatch_observations_stale_total",
        "burnwatch_probe_results_dropped_total",
    ] {
        assert!(samples.iter().any(|s| s.name == name), "{name}");
    }
    assert_eq!(
        value(&samples, "burnwatch_observations_stale_total", None),
        0.0
    );
}
