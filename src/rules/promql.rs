//! The common shapes of SLI queries in Sloth and OpenSLO files, translated to burnwatch
//! selectors so the agent counts them exactly from scrapes.
//!
//! A query's events over a window are the increase of counters: `sum(rate(S[w]))` or
//! `sum(increase(S[w]))` (Sloth writes the window `{{.window}}`), with optional parentheses, a
//! `sum by (...)` whose labels become the SLO's `group_by`, and, for an error query, the
//! difference of two such sums (all events minus good ones, or a histogram's `_count` minus the
//! bucket at a threshold). `rate` and `increase` over the same window differ by the window's
//! length only, which cancels in a ratio, so either reads as the counters' increase. Anything else
//! (arithmetic on gauges, `histogram_quantile`, recording rules of other shapes) is not
//! translated: it needs a query source that asks Prometheus (see [`Untranslated`]).
//!
//! Pure: text in, selectors out.

use std::sync::Arc;

use crate::rules::model::{Indicator, LatencySource, QueryMode, RatioNumerator};
use crate::rules::selector::{MatchOp, Selector};
use crate::time::Dur;

/// One `sum(rate(S[w]))`: its selector and its `by` labels (empty without `by`).
#[derive(Debug, Clone, PartialEq)]
pub struct Sum {
    /// The selector inside `rate`/`increase`.
    pub selector: Arc<Selector>,
    /// `sum by (...)` labels, in the order written.
    pub by: Vec<String>,
}

/// What an events SLI (an error or good query over a total query) translates to.
#[derive(Debug, Clone, PartialEq)]
pub enum EventsSli {
    /// `errors / total`: bad events over all events.
    Bad {
        /// The error events.
        bad: Sum,
        /// All events.
        total: Sum,
    },
    /// `(total - good) / total`: all events minus good ones.
    Good {
        /// The good events.
        good: Sum,
        /// All events.
        total: Sum,
    },
    /// `(h_count - h_bucket{le="t"}) / h_count`: requests slower than a histogram bucket.
    Histogram {
        /// The histogram's base selector (without `_count` / `_bucket`).
        selector: Arc<Selector>,
        /// The bucket's `le`, in seconds.
        threshold_secs: f64,
        /// `sum by (...)` labels.
        by: Vec<String>,
    },
}

impl EventsSli {
    /// The engine's indicator for it, with the `sum by (...)` labels that become the SLO's
    /// `group_by` (the total's, which a well-formed ratio shares with its numerator).
    pub fn into_indicator(self) -> (Indicator, Vec<String>) {
        match self {
            EventsSli::Bad { bad, total } => (
                Indicator::Ratio {
                    numerator: RatioNumerator::Bad,
                    numerator_selector: bad.selector,
                    total: total.selector,
                },
                total.by,
            ),
            EventsSli::Good { good, total } => (
                Indicator::Ratio {
                    numerator: RatioNumerator::Good,
                    numerator_selector: good.selector,
                    total: total.selector,
                },
                total.by,
            ),
            EventsSli::Histogram {
                selector,
                threshold_secs,
                by,
            } => (
                Indicator::LatencyThreshold {
                    threshold: Dur::from_millis((threshold_secs * 1000.0).round() as u64),
                    // The query names the bucket, so the threshold is an edge of it.
                    source: LatencySource::Histogram {
                        selector,
                        buckets: Some(vec![threshold_secs]),
                    },
                },
                by,
            ),
        }
    }
}

/// Why a query was not translated (it needs a query source).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct Untranslated(pub String);

impl Untranslated {
    /// The warning a spec reader gives at the query: the SLO is read from a query source.
    pub fn needs_a_source(&self) -> String {
        format!(
            "needs a query source: this SLI's queries do not translate to selectors ({self}), so the agent reads them from its `sources.prometheus` entry (docs/sources.md)"
        )
    }
}

