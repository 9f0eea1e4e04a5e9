//! What the agent's evaluator publishes after each evaluation: the [`AgentSnapshot`] (SLO
//! reports, probe and scrape-target statuses, rules and checkpoint bookkeeping), immutable and
//! shared whole by every reader.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;

use crate::probe::ProbeOutcome;
use crate::rules::model::{RuleSet, Service, Slo, SloId};
use crate::slo::engine::SloReport;
use crate::time::Timestamp;

/// Why a scrape failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScrapeFailure {
    /// Stable machine name (`timeout`, `refused`, `status`, `parse`, `sample_limit`, ...).
    pub reason: &'static str,
    /// The sentence for people.
    pub message: String,
}

/// The last result of a probe, for exports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeResultView {
    /// Start of the check, ms since the epoch.
    pub at_ms: i64,
    /// Whether it passed.
    pub success: bool,
    /// Total seconds.
    pub duration_secs: f64,
    /// Seconds in DNS, connect, TLS, first byte and transfer.
    pub phases: [f64; 5],
    /// HTTP status, if any.
    pub status: Option<u16>,
    /// TLS leaf certificate expiry, ms since the epoch.
    pub cert_not_after_ms: Option<i64>,
    /// Machine name of the failure.
    pub failure_reason: Option<&'static str>,
    /// The failure for people.
    pub failure: Option<String>,
}

impl From<&ProbeOutcome> for ProbeResultView {
    fn from(o: &ProbeOutcome) -> ProbeResultView {
        let p = &o.phases;
        ProbeResultView {
            at_ms: o.started_ms,
            success: o.success,
            duration_secs: o.duration_secs,
            phases: [p.dns, p.connect, p.tls, p.first_byte, p.transfer],
            status: o.status,
            cert_not_after_ms: o.cert_not_after_ms,
            failure_reason: o.failure.as_ref().map(|f| f.reason()),
            failure: o.failure.as_ref().map(ToString::to_string),
        }
    }
}

/// One probe's state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeStatus {
    /// Probe name.
    pub name: String,
    /// The service of the rules document that declares it.
    pub service: String,
    /// `http`, `tcp` or `dns`.
    pub kind: &'static str,
    /// URL, address or name checked.
    pub target: String,
    /// The probe's labels.
    pub labels: BTreeMap<String, String>,
    /// The newest result.
    pub last: Option<ProbeResultView>,
    /// Failures in a row up to the newest result.
    pub consecutive_failures: u64,
    /// Checks since the agent started.
    pub checks_total: u64,
    /// Failed checks since the agent started.
    pub failures_total: u64,
    /// The newest successful check, ms since the epoch.
    pub last_success_ms: Option<i64>,
}

/// One scrape target's state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetStatus {
    /// Target name (its `job` label).
    pub name: String,
    /// The service of the rules document that declares it.
    pub service: String,
    /// Metrics URL.
    pub url: String,
    /// Whether the newest scrape succeeded.
    pub up: bool,
    /// Start of the newest scrape, ms since the epoch.
    pub last_scrape_ms: Option<i64>,
    /// Start of the newest successful scrape.
    pub last_success_ms: Option<i64>,
    /// Duration of the newest scrape, seconds.
    pub duration_secs: f64,
    /// Samples on the newest successful page.
    pub samples: u64,
    /// Bytes of the newest page.
    pub bytes: u64,
    /// Why the newest scrape failed.
    pub failure: Option<ScrapeFailure>,
    /// What was wrong with the newest successful page although it was used (reason
    /// `duplicate_series`: see [`crate::scrape`]).
    pub problem: Option<ScrapeFailure>,
    /// Samples of the newest successful page dropped as repeats of a series already on it.
    pub duplicate_samples: u64,
    /// Failures in a row.
    pub consecutive_failures: u64,
    /// Scrapes since the agent started.
    pub scrapes_total: u64,
    /// Failed scrapes since the agent started.
    pub failures_total: u64,
}

