//! Rules for other evaluators, generated from burnwatch rules: [`prometheus`] writes Prometheus
//! recording and alerting rules in Sloth's shape (`burnwatch generate prometheus`).

pub mod prometheus;
