//! Alerting through the real agent (`burnwatch run`, a child process) against real peers on
//! 127.0.0.1: the synthetic service as the target (its error schedule is the injected outage),
//! aiosmtpd with STARTTLS and AUTH as the mail server, an in-process HTTP receiver for webhooks,
//! and Debian's Alertmanager 0.25. Proves, for the integrated agent:
//! - an outage pages by email within the time the burn-rate math allows, and a resolved email
//!   follows recovery within its bound (both bounds computed from the tier, the traffic and the
//!   agent's intervals);
//! - SIGKILL between firing and sending, and between sending and resolve: after the restart
//!   exactly one firing and one resolved notification arrive per alert;
//! - the webhook payload is Alertmanager's v4 and the alerts reach a real Alertmanager's
//!   `/api/v2/alerts` with the same fingerprints, and resolve there.
//!
//! Every wait is bounded and fails with what it waited for.

use crate::common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use burnwatch::alert::{Fingerprint, labels_string};
use burnwatch::notify::NotifyReason;
use burnwatch::notify::webhook::Payload;
use burnwatch::probe::{FetchRequest, Prober};
use burnwatch::synthetic::{Behaviour, Service};
use burnwatch::time::Dur;
use common::{AgentProcess, HookSink, log_field};
use serde_json::Value;
use tokio::sync::watch;

/// The agent's scrape and probe interval, and its evaluation interval (config and rules).
const SCRAPE: Duration = Duration::from_secs(1);
const EVAL: Duration = Duration::from_secs(1);
/// The custom tier: 2m/1m windows, factor 5 on a 90% objective, so it fires when errors are
/// more than half of the events in both windows.
const FACTOR: f64 = 5.0;
const OBJECTIVE: f64 = 0.90;
const KEEP_FIRING_FOR: Duration = Duration::from_secs(3);
/// The tier's windows.
const LONG: Duration = Duration::from_secs(120);
const SHORT: Duration = Duration::from_secs(60);
/// How long a test waits for the page of an outage that starts right after the agent: the
/// fresh agent pages once the errors it saw spend the tier's share of the whole 2m window's
/// budget, i.e. after about a minute of data.
const PAGE_WITHIN: Duration = Duration::from_secs(100);
/// How long a test waits for the resolve: as many good answers as there were failures (about
/// a minute's worth, see the resolve bound).
const RESOLVE_WITHIN: Duration = Duration::from_secs(100);
/// Time the bounds allow for delivery itself and for scheduling on a busy 2-core machine.
const SLACK: Duration = Duration::from_secs(3);
/// One request of the test's traffic every this long.
const TRAFFIC_PERIOD: Duration = Duration::from_millis(50);
const RUNBOOK: &str = "https://runbooks.example/shop/availability";
const USER: &str = "burnwatch";
const PASSWORD: &str = "e2e-pa55word";

