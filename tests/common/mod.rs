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
use http_body_util::{BodyExt, Empty};
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

/// A loopback address nobody listens on right now.
pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
}

/// URL query-string encoding of `s`.
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

/// One GET bounded to 5 s, returning the parsed JSON body (an error for a non-2xx status).
pub async fn get_json(addr: SocketAddr, path: &str) -> Result<Value, String> {
    let fetch = async {
        let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let request = hyper::Request::get(path)
            .header("host", addr.to_string())
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        if !status.is_success() {
            return Err(format!("{status}: {}", String::from_utf8_lossy(&body)));
        }
        serde_json::from_slice(&body).map_err(|e| e.to_string())
    };
    tokio::time::timeout(Duration::from_secs(5), fetch)
        .await
        .map_err(|_| format!("GET {path} timed out"))?
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
