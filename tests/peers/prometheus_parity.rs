//! Differential test against a real Prometheus 2.42 (Debian's `prometheus`, installed by
//! scripts/test.sh): Prometheus scrapes every fixture from a loopback server, and what it stored
//! must equal what our parser yields; malformed fixtures must be rejected by both.
//!
//! Not compared: fixtures with explicit timestamps (Prometheus would store them in the past, out
//! of an instant query's reach; unit tests cover timestamps). Normalised on our side to
//! Prometheus's storage semantics: empty label values mean "no label", and of duplicate series
//! the first value is kept, decided by the scraper's own [`SeenSeries`] (the identity
//! `burnwatch::scrape::match_page` drops repeats by), so a page with the same series twice
//! (`text-duplicate-identity.prom`) proves that the agent counts what Prometheus stores.

use crate::common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use burnwatch::exposition::{Format, parse_owned};
use burnwatch::scrape::SeenSeries;
use burnwatch::server::percent_encode;
use burnwatch::slo::histogram::histogram_quantile;
use common::{Proc, get_json, prometheus_binary};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The whole test's budget for Prometheus to start and scrape every target once.
const SCRAPE_DEADLINE: Duration = Duration::from_secs(30);

/// Fixtures whose samples carry timestamps; see the module docs.
const TIMESTAMPED: [&str; 2] = ["text-timestamps.prom", "om-timestamps.om"];

type SeriesKey = (String, Vec<(String, String)>);

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/exposition")
}

fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixture_dir())
        .expect("fixture dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| !TIMESTAMPED.contains(&n.as_str()))
        .collect();
    names.sort();
    names
}

fn format_of(name: &str) -> Format {
    if name.ends_with(".om") {
        Format::OpenMetrics
    } else {
        Format::Text
    }
}

fn content_type(name: &str) -> &'static str {
    match format_of(name) {
        Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        Format::Text => "text/plain; version=0.0.4; charset=utf-8",
    }
}

/// Serves `/<fixture name>` with the fixture's bytes and content type, one request per connection.
async fn serve_fixtures(listener: TcpListener) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&request);
            let path = text.split(' ').nth(1).unwrap_or("/");
            let name = path.trim_start_matches('/');
            let response = match std::fs::read(fixture_dir().join(name)) {
                Ok(body) if !name.contains('/') => {
                    let mut r = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
                         Connection: close\r\n\r\n",
                        content_type(name),
                        body.len()
                    )
                    .into_bytes();
                    r.extend_from_slice(&body);
                    r
                }
                _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_vec(),
            };
            let _ = stream.write_all(&response).await;
            let _ = stream.shutdown().await;
        });
    }
}

/// One GET against Prometheus's HTTP API, returning the JSON `data` field.
async fn api_get(addr: SocketAddr, path: &str) -> Result<serde_json::Value, String> {
    let json = get_json(addr, path).await?;
    if json["status"] != "success" {
        return Err(format!("API error: {json}"));
    }
    Ok(json["data"].clone())
}

/// Instant query; returns (labels including `__name__`, value as Prometheus formats it).
async fn query(addr: SocketAddr, promql: &str) -> Vec<(BTreeMap<String, String>, String)> {
    let data = api_get(
        addr,
        &format!("/api/v1/query?query={}", percent_encode(promql)),
    )
    .await
    .unwrap_or_else(|e| panic!("query {promql}: {e}"));
    data["result"]
        .as_array()
        .expect("vector result")
        .iter()
        .map(|r| {
            let labels = r["metric"]
                .as_object()
                .expect("metric object")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().expect("label string").to_owned()))
                .collect();
            let value = r["value"][1].as_str().expect("value string").to_owned();
            (labels, value)
        })
        .collect()
}

fn prom_value(s: &str) -> f64 {
    s.parse()
        .unwrap_or_else(|_| panic!("Prometheus value {s:?}"))
}

