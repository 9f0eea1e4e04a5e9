//! The `sources:` section of the agent config: Prometheus-compatible query APIs (Prometheus,
//! Thanos Query, Mimir, VictoriaMetrics) that `query` indicators read their SLIs from (see
//! docs/sources.md). Decoding and the start-time checks live here; the reads themselves are
//! [`crate::source`]'s.

use std::path::{Path, PathBuf};

use crate::http_client::{HttpAuth, decode_auth};
use crate::rules::decode::{Decoder, MapReader};
use crate::rules::model::RuleSet;
use crate::rules::node::Node;
use crate::time::Dur;

/// The default of [`PrometheusSource::interval`].
pub const DEFAULT_INTERVAL: Dur = Dur::from_secs(60);
/// The default of [`PrometheusSource::timeout`].
pub const DEFAULT_TIMEOUT: Dur = Dur::from_secs(10);

/// `sources:`: where SLIs that are not scraped come from.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SourcesConfig {
    /// `sources.prometheus`: Prometheus-compatible query APIs, by unique `name`.
    pub prometheus: Vec<PrometheusSource>,
}

/// One `sources.prometheus` entry. `Debug` shows where secrets come from, never their values.
#[derive(Debug, Clone, PartialEq)]
pub struct PrometheusSource {
    /// `name`: what a `query` indicator's `source` names (required, unique).
    pub name: String,
    /// `url`: the API's base URL, e.g. `http://prometheus:9090`, `http://thanos-query:9090`,
    /// `http://mimir:8080/prometheus` or `http://victoriametrics:8428`; burnwatch POSTs to
    /// `<url>/api/v1/query` (required, `http://` or `https://`).
    pub url: String,
    /// `bearer_token` or `basic_auth: {username, password}`: credentials sent with every
    /// query, secrets written inline, `{env: VAR}` or `{file: path}` (read at each query, so a
    /// rotated file is picked up). Optional.
    pub auth: Option<HttpAuth>,
    /// `headers`: extra request headers, e.g. `X-Scope-OrgID: tenant-1` for Mimir (values
    /// inline, `{env: VAR}` or `{file: path}`, read at start; never logged).
    pub headers: Vec<(String, String)>,
    /// `tls_ca`: a PEM CA bundle trusted on top of the Mozilla roots, for an `https://` URL
    /// behind a private CA (relative to the config file).
    pub tls_ca: Option<PathBuf>,
    /// `timeout`: bound of one query, connection included. Default 10s; a late answer is no
    /// data for the interval (reason `timeout`).
    pub timeout: Dur,
    /// `interval`: how often each SLO's queries are read. Default 1m, at least 1s.
    pub interval: Dur,
    /// `default`: the source of the `query` indicators that name none, when several sources
    /// are configured (with one source, it is the default without saying so).
    pub default: bool,
}

impl SourcesConfig {
    /// The source a `query` indicator reads: the one it names, or the default (the only
    /// source, or the one marked `default: true`). `Err` says why none fits.
    pub fn resolve(&self, name: Option<&str>) -> Result<&PrometheusSource, String> {
        let all = &self.prometheus;
        match name {
            Some(n) => all.iter().find(|s| s.name == n).ok_or_else(|| {
                if all.is_empty() {
                    format!("it reads the query source `{n}`, and the agent config has no `sources.prometheus` entry")
                } else {
                    format!(
                        "it reads the query source `{n}`, which `sources.prometheus` does not name (it has {})",
                        names(all)
                    )
                }
            }),
            None => match all.as_slice() {
                [] => Err("it needs a query source (its queries are read from Prometheus), and the agent config has no `sources.prometheus` entry; add one (docs/sources.md)".to_owned()),
                [one] => Ok(one),
                many => many.iter().find(|s| s.default).ok_or_else(|| {
                    format!(
                        "it names no query source and none of {} is `default: true`; set `source:` in the SLO or `default: true` on one source",
                        names(many)
                    )
                }),
            },
        }
    }

