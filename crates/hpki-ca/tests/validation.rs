//! HPKI path validation against certificates the test CA really issues:
//! one good case per card kind, and one test per refusal.

use std::path::{Path, PathBuf};

use hpki_ca::{AssistantRequest, CaDir, CaRole, CardRequest, Reason};
use hpki_card::CardVariant;
use hpki_profile::oid;
use hpki_profile::{
    AcceptedPolicies, DEFAULT_MAX_INTERMEDIATES, Grant, HolderKind, Profession, Purpose, Refusal, Revocation,
    TrustScope, Validator, ValidatorConfig,
};
use rcgen::{CertificateParams, DistinguishedName, DnType, Issuer, KeyUsagePurpose};
use virtual_card::CardImage;

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    ca: CaDir,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("ca");
    let ca = CaDir::init(&dir, hpki_ca::DEFAULT_CRL_BASE_URL).expect("ca init");
    Fixture { _tmp: tmp, dir, ca }
}

impl Fixture {
    fn doctor(&mut self, profession: Profession) -> CardImage {
        let out = self.dir.parent().expect("parent").join(format!("{}.json", profession.slug()));
        self.ca
            .issue_card(
                &CardRequest {
                    profession,
                    name: "Yamada Taro".into(),
                    name_kanji: Some("山田太郎".into()),
                    institution: Some("Kanazawa Clinic".into()),
                    institution_kanji: Some("金沢診療所".into()),
                    license_no: "123456".into(),
                    verified_by: "Sato (IT desk)".into(),
                    pin: "4826".into(),
                    variant: CardVariant::Jma,
                    retry_limit: 5,
                    valid_days: 365,
                },
                &out,
            )
            .expect("issue card");
        CardImage::load(&out).expect("image")
    }

    fn crls(&mut self) -> Vec<Vec<u8>> {
        let out = self.dir.parent().expect("parent").join("crl");
        self.ca.publish_crls(&out, time::Duration::days(4)).expect("publish");
        CaRole::ALL.iter().map(|r| std::fs::read(out.join(format!("{}.crl", r.name()))).expect("crl")).collect()
    }

    fn validator(&mut self, crls: Vec<Vec<u8>>) -> Validator {
        validator_for(&self.ca, crls, AcceptedPolicies::hpki().with_test_policies(), Revocation::Required)
    }
}

fn validator_for(ca: &CaDir, crls: Vec<Vec<u8>>, policies: AcceptedPolicies, revocation: Revocation) -> Validator {
    let intermediates =
        CaRole::ALL.iter().filter(|r| **r != CaRole::Root).map(|r| ca.ca_cert_der(*r).expect("ca")).collect();
    Validator::new(ValidatorConfig {
        anchors: vec![ca.ca_cert_der(CaRole::Root).expect("root")],
        intermediates,
        crls,
        policies,
        revocation,
        scopes: hierarchy_scopes(ca),
        max_intermediates: DEFAULT_MAX_INTERMEDIATES,
    })
    .expect("validator")
}

/// The test hierarchy's own scoping (what `hpki-certs verify --dir` uses).
fn hierarchy_scopes(ca: &CaDir) -> Vec<TrustScope> {
    CaRole::ALL.iter().map(|r| TrustScope { ca: ca.ca_cert_der(*r).expect("ca"), grant: r.grant() }).collect()
}

