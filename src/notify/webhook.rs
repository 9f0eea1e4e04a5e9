//! The generic webhook integration.
//!
//! The webhook POSTs Alertmanager's webhook payload, `version: "4"`, field for field (so tools
//! written for Alertmanager consume it unchanged), plus `notification_reason` (Alertmanager
//! v0.32+). [`Payload`] also deserializes, so consumers and tests can read it back. Transport,
//! timeouts, classification and redaction are the shared [`crate::http_client`]'s.

use std::sync::Arc;

use hyper::header;

use crate::alert::{Alert, Fingerprint, rfc3339};
use crate::http_client::{
    DEFAULT_TIMEOUT, HttpAuth, HttpClient, Url, classify, decode_auth, secret_header, wall_now,
};
use crate::notify::render::RenderContext;
use crate::notify::{Integration, Notification, SendError, SendFuture};
use crate::rules::decode::{Decoder, MapReader};
use crate::rules::model::Labels;
use crate::rules::node::Node;
use crate::secret::Secret;
use crate::secret::decode_url_secret;
use crate::time::{Dur, Timestamp};

/// Alertmanager's zero time, which it writes as `endsAt` of firing alerts.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

// ---- the webhook ----

/// One `webhook:` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookConfig {
    /// Where to POST: an http(s) URL, or `{env: VAR}` / `{file: path}` when the URL carries a
    /// token.
    pub url: Secret,
    /// Send notifications about resolved alerts (default true, as Alertmanager).
    pub send_resolved: bool,
    /// At most this many alerts per payload, the rest counted in `truncatedAlerts` (0 = all).
    pub max_alerts: usize,
    /// Bound of one attempt (connect, send, response; default 10s).
    pub timeout: Dur,
    /// Optional `bearer_token` or `basic_auth`.
    pub auth: Option<HttpAuth>,
}

/// Decodes one `webhook:` entry.
pub(crate) fn decode(d: &mut Decoder<'_>, node: &Node) -> Option<WebhookConfig> {
    const KEYS: &[&str] = &[
        "url",
        "send_resolved",
        "max_alerts",
        "timeout",
        "bearer_token",
        "basic_auth",
    ];
    let m = MapReader::new(d, node, "a webhook", KEYS)?;
    let before = d.errors();
    let url = m.req(d, "url", "https://hooks.example/alerts", decode_url_secret);
    let send_resolved = m.opt(d, "send_resolved", Decoder::bool).unwrap_or(true);
    let max_alerts = m.opt(d, "max_alerts", Decoder::uint).unwrap_or(0);
    let timeout = m
        .opt(d, "timeout", Decoder::pos_dur)
        .unwrap_or(DEFAULT_TIMEOUT);
    let auth = decode_auth(d, &m);
    let url = url?;
    (d.errors() == before).then_some(WebhookConfig {
        url,
        send_resolved,
        max_alerts: usize::try_from(max_alerts).unwrap_or(usize::MAX),
        timeout,
        auth,
    })
}

/// Alertmanager's webhook payload, version 4, plus `notification_reason`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payload {
    /// The receiver's name.
    pub receiver: String,
    /// `firing` when any alert of the payload fires, else `resolved`.
    pub status: String,
    /// The alerts (after `max_alerts` truncation).
    pub alerts: Vec<PayloadAlert>,
    /// The group's labels.
    pub group_labels: Labels,
    /// Labels shared by every alert of the payload.
    pub common_labels: Labels,
    /// Annotations shared by every alert of the payload.
    pub common_annotations: Labels,
    /// The agent's external URL.
    #[serde(rename = "externalURL")]
    pub external_url: String,
    /// Always `4`.
    pub version: String,
    /// The group key (stable; consumers dedup on it).
    pub group_key: String,
    /// Alerts left out by `max_alerts`.
    pub truncated_alerts: u64,
    /// Why the notification was sent (Alertmanager v0.32+ wording).
    #[serde(rename = "notification_reason", default)]
    pub notification_reason: String,
}

/// One alert of a [`Payload`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PayloadAlert {
    /// `firing` or `resolved`.
    pub status: String,
    /// The alert's labels.
    pub labels: Labels,
    /// The alert's annotations.
    pub annotations: Labels,
    /// RFC 3339.
    pub starts_at: String,
    /// RFC 3339; `0001-01-01T00:00:00Z` while firing.
    pub ends_at: String,
    /// Link to the generator.
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    /// The fingerprint, 16 hex digits.
    pub fingerprint: String,
}

