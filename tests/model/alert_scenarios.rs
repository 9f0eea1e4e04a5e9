//! Alertmanager's acceptance scenarios (`test/with_api_v2/acceptance`), ported onto a simulated
//! clock: pushes, silences and reloads happen at exact instants, the dispatcher is ticked at
//! exactly its deadlines, and every notification is expected at an exact millisecond.
//!
//! Alertmanager's own tests run the real binary against wall-clock time and accept a
//! notification anywhere in a window (`Between(2, 2.5)`, ±150 ms). Here each expected time is
//! the exact instant our timer semantics give; it always lies inside Alertmanager's window, and
//! where it differs from the window's start the test says why.
//!
//! The DSL: `push(t, alerts)`, `silence(t, id, request)`, `expire(t, id)`, `reload(t, ...)`,
//! `fail(receiver, integration, until)` (a sink that fails before a time), then `run(end)` and
//! `want(t, receiver, integration, reason, alerts)`. `check()` compares the complete list of
//! delivered notifications with the expected one, so any extra notification fails the test
//! (as `Collector.Check` does when the totals differ), and `none_between(a, b)` states quiet
//! periods explicitly.

use std::collections::BTreeMap;
use std::path::Path;

use burnwatch::alert::{Alert, Fingerprint, Matchers};
use burnwatch::notify::dispatch::{Dispatcher, Receivers, Suppression};
use burnwatch::notify::inhibit::{Dependencies, InhibitRule, Inhibitor, PROBE_DOWN, SLO_BURN_RATE};
use burnwatch::notify::route::{Route, parse_route};
use burnwatch::notify::silence::{SilenceRequest, Silences};
use burnwatch::notify::{NotifyReason, SuppressReason};
use burnwatch::rules::model::Labels;
use burnwatch::time::Timestamp;

/// Seconds (as Alertmanager's tests write them) to an exact millisecond instant.
fn at(secs: f64) -> Timestamp {
    Timestamp::from_millis((secs * 1000.0).round() as i64)
}

/// An alert as the acceptance DSL builds it: `Alert(labels).Active(start[, end])`.
fn alert(pairs: &[(&str, &str)], start: f64, end: Option<f64>) -> Alert {
    Alert {
        labels: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        annotations: Labels::new(),
        starts_at: at(start),
        ends_at: end.map(at),
        generator_url: String::new(),
    }
}

fn annotated(mut a: Alert, k: &str, v: &str) -> Alert {
    a.annotations.insert(k.into(), v.into());
    a
}

fn route(yaml: &str) -> Route {
    parse_route(Path::new("alertmanager.yml"), yaml).expect("valid route")
}

fn receivers(list: &[(&str, &[bool])]) -> Receivers {
    list.iter()
        .map(|(n, ints)| (n.to_string(), ints.to_vec()))
        .collect()
}

enum Event {
    Push(Vec<Alert>),
    Silence(String, SilenceRequest),
    Expire(String),
    Reload(Route, Inhibitor, Receivers),
}

/// An alert as compared: labels, annotations, start, end.
type Reduced = (Labels, Labels, Timestamp, Option<Timestamp>);

/// A delivered (or expected) notification, reduced to what the acceptance tests compare.
#[derive(Debug, Clone, PartialEq)]
struct Got {
    at: Timestamp,
    receiver: String,
    integration: usize,
    reason: NotifyReason,
    /// (labels, annotations, start, end) sorted by fingerprint: compared as a set.
    alerts: Vec<Reduced>,
    inhibited: usize,
}

fn reduce(alerts: &[Alert]) -> Vec<Reduced> {
    let mut v: Vec<(Fingerprint, Reduced)> = alerts
        .iter()
        .map(|a| {
            (
                a.fingerprint(),
                (
                    a.labels.clone(),
                    a.annotations.clone(),
                    a.starts_at,
                    a.ends_at,
                ),
            )
        })
        .collect();
    v.sort_by_key(|(fp, _)| *fp);
    v.into_iter().map(|(_, x)| x).collect()
}

struct Scenario {
    d: Dispatcher,
    silences: Silences,
    events: BTreeMap<Timestamp, Vec<Event>>,
    /// (receiver, integration) → sends fail before this instant.
    failing: BTreeMap<(String, usize), Timestamp>,
    got: Vec<Got>,
    failed: Vec<(Timestamp, String, usize)>,
    suppressed: Vec<(Timestamp, Suppression)>,
    want: Vec<Got>,
    end: Timestamp,
}

