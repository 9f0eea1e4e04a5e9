//! Collectors: one task per probe and per scrape target, each on its own interval with a fixed
//! offset (spread over the interval by a hash of the name, as Prometheus spreads scrapes), so a
//! thousand probes do not fire in the same millisecond. Concurrency is bounded by semaphores;
//! results go to the evaluator through a bounded queue (a slow evaluator slows collection, memory
//! does not grow). Each generation's collectors await a child of the daemon's [`Shutdown`]: a
//! reload stops this generation's collectors and starts the next; shutdown stops them all.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;

use crate::clock::Clock;
use crate::evaluator::Observation;
use crate::exposition::Format;
use crate::probe::{Checker, FetchRequest};
use crate::rules::model::SloId;
use crate::rules::model::{Probe, RuleSet, ScrapeTarget};
use crate::scrape::{ScrapePlan, TargetLabels, match_page};
use crate::shutdown::Shutdown;
use crate::slo::fingerprint::fnv1a64;
use crate::source::{LogLine, PrometheusClient};
use crate::time::{Dur, Timestamp};
use crate::view::{Lag, ScrapeFailure};

/// How long stopping waits for in-flight checks before aborting them.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Shared limits and channels of every collector.
#[derive(Clone)]
pub struct Shared {
    /// Runs checks and fetches.
    pub checker: Arc<dyn Checker>,
    /// Stamps when each check and scrape started.
    pub clock: Clock,
    /// Where results go.
    pub tx: mpsc::Sender<Observation>,
    /// Probes in flight at once.
    pub probe_slots: Arc<Semaphore>,
    /// Scrapes in flight at once.
    pub scrape_slots: Arc<Semaphore>,
    /// The daemon's shutdown: every generation's collectors stop when it fires.
    pub shutdown: Shutdown,
    /// How late each collector runs, read into every snapshot.
    pub lags: Arc<Lags>,
    /// The query sources' clients, by name (`sources.prometheus`).
    pub sources: Arc<std::collections::HashMap<String, Arc<PrometheusClient>>>,
}

/// Every collector's [`Lag`] since the agent started, by probe and by target name (kept
/// across reloads, like the other counters since start).
#[derive(Debug, Default)]
pub struct Lags {
    probes: Mutex<BTreeMap<String, Lag>>,
    targets: Mutex<BTreeMap<String, Lag>>,
}

impl Lags {
    fn record(book: &Mutex<BTreeMap<String, Lag>>, name: &str, late_by: Duration, every: Dur) {
        let mut book = book.lock().unwrap_or_else(PoisonError::into_inner);
        match book.get_mut(name) {
            Some(lag) => lag.record(late_by, every.to_std()),
            None => {
                let mut lag = Lag::default();
                lag.record(late_by, every.to_std());
                book.insert(name.to_owned(), lag);
            }
        }
    }

    /// The probes' and the targets' lags, as of now.
    pub fn read(&self) -> (BTreeMap<String, Lag>, BTreeMap<String, Lag>) {
        let read = |m: &Mutex<BTreeMap<String, Lag>>| {
            m.lock().unwrap_or_else(PoisonError::into_inner).clone()
        };
        (read(&self.probes), read(&self.targets))
    }
}

/// One `query` SLO to read: its source, its two queries, and where its window-mode reads
/// resume ([`crate::evaluator::Evaluator::query_resume`]).
#[derive(Debug, Clone)]
pub struct QueryJob {
    /// The SLO.
    pub slo: Arc<SloId>,
    /// Its source.
    pub client: Arc<PrometheusClient>,
    /// The numerator's PromQL.
    pub numerator: String,
    /// The total's PromQL.
    pub total: String,
    /// The newest read already counted, if any.
    pub resume: Option<Timestamp>,
}

/// The running collectors of one rule set generation.
pub struct Collectors {
    /// This generation's stop: a child of the daemon's shutdown.
    stop: Shutdown,
    tasks: JoinSet<()>,
}

