//! The running agent: loads rules and restores state, runs the collectors, and drives the one
//! writer ([`Evaluator`]) that evaluates, publishes snapshots, checkpoints and
//! reloads. Readers (HTTP server, exporters, the demo's table) only see published
//! [`AgentSnapshot`]s and reach the agent through handles, both from [`crate::view`]; none of
//! them imports this module.
//!
//! Lifecycle:
//! - start: rules must load (the same errors as `burnwatch check`); the checkpoint in the data
//!   directory is restored; a corrupt or newer-version checkpoint stops the start with a message
//!   saying how to proceed, instead of silently starting with an empty budget;
//! - every `evaluation_interval`: evaluate and publish; every `checkpoint_interval`: save;
//! - reload (SIGHUP, a changed rules file, `POST /-/reload` or [`Reloader`]): a rule set with errors is
//!   rejected, logged with every error, and the agent keeps the last good rules;
//! - shutdown, when the daemon's [`Shutdown`] fires: collectors stop, queued results are
//!   applied, a last evaluation is published and the state is checkpointed; then alerting acts
//!   on that last snapshot and saves its state (the whole order is in [`crate::shutdown`]).

pub mod alerting;
pub mod collect;
pub mod journal;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::clock::Clock;
use crate::config::AgentConfig;
use crate::evaluator::Evaluator;
use crate::probe::{Checker, Prober};
use crate::rules::{self, model::RuleSet};
use crate::shutdown::Shutdown;
use crate::slo::checkpoint::EngineCheckpoint;
use crate::storage::{self, StorageError};
use crate::time::Timestamp;
use crate::view::{
    AgentSnapshot, AlertingHandle, HistoryFailure, HistoryHandle, HistoryRequest, Lag, Pace,
    ReloadOutcome, ReloadRequest, Reloader,
};

use alerting::{Alerting, ProbeResult};
use collect::{Collectors, QueryJob, Shared};

use crate::rules::model::Indicator;
use crate::source::PrometheusClient;

