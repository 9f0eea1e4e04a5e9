//! Actionable notification content: the title, plain text and HTML every receiver shows.
//!
//! This module owns *what a notification says*, independent of how it travels (email, webhook,
//! Slack, PagerDuty all use it). The content follows the notification contract of the alerting
//! design (alerting-anchors §6): per alert the summary, the SLO and its objective, the current
//! SLI, the error budget left, the burn rate with its windows, the time to exhaustion, the
//! runbook, dashboard and generator links; per notification why it was sent now, how many
//! dependent alerts are suppressed, and a ready-to-paste silence command for the group. Every
//! value comes from the well-known labels and annotations of [`crate::alert::names`], so an
//! alert source that fills them gets a useful message without templates.
//!
//! Pure: no I/O and no clock; every time comes from the notification.

use crate::alert::{Alert, AlertStatus, labels_string, names, rfc3339, silence_command};
use crate::notify::Notification;
use crate::rules::model::Labels;
use crate::time::Dur;

/// What rendering needs besides the notification itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderContext {
    /// The agent's externally reachable base URL (e.g. `http://agent.example:9464`): relative
    /// generator links are resolved against it and messages say where they came from.
    pub external_url: String,
    /// How long the suggested silence lasts, as `burnwatch silence add --duration` takes it
    /// (e.g. `2h`).
    pub silence_duration: String,
}

impl RenderContext {
    /// A context with the default silence duration of `2h`.
    pub fn new(external_url: impl Into<String>) -> RenderContext {
        RenderContext {
            external_url: external_url.into(),
            silence_duration: "2h".to_owned(),
        }
    }
}

/// One labelled value of an alert (`Burn rate: 14.9x over 1h, 18.0x over 5m`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    /// What the value is, for people (`SLO`, `SLI`, `Budget left`, ...).
    pub name: &'static str,
    /// The value, as the alert source wrote it.
    pub value: String,
}

/// A link shown with an alert (a button in Slack, a link in email and PagerDuty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// `Runbook`, `Dashboard` or `Source`.
    pub text: &'static str,
    /// An absolute `http(s)` URL.
    pub url: String,
}

/// The title line: `[FIRING:2] checkout availability: burning 14.4x (+1 more)` or
/// `[RESOLVED] ...`. It names the first alert of the notification's status (Alertmanager's
/// `[FIRING:N]` prefix, then the summary rather than a label dump) and counts the others. Used as
/// email subject, Slack fallback text and PagerDuty summary.
pub fn summary(n: &Notification) -> String {
    let (tag, pool): (String, Vec<&Alert>) = match n.status() {
        AlertStatus::Firing => {
            let firing: Vec<&Alert> = n.firing().collect();
            (format!("[FIRING:{}]", firing.len()), firing)
        }
        AlertStatus::Resolved => ("[RESOLVED]".to_owned(), n.alerts.iter().collect()),
    };
    let Some(first) = pool.first() else {
        return format!("{tag} {}", labels_string(&n.group_labels));
    };
    let more = match pool.len() {
        0 | 1 => String::new(),
        k => format!(" (+{} more)", k - 1),
    };
    format!("{tag} {}{more}", alert_summary(first))
}

/// One alert's summary on one line: its `summary` annotation, else the alert name and the other
/// labels (so an alert without annotations is still identifiable).
pub fn alert_summary(a: &Alert) -> String {
    match a.annotations.get(names::SUMMARY) {
        Some(s) if !s.trim().is_empty() => one_line(s),
        _ => {
            let mut rest = a.labels.clone();
            let name = rest.remove(names::ALERTNAME).unwrap_or_default();
            if name.is_empty() {
                labels_string(&rest)
            } else if rest.is_empty() {
                name
            } else {
                format!("{name} {}", labels_string(&rest))
            }
        }
    }
}

