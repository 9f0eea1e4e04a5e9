//! The generic webhook integration and the HTTP client every HTTP integration shares.
//!
//! The webhook POSTs Alertmanager's webhook payload, `version: "4"`, field for field (so tools
//! written for Alertmanager consume it unchanged), plus `notification_reason` (Alertmanager
//! v0.32+). [`Payload`] also deserializes, so consumers and tests can read it back.
//!
//! [`HttpClient`] is a small hyper 1 HTTP/1.1 client over the crate's rustls configuration (ring,
//! Mozilla roots): one connection per attempt, every attempt bounded by a timeout, responses
//! classified into success, retryable (network errors, timeouts, 429, 5xx, with the peer's
//! `Retry-After`) and permanent (other statuses). Error messages name the host only: a URL can
//! carry a token in its path (Slack webhooks do), so full URLs are never logged.

use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::alert::{Alert, AlertStatus, Fingerprint, rfc3339};
use crate::notify::receiver::{decode_secret, decode_url_secret};
use crate::notify::render::RenderContext;
use crate::notify::{Integration, Notification, SendError, SendFuture};
use crate::probe::http::{Target, parse_url};
use crate::rules::decode::{Decoder, MapReader};
use crate::rules::model::Labels;
use crate::rules::node::Node;
use crate::secret::Secret;
use crate::time::{Dur, Timestamp};

/// `User-Agent` of every notification request.
pub const USER_AGENT: &str = concat!("burnwatch/", env!("CARGO_PKG_VERSION"));
/// How much of a response body is read (enough for any error message).
const RESPONSE_BODY_CAP: usize = 64 * 1024;
/// Retry-After values beyond this are clamped: a misbehaving peer must not park a queue for
/// hours.
pub const MAX_RETRY_AFTER: Dur = Dur::from_mins(15);
/// Alertmanager's zero time, which it writes as `endsAt` of firing alerts.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";
/// The default per-attempt timeout of HTTP integrations.
pub const DEFAULT_TIMEOUT: Dur = Dur::from_secs(10);

/// Why the HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("TLS client configuration: {0}")]
pub struct ClientError(String);

/// A response, as far as integrations care.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body, at most 64 KiB of it.
    pub body: Bytes,
}

/// A minimal HTTP/1.1 client for notifications (POST with a JSON body). Cheap to share.
pub struct HttpClient {
    tls: Arc<ClientConfig>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient").finish_non_exhaustive()
    }
}

impl HttpClient {
    /// A client verifying servers against the Mozilla roots.
    pub fn new() -> Result<HttpClient, ClientError> {
        HttpClient::with_ca_file(None)
    }

    /// A client verifying servers against the Mozilla roots plus the PEM bundle `ca_file`
    /// (receivers behind a private CA). Fails when the file is unreadable or holds no usable
    /// certificate.
    pub fn with_ca_file(ca_file: Option<&std::path::Path>) -> Result<HttpClient, ClientError> {
        let tls =
            crate::probe::tls::verifying_config(ca_file).map_err(|e| ClientError(e.to_string()))?;
        Ok(HttpClient { tls })
    }

    /// POSTs `body` to `url` with `headers` (plus `Host`, `User-Agent`, `Content-Type:
    /// application/json`), the whole exchange bounded by `timeout`. Network failures and
    /// timeouts are [`SendError::Retryable`]; any HTTP response is returned for the caller to
    /// classify (see [`classify`]).
    pub async fn post_json(
        &self,
        url: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: Vec<u8>,
        timeout: Dur,
    ) -> Result<HttpResponse, SendError> {
        let target = parse_target(url)?;
        let what = format!("POST to {}", target.host);
        let exchange = self.exchange(&target, headers, body);
        match tokio::time::timeout(timeout.to_std(), exchange).await {
            Ok(r) => r.map_err(|e| SendError::Retryable {
                message: format!("{what}: {e}"),
                retry_after: None,
            }),
            Err(_) => Err(SendError::Retryable {
                message: format!("{what}: no response within {timeout}"),
                retry_after: None,
            }),
        }
    }