/// Why the agent could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The rules (or the config's rules paths) have errors.
    #[error("the rules have errors:\n{}", .0.join("\n"))]
    Rules(Vec<String>),
    /// The data directory cannot be created.
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The checkpoint exists but cannot be used.
    #[error(
        "the state checkpoint {path} cannot be restored: {source}. Starting anyway would lose the \
         error budget history. Fix the file, or move it away to start with an empty history \
         (e.g. `mv {path} {path}.bad`)"
    )]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// Why.
        source: StorageError,
    },
    /// The probe TLS setup failed (e.g. an unreadable CA file).
    #[error("probes: {0}")]
    Probe(#[from] crate::probe::ProbeError),
    /// Alerting could not start (unreadable state, a receiver's missing secret).
    #[error("alerting: {0}")]
    Alerting(#[from] alerting::AlertingError),
    /// A query source cannot be used (its URL, CA file or TLS setup).
    #[error("sources: {0}")]
    Source(#[from] crate::source::SourceError),
}

/// What the agent runs on besides its config and rules: the clock it stamps every instant with,
/// and where its collectors get their answers. `run` and `demo` use the default (the system
/// clock, probes and scrapes over the network); a test can run the whole agent on tokio's
/// paused clock ([`Clock::following_tokio`]) with answers served in process.
#[derive(Clone, Default)]
pub struct Environment {
    /// The wall clock.
    pub clock: Clock,
    /// `None`: a [`Prober`] built for the rules' probes checks and scrapes over the network.
    pub checker: Option<Arc<dyn Checker>>,
}

/// A running agent.
pub struct Agent {
    snapshots: watch::Receiver<Arc<AgentSnapshot>>,
    reload: mpsc::Sender<ReloadRequest>,
    history: mpsc::Sender<HistoryRequest>,
    shutdown: Shutdown,
    task: JoinHandle<()>,
    alerting: Alerting,
}

/// What readers ask of the agent loop besides observations: reloads and histories.
struct Requests {
    reload: mpsc::Receiver<ReloadRequest>,
    history: mpsc::Receiver<HistoryRequest>,
}

impl Agent {
    /// Loads rules and state and starts collecting, until [`Agent::shutdown`]. Must be called
    /// inside a tokio runtime.
    pub async fn start(cfg: AgentConfig) -> Result<Agent, AgentError> {
        let rules = load_rules(&cfg)?;
        Agent::start_with(cfg, rules, &Shutdown::new(), Environment::default()).await
    }

    /// [`Agent::start`] with rules already loaded and checked (the daemon checks them with
    /// [`crate::preflight`] first, so they are read and reported once), stopping when
    /// `shutdown` fires (or at [`Agent::shutdown`]), on `env`'s clock and checker.
    pub async fn start_with(
        cfg: AgentConfig,
        rules: RuleSet,
        shutdown: &Shutdown,
        env: Environment,
    ) -> Result<Agent, AgentError> {
        std::fs::create_dir_all(&cfg.data_dir).map_err(|source| AgentError::DataDir {
            path: cfg.data_dir.clone(),
            source,
        })?;
        let clock = env.clock;
        let now = clock.now();
        let missing = cfg.sources.missing(&rules);
        if !missing.is_empty() {
            return Err(AgentError::Rules(missing));
        }
        let clients = Arc::new(
            cfg.sources
                .prometheus
                .iter()
                .map(|s| Ok((s.name.clone(), Arc::new(PrometheusClient::new(s)?))))
                .collect::<Result<HashMap<_, _>, crate::source::SourceError>>()?,
        );
        let mut ev = Evaluator::new(share(&cfg, rules), now);
        ev.declare_sources(cfg.sources.prometheus.iter().map(|s| s.name.as_str()));
        if cfg.export.prometheus.sloth_compatible {
            ev.report_extra_windows(crate::export::sloth::windows);
        }
        let state_file = cfg.state_file();
        match storage::load::<EngineCheckpoint>(&state_file) {
            Ok(Some(cp)) => {
                let r = ev.restore(cp);
                tracing::info!(
                    file = %state_file.display(),
                    kept = r.kept.len(),
                    reset = r.reset.len(),
                    added = r.added.len(),
                    dropped = r.dropped.len(),
                    "restored SLO state"
                );
                for id in &r.reset {
                    tracing::warn!(slo = %id, "indicator changed since the checkpoint: state reset");
                }
            }
            Ok(None) => {
                tracing::info!(file = %state_file.display(), "no checkpoint yet: fresh state")
            }
            Err(source) => {
                return Err(AgentError::Checkpoint {
                    path: state_file,
                    source,
                });
            }
        }
        let checker: Arc<dyn Checker> = match env.checker {
            Some(c) => c,
            None => Arc::new(Prober::new(&ev.rules().probes)?),
        };
        let (tx, rx) = mpsc::channel(cfg.queue_length);
        let shared = Shared {
            checker,
            clock,
            tx,
            probe_slots: Arc::new(Semaphore::new(cfg.max_concurrent_probes)),
            scrape_slots: Arc::new(Semaphore::new(cfg.max_concurrent_scrapes)),
            shutdown: shutdown.clone(),
            lags: Arc::default(),
            sources: clients,
        };
        let first = Arc::new(ev.evaluate(now));
        let (snap_tx, snapshots) = watch::channel(first);
        // Room for two results of every probe (at least a queue's worth): alerting may pause
        // for a burst (the first flush of 10,000 notifications) for two probe intervals before
        // a result is dropped, whatever the number of probes. A result is ~40 bytes.
        let tap_len = cfg.queue_length.max(2 * ev.rules().probes.len());
        let (probe_tap, probe_results) = mpsc::channel(tap_len);
        let alerting = Alerting::start(&cfg, ev.rules(), snapshots.clone(), probe_results, clock)?;
        let (reload, reload_rx) = mpsc::channel(4);
        // A few at a time: each is answered between two steps of the loop, in well under a
        // millisecond, and a UI asks for one chart at a time.
        let (history, history_rx) = mpsc::channel(16);
        let requests = Requests {
            reload: reload_rx,
            history: history_rx,
        };
        let task = tokio::spawn(run_loop(cfg, ev, shared, rx, snap_tx, requests, probe_tap));
        Ok(Agent {
            snapshots,
            reload,
            history,
            shutdown: shutdown.clone(),
            task,
            alerting,
        })
    }

    /// The newest snapshot.
    pub fn snapshot(&self) -> Arc<AgentSnapshot> {
        self.snapshots.borrow().clone()
    }

    /// A receiver of every published snapshot.
    pub fn subscribe(&self) -> watch::Receiver<Arc<AgentSnapshot>> {
        self.snapshots.clone()
    }

    /// A handle that asks for a reload (as SIGHUP does).
    pub fn reloader(&self) -> Reloader {
        Reloader(self.reload.clone())
    }

    /// A handle that reads SLO histories from the engine.
    pub fn history(&self) -> HistoryHandle {
        HistoryHandle(self.history.clone())
    }

    /// The alerting task's handle (alerts, silences).
    pub fn alerting(&self) -> AlertingHandle {
        self.alerting.handle()
    }

    /// Triggers the shutdown it was started with (if nothing did yet) and waits until it is
    /// done: collecting stopped, what was queued applied, a last snapshot published and
    /// checkpointed; then alerting acted on that snapshot, delivered what it could within its
    /// grace period and saved its state.
    pub async fn shutdown(self) {
        self.shutdown.trigger();
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "agent loop ended abnormally");
        }
        self.alerting.shutdown().await;
    }
}

