//! The rules schema: from the span-aware YAML tree of one file to the validated model.
//!
//! It never stops at the first problem: every unknown key, wrong type, missing field and bad value
//! of the file is reported, each at the line and column of the offending key or value. The
//! generic walker ([`crate::schema`]: [`MapReader`] and the typed readers of [`Decoder`]) does
//! the reading; this module holds what only rules files have (documents, services, SLOs,
//! indicators, windows, alert tiers, probes, scrape targets). Checks that span files (duplicate
//! names, probe references) are done by [`crate::rules`] after every file has been decoded, from
//! the declarations collected here.

use std::sync::Arc;

use crate::rules::ServiceSummary;
use crate::rules::model::{
    AlertRule, Alerting, BudgetingMethod, BurnTier, CalendarUnit, DEFAULT_MAX_INSTANCES,
    DEFAULT_TIERS, FlapPolicy, Grouping, HttpProbe, Indicator, Labels, LatencySource,
    MAX_MAX_INSTANCES, NoDataPolicy, Objective, Percentile, Probe, ProbeAlert, ProbeKind,
    ProbeTrigger, QueryMode, RESERVED_LABELS, RatioNumerator, ScrapeTarget, Service, Slo, SloId,
    StatusRange, Window, burn_factor, default_tier,
};
use crate::rules::node::{Kind, Node, Pos};
use crate::rules::selector::Selector;
use crate::schema::decoder::{backticked, fmt_num};
use crate::time::{Dur, DurError};

// The walker lived here before it had its own module; receivers and the agent config still
// import it from this path.
pub(crate) use crate::schema::{Decoder, MapReader};

use crate::rules::file::{Decl, FileRules};

/// The only `version:` this decoder reads.
pub const VERSION: &str = "burnwatch/v1";
/// Prometheus client libraries' default histogram buckets, in seconds.
pub const PROMETHEUS_DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A bucket edge in seconds, printed as a duration when it is a whole number of milliseconds.
fn fmt_edge(secs: f64) -> String {
    let ms = secs * 1000.0;
    if ms >= 1.0 && (ms - ms.round()).abs() < 1e-6 && ms < 1e15 {
        Dur(ms.round() as u64).to_string()
    } else {
        format!("{}s", fmt_num(secs))
    }
}

/// Label names `group_by` cannot use besides [`RESERVED_LABELS`] (which every export series
/// of an SLO carries): the ones its alerts carry, which win over an instance's own value, and
/// `le`, which tells a histogram's buckets apart. Either way two instances would share their
/// series or alerts.
const GROUP_BY_RESERVED: [&str; 4] = ["alertname", "probe", "target", "le"];

fn valid_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_')
        && !s.starts_with("__")
}

/// The longest PromQL query accepted in a `query` indicator.
const MAX_QUERY_BYTES: usize = 16 << 10;

/// Why the `{{ ... }}` placeholders of a query are not all `{{.window}}`, if they are not.
fn placeholder_error(text: &str) -> Option<String> {
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let Some(close) = rest[open..].find("}}") else {
            return Some("has a `{{` without `}}`".to_owned());
        };
        let inner = rest[open + 2..open + close].trim();
        if inner != ".window" {
            return Some(format!(
                "has the placeholder `{{{{{inner}}}}}`; the only one burnwatch fills in is `{{{{.window}}}}`"
            ));
        }
        rest = &rest[open + close + 2..];
    }
    None
}

/// What an indicator decoded to, with what the method rules need to know about it.
struct IndicatorOut {
    indicator: Indicator,
    percentile: bool,
}