/// The rules as loaded, and the outcome of the newest reload.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RulesStatus {
    /// Generation of the rule set in force (1 at start, +1 per successful reload).
    pub generation: u64,
    /// When the rule set in force was loaded, ms since the epoch.
    pub loaded_at_ms: i64,
    /// Number of SLOs, probes and scrape targets in force.
    pub slos: usize,
    /// Probes in force.
    pub probes: usize,
    /// Scrape targets in force.
    pub targets: usize,
    /// Whether the newest reload attempt succeeded.
    pub last_reload_ok: bool,
    /// Errors of the newest failed reload (`file:line:column: ...`), empty after a success.
    pub last_reload_errors: Vec<String>,
    /// Failed reloads since the agent started.
    pub reload_failures_total: u64,
    /// Changes to the SLOs in force without a reload: instances of grouped rules created or
    /// aged out (the rule set's `generation` stays, so results in flight still count). Readers
    /// that build on the SLO definitions (alerting) rebuild when this or `generation` moves.
    pub slo_set: u64,
}

/// One grouped rule (`group_by`) and its instances.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupStatus {
    /// The rule (`service/name`).
    pub id: SloId,
    /// Its `group_by` labels.
    pub by: Vec<String>,
    /// Instances in force.
    pub instances: usize,
    /// `max_instances`.
    pub max_instances: u32,
    /// Label sets refused because the rule had `max_instances` instances (counted at each
    /// scrape that showed them, since the agent started).
    pub refused_total: u64,
    /// The newest refused label set, e.g. `{route="/u/8812"}`.
    pub refused_example: Option<String>,
    /// Instances created since the agent started (those restored from a checkpoint too).
    pub created_total: u64,
    /// Instances aged out since the agent started.
    pub aged_out_total: u64,
}

/// Checkpoint bookkeeping.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CheckpointStatus {
    /// The newest successful write, ms since the epoch.
    pub last_ok_ms: Option<i64>,
    /// The newest write error, if the newest write failed.
    pub last_error: Option<String>,
    /// What the start-up restore did: SLOs kept, reset, added, dropped.
    pub restored: Option<[usize; 4]>,
}

/// How far behind its schedule a periodic job (a probe's checks, a target's scrapes, the
/// evaluations) ran, as counts since the agent started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Lag {
    /// Runs that started more than a tenth of their interval after their scheduled instant
    /// (waiting for a slot, for the evaluator's queue, or for the previous run).
    pub late: u64,
    /// Scheduled runs that did not happen at all: whole intervals that went by while the job
    /// was still behind (a run late by 2.5 intervals skipped 2).
    pub missed: u64,
}

impl Lag {
    /// Counts one run that started `late_by` after its scheduled instant, of a job that runs
    /// every `interval` (a zero interval counts nothing as missed).
    pub fn record(&mut self, late_by: std::time::Duration, interval: std::time::Duration) {
        if late_by > interval / 10 {
            self.late += 1;
        }
        if !interval.is_zero() {
            let skipped = late_by.as_nanos() / interval.as_nanos();
            self.missed += u64::try_from(skipped).unwrap_or(u64::MAX);
        }
    }
}

/// Whether the agent keeps up: its collectors' and evaluations' lags and its queues. Set by the
/// agent loop on each snapshot it publishes (the evaluator, clock-free, leaves it empty).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Pace {
    /// Each probe's lag, by probe name.
    pub probes: BTreeMap<String, Lag>,
    /// Each scrape target's lag, by target name.
    pub targets: BTreeMap<String, Lag>,
    /// The evaluations' lag.
    pub evaluations: Lag,
    /// Results waiting in the collectors' queue to the evaluator when the snapshot was taken.
    pub queue_length: usize,
    /// That queue's capacity (`queue_length` in the agent config); collectors wait when it is
    /// full, which shows as late and missed runs.
    pub queue_capacity: usize,
    /// Probe results not counted for alerting's probe thresholds because alerting's queue was
    /// full (the SLOs still count them).
    pub probe_results_dropped: u64,
}

