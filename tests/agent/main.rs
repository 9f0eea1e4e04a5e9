//! Tests of the `burnwatch` binary and library against servers this process starts on
//! loopback: the agent on the synthetic service (exact SLIs, reloads, SIGKILL), the HTTP API and
//! CLI, `check`, probes, the receivers' HTTP peers and an in-process OTLP collector.
//!
//! One test binary per kind of need (model, agent, peers) instead of one per file: each is a link
//! on a 2-core CI machine.

#[path = "../common/mod.rs"]
mod common;

mod agent;
mod alerts_api;
mod check;
mod metrics_page;
mod otlp;
mod paused;
mod probe;
mod receivers;
mod state_crash;
mod synthetic;
