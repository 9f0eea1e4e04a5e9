//! Rules for other evaluators, generated from burnwatch rules: [`prometheus`] writes Prometheus
//! recording and alerting rules in Sloth's shape (`burnwatch generate prometheus`), and
//! [`rule_test`] the `promtool test rules` unit tests that show their alerts firing.

pub mod prometheus;
pub mod rule_test;