impl Scenario {
    fn new(route: Route, inhibitor: Inhibitor, receivers: Receivers) -> Scenario {
        Scenario {
            d: Dispatcher::new(route, inhibitor, receivers).expect("receivers exist"),
            silences: Silences::default(),
            events: BTreeMap::new(),
            failing: BTreeMap::new(),
            got: Vec::new(),
            failed: Vec::new(),
            suppressed: Vec::new(),
            want: Vec::new(),
            end: Timestamp(0),
        }
    }

    fn push(&mut self, t: f64, alerts: Vec<Alert>) -> &mut Self {
        self.events
            .entry(at(t))
            .or_default()
            .push(Event::Push(alerts));
        self
    }

    fn silence(&mut self, t: f64, id: &str, matchers: &str, start: f64, end: f64) -> &mut Self {
        let req = SilenceRequest {
            id: None,
            matchers: Matchers::parse(matchers).expect("valid matchers"),
            starts_at: Some(at(start)),
            ends_at: at(end),
            created_by: "acceptance".into(),
            comment: "test".into(),
        };
        self.events
            .entry(at(t))
            .or_default()
            .push(Event::Silence(id.into(), req));
        self
    }

    fn expire(&mut self, t: f64, id: &str) -> &mut Self {
        self.events
            .entry(at(t))
            .or_default()
            .push(Event::Expire(id.into()));
        self
    }

    fn reload(&mut self, t: f64, r: Route, i: Inhibitor, rc: Receivers) -> &mut Self {
        self.events
            .entry(at(t))
            .or_default()
            .push(Event::Reload(r, i, rc));
        self
    }

    fn fail(&mut self, receiver: &str, integration: usize, until: f64) -> &mut Self {
        self.failing
            .insert((receiver.into(), integration), at(until));
        self
    }

    /// Runs the simulated clock from 0 to `end` (inclusive): at each instant, events first,
    /// then the dispatcher's tick; successful sends are confirmed at the same instant.
    fn run(&mut self, end: f64) -> &mut Self {
        self.end = at(end);
        loop {
            let next_event = self.events.keys().next().copied();
            let next = match (next_event, self.d.next_deadline()) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (None, None) => break,
            };
            if next > self.end {
                break;
            }
            let now = next;
            for ev in self.events.remove(&now).unwrap_or_default() {
                match ev {
                    Event::Push(alerts) => {
                        assert_eq!(self.d.upsert(alerts, now), 0);
                    }
                    Event::Silence(id, req) => {
                        let got = self.silences.set(req, now, || id.clone()).expect("valid");
                        assert_eq!(got, id);
                    }
                    Event::Expire(id) => self.silences.expire(&id, now).expect("known silence"),
                    Event::Reload(r, i, rc) => self.d.reload(r, i, rc, now).expect("valid"),
                }
            }
            let flush = self.d.tick(now, &self.silences);
            for s in flush.suppressed {
                self.suppressed.push((now, s));
            }
            for out in flush.notifications {
                let n = out.notification;
                let key = (n.receiver.clone(), out.integration);
                if self.failing.get(&key).is_some_and(|until| now < *until) {
                    self.failed.push((now, key.0, key.1));
                    continue;
                }
                self.d.mark_sent(out.integration, &n, now);
                self.got.push(Got {
                    at: now,
                    receiver: n.receiver.clone(),
                    integration: out.integration,
                    reason: n.reason,
                    alerts: reduce(&n.alerts),
                    inhibited: n.inhibited,
                });
            }
        }
        self
    }

    fn want(
        &mut self,
        t: f64,
        receiver: &str,
        integration: usize,
        reason: NotifyReason,
        alerts: Vec<Alert>,
    ) -> &mut Self {
        self.want_inhibiting(t, receiver, integration, reason, alerts, 0)
    }

    fn want_inhibiting(
        &mut self,
        t: f64,
        receiver: &str,
        integration: usize,
        reason: NotifyReason,
        alerts: Vec<Alert>,
        inhibited: usize,
    ) -> &mut Self {
        self.want.push(Got {
            at: at(t),
            receiver: receiver.into(),
            integration,
            reason,
            alerts: reduce(&alerts),
            inhibited,
        });
        self
    }

    fn none_between(&self, a: f64, b: f64) -> &Self {
        let extra: Vec<&Got> = self
            .got
            .iter()
            .filter(|g| g.at >= at(a) && g.at <= at(b))
            .collect();
        assert!(
            extra.is_empty(),
            "expected nothing in [{a}, {b}], got {extra:#?}"
        );
        self
    }

    /// Every notification delivered up to the end, exactly as expected, in time order.
    fn check(&mut self) -> &Self {
        let key = |g: &Got| {
            (
                g.at,
                g.receiver.clone(),
                g.integration,
                format!("{:?}", g.alerts),
            )
        };
        self.want.sort_by_key(key);
        let mut got = self.got.clone();
        got.sort_by_key(key);
        assert_eq!(got, self.want);
        self
    }

    fn suppressed_at(
        &self,
        t: f64,
        reason: SuppressReason,
    ) -> Vec<(String, Fingerprint, Vec<String>)> {
        let mut v: Vec<(String, Fingerprint, Vec<String>)> = self
            .suppressed
            .iter()
            .filter(|(when, s)| *when == at(t) && s.reason == reason)
            .map(|(_, s)| (s.receiver.clone(), s.fingerprint, s.by.clone()))
            .collect();
        v.sort();
        v
    }
}

