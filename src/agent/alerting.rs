//! The alerting task: turns the evaluator's snapshots and probe results into alerts
//! ([`Alerter`]), alerts into notifications ([`Dispatcher`], silences, inhibition), and hands
//! notifications to the delivery workers; it is the only writer of alerting state and publishes
//! an immutable [`AlertingView`] for the API, the exporter and the CLI.
//!
//! **Durability.** Alert lifecycles, aggregation groups with their timers, the notification
//! log, silences, the Alertmanager client's resend state and the notifications in flight are
//! kept in a snapshot plus an append-only log of changes ([`super::journal`]): a notification
//! is handed to delivery only once its record is durable, a delivery outcome and an
//! evaluation's changes are recorded as they happen, and a silence change is answered only
//! once its record is durable. A restart, even after SIGKILL, therefore restores exactly what
//! was promised and what was done:
//! - an alert whose firing notification was confirmed is not paged again (the notification log
//!   says so), and its resolve is still sent when it resolves (its lifecycle survived);
//! - a group still waiting for `group_wait` keeps its deadline;
//! - a notification handed to delivery but not confirmed is handed over again at start
//!   (at-least-once; receivers dedup by group key where they can, e.g. PagerDuty's
//!   `dedup_key`).
//!
//! A state file that cannot be read stops the start with advice, as the engine checkpoint does:
//! starting empty would re-page everything that is firing and forget every silence.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::alert::Fingerprint;
use crate::alerter::Alerter;
use crate::clock::Clock;
use crate::config::AgentConfig;
use crate::http_client::HttpClient;
use crate::notify::alertmanager::{AlertmanagerClient, AlertmanagerSender};
use crate::notify::delivery::{
    Delivery, DeliveryConfig, DeliveryError, DeliveryHandle, DeliveryOutcome,
};
use crate::notify::dispatch::{Dispatcher, Receivers};
use crate::notify::inhibit::{Dependencies, Inhibitor};
use crate::notify::nflog::NflogKey;
use crate::notify::receiver;
use crate::notify::render::RenderContext;
use crate::notify::silence::{Silence, SilenceLimits, Silences};
use crate::notify::{Integration, Notification, SuppressReason};
use crate::rules::model::RuleSet;
use crate::shutdown::Shutdown;
use crate::time::Timestamp;

use super::journal::{self, AlertingState, Differ, Journal, JournalError, Record};
use crate::view::{
    AgentSnapshot, AlertingCounters, AlertingHandle, AlertingView, Command, CommandError,
    TierPhases,
};

/// One probe result, forwarded by the evaluator (threshold alerts need every result).
#[derive(Debug, Clone)]
pub struct ProbeResult {
    /// The probe's name.
    pub name: Arc<str>,
    /// When the check started.
    pub at: Timestamp,
    /// Whether it passed.
    pub success: bool,
}

