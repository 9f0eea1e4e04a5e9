//! Label matchers (`name="v"`, `name!="v"`, `name=~"re"`, `name!~"re"`), with Alertmanager's
//! syntax and semantics: regexes are anchored at both ends, a missing label matches as the empty
//! string, and a list of matchers is ANDed. Used by routes, inhibition rules and silences.
//!
//! The display form is Alertmanager's (`name="value"`, value quoted Go-style; a list as
//! `{a="x",b=~"y"}`), because route keys and group keys are built from it and consumers of the
//! webhook payload compare `groupKey` strings.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::rules::model::Labels;
use crate::rules::selector::REGEX_SIZE_LIMIT;

/// A matcher's comparison: the same four operators, written the same way, as PromQL selectors.
pub use crate::rules::selector::MatchOp;

/// Why a matcher (or a list of them) could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad matcher {text:?}: {message}")]
pub struct MatcherError {
    /// The text that was parsed.
    pub text: String,
    /// What is wrong and what to write instead.
    pub message: String,
}

/// One label matcher.
#[derive(Clone)]
pub struct Matcher {
    /// Label name.
    pub name: String,
    /// Comparison.
    pub op: MatchOp,
    /// Value or regex source, as written (unanchored).
    pub value: String,
    /// The compiled, anchored regex for `=~` and `!~`.
    re: Option<Arc<regex::Regex>>,
}

impl Matcher {
    /// A matcher; compiles (anchored) regexes.
    pub fn new(
        name: impl Into<String>,
        op: MatchOp,
        value: impl Into<String>,
    ) -> Result<Matcher, MatcherError> {
        let name = name.into();
        let value = value.into();
        if !is_label_name(&name) {
            return Err(MatcherError {
                text: name.clone(),
                message: format!("label name {name:?} must match [a-zA-Z_][a-zA-Z0-9_]*"),
            });
        }
        let re = match op {
            MatchOp::Re | MatchOp::NotRe => Some(Arc::new(
                regex::RegexBuilder::new(&format!("^(?:{value})$"))
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| MatcherError {
                        text: value.clone(),
                        message: format!("invalid regex: {e}"),
                    })?,
            )),
            MatchOp::Eq | MatchOp::Ne => None,
        };
        Ok(Matcher {
            name,
            op,
            value,
            re,
        })
    }

    /// Whether a label value satisfies the matcher (pass `""` for a missing label).
    pub fn matches_value(&self, v: &str) -> bool {
        match self.op {
            MatchOp::Eq => v == self.value,
            MatchOp::Ne => v != self.value,
            MatchOp::Re => self.re.as_ref().is_some_and(|re| re.is_match(v)),
            MatchOp::NotRe => !self.re.as_ref().is_some_and(|re| re.is_match(v)),
        }
    }

    /// Whether a label set satisfies the matcher; a missing label is the empty string.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.matches_value(labels.get(&self.name).map_or("", String::as_str))
    }

    /// Parses one matcher: `name op value`, the value quoted (`"..."`, Go escapes) or bare.
    pub fn parse(text: &str) -> Result<Matcher, MatcherError> {
        let mut p = Parser::new(text);
        let m = p.matcher()?;
        p.skip_ws();
        if !p.at_end() {
            return Err(p.error("unexpected text after the matcher"));
        }
        Ok(m)
    }
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Matcher) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Eq for Matcher {}

impl PartialOrd for Matcher {
    fn partial_cmp(&self, other: &Matcher) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Matcher {
    /// Alertmanager's order (`labels.Matchers.Less`): by name, then operator, then value.
    fn cmp(&self, other: &Matcher) -> std::cmp::Ordering {
        (&self.name, self.op, &self.value).cmp(&(&other.name, other.op, &other.value))
    }
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Matcher({self})")
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut v = String::with_capacity(self.value.len() + 2);
        go_quote_into(&mut v, &self.value);
        write!(f, "{}{}{}", self.name, self.op.as_str(), v)
    }
}

