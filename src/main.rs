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
//! - `burnwatch status [--url URL]` prints a table of a running agent's SLOs.
//! - `burnwatch alerts [--url URL]` prints its firing alerts and the silences in force.
//! - `burnwatch silence add MATCHER... --duration 2h|--end RFC3339 --comment WHY [--author NAME]`
//!   silences matching alerts and prints the silence id; `burnwatch silence expire ID` ends one;
//!   `burnwatch silence list` shows every silence kept. Exit 1 when the agent refuses or cannot
//!   be reached, with its message.
//! - `burnwatch demo` runs the agent on a built-in synthetic service with an injected outage.

use std::path::PathBuf;
use std::process::ExitCode;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tokio::sync::watch;

use burnwatch::agent::Agent;
use burnwatch::config::{self, AgentConfig, LogFormat};
use burnwatch::demo::{self, DemoOptions};
use burnwatch::export::otlp::OtlpExporter;
use burnwatch::preflight;
use burnwatch::rules::CheckReport;

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
    /// Run the agent: probe, scrape, evaluate, checkpoint; SIGHUP or a changed file reloads rules.
    Run {
        /// The agent config file.
        #[arg(long, short, default_value = "burnwatch.yaml")]
        config: PathBuf,
    },
    /// Show every SLO of a running agent: objective, SLI, budget left, fastest burn, alerts.
    Status {
        /// The agent's address.
        #[arg(long, default_value = DEFAULT_URL)]
        url: String,
    },
    /// Show a running agent's firing alerts (with silenced/inhibited/flapping state) and the
    /// silences in force.
    Alerts {
        /// The agent's address.
        #[arg(long, default_value = DEFAULT_URL)]
        url: String,
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
        /// Seconds of healthy traffic before the outage.
        #[arg(long, default_value_t = 60)]
        outage_after: u64,
        /// Seconds the outage lasts.
        #[arg(long, default_value_t = 240)]
        outage_for: u64,
        /// Seconds between two status tables.
        #[arg(long, default_value_t = 10)]
        print_every: u64,
        /// Stop after this many seconds (default: run until Ctrl-C).
        #[arg(long)]
        duration: Option<u64>,
    },
}

/// The agent's default API address (its default `listen`).
const DEFAULT_URL: &str = "http://127.0.0.1:9464";

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
        /// Who silences (default: $USER).
        #[arg(long)]
        author: Option<String>,
        /// The agent's address.
        #[arg(long, default_value = DEFAULT_URL)]
        url: String,
    },
    /// End a silence now.
    Expire {
        /// The silence id (`burnwatch silence list` shows them).
        id: String,
        /// The agent's address.
        #[arg(long, default_value = DEFAULT_URL)]
        url: String,
    },
    /// Show every silence kept (pending, active and recently expired).
    List {
        /// The agent's address.
        #[arg(long, default_value = DEFAULT_URL)]
        url: String,
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
        Command::Run { config } => report_exit(run(&config)),
        Command::Status { url } => report_exit(status(&url)),
        Command::Alerts { url } => report_exit(alerts(&url)),
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
            let data_dir = data_dir.unwrap_or_else(|| {
                std::env::temp_dir().join(format!("burnwatch-demo-{}", std::process::id()))
            });
            let opts = DemoOptions {
                listen,
                data_dir,
                rps,
                outage_after: Duration::from_secs(outage_after),
                outage_for: Duration::from_secs(outage_for),
                print_every: Duration::from_secs(print_every.max(1)),
            };
            report_exit(run_demo(opts, duration.map(Duration::from_secs)))
        }
    }
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
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
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
        let otlp = cfg.export.otlp.clone();
        let page = burnwatch::export::prometheus::PageOptions {
            sloth_compatible: cfg.export.prometheus.sloth_compatible,
        };
        let agent = Agent::start_with(cfg, rules).await?;
        let exporter = match &otlp {
            Some(o) => {
                let e = OtlpExporter::start(o, agent.subscribe())
                    .context("cannot start the OTLP exporter")?;
                tracing::info!(
                    endpoint = %o.endpoint,
                    protocol = ?o.protocol,
                    interval = ?o.interval,
                    "OTLP push enabled"
                );
                Some(e)
            }
            None => None,
        };
        let (stop_tx, mut stop_rx) = watch::channel(false);
        let server = tokio::spawn(burnwatch::server::serve_with(
            listener,
            agent.subscribe(),
            page,
            Some(agent.alerting()),
            async move { burnwatch::agent::collect::stopped(&mut stop_rx).await },
        ));
        let reload = agent.reloader();
        let hup = tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut hup) = signal(SignalKind::hangup()) else {
                return;
            };
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading rules");
                if reload.send(()).await.is_err() {
                    return;
                }
            }
        });
        termination().await;
        hup.abort();
        let _ = stop_tx.send(true);
        // The agent publishes its last snapshot while stopping; the exporter's final push
        // comes after, so the collector gets the values the checkpoint holds.
        agent.shutdown().await;
        if let Some(e) = exporter {
            match e.shutdown().await {
                Ok(()) => tracing::info!("OTLP: last values pushed"),
                Err(err) => tracing::warn!(error = %err, "OTLP: the last push failed"),
            }
        }
        let _ = server.await;
        Ok(())
    })
}

