//! The agent's own configuration file (`burnwatch run --config burnwatch.yaml`): where to listen,
//! where to keep state, which rules files to load and how often to evaluate, checkpoint and look
//! for changed rules. Decoded with the schema walker ([`crate::schema`]), so a bad config file
//! gets the same `file:line:column: what is wrong; what to write` errors, all at once.
//!
//! Rules paths are resolved against the config file's directory. Each is a file, a directory
//! (every `*.yaml`/`*.yml` under it) or a pattern with `*`/`?` in its last component
//! (`rules/*.yaml`); patterns are expanded at every load, so a reload picks up new files.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::notify::config::AlertingConfig;
use crate::rules::decode::{Decoder, MapReader};
use crate::rules::diag::{Diagnostic, Severity};
use crate::rules::node::{self, Kind, Node, Pos};
use crate::secret::SecretValue;
use crate::time::Dur;

pub mod otlp;
pub mod sources;

use otlp::{OtlpConfig, OtlpConfigError, OtlpProtocol};

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
    /// slow evaluator slows collection instead of growing memory). Default 4096. The probe
    /// results forwarded to alerting's thresholds queue up to this many too, or two per probe
    /// of the rules at start when that is more.
    pub queue_length: usize,
    /// `export`: pushes and exposition variants besides the default `/metrics` page.
    pub export: ExportConfig,
    /// `alerting`: routes, receivers, inhibition and the Alertmanager client (see
    /// `docs/alerting.md`). Absent: alerts are evaluated and shown by the API but sent nowhere.
    /// Read at start only; a change needs a restart.
    pub alerting: AlertingConfig,
    /// `api`: who may use the HTTP API and how much it accepts (token, allowed host names,
    /// connection and silence limits). Read at start only.
    pub api: ApiConfig,
    /// `shard`: `{index, total}`: this agent evaluates only its share of the rules, services
    /// kept whole with what they read, assigned by a stable hash (see [`crate::shard`] and
    /// docs/scaling.md). `index` is a number from 0, or `hostname` for the ordinal at the end
    /// of the host name (a Kubernetes StatefulSet's `burnwatch-2` is 2). Absent: everything.
    pub shard: Option<crate::shard::Shard>,
    /// `sources`: Prometheus-compatible query APIs that `query` indicators read their SLIs
    /// from (see [`sources`] and docs/sources.md). Read at start only.
    pub sources: sources::SourcesConfig,
}

/// The default of `api.max_connections`: far below the usual soft limit of 1024 open files,
/// so that slow or idle clients can never take the descriptors probes and scrapes need.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// The default of `api.max_silences`.
pub const DEFAULT_MAX_SILENCES: usize = 1000;
/// The default of `api.max_silence_duration`: a quarter, the longest SLO window people use; a
/// longer mute is a rule change (disable the alert) in disguise.
pub const DEFAULT_MAX_SILENCE_DURATION: Dur = Dur::from_days(90);

/// The `api:` section: access control and limits of the HTTP server (see docs/api.md,
/// "Security").
#[derive(Debug, Clone, PartialEq)]
pub struct ApiConfig {
    /// `token`: the bearer token every state-changing request (silences, reload) must carry
    /// as `Authorization: Bearer <token>`; a string, `{env: VAR}` or `{file: path}`, read at
    /// start. Absent: no token is asked for, which is allowed only on a loopback `listen`
    /// (or with `allow_unauthenticated`).
    pub token: Option<SecretValue>,
    /// `protect_reads`: also require the token for `GET /api/...` and `/metrics` (then give
    /// Prometheus the token with `authorization: {credentials_file: ...}`). `/healthz` and
    /// `/readyz` always stay open for liveness checks. Default `false`; needs `token`.
    pub protect_reads: bool,
    /// `allow_unauthenticated`: start on a non-loopback `listen` without `token` (anyone who
    /// can reach the port can then silence every page); logged as a warning at start.
    /// Default `false`.
    pub allow_unauthenticated: bool,
    /// `hostnames`: DNS names clients use to reach the agent (`burnwatch.internal`, or with a
    /// port, `burnwatch.internal:9464`). Requests whose `Host` is neither an IP address,
    /// `localhost` nor one of these are refused (this stops DNS rebinding). Default empty.
    pub hostnames: Vec<String>,
    /// `max_connections`: client connections served at once; more wait in the kernel's
    /// accept queue. Default 256.
    pub max_connections: usize,
    /// `request_timeout`: how long a client may take to send a request's headers, and then
    /// its body; slower clients are disconnected. Default `10s`.
    pub request_timeout: Dur,
    /// `max_silences`: silences in force (pending or active) at once; expired ones are
    /// dropped oldest first to stay within it too. Default 1000.
    pub max_silences: usize,
    /// `max_silence_duration`: the longest silence accepted (end minus start). Default `90d`.
    pub max_silence_duration: Dur,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            token: None,
            protect_reads: false,
            allow_unauthenticated: false,
            hostnames: Vec::new(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            request_timeout: Dur::from_secs(10),
            max_silences: DEFAULT_MAX_SILENCES,
            max_silence_duration: DEFAULT_MAX_SILENCE_DURATION,
        }
    }
}

