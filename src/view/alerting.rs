//! What the alerting task publishes: the [`AlertingView`] (alerts with their status, the
//! phase of every burn-rate tier alert, silences, groups, delivery statistics, counters) at one
//! instant, immutable and shared whole by the API, the exporters and the CLI.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::alert::Fingerprint;
use crate::alert::lifecycle::Phase;
use crate::notify::delivery::IntegrationStats;
use crate::notify::dispatch::{AlertView, GroupView};
use crate::notify::silence::Silence;
use crate::rules::model::SloId;
use crate::time::Timestamp;

/// Counters since start, by reason, for metrics and the API.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertingCounters {
    /// Notifications delivered, by (receiver, integration kind, reason key).
    pub notifications: BTreeMap<(String, &'static str, &'static str), u64>,
    /// Notifications that failed for good, by (receiver, integration kind, failure key).
    pub failed: BTreeMap<(String, &'static str, &'static str), u64>,
    /// Notifications superseded by a newer one for the same group (not failures), by
    /// (receiver, integration kind).
    pub superseded: BTreeMap<(String, &'static str), u64>,
    /// Alert suppressions at flushes, by reason key (`silenced`, `inhibited`, `deduplicated`,
    /// `flapping`): one per alert, integration and flush.
    pub suppressed: BTreeMap<&'static str, u64>,
    /// Alert state changes (pending, firing, resolved, flapping).
    pub transitions: u64,
    /// Alertmanager API pushes that failed.
    pub alertmanager_push_failures: u64,
    /// Failed saves of the state file.
    pub state_save_failures: u64,
}

/// What the API, the exporter and `burnwatch alerts` read: the alerting state at one instant.
#[derive(Debug, Clone, Default)]
pub struct AlertingView {
    /// When it was computed (ms since the epoch).
    pub at: Timestamp,
    /// Firing alerts with their status (silenced, inhibited, receivers); shared between views
    /// until they change.
    pub alerts: Arc<Vec<AlertView>>,
    /// Fingerprints of alerts held by flap damping.
    pub flapping: BTreeSet<Fingerprint>,
    /// The phase of every burn-rate tier alert (the one alert state every reader shows).
    pub tiers: Arc<TierPhases>,
    /// Every silence still kept (pending, active, and expired within the retention); shared
    /// between views until they change.
    pub silences: Arc<Vec<Silence>>,
    /// Aggregation groups and their next flush; shared between views until they change.
    pub groups: Arc<Vec<GroupView>>,
    /// Per-integration delivery counters, queue and breaker state.
    pub integrations: Vec<IntegrationStats>,
    /// Counters by reason.
    pub counters: AlertingCounters,
    /// Pending (not yet firing) alerts, by fingerprint with their labels.
    pub pending: usize,
    /// The last successful state save (ms since the epoch).
    pub last_save_ms: Option<i64>,
}

/// Every burn-rate tier alert's phase, by SLO and tier name, as the lifecycles decided it at
/// the newest evaluation (only the phases other than inactive are stored: a missing one reads
/// as inactive): the one alert state that `/metrics`, OTLP, `/api/v1/slos`,
/// `burnwatch status` and the demo show (the engine only reports each tier's raw condition).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TierPhases(BTreeMap<SloId, BTreeMap<String, Phase>>);

impl TierPhases {
    /// The phase of `slo`'s tier `tier` (inactive when unknown: never stepped yet).
    pub fn get(&self, slo: &SloId, tier: &str) -> Phase {
        self.0
            .get(slo)
            .and_then(|t| t.get(tier))
            .copied()
            .unwrap_or_default()
    }

    /// Number of SLOs with a tier alert that is not inactive.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when every tier alert is inactive.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<BTreeMap<SloId, BTreeMap<String, Phase>>> for TierPhases {
    /// The phases by SLO and tier name (the alert source decides them).
    fn from(phases: BTreeMap<SloId, BTreeMap<String, Phase>>) -> TierPhases {
        TierPhases(phases)
    }
}