impl FromStr for Matcher {
    type Err = MatcherError;
    fn from_str(s: &str) -> Result<Matcher, MatcherError> {
        Matcher::parse(s)
    }
}

impl serde::Serialize for Matcher {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Matcher {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Matcher, D::Error> {
        let text = String::deserialize(d)?;
        Matcher::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A list of matchers, all of which must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Matchers(pub Vec<Matcher>);

impl Matchers {
    /// Whether every matcher holds (an empty list matches everything).
    pub fn matches(&self, labels: &Labels) -> bool {
        self.0.iter().all(|m| m.matches(labels))
    }

    /// Parses `{a="x", b=~"y|z"}` or `a="x", b=~"y|z"` (braces optional, one trailing comma
    /// allowed, `{}` is the empty list).
    pub fn parse(text: &str) -> Result<Matchers, MatcherError> {
        let mut p = Parser::new(text);
        p.skip_ws();
        let braced = p.eat('{');
        let mut out = Vec::new();
        loop {
            p.skip_ws();
            if p.at_end() || (braced && p.peek() == Some('}')) {
                break;
            }
            out.push(p.matcher()?);
            p.skip_ws();
            if !p.eat(',') {
                break;
            }
        }
        p.skip_ws();
        if braced && !p.eat('}') {
            return Err(p.error("expected `,` or the closing `}`"));
        }
        p.skip_ws();
        if !p.at_end() {
            return Err(p.error("expected `,` between matchers"));
        }
        Ok(Matchers(out))
    }

    /// The matchers sorted in Alertmanager's order (route keys use the sorted form).
    pub fn sorted(mut self) -> Matchers {
        self.0.sort();
        self
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Matchers {
    /// `{a="x",b=~"y"}`: Alertmanager's `labels.Matchers.String()` (no space after commas).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, m) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{m}")?;
        }
        f.write_str("}")
    }
}

impl FromStr for Matchers {
    type Err = MatcherError;
    fn from_str(s: &str) -> Result<Matchers, MatcherError> {
        Matchers::parse(s)
    }
}

/// Whether `name` is a classic Prometheus label name.
pub fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Appends `s` quoted as Go's `%q` does for printable text: `"`, `\` escaped, control
/// characters as `\n`, `\t`, `\r` or `\x..`/`\u....`.
pub fn go_quote_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Parser<'a> {
        Parser { text, pos: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek().filter(|c| c.is_whitespace()) {
            self.pos += c.len_utf8();
        }
    }

    fn error(&self, message: &str) -> MatcherError {
        MatcherError {
            text: self.text.to_string(),
            message: format!("{message} at offset {}", self.pos),
        }
    }

    fn matcher(&mut self) -> Result<Matcher, MatcherError> {
        self.skip_ws();
        let start = self.pos;
        while let Some(c) = self
            .peek()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        {
            self.pos += c.len_utf8();
        }
        let name = &self.text[start..self.pos];
        if name.is_empty() {
            return Err(self.error("expected a label name"));
        }
        self.skip_ws();
        let op = if self.rest().starts_with("=~") {
            MatchOp::Re
        } else if self.rest().starts_with("!~") {
            MatchOp::NotRe
        } else if self.rest().starts_with("!=") {
            MatchOp::Ne
        } else if self.rest().starts_with('=') {
            MatchOp::Eq
        } else {
            return Err(self.error("expected one of =, !=, =~, !~ after the label name"));
        };
        self.pos += op.as_str().len();
        self.skip_ws();
        let value = if self.eat('"') {
            self.quoted()?
        } else {
            let start = self.pos;
            while let Some(c) = self.peek().filter(|c| *c != ',' && *c != '}') {
                if c == '"' {
                    return Err(self.error("a value with `\"` must be quoted as a whole"));
                }
                self.pos += c.len_utf8();
            }
            self.text[start..self.pos].trim_end().to_string()
        };
        Matcher::new(name, op, value).map_err(|e| MatcherError {
            text: self.text.to_string(),
            message: e.message,
        })
    }

