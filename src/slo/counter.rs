//! Cumulative counter tracking: turns scraped counter samples into exact increments.
//!
//! Per series (a caller-given `u64` id within a `u64` source, e.g. one scrape target): the first
//! sample is a baseline (no increment); a value at or above the last one adds the difference; a
//! lower value is a reset and adds the value itself (as Prometheus `increase` does, without
//! extrapolation). NaN, infinities and negative values are refused and leave the series
//! untouched. Series of a source absent from that source's scrape are forgotten, so a series
//! that comes back starts again from a baseline; other sources' series are not touched (targets
//! are scraped at different times).

use std::collections::BTreeMap;

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

/// The last value of every tracked counter series.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CounterSet {
    /// Keyed by (source, series id).
    series: BTreeMap<(u64, u64), Series>,
    /// Scrapes seen per source.
    generations: BTreeMap<u64, u64>,
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
                    // A duplicate id in one scrape behaves as two consecutive samples.
                    s.last = v;
                    out.delta += d;
                }
                None => {
                    if !valid {
                        out.rejected += 1;
                        continue;
                    }
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
        let gone: Vec<(u64, u64)> = self
            .series
            .range((source, 0)..=(source, u64::MAX))
            .filter(|(_, s)| s.seen != generation)
            .map(|(k, _)| *k)
            .collect();
        for k in gone {
            self.series.remove(&k);
        }
        if !out.delta.is_finite() {
            // Only reachable with values near f64::MAX; an increment that large is meaningless.
            out.delta = 0.0;
        }
        out
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
                            seen: c.generations[&0],
                            ..*s
                        }
                    ))
                    .collect()
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
}
