//! Throwaway card certificates for card-layer tests and the demo: one
//! ECDSA test CA and RSA-2048 keys for the two applications of a card.
//!
//! These are not HPKI-profile certificates (no hcRole, no HPKI policies);
//! the IT-staff tool `hpki-certs` issues those.

use anyhow::Context;
use hpki_card::CardVariant;
use rcgen::{
    CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
    PKCS_RSA_SHA256,
};
use rsa::pkcs8::EncodePrivateKey;
use rsa::rand_core::OsRng;
use virtual_card::{AppImage, CardImage};

/// A card image with fresh keys and certificates for `holder`.
pub fn test_card(variant: CardVariant, holder: &str, pin: &str, retry_limit: u8) -> anyhow::Result<CardImage> {
    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name = dn("Test Card CA (throwaway)");
    ca.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let issuer = rcgen::Issuer::new(ca, ca_key);

    let app = |usage: KeyUsagePurpose| -> anyhow::Result<AppImage> {
        let key = rsa::RsaPrivateKey::new(&mut OsRng, 2048).context("RSA key generation")?;
        let pkcs8 = key.to_pkcs8_der().context("PKCS#8 encoding")?.as_bytes().to_vec();
        let public = KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8.as_slice().into(), &PKCS_RSA_SHA256)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(holder);
        params.key_usages = vec![usage];
        let cert = params.signed_by(&public, &issuer)?;
        Ok(AppImage::new(cert.der().to_vec(), pkcs8, pin, retry_limit))
    };
    let mut image =
        CardImage::new(variant, app(KeyUsagePurpose::DigitalSignature)?, app(KeyUsagePurpose::ContentCommitment)?);
    image.label = holder.to_string();
    image.validate()?;
    Ok(image)
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "JP");
    dn.push(DnType::CommonName, cn);
    dn
}

/// Verifies an RSA PKCS#1 v1.5 SHA-256 signature with ring against the
/// public key of a DER certificate.
pub fn verify_with_certificate(cert_der: &[u8], message: &[u8], signature: &[u8]) -> anyhow::Result<()> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).context("certificate")?;
    let spk = &cert.public_key().subject_public_key.data;
    ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, spk)
        .verify(message, signature)
        .map_err(|_| anyhow::anyhow!("signature does not verify against the certificate's key"))
}
