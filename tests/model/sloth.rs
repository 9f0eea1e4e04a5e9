//! Sloth's `prometheus/v1` files read as they are: Sloth's own published examples
//! (`tests/fixtures/sloth/`, from slok/sloth v0.16.0) decode into the SLOs they mean, what
//! burnwatch does otherwise is reported, and `burnwatch generate prometheus` on them writes what
//! `sloth generate` wrote for them (Sloth's published output): the same groups, record names,
//! expressions (up to whitespace and matcher order), labels and alert windows and factors.

use std::collections::BTreeMap;
use std::path::Path;

use burnwatch::generate::prometheus::{Options, generate, rule_file};
use burnwatch::rules::check_paths;
use burnwatch::rules::model::{Indicator, LatencySource, RatioNumerator, RuleSet};
use burnwatch::time::Dur;

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sloth")
        .join(name)
}

/// The rules of one Sloth example, and the warnings reading it gave.
fn read(name: &str) -> (RuleSet, Vec<String>) {
    let report = check_paths(&[fixture(name)]);
    let diags: Vec<String> = report.diagnostics.iter().map(ToString::to_string).collect();
    let rules = report
        .rules
        .unwrap_or_else(|| panic!("{name} is refused: {diags:#?}"));
    (rules, diags)
}

#[test]
fn sloths_getting_started_reads_as_it_means() {
    let (rules, diags) = read("getting-started.yml");
    let svc = &rules.services[0];
    assert_eq!(svc.name, "myservice");
    assert_eq!(
        svc.labels,
        [
            ("owner", "myteam"),
            ("repo", "myorg/myservice"),
            ("tier", "2")
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .into()
    );
    let slo = &svc.slos[0];
    assert_eq!(slo.id.slo, "requests-availability");
    assert_eq!(slo.objective.percent(), 99.9);
    assert_eq!(slo.window.nominal(), Dur::from_days(30));
    let Indicator::Ratio {
        numerator,
        numerator_selector,
        total,
    } = &slo.indicator
    else {
        panic!("{:?}", slo.indicator)
    };
    assert_eq!(*numerator, RatioNumerator::Bad);
    assert_eq!(
        numerator_selector.to_string(),
        r#"http_request_duration_seconds_count{code=~"(5..|429)",job="myservice"}"#
    );
    assert_eq!(
        total.to_string(),
        r#"http_request_duration_seconds_count{job="myservice"}"#
    );
    // Sloth's page and ticket alerts are the page and ticket tiers, routed as the file routes
    // them: `severity: pageteam` is the page tiers' severity, the other labels go on.
    let tiers: Vec<(&str, &str, f64)> = slo
        .alerting
        .tiers
        .iter()
        .map(|t| (t.name.as_str(), t.severity.as_str(), t.factor))
        .collect();
    assert_eq!(
        tiers,
        [
            ("page_fast", "pageteam", 14.4),
            ("page_slow", "pageteam", 6.0),
            ("ticket_fast", "slack", 3.0),
            ("ticket_slow", "slack", 1.0)
        ]
    );
    let page = &slo.alerting.tiers[0].labels;
    assert_eq!(page.get("routing_key").map(String::as_str), Some("myteam"));
    assert_eq!(
        page.get("category").map(String::as_str),
        Some("availability")
    );
    let ticket = &slo.alerting.tiers[3].labels;
    assert_eq!(
        ticket.get("slack_channel").map(String::as_str),
        Some("#alerts-myteam")
    );
    // The alert name is the generated rules'; the annotations go on every tier's alerts.
    assert_eq!(
        slo.alerting.alert_name.as_deref(),
        Some("MyServiceHighErrorRate")
    );
    for t in &slo.alerting.tiers {
        assert_eq!(
            t.annotations.get("summary").map(String::as_str),
            Some("High error rate on 'myservice' requests responses"),
            "{}",
            t.name
        );
    }
    assert!(
        !diags.iter().any(|d| d.contains("ignored")),
        "every field of the example is honoured: {diags:#?}"
    );
}

#[test]
fn sloths_kubernetes_resource_reads_as_its_plain_spec() {
    let (plain, _) = read("getting-started.yml");
    let (k8s, diags) = read("k8s-getting-started.yml");
    assert_eq!(
        format!("{:?}", k8s.services[0].slos),
        format!("{:?}", plain.services[0].slos)
    );
    assert_eq!(k8s.services[0].labels, plain.services[0].labels);
    assert!(
        diags
            .iter()
            .any(|d| d.contains("warning: ignored: `metadata`")),
        "{diags:#?}"
    );
}

#[test]
fn sloths_apiserver_latency_query_is_a_histogram_latency_slo() {
    let (rules, _) = read("kubernetes-apiserver.yml");
    let latency = rules
        .slos()
        .find(|s| s.id.slo == "requests-latency")
        .expect("latency SLO");
    match &latency.indicator {
        Indicator::LatencyThreshold {
            threshold,
            source: LatencySource::Histogram { selector, .. },
        } => {
            assert_eq!(*threshold, Dur::from_millis(400));
            assert_eq!(
                selector.to_string(),
                r#"apiserver_request_duration_seconds{verb!="WATCH"}"#
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn what_burnwatch_cannot_count_is_an_error_at_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("s.yml");
    let cases = [
        (
            "    sli:\n      raw:\n        error_ratio_query: x\n",
            ":7:7: error: a `raw` SLI is an error ratio computed by Prometheus",
        ),
        (
            "    sli:\n      plugin:\n        id: sloth-common/fake\n",
            ":7:7: error: an SLI `plugin` is Go code",
        ),
    ];
    for (sli, want) in cases {
        std::fs::write(
            &file,
            format!(
                "version: prometheus/v1\nservice: s\nslos:\n  - name: a\n    objective: 99\n{sli}"
            ),
        )
        .expect("write");
        let report = check_paths(std::slice::from_ref(&file));
        assert!(report.rules.is_none(), "{sli}");
        let text: Vec<String> = report.diagnostics.iter().map(ToString::to_string).collect();
        assert!(text.iter().any(|d| d.contains(want)), "{want}: {text:#?}");
    }
}

#[test]
fn queries_that_do_not_translate_are_query_slos_with_a_warning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("s.yml");
    let error = "sum(rate(x{code=~\"5..\"}[{{.window}}])) / 2";
    std::fs::write(
        &file,
        format!(
            "version: prometheus/v1\nservice: s\nslos:\n  - name: a\n    objective: 99\n    sli:\n      events:\n        error_query: '{error}'\n        total_query: sum(rate(y[{{{{.window}}}}]))\n  - name: b\n    objective: 99\n    sli:\n      events:\n        error_query: sum(rate(y{{code=\"500\"}}[{{{{.window}}}}]))\n        total_query: sum(rate(y[{{{{.window}}}}]))\n"
        ),
    )
    .expect("write");
    let report = check_paths(std::slice::from_ref(&file));
    let text: Vec<String> = report.diagnostics.iter().map(ToString::to_string).collect();
    assert_eq!(report.errors(), 0, "{text:#?}");
    assert!(
        text.iter()
            .any(|d| d.contains(":8:22: warning: needs a query source")),
        "{text:#?}"
    );
    let rules = report.rules.expect("rules");
    let a = rules.slos().find(|s| s.id.slo == "a").expect("a");
    match &a.indicator {
        Indicator::Query {
            source,
            numerator,
            numerator_query,
            total_query,
        } => {
            assert_eq!(*source, None);
            assert_eq!(*numerator, RatioNumerator::Bad);
            assert_eq!(numerator_query, error);
            assert_eq!(total_query, "sum(rate(y[{{.window}}]))");
        }
        other => panic!("{other:?}"),
    }
    let b = rules.slos().find(|s| s.id.slo == "b").expect("b");
    assert!(matches!(b.indicator, Indicator::Ratio { .. }), "{b:?}");
    let summary = &report.files[0].services[0];
    assert_eq!((summary.slos, summary.queries), (2, 1));
}

/// Everything an SLO means, its selectors in their canonical form (matcher order does not
/// change a selector).
pub(crate) fn summary(slo: &burnwatch::rules::model::Slo) -> String {
    let indicator = match &slo.indicator {
        Indicator::Ratio {
            numerator,
            numerator_selector,
            total,
        } => format!("ratio {numerator:?} {numerator_selector} / {total}"),
        Indicator::LatencyThreshold {
            threshold,
            source: LatencySource::Histogram { selector, buckets },
        } => format!("latency {threshold} {selector} {buckets:?}"),
        other => format!("{other:?}"),
    };
    format!(
        "{} {:?} {:?} {:?} {:?} {:?} {indicator} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
        slo.id,
        slo.description,
        slo.labels,
        slo.objective,
        slo.window,
        slo.method,
        slo.alerting.tiers,
        slo.alerting.min_events,
        slo.alerting.budget_exhausted,
        slo.alerting.no_data_alert,
        slo.alerting.alert_name,
        slo.no_data,
        slo.group
    )
}

#[test]
fn convert_writes_burnwatch_files_that_read_as_the_same_slos() {
    for example in [
        "getting-started.yml",
        "kubernetes-apiserver.yml",
        "k8s-getting-started.yml",
    ] {
        let (rules, diags) = read(example);
        for svc in &rules.services {
            let notes: Vec<String> = diags
                .iter()
                .filter(|d| d.contains("warning"))
                .cloned()
                .collect();
            let text = burnwatch::rules::convert::service_document(svc, &notes);
            let back = burnwatch::rules::load_str("converted.yaml", &text).unwrap_or_else(|d| {
                panic!("{example}: the converted file is refused: {d:#?}\n{text}")
            });
            let again = &back.services[0];
            assert_eq!(again.spec, burnwatch::rules::model::Spec::Burnwatch);
            assert_eq!(again.labels, svc.labels, "{example}");
            let a: Vec<String> = again.slos.iter().map(summary).collect();
            let b: Vec<String> = svc.slos.iter().map(summary).collect();
            assert_eq!(a, b, "{example}:\n{text}");
            // What the Sloth file said that burnwatch ignores is in the comments.
            for n in &notes {
                assert!(text.contains(&format!("# {n}")), "{example}: {n}");
            }
        }
    }
}

#[derive(Debug, serde::Deserialize)]
struct File {
    groups: Vec<Group>,
}

/// Sloth's output for a Kubernetes resource: a prometheus-operator `PrometheusRule`.
#[derive(Debug, serde::Deserialize)]
struct PrometheusRule {
    spec: File,
}

#[derive(Debug, serde::Deserialize)]
struct Group {
    name: String,
    rules: Vec<Rule>,
}

#[derive(Debug, serde::Deserialize)]
struct Rule {
    record: Option<String>,
    alert: Option<String>,
    expr: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// An expression without whitespace, each `{...}` with its comma-separated parts sorted (matcher
/// order does not change a selector), doubled parentheses as one (Sloth wraps a query the file
/// wrote in parentheses in its own).
fn normal(expr: &str) -> String {
    let mut flat: String = expr.chars().filter(|c| !c.is_whitespace()).collect();
    while flat.contains("((") || flat.contains("))") {
        flat = flat.replace("((", "(").replace("))", ")");
    }
    let mut out = String::new();
    let mut rest = flat.as_str();
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..=open]);
        let close = rest[open..].find('}').map_or(rest.len(), |c| open + c);
        let mut parts: Vec<&str> = rest[open + 1..close].split(',').collect();
        parts.sort_unstable();
        out.push_str(&parts.join(","));
        rest = &rest[close..];
    }
    out.push_str(rest);
    out
}

/// A rule as compared: its kind and name, expression, labels but the generator's own marks, and
/// annotations. burnwatch's alert rules also carry `sloth_id`, `sloth_service` and `sloth_slo`,
/// the values their series carry already (an alert name shared by SLOs needs them for promtool's
/// duplicate-rule lint), so the alerts they raise have the same labels.
type Comparable = (
    String,
    String,
    BTreeMap<String, String>,
    BTreeMap<String, String>,
);

fn comparable(g: &Group) -> Vec<Comparable> {
    g.rules
        .iter()
        .map(|r| {
            let name = match (&r.record, &r.alert) {
                (Some(rec), _) => format!("record {rec}"),
                (None, Some(alert)) => format!("alert {alert}"),
                (None, None) => panic!("a rule with neither record nor alert"),
            };
            let mut labels = r.labels.clone();
            for k in ["sloth_version", "sloth_mode", "sloth_spec"] {
                labels.remove(k);
            }
            if r.alert.is_some() {
                for k in ["sloth_id", "sloth_service", "sloth_slo"] {
                    labels.remove(k);
                }
            }
            (name, normal(&r.expr), labels, r.annotations.clone())
        })
        .collect()
}

#[test]
fn generate_writes_what_sloth_generate_wrote_for_its_examples() {
    for example in [
        "getting-started",
        "kubernetes-apiserver",
        "k8s-getting-started",
    ] {
        let (rules, _) = read(&format!("{example}.yml"));
        // Sloth's examples were generated with `--extra-labels cmd=examplesgen.sh`.
        let opts = Options {
            extra_labels: [("cmd".to_owned(), "examplesgen.sh".to_owned())].into(),
        };
        let services = generate(&rules, &opts);
        let ours: File = serde_saphyr::from_str(&rule_file(&services.iter().collect::<Vec<_>>()))
            .expect("our output is YAML");
        let text =
            std::fs::read_to_string(fixture(&format!("{example}.generated"))).expect("fixture");
        let theirs: File = if example.starts_with("k8s-") {
            serde_saphyr::from_str::<PrometheusRule>(&text)
                .expect("Sloth's output is YAML")
                .spec
        } else {
            serde_saphyr::from_str(&text).expect("Sloth's output is YAML")
        };
        let names = |f: &File| f.groups.iter().map(|g| g.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&ours), names(&theirs), "{example}: groups");
        for (a, b) in ours.groups.iter().zip(&theirs.groups) {
            assert_eq!(comparable(a), comparable(b), "{example}: group {}", a.name);
        }
    }
}
