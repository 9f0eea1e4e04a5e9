//! The synthetic service over real sockets on 127.0.0.1: exact status counts, the `/metrics` text,
//! health flips, `/control`, graceful and bounded shutdown, and the load generator's rate. Every wait
//! has a deadline.

use std::net::SocketAddr;
use std::time::Duration;

use burnwatch::synthetic::{Behaviour, LoadError, Service, generate_load, serve, serve_with_drain};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};

const DEADLINE: Duration = Duration::from_secs(10);

struct Server {
    addr: SocketAddr,
    service: Service,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

async fn start(behaviour: Behaviour, drain: Option<Duration>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let service = Service::new(behaviour);
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    let served = service.clone();
    let task = match drain {
        Some(d) => tokio::spawn(serve_with_drain(listener, served, shutdown, d)),
        None => tokio::spawn(serve(listener, served, shutdown)),
    };
    Server {
        addr,
        service,
        stop,
        task,
    }
}

impl Server {
    /// Stops the server and returns how long `serve` took to return.
    async fn stop(self) -> Duration {
        let begun = Instant::now();
        self.stop.send(()).expect("server still running");
        timeout(DEADLINE, self.task)
            .await
            .expect("serve returns within the deadline")
            .expect("serve task did not panic")
            .expect("serve returned Ok");
        begun.elapsed()
    }
}

/// One keep-alive HTTP/1.1 connection.
struct Client {
    sender: SendRequest<Full<Bytes>>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        let stream = timeout(DEADLINE, TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("connect");
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        Client { sender }
    }

    async fn try_send(
        &mut self,
        method: Method,
        path: &str,
        body: &str,
    ) -> Result<(u16, String, String), hyper::Error> {
        self.sender.ready().await?;
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "127.0.0.1")
            .body(Full::new(Bytes::from(body.to_owned())))
            .expect("valid request");
        let response = self.sender.send_request(request).await?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok((
            status,
            String::from_utf8(bytes.to_vec()).expect("UTF-8 body"),
            content_type,
        ))
    }

    async fn send(&mut self, method: Method, path: &str, body: &str) -> (u16, String) {
        let (status, text, _) = timeout(DEADLINE, self.try_send(method, path, body))
            .await
            .expect("response in time")
            .expect("response");
        (status, text)
    }

    async fn get(&mut self, path: &str) -> (u16, String) {
        self.send(Method::GET, path, "").await
    }
}

/// The value of the sample line whose name-and-labels part is exactly `series`.
fn sample(metrics: &str, series: &str) -> u64 {
    let value = sample_text(metrics, series);
    value
        .parse()
        .unwrap_or_else(|_| panic!("{series} = {value} is not an integer"))
}

fn sample_text<'a>(metrics: &'a str, series: &str) -> &'a str {
    let mut found = metrics.lines().filter_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then_some(value)
    });
    let value = found
        .next()
        .unwrap_or_else(|| panic!("no sample {series} in:\n{metrics}"));
    assert!(found.next().is_none(), "{series} appears twice");
    value
}