fn same_value(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// What our parser yields, normalised to Prometheus's storage semantics (see module docs).
fn ours(name: &str) -> Result<BTreeMap<SeriesKey, f64>, String> {
    let body = std::fs::read(fixture_dir().join(name)).expect("fixture");
    let samples = parse_owned(&body, format_of(name)).map_err(|e| e.to_string())?;
    let mut series = BTreeMap::new();
    let mut seen = SeenSeries::default();
    for s in samples {
        let mut all: Vec<(&str, &str)> = s
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        all.sort();
        if !seen.first(&s.name, &all) {
            continue;
        }
        let labels: Vec<(String, String)> = all
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let previous = series.insert((s.name.clone(), labels), s.value);
        assert!(previous.is_none(), "{name}: {} counted twice", s.name);
    }
    Ok(series)
}

/// `histogram_quantile` of the percentiles of histogram-fed latency SLOs equals Prometheus's
/// on the buckets of `text-histogram-quantile.prom` (interpolation in a bucket, from 0 in the
/// first one, the `+Inf` bucket, empty buckets, no observations).
async fn histogram_quantiles_agree(prom: SocketAddr) {
    const NAME: &str = "text-histogram-quantile.prom";
    let body = std::fs::read(fixture_dir().join(NAME)).expect("fixture");
    let mut cases: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for s in parse_owned(&body, Format::Text).expect("valid fixture") {
        if s.name != "hq_seconds_bucket" {
            continue;
        }
        let label = |k: &str| {
            s.labels
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
        };
        let le = label("le").and_then(|v| burnwatch::exposition::parse_float(v.as_bytes()));
        cases
            .entry(label("case").expect("case"))
            .or_default()
            .push((le.expect("le"), s.value));
    }
    let mut compared = 0;
    for q in [0.0, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0] {
        let stored = query(
            prom,
            &format!("histogram_quantile({q}, hq_seconds_bucket{{job=\"{NAME}\"}})"),
        )
        .await;
        assert_eq!(stored.len(), cases.len(), "q={q}: {stored:?}");
        for (labels, value) in stored {
            let mut buckets = cases[&labels["case"]].clone();
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            let theirs = prom_value(&value);
            let ours = histogram_quantile(q, &buckets).unwrap_or(f64::NAN);
            assert!(
                same_value(ours, theirs) || (ours - theirs).abs() < 1e-12,
                "{labels:?} q={q}: ours {ours}, Prometheus {theirs}"
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 7 * 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_stores_what_we_parse() {
    let binary = prometheus_binary();
    let names = fixture_names();

    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind fixture server");
    let fixture_addr = listener.local_addr().expect("fixture addr");
    let server = tokio::spawn(serve_fixtures(listener));

    let dir = tempfile::tempdir().expect("tempdir");
    let mut config =
        String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n");
    for name in &names {
        config.push_str(&format!(
            "- job_name: '{name}'\n  metrics_path: '/{name}'\n  static_configs:\n  - targets: ['{fixture_addr}']\n"
        ));
    }
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(&config_path, config).expect("write config");

    // Reserve a free port for Prometheus's web listener.
    let prom_addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
    let child = Command::new(&binary)
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={prom_addr}"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log handle"))
        .stderr(log)
        .spawn()
        .expect("start prometheus");
    let _guard = Proc(child);

    // Wait (bounded) until every job has an `up` sample, i.e. was scraped at least once.
    let started = Instant::now();
    let mut up: BTreeMap<String, f64> = BTreeMap::new();
    while up.len() < names.len() {
        if started.elapsed() > SCRAPE_DEADLINE {
            let log =
                std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
            panic!(
                "Prometheus scraped only {} of {} fixtures within {SCRAPE_DEADLINE:?}; log:\n{log}",
                up.len(),
                names.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        if let Ok(data) = api_get(prom_addr, "/api/v1/query?query=up").await {
            up = data["result"]
                .as_array()
                .map(|rows| {
                    rows.iter()
                        .filter_map(|r| {
                            let job = r["metric"]["job"].as_str()?.to_owned();
                            Some((job, prom_value(r["value"][1].as_str()?)))
                        })
                        .collect()
                })
                .unwrap_or_default();
        }
    }

    let mut compared_series = 0usize;
    for name in &names {
        let scraped_ok = up[name] == 1.0;
        match (ours(name), name.split('-').next()) {
            (Err(e), Some("bad")) => {
                assert!(
                    !scraped_ok,
                    "{name}: we reject ({e}) but Prometheus accepted it"
                );
            }
            (Err(e), Some("strict")) => {
                // Documented divergence: Prometheus 2.42 is more lenient here.
                assert!(
                    scraped_ok,
                    "{name}: expected Prometheus to accept what we reject ({e})"
                );
            }
            (Ok(series), Some("text" | "om")) => {
                assert!(
                    scraped_ok,
                    "{name}: we parse it but Prometheus failed the scrape"
                );
                let stored = query(prom_addr, &format!("{{job=\"{name}\"}}")).await;
                let mut theirs: BTreeMap<SeriesKey, f64> = BTreeMap::new();
                for (mut labels, value) in stored {
                    let metric = labels.remove("__name__").expect("__name__");
                    if metric == "up" || metric.starts_with("scrape_") {
                        continue;
                    }
                    labels.remove("job");
                    labels.remove("instance");
                    theirs.insert((metric, labels.into_iter().collect()), prom_value(&value));
                }
                let ours_keys: Vec<_> = series.keys().collect();
                let their_keys: Vec<_> = theirs.keys().collect();
                assert_eq!(ours_keys, their_keys, "{name}: series differ");
                for (key, v) in &series {
                    assert!(
                        same_value(*v, theirs[key]),
                        "{name}: {key:?} ours {v} vs Prometheus {}",
                        theirs[key]
                    );
                }
                compared_series += series.len();
            }
            (result, _) => panic!("{name}: unexpected outcome for its name: {result:?}"),
        }
    }
    assert!(
        compared_series >= 40,
        "compared only {compared_series} series"
    );
    histogram_quantiles_agree(prom_addr).await;
    server.abort();
}
