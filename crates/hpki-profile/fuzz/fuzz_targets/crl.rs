//! Arbitrary bytes as a CRL of a real hierarchy's CA: reading it
//! (extensions, Issuing Distribution Point, entries), its scope against the
//! end entity, and the revocation check as far as its signature lets it.

#![no_main]

mod common;

use hpki_profile::Purpose;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let h = common::hierarchy();
    if let Some(v) = common::validator(vec![h.root.clone()], vec![h.ca.clone()], vec![data.to_vec()]) {
        let _ = v.validate(&h.leaf, &[], Purpose::Any, 1_900_000_000);
        let _ = v.validate(&h.leaf, &[], Purpose::Authentication, 1_900_000_000);
    }
});
