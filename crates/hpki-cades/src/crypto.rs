//! Digests and signature checks with ring, keyed by the algorithm
//! identifiers CMS carries.

use der::Encode;
use der::oid::ObjectIdentifier;
use ring::digest;
use ring::signature::{self, UnparsedPublicKey};
use x509_cert::Certificate;

use crate::CadesError;
use crate::oid;

/// The digest algorithms accepted in signatures and imprints.
pub(crate) fn digest_of(alg: &ObjectIdentifier, data: &[u8]) -> Result<Vec<u8>, CadesError> {
    let algorithm = match *alg {
        oid::ID_SHA_256 => &digest::SHA256,
        oid::ID_SHA_384 => &digest::SHA384,
        oid::ID_SHA_512 => &digest::SHA512,
        other => return Err(CadesError::Algorithm(format!("digest {other}"))),
    };
    Ok(digest::digest(algorithm, data).as_ref().to_vec())
}

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, data).as_ref());
    out
}

pub(crate) fn sha1(data: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, data).as_ref().to_vec()
}

/// Checks `sig` over `message` with `cert`'s key. `signature_alg` is the
/// SignerInfo's signatureAlgorithm, `digest_alg` its digestAlgorithm: CMS
/// allows rsaEncryption with the digest named separately.
pub(crate) fn verify(
    cert: &Certificate,
    digest_alg: &ObjectIdentifier,
    signature_alg: &ObjectIdentifier,
    message: &[u8],
    sig: &[u8],
) -> Result<(), CadesError> {
    let rsa = |d: &ObjectIdentifier| -> Result<&'static dyn signature::VerificationAlgorithm, CadesError> {
        Ok(match *d {
            oid::ID_SHA_256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            oid::ID_SHA_384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            oid::ID_SHA_512 => &signature::RSA_PKCS1_2048_8192_SHA512,
            other => return Err(CadesError::Algorithm(format!("RSA with digest {other}"))),
        })
    };
    let algorithm: &'static dyn signature::VerificationAlgorithm = match *signature_alg {
        oid::RSA_ENCRYPTION => rsa(digest_alg)?,
        oid::SHA_256_WITH_RSA_ENCRYPTION => rsa(&oid::ID_SHA_256)?,
        oid::SHA_384_WITH_RSA_ENCRYPTION => rsa(&oid::ID_SHA_384)?,
        oid::SHA_512_WITH_RSA_ENCRYPTION => rsa(&oid::ID_SHA_512)?,
        oid::ECDSA_WITH_SHA_256 => &signature::ECDSA_P256_SHA256_ASN1,
        oid::ECDSA_WITH_SHA_384 => &signature::ECDSA_P384_SHA384_ASN1,
        other => return Err(CadesError::Algorithm(format!("signature {other}"))),
    };
    let spki = &cert.tbs_certificate.subject_public_key_info;
    let key = spki.subject_public_key.as_bytes().ok_or(CadesError::BadSignature)?;
    UnparsedPublicKey::new(algorithm, key).verify(message, sig).map_err(|_| CadesError::BadSignature)
}

/// DER of a certificate, for hashes and for handing it to path validation.
pub(crate) fn cert_der(cert: &Certificate) -> Result<Vec<u8>, CadesError> {
    cert.to_der().map_err(CadesError::der("certificate"))
}
