//! Prometheus series selectors (`metric{label="v",code!~"5.."}`): parsing and matching.
//!
//! Selectors only, not PromQL: burnwatch computes rates and ratios itself, so functions, range
//! vectors, offsets and operators are refused with advice. Semantics follow Prometheus: regex
//! matchers are fully anchored, a missing label matches as the empty string, and a selector
//! without a metric name needs at least one matcher that does not match the empty string.
//! Parsing never panics; every error carries the byte offset of the problem.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use regex::Regex;

/// The selector example every piece of advice points to.
const EXAMPLE: &str = "http_requests_total{job=\"api\"}";
/// Largest compiled regex accepted (bytes of program), so a selector cannot blow up memory.
pub(crate) const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// The compiled regex of `anchored`, shared with every other selector matcher that uses the same
/// pattern. A compiled regex with its matching caches takes about 14 KB, and rule sets repeat a
/// few patterns (`code=~"5.."`) across thousands of SLOs: shared, 10,000 such SLOs hold one
/// regex instead of 140 MB of copies. The cache holds weak references, so a pattern no rule uses
/// any more is freed with its last selector; dead entries are dropped whenever the map has
/// doubled since the last sweep, so it stays within twice the patterns in use.
fn shared_regex(anchored: &str) -> Result<Arc<Regex>, regex::Error> {
    // The map is only ever left whole (each step is one insert or retain), so a poisoned lock
    // still guards a consistent map.
    let mut guard = REGEX_CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    let cache = guard.get_or_insert_with(|| RegexCache {
        map: HashMap::new(),
        sweep_at: SWEEP_MIN,
    });
    if let Some(re) = cache.map.get(anchored).and_then(Weak::upgrade) {
        return Ok(re);
    }
    let re = Arc::new(
        regex::RegexBuilder::new(anchored)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()?,
    );
    if cache.map.len() >= cache.sweep_at {
        cache.map.retain(|_, w| w.strong_count() > 0);
        cache.sweep_at = (2 * cache.map.len()).max(SWEEP_MIN);
    }
    cache.map.insert(anchored.to_owned(), Arc::downgrade(&re));
    Ok(re)
}

/// The regexes [`shared_regex`] hands out, by anchored pattern.
struct RegexCache {
    map: HashMap<String, Weak<Regex>>,
    /// Sweep dead entries when the map reaches this size.
    sweep_at: usize,
}

/// The process's [`RegexCache`], created at first use.
static REGEX_CACHE: Mutex<Option<RegexCache>> = Mutex::new(None);

/// Size of the shared-regex map below which dead entries are not swept.
const SWEEP_MIN: usize = 64;

/// How a matcher compares a label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MatchOp {
    /// `=`: equal.
    Eq,
    /// `!=`: not equal.
    Ne,
    /// `=~`: matches the fully anchored regex.
    Re,
    /// `!~`: does not match the fully anchored regex.
    NotRe,
}

impl MatchOp {
    /// The operator as written in PromQL (and in Alertmanager matchers, which share the type).
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Eq => "=",
            MatchOp::Ne => "!=",
            MatchOp::Re => "=~",
            MatchOp::NotRe => "!~",
        }
    }
}

/// One `label op "value"` condition.
#[derive(Debug, Clone)]
pub struct Matcher {
    label: String,
    op: MatchOp,
    value: String,
    /// `^(?:value)$`, for the two regex operators.
    regex: Option<Arc<Regex>>,
}

impl Matcher {
    /// The label name (`__name__` means the metric name).
    pub fn label(&self) -> &str {
        &self.label
    }
    /// The operator.
    pub fn op(&self) -> MatchOp {
        self.op
    }
    /// The value (for regex operators, the regex as written, unanchored).
    pub fn value(&self) -> &str {
        &self.value
    }
    /// Whether a label value (empty when the label is absent) satisfies the matcher.
    pub fn matches(&self, v: &str) -> bool {
        match (self.op, &self.regex) {
            (MatchOp::Eq, _) => v == self.value,
            (MatchOp::Ne, _) => v != self.value,
            (MatchOp::Re, Some(re)) => re.is_match(v),
            (MatchOp::NotRe, Some(re)) => !re.is_match(v),
            // Regex operators always carry a compiled regex (built in `parse`); fail closed.
            (MatchOp::Re | MatchOp::NotRe, None) => false,
        }
    }
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.label == other.label && self.op == other.op && self.value == other.value
    }
}
impl Eq for Matcher {}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}\"", self.label, self.op.as_str())?;
        for c in self.value.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\t' => f.write_str("\\t")?,
                c => write!(f, "{c}")?,
            }
        }
        f.write_str("\"")
    }
}

