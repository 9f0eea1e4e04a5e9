//! The `burnwatch` command line.
//!
//! - `burnwatch check [--strict] PATHS...` validates rules files and reports every problem at
//!   once; `burnwatch check [--strict] --config burnwatch.yaml` validates an agent config and
//!   everything `run` checks before it starts (the rules it names, receivers' secrets, CA
//!   files), with the same messages `run` gives. Exit codes: 0 when everything is good (warnings
//!   allowed unless `--strict`), 1 when there are errors (or warnings with `--strict`), 2 for
//!   usage errors such as a missing path.
//! - `burnwatch run --config burnwatch.yaml` runs the agent until SIGTERM or SIGINT; SIGHUP
//!   reloads the rules. Exit 1 when it cannot start (bad config or rules, unusable checkpoint),
//!   after printing the same diagnostics as `check --config`.
//!   With `export.otlp` configured it also pushes to a collector, and on shutdown pushes the
//!   last snapshot once more before exiting.
//! - `burnwatch status [--url URL] [--token-file FILE]` prints a table of a running agent's SLOs.
//! - `burnwatch alerts [--url URL] [--token-file FILE]` prints its firing alerts and the
//!   silences in force. Client commands take `--url` as `host:port` or `http://host:port`, and
//!   the API token from `--token-file` or `BURNWATCH_TOKEN`.
//! - `burnwatch silence add MATCHER... --duration 2h|--end RFC3339 --comment WHY [--author NAME]`
//!   silences matching alerts and prints the silence id; `burnwatch silence expire ID` ends one;
//!   `burnwatch silence list` shows every silence kept. Exit 1 when the agent refuses or cannot
//!   be reached, with its message.
//! - `burnwatch demo [--outage-after 60s] [--outage-for 4m]` runs the agent on a built-in
//!   synthetic service with an injected outage. Durations take a unit, as everywhere.
//! - `burnwatch synthetic --routes N --health N [--targets 4] [--listen ADDR]` serves the
//!   scale-benchmark fleet (`scripts/bench-scale.sh`): metrics pages with one request counter
//!   per route and health endpoints, until SIGTERM or SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use burnwatch::api_client::{self, ApiClient};
use burnwatch::config::{self, AgentConfig, LogFormat};
use burnwatch::daemon::Daemon;
use burnwatch::demo::{self, DemoOptions};
use burnwatch::preflight;
use burnwatch::rules::CheckReport;
use burnwatch::shutdown::Shutdown;

