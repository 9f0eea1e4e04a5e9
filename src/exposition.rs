//! Prometheus exposition parsing: text format 0.0.4 and OpenMetrics 1.0, as scraped by the agent.
//!
//! Owns turning a scraped body into samples and family metadata. It does not fetch anything,
//! keep state between scrapes, group samples into histograms, or decide what to do with a body
//! that fails: pure logic, no I/O, one forward pass, linear time, and no panics on any input
//! (fuzzed in `fuzz/`, and every prefix of every fixture runs in `tests/model/exposition.rs`).
//!
//! # Behaviour, and where it follows Prometheus 2.42
//! Accepted inputs parse to what Prometheus 2.42 stores (checked against a real Prometheus in
//! `tests/peers/prometheus_parity.rs`). Differences are deliberate and all of them reject:
//! - A label value escape other than `\\`, `\"`, `\n` is an error (Prometheus keeps it verbatim;
//!   both specifications allow only those three).
//! - Text format: labels must be separated by commas (Prometheus accepts `{a="1" b="2"}`).
//! - Text format: whitespace is required between the labels' `}` and the value.
//!
//! Shared by both formats, as in Prometheus: metric names `[a-zA-Z_:][a-zA-Z0-9_:]*`, label names
//! `[a-zA-Z_][a-zA-Z0-9_]*`; label values must be UTF-8; a repeated label name (or a `__name__`
//! label) is an error; values follow Go's `strconv.ParseFloat` minus hex and `_` (so `NaN`,
//! `+Inf`, `-Inf`, `inf`, `1e+06`, `.5`, `-0` parse; `0x1p3`, `1_000`, `1e400` do not). Lines end
//! with `\n`; a `\r` before it is an error in both formats, as in Prometheus. NaN and infinite
//! values are passed through as scraped: a consumer must handle them.
//!
//! Text 0.0.4: empty lines and `#` comments are skipped; `# HELP` and `# TYPE` are metadata;
//! spaces and tabs separate tokens (none allowed before the metric name); a label set may end in
//! a comma; the timestamp is integer milliseconds (digits only, as in Prometheus); `# EOF` is
//! just a comment; the last line may lack its `\n`.
//!
//! OpenMetrics 1.0: single spaces only; no empty lines, no comments other than `# HELP`, `# TYPE`,
//! `# UNIT` and `# EOF`; `# EOF` is required and may be followed only by one `\n`; no trailing
//! comma in label sets; the timestamp is float seconds, stored as `trunc(seconds * 1000)` ms like
//! Prometheus; exemplars (` # {labels} value [timestamp]`) are checked and skipped, and allowed only
//! on `_total` and `_bucket` samples, as Prometheus 2.42 requires.
//!
//! Duplicate series are passed through: the parser is streaming and keeps no set of series.
//! Prometheus 2.42 accepts such a payload and stores the *first* value; a caller that needs that
//! must deduplicate itself (the scraper does: [`crate::scrape::SeenSeries`]).
//!
//! Atomicity is the caller's concern: samples are delivered as they are parsed, so a caller that
//! wants all-or-nothing buffers them and discards the buffer when [`parse`] returns an error.
//!
//! Hostile input is bounded by [`MAX_LINE_BYTES`] and [`MAX_LABELS`]; the body size is the
//! caller's cap. The only allocations are one reused label buffer per call and one `String` per
//! label value or HELP text that contains escapes.

use std::borrow::Cow;

use memchr::{memchr, memchr2};

/// The longest accepted line, in bytes, excluding its `\n`.
///
/// 64 KiB fits any real exposition line (a few dozen labels with long values) while keeping the
/// per-line work of an error report and of escaped copies small.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// The most labels accepted on one sample (or one exemplar), excluding the metric name.
///
/// Bounds the reused label buffer and the quadratic duplicate-name check per line.
pub const MAX_LABELS: usize = 128;

/// Which exposition format a body is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Prometheus text format 0.0.4 (`text/plain; version=0.0.4`).
    Text,
    /// OpenMetrics 1.0 text (`application/openmetrics-text; version=1.0.0`).
    OpenMetrics,
}

impl Format {
    /// The `Accept` header Prometheus 2.42 sends: OpenMetrics 1.0.0 first, then text 0.0.4.
    pub const ACCEPT: &'static str = "application/openmetrics-text;version=1.0.0,\
application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

    /// Picks the format from a response's `Content-Type`: OpenMetrics when the media type is
    /// `application/openmetrics-text` (any parameters, any case), text otherwise, as Prometheus does.
    pub fn from_content_type(content_type: Option<&str>) -> Format {
        let Some(value) = content_type else {
            return Format::Text;
        };
        let media = value.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case("application/openmetrics-text") {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }
}

/// A label name with its value, unescaped: borrowed from the input unless it had escapes.
pub type Label<'a> = (&'a str, Cow<'a, str>);

/// One parsed sample, borrowed from the input; valid only during the callback.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    /// Metric name as exposed, suffix included (`http_requests_total`, `latency_bucket`).
    pub name: &'a str,
    /// Labels in input order, values unescaped; the metric name is not among them.
    pub labels: &'a [Label<'a>],
    /// The value as scraped; may be NaN or infinite.
    pub value: f64,
    /// Explicit timestamp in ms since the epoch (OpenMetrics seconds converted), if any.
    pub timestamp_ms: Option<i64>,
}

impl Sample<'_> {
    /// The value of label `name`, if present.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_ref())
    }

    /// Copies the sample out of the input.
    pub fn to_owned_sample(&self) -> OwnedSample {
        OwnedSample {
            name: self.name.to_owned(),
            labels: self
                .labels
                .iter()
                .map(|(n, v)| ((*n).to_owned(), v.as_ref().to_owned()))
                .collect(),
            value: self.value,
            timestamp_ms: self.timestamp_ms,
        }
    }
}

/// A [`Sample`] that owns its strings (tests and tools).
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedSample {
    /// Metric name as exposed.
    pub name: String,
    /// Labels in input order, values unescaped.
    pub labels: Vec<(String, String)>,
    /// The value as scraped; may be NaN or infinite.
    pub value: f64,
    /// Explicit timestamp in ms since the epoch, if any.
    pub timestamp_ms: Option<i64>,
}

