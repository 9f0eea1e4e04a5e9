//! Everything `burnwatch run` checks before it starts, as `file:line:column` diagnostics, so
//! `burnwatch check --config` finds in CI what would stop the agent on the host.
//!
//! This module owns the one list of start-time checks: the config file (schema, OTLP block,
//! alerting section), the rules it names (the whole file set, as `burnwatch check PATHS`), the
//! query sources their `query` SLOs read, the probes' CA files, and each receiver and the Alertmanager client built exactly as the agent
//! builds them (secrets resolved, URLs read from secrets, CA files read and parsed). `run` and
//! `check --config` both call [`agent`], so they report the same errors and warnings (an API
//! left open on purpose, `api.allow_unauthenticated`, is one of them). Secret
//! values never appear in a diagnostic: the errors name the variable or file, not the value.
//!
//! Not checked: what belongs to the host rather than the files (binding `listen`, creating
//! `data_dir`, restoring its checkpoints); `run` still reports those when it starts.

use std::path::{Path, PathBuf};

use crate::config::{self, AgentConfig};
use crate::export::RESERVED;
use crate::http_client::HttpClient;
use crate::notify::alertmanager::{AlertmanagerClient, AlertmanagerError};
use crate::notify::email::EmailError;
use crate::notify::receiver::{self, BuildError, ReceiverConfig};
use crate::notify::render::RenderContext;
use crate::probe::Prober;
use crate::rules::model::{ProbeKind, RuleSet};
use crate::rules::{self, CheckReport};
use crate::schema::node::{self, Kind, Node, Pos};
use crate::schema::{Diagnostic, Severity};

/// What the checks found for one agent config.
#[derive(Debug, Clone)]
pub struct Preflight {
    /// The config file.
    pub path: PathBuf,
    /// The config, when the file has no error.
    pub config: Option<AgentConfig>,
    /// Problems of the config file and of what it references besides rules (receivers, the
    /// Alertmanager client, rules patterns matching nothing), in position order.
    pub diagnostics: Vec<Diagnostic>,
    /// The check of the rules the config names ([`rules`]); empty when the config could not be
    /// read.
    pub rules: CheckReport,
}

impl Preflight {
    /// Every diagnostic: the config file's first, then the rules report's.
    pub fn all(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().chain(&self.rules.diagnostics)
    }

    /// Number of errors.
    pub fn errors(&self) -> usize {
        self.all().filter(|d| d.is_error()).count()
    }

    /// Number of warnings.
    pub fn warnings(&self) -> usize {
        self.all().filter(|d| !d.is_error()).count()
    }

    /// The config and rules to start with, when nothing has an error.
    pub fn ready(self) -> Option<(AgentConfig, RuleSet)> {
        if self.errors() > 0 {
            return None;
        }
        Some((self.config?, self.rules.rules?))
    }
}

/// Runs every start-time check on the config file at `path` and what it names.
pub fn agent(path: &Path) -> Preflight {
    let (cfg, mut diags) = config::load_checked(path);
    let mut rules_report = CheckReport::default();
    if let Some(cfg) = &cfg {
        match cfg.rule_paths() {
            Ok(paths) => rules_report = rules(&paths),
            Err(d) => diags.extend(d),
        }
        diags.extend(alerting(cfg));
        diags.extend(api_warning(cfg));
        diags.extend(sources(cfg, &rules_report));
    }
    diags.sort_by_key(|d| d.pos);
    let config = cfg.filter(|_| !diags.iter().any(Diagnostic::is_error));
    Preflight {
        path: path.to_path_buf(),
        config,
        diagnostics: diags,
        rules: rules_report,
    }
}

/// Checks rules files and directories as one file set ([`rules::check_paths`]), adds what only
/// the agent would find (unreadable probe CA files, labels the exporters drop), and orders the
/// diagnostics by file, then position. `burnwatch check PATHS` prints this report.
pub fn rules(paths: &[PathBuf]) -> CheckReport {
    let mut report = rules::check_paths(paths);
    let mut extra = reserved_label_warnings(&report);
    if let Some(set) = &report.rules {
        extra.extend(probe_ca_files(&report, set));
    }
    for d in &extra {
        if let Some(f) = report.files.iter_mut().find(|f| f.path == d.file) {
            if d.is_error() {
                f.errors += 1;
            } else {
                f.warnings += 1;
            }
        }
    }
    if extra.iter().any(Diagnostic::is_error) {
        report.rules = None;
    }
    report.diagnostics.extend(extra);
    // Keep the report in file order, then position, with the added diagnostics in place.
    let order: Vec<PathBuf> = report.files.iter().map(|f| f.path.clone()).collect();
    report.diagnostics.sort_by_key(|d| {
        (
            order
                .iter()
                .position(|p| *p == d.file)
                .unwrap_or(usize::MAX),
            d.pos,
        )
    });
    report
}

