//! The email integration against a real SMTP server: aiosmtpd (tests/fixtures/smtp_sink.py) on
//! 127.0.0.1 with a certificate from a test CA (rcgen), AUTH required and accepted only over
//! TLS. Checks what arrives: envelope, subject, both bodies with the SLO numbers and the
//! runbook, the thread headers linking the resolve to the page, and that AUTH happened under
//! TLS (STARTTLS and implicit). A wrong password is a permanent error. Every wait is bounded.

use crate::common;

use common::{PkiFiles, SmtpSink, TestPki, labels, mail_part as part};

use std::path::Path;

use burnwatch::alert::Alert;
use burnwatch::notify::email::{Email, EmailConfig};
use burnwatch::notify::render::RenderContext;
use burnwatch::notify::{Integration, Notification, NotifyReason, SendError};
use burnwatch::time::Timestamp;
use serde_json::Value;

const USER: &str = "burnwatch";
const PASSWORD: &str = "s3cret-pa55";
const SUMMARY: &str = "checkout availability burning error budget 14.4x (1h/5m)";
const RUNBOOK: &str = "https://runbooks.example/checkout/burn-rate";
const GROUP_KEY: &str = "{}/{severity=\"page\"}:{service=\"checkout\"}";

fn page(ends_at: Option<Timestamp>) -> Alert {
    Alert {
        labels: labels(&[
            ("alertname", "SloBurnRate"),
            ("service", "checkout"),
            ("slo", "availability"),
            ("severity", "page"),
            ("tier", "page_fast"),
        ]),
        annotations: labels(&[
            ("summary", SUMMARY),
            ("objective", "99.9%"),
            ("sli", "99.21%"),
            ("budget_remaining", "61.0%"),
            ("burn_rate", "14.4x over 1h, 15.1x over 5m"),
            ("time_to_exhaustion", "1d 6h"),
            ("runbook_url", RUNBOOK),
        ]),
        starts_at: Timestamp::from_secs(1_795_000_000),
        ends_at,
        generator_url: "http://127.0.0.1:9000/api/v1/slos/checkout/availability".to_owned(),
    }
}

fn notification(reason: NotifyReason, alert: Alert, at: Timestamp) -> Notification {
    Notification {
        receiver: "oncall-mail".to_owned(),
        group_key: GROUP_KEY.to_owned(),
        group_labels: labels(&[("service", "checkout")]),
        reason,
        alerts: vec![alert],
        inhibited: 0,
        at,
    }
}

/// The integration from YAML, as a user writes it (password from a file).
fn email(dir: &Path, pki: &PkiFiles, port: u16, tls: &str, password: &str) -> Email {
    let secret = dir.join(format!("password-{port}-{}", password.len()));
    std::fs::write(&secret, format!("{password}\n")).expect("password file");
    let yaml = format!(
        "to: [oncall@example.com, 'Payments <payments@example.com>']\n\
         from: 'burnwatch <burnwatch@alerts.example.com>'\n\
         smarthost: 127.0.0.1:{port}\n\
         tls: {tls}\n\
         auth_username: {USER}\n\
         auth_password: {{file: {}}}\n\
         ca_file: {}\n\
         timeout: 10s\n\
         send_resolved: true\n\
         headers: {{X-Team: payments}}\n",
        secret.display(),
        pki.ca.display()
    );
    let config = EmailConfig::from_yaml(Path::new("alerting.yaml"), &yaml)
        .unwrap_or_else(|d| panic!("config rejected: {d:?}"));
    let ctx = RenderContext::new("http://agent.example:9464");
    let built = Email::new(config, ctx).expect("integration builds");
    let debug = format!("{built:?}");
    assert!(
        !debug.contains(password),
        "Debug leaks the password: {debug}"
    );
    built
}