/// The type a `# TYPE` line declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// `counter`.
    Counter,
    /// `gauge`.
    Gauge,
    /// `histogram`.
    Histogram,
    /// `gaugehistogram` (OpenMetrics only).
    GaugeHistogram,
    /// `summary`.
    Summary,
    /// `info` (OpenMetrics only).
    Info,
    /// `stateset` (OpenMetrics only).
    StateSet,
    /// `untyped` (text) or `unknown` (OpenMetrics), and families without a `# TYPE`.
    Unknown,
}

impl MetricType {
    fn from_keyword(text: &[u8], format: Format) -> Option<MetricType> {
        let t = match (text, format) {
            (b"counter", _) => MetricType::Counter,
            (b"gauge", _) => MetricType::Gauge,
            (b"histogram", _) => MetricType::Histogram,
            (b"summary", _) => MetricType::Summary,
            (b"untyped", Format::Text) => MetricType::Unknown,
            (b"unknown", Format::OpenMetrics) => MetricType::Unknown,
            (b"gaugehistogram", Format::OpenMetrics) => MetricType::GaugeHistogram,
            (b"info", Format::OpenMetrics) => MetricType::Info,
            (b"stateset", Format::OpenMetrics) => MetricType::StateSet,
            _ => return None,
        };
        Some(t)
    }

    /// The sample-name suffixes a family of this type may use besides its bare name.
    fn suffixes(self, format: Format) -> &'static [&'static str] {
        match (self, format) {
            (MetricType::Counter, Format::OpenMetrics) => &["_total", "_created"],
            (MetricType::Histogram, Format::Text) => &["_bucket", "_sum", "_count"],
            (MetricType::Histogram, Format::OpenMetrics) => {
                &["_bucket", "_sum", "_count", "_created"]
            }
            (MetricType::GaugeHistogram, _) => &["_bucket", "_gsum", "_gcount"],
            (MetricType::Summary, Format::Text) => &["_sum", "_count"],
            (MetricType::Summary, Format::OpenMetrics) => &["_sum", "_count", "_created"],
            (MetricType::Info, _) => &["_info"],
            _ => &[],
        }
    }
}

/// One metadata line, delivered to [`Visitor::metadata`].
#[derive(Debug, Clone, PartialEq)]
pub enum Metadata<'a> {
    /// `# HELP family text`, text unescaped.
    Help {
        /// Family name.
        family: &'a str,
        /// Help text with `\\`, `\n` (and in OpenMetrics `\"`) unescaped; other escapes kept.
        text: Cow<'a, str>,
    },
    /// `# TYPE family type`.
    Type {
        /// Family name.
        family: &'a str,
        /// Declared type.
        kind: MetricType,
    },
    /// `# UNIT family unit` (OpenMetrics only).
    Unit {
        /// Family name.
        family: &'a str,
        /// Unit, possibly empty.
        unit: &'a str,
    },
}

/// Receives what [`parse_with`] finds, in input order.
pub trait Visitor {
    /// Called once per sample line.
    fn sample(&mut self, sample: &Sample<'_>);
    /// Called once per `# HELP`, `# TYPE` or `# UNIT` line; ignored by default.
    fn metadata(&mut self, _metadata: &Metadata<'_>) {}
}

/// Counts from a successful parse.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParseSummary {
    /// Sample lines delivered.
    pub samples: u64,
    /// Metric families: runs of samples and metadata that share a family name, where a family
    /// of a declared type also owns its suffixed samples (`_bucket`, `_sum`, `_count`, ...).
    pub families: u64,
    /// Lines read, `# EOF` included.
    pub lines: u64,
    /// OpenMetrics exemplars checked and skipped.
    pub exemplars_skipped: u64,
}

/// Why a body was rejected, with the 1-based line and byte column where it went wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}, column {column}: {kind}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: u64,
    /// 1-based byte column in that line.
    pub column: u64,
    /// What is wrong.
    pub kind: ErrorKind,
}

/// What is wrong with a body; the `Display` text is the message of a [`ParseError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A line is longer than [`MAX_LINE_BYTES`].
    #[error("line longer than {MAX_LINE_BYTES} bytes")]
    LineTooLong,
    /// A sample or exemplar has more than [`MAX_LABELS`] labels.
    #[error("more than {MAX_LABELS} labels")]
    TooManyLabels,
    /// A `\r` ends the line.
    #[error("carriage return before end of line (lines must end with \\n alone)")]
    CarriageReturn,
    /// Something other than what the grammar allows here.
    #[error("expected {expected}, found {found}")]
    Unexpected {
        /// What the grammar allows here.
        expected: &'static str,
        /// What was found.
        found: Found,
    },
    /// A backslash in a label value not followed by `\`, `"` or `n`.
    #[error("invalid escape sequence in label value (only \\\\, \\\" and \\n are allowed)")]
    InvalidEscape,
    /// A label value without its closing quote on the same line.
    #[error("unterminated label value (missing closing quote)")]
    UnterminatedLabelValue,
    /// A label value or HELP text that is not UTF-8.
    #[error("{0} is not valid UTF-8")]
    InvalidUtf8(&'static str),
    /// A label name given twice, or a `__name__` label.
    #[error("duplicate label name {0:?}")]
    DuplicateLabel(String),
    /// A value that is not a float Prometheus accepts.
    #[error("invalid value {0:?}")]
    InvalidValue(String),
    /// A timestamp that is not valid for the format.
    #[error("invalid timestamp {0:?}")]
    InvalidTimestamp(String),
    /// A `# TYPE` line with an unknown type for the format.
    #[error("invalid metric type {0:?}")]
    InvalidType(String),
    /// A `# UNIT` whose unit is not a `_unit` suffix of the family name.
    #[error("unit {unit:?} is not a suffix of metric {metric:?}")]
    UnitMismatch {
        /// The declared unit.
        unit: String,
        /// The family name.
        metric: String,
    },
    /// An exemplar on a sample other than `_total` or `_bucket`.
    #[error("metric {0:?} does not support exemplars (only _total and _bucket do)")]
    ExemplarNotAllowed(String),
    /// OpenMetrics body without `# EOF`.
    #[error("OpenMetrics data does not end with # EOF")]
    MissingEof,
    /// Anything after `# EOF` and its newline.
    #[error("unexpected data after # EOF")]
    DataAfterEof,
    /// An empty line in OpenMetrics.
    #[error("empty line (not allowed in OpenMetrics)")]
    EmptyLine,
    /// A comment in OpenMetrics other than HELP, TYPE, UNIT or EOF.
    #[error("comment not allowed in OpenMetrics (only # HELP, # TYPE, # UNIT and # EOF)")]
    InvalidComment,
}