/// A root trusted for licensed professionals.
fn licensed(root: &[u8]) -> Vec<TrustScope> {
    vec![TrustScope { ca: root.to_vec(), grant: Grant::Licensed { professions: None } }]
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

const DAY: i64 = 86_400;

#[test]
fn doctor_card_validates_for_login_and_for_signature() {
    let mut f = fixture();
    let card = f.doctor(Profession::Doctor);
    let crls = f.crls();
    let v = f.validator(crls);
    let auth = v.validate(&card.authentication.certificate, &[], Purpose::Authentication, now()).expect("valid");
    assert_eq!(auth.holder.kind, HolderKind::Licensed(Profession::Doctor));
    assert_eq!(auth.holder.name_kanji.as_deref(), Some("山田太郎"));
    assert_eq!(auth.holder.serial_number.as_deref(), Some("MD-123456"));
    assert_eq!(auth.chain.len(), 3);
    assert_eq!(auth.revocation.len(), 2, "leaf and intermediate checked against CRLs");
    let sign = v.validate(&card.signature.certificate, &[], Purpose::Signature, now()).expect("valid");
    assert_eq!(sign.holder.profession(), Some(Profession::Doctor));
}

#[test]
fn assistant_card_names_its_institution() {
    let mut f = fixture();
    let out = f.dir.parent().expect("parent").join("assistant.json");
    f.ca.issue_assistant_card(
        &AssistantRequest {
            institution: "Kanazawa Clinic".into(),
            institution_kanji: None,
            name: "Suzuki Hanako".into(),
            name_kanji: None,
            staff_id: "S-0042".into(),
            pin: "7391".into(),
            variant: CardVariant::Jahis,
            retry_limit: 5,
            valid_days: 365,
        },
        &out,
    )
    .expect("issue");
    let card = CardImage::load(&out).expect("image");
    let crls = f.crls();
    let v = f.validator(crls);
    let ok = v.validate(&card.authentication.certificate, &[], Purpose::Authentication, now()).expect("valid");
    assert_eq!(ok.holder.kind, HolderKind::Assistant);
    assert_eq!(ok.holder.institution.as_deref(), Some("Kanazawa Clinic"));
    assert_eq!(ok.holder.serial_number.as_deref(), Some("S-0042"));
}

#[test]
fn repeat_validation_is_served_from_the_cache_until_the_crls_change() {
    let mut f = fixture();
    let card = f.doctor(Profession::Pharmacist);
    let crls = f.crls();
    let v = f.validator(crls.clone());
    let leaf = &card.authentication.certificate;
    assert!(!v.validate(leaf, &[], Purpose::Authentication, now()).expect("valid").from_cache);
    assert!(v.validate(leaf, &[], Purpose::Authentication, now()).expect("valid").from_cache);
    // Another purpose is another question.
    assert!(v.validate(leaf, &[], Purpose::Signature, now()).is_err());
    // Past the CRL's nextUpdate the cached answer no longer holds.
    assert_eq!(v.validate(leaf, &[], Purpose::Authentication, now() + 5 * DAY).map_err(|r| r.code()), Err("stale_crl"));
}

#[test]
fn revoked_card_is_refused_with_reason_and_date() {
    let mut f = fixture();
    let card = f.doctor(Profession::Dentist);
    let serial = hpki_profile::read_holder(&card.authentication.certificate).expect("holder").certificate_serial;
    f.ca.revoke(&serial, Reason::KeyCompromise).expect("revoke");
    let crls = f.crls();
    let err =
        f.validator(crls).validate(&card.authentication.certificate, &[], Purpose::Authentication, now()).unwrap_err();
    assert!(matches!(&err, Refusal::Revoked { reason: Some(r), .. } if r == "keyCompromise"), "{err:?}");
    assert_eq!(err.code(), "revoked");
    assert!(err.to_string().contains("revoked on"), "{err}");
}

#[test]
fn expired_card_is_refused() {
    let mut f = fixture();
    let card = f.doctor(Profession::Nurse);
    let crls = f.crls();
    let err = f
        .validator(crls)
        .validate(&card.authentication.certificate, &[], Purpose::Authentication, now() + 400 * DAY)
        .unwrap_err();
    assert_eq!(err.code(), "expired", "{err}");
    assert!(err.to_string().contains("expired at"));
}

#[test]
fn card_not_yet_valid_is_refused() {
    let mut f = fixture();
    let card = f.doctor(Profession::Nurse);
    let crls = f.crls();
    let err = f
        .validator(crls)
        .validate(&card.authentication.certificate, &[], Purpose::Authentication, now() - DAY)
        .unwrap_err();
    assert_eq!(err.code(), "not_yet_valid", "{err}");
}

#[test]
fn crl_past_next_update_fails_closed() {
    let mut f = fixture();
    let card = f.doctor(Profession::RegisteredDietitian);
    let crls = f.crls();
    let err = f
        .validator(crls)
        .validate(&card.authentication.certificate, &[], Purpose::Authentication, now() + 5 * DAY)
        .unwrap_err();
    assert!(matches!(err, Refusal::StaleCrl { .. }), "{err:?}");
    assert!(err.to_string().contains("stale"));
}

#[test]
fn missing_crl_fails_closed_unless_revocation_is_switched_off() {
    let mut f = fixture();
    let card = f.doctor(Profession::Doctor);
    let err = f
        .validator(Vec::new())
        .validate(&card.authentication.certificate, &[], Purpose::Authentication, now())
        .unwrap_err();
    assert_eq!(err.code(), "no_revocation_info", "{err}");
    let relaxed =
        validator_for(&f.ca, Vec::new(), AcceptedPolicies::hpki().with_test_policies(), Revocation::NotChecked);
    let ok = relaxed.validate(&card.authentication.certificate, &[], Purpose::Authentication, now()).expect("valid");
    assert!(ok.revocation.is_empty());
}

#[test]
fn crl_signed_by_another_key_is_refused() {
    let mut f = fixture();
    let card = f.doctor(Profession::Doctor);
    // Another CA directory has CAs of the same names but other keys.
    let mut other = fixture();
    let foreign = other.crls();
    let err = f
        .validator(foreign)
        .validate(&card.authentication.certificate, &[], Purpose::Authentication, now())
        .unwrap_err();
    assert_eq!(err.code(), "crl_bad_signature", "{err}");
}

#[test]
fn wrong_anchor_is_an_unknown_issuer() {
    let mut f = fixture();
    let card = f.doctor(Profession::Doctor);
    let other = fixture();
    let other_root = other.ca.ca_cert_der(CaRole::Root).expect("root");
    let v = Validator::new(ValidatorConfig {
        anchors: vec![other_root.clone()],
        intermediates: vec![],
        crls: vec![],
        policies: AcceptedPolicies::hpki().with_test_policies(),
        revocation: Revocation::Required,
        scopes: licensed(&other_root),
        max_intermediates: DEFAULT_MAX_INTERMEDIATES,
    })
    .expect("validator");
    let err = v.validate(&card.authentication.certificate, &[], Purpose::Authentication, now()).unwrap_err();
    assert_eq!(err.code(), "unknown_issuer", "{err}");
    // With the right intermediate but the other root, the signature fails.
    let v = Validator::new(ValidatorConfig {
        anchors: vec![other_root.clone()],
        intermediates: vec![f.ca.ca_cert_der(CaRole::HpkiAuth).expect("ca")],
        crls: vec![],
        policies: AcceptedPolicies::hpki().with_test_policies(),
        revocation: Revocation::Required,
        scopes: licensed(&other_root),
        max_intermediates: DEFAULT_MAX_INTERMEDIATES,
    })
    .expect("validator");
    let err = v.validate(&card.authentication.certificate, &[], Purpose::Authentication, now()).unwrap_err();
    assert_eq!(err.code(), "bad_signature", "{err}");
}

#[test]
fn tampered_certificate_is_refused() {
    let mut f = fixture();
    let card = f.doctor(Profession::Doctor);
    let crls = f.crls();
    let v = f.validator(crls);
    let original = &card.authentication.certificate;
    // A changed byte in the signed name, and a changed signature bit.
    let mut name = original.clone();
    let at = name.windows(11).position(|w| w == b"Yamada Taro").expect("name");
    name[at] = b'X';
    assert_eq!(v.validate(&name, &[], Purpose::Authentication, now()).unwrap_err().code(), "bad_signature");
    let mut sig = original.clone();
    let last = sig.len() - 1;
    sig[last] ^= 0x01;
    assert_eq!(v.validate(&sig, &[], Purpose::Authentication, now()).unwrap_err().code(), "bad_signature");
}

#[test]
fn authentication_certificate_cannot_sign_and_signature_certificate_cannot_log_in() {
    let mut f = fixture();
    let card = f.doctor(Profession::Doctor);
    let crls = f.crls();
    let v = f.validator(crls);
    let err = v.validate(&card.authentication.certificate, &[], Purpose::Signature, now()).unwrap_err();
    assert!(matches!(&err, Refusal::WrongKeyUsage { required: "nonRepudiation", .. }), "{err:?}");
    let err = v.validate(&card.signature.certificate, &[], Purpose::Authentication, now()).unwrap_err();
    assert!(matches!(&err, Refusal::WrongKeyUsage { required: "digitalSignature", .. }), "{err:?}");
}

#[test]
fn test_policies_are_refused_where_only_real_hpki_is_accepted() {
    let mut f = fixture();
    let card = f.doctor(Profession::Doctor);
    let crls = f.crls();
    let v = validator_for(&f.ca, crls, AcceptedPolicies::hpki(), Revocation::Required);
    let err = v.validate(&card.authentication.certificate, &[], Purpose::Authentication, now()).unwrap_err();
    assert_eq!(err.code(), "policy_not_accepted", "{err}");
    assert!(err.to_string().contains(oid::TEST_HPKI_AUTHENTICATION_POLICY));
}

#[test]
fn a_ca_certificate_is_not_a_card() {
    let mut f = fixture();
    let crls = f.crls();
    let v = f.validator(crls);
    let ca = f.ca.ca_cert_der(CaRole::HpkiAuth).expect("ca");
    assert_eq!(v.validate(&ca, &[], Purpose::Authentication, now()).unwrap_err().code(), "not_end_entity");
}

/// Issues a leaf directly with the hpki-auth CA key, with extra extensions.
fn crafted_leaf(f: &Fixture, extra: Vec<rcgen::CustomExtension>, issuer_role: CaRole) -> Vec<u8> {
    let key =
        hpki_ca::keys::load(&f.dir.join(issuer_role.name()).join("key.pem"), issuer_role.key_kind()).expect("key");
    let issuer = Issuer::new(issuer_role.params(), key);
    let (leaf_key, _) = hpki_ca::keys::generate(hpki_ca::hierarchy::CaRole::Terminal.key_kind()).expect("key");
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "Crafted");
    p.distinguished_name = dn;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.use_authority_key_identifier_extension = true;
    p.serial_number = Some(hpki_ca_serial());
    let policy = hpki_profile::Oid::parse(oid::TEST_HPKI_AUTHENTICATION_POLICY).expect("oid");
    let mut cp = rcgen::CustomExtension::from_oid_content(oid::CERTIFICATE_POLICIES, policies_der(&policy));
    cp.set_criticality(true);
    p.custom_extensions.push(cp);
    p.custom_extensions.extend(extra);
    p.signed_by(&leaf_key, &issuer).expect("sign").der().to_vec()
}

