//! Delivery: queues, retries, backoff and circuit breakers between the dispatcher and the
//! integrations.
//!
//! Each integration (one entry of a receiver, addressed by receiver name and integration index)
//! gets its own bounded queue and worker task, so a slow or failing Slack never delays a
//! PagerDuty page. The worker sends one notification at a time:
//!
//! - [`SendError::Retryable`] is retried with exponential backoff and full jitter (`initial`,
//!   ×2 per attempt, at most `max_backoff`), never sooner than the peer's `Retry-After`, up to
//!   `max_attempts`; [`SendError::Permanent`] is logged, counted and reported at once.
//! - A circuit breaker per integration opens after `breaker_threshold` consecutive retryable
//!   failures; while it is open no attempt is made (the notification waits at the head of the
//!   queue) until `breaker_cooldown` has passed, then one half-open attempt decides: success
//!   closes it, failure reopens it for another cool-down.
//! - Queue overflow: the policy is [`Overflow::DropOldest`] (the default: the newest state is
//!   what on-call needs) or [`Overflow::Reject`] (the submitter is told and keeps its own copy).
//!   A queued notification for the same group key is *replaced* by a newer one (it describes an
//!   older state of the same group), reported as [`DeliveryError::Superseded`].
//!
//! Every notification handed to [`DeliveryHandle::submit`] produces exactly one
//! [`DeliveryOutcome`] on the outcome channel, so the dispatcher marks a send done in its
//! notification log only on success (a write-ahead log can sit between). Shutdown stops
//! accepting, flushes what is queued within `shutdown_grace`, reports the rest as
//! [`DeliveryError::Shutdown`] and returns.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;

use crate::notify::{Integration, Notification, SendError};
use crate::time::Dur;

/// What to do when an integration's queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Drop the oldest queued notification (reported as [`DeliveryError::Overflow`]).
    DropOldest,
    /// Refuse the new one ([`SubmitError::QueueFull`]).
    Reject,
}

/// Retry, breaker, queue and shutdown settings (shared by every integration).
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryConfig {
    /// Notifications waiting per integration (default 64).
    pub queue_capacity: usize,
    /// What a full queue does (default [`Overflow::DropOldest`]).
    pub overflow: Overflow,
    /// The first retry's backoff ceiling (default 500ms); each retry doubles it.
    pub initial_backoff: Dur,
    /// The largest backoff ceiling (default 60s).
    pub max_backoff: Dur,
    /// Attempts per notification, the first included (default 10).
    pub max_attempts: u32,
    /// Bound of one attempt on top of the integration's own timeout (default 60s).
    pub attempt_timeout: Dur,
    /// Consecutive retryable failures that open the breaker (default 5).
    pub breaker_threshold: u32,
    /// How long an open breaker blocks attempts before a half-open probe (default 30s).
    pub breaker_cooldown: Dur,
    /// How long shutdown keeps delivering what is queued (default 10s).
    pub shutdown_grace: Dur,
}

impl Default for DeliveryConfig {
    fn default() -> DeliveryConfig {
        DeliveryConfig {
            queue_capacity: 64,
            overflow: Overflow::DropOldest,
            initial_backoff: Dur::from_millis(500),
            max_backoff: Dur::from_secs(60),
            max_attempts: 10,
            attempt_timeout: Dur::from_secs(60),
            breaker_threshold: 5,
            breaker_cooldown: Dur::from_secs(30),
            shutdown_grace: Dur::from_secs(10),
        }
    }
}

/// Why a notification was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The integration refused it for good (4xx, bad credentials, bad URL).
    #[error("permanent failure: {0}")]
    Permanent(String),
    /// Every attempt failed with a retryable error.
    #[error("gave up after {attempts} attempts; last error: {last}")]
    RetriesExhausted {
        /// Attempts made.
        attempts: u32,
        /// The last error.
        last: String,
    },
    /// Dropped from a full queue to make room for a newer notification.
    #[error("dropped: the queue was full ({capacity} waiting)")]
    Overflow {
        /// The queue capacity.
        capacity: usize,
    },
    /// A newer notification for the same group replaced it before it was sent.
    #[error("superseded by a newer notification for the same group")]
    Superseded,
    /// Shutdown's grace period ended first.
    #[error("not delivered before shutdown{}", last.as_deref().map(|l| format!("; last error: {l}")).unwrap_or_default())]
    Shutdown {
        /// The last error, when an attempt was made (or the breaker was open).
        last: Option<String>,
    },
}

