//! A real Prometheus 2.42 (installed by scripts/test.sh) scrapes a running `burnwatch run` agent
//! that watches the synthetic service on loopback: every family of the metric catalogue (which
//! docs/metrics.md's tables are rendered from) is stored with its labels, the stored ratio-SLO
//! numbers equal the agent's JSON API and the synthetic service's exact counters, and every
//! PromQL expression of `dashboards/*.json` returns data (a dead panel query fails the test),
//! for SLOs of every window length (30d, 7d, 90d) alike. `promtool check metrics` exits 0 on a
//! live page of an agent without the Sloth series (their `:` names are Sloth's, and a lint). The agent runs with
//! `export.prometheus.sloth_compatible` on, and the queries of Sloth's "Detailed SLOs" Grafana
//! dashboard (14348) return the exact numbers of the driven traffic. Alerting is configured with
//! a webhook receiver (an in-process endpoint), so the alerting families have their rows, and a
//! query source no SLO reads, so the source families have theirs.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use burnwatch::export::catalogue::FAMILIES;
use burnwatch::probe::{FetchRequest, Prober};
use burnwatch::server::percent_encode;
use burnwatch::synthetic::Behaviour;
use burnwatch::time::Dur;
use common::{
    Proc, drive, free_addr, get_json, run_agent, shop_rules, start_prometheus, start_receiver,
    start_service, wait_baseline_scrapes, wait_for,
};
use serde_json::Value;

/// Requests driven at the service; with 1 error in 8, exactly 10 fail.
const DRIVEN: u64 = 80;

/// The SLOs of the rules below, the values `$slo` takes when dashboard queries are checked.
const SLOS: [&str; 4] = ["availability", "latency", "health", "health-latency"];

/// Copies of `availability` over other rolling windows: every dashboard query with data for
/// `availability` must have data for these too (no window length may vanish).
const OTHER_WINDOWS: [&str; 2] = ["availability-7d", "availability-90d"];

/// Documented families this setup cannot have: the probe is plain HTTP, so no certificate.
const NOT_IN_THIS_SETUP: [&str; 1] = ["burnwatch_probe_ssl_earliest_cert_expiry"];

/// The shared `shop` rules plus a latency SLO on the health probe and the availability SLO
/// over 7 and 90 days.
fn rules(base: &str) -> String {
    let mut r = shop_rules(base, "99")
        + "  - name: health-latency\n    objective: 99\n    indicator:\n      latency_threshold: {threshold: 250ms, probe: health}\n";
    // A grouped SLO: its instance (the service's one path) is on the page with a `path` label,
    // and the rule's families have a series.
    r.push_str(
        "  - name: by-path\n    objective: 99\n    group_by: [path]\n    indicator:\n      ratio:\n        \
         bad: 'demo_http_requests_total{code=~\"5..\",job=\"shop\"}'\n        \
         total: 'demo_http_requests_total{job=\"shop\"}'\n",
    );
    for (name, window) in OTHER_WINDOWS.iter().zip(["7d", "90d"]) {
        r.push_str(&format!(
            "  - name: {name}\n    objective: 99\n    window: {window}\n    indicator:\n      ratio:\n        \
             bad: 'demo_http_requests_total{{code=~\"5..\",job=\"shop\"}}'\n        \
             total: 'demo_http_requests_total{{job=\"shop\"}}'\n"
        ));
    }
    r
}

/// Instant query: the result vector as (labels including `__name__`, value).
async fn query(
    prom: SocketAddr,
    promql: &str,
) -> Result<Vec<(BTreeMap<String, String>, f64)>, String> {
    let json = get_json(
        prom,
        &format!("/api/v1/query?query={}", percent_encode(promql)),
    )
    .await?;
    if json["status"] != "success" {
        return Err(format!("API error: {json}"));
    }
    let data = &json["data"];
    let rows = match data["resultType"].as_str() {
        Some("vector") => data["result"].as_array().cloned().unwrap_or_default(),
        // A scalar (e.g. `vector(1)` reduced) counts as one unlabelled row.
        Some("scalar") => vec![serde_json::json!({"metric": {}, "value": data["result"]})],
        other => return Err(format!("unexpected result type {other:?}")),
    };
    rows.iter()
        .map(|r| {
            let labels = r["metric"]
                .as_object()
                .ok_or("metric object")?
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect();
            let value = r["value"][1]
                .as_str()
                .and_then(|s| s.parse::<f64>().ok())
                .ok_or_else(|| format!("value of {r}"))?;
            Ok((labels, value))
        })
        .collect()
}

