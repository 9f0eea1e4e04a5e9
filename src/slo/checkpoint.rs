//! Engine checkpoints: all state keyed by [`SloId`] plus a fingerprint of what the counts mean.
//!
//! The fingerprint is FNV-1a 64 over a canonical text of the indicator, the budgeting method (with
//! timeslice settings) and the no-data policy. Objective, labels, window and tiers are not in it:
//! editing them keeps the counts (rings are resized keeping the newest buckets). An edited
//! indicator starts fresh, since old counts measured something else. The byte framing (magic,
//! version, checksum, atomic file replacement) is `crate::storage`'s job.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::rules::model::{BudgetingMethod, Indicator, LatencySource, Slo, SloId};
use crate::slo::engine::{Engine, Entry, SloState, apply_head};

/// The saved state of one SLO.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SloCheckpoint {
    /// Which SLO.
    pub id: SloId,
    /// [`fingerprint`] of the SLO the state was built for.
    pub fingerprint: u64,
    /// Rings, sketches, counter trackers, the open slice and alert states.
    pub state: SloState,
}

/// The saved state of a whole engine.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct EngineCheckpoint {
    /// One entry per SLO, in index order.
    pub slos: Vec<SloCheckpoint>,
}

/// What [`Engine::restore`] did with each SLO.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// State restored (same id and fingerprint).
    pub kept: Vec<SloId>,
    /// In the checkpoint, but its indicator, method or no-data policy changed: started fresh.
    pub reset: Vec<SloId>,
    /// Not in the checkpoint: started fresh.
    pub added: Vec<SloId>,
    /// In the checkpoint but no longer configured: state discarded.
    pub dropped: Vec<SloId>,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64 of bytes.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_OFFSET, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(FNV_PRIME)
    })
}

/// The canonical text the fingerprint hashes (stable across releases: change it only with a
/// checkpoint version bump). Selectors are written in their canonical `Display` form, so
/// reformatting a selector in YAML (spacing, quote style, matcher order kept) keeps the state.
pub fn canonical_text(slo: &Slo) -> String {
    let mut s = String::new();
    let source = |src: &LatencySource| match src {
        LatencySource::Probe { probe } => format!("probe={probe}"),
        LatencySource::Histogram { selector, .. } => format!("histogram={selector}"),
    };
    // Writing into a String cannot fail.
    let _ = match &slo.indicator {
        Indicator::Ratio {
            numerator,
            numerator_selector,
            total,
        } => {
            write!(s, "ratio;{numerator:?}={numerator_selector};total={total}")
        }
        Indicator::ProbeAvailability { probe } => write!(s, "probe;{probe}"),
        Indicator::LatencyThreshold {
            threshold,
            source: src,
        } => {
            write!(
                s,
                "latency_threshold;{}ms;{}",
                threshold.millis(),
                source(src)
            )
        }
        Indicator::LatencyPercentile {
            percentile,
            threshold,
            source: src,
        } => write!(
            s,
            "latency_percentile;{}ppm;{}ms;{}",
            percentile.ppm(),
            threshold.millis(),
            source(src)
        ),
    };
    let _ = match &slo.method {
        BudgetingMethod::Occurrences => write!(s, "|occurrences"),
        BudgetingMethod::Timeslices { slice, target } => {
            write!(s, "|timeslices;{}ms;{}", slice.millis(), target.to_bits())
        }
    };
    let _ = write!(s, "|no_data={:?}", slo.no_data);
    s
}

/// FNV-1a 64 of [`canonical_text`].
pub fn fingerprint(slo: &Slo) -> u64 {
    fnv1a64(canonical_text(slo).as_bytes())
}

impl Engine {
    /// A copy of all state, including the events still pending in write-combining heads.
    pub fn checkpoint(&self) -> EngineCheckpoint {
        EngineCheckpoint {
            slos: self
                .entries
                .iter()
                .zip(&self.heads)
                .map(|(e, h)| {
                    let mut state = e.state.clone();
                    apply_head(&mut state, h);
                    if let Some(s) = &mut state.sketches {
                        s.flush();
                    }
                    SloCheckpoint {
                        id: e.slo.id.clone(),
                        fingerprint: e.fingerprint,
                        state,
                    }
                })
                .collect(),
        }
    }

    /// All state, consuming the engine (no copy).
    pub fn into_checkpoint(mut self) -> EngineCheckpoint {
        self.flush_heads();
        EngineCheckpoint {
            slos: self
                .entries
                .into_iter()
                .map(|mut e: Entry| {
                    if let Some(s) = &mut e.state.sketches {
                        s.flush();
                    }
                    SloCheckpoint {
                        id: e.slo.id,
                        fingerprint: e.fingerprint,
                        state: e.state,
                    }
                })
                .collect(),
        }
    }

    /// Replaces the state of the configured SLOs with the checkpoint's, where id and fingerprint
    /// match. Other configured SLOs are reset to fresh state; checkpointed SLOs that are not
    /// configured are dropped. Every case is reported.
    pub fn restore(&mut self, cp: EngineCheckpoint) -> RestoreReport {
        let mut report = RestoreReport::default();
        let mut seen = vec![false; self.entries.len()];
        for c in cp.slos {
            let Some(&i) = self.by_id.get(&c.id) else {
                report.dropped.push(c.id);
                continue;
            };
            let e = &mut self.entries[i as usize];
            if seen[i as usize] {
                // A duplicate id in a checkpoint: the first one wins.
                continue;
            }
            seen[i as usize] = true;
            if c.fingerprint == e.fingerprint {
                let mut state = c.state;
                state.adapt(&e.slo, &e.plan);
                e.state = state;
                report.kept.push(c.id);
            } else {
                e.state = SloState::fresh(&e.slo, &e.plan);
                report.reset.push(c.id);
            }
        }
        for (e, seen) in self.entries.iter_mut().zip(seen) {
            if !seen {
                e.state = SloState::fresh(&e.slo, &e.plan);
                report.added.push(e.slo.id.clone());
            }
        }
        // Every state was replaced: events pending in the heads belonged to the old ones.
        self.reset_heads();
        report
    }
}