impl DeliveryError {
    /// A short label value for metrics: `permanent`, `retries_exhausted`, `overflow`,
    /// `superseded`, `shutdown`.
    pub fn key(&self) -> &'static str {
        match self {
            DeliveryError::Permanent(_) => "permanent",
            DeliveryError::RetriesExhausted { .. } => "retries_exhausted",
            DeliveryError::Overflow { .. } => "overflow",
            DeliveryError::Superseded => "superseded",
            DeliveryError::Shutdown { .. } => "shutdown",
        }
    }
}

/// What happened to one submitted notification.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryOutcome {
    /// The receiver's name.
    pub receiver: String,
    /// The integration's index within the receiver.
    pub integration_idx: usize,
    /// The notification, as submitted.
    pub notification: Notification,
    /// Delivered, or why not.
    pub result: Result<(), DeliveryError>,
    /// Attempts made (0 when it never got to the integration).
    pub attempts: u32,
}

/// Why [`DeliveryHandle::submit`] refused a notification (no outcome follows).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// No such receiver or integration index.
    #[error("no integration {integration_idx} in receiver {receiver}")]
    UnknownIntegration {
        /// The receiver asked for.
        receiver: String,
        /// The index asked for.
        integration_idx: usize,
    },
    /// The queue is full and the policy is [`Overflow::Reject`].
    #[error("the queue of receiver {receiver} integration {integration_idx} is full")]
    QueueFull {
        /// The receiver.
        receiver: String,
        /// The integration.
        integration_idx: usize,
    },
    /// Delivery is shutting down.
    #[error("delivery is shutting down")]
    ShuttingDown,
}

/// A circuit breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BreakerState {
    /// Attempts are made.
    #[default]
    Closed,
    /// Attempts are held until the cool-down ends.
    Open,
    /// The cool-down ended; the next attempt decides.
    HalfOpen,
}

impl BreakerState {
    /// `closed`, `open` or `half_open`.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// Counters and state of one integration, for metrics and the API.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IntegrationStats {
    /// The receiver.
    pub receiver: String,
    /// The integration's index within the receiver.
    pub integration_idx: usize,
    /// `webhook`, `slack`, `pagerduty`, ...
    pub kind: &'static str,
    /// Notifications delivered.
    pub sent: u64,
    /// Notifications refused for good.
    pub failed_permanent: u64,
    /// Notifications given up after `max_attempts`.
    pub failed_retries_exhausted: u64,
    /// Notifications dropped from a full queue.
    pub dropped_overflow: u64,
    /// Notifications refused by a full queue ([`Overflow::Reject`]).
    pub rejected: u64,
    /// Queued notifications replaced by a newer one for the same group.
    pub superseded: u64,
    /// Notifications not delivered before shutdown.
    pub failed_shutdown: u64,
    /// Attempts after the first, over all notifications.
    pub retries: u64,
    /// Notifications waiting now (the one in flight excluded).
    pub queue_len: usize,
    /// The breaker now.
    pub breaker: BreakerState,
    /// How many times the breaker opened.
    pub breaker_opened: u64,
    /// Retryable failures in a row now.
    pub consecutive_failures: u32,
}

#[derive(Debug, Default)]
struct Breaker {
    consecutive: u32,
    open_until: Option<Instant>,
}

impl Breaker {
    fn state(&self, now: Instant) -> BreakerState {
        match self.open_until {
            None => BreakerState::Closed,
            Some(t) if now < t => BreakerState::Open,
            Some(_) => BreakerState::HalfOpen,
        }
    }
}

struct LaneState {
    queue: VecDeque<Notification>,
    stats: IntegrationStats,
    breaker: Breaker,
}

/// One integration's queue, breaker and counters.
struct Lane {
    receiver: String,
    idx: usize,
    integration: Arc<dyn Integration>,
    state: Mutex<LaneState>,
    wake: Notify,
}

