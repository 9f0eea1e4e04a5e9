//! Exports of the agent's numbers to the tools users already run: the Prometheus `/metrics`
//! page ([`prometheus`]). Every exporter reads published snapshots only.

pub mod prometheus;
