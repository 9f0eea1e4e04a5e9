//! Helpers shared by the integration tests that run real peers on loopback: the Prometheus
//! binary, child-process guards, a synthetic target, traffic against it, and bounded JSON GETs.
//! Each test binary uses a subset, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Child;
use std::time::Duration;

use burnwatch::probe::{FetchRequest, Prober};
use burnwatch::synthetic::{self, Behaviour, Service};
use burnwatch::time::Dur;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The `prometheus` binary on PATH; a test that needs it fails (never skips) without it.
pub fn prometheus_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("prometheus"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "the `prometheus` binary is not on PATH: run `bash scripts/test.sh`, which \
                 installs Debian's prometheus package (2.42) that this test needs"
            )
        })
}

/// Kills a child process when the test ends, however it ends.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `burnwatch run --config <config>` as a child (warnings on stderr), killed when the guard
/// drops.
pub fn run_agent(config: &std::path::Path) -> Proc {
    Proc(
        std::process::Command::new(env!("CARGO_BIN_EXE_burnwatch"))
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("start burnwatch run"),
    )
}

/// A loopback address nobody listens on right now.
pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
}

/// One request bounded to 5 s: (status, body).
pub async fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> Result<(u16, Bytes), String> {
    let fetch = async {
        let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", addr.to_string())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_owned())))
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, body))
    };
    tokio::time::timeout(Duration::from_secs(5), fetch)
        .await
        .map_err(|_| format!("{method} {path} timed out"))?
}

/// One GET bounded to 5 s, returning the parsed JSON body (an error for a non-2xx status).
pub async fn get_json(addr: SocketAddr, path: &str) -> Result<Value, String> {
    let (status, body) = exchange(addr, "GET", path, "").await?;
    if !(200..300).contains(&status) {
        return Err(format!("{status}: {}", String::from_utf8_lossy(&body)));
    }
    serde_json::from_slice(&body).map_err(|e| e.to_string())
}

/// One request bounded to 5 s: (status, JSON body, or `Null` when the body is not JSON).
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> Result<(u16, Value), String> {
    let (status, body) = exchange(addr, method, path, body).await?;
    Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

/// Every wait of [`wait_for`] is bounded by this.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Polls `f` until it yields a value, or panics naming `what` and the last error after
/// [`DEADLINE`].
pub async fn wait_for<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let end = std::time::Instant::now() + DEADLINE;
    loop {
        let last = match f().await {
            Ok(v) => return v,
            Err(e) => e,
        };
        assert!(
            std::time::Instant::now() < end,
            "timed out waiting for {what}; last: {last}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A synthetic service on an ephemeral port: (base URL, handle, stop sender).
pub async fn start_service(b: Behaviour) -> (String, Service, watch::Sender<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let svc = Service::new(b);
    let (tx, mut rx) = watch::channel(false);
    tokio::spawn(synthetic::serve(listener, svc.clone(), async move {
        let _ = rx.wait_for(|s| *s).await;
    }));
    (base, svc, tx)
}

/// `n` sequential GETs of the service's API; each must answer 200 or 500.
pub async fn drive(prober: &Prober, base: &str, n: u64) {
    let url = format!("{base}/api/orders");
    for _ in 0..n {
        let r = prober
            .fetch(&FetchRequest::new(&url, Dur::from_secs(5), 1 << 20))
            .await
            .expect("the service answers");
        assert!(r.status == 200 || r.status == 500, "{}", r.status);
    }
}

/// Debian's `prometheus-alertmanager` binary (0.25); a test that needs it fails (never skips)
/// without it.
pub fn alertmanager_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::iter::once(PathBuf::from("/usr/bin/prometheus-alertmanager"))
        .chain(std::env::split_paths(&path).flat_map(|dir| {
            [
                dir.join("prometheus-alertmanager"),
                dir.join("alertmanager"),
            ]
        }))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "the Alertmanager binary is not installed: run `bash scripts/test.sh` or \
                 `apt-get install -y prometheus-alertmanager` (Debian, 0.25)"
            )
        })
}