    /// The rest of a double-quoted value, after the opening quote.
    fn quoted(&mut self) -> Result<String, MatcherError> {
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.error("unterminated quoted value"));
            };
            self.pos += c.len_utf8();
            match c {
                '"' => return Ok(out),
                '\\' => {
                    let Some(e) = self.peek() else {
                        return Err(self.error("unterminated escape"));
                    };
                    self.pos += e.len_utf8();
                    let unescaped = match e {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        '"' => '"',
                        '\\' => '\\',
                        // Regex escapes such as `\.` are kept as written, as Alertmanager does.
                        other => {
                            out.push('\\');
                            other
                        }
                    };
                    out.push(unescaped);
                }
                c => out.push(c),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn operators_and_missing_labels() {
        let l = labels(&[("severity", "page"), ("service", "checkout")]);
        let cases = [
            ("severity=page", true),
            ("severity=\"ticket\"", false),
            ("severity!=ticket", true),
            ("severity=~\"page|ticket\"", true),
            ("severity=~pag", false), // anchored: a prefix is not a match
            ("severity!~\"tick.*\"", true),
            ("zone=\"\"", true), // missing = empty
            ("zone!=\"\"", false),
            ("zone=~\".*\"", true),
            ("zone=~\".+\"", false),
        ];
        for (text, want) in cases {
            let m = Matcher::parse(text).unwrap();
            assert_eq!(m.matches(&l), want, "{text}");
        }
    }

    #[test]
    fn lists_with_and_without_braces() {
        let l = labels(&[("a", "x"), ("b", "z")]);
        for text in [
            r#"{a="x", b=~"y|z"}"#,
            r#"a="x", b=~"y|z""#,
            r#"{a="x",b=~"y|z",}"#,
            "a=x,b=~y|z",
        ] {
            let ms = Matchers::parse(text).unwrap();
            assert_eq!(ms.0.len(), 2, "{text}");
            assert!(ms.matches(&l), "{text}");
            assert_eq!(ms.to_string(), r#"{a="x",b=~"y|z"}"#);
        }
        assert!(Matchers::parse("{}").unwrap().is_empty());
        assert!(Matchers::parse("").unwrap().matches(&l));
    }

    #[test]
    fn bad_matchers_say_what_is_wrong() {
        for (text, needle) in [
            ("=x", "label name"),
            ("a~x", "expected one of"),
            ("a=~\"(\"", "invalid regex"),
            ("a=\"x", "unterminated"),
            ("{a=x", "closing"),
            ("a=\"x\" b=\"y\"", "unexpected text"),
        ] {
            let r = if text.starts_with('{') {
                Matchers::parse(text).map(|_| ())
            } else {
                Matcher::parse(text).map(|_| ())
            };
            let e = r.expect_err(text);
            assert!(e.to_string().contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn display_round_trips_and_quotes() {
        let m = Matcher::new("alertname", MatchOp::Eq, "say \"hi\"\\\n").unwrap();
        assert_eq!(m.to_string(), r#"alertname="say \"hi\"\\\n""#);
        assert_eq!(Matcher::parse(&m.to_string()).unwrap(), m);
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<Matcher>(&json).unwrap(), m);
    }

    #[test]
    fn sort_order_is_name_op_value() {
        let ms = Matchers::parse(r#"b="1", a=~"x", a="y", a="x""#)
            .unwrap()
            .sorted();
        assert_eq!(ms.to_string(), r#"{a="x",a="y",a=~"x",b="1"}"#);
    }

    #[test]
    fn regex_escapes_survive_quoting() {
        let m = Matcher::parse(r#"instance=~"host\.example:\d+""#).unwrap();
        assert!(m.matches_value("host.example:9100"));
        assert!(!m.matches_value("hostXexample:9100"));
    }
}