/// Expands the config's rules paths and loads them as one file set; warnings are logged, errors
/// returned (as at a reload).
pub fn load_rules(cfg: &AgentConfig) -> Result<RuleSet, AgentError> {
    let paths = cfg
        .rule_paths()
        .map_err(|d| AgentError::Rules(d.iter().map(ToString::to_string).collect()))?;
    let report = rules::check_paths(&paths);
    for d in report.diagnostics.iter().filter(|d| !d.is_error()) {
        tracing::warn!("{d}");
    }
    let rules = report.rules.ok_or_else(|| {
        AgentError::Rules(
            report
                .diagnostics
                .iter()
                .filter(|d| d.is_error())
                .map(ToString::to_string)
                .collect(),
        )
    })?;
    // A query SLO without its source could never be read: refused like a rules error.
    let missing = cfg.sources.missing(&rules);
    if missing.is_empty() {
        Ok(rules)
    } else {
        Err(AgentError::Rules(missing))
    }
}

/// One [`QueryJob`] per `query` SLO of the evaluator's rules, with its source's client
/// (checked at load) and where its reads resume.
fn query_jobs(ev: &Evaluator, shared: &Shared, cfg: &AgentConfig) -> Vec<QueryJob> {
    ev.rules()
        .slos()
        .filter_map(|slo| {
            let Indicator::Query {
                source,
                numerator_query,
                total_query,
                ..
            } = &slo.indicator
            else {
                return None;
            };
            let name = &cfg.sources.resolve(source.as_deref()).ok()?.name;
            Some(QueryJob {
                slo: Arc::new(slo.id.clone()),
                client: shared.sources.get(name)?.clone(),
                numerator: numerator_query.clone(),
                total: total_query.clone(),
                resume: ev.query_resume(&slo.id),
            })
        })
        .collect()
}

/// What [`log_groups`] remembers of a grouped rule: its created, aged-out and refused counts
/// when last logged, and when it last warned of refusals (ms).
type GroupsSeen = HashMap<crate::rules::model::SloId, ((u64, u64, u64), i64)>;

/// Logs what changed in the grouped SLOs since the last evaluation: instances created and aged
/// out (one line per rule, not per instance), and label sets refused at `max_instances`: a
/// warning when refusals start and then at most hourly while they go on, so an exploding label
/// shows in the logs without flooding them (`burnwatch_slo_group_refused_total` counts each).
fn log_groups(seen: &mut GroupsSeen, snap: &AgentSnapshot) {
    const WARN_EVERY_MS: i64 = 3_600_000;
    for g in &snap.groups {
        let now = (g.created_total, g.aged_out_total, g.refused_total);
        let (was, warned) = seen.get(&g.id).copied().unwrap_or(((0, 0, 0), i64::MIN));
        if now.0 > was.0 || now.1 > was.1 {
            tracing::info!(
                slo = %g.id,
                created = now.0 - was.0,
                aged_out = now.1.saturating_sub(was.1),
                instances = g.instances,
                "grouped SLO instances changed"
            );
        }
        let mut warned_at = warned;
        if now.2 > was.2 && snap.at.0.saturating_sub(warned) >= WARN_EVERY_MS {
            warned_at = snap.at.0;
            tracing::warn!(
                slo = %g.id,
                max_instances = g.max_instances,
                refused = now.2,
                example = g.refused_example.as_deref().unwrap_or(""),
                "grouped SLO is at max_instances: new label sets are refused and their events are not counted; raise max_instances or group by a label with fewer values"
            );
        }
        // Refusals counted while the warning waits are reported with the next one.
        let logged = if warned_at == warned && now.2 > was.2 {
            (now.0, now.1, was.2)
        } else {
            now
        };
        seen.insert(g.id.clone(), (logged, warned_at));
    }
}

