//! End-to-end checks of the prober against local servers on 127.0.0.1: a hyper HTTP server, the
//! same behind TLS with rcgen certificates, a raw HTTP server for chunked bodies, and a TCP line
//! server. Every wait is bounded by the probe's own timeout or an explicit deadline.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::common;

use common::TestPki;

use burnwatch::probe::{Failure, FetchRequest, PROBE_BODY_CAP, ProbeOutcome, Prober, USER_AGENT};
use burnwatch::rules::model::{HttpProbe, Probe, ProbeKind, StatusRange};
use burnwatch::time::Dur;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// Counts live heap bytes and their peak, to prove a gzip bomb is never inflated in memory.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: delegates every call to the system allocator unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A test never waits longer than this for anything.
const TEST_DEADLINE: Duration = Duration::from_secs(20);

const MARKER: &str = "BURNWATCH-MARKER";

/// 100 MB of zeros, gzipped once per test binary.
fn gzip_bomb() -> &'static Bytes {
    static BOMB: OnceLock<Bytes> = OnceLock::new();
    BOMB.get_or_init(|| {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..100 {
            enc.write_all(&zeros).expect("in-memory write");
        }
        Bytes::from(enc.finish().expect("in-memory write"))
    })
}

fn gzip(data: &[u8]) -> Bytes {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).expect("in-memory write");
    Bytes::from(enc.finish().expect("in-memory write"))
}

fn gzip_page() -> String {
    (0..2000).map(|i| format!("metric_{i} {i}\n")).collect()
}

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let method = req.method().to_string();
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let reply = |status: u16, body: Bytes| {
        Response::builder()
            .status(status)
            .header("content-type", "text/plain; version=0.0.4")
            .body(Full::new(body))
            .expect("valid response")
    };
    let redirect = |status: u16, to: String| {
        Response::builder()
            .status(status)
            .header("location", to)
            .body(Full::new(Bytes::new()))
            .expect("valid response")
    };
    let resp = match path.as_str() {
        "/ok" => reply(200, Bytes::from(format!("all good {MARKER}\n"))),
        "/plain" => reply(200, Bytes::from_static(b"nothing to see\n")),
        "/503" => reply(503, Bytes::from_static(b"unavailable\n")),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            reply(200, Bytes::new())
        }
        "/loop" => redirect(302, "/loop".to_owned()),
        "/see-other" => redirect(303, "/echo-method".to_owned()),
        "/temporary" => redirect(307, "/echo-method".to_owned()),
        "/echo-method" => {
            let body = req.into_body().collect().await.map(|b| b.to_bytes());
            let body = String::from_utf8_lossy(&body.unwrap_or_default()).into_owned();
            reply(200, Bytes::from(format!("{method} {body}")))
        }
        "/echo-headers" => reply(
            200,
            Bytes::from(format!(
                "ua={} x={} host={}",
                header("user-agent"),
                header("x-test"),
                header("host")
            )),
        ),
        "/big" => reply(200, Bytes::from(vec![b'a'; 2 * PROBE_BODY_CAP])),
        "/gzip" => {
            if header("accept-encoding").contains("gzip") {
                let mut resp = reply(200, gzip(gzip_page().as_bytes()));
                resp.headers_mut()
                    .insert("content-encoding", "gzip".parse().expect("valid"));
                resp
            } else {
                reply(406, Bytes::from_static(b"want gzip\n"))
            }
        }
        "/bomb" => {
            let mut resp = reply(200, gzip_bomb().clone());
            resp.headers_mut()
                .insert("content-encoding", "gzip".parse().expect("valid"));
            resp
        }
        p if p.starts_with("/redirect/") => {
            // `/redirect/N` points (relatively) at `/redirect/N-1`; `/redirect/0` is the end.
            let n: u32 = p["/redirect/".len()..].parse().unwrap_or(0);
            if n == 0 {
                reply(200, Bytes::from_static(b"landed\n"))
            } else {
                redirect(302, format!("{}", n - 1))
            }
        }
        _ => reply(404, Bytes::from_static(b"no such page\n")),
    };
    Ok(resp)
}