/// A Python interpreter that can import `module`: `BURNWATCH_TEST_PYTHON` (set by
/// scripts/test.sh), else the venv scripts/test.sh creates under target/, else `python3`.
/// Fails (never skips) with an install hint when none can.
pub fn python_with(module: &str) -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/python");
    let candidates = std::env::var_os("BURNWATCH_TEST_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain([venv, PathBuf::from("python3")]);
    for python in candidates {
        let ok = std::process::Command::new(&python)
            .args(["-c", &format!("import {module}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return python;
        }
    }
    panic!(
        "no Python with the `{module}` module: run `bash scripts/test.sh` (it creates \
         target/test-venv with it) or `pip install {module}`"
    )
}

/// Starts `cmd` with stdout piped and waits (bounded) for a line starting with `ready`; the
/// child is killed when the returned guard drops.
pub fn spawn_until_ready(mut cmd: std::process::Command, ready: &str, within: Duration) -> Proc {
    use std::io::BufRead as _;
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let stdout = child.stdout.take().expect("piped stdout");
    let guard = Proc(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = std::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.starts_with(ready) => return guard,
            Ok(_) => {}
            Err(_) => panic!("{cmd:?} did not print `{ready}` within {within:?}"),
        }
    }
}

/// A test CA and a leaf for 127.0.0.1 signed by it (rcgen), for TLS peers on loopback.
pub struct TestPki {
    /// The CA certificate (what a client is given as `ca_file`).
    pub ca_pem: String,
    /// The leaf certificate.
    pub leaf_pem: String,
    /// The leaf certificate, DER.
    pub leaf_der: Vec<u8>,
    /// The leaf's private key (PKCS#8).
    pub leaf_key_pem: String,
    /// The leaf's private key, PKCS#8 DER.
    pub leaf_key_der: Vec<u8>,
}

/// Where [`TestPki::write_to`] put the PEM files.
pub struct PkiFiles {
    /// The CA certificate.
    pub ca: PathBuf,
    /// The leaf certificate.
    pub cert: PathBuf,
    /// The leaf's private key.
    pub key: PathBuf,
}

impl TestPki {
    /// A CA valid 2000–2099 and a leaf with rcgen's default validity.
    pub fn new() -> TestPki {
        TestPki::build(None)
    }

    /// Like [`TestPki::new`], with the leaf valid from `not_before` to `not_after` (expired or
    /// far-future certificates).
    pub fn with_validity(
        not_before: time::OffsetDateTime,
        not_after: time::OffsetDateTime,
    ) -> TestPki {
        TestPki::build(Some((not_before, not_after)))
    }

    fn build(validity: Option<(time::OffsetDateTime, time::OffsetDateTime)>) -> TestPki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "burnwatch test CA");
        ca.not_before = rcgen::date_time_ymd(2000, 1, 1);
        ca.not_after = rcgen::date_time_ymd(2099, 1, 1);
        let ca_key = KeyPair::generate().expect("key");
        let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca, ca_key);
        let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("params");
        leaf.distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        if let Some((not_before, not_after)) = validity {
            leaf.not_before = not_before;
            leaf.not_after = not_after;
        }
        let leaf_key = KeyPair::generate().expect("key");
        let leaf_cert = leaf
            .signed_by(&leaf_key, &issuer)
            .expect("leaf certificate");
        TestPki {
            ca_pem: ca_cert.pem(),
            leaf_pem: leaf_cert.pem(),
            leaf_der: leaf_cert.der().to_vec(),
            leaf_key_pem: leaf_key.serialize_pem(),
            leaf_key_der: leaf_key.serialize_der(),
        }
    }

    /// A rustls server configuration presenting the leaf (ring provider).
    pub fn server_config(&self) -> std::sync::Arc<rustls::ServerConfig> {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(self.leaf_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.leaf_key_der.clone())),
            )
            .expect("server config");
        std::sync::Arc::new(config)
    }

    /// Writes `ca.pem`, `cert.pem` and `key.pem` into `dir`.
    pub fn write_to(&self, dir: &std::path::Path) -> PkiFiles {
        let out = PkiFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        std::fs::write(&out.ca, &self.ca_pem).expect("write CA");
        std::fs::write(&out.cert, &self.leaf_pem).expect("write cert");
        std::fs::write(&out.key, &self.leaf_key_pem).expect("write key");
        out
    }
}