/// The offending input in an [`ErrorKind::Unexpected`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// The line ended.
    EndOfLine,
    /// This byte.
    Byte(u8),
}

impl std::fmt::Display for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Found::EndOfLine => f.write_str("end of line"),
            Found::Byte(b) if b.is_ascii_graphic() => write!(f, "'{}'", b as char),
            Found::Byte(b' ') => f.write_str("space"),
            Found::Byte(b'\t') => f.write_str("tab"),
            Found::Byte(b) => write!(f, "byte 0x{b:02x}"),
        }
    }
}

/// Parses `input`, calling `on_sample` once per sample; metadata lines are checked and dropped
/// (use [`parse_with`] to receive them). See the module docs for the accepted grammar.
///
/// On `Err`, samples before the bad line have already been delivered: buffer and discard them
/// if the body must be taken whole.
pub fn parse(
    input: &[u8],
    format: Format,
    on_sample: impl FnMut(&Sample<'_>),
) -> Result<ParseSummary, ParseError> {
    struct Samples<F>(F);
    impl<F: FnMut(&Sample<'_>)> Visitor for Samples<F> {
        fn sample(&mut self, sample: &Sample<'_>) {
            (self.0)(sample)
        }
    }
    parse_with(input, format, &mut Samples(on_sample))
}

/// Owned result of [`parse_owned_full`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OwnedExposition {
    /// Every sample in input order.
    pub samples: Vec<OwnedSample>,
    /// Every metadata line in input order, copied out with `'static` data.
    pub metadata: Vec<OwnedMetadata>,
    /// Counts.
    pub summary: ParseSummary,
}

/// A [`Metadata`] line that owns its strings.
#[derive(Debug, Clone, PartialEq)]
pub enum OwnedMetadata {
    /// `# HELP family text`.
    Help {
        /// Family name.
        family: String,
        /// Unescaped text.
        text: String,
    },
    /// `# TYPE family type`.
    Type {
        /// Family name.
        family: String,
        /// Declared type.
        kind: MetricType,
    },
    /// `# UNIT family unit`.
    Unit {
        /// Family name.
        family: String,
        /// Unit.
        unit: String,
    },
}

/// Parses into owned samples (tests and tools; the agent uses [`parse`]).
pub fn parse_owned(input: &[u8], format: Format) -> Result<Vec<OwnedSample>, ParseError> {
    parse_owned_full(input, format).map(|e| e.samples)
}

/// Parses into owned samples and metadata.
pub fn parse_owned_full(input: &[u8], format: Format) -> Result<OwnedExposition, ParseError> {
    #[derive(Default)]
    struct Collect {
        samples: Vec<OwnedSample>,
        metadata: Vec<OwnedMetadata>,
    }
    impl Visitor for Collect {
        fn sample(&mut self, sample: &Sample<'_>) {
            self.samples.push(sample.to_owned_sample());
        }
        fn metadata(&mut self, metadata: &Metadata<'_>) {
            self.metadata.push(match metadata {
                Metadata::Help { family, text } => OwnedMetadata::Help {
                    family: (*family).to_owned(),
                    text: text.as_ref().to_owned(),
                },
                Metadata::Type { family, kind } => OwnedMetadata::Type {
                    family: (*family).to_owned(),
                    kind: *kind,
                },
                Metadata::Unit { family, unit } => OwnedMetadata::Unit {
                    family: (*family).to_owned(),
                    unit: (*unit).to_owned(),
                },
            });
        }
    }
    let mut collect = Collect::default();
    let summary = parse_with(input, format, &mut collect)?;
    Ok(OwnedExposition {
        samples: collect.samples,
        metadata: collect.metadata,
        summary,
    })
}

/// Parses `input`, handing samples and metadata to `visitor` in input order.
///
/// Same contract as [`parse`].
pub fn parse_with<V: Visitor + ?Sized>(
    input: &[u8],
    format: Format,
    visitor: &mut V,
) -> Result<ParseSummary, ParseError> {
    let mut parser = Parser {
        format,
        labels: Vec::new(),
        family: None,
        summary: ParseSummary::default(),
    };
    parser.run(input, visitor)
}

/// Per-call state: the reused label buffer and the current family.
struct Parser<'a> {
    format: Format,
    labels: Vec<Label<'a>>,
    family: Option<(&'a str, MetricType)>,
    summary: ParseSummary,
}

/// An error inside one line: byte offset in the line plus what is wrong.
type LineError = (usize, ErrorKind);

