//! Engine checkpoints: all state keyed by [`SloId`] plus a fingerprint of what the counts mean.
//!
//! The fingerprint is FNV-1a 64 over a canonical text of the indicator, the budgeting method (with
//! timeslice settings) and the no-data policy. Objective, labels, window and tiers are not in it:
//! editing them keeps the counts (rings are resized keeping the newest buckets). An edited
//! indicator starts fresh, since old counts measured something else. The byte framing (magic,
//! version, checksum, atomic file replacement) is `crate::storage`'s job; this module reads the
//! payloads of older format versions ([`storage::Payload`]): version 1 had no first-collection
//! instant, which is then taken as the start of the oldest bucket holding events.

use serde::{Deserialize, Serialize};

use crate::rules::model::{Slo, SloId};
use crate::slo::counter::CounterSet;
use crate::slo::engine::{Engine, Entry, SloState, apply_head};
use crate::slo::sketch::LatencyTiers;
use crate::slo::slice::SliceAcc;
use crate::slo::window_sums::CountTiers;
use crate::storage;
use crate::time::Timestamp;

/// The saved state of one SLO.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SloCheckpoint {
    /// Which SLO.
    pub id: SloId,
    /// [`fingerprint`](crate::slo::fingerprint::fingerprint) of the SLO the state was built for.
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

impl storage::Payload for EngineCheckpoint {
    fn decode_older(version: u32, body: &[u8]) -> Result<(Self, &[u8]), postcard::Error> {
        match version {
            1 => {
                let (v1, rest): (EngineCheckpointV1, &[u8]) = postcard::take_from_bytes(body)?;
                Ok((v1.into(), rest))
            }
            _ => postcard::take_from_bytes(body),
        }
    }
}

/// [`EngineCheckpoint`] as format version 1 wrote it (field for field: postcard is positional).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct EngineCheckpointV1 {
    pub(crate) slos: Vec<SloCheckpointV1>,
}

/// [`SloCheckpoint`] of format version 1.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SloCheckpointV1 {
    pub(crate) id: SloId,
    pub(crate) fingerprint: u64,
    pub(crate) state: SloStateV1,
}

/// [`SloState`] of format version 1: no first-collection instant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SloStateV1 {
    pub(crate) counts: CountTiers,
    pub(crate) sketches: Option<Box<LatencyTiers>>,
    pub(crate) numerator: CounterSet,
    pub(crate) total: CounterSet,
    pub(crate) slices: Option<SliceAcc>,
    /// The engine's own tier alert states, from before the alert lifecycle became the only
    /// alert state machine: read (postcard is positional) and dropped.
    pub(crate) alerts: Vec<(String, TierStateV1)>,
    pub(crate) latest: Option<Timestamp>,
    pub(crate) rejected: u64,
}

impl From<EngineCheckpointV1> for EngineCheckpoint {
    fn from(v1: EngineCheckpointV1) -> EngineCheckpoint {
        EngineCheckpoint {
            slos: v1
                .slos
                .into_iter()
                .map(|c| {
                    let s = c.state;
                    // Version 1 did not record the first collection: the oldest bucket holding
                    // events is the best bound the state has (an SLO without any event counts as
                    // not collected until its next collection).
                    let first = s.counts.oldest_data();
                    SloCheckpoint {
                        id: c.id,
                        fingerprint: c.fingerprint,
                        state: SloState {
                            counts: s.counts,
                            sketches: s.sketches,
                            numerator: s.numerator,
                            total: s.total,
                            slices: s.slices,
                            latest: s.latest,
                            rejected: s.rejected,
                            first,
                        },
                    }
                })
                .collect(),
        }
    }
}

/// A tier alert state as format version 1 stored it (only read, then dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum TierStateV1 {
    /// Condition false.
    Quiet,
    /// Condition true, waiting for `for`.
    Pending {
        /// When the condition became true.
        since: Timestamp,
    },
    /// Firing.
    Firing {
        /// When the tier started firing.
        since: Timestamp,
    },
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

