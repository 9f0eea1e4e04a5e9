//! The email integration: one SMTP message per notification, sent with lettre over rustls.
//!
//! This module owns the `email` receiver config (decoded with file:line:col errors), the secret
//! references its password is read from (`{env: VAR}` / `{file: path}`), the message layout
//! (subject = the summary line; multipart/alternative text + HTML; thread headers derived from
//! the group key so a resolve lands in the thread of its page) and the mapping of SMTP failures
//! onto [`SendError`]: 4xx replies, network and TLS trouble are retryable, 5xx replies (a
//! rejected address, bad credentials) and client-side refusals are permanent.
//!
//! TLS is `starttls` (STARTTLS required: lettre aborts before AUTH or MAIL when the server does
//! not offer it, so there is no downgrade), `implicit` (SMTPS, port 465) or `none` (plaintext,
//! only when written explicitly, and never together with AUTH). The password is read once when
//! the integration is built, is never printed by `Debug`, and never reaches a log line.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::notify::render::{self, RenderContext};
use crate::notify::{Integration, Notification, SendError, SendFuture};
use crate::rules::decode::{Decoder, MapReader};
use crate::rules::diag::Diagnostic;
use crate::rules::node::{Kind, Node};
use crate::secret::{Secret, SecretError, decode_password};
use crate::time::Dur;

/// Default bound on one whole delivery (connect, TLS, AUTH, DATA).
pub const DEFAULT_TIMEOUT: Dur = Dur(30_000);

/// Headers the integration writes itself; a `headers:` entry may not replace them.
const RESERVED_HEADERS: &[&str] = &[
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "in-reply-to",
    "references",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
];

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain connect, then STARTTLS, which is required: without it nothing is sent.
    StartTls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Implicit,
    /// No TLS at all (a local relay only). Never allowed together with AUTH.
    None,
}

/// A path from the config, resolved against the config file's directory when relative.
pub(crate) fn relative_to_config(d: &Decoder<'_>, path: &str) -> PathBuf {
    let p = Path::new(path);
    match d.file.parent() {
        Some(dir) if p.is_relative() => dir.join(p),
        _ => p.to_owned(),
    }
}

/// One validated `email` receiver.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailConfig {
    /// Recipients (`to: [oncall@example.com, "Ops <ops@example.com>"]`), at least one.
    pub to: Vec<Mailbox>,
    /// The sender (`From:` and the envelope sender).
    pub from: Mailbox,
    /// The SMTP server's host name or IP (also the name its certificate must carry).
    pub host: String,
    /// The SMTP server's port (`smarthost: host:port`, the port is required).
    pub port: u16,
    /// The name sent in EHLO (default `localhost`, as Alertmanager).
    pub hello: String,
    /// Connection protection; default `implicit` on port 465, else `starttls`.
    pub tls: TlsMode,
    /// AUTH user name (PLAIN or LOGIN, only over TLS); with `auth_password`.
    pub auth_username: Option<String>,
    /// AUTH password reference; with `auth_username`.
    pub auth_password: Option<Secret>,
    /// An extra PEM CA bundle trusted (on top of the Mozilla roots) to verify the server.
    pub ca_file: Option<PathBuf>,
    /// Bound on one whole delivery (default 30s).
    pub timeout: Dur,
    /// Whether resolved notifications are mailed (default false, as Alertmanager).
    pub send_resolved: bool,
    /// Extra headers (`X-Team: payments`); the ones the integration writes are refused.
    pub headers: Vec<(String, String)>,
}

impl EmailConfig {
    /// Validates a standalone `email` receiver section (YAML text named `path` in messages);
    /// the agent config decodes the same mapping inside its `alerting:` section.
    pub fn from_yaml(path: &Path, text: &str) -> Result<EmailConfig, Vec<Diagnostic>> {
        crate::notify::route::parse_with(path, text, decode)
    }
}

