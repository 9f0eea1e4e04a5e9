//! Alerts: what an alert is, how it is identified, and how alerts are selected by matchers.
//!
//! This module owns the alert model shared by the alert sources ([`crate::alerter`]: SLO burn
//! tiers, budget, probes, scrape targets, no data), the read models ([`crate::view`]), the
//! notification pipeline ([`crate::notify`]) and the receivers; it imports none of them.
//! Identity follows Alertmanager exactly so the same alert is the same alert everywhere:
//! [`Fingerprint`] is FNV-1a 64 over the sorted `name\xffvalue\xff` label pairs, printed as
//! `%016x`. Annotations carry information only; they never take part in identity, grouping or
//! dedup.
//!
//! Pure: no I/O, no clock; every time is passed in.

pub mod lifecycle;
pub mod matcher;

use std::fmt;

use crate::rules::model::Labels;
use crate::time::Timestamp;

pub use matcher::{MatchOp, Matcher, MatcherError, Matchers};

/// Well-known label and annotation names. Receivers render notifications from these, so an alert
/// source that fills them gets an actionable message without any template.
pub mod names {
    /// Label: the alert's name (`SloBurnRate`, `SloErrorBudgetExhausted`, `ProbeDown`, ...).
    pub const ALERTNAME: &str = "alertname";
    /// Label: the service the alert belongs to.
    pub const SERVICE: &str = "service";
    /// Label: the SLO name (SLO alerts only).
    pub const SLO: &str = "slo";
    /// Label: `page`, `ticket` or any routing word of the rules.
    pub const SEVERITY: &str = "severity";
    /// Label: the burn-rate tier (`page_fast`, ...).
    pub const TIER: &str = "tier";
    /// Label: the tier's window pair, e.g. `1h/5m`.
    pub const WINDOW: &str = "window";
    /// Label: the probe name (probe alerts).
    pub const PROBE: &str = "probe";
    /// Label: the scrape target name (target alerts).
    pub const TARGET: &str = "target";

    /// Annotation: one line naming the symptom and its scope (email subject, Slack fallback,
    /// PagerDuty summary).
    pub const SUMMARY: &str = "summary";
    /// Annotation: what is happening, with the numbers, in a few sentences.
    pub const DESCRIPTION: &str = "description";
    /// Annotation: the runbook link.
    pub const RUNBOOK_URL: &str = "runbook_url";
    /// Annotation: the dashboard link.
    pub const DASHBOARD_URL: &str = "dashboard_url";
    /// Annotation: the objective, as a percentage (`99.9%`).
    pub const OBJECTIVE: &str = "objective";
    /// Annotation: the SLI over the compliance window, as a percentage.
    pub const SLI: &str = "sli";
    /// Annotation: error budget left over the compliance window, as a percentage (may be
    /// negative when overspent).
    pub const BUDGET_REMAINING: &str = "budget_remaining";
    /// Annotation: burn rates of the windows that decided, e.g. `14.9x over 1h, 18.0x over 5m`.
    pub const BURN_RATE: &str = "burn_rate";
    /// Annotation: time until the budget is exhausted at the current burn rate, e.g. `1d 6h`.
    pub const TIME_TO_EXHAUSTION: &str = "time_to_exhaustion";
    /// Annotation: the owner (team or person) of the service.
    pub const OWNER: &str = "owner";

    /// `alertname` of the burn-rate tier alerts.
    pub const SLO_BURN_RATE: &str = "SloBurnRate";
    /// `alertname` of the budget-exhausted alert.
    pub const SLO_ERROR_BUDGET_EXHAUSTED: &str = "SloErrorBudgetExhausted";
    /// `alertname` of the no-data alert.
    pub const SLO_NO_DATA: &str = "SloNoData";
    /// `alertname` of the probe alert.
    pub const PROBE_DOWN: &str = "ProbeDown";
    /// `alertname` of the scrape-target alert.
    pub const SCRAPE_TARGET_DOWN: &str = "ScrapeTargetDown";
}

/// An alert's identity: FNV-1a 64 over the sorted label pairs, as Alertmanager computes it
/// (`model.LabelSet.Fingerprint`). Displayed as 16 lowercase hex digits.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Fingerprint(pub u64);

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
const SEPARATOR: u8 = 0xff;

impl Fingerprint {
    /// The fingerprint of a label set. Labels with empty values are skipped, because
    /// Alertmanager drops them on ingest (an empty label is the same as a missing one).
    pub fn of(labels: &Labels) -> Fingerprint {
        let mut h = FNV_OFFSET;
        let mut feed = |bytes: &[u8]| {
            for &b in bytes {
                h ^= u64::from(b);
                h = h.wrapping_mul(FNV_PRIME);
            }
        };
        // BTreeMap iterates in byte order of the names: exactly Go's sort.Strings.
        for (name, value) in labels.iter().filter(|(_, v)| !v.is_empty()) {
            feed(name.as_bytes());
            feed(&[SEPARATOR]);
            feed(value.as_bytes());
            feed(&[SEPARATOR]);
        }
        Fingerprint(h)
    }

    /// Parses 16 hex digits (the display form).
    pub fn parse(text: &str) -> Option<Fingerprint> {
        if text.len() != 16 {
            return None;
        }
        u64::from_str_radix(text, 16).ok().map(Fingerprint)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Whether an alert is firing or resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AlertStatus {
    /// The condition holds (after `for`).
    Firing,
    /// The condition stopped holding (after `keep_firing_for`).
    Resolved,
}

impl AlertStatus {
    /// `firing` or `resolved`, as in Alertmanager payloads.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
        }
    }
}