fn no_inhibition() -> Inhibitor {
    Inhibitor::new(Vec::new(), false, Dependencies::default())
}

fn webhook(send_resolved: bool) -> Receivers {
    receivers(&[("default", &[send_resolved])])
}

use NotifyReason::*;

#[test]
fn batching() {
    let mut s = Scenario::new(
        route(
            "receiver: default\ngroup_by: []\ngroup_wait: 1s\ngroup_interval: 1s\nrepeat_interval: 4900ms\n",
        ),
        no_inhibition(),
        webhook(true),
    );
    let t = |n: &str, start: f64| alert(&[("alertname", n)], start, None);
    s.push(1.1, vec![t("test1", 1.0)])
        .push(1.7, vec![t("test5", 1.0)])
        .push(3.3, vec![t("test2", 1.5), t("test3", 1.5), t("test4", 1.6)])
        .run(9.5);
    // The group is created at 1.1 (first push), so it flushes at 2.1 and ticks at 3.1, 4.1, ...
    // Alertmanager's windows (2–2.5, 4.1–4.5, 9.1–9.5) contain these instants.
    s.want(
        2.1,
        "default",
        0,
        First,
        vec![t("test1", 1.0), t("test5", 1.0)],
    )
    .want(
        4.1,
        "default",
        0,
        NewAlerts,
        vec![
            t("test1", 1.0),
            t("test5", 1.0),
            t("test2", 1.5),
            t("test3", 1.5),
            t("test4", 1.6),
        ],
    )
    // 4.1 + 4.9 = 9.0 is not a tick; the next one, 9.1, repeats.
    .want(
        9.1,
        "default",
        0,
        Repeat,
        vec![
            t("test1", 1.0),
            t("test5", 1.0),
            t("test2", 1.5),
            t("test3", 1.5),
            t("test4", 1.6),
        ],
    )
    .check()
    .none_between(4.2, 9.0);
    assert_eq!(s.suppressed_at(5.1, SuppressReason::Deduplicated).len(), 5);
}

#[test]
fn repeat() {
    let mut s = Scenario::new(
        route(
            "receiver: default\ngroup_by: [alertname]\ngroup_wait: 1s\ngroup_interval: 1s\nrepeat_interval: 1ms\n",
        ),
        no_inhibition(),
        webhook(true),
    );
    let a = |end| alert(&[("alertname", "test")], 1.0, end);
    s.push(1.0, vec![a(None)])
        .push(3.5, vec![a(Some(3.0))])
        .run(4.5)
        .want(2.0, "default", 0, First, vec![a(None)])
        .want(3.0, "default", 0, Repeat, vec![a(None)])
        .want(4.0, "default", 0, AllResolved, vec![a(Some(3.0))])
        .check();
    // Resolved and notified: the group is gone, nothing is left to flush.
    assert_eq!(s.d.next_deadline(), None);
}

#[test]
fn retry_failing_integration_at_the_next_tick() {
    let mut s = Scenario::new(
        route(
            "receiver: default\ngroup_by: [alertname]\ngroup_wait: 1s\ngroup_interval: 1s\nrepeat_interval: 3s\n",
        ),
        no_inhibition(),
        receivers(&[("default", &[false, false])]),
    );
    let a = alert(&[("alertname", "test1")], 1.0, None);
    s.fail("default", 1, 4.5)
        .push(1.0, vec![a.clone()])
        .run(5.5)
        // The working integration is unaffected: first at 2, repeat at 2 + 3 = 5.
        .want(2.0, "default", 0, First, vec![a.clone()])
        .want(5.0, "default", 0, Repeat, vec![a.clone()])
        // The failing one is decided again at each tick (2, 3, 4 fail) and succeeds at 5.
        // Alertmanager retries inside the flush with backoff and delivers in [4.5, 5]; here
        // in-flush retries belong to the delivery layer, and the dispatcher retries per tick.
        .want(5.0, "default", 1, First, vec![a])
        .check();
    let failed: Vec<Timestamp> = s.failed.iter().map(|(t, _, _)| *t).collect();
    assert_eq!(failed, [at(2.0), at(3.0), at(4.0)]);
}

