//! The exposition parser against a corpus of tricky fixtures with hand-written expectations,
//! plus robustness: every truncation of every fixture. (Speed, including pathological inputs, is
//! measured in `benches/parse.rs`, never asserted in a timed test.)

use std::path::{Path, PathBuf};

use burnwatch::exposition::{
    ErrorKind, Format, Found, MetricType, OwnedExposition, OwnedMetadata, OwnedSample, ParseError,
    parse, parse_owned_full,
};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/exposition")
}

fn format_of(name: &str) -> Format {
    if name.ends_with(".om") {
        Format::OpenMetrics
    } else {
        Format::Text
    }
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(fixture_dir().join(name)).unwrap_or_else(|e| panic!("reading {name}: {e}"))
}

fn parse_fixture(name: &str) -> Result<OwnedExposition, ParseError> {
    parse_owned_full(&read(name), format_of(name))
}

fn s(name: &str, labels: &[(&str, &str)], value: f64, ts: Option<i64>) -> OwnedSample {
    OwnedSample {
        name: name.to_owned(),
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        value,
        timestamp_ms: ts,
    }
}

/// Compares samples exactly, values by bit pattern (so NaN equals NaN and -0 differs from 0).
fn assert_samples(name: &str, got: &[OwnedSample], want: &[OwnedSample]) {
    assert_eq!(got.len(), want.len(), "{name}: sample count\n{got:#?}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let same_value =
            g.value.to_bits() == w.value.to_bits() || (g.value.is_nan() && w.value.is_nan());
        assert!(
            g.name == w.name
                && g.labels == w.labels
                && g.timestamp_ms == w.timestamp_ms
                && same_value,
            "{name}: sample {i}\n got {g:?}\nwant {w:?}"
        );
    }
}

fn help(family: &str, text: &str) -> OwnedMetadata {
    OwnedMetadata::Help {
        family: family.into(),
        text: text.into(),
    }
}

fn ty(family: &str, kind: MetricType) -> OwnedMetadata {
    OwnedMetadata::Type {
        family: family.into(),
        kind,
    }
}

#[test]
fn text_tricky() {
    let e = parse_fixture("text-tricky.prom").expect("parses");
    let inf = f64::INFINITY;
    assert_samples(
        "text-tricky",
        &e.samples,
        &[
            s(
                "http_requests_total",
                &[("method", "GET"), ("path", "/a,b=c}")],
                1027.0,
                None,
            ),
            s(
                "http_requests_total",
                &[("method", "POST"), ("path", "/q\"uote\\back\nline")],
                3.0,
                None,
            ),
            s(
                "http_requests_total",
                &[("method", "PUT"), ("path", "/")],
                1_000_000.0,
                None,
            ),
            s("no_help_no_type", &[], 42.0, None),
            s("job:request_rate:5m", &[("team", "api")], 0.5, None),
            s("special", &[("v", "nan")], f64::NAN, None),
            s("special", &[("v", "pinf")], inf, None),
            s("special", &[("v", "ninf")], -inf, None),
            s("special", &[("v", "negzero")], -0.0, None),
            s("special", &[("v", "dot")], 0.5, None),
            s("special", &[("v", "big")], f64::MAX, None),
            s("special", &[("v", "tiny")], 0.0, None),
            s("special", &[("v", "plus")], 12.0, None),
            s("empty_value", &[("a", ""), ("b", "x")], 7.0, None),
            s("no_labels_braces", &[], 8.0, None),
            s("utf8", &[("city", "Zürich ✓")], 9.0, None),
            s("after_eof_comment", &[], 10.0, None),
        ],
    );
    assert_eq!(
        e.metadata,
        vec![
            help(
                "http_requests_total",
                "Requests served. Escapes: \\ and \n; \\t stays."
            ),
            ty("http_requests_total", MetricType::Counter),
        ]
    );
    assert_eq!(e.summary.samples, 17);
    assert_eq!(e.summary.families, 8);
    assert_eq!(e.summary.lines, 23);
}

