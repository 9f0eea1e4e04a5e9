//! Reading YAML files against a schema, with every problem reported at its line and column.
//!
//! This module owns what every burnwatch file format shares: the span-aware YAML tree with
//! parser budgets ([`node`]), diagnostics and did-you-mean suggestions ([`diag`]), and the schema
//! walker ([`decoder`]: [`Decoder`] with its typed field readers, [`MapReader`] for one mapping).
//! The formats themselves live with their owners: the rules language in [`crate::rules`], the
//! agent config in [`crate::config`], receivers in [`crate::notify`].

pub mod decoder;
pub mod diag;
pub mod node;

pub(crate) use decoder::{Decoder, MapReader};
pub use diag::{Diagnostic, Severity};