/// Why a payload could not be read back into alerts.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("alert {index}: {reason}")]
pub struct PayloadError {
    /// The alert's position in the payload.
    pub index: usize,
    /// What is wrong.
    pub reason: String,
}

impl Payload {
    /// The payload for `n`, keeping the first `max_alerts` alerts (0 = all). Status and the
    /// common sets describe the alerts kept, as in Alertmanager.
    pub fn new(n: &Notification, external_url: &str, max_alerts: usize) -> Payload {
        let keep = if max_alerts == 0 {
            n.alerts.len()
        } else {
            max_alerts.min(n.alerts.len())
        };
        let kept = Notification {
            alerts: n.alerts[..keep].to_vec(),
            ..n.clone()
        };
        Payload {
            receiver: n.receiver.clone(),
            status: kept.status().as_str().to_owned(),
            alerts: kept.alerts.iter().map(PayloadAlert::new).collect(),
            group_labels: n.group_labels.clone(),
            common_labels: kept.common_labels(),
            common_annotations: kept.common_annotations(),
            external_url: external_url.to_owned(),
            version: "4".to_owned(),
            group_key: n.group_key.clone(),
            truncated_alerts: (n.alerts.len() - keep) as u64,
            notification_reason: n.reason.as_str().to_owned(),
        }
    }

    /// The alerts back as [`Alert`]s (firing alerts get `ends_at: None`). Checks each
    /// fingerprint against its labels.
    pub fn to_alerts(&self) -> Result<Vec<Alert>, PayloadError> {
        self.alerts
            .iter()
            .enumerate()
            .map(|(index, a)| {
                a.to_alert()
                    .map_err(|reason| PayloadError { index, reason })
            })
            .collect()
    }
}

impl PayloadAlert {
    /// The payload form of an alert.
    pub fn new(a: &Alert) -> PayloadAlert {
        PayloadAlert {
            status: a.status().as_str().to_owned(),
            labels: a.labels.clone(),
            annotations: a.annotations.clone(),
            starts_at: rfc3339(a.starts_at),
            ends_at: a.ends_at.map_or_else(|| ZERO_TIME.to_owned(), rfc3339),
            generator_url: a.generator_url.clone(),
            fingerprint: a.fingerprint().to_string(),
        }
    }

    /// Reads the alert back.
    pub fn to_alert(&self) -> Result<Alert, String> {
        let time = |s: &str| -> Result<Timestamp, String> {
            let t: jiff::Timestamp = s.parse().map_err(|e| format!("time `{s}`: {e}"))?;
            Ok(Timestamp::from_millis(t.as_millisecond()))
        };
        let firing = match self.status.as_str() {
            "firing" => true,
            "resolved" => false,
            other => return Err(format!("status `{other}` is neither firing nor resolved")),
        };
        let alert = Alert {
            labels: self.labels.clone(),
            annotations: self.annotations.clone(),
            starts_at: time(&self.starts_at)?,
            ends_at: if firing {
                None
            } else {
                Some(time(&self.ends_at)?)
            },
            generator_url: self.generator_url.clone(),
        };
        if Fingerprint::parse(&self.fingerprint) != Some(alert.fingerprint()) {
            return Err(format!(
                "fingerprint {} does not match the labels ({})",
                self.fingerprint,
                alert.fingerprint()
            ));
        }
        Ok(alert)
    }
}

/// The webhook integration.
#[derive(Debug)]
pub struct Webhook {
    cfg: WebhookConfig,
    ctx: RenderContext,
    client: Arc<HttpClient>,
}

impl Webhook {
    /// A webhook sending through `client`.
    pub fn new(cfg: WebhookConfig, ctx: RenderContext, client: Arc<HttpClient>) -> Webhook {
        Webhook { cfg, ctx, client }
    }

    async fn post(&self, n: &Notification) -> Result<(), SendError> {
        let permanent = |message: String| SendError::Permanent { message };
        let url = self
            .cfg
            .url
            .resolve()
            .map_err(|e| permanent(format!("webhook url: {e}")))?
            .into_inner();
        let mut headers = Vec::new();
        if let Some(auth) = &self.cfg.auth {
            let value = auth
                .authorization()
                .map_err(|e| permanent(format!("webhook credentials: {e}")))?;
            let value = secret_header(value.expose())
                .map_err(|_| permanent("webhook credentials are not a valid header".into()))?;
            headers.push((header::AUTHORIZATION, value));
        }
        let payload = Payload::new(n, &self.ctx.external_url, self.cfg.max_alerts);
        let body =
            serde_json::to_vec(&payload).map_err(|e| permanent(format!("webhook payload: {e}")))?;
        let url = Url::parse(&url)?;
        let resp = self
            .client
            .post_json(&url, &headers, body, self.cfg.timeout)
            .await?;
        Ok(classify(
            &format!("webhook {}", url.host()),
            &resp,
            wall_now(),
        )?)
    }
}