/// The indicator of an events SLI (an error query over a total query, as Sloth and OpenSLO
/// write them) and its `group_by`: selectors when its shape translates ([`events`]),
/// otherwise a `query` indicator of the default source, with why it did not translate (the
/// reader warns with [`Untranslated::needs_a_source`]).
pub fn events_or_query(
    error_query: String,
    total_query: String,
) -> ((Indicator, Vec<String>), Option<Untranslated>) {
    match events(&error_query, &total_query) {
        Ok(sli) => (sli.into_indicator(), None),
        Err(why) => (
            (
                Indicator::Query {
                    source: None,
                    numerator: RatioNumerator::Bad,
                    numerator_query: error_query,
                    total_query,
                },
                Vec::new(),
            ),
            Some(why),
        ),
    }
}

/// The window placeholders a query may hold: Sloth's `{{.window}}` (any spacing) and OpenSLO's
/// literal windows are both read as "the window".
fn strip_window(text: &str) -> String {
    QueryMode::with_window(text, "$window")
}

/// A cursor over a query's text.
struct Cur<'a> {
    s: &'a str,
    at: usize,
}

impl<'a> Cur<'a> {
    fn ws(&mut self) {
        while self.s[self.at..].starts_with(char::is_whitespace) {
            self.at += self.s[self.at..].chars().next().map_or(1, char::len_utf8);
        }
    }
    fn eat(&mut self, token: &str) -> bool {
        self.ws();
        if self.s[self.at..].starts_with(token) {
            self.at += token.len();
            true
        } else {
            false
        }
    }
    fn word(&mut self) -> Option<&'a str> {
        self.ws();
        let rest = &self.s[self.at..];
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        if len == 0 {
            return None;
        }
        self.at += len;
        Some(&rest[..len])
    }
    fn done(&mut self) -> bool {
        self.ws();
        self.at == self.s.len()
    }
}

/// `sum [by (l, ...)] (rate|increase(S[window]))`, maybe in parentheses.
/// Parentheses deeper than this around one sum are refused: a query is a rules file's text, and
/// the parser recurses once per pair.
const MAX_PARENS: usize = 16;

fn sum(c: &mut Cur<'_>) -> Result<Sum, Untranslated> {
    sum_in(c, 0)
}

fn sum_in(c: &mut Cur<'_>, depth: usize) -> Result<Sum, Untranslated> {
    let start = c.at;
    if c.eat("(") {
        if depth >= MAX_PARENS {
            return Err(Untranslated(format!(
                "more than {MAX_PARENS} parentheses around one sum"
            )));
        }
        let inner = sum_in(c, depth + 1)?;
        if !c.eat(")") {
            return Err(shape(c.s));
        }
        return Ok(inner);
    }
    c.at = start;
    if c.word() != Some("sum") {
        return Err(shape(c.s));
    }
    let mut by = Vec::new();
    let save = c.at;
    match c.word() {
        Some("by") => by = by_list(c).ok_or_else(|| shape(c.s))?,
        Some("without") => return Err(without()),
        _ => c.at = save,
    }
    if !c.eat("(") {
        return Err(shape(c.s));
    }
    let func = c.word().ok_or_else(|| shape(c.s))?;
    if func != "rate" && func != "increase" {
        return Err(Untranslated(format!(
            "`{func}(...)` inside `sum` is not a counter's increase; only `rate` and `increase` translate"
        )));
    }
    if !c.eat("(") {
        return Err(shape(c.s));
    }
    let (selector, range) = ranged_selector(c, shape)?;
    if range != "$window" {
        return Err(Untranslated(format!(
            "the range `[{range}]` is not the SLO's window (`{{{{.window}}}}`)"
        )));
    }
    if !c.eat(")") || !c.eat(")") {
        return Err(shape(c.s));
    }
    Ok(Sum {
        selector: Arc::new(selector),
        by,
    })
}