/// Observability agent and SLO evaluator: probes, scrapes, exact error budgets and multiwindow
/// burn-rate alerts.
#[derive(Debug, Parser)]
#[command(name = "burnwatch", version, about)]
struct Cli {
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Validate rules files and directories, or an agent config and everything it names;
    /// print one line per good file and every problem.
    Check {
        /// Treat warnings as errors (exit 1 when there are any).
        #[arg(long)]
        strict: bool,
        /// Check this agent config instead of rules paths: the config, the rules it names, and
        /// everything `run` checks before it starts (receivers' secrets, CA files).
        #[arg(long, short, value_name = "FILE", conflicts_with = "paths")]
        config: Option<PathBuf>,
        /// Rules files, or directories searched recursively for *.yaml and *.yml.
        #[arg(required_unless_present = "config", value_name = "PATHS")]
        paths: Vec<PathBuf>,
    },
    /// Rewrite Sloth (`prometheus/v1`, `PrometheusServiceLevel`) and OpenSLO (`openslo/v1`) rules files as `burnwatch/v1`,
    /// with what burnwatch does otherwise noted in comments; `check` reads the output as the
    /// same SLOs.
    Convert {
        /// Write `DIR/<file name>.yaml` per converted file instead of everything to stdout.
        #[arg(long, short, value_name = "DIR")]
        output: Option<PathBuf>,
        /// Rules files, or directories searched recursively for *.yaml and *.yml.
        #[arg(required = true, value_name = "PATHS")]
        paths: Vec<PathBuf>,
    },
    /// Write rules for another evaluator from burnwatch rules.
    Generate {
        /// Which evaluator.
        #[command(subcommand)]
        target: GenerateTarget,
    },
    /// Run the agent: probe, scrape, evaluate, checkpoint; SIGHUP or a changed file reloads rules.
    Run {
        /// The agent config file.
        #[arg(long, short, default_value = "burnwatch.yaml")]
        config: PathBuf,
    },
    /// Show every SLO of a running agent: objective, SLI, budget left, fastest burn, alerts.
    Status {
        /// Which agent.
        #[command(flatten)]
        agent: AgentArgs,
    },
    /// Show a running agent's firing alerts (with silenced/inhibited/flapping state) and the
    /// silences in force.
    Alerts {
        /// Which agent.
        #[command(flatten)]
        agent: AgentArgs,
    },
    /// Create, expire or list silences of a running agent.
    Silence {
        /// What to do.
        #[command(subcommand)]
        command: SilenceCommand,
    },
    /// Run the agent on a built-in synthetic service and inject an outage after a minute.
    Demo {
        /// Address of the agent's HTTP API.
        #[arg(long, default_value = config::DEFAULT_LISTEN)]
        listen: SocketAddr,
        /// Where the demo writes its rules and state (default: a new temporary directory).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Requests per second sent to the synthetic service.
        #[arg(long, default_value_t = 50)]
        rps: u32,
        /// Healthy traffic before the outage, e.g. 60s or 2m.
        #[arg(long, default_value = "60s", value_parser = cli_duration)]
        outage_after: Duration,
        /// How long the outage lasts, e.g. 4m.
        #[arg(long, default_value = "4m", value_parser = cli_duration)]
        outage_for: Duration,
        /// Time between two status tables, e.g. 10s.
        #[arg(long, default_value = "10s", value_parser = cli_duration)]
        print_every: Duration,
        /// Stop after this long, e.g. 10m (default: run until Ctrl-C).
        #[arg(long, value_parser = cli_duration)]
        duration: Option<Duration>,
    },
    /// Serve the synthetic fleet of the scale benchmark (scripts/bench-scale.sh): `--targets`
    /// metrics pages at /targets/{k}/metrics with one request counter per route, and health
    /// endpoints at /health/{i}; runs until SIGTERM or SIGINT.
    Synthetic {
        /// Address to listen on (loopback by default).
        #[arg(long, default_value = "127.0.0.1:9300")]
        listen: SocketAddr,
        /// Routes (one request counter each, split over the targets by route number).
        #[arg(long)]
        routes: u32,
        /// Metrics pages the routes are split over.
        #[arg(long, default_value_t = 4)]
        targets: u32,
        /// Health endpoints (/health/0 .. /health/N-1).
        #[arg(long, default_value_t = 0)]
        health: u32,
    },
}

/// `burnwatch generate ...`.
#[derive(Debug, Subcommand)]
enum GenerateTarget {
    /// Prometheus recording and alerting rules in Sloth's shape (record names, labels, alert
    /// windows), for Prometheus, Thanos Ruler or Mimir's ruler; SLOs without a PromQL equivalent
    /// are named on stderr and in a comment.
    Prometheus {
        /// Write one file per service, `DIR/<service>.rules.yml`, instead of one file to stdout,
        /// and its `promtool test rules` unit tests, `DIR/tests/<service>.test.yml`.
        #[arg(long, short, value_name = "DIR")]
        output: Option<PathBuf>,
        /// With `-o`, do not write the unit tests.
        #[arg(long = "no-tests", requires = "output")]
        no_tests: bool,
        /// A label added to every rule, `name=value` (repeatable); the rules' labels win.
        #[arg(long = "extra-labels", short = 'l', value_name = "NAME=VALUE", value_parser = label_arg)]
        extra_labels: Vec<(String, String)>,
        /// Rules files, or directories searched recursively for *.yaml and *.yml.
        #[arg(required = true, value_name = "PATHS")]
        paths: Vec<PathBuf>,
    },
}

