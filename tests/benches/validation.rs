//! HPKI path validation throughput, next to the raw RSA-2048 verify rate of
//! this machine measured in the same run (ring, and `openssl speed` when
//! OpenSSL is installed).
//!
//! Run with `make bench-validation` (release build).

use std::time::{Duration, Instant};

use anyhow::Result;
use hpki_ca::{CaDir, CaRole, CardRequest};
use hpki_card::CardVariant;
use hpki_profile::{
    AcceptedPolicies, DEFAULT_MAX_INTERMEDIATES, Profession, Purpose, Revocation, TrustScope, Validator,
    ValidatorConfig,
};
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair, UnparsedPublicKey};

/// Runs `op` repeatedly for about `budget`; returns operations per second.
fn rate(budget: Duration, mut op: impl FnMut() -> Duration) -> f64 {
    let mut spent = Duration::ZERO;
    let mut n = 0u64;
    while spent < budget {
        spent += op();
        n += 1;
    }
    n as f64 / spent.as_secs_f64()
}

fn openssl_rsa2048_verify_rate() -> Option<f64> {
    let out = std::process::Command::new("openssl").args(["speed", "-seconds", "3", "rsa2048"]).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "rsa 2048 bits 0.000511s 0.000015s   1957.3  65573.6"
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("rsa 2048 bits") || l.trim_start().starts_with("rsa  2048 bits"))?;
    line.split_whitespace().last()?.parse().ok()
}

fn main() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut ca = CaDir::init(&tmp.path().join("ca"), hpki_ca::DEFAULT_CRL_BASE_URL)?;
    let image_path = tmp.path().join("doctor.json");
    ca.issue_card(
        &CardRequest {
            profession: Profession::Doctor,
            name: "Bench Doctor".into(),
            name_kanji: Some("試験医師".into()),
            institution: Some("Bench Clinic".into()),
            institution_kanji: None,
            license_no: "424242".into(),
            verified_by: "bench".into(),
            pin: "4826".into(),
            variant: CardVariant::Jma,
            retry_limit: 5,
            valid_days: 365,
        },
        &image_path,
    )?;
    let crl_dir = tmp.path().join("crl");
    ca.publish_crls(&crl_dir, time::Duration::days(4))?;
    let image = virtual_card::CardImage::load(&image_path)?;
    let leaf = image.authentication.certificate.clone();
    let config = || -> Result<ValidatorConfig> {
        Ok(ValidatorConfig {
            anchors: vec![ca.ca_cert_der(CaRole::Root)?],
            intermediates: vec![ca.ca_cert_der(CaRole::HpkiAuth)?, ca.ca_cert_der(CaRole::HpkiSign)?],
            crls: ["root", "hpki-auth", "hpki-sign"]
                .iter()
                .map(|n| std::fs::read(crl_dir.join(format!("{n}.crl"))))
                .collect::<Result<_, _>>()?,
            policies: AcceptedPolicies::hpki().with_test_policies(),
            revocation: Revocation::Required,
            scopes: vec![TrustScope { ca: ca.ca_cert_der(CaRole::HpkiAuth)?, grant: CaRole::HpkiAuth.grant() }],
            max_intermediates: DEFAULT_MAX_INTERMEDIATES,
        })
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let budget = Duration::from_secs(3);

    // Raw RSA-2048 PKCS#1 v1.5 SHA-256 verify with ring, the card's own key.
    let key = RsaKeyPair::from_pkcs8(&image.authentication.private_key).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut sig = vec![0u8; key.public().modulus_len()];
    key.sign(&RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), b"challenge", &mut sig)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let spki = {
        let (_, cert) = x509_parser::parse_x509_certificate(&leaf)?;
        cert.public_key().subject_public_key.data.to_vec()
    };
    let public = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, spki);
    let raw = rate(budget, || {
        let t = Instant::now();
        assert!(public.verify(b"challenge", &sig).is_ok());
        t.elapsed()
    });

    // First: a validator that has seen nothing (built outside the timing):
    // all four signatures checked (leaf, CA certificate, both CRLs).
    let first = rate(budget, || {
        let v = Validator::new(config().expect("config")).expect("validator");
        let t = Instant::now();
        let r = v.validate(&leaf, &[], Purpose::Authentication, now).expect("valid");
        let d = t.elapsed();
        assert!(!r.from_cache);
        d
    });

    // Cold: a certificate not in the result cache (a card the gateway has
    // not seen), through a validator that has checked its CA certificate
    // and CRLs before: the whole pipeline, one RSA verify for the leaf.
    let warm = Validator::new(config()?)?;
    warm.validate(&leaf, &[], Purpose::Authentication, now)?;
    let cold = rate(budget, || {
        let t = Instant::now();
        let r = warm.validate_uncached(&leaf, &[], Purpose::Authentication, now).expect("valid");
        let d = t.elapsed();
        assert!(!r.from_cache);
        d
    });

    // Cached: the repeat login.
    let v = Validator::new(config()?)?;
    v.validate(&leaf, &[], Purpose::Authentication, now)?;
    let cached = rate(budget, || {
        let t = Instant::now();
        let r = v.validate(&leaf, &[], Purpose::Authentication, now).expect("valid");
        let d = t.elapsed();
        assert!(r.from_cache);
        d
    });

    println!("HPKI path validation (RSA-2048 chain: leaf, HPKI auth CA, root; 2 CRLs checked), one core");
    println!("raw RSA-2048 verify, ring        : {:>10.0} /s  ({:.1} µs)", raw, 1e6 / raw);
    if let Some(o) = openssl_rsa2048_verify_rate() {
        println!("raw RSA-2048 verify, openssl     : {o:>10.0} /s  ({:.1} µs)", 1e6 / o);
    }
    println!(
        "validation, first (nothing seen) : {:>10.0} /s  ({:.1} µs) = {:.1}x one raw verify  (4 signatures)",
        first,
        1e6 / first,
        raw / first
    );
    println!(
        "validation, cold (new card)      : {:>10.0} /s  ({:.1} µs) = {:.1}x one raw verify  [goal: <= 4x]",
        cold,
        1e6 / cold,
        raw / cold
    );
    println!(
        "validation, cached               : {:>10.0} /s  ({:.1} µs) = {:.2}x one raw verify  [goal: <= 2x]",
        cached,
        1e6 / cached,
        raw / cached
    );
    Ok(())
}