fn hpki_ca_serial() -> rcgen::SerialNumber {
    rcgen::SerialNumber::from(now() as u64)
}

fn policies_der(policy: &hpki_profile::Oid) -> Vec<u8> {
    let oid_der = policy.to_der();
    yasna::construct_der(|w| w.write_sequence(|w| w.next().write_sequence(|w| w.next().write_der(&oid_der))))
}

#[test]
fn unknown_critical_extension_is_refused() {
    let mut f = fixture();
    let mut ext = rcgen::CustomExtension::from_oid_content(&[1, 2, 3, 4, 5], vec![0x05, 0x00]);
    ext.set_criticality(true);
    let leaf = crafted_leaf(&f, vec![ext], CaRole::HpkiAuth);
    let crls = f.crls();
    let v = validator_for(&f.ca, crls.clone(), AcceptedPolicies::hpki().with_test_policies(), Revocation::Required);
    let err = v.validate(&leaf, &[], Purpose::Authentication, now()).unwrap_err();
    assert!(matches!(&err, Refusal::UnknownCriticalExtension { oid, .. } if oid == "1.2.3.4.5"), "{err:?}");
    // The same extension, not critical, is fine.
    let ext = rcgen::CustomExtension::from_oid_content(&[1, 2, 3, 4, 5], vec![0x05, 0x00]);
    let leaf = crafted_leaf(&f, vec![ext], CaRole::HpkiAuth);
    v.validate(&leaf, &[], Purpose::Authentication, now()).expect("non-critical unknown extensions are allowed");
}