    async fn exchange(
        &self,
        t: &Target,
        headers: &[(HeaderName, HeaderValue)],
        body: Vec<u8>,
    ) -> Result<HttpResponse, String> {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(t.path.as_str())
            .header(header::HOST, t.host_header.as_str())
            .header(header::USER_AGENT, USER_AGENT)
            .header(header::CONTENT_TYPE, "application/json");
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("building the request: {e}"))?;
        let tcp = TcpStream::connect((t.host.as_str(), t.port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        // Notifications are small and rare: Nagle would only add latency.
        let _ = tcp.set_nodelay(true);
        if t.tls {
            let name = ServerName::try_from(t.host.clone())
                .map_err(|e| format!("TLS server name: {e}"))?;
            let stream = tokio_rustls::TlsConnector::from(self.tls.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS handshake: {e}"))?;
            send(stream, req).await
        } else {
            send(tcp, req).await
        }
    }
}

/// One request on a fresh connection. The connection task is aborted when this returns (or is
/// dropped by a timeout), so no task outlives the attempt.
async fn send<S>(io: S, req: Request<Full<Bytes>>) -> Result<HttpResponse, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    let task = AbortOnDrop(tokio::spawn(conn));
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("request: {e}"))?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = Limited::new(resp.into_body(), RESPONSE_BODY_CAP)
        .collect()
        .await
        .map(|b| b.to_bytes())
        // An over-long or cut body still has a meaningful status; keep what the status says.
        .unwrap_or_default();
    drop(task);
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

struct AbortOnDrop(tokio::task::JoinHandle<Result<(), hyper::Error>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The probe's URL parser, with its message dropped: it quotes the URL, which may hold a token.
fn parse_target(url: &str) -> Result<Target, SendError> {
    parse_url(url).map_err(|_| SendError::Permanent {
        message: "invalid URL: not an http(s) URL with a host (not repeated: it may hold a token)"
            .to_owned(),
    })
}

/// Classifies a response by status: `2xx` is success; `429` and `5xx` are retryable with the
/// peer's `Retry-After` (seconds or an HTTP date, relative to `now`); anything else is
/// permanent. `what` names the integration and host for the message, which quotes at most 200
/// characters of the body.
pub fn classify(what: &str, resp: &HttpResponse, now: Timestamp) -> Result<(), SendError> {
    let s = resp.status;
    if (200..300).contains(&s) {
        return Ok(());
    }
    let message = format!("{what}: HTTP {s}{}", body_excerpt(&resp.body));
    if s == 429 || (500..600).contains(&s) {
        Err(SendError::Retryable {
            message,
            retry_after: retry_after(&resp.headers, now),
        })
    } else {
        Err(SendError::Permanent { message })
    }
}

/// ` : <first 200 chars of the body, one line>`, or nothing for an empty body.
pub fn body_excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(200)
        .collect();
    if line.is_empty() {
        String::new()
    } else {
        format!(": {line}")
    }
}

/// The `Retry-After` header as a delay from `now`, clamped to [`MAX_RETRY_AFTER`].
pub fn retry_after(headers: &HeaderMap, now: Timestamp) -> Option<Dur> {
    let v = headers.get(header::RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(v, now)
}

/// Parses a `Retry-After` value (RFC 9110 §10.2.3): delay-seconds, or an HTTP date (a date in
/// the past means "now", zero). Clamped to [`MAX_RETRY_AFTER`]. Pure: `now` is passed in.
pub fn parse_retry_after(value: &str, now: Timestamp) -> Option<Dur> {
    let v = value.trim();
    let d = if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        Dur::from_secs(
            v.parse::<u64>()
                .unwrap_or(u64::MAX / 1000)
                .min(u64::MAX / 1000),
        )
    } else {
        let at = jiff::fmt::rfc2822::DateTimeParser::new()
            .parse_timestamp(v)
            .ok()?;
        let ms = at.as_millisecond().saturating_sub(now.millis());
        Dur(u64::try_from(ms).unwrap_or(0))
    };
    Some(d.min(MAX_RETRY_AFTER))
}

/// Wall-clock now, for `Retry-After` dates (the only clock read of the HTTP integrations).
pub fn wall_now() -> Timestamp {
    Timestamp::from_millis(jiff::Timestamp::now().as_millisecond())
}

// ---- the webhook ----

/// How a webhook authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpAuth {
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
    /// `Authorization: Basic base64(username:password)`.
    Basic {
        /// The user name (not secret).
        username: String,
        /// The password.
        password: Secret,
    },
}

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
    let auth = if m.get("bearer_token").is_some() && m.get("basic_auth").is_some() {
        m.exactly_one(d, &["bearer_token", "basic_auth"]);
        None
    } else if m.get("bearer_token").is_some() {
        m.opt(d, "bearer_token", decode_secret)
            .map(HttpAuth::Bearer)
    } else {
        m.opt(d, "basic_auth", |d, n, _| {
            let b = MapReader::new(d, n, "`basic_auth`", &["username", "password"])?;
            let username = b.req(d, "username", "burnwatch", Decoder::string);
            let password = b.req(d, "password", "{env: HOOK_PASSWORD}", decode_secret);
            Some(HttpAuth::Basic {
                username: username?,
                password: password?,
            })
        })
    };
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
            let value = match auth {
                HttpAuth::Bearer(token) => format!(
                    "Bearer {}",
                    token
                        .resolve()
                        .map_err(|e| permanent(format!("webhook bearer_token: {e}")))?
                        .expose()
                ),
                HttpAuth::Basic { username, password } => {
                    let password = password
                        .resolve()
                        .map_err(|e| permanent(format!("webhook basic_auth password: {e}")))?;
                    let raw = format!("{username}:{}", password.expose());
                    format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(raw)
                    )
                }
            };
            let mut value = HeaderValue::from_str(&value)
                .map_err(|_| permanent("webhook credentials are not a valid header".into()))?;
            value.set_sensitive(true);
            headers.push((header::AUTHORIZATION, value));
        }
        let payload = Payload::new(n, &self.ctx.external_url, self.cfg.max_alerts);
        let body =
            serde_json::to_vec(&payload).map_err(|e| permanent(format!("webhook payload: {e}")))?;
        let host = parse_target(&url)?.host;
        let resp = self
            .client
            .post_json(&url, &headers, body, self.cfg.timeout)
            .await?;
        classify(&format!("webhook {host}"), &resp, wall_now())
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

