//! Arbitrary bytes as a card certificate: reading the holder and validating
//! (the input is its own anchor, so the path logic runs as far as it can).

#![no_main]

use hpki_profile::{AcceptedPolicies, Purpose, Revocation, Validator, ValidatorConfig, read_holder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = read_holder(data);
    if let Ok(v) = Validator::new(ValidatorConfig {
        anchors: vec![data.to_vec()],
        intermediates: vec![],
        crls: vec![data.to_vec()],
        policies: AcceptedPolicies::hpki().with_test_policies(),
        revocation: Revocation::Required,
    }) {
        let _ = v.validate(data, &[], Purpose::Authentication, 1_800_000_000);
    }
});
