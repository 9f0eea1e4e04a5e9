//! The SLO engine: exact good/total counts in tiered time buckets, SLIs, error budgets, burn
//! rates and alert tiers. Pure logic: no I/O, no clock, no async; every instant is an argument.
//!
//! # Storage and memory
//! Every event is added to all three count tiers (1 m x 361 = 6 h, 10 m x 433 = 3 d,
//! 1 h x N where N covers the SLO window, the longest calendar period incl. a DST hour, and the
//! longest alert window; each plus one bucket, because a rolling window of `W` reads every bucket
//! overlapping `[now - W, now]`, the current partial one included), so each tier is exact on its
//! own and a window is read from the finest tier that holds it (see [`tiers`]). A tier stores its
//! buckets' totals and bad counts as two columns ([`ring::CountRing`]), each in the narrowest
//! width that holds its largest count (nothing while all are 0, then 1, 2, 4 or 8 bytes; exact to
//! `u64` in every width): an occurrences SLO with a 30d window holds 361 + 433 + 721 buckets,
//! 4.2 KB at a few events a second, 8 KB at a thousand, at most 24 KB; a calendar quarter (2211 h
//! buckets) about twice that. Each rolling window an evaluation reads (SLO window, alert windows,
//! 1 h) adds a 64-byte running sum ([`window_sums`]), so an evaluation reads a few buckets per
//! window, not all of them: 560 B for a 30d SLO with the default tiers (8 sums). What the rest of
//! the agent adds per SLO is measured in docs/scaling.md ("Memory per SLO").
//!
//! # Coverage
//! Each SLO records the instant of its first collection (persisted in checkpoints). Every window
//! reports its coverage, the share of it after that instant; before it nothing is data, and the
//! figures that spend budget (tier burn rates, budget left) count the bad events seen against the
//! budget of the whole window (see "Fresh starts and coverage" in docs/rules.md). Latency SLIs add DDSketch tiers
//! (5 m x 36, 1 h x 72, 1 d x (window days + 1)), allocated at the first latency; then an empty
//! bucket costs 8 bytes and a filled one a sketch (a few hundred bytes to a few KiB depending on
//! the latency spread).
//!
//! # Hot path
//! [`Engine::record`] and [`Engine::record_counts`] do no allocation and, in the common case of
//! an event in the current bucket, no division: a bounds check and three additions per tier.
//! [`Engine::record_latency`] also adds to one sketch, the pending 5-minute head; finished heads
//! cascade into the coarser tiers (one merge per bucket, not per observation).
//!
//! # Modules
//! - [`ring`]: the time-bucketed ring and exact counts, in columns of the narrowest width;
//! - [`tiers`]: tier layout, window-to-tier choice, calendar periods;
//! - [`sketch`]: latency sketch tiers;
//! - [`history`]: time series of an SLO's counts, budget and burn rates, read from its buckets;
//! - [`histogram`]: bucket increases and `histogram_quantile` for histogram-fed latency SLOs;
//! - [`counter`]: cumulative counter increments with resets;
//! - [`slice`]: timeslice accumulation and judgement;
//! - [`window_sums`]: the count tiers of one SLO with running sums of its rolling windows;
//! - [`engine`]: the engine, ingest, evaluation and alert tiers;
//! - [`checkpoint`]: serializable state and restore across restarts and reloads;
//! - [`fingerprint`]: what an SLO's counts mean, hashed (a changed meaning starts fresh).

pub mod checkpoint;
pub mod counter;
pub mod engine;
pub mod fingerprint;
pub mod histogram;
pub mod history;
pub mod ring;
pub mod sketch;
pub mod slice;
pub mod tiers;
pub mod window_sums;

pub use checkpoint::{EngineCheckpoint, RestoreReport, SloCheckpoint};
pub use counter::{CounterSet, ScrapeDelta};
pub use engine::{
    BURN_TIE_EPSILON, BudgetReport, Engine, IngestError, ScrapeOutcome, SloIdx, SloReport,
    SloState, Snapshot, TierReport, WindowReport, exceeds,
};
pub use fingerprint::fingerprint;
pub use ring::{Counts, Ring};
pub use sketch::LatencyQuantiles;
pub use tiers::{TierLayout, calendar_period};