impl<'a> Parser<'a> {
    fn run<V: Visitor + ?Sized>(
        &mut self,
        input: &'a [u8],
        visitor: &mut V,
    ) -> Result<ParseSummary, ParseError> {
        // One UTF-8 check for the whole body (std's ASCII fast path makes it cheap) lets every
        // name and label value be sliced out as `&str` without a check of its own; only a body
        // that is not UTF-8 somewhere (maybe just in a comment) falls back to per-token checks.
        let text = std::str::from_utf8(input).ok();
        let mut pos = 0usize;
        let mut line_no = 0u64;
        while pos < input.len() {
            line_no += 1;
            let rest = &input[pos..];
            let (line, next) = match memchr(b'\n', rest) {
                Some(i) => (&rest[..i], pos + i + 1),
                None => (rest, input.len()),
            };
            // Both ends sit next to a `\n` or at an end of the body: always char boundaries.
            let line_text = text.and_then(|t| t.get(pos..pos + line.len()));
            let at = |(col, kind): LineError| ParseError {
                line: line_no,
                column: col as u64 + 1,
                kind,
            };
            if line.len() > MAX_LINE_BYTES {
                return Err(at((MAX_LINE_BYTES, ErrorKind::LineTooLong)));
            }
            if line.last() == Some(&b'\r') {
                return Err(at((line.len() - 1, ErrorKind::CarriageReturn)));
            }
            self.summary.lines = line_no;
            pos = next;
            if self.format == Format::OpenMetrics && line == b"# EOF" {
                if pos < input.len() {
                    return Err(ParseError {
                        line: line_no + 1,
                        column: 1,
                        kind: ErrorKind::DataAfterEof,
                    });
                }
                return Ok(self.summary);
            }
            self.line(Cursor::new(line, line_text), visitor)
                .map_err(at)?;
        }
        match self.format {
            Format::Text => Ok(self.summary),
            Format::OpenMetrics => Err(ParseError {
                line: line_no + 1,
                column: 1,
                kind: ErrorKind::MissingEof,
            }),
        }
    }

    fn line<V: Visitor + ?Sized>(
        &mut self,
        line: Cursor<'a>,
        visitor: &mut V,
    ) -> Result<(), LineError> {
        match line.peek() {
            None => match self.format {
                Format::Text => Ok(()),
                Format::OpenMetrics => Err((0, ErrorKind::EmptyLine)),
            },
            Some(b'#') => self.comment(line, visitor),
            Some(_) => self.sample(line, visitor),
        }
    }

    fn comment<V: Visitor + ?Sized>(
        &mut self,
        mut c: Cursor<'a>,
        visitor: &mut V,
    ) -> Result<(), LineError> {
        c.pos = 1;
        let keyword = match self.format {
            Format::Text => {
                // Prometheus: `#[ \t]+(HELP|TYPE)[ \t]+` starts metadata; anything else is a comment.
                if c.skip_blanks() == 0 {
                    return Ok(());
                }
                let kw = c.rest();
                let kind = if kw.starts_with(b"HELP") {
                    b'H'
                } else if kw.starts_with(b"TYPE") {
                    b'T'
                } else {
                    return Ok(());
                };
                c.pos += 4;
                if c.skip_blanks() == 0 {
                    return Ok(());
                }
                kind
            }
            Format::OpenMetrics => {
                let rest = c.rest();
                let kind = match rest {
                    [b' ', b'H', b'E', b'L', b'P', b' ', ..] => b'H',
                    [b' ', b'T', b'Y', b'P', b'E', b' ', ..] => b'T',
                    [b' ', b'U', b'N', b'I', b'T', b' ', ..] => b'U',
                    _ => return Err((0, ErrorKind::InvalidComment)),
                };
                c.pos += 6;
                kind
            }
        };
        let family = c.metric_name()?;
        // Both formats need a separator before the text; text allows a tab too.
        match (c.peek(), self.format) {
            (None, Format::Text) => {}
            (Some(b' '), _) | (Some(b'\t'), Format::Text) => c.pos += 1,
            (found, _) => return Err(c.unexpected("space after the metric name", found)),
        }
        let text_start = c.pos;
        let text = c.rest();
        let metadata = match keyword {
            b'H' => Metadata::Help {
                family,
                text: unescape_help(text, self.format)
                    .ok_or((text_start, ErrorKind::InvalidUtf8("help text")))?,
            },
            b'T' => {
                let kind = MetricType::from_keyword(text, self.format).ok_or_else(|| {
                    (
                        text_start,
                        ErrorKind::InvalidType(String::from_utf8_lossy(text).into_owned()),
                    )
                })?;
                Metadata::Type { family, kind }
            }
            _ => {
                let unit = std::str::from_utf8(text)
                    .map_err(|_| (text_start, ErrorKind::InvalidUtf8("unit")))?;
                if !unit.is_empty() && !unit_matches(family, unit) {
                    return Err((
                        text_start,
                        ErrorKind::UnitMismatch {
                            unit: unit.to_owned(),
                            metric: family.to_owned(),
                        },
                    ));
                }
                Metadata::Unit { family, unit }
            }
        };
        match (&metadata, self.family) {
            (Metadata::Type { kind, .. }, Some((name, _))) if name == family => {
                self.family = Some((family, *kind));
            }
            (_, Some((name, _))) if name == family => {}
            _ => {
                self.summary.families += 1;
                let kind = match metadata {
                    Metadata::Type { kind, .. } => kind,
                    _ => MetricType::Unknown,
                };
                self.family = Some((family, kind));
            }
        }
        visitor.metadata(&metadata);
        Ok(())
    }

    fn sample<V: Visitor + ?Sized>(
        &mut self,
        mut c: Cursor<'a>,
        visitor: &mut V,
    ) -> Result<(), LineError> {
        let om = self.format == Format::OpenMetrics;
        let line = c.line;
        let name = c.metric_name()?;
        self.labels.clear();
        if !om {
            // Text allows blanks between the name and `{`; a value never starts with `{`.
            let after_name = c.pos;
            c.skip_blanks();
            if c.peek() != Some(b'{') {
                c.pos = after_name;
            }
        }
        if c.peek() == Some(b'{') {
            c.pos += 1;
            c.label_set(&mut self.labels, om)?;
        }
        let value_start = c.separator(om)?;
        let token = c.token(om);
        let value = parse_float(token).ok_or_else(|| (value_start, invalid_value(token)))?;
        let mut timestamp_ms = None;
        let mut exemplar = false;
        if om {
            if c.pos < line.len() {
                c.separator(true)?;
                if c.peek() == Some(b'#') {
                    exemplar = true;
                } else {
                    let ts_start = c.pos;
                    let token = c.token(true);
                    timestamp_ms = Some(
                        om_timestamp(token).ok_or_else(|| (ts_start, invalid_timestamp(token)))?,
                    );
                    if c.pos < line.len() {
                        c.separator(true)?;
                        exemplar = true;
                    }
                }
            }
            if exemplar {
                if !(name.ends_with("_total") || name.ends_with("_bucket")) {
                    return Err((c.pos, ErrorKind::ExemplarNotAllowed(name.to_owned())));
                }
                c.exemplar()?;
                self.summary.exemplars_skipped += 1;
            }
        } else {
            c.skip_blanks();
            if c.pos < line.len() {
                let ts_start = c.pos;
                let token = c.token(false);
                timestamp_ms = Some(
                    text_timestamp(token).ok_or_else(|| (ts_start, invalid_timestamp(token)))?,
                );
                c.skip_blanks();
                if let Some(b) = c.peek() {
                    return Err(c.unexpected("end of line after the timestamp", Some(b)));
                }
            }
        }
        self.track_family(name);
        self.summary.samples += 1;
        visitor.sample(&Sample {
            name,
            labels: &self.labels,
            value,
            timestamp_ms,
        });
        Ok(())
    }

