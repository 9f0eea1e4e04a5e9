//! A rules model written back as `burnwatch/v1` text (`burnwatch convert`): what a Sloth file
//! means, in burnwatch's own format, so a team can move its files over once and edit them there.
//!
//! The text reads back (`burnwatch check`) as the same model: every SLO field is written, a
//! default tier only where it differs from the window's default (`disabled: true` where it was
//! dropped), the alerts' other settings only where they differ from their defaults. What the
//! source file said that burnwatch does not do (its diagnostics: "ignored: ...") comes first, as
//! comments. Pure: model in, text out.

use std::fmt::Write as _;

use crate::rules::model::{
    AlertRule, BudgetingMethod, BurnTier, FlapPolicy, Grouping, Indicator, Labels, LatencySource,
    NoDataPolicy, RatioNumerator, Service, Slo, Window, default_tiers,
};

/// The `burnwatch/v1` document of `svc`, after a comment per line of `notes` (the source file's
/// warnings, say).
pub fn service_document(svc: &Service, notes: &[String]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Converted by burnwatch {} (`burnwatch convert`) from {}.",
        env!("CARGO_PKG_VERSION"),
        svc.file.display()
    );
    for n in notes {
        let _ = writeln!(out, "# {n}");
    }
    out.push_str("---\nversion: burnwatch/v1\n");
    let _ = writeln!(out, "service: {}", text(&svc.name));
    if let Some(o) = &svc.owner {
        let _ = writeln!(out, "owner: {}", text(o));
    }
    if let Some(r) = &svc.runbook {
        let _ = writeln!(out, "runbook: {}", text(r));
    }
    if let Some(d) = &svc.dashboard {
        let _ = writeln!(out, "dashboard: {}", text(d));
    }
    labels(&mut out, "", "labels", &svc.labels);
    out.push_str("slos:\n");
    for slo in &svc.slos {
        write_slo(&mut out, svc, slo);
    }
    out
}