    /// One message per SLO of `rules` whose query source is missing (naming the SLO), for the
    /// start-time checks: `run` refuses to start with any.
    pub fn missing(&self, rules: &RuleSet) -> Vec<String> {
        rules
            .slos()
            .filter_map(|slo| {
                let wanted = slo.indicator.query_source()?;
                self.resolve(wanted)
                    .err()
                    .map(|why| format!("SLO {}: {why}", slo.id))
            })
            .collect()
    }
}

fn names(all: &[PrometheusSource]) -> String {
    all.iter()
        .map(|s| format!("`{}`", s.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `sources:` (only `prometheus:` so far).
pub(crate) fn decode(d: &mut Decoder<'_>, base: &Path, n: &Node) -> Option<SourcesConfig> {
    let m = MapReader::new(d, n, "`sources`", &["prometheus"])?;
    let before = d.errors();
    let mut out = SourcesConfig::default();
    if let Some(items) = m.opt(d, "prometheus", Decoder::list) {
        for item in items {
            if let Some(s) = decode_prometheus(d, base, item) {
                if out.prometheus.iter().any(|o| o.name == s.name) {
                    d.error(
                        item.pos(),
                        format!(
                            "a second source named `{}`; source names must be unique",
                            s.name
                        ),
                    );
                    continue;
                }
                out.prometheus.push(s);
            }
        }
        if out.prometheus.iter().filter(|s| s.default).count() > 1 {
            let pos = m.get("prometheus").map_or(m.pos, Node::pos);
            d.error(pos, "more than one source is `default: true`; mark one");
        }
    }
    (d.errors() == before).then_some(out)
}

fn decode_prometheus(d: &mut Decoder<'_>, base: &Path, n: &Node) -> Option<PrometheusSource> {
    const KEYS: &[&str] = &[
        "name",
        "url",
        "bearer_token",
        "basic_auth",
        "headers",
        "tls_ca",
        "timeout",
        "interval",
        "default",
    ];
    let m = MapReader::new(d, n, "a `sources.prometheus` entry", KEYS)?;
    let before = d.errors();
    let name = m.req(d, "name", "prometheus", Decoder::name);
    let url = m.req(d, "url", "http://prometheus:9090", Decoder::url);
    let auth = decode_auth(d, &m);
    let headers = m
        .opt(d, "headers", |d, n, _| super::decode_headers(d, base, n))
        .unwrap_or_default();
    if auth.is_some()
        && headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
    {
        let pos = m.key_pos("headers").unwrap_or(m.pos);
        d.error(
            pos,
            "`headers` sets Authorization and so does `bearer_token` or `basic_auth`; keep one",
        );
    }
    if let Err(e) = super::otlp::header_map(&headers) {
        let pos = m.key_pos("headers").unwrap_or(m.pos);
        d.error(pos, e.to_string());
    }
    let timeout = m
        .opt(d, "timeout", Decoder::pos_dur)
        .unwrap_or(DEFAULT_TIMEOUT);
    let interval = m
        .opt(d, "interval", super::at_least_1s)
        .unwrap_or(DEFAULT_INTERVAL);
    let default = m.opt(d, "default", Decoder::bool).unwrap_or(false);
    let tls_ca = m.opt(d, "tls_ca", Decoder::string).map(|p| base.join(p));
    if let (Some(ca), Some(pos)) = (&tls_ca, m.get("tls_ca").map(Node::pos)) {
        if url.as_deref().is_some_and(|u| u.starts_with("http://")) {
            d.error(
                pos,
                "`tls_ca` is only used for an https:// url; write the url as https:// or remove `tls_ca`",
            );
        } else if let Err(e) = super::otlp::read_ca(ca) {
            d.error(pos, format!("{e}"));
        }
    }
    if d.errors() != before {
        return None;
    }
    Some(PrometheusSource {
        name: name?,
        url: url?.trim_end_matches('/').to_owned(),
        auth,
        headers,
        tls_ca,
        timeout,
        interval,
        default,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::parse;
    use crate::secret::Secret;

    use super::*;

    fn errors(text: &str) -> Vec<String> {
        match parse(Path::new("/etc/bw/burnwatch.yaml"), text.as_bytes()) {
            Ok(_) => Vec::new(),
            Err(d) => d.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn every_field_and_the_defaults() {
        let text = "rules: [r.yaml]\nsources:\n  prometheus:\n    - name: mimir\n      url: http://mimir:8080/prometheus/\n      basic_auth: {username: bw, password: {env: MIMIR_PW}}\n      headers: {X-Scope-OrgID: tenant-1}\n      timeout: 3s\n      interval: 30s\n      default: true\n    - name: prom\n      url: http://prom:9090\n      bearer_token: {file: token}\n";
        let cfg = parse(Path::new("/etc/bw/burnwatch.yaml"), text.as_bytes()).expect("valid");
        let [mimir, prom] = cfg.sources.prometheus.as_slice() else {
            panic!("{:?}", cfg.sources)
        };
        assert_eq!(mimir.url, "http://mimir:8080/prometheus");
        assert_eq!(
            mimir.headers,
            vec![("X-Scope-OrgID".to_owned(), "tenant-1".to_owned())]
        );
        assert_eq!(
            (mimir.timeout, mimir.interval),
            (Dur::from_secs(3), Dur::from_secs(30))
        );
        assert!(mimir.default && !prom.default);
        assert_eq!(
            prom.auth,
            Some(HttpAuth::Bearer(Secret::File("/etc/bw/token".into())))
        );
        assert_eq!(
            (prom.timeout, prom.interval),
            (DEFAULT_TIMEOUT, DEFAULT_INTERVAL)
        );
        assert_eq!(cfg.sources.resolve(None).map(|s| &s.name), Ok(&mimir.name));
        assert_eq!(
            cfg.sources.resolve(Some("prom")).map(|s| &s.name),
            Ok(&prom.name)
        );
        let none = cfg.sources.resolve(Some("thanos")).expect_err("unknown");
        assert!(
            none.contains("`thanos`") && none.contains("`mimir`, `prom`"),
            "{none}"
        );
    }

    #[test]
    fn mistakes_are_errors_at_their_line() {
        let e = errors(
            "rules: [r.yaml]\nsources:\n  prometheus:\n    - name: a\n      url: prom:9090\n    - name: b\n      url: http://p\n      tls_ca: ca.pem\n      bearer_token: {env: T}\n      basic_auth: {username: u, password: {env: P}}\n    - name: c\n      url: http://p\n      interval: 100ms\n",
        );
        let text = e.join("\n");
        assert!(text.contains("burnwatch.yaml:5:12: error:"), "{text}");
        assert!(
            text.contains(":8:15: error: `tls_ca` is only used for an https:// url"),
            "{text}"
        );
        assert!(
            text.contains("use either `basic_auth` or `bearer_token`, not both"),
            "{text}"
        );
        assert!(text.contains(":13:17: error:"), "{text}");
        let e = errors(
            "rules: [r.yaml]\nsources:\n  prometheus:\n    - {name: a, url: 'http://p', default: true}\n    - {name: a, url: 'http://q', default: true}\n",
        );
        let text = e.join("\n");
        assert!(text.contains("a second source named `a`"), "{text}");
    }

    #[test]
    fn default_source_rules() {
        let none = SourcesConfig::default();
        assert!(
            none.resolve(None)
                .expect_err("no source")
                .contains("no `sources.prometheus`")
        );
        let mk = |name: &str, default| PrometheusSource {
            name: name.into(),
            url: "http://p".into(),
            auth: None,
            headers: Vec::new(),
            tls_ca: None,
            timeout: DEFAULT_TIMEOUT,
            interval: DEFAULT_INTERVAL,
            default,
        };
        let two = SourcesConfig {
            prometheus: vec![mk("a", false), mk("b", false)],
        };
        assert!(
            two.resolve(None)
                .expect_err("ambiguous")
                .contains("`default: true`")
        );
        let one = SourcesConfig {
            prometheus: vec![mk("a", false)],
        };
        assert_eq!(one.resolve(None).map(|s| s.name.as_str()), Ok("a"));
    }
}
