//! OpenSLO v1 (`apiVersion: openslo/v1`) objects read as they are, into the same model as
//! `burnwatch/v1` (see "Coming from Sloth / OpenSLO" in docs/rules.md).
//!
//! Reading is in two steps. Each file's objects (`SLO`, `SLI`, `AlertPolicy`, `AlertCondition`,
//! `AlertNotificationTarget`, `Service`, `DataSource`; one per YAML document, or several in a
//! top-level list) are decoded on their own ([`Objects`], every field honoured, reported as
//! "ignored: ..." or refused at its line and column). Then [`resolve`] joins them across the
//! whole file set, since an SLO may name an SLI, an AlertPolicy or a DataSource written in another
//! file: references are resolved (a dangling one is an error at the reference), each objective of
//! an SLO becomes one burnwatch SLO, and the SLOs of one `spec.service` become one service.
//!
//! What maps to what:
//! - `timeWindow`: rolling durations as written (`M`, `Q`, `Y` read as 30, 90 and 365 days, with
//!   a warning); calendar `1w`, `1M`, `1Q` are burnwatch's calendar week, month and quarter in
//!   `timeZone` (periods start at calendar boundaries, so a `startTime` elsewhere is a warning);
//!   a calendar `1m` is one minute as the spec says, with a warning (OpenSLO's own example writes
//!   it for a month).
//! - `budgetingMethod`: `Occurrences`, `Timeslices` (`timeSliceWindow`, `timeSliceTarget`);
//!   `RatioTimeslices` is refused (the engine has no average-of-slices budget).
//! - `ratioMetric` of a Prometheus metric source: its queries are translated to selectors by
//!   [`promql::counter`]; with `counter: true`, other query shapes become a `query` indicator
//!   read from the agent's query source (counter mode, docs/sources.md), with a warning;
//!   everything else (`raw`, `thresholdMetric`, other sources, a gauge query that does not
//!   translate) is an error, reported in one place ([`Resolver::needs_query_source`]).
//! - `AlertPolicy` + burn-rate `AlertCondition`: one tier per policy (factor = `threshold`, long
//!   window = `lookbackWindow`, short = long/12, `for` = `alertAfter`, the condition's
//!   `severity`), its notification targets' names in the tier's `notification_target` label for
//!   the agent's routes to match.
//!
//! Pure: the YAML tree in, the model and diagnostics out.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::rules::ServiceSummary;
use crate::rules::diag::{Diagnostic, Severity};
use crate::rules::file::{Decl, FileRules};
use crate::rules::model::{
    AlertRule, Alerting, BudgetingMethod, BurnTier, CalendarUnit, DEFAULT_MAX_INSTANCES, Grouping,
    Indicator, Labels, NoDataPolicy, Objective, RatioNumerator, Service, Slo, SloId, Spec, Window,
    default_tiers,
};
use crate::rules::node::{Kind, Node, Pos};
use crate::rules::promql;
use crate::schema::decoder::fmt_num;
use crate::schema::{Decoder, MapReader};
use crate::time::Dur;

/// The `apiVersion` of OpenSLO v1 objects.
pub const API_VERSION: &str = Spec::OpenSlo.as_str();

/// The kinds of OpenSLO v1 objects.
const KINDS: [&str; 7] = [
    "SLO",
    "SLI",
    "AlertPolicy",
    "AlertCondition",
    "AlertNotificationTarget",
    "Service",
    "DataSource",
];

/// The label an alert tier carries its policy's notification target names in, for the agent's
/// routes to match (`matchers: ['notification_target="on-call"']`).
pub const TARGET_LABEL: &str = "notification_target";

/// The OpenSLO objects of one file, decoded but not yet joined to the rest of the file set.
#[derive(Debug, Default)]
pub struct Objects {
    slos: Vec<Named<SloDoc>>,
    slis: Vec<Named<Sli>>,
    policies: Vec<Named<Policy>>,
    conditions: Vec<Named<Condition>>,
    targets: Vec<Named<()>>,
    services: Vec<Named<()>>,
    sources: Vec<Named<Option<String>>>,
    /// Every object name declared at top level, with its kind, even in objects with errors (a
    /// reference to one of those is not reported again as dangling).
    decls: Vec<(&'static str, Decl)>,
}

/// `metadata` of an object.
#[derive(Debug, Clone)]
struct Meta {
    name: String,
    pos: Pos,
    display: Option<String>,
    /// Where `displayName` is written.
    display_pos: Option<Pos>,
    labels: Labels,
    annotations: Labels,
}

/// An object: its metadata and its decoded `spec`.
#[derive(Debug, Clone)]
struct Named<T> {
    meta: Meta,
    spec: T,
}

/// An object written inline, or a reference to one by name.
#[derive(Debug, Clone)]
enum Ref<T> {
    Inline(Box<Named<T>>),
    Name(String, Pos),
}

/// A `metricSource`.
#[derive(Debug, Clone)]
struct Source {
    pos: Pos,
    source_ref: Option<(String, Pos)>,
    kind: Option<String>,
    query: Option<(String, Pos)>,
    /// Keys of `spec` besides `query`, reported when the source is Prometheus (any other source
    /// needs them all, and is reported whole).
    other: Vec<(String, Pos)>,
}

/// An SLI's `spec`.
#[derive(Debug, Clone)]
enum Sli {
    /// `ratioMetric` with `good` or `bad` and `total`.
    Ratio {
        counter: bool,
        numerator: RatioNumerator,
        num: Source,
        total: Source,
    },
    /// `ratioMetric.raw` or `thresholdMetric`: values only a query source can read.
    Query {
        what: &'static str,
        pos: Pos,
        sources: Vec<Source>,
    },
}

/// One of an SLO's `objectives`.
#[derive(Debug, Clone)]
struct ObjectiveDoc {
    pos: Pos,
    display: Option<String>,
    display_pos: Option<Pos>,
    objective: Objective,
    method: BudgetingMethod,
    indicator: Option<Ref<Sli>>,
}

/// An SLO's `spec`.
#[derive(Debug, Clone)]
struct SloDoc {
    description: Option<String>,
    service: (String, Pos),
    indicator: Option<Ref<Sli>>,
    window: Window,
    objectives: Vec<ObjectiveDoc>,
    /// `None` when no policy is written (burnwatch's default tiers apply).
    policies: Option<Vec<Ref<Policy>>>,
}

/// An AlertPolicy's `spec`.
#[derive(Debug, Clone)]
struct Policy {
    no_data: bool,
    breaching: bool,
    condition: Ref<Condition>,
    targets: Vec<Ref<()>>,
}

/// An AlertCondition's `spec` (a burn-rate condition).
#[derive(Debug, Clone)]
struct Condition {
    severity: String,
    factor: f64,
    long: Dur,
    long_pos: Pos,
    for_: Dur,
}

/// A duration shorthand: a positive integer and one of `m h d w M Q Y`.
fn shorthand(text: &str) -> Option<(u64, char)> {
    let unit = text.chars().last()?;
    let digits = &text[..text.len() - unit.len_utf8()];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    // Ten thousand years in minutes is far below any overflow.
    (n <= 5_000_000_000 && "mhdwMQY".contains(unit)).then_some((n, unit))
}

/// A shorthand's length with months, quarters and years of 30, 90 and 365 days.
fn shorthand_dur((n, unit): (u64, char)) -> Dur {
    let mins = match unit {
        'm' => 1,
        'h' => 60,
        'd' => 1_440,
        'w' => 10_080,
        'M' => 30 * 1_440,
        'Q' => 90 * 1_440,
        _ => 365 * 1_440,
    };
    Dur::from_mins(n * mins)
}

const SHORTHAND: &str = "a duration shorthand such as 30m, 1h, 28d, 4w or 1M";

/// A burnwatch name from an objective's `displayName`: lower case, runs of other characters as
/// one `-`.
fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}