/// The single value of an instant query that must return exactly one series.
async fn one_value(prom: SocketAddr, promql: &str) -> Result<f64, String> {
    match query(prom, promql).await?.as_slice() {
        [(_, v)] => Ok(*v),
        rows => Err(format!("{promql}: {} series", rows.len())),
    }
}

/// A family of the catalogue: its sample name and every label its series must carry.
#[derive(Debug)]
struct Family {
    name: String,
    labels: BTreeSet<String>,
}

/// The catalogue's families in the default (compact) series set (docs/metrics.md's tables are
/// rendered from it; a unit test compares them) with their subject's and their own labels.
fn documented_families() -> Vec<Family> {
    FAMILIES
        .iter()
        .filter(|f| f.in_compact())
        .map(|f| Family {
            name: f.sample_name().into_owned(),
            labels: f
                .subject
                .labels()
                .iter()
                .chain(f.labels.iter().map(|(k, _)| k))
                .map(|k| (*k).to_owned())
                .collect(),
        })
        .collect()
}

/// Every `expr` in a dashboard, with the title of the panel it belongs to.
fn exprs(v: &Value, panel: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            let title = match (m.get("title"), m.get("targets")) {
                (Some(Value::String(t)), Some(_)) => t.as_str(),
                _ => panel,
            };
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("expr", Value::String(e)) => out.push((title.to_owned(), e.clone())),
                    _ => exprs(x, title, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| exprs(x, panel, out)),
        _ => {}
    }
}

/// Grafana's variables replaced by concrete values of this setup.
fn substitute(expr: &str, slo: &str) -> String {
    let mut e = expr.to_owned();
    for (var, value) in [
        ("__rate_interval", "1m"),
        ("__interval", "15s"),
        ("__range", "5m"),
        ("service", "shop"),
        ("slo", slo),
        ("probe", "health"),
        ("target", "shop"),
    ] {
        e = e
            .replace(&format!("${{{var}}}"), value)
            .replace(&format!("${var}"), value);
    }
    e
}

/// Sloth's "Detailed SLOs" dashboard (Grafana 14348) queries, as listed in
/// shared/reference/slo-anchors.md §1.8, with its variables set to the availability SLO: each
/// returns the exact figure of the driven traffic (`bad` of `total` requests, all of them inside
/// every window, objective 99%).
async fn sloth_dashboard_queries(prom: SocketAddr, total: u64, bad: u64) {
    let ids = r#"sloth_service="shop", sloth_slo="availability""#;
    let error_ratio = bad as f64 / total as f64;
    let budget = 0.01;
    let burn = error_ratio / budget;
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs().max(1.0);
    for w in ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"] {
        let q = format!("slo:sli_error:ratio_rate{w}{{{ids}}}");
        let rows = wait_for(&q, || async {
            let rows = query(prom, &q).await?;
            match rows.as_slice() {
                [(_, v)] if *v == error_ratio => Ok(rows),
                _ => Err(format!("{rows:?}")),
            }
        })
        .await;
        let labels = &rows[0].0;
        assert_eq!(labels["sloth_window"], w);
        assert_eq!(labels["sloth_id"], "shop-availability");
    }
    let checks: Vec<(String, f64)> = vec![
        // Variable `service` and the objective panel.
        (format!("slo:objective:ratio{{{ids}}}"), 0.99),
        // The SLI panel, for every value of `sli_window`.
        (
            format!("1 - (max(slo:sli_error:ratio_rate5m{{{ids}}}) OR on() vector(0))"),
            1.0 - error_ratio,
        ),
        (
            format!("1 - (max(slo:sli_error:ratio_rate30d{{{ids}}}) OR on() vector(0))"),
            1.0 - error_ratio,
        ),
        // Burn rate now, and the SLOs burning over budget (`min_burning_rate` = 1).
        (
            format!("slo:current_burn_rate:ratio{{{ids}}} or on() vector(0)"),
            burn,
        ),
        (format!("slo:current_burn_rate:ratio{{{ids}}} > 1"), burn),
        // The 30d rolling remaining budget: overspent by the test's 12.5% errors.
        (
            format!("slo:period_error_budget_remaining:ratio{{{ids}}} or on() vector(1)"),
            1.0 - burn,
        ),
        (format!("slo:period_burn_rate:ratio{{{ids}}}"), burn),
        (format!("slo:error_budget:ratio{{{ids}}}"), budget),
        (format!("slo:time_period:days{{{ids}}}"), 30.0),
        (
            format!(r#"sloth_slo_info{{{ids}, sloth_objective="99"}}"#),
            1.0,
        ),
    ];
    for (q, want) in checks {
        let v = one_value(prom, &q)
            .await
            .unwrap_or_else(|e| panic!("{q}: {e}"));
        assert!(close(v, want), "{q}: {v}, expected {want}");
    }
    let services = query(prom, "slo:objective:ratio")
        .await
        .expect("variable query");
    assert!(
        services
            .iter()
            .any(|(l, _)| l.get("sloth_service").map(String::as_str) == Some("shop")),
        "label_values(slo:objective:ratio, sloth_service): {services:?}"
    );
    // The calendar-month panel is valid PromQL over our series; its `[32d:1h]` subquery samples
    // at whole hours, so it has data once the agent has run across an hour boundary (a test
    // lasting seconds usually has not), and then equals 1 - sum of hourly ratios / (budget *
    // hours in the month).
    // Grafana's `${__to:date:M}` is the month number of the range end, in UTC as PromQL's.
    let m = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .month();
    let month = format!(
        "1-(sum_over_time((slo:sli_error:ratio_rate1h{{{ids}}} * on() group_left() (month() == bool vector({m})))[32d:1h]) / on(sloth_id) (slo:error_budget:ratio{{{ids}}} * on() group_left() (24 * days_in_month())))"
    );
    query(prom, &month)
        .await
        .unwrap_or_else(|e| panic!("{month}: {e}"));
}