impl ApiConfig {
    /// The warning to log at start, if any: a non-loopback `listen` without a token that
    /// was explicitly allowed.
    pub fn warning(&self, listen: SocketAddr) -> Option<String> {
        (self.token.is_none() && !listen.ip().is_loopback()).then(|| {
            format!(
                "the API on {listen} has no token (api.allow_unauthenticated): anyone who can reach it can silence every alert; set api.token"
            )
        })
    }
}

/// The `export:` section: one optional block per exporter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportConfig {
    /// `export.otlp`: push every number to an OpenTelemetry collector at a fixed interval;
    /// absent means no push. Read at start only: a rules reload does not touch it, a change
    /// needs a restart.
    pub otlp: Option<OtlpConfig>,
    /// `export.prometheus`: the `/metrics` page.
    pub prometheus: PrometheusExport,
    /// `export.series`: `compact` (default) or `full`, the series per SLO that both `/metrics`
    /// and the OTLP push carry. Compact keeps what the shipped dashboards and burn-rate alerting
    /// read (about 19 series per availability SLO instead of 42); full adds every family in
    /// every window. docs/metrics.md's `compact` column says which samples are in which set.
    pub series: SeriesSet,
}

/// Which series per SLO the exporters carry (`export.series`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SeriesSet {
    /// The default: the families and windows dashboards and alerts read (see the catalogue's
    /// `Compact`, `crate::export::catalogue`).
    #[default]
    Compact,
    /// Every family in every window.
    Full,
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
            export: ExportConfig::default(),
            alerting: AlertingConfig::default(),
            api: ApiConfig::default(),
            shard: None,
            sources: sources::SourcesConfig::default(),
        }
    }

    /// The alerting state file inside `data_dir` (alerts, groups, notification log, silences).
    pub fn alerting_state_file(&self) -> PathBuf {
        self.data_dir.join("alerting.bwcp")
    }

    /// The URL notifications link to: `alerting.external_url`, else `http://<listen>`.
    pub fn external_url(&self) -> String {
        self.alerting
            .external_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
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
    into_result(load_checked(path))
}

/// Validates config text (named `path` in messages; relative paths resolve against its
/// directory).
pub fn parse(path: &Path, bytes: &[u8]) -> Result<AgentConfig, Vec<Diagnostic>> {
    into_result(parse_checked(path, bytes))
}

/// The config when there is no error, else every diagnostic.
fn into_result(
    (cfg, diags): (Option<AgentConfig>, Vec<Diagnostic>),
) -> Result<AgentConfig, Vec<Diagnostic>> {
    match cfg {
        Some(c) if !diags.iter().any(Diagnostic::is_error) => Ok(c),
        _ => Err(diags),
    }
}

/// Reads and validates the config file at `path`, keeping the warnings of a good file too
/// (`burnwatch check --config` and `run` print them): the config (None when there is any
/// error) and every diagnostic in the order found.
pub fn load_checked(path: &Path) -> (Option<AgentConfig>, Vec<Diagnostic>) {
    match read_config(path) {
        Ok(bytes) => parse_checked(path, &bytes),
        Err(diags) => (None, diags),
    }
}

fn read_config(path: &Path) -> Result<Vec<u8>, Vec<Diagnostic>> {
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
    std::fs::read(path).map_err(|e| whole(format!("cannot read: {e}")))
}

/// [`parse`], keeping the warnings of a good file too (see [`load_checked`]).
pub fn parse_checked(path: &Path, bytes: &[u8]) -> (Option<AgentConfig>, Vec<Diagnostic>) {
    let docs = match node::parse_documents(bytes) {
        Ok(docs) => docs,
        Err(e) => {
            let d = Diagnostic {
                file: path.to_path_buf(),
                pos: e.pos,
                severity: Severity::Error,
                message: e.message,
            };
            return (None, vec![d]);
        }
    };
    let text = std::str::from_utf8(bytes).unwrap_or_default();
    let mut d = Decoder::new(path, text);
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
    let diags: Vec<Diagnostic> = d.diagnostics;
    let ok = !diags.iter().any(Diagnostic::is_error);
    (cfg.filter(|_| ok), diags)
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
        "alerting",
        "api",
        "shard",
        "sources",
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
    if let Some(e) = m.opt(d, "export", |d, n, _| decode_export(d, base, n)) {
        cfg.export = e;
    }
    if let Some(a) = m.opt(d, "alerting", |d, n, _| crate::notify::config::decode(d, n)) {
        cfg.alerting = a;
    }
    if let Some(a) = m.opt(d, "api", |d, n, _| decode_api(d, base, n)) {
        cfg.api = a;
    }
    if let Some(n) = m.get("shard") {
        cfg.shard = decode_shard(d, n, &host_name());
    }
    if let Some(s) = m.opt(d, "sources", |d, n, _| sources::decode(d, base, n)) {
        cfg.sources = s;
    }
    check_api_exposure(d, &m, &cfg);
    (d.errors() == before).then_some(cfg)
}