fn write_slo(out: &mut String, svc: &Service, slo: &Slo) {
    let _ = writeln!(out, "  - name: {}", text(&slo.id.slo));
    if let Some(d) = &slo.description {
        let _ = writeln!(out, "    description: {}", text(d));
    }
    let _ = writeln!(out, "    objective: {}", slo.objective.percent());
    match &slo.window {
        Window::Rolling(d) => {
            let _ = writeln!(out, "    window: {d}");
        }
        Window::Calendar { unit, tz_name, .. } => {
            let _ = writeln!(out, "    window: {}", unit.as_str());
            let _ = writeln!(out, "    time_zone: {}", text(tz_name));
        }
    }
    if let BudgetingMethod::Timeslices { slice, target } = &slo.method {
        out.push_str("    method: timeslices\n");
        let _ = writeln!(out, "    timeslice: {slice}");
        // A percentile judges its slices itself: it has no slice target.
        if !matches!(slo.indicator, Indicator::LatencyPercentile { .. }) {
            let _ = writeln!(out, "    timeslice_target: {}%", target * 100.0);
        }
    }
    match slo.no_data {
        NoDataPolicy::Ignore => {}
        NoDataPolicy::Good => out.push_str("    no_data: good\n"),
        NoDataPolicy::Bad => out.push_str("    no_data: bad\n"),
    }
    // The SLO's own labels: those the service does not give it.
    let own: Labels = slo
        .labels
        .iter()
        .filter(|(k, v)| svc.labels.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels(out, "    ", "labels", &own);
    if let Some(Grouping::Template { by, max_instances }) = &slo.group {
        let _ = writeln!(out, "    group_by: [{}]", by.join(", "));
        let _ = writeln!(out, "    max_instances: {max_instances}");
    }
    out.push_str("    indicator:\n");
    indicator(out, &slo.indicator);
    alerting(out, slo);
}

fn indicator(out: &mut String, i: &Indicator) {
    match i {
        Indicator::Ratio {
            numerator,
            numerator_selector,
            total,
        } => {
            let key = match numerator {
                RatioNumerator::Good => "good",
                RatioNumerator::Bad => "bad",
            };
            out.push_str("      ratio:\n");
            let _ = writeln!(
                out,
                "        {key}: {}",
                quoted(&numerator_selector.to_string())
            );
            let _ = writeln!(out, "        total: {}", quoted(&total.to_string()));
        }
        Indicator::Query {
            source,
            numerator,
            numerator_query,
            total_query,
        } => {
            let key = match numerator {
                RatioNumerator::Good => "good",
                RatioNumerator::Bad => "bad",
            };
            out.push_str("      query:\n");
            if let Some(source) = source {
                let _ = writeln!(out, "        source: {}", text(source));
            }
            let _ = writeln!(out, "        {key}: {}", quoted(numerator_query));
            let _ = writeln!(out, "        total: {}", quoted(total_query));
        }
        Indicator::ProbeAvailability { probe } => {
            let _ = writeln!(out, "      probe: {}", text(probe));
        }
        Indicator::LatencyThreshold { threshold, source } => {
            out.push_str("      latency_threshold:\n");
            let _ = writeln!(out, "        threshold: {threshold}");
            latency_source(out, source);
        }
        Indicator::LatencyPercentile {
            percentile,
            threshold,
            source,
        } => {
            out.push_str("      latency_percentile:\n");
            let _ = writeln!(out, "        percentile: {}", percentile.quantile() * 100.0);
            let _ = writeln!(out, "        threshold: {threshold}");
            latency_source(out, source);
        }
    }
}

fn latency_source(out: &mut String, source: &LatencySource) {
    match source {
        LatencySource::Probe { probe } => {
            let _ = writeln!(out, "        probe: {}", text(probe));
        }
        LatencySource::Histogram { selector, buckets } => {
            let _ = writeln!(out, "        histogram: {}", quoted(&selector.to_string()));
            if let Some(b) = buckets {
                let b: Vec<String> = b.iter().map(f64::to_string).collect();
                let _ = writeln!(out, "        buckets: [{}]", b.join(", "));
            }
        }
    }
}

fn alerting(out: &mut String, slo: &Slo) {
    let a = &slo.alerting;
    let mut body = String::new();
    if a.min_events > 0 {
        let _ = writeln!(body, "      min_events: {}", a.min_events);
    }
    if let Some(name) = &a.alert_name {
        let _ = writeln!(body, "      alert_name: {}", text(name));
    }
    rule(
        &mut body,
        "budget_exhausted",
        a.budget_exhausted.as_ref(),
        &AlertRule::budget_exhausted_default(),
    );
    rule(
        &mut body,
        "no_data",
        a.no_data_alert.as_ref(),
        &AlertRule::no_data_default(),
    );
    match &a.flap {
        None => body.push_str("      flap: false\n"),
        Some(f) if *f == FlapPolicy::default() => {}
        Some(f) => {
            let _ = writeln!(
                body,
                "      flap: {{window: {}, max_changes: {}, hold: {}}}",
                f.window, f.max_changes, f.hold
            );
        }
    }
    let defaults = default_tiers(&slo.window);
    let mut tiers = String::new();
    for d in &defaults {
        match a.tiers.iter().find(|t| t.name == d.name) {
            None => {
                let _ = writeln!(tiers, "        {}: {{disabled: true}}", d.name);
            }
            Some(t) => tier_diff(&mut tiers, t, Some(d)),
        }
    }
    for t in a
        .tiers
        .iter()
        .filter(|t| !defaults.iter().any(|d| d.name == t.name))
    {
        tier_diff(&mut tiers, t, None);
    }
    if !tiers.is_empty() {
        body.push_str("      tiers:\n");
        body.push_str(&tiers);
    }
    if !body.is_empty() {
        out.push_str("    alerting:\n");
        out.push_str(&body);
    }
}

fn rule(out: &mut String, key: &str, rule: Option<&AlertRule>, default: &AlertRule) {
    match rule {
        None => {
            let _ = writeln!(out, "      {key}: false");
        }
        Some(r) if r == default => {}
        Some(r) => {
            let _ = writeln!(
                out,
                "      {key}: {{severity: {}, for: {}, keep_firing_for: {}}}",
                text(&r.severity),
                r.for_,
                r.keep_firing_for
            );
        }
    }
}

/// A tier's fields that differ from `default` (all of them for a custom tier).
fn tier_diff(out: &mut String, t: &BurnTier, default: Option<&BurnTier>) {
    let mut fields: Vec<String> = Vec::new();
    let differs = |f: &dyn Fn(&BurnTier) -> bool| default.is_none_or(|d| !f(d));
    if differs(&|d| d.long == t.long) {
        fields.push(format!("long: {}", t.long));
    }
    if differs(&|d| d.short == t.short) {
        fields.push(format!("short: {}", t.short));
    }
    if differs(&|d| d.factor == t.factor) {
        fields.push(format!("burn_rate: {}", t.factor));
    }
    if differs(&|d| d.severity == t.severity) {
        fields.push(format!("severity: {}", text(&t.severity)));
    }
    if t.for_.millis() > 0 {
        fields.push(format!("for: {}", t.for_));
    }
    if t.keep_firing_for.millis() > 0 {
        fields.push(format!("keep_firing_for: {}", t.keep_firing_for));
    }
    for (key, map) in [("labels", &t.labels), ("annotations", &t.annotations)] {
        if !map.is_empty() {
            let l: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}: {}", text(v)))
                .collect();
            fields.push(format!("{key}: {{{}}}", l.join(", ")));
        }
    }
    if !fields.is_empty() {
        let _ = writeln!(out, "        {}: {{{}}}", t.name, fields.join(", "));
    }
}

fn labels(out: &mut String, indent: &str, key: &str, l: &Labels) {
    if l.is_empty() {
        return;
    }
    let _ = writeln!(out, "{indent}{key}:");
    for (k, v) in l {
        let _ = writeln!(out, "{indent}  {k}: {}", text(v));
    }
}

/// A YAML scalar that reads back as `s`: double-quoted, JSON escapes (which YAML reads).
fn text(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
}

/// A selector in single quotes, as the docs write them (`'x{code="500"}'`).
fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