    /// Counts a new family when `name` does not belong to the current one.
    fn track_family(&mut self, name: &'a str) {
        if let Some((family, kind)) = self.family
            && let Some(suffix) = name.strip_prefix(family)
            && (suffix.is_empty() || kind.suffixes(self.format).contains(&suffix))
        {
            return;
        }
        self.summary.families += 1;
        self.family = Some((name, MetricType::Unknown));
    }
}

/// Prometheus 2.42's check: a non-empty unit must appear as `_unit` at the end of the name.
fn unit_matches(family: &str, unit: &str) -> bool {
    family
        .strip_suffix(unit)
        .is_some_and(|head| head.ends_with('_'))
}

fn invalid_value(token: &[u8]) -> ErrorKind {
    ErrorKind::InvalidValue(snippet(token))
}

fn invalid_timestamp(token: &[u8]) -> ErrorKind {
    ErrorKind::InvalidTimestamp(snippet(token))
}

/// At most 64 bytes of a bad token, so a hostile line cannot bloat an error.
fn snippet(token: &[u8]) -> String {
    String::from_utf8_lossy(&token[..token.len().min(64)]).into_owned()
}

/// [`NAME_CLASS`] bit: may start a metric name (`[a-zA-Z_:]`).
const METRIC_START: u8 = 1;
/// [`NAME_CLASS`] bit: may continue a metric name (`[a-zA-Z0-9_:]`).
const METRIC_CHAR: u8 = 2;
/// [`NAME_CLASS`] bit: may start a label name (`[a-zA-Z_]`).
const LABEL_START: u8 = 4;
/// [`NAME_CLASS`] bit: may continue a label name (`[a-zA-Z0-9_]`).
const LABEL_CHAR: u8 = 8;

/// Name character classes per byte: one table lookup per byte in the hottest loop.
static NAME_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let alpha = b.is_ascii_alphabetic() || b == b'_';
        let mut class = 0;
        if alpha || b == b':' {
            class |= METRIC_START | METRIC_CHAR;
        }
        if b.is_ascii_digit() {
            class |= METRIC_CHAR | LABEL_CHAR;
        }
        if alpha {
            class |= LABEL_START | LABEL_CHAR;
        }
        t[i] = class;
        i += 1;
    }
    t
};

