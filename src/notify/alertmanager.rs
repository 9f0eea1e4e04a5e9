//! The Alertmanager API v2 client, for teams that keep their Alertmanager: burnwatch acts as
//! Prometheus does and pushes its alerts to `POST /api/v2/alerts` of every configured
//! Alertmanager (all of them, never load-balanced, so each replica of an HA pair has every
//! alert).
//!
//! This is not a group-based integration: Alertmanager does its own grouping, so what matters
//! is the alert set and its lease. Two parts, as everywhere in the pipeline:
//! - [`AlertmanagerSender`] (pure, serde, no I/O, no clock): which alerts are due now. A firing
//!   alert is sent when it is new and then every `resend_interval`, each time with
//!   `endsAt = now + lease` where lease = 4 × max(evaluation interval, resend interval)
//!   (Prometheus' `ValidUntil`: two lost sends still leave it active). A resolved alert is sent
//!   at once with its real `endsAt`, then re-sent every `resend_interval` for 15 minutes
//!   (Prometheus' `resolvedRetention`) so an Alertmanager that restarted meanwhile still learns
//!   of the resolve. "Decide" ([`AlertmanagerSender::due`]) is separate from "mark done"
//!   ([`AlertmanagerSender::mark_sent`]) so a write-ahead log can sit between them.
//! - [`AlertmanagerClient`]: the HTTP part, through the shared [`crate::http_client`] (pooled
//!   HTTP/1.1, https with the Mozilla roots plus an optional CA file, the one `Retry-After`
//!   parser and classification), with basic or bearer auth read from env or file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use hyper::header;

use crate::alert::{Alert, Fingerprint, rfc3339};
use crate::http_client::{
    ClientError, HttpAuth, HttpClient, Url, classify, decode_auth, secret_header, wall_now,
};
use crate::notify::SendError;
use crate::notify::email::relative_to_config;
use crate::rules::decode::{Decoder, MapReader};
use crate::rules::diag::Diagnostic;
use crate::rules::model::Labels;
use crate::rules::node::Node;
use crate::secret::{SecretError, SecretValue};
use crate::time::{Dur, Timestamp};

/// Default `resend_interval` (Prometheus' `--rules.alert.resend-delay`).
pub const DEFAULT_RESEND_INTERVAL: Dur = Dur::MINUTE;
/// Default bound on one POST: the shared client's default, which is also Prometheus'
/// Alertmanager timeout (10s).
pub const DEFAULT_TIMEOUT: Dur = crate::http_client::DEFAULT_TIMEOUT;
/// How long a resolved alert keeps being re-sent (Prometheus' `resolvedRetention`).
pub const RESOLVED_RETENTION: Dur = Dur(15 * 60_000);

/// The lease a firing alert's `endsAt` carries: 4 × max(evaluation interval, resend interval),
/// as Prometheus computes `ValidUntil`. If burnwatch stops sending, Alertmanager resolves the
/// alert by itself once the lease runs out.
pub fn lease(evaluation_interval: Dur, resend_interval: Dur) -> Dur {
    Dur(4 * evaluation_interval.millis().max(resend_interval.millis()))
}

/// One validated `alertmanager` client section.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertmanagerConfig {
    /// Base URLs of every Alertmanager (`http://am1:9093`, or with a path prefix such as
    /// `https://host/alertmanager`); alerts go to `<url>/api/v2/alerts` of each.
    pub urls: Vec<String>,
    /// Bound on one POST to one Alertmanager (default 10s).
    pub timeout: Dur,
    /// How often a still-firing (or recently resolved) alert is re-sent (default 1m).
    pub resend_interval: Dur,
    /// Optional authentication, the same for every URL.
    pub auth: Option<HttpAuth>,
    /// An extra PEM CA bundle trusted for `https://` URLs.
    pub ca_file: Option<PathBuf>,
}

impl AlertmanagerConfig {
    /// Validates a standalone `alertmanager` section (YAML text named `path` in messages).
    pub fn from_yaml(path: &Path, text: &str) -> Result<AlertmanagerConfig, Vec<Diagnostic>> {
        crate::notify::route::parse_with(path, text, decode)
    }
}

