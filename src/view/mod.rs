//! The read models: what the agent's writers publish for everyone else to read. The evaluator
//! publishes an [`AgentSnapshot`] after each evaluation, the alerting task an [`AlertingView`]
//! after each step; both are immutable and shared whole (`Arc` in a `watch` channel), so a
//! reader sees one instant and never holds a writer up.
//!
//! Readers (the exporters, the HTTP server, the alert sources, the demo's table) import these
//! types from here, never the runtime ([`crate::agent`]) that produces them: this module sits
//! below both and imports only the models its types are made of (SLO reports, rules, probe
//! outcomes, the alert and notification models).

mod alerting;
mod handle;
mod snapshot;

pub use alerting::{AlertingCounters, AlertingView, TierPhases};
pub use handle::{
    AlertingHandle, CommandError, HistoryFailure, HistoryHandle, ReloadOutcome, Reloader, Stopped,
};
pub(crate) use handle::{Command, HistoryRequest, ReloadRequest};
pub use snapshot::{
    AgentSnapshot, CheckpointStatus, GroupStatus, Lag, Pace, ProbeResultView, ProbeStatus,
    RulesStatus, ScrapeFailure, SourceStatus, TargetStatus,
};