/// A second agent with the same rules and alerting but without the Sloth series, and with the
/// full series set (`export.series: full`): once its page has every kind of series (a scraped
/// target, latency percentiles, the alerting families), `promtool check metrics` reads the
/// text page it serves to a scraper that does not ask for OpenMetrics and exits 0 without a
/// word. (promtool 2.42 reads text 0.0.4 only: on an
/// OpenMetrics page every counter lacks help under its `_total` name.)
fn start_plain_agent(dir: &tempfile::TempDir, rules: &str, hooks: &str) -> (Proc, SocketAddr) {
    let plain = dir.path().join("plain");
    std::fs::create_dir(&plain).expect("dir");
    std::fs::write(plain.join("shop.yaml"), rules).expect("rules");
    let addr = free_addr();
    let cfg = plain.join("burnwatch.yaml");
    std::fs::write(
        &cfg,
        format!(
            "listen: {addr}\nrules: [shop.yaml]\nevaluation_interval: 1s\ncheckpoint_interval: 1s\nexport: {{series: full}}\n\
             alerting:\n  route: {{receiver: oncall, group_wait: 1s}}\n  receivers:\n    - name: oncall\n      webhook: [{{url: 'http://{hooks}/hook'}}]\n"
        ),
    )
    .expect("config");
    (run_agent(&cfg), addr)
}