/// `S[range]` at the cursor (after `rate(`): the selector and the range's text, the cursor
/// after the `]`. `bad` words the error when it is not written so.
fn ranged_selector(
    c: &mut Cur<'_>,
    bad: fn(&str) -> Untranslated,
) -> Result<(Selector, String), Untranslated> {
    c.ws();
    let rest = &c.s[c.at..];
    let open = range_start(rest).ok_or_else(|| bad(c.s))?;
    let selector = parse_selector(rest[..open].trim())?;
    c.at += open + 1;
    let close = c.s[c.at..].find(']').ok_or_else(|| bad(c.s))?;
    let range = c.s[c.at..c.at + close].trim().to_owned();
    c.at += close + 1;
    Ok((selector, range))
}

fn parse_selector(text: &str) -> Result<Selector, Untranslated> {
    Selector::parse(text).map_err(|e| Untranslated(format!("selector `{text}`: {}", e.message)))
}

/// The position of a range's `[` after a selector: the first one outside its braces and quoted
/// values (`code=~"[45].."` holds one inside).
fn range_start(text: &str) -> Option<usize> {
    first_outside(text, '[')
}

/// The first `target` in `text` outside braces and quoted values.
fn first_outside(text: &str, target: char) -> Option<usize> {
    let (mut quoted, mut escaped, mut depth) = (false, false, 0u32);
    for (i, ch) in text.char_indices() {
        if quoted {
            match (escaped, ch) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => quoted = false,
                _ => {}
            }
            continue;
        }
        match ch {
            '"' => quoted = true,
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            c if c == target && depth == 0 => return Some(i),
            _ => {}
        }
    }
    None
}

/// The labels of `by (l, ...)`, after `by`; None when it is not written so.
fn by_list(c: &mut Cur<'_>) -> Option<Vec<String>> {
    let mut by = Vec::new();
    if !c.eat("(") {
        return None;
    }
    loop {
        if c.eat(")") {
            return Some(by);
        }
        by.push(c.word()?.to_owned());
        if !c.eat(",") {
            return c.eat(")").then_some(by);
        }
    }
}

fn shape(query: &str) -> Untranslated {
    Untranslated(format!(
        "`{}` is not `sum(rate(<selector>[{{{{.window}}}}]))` (or `increase`, `sum by (...)`, or the difference of two of those)",
        query.trim().replace("$window", "{{.window}}")
    ))
}

/// A query that is one sum, or the difference of two (`a - b`), maybe in parentheses.
fn terms(text: &str) -> Result<(Sum, Option<Sum>), Untranslated> {
    let stripped = strip_window(text);
    let mut c = Cur {
        s: &stripped,
        at: 0,
    };
    // `( a - b )`: the outer parentheses of a difference.
    let outer = {
        let save = c.at;
        if c.eat("(") {
            let mut probe = Cur {
                s: &stripped,
                at: c.at,
            };
            if sum(&mut probe).is_ok() && probe.eat("-") {
                true
            } else {
                c.at = save;
                false
            }
        } else {
            false
        }
    };
    let a = sum(&mut c)?;
    let b = if c.eat("-") { Some(sum(&mut c)?) } else { None };
    if outer && !c.eat(")") {
        return Err(shape(&stripped));
    }
    if !c.done() {
        return Err(shape(&stripped));
    }
    Ok((a, b))
}

/// The `le` of a bucket selector, and the selector without it.
fn bucket_le(s: &Selector) -> Option<f64> {
    s.matchers()
        .iter()
        .find(|m| m.label() == "le" && m.op() == MatchOp::Eq)
        .and_then(|m| crate::exposition::parse_float(m.value().as_bytes()))
}

/// `s` without its `le` matcher and with `name` as metric name, compared as text.
fn base_of(s: &Selector, suffix: &str) -> Option<String> {
    let name = s.metric()?.strip_suffix(suffix)?;
    let mut matchers: Vec<String> = s
        .matchers()
        .iter()
        .filter(|m| m.label() != "le" && m.label() != "__name__")
        .map(ToString::to_string)
        .collect();
    matchers.sort();
    Some(if matchers.is_empty() {
        name.to_owned()
    } else {
        format!("{name}{{{}}}", matchers.join(","))
    })
}

