//! Receiver configuration: the `receivers:` list, secrets, and building integrations from it.
//!
//! A receiver is a name plus any number of integrations of each kind (`webhook`, `slack`,
//! `pagerduty`). Each kind's module decodes its own entries; this module decodes the list,
//! checks names are unique, decodes secrets ([`crate::secret`]) and turns a
//! receiver into the [`Integration`]s the delivery workers drive. Integration indexes (used by
//! the notification log and [`crate::notify::delivery`]) follow the config order: every
//! `webhook` entry, then every `slack` entry, then every `pagerduty` entry.
//!
//! Secrets are read when building (so a missing variable or file fails at load time) and again
//! on every send (so a rotated file is picked up without a reload). No `Debug` or error message
//! ever contains a secret's value.

use std::sync::Arc;

use crate::http_client::{ClientError, HttpClient, Url};
use crate::notify::Integration;
use crate::notify::email::{self, Email, EmailConfig, EmailError};
use crate::notify::pagerduty::{self, PagerDuty, PagerDutyConfig};
use crate::notify::render::RenderContext;
use crate::notify::slack::{self, Slack, SlackConfig};
use crate::notify::webhook::{self, Webhook, WebhookConfig};
use crate::rules::decode::{Decoder, MapReader};
use crate::rules::node::Node;
/// Receiver configs hold [`Secret`]s; re-exported so building one needs a single import.
pub use crate::secret::{Secret, SecretError};

/// One `receivers:` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceiverConfig {
    /// The receiver's name, referenced by routes.
    pub name: String,
    /// Generic webhooks (Alertmanager payload version 4).
    pub webhook: Vec<WebhookConfig>,
    /// Slack incoming webhooks.
    pub slack: Vec<SlackConfig>,
    /// PagerDuty Events API v2 services.
    pub pagerduty: Vec<PagerDutyConfig>,
    /// Email over SMTP.
    pub email: Vec<EmailConfig>,
}

/// Why a receiver's integrations could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A secret is missing or unreadable.
    #[error("receiver {receiver}: {kind}[{index}] {field}: {source}")]
    Secret {
        /// The receiver.
        receiver: String,
        /// `webhook`, `slack` or `pagerduty`.
        kind: &'static str,
        /// The entry's position within its kind.
        index: usize,
        /// The field holding the secret.
        field: &'static str,
        /// What went wrong.
        source: SecretError,
    },
    /// A URL read from a secret is not an http(s) URL (the value is not repeated).
    #[error(
        "receiver {receiver}: {kind}[{index}] url: the value read from {from:?} is not an http(s) URL"
    )]
    BadUrl {
        /// The receiver.
        receiver: String,
        /// `webhook` or `slack`.
        kind: &'static str,
        /// The entry's position within its kind.
        index: usize,
        /// Where the value came from.
        from: Secret,
    },
    /// The HTTP client (TLS roots) could not be built.
    #[error("HTTP client: {0}")]
    Client(#[from] ClientError),
    /// An email integration could not be built (its password or CA file).
    #[error("receiver {receiver} email[{index}]: {source}")]
    Email {
        /// The receiver.
        receiver: String,
        /// The integration's index among the receiver's emails.
        index: usize,
        /// Why.
        source: EmailError,
    },
}

/// Decodes the `receivers:` list: names unique, each entry a mapping of `name` and integration
/// lists. None after reporting errors.
pub(crate) fn decode(d: &mut Decoder<'_>, node: &Node) -> Option<Vec<ReceiverConfig>> {
    let items = d.list(node, "receivers")?;
    let before = d.errors();
    let mut out: Vec<ReceiverConfig> = Vec::new();
    for item in items {
        if let Some(r) = decode_receiver(d, item) {
            if out.iter().any(|o| o.name == r.name) {
                d.error(
                    item.pos(),
                    format!(
                        "receiver `{}` is defined twice; give each receiver its own name",
                        r.name
                    ),
                );
                continue;
            }
            out.push(r);
        }
    }
    (d.errors() == before).then_some(out)
}