#[test]
fn text_histogram_and_summary() {
    let e = parse_fixture("text-histogram-summary.prom").expect("parses");
    let a = [("service", "a")];
    assert_samples(
        "text-histogram-summary",
        &e.samples,
        &[
            s(
                "rpc_duration_seconds_bucket",
                &[("service", "a"), ("le", "0.05")],
                24054.0,
                None,
            ),
            s(
                "rpc_duration_seconds_bucket",
                &[("service", "a"), ("le", "0.1")],
                33444.0,
                None,
            ),
            s(
                "rpc_duration_seconds_bucket",
                &[("service", "a"), ("le", "0.5")],
                129_389.0,
                None,
            ),
            s(
                "rpc_duration_seconds_bucket",
                &[("service", "a"), ("le", "+Inf")],
                144_320.0,
                None,
            ),
            s("rpc_duration_seconds_sum", &a, 53423.25, None),
            s("rpc_duration_seconds_count", &a, 144_320.0, None),
            s("rpc_summary_seconds", &[("quantile", "0.5")], 0.0125, None),
            s(
                "rpc_summary_seconds",
                &[("quantile", "0.99")],
                0.078125,
                None,
            ),
            s("rpc_summary_seconds_sum", &[], 1500.0, None),
            s("rpc_summary_seconds_count", &[], 2693.0, None),
            s("legacy", &[], 1.0, None),
        ],
    );
    assert_eq!(
        e.metadata,
        vec![
            help("rpc_duration_seconds", "RPC latency."),
            ty("rpc_duration_seconds", MetricType::Histogram),
            help("rpc_summary_seconds", "RPC latency summary."),
            ty("rpc_summary_seconds", MetricType::Summary),
            ty("legacy", MetricType::Unknown),
        ]
    );
    assert_eq!(e.summary.families, 3);
}

#[test]
fn text_duplicates_are_passed_through() {
    let e = parse_fixture("text-duplicates.prom").expect("parses");
    assert_samples(
        "text-duplicates",
        &e.samples,
        &[
            s("dup", &[], 1.0, None),
            s("dup", &[], 2.0, None),
            s("dup", &[("x", "1")], 5.0, None),
            s("dup", &[("x", "1")], 6.0, None),
        ],
    );
    assert_eq!(e.summary.families, 1);
}

#[test]
fn text_without_final_newline() {
    let e = parse_fixture("text-no-final-newline.prom").expect("parses");
    assert_samples(
        "text-no-final-newline",
        &e.samples,
        &[s("no_final_newline", &[("a", "b")], 3.0, None)],
    );
}

#[test]
fn text_timestamps_are_integer_ms() {
    let e = parse_fixture("text-timestamps.prom").expect("parses");
    assert_samples(
        "text-timestamps",
        &e.samples,
        &[
            s("ts_metric", &[], 1.0, Some(1_700_000_000_000)),
            s("ts_metric", &[("a", "b")], 2.0, Some(1_700_000_000_123)),
            s("ts_zero", &[], 3.0, Some(0)),
        ],
    );
}

#[test]
fn openmetrics_tricky() {
    let e = parse_fixture("om-tricky.om").expect("parses");
    let inf = f64::INFINITY;
    assert_samples(
        "om-tricky",
        &e.samples,
        &[
            s("requests_total", &[("code", "200")], 1027.0, None),
            s("requests_created", &[("code", "200")], 1.6e9, None),
            s("temperature_celsius", &[("room", "a,b=}")], -3.5, None),
            s("latency_seconds_bucket", &[("le", "0.1")], 8.0, None),
            s("latency_seconds_bucket", &[("le", "+Inf")], 10.0, None),
            s("latency_seconds_sum", &[], 1.25, None),
            s("latency_seconds_count", &[], 10.0, None),
            s("queue_size_bucket", &[("le", "10")], 3.0, None),
            s("queue_size_bucket", &[("le", "+Inf")], 5.0, None),
            s("queue_size_gcount", &[], 5.0, None),
            s("queue_size_gsum", &[], 27.0, None),
            s(
                "build_info",
                &[("version", "1.2.3"), ("commit", "abc\"def")],
                1.0,
                None,
            ),
            s("feature", &[("feature", "a")], 1.0, None),
            s("feature", &[("feature", "b")], 0.0, None),
            s("rpc", &[("quantile", "0.9")], f64::NAN, None),
            s("rpc_sum", &[], 0.0, None),
            s("rpc_count", &[], 0.0, None),
            s("mystery", &[], inf, None),
            s("untyped_bare", &[], 0.001, None),
        ],
    );
    assert_eq!(
        e.metadata,
        vec![
            help(
                "requests",
                "Requests with a \"quoted\" help and a \\ backslash\n."
            ),
            ty("requests", MetricType::Counter),
            ty("temperature_celsius", MetricType::Gauge),
            OwnedMetadata::Unit {
                family: "temperature_celsius".into(),
                unit: "celsius".into()
            },
            ty("latency_seconds", MetricType::Histogram),
            ty("queue_size", MetricType::GaugeHistogram),
            ty("build", MetricType::Info),
            ty("feature", MetricType::StateSet),
            ty("rpc", MetricType::Summary),
            ty("mystery", MetricType::Unknown),
        ]
    );
    assert_eq!(e.summary.samples, 19);
    assert_eq!(e.summary.families, 9);
    assert_eq!(e.summary.exemplars_skipped, 2);
}

