//! Exports of the agent's numbers to the tools users already run: the Prometheus `/metrics`
//! page ([`prometheus`]) and OTLP push ([`otlp`]). Every exporter reads published snapshots only;
//! the naming rules both share (labels, window names, state values) live here so the two carry
//! the same series.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::rules::model::{Service, Slo, Window};
use crate::slo::engine::AlertState;
use crate::slo::sketch::LatencyQuantiles;

pub mod otlp;
pub mod prometheus;
pub mod sloth;

/// Label names burnwatch sets itself; a rules label with one of these names is not exported
/// rather than duplicated.
pub const RESERVED: [&str; 8] = [
    "service", "slo", "window", "tier", "severity", "quantile", "result", "phase",
];

/// The rules' labels of an SLO: the service's, overridden by the SLO's, without reserved names,
/// sorted by name.
pub fn rule_labels<'a>(svc: &'a Service, slo: &'a Slo) -> Vec<(&'a str, &'a str)> {
    merged_labels(svc, slo)
        .into_iter()
        .filter(|(k, _)| !RESERVED.contains(k))
        .collect()
}

/// The service's labels overridden by the SLO's, by name, reserved names included.
pub fn merged_labels<'a>(svc: &'a Service, slo: &'a Slo) -> BTreeMap<&'a str, &'a str> {
    let mut m: BTreeMap<&str, &str> = svc
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    m.extend(slo.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    m
}

/// The `window` label of an SLO window: `30d`, `month`, ...
pub fn window_name(w: &Window) -> Cow<'static, str> {
    match w {
        Window::Rolling(d) => Cow::Owned(d.to_string()),
        Window::Calendar { unit, .. } => Cow::Borrowed(unit.as_str()),
    }
}

/// An alert tier's state as a number: 0 quiet, 1 pending, 2 firing.
pub fn alert_state_value(s: AlertState) -> f64 {
    match s {
        AlertState::Quiet => 0.0,
        AlertState::Pending { .. } => 1.0,
        AlertState::Firing { .. } => 2.0,
    }
}

/// The exported percentiles as (`quantile` label, value).
pub fn quantile_points(q: &LatencyQuantiles) -> [(&'static str, f64); 4] {
    [
        ("0.5", q.p50),
        ("0.9", q.p90),
        ("0.95", q.p95),
        ("0.99", q.p99),
    ]
}