#[test]
fn resolved_by_timeout() {
    // `resolve_timeout: 10s`: alerts pushed without an end carry a lease of now + 10s.
    let mut s = Scenario::new(
        route("receiver: default\ngroup_by: [alertname]\ngroup_wait: 1s\ngroup_interval: 5s\n"),
        no_inhibition(),
        webhook(true),
    );
    let a = |v: &str, end| alert(&[("alertname", "test"), ("lbl", v)], 1.0, end);
    s.push(
        1.0,
        vec![
            a("v1", Some(11.0)),
            a("v2", Some(11.0)),
            a("v3", Some(11.0)),
        ],
    )
    .run(13.0)
    .want(
        2.0,
        "default",
        0,
        First,
        vec![a("v1", None), a("v2", None), a("v3", None)],
    )
    .want(
        12.0,
        "default",
        0,
        AllResolved,
        vec![
            a("v1", Some(11.0)),
            a("v2", Some(11.0)),
            a("v3", Some(11.0)),
        ],
    )
    .check();
}

#[test]
fn resolved_filter_send_resolved_true_vs_false() {
    let mut s = Scenario::new(
        route("receiver: default\ngroup_by: [alertname]\ngroup_wait: 1s\ngroup_interval: 5s\n"),
        no_inhibition(),
        receivers(&[("default", &[true, false])]),
    );
    let a = |v: &str, start, end| alert(&[("alertname", "test"), ("lbl", v)], start, end);
    // resolve_timeout 10s: pushes without an end get now + 10s.
    s.push(
        1.0,
        vec![a("v1", 1.0, Some(11.0)), a("v2", 1.0, Some(11.0))],
    )
    .push(3.0, vec![a("v1", 1.0, Some(4.0)), a("v3", 3.0, Some(13.0))])
    .push(8.0, vec![a("v3", 3.0, Some(18.0))])
    .run(12.5);
    s.want(
        2.0,
        "default",
        0,
        First,
        vec![a("v1", 1.0, None), a("v2", 1.0, None)],
    )
    .want(
        7.0,
        "default",
        0,
        NewAlerts,
        vec![
            a("v1", 1.0, Some(4.0)),
            a("v2", 1.0, None),
            a("v3", 3.0, None),
        ],
    )
    // v2 timed out at 11; v1 was dropped from the group after the notification at 7.
    .want(
        12.0,
        "default",
        0,
        SomeResolved,
        vec![a("v2", 1.0, Some(11.0)), a("v3", 3.0, None)],
    )
    .want(
        2.0,
        "default",
        1,
        First,
        vec![a("v1", 1.0, None), a("v2", 1.0, None)],
    )
    // Without send_resolved the resolved v1 is left out of the payload...
    .want(
        7.0,
        "default",
        1,
        NewAlerts,
        vec![a("v2", 1.0, None), a("v3", 3.0, None)],
    )
    // ...and a change in resolved alerts alone does not notify it.
    .check();
    let dedup = s.suppressed_at(12.0, SuppressReason::Deduplicated);
    assert_eq!(dedup.len(), 2, "{dedup:?}");
    assert!(dedup.iter().all(|(r, _, _)| r == "default"));
}

fn job_inhibition() -> Inhibitor {
    let rules = burnwatch::notify::inhibit::parse_rules(
        Path::new("alertmanager.yml"),
        "- source_matchers: ['alertname=\"JobDown\"']\n  target_matchers: ['alertname=\"InstanceDown\"']\n  equal: [job, zone]\n",
    )
    .expect("valid rules");
    Inhibitor::new(rules, false, Dependencies::default())
}

const FAST: &str =
    "receiver: default\ngroup_by: []\ngroup_wait: 1s\ngroup_interval: 1s\nrepeat_interval: 1s\n";

