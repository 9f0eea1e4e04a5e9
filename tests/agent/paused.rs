//! The whole agent on tokio's paused clock: [`Daemon::start`] (the wiring `run` and `demo` use)
//! with a [`Clock::following_tokio`] and the synthetic service answering its collectors in
//! process ([`InProcess`]), traffic from [`Service::request`], and a real webhook receiver on
//! loopback in the same runtime. Hours of outage and recovery with production intervals (15 s
//! scrapes, 10 s probes, 30 s evaluation, 30 s group_wait) and the default 30-day tiers run in
//! about a second, deterministically; the tests that need real time (the binary, SIGKILL,
//! real peers) are elsewhere and stay short.
//!
//! Each tier's page and resolve are checked against bounds computed from the failures the
//! service served (the ground truth) and the tier's math, and every alert is notified exactly
//! once firing and once resolved.

use crate::common::HookSink;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use burnwatch::agent::Environment;
use burnwatch::clock::Clock;
use burnwatch::daemon::Daemon;
use burnwatch::shutdown::Shutdown;
use burnwatch::synthetic::{Behaviour, InProcess, Service};
use burnwatch::time::Timestamp;
use tokio::time::Instant;

const BASE: &str = "http://shop.test";
/// Traffic: one request every this long (2 per second).
const PERIOD: Duration = Duration::from_millis(500);
const RPS: f64 = 2.0;
const SCRAPE: Duration = Duration::from_secs(15);
const PROBE: Duration = Duration::from_secs(10);
const EVAL: Duration = Duration::from_secs(30);
const GROUP_WAIT: Duration = Duration::from_secs(30);
const GROUP_INTERVAL: Duration = Duration::from_secs(300);
const KEEP_FIRING_FOR: Duration = Duration::from_secs(60);
/// The engine's bucket for windows up to 6h, and above.
const FINE: Duration = Duration::from_secs(60);
const COARSE: Duration = Duration::from_secs(600);
const OBJECTIVE: f64 = 0.999;
/// 2026-12-01T00:00:00Z: a fixed start, so every run is the same.
const START: Timestamp = Timestamp(1_796_083_200_000);

const HEALTHY: Behaviour = Behaviour {
    error_every: 0,
    errors_per_cycle: 0,
    latency: Duration::ZERO,
    slow_every: 0,
    slow_latency: Duration::ZERO,
    health_down: false,
};

const OUTAGE: Behaviour = Behaviour {
    error_every: 1,
    errors_per_cycle: 1,
    health_down: true,
    ..HEALTHY
};

/// A default tier: name, long and short windows, factor.
struct Tier {
    name: &'static str,
    long: Duration,
    short: Duration,
    factor: f64,
}

const HOUR: u64 = 3600;
/// The default tiers of a 30d window (docs/rules.md), keep_firing_for 1m each.
const TIERS: [Tier; 4] = [
    Tier {
        name: "page_fast",
        long: Duration::from_secs(HOUR),
        short: Duration::from_secs(300),
        factor: 14.4,
    },
    Tier {
        name: "page_slow",
        long: Duration::from_secs(6 * HOUR),
        short: Duration::from_secs(1800),
        factor: 6.0,
    },
    Tier {
        name: "ticket_fast",
        long: Duration::from_secs(24 * HOUR),
        short: Duration::from_secs(2 * HOUR),
        factor: 3.0,
    },
    Tier {
        name: "ticket_slow",
        long: Duration::from_secs(72 * HOUR),
        short: Duration::from_secs(6 * HOUR),
        factor: 1.0,
    },
];

fn rules() -> String {
    format!(
        r#"version: burnwatch/v1
service: shop
probes:
  - name: health
    http: {{url: "{BASE}/healthz"}}
    interval: 10s
    alert: {{failures: 3, successes: 1}}
scrape:
  - name: shop
    url: {BASE}/metrics
    interval: 15s
slos:
  - name: availability
    objective: 99.9
    window: 30d
    indicator:
      ratio:
        bad: 'demo_http_requests_total{{code=~"5..",job="shop"}}'
        total: 'demo_http_requests_total{{job="shop"}}'
    alerting:
      tiers:
        page_fast: {{keep_firing_for: 1m}}
        page_slow: {{keep_firing_for: 1m}}
        ticket_fast: {{keep_firing_for: 1m}}
        ticket_slow: {{keep_firing_for: 1m}}
"#
    )
}