/// This agent's share of `rules` under `shard:` (everything without it), with the choice
/// logged.
fn share(cfg: &AgentConfig, rules: RuleSet) -> RuleSet {
    let Some(shard) = cfg.shard else {
        return rules;
    };
    let selection = crate::shard::select(&rules, shard);
    for w in &selection.warnings {
        tracing::warn!("{w}");
    }
    tracing::info!(
        index = shard.index,
        total = shard.total,
        services = selection.services.1,
        of = selection.services.0,
        slos = selection.rules.slos().count(),
        probes = selection.rules.probes.len(),
        targets = selection.rules.scrapes.len(),
        "evaluating this shard's share of the rules"
    );
    selection.rules
}

/// Size and modification time of every rules file: a change means "reload".
fn rules_fingerprint(cfg: &AgentConfig) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let paths = cfg.rule_paths().unwrap_or_default();
    let (files, _) = rules::collect_files(&paths);
    files
        .into_iter()
        .map(|f| {
            let m = std::fs::metadata(&f).ok();
            let len = m.as_ref().map_or(0, |m| m.len());
            let mtime = m.and_then(|m| m.modified().ok());
            (f, len, mtime)
        })
        .collect()
}

fn checkpoint(cfg: &AgentConfig, ev: &mut Evaluator, clock: Clock) {
    let path = cfg.state_file();
    // The engine is serialized in place and streamed to the file, so no image of it is held
    // (about 5 KB per SLO); the write therefore runs here, with the engine borrowed. This task
    // waited for the write before as well; `block_in_place` lets the runtime move the other
    // tasks of this worker elsewhere meanwhile (a current-thread runtime, in tests, just
    // waits).
    let save = |ev: &mut Evaluator| {
        let saved = ev.save_checkpoint(&path);
        // See crate::memory for why and what it costs.
        crate::memory::release_free_memory();
        saved
    };
    let saved = match tokio::runtime::Handle::current().runtime_flavor() {
        tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(|| save(ev)),
        _ => save(ev),
    };
    match saved {
        Ok(()) => {
            ev.checkpoint.last_ok_ms = Some(clock.now().0);
            ev.checkpoint.last_error = None;
        }
        Err(e) => {
            tracing::error!(error = %e, "checkpoint failed");
            ev.checkpoint.last_error = Some(e.to_string());
        }
    }
}

fn interval(d: Duration) -> tokio::time::Interval {
    let mut i = tokio::time::interval_at(tokio::time::Instant::now() + d, d);
    i.set_missed_tick_behavior(MissedTickBehavior::Delay);
    i
}

/// The one writer: evaluates, checkpoints, reloads and applies results until the daemon's
/// shutdown fires, then stops in the documented order ([`crate::shutdown`]); ending closes the
/// snapshot channel, which tells alerting the last snapshot is out.
async fn run_loop(
    cfg: AgentConfig,
    mut ev: Evaluator,
    shared: Shared,
    mut rx: mpsc::Receiver<Observation>,
    snap_tx: watch::Sender<Arc<AgentSnapshot>>,
    mut requests: Requests,
    probe_tap: mpsc::Sender<ProbeResult>,
) {
    let mut collectors = Collectors::spawn(
        ev.rules(),
        ev.generation(),
        ev.plan().clone(),
        query_jobs(&ev, &shared, &cfg),
        &shared,
    );
    let mut eval_tick = interval(cfg.evaluation_interval.to_std());
    let mut cp_tick = interval(cfg.checkpoint_interval.to_std());
    let watch_every = cfg
        .reload_check_interval
        .map_or(Duration::from_secs(3600), |d| d.to_std());
    let mut watch_tick = interval(watch_every);
    let mut files = rules_fingerprint(&cfg);
    // Whether the agent keeps up: published with every snapshot.
    let mut evaluations = Lag::default();
    let mut dropped = 0u64;
    let mut groups_seen = GroupsSeen::new();
    tracing::info!(
        slos = ev
            .rules()
            .services
            .iter()
            .map(|s| s.slos.len())
            .sum::<usize>(),
        probes = ev.rules().probes.len(),
        targets = ev.rules().scrapes.len(),
        "agent running"
    );
    loop {
        tokio::select! {
            biased;
            _ = shared.shutdown.requested() => break,
            scheduled = eval_tick.tick() => {
                evaluations.record(scheduled.elapsed(), cfg.evaluation_interval.to_std());
                let started = std::time::Instant::now();
                let mut snap = ev.evaluate(shared.clock.now());
                snap.evaluation_seconds = started.elapsed().as_secs_f64();
                snap.pace = pace(&shared, &rx, evaluations, dropped);
                log_groups(&mut groups_seen, &snap);
                let _ = snap_tx.send(Arc::new(snap));
            }
            _ = cp_tick.tick() => checkpoint(&cfg, &mut ev, shared.clock),
            Some((id, query, reply)) = requests.history.recv() => {
                let answer = match ev.history(&id, shared.clock.now(), query) {
                    Some(h) => h.map_err(HistoryFailure::from),
                    None => Err(HistoryFailure::UnknownSlo(id)),
                };
                let _ = reply.send(answer);
            }
            Some(reply) = requests.reload.recv() => {
                files = rules_fingerprint(&cfg);
                let outcome;
                (collectors, outcome) = reload(&cfg, &mut ev, collectors, &shared).await;
                if let Some(reply) = reply {
                    let _ = reply.send(outcome);
                }
            }
            _ = watch_tick.tick(), if cfg.reload_check_interval.is_some() => {
                let now = rules_fingerprint(&cfg);
                if now != files {
                    files = now;
                    tracing::info!("rules files changed: reloading");
                    (collectors, _) = reload(&cfg, &mut ev, collectors, &shared).await;
                }
            }
            Some(obs) = rx.recv() => {
                dropped += u64::from(!tap(&probe_tap, &ev, &obs));
                ev.apply(obs);
            }
        }
    }
    collectors.stop().await;
    while let Ok(obs) = rx.try_recv() {
        dropped += u64::from(!tap(&probe_tap, &ev, &obs));
        ev.apply(obs);
    }
    let mut snap = ev.evaluate(shared.clock.now());
    snap.pace = pace(&shared, &rx, evaluations, dropped);
    let _ = snap_tx.send(Arc::new(snap));
    checkpoint(&cfg, &mut ev, shared.clock);
    tracing::info!("agent stopped; state checkpointed");
}

