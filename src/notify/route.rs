//! The routing tree: which receivers an alert goes to and how it is grouped there, with
//! Alertmanager's semantics (`route:` of `alertmanager.yml`).
//!
//! Traversal is depth-first: an alert goes to the first matching child of a node, to the
//! following siblings as well when that child has `continue: true`, and to the node itself when
//! no child matches. Children inherit every option they do not set. Route keys and group keys
//! are built exactly as Alertmanager builds them (`{}/{severity="page"}:{alertname="X"}`), so
//! webhook consumers and PagerDuty dedup keys see the same strings.
//!
//! Pure: no I/O, no clock.

use std::collections::BTreeSet;
use std::path::Path;

use crate::alert::{Matchers, labels_string, matcher::is_label_name};
use crate::rules::decode::{Decoder, MapReader};
use crate::rules::diag::{Diagnostic, Severity};
use crate::rules::model::Labels;
use crate::rules::node::{self, Node, Pos};
use crate::time::Dur;

/// Alertmanager's default `group_wait`.
pub const DEFAULT_GROUP_WAIT: Dur = Dur::from_secs(30);
/// Alertmanager's default `group_interval`.
pub const DEFAULT_GROUP_INTERVAL: Dur = Dur::from_mins(5);
/// Alertmanager's default `repeat_interval`.
pub const DEFAULT_REPEAT_INTERVAL: Dur = Dur::from_hours(4);

/// Which labels an aggregation group is keyed by.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum GroupBy {
    /// No `group_by`: one group for every alert of the route.
    #[default]
    None,
    /// These label names, sorted and unique.
    Labels(BTreeSet<String>),
    /// `['...']`: every label, which effectively disables grouping.
    All,
}

impl GroupBy {
    /// The group labels of an alert: the values of the grouped names that the alert has.
    pub fn group_labels(&self, labels: &Labels) -> Labels {
        match self {
            GroupBy::None => Labels::new(),
            GroupBy::All => labels.clone(),
            GroupBy::Labels(names) => labels
                .iter()
                .filter(|(k, v)| names.contains(*k) && !v.is_empty())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}

/// A route as written: every option may be unset, to be inherited from the parent.
#[derive(Debug, Clone, Default)]
pub struct RouteSpec {
    /// Receiver name; required at the root.
    pub receiver: Option<String>,
    /// Matchers (ANDed); must be empty at the root.
    pub matchers: Matchers,
    /// Grouping labels.
    pub group_by: Option<GroupBy>,
    /// Keep trying the following siblings after this route matched.
    pub continue_: bool,
    /// Delay before the first notification of a new group.
    pub group_wait: Option<Dur>,
    /// Interval between flushes of a group (non-zero).
    pub group_interval: Option<Dur>,
    /// Reminder interval for unchanged firing groups (non-zero).
    pub repeat_interval: Option<Dur>,
    /// Child routes, tried in order.
    pub routes: Vec<RouteSpec>,
}

/// Why a routing tree was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The root route needs a receiver.
    #[error("the root route has no `receiver`; add `receiver: <name>`")]
    RootWithoutReceiver,
    /// The root route matches every alert, so it cannot have matchers.
    #[error(
        "the root route must not have matchers (it matches every alert); move them to a child route"
    )]
    RootWithMatchers,
    /// `group_interval` or `repeat_interval` is zero.
    #[error("route {route}: `{field}` must be longer than zero")]
    ZeroInterval {
        /// The route key.
        route: String,
        /// `group_interval` or `repeat_interval`.
        field: &'static str,
    },
}

/// One node of the validated routing tree, with inherited options resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Receiver name.
    pub receiver: String,
    /// Matchers (ANDed), sorted in Alertmanager's order.
    pub matchers: Matchers,
    /// Grouping labels.
    pub group_by: GroupBy,
    /// Keep trying the following siblings after this route matched.
    pub continue_: bool,
    /// Delay before the first notification of a new group.
    pub group_wait: Dur,
    /// Interval between flushes of a group.
    pub group_interval: Dur,
    /// Reminder interval for unchanged firing groups.
    pub repeat_interval: Dur,
    /// Child routes, tried in order.
    pub routes: Vec<Route>,
    /// Alertmanager's route key (`{}` at the root, then `/` + matchers per level).
    key: String,
    /// A unique id in this tree: the key plus the index path (siblings may share a key).
    id: String,
}