async fn serve_io<I>(io: I)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), hyper::service::service_fn(handle))
        .await;
}

/// Starts the HTTP test server; returns its base URL.
async fn http_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve_io(stream));
        }
    });
    format!("http://{addr}")
}

fn probe(kind: ProbeKind, timeout: Dur) -> Probe {
    Probe {
        file: PathBuf::from("probes.yaml"),
        name: "test".to_owned(),
        service: "probes".to_owned(),
        kind,
        interval: Dur::from_secs(30),
        timeout,
        labels: BTreeMap::new(),
        depends_on: Vec::new(),
        alert: None,
    }
}

fn http(url: String) -> HttpProbe {
    HttpProbe {
        url,
        method: "GET".to_owned(),
        headers: BTreeMap::new(),
        body: None,
        expect_status: Vec::new(),
        body_matches: None,
        body_not_matches: None,
        follow_redirects: true,
        tls_verify: true,
        ca_file: None,
    }
}

fn regex(re: &str) -> Option<Arc<regex::Regex>> {
    Some(Arc::new(regex::Regex::new(re).expect("valid regex")))
}

/// Runs a probe with the test deadline as a backstop and checks the invariants every outcome
/// must keep: timings finite and non-negative, phases within the duration, the duration within
/// the timeout, `failure` set exactly when not `success`.
async fn run(prober: &Prober, p: &Probe) -> ProbeOutcome {
    let before = wall_ms();
    let out = tokio::time::timeout(TEST_DEADLINE, prober.run(p))
        .await
        .expect("a probe returns within its timeout");
    let ph = out.phases;
    for v in [ph.dns, ph.connect, ph.tls, ph.first_byte, ph.transfer] {
        assert!(v.is_finite() && v >= 0.0, "{out:?}");
    }
    assert!(out.duration_secs.is_finite(), "{out:?}");
    assert!(ph.total() <= out.duration_secs + 1e-9, "{out:?}");
    assert!(
        out.duration_secs <= p.timeout.as_secs_f64() + 0.2,
        "took {} s for a {} timeout",
        out.duration_secs,
        p.timeout
    );
    assert!(
        out.started_ms >= before && out.started_ms <= wall_ms(),
        "{out:?}"
    );
    assert_eq!(out.success, out.failure.is_none(), "{out:?}");
    out
}

fn wall_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn reason(out: &ProbeOutcome) -> &'static str {
    out.failure.as_ref().map_or("ok", Failure::reason)
}

const T: Dur = Dur::from_secs(5);

/// Runs an HTTP probe with the default timeout `T`.
async fn run_http(prober: &Prober, h: HttpProbe) -> ProbeOutcome {
    run(prober, &probe(ProbeKind::Http(h), T)).await
}

/// Runs a default HTTP probe (GET, 2xx) of `url`.
async fn get(prober: &Prober, url: String) -> ProbeOutcome {
    run_http(prober, http(url)).await
}

#[tokio::test]
async fn http_success_and_phases() {
    let base = http_server().await;
    let prober = Prober::new(&[]).expect("prober");
    let out = get(&prober, format!("{base}/ok")).await;
    assert!(out.success, "{out:?}");
    assert_eq!(out.status, Some(200));
    assert_eq!(out.cert_not_after_ms, None);
    assert_eq!(out.phases.tls, 0.0, "no TLS on http");
    assert!(
        out.phases.connect > 0.0 && out.phases.first_byte > 0.0,
        "{out:?}"
    );
    assert!(out.phases.transfer > 0.0, "the body was read: {out:?}");
}

#[tokio::test]
async fn http_status_checks() {
    let base = http_server().await;
    let prober = Prober::new(&[]).expect("prober");
    let out = get(&prober, format!("{base}/503")).await;
    assert_eq!(reason(&out), "status");
    assert_eq!(out.status, Some(503));
    assert_eq!(
        out.failure.expect("failed").to_string(),
        "status 503 (expected 200-299)"
    );
    let mut h = http(format!("{base}/503"));
    h.expect_status = vec![
        StatusRange { lo: 200, hi: 299 },
        StatusRange { lo: 503, hi: 503 },
    ];
    let out = run_http(&prober, h).await;
    assert!(out.success, "{out:?}");
    let mut h = http(format!("{base}/ok"));
    h.expect_status = vec![StatusRange { lo: 500, hi: 599 }];
    let out = run_http(&prober, h).await;
    assert_eq!(
        out.failure.expect("failed").to_string(),
        "status 200 (expected 500-599)"
    );
}