impl Lane {
    fn lock(&self) -> MutexGuard<'_, LaneState> {
        // A panic while holding the lock leaves plain counters behind: still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

struct Inner {
    config: DeliveryConfig,
    lanes: Vec<Arc<Lane>>,
    index: HashMap<(String, usize), usize>,
    outcomes: mpsc::UnboundedSender<DeliveryOutcome>,
    closed: AtomicBool,
    deadline: watch::Sender<Option<Instant>>,
}

impl Inner {
    fn report(
        &self,
        lane: &Lane,
        notification: Notification,
        result: Result<(), DeliveryError>,
        attempts: u32,
    ) {
        {
            let mut st = lane.lock();
            let s = &mut st.stats;
            match &result {
                Ok(()) => s.sent += 1,
                Err(DeliveryError::Permanent(_)) => s.failed_permanent += 1,
                Err(DeliveryError::RetriesExhausted { .. }) => s.failed_retries_exhausted += 1,
                Err(DeliveryError::Overflow { .. }) => s.dropped_overflow += 1,
                Err(DeliveryError::Superseded) => s.superseded += 1,
                Err(DeliveryError::Shutdown { .. }) => s.failed_shutdown += 1,
            }
        }
        match &result {
            Ok(()) => tracing::debug!(
                receiver = %lane.receiver, integration = lane.integration.kind(),
                idx = lane.idx, attempts, group_key = %notification.group_key, "notification delivered"
            ),
            Err(e) => tracing::warn!(
                receiver = %lane.receiver, integration = lane.integration.kind(),
                idx = lane.idx, attempts, group_key = %notification.group_key,
                reason = e.key(), "notification not delivered: {e}"
            ),
        }
        // The receiver being gone means nobody wants outcomes any more (shutdown).
        let _ = self.outcomes.send(DeliveryOutcome {
            receiver: lane.receiver.clone(),
            integration_idx: lane.idx,
            notification,
            result,
            attempts,
        });
    }
}

/// Submits notifications and reads counters; cheap to clone, usable from any task.
#[derive(Clone)]
pub struct DeliveryHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for DeliveryHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryHandle")
            .field("integrations", &self.inner.lanes.len())
            .finish()
    }
}

/// The delivery workers: build with [`Delivery::new`], submit through [`Delivery::handle`], and
/// drive with [`Delivery::run`].
pub struct Delivery {
    inner: Arc<Inner>,
}

impl Delivery {
    /// Delivery for these receivers (name and integrations in index order); every outcome goes
    /// to `outcomes`.
    pub fn new(
        config: DeliveryConfig,
        receivers: Vec<(String, Vec<Arc<dyn Integration>>)>,
        outcomes: mpsc::UnboundedSender<DeliveryOutcome>,
    ) -> Delivery {
        let mut lanes = Vec::new();
        let mut index = HashMap::new();
        for (receiver, integrations) in receivers {
            for (idx, integration) in integrations.into_iter().enumerate() {
                index.insert((receiver.clone(), idx), lanes.len());
                lanes.push(Arc::new(Lane {
                    state: Mutex::new(LaneState {
                        queue: VecDeque::new(),
                        stats: IntegrationStats {
                            receiver: receiver.clone(),
                            integration_idx: idx,
                            kind: integration.kind(),
                            ..IntegrationStats::default()
                        },
                        breaker: Breaker::default(),
                    }),
                    receiver: receiver.clone(),
                    idx,
                    integration,
                    wake: Notify::new(),
                }));
            }
        }
        let (deadline, _) = watch::channel(None);
        Delivery {
            inner: Arc::new(Inner {
                config,
                lanes,
                index,
                outcomes,
                closed: AtomicBool::new(false),
                deadline,
            }),
        }
    }

    /// A handle for submitting and reading counters.
    pub fn handle(&self) -> DeliveryHandle {
        DeliveryHandle {
            inner: self.inner.clone(),
        }
    }

