//! Any bytes as a whole shard file: verification (footer, index, every frame) must answer with
//! problems, never panic, and never allocate more than the format's limits allow.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let report = clipline_shard::verify_shard("fuzz.shard", data);
    for placed in &report.samples {
        assert!(placed.offset as usize + placed.length as usize <= data.len());
    }
});