/// Translates an events SLI: an error query over a total query.
pub fn events(error_query: &str, total_query: &str) -> Result<EventsSli, Untranslated> {
    let (total, extra) = terms(total_query)?;
    if extra.is_some() {
        return Err(Untranslated(
            "the total query is a difference; only the error query may subtract".into(),
        ));
    }
    let (a, b) = terms(error_query)?;
    let same_by = |x: &Sum| x.by == total.by;
    match b {
        None => {
            if !same_by(&a) {
                return Err(by_mismatch());
            }
            Ok(EventsSli::Bad { bad: a, total })
        }
        Some(b) => {
            if !same_by(&a) || !same_by(&b) {
                return Err(by_mismatch());
            }
            // A histogram's count minus its bucket at the threshold: a latency SLO (with
            // percentiles, and `le` compared as a number), before the general "all minus good".
            let count = base_of(&a.selector, "_count");
            let bucket = base_of(&b.selector, "_bucket");
            let le = bucket_le(&b.selector);
            match (count, bucket, le) {
                (Some(c), Some(k), Some(le))
                    if c == k && base_of(&total.selector, "_count") == Some(c.clone()) =>
                {
                    let selector = Selector::parse(&c)
                        .map_err(|e| Untranslated(format!("selector `{c}`: {}", e.message)))?;
                    Ok(EventsSli::Histogram {
                        selector: Arc::new(selector),
                        threshold_secs: le,
                        by: total.by,
                    })
                }
                // All events minus good ones.
                _ if a.selector.to_string() == total.selector.to_string() => {
                    Ok(EventsSli::Good { good: b, total })
                }
                _ => Err(Untranslated(
                    "the error query subtracts, but neither as all events minus good ones (its first term is not the total query's) nor as a histogram's `_count` minus its `_bucket{le=...}` of the same series".into(),
                )),
            }
        }
    }
}

/// What one OpenSLO query counts, read as a counter's events: `S`, `sum(S)`,
/// `sum [by (l, ...)] (rate|increase(S[w]))`, maybe in parentheses. `rate` or `increase` over any
/// range (`[5m]`, `[{{.window}}]`) reads as the counters' increase: good and total are read over
/// the same range, so its length cancels in their ratio. `counter_values` says whether a bare
/// `S` or `sum(S)` holds counters (OpenSLO's `counter: true`); when it does not (a gauge), only
/// the `rate`/`increase` shapes translate.
pub fn counter(query: &str, counter_values: bool) -> Result<Sum, Untranslated> {
    let stripped = strip_window(query);
    let mut c = Cur {
        s: &stripped,
        at: 0,
    };
    let out = counter_in(&mut c, 0, counter_values)?;
    if !c.done() {
        return Err(single_shape(&stripped));
    }
    Ok(out)
}

fn counter_in(c: &mut Cur<'_>, depth: usize, counter_values: bool) -> Result<Sum, Untranslated> {
    let start = c.at;
    if c.eat("(") {
        if depth >= MAX_PARENS {
            return Err(Untranslated(format!(
                "more than {MAX_PARENS} parentheses around one sum"
            )));
        }
        let inner = counter_in(c, depth + 1, counter_values)?;
        if !c.eat(")") {
            return Err(single_shape(c.s));
        }
        return Ok(inner);
    }
    c.at = start;
    let save = c.at;
    let mut by = Vec::new();
    let summed = match c.word() {
        Some("sum") => {
            let after = c.at;
            match c.word() {
                Some("by") => by = by_list(c).ok_or_else(|| single_shape(c.s))?,
                Some("without") => return Err(without()),
                _ => c.at = after,
            }
            if !c.eat("(") {
                // `sum` alone is a metric named `sum`.
                c.at = save;
                false
            } else {
                true
            }
        }
        _ => {
            c.at = save;
            false
        }
    };
    // rate/increase(S[w]) or a bare selector.
    let inner_start = c.at;
    let func = c.word();
    let selector = if matches!(func, Some("rate" | "increase")) && c.eat("(") {
        // Any range: good and total share it, so its length cancels.
        let (selector, _range) = ranged_selector(c, single_shape)?;
        if !c.eat(")") {
            return Err(single_shape(c.s));
        }
        selector
    } else {
        if let Some(f) = func.filter(|_| c.s[c.at..].trim_start().starts_with('(')) {
            return Err(Untranslated(format!(
                "`{f}(...)` is not a counter's increase; only `rate` and `increase` translate"
            )));
        }
        c.at = inner_start;
        c.ws();
        let rest = &c.s[c.at..];
        let end = match first_outside(rest, ')') {
            Some(end) => end,
            None if !summed => rest.len(),
            None => return Err(single_shape(c.s)),
        };
        let text = rest[..end].trim();
        let selector = parse_selector(text)?;
        if !counter_values {
            return Err(Untranslated(format!(
                "`{text}` is read as a gauge (`counter` is not `true`), whose values are not events; set `counter: true` if it is a counter, or write `sum(rate({text}[5m]))`"
            )));
        }
        c.at += end;
        selector
    };
    if summed && !c.eat(")") {
        return Err(single_shape(c.s));
    }
    if !summed && !by.is_empty() {
        return Err(single_shape(c.s));
    }
    Ok(Sum {
        selector: Arc::new(selector),
        by,
    })
}