/// Decodes one `alertmanager` mapping; every problem is reported with its position.
pub(crate) fn decode(d: &mut Decoder<'_>, node: &Node) -> Option<AlertmanagerConfig> {
    const KEYS: &[&str] = &[
        "urls",
        "timeout",
        "resend_interval",
        "basic_auth",
        "bearer_token",
        "ca_file",
    ];
    let m = MapReader::new(d, node, "the alertmanager client", KEYS)?;
    let before = d.errors();
    let mut urls = Vec::new();
    if let Some(items) = m.req(d, "urls", "[http://127.0.0.1:9093]", Decoder::list) {
        for item in items {
            if let Some(u) = d.url(item, "urls") {
                let u = u.trim_end_matches('/').to_owned();
                if urls.contains(&u) {
                    d.error(item.pos(), format!("`urls` lists `{u}` twice; keep one"));
                } else {
                    urls.push(u);
                }
            }
        }
        if items.is_empty() {
            let pos = m.get("urls").map_or(m.pos, Node::pos);
            d.error(
                pos,
                "`urls` is empty; list every Alertmanager, e.g. `[http://127.0.0.1:9093]`",
            );
        }
    }
    let timeout = m
        .opt(d, "timeout", Decoder::pos_dur)
        .unwrap_or(DEFAULT_TIMEOUT);
    let resend_interval = m
        .opt(d, "resend_interval", Decoder::pos_dur)
        .unwrap_or(DEFAULT_RESEND_INTERVAL);
    let auth = decode_auth(d, &m);
    let ca_file = m
        .opt(d, "ca_file", Decoder::string)
        .map(|p| relative_to_config(d, &p));
    (d.errors() == before).then_some(AlertmanagerConfig {
        urls,
        timeout,
        resend_interval,
        auth,
        ca_file,
    })
}

/// What the sender remembers of one alert.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Tracked {
    /// The newest version of the alert (annotations included).
    pub alert: Alert,
    /// When it was last sent in its current state (`None`: never, or its state changed since).
    pub last_sent: Option<Timestamp>,
}

/// Which alerts to push to Alertmanager when. Pure and serializable.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AlertmanagerSender {
    resend_interval: Dur,
    lease: Dur,
    alerts: BTreeMap<Fingerprint, Tracked>,
}

impl AlertmanagerSender {
    /// A sender for an agent that evaluates every `evaluation_interval`.
    pub fn new(evaluation_interval: Dur, resend_interval: Dur) -> AlertmanagerSender {
        AlertmanagerSender {
            resend_interval,
            lease: lease(evaluation_interval, resend_interval),
            alerts: BTreeMap::new(),
        }
    }

    /// The `endsAt` lease of firing alerts.
    pub fn lease(&self) -> Dur {
        self.lease
    }

    /// The tracked alerts by fingerprint.
    pub fn tracked(&self) -> &BTreeMap<Fingerprint, Tracked> {
        &self.alerts
    }

    /// Takes the complete current alert set (firing alerts and those resolved recently) at
    /// `now`. A tracked firing alert missing from `current` (its rule was removed) is resolved
    /// at `now`, so Alertmanager hears of it rather than waiting for the lease. A state change
    /// (fire, resolve, fire again) makes the alert due at once; an annotation change alone
    /// waits for the next resend, as in Prometheus. Resolved alerts older than 15 minutes are
    /// forgotten.
    pub fn update(&mut self, current: &[Alert], now: Timestamp) {
        let mut seen = Vec::with_capacity(current.len());
        for alert in current {
            let fp = alert.fingerprint();
            seen.push(fp);
            match self.alerts.get_mut(&fp) {
                Some(t) => {
                    if t.alert.ends_at != alert.ends_at || t.alert.starts_at != alert.starts_at {
                        t.last_sent = None;
                    }
                    t.alert = alert.clone();
                }
                None => {
                    self.alerts.insert(
                        fp,
                        Tracked {
                            alert: alert.clone(),
                            last_sent: None,
                        },
                    );
                }
            }
        }
        for (fp, t) in &mut self.alerts {
            if t.alert.ends_at.is_none() && !seen.contains(fp) {
                t.alert.ends_at = Some(now);
                t.last_sent = None;
            }
        }
        self.alerts.retain(|_, t| match t.alert.ends_at {
            Some(end) => now < end.add(RESOLVED_RETENTION),
            None => true,
        });
    }

    /// The alerts to send at `now`: never sent in their current state, or last sent at least
    /// `resend_interval` ago. Does not change state (call [`Self::mark_sent`] after the push).
    pub fn due(&self, now: Timestamp) -> Vec<Alert> {
        self.alerts
            .values()
            .filter(|t| match t.last_sent {
                None => true,
                Some(at) => now >= at.add(self.resend_interval),
            })
            .map(|t| t.alert.clone())
            .collect()
    }

