//! burnwatch: an observability agent and SLO evaluator.
//!
//! Layout:
//! - [`time`]: instants and durations (the engine never reads a clock).
//! - [`rules`]: the rules language, from YAML to a validated [`rules::model::RuleSet`].
//! - [`slo`]: the SLO engine, pure logic over a simulated clock.
//! - [`storage`]: checkpoints of engine state (versioned, checksummed, atomic).

pub mod rules;
pub mod slo;
pub mod storage;
pub mod time;
