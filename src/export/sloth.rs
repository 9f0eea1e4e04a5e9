//! Sloth-compatible series on the `/metrics` page (config `export.prometheus.sloth_compatible`),
//! so teams moving from Sloth keep their Grafana dashboards (14348, 14643) and their PromQL.
//!
//! Sloth (v0.16) compiles each SLO into recording rules; these are the series those rules would
//! produce, with Sloth's names and label sets, but with burnwatch's numbers:
//! - `slo:sli_error:ratio_rate<w>` for the multiwindow set `5m, 30m, 1h, 2h, 6h, 1d, 3d` (those
//!   not longer than the SLO's period) and for the period, labels `sloth_id` (`<service>-<slo>`),
//!   `sloth_service`, `sloth_slo`, `sloth_window` and the rules' labels;
//! - without `sloth_window`: `slo:objective:ratio`, `slo:error_budget:ratio`,
//!   `slo:time_period:days`, `slo:current_burn_rate:ratio` (5m), `slo:period_burn_rate:ratio`,
//!   `slo:period_error_budget_remaining:ratio`, and `sloth_slo_info`.
//!
//! Window names use Prometheus' duration format as Sloth's rule names do (`1d`, `1w`, `4w`).
//! Every ratio is the engine's exact event count ratio over the window (at bucket resolution):
//! Sloth's own period rule averages the 5m ratios instead, which is not weighted by traffic.
//! A calendar SLO's period series cover the rolling nominal length (30d for a month), as Sloth
//! has no calendar periods. The windows that are neither the SLO window nor an alert window are
//! computed by the engine from the count rings when the agent asks for [`windows`] (see
//! `Evaluator::report_extra_windows`); a window the snapshot lacks is left out, never estimated.

use std::fmt::Write as _;

use crate::export::merged_labels;
use crate::export::text::{Kind, PageWriter, Value, render_label};
use crate::rules::model::{Service, Slo, Window};
use crate::slo::engine::{SloReport, WindowReport};
use crate::time::Dur;
use crate::view::AgentSnapshot;

/// The multiwindow multi-burn-rate windows Sloth records for a 30d or 28d period (its default
/// alert windows: page 5m/1h and 30m/6h, ticket 2h/1d and 6h/3d).
pub const STANDARD_WINDOWS: [Dur; 7] = [
    Dur::from_mins(5),
    Dur::from_mins(30),
    Dur::from_hours(1),
    Dur::from_hours(2),
    Dur::from_hours(6),
    Dur::from_days(1),
    Dur::from_days(3),
];

/// `sloth_mode` of `sloth_slo_info`: Sloth names how the rules were generated
/// (`cli-gen-prom`, ...); here an agent computes the series.
pub const MODE: &str = "burnwatch-agent";
/// `sloth_spec` of `sloth_slo_info`: the rules format the SLO was read from.
pub const SPEC: &str = "burnwatch/v1";

/// The period of an SLO as Sloth sees it: the rolling length, or a calendar window's nominal
/// length.
pub fn period(slo: &Slo) -> Dur {
    slo.window.nominal()
}

/// The windows Sloth records for `slo`: the standard ones not longer than the period, then the
/// period.
pub fn windows(slo: &Slo) -> Vec<Dur> {
    let p = period(slo);
    let mut w: Vec<Dur> = STANDARD_WINDOWS.into_iter().filter(|w| *w < p).collect();
    w.push(p);
    w
}

/// A duration in Prometheus' `model.Duration` format, as Sloth names windows: years and weeks
/// only when exact, then days, hours, minutes, seconds, milliseconds (`30d`, `4w`, `1h30m`).
pub fn prom_duration(d: Dur) -> String {
    let mut ms = d.millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, mult, exact) in [
        ("y", 365 * 86_400_000u64, true),
        ("w", 7 * 86_400_000, true),
        ("d", 86_400_000, false),
        ("h", 3_600_000, false),
        ("m", 60_000, false),
        ("s", 1_000, false),
        ("ms", 1, false),
    ] {
        if exact && !ms.is_multiple_of(mult) {
            continue;
        }
        let v = ms / mult;
        if v > 0 {
            let _ = write!(out, "{v}{unit}");
            ms -= v * mult;
        }
    }
    out
}

/// The error ratio of a window: bad over all events, exact from the counts; a window without
/// events reads as the engine's no-data SLI does (0, or 1 under `no_data: bad`).
pub fn error_ratio(w: &WindowReport) -> f64 {
    if w.total > 0 {
        (w.total - w.good) as f64 / w.total as f64
    } else {
        1.0 - w.sli
    }
}

