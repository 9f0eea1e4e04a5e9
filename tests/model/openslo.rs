//! OpenSLO v1 files read as they are: OpenSLO's own published examples and README objects
//! (`tests/fixtures/openslo/`, from OpenSLO/OpenSLO at aa5cb78d) give the SLOs they mean or a
//! clear diagnostic at the field; references resolve across files (a dangling one is an error at
//! its line and column); every field burnwatch does not honour is reported.

use std::path::{Path, PathBuf};

use burnwatch::rules::model::{
    BudgetingMethod, CalendarUnit, Grouping, Indicator, RatioNumerator, RuleSet, Slo, Window,
};
use burnwatch::rules::{CheckReport, check_paths, check_sources};
use burnwatch::time::Dur;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/openslo")
        .join(name)
}

fn text(report: &CheckReport) -> Vec<String> {
    report.diagnostics.iter().map(ToString::to_string).collect()
}

/// Files given as (name, text), checked as one file set.
fn check(files: &[(&str, &str)]) -> CheckReport {
    let sources: Vec<(PathBuf, Vec<u8>)> = files
        .iter()
        .map(|(n, t)| (PathBuf::from(n), t.as_bytes().to_vec()))
        .collect();
    check_sources(&sources)
}

fn rules(report: &CheckReport) -> &RuleSet {
    report
        .rules
        .as_ref()
        .unwrap_or_else(|| panic!("refused: {:#?}", text(report)))
}

/// True when some diagnostic is at `at` (`line:col: severity`) and contains `what`.
fn has(report: &CheckReport, at: &str, what: &str) -> bool {
    text(report)
        .iter()
        .any(|d| d.contains(&format!(":{at}: ")) && d.contains(what))
}

fn assert_has(report: &CheckReport, at: &str, what: &str) {
    assert!(has(report, at, what), "{at} {what}: {:#?}", text(report));
}