/// `name=value` for `--extra-labels`.
fn label_arg(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not name=value"))?;
    let valid = k
        .bytes()
        .enumerate()
        .all(|(i, b)| b == b'_' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()));
    if k.is_empty() || !valid {
        return Err(format!("`{k}` is not a label name"));
    }
    Ok((k.to_owned(), v.to_owned()))
}

/// The agent's default API address (its default `listen`).
const DEFAULT_URL: &str = "http://127.0.0.1:9464";

/// Which agent a client command talks to, and with which token.
#[derive(Debug, clap::Args)]
struct AgentArgs {
    /// The agent's address: host:port or http://host:port.
    #[arg(long, default_value = DEFAULT_URL)]
    url: String,
    /// A file holding the agent's API token (`api.token`); default: $BURNWATCH_TOKEN when set.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
}

impl AgentArgs {
    fn client(&self) -> anyhow::Result<ApiClient> {
        let token = api_client::token(self.token_file.as_deref())
            .map_err(api_client::ApiClientError::from)?;
        Ok(ApiClient::new(&self.url, token)?)
    }
}

/// A duration with its unit (`30s`, `5m`, `1h30m`), as everywhere else in burnwatch.
fn cli_duration(text: &str) -> Result<Duration, String> {
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "{text:?} has no unit; write e.g. {text}s (durations take a unit: ms, s, m, h, d)"
        ));
    }
    burnwatch::time::Dur::parse(text)
        .map(|d| d.to_std())
        .map_err(|e| e.to_string())
}

/// `burnwatch silence ...`.
#[derive(Debug, Subcommand)]
enum SilenceCommand {
    /// Silence the alerts matching every MATCHER; prints the new silence's id.
    Add {
        /// Label matchers, e.g. 'alertname="ProbeDown"' 'service=~"shop|cart"'.
        #[arg(required = true, value_name = "MATCHER")]
        matchers: Vec<String>,
        /// How long from now, e.g. 2h or 1h30m.
        #[arg(long, conflicts_with = "end", required_unless_present = "end")]
        duration: Option<String>,
        /// When it ends, RFC 3339 (e.g. 2026-01-02T15:04:05Z).
        #[arg(long)]
        end: Option<String>,
        /// Why (shown to everyone who looks at the alert).
        #[arg(long)]
        comment: String,
        /// Who silences (default: $USER, else burnwatch@<host name>).
        #[arg(long)]
        author: Option<String>,
        /// Which agent.
        #[command(flatten)]
        agent: AgentArgs,
    },
    /// End a silence now.
    Expire {
        /// The silence id (`burnwatch silence list` shows them).
        id: String,
        /// Which agent.
        #[command(flatten)]
        agent: AgentArgs,
    },
    /// Show every silence kept (pending, active and recently expired).
    List {
        /// Which agent.
        #[command(flatten)]
        agent: AgentArgs,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check {
            strict,
            config,
            paths,
        } => {
            let checked = match &config {
                Some(c) => check_config(c, strict),
                None => check(&paths, strict),
            };
            match checked {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("burnwatch: {}", error_text(&e));
                    ExitCode::from(2)
                }
            }
        }
        Command::Convert { output, paths } => report_exit(convert(&paths, output.as_deref())),
        Command::Generate {
            target:
                GenerateTarget::Prometheus {
                    output,
                    no_tests,
                    extra_labels,
                    paths,
                },
        } => report_exit(generate_prometheus(
            &paths,
            output.as_deref(),
            !no_tests,
            extra_labels,
        )),
        Command::Run { config } => report_exit(run(&config)),
        Command::Status { agent } => report_exit(status(&agent)),
        Command::Alerts { agent } => report_exit(alerts(&agent)),
        Command::Silence { command } => report_exit(silence(command)),
        Command::Demo {
            listen,
            data_dir,
            rps,
            outage_after,
            outage_for,
            print_every,
            duration,
        } => {
            if !listen.ip().is_loopback() {
                eprintln!(
                    "burnwatch: the demo's API has no token, so it listens on loopback only; give --listen 127.0.0.1:PORT"
                );
                return ExitCode::from(2);
            }
            let data_dir = data_dir.unwrap_or_else(|| {
                std::env::temp_dir().join(format!("burnwatch-demo-{}", std::process::id()))
            });
            let opts = DemoOptions {
                listen,
                data_dir,
                rps,
                outage_after,
                outage_for,
                print_every: print_every.max(Duration::from_secs(1)),
            };
            report_exit(run_demo(opts, duration))
        }
        Command::Synthetic {
            listen,
            routes,
            targets,
            health,
        } => report_exit(run_synthetic(listen, routes, targets, health)),
    }
}