impl Route {
    /// Validates a tree and resolves inheritance (unset options come from the parent; the root
    /// defaults are Alertmanager's: no grouping, 30s, 5m, 4h).
    pub fn build(spec: RouteSpec) -> Result<Route, RouteError> {
        let Some(receiver) = spec.receiver.clone() else {
            return Err(RouteError::RootWithoutReceiver);
        };
        if !spec.matchers.is_empty() {
            return Err(RouteError::RootWithMatchers);
        }
        let root = Inherited {
            receiver,
            group_by: GroupBy::None,
            group_wait: DEFAULT_GROUP_WAIT,
            group_interval: DEFAULT_GROUP_INTERVAL,
            repeat_interval: DEFAULT_REPEAT_INTERVAL,
        };
        Route::resolve(spec, &root, None, "0")
    }

    fn resolve(
        spec: RouteSpec,
        parent: &Inherited,
        parent_key: Option<&str>,
        path: &str,
    ) -> Result<Route, RouteError> {
        let matchers = spec.matchers.sorted();
        let key = match parent_key {
            Some(p) => format!("{p}/{matchers}"),
            None => matchers.to_string(),
        };
        let own = Inherited {
            receiver: spec.receiver.unwrap_or_else(|| parent.receiver.clone()),
            group_by: spec.group_by.unwrap_or_else(|| parent.group_by.clone()),
            group_wait: spec.group_wait.unwrap_or(parent.group_wait),
            group_interval: spec.group_interval.unwrap_or(parent.group_interval),
            repeat_interval: spec.repeat_interval.unwrap_or(parent.repeat_interval),
        };
        for (field, d) in [
            ("group_interval", own.group_interval),
            ("repeat_interval", own.repeat_interval),
        ] {
            if d.is_zero() {
                return Err(RouteError::ZeroInterval {
                    route: key.clone(),
                    field,
                });
            }
        }
        let routes = spec
            .routes
            .into_iter()
            .enumerate()
            .map(|(i, c)| Route::resolve(c, &own, Some(&key), &format!("{path}.{i}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Route {
            id: format!("{key}#{path}"),
            receiver: own.receiver,
            matchers,
            group_by: own.group_by,
            continue_: spec.continue_,
            group_wait: own.group_wait,
            group_interval: own.group_interval,
            repeat_interval: own.repeat_interval,
            routes,
            key,
        })
    }

    /// Alertmanager's route key: the parent's key, `/`, the sorted matchers (`{}` at the root).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// A unique id of the node within this tree (its key and index path, e.g. `{}/{a="x"}#0.1`);
    /// siblings with identical matchers share a key but not an id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Alertmanager's group key for the group with these labels: `<route key>:<labels>`, e.g.
    /// `{}/{severity="page"}:{alertname="ClusterDown", cluster="c1"}`.
    pub fn group_key(&self, group_labels: &Labels) -> String {
        format!("{}:{}", self.key, labels_string(group_labels))
    }

    /// The routes that handle an alert with these labels, in traversal order (Alertmanager's
    /// `Route.Match`): depth-first, the first matching child unless it has `continue`, the node
    /// itself when no child matches. Empty only when this node's own matchers fail.
    pub fn matching(&self, labels: &Labels) -> Vec<&Route> {
        let mut out = Vec::new();
        self.collect(labels, &mut out);
        out
    }

    fn collect<'a>(&'a self, labels: &Labels, out: &mut Vec<&'a Route>) -> bool {
        if !self.matchers.matches(labels) {
            return false;
        }
        let before = out.len();
        for child in &self.routes {
            if child.collect(labels, out) && !child.continue_ {
                break;
            }
        }
        if out.len() == before {
            out.push(self);
        }
        true
    }

    /// Every route of the tree, depth-first (the root first).
    pub fn walk(&self) -> Vec<&Route> {
        let mut out = vec![self];
        for c in &self.routes {
            out.extend(c.walk());
        }
        out
    }

    /// The receiver names the tree refers to (for checking them against the receivers config).
    pub fn receivers(&self) -> BTreeSet<&str> {
        self.walk().iter().map(|r| r.receiver.as_str()).collect()
    }
}

/// The options a child inherits.
struct Inherited {
    receiver: String,
    group_by: GroupBy,
    group_wait: Dur,
    group_interval: Dur,
    repeat_interval: Dur,
}

const ROUTE_KEYS: &[&str] = &[
    "receiver",
    "group_by",
    "matchers",
    "continue",
    "group_wait",
    "group_interval",
    "repeat_interval",
    "routes",
];