fn config(dir: &std::path::Path, hook: &HookSink) -> String {
    format!(
        "listen: 127.0.0.1:0\nrules: [{}]\nevaluation_interval: 30s\ncheckpoint_interval: 10m\n\
         alerting:\n  route:\n    receiver: hook\n    group_by: ['...']\n    group_wait: 30s\n    \
         group_interval: 5m\n    repeat_interval: 24h\n  receivers:\n    - name: hook\n      \
         webhook:\n        - url: {}\n          send_resolved: true\n",
        dir.join("shop.yaml").display(),
        hook.url("/alerts")
    )
}

/// The daemon on paused time with `rules` (written to `dir`) and the config of [`config`], the
/// synthetic service answering in process (healthy): the daemon, the service and the API address.
async fn start_shop(
    dir: &std::path::Path,
    rules: &str,
    hook: &HookSink,
) -> (Daemon, Service, std::net::SocketAddr) {
    std::fs::write(dir.join("shop.yaml"), rules).expect("rules");
    let cfg = burnwatch::config::parse(&dir.join("burnwatch.yaml"), config(dir, hook).as_bytes())
        .expect("config");
    let rule_set = burnwatch::rules::load_str("shop.yaml", rules).expect("rules");
    let svc = Service::new(HEALTHY);
    let env = Environment {
        clock: Clock::following_tokio(START),
        checker: Some(Arc::new(InProcess::new(BASE, svc.clone()))),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let daemon = Daemon::start(cfg, rule_set, listener, &Shutdown::new(), env)
        .await
        .expect("daemon starts");
    (daemon, svc, addr)
}

/// Requests to `svc` at the tests' steady rate, until aborted.
fn steady_traffic(svc: &Service) -> tokio::task::JoinHandle<()> {
    let svc = svc.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PERIOD);
        loop {
            tick.tick().await;
            svc.request().await;
        }
    })
}

/// What the webhook received, per alert (alertname and tier): the simulated instants of its
/// firing and resolved notifications.
type Seen = BTreeMap<String, (Vec<Instant>, Vec<Instant>)>;

fn seen(hook: &HookSink) -> Seen {
    let mut out: Seen = BTreeMap::new();
    for h in hook.received() {
        // The sink stamps tokio instants: under paused time, simulated ones.
        let at = h.at;
        for a in h.body["alerts"].as_array().expect("alerts") {
            let key = format!(
                "{}/{}",
                a["labels"]["alertname"].as_str().unwrap_or("?"),
                a["labels"]["tier"]
                    .as_str()
                    .or(a["labels"]["probe"].as_str())
                    .unwrap_or("-")
            );
            let e = out.entry(key).or_default();
            match a["status"].as_str() {
                Some("firing") => e.0.push(at),
                Some("resolved") => e.1.push(at),
                other => panic!("status {other:?}"),
            }
        }
    }
    out
}

/// Failures the service answered in (t - w, t], from the (sorted) log of failure instants.
fn failures_in(log: &[Instant], t: Instant, w: Duration) -> f64 {
    let upto = log.partition_point(|&f| f <= t);
    let before = match t.checked_sub(w) {
        Some(from) => log.partition_point(|&f| f <= from),
        None => 0,
    };
    (upto - before) as f64
}

/// Whether a window of `w` certainly (`sure`) or possibly (`!sure`) reads a burn above the
/// tier's threshold at `t`. The agent counts the errors against a whole window's events
/// (coverage x ratio, docs/rules.md), so its value is failures / (RPS x w'), where w' is the
/// window plus at most one bucket (it reads every bucket the window overlaps).
fn above(log: &[Instant], t: Instant, w: Duration, factor: f64, sure: bool) -> bool {
    let bucket = if w <= Duration::from_secs(6 * HOUR) {
        FINE
    } else {
        COARSE
    };
    let threshold = factor * (1.0 - OBJECTIVE);
    let wide = w + bucket;
    if sure {
        failures_in(log, t, w) / (RPS * wide.as_secs_f64()) > threshold
    } else {
        failures_in(log, t, wide) / (RPS * w.as_secs_f64()) > threshold
    }
}