impl Decoder<'_, FileRules> {
    /// One YAML document of OpenSLO objects: one object, or a list of them, kept in `objects`
    /// for [`resolve`].
    pub(crate) fn openslo_document(&mut self, doc: &Node, objects: &mut Objects) {
        match doc.kind() {
            Kind::Seq(items) => {
                for item in items {
                    self.os_object(item, objects);
                }
            }
            _ => self.os_object(doc, objects),
        }
    }

    fn os_object(&mut self, node: &Node, objects: &mut Objects) {
        let Some(m) = MapReader::new(
            self,
            node,
            "an OpenSLO object",
            &["apiVersion", "kind", "metadata", "spec"],
        ) else {
            return;
        };
        let version = m.req(self, "apiVersion", API_VERSION, Decoder::string);
        if let Some(v) = &version
            && v != API_VERSION
        {
            let pos = m.get("apiVersion").map_or(m.pos, Node::pos);
            self.error(
                pos,
                format!("`apiVersion: {v}` is not read; burnwatch reads OpenSLO `{API_VERSION}` (write the object in v1)"),
            );
            return;
        }
        let Some(kind) = m.req(self, "kind", "SLO", |d, n, k| d.choice(n, k, &KINDS)) else {
            return;
        };
        let before = self.errors();
        let Some(meta) = m.req(self, "metadata", "{name: my-slo}", |d, n, _| {
            d.os_meta(n, kind)
        }) else {
            return;
        };
        objects.decls.push((
            kind,
            Decl {
                name: meta.name.clone(),
                pos: meta.pos,
            },
        ));
        let Some(spec) = m.req(self, "spec", "{...}", |_, n, _| Some(n)) else {
            return;
        };
        match kind {
            "SLO" => {
                let s = self.os_slo(spec, &meta);
                self.keep(objects, before, meta, s, |o| &mut o.slos);
            }
            "SLI" => {
                let s = self.os_sli(spec);
                self.keep(objects, before, meta, s, |o| &mut o.slis);
            }
            "AlertPolicy" => {
                let s = self.os_policy(spec);
                self.keep(objects, before, meta, s, |o| &mut o.policies);
            }
            "AlertCondition" => {
                let s = self.os_condition(spec);
                self.keep(objects, before, meta, s, |o| &mut o.conditions);
            }
            "AlertNotificationTarget" => {
                let s = self.os_target(spec);
                self.keep(objects, before, meta, s, |o| &mut o.targets);
            }
            "Service" => {
                let s = MapReader::new(self, spec, "a Service spec", &["description"]).map(|sm| {
                    self.ignored(
                        &sm,
                        "description",
                        "a Service's description; burnwatch services have `owner`, `runbook` and `dashboard`",
                    );
                });
                self.keep(objects, before, meta, s, |o| &mut o.services);
            }
            _ => {
                let s = self.os_source(spec);
                self.keep(objects, before, meta, s, |o| &mut o.sources);
            }
        }
    }

    /// Keeps a decoded object for [`resolve`] when it decoded without errors (`before` is the
    /// error count when its reading began).
    fn keep<T>(
        &mut self,
        objects: &mut Objects,
        before: usize,
        meta: Meta,
        spec: Option<T>,
        list: fn(&mut Objects) -> &mut Vec<Named<T>>,
    ) {
        if let Some(spec) = spec
            && self.errors() == before
        {
            list(objects).push(Named { meta, spec });
        }
    }

    /// A warning "ignored: `key` (why)" when `key` is written.
    fn ignored(&mut self, m: &MapReader<'_>, key: &str, why: &str) {
        if let Some(pos) = m.key_pos(key) {
            self.warn(pos, format!("ignored: `{key}` ({why})"));
        }
    }

    /// `metadata` of an object of `kind`: `name`; `labels` (a value may be a list) of an SLO
    /// (onto its SLOs) or a Service (onto its SLOs and alerts), reported elsewhere;
    /// `displayName` (an SLO's is its description when it has none; reported elsewhere) and
    /// `annotations` of an SLO (onto its alerts; OpenSLO's own `openslo.com/` ones reported),
    /// reported elsewhere.
    fn os_meta(&mut self, n: &Node, kind: &str) -> Option<Meta> {
        let display_used = kind == "SLO";
        let labels_used = kind == "SLO" || kind == "Service";
        let m = MapReader::new(
            self,
            n,
            "OpenSLO metadata",
            &["name", "displayName", "labels", "annotations"],
        )?;
        let name = m.req(self, "name", "my-slo", Decoder::name);
        let display = m.opt(self, "displayName", Decoder::scalar);
        if !display_used {
            self.ignored(
                &m,
                "displayName",
                "burnwatch names objects by `metadata.name`",
            );
        }
        let annotations = if display_used {
            m.opt(self, "annotations", |d, n, k| {
                d.os_names(n, k, "annotation")
            })
            .unwrap_or_default()
        } else {
            self.ignored(
                &m,
                "annotations",
                "annotations of an SLO go onto its alerts; this object's have no equivalent",
            );
            Labels::new()
        };
        if !labels_used {
            self.ignored(
                &m,
                "labels",
                "labels of an SLO or its Service go onto its SLOs and alerts; this object's have no equivalent",
            );
        }
        let labels = m
            .opt(self, "labels", |d, n, k| d.os_names(n, k, "label"))
            .unwrap_or_default();
        Some(Meta {
            name: name?,
            pos: m.get("name").map_or(m.pos, Node::pos),
            display,
            display_pos: m.key_pos("displayName"),
            labels,
            annotations,
        })
    }

    /// `metadata.labels` or `annotations` (`what` is "label" or "annotation"): a value may be a
    /// list (joined with `,`, as burnwatch labels hold one value), and a name with `-`, `.` or
    /// `/` is written with `_` (burnwatch label and annotation names are Prometheus's); both are
    /// warnings. OpenSLO's reserved `openslo.com/` names are reported.
    fn os_names(&mut self, n: &Node, key: &str, what: &str) -> Option<Labels> {
        let Kind::Map(entries) = n.kind() else {
            if matches!(n.kind(), Kind::Null) {
                return Some(Labels::new());
            }
            self.type_error(n, key, "a mapping of label names to values");
            return None;
        };
        let mut out = Labels::new();
        for (k, v) in entries {
            let Some(written) = k.scalar_text() else {
                self.type_error(k, key, "a name");
                continue;
            };
            if written.starts_with("openslo.com/") {
                self.warn(
                    k.pos(),
                    format!(
                        "ignored: {what} `{written}` (the `openslo.com/` prefix is OpenSLO's own)"
                    ),
                );
                continue;
            }
            let mut name: String = written
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            if name.starts_with(|c: char| c.is_ascii_digit()) {
                name.insert(0, '_');
            }
            if name.is_empty() || name.starts_with("__") {
                self.error(
                    k.pos(),
                    format!("{what} name `{written}` has no letters; name it with letters, digits and `_`"),
                );
                continue;
            }
            if name != written {
                self.warn(
                    k.pos(),
                    format!("{what} `{written}` is `{name}` in burnwatch ({what} names are letters, digits and `_`)"),
                );
            }
            let value = match v.kind() {
                Kind::Seq(items) => {
                    let mut vals = Vec::new();
                    for i in items {
                        vals.push(self.scalar(i, &written)?);
                    }
                    let joined = vals.join(",");
                    if vals.len() > 1 {
                        self.warn(
                            v.pos(),
                            format!("{what} `{written}` has {} values; a burnwatch {what} holds one, so it is `{joined}`", vals.len()),
                        );
                    }
                    joined
                }
                Kind::Null => {
                    self.error(v.pos(), format!("{what} `{written}` has no value"));
                    continue;
                }
                _ => self.scalar(v, &written)?,
            };
            out.insert(name, value);
        }
        Some(out)
    }

    /// An object written inline (in an SLO, a policy): `metadata` and `spec`, and optionally
    /// `apiVersion` and `kind` (which must then be `expected`).
    fn os_inline<T>(
        &mut self,
        n: &Node,
        expected: &'static str,
        read: impl FnOnce(&mut Self, &Node) -> Option<T>,
    ) -> Option<Named<T>> {
        let m = MapReader::new(
            self,
            n,
            "an inline OpenSLO object",
            &["apiVersion", "kind", "metadata", "spec"],
        )?;
        if let Some(k) = m.opt(self, "kind", Decoder::string)
            && k != expected
        {
            let pos = m.get("kind").map_or(m.pos, Node::pos);
            self.error(pos, format!("`kind: {k}` here must be `{expected}`"));
        }
        if let Some(v) = m.opt(self, "apiVersion", Decoder::string)
            && v != API_VERSION
        {
            let pos = m.get("apiVersion").map_or(m.pos, Node::pos);
            self.error(
                pos,
                format!("`apiVersion: {v}` here must be `{API_VERSION}`"),
            );
        }
        let meta = m.req(self, "metadata", "{name: ...}", |d, n, _| {
            d.os_meta(n, expected)
        });
        let spec = m.req(self, "spec", "{...}", |d, n, _| read(d, n));
        Some(Named {
            meta: meta?,
            spec: spec?,
        })
    }

    /// A reference `{<ref_key>: name}` or an inline object.
    fn os_ref<T>(
        &mut self,
        n: &Node,
        ref_key: &'static str,
        expected: &'static str,
        read: impl FnOnce(&mut Self, &Node) -> Option<T>,
    ) -> Option<Ref<T>> {
        let by_name = match n.kind() {
            Kind::Map(e) => e.iter().any(|(k, _)| k.as_str() == Some(ref_key)),
            _ => false,
        };
        if by_name {
            let m = MapReader::new(self, n, "a reference", &[ref_key])?;
            let node = m.get(ref_key)?;
            let name = self.name(node, ref_key)?;
            return Some(Ref::Name(name, node.pos()));
        }
        self.os_inline(n, expected, read)
            .map(|o| Ref::Inline(Box::new(o)))
    }

    /// `indicator` (an inline SLI) or `indicatorRef` (an SLI's name), exactly one of them.
    fn os_indicator(&mut self, m: &MapReader<'_>) -> Option<Ref<Sli>> {
        let k = m.exactly_one(self, &["indicator", "indicatorRef"])?;
        let node = m.get(k)?;
        if k == "indicatorRef" {
            self.name(node, k).map(|s| Ref::Name(s, node.pos()))
        } else {
            self.os_inline(node, "SLI", Decoder::os_sli)
                .map(|o| Ref::Inline(Box::new(o)))
        }
    }

    fn os_slo(&mut self, n: &Node, meta: &Meta) -> Option<SloDoc> {
        const KEYS: &[&str] = &[
            "description",
            "service",
            "indicator",
            "indicatorRef",
            "timeWindow",
            "budgetingMethod",
            "objectives",
            "alertPolicies",
        ];
        let m = MapReader::new(self, n, "an OpenSLO SLO spec", KEYS)?;
        let description = m.opt(self, "description", Decoder::scalar);
        let service = m.req(self, "service", "my-service", |d, n, k| {
            d.name(n, k).map(|s| (s, n.pos()))
        });
        let indicator = if m.get("indicator").is_some() || m.get("indicatorRef").is_some() {
            self.os_indicator(&m)
        } else {
            None
        };
        let window = match m.get("timeWindow") {
            Some(w) => self.os_time_window(w),
            None => Some(Window::Rolling(Dur::from_days(30))),
        };
        // The spec requires it, but its own README example leaves it out: read as the most
        // common method, and say so.
        let method = m.opt(self, "budgetingMethod", |d, n, k| {
            d.choice(n, k, &["Occurrences", "Timeslices", "RatioTimeslices"])
        });
        if m.get("budgetingMethod").is_none() {
            self.warn(
                m.pos,
                "no `budgetingMethod`: read as `Occurrences` (good events over all events)",
            );
        }
        if method == Some("RatioTimeslices") {
            let pos = m.get("budgetingMethod").map_or(m.pos, Node::pos);
            self.error(
                pos,
                "`budgetingMethod: RatioTimeslices` (the average of the slices' ratios) is not evaluated by burnwatch; write `Occurrences` (good events over all events) or `Timeslices` with a `timeSliceTarget` (good slices over all slices)",
            );
        }
        let mut objectives = Vec::new();
        let mut composite_noted = false;
        if let Some(items) = m.req(self, "objectives", "[{target: 0.999}]", Decoder::list) {
            if items.is_empty() {
                let pos = m.get("objectives").map_or(m.pos, Node::pos);
                self.error(
                    pos,
                    "`objectives` is empty; give at least one, e.g. `- target: 0.999`",
                );
            }
            for item in items {
                let timeslices = method == Some("Timeslices");
                if let Some(o) =
                    self.os_objective(item, timeslices, window.as_ref(), &mut composite_noted)
                {
                    objectives.push(o);
                }
            }
        }
        if indicator.is_none()
            && m.get("indicator").is_none()
            && m.get("indicatorRef").is_none()
            && (objectives.is_empty() || objectives.iter().any(|o| o.indicator.is_none()))
        {
            self.error(
                m.pos,
                "an OpenSLO SLO needs `indicator` (an inline SLI) or `indicatorRef` (an SLI's name); add one",
            );
        }
        let policies = match m.get("alertPolicies") {
            None => None,
            Some(p) => {
                let items = self.list(p, "alertPolicies")?;
                if items.is_empty() {
                    None
                } else {
                    let mut out = Vec::new();
                    for i in items {
                        if let Some(r) =
                            self.os_ref(i, "alertPolicyRef", "AlertPolicy", Decoder::os_policy)
                        {
                            out.push(r);
                        }
                    }
                    Some(out)
                }
            }
        };
        if let (None, Some(w)) = (&policies, &window) {
            let pos = m.key_pos("alertPolicies").unwrap_or(meta.pos);
            let tiers: Vec<String> = default_tiers(w)
                .iter()
                .map(|t| {
                    format!(
                        "{} {} at {}x over {}",
                        t.severity,
                        t.name,
                        fmt_num(t.factor),
                        t.long
                    )
                })
                .collect();
            let msg = if tiers.is_empty() {
                "no `alertPolicies`, and the window is shorter than every default burn-rate tier: no burn-rate alerts".to_owned()
            } else {
                format!(
                    "no `alertPolicies`: burnwatch's default burn-rate tiers for the window apply ({}); write AlertPolicies to choose others",
                    tiers.join(", ")
                )
            };
            self.warn(pos, msg);
        }
        if let (Some(_), Some(pos)) = (&description, meta.display_pos) {
            self.warn(
                pos,
                "ignored: `displayName` (the SLO has a `description`, which burnwatch shows)",
            );
        }
        if let [one] = objectives.as_slice()
            && one.display.is_some()
        {
            let pos = one.display_pos.unwrap_or(one.pos);
            self.warn(
                pos,
                "ignored: `displayName` (an SLO with one objective is named by its `metadata.name`)",
            );
        }
        Some(SloDoc {
            description: description.or_else(|| meta.display.clone()),
            service: service?,
            indicator,
            window: window?,
            objectives,
            policies,
        })
    }

    /// `timeWindow`: exactly one rolling or calendar window.
    fn os_time_window(&mut self, n: &Node) -> Option<Window> {
        let items = self.list(n, "timeWindow")?;
        let [w] = items else {
            self.error(
                n.pos(),
                format!(
                    "`timeWindow` holds exactly one window, found {}; keep one",
                    items.len()
                ),
            );
            return None;
        };
        let m = MapReader::new(
            self,
            w,
            "a timeWindow",
            &["duration", "isRolling", "calendar"],
        )?;
        let (dur_node, written) = m.req(self, "duration", "28d", |d, n, k| {
            let s = d.scalar(n, k)?;
            Some((n, s))
        })?;
        let Some(short) = shorthand(&written) else {
            self.error(
                dur_node.pos(),
                format!("`duration: {written}` is not {SHORTHAND}"),
            );
            return None;
        };
        let calendar = m.get("calendar");
        let rolling = m
            .opt(self, "isRolling", Decoder::bool)
            .unwrap_or(calendar.is_none());
        if rolling {
            if let Some(pos) = m.key_pos("calendar") {
                self.error(
                    pos,
                    "`calendar` applies to `isRolling: false` windows; remove it or write `isRolling: false`",
                );
                return None;
            }
            let d = shorthand_dur(short);
            match short.1 {
                'M' | 'Q' | 'Y' => self.warn(
                    dur_node.pos(),
                    format!(
                        "a rolling `{written}` is read as {} ({} days per {}); for a calendar period write `isRolling: false` with a `calendar`",
                        d,
                        match short.1 {
                            'M' => 30,
                            'Q' => 90,
                            _ => 365,
                        },
                        match short.1 {
                            'M' => "month",
                            'Q' => "quarter",
                            _ => "year",
                        }
                    ),
                ),
                'm' if short.0 == 1 => self.warn(
                    dur_node.pos(),
                    "`duration: 1m` is one minute (in OpenSLO `m` is minutes, `M` months); for a month write `1M`",
                ),
                _ if d < Dur::DAY => self.warn(
                    dur_node.pos(),
                    format!("window {d} is shorter than a day, so the error budget resets quickly; SLO windows are usually 7d, 28d or 30d"),
                ),
                _ => {}
            }
            return Some(Window::Rolling(d));
        }
        let Some(cal) = calendar else {
            self.error(
                m.pos,
                "`isRolling: false` needs `calendar: {startTime: 2024-01-01 00:00:00, timeZone: UTC}`",
            );
            return None;
        };
        let c = MapReader::new(self, cal, "a calendar", &["startTime", "timeZone"])?;
        let (tz, tz_name) = match c.get("timeZone") {
            Some(z) => {
                let s = self.string(z, "timeZone")?;
                match jiff::tz::TimeZone::get(&s) {
                    Ok(tz) => (tz, s),
                    Err(_) => {
                        self.error(
                            z.pos(),
                            format!("unknown time zone `{s}`; write an IANA name such as Europe/Berlin, America/New_York or UTC"),
                        );
                        return None;
                    }
                }
            }
            None => {
                self.warn(
                    c.pos,
                    "the calendar has no `timeZone`: periods start in UTC",
                );
                (jiff::tz::TimeZone::UTC, "UTC".to_owned())
            }
        };
        let unit = match short {
            (1, 'w') => CalendarUnit::Week,
            (1, 'M') => CalendarUnit::Month,
            (1, 'Q') => CalendarUnit::Quarter,
            (1, 'm') => {
                self.warn(
                    dur_node.pos(),
                    "calendar `duration: 1m` is one minute (in OpenSLO `m` is minutes, `M` months), read as a one-minute window as the spec says (burnwatch has no calendar minute, so it rolls); for a calendar month write `1M`",
                );
                return Some(Window::Rolling(Dur::MINUTE));
            }
            _ => {
                self.error(
                    dur_node.pos(),
                    format!("a calendar window of `{written}` is not one of burnwatch's calendar periods; write `1w`, `1M` or `1Q`, or a rolling window (`isRolling: true`)"),
                );
                return None;
            }
        };
        if let Some(st) = c.get("startTime") {
            let text = self.scalar(st, "startTime")?;
            match start_time(&text) {
                None => {
                    self.error(
                        st.pos(),
                        format!("`startTime: {text}` is not a date and time such as 2024-01-01 00:00:00"),
                    );
                    return None;
                }
                Some(dt) if !on_boundary(dt, unit) => self.warn(
                    st.pos(),
                    format!(
                        "`startTime: {text}` is not the start of a calendar {}: burnwatch's periods start at calendar boundaries ({} 00:00 in {tz_name}), so startTime only tells the phase it would have had",
                        unit.as_str(),
                        match unit {
                            CalendarUnit::Week => "each Monday",
                            CalendarUnit::Month => "the 1st of each month",
                            CalendarUnit::Quarter => "1 January, April, July and October",
                        }
                    ),
                ),
                Some(_) => {}
            }
        }
        Some(Window::Calendar { unit, tz, tz_name })
    }

    fn os_objective(
        &mut self,
        n: &Node,
        timeslices: bool,
        window: Option<&Window>,
        composite_noted: &mut bool,
    ) -> Option<ObjectiveDoc> {
        const KEYS: &[&str] = &[
            "displayName",
            "op",
            "value",
            "target",
            "targetPercent",
            "timeSliceTarget",
            "timeSliceWindow",
            "indicator",
            "indicatorRef",
            "compositeWeight",
        ];
        let before = self.errors();
        let m = MapReader::new(self, n, "an OpenSLO objective", KEYS)?;
        let display = m.opt(self, "displayName", Decoder::scalar);
        for key in ["op", "value"] {
            self.ignored(
                &m,
                key,
                "it compares a thresholdMetric's values, which need a query source; a ratioMetric's objective is its `target`",
            );
        }
        let objective = match m.exactly_one(self, &["target", "targetPercent"]) {
            Some("target") => m.opt(self, "target", |d, n, k| {
                let v = d.os_number(n, k)?;
                if !(0.0..1.0).contains(&v) {
                    d.error(
                        n.pos(),
                        format!("`target: {}` is a fraction in [0, 1) such as 0.999; for a percentage write `targetPercent`", fmt_num(v)),
                    );
                    return None;
                }
                match Objective::from_percent(v * 100.0) {
                    Ok(o) => Some(o),
                    Err(e) => {
                        d.error(n.pos(), e.to_string());
                        None
                    }
                }
            }),
            Some(_) => m.opt(self, "targetPercent", Decoder::objective),
            None => None,
        };
        let slice = m.opt(self, "timeSliceWindow", |d, n, k| {
            // A bare number is minutes.
            let d_ = match n.kind() {
                Kind::Int(i) if *i > 0 => Some(Dur::from_mins(*i as u64)),
                _ => n
                    .scalar_text()
                    .and_then(|t| shorthand(&t))
                    .filter(|s| "mhd".contains(s.1))
                    .map(shorthand_dur),
            };
            let Some(s) = d_ else {
                d.type_error(n, k, "minutes or a duration shorthand such as 1m or 5m");
                return None;
            };
            if !Dur::HOUR.millis().is_multiple_of(s.millis()) {
                d.error(
                    n.pos(),
                    format!("timeSliceWindow {s} does not divide one hour evenly; write a slice such as 1m, 5m, 10m or 15m"),
                );
                return None;
            }
            if let Some(Window::Rolling(w)) = window
                && !w.millis().is_multiple_of(s.millis())
            {
                d.error(
                    n.pos(),
                    format!("timeSliceWindow {s} does not divide the {w} window evenly; write a slice that does, such as 1m"),
                );
                return None;
            }
            Some(s)
        });
        let slice_target = m.opt(self, "timeSliceTarget", |d, n, k| {
            let v = d.os_number(n, k)?;
            if v > 0.0 && v <= 1.0 {
                Some(v)
            } else {
                d.error(
                    n.pos(),
                    format!("`{k}: {}` is a fraction in (0, 1] such as 0.95", fmt_num(v)),
                );
                None
            }
        });
        let method = if timeslices {
            for key in ["timeSliceWindow", "timeSliceTarget"] {
                if m.get(key).is_none() {
                    self.error(
                        m.pos,
                        format!("a Timeslices objective needs `{key}`; add it (e.g. `timeSliceWindow: 1m`, `timeSliceTarget: 0.95`)"),
                    );
                }
            }
            BudgetingMethod::Timeslices {
                slice: slice.unwrap_or(Dur::MINUTE),
                target: slice_target.unwrap_or(1.0),
            }
        } else {
            for key in ["timeSliceWindow", "timeSliceTarget"] {
                self.ignored(&m, key, "only Timeslices budgets are counted in slices");
            }
            BudgetingMethod::Occurrences
        };
        let indicator = if m.get("indicator").is_some() || m.get("indicatorRef").is_some() {
            if !*composite_noted {
                *composite_noted = true;
                let pos = m
                    .key_pos("indicator")
                    .or(m.key_pos("indicatorRef"))
                    .unwrap_or(m.pos);
                self.warn(
                    pos,
                    "each objective with its own indicator (a composite SLO) is its own burnwatch SLO; the composite budget over them is not computed",
                );
            }
            self.os_indicator(&m)
        } else {
            None
        };
        self.ignored(
            &m,
            "compositeWeight",
            "the composite budget is not computed: each objective is its own SLO",
        );
        if self.errors() > before {
            return None;
        }
        Some(ObjectiveDoc {
            pos: m.pos,
            display,
            display_pos: m.key_pos("displayName"),
            objective: objective?,
            method,
            indicator,
        })
    }

    fn os_number(&mut self, n: &Node, key: &str) -> Option<f64> {
        match n.kind() {
            Kind::Int(i) => Some(*i as f64),
            Kind::Float(f) if f.is_finite() => Some(*f),
            _ => {
                self.type_error(n, key, "a number");
                None
            }
        }
    }

    /// An SLI's `spec`.
    fn os_sli(&mut self, n: &Node) -> Option<Sli> {
        let m = MapReader::new(
            self,
            n,
            "an OpenSLO SLI spec",
            &["description", "thresholdMetric", "ratioMetric"],
        )?;
        self.ignored(
            &m,
            "description",
            "burnwatch describes an SLO by the SLO's `description`",
        );
        let key = m.exactly_one(self, &["thresholdMetric", "ratioMetric"])?;
        let node = m.get(key)?;
        if key == "thresholdMetric" {
            let t = MapReader::new(self, node, "a thresholdMetric", &["metricSource"])?;
            let source = t.req(
                self,
                "metricSource",
                "{type: Prometheus, spec: {query: ...}}",
                |d, n, _| d.os_source_ref(n),
            )?;
            return Some(Sli::Query {
                what: "a `thresholdMetric` (values compared with the objective's `op` and `value`)",
                pos: node.pos(),
                sources: vec![source],
            });
        }
        let r = MapReader::new(
            self,
            node,
            "a ratioMetric",
            &["counter", "good", "bad", "total", "rawType", "raw"],
        )?;
        let counter = r.opt(self, "counter", Decoder::bool);
        let metric = |d: &mut Self, n: &Node, _: &str| {
            let mm = MapReader::new(d, n, "a ratioMetric query", &["metricSource"])?;
            mm.req(
                d,
                "metricSource",
                "{type: Prometheus, spec: {query: ...}}",
                |d, n, _| d.os_source_ref(n),
            )
        };
        if r.get("raw").is_some() {
            for key in ["good", "bad", "total"] {
                if let Some(pos) = r.key_pos(key) {
                    self.error(pos, format!("`{key}` cannot be used with `raw`; keep one"));
                }
            }
            r.req(self, "rawType", "success", |d, n, k| {
                d.choice(n, k, &["success", "failure"])
            });
            self.ignored(&r, "counter", "it has no effect with `raw`");
            let source = r.opt(self, "raw", metric)?;
            return Some(Sli::Query {
                what: "a `raw` ratio (a precomputed ratio, not events)",
                pos: r.key_pos("raw").unwrap_or(r.pos),
                sources: vec![source],
            });
        }
        if let Some(pos) = r.key_pos("rawType") {
            self.error(
                pos,
                "`rawType` goes with `raw`; remove it, or write the ratio as `raw`",
            );
        }
        let which = r.exactly_one(self, &["good", "bad"]);
        let num = which.and_then(|k| r.opt(self, k, metric));
        let total = r.req(self, "total", "{metricSource: ...}", metric);
        Some(Sli::Ratio {
            counter: counter.unwrap_or(false),
            numerator: if which == Some("bad") {
                RatioNumerator::Bad
            } else {
                RatioNumerator::Good
            },
            num: num?,
            total: total?,
        })
    }

    /// A `metricSource`.
    fn os_source_ref(&mut self, n: &Node) -> Option<Source> {
        let m = MapReader::new(
            self,
            n,
            "a metricSource",
            &["metricSourceRef", "type", "spec"],
        )?;
        let source_ref = m.opt(self, "metricSourceRef", |d, n, k| {
            d.name(n, k).map(|s| (s, n.pos()))
        });
        let kind = m.opt(self, "type", Decoder::string);
        if source_ref.is_none() && kind.is_none() {
            self.error(
                m.pos,
                "a metricSource needs `type` (e.g. Prometheus) or `metricSourceRef` (a DataSource's name); add one",
            );
        }
        let mut query = None;
        let mut other = Vec::new();
        if let Some(spec) = m.get("spec") {
            match spec.kind() {
                Kind::Map(entries) => {
                    for (k, v) in entries {
                        let key = k.scalar_text().unwrap_or_default();
                        if key == "query" {
                            if let Some(q) = self.string(v, "query") {
                                query = Some((q, v.pos()));
                            }
                        } else {
                            other.push((key, k.pos()));
                        }
                    }
                }
                Kind::Null => {}
                _ => self.type_error(spec, "spec", "a mapping such as {query: ...}"),
            }
        }
        Some(Source {
            pos: m.pos,
            source_ref,
            kind,
            query,
            other,
        })
    }

    fn os_policy(&mut self, n: &Node) -> Option<Policy> {
        const KEYS: &[&str] = &[
            "description",
            "alertWhenNoData",
            "alertWhenResolved",
            "alertWhenBreaching",
            "conditions",
            "notificationTargets",
        ];
        let m = MapReader::new(self, n, "an AlertPolicy spec", KEYS)?;
        self.ignored(
            &m,
            "description",
            "burnwatch writes its own alert descriptions, with the numbers",
        );
        let no_data = m
            .opt(self, "alertWhenNoData", Decoder::bool)
            .unwrap_or(false);
        let breaching = m
            .opt(self, "alertWhenBreaching", Decoder::bool)
            .unwrap_or(true);
        if !breaching {
            let pos = m.key_pos("alertWhenBreaching").unwrap_or(m.pos);
            self.warn(
                pos,
                "`alertWhenBreaching: false`: this policy's condition makes no burn-rate alert",
            );
        }
        if let Some(pos) = m.key_pos("alertWhenResolved") {
            self.warn(
                pos,
                "ignored: `alertWhenResolved` (whether a resolution is sent is each receiver's `send_resolved` in the agent config)",
            );
            m.opt(self, "alertWhenResolved", Decoder::bool);
        }
        let items = m.req(
            self,
            "conditions",
            "[{conditionRef: my-condition}]",
            Decoder::list,
        )?;
        let condition = match items {
            [one] => self.os_ref(one, "conditionRef", "AlertCondition", Decoder::os_condition),
            _ => {
                let pos = m.get("conditions").map_or(m.pos, Node::pos);
                self.error(
                    pos,
                    format!("an AlertPolicy holds exactly one condition (the spec's limit), found {}; for several windows write one policy per condition", items.len()),
                );
                None
            }
        };
        let mut targets = Vec::new();
        if let Some(items) = m.opt(self, "notificationTargets", Decoder::list) {
            for i in items {
                if let Some(t) = self.os_ref(
                    i,
                    "targetRef",
                    "AlertNotificationTarget",
                    Decoder::os_target,
                ) {
                    targets.push(t);
                }
            }
        }
        Some(Policy {
            no_data,
            breaching,
            condition: condition?,
            targets,
        })
    }

    fn os_condition(&mut self, n: &Node) -> Option<Condition> {
        let m = MapReader::new(
            self,
            n,
            "an AlertCondition spec",
            &["description", "severity", "condition"],
        )?;
        self.ignored(
            &m,
            "description",
            "burnwatch writes its own alert descriptions, with the numbers",
        );
        let severity = m.req(self, "severity", "page", Decoder::severity);
        let c = m.req(
            self,
            "condition",
            "{kind: burnrate, op: gt, threshold: 14.4, lookbackWindow: 1h}",
            |_, n, _| Some(n),
        )?;
        let c = MapReader::new(
            self,
            c,
            "an alert condition",
            &["kind", "op", "threshold", "lookbackWindow", "alertAfter"],
        )?;
        c.opt(self, "kind", |d, n, k| d.choice(n, k, &["burnrate"]));
        if let Some(op) = c.req(self, "op", "gt", |d, n, k| {
            d.choice(n, k, &["gt", "gte", "lt", "lte"])
        }) && op.starts_with('l')
        {
            let pos = c.get("op").map_or(c.pos, Node::pos);
            self.warn(
                pos,
                format!("`op: {op}` would alert while the burn rate is below the threshold; burnwatch alerts when it is above (read as `gt`)"),
            );
        }
        let factor = c.req(self, "threshold", "14.4", |d, n, k| {
            let v = d.os_number(n, k)?;
            if v > 0.0 {
                Some(v)
            } else {
                d.error(
                    n.pos(),
                    format!("`{k}` must be a burn rate above 0, e.g. 14.4"),
                );
                None
            }
        });
        let long = c.req(self, "lookbackWindow", "1h", |d, n, k| d.os_minutes(n, k));
        // `0m`, the spec's default, is written too.
        let for_ = match c.get("alertAfter") {
            Some(a) => self.os_minutes(a, "alertAfter"),
            None => Some(Dur(0)),
        };
        Some(Condition {
            severity: severity?,
            factor: factor?,
            long: long?,
            long_pos: c.get("lookbackWindow").map_or(c.pos, Node::pos),
            for_: for_?,
        })
    }

    /// A duration shorthand in minutes, hours, days or weeks (alert windows).
    fn os_minutes(&mut self, n: &Node, key: &str) -> Option<Dur> {
        let text = n.scalar_text().unwrap_or_default();
        if text == "0m" || text == "0" {
            return Some(Dur(0));
        }
        match shorthand(&text) {
            Some(s) if "mhdw".contains(s.1) && s.0 > 0 => Some(shorthand_dur(s)),
            _ => {
                self.error(
                    n.pos(),
                    format!("`{key}: {text}` is not a duration shorthand in minutes, hours, days or weeks, such as 5m, 1h or 1d"),
                );
                None
            }
        }
    }

    /// An AlertNotificationTarget's `spec`: `target` is reported (burnwatch sends through the
    /// receivers of its agent config, routed on the tier's [`TARGET_LABEL`]).
    fn os_target(&mut self, n: &Node) -> Option<()> {
        let m = MapReader::new(
            self,
            n,
            "an AlertNotificationTarget spec",
            &["target", "description"],
        )?;
        self.ignored(
            &m,
            "description",
            "burnwatch receivers are described in the agent config",
        );
        let target = m.req(self, "target", "slack", Decoder::scalar)?;
        let pos = m.get("target").map_or(m.pos, Node::pos);
        self.warn(
            pos,
            format!("target `{target}` is not sent to by burnwatch itself: the alerts of the policies naming this target carry its `metadata.name` in the label `{TARGET_LABEL}` (several joined by `,`); route on that label to a receiver in the agent config"),
        );
        Some(())
    }

    /// A DataSource's `spec`: its `type`.
    fn os_source(&mut self, n: &Node) -> Option<Option<String>> {
        let m = MapReader::new(
            self,
            n,
            "a DataSource spec",
            &["description", "type", "connectionDetails"],
        )?;
        self.ignored(&m, "description", "a DataSource's description");
        self.ignored(
            &m,
            "connectionDetails",
            "burnwatch reads the counters from its own scrape targets: declare them under `scrape:` in a burnwatch/v1 document",
        );
        Some(m.opt(self, "type", Decoder::string))
    }
}