#[test]
fn inhibiting() {
    let mut s = Scenario::new(route(FAST), job_inhibition(), webhook(true));
    let a = |name: &str, zone: &str, start, end| {
        alert(
            &[("alertname", name), ("job", "testjob"), ("zone", zone)],
            start,
            end,
        )
    };
    s.push(
        1.0,
        vec![
            a("test1", "aa", 1.0, None),
            a("InstanceDown", "aa", 1.0, None),
            a("InstanceDown", "ab", 1.0, None),
        ],
    )
    .push(2.2, vec![a("JobDown", "aa", 2.2, None)])
    .push(3.6, vec![a("JobDown", "aa", 2.2, Some(3.6))])
    .run(4.5);
    s.want(
        2.0,
        "default",
        0,
        First,
        vec![
            a("test1", "aa", 1.0, None),
            a("InstanceDown", "aa", 1.0, None),
            a("InstanceDown", "ab", 1.0, None),
        ],
    )
    // JobDown in zone aa inhibits InstanceDown in zone aa only; the notification says it
    // holds one alert back.
    .want_inhibiting(
        3.0,
        "default",
        0,
        NewAlerts,
        vec![
            a("test1", "aa", 1.0, None),
            a("InstanceDown", "ab", 1.0, None),
            a("JobDown", "aa", 2.2, None),
        ],
        1,
    )
    // JobDown resolved at 3.6: InstanceDown aa is back as a new alert.
    .want(
        4.0,
        "default",
        0,
        NewAlerts,
        vec![
            a("test1", "aa", 1.0, None),
            a("InstanceDown", "aa", 1.0, None),
            a("InstanceDown", "ab", 1.0, None),
            a("JobDown", "aa", 2.2, Some(3.6)),
        ],
    )
    .check();
    let jobdown = a("JobDown", "aa", 2.2, None).fingerprint();
    assert_eq!(
        s.suppressed_at(3.0, SuppressReason::Inhibited),
        [(
            "default".to_string(),
            a("InstanceDown", "aa", 1.0, None).fingerprint(),
            vec![jobdown.to_string()]
        )]
    );
}

#[test]
fn always_inhibiting() {
    let mut s = Scenario::new(route(FAST), job_inhibition(), webhook(true));
    let a = |name: &str, end| {
        alert(
            &[("alertname", name), ("job", "testjob"), ("zone", "aa")],
            1.0,
            end,
        )
    };
    s.push(1.0, vec![a("InstanceDown", None), a("JobDown", None)])
        .push(
            2.6,
            vec![a("JobDown", Some(2.6)), a("InstanceDown", Some(2.6))],
        )
        .run(3.5)
        .want_inhibiting(2.0, "default", 0, First, vec![a("JobDown", None)], 1)
        // Source and target resolve together: the final notification holds only the source.
        // Alertmanager lists the target too (`TestAlwaysInhibiting`), a resolve for an alert
        // the receiver was never told about; burnwatch sends a resolve only for a firing that
        // was sent to that receiver.
        .want(
            3.0,
            "default",
            0,
            AllResolved,
            vec![a("JobDown", Some(2.6))],
        )
        .check();
}

#[test]
fn empty_inhibition_rule() {
    // `inhibit_rules: [ - ]`: accepted (with a warning) and inhibits nothing.
    let rules = burnwatch::notify::inhibit::parse_rules(Path::new("alertmanager.yml"), "-\n")
        .expect("accepted");
    assert_eq!(rules.len(), 1);
    let mut s = Scenario::new(
        route(FAST),
        Inhibitor::new(rules, false, Dependencies::default()),
        webhook(true),
    );
    let a = |n: &str| {
        alert(
            &[("alertname", n), ("job", "testjob"), ("zone", "aa")],
            1.0,
            None,
        )
    };
    s.push(1.0, vec![a("InstanceDown"), a("JobDown")])
        .run(2.5)
        .want(
            2.0,
            "default",
            0,
            First,
            vec![a("InstanceDown"), a("JobDown")],
        )
        .check();
}