#[tokio::test(start_paused = true)]
async fn an_outage_pages_every_tier_within_its_bounds_and_resolves_on_paused_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = HookSink::start().await;
    let (daemon, svc, _) = start_shop(dir.path(), &rules(), &hook).await;

    // Traffic at RPS, logging the instant of every failure (the ground truth).
    let failures: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let served = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let traffic = {
        let (svc, failures, served) = (svc.clone(), failures.clone(), served.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PERIOD);
            loop {
                tick.tick().await;
                if svc.request().await == 500 {
                    failures.lock().expect("log").push(Instant::now());
                }
                served.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        })
    };

    // Two healthy hours, then 20 minutes of outage, then six and a half healthy hours: long
    // enough for the slowest tier's 6h short window to clear and its resolve to be sent.
    tokio::time::sleep(Duration::from_secs(2 * HOUR)).await;
    assert!(hook.received().is_empty(), "nothing pages while healthy");
    let outage_start = Instant::now();
    svc.set_behaviour(OUTAGE);
    tokio::time::sleep(Duration::from_secs(20 * 60)).await;
    let recovery = Instant::now();
    svc.set_behaviour(HEALTHY);
    tokio::time::sleep(Duration::from_secs(13 * HOUR / 2)).await;
    traffic.abort();
    let log = failures.lock().expect("log").clone();
    let got = seen(&hook);
    daemon.shutdown().await;

    // The ground truth: every request of the outage failed, none outside it.
    assert_eq!(log.len() as f64, 20.0 * 60.0 * RPS, "failures served");
    assert!(log.iter().all(|&t| t >= outage_start && t < recovery));
    assert!(log.is_sorted(), "failures are logged in order");
    let total = served.load(std::sync::atomic::Ordering::Relaxed) as f64;
    assert!(total >= (8.5 * 3600.0 + 20.0 * 60.0) * RPS - 1.0, "{total}");

    let mut report = Vec::new();
    // The pages' resolved notifications (TIERS lists the pages first).
    let mut pages_resolved = Vec::new();
    for tier in &TIERS {
        let key = format!("SloBurnRate/{}", tier.name);
        let (firing, resolved) = got
            .get(&key)
            .unwrap_or_else(|| panic!("{key} never notified: {got:?}"));
        assert_eq!(
            (firing.len(), resolved.len()),
            (1, 1),
            "{key}: one firing and one resolved notification: {got:?}"
        );
        let (fired_at, resolved_at) = (firing[0], resolved[0]);
        // The instants, on a one-second grid, where the condition possibly / certainly holds
        // in the truth, and where it certainly / possibly has stopped holding.
        let grid = |from: Instant| (0..20 * HOUR).map(move |s| from + Duration::from_secs(s));
        let holds = |t: Instant, sure: bool| {
            above(&log, t, tier.long, tier.factor, sure)
                && above(&log, t, tier.short, tier.factor, sure)
        };
        let possibly_true = grid(outage_start)
            .find(|&t| holds(t, false))
            .expect("possibly true");
        let surely_true = grid(outage_start)
            .find(|&t| holds(t, true))
            .expect("certainly true");
        let possibly_false = grid(surely_true)
            .find(|&t| !holds(t, true))
            .expect("possibly false");
        let surely_false = grid(surely_true)
            .find(|&t| !holds(t, false))
            .expect("certainly false");
        // Seen at the next scrape, decided at the next evaluation, sent after group_wait. A
        // ticket is inhibited while a page of the same SLO fires (the default inhibit rule):
        // it is sent at its group's first flush after the last page resolved.
        let inhibited_until = if tier.name.starts_with("ticket") {
            pages_resolved.iter().copied().max()
        } else {
            None
        };
        let fire_bound = (surely_true + SCRAPE + EVAL + GROUP_WAIT)
            .max(inhibited_until.map_or(outage_start, |t| t + EVAL + GROUP_INTERVAL));
        assert!(
            fired_at >= possibly_true + GROUP_WAIT,
            "{key} fired {:?} after the outage began, before its condition could hold ({:?}) \
             plus group_wait",
            fired_at - outage_start,
            possibly_true - outage_start
        );
        assert!(
            fired_at <= fire_bound,
            "{key} fired {:?} after the outage began; its condition held at {:?} (inhibited \
             until {:?})",
            fired_at - outage_start,
            surely_true - outage_start,
            inhibited_until.map(|t| t - outage_start)
        );
        if tier.name.starts_with("page") {
            pages_resolved.push(resolved_at);
        } else {
            assert!(
                inhibited_until.is_some_and(|t| fired_at >= t),
                "{key} was sent while a page fired"
            );
        }
        // Cleared in the truth, seen at a scrape, decided at an evaluation, held for
        // keep_firing_for (checked at evaluations), sent at the group's next flush.
        assert!(
            resolved_at >= possibly_false + KEEP_FIRING_FOR,
            "{key} resolved {:?} after recovery, before its condition could clear ({:?}) plus \
             keep_firing_for",
            resolved_at - recovery,
            possibly_false - recovery
        );
        assert!(
            resolved_at <= surely_false + SCRAPE + EVAL + KEEP_FIRING_FOR + EVAL + GROUP_INTERVAL,
            "{key} resolved {:?} after recovery; its condition cleared at {:?}",
            resolved_at - recovery,
            surely_false - recovery
        );
        report.push(format!(
            "{}: fired {:?} after the outage began (condition {:?}..{:?}), resolved {:?} after \
             recovery (condition {:?}..{:?})",
            tier.name,
            fired_at - outage_start,
            possibly_true - outage_start,
            surely_true - outage_start,
            resolved_at - recovery,
            possibly_false - recovery,
            surely_false - recovery,
        ));
    }

    // The health probe: down after three failed checks, up at the first good one.
    let (firing, resolved) = got.get("ProbeDown/health").expect("ProbeDown notified");
    assert_eq!((firing.len(), resolved.len()), (1, 1), "{got:?}");
    assert!(firing[0] >= outage_start + 2 * PROBE + GROUP_WAIT);
    assert!(firing[0] <= outage_start + 3 * PROBE + PROBE + EVAL + GROUP_WAIT);
    assert!(resolved[0] >= recovery && resolved[0] <= recovery + PROBE + EVAL + GROUP_INTERVAL);
    // Nothing else: the budget (46 % spent) is not exhausted and data never stopped.
    assert_eq!(
        got.len(),
        TIERS.len() + 1,
        "only the tiers and ProbeDown: {got:?}"
    );
    println!("{}", report.join("\n"));
}

