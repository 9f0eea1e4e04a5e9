//! `/metrics` over a real socket from the in-process server: gzip-compressed exactly when the
//! request's `Accept-Encoding` accepts gzip (as Prometheus's does), with `Content-Encoding` and
//! `Vary`; the decoded body is byte for byte the page rendered from the same snapshot, and a
//! client that does not ask (or refuses with `q=0`) gets the plain page.

use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::Arc;

use burnwatch::export::prometheus::{PageOptions, render};
use burnwatch::exposition::Format;
use burnwatch::rules::load_str;
use burnwatch::shutdown::Shutdown;
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
