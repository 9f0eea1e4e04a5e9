//! The agent's own configuration file (`burnwatch run --config burnwatch.yaml`): where to listen,
//! where to keep state, which rules files to load and how often to evaluate, checkpoint and look
//! for changed rules. Decoded with the rules' schema walker, so a bad config file gets the same
//! `file:line:column: what is wrong; what to write` errors, all at once.
//!
//! Rules paths are resolved against the config file's directory. Each is a file, a directory
//! (every `*.yaml`/`*.yml` under it) or a pattern with `*`/`?` in its last component
//! (`rules/*.yaml`); patterns are expanded at every load, so a reload picks up new files.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::rules::decode::{Decoder, FileRules, MapReader};
use crate::rules::diag::{Diagnostic, Severity};
use crate::rules::node::{self, Node, Pos};
use crate::time::Dur;

/// The default listen address (the exporter and API arrive on it).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9464";
/// Largest agent config file read.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event.
    Human,
    /// One JSON object per line (for log shippers).
    Json,
}

/// The validated agent configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    /// The file it was read from.
    pub path: PathBuf,
    /// `listen`: address of the HTTP server (metrics, API, health). Default `127.0.0.1:9464`.
    pub listen: SocketAddr,
    /// `data_dir`: directory for the state checkpoint; created if missing. Default `data`
    /// (relative to the config file).
    pub data_dir: PathBuf,
    /// `rules`: rules files, directories or `*` patterns (relative to the config file).
    /// Required, at least one.
    pub rules: Vec<PathBuf>,
    /// `evaluation_interval`: how often SLOs are evaluated and alert tiers stepped. Default
    /// `10s`, at least `1s`.
    pub evaluation_interval: Dur,
    /// `checkpoint_interval`: how often state is written to `data_dir` (and always at shutdown).
    /// Default `1m`, at least `1s`. A crash loses at most this much history.
    pub checkpoint_interval: Dur,
    /// `reload_check_interval`: how often rules files are checked for changes (size and
    /// modification time); `0s` turns it off (SIGHUP still reloads). Default `5s`.
    pub reload_check_interval: Option<Dur>,
    /// `log_format`: `human` (default) or `json`.
    pub log_format: LogFormat,
    /// `log_level`: a `tracing` filter such as `info` (default) or `burnwatch=debug`;
    /// `RUST_LOG` overrides it.
    pub log_level: String,
    /// `max_concurrent_probes`: probes in flight at once. Default 64.
    pub max_concurrent_probes: usize,
    /// `max_concurrent_scrapes`: scrapes in flight at once. Default 16.
    pub max_concurrent_scrapes: usize,
    /// `queue_length`: results waiting for the evaluator; when full, collectors wait (a
    /// slow evaluator slows collection instead of growing memory). Default 4096.
    pub queue_length: usize,
    /// `export`: what the exporters publish besides burnwatch's own series.
    pub export: RawExport,
}

/// The `export` block of the agent config.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RawExport {
    /// `export.prometheus`: the `/metrics` page.
    pub prometheus: PrometheusExport,
}

/// The `export.prometheus` block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrometheusExport {
    /// `sloth_compatible`: also publish Sloth's series (`slo:sli_error:ratio_rate5m` ...,
    /// `slo:objective:ratio`, `sloth_slo_info`, labels `sloth_id`, `sloth_service`,
    /// `sloth_slo`, `sloth_window`), so dashboards built for Sloth keep working. Default
    /// `false`. See docs/metrics.md.
    pub sloth_compatible: bool,
}

impl AgentConfig {
    /// The configuration a config file with only `rules: [...]` gets.
    pub fn with_rules(path: &Path, rules: Vec<PathBuf>) -> AgentConfig {
        let base = path.parent().unwrap_or(Path::new("."));
        AgentConfig {
            path: path.to_path_buf(),
            listen: DEFAULT_LISTEN.parse().expect("the default address parses"),
            data_dir: base.join("data"),
            rules: rules.into_iter().map(|r| base.join(r)).collect(),
            evaluation_interval: Dur::from_secs(10),
            checkpoint_interval: Dur::MINUTE,
            reload_check_interval: Some(Dur::from_secs(5)),
            log_format: LogFormat::Human,
            log_level: "info".to_owned(),
            max_concurrent_probes: 64,
            max_concurrent_scrapes: 16,
            queue_length: 4096,
            export: RawExport::default(),
        }
    }

    /// The checkpoint file inside `data_dir`.
    pub fn state_file(&self) -> PathBuf {
        self.data_dir.join("state.bwcp")
    }

