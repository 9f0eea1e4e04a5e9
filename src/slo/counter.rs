//! Cumulative counter tracking: turns scraped counter samples into exact increments.
//!
//! Per series (a caller-given `u64` id within a `u64` source, e.g. one scrape target): the first
//! sample is a baseline (no increment); a value at or above the last one adds the difference; a
//! lower value is a reset and adds the value itself (as Prometheus `increase` does, without
//! extrapolation). NaN, infinities and negative values are refused and leave the series
//! untouched. Series of a source absent from that source's scrape are forgotten, so a series
//! that comes back starts again from a baseline; other sources' series are not touched (targets
//! are scraped at different times).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

/// What one scrape of a [`CounterSet`] produced.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ScrapeDelta {
    /// Sum of the increments of all series (finite, >= 0).
    pub delta: f64,
    /// Samples refused (NaN, infinite or negative values).
    pub rejected: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Series {
    last: f64,
    /// Generation of the last scrape that saw the series.
    seen: u64,
}

/// Key of a series: (source, series id).
type Key = (u64, u64);

/// New series of one scrape, up to which a linear search finds a repeated one; past it a map
/// does (a first scrape of thousands of series stays linear in them).
const FRESH_SCAN: usize = 16;

/// The last value of every tracked counter series.
///
/// Sorted vectors rather than trees: an SLO tracks a few series (one per matching series of each
/// target), and a tree's node (about 370 bytes for one entry) per map and two maps per tracker
/// and two trackers per SLO were a kilobyte of every SLO. Serialized as the two maps it held
/// before, so checkpoints are unchanged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CounterSet {
    /// Sorted by (source, series id), unique.
    series: Vec<(Key, Series)>,
    /// Scrapes seen per source, sorted by source, unique.
    generations: Vec<(u64, u64)>,
}

impl CounterSet {
    /// An empty tracker.
    pub fn new() -> CounterSet {
        CounterSet::default()
    }

    /// Number of series currently tracked.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// True when no series is tracked.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Applies one scrape of `source`: every `(series id, value)` sample, then forgets the
    /// source's series not in it. A refused sample still marks its series as seen (its state is
    /// kept as it was).
    pub fn scrape(&mut self, source: u64, samples: &[(u64, f64)]) -> ScrapeDelta {
        let generation = match self.generations.binary_search_by_key(&source, |g| g.0) {
            Ok(i) => {
                let g = &mut self.generations[i].1;
                *g = g.wrapping_add(1);
                *g
            }
            Err(i) => {
                self.generations.insert(i, (source, 1));
                self.generations.shrink_to_fit();
                1
            }
        };
        let mut out = ScrapeDelta::default();
        // Series first seen in this scrape, in arrival order; merged in after it (inserting each
        // into the sorted vector would move it once per new series).
        let mut fresh: Vec<(Key, Series)> = Vec::new();
        let mut fresh_at: HashMap<u64, usize> = HashMap::new();
        for &(id, v) in samples {
            let valid = v.is_finite() && v >= 0.0;
            let key = (source, id);
            let known = match self.series.binary_search_by_key(&key, |e| e.0) {
                Ok(i) => Some(&mut self.series[i].1),
                Err(_) if fresh.len() <= FRESH_SCAN => {
                    fresh.iter_mut().find(|e| e.0 == key).map(|e| &mut e.1)
                }
                Err(_) => fresh_at.get(&id).map(|&i| &mut fresh[i].1),
            };
            match known {
                Some(s) => {
                    s.seen = generation;
                    if !valid {
                        out.rejected += 1;
                        continue;
                    }
                    let d = if v >= s.last { v - s.last } else { v };
                    // A duplicate id in one scrape behaves as two consecutive samples.
                    s.last = v;
                    out.delta += d;
                }
                None => {
                    if !valid {
                        out.rejected += 1;
                        continue;
                    }
                    fresh.push((
                        key,
                        Series {
                            last: v,
                            seen: generation,
                        },
                    ));
                    if fresh.len() > FRESH_SCAN {
                        if fresh_at.is_empty() {
                            fresh_at.extend(fresh.iter().enumerate().map(|(i, e)| (e.0.1, i)));
                        } else {
                            fresh_at.insert(id, fresh.len() - 1);
                        }
                    }
                }
            }
        }
        let before = self.series.len();
        self.series
            .retain(|(k, s)| k.0 != source || s.seen == generation);
        if !fresh.is_empty() {
            self.series.append(&mut fresh);
            // Keys are unique (a repeated new series was found in `fresh`), so the order is total.
            self.series.sort_unstable_by_key(|e| e.0);
        }
        if self.series.len() != before {
            self.series.shrink_to_fit();
        }
        if !out.delta.is_finite() {
            // Only reachable with values near f64::MAX; an increment that large is meaningless.
            out.delta = 0.0;
        }
        out
    }
}

