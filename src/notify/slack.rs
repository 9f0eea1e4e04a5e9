//! The Slack integration: incoming webhooks with a `text` fallback and Block Kit `blocks`.
//!
//! The message carries the same actionable content as every other receiver (see
//! [`crate::notify::render`]): a header with the title, why it was sent now, the inhibited
//! count, one section per alert with its SLO numbers and buttons for its runbook, dashboard and
//! source, and the silence command. No colours: meaning is in the words. Slack answers `200` with
//! the body `ok` on success; anything else is an error, retried only on `429` (honouring
//! `Retry-After`) and `5xx`. The webhook URL is a secret (it is the credential) and never
//! appears in messages or logs.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::http_client::{DEFAULT_TIMEOUT, HttpClient, Url, body_excerpt, classify, wall_now};
use crate::notify::render::{self, RenderContext};
use crate::notify::{Integration, Notification, SendError, SendFuture};
use crate::rules::decode::{Decoder, MapReader};
use crate::rules::node::Node;
use crate::secret::Secret;
use crate::secret::decode_url_secret;
use crate::time::Dur;

/// Alerts shown as their own section; the rest are counted (Slack allows 50 blocks).
pub const MAX_ALERT_SECTIONS: usize = 10;
/// Slack's limit for a section's text.
const SECTION_TEXT_MAX: usize = 3000;
/// Slack's limit for a header's text.
const HEADER_TEXT_MAX: usize = 150;

/// One `slack:` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct SlackConfig {
    /// The incoming-webhook URL (a credential: prefer `{env: VAR}` or `{file: path}`).
    pub url: Secret,
    /// Send notifications about resolved alerts (default false, as Alertmanager).
    pub send_resolved: bool,
    /// Channel override (ignored by webhooks created by Slack apps).
    pub channel: Option<String>,
    /// User name override (ignored by webhooks created by Slack apps).
    pub username: Option<String>,
    /// Bound of one attempt (default 10s).
    pub timeout: Dur,
}

/// Decodes one `slack:` entry.
pub(crate) fn decode(d: &mut Decoder<'_>, node: &Node) -> Option<SlackConfig> {
    const KEYS: &[&str] = &["url", "send_resolved", "channel", "username", "timeout"];
    let m = MapReader::new(d, node, "a Slack integration", KEYS)?;
    let before = d.errors();
    let url = m.req(d, "url", "{env: SLACK_WEBHOOK_URL}", decode_url_secret);
    let send_resolved = m.opt(d, "send_resolved", Decoder::bool).unwrap_or(false);
    let channel = m.opt(d, "channel", Decoder::string);
    let username = m.opt(d, "username", Decoder::string);
    let timeout = m
        .opt(d, "timeout", Decoder::pos_dur)
        .unwrap_or(DEFAULT_TIMEOUT);
    let url = url?;
    (d.errors() == before).then_some(SlackConfig {
        url,
        send_resolved,
        channel,
        username,
        timeout,
    })
}

/// Escapes Slack mrkdwn control characters (`&`, `<`, `>`).
pub fn escape_mrkdwn(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Cuts `s` to at most `max` characters, marking the cut with `…`.
pub fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The message body for `n`.
pub fn body(n: &Notification, ctx: &RenderContext, cfg: &SlackConfig) -> Value {
    let title = render::summary(n);
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": truncate_chars(&title, HEADER_TEXT_MAX)}
    })];
    let mut intro = format!(
        "*Why now:* {}\n*Group:* `{}` (receiver {})",
        escape_mrkdwn(n.reason.as_str()),
        escape_mrkdwn(&crate::alert::labels_string(&n.group_labels)),
        escape_mrkdwn(&n.receiver)
    );
    if let Some(line) = render::inhibited_line(n) {
        intro.push_str(&format!("\n*{}*", escape_mrkdwn(&line)));
    }
    blocks.push(section(&intro));
    let ordered: Vec<_> = n.firing().chain(n.resolved()).collect();
    for (i, a) in ordered.iter().take(MAX_ALERT_SECTIONS).enumerate() {
        let status = match a.ends_at {
            None => "FIRING",
            Some(_) => "RESOLVED",
        };
        let mut t = format!("*{status}: {}*", escape_mrkdwn(&render::alert_summary(a)));
        for f in render::facts(a) {
            t.push_str(&format!("\n• {}: {}", f.name, escape_mrkdwn(&f.value)));
        }
        t.push_str(&format!("\n• When: {}", escape_mrkdwn(&render::timing(a))));
        let links = render::links(a, ctx);
        if a.ends_at.is_none() && !links.iter().any(|l| l.text == "Runbook") {
            t.push_str("\n• Runbook: none (add a `runbook_url` annotation)");
        }
        blocks.push(section(&t));
        if !links.is_empty() {
            let buttons: Vec<Value> = links
                .iter()
                .map(|l| {
                    json!({
                        "type": "button",
                        "action_id": format!("{}-{i}", l.text.to_ascii_lowercase()),
                        "text": {"type": "plain_text", "text": l.text},
                        "url": l.url,
                    })
                })
                .collect();
            blocks.push(json!({"type": "actions", "elements": buttons}));
        }
    }
    if ordered.len() > MAX_ALERT_SECTIONS {
        blocks.push(context(&format!(
            "+{} more alerts not shown",
            ordered.len() - MAX_ALERT_SECTIONS
        )));
    }
    let commands = render::silence_commands(n, ctx);
    if !commands.is_empty() {
        let mut t = format!(
            "*Silence this group for {}:*",
            escape_mrkdwn(&ctx.silence_duration)
        );
        for c in commands {
            t.push_str(&format!("\n```{}```", escape_mrkdwn(&c)));
        }
        blocks.push(section(&t));
    }
    blocks.push(context(&format!(
        "Sent by burnwatch at {} ({})",
        crate::alert::rfc3339(n.at),
        escape_mrkdwn(&ctx.external_url)
    )));
    let mut body = json!({"text": title, "blocks": blocks});
    if let Some(c) = &cfg.channel {
        body["channel"] = json!(c);
    }
    if let Some(u) = &cfg.username {
        body["username"] = json!(u);
    }
    body
}

