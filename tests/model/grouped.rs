//! Grouped SLOs (`group_by`) against ground truth on a simulated clock: the synthetic fleet's
//! pages (`Fleet::page`, whose counters are a pure function of time) go through the real
//! matcher and evaluator, and every instance must count exactly what its route answered, exactly
//! as a hand-written SLO per route does; instances past `max_instances` are refused and counted,
//! instances age out a window after their series went away, and they come back from a
//! checkpoint and through a reload with their counts.

use burnwatch::alerter::Alerter;
use burnwatch::evaluator::{Evaluator, Observation};
use burnwatch::exposition::Format;
use burnwatch::rules::load_str;
use burnwatch::rules::model::{Grouping, RuleSet};
use burnwatch::scrape::{TargetLabels, match_page};
use burnwatch::slo::checkpoint::EngineCheckpoint;
use burnwatch::slo::engine::SloReport;
use burnwatch::storage;
use burnwatch::synthetic::Fleet;
use burnwatch::time::Timestamp;
use burnwatch::view::AgentSnapshot;

/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000;
const SCRAPE_MS: i64 = 15_000;
const ROUTES: u32 = 12;
const TARGETS: u32 = 2;

fn targets_yaml() -> String {
    (0..TARGETS)
        .map(|k| format!("  - {{name: t{k}, url: \"http://127.0.0.1:1/targets/{k}/metrics\"}}\n"))
        .collect()
}

/// One grouped rule over the fleet's routes (`extra` lines added to it).
fn grouped(extra: &str) -> RuleSet {
    load_str(
        "g.yaml",
        &format!(
            "version: burnwatch/v1\nservice: fleet\nlabels: {{team: edge}}\nscrape:\n{}slos:\n  - name: routes\n    objective: 99.9\n{extra}    group_by: [route]\n    indicator:\n      ratio:\n        bad: 'bench_requests_total{{code=\"500\"}}'\n        total: bench_requests_total\n",
            targets_yaml()
        ),
    )
    .expect("grouped rules")
}

/// The same SLOs written by hand, one per route.
fn by_hand() -> RuleSet {
    let slos: String = (0..ROUTES)
        .map(|r| {
            format!(
                "  - name: r{r}\n    objective: 99.9\n    indicator:\n      ratio:\n        bad: 'bench_requests_total{{route=\"r{r}\",code=\"500\"}}'\n        total: 'bench_requests_total{{route=\"r{r}\"}}'\n"
            )
        })
        .collect();
    load_str(
        "h.yaml",
        &format!(
            "version: burnwatch/v1\nservice: fleet\nscrape:\n{}slos:\n{slos}",
            targets_yaml()
        ),
    )
    .expect("hand-written rules")
}

/// Scrape `i` (at `T0 + i * 15 s`) of target `k`, its page filtered by `keep` (a line per series).
fn scrape(ev: &Evaluator, k: u32, i: i64, keep: &dyn Fn(&str) -> bool) -> Observation {
    let fleet = Fleet::new(ROUTES, TARGETS, 0);
    let page: String = fleet
        .page(k, (i * SCRAPE_MS) as u64)
        .lines()
        .filter(|l| l.starts_with('#') || keep(l))
        .map(|l| format!("{l}\n"))
        .collect();
    let t = &ev.rules().scrapes[k as usize];
    Observation::Scrape {
        generation: ev.generation(),
        target: t.name.as_str().into(),
        at: Timestamp(T0 + i * SCRAPE_MS),
        duration_secs: 0.01,
        bytes: page.len() as u64,
        result: Ok(match_page(
            ev.plan(),
            &TargetLabels::for_target(t),
            page.as_bytes(),
            Format::Text,
            1_000_000,
        )
        .expect("the fleet's pages parse")),
    }
}

/// Scrapes `from..to` of every target, `keep` filtering the series.
fn feed(ev: &mut Evaluator, from: i64, to: i64, keep: &dyn Fn(&str) -> bool) {
    for i in from..to {
        for k in 0..TARGETS {
            let obs = scrape(ev, k, i, keep);
            ev.apply(obs);
        }
    }
}

fn all(_: &str) -> bool {
    true
}

fn instance<'a>(snap: &'a AgentSnapshot, route: &str) -> Option<&'a SloReport> {
    let id = format!("routes{{route=\"{route}\"}}");
    snap.slos.iter().find(|r| r.id.slo == id)
}

fn plain<'a>(snap: &'a AgentSnapshot, name: &str) -> &'a SloReport {
    snap.slos
        .iter()
        .find(|r| r.id.slo == name)
        .expect("hand-written SLO")
}

