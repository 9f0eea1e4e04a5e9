//! Exports of the agent's numbers to the tools users already run: the Prometheus `/metrics`
//! page ([`prometheus`]) and an OTLP push ([`otlp`]). Every exporter reads published snapshots only.

pub mod otlp;
pub mod prometheus;