/// Why alerting could not start.
#[derive(Debug, thiserror::Error)]
pub enum AlertingError {
    /// The state file exists but cannot be used.
    #[error(
        "the alerting state {path} cannot be restored: {source}. Starting anyway would re-page \
         every firing alert and forget every silence. Fix the file, or move it away to start \
         fresh (e.g. `mv {path} {path}.bad`)",
        path = path.display()
    )]
    State {
        /// The file.
        path: PathBuf,
        /// Why.
        source: JournalError,
    },
    /// A receiver could not be built (a missing secret, a bad URL).
    #[error("receiver: {0}")]
    Receiver(#[from] receiver::BuildError),
    /// The HTTP client for receivers could not be built.
    #[error("receivers' HTTP client: {0}")]
    Client(#[from] crate::http_client::ClientError),
    /// The routing tree names a receiver that does not exist.
    #[error("{0}")]
    Dispatch(#[from] crate::notify::dispatch::DispatchError),
    /// The Alertmanager client could not be built.
    #[error("alertmanager: {0}")]
    Alertmanager(#[from] crate::notify::alertmanager::AlertmanagerError),
}

/// A command's answer, held until its change is durable and published.
enum Reply {
    Set(
        oneshot::Sender<Result<String, CommandError>>,
        Result<String, CommandError>,
    ),
    Expire(
        oneshot::Sender<Result<(), CommandError>>,
        Result<(), CommandError>,
    ),
}

impl Reply {
    /// Answers with `e` instead of the outcome (the change was undone).
    fn fail(self, e: CommandError) {
        match self {
            Reply::Set(tx, _) => {
                let _ = tx.send(Err(e));
            }
            Reply::Expire(tx, _) => {
                let _ = tx.send(Err(e));
            }
        }
    }

    fn send(self) {
        // A caller that gave up waiting is no error.
        match self {
            Reply::Set(tx, r) => {
                let _ = tx.send(r);
            }
            Reply::Expire(tx, r) => {
                let _ = tx.send(r);
            }
        }
    }
}

/// The running alerting task.
pub struct Alerting {
    handle: AlertingHandle,
    task: JoinHandle<()>,
}

impl Alerting {
    /// Restores the state file and starts the task. `snapshots` are the evaluator's, `probes`
    /// its forwarded probe results. The task runs until the evaluator ends (its snapshot
    /// channel closes), so it always acts on the evaluator's last snapshot (the order is in
    /// [`crate::shutdown`]). Must be called inside a tokio runtime.
    pub fn start(
        cfg: &AgentConfig,
        rules: &RuleSet,
        snapshots: watch::Receiver<Arc<AgentSnapshot>>,
        probes: mpsc::Receiver<ProbeResult>,
        clock: Clock,
    ) -> Result<Alerting, AlertingError> {
        let now = clock.now();
        let external_url = cfg.external_url();
        let ctx = RenderContext::new(external_url.clone());
        let client = Arc::new(HttpClient::new()?);
        let mut lanes: Vec<(String, Vec<Arc<dyn Integration>>)> = Vec::new();
        let mut send_resolved: Receivers = BTreeMap::new();
        let mut kinds = BTreeMap::new();
        for rc in &cfg.alerting.receivers {
            let integrations = receiver::build_with(rc, &ctx, &client)?;
            for (idx, i) in integrations.iter().enumerate() {
                kinds.insert((rc.name.clone(), idx), i.kind());
            }
            send_resolved.insert(
                rc.name.clone(),
                integrations.iter().map(|i| i.send_resolved()).collect(),
            );
            lanes.push((rc.name.clone(), integrations));
        }
        let inhibitor = inhibitor_for(cfg, rules);
        let path = cfg.alerting_state_file();
        let (journal, saved) = Journal::open(
            &path,
            cfg.alerting.silence_retention,
            cfg.alerting.state_durability,
        )
        .map_err(|source| AlertingError::State {
            path: path.clone(),
            source,
        })?;
        let mut alerter = Alerter::new(rules, &external_url);
        let eval = cfg.evaluation_interval;
        let am = match &cfg.alerting.alertmanager {
            Some(c) => Some((
                AlertmanagerClient::new(c, eval)?,
                AlertmanagerSender::new(eval, c.resend_interval),
            )),
            None => None,
        };
        let route = cfg.alerting.route.clone();
        let (dispatcher, silences, in_flight, am, gone) = match saved {
            Some(st) => {
                let gone = alerter.restore(st.alerter, now);
                let d = Dispatcher::restore(
                    route,
                    inhibitor,
                    send_resolved.clone(),
                    st.dispatcher,
                    now,
                )?;
                let am = am.map(|(client, fresh)| (client, st.alertmanager.unwrap_or(fresh)));
                tracing::info!(
                    file = %path.display(),
                    in_flight = st.in_flight.len(),
                    silences = st.silences.iter().count(),
                    "restored alerting state"
                );
                (d, st.silences, st.in_flight, am, gone)
            }
            None => (
                Dispatcher::new(route, inhibitor, send_resolved.clone())?,
                Silences::new(cfg.alerting.silence_retention),
                Vec::new(),
                am,
                Default::default(),
            ),
        };
        let (outcome_tx, outcomes) = mpsc::unbounded_channel();
        let delivery = Delivery::new(DeliveryConfig::default(), lanes, outcome_tx);
        let deliver = delivery.handle();
        // Delivery's own stage: it stops only after alerting's last flush.
        let delivery_stop = Shutdown::new();
        let delivery_task = tokio::spawn(delivery.run(delivery_stop.requested()));
        let (commands_tx, commands) = mpsc::channel(16);
        let (view_tx, view) = watch::channel(Arc::new(AlertingView::default()));
        let (am_client, am_sender) = match am {
            Some((c, s)) => (Some(Arc::new(c)), Some(s)),
            None => (None, None),
        };
        let mut task = Task {
            cfg: cfg.clone(),
            clock,
            generation: None,
            alerter,
            dispatcher,
            silences,
            send_resolved,
            kinds,
            in_flight: BTreeMap::new(),
            deliver,
            am_client,
            am_sender,
            am_busy: false,
            counters: AlertingCounters::default(),
            flapping: BTreeSet::new(),
            tiers: Arc::new(TierPhases::default()),
            logged: BTreeSet::new(),
            last_save_ms: None,
            seen_syncs: 0,
            journal: Some(journal),
            differ: Differ::default(),
            pending: Vec::new(),
            parts: ViewParts::default(),
            pending_alerts: 0,
        };
        task.dispatcher.upsert(gone.alerts, now);
        task.tiers = Arc::new(task.alerter.tier_phases());
        task.pending_alerts = task.alerter.pending_count();
        // What the log holds is the state as restored: remember it without writing it again.
        let mut seen = Vec::new();
        if let Err(e) = task.differ.diff(
            task.alerter.state(),
            &task.dispatcher,
            task.am_sender.as_ref(),
            &mut seen,
        ) {
            tracing::error!(error = %e, "alerting state not digested; the first evaluation records it all");
        }
        // Hand over again what was promised before the restart but not confirmed.
        for (idx, n) in in_flight {
            task.submit(idx, n);
        }
        let handle = AlertingHandle {
            commands: commands_tx,
            view,
        };
        let join = tokio::spawn(task.run(
            snapshots,
            probes,
            commands,
            outcomes,
            view_tx,
            delivery_stop,
            delivery_task,
        ));
        Ok(Alerting { handle, task: join })
    }

    /// The API's handle.
    pub fn handle(&self) -> AlertingHandle {
        self.handle.clone()
    }

    /// Waits for the task's end, which the evaluator's end starts: it processes the last
    /// snapshot, flushes what is due, lets delivery finish within its grace period, records
    /// the outcomes and saves the state.
    pub async fn shutdown(self) {
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "alerting task ended abnormally");
        }
    }
}

/// The inhibitor for a config and a rule set (dependencies come from the rules' probes).
fn inhibitor_for(cfg: &AgentConfig, rules: &RuleSet) -> Inhibitor {
    Inhibitor::new(
        cfg.alerting.inhibit_rules.clone(),
        cfg.alerting.default_inhibit_rules,
        Dependencies::from_rules(rules),
    )
}

/// A random UUID v4 for a new silence (uniqueness, not secrecy, is what matters).
fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    for x in &mut b {
        *x = fastrand::u8(..);
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

struct Task {
    cfg: AgentConfig,
    /// The agent's clock: alert, silence and delivery instants.
    clock: Clock,
    /// The rules generation and SLO set ([`crate::view::RulesStatus::slo_set`]) the alert
    /// definitions were built from.
    generation: Option<(u64, u64)>,
    alerter: Alerter,
    dispatcher: Dispatcher,
    silences: Silences,
    send_resolved: Receivers,
    /// Integration type by (receiver, index), for counters and logs.
    kinds: BTreeMap<(String, usize), &'static str>,
    /// The notifications handed to delivery and not confirmed, at most one per integration
    /// and group (a newer flush replaces the older one), by (integration, receiver, group
    /// key): a burst of outcomes finds each in O(log n), not by a scan of them all.
    in_flight: BTreeMap<InFlightKey, Notification>,
    deliver: DeliveryHandle,
    am_client: Option<Arc<AlertmanagerClient>>,
    am_sender: Option<AlertmanagerSender>,
    am_busy: bool,
    counters: AlertingCounters,
    flapping: BTreeSet<Fingerprint>,
    /// Tier phases as of the newest evaluation (lifecycles change only there).
    tiers: Arc<TierPhases>,
    /// (alert, receiver, reason) suppressions already logged, so a silenced alert is logged
    /// once, not at every flush.
    logged: BTreeSet<(Fingerprint, String, &'static str)>,
    /// The last durable commit (ms since the epoch).
    last_save_ms: Option<i64>,
    /// Group commits seen so far.
    seen_syncs: u64,
    /// The state's writer (`None` only after the final close).
    journal: Option<Journal>,
    /// What the log holds of the evaluation-driven state.
    differ: Differ,
    /// Encoded records not handed to the journal yet.
    pending: Vec<u8>,
    /// The view's costly parts, kept until they change.
    parts: ViewParts,
    /// Pending (not yet firing) alerts as of the newest evaluation.
    pending_alerts: usize,
}

/// (integration, receiver, group key) of a notification in flight.
type InFlightKey = (usize, String, String);

fn in_flight_key(integration: usize, n: &Notification) -> InFlightKey {
    (integration, n.receiver.clone(), n.group_key.clone())
}

/// A silence change's undo: each touched silence's previous value, in the order touched.
type Undo = Vec<(String, Option<Silence>)>;

type AmResult = (
    Vec<crate::alert::Alert>,
    Timestamp,
    Result<(), crate::notify::SendError>,
);

impl Task {
    #[allow(clippy::too_many_arguments)]
    async fn run(
        mut self,
        mut snapshots: watch::Receiver<Arc<AgentSnapshot>>,
        mut probes: mpsc::Receiver<ProbeResult>,
        mut commands: mpsc::Receiver<Command>,
        mut outcomes: mpsc::UnboundedReceiver<DeliveryOutcome>,
        view_tx: watch::Sender<Arc<AlertingView>>,
        delivery_stop: Shutdown,
        mut delivery_task: JoinHandle<()>,
    ) {
        let (am_tx, mut am_rx) = mpsc::unbounded_channel::<AmResult>();
        let mut am_tick = tokio::time::interval(Duration::from_secs(1));
        am_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first snapshot is already there; evaluate it at once.
        snapshots.mark_changed();
        // Answers to commands wait until the change is durable and visible in the view, so a
        // client that was told "done" reads its own change and it survives a crash.
        let mut replies: Vec<Reply> = Vec::new();
        // The previous values of the silences the pending commands touched, restored (newest
        // first) when their records cannot be made durable.
        let mut undo: Undo = Vec::new();
        // The pending commands' records, committed on their own so that a failure drops (and
        // undoes) only them.
        let mut changes: Vec<u8> = Vec::new();
        loop {
            // Probe results first, whatever else is busy: outcomes win the biased select below,
            // and a burst of them must not leave the results queue to fill up and drop.
            self.drain_probes(&mut probes);
            let wait = self.until_next_flush();
            // Probe results only feed thresholds: no record, no new view (there may be many).
            let mut quiet = false;
            tokio::select! {
                biased;
                Some(o) = outcomes.recv() => {
                    self.outcome(o);
                    // Outcomes come in bursts: every one queued goes into this commit.
                    while let Ok(o) = outcomes.try_recv() {
                        self.outcome(o);
                    }
                }
                Some(cmd) = commands.recv() => {
                    replies.push(self.command(cmd, &mut undo, &mut changes));
                    // Group commit: the commands that queued up meanwhile share one write.
                    while let Ok(cmd) = commands.try_recv() {
                        replies.push(self.command(cmd, &mut undo, &mut changes));
                    }
                }
                Some(p) = probes.recv() => {
                    self.alerter.observe_probe(&p.name, p.at, p.success);
                    self.drain_probes(&mut probes);
                    quiet = true;
                }
                changed = snapshots.changed() => match changed {
                    Ok(()) => {
                        let snap = snapshots.borrow_and_update().clone();
                        self.evaluate(&snap, Some(&mut probes));
                    }
                    // The evaluator has ended (shutdown) after publishing its last snapshot.
                    Err(_) => break,
                },
                Some(r) = am_rx.recv() => self.am_done(r),
                _ = am_tick.tick(), if self.am_client.is_some() && !self.am_busy => {
                    // Starting a push changes nothing to record or show; its result does.
                    self.am_push(&am_tx);
                    quiet = true;
                }
                _ = tokio::time::sleep(wait) => self.flush(Some(&mut probes)).await,
            }
            if quiet {
                continue;
            }
            // Changes nobody waits for: written with the next group commit.
            self.hand_over();
            if !replies.is_empty() {
                let saved = self
                    .commit(std::mem::take(&mut changes), true, Some(&mut probes))
                    .await;
                if let Err(e) = saved {
                    for (id, before) in undo.drain(..).rev() {
                        self.silences.put(&id, before);
                    }
                    tracing::error!(error = %e, "silence change undone: it could not be made durable");
                    for r in replies.drain(..) {
                        r.fail(CommandError::NotSaved(e.clone()));
                    }
                }
                undo.clear();
            }
            self.maybe_compact();
            self.note_commits();
            self.drain_probes(&mut probes);
            let _ = view_tx.send(Arc::new(self.view()));
            for r in replies.drain(..) {
                r.send();
            }
        }
        // Shutdown: the evaluator has published its last snapshot; act on it, send what is
        // due, then give delivery its grace period and record every outcome.
        while let Ok(p) = probes.try_recv() {
            self.alerter.observe_probe(&p.name, p.at, p.success);
        }
        let snap = snapshots.borrow_and_update().clone();
        self.evaluate(&snap, None);
        self.flush(None).await;
        delivery_stop.trigger();
        loop {
            tokio::select! {
                Some(o) = outcomes.recv() => self.outcome(o),
                _ = &mut delivery_task => break,
            }
        }
        while let Ok(o) = outcomes.try_recv() {
            self.outcome(o);
        }
        self.close().await;
        let _ = view_tx.send(Arc::new(self.view()));
        tracing::info!(
            in_flight = self.in_flight.len(),
            "alerting stopped; state saved"
        );
    }

    /// Counts the probe results already queued (at most a queue's worth, so the loop keeps
    /// turning).
    fn drain_probes(&mut self, probes: &mut mpsc::Receiver<ProbeResult>) {
        for _ in 0..probes.max_capacity() {
            let Ok(p) = probes.try_recv() else {
                break;
            };
            self.alerter.observe_probe(&p.name, p.at, p.success);
        }
    }

    /// [`Task::drain_probes`] when there is a receiver.
    fn drain_some(&mut self, probes: &mut Option<&mut mpsc::Receiver<ProbeResult>>) {
        if let Some(p) = probes.as_deref_mut() {
            self.drain_probes(p);
        }
    }

    /// Time until the dispatcher's next flush (capped, so a clock jump is noticed).
    fn until_next_flush(&self) -> Duration {
        let cap = Duration::from_secs(60);
        match self.dispatcher.next_deadline() {
            Some(t) => {
                let ms = t.millis().saturating_sub(self.clock.now().0).max(0) as u64;
                Duration::from_millis(ms).min(cap)
            }
            None => cap,
        }
    }

    /// `probes`: results queued meanwhile are taken between the steps, each of which costs
    /// the alerts at 100,000 SLOs.
    fn evaluate(
        &mut self,
        snap: &AgentSnapshot,
        mut probes: Option<&mut mpsc::Receiver<ProbeResult>>,
    ) {
        let now = self.clock.now();
        // A reload, or instances of grouped rules created or aged out: the alerts defined
        // change (an aged-out instance's firing alerts resolve).
        let generation = (snap.rules_status.generation, snap.rules_status.slo_set);
        if self.generation != Some(generation) {
            if let Some((rules_generation, _)) = self.generation {
                let gone = self.alerter.reload(&snap.rules, now);
                self.dispatcher.upsert(gone.alerts, now);
                // Routes and inhibitions come from the config and the probes: only a reload
                // changes them (instances of grouped rules are never probe-fed).
                if rules_generation != generation.0 {
                    let inhibitor = inhibitor_for(&self.cfg, &snap.rules);
                    if let Err(e) = self.dispatcher.reload(
                        self.cfg.alerting.route.clone(),
                        inhibitor,
                        self.send_resolved.clone(),
                        now,
                    ) {
                        tracing::error!(
                            error = %e,
                            "alerting reload failed; keeping the old routes"
                        );
                    }
                }
            }
            self.generation = Some(generation);
        }
        let set = self.alerter.evaluate(snap, snap.at);
        self.drain_some(&mut probes);
        for t in &set.transitions {
            self.counters.transitions += 1;
            let name = t.labels.get("alertname").map_or("", String::as_str);
            tracing::info!(
                alert = %name,
                fingerprint = %t.fingerprint,
                labels = %crate::alert::labels_string(&t.labels),
                from = %t.from,
                to = %t.to,
                "alert state changed"
            );
        }
        let flapping: BTreeSet<Fingerprint> = set.flapping.iter().copied().collect();
        for fp in flapping.difference(&self.flapping) {
            *self
                .counters
                .suppressed
                .entry(SuppressReason::Flapping.key())
                .or_default() += 1;
            tracing::warn!(
                fingerprint = %fp,
                reason = SuppressReason::Flapping.key(),
                "alert is flapping: held firing, not re-notified until it settles"
            );
        }
        self.flapping = flapping;
        self.tiers = Arc::new(self.alerter.tier_phases());
        self.pending_alerts = self.alerter.pending_count();
        if let Some(s) = self.am_sender.as_mut() {
            s.update(&set.alerts, now);
        }
        self.dispatcher.upsert(set.alerts, now);
        self.silences.gc(now);
        self.drain_some(&mut probes);
        self.record_evaluation();
    }

    /// Records what the evaluation changed in lifecycles, stored alerts and groups.
    fn record_evaluation(&mut self) {
        if let Err(e) = self.differ.diff(
            self.alerter.state(),
            &self.dispatcher,
            self.am_sender.as_ref(),
            &mut self.pending,
        ) {
            tracing::error!(error = %e, "alerting state changes not recorded");
        }
    }

    /// Queues one change for the journal.
    fn record(&mut self, r: Record) {
        if let Err(e) = journal::encode_record(&r, &mut self.pending) {
            tracing::error!(error = %e, "alerting state change not recorded");
        }
    }

    /// Hands the queued changes to the journal without waiting.
    fn hand_over(&mut self) {
        if let Some(j) = &self.journal {
            j.append(std::mem::take(&mut self.pending));
        }
    }

    /// Hands `bytes` to the journal and waits until they are durable (see
    /// [`Journal::commit`] for `undo_on_failure`).
    /// Probe results arriving meanwhile are counted (`probes`), so a long write (a burst of
    /// notifications) does not fill their queue.
    async fn commit(
        &mut self,
        bytes: Vec<u8>,
        undo_on_failure: bool,
        mut probes: Option<&mut mpsc::Receiver<ProbeResult>>,
    ) -> Result<(), String> {
        if bytes.is_empty() {
            return Ok(());
        }
        let Some(j) = &self.journal else {
            return Err("the alerting journal is closed".to_owned());
        };
        let ack = j.commit(bytes, undo_on_failure);
        // Waited on the blocking pool, which (unlike a wait on another thread) keeps a paused
        // test clock from jumping ahead while the disk works, as the whole-file save did.
        let mut done = tokio::task::spawn_blocking(move || ack.blocking_recv());
        let r = loop {
            let next = async {
                match probes.as_deref_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = &mut done => break r,
                p = next => match p {
                    Some(p) => {
                        self.alerter.observe_probe(&p.name, p.at, p.success);
                    }
                    // The evaluator has ended: nothing more to count.
                    None => probes = None,
                },
            }
        };
        let r = match r {
            Ok(Ok(r)) => r,
            _ => Err("the alerting journal's writer is gone".to_owned()),
        };
        if r.is_ok() {
            self.last_save_ms = Some(self.clock.now().0);
        }
        r
    }

    /// Notes commits made without waiting (the writer keeps no clock): the last save is when
    /// they were noticed, at most one loop turn late.
    fn note_commits(&mut self) {
        if let Some(s) = self.journal.as_ref().map(Journal::stats)
            && s.syncs > self.seen_syncs
        {
            self.seen_syncs = s.syncs;
            self.last_save_ms = Some(self.clock.now().0);
        }
    }

    /// Starts a compaction when the log has grown enough: the state is copied here, after
    /// every record before it was handed over, and written beside the task.
    fn maybe_compact(&mut self) {
        if self.journal.as_ref().is_some_and(Journal::wants_compaction) {
            self.hand_over();
            let state = self.state();
            if let Some(j) = &self.journal {
                j.compact(state);
            }
        }
    }

    /// The final save: every change, then the whole state as the snapshot with an empty log.
    async fn close(&mut self) {
        self.record_evaluation();
        self.hand_over();
        self.note_commits();
        let Some(j) = self.journal.take() else {
            return;
        };
        self.counters.state_save_failures += j.stats().failures;
        let state = self.state();
        match tokio::task::spawn_blocking(move || j.close(state)).await {
            Ok(Ok(())) => self.last_save_ms = Some(self.clock.now().0),
            Ok(Err(e)) => {
                self.counters.state_save_failures += 1;
                tracing::error!(error = %e, "alerting state snapshot not written at shutdown; the log holds every change");
            }
            Err(e) => tracing::error!(error = %e, "the alerting state's final save failed"),
        }
    }

    /// Runs due flushes: write-ahead (in flight, committed) before handing over to delivery.
    async fn flush(&mut self, mut probes: Option<&mut mpsc::Receiver<ProbeResult>>) {
        let now = self.clock.now();
        let flush = self.dispatcher.tick(now, &self.silences);
        self.drain_some(&mut probes);
        for s in &flush.suppressed {
            let key = s.reason.key();
            *self.counters.suppressed.entry(key).or_default() += 1;
            let first = self.logged.insert((s.fingerprint, s.receiver.clone(), key));
            if s.reason == SuppressReason::Deduplicated || !first {
                tracing::debug!(fingerprint = %s.fingerprint, receiver = %s.receiver, reason = key, "suppressed");
            } else {
                tracing::info!(
                    fingerprint = %s.fingerprint,
                    labels = %crate::alert::labels_string(&s.labels),
                    receiver = %s.receiver,
                    reason = key,
                    by = %s.by.join(","),
                    "alert suppressed"
                );
            }
        }
        if flush.notifications.is_empty() {
            return;
        }
        for o in &flush.notifications {
            self.in_flight.insert(
                in_flight_key(o.integration, &o.notification),
                o.notification.clone(),
            );
            self.record(Record::InFlight {
                integration: o.integration,
                group_key: o.notification.group_key.clone(),
                receiver: o.notification.receiver.clone(),
                notification: Some(o.notification.clone()),
            });
        }
        // Write-ahead: durable before delivery may start. On failure the records stay queued
        // in the journal for a retry, and delivery goes ahead (as a failed save always did).
        let bytes = std::mem::take(&mut self.pending);
        let _ = self.commit(bytes, false, probes.as_deref_mut()).await;
        for o in flush.notifications {
            self.submit(o.integration, o.notification);
        }
        self.drain_some(&mut probes);
    }

    fn submit(&mut self, idx: usize, n: Notification) {
        tracing::info!(
            receiver = %n.receiver,
            integration = idx,
            group = %n.group_key,
            reason = n.reason.key(),
            firing = n.firing().count(),
            resolved = n.resolved().count(),
            inhibited = n.inhibited,
            "notifying"
        );
        let key = in_flight_key(idx, &n);
        if self.in_flight.get(&key) != Some(&n) {
            self.in_flight.insert(key.clone(), n.clone());
        }
        if let Err(e) = self.deliver.submit(idx, n.clone()) {
            // No outcome follows, so it is not in flight: the next flush decides again.
            if self.in_flight.get(&key) == Some(&n) {
                self.in_flight.remove(&key);
            }
            self.record(Record::InFlight {
                integration: idx,
                group_key: n.group_key.clone(),
                receiver: n.receiver.clone(),
                notification: None,
            });
            tracing::error!(error = %e, "notification not queued; the next flush decides again");
        }
    }

    fn outcome(&mut self, o: DeliveryOutcome) {
        let n = &o.notification;
        let key = in_flight_key(o.integration_idx, n);
        // Only this notification: an outcome of an older one leaves its successor in flight.
        if self.in_flight.get(&key) == Some(n) {
            self.in_flight.remove(&key);
            self.record(Record::InFlight {
                integration: o.integration_idx,
                group_key: n.group_key.clone(),
                receiver: n.receiver.clone(),
                notification: None,
            });
        }
        let kind = self
            .kinds
            .get(&(o.receiver.clone(), o.integration_idx))
            .copied()
            .unwrap_or("unknown");
        match &o.result {
            Ok(()) => {
                self.dispatcher
                    .mark_sent(o.integration_idx, n, self.clock.now());
                let key = NflogKey {
                    group_key: n.group_key.clone(),
                    receiver: n.receiver.clone(),
                    integration: o.integration_idx,
                };
                if let Some(entry) = self.dispatcher.nflog().entry(&key).cloned() {
                    self.record(Record::Sent { key, entry });
                }
                *self
                    .counters
                    .notifications
                    .entry((o.receiver.clone(), kind, n.reason.key()))
                    .or_default() += 1;
                tracing::info!(
                    receiver = %o.receiver,
                    integration = kind,
                    group = %n.group_key,
                    reason = n.reason.key(),
                    attempts = o.attempts,
                    "notification delivered"
                );
            }
            // Not a failure: the group's newer notification is delivered in its place.
            Err(DeliveryError::Superseded) => {
                *self
                    .counters
                    .superseded
                    .entry((o.receiver.clone(), kind))
                    .or_default() += 1;
                tracing::debug!(
                    receiver = %o.receiver,
                    integration = kind,
                    group = %n.group_key,
                    "notification superseded by a newer one for the same group"
                );
            }
            Err(e) => {
                *self
                    .counters
                    .failed
                    .entry((o.receiver.clone(), kind, e.key()))
                    .or_default() += 1;
                tracing::warn!(
                    receiver = %o.receiver,
                    integration = kind,
                    group = %n.group_key,
                    error = %e,
                    "notification not delivered; the group's next flush decides again"
                );
            }
        }
    }

    /// Applies a command: its records go to `changes`, the touched silences' previous values
    /// to `undo`; the answer is sent by the caller once the change is durable and published.
    fn command(&mut self, cmd: Command, undo: &mut Undo, changes: &mut Vec<u8>) -> Reply {
        let now = self.clock.now();
        let mut touched: Vec<String> = Vec::new();
        let reply = match cmd {
            Command::SetSilence(req, reply) => {
                let limits = SilenceLimits {
                    max_count: self.cfg.api.max_silences,
                    max_duration: self.cfg.api.max_silence_duration,
                };
                let before = req
                    .id
                    .as_ref()
                    .map(|id| (id.clone(), self.silences.get(id).cloned()));
                let r = self
                    .silences
                    .set_within_dropping(req, now, &limits, uuid_v4);
                if let Ok((id, dropped)) = &r {
                    tracing::info!(silence = %id, "silence set");
                    let start = undo.len();
                    // Undone newest first: the new silence goes, the replaced one comes back.
                    undo.extend(before);
                    undo.push((id.clone(), None));
                    for d in dropped {
                        undo.push((d.id.clone(), Some(d.clone())));
                    }
                    touched = undo[start..].iter().map(|(id, _)| id.clone()).collect();
                }
                Reply::Set(reply, r.map(|(id, _)| id).map_err(CommandError::from))
            }
            Command::ExpireSilence(id, reply) => {
                let before = self.silences.get(&id).cloned();
                let r = self.silences.expire(&id, now);
                if r.is_ok() {
                    tracing::info!(silence = %id, "silence expired");
                    undo.push((id.clone(), before));
                    touched.push(id);
                }
                Reply::Expire(reply, r.map_err(CommandError::from))
            }
        };
        touched.sort();
        touched.dedup();
        for id in touched {
            let silence = self.silences.get(&id).cloned();
            if let Err(e) = journal::encode_record(&Record::Silence { id, silence }, changes) {
                tracing::error!(error = %e, "silence change not recorded");
            }
        }
        reply
    }

    fn am_push(&mut self, tx: &mpsc::UnboundedSender<AmResult>) {
        let (Some(client), Some(sender)) = (self.am_client.clone(), self.am_sender.as_ref()) else {
            return;
        };
        let now = self.clock.now();
        let due = sender.due(now);
        if due.is_empty() {
            return;
        }
        self.am_busy = true;
        let tx = tx.clone();
        tokio::spawn(async move {
            let r = client.push(&due, now).await;
            let _ = tx.send((due, now, r));
        });
    }

    fn am_done(&mut self, (alerts, at, result): AmResult) {
        self.am_busy = false;
        match result {
            Ok(()) => {
                if let Some(s) = self.am_sender.as_mut() {
                    s.mark_sent(&alerts, at);
                }
                self.record(Record::Alertmanager(self.am_sender.clone()));
            }
            Err(e) => {
                self.counters.alertmanager_push_failures += 1;
                tracing::warn!(error = %e, alerts = alerts.len(), "Alertmanager push failed; retrying at the next resend");
            }
        }
    }

    fn state(&self) -> AlertingState {
        AlertingState {
            alerter: self.alerter.state().clone(),
            dispatcher: self.dispatcher.state(),
            silences: self.silences.clone(),
            alertmanager: self.am_sender.clone(),
            in_flight: self
                .in_flight
                .iter()
                .map(|((idx, _, _), n)| (*idx, n.clone()))
                .collect(),
        }
    }

    fn view(&mut self) -> AlertingView {
        let mut counters = self.counters.clone();
        if let Some(s) = self.journal.as_ref().map(Journal::stats) {
            counters.state_save_failures += s.failures;
        }
        let now = self.clock.now();
        self.parts.refresh(now, &self.dispatcher, &self.silences);
        AlertingView {
            integrations: self.deliver.stats(),
            counters,
            last_save_ms: self.last_save_ms,
            ..self
                .parts
                .view(now, &self.flapping, &self.tiers, self.pending_alerts)
        }
    }
}

/// The parts of the view that cost O(alerts) or O(silences) to build (alerts with their
/// status, groups, silences), kept and shared by every view until what they show changes: the
/// dispatcher's or the silences' change count moves, or time reaches a silence's start or end
/// or an alert's lease end. A loop turn that changed none of it (a delivery outcome, a probe
/// result, an Alertmanager push) publishes its view without rebuilding them.
#[derive(Debug, Clone, Default)]
struct ViewParts {
    /// (dispatcher changes, silences changes) they were built from.
    built_from: Option<(u64, u64)>,
    /// They hold while the clock is before this instant.
    valid_until: Option<Timestamp>,
    alerts: Arc<Vec<crate::notify::dispatch::AlertView>>,
    groups: Arc<Vec<crate::notify::dispatch::GroupView>>,
    silences: Arc<Vec<Silence>>,
}

impl ViewParts {
    /// Brings the parts up to `now`: rebuilt when anything they show changed, else kept.
    /// Returns whether they were rebuilt.
    fn refresh(&mut self, now: Timestamp, dispatcher: &Dispatcher, silences: &Silences) -> bool {
        let from = (dispatcher.changes(), silences.changes());
        let fresh = self.built_from == Some(from) && self.valid_until.is_none_or(|t| now < t);
        if fresh {
            return false;
        }
        *self = ViewParts::build(now, dispatcher, silences);
        true
    }

    fn build(now: Timestamp, dispatcher: &Dispatcher, silences: &Silences) -> ViewParts {
        let valid_until = match (dispatcher.next_lease_end(now), silences.next_change(now)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        ViewParts {
            built_from: Some((dispatcher.changes(), silences.changes())),
            valid_until,
            alerts: Arc::new(dispatcher.alerts_view(now, silences)),
            groups: Arc::new(dispatcher.groups()),
            silences: Arc::new(silences.iter().cloned().collect()),
        }
    }

    /// The decisions part of a view at `now` with these parts.
    fn view(
        &self,
        now: Timestamp,
        flapping: &BTreeSet<Fingerprint>,
        tiers: &Arc<TierPhases>,
        pending: usize,
    ) -> AlertingView {
        AlertingView {
            at: now,
            alerts: self.alerts.clone(),
            flapping: flapping.clone(),
            tiers: tiers.clone(),
            silences: self.silences.clone(),
            groups: self.groups.clone(),
            pending,
            ..AlertingView::default()
        }
    }
}

#[cfg(test)]
impl AlertingView {
    /// The decisions part of a view at `now` (alerts with their status, flapping, tier
    /// phases, silences, groups, pending count), without delivery statistics and counters,
    /// built whole.
    pub(crate) fn decided(
        now: Timestamp,
        alerter: &Alerter,
        dispatcher: &Dispatcher,
        silences: &Silences,
        flapping: &BTreeSet<Fingerprint>,
        tiers: &Arc<TierPhases>,
    ) -> AlertingView {
        ViewParts::build(now, dispatcher, silences).view(
            now,
            flapping,
            tiers,
            alerter.pending_count(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::lifecycle::State;
    use crate::alert::names::SLO_BURN_RATE;
    use crate::evaluator::{Evaluator, Observation};
    use crate::export::prometheus::PageOptions;
    use crate::exposition::{Format, parse_owned};
    use crate::probe::{Failure, Phases, ProbeOutcome};
    use http_body_util::BodyExt as _;
    use serde_json::Value;

    /// One tier with `for`, `keep_firing_for` and flap damping; every other alert off.
    const FLAPPY: &str = r#"
version: burnwatch/v1
service: shop
probes:
  - name: health
    interval: 1s
    timeout: 500ms
    tcp: {address: "shop.internal:443"}
    alert: false
slos:
  - name: up
    objective: 99
    indicator: {probe: health}
    alerting:
      budget_exhausted: false
      no_data: false
      flap: {window: 30m, max_changes: 3, hold: 10m}
      tiers:
        page_fast: {disabled: true}
        page_slow: {disabled: true}
        ticket_fast: {disabled: true}
        ticket_slow: {disabled: true}
        fast: {long: 5m, short: 1m, burn_rate: 10, severity: page, for: 2m, keep_firing_for: 3m}
"#;

    const T0: i64 = 1_779_926_400_000;
    const M: i64 = 60_000;

    async fn body(r: crate::server::Resp) -> String {
        let b = r.into_body().collect().await.expect("body").to_bytes();
        String::from_utf8(b.to_vec()).expect("utf-8")
    }

    /// Fails on a Rust enum shape (`{"Firing": {...}}`, `"Quiet"`-style keys): API keys are
    /// lower-case names, states plain strings.
    fn assert_plain(v: &Value, at: &str) {
        match v {
            Value::Object(o) => {
                for (k, x) in o {
                    assert!(
                        !k.starts_with(|c: char| c.is_ascii_uppercase()),
                        "{at}: enum-shaped key {k:?} in {v}"
                    );
                    assert_plain(x, at);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| assert_plain(x, at)),
            _ => {}
        }
    }

    /// What each reader shows for the tier alert at one step.
    #[derive(Debug, Clone, PartialEq)]
    struct Shown {
        /// `burnwatch_slo_alert_state` on /metrics.
        metric: f64,
        /// The tier's `state` in /api/v1/slos.
        slos: String,
        /// Listed by /api/v1/alerts (firing), with `status.flapping`.
        listed: Option<bool>,
        /// Whether the newest notification about the alert said it fires.
        notified_firing: bool,
    }

    /// Burn crossing the factor up and down, with `for`, `keep_firing_for` and flap damping:
    /// at every evaluation /metrics, /api/v1/slos, /api/v1/alerts and the notifications sent
    /// show the one state the alert's lifecycle decided.
    #[tokio::test]
    async fn metrics_api_and_notifications_show_one_alert_state_at_every_step() {
        let rules = crate::rules::load_str("r.yaml", FLAPPY).expect("rules");
        let route = crate::notify::route::parse_route(
            std::path::Path::new("am.yml"),
            "receiver: oncall\ngroup_by: [alertname]\ngroup_wait: 0s\ngroup_interval: 1s\nrepeat_interval: 24h\n",
        )
        .expect("route");
        let receivers: Receivers = [("oncall".to_string(), vec![true])].into_iter().collect();
        let mut ev = Evaluator::new(rules.clone(), Timestamp(T0));
        let mut alerter = Alerter::new(&rules, "http://bw");
        let mut dispatcher = Dispatcher::new(
            route,
            Inhibitor::new(Vec::new(), false, Dependencies::default()),
            receivers,
        )
        .expect("dispatcher");
        let silences = Silences::new(crate::time::Dur::from_hours(1));
        let fp = alerter
            .defined()
            .into_iter()
            .find(|(_, l)| l.get("alertname").map(String::as_str) == Some(SLO_BURN_RATE))
            .expect("the tier alert")
            .0;
        // Minutes with half the checks failing (burn 50 against a 1% budget); the rest pass.
        // The condition needs the newest minute bad and at least two bad minutes in the last
        // five. 10 healthy minutes; 4 bad (pending from the 2nd, firing at the 4th: `for` 2m);
        // a 1-minute dip (held by keep_firing_for) and back; 4 good (held, resolved at the 4th:
        // change 2); then 4 bad / 4 good three times: fire (change 3), resolve (change 4 of
        // at most 3 in 30m: flapping, held firing) and on; then healthy until it settles (10m
        // stable) and resolves.
        let mut bad = vec![false; 10];
        bad.extend([true; 4]);
        bad.extend([false, true, true]);
        bad.extend([false; 4]);
        for _ in 0..3 {
            bad.extend([true, true, true, true, false, false, false, false]);
        }
        bad.extend([false; 15]);
        let mut seen: Vec<String> = Vec::new();
        let mut notified_firing = false;
        let mut resolved_sent = 0;
        let g = ev.generation();
        for (m, &b) in bad.iter().enumerate() {
            let m = m as i64;
            for s in 0..60 {
                let at = T0 + m * M + s * 1000;
                let success = !(b && s % 2 == 0);
                ev.apply(Observation::Probe {
                    generation: g,
                    name: Arc::from("health"),
                    outcome: ProbeOutcome {
                        started_ms: at,
                        success,
                        duration_secs: 0.01,
                        phases: Phases::default(),
                        status: None,
                        cert_not_after_ms: None,
                        failure: (!success).then(|| Failure::Refused("shop.internal:443".into())),
                    },
                });
            }
            // On the minute boundary, a window of N minutes is exactly the last N minutes.
            let now = Timestamp(T0 + (m + 1) * M);
            let snap = Arc::new(ev.evaluate(now));
            // As the alerting task does it: decide, upsert, flush, deliver.
            let set = alerter.evaluate(&snap, now);
            let flapping: BTreeSet<Fingerprint> = set.flapping.iter().copied().collect();
            dispatcher.upsert(set.alerts, now);
            for o in dispatcher.tick(now, &silences).notifications {
                if let Some(a) = o.notification.alerts.iter().find(|a| a.fingerprint() == fp) {
                    notified_firing = a.ends_at.is_none();
                    if !notified_firing {
                        resolved_sent += 1;
                        let title = crate::notify::render::summary(&o.notification);
                        assert!(!title.contains("is burning"), "minute {m}: {title}");
                    }
                }
                dispatcher.mark_sent(o.integration, &o.notification, now);
            }
            let tiers = Arc::new(alerter.tier_phases());
            let view = Arc::new(AlertingView::decided(
                now,
                &alerter,
                &dispatcher,
                &silences,
                &flapping,
                &tiers,
            ));
            let page = PageOptions::default();
            let metrics = body(crate::server::route(&["metrics"], &snap, Some(&view), page)).await;
            let samples = parse_owned(metrics.as_bytes(), Format::OpenMetrics).expect("page");
            let metric = samples
                .iter()
                .find(|s| {
                    s.name == "burnwatch_slo_alert_state"
                        && s.labels.iter().any(|(k, v)| k == "tier" && v == "fast")
                })
                .expect("the tier's alert state")
                .value;
            let slos: Value = serde_json::from_str(
                &body(crate::server::route(
                    &["api", "v1", "slos"],
                    &snap,
                    Some(&view),
                    page,
                ))
                .await,
            )
            .expect("json");
            let detail: Value = serde_json::from_str(
                &body(crate::server::route(
                    &["api", "v1", "slos", "shop", "up"],
                    &snap,
                    Some(&view),
                    page,
                ))
                .await,
            )
            .expect("json");
            assert_eq!(detail["alerts"], slos["slos"][0]["alerts"]);
            assert_plain(&slos, "/api/v1/slos");
            assert_plain(&detail, "/api/v1/slos/shop/up");
            let tier = &slos["slos"][0]["alerts"][0];
            assert_eq!(tier["tier"], "fast");
            let alerts = crate::server::alerts_page(&view);
            assert_plain(&alerts, "/api/v1/alerts");
            for path in ["probes", "targets", "status"] {
                let v: Value = serde_json::from_str(
                    &body(crate::server::route(
                        &["api", "v1", path],
                        &snap,
                        Some(&view),
                        page,
                    ))
                    .await,
                )
                .expect("json");
                assert_plain(&v, path);
            }
            let listed = alerts["alerts"]
                .as_array()
                .expect("alerts")
                .iter()
                .find(|a| a["fingerprint"] == fp.to_string())
                .map(|a| a["status"]["flapping"] == true);
            let shown = Shown {
                metric,
                slos: tier["state"].as_str().expect("plain state").to_owned(),
                listed,
                notified_firing,
            };
            let phase = tiers.get(&snap.slos[0].id, "fast");
            let want = Shown {
                metric: match phase.state() {
                    State::Pending => 1.0,
                    State::Firing | State::Flapping => 2.0,
                    State::Inactive | State::Resolved => 0.0,
                },
                slos: phase.state().to_string(),
                listed: phase
                    .is_firing()
                    .then_some(phase.state() == State::Flapping),
                notified_firing: phase.is_firing(),
            };
            assert_eq!(shown, want, "minute {m}: {phase:?}");
            let name = match (phase.state(), phase.held_since()) {
                (State::Firing, Some(_)) => "held".to_owned(),
                (s, _) => s.to_string(),
            };
            if seen.last() != Some(&name) {
                seen.push(name);
            }
        }
        // Every state was shown, in this order, and the resolve was sent.
        assert_eq!(
            seen,
            [
                "inactive", "pending", "firing", "held", "firing", "held", "resolved", "pending",
                "firing", "held", "flapping", "resolved"
            ],
            "{seen:?}"
        );
        assert_eq!(resolved_sent, 2);
    }

    proptest::proptest! {
        /// The view's kept parts always equal parts built whole at the same instant, over
        /// random alerts (some with leases ending later), resolves, flushes, confirmations,
        /// silences starting later, expiries and garbage collection; and a confirmation that
        /// releases nothing does not rebuild them.
        #[test]
        fn kept_view_parts_equal_parts_built_whole(
            ops in proptest::collection::vec((0u8..7, 0usize..4, 0i64..7), 1..60),
        ) {
            use crate::alert::{Alert, Matchers};
            use crate::notify::silence::SilenceRequest;
            use crate::rules::model::Labels;
            let route = crate::notify::route::parse_route(
                std::path::Path::new("am.yml"),
                "receiver: a\ngroup_by: [alertname]\ngroup_wait: 1s\ngroup_interval: 4s\n",
            )
            .expect("route");
            let mut d = Dispatcher::new(
                route,
                Inhibitor::new(Vec::new(), true, Dependencies::default()),
                [("a".to_string(), vec![true])].into_iter().collect(),
            )
            .expect("dispatcher");
            let mut silences = Silences::new(crate::time::Dur::from_secs(5));
            let mut parts = ViewParts::default();
            let mut now = 0i64;
            let mut n = 0;
            for (op, i, dt) in ops {
                now += dt;
                let at = Timestamp::from_secs(now);
                let labels: Labels = [("alertname".to_string(), format!("A{i}"))].into();
                let alert = |ends_at: Option<i64>| Alert {
                    labels: labels.clone(),
                    annotations: Labels::new(),
                    starts_at: at,
                    ends_at: ends_at.map(Timestamp::from_secs),
                    generator_url: String::new(),
                };
                let mut quiet_confirmation = false;
                match op {
                    0 => {
                        d.upsert([alert(None)], at);
                    }
                    1 => {
                        // A lease: resolves by itself `dt` later.
                        d.upsert([alert(Some(now + dt + 1))], at);
                    }
                    2 => {
                        d.upsert([alert(Some(now))], at);
                    }
                    3 => {
                        let f = d.tick(at, &silences);
                        parts.refresh(at, &d, &silences);
                        let before = d.changes();
                        for o in f.notifications {
                            d.mark_sent(o.integration, &o.notification, at);
                        }
                        quiet_confirmation = d.changes() == before;
                    }
                    4 => {
                        n += 1;
                        let req = SilenceRequest {
                            id: None,
                            matchers: Matchers::parse(&format!("alertname=\"A{i}\"")).expect("valid"),
                            starts_at: Some(Timestamp::from_secs(now + dt)),
                            ends_at: Timestamp::from_secs(now + dt + 3),
                            created_by: "t".into(),
                            comment: "t".into(),
                        };
                        silences.set(req, at, || format!("s{n}")).expect("valid");
                    }
                    5 => {
                        let first = silences.iter().next().map(|s| s.id.clone());
                        if let Some(id) = first {
                            let _ = silences.expire(&id, at);
                        }
                    }
                    _ => {
                        silences.gc(at);
                    }
                }
                let rebuilt = parts.refresh(at, &d, &silences);
                if quiet_confirmation {
                    proptest::prop_assert!(!rebuilt, "a confirmation releasing nothing rebuilt the view");
                }
                let whole = ViewParts::build(at, &d, &silences);
                proptest::prop_assert_eq!(&*parts.alerts, &*whole.alerts);
                proptest::prop_assert_eq!(&*parts.groups, &*whole.groups);
                proptest::prop_assert_eq!(&*parts.silences, &*whole.silences);
            }
        }
    }

    #[test]
    fn uuids_are_version_4() {
        let a = uuid_v4();
        let b = uuid_v4();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
        assert_eq!(a.matches('-').count(), 4);
    }
}
