//! Arbitrary bytes as a card certificate: reading the holder and validating
//! (the input is its own anchor, so the path logic runs as far as it can).

#![no_main]

mod common;

use hpki_profile::{Purpose, read_holder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = read_holder(data);
    if let Some(v) = common::validator(vec![data.to_vec()], vec![], vec![data.to_vec()]) {
        let _ = v.validate(data, &[], Purpose::Authentication, 1_800_000_000);
        let _ = v.validate(data, &[], Purpose::Any, 1_800_000_000);
    }
});
