//! `burnwatch demo`: the whole agent on a built-in synthetic service, with no other software.
//! It starts the service (HTTP endpoints plus a `/metrics` page of request counters and a latency
//! histogram), a steady load against it, rules for it, and the agent with its HTTP API; then
//! injects an outage after a minute and recovers a few minutes later, printing a table of SLIs,
//! burn rates, budgets and alert states as they move. The agent runs as `burnwatch run` runs
//! it ([`Daemon`]): the same API protection and limits, reloads, OTLP push when its config has
//! one, and shutdown order.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::agent::{self, AgentError};
use crate::alert::lifecycle::State;
use crate::config::AgentConfig;
use crate::daemon::{Daemon, DaemonError};
use crate::shutdown::Shutdown;
use crate::synthetic::{self, Behaviour, Service};
use crate::time::Dur;
use crate::view::{AgentSnapshot, TierPhases};

/// Settings of a demo run.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Agent HTTP address (API and health).
    pub listen: SocketAddr,
    /// Where the demo's rules and state go.
    pub data_dir: PathBuf,
    /// Requests per second sent to the service.
    pub rps: u32,
    /// Healthy time before the outage.
    pub outage_after: Duration,
    /// How long the outage lasts.
    pub outage_for: Duration,
    /// Time between two printed tables.
    pub print_every: Duration,
}

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A socket could not be bound.
    #[error("cannot listen on {addr}: {source}; pass --listen with a free address")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Writing the demo rules failed.
    #[error("cannot write the demo files under {path}: {source}")]
    Files {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The demo's rules did not load.
    #[error(transparent)]
    Agent(#[from] AgentError),
    /// The agent, its server or its exporter did not start.
    #[error(transparent)]
    Daemon(#[from] DaemonError),
}

/// Runs the demo until `shutdown` fires, then stops the load, the agent (in the daemon's
/// order) and the service.
pub async fn run(opts: DemoOptions, shutdown: &Shutdown) -> Result<(), DemoError> {
    let files = |source| DemoError::Files {
        path: opts.data_dir.clone(),
        source,
    };
    let rules_dir = opts.data_dir.join("rules");
    std::fs::create_dir_all(&rules_dir).map_err(files)?;
    let svc_addr: SocketAddr = ([127, 0, 0, 1], 0).into();
    let svc_listener = TcpListener::bind(svc_addr)
        .await
        .map_err(|source| DemoError::Listen {
            addr: svc_addr,
            source,
        })?;
    let base = format!(
        "http://{}",
        svc_listener
            .local_addr()
            .map_err(|source| DemoError::Listen {
                addr: svc_addr,
                source
            })?
    );
    let rules_file = rules_dir.join("demo.yaml");
    std::fs::write(&rules_file, synthetic::rules_yaml(&base)).map_err(files)?;
    let api_listener =
        TcpListener::bind(opts.listen)
            .await
            .map_err(|source| DemoError::Listen {
                addr: opts.listen,
                source,
            })?;

    let mut cfg = AgentConfig::with_rules(&opts.data_dir.join("burnwatch.yaml"), vec![rules_file]);
    cfg.data_dir = opts.data_dir.join("state");
    cfg.listen = opts.listen;
    cfg.evaluation_interval = Dur::from_secs(5);
    cfg.checkpoint_interval = Dur::from_secs(30);
    let rules = agent::load_rules(&cfg)?;
    let daemon = Daemon::start(cfg, rules, api_listener, shutdown, Default::default()).await?;

    let service = Service::new(Behaviour::healthy());
    let svc_task = tokio::spawn(synthetic::serve(
        svc_listener,
        service.clone(),
        shutdown.requested(),
    ));
    let load_task = tokio::spawn(synthetic::generate_load(
        format!("{base}/api/checkout"),
        opts.rps,
        shutdown.requested(),
    ));

    println!("burnwatch demo");
    println!("  synthetic service   {base}  (try: curl -d outage {base}/control)");
    println!("  agent API           http://{}/api/v1/slos", opts.listen);
    println!(
        "  rules               {}",
        opts.data_dir.join("rules/demo.yaml").display()
    );
    println!(
        "  outage at +{}s for {}s; a table every {}s; Ctrl-C stops",
        opts.outage_after.as_secs(),
        opts.outage_for.as_secs(),
        opts.print_every.as_secs()
    );

    let started = tokio::time::Instant::now();
    let mut phase = Phase::Healthy;
    // Phases switch on a one-second tick, independent of how often the table is printed.
    let mut tick =
        tokio::time::interval_at(started + Duration::from_secs(1), Duration::from_secs(1));
    let mut next_print = opts.print_every;
    let snaps = daemon.subscribe();
    let alerting = daemon.alerting();
    let stop = shutdown.requested();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {}
        }
        let elapsed = started.elapsed();
        let want = if elapsed < opts.outage_after {
            Phase::Healthy
        } else if elapsed < opts.outage_after + opts.outage_for {
            Phase::Outage
        } else {
            Phase::Recovered
        };
        if want != phase {
            phase = want;
            match phase {
                Phase::Outage => {
                    service.set_behaviour(Behaviour::outage());
                    println!(
                        "\n>>> outage injected: half the requests fail, half are slow, /healthz is down"
                    );
                }
                _ => {
                    service.set_behaviour(Behaviour::healthy());
                    println!("\n>>> service recovered");
                }
            }
        }
        if elapsed >= next_print {
            next_print += opts.print_every;
            let snap = snaps.borrow().clone();
            let tiers = alerting.view().tiers.clone();
            print!("{}", table(&snap, &tiers, elapsed, phase));
        }
    }
    let _ = load_task.await;
    daemon.shutdown().await;
    let _ = svc_task.await;
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Healthy,
    Outage,
    Recovered,
}