#[test]
fn openmetrics_timestamps_are_float_seconds() {
    let e = parse_fixture("om-timestamps.om").expect("parses");
    assert_samples(
        "om-timestamps",
        &e.samples,
        &[
            s("t", &[], 1.0, Some(1_520_879_607_789)),
            s("t", &[("a", "b")], 2.0, Some(-1500)),
            s("t", &[("a", "c")], 3.0, Some(1_000_000)),
            s("t_total", &[], 4.0, Some(0)),
        ],
    );
    assert_eq!(e.summary.exemplars_skipped, 1);
}

fn unexpected(expected: &'static str, found: Found) -> ErrorKind {
    ErrorKind::Unexpected { expected, found }
}

/// Every malformed fixture with the exact line, column and error it must produce.
fn malformed_expectations() -> Vec<(&'static str, u64, u64, ErrorKind)> {
    vec![
        ("bad-crlf.prom", 1, 5, ErrorKind::CarriageReturn),
        (
            "bad-unterminated.prom",
            2,
            5,
            ErrorKind::UnterminatedLabelValue,
        ),
        (
            "bad-hex-value.prom",
            1,
            3,
            ErrorKind::InvalidValue("0x1p3".into()),
        ),
        (
            "bad-garbage-after-timestamp.prom",
            1,
            7,
            unexpected("end of line after the timestamp", Found::Byte(b'3')),
        ),
        (
            "bad-label-name.prom",
            1,
            3,
            unexpected("a label name", Found::Byte(b'0')),
        ),
        (
            "bad-duplicate-label.prom",
            1,
            9,
            ErrorKind::DuplicateLabel("a".into()),
        ),
        (
            "bad-type-trailing-space.prom",
            1,
            10,
            ErrorKind::InvalidType("counter ".into()),
        ),
        (
            "bad-overflow.prom",
            1,
            3,
            ErrorKind::InvalidValue("1e400".into()),
        ),
        ("bad-om-missing-eof.om", 2, 1, ErrorKind::MissingEof),
        ("bad-om-data-after-eof.om", 3, 1, ErrorKind::DataAfterEof),
        (
            "bad-om-trailing-comma.om",
            1,
            9,
            unexpected("a label name", Found::Byte(b'}')),
        ),
        ("bad-om-empty-line.om", 2, 1, ErrorKind::EmptyLine),
        (
            "bad-om-exemplar-on-gauge.om",
            1,
            5,
            ErrorKind::ExemplarNotAllowed("m".into()),
        ),
        (
            "bad-om-unit.om",
            1,
            16,
            ErrorKind::UnitMismatch {
                unit: "seconds".into(),
                metric: "m_bytes".into(),
            },
        ),
        ("strict-unknown-escape.prom", 1, 7, ErrorKind::InvalidEscape),
        (
            "strict-missing-comma.prom",
            1,
            9,
            unexpected("',' or '}' after a label value", Found::Byte(b'b')),
        ),
    ]
}