/// The host name (`HOSTNAME`, else `/etc/hostname`), for `shard.index: hostname`.
fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// The `shard:` section; `host` is what `index: hostname` reads the ordinal from.
fn decode_shard(d: &mut Decoder<'_>, n: &Node, host: &str) -> Option<crate::shard::Shard> {
    let m = MapReader::new(d, n, "`shard`", &["index", "total"])?;
    let total = m.req(d, "total", "3", Decoder::uint)?;
    if !(1..=10_000).contains(&total) {
        let pos = m.get("total").map_or(m.pos, Node::pos);
        d.error(
            pos,
            format!("`shard.total: {total}` is out of range; write a number from 1 to 10000"),
        );
        return None;
    }
    let index_node = m.get("index");
    let index = match index_node.map(|n| (n, d.scalar(n, "shard.index"))) {
        None => {
            d.error(
                m.pos,
                "`shard` needs `index`: a number from 0, or `hostname` for a StatefulSet ordinal",
            );
            return None;
        }
        Some((_, None)) => return None,
        Some((n, Some(s))) if s == "hostname" => {
            let ordinal = host
                .rsplit_once('-')
                .and_then(|(_, tail)| tail.parse::<u64>().ok());
            match ordinal {
                Some(i) => (n, i),
                None => {
                    d.error(
                        n.pos(),
                        format!(
                            "`shard.index: hostname`: the host name `{host}` does not end in `-<ordinal>` \
                             (a StatefulSet pod's, e.g. `burnwatch-2`, does); write the index \
                             as a number instead"
                        ),
                    );
                    return None;
                }
            }
        }
        Some((n, Some(s))) => match s.parse::<u64>() {
            Ok(i) => (n, i),
            Err(_) => {
                d.error(
                    n.pos(),
                    format!(
                        "`shard.index: {s}` is not a number; write a number from 0, or `hostname`"
                    ),
                );
                return None;
            }
        },
    };
    let (n, index) = index;
    if index >= total {
        d.error(
            n.pos(),
            format!(
                "`shard.index` is {index} but `shard.total` is {total}; indexes run from 0 to {}",
                total - 1
            ),
        );
        return None;
    }
    Some(crate::shard::Shard {
        index: index as u32,
        total: total as u32,
    })
}

