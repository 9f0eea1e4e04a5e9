//! Tests against real third-party peers the test script installs: Prometheus 2.42 (parser
//! parity, scraping /metrics, dashboards), Alertmanager 0.25 and an aiosmtpd SMTP server, and the
//! end-to-end pages through them.
//!
//! One test binary per kind of need (model, agent, peers) instead of one per file: each is a link
//! on a 2-core CI machine.

#[path = "../common/mod.rs"]
mod common;

mod alerting_e2e;
mod alertmanager;
mod email;
mod generate;
mod ha;
mod prometheus_parity;
mod prometheus_scrape;
mod prometheus_source;
