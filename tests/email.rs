//! The email integration against a real SMTP server: aiosmtpd (tests/fixtures/smtp_sink.py) on
//! 127.0.0.1 with a certificate from a test CA (rcgen), AUTH required and accepted only over
//! TLS. Checks what arrives: envelope, subject, both bodies with the SLO numbers and the
//! runbook, the thread headers linking the resolve to the page, and that AUTH happened under
//! TLS (STARTTLS and implicit). A wrong password is a permanent error. Every wait is bounded.

mod common;

use common::{PkiFiles, TestPki};

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use burnwatch::alert::Alert;
use burnwatch::notify::email::{Email, EmailConfig};
use burnwatch::notify::render::RenderContext;
use burnwatch::notify::{Integration, Notification, NotifyReason, SendError};
use burnwatch::rules::model::Labels;
use burnwatch::time::Timestamp;
use serde_json::Value;

const USER: &str = "burnwatch";
const PASSWORD: &str = "s3cret-pa55";
const SUMMARY: &str = "checkout availability burning error budget 14.4x (1h/5m)";
const RUNBOOK: &str = "https://runbooks.example/checkout/burn-rate";
const GROUP_KEY: &str = "{}/{severity=\"page\"}:{service=\"checkout\"}";

/// A running sink and where it writes.
struct Sink {
    _proc: common::Proc,
    port: u16,
    out: PathBuf,
}

fn start_sink(dir: &Path, pki: &PkiFiles, mode: &str) -> Sink {
    let python = common::python_with("aiosmtpd");
    let out = dir.join(format!("mail-{mode}"));
    std::fs::create_dir_all(&out).expect("out dir");
    let port = common::free_addr().port();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smtp_sink.py");
    let mut cmd = std::process::Command::new(python);
    cmd.arg(script)
        .arg(port.to_string())
        .arg(&out)
        .arg(&pki.cert)
        .arg(&pki.key)
        .arg(mode)
        .arg(USER)
        .arg(PASSWORD);
    let proc = common::spawn_until_ready(cmd, "READY", Duration::from_secs(20));
    Sink {
        _proc: proc,
        port,
        out,
    }
}

/// Waits (bounded) until the sink has written `n` messages; returns them in arrival order.
fn messages(sink: &Sink, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found: Vec<Value> = (1..=n)
            .map_while(|i| std::fs::read(sink.out.join(format!("{i}.json"))).ok())
            .map(|b| serde_json::from_slice(&b).expect("sink JSON"))
            .collect();
        if found.len() == n {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {n} messages arrived within 10s",
            found.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn auth_log(sink: &Sink) -> Vec<Value> {
    std::fs::read_to_string(sink.out.join("auth.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("auth log JSON"))
        .collect()
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

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

fn part<'a>(msg: &'a Value, mime: &str) -> &'a str {
    msg["parts"]
        .as_array()
        .expect("parts")
        .iter()
        .find(|p| p["type"] == mime)
        .and_then(|p| p["body"].as_str())
        .unwrap_or_else(|| panic!("no {mime} part in {msg}"))
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
    let sink = start_sink(dir.path(), &pki, "starttls");
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

    let msgs = messages(&sink, 2);
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
    let auths = auth_log(&sink);
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
    assert_eq!(auth_log(&sink).last().expect("logged")["ok"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_tls_delivers_with_auth() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::new().write_to(dir.path());
    let sink = start_sink(dir.path(), &pki, "implicit");
    let mail = email(dir.path(), &pki, sink.port, "implicit", PASSWORD);
    mail.send(&notification(
        NotifyReason::First,
        page(None),
        Timestamp::from_secs(1_795_000_030),
    ))
    .await
    .expect("page delivered over implicit TLS");
    let msgs = messages(&sink, 1);
    let m = &msgs[0];
    assert_eq!(m["tls"], true, "{m}");
    assert_eq!(m["starttls"], false, "{m}");
    assert_eq!(m["authenticated"], true);
    assert_eq!(m["subject"], format!("[FIRING:1] {SUMMARY}"));
    assert_actionable(m);
    let auths = auth_log(&sink);
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