impl Engine {
    /// Rebuilds the engine for a new set of SLOs, keeping the state of those whose fingerprint is
    /// unchanged (see [`Engine::restore`]).
    pub fn reload<'a>(&mut self, slos: impl IntoIterator<Item = &'a Slo>) -> RestoreReport {
        let cp = std::mem::take(self).into_checkpoint();
        for slo in slos {
            self.add_slo(slo);
        }
        self.restore(cp)
    }

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

    /// The checkpoint file image of all state, byte for byte `storage::encode(&self.checkpoint())`,
    /// serialized from the engine in place (see [`Engine::save_checkpoint`], which the agent
    /// uses: it writes the same bytes without holding them).
    pub fn encode_checkpoint(&mut self) -> Result<Vec<u8>, storage::StorageError> {
        storage::encode(&self.checkpoint_view())
    }

    /// Writes the checkpoint of all state to `path` atomically ([`storage::save`]), serialized
    /// from the engine in place and streamed to the file: a copy of every SLO's rings (12 KiB
    /// per 30d SLO) doubled the engine's memory at every checkpoint, and the file's image
    /// (about 5 KB per SLO) was the agent's peak at 100,000 SLOs; this holds neither.
    pub fn save_checkpoint(&mut self, path: &std::path::Path) -> Result<(), storage::StorageError> {
        storage::save(path, &self.checkpoint_view())
    }

    /// All state as [`EngineCheckpoint`] serializes it, borrowed from the engine. Pending
    /// events in the write-combining and sketch heads are settled into the rings first, as
    /// every evaluation does.
    fn checkpoint_view(&mut self) -> impl Serialize + '_ {
        self.flush_heads();
        for e in &mut self.entries {
            if let Some(s) = &mut e.state.sketches {
                s.flush();
            }
        }
        /// [`SloCheckpoint`] borrowed: postcard is positional, so the bytes are the same.
        #[derive(Serialize)]
        struct SloRef<'a> {
            id: &'a SloId,
            fingerprint: u64,
            state: &'a SloState,
        }
        /// [`EngineCheckpoint`] borrowed; its SLOs serialized one by one from the entries
        /// (a sequence of known length, as a `Vec` is), with no list of references built.
        struct EngineRef<'a> {
            entries: &'a [Entry],
        }
        impl Serialize for EngineRef<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeStruct;
                /// The `slos` field.
                struct Slos<'a>(&'a [Entry]);
                impl Serialize for Slos<'_> {
                    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                        s.collect_seq(self.0.iter().map(|e| SloRef {
                            id: &e.slo.id,
                            fingerprint: e.fingerprint,
                            state: &e.state,
                        }))
                    }
                }
                let mut st = s.serialize_struct("EngineRef", 1)?;
                st.serialize_field("slos", &Slos(self.entries))?;
                st.end()
            }
        }
        EngineRef {
            entries: &self.entries,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slo::engine::SloIdx;
    use crate::time::Dur;

    /// A checkpoint written by format version 1: `burnwatch demo` of the release before first
    /// collections were recorded, run for 22 s with an outage from +12 s and written at its end
    /// (4 health checks of which 2 failed; 392 requests per ratio SLO).
    const V1_DEMO: &[u8] = include_bytes!("../../tests/fixtures/checkpoint-v1-demo.bwcp");

    #[test]
    fn encoding_in_place_writes_the_bytes_of_the_copy_and_changes_no_figure() {
        let rules = crate::rules::load_str(
            "demo.yaml",
            &crate::synthetic::rules_yaml("http://127.0.0.1:1"),
        )
        .expect("demo rules");
        let (mut a, mut b) = (Engine::from_rules(&rules), Engine::from_rules(&rules));
        let ids: Vec<SloIdx> = rules.services[0]
            .slos
            .iter()
            .map(|s| a.index_of(&s.id).expect("configured"))
            .collect();
        let feed = |e: &mut Engine, from: i64| {
            for i in 0..400i64 {
                // Minutes apart and within one minute, so heads hold pending events at the end.
                let t = Timestamp(1_700_000_000_000 + from + i * 7_919);
                e.record_counts(ids[0], t, 90 + (i as u64 % 11), 100)
                    .expect("ratio");
                e.record_latency(ids[1], t, (i % 17) as f64 * 0.05)
                    .expect("latency");
                e.record(ids[2], t, i % 5 != 0).expect("probe");
            }
        };
        feed(&mut a, 0);
        feed(&mut b, 0);
        let copied = storage::encode(&a.checkpoint()).expect("encode the copy");
        assert_eq!(a.encode_checkpoint().expect("encode in place"), copied);
        // Streamed to a file, the same bytes.
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("state.bwcp");
        a.save_checkpoint(&path).expect("save in place");
        assert_eq!(std::fs::read(&path).expect("read back"), copied);
        // Settling the heads in place is what evaluation does: every figure stays the same.
        feed(&mut a, 3_200_000);
        feed(&mut b, 3_200_000);
        let now = Timestamp(1_700_000_000_000 + 6_500_000);
        assert_eq!(a.evaluate(now), b.evaluate(now));
        let mut restored = Engine::from_rules(&rules);
        restored.restore(storage::decode(&copied).expect("decode"));
        let mut c = Engine::from_rules(&rules);
        feed(&mut c, 0);
        assert_eq!(restored.evaluate(now), c.evaluate(now));
    }

    #[test]
    fn reads_a_version_1_checkpoint() {
        assert_eq!(V1_DEMO[8..12], 1u32.to_le_bytes());
        let cp: EngineCheckpoint = storage::decode(V1_DEMO).expect("version 1 is read");
        // And from the file, as the agent reads it at start.
        let from_file: EngineCheckpoint = storage::load(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/checkpoint-v1-demo.bwcp"
        )))
        .expect("version 1 file is read")
        .expect("the fixture exists");
        assert_eq!(
            storage::encode(&from_file).expect("encode"),
            storage::encode(&cp).expect("encode")
        );
        let rules = crate::rules::load_str(
            "demo.yaml",
            &crate::synthetic::rules_yaml("http://127.0.0.1:1"),
        )
        .expect("demo rules");
        let mut e = Engine::from_rules(&rules);
        let report = e.restore(cp);
        assert_eq!(report.kept.len(), 3, "{report:?}");
        let health = e
            .index_of(&SloId {
                service: "demo-shop".into(),
                slo: "health".into(),
            })
            .expect("health");
        let latest = e.entries[health.0 as usize].state.latest.expect("latest");
        let first = e.entries[health.0 as usize].state.first.expect("events");
        // The oldest minute holding a check: at most a minute before the newest instant of a
        // 22 s run, on a minute boundary.
        assert!(first <= latest && latest.since(first) < Dur::from_secs(120));
        assert_eq!(first.0 % 60_000, 0);
        let r = e.evaluate_slo(health, latest).expect("idx");
        assert_eq!((r.window.good, r.window.total), (2, 4));
        assert!(r.window.coverage > 0.0 && r.window.coverage < 1e-4);
        // The old release said about -50000 % left here. Against the whole 30 d budget, 2 failed
        // checks of 4 over the ~76 s since the oldest minute holding one spend 1.5 % of it.
        assert!(r.budget.remaining > 0.98, "{}", r.budget.remaining);
        for slo in ["availability", "latency"] {
            let i = e
                .index_of(&SloId {
                    service: "demo-shop".into(),
                    slo: slo.into(),
                })
                .expect("slo");
            assert_eq!(e.evaluate_slo(i, latest).expect("idx").window.total, 392);
        }
        // Written again (streamed, as the agent writes it), it is version 2 and reads back the
        // same.
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("state.bwcp");
        e.save_checkpoint(&path).expect("save");
        let bytes = std::fs::read(&path).expect("read back");
        assert_eq!(bytes[8..12], storage::FORMAT_VERSION.to_le_bytes());
        let mut again = Engine::from_rules(&rules);
        again.restore(storage::decode(&bytes).expect("version 2"));
        assert_eq!(again.entries[health.0 as usize].state.first, Some(first));
        assert_eq!(again.evaluate_slo(health, latest).expect("idx"), r);
    }

    #[test]
    fn version_2_keeps_the_first_collection() {
        let rules = crate::rules::load_str(
            "demo.yaml",
            &crate::synthetic::rules_yaml("http://127.0.0.1:1"),
        )
        .expect("demo rules");
        let mut e = Engine::from_rules(&rules);
        let t0 = Timestamp(1_700_000_012_345);
        e.record(crate::slo::SloIdx(2), t0, false).expect("ok");
        let bytes = storage::encode(&e.checkpoint()).expect("encode");
        let mut back = Engine::from_rules(&rules);
        back.restore(storage::decode(&bytes).expect("decode"));
        assert_eq!(back.entries[2].state.first, Some(t0));
        assert_eq!(back.entries[0].state.first, None);
    }
}