    /// Records that `sent` reached Alertmanager at `now`.
    pub fn mark_sent(&mut self, sent: &[Alert], now: Timestamp) {
        for alert in sent {
            if let Some(t) = self.alerts.get_mut(&alert.fingerprint())
                && t.alert.ends_at == alert.ends_at
            {
                t.last_sent = Some(now);
            }
        }
    }
}

/// One element of the `POST /api/v2/alerts` body (Alertmanager's `postableAlert`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostableAlert {
    /// Identity labels.
    pub labels: Labels,
    /// Annotations.
    pub annotations: Labels,
    /// RFC 3339 start.
    pub starts_at: String,
    /// RFC 3339 end: the lease for a firing alert, the resolve time for a resolved one.
    pub ends_at: String,
    /// Link back to burnwatch (omitted when empty: Alertmanager validates it as a URI).
    #[serde(
        rename = "generatorURL",
        skip_serializing_if = "String::is_empty",
        default
    )]
    pub generator_url: String,
}

/// The request body for `alerts` sent at `now` with the given lease.
pub fn postable(alerts: &[Alert], now: Timestamp, lease: Dur) -> Vec<PostableAlert> {
    alerts
        .iter()
        .map(|a| PostableAlert {
            labels: a
                .labels
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            annotations: a.annotations.clone(),
            starts_at: rfc3339(a.starts_at),
            ends_at: rfc3339(a.ends_at.unwrap_or_else(|| now.add(lease))),
            generator_url: a.generator_url.clone(),
        })
        .collect()
}

/// Building the client failed (at start or reload).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AlertmanagerError {
    /// A password or token could not be read.
    #[error("alertmanager auth: {0}")]
    Secret(#[from] SecretError),
    /// The CA file could not be read or holds no usable certificate.
    #[error("alertmanager ca_file `{path}`: {reason}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("alertmanager TLS setup: {0}")]
    Tls(String),
    /// A URL could not be split into host, port and path.
    #[error("alertmanager url `{0}`: {1}")]
    Url(String, String),
}

/// One Alertmanager endpoint, parsed once.
#[derive(Debug, Clone)]
struct Endpoint {
    /// As configured (it may carry no credentials, so messages show it).
    url: String,
    /// `<url>/api/v2/alerts`.
    target: Url,
}

impl Endpoint {
    fn parse(url: &str) -> Result<Endpoint, AlertmanagerError> {
        let bad = |why: &str| AlertmanagerError::Url(url.to_owned(), why.to_owned());
        let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(bad("not an http(s) URL"));
        };
        let (authority, prefix) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.contains('@') || prefix.contains(['?', '#']) {
            return Err(bad(
                "credentials, queries and fragments are not allowed in the URL",
            ));
        }
        let (host, port) = match authority.strip_prefix('[') {
            Some(r) => {
                let (h, p) = r.split_once(']').ok_or_else(|| bad("unclosed `[`"))?;
                (h, p.strip_prefix(':'))
            }
            None => match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            },
        };
        if let Some(p) = port {
            p.parse::<u16>().map_err(|_| bad("bad port"))?;
        }
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let target = Url::parse(&format!(
            "{}://{authority}{}/api/v2/alerts",
            if tls { "https" } else { "http" },
            prefix.trim_end_matches('/')
        ))
        .map_err(|_| bad("not a valid URL"))?;
        Ok(Endpoint {
            url: url.to_owned(),
            target,
        })
    }
}

/// Pushes alerts to every configured Alertmanager.
pub struct AlertmanagerClient {
    endpoints: Vec<Endpoint>,
    timeout: Dur,
    lease: Dur,
    authorization: Option<SecretValue>,
    client: HttpClient,
}

impl fmt::Debug for AlertmanagerClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlertmanagerClient")
            .field(
                "urls",
                &self.endpoints.iter().map(|e| &e.url).collect::<Vec<_>>(),
            )
            .field("timeout", &self.timeout)
            .field("lease", &self.lease)
            .field("authorization", &self.authorization)
            .finish_non_exhaustive()
    }
}