#[test]
fn malformed_hc_role_is_refused() {
    let mut f = fixture();
    let crls = f.crls();
    let v = validator_for(&f.ca, crls, AcceptedPolicies::hpki().with_test_policies(), Revocation::Required);
    let mut unknown = hpki_profile::hcrole::encode(Profession::Doctor);
    let at = unknown.windows(14).position(|w| w == b"Medical Doctor").expect("text");
    unknown[at..at + 14].copy_from_slice(b"Witch  Doctor!");
    for (value, expected) in [(unknown, "unknown qualification"), (vec![0x30, 0x03, 0x30, 0x01], "not valid DER")] {
        let ext = rcgen::CustomExtension::from_oid_content(oid::SUBJECT_DIRECTORY_ATTRIBUTES, value);
        let leaf = crafted_leaf(&f, vec![ext], CaRole::HpkiAuth);
        let err = v.validate(&leaf, &[], Purpose::Authentication, now()).unwrap_err();
        assert_eq!(err.code(), "malformed_hc_role", "{err}");
        assert!(err.to_string().contains(expected), "{err}");
    }
}

#[test]
fn path_length_constraint_is_enforced() {
    let mut f = fixture();
    // hpki-auth (pathLen 0) signs a sub-CA, which signs a leaf.
    let key = hpki_ca::keys::load(&f.dir.join("hpki-auth").join("key.pem"), CaRole::HpkiAuth.key_kind()).expect("key");
    let auth_ca = Issuer::new(CaRole::HpkiAuth.params(), key);
    let (sub_key, _) = hpki_ca::keys::generate(CaRole::Terminal.key_kind()).expect("key");
    let mut sub = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "Rogue Sub CA");
    sub.distinguished_name = dn;
    sub.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    sub.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    sub.use_authority_key_identifier_extension = true;
    let sub_der = sub.signed_by(&sub_key, &auth_ca).expect("sub").der().to_vec();
    let sub_issuer = Issuer::new(sub, sub_key);
    let (leaf_key, _) = hpki_ca::keys::generate(CaRole::Terminal.key_kind()).expect("key");
    let mut p = CertificateParams::default();
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.use_authority_key_identifier_extension = true;
    let leaf = p.signed_by(&leaf_key, &sub_issuer).expect("leaf").der().to_vec();
    let crls = f.crls();
    let v = validator_for(&f.ca, crls, AcceptedPolicies::hpki().with_test_policies(), Revocation::NotChecked);
    let err = v.validate(&leaf, &[sub_der], Purpose::Authentication, now()).unwrap_err();
    assert!(matches!(&err, Refusal::PathTooLong { limit: 0, below: 1, .. }), "{err:?}");
}

