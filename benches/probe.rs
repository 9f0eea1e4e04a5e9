//! HTTP probe throughput: how many complete checks (resolve, connect, request, response, body,
//! close) one core drives per second against a local hyper server.
//!
//! The prober runs on a current_thread tokio runtime on the benchmark thread; the server runs on
//! its own thread and runtime, so the client side is one core's worth of work. Two shapes:
//! `sequential` (one probe at a time, so latency-bound) and `in_flight_16` (16 probes at once,
//! each iteration being one batch of 16). Criterion's throughput line is probes per second.
//! Every probe's outcome is checked, so a failing probe cannot pass as a fast one.
//!
//! Run: `cargo bench --bench probe -- --warm-up-time 1 --measurement-time 3`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;

use burnwatch::probe::Prober;
use burnwatch::rules::model::{HttpProbe, Probe, ProbeKind};
use burnwatch::time::Dur;
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

const IN_FLIGHT: usize = 16;

async fn handle(_req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(b"ok\n"))))
}

/// Starts the server on its own thread; returns its address once it listens.
fn start_server() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("local addr");
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("server runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), hyper::service::service_fn(handle))
                        .await;
                });
            }
        });
    });
    addr
}

fn http_probe(addr: std::net::SocketAddr) -> Probe {
    Probe {
        file: PathBuf::from("bench.yaml"),
        name: "bench".to_owned(),
        service: "bench".to_owned(),
        kind: ProbeKind::Http(HttpProbe {
            url: format!("http://{addr}/health"),
            method: "GET".to_owned(),
            headers: BTreeMap::new(),
            body: None,
            expect_status: Vec::new(),
            body_matches: Some(Arc::new(regex::Regex::new("^ok").expect("regex"))),
            body_not_matches: None,
            follow_redirects: true,
            tls_verify: true,
            ca_file: None,
        }),
        interval: Dur::from_secs(10),
        timeout: Dur::from_secs(2),
        labels: BTreeMap::new(),
        depends_on: Vec::new(),
        alert: None,
    }
}

fn bench_http(c: &mut Criterion) {
    let addr = start_server();
    let probe = Arc::new(http_probe(addr));
    let prober = Arc::new(Prober::new(std::slice::from_ref(&*probe)).expect("prober"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");

    let mut group = c.benchmark_group("http_probe");
    group.throughput(Throughput::Elements(1));
    group.bench_function("sequential", |b| {
        b.iter(|| {
            let out = rt.block_on(prober.run(&probe));
            assert!(out.success, "{:?}", out.failure);
        });
    });
    group.throughput(Throughput::Elements(IN_FLIGHT as u64));
    group.bench_function("in_flight_16", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut set = tokio::task::JoinSet::new();
                for _ in 0..IN_FLIGHT {
                    let (prober, probe) = (prober.clone(), probe.clone());
                    set.spawn(async move { prober.run(&probe).await });
                }
                while let Some(done) = set.join_next().await {
                    let out = done.expect("probe task");
                    assert!(out.success, "{:?}", out.failure);
                }
            });
        });
    });
    group.finish();
}

criterion_group!(benches, bench_http);
criterion_main!(benches);