/// The `api:` section.
fn decode_api(d: &mut Decoder<'_>, base: &Path, n: &Node) -> Option<ApiConfig> {
    const KEYS: &[&str] = &[
        "token",
        "protect_reads",
        "allow_unauthenticated",
        "hostnames",
        "max_connections",
        "request_timeout",
        "max_silences",
        "max_silence_duration",
    ];
    if matches!(n.kind(), Kind::Null) {
        return Some(ApiConfig::default());
    }
    let m = MapReader::new(d, n, "`api`", KEYS)?;
    let before = d.errors();
    let mut out = ApiConfig::default();
    if let Some(t) = m.get("token")
        && let Some(s) = crate::secret::decode(d, base, t, "token")
    {
        match s.resolve() {
            Ok(v) => out.token = Some(v),
            Err(e) => d.error(t.pos(), format!("`api.token`: {e}")),
        }
    }
    if let Some(v) = m.opt(d, "protect_reads", Decoder::bool) {
        out.protect_reads = v;
    }
    if let Some(v) = m.opt(d, "allow_unauthenticated", Decoder::bool) {
        out.allow_unauthenticated = v;
    }
    if let Some(items) = m.opt(d, "hostnames", Decoder::list) {
        for item in items {
            if let Some(h) = d.string(item, "hostnames") {
                let h = h.trim().to_ascii_lowercase();
                if h.is_empty() || h.contains(['/', ' ', '@']) {
                    d.error(
                        item.pos(),
                        format!("`{h}` is not a host name; write a name such as `burnwatch.internal` or `burnwatch.internal:9464`"),
                    );
                } else {
                    out.hostnames.push(h);
                }
            }
        }
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
    if let Some(v) = m.opt(d, "max_connections", count) {
        out.max_connections = v;
    }
    if let Some(v) = m.opt(d, "max_silences", count) {
        out.max_silences = v;
    }
    if let Some(v) = m.opt(d, "request_timeout", Decoder::pos_dur) {
        out.request_timeout = v;
    }
    if let Some(v) = m.opt(d, "max_silence_duration", Decoder::pos_dur) {
        out.max_silence_duration = v;
    }
    if out.protect_reads && out.token.is_none() && m.get("token").is_none() {
        d.error(
            m.key_pos("protect_reads").unwrap_or(m.pos),
            "`protect_reads` needs `token`; set `api.token: {file: /etc/burnwatch/api-token}`",
        );
    }
    (d.errors() == before).then_some(out)
}

/// A `listen` other hosts can reach needs a token, unless explicitly allowed without one.
fn check_api_exposure(d: &mut Decoder<'_>, m: &MapReader<'_>, cfg: &AgentConfig) {
    if cfg.listen.ip().is_loopback() || cfg.api.token.is_some() || cfg.api.allow_unauthenticated {
        return;
    }
    // A token that failed to decode was reported already.
    if m.get("api").is_some_and(|a| match a.kind() {
        Kind::Map(e) => e.iter().any(|(k, _)| k.as_str() == Some("token")),
        _ => false,
    }) {
        return;
    }
    d.error(
        m.get("listen").map_or(m.pos, Node::pos),
        format!(
            "`listen: {}` is reachable from other hosts, and without a token anyone who reaches it can silence every alert; set `api: {{token: {{file: /etc/burnwatch/api-token}}}}` (or `{{env: BURNWATCH_API_TOKEN}}`), listen on 127.0.0.1, or set `api.allow_unauthenticated: true`",
            cfg.listen
        ),
    );
}

fn at_least_1s(d: &mut Decoder<'_>, n: &Node, key: &'static str) -> Option<Dur> {
    let v = d.pos_dur(n, key)?;
    if v < Dur::from_secs(1) {
        d.error(
            n.pos(),
            format!("`{key}` {v} is too short; write at least 1s"),
        );
        return None;
    }
    Some(v)
}

/// The `export:` section. Each exporter's block is read by its own function.
fn decode_export(d: &mut Decoder<'_>, base: &Path, n: &Node) -> Option<ExportConfig> {
    const KEYS: &[&str] = &["otlp", "prometheus", "series"];
    if matches!(n.kind(), Kind::Null) {
        return Some(ExportConfig::default());
    }
    let m = MapReader::new(d, n, "`export`", KEYS)?;
    let before = d.errors();
    let mut out = ExportConfig::default();
    if let Some(v) = m.opt(d, "series", |d, n, k| d.choice(n, k, &["compact", "full"])) {
        out.series = match v {
            "full" => SeriesSet::Full,
            _ => SeriesSet::Compact,
        };
    }
    if let Some(n) = m.get("otlp") {
        out.otlp = decode_otlp(d, base, n).map(|mut o| {
            o.series = out.series;
            o
        });
    }
    if let Some(p) = m.get("prometheus")
        && let Some(pm) = MapReader::new(d, p, "`export.prometheus`", &["sloth_compatible"])
        && let Some(v) = pm.opt(d, "sloth_compatible", Decoder::bool)
    {
        out.prometheus.sloth_compatible = v;
    }
    (d.errors() == before).then_some(out)
}

/// `export.otlp`, checked by [`OtlpConfig::check`] so that everything the exporter would
/// refuse at start is reported here, at the offending line.
fn decode_otlp(d: &mut Decoder<'_>, base: &Path, n: &Node) -> Option<OtlpConfig> {
    const KEYS: &[&str] = &[
        "endpoint",
        "protocol",
        "interval",
        "timeout",
        "headers",
        "resource",
        "ca_file",
        "max_request_bytes",
    ];
    let m = MapReader::new(d, n, "`export.otlp`", KEYS)?;
    let before = d.errors();
    let endpoint = m.req(d, "endpoint", "http://127.0.0.1:4317", Decoder::url);
    let protocol = match m.opt(d, "protocol", |d, n, k| {
        d.choice(n, k, &["grpc", "http/protobuf"])
    }) {
        Some("http/protobuf") => OtlpProtocol::HttpProtobuf,
        _ => OtlpProtocol::Grpc,
    };
    let mut cfg = OtlpConfig::new(endpoint.unwrap_or_default(), protocol);
    if let Some(v) = m.opt(d, "interval", at_least_1s) {
        cfg.interval = v.to_std();
    }
    if let Some(v) = m.opt(d, "timeout", Decoder::pos_dur) {
        cfg.timeout = v.to_std();
    }
    if let Some(v) = m.opt(d, "max_request_bytes", Decoder::uint) {
        cfg.max_request_bytes = usize::try_from(v).unwrap_or(usize::MAX);
    }
    if let Some(h) = m.opt(d, "headers", |d, n, _| decode_headers(d, base, n)) {
        cfg.headers = h;
    }
    if let Some(r) = m.opt(d, "resource", decode_resource) {
        cfg.resource = r;
    }
    if let Some(s) = m.opt(d, "ca_file", Decoder::string) {
        cfg.ca_file = Some(base.join(s));
        if cfg.endpoint.starts_with("http://")
            && let Some(p) = m.get("ca_file").map(Node::pos)
        {
            d.error(
                p,
                "`ca_file` is only used for an https:// endpoint; write the endpoint as https:// or remove `ca_file`",
            );
        }
    }
    if d.errors() != before {
        return None;
    }
    if let Err(e) = cfg.check() {
        let at = |key: &str| m.get(key).map_or(m.pos, Node::pos);
        let pos = match &e {
            OtlpConfigError::Endpoint { .. } => at("endpoint"),
            OtlpConfigError::Header { name, .. } => {
                header_pos(m.get("headers"), name).unwrap_or(m.pos)
            }
            OtlpConfigError::CaFile { .. } | OtlpConfigError::Tls(_) => at("ca_file"),
            OtlpConfigError::RequestBytes(_) => at("max_request_bytes"),
            _ => m.pos,
        };
        d.error(pos, format!("{e}; fix `export.otlp`"));
        return None;
    }
    Some(cfg)
}

/// Where the header `name` is written inside `headers`.
fn header_pos(headers: Option<&Node>, name: &str) -> Option<Pos> {
    let Kind::Map(entries) = headers?.kind() else {
        return None;
    };
    entries
        .iter()
        .find(|(k, _)| k.scalar_text().as_deref() == Some(name))
        .map(|(k, _)| k.pos())
}

/// `headers: {name: value}`, a value being literal text, `{env: VAR}` or `{file: path}`.
fn decode_headers(d: &mut Decoder<'_>, base: &Path, n: &Node) -> Option<Vec<(String, String)>> {
    let entries = string_map(
        d,
        n,
        "headers",
        "a mapping of header names to values, e.g. {x-api-key: {env: OTLP_TOKEN}}",
    )?;
    let before = d.errors();
    let mut out = Vec::new();
    for (k, v) in entries {
        let Some(name) = d.scalar(k, "headers") else {
            continue;
        };
        let value = match v.kind() {
            Kind::Map(_) => secret(d, base, v, &name),
            Kind::Seq(_) | Kind::Null => {
                d.type_error(v, &name, "a value, {env: VAR} or {file: /path}");
                None
            }
            _ => d.scalar(v, &name),
        };
        if let Some(value) = value {
            out.push((name, value));
        }
    }
    (d.errors() == before).then_some(out)
}

/// A header value read from the environment or a file now (the exporter sends plain strings).
/// Messages name the variable or file, never the value.
fn secret(d: &mut Decoder<'_>, base: &Path, n: &Node, header: &str) -> Option<String> {
    let s = crate::secret::decode(d, base, n, header)?;
    match s.resolve() {
        Ok(v) => Some(v.into_inner()),
        Err(e) => {
            d.error(n.pos(), format!("header `{header}`: {e}"));
            None
        }
    }
}

/// `resource: {name: value}`: OpenTelemetry resource attributes (dotted names allowed).
fn decode_resource(
    d: &mut Decoder<'_>,
    n: &Node,
    key: &'static str,
) -> Option<Vec<(String, String)>> {
    let entries = string_map(
        d,
        n,
        key,
        "a mapping of attribute names to values, e.g. {deployment.environment.name: prod}",
    )?;
    let before = d.errors();
    let mut out = Vec::new();
    for (k, v) in entries {
        let Some(name) = d.scalar(k, key) else {
            continue;
        };
        if name.is_empty() {
            d.error(
                k.pos(),
                "a resource attribute needs a name; write `name: value`",
            );
            continue;
        }
        if let Some(value) = d.scalar(v, &name) {
            out.push((name, value));
        }
    }
    (d.errors() == before).then_some(out)
}

/// The entries of a mapping (an empty value is an empty mapping).
fn string_map<'n>(
    d: &mut Decoder<'_>,
    n: &'n Node,
    key: &str,
    expected: &str,
) -> Option<&'n [(Node, Node)]> {
    match n.kind() {
        Kind::Map(entries) => Some(entries),
        Kind::Null => Some(&[]),
        _ => {
            d.type_error(n, key, expected);
            None
        }
    }
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
mod alerting_tests;

