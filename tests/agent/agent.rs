//! The running agent against a real HTTP target on loopback (the synthetic service, whose own
//! exact counters are the ground truth): scraped and probed SLIs equal the truth, a broken rules
//! file is rejected while the agent keeps its last good rules, and a SIGKILLed agent restarts
//! from its checkpoint without losing budget.

use crate::common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use burnwatch::agent::Agent;
use burnwatch::config::AgentConfig;
use burnwatch::probe::{FetchRequest, Prober};
use burnwatch::slo::engine::SloReport;
use burnwatch::synthetic::{Behaviour, Service, Stats};
use burnwatch::time::Dur;
use burnwatch::view::AgentSnapshot;
use common::{Proc, drive, shop_rules, start_service};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Every wait in these tests is bounded by this.
const DEADLINE: Duration = Duration::from_secs(30);

/// Polls `f` on fresh snapshots until it holds, or panics with the last snapshot's SLOs.
async fn wait_until(
    rx: &mut watch::Receiver<Arc<AgentSnapshot>>,
    what: &str,
    f: impl Fn(&AgentSnapshot) -> bool,
) -> Arc<AgentSnapshot> {
    let end = Instant::now() + DEADLINE;
    loop {
        let snap = rx.borrow_and_update().clone();
        if f(&snap) {
            return snap;
        }
        assert!(
            Instant::now() < end,
            "timed out waiting for {what}; last snapshot: {:#?} {:#?}",
            snap.targets,
            snap.slos
                .iter()
                .map(|r| (&r.id, r.window.good, r.window.total))
                .collect::<Vec<_>>()
        );
        let _ = tokio::time::timeout(Duration::from_millis(500), rx.changed()).await;
    }
}

/// A synthetic service, rules for it in a temporary directory, and an in-process agent that has
/// made its first (baseline) scrape: traffic from here on is counted.
struct Fixture {
    base: String,
    svc: Service,
    svc_stop: watch::Sender<bool>,
    dir: tempfile::TempDir,
    rules_file: std::path::PathBuf,
    agent: Agent,
    rx: watch::Receiver<Arc<AgentSnapshot>>,
    prober: Prober,
}

impl Fixture {
    async fn start(b: Behaviour) -> Fixture {
        let (base, svc, svc_stop) = start_service(b).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let rules_file = dir.path().join("shop.yaml");
        std::fs::write(&rules_file, shop_rules(&base, "99")).expect("write rules");
        let agent = Agent::start(config(dir.path(), &rules_file))
            .await
            .expect("agent starts");
        let mut rx = agent.subscribe();
        // Traffic before the first scrape is the baseline (as Prometheus `increase`).
        wait_until(&mut rx, "a first scrape", |s| {
            s.targets[0].last_success_ms.is_some()
        })
        .await;
        Fixture {
            base,
            svc,
            svc_stop,
            dir,
            rules_file,
            agent,
            rx,
            prober: Prober::new(&[]).expect("prober"),
        }
    }
}

fn slo<'a>(s: &'a AgentSnapshot, name: &str) -> &'a SloReport {
    s.slos
        .iter()
        .find(|r| r.id.slo == name)
        .expect("slo present")
}

fn config(dir: &Path, rules_file: &Path) -> AgentConfig {
    let mut cfg =
        AgentConfig::with_rules(&dir.join("burnwatch.yaml"), vec![rules_file.to_path_buf()]);
    cfg.evaluation_interval = Dur::from_secs(1);
    cfg.checkpoint_interval = Dur::from_secs(1);
    cfg.reload_check_interval = Some(Dur::from_secs(1));
    cfg
}