#[tokio::test]
async fn exact_status_counts_and_metrics_follow_the_schedule() {
    let behaviour = Behaviour {
        error_every: 4,
        errors_per_cycle: 1,
        latency: Duration::from_millis(1),
        slow_every: 5,
        slow_latency: Duration::from_millis(30),
        health_down: false,
    };
    let server = start(behaviour, None).await;
    let mut client = Client::connect(server.addr).await;
    // Sequential requests on one connection: request i gets sequence number i.
    let paths = ["/api/orders", "/", "/api"];
    for i in 0..100u64 {
        let (status, body) = client.get(paths[(i % 3) as usize]).await;
        assert_eq!(status, behaviour.status(i), "request {i}");
        assert_eq!(body, if status == 200 { "ok\n" } else { "error\n" });
    }
    // The schedule says: n % 4 == 0 fails (25 of 100); n % 5 == 4 takes 30 ms (20 of 100).
    let stats = server.service.stats();
    assert_eq!(stats.requests, 100);
    assert_eq!(stats.code(200), 75);
    assert_eq!(stats.code(500), 25);
    assert_eq!(stats.slower_than(Duration::from_millis(25)), Some(20));
    assert_eq!(stats.slower_than(Duration::from_millis(50)), Some(0));
    assert_eq!(stats.latency_sum, Duration::from_millis(80 + 20 * 30));

    let (status, text, content_type) = client
        .try_send(Method::GET, "/metrics", "")
        .await
        .expect("metrics");
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    assert!(text.contains("# TYPE demo_http_requests_total counter\n"));
    assert!(text.contains("# TYPE demo_http_request_duration_seconds histogram\n"));
    assert!(text.contains("# HELP demo_http_request_duration_seconds "));
    assert_eq!(
        sample(&text, r#"demo_http_requests_total{code="200",path="/api"}"#),
        75
    );
    assert_eq!(
        sample(&text, r#"demo_http_requests_total{code="500",path="/api"}"#),
        25
    );
    let edges = [
        "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.3", "0.5", "1", "2.5", "5", "10",
        "+Inf",
    ];
    let buckets: Vec<u64> = edges
        .iter()
        .map(|le| {
            sample(
                &text,
                &format!("demo_http_request_duration_seconds_bucket{{le=\"{le}\"}}"),
            )
        })
        .collect();
    // 80 requests at 1 ms are under every edge; the 20 at 30 ms first fit under 0.05.
    assert_eq!(
        buckets,
        [80, 80, 80, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100]
    );
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "cumulative");
    let count = sample(&text, "demo_http_request_duration_seconds_count");
    assert_eq!(count, 100);
    assert_eq!(buckets.last(), Some(&count));
    assert_eq!(
        sample_text(&text, "demo_http_request_duration_seconds_sum"),
        "0.68"
    );
    // Non-API routes are not counted.
    assert_eq!(server.service.stats().requests, 100);
    server.stop().await;
}

#[tokio::test]
async fn healthz_follows_set_behaviour() {
    let server = start(Behaviour::healthy(), None).await;
    let mut client = Client::connect(server.addr).await;
    assert_eq!(client.get("/healthz").await, (200, "ok\n".to_owned()));
    server.service.set_behaviour(Behaviour::outage());
    assert_eq!(client.get("/healthz").await.0, 503);
    server.service.set_behaviour(Behaviour {
        health_down: false,
        ..Behaviour::outage()
    });
    assert_eq!(client.get("/healthz").await, (200, "ok\n".to_owned()));
    assert_eq!(server.service.stats().requests, 0);
    server.stop().await;
}

#[tokio::test]
async fn control_switches_behaviour_and_restarts_the_schedule() {
    let server = start(Behaviour::healthy(), None).await;
    let mut client = Client::connect(server.addr).await;
    assert_eq!(client.get("/api").await.0, 200);
    assert_eq!(client.get("/api").await.0, 200);

    let (status, body) = client
        .send(
            Method::POST,
            "/control",
            "error_every=3 errors_per_cycle=2 latency=0ms health_down=true\n",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let expected = Behaviour {
        error_every: 3,
        errors_per_cycle: 2,
        latency: Duration::ZERO,
        slow_every: 0,
        slow_latency: Duration::ZERO,
        health_down: true,
    };
    assert_eq!(server.service.behaviour(), expected);
    assert_eq!(client.get("/control").await, (200, format!("{expected}\n")));
    assert_eq!(client.get("/healthz").await.0, 503);
    // The schedule restarts at 0: fail, fail, ok, fail, fail, ok.
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(client.get("/api/x").await.0);
    }
    assert_eq!(statuses, [500, 500, 200, 500, 500, 200]);

    let (status, body) = client.send(Method::POST, "/control", "sideways").await;
    assert_eq!(status, 400);
    assert!(body.contains("sideways"), "{body}");
    assert_eq!(server.service.behaviour(), expected, "unchanged on error");

    assert_eq!(
        client.send(Method::POST, "/control", "healthy").await.0,
        200
    );
    assert_eq!(server.service.behaviour(), Behaviour::healthy());
    assert_eq!(client.get("/healthz").await.0, 200);

    assert_eq!(client.get("/nowhere").await.0, 404);
    assert_eq!(client.send(Method::POST, "/api", "").await.0, 405);
    assert_eq!(client.send(Method::DELETE, "/control", "").await.0, 405);

    let stats = server.service.stats();
    assert_eq!((stats.code(200), stats.code(500)), (4, 4));
    server.stop().await;
}

#[tokio::test]
async fn shutdown_lets_a_slow_request_finish_then_stops_accepting() {
    let server = start(
        Behaviour {
            latency: Duration::from_millis(600),
            ..Behaviour::healthy()
        },
        None,
    )
    .await;
    let addr = server.addr;
    let mut client = Client::connect(addr).await;
    let in_flight = tokio::spawn(async move { client.get("/api/slow").await });
    // Let the request reach the server before shutting down.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let service = server.service.clone();
    let took = server.stop().await;
    let (status, body) = timeout(DEADLINE, in_flight)
        .await
        .expect("request finishes in time")
        .expect("client task did not panic");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    assert_eq!(service.stats().code(200), 1);
    // It waited for the request (~450 ms left) but no longer than loosely twice the drain.
    assert!(
        took >= Duration::from_millis(300),
        "returned after {took:?}"
    );
    assert!(took < Duration::from_secs(3), "returned after {took:?}");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the listener is closed after shutdown"
    );
}

