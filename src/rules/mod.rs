//! The rules language: YAML files SREs write, checked into a validated [`model::RuleSet`].

pub mod model;
pub mod node;
pub mod selector;