/// [`CounterSet`] as it was serialized: two maps (postcard writes a map as its length and its
/// pairs, which is also what sorted vectors of pairs become).
#[derive(Serialize, Deserialize)]
#[serde(rename = "CounterSet")]
struct CounterMaps {
    series: BTreeMap<Key, Series>,
    generations: BTreeMap<u64, u64>,
}

impl Serialize for CounterSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        /// Sorted unique pairs, written as a map.
        struct AsMap<'a, K, V>(&'a [(K, V)]);
        impl<K: Serialize, V: Serialize> Serialize for AsMap<'_, K, V> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
            }
        }
        let mut st = s.serialize_struct("CounterSet", 2)?;
        st.serialize_field("series", &AsMap(&self.series))?;
        st.serialize_field("generations", &AsMap(&self.generations))?;
        st.end()
    }
}

impl<'de> Deserialize<'de> for CounterSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<CounterSet, D::Error> {
        let m = CounterMaps::deserialize(d)?;
        Ok(CounterSet {
            series: m.series.into_iter().collect(),
            generations: m.generations.into_iter().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baseline_increase_reset_forget() {
        let mut c = CounterSet::new();
        assert_eq!(c.scrape(0, &[(1, 10.0), (2, 5.0)]).delta, 0.0);
        assert_eq!(c.scrape(0, &[(1, 15.0), (2, 5.0)]).delta, 5.0);
        // Reset of series 1: the new value is the increment.
        assert_eq!(c.scrape(0, &[(1, 3.0), (2, 7.0)]).delta, 3.0 + 2.0);
        // Series 2 missing: forgotten.
        assert_eq!(c.scrape(0, &[(1, 4.0)]).delta, 1.0);
        assert_eq!(c.len(), 1);
        // Series 2 back: baseline again.
        assert_eq!(c.scrape(0, &[(1, 4.0), (2, 100.0)]).delta, 0.0);
        assert_eq!(c.scrape(0, &[(1, 4.0), (2, 101.0)]).delta, 1.0);
    }

    #[test]
    fn refuses_bad_values_without_touching_state() {
        let mut c = CounterSet::new();
        c.scrape(0, &[(1, 10.0)]);
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1.0] {
            let before = c.clone();
            let d = c.scrape(0, &[(1, bad)]);
            assert_eq!(d.rejected, 1);
            assert_eq!(d.delta, 0.0);
            assert_eq!(
                c.series,
                before
                    .series
                    .iter()
                    .map(|(k, s)| (
                        *k,
                        Series {
                            seen: c.generations[0].1,
                            ..*s
                        }
                    ))
                    .collect::<Vec<_>>()
            );
        }
        assert_eq!(c.scrape(0, &[(1, 12.0)]).delta, 2.0);
        // A refused first sample does not create the series.
        assert_eq!(c.scrape(0, &[(1, 12.0), (9, f64::NAN)]).rejected, 1);
        assert_eq!(c.len(), 1);
    }

    /// Two targets scraped at different times: each scrape forgets only its own absent series.
    #[test]
    fn sources_are_independent() {
        let mut c = CounterSet::new();
        assert_eq!(c.scrape(1, &[(7, 10.0)]).delta, 0.0);
        assert_eq!(c.scrape(2, &[(7, 100.0)]).delta, 0.0);
        assert_eq!(c.scrape(1, &[(7, 12.0)]).delta, 2.0);
        assert_eq!(c.scrape(2, &[(7, 105.0)]).delta, 5.0);
        // Target 2 loses series 7; target 1 keeps its own series 7.
        assert_eq!(c.scrape(2, &[]).delta, 0.0);
        assert_eq!(c.len(), 1);
        assert_eq!(c.scrape(1, &[(7, 13.0)]).delta, 1.0);
        assert_eq!(c.scrape(2, &[(7, 106.0)]).delta, 0.0);
    }

    /// The tracker as it was, two ordered maps: the model the sorted vectors must equal.
    #[derive(Default)]
    struct Model {
        series: BTreeMap<Key, Series>,
        generations: BTreeMap<u64, u64>,
    }

    impl Model {
        fn scrape(&mut self, source: u64, samples: &[(u64, f64)]) -> ScrapeDelta {
            let g = self.generations.entry(source).or_insert(0);
            *g = g.wrapping_add(1);
            let generation = *g;
            let mut out = ScrapeDelta::default();
            for &(id, v) in samples {
                let valid = v.is_finite() && v >= 0.0;
                match self.series.get_mut(&(source, id)) {
                    Some(s) => {
                        s.seen = generation;
                        if !valid {
                            out.rejected += 1;
                            continue;
                        }
                        let d = if v >= s.last { v - s.last } else { v };
                        s.last = v;
                        out.delta += d;
                    }
                    None if !valid => out.rejected += 1,
                    None => {
                        self.series.insert(
                            (source, id),
                            Series {
                                last: v,
                                seen: generation,
                            },
                        );
                    }
                }
            }
            self.series
                .retain(|k, s| k.0 != source || s.seen == generation);
            if !out.delta.is_finite() {
                out.delta = 0.0;
            }
            out
        }
    }

    /// Random scrapes (few and many series, repeated ids, new series past the linear search,
    /// resets, refused values, three sources): the same deltas, state and bytes as the maps.
    #[test]
    fn equals_the_ordered_maps_it_replaced() {
        let mut seed = 7u64;
        let mut next = |m: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % m
        };
        for _ in 0..60 {
            let (mut c, mut m) = (CounterSet::new(), Model::default());
            let width = [3, 20, 80][next(3) as usize];
            for _ in 0..40 {
                let source = next(3);
                let n = next(width);
                let samples: Vec<(u64, f64)> = (0..n)
                    .map(|_| {
                        let v = match next(12) {
                            0 => f64::NAN,
                            1 => -1.0,
                            2 => f64::INFINITY,
                            r => (next(1000) * r) as f64 / 4.0,
                        };
                        (next(width * 2), v)
                    })
                    .collect();
                let (a, b) = (c.scrape(source, &samples), m.scrape(source, &samples));
                assert_eq!(a.rejected, b.rejected);
                assert_eq!(a.delta.to_bits(), b.delta.to_bits(), "{samples:?}");
                let want: Vec<(Key, Series)> = m.series.iter().map(|(k, s)| (*k, *s)).collect();
                assert_eq!(c.series, want);
                let gens: Vec<(u64, u64)> = m.generations.iter().map(|(k, g)| (*k, *g)).collect();
                assert_eq!(c.generations, gens);
                let maps = CounterMaps {
                    series: m.series.clone(),
                    generations: m.generations.clone(),
                };
                let bytes = postcard::to_allocvec(&c).expect("encode");
                assert_eq!(bytes, postcard::to_allocvec(&maps).expect("encode"));
                let back: CounterSet = postcard::from_bytes(&bytes).expect("decode");
                assert_eq!(back, c);
            }
        }
    }
}