#[test]
fn silencing() {
    let mut s = Scenario::new(
        route(
            "receiver: default\ngroup_by: []\ngroup_wait: 1s\ngroup_interval: 1s\nrepeat_interval: 1ms\n",
        ),
        no_inhibition(),
        webhook(true),
    );
    let a = |n: &str| alert(&[("alertname", n)], 1.0, None);
    s.push(1.0, vec![a("test1"), a("test2")])
        .silence(2.3, "sil-1", r#"alertname="test1""#, 2.5, 4.5)
        .run(5.5)
        .want(2.0, "default", 0, First, vec![a("test1"), a("test2")])
        .want(3.0, "default", 0, Repeat, vec![a("test2")])
        .want(4.0, "default", 0, Repeat, vec![a("test2")])
        // The silence is over: both alerts again.
        .want(5.0, "default", 0, NewAlerts, vec![a("test1"), a("test2")])
        .check();
    assert_eq!(
        s.suppressed_at(3.0, SuppressReason::Silenced),
        [(
            "default".to_string(),
            a("test1").fingerprint(),
            vec!["sil-1".to_string()]
        )]
    );
}

#[test]
fn silence_delete() {
    let mut s = Scenario::new(
        route(
            "receiver: default\ngroup_by: []\ngroup_wait: 1s\ngroup_interval: 1s\nrepeat_interval: 1ms\n",
        ),
        no_inhibition(),
        webhook(true),
    );
    let a = |n: &str| alert(&[("alertname", n)], 1.0, None);
    s.push(1.0, vec![a("test1"), a("test2")])
        .silence(1.3, "sil-all", r#"alertname=~".+""#, 1.5, 100.0)
        .expire(3.5, "sil-all")
        .run(4.5)
        // Alertmanager's window is [3.5, 4.5]: the next tick after the delete.
        .want(4.0, "default", 0, First, vec![a("test1"), a("test2")])
        .check()
        .none_between(0.0, 3.9);
    assert_eq!(s.suppressed_at(2.0, SuppressReason::Silenced).len(), 2);
    assert_eq!(s.suppressed_at(3.0, SuppressReason::Silenced).len(), 2);
}

#[test]
fn merge_alerts() {
    let mut s = Scenario::new(
        route(
            "receiver: default\ngroup_by: [alertname]\ngroup_wait: 1s\ngroup_interval: 1s\nrepeat_interval: 1ms\n",
        ),
        no_inhibition(),
        webhook(true),
    );
    let a = |start, end| alert(&[("alertname", "test")], start, end);
    let ann = |x: Alert, v: &str| annotated(x, "ann", v);
    s.push(1.0, vec![a(1.1, None)])
        // Another sender, later, with an earlier start: the earliest start wins.
        .push(1.2, vec![a(1.0, None)])
        .push(2.1, vec![ann(a(2.0, None), "v1")])
        // Annotations always come from the most recent push.
        .push(3.6, vec![ann(a(1.5, None), "v2")])
        .push(4.6, vec![ann(a(3.0, Some(4.5)), "v2")])
        // Resolved twice: the latest end wins.
        .push(4.8, vec![ann(a(2.9, Some(4.8)), "v3")])
        .push(4.8, vec![ann(a(2.9, Some(4.1)), "v3")])
        // Re-fire after the resolve, no overlap: a new alert.
        .push(5.3, vec![a(5.3, None)])
        .run(6.5)
        .want(2.0, "default", 0, First, vec![a(1.0, None)])
        .want(3.0, "default", 0, Repeat, vec![ann(a(1.0, None), "v1")])
        .want(4.0, "default", 0, Repeat, vec![ann(a(1.0, None), "v2")])
        .want(
            5.0,
            "default",
            0,
            AllResolved,
            vec![ann(a(1.0, Some(4.8)), "v3")],
        )
        // The resolved group was removed after its last notification, so the re-fire opens a
        // new group with a fresh group_wait: 5.3 + 1 = 6.3, inside Alertmanager's [6, 6.5]
        // (Alertmanager keeps empty groups until its 30s maintenance and flushes at the old
        // tick, 6.0).
        .want(6.3, "default", 0, First, vec![a(5.3, None)])
        .check();
}

#[test]
fn reload_restarts_timers_without_duplicates() {
    let yaml = "receiver: default\ngroup_by: []\ngroup_wait: 1s\ngroup_interval: 6s\nrepeat_interval: 10m\n";
    let mut s = Scenario::new(route(yaml), no_inhibition(), webhook(true));
    let a = |n: &str, start| alert(&[("alertname", n)], start, None);
    s.push(1.0, vec![a("test1", 1.0)])
        .reload(3.0, route(yaml), no_inhibition(), webhook(true))
        .push(4.0, vec![a("test2", 4.0)])
        .run(9.5)
        .want(2.0, "default", 0, First, vec![a("test1", 1.0)])
        // The reload rebuilt the group at 3: test1 is old, so it flushed at once (deduplicated),
        // and the 6s interval counts from 3.
        .want(
            9.0,
            "default",
            0,
            NewAlerts,
            vec![a("test1", 1.0), a("test2", 4.0)],
        )
        .check();
    assert_eq!(s.suppressed_at(3.0, SuppressReason::Deduplicated).len(), 1);
}

#[test]
fn multiple_routes_with_continue() {
    let r = route(
        r#"
receiver: default
group_wait: 1s
group_interval: 1s
repeat_interval: 1h
routes:
  - matchers: ['severity="page"']
    receiver: pager
    continue: true
  - matchers: ['team="db"']
    receiver: db
"#,
    );
    let mut s = Scenario::new(
        r,
        no_inhibition(),
        receivers(&[("default", &[true]), ("pager", &[true]), ("db", &[true])]),
    );
    let page_db = alert(
        &[("alertname", "A"), ("severity", "page"), ("team", "db")],
        0.0,
        None,
    );
    let page_web = alert(
        &[("alertname", "B"), ("severity", "page"), ("team", "web")],
        0.0,
        None,
    );
    let ticket_db = alert(
        &[("alertname", "C"), ("severity", "ticket"), ("team", "db")],
        0.0,
        None,
    );
    let other = alert(&[("alertname", "D")], 0.0, None);
    s.push(
        0.0,
        vec![
            page_db.clone(),
            page_web.clone(),
            ticket_db.clone(),
            other.clone(),
        ],
    )
    // An annotation change never notifies.
    .push(3.0, vec![annotated(page_db.clone(), "summary", "changed")])
    .run(10.0)
    .want(1.0, "pager", 0, First, vec![page_db.clone(), page_web])
    .want(1.0, "db", 0, First, vec![page_db, ticket_db])
    // page_web matched `pager` (continue) but no other child: the root does not get it.
    .want(1.0, "default", 0, First, vec![other])
    .check()
    .none_between(1.1, 10.0);
}

/// The live Alertmanager 0.25 timeline of the reference (§1.5), reproduced exactly.
#[test]
fn live_alertmanager_timeline() {
    let r = route(
        r#"
receiver: default
group_by: [alertname, cluster]
group_wait: 2s
group_interval: 4s
repeat_interval: 16s
routes:
  - matchers: ['severity="page"']
    receiver: pager
    continue: true
  - matchers: ['severity=~"page|ticket"']
    receiver: hook
"#,
    );
    let rules = burnwatch::notify::inhibit::parse_rules(
        Path::new("am.yml"),
        "- source_matchers: ['alertname=\"ClusterDown\"']\n  target_matchers: ['alertname=\"InstanceDown\"']\n  equal: [cluster]\n",
    )
    .expect("valid");
    let mut s = Scenario::new(
        r,
        Inhibitor::new(rules, false, Dependencies::default()),
        receivers(&[("default", &[true]), ("pager", &[true]), ("hook", &[true])]),
    );
    let inst = |i: &str, end: Option<f64>| {
        alert(
            &[
                ("alertname", "InstanceDown"),
                ("cluster", "c1"),
                ("instance", i),
                ("severity", "page"),
            ],
            0.0,
            end,
        )
    };
    let cluster = |end: Option<f64>| {
        alert(
            &[
                ("alertname", "ClusterDown"),
                ("cluster", "c1"),
                ("severity", "page"),
            ],
            1.0,
            end,
        )
    };
    // Pushed without endsAt, so Alertmanager gives each push a lease of now + 20s
    // (resolve_timeout). InstanceDown is re-sent every 3s from 0 to 24; ClusterDown from 1 to
    // 10, then posted with endsAt = now at 13.
    for k in 0..=8 {
        let t = 3.0 * k as f64;
        s.push(
            t,
            vec![inst("a", Some(t + 20.0)), inst("b", Some(t + 20.0))],
        );
    }
    for k in 0..=3 {
        let t = 1.0 + 3.0 * k as f64;
        s.push(t, vec![cluster(Some(t + 20.0))]);
    }
    s.push(13.0, vec![cluster(Some(13.0))]);
    s.run(50.0);
    for rcv in ["pager", "hook"] {
        // Live: 3.01, 14.01, 15.01, 30.01, 46.01 — the same instants without the 10ms of
        // processing; 30 = 14 + 16 lands on a tick because the boundary counts (the live run
        // hit it too; Alertmanager's strict comparison can miss it, #676).
        s.want_inhibiting(3.0, rcv, 0, First, vec![cluster(None)], 2)
            .want(14.0, rcv, 0, First, vec![inst("a", None), inst("b", None)])
            .want(15.0, rcv, 0, AllResolved, vec![cluster(Some(13.0))])
            .want(30.0, rcv, 0, Repeat, vec![inst("a", None), inst("b", None)])
            // Last push at 24, lease to 44; the next InstanceDown tick is 46.
            .want(
                46.0,
                rcv,
                0,
                AllResolved,
                vec![inst("a", Some(44.0)), inst("b", Some(44.0))],
            );
    }
    s.check();
    // At 2 the InstanceDown groups flush but both alerts are inhibited (ClusterDown arrived
    // within group_wait): nothing is sent.
    let inhibited = s.suppressed_at(2.0, SuppressReason::Inhibited);
    assert_eq!(inhibited.len(), 4, "{inhibited:?}");
    let cd = cluster(None).fingerprint().to_string();
    assert!(inhibited.iter().all(|(_, _, by)| by == &vec![cd.clone()]));
    // The group key of the live run.
    let groups: Vec<String> = s.d.groups().into_iter().map(|g| g.group_key).collect();
    assert!(groups.is_empty(), "{groups:?}");
}

#[test]
fn dependency_inhibition_and_rollup() {
    // db ← api: the api probe depends on the db probe; SLOs measured by each.
    let deps = Dependencies::from_parts(
        &[("db", &[]), ("api", &["db"])],
        &[("shop", "db-avail", "db"), ("shop", "api-avail", "api")],
    );
    let mut s = Scenario::new(
        route(
            "receiver: oncall\ngroup_by: ['...']\ngroup_wait: 1s\ngroup_interval: 1s\nrepeat_interval: 1h\n",
        ),
        Inhibitor::new(Vec::new(), true, deps),
        receivers(&[("oncall", &[true])]),
    );
    let down = |p: &str, end| alert(&[("alertname", PROBE_DOWN), ("probe", p)], 0.0, end);
    let slo = |name: &str, sev: &str| {
        alert(
            &[
                ("alertname", SLO_BURN_RATE),
                ("service", "shop"),
                ("slo", name),
                ("severity", sev),
            ],
            0.0,
            None,
        )
    };
    s.push(
        0.0,
        vec![
            down("db", None),
            down("api", None),
            slo("db-avail", "page"),
            slo("db-avail", "ticket"),
            slo("api-avail", "page"),
        ],
    )
    .push(5.0, vec![down("db", Some(5.0))])
    .run(8.0);
    // While db is down: the db probe page says it holds back 2 alerts (api's probe and SLO);
    // the db SLO page is a real symptom and is sent; its ticket tier is inhibited by the page.
    s.want_inhibiting(1.0, "oncall", 0, First, vec![down("db", None)], 2)
        .want_inhibiting(1.0, "oncall", 0, First, vec![slo("db-avail", "page")], 1)
        // db recovers at 5: its resolve, and the api alerts, which are now the news.
        .want(5.0, "oncall", 0, AllResolved, vec![down("db", Some(5.0))])
        .want(5.0, "oncall", 0, First, vec![down("api", None)])
        .want(5.0, "oncall", 0, First, vec![slo("api-avail", "page")])
        .check();
    let inhibited = s.suppressed_at(1.0, SuppressReason::Inhibited);
    let fps: Vec<Fingerprint> = inhibited.iter().map(|(_, fp, _)| *fp).collect();
    let mut want = vec![
        down("api", None).fingerprint(),
        slo("api-avail", "page").fingerprint(),
        slo("db-avail", "ticket").fingerprint(),
    ];
    want.sort();
    let mut fps_sorted = fps.clone();
    fps_sorted.sort();
    assert_eq!(fps_sorted, want);
}

#[test]
fn resolve_reaches_receivers_that_got_the_firing_one_even_when_silenced() {
    let mut s = Scenario::new(
        route(
            "receiver: default\ngroup_by: [alertname]\ngroup_wait: 1s\ngroup_interval: 1s\nrepeat_interval: 1h\n",
        ),
        no_inhibition(),
        webhook(true),
    );
    let a = |n: &str, end| alert(&[("alertname", n)], 0.0, end);
    s.push(0.0, vec![a("seen", None), a("unseen", None)])
        // `unseen` is silenced before its first flush, `seen` after it.
        .silence(0.5, "early", r#"alertname="unseen""#, 0.5, 100.0)
        .silence(2.0, "late", r#"alertname="seen""#, 2.0, 100.0)
        .push(3.5, vec![a("seen", Some(3.5)), a("unseen", Some(3.5))])
        .run(6.0)
        .want(1.0, "default", 0, First, vec![a("seen", None)])
        // The receiver was paged for `seen`: its resolve goes through the silence. `unseen`
        // was never sent, so its resolve stays silenced.
        .want(4.0, "default", 0, AllResolved, vec![a("seen", Some(3.5))])
        .check()
        .none_between(1.1, 3.9);
    // Both groups are gone once resolved.
    assert_eq!(s.d.next_deadline(), None);
}

#[test]
fn rules_from_the_default_constructor_are_documented() {
    let d = InhibitRule::page_over_ticket();
    assert_eq!(
        d.source_matchers.to_string(),
        r#"{alertname="SloBurnRate",severity="page"}"#
    );
    assert_eq!(
        d.target_matchers.to_string(),
        r#"{alertname="SloBurnRate",severity="ticket"}"#
    );
    assert_eq!(d.equal, ["service", "slo"]);
}
