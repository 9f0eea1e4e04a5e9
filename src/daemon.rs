//! The one way a running agent is wired, shared by `burnwatch run` and `burnwatch demo`: the
//! [`Agent`] (collectors, evaluator, checkpoints, alerting), the HTTP server with the config's
//! `api:` protection and limits ([`ServerOptions::from_api`]) and the agent's alerting and
//! reload handles, the OTLP push when `export.otlp` is configured (with the alerting view, as
//! `/metrics`) and the shutdown order ([`crate::shutdown`]). The entry points
//! keep only what differs: where the config comes from, logging, and what triggers the
//! shutdown.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::agent::{Agent, AgentError, Environment};
use crate::config::AgentConfig;
use crate::export::otlp::{OtlpError, OtlpExporter};
use crate::export::prometheus::PageOptions;
use crate::rules::model::RuleSet;
use crate::server::{self, ServerOptions};
use crate::shutdown::Shutdown;
use crate::view::{AgentSnapshot, AlertingHandle, Reloader};

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The agent did not start (data directory, checkpoint, probes, alerting).
    #[error(transparent)]
    Agent(#[from] AgentError),
    /// `export.otlp` is configured but the exporter could not be built.
    #[error("cannot start the OTLP exporter: {0}")]
    Otlp(#[from] OtlpError),
}

/// A running agent with its server, exporter and reload signal.
pub struct Daemon {
    agent: Agent,
    exporter: Option<OtlpExporter>,
    server: JoinHandle<std::io::Result<()>>,
    shutdown: Shutdown,
}

impl Daemon {
    /// Starts the agent on `cfg` and `rules` (checked by [`crate::preflight`]), serves its API
    /// on `listener` and pushes to `export.otlp` when configured,
    /// until `shutdown` fires; then [`Daemon::shutdown`] stops everything in order. `env` is
    /// the clock and checker (the default for `run` and `demo`; tests may pause time). Must be
    /// called inside a tokio runtime.
    pub async fn start(
        cfg: AgentConfig,
        rules: RuleSet,
        listener: TcpListener,
        shutdown: &Shutdown,
        env: Environment,
    ) -> Result<Daemon, DaemonError> {
        let otlp = cfg.export.otlp.clone();
        let page = PageOptions {
            sloth_compatible: cfg.export.prometheus.sloth_compatible,
            series: cfg.export.series,
        };
        let server_opts = ServerOptions {
            clock: env.clock,
            ..ServerOptions::from_api(&cfg.api, page)
        };
        let agent = Agent::start_with(cfg, rules, shutdown, env).await?;
        let exporter = match &otlp {
            Some(o) => {
                let started = OtlpExporter::start_with(
                    o,
                    agent.subscribe(),
                    Some(agent.alerting().subscribe()),
                );
                match started {
                    Ok(e) => {
                        tracing::info!(
                            endpoint = %o.endpoint,
                            protocol = ?o.protocol,
                            interval = ?o.interval,
                            "OTLP push enabled"
                        );
                        Some(e)
                    }
                    Err(e) => {
                        // Nothing is served yet: stop the agent cleanly (checkpoint included).
                        agent.shutdown().await;
                        return Err(e.into());
                    }
                }
            }
            None => None,
        };
        let server = tokio::spawn(server::serve_api(
            listener,
            agent.subscribe(),
            ServerOptions {
                alerting: Some(agent.alerting()),
                reload: Some(agent.reloader()),
                history: Some(agent.history()),
                ..server_opts
            },
            shutdown.clone(),
        ));
        Ok(Daemon {
            agent,
            exporter,
            server,
            shutdown: shutdown.clone(),
        })
    }

    /// A receiver of every snapshot the agent publishes.
    pub fn subscribe(&self) -> watch::Receiver<Arc<AgentSnapshot>> {
        self.agent.subscribe()
    }

    /// The alerting task's handle (alerts, silences, the alerting view).
    pub fn alerting(&self) -> AlertingHandle {
        self.agent.alerting()
    }

    /// A handle that asks for a reload (as SIGHUP does).
    pub fn reloader(&self) -> Reloader {
        self.agent.reloader()
    }

    /// Triggers the shutdown (if nothing did yet) and stops in the order [`crate::shutdown`]
    /// documents: the agent (collectors, last evaluation, checkpoint, alerting saved), then
    /// the OTLP exporter's last push, then the server's end.
    pub async fn shutdown(self) {
        self.shutdown.trigger();
        // The agent publishes its last snapshot and alerting its last view while stopping;
        // the exporter's final push comes after, so the collector gets the values the
        // checkpoint and the alerting state hold.
        self.agent.shutdown().await;
        if let Some(e) = self.exporter {
            match e.shutdown().await {
                Ok(()) => tracing::info!("OTLP: last values pushed"),
                Err(err) => tracing::warn!(error = %err, "OTLP: the last push failed"),
            }
        }
        match self.server.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "the HTTP server ended with an error"),
            Err(e) => tracing::error!(error = %e, "the HTTP server ended abnormally"),
        }
    }
}
