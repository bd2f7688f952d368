//! Signature checks on certificates and CRLs, with ring.
//!
//! Accepted: RSA PKCS#1 v1.5 and RSASSA-PSS with SHA-256/384/512 (RSA
//! 2048–8192 bits), ECDSA with SHA-256/384 on P-256/P-384. SHA-1 and
//! anything else are refused by name.
//!
//! Keys and algorithms are resolved once into owned values ([`PublicKey`],
//! [`SignatureAlgorithm`]) so that a validator can keep its CA certificates
//! and CRLs parsed and check a signature without parsing anything again.

use ring::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
use x509_parser::public_key::PublicKey as ParsedKey;
use x509_parser::signature_algorithm::SignatureAlgorithm as ParsedAlgorithm;
use x509_parser::x509::{AlgorithmIdentifier, SubjectPublicKeyInfo};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("signature algorithm {0} is not accepted")]
    Unsupported(String),
    /// The key itself, described ("an RSA key of 1024 bits").
    #[error("{0} is not accepted")]
    UnsupportedKey(String),
    #[error("the signature does not verify")]
    Invalid,
}

const SHA256: &str = "2.16.840.1.101.3.4.2.1";
const SHA384: &str = "2.16.840.1.101.3.4.2.2";
const SHA512: &str = "2.16.840.1.101.3.4.2.3";
const P256: &str = "1.2.840.10045.3.1.7";
const P384: &str = "1.3.132.0.34";
const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

/// What kind of key a certificate certifies, as far as verification cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA with its modulus length in bits.
    Rsa {
        bits: usize,
    },
    EcP256,
    EcP384,
}

/// A certified public key that this module can verify with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub kind: KeyKind,
    /// The subjectPublicKey BIT STRING contents, as ring takes them.
    pub bytes: Vec<u8>,
}

impl PublicKey {
    /// Reads a key, refusing what no accepted algorithm could verify with
    /// (RSA below 2048 or above 8192 bits or not a whole number of bytes,
    /// other curves, explicit curve parameters, DSA, …).
    pub fn from_spki(spki: &SubjectPublicKeyInfo<'_>) -> Result<PublicKey, SignatureError> {
        let alg = spki.algorithm.algorithm.to_id_string();
        let bytes = spki.subject_public_key.data.to_vec();
        let kind = match alg.as_str() {
            RSA_ENCRYPTION => {
                let Ok(ParsedKey::RSA(rsa)) = spki.parsed() else {
                    return Err(SignatureError::UnsupportedKey("a malformed RSA key".into()));
                };
                let modulus: Vec<u8> = rsa.modulus.iter().copied().skip_while(|b| *b == 0).collect();
                let bits = modulus.first().map_or(0, |b| modulus.len() * 8 - b.leading_zeros() as usize);
                if !(2048..=8192).contains(&bits) || !bits.is_multiple_of(8) {
                    return Err(SignatureError::UnsupportedKey(format!("an RSA key of {bits} bits")));
                }
                KeyKind::Rsa { bits }
            }
            EC_PUBLIC_KEY => {
                let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok()).map(|o| o.to_id_string());
                match curve.as_deref() {
                    Some(P256) => KeyKind::EcP256,
                    Some(P384) => KeyKind::EcP384,
                    Some(other) => return Err(SignatureError::UnsupportedKey(format!("an EC key on curve {other}"))),
                    None => {
                        return Err(SignatureError::UnsupportedKey("an EC key with explicit curve parameters".into()));
                    }
                }
            }
            other => return Err(SignatureError::UnsupportedKey(format!("a key of type {}", algorithm_name(other)))),
        };
        Ok(PublicKey { kind, bytes })
    }
}

/// A signature algorithm with its parameters checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    RsaPkcs1(Hash),
    /// MGF1 over the same hash and a salt as long as the hash: the one
    /// combination ring verifies and every profile uses.
    RsaPss(Hash),
    Ecdsa(Hash),
}

