//! burnwatch: an observability agent and SLO evaluator.
//!
//! Layout:
//! - [`alert`]: the alert model: identity (Alertmanager fingerprints), matchers, alertnames, the
//!   lifecycle (`for`, `keep_firing_for`, flap damping).
//! - [`alerter`]: the alert sources: which alerts the rules define, and their state at each
//!   evaluation, from snapshots and probe results (pure).
//! - [`alerts_cli`]: the `burnwatch alerts` and `burnwatch silence` tables and requests.
//! - [`agent`]: the running daemon: collectors, the evaluation loop, the alerting task, reload,
//!   checkpoints.
//! - [`config`]: the agent's own config file (listen address, data directory, rules paths).
//! - [`daemon`]: the one wiring of a running agent (agent, API server, OTLP push, SIGHUP
//!   reloads, shutdown order), shared by `burnwatch run` and `burnwatch demo`.
//! - [`demo`]: `burnwatch demo`, the agent on the built-in synthetic service.
//! - [`evaluator`]: the one writer of SLO state: observations in, [`view::AgentSnapshot`]s out
//!   (pure, clock-free).
//! - [`export`]: the metric catalogue, the `/metrics` page (OpenMetrics or text 0.0.4) and the OTLP push, from snapshots.
//! - [`exposition`]: Prometheus text 0.0.4 / OpenMetrics 1.0 parsing of scraped bodies (pure).
//! - [`http_client`]: the one outbound HTTP client (receivers, Alertmanager, OTLP/HTTP, the CLI): pooled
//!   connections, timeouts, `Retry-After`, response classification, URL redaction.
//! - [`memory`]: the heap allocator's arenas and handing the free memory of transient peaks
//!   back (glibc; why in the module).
//! - [`time`]: instants and durations (the engine never reads a clock).
//! - [`clock`]: the runtime's wall clock, handed to the agent as a value so tests can run it on
//!   tokio's paused time.
//! - [`view`]: the read models the writers publish ([`view::AgentSnapshot`],
//!   [`view::AlertingView`]) and the handles readers reach the writers with; exporters, the
//!   server, the alert sources and the demo import these, never the runtime.
//! - [`rules`]: the rules language, from YAML to a validated [`rules::model::RuleSet`].
//! - [`schema`]: reading YAML against a schema (span-aware tree, diagnostics, the typed field
//!   readers) for the rules, the agent config and receivers.
//! - [`scrape`]: scraped pages to the counter samples of the SLOs that read them (pure).
//! - [`secret`]: credentials in config files (inline, `{env: VAR}`, `{file: path}`), never printed.
//! - [`server`]: the HTTP server: health, readiness and the JSON API, read from snapshots.
//! - [`slo`]: the SLO engine, pure logic over a simulated clock.
//! - [`source`]: SLIs read from a Prometheus-compatible query API (`query` indicators): the
//!   instant query, its bounded parsing, and how each read becomes events.
//! - [`notify`]: notifications to receivers, and the reasons they were (not) sent.
//! - [`preflight`]: every check `run` makes before it starts (config, rules, receivers' secrets
//!   and CA files), shared with `burnwatch check --config`.
//! - [`probe`]: health checks (HTTP(S), TCP, DNS) with phase timings, and the scraper's bounded
//!   HTTP fetch.
//! - [`shard`]: which services, SLOs, probes and targets one agent of several evaluates (pure).
//! - [`shutdown`]: the one shutdown signal, passed down from the entry point, and the order
//!   in which the daemon stops.
//! - [`status`]: the `burnwatch status` table, rendered from the JSON API.
//! - [`storage`]: checkpoints of engine state (versioned, checksummed, atomic).
//! - [`synthetic`]: a built-in HTTP service with a deterministic error/latency schedule, and a load
//!   generator, for `burnwatch demo` and as the ground-truth target of integration tests.
//!
//! Modules import downward only, never in a cycle (the `layering` tests check it): the pure core
//! (`time`, `schema`, `rules`, `slo`, `alert`) and the notification pipeline (`notify`) at the
//! bottom, then the read models (`view`), their writers (`evaluator`, `alerter`) and readers
//! (`export`, `server`), and at the top the runtime that wires them (`agent`, `daemon`, `demo`,
//! the binary).

pub mod agent;
pub mod alert;
pub mod alerter;
pub mod alerts_cli;
pub mod api_client;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod evaluator;
pub mod export;
pub mod exposition;
pub mod generate;
pub mod http_client;
pub mod memory;
pub mod notify;
pub mod preflight;
pub mod probe;
pub mod rules;
pub mod schema;
pub mod scrape;
pub mod secret;
pub mod server;
pub mod shard;
pub mod shutdown;
pub mod slo;
pub mod source;
pub mod status;
pub mod storage;
pub mod synthetic;
pub mod time;
pub mod view;

