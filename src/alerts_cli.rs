//! `burnwatch alerts` and `burnwatch silence add|expire|list`: terminal tables of a running
//! agent's alerts and silences, read from its JSON API (`GET /api/v1/alerts`,
//! `GET /api/v1/silences`), and the request body of `silence add` (`POST /api/v1/silences`).
//! Pure (JSON in, text out; the current time is passed in) so it is tested without a server;
//! the CLI in `main.rs` does the HTTP and asks for colour when stdout is a terminal.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::alert::{MatchOp, Matcher, Matchers};
use crate::time::{Dur, Timestamp};

/// Why a table or a request could not be built.
#[derive(Debug, thiserror::Error)]
pub enum AlertsCliError {
    /// The body is not the API's JSON.
    #[error("unexpected answer from the agent (not {what} JSON): {detail}")]
    Shape {
        /// Which endpoint's JSON was expected.
        what: &'static str,
        /// What is missing.
        detail: String,
    },
    /// A matcher given on the command line does not parse.
    #[error(
        "{0}; write matchers as name=\"value\", name!=\"value\", name=~\"regex\" or name!~\"regex\""
    )]
    Matcher(#[from] crate::alert::MatcherError),
    /// `--duration` does not parse.
    #[error("--duration: {0}")]
    Duration(#[from] crate::time::DurError),
    /// `--end` does not parse.
    #[error("--end: {0:?} is not an RFC 3339 time such as 2026-01-02T15:04:05Z")]
    End(String),
    /// A required value is missing or empty.
    #[error("{0}")]
    Missing(&'static str),
}

const RED: &str = "\x1b[31m";
const YELLOW: &str = "\x1b[33m";
const RESET: &str = "\x1b[0m";

/// What `silence add` asks for, as given on the command line.
#[derive(Debug, Clone)]
pub struct SilenceArgs<'a> {
    /// Matchers, each `name="value"` (or a braced list of them).
    pub matchers: &'a [String],
    /// How long from now (`2h`), when `end` is not given.
    pub duration: Option<&'a str>,
    /// The end, RFC 3339, when `duration` is not given.
    pub end: Option<&'a str>,
    /// Who silences.
    pub author: &'a str,
    /// Why.
    pub comment: &'a str,
}

/// The default author of `silence add`: `$USER`, else `burnwatch@<host>` (containers and cron
/// jobs often have no `$USER`), else `burnwatch`.
pub fn default_author(user: Option<String>, host: Option<String>) -> String {
    match (user.filter(|u| !u.trim().is_empty()), host) {
        (Some(u), _) => u,
        (None, Some(h)) if !h.trim().is_empty() => format!("burnwatch@{}", h.trim()),
        _ => "burnwatch".to_owned(),
    }
}

/// The `POST /api/v1/silences` body for `args`, checked here so a typo is reported before
/// the agent is contacted.
pub fn silence_body(args: &SilenceArgs<'_>) -> Result<Value, AlertsCliError> {
    let mut matchers = Vec::new();
    for m in args.matchers {
        matchers.extend(Matchers::parse(m)?.0);
    }
    if matchers.is_empty() {
        return Err(AlertsCliError::Missing(
            "give at least one matcher, e.g. 'alertname=\"ProbeDown\"'",
        ));
    }
    if args.author.trim().is_empty() {
        return Err(AlertsCliError::Missing(
            "--author is empty (and $USER is not set)",
        ));
    }
    if args.comment.trim().is_empty() {
        return Err(AlertsCliError::Missing("--comment must say why"));
    }
    let mut body = json!({
        "matchers": matchers.iter().map(matcher_json).collect::<Vec<_>>(),
        "createdBy": args.author,
        "comment": args.comment,
    });
    match (args.duration, args.end) {
        (Some(d), None) => {
            Dur::parse(d)?;
            body["duration"] = json!(d);
        }
        (None, Some(e)) => {
            e.parse::<jiff::Timestamp>()
                .map_err(|_| AlertsCliError::End(e.to_owned()))?;
            body["endsAt"] = json!(e);
        }
        _ => {
            return Err(AlertsCliError::Missing(
                "give --duration (e.g. 2h) or --end (RFC 3339), one of them",
            ));
        }
    }
    Ok(body)
}

fn matcher_json(m: &Matcher) -> Value {
    json!({
        "name": m.name,
        "value": m.value,
        "isRegex": matches!(m.op, MatchOp::Re | MatchOp::NotRe),
        "isEqual": matches!(m.op, MatchOp::Eq | MatchOp::Re),
    })
}

/// `{a="x",b=~"y"}` from the API's matcher objects.
fn matchers_text(v: &Value) -> String {
    let ms: Vec<Matcher> = v
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|m| {
            let regex = m["isRegex"].as_bool().unwrap_or(false);
            let equal = m["isEqual"].as_bool().unwrap_or(true);
            let op = match (regex, equal) {
                (false, true) => MatchOp::Eq,
                (false, false) => MatchOp::Ne,
                (true, true) => MatchOp::Re,
                (true, false) => MatchOp::NotRe,
            };
            Matcher::new(m["name"].as_str()?, op, m["value"].as_str()?).ok()
        })
        .collect();
    Matchers(ms).to_string()
}