/// A published example with its `type: Any` / `query: Any` placeholders as Prometheus counters.
fn with_prometheus(name: &str) -> String {
    let src = std::fs::read_to_string(fixture(name)).expect("fixture");
    let mut out = String::new();
    let mut which = 0;
    for line in src.lines() {
        let indent = &line[..line.len() - line.trim_start().len()];
        if line.trim_start().starts_with("type: Any") {
            out.push_str(indent);
            out.push_str("type: Prometheus");
        } else if line.trim_start().starts_with("query: Any") {
            which += 1;
            let q = if which % 2 == 1 {
                r#"sum(rate(http_requests_total{job="web",code!~"5.."}[5m]))"#
            } else {
                r#"sum(rate(http_requests_total{job="web"}[5m]))"#
            };
            out.push_str(&format!("{indent}query: '{q}'"));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

fn one_slo<'a>(rules: &'a RuleSet, name: &str) -> &'a Slo {
    rules
        .slos()
        .find(|s| s.id.slo == name)
        .unwrap_or_else(|| panic!("no SLO {name}"))
}

#[test]
fn the_published_examples_say_what_burnwatch_cannot_run_at_the_field() {
    // Each example's SLI is a placeholder (`type: Any`, `query: Any`): a source only a query
    // source could read.
    let r = check_paths(&[fixture("timeslices-slo.yaml")]);
    assert!(r.rules.is_none());
    assert_has(
        &r,
        "18:13: error",
        "this SLI needs a query source that reads counters, which burnwatch cannot make of it: a metric source of type `Any`",
    );
    // The example's calendar window of `1m`, commented "1 month": one minute under the spec.
    assert_has(
        &r,
        "27:17: warning",
        "calendar `duration: 1m` is one minute (in OpenSLO `m` is minutes, `M` months)",
    );
    assert_eq!(r.errors(), 1, "{:#?}", text(&r));

    let r = check_paths(&[fixture("occurences-slo.yaml")]);
    assert_has(&r, "16:9: error", "needs a query source");
    assert_has(&r, "16:9: error", "a `thresholdMetric`");
    assert_has(&r, "26:7: warning", "ignored: `op`");
    assert_has(&r, "27:7: warning", "ignored: `value`");
    // `alertPolicies:` written empty: burnwatch's defaults for a 2w window, said.
    assert_has(
        &r,
        "29:3: warning",
        "no `alertPolicies`: burnwatch's default burn-rate tiers for the window apply (page page_fast at 6.72x over 1h",
    );
    assert_eq!(r.errors(), 1, "{:#?}", text(&r));

    let r = check_paths(&[fixture("ratio-timeslices.yaml")]);
    assert_has(
        &r,
        "29:20: error",
        "`budgetingMethod: RatioTimeslices` (the average of the slices' ratios) is not evaluated by burnwatch; write `Occurrences`",
    );
    assert_has(&r, "33:7: warning", "ignored: `timeSliceWindow`");

    let r = check_paths(&[fixture("low-traffic-timeslices-slo.yaml")]);
    assert_has(&r, "16:13: error", "a metric source of type `Any`");
    assert_has(
        &r,
        "28:20: warning",
        "`startTime: 2022-01-01 12:00:00` is not the start of a calendar week: burnwatch's periods start at calendar boundaries (each Monday 00:00 in America/New_York)",
    );
    assert_eq!(r.errors(), 1, "{:#?}", text(&r));
}

#[test]
fn the_published_timeslices_examples_map_once_their_queries_are_prometheus() {
    let src = with_prometheus("timeslices-slo.yaml");
    let r = check(&[("timeslices-slo.yaml", &src)]);
    let set = rules(&r);
    let svc = &set.services[0];
    assert_eq!(svc.name, "web-availability");
    // Two objectives: two SLOs, named from their displayName.
    let names: Vec<&str> = svc.slos.iter().map(|s| s.id.slo.as_str()).collect();
    assert_eq!(
        names,
        [
            "service-availability-internal-objective",
            "service-availability-sla"
        ]
    );
    let internal = &svc.slos[0];
    assert_eq!(internal.objective.percent(), 99.5);
    assert_eq!(svc.slos[1].objective.percent(), 99.0);
    // `1m` is one minute as the spec says (warned above), counted in 1m slices at 99%.
    assert_eq!(internal.window, Window::Rolling(Dur::MINUTE));
    assert_eq!(
        internal.method,
        BudgetingMethod::Timeslices {
            slice: Dur::MINUTE,
            target: 0.99
        }
    );
    // A one-minute window is shorter than every default tier.
    assert!(internal.alerting.tiers.is_empty());
    assert_eq!(
        internal.description.as_deref(),
        Some("SLO to see if we are above our SLA and to react before.")
    );
    let Indicator::Ratio {
        numerator,
        numerator_selector,
        total,
    } = &internal.indicator
    else {
        panic!("{:?}", internal.indicator)
    };
    assert_eq!(*numerator, RatioNumerator::Good);
    assert_eq!(
        numerator_selector.to_string(),
        r#"http_requests_total{code!~"5..",job="web"}"#
    );
    assert_eq!(total.to_string(), r#"http_requests_total{job="web"}"#);

    let src = with_prometheus("low-traffic-timeslices-slo.yaml");
    let r = check(&[("low.yaml", &src)]);
    let slo = one_slo(rules(&r), "service-availability");
    match &slo.window {
        Window::Calendar { unit, tz_name, .. } => {
            assert_eq!(*unit, CalendarUnit::Week);
            assert_eq!(tz_name, "America/New_York");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(slo.objective.percent(), 99.95);
    assert_eq!(
        slo.method,
        BudgetingMethod::Timeslices {
            slice: Dur::MINUTE,
            target: 0.95
        }
    );
    // The default tiers of a 7-day window (no policy is written).
    let tiers: Vec<(&str, f64)> = slo
        .alerting
        .tiers
        .iter()
        .map(|t| (t.name.as_str(), t.factor))
        .collect();
    assert_eq!(tiers.len(), 4, "{tiers:?}");
    assert!((tiers[0].1 - 3.36).abs() < 1e-9, "{tiers:?}");
}

#[test]
fn references_resolve_across_files_and_the_list_form() {
    let r = check_paths(&[fixture("prometheus")]);
    let rules = rules(&r);
    // `web-shop.yaml` is a list of objects (Service, DataSource, SLI); `slos.yaml` names them and
    // `alerting.yaml`'s policies.
    let shop = rules
        .services
        .iter()
        .find(|s| s.name == "web-shop")
        .expect("web-shop");
    assert_eq!(
        shop.labels.get("team").map(String::as_str),
        Some("shop,payments")
    );
    let main = one_slo(rules, "main-page");
    assert_eq!(main.window, Window::Rolling(Dur::from_days(14)));
    assert_eq!(main.method, BudgetingMethod::Occurrences);
    assert_eq!(main.objective.percent(), 99.0);
    assert_eq!(main.labels.get("priority").map(String::as_str), Some("1"));
    assert_eq!(
        main.labels.get("organization").map(String::as_str),
        Some("acme")
    );
    let Indicator::Ratio {
        numerator,
        numerator_selector,
        total,
    } = &main.indicator
    else {
        panic!("{:?}", main.indicator)
    };
    // The README's ratioMetric: `sum(S)` and `S` with `counter: true`, the type from the
    // DataSource for the total.
    assert_eq!(*numerator, RatioNumerator::Good);
    assert_eq!(
        numerator_selector.to_string(),
        r#"localhost_server_requests{code=~"2xx|3xx",host="*",instance="127.0.0.1:9090"}"#
    );
    assert_eq!(
        total.to_string(),
        r#"localhost_server_requests{code="total",host="*",instance="127.0.0.1:9090"}"#
    );
    // One tier per policy: threshold, lookbackWindow (short = long/12), alertAfter, severity,
    // and the notification targets for routes to match.
    let tiers: Vec<String> = main
        .alerting
        .tiers
        .iter()
        .map(|t| {
            format!(
                "{} {} {} {} {} {} {:?}",
                t.name, t.severity, t.factor, t.long, t.short, t.for_, t.labels
            )
        })
        .collect();
    assert_eq!(
        tiers,
        [
            r#"fast-burn page 14 1h 5m 2m {"notification_target": "on-call-devops-mail-notification,on-call-devops-slack-notification"}"#,
            r#"slow-burn ticket 2 1d 2h 0s {"notification_target": "on-call-devops-slack-notification"}"#,
        ]
    );
    // No policy asks for no-data alerts.
    assert!(main.alerting.no_data_alert.is_none());

    let sla = one_slo(rules, "service-availability-sla");
    match &sla.window {
        Window::Calendar { unit, tz_name, .. } => {
            assert_eq!(*unit, CalendarUnit::Month);
            assert_eq!(tz_name, "America/New_York");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        sla.indicator,
        Indicator::Ratio {
            numerator: RatioNumerator::Bad,
            ..
        }
    ));
    // The inline policy asks for no-data alerts.
    assert!(sla.alerting.no_data_alert.is_some());
    assert_eq!(sla.alerting.tiers.len(), 1);
    assert_eq!(sla.alerting.tiers[0].for_, Dur::from_mins(5));

    // The `OK` lines: services where their SLOs are, the other objects counted.
    let files: Vec<(String, usize, usize)> = r
        .files
        .iter()
        .map(|f| {
            (
                f.path.file_name().unwrap().to_string_lossy().into_owned(),
                f.services.len(),
                f.openslo_objects,
            )
        })
        .collect();
    assert_eq!(
        files,
        [
            ("alerting.yaml".to_owned(), 0, 5),
            ("slos.yaml".to_owned(), 2, 0),
            ("web-shop.yaml".to_owned(), 0, 3)
        ]
    );
}

#[test]
fn a_dangling_reference_is_an_error_at_its_line_and_column() {
    // OpenSLO's own README: its policy names `on-call-devops-mail-notification`, its target is
    // `OnCallDevopsMailNotification`.
    let r = check_paths(&[fixture("readme-alerting.yaml")]);
    assert_has(
        &r,
        "16:18: error",
        "unknown AlertNotificationTarget `on-call-devops-mail-notification`",
    );
    let r = check_paths(&[fixture("readme-slo-datadog.yaml")]);
    assert_has(
        &r,
        "18:30: error",
        "unknown DataSource `datadog-datasource`",
    );

    // Without alerting.yaml, the SLOs' references to its policies and target dangle, each
    // reported in the file and at the place that names it.
    let r = check_paths(&[
        fixture("prometheus/slos.yaml"),
        fixture("prometheus/web-shop.yaml"),
    ]);
    assert!(r.rules.is_none());
    assert_has(&r, "23:23: error", "unknown AlertPolicy `fast-burn`");
    assert_has(&r, "24:23: error", "unknown AlertPolicy `slow-burn`");
    assert_has(
        &r,
        "85:24: error",
        "unknown AlertNotificationTarget `on-call-devops-mail-notification`",
    );
    assert_eq!(r.errors(), 3, "{:#?}", text(&r));
    // And a typo gets a did-you-mean.
    let shop = std::fs::read_to_string(fixture("prometheus/web-shop.yaml")).expect("read");
    let slos = std::fs::read_to_string(fixture("prometheus/slos.yaml"))
        .expect("read")
        .replace("indicatorRef: response-code", "indicatorRef: response-cod");
    let alerting = std::fs::read_to_string(fixture("prometheus/alerting.yaml")).expect("read");
    let r = check(&[("a.yaml", &alerting), ("s.yaml", &slos), ("w.yaml", &shop)]);
    assert_has(
        &r,
        "14:17: error",
        "unknown SLI `response-cod`; did you mean `response-code`?",
    );
    // Names are unique per kind across the file set.
    let r = check(&[
        ("a.yaml", &alerting),
        ("b.yaml", &alerting),
        ("s.yaml", &slos),
        ("w.yaml", &shop),
    ]);
    assert_has(
        &r,
        "6:9: error",
        "AlertPolicy `fast-burn` is already declared at a.yaml:6:9",
    );
}

const SLO_HEAD: &str = "apiVersion: openslo/v1\nkind: SLO\nmetadata:\n  name: api\nspec:\n  service: shop\n  budgetingMethod: Occurrences\n";
const PROM_SLI: &str = "  indicator:\n    metadata: {name: api-sli}\n    spec:\n      ratioMetric:\n        counter: true\n        good: {metricSource: {type: Prometheus, spec: {query: 'sum(x{code=\"200\"})'}}}\n        total: {metricSource: {type: Prometheus, spec: {query: 'sum(x)'}}}\n";

fn slo_with(rest: &str) -> String {
    format!("{SLO_HEAD}{PROM_SLI}{rest}")
}

#[test]
fn windows_map_to_rolling_and_calendar_periods() {
    let window = |tw: &str| {
        let src = slo_with(&format!(
            "  timeWindow:\n{tw}  objectives: [{{target: 0.99}}]\n"
        ));
        check(&[("w.yaml", &src)])
    };
    let r = window("    - {duration: 4w, isRolling: true}\n");
    assert_eq!(
        rules(&r).services[0].slos[0].window,
        Window::Rolling(Dur::from_days(28))
    );
    // A rolling month is 30 days, a quarter 90, a year 365: said.
    let r = window("    - {duration: 1M, isRolling: true}\n");
    assert_eq!(
        rules(&r).services[0].slos[0].window,
        Window::Rolling(Dur::from_days(30))
    );
    assert_has(
        &r,
        "16:18: warning",
        "a rolling `1M` is read as 30d (30 days per month)",
    );
    let r = window("    - {duration: 1Q}\n");
    assert_eq!(
        rules(&r).services[0].slos[0].window,
        Window::Rolling(Dur::from_days(90))
    );
    // Calendar: 1w, 1M, 1Q in the time zone; startTime on a boundary is no warning.
    for (d, unit) in [
        ("1w", CalendarUnit::Week),
        ("1M", CalendarUnit::Month),
        ("1Q", CalendarUnit::Quarter),
    ] {
        let r = window(&format!(
            "    - duration: {d}\n      calendar: {{startTime: 2024-01-01 00:00:00, timeZone: Europe/Berlin}}\n"
        ));
        match &rules(&r).services[0].slos[0].window {
            Window::Calendar {
                unit: u, tz_name, ..
            } => {
                assert_eq!((*u, tz_name.as_str()), (unit, "Europe/Berlin"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(r.warnings(), 1, "{d}: {:#?}", text(&r)); // the default tiers
    }
    let r = window("    - duration: 1Y\n      isRolling: false\n      calendar: {timeZone: UTC}\n");
    assert_has(
        &r,
        "16:17: error",
        "a calendar window of `1Y` is not one of burnwatch's calendar periods; write `1w`, `1M` or `1Q`",
    );
    let r = window("    - duration: 1M\n      calendar: {timeZone: Mars/Olympus}\n");
    assert_has(&r, "17:28: error", "unknown time zone `Mars/Olympus`");
    let r = window("    - {duration: 30s, isRolling: true}\n");
    assert_has(&r, "16:18: error", "is not a duration shorthand");
    let r =
        window("    - {duration: 1d, isRolling: true}\n    - {duration: 2d, isRolling: true}\n");
    assert_has(
        &r,
        "16:5: error",
        "`timeWindow` holds exactly one window, found 2",
    );
}

#[test]
fn every_other_field_is_honoured_reported_or_refused() {
    // A field of the spec burnwatch does not honour: a warning naming it.
    let src = slo_with("  objectives:\n    - target: 0.99\n      compositeWeight: 2\n");
    let r = check(&[("f.yaml", &src)]);
    assert_has(&r, "17:7: warning", "ignored: `compositeWeight`");
    // A key the spec does not have: an error with a did-you-mean.
    let src = slo_with("  objectives:\n    - targt: 0.99\n");
    let r = check(&[("f.yaml", &src)]);
    assert_has(
        &r,
        "16:7: error",
        "unknown key `targt` in an OpenSLO objective; did you mean `target`?",
    );
    // target and targetPercent are the same objective; both at once are refused.
    let src = slo_with("  objectives:\n    - targetPercent: 99.95\n");
    assert_eq!(
        rules(&check(&[("f.yaml", &src)])).services[0].slos[0]
            .objective
            .percent(),
        99.95
    );
    let src = slo_with("  objectives:\n    - {target: 0.99, targetPercent: 99}\n");
    assert_has(
        &check(&[("f.yaml", &src)]),
        "16:22: error",
        "takes exactly one of `target`, `targetPercent`",
    );
    let src = slo_with("  objectives:\n    - target: 99.9\n");
    assert_has(
        &check(&[("f.yaml", &src)]),
        "16:15: error",
        "`target: 99.9` is a fraction in [0, 1) such as 0.999; for a percentage write `targetPercent`",
    );
    // Annotations and labels with several values are reported; label names are Prometheus's.
    let src = slo_with("  objectives: [{target: 0.99}]\n").replace(
        "  name: api\n",
        "  name: api\n  annotations: {openslo.com/key1: v, runbook: \"https://rb/api\"}\n  labels: {cost-centre: [a, b]}\n",
    );
    let r = check(&[("f.yaml", &src)]);
    assert_has(
        &r,
        "5:17: warning",
        "ignored: annotation `openslo.com/key1` (the `openslo.com/` prefix is OpenSLO's own)",
    );
    // The SLO's other annotations go onto its alerts.
    for t in &rules(&r).services[0].slos[0].alerting.tiers {
        assert_eq!(
            t.annotations.get("runbook").map(String::as_str),
            Some("https://rb/api")
        );
    }
    assert_has(
        &r,
        "6:12: warning",
        "label `cost-centre` is `cost_centre` in burnwatch",
    );
    assert_has(&r, "6:25: warning", "label `cost-centre` has 2 values");
    assert_eq!(
        rules(&r).services[0].slos[0]
            .labels
            .get("cost_centre")
            .map(String::as_str),
        Some("a,b")
    );
    // The other apiVersions are refused, naming the one read.
    let r = check(&[("v.yaml", "apiVersion: openslo/v1alpha\nkind: SLO\n")]);
    assert_has(
        &r,
        "1:13: error",
        "`apiVersion: openslo/v1alpha` is not read; burnwatch reads OpenSLO `openslo/v1`",
    );
}

#[test]
fn slis_burnwatch_cannot_count_need_a_query_source() {
    let cases = [
        (
            "      ratioMetric:\n        rawType: failure\n        raw: {metricSource: {type: Prometheus, spec: {query: 'x'}}}\n",
            "a `raw` ratio",
        ),
        (
            "      thresholdMetric: {metricSource: {type: Prometheus, spec: {query: 'x'}}}\n",
            "a `thresholdMetric`",
        ),
        (
            "      ratioMetric:\n        counter: false\n        good: {metricSource: {type: Prometheus, spec: {query: 'sum(x)'}}}\n        total: {metricSource: {type: Prometheus, spec: {query: 'sum(y)'}}}\n",
            "is read as a gauge (`counter` is not `true`)",
        ),
        (
            "      ratioMetric:\n        counter: true\n        good: {metricSource: {type: Datadog, spec: {query: 'sum:x'}}}\n        total: {metricSource: {type: Datadog, spec: {query: 'sum:y'}}}\n",
            "a metric source of type `Datadog`",
        ),
    ];
    for (sli, why) in cases {
        let src = format!(
            "{SLO_HEAD}  indicator:\n    metadata: {{name: s}}\n    spec:\n{sli}  objectives: [{{target: 0.99}}]\n"
        );
        let r = check(&[("q.yaml", &src)]);
        assert!(r.rules.is_none(), "{sli}");
        assert!(
            text(&r)
                .iter()
                .any(|d| d.contains("error: this SLI needs a query source") && d.contains(why)),
            "{why}: {:#?}",
            text(&r)
        );
    }
    // Counter queries of another shape: a query SLO, read from the agent's query source.
    let src = format!(
        "{SLO_HEAD}  indicator:\n    metadata: {{name: s}}\n    spec:\n      ratioMetric:\n        counter: true\n        good: {{metricSource: {{type: Prometheus, spec: {{query: 'x{{code=\"200\"}} + x{{code=\"204\"}}'}}}}}}\n        total: {{metricSource: {{type: Prometheus, spec: {{query: 'sum(x)'}}}}}}\n  objectives: [{{target: 0.99}}]\n"
    );
    let r = check(&[("q.yaml", &src)]);
    assert!(
        text(&r)
            .iter()
            .any(|d| d.contains("warning: needs a query source")),
        "{:#?}",
        text(&r)
    );
    match &rules(&r).services[0].slos[0].indicator {
        burnwatch::rules::model::Indicator::Query {
            source: None,
            numerator: burnwatch::rules::model::RatioNumerator::Good,
            numerator_query,
            total_query,
        } => assert_eq!(
            (numerator_query.as_str(), total_query.as_str()),
            ("x{code=\"200\"} + x{code=\"204\"}", "sum(x)")
        ),
        other => panic!("{other:?}"),
    }
    // `sum by` in both queries: one SLO per label set.
    let src = format!(
        "{SLO_HEAD}  indicator:\n    metadata: {{name: s}}\n    spec:\n      ratioMetric:\n        counter: true\n        bad: {{metricSource: {{type: prometheus, spec: {{query: 'sum by (route) (increase(x{{code=\"500\"}}[1h]))'}}}}}}\n        total: {{metricSource: {{type: prometheus, spec: {{query: 'sum by (route) (increase(x[1h]))'}}}}}}\n  objectives: [{{target: 0.99}}]\n"
    );
    let r = check(&[("g.yaml", &src)]);
    let slo = &rules(&r).services[0].slos[0];
    assert_eq!(
        slo.group,
        Some(Grouping::Template {
            by: vec!["route".to_owned()],
            max_instances: burnwatch::rules::model::DEFAULT_MAX_INSTANCES
        })
    );
}

#[test]
fn alert_policies_become_tiers() {
    let policy = |cond: &str, extra: &str| {
        format!(
            "{}  timeWindow: [{{duration: 30d, isRolling: true}}]\n  objectives: [{{target: 0.999}}]\n  alertPolicies:\n    - kind: AlertPolicy\n      metadata: {{name: p}}\n      spec:\n{extra}        conditions:\n          - kind: AlertCondition\n            metadata: {{name: c}}\n            spec:\n              severity: sev1\n              condition: {cond}\n",
            slo_with("")
        )
    };
    let r = check(&[(
        "p.yaml",
        &policy(
            "{kind: burnrate, op: gt, threshold: 6, lookbackWindow: 6h, alertAfter: 15m}",
            "        alertWhenNoData: false\n",
        ),
    )]);
    let slo = &rules(&r).services[0].slos[0];
    let t = &slo.alerting.tiers[0];
    assert_eq!(
        (
            t.name.as_str(),
            t.severity.as_str(),
            t.factor,
            t.long,
            t.short,
            t.for_
        ),
        (
            "p",
            "sev1",
            6.0,
            Dur::from_hours(6),
            Dur::from_mins(30),
            Dur::from_mins(15)
        )
    );
    assert_eq!(slo.alerting.tiers.len(), 1);
    assert!(slo.alerting.no_data_alert.is_none());
    // A lookback longer than the window is refused at the condition.
    let r = check(&[(
        "p.yaml",
        &policy("{op: gt, threshold: 1, lookbackWindow: 5w}", ""),
    )]);
    assert_has(
        &r,
        "26:65: error",
        "lookbackWindow 35d is longer than the 30d window",
    );
    // alertWhenBreaching: false makes no tier, and says so.
    let r = check(&[(
        "p.yaml",
        &policy(
            "{op: gt, threshold: 1, lookbackWindow: 1h}",
            "        alertWhenBreaching: false\n",
        ),
    )]);
    assert!(rules(&r).services[0].slos[0].alerting.tiers.is_empty());
    assert_has(&r, "21:9: warning", "`alertWhenBreaching: false`");
    // Two conditions in one policy break the spec's limit.
    let two = policy("{op: gt, threshold: 1, lookbackWindow: 1h}", "").replace(
        "        conditions:\n",
        "        conditions:\n          - conditionRef: other\n",
    );
    assert_has(
        &check(&[("p.yaml", &two)]),
        "22:11: error",
        "an AlertPolicy holds exactly one condition",
    );
}

#[test]
fn converted_files_read_back_as_the_same_slos() {
    let r = check_paths(&[fixture("prometheus")]);
    for svc in &rules(&r).services {
        let notes: Vec<String> = r
            .diagnostics_for(&svc.file)
            .map(ToString::to_string)
            .collect();
        let text = burnwatch::rules::convert::service_document(svc, &notes);
        let back = burnwatch::rules::load_str("converted.yaml", &text)
            .unwrap_or_else(|d| panic!("the converted file is refused: {d:#?}\n{text}"));
        let again = &back.services[0];
        assert_eq!(again.spec, burnwatch::rules::model::Spec::Burnwatch);
        assert_eq!(again.labels, svc.labels);
        let summary = crate::sloth::summary;
        let a: Vec<String> = again.slos.iter().map(summary).collect();
        let b: Vec<String> = svc.slos.iter().map(summary).collect();
        assert_eq!(a, b, "{text}");
    }
}