/// Decodes one `email` receiver mapping; every problem is reported with its position.
pub(crate) fn decode(d: &mut Decoder<'_>, node: &Node) -> Option<EmailConfig> {
    const KEYS: &[&str] = &[
        "to",
        "from",
        "smarthost",
        "hello",
        "tls",
        "auth_username",
        "auth_password",
        "ca_file",
        "timeout",
        "send_resolved",
        "headers",
    ];
    let m = MapReader::new(d, node, "an email receiver", KEYS)?;
    let before = d.errors();
    let to = m.req(d, "to", "[oncall@example.com]", read_recipients);
    let from = m.req(d, "from", "burnwatch@example.com", read_mailbox);
    let smarthost = m.req(d, "smarthost", "smtp.example.com:587", read_smarthost);
    let hello = m
        .opt(d, "hello", Decoder::string)
        .unwrap_or_else(|| "localhost".to_owned());
    if hello.is_empty() || hello.chars().any(|c| c.is_whitespace() || c.is_control()) {
        let pos = m.get("hello").map_or(m.pos, Node::pos);
        d.error(
            pos,
            "`hello` must be a host name without spaces, e.g. `mail.example.com`",
        );
    }
    let tls = m.opt(d, "tls", |d, n, k| {
        d.choice(n, k, &["starttls", "implicit", "none"])
    });
    let auth_username = m.opt(d, "auth_username", Decoder::string);
    let auth_password = m.opt(d, "auth_password", decode_password);
    let ca_file = m
        .opt(d, "ca_file", Decoder::string)
        .map(|p| relative_to_config(d, &p));
    let timeout = m
        .opt(d, "timeout", Decoder::pos_dur)
        .unwrap_or(DEFAULT_TIMEOUT);
    let send_resolved = m.opt(d, "send_resolved", Decoder::bool).unwrap_or(false);
    let headers = m.opt(d, "headers", read_headers).unwrap_or_default();

    match (m.key_pos("auth_username"), m.key_pos("auth_password")) {
        (Some(pos), None) => d.error(
            pos,
            "`auth_username` needs `auth_password`; add `auth_password: {env: SMTP_PASSWORD}`",
        ),
        (None, Some(pos)) => d.error(pos, "`auth_password` needs `auth_username`; add it"),
        _ => {}
    }
    let (host, port) = smarthost?;
    let tls = match tls {
        Some("none") => {
            let pos = m.get("tls").map_or(m.pos, Node::pos);
            if auth_username.is_some() {
                d.error(
                    pos,
                    "`tls: none` with `auth_username` would send the password in clear; use `tls: starttls` or `tls: implicit`",
                );
            } else {
                d.warn(
                    pos,
                    "`tls: none` sends alerts in clear text; use it only for a relay on the same host",
                );
            }
            if let Some(pos) = m.key_pos("ca_file") {
                d.error(
                    pos,
                    "`ca_file` has no effect with `tls: none`; remove one of them",
                );
            }
            TlsMode::None
        }
        Some("implicit") => TlsMode::Implicit,
        Some(_) => TlsMode::StartTls,
        None if port == 465 => TlsMode::Implicit,
        None => TlsMode::StartTls,
    };
    let config = EmailConfig {
        to: to?,
        from: from?,
        host,
        port,
        hello,
        tls,
        auth_username,
        auth_password,
        ca_file,
        timeout,
        send_resolved,
        headers,
    };
    (d.errors() == before).then_some(config)
}

fn read_mailbox(d: &mut Decoder<'_>, n: &Node, key: &str) -> Option<Mailbox> {
    let s = d.string(n, key)?;
    match s.parse::<Mailbox>() {
        Ok(m) => Some(m),
        Err(e) => {
            d.error(
                n.pos(),
                format!(
                    "`{key}` `{s}` is not an email address ({e}); write `name@example.com` or `Name <name@example.com>`"
                ),
            );
            None
        }
    }
}

/// A list of addresses, or one string of comma-separated addresses (Alertmanager's form).
fn read_recipients(d: &mut Decoder<'_>, n: &Node, key: &str) -> Option<Vec<Mailbox>> {
    let before = d.errors();
    let mut out = Vec::new();
    if let Kind::Str(s) = n.kind() {
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.parse::<Mailbox>() {
                Ok(m) => out.push(m),
                Err(e) => d.error(
                    n.pos(),
                    format!("`{key}`: `{part}` is not an email address ({e})"),
                ),
            }
        }
    } else {
        for item in d.list(n, key)? {
            if let Some(m) = read_mailbox(d, item, key) {
                out.push(m);
            }
        }
    }
    if out.is_empty() && d.errors() == before {
        d.error(
            n.pos(),
            format!("`{key}` names no recipient; write `{key}: [oncall@example.com]`"),
        );
    }
    (d.errors() == before).then_some(out)
}