/// A time from the API as ms since the epoch.
fn millis(v: &Value) -> Option<i64> {
    v.as_str()?
        .parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_millisecond())
}

/// `3d 4h`, `2h 5m`, `4m 10s`, `12s`: the two largest units.
pub fn short_duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {sec}s")
    } else {
        format!("{sec}s")
    }
}

/// Aligned columns, two spaces apart, trailing space trimmed; each row with its colour.
fn table(rows: &[(Vec<String>, Option<&str>)], colour: bool) -> String {
    let cols = rows.first().map_or(0, |r| r.0.len());
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r.0[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (cells, paint) in rows {
        let mut line = String::new();
        for (c, cell) in cells.iter().enumerate() {
            let _ = write!(line, "{cell:<w$}  ", w = widths[c]);
        }
        let line = line.trim_end();
        match paint {
            Some(p) if colour => {
                let _ = writeln!(out, "{p}{line}{RESET}");
            }
            _ => {
                let _ = writeln!(out, "{line}");
            }
        }
    }
    out
}

fn list<'v>(body: &'v Value, key: &str, what: &'static str) -> Result<&'v [Value], AlertsCliError> {
    body[key]
        .as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| AlertsCliError::Shape {
            what,
            detail: format!("no `{key}` list"),
        })
}

/// What an alert is about: `service/slo`, `probe/<name>`, `target/<name>` or the service.
/// Probe and target alerts carry `service` too; their own name says more in a table row.
fn subject(labels: &Value) -> String {
    let l = |k: &str| labels[k].as_str().unwrap_or_default();
    if !l("slo").is_empty() {
        format!("{}/{}", l("service"), l("slo"))
    } else if !l("probe").is_empty() {
        format!("probe/{}", l("probe"))
    } else if !l("target").is_empty() {
        format!("target/{}", l("target"))
    } else if !l("service").is_empty() {
        l("service").to_owned()
    } else {
        "-".to_owned()
    }
}

