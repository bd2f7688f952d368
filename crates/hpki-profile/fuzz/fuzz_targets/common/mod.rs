//! A small valid hierarchy made once per fuzzing process (ECDSA: quick),
//! so that fuzzed CRLs and bundles meet a path that gets as far as they let
//! it.

use std::sync::OnceLock;

use hpki_profile::{
    AcceptedPolicies, DEFAULT_MAX_INTERMEDIATES, Grant, Revocation, TrustScope, Validator, ValidatorConfig,
};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

pub struct Hierarchy {
    pub root: Vec<u8>,
    pub ca: Vec<u8>,
    pub leaf: Vec<u8>,
}

pub fn hierarchy() -> &'static Hierarchy {
    static H: OnceLock<Hierarchy> = OnceLock::new();
    H.get_or_init(|| {
        let ca_params = |cn: &str| {
            let mut p = CertificateParams::default();
            p.distinguished_name.push(DnType::CommonName, cn);
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            p
        };
        let root_key = KeyPair::generate().expect("key");
        let root = ca_params("Fuzz Root").self_signed(&root_key).expect("root").der().to_vec();
        let root_issuer = Issuer::new(ca_params("Fuzz Root"), root_key);
        let ca_key = KeyPair::generate().expect("key");
        let mut cp = ca_params("Fuzz CA");
        cp.use_authority_key_identifier_extension = true;
        let ca = cp.signed_by(&ca_key, &root_issuer).expect("ca").der().to_vec();
        let ca_issuer = Issuer::new(ca_params("Fuzz CA"), ca_key);
        let leaf_key = KeyPair::generate().expect("key");
        let mut lp = CertificateParams::default();
        lp.distinguished_name.push(DnType::CommonName, "Fuzz Leaf");
        lp.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        lp.use_authority_key_identifier_extension = true;
        let leaf = lp.signed_by(&leaf_key, &ca_issuer).expect("leaf").der().to_vec();
        Hierarchy { root, ca, leaf }
    })
}

pub fn validator(anchors: Vec<Vec<u8>>, intermediates: Vec<Vec<u8>>, crls: Vec<Vec<u8>>) -> Option<Validator> {
    let revocation = if crls.is_empty() { Revocation::NotChecked } else { Revocation::Required };
    let scopes =
        anchors.iter().map(|a| TrustScope { ca: a.clone(), grant: Grant::Licensed { professions: None } }).collect();
    Validator::new(ValidatorConfig {
        anchors,
        intermediates,
        crls,
        policies: AcceptedPolicies::hpki().with_test_policies(),
        revocation,
        scopes,
        max_intermediates: DEFAULT_MAX_INTERMEDIATES,
    })
    .ok()
}