/// The facts shown for an alert, in a fixed order, only those the alert carries: `SLO` (service
/// and SLO name with the objective), `Probe`, `Target`, `SLI`, `Budget left`, `Burn rate` (with
/// its windows), `Exhausts in`, `Severity` (with tier and window), `Owner`, `Details`.
pub fn facts(a: &Alert) -> Vec<Fact> {
    let label = |k: &str| a.labels.get(k).filter(|v| !v.is_empty()).cloned();
    let ann = |k: &str| {
        a.annotations
            .get(k)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let mut out = Vec::new();
    let mut push = |name: &'static str, value: Option<String>| {
        if let Some(value) = value {
            out.push(Fact { name, value });
        }
    };
    let slo_name = match (label(names::SERVICE), label(names::SLO)) {
        (Some(service), Some(slo)) => Some(format!("{service}/{slo}")),
        (None, Some(slo)) => Some(slo),
        _ => None,
    };
    let slo = match (slo_name, ann(names::OBJECTIVE)) {
        (Some(name), Some(obj)) => Some(format!("{name}, objective {obj}")),
        (Some(name), None) => Some(name),
        (None, Some(obj)) => Some(format!("objective {obj}")),
        (None, None) => None,
    };
    push("SLO", slo);
    push("Probe", label(names::PROBE));
    push("Target", label(names::TARGET));
    push("SLI", ann(names::SLI));
    push("Budget left", ann(names::BUDGET_REMAINING));
    push("Burn rate", ann(names::BURN_RATE));
    push("Exhausts in", ann(names::TIME_TO_EXHAUSTION));
    let severity = label(names::SEVERITY).map(|sev| {
        let detail: Vec<String> = [(names::TIER, "tier"), (names::WINDOW, "window")]
            .iter()
            .filter_map(|(k, what)| label(k).map(|v| format!("{what} {v}")))
            .collect();
        if detail.is_empty() {
            sev
        } else {
            format!("{sev} ({})", detail.join(", "))
        }
    });
    push("Severity", severity);
    push("Owner", ann(names::OWNER));
    push("Details", ann(names::DESCRIPTION).map(|d| one_line(&d)));
    out
}

/// The alert's links: runbook, dashboard and the generator (`Source`; a relative generator URL
/// is resolved against the agent's external URL). Only absolute `http(s)` URLs are returned, so
/// no receiver ever renders a `javascript:` or otherwise surprising link.
pub fn links(a: &Alert, ctx: &RenderContext) -> Vec<Link> {
    let mut out = Vec::new();
    for (key, text) in [
        (names::RUNBOOK_URL, "Runbook"),
        (names::DASHBOARD_URL, "Dashboard"),
    ] {
        if let Some(url) = a.annotations.get(key).map(|u| u.trim())
            && is_http_url(url)
        {
            out.push(Link {
                text,
                url: url.to_owned(),
            });
        }
    }
    if let Some(url) = generator_url(a, ctx) {
        out.push(Link {
            text: "Source",
            url,
        });
    }
    out
}

/// The labels a silence for this notification should match: the group labels (they are on every
/// alert of the group), else the labels common to all alerts. Empty when the alerts share
/// nothing; then [`silence_commands`] falls back to one command per alert.
pub fn silence_labels(n: &Notification) -> Labels {
    let group: Labels = n
        .group_labels
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if group.is_empty() {
        n.common_labels()
    } else {
        group
    }
}

/// Ready-to-paste `burnwatch silence add` commands that silence exactly this group: one command
/// when the alerts share labels, else one per firing alert (never a matcher-less silence, which
/// would silence everything). Empty when nothing fires.
pub fn silence_commands(n: &Notification, ctx: &RenderContext) -> Vec<String> {
    if n.firing().next().is_none() {
        return Vec::new();
    }
    let shared = silence_labels(n);
    if shared.is_empty() {
        n.firing()
            .map(|a| silence_command(&a.labels, &ctx.silence_duration))
            .collect()
    } else {
        vec![silence_command(&shared, &ctx.silence_duration)]
    }
}

/// `N dependent alert(s) suppressed`, when the notification's alerts inhibit others.
pub fn inhibited_line(n: &Notification) -> Option<String> {
    match n.inhibited {
        0 => None,
        1 => Some("1 dependent alert suppressed (inhibited while this fires)".to_owned()),
        k => Some(format!(
            "{k} dependent alerts suppressed (inhibited while this fires)"
        )),
    }
}