fn sha256_hex(s: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, s.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn assert_actionable(msg: &Value) {
    assert_eq!(msg["content_type"], "multipart/alternative", "{msg}");
    for mime in ["text/plain", "text/html"] {
        let body = part(msg, mime);
        for want in [
            "99.9%",
            "99.21%",
            "61.0%",
            "14.4x over 1h, 15.1x over 5m",
            "1d 6h",
            RUNBOOK,
        ] {
            assert!(body.contains(want), "{mime} body lacks `{want}`:\n{body}");
        }
    }
    assert!(part(msg, "text/html").contains(&format!("<a href=\"{RUNBOOK}\">")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_auth_page_then_threaded_resolve() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::new().write_to(dir.path());
    let sink = SmtpSink::start(dir.path(), &pki, "starttls", USER, PASSWORD);
    let mail = email(dir.path(), &pki, sink.port, "starttls", PASSWORD);
    assert!(mail.send_resolved());
    assert_eq!(mail.kind(), "email");

    let fired = Timestamp::from_secs(1_795_000_030);
    let resolved = Timestamp::from_secs(1_795_000_900);
    mail.send(&notification(NotifyReason::First, page(None), fired))
        .await
        .expect("page delivered");
    mail.send(&notification(
        NotifyReason::AllResolved,
        page(Some(Timestamp::from_secs(1_795_000_880))),
        resolved,
    ))
    .await
    .expect("resolve delivered");

    let msgs = sink.wait_messages(2);
    let (first, second) = (&msgs[0], &msgs[1]);
    for m in &msgs {
        assert_eq!(m["mail_from"], "burnwatch@alerts.example.com");
        assert_eq!(
            m["rcpt_tos"],
            serde_json::json!(["oncall@example.com", "payments@example.com"])
        );
        assert_eq!(m["authenticated"], true);
        assert_eq!(m["login"], USER);
        assert_eq!(m["tls"], true, "mail not under TLS: {m}");
        assert_eq!(m["starttls"], true, "no STARTTLS: {m}");
        assert_eq!(m["x_team"], "payments");
        assert_actionable(m);
    }
    assert_eq!(first["subject"], format!("[FIRING:1] {SUMMARY}"));
    assert_eq!(second["subject"], format!("[RESOLVED] {SUMMARY}"));
    assert!(part(first, "text/plain").contains("burnwatch silence add"));
    assert!(part(second, "text/plain").contains("RESOLVED"));

    // Threading: both refer to the group's root id (sha256 of the group key, Alertmanager's
    // scheme), each has its own Message-ID.
    let root = format!("<alert-{}@alerts.example.com>", sha256_hex(GROUP_KEY));
    for m in &msgs {
        assert_eq!(m["in_reply_to"], root.as_str());
        assert_eq!(m["references"], root.as_str());
    }
    assert_ne!(first["message_id"], second["message_id"]);
    assert_eq!(
        first["message_id"],
        format!(
            "<alert-{}.{}.first@alerts.example.com>",
            sha256_hex(GROUP_KEY),
            fired.millis()
        )
    );

    // AUTH itself happened over TLS, and only the two good logins were attempted.
    let auths = sink.auth_log();
    assert_eq!(auths.len(), 2, "{auths:?}");
    assert!(
        auths.iter().all(|a| a["ok"] == true && a["tls"] == true),
        "{auths:?}"
    );

    // A wrong password: the server answers 535, which no retry fixes.
    let wrong = email(dir.path(), &pki, sink.port, "starttls", "not-the-password");
    let err = wrong
        .send(&notification(NotifyReason::First, page(None), fired))
        .await
        .expect_err("wrong password must fail");
    match &err {
        SendError::Permanent { message } => {
            assert!(message.contains("535"), "{message}");
            assert!(!message.contains("not-the-password"), "{message}");
        }
        other => panic!("expected a permanent error, got {other:?}"),
    }
    assert_eq!(sink.auth_log().last().expect("logged")["ok"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_tls_delivers_with_auth() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::new().write_to(dir.path());
    let sink = SmtpSink::start(dir.path(), &pki, "implicit", USER, PASSWORD);
    let mail = email(dir.path(), &pki, sink.port, "implicit", PASSWORD);
    mail.send(&notification(
        NotifyReason::First,
        page(None),
        Timestamp::from_secs(1_795_000_030),
    ))
    .await
    .expect("page delivered over implicit TLS");
    let msgs = sink.wait_messages(1);
    let m = &msgs[0];
    assert_eq!(m["tls"], true, "{m}");
    assert_eq!(m["starttls"], false, "{m}");
    assert_eq!(m["authenticated"], true);
    assert_eq!(m["subject"], format!("[FIRING:1] {SUMMARY}"));
    assert_actionable(m);
    let auths = sink.auth_log();
    assert_eq!(auths.len(), 1, "{auths:?}");
    assert_eq!(auths[0]["tls"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_gone_is_retryable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::new().write_to(dir.path());
    let port = common::free_addr().port();
    let mail = email(dir.path(), &pki, port, "starttls", PASSWORD);
    let err = mail
        .send(&notification(
            NotifyReason::First,
            page(None),
            Timestamp::from_secs(1_795_000_030),
        ))
        .await
        .expect_err("nobody listens");
    assert!(matches!(err, SendError::Retryable { .. }), "{err:?}");
}