#[tokio::test]
async fn shutdown_is_bounded_by_the_drain_timeout() {
    let server = start(
        Behaviour {
            latency: Duration::from_secs(30),
            ..Behaviour::healthy()
        },
        Some(Duration::from_millis(300)),
    )
    .await;
    let mut client = Client::connect(server.addr).await;
    let in_flight =
        tokio::spawn(
            async move { timeout(DEADLINE, client.try_send(Method::GET, "/api", "")).await },
        );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let service = server.service.clone();
    let took = server.stop().await;
    assert!(
        took >= Duration::from_millis(250),
        "returned after {took:?}"
    );
    assert!(took < Duration::from_secs(2), "returned after {took:?}");
    let outcome = in_flight.await.expect("client task did not panic");
    assert!(
        matches!(outcome, Ok(Err(_))),
        "the aborted request fails promptly instead of hanging: {outcome:?}"
    );
    assert_eq!(
        service.stats().requests,
        0,
        "an aborted request is not counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_generator_keeps_the_rate_and_matches_the_server_exactly() {
    let behaviour = Behaviour {
        error_every: 10,
        errors_per_cycle: 1,
        latency: Duration::from_millis(2),
        ..Behaviour::healthy()
    };
    let server = start(behaviour, None).await;
    let url = format!("http://{}/api/load", server.addr);
    let run = Duration::from_secs(1);
    let load = timeout(DEADLINE, generate_load(url, 100, tokio::time::sleep(run)))
        .await
        .expect("load returns in time")
        .expect("valid load parameters");

    assert!(
        (50..=200).contains(&load.attempted),
        "100 rps for 1 s sent {}",
        load.attempted
    );
    assert!(
        load.elapsed >= run && load.elapsed < 2 * run,
        "{:?}",
        load.elapsed
    );
    assert_eq!(
        (load.transport_errors, load.timeouts, load.skipped),
        (0, 0, 0),
        "{load:?}"
    );
    assert_eq!(load.completed(), load.attempted);
    // The server numbered the requests 0..N, so exactly ceil(N / 10) of them failed.
    let n = load.attempted;
    assert_eq!(load.status(500), n.div_ceil(10));
    assert_eq!(load.status(200), n - n.div_ceil(10));
    let stats = server.service.stats();
    assert_eq!(stats.requests, n);
    assert_eq!(stats.by_code, load.by_status);
    server.stop().await;
}

#[tokio::test]
async fn load_generator_refuses_bad_parameters_and_counts_unreachable_targets() {
    assert_eq!(
        generate_load("http://127.0.0.1:1/".to_owned(), 0, async {}).await,
        Err(LoadError::ZeroRate)
    );
    assert!(matches!(
        generate_load("ftp://127.0.0.1/".to_owned(), 10, async {}).await,
        Err(LoadError::InvalidUrl { .. })
    ));
    // A port that was just free: connections are refused and counted as transport errors.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let load = timeout(
        DEADLINE,
        generate_load(
            format!("http://{addr}/"),
            50,
            tokio::time::sleep(Duration::from_millis(300)),
        ),
    )
    .await
    .expect("load returns in time")
    .expect("valid parameters");
    assert!(load.attempted >= 5, "{load:?}");
    assert_eq!(load.transport_errors, load.attempted, "{load:?}");
    assert_eq!(load.completed(), 0);
}