/// Index of the first `"` or `\\` in `s`. Label values are short, where memchr's setup costs
/// more than the scan, so the first 32 bytes go 8 at a time in a `u64` (SWAR), the rest to memchr.
#[inline]
fn find_quote_or_backslash(s: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    const QUOTES: u64 = u64::from_ne_bytes([b'"'; 8]);
    const BACKSLASHES: u64 = u64::from_ne_bytes([b'\\'; 8]);
    // High bit set in each zero byte of `v`, and possibly in bytes *after* a zero byte (borrow);
    // never before the first one, so the lowest set bit is exact.
    let zero_bytes = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    let head = &s[..s.len().min(32)];
    let mut chunks = head.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut chunks {
        // Little-endian so that the first byte in memory is the lowest one.
        let w = u64::from_le_bytes(chunk.try_into().expect("chunks_exact yields 8 bytes"));
        let hits = zero_bytes(w ^ QUOTES) | zero_bytes(w ^ BACKSLASHES);
        if hits != 0 {
            return Some(base + (hits.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    if let Some(i) = chunks
        .remainder()
        .iter()
        .position(|&b| b == b'"' || b == b'\\')
    {
        return Some(base + i);
    }
    memchr2(b'"', b'\\', &s[head.len()..]).map(|i| head.len() + i)
}

/// A position inside one line.
struct Cursor<'a> {
    line: &'a [u8],
    /// The same line as `&str` when the whole body is UTF-8 (see [`Parser::run`]).
    text: Option<&'a str>,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(line: &'a [u8], text: Option<&'a str>) -> Self {
        Cursor { line, text, pos: 0 }
    }

    /// `line[start..end]` as `&str`: a cheap slice of the validated line, or a UTF-8 check.
    #[inline]
    fn str_between(&self, start: usize, end: usize) -> Option<&'a str> {
        match self.text {
            Some(t) => t.get(start..end),
            None => std::str::from_utf8(self.line.get(start..end)?).ok(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.line.get(self.pos).copied()
    }

    fn rest(&self) -> &'a [u8] {
        &self.line[self.pos.min(self.line.len())..]
    }

    fn unexpected(&self, expected: &'static str, found: Option<u8>) -> LineError {
        let found = match found {
            Some(b) => Found::Byte(b),
            None => Found::EndOfLine,
        };
        (self.pos, ErrorKind::Unexpected { expected, found })
    }

    /// Skips spaces and tabs; returns how many.
    fn skip_blanks(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// The separator before a value, timestamp or exemplar: one space in OpenMetrics, any run of
    /// spaces and tabs in text. Returns the position after it.
    fn separator(&mut self, om: bool) -> Result<usize, LineError> {
        let n = if om {
            if self.peek() == Some(b' ') {
                self.pos += 1;
                1
            } else {
                0
            }
        } else {
            self.skip_blanks()
        };
        if n == 0 {
            let expected = if om { "a space" } else { "space or tab" };
            return Err(self.unexpected(expected, self.peek()));
        }
        if om && self.peek() == Some(b' ') {
            return Err(self.unexpected("a single space", Some(b' ')));
        }
        if self.peek().is_none() {
            return Err(self.unexpected("a value", None));
        }
        Ok(self.pos)
    }

    /// A value or timestamp token: up to the next space (or tab, in text).
    fn token(&mut self, om: bool) -> &'a [u8] {
        let rest = self.rest();
        // Tokens are a few bytes: a plain loop beats memchr's setup.
        let len = rest
            .iter()
            .position(|&b| b == b' ' || (!om && b == b'\t'))
            .unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    fn name(&mut self, metric: bool) -> Result<&'a str, LineError> {
        let (first, rest) = if metric {
            (METRIC_START, METRIC_CHAR)
        } else {
            (LABEL_START, LABEL_CHAR)
        };
        let start = self.pos;
        let tail = self.rest();
        match tail.first() {
            Some(&b) if NAME_CLASS[usize::from(b)] & first != 0 => {}
            found => {
                let expected = if metric {
                    "a metric name"
                } else {
                    "a label name"
                };
                return Err(self.unexpected(expected, found.copied()));
            }
        }
        let len = tail[1..]
            .iter()
            .position(|&b| NAME_CLASS[usize::from(b)] & rest == 0)
            .map_or(tail.len(), |i| i + 1);
        self.pos += len;
        // The bytes are ASCII by construction, so this cannot fail; no `unsafe` needed.
        self.str_between(start, self.pos)
            .ok_or((start, ErrorKind::InvalidUtf8("name")))
    }

    fn metric_name(&mut self) -> Result<&'a str, LineError> {
        self.name(true)
    }

    /// Parses labels after `{` up to and including `}` into `out`.
    fn label_set(&mut self, out: &mut Vec<Label<'a>>, om: bool) -> Result<(), LineError> {
        if !om {
            self.skip_blanks();
        }
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            let name_pos = self.pos;
            let name = self.name(false)?;
            if name == "__name__" || out.iter().any(|(n, _)| *n == name) {
                return Err((name_pos, ErrorKind::DuplicateLabel(name.to_owned())));
            }
            if out.len() == MAX_LABELS {
                return Err((name_pos, ErrorKind::TooManyLabels));
            }
            if !om {
                self.skip_blanks();
            }
            if self.peek() != Some(b'=') {
                return Err(self.unexpected("'=' after the label name", self.peek()));
            }
            self.pos += 1;
            if !om {
                self.skip_blanks();
            }
            let value = self.label_value()?;
            out.push((name, value));
            if !om {
                self.skip_blanks();
            }
            match self.peek() {
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b',') => {
                    self.pos += 1;
                    if !om {
                        self.skip_blanks();
                        // Text allows one trailing comma.
                        if self.peek() == Some(b'}') {
                            self.pos += 1;
                            return Ok(());
                        }
                    }
                }
                found => return Err(self.unexpected("',' or '}' after a label value", found)),
            }
        }
    }

    /// A quoted label value, unescaped; borrowed when it has no escapes.
    fn label_value(&mut self) -> Result<Cow<'a, str>, LineError> {
        if self.peek() != Some(b'"') {
            return Err(self.unexpected("'\"' opening the label value", self.peek()));
        }
        self.pos += 1;
        let start = self.pos;
        let rest = self.rest();
        let Some(i) = find_quote_or_backslash(rest) else {
            return Err((start - 1, ErrorKind::UnterminatedLabelValue));
        };
        if rest[i] == b'"' {
            self.pos += i + 1;
            let s = self
                .str_between(start, start + i)
                .ok_or((start, ErrorKind::InvalidUtf8("label value")))?;
            return Ok(Cow::Borrowed(s));
        }
        // Escapes: copy into an owned buffer.
        let mut buf: Vec<u8> = Vec::with_capacity(i + 16);
        buf.extend_from_slice(&rest[..i]);
        let mut j = i;
        loop {
            match rest.get(j) {
                None => return Err((start - 1, ErrorKind::UnterminatedLabelValue)),
                Some(b'"') => break,
                Some(b'\\') => {
                    let unescaped = match rest.get(j + 1) {
                        Some(b'\\') => b'\\',
                        Some(b'"') => b'"',
                        Some(b'n') => b'\n',
                        None => return Err((start - 1, ErrorKind::UnterminatedLabelValue)),
                        Some(_) => return Err((start + j, ErrorKind::InvalidEscape)),
                    };
                    buf.push(unescaped);
                    j += 2;
                }
                Some(_) => {
                    let run = memchr2(b'"', b'\\', &rest[j..]).unwrap_or(rest.len() - j);
                    buf.extend_from_slice(&rest[j..j + run]);
                    j += run;
                }
            }
        }
        self.pos += j + 1;
        String::from_utf8(buf)
            .map(Cow::Owned)
            .map_err(|_| (start, ErrorKind::InvalidUtf8("label value")))
    }

    /// Checks an OpenMetrics exemplar, cursor on its `#`: `# {labels} value [timestamp]`.
    fn exemplar(&mut self) -> Result<(), LineError> {
        if self.rest().get(..3) != Some(b"# {") {
            return Err(self.unexpected("an exemplar ('# {')", self.peek()));
        }
        self.pos += 3;
        // Exemplar labels are checked like sample labels into a scratch buffer; the count cap
        // keeps it small, and exemplars are rare enough that its allocation does not matter.
        let mut scratch = Vec::new();
        self.label_set(&mut scratch, true)?;
        let value_start = self.separator(true)?;
        let token = self.token(true);
        parse_float(token).ok_or_else(|| (value_start, invalid_value(token)))?;
        if self.pos < self.line.len() {
            let ts_start = self.separator(true)?;
            let token = self.token(true);
            om_timestamp(token).ok_or_else(|| (ts_start, invalid_timestamp(token)))?;
            if let Some(b) = self.peek() {
                return Err(self.unexpected("end of line after the exemplar", Some(b)));
            }
        }
        Ok(())
    }
}