#[test]
fn malformed_fixtures_are_rejected_with_positions() {
    let expectations = malformed_expectations();
    for (name, line, column, kind) in &expectations {
        let err = parse_fixture(name).expect_err(name);
        assert_eq!(
            (err.line, err.column, &err.kind),
            (*line, *column, kind),
            "{name}: {err}"
        );
        assert!(
            err.to_string()
                .starts_with(&format!("line {line}, column {column}: ")),
            "{err}"
        );
    }
    // Every bad-* and strict-* fixture is covered above.
    let mut on_disk: Vec<String> = fixture_names()
        .into_iter()
        .filter(|n| n.starts_with("bad-") || n.starts_with("strict-"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = expectations.iter().map(|e| e.0.to_owned()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
}

#[test]
fn more_malformed_lines() {
    let cases: &[(&str, Format, &str)] = &[
        (
            "m\n",
            Format::Text,
            "line 1, column 2: expected space or tab, found end of line",
        ),
        (
            "m{a=1} 1\n",
            Format::Text,
            "line 1, column 5: expected '\"' opening the label value, found '1'",
        ),
        (
            "m{a} 1\n",
            Format::Text,
            "line 1, column 4: expected '=' after the label name, found '}'",
        ),
        (
            "m{,} 1\n",
            Format::Text,
            "line 1, column 3: expected a label name, found ','",
        ),
        (
            "m{a=\"1\",,b=\"2\"} 1\n",
            Format::Text,
            "line 1, column 9: expected a label name, found ','",
        ),
        (
            "m{__name__=\"x\"} 1\n",
            Format::Text,
            "line 1, column 3: duplicate label name \"__name__\"",
        ),
        (
            "m{a=\"x\\\"} 1\n",
            Format::Text,
            "line 1, column 5: unterminated label value (missing closing quote)",
        ),
        (
            "m 1 -5\n",
            Format::Text,
            "line 1, column 5: invalid timestamp \"-5\"",
        ),
        (
            "m 1 1.5\n",
            Format::Text,
            "line 1, column 5: invalid timestamp \"1.5\"",
        ),
        (
            "m 1_000\n",
            Format::Text,
            "line 1, column 3: invalid value \"1_000\"",
        ),
        (
            "m +NaN\n",
            Format::Text,
            "line 1, column 3: invalid value \"+NaN\"",
        ),
        (
            "  m 1\n",
            Format::Text,
            "line 1, column 1: expected a metric name, found space",
        ),
        (
            "# TYPE m info\n",
            Format::Text,
            "line 1, column 10: invalid metric type \"info\"",
        ),
        (
            "# TYPE m untyped\n# EOF\n",
            Format::OpenMetrics,
            "line 1, column 10: invalid metric type \"untyped\"",
        ),
        (
            "# HELP m-x y\n",
            Format::Text,
            "line 1, column 9: expected space after the metric name, found '-'",
        ),
        (
            "# random\n# EOF\n",
            Format::OpenMetrics,
            "line 1, column 1: comment not allowed in OpenMetrics (only # HELP, # TYPE, # UNIT and # EOF)",
        ),
        (
            "m  1\n# EOF\n",
            Format::OpenMetrics,
            "line 1, column 3: expected a single space, found space",
        ),
        (
            "m\t1\n# EOF\n",
            Format::OpenMetrics,
            "line 1, column 2: expected a space, found tab",
        ),
        (
            "m 1 \n# EOF\n",
            Format::OpenMetrics,
            "line 1, column 5: expected a value, found end of line",
        ),
        (
            "m 1 NaN\n# EOF\n",
            Format::OpenMetrics,
            "line 1, column 5: invalid timestamp \"NaN\"",
        ),
        (
            "m_total 1 # {a=\"b\"}\n# EOF\n",
            Format::OpenMetrics,
            "line 1, column 20: expected a space, found end of line",
        ),
        (
            "m_total 1 # {a=\"b\"} 1 2 3\n# EOF\n",
            Format::OpenMetrics,
            "line 1, column 24: expected end of line after the exemplar, found space",
        ),
        (
            "m_total 1 #{} 1\n# EOF\n",
            Format::OpenMetrics,
            "line 1, column 11: expected an exemplar ('# {'), found '#'",
        ),
        (
            "",
            Format::OpenMetrics,
            "line 1, column 1: OpenMetrics data does not end with # EOF",
        ),
        (
            "# EOF\n\n",
            Format::OpenMetrics,
            "line 2, column 1: unexpected data after # EOF",
        ),
    ];
    for (input, format, want) in cases {
        let got = parse(input.as_bytes(), *format, |_| {})
            .expect_err(input)
            .to_string();
        assert_eq!(&got, want, "{input:?}");
    }
    // Byte-level hostile input: non-UTF-8 in a label value.
    let err = parse(b"m{a=\"\xff\"} 1\n", Format::Text, |_| {}).expect_err("invalid utf-8");
    assert_eq!(err.kind, ErrorKind::InvalidUtf8("label value"));
}

#[test]
fn accepted_edge_cases() {
    // `# EOF` alone, with or without its newline, is a valid empty OpenMetrics body.
    for body in ["# EOF", "# EOF\n"] {
        let summary = parse(body.as_bytes(), Format::OpenMetrics, |_| {}).expect(body);
        assert_eq!((summary.samples, summary.lines), (0, 1));
    }
    // An empty text body is valid and empty.
    assert_eq!(parse(b"", Format::Text, |_| {}).expect("empty").samples, 0);
    // Comments that merely look like metadata.
    let summary = parse(b"# HELPER x\n#\n# \n# TYPE\n", Format::Text, |_| {}).expect("comments");
    assert_eq!(summary.samples, 0);
}

fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixture_dir())
        .expect("fixture dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn every_truncation_of_every_fixture_parses_or_errors() {
    let mut prefixes = 0u64;
    for name in fixture_names() {
        let body = read(&name);
        for end in 0..=body.len() {
            for format in [Format::Text, Format::OpenMetrics] {
                let mut delivered = 0u64;
                let result = parse(&body[..end], format, |_| delivered += 1);
                if let Ok(summary) = result {
                    assert_eq!(summary.samples, delivered, "{name}[..{end}]");
                }
                prefixes += 1;
            }
        }
    }
    assert!(prefixes > 2000, "{prefixes}");
}

/// Label values are scanned 8 bytes at a time for the first 32 bytes and by memchr after: a
/// quote or escape at every offset across those boundaries must end or unescape the value
/// exactly where a byte-by-byte reading says.
#[test]
fn label_value_scan_finds_quotes_and_escapes_at_every_offset() {
    for len in 0..80usize {
        let plain: String = (0..len)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        for escape in ["", "\\\\", "\\\"", "\\n"] {
            let raw = format!("{}{escape}{}", &plain[..len / 2], &plain[len / 2..]);
            let want = format!(
                "{}{}{}",
                &plain[..len / 2],
                match escape {
                    "\\\\" => "\\",
                    "\\\"" => "\"",
                    "\\n" => "\n",
                    _ => "",
                },
                &plain[len / 2..]
            );
            let body = format!("m{{a=\"{raw}\",b=\"{plain}\"}} {len}\n");
            let got = parse_owned_full(body.as_bytes(), Format::Text).expect(&body);
            let labels = [("a", want.as_str()), ("b", plain.as_str())];
            assert_samples(&body, &got.samples, &[s("m", &labels, len as f64, None)]);
            // Unterminated at the same length: the error points at the opening quote.
            let cut = format!("m{{a=\"{raw}}} 1\n");
            let err = parse(cut.as_bytes(), Format::Text, |_| {}).expect_err(&cut);
            assert_eq!(
                (err.column, err.kind),
                (5, ErrorKind::UnterminatedLabelValue)
            );
        }
    }
}

/// A body that is not UTF-8 somewhere (here in a plain comment, which text format skips)
/// takes the per-token UTF-8 checks instead of the whole-body one: same results, and a bad
/// label value is still reported at its own position.
#[test]
fn bodies_with_non_utf8_bytes_outside_values() {
    let body = b"# comment \xff\xfe\nm{city=\"Z\xc3\xbcrich\",b=\"x\\\"y\"} 1.5 17\nn 2\n";
    let got = parse_owned_full(body, Format::Text).expect("non-UTF-8 comment is skipped");
    let want = [
        s("m", &[("city", "Zürich"), ("b", "x\"y")], 1.5, Some(17)),
        s("n", &[], 2.0, None),
    ];
    assert_samples("non-utf8 comment", &got.samples, &want);
    let err = parse(
        b"ok{a=\"\xc3\xbc\"} 1\nm{a=\"b\",c=\"\xc3\"} 1\n",
        Format::Text,
        |_| {},
    )
    .expect_err("truncated UTF-8 sequence in a value");
    assert_eq!(
        (err.line, err.column, err.kind),
        (2, 12, ErrorKind::InvalidUtf8("label value"))
    );
    let err = parse(b"m{a=\"\xc3\xbc\\n\xff\"} 1\n", Format::Text, |_| {})
        .expect_err("invalid byte after an escape");
    assert_eq!(
        (err.column, err.kind),
        (6, ErrorKind::InvalidUtf8("label value"))
    );
}