/// The demo's status table; the alerts column shows the tier alerts as their lifecycles decided
/// them (the alerting view), as `/api/v1/alerts` and `/metrics` do.
fn table(snap: &Arc<AgentSnapshot>, tiers: &TierPhases, elapsed: Duration, phase: Phase) -> String {
    let mut out = String::new();
    let label = match phase {
        Phase::Healthy => "healthy",
        Phase::Outage => "OUTAGE",
        Phase::Recovered => "recovered",
    };
    let _ = writeln!(out, "\n+{:>4}s  service {label}", elapsed.as_secs());
    let _ = writeln!(
        out,
        "  {:<14} {:>8} {:>9} {:>9} {:>9} {:>8} {:>11}  alerts",
        "slo", "events", "sli 5m", "burn 5m", "burn 1h", "1h data", "budget left"
    );
    for r in &snap.slos {
        let w = |len: Dur| r.alert_windows.iter().find(|w| w.length == len);
        let five = w(Dur::from_mins(5));
        let hour = w(Dur::HOUR);
        let alerts: Vec<String> = r
            .tiers
            .iter()
            .map(|t| (t, tiers.get(&r.id, &t.name)))
            .filter(|(_, p)| p.is_firing() || p.state() == State::Pending)
            .map(|(t, p)| format!("{} {}", t.name, p.state()))
            .collect();
        let _ = writeln!(
            out,
            "  {:<14} {:>8} {:>8.2}% {:>9.1} {:>9.1} {:>7.1}% {:>10.1}%  {}",
            r.id.slo,
            r.window.total,
            five.map_or(100.0, |w| w.sli * 100.0),
            five.map_or(0.0, |w| w.burn_rate),
            hour.map_or(0.0, |w| w.burn_rate),
            // The tiers weigh the burn of the data seen by how much of the window it covers.
            hour.map_or(0.0, |w| w.coverage * 100.0),
            r.budget.remaining * 100.0,
            if alerts.is_empty() {
                "-".to_owned()
            } else {
                alerts.join(", ")
            }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_rules_pass_strict_check() {
        let report = crate::rules::check_sources(&[(
            PathBuf::from("demo.yaml"),
            synthetic::rules_yaml("http://127.0.0.1:8080").into_bytes(),
        )]);
        assert_eq!(report.errors(), 0, "{:#?}", report.diagnostics);
        assert_eq!(report.warnings(), 0, "{:#?}", report.diagnostics);
        let rules = report.rules.expect("rules");
        assert_eq!(rules.services[0].slos.len(), 3);
    }
}
