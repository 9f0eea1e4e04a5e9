//! The PagerDuty integration: Events API v2 (`POST /v2/enqueue`).
//!
//! As Alertmanager does, one PagerDuty alert stands for one aggregation group: `dedup_key` is the
//! hex SHA-256 of the group key, the event is a `trigger` while any alert of the group fires and
//! a `resolve` once the whole group resolved. The trigger's summary is the notification title
//! (what a responder sees first, on a phone), with the SLO numbers, every alert and the silence
//! command in `custom_details` and the runbook, dashboard and source in `links`. Events over
//! PagerDuty's 512 KB limit lose `custom_details` (Alertmanager's rule). `202` is success, `400`
//! permanent, `429` and `5xx` retryable. The routing key is a secret and never logged.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::alert::{labels_string, names, rfc3339};
use crate::http_client::{DEFAULT_TIMEOUT, HttpClient, Url, classify, wall_now};
use crate::notify::render::{self, RenderContext, is_http_url};
use crate::notify::slack::truncate_chars;
use crate::notify::{Integration, Notification, SendError, SendFuture};
use crate::rules::decode::{Decoder, MapReader};
use crate::rules::node::{Kind, Node};
use crate::secret::Secret;
use crate::secret::decode_secret;
use crate::time::Dur;

/// PagerDuty's Events API v2 endpoint.
pub const DEFAULT_URL: &str = "https://events.pagerduty.com/v2/enqueue";
/// PagerDuty's limit for an event (Alertmanager uses the same 512000 bytes).
pub const MAX_EVENT_BYTES: usize = 512_000;
/// PagerDuty's limit for `payload.summary`.
pub const MAX_SUMMARY_CHARS: usize = 1024;
/// The severities PagerDuty accepts, most severe first.
pub const SEVERITIES: &[&str] = &["critical", "error", "warning", "info"];

/// One `pagerduty:` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct PagerDutyConfig {
    /// The integration (routing) key of the service or ruleset (a secret).
    pub routing_key: Secret,
    /// The Events API URL (default [`DEFAULT_URL`]).
    pub url: String,
    /// Send `resolve` events when the group resolves (default true, as Alertmanager).
    pub send_resolved: bool,
    /// Alert `severity` label value -> PagerDuty severity (default `page: critical`,
    /// `ticket: warning`).
    pub severity: BTreeMap<String, String>,
    /// PagerDuty severity for alerts whose severity is not in the map (default `error`).
    pub default_severity: String,
    /// `payload.source` (default: the group's `service` label, else `burnwatch`).
    pub source: Option<String>,
    /// `client`, shown in PagerDuty next to the link back (default `burnwatch`).
    pub client: String,
    /// Bound of one attempt (default 10s).
    pub timeout: Dur,
}