/// The synthetic services of a rule set, each at its own base URL, answering in process.
struct Services(Vec<(String, InProcess)>);

#[async_trait::async_trait]
impl burnwatch::probe::Checker for Services {
    async fn check(
        &self,
        probe: &burnwatch::rules::model::Probe,
    ) -> burnwatch::probe::ProbeOutcome {
        let url = match &probe.kind {
            burnwatch::rules::model::ProbeKind::Http(h) => h.url.as_str(),
            _ => "",
        };
        let svc = self
            .0
            .iter()
            .find(|(base, _)| url.starts_with(base.as_str()));
        svc.unwrap_or(&self.0[0]).1.check(probe).await
    }

    async fn fetch(
        &self,
        req: &burnwatch::probe::FetchRequest<'_>,
    ) -> Result<burnwatch::probe::FetchResponse, burnwatch::probe::FetchError> {
        let svc = self
            .0
            .iter()
            .find(|(base, _)| req.url.starts_with(base.as_str()));
        svc.unwrap_or(&self.0[0]).1.fetch(req).await
    }
}

/// One service's document: a scraped availability SLO, a latency SLO on its histogram and an
/// SLO on its health probe.
fn service_rules(name: &str) -> String {
    format!(
        r#"version: burnwatch/v1
service: {name}
probes:
  - name: {name}-health
    http: {{url: "http://{name}.test/healthz"}}
    interval: 10s
    alert: {{failures: 3, successes: 1}}
scrape:
  - name: {name}
    url: http://{name}.test/metrics
    interval: 15s
slos:
  - name: availability
    objective: 99
    window: 30d
    indicator:
      ratio:
        bad: 'demo_http_requests_total{{job="{name}",code=~"5.."}}'
        total: 'demo_http_requests_total{{job="{name}"}}'
  - name: latency
    objective: 99
    window: 7d
    indicator:
      latency_threshold:
        threshold: 300ms
        histogram: 'demo_http_request_duration_seconds{{job="{name}"}}'
  - name: health
    objective: 99.9
    window: 30d
    indicator:
      probe: {name}-health
"#
    )
}

/// What one SLO report says, for comparing agents: every count, SLI, burn rate, coverage,
/// budget figure and tier condition (the engine's index differs between agents).
fn numbers(r: &burnwatch::slo::engine::SloReport) -> String {
    format!(
        "{:?} {:?} {:?} {:?} {:?}",
        r.window, r.alert_windows, r.budget, r.time_to_exhaustion, r.tiers
    )
}