#[cfg(test)]
mod tests {
    use super::*;

    /// `shard:` decoded as if the host were `host`: the shard, or the diagnostics.
    fn shard(text: &str, host: &str) -> Result<crate::shard::Shard, Vec<String>> {
        let path = Path::new("burnwatch.yaml");
        let docs = node::parse_documents(text.as_bytes()).expect("yaml");
        let mut d = Decoder::new(path, text);
        let n = MapReader::new(&mut d, &docs[0], "the agent config", &["shard"])
            .and_then(|m| m.get("shard"))
            .expect("a shard key");
        let out = decode_shard(&mut d, n, host);
        match out {
            Some(s) if d.diagnostics.is_empty() => Ok(s),
            _ => Err(d.diagnostics.iter().map(ToString::to_string).collect()),
        }
    }

    #[test]
    fn shard_takes_a_number_or_the_statefulset_ordinal_of_the_host_name() {
        use crate::shard::Shard;
        let s = |index, total| Ok(Shard { index, total });
        assert_eq!(shard("shard: {index: 1, total: 3}", "x"), s(1, 3));
        assert_eq!(
            shard("shard: {index: hostname, total: 3}", "burnwatch-2"),
            s(2, 3)
        );
        assert_eq!(
            shard("shard: {index: hostname, total: 4}", "slo-agent-eu-0"),
            s(0, 4)
        );
        let e = shard("shard: {index: hostname, total: 3}", "laptop").expect_err("no ordinal");
        assert!(
            e[0].contains("`laptop` does not end in `-<ordinal>`"),
            "{e:?}"
        );
        let e = shard("shard: {index: hostname, total: 3}", "burnwatch-3").expect_err("3 of 3");
        assert!(
            e[0].contains("`shard.index` is 3 but `shard.total` is 3; indexes run from 0 to 2"),
            "{e:?}"
        );
        let e = shard("shard: {index: 0, total: 0}", "x").expect_err("zero");
        assert!(e[0].contains("out of range"), "{e:?}");
        let e = shard("shard: {total: 2}", "x").expect_err("no index");
        assert!(e[0].contains("`shard` needs `index`"), "{e:?}");
        let e = shard("shard: {index: first, total: 2}", "x").expect_err("word");
        assert!(
            e[0].contains("`shard.index: first` is not a number"),
            "{e:?}"
        );
        let e = shard("shard: {index: 0, total: 2, replicas: 2}", "x").expect_err("key");
        assert!(e[0].contains("unknown key `replicas`"), "{e:?}");
        // Through the whole file.
        let c = parse(
            Path::new("b.yaml"),
            b"rules: [r]\nshard: {index: 1, total: 2}\n",
        )
        .expect("valid");
        assert_eq!(c.shard, Some(Shard { index: 1, total: 2 }));
        assert_eq!(
            parse(Path::new("b.yaml"), b"rules: [r]\n")
                .expect("valid")
                .shard,
            None
        );
    }

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
            b"listen: 0.0.0.0:9999\ndata_dir: /var/lib/bw\nrules: [r]\nevaluation_interval: 2s\ncheckpoint_interval: 30s\nreload_check_interval: 0s\nlog_format: json\nlog_level: debug\nmax_concurrent_probes: 5\nmax_concurrent_scrapes: 6\nqueue_length: 7\napi: {allow_unauthenticated: true}\n",
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
    fn otlp_block_with_every_field() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("token"), "t0ken\n").expect("write");
        let text = "rules: [r]\nexport:\n  otlp:\n    endpoint: https://collector:4318\n    protocol: http/protobuf\n    interval: 15s\n    timeout: 3s\n    headers: {x-api-key: {file: token}, x-tenant: 42}\n    resource: {deployment.environment.name: prod}\n    max_request_bytes: 1048576\n    ca_file: /dev/null\n";
        // /dev/null holds no certificate: the CA file is checked here, not at the first push.
        let e = match parse(&dir.path().join("bw.yaml"), text.as_bytes()) {
            Ok(c) => panic!("expected an error, got {c:?}"),
            Err(d) => d.iter().map(ToString::to_string).collect::<Vec<_>>(),
        };
        assert_eq!(e.len(), 1, "{e:#?}");
        assert!(
            e[0].contains("bw.yaml:11:14: error: OTLP ca_file /dev/null: no PEM certificate"),
            "{e:#?}"
        );

        let c = parse(
            &dir.path().join("bw.yaml"),
            text.replace("    ca_file: /dev/null\n", "").as_bytes(),
        )
        .expect("valid");
        let o = c.export.otlp.expect("otlp block");
        assert_eq!(o.endpoint, "https://collector:4318");
        assert_eq!(o.protocol, OtlpProtocol::HttpProtobuf);
        assert_eq!(o.interval, std::time::Duration::from_secs(15));
        assert_eq!(o.timeout, std::time::Duration::from_secs(3));
        assert_eq!(o.max_request_bytes, 1 << 20);
        assert_eq!(
            o.headers,
            vec![
                ("x-api-key".to_owned(), "t0ken".to_owned()),
                ("x-tenant".to_owned(), "42".to_owned())
            ]
        );
        assert_eq!(
            o.resource,
            vec![("deployment.environment.name".to_owned(), "prod".to_owned())]
        );
        // Secrets never reach Debug output.
        let dbg = format!("{o:?}");
        assert!(
            !dbg.contains("t0ken") && dbg.contains("x-api-key: <redacted>"),
            "{dbg}"
        );
    }

    #[test]
    fn otlp_defaults_and_absent_block() {
        let c = parse(Path::new("b.yaml"), b"rules: [r]\n").expect("valid");
        assert_eq!(c.export, ExportConfig::default());
        let c = parse(
            Path::new("b.yaml"),
            b"rules: [r]\nexport:\n  otlp: {endpoint: 'http://127.0.0.1:4317'}\n",
        )
        .expect("valid");
        let o = c.export.otlp.expect("otlp");
        assert_eq!(
            o,
            OtlpConfig::new("http://127.0.0.1:4317", OtlpProtocol::Grpc)
        );
    }

    #[test]
    fn otlp_errors_have_positions_and_hide_secrets() {
        let e = errors(
            "rules: [r]\nexport:\n  otlp:\n    endpoint: ftp://c:1\n    protocol: thrift\n    interval: 0s\n    timeout: 0s\n    headers: {x-a: {env: BURNWATCH_TEST_UNSET_VARIABLE_4242}, x-b: {file: /nonexistent/secret}, x-c: {env: A, file: B}}\n    resource: [a]\n    colour: red\n",
        );
        let want = [
            "burnwatch.yaml:4:15: error: `endpoint` `ftp://c:1` is not an http(s) URL",
            "burnwatch.yaml:5:15: error: `protocol: thrift` is not allowed",
            "burnwatch.yaml:6:15: error: `interval` must be longer than zero",
            "burnwatch.yaml:7:14: error: `timeout` must be longer than zero",
            "error: header `x-a`: the environment variable `BURNWATCH_TEST_UNSET_VARIABLE_4242` is not set",
            "error: header `x-b`: secret file /nonexistent/secret:",
            "error: a secret (`{env: VAR}` or `{file: path}`) takes exactly one of `env`, `file`",
            "burnwatch.yaml:9:15: error: `resource` must be a mapping",
            "burnwatch.yaml:10:5: error: unknown key `colour` in `export.otlp`",
        ];
        for w in want {
            assert!(e.iter().any(|l| l.contains(w)), "missing {w:?} in {e:#?}");
        }
        assert_eq!(e.len(), want.len(), "{e:#?}");
        // Checks only the exporter can make, at the right line; no header value in messages.
        let e = errors(
            "rules: [r]\nexport:\n  otlp:\n    endpoint: http://c:1\n    headers:\n      bad name: v\n      x-ok: \"line\\nbreak-s3cret\"\n",
        );
        assert_eq!(e.len(), 1, "{e:#?}");
        assert!(
            e[0].contains("burnwatch.yaml:6:7: error: OTLP header \"bad name\""),
            "{e:#?}"
        );
        let e = errors(
            "rules: [r]\nexport:\n  otlp:\n    endpoint: http://c:1\n    headers: {x-ok: \"line\\nbreak-s3cret\"}\n",
        );
        assert_eq!(e.len(), 1, "{e:#?}");
        assert!(
            e[0].contains("burnwatch.yaml:5:15: error: OTLP header \"x-ok\""),
            "{e:#?}"
        );
        assert!(e.iter().all(|l| !l.contains("s3cret")), "{e:#?}");
        let e = errors(
            "rules: [r]\nexport:\n  otlp:\n    endpoint: http://c:1\n    max_request_bytes: 1000\n",
        );
        assert_eq!(e.len(), 1, "{e:#?}");
        assert!(
            e[0].contains(
                "burnwatch.yaml:5:24: error: OTLP max_request_bytes 1000 is below the minimum of 16384"
            ),
            "{e:#?}"
        );
        let e = errors(
            "rules: [r]\nexport:\n  otlp:\n    endpoint: http://c:1\n    max_request_bytes: 2MiB\n",
        );
        assert!(
            e.iter()
                .any(|l| l.contains("burnwatch.yaml:5:24: error:") && l.contains("a whole number")),
            "{e:#?}"
        );
        let e =
            errors("rules: [r]\nexport:\n  otlp:\n    endpoint: http://c:1\n    ca_file: ca.pem\n");
        assert!(
            e.iter().any(|l| l.contains(
                "burnwatch.yaml:5:14: error: `ca_file` is only used for an https:// endpoint"
            )),
            "{e:#?}"
        );
        assert!(
            errors("rules: [r]\nexport: {otlp: {}}\n")
                .iter()
                .any(|l| l.contains("`export.otlp` is missing required key `endpoint`"))
        );
        assert!(
            errors("rules: [r]\nexport: {otlb: {}}\n")
                .iter()
                .any(|l| l.contains("unknown key `otlb` in `export`; did you mean `otlp`?"))
        );
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
        // The commented `export` and `alerting` examples are valid too once uncommented (the
        // OTLP secret and CA file replaced by ones that exist here).
        let text = std::fs::read_to_string(&path).expect("read");
        let example = text
            .split_once("# export:")
            .map(|(_, rest)| format!("export:{rest}"))
            .expect("an export example");
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = dir.path().join("ca.pem");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("CA");
        std::fs::write(&ca, cert.pem()).expect("write CA");
        let example = example
            .lines()
            .map(|l| l.strip_prefix("# ").unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n")
            .replace("{env: OTLP_API_KEY}", "k3y")
            .replace("/etc/ssl/collector-ca.pem", &ca.display().to_string())
            .replace("/etc/ssl/internal-ca.pem", &ca.display().to_string())
            .replace(
                "url: http://prometheus:9090",
                "url: https://prometheus:9090",
            );
        let c = parse(&path, format!("rules: [r]\n{example}\n").as_bytes())
            .expect("the uncommented example is valid");
        let o = c.export.otlp.expect("otlp");
        assert_eq!(o.endpoint, "https://otel-collector.internal:4317");
        assert_eq!(o.headers, vec![("x-api-key".to_owned(), "k3y".to_owned())]);
        let [prom] = c.sources.prometheus.as_slice() else {
            panic!("{:?}", c.sources)
        };
        assert_eq!(
            (prom.name.as_str(), prom.headers.len(), prom.default),
            ("prom", 1, true)
        );
        let a = &c.alerting;
        assert_eq!(a.route.receiver, "tickets");
        assert_eq!(a.receivers.len(), 2);
        assert_eq!(a.receivers[0].email.len(), 1);
    }

    #[test]
    fn series_set_defaults_to_compact_reaches_otlp_and_reports_mistakes() {
        let p = Path::new("b.yaml");
        let off = parse(p, b"rules: [r]\n").expect("valid");
        assert_eq!(off.export.series, SeriesSet::Compact);
        let full = parse(
            p,
            b"rules: [r]\nexport:\n  otlp: {endpoint: 'http://127.0.0.1:4317'}\n  series: full\n",
        )
        .expect("valid");
        assert_eq!(full.export.series, SeriesSet::Full);
        // The push follows the page's setting, whatever the order of the keys.
        assert_eq!(full.export.otlp.map(|o| o.series), Some(SeriesSet::Full));
        let e = errors("rules: [r]\nexport:\n  series: ful\n");
        assert!(
            e.iter()
                .any(|l| l.contains("burnwatch.yaml:3:11: error") && l.contains("`full`")),
            "{e:#?}"
        );
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
            "burnwatch.yaml:6:3: error: unknown key `prom` in `export`; allowed keys are `otlp`, `prometheus`, `series`",
        ];
        for w in want {
            assert!(e.iter().any(|l| l.contains(w)), "missing {w:?} in {e:#?}");
        }
        assert_eq!(e.len(), want.len(), "{e:#?}");
    }

    #[test]
    fn api_section_defaults_every_field_and_errors() {
        let c = parse(Path::new("b.yaml"), b"rules: [r]\n").expect("valid");
        assert_eq!(c.api, ApiConfig::default());
        assert_eq!(c.api.max_connections, 256);
        assert_eq!(c.api.max_silences, 1000);
        assert_eq!(c.api.max_silence_duration, Dur::from_days(90));
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("token"), "t0ken-value\n").expect("write");
        let c = parse(
            &dir.path().join("bw.yaml"),
            b"listen: 0.0.0.0:9464\nrules: [r]\napi:\n  token: {file: token}\n  protect_reads: true\n  hostnames: [Burnwatch.Internal, 'bw:80']\n  max_connections: 10\n  request_timeout: 2s\n  max_silences: 5\n  max_silence_duration: 7d\n",
        )
        .expect("valid");
        assert_eq!(
            c.api.token.as_ref().map(SecretValue::expose),
            Some("t0ken-value")
        );
        assert!(c.api.protect_reads);
        assert_eq!(c.api.hostnames, ["burnwatch.internal", "bw:80"]);
        assert_eq!((c.api.max_connections, c.api.max_silences), (10, 5));
        assert_eq!(c.api.request_timeout, Dur::from_secs(2));
        assert_eq!(c.api.max_silence_duration, Dur::from_days(7));
        assert!(c.api.warning(c.listen).is_none());
        // The token never reaches Debug output.
        assert!(!format!("{c:?}").contains("t0ken-value"));

        let e = errors(
            "rules: [r]\napi:\n  token: {env: BURNWATCH_TEST_UNSET_TOKEN_4242}\n  max_connections: 0\n  request_timeout: 0s\n  hostnames: ['http://x/']\n  tokn: x\n",
        );
        let want = [
            "burnwatch.yaml:3:10: error: `api.token`: the environment variable `BURNWATCH_TEST_UNSET_TOKEN_4242` is not set",
            "burnwatch.yaml:4:20: error: `max_connections: 0` is out of range",
            "burnwatch.yaml:5:20: error: `request_timeout` must be longer than zero",
            "burnwatch.yaml:6:15: error: `http://x/` is not a host name",
            "burnwatch.yaml:7:3: error: unknown key `tokn` in `api`",
        ];
        for w in want {
            assert!(e.iter().any(|l| l.contains(w)), "missing {w:?} in {e:#?}");
        }
        assert_eq!(e.len(), want.len(), "{e:#?}");
        let e = errors("rules: [r]\napi: {protect_reads: true}\n");
        assert!(e[0].contains("`protect_reads` needs `token`"), "{e:#?}");
    }

    #[test]
    fn a_listen_other_hosts_reach_needs_a_token() {
        for listen in ["0.0.0.0:9464", "10.0.0.5:9464", "[::]:9464"] {
            let e = errors(&format!("listen: '{listen}'\nrules: [r]\n"));
            assert_eq!(e.len(), 1, "{e:#?}");
            assert!(
                e[0].contains("burnwatch.yaml:1:9: error: `listen:")
                    && e[0].contains("set `api: {token: {file: /etc/burnwatch/api-token}}`")
                    && e[0].contains("api.allow_unauthenticated: true"),
                "{e:#?}"
            );
        }
        let c = parse(
            Path::new("b.yaml"),
            b"listen: 0.0.0.0:9464\nrules: [r]\napi: {allow_unauthenticated: true}\n",
        )
        .expect("explicitly allowed");
        assert!(
            c.api
                .warning(c.listen)
                .is_some_and(|w| w.contains("no token")),
            "{c:?}"
        );
        let c =
            parse(Path::new("b.yaml"), b"listen: '[::1]:9464'\nrules: [r]\n").expect("loopback");
        assert!(c.api.warning(c.listen).is_none());
    }
}