/// The rules of `paths`, checked as `check` checks them (every diagnostic on stderr), and the
/// report for the diagnostics of each file; an error when any file has one, saying nothing was
/// `done`.
fn checked_rules(
    paths: &[PathBuf],
    done: &str,
) -> anyhow::Result<(
    burnwatch::rules::CheckReport,
    burnwatch::rules::model::RuleSet,
)> {
    let mut report = burnwatch::rules::check_paths(paths);
    for d in &report.diagnostics {
        eprintln!("{d}");
    }
    let errors = report.errors();
    let rules = report
        .rules
        .take()
        .ok_or_else(|| anyhow::anyhow!("the rules have {errors} error(s); nothing {done}"))?;
    Ok((report, rules))
}

/// `burnwatch convert`: the files checked as `check` does (errors stop it), then each Sloth or OpenSLO
/// service written as a `burnwatch/v1` document, its file's warnings as comments; files already
/// in `burnwatch/v1` are left alone.
fn convert(paths: &[PathBuf], output: Option<&std::path::Path>) -> anyhow::Result<()> {
    use burnwatch::rules::model::Spec;
    let (report, rules) = checked_rules(paths, "converted")?;
    let mut by_file: std::collections::BTreeMap<&std::path::Path, String> = Default::default();
    for svc in rules.services.iter().filter(|s| s.spec != Spec::Burnwatch) {
        // An OpenSLO service's SLOs may name objects in files of their own (SLIs, policies):
        // what those files said that burnwatch does otherwise is noted with it too.
        let object_files = report.files.iter().filter(|f| {
            svc.spec == Spec::OpenSlo && f.services.is_empty() && f.openslo_objects > 0
        });
        let notes: Vec<String> = std::iter::once(svc.file.as_path())
            .chain(object_files.map(|f| f.path.as_path()))
            .flat_map(|file| report.diagnostics_for(file))
            .filter(|d| !d.is_error())
            .map(ToString::to_string)
            .collect();
        let doc = burnwatch::rules::convert::service_document(svc, &notes);
        by_file.entry(&svc.file).or_default().push_str(&doc);
    }
    if by_file.is_empty() {
        eprintln!("burnwatch: nothing to convert: no Sloth or OpenSLO file among the paths");
    }
    match output {
        None => {
            for text in by_file.values() {
                print!("{text}");
            }
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            for (file, text) in &by_file {
                let stem = file
                    .file_stem()
                    .map_or_else(|| "rules".into(), |s| s.to_string_lossy().into_owned());
                let path = dir.join(format!("{stem}.yaml"));
                std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display()))?;
                eprintln!("burnwatch: wrote {}", path.display());
            }
        }
    }
    Ok(())
}

