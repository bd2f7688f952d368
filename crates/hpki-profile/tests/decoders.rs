//! Property tests on what the profile crate reads from outside: certificate
//! and hcRole bytes never panic, and a signed certificate with any single
//! byte changed never validates.

use std::sync::OnceLock;

use hpki_profile::oid::{self, Oid};
use hpki_profile::{
    AcceptedPolicies, DEFAULT_MAX_INTERMEDIATES, Grant, Profession, Purpose, Revocation, TrustScope, Validator,
    ValidatorConfig, hcrole, read_holder,
};
use proptest::prelude::*;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256,
};

struct Chain {
    root: Vec<u8>,
    leaf: Vec<u8>,
}

/// A root and a doctor's authentication leaf (ECDSA: quick to make).
fn chain() -> &'static Chain {
    static CHAIN: OnceLock<Chain> = OnceLock::new();
    CHAIN.get_or_init(|| {
        let root_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key");
        let mut root = CertificateParams::default();
        root.distinguished_name.push(DnType::CommonName, "Property Root");
        root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let root_der = root.self_signed(&root_key).expect("root").der().to_vec();
        let issuer = Issuer::new(root, root_key);
        let leaf_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key");
        let mut leaf = CertificateParams::default();
        leaf.distinguished_name.push(DnType::CommonName, "Yamada Taro");
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.use_authority_key_identifier_extension = true;
        let policy = Oid::parse(oid::TEST_HPKI_AUTHENTICATION_POLICY).expect("oid").to_der();
        let cp = yasna_policies(&policy);
        let mut cp = CustomExtension::from_oid_content(oid::CERTIFICATE_POLICIES, cp);
        cp.set_criticality(true);
        leaf.custom_extensions.push(cp);
        leaf.custom_extensions.push(CustomExtension::from_oid_content(
            oid::SUBJECT_DIRECTORY_ATTRIBUTES,
            hcrole::encode(Profession::Doctor),
        ));
        let leaf_der = leaf.signed_by(&leaf_key, &issuer).expect("leaf").der().to_vec();
        Chain { root: root_der, leaf: leaf_der }
    })
}

/// certificatePolicies { policy } — DER written out, the policy OID given.
fn yasna_policies(oid_der: &[u8]) -> Vec<u8> {
    let mut inner = vec![0x30, oid_der.len() as u8];
    inner.extend_from_slice(oid_der);
    let mut outer = vec![0x30, inner.len() as u8];
    outer.extend(inner);
    outer
}

fn validator() -> Validator {
    Validator::new(ValidatorConfig {
        anchors: vec![chain().root.clone()],
        intermediates: vec![],
        crls: vec![],
        policies: AcceptedPolicies::hpki().with_test_policies(),
        revocation: Revocation::NotChecked,
        scopes: vec![TrustScope { ca: chain().root.clone(), grant: Grant::Licensed { professions: None } }],
        max_intermediates: DEFAULT_MAX_INTERMEDIATES,
    })
    .expect("validator")
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

#[test]
fn the_fixture_itself_validates() {
    let v = validator().validate(&chain().leaf, &[], Purpose::Authentication, now()).expect("valid");
    assert_eq!(v.holder.profession(), Some(Profession::Doctor));
}

/// Exhaustive rather than sampled: every byte of the signed certificate,
/// changed to every other value, is refused. (Sampling found the first
/// leniency; this makes sure there is no other.)
#[test]
fn every_single_byte_change_to_a_signed_certificate_is_refused() {
    let original = &chain().leaf;
    let v = validator();
    let at = now();
    let mut leaf = original.clone();
    for i in 0..leaf.len() {
        for delta in 1..=255u8 {
            leaf[i] = original[i].wrapping_add(delta);
            // The cache is keyed by the exact bytes, so every variant is
            // validated afresh.
            assert!(
                v.validate(&leaf, &[], Purpose::Authentication, at).is_err(),
                "byte {i} changed by {delta} still validated"
            );
        }
        leaf[i] = original[i];
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn certificate_reading_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let _ = read_holder(&bytes);
        let _ = validator().validate(&bytes, &[], Purpose::Signature, now());
    }

    #[test]
    fn truncated_certificates_are_refused(cut in 0usize..2000) {
        let leaf = &chain().leaf;
        let cut = cut.min(leaf.len() - 1);
        prop_assert!(read_holder(&leaf[..cut]).is_err());
    }

    #[test]
    fn hc_role_decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = hcrole::decode(&bytes);
    }

    #[test]
    fn mutated_hc_role_decodes_to_a_known_profession_or_an_error(pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut v = hcrole::encode(Profession::Pharmacist);
        let i = pos.index(v.len());
        v[i] = byte;
        if let Ok(p) = hcrole::decode(&v) {
            // Only the exact table text maps; changing a letter of the role
            // text cannot yield a profession other than a table entry.
            prop_assert!(Profession::ALL.contains(&p));
        }
    }
}
