//! Fuzz target: any byte string must parse or error in both formats, never panic or hang, and a
//! successful parse must report exactly the samples it delivered, with valid names.
#![no_main]

use burnwatch::exposition::{Format, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for format in [Format::Text, Format::OpenMetrics] {
        let mut delivered = 0u64;
        let result = parse(data, format, |sample| {
            delivered += 1;
            assert!(!sample.name.is_empty());
            assert!(sample.labels.iter().all(|(name, _)| !name.is_empty()));
        });
        if let Ok(summary) = result {
            assert_eq!(summary.samples, delivered);
        }
    }
});