#[tokio::test]
async fn http_timeout_covers_the_whole_check() {
    let base = http_server().await;
    let prober = Prober::new(&[]).expect("prober");
    let p = probe(
        ProbeKind::Http(http(format!("{base}/slow"))),
        Dur::from_millis(300),
    );
    let out = run(&prober, &p).await;
    assert_eq!(
        out.failure.as_ref().expect("failed").to_string(),
        "timeout after 300ms during first_byte"
    );
    assert!(out.duration_secs >= 0.3, "{out:?}");
    assert!(out.phases.first_byte >= 0.25, "{out:?}");
}

#[tokio::test]
async fn redirects() {
    let base = http_server().await;
    let prober = Prober::new(&[]).expect("prober");
    // Exactly MAX_REDIRECTS hops are followed; one more fails.
    let out = get(&prober, format!("{base}/redirect/10")).await;
    assert!(out.success, "{out:?}");
    assert_eq!(out.status, Some(200));
    let out = get(&prober, format!("{base}/redirect/11")).await;
    assert_eq!(reason(&out), "too_many_redirects");
    let out = get(&prober, format!("{base}/loop")).await;
    assert_eq!(reason(&out), "too_many_redirects");
    assert_eq!(
        out.failure.expect("failed").to_string(),
        "more than 10 redirects"
    );
    // Not following: the 302 itself is judged.
    let mut h = http(format!("{base}/redirect/3"));
    h.follow_redirects = false;
    let out = run_http(&prober, h).await;
    assert_eq!((reason(&out), out.status), ("status", Some(302)));
    // 303 turns a POST into a body-less GET; 307 repeats it.
    let mut h = http(format!("{base}/see-other"));
    h.method = "POST".to_owned();
    h.body = Some("payload".to_owned());
    h.body_matches = regex("^GET $");
    let out = run_http(&prober, h.clone()).await;
    assert!(out.success, "{out:?}");
    h.url = format!("{base}/temporary");
    h.body_matches = regex("^POST payload$");
    let out = run_http(&prober, h).await;
    assert!(out.success, "{out:?}");
}

#[tokio::test]
async fn body_regexes_and_cap() {
    let base = http_server().await;
    let prober = Prober::new(&[]).expect("prober");
    let mut h = http(format!("{base}/ok"));
    h.body_matches = regex(MARKER);
    assert!(run_http(&prober, h.clone()).await.success);
    h.url = format!("{base}/plain");
    let out = run_http(&prober, h).await;
    assert_eq!(reason(&out), "body_mismatch");
    let mut h = http(format!("{base}/ok"));
    h.body_not_matches = regex(MARKER);
    let out = run_http(&prober, h.clone()).await;
    assert_eq!(reason(&out), "body_forbidden");
    h.url = format!("{base}/plain");
    assert!(run_http(&prober, h).await.success);
    // A 2 MiB body: too large to match against, fine to ignore.
    let mut h = http(format!("{base}/big"));
    assert!(run_http(&prober, h.clone()).await.success);
    h.body_not_matches = regex("b");
    let out = run_http(&prober, h).await;
    assert_eq!(reason(&out), "body_too_large");
}

#[tokio::test]
async fn request_headers() {
    let base = http_server().await;
    let prober = Prober::new(&[]).expect("prober");
    let mut h = http(format!("{base}/echo-headers"));
    h.headers.insert("X-Test".to_owned(), "yes".to_owned());
    let port = base.rsplit(':').next().expect("port");
    h.body_matches = regex(&format!(
        "^ua={} x=yes host=127\\.0\\.0\\.1:{port}$",
        regex::escape(USER_AGENT)
    ));
    let out = run_http(&prober, h).await;
    assert!(out.success, "{out:?}");
    assert!(USER_AGENT.starts_with("burnwatch/"));
}