/// Rules for the synthetic `shop` service at `base`: a health probe, a scrape of its metrics,
/// and availability (with `objective`), latency and probe SLOs.
pub fn shop_rules(base: &str, objective: &str) -> String {
    format!(
        r#"version: burnwatch/v1
service: shop
probes:
  - name: health
    http: {{url: "{base}/healthz"}}
    interval: 1s
scrape:
  - name: shop
    url: {base}/metrics
    interval: 1s
slos:
  - name: availability
    objective: {objective}
    indicator:
      ratio:
        bad: 'demo_http_requests_total{{code=~"5..",job="shop"}}'
        total: 'demo_http_requests_total{{job="shop"}}'
  - name: latency
    objective: 90
    indicator:
      latency_threshold:
        threshold: 300ms
        histogram: 'demo_http_request_duration_seconds{{job="shop"}}'
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1, 2.5, 5, 10]
  - name: health
    objective: 99
    indicator: {{probe: health}}
"#
    )
}

/// What a [`start_receiver`] endpoint got: (path, JSON body) per request, in order.
pub type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, Value)>>>;

/// An HTTP endpoint on loopback standing in for webhook and PagerDuty receivers: answers every
/// request `202 {"status": "success"}` and records it. Returns (address, record, stop sender).
pub async fn start_receiver() -> (SocketAddr, Received, watch::Sender<bool>) {
    use hyper::service::service_fn;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let got: Received = Default::default();
    let (tx, mut rx) = watch::channel(false);
    let record = got.clone();
    tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                _ = rx.wait_for(|s| *s) => return,
                a = listener.accept() => match a {
                    Ok((s, _)) => s,
                    Err(_) => continue,
                },
            };
            let record = record.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let record = record.clone();
                    async move {
                        let path = req.uri().path().to_owned();
                        let body = req.into_body().collect().await?.to_bytes();
                        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        record.lock().expect("not poisoned").push((path, json));
                        let mut r = hyper::Response::new(Full::new(Bytes::from(
                            r#"{"status":"success","message":"Event processed"}"#,
                        )));
                        *r.status_mut() = hyper::StatusCode::ACCEPTED;
                        Ok::<_, hyper::Error>(r)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, got, tx)
}

/// A running aiosmtpd sink (tests/fixtures/smtp_sink.py): where it listens and where it writes
/// one `<n>.json` per accepted message.
pub struct SmtpSink {
    _proc: Proc,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its output directory.
    pub out: PathBuf,
}

impl SmtpSink {
    /// Starts the sink in `mode` (`starttls` or `implicit`) with AUTH for `user`/`password`;
    /// waits (bounded) until it listens.
    pub fn start(
        dir: &std::path::Path,
        pki: &PkiFiles,
        mode: &str,
        user: &str,
        password: &str,
    ) -> Self {
        let python = python_with("aiosmtpd");
        let out = dir.join(format!("mail-{mode}"));
        std::fs::create_dir_all(&out).expect("out dir");
        let port = free_addr().port();
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smtp_sink.py");
        let mut cmd = std::process::Command::new(python);
        cmd.arg(script)
            .arg(port.to_string())
            .arg(&out)
            .arg(&pki.cert)
            .arg(&pki.key)
            .arg(mode)
            .arg(user)
            .arg(password);
        let proc = spawn_until_ready(cmd, "READY", Duration::from_secs(20));
        SmtpSink {
            _proc: proc,
            port,
            out,
        }
    }

