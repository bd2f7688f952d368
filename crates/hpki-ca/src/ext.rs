//! Extensions rcgen does not build: certificatePolicies (critical, as in real
//! HPKI certificates), a subjectAltName directoryName with the kanji names,
//! and hcRole (from the profile crate).

use hpki_profile::oid::{self, Oid};
use rcgen::CustomExtension;
use yasna::models::ObjectIdentifier;

pub fn custom(arcs: &[u64], critical: bool, value: Vec<u8>) -> CustomExtension {
    let mut ext = CustomExtension::from_oid_content(arcs, value);
    ext.set_criticality(critical);
    ext
}

/// extendedKeyUsage holding id-kp-timeStamping alone: RFC 3161 §2.3 wants it
/// the only purpose, and critical (rcgen cannot mark its own EKU critical).
pub fn time_stamping_eku() -> Vec<u8> {
    let oid = yasna::models::ObjectIdentifier::from_slice(hpki_profile::oid::KP_TIME_STAMPING);
    yasna::construct_der(|w| w.write_sequence(|w| w.next().write_oid(&oid)))
}

/// certificatePolicies with one policy, no qualifiers.
pub fn certificate_policies(policy: &Oid) -> Vec<u8> {
    let oid_der = policy.to_der();
    yasna::construct_der(|w| w.write_sequence(|w| w.next().write_sequence(|w| w.next().write_der(&oid_der))))
}

/// subjectAltName holding one directoryName: O, CN (kanji) and serialNumber,
/// as real HPKI certificates carry them. `None` when there is nothing to put.
pub fn directory_name_san(
    organisation: Option<&str>,
    common_name: Option<&str>,
    serial: Option<&str>,
) -> Option<Vec<u8>> {
    let mut rdns: Vec<(&[u64], &str, bool)> = Vec::new();
    if let Some(o) = organisation {
        rdns.push((&[2, 5, 4, 10], o, false));
    }
    if let Some(cn) = common_name {
        rdns.push((&[2, 5, 4, 3], cn, false));
    }
    if organisation.is_none() && common_name.is_none() {
        return None;
    }
    if let Some(s) = serial {
        rdns.push((oid::DN_SERIAL_NUMBER, s, true));
    }
    Some(yasna::construct_der(|w| {
        w.write_sequence(|w| {
            // directoryName [4] is EXPLICIT: Name is a CHOICE.
            w.next().write_tagged(yasna::Tag::context(4), |w| {
                w.write_sequence(|w| {
                    for (arcs, value, printable) in &rdns {
                        w.next().write_set(|w| {
                            w.next().write_sequence(|w| {
                                w.next().write_oid(&ObjectIdentifier::from_slice(arcs));
                                if *printable {
                                    w.next().write_printable_string(value);
                                } else {
                                    w.next().write_utf8_string(value);
                                }
                            })
                        })
                    }
                })
            })
        })
    }))
}
