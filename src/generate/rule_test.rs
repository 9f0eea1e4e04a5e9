//! `promtool test rules` unit tests for the rules [`super::prometheus`] writes: per SLO, a
//! synthetic outage that shows its burn-rate alerts firing as the tiers say, and not before.
//!
//! Each SLO gets one test group whose input is the error-ratio series its recording rules
//! produce (`slo:sli_error:ratio_rate<w>`, every window, with the SLO's labels and, for a grouped
//! SLO, one value of each grouping label). Feeding the ratios, not the raw counters, works for
//! every SLI shape (regex matchers, histograms, query SLIs) and holds exactly what the alert rules
//! decide: the thresholds (`factor x budget` as PromQL computes them), both windows of each tier,
//! `for`, the labels and the annotations an alert carries. The raw-counter side (that the
//! recordings compute the ratio from the counters) is what `tests/peers/generate.rs` holds.
//!
//! The outage is a run of phases of equal length (the longest `for` or `keep_firing_for` plus
//! 5 minutes): first no errors, then for each tier its two windows just below its threshold and
//! then just above it, every other window at 0. At the end of each phase the test expects the
//! alerts a brute-force reading of the rules predicts (an alert fires when any of its tiers has
//! both windows above `factor x budget`), so a tier whose factor, windows, `for` or labels were
//! written wrong fails its own phase.
//!
//! Pure: the model in, YAML text out.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::export::sloth::prom_duration;
use crate::generate::prometheus::{
    AlertSpec, Options, ServiceRules, alert_rules, escape, scalar, series_labels,
};
use crate::rules::model::{BurnTier, Grouping, Labels, Service, Slo};
use crate::time::Dur;

/// The value each grouping label takes in a grouped SLO's test: one instance stands for all.
const GROUP_VALUE: &str = "example";

/// The unit tests of one service whose rules are `rules`: its test groups (items of a test
/// file's `tests:`, one per SLO that has rules), and a line per SLO with rules but no test.
pub fn service_tests(svc: &Service, rules: &ServiceRules, opts: &Options) -> (String, Vec<String>) {
    let mut tests = String::new();
    let mut untested = Vec::new();
    for slo in &svc.slos {
        if slo.id.is_instance() || rules.skipped.iter().any(|s| s.slo == slo.id) {
            continue;
        }
        match slo_test(svc, slo, opts) {
            Ok(t) => tests.push_str(&t),
            Err(why) => untested.push(format!("{}: no test: {why}", slo.id)),
        }
    }
    (tests, untested)
}