    /// Runs one worker per integration until `shutdown` resolves; then stops accepting, keeps
    /// delivering what is queued for at most `shutdown_grace`, reports what is left as
    /// [`DeliveryError::Shutdown`], and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let mut tasks = tokio::task::JoinSet::new();
        for lane in &self.inner.lanes {
            tasks.spawn(work(self.inner.clone(), lane.clone()));
        }
        shutdown.await;
        self.inner.closed.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + self.inner.config.shutdown_grace.to_std();
        self.inner.deadline.send_replace(Some(deadline));
        // Workers stop at the deadline on their own; the margin covers reporting.
        let margin = std::time::Duration::from_secs(1);
        let drained = tokio::time::timeout_at(deadline + margin, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tasks.abort_all();
        }
        for lane in &self.inner.lanes {
            let left: Vec<Notification> = lane.lock().queue.drain(..).collect();
            for n in left {
                self.inner
                    .report(lane, n, Err(DeliveryError::Shutdown { last: None }), 0);
            }
            lane.lock().stats.queue_len = 0;
        }
    }
}

impl DeliveryHandle {
    /// Queues `n` for integration `integration_idx` of receiver `n.receiver`. Exactly one
    /// [`DeliveryOutcome`] follows unless this returns an error.
    pub fn submit(&self, integration_idx: usize, n: Notification) -> Result<(), SubmitError> {
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(SubmitError::ShuttingDown);
        }
        let Some(&i) = self.inner.index.get(&(n.receiver.clone(), integration_idx)) else {
            return Err(SubmitError::UnknownIntegration {
                receiver: n.receiver.clone(),
                integration_idx,
            });
        };
        let lane = &self.inner.lanes[i];
        let capacity = self.inner.config.queue_capacity.max(1);
        let displaced = {
            let mut st = lane.lock();
            let displaced =
                if let Some(slot) = st.queue.iter_mut().find(|q| q.group_key == n.group_key) {
                    Some((std::mem::replace(slot, n), DeliveryError::Superseded))
                } else if st.queue.len() >= capacity {
                    match self.inner.config.overflow {
                        Overflow::Reject => {
                            st.stats.rejected += 1;
                            return Err(SubmitError::QueueFull {
                                receiver: lane.receiver.clone(),
                                integration_idx,
                            });
                        }
                        Overflow::DropOldest => {
                            let old = st.queue.pop_front();
                            st.queue.push_back(n);
                            old.map(|o| (o, DeliveryError::Overflow { capacity }))
                        }
                    }
                } else {
                    st.queue.push_back(n);
                    None
                };
            st.stats.queue_len = st.queue.len();
            displaced
        };
        if let Some((old, why)) = displaced {
            self.inner.report(lane, old, Err(why), 0);
        }
        lane.wake.notify_one();
        Ok(())
    }

    /// A snapshot of every integration's counters, in receiver and index order.
    pub fn stats(&self) -> Vec<IntegrationStats> {
        let now = Instant::now();
        self.inner
            .lanes
            .iter()
            .map(|lane| {
                let st = lane.lock();
                let mut s = st.stats.clone();
                s.breaker = st.breaker.state(now);
                s.consecutive_failures = st.breaker.consecutive;
                s
            })
            .collect()
    }
}