impl Collectors {
    /// Starts a collector for every probe and scrape target of `rules`, and one per `query`
    /// SLO of `queries`.
    pub fn spawn(
        rules: &RuleSet,
        generation: u64,
        plan: Arc<ScrapePlan>,
        queries: Vec<QueryJob>,
        shared: &Shared,
    ) -> Collectors {
        let stop = shared.shutdown.child();
        let mut tasks = JoinSet::new();
        for p in &rules.probes {
            tasks.spawn(probe_loop(
                p.clone(),
                generation,
                shared.clone(),
                stop.clone(),
            ));
        }
        for t in &rules.scrapes {
            tasks.spawn(scrape_loop(
                t.clone(),
                generation,
                plan.clone(),
                shared.clone(),
                stop.clone(),
            ));
        }
        for q in queries {
            tasks.spawn(query_loop(q, generation, shared.clone(), stop.clone()));
        }
        Collectors { stop, tasks }
    }

    /// Stops every collector: in-flight checks get [`STOP_GRACE`] to finish, then are aborted.
    pub async fn stop(mut self) {
        self.stop.trigger();
        let all = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(STOP_GRACE, all).await.is_err() {
            self.tasks.abort_all();
            while self.tasks.join_next().await.is_some() {}
        }
    }
}

/// The fixed offset of `name` within `interval`: spread by hash, stable across restarts.
fn offset(name: &str, interval: Dur) -> Duration {
    let ms = interval.millis().max(1);
    Duration::from_millis(fnv1a64(name.as_bytes()) % ms)
}

/// Waits `d`, or returns false when told to stop.
async fn sleep_or_stop(d: Duration, stop: &Shutdown) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = stop.requested() => false,
    }
}

/// Runs `check` every `interval` (first at `name`'s offset), one slot of `slots` per run, and
/// sends each observation; returns when told to stop or when the evaluator is gone. Each run's
/// delay from its scheduled instant to its start (slot acquired) goes into `lags`: a slow
/// check, a full slot pool or a full queue to the evaluator all show there.
async fn run_every<F, Fut>(
    name: &str,
    interval: Dur,
    slots: Arc<Semaphore>,
    tx: mpsc::Sender<Observation>,
    stop: Shutdown,
    lags: Option<&Mutex<BTreeMap<String, Lag>>>,
    mut check: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Observation>,
{
    if !sleep_or_stop(offset(name, interval), &stop).await {
        return;
    }
    let mut tick = tokio::time::interval(interval.to_std());
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let scheduled = tokio::select! {
            t = tick.tick() => t,
            _ = stop.requested() => return,
        };
        let obs = {
            let Ok(_permit) = slots.acquire().await else {
                return;
            };
            if let Some(lags) = lags {
                Lags::record(lags, name, scheduled.elapsed(), interval);
            }
            tokio::select! {
                o = check() => o,
                _ = stop.requested() => return,
            }
        };
        if tx.send(obs).await.is_err() {
            return;
        }
    }
}

async fn probe_loop(probe: Probe, generation: u64, shared: Shared, stop: Shutdown) {
    let name: Arc<str> = probe.name.as_str().into();
    let probe = Arc::new(probe);
    let (checker, clock) = (shared.checker.clone(), shared.clock);
    let check = || {
        let (probe, checker, name) = (probe.clone(), checker.clone(), name.clone());
        async move {
            // The agent's clock stamps the start, so results and evaluations share one time.
            let started = clock.now();
            let mut outcome = checker.check(&probe).await;
            outcome.started_ms = started.0;
            Observation::Probe {
                generation,
                name,
                outcome,
            }
        }
    };
    run_every(
        &probe.name,
        probe.interval,
        shared.probe_slots.clone(),
        shared.tx.clone(),
        stop,
        Some(&shared.lags.probes),
        check,
    )
    .await;
}