/// One alert instance: the unit the notification pipeline routes, groups, silences and inhibits.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Alert {
    /// Identity labels (non-empty; no empty values).
    pub labels: Labels,
    /// Information for people; the newest version wins and never causes a notification.
    pub annotations: Labels,
    /// When the alert started firing (its `for` elapsed).
    pub starts_at: Timestamp,
    /// When it resolved; `None` while firing.
    pub ends_at: Option<Timestamp>,
    /// Link to what generated the alert (the agent's API page for the SLO, probe or target).
    pub generator_url: String,
}

impl Alert {
    /// The alert's identity.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.labels)
    }

    /// Firing or resolved.
    pub fn status(&self) -> AlertStatus {
        if self.ends_at.is_some() {
            AlertStatus::Resolved
        } else {
            AlertStatus::Firing
        }
    }

    /// A label's value, empty when missing (Alertmanager's rule for matchers and `equal`).
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }
}

/// Prometheus' label-set rendering: `{a="x", b="y"}` (sorted, `", "` between pairs, values
/// quoted Go-style). Used in group keys, so it must match Alertmanager byte for byte.
pub fn labels_string(labels: &Labels) -> String {
    let mut out = String::with_capacity(2 + labels.len() * 16);
    out.push('{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(k);
        out.push('=');
        matcher::go_quote_into(&mut out, v);
    }
    out.push('}');
    out
}

/// The `burnwatch silence add` command line that silences exactly the alerts with these labels
/// (one `name="value"` matcher per label), shown in notifications so on-call can paste it.
pub fn silence_command(labels: &Labels, duration: &str) -> String {
    let mut cmd = String::from("burnwatch silence add");
    for (k, v) in labels {
        let mut m = String::with_capacity(k.len() + v.len() + 3);
        m.push_str(k);
        m.push('=');
        matcher::go_quote_into(&mut m, v);
        cmd.push(' ');
        shell_quote_into(&mut cmd, &m);
    }
    cmd.push_str(" --duration ");
    cmd.push_str(duration);
    cmd.push_str(" --comment '<why>'");
    cmd
}

/// POSIX shell single quoting: `'...'`, with each `'` written as `'\''`.
fn shell_quote_into(out: &mut String, s: &str) {
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
}

/// RFC 3339 with nanosecond-free millisecond precision in UTC, as receivers expect
/// (`2026-11-21T15:02:04.422Z`).
pub fn rfc3339(t: Timestamp) -> String {
    match jiff::Timestamp::from_millisecond(t.millis()) {
        Ok(ts) => format!("{ts:.3}"),
        // Out of jiff's range (year ±9999): clamp rather than fail a notification.
        Err(_) => "0001-01-01T00:00:00Z".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn fingerprints_match_alertmanager_0_25() {
        // Vectors read from a live Alertmanager 0.25 API (shared/reference/alerting-anchors §1.2).
        let cases = [
            (
                labels(&[
                    ("alertname", "InstanceDown"),
                    ("cluster", "c1"),
                    ("instance", "a"),
                    ("severity", "page"),
                ]),
                "1a276fe0c075a6c1",
            ),
            (
                labels(&[
                    ("alertname", "InstanceDown"),
                    ("cluster", "c1"),
                    ("instance", "b"),
                    ("severity", "page"),
                ]),
                "61b2b6ffd0c68136",
            ),
            (
                labels(&[("alertname", "Silly"), ("cluster", "c1")]),
                "6db874e07b153fcd",
            ),
            (
                labels(&[
                    ("alertname", "Restarty"),
                    ("cluster", "c9"),
                    ("severity", "ticket"),
                ]),
                "82586533bbf5f48f",
            ),
            (Labels::new(), "cbf29ce484222325"),
        ];
        for (l, want) in cases {
            let fp = Fingerprint::of(&l);
            assert_eq!(fp.to_string(), want, "{l:?}");
            assert_eq!(Fingerprint::parse(want), Some(fp));
        }
    }

    #[test]
    fn empty_label_values_do_not_change_identity() {
        let a = labels(&[("alertname", "Silly"), ("cluster", "c1")]);
        let b = labels(&[("alertname", "Silly"), ("cluster", "c1"), ("zone", "")]);
        assert_eq!(Fingerprint::of(&a), Fingerprint::of(&b));
    }

    #[test]
    fn label_strings_match_prometheus() {
        let l = labels(&[("cluster", "c1"), ("alertname", "Instance\"Down\\")]);
        assert_eq!(
            labels_string(&l),
            r#"{alertname="Instance\"Down\\", cluster="c1"}"#
        );
        assert_eq!(labels_string(&Labels::new()), "{}");
    }

    #[test]
    fn silence_commands_quote_values() {
        let l = labels(&[("alertname", "SloBurnRate"), ("slo", "it's")]);
        assert_eq!(
            silence_command(&l, "2h"),
            r#"burnwatch silence add 'alertname="SloBurnRate"' 'slo="it'\''s"' --duration 2h --comment '<why>'"#
        );
    }

    #[test]
    fn rfc3339_has_millisecond_precision() {
        assert_eq!(
            rfc3339(Timestamp::from_millis(1_795_273_324_422)),
            "2026-11-21T15:02:04.422Z"
        );
        assert_eq!(rfc3339(Timestamp::from_secs(0)), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn status_follows_ends_at() {
        let mut a = Alert {
            labels: labels(&[("alertname", "X")]),
            annotations: Labels::new(),
            starts_at: Timestamp::from_secs(10),
            ends_at: None,
            generator_url: String::new(),
        };
        assert_eq!(a.status(), AlertStatus::Firing);
        assert_eq!(a.label("missing"), "");
        a.ends_at = Some(Timestamp::from_secs(20));
        assert_eq!(a.status(), AlertStatus::Resolved);
    }
}
