//! Writing exposition text: Prometheus text format 0.0.4 and OpenMetrics 1.0, the two formats
//! the `/metrics` page is served in (see [`super::prometheus::negotiate`]). Owns the format
//! rules only (descriptor lines, counter names, label escaping, numbers, `# EOF`); what goes on
//! the page is the catalogue's ([`super::catalogue`]) and Sloth's ([`super::sloth`]).
//!
//! The two formats differ for counters: OpenMetrics names the family `x` in `# HELP`/`# TYPE`
//! and the sample `x_total`; text 0.0.4 names both `x_total` (a `# HELP x` there is help for a
//! family without samples, which `promtool check metrics` reports as "no help text" on
//! `x_total`). Everything else is written the same way in both.
//!
//! Cost: the page for 10,000 SLOs has ~340k samples, each with its SLO's whole label set, so
//! label sets are rendered once ([`render_label`]) and copied in with one `push_str` per sample.

use std::fmt::Write as _;

use crate::exposition::Format;

/// The type of a family, as written on its `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A value that goes up and down.
    Gauge,
    /// A count since start: exported as `<name>_total`.
    Counter,
}

impl Kind {
    /// The `# TYPE` keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        }
    }
}

/// Appends `name="value"` (comma-separated from what `out` holds) with the value escaped as
/// both formats require (`\\`, `\"`, `\n`).
pub fn render_label(out: &mut String, name: &str, value: &str) {
    if !out.is_empty() {
        out.push(',');
    }
    out.push_str(name);
    out.push_str("=\"");
    escape_into(out, value, true);
    out.push('"');
}

fn escape_into(out: &mut String, value: &str, quote: bool) {
    if !value.contains(['\\', '"', '\n']) {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' if quote => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A page being written in one format.
#[derive(Debug)]
pub struct PageWriter<'o> {
    out: &'o mut String,
    format: Format,
    /// The sample name of the family being written (`_total` added for counters).
    sample_name: String,
    kind: Kind,
}

impl<'o> PageWriter<'o> {
    /// A writer appending to `out`.
    pub fn new(out: &'o mut String, format: Format) -> PageWriter<'o> {
        PageWriter {
            out,
            format,
            sample_name: String::new(),
            kind: Kind::Gauge,
        }
    }

    /// Starts a family: its `# HELP` and `# TYPE` lines. `name` is the family name without
    /// `_total`; `help` must be one line.
    pub fn family(&mut self, name: &str, help: &str, kind: Kind) {
        self.kind = kind;
        self.sample_name.clear();
        self.sample_name.push_str(name);
        if kind == Kind::Counter {
            self.sample_name.push_str("_total");
        }
        let described = match (self.format, kind) {
            (Format::Text, Kind::Counter) => self.sample_name.as_str(),
            _ => name,
        };
        self.out.push_str("# HELP ");
        self.out.push_str(described);
        self.out.push(' ');
        // OpenMetrics escapes `"` in HELP too; text 0.0.4 only `\` and newlines.
        escape_into(self.out, help, self.format == Format::OpenMetrics);
        self.out.push_str("\n# TYPE ");
        self.out.push_str(described);
        self.out.push(' ');
        self.out.push_str(kind.keyword());
        self.out.push('\n');
    }

    /// One sample of the current family: `base` is a rendered label set (see
    /// [`render_label`], possibly empty), `extra` are appended to it. Non-finite values are
    /// the caller's to leave out.
    pub fn sample(&mut self, base: &str, extra: &[(&str, &str)], value: Value) {
        self.out.push_str(&self.sample_name);
        if !base.is_empty() || !extra.is_empty() {
            self.out.push('{');
            self.out.push_str(base);
            let mut first = base.is_empty();
            for (k, v) in extra {
                if !first {
                    self.out.push(',');
                }
                first = false;
                self.out.push_str(k);
                self.out.push_str("=\"");
                escape_into(self.out, v, true);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        // Writing to a String cannot fail.
        let _ = match value {
            Value::Gauge(v) => write!(self.out, "{v:?}"),
            Value::Count(n) => write!(self.out, "{n}"),
        };
        self.out.push('\n');
    }

    /// Ends the page (`# EOF` for OpenMetrics, nothing for text 0.0.4).
    pub fn finish(self) {
        if self.format == Format::OpenMetrics {
            self.out.push_str("# EOF\n");
        }
    }
}

/// A sample's value: a gauge's float or a counter's count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// A gauge value (finite).
    Gauge(f64),
    /// A counter value.
    Count(u64),
}

impl Value {
    /// The value as a float (counts above 2^53 round).
    pub fn as_f64(self) -> f64 {
        match self {
            Value::Gauge(v) => v,
            Value::Count(n) => n as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::parse_owned;

    fn page(format: Format) -> String {
        let mut out = String::new();
        let mut w = PageWriter::new(&mut out, format);
        w.family("a_events", "Events \"seen\" \\ here", Kind::Counter);
        let mut base = String::new();
        render_label(&mut base, "slo", "x\"y\nz\\");
        w.sample(&base, &[("result", "good")], Value::Count(3));
        w.sample("", &[], Value::Count(4));
        w.family("b_ratio", "A ratio", Kind::Gauge);
        w.sample("", &[("w", "5m")], Value::Gauge(0.995));
        w.sample(&base, &[], Value::Gauge(1e-7));
        w.finish();
        out
    }

    #[test]
    fn both_formats_parse_to_the_same_samples() {
        let text = page(Format::Text);
        assert!(text.contains("# HELP a_events_total Events \"seen\" \\\\ here\n"));
        assert!(text.contains("# TYPE a_events_total counter\n"));
        assert!(!text.contains("# EOF"));
        let om = page(Format::OpenMetrics);
        assert!(om.contains("# HELP a_events Events \\\"seen\\\" \\\\ here\n"));
        assert!(om.contains("# TYPE a_events counter\n"));
        assert!(om.ends_with("# EOF\n"));
        let t = parse_owned(text.as_bytes(), Format::Text).expect("valid text");
        let o = parse_owned(om.as_bytes(), Format::OpenMetrics).expect("valid OpenMetrics");
        assert_eq!(t, o);
        assert_eq!(t.len(), 4);
        assert_eq!(t[0].name, "a_events_total");
        assert_eq!(t[0].labels[0], ("slo".to_owned(), "x\"y\nz\\".to_owned()));
        assert_eq!(t[3].value, 1e-7);
    }
}