/// `host:port` or `[v6]:port`; the port is required (no guessing between 25, 465 and 587).
fn read_smarthost(d: &mut Decoder<'_>, n: &Node, key: &str) -> Option<(String, u16)> {
    let s = d.string(n, key)?;
    let split = match s.strip_prefix('[') {
        Some(rest) => rest
            .split_once("]:")
            .map(|(h, p)| (h.to_owned(), p.to_owned())),
        None => s
            .rsplit_once(':')
            .filter(|(h, _)| !h.contains(':'))
            .map(|(h, p)| (h.to_owned(), p.to_owned())),
    };
    match split {
        Some((host, port)) if !host.is_empty() && !host.contains(char::is_whitespace) => {
            match port.parse::<u16>() {
                Ok(p) if p > 0 => Some((host, p)),
                _ => {
                    d.error(
                        n.pos(),
                        format!("`{key}` `{s}`: `{port}` is not a port number (1-65535)"),
                    );
                    None
                }
            }
        }
        _ => {
            d.error(
                n.pos(),
                format!("`{key}` `{s}` must be `host:port`, e.g. `smtp.example.com:587`"),
            );
            None
        }
    }
}

fn read_headers(d: &mut Decoder<'_>, n: &Node, key: &str) -> Option<Vec<(String, String)>> {
    if matches!(n.kind(), Kind::Null) {
        return Some(Vec::new());
    }
    let Kind::Map(entries) = n.kind() else {
        d.type_error(
            n,
            key,
            "a mapping of header names to values, e.g. {X-Team: payments}",
        );
        return None;
    };
    let before = d.errors();
    let mut out = Vec::new();
    for (k, v) in entries {
        let Some(name) = k.scalar_text() else {
            d.type_error(k, key, "a header name");
            continue;
        };
        let token = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b':' && b != b'(' && b != b')');
        if !token {
            d.error(
                k.pos(),
                format!(
                    "header name `{name}` is not valid; use letters, digits and `-`, e.g. `X-Team`"
                ),
            );
            continue;
        }
        if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            d.error(
                k.pos(),
                format!(
                    "header `{name}` is written by the email integration itself; set it through `to`, `from` or the alert's summary instead"
                ),
            );
            continue;
        }
        let Some(value) = d.scalar(v, &name) else {
            continue;
        };
        if value.chars().any(|c| c == '\r' || c == '\n') {
            d.error(v.pos(), format!("header `{name}` must be one line"));
            continue;
        }
        out.push((name, value));
    }
    (d.errors() == before).then_some(out)
}

/// Building the integration failed (at start or reload, never at send time).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EmailError {
    /// The password could not be read.
    #[error("email auth_password: {0}")]
    Secret(#[from] SecretError),
    /// The CA file could not be read or holds no usable certificate.
    #[error("email ca_file `{path}`: {reason}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// lettre refused the TLS parameters or the EHLO name.
    #[error("email TLS setup for `{host}`: {reason}")]
    Tls {
        /// The smarthost.
        host: String,
        /// Why.
        reason: String,
    },
}

/// The email integration: a built SMTP transport plus the config it came from.
pub struct Email {
    config: EmailConfig,
    ctx: RenderContext,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The transport holds the credentials: show the (redacting) config only.
        f.debug_struct("Email")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Email {
    /// Reads the password and CA file and builds the transport. Does not connect. `ctx` is
    /// what the bodies are rendered with (see [`render`]).
    pub fn new(config: EmailConfig, ctx: RenderContext) -> Result<Email, EmailError> {
        let tls = match config.tls {
            TlsMode::None => Tls::None,
            mode => {
                let params = tls_parameters(&config)?;
                if mode == TlsMode::Implicit {
                    Tls::Wrapper(params)
                } else {
                    Tls::Required(params)
                }
            }
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port)
            .hello_name(ClientId::Domain(config.hello.clone()))
            .timeout(Some(config.timeout.to_std()))
            .tls(tls);
        if let (Some(user), Some(secret)) = (&config.auth_username, &config.auth_password) {
            let password = secret.resolve()?;
            builder =
                builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
        }
        Ok(Email {
            transport: builder.build(),
            config,
            ctx,
        })
    }

    /// The config this integration was built from.
    pub fn config(&self) -> &EmailConfig {
        &self.config
    }

    /// The message for a notification (pure: no I/O; the `Date:` is the flush time, so a
    /// retried delivery is byte-identical and carries the same `Message-ID`).
    pub fn message(&self, n: &Notification) -> Result<Message, SendError> {
        let thread = ThreadIds::new(n, &self.config.from);
        let body = bodies(n, &self.ctx);
        let mut builder = Message::builder()
            .from(self.config.from.clone())
            .subject(render::summary(n))
            .date(SystemTime::UNIX_EPOCH + Duration::from_millis(n.at.millis().max(0) as u64))
            .message_id(Some(thread.message_id))
            .in_reply_to(thread.root.clone())
            .references(thread.root);
        for to in &self.config.to {
            builder = builder.to(to.clone());
        }
        for (name, value) in &self.config.headers {
            let name =
                HeaderName::new_from_ascii(name.clone()).map_err(|e| SendError::Permanent {
                    message: format!("email header `{name}`: {e}"),
                })?;
            builder = builder.raw_header(HeaderValue::new(name, value.clone()));
        }
        builder
            .multipart(MultiPart::alternative_plain_html(body.text, body.html))
            .map_err(|e| SendError::Permanent {
                message: format!("building the email: {e}"),
            })
    }
}

impl Integration for Email {
    fn kind(&self) -> &'static str {
        "email"
    }