/// Decodes one receiver: `{name, webhook: [...], slack: [...], pagerduty: [...]}`.
pub(crate) fn decode_receiver(d: &mut Decoder<'_>, node: &Node) -> Option<ReceiverConfig> {
    const KEYS: &[&str] = &["name", "webhook", "slack", "pagerduty", "email"];
    let m = MapReader::new(d, node, "a receiver", KEYS)?;
    let before = d.errors();
    let name = m.req(d, "name", "oncall", Decoder::name);
    let each = |d: &mut Decoder<'_>, key: &'static str| -> Vec<&Node> {
        m.opt(d, key, Decoder::list)
            .map(|l| l.iter().collect())
            .unwrap_or_default()
    };
    let webhooks = each(d, "webhook");
    let slacks = each(d, "slack");
    let pds = each(d, "pagerduty");
    let emails = each(d, "email");
    let webhook: Vec<WebhookConfig> = webhooks
        .into_iter()
        .filter_map(|n| webhook::decode(d, n))
        .collect();
    let slack: Vec<SlackConfig> = slacks
        .into_iter()
        .filter_map(|n| slack::decode(d, n))
        .collect();
    let pagerduty: Vec<PagerDutyConfig> = pds
        .into_iter()
        .filter_map(|n| pagerduty::decode(d, n))
        .collect();
    let email: Vec<EmailConfig> = emails
        .into_iter()
        .filter_map(|n| email::decode(d, n))
        .collect();
    let name = name?;
    if d.errors() != before {
        return None;
    }
    if webhook.is_empty() && slack.is_empty() && pagerduty.is_empty() && email.is_empty() {
        // A receiver without integrations is Alertmanager's way to drop alerts on purpose.
        d.warn(
            m.pos,
            format!("receiver `{name}` has no integrations; alerts routed to it reach nobody"),
        );
    }
    Some(ReceiverConfig {
        name,
        webhook,
        slack,
        pagerduty,
        email,
    })
}

/// Builds one receiver's integrations in index order (webhooks, then Slack, then PagerDuty).
/// Every secret is read once here so a missing one fails at load time.
pub fn build(
    cfg: &ReceiverConfig,
    ctx: &RenderContext,
) -> Result<Vec<Arc<dyn Integration>>, BuildError> {
    let client = Arc::new(HttpClient::new()?);
    build_with(cfg, ctx, &client)
}

