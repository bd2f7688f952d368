//! Arbitrary bytes as a subjectDirectoryAttributes value.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = hpki_profile::hcrole::decode(data);
    let _ = hpki_profile::Oid::from_content(data).map(|o| o.to_string());
});