use crate::evaluator::Observation;

/// The agent's pace for the snapshot being published: the collectors' and the evaluations'
/// lags, the queue to the evaluator, and the probe results alerting could not take.
fn pace(
    shared: &Shared,
    rx: &mpsc::Receiver<Observation>,
    evaluations: Lag,
    probe_results_dropped: u64,
) -> Pace {
    let (probes, targets) = shared.lags.read();
    Pace {
        probes,
        targets,
        evaluations,
        queue_length: rx.len(),
        queue_capacity: rx.max_capacity(),
        probe_results_dropped,
    }
}

/// Forwards a current-generation probe result to alerting (probe thresholds count every
/// result). Never waits: when alerting lags by a whole queue (two results per probe of the
/// rules at start, at least `queue_length`), the result is dropped and logged rather than
/// slowing evaluation; returns false then.
fn tap(probe_tap: &mpsc::Sender<ProbeResult>, ev: &Evaluator, obs: &Observation) -> bool {
    if let Observation::Probe {
        generation,
        name,
        outcome,
    } = obs
        && *generation == ev.generation()
    {
        let r = ProbeResult {
            name: name.clone(),
            at: Timestamp(outcome.started_ms.max(0)),
            success: outcome.success,
        };
        if probe_tap.try_send(r).is_err() {
            tracing::warn!(probe = %name, "alerting is behind: a probe result was not counted for alerts");
            return false;
        }
    }
    true
}

/// Loads the rules again; on success swaps the evaluator's rule set and restarts collectors,
/// on failure logs every error and keeps everything as it was.
async fn reload(
    cfg: &AgentConfig,
    ev: &mut Evaluator,
    collectors: Collectors,
    shared: &Shared,
) -> (Collectors, ReloadOutcome) {
    match load_rules(cfg) {
        Ok(rules) => {
            collectors.stop().await;
            let r = ev.reload(share(cfg, rules), shared.clock.now());
            tracing::info!(
                generation = ev.generation(),
                kept = r.kept.len(),
                reset = r.reset.len(),
                added = r.added.len(),
                dropped = r.dropped.len(),
                "rules reloaded"
            );
            let outcome = ReloadOutcome {
                ok: true,
                generation: ev.generation(),
                errors: Vec::new(),
            };
            (
                Collectors::spawn(
                    ev.rules(),
                    ev.generation(),
                    ev.plan().clone(),
                    query_jobs(ev, shared, cfg),
                    shared,
                ),
                outcome,
            )
        }
        Err(e) => {
            let errors = match e {
                AgentError::Rules(v) => v,
                other => vec![other.to_string()],
            };
            for line in &errors {
                tracing::error!("{line}");
            }
            tracing::error!(
                errors = errors.len(),
                "rules reload rejected; keeping the last good rules"
            );
            let outcome = ReloadOutcome {
                ok: false,
                generation: ev.generation(),
                errors: errors.clone(),
            };
            ev.reload_failed(errors);
            (collectors, outcome)
        }
    }
}