#[test]
fn garbage_is_a_malformed_certificate_not_a_panic() {
    let mut f = fixture();
    let crls = f.crls();
    let v = f.validator(crls);
    for bytes in [&b""[..], b"\x30\x03\x02\x01\x01", b"-----BEGIN CERTIFICATE-----"] {
        assert_eq!(v.validate(bytes, &[], Purpose::Authentication, now()).unwrap_err().code(), "malformed_certificate");
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("openssl").args(args).current_dir(dir).output().expect("openssl runs");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A root and a leaf made by OpenSSL with the given key and signature
/// options; `leaf_ext` is the leaf's extension section (plus any sections it
/// refers to). Returns (root DER, leaf DER).
fn openssl_chain(dir: &Path, key: &[&str], sig: &[&str], leaf_ext: &str, leaf_subject: &str) -> (Vec<u8>, Vec<u8>) {
    std::fs::write(
        dir.join("ext.cnf"),
        format!(
            "[req]\ndistinguished_name=dn\n[dn]\n\
             [ca]\nbasicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign,cRLSign\n\
             subjectKeyIdentifier=hash\n\
             [leaf]\nauthorityKeyIdentifier=keyid\n{leaf_ext}\n"
        ),
    )
    .expect("write");
    let genkey = |name: &str| {
        let mut a = vec!["genpkey", "-out", name];
        a.extend_from_slice(key);
        openssl(dir, &a);
    };
    genkey("root.key");
    genkey("leaf.key");
    let mut a = vec![
        "req",
        "-x509",
        "-new",
        "-key",
        "root.key",
        "-subj",
        "/C=JP/O=OpenSSL Test Root",
        "-days",
        "30",
        "-config",
        "ext.cnf",
        "-extensions",
        "ca",
        "-outform",
        "DER",
        "-out",
        "root.der",
    ];
    a.extend_from_slice(sig);
    openssl(dir, &a);
    openssl(dir, &["req", "-new", "-key", "leaf.key", "-subj", leaf_subject, "-config", "ext.cnf", "-out", "leaf.csr"]);
    let mut a = vec![
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "root.der",
        "-CAkey",
        "root.key",
        "-days",
        "10",
        "-set_serial",
        "7",
        "-extfile",
        "ext.cnf",
        "-extensions",
        "leaf",
        "-outform",
        "DER",
        "-out",
        "leaf.der",
    ];
    a.extend_from_slice(sig);
    openssl(dir, &a);
    (std::fs::read(dir.join("root.der")).expect("root"), std::fs::read(dir.join("leaf.der")).expect("leaf"))
}

fn anchored_validator(root: Vec<u8>, policies: AcceptedPolicies) -> Validator {
    Validator::new(ValidatorConfig {
        scopes: licensed(&root),
        anchors: vec![root],
        intermediates: vec![],
        crls: vec![],
        policies,
        revocation: Revocation::NotChecked,
        max_intermediates: DEFAULT_MAX_INTERMEDIATES,
    })
    .expect("validator")
}

fn openssl_verdict(key: &[&str], sig: &[&str]) -> Result<(), Refusal> {
    let tmp = tempfile::tempdir().expect("tempdir");
    let leaf_ext = format!(
        "keyUsage=critical,digitalSignature\ncertificatePolicies=critical,{}",
        oid::TEST_HPKI_AUTHENTICATION_POLICY
    );
    let (root, leaf) = openssl_chain(tmp.path(), key, sig, &leaf_ext, "/CN=OpenSSL Leaf");
    anchored_validator(root, AcceptedPolicies::hpki().with_test_policies())
        .validate(&leaf, &[], Purpose::Authentication, now())
        .map(drop)
}

const RSA: &[&str] = &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"];

#[test]
fn openssl_signed_chains_verify_for_every_accepted_algorithm() {
    let p256: &[&str] = &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"];
    let p384: &[&str] = &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"];
    let cases: [(&str, &[&str], &[&str]); 8] = [
        ("RSA PKCS#1 SHA-256", RSA, &["-sha256"]),
        ("RSA PKCS#1 SHA-384", RSA, &["-sha384"]),
        ("RSA PKCS#1 SHA-512", RSA, &["-sha512"]),
        ("RSA-PSS SHA-256", RSA, &["-sha256", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"]),
        ("RSA-PSS SHA-384", RSA, &["-sha384", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"]),
        ("RSA-PSS SHA-512", RSA, &["-sha512", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"]),
        ("ECDSA P-256 SHA-256", p256, &["-sha256"]),
        ("ECDSA P-384 SHA-384", p384, &["-sha384"]),
    ];
    for (name, key, sig) in cases {
        openssl_verdict(key, sig).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn sha1_signatures_are_refused() {
    let err = openssl_verdict(RSA, &["-sha1"]).unwrap_err();
    assert_eq!(err.code(), "unsupported_algorithm", "{err}");
    assert!(err.to_string().contains("sha1WithRSAEncryption"), "{err}");
}

/// A certificate shaped like a real HPKI signature certificate, made by
/// OpenSSL: the real policy OID, critical, with a CPS qualifier; keyUsage
/// nonRepudiation only; hcRole. Accepted with the real policies only.
#[test]
fn real_hpki_signature_profile_validates_with_the_real_policy_only() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let hc_role = hpki_profile::hcrole::encode(Profession::Pharmacist);
    let hc_hex: String = hc_role.iter().map(|b| format!("{b:02X}")).collect();
    let leaf_ext = format!(
        "keyUsage=critical,nonRepudiation\ncertificatePolicies=critical,@hpki\n2.5.29.9=DER:{hc_hex}\n\
         [hpki]\npolicyIdentifier={}\nCPS.1=\"https://www.medis.or.jp/8_hpki/\"",
        oid::HPKI_SIGNATURE_POLICY
    );
    let (root, leaf) = openssl_chain(
        tmp.path(),
        RSA,
        &["-sha256"],
        &leaf_ext,
        "/C=JP/O=Kanazawa Pharmacy/CN=Kobayashi Mai/serialNumber=PH-777",
    );
    let v = anchored_validator(root, AcceptedPolicies::hpki());
    let ok = v.validate(&leaf, &[], Purpose::Signature, now()).expect("the real profile validates");
    assert_eq!(ok.holder.profession(), Some(Profession::Pharmacist));
    assert_eq!(ok.holder.serial_number.as_deref(), Some("PH-777"));
    assert_eq!(v.validate(&leaf, &[], Purpose::Authentication, now()).unwrap_err().code(), "wrong_key_usage");
}