#[tokio::test(start_paused = true)]
async fn three_shards_evaluate_every_slo_once_and_their_union_equals_one_agent() {
    use burnwatch::shard::Shard;
    const SERVICES: usize = 9;
    let names: Vec<String> = (0..SERVICES).map(|i| format!("svc{i}")).collect();
    let text: String = names
        .iter()
        .map(|n| service_rules(n))
        .collect::<Vec<_>>()
        .join("---\n");
    let services: Vec<Service> = (0..SERVICES)
        .map(|i| {
            Service::new(Behaviour {
                // Every service fails some requests, each its own share; some are slow.
                error_every: 10 + i as u32,
                errors_per_cycle: 1,
                slow_every: 7,
                slow_latency: Duration::from_millis(400),
                latency: Duration::from_millis(20),
                health_down: false,
            })
        })
        .collect();
    let checker = Arc::new(Services(
        names
            .iter()
            .zip(&services)
            .map(|(n, s)| {
                let base = format!("http://{n}.test");
                (base.clone(), InProcess::new(base, s.clone()))
            })
            .collect(),
    ));
    let clock = Clock::following_tokio(START);
    let shards = [
        Some(Shard { index: 0, total: 3 }),
        Some(Shard { index: 1, total: 3 }),
        Some(Shard { index: 2, total: 3 }),
        None,
    ];
    let mut dirs = Vec::new();
    let mut daemons = Vec::new();
    let shutdown = Shutdown::new();
    for shard in shards {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("rules.yaml"), &text).expect("rules");
        let shard_line = shard.map_or(String::new(), |s| {
            format!("shard: {{index: {}, total: {}}}\n", s.index, s.total)
        });
        let yaml = format!(
            "listen: 127.0.0.1:0\nrules: [rules.yaml]\nevaluation_interval: 30s\n\
             checkpoint_interval: 10m\n{shard_line}"
        );
        let cfg = burnwatch::config::parse(&dir.path().join("burnwatch.yaml"), yaml.as_bytes())
            .expect("config");
        assert_eq!(cfg.shard, shard);
        let rule_set = burnwatch::rules::load_str("rules.yaml", &text).expect("rules");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let env = Environment {
            clock,
            checker: Some(checker.clone()),
        };
        daemons.push(
            Daemon::start(cfg, rule_set, listener, &shutdown, env)
                .await
                .expect("starts"),
        );
        dirs.push(dir);
    }

    // Every target's first scrape (its baseline) before any traffic.
    tokio::time::sleep(SCRAPE + Duration::from_secs(1)).await;
    // Traffic to every service, two requests a second each; svc1 and svc4 fail whole for 10
    // minutes, and svc4's health check with them.
    let traffic: Vec<_> = services
        .iter()
        .cloned()
        .map(|svc| {
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(PERIOD);
                loop {
                    tick.tick().await;
                    svc.request().await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(30 * 60)).await;
    let normal = [1, 4].map(|i| services[i].behaviour());
    services[1].set_behaviour(Behaviour {
        health_down: false,
        ..OUTAGE
    });
    services[4].set_behaviour(OUTAGE);
    tokio::time::sleep(Duration::from_secs(10 * 60)).await;
    services[1].set_behaviour(normal[0]);
    services[4].set_behaviour(normal[1]);
    tokio::time::sleep(Duration::from_secs(20 * 60)).await;
    for t in traffic {
        t.abort();
    }
    // Two more minutes: every target scraped again after the last request.
    tokio::time::sleep(Duration::from_secs(120)).await;

    let snaps: Vec<_> = daemons
        .iter()
        .map(|d| d.subscribe().borrow().clone())
        .collect();
    let views: Vec<_> = daemons.iter().map(|d| d.alerting().view()).collect();
    let (parts, whole) = snaps.split_at(3);
    let whole = &whole[0];
    assert!(
        parts.iter().all(|s| s.at == whole.at),
        "one evaluation instant"
    );
    assert_eq!(whole.slos.len(), 3 * SERVICES);

    // Every SLO in exactly one shard, none empty, with the same numbers as the single agent.
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (i, part) in parts.iter().enumerate() {
        assert!(!part.slos.is_empty(), "shard {i} has SLOs");
        assert_eq!(
            part.targets.len() * 3,
            part.slos.len(),
            "shard {i}: its targets"
        );
        assert_eq!(
            part.probes.len() * 3,
            part.slos.len(),
            "shard {i}: its probes"
        );
        for r in &part.slos {
            *seen.entry(r.id.to_string()).or_default() += 1;
            let one = whole
                .slos
                .iter()
                .find(|w| w.id == r.id)
                .expect("the single agent has it");
            assert_eq!(numbers(r), numbers(one), "{} in shard {i}", r.id);
        }
    }
    assert_eq!(seen.len(), 3 * SERVICES, "{seen:?}");
    assert!(seen.values().all(|&n| n == 1), "each SLO once: {seen:?}");

    // The counts are the services' own (traffic started after every first scrape baseline).
    for (name, svc) in names.iter().zip(&services) {
        let r = whole
            .slos
            .iter()
            .find(|r| r.id.service == *name && r.id.slo == "availability")
            .expect("availability");
        let truth = svc.stats();
        assert_eq!(r.window.total, truth.requests, "{name}");
        assert_eq!(r.window.good, truth.code(200), "{name}");
    }

    // The same alerts, each raised by exactly one shard.
    let alerts = |v: &burnwatch::view::AlertingView| -> Vec<String> {
        v.alerts
            .iter()
            .map(|a| {
                format!(
                    "{:?} {:?} {:?}",
                    a.alert.labels, a.alert.starts_at, a.alert.ends_at
                )
            })
            .collect()
    };
    let mut union: Vec<String> = views[..3].iter().flat_map(|v| alerts(v)).collect();
    union.sort();
    let mut single = alerts(&views[3]);
    single.sort();
    assert!(!single.is_empty(), "the outage raised alerts");
    assert_eq!(union, single);

    for d in daemons {
        d.shutdown().await;
    }
    println!(
        "SLOs per shard: {:?}; alerts: {}",
        parts.iter().map(|p| p.slos.len()).collect::<Vec<_>>(),
        single.len()
    );
}

/// A grouped SLO through the whole agent: its instance (the service's one `path`) is created
/// from the scraped series, pages with its group label, and shows on `/metrics` and the API
/// under its rule's name with that label, at the address its alert links to.
#[tokio::test(start_paused = true)]
async fn a_grouped_slo_instance_pages_and_exports_with_its_label() {
    let rules = format!(
        r#"version: burnwatch/v1
service: shop
scrape:
  - name: shop
    url: {BASE}/metrics
    interval: 15s
slos:
  - name: by_path
    objective: 99.9
    group_by: [path]
    max_instances: 10
    indicator:
      ratio:
        bad: 'demo_http_requests_total{{code=~"5.."}}'
        total: demo_http_requests_total
"#
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = HookSink::start().await;
    let (daemon, svc, addr) = start_shop(dir.path(), &rules, &hook).await;
    let traffic = steady_traffic(&svc);
    tokio::time::sleep(Duration::from_secs(30 * 60)).await;
    svc.set_behaviour(OUTAGE);
    tokio::time::sleep(Duration::from_secs(10 * 60)).await;
    traffic.abort();

    let id = "by_path%7Bpath%3D%22%2Fapi%22%7D";
    let pages: Vec<serde_json::Value> = hook
        .received()
        .iter()
        .flat_map(|h| h.body["alerts"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["labels"]["tier"] == "page_fast" && a["status"] == "firing")
        .collect();
    assert_eq!(pages.len(), 1, "one page for the one instance: {pages:?}");
    let labels = &pages[0]["labels"];
    assert_eq!(labels["slo"], "by_path");
    assert_eq!(labels["path"], "/api");
    let url = pages[0]["generatorURL"].as_str().expect("generatorURL");
    assert!(url.ends_with(&format!("/api/v1/slos/shop/{id}")), "{url}");

    let (status, page) = crate::common::exchange(addr, "GET", "/metrics", "")
        .await
        .expect("/metrics");
    let page = String::from_utf8(page.to_vec()).expect("text");
    assert_eq!(status, 200);
    assert!(
        page.lines().any(|l| l.starts_with("burnwatch_slo_")
            && l.contains("slo=\"by_path\"")
            && l.contains("path=\"/api\"")),
        "{page}"
    );
    assert!(
        page.contains("burnwatch_slo_group_instances{service=\"shop\",slo=\"by_path\"} 1"),
        "{page}"
    );
    let slo = crate::common::get_json(addr, &format!("/api/v1/slos/shop/{id}"))
        .await
        .expect("the alert's link answers");
    assert_eq!(slo["name"], "by_path");
    assert_eq!(slo["slo"], "by_path{path=\"/api\"}");
    assert_eq!(slo["group"]["path"], "/api");
    assert!(slo["total"].as_u64().is_some_and(|t| t > 0), "{slo}");
    daemon.shutdown().await;
}

/// A Sloth file run as it is (with a `burnwatch/v1` document declaring the target it reads):
/// its events queries count the service's requests exactly, and an outage pages with the routing
/// the Sloth file gave its page alert.
#[tokio::test(start_paused = true)]
async fn a_sloth_file_runs_as_it_is_and_pages_with_its_routing() {
    let rules = r#"version: "prometheus/v1"
service: "shop"
labels:
  owner: "myteam"
slos:
  - name: "requests-availability"
    objective: 99.9
    sli:
      events:
        error_query: sum(rate(demo_http_requests_total{job="shop",code=~"(5..|429)"}[{{.window}}]))
        total_query: sum(rate(demo_http_requests_total{job="shop"}[{{.window}}]))
    alerting:
      name: ShopHighErrorRate
      labels:
        category: "availability"
      annotations:
        summary: "High error rate on 'shop' requests"
      page_alert:
        labels:
          severity: critical
          routing_key: myteam
        annotations:
          runbook: "https://runbooks.example/shop"
      ticket_alert:
        disable: true
"#;
    let alerts = imported_file_outage(rules, "requests-availability").await;
    let tiers: Vec<&str> = alerts
        .iter()
        .filter_map(|a| a["labels"]["tier"].as_str())
        .collect();
    assert!(tiers.contains(&"page_fast"), "{alerts:?}");
    assert!(
        tiers.iter().all(|t| t.starts_with("page")),
        "the ticket alerts are disabled: {tiers:?}"
    );
    for a in &alerts {
        let l = &a["labels"];
        assert_eq!(l["severity"], "critical", "{l}");
        assert_eq!(l["routing_key"], "myteam", "{l}");
        assert_eq!(l["category"], "availability", "{l}");
        assert_eq!(l["owner"], "myteam", "{l}");
        // The file's annotations, over burnwatch's own (which keep the numbers).
        let an = &a["annotations"];
        assert_eq!(an["summary"], "High error rate on 'shop' requests", "{an}");
        assert_eq!(an["runbook"], "https://runbooks.example/shop", "{an}");
        assert!(an["burn_rate"].as_str().is_some(), "{an}");
    }
}

/// An OpenSLO file run as it is (objects in a list, an SLI and an alert policy by reference,
/// beside a `burnwatch/v1` document declaring the target): its Prometheus counter queries count
/// the service's requests exactly, and an outage pages through the policy's tier with its
/// severity, its notification target's name for routes and the SLO's annotations.
#[tokio::test(start_paused = true)]
async fn an_openslo_file_runs_as_it_is_and_pages_through_its_policy() {
    let rules = r#"- apiVersion: openslo/v1
  kind: SLI
  metadata:
    name: shop-requests
  spec:
    ratioMetric:
      counter: true
      bad:
        metricSource:
          type: Prometheus
          spec:
            query: sum(demo_http_requests_total{job="shop",code=~"(5..|429)"})
      total:
        metricSource:
          type: Prometheus
          spec:
            query: sum(rate(demo_http_requests_total{job="shop"}[5m]))
- apiVersion: openslo/v1
  kind: AlertPolicy
  metadata:
    name: fast-burn
  spec:
    conditions:
      - kind: AlertCondition
        metadata:
          name: fast-burn-1h
        spec:
          severity: critical
          condition:
            kind: burnrate
            op: gt
            threshold: 14.4
            lookbackWindow: 1h
    notificationTargets:
      - targetRef: oncall
- apiVersion: openslo/v1
  kind: AlertNotificationTarget
  metadata:
    name: oncall
  spec:
    target: pagerduty
---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: requests-availability
  annotations:
    runbook: "https://runbooks.example/shop"
spec:
  service: shop
  indicatorRef: shop-requests
  timeWindow:
    - duration: 30d
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - target: 0.999
  alertPolicies:
    - alertPolicyRef: fast-burn
"#;
    let alerts = imported_file_outage(rules, "requests-availability").await;
    assert!(!alerts.is_empty(), "the outage pages");
    for a in &alerts {
        let l = &a["labels"];
        // The policy is the only tier.
        assert_eq!(l["tier"], "fast-burn", "{l}");
        assert_eq!(l["severity"], "critical", "{l}");
        assert_eq!(l["notification_target"], "oncall", "{l}");
        let an = &a["annotations"];
        assert_eq!(an["runbook"], "https://runbooks.example/shop", "{an}");
    }
}

/// A rules file written in another spec, run as it is (with a `burnwatch/v1` document declaring
/// the `shop` target its selectors read, `job="shop"`) through 30 minutes of steady traffic and
/// a 10-minute outage: the firing burn-rate alerts it sent, once it is checked that SLO
/// `shop/<slo>` counted the service's requests exactly (every error, all served after the first
/// scrape, and every request but those before the first scrape: at most 15 s at 2 a second).
async fn imported_file_outage(rules: &str, slo: &str) -> Vec<serde_json::Value> {
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = HookSink::start().await;
    let rules = format!(
        "{rules}---\nversion: burnwatch/v1\nservice: shop-targets\nscrape:\n  - name: shop\n    url: {BASE}/metrics\n    interval: 15s\n"
    );
    let (daemon, svc, addr) = start_shop(dir.path(), &rules, &hook).await;
    let traffic = steady_traffic(&svc);
    tokio::time::sleep(Duration::from_secs(30 * 60)).await;
    svc.set_behaviour(OUTAGE);
    tokio::time::sleep(Duration::from_secs(10 * 60)).await;
    traffic.abort();
    // A last scrape and evaluation after the traffic stopped.
    tokio::time::sleep(Duration::from_secs(60)).await;
    let stats = svc.stats();
    let errors: u64 = stats
        .by_code
        .iter()
        .filter(|(c, _)| **c >= 500 || **c == 429)
        .map(|(_, n)| n)
        .sum();
    let alerts: Vec<serde_json::Value> = hook
        .received()
        .iter()
        .flat_map(|h| h.body["alerts"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["status"] == "firing" && a["labels"]["alertname"] == "SloBurnRate")
        .collect();
    let body = crate::common::get_json(addr, &format!("/api/v1/slos/shop/{slo}"))
        .await
        .expect("the SLO");
    let total = body["total"].as_u64().expect("total");
    let bad = total - body["good"].as_u64().expect("good");
    assert_eq!(bad, errors, "every error counted, once");
    assert!(errors > 0);
    assert!(
        total <= stats.requests && stats.requests - total <= 31,
        "{total} counted of {} served",
        stats.requests
    );
    daemon.shutdown().await;
    alerts
}

/// `GET /api/v1/slos/{service}/{slo}/history` during an outage: the points add up to the
/// window's counts the SLO reports, the outage shows in its steps and in the burn rates, and
/// a bad query is a 400 saying what would do.
#[tokio::test(start_paused = true)]
async fn the_history_endpoint_adds_up_to_the_slo_and_shows_the_outage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = HookSink::start().await;
    let (daemon, svc, addr) = start_shop(dir.path(), &rules(), &hook).await;
    let traffic = steady_traffic(&svc);
    tokio::time::sleep(Duration::from_secs(40 * 60)).await;
    svc.set_behaviour(OUTAGE);
    tokio::time::sleep(Duration::from_secs(10 * 60)).await;
    traffic.abort();
    // A last scrape and evaluation after the traffic stopped.
    tokio::time::sleep(Duration::from_secs(60)).await;

    let slo = crate::common::get_json(addr, "/api/v1/slos/shop/availability")
        .await
        .expect("the SLO");
    let h = crate::common::get_json(addr, "/api/v1/slos/shop/availability/history")
        .await
        .expect("the history");
    // The default range is the SLO's window, 30 days, at about 240 points of whole hours.
    assert_eq!(h["range"], "30d", "{h}");
    assert_eq!(h["resolution"], "1h", "{h}");
    assert_eq!(h["step"], "3h", "{h}");
    assert_eq!(h["unit"], "events", "{h}");
    let points = h["points"].as_array().expect("points");
    let sum = |k: &str| {
        points
            .iter()
            .map(|p| p[k].as_u64().expect("count"))
            .sum::<u64>()
    };
    assert_eq!(sum("total"), slo["total"].as_u64().expect("total"), "{slo}");
    assert_eq!(sum("good"), slo["good"].as_u64().expect("good"), "{slo}");
    assert!(sum("bad") > 0);
    let last = points.last().expect("points");
    let remaining = last["budget_remaining"].as_f64().expect("remaining");
    let reported = slo["budget_remaining_ratio"]
        .as_f64()
        .expect("budget remaining");
    assert!(
        (remaining - reported).abs() < 1e-9,
        "{remaining} vs {reported}"
    );
    // A finer look: the last hour by minutes. The outage is the last ten minutes with traffic.
    let fine = crate::common::get_json(
        addr,
        "/api/v1/slos/shop/availability/history?range=1h&step=1m",
    )
    .await
    .expect("the last hour");
    assert_eq!(fine["resolution"], "1m", "{fine}");
    let minutes = fine["points"].as_array().expect("points");
    assert_eq!(minutes.len(), 61, "{fine}");
    let failing = minutes
        .iter()
        .filter(|p| p["bad"].as_u64().unwrap_or(0) > 0)
        .count();
    assert!(
        (9..=12).contains(&failing),
        "{failing} minutes with errors: {fine}"
    );
    // The 5m burn rate peaks far above page_fast's 14.4 during the outage.
    let burn5 = fine["burn_rates"]["5m"].as_array().expect("5m burn rates");
    let peak = burn5.iter().filter_map(|b| b.as_f64()).fold(0.0, f64::max);
    assert!(peak > 14.4, "{peak}");
    // Bad queries say what would do.
    let (status, body) = crate::common::request(
        addr,
        "GET",
        "/api/v1/slos/shop/availability/history?range=1d&step=5m",
        "",
    )
    .await
    .expect("answer");
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("use a multiple of 10m")),
        "{body}"
    );
    let (status, _) = crate::common::request(addr, "GET", "/api/v1/slos/shop/nope/history", "")
        .await
        .expect("answer");
    assert_eq!(status, 404);
    daemon.shutdown().await;
}
