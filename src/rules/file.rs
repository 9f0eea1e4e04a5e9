//! What one rules file declares, whatever spec it is written in: the services, probes and scrape
//! targets that decoded, the names declared and referenced (for the checks across the file set
//! in [`crate::rules`]) and every diagnostic. Each reader ([`crate::rules::decode`] for
//! `burnwatch/v1`, [`crate::rules::sloth`], [`crate::rules::openslo`]) fills one; none of them
//! depends on another for it.

use crate::rules::ServiceSummary;
use crate::rules::diag::Diagnostic;
use crate::rules::model::{Probe, ScrapeTarget, Service};
use crate::rules::node::Pos;

/// A name declared somewhere, for checks across the file set.
#[derive(Debug, Clone)]
pub struct Decl {
    /// The name as written.
    pub name: String,
    /// Where it is written.
    pub pos: Pos,
}

/// Everything decoded from one file.
#[derive(Debug, Default)]
pub struct FileRules {
    /// Services whose documents decoded without errors.
    pub services: Vec<Service>,
    /// Probes that decoded without errors.
    pub probes: Vec<Probe>,
    /// Scrape targets that decoded without errors.
    pub scrapes: Vec<ScrapeTarget>,
    /// One summary per service document that decoded without errors.
    pub summaries: Vec<ServiceSummary>,
    /// Every problem of the file.
    pub diagnostics: Vec<Diagnostic>,
    /// Service names declared (even in documents with errors).
    pub service_decls: Vec<Decl>,
    /// Probe names declared.
    pub probe_decls: Vec<Decl>,
    /// Scrape target names declared.
    pub scrape_decls: Vec<Decl>,
    /// Every `probe:` and `depends_on:` reference, to be resolved against the whole file set.
    pub probe_refs: Vec<Decl>,
    /// How many of them are not SLOs (what the `OK` line counts besides services).
    pub openslo_objects: usize,
}
