//! Signature checks on certificates and CRLs, with ring.
//!
//! Accepted: RSA PKCS#1 v1.5 and RSASSA-PSS with SHA-256/384/512 (RSA
//! 2048–8192 bits), ECDSA with SHA-256/384 on P-256/P-384. SHA-1 and
//! anything else are refused by name.

use ring::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
use x509_parser::signature_algorithm::SignatureAlgorithm;
use x509_parser::x509::{AlgorithmIdentifier, SubjectPublicKeyInfo};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("signature algorithm {0} is not accepted")]
    Unsupported(String),
    #[error("the signature does not verify")]
    Invalid,
}

const SHA256: &str = "2.16.840.1.101.3.4.2.1";
const SHA384: &str = "2.16.840.1.101.3.4.2.2";
const SHA512: &str = "2.16.840.1.101.3.4.2.3";
const P256: &str = "1.2.840.10045.3.1.7";
const P384: &str = "1.3.132.0.34";

/// Verifies `signature` over `message` with the key in `spki`.
pub fn verify(
    spki: &SubjectPublicKeyInfo<'_>,
    algorithm: &AlgorithmIdentifier<'_>,
    signature: &[u8],
    message: &[u8],
) -> Result<(), SignatureError> {
    let alg = ring_algorithm(spki, algorithm)?;
    UnparsedPublicKey::new(alg, &spki.subject_public_key.data)
        .verify(message, signature)
        .map_err(|_| SignatureError::Invalid)
}

fn ring_algorithm(
    spki: &SubjectPublicKeyInfo<'_>,
    algorithm: &AlgorithmIdentifier<'_>,
) -> Result<&'static dyn VerificationAlgorithm, SignatureError> {
    let id = algorithm.algorithm.to_id_string();
    let unsupported = || SignatureError::Unsupported(algorithm_name(&id).to_owned());
    let key_is_rsa = spki.algorithm.algorithm.to_id_string() == "1.2.840.113549.1.1.1";
    let curve = || spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok()).map(|o| o.to_id_string());
    Ok(match id.as_str() {
        "1.2.840.113549.1.1.11" if key_is_rsa => &sig::RSA_PKCS1_2048_8192_SHA256,
        "1.2.840.113549.1.1.12" if key_is_rsa => &sig::RSA_PKCS1_2048_8192_SHA384,
        "1.2.840.113549.1.1.13" if key_is_rsa => &sig::RSA_PKCS1_2048_8192_SHA512,
        "1.2.840.113549.1.1.10" if key_is_rsa => {
            let Ok(SignatureAlgorithm::RSASSA_PSS(params)) = SignatureAlgorithm::try_from(algorithm) else {
                return Err(unsupported());
            };
            let hash = params.hash_algorithm_oid().to_id_string();
            // ring verifies PSS with MGF1 over the same hash and a salt as
            // long as the hash, the combination every profile uses.
            let mgf_hash = params
                .mask_gen_algorithm()
                .ok()
                .map(|m| m.hash.to_id_string())
                .unwrap_or_else(|| "1.3.14.3.2.26".into());
            let (alg, salt): (&'static dyn VerificationAlgorithm, u32) = match hash.as_str() {
                SHA256 => (&sig::RSA_PSS_2048_8192_SHA256, 32),
                SHA384 => (&sig::RSA_PSS_2048_8192_SHA384, 48),
                SHA512 => (&sig::RSA_PSS_2048_8192_SHA512, 64),
                _ => return Err(SignatureError::Unsupported(format!("RSASSA-PSS with {}", algorithm_name(&hash)))),
            };
            if mgf_hash != hash || params.salt_length() != salt {
                return Err(SignatureError::Unsupported(format!(
                    "RSASSA-PSS with {} but MGF1 hash {} and salt length {}",
                    algorithm_name(&hash),
                    algorithm_name(&mgf_hash),
                    params.salt_length()
                )));
            }
            alg
        }
        "1.2.840.10045.4.3.2" => match curve().as_deref() {
            Some(P256) => &sig::ECDSA_P256_SHA256_ASN1,
            Some(P384) => &sig::ECDSA_P384_SHA256_ASN1,
            _ => return Err(unsupported()),
        },
        "1.2.840.10045.4.3.3" => match curve().as_deref() {
            Some(P256) => &sig::ECDSA_P256_SHA384_ASN1,
            Some(P384) => &sig::ECDSA_P384_SHA384_ASN1,
            _ => return Err(unsupported()),
        },
        _ => return Err(unsupported()),
    })
}

/// A readable name for a signature or hash algorithm OID.
pub fn algorithm_name(oid: &str) -> &str {
    match oid {
        "1.2.840.113549.1.1.5" | "1.3.14.3.2.29" => "sha1WithRSAEncryption",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.113549.1.1.10" => "RSASSA-PSS",
        "1.2.840.10045.4.1" => "ecdsa-with-SHA1",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "1.3.101.112" => "Ed25519",
        "1.3.14.3.2.26" => "SHA-1",
        SHA256 => "SHA-256",
        SHA384 => "SHA-384",
        SHA512 => "SHA-512",
        other => other,
    }
}