/// Good and total route `r` answered between scrapes `first` and `last` (the first scrape is
/// the counters' baseline, as Prometheus's `increase` takes it).
fn truth(r: u32, first: i64, last: i64) -> (u64, u64) {
    let (ok1, bad1) = Fleet::route_counts(r, (first * SCRAPE_MS) as u64);
    let (ok2, bad2) = Fleet::route_counts(r, (last * SCRAPE_MS) as u64);
    (ok2 - ok1, (ok2 + bad2) - (ok1 + bad1))
}

#[test]
fn every_instance_counts_its_route_exactly_as_a_hand_written_slo() {
    let mut g = Evaluator::new(grouped(""), Timestamp(T0));
    let mut h = Evaluator::new(by_hand(), Timestamp(T0));
    // 20 minutes of scrapes.
    let scrapes = 80;
    feed(&mut g, 0, scrapes, &all);
    feed(&mut h, 0, scrapes, &all);
    let now = Timestamp(T0 + scrapes * SCRAPE_MS);
    let gs = g.evaluate(now);
    let hs = h.evaluate(now);
    assert_eq!(gs.slos.len(), ROUTES as usize, "one SLO per route");
    for r in 0..ROUTES {
        let route = format!("r{r}");
        let i = instance(&gs, &route).expect("an instance per route");
        let p = plain(&hs, &route);
        let (good, total) = truth(r, 0, scrapes - 1);
        assert_eq!((i.window.good, i.window.total), (good, total), "{route}");
        assert!(total > 0, "{route} had traffic");
        // Every window, budget and tier: the instance is that hand-written SLO.
        assert_eq!(
            format!("{:?}", (&i.window, &i.alert_windows, &i.budget, &i.tiers)),
            format!("{:?}", (&p.window, &p.alert_windows, &p.budget, &p.tiers)),
            "{route}"
        );
    }
    // The rule set in force holds the instances in place of the rule, labelled by route, with
    // the service's labels.
    let slos = &gs.rules.services[0].slos;
    assert_eq!(slos.len(), ROUTES as usize);
    for s in slos {
        assert!(!s.is_template());
        assert_eq!(s.id.name(), "routes");
        let route = s.labels.get("route").expect("route label");
        assert_eq!(s.id.slo, format!("routes{{route=\"{route}\"}}"));
        assert_eq!(s.labels.get("team").map(String::as_str), Some("edge"));
        assert!(matches!(s.group, Some(Grouping::Instance { .. })));
    }
    assert_eq!(gs.rules_status.slos, ROUTES as usize);
    let status = &gs.groups[0];
    assert_eq!(
        (status.instances, status.created_total, status.refused_total),
        (ROUTES as usize, u64::from(ROUTES), 0)
    );
    // Each instance alerts on its own: the failing routes (50 % errors) and only they burn,
    // each alert labelled with its route and the rule's name.
    let mut alerter = Alerter::new(&gs.rules, "http://bw");
    let mut burning: Vec<String> = Vec::new();
    for step in 0..4 {
        let at = Timestamp(now.0 + step * 60_000);
        let set = alerter.evaluate(&gs, at);
        for a in set.alerts.iter().filter(|a| a.ends_at.is_none()) {
            if a.labels.get("alertname").map(String::as_str) == Some("SloBurnRate") {
                assert_eq!(a.labels.get("slo").map(String::as_str), Some("routes"));
                burning.push(a.labels.get("route").expect("route").clone());
            }
        }
    }
    burning.sort();
    burning.dedup();
    let failing: Vec<String> = {
        let mut v: Vec<String> = (0..ROUTES)
            .filter(|r| Fleet::is_failing(*r))
            .map(|r| format!("r{r}"))
            .collect();
        v.sort();
        v
    };
    assert_eq!(burning, failing);
}