fn single_shape(query: &str) -> Untranslated {
    Untranslated(format!(
        "`{}` is not `<selector>`, `sum(<selector>)` or `sum(rate(<selector>[<range>]))` (or `increase`, `sum by (...)`)",
        query.trim().replace("$window", "{{.window}}")
    ))
}

fn without() -> Untranslated {
    Untranslated(
        "`sum without (...)` keeps every label but the listed ones, which depends on the series; write `sum by (...)`".into(),
    )
}

fn by_mismatch() -> Untranslated {
    Untranslated(
        "the queries sum by different labels; an SLO per label set needs the same `by (...)` in both".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(s: &str) -> String {
        Selector::parse(s).expect("selector").to_string()
    }

    #[test]
    fn sloths_shapes_translate() {
        let e = events(
            r#"sum(rate(http_request_duration_seconds_count{job="myservice",code=~"(5..|429)"}[{{.window}}]))"#,
            r#"sum(rate(http_request_duration_seconds_count{job="myservice"}[{{ .window }}]))"#,
        )
        .expect("translates");
        let EventsSli::Bad { bad, total } = e else {
            panic!("{e:?}")
        };
        assert_eq!(
            bad.selector.to_string(),
            sel(r#"http_request_duration_seconds_count{job="myservice",code=~"(5..|429)"}"#)
        );
        assert_eq!(
            total.selector.to_string(),
            sel(r#"http_request_duration_seconds_count{job="myservice"}"#)
        );
        assert!(bad.by.is_empty());

        // Sloth's Kubernetes apiserver latency SLO: count minus the 0.4 bucket.
        let e = events(
            "(\n  sum(rate(apiserver_request_duration_seconds_count{verb!=\"WATCH\"}[{{.window}}]))\n  -\n  sum(rate(apiserver_request_duration_seconds_bucket{le=\"0.4\",verb!=\"WATCH\"}[{{.window}}]))\n)\n",
            "sum(rate(apiserver_request_duration_seconds_count{verb!=\"WATCH\"}[{{.window}}]))",
        )
        .expect("translates");
        assert_eq!(
            e,
            EventsSli::Histogram {
                selector: Arc::new(
                    Selector::parse("apiserver_request_duration_seconds{verb!=\"WATCH\"}")
                        .expect("sel")
                ),
                threshold_secs: 0.4,
                by: Vec::new(),
            }
        );

        // All minus good, increase, `sum by`, parentheses.
        let e = events(
            "sum by (route) (increase(req_total[{{.window}}])) - sum by (route) (increase(req_total{code=\"200\"}[{{.window}}]))",
            "(sum by (route) (increase(req_total[{{.window}}])))",
        )
        .expect("translates");
        let EventsSli::Good { good, total } = e else {
            panic!("{e:?}")
        };
        assert_eq!(good.by, ["route"]);
        assert_eq!(total.selector.to_string(), "req_total");
    }

    #[test]
    fn other_shapes_say_why_they_need_a_query_source() {
        let why = |e: &str, t: &str| events(e, t).expect_err("not translated").0;
        assert!(
            why("sum(rate(x[5m]))", "sum(rate(y[{{.window}}]))").contains("not the SLO's window")
        );
        assert!(
            why(
                "histogram_quantile(0.9, sum(rate(x[{{.window}}])))",
                "sum(rate(y[{{.window}}]))"
            )
            .contains("is not `sum(rate(")
        );
        assert!(
            why("sum(irate(x[{{.window}}]))", "sum(rate(y[{{.window}}]))").contains("`irate(...)`")
        );
        assert!(
            why(
                "sum by (a) (rate(x[{{.window}}]))",
                "sum(rate(y[{{.window}}]))"
            )
            .contains("different labels")
        );
        assert!(
            why(
                "sum without (a) (rate(x[{{.window}}]))",
                "sum(rate(y[{{.window}}]))"
            )
            .contains("sum without")
        );
        assert!(
            why("sum(rate(x[{{.window}}])) / 2", "sum(rate(y[{{.window}}]))")
                .contains("is not `sum(rate(")
        );
        // Hostile nesting is refused, not recursed into.
        let deep = format!(
            "{}sum(rate(x[{{{{.window}}}}])){}",
            "(".repeat(100_000),
            ")".repeat(100_000)
        );
        assert!(why(&deep, "sum(rate(y[{{.window}}]))").contains("parentheses"));
    }

    #[test]
    fn single_counter_queries_translate() {
        let sel_of = |q: &str, counter_values: bool| {
            counter(q, counter_values).map(|s| (s.selector.to_string(), s.by))
        };
        let plain = |s: &str| (sel(s), Vec::<String>::new());
        // OpenSLO's README ratioMetric, `counter: true`.
        assert_eq!(
            sel_of(
                r#"sum(localhost_server_requests{code=~"2xx|3xx",host="*",instance="127.0.0.1:9090"})"#,
                true
            ),
            Ok(plain(
                r#"localhost_server_requests{code=~"2xx|3xx",host="*",instance="127.0.0.1:9090"}"#
            ))
        );
        assert_eq!(
            sel_of(r#"localhost_server_requests{code="total"}"#, true),
            Ok(plain(r#"localhost_server_requests{code="total"}"#))
        );
        // A `)` inside a quoted value does not end the selector.
        assert_eq!(
            sel_of(r#"sum(x{path="/a)b"})"#, true),
            Ok(plain(r#"x{path="/a)b"}"#))
        );
        for q in [
            "sum(rate(req_total{code!~\"5..\"}[5m]))",
            "(sum(increase(req_total{code!~\"5..\"}[{{.window}}])))",
            "sum ( rate ( req_total{code!~\"5..\"} [1h] ) )",
        ] {
            // Rates are events whatever `counter` says.
            assert_eq!(
                sel_of(q, false),
                Ok(plain("req_total{code!~\"5..\"}")),
                "{q}"
            );
        }
        assert_eq!(
            sel_of("sum by (route, code) (rate(req_total[5m]))", true),
            Ok((
                sel("req_total"),
                vec!["route".to_owned(), "code".to_owned()]
            ))
        );
        let why = |q: &str, c: bool| counter(q, c).expect_err("not translated").0;
        assert!(why("sum(x)", false).contains("gauge"));
        assert!(why("x", false).contains("gauge"));
        assert!(why("sum(irate(x[5m]))", true).contains("`irate(...)`"));
        assert!(why("avg(x)", true).contains("`avg(...)`"));
        assert!(why("sum(x) / 2", true).contains("is not `<selector>`"));
        assert!(why("sum without (a) (x)", true).contains("sum without"));
        let deep = format!("{}x{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(why(&deep, true).contains("parentheses"));
    }
}