/// Imports that made module cycles must not come back: the schema walker is below everything
/// that reads YAML, the config below the exporters and the agent that read it, and the read
/// models below the runtime that writes them and the readers; and no top-level modules import
/// each other in a cycle.
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
        let rules: [(&str, &[&str]); 9] = [
            (
                "schema",
                &["rules", "config", "notify", "agent", "export", "preflight"],
            ),
            ("config", &["export", "agent", "server", "preflight"]),
            (
                "view",
                &[
                    "agent",
                    "evaluator",
                    "alerter",
                    "export",
                    "server",
                    "daemon",
                    "demo",
                ],
            ),
            ("export", &["agent", "server", "daemon", "demo"]),
            ("server", &["agent", "daemon", "demo"]),
            ("alerter", &["agent", "export", "server", "daemon", "demo"]),
            ("shutdown", &["agent", "server", "daemon", "demo", "export"]),
            ("agent", &["daemon", "demo"]),
            // Pure: rules in, rule files out.
            (
                "generate",
                &["agent", "evaluator", "alerter", "server", "daemon", "demo"],
            ),
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

    /// The top-level modules, as `lib.rs` declares them.
    fn modules() -> Vec<String> {
        let lib = include_str!("lib.rs");
        lib.lines()
            .filter_map(|l| {
                let l = l.trim();
                let l = l.strip_prefix("pub ").unwrap_or(l);
                Some(l.strip_prefix("mod ")?.strip_suffix(';')?.to_owned())
            })
            .collect()
    }

    /// Every `.rs` file of a top-level module: its own file and everything under its directory.
    fn files(module: &str) -> Vec<std::path::PathBuf> {
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
        files.retain(|f| f.exists());
        files.sort();
        files
    }

    /// Whether an identifier character precedes `c[i]`, except a lone `b` (byte strings).
    fn ident_before(c: &[char], i: usize) -> bool {
        let ident = |k: usize| c[k].is_alphanumeric() || c[k] == '_';
        match i {
            0 => false,
            1 => c[0] != 'b' && ident(0),
            _ => ident(i - 1) && (c[i - 1] != 'b' || ident(i - 2)),
        }
    }

    /// `text` with comments (doc comments too) and the contents of string and character
    /// literals blanked, line breaks kept: a path in a doc link or a message is no import.
    fn strip(text: &str) -> String {
        let c: Vec<char> = text.chars().collect();
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        // Blanks `c[from..to]`, keeping line breaks so line numbers stay right.
        let blank = |out: &mut String, from: usize, to: usize| {
            out.extend(
                c[from..to]
                    .iter()
                    .map(|&ch| if ch == '\n' { '\n' } else { ' ' }),
            );
        };
        while i < c.len() {
            let rest = |k: usize| c.get(i + k).copied();
            if c[i] == '/' && rest(1) == Some('/') {
                let end = (i..c.len()).find(|&j| c[j] == '\n').unwrap_or(c.len());
                blank(&mut out, i, end);
                i = end;
            } else if c[i] == '/' && rest(1) == Some('*') {
                let mut depth = 0usize;
                let mut j = i;
                while j < c.len() {
                    if c[j] == '/' && c.get(j + 1) == Some(&'*') {
                        depth += 1;
                        j += 2;
                    } else if c[j] == '*' && c.get(j + 1) == Some(&'/') {
                        depth -= 1;
                        j += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        j += 1;
                    }
                }
                blank(&mut out, i, j.min(c.len()));
                i = j.min(c.len());
            } else if c[i] == 'r' && matches!(rest(1), Some('"' | '#')) && !ident_before(&c, i) {
                // A raw string: r"..." or r#"..."#.
                let hashes = (i + 1..c.len()).take_while(|&j| c[j] == '#').count();
                if c.get(i + 1 + hashes) != Some(&'"') {
                    out.push(c[i]);
                    i += 1;
                    continue;
                }
                let close: Vec<char> = std::iter::once('"')
                    .chain(std::iter::repeat_n('#', hashes))
                    .collect();
                let start = i + 2 + hashes;
                let end = (start..c.len())
                    .find(|&j| c[j..].starts_with(&close))
                    .map_or(c.len(), |j| j + close.len());
                blank(&mut out, i, end);
                i = end;
            } else if c[i] == '"' {
                let mut j = i + 1;
                while j < c.len() && c[j] != '"' {
                    j += if c[j] == '\\' { 2 } else { 1 };
                }
                let end = (j + 1).min(c.len());
                blank(&mut out, i, end);
                i = end;
            } else if c[i] == '\'' {
                // A character literal ('x', '\n', '\u{..}'), or else a lifetime.
                let end = if rest(1) == Some('\\') {
                    (i + 3..c.len())
                        .find(|&j| c[j] == '\'')
                        .map_or(c.len(), |j| j + 1)
                } else if rest(2) == Some('\'') {
                    i + 3
                } else {
                    i + 1
                };
                blank(&mut out, i, end);
                i = end;
            } else {
                out.push(c[i]);
                i += 1;
            }
        }
        out
    }

    /// The top-level modules `code` names after `crate::` (`crate::a::b`, `crate::a`,
    /// `crate::{a, b::c}`), with the 1-based line of each.
    fn imports(code: &str) -> Vec<(String, usize)> {
        let ident = |s: &str| -> String {
            s.chars()
                .take_while(|ch| ch.is_alphanumeric() || *ch == '_')
                .collect()
        };
        let mut out = Vec::new();
        for (at, _) in code.match_indices("crate::") {
            if code[..at].ends_with(|ch: char| ch.is_alphanumeric() || ch == '_' || ch == '$') {
                continue;
            }
            let line = code[..at].matches('\n').count() + 1;
            let rest = code[at + "crate::".len()..].trim_start();
            if let Some(group) = rest.strip_prefix('{') {
                // The first segment of every path at the group's top level.
                let mut depth = 0usize;
                let mut start = true;
                for (k, ch) in group.char_indices() {
                    match ch {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => start = true,
                        ch if start && !ch.is_whitespace() => {
                            start = false;
                            out.push((ident(&group[k..]), line));
                        }
                        _ => {}
                    }
                }
            } else {
                out.push((ident(rest), line));
            }
        }
        out
    }

    #[test]
    fn strip_and_imports_read_rust() {
        let text = concat!(
            "use crate::alpha::X; // crate::gamma\n",
            "/* crate::delta */ let s = \"crate::epsilon\"; let c = '\"';\n",
            "let r = r#\"crate::zeta \" \"#; fn f<'a>(x: &'a str) { crate::beta(x) }\n",
            "use crate::{alpha, eta::{Y, Z}, theta};\n",
            "macro_rules! m { () => { $crate::iota } }\n",
        );
        let found = imports(&strip(text));
        let names: Vec<&str> = found.iter().map(|(m, _)| m.as_str()).collect();
        assert_eq!(names, ["alpha", "beta", "alpha", "eta", "theta"]);
        assert_eq!(
            found.iter().map(|f| f.1).collect::<Vec<_>>(),
            [1, 3, 4, 4, 4]
        );
    }

    /// One module naming another (`use crate::x`, `crate::x::f()`), test code included, is an
    /// edge; a cycle of edges between top-level modules means none of them can be read,
    /// tested or changed alone. The read models are in `view` for this reason: readers
    /// (exporters, the server, alert sources) import them, never the runtime (`agent`).
    #[test]
    fn top_level_modules_import_each_other_in_no_cycle() {
        use std::collections::BTreeMap;
        let modules = modules();
        assert!(modules.len() > 10, "lib.rs declares {modules:?}");
        // module -> imported module -> where ("src/x.rs:12").
        let mut edges: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for m in &modules {
            let out = edges.entry(m.clone()).or_default();
            let files = files(m);
            assert!(!files.is_empty(), "no source for module {m}");
            for f in files {
                let text = std::fs::read_to_string(&f).expect("read a source file");
                let rel = f.strip_prefix(root).unwrap_or(&f).display().to_string();
                for (to, line) in imports(&strip(&text)) {
                    if &to != m && modules.contains(&to) {
                        out.entry(to).or_default().push(format!("{rel}:{line}"));
                    }
                }
            }
        }
        // Depth-first search; a grey module met again closes a cycle.
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            White,
            Grey,
            Black,
        }
        fn visit(
            m: &str,
            edges: &BTreeMap<String, BTreeMap<String, Vec<String>>>,
            marks: &mut BTreeMap<String, Mark>,
            path: &mut Vec<String>,
        ) -> Option<Vec<String>> {
            marks.insert(m.to_owned(), Mark::Grey);
            path.push(m.to_owned());
            for to in edges[m].keys() {
                match marks[to] {
                    Mark::Grey => {
                        let from = path.iter().position(|p| p == to).unwrap_or(0);
                        let mut cycle = path[from..].to_vec();
                        cycle.push(to.clone());
                        return Some(cycle);
                    }
                    Mark::White => {
                        if let Some(c) = visit(to, edges, marks, path) {
                            return Some(c);
                        }
                    }
                    Mark::Black => {}
                }
            }
            path.pop();
            marks.insert(m.to_owned(), Mark::Black);
            None
        }
        let mut marks: BTreeMap<String, Mark> =
            modules.iter().map(|m| (m.clone(), Mark::White)).collect();
        for m in &modules {
            if marks[m] == Mark::White
                && let Some(cycle) = visit(m, &edges, &mut marks, &mut Vec::new())
            {
                let steps: Vec<String> = cycle
                    .windows(2)
                    .map(|w| {
                        let at = &edges[&w[0]][&w[1]];
                        let shown = at.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
                        let more = at.len().saturating_sub(3);
                        let more = if more > 0 {
                            format!(" and {more} more")
                        } else {
                            String::new()
                        };
                        format!("  {} -> {} ({shown}{more})", w[0], w[1])
                    })
                    .collect();
                panic!(
                    "top-level modules import each other in a cycle: {}\n{}\nmove the shared \
                     item to a module below both",
                    cycle.join(" -> "),
                    steps.join("\n")
                );
            }
        }
    }
}
