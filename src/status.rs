//! `burnwatch status`: a terminal table of every SLO, read from a running agent's JSON API
//! (`GET /api/v1/slos`). Rendering is pure (JSON in, text out) so it is tested without a server;
//! colour is used only when asked for (the CLI asks when stdout is a terminal).

use std::fmt::Write as _;

use serde_json::Value;

/// Why the table could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The body is not the API's JSON.
    #[error("unexpected answer from the agent (not /api/v1/slos JSON): {0}")]
    Shape(String),
}

const RED: &str = "\x1b[31m";
const YELLOW: &str = "\x1b[33m";
const GREEN: &str = "\x1b[32m";
const RESET: &str = "\x1b[0m";

/// The table for an `/api/v1/slos` body.
pub fn render(body: &Value, colour: bool) -> Result<String, StatusError> {
    let slos = body["slos"]
        .as_array()
        .ok_or_else(|| StatusError::Shape("no `slos` list".into()))?;
    let mut rows: Vec<[String; 6]> = vec![[
        "SLO".into(),
        "OBJECTIVE".into(),
        "SLI".into(),
        "BUDGET LEFT".into(),
        "FASTEST BURN".into(),
        "ALERTS".into(),
    ]];
    let mut states: Vec<u8> = vec![0];
    let mut partly = false;
    for s in slos {
        let name = format!(
            "{}/{}",
            s["service"].as_str().unwrap_or("?"),
            s["slo"].as_str().unwrap_or("?")
        );
        let num = |k: &str| s[k].as_f64().unwrap_or(0.0);
        let mut worst = 0u8;
        let alerts: Vec<String> = s["alerts"]
            .as_array()
            .map(|a| a.as_slice())
            .unwrap_or_default()
            .iter()
            .filter_map(|a| {
                // The tier alert's lifecycle state, a plain string (see docs/api.md).
                let (label, level) = match a["state"].as_str()? {
                    s @ ("firing" | "flapping") => (s, 2),
                    s @ "pending" => (s, 1),
                    _ => return None,
                };
                worst = worst.max(level);
                Some(format!("{} {label}", a["tier"].as_str().unwrap_or("?")))
            })
            .collect();
        // Agents before coverage existed send none: their windows read as covered.
        let coverage = s["coverage"].as_f64().unwrap_or(1.0);
        let sli = if coverage < 1.0 {
            partly = true;
            format!("{:.3}% [{}]", num("sli") * 100.0, fmt_coverage(coverage))
        } else {
            format!("{:.3}%", num("sli") * 100.0)
        };
        rows.push([
            name,
            format!("{}%", trim(num("objective_percent"))),
            sli,
            format!("{:.1}%", num("budget_remaining_ratio") * 100.0),
            format!("{:.2}x", num("fastest_burn_rate")),
            if alerts.is_empty() {
                "-".into()
            } else {
                alerts.join(", ")
            },
        ]);
        states.push(worst);
    }
    let widths: Vec<usize> = (0..6)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (row, state) in rows.iter().zip(states) {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c == 0 || c == 5 {
                let _ = write!(line, "{cell:<w$}", w = widths[c]);
            } else {
                let _ = write!(line, "{cell:>w$}", w = widths[c]);
            }
            if c < 5 {
                line.push_str("  ");
            }
        }
        let line = line.trim_end();
        let is_header = out.is_empty();
        if colour && !is_header {
            let c = match state {
                2 => RED,
                1 => YELLOW,
                _ => GREEN,
            };
            let _ = writeln!(out, "{c}{line}{RESET}");
        } else {
            let _ = writeln!(out, "{line}");
        }
    }
    if slos.is_empty() {
        out.push_str("(no SLOs loaded)\n");
    }
    if partly {
        out.push_str(
            "[n%]: share of the SLO window with data (since the first collection); budget left counts against the whole window\n",
        );
    }
    Ok(out)
}

/// A coverage below 1 as a percentage, rounded down so it never reads 100%: `41%`, `0.03%`.
fn fmt_coverage(c: f64) -> String {
    let pct = c * 100.0;
    if pct >= 1.0 {
        format!("{}%", pct.floor())
    } else {
        format!("{}%", trim((pct * 100.0).floor() / 100.0))
    }
}

/// `99.9` as `99.9`, `99.0` as `99`.
fn trim(x: f64) -> String {
    let s = format!("{x:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body() -> Value {
        json!({"at": 0, "slos": [
            {"service": "shop", "slo": "availability", "objective_percent": 99.9, "sli": 0.99875,
             "budget_remaining_ratio": -0.25, "fastest_burn_rate": 14.44,
             "alerts": [{"tier": "page_fast", "severity": "page", "state": "firing", "since": 1, "held_since": null},
                        {"tier": "page_slow", "severity": "page", "state": "flapping", "since": 1, "held_since": null},
                        {"tier": "ticket_fast", "severity": "ticket", "state": "resolved", "since": 1, "held_since": null},
                        {"tier": "ticket_slow", "severity": "ticket", "state": "inactive", "since": null, "held_since": null}]},
            {"service": "shop", "slo": "latency", "objective_percent": 99.0, "sli": 1.0,
             "budget_remaining_ratio": 1.0, "fastest_burn_rate": 0.0, "alerts": []}
        ]})
    }

    #[test]
    fn partly_covered_windows_are_marked() {
        let mut b = body();
        b["slos"][0]["coverage"] = json!(0.000_347);
        b["slos"][1]["coverage"] = json!(1.0);
        let t = render(&b, false).expect("renders");
        let want = "\
SLO                OBJECTIVE              SLI  BUDGET LEFT  FASTEST BURN  ALERTS
shop/availability      99.9%  99.875% [0.03%]       -25.0%        14.44x  page_fast firing, page_slow flapping
shop/latency             99%         100.000%       100.0%         0.00x  -
[n%]: share of the SLO window with data (since the first collection); budget left counts against the whole window
";
        assert_eq!(t, want);
        b["slos"][0]["coverage"] = json!(0.419);
        assert!(
            render(&b, false)
                .expect("renders")
                .contains("99.875% [41%]")
        );
    }

    #[test]
    fn plain_table() {
        let t = render(&body(), false).expect("renders");
        let want = "\
SLO                OBJECTIVE       SLI  BUDGET LEFT  FASTEST BURN  ALERTS
shop/availability      99.9%   99.875%       -25.0%        14.44x  page_fast firing, page_slow flapping
shop/latency             99%  100.000%       100.0%         0.00x  -
";
        assert_eq!(t, want, "\n{t}");
    }

    #[test]
    fn colour_by_worst_alert() {
        let t = render(&body(), true).expect("renders");
        let lines: Vec<&str> = t.lines().collect();
        assert!(!lines[0].starts_with('\x1b'));
        assert!(lines[1].starts_with(RED) && lines[1].ends_with(RESET));
        assert!(lines[2].starts_with(GREEN));
        assert!(render(&json!({"x": 1}), false).is_err());
    }
}
