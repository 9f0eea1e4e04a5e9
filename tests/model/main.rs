//! Tests that need no network and no other program: the SLO engine against brute-force models
//! and a month-long replay, the shipped examples' budgets, the exposition parser's corpus and the
//! alerting pipeline's Alertmanager scenarios on a simulated clock.
//!
//! One test binary per kind of need (model, agent, peers) instead of one per file: each is a link
//! on a 2-core CI machine.

mod alert_scenarios;
mod engine_model;
mod engine_replay;
mod examples_budget;
mod exposition;
mod grouped;
mod history;
mod openslo;
mod sloth;