/// The test group of one SLO (an item of a test file's `tests:` list), or why it has none.
pub fn slo_test(svc: &Service, slo: &Slo, opts: &Options) -> Result<String, String> {
    let mut series = series_labels(svc, slo, opts);
    if let Some(Grouping::Template { by, .. }) = &slo.group {
        for l in by {
            series.insert(l.clone(), GROUP_VALUE.to_owned());
        }
    }
    let alerts = alert_rules(svc, slo, &series);
    if alerts.is_empty() {
        return Err("its alerting is turned off, so there is no alert to test".into());
    }
    let budget = (100.0 - slo.objective.percent()) / 100.0;
    // As the rules compute it: `(factor * budget)`, the same float64 product.
    let threshold = |f: f64| f * budget;
    let tiers: Vec<&BurnTier> = alerts
        .iter()
        .flat_map(|a| a.tiers.iter().copied())
        .collect();
    let mut windows: Vec<Dur> = tiers.iter().flat_map(|t| [t.short, t.long]).collect();
    windows.sort();
    windows.dedup();

    // The phases: each the error ratio of every window, held for `phase` minutes.
    let mut phases: Vec<(String, BTreeMap<Dur, f64>)> =
        vec![("no errors".to_owned(), BTreeMap::new())];
    for t in &tiers {
        let thr = threshold(t.factor);
        if thr >= 1.0 {
            // A low objective with a fast tier (90% x 14.4): the tier can never fire, which the
            // test shows with every request failing.
            phases.push((
                format!(
                    "{} and {} at 1 (tier `{}`'s threshold {thr} is more than any outage reaches)",
                    t.short, t.long, t.name
                ),
                [(t.short, 1.0), (t.long, 1.0)].into(),
            ));
            continue;
        }
        // Half as much again above the threshold (or halfway to 1), and as much below: far
        // enough that the tier's own fate is clear, while the other tiers' follow from the
        // same comparison the rules make.
        let above = if thr * 1.5 < 1.0 {
            thr * 1.5
        } else {
            (thr + 1.0) / 2.0
        };
        for (what, v) in [("below", thr / 1.5), ("above", above)] {
            phases.push((
                format!(
                    "{} and {} at {v} ({what} tier `{}`'s threshold {thr})",
                    t.short, t.long, t.name
                ),
                [(t.short, v), (t.long, v)].into(),
            ));
        }
    }
    let ratio = |p: &BTreeMap<Dur, f64>, w: Dur| p.get(&w).copied().unwrap_or(0.0);
    // An alert fires when any of its tiers has both windows above its threshold.
    let fires = |a: &AlertSpec, p: &BTreeMap<Dur, f64>| {
        a.tiers.iter().any(|t| {
            let thr = threshold(t.factor);
            ratio(p, t.short) > thr && ratio(p, t.long) > thr
        })
    };
    // Long enough for the longest `for` to pass, and for `keep_firing_for` to end, within it.
    let longest = alerts
        .iter()
        .flat_map(|a| [a.for_, a.keep_firing_for])
        .max()
        .unwrap_or(Dur(0));
    let phase = longest.millis().div_ceil(Dur::MINUTE.millis()) + 5;

    let mut out = String::new();
    let _ = writeln!(
        out,
        "  # {}: {} phases of {phase}m, every window at error ratio 0 but:",
        slo.id,
        phases.len()
    );
    for (i, (what, _)) in phases.iter().enumerate() {
        let _ = writeln!(
            out,
            "  #   {}: {what}",
            prom_duration(Dur::from_mins(i as u64 * phase))
        );
    }
    let _ = writeln!(out, "  - interval: 1m\n    input_series:");
    for w in &windows {
        let name = prom_duration(*w);
        let mut l = series.clone();
        l.insert("sloth_window".into(), name.clone());
        let values = phases
            .iter()
            .map(|(_, p)| format!("{}x{}", ratio(p, *w), phase - 1))
            .collect::<Vec<_>>()
            .join(" ");
        let _ = writeln!(
            out,
            "      - series: {}\n        values: {}",
            scalar(&selector(&format!("slo:sli_error:ratio_rate{name}"), &l)),
            scalar(&values)
        );
    }
    let _ = writeln!(out, "    alert_rule_test:");
    let mut names: Vec<&str> = alerts.iter().map(|a| a.name.as_str()).collect();
    names.dedup();
    for (i, (_, p)) in phases.iter().enumerate() {
        // The end of the phase.
        let eval = Dur::from_mins((i as u64 + 1) * phase - 1);
        for name in &names {
            let firing: Vec<&AlertSpec> = alerts
                .iter()
                .filter(|a| a.name == *name && fires(a, p))
                .collect();
            let _ = writeln!(
                out,
                "      - eval_time: {}\n        alertname: {}",
                prom_duration(eval),
                scalar(name)
            );
            if firing.is_empty() {
                out.push_str("        exp_alerts: []\n");
                continue;
            }
            out.push_str("        exp_alerts:\n");
            for a in firing {
                // The alert's labels: its series' (without the window), then the rule's.
                let mut labels = series.clone();
                labels.extend(a.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
                let annotations = a
                    .annotations
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), expand(v, &labels)?)))
                    .collect::<Result<Labels, String>>()?;
                map(&mut out, "          - exp_labels", &labels);
                map(&mut out, "            exp_annotations", &annotations);
            }
        }
    }
    Ok(out)
}

/// A test file for the rule file `rules` (a path relative to the test file) holding `groups`
/// (items of `tests:`), after a comment per SLO without a test.
pub fn test_file(rules: &str, groups: &str, untested: &[String]) -> String {
    let mut out = format!(
        "# Generated by burnwatch {} (`burnwatch generate prometheus`): run `promtool test rules` on this file.\n# DO NOT EDIT: change the burnwatch rules and generate again.\n",
        env!("CARGO_PKG_VERSION")
    );
    for u in untested {
        let _ = writeln!(out, "# {u}");
    }
    let _ = writeln!(
        out,
        "rule_files:\n  - {}\nevaluation_interval: 1m\ntests:",
        scalar(rules)
    );
    out.push_str(groups);
    out
}