/// `2020-01-21 12:30:00` (or with `T`, seconds optional) as a civil date and time.
fn start_time(text: &str) -> Option<jiff::civil::DateTime> {
    let t = text.trim();
    let (date, time) = t.split_once([' ', 'T']).unwrap_or((t, "00:00:00"));
    let mut d = date.split('-').map(|p| p.parse::<i32>().ok());
    let (y, mo, da) = (d.next()??, d.next()??, d.next()??);
    if d.next().is_some() {
        return None;
    }
    let mut tp = time.trim().split(':').map(|p| p.parse::<i32>().ok());
    let (h, mi) = (tp.next()??, tp.next()??);
    let s = tp.next().unwrap_or(Some(0))?;
    if tp.next().is_some() {
        return None;
    }
    jiff::civil::DateTime::new(
        i16::try_from(y).ok()?,
        i8::try_from(mo).ok()?,
        i8::try_from(da).ok()?,
        i8::try_from(h).ok()?,
        i8::try_from(mi).ok()?,
        i8::try_from(s).ok()?,
        0,
    )
    .ok()
}

/// True when `dt` starts a calendar period of `unit` (burnwatch's periods start there).
fn on_boundary(dt: jiff::civil::DateTime, unit: CalendarUnit) -> bool {
    let midnight = dt.hour() == 0 && dt.minute() == 0 && dt.second() == 0;
    midnight
        && match unit {
            CalendarUnit::Week => dt.weekday() == jiff::civil::Weekday::Monday,
            CalendarUnit::Month => dt.day() == 1,
            CalendarUnit::Quarter => dt.day() == 1 && (dt.month() - 1) % 3 == 0,
        }
}