impl Decoder<'_, FileRules> {
    pub(crate) fn labels(&mut self, n: &Node, key: &str) -> Option<Labels> {
        self.name_map(
            n,
            key,
            "label",
            "a mapping of label names to values, e.g. {team: payments}",
        )
    }

    /// The name of generated alert rules: a Prometheus metric name, as an `alertname` is.
    pub(crate) fn alert_name(&mut self, n: &Node, key: &str) -> Option<String> {
        let name = self.string(n, key)?;
        let mut chars = name.chars();
        let ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
        if ok {
            Some(name)
        } else {
            self.error(
                n.pos(),
                format!(
                    "`{key}` `{name}` is not a valid alert name; use letters, digits, `_` and `:`, not starting with a digit (e.g. `CheckoutHighErrorRate`)"
                ),
            );
            None
        }
    }

    /// Alert annotations: a map whose names follow Prometheus's label-name rules, as
    /// Alertmanager's do.
    pub(crate) fn annotations(&mut self, n: &Node, key: &str) -> Option<Labels> {
        self.name_map(
            n,
            key,
            "annotation",
            "a mapping of annotation names to text, e.g. {summary: Checkout is failing}",
        )
    }

    fn name_map(&mut self, n: &Node, key: &str, what: &str, expected: &str) -> Option<Labels> {
        if matches!(n.kind(), Kind::Null) {
            return Some(Labels::new());
        }
        let Kind::Map(entries) = n.kind() else {
            self.type_error(n, key, expected);
            return None;
        };
        let mut out = Labels::new();
        let before = self.errors();
        for (k, v) in entries {
            let Some(name) = k.scalar_text() else {
                self.type_error(
                    k,
                    key,
                    &format!("{} {what} name", if what == "label" { "a" } else { "an" }),
                );
                continue;
            };
            if !valid_label_name(&name) {
                self.error(
                    k.pos(),
                    format!(
                        "{what} name `{name}` is not valid; use letters, digits and `_`, not starting with a digit or `__` (e.g. `{}`)",
                        if what == "label" { "team" } else { "summary" }
                    ),
                );
                continue;
            }
            if matches!(v.kind(), Kind::Null) {
                self.error(
                    v.pos(),
                    format!("{what} `{name}` has no value; write `{name}: value` or remove it"),
                );
                continue;
            }
            if let Some(val) = self.scalar(v, &name) {
                out.insert(name, val);
            }
        }
        (self.errors() == before).then_some(out)
    }

    pub(crate) fn objective(&mut self, n: &Node, key: &str) -> Option<Objective> {
        let p = self.percent_number(n, key)?;
        match Objective::from_percent(p) {
            Ok(o) => {
                if p < 50.0 {
                    let msg = if p <= 1.0 {
                        format!(
                            "objective {} means {}%; if you meant a ratio, write {}",
                            fmt_num(p),
                            fmt_num(p),
                            fmt_num(p * 100.0)
                        )
                    } else {
                        format!(
                            "objective {}% is below 50%, so most events may fail; objectives are percentages such as 99.9",
                            fmt_num(p)
                        )
                    };
                    self.warn(n.pos(), msg);
                }
                Some(o)
            }
            Err(e) => {
                self.error(n.pos(), e.to_string());
                None
            }
        }
    }

    /// A selector, with parse errors placed at their column inside the YAML scalar when it is
    /// written on one line.
    fn selector(&mut self, n: &Node, key: &str) -> Option<Arc<Selector>> {
        let text = self.string(n, key)?;
        match Selector::parse(&text) {
            Ok(s) => Some(Arc::new(s)),
            Err(e) => {
                let p = n.pos();
                let (pos, at) = match n.single_line_text_start(self.source) {
                    Some(start) => {
                        let chars = text.get(..e.offset).map_or(0, |s| s.chars().count());
                        let col = p.column.saturating_add(start).saturating_add(chars as u32);
                        (Pos::new(p.line, col), String::new())
                    }
                    None => (
                        p,
                        format!(" (at character {} of the selector)", e.offset + 1),
                    ),
                };
                self.error(pos, format!("`{key}`{at}: {}", e.message));
                None
            }
        }
    }

    /// PromQL for a query source: not parsed here (the backend parses it, and its dialects
    /// differ: Prometheus, Thanos, Mimir, VictoriaMetrics), only bounded and checked for the
    /// one placeholder burnwatch fills in, `{{.window}}`.
    fn promql(&mut self, n: &Node, key: &str) -> Option<String> {
        let text = self.string(n, key)?;
        let why = if text.trim().is_empty() {
            Some("is empty".to_owned())
        } else if text.len() > MAX_QUERY_BYTES {
            Some(format!("is longer than {MAX_QUERY_BYTES} bytes"))
        } else {
            placeholder_error(&text)
        };
        match why {
            Some(why) => {
                self.error(
                    n.pos(),
                    format!("`{key}` {why}; write PromQL such as `sum(rate(http_requests_total{{code=~\"5..\"}}[{{{{.window}}}}]))` or a counter selector"),
                );
                None
            }
            None => Some(text),
        }
    }

    fn probe_ref(&mut self, n: &Node, key: &str) -> Option<String> {
        let name = self.name(n, key)?;
        self.out.probe_refs.push(Decl {
            name: name.clone(),
            pos: n.pos(),
        });
        Some(name)
    }

    // ---- schema ----

    /// Records a service name where it is declared (checked for uniqueness across the files).
    pub(crate) fn declare_service(&mut self, name: &str, pos: Pos) {
        self.out.service_decls.push(Decl {
            name: name.to_owned(),
            pos,
        });
    }

    /// Adds a service that decoded without errors, with the probes and targets of its document.
    pub(crate) fn add_service(
        &mut self,
        service: Service,
        probes: Vec<Probe>,
        scrapes: Vec<ScrapeTarget>,
    ) {
        self.out.summaries.push(ServiceSummary {
            service: service.name.clone(),
            slos: service.slos.len(),
            grouped: service.slos.iter().filter(|s| s.is_template()).count(),
            probes: probes.len(),
            scrapes: scrapes.len(),
            queries: service
                .slos
                .iter()
                .filter(|s| s.indicator.query_source().is_some())
                .count(),
            spec: service.spec,
        });
        self.out.probes.extend(probes);
        self.out.scrapes.extend(scrapes);
        self.out.services.push(service);
    }

    /// One `version: burnwatch/v1` document (any document that names no other spec).
    pub(crate) fn burnwatch_document(&mut self, doc: &Node) {
        const KEYS: &[&str] = &[
            "version",
            "service",
            "labels",
            "owner",
            "runbook",
            "dashboard",
            "probes",
            "scrape",
            "slos",
        ];
        let before = self.errors();
        let Some(m) = MapReader::new(self, doc, "a rules document", KEYS) else {
            return;
        };
        if let Some(v) = m.req(self, "version", VERSION, Decoder::scalar)
            && v != VERSION
        {
            let pos = m.get("version").map_or(m.pos, Node::pos);
            self.error(
                pos,
                format!(
                    "unknown version `{v}`; write `version: {VERSION}` (or `{}` for a Sloth file)",
                    crate::rules::model::Spec::SlothPrometheus.as_str()
                ),
            );
        }
        let name = m.req(self, "service", "checkout", Decoder::name);
        if let (Some(name), Some(n)) = (&name, m.get("service")) {
            self.declare_service(name, n.pos());
        }
        let labels = m.opt(self, "labels", Decoder::labels).unwrap_or_default();
        let owner = m.opt(self, "owner", Decoder::scalar);
        let runbook = m.opt(self, "runbook", Decoder::url);
        let dashboard = m.opt(self, "dashboard", Decoder::url);

        // A document without a valid name has errors and is dropped whole below.
        let service_name = name.clone().unwrap_or_default();
        let mut probes = Vec::new();
        if let Some(items) = m.opt(self, "probes", Decoder::list) {
            for item in items {
                if let Some(p) = self.probe(item, &service_name) {
                    probes.push(p);
                }
            }
        }
        let mut scrapes = Vec::new();
        if let Some(items) = m.opt(self, "scrape", Decoder::list) {
            for item in items {
                if let Some(s) = self.scrape(item, &service_name) {
                    scrapes.push(s);
                }
            }
        }
        let mut slos = Vec::new();
        // A document of probes or scrape targets only (those a Sloth file's SLOs read, say)
        // needs no SLOs; any other needs at least one.
        let collects = !probes.is_empty() || !scrapes.is_empty();
        let items = if collects {
            m.opt(self, "slos", Decoder::list)
        } else {
            m.req(self, "slos", "[...]", Decoder::list)
        };
        if let Some(items) = items {
            if items.is_empty() && !collects {
                let pos = m.get("slos").map_or(m.pos, Node::pos);
                self.error(
                    pos,
                    "`slos` is empty; declare at least one SLO with `name`, `objective` and `indicator`",
                );
            }
            // Names are compared as written, even in SLOs that have other errors.
            // A map, not a list: a service may hold tens of thousands of SLOs.
            let mut seen: std::collections::HashMap<&str, Pos> =
                std::collections::HashMap::with_capacity(items.len());
            for item in items {
                let written = match item.kind() {
                    Kind::Map(e) => e
                        .iter()
                        .find(|(k, _)| k.as_str() == Some("name"))
                        .and_then(|(_, v)| v.as_str().map(|s| (s, v.pos()))),
                    _ => None,
                };
                if let Some((n, pos)) = written {
                    if let Some(first) = seen.get(n) {
                        self.error(
                            pos,
                            format!(
                                "SLO `{n}` is declared twice in service `{service_name}` (first at line {}); give each SLO its own name",
                                first.line
                            ),
                        );
                    }
                    seen.entry(n).or_insert(pos);
                }
                if let Some(slo) = self.slo(item, &service_name, &labels) {
                    slos.push(slo);
                }
            }
        }
        if self.errors() > before {
            return;
        }
        let Some(name) = name else { return };
        let service = Service {
            file: self.file.to_path_buf(),
            name,
            labels,
            owner,
            runbook,
            dashboard,
            slos,
            spec: crate::rules::model::Spec::Burnwatch,
        };
        self.add_service(service, probes, scrapes);
    }

    /// Interval and timeout of a probe or scrape target: default timeout is 10s, or 90% of
    /// shorter intervals so it stays below the interval.
    fn interval_timeout(&mut self, m: &MapReader<'_>) -> Option<(Dur, Dur)> {
        let interval = match m.get("interval") {
            Some(n) => {
                let d = self.dur(n, "interval")?;
                if d < Dur::SECOND {
                    self.error(
                        n.pos(),
                        format!("`interval` {d} is shorter than one second; write at least 1s"),
                    );
                    return None;
                }
                d
            }
            None => Dur::from_secs(30),
        };
        let timeout = match m.get("timeout") {
            Some(n) => {
                let t = self.pos_dur(n, "timeout")?;
                if t >= interval {
                    self.error(
                        n.pos(),
                        format!(
                            "`timeout` {t} is not shorter than `interval` {interval}; write a timeout below {interval}, e.g. {}",
                            Dur(interval.millis() / 2)
                        ),
                    );
                    return None;
                }
                t
            }
            None if interval > Dur::from_secs(10) => Dur::from_secs(10),
            None => Dur(interval.millis() * 9 / 10),
        };
        Some((interval, timeout))
    }

    fn probe(&mut self, node: &Node, service: &str) -> Option<Probe> {
        const KEYS: &[&str] = &[
            "name",
            "http",
            "tcp",
            "dns",
            "interval",
            "timeout",
            "labels",
            "depends_on",
            "alert",
        ];
        let before = self.errors();
        let m = MapReader::new(self, node, "a probe", KEYS)?;
        let name = m.req(self, "name", "checkout-health", Decoder::name);
        if let (Some(name), Some(n)) = (&name, m.get("name")) {
            self.out.probe_decls.push(Decl {
                name: name.clone(),
                pos: n.pos(),
            });
        }
        let kind = match m.exactly_one(self, &["http", "tcp", "dns"]) {
            Some("http") => m.opt(self, "http", |d, n, _| d.http(n)),
            Some("tcp") => m.opt(self, "tcp", |d, n, _| d.tcp(n)),
            Some(_) => m.opt(self, "dns", |d, n, _| d.dns(n)),
            None => None,
        };
        let times = self.interval_timeout(&m);
        let labels = m.opt(self, "labels", Decoder::labels).unwrap_or_default();
        let mut depends_on = Vec::new();
        if let Some(items) = m.opt(self, "depends_on", Decoder::list) {
            for item in items {
                if let Some(dep) = self.probe_ref(item, "depends_on") {
                    if Some(&dep) == name.as_ref() {
                        self.error(
                            item.pos(),
                            format!("probe `{dep}` depends on itself; remove it from `depends_on`"),
                        );
                    }
                    depends_on.push(dep);
                }
            }
        }
        let alert = match m.get("alert") {
            Some(n) => self.probe_alert(n),
            None => Some(Some(ProbeAlert::default())),
        };
        if self.errors() > before {
            return None;
        }
        let (interval, timeout) = times?;
        Some(Probe {
            file: self.file.to_path_buf(),
            name: name?,
            service: service.to_owned(),
            kind: kind?,
            interval,
            timeout,
            labels,
            depends_on,
            alert: alert?,
        })
    }

    fn http(&mut self, node: &Node) -> Option<ProbeKind> {
        const KEYS: &[&str] = &[
            "url",
            "method",
            "headers",
            "body",
            "expect_status",
            "body_matches",
            "body_not_matches",
            "follow_redirects",
            "tls_verify",
            "ca_file",
        ];
        const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
        let before = self.errors();
        let m = MapReader::new(self, node, "an http probe", KEYS)?;
        let url = m.req(self, "url", "https://host.example/healthz", Decoder::url);
        let method = m
            .opt(self, "method", |d, n, k| {
                let s = d.scalar(n, k)?;
                let up = s.to_ascii_uppercase();
                if METHODS.contains(&up.as_str()) {
                    Some(up)
                } else {
                    d.error(
                        n.pos(),
                        format!(
                            "`method: {s}` is not allowed; write one of {}",
                            backticked(METHODS)
                        ),
                    );
                    None
                }
            })
            .unwrap_or_else(|| "GET".to_owned());
        let mut headers = std::collections::BTreeMap::new();
        if let Some(h) = m.get("headers") {
            match h.kind() {
                Kind::Map(entries) => {
                    for (k, v) in entries {
                        let Some(hn) = self.scalar(k, "headers") else {
                            continue;
                        };
                        if hn.is_empty() || !hn.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
                            self.error(
                                k.pos(),
                                format!(
                                    "header name `{hn}` is not valid; write a name such as `Accept` (no spaces or `:`)"
                                ),
                            );
                            continue;
                        }
                        if let Some(hv) = self.scalar(v, &hn) {
                            if hv.contains(['\r', '\n']) {
                                self.error(
                                    v.pos(),
                                    format!(
                                        "header `{hn}` contains a line break; write the value on one line"
                                    ),
                                );
                                continue;
                            }
                            headers.insert(hn, hv);
                        }
                    }
                }
                Kind::Null => {}
                _ => self.type_error(h, "headers", "a mapping of header names to values"),
            }
        }
        let body = match m.get("body") {
            Some(n) if matches!(n.kind(), Kind::Null) => None,
            Some(n) => self.string(n, "body"),
            None => None,
        };
        let expect_status = match m.get("expect_status") {
            Some(n) => self.statuses(n).unwrap_or_default(),
            None => vec![StatusRange { lo: 200, hi: 299 }],
        };
        let body_matches = m.opt(self, "body_matches", Decoder::regex);
        let body_not_matches = m.opt(self, "body_not_matches", Decoder::regex);
        let follow_redirects = m
            .opt(self, "follow_redirects", Decoder::bool)
            .unwrap_or(true);
        let tls_verify = m.opt(self, "tls_verify", Decoder::bool).unwrap_or(true);
        let ca_file = m.opt(self, "ca_file", Decoder::string).map(Into::into);
        if self.errors() > before {
            return None;
        }
        Some(ProbeKind::Http(HttpProbe {
            url: url?,
            method,
            headers,
            body,
            expect_status,
            body_matches,
            body_not_matches,
            follow_redirects,
            tls_verify,
            ca_file,
        }))
    }

    fn statuses(&mut self, n: &Node) -> Option<Vec<StatusRange>> {
        let items: Vec<&Node> = match n.kind() {
            Kind::Seq(items) => items.iter().collect(),
            Kind::Int(_) | Kind::Str(_) => vec![n],
            _ => {
                self.type_error(
                    n,
                    "expect_status",
                    "a list of status codes such as [200, \"200-299\"]",
                );
                return None;
            }
        };
        if items.is_empty() {
            self.error(
                n.pos(),
                "`expect_status` is empty; list the accepted codes, e.g. [\"200-299\"]",
            );
            return None;
        }
        let before = self.errors();
        let mut out = Vec::new();
        for item in items {
            let code = |s: &str| {
                s.trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|c| (100..=599).contains(c))
            };
            let range = match item.kind() {
                Kind::Int(i) => u16::try_from(*i)
                    .ok()
                    .filter(|c| (100..=599).contains(c))
                    .map(|c| StatusRange { lo: c, hi: c }),
                Kind::Str(s) => {
                    let t = s.trim();
                    if let Some((a, b)) = t.split_once('-') {
                        match (code(a), code(b)) {
                            (Some(lo), Some(hi)) if lo <= hi => Some(StatusRange { lo, hi }),
                            _ => None,
                        }
                    } else if t.len() == 3 && t.ends_with("xx") {
                        code(&format!("{}00", &t[..1])).map(|lo| StatusRange { lo, hi: lo + 99 })
                    } else {
                        code(t).map(|c| StatusRange { lo: c, hi: c })
                    }
                }
                _ => None,
            };
            match range {
                Some(r) => out.push(r),
                None => self.error(
                    item.pos(),
                    format!(
                        "status `{}` is not valid; write a code from 100 to 599 such as 200, or a range such as \"200-299\"",
                        item.scalar_text().unwrap_or_default()
                    ),
                ),
            }
        }
        (self.errors() == before).then_some(out)
    }

    fn tcp(&mut self, node: &Node) -> Option<ProbeKind> {
        let before = self.errors();
        let m = MapReader::new(self, node, "a tcp probe", &["address", "send", "expect"])?;
        let address = m.req(self, "address", "\"db.internal:5432\"", |d, n, k| {
            let a = d.scalar(n, k)?;
            let ok = a.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
            });
            if ok {
                Some(a)
            } else {
                d.error(
                    n.pos(),
                    format!(
                        "`address` `{a}` is not host:port; write for example \"db.internal:5432\""
                    ),
                );
                None
            }
        });
        let send = m.opt(self, "send", Decoder::string);
        let expect = m.opt(self, "expect", Decoder::regex);
        if self.errors() > before {
            return None;
        }
        Some(ProbeKind::Tcp {
            address: address?,
            send,
            expect,
        })
    }

    fn dns(&mut self, node: &Node) -> Option<ProbeKind> {
        let before = self.errors();
        let m = MapReader::new(self, node, "a dns probe", &["name", "record"])?;
        let name = m.req(self, "name", "checkout.internal", |d, n, k| {
            let s = d.string(n, k)?;
            let ok = !s.is_empty()
                && s.len() <= 253
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
            if ok {
                Some(s)
            } else {
                d.error(
                    n.pos(),
                    format!("`name` `{s}` is not a host name; write one such as checkout.internal"),
                );
                None
            }
        });
        let record = m
            .opt(self, "record", |d, n, k| d.choice(n, k, &["A", "AAAA"]))
            .unwrap_or("A");
        if self.errors() > before {
            return None;
        }
        Some(ProbeKind::Dns {
            name: name?,
            record: record.to_owned(),
        })
    }

    fn scrape(&mut self, node: &Node, service: &str) -> Option<ScrapeTarget> {
        const KEYS: &[&str] = &[
            "name",
            "url",
            "interval",
            "timeout",
            "body_limit",
            "sample_limit",
            "labels",
            "alert",
        ];
        let before = self.errors();
        let m = MapReader::new(self, node, "a scrape target", KEYS)?;
        let name = m.req(self, "name", "checkout-app", Decoder::name);
        if let (Some(name), Some(n)) = (&name, m.get("name")) {
            self.out.scrape_decls.push(Decl {
                name: name.clone(),
                pos: n.pos(),
            });
        }
        let url = m.req(
            self,
            "url",
            "http://host.example:9100/metrics",
            Decoder::url,
        );
        let times = self.interval_timeout(&m);
        let body_limit = m
            .opt(self, "body_limit", |d, n, _| d.bytes(n))
            .unwrap_or(10 * 1024 * 1024);
        let sample_limit = m
            .opt(self, "sample_limit", |d, n, k| {
                let v = d.uint(n, k)?;
                if v == 0 {
                    d.error(
                        n.pos(),
                        "`sample_limit` must be at least 1; write e.g. 50000",
                    );
                    return None;
                }
                Some(v)
            })
            .unwrap_or(50_000);
        let labels = m.opt(self, "labels", Decoder::labels).unwrap_or_default();
        let alert = match m.get("alert") {
            Some(n) => self.alert_rule(n, "alert", AlertRule::target_down_default(), true),
            None => Some((
                Some(AlertRule::target_down_default()),
                Some(FlapPolicy::default()),
            )),
        };
        if self.errors() > before {
            return None;
        }
        let (interval, timeout) = times?;
        let (alert, flap) = alert?;
        Some(ScrapeTarget {
            file: self.file.to_path_buf(),
            name: name?,
            service: service.to_owned(),
            url: url?,
            interval,
            timeout,
            body_limit,
            sample_limit,
            labels,
            alert,
            flap,
        })
    }

    /// A byte size: an integer or a number with KiB/MiB/GiB/KB/MB/GB/B.
    fn bytes(&mut self, n: &Node) -> Option<u64> {
        let parsed = match n.kind() {
            Kind::Int(i) if *i > 0 => Some(*i as u64),
            Kind::Str(s) => {
                let t = s.trim();
                let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
                let (num, unit) = t.split_at(split);
                let mult: Option<u64> = match unit.trim() {
                    "" | "B" => Some(1),
                    "KiB" => Some(1 << 10),
                    "MiB" => Some(1 << 20),
                    "GiB" => Some(1 << 30),
                    "KB" | "kB" => Some(1_000),
                    "MB" => Some(1_000_000),
                    "GB" => Some(1_000_000_000),
                    _ => None,
                };
                num.parse::<u64>()
                    .ok()
                    .zip(mult)
                    .and_then(|(a, b)| a.checked_mul(b))
                    .filter(|v| *v > 0)
            }
            _ => None,
        };
        if parsed.is_none() {
            self.error(
                n.pos(),
                format!(
                    "`body_limit` `{}` is not a size; write bytes or a size such as 10MiB (units KiB, MiB, GiB, KB, MB, GB)",
                    n.scalar_text().unwrap_or_default()
                ),
            );
        }
        parsed
    }

    fn window(&mut self, n: &Node, key: &str) -> Option<Window> {
        let text = n.scalar_text().unwrap_or_default();
        let unit = match text.as_str() {
            "month" => Some(CalendarUnit::Month),
            "week" => Some(CalendarUnit::Week),
            "quarter" => Some(CalendarUnit::Quarter),
            _ => None,
        };
        if let Some(unit) = unit {
            return Some(Window::Calendar {
                unit,
                tz: jiff::tz::TimeZone::UTC,
                tz_name: "UTC".to_owned(),
            });
        }
        if let Kind::Str(s) = n.kind()
            && let Err(DurError::UnknownUnit { unit, .. }) = Dur::parse(s)
            && matches!(
                unit.to_ascii_lowercase().as_str(),
                "mo" | "mon" | "mth" | "month" | "months" | "mos"
            )
        {
            self.error(
                n.pos(),
                format!(
                    "`window: {s}` is not a duration; for a calendar month write `window: month`, for 30 days `30d`"
                ),
            );
            return None;
        }
        let d = self.minutes(n, key)?;
        if d == Dur::MINUTE {
            self.warn(
                n.pos(),
                "window 1m is one minute; for a calendar month write `window: month`, for 30 days `30d`",
            );
        } else if d < Dur::DAY {
            self.warn(
                n.pos(),
                format!(
                    "window {d} is shorter than a day, so the error budget resets quickly; SLO windows are usually 7d, 28d or 30d"
                ),
            );
        }
        Some(Window::Rolling(d))
    }

    fn slo(&mut self, node: &Node, service: &str, svc_labels: &Labels) -> Option<Slo> {
        const KEYS: &[&str] = &[
            "name",
            "description",
            "objective",
            "window",
            "time_zone",
            "method",
            "timeslice",
            "timeslice_target",
            "no_data",
            "labels",
            "indicator",
            "alerting",
            "group_by",
            "max_instances",
        ];
        let before = self.errors();
        let m = MapReader::new(self, node, "an SLO", KEYS)?;
        let name = m.req(self, "name", "availability", Decoder::name);
        let description = m.opt(self, "description", Decoder::scalar);
        let objective = m.req(self, "objective", "99.9", Decoder::objective);
        let mut window = m.opt(self, "window", Decoder::window).or_else(|| {
            m.get("window")
                .is_none()
                .then_some(Window::Rolling(Dur::from_days(30)))
        });
        if let Some(tzn) = m.get("time_zone") {
            match window.as_mut() {
                Some(Window::Calendar { tz, tz_name, .. }) => {
                    if let Some(s) = self.string(tzn, "time_zone") {
                        match jiff::tz::TimeZone::get(&s) {
                            Ok(z) => {
                                *tz = z;
                                *tz_name = s;
                            }
                            Err(_) => self.error(
                                tzn.pos(),
                                format!(
                                    "unknown time zone `{s}`; write an IANA name such as Europe/Berlin, America/New_York or UTC"
                                ),
                            ),
                        }
                    }
                }
                Some(Window::Rolling(d)) => {
                    let d = *d;
                    let pos = m.key_pos("time_zone").unwrap_or(m.pos);
                    self.error(
                        pos,
                        format!(
                            "`time_zone` only applies to calendar windows, but the window is a rolling {d}; remove it, or write `window: month` (or week, quarter)"
                        ),
                    );
                }
                None => {}
            }
        }
        let method = m.opt(self, "method", |d, n, k| {
            d.choice(n, k, &["occurrences", "timeslices"])
        });
        let no_data = m
            .opt(self, "no_data", |d, n, k| {
                d.choice(n, k, &["ignore", "good", "bad"])
            })
            .map(|c| match c {
                "good" => NoDataPolicy::Good,
                "bad" => NoDataPolicy::Bad,
                _ => NoDataPolicy::Ignore,
            })
            .unwrap_or_default();
        let mut labels = svc_labels.clone();
        if let Some(own) = m.opt(self, "labels", Decoder::labels) {
            labels.extend(own);
        }
        let indicator = m.req(
            self,
            "indicator",
            "{ratio: {good: ..., total: ...}}",
            |d, n, _| d.indicator(n),
        );

        // Method rules: percentiles are judged per slice, so they imply timeslices.
        // Judged from what is written, so the method rules are checked even when the indicator
        // itself has errors.
        let percentile = indicator.as_ref().map_or_else(
            || {
                m.get("indicator")
                    .and_then(|n| match n.kind() {
                        Kind::Map(e) => Some(e),
                        _ => None,
                    })
                    .is_some_and(|e| {
                        e.iter()
                            .any(|(k, _)| k.as_str() == Some("latency_percentile"))
                    })
            },
            |i| i.percentile,
        );
        let timeslices = match method {
            Some("timeslices") => true,
            Some(_) => {
                if percentile {
                    let pos = m.get("method").map_or(m.pos, Node::pos);
                    self.error(
                        pos,
                        "`method: occurrences` does not work with `latency_percentile`, which is judged per time slice; write `method: timeslices` or remove `method`",
                    );
                }
                false
            }
            None => percentile,
        };
        let slice = match m.get("timeslice") {
            Some(n) if !timeslices => {
                let pos = m.key_pos("timeslice").unwrap_or(n.pos());
                self.error(
                    pos,
                    "`timeslice` needs `method: timeslices`; add it or remove `timeslice`",
                );
                None
            }
            Some(n) => self.timeslice(n, window.as_ref()),
            None => Some(Dur::MINUTE),
        };
        let target = match m.get("timeslice_target") {
            Some(n) if !timeslices => {
                let pos = m.key_pos("timeslice_target").unwrap_or(n.pos());
                self.error(
                    pos,
                    "`timeslice_target` needs `method: timeslices`; add it or remove `timeslice_target`",
                );
                None
            }
            Some(n) if percentile => {
                let pos = m.key_pos("timeslice_target").unwrap_or(n.pos());
                self.error(
                    pos,
                    "`timeslice_target` does not apply to `latency_percentile` (the percentile decides each slice); remove it",
                );
                None
            }
            Some(n) => self.fraction(n, "timeslice_target"),
            None if percentile => Some(1.0),
            None => objective.map(Objective::ratio),
        };
        let group = self.grouping(&m, indicator.as_ref().map(|i| &i.indicator), &labels);
        let alerting = match (m.get("alerting"), window.as_ref()) {
            (Some(n), Some(w)) => self.alerting(n, w),
            (None, Some(w)) => Some(Alerting {
                tiers: crate::rules::model::default_tiers(w),
                ..Alerting::default()
            }),
            (_, None) => None,
        };
        if self.errors() > before {
            return None;
        }
        let method = if timeslices {
            BudgetingMethod::Timeslices {
                slice: slice?,
                target: target?,
            }
        } else {
            BudgetingMethod::Occurrences
        };
        let slo = Slo {
            id: SloId {
                service: service.to_owned(),
                slo: name?,
            },
            description,
            labels,
            objective: objective?,
            window: window.take()?,
            method,
            indicator: indicator?.indicator,
            alerting: alerting?,
            no_data,
            group: group?,
        };
        Some(slo)
    }

    /// `group_by` and `max_instances` of an SLO (`Some(None)` when it is not grouped, `None` on
    /// an error, which is reported).
    fn grouping(
        &mut self,
        m: &MapReader<'_>,
        indicator: Option<&Indicator>,
        labels: &Labels,
    ) -> Option<Option<Grouping>> {
        let max = m.opt(self, "max_instances", Decoder::uint);
        let Some(node) = m.get("group_by") else {
            if m.get("max_instances").is_some() {
                let pos = m.key_pos("max_instances").unwrap_or(m.pos);
                self.error(
                    pos,
                    "`max_instances` only applies to a grouped SLO; add `group_by: [label]` or remove it",
                );
                return None;
            }
            return Some(None);
        };
        let before = self.errors();
        let items = self.list(node, "group_by")?;
        if items.is_empty() {
            self.error(
                node.pos(),
                "`group_by` is empty; list the labels whose values make one SLO each, e.g. `group_by: [route]`, or remove it",
            );
        }
        let mut by: Vec<String> = Vec::new();
        for item in items {
            let Some(name) = self.string(item, "group_by") else {
                continue;
            };
            if !valid_label_name(&name) {
                self.error(
                    item.pos(),
                    format!(
                        "`group_by` label `{name}` is not a valid label name; use letters, digits and `_`, not starting with a digit or `__` (e.g. `route`)"
                    ),
                );
            } else if RESERVED_LABELS.contains(&name.as_str())
                || GROUP_BY_RESERVED.contains(&name.as_str())
            {
                self.error(
                    item.pos(),
                    format!(
                        "`group_by` label `{name}` is a name burnwatch puts on every series or alert of an SLO, so the instances could not be told apart; group by the label of the data (relabel it on the target if its name is `{name}`)"
                    ),
                );
            } else if labels.contains_key(&name) {
                self.error(
                    item.pos(),
                    format!(
                        "`group_by` label `{name}` is also one of the SLO's (or its service's) `labels`, so every instance would carry two values for it; remove it from `labels`"
                    ),
                );
            } else if by.contains(&name) {
                self.error(item.pos(), format!("`group_by` lists `{name}` twice"));
            } else {
                by.push(name);
            }
        }
        match indicator {
            Some(i) if i.selectors().is_empty() => {
                self.error(
                    node.pos(),
                    "`group_by` needs an indicator read from scraped series (`ratio`, or a latency `histogram`); a probe is one target, so it has no label values to group by, and a `query` is summed by its PromQL (write one SLO per label value, or `sum by` in a `ratio`)",
                );
            }
            _ => {}
        }
        let max_instances = match max {
            Some(0) => {
                let pos = m.get("max_instances").map_or(m.pos, Node::pos);
                self.error(pos, "`max_instances` must be at least 1");
                None
            }
            Some(n) if n > u64::from(MAX_MAX_INSTANCES) => {
                let pos = m.get("max_instances").map_or(m.pos, Node::pos);
                self.error(
                    pos,
                    format!(
                        "`max_instances` {n} is over the limit of {MAX_MAX_INSTANCES}; each instance is a whole SLO, so split the rule (e.g. by a selector per namespace)"
                    ),
                );
                None
            }
            Some(n) => u32::try_from(n).ok(),
            None if m.get("max_instances").is_some() => None,
            None => Some(DEFAULT_MAX_INSTANCES),
        };
        if self.errors() > before {
            return None;
        }
        Some(Some(Grouping::Template {
            by,
            max_instances: max_instances?,
        }))
    }

    fn timeslice(&mut self, n: &Node, window: Option<&Window>) -> Option<Dur> {
        let d = self.pos_dur(n, "timeslice")?;
        if d < Dur::SECOND || !Dur::HOUR.millis().is_multiple_of(d.millis()) {
            self.error(
                n.pos(),
                format!(
                    "timeslice {d} does not divide one hour evenly; write a slice such as 10s, 30s, 1m, 5m, 10m or 15m"
                ),
            );
            return None;
        }
        if let Some(Window::Rolling(w)) = window
            && w.millis() % d.millis() != 0
        {
            self.error(
                n.pos(),
                format!(
                    "timeslice {d} does not divide the {w} window evenly; write a slice that does, such as 1m"
                ),
            );
            return None;
        }
        Some(d)
    }

    fn indicator(&mut self, node: &Node) -> Option<IndicatorOut> {
        const KINDS: &[&str] = &[
            "ratio",
            "query",
            "probe",
            "latency_threshold",
            "latency_percentile",
        ];
        let m = MapReader::new(self, node, "the indicator", KINDS)?;
        let which = m.exactly_one(self, KINDS)?;
        let n = m.get(which)?;
        match which {
            "ratio" => {
                let before = self.errors();
                let r = MapReader::new(self, n, "a ratio indicator", &["good", "bad", "total"])?;
                let numerator = r.exactly_one(self, &["good", "bad"]);
                let sel = numerator.and_then(|k| r.opt(self, k, Decoder::selector));
                let total = r.req(
                    self,
                    "total",
                    "'http_requests_total{job=\"api\"}'",
                    Decoder::selector,
                );
                if self.errors() > before {
                    return None;
                }
                Some(IndicatorOut {
                    indicator: Indicator::Ratio {
                        numerator: if numerator? == "good" {
                            RatioNumerator::Good
                        } else {
                            RatioNumerator::Bad
                        },
                        numerator_selector: sel?,
                        total: total?,
                    },
                    percentile: false,
                })
            }
            "query" => {
                let before = self.errors();
                let q = MapReader::new(
                    self,
                    n,
                    "a query indicator",
                    &["source", "good", "bad", "total"],
                )?;
                let source = q.opt(self, "source", Decoder::name);
                let numerator = q.exactly_one(self, &["good", "bad"]);
                let num = numerator.and_then(|k| q.opt(self, k, Decoder::promql));
                let total = q.req(
                    self,
                    "total",
                    "'sum(rate(http_requests_total{job=\"api\"}[{{.window}}]))'",
                    Decoder::promql,
                );
                if let (Some(nq), Some(tq)) = (&num, &total)
                    && (QueryMode::of(nq) == QueryMode::Counter)
                        != (QueryMode::of(tq) == QueryMode::Counter)
                {
                    self.error(
                        n.pos(),
                        "the queries of a `query` indicator must both use `{{.window}}` (events per read window) or neither (counters); write them alike",
                    );
                }
                if self.errors() > before {
                    return None;
                }
                Some(IndicatorOut {
                    indicator: Indicator::Query {
                        source,
                        numerator: if numerator? == "good" {
                            RatioNumerator::Good
                        } else {
                            RatioNumerator::Bad
                        },
                        numerator_query: num?,
                        total_query: total?,
                    },
                    percentile: false,
                })
            }
            "probe" => Some(IndicatorOut {
                indicator: Indicator::ProbeAvailability {
                    probe: self.probe_ref(n, "probe")?,
                },
                percentile: false,
            }),
            "latency_threshold" => {
                let before = self.errors();
                let l = MapReader::new(
                    self,
                    n,
                    "a latency_threshold indicator",
                    &["threshold", "probe", "histogram", "buckets"],
                )?;
                let threshold = l.req(self, "threshold", "300ms", Decoder::pos_dur);
                let source = self.latency_source(&l, threshold);
                if self.errors() > before {
                    return None;
                }
                Some(IndicatorOut {
                    indicator: Indicator::LatencyThreshold {
                        threshold: threshold?,
                        source: source?,
                    },
                    percentile: false,
                })
            }
            _ => {
                let before = self.errors();
                let l = MapReader::new(
                    self,
                    n,
                    "a latency_percentile indicator",
                    &["percentile", "threshold", "probe", "histogram", "buckets"],
                )?;
                let percentile = l.req(self, "percentile", "95", |d, n, k| {
                    let p = match n.kind() {
                        Kind::Int(i) => Some(*i as f64),
                        Kind::Float(f) => Some(*f),
                        Kind::Str(s) => {
                            let t = s.trim();
                            let t = t.strip_prefix(['p', 'P']).unwrap_or(t);
                            t.strip_suffix('%').unwrap_or(t).trim().parse().ok()
                        }
                        _ => None,
                    };
                    match p.and_then(Percentile::from_percent) {
                        Some(p) => Some(p),
                        None => {
                            d.error(
                                n.pos(),
                                format!(
                                    "`{k}` `{}` is not a percentile in (0, 100); write for example 95, 99.9 or \"p95\"",
                                    n.scalar_text().unwrap_or_default()
                                ),
                            );
                            None
                        }
                    }
                });
                let threshold = l.req(self, "threshold", "500ms", Decoder::pos_dur);
                let source = self.latency_source(&l, threshold);
                if self.errors() > before {
                    return None;
                }
                Some(IndicatorOut {
                    indicator: Indicator::LatencyPercentile {
                        percentile: percentile?,
                        threshold: threshold?,
                        source: source?,
                    },
                    percentile: true,
                })
            }
        }
    }

    fn latency_source(
        &mut self,
        l: &MapReader<'_>,
        threshold: Option<Dur>,
    ) -> Option<LatencySource> {
        match l.exactly_one(self, &["probe", "histogram"])? {
            "probe" => {
                if let Some(p) = l.key_pos("buckets") {
                    self.error(
                        p,
                        "`buckets` only applies to `histogram`; remove it (probe latencies are exact)",
                    );
                }
                let probe = l.opt(self, "probe", Decoder::probe_ref)?;
                Some(LatencySource::Probe { probe })
            }
            _ => {
                let hn = l.get("histogram")?;
                let selector = self.selector(hn, "histogram")?;
                let Some(metric) = selector.metric().map(str::to_owned) else {
                    self.error(
                        hn.pos(),
                        "`histogram` needs a metric name; write the histogram's base name such as http_request_duration_seconds{job=\"api\"}",
                    );
                    return None;
                };
                for suffix in ["_bucket", "_count", "_sum"] {
                    if let Some(base) = metric.strip_suffix(suffix) {
                        self.error(
                            hn.pos(),
                            format!(
                                "`histogram` names `{metric}`; give the base name `{base}` (burnwatch reads {base}_bucket and {base}_count itself)"
                            ),
                        );
                        return None;
                    }
                }
                let buckets = l.opt(self, "buckets", |d, n, _| d.buckets(n));
                if l.get("buckets").is_some() && buckets.is_none() {
                    return None;
                }
                if let (Some(t), Some(tn)) = (threshold, l.get("threshold")) {
                    self.bucket_warning(t, tn.pos(), &metric, buckets.as_deref());
                }
                Some(LatencySource::Histogram { selector, buckets })
            }
        }
    }

    fn buckets(&mut self, n: &Node) -> Option<Vec<f64>> {
        let items = self.list(n, "buckets")?;
        let mut out: Vec<f64> = Vec::new();
        let before = self.errors();
        for item in items {
            let v = match item.kind() {
                Kind::Int(i) => Some(*i as f64),
                Kind::Float(f) => Some(*f),
                _ => None,
            };
            match v {
                Some(v) if v.is_finite() && v > 0.0 => {
                    if out.last().is_some_and(|last| *last >= v) {
                        self.error(
                            item.pos(),
                            format!(
                                "bucket edge {} is not above the previous one; list `buckets` in increasing order without repeats",
                                fmt_num(v)
                            ),
                        );
                    }
                    out.push(v);
                }
                _ => self.error(
                    item.pos(),
                    format!(
                        "bucket edge `{}` is not a positive number of seconds; write edges such as 0.1, 0.25, 0.5",
                        item.scalar_text().unwrap_or_default()
                    ),
                ),
            }
        }
        if out.is_empty() && self.errors() == before {
            self.error(
                n.pos(),
                "`buckets` is empty; list the histogram's edges in seconds, or remove `buckets`",
            );
        }
        (self.errors() == before).then_some(out)
    }

    fn bucket_warning(&mut self, threshold: Dur, pos: Pos, metric: &str, declared: Option<&[f64]>) {
        let edges: &[f64] = declared.unwrap_or(&PROMETHEUS_DEFAULT_BUCKETS);
        let t = threshold.as_secs_f64();
        let eps = 1e-9 * t.max(1.0);
        if edges.iter().any(|e| (e - t).abs() <= eps) {
            return;
        }
        let below = edges
            .iter()
            .copied()
            .filter(|e| *e <= t)
            .fold(None, |a: Option<f64>, e| Some(a.map_or(e, |a| a.max(e))));
        let above = edges
            .iter()
            .copied()
            .filter(|e| *e > t)
            .fold(None, |a: Option<f64>, e| Some(a.map_or(e, |a| a.min(e))));
        let list = edges
            .iter()
            .map(|e| fmt_edge(*e))
            .collect::<Vec<_>>()
            .join(" ");
        let whence = if declared.is_some() {
            "declared `buckets`"
        } else {
            "Prometheus default buckets"
        };
        let counted = match below {
            Some(b) => format!(
                "burnwatch counts the largest edge at or under it ({}) as good",
                fmt_edge(b)
            ),
            None => "no edge is at or under it, so no request counts as good".to_owned(),
        };
        let advice = match (below, above) {
            (Some(b), Some(a)) => format!("use {} or {}", fmt_edge(b), fmt_edge(a)),
            (Some(b), None) => format!("use {}", fmt_edge(b)),
            (None, Some(a)) => format!("use {}", fmt_edge(a)),
            (None, None) => "use one of the edges".to_owned(),
        };
        let declare = if declared.is_some() {
            ", or add the edge to `buckets:` if the histogram has it"
        } else {
            ", or declare `buckets:`"
        };
        self.warn(
            pos,
            format!(
                "threshold {threshold} is not a bucket edge of histogram {metric} ({whence}: {list}); {counted}: {advice}{declare}"
            ),
        );
    }

    fn alerting(&mut self, node: &Node, window: &Window) -> Option<Alerting> {
        let before = self.errors();
        const KEYS: &[&str] = &[
            "min_events",
            "disabled",
            "tiers",
            "budget_exhausted",
            "no_data",
            "flap",
            "alert_name",
        ];
        let m = MapReader::new(self, node, "alerting", KEYS)?;
        let min_events = m.opt(self, "min_events", Decoder::uint).unwrap_or(0);
        let alert_name = m.opt(self, "alert_name", Decoder::alert_name);
        let disabled = m.opt(self, "disabled", Decoder::bool).unwrap_or(false);
        let budget_exhausted = match m.get("budget_exhausted") {
            Some(n) => self
                .alert_rule(
                    n,
                    "budget_exhausted",
                    AlertRule::budget_exhausted_default(),
                    false,
                )
                .map(|(r, _)| r),
            None => Some(Some(AlertRule::budget_exhausted_default())),
        };
        let no_data_alert = match m.get("no_data") {
            Some(n) => self
                .alert_rule(n, "no_data", AlertRule::no_data_default(), false)
                .map(|(r, _)| r),
            None => Some(Some(AlertRule::no_data_default())),
        };
        let flap = match m.get("flap") {
            Some(n) => self.flap(n),
            None => Some(Some(FlapPolicy::default())),
        };
        let nominal = window.nominal();
        // Defaults are kept with their budget fraction so overrides can recompute the factor.
        let mut tiers: Vec<(BurnTier, Option<f64>, bool)> = DEFAULT_TIERS
            .iter()
            .map(|&entry| {
                let (_, _, fraction, long) = entry;
                // A default longer than the window is dropped unless the user names it.
                (
                    default_tier(entry, nominal),
                    Some(fraction),
                    long <= nominal,
                )
            })
            .collect();
        if let Some(tn) = m.get("tiers") {
            match tn.kind() {
                Kind::Map(entries) => {
                    for (k, v) in entries {
                        let Some(name) = self.name(k, "tiers") else {
                            continue;
                        };
                        let idx = tiers.iter().position(|(t, _, _)| t.name == name);
                        if let Some(t) = self.tier(&name, v, idx.map(|i| &tiers[i]), nominal) {
                            match idx {
                                Some(i) => tiers[i] = t,
                                None => tiers.push(t),
                            }
                        }
                    }
                }
                Kind::Null => {}
                _ => self.type_error(tn, "tiers", "a mapping of tier names to settings"),
            }
        }
        if self.errors() > before {
            return None;
        }
        let tiers = if disabled {
            Vec::new()
        } else {
            tiers
                .into_iter()
                .filter(|(_, _, keep)| *keep)
                .map(|(t, _, _)| t)
                .collect()
        };
        if disabled {
            return Some(Alerting {
                tiers,
                min_events,
                budget_exhausted: None,
                no_data_alert: None,
                flap: flap?,
                alert_name,
            });
        }
        Some(Alerting {
            tiers,
            min_events,
            budget_exhausted: budget_exhausted?,
            no_data_alert: no_data_alert?,
            flap: flap?,
            alert_name,
        })
    }

    /// Decodes one entry of `tiers:`: an override of a default tier (`base`) or a custom tier.
    /// Returns the tier, its budget fraction (if known) and whether it is kept.
    fn tier(
        &mut self,
        name: &str,
        node: &Node,
        base: Option<&(BurnTier, Option<f64>, bool)>,
        nominal: Dur,
    ) -> Option<(BurnTier, Option<f64>, bool)> {
        const KEYS: &[&str] = &[
            "long",
            "short",
            "budget_consumed",
            "burn_rate",
            "severity",
            "for",
            "keep_firing_for",
            "labels",
            "annotations",
            "disabled",
        ];
        let before = self.errors();
        let m = MapReader::new(self, node, "an alert tier", KEYS)?;
        let disabled = m.opt(self, "disabled", Decoder::bool).unwrap_or(false);
        let long = m.opt(self, "long", Decoder::minutes);
        let short = m.opt(self, "short", Decoder::minutes);
        let fraction = m.opt(self, "budget_consumed", Decoder::fraction);
        let rate = m.opt(self, "burn_rate", |d, n, k| {
            let v = match n.kind() {
                Kind::Int(i) => Some(*i as f64),
                Kind::Float(f) => Some(*f),
                _ => None,
            };
            match v {
                Some(v) if v.is_finite() && v > 0.0 => Some(v),
                _ => {
                    d.error(
                        n.pos(),
                        format!(
                            "`{k}` must be a number above 0, e.g. 14.4; write the burn-rate factor"
                        ),
                    );
                    None
                }
            }
        });
        let severity = m.opt(self, "severity", Decoder::severity);
        let for_ = m.opt(self, "for", Decoder::dur);
        let keep_firing_for = m.opt(self, "keep_firing_for", Decoder::dur);
        let labels = m.opt(self, "labels", Decoder::labels);
        let annotations = m.opt(self, "annotations", Decoder::annotations);
        if let (Some(_), Some(p)) = (m.get("budget_consumed"), m.key_pos("burn_rate")) {
            self.error(
                p,
                format!(
                    "tier `{name}` gives both `budget_consumed` and `burn_rate`; keep one of them"
                ),
            );
        }
        if self.errors() > before {
            return None;
        }
        if disabled {
            let t = base.map(|b| b.0.clone()).unwrap_or_else(|| BurnTier {
                name: name.to_owned(),
                severity: String::new(),
                long: Dur::HOUR,
                short: Dur::from_mins(5),
                factor: 1.0,
                for_: Dur(0),
                keep_firing_for: Dur(0),
                labels: Labels::new(),
                annotations: Labels::new(),
            });
            return Some((t, None, false));
        }
        let (mut t, base_fraction) = match base {
            Some((t, f, _)) => (t.clone(), *f),
            None => {
                if long.is_none() {
                    self.error(
                        m.pos,
                        format!(
                            "custom tier `{name}` is missing `long`; add `long: 7d` (and `budget_consumed` or `burn_rate`)"
                        ),
                    );
                }
                if fraction.is_none() && rate.is_none() {
                    self.error(
                        m.pos,
                        format!(
                            "custom tier `{name}` needs `budget_consumed` (e.g. 50%) or `burn_rate` (e.g. 2.0); add one"
                        ),
                    );
                }
                let l = long.unwrap_or(Dur::HOUR);
                let t = BurnTier {
                    name: name.to_owned(),
                    severity: String::new(),
                    long: l,
                    short: Dur::MINUTE,
                    factor: 1.0,
                    for_: Dur(0),
                    keep_firing_for: Dur(0),
                    labels: Labels::new(),
                    annotations: Labels::new(),
                };
                (t, None)
            }
        };
        if self.errors() > before {
            return None;
        }
        if let Some(l) = long {
            t.long = l;
        }
        if let Some(s) = short {
            t.short = s;
        } else if long.is_some() || base.is_none() {
            // Keep the Workbook's long/12 ratio, rounded down to whole minutes (at least 1m).
            t.short = Dur((t.long.millis() / 12 / 60_000).max(1) * 60_000);
        }
        let fraction = fraction.or(base_fraction);
        match (rate, fraction) {
            (Some(r), _) => t.factor = r,
            (None, Some(f)) if long.is_some() || m.get("budget_consumed").is_some() => {
                t.factor = burn_factor(f, nominal, t.long);
            }
            _ => {}
        }
        if let Some(s) = severity {
            t.severity = s;
        } else if base.is_none() {
            t.severity = if t.factor >= 6.0 { "page" } else { "ticket" }.to_owned();
        }
        if let Some(f) = for_ {
            t.for_ = f;
        }
        if let Some(k) = keep_firing_for {
            t.keep_firing_for = k;
        }
        if let Some(l) = labels {
            t.labels = l;
        }
        if let Some(a) = annotations {
            t.annotations = a;
        }
        let long_pos = m.get("long").map_or(m.pos, Node::pos);
        if t.long > nominal {
            self.error(
                long_pos,
                format!(
                    "tier `{name}` has long window {} but the SLO window is only {nominal}; write `long:` at most {nominal}, or `disabled: true`",
                    t.long
                ),
            );
        }
        if t.short >= t.long {
            let pos = m.get("short").map_or(long_pos, Node::pos);
            self.error(
                pos,
                format!(
                    "tier `{name}` has short window {} not shorter than its long window {}; write a short window such as {}",
                    t.short,
                    t.long,
                    Dur((t.long.millis() / 12 / 60_000).max(1) * 60_000)
                ),
            );
        }
        if self.errors() > before {
            return None;
        }
        Some((t, fraction, true))
    }

    /// A routing word: one word such as `page` or `ticket`.
    pub(crate) fn severity(&mut self, n: &Node, key: &str) -> Option<String> {
        let s = self.string(n, key)?;
        if s.is_empty() || s.chars().any(char::is_whitespace) {
            self.error(
                n.pos(),
                format!("`{key}` must be one word such as page or ticket"),
            );
            return None;
        }
        Some(s)
    }

    /// `flap: false`, `flap: true` (the defaults) or `flap: {window, max_changes, hold}`.
    /// The outer `None` is an error; `Some(None)` is "turned off".
    fn flap(&mut self, n: &Node) -> Option<Option<FlapPolicy>> {
        if let Kind::Bool(b) = n.kind() {
            return Some(b.then(FlapPolicy::default));
        }
        let before = self.errors();
        let m = MapReader::new(self, n, "flap", &["window", "max_changes", "hold"])?;
        let mut p = FlapPolicy::default();
        if let Some(w) = m.opt(self, "window", Decoder::pos_dur) {
            p.window = w;
        }
        if let Some(h) = m.opt(self, "hold", Decoder::pos_dur) {
            p.hold = h;
        }
        if let Some(c) = m.opt(self, "max_changes", Decoder::uint) {
            match u32::try_from(c) {
                Ok(c) if c >= 1 => p.max_changes = c,
                _ => {
                    let pos = m.get("max_changes").map_or(m.pos, Node::pos);
                    self.error(
                        pos,
                        "`max_changes` must be between 1 and 4294967295; write e.g. `max_changes: 4`, or `flap: false` to turn damping off",
                    );
                }
            }
        }
        (self.errors() == before).then_some(Some(p))
    }

    /// An alert switch: `false` (off), `true` (the defaults) or a mapping of `severity`, `for`,
    /// `keep_firing_for` (and `flap` when `with_flap`). Returns the rule and the flap policy (the
    /// default one unless `with_flap` and given). The outer `None` is an error.
    fn alert_rule(
        &mut self,
        n: &Node,
        key: &str,
        default: AlertRule,
        with_flap: bool,
    ) -> Option<(Option<AlertRule>, Option<FlapPolicy>)> {
        if let Kind::Bool(b) = n.kind() {
            return Some((b.then_some(default), Some(FlapPolicy::default())));
        }
        if !matches!(n.kind(), Kind::Map(_)) {
            self.type_error(
                n,
                key,
                "`false`, or a mapping such as `{severity: ticket, for: 5m}`",
            );
            return None;
        }
        let keys: &[&str] = if with_flap {
            &["severity", "for", "keep_firing_for", "flap"]
        } else {
            &["severity", "for", "keep_firing_for"]
        };
        let what = match key {
            "budget_exhausted" => "budget_exhausted",
            "no_data" => "no_data",
            _ => "an alert",
        };
        let before = self.errors();
        let m = MapReader::new(self, n, what, keys)?;
        let mut rule = default;
        self.alert_timing(
            &m,
            &mut rule.severity,
            &mut rule.for_,
            &mut rule.keep_firing_for,
        );
        let flap = match m.get("flap") {
            Some(f) => self.flap(f),
            None => Some(Some(FlapPolicy::default())),
        };
        if self.errors() > before {
            return None;
        }
        Some((Some(rule), flap?))
    }

    /// Overrides `severity`, `for` and `keep_firing_for` with the ones given in `m`.
    fn alert_timing(
        &mut self,
        m: &MapReader<'_>,
        severity: &mut String,
        for_: &mut Dur,
        keep_firing_for: &mut Dur,
    ) {
        if let Some(s) = m.opt(self, "severity", Decoder::severity) {
            *severity = s;
        }
        if let Some(f) = m.opt(self, "for", Decoder::dur) {
            *for_ = f;
        }
        if let Some(k) = m.opt(self, "keep_firing_for", Decoder::dur) {
            *keep_firing_for = k;
        }
    }

    /// A probe's `alert:`: `false`, `true` or the thresholds and settings of `ProbeDown`.
    fn probe_alert(&mut self, n: &Node) -> Option<Option<ProbeAlert>> {
        const KEYS: &[&str] = &[
            "failures",
            "of",
            "failing_for",
            "successes",
            "severity",
            "for",
            "keep_firing_for",
            "runbook",
            "dashboard",
            "summary",
            "flap",
        ];
        if let Kind::Bool(b) = n.kind() {
            return Some(b.then(ProbeAlert::default));
        }
        if !matches!(n.kind(), Kind::Map(_)) {
            self.type_error(
                n,
                "alert",
                "`false`, or a mapping such as `{failures: 3, of: 5}`",
            );
            return None;
        }
        let before = self.errors();
        let m = MapReader::new(self, n, "a probe alert", KEYS)?;
        let mut a = ProbeAlert::default();
        let count = |d: &mut Decoder<'_, FileRules>, n: &Node, k: &str| -> Option<u32> {
            let v = d.uint(n, k)?;
            match u32::try_from(v) {
                Ok(v) if (1..=1000).contains(&v) => Some(v),
                _ => {
                    d.error(
                        n.pos(),
                        format!("`{k}` must be between 1 and 1000; write e.g. `{k}: 3`"),
                    );
                    None
                }
            }
        };
        let failures = m.opt(self, "failures", count);
        let of = m.opt(self, "of", count);
        let failing_for = m.opt(self, "failing_for", Decoder::pos_dur);
        if let (Some(_), Some(p)) = (m.get("failures"), m.key_pos("failing_for")) {
            self.error(
                p,
                "a probe alert takes `failures` (with an optional `of`) or `failing_for`, not both; keep one of them",
            );
        }
        if let (None, Some(p)) = (m.get("failures"), m.key_pos("of")) {
            self.error(
                p,
                "`of` needs `failures`; write e.g. `failures: 3, of: 5` (3 failures among the last 5 checks)",
            );
        }
        match (failures, of, failing_for) {
            (Some(f), Some(o), _) if o < f => {
                let pos = m.get("of").map_or(m.pos, Node::pos);
                self.error(
                    pos,
                    format!(
                        "`of: {o}` is fewer checks than `failures: {f}`; write `of:` at least {f}, e.g. `failures: {f}, of: {}`",
                        f + 2
                    ),
                );
            }
            (Some(f), Some(o), _) => a.trigger = ProbeTrigger::OutOf { failures: f, of: o },
            (Some(f), None, _) => a.trigger = ProbeTrigger::Consecutive(f),
            (None, _, Some(d)) => a.trigger = ProbeTrigger::FailingFor(d),
            (None, _, None) => {}
        }
        if let Some(s) = m.opt(self, "successes", count) {
            a.successes = s;
        }
        self.alert_timing(&m, &mut a.severity, &mut a.for_, &mut a.keep_firing_for);
        a.runbook = m.opt(self, "runbook", Decoder::url);
        a.dashboard = m.opt(self, "dashboard", Decoder::url);
        a.summary = m.opt(self, "summary", Decoder::string);
        if let Some(f) = m.get("flap") {
            a.flap = self.flap(f)?;
        }
        if self.errors() > before {
            return None;
        }
        Some(Some(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{check_sources, load_str};
    use std::path::PathBuf;

    /// Every diagnostic of one file named t.yaml, as printed.
    fn diags(src: &str) -> Vec<String> {
        check_sources(&[(PathBuf::from("t.yaml"), src.as_bytes().to_vec())])
            .diagnostics
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn has(src: &str, want: &str) {
        let d = diags(src);
        assert!(
            d.iter().any(|l| l.starts_with(want)),
            "missing {want:?} in {d:#?}"
        );
    }

    #[test]
    fn query_indicators_read_promql_with_one_placeholder() {
        let slo = |q: &str| {
            format!(
                "version: burnwatch/v1\nservice: api\nslos:\n  - name: a\n    objective: 99\n    indicator:\n      query:\n{q}"
            )
        };
        let rules = ok(&slo(
            "        source: mimir\n        good: 'sum(rate(x{code!~\"5..\"}[{{ .window }}]))'\n        total: 'sum(increase(x[{{.window}}]))'\n",
        ));
        let s = rules.slos().next().expect("slo");
        let Indicator::Query {
            source,
            numerator,
            numerator_query,
            total_query,
        } = &s.indicator
        else {
            panic!("{:?}", s.indicator)
        };
        assert_eq!(source.as_deref(), Some("mimir"));
        assert_eq!(*numerator, RatioNumerator::Good);
        assert_eq!(
            QueryMode::of(numerator_query),
            QueryMode::Window { increase: false }
        );
        assert_eq!(
            QueryMode::of(total_query),
            QueryMode::Window { increase: true }
        );
        let counters = ok(&slo("        bad: 'x{code=~\"5..\"}'\n        total: x\n"));
        let Indicator::Query { total_query, .. } = &counters.slos().next().expect("slo").indicator
        else {
            panic!()
        };
        assert_eq!(QueryMode::of(total_query), QueryMode::Counter);
        has(
            &slo("        bad: 'sum(rate(x[{{.window}}]))'\n        total: x\n"),
            "t.yaml:8:9: error: the queries of a `query` indicator must both use `{{.window}}`",
        );
        has(
            &slo(
                "        bad: 'sum(rate(x[{{.range}}]))'\n        total: 'sum(rate(x[{{.window}}]))'\n",
            ),
            "t.yaml:8:14: error: `bad` has the placeholder `{{.range}}`",
        );
        has(
            &slo("        bad: ''\n        total: x\n"),
            "t.yaml:8:14: error: `bad` is empty",
        );
        has(
            &slo("        total: x\n"),
            "t.yaml:8:9: error: a query indicator needs exactly one of `good`, `bad`",
        );
        has(
            &(slo("        bad: errs\n        total: x\n") + "    group_by: [route]\n"),
            "t.yaml:10:15: error: `group_by` needs an indicator read from scraped series",
        );
    }

    fn ok(src: &str) -> crate::rules::model::RuleSet {
        match load_str("t.yaml", src) {
            Ok(r) => r,
            Err(d) => panic!("{d:#?}"),
        }
    }

    /// A valid service with one ratio SLO; `extra` lines are added to the SLO.
    fn slo_with(extra: &str) -> String {
        format!(
            "version: burnwatch/v1\nservice: api\nslos:\n  - name: avail\n    objective: 99.9\n    indicator:\n      ratio:\n        good: 'x{{code!~\"5..\"}}'\n        total: x\n{extra}"
        )
    }

    fn factors(src: &str) -> Vec<(String, f64, Dur, Dur, String)> {
        let r = ok(src);
        let slo = r.slos().next().expect("one SLO");
        slo.alerting
            .tiers
            .iter()
            .map(|t| {
                (
                    t.name.clone(),
                    t.factor,
                    t.long,
                    t.short,
                    t.severity.clone(),
                )
            })
            .collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn good_document_decodes_with_defaults() {
        let r = ok(&slo_with(""));
        let slo = r.slos().next().unwrap();
        assert_eq!(slo.id.to_string(), "api/avail");
        assert_eq!(slo.window, Window::Rolling(Dur::from_days(30)));
        assert_eq!(slo.method, BudgetingMethod::Occurrences);
        assert_eq!(slo.no_data, NoDataPolicy::Ignore);
        assert!(close(slo.objective.ratio(), 0.999));
        let Indicator::Ratio {
            numerator, total, ..
        } = &slo.indicator
        else {
            panic!("ratio")
        };
        assert_eq!(*numerator, RatioNumerator::Good);
        assert_eq!(total.to_string(), "x");
    }

    #[test]
    fn objective_forms() {
        let r = ok(&slo_with("").replace("99.9", "\"99.5%\""));
        assert!(close(r.slos().next().unwrap().objective.percent(), 99.5));
        has(
            &slo_with("").replace("99.9", "100"),
            "t.yaml:5:16: error: objective 100% leaves no error budget",
        );
        has(
            &slo_with("").replace("99.9", "0.999"),
            "t.yaml:5:16: warning: objective 0.999 means 0.999%; if you meant a ratio, write 99.9",
        );
        has(
            &slo_with("").replace("99.9", "abc"),
            "t.yaml:5:16: error: `objective` must be a percentage",
        );
    }

    #[test]
    fn default_tier_factors_through_decode() {
        let f = factors(&slo_with(""));
        let names: Vec<&str> = f.iter().map(|t| t.0.as_str()).collect();
        assert_eq!(
            names,
            ["page_fast", "page_slow", "ticket_fast", "ticket_slow"]
        );
        for (t, want) in f.iter().zip([14.4, 6.0, 3.0, 1.0]) {
            assert!(close(t.1, want), "{t:?}");
        }
        let f = factors(&slo_with("    window: 28d\n"));
        for (t, want) in f.iter().zip([13.44, 5.6, 2.8, 28.0 * 24.0 * 0.1 / 72.0]) {
            assert!(close(t.1, want), "{t:?}");
        }
        // A 1d window keeps only the tiers whose long window fits (warning: window under 1d? no).
        let f = factors(&slo_with("    window: 1d\n"));
        assert_eq!(f.len(), 3);
        assert!(close(f[0].1, 0.02 * 24.0));
        // Calendar month uses the nominal 30d.
        let f = factors(&slo_with("    window: month\n"));
        assert!(close(f[0].1, 14.4));
    }

    #[test]
    fn tier_overrides_and_custom_tiers() {
        let f = factors(&slo_with(
            "    alerting:\n      tiers:\n        page_fast: {long: 2h}\n        page_slow: {budget_consumed: 10%}\n        ticket_fast: {burn_rate: 2.5, for: 10m}\n        ticket_slow: {disabled: true}\n        weekly: {long: 7d, budget_consumed: 50%}\n        hot: {long: 30m, burn_rate: 20}\n",
        ));
        let names: Vec<&str> = f.iter().map(|t| t.0.as_str()).collect();
        assert_eq!(
            names,
            ["page_fast", "page_slow", "ticket_fast", "weekly", "hot"]
        );
        // 2% of 30d in 2h: 0.02 * 720 / 2 = 7.2, short 2h/12 = 10m.
        assert!(close(f[0].1, 7.2));
        assert_eq!(f[0].3, Dur::from_mins(10));
        // 10% of 30d in 6h: 0.1 * 720 / 6 = 12.
        assert!(close(f[1].1, 12.0));
        assert_eq!(f[1].3, Dur::from_mins(30));
        assert!(close(f[2].1, 2.5));
        // 50% of 30d in 7d: 0.5 * 720 / 168.
        assert!(close(f[3].1, 0.5 * 720.0 / 168.0));
        assert_eq!(f[3].3, Dur::from_hours(14));
        assert_eq!(f[3].4, "ticket");
        assert!(close(f[4].1, 20.0));
        assert_eq!(f[4].3, Dur::from_mins(2));
        assert_eq!(f[4].4, "page");
        let r = ok(&slo_with(
            "    alerting: {disabled: true, min_events: 50}\n",
        ));
        let a = &r.slos().next().unwrap().alerting;
        assert!(a.tiers.is_empty());
        assert_eq!(a.min_events, 50);
    }

    #[test]
    fn tier_errors() {
        let src = slo_with(
            "    alerting:\n      tiers:\n        page_fast: {short: 1h}\n        weekly: {long: 7d}\n        big: {long: 60d, burn_rate: 1}\n        odd: {long: 90s, burn_rate: 1}\n",
        );
        let d = diags(&src);
        assert!(d.iter().any(|l| l.starts_with("t.yaml:12:28: error: tier `page_fast` has short window 1h not shorter than its long window 1h")), "{d:#?}");
        assert!(
            d.iter().any(|l| l
                .starts_with("t.yaml:13:17: error: custom tier `weekly` needs `budget_consumed`")),
            "{d:#?}"
        );
        assert!(
            d.iter().any(|l| l.starts_with(
                "t.yaml:14:21: error: tier `big` has long window 60d but the SLO window is only 30d"
            )),
            "{d:#?}"
        );
        assert!(
            d.iter().any(|l| l.starts_with(
                "t.yaml:15:21: error: `long` 1m30s is not a whole number of minutes; write 1m or 2m"
            )),
            "{d:#?}"
        );
        // A default tier dropped for a short window comes back when named, and must then fit.
        has(
            &slo_with(
                "    window: 1d\n    alerting:\n      tiers:\n        ticket_slow: {for: 1h}\n",
            ),
            "t.yaml:13:22: error: tier `ticket_slow` has long window 3d but the SLO window is only 1d",
        );
    }

    #[test]
    fn alert_name_and_tier_annotations() {
        let r = ok(&slo_with(
            "    alerting:\n      alert_name: CheckoutHighErrorRate\n      tiers:\n        page_fast: {annotations: {summary: Checkout fails, runbook: \"https://rb/x\"}}\n",
        ));
        let a = &r.slos().next().expect("one SLO").alerting;
        assert_eq!(a.alert_name.as_deref(), Some("CheckoutHighErrorRate"));
        let page = &a.tiers[0];
        assert_eq!(page.name, "page_fast");
        assert_eq!(
            page.annotations.get("summary").map(String::as_str),
            Some("Checkout fails")
        );
        assert!(a.tiers[1].annotations.is_empty());
        has(
            &slo_with("    alerting:\n      alert_name: 9lives\n"),
            "t.yaml:11:19: error: `alert_name` `9lives` is not a valid alert name",
        );
        has(
            &slo_with(
                "    alerting:\n      tiers:\n        page_fast: {annotations: {run-book: x}}\n",
            ),
            "t.yaml:12:35: error: annotation name `run-book` is not valid; use letters, digits and `_`, not starting with a digit or `__` (e.g. `summary`)",
        );
    }

    #[test]
    fn alert_defaults_keep_old_files_valid() {
        let r = ok(&slo_with(""));
        let a = &r.slos().next().expect("one SLO").alerting;
        assert_eq!(
            a.budget_exhausted,
            Some(AlertRule {
                severity: "ticket".into(),
                for_: Dur(0),
                keep_firing_for: Dur(0)
            })
        );
        assert_eq!(
            a.no_data_alert,
            Some(AlertRule {
                severity: "ticket".into(),
                for_: Dur::from_mins(30),
                keep_firing_for: Dur(0)
            })
        );
        assert_eq!(
            a.flap,
            Some(FlapPolicy {
                window: Dur::HOUR,
                max_changes: 4,
                hold: Dur::from_mins(30)
            })
        );
        assert!(a.tiers.iter().all(|t| t.keep_firing_for == Dur(0)));
        let probe = format!(
            "{}probes:\n  - name: p\n    tcp: {{address: \"h:1\"}}\nscrape:\n  - name: s\n    url: http://h:9/metrics\n",
            slo_with("")
        );
        let r = ok(&probe);
        assert_eq!(r.probes[0].alert, Some(ProbeAlert::default()));
        let pa = ProbeAlert::default();
        assert_eq!(pa.trigger, ProbeTrigger::Consecutive(3));
        assert_eq!((pa.successes, pa.severity.as_str()), (2, "page"));
        assert_eq!(
            r.scrapes[0].alert,
            Some(AlertRule {
                severity: "ticket".into(),
                for_: Dur::from_mins(5),
                keep_firing_for: Dur(0)
            })
        );
        assert_eq!(r.scrapes[0].flap, Some(FlapPolicy::default()));
    }

    #[test]
    fn alerting_syntax_decodes() {
        let r = ok(&slo_with(
            "    alerting:\n      budget_exhausted: {severity: page, for: 10m, keep_firing_for: 1h}\n      no_data: false\n      flap: {window: 2h, max_changes: 6, hold: 15m}\n      tiers:\n        page_fast: {keep_firing_for: 10m, for: 2m}\n",
        ));
        let a = &r.slos().next().expect("one SLO").alerting;
        assert_eq!(
            a.budget_exhausted,
            Some(AlertRule {
                severity: "page".into(),
                for_: Dur::from_mins(10),
                keep_firing_for: Dur::HOUR
            })
        );
        assert_eq!(a.no_data_alert, None);
        assert_eq!(
            a.flap,
            Some(FlapPolicy {
                window: Dur::from_hours(2),
                max_changes: 6,
                hold: Dur::from_mins(15)
            })
        );
        assert_eq!(a.tiers[0].keep_firing_for, Dur::from_mins(10));
        assert_eq!(a.tiers[0].for_, Dur::from_mins(2));
        let r = ok(&slo_with(
            "    alerting: {flap: false, budget_exhausted: false, no_data: {for: 2h}}\n",
        ));
        let a = &r.slos().next().expect("one SLO").alerting;
        assert_eq!((a.flap, a.budget_exhausted.as_ref()), (None, None));
        assert_eq!(
            a.no_data_alert
                .as_ref()
                .map(|n| (n.for_, n.severity.as_str())),
            Some((Dur::from_hours(2), "ticket"))
        );
        // `disabled: true` turns off every alert of the SLO, not only the tiers.
        let r = ok(&slo_with("    alerting: {disabled: true}\n"));
        let a = &r.slos().next().expect("one SLO").alerting;
        assert!(a.tiers.is_empty() && a.budget_exhausted.is_none() && a.no_data_alert.is_none());
    }

    fn probe_with(alert: &str) -> String {
        format!(
            "{}probes:\n  - name: p\n    tcp: {{address: \"h:1\"}}\n    alert: {alert}\n",
            slo_with("")
        )
    }

    #[test]
    fn probe_and_scrape_alerts_decode() {
        let trig = |alert: &str| {
            ok(&probe_with(alert)).probes[0]
                .alert
                .as_ref()
                .map(|a| a.trigger)
        };
        assert_eq!(trig("{failures: 5}"), Some(ProbeTrigger::Consecutive(5)));
        assert_eq!(
            trig("{failures: 3, of: 5}"),
            Some(ProbeTrigger::OutOf { failures: 3, of: 5 })
        );
        assert_eq!(
            trig("{failing_for: 2m}"),
            Some(ProbeTrigger::FailingFor(Dur::from_mins(2)))
        );
        assert_eq!(trig("false"), None);
        assert_eq!(trig("true"), Some(ProbeTrigger::Consecutive(3)));
        let r = ok(&probe_with(
            "{successes: 4, severity: ticket, for: 1m, keep_firing_for: 5m, runbook: https://rb.example/p, dashboard: https://d.example/p, summary: Checkout health check failing, flap: false}",
        ));
        assert_eq!(
            r.probes[0].alert,
            Some(ProbeAlert {
                trigger: ProbeTrigger::Consecutive(3),
                successes: 4,
                severity: "ticket".into(),
                for_: Dur::MINUTE,
                keep_firing_for: Dur::from_mins(5),
                runbook: Some("https://rb.example/p".into()),
                dashboard: Some("https://d.example/p".into()),
                summary: Some("Checkout health check failing".into()),
                flap: None,
            })
        );
        let scrape = |alert: &str| {
            let r = ok(&format!(
                "{}scrape:\n  - name: s\n    url: http://h:9/metrics\n    alert: {alert}\n",
                slo_with("")
            ));
            (r.scrapes[0].alert.clone(), r.scrapes[0].flap)
        };
        assert_eq!(scrape("false").0, None);
        assert_eq!(
            scrape("{for: 10m, severity: page, flap: {max_changes: 2}}"),
            (
                Some(AlertRule {
                    severity: "page".into(),
                    for_: Dur::from_mins(10),
                    keep_firing_for: Dur(0)
                }),
                Some(FlapPolicy {
                    max_changes: 2,
                    ..FlapPolicy::default()
                })
            )
        );
    }

    #[test]
    fn alert_syntax_errors() {
        has(
            &probe_with("{failures: 3, failing_for: 2m}"),
            "t.yaml:13:26: error: a probe alert takes `failures` (with an optional `of`) or `failing_for`, not both; keep one of them",
        );
        has(
            &probe_with("{failures: 5, of: 3}"),
            "t.yaml:13:30: error: `of: 3` is fewer checks than `failures: 5`; write `of:` at least 5, e.g. `failures: 5, of: 7`",
        );
        has(
            &probe_with("{of: 3}"),
            "t.yaml:13:13: error: `of` needs `failures`; write e.g. `failures: 3, of: 5`",
        );
        has(
            &probe_with("{failures: 0}"),
            "t.yaml:13:23: error: `failures` must be between 1 and 1000; write e.g. `failures: 3`",
        );
        has(
            &probe_with("{failures: 3, sucesses: 2}"),
            "t.yaml:13:26: error: unknown key `sucesses` in a probe alert; did you mean `successes`?",
        );
        has(
            &probe_with("later"),
            "t.yaml:13:12: error: `alert` must be `false`, or a mapping such as `{failures: 3, of: 5}`, found a string `later`",
        );
        has(
            &slo_with("    alerting: {budget_exhausted: {severity: two words}}\n"),
            "t.yaml:10:45: error: `severity` must be one word such as page or ticket",
        );
        has(
            &slo_with("    alerting: {no_data: 15m}\n"),
            "t.yaml:10:25: error: `no_data` must be `false`, or a mapping such as `{severity: ticket, for: 5m}`, found a string `15m`",
        );
        has(
            &slo_with("    alerting: {flap: {max_changes: 0}}\n"),
            "t.yaml:10:36: error: `max_changes` must be between 1 and 4294967295",
        );
        has(
            &slo_with("    alerting: {flap: {window: 0s}}\n"),
            "t.yaml:10:31: error: `window` must be longer than zero",
        );
        has(
            &slo_with("    alerting: {tiers: {page_fast: {keep_firing_for: soon}}}\n"),
            "t.yaml:10:53: error: `keep_firing_for`: `soon` is not a duration",
        );
        has(
            &slo_with("    alerting: {no_data: {for: 1h, flap: false}}\n"),
            "t.yaml:10:35: error: unknown key `flap` in no_data; allowed keys are `severity`, `for`, `keep_firing_for`",
        );
    }

    #[test]
    fn unknown_keys_with_did_you_mean() {
        has(
            &slo_with("    windw: 30d\n"),
            "t.yaml:10:5: error: unknown key `windw` in an SLO; did you mean `window`?",
        );
        has(
            &slo_with("    frobnicate: 1\n"),
            "t.yaml:10:5: error: unknown key `frobnicate` in an SLO; allowed keys are `name`",
        );
        has(
            "version: burnwatch/v1\nservise: a\nslos: []\n",
            "t.yaml:2:1: error: unknown key `servise` in a rules document; did you mean `service`?",
        );
    }

    #[test]
    fn missing_and_wrong_types() {
        has(
            "version: burnwatch/v1\nservice: a\n",
            "t.yaml:1:1: error: a rules document is missing required key `slos`",
        );
        has(
            "version: burnwatch/v2\nservice: a\nslos: []\n",
            "t.yaml:1:10: error: unknown version `burnwatch/v2`; write `version: burnwatch/v1`",
        );
        has(
            &slo_with("    labels: [a]\n"),
            "t.yaml:10:13: error: `labels` must be a mapping",
        );
        has(
            &slo_with("    labels: {1abc: x, ok: y}\n"),
            "t.yaml:10:14: error: label name `1abc` is not valid",
        );
        has(
            "- a\n- b\n",
            "t.yaml:1:1: error: a rules document must be a mapping of `key: value` lines, found a list",
        );
        has(
            "version: burnwatch/v1\nservice: 'bad name'\nslos: []\n",
            "t.yaml:2:10: error: `service` `bad name` is not a valid name",
        );
    }

    #[test]
    fn a_document_of_targets_needs_no_slos_but_an_empty_one_does() {
        let r = ok(
            "version: burnwatch/v1\nservice: t\nscrape:\n  - {name: app, url: \"http://127.0.0.1:1/metrics\"}\n",
        );
        assert_eq!((r.scrapes.len(), r.slos().count()), (1, 0));
        has(
            "version: burnwatch/v1\nservice: t\n",
            "t.yaml:1:1: error: a rules document is missing required key `slos`",
        );
        has(
            "version: burnwatch/v1\nservice: t\nslos: []\n",
            "t.yaml:3:7: error: `slos` is empty",
        );
    }

    #[test]
    fn grouped_slos_decode_with_their_guard() {
        use crate::rules::model::Grouping;
        let r = ok(&slo_with(
            "    group_by: [route, method]
",
        ));
        let slo = r.slos().next().expect("one SLO");
        assert_eq!(
            slo.group,
            Some(Grouping::Template {
                by: vec!["route".into(), "method".into()],
                max_instances: crate::rules::model::DEFAULT_MAX_INSTANCES,
            })
        );
        let r = ok(&slo_with(
            "    group_by: [route]
    max_instances: 20
",
        ));
        assert!(matches!(
            r.slos().next().expect("one").group,
            Some(Grouping::Template {
                max_instances: 20,
                ..
            })
        ));
        assert_eq!(ok(&slo_with("")).slos().next().expect("one").group, None);
    }

    #[test]
    fn grouped_slo_mistakes_are_explained() {
        has(
            &slo_with(
                "    group_by: [severity]
",
            ),
            "t.yaml:10:16: error: `group_by` label `severity` is a name burnwatch puts on every series or alert of an SLO",
        );
        has(
            &slo_with(
                "    group_by: [le]
",
            ),
            "t.yaml:10:16: error: `group_by` label `le` is a name burnwatch puts",
        );
        has(
            &slo_with(
                "    group_by: [route, route]
",
            ),
            "t.yaml:10:23: error: `group_by` lists `route` twice",
        );
        has(
            &slo_with(
                "    group_by: [9route]
",
            ),
            "t.yaml:10:16: error: `group_by` label `9route` is not a valid label name",
        );
        has(
            &slo_with(
                "    labels: {route: all}
    group_by: [route]
",
            ),
            "t.yaml:11:16: error: `group_by` label `route` is also one of the SLO's (or its service's) `labels`",
        );
        has(
            &slo_with(
                "    group_by: []
",
            ),
            "t.yaml:10:15: error: `group_by` is empty",
        );
        has(
            &slo_with(
                "    max_instances: 10
",
            ),
            "t.yaml:10:5: error: `max_instances` only applies to a grouped SLO",
        );
        has(
            &slo_with(
                "    group_by: [route]
    max_instances: 0
",
            ),
            "t.yaml:11:20: error: `max_instances` must be at least 1",
        );
        has(
            &slo_with(
                "    group_by: [route]
    max_instances: 100001
",
            ),
            "t.yaml:11:20: error: `max_instances` 100001 is over the limit of 100000",
        );
        has(
            "version: burnwatch/v1\nservice: api\nprobes:\n  - name: home\n    http: {url: \"http://127.0.0.1:1/\"}\nslos:\n  - name: up\n    objective: 99\n    indicator: {probe: home}\n    group_by: [route]\n",
            "t.yaml:10:15: error: `group_by` needs an indicator read from scraped series",
        );
    }

    #[test]
    fn windows() {
        has(
            &slo_with("    window: 1M\n"),
            "t.yaml:10:13: error: `window`: unknown unit `M` in `1M`",
        );
        assert!(diags(&slo_with("    window: 1M\n"))[0].contains("window: month"));
        has(
            &slo_with("    window: 1m\n"),
            "t.yaml:10:13: warning: window 1m is one minute; for a calendar month write `window: month`, for 30 days `30d`",
        );
        has(
            &slo_with("    window: 6h\n"),
            "t.yaml:10:13: warning: window 6h is shorter than a day",
        );
        has(
            &slo_with("    window: 1mo\n"),
            "t.yaml:10:13: error: `window: 1mo` is not a duration; for a calendar month write `window: month`",
        );
        has(
            &slo_with("    window: 90s\n"),
            "t.yaml:10:13: error: `window` 1m30s is not a whole number of minutes",
        );
    }

    #[test]
    fn calendar_zones() {
        let r = ok(&slo_with(
            "    window: quarter\n    time_zone: America/New_York\n",
        ));
        let Window::Calendar { unit, tz_name, tz } = &r.slos().next().unwrap().window else {
            panic!("calendar")
        };
        assert_eq!(*unit, CalendarUnit::Quarter);
        assert_eq!(tz_name, "America/New_York");
        assert_eq!(tz.iana_name(), Some("America/New_York"));
        let r = ok(&slo_with("    window: week\n"));
        let Window::Calendar { tz_name, .. } = &r.slos().next().unwrap().window else {
            panic!("calendar")
        };
        assert_eq!(tz_name, "UTC");
        has(
            &slo_with("    window: month\n    time_zone: Europe/Atlantis\n"),
            "t.yaml:11:16: error: unknown time zone `Europe/Atlantis`",
        );
        has(
            &slo_with("    window: 30d\n    time_zone: UTC\n"),
            "t.yaml:11:5: error: `time_zone` only applies to calendar windows",
        );
    }

    #[test]
    fn selectors_errors_point_into_the_scalar() {
        let src = "version: burnwatch/v1\nservice: api\nslos:\n  - name: a\n    objective: 99\n    indicator:\n      ratio:\n        good: rate(x[5m])\n        total: 'x{a=\"b\" c=\"d\"}'\n";
        let d = diags(src);
        assert!(
            d[0].starts_with("t.yaml:8:15: error: `good`: PromQL functions are not allowed here"),
            "{d:#?}"
        );
        assert!(d[0].contains("write a selector such as http_requests_total{job=\"api\"}"));
        // Quoted scalar: column of the quote + 1 + byte offset 8.
        assert!(
            d[1].starts_with("t.yaml:9:25: error: `total`: expected `,` or `}`"),
            "{d:#?}"
        );
        has(
            &slo_with("")
                .replace("good:", "bad:")
                .replace("total: x", "total: x\n        good: y"),
            "t.yaml:10:9: error: a ratio indicator takes exactly one of `good`, `bad`",
        );
    }

    #[test]
    fn duplicates_and_references() {
        let a = "version: burnwatch/v1\nservice: api\nprobes:\n  - name: p1\n    dns: {name: api.internal}\nslos:\n  - name: s\n    objective: 99\n    indicator: {probe: p2}\n  - name: s\n    objective: 99\n    indicator: {probe: p1}\n";
        let b = "version: burnwatch/v1\nservice: api\nprobes:\n  - name: p1\n    tcp: {address: 'x:1'}\nslos:\n  - name: t\n    objective: 99\n    indicator: {probe: p1}\n";
        let r = check_sources(&[
            (PathBuf::from("a.yaml"), a.as_bytes().to_vec()),
            (PathBuf::from("b.yaml"), b.as_bytes().to_vec()),
        ]);
        let d: Vec<String> = r.diagnostics.iter().map(ToString::to_string).collect();
        assert_eq!(
            d,
            [
                "a.yaml:9:24: error: unknown probe `p2`; did you mean `p1`?",
                "a.yaml:10:11: error: SLO `s` is declared twice in service `api` (first at line 7); give each SLO its own name",
                "b.yaml:2:10: error: service `api` is already declared at a.yaml:2:10; names must be unique across all rules files: rename one",
                "b.yaml:4:11: error: probe `p1` is already declared at a.yaml:4:11; names must be unique across all rules files: rename one",
            ]
        );
        assert!(r.rules.is_none());
        assert_eq!(r.files[0].errors, 2);
        assert!(r.files[1].services.is_empty());
    }

    #[test]
    fn timeslices_rules() {
        let r = ok(&slo_with(
            "    method: timeslices\n    timeslice: 5m\n    timeslice_target: 95%\n",
        ));
        assert_eq!(
            r.slos().next().unwrap().method,
            BudgetingMethod::Timeslices {
                slice: Dur::from_mins(5),
                target: 0.95
            }
        );
        let r = ok(&slo_with("    method: timeslices\n"));
        let BudgetingMethod::Timeslices { slice, target } = r.slos().next().unwrap().method else {
            panic!("timeslices")
        };
        assert_eq!(slice, Dur::MINUTE);
        assert!(close(target, 0.999));
        has(
            &slo_with("    method: timeslices\n    timeslice: 7m\n"),
            "t.yaml:11:16: error: timeslice 7m does not divide one hour evenly",
        );
        has(
            &slo_with("    timeslice_target: 99\n"),
            "t.yaml:10:5: error: `timeslice_target` needs `method: timeslices`",
        );
        has(
            &slo_with("    method: timeslice\n"),
            "t.yaml:10:13: error: `method: timeslice` is not allowed; did you mean `timeslices`?",
        );
    }

    #[test]
    fn latency_indicators() {
        let p = "version: burnwatch/v1\nservice: api\nprobes:\n  - name: hp\n    http: {url: 'https://api.internal/h'}\nslos:\n  - name: p95\n    objective: 99\n    indicator:\n      latency_percentile: {percentile: p99.9, threshold: 500ms, probe: hp}\n";
        let r = ok(p);
        let slo = r.slos().next().unwrap();
        assert_eq!(
            slo.method,
            BudgetingMethod::Timeslices {
                slice: Dur::MINUTE,
                target: 1.0
            }
        );
        let Indicator::LatencyPercentile { percentile, .. } = &slo.indicator else {
            panic!("percentile")
        };
        assert_eq!(percentile.ppm(), 999_000);
        has(
            &p.replace(
                "objective: 99\n",
                "objective: 99\n    method: occurrences\n",
            ),
            "t.yaml:9:13: error: `method: occurrences` does not work with `latency_percentile`",
        );
        has(
            &p.replace(
                "objective: 99\n",
                "objective: 99\n    method: timeslices\n    timeslice_target: 90\n",
            ),
            "t.yaml:10:5: error: `timeslice_target` does not apply to `latency_percentile`",
        );
        let h = "version: burnwatch/v1\nservice: api\nslos:\n  - name: fast\n    objective: 99\n    indicator:\n      latency_threshold:\n        threshold: 300ms\n        histogram: 'http_request_duration_seconds{job=\"api\"}'\n";
        let d = diags(h);
        assert_eq!(
            d,
            [
                "t.yaml:8:20: warning: threshold 300ms is not a bucket edge of histogram http_request_duration_seconds (Prometheus default buckets: 5ms 10ms 25ms 50ms 100ms 250ms 500ms 1s 2s500ms 5s 10s); burnwatch counts the largest edge at or under it (250ms) as good: use 250ms or 500ms, or declare `buckets:`"
            ]
        );
        assert!(diags(&h.replace("300ms", "250ms")).is_empty());
        let declared = format!("{h}        buckets: [0.1, 0.3]\n");
        assert!(diags(&declared).is_empty());
        has(
            &format!("{h}        buckets: [0.3, 0.1]\n"),
            "t.yaml:10:24: error: bucket edge 0.1 is not above the previous one",
        );
        has(
            &h.replace("seconds{", "seconds_bucket{"),
            "t.yaml:9:20: error: `histogram` names `http_request_duration_seconds_bucket`; give the base name `http_request_duration_seconds`",
        );
    }

    #[test]
    fn probes_and_scrapes_belong_to_their_document_service() {
        let doc = |svc: &str| {
            format!(
                "version: burnwatch/v1\nservice: {svc}\nprobes:\n  - name: {svc}-p\n    tcp: {{address: 'h:1'}}\n    labels: {{service: other}}\nscrape:\n  - name: {svc}-s\n    url: http://h:9/metrics\nslos:\n  - name: s\n    objective: 99\n    indicator: {{probe: {svc}-p}}\n"
            )
        };
        let r = ok(&format!("{}---\n{}", doc("web"), doc("api")));
        let probes: Vec<String> = r
            .probes
            .iter()
            .map(|p| format!("{}@{}", p.name, p.service))
            .collect();
        let scrapes: Vec<String> = r
            .scrapes
            .iter()
            .map(|t| format!("{}@{}", t.name, t.service))
            .collect();
        assert_eq!(probes, ["web-p@web", "api-p@api"]);
        assert_eq!(scrapes, ["web-s@web", "api-s@api"]);
        // A `service` label is only a label; the declaring document decides.
        assert_eq!(r.probes[0].labels["service"], "other");
    }

    #[test]
    fn probes_and_scrapes() {
        let base = "version: burnwatch/v1\nservice: api\nPROBE\nslos:\n  - name: s\n    objective: 99\n    indicator: {probe: hp}\n";
        let with = |p: &str| base.replace("PROBE", p);
        let r = ok(&with(
            "probes:\n  - name: hp\n    http: {url: 'https://a.example/h', method: post}\n    interval: 5s\nscrape:\n  - name: app\n    url: http://a.example:9100/metrics\n    body_limit: 2MiB\n",
        ));
        let pr = &r.probes[0];
        assert_eq!(pr.interval, Dur::from_secs(5));
        assert_eq!(pr.timeout, Dur::from_millis(4500));
        let ProbeKind::Http(h) = &pr.kind else {
            panic!("http")
        };
        assert_eq!(h.method, "POST");
        assert_eq!(h.expect_status, [StatusRange { lo: 200, hi: 299 }]);
        assert_eq!(r.scrapes[0].body_limit, 2 << 20);
        assert_eq!(r.scrapes[0].timeout, Dur::from_secs(10));
        let d = diags(&with(
            "probes:\n  - name: hp\n    http:\n      url: 'a.example'\n      expect_status: [99, '300-200', 2xx]\n      body_matches: '(['\n    timeout: 30s\nscrape:\n  - name: app\n    url: http://a.example/m\n    body_limit: 10 parsecs\n",
        ));
        let want = [
            "t.yaml:6:12: error: `url` `a.example` is not an http(s) URL",
            "t.yaml:7:23: error: status `99` is not valid",
            "t.yaml:7:27: error: status `300-200` is not valid",
            "t.yaml:8:21: error: `body_matches` is not a valid regular expression",
            "t.yaml:9:14: error: `timeout` 30s is not shorter than `interval` 30s",
            "t.yaml:13:17: error: `body_limit` `10 parsecs` is not a size",
        ];
        for w in want {
            assert!(
                d.iter().any(|l| l.starts_with(w)),
                "missing {w:?} in {d:#?}"
            );
        }
        assert_eq!(d.len(), want.len(), "{d:#?}");
        has(
            &with("probes:\n  - name: hp\n    dns: {name: a.example}\n    tcp: {address: 'a:1'}\n"),
            "t.yaml:6:5: error: a probe takes exactly one of `http`, `tcp`, `dns`",
        );
        has(
            &with("probes:\n  - name: hp\n    tcp: {address: 'nohost'}\n"),
            "t.yaml:5:20: error: `address` `nohost` is not host:port",
        );
    }

    proptest::proptest! {
        /// Any text, and any mutation of a good file, yields a result or diagnostics: never a
        /// panic.
        #[test]
        fn never_panics(text in "\\PC{0,200}", cut in 0usize..400, insert in "[ :\\-\\[\\]{},'\"a-z0-9%.]{0,6}") {
            let _ = load_str("t.yaml", &text);
            let mut good = slo_with("    window: month\n    alerting: {tiers: {page_fast: {long: 2h}}}\n");
            let at = cut.min(good.len());
            if good.is_char_boundary(at) {
                good.insert_str(at, &insert);
                let _ = load_str("t.yaml", &good);
            }
        }
    }
}