#[tokio::test]
async fn refused_and_bad_url() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let prober = Prober::new(&[]).expect("prober");
    let out = get(&prober, format!("http://{addr}/")).await;
    assert_eq!(reason(&out), "refused");
    assert_eq!(out.phases.first_byte, 0.0);
    let out = get(&prober, "ftp://x/".to_owned()).await;
    assert_eq!(reason(&out), "config");
}

fn at(y: i32, mo: u8, d: u8, h: u64, mi: u64, s: u64) -> time::OffsetDateTime {
    rcgen::date_time_ymd(y, mo, d) + Duration::from_secs(h * 3600 + mi * 60 + s)
}

fn jiff_ms(y: i16, mo: i8, d: i8, h: i8, mi: i8, s: i8) -> i64 {
    jiff::civil::datetime(y, mo, d, h, mi, s, 0)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .expect("valid")
        .timestamp()
        .as_millisecond()
}

/// Starts the test handler behind TLS with the given leaf; returns the base URL.
async fn tls_server(pki: &TestPki) -> String {
    let acceptor = tokio_rustls::TlsAcceptor::from(pki.server_config());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(stream).await {
                    serve_io(tls).await;
                }
            });
        }
    });
    format!("https://{addr}")
}

fn ca_file(pki: &TestPki) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    f.write_all(pki.ca_pem.as_bytes()).expect("write");
    f
}

#[tokio::test]
async fn tls_verification_and_not_after() {
    // UTCTime (before 2050) and GeneralizedTime (from 2050 on) notAfter encodings.
    for (not_after, want) in [
        (
            at(2049, 6, 30, 13, 14, 15),
            jiff_ms(2049, 6, 30, 13, 14, 15),
        ),
        (
            at(2051, 2, 28, 23, 59, 58),
            jiff_ms(2051, 2, 28, 23, 59, 58),
        ),
    ] {
        let pki = TestPki::with_validity(rcgen::date_time_ymd(2020, 1, 1), not_after);
        let base = tls_server(&pki).await;
        let ca = ca_file(&pki);
        let mut h = http(format!("{base}/ok"));
        h.body_matches = regex(MARKER);
        let prober = Prober::new(&[]).expect("prober");
        // Mozilla roots only: the test CA is unknown.
        let out = run_http(&prober, h.clone()).await;
        assert_eq!(reason(&out), "tls", "{out:?}");
        assert!(out.phases.tls > 0.0);
        // With the CA file.
        h.ca_file = Some(ca.path().to_owned());
        let p = probe(ProbeKind::Http(h.clone()), T);
        let prober = Prober::new(std::slice::from_ref(&p)).expect("prober");
        let out = run(&prober, &p).await;
        assert!(out.success, "{out:?}");
        assert_eq!(out.cert_not_after_ms, Some(want));
        assert!(out.phases.tls > 0.0, "{out:?}");
        // Verification off: no CA needed, notAfter still reported.
        h.ca_file = None;
        h.tls_verify = false;
        let out = run_http(&prober, h).await;
        assert!(out.success, "{out:?}");
        assert_eq!(out.cert_not_after_ms, Some(want));
    }
}

#[tokio::test]
async fn expired_certificate() {
    let pki = TestPki::with_validity(rcgen::date_time_ymd(2019, 1, 1), at(2020, 1, 1, 12, 34, 56));
    let base = tls_server(&pki).await;
    let ca = ca_file(&pki);
    let mut h = http(format!("{base}/ok"));
    h.ca_file = Some(ca.path().to_owned());
    let prober = Prober::new(&[]).expect("prober");
    let out = run_http(&prober, h.clone()).await;
    assert_eq!(
        out.failure,
        Some(Failure::CertExpired {
            not_after_ms: Some(jiff_ms(2020, 1, 1, 12, 34, 56))
        }),
        "{out:?}"
    );
    assert_eq!(
        out.failure.expect("failed").to_string(),
        "certificate expired (notAfter 2020-01-01T12:34:56Z)"
    );
    // Documented choice: `tls_verify: false` checks nothing about the certificate.
    h.tls_verify = false;
    let out = run_http(&prober, h).await;
    assert!(out.success, "{out:?}");
    assert_eq!(out.cert_not_after_ms, Some(jiff_ms(2020, 1, 1, 12, 34, 56)));
}