/// When the alert started, and for resolved alerts when it ended and how long it lasted.
pub fn timing(a: &Alert) -> String {
    match a.ends_at {
        None => format!("since {}", rfc3339(a.starts_at)),
        Some(end) => {
            let lasted = Dur(end.since(a.starts_at).millis() / 1000 * 1000);
            format!(
                "resolved {} after {lasted} (started {})",
                rfc3339(end),
                rfc3339(a.starts_at)
            )
        }
    }
}

/// The plain-text body (email text part, webhook consumers, logs). Layout:
///
/// ```text
/// <summary>
///
/// Why now: <reason>
/// Group: <group labels> (receiver <name>)
/// [N dependent alerts suppressed ...]
///
/// Firing (N):
///
/// - <alert summary>
///   <Fact>: <value>
///   Runbook: <url> | none (add a runbook_url annotation)
///   ...
///
/// Resolved (N): ...
///
/// To silence this group for 2h:
///   burnwatch silence add ...
///
/// Sent by burnwatch at <time> (<external url>)
/// ```
pub fn text(n: &Notification, ctx: &RenderContext) -> String {
    let mut out = String::new();
    out.push_str(&summary(n));
    out.push_str("\n\n");
    out.push_str(&format!("Why now: {}\n", n.reason.as_str()));
    out.push_str(&format!(
        "Group: {} (receiver {})\n",
        labels_string(&n.group_labels),
        n.receiver
    ));
    if let Some(line) = inhibited_line(n) {
        out.push_str(&line);
        out.push('\n');
    }
    for (title, alerts) in sections(n) {
        out.push_str(&format!("\n{title} ({}):\n", alerts.len()));
        for a in alerts {
            out.push_str(&format!("\n- {}\n", alert_summary(a)));
            for f in facts(a) {
                out.push_str(&format!("  {}: {}\n", f.name, f.value));
            }
            out.push_str(&format!("  When: {}\n", timing(a)));
            let links = links(a, ctx);
            if a.ends_at.is_none() && !links.iter().any(|l| l.text == "Runbook") {
                out.push_str("  Runbook: none (add a runbook_url annotation)\n");
            }
            for l in links {
                out.push_str(&format!("  {}: {}\n", l.text, l.url));
            }
            out.push_str(&format!("  Labels: {}\n", labels_string(&a.labels)));
        }
    }
    let commands = silence_commands(n, ctx);
    if !commands.is_empty() {
        out.push_str(&format!(
            "\nTo silence this group for {}:\n",
            ctx.silence_duration
        ));
        for c in commands {
            out.push_str(&format!("  {c}\n"));
        }
    }
    out.push_str(&format!(
        "\nSent by burnwatch at {} ({})\n",
        rfc3339(n.at),
        ctx.external_url
    ));
    out
}