    /// Expands the rules patterns into the paths to read (files and directories), sorted and
    /// without duplicates; a pattern that matches nothing is an error, so a typo is not a
    /// silently empty rule set.
    pub fn rule_paths(&self) -> Result<Vec<PathBuf>, Vec<Diagnostic>> {
        let mut out = Vec::new();
        let mut errs = Vec::new();
        for p in &self.rules {
            match expand(p) {
                Ok(mut v) if !v.is_empty() => out.append(&mut v),
                Ok(_) => errs.push(Diagnostic {
                    file: self.path.clone(),
                    pos: Pos::default(),
                    severity: Severity::Error,
                    message: format!(
                        "rules pattern `{}` matches no file; fix the pattern or add rules files",
                        p.display()
                    ),
                }),
                Err(e) => errs.push(Diagnostic {
                    file: self.path.clone(),
                    pos: Pos::default(),
                    severity: Severity::Error,
                    message: format!("rules pattern `{}`: {e}", p.display()),
                }),
            }
        }
        out.sort();
        out.dedup();
        if errs.is_empty() { Ok(out) } else { Err(errs) }
    }
}

/// Reads and validates the config file at `path`.
pub fn load(path: &Path) -> Result<AgentConfig, Vec<Diagnostic>> {
    let whole = |message: String| {
        vec![Diagnostic {
            file: path.to_path_buf(),
            pos: Pos::default(),
            severity: Severity::Error,
            message,
        }]
    };
    let meta = std::fs::metadata(path).map_err(|e| {
        whole(format!(
            "cannot read the config file: {e}; give the path of a burnwatch.yaml"
        ))
    })?;
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(whole(format!(
            "the config file is {} bytes, more than the {MAX_CONFIG_BYTES} allowed",
            meta.len()
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| whole(format!("cannot read: {e}")))?;
    parse(path, &bytes)
}

/// Validates config text (named `path` in messages; relative paths resolve against its
/// directory).
pub fn parse(path: &Path, bytes: &[u8]) -> Result<AgentConfig, Vec<Diagnostic>> {
    let docs = node::parse_documents(bytes).map_err(|e| {
        vec![Diagnostic {
            file: path.to_path_buf(),
            pos: e.pos,
            severity: Severity::Error,
            message: e.message,
        }]
    })?;
    let text = std::str::from_utf8(bytes).unwrap_or_default();
    let mut d = Decoder {
        file: path,
        source: text,
        out: FileRules::default(),
    };
    let cfg = match docs.as_slice() {
        [doc] => decode(&mut d, path, doc),
        [] => {
            d.error(
                Pos::new(1, 1),
                "the config file is empty; write at least `rules: [rules/]`",
            );
            None
        }
        [_, second, ..] => {
            d.error(
                second.pos(),
                "the config file holds several YAML documents; keep one",
            );
            None
        }
    };
    let diags: Vec<Diagnostic> = d.out.diagnostics;
    match cfg {
        Some(c) if !diags.iter().any(Diagnostic::is_error) => Ok(c),
        _ => Err(diags),
    }
}

fn decode(d: &mut Decoder<'_>, path: &Path, doc: &Node) -> Option<AgentConfig> {
    const KEYS: &[&str] = &[
        "listen",
        "data_dir",
        "rules",
        "evaluation_interval",
        "checkpoint_interval",
        "reload_check_interval",
        "log_format",
        "log_level",
        "max_concurrent_probes",
        "max_concurrent_scrapes",
        "queue_length",
        "export",
    ];
    let m = MapReader::new(d, doc, "the agent config", KEYS)?;
    let before = d.errors();
    let base = path.parent().unwrap_or(Path::new("."));
    let mut cfg = AgentConfig::with_rules(path, Vec::new());

    if let Some(n) = m.get("listen")
        && let Some(s) = d.scalar(n, "listen")
    {
        match s.parse::<SocketAddr>() {
            Ok(a) => cfg.listen = a,
            Err(_) => d.error(
                n.pos(),
                format!("`listen: {s}` is not an address; write `host:port` with an IP, e.g. `{DEFAULT_LISTEN}`"),
            ),
        }
    }
    if let Some(s) = m.opt(d, "data_dir", Decoder::string) {
        cfg.data_dir = base.join(s);
    }
    if let Some(items) = m.req(d, "rules", "[rules/]", Decoder::list) {
        if items.is_empty() {
            let pos = m.get("rules").map_or(m.pos, Node::pos);
            d.error(
                pos,
                "`rules` is empty; list at least one rules file, directory or pattern",
            );
        }
        for item in items {
            if let Some(s) = d.string(item, "rules") {
                cfg.rules.push(base.join(s));
            }
        }
    }
    let at_least_1s = |d: &mut Decoder<'_>, n: &Node, key: &'static str| {
        let v = d.pos_dur(n, key)?;
        if v < Dur::from_secs(1) {
            d.error(
                n.pos(),
                format!("`{key}` {v} is too short; write at least 1s"),
            );
            return None;
        }
        Some(v)
    };
    if let Some(v) = m.opt(d, "evaluation_interval", at_least_1s) {
        cfg.evaluation_interval = v;
    }
    if let Some(v) = m.opt(d, "checkpoint_interval", at_least_1s) {
        cfg.checkpoint_interval = v;
    }
    if let Some(v) = m.opt(d, "reload_check_interval", Decoder::dur) {
        cfg.reload_check_interval = (!v.is_zero()).then_some(v);
    }
    if let Some(v) = m.opt(d, "log_format", |d, n, k| {
        d.choice(n, k, &["human", "json"])
    }) {
        cfg.log_format = if v == "json" {
            LogFormat::Json
        } else {
            LogFormat::Human
        };
    }
    if let Some(v) = m.opt(d, "log_level", Decoder::scalar) {
        cfg.log_level = v;
    }
    let count = |d: &mut Decoder<'_>, n: &Node, key: &'static str| {
        let v = d.uint(n, key)?;
        if !(1..=1_000_000).contains(&v) {
            d.error(
                n.pos(),
                format!("`{key}: {v}` is out of range; write a number from 1 to 1000000"),
            );
            return None;
        }
        Some(v as usize)
    };
    if let Some(v) = m.opt(d, "max_concurrent_probes", count) {
        cfg.max_concurrent_probes = v;
    }
    if let Some(v) = m.opt(d, "max_concurrent_scrapes", count) {
        cfg.max_concurrent_scrapes = v;
    }
    if let Some(v) = m.opt(d, "queue_length", count) {
        cfg.queue_length = v;
    }
    if let Some(n) = m.get("export") {
        cfg.export = decode_export(d, n);
    }
    (d.errors() == before).then_some(cfg)
}

/// The `export` block; errors go to `d`, and what is missing keeps its default.
fn decode_export(d: &mut Decoder<'_>, n: &Node) -> RawExport {
    let mut out = RawExport::default();
    let Some(m) = MapReader::new(d, n, "`export`", &["prometheus"]) else {
        return out;
    };
    if let Some(p) = m.get("prometheus")
        && let Some(pm) = MapReader::new(d, p, "`export.prometheus`", &["sloth_compatible"])
        && let Some(v) = pm.opt(d, "sloth_compatible", Decoder::bool)
    {
        out.prometheus.sloth_compatible = v;
    }
    out
}

/// A path, or the files and directories matching a pattern in its last component.
fn expand(p: &Path) -> std::io::Result<Vec<PathBuf>> {
    let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
    let Some(pattern) = name.filter(|n| n.contains(['*', '?'])) else {
        return Ok(if p.exists() {
            vec![p.to_path_buf()]
        } else {
            Vec::new()
        });
    };
    let dir = p.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let n = e.file_name().to_string_lossy().into_owned();
        if !n.starts_with('.') && wildcard(&pattern, &n) {
            out.push(e.path());
        }
    }
    Ok(out)
}

/// Shell-style match of `*` (any run) and `?` (one character), iterative with one backtrack
/// point, so it is linear in practice and never exponential.
fn wildcard(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < n.len() {
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        match parse(Path::new("/etc/burnwatch/burnwatch.yaml"), text.as_bytes()) {
            Ok(c) => panic!("expected errors, got {c:?}"),
            Err(d) => d.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn defaults_and_relative_paths() {
        let c = parse(
            Path::new("/etc/burnwatch/burnwatch.yaml"),
            b"rules: [rules/*.yaml, /srv/extra.yaml]\n",
        )
        .expect("valid");
        assert_eq!(c.listen, "127.0.0.1:9464".parse().expect("addr"));
        assert_eq!(c.data_dir, PathBuf::from("/etc/burnwatch/data"));
        assert_eq!(
            c.rules,
            vec![
                PathBuf::from("/etc/burnwatch/rules/*.yaml"),
                PathBuf::from("/srv/extra.yaml")
            ]
        );
        assert_eq!(c.evaluation_interval, Dur::from_secs(10));
        assert_eq!(c.checkpoint_interval, Dur::MINUTE);
        assert_eq!(c.reload_check_interval, Some(Dur::from_secs(5)));
        assert_eq!(
            c.state_file(),
            PathBuf::from("/etc/burnwatch/data/state.bwcp")
        );
    }

    #[test]
    fn every_field() {
        let c = parse(
            Path::new("b.yaml"),
            b"listen: 0.0.0.0:9999\ndata_dir: /var/lib/bw\nrules: [r]\nevaluation_interval: 2s\ncheckpoint_interval: 30s\nreload_check_interval: 0s\nlog_format: json\nlog_level: debug\nmax_concurrent_probes: 5\nmax_concurrent_scrapes: 6\nqueue_length: 7\n",
        )
        .expect("valid");
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/bw"));
        assert_eq!(c.evaluation_interval, Dur::from_secs(2));
        assert_eq!(c.reload_check_interval, None);
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(
            (
                c.max_concurrent_probes,
                c.max_concurrent_scrapes,
                c.queue_length
            ),
            (5, 6, 7)
        );
    }

    #[test]
    fn every_error_at_once_with_positions() {
        let e = errors(
            "listen: nowhere\nrules: []\nevaluation_intreval: 10s\ncheckpoint_interval: 100ms\nlog_format: xml\nmax_concurrent_probes: 0\n",
        );
        let want = [
            "burnwatch.yaml:1:9: error: `listen: nowhere` is not an address",
            "burnwatch.yaml:2:8: error: `rules` is empty",
            "burnwatch.yaml:3:1: error: unknown key `evaluation_intreval` in the agent config; did you mean `evaluation_interval`?",
            "burnwatch.yaml:4:22: error: `checkpoint_interval` 100ms is too short",
            "burnwatch.yaml:5:13: error: `log_format: xml` is not allowed",
            "burnwatch.yaml:6:24: error: `max_concurrent_probes: 0` is out of range",
        ];
        for w in want {
            assert!(e.iter().any(|l| l.contains(w)), "missing {w:?} in {e:#?}");
        }
        assert_eq!(e.len(), want.len(), "{e:#?}");
        assert!(
            errors("{}")
                .iter()
                .any(|l| l.contains("missing required key `rules`"))
        );
        assert!(errors("").iter().any(|l| l.contains("empty")));
    }

    #[test]
    fn sloth_switch_defaults_off_and_reports_mistakes_with_positions() {
        let p = Path::new("b.yaml");
        let off = parse(p, b"rules: [r]\n").expect("valid");
        assert!(!off.export.prometheus.sloth_compatible);
        let on = parse(
            p,
            b"rules: [r]\nexport:\n  prometheus:\n    sloth_compatible: true\n",
        )
        .expect("valid");
        assert!(on.export.prometheus.sloth_compatible);
        let e = errors(
            "rules: [r]\nexport:\n  prometheus:\n    sloth_compatible: maybe\n    sloth: true\n  prom: {}\n",
        );
        let want = [
            "burnwatch.yaml:4:23: error: `sloth_compatible`",
            "burnwatch.yaml:5:5: error: unknown key `sloth` in `export.prometheus`",
            "burnwatch.yaml:6:3: error: unknown key `prom` in `export`; allowed keys are `prometheus`",
        ];
        for w in want {
            assert!(e.iter().any(|l| l.contains(w)), "missing {w:?} in {e:#?}");
        }
        assert_eq!(e.len(), want.len(), "{e:#?}");
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("*.yaml", "a.yaml"));
        assert!(wildcard("*.yaml", ".yaml"));
        assert!(!wildcard("*.yaml", "a.yml"));
        assert!(wildcard("a?c*", "abcdef"));
        assert!(wildcard("*a*b*", "xxaxxbxx"));
        assert!(!wildcard("*a*b", "xxaxxbxx"));
        assert!(wildcard("*", ""));
        // Linear on a pathological pattern.
        let long = "a".repeat(10_000);
        assert!(!wildcard("*a*a*a*a*b", &long));
    }

    #[test]
    fn patterns_expand_and_empty_matches_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        for f in ["a.yaml", "b.yaml", "c.txt", ".hidden.yaml"] {
            std::fs::write(dir.path().join(f), "x").expect("write");
        }
        let mut c = AgentConfig::with_rules(&dir.path().join("bw.yaml"), vec!["*.yaml".into()]);
        assert_eq!(
            c.rule_paths().expect("matches"),
            vec![dir.path().join("a.yaml"), dir.path().join("b.yaml")]
        );
        c.rules.push(dir.path().join("*.json"));
        let e = c.rule_paths().expect_err("no match");
        assert!(e[0].message.contains("matches no file"), "{e:?}");
    }

    #[test]
    fn shipped_example_config_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/burnwatch.yaml");
        let c = load(&path).expect("deploy/burnwatch.yaml is valid");
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/burnwatch"));
        assert_eq!(
            c.rules,
            vec![path.parent().expect("dir").join("rules/*.yaml")]
        );
    }
}