impl AlertmanagerClient {
    /// Reads secrets and the CA file, parses the URLs. `evaluation_interval` sets the lease
    /// (see [`lease`]). Does not connect.
    pub fn new(
        config: &AlertmanagerConfig,
        evaluation_interval: Dur,
    ) -> Result<AlertmanagerClient, AlertmanagerError> {
        let endpoints = config
            .urls
            .iter()
            .map(|u| Endpoint::parse(u))
            .collect::<Result<Vec<_>, _>>()?;
        let authorization = config
            .auth
            .as_ref()
            .map(HttpAuth::authorization)
            .transpose()?;
        let client = HttpClient::with_ca_file(config.ca_file.as_deref()).map_err(|e| match e {
            ClientError::CaFile { path, reason } => AlertmanagerError::CaFile { path, reason },
            ClientError::Tls(e) => AlertmanagerError::Tls(e),
        })?;
        Ok(AlertmanagerClient {
            endpoints,
            timeout: config.timeout,
            lease: lease(evaluation_interval, config.resend_interval),
            authorization,
            client,
        })
    }

    /// The lease firing alerts are sent with.
    pub fn lease(&self) -> Dur {
        self.lease
    }

    /// POSTs `alerts` (firing ones with `endsAt = now + lease`) to every Alertmanager, all
    /// concurrently, each bounded by the timeout. Succeeds when at least one accepted them
    /// (as Prometheus: one replica is enough for the notification, the others get the next
    /// resend); failures of the rest are logged. Fails with the first error otherwise:
    /// retryable when any failure was (network, timeout, 5xx, 429), permanent when all were
    /// refusals (400: Alertmanager rejected the alerts).
    pub async fn push(&self, alerts: &[Alert], now: Timestamp) -> Result<(), SendError> {
        if alerts.is_empty() {
            return Ok(());
        }
        let body = serde_json::to_vec(&postable(alerts, now, self.lease)).map_err(|e| {
            SendError::Permanent {
                message: format!("encoding alerts: {e}"),
            }
        })?;
        let body = Bytes::from(body);
        let results = futures_join(self.endpoints.iter().map(|e| self.post(e, body.clone()))).await;
        let mut errors = Vec::new();
        let mut accepted = 0usize;
        for r in results {
            match r {
                Ok(()) => accepted += 1,
                Err(e) => errors.push(e),
            }
        }
        if accepted > 0 {
            for e in &errors {
                tracing::warn!(error = %e, "an Alertmanager did not take the alerts; it gets them at the next resend");
            }
            return Ok(());
        }
        let retryable = errors
            .iter()
            .position(|e| matches!(e, SendError::Retryable { .. }));
        let pick = retryable.unwrap_or(0);
        Err(errors.swap_remove(pick))
    }

    async fn post(&self, e: &Endpoint, body: Bytes) -> Result<(), SendError> {
        let mut headers = Vec::new();
        if let Some(auth) = &self.authorization {
            let value = secret_header(auth.expose()).map_err(|err| SendError::Permanent {
                message: format!("{}: {err}", e.url),
            })?;
            headers.push((header::AUTHORIZATION, value));
        }
        let resp = self
            .client
            .post_json(&e.target, &headers, body, self.timeout)
            .await?;
        Ok(classify(&e.url, &resp, wall_now())?)
    }
}