/// `name{k="v", ...}`.
fn selector(name: &str, labels: &Labels) -> String {
    let matchers: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    format!("{name}{{{}}}", matchers.join(", "))
}

/// An annotation as Prometheus renders it for an alert with `labels`: `{{$labels.NAME}}` (with or
/// without spaces inside the braces) becomes the label's value, `<no value>` for a label the
/// alert lacks, as Go templates print it. Other template actions (`$value`, functions) depend
/// on the evaluation, so a test cannot expect them: an error.
fn expand(text: &str, labels: &Labels) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find("}}") else {
            return Err(format!("annotation text `{text}` has an unclosed template"));
        };
        let action = rest[open + 2..open + close].trim();
        let Some(name) = action.strip_prefix("$labels.") else {
            return Err(format!(
                "an annotation uses the template `{{{{{action}}}}}`, whose text depends on the evaluation"
            ));
        };
        out.push_str(labels.get(name).map_or("<no value>", String::as_str));
        rest = &rest[open + close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `head:` and the map's entries indented under it.
fn map(out: &mut String, head: &str, m: &BTreeMap<String, String>) {
    if m.is_empty() {
        let _ = writeln!(out, "{head}: {{}}");
        return;
    }
    let _ = writeln!(out, "{head}:");
    let indent = " ".repeat(head.len() - head.trim_start().len() + 2);
    let indent = if head.trim_start().starts_with("- ") {
        format!("{indent}  ")
    } else {
        indent
    };
    for (k, v) in m {
        let _ = writeln!(out, "{indent}{}: {}", scalar(k), scalar(v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_expand_label_templates_only() {
        let labels: Labels = [("sloth_slo".to_owned(), "avail".to_owned())].into();
        assert_eq!(
            expand(
                "({{$labels.sloth_slo}}) {{ $labels.sloth_slo }} {{$labels.x}}",
                &labels
            ),
            Ok("(avail) avail <no value>".to_owned())
        );
        assert!(expand("{{ $value }}", &labels).is_err());
        assert!(expand("{{ $labels.x", &labels).is_err());
    }

    #[test]
    fn each_tier_gets_a_phase_below_and_above_its_threshold() {
        let rules = crate::rules::load_str(
            "t.yaml",
            "version: burnwatch/v1\nservice: api\nslos:\n  - name: avail\n    objective: 99.9\n    indicator:\n      ratio:\n        bad: 'x{code=\"500\"}'\n        total: 'x'\n",
        )
        .expect("rules");
        let svc = &rules.services[0];
        let t = slo_test(svc, &svc.slos[0], &Options::default()).expect("a test");
        // 5m, 30m, 1h, 2h, 6h, 1d, 3d: one input series each.
        assert_eq!(t.matches("- series:").count(), 7, "{t}");
        // No errors, then below and above each of the four tiers: 9 phases of 5m.
        assert!(t.contains("api/avail: 9 phases of 5m"), "{t}");
        assert!(
            t.contains("eval_time: 4m\n        alertname: SloBurnRate\n        exp_alerts: []"),
            "{t}"
        );
        // page_fast (5m and 1h) at 1.5 x 14.4 x budget: the page alert alone (the ticket
        // tiers need their 2h, 1d, 6h or 3d windows too).
        let phase = |n: u64| {
            t.split(&format!("eval_time: {}m\n", n * 5 - 1))
                .nth(1)
                .map(|r| r.split("eval_time:").next().unwrap_or(r).to_owned())
                .expect("the phase")
        };
        assert!(phase(2).contains("exp_alerts: []"), "below page_fast: {t}");
        assert!(phase(3).contains("sloth_severity: page"), "{t}");
        assert!(!phase(3).contains("sloth_severity: ticket"), "{t}");
        assert!(
            phase(3)
                .contains("title: \"(page) api avail SLO error budget burn rate is too fast.\""),
            "{t}"
        );
        // ticket_slow (6h and 3d) above its threshold: the ticket alert alone.
        assert!(phase(9).contains("sloth_severity: ticket"), "{t}");
        assert!(!phase(9).contains("sloth_severity: page"), "{t}");
    }
}
