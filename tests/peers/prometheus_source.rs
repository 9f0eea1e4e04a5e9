//! A real Prometheus 2.42 scrapes the synthetic service; a `burnwatch run` agent scrapes the
//! same service directly (a `ratio` SLO) and reads the same counters back from that Prometheus
//! through `sources.prometheus` (`query` SLOs, docs/sources.md):
//! - counter mode (a plain selector): the SLO's good and total events equal the directly
//!   scraped SLO's exactly, and the service's own counts;
//! - window mode (`sum(increase(...[{{.window}}]))`, Sloth's style): within Prometheus's
//!   extrapolation of the driven traffic (the bound docs/sources.md gives);
//! - a source nobody listens on, one that never answers and one that is not a Prometheus API:
//!   no data for their SLOs, errors counted by reason, no alert, and the agent keeps running;
//! - after a SIGKILL and traffic while the agent is down, counter mode counts the downtime
//!   exactly and window mode resumes where the checkpoint ends.

use crate::common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use burnwatch::probe::Prober;
use burnwatch::server::percent_encode;
use burnwatch::synthetic::Behaviour;
use common::{
    drive, free_addr, get_json, run_agent, start_prometheus, start_service, wait_baseline_scrapes,
    wait_for,
};
use serde_json::Value;

/// Requests driven before the agent starts, so that both code series exist (1 error in 8)
/// and every SLO's first read or scrape is a baseline of the same values.
const WARM_UP: u64 = 8;
/// Requests driven while the agent runs, in [`BATCHES`] batches (1 error in 8: 10 errors).
const DRIVEN: u64 = 80;
const BATCHES: u64 = 8;

fn rules(base: &str) -> String {
    let bad = r#"demo_http_requests_total{code=~"5..",job="shop"}"#;
    let all = r#"demo_http_requests_total{job="shop"}"#;
    format!(
        r#"version: burnwatch/v1
service: shop
scrape:
  - name: shop
    url: {base}/metrics
    interval: 1s
slos:
  - name: scraped
    objective: 99
    indicator:
      ratio: {{bad: '{bad}', total: '{all}'}}
  - name: queried
    objective: 99
    indicator:
      query: {{bad: '{bad}', total: '{all}'}}
  - name: windowed
    objective: 99
    indicator:
      query:
        source: slow
        bad: 'sum(increase({bad}[{{{{.window}}}}]))'
        total: 'sum(increase({all}[{{{{.window}}}}]))'
  - name: unreachable
    objective: 99
    indicator:
      query: {{source: down, bad: '{bad}', total: '{all}'}}
  - name: not-prometheus
    objective: 99
    indicator:
      query: {{source: wrong, bad: '{bad}', total: '{all}'}}
  - name: slow-backend
    objective: 99
    indicator:
      query: {{source: mute, bad: '{bad}', total: '{all}'}}
"#
    )
}

async fn slo(agent: SocketAddr, name: &str) -> Result<(u64, u64), String> {
    let v = get_json(agent, &format!("/api/v1/slos/shop/{name}")).await?;
    match (v["good"].as_u64(), v["total"].as_u64()) {
        (Some(g), Some(t)) => Ok((g, t)),
        _ => Err(format!("{v}")),
    }
}

async fn source(agent: SocketAddr, name: &str) -> Result<Value, String> {
    let v = get_json(agent, "/api/v1/status").await?;
    v["sources"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == name).cloned())
        .ok_or_else(|| format!("no source {name}: {v}"))
}

async fn reads(agent: SocketAddr, name: &str) -> Result<u64, String> {
    source(agent, name).await?["reads_total"]
        .as_u64()
        .ok_or_else(|| "reads_total".to_owned())
}

/// Prometheus's stored sum of the service's requests.
async fn stored(prom: SocketAddr) -> Result<f64, String> {
    let q = percent_encode(r#"sum(demo_http_requests_total{job="shop"})"#);
    let v = get_json(prom, &format!("/api/v1/query?query={q}")).await?;
    v["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{v}"))
}