/// [`build`] with a shared HTTP client (one TLS configuration for all receivers).
pub fn build_with(
    cfg: &ReceiverConfig,
    ctx: &RenderContext,
    client: &Arc<HttpClient>,
) -> Result<Vec<Arc<dyn Integration>>, BuildError> {
    let mut out: Vec<Arc<dyn Integration>> = Vec::new();
    let secret = |kind, index, field, s: &Secret| {
        s.resolve().map_err(|source| BuildError::Secret {
            receiver: cfg.name.clone(),
            kind,
            index,
            field,
            source,
        })
    };
    let url = |kind, index, s: &Secret| -> Result<(), BuildError> {
        // The check the client makes at each send, so a bad URL fails at load time.
        if Url::parse(secret(kind, index, "url", s)?.expose()).is_ok() {
            Ok(())
        } else {
            Err(BuildError::BadUrl {
                receiver: cfg.name.clone(),
                kind,
                index,
                from: s.clone(),
            })
        }
    };
    for (i, w) in cfg.webhook.iter().enumerate() {
        url("webhook", i, &w.url)?;
        match &w.auth {
            Some(crate::http_client::HttpAuth::Bearer(s)) => {
                secret("webhook", i, "bearer_token", s)?;
            }
            Some(crate::http_client::HttpAuth::Basic { password, .. }) => {
                secret("webhook", i, "basic_auth.password", password)?;
            }
            None => {}
        }
        out.push(Arc::new(Webhook::new(
            w.clone(),
            ctx.clone(),
            client.clone(),
        )));
    }
    for (i, s) in cfg.slack.iter().enumerate() {
        url("slack", i, &s.url)?;
        out.push(Arc::new(Slack::new(s.clone(), ctx.clone(), client.clone())));
    }
    for (i, p) in cfg.pagerduty.iter().enumerate() {
        secret("pagerduty", i, "routing_key", &p.routing_key)?;
        out.push(Arc::new(PagerDuty::new(
            p.clone(),
            ctx.clone(),
            client.clone(),
        )));
    }
    for (index, e) in cfg.email.iter().enumerate() {
        let integration =
            Email::new(e.clone(), ctx.clone()).map_err(|source| BuildError::Email {
                receiver: cfg.name.clone(),
                index,
                source,
            })?;
        out.push(Arc::new(integration));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::node::parse_str;
    use crate::time::Dur;
    use std::path::{Path, PathBuf};

    fn decode_text(text: &str) -> (Option<Vec<ReceiverConfig>>, Vec<String>) {
        let docs = parse_str(text).expect("yaml");
        let mut d = Decoder::new(Path::new("/etc/burnwatch/alerting.yaml"), text);
        let m = MapReader::new(&mut d, &docs[0], "test", &["receivers"]).expect("map");
        let r = m.req(&mut d, "receivers", "[]", |d, n, _| decode(d, n));
        let diags = d.diagnostics.iter().map(ToString::to_string).collect();
        (r, diags)
    }

    #[test]
    fn every_field_decodes() {
        let (r, diags) = decode_text(
            r##"
receivers:
  - name: oncall
    webhook:
      - url: http://127.0.0.1:9/hook
        send_resolved: false
        max_alerts: 5
        timeout: 3s
        bearer_token: {env: HOOK_TOKEN}
      - url: {file: secrets/hook-url}
        basic_auth: {username: bw, password: {file: /run/secrets/pw}}
    slack:
      - url: {env: SLACK_URL}
        send_resolved: true
        channel: "#oncall"
        username: burnwatch
        timeout: 4s
    pagerduty:
      - routing_key: {env: PD_KEY}
        url: http://127.0.0.1:9/v2/enqueue
        severity: {page: critical, ticket: info}
        default_severity: error
        source: checkout.prod
        client: burnwatch-eu
        send_resolved: true
        timeout: 5s
  - name: quiet
"##,
        );
        let r = r.unwrap_or_else(|| panic!("{diags:?}"));
        assert_eq!(
            diags,
            vec![
                "/etc/burnwatch/alerting.yaml:27:5: warning: receiver `quiet` has no integrations; alerts routed to it reach nobody"
            ]
        );
        let oncall = &r[0];
        assert_eq!(oncall.name, "oncall");
        let w = &oncall.webhook[0];
        assert_eq!(w.url, Secret::Literal("http://127.0.0.1:9/hook".into()));
        assert!(!w.send_resolved);
        assert_eq!(w.max_alerts, 5);
        assert_eq!(w.timeout, Dur::from_secs(3));
        assert_eq!(
            w.auth,
            Some(crate::http_client::HttpAuth::Bearer(Secret::Env(
                "HOOK_TOKEN".into()
            )))
        );
        let w2 = &oncall.webhook[1];
        assert!(w2.send_resolved);
        assert_eq!(
            w2.url,
            Secret::File(PathBuf::from("/etc/burnwatch/secrets/hook-url"))
        );
        assert_eq!(
            w2.auth,
            Some(crate::http_client::HttpAuth::Basic {
                username: "bw".into(),
                password: Secret::File(PathBuf::from("/run/secrets/pw"))
            })
        );
        let s = &oncall.slack[0];
        assert!(s.send_resolved);
        assert_eq!(s.channel.as_deref(), Some("#oncall"));
        assert_eq!(s.username.as_deref(), Some("burnwatch"));
        assert_eq!(s.timeout, Dur::from_secs(4));
        let p = &oncall.pagerduty[0];
        assert_eq!(p.url, "http://127.0.0.1:9/v2/enqueue");
        assert_eq!(p.severity.get("ticket").map(String::as_str), Some("info"));
        assert_eq!(p.default_severity, "error");
        assert_eq!(p.source.as_deref(), Some("checkout.prod"));
        assert_eq!(p.client, "burnwatch-eu");
        assert_eq!(r[1].name, "quiet");
    }

    #[test]
    fn every_error_at_once_with_positions() {
        let (r, diags) = decode_text(
            r#"
receivers:
  - name: a
    opsgenie: [{to: x@example.com}]
    webhook:
      - url: ftp://x
        bearer_token: {env: A, file: b}
        basic_auth: {username: u, password: p}
    pagerduty:
      - severity: {page: urgent}
  - name: a
    slack: [{url: {env: S, file: b}, send_resolved: maybe}]
"#,
        );
        assert!(r.is_none());
        assert_eq!(
            diags,
            vec![
                "/etc/burnwatch/alerting.yaml:4:5: error: unknown key `opsgenie` in a receiver; allowed keys are `name`, `webhook`, `slack`, `pagerduty`, `email`",
                "/etc/burnwatch/alerting.yaml:6:14: error: `url` `ftp://x` is not an http(s) URL; write a URL such as https://host.example/path",
                "/etc/burnwatch/alerting.yaml:7:9: error: use either `basic_auth` or `bearer_token`, not both",
                "/etc/burnwatch/alerting.yaml:10:9: error: a PagerDuty integration is missing required key `routing_key`; add `routing_key: {env: PAGERDUTY_ROUTING_KEY}`",
                "/etc/burnwatch/alerting.yaml:10:26: error: `severity: urgent` is not allowed; write one of `critical`, `error`, `warning`, `info`",
                "/etc/burnwatch/alerting.yaml:12:28: error: a secret (`{env: VAR}` or `{file: path}`) takes exactly one of `env`, `file`, found `env`, `file`; keep only one",
                "/etc/burnwatch/alerting.yaml:12:53: error: `send_resolved` must be `true` or `false`, found a string `maybe`; write `true` or `false`",
            ]
        );
    }

    #[test]
    fn duplicate_names_are_errors() {
        let (r, diags) = decode_text("receivers:\n  - name: a\n  - name: a\n");
        assert!(r.is_none());
        assert!(
            diags.iter().any(|d| d
                == "/etc/burnwatch/alerting.yaml:3:5: error: receiver `a` is defined twice; give each receiver its own name"),
            "{diags:?}"
        );
    }

    #[test]
    fn build_checks_secrets_and_orders_integrations() {
        let (r, diags) = decode_text(
            r#"
receivers:
  - name: all
    pagerduty: [{routing_key: k}]
    slack: [{url: "https://hooks.slack.example/services/T/B/x"}]
    webhook: [{url: "http://127.0.0.1:9/"}, {url: "http://127.0.0.1:9/b"}]
  - name: broken
    webhook: [{url: {env: BURNWATCH_TEST_SURELY_UNSET_VAR}}]
"#,
        );
        let r = r.unwrap_or_else(|| panic!("{diags:?}"));
        let ctx = RenderContext::new("http://agent:9464");
        let built = build(&r[0], &ctx).expect("build");
        let kinds: Vec<&str> = built.iter().map(|i| i.kind()).collect();
        assert_eq!(kinds, vec!["webhook", "webhook", "slack", "pagerduty"]);
        let sends: Vec<bool> = built.iter().map(|i| i.send_resolved()).collect();
        assert_eq!(sends, vec![true, true, false, true]);
        let err = build(&r[1], &ctx).err().expect("missing env fails");
        assert_eq!(
            err.to_string(),
            "receiver broken: webhook[0] url: the environment variable `BURNWATCH_TEST_SURELY_UNSET_VAR` is not set (or not UTF-8)"
        );
    }
}