/// Runs the futures concurrently and returns their outputs in order.
async fn futures_join<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futs {
        set.push(Box::pin(f));
    }
    let mut out: Vec<Option<F::Output>> = (0..set.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn alert(name: &str, ends_at: Option<Timestamp>) -> Alert {
        Alert {
            labels: [("alertname".to_owned(), name.to_owned())].into(),
            annotations: [("summary".to_owned(), format!("{name} burning"))].into(),
            starts_at: Timestamp::from_secs(100),
            ends_at,
            generator_url: String::new(),
        }
    }

    fn names(alerts: &[Alert]) -> Vec<String> {
        alerts
            .iter()
            .map(|a| a.label("alertname").to_owned())
            .collect()
    }

    #[test]
    fn lease_is_four_times_the_larger_interval() {
        assert_eq!(lease(Dur::from_secs(15), Dur::MINUTE), Dur::from_mins(4));
        assert_eq!(lease(Dur::from_mins(2), Dur::MINUTE), Dur::from_mins(8));
        assert_eq!(
            lease(Dur::from_secs(1), Dur::from_secs(1)),
            Dur::from_secs(4)
        );
    }

    #[test]
    fn firing_alerts_are_sent_new_then_every_resend_interval() {
        let mut s = AlertmanagerSender::new(Dur::from_secs(15), Dur::MINUTE);
        let t = Timestamp::from_secs(1_000);
        s.update(&[alert("A", None)], t);
        let due = s.due(t);
        assert_eq!(names(&due), ["A"]);
        // Deciding changes nothing: until marked, it stays due (a crash re-sends).
        assert_eq!(s.due(t).len(), 1);
        s.mark_sent(&due, t);
        for secs in [1_015, 1_030, 1_059] {
            let now = Timestamp::from_secs(secs);
            s.update(&[alert("A", None)], now);
            assert!(s.due(now).is_empty(), "at {secs}");
        }
        let at = Timestamp::from_secs(1_060);
        assert_eq!(names(&s.due(at)), ["A"]);
        // Annotation changes alone wait for the resend.
        let mut changed = alert("A", None);
        changed.annotations.insert("sli".into(), "99%".into());
        s.mark_sent(&s.due(at), at);
        s.update(&[changed.clone()], Timestamp::from_secs(1_061));
        assert!(s.due(Timestamp::from_secs(1_061)).is_empty());
        assert_eq!(s.due(Timestamp::from_secs(1_120)), vec![changed]);
    }

    #[test]
    fn resolves_go_out_at_once_then_repeat_for_fifteen_minutes() {
        let mut s = AlertmanagerSender::new(Dur::from_secs(15), Dur::MINUTE);
        let t0 = Timestamp::from_secs(1_000);
        s.update(&[alert("A", None)], t0);
        s.mark_sent(&s.due(t0), t0);
        let t1 = Timestamp::from_secs(1_010);
        let resolved = alert("A", Some(t1));
        s.update(std::slice::from_ref(&resolved), t1);
        assert_eq!(s.due(t1), vec![resolved.clone()]);
        s.mark_sent(std::slice::from_ref(&resolved), t1);
        assert!(s.due(Timestamp::from_secs(1_069)).is_empty());
        assert_eq!(s.due(Timestamp::from_secs(1_070)).len(), 1);
        // Kept (and re-sent) while now < end + 15m, then forgotten.
        let last = t1.add(RESOLVED_RETENTION).sub(Dur::MILLI);
        s.update(&[], last);
        assert_eq!(s.tracked().len(), 1);
        s.update(&[], t1.add(RESOLVED_RETENTION));
        assert!(s.tracked().is_empty());
    }

    #[test]
    fn a_vanished_firing_alert_is_resolved_now_and_a_refire_is_due_at_once() {
        let mut s = AlertmanagerSender::new(Dur::from_secs(15), Dur::MINUTE);
        let t0 = Timestamp::from_secs(1_000);
        s.update(&[alert("A", None), alert("B", None)], t0);
        s.mark_sent(&s.due(t0), t0);
        let t1 = Timestamp::from_secs(1_005);
        s.update(&[alert("A", None)], t1);
        assert_eq!(s.due(t1), vec![alert("B", Some(t1))]);
        // A send decided before a state change does not mark the new state sent.
        let stale = s.due(t1);
        s.update(&[alert("A", None), alert("B", None)], t1);
        s.mark_sent(&stale, t1);
        assert_eq!(s.due(t1), vec![alert("B", None)]);
    }

    #[test]
    fn sender_state_round_trips_through_serde() {
        let mut s = AlertmanagerSender::new(Dur::from_secs(15), Dur::MINUTE);
        let t = Timestamp::from_secs(1_000);
        s.update(&[alert("A", None)], t);
        s.mark_sent(&s.due(t), t);
        let json = serde_json::to_string(&s).expect("serialize");
        let back: AlertmanagerSender = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, s);
    }

    #[test]
    fn postable_body_matches_the_api_schema() {
        let now = Timestamp::from_secs(1_795_000_000);
        let mut firing = alert("A", None);
        firing.labels.insert("empty".into(), String::new());
        firing.generator_url = "http://agent/slo".into();
        let body = postable(
            &[
                firing,
                alert("B", Some(Timestamp::from_millis(1_795_000_000_500))),
            ],
            now,
            Dur::from_mins(4),
        );
        let json = serde_json::to_value(&body).expect("json");
        assert_eq!(
            json,
            serde_json::json!([
                {"labels": {"alertname": "A"}, "annotations": {"summary": "A burning"},
                 "startsAt": "1970-01-01T00:01:40.000Z", "endsAt": "2026-11-18T11:10:40.000Z",
                 "generatorURL": "http://agent/slo"},
                {"labels": {"alertname": "B"}, "annotations": {"summary": "B burning"},
                 "startsAt": "1970-01-01T00:01:40.000Z", "endsAt": "2026-11-18T11:06:40.500Z"}
            ])
        );
    }

    #[test]
    fn endpoints_parse_with_prefix_port_and_v6() {
        let e = Endpoint::parse("https://am.example/alertmanager").expect("ok");
        let t = &e.target;
        assert_eq!((t.is_tls(), t.host(), t.port()), (true, "am.example", 443));
        assert_eq!(t.path(), "/alertmanager/api/v2/alerts");
        let e = Endpoint::parse("http://[::1]:9093").expect("ok");
        let t = &e.target;
        assert_eq!(
            (t.host(), t.port(), t.redacted().as_str()),
            ("::1", 9093, "http://[::1]:9093")
        );
        assert_eq!(t.path(), "/api/v2/alerts");
        assert!(Endpoint::parse("http://am:99999").is_err());
        assert!(Endpoint::parse("http://u:p@am:9093").is_err());
        assert!(Endpoint::parse("ftp://am").is_err());
    }

    fn errors(yaml: &str) -> Vec<String> {
        AlertmanagerConfig::from_yaml(Path::new("a.yaml"), yaml)
            .expect_err("invalid")
            .iter()
            .map(|d| format!("{}: {}", d.pos, d.message))
            .collect()
    }

    #[test]
    fn config_defaults_and_every_field() {
        let c =
            AlertmanagerConfig::from_yaml(Path::new("/etc/bw/a.yaml"), "urls: [http://am:9093/]\n")
                .expect("valid");
        assert_eq!(c.urls, ["http://am:9093"]);
        assert_eq!(
            (c.timeout, c.resend_interval),
            (DEFAULT_TIMEOUT, DEFAULT_RESEND_INTERVAL)
        );
        assert_eq!((c.auth, c.ca_file), (None, None));
        let c = AlertmanagerConfig::from_yaml(
            Path::new("/etc/bw/a.yaml"),
            "urls: [https://a:9093, https://b:9093]\ntimeout: 3s\nresend_interval: 30s\n\
             basic_auth: {username: bw, password: {file: am.pass}}\nca_file: ca.pem\n",
        )
        .expect("valid");
        assert_eq!(c.urls.len(), 2);
        assert_eq!(
            c.auth,
            Some(HttpAuth::Basic {
                username: "bw".into(),
                password: Secret::File("/etc/bw/am.pass".into())
            })
        );
        assert_eq!(c.ca_file, Some(PathBuf::from("/etc/bw/ca.pem")));
    }

    #[test]
    fn config_errors_have_positions() {
        assert_eq!(
            errors(
                "urls: []\ntimeout: 0s\nbasic_auth: {username: u, password: {env: P}}\nbearer_token: {env: T}\nretry: 1\n"
            ),
            [
                "5:1: unknown key `retry` in the alertmanager client; allowed keys are `urls`, `timeout`, `resend_interval`, `basic_auth`, `bearer_token`, `ca_file`",
                "1:7: `urls` is empty; list every Alertmanager, e.g. `[http://127.0.0.1:9093]`",
                "2:10: `timeout` must be longer than zero; write a duration such as 30s",
                "4:1: use either `basic_auth` or `bearer_token`, not both",
            ]
        );
        assert_eq!(
            errors("urls: [am:9093, 'http://a', 'http://a/']\n"),
            [
                "1:8: `urls` `am:9093` is not an http(s) URL; write a URL such as https://host.example/path",
                "1:29: `urls` lists `http://a` twice; keep one",
            ]
        );
    }

    #[test]
    fn debug_never_shows_credentials() {
        let c = AlertmanagerConfig {
            urls: vec!["http://am:9093".into()],
            timeout: DEFAULT_TIMEOUT,
            resend_interval: DEFAULT_RESEND_INTERVAL,
            auth: Some(HttpAuth::Bearer(Secret::Literal("tok-123".into()))),
            ca_file: None,
        };
        assert!(!format!("{c:?}").contains("tok-123"));
        let client = AlertmanagerClient::new(&c, Dur::from_secs(15)).expect("client");
        let debug = format!("{client:?}");
        assert!(
            !debug.contains("tok-123") && debug.contains("<redacted>"),
            "{debug}"
        );
    }
}