#[tokio::test]
async fn bad_ca_file_names_the_file() {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    f.write_all(b"not a certificate\n").expect("write");
    let mut h = http("https://127.0.0.1:1/".to_owned());
    h.ca_file = Some(f.path().to_owned());
    let err = Prober::new(&[probe(ProbeKind::Http(h.clone()), T)]).expect_err("bad CA");
    let text = err.to_string();
    assert!(text.contains(&f.path().display().to_string()), "{text}");
    h.ca_file = Some(PathBuf::from("/nonexistent/ca.pem"));
    let err = Prober::new(&[probe(ProbeKind::Http(h), T)]).expect_err("missing CA");
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
}

#[tokio::test]
async fn tls_handshake_timeout_names_the_phase() {
    // Accepts TCP but never speaks TLS.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let prober = Prober::new(&[]).expect("prober");
    let p = probe(
        ProbeKind::Http(http(format!("https://{addr}/"))),
        Dur::from_millis(200),
    );
    let out = run(&prober, &p).await;
    assert_eq!(
        out.failure.expect("failed").to_string(),
        "timeout after 200ms during tls"
    );
}

/// Replies `PONG` to `PING` and `ERR` to anything else, one line per connection.
async fn line_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut line = String::new();
                let mut reader = tokio::io::BufReader::new(read);
                if reader.read_line(&mut line).await.is_ok() {
                    let reply: &[u8] = if line.trim_end() == "PING" {
                        b"PONG\r\n"
                    } else {
                        b"ERR unknown\r\n"
                    };
                    let _ = write.write_all(reply).await;
                }
            });
        }
    });
    addr.to_string()
}

#[tokio::test]
async fn tcp_probe() {
    let address = line_server().await;
    let prober = Prober::new(&[]).expect("prober");
    let tcp = |send: &str, expect: &str| ProbeKind::Tcp {
        address: address.clone(),
        send: Some(send.to_owned()),
        expect: regex(expect),
    };
    let out = run(&prober, &probe(tcp("PING", "^PONG$"), T)).await;
    assert!(out.success, "{out:?}");
    assert!(out.phases.connect > 0.0 && out.phases.first_byte > 0.0);
    assert_eq!((out.phases.tls, out.phases.transfer), (0.0, 0.0));
    let out = run(&prober, &probe(tcp("HELLO", "^PONG"), T)).await;
    assert_eq!(
        out.failure.expect("failed").to_string(),
        "reply \"ERR unknown\" does not match /^PONG/"
    );
    // Connect only.
    let kind = ProbeKind::Tcp {
        address: address.clone(),
        send: None,
        expect: None,
    };
    assert!(run(&prober, &probe(kind, T)).await.success);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let closed = listener.local_addr().expect("addr").to_string();
    drop(listener);
    let kind = ProbeKind::Tcp {
        address: closed,
        send: None,
        expect: None,
    };
    assert_eq!(reason(&run(&prober, &probe(kind, T)).await), "refused");
}

#[tokio::test]
async fn dns_probe() {
    let prober = Prober::new(&[]).expect("prober");
    let dns = |name: &str, record: &str| ProbeKind::Dns {
        name: name.to_owned(),
        record: record.to_owned(),
    };
    let out = run(&prober, &probe(dns("localhost", "A"), T)).await;
    assert!(out.success, "{out:?}");
    assert!(out.phases.dns > 0.0);
    assert_eq!(out.phases.connect, 0.0);
    let out = run(&prober, &probe(dns("burnwatch-test.invalid", "A"), T)).await;
    assert_eq!(reason(&out), "dns", "{out:?}");
    let out = run(&prober, &probe(dns("localhost", "MX"), T)).await;
    assert_eq!(reason(&out), "config");
}