#[test]
fn label_sets_past_max_instances_are_refused_and_counted() {
    let mut ev = Evaluator::new(grouped("    max_instances: 5\n"), Timestamp(T0));
    feed(&mut ev, 0, 4, &all);
    let snap = ev.evaluate(Timestamp(T0 + 4 * SCRAPE_MS));
    assert_eq!(snap.slos.len(), 5);
    let g = &snap.groups[0];
    assert_eq!((g.instances, g.max_instances), (5, 5));
    // Target t0 shows r0, r2, ... r10 and is scraped first, so the first five sets seen are
    // r0, r2, r4, r6 and r8; r10 and t1's six routes are refused at each of the 4 rounds.
    assert_eq!(g.refused_total, 7 * 4);
    let mut admitted: Vec<&str> = snap.slos.iter().map(|r| r.id.slo.as_str()).collect();
    admitted.sort();
    assert_eq!(
        admitted,
        ["r0", "r2", "r4", "r6", "r8"]
            .map(|r| format!("routes{{route=\"{r}\"}}"))
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
    assert!(
        g.refused_example
            .as_deref()
            .is_some_and(|e| e.starts_with("{route=\"r")),
        "{:?}",
        g.refused_example
    );
    // The rule's counters are counters: a reload does not reset them.
    ev.reload(
        grouped("    max_instances: 5\n"),
        Timestamp(T0 + 4 * SCRAPE_MS),
    );
    let reloaded = ev.evaluate(Timestamp(T0 + 4 * SCRAPE_MS));
    assert_eq!(
        (
            reloaded.groups[0].refused_total,
            reloaded.groups[0].instances
        ),
        (7 * 4, 5)
    );
    // The admitted ones still count exactly.
    for r in snap.slos.iter() {
        let route: u32 = r.id.slo["routes{route=\"r".len()..r.id.slo.len() - 2]
            .parse()
            .expect("route number");
        assert_eq!(r.window.good, truth(route, 0, 3).0, "{}", r.id);
    }
}

#[test]
fn series_without_the_label_make_one_instance_without_it() {
    let rules = load_str(
        "e.yaml",
        "version: burnwatch/v1\nservice: s\nscrape:\n  - {name: t, url: \"http://127.0.0.1:1/metrics\"}\nslos:\n  - name: by_route\n    objective: 99\n    group_by: [route]\n    indicator: {ratio: {bad: 'req_total{code=\"500\"}', total: req_total}}\n",
    )
    .expect("rules");
    let mut ev = Evaluator::new(rules, Timestamp(T0));
    // A value past MAX_GROUP_VALUE_BYTES is a target's garbage, not a route: refused, counted,
    // and shown cut short.
    let huge = "x".repeat(burnwatch::evaluator::MAX_GROUP_VALUE_BYTES + 1);
    for (i, n) in [(0i64, 10u64), (1, 30)] {
        let page = format!(
            "req_total{{code=\"200\"}} {n}\nreq_total{{code=\"500\"}} 1\nreq_total{{code=\"200\",route=\"/a\"}} {}\nreq_total{{route=\"{huge}\"}} 5\n",
            2 * n
        );
        let t = &ev.rules().scrapes[0];
        let m = match_page(
            ev.plan(),
            &TargetLabels::for_target(t),
            page.as_bytes(),
            Format::Text,
            100,
        )
        .expect("page");
        ev.apply(Observation::Scrape {
            generation: ev.generation(),
            target: "t".into(),
            at: Timestamp(T0 + i * SCRAPE_MS),
            duration_secs: 0.01,
            bytes: 0,
            result: Ok(m),
        });
    }
    let snap = ev.evaluate(Timestamp(T0 + 2 * SCRAPE_MS));
    let mut got: Vec<(String, u64, bool)> = snap
        .slos
        .iter()
        .map(|r| {
            let def = snap
                .rules
                .slos()
                .find(|s| s.id == r.id)
                .expect("definition");
            (
                r.id.slo.clone(),
                r.window.total,
                def.labels.contains_key("route"),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("by_route{route=\"\"}".to_owned(), 20, false),
            ("by_route{route=\"/a\"}".to_owned(), 40, true),
        ]
    );
    let g = &snap.groups[0];
    assert_eq!(g.refused_total, 2);
    let example = g.refused_example.as_deref().expect("example");
    assert!(
        example.len() <= 260 && example.ends_with("..."),
        "{example}"
    );
}

#[test]
fn an_instance_whose_series_went_away_ages_out_after_a_window() {
    let mut ev = Evaluator::new(grouped("    window: 1h\n"), Timestamp(T0));
    // 10 minutes of every route, then r3's series are gone from the pages.
    feed(&mut ev, 0, 40, &all);
    let last_seen = 39;
    let without_r3 = |l: &str| !l.contains("route=\"r3\"");
    let hour = 3_600_000 / SCRAPE_MS;
    feed(&mut ev, 40, last_seen + hour + 1, &without_r3);
    // Exactly a window after it was last seen: still there (nothing of its window is gone).
    let at_window = Timestamp(T0 + (last_seen + hour) * SCRAPE_MS);
    let snap = ev.evaluate(at_window);
    assert!(instance(&snap, "r3").is_some());
    let slo_set = snap.rules_status.slo_set;
    feed(
        &mut ev,
        last_seen + hour + 1,
        last_seen + hour + 3,
        &without_r3,
    );
    let later = Timestamp(T0 + (last_seen + hour + 3) * SCRAPE_MS);
    let snap = ev.evaluate(later);
    assert!(instance(&snap, "r3").is_none(), "r3 aged out");
    assert_eq!(snap.slos.len(), ROUTES as usize - 1);
    assert!(
        snap.rules
            .slos()
            .all(|s| s.labels.get("route").map(String::as_str) != Some("r3"))
    );
    assert_eq!(
        (snap.groups[0].aged_out_total, snap.groups[0].instances),
        (1, 11)
    );
    assert!(
        snap.rules_status.slo_set > slo_set,
        "readers rebuild on the change"
    );
    // The others count on exactly, whether their engine index moved or not. The 1h window
    // reads the 1-minute buckets overlapping the last hour: the scrapes from the one starting
    // that bucket (4 a minute) to the last, each adding its increment over the one before.
    let last = last_seen + hour + 2;
    let bucket = (later.0 - 3_600_000 - T0).div_euclid(60_000);
    let first = bucket * 4;
    for r in (0..ROUTES).filter(|r| *r != 3) {
        let i = instance(&snap, &format!("r{r}")).expect("still there");
        assert_eq!(
            (i.window.good, i.window.total),
            truth(r, first - 1, last),
            "r{r}"
        );
    }
    // And when r3 comes back it is a new instance, counting from its return.
    feed(&mut ev, last_seen + hour + 3, last_seen + hour + 6, &all);
    let snap = ev.evaluate(Timestamp(T0 + (last_seen + hour + 6) * SCRAPE_MS));
    let back = instance(&snap, "r3").expect("r3 is back");
    assert_eq!(
        back.window.total,
        truth(3, last_seen + hour + 3, last_seen + hour + 5).1
    );
}

#[test]
fn instances_come_back_from_a_checkpoint_and_through_a_reload() {
    let mut ev = Evaluator::new(grouped(""), Timestamp(T0));
    feed(&mut ev, 0, 40, &all);
    let now = Timestamp(T0 + 40 * SCRAPE_MS);
    let before = ev.evaluate(now);
    let bytes = ev.encode_checkpoint().expect("encode");
    let cp: EngineCheckpoint = storage::decode(&bytes).expect("decode");
    // A restart: the rules as written, then the checkpoint.
    let mut back = Evaluator::new(grouped(""), now);
    let report = back.restore(cp);
    assert_eq!(report.kept.len(), ROUTES as usize, "{report:?}");
    let after = back.evaluate(now);
    let numbers = |s: &AgentSnapshot| {
        let mut v: Vec<(String, u64, u64)> = s
            .slos
            .iter()
            .map(|r| (r.id.slo.clone(), r.window.good, r.window.total))
            .collect();
        v.sort();
        v
    };
    assert_eq!(numbers(&after), numbers(&before));
    assert_eq!(after.rules.slos().count(), ROUTES as usize);
    // They keep counting after the restart.
    feed(&mut back, 40, 44, &all);
    let later = back.evaluate(Timestamp(T0 + 44 * SCRAPE_MS));
    for r in 0..ROUTES {
        let i = instance(&later, &format!("r{r}")).expect("instance");
        assert_eq!(i.window.total, truth(r, 0, 43).1, "r{r}");
    }
    // A reload that changes the objective keeps every instance and its counts; one that groups
    // by another label has other instances.
    back.reload(
        grouped("    description: tighter\n"),
        Timestamp(T0 + 44 * SCRAPE_MS),
    );
    let reloaded = back.evaluate(Timestamp(T0 + 44 * SCRAPE_MS));
    assert_eq!(numbers(&reloaded), numbers(&later));
    let rules = load_str(
        "g.yaml",
        &format!(
            "version: burnwatch/v1\nservice: fleet\nscrape:\n{}slos:\n  - name: routes\n    objective: 99.9\n    group_by: [code]\n    indicator:\n      ratio:\n        bad: 'bench_requests_total{{code=\"500\"}}'\n        total: bench_requests_total\n",
            targets_yaml()
        ),
    )
    .expect("rules");
    back.reload(rules, Timestamp(T0 + 44 * SCRAPE_MS));
    let regrouped = back.evaluate(Timestamp(T0 + 44 * SCRAPE_MS));
    assert!(regrouped.slos.is_empty(), "new label sets come with data");
    feed(&mut back, 44, 46, &all);
    let snap = back.evaluate(Timestamp(T0 + 46 * SCRAPE_MS));
    let mut ids: Vec<&str> = snap.slos.iter().map(|r| r.id.slo.as_str()).collect();
    ids.sort();
    assert_eq!(ids, vec!["routes{code=\"200\"}", "routes{code=\"500\"}"]);
}