/// Where an object is: its file (index in the file set) and the object.
type At<'a, T> = (usize, &'a Named<T>);

/// Joins the OpenSLO objects of a file set: reports duplicate names and dangling references,
/// builds the SLOs (one per objective) and services (one per `spec.service`), and adds them to the
/// file each service is first named in.
pub(crate) fn resolve(files: &mut [(PathBuf, FileRules)], objects: Vec<Objects>) {
    if objects.iter().all(|o| o.decls.is_empty()) {
        return;
    }
    for ((_, fr), o) in files.iter_mut().zip(&objects) {
        fr.openslo_objects = o.decls.iter().filter(|(k, _)| *k != "SLO").count();
    }
    let paths: Vec<PathBuf> = files.iter().map(|(p, _)| p.clone()).collect();
    let mut r = Resolver {
        paths: &paths,
        diags: Vec::new(),
    };
    // Names are unique per kind across the file set.
    let mut declared: HashMap<(&str, &str), (usize, Pos)> = HashMap::new();
    for (i, o) in objects.iter().enumerate() {
        for (kind, d) in &o.decls {
            if let Some((fi, fpos)) = declared.get(&(*kind, d.name.as_str())) {
                let msg = format!(
                    "{kind} `{}` is already declared at {}:{}; names must be unique per kind across all rules files: rename one",
                    d.name,
                    paths[*fi].display(),
                    fpos
                );
                r.error(i, d.pos, msg);
            } else {
                declared.insert((kind, &d.name), (i, d.pos));
            }
        }
    }
    fn index<T>(
        objects: &[Objects],
        get: fn(&Objects) -> &Vec<Named<T>>,
    ) -> HashMap<&str, At<'_, T>> {
        let mut out = HashMap::new();
        for (i, o) in objects.iter().enumerate() {
            for n in get(o) {
                out.entry(n.meta.name.as_str()).or_insert((i, n));
            }
        }
        out
    }
    let ix = Index {
        declared: &declared,
        slis: index(&objects, |o| &o.slis),
        policies: index(&objects, |o| &o.policies),
        conditions: index(&objects, |o| &o.conditions),
        targets: index(&objects, |o| &o.targets),
        sources: index(&objects, |o| &o.sources),
    };
    let services_docs = index(&objects, |o| &o.services);

    // A policy's references are resolved even when no SLO uses it.
    for (fi, o) in objects.iter().enumerate() {
        for p in &o.policies {
            r.policy_refs(fi, p, &ix);
        }
    }
    let mut services: Vec<(usize, Service)> = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    let mut slo_names: HashMap<(String, String), (usize, Pos)> = HashMap::new();
    for (fi, o) in objects.iter().enumerate() {
        for doc in &o.slos {
            let (svc_name, svc_pos) = &doc.spec.service;
            let svc_labels = services_docs
                .get(svc_name.as_str())
                .map(|(_, s)| s.meta.labels.clone())
                .unwrap_or_default();
            let slos = r.slo(fi, doc, &svc_labels, &ix);
            let at = *by_name.entry(svc_name.clone()).or_insert_with(|| {
                services.push((
                    fi,
                    Service {
                        file: paths[fi].clone(),
                        name: svc_name.clone(),
                        labels: svc_labels.clone(),
                        owner: None,
                        runbook: None,
                        dashboard: None,
                        slos: Vec::new(),
                        spec: Spec::OpenSlo,
                    },
                ));
                files[fi].1.service_decls.push(Decl {
                    name: svc_name.clone(),
                    pos: *svc_pos,
                });
                services.len() - 1
            });
            for slo in slos {
                let key = (svc_name.clone(), slo.id.slo.clone());
                if let Some((ffi, fpos)) = slo_names.get(&key) {
                    let msg = format!(
                        "SLO `{}` of service `{svc_name}` is already made at {}:{} (each objective is one SLO named `<metadata.name>` or `<metadata.name>-<displayName>`); rename one",
                        slo.id.slo,
                        paths[*ffi].display(),
                        fpos
                    );
                    r.error(fi, doc.meta.pos, msg);
                    continue;
                }
                slo_names.insert(key, (fi, doc.meta.pos));
                services[at].1.slos.push(slo);
            }
        }
    }
    for (fi, d) in std::mem::take(&mut r.diags) {
        files[fi].1.diagnostics.push(d);
    }
    for (fi, svc) in services {
        let fr = &mut files[fi].1;
        fr.summaries.push(ServiceSummary {
            service: svc.name.clone(),
            slos: svc.slos.len(),
            grouped: svc.slos.iter().filter(|s| s.is_template()).count(),
            probes: 0,
            scrapes: 0,
            queries: svc
                .slos
                .iter()
                .filter(|s| s.indicator.query_source().is_some())
                .count(),
            spec: svc.spec,
        });
        fr.services.push(svc);
    }
    for (_, fr) in files.iter_mut() {
        // An SLI or policy shared by several SLOs reports its problem once.
        fr.diagnostics
            .sort_by(|a, b| (a.pos, &a.message).cmp(&(b.pos, &b.message)));
        fr.diagnostics
            .dedup_by(|a, b| a.pos == b.pos && a.message == b.message);
    }
}