/// Decodes the `route:` section (the root of the tree) with file:line:col diagnostics.
pub(crate) fn decode(d: &mut Decoder<'_>, node: &Node) -> Option<Route> {
    let before = d.errors();
    let spec = decode_spec(d, node, true)?;
    if d.errors() > before {
        return None;
    }
    match Route::build(spec) {
        Ok(r) => Some(r),
        Err(e) => {
            // Positional checks above catch these first; this is the last line of defence.
            d.error(node.pos(), e.to_string());
            None
        }
    }
}

fn decode_spec(d: &mut Decoder<'_>, node: &Node, root: bool) -> Option<RouteSpec> {
    let what = if root { "the root route" } else { "a route" };
    let m = MapReader::new(d, node, what, ROUTE_KEYS)?;
    let mut spec = RouteSpec {
        receiver: m.opt(d, "receiver", Decoder::string),
        ..RouteSpec::default()
    };
    if root && spec.receiver.is_none() && m.get("receiver").is_none() {
        d.error(
            m.pos,
            "the root route has no `receiver`; add `receiver: <name>` (it gets every alert no child route takes)",
        );
    }
    if let Some(ms) = m.opt(d, "matchers", decode_matchers) {
        if root && !ms.is_empty() {
            let pos = m.key_pos("matchers").unwrap_or(m.pos);
            d.error(
                pos,
                "the root route must not have `matchers` (it matches every alert); move them to a child route under `routes:`",
            );
        }
        spec.matchers = ms;
    }
    if let Some(items) = m.opt(d, "group_by", Decoder::list) {
        spec.group_by = decode_group_by(d, items);
    }
    if let Some(b) = m.opt(d, "continue", Decoder::bool) {
        if root && b {
            let pos = m.key_pos("continue").unwrap_or(m.pos);
            d.error(
                pos,
                "`continue` has no meaning on the root route (it has no siblings); remove it",
            );
        }
        spec.continue_ = b;
    }
    spec.group_wait = m.opt(d, "group_wait", Decoder::dur);
    spec.group_interval = m.opt(d, "group_interval", Decoder::pos_dur);
    spec.repeat_interval = m.opt(d, "repeat_interval", Decoder::pos_dur);
    if let Some(items) = m.opt(d, "routes", Decoder::list) {
        for item in items {
            if let Some(child) = decode_spec(d, item, false) {
                spec.routes.push(child);
            }
        }
    }
    Some(spec)
}

/// A list of matcher strings (each may hold several matchers, as in Alertmanager's
/// `matchers:`, `source_matchers:` and `target_matchers:`), concatenated.
pub(crate) fn decode_matchers(
    d: &mut Decoder<'_>,
    n: &Node,
    key: &'static str,
) -> Option<Matchers> {
    let items = d.list(n, key)?;
    let mut out = Matchers::default();
    let before = d.errors();
    for item in items {
        let Some(text) = d.string(item, key) else {
            continue;
        };
        match Matchers::parse(&text) {
            Ok(ms) => out.0.extend(ms.0),
            Err(e) => d.error(
                item.pos(),
                format!(
                    "{e}; write a matcher such as 'severity=\"page\"' or 'service=~\"api|web\"'"
                ),
            ),
        }
    }
    (d.errors() == before).then_some(out)
}

fn decode_group_by(d: &mut Decoder<'_>, items: &[Node]) -> Option<GroupBy> {
    let mut names = BTreeSet::new();
    let mut all = false;
    let before = d.errors();
    for item in items {
        let Some(name) = d.string(item, "group_by") else {
            continue;
        };
        if name == "..." {
            all = true;
            if items.len() > 1 {
                d.error(
                    item.pos(),
                    "`...` in `group_by` means every label and must be alone; write `group_by: ['...']` or list label names",
                );
            }
        } else if !is_label_name(&name) {
            d.error(
                item.pos(),
                format!("`group_by` label name `{name}` is not valid; use letters, digits and `_`, not starting with a digit"),
            );
        } else if !names.insert(name.clone()) {
            d.error(
                item.pos(),
                format!("`group_by` lists `{name}` twice; keep one"),
            );
        }
    }
    if d.errors() > before {
        return None;
    }
    Some(if all {
        GroupBy::All
    } else if names.is_empty() {
        GroupBy::None
    } else {
        GroupBy::Labels(names)
    })
}