/// A parsed series selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    metric: Option<String>,
    matchers: Vec<Matcher>,
}

/// Why a selector was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SelectorError {
    /// Byte offset of the problem within the selector text.
    pub offset: usize,
    /// What is wrong; what to write instead.
    pub message: String,
}

fn err<T>(offset: usize, message: impl Into<String>) -> Result<T, SelectorError> {
    Err(SelectorError {
        offset,
        message: message.into(),
    })
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b':'
}
fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b':'
}
fn is_label_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}
fn is_label_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// A byte cursor over the selector text; only ever advanced over ASCII bytes or whole chars,
/// so every offset it reports is a char boundary.
struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }
    fn peek_char(&self) -> Option<char> {
        self.text.get(self.pos..).and_then(|s| s.chars().next())
    }
    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }
    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        &self.text[start..self.pos]
    }
    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    /// Describes what is at the cursor, for "found ..." in messages.
    fn found(&self) -> String {
        match self.peek_char() {
            None => "the end of the selector".to_owned(),
            Some(c) => format!("`{c}`"),
        }
    }
}

impl Selector {
    /// Parses a selector such as `http_requests_total{job="api",code!~"5.."}`.
    pub fn parse(text: &str) -> Result<Selector, SelectorError> {
        let mut c = Cursor { text, pos: 0 };
        c.skip_ws();
        if c.peek().is_none() {
            return err(
                0,
                format!("empty selector; write a selector such as {EXAMPLE}"),
            );
        }
        let name_start = c.pos;
        let mut metric = None;
        if c.peek().is_some_and(is_name_start) {
            let name = c.take_while(is_name_char);
            c.skip_ws();
            match c.peek() {
                Some(b'(') => {
                    return err(
                        name_start,
                        format!(
                            "PromQL functions are not allowed here (`{name}(`); burnwatch computes rates and ratios itself: write a selector such as {EXAMPLE}"
                        ),
                    );
                }
                Some(b'[') => {
                    return err(
                        c.pos,
                        format!(
                            "range selectors like `[5m]` are not allowed here; burnwatch computes rates itself: write only the selector, such as {EXAMPLE}"
                        ),
                    );
                }
                _ => {}
            }
            metric = Some(name.to_owned());
        } else if c.peek() != Some(b'{') {
            return err(
                c.pos,
                format!(
                    "expected a metric name or `{{`, found {}; write a selector such as {EXAMPLE}",
                    c.found()
                ),
            );
        }
        let mut matchers = Vec::new();
        let brace = c.pos;
        if c.eat(b'{') {
            parse_matchers(&mut c, &mut matchers)?;
        }
        c.skip_ws();
        if c.peek().is_some() {
            let what = match c.peek() {
                Some(b'[') => "range selectors like `[5m]` are not allowed here".to_owned(),
                Some(b'(') => "PromQL functions are not allowed here".to_owned(),
                _ => format!(
                    "unexpected {} after the selector: PromQL operators, offsets and functions are not allowed here",
                    c.found()
                ),
            };
            return err(
                c.pos,
                format!("{what}; write only a selector such as {EXAMPLE}"),
            );
        }
        let names = matchers.iter().filter(|m| m.label == "__name__").count();
        if names > 0 && metric.is_some() || names > 1 {
            return err(
                name_start,
                "the metric name is given twice (before `{` and as `__name__`); keep one of them",
            );
        }
        if metric.is_none() && !matchers.iter().any(|m| !m.matches("")) {
            return err(
                brace,
                format!(
                    "a selector without a metric name needs at least one matcher that does not match the empty string; write for example {EXAMPLE} or {{job=\"api\"}}"
                ),
            );
        }
        Ok(Selector { metric, matchers })
    }