    fn send_resolved(&self) -> bool {
        self.config.send_resolved
    }

    fn send<'a>(&'a self, n: &'a Notification) -> SendFuture<'a> {
        Box::pin(async move {
            let message = self.message(n)?;
            let limit = self.config.timeout.to_std();
            match tokio::time::timeout(limit, self.transport.send(message)).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(classify(&e, &self.config.host, self.config.port)),
                Err(_) => Err(SendError::Retryable {
                    message: format!(
                        "SMTP {}:{} did not finish within {}",
                        self.config.host, self.config.port, self.config.timeout
                    ),
                    retry_after: None,
                }),
            }
        })
    }
}

fn tls_parameters(config: &EmailConfig) -> Result<TlsParameters, EmailError> {
    let mut builder = TlsParameters::builder(config.host.clone());
    if let Some(path) = &config.ca_file {
        let ca_error = |reason: String| EmailError::CaFile {
            path: path.clone(),
            reason,
        };
        // lettre takes its own TLS parameters; the bundle is read and checked the same way as
        // every other client's, so a bad file gets the same message.
        let pem = crate::probe::tls::read_ca_file(path).map_err(|e| match e {
            crate::probe::ProbeError::CaFile { reason, .. } => ca_error(reason),
            e => ca_error(e.to_string()),
        })?;
        let cert = Certificate::from_pem(&pem).map_err(|e| ca_error(e.to_string()))?;
        builder = builder.add_root_certificate(cert);
    }
    builder.build_rustls().map_err(|e| EmailError::Tls {
        host: config.host.clone(),
        reason: e.to_string(),
    })
}

/// SMTP reply classes decide: 4xx and anything on the wire may pass, 5xx will not. A client
/// error (the server lacks STARTTLS, an address lettre cannot encode) is a setup problem that
/// no retry fixes.
fn classify(e: &lettre::transport::smtp::Error, host: &str, port: u16) -> SendError {
    // lettre's Display carries the server's reply text, never what we sent (so no password).
    let message = format!("SMTP {host}:{port}: {e}");
    if e.is_permanent() || e.is_client() {
        SendError::Permanent { message }
    } else {
        SendError::Retryable {
            message,
            retry_after: None,
        }
    }
}

/// Message and thread ids of one notification.
struct ThreadIds {
    /// Unique per flush, stable across retries of the same flush.
    message_id: String,
    /// The group's thread root: every message of the group refers to it, so clients thread
    /// the page, its reminders and its resolve together (Alertmanager's
    /// `<alert-{sha256(groupKey)}@...>` scheme, without its per-day split).
    root: String,
}

impl ThreadIds {
    fn new(n: &Notification, from: &Mailbox) -> ThreadIds {
        let digest = ring::digest::digest(&ring::digest::SHA256, n.group_key.as_bytes());
        let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        let domain = from.email.domain();
        ThreadIds {
            message_id: format!(
                "<alert-{hex}.{}.{}@{domain}>",
                n.at.millis(),
                n.reason.key()
            ),
            root: format!("<alert-{hex}@{domain}>"),
        }
    }
}

/// The two bodies of a message.
struct Bodies {
    text: String,
    html: String,
}