/// Resolves once shutdown set a deadline and it passed; never before.
async fn deadline_passed(mut rx: watch::Receiver<Option<Instant>>) {
    loop {
        let current = *rx.borrow_and_update();
        match current {
            Some(t) => {
                tokio::time::sleep_until(t).await;
                return;
            }
            None => {
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        }
    }
}

/// Sleeps until `t`; false when shutdown's deadline came first.
async fn sleep_or_shutdown(t: Instant, rx: &watch::Receiver<Option<Instant>>) -> bool {
    tokio::select! {
        biased;
        () = deadline_passed(rx.clone()) => false,
        () = tokio::time::sleep_until(t) => true,
    }
}

/// One integration's worker: takes notifications in order until shutdown empties the queue.
async fn work(inner: Arc<Inner>, lane: Arc<Lane>) {
    let mut shutdown = inner.deadline.subscribe();
    loop {
        let next = {
            let mut st = lane.lock();
            let n = st.queue.pop_front();
            st.stats.queue_len = st.queue.len();
            n
        };
        let Some(n) = next else {
            if shutdown.borrow().is_some() {
                return;
            }
            tokio::select! {
                () = lane.wake.notified() => {}
                r = shutdown.changed() => if r.is_err() { return; },
            }
            continue;
        };
        let (result, attempts) = deliver(&inner, &lane, &n).await;
        inner.report(&lane, n, result, attempts);
    }
}

/// Attempts one notification until success, a permanent error, `max_attempts`, or shutdown.
async fn deliver(inner: &Inner, lane: &Lane, n: &Notification) -> (Result<(), DeliveryError>, u32) {
    let cfg = &inner.config;
    let rx = inner.deadline.subscribe();
    let mut attempts = 0u32;
    let mut ceiling = cfg.initial_backoff;
    let mut last: Option<String> = None;
    loop {
        // The breaker: while open, no attempt; wait for the half-open probe.
        let open_until = {
            let st = lane.lock();
            match st.breaker.state(Instant::now()) {
                BreakerState::Open => st.breaker.open_until,
                _ => None,
            }
        };
        if let Some(t) = open_until {
            last.get_or_insert_with(|| "circuit breaker open".to_owned());
            if !sleep_or_shutdown(t, &rx).await {
                return (Err(DeliveryError::Shutdown { last }), attempts);
            }
            continue;
        }
        if attempts > 0 {
            lane.lock().stats.retries += 1;
        }
        attempts += 1;
        let attempt = tokio::time::timeout(cfg.attempt_timeout.to_std(), lane.integration.send(n));
        let result = tokio::select! {
            biased;
            () = deadline_passed(rx.clone()) => {
                return (Err(DeliveryError::Shutdown { last }), attempts);
            }
            r = attempt => r.unwrap_or_else(|_| Err(SendError::Retryable {
                message: format!("attempt exceeded {}", cfg.attempt_timeout),
                retry_after: None,
            })),
        };
        match result {
            Ok(()) => {
                let mut st = lane.lock();
                st.breaker = Breaker::default();
                return (Ok(()), attempts);
            }
            Err(SendError::Permanent { message }) => {
                // The peer answered: it is up, whatever it thought of this notification.
                lane.lock().breaker = Breaker::default();
                return (Err(DeliveryError::Permanent(message)), attempts);
            }
            Err(SendError::Retryable {
                message,
                retry_after,
            }) => {
                let now = Instant::now();
                {
                    let mut st = lane.lock();
                    let half_open = st.breaker.state(now) == BreakerState::HalfOpen;
                    st.breaker.consecutive += 1;
                    if half_open || st.breaker.consecutive >= cfg.breaker_threshold.max(1) {
                        st.breaker.open_until = Some(now + cfg.breaker_cooldown.to_std());
                        st.stats.breaker_opened += 1;
                        tracing::warn!(
                            receiver = %lane.receiver, integration = lane.integration.kind(),
                            idx = lane.idx, failures = st.breaker.consecutive,
                            "circuit breaker open for {}", cfg.breaker_cooldown
                        );
                    }
                }
                tracing::info!(
                    receiver = %lane.receiver, integration = lane.integration.kind(),
                    idx = lane.idx, attempts, "delivery attempt failed: {message}"
                );
                if attempts >= cfg.max_attempts.max(1) {
                    return (
                        Err(DeliveryError::RetriesExhausted {
                            attempts,
                            last: message,
                        }),
                        attempts,
                    );
                }
                last = Some(message);
                let delay = backoff_delay(ceiling, retry_after, fastrand::u64(..));
                ceiling = Dur(ceiling.millis().saturating_mul(2)).min(cfg.max_backoff);
                if !sleep_or_shutdown(now + delay.to_std(), &rx).await {
                    return (Err(DeliveryError::Shutdown { last }), attempts);
                }
            }
        }
    }
}

/// Full jitter (a uniform delay in `[0, ceiling]`, from the random word `r`), never shorter
/// than the peer's `Retry-After`.
pub fn backoff_delay(ceiling: Dur, retry_after: Option<Dur>, r: u64) -> Dur {
    let jittered = Dur(r % (ceiling.millis().saturating_add(1)));
    jittered.max(retry_after.unwrap_or(Dur(0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::SendFuture;
    use crate::notify::render::tests::{burn_alert, notification};
    use std::sync::atomic::AtomicU32;

    /// Answers from a script, then succeeds; counts calls.
    struct Scripted {
        script: Mutex<VecDeque<Result<(), SendError>>>,
        calls: AtomicU32,
    }

    impl Scripted {
        fn new(script: Vec<Result<(), SendError>>) -> Arc<Scripted> {
            Arc::new(Scripted {
                script: Mutex::new(script.into()),
                calls: AtomicU32::new(0),
            })
        }
    }

    impl Integration for Scripted {
        fn kind(&self) -> &'static str {
            "scripted"
        }
        fn send_resolved(&self) -> bool {
            true
        }
        fn send<'a>(&'a self, _n: &'a Notification) -> SendFuture<'a> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let next = self
                .script
                .lock()
                .expect("lock")
                .pop_front()
                .unwrap_or(Ok(()));
            Box::pin(async move { next })
        }
    }

    fn retryable(after: Option<Dur>) -> Result<(), SendError> {
        Err(SendError::Retryable {
            message: "HTTP 503".into(),
            retry_after: after,
        })
    }

    fn setup(
        config: DeliveryConfig,
        integration: Arc<Scripted>,
    ) -> (Delivery, mpsc::UnboundedReceiver<DeliveryOutcome>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let d = Delivery::new(config, vec![("oncall".into(), vec![integration as _])], tx);
        (d, rx)
    }

    #[test]
    fn backoff_is_full_jitter_floored_by_retry_after() {
        assert_eq!(backoff_delay(Dur(500), None, 0), Dur(0));
        assert_eq!(backoff_delay(Dur(500), None, 500), Dur(500));
        assert_eq!(backoff_delay(Dur(500), None, 501), Dur(0));
        assert_eq!(backoff_delay(Dur(500), Some(Dur(2000)), 7), Dur(2000));
        assert_eq!(backoff_delay(Dur(500), Some(Dur(10)), 300), Dur(300));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_honour_retry_after_then_succeed() {
        let s = Scripted::new(vec![retryable(Some(Dur::from_secs(30))), retryable(None)]);
        let (d, mut rx) = setup(DeliveryConfig::default(), s.clone());
        let h = d.handle();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let run = tokio::spawn(d.run(async {
            let _ = stop_rx.await;
        }));
        let start = Instant::now();
        h.submit(0, notification(vec![burn_alert("a", None)]))
            .expect("submit");
        let out = rx.recv().await.expect("outcome");
        assert_eq!(out.result, Ok(()));
        assert_eq!(out.attempts, 3);
        // 30 s from Retry-After, then at most 1 s of jittered backoff.
        let waited = start.elapsed();
        assert!(waited >= std::time::Duration::from_secs(30), "{waited:?}");
        assert!(waited <= std::time::Duration::from_secs(31), "{waited:?}");
        let st = &h.stats()[0];
        assert_eq!((st.sent, st.retries, st.kind), (1, 2, "scripted"));
        let _ = stop_tx.send(());
        run.await.expect("run");
    }

    #[tokio::test(start_paused = true)]
    async fn breaker_opens_blocks_and_half_opens() {
        let cfg = DeliveryConfig {
            breaker_threshold: 3,
            breaker_cooldown: Dur::from_secs(100),
            max_attempts: 5,
            ..DeliveryConfig::default()
        };
        let s = Scripted::new((0..4).map(|_| retryable(None)).collect());
        let (d, mut rx) = setup(cfg, s.clone());
        let h = d.handle();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let run = tokio::spawn(d.run(async {
            let _ = stop_rx.await;
        }));
        let start = Instant::now();
        h.submit(0, notification(vec![burn_alert("a", None)]))
            .expect("submit");
        // Three failures open the breaker; while open nothing is attempted.
        tokio::time::sleep(std::time::Duration::from_secs(50)).await;
        assert_eq!(s.calls.load(Ordering::SeqCst), 3);
        let st = &h.stats()[0];
        assert_eq!(st.breaker, BreakerState::Open);
        assert_eq!(st.breaker_opened, 1);
        // The half-open probe fails (4th scripted failure) and reopens; the next probe succeeds.
        let out = rx.recv().await.expect("outcome");
        assert_eq!(out.result, Ok(()));
        assert_eq!(out.attempts, 5);
        assert!(start.elapsed() >= std::time::Duration::from_secs(200));
        let st = &h.stats()[0];
        assert_eq!(st.breaker, BreakerState::Closed);
        assert_eq!(st.breaker_opened, 2);
        let _ = stop_tx.send(());
        run.await.expect("run");
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_exhaustion_overflow_and_supersede() {
        let cfg = DeliveryConfig {
            queue_capacity: 2,
            max_attempts: 2,
            breaker_threshold: 100,
            ..DeliveryConfig::default()
        };
        let s = Scripted::new(vec![
            Err(SendError::Permanent {
                message: "HTTP 400".into(),
            }),
            retryable(None),
            retryable(None),
        ]);
        let (d, mut rx) = setup(cfg, s.clone());
        let h = d.handle();
        let n = |slo: &str, key: &str| {
            let mut n = notification(vec![burn_alert(slo, None)]);
            n.group_key = key.into();
            n
        };
        // Queued before the workers start: g1, g2 fill the queue; g1' supersedes g1; g3 drops
        // the oldest (g1').
        h.submit(0, n("a", "g1")).expect("submit");
        h.submit(0, n("b", "g2")).expect("submit");
        h.submit(0, n("c", "g1")).expect("submit");
        h.submit(0, n("d", "g3")).expect("submit");
        assert!(matches!(
            h.submit(7, n("e", "g4")),
            Err(SubmitError::UnknownIntegration { .. })
        ));
        let first = rx.recv().await.expect("superseded");
        assert_eq!(first.result, Err(DeliveryError::Superseded));
        assert_eq!(first.notification.alerts[0].label("slo"), "a");
        let second = rx.recv().await.expect("overflow");
        assert_eq!(second.result, Err(DeliveryError::Overflow { capacity: 2 }));
        assert_eq!(second.notification.alerts[0].label("slo"), "c");
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let run = tokio::spawn(d.run(async {
            let _ = stop_rx.await;
        }));
        let g2 = rx.recv().await.expect("g2");
        assert_eq!(g2.result, Err(DeliveryError::Permanent("HTTP 400".into())));
        assert_eq!(g2.attempts, 1);
        let g3 = rx.recv().await.expect("g3");
        assert_eq!(
            g3.result,
            Err(DeliveryError::RetriesExhausted {
                attempts: 2,
                last: "HTTP 503".into()
            })
        );
        let st = h.stats()[0].clone();
        assert_eq!(
            (
                st.failed_permanent,
                st.failed_retries_exhausted,
                st.superseded,
                st.dropped_overflow,
                st.retries,
                st.queue_len
            ),
            (1, 1, 1, 1, 1, 0)
        );
        let _ = stop_tx.send(());
        run.await.expect("run");
        assert_eq!(h.submit(0, n("f", "g5")), Err(SubmitError::ShuttingDown));
    }

    #[tokio::test(start_paused = true)]
    async fn reject_policy_and_shutdown_flush() {
        let cfg = DeliveryConfig {
            queue_capacity: 1,
            overflow: Overflow::Reject,
            shutdown_grace: Dur::from_secs(5),
            ..DeliveryConfig::default()
        };
        // Fails forever (retryable, long Retry-After): shutdown must cut it at the grace end.
        let s = Scripted::new(
            (0..100)
                .map(|_| retryable(Some(Dur::from_secs(60))))
                .collect(),
        );
        let (d, mut rx) = setup(cfg, s.clone());
        let h = d.handle();
        let mut n = notification(vec![burn_alert("a", None)]);
        h.submit(0, n.clone()).expect("submit");
        n.group_key = "other".into();
        assert!(matches!(
            h.submit(0, n.clone()),
            Err(SubmitError::QueueFull { .. })
        ));
        assert_eq!(h.stats()[0].rejected, 1);
        let start = Instant::now();
        d.run(async {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        })
        .await;
        let elapsed = start.elapsed();
        assert!(elapsed >= std::time::Duration::from_secs(6), "{elapsed:?}");
        assert!(elapsed < std::time::Duration::from_secs(8), "{elapsed:?}");
        let out = rx.recv().await.expect("outcome");
        assert_eq!(
            out.result,
            Err(DeliveryError::Shutdown {
                last: Some("HTTP 503".into())
            })
        );
        assert_eq!(out.attempts, 1);
        assert_eq!(h.stats()[0].failed_shutdown, 1);
    }
}
