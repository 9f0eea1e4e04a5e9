//! The span-aware YAML tree the decoder walks: every scalar, sequence and mapping keeps the line
//! and column it was written at, so each diagnostic can point at the exact key or value.
//!
//! Parsing goes through serde-saphyr with explicit budgets sized for rules files (nesting
//! depth, node count, scalar bytes, aliases), so alias bombs, deep nesting and huge inputs are
//! refused quickly instead of exhausting memory or the stack. Duplicate keys are refused by the
//! parser itself.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// Largest rules file accepted, checked before parsing.
pub const MAX_FILE_BYTES: usize = 8 * 1024 * 1024;
/// Deepest nesting of sequences and mappings accepted (a rules file needs about 8).
pub const MAX_DEPTH: usize = 64;
/// Most YAML nodes (scalars, sequences, mappings) in one file.
pub const MAX_NODES: usize = 200_000;
/// Most bytes of scalar text in one file.
pub const MAX_SCALAR_BYTES: usize = 16 * 1024 * 1024;
/// Most `*alias` uses in one file; rules files rarely need any.
pub const MAX_ALIASES: usize = 100;
/// Most events replayed from aliases in one file: bounds what anchors can expand to.
pub const MAX_REPLAYED_EVENTS: usize = 10_000;
/// Most documents (`---`) in one file.
pub const MAX_DOCUMENTS: usize = 256;

/// A 1-based line and column in a file (column counted in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    /// Line, starting at 1 (0 when unknown).
    pub line: u32,
    /// Column, starting at 1 (0 when unknown).
    pub column: u32,
}

impl Pos {
    /// A position from a line and a column.
    pub const fn new(line: u32, column: u32) -> Pos {
        Pos { line, column }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// What a YAML node holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// `null`, `~` or an empty value.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer that fits in i64.
    Int(i64),
    /// Any other number (including integers beyond i64).
    Float(f64),
    /// A string (plain or quoted scalar).
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in file order (keys are unique: the parser refuses duplicates).
    Map(Vec<(Node, Node)>),
}

impl Kind {
    /// The YAML type name, for "expected X, found Y" messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Bool(_) => "a boolean",
            Kind::Int(_) => "an integer",
            Kind::Float(_) => "a number",
            Kind::Str(_) => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }
}

/// One YAML node with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node(Spanned<Kind>);

impl Node {
    /// What the node holds.
    pub fn kind(&self) -> &Kind {
        &self.0.value
    }
    /// Where the node is written (for an alias: where the alias is used).
    pub fn pos(&self) -> Pos {
        let loc = &self.0.referenced;
        Pos::new(clamp(loc.line()), clamp(loc.column()))
    }
    /// The text of a string scalar.
    pub fn as_str(&self) -> Option<&str> {
        match self.kind() {
            Kind::Str(s) => Some(s),
            _ => None,
        }
    }
    /// Scalar text for messages: strings as written, numbers and booleans printed.
    pub fn scalar_text(&self) -> Option<String> {
        match self.kind() {
            Kind::Str(s) => Some(s.clone()),
            Kind::Int(i) => Some(i.to_string()),
            Kind::Float(f) => Some(f.to_string()),
            Kind::Bool(b) => Some(b.to_string()),
            Kind::Null | Kind::Seq(_) | Kind::Map(_) => None,
        }
    }
    /// True when the scalar is written on one line within its quotes (or unquoted), so a byte
    /// offset inside its text maps to a column: returns the column offset of the text start
    /// relative to [`Node::pos`] (1 for quoted scalars, 0 for plain ones), or None if the scalar
    /// spans several lines or contains escapes that shift columns.
    pub fn single_line_text_start(&self, source: &str) -> Option<u32> {
        let text = self.as_str()?;
        let span = self.0.referenced.span();
        let start = usize::try_from(span.byte_offset()?).ok()?;
        let len = usize::try_from(span.byte_len()?).ok()?;
        let raw = source.get(start..start.checked_add(len)?)?;
        if raw.contains('\n') {
            return None;
        }
        if raw == text {
            return Some(0);
        }
        let quoted = (raw.starts_with('"') || raw.starts_with('\''))
            && raw.len() >= 2
            && &raw[1..raw.len() - 1] == text;
        quoted.then_some(1)
    }
}