/// Renders the text and HTML bodies with [`render`], like every other integration.
fn bodies(n: &Notification, ctx: &RenderContext) -> Bodies {
    Bodies {
        text: render::text(n, ctx),
        html: render::html(n, ctx),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Alert;
    use crate::notify::NotifyReason;
    use crate::rules::model::Labels;
    use crate::time::Timestamp;

    const MINIMAL: &str =
        "to: [oncall@example.com]\nfrom: bw@example.com\nsmarthost: smtp.example.com:587\n";

    fn config(yaml: &str) -> EmailConfig {
        EmailConfig::from_yaml(Path::new("/etc/bw/alerting.yaml"), yaml)
            .unwrap_or_else(|d| panic!("{d:?}"))
    }

    fn errors(yaml: &str) -> Vec<String> {
        EmailConfig::from_yaml(Path::new("a.yaml"), yaml)
            .expect_err("invalid")
            .iter()
            .filter(|d| d.is_error())
            .map(|d| format!("{}: {}", d.pos, d.message))
            .collect()
    }

    #[test]
    fn defaults_follow_alertmanager() {
        let c = config(MINIMAL);
        assert_eq!((c.host.as_str(), c.port), ("smtp.example.com", 587));
        assert_eq!(c.tls, TlsMode::StartTls);
        assert_eq!(c.hello, "localhost");
        assert!(!c.send_resolved);
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
        let c = config(&MINIMAL.replace(":587", ":465"));
        assert_eq!(c.tls, TlsMode::Implicit);
        let c =
            config("to: 'a@x.io, B <b@x.io>'\nfrom: bw@x.io\nsmarthost: '[::1]:25'\ntls: none\n");
        assert_eq!(c.to.len(), 2);
        assert_eq!((c.host.as_str(), c.port, c.tls), ("::1", 25, TlsMode::None));
    }

    #[test]
    fn every_field_and_relative_paths() {
        let c = config(&format!(
            "{MINIMAL}hello: mx.example.com\ntls: implicit\nauth_username: bw\n\
             auth_password: {{file: secrets/smtp}}\nca_file: ca.pem\ntimeout: 5s\n\
             send_resolved: true\nheaders: {{X-Team: payments}}\n"
        ));
        assert_eq!(c.hello, "mx.example.com");
        assert_eq!(c.tls, TlsMode::Implicit);
        assert_eq!(c.auth_username.as_deref(), Some("bw"));
        assert_eq!(
            c.auth_password,
            Some(Secret::File("/etc/bw/secrets/smtp".into()))
        );
        assert_eq!(c.ca_file, Some(PathBuf::from("/etc/bw/ca.pem")));
        assert_eq!(c.timeout, Dur::from_secs(5));
        assert!(c.send_resolved);
        assert_eq!(c.headers, [("X-Team".to_owned(), "payments".to_owned())]);
    }

    #[test]
    fn errors_are_all_reported_with_positions() {
        assert_eq!(
            errors(
                "to: [nobody]\nsmarthost: smtp.example.com\ntls: startls\nauth_username: u\nheaders: {Subject: x}\n"
            ),
            [
                "1:6: `to` `nobody` is not an email address (Invalid input); write `name@example.com` or `Name <name@example.com>`",
                "1:1: an email receiver is missing required key `from`; add `from: burnwatch@example.com`",
                "2:12: `smarthost` `smtp.example.com` must be `host:port`, e.g. `smtp.example.com:587`",
                "3:6: `tls: startls` is not allowed; did you mean `starttls`?",
                "5:11: header `Subject` is written by the email integration itself; set it through `to`, `from` or the alert's summary instead",
                "4:1: `auth_username` needs `auth_password`; add `auth_password: {env: SMTP_PASSWORD}`",
            ]
        );
        assert_eq!(
            errors(&format!(
                "{MINIMAL}tls: none\nauth_username: u\nauth_password: {{env: P, file: f}}\n"
            )),
            [
                "6:25: a secret (`{env: VAR}` or `{file: path}`) takes exactly one of `env`, `file`, found `env`, `file`; keep only one",
                "4:6: `tls: none` with `auth_username` would send the password in clear; use `tls: starttls` or `tls: implicit`",
            ]
        );
    }

    #[test]
    fn literal_passwords_warn_and_never_print() {
        let diags = EmailConfig::from_yaml(
            Path::new("a.yaml"),
            &format!("{MINIMAL}auth_username: u\nauth_password: hunter2\n"),
        );
        let c = diags.expect("a warning is not an error");
        assert!(!format!("{c:?}").contains("hunter2"));
        let email = Email::new(c, RenderContext::new("http://agent.example:9464")).expect("builds");
        assert!(!format!("{email:?}").contains("hunter2"));
    }

    fn notification(ends: &[Option<i64>], reason: NotifyReason) -> Notification {
        let alerts = ends
            .iter()
            .enumerate()
            .map(|(i, end)| Alert {
                labels: [
                    ("alertname".to_owned(), "SloBurnRate".to_owned()),
                    ("slo".to_owned(), format!("s{i}")),
                ]
                .into(),
                annotations: [
                    ("summary".to_owned(), format!("slo s{i} <burning>\nfast")),
                    (
                        "runbook_url".to_owned(),
                        "https://rb.example/?a=1&b=2".to_owned(),
                    ),
                ]
                .into(),
                starts_at: Timestamp::from_secs(10),
                ends_at: end.map(Timestamp::from_secs),
                generator_url: String::new(),
            })
            .collect();
        Notification {
            receiver: "mail".into(),
            group_key: "{}:{slo=\"x\"}".into(),
            group_labels: Labels::new(),
            reason,
            alerts,
            inhibited: 2,
            at: Timestamp::from_secs(1_000),
        }
    }

    #[test]
    fn subjects_name_the_symptom_on_one_line() {
        assert_eq!(
            render::summary(&notification(&[None], NotifyReason::First)),
            "[FIRING:1] slo s0 <burning> fast"
        );
        assert_eq!(
            render::summary(&notification(
                &[None, None, Some(20)],
                NotifyReason::NewAlerts
            )),
            "[FIRING:2] slo s0 <burning> fast (+1 more)"
        );
        assert_eq!(
            render::summary(&notification(&[Some(20)], NotifyReason::AllResolved)),
            "[RESOLVED] slo s0 <burning> fast"
        );
    }

    #[test]
    fn bodies_escape_html_and_carry_the_links() {
        let ctx = RenderContext::new("http://agent.example:9464");
        let b = bodies(
            &notification(&[None, Some(20)], NotifyReason::SomeResolved),
            &ctx,
        );
        assert!(
            b.text.contains("Why now: some alerts resolved"),
            "{}",
            b.text
        );
        assert!(b.text.contains("Firing (1):") && b.text.contains("Resolved (1):"));
        assert!(
            b.text.contains("2 dependent alerts suppressed"),
            "{}",
            b.text
        );
        assert!(b.text.contains("Runbook: https://rb.example/?a=1&b=2"));
        assert!(b.text.contains("burnwatch silence add"));
        assert!(b.html.contains("&lt;burning&gt;"), "{}", b.html);
        assert!(!b.html.contains("<burning>"));
        assert!(
            b.html
                .contains("<a href=\"https://rb.example/?a=1&amp;b=2\">")
        );
    }

    #[test]
    fn thread_ids_follow_the_group_key() {
        let n = notification(&[None], NotifyReason::First);
        let from: Mailbox = "bw@alerts.example.com".parse().expect("mailbox");
        let ids = ThreadIds::new(&n, &from);
        // sha256("{}:{slo=\"x\"}"), computed independently with sha256sum.
        let hex = "3de8f3c0c9630b6ec67f49d876792ab0835322a4f517e259664538c35ceb3f43";
        assert_eq!(ids.root, format!("<alert-{hex}@alerts.example.com>"));
        assert_eq!(
            ids.message_id,
            format!("<alert-{hex}.1000000.first@alerts.example.com>")
        );
    }

    #[test]
    fn messages_are_multipart_and_threaded() {
        let c = config(MINIMAL);
        let email = Email::new(c, RenderContext::new("http://agent.example:9464")).expect("builds");
        let msg = email
            .message(&notification(&[None], NotifyReason::First))
            .expect("message");
        let raw = String::from_utf8(msg.formatted()).expect("utf8");
        assert!(raw.contains("Content-Type: multipart/alternative"), "{raw}");
        assert!(raw.contains("In-Reply-To: <alert-"), "{raw}");
        assert!(raw.contains("References: <alert-"), "{raw}");
        assert!(
            raw.contains("Subject: [FIRING:1] slo s0 <burning> fast\r\n"),
            "{raw}"
        );
    }
}