/// Unescapes HELP text: `\\` and `\n` (and `\"` in OpenMetrics); other escapes stay as written,
/// since Prometheus does not check HELP escapes. `None` when the text is not UTF-8.
fn unescape_help(text: &[u8], format: Format) -> Option<Cow<'_, str>> {
    let s = std::str::from_utf8(text).ok()?;
    if memchr(b'\\', text).is_none() {
        return Some(Cow::Borrowed(s));
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(ch) = chars.next() {
        if ch != '\\' {
            out.push(ch);
            continue;
        }
        match chars.clone().next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if format == Format::OpenMetrics => out.push('"'),
            _ => {
                out.push('\\');
                continue;
            }
        }
        chars.next();
    }
    Some(Cow::Owned(out))
}

/// Text-format timestamp: decimal digits only (as Prometheus's lexer), fitting an i64.
fn text_timestamp(token: &[u8]) -> Option<i64> {
    if token.is_empty() || token.len() > 19 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in token {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(b - b'0');
    }
    i64::try_from(n).ok()
}

/// OpenMetrics timestamp: float seconds, finite, converted like Prometheus (`int64(ts * 1000)`,
/// truncating toward zero); out of the i64 range is an error rather than Go's undefined result.
fn om_timestamp(token: &[u8]) -> Option<i64> {
    let seconds = parse_float(token)?;
    if !seconds.is_finite() {
        return None;
    }
    let ms = (seconds * 1000.0).trunc();
    // 2^63 is exactly representable; i64::MAX is not, so compare against the power of two.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if (-LIMIT..LIMIT).contains(&ms) {
        Some(ms as i64)
    } else {
        None
    }
}

/// Exact powers of ten for the fast path (all below 2^53, so exact in f64).
const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// Parses a value as Prometheus 2.42 does: Go's `strconv.ParseFloat(s, 64)` after rejecting any
/// `p`, `P` or `_`. `None` when Prometheus would fail.
pub fn parse_float(token: &[u8]) -> Option<f64> {
    if let Some(v) = parse_simple_decimal(token) {
        return Some(v);
    }
    parse_float_slow(token)
}

/// Fast path for `[-+]?digits[.digits]` with at most 15 significant digits: the mantissa and
/// the power of ten are both exact in f64, so one division is correctly rounded (Clinger).
#[inline]
fn parse_simple_decimal(token: &[u8]) -> Option<f64> {
    let (negative, body) = match token.first()? {
        b'-' => (true, &token[1..]),
        b'+' => (false, &token[1..]),
        _ => (false, token),
    };
    if body.is_empty() || body.len() > 16 {
        return None;
    }
    let mut mantissa: u64 = 0;
    let mut digits = 0usize;
    let mut frac_digits = 0usize;
    let mut seen_dot = false;
    for &b in body {
        match b {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + u64::from(b - b'0');
                digits += 1;
                if seen_dot {
                    frac_digits += 1;
                }
            }
            b'.' if !seen_dot => seen_dot = true,
            _ => return None,
        }
    }
    if digits == 0 || digits > 15 {
        return None;
    }
    let v = mantissa as f64 / POW10[frac_digits];
    Some(if negative { -v } else { v })
}