/// See [`start_plain_agent`].
async fn promtool_checks_a_live_page(addr: SocketAddr) {
    let prober = Prober::new(&[]).expect("prober");
    let url = format!("http://{addr}/metrics");
    let page = wait_for("a page with every kind of series", || async {
        let r = prober
            .fetch(&FetchRequest::new(&url, Dur::from_secs(2), 16 << 20))
            .await
            .map_err(|e| e.to_string())?;
        let body = String::from_utf8(r.body.to_vec()).map_err(|e| e.to_string())?;
        let complete = [
            "burnwatch_target_up{service=\"shop\",target=\"shop\"} 1",
            "burnwatch_slo_latency_seconds{",
            "burnwatch_notifications_total{",
            "burnwatch_checkpoint_last_success_timestamp_seconds ",
            // In the full set only.
            "burnwatch_slo_error_budget_seconds{",
            "burnwatch_slo_sli_ratio{service=\"shop\",slo=\"availability\",window=\"5m\"}",
        ]
        .iter()
        .all(|s| body.contains(s));
        if complete {
            Ok((r.content_type, body))
        } else {
            Err("not yet".to_owned())
        }
    })
    .await;
    assert_eq!(
        page.0.as_deref(),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(page.1.contains("percentile=\"99\""), "{}", page.1);
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool (installed with prometheus by scripts/test.sh)");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(page.1.as_bytes()).expect("write the page");
    }
    let out = child.wait_with_output().expect("promtool finishes");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_stores_the_documented_families_and_every_dashboard_query_has_data() {
    let started = Instant::now();

    // 1 request in 8 fails (500); 1 in 5 takes 320 ms (over the latency SLO's 300 ms).
    let behaviour = Behaviour {
        error_every: 8,
        errors_per_cycle: 1,
        latency: Duration::from_millis(1),
        slow_every: 5,
        slow_latency: Duration::from_millis(320),
        health_down: false,
    };
    let (base, svc, svc_stop) = start_service(behaviour).await;

    let (hooks, _received, hooks_stop) = start_receiver().await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("shop.yaml"), rules(&base)).expect("rules");
    let agent_addr = free_addr();
    let cfg = dir.path().join("burnwatch.yaml");
    std::fs::write(
        &cfg,
        format!(
            "listen: {agent_addr}\nrules: [shop.yaml]\nevaluation_interval: 1s\ncheckpoint_interval: 1s\nexport:\n  prometheus:\n    sloth_compatible: true\n\
             sources: {{prometheus: [{{name: archive, url: 'http://127.0.0.1:9'}}]}}\n\
             alerting:\n  route: {{receiver: oncall, group_wait: 1s}}\n  receivers:\n    - name: oncall\n      webhook: [{{url: 'http://{hooks}/hook'}}]\n"
        ),
    )
    .expect("config");
    let _agent = run_agent(&cfg);
    let (_plain_agent, plain_addr) = start_plain_agent(&dir, &rules(&base), &hooks.to_string());

    let (_prometheus, prom) = start_prometheus(
        &dir.path().join("prometheus"),
        "burnwatch",
        &agent_addr.to_string(),
    );

    // The agent's baseline scrape of the service: two completed scrapes after its API is up, so
    // every request from here on is counted (as tests/agent/agent.rs does).
    wait_baseline_scrapes(agent_addr).await;
    let before = svc.stats();
    let prober = Prober::new(&[]).expect("prober");
    drive(&prober, &base, DRIVEN).await;
    let truth = svc.stats();
    let total = truth.requests - before.requests;
    let bad = truth.code(500) - before.code(500);
    assert_eq!((total, bad), (DRIVEN, 10), "the schedule is exact");

    // b. The ratio SLO settles: Prometheus, the JSON API and the truth agree exactly.
    let sel = r#"{service="shop",slo="availability",window="30d"}"#;
    let stored_total = wait_for("Prometheus to store all driven events", || async {
        let v = one_value(prom, &format!("burnwatch_slo_window_events{sel}")).await?;
        if v == total as f64 {
            Ok(v)
        } else {
            Err(format!("stored {v} events"))
        }
    })
    .await;
    let api = get_json(agent_addr, "/api/v1/slos/shop/availability")
        .await
        .expect("agent API");
    assert_eq!(api["total"].as_u64(), Some(total), "{api}");
    assert_eq!(api["good"].as_u64(), Some(total - bad), "{api}");
    assert_eq!(stored_total, total as f64);
    let exact_sli = (total - bad) as f64 / total as f64;
    let stored_sli = one_value(prom, &format!("burnwatch_slo_sli_ratio{sel}"))
        .await
        .expect("stored SLI");
    let api_sli = api["sli"].as_f64().expect("API sli");
    assert_eq!(stored_sli.to_bits(), api_sli.to_bits(), "Prometheus vs API");
    assert!(
        (stored_sli - exact_sli).abs() < 1e-12,
        "stored {stored_sli}, exact {exact_sli}"
    );
    // The histogram-fed latency SLO's percentiles are histogram_quantile over the exact bucket
    // increases of the driven traffic (histogram_quantile itself is checked against
    // Prometheus's in tests/peers/prometheus_parity.rs).
    let mut buckets: Vec<(f64, f64)> = truth
        .buckets
        .iter()
        .zip(&before.buckets)
        .map(|(a, b)| (a.le.as_secs_f64(), (a.count - b.count) as f64))
        .collect();
    buckets.push((f64::INFINITY, total as f64));
    for (p, q) in [("50", 0.5), ("90", 0.9), ("95", 0.95), ("99", 0.99)] {
        let want = burnwatch::slo::histogram::histogram_quantile(q, &buckets).expect("traffic");
        let sel = format!(
            r#"burnwatch_slo_latency_seconds{{slo="latency",window="30d",percentile="{p}"}}"#
        );
        wait_for(&format!("p{p} of the latency SLO"), || async {
            let v = one_value(prom, &sel).await?;
            if (v - want).abs() < 1e-9 {
                Ok(())
            } else {
                Err(format!("stored {v}, exact {want}"))
            }
        })
        .await;
    }
    let objective = one_value(prom, r#"burnwatch_slo_objective_ratio{slo="availability"}"#)
        .await
        .expect("objective");
    assert!((objective - 0.99).abs() < 1e-12, "{objective}");

    // a. Every documented family is stored, every series with its documented labels.
    let families = documented_families();
    assert!(families.len() >= 39, "parsed only {families:?}");
    for f in &families {
        if NOT_IN_THIS_SETUP.contains(&f.name.as_str()) {
            continue;
        }
        let rows = wait_for(&format!("{} in Prometheus", f.name), || async {
            let rows = query(prom, &f.name).await?;
            if rows.is_empty() {
                Err("no series".into())
            } else {
                Ok(rows)
            }
        })
        .await;
        for (labels, _) in &rows {
            for l in &f.labels {
                assert!(
                    labels.contains_key(l),
                    "{}: series {labels:?} lacks the documented label `{l}`",
                    f.name
                );
            }
        }
    }
    // The compact set: the SLI over the SLO window, burn rates over the default tiers' windows.
    for (family, expected) in [
        ("burnwatch_slo_sli_ratio", &["30d"][..]),
        (
            "burnwatch_slo_burn_rate",
            &["5m", "30m", "1h", "2h", "6h", "1d", "3d"][..],
        ),
    ] {
        let windows: BTreeSet<String> = query(prom, &format!(r#"{family}{{slo="availability"}}"#))
            .await
            .expect("windows")
            .into_iter()
            .filter_map(|(l, _)| l.get("window").cloned())
            .collect();
        let expected: BTreeSet<String> = expected.iter().map(|w| (*w).to_owned()).collect();
        assert_eq!(windows, expected, "{family}");
    }
    for (slo, window) in OTHER_WINDOWS.iter().zip(["7d", "90d"]) {
        let stored = one_value(
            prom,
            &format!(r#"burnwatch_slo_window_events{{slo="{slo}",window="{window}"}}"#),
        )
        .await
        .expect("the SLO window's events");
        assert_eq!(stored, total as f64, "{slo}");
    }

    // c. Every dashboard query returns data for at least one SLO of this setup.
    let dash_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dash_dir)
        .expect("dashboards/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "dashboards: {files:?}");
    let mut checked = 0;
    let mut dead = Vec::new();
    for file in &files {
        let json: Value =
            serde_json::from_str(&std::fs::read_to_string(file).expect("dashboard")).expect("JSON");
        let mut found = Vec::new();
        exprs(&json["panels"], "", &mut found);
        assert!(!found.is_empty(), "{}: no expressions", file.display());
        for (panel, expr) in found {
            let mut ok = false;
            let mut errors = Vec::new();
            for slo in SLOS {
                let e = substitute(&expr, slo);
                assert!(!e.contains('$'), "unsubstituted variable in {e}");
                match query(prom, &e).await {
                    Ok(rows) if !rows.is_empty() => {
                        ok = true;
                        break;
                    }
                    Ok(_) => {}
                    Err(err) => errors.push(err),
                }
            }
            // What shows for the 30d SLO shows for the 7d and 90d ones.
            if query(prom, &substitute(&expr, "availability"))
                .await
                .is_ok_and(|rows| !rows.is_empty())
            {
                for slo in OTHER_WINDOWS {
                    let rows = query(prom, &substitute(&expr, slo)).await;
                    if !rows.as_ref().is_ok_and(|r| !r.is_empty()) {
                        dead.push(format!(
                            "{} / panel {panel:?}: {expr} shows nothing for {slo} ({rows:?})",
                            file.file_name().unwrap_or_default().to_string_lossy()
                        ));
                    }
                }
            }
            checked += 1;
            if !ok {
                dead.push(format!(
                    "{} / panel {panel:?}: {expr} (errors: {errors:?})",
                    file.file_name().unwrap_or_default().to_string_lossy()
                ));
            }
        }
    }
    assert!(
        dead.is_empty(),
        "dead dashboard queries:\n{}",
        dead.join("\n")
    );
    assert!(checked >= 30, "checked only {checked} expressions");

    sloth_dashboard_queries(prom, total, bad).await;
    promtool_checks_a_live_page(plain_addr).await;

    // The template variables' queries (`label_values(metric, label)`) find their label.
    for file in &files {
        let json: Value =
            serde_json::from_str(&std::fs::read_to_string(file).expect("dashboard")).expect("JSON");
        for var in json["templating"]["list"].as_array().expect("templating") {
            let Some(q) = var["definition"].as_str() else {
                continue;
            };
            let inner = q
                .strip_prefix("label_values(")
                .and_then(|s| s.strip_suffix(')'))
                .expect("label_values query");
            let (metric, label) = inner.rsplit_once(',').expect("metric, label");
            let rows = query(prom, &substitute(metric.trim(), "availability"))
                .await
                .expect("variable query");
            assert!(
                rows.iter().any(|(l, _)| l.contains_key(label.trim())),
                "variable {}: {q} finds nothing",
                var["name"]
            );
        }
    }

    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    let _ = svc_stop.send(true);
    let _ = hooks_stop.send(true);
}
