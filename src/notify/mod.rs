//! Notifications: what the pipeline hands to receivers, and why it did (or did not).
//!
//! The pipeline follows Alertmanager's semantics (routing tree, aggregation groups with
//! `group_wait`/`group_interval`/`repeat_interval`, dedup against a notification log,
//! inhibition, silences); receivers turn a [`Notification`] into an email, a webhook call, a
//! Slack message, a PagerDuty event or an Alertmanager API call. Every notification carries a
//! [`NotifyReason`] and every alert held back a [`SuppressReason`], so "why did this page me
//! now" and "why did nothing arrive" both have an answer in logs, the API and metrics.

pub mod alertmanager;
pub mod config;
pub mod delivery;
pub mod dispatch;
pub mod email;
pub mod inhibit;
pub mod nflog;
pub mod pagerduty;
pub mod receiver;
pub mod render;
pub mod route;
pub mod silence;
pub mod slack;
pub mod webhook;

use std::future::Future;
use std::pin::Pin;

use crate::alert::{Alert, AlertStatus};
use crate::rules::model::Labels;
use crate::time::{Dur, Timestamp};

/// Why a notification was sent (Alertmanager's `notification_reason`, v0.32+ wording).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum NotifyReason {
    /// Nothing was sent to this receiver for the group before (or the last send had no firing
    /// alerts).
    First,
    /// Firing alerts appeared that the receiver has not been told about.
    NewAlerts,
    /// Some alerts resolved (receivers that want resolved notifications).
    SomeResolved,
    /// Every alert of the group resolved.
    AllResolved,
    /// Nothing changed for `repeat_interval`: a reminder.
    Repeat,
}

impl NotifyReason {
    /// Alertmanager's wording (`notification_reason` in webhook payloads).
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyReason::First => "first notification",
            NotifyReason::NewAlerts => "new alerts added",
            NotifyReason::SomeResolved => "some alerts resolved",
            NotifyReason::AllResolved => "all alerts resolved",
            NotifyReason::Repeat => "repeat interval elapsed",
        }
    }

    /// A short label value for metrics and logs: `first`, `new_alerts`, `resolved`,
    /// `all_resolved`, `repeat`.
    pub fn key(self) -> &'static str {
        match self {
            NotifyReason::First => "first",
            NotifyReason::NewAlerts => "new_alerts",
            NotifyReason::SomeResolved => "resolved",
            NotifyReason::AllResolved => "all_resolved",
            NotifyReason::Repeat => "repeat",
        }
    }
}

/// Why an alert (or a whole flush) reached nobody.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SuppressReason {
    /// A silence matched the alert.
    Silenced,
    /// A firing source alert inhibits it (an inhibition rule, or a failing `depends_on` probe).
    Inhibited,
    /// The receiver already has this exact state (same firing and resolved sets, repeat
    /// interval not elapsed).
    Deduplicated,
    /// The alert changes state too often; it is held until it settles.
    Flapping,
}

impl SuppressReason {
    /// A short label value for metrics and logs.
    pub fn key(self) -> &'static str {
        match self {
            SuppressReason::Silenced => "silenced",
            SuppressReason::Inhibited => "inhibited",
            SuppressReason::Deduplicated => "deduplicated",
            SuppressReason::Flapping => "flapping",
        }
    }
}

/// One notification to one receiver: a flush of one aggregation group.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Notification {
    /// The receiver's name (from the config).
    pub receiver: String,
    /// Alertmanager's group key: `<route key>:<group labels>`, e.g.
    /// `{}/{severity="page"}:{service="checkout"}`. Stable across restarts; receivers derive
    /// their dedup keys from it (PagerDuty `dedup_key` = hex sha256 of it).
    pub group_key: String,
    /// The labels the group is keyed by (the route's `group_by` values).
    pub group_labels: Labels,
    /// Why now.
    pub reason: NotifyReason,
    /// The alerts, firing and resolved, in Alertmanager's send order.
    pub alerts: Vec<Alert>,
    /// How many alerts the firing alerts of this notification currently inhibit (for example the
    /// services behind a failing dependency probe), shown so on-call knows the blast radius.
    pub inhibited: usize,
    /// When the flush happened.
    pub at: Timestamp,
}

impl Notification {
    /// `firing` when any alert fires, else `resolved` (the webhook payload's `status`).
    pub fn status(&self) -> AlertStatus {
        if self.alerts.iter().any(|a| a.ends_at.is_none()) {
            AlertStatus::Firing
        } else {
            AlertStatus::Resolved
        }
    }

