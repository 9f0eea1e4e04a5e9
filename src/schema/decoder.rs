//! The schema walker: reads a span-aware YAML tree ([`super::node`]) against a schema, collecting
//! every diagnostic instead of stopping at the first.
//!
//! Schemas read declaratively through [`MapReader`], created with the allowed keys (so unknown
//! keys, with a did-you-mean, are reported at once) and handing out typed optional or required
//! fields; the typed readers of [`Decoder`] (strings, names, numbers, durations, URLs, regular
//! expressions, lists, one-of choices) each report their own errors at the offending value. The
//! rules language ([`crate::rules::decode`]), the agent config ([`crate::config`]), secrets and
//! the receivers' sections all read through it, so every file reports problems the same way.

use std::path::Path;
use std::sync::Arc;

use crate::schema::diag::{Diagnostic, Severity, did_you_mean};
use crate::schema::node::{Kind, Node, Pos};
use crate::time::Dur;

/// Longest service, SLO, probe, scrape or tier name.
const MAX_NAME_LEN: usize = 128;

/// Collects diagnostics while walking one file. `X` is what a schema collects besides its
/// diagnostics while it walks (the rules language keeps the names it declares, for checks across
/// files); most schemas need nothing.
pub(crate) struct Decoder<'a, X = ()> {
    /// The file being read (named in every diagnostic).
    pub(crate) file: &'a Path,
    /// Its text, to map offsets inside scalars to columns.
    pub(crate) source: &'a str,
    /// Every problem found so far, in the order found.
    pub(crate) diagnostics: Vec<Diagnostic>,
    /// What the schema collects besides diagnostics.
    pub(crate) out: X,
}

impl<'a> Decoder<'a> {
    /// A decoder for `file` (whose text is `source`) that collects only diagnostics.
    pub(crate) fn new(file: &'a Path, source: &'a str) -> Decoder<'a> {
        Decoder::with(file, source, ())
    }
}

impl<'a, X> Decoder<'a, X> {
    /// A decoder for `file` (whose text is `source`) that also collects `out`.
    pub(crate) fn with(file: &'a Path, source: &'a str, out: X) -> Decoder<'a, X> {
        Decoder {
            file,
            source,
            diagnostics: Vec::new(),
            out,
        }
    }
}

/// Reads one YAML mapping against its schema.
pub(crate) struct MapReader<'n> {
    entries: &'n [(Node, Node)],
    pub(crate) pos: Pos,
    what: &'static str,
}

impl<'n> MapReader<'n> {
    /// Checks that `node` is a mapping whose keys are all in `allowed`, reporting every unknown
    /// key (with a did-you-mean) and non-string key. None when `node` is not a mapping.
    pub(crate) fn new<X>(
        d: &mut Decoder<'_, X>,
        node: &'n Node,
        what: &'static str,
        allowed: &[&str],
    ) -> Option<MapReader<'n>> {
        let Kind::Map(entries) = node.kind() else {
            d.error(
                node.pos(),
                format!(
                    "{what} must be a mapping of `key: value` lines, found {}; write `key: value` lines",
                    node.kind().type_name()
                ),
            );
            return None;
        };
        for (k, _) in entries {
            match k.as_str() {
                Some(key) if allowed.contains(&key) => {}
                Some(key) => {
                    let hint = match did_you_mean(key, allowed) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!("allowed keys are {}", backticked(allowed)),
                    };
                    d.error(k.pos(), format!("unknown key `{key}` in {what}; {hint}"));
                }
                None => d.error(
                    k.pos(),
                    format!(
                        "keys in {what} must be names, found {}; allowed keys are {}",
                        k.kind().type_name(),
                        backticked(allowed)
                    ),
                ),
            }
        }
        Some(MapReader {
            entries,
            pos: node.pos(),
            what,
        })
    }

    /// The value of `key`, if present.
    pub(crate) fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// Where `key` itself is written, if present.
    pub(crate) fn key_pos(&self, key: &str) -> Option<Pos> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(k, _)| k.pos())
    }

    /// An optional field read with `read` (which reports its own errors).
    pub(crate) fn opt<'d, X, T>(
        &self,
        d: &mut Decoder<'d, X>,
        key: &'static str,
        read: impl FnOnce(&mut Decoder<'d, X>, &'n Node, &'static str) -> Option<T>,
    ) -> Option<T> {
        self.get(key).and_then(|n| read(d, n, key))
    }

    /// A required field: reports its absence at the mapping.
    pub(crate) fn req<'d, X, T>(
        &self,
        d: &mut Decoder<'d, X>,
        key: &'static str,
        example: &str,
        read: impl FnOnce(&mut Decoder<'d, X>, &'n Node, &'static str) -> Option<T>,
    ) -> Option<T> {
        match self.get(key) {
            Some(n) => read(d, n, key),
            None => {
                d.error(
                    self.pos,
                    format!(
                        "{} is missing required key `{key}`; add `{key}: {example}`",
                        self.what
                    ),
                );
                None
            }
        }
    }

    /// Which one of `keys` is present; reports none or several.
    pub(crate) fn exactly_one<X>(
        &self,
        d: &mut Decoder<'_, X>,
        keys: &[&'static str],
    ) -> Option<&'static str> {
        let present: Vec<&'static str> = keys
            .iter()
            .copied()
            .filter(|k| self.get(k).is_some())
            .collect();
        match present.as_slice() {
            [one] => Some(one),
            [] => {
                d.error(
                    self.pos,
                    format!(
                        "{} needs exactly one of {}; add one of them",
                        self.what,
                        backticked(keys)
                    ),
                );
                None
            }
            [_, _, ..] => {
                // Point at the one written last: the earlier one is usually the intended one.
                let pos = present
                    .iter()
                    .filter_map(|k| self.key_pos(k))
                    .max()
                    .unwrap_or(self.pos);
                d.error(
                    pos,
                    format!(
                        "{} takes exactly one of {}, found {}; keep only one",
                        self.what,
                        backticked(keys),
                        backticked(&present)
                    ),
                );
                None
            }
        }
    }
}