/// `burnwatch generate prometheus`: the rules checked as `check` does (errors stop it), then one
/// rule file to stdout or one per service into `output`, with its unit tests in `output/tests/`
/// when `tests` (a subdirectory, so a `rule_files: [DIR/*.yml]` glob does not load them).
fn generate_prometheus(
    paths: &[PathBuf],
    output: Option<&std::path::Path>,
    tests: bool,
    extra_labels: Vec<(String, String)>,
) -> anyhow::Result<()> {
    use burnwatch::generate::prometheus::{Options, generate, rule_file};
    use burnwatch::generate::rule_test::{service_tests, test_file};
    let (_, rules) = checked_rules(paths, "generated")?;
    let opts = Options {
        extra_labels: extra_labels.into_iter().collect(),
    };
    let services = generate(&rules, &opts);
    for s in services.iter().flat_map(|s| &s.skipped) {
        eprintln!("burnwatch: {}: not generated: {}", s.slo, s.why);
    }
    match output {
        None => print!("{}", rule_file(&services.iter().collect::<Vec<_>>())),
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let test_dir = dir.join("tests");
            // `generate` gives one entry per service, in rule order.
            for (svc, s) in rules.services.iter().zip(&services) {
                let name = format!("{}.rules.yml", s.service);
                let path = dir.join(&name);
                std::fs::write(&path, rule_file(&[s]))
                    .with_context(|| format!("writing {}", path.display()))?;
                eprintln!("burnwatch: wrote {}", path.display());
                if !tests {
                    continue;
                }
                let (groups, untested) = service_tests(svc, s, &opts);
                for u in &untested {
                    eprintln!("burnwatch: {u}");
                }
                if groups.is_empty() {
                    continue;
                }
                std::fs::create_dir_all(&test_dir)
                    .with_context(|| format!("creating {}", test_dir.display()))?;
                let path = test_dir.join(format!("{}.test.yml", s.service));
                let text = test_file(&format!("../{name}"), &groups, &untested);
                std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display()))?;
                eprintln!("burnwatch: wrote {}", path.display());
            }
        }
    }
    Ok(())
}

fn report_exit(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("burnwatch: {}", error_text(&e));
            ExitCode::from(1)
        }
    }
}

/// An error and its causes on one line. The library's errors already end with their cause
/// ("cannot create the data directory X: Not a directory"), while `anyhow` contexts do not, so
/// a cause is added only when the text so far does not already say it: every cause once.
fn error_text(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

fn init_logging(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Human => builder.init(),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    // Before the runtime's threads exist, so they share the arenas (see burnwatch::memory).
    burnwatch::memory::tune();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Triggers `shutdown` on SIGTERM or SIGINT, or after `limit` when given.
fn shutdown_on_signal(shutdown: &Shutdown, limit: Option<Duration>) {
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        match limit {
            Some(d) => tokio::select! {
                _ = termination() => {}
                _ = tokio::time::sleep(d) => {}
            },
            None => termination().await,
        }
        shutdown.trigger();
    });
}

/// Resolves on SIGTERM or SIGINT.
async fn termination() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the process still dies on the default action.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
}

fn run(path: &std::path::Path) -> anyhow::Result<()> {
    // The same checks and messages as `burnwatch check --config`, before anything starts (and
    // before logging, whose format the config sets).
    let pre = preflight::agent(path);
    for d in pre.all() {
        eprintln!("{d}");
    }
    let errors = pre.errors();
    let Some((cfg, rules)): Option<(AgentConfig, _)> = pre.ready() else {
        anyhow::bail!(
            "cannot start: {errors} error(s) in {} or the files it names (`burnwatch check --config {}` reports the same)",
            path.display(),
            path.display()
        );
    };
    init_logging(cfg.log_format, &cfg.log_level);
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .with_context(|| format!("cannot listen on {}", cfg.listen))?;
        let shutdown = Shutdown::new();
        let daemon = Daemon::start(cfg, rules, listener, &shutdown, Default::default()).await?;
        shutdown_on_signal(&shutdown, None);
        // Signals are the entry point's: `run` reloads on SIGHUP; the demo keeps its default
        // action, so closing its terminal ends it.
        let hup = tokio::spawn(reload_on_sighup(daemon.reloader()));
        shutdown.requested().await;
        hup.abort();
        daemon.shutdown().await;
        Ok(())
    })
}