/// Whether the alert is firing (for integrations choosing trigger vs resolve).
pub fn any_firing(n: &Notification) -> bool {
    n.status() == AlertStatus::Firing
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

    #[test]
    fn retry_after_forms() {
        let now = Timestamp::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_retry_after("1", now), Some(Dur::from_secs(1)));
        assert_eq!(parse_retry_after(" 120 ", now), Some(Dur::from_secs(120)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Dur::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Dur(0))
        );
        assert_eq!(parse_retry_after("99999999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }

    #[test]
    fn classification() {
        let resp = |status: u16, retry: Option<&str>, body: &str| {
            let mut headers = HeaderMap::new();
            if let Some(r) = retry {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_str(r).expect("hv"));
            }
            HttpResponse {
                status,
                headers,
                body: Bytes::from(body.to_owned()),
            }
        };
        let now = Timestamp::from_secs(0);
        assert_eq!(classify("x", &resp(204, None, ""), now), Ok(()));
        assert_eq!(
            classify("x", &resp(429, Some("7"), "slow\ndown"), now),
            Err(SendError::Retryable {
                message: "x: HTTP 429: slow down".into(),
                retry_after: Some(Dur::from_secs(7))
            })
        );
        assert!(matches!(
            classify("x", &resp(503, None, ""), now),
            Err(SendError::Retryable {
                retry_after: None,
                ..
            })
        ));
        assert_eq!(
            classify("x", &resp(400, None, ""), now),
            Err(SendError::Permanent {
                message: "x: HTTP 400".into()
            })
        );
    }

    #[test]
    fn urls_parse_without_leaking() {
        let t = parse_target("https://hooks.slack.com/services/T/B/secret").expect("url");
        assert_eq!(
            (t.tls, t.host.as_str(), t.port, t.path.as_str()),
            (true, "hooks.slack.com", 443, "/services/T/B/secret")
        );
        let t = parse_target("http://[::1]:8080").expect("url");
        assert_eq!(
            (t.host.as_str(), t.host_header.as_str(), t.path.as_str()),
            ("::1", "[::1]:8080", "/")
        );
        let e = parse_target("ftp://x/secret-token").expect_err("bad");
        assert!(!e.to_string().contains("secret-token"));
    }
}