/// The report of the window of length `len`: the SLO window, an alert window or an extra one.
fn find<'r>(r: &'r SloReport, slo: &Slo, len: Dur) -> Option<&'r WindowReport> {
    if slo.window == Window::Rolling(len) {
        return Some(&r.window);
    }
    r.alert_windows
        .iter()
        .chain(&r.extra_windows)
        .find(|w| w.length == len)
}

/// Sloth's identifying labels plus the rules' labels (the service's overlaid by the SLO's),
/// rendered once; rules labels named `sloth_*` are left out rather than duplicated.
fn id_labels(svc: &Service, slo: &Slo) -> String {
    let mut out = String::new();
    let id = format!("{}-{}", slo.id.service, slo.id.name());
    render_label(&mut out, "sloth_id", &id);
    render_label(&mut out, "sloth_service", &slo.id.service);
    render_label(&mut out, "sloth_slo", slo.id.name());
    for (k, v) in merged_labels(svc, slo) {
        if !k.starts_with("sloth_") {
            render_label(&mut out, k, v);
        }
    }
    out
}

/// One SLO's numbers for the Sloth families.
struct Row<'a> {
    labels: String,
    objective: f64,
    budget: f64,
    period: Dur,
    /// `(sloth_window, window)` in Sloth's order, shortest first, the period last.
    windows: Vec<(String, &'a WindowReport)>,
    current: Option<&'a WindowReport>,
    whole: Option<&'a WindowReport>,
    objective_percent: f64,
}

fn gauges<'r>(
    w: &mut PageWriter<'_>,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (&'r str, Option<(&'static str, &'r str)>, f64)>,
) {
    w.family(name, help, Kind::Gauge);
    for (base, extra, v) in rows {
        if v.is_finite() {
            w.sample(base, extra.as_slice(), Value::Gauge(v));
        }
    }
}