/// The alerts table (`GET /api/v1/alerts` body), then the silences in force (`GET
/// /api/v1/silences` body): what `burnwatch alerts` prints.
pub fn render_alerts(
    alerts: &Value,
    silences: &Value,
    now: Timestamp,
    colour: bool,
) -> Result<String, AlertsCliError> {
    let items = list(alerts, "alerts", "/api/v1/alerts")?;
    let mut rows = vec![(
        ["ALERT", "SUBJECT", "SEVERITY", "STATE", "SINCE", "SUMMARY"]
            .map(String::from)
            .to_vec(),
        None,
    )];
    for a in items {
        let labels = &a["labels"];
        let st = &a["status"];
        let has = |k: &str| st[k].as_array().is_some_and(|v| !v.is_empty());
        let mut state = if has("silencedBy") {
            "silenced".to_owned()
        } else if has("inhibitedBy") {
            "inhibited".to_owned()
        } else {
            "active".to_owned()
        };
        if st["flapping"].as_bool() == Some(true) {
            state.push_str(", flapping");
        }
        let paint = if state.starts_with("active") {
            RED
        } else {
            YELLOW
        };
        let since = millis(&a["startsAt"])
            .map_or_else(|| "?".to_owned(), |t| short_duration(now.millis() - t));
        rows.push((
            vec![
                labels["alertname"].as_str().unwrap_or("?").to_owned(),
                subject(labels),
                labels["severity"].as_str().unwrap_or("-").to_owned(),
                state,
                since,
                a["annotations"]["summary"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
            ],
            Some(paint),
        ));
    }
    let mut out = String::new();
    if items.is_empty() {
        out.push_str("No alerts firing.\n");
    } else {
        out.push_str(&table(&rows, colour));
    }
    let pending = alerts["pending"].as_u64().unwrap_or(0);
    if pending > 0 {
        let _ = writeln!(
            out,
            "{pending} pending (condition true, waiting for `for`)."
        );
    }
    let in_force: Vec<&Value> = list(silences, "silences", "/api/v1/silences")?
        .iter()
        .filter(|s| s["status"]["state"] != "expired")
        .collect();
    if !in_force.is_empty() {
        out.push('\n');
        out.push_str(&silence_table(&in_force, now, colour));
    }
    Ok(out)
}

/// The silences table (`GET /api/v1/silences` body), expired ones included: what
/// `burnwatch silence list` prints.
pub fn render_silences(
    silences: &Value,
    now: Timestamp,
    colour: bool,
) -> Result<String, AlertsCliError> {
    let items: Vec<&Value> = list(silences, "silences", "/api/v1/silences")?
        .iter()
        .collect();
    if items.is_empty() {
        return Ok("No silences.\n".to_owned());
    }
    Ok(silence_table(&items, now, colour))
}

fn silence_table(items: &[&Value], now: Timestamp, colour: bool) -> String {
    let mut rows = vec![(
        ["ID", "STATE", "MATCHERS", "ENDS", "AUTHOR", "COMMENT"]
            .map(String::from)
            .to_vec(),
        None,
    )];
    for s in items {
        let state = s["status"]["state"].as_str().unwrap_or("?");
        let ends = match millis(&s["endsAt"]) {
            Some(t) if t > now.millis() => format!("in {}", short_duration(t - now.millis())),
            Some(t) => format!("{} ago", short_duration(now.millis() - t)),
            None => "?".to_owned(),
        };
        rows.push((
            vec![
                s["id"].as_str().unwrap_or("?").to_owned(),
                state.to_owned(),
                matchers_text(&s["matchers"]),
                ends,
                s["createdBy"].as_str().unwrap_or("").to_owned(),
                s["comment"].as_str().unwrap_or("").to_owned(),
            ],
            (state == "active").then_some(YELLOW),
        ));
    }
    table(&rows, colour)
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-05-28T20:26:40Z.
    const NOW: Timestamp = Timestamp(1_780_000_000_000);

    fn alerts() -> Value {
        json!({"alerts": [
            {"labels": {"alertname": "ProbeDown", "probe": "health", "service": "shop", "severity": "page"},
             "annotations": {"summary": "shop: probe health is down"},
             "startsAt": "2026-05-28T20:21:30.000Z",
             "status": {"state": "active", "silencedBy": [], "inhibitedBy": [], "flapping": false}},
            {"labels": {"alertname": "SloBurnRate", "service": "shop", "slo": "availability", "severity": "ticket"},
             "annotations": {},
             "startsAt": "2026-05-28T18:00:00.000Z",
             "status": {"state": "suppressed", "silencedBy": ["s-1"], "inhibitedBy": [], "flapping": true}}
        ], "pending": 2})
    }

    fn silences() -> Value {
        json!({"silences": [
            {"id": "s-1", "status": {"state": "active"},
             "matchers": [{"name": "alertname", "value": "SloBurnRate", "isRegex": false, "isEqual": true},
                          {"name": "slo", "value": "avail.*", "isRegex": true, "isEqual": true}],
             "endsAt": "2026-05-28T22:26:40.000Z", "createdBy": "ann", "comment": "deploy"},
            {"id": "s-0", "status": {"state": "expired"},
             "matchers": [{"name": "probe", "value": "x", "isRegex": false, "isEqual": false}],
             "endsAt": "2026-05-28T20:25:40.000Z", "createdBy": "bob", "comment": "old"}
        ]})
    }

    #[test]
    fn alerts_then_silences_in_force() {
        let t = render_alerts(&alerts(), &silences(), NOW, false).expect("renders");
        let want = "\
ALERT        SUBJECT            SEVERITY  STATE               SINCE   SUMMARY
ProbeDown    probe/health       page      active              5m 10s  shop: probe health is down
SloBurnRate  shop/availability  ticket    silenced, flapping  2h 26m
2 pending (condition true, waiting for `for`).

ID   STATE   MATCHERS                                  ENDS      AUTHOR  COMMENT
s-1  active  {alertname=\"SloBurnRate\",slo=~\"avail.*\"}  in 2h 0m  ann     deploy
";
        assert_eq!(t, want, "\n{t}");
        let c = render_alerts(&alerts(), &silences(), NOW, true).expect("renders");
        let lines: Vec<&str> = c.lines().collect();
        assert!(!lines[0].starts_with('\x1b'));
        assert!(lines[1].starts_with(RED) && lines[1].ends_with(RESET));
        assert!(lines[2].starts_with(YELLOW));
        let none = render_alerts(&json!({"alerts": []}), &json!({"silences": []}), NOW, false)
            .expect("renders");
        assert_eq!(none, "No alerts firing.\n");
        assert!(render_alerts(&json!({}), &silences(), NOW, false).is_err());
    }

    #[test]
    fn silence_list_includes_expired() {
        let t = render_silences(&silences(), NOW, false).expect("renders");
        assert!(t.contains("s-0  expired  {probe!=\"x\"}"), "{t}");
        assert!(t.contains("1m 0s ago  bob"), "{t}");
        assert_eq!(
            render_silences(&json!({"silences": []}), NOW, false).expect("renders"),
            "No silences.\n"
        );
    }

    #[test]
    fn the_notification_command_becomes_a_request() {
        // The words a shell makes of `alert::silence_command`'s output.
        let labels = [
            ("alertname".to_owned(), "ProbeDown".to_owned()),
            ("probe".to_owned(), "it's \"odd\"".to_owned()),
        ]
        .into();
        let cmd = crate::alert::silence_command(&labels, "2h");
        assert_eq!(
            cmd,
            r#"burnwatch silence add 'alertname="ProbeDown"' 'probe="it'\''s \"odd\""' --duration 2h --comment '<why>'"#
        );
        let matchers = [
            r#"alertname="ProbeDown""#.to_owned(),
            r#"probe="it's \"odd\"""#.to_owned(),
        ];
        let body = silence_body(&SilenceArgs {
            matchers: &matchers,
            duration: Some("2h"),
            end: None,
            author: "ann",
            comment: "<why>",
        })
        .expect("valid");
        assert_eq!(
            body,
            json!({
                "matchers": [
                    {"name": "alertname", "value": "ProbeDown", "isRegex": false, "isEqual": true},
                    {"name": "probe", "value": "it's \"odd\"", "isRegex": false, "isEqual": true}
                ],
                "createdBy": "ann", "comment": "<why>", "duration": "2h"
            })
        );
    }

    #[test]
    fn bad_arguments_are_refused_before_asking() {
        /// Matchers, `--duration`, `--end`, `--comment`, and what the error must say.
        type Case<'a> = (
            &'a [&'a str],
            Option<&'a str>,
            Option<&'a str>,
            &'a str,
            &'a str,
        );
        let cases: [Case<'_>; 6] = [
            (&[r#"alertname="X""#], Some("2x"), None, "c", "--duration"),
            (&[r#"alertname="X""#], None, Some("tomorrow"), "c", "--end"),
            (
                &[r#"alertname="X""#],
                None,
                None,
                "c",
                "--duration (e.g. 2h) or --end",
            ),
            (&[r#"alertname="X""#], Some("2h"), None, " ", "--comment"),
            (&[], Some("2h"), None, "c", "at least one matcher"),
            (&["alertname"], Some("2h"), None, "c", "name=\"value\""),
        ];
        for (matchers, duration, end, comment, want) in cases {
            let matchers: Vec<String> = matchers.iter().map(|m| (*m).to_owned()).collect();
            let e = silence_body(&SilenceArgs {
                matchers: &matchers,
                duration,
                end,
                author: "ann",
                comment,
            })
            .expect_err("refused")
            .to_string();
            assert!(e.contains(want), "{e}");
        }
        let matchers = [r#"alertname="X""#.to_owned()];
        let end = silence_body(&SilenceArgs {
            matchers: &matchers,
            duration: None,
            end: Some("2026-05-28T22:00:00Z"),
            author: "ann",
            comment: "c",
        })
        .expect("valid");
        assert_eq!(end["endsAt"], "2026-05-28T22:00:00Z");
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(short_duration(12_999), "12s");
        assert_eq!(short_duration(310_000), "5m 10s");
        assert_eq!(short_duration(3_600_000 * 26 + 60_000), "1d 2h");
        assert_eq!(short_duration(-5), "0s");
    }

    #[test]
    fn the_default_author_works_without_user() {
        assert_eq!(default_author(Some("ann".into()), Some("h".into())), "ann");
        assert_eq!(
            default_author(None, Some("web-1\n".into())),
            "burnwatch@web-1"
        );
        assert_eq!(default_author(Some(" ".into()), None), "burnwatch");
        assert_eq!(default_author(None, Some(String::new())), "burnwatch");
    }
}