impl PagerDutyConfig {
    /// A configuration with every default and this routing key.
    pub fn new(routing_key: Secret) -> PagerDutyConfig {
        PagerDutyConfig {
            routing_key,
            url: DEFAULT_URL.to_owned(),
            send_resolved: true,
            severity: default_severity_map(),
            default_severity: "error".to_owned(),
            source: None,
            client: "burnwatch".to_owned(),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

fn default_severity_map() -> BTreeMap<String, String> {
    [("page", "critical"), ("ticket", "warning")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Decodes one `pagerduty:` entry.
pub(crate) fn decode(d: &mut Decoder<'_>, node: &Node) -> Option<PagerDutyConfig> {
    const KEYS: &[&str] = &[
        "routing_key",
        "url",
        "send_resolved",
        "severity",
        "default_severity",
        "source",
        "client",
        "timeout",
    ];
    let m = MapReader::new(d, node, "a PagerDuty integration", KEYS)?;
    let before = d.errors();
    let routing_key = m.req(
        d,
        "routing_key",
        "{env: PAGERDUTY_ROUTING_KEY}",
        decode_secret,
    );
    let mut cfg = PagerDutyConfig::new(Secret::Literal(String::new()));
    if let Some(u) = m.opt(d, "url", Decoder::url) {
        cfg.url = u;
    }
    if let Some(b) = m.opt(d, "send_resolved", Decoder::bool) {
        cfg.send_resolved = b;
    }
    if let Some(n) = m.get("severity") {
        // Keys are label values (any word), so the pairs are read directly, not by a schema.
        match n.kind() {
            Kind::Map(entries) => {
                let mut map = BTreeMap::new();
                for (k, v) in entries {
                    let key = d.scalar(k, "severity");
                    let value = d.choice(v, "severity", SEVERITIES);
                    if let (Some(k), Some(v)) = (key, value) {
                        map.insert(k, v.to_owned());
                    }
                }
                cfg.severity = map;
            }
            _ => d.type_error(
                n,
                "severity",
                "a mapping of `severity` label values to PagerDuty severities, e.g. {page: critical}",
            ),
        }
    }
    if let Some(s) = m.opt(d, "default_severity", |d, n, k| d.choice(n, k, SEVERITIES)) {
        cfg.default_severity = s.to_owned();
    }
    cfg.source = m.opt(d, "source", Decoder::string);
    if let Some(c) = m.opt(d, "client", Decoder::string) {
        cfg.client = c;
    }
    if let Some(t) = m.opt(d, "timeout", Decoder::pos_dur) {
        cfg.timeout = t;
    }
    cfg.routing_key = routing_key?;
    (d.errors() == before).then_some(cfg)
}

/// Alertmanager's `notify.Key.Hash()`: lowercase hex SHA-256 of the group key.
pub fn dedup_key(group_key: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, group_key.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether any alert fires: trigger, else resolve.
fn firing(n: &Notification) -> bool {
    n.status() == crate::alert::AlertStatus::Firing
}

/// The event for `n` (trigger or resolve), at most [`MAX_EVENT_BYTES`] when serialized.
pub fn event(
    n: &Notification,
    ctx: &RenderContext,
    cfg: &PagerDutyConfig,
    routing_key: &str,
) -> Value {
    let dedup = dedup_key(&n.group_key);
    if !firing(n) {
        return json!({
            "routing_key": routing_key,
            "dedup_key": dedup,
            "event_action": "resolve",
        });
    }
    let common = n.common_labels();
    let common_label = |k: &str| common.get(k).filter(|v| !v.is_empty()).cloned();
    let severity = n
        .firing()
        .map(|a| {
            cfg.severity
                .get(a.label(names::SEVERITY))
                .unwrap_or(&cfg.default_severity)
                .as_str()
        })
        .min_by_key(|s| SEVERITIES.iter().position(|x| x == s).unwrap_or(0))
        .unwrap_or(cfg.default_severity.as_str())
        .to_owned();
    let mut payload = json!({
        "summary": truncate_chars(&render::summary(n), MAX_SUMMARY_CHARS),
        "source": cfg.source.clone()
            .or_else(|| common_label(names::SERVICE))
            .unwrap_or_else(|| "burnwatch".to_owned()),
        "severity": severity,
        "timestamp": rfc3339(n.at),
    });
    let component = common_label(names::SLO)
        .or_else(|| common_label(names::PROBE))
        .or_else(|| common_label(names::TARGET));
    for (key, value) in [
        ("component", component),
        ("group", common_label(names::SERVICE)),
        ("class", common_label(names::ALERTNAME)),
    ] {
        if let Some(v) = value {
            payload[key] = json!(v);
        }
    }
    let alerts: Vec<Value> = n
        .firing()
        .chain(n.resolved())
        .map(|a| {
            let mut o = serde_json::Map::new();
            o.insert("status".into(), json!(a.status().as_str()));
            o.insert("summary".into(), json!(render::alert_summary(a)));
            for f in render::facts(a) {
                o.insert(f.name.to_owned(), json!(f.value));
            }
            o.insert("when".into(), json!(render::timing(a)));
            o.insert("labels".into(), json!(labels_string(&a.labels)));
            for l in render::links(a, ctx) {
                o.insert(l.text.to_ascii_lowercase(), json!(l.url));
            }
            Value::Object(o)
        })
        .collect();
    let mut details = json!({
        "why_now": n.reason.as_str(),
        "firing": n.firing().count(),
        "resolved": n.resolved().count(),
        "group": labels_string(&n.group_labels),
        "alerts": alerts,
        "silence": render::silence_commands(n, ctx).join("\n"),
    });
    if n.inhibited > 0 {
        details["dependent_alerts_suppressed"] = json!(n.inhibited);
    }
    payload["custom_details"] = details;
    let mut links: Vec<Value> = Vec::new();
    for a in n.firing() {
        for l in render::links(a, ctx) {
            let v = json!({"href": l.url, "text": l.text});
            if !links.contains(&v) {
                links.push(v);
            }
        }
    }
    let mut ev = json!({
        "routing_key": routing_key,
        "dedup_key": dedup,
        "event_action": "trigger",
        "payload": payload,
        "links": links,
        "client": cfg.client,
    });
    if is_http_url(&ctx.external_url) {
        ev["client_url"] = json!(ctx.external_url);
    }
    if serde_json::to_vec(&ev).map_or(0, |b| b.len()) > MAX_EVENT_BYTES {
        tracing::warn!(
            group_key = %n.group_key,
            "PagerDuty event over {MAX_EVENT_BYTES} bytes; dropping custom_details"
        );
        if let Some(p) = ev["payload"].as_object_mut() {
            p.remove("custom_details");
        }
    }
    ev
}

/// The PagerDuty integration.
#[derive(Debug)]
pub struct PagerDuty {
    cfg: PagerDutyConfig,
    ctx: RenderContext,
    client: Arc<HttpClient>,
}

impl PagerDuty {
    /// A PagerDuty integration sending through `client`.
    pub fn new(cfg: PagerDutyConfig, ctx: RenderContext, client: Arc<HttpClient>) -> PagerDuty {
        PagerDuty { cfg, ctx, client }
    }

    async fn post(&self, n: &Notification) -> Result<(), SendError> {
        if !firing(n) && !self.cfg.send_resolved {
            return Ok(());
        }
        let key = self
            .cfg
            .routing_key
            .resolve()
            .map_err(|e| SendError::Permanent {
                message: format!("pagerduty routing_key: {e}"),
            })?
            .into_inner();
        let body = serde_json::to_vec(&event(n, &self.ctx, &self.cfg, &key)).map_err(|e| {
            SendError::Permanent {
                message: format!("pagerduty event: {e}"),
            }
        })?;
        let url = Url::parse(&self.cfg.url)?;
        let resp = self
            .client
            .post_json(&url, &[], body, self.cfg.timeout)
            .await?;
        Ok(classify("pagerduty", &resp, wall_now())?)
    }
}

impl Integration for PagerDuty {
    fn kind(&self) -> &'static str {
        "pagerduty"
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
    use crate::time::Timestamp;

    #[test]
    fn dedup_key_is_sha256_of_the_group_key() {
        // sha256("") and sha256("abc") from FIPS 180-2.
        assert_eq!(
            dedup_key(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            dedup_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn trigger_event_fields() {
        let mut ticket = burn_alert("latency", None);
        ticket.labels.insert("severity".into(), "ticket".into());
        let n = notification(vec![ticket, burn_alert("availability", None)]);
        let cfg = PagerDutyConfig::new(Secret::Literal("k".into()));
        let ev = event(&n, &RenderContext::new("http://agent:9464"), &cfg, "KEY");
        assert_eq!(ev["event_action"], "trigger");
        assert_eq!(ev["routing_key"], "KEY");
        assert_eq!(ev["dedup_key"], dedup_key(&n.group_key));
        // The most severe of the firing alerts decides.
        assert_eq!(ev["payload"]["severity"], "critical");
        assert_eq!(ev["payload"]["source"], "checkout");
        assert_eq!(ev["payload"]["group"], "checkout");
        assert_eq!(ev["payload"]["class"], "SloBurnRate");
        assert!(ev["payload"].get("component").is_none());
        assert_eq!(
            ev["payload"]["summary"],
            "[FIRING:2] checkout latency: burning 14.4x (+1 more)"
        );
        assert_eq!(ev["payload"]["timestamp"], "2026-11-21T15:02:04.000Z");
        let d = &ev["payload"]["custom_details"];
        assert_eq!(d["why_now"], "first notification");
        assert_eq!(d["dependent_alerts_suppressed"], 3);
        assert_eq!(d["alerts"][1]["Budget left"], "61%");
        assert_eq!(d["alerts"][1]["Exhausts in"], "1d 6h");
        assert_eq!(
            d["silence"],
            "burnwatch silence add 'service=\"checkout\"' --duration 2h --comment '<why>'"
        );
        let links = ev["links"].as_array().expect("links");
        // Runbook and dashboard are shared; the two sources differ.
        assert_eq!(links.len(), 4);
        assert_eq!(links[0]["text"], "Runbook");
        assert_eq!(ev["client"], "burnwatch");
        assert_eq!(ev["client_url"], "http://agent:9464");
    }

    #[test]
    fn resolve_and_size_cap() {
        let cfg = PagerDutyConfig::new(Secret::Literal("k".into()));
        let ctx = RenderContext::new("http://agent:9464");
        let n = notification(vec![burn_alert("a", Some(1_795_273_300))]);
        let ev = event(&n, &ctx, &cfg, "KEY");
        assert_eq!(
            ev,
            json!({"routing_key": "KEY", "dedup_key": dedup_key(&n.group_key), "event_action": "resolve"})
        );
        let mut big = burn_alert("a", None);
        big.annotations
            .insert("description".into(), "x".repeat(600_000));
        let mut n = notification(vec![big]);
        n.at = Timestamp::from_secs(1);
        let ev = event(&n, &ctx, &cfg, "KEY");
        assert!(ev["payload"].get("custom_details").is_none());
        assert!(serde_json::to_vec(&ev).expect("json").len() <= MAX_EVENT_BYTES);
        assert_eq!(ev["event_action"], "trigger");
    }
}