/// Scrape increments since the baseline scrape: (total, bad, slow > 300ms).
fn since(base: &Stats, now: &Stats) -> (u64, u64, u64) {
    let slow = |s: &Stats| {
        s.slower_than(Duration::from_millis(300))
            .expect("300ms is an edge")
    };
    (
        now.requests - base.requests,
        now.code(500) - base.code(500),
        slow(now) - slow(base),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scraped_and_probed_slis_equal_the_targets_exact_counts() {
    // 1 in 8 requests fails, 1 in 5 takes 320 ms (over the 300 ms threshold).
    let b = Behaviour {
        error_every: 8,
        errors_per_cycle: 1,
        latency: Duration::from_millis(1),
        slow_every: 5,
        slow_latency: Duration::from_millis(320),
        health_down: false,
    };
    let Fixture {
        base,
        svc,
        svc_stop,
        dir,
        rules_file: _,
        agent,
        mut rx,
        prober,
    } = Fixture::start(b).await;
    let baseline = svc.stats();
    // The first scrape may have raced a request: take the truth from the first scrape after
    // this point, by waiting one more scrape before driving.
    let first = rx.borrow().targets[0].scrapes_total;
    wait_until(&mut rx, "a second scrape", |s| {
        s.targets[0].scrapes_total > first
    })
    .await;
    let baseline2 = svc.stats();
    assert_eq!(baseline.requests, baseline2.requests, "no traffic yet");

    drive(&prober, &base, 80).await;
    let truth = svc.stats();
    let (total, bad, slow) = since(&baseline, &truth);
    assert_eq!((total, bad, slow), (80, 10, 16), "the schedule is exact");

    let snap = wait_until(&mut rx, "the agent to see all 80 requests", |s| {
        slo(s, "availability").window.total == 80 && slo(s, "latency").window.total == 80
    })
    .await;
    let a = slo(&snap, "availability");
    assert_eq!((a.window.good, a.window.total), (70, 80));
    let l = slo(&snap, "latency");
    assert_eq!((l.window.good, l.window.total), (64, 80));
    // Burn rate over the 5m window: (10/80) / (1 - 0.99), computed exactly.
    let w5 = a
        .alert_windows
        .iter()
        .find(|w| w.length == Dur::from_mins(5))
        .expect("5m");
    assert_eq!((w5.good, w5.total), (70, 80));
    assert!(
        (w5.burn_rate - (10.0 / 80.0) / 0.01).abs() < 1e-9,
        "{}",
        w5.burn_rate
    );
    assert!((a.window.sli - 70.0 / 80.0).abs() < 1e-12);

    // The probe SLI equals the probe's own record; /healthz going down is counted as bad.
    svc.set_behaviour(Behaviour {
        health_down: true,
        ..b
    });
    let snap = wait_until(&mut rx, "two failed health checks", |s| {
        s.probes[0].failures_total >= 2
    })
    .await;
    let p = &snap.probes[0];
    let h = slo(&snap, "health");
    assert_eq!(h.window.total, p.checks_total);
    assert_eq!(h.window.total - h.window.good, p.failures_total);
    assert_eq!(p.last.as_ref().and_then(|l| l.status), Some(503));
    assert_eq!(
        p.last.as_ref().and_then(|l| l.failure_reason),
        Some("status")
    );

    // A target that stops answering is a recorded failure; counts stay as they were.
    let _ = svc_stop.send(true);
    let snap = wait_until(&mut rx, "a failed scrape", |s| !s.targets[0].up).await;
    assert!(snap.targets[0].failure.is_some());
    assert_eq!(slo(&snap, "availability").window.total, 80);
    agent.shutdown().await;
    assert!(
        dir.path().join("data/state.bwcp").exists(),
        "shutdown checkpoints"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_rules_are_rejected_and_the_last_good_rules_keep_running() {
    let b = Behaviour {
        latency: Duration::from_millis(1),
        ..Behaviour::healthy()
    };
    let Fixture {
        base,
        svc: _svc,
        svc_stop: _stop,
        dir: _dir,
        rules_file,
        agent,
        mut rx,
        prober,
    } = Fixture::start(b).await;
    let n = rx.borrow().targets[0].scrapes_total;
    wait_until(&mut rx, "another scrape", |s| {
        s.targets[0].scrapes_total > n
    })
    .await;
    drive(&prober, &base, 20).await;
    wait_until(&mut rx, "20 events", |s| {
        slo(s, "availability").window.total == 20
    })
    .await;
    let generation = rx.borrow().rules_status.generation;

    // A broken file (objective 100 and an unknown key) is rejected through the file watcher.
    let broken =
        shop_rules(&base, "100").replace("    interval: 1s\nscrape", "    intervall: 1s\nscrape");
    std::fs::write(&rules_file, broken).expect("write broken rules");
    let snap = wait_until(&mut rx, "the reload to be rejected", |s| {
        !s.rules_status.last_reload_ok
    })
    .await;
    let errors = &snap.rules_status.last_reload_errors;
    let file = rules_file.display().to_string();
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with(&format!("{file}:6:5: error: unknown key `intervall`"))),
        "{errors:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with(&format!("{file}:13:16: error:")) && e.contains("100")),
        "{errors:#?}"
    );
    assert_eq!(
        snap.rules_status.generation, generation,
        "the last good rules stay"
    );

    // Still collecting on the old rules.
    drive(&prober, &base, 5).await;
    wait_until(&mut rx, "25 events on the old rules", |s| {
        slo(s, "availability").window.total == 25
    })
    .await;

    // A good change (objective only) is taken through SIGHUP's path and keeps the state.
    std::fs::write(&rules_file, shop_rules(&base, "99.5")).expect("write fixed rules");
    agent.reloader().request().await.expect("reload request");
    let snap = wait_until(&mut rx, "the fixed rules", |s| {
        s.rules_status.last_reload_ok && s.rules_status.generation > generation
    })
    .await;
    assert_eq!(
        slo(&snap, "availability").window.total,
        25,
        "state kept across the reload"
    );
    let objective = snap.rules.services[0].slos[0].objective.percent();
    assert!((objective - 99.5).abs() < 1e-9);
    agent.shutdown().await;
}

fn spawn_agent(config: &Path) -> Proc {
    Proc(
        Command::new(env!("CARGO_BIN_EXE_burnwatch"))
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start burnwatch run"),
    )
}

async fn api_slo(prober: &Prober, listen: &str, name: &str) -> Option<serde_json::Value> {
    let url = format!("http://{listen}/api/v1/slos/shop/{name}");
    let r = prober
        .fetch(&FetchRequest::new(&url, Dur::from_secs(2), 1 << 22))
        .await
        .ok()?;
    (r.status == 200)
        .then(|| serde_json::from_slice(&r.body).ok())
        .flatten()
}

async fn wait_api(
    prober: &Prober,
    listen: &str,
    what: &str,
    f: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = api_slo(prober, listen, "availability").await
            && f(&v)
        {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_restart_keeps_the_budget() {
    let b = Behaviour {
        error_every: 4,
        errors_per_cycle: 1,
        latency: Duration::from_millis(1),
        ..Behaviour::healthy()
    };
    let (base, svc, _stop) = start_service(b).await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("shop.yaml"), shop_rules(&base, "99")).expect("rules");
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let cfg = dir.path().join("burnwatch.yaml");
    std::fs::write(
        &cfg,
        format!("listen: {listen}\nrules: [shop.yaml]\nevaluation_interval: 1s\ncheckpoint_interval: 1s\n"),
    )
    .expect("config");
    let prober = Prober::new(&[]).expect("prober");

    let mut agent = spawn_agent(&cfg);
    // Wait for the baseline scrape (the API shows the SLO; scrapes run every second).
    wait_api(&prober, &listen, "the agent's API", |_| true).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let before = svc.stats();
    drive(&prober, &base, 40).await;
    let v = wait_api(&prober, &listen, "40 events", |v| v["total"] == 40).await;
    assert_eq!(v["good"], 30);
    // More traffic, then SIGKILL right away: some of it was scraped but not checkpointed, some
    // not even scraped.
    drive(&prober, &base, 20).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    agent.0.kill().expect("SIGKILL");
    let _ = agent.0.wait();
    drive(&prober, &base, 20).await;
    let truth = svc.stats();
    assert_eq!(truth.requests - before.requests, 80);

    // Restart: the checkpoint holds the counts and each series' last value, so the first scrape
    // after the restart counts everything since the checkpoint; the total is exact.
    let _agent = spawn_agent(&cfg);
    let v = wait_api(&prober, &listen, "80 events after the restart", |v| {
        v["total"] == 80
    })
    .await;
    assert_eq!(v["good"], 60, "1 in 4 failed: {v}");
    let bad = truth.code(500) - before.code(500);
    assert_eq!(bad, 20);
}

/// `burnwatch demo` runs the daemon `burnwatch run` runs: its API carries the agent's reload
/// handle (the demo's own server answered `POST /-/reload` with 503), and the one shutdown
/// signal stops it in the daemon's order, with the SLO state checkpointed and the alerting
/// state saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_the_daemon_run_runs() {
    use burnwatch::demo::{self, DemoOptions};
    use burnwatch::shutdown::Shutdown;
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = common::free_addr();
    let opts = DemoOptions {
        listen,
        data_dir: dir.path().to_path_buf(),
        rps: 5,
        outage_after: Duration::from_secs(3600),
        outage_for: Duration::from_secs(1),
        print_every: Duration::from_secs(3600),
    };
    let shutdown = Shutdown::new();
    let demo = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { demo::run(opts, &shutdown).await }
    });
    common::wait_for("the demo's API", || async {
        match common::exchange(listen, "GET", "/readyz", "").await? {
            (200, _) => Ok(()),
            (status, _) => Err(format!("readyz {status}")),
        }
    })
    .await;
    let (status, outcome) = common::request(listen, "POST", "/-/reload", "{}")
        .await
        .expect("reload answer");
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["ok"], true, "{outcome}");
    shutdown.trigger();
    tokio::time::timeout(DEADLINE, demo)
        .await
        .expect("the demo stops")
        .expect("joins")
        .expect("runs");
    for file in ["state/state.bwcp", "state/alerting.bwcp"] {
        assert!(dir.path().join(file).exists(), "{file} saved at shutdown");
    }
}
