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
//! - One pending notification per group: the queue coalesces by group key, so a burst costs
//!   memory bounded by the number of groups and loses nothing. A newer notification for a group
//!   *supersedes* the older one wherever it waits (queued, or at the head between attempts,
//!   backing off or held by the breaker); the newer one keeps the older one's place in the queue
//!   (FIFO by the group's first enqueue) and takes over its retry schedule, so a peer's
//!   `Retry-After` still holds. One that arrives while an attempt is on the wire waits for it:
//!   after a success it is superseded when it carries the same firing and resolved alerts (it
//!   would tell the receiver nothing new), otherwise it is sent next. Superseded notifications
//!   are reported as [`DeliveryError::Superseded`], counted apart from failures, logged at debug.
//! - `max_groups` bounds the groups waiting per integration (a bound against a runaway config,
//!   far above any real burst); a notification for a new group beyond it is refused
//!   ([`SubmitError::QueueFull`], counted as `rejected`, logged), and the dispatcher, which marks
//!   a group sent only on delivery, decides again at the group's next flush.
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

/// The default bound on groups waiting per integration.
pub const DEFAULT_MAX_GROUPS: usize = 65_536;

/// Retry, breaker, queue and shutdown settings (shared by every integration).
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryConfig {
    /// Groups with a notification waiting per integration (default 65,536; at most one
    /// notification per group waits, so this bounds memory, and a burst of distinct groups up
    /// to it is queued whole). A new group beyond it is refused and counted as `rejected`.
    pub max_groups: usize,
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
            max_groups: DEFAULT_MAX_GROUPS,
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
    /// A newer notification for the same group replaced it before it was sent, or (having
    /// come while the same group's attempt was on the wire) it carried the same alerts as the
    /// one just delivered. Not a failure: the group's newest state is (being) delivered.
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
    /// A short label value for metrics: `permanent`, `retries_exhausted`, `superseded`,
    /// `shutdown`.
    pub fn key(&self) -> &'static str {
        match self {
            DeliveryError::Permanent(_) => "permanent",
            DeliveryError::RetriesExhausted { .. } => "retries_exhausted",
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
    /// `max_groups` groups are already waiting and this is a new one.
    #[error(
        "the queue of receiver {receiver} integration {integration_idx} is full ({max_groups} groups waiting)"
    )]
    QueueFull {
        /// The receiver.
        receiver: String,
        /// The integration.
        integration_idx: usize,
        /// The bound.
        max_groups: usize,
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
    /// Notifications for a new group refused because `max_groups` groups were waiting.
    pub rejected: u64,
    /// Notifications replaced by a newer one for the same group (not failures).
    pub superseded: u64,
    /// Notifications not delivered before shutdown.
    pub failed_shutdown: u64,
    /// Attempts after the first, over all notifications.
    pub retries: u64,
    /// Notifications (one per group) waiting now, the one at the head excluded.
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

/// Notifications waiting for one integration, at most one per group (the newest), in the order
/// their groups were first enqueued.
#[derive(Debug, Default)]
struct Pending {
    order: VecDeque<String>,
    by_group: HashMap<String, Notification>,
}

impl Pending {
    fn len(&self) -> usize {
        self.by_group.len()
    }

    /// The waiting notification of `group`, to be replaced by a newer one.
    fn get_mut(&mut self, group: &str) -> Option<&mut Notification> {
        self.by_group.get_mut(group)
    }

    /// Queues a notification of a group that has none waiting.
    fn push(&mut self, n: Notification) {
        self.order.push_back(n.group_key.clone());
        self.by_group.insert(n.group_key.clone(), n);
    }

    fn pop(&mut self) -> Option<Notification> {
        // `order` and `by_group` hold the same keys (only `pop` removes), so this finds one at
        // the first key; the loop only guards that invariant.
        while let Some(k) = self.order.pop_front() {
            if let Some(n) = self.by_group.remove(&k) {
                return Some(n);
            }
        }
        None
    }
}

/// The group the worker is delivering (the worker holds its notification).
struct Head {
    group_key: String,
    /// The newest notification submitted for the group since the worker last looked: it
    /// replaces the worker's before the next attempt.
    newer: Option<Notification>,
}

struct LaneState {
    pending: Pending,
    head: Option<Head>,
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
                Err(DeliveryError::Superseded) => s.superseded += 1,
                Err(DeliveryError::Shutdown { .. }) => s.failed_shutdown += 1,
            }
        }
        match &result {
            Ok(()) => tracing::debug!(
                receiver = %lane.receiver, integration = lane.integration.kind(),
                idx = lane.idx, attempts, group_key = %notification.group_key, "notification delivered"
            ),
            // Not a failure: the group's newest state is delivered in its place.
            Err(DeliveryError::Superseded) => tracing::debug!(
                receiver = %lane.receiver, integration = lane.integration.kind(),
                idx = lane.idx, attempts, group_key = %notification.group_key,
                "notification superseded by a newer one for the same group"
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
                        pending: Pending::default(),
                        head: None,
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
            let left: Vec<Notification> = {
                let mut st = lane.lock();
                // A head is left only when its worker was aborted.
                let mut left: Vec<Notification> =
                    st.head.take().and_then(|h| h.newer).into_iter().collect();
                left.extend(std::iter::from_fn(|| st.pending.pop()));
                left
            };
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
        let max_groups = self.inner.config.max_groups.max(1);
        let superseded = {
            let mut st = lane.lock();
            let st = &mut *st;
            let superseded = match st.head.as_mut() {
                // The group being delivered: its worker takes the newest before its next attempt.
                Some(h) if h.group_key == n.group_key => h.newer.replace(n),
                _ => {
                    if let Some(slot) = st.pending.get_mut(&n.group_key) {
                        Some(std::mem::replace(slot, n))
                    } else if st.pending.len() >= max_groups {
                        st.stats.rejected += 1;
                        tracing::warn!(
                            receiver = %lane.receiver, integration = lane.integration.kind(),
                            idx = integration_idx, group_key = %n.group_key, max_groups,
                            "notification refused: too many groups waiting; the group's next flush decides again"
                        );
                        return Err(SubmitError::QueueFull {
                            receiver: lane.receiver.clone(),
                            integration_idx,
                            max_groups,
                        });
                    } else {
                        st.pending.push(n);
                        None
                    }
                }
            };
            st.stats.queue_len = st.pending.len();
            superseded
        };
        if let Some(old) = superseded {
            self.inner
                .report(lane, old, Err(DeliveryError::Superseded), 0);
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
    // A newer notification for the group just delivered, to deliver next (its group keeps its
    // place at the head).
    let mut carried: Option<Notification> = None;
    loop {
        let next = carried.take().or_else(|| {
            let mut st = lane.lock();
            let n = st.pending.pop();
            st.head = n.as_ref().map(|n| Head {
                group_key: n.group_key.clone(),
                newer: None,
            });
            st.stats.queue_len = st.pending.len();
            n
        });
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
        let (n, result, attempts) = deliver(&inner, &lane, n).await;
        let redundant = {
            let mut st = lane.lock();
            match st.head.as_mut().and_then(|h| h.newer.take()) {
                // It came while the last attempt was on the wire and tells the receiver nothing
                // new.
                Some(newer) if result.is_ok() && same_alerts(&n, &newer) => {
                    st.head = None;
                    Some(newer)
                }
                // A newer state: delivered next, the group keeping its place at the head.
                Some(newer) => {
                    carried = Some(newer);
                    None
                }
                None => {
                    st.head = None;
                    None
                }
            }
        };
        inner.report(&lane, n, result, attempts);
        if let Some(r) = redundant {
            inner.report(&lane, r, Err(DeliveryError::Superseded), 0);
        }
    }
}

/// Whether two notifications of a group carry the same firing and the same resolved alerts.
fn same_alerts(a: &Notification, b: &Notification) -> bool {
    use std::collections::BTreeSet;
    let sets = |n: &Notification| {
        let firing: BTreeSet<_> = n.firing().map(|a| a.fingerprint()).collect();
        let resolved: BTreeSet<_> = n.resolved().map(|a| a.fingerprint()).collect();
        (firing, resolved)
    };
    sets(a) == sets(b)
}

/// Before an attempt: the newest notification submitted for the group replaces `n` (reported
/// as superseded).
fn take_newest(inner: &Inner, lane: &Lane, n: &mut Notification) {
    let newer = lane.lock().head.as_mut().and_then(|h| h.newer.take());
    if let Some(newer) = newer {
        let old = std::mem::replace(n, newer);
        inner.report(lane, old, Err(DeliveryError::Superseded), 0);
    }
}

/// Attempts one group's notification until success, a permanent error, `max_attempts`, or
/// shutdown, always sending the group's newest; returns the last one attempted (or held).
async fn deliver(
    inner: &Inner,
    lane: &Lane,
    mut n: Notification,
) -> (Notification, Result<(), DeliveryError>, u32) {
    let cfg = &inner.config;
    let rx = inner.deadline.subscribe();
    let mut attempts = 0u32;
    let mut ceiling = cfg.initial_backoff;
    let mut last: Option<String> = None;
    loop {
        if rx.borrow().is_some_and(|t| Instant::now() >= t) {
            return (n, Err(DeliveryError::Shutdown { last }), attempts);
        }
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
                return (n, Err(DeliveryError::Shutdown { last }), attempts);
            }
            continue;
        }
        take_newest(inner, lane, &mut n);
        if attempts > 0 {
            lane.lock().stats.retries += 1;
        }
        attempts += 1;
        let attempt = tokio::time::timeout(cfg.attempt_timeout.to_std(), lane.integration.send(&n));
        let result = tokio::select! {
            biased;
            () = deadline_passed(rx.clone()) => {
                return (n, Err(DeliveryError::Shutdown { last }), attempts);
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
                drop(st);
                return (n, Ok(()), attempts);
            }
            Err(SendError::Permanent { message }) => {
                // The peer answered: it is up, whatever it thought of this notification.
                lane.lock().breaker = Breaker::default();
                return (n, Err(DeliveryError::Permanent(message)), attempts);
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
                        n,
                        Err(DeliveryError::RetriesExhausted {
                            attempts,
                            last: message,
                        }),
                        attempts,
                    );
                }
                last = Some(message);
                // A newer notification for the group takes over this schedule: the peer's
                // Retry-After and the backoff are about the receiver, not one notification.
                let delay = backoff_delay(ceiling, retry_after, fastrand::u64(..));
                ceiling = Dur(ceiling.millis().saturating_mul(2)).min(cfg.max_backoff);
                if !sleep_or_shutdown(now + delay.to_std(), &rx).await {
                    return (n, Err(DeliveryError::Shutdown { last }), attempts);
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

    fn keyed(slo: &str, key: &str) -> Notification {
        let mut n = notification(vec![burn_alert(slo, None)]);
        n.group_key = key.into();
        n
    }

    async fn started(
        d: Delivery,
    ) -> (
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ) {
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let run = tokio::spawn(d.run(async {
            let _ = stop_rx.await;
        }));
        (stop_tx, run)
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_exhaustion_and_supersede_in_the_queue() {
        let cfg = DeliveryConfig {
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
        // Queued before the workers start: g1' supersedes g1 and keeps g1's place (first).
        h.submit(0, keyed("a", "g1")).expect("submit");
        h.submit(0, keyed("b", "g2")).expect("submit");
        h.submit(0, keyed("c", "g1")).expect("submit");
        assert_eq!(h.stats()[0].queue_len, 2);
        assert!(matches!(
            h.submit(7, keyed("e", "g4")),
            Err(SubmitError::UnknownIntegration { .. })
        ));
        let first = rx.recv().await.expect("superseded");
        assert_eq!(first.result, Err(DeliveryError::Superseded));
        assert_eq!(first.notification.alerts[0].label("slo"), "a");
        let (stop_tx, run) = started(d).await;
        let g1 = rx.recv().await.expect("g1");
        assert_eq!(g1.notification.alerts[0].label("slo"), "c");
        assert_eq!(g1.result, Err(DeliveryError::Permanent("HTTP 400".into())));
        assert_eq!(g1.attempts, 1);
        let g2 = rx.recv().await.expect("g2");
        assert_eq!(g2.notification.alerts[0].label("slo"), "b");
        assert_eq!(
            g2.result,
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
                st.rejected,
                st.retries,
                st.queue_len
            ),
            (1, 1, 1, 0, 1, 0)
        );
        let _ = stop_tx.send(());
        run.await.expect("run");
        assert_eq!(
            h.submit(0, keyed("f", "g5")),
            Err(SubmitError::ShuttingDown)
        );
    }

    /// The head of the queue backing off after a 429 is superseded by the group's newer
    /// notification: one delivery for the group, after the Retry-After, and the old one is
    /// counted as superseded, not failed.
    #[tokio::test(start_paused = true)]
    async fn newer_notification_supersedes_the_head_in_backoff() {
        let s = Scripted::new(vec![retryable(Some(Dur::from_secs(30)))]);
        let (d, mut rx) = setup(DeliveryConfig::default(), s.clone());
        let h = d.handle();
        let (stop_tx, run) = started(d).await;
        let start = Instant::now();
        h.submit(0, keyed("a", "g1")).expect("submit");
        tokio::time::sleep(std::time::Duration::from_secs(10)).await;
        assert_eq!(s.calls.load(Ordering::SeqCst), 1);
        h.submit(0, keyed("b", "g1")).expect("submit");
        h.submit(0, keyed("c", "g2")).expect("submit");
        let mut outs = Vec::new();
        for _ in 0..3 {
            outs.push(rx.recv().await.expect("outcome"));
        }
        let got: Vec<(&str, Result<(), DeliveryError>)> = outs
            .iter()
            .map(|o| (o.notification.alerts[0].label("slo"), o.result.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a", Err(DeliveryError::Superseded)),
                ("b", Ok(())),
                ("c", Ok(())),
            ]
        );
        // The newer one inherited the Retry-After: not sent before 30 s.
        assert!(start.elapsed() >= std::time::Duration::from_secs(30));
        assert_eq!(outs[1].attempts, 2);
        // 1 failure, then b, then c: the group was never sent twice.
        assert_eq!(s.calls.load(Ordering::SeqCst), 3);
        let st = h.stats()[0].clone();
        assert_eq!(
            (st.sent, st.superseded, st.failed_retries_exhausted),
            (2, 1, 0)
        );
        let _ = stop_tx.send(());
        run.await.expect("run");
    }

    /// Holds every send until released, then answers from a script.
    struct Gated {
        inner: Arc<Scripted>,
        entered: Notify,
        release: tokio::sync::Semaphore,
    }

    impl Integration for Gated {
        fn kind(&self) -> &'static str {
            "gated"
        }
        fn send_resolved(&self) -> bool {
            true
        }
        fn send<'a>(&'a self, n: &'a Notification) -> SendFuture<'a> {
            Box::pin(async move {
                self.entered.notify_one();
                let permit = self.release.acquire().await;
                permit
                    .map(|p| p.forget())
                    .map_err(|_| SendError::Permanent {
                        message: "gate closed".into(),
                    })?;
                self.inner.send(n).await
            })
        }
    }

    /// A notification for the group on the wire waits for the attempt: after a success it is
    /// superseded when it says the same (same firing and resolved alerts), sent next otherwise.
    #[tokio::test(start_paused = true)]
    async fn newer_notification_during_an_attempt_is_sent_only_when_it_says_more() {
        let gate = Arc::new(Gated {
            inner: Scripted::new(vec![]),
            entered: Notify::new(),
            release: tokio::sync::Semaphore::new(0),
        });
        let (tx, mut rx) = mpsc::unbounded_channel();
        let d = Delivery::new(
            DeliveryConfig::default(),
            vec![("oncall".into(), vec![gate.clone() as _])],
            tx,
        );
        let h = d.handle();
        let (stop_tx, run) = started(d).await;
        // Same alerts (a repeat of the state on the wire): superseded once the first succeeds.
        h.submit(0, keyed("a", "g1")).expect("submit");
        gate.entered.notified().await;
        h.submit(0, keyed("a", "g1")).expect("submit");
        gate.release.add_permits(1);
        let first = rx.recv().await.expect("first");
        assert_eq!(first.result, Ok(()));
        let second = rx.recv().await.expect("second");
        assert_eq!(second.result, Err(DeliveryError::Superseded));
        assert_eq!(gate.inner.calls.load(Ordering::SeqCst), 1);
        // Another alert firing: a newer state, sent after the one on the wire.
        h.submit(0, keyed("a", "g1")).expect("submit");
        gate.entered.notified().await;
        h.submit(
            0,
            notification(vec![burn_alert("a", None), burn_alert("b", None)]),
        )
        .expect("submit");
        let mut more = notification(vec![burn_alert("a", None), burn_alert("b", None)]);
        more.group_key = "g1".into();
        h.submit(0, more).expect("submit");
        gate.release.add_permits(3);
        let mut results = Vec::new();
        for _ in 0..3 {
            let o = rx.recv().await.expect("outcome");
            results.push((
                o.notification.group_key.clone(),
                o.notification.alerts.len(),
                o.result,
            ));
        }
        let other = notification(vec![]).group_key;
        assert_eq!(
            results,
            vec![
                ("g1".to_owned(), 1, Ok(())),
                ("g1".to_owned(), 2, Ok(())),
                (other, 2, Ok(())),
            ]
        );
        assert_eq!(gate.inner.calls.load(Ordering::SeqCst), 4);
        let _ = stop_tx.send(());
        run.await.expect("run");
    }

    /// A burst of 5,000 distinct groups is queued whole; resubmitting the same groups ten times
    /// keeps one notification per group; every group is delivered once with its newest state.
    #[tokio::test(start_paused = true)]
    async fn a_burst_coalesces_by_group_and_loses_nothing() {
        let s = Scripted::new(vec![]);
        let (d, mut rx) = setup(DeliveryConfig::default(), s.clone());
        let h = d.handle();
        const GROUPS: usize = 5_000;
        for round in 0..10 {
            for g in 0..GROUPS {
                h.submit(0, keyed(&format!("r{round}"), &format!("g{g}")))
                    .expect("submit");
            }
            assert_eq!(h.stats()[0].queue_len, GROUPS);
        }
        let (stop_tx, run) = started(d).await;
        let mut superseded = 0;
        let mut delivered = Vec::new();
        while delivered.len() < GROUPS {
            let o = rx.recv().await.expect("outcome");
            match o.result {
                Ok(()) => {
                    assert_eq!(o.notification.alerts[0].label("slo"), "r9");
                    delivered.push(o.notification.group_key);
                }
                Err(DeliveryError::Superseded) => superseded += 1,
                Err(e) => panic!("not delivered: {e}"),
            }
        }
        assert_eq!(superseded, 9 * GROUPS);
        // FIFO by the groups' first enqueue.
        let want: Vec<String> = (0..GROUPS).map(|g| format!("g{g}")).collect();
        assert_eq!(delivered, want);
        let st = h.stats()[0].clone();
        assert_eq!((st.sent, st.rejected, st.queue_len), (GROUPS as u64, 0, 0));
        assert_eq!(s.calls.load(Ordering::SeqCst), GROUPS as u32);
        let _ = stop_tx.send(());
        run.await.expect("run");
    }

    #[tokio::test(start_paused = true)]
    async fn group_bound_and_shutdown_flush() {
        let cfg = DeliveryConfig {
            max_groups: 1,
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
        // The same group is not a new one: it replaces.
        h.submit(0, n.clone()).expect("submit");
        n.group_key = "other".into();
        assert!(matches!(
            h.submit(0, n.clone()),
            Err(SubmitError::QueueFull { max_groups: 1, .. })
        ));
        assert_eq!(h.stats()[0].rejected, 1);
        assert_eq!(
            rx.recv().await.expect("first").result,
            Err(DeliveryError::Superseded)
        );
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