fn section(text: &str) -> Value {
    json!({
        "type": "section",
        "text": {"type": "mrkdwn", "text": truncate_chars(text, SECTION_TEXT_MAX)}
    })
}

fn context(text: &str) -> Value {
    json!({"type": "context", "elements": [{"type": "mrkdwn", "text": truncate_chars(text, SECTION_TEXT_MAX)}]})
}

/// The Slack integration.
#[derive(Debug)]
pub struct Slack {
    cfg: SlackConfig,
    ctx: RenderContext,
    client: Arc<HttpClient>,
}

impl Slack {
    /// A Slack integration sending through `client`.
    pub fn new(cfg: SlackConfig, ctx: RenderContext, client: Arc<HttpClient>) -> Slack {
        Slack { cfg, ctx, client }
    }

    async fn post(&self, n: &Notification) -> Result<(), SendError> {
        let url = self
            .cfg
            .url
            .resolve()
            .map_err(|e| SendError::Permanent {
                message: format!("slack url: {e}"),
            })?
            .into_inner();
        let body = serde_json::to_vec(&body(n, &self.ctx, &self.cfg)).map_err(|e| {
            SendError::Permanent {
                message: format!("slack body: {e}"),
            }
        })?;
        let url = Url::parse(&url)?;
        let resp = self
            .client
            .post_json(&url, &[], body, self.cfg.timeout)
            .await?;
        classify("slack", &resp, wall_now())?;
        // Slack's success is exactly `200 ok`; a 2xx with another body is an error it reported.
        if resp.status == 200 && resp.body.trim_ascii() == b"ok" {
            Ok(())
        } else {
            Err(SendError::Permanent {
                message: format!("slack: HTTP {}{}", resp.status, body_excerpt(&resp.body)),
            })
        }
    }
}

impl Integration for Slack {
    fn kind(&self) -> &'static str {
        "slack"
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

    fn cfg() -> SlackConfig {
        SlackConfig {
            url: Secret::Literal("https://hooks.slack.example/services/T/B/x".into()),
            send_resolved: false,
            channel: Some("#oncall".into()),
            username: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    #[test]
    fn blocks_carry_the_actionable_content() {
        let mut a = burn_alert("availability", None);
        a.annotations
            .insert("description".into(), "errors <5xx> & timeouts".into());
        let n = notification(vec![a]);
        let b = body(&n, &RenderContext::new("http://agent:9464"), &cfg());
        assert_eq!(b["text"], "[FIRING:1] checkout availability: burning 14.4x");
        assert_eq!(b["channel"], "#oncall");
        assert!(b.get("username").is_none());
        let blocks = b["blocks"].as_array().expect("blocks");
        let kinds: Vec<&str> = blocks
            .iter()
            .map(|b| b["type"].as_str().expect("type"))
            .collect();
        assert_eq!(
            kinds,
            vec![
                "header", "section", "section", "actions", "section", "context"
            ]
        );
        assert_eq!(
            blocks[1]["text"]["text"],
            "*Why now:* first notification\n*Group:* `{service=\"checkout\"}` (receiver oncall)\n*3 dependent alerts suppressed (inhibited while this fires)*"
        );
        assert_eq!(
            blocks[2]["text"]["text"],
            "*FIRING: checkout availability: burning 14.4x*\n• SLO: checkout/availability, objective 99.9%\n• SLI: 98.51%\n• Budget left: 61%\n• Burn rate: 14.9x over 1h, 18.0x over 5m\n• Exhausts in: 1d 6h\n• Severity: page (tier page_fast, window 1h/5m)\n• Details: errors &lt;5xx&gt; &amp; timeouts\n• When: since 2026-11-21T15:00:00.000Z"
        );
        let buttons: Vec<(&str, &str)> = blocks[3]["elements"]
            .as_array()
            .expect("buttons")
            .iter()
            .map(|e| {
                (
                    e["text"]["text"].as_str().expect("text"),
                    e["url"].as_str().expect("url"),
                )
            })
            .collect();
        assert_eq!(
            buttons,
            vec![
                ("Runbook", "https://runbooks.example/checkout/burn"),
                (
                    "Dashboard",
                    "https://grafana.example/d/checkout?from=now-6h"
                ),
                (
                    "Source",
                    "http://agent:9464/api/v1/slos/checkout/availability"
                ),
            ]
        );
        assert_eq!(
            blocks[4]["text"]["text"],
            "*Silence this group for 2h:*\n```burnwatch silence add 'service=\"checkout\"' --duration 2h --comment '&lt;why&gt;'```"
        );
    }

    #[test]
    fn many_alerts_stay_within_slack_limits() {
        let alerts = (0..25)
            .map(|i| burn_alert(&format!("slo{i}"), None))
            .collect();
        let n = notification(alerts);
        let b = body(&n, &RenderContext::new("http://agent:9464"), &cfg());
        let blocks = b["blocks"].as_array().expect("blocks");
        assert!(blocks.len() <= 50);
        assert!(
            blocks
                .iter()
                .any(|b| b["elements"][0]["text"] == "+15 more alerts not shown")
        );
        assert_eq!(truncate_chars("abcdef", 4), "abc…");
        assert_eq!(truncate_chars("abc", 4), "abc");
    }
}
