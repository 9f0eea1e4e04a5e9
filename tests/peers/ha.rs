//! High availability the Prometheus way: two agents with the same config push every alert to
//! both replicas of a real Alertmanager 0.25 cluster (gossip on loopback), which deduplicates
//! notifications through its replicated notification log. During an outage one agent and the
//! Alertmanager that sent the page are SIGKILLed; the webhook behind the cluster must still
//! get exactly one firing and one resolved notification per alert group.

use crate::common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use burnwatch::synthetic::Behaviour;
use common::{AgentProcess, HookSink, Proc};
use serde_json::Value;

/// Every wait of this test is bounded by this.
const WITHIN: Duration = Duration::from_secs(60);

const HEALTHY: Behaviour = Behaviour {
    latency: Duration::from_millis(1),
    ..Behaviour::healthy()
};

/// One Alertmanager replica: its process, API address and cluster address.
struct Replica {
    proc: Option<Proc>,
    api: SocketAddr,
}

/// A free loopback TCP port that is also free for UDP (memberlist gossips on both).
fn free_cluster_addr() -> SocketAddr {
    loop {
        let a = common::free_addr();
        if std::net::UdpSocket::bind(a).is_ok() {
            return a;
        }
    }
}

/// Starts `n` Alertmanagers gossiping with each other, each sending to `webhook`; waits
/// (bounded) until every one reports a ready cluster of `n` peers.
async fn cluster(dir: &Path, n: usize, webhook: &str) -> Vec<Replica> {
    let config = dir.join("alertmanager.yml");
    std::fs::write(
        &config,
        format!(
            "route:\n  receiver: hook\n  group_by: [alertname, probe]\n  group_wait: 3s\n  \
             group_interval: 2s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    \
             webhook_configs:\n      - url: {webhook}\n        send_resolved: true\n"
        ),
    )
    .expect("config");
    let gossip: Vec<SocketAddr> = (0..n).map(|_| free_cluster_addr()).collect();
    let mut out = Vec::new();
    for (i, own) in gossip.iter().enumerate() {
        let api = common::free_addr();
        let mut cmd = std::process::Command::new(common::alertmanager_binary());
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.join(format!("am{i}")).display()
            ))
            .arg(format!("--web.listen-address={api}"))
            .arg(format!("--cluster.listen-address={own}"))
            .arg(format!("--cluster.advertise-address={own}"))
            // The replica at position 1 waits this long for position 0's notification to
            // reach it through the gossiped notification log before sending itself.
            .arg("--cluster.peer-timeout=3s")
            .arg("--cluster.gossip-interval=100ms")
            .arg("--cluster.pushpull-interval=1s")
            .arg("--log.level=warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        for peer in gossip.iter().filter(|p| *p != own) {
            cmd.arg(format!("--cluster.peer={peer}"));
        }
        out.push(Replica {
            proc: Some(Proc(cmd.spawn().expect("start alertmanager"))),
            api,
        });
    }
    let deadline = Instant::now() + WITHIN;
    for r in &out {
        loop {
            let status = common::get_json(r.api, "/api/v2/status").await;
            let ready = status.as_ref().is_ok_and(|s| {
                s["cluster"]["status"] == "ready"
                    && s["cluster"]["peers"].as_array().map(Vec::len) == Some(n)
            });
            if ready {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the Alertmanager cluster did not settle: {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    out
}

/// The replica that sends first: position 0 of the cluster, i.e. the first of the peers'
/// names in order (Alertmanager's `Peer.Position`).
async fn first_position(replicas: &[Replica]) -> usize {
    let mut own = Vec::new();
    for r in replicas {
        let s = common::get_json(r.api, "/api/v2/status")
            .await
            .expect("status");
        own.push(s["cluster"]["name"].as_str().expect("name").to_owned());
    }
    let lowest = own.iter().min().expect("replicas").clone();
    own.iter().position(|n| *n == lowest).expect("present")
}

fn rules(base: &str) -> String {
    format!(
        r#"version: burnwatch/v1
service: shop
probes:
  - name: health
    http: {{url: "{base}/healthz"}}
    interval: 1s
    alert: {{failures: 2, successes: 1}}
  - name: ready
    http: {{url: "{base}/healthz"}}
    interval: 1s
    alert: {{failures: 2, successes: 1}}
slos:
  - name: up
    objective: 99
    indicator: {{probe: health}}
    alerting: {{disabled: true}}
"#
    )
}

fn agent_config(listen: SocketAddr, replicas: &[Replica]) -> String {
    let urls: Vec<String> = replicas
        .iter()
        .map(|r| format!("http://{}", r.api))
        .collect();
    format!(
        "listen: {listen}\nrules: [shop.yaml]\nevaluation_interval: 1s\ncheckpoint_interval: 1s\n\
         log_format: json\nlog_level: info\nalerting:\n  alertmanager:\n    urls: [{}]\n    \
         resend_interval: 1s\n    timeout: 2s\n",
        urls.join(", ")
    )
}

/// Per group (`alertname/probe`), the (firing, resolved) notifications the webhook got.
fn per_group(hook: &HookSink) -> BTreeMap<String, (usize, usize)> {
    let mut out: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for h in hook.received() {
        let g = &h.body["groupLabels"];
        let key = format!(
            "{}/{}",
            g["alertname"].as_str().unwrap_or("?"),
            g["probe"].as_str().unwrap_or("?")
        );
        let e = out.entry(key).or_default();
        match h.body["status"].as_str() {
            Some("firing") => e.0 += 1,
            Some("resolved") => e.1 += 1,
            other => panic!("status {other:?}: {}", h.body),
        }
    }
    out
}

async fn wait_groups(
    hook: &HookSink,
    what: &str,
    ok: impl Fn(&BTreeMap<String, (usize, usize)>) -> bool,
) {
    let deadline = Instant::now() + WITHIN;
    loop {
        let g = per_group(hook);
        if ok(&g) {
            return;
        }
        assert!(Instant::now() < deadline, "{what} within {WITHIN:?}: {g:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agents_and_an_alertmanager_cluster_notify_once_per_group_when_one_of_each_dies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = HookSink::start().await;
    let mut replicas = cluster(dir.path(), 2, &hook.url("/alerts")).await;
    let (base, svc, _svc_stop) = common::start_service(HEALTHY).await;
    let mut agents = Vec::new();
    for name in ["a", "b"] {
        let home = dir.path().join(name);
        std::fs::create_dir_all(&home).expect("dir");
        std::fs::write(home.join("shop.yaml"), rules(&base)).expect("rules");
        let config = home.join("burnwatch.yaml");
        std::fs::write(&config, agent_config(common::free_addr(), &replicas)).expect("config");
        agents.push(AgentProcess::start(&config, &home.join("agent.log")));
    }
    for a in &agents {
        a.wait_event(0, WITHIN, "running", |e| {
            common::log_field(e, "message") == Some("agent running")
        })
        .await;
    }

    // The outage: both probes fail, both agents raise both ProbeDown alerts and push them to
    // both replicas.
    svc.set_behaviour(Behaviour {
        health_down: true,
        ..HEALTHY
    });
    wait_groups(&hook, "both firing notifications", |g| {
        g.len() == 2 && g.values().all(|n| n.0 >= 1)
    })
    .await;
    // Let the notification log reach the other replica, then kill the replica that sent and
    // one agent, mid-outage.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let sender = first_position(&replicas).await;
    drop(replicas[sender].proc.take());
    agents[0].kill();
    // The outage goes on: the surviving agent keeps pushing to the surviving replica, whose
    // group ticks every 2s; its notification log says the page went out already.
    tokio::time::sleep(Duration::from_secs(8)).await;
    svc.set_behaviour(HEALTHY);
    wait_groups(&hook, "both resolved notifications", |g| {
        g.len() == 2 && g.values().all(|n| n.1 >= 1)
    })
    .await;
    // A duplicate would come at a later group tick: wait several.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let groups = per_group(&hook);
    assert_eq!(
        groups,
        BTreeMap::from([
            ("ProbeDown/health".to_owned(), (1, 1)),
            ("ProbeDown/ready".to_owned(), (1, 1)),
        ]),
        "exactly one firing and one resolved notification per group; the webhook got:\n{:#?}",
        hook.received()
            .iter()
            .map(|h| (h.body["status"].clone(), h.body["groupLabels"].clone()))
            .collect::<Vec<(Value, Value)>>()
    );
    // The surviving replica knows the alerts ended.
    let survivor = &replicas[1 - sender];
    let alerts = common::get_json(survivor.api, "/api/v2/alerts")
        .await
        .expect("alerts");
    let active: Vec<&Value> = alerts
        .as_array()
        .expect("a list")
        .iter()
        .filter(|a| a["status"]["state"] == "active")
        .collect();
    assert!(
        active.is_empty(),
        "still active on the survivor: {active:?}"
    );
    println!("per group (firing, resolved): {groups:?}; killed replica {sender} and agent a");
}