impl SignatureAlgorithm {
    pub fn from_identifier(algorithm: &AlgorithmIdentifier<'_>) -> Result<SignatureAlgorithm, SignatureError> {
        let id = algorithm.algorithm.to_id_string();
        let unsupported = || SignatureError::Unsupported(algorithm_name(&id).to_owned());
        // PKCS#1 v1.5 parameters are NULL or absent; anything else is not
        // the algorithm it names.
        let rsa_params_ok =
            algorithm.parameters.as_ref().is_none_or(|p| p.tag() == x509_parser::der_parser::asn1_rs::Tag::Null);
        Ok(match id.as_str() {
            "1.2.840.113549.1.1.11" if rsa_params_ok => SignatureAlgorithm::RsaPkcs1(Hash::Sha256),
            "1.2.840.113549.1.1.12" if rsa_params_ok => SignatureAlgorithm::RsaPkcs1(Hash::Sha384),
            "1.2.840.113549.1.1.13" if rsa_params_ok => SignatureAlgorithm::RsaPkcs1(Hash::Sha512),
            "1.2.840.113549.1.1.10" => {
                let Ok(ParsedAlgorithm::RSASSA_PSS(params)) = ParsedAlgorithm::try_from(algorithm) else {
                    return Err(unsupported());
                };
                let hash = params.hash_algorithm_oid().to_id_string();
                let mgf_hash = params
                    .mask_gen_algorithm()
                    .ok()
                    .map(|m| m.hash.to_id_string())
                    .unwrap_or_else(|| "1.3.14.3.2.26".into());
                let (h, salt) = match hash.as_str() {
                    SHA256 => (Hash::Sha256, 32),
                    SHA384 => (Hash::Sha384, 48),
                    SHA512 => (Hash::Sha512, 64),
                    _ => {
                        return Err(SignatureError::Unsupported(format!("RSASSA-PSS with {}", algorithm_name(&hash))));
                    }
                };
                if mgf_hash != hash || params.salt_length() != salt {
                    return Err(SignatureError::Unsupported(format!(
                        "RSASSA-PSS with {} but MGF1 hash {} and salt length {}",
                        algorithm_name(&hash),
                        algorithm_name(&mgf_hash),
                        params.salt_length()
                    )));
                }
                SignatureAlgorithm::RsaPss(h)
            }
            "1.2.840.10045.4.3.2" if algorithm.parameters.is_none() => SignatureAlgorithm::Ecdsa(Hash::Sha256),
            "1.2.840.10045.4.3.3" if algorithm.parameters.is_none() => SignatureAlgorithm::Ecdsa(Hash::Sha384),
            _ => return Err(unsupported()),
        })
    }

    /// Whether a key of this kind can make signatures of this algorithm.
    pub fn fits(self, key: KeyKind) -> bool {
        self.ring(key).is_some()
    }

    fn ring(self, key: KeyKind) -> Option<&'static dyn VerificationAlgorithm> {
        use Hash::*;
        use SignatureAlgorithm::*;
        Some(match (self, key) {
            (RsaPkcs1(Sha256), KeyKind::Rsa { .. }) => &sig::RSA_PKCS1_2048_8192_SHA256,
            (RsaPkcs1(Sha384), KeyKind::Rsa { .. }) => &sig::RSA_PKCS1_2048_8192_SHA384,
            (RsaPkcs1(Sha512), KeyKind::Rsa { .. }) => &sig::RSA_PKCS1_2048_8192_SHA512,
            (RsaPss(Sha256), KeyKind::Rsa { .. }) => &sig::RSA_PSS_2048_8192_SHA256,
            (RsaPss(Sha384), KeyKind::Rsa { .. }) => &sig::RSA_PSS_2048_8192_SHA384,
            (RsaPss(Sha512), KeyKind::Rsa { .. }) => &sig::RSA_PSS_2048_8192_SHA512,
            (Ecdsa(Sha256), KeyKind::EcP256) => &sig::ECDSA_P256_SHA256_ASN1,
            (Ecdsa(Sha384), KeyKind::EcP256) => &sig::ECDSA_P256_SHA384_ASN1,
            (Ecdsa(Sha256), KeyKind::EcP384) => &sig::ECDSA_P384_SHA256_ASN1,
            (Ecdsa(Sha384), KeyKind::EcP384) => &sig::ECDSA_P384_SHA384_ASN1,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        use Hash::*;
        use SignatureAlgorithm::*;
        match self {
            RsaPkcs1(Sha256) => "sha256WithRSAEncryption",
            RsaPkcs1(Sha384) => "sha384WithRSAEncryption",
            RsaPkcs1(Sha512) => "sha512WithRSAEncryption",
            RsaPss(_) => "RSASSA-PSS",
            Ecdsa(Sha256) => "ecdsa-with-SHA256",
            Ecdsa(Sha384) => "ecdsa-with-SHA384",
            Ecdsa(Sha512) => "ecdsa-with-SHA512",
        }
    }
}

/// Verifies `signature` over `message` with `key`.
pub fn verify_with(
    key: &PublicKey,
    algorithm: SignatureAlgorithm,
    signature: &[u8],
    message: &[u8],
) -> Result<(), SignatureError> {
    let alg = algorithm.ring(key.kind).ok_or_else(|| {
        SignatureError::Unsupported(format!("{} with a key of kind {:?}", algorithm.name(), key.kind))
    })?;
    UnparsedPublicKey::new(alg, &key.bytes).verify(message, signature).map_err(|_| SignatureError::Invalid)
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
        "1.2.840.10040.4.1" => "DSA",
        "1.2.840.10040.4.3" => "dsa-with-SHA1",
        "2.16.840.1.101.3.4.3.2" => "dsa-with-SHA256",
        "1.3.101.112" => "Ed25519",
        "1.3.14.3.2.26" => "SHA-1",
        RSA_ENCRYPTION => "rsaEncryption",
        EC_PUBLIC_KEY => "id-ecPublicKey",
        SHA256 => "SHA-256",
        SHA384 => "SHA-384",
        SHA512 => "SHA-512",
        other => other,
    }
}