/// Writes the Sloth families of `snap` (Sloth's names, no prefix) to the page.
pub fn write(enc: &mut PageWriter<'_>, snap: &AgentSnapshot) {
    {
        let rows: Vec<Row<'_>> = snap
            .slo_rows()
            .into_iter()
            .map(|(r, svc, slo)| {
                let period = period(slo);
                Row {
                    labels: id_labels(svc, slo),
                    objective: slo.objective.ratio(),
                    budget: slo.objective.budget(),
                    period,
                    windows: windows(slo)
                        .into_iter()
                        .filter_map(|w| find(r, slo, w).map(|rep| (prom_duration(w), rep)))
                        .collect(),
                    current: find(r, slo, STANDARD_WINDOWS[0]),
                    whole: find(r, slo, period),
                    objective_percent: slo.objective.percent(),
                }
            })
            .collect();
        // One family per window, in Sloth's order; an SLO with a shorter period has fewer.
        let mut names: Vec<(Dur, String)> = Vec::new();
        for row in &rows {
            for (name, w) in &row.windows {
                if !names.iter().any(|(d, _)| *d == w.length) {
                    names.push((w.length, name.clone()));
                }
            }
        }
        names.sort();
        for (len, name) in &names {
            gauges(
                enc,
                &format!("slo:sli_error:ratio_rate{name}"),
                &format!("Error ratio (bad over all events) over the last {name}, exact counts"),
                rows.iter().flat_map(|row| {
                    row.windows
                        .iter()
                        .filter(|(_, w)| w.length == *len)
                        .map(|(n, w)| {
                            (
                                row.labels.as_str(),
                                Some(("sloth_window", n.as_str())),
                                error_ratio(w),
                            )
                        })
                }),
            );
        }
        let plain = |f: fn(&Row<'_>) -> Option<f64>| {
            rows.iter()
                .filter_map(move |row| f(row).map(|v| (row.labels.as_str(), None, v)))
        };
        gauges(
            enc,
            "slo:objective:ratio",
            "The SLO's objective as a ratio (99.9% is 0.999)",
            plain(|r| Some(r.objective)),
        );
        gauges(
            enc,
            "slo:error_budget:ratio",
            "The error budget as a ratio: 1 - objective",
            plain(|r| Some(r.budget)),
        );
        gauges(
            enc,
            "slo:time_period:days",
            "The SLO period in days (a calendar window's nominal length)",
            plain(|r| Some(r.period.millis() as f64 / Dur::DAY.millis() as f64)),
        );
        gauges(
            enc,
            "slo:current_burn_rate:ratio",
            "Error ratio over 5m divided by the error budget",
            plain(|r| r.current.map(|w| w.burn_rate)),
        );
        gauges(
            enc,
            "slo:period_burn_rate:ratio",
            "Error ratio over the period divided by the error budget",
            plain(|r| r.whole.map(|w| w.burn_rate)),
        );
        gauges(
            enc,
            "slo:period_error_budget_remaining:ratio",
            "Share of the period's error budget left: 1 - period burn rate (negative when overspent)",
            plain(|r| r.whole.map(|w| 1.0 - w.burn_rate)),
        );
        enc.family(
            "sloth_slo_info",
            "Always 1; the SLO's identity and objective as labels",
            Kind::Gauge,
        );
        for row in &rows {
            let objective = format!("{}", row.objective_percent);
            enc.sample(
                &row.labels,
                &[
                    ("sloth_mode", MODE),
                    ("sloth_objective", objective.as_str()),
                    ("sloth_spec", SPEC),
                    ("sloth_version", env!("CARGO_PKG_VERSION")),
                ],
                Value::Gauge(1.0),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluator::{Evaluator, Observation};
    use std::sync::Arc;

    use crate::export::prometheus::{PageOptions, encode, encode_with};
    use crate::exposition::{Format, OwnedSample, parse_owned};
    use crate::probe::{Phases, ProbeOutcome};
    use crate::rules::load_str;
    use crate::time::Timestamp;

    /// One alert tier only (1h/5m), so 30m, 2h, 6h, 1d and 3d must come from the engine's
    /// extra windows.
    const RULES: &str = r#"
version: burnwatch/v1
service: shop
labels: {team: payments}
probes:
  - name: home
    http: {url: "http://127.0.0.1:1/"}
    interval: 10s
slos:
  - name: up
    objective: 99.5
    labels: {tier: "1", sloth_id: clash}
    indicator: {probe: home}
    alerting:
      tiers:
        page_slow: {disabled: true}
        ticket_fast: {disabled: true}
        ticket_slow: {disabled: true}
"#;

    const NOW: i64 = 1_780_000_000_000 + 3 * 86_400_000;

    /// (age in minutes, events, bad), oldest first: each group in exactly one of Sloth's
    /// windows' differences (5m ⊂ 30m ⊂ ... ⊂ 3d), well inside bucket edges.
    const TRAFFIC: [(i64, u64, u64); 7] = [
        (2 * 1440, 4, 2),
        (600, 10, 1),
        (180, 5, 0),
        (90, 2, 2),
        (45, 3, 1),
        (20, 6, 0),
        (2, 4, 1),
    ];

    fn snapshot(extra: bool) -> Arc<AgentSnapshot> {
        let set = load_str("r.yaml", RULES).expect("rules");
        let mut ev = Evaluator::new(set, Timestamp(NOW - 3 * 86_400_000));
        if extra {
            ev.report_extra_windows(windows);
        }
        for (age, n, bad) in TRAFFIC {
            for i in 0..n {
                ev.apply(Observation::Probe {
                    generation: ev.generation(),
                    name: "home".into(),
                    outcome: ProbeOutcome {
                        started_ms: NOW - age * 60_000 + i as i64 * 1_000,
                        success: i >= bad,
                        duration_secs: 0.1,
                        phases: Phases::default(),
                        status: Some(200),
                        cert_not_after_ms: None,
                        failure: None,
                    },
                });
            }
        }
        Arc::new(ev.evaluate(Timestamp(NOW)))
    }

    fn sloth_page(snap: &Arc<AgentSnapshot>) -> Vec<OwnedSample> {
        let page = encode_with(
            snap,
            PageOptions {
                sloth_compatible: true,
                ..PageOptions::default()
            },
        )
        .expect("encodes");
        parse_owned(page.as_bytes(), Format::OpenMetrics).expect("valid OpenMetrics")
    }

    fn get<'s>(samples: &'s [OwnedSample], name: &str) -> Vec<&'s OwnedSample> {
        samples.iter().filter(|s| s.name == name).collect()
    }

    fn label<'s>(s: &'s OwnedSample, k: &str) -> Option<&'s str> {
        s.labels
            .iter()
            .find(|(a, _)| a == k)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn window_names_follow_prometheus_durations() {
        let d = |s: &str| Dur::parse(s).expect("duration");
        let names: Vec<String> = [
            "5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d", "28d", "7d",
        ]
        .map(|s| prom_duration(d(s)))
        .into();
        assert_eq!(
            names,
            ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d", "4w", "1w"]
        );
        assert_eq!(prom_duration(d("90m")), "1h30m");
        assert_eq!(prom_duration(d("365d")), "1y");
        assert_eq!(prom_duration(d("90d")), "90d");
        assert_eq!(prom_duration(Dur(0)), "0s");
    }

    #[test]
    fn every_window_is_the_exact_error_ratio_with_sloths_labels() {
        let samples = sloth_page(&snapshot(true));
        // Cumulative (events, bad) per window, from TRAFFIC by hand.
        let want: [(&str, u64, u64); 8] = [
            ("5m", 4, 1),
            ("30m", 10, 1),
            ("1h", 13, 2),
            ("2h", 15, 4),
            ("6h", 20, 4),
            ("1d", 30, 5),
            ("3d", 34, 7),
            ("30d", 34, 7),
        ];
        for (w, total, bad) in want {
            let rows = get(&samples, &format!("slo:sli_error:ratio_rate{w}"));
            assert_eq!(rows.len(), 1, "{w}: {rows:?}");
            let s = rows[0];
            assert_eq!(s.value, bad as f64 / total as f64, "{w}");
            assert_eq!(label(s, "sloth_window"), Some(w));
            assert_eq!(label(s, "sloth_id"), Some("shop-up"));
            assert_eq!(label(s, "sloth_service"), Some("shop"));
            assert_eq!(label(s, "sloth_slo"), Some("up"));
            // The rules' labels, including one burnwatch reserves for itself but Sloth does
            // not; a `sloth_*` rules label does not shadow the identity.
            assert_eq!(label(s, "team"), Some("payments"));
            assert_eq!(label(s, "tier"), Some("1"));
            assert_eq!(s.labels.iter().filter(|(k, _)| k == "sloth_id").count(), 1);
            assert!(label(s, "service").is_none() && label(s, "slo").is_none());
        }
        let one = |name: &str| {
            let rows = get(&samples, name);
            assert_eq!(rows.len(), 1, "{name}: {rows:?}");
            assert!(label(rows[0], "sloth_window").is_none(), "{name}");
            assert_eq!(label(rows[0], "sloth_id"), Some("shop-up"));
            rows[0].value
        };
        let budget = 0.005;
        assert_eq!(one("slo:objective:ratio"), 0.995);
        assert_eq!(one("slo:error_budget:ratio"), budget);
        assert_eq!(one("slo:time_period:days"), 30.0);
        assert_eq!(one("slo:current_burn_rate:ratio"), 0.25 / budget);
        assert_eq!(one("slo:period_burn_rate:ratio"), (7.0 / 34.0) / budget);
        assert_eq!(
            one("slo:period_error_budget_remaining:ratio"),
            1.0 - (7.0 / 34.0) / budget
        );
        let info = get(&samples, "sloth_slo_info");
        assert_eq!(info.len(), 1);
        assert_eq!(info[0].value, 1.0);
        for (k, v) in [
            ("sloth_id", "shop-up"),
            ("sloth_service", "shop"),
            ("sloth_slo", "up"),
            ("sloth_mode", MODE),
            ("sloth_objective", "99.5"),
            ("sloth_spec", SPEC),
            ("sloth_version", env!("CARGO_PKG_VERSION")),
            ("team", "payments"),
        ] {
            assert_eq!(label(info[0], k), Some(v), "{k}");
        }
        assert!(samples.iter().all(|s| s.value.is_finite()));
        // burnwatch's own families are still there, unchanged.
        assert_eq!(
            get(&samples, "burnwatch_slo_objective_ratio")[0].value,
            0.995
        );
    }

    #[test]
    fn windows_the_engine_did_not_compute_are_left_out_and_the_switch_gates_everything() {
        let snap = snapshot(false);
        let samples = sloth_page(&snap);
        let present: Vec<&str> = samples
            .iter()
            .filter_map(|s| s.name.strip_prefix("slo:sli_error:ratio_rate"))
            .collect();
        // Only the SLO window and the one tier's alert windows exist without the extra windows.
        assert_eq!(present, ["5m", "1h", "30d"]);
        let off = encode(&snap).expect("encodes");
        let names: Vec<String> = parse_owned(off.as_bytes(), Format::OpenMetrics)
            .expect("valid OpenMetrics")
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert!(
            names.iter().all(|n| n.starts_with("burnwatch_")),
            "{names:?}"
        );
        assert!(
            !off.contains("slo:") && !off.contains("sloth_slo_info"),
            "{off}"
        );
    }

    #[test]
    fn sloth_windows_fit_the_period() {
        let mut slo = load_str("r.yaml", RULES)
            .expect("rules")
            .slos()
            .next()
            .expect("one SLO")
            .clone();
        assert_eq!(windows(&slo).len(), 8);
        slo.window = Window::Rolling(Dur(12 * 3_600_000));
        let w: Vec<String> = windows(&slo).into_iter().map(prom_duration).collect();
        assert_eq!(w, ["5m", "30m", "1h", "2h", "6h", "12h"]);
    }
}