/// The YAML documents of a file, for finding where something is written (empty when the file
/// cannot be read or parsed: its own check reports that).
fn documents(path: &Path) -> Vec<Node> {
    std::fs::read(path)
        .ok()
        .and_then(|b| node::parse_documents(&b).ok())
        .unwrap_or_default()
}

/// One step of a path into a YAML tree.
#[derive(Debug, Clone, Copy)]
enum Step<'a> {
    /// The value of a mapping key.
    Key(&'a str),
    /// The item of a sequence at an index.
    Index(usize),
    /// The item of a sequence of mappings whose `name:` is this.
    Named(&'a str),
}

/// The node at the end of `path`, or the deepest one found on the way (so a diagnostic points
/// at the closest thing written).
fn locate<'n>(mut n: &'n Node, path: &[Step<'_>]) -> &'n Node {
    for step in path {
        let next = match (step, n.kind()) {
            (Step::Key(k), Kind::Map(entries)) => entries
                .iter()
                .find(|(key, _)| key.as_str() == Some(k))
                .map(|(_, v)| v),
            (Step::Index(i), Kind::Seq(items)) => items.get(*i),
            (Step::Named(name), Kind::Seq(items)) => items.iter().find(|item| {
                matches!(locate_key(item, "name"), Some(v) if v.scalar_text().as_deref() == Some(name))
            }),
            _ => None,
        };
        match next {
            Some(next) => n = next,
            None => break,
        }
    }
    n
}

fn locate_key<'n>(n: &'n Node, key: &str) -> Option<&'n Node> {
    match n.kind() {
        Kind::Map(entries) => entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v),
        _ => None,
    }
}

/// Where `path` points in the config file (0:0, the whole file, when it cannot be found).
fn config_pos(docs: &[Node], path: &[Step<'_>]) -> Pos {
    docs.first()
        .map_or_else(Pos::default, |doc| locate(doc, path).pos())
}

/// The warning of an API other hosts can reach without a token ([`config::ApiConfig::warning`]),
/// at its `allow_unauthenticated:` line: allowed, but `check --strict` fails on it.
fn api_warning(cfg: &AgentConfig) -> Option<Diagnostic> {
    let message = cfg.api.warning(cfg.listen)?;
    let docs = documents(&cfg.path);
    Some(Diagnostic {
        file: cfg.path.clone(),
        pos: config_pos(
            &docs,
            &[Step::Key("api"), Step::Key("allow_unauthenticated")],
        ),
        severity: Severity::Warning,
        message,
    })
}

/// Every `query` SLO of the rules whose source the config lacks, and every source the agent
/// could not build (its CA file), as errors at the config's `sources` (`run` refuses to start:
/// such an SLO could never be read).
fn sources(cfg: &AgentConfig, report: &CheckReport) -> Vec<Diagnostic> {
    let missing = report
        .rules
        .as_ref()
        .map(|r| cfg.sources.missing(r))
        .unwrap_or_default();
    let broken = cfg
        .sources
        .prometheus
        .iter()
        .filter_map(|s| crate::source::PrometheusClient::new(s).err())
        .map(|e| e.to_string());
    let messages: Vec<String> = missing.into_iter().chain(broken).collect();
    if messages.is_empty() {
        return Vec::new();
    }
    let docs = documents(&cfg.path);
    let pos = config_pos(&docs, &[Step::Key("sources")]);
    messages
        .into_iter()
        .map(|message| Diagnostic {
            file: cfg.path.clone(),
            pos,
            severity: Severity::Error,
            message,
        })
        .collect()
}

/// Builds every receiver and the Alertmanager client as the agent does at start, turning each
/// refusal into a diagnostic at the entry it is about.
fn alerting(cfg: &AgentConfig) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    let mut docs = None;
    let mut refuse = |path: &[Step<'_>], message: String| {
        let docs = docs.get_or_insert_with(|| documents(&cfg.path));
        found.push(Diagnostic {
            file: cfg.path.clone(),
            pos: config_pos(docs, path),
            severity: Severity::Error,
            message,
        });
    };
    let ctx = RenderContext::new(cfg.external_url());
    match HttpClient::new() {
        Ok(client) => {
            let client = std::sync::Arc::new(client);
            for rc in &cfg.alerting.receivers {
                for (i, one) in integrations(rc) {
                    if let Err(e) = receiver::build_with(&one, &ctx, &client) {
                        let e = with_index(e, i);
                        refuse(&receiver_path(&e), e.to_string());
                    }
                }
            }
        }
        Err(e) => refuse(
            &[Step::Key("alerting"), Step::Key("receivers")],
            format!("receivers' HTTP client: {e}"),
        ),
    }
    if let Some(am) = &cfg.alerting.alertmanager
        && let Err(e) = AlertmanagerClient::new(am, cfg.evaluation_interval)
    {
        let keys: &[&str] = match &e {
            AlertmanagerError::Secret(_) if am_uses_basic_auth(am) => &["basic_auth", "password"],
            AlertmanagerError::Secret(_) => &["bearer_token"],
            AlertmanagerError::CaFile { .. } => &["ca_file"],
            AlertmanagerError::Url(..) => &["urls"],
            AlertmanagerError::Tls(_) => &[],
        };
        let mut path = vec![Step::Key("alerting"), Step::Key("alertmanager")];
        path.extend(keys.iter().map(|k| Step::Key(k)));
        refuse(&path, e.to_string());
    }
    found
}

