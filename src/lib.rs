//! burnwatch: an observability agent and SLO evaluator.
//!
//! Layout:
//! - [`time`]: instants and durations (the engine never reads a clock).
//! - [`rules`]: the rules language, from YAML to a validated [`rules::model::RuleSet`].
//! - [`slo`]: the SLO engine, pure logic over a simulated clock.
//! - [`probe`]: health checks (HTTP(S), TCP, DNS) with phase timings, and the scraper's bounded
//!   HTTP fetch.
//! - [`storage`]: checkpoints of engine state (versioned, checksummed, atomic).

pub mod probe;
pub mod rules;
pub mod slo;
pub mod storage;
pub mod time;