/// Waits until a source has answered `n` more reads than now.
async fn more_reads(agent: SocketAddr, name: &str, n: u64) {
    let start = wait_for("the source's reads", || reads(agent, name)).await;
    wait_for(&format!("{n} more reads of {name}"), || async {
        let r = reads(agent, name).await?;
        if r >= start + n {
            Ok(())
        } else {
            Err(format!("{r} reads"))
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_slos_read_from_prometheus_equal_the_scraped_counts() {
    let started = Instant::now();
    let behaviour = Behaviour {
        error_every: 8,
        errors_per_cycle: 1,
        latency: Duration::from_millis(1),
        slow_every: 0,
        slow_latency: Duration::from_millis(1),
        health_down: false,
    };
    let (base, svc, _svc_stop) = start_service(behaviour).await;
    let prober = Prober::new(&[]).expect("prober");

    let dir = tempfile::tempdir().expect("tempdir");
    let service_addr = base.trim_start_matches("http://");
    let (_prometheus, prom) =
        start_prometheus(&dir.path().join("prometheus"), "shop", service_addr);

    drive(&prober, &base, WARM_UP).await;
    wait_for("Prometheus to store the warm-up", || async {
        let v = stored(prom).await?;
        if v == WARM_UP as f64 {
            Ok(())
        } else {
            Err(format!("{v}"))
        }
    })
    .await;
    // The window-mode SLO's first read covers one interval (4s) back: let the warm-up fall
    // out of it.
    tokio::time::sleep(Duration::from_millis(4500)).await;

    let agent = free_addr();
    let down = free_addr();
    // A backend that accepts connections and never answers (held open until the test ends).
    let mute = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let mute_addr = mute.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = mute.accept().await {
            held.push(conn);
        }
    });
    std::fs::write(dir.path().join("shop.yaml"), rules(&base)).expect("rules");
    let cfg = dir.path().join("burnwatch.yaml");
    std::fs::write(
        &cfg,
        format!(
            "listen: {agent}\nrules: [shop.yaml]\nevaluation_interval: 1s\ncheckpoint_interval: 1s\n\
             sources:\n  prometheus:\n\
             \x20   - {{name: prom, url: 'http://{prom}', interval: 1s, default: true}}\n\
             \x20   - {{name: slow, url: 'http://{prom}', interval: 4s}}\n\
             \x20   - {{name: down, url: 'http://{down}', interval: 1s, timeout: 1s}}\n\
             \x20   - {{name: wrong, url: '{base}', interval: 1s, headers: {{X-Scope-OrgID: tenant-1}}}}\n\
             \x20   - {{name: mute, url: 'http://{mute_addr}', interval: 1s, timeout: 500ms}}\n"
        ),
    )
    .expect("config");
    let agent_proc = run_agent(&cfg);

    // Baselines: two scrapes of the target and two reads of every query SLO after the agent
    // is up (the warm-up values, stored in Prometheus before it started).
    wait_baseline_scrapes(agent).await;
    more_reads(agent, "prom", 2).await;
    assert_eq!(slo(agent, "queried").await, Ok((0, 0)));
    assert_eq!(slo(agent, "scraped").await, Ok((0, 0)));

    // Steady traffic over about four seconds, as a service's is (the window-mode reads see
    // a counter that grows across their edges).
    let before = svc.stats();
    for _ in 0..BATCHES {
        drive(&prober, &base, DRIVEN / BATCHES).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let after = svc.stats();
    let total = after.requests - before.requests;
    let bad = after.code(500) - before.code(500);
    assert_eq!((total, bad), (DRIVEN, DRIVEN / 8));
    let want = (total - bad, total);

    // Counter mode: exactly the scraped counts.
    let scraped = wait_for("the scraped SLO to count the traffic", || async {
        let r = slo(agent, "scraped").await?;
        if r == want {
            Ok(r)
        } else {
            Err(format!("{r:?}"))
        }
    })
    .await;
    let queried = wait_for("the query SLO to count the traffic", || async {
        let r = slo(agent, "queried").await?;
        if r == want {
            Ok(r)
        } else {
            Err(format!("{r:?}"))
        }
    })
    .await;
    assert_eq!(queried, scraped);

    // Window mode: once Prometheus holds the final values and two more slow reads went by,
    // the sum of the reads is the extrapolated increases Prometheus computes. Their error is
    // bounded per read by the events of about 1.1 scrape intervals at each edge of its window
    // (docs/sources.md), here bursts of 10 requests: the sum must stay within half the traffic
    // (seen: 0 to 5 events off of 80).
    wait_for("Prometheus to store the traffic", || async {
        let v = stored(prom).await?;
        if v == (WARM_UP + DRIVEN) as f64 {
            Ok(())
        } else {
            Err(format!("{v}"))
        }
    })
    .await;
    more_reads(agent, "slow", 2).await;
    let (wgood, wtotal) = slo(agent, "windowed").await.expect("windowed");
    let off = (wtotal as f64 - total as f64).abs();
    eprintln!(
        "window mode: {wgood} good of {wtotal} (exact {} of {total}), off by {off}",
        total - bad
    );
    assert!(off <= 0.5 * total as f64, "window mode {wtotal} vs {total}");
    assert!(wgood <= wtotal);

    // The broken sources: no data, errors by reason, no alert, the agent still serving.
    let down = source(agent, "down").await.expect("down");
    assert_eq!(down["reads_total"], 0, "{down}");
    assert!(
        down["errors_total"]["unreachable"].as_u64() > Some(0),
        "{down}"
    );
    let wrong = source(agent, "wrong").await.expect("wrong");
    assert_eq!(wrong["reads_total"], 0, "{wrong}");
    let status_or_invalid = wrong["errors_total"]["status"].as_u64().unwrap_or(0)
        + wrong["errors_total"]["invalid_response"]
            .as_u64()
            .unwrap_or(0);
    assert!(status_or_invalid > 0, "{wrong}");
    let mute = source(agent, "mute").await.expect("mute");
    assert_eq!(mute["reads_total"], 0, "{mute}");
    assert!(mute["errors_total"]["timeout"].as_u64() > Some(0), "{mute}");
    for name in ["unreachable", "not-prometheus", "slow-backend"] {
        assert_eq!(slo(agent, name).await, Ok((0, 0)), "{name}");
    }
    let alerts = get_json(agent, "/api/v1/alerts").await.expect("alerts");
    assert_eq!(alerts["alerts"], serde_json::json!([]), "{alerts}");
    let page = get_json(agent, "/api/v1/status").await.expect("status");
    assert!(
        page["sources"].as_array().is_some_and(|a| a.len() == 5),
        "{page}"
    );

    // A crash (SIGKILL; state is checkpointed every second) and traffic while the agent is
    // down: after the restart the counter-mode SLO counts everything since its checkpointed
    // counters, neither losing nor double counting, exactly as the scraped one does; the
    // window-mode SLO resumes its reads where the checkpoint ends.
    drop(agent_proc);
    let before = svc.stats();
    for _ in 0..4 {
        drive(&prober, &base, 4).await;
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    let after = svc.stats();
    let (more, more_bad) = (
        after.requests - before.requests,
        after.code(500) - before.code(500),
    );
    let want = (want.0 + more - more_bad, want.1 + more);
    wait_for(
        "Prometheus to store the traffic of the downtime",
        || async {
            let v = stored(prom).await?;
            if v == (WARM_UP + DRIVEN + more) as f64 {
                Ok(())
            } else {
                Err(format!("{v}"))
            }
        },
    )
    .await;
    let _agent = run_agent(&cfg);
    for name in ["scraped", "queried"] {
        wait_for(
            &format!("{name} to count the downtime's traffic"),
            || async {
                let r = slo(agent, name).await?;
                if r == want {
                    Ok(r)
                } else {
                    Err(format!("{r:?}"))
                }
            },
        )
        .await;
    }
    // Window mode resumed at the checkpoint's newest instant: it reads the downtime's steady
    // traffic (within the extrapolation at its first window's edges, docs/sources.md) and not
    // the 80 events of before the crash again (a read of them would add up to 80 more). Seen:
    // 14 and 16 of 16.
    more_reads(agent, "slow", 2).await;
    let (_, wtotal_after) = slo(agent, "windowed").await.expect("windowed");
    let read_after = wtotal_after.saturating_sub(wtotal);
    eprintln!("window mode after the restart: {read_after} of {more} new events");
    assert!(
        read_after.abs_diff(more) <= more / 2,
        "window mode read {read_after} after the restart, of {more} new events"
    );
    eprintln!("query source test took {:?}", started.elapsed());
}