    /// Labels every alert has with the same value (`commonLabels`).
    pub fn common_labels(&self) -> Labels {
        common(self.alerts.iter().map(|a| &a.labels))
    }

    /// Annotations every alert has with the same value (`commonAnnotations`).
    pub fn common_annotations(&self) -> Labels {
        common(self.alerts.iter().map(|a| &a.annotations))
    }

    /// The firing alerts.
    pub fn firing(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.iter().filter(|a| a.ends_at.is_none())
    }

    /// The resolved alerts.
    pub fn resolved(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.iter().filter(|a| a.ends_at.is_some())
    }
}

/// Why one delivery attempt failed, classified for the retry policy.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SendError {
    /// Worth retrying: network errors, timeouts, 5xx, 429. `retry_after` is the peer's
    /// `Retry-After`, when it sent one (it overrides the backoff).
    #[error("{message} (will retry)")]
    Retryable {
        /// What happened, for logs.
        message: String,
        /// The earliest time to try again, as the peer asked.
        retry_after: Option<Dur>,
    },
    /// Retrying cannot help (4xx other than 429, a rejected address, bad credentials): logged
    /// and counted, then dropped.
    #[error("{message} (permanent)")]
    Permanent {
        /// What happened, for logs.
        message: String,
    },
}

impl From<crate::http_client::Failure> for SendError {
    fn from(f: crate::http_client::Failure) -> SendError {
        use crate::http_client::Failure;
        match f {
            Failure::Retryable {
                message,
                retry_after,
            } => SendError::Retryable {
                message,
                retry_after,
            },
            Failure::Permanent { message } => SendError::Permanent { message },
        }
    }
}

/// A boxed send future (trait objects cannot have `async fn`).
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SendError>> + Send + 'a>>;

/// One way of reaching people (an email address, a webhook URL, a Slack channel, a PagerDuty
/// service). A receiver in the config holds one or more integrations; each has its own
/// notification log entry, so one failing integration never re-sends through the others.
pub trait Integration: Send + Sync {
    /// The integration type: `email`, `webhook`, `slack`, `pagerduty`.
    fn kind(&self) -> &'static str;
    /// Whether resolved alerts are sent (and partial resolves notify).
    fn send_resolved(&self) -> bool;
    /// One delivery attempt, bounded by the integration's own timeout. Never logs secrets.
    fn send<'a>(&'a self, n: &'a Notification) -> SendFuture<'a>;
}

/// The intersection of label sets (pairs present with equal values in all of them).
fn common<'a>(mut sets: impl Iterator<Item = &'a Labels>) -> Labels {
    let Some(first) = sets.next() else {
        return Labels::new();
    };
    let mut out = first.clone();
    for s in sets {
        out.retain(|k, v| s.get(k) == Some(v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(pairs: &[(&str, &str)], ann: &[(&str, &str)], ended: bool) -> Alert {
        let l = |p: &[(&str, &str)]| {
            p.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        Alert {
            labels: l(pairs),
            annotations: l(ann),
            starts_at: Timestamp::from_secs(1),
            ends_at: ended.then(|| Timestamp::from_secs(2)),
            generator_url: String::new(),
        }
    }

    #[test]
    fn status_and_common_sets() {
        let mut n = Notification {
            receiver: "hook".into(),
            group_key: "{}:{}".into(),
            group_labels: Labels::new(),
            reason: NotifyReason::First,
            alerts: vec![
                alert(
                    &[("alertname", "A"), ("cluster", "c1"), ("instance", "a")],
                    &[("summary", "a down"), ("runbook_url", "r")],
                    false,
                ),
                alert(
                    &[("alertname", "A"), ("cluster", "c1"), ("instance", "b")],
                    &[("summary", "b down"), ("runbook_url", "r")],
                    true,
                ),
            ],
            inhibited: 0,
            at: Timestamp::from_secs(3),
        };
        assert_eq!(n.status(), AlertStatus::Firing);
        assert_eq!(
            n.common_labels().into_iter().collect::<Vec<_>>(),
            vec![
                ("alertname".to_string(), "A".to_string()),
                ("cluster".to_string(), "c1".to_string())
            ]
        );
        assert_eq!(n.common_annotations().len(), 1);
        assert_eq!(n.firing().count(), 1);
        assert_eq!(n.resolved().count(), 1);
        n.alerts.remove(0);
        assert_eq!(n.status(), AlertStatus::Resolved);
    }
}