fn parse_float_slow(token: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(token).ok()?;
    if s.bytes().any(|b| matches!(b, b'p' | b'P' | b'_')) {
        return None;
    }
    let unsigned = s.strip_prefix(['+', '-']);
    // Go accepts a sign on infinities but not on NaN; Rust accepts both.
    if unsigned.is_some_and(|u| u.starts_with(['n', 'N'])) {
        return None;
    }
    let v: f64 = s.parse().ok()?;
    // Go reports overflow (`1e400`) as an error where Rust returns an infinity.
    let first = unsigned.unwrap_or(s).as_bytes().first().copied();
    if v.is_infinite() && matches!(first, Some(b'0'..=b'9' | b'.')) {
        return None;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(input: &str, format: Format) -> OwnedSample {
        let samples = parse_owned(input.as_bytes(), format).expect("parses");
        assert_eq!(samples.len(), 1, "{input:?}");
        samples.into_iter().next().expect("one sample")
    }

    fn err(input: &str, format: Format) -> ParseError {
        parse_owned(input.as_bytes(), format).expect_err(input)
    }

    #[test]
    fn content_type_picks_format() {
        let om = Some("application/openmetrics-text; version=1.0.0; charset=utf-8");
        assert_eq!(Format::from_content_type(om), Format::OpenMetrics);
        let upper = Some("Application/OpenMetrics-Text");
        assert_eq!(Format::from_content_type(upper), Format::OpenMetrics);
        assert_eq!(
            Format::from_content_type(Some("text/plain; version=0.0.4")),
            Format::Text
        );
        assert_eq!(Format::from_content_type(None), Format::Text);
        assert!(Format::ACCEPT.starts_with("application/openmetrics-text;version=1.0.0,"));
        assert!(Format::ACCEPT.contains("text/plain;version=0.0.4;q=0.5"));
    }

    #[test]
    fn floats_follow_go_minus_hex() {
        let cases: &[(&str, Option<f64>)] = &[
            ("1", Some(1.0)),
            ("-0", Some(-0.0)),
            ("1e+06", Some(1e6)),
            ("1E6", Some(1e6)),
            (".5", Some(0.5)),
            ("5.", Some(5.0)),
            ("+1", Some(1.0)),
            ("0.1", Some(0.1)),
            ("123456789012345", Some(123_456_789_012_345.0)),
            ("1234567890123456789", Some(1_234_567_890_123_456_789.0)),
            ("1.7976931348623157e308", Some(f64::MAX)),
            ("1e-400", Some(0.0)),
            ("+Inf", Some(f64::INFINITY)),
            ("-Inf", Some(f64::NEG_INFINITY)),
            ("inf", Some(f64::INFINITY)),
            ("Infinity", Some(f64::INFINITY)),
            ("1e400", None),
            ("-1e400", None),
            ("0x10", None),
            ("0x1p3", None),
            ("1_000", None),
            ("+NaN", None),
            ("", None),
            ("-", None),
            (".", None),
            ("1e", None),
            ("1.2.3", None),
            ("abc", None),
        ];
        for (s, want) in cases {
            let got = parse_float(s.as_bytes());
            match (got, want) {
                (Some(g), Some(w)) => {
                    assert_eq!(g.to_bits(), w.to_bits(), "{s}: {g} vs {w}")
                }
                (None, None) => {}
                _ => panic!("{s}: got {got:?}, want {want:?}"),
            }
        }
        assert!(parse_float(b"NaN").is_some_and(f64::is_nan));
        assert!(parse_float(b"nan").is_some_and(f64::is_nan));
    }

    #[test]
    fn fast_path_agrees_with_std() {
        // Clinger's fast path must round exactly like the full parser.
        for s in [
            "0.1",
            "0.3",
            "123.456",
            "900719925474.099",
            "1520879607.789",
            "0.000001",
            "999999999999999",
            "3.14159265358979",
        ] {
            let fast = parse_simple_decimal(s.as_bytes()).expect("fast path applies");
            let slow: f64 = s.parse().expect("valid");
            assert_eq!(fast.to_bits(), slow.to_bits(), "{s}");
        }
    }

    #[test]
    fn timestamps() {
        assert_eq!(text_timestamp(b"1700000000000"), Some(1_700_000_000_000));
        assert_eq!(text_timestamp(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(text_timestamp(b"9223372036854775808"), None);
        assert_eq!(text_timestamp(b"-5"), None);
        assert_eq!(text_timestamp(b"1.5"), None);
        assert_eq!(om_timestamp(b"1520879607.789"), Some(1_520_879_607_789));
        assert_eq!(om_timestamp(b"-1.5"), Some(-1500));
        assert_eq!(om_timestamp(b"1.0009"), Some(1000));
        assert_eq!(om_timestamp(b"NaN"), None);
        assert_eq!(om_timestamp(b"+Inf"), None);
        assert_eq!(om_timestamp(b"1e300"), None);
    }

    #[test]
    fn labels_with_separators_inside_values() {
        let s = one(r#"m{path="/a,b=c}",q="x\"y\\z\nw",} 1"#, Format::Text);
        assert_eq!(s.name, "m");
        assert_eq!(
            s.labels,
            vec![
                ("path".to_owned(), "/a,b=c}".to_owned()),
                ("q".to_owned(), "x\"y\\z\nw".to_owned())
            ]
        );
    }

    #[test]
    fn borrowed_when_unescaped() {
        let mut kinds = Vec::new();
        parse(br#"m{a="plain",b="esc\n"} 1"#, Format::Text, |s| {
            kinds.extend(s.labels.iter().map(|(_, v)| matches!(v, Cow::Borrowed(_))));
        })
        .expect("parses");
        assert_eq!(kinds, vec![true, false]);
    }

    #[test]
    fn error_positions_and_messages() {
        let e = err("ok 1\nm{a=\"x\\q\"} 1\n", Format::Text);
        assert_eq!((e.line, e.column), (2, 7));
        assert_eq!(e.kind, ErrorKind::InvalidEscape);
        assert_eq!(
            e.to_string(),
            "line 2, column 7: invalid escape sequence in label value (only \\\\, \\\" and \\n are allowed)"
        );
        let e = err("m{a=\"x} 1\n", Format::Text);
        assert_eq!(
            (e.line, e.column, e.kind),
            (1, 5, ErrorKind::UnterminatedLabelValue)
        );
        let e = err("m 1 2 3\n", Format::Text);
        assert_eq!((e.line, e.column), (1, 7));
        let e = err("m abc\n", Format::Text);
        assert_eq!(e.to_string(), "line 1, column 3: invalid value \"abc\"");
        let e = err("1m 1\n", Format::Text);
        assert_eq!(
            e.to_string(),
            "line 1, column 1: expected a metric name, found '1'"
        );
    }

    #[test]
    fn caps_reject_hostile_lines() {
        let long = format!("m{{a=\"{}\"}} 1\n", "x".repeat(MAX_LINE_BYTES));
        assert_eq!(err(&long, Format::Text).kind, ErrorKind::LineTooLong);
        let many: Vec<String> = (0..=MAX_LABELS).map(|i| format!("l{i}=\"v\"")).collect();
        let line = format!("m{{{}}} 1\n", many.join(","));
        assert_eq!(err(&line, Format::Text).kind, ErrorKind::TooManyLabels);
        let ok: Vec<String> = (0..MAX_LABELS).map(|i| format!("l{i}=\"v\"")).collect();
        let line = format!("m{{{}}} 1\n", ok.join(","));
        assert_eq!(one(&line, Format::Text).labels.len(), MAX_LABELS);
    }

    #[test]
    fn family_counting_follows_types() {
        let input = "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\n\
                     h_count 2\nu 1\nu 2\n# HELP g help\n# TYPE g gauge\ng 1\ng_sum 1\n";
        let summary = parse(input.as_bytes(), Format::Text, |_| {}).expect("parses");
        assert_eq!(summary.samples, 8);
        // h, u, g, and g_sum (a gauge owns no suffixes).
        assert_eq!(summary.families, 4);
        assert_eq!(summary.lines, 11);
    }

    #[test]
    fn help_unescaping() {
        let e =
            parse_owned_full(b"# HELP m a\\\\b\\nc\\\"d\\t\nm 1\n", Format::Text).expect("parses");
        assert_eq!(
            e.metadata,
            vec![OwnedMetadata::Help {
                family: "m".into(),
                text: "a\\b\nc\\\"d\\t".into()
            }]
        );
        let e = parse_owned_full(b"# HELP m a\\\"d\nm 1\n# EOF\n", Format::OpenMetrics)
            .expect("parses");
        assert_eq!(
            e.metadata,
            vec![OwnedMetadata::Help {
                family: "m".into(),
                text: "a\"d".into()
            }]
        );
    }
}
