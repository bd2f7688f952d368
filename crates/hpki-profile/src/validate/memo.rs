//! Signature checks remembered across validations.
//!
//! A CA certificate or a CRL is checked against its issuer's key once; a
//! later validation through the same CA reuses the answer. End-entity
//! certificates are not remembered here (see `path.rs`). The key is the
//! digest of the signed object and of the issuer's subjectPublicKeyInfo,
//! so the answer is a pure function of its key and can never be wrong for
//! another object or another key.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use crate::signature::{PublicKey, SignatureAlgorithm, verify_with};

/// Bounded: when full it starts over (a hostile stream of new objects
/// costs memory up to this many entries, never more).
const CAPACITY: usize = 4096;

/// (digest of the signed object, digest of the signer's key).
type Key = ([u8; 32], [u8; 32]);

#[derive(Default)]
pub(crate) struct SignatureMemo {
    checked: Mutex<HashMap<Key, bool>>,
}

impl SignatureMemo {
    /// Whether `signature` by `key` covers `message`, the object whose DER
    /// digest is `object`.
    pub fn verify(
        &self,
        object: [u8; 32],
        key_digest: [u8; 32],
        key: &PublicKey,
        algorithm: SignatureAlgorithm,
        signature: &[u8],
        message: &[u8],
    ) -> bool {
        let k = (object, key_digest);
        if let Some(ok) = self.checked.lock().unwrap_or_else(PoisonError::into_inner).get(&k) {
            return *ok;
        }
        let ok = verify_with(key, algorithm, signature, message).is_ok();
        let mut map = self.checked.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= CAPACITY {
            map.clear();
        }
        map.insert(k, ok);
        ok
    }
}
