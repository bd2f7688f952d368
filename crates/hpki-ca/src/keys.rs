//! Key pairs: RSA-2048 like the real HPKI hierarchy and cards, ECDSA P-256
//! for TLS terminals. Private keys are written with mode 0600.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256, SignatureAlgorithm};
use rsa::pkcs8::EncodePrivateKey;

use crate::error::CaError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa2048,
    EcdsaP256,
}

impl KeyKind {
    pub fn algorithm(self) -> &'static SignatureAlgorithm {
        match self {
            KeyKind::Rsa2048 => &PKCS_RSA_SHA256,
            KeyKind::EcdsaP256 => &PKCS_ECDSA_P256_SHA256,
        }
    }
}

/// A fresh key pair and its PKCS#8 DER.
pub fn generate(kind: KeyKind) -> Result<(KeyPair, Vec<u8>), CaError> {
    match kind {
        KeyKind::Rsa2048 => {
            // ring cannot generate RSA keys; the rsa crate generates, ring
            // signs (the rsa crate's private-key operations are not used).
            let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
                .map_err(|e| CaError::KeyGeneration(e.to_string()))?;
            let der = key.to_pkcs8_der().map_err(|e| CaError::KeyGeneration(e.to_string()))?.as_bytes().to_vec();
            let pair = KeyPair::from_pkcs8_der_and_sign_algo(&der.as_slice().into(), kind.algorithm())?;
            Ok((pair, der))
        }
        KeyKind::EcdsaP256 => {
            let pair = KeyPair::generate_for(kind.algorithm())?;
            let der = pair.serialize_der();
            Ok((pair, der))
        }
    }
}

pub fn load(path: &Path, kind: KeyKind) -> Result<KeyPair, CaError> {
    let pem = std::fs::read_to_string(path).map_err(CaError::io(path))?;
    KeyPair::from_pem_and_sign_algo(&pem, kind.algorithm())
        .map_err(|e| CaError::Corrupt { path: path.into(), detail: format!("not a {kind:?} private key: {e}") })
}

/// Writes a file readable by its owner only (created new, never replaced).
pub fn write_private(path: &Path, content: &[u8]) -> Result<(), CaError> {
    let mut f =
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(CaError::io(path))?;
    f.write_all(content).map_err(CaError::io(path))?;
    f.sync_all().map_err(CaError::io(path))
}

pub fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