    /// The messages accepted so far, in arrival order.
    pub fn messages(&self) -> Vec<Value> {
        (1..)
            .map_while(|i| std::fs::read(self.out.join(format!("{i}.json"))).ok())
            .map(|b| serde_json::from_slice(&b).expect("sink JSON"))
            .collect()
    }

    /// Waits (at most 10s) until `n` messages have arrived; returns the first `n`.
    pub fn wait_messages(&self, n: usize) -> Vec<Value> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let mut found = self.messages();
            if found.len() >= n {
                found.truncate(n);
                return found;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "only {} of {n} messages arrived within 10s",
                found.len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every AUTH attempt so far (`{"ok": .., "tls": ..}` per line of `auth.log`).
    pub fn auth_log(&self) -> Vec<Value> {
        std::fs::read_to_string(self.out.join("auth.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("auth log JSON"))
            .collect()
    }
}

/// The body of a sink message's `mime` part (`text/plain`, `text/html`); panics without one.
pub fn mail_part<'a>(msg: &'a Value, mime: &str) -> &'a str {
    msg["parts"]
        .as_array()
        .expect("parts")
        .iter()
        .find(|p| p["type"] == mime)
        .and_then(|p| p["body"].as_str())
        .unwrap_or_else(|| panic!("no {mime} part in {msg}"))
}

/// A label set from pairs.
pub fn labels(pairs: &[(&str, &str)]) -> burnwatch::rules::model::Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Waits (bounded) until the agent on `agent` has completed two more successful scrapes of its
/// first target than at its first one: every request from then on is counted (its baseline
/// is taken).
pub async fn wait_baseline_scrapes(agent: SocketAddr) {
    let scrapes = || async {
        let t = get_json(agent, "/api/v1/targets").await?;
        t["targets"][0]["scrapes_total"]
            .as_u64()
            .filter(|_| t["targets"][0]["up"] == true)
            .ok_or_else(|| format!("no successful scrape yet: {t}"))
    };
    let first = wait_for("the agent's first scrape", scrapes).await;
    wait_for("the agent's baseline scrape", || async {
        let n = scrapes().await?;
        if n >= first + 2 {
            Ok(())
        } else {
            Err(format!("{n} scrapes"))
        }
    })
    .await;
}

/// Starts the Prometheus 2.42 the test script installs on a free loopback port, scraping
/// `target` (`host:port`) as job `job` every second, its data and log (`prometheus.log`) under
/// `dir`; killed when the guard drops. Callers wait (bounded) for what they need it to store.
pub fn start_prometheus(dir: &std::path::Path, job: &str, target: &str) -> (Proc, SocketAddr) {
    std::fs::create_dir_all(dir).expect("prometheus dir");
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n\
             - job_name: {job}\n  static_configs:\n  - targets: ['{target}']\n"
        ),
    )
    .expect("prometheus config");
    let addr = free_addr();
    let log = std::fs::File::create(dir.join("prometheus.log")).expect("log file");
    let child = std::process::Command::new(prometheus_binary())
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().expect("log handle"))
        .stderr(log)
        .spawn()
        .expect("start prometheus");
    (Proc(child), addr)
}