#[tokio::test]
async fn fetch_gzip_and_limits() {
    let base = http_server().await;
    let prober = Prober::new(&[]).expect("prober");
    let url = format!("{base}/gzip");
    let accept = [("Accept", "text/plain")];
    let mut req = FetchRequest::new(&url, T, 1 << 20);
    req.headers = &accept;
    let resp = prober.fetch(&req).await.expect("fetch");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, Bytes::from(gzip_page()));
    assert_eq!(
        resp.content_type.as_deref(),
        Some("text/plain; version=0.0.4")
    );
    assert!(resp.phases.total() <= resp.duration_secs + 1e-9);
    assert_eq!(resp.phases.tls, 0.0);
    // The decoded page is 30 890 bytes: one byte less is refused.
    let page = gzip_page().len() as u64;
    let req = FetchRequest::new(&url, T, page);
    assert_eq!(
        prober.fetch(&req).await.expect("fits").body.len() as u64,
        page
    );
    let req = FetchRequest::new(&url, T, page - 1);
    let err = prober.fetch(&req).await.expect_err("too large");
    assert_eq!(err.reason(), "body_too_large");
    assert_eq!(err.status, Some(200));
    // Identity body with a Content-Length over the limit.
    let url = format!("{base}/ok");
    let err = prober
        .fetch(&FetchRequest::new(&url, T, 5))
        .await
        .expect_err("too large");
    assert_eq!(err.failure, Failure::BodyTooLarge(5));
    // Any status comes back as is.
    let url = format!("{base}/503");
    let resp = prober
        .fetch(&FetchRequest::new(&url, T, 100))
        .await
        .expect("fetch");
    assert_eq!((resp.status, &resp.body[..]), (503, &b"unavailable\n"[..]));
}

#[tokio::test]
async fn fetch_refuses_a_gzip_bomb_without_inflating_it() {
    let bomb_len = gzip_bomb().len();
    assert!(
        bomb_len < 1 << 20,
        "the bomb is small on the wire: {bomb_len}"
    );
    let base = http_server().await;
    let prober = Prober::new(&[]).expect("prober");
    let url = format!("{base}/bomb");
    let baseline = LIVE.load(Ordering::Relaxed);
    PEAK.store(baseline, Ordering::Relaxed);
    let err = prober
        .fetch(&FetchRequest::new(&url, T, 1 << 20))
        .await
        .expect_err("bomb");
    let peak = PEAK.load(Ordering::Relaxed);
    assert_eq!(err.failure, Failure::BodyTooLarge(1 << 20));
    // 100 MB inflated would show; the limit plus buffers must stay far below that (other
    // tests of this binary run concurrently, hence the generous bound).
    assert!(
        peak.saturating_sub(baseline) < 24 << 20,
        "peak grew by {} bytes",
        peak - baseline
    );
}

/// Serves one chunked response of `total` bytes in 64 KiB chunks, counting what it managed to
/// write before the client went away.
async fn chunked_server(total: usize) -> (String, tokio::sync::oneshot::Receiver<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        let mut head = [0u8; 1024];
        let _ = stream.read(&mut head).await;
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            .await;
        let chunk = vec![b'x'; 64 << 10];
        let mut sent = 0;
        while sent < total {
            let frame = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
            if stream.write_all(&frame).await.is_err() {
                break;
            }
            sent += chunk.len();
        }
        let _ = stream.write_all(b"0\r\n\r\n").await;
        let _ = tx.send(sent);
    });
    (format!("http://{addr}/"), rx)
}

#[tokio::test]
async fn fetch_stops_reading_an_oversize_chunked_body() {
    let (url, sent) = chunked_server(256 << 20).await;
    let prober = Prober::new(&[]).expect("prober");
    let err = prober
        .fetch(&FetchRequest::new(&url, T, 1 << 20))
        .await
        .expect_err("too large");
    assert_eq!(err.failure, Failure::BodyTooLarge(1 << 20));
    assert!(err.phases.transfer > 0.0);
    let sent = tokio::time::timeout(TEST_DEADLINE, sent)
        .await
        .expect("server done")
        .expect("server reported");
    // The client hung up long before the 256 MiB were written (socket buffers hold a few MiB).
    assert!(sent < 64 << 20, "server wrote {sent} bytes");
}