pub(crate) fn backticked(keys: &[&str]) -> String {
    keys.iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Prints a number briefly: integers without a fraction, others with at most 6 decimals.
pub(crate) fn fmt_num(x: f64) -> String {
    if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e15 {
        return format!("{}", x as i64);
    }
    let s = format!("{x:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn valid_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_NAME_LEN
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

impl<X> Decoder<'_, X> {
    pub(crate) fn push(&mut self, pos: Pos, severity: Severity, message: String) {
        self.diagnostics.push(Diagnostic {
            file: self.file.to_path_buf(),
            pos,
            severity,
            message,
        });
    }
    pub(crate) fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.push(pos, Severity::Error, message.into());
    }
    pub(crate) fn warn(&mut self, pos: Pos, message: impl Into<String>) {
        self.push(pos, Severity::Warning, message.into());
    }
    pub(crate) fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }
    pub(crate) fn type_error(&mut self, n: &Node, key: &str, expected: &str) {
        let found = match n.scalar_text() {
            Some(t) if t.chars().count() <= 40 => format!("{} `{t}`", n.kind().type_name()),
            _ => n.kind().type_name().to_owned(),
        };
        self.error(
            n.pos(),
            format!("`{key}` must be {expected}, found {found}; write {expected}"),
        );
    }

    // ---- typed readers: each reports its own errors and returns None on failure ----

    pub(crate) fn string(&mut self, n: &Node, key: &str) -> Option<String> {
        match n.kind() {
            Kind::Str(s) => Some(s.clone()),
            _ => {
                self.type_error(n, key, "a string");
                None
            }
        }
    }

    /// Any scalar as text (label values and headers: `tier: 1` means "1").
    pub(crate) fn scalar(&mut self, n: &Node, key: &str) -> Option<String> {
        match n.scalar_text() {
            Some(t) => Some(t),
            None => {
                self.type_error(n, key, "a string");
                None
            }
        }
    }

    pub(crate) fn name(&mut self, n: &Node, key: &str) -> Option<String> {
        let s = self.string(n, key)?;
        if valid_name(&s) {
            Some(s)
        } else {
            self.error(
                n.pos(),
                format!(
                    "`{key}` `{s}` is not a valid name; use letters, digits, `-`, `_` and `.`, starting with a letter or digit, at most {MAX_NAME_LEN} characters (e.g. `checkout-api`)"
                ),
            );
            None
        }
    }

    pub(crate) fn bool(&mut self, n: &Node, key: &str) -> Option<bool> {
        match n.kind() {
            Kind::Bool(b) => Some(*b),
            _ => {
                self.type_error(n, key, "`true` or `false`");
                None
            }
        }
    }

    pub(crate) fn uint(&mut self, n: &Node, key: &str) -> Option<u64> {
        match n.kind() {
            Kind::Int(i) if *i >= 0 => Some(*i as u64),
            _ => {
                self.type_error(n, key, "a whole number such as 100");
                None
            }
        }
    }

    pub(crate) fn dur(&mut self, n: &Node, key: &str) -> Option<Dur> {
        let Some(text) = n
            .scalar_text()
            .filter(|_| !matches!(n.kind(), Kind::Bool(_)))
        else {
            self.type_error(n, key, "a duration such as 30s, 5m or 1h");
            return None;
        };
        match Dur::parse(&text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(n.pos(), format!("`{key}`: {e}"));
                None
            }
        }
    }

    /// A duration that must be positive.
    pub(crate) fn pos_dur(&mut self, n: &Node, key: &str) -> Option<Dur> {
        let d = self.dur(n, key)?;
        if d.is_zero() {
            self.error(
                n.pos(),
                format!("`{key}` must be longer than zero; write a duration such as 30s"),
            );
            return None;
        }
        Some(d)
    }

    /// A duration of whole minutes, at least one minute (windows and alert tiers).
    pub(crate) fn minutes(&mut self, n: &Node, key: &str) -> Option<Dur> {
        let d = self.dur(n, key)?;
        if d < Dur::MINUTE {
            self.error(
                n.pos(),
                format!("`{key}` {d} is shorter than one minute; write at least 1m"),
            );
            return None;
        }
        if d.millis() % Dur::MINUTE.millis() != 0 {
            let down = Dur(d.millis() / 60_000 * 60_000);
            let up = Dur(down.millis() + 60_000);
            self.error(
                n.pos(),
                format!("`{key}` {d} is not a whole number of minutes; write {down} or {up}"),
            );
            return None;
        }
        Some(d)
    }

    pub(crate) fn url(&mut self, n: &Node, key: &str) -> Option<String> {
        let s = self.string(n, key)?;
        let rest = s
            .strip_prefix("http://")
            .or_else(|| s.strip_prefix("https://"));
        match rest {
            Some(r)
                if !r.is_empty() && !r.starts_with('/') && !s.chars().any(char::is_whitespace) =>
            {
                Some(s)
            }
            _ => {
                self.error(
                    n.pos(),
                    format!(
                        "`{key}` `{s}` is not an http(s) URL; write a URL such as https://host.example/path"
                    ),
                );
                None
            }
        }
    }

    pub(crate) fn regex(&mut self, n: &Node, key: &str) -> Option<Arc<regex::Regex>> {
        let s = self.string(n, key)?;
        match regex::RegexBuilder::new(&s).size_limit(1 << 20).build() {
            Ok(r) => Some(Arc::new(r)),
            Err(e) => {
                let why = e.to_string();
                let why = why.lines().last().unwrap_or("invalid").trim().to_owned();
                self.error(
                    n.pos(),
                    format!(
                        "`{key}` is not a valid regular expression ({why}); write an RE2 regex such as '\"status\":\"ok\"'"
                    ),
                );
                None
            }
        }
    }

    pub(crate) fn list<'n>(&mut self, n: &'n Node, key: &str) -> Option<&'n [Node]> {
        match n.kind() {
            Kind::Seq(items) => Some(items),
            Kind::Null => Some(&[]),
            _ => {
                self.type_error(n, key, "a list");
                None
            }
        }
    }

    /// One word out of `choices` (as written, so messages can quote it).
    pub(crate) fn choice(
        &mut self,
        n: &Node,
        key: &str,
        choices: &[&'static str],
    ) -> Option<&'static str> {
        let s = self.scalar(n, key)?;
        if let Some(c) = choices.iter().find(|c| **c == s) {
            return Some(c);
        }
        let hint = match did_you_mean(&s, choices) {
            Some(c) => format!("did you mean `{c}`?"),
            None => format!("write one of {}", backticked(choices)),
        };
        self.error(n.pos(), format!("`{key}: {s}` is not allowed; {hint}"));
        None
    }

    /// A percentage: `99.9`, `"99.9%"`; returns the percentage (not yet range-checked).
    pub(crate) fn percent_number(&mut self, n: &Node, key: &str) -> Option<f64> {
        let p = match n.kind() {
            Kind::Int(i) => Some(*i as f64),
            Kind::Float(f) => Some(*f),
            Kind::Str(s) => {
                let t = s.trim();
                t.strip_suffix('%').unwrap_or(t).trim().parse::<f64>().ok()
            }
            _ => None,
        };
        match p {
            Some(p) if p.is_finite() => Some(p),
            _ => {
                self.type_error(n, key, "a percentage such as 99.9 or \"99.9%\"");
                None
            }
        }
    }

    /// A fraction written as a percentage in (0, 100].
    pub(crate) fn fraction(&mut self, n: &Node, key: &str) -> Option<f64> {
        let p = self.percent_number(n, key)?;
        if p > 0.0 && p <= 100.0 {
            Some(p / 100.0)
        } else {
            self.error(
                n.pos(),
                format!(
                    "`{key}` {} is outside (0, 100]; write a percentage such as 50%",
                    fmt_num(p)
                ),
            );
            None
        }
    }
}