fn status(agent: &AgentArgs) -> anyhow::Result<()> {
    use std::io::IsTerminal as _;
    let client = agent.client()?;
    let json = runtime()?.block_on(client.request(hyper::Method::GET, "/api/v1/slos", None))?;
    print!(
        "{}",
        burnwatch::status::render(&json, std::io::stdout().is_terminal())?
    );
    Ok(())
}

fn now() -> burnwatch::time::Timestamp {
    burnwatch::time::Timestamp(burnwatch::clock::wall_ms())
}

fn alerts(agent: &AgentArgs) -> anyhow::Result<()> {
    use std::io::IsTerminal as _;
    let client = agent.client()?;
    let (alerts, silences) = runtime()?.block_on(async {
        let a = client
            .request(hyper::Method::GET, "/api/v1/alerts", None)
            .await?;
        let s = client
            .request(hyper::Method::GET, "/api/v1/silences", None)
            .await?;
        Ok::<_, api_client::ApiClientError>((a, s))
    })?;
    print!(
        "{}",
        burnwatch::alerts_cli::render_alerts(
            &alerts,
            &silences,
            now(),
            std::io::stdout().is_terminal()
        )?
    );
    Ok(())
}

/// The host name, for the default silence author.
fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|h| h.trim().to_owned())
}

fn silence(cmd: SilenceCommand) -> anyhow::Result<()> {
    use std::io::IsTerminal as _;
    let rt = runtime()?;
    match cmd {
        SilenceCommand::Add {
            matchers,
            duration,
            end,
            comment,
            author,
            agent,
        } => {
            let client = agent.client()?;
            let author = author.unwrap_or_else(|| {
                burnwatch::alerts_cli::default_author(std::env::var("USER").ok(), host_name())
            });
            let body = burnwatch::alerts_cli::silence_body(&burnwatch::alerts_cli::SilenceArgs {
                matchers: &matchers,
                duration: duration.as_deref(),
                end: end.as_deref(),
                author: &author,
                comment: &comment,
            })?;
            let answer =
                rt.block_on(client.request(hyper::Method::POST, "/api/v1/silences", Some(&body)))?;
            let id = answer["silenceID"]
                .as_str()
                .context("the agent's answer has no silenceID")?;
            println!("{id}");
        }
        SilenceCommand::Expire { id, agent } => {
            let client = agent.client()?;
            let path = format!(
                "/api/v1/silences/{}",
                burnwatch::server::percent_encode(&id)
            );
            rt.block_on(client.request(hyper::Method::DELETE, &path, None))?;
            println!("silence {id} expired");
        }
        SilenceCommand::List { agent } => {
            let client = agent.client()?;
            let body = rt.block_on(client.request(hyper::Method::GET, "/api/v1/silences", None))?;
            print!(
                "{}",
                burnwatch::alerts_cli::render_silences(
                    &body,
                    now(),
                    std::io::stdout().is_terminal()
                )?
            );
        }
    }
    Ok(())
}

fn run_demo(opts: DemoOptions, duration: Option<Duration>) -> anyhow::Result<()> {
    init_logging(LogFormat::Human, "warn");
    runtime()?.block_on(async move {
        let shutdown = Shutdown::new();
        shutdown_on_signal(&shutdown, duration);
        demo::run(opts, &shutdown).await?;
        Ok(())
    })
}

fn run_synthetic(listen: SocketAddr, routes: u32, targets: u32, health: u32) -> anyhow::Result<()> {
    init_logging(LogFormat::Human, "warn");
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let fleet = std::sync::Arc::new(burnwatch::synthetic::Fleet::new(routes, targets, health));
        let shutdown = Shutdown::new();
        shutdown_on_signal(&shutdown, None);
        burnwatch::synthetic::serve_fleet(listener, fleet, shutdown.requested())
            .await
            .with_context(|| format!("serving the synthetic fleet on {listen}"))?;
        Ok(())
    })
}