    /// The metric name written before the braces (or as an `__name__="x"` matcher), if any.
    pub fn metric(&self) -> Option<&str> {
        self.metric.as_deref().or_else(|| {
            self.matchers
                .iter()
                .find(|m| m.label == "__name__" && m.op == MatchOp::Eq)
                .map(|m| m.value.as_str())
        })
    }

    /// The label matchers, in the order written.
    pub fn matchers(&self) -> &[Matcher] {
        &self.matchers
    }

    /// Whether a series with this metric name and labels is selected. Absent labels match as
    /// the empty string, as in Prometheus.
    pub fn matches(&self, metric_name: &str, labels: &[(&str, &str)]) -> bool {
        if self.metric.as_deref().is_some_and(|m| m != metric_name) {
            return false;
        }
        self.matchers.iter().all(|m| {
            let v = if m.label == "__name__" {
                metric_name
            } else {
                labels
                    .iter()
                    .find(|(k, _)| *k == m.label)
                    .map_or("", |(_, v)| v)
            };
            m.matches(v)
        })
    }
}

fn parse_matchers(c: &mut Cursor<'_>, out: &mut Vec<Matcher>) -> Result<(), SelectorError> {
    loop {
        c.skip_ws();
        if c.eat(b'}') {
            return Ok(());
        }
        if !c.peek().is_some_and(is_label_start) {
            return err(
                c.pos,
                format!(
                    "expected a label name or `}}`, found {}; label names look like `job` or `status_code`",
                    c.found()
                ),
            );
        }
        let label = c.take_while(is_label_char).to_owned();
        c.skip_ws();
        let op_start = c.pos;
        let op = match (c.peek(), c.text.as_bytes().get(c.pos + 1).copied()) {
            (Some(b'='), Some(b'~')) => MatchOp::Re,
            (Some(b'='), Some(b'=')) => {
                return err(
                    op_start,
                    format!("`==` is not a matcher; write `{label}=\"value\"`"),
                );
            }
            (Some(b'='), _) => MatchOp::Eq,
            (Some(b'!'), Some(b'=')) => MatchOp::Ne,
            (Some(b'!'), Some(b'~')) => MatchOp::NotRe,
            _ => {
                return err(
                    op_start,
                    format!(
                        "expected one of `=`, `!=`, `=~`, `!~` after label `{label}`, found {}",
                        c.found()
                    ),
                );
            }
        };
        c.pos += op.as_str().len();
        c.skip_ws();
        let value_start = c.pos;
        let value = parse_string(c)?;
        let regex = match op {
            MatchOp::Re | MatchOp::NotRe => {
                let anchored = format!("^(?:{value})$");
                match shared_regex(&anchored) {
                    Ok(re) => Some(re),
                    Err(e) => {
                        let why = e.to_string();
                        let why = why.lines().last().unwrap_or("invalid regex").trim();
                        return err(
                            value_start,
                            format!(
                                "invalid regex for `{label}`: {why}; write an RE2 regular expression such as \"5..\""
                            ),
                        );
                    }
                }
            }
            MatchOp::Eq | MatchOp::Ne => None,
        };
        out.push(Matcher {
            label,
            op,
            value,
            regex,
        });
        c.skip_ws();
        if c.eat(b',') {
            continue;
        }
        if c.eat(b'}') {
            return Ok(());
        }
        return err(
            c.pos,
            format!(
                "expected `,` or `}}` after a matcher, found {}; separate matchers with commas",
                c.found()
            ),
        );
    }
}