/// Parses one YAML document with a section decoder (a standalone `route:` tree, a list of
/// inhibition rules), collecting every diagnostic against `path`.
pub(crate) fn parse_with<T>(
    path: &Path,
    text: &str,
    decode: impl FnOnce(&mut Decoder<'_>, &Node) -> Option<T>,
) -> Result<T, Vec<Diagnostic>> {
    let docs = node::parse_str(text).map_err(|e| {
        vec![Diagnostic {
            file: path.to_path_buf(),
            pos: e.pos,
            severity: Severity::Error,
            message: e.message,
        }]
    })?;
    let mut d = Decoder::new(path, text);
    let out = match docs.as_slice() {
        [doc] => decode(&mut d, doc),
        _ => {
            d.error(Pos::new(1, 1), "expected exactly one YAML document");
            None
        }
    };
    let diags = d.diagnostics;
    match out {
        Some(v) if !diags.iter().any(Diagnostic::is_error) => Ok(v),
        _ => Err(diags),
    }
}

/// Parses a standalone routing tree (the mapping under `route:`), for tools and tests; the
/// agent config decodes the same section through [`decode`].
pub fn parse_route(path: &Path, text: &str) -> Result<Route, Vec<Diagnostic>> {
    parse_with(path, text, decode)
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

    fn tree() -> Route {
        // The live 0.25 configuration of the reference (§1.4/§1.5).
        parse_route(
            Path::new("am.yaml"),
            r#"
receiver: default
group_by: [alertname, cluster]
group_wait: 2s
group_interval: 4s
repeat_interval: 16s
routes:
  - matchers: ['severity="page"']
    receiver: pager
    continue: true
  - matchers: ['severity=~"page|ticket"']
    receiver: hook
"#,
        )
        .expect("valid tree")
    }

    fn receivers(r: &Route, l: &Labels) -> Vec<String> {
        r.matching(l).iter().map(|r| r.receiver.clone()).collect()
    }

    #[test]
    fn matching_follows_amtool_routes_test() {
        let r = tree();
        // `amtool config routes test severity=page alertname=X` → pager,hook.
        let page = labels(&[("severity", "page"), ("alertname", "X")]);
        assert_eq!(receivers(&r, &page), ["pager", "hook"]);
        assert_eq!(receivers(&r, &labels(&[("severity", "ticket")])), ["hook"]);
        assert_eq!(receivers(&r, &labels(&[("severity", "info")])), ["default"]);
    }

    #[test]
    fn first_match_wins_without_continue_and_children_nest() {
        let r = parse_route(
            Path::new("r.yaml"),
            r#"
receiver: root
routes:
  - matchers: ['team="db"']
    receiver: db
    routes:
      - matchers: ['severity="page"']
        receiver: db-pager
  - matchers: ['team=~"db|web"']
    receiver: never-for-db
"#,
        )
        .expect("valid");
        let db_page = labels(&[("team", "db"), ("severity", "page")]);
        assert_eq!(receivers(&r, &db_page), ["db-pager"]);
        assert_eq!(
            receivers(&r, &labels(&[("team", "db"), ("severity", "ticket")])),
            ["db"]
        );
        assert_eq!(receivers(&r, &labels(&[("team", "web")])), ["never-for-db"]);
        let m = r.matching(&db_page);
        assert_eq!(m[0].key(), r#"{}/{team="db"}/{severity="page"}"#);
        assert_eq!(m[0].id(), r#"{}/{team="db"}/{severity="page"}#0.0.0"#);
    }

    #[test]
    fn group_keys_are_alertmanagers() {
        let r = tree();
        let l = labels(&[
            ("alertname", "ClusterDown"),
            ("cluster", "c1"),
            ("severity", "page"),
        ]);
        let routes = r.matching(&l);
        let keys: Vec<String> = routes
            .iter()
            .map(|rt| rt.group_key(&rt.group_by.group_labels(&l)))
            .collect();
        // The first is the reference's live group key; the second its webhook payload's form.
        assert_eq!(
            keys,
            [
                r#"{}/{severity="page"}:{alertname="ClusterDown", cluster="c1"}"#,
                r#"{}/{severity=~"page|ticket"}:{alertname="ClusterDown", cluster="c1"}"#,
            ]
        );
        assert_eq!(r.group_key(&Labels::new()), "{}:{}");
    }

    #[test]
    fn matchers_are_sorted_in_keys() {
        let r = parse_route(
            Path::new("r.yaml"),
            r#"
receiver: root
routes:
  - matchers: ['team="db"', 'severity=~"page|crit", env!="dev"']
    receiver: x
"#,
        )
        .expect("valid");
        assert_eq!(
            r.routes[0].key(),
            r#"{}/{env!="dev",severity=~"page|crit",team="db"}"#
        );
    }

    #[test]
    fn options_are_inherited() {
        let r = parse_route(
            Path::new("r.yaml"),
            r#"
receiver: root
group_by: ['...']
group_wait: 10s
routes:
  - matchers: ['a="1"']
    repeat_interval: 1h
    routes:
      - matchers: ['b="2"']
        receiver: leaf
        group_by: [b]
"#,
        )
        .expect("valid");
        assert_eq!(r.group_interval, DEFAULT_GROUP_INTERVAL);
        assert_eq!(r.repeat_interval, DEFAULT_REPEAT_INTERVAL);
        let mid = &r.routes[0];
        assert_eq!(mid.receiver, "root");
        assert_eq!(mid.group_by, GroupBy::All);
        assert_eq!(mid.group_wait, Dur::from_secs(10));
        assert_eq!(mid.repeat_interval, Dur::HOUR);
        let leaf = &mid.routes[0];
        assert_eq!(leaf.repeat_interval, Dur::HOUR);
        assert_eq!(leaf.group_wait, Dur::from_secs(10));
        let l = labels(&[("a", "1"), ("b", "2"), ("c", "3")]);
        assert_eq!(leaf.group_by.group_labels(&l), labels(&[("b", "2")]));
        assert_eq!(mid.group_by.group_labels(&l), l);
        assert_eq!(
            r.receivers().into_iter().collect::<Vec<_>>(),
            ["leaf", "root"]
        );
    }

    #[test]
    fn defaults_without_anything_but_a_receiver() {
        let r = parse_route(Path::new("r.yaml"), "receiver: r\n").expect("valid");
        assert_eq!(r.group_wait, Dur::from_secs(30));
        assert_eq!(r.group_interval, Dur::from_mins(5));
        assert_eq!(r.repeat_interval, Dur::from_hours(4));
        assert_eq!(r.group_by, GroupBy::None);
        assert_eq!(r.key(), "{}");
    }

    #[test]
    fn errors_point_at_the_line_and_column() {
        let cases = [
            ("group_by: [a]\n", "1:1", "no `receiver`"),
            (
                "receiver: r\nmatchers: ['a=\"b\"']\n",
                "2:1",
                "must not have `matchers`",
            ),
            (
                "receiver: r\ngroup_interval: 0s\n",
                "2:17",
                "longer than zero",
            ),
            (
                "receiver: r\nrepeat_interval: 0s\n",
                "2:18",
                "longer than zero",
            ),
            (
                "receiver: r\nroutes:\n  - matchers: ['a=~\"(\"']\n",
                "3:16",
                "invalid regex",
            ),
            (
                "receiver: r\ngroup_by: ['...', a]\n",
                "2:12",
                "must be alone",
            ),
            ("receiver: r\ngroup_by: [a, a]\n", "2:15", "twice"),
            (
                "receiver: r\nroutes:\n  - match: {a: b}\n",
                "3:5",
                "unknown key `match`",
            ),
        ];
        for (text, pos, needle) in cases {
            let errs = parse_route(Path::new("am.yaml"), text).expect_err(text);
            let all: Vec<String> = errs.iter().map(ToString::to_string).collect();
            assert!(
                all.iter()
                    .any(|e| e.starts_with(&format!("am.yaml:{pos}: error")) && e.contains(needle)),
                "{text:?}: {all:?}"
            );
        }
    }

    #[test]
    fn build_refuses_bad_trees() {
        assert_eq!(
            Route::build(RouteSpec::default()),
            Err(RouteError::RootWithoutReceiver)
        );
        let with_matchers = RouteSpec {
            receiver: Some("r".into()),
            matchers: Matchers::parse("a=b").expect("valid"),
            ..RouteSpec::default()
        };
        assert_eq!(
            Route::build(with_matchers),
            Err(RouteError::RootWithMatchers)
        );
        let zero = RouteSpec {
            receiver: Some("r".into()),
            routes: vec![RouteSpec {
                matchers: Matchers::parse("a=b").expect("valid"),
                repeat_interval: Some(Dur(0)),
                ..RouteSpec::default()
            }],
            ..RouteSpec::default()
        };
        assert!(matches!(
            Route::build(zero),
            Err(RouteError::ZeroInterval {
                field: "repeat_interval",
                ..
            })
        ));
    }
}