/// The HTML body (email HTML part): the same content as [`text`], every value escaped, links
/// only for absolute `http(s)` URLs, no scripts, inline styles only (mail clients drop the
/// rest).
pub fn html(n: &Notification, ctx: &RenderContext) -> String {
    let e = escape_html;
    let mut out = String::from(
        "<!DOCTYPE html>\n<html><body style=\"font-family:sans-serif;font-size:14px\">\n",
    );
    let status_color = match n.status() {
        AlertStatus::Firing => "#b00020",
        AlertStatus::Resolved => "#1b5e20",
    };
    out.push_str(&format!(
        "<h2 style=\"color:{status_color}\">{}</h2>\n",
        e(&summary(n))
    ));
    out.push_str(&format!(
        "<p><b>Why now:</b> {}<br>\n<b>Group:</b> <code>{}</code> (receiver {})",
        e(n.reason.as_str()),
        e(&labels_string(&n.group_labels)),
        e(&n.receiver)
    ));
    if let Some(line) = inhibited_line(n) {
        out.push_str(&format!("<br>\n<b>{}</b>", e(&line)));
    }
    out.push_str("</p>\n");
    for (title, alerts) in sections(n) {
        out.push_str(&format!("<h3>{title} ({})</h3>\n", alerts.len()));
        for a in alerts {
            out.push_str(&format!("<h4>{}</h4>\n<table>\n", e(&alert_summary(a))));
            let row = |name: &str, value_html: &str| {
                format!(
                    "<tr><td><b>{}</b></td><td>{value_html}</td></tr>\n",
                    e(name)
                )
            };
            for f in facts(a) {
                out.push_str(&row(f.name, &e(&f.value)));
            }
            out.push_str(&row("When", &e(&timing(a))));
            let links = links(a, ctx);
            if a.ends_at.is_none() && !links.iter().any(|l| l.text == "Runbook") {
                out.push_str(&row(
                    "Runbook",
                    "none (add a <code>runbook_url</code> annotation)",
                ));
            }
            for l in links {
                let link = format!("<a href=\"{}\">{}</a>", e(&l.url), e(&l.url));
                out.push_str(&row(l.text, &link));
            }
            out.push_str(&row(
                "Labels",
                &format!("<code>{}</code>", e(&labels_string(&a.labels))),
            ));
            out.push_str("</table>\n");
        }
    }
    let commands = silence_commands(n, ctx);
    if !commands.is_empty() {
        out.push_str(&format!(
            "<p>To silence this group for {}:</p>\n",
            e(&ctx.silence_duration)
        ));
        for c in commands {
            out.push_str(&format!("<pre>{}</pre>\n", e(&c)));
        }
    }
    let agent = if is_http_url(&ctx.external_url) {
        format!(
            "<a href=\"{}\">{}</a>",
            e(&ctx.external_url),
            e(&ctx.external_url)
        )
    } else {
        e(&ctx.external_url)
    };
    out.push_str(&format!(
        "<p style=\"color:#666\">Sent by burnwatch at {} ({agent})</p>\n</body></html>\n",
        e(&rfc3339(n.at))
    ));
    out
}

/// Escapes text for HTML element content and double- or single-quoted attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Whether `url` is an absolute `http://` or `https://` URL with a host.
pub fn is_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    matches!(rest, Some(r) if !r.is_empty() && !r.starts_with('/'))
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// The generator link, absolute: as given when it is `http(s)`, joined to the external URL when
/// it is a path.
pub fn generator_url(a: &Alert, ctx: &RenderContext) -> Option<String> {
    let g = a.generator_url.trim();
    if is_http_url(g) {
        return Some(g.to_owned());
    }
    if g.starts_with('/') && is_http_url(&ctx.external_url) {
        let joined = format!("{}{g}", ctx.external_url.trim_end_matches('/'));
        return is_http_url(&joined).then_some(joined);
    }
    None
}