fn am_uses_basic_auth(am: &crate::notify::alertmanager::AlertmanagerConfig) -> bool {
    matches!(am.auth, Some(crate::http_client::HttpAuth::Basic { .. }))
}

/// The receiver once per integration, holding only that one, with the integration's index
/// in the config: a build stops at a receiver's first bad integration, and `check` reports
/// every one.
fn integrations(rc: &ReceiverConfig) -> Vec<(usize, ReceiverConfig)> {
    let empty = ReceiverConfig {
        webhook: Vec::new(),
        slack: Vec::new(),
        pagerduty: Vec::new(),
        email: Vec::new(),
        ..rc.clone()
    };
    let mut out = Vec::new();
    for (i, x) in rc.webhook.iter().enumerate() {
        let webhook = vec![x.clone()];
        out.push((
            i,
            ReceiverConfig {
                webhook,
                ..empty.clone()
            },
        ));
    }
    for (i, x) in rc.slack.iter().enumerate() {
        let slack = vec![x.clone()];
        out.push((
            i,
            ReceiverConfig {
                slack,
                ..empty.clone()
            },
        ));
    }
    for (i, x) in rc.pagerduty.iter().enumerate() {
        let pagerduty = vec![x.clone()];
        out.push((
            i,
            ReceiverConfig {
                pagerduty,
                ..empty.clone()
            },
        ));
    }
    for (i, x) in rc.email.iter().enumerate() {
        let email = vec![x.clone()];
        out.push((
            i,
            ReceiverConfig {
                email,
                ..empty.clone()
            },
        ));
    }
    out
}

/// Gives a build error of a one-integration receiver the integration's index in the config.
fn with_index(mut e: BuildError, i: usize) -> BuildError {
    match &mut e {
        BuildError::Secret { index, .. }
        | BuildError::BadUrl { index, .. }
        | BuildError::Email { index, .. } => *index = i,
        BuildError::Client(_) => {}
    }
    e
}

/// Where in `alerting.receivers` a build error is written.
fn receiver_path(e: &BuildError) -> Vec<Step<'_>> {
    let mut path = vec![Step::Key("alerting"), Step::Key("receivers")];
    match e {
        BuildError::Secret {
            receiver,
            kind,
            index,
            field,
            ..
        } => {
            path.extend([Step::Named(receiver), Step::Key(kind), Step::Index(*index)]);
            path.extend(field.split('.').map(Step::Key));
        }
        BuildError::BadUrl {
            receiver,
            kind,
            index,
            ..
        } => path.extend([
            Step::Named(receiver),
            Step::Key(kind),
            Step::Index(*index),
            Step::Key("url"),
        ]),
        BuildError::Email {
            receiver,
            index,
            source,
        } => {
            path.extend([
                Step::Named(receiver),
                Step::Key("email"),
                Step::Index(*index),
            ]);
            path.push(Step::Key(match source {
                EmailError::Secret(_) => "auth_password",
                EmailError::CaFile { .. } => "ca_file",
                EmailError::Tls { .. } => "smarthost",
            }));
        }
        BuildError::Client(_) => {}
    }
    path
}