/// Rules for the synthetic service: a ratio SLO from its scraped counters with one fast custom
/// tier (2m/1m windows), and a health probe with a `ProbeDown` alert.
fn rules(base: &str) -> String {
    format!(
        r#"version: burnwatch/v1
service: shop
runbook: {RUNBOOK}
probes:
  - name: health
    http: {{url: "{base}/healthz"}}
    interval: 1s
    alert: {{failures: 2, successes: 1, runbook: https://runbooks.example/shop/health}}
scrape:
  - name: shop
    url: {base}/metrics
    interval: 1s
slos:
  - name: availability
    objective: 90
    window: 30m
    indicator:
      ratio:
        bad: 'demo_http_requests_total{{code=~"5..",job="shop"}}'
        total: 'demo_http_requests_total{{job="shop"}}'
    alerting:
      budget_exhausted: false
      no_data: false
      tiers:
        fast: {{long: 2m, short: 1m, burn_rate: 5, severity: page, keep_firing_for: 3s}}
"#
    )
}

/// The agent config: 1s evaluation, JSON logs, and the given `alerting:` section.
fn agent_config(listen: SocketAddr, alerting: &str) -> String {
    format!(
        "listen: {listen}\nrules: [shop.yaml]\nevaluation_interval: 1s\ncheckpoint_interval: 1s\n\
         log_format: json\nlog_level: info\nalerting:\n{alerting}"
    )
}

/// A route grouping by alertname (one group per alert, so counts are per alert).
fn route(receiver: &str, group_wait: &str, group_interval: &str) -> String {
    format!(
        "  route:\n    receiver: {receiver}\n    group_by: [alertname]\n    group_wait: {group_wait}\n    \
         group_interval: {group_interval}\n    repeat_interval: 1h\n"
    )
}

/// Sequential GETs of the service's API every [`TRAFFIC_PERIOD`], each logged with the instant
/// its answer arrived: the ground truth the bounds are computed from.
struct Traffic {
    log: Arc<Mutex<Vec<(Instant, u16)>>>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Traffic {
    fn start(base: &str) -> Traffic {
        let url = format!("{base}/api/orders");
        let log: Arc<Mutex<Vec<(Instant, u16)>>> = Arc::default();
        let (stop, mut stopped) = watch::channel(false);
        let log2 = log.clone();
        let task = tokio::spawn(async move {
            let prober = Prober::new(&[]).expect("prober");
            let mut tick = tokio::time::interval(TRAFFIC_PERIOD);
            loop {
                tokio::select! {
                    _ = stopped.changed() => return,
                    _ = tick.tick() => {}
                }
                let r = prober
                    .fetch(&FetchRequest::new(&url, Dur::from_secs(5), 1 << 20))
                    .await
                    .expect("the service answers");
                assert!(r.status == 200 || r.status == 500, "{}", r.status);
                log2.lock().expect("log").push((Instant::now(), r.status));
            }
        });
        Traffic { log, stop, task }
    }

    fn log(&self) -> Vec<(Instant, u16)> {
        self.log.lock().expect("log").clone()
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

/// A synthetic service, its rules and an agent config in a temporary directory, the agent
/// started, and traffic running until the agent has counted some of it.
struct Setup {
    dir: tempfile::TempDir,
    svc: Service,
    _svc_stop: watch::Sender<bool>,
    listen: SocketAddr,
    agent: AgentProcess,
    traffic: Traffic,
    /// Before the agent started: no collection is older, so a window's coverage is at most its
    /// share since then.
    started: Instant,
    /// When the agent was seen to have counted requests: its first collection came before.
    collected_by: Instant,
}

const OUTAGE: Behaviour = Behaviour {
    error_every: 1,
    errors_per_cycle: 1,
    latency: Duration::from_millis(1),
    slow_every: 0,
    slow_latency: Duration::ZERO,
    health_down: true,
};

const HEALTHY: Behaviour = Behaviour {
    latency: Duration::from_millis(1),
    ..Behaviour::healthy()
};

impl Setup {
    /// `alerting` is the agent config's `alerting:` section (indented by two spaces).
    async fn start(dir: tempfile::TempDir, alerting: &str) -> Setup {
        let (base, svc, svc_stop) = common::start_service(HEALTHY).await;
        std::fs::write(dir.path().join("shop.yaml"), rules(&base)).expect("rules");
        let listen = common::free_addr();
        let config = dir.path().join("burnwatch.yaml");
        std::fs::write(&config, agent_config(listen, alerting)).expect("config");
        let started = Instant::now();
        let agent = AgentProcess::start(&config, &dir.path().join("agent.log"));
        let traffic = Traffic::start(&base);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = common::get_json(listen, "/api/v1/slos/shop/availability").await;
            if v.as_ref().is_ok_and(|v| v["total"].as_u64() >= Some(10)) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the agent did not count 10 requests within 20s: {v:?}; log:\n{}",
                std::fs::read_to_string(&agent.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Setup {
            dir,
            svc,
            _svc_stop: svc_stop,
            listen,
            agent,
            traffic,
            started,
            collected_by: Instant::now(),
        }
    }

    /// The alerting state's log, where every change is appended.
    fn state_log(&self) -> PathBuf {
        self.dir.path().join("data/alerting.bwcp.log")
    }
}

/// Polls `f` every 50 ms until it returns `Some`, or panics after `within` with `what`.
async fn wait_for<T>(within: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_pages_by_email_within_the_burn_rate_bound_and_resolves_after_recovery() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = common::TestPki::new().write_to(dir.path());
    let sink = common::SmtpSink::start(dir.path(), &pki, "starttls", USER, PASSWORD);
    std::fs::write(dir.path().join("smtp-password"), format!("{PASSWORD}\n")).expect("secret");
    let group_wait = Duration::from_secs(2);
    let group_interval = Duration::from_secs(3);
    let alerting = format!(
        "{}  receivers:\n    - name: oncall\n      email:\n        - to: [oncall@example.com]\n          \
         from: burnwatch@alerts.example.com\n          smarthost: 127.0.0.1:{}\n          \
         tls: starttls\n          auth_username: {USER}\n          \
         auth_password: {{file: smtp-password}}\n          ca_file: {}\n          timeout: 10s\n          \
         send_resolved: true\n",
        route("oncall", "2s", "3s"),
        sink.port,
        pki.ca.display()
    );
    let setup = Setup::start(dir, &alerting).await;
    // Only the SLO pages here: keep /healthz up.
    let outage = Behaviour {
        health_down: false,
        ..OUTAGE
    };
    assert!(
        sink.messages().is_empty(),
        "nothing pages before the outage"
    );

    // The outage: every request fails from here on.
    let outage_start = Instant::now();
    setup.svc.set_behaviour(outage);
    let (page_at, page) = wait_for(PAGE_WITHIN, "a page email", || {
        sink.messages().first().map(|m| (Instant::now(), m.clone()))
    })
    .await;
    // Recovery as soon as the page is in.
    let recovery = Instant::now();
    setup.svc.set_behaviour(HEALTHY);
    let (resolved_at, resolved) = wait_for(RESOLVE_WITHIN, "a resolved email", || {
        sink.messages().get(1).map(|m| (Instant::now(), m.clone()))
    })
    .await;
    // Nothing else arrives after the resolve (one group, one page, one resolve).
    tokio::time::sleep(group_interval + EVAL).await;
    let log = setup.traffic.log();

    // The page bound. A window of W holds at most the good answers counted before the first
    // failure (g0) and at least the failures of the last W (b_W), so its error ratio is at least
    // b_W / (b_W + g0). The agent started moments before the outage, so each window counts the
    // errors against the budget of the whole window: its burn is scaled by its coverage, at
    // least (t - collected_by) / W (see "Fresh starts and coverage" in docs/rules.md). The
    // tier's condition, coverage x ratio > FACTOR x (1 - OBJECTIVE) = 0.5 in both windows,
    // holds in the target's truth at the first answer where both bounds are above 0.5. The
    // agent sees it at the next scrape (one more if one was under way), decides at the next
    // evaluation, and mails after group_wait.
    let threshold = FACTOR * (1.0 - OBJECTIVE);
    assert!((threshold - 0.5).abs() < 1e-12);
    let first_bad = log
        .iter()
        .position(|(_, s)| *s == 500)
        .expect("the outage produced failures");
    let g0 = log[..first_bad].iter().filter(|(_, s)| *s == 200).count();
    let holds = |at: Instant, w: Duration| {
        let since = at.saturating_duration_since(setup.collected_by);
        let coverage = (since.as_secs_f64() / w.as_secs_f64()).min(1.0);
        let b = log[first_bad..]
            .iter()
            .filter(|(t, s)| *s == 500 && *t <= at && at.saturating_duration_since(*t) < w)
            .count() as f64;
        coverage * b / (b + g0 as f64) > threshold
    };
    let condition_true = log[first_bad..]
        .iter()
        .map(|(t, _)| *t)
        .find(|&t| holds(t, LONG) && holds(t, SHORT))
        .expect("enough failures before the page");
    let page_bound = condition_true + 2 * SCRAPE + EVAL + group_wait + SLACK;
    let page_after = log[first_bad].0.saturating_duration_since(outage_start);
    assert!(
        page_at <= page_bound,
        "the page arrived {:?} after the outage started; the bound is {:?} (condition true \
         {:?} after it, against {g0} good answers)",
        page_at - outage_start,
        page_bound - outage_start,
        condition_true - outage_start
    );
    assert!(
        page_at + Duration::from_millis(50) >= log[first_bad].0 + group_wait,
        "the page came before the first failure plus group_wait ({page_after:?})"
    );

    // The resolve bound: the condition is certainly false in the truth at the first of
    // - a good answer after the last failure with coverage_max x b / (b + g) <= 0.5 over the long
    //   window, with b failures in all, g good answers since the last one, and coverage at most
    //   the share of the window since the agent started (it counts against the whole window);
    // - the short window holding no failure: SHORT after the last one, plus one 1m bucket (a
    //   window reads every bucket overlapping it).
    // The agent sees it at the next scrape and evaluation, keeps firing for keep_firing_for
    // (seen at an evaluation), and the group's next flush (at most group_interval later) mails
    // the resolve.
    let last_bad = log.iter().rposition(|(_, s)| *s == 500).expect("failures");
    let b = log.iter().filter(|(_, s)| *s == 500).count();
    let coverage_max = |at: Instant, w: Duration| {
        (at.saturating_duration_since(setup.started).as_secs_f64() / w.as_secs_f64()).min(1.0)
    };
    let by_dilution = log[last_bad + 1..]
        .iter()
        .filter(|(_, s)| *s == 200)
        .enumerate()
        .find(|(i, (t, _))| coverage_max(*t, LONG) * b as f64 / (b + i + 1) as f64 <= threshold)
        .map(|(_, (t, _))| *t);
    let short_clean = log[last_bad].0 + SHORT + Duration::from_secs(60);
    let condition_false = by_dilution.map_or(short_clean, |t| t.min(short_clean));
    let resolve_bound =
        condition_false + SCRAPE + EVAL + KEEP_FIRING_FOR + EVAL + group_interval + SLACK;
    assert!(
        resolved_at <= resolve_bound,
        "the resolve arrived {:?} after recovery; the bound is {:?} (condition false {:?} after \
         it: {b} failures in all)",
        resolved_at - recovery,
        resolve_bound - recovery,
        condition_false - recovery
    );
    assert!(
        resolved_at >= recovery + KEEP_FIRING_FOR,
        "resolved before keep_firing_for after recovery"
    );
    println!(
        "page {:?} after the outage started (bound {:?}; condition true at {:?} vs {g0} \
         good); resolve {:?} after recovery (bound {:?}; condition false at \
         {:?}, {b} failures in all)",
        page_at - outage_start,
        page_bound - outage_start,
        condition_true - outage_start,
        resolved_at - recovery,
        resolve_bound - recovery,
        condition_false - recovery
    );

    // What arrived: two messages, over STARTTLS with AUTH, actionable.
    let all = sink.messages();
    assert_eq!(all.len(), 2, "exactly a page and a resolve: {all:#?}");
    for m in [&page, &resolved] {
        assert_eq!(m["authenticated"], true, "{m}");
        assert_eq!(m["login"], USER);
        assert_eq!(m["tls"], true, "{m}");
        assert_eq!(m["starttls"], true, "{m}");
        assert_eq!(m["rcpt_tos"], serde_json::json!(["oncall@example.com"]));
    }
    let subject = page["subject"].as_str().expect("subject");
    assert!(
        subject.starts_with("[FIRING:1] shop/availability is burning its error budget")
            && subject.contains("fast: 2m and 1m windows above 5x"),
        "{subject}"
    );
    for mime in ["text/plain", "text/html"] {
        let body = common::mail_part(&page, mime);
        for want in [
            "shop/availability",
            "90%",
            "over 2m",
            "over 1m",
            RUNBOOK,
            "burnwatch silence add",
        ] {
            assert!(body.contains(want), "page {mime} lacks `{want}`:\n{body}");
        }
    }
    let resolved_subject = resolved["subject"].as_str().expect("subject");
    assert!(
        resolved_subject.starts_with("[RESOLVED] shop/availability"),
        "{resolved_subject}"
    );
    assert!(common::mail_part(&resolved, "text/plain").contains(RUNBOOK));
    // Threaded: the resolve refers to the page's group.
    assert_eq!(page["in_reply_to"], resolved["in_reply_to"]);
    setup.traffic.stop().await;
}

/// Per alert fingerprint: (firing, resolved) appearances over every payload received.
fn counts(hooks: &[common::Hook]) -> BTreeMap<String, (usize, usize)> {
    let mut out: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for h in hooks {
        for a in h.body["alerts"].as_array().expect("alerts") {
            let fp = a["fingerprint"].as_str().expect("fingerprint").to_owned();
            let e = out.entry(fp).or_default();
            match a["status"].as_str() {
                Some("firing") => e.0 += 1,
                Some("resolved") => e.1 += 1,
                other => panic!("alert status {other:?}"),
            }
        }
    }
    out
}

fn alertname_of(hooks: &[common::Hook], fp: &str) -> String {
    hooks
        .iter()
        .flat_map(|h| h.body["alerts"].as_array().expect("alerts"))
        .find(|a| a["fingerprint"] == fp)
        .and_then(|a| a["labels"]["alertname"].as_str())
        .unwrap_or("?")
        .to_owned()
}

/// Both alerts of the outage (the burn-rate tier and ProbeDown) have each (firing, resolved)
/// notification counts of at least `want`.
fn both_reached(hooks: &[common::Hook], want: (usize, usize)) -> bool {
    let c = counts(hooks);
    ["SloBurnRate", "ProbeDown"].iter().all(|name| {
        c.iter()
            .any(|(fp, n)| alertname_of(hooks, fp) == *name && n.0 >= want.0 && n.1 >= want.1)
    })
}

fn webhook_alerting(hook: &HookSink, group_wait: &str) -> String {
    format!(
        "{}  receivers:\n    - name: hook\n      webhook:\n        - url: {}\n          send_resolved: true\n",
        route("hook", group_wait, "2s"),
        hook.url("/alerts")
    )
}

/// Recovers, waits for both resolves, then a quiet period, and checks that every alert got
/// exactly one firing and one resolved notification over the whole test.
async fn recover_and_count(setup: &Setup, hook: &HookSink) {
    setup.svc.set_behaviour(HEALTHY);
    wait_both(hook, (1, 1), "both resolved notifications").await;
    // A duplicate would come at a flush: wait past two group intervals.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let hooks = hook.received();
    let c = counts(&hooks);
    let summary: Vec<(String, (usize, usize))> = c
        .iter()
        .map(|(fp, n)| (format!("{} {fp}", alertname_of(&hooks, fp)), *n))
        .collect();
    assert_eq!(c.len(), 2, "two alerts: {summary:?}");
    assert!(
        c.values().all(|n| *n == (1, 1)),
        "each alert: one firing and one resolved notification; got {summary:?}"
    );
    println!("notifications per alert (firing, resolved): {summary:?}");
}

/// The group_wait of the first crash test (long enough to kill inside it).
const GROUP_WAIT_A: Duration = Duration::from_secs(5);

/// Starts the killed agent again and waits (bounded) until it logs that it restored its
/// alerting state (looking at the log from `from` on, i.e. after the kill).
async fn restart_restored(agent: &mut AgentProcess, from: usize) {
    agent.restart();
    agent
        .wait_event(from, Duration::from_secs(20), "the restored state", |e| {
            log_field(e, "message") == Some("restored alerting state")
        })
        .await;
}

/// Waits (bounded) until both alerts have `want` (firing, resolved) notifications.
async fn wait_both(hook: &HookSink, want: (usize, usize), what: &str) {
    wait_for(PAGE_WITHIN.max(RESOLVE_WITHIN), what, || {
        both_reached(&hook.received(), want).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_between_firing_and_sending_sends_exactly_once() {
    let hook = HookSink::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let group_wait = format!("{}s", GROUP_WAIT_A.as_secs());
    let mut setup = Setup::start(dir, &webhook_alerting(&hook, &group_wait)).await;
    setup.svc.set_behaviour(OUTAGE);
    let fired = setup
        .agent
        .wait_event(0, PAGE_WITHIN, "an alert firing", |e| {
            log_field(e, "message") == Some("alert state changed")
                && log_field(e, "to") == Some("firing")
        })
        .await;
    let fired_at = Instant::now();
    // Into the group's 5s group_wait, then SIGKILL and restart at once.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before_kill = setup.agent.events().len();
    setup.agent.kill();
    assert!(
        hook.received().is_empty(),
        "the kill must come before the first notification (it came {:?} after firing): {:?}",
        fired_at.elapsed(),
        hook.received()
    );
    let firing_at_kill: Vec<String> = setup.agent.events()[fired..before_kill]
        .iter()
        .filter(|e| log_field(e, "to") == Some("firing"))
        .filter_map(|e| log_field(e, "labels").map(str::to_owned))
        .collect();
    let restarted = Instant::now();
    restart_restored(&mut setup.agent, before_kill).await;
    wait_both(&hook, (1, 0), "both firing notifications").await;
    // The first group kept its deadline (firing + group_wait), rather than starting a new
    // group_wait at the restart.
    let first = hook.received()[0].at.into_std();
    assert!(
        first < restarted + GROUP_WAIT_A,
        "the first notification came {:?} after the restart: group_wait started over",
        first - restarted
    );
    println!(
        "killed 2s into group_wait with firing: {firing_at_kill:?}; first notification {:?} \
         after firing was seen, {:?} after the restart",
        first - fired_at,
        first - restarted
    );
    recover_and_count(&setup, &hook).await;
    setup.traffic.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_between_sending_and_resolve_resolves_exactly_once() {
    let hook = HookSink::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut setup = Setup::start(dir, &webhook_alerting(&hook, "1s")).await;
    setup.svc.set_behaviour(OUTAGE);
    wait_both(&hook, (1, 0), "both firing notifications").await;
    // Delivered means confirmed and saved: both confirmations logged, then the state's log
    // written after that (commits are in order, so it holds them).
    let mut from = 0;
    for _ in 0..2 {
        from = 1 + setup
            .agent
            .wait_event(from, Duration::from_secs(10), "a confirmed delivery", |e| {
                log_field(e, "message") == Some("notification delivered")
            })
            .await;
    }
    let seen = SystemTime::now();
    let state = setup.state_log();
    wait_for(
        Duration::from_secs(10),
        "a state save after the confirmations",
        || {
            std::fs::metadata(&state)
                .and_then(|m| m.modified())
                .ok()
                .filter(|t| *t > seen)
        },
    )
    .await;
    let before_kill = setup.agent.events().len();
    setup.agent.kill();
    restart_restored(&mut setup.agent, before_kill).await;
    // Still in the outage after the restart: nothing is re-sent.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let c = counts(&hook.received());
    assert!(
        c.values().all(|n| *n == (1, 0)),
        "re-paged after the restart: {c:?}"
    );
    recover_and_count(&setup, &hook).await;
    setup.traffic.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_alertmanager_v4_and_alerts_reach_a_real_alertmanager() {
    let hook = HookSink::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (_am, am) = common::start_alertmanager(dir.path()).await;
    let alerting = format!(
        "{}  alertmanager:\n    urls: [http://{am}]\n    resend_interval: 2s\n",
        webhook_alerting(&hook, "1s")
    );
    let setup = Setup::start(dir, &alerting).await;
    setup.svc.set_behaviour(OUTAGE);
    wait_both(&hook, (1, 0), "both firing notifications").await;

    // The webhook payloads parse as Alertmanager v4 and carry our fingerprints.
    let hooks = hook.received();
    let mut fingerprints = Vec::new();
    for h in &hooks {
        let v = &h.body;
        assert_eq!(v["version"], "4", "{v}");
        for key in [
            "receiver",
            "status",
            "alerts",
            "groupLabels",
            "commonLabels",
            "commonAnnotations",
            "externalURL",
            "groupKey",
            "truncatedAlerts",
        ] {
            assert!(v.get(key).is_some(), "no `{key}` in {v}");
        }
        let p: Payload = serde_json::from_value(v.clone()).expect("a v4 payload");
        assert_eq!(p.receiver, "hook");
        assert_eq!(p.status, "firing");
        assert_eq!(p.notification_reason, NotifyReason::First.as_str());
        assert_eq!(
            p.group_key,
            format!("{{}}:{}", labels_string(&p.group_labels))
        );
        assert_eq!(p.external_url, format!("http://{}", setup.listen));
        for a in &p.alerts {
            assert_eq!(a.fingerprint, Fingerprint::of(&a.labels).to_string());
            assert_eq!(a.ends_at, "0001-01-01T00:00:00Z");
            assert!(a.generator_url.starts_with(&p.external_url), "{a:?}");
            fingerprints.push((a.fingerprint.clone(), a.labels.clone()));
        }
    }

    // The same alerts, with the same fingerprints, are active in Alertmanager.
    let active = |alerts: &Value| -> Vec<String> {
        alerts
            .as_array()
            .expect("array")
            .iter()
            .filter(|a| a["status"]["state"] == "active")
            .filter_map(|a| a["fingerprint"].as_str().map(str::to_owned))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let am_alerts = loop {
        let alerts = common::get_json(am, "/api/v2/alerts")
            .await
            .expect("GET /api/v2/alerts");
        let got = active(&alerts);
        if fingerprints.iter().all(|(fp, _)| got.contains(fp)) {
            break alerts;
        }
        assert!(
            Instant::now() < deadline,
            "Alertmanager does not show {fingerprints:?} within 10s: {alerts}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for (fp, labels) in &fingerprints {
        let a = am_alerts
            .as_array()
            .expect("array")
            .iter()
            .find(|a| a["fingerprint"] == fp.as_str())
            .expect("present");
        let am_labels: BTreeMap<String, String> =
            serde_json::from_value(a["labels"].clone()).expect("labels");
        assert_eq!(&am_labels, labels, "Alertmanager keeps our labels");
    }

    // Recovery: both resolve by webhook (v4, resolved) and leave Alertmanager's active set.
    setup.svc.set_behaviour(HEALTHY);
    wait_both(&hook, (1, 1), "both resolved notifications").await;
    for h in &hook.received()[hooks.len()..] {
        let p: Payload = serde_json::from_value(h.body.clone()).expect("a v4 payload");
        assert_eq!(p.status, "resolved");
        assert_eq!(p.notification_reason, NotifyReason::AllResolved.as_str());
        assert!(p.alerts.iter().all(|a| a.ends_at != "0001-01-01T00:00:00Z"));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let alerts = common::get_json(am, "/api/v2/alerts")
            .await
            .expect("GET /api/v2/alerts");
        let got = active(&alerts);
        if !fingerprints.iter().any(|(fp, _)| got.contains(fp)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the alerts did not resolve in Alertmanager within 10s: {alerts}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    setup.traffic.stop().await;
}