/// Firing alerts first, then resolved ones, each section only when non-empty.
fn sections(n: &Notification) -> Vec<(&'static str, Vec<&Alert>)> {
    let firing: Vec<&Alert> = n.firing().collect();
    let resolved: Vec<&Alert> = n.resolved().collect();
    [("Firing", firing), ("Resolved", resolved)]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

/// Collapses line breaks so a value fits on one line (titles, subjects, list items).
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::notify::NotifyReason;
    use crate::time::Timestamp;

    fn map(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A fully annotated SLO burn alert, as the alert sources emit it.
    pub(crate) fn burn_alert(slo: &str, ended: Option<i64>) -> Alert {
        Alert {
            labels: map(&[
                ("alertname", "SloBurnRate"),
                ("service", "checkout"),
                ("slo", slo),
                ("severity", "page"),
                ("tier", "page_fast"),
                ("window", "1h/5m"),
            ]),
            annotations: map(&[
                ("summary", &format!("checkout {slo}: burning 14.4x")),
                ("objective", "99.9%"),
                ("sli", "98.51%"),
                ("budget_remaining", "61%"),
                ("burn_rate", "14.9x over 1h, 18.0x over 5m"),
                ("time_to_exhaustion", "1d 6h"),
                ("runbook_url", "https://runbooks.example/checkout/burn"),
                (
                    "dashboard_url",
                    "https://grafana.example/d/checkout?from=now-6h",
                ),
            ]),
            starts_at: Timestamp::from_secs(1_795_273_200),
            ends_at: ended.map(Timestamp::from_secs),
            generator_url: format!("/api/v1/slos/checkout/{slo}"),
        }
    }

    pub(crate) fn notification(alerts: Vec<Alert>) -> Notification {
        Notification {
            receiver: "oncall".into(),
            group_key: "{}/{severity=\"page\"}:{service=\"checkout\"}".into(),
            group_labels: map(&[("service", "checkout")]),
            reason: NotifyReason::First,
            alerts,
            inhibited: 3,
            at: Timestamp::from_secs(1_795_273_324),
        }
    }

    fn ctx() -> RenderContext {
        RenderContext::new("http://agent.example:9464")
    }

    #[test]
    fn titles_count_and_name_the_first_alert() {
        let mut n = notification(vec![
            burn_alert("availability", None),
            burn_alert("latency", None),
            burn_alert("errors", Some(1_795_273_300)),
        ]);
        assert_eq!(
            summary(&n),
            "[FIRING:2] checkout availability: burning 14.4x (+1 more)"
        );
        n.alerts.truncate(1);
        assert_eq!(
            summary(&n),
            "[FIRING:1] checkout availability: burning 14.4x"
        );
        n.alerts[0].ends_at = Some(Timestamp::from_secs(1_795_273_300));
        assert_eq!(
            summary(&n),
            "[RESOLVED] checkout availability: burning 14.4x"
        );
        n.alerts[0].annotations.clear();
        assert_eq!(
            summary(&n),
            r#"[RESOLVED] SloBurnRate {service="checkout", severity="page", slo="availability", tier="page_fast", window="1h/5m"}"#
        );
    }

    #[test]
    fn text_body_is_exact() {
        let n = notification(vec![
            burn_alert("availability", None),
            burn_alert("latency", Some(1_795_273_300)),
        ]);
        let want = "\
[FIRING:1] checkout availability: burning 14.4x

Why now: first notification
Group: {service=\"checkout\"} (receiver oncall)
3 dependent alerts suppressed (inhibited while this fires)

Firing (1):

- checkout availability: burning 14.4x
  SLO: checkout/availability, objective 99.9%
  SLI: 98.51%
  Budget left: 61%
  Burn rate: 14.9x over 1h, 18.0x over 5m
  Exhausts in: 1d 6h
  Severity: page (tier page_fast, window 1h/5m)
  When: since 2026-11-21T15:00:00.000Z
  Runbook: https://runbooks.example/checkout/burn
  Dashboard: https://grafana.example/d/checkout?from=now-6h
  Source: http://agent.example:9464/api/v1/slos/checkout/availability
  Labels: {alertname=\"SloBurnRate\", service=\"checkout\", severity=\"page\", slo=\"availability\", tier=\"page_fast\", window=\"1h/5m\"}

Resolved (1):

- checkout latency: burning 14.4x
  SLO: checkout/latency, objective 99.9%
  SLI: 98.51%
  Budget left: 61%
  Burn rate: 14.9x over 1h, 18.0x over 5m
  Exhausts in: 1d 6h
  Severity: page (tier page_fast, window 1h/5m)
  When: resolved 2026-11-21T15:01:40.000Z after 1m40s (started 2026-11-21T15:00:00.000Z)
  Runbook: https://runbooks.example/checkout/burn
  Dashboard: https://grafana.example/d/checkout?from=now-6h
  Source: http://agent.example:9464/api/v1/slos/checkout/latency
  Labels: {alertname=\"SloBurnRate\", service=\"checkout\", severity=\"page\", slo=\"latency\", tier=\"page_fast\", window=\"1h/5m\"}

To silence this group for 2h:
  burnwatch silence add 'service=\"checkout\"' --duration 2h --comment '<why>'

Sent by burnwatch at 2026-11-21T15:02:04.000Z (http://agent.example:9464)
";
        assert_eq!(text(&n, &ctx()), want);
    }

    #[test]
    fn bare_alerts_ask_for_a_runbook_and_get_per_alert_silences() {
        let bare = |instance: &str| Alert {
            labels: map(&[("alertname", "ProbeDown"), ("probe", instance)]),
            annotations: Labels::new(),
            starts_at: Timestamp::from_secs(0),
            ends_at: None,
            generator_url: "javascript:alert(1)".into(),
        };
        let mut n = notification(vec![bare("a"), bare("b")]);
        n.group_labels.clear();
        n.inhibited = 1;
        n.reason = NotifyReason::Repeat;
        let want = "\
[FIRING:2] ProbeDown {probe=\"a\"} (+1 more)

Why now: repeat interval elapsed
Group: {} (receiver oncall)
1 dependent alert suppressed (inhibited while this fires)

Firing (2):

- ProbeDown {probe=\"a\"}
  Probe: a
  When: since 1970-01-01T00:00:00.000Z
  Runbook: none (add a runbook_url annotation)
  Labels: {alertname=\"ProbeDown\", probe=\"a\"}

- ProbeDown {probe=\"b\"}
  Probe: b
  When: since 1970-01-01T00:00:00.000Z
  Runbook: none (add a runbook_url annotation)
  Labels: {alertname=\"ProbeDown\", probe=\"b\"}

To silence this group for 2h:
  burnwatch silence add 'alertname=\"ProbeDown\"' --duration 2h --comment '<why>'

Sent by burnwatch at 2026-11-21T15:02:04.000Z (http://agent.example:9464)
";
        assert_eq!(text(&n, &ctx()), want);
        // Nothing shared at all: one command per alert, never a match-everything silence.
        n.alerts[1].labels = map(&[("alertname", "TargetDown"), ("target", "b")]);
        assert_eq!(
            silence_commands(&n, &ctx()),
            vec![
                r#"burnwatch silence add 'alertname="ProbeDown"' 'probe="a"' --duration 2h --comment '<why>'"#,
                r#"burnwatch silence add 'alertname="TargetDown"' 'target="b"' --duration 2h --comment '<why>'"#,
            ]
        );
    }

    #[test]
    fn html_escapes_everything_and_links_only_http() {
        let mut a = burn_alert("availability", None);
        a.annotations
            .insert("summary".into(), "<script>x</script> & 'q'".into());
        a.annotations
            .insert("dashboard_url".into(), "javascript:alert(1)".into());
        let n = notification(vec![a]);
        let h = html(&n, &ctx());
        assert!(!h.contains("<script>"), "{h}");
        assert!(h.contains("&lt;script&gt;x&lt;/script&gt; &amp; &#39;q&#39;"));
        assert!(!h.contains("javascript:"), "{h}");
        assert!(h.contains(
            "<tr><td><b>Runbook</b></td><td><a href=\"https://runbooks.example/checkout/burn\">https://runbooks.example/checkout/burn</a></td></tr>"
        ));
        assert!(h.contains(
            "<pre>burnwatch silence add &#39;service=&quot;checkout&quot;&#39; --duration 2h --comment &#39;&lt;why&gt;&#39;</pre>"
        ));
        assert!(h.contains("<b>3 dependent alerts suppressed (inhibited while this fires)</b>"));
        assert!(h.starts_with("<!DOCTYPE html>"));
        assert!(h.ends_with("</body></html>\n"));
    }

    #[test]
    fn resolved_notifications_offer_no_silence() {
        let n = notification(vec![burn_alert("availability", Some(1_795_276_800))]);
        assert!(silence_commands(&n, &ctx()).is_empty());
        let t = text(&n, &ctx());
        assert!(!t.contains("silence add"));
        assert!(!t.contains("Runbook: none"));
        assert!(t.contains(
            "When: resolved 2026-11-21T16:00:00.000Z after 1h (started 2026-11-21T15:00:00.000Z)"
        ));
    }

    #[test]
    fn urls() {
        assert!(is_http_url("https://x.example/a"));
        assert!(!is_http_url("https:///a"));
        assert!(!is_http_url("ftp://x"));
        assert!(!is_http_url("http://x y"));
        let mut a = burn_alert("a", None);
        a.generator_url = "https://prom.example/graph?g0.expr=up".into();
        assert_eq!(
            generator_url(&a, &ctx()).as_deref(),
            Some("https://prom.example/graph?g0.expr=up")
        );
        a.generator_url = "/x".into();
        let c = RenderContext::new("http://agent/");
        assert_eq!(generator_url(&a, &c).as_deref(), Some("http://agent/x"));
        a.generator_url = String::new();
        assert_eq!(generator_url(&a, &c), None);
    }
}