impl Integration for Webhook {
    fn kind(&self) -> &'static str {
        "webhook"
    }

    fn send_resolved(&self) -> bool {
        self.cfg.send_resolved
    }

    fn send<'a>(&'a self, n: &'a Notification) -> SendFuture<'a> {
        Box::pin(self.post(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::render::tests::{burn_alert, notification};

    #[test]
    fn payload_matches_alertmanager_v4() {
        let n = notification(vec![
            burn_alert("availability", None),
            burn_alert("latency", Some(1_795_273_300)),
        ]);
        let p = Payload::new(&n, "http://agent:9464", 0);
        let json = serde_json::to_value(&p).expect("json");
        let keys: Vec<&str> = json
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        let mut want = vec![
            "receiver",
            "status",
            "alerts",
            "groupLabels",
            "commonLabels",
            "commonAnnotations",
            "externalURL",
            "version",
            "groupKey",
            "truncatedAlerts",
            "notification_reason",
        ];
        let mut got = keys.clone();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want);
        assert_eq!(json["status"], "firing");
        assert_eq!(json["version"], "4");
        assert_eq!(json["alerts"][0]["endsAt"], ZERO_TIME);
        assert_eq!(json["alerts"][0]["startsAt"], "2026-11-21T15:00:00.000Z");
        assert_eq!(json["alerts"][1]["endsAt"], "2026-11-21T15:01:40.000Z");
        assert_eq!(json["alerts"][1]["status"], "resolved");
        assert_eq!(
            json["alerts"][0]["generatorURL"],
            "/api/v1/slos/checkout/availability"
        );
        assert_eq!(json["commonLabels"]["slo"], serde_json::Value::Null);
        assert_eq!(json["commonLabels"]["service"], "checkout");
        assert_eq!(json["notification_reason"], "first notification");
        let back: Payload = serde_json::from_value(json).expect("parse back");
        assert_eq!(back, p);
        assert_eq!(back.to_alerts().expect("alerts"), n.alerts);
    }

    #[test]
    fn truncation_counts_and_recomputes_common_sets() {
        let n = notification(vec![
            burn_alert("availability", Some(1_795_273_300)),
            burn_alert("latency", None),
        ]);
        let p = Payload::new(&n, "", 1);
        assert_eq!(p.alerts.len(), 1);
        assert_eq!(p.truncated_alerts, 1);
        // Only the resolved alert is kept, so the payload is resolved.
        assert_eq!(p.status, "resolved");
        assert_eq!(
            p.common_labels.get("slo").map(String::as_str),
            Some("availability")
        );
    }

    #[test]
    fn alertmanager_bodies_parse() {
        let body = r#"{"receiver":"hook","status":"firing","alerts":[{"status":"firing",
          "labels":{"alertname":"InstanceDown","cluster":"c1","instance":"a","severity":"page"},
          "annotations":{"summary":"a down"},"startsAt":"2026-11-21T15:02:04.422151814Z",
          "endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prom/graph",
          "fingerprint":"1a276fe0c075a6c1"}],"groupLabels":{"alertname":"InstanceDown"},
          "commonLabels":{},"commonAnnotations":{},"externalURL":"http://vm:19093","version":"4",
          "groupKey":"{}:{alertname=\"InstanceDown\"}","truncatedAlerts":0}"#;
        let p: Payload = serde_json::from_str(body).expect("AM 0.25 body");
        assert_eq!(p.notification_reason, "");
        let alerts = p.to_alerts().expect("alerts");
        assert_eq!(
            alerts[0].starts_at,
            Timestamp::from_millis(1_795_273_324_422)
        );
        assert_eq!(alerts[0].ends_at, None);
        let mut bad = p.clone();
        bad.alerts[0].fingerprint = "0000000000000000".into();
        assert_eq!(bad.to_alerts().err().map(|e| e.index), Some(0));
    }
}