/// Reads and errors of one query source (`sources.prometheus`) since the agent started, for
/// the API and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SourceStatus {
    /// The source's name.
    pub name: String,
    /// Reads that gave data (both queries of an SLO answered).
    pub reads_total: u64,
    /// Failed reads by reason (every reason the source reports, zero or not).
    pub errors_total: BTreeMap<&'static str, u64>,
    /// The newest failure's message, cleared by a successful read.
    pub last_error: Option<String>,
}

impl SourceStatus {
    /// A source with no reads yet, a zero counter per reason of `reasons`.
    pub fn new(name: &str, reasons: &[&'static str]) -> SourceStatus {
        SourceStatus {
            name: name.to_owned(),
            reads_total: 0,
            errors_total: reasons.iter().map(|r| (*r, 0)).collect(),
            last_error: None,
        }
    }
}

/// Everything readers (exporters, API, CLI) see, published whole after each evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct AgentSnapshot {
    /// Evaluation instant.
    pub at: Timestamp,
    /// The rule set in force (definitions: objectives, labels, links).
    #[serde(skip)]
    pub rules: Arc<RuleSet>,
    /// One report per SLO, in engine order.
    pub slos: Vec<SloReport>,
    /// Probes by name.
    pub probes: Vec<ProbeStatus>,
    /// Scrape targets by name.
    pub targets: Vec<TargetStatus>,
    /// Rules loading.
    pub rules_status: RulesStatus,
    /// Checkpoints.
    pub checkpoint: CheckpointStatus,
    /// Observations dropped because their rule set was replaced while they were in flight.
    pub stale_observations: u64,
    /// Reads and errors of each query source (`sources.prometheus`), by name.
    pub sources: Vec<SourceStatus>,
    /// Events counted per SLO since the agent started (good, bad): monotonic, for counters.
    pub events_total: BTreeMap<SloId, (u64, u64)>,
    /// Seconds the evaluation that produced this snapshot took (set by the agent loop).
    pub evaluation_seconds: f64,
    /// Whether the agent keeps up (set by the agent loop).
    pub pace: Pace,
    /// The grouped rules, in rule order.
    pub groups: Vec<GroupStatus>,
}

impl AgentSnapshot {
    /// Each SLO report with its service and rule, in report order; one map build, so readers
    /// (exporters, the API) never search the rules per report.
    pub fn slo_rows(&self) -> Vec<(&SloReport, &Service, &Slo)> {
        let defs: HashMap<&SloId, (&Service, &Slo)> = self
            .rules
            .services
            .iter()
            .flat_map(|svc| svc.slos.iter().map(move |s| (&s.id, (svc, s))))
            .collect();
        self.slos
            .iter()
            .filter_map(|r| defs.get(&r.id).map(|&(svc, s)| (r, svc, s)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::Lag;
    use std::time::Duration;

    /// Brute force: the scheduled instants a run `late_by` after its own passed over, and
    /// whether it is later than a tenth of the interval, counted in whole milliseconds.
    fn model(late_by_ms: u64, every_ms: u64) -> Lag {
        let skipped = (1..)
            .map(|k| k * every_ms)
            .take_while(|t| *t <= late_by_ms)
            .count() as u64;
        Lag {
            late: u64::from(late_by_ms * 10 > every_ms),
            missed: skipped,
        }
    }

    #[test]
    fn lag_counts_late_runs_and_skipped_intervals() {
        for every in [1u64, 7, 10, 1_000, 15_000] {
            for late_by in (0..5 * every).chain([every / 10, every / 10 + 1, every, 2 * every]) {
                let mut lag = Lag::default();
                lag.record(Duration::from_millis(late_by), Duration::from_millis(every));
                assert_eq!(
                    lag,
                    model(late_by, every),
                    "{late_by} ms late, every {every} ms"
                );
            }
        }
        // Counts add up; a zero interval skips nothing.
        let mut lag = Lag::default();
        let s = Duration::from_secs;
        lag.record(s(0), s(10));
        lag.record(s(25), s(10));
        lag.record(s(1), Duration::ZERO);
        assert_eq!(lag, Lag { late: 2, missed: 2 });
    }
}