/// Reads every CA file the probes name, as the prober does at start; an unreadable or empty
/// one is an error at its `ca_file:` line.
fn probe_ca_files(report: &CheckReport, set: &RuleSet) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut seen: Vec<&Path> = Vec::new();
    for probe in &set.probes {
        let ProbeKind::Http(h) = &probe.kind else {
            continue;
        };
        let Some(ca) = h.ca_file.as_deref().filter(|_| h.tls_verify) else {
            continue;
        };
        if seen.contains(&ca) {
            continue;
        }
        seen.push(ca);
        let Err(e) = Prober::new(std::slice::from_ref(probe)) else {
            continue;
        };
        // The probe's names are unique across the file set: find the file declaring it.
        let path = [
            Step::Key("probes"),
            Step::Named(&probe.name),
            Step::Key("http"),
            Step::Key("ca_file"),
        ];
        let at = report.files.iter().find_map(|f| {
            documents(&f.path).iter().find_map(|doc| {
                let n = locate(doc, &path);
                (n.scalar_text().as_deref() == ca.to_str()).then(|| (f.path.clone(), n.pos()))
            })
        });
        let (file, pos) = at.unwrap_or_else(|| {
            let file = report.files.first().map(|f| f.path.clone());
            (file.unwrap_or_default(), Pos::default())
        });
        out.push(Diagnostic {
            file,
            pos,
            severity: Severity::Error,
            message: format!(
                "probe `{}`: {e}; give a readable PEM file of CA certificates",
                probe.name
            ),
        });
    }
    out
}

/// A warning for every service or SLO `labels:` key that burnwatch sets itself on exports
/// ([`RESERVED`]): such a label is dropped from `/metrics` and OTLP, which is easy to miss.
/// Read from the YAML again because the validated model keeps no positions for labels.
fn reserved_label_warnings(report: &CheckReport) -> Vec<Diagnostic> {
    fn entries(n: &Node) -> &[(Node, Node)] {
        match n.kind() {
            Kind::Map(e) => e,
            _ => &[],
        }
    }
    let mut out = Vec::new();
    for f in &report.files {
        for doc in documents(&f.path) {
            let slos = locate_key(&doc, "slos").map_or(&[][..], |n| match n.kind() {
                Kind::Seq(items) => items.as_slice(),
                _ => &[],
            });
            // OpenSLO objects (one, or a list of them) hold theirs in `metadata.labels`.
            let objects = match doc.kind() {
                Kind::Seq(items) => items.as_slice(),
                _ => std::slice::from_ref(&doc),
            };
            let openslo = objects
                .iter()
                .filter_map(|o| locate_key(o, "metadata"))
                .filter_map(|m| locate_key(m, "labels"));
            let label_maps = std::iter::once(&doc)
                .chain(slos)
                .filter_map(|n| locate_key(n, "labels"))
                .chain(openslo);
            for labels in label_maps {
                for (k, _) in entries(labels) {
                    let Some(name) = k.as_str().filter(|n| RESERVED.contains(n)) else {
                        continue;
                    };
                    out.push(Diagnostic {
                        file: f.path.clone(),
                        pos: k.pos(),
                        severity: Severity::Warning,
                        message: format!(
                            "label `{name}` is set by burnwatch itself on exported series, so this label is dropped from /metrics and OTLP; rename it (e.g. `{name}_name` or `team_{name}`)"
                        ),
                    });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_points_at_the_deepest_node_written() {
        let docs = node::parse_str(
            "alerting:\n  receivers:\n    - name: a\n      webhook: [{url: x}]\n    - name: b\n      email:\n        - to: [o@example.com]\n          ca_file: ca.pem\n",
        )
        .expect("yaml");
        let at = |path: &[Step<'_>]| {
            let p = config_pos(&docs, path);
            (p.line, p.column)
        };
        let email = [
            Step::Key("alerting"),
            Step::Key("receivers"),
            Step::Named("b"),
            Step::Key("email"),
            Step::Index(0),
        ];
        assert_eq!(at(&[&email[..], &[Step::Key("ca_file")]].concat()), (8, 20));
        // Not written: the closest enclosing entry.
        assert_eq!(
            at(&[&email[..], &[Step::Key("auth_password")]].concat()),
            (7, 11)
        );
        assert_eq!(
            at(&[
                Step::Key("alerting"),
                Step::Key("receivers"),
                Step::Named("zz")
            ]),
            (3, 5)
        );
        assert_eq!(config_pos(&[], &email), Pos::default());
    }
}
