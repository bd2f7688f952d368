//! Arbitrary bundles for the path builder: the input is split into
//! length-prefixed certificates (two bytes of length each), offered as the
//! end entity's presented intermediates and as configured ones, next to a
//! real hierarchy; also the first as an end entity of its own. Path building
//! must end within its budget, whatever the bundle.

#![no_main]

mod common;

use hpki_profile::Purpose;
use libfuzzer_sys::fuzz_target;

fn split(mut data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while data.len() >= 2 && out.len() < 64 {
        let n = usize::from(u16::from_be_bytes([data[0], data[1]])).min(data.len() - 2);
        out.push(data[2..2 + n].to_vec());
        data = &data[2 + n..];
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let h = common::hierarchy();
    let bundle = split(data);
    let mut configured = bundle.clone();
    configured.push(h.ca.clone());
    if let Some(v) = common::validator(vec![h.root.clone()], configured, Vec::new()) {
        let _ = v.validate(&h.leaf, &bundle, Purpose::Any, 1_900_000_000);
        if let Some(first) = bundle.first() {
            let _ = v.validate(first, &bundle, Purpose::Any, 1_900_000_000);
            let _ = v.validate(first, &bundle, Purpose::Signature, 1_900_000_000);
        }
    }
});