async fn scrape_loop(
    target: ScrapeTarget,
    generation: u64,
    plan: Arc<ScrapePlan>,
    shared: Shared,
    stop: Shutdown,
) {
    let name: Arc<str> = target.name.as_str().into();
    let labels = Arc::new(TargetLabels::for_target(&target));
    let target = Arc::new(target);
    let (checker, clock) = (shared.checker.clone(), shared.clock);
    let check = || {
        let (target, labels, plan, checker, name) = (
            target.clone(),
            labels.clone(),
            plan.clone(),
            checker.clone(),
            name.clone(),
        );
        async move {
            let (at, duration_secs, bytes, result) =
                scrape_once(&target, &labels, &plan, checker.as_ref(), clock).await;
            Observation::Scrape {
                generation,
                target: name,
                at,
                duration_secs,
                bytes,
                result,
            }
        }
    };
    run_every(
        &target.name,
        target.interval,
        shared.scrape_slots.clone(),
        shared.tx.clone(),
        stop,
        Some(&shared.lags.targets),
        check,
    )
    .await;
}

/// Reads one `query` SLO every interval of its source (sharing the scrapes' concurrency
/// bound). A window-mode read covers the time since the previous successful read (a first
/// read, one interval), so a failed read's events are counted by the next one that answers;
/// failures are logged per source when they start, at most every
/// [`crate::source::LOG_EVERY`] while they go on, and when they end.
async fn query_loop(job: QueryJob, generation: u64, shared: Shared, stop: Shutdown) {
    let interval = job.client.interval;
    let name = format!("query {}", job.slo);
    // The newest successful read: the next window starts there.
    let progress = Arc::new(Mutex::new(job.resume));
    let job = Arc::new(job);
    let clock = shared.clock;
    let check = || {
        let (job, progress) = (job.clone(), progress.clone());
        async move {
            let at = clock.now();
            let from = progress
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .unwrap_or(Timestamp(at.0.saturating_sub(interval.millis() as i64)));
            let result = job.client.read(&job.numerator, &job.total, from, at).await;
            if result.is_ok() {
                *progress.lock().unwrap_or_else(PoisonError::into_inner) = Some(at);
            }
            match (job.client.log_outcome(result.is_err()), &result) {
                (LogLine::Failure, Err(e)) => tracing::warn!(
                    slo = %job.slo,
                    source = %job.client.name,
                    reason = e.reason(),
                    error = %e,
                    "query source read failed: no data for this interval (retried next interval; the SLO's no_data policy applies; further failures of this source are logged at most every 5 minutes)"
                ),
                (LogLine::Recovered, _) => {
                    tracing::info!(source = %job.client.name, "query source answers again");
                }
                _ => {}
            }
            Observation::Query {
                generation,
                slo: job.slo.clone(),
                source: job.client.name.clone(),
                at,
                result,
            }
        }
    };
    run_every(
        &name,
        interval,
        shared.scrape_slots.clone(),
        shared.tx.clone(),
        stop,
        None,
        check,
    )
    .await;
}

type ScrapeResult = (
    Timestamp,
    f64,
    u64,
    Result<crate::scrape::Matched, ScrapeFailure>,
);

/// One scrape: fetch, check the status, parse and match (all or nothing).
pub async fn scrape_once(
    target: &ScrapeTarget,
    labels: &TargetLabels,
    plan: &ScrapePlan,
    checker: &dyn Checker,
    clock: Clock,
) -> ScrapeResult {
    let at = clock.now();
    let started = Instant::now();
    let headers = [("Accept", Format::ACCEPT)];
    let mut req = FetchRequest::new(&target.url, target.timeout, target.body_limit);
    req.headers = &headers;
    let fetched = checker.fetch(&req).await;
    let result = match fetched {
        Err(e) => {
            let secs = started.elapsed().as_secs_f64();
            return (
                at,
                secs,
                0,
                Err(ScrapeFailure {
                    reason: e.reason(),
                    message: e.to_string(),
                }),
            );
        }
        Ok(resp) if !(200..300).contains(&resp.status) => (
            resp.body.len() as u64,
            Err(ScrapeFailure {
                reason: "status",
                message: format!("status {} (expected 2xx)", resp.status),
            }),
        ),
        Ok(resp) => {
            let format = Format::from_content_type(resp.content_type.as_deref());
            let matched = match_page(plan, labels, &resp.body, format, target.sample_limit);
            (
                resp.body.len() as u64,
                matched.map_err(|e| ScrapeFailure {
                    reason: e.reason(),
                    message: e.to_string(),
                }),
            )
        }
    };
    (at, started.elapsed().as_secs_f64(), result.0, result.1)
}