/// Starts Debian's Alertmanager on a free loopback port (HA off, one receiver that sends
/// nowhere) and waits (bounded) until its API answers.
pub async fn start_alertmanager(dir: &std::path::Path) -> (Proc, SocketAddr) {
    const CONFIG: &str =
        "route:\n  receiver: blackhole\n  group_wait: 1h\nreceivers:\n  - name: blackhole\n";
    let binary = alertmanager_binary();
    let config = dir.join("alertmanager.yml");
    std::fs::write(&config, CONFIG).expect("config");
    let addr = free_addr();
    let child = std::process::Command::new(binary)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", dir.join("am-data").display()))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--cluster.listen-address=")
        .arg("--log.level=warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start alertmanager");
    let proc = Proc(child);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if get_json(addr, "/api/v2/status").await.is_ok() {
            return (proc, addr);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "Alertmanager did not answer within 20s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One request a [`HookSink`] received.
#[derive(Debug, Clone)]
pub struct Hook {
    /// When it arrived, on tokio's clock (simulated under paused time).
    pub at: tokio::time::Instant,
    /// Its body, parsed as JSON.
    pub body: Value,
}

/// An in-process HTTP receiver on 127.0.0.1 that answers 200 to every POST and records each
/// JSON body with the time it was answered.
pub struct HookSink {
    /// Where it listens.
    pub addr: SocketAddr,
    log: std::sync::Arc<std::sync::Mutex<Vec<Hook>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for HookSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HookSink {
    /// Binds and starts serving.
    pub async fn start() -> HookSink {
        HookSink::start_slow(Duration::ZERO).await
    }

    /// Binds and starts serving, taking `delay` over each request before it records and
    /// answers it (a receiver slow enough for a test to act in the middle of a burst).
    pub async fn start_slow(delay: Duration) -> HookSink {
        use http_body_util::Full;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let log: std::sync::Arc<std::sync::Mutex<Vec<Hook>>> = Default::default();
        let log2 = log.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let log = log2.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let log = log.clone();
                            async move {
                                let body = req.into_body().collect().await?.to_bytes();
                                tokio::time::sleep(delay).await;
                                let at = tokio::time::Instant::now();
                                let (status, body) = match serde_json::from_slice(&body) {
                                    Ok(v) => {
                                        log.lock().expect("log").push(Hook { at, body: v });
                                        (200, Bytes::new())
                                    }
                                    Err(e) => (400, Bytes::from(e.to_string())),
                                };
                                Ok::<_, hyper::Error>(
                                    hyper::Response::builder()
                                        .status(status)
                                        .body(Full::new(body))
                                        .expect("response"),
                                )
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        HookSink { addr, log, task }
    }

    /// Its URL for `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Everything received so far, in arrival order.
    pub fn received(&self) -> Vec<Hook> {
        self.log.lock().expect("log").clone()
    }
}

/// `burnwatch run` as a child process with its JSON log appended to a file, so a test can
/// SIGKILL it, start it again on the same data directory and read what every run logged.
pub struct AgentProcess {
    child: Option<Proc>,
    config: PathBuf,
    /// The log file (every run appends).
    pub log: PathBuf,
}

impl AgentProcess {
    /// Starts `burnwatch run --config <config>`; the config should say `log_format: json`.
    pub fn start(config: &std::path::Path, log: &std::path::Path) -> AgentProcess {
        let mut a = AgentProcess {
            child: None,
            config: config.to_path_buf(),
            log: log.to_path_buf(),
        };
        a.spawn();
        a
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the agent log");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_burnwatch"))
            .args(["run", "--config"])
            .arg(&self.config)
            .env_remove("RUST_LOG")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start burnwatch run");
        self.child = Some(Proc(child));
    }

    /// SIGKILL (no shutdown, no final save) and reap.
    pub fn kill(&mut self) {
        let mut proc = self.child.take().expect("the agent runs");
        proc.0.kill().expect("SIGKILL");
        let _ = proc.0.wait();
    }

    /// Starts it again with the same config and data directory.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "kill it first");
        self.spawn();
    }

    /// Every JSON log line of every run so far, in order.
    pub fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits (bounded by `within`) for a log event from index `from` on that satisfies `f`;
    /// returns its index.
    pub async fn wait_event(
        &self,
        from: usize,
        within: Duration,
        what: &str,
        f: impl Fn(&Value) -> bool,
    ) -> usize {
        let deadline = std::time::Instant::now() + within;
        loop {
            let events = self.events();
            if let Some(i) = events.iter().skip(from).position(&f) {
                return from + i;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the agent did not log {what} within {within:?}; its log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A log event's message and one of its fields (tracing's JSON format).
pub fn log_field<'a>(event: &'a Value, field: &str) -> Option<&'a str> {
    event["fields"][field].as_str()
}
