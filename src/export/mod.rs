//! Exports of the agent's numbers to the tools users already run: the Prometheus `/metrics`
//! page ([`prometheus`]) and OTLP push ([`otlp`]). Every exporter reads published snapshots only;
//! which families exist, and how each reads a snapshot, is the [`catalogue`]'s; the naming rules
//! (labels, window names, state values) live here.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::alert::lifecycle::Phase;
use crate::rules::model::{Service, Slo, Window};
use crate::slo::sketch::LatencyQuantiles;

pub mod catalogue;
pub mod otlp;
pub mod prometheus;
pub mod sloth;
pub mod text;

/// Label names burnwatch sets itself; a rules label with one of these names is not exported
/// rather than duplicated (defined with the rules, which refuse them as `group_by` labels).
pub use crate::rules::model::RESERVED_LABELS as RESERVED;

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

/// A tier alert's phase, as its lifecycle decided it, as a number: 0 not firing (inactive or
/// resolved), 1 pending, 2 firing (also while held by `keep_firing_for` or flap damping, as
/// `/api/v1/alerts` lists it).
pub fn alert_state_value(p: Phase) -> f64 {
    match p {
        Phase::Inactive | Phase::Resolved { .. } => 0.0,
        Phase::Pending { .. } => 1.0,
        Phase::Firing { .. } | Phase::Flapping { .. } => 2.0,
    }
}

/// The exported percentiles as (`percentile` label, value). The label is not `quantile`:
/// Prometheus reserves that for summaries (`promtool check metrics` flags it on a gauge).
pub fn percentile_points(q: &LatencyQuantiles) -> [(&'static str, f64); 4] {
    [("50", q.p50), ("90", q.p90), ("95", q.p95), ("99", q.p99)]
}