/// Reads a quoted label value: double or single quotes with escapes `\" \' \\ \n \t`, or
/// backticks with no escapes (as in PromQL).
fn parse_string(c: &mut Cursor<'_>) -> Result<String, SelectorError> {
    let start = c.pos;
    let quote = match c.peek() {
        Some(q @ (b'"' | b'\'' | b'`')) => q as char,
        _ => {
            return err(
                start,
                format!(
                    "expected a quoted label value, found {}; write the value in double quotes, e.g. job=\"api\"",
                    c.found()
                ),
            );
        }
    };
    c.pos += 1;
    let mut out = String::new();
    loop {
        let Some(ch) = c.peek_char() else {
            return err(
                start,
                format!("label value is missing its closing {quote}; close it with {quote}"),
            );
        };
        let at = c.pos;
        c.pos += ch.len_utf8();
        if ch == quote {
            return Ok(out);
        }
        if ch == '\\' && quote != '`' {
            let Some(e) = c.peek_char() else {
                return err(
                    at,
                    format!("label value is missing its closing {quote}; close it with {quote}"),
                );
            };
            c.pos += e.len_utf8();
            match e {
                '"' | '\'' | '\\' => out.push(e),
                'n' => out.push('\n'),
                't' => out.push('\t'),
                other => {
                    return err(
                        at,
                        format!(
                            "unknown escape `\\{other}` in a label value; escapes are \\\" \\\\ \\n \\t (for a regex backslash write `\\\\{other}` or use backticks)"
                        ),
                    );
                }
            }
        } else if ch == '\n' && quote != '`' {
            return err(
                at,
                "line break inside a label value; write it as \\n or use backticks",
            );
        } else {
            out.push(ch);
        }
    }
}

impl fmt::Display for Selector {
    /// The canonical form: metric name, then matchers sorted by label, operator and value, all
    /// values double-quoted; braces only when there are matchers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(m) = &self.metric {
            f.write_str(m)?;
        }
        if self.matchers.is_empty() {
            return Ok(());
        }
        let mut sorted: Vec<&Matcher> = self.matchers.iter().collect();
        sorted.sort_by(|a, b| (&a.label, a.op, &a.value).cmp(&(&b.label, b.op, &b.value)));
        f.write_str("{")?;
        for (i, m) in sorted.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{m}")?;
        }
        f.write_str("}")
    }
}