/// The named objects of the file set, by kind.
struct Index<'a> {
    declared: &'a HashMap<(&'a str, &'a str), (usize, Pos)>,
    slis: HashMap<&'a str, At<'a, Sli>>,
    policies: HashMap<&'a str, At<'a, Policy>>,
    conditions: HashMap<&'a str, At<'a, Condition>>,
    targets: HashMap<&'a str, At<'a, ()>>,
    sources: HashMap<&'a str, At<'a, Option<String>>>,
}

/// Builds SLOs across the file set, collecting diagnostics per file.
struct Resolver<'p> {
    paths: &'p [PathBuf],
    diags: Vec<(usize, Diagnostic)>,
}

impl Resolver<'_> {
    fn push(&mut self, file: usize, pos: Pos, severity: Severity, message: String) {
        self.diags.push((
            file,
            Diagnostic {
                file: self.paths[file].clone(),
                pos,
                severity,
                message,
            },
        ));
    }
    fn error(&mut self, file: usize, pos: Pos, message: String) {
        self.push(file, pos, Severity::Error, message);
    }
    fn warn(&mut self, file: usize, pos: Pos, message: String) {
        self.push(file, pos, Severity::Warning, message);
    }

    /// The object a reference names, or an error at the reference. `None` without an error when
    /// the name is declared but its object has errors of its own (already reported).
    fn lookup<'a, T>(
        &mut self,
        file: usize,
        r: &'a Ref<T>,
        kind: &'static str,
        map: &HashMap<&str, At<'a, T>>,
        ix: &Index<'_>,
    ) -> Option<At<'a, T>> {
        match r {
            Ref::Inline(o) => Some((file, &**o)),
            Ref::Name(name, pos) => {
                if let Some(at) = map.get(name.as_str()) {
                    return Some(*at);
                }
                if ix.declared.contains_key(&(kind, name.as_str())) {
                    return None;
                }
                let names: Vec<&str> = map.keys().copied().collect();
                let hint = match crate::rules::diag::did_you_mean(name, &names) {
                    Some(n) => format!("did you mean `{n}`?"),
                    None => format!(
                        "declare a `kind: {kind}` object named `{name}` in one of the rules files"
                    ),
                };
                self.error(file, *pos, format!("unknown {kind} `{name}`; {hint}"));
                None
            }
        }
    }

    /// The one place an SLI burnwatch cannot count from scrapes is handled: today an error at the
    /// SLI saying why (a query source, which asks the metrics backend itself, is what reads it).
    fn needs_query_source(
        &mut self,
        file: usize,
        pos: Pos,
        why: &str,
    ) -> Option<(Indicator, Vec<String>)> {
        self.error(
            file,
            pos,
            format!("this SLI needs a query source that reads counters, which burnwatch cannot make of it: {why}; burnwatch counts Prometheus counters, from its own scrapes (a `type: Prometheus` source with a query `sum(<selector>)`, `<selector>` or `sum(rate(<selector>[5m]))`) or from a `sources.prometheus` query source (any query of a `type: Prometheus` source with `counter: true`)"),
        );
        None
    }

    /// The type of a metric source: its own, or its DataSource's.
    fn source_type(&mut self, file: usize, s: &Source, ix: &Index<'_>) -> Option<String> {
        if let Some((name, pos)) = &s.source_ref {
            let r = Ref::Name(name.clone(), *pos);
            let found = self.lookup(file, &r, "DataSource", &ix.sources, ix);
            if let (Some((_, ds)), None) = (found, &s.kind) {
                return ds.spec.clone().or_else(|| {
                    self.error(file, *pos, format!("DataSource `{name}` has no `type`, and this metricSource none either; add `type: Prometheus` to one"));
                    None
                });
            }
            found?;
        }
        s.kind.clone()
    }

    /// An SLI as an indicator and its `group_by` labels.
    fn indicator(
        &mut self,
        file: usize,
        sli: &Sli,
        ix: &Index<'_>,
    ) -> Option<(Indicator, Vec<String>)> {
        match sli {
            Sli::Query { what, pos, sources } => {
                for s in sources {
                    self.source_type(file, s, ix);
                }
                self.needs_query_source(file, *pos, &format!("{what} is not a count of events"))
            }
            Sli::Ratio {
                counter,
                numerator,
                num,
                total,
            } => {
                let mut sums = Vec::new();
                // The queries as written, and the first one that did not translate.
                let mut queries = Vec::new();
                let mut untranslated = None;
                for s in [num, total] {
                    let kind = self.source_type(file, s, ix)?;
                    if !kind.eq_ignore_ascii_case("prometheus") {
                        return self.needs_query_source(
                            file,
                            s.pos,
                            &format!("a metric source of type `{kind}`"),
                        );
                    }
                    for (key, pos) in &s.other {
                        self.warn(
                            file,
                            *pos,
                            format!(
                                "ignored: `spec.{key}` (a Prometheus source is read by its `query`)"
                            ),
                        );
                    }
                    let Some((q, qpos)) = &s.query else {
                        return self.needs_query_source(
                            file,
                            s.pos,
                            "a Prometheus source without `spec.query`",
                        );
                    };
                    queries.push(q.clone());
                    match promql::counter(q, *counter) {
                        Ok(sum) => sums.push(sum),
                        Err(why) => {
                            untranslated.get_or_insert((why, *qpos));
                        }
                    }
                }
                if let Some((why, pos)) = untranslated {
                    // `counter: true` says the queries return counters: the agent reads them
                    // from its query source and tracks them per series (docs/sources.md).
                    let [nq, tq] = <[String; 2]>::try_from(queries).ok()?;
                    if !*counter || nq.contains("{{") || tq.contains("{{") {
                        return self.needs_query_source(file, pos, &why.0);
                    }
                    self.warn(file, pos, why.needs_a_source());
                    return Some((
                        Indicator::Query {
                            source: None,
                            numerator: *numerator,
                            numerator_query: nq,
                            total_query: tq,
                        },
                        Vec::new(),
                    ));
                }
                let [n, t] = <[promql::Sum; 2]>::try_from(sums).ok()?;
                if n.by != t.by {
                    self.error(
                        file,
                        total.query.as_ref().map_or(total.pos, |q| q.1),
                        "the queries sum by different labels; an SLO per label set needs the same `by (...)` in both".to_owned(),
                    );
                    return None;
                }
                let sli = match numerator {
                    RatioNumerator::Good => promql::EventsSli::Good { good: n, total: t },
                    RatioNumerator::Bad => promql::EventsSli::Bad { bad: n, total: t },
                };
                Some(sli.into_indicator())
            }
        }
    }

    /// A policy's condition and notification targets, each reported if it dangles.
    fn policy_refs<'a>(
        &mut self,
        file: usize,
        policy: &'a Named<Policy>,
        ix: &Index<'a>,
    ) -> Option<(At<'a, Condition>, Vec<String>)> {
        let cond = self.lookup(
            file,
            &policy.spec.condition,
            "AlertCondition",
            &ix.conditions,
            ix,
        );
        let mut names = Vec::new();
        let mut ok = true;
        for t in &policy.spec.targets {
            match self.lookup(file, t, "AlertNotificationTarget", &ix.targets, ix) {
                Some((_, t)) => names.push(t.meta.name.clone()),
                None => ok = false,
            }
        }
        Some((cond?, names)).filter(|_| ok)
    }

    /// One burnwatch tier per policy whose condition alerts on breaching.
    fn tiers(
        &mut self,
        file: usize,
        doc: &SloDoc,
        ix: &Index<'_>,
    ) -> Option<(Vec<BurnTier>, bool)> {
        let Some(policies) = &doc.policies else {
            return Some((default_tiers(&doc.window), true));
        };
        let nominal = doc.window.nominal();
        let mut tiers: Vec<BurnTier> = Vec::new();
        let mut no_data = false;
        let mut ok = true;
        for p in policies {
            let Some((pf, policy)) = self.lookup(file, p, "AlertPolicy", &ix.policies, ix) else {
                ok = false;
                continue;
            };
            no_data |= policy.spec.no_data;
            let Some(((cf, cond), names)) = self.policy_refs(pf, policy, ix) else {
                ok = false;
                continue;
            };
            if !policy.spec.breaching {
                continue;
            }
            let c = &cond.spec;
            let short = Dur((c.long.millis() / 12 / 60_000).max(1) * 60_000);
            if c.long > nominal {
                self.error(cf, c.long_pos, format!("lookbackWindow {} is longer than the {nominal} window of SLO `{}`; write at most {nominal}", c.long, doc.service.0));
                ok = false;
                continue;
            }
            if short >= c.long {
                self.error(cf, c.long_pos, format!("lookbackWindow {} is too short for a burn-rate alert (its short window is a twelfth of it, at least 1m); write 2m or more", c.long));
                ok = false;
                continue;
            }
            let name = policy.meta.name.clone();
            if tiers.iter().any(|t| t.name == name) {
                self.error(
                    pf,
                    policy.meta.pos,
                    format!("AlertPolicy `{name}` is given twice to one SLO; give it once"),
                );
                ok = false;
                continue;
            }
            let mut labels = Labels::new();
            if !names.is_empty() {
                labels.insert(TARGET_LABEL.to_owned(), names.join(","));
            }
            tiers.push(BurnTier {
                name,
                severity: c.severity.clone(),
                long: c.long,
                short,
                factor: c.factor,
                for_: c.for_,
                keep_firing_for: Dur(0),
                labels,
                annotations: Labels::new(),
            });
        }
        ok.then_some((tiers, no_data))
    }

    /// The burnwatch SLOs of one OpenSLO SLO: one per objective.
    fn slo(
        &mut self,
        file: usize,
        doc: &Named<SloDoc>,
        svc_labels: &Labels,
        ix: &Index<'_>,
    ) -> Vec<Slo> {
        let spec = &doc.spec;
        let shared = spec.indicator.as_ref().map(|r| {
            self.lookup(file, r, "SLI", &ix.slis, ix)
                .and_then(|(sf, sli)| self.indicator(sf, &sli.spec, ix))
        });
        let alerting = self.tiers(file, spec, ix);
        let mut labels = svc_labels.clone();
        labels.extend(doc.meta.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        let several = spec.objectives.len() > 1;
        let mut out = Vec::new();
        for (i, o) in spec.objectives.iter().enumerate() {
            let ind = match &o.indicator {
                Some(r) => self
                    .lookup(file, r, "SLI", &ix.slis, ix)
                    .and_then(|(sf, sli)| self.indicator(sf, &sli.spec, ix)),
                None => shared.clone().flatten(),
            };
            let name = if several {
                let s = o.display.as_deref().map(slug).filter(|s| !s.is_empty());
                format!(
                    "{}-{}",
                    doc.meta.name,
                    s.unwrap_or_else(|| (i + 1).to_string())
                )
            } else {
                doc.meta.name.clone()
            };
            if name.len() > 128 {
                self.error(file, o.pos, format!("the SLO name `{name}` made from this objective is over 128 characters; shorten its displayName"));
                continue;
            }
            let (Some((indicator, by)), Some((mut tiers, no_data))) = (ind, alerting.clone())
            else {
                continue;
            };
            for t in &mut tiers {
                t.annotations.extend(
                    doc.meta
                        .annotations
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone())),
                );
            }
            out.push(Slo {
                id: SloId {
                    service: spec.service.0.clone(),
                    slo: name,
                },
                description: spec.description.clone(),
                labels: labels.clone(),
                objective: o.objective,
                window: spec.window.clone(),
                method: o.method.clone(),
                indicator,
                alerting: Alerting {
                    tiers,
                    no_data_alert: no_data.then(AlertRule::no_data_default),
                    ..Alerting::default()
                },
                no_data: NoDataPolicy::Ignore,
                group: (!by.is_empty()).then_some(Grouping::Template {
                    by,
                    max_instances: DEFAULT_MAX_INSTANCES,
                }),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorthands() {
        assert_eq!(shorthand("28d"), Some((28, 'd')));
        assert_eq!(shorthand("1M"), Some((1, 'M')));
        assert_eq!(shorthand("1m"), Some((1, 'm')));
        assert_eq!(shorthand("m"), None);
        assert_eq!(shorthand("1.5h"), None);
        assert_eq!(shorthand("1s"), None);
        assert_eq!(shorthand("-1d"), None);
        assert_eq!(shorthand("99999999999999999999d"), None);
        assert_eq!(shorthand_dur((1, 'M')), Dur::from_days(30));
        assert_eq!(shorthand_dur((1, 'Q')), Dur::from_days(90));
        assert_eq!(shorthand_dur((1, 'Y')), Dur::from_days(365));
        assert_eq!(shorthand_dur((2, 'w')), Dur::from_days(14));
        assert_eq!(slug("Internal objective"), "internal-objective");
        assert_eq!(slug("  SLA!! "), "sla");
        assert_eq!(slug("é"), "");
    }

    #[test]
    fn calendar_boundaries() {
        let dt = |s: &str| start_time(s).expect(s);
        assert!(on_boundary(dt("2024-01-01 00:00:00"), CalendarUnit::Month));
        assert!(on_boundary(dt("2024-04-01T00:00"), CalendarUnit::Quarter));
        assert!(!on_boundary(
            dt("2024-05-01 00:00:00"),
            CalendarUnit::Quarter
        ));
        assert!(!on_boundary(dt("2022-01-01 12:00:00"), CalendarUnit::Month));
        // 2024-01-01 is a Monday, 2022-01-01 a Saturday.
        assert!(on_boundary(dt("2024-01-01"), CalendarUnit::Week));
        assert!(!on_boundary(dt("2022-01-01 00:00:00"), CalendarUnit::Week));
        assert_eq!(start_time("2022-13-01 00:00:00"), None);
        assert_eq!(start_time("yesterday"), None);
    }

    /// An SLO, its SLI in a list, and a policy: every kind and reference the reader resolves.
    const GOOD: &str = "- apiVersion: openslo/v1\n  kind: SLI\n  metadata: {name: s}\n  spec:\n    ratioMetric:\n      counter: true\n      good: {metricSource: {type: Prometheus, spec: {query: 'sum(x{code=\"200\"})'}}}\n      total: {metricSource: {metricSourceRef: p, spec: {query: 'sum(rate(x[5m]))'}}}\n- apiVersion: openslo/v1\n  kind: DataSource\n  metadata: {name: p}\n  spec: {type: Prometheus}\n---\napiVersion: openslo/v1\nkind: SLO\nmetadata: {name: a, labels: {team: [x, y]}}\nspec:\n  service: shop\n  indicatorRef: s\n  timeWindow: [{duration: 1M, calendar: {startTime: 2024-01-01 00:00:00, timeZone: UTC}}]\n  budgetingMethod: Timeslices\n  objectives: [{displayName: A, target: 0.99, timeSliceTarget: 0.9, timeSliceWindow: 1m}, {targetPercent: 99.9, timeSliceTarget: 1, timeSliceWindow: 5}]\n  alertPolicies:\n    - kind: AlertPolicy\n      metadata: {name: p}\n      spec:\n        alertWhenNoData: true\n        conditions: [{kind: AlertCondition, metadata: {name: c}, spec: {severity: page, condition: {op: gt, threshold: 14.4, lookbackWindow: 1h, alertAfter: 5m}}}]\n        notificationTargets: [{kind: AlertNotificationTarget, metadata: {name: t}, spec: {target: email}}]\n";

    #[test]
    fn the_good_file_reads() {
        let rules = crate::rules::load_str("g.yaml", GOOD).expect("reads");
        let names: Vec<&str> = rules.slos().map(|s| s.id.slo.as_str()).collect();
        assert_eq!(names, ["a-a", "a-2"]);
        let t = &rules.slos().next().expect("slo").alerting.tiers[0];
        assert_eq!(t.labels.get(TARGET_LABEL).map(String::as_str), Some("t"));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,200}", cut in 0usize..2000, insert in "[ :\\-\\[\\]{},'\"a-zA-Z0-9%.]{0,6}") {
            let _ = crate::rules::load_str("t.yaml", &format!("apiVersion: openslo/v1\n{text}"));
            let mut good = GOOD.to_owned();
            let at = cut.min(good.len());
            if good.is_char_boundary(at) {
                good.insert_str(at, &insert);
                let _ = crate::rules::load_str("t.yaml", &good);
            }
        }
    }
}