fn clamp(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Spanned::<Kind>::deserialize(d).map(Node)
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KindVisitor)
    }
}

struct KindVisitor;

impl<'de> Visitor<'de> for KindVisitor {
    type Value = Kind;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Kind, D::Error> {
        Kind::deserialize(d)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Kind, E> {
        Ok(Kind::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Kind, E> {
        Ok(Kind::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Kind, E> {
        Ok(i64::try_from(v).map_or(Kind::Float(v as f64), Kind::Int))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Kind, E> {
        Ok(i64::try_from(v).map_or(Kind::Float(v as f64), Kind::Int))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Kind, E> {
        Ok(i64::try_from(v).map_or(Kind::Float(v as f64), Kind::Int))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Kind, E> {
        Ok(Kind::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Kind, E> {
        Ok(Kind::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Kind, E> {
        Ok(Kind::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Kind, E> {
        Ok(Kind::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        let mut items = Vec::new();
        while let Some(n) = seq.next_element::<Node>()? {
            items.push(n);
        }
        Ok(Kind::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
        let mut entries = Vec::new();
        while let Some((k, v)) = map.next_entry::<Node, Node>()? {
            entries.push((k, v));
        }
        Ok(Kind::Map(entries))
    }
}

/// Why a file could not be read as YAML.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    /// Where the problem is (1:1 when the whole file is at fault).
    pub pos: Pos,
    /// What is wrong and what to do.
    pub message: String,
}

/// The parser options: explicit budgets for rules files, duplicate keys refused.
fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: MAX_DEPTH,
            max_nodes: MAX_NODES,
            max_total_scalar_bytes: MAX_SCALAR_BYTES,
            max_aliases: MAX_ALIASES,
            max_anchors: MAX_ALIASES,
            max_documents: MAX_DOCUMENTS,
            max_events: 4 * MAX_NODES,
            max_reader_input_bytes: Some(MAX_FILE_BYTES),
        },
        alias_limits: {
            let mut l = serde_saphyr::options::AliasLimits::default();
            l.max_total_replayed_events = MAX_REPLAYED_EVENTS;
            l.max_replay_stack_depth = 16;
            l
        },
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
        with_snippet: false,
    }
}

/// Reads the raw bytes of a rules file into YAML documents (one per `---` section; empty
/// documents are skipped). Refuses files over [`MAX_FILE_BYTES`], non-UTF-8 text and any
/// budget breach, with a position when one is known.
pub fn parse_documents(bytes: &[u8]) -> Result<Vec<Node>, ParseError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(ParseError {
            pos: Pos::new(1, 1),
            message: format!(
                "file is {} bytes, over the {} MiB limit for a rules file; split it into several files in a directory",
                bytes.len(),
                MAX_FILE_BYTES / (1024 * 1024)
            ),
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let good = &bytes[..e.valid_up_to()];
        let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = good.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        // valid_up_to is on a char boundary of the valid prefix, so this slice is valid UTF-8.
        let col = String::from_utf8_lossy(&good[line_start..]).chars().count() + 1;
        ParseError {
            pos: Pos::new(clamp(line as u64), clamp(col as u64)),
            message: format!(
                "file is not UTF-8 text (invalid byte at offset {}); rules files must be UTF-8 YAML",
                e.valid_up_to()
            ),
        }
    })?;
    parse_str(text)
}

/// Parses YAML text into documents, as [`parse_documents`] does.
pub fn parse_str(text: &str) -> Result<Vec<Node>, ParseError> {
    if text.len() > MAX_FILE_BYTES {
        return parse_documents(text.as_bytes());
    }
    serde_saphyr::from_multiple_with_options::<Node>(text, options()).map_err(|e| {
        let pos = e
            .location()
            .map(|l| Pos::new(clamp(l.line()), clamp(l.column())))
            .filter(|p| p.line > 0)
            .unwrap_or(Pos::new(1, 1));
        ParseError {
            pos,
            message: yaml_message(&e),
        }
    })
}

/// The parser's message without its own location suffix, with advice added for budget
/// breaches (which only hostile or generated files hit).
fn yaml_message(e: &serde_saphyr::Error) -> String {
    let raw = e.to_string();
    let first = raw.lines().next().unwrap_or("invalid YAML").trim();
    // The parser appends its own location; ours is printed in front of the message instead.
    let first = first.split(" at line ").next().unwrap_or(first).trim();
    let lower = first.to_ascii_lowercase();
    if let Some(rest) = first.strip_prefix("duplicate mapping key: ") {
        let key = rest.split(", set ").next().unwrap_or(rest);
        format!(
            "duplicate key `{key}`; each key may appear once in a mapping: remove or merge the repeated one"
        )
    } else if ["budget", "alias", "depth", "recursion", "limit"]
        .iter()
        .any(|w| lower.contains(w))
    {
        format!(
            "YAML refused ({first}); a rules file needs at most {MAX_ALIASES} aliases, nesting depth {MAX_DEPTH} and {MAX_NODES} nodes: write the values out plainly"
        )
    } else {
        format!("invalid YAML: {first}; fix the syntax at this position")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_and_kinds() {
        let docs = parse_str("a: 1\nb: [x, 'y', 2.5, true, ~]\n---\nc: {d: e}\n").unwrap();
        assert_eq!(docs.len(), 2);
        let Kind::Map(m) = docs[0].kind() else {
            panic!("map")
        };
        assert_eq!(m[0].0.pos(), Pos::new(1, 1));
        assert_eq!(m[0].1.kind(), &Kind::Int(1));
        assert_eq!(m[0].1.pos(), Pos::new(1, 4));
        let Kind::Seq(s) = m[1].1.kind() else {
            panic!("seq")
        };
        assert_eq!(s[1].kind(), &Kind::Str("y".into()));
        assert_eq!(s[1].pos(), Pos::new(2, 8));
        assert_eq!(s[2].kind(), &Kind::Float(2.5));
        assert_eq!(s[3].kind(), &Kind::Bool(true));
        assert_eq!(s[4].kind(), &Kind::Null);
    }

    #[test]
    fn refuses_hostile_input() {
        let e = parse_str("a: 1\na: 2\n").unwrap_err();
        eprintln!("{e:?}");
        assert_eq!(e.pos.line, 2);
        let deep = "[".repeat(100_000);
        let e = parse_str(&deep).unwrap_err();
        eprintln!("{e:?}");
        let bomb = "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n";
        let e = parse_str(bomb).unwrap_err();
        eprintln!("{e:?}");
        let e = parse_documents(b"a: 1\nb: \xff\xfe\n").unwrap_err();
        assert_eq!(e.pos, Pos::new(2, 4));
        let e = parse_str("a: [1, 2\n").unwrap_err();
        eprintln!("{e:?}");
        let e = parse_str("a: 1\n  b: 2\n").unwrap_err();
        eprintln!("{e:?}");
        assert!(parse_str("").unwrap().is_empty());
        assert!(parse_str("# only a comment\n").unwrap().is_empty());
    }

    #[test]
    fn text_start() {
        let src = "a: \"x{y}\"\nb: plain\nc: 'q'\n";
        let docs = parse_str(src).unwrap();
        let Kind::Map(m) = docs[0].kind() else {
            panic!("map")
        };
        assert_eq!(m[0].1.single_line_text_start(src), Some(1));
        assert_eq!(m[1].1.single_line_text_start(src), Some(0));
        assert_eq!(m[2].1.single_line_text_start(src), Some(1));
    }
}