/// Runs `check`; an `Err` is a usage error (exit 2).
fn check(paths: &[PathBuf], strict: bool) -> anyhow::Result<ExitCode> {
    for p in paths {
        if !p.exists() {
            anyhow::bail!(
                "{}: no such file or directory; give a rules file or a directory of them",
                p.display()
            );
        }
    }
    let report = preflight::rules(paths);
    print_report(&report);
    Ok(finish(
        report.errors(),
        report.warnings(),
        report.files.len(),
        strict,
    ))
}

/// Runs `check --config`; an `Err` is a usage error (exit 2).
fn check_config(path: &std::path::Path, strict: bool) -> anyhow::Result<ExitCode> {
    if !path.exists() {
        anyhow::bail!(
            "{}: no such file; give the agent config file (burnwatch.yaml)",
            path.display()
        );
    }
    let pre = preflight::agent(path);
    if pre.config.is_some() {
        println!("{}: OK: agent config", path.display());
    }
    for d in &pre.diagnostics {
        println!("{d}");
    }
    print_report(&pre.rules);
    Ok(finish(
        pre.errors(),
        pre.warnings(),
        1 + pre.rules.files.len(),
        strict,
    ))
}

/// The exit code of a check, with the summary line on stderr when it fails.
fn finish(errors: usize, warnings: usize, files: usize, strict: bool) -> ExitCode {
    let failed = errors > 0 || (strict && warnings > 0);
    if failed {
        let strict_note = if strict && warnings > 0 {
            " (--strict: warnings fail)"
        } else {
            ""
        };
        eprintln!(
            "burnwatch: {errors} error(s), {warnings} warning(s) in {files} file(s){strict_note}"
        );
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Good files on stdout (`FILE: OK: ...`), then each file's diagnostics; errors and warnings go
/// to stdout as well so one stream holds the whole report in order.
fn print_report(report: &CheckReport) {
    // Problems with paths themselves (not tied to a file that was read).
    for d in report
        .diagnostics
        .iter()
        .filter(|d| !report.files.iter().any(|f| f.path == d.file))
    {
        println!("{d}");
    }
    for f in &report.files {
        if f.errors == 0 {
            let parts: Vec<String> = f
                .services
                .iter()
                .map(|s| {
                    let mut notes = Vec::new();
                    if s.grouped > 0 {
                        notes.push(format!("{} grouped", s.grouped));
                    }
                    if s.spec != burnwatch::rules::model::Spec::Burnwatch {
                        notes.push(format!("{} translated to selectors", s.slos - s.queries));
                    }
                    if s.queries > 0 {
                        notes.push(format!(
                            "{} need{} a query source",
                            s.queries,
                            if s.queries == 1 { "s" } else { "" }
                        ));
                    }
                    let grouped = if notes.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", notes.join(", "))
                    };
                    format!(
                        "service {}, {} SLO{}{grouped}, {} probe{}, {} scrape target{}",
                        s.service,
                        s.slos,
                        plural(s.slos),
                        s.probes,
                        plural(s.probes),
                        s.scrapes,
                        plural(s.scrapes)
                    )
                })
                .collect();
            let mut parts = parts;
            if f.openslo_objects > 0 {
                parts.push(format!(
                    "{} other OpenSLO object{} (SLIs, alert policies, ...)",
                    f.openslo_objects,
                    plural(f.openslo_objects)
                ));
            }
            println!("{}: OK: {}", f.path.display(), parts.join("; "));
        }
        for d in report.diagnostics_for(&f.path) {
            println!("{d}");
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Asks for a reload at every SIGHUP, until the agent stops.
async fn reload_on_sighup(reload: burnwatch::view::Reloader) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP: reload with POST /-/reload instead");
        return;
    };
    while hup.recv().await.is_some() {
        tracing::info!("SIGHUP: reloading rules");
        if reload.request().await.is_err() {
            return;
        }
    }
}
