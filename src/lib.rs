//! burnwatch: an observability agent and SLO evaluator.
//!
//! Layout:
//! - [`alert`]: the alert model: identity (Alertmanager fingerprints), matchers.
//! - [`alerts_cli`]: the `burnwatch alerts` and `burnwatch silence` tables and requests.
//! - [`agent`]: the running daemon: collectors, the one writer (evaluator), reload, checkpoints.
//! - [`config`]: the agent's own config file (listen address, data directory, rules paths).
//! - [`demo`]: `burnwatch demo`, the agent on the built-in synthetic service.
//! - [`export`]: the metric catalogue, the `/metrics` page (OpenMetrics or text 0.0.4) and the OTLP push, from snapshots.
//! - [`exposition`]: Prometheus text 0.0.4 / OpenMetrics 1.0 parsing of scraped bodies (pure).
//! - [`http_client`]: the one outbound HTTP client (receivers, Alertmanager, OTLP/HTTP): pooled
//!   connections, timeouts, `Retry-After`, response classification, URL redaction.
//! - [`time`]: instants and durations (the engine never reads a clock).
//! - [`rules`]: the rules language, from YAML to a validated [`rules::model::RuleSet`].
//! - [`schema`]: reading YAML against a schema (span-aware tree, diagnostics, the typed field
//!   readers) for the rules, the agent config and receivers.
//! - [`scrape`]: scraped pages to the counter samples of the SLOs that read them (pure).
//! - [`secret`]: credentials in config files (inline, `{env: VAR}`, `{file: path}`), never printed.
//! - [`server`]: the HTTP server: health, readiness and the JSON API, read from snapshots.
//! - [`slo`]: the SLO engine, pure logic over a simulated clock.
//! - [`notify`]: notifications to receivers, and the reasons they were (not) sent.
//! - [`preflight`]: every check `run` makes before it starts (config, rules, receivers' secrets
//!   and CA files), shared with `burnwatch check --config`.
//! - [`probe`]: health checks (HTTP(S), TCP, DNS) with phase timings, and the scraper's bounded
//!   HTTP fetch.
//! - [`status`]: the `burnwatch status` table, rendered from the JSON API.
//! - [`storage`]: checkpoints of engine state (versioned, checksummed, atomic).
//! - [`synthetic`]: a built-in HTTP service with a deterministic error/latency schedule, and a load
//!   generator, for `burnwatch demo` and as the ground-truth target of integration tests.

pub mod agent;
pub mod alert;
pub mod alerter;
pub mod alerts_cli;
pub mod api_client;
pub mod config;
pub mod demo;
pub mod evaluator;
pub mod export;
pub mod exposition;
pub mod http_client;
pub mod notify;
pub mod preflight;
pub mod probe;
pub mod rules;
pub mod schema;
pub mod scrape;
pub mod secret;
pub mod server;
pub mod slo;
pub mod status;
pub mod storage;
pub mod synthetic;
pub mod time;
pub mod view;

/// Imports that made module cycles must not come back: the schema walker is below everything
/// that reads YAML, and the config below the exporters and the agent that read it.
#[cfg(test)]
mod layering {
    use std::path::Path;

    /// The code (comments dropped) of a module's file and of every file under its directory.
    fn code(module: &str) -> String {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = vec![src.join(format!("{module}.rs"))];
        let mut dirs = vec![src.join(module)];
        while let Some(dir) = dirs.pop() {
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    dirs.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    files.push(p);
                }
            }
        }
        let mut out = String::new();
        for f in files.iter().filter(|f| f.exists()) {
            let text = std::fs::read_to_string(f).expect("read a source file");
            for line in text.lines() {
                out.push_str(line.split("//").next().unwrap_or_default());
                out.push('\n');
            }
        }
        assert!(!out.is_empty(), "no source for module {module}");
        out
    }

    #[test]
    fn lower_modules_do_not_import_higher_ones() {
        let rules: [(&str, &[&str]); 2] = [
            (
                "schema",
                &["rules", "config", "notify", "agent", "export", "preflight"],
            ),
            ("config", &["export", "agent", "server", "preflight"]),
        ];
        for (module, above) in rules {
            let text = code(module);
            for a in above {
                assert!(
                    !text.contains(&format!("crate::{a}::"))
                        && !text.contains(&format!("crate::{a};")),
                    "`{module}` imports `{a}`, which depends on it: move the shared item down"
                );
            }
        }
    }
}