impl std::str::FromStr for Selector {
    type Err = SelectorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Selector::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn equal_regexes_are_compiled_once_and_freed_with_their_last_selector() {
        // A pattern no other test uses, so parallel tests cannot hold it.
        let text = r#"x{code=~"5..|shared-regex-test", path!~"shared-regex-test"}"#;
        let regex = |s: &Selector, i: usize| s.matchers()[i].regex.clone().expect("regex op");
        let a = Selector::parse(text).expect("valid");
        let b = Selector::parse(r#"y{code=~"5..|shared-regex-test"}"#).expect("valid");
        assert!(Arc::ptr_eq(&regex(&a, 0), &regex(&b, 0)));
        assert!(!Arc::ptr_eq(&regex(&a, 0), &regex(&a, 1)));
        // Shared or not, matching is the same.
        assert!(b.matches("y", &[("code", "503")]) && !b.matches("y", &[("code", "5030")]));
        let weak = Arc::downgrade(&regex(&a, 0));
        drop((a, b));
        assert_eq!(weak.strong_count(), 0, "freed with its last selector");
        let c = Selector::parse(text).expect("valid");
        assert!(c.matches("x", &[("code", "500"), ("path", "/")]));
        // Dead entries are swept: many patterns come and go, the map stays bounded.
        for i in 0..1000 {
            drop(Selector::parse(&format!(r#"z{{a=~"sweep-{i}"}}"#)).expect("valid"));
        }
        let len = REGEX_CACHE
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map_or(0, |c| c.map.len());
        assert!(len < 500, "{len} entries after 1,000 dead patterns");
    }

    #[test]
    fn parses_all_operators_and_quotes() {
        let s = Selector::parse(
            r#"http_requests_total{job="api", code!~'5..', path=~`/v1/.*`, method!="GET",}"#,
        )
        .unwrap();
        assert_eq!(s.metric(), Some("http_requests_total"));
        assert_eq!(s.matchers().len(), 4);
        assert_eq!(s.matchers()[2].value(), "/v1/.*");
        assert_eq!(s.matchers()[1].op(), MatchOp::NotRe);
        assert_eq!(
            s.to_string(),
            r#"http_requests_total{code!~"5..",job="api",method!="GET",path=~"/v1/.*"}"#
        );
        let l = [
            ("job", "api"),
            ("code", "200"),
            ("path", "/v1/x"),
            ("method", "POST"),
        ];
        assert!(s.matches("http_requests_total", &l));
        let l5 = [
            ("job", "api"),
            ("code", "503"),
            ("path", "/v1/x"),
            ("method", "POST"),
        ];
        assert!(!s.matches("http_requests_total", &l5));
        assert!(!s.matches("other", &l));
    }

    #[test]
    fn regex_is_anchored_and_missing_label_is_empty() {
        let s = Selector::parse(r#"x{code=~"5.."}"#).unwrap();
        assert!(s.matches("x", &[("code", "500")]));
        assert!(!s.matches("x", &[("code", "5000")]));
        assert!(!s.matches("x", &[("code", "1500")]));
        let s = Selector::parse(r#"x{env!="prod"}"#).unwrap();
        assert!(s.matches("x", &[]));
        let s = Selector::parse(r#"x{env=""}"#).unwrap();
        assert!(s.matches("x", &[("job", "a")]));
        assert!(!s.matches("x", &[("env", "a")]));
    }

    #[test]
    fn escapes_round_trip() {
        let s = Selector::parse(r#"x{a="q\"b\\c\nd\te"}"#).unwrap();
        assert_eq!(s.matchers()[0].value(), "q\"b\\c\nd\te");
        let again = Selector::parse(&s.to_string()).unwrap();
        assert_eq!(again, s);
    }

    #[test]
    fn name_optional_with_a_non_empty_matcher() {
        let s = Selector::parse(r#"{job="api"}"#).unwrap();
        assert_eq!(s.metric(), None);
        assert!(s.matches("anything", &[("job", "api")]));
        let s = Selector::parse(r#"{__name__="up"}"#).unwrap();
        assert_eq!(s.metric(), Some("up"));
        assert!(s.matches("up", &[]));
        assert!(!s.matches("down", &[]));
        assert!(Selector::parse("{}").is_err());
        assert!(Selector::parse(r#"{job=~".*"}"#).is_err());
        assert!(Selector::parse("up").is_ok());
        assert_eq!(Selector::parse("up{}").unwrap().to_string(), "up");
    }

    #[test]
    fn refuses_promql_with_offsets_and_advice() {
        let e = Selector::parse("rate(x[5m])").unwrap_err();
        assert_eq!(e.offset, 0);
        assert!(
            e.message
                .starts_with("PromQL functions are not allowed here")
        );
        assert!(
            e.message
                .contains(r#"write a selector such as http_requests_total{job="api"}"#)
        );
        let e = Selector::parse("x[5m]").unwrap_err();
        assert_eq!(e.offset, 1);
        assert!(e.message.contains("range selectors"));
        let e = Selector::parse(r#"x{a="b"} / y"#).unwrap_err();
        assert_eq!(e.offset, 9);
        let e = Selector::parse(r#"x{a="b" b="c"}"#).unwrap_err();
        assert_eq!(e.offset, 8);
        let e = Selector::parse(r#"x{a=="b"}"#).unwrap_err();
        assert_eq!(e.offset, 3);
        let e = Selector::parse(r#"x{a=b}"#).unwrap_err();
        assert_eq!(e.offset, 4);
        let e = Selector::parse(r#"x{a="b}"#).unwrap_err();
        assert_eq!(e.offset, 4);
        let e = Selector::parse(r#"x{a=~"("}"#).unwrap_err();
        assert_eq!(e.offset, 5);
        assert!(e.message.starts_with("invalid regex for `a`"));
        let e = Selector::parse(r#"x{a="\d"}"#).unwrap_err();
        assert_eq!(e.offset, 5);
        let e = Selector::parse(r#"x{__name__="y"}"#).unwrap_err();
        assert_eq!(e.offset, 0);
        let e = Selector::parse("  ").unwrap_err();
        assert_eq!(e.offset, 0);
        let e = Selector::parse("9x").unwrap_err();
        assert_eq!(e.offset, 0);
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC*") {
            let _ = Selector::parse(&s);
        }

        #[test]
        fn never_panics_on_selector_like(s in "[a-z_{}=!~\"'`,\\\\ ()\\[\\]\\.\\*5é]{0,40}") {
            if let Ok(sel) = Selector::parse(&s) {
                let again = Selector::parse(&sel.to_string()).expect("canonical form reparses");
                prop_assert_eq!(again.to_string(), sel.to_string());
            } else if let Err(e) = Selector::parse(&s) {
                prop_assert!(e.offset <= s.len());
                prop_assert!(s.is_char_boundary(e.offset));
            }
        }
    }
}
