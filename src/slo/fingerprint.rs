//! The fingerprint of what an SLO's counts mean (indicator, budgeting method, no-data policy):
//! FNV-1a 64 over a canonical text. A checkpoint's state is kept for an SLO only while its
//! fingerprint is unchanged; the engine stamps each entry with it when the SLO is added.

use std::fmt::Write as _;

use crate::rules::model::{BudgetingMethod, Indicator, LatencySource, Slo};

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
        // The source name is not in it: moving a query to another replica of the same
        // backend keeps the state.
        Indicator::Query {
            numerator,
            numerator_query,
            total_query,
            ..
        } => write!(
            s,
            "query;{numerator:?}={numerator_query};total={total_query}"
        ),
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