fn status(url: &str) -> anyhow::Result<()> {
    use std::io::IsTerminal as _;
    let url = format!("{}/api/v1/slos", url.trim_end_matches('/'));
    let body = runtime()?.block_on(async {
        let prober = burnwatch::probe::Prober::new(&[])?;
        let req =
            burnwatch::probe::FetchRequest::new(&url, burnwatch::time::Dur::from_secs(5), 64 << 20);
        let resp = prober
            .fetch(&req)
            .await
            .with_context(|| format!("cannot reach the agent at {url}"))?;
        anyhow::ensure!(resp.status == 200, "{url} answered status {}", resp.status);
        Ok::<_, anyhow::Error>(resp.body)
    })?;
    let json: serde_json::Value =
        serde_json::from_slice(&body).context("the answer is not JSON")?;
    print!(
        "{}",
        burnwatch::status::render(&json, std::io::stdout().is_terminal())?
    );
    Ok(())
}

/// One request to the agent's API over plain HTTP, bounded to 10 s; the JSON answer, or an
/// error carrying the agent's own message for a non-2xx status.
async fn api(
    method: hyper::Method,
    base: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> anyhow::Result<serde_json::Value> {
    use http_body_util::{BodyExt as _, Full};
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let uri: hyper::Uri = url.parse().with_context(|| format!("{url} is not a URL"))?;
    anyhow::ensure!(
        uri.scheme_str() == Some("http"),
        "{url}: the agent's API is plain http://"
    );
    let authority = uri
        .authority()
        .with_context(|| format!("{url} has no host"))?
        .clone();
    let host = format!(
        "{}:{}",
        authority.host(),
        authority.port_u16().unwrap_or(80)
    );
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(&host)
            .await
            .with_context(|| format!("cannot reach the agent at {base}"))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        let req = hyper::Request::builder()
            .method(method.clone())
            .uri(uri.path_and_query().map_or("/", |p| p.as_str()))
            .header(hyper::header::HOST, authority.as_str())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(hyper::body::Bytes::from(bytes)))?;
        let resp = sender.send_request(req).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok::<_, anyhow::Error>((status, body))
    };
    let (status, body) = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .with_context(|| format!("{method} {url}: no answer within 10s"))??;
    let json: serde_json::Value = serde_json::from_slice(&body)
        .with_context(|| format!("{method} {url}: the answer ({status}) is not JSON"))?;
    if !status.is_success() {
        let msg = json["error"].as_str().unwrap_or("no message");
        anyhow::bail!("{method} {url}: {status}: {msg}");
    }
    Ok(json)
}

fn now() -> burnwatch::time::Timestamp {
    burnwatch::time::Timestamp(burnwatch::agent::collect::wall_ms())
}

fn alerts(url: &str) -> anyhow::Result<()> {
    use std::io::IsTerminal as _;
    let (alerts, silences) = runtime()?.block_on(async {
        let a = api(hyper::Method::GET, url, "/api/v1/alerts", None).await?;
        let s = api(hyper::Method::GET, url, "/api/v1/silences", None).await?;
        Ok::<_, anyhow::Error>((a, s))
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
            url,
        } => {
            let author = author
                .or_else(|| std::env::var("USER").ok())
                .unwrap_or_default();
            let body = burnwatch::alerts_cli::silence_body(&burnwatch::alerts_cli::SilenceArgs {
                matchers: &matchers,
                duration: duration.as_deref(),
                end: end.as_deref(),
                author: &author,
                comment: &comment,
            })?;
            let answer = rt.block_on(api(
                hyper::Method::POST,
                &url,
                "/api/v1/silences",
                Some(body),
            ))?;
            let id = answer["silenceID"]
                .as_str()
                .context("the agent's answer has no silenceID")?;
            println!("{id}");
        }
        SilenceCommand::Expire { id, url } => {
            let path = format!(
                "/api/v1/silences/{}",
                burnwatch::server::percent_encode(&id)
            );
            rt.block_on(api(hyper::Method::DELETE, &url, &path, None))?;
            println!("silence {id} expired");
        }
        SilenceCommand::List { url } => {
            let body = rt.block_on(api(hyper::Method::GET, &url, "/api/v1/silences", None))?;
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
        let stop = async move {
            match duration {
                Some(d) => tokio::select! {
                    _ = termination() => {}
                    _ = tokio::time::sleep(d) => {}
                },
                None => termination().await,
            }
        };
        demo::run(opts, stop).await?;
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
                    format!(
                        "service {}, {} SLO{}, {} probe{}, {} scrape target{}",
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
