//! `records export`: a record's signed document (the exact bytes the
//! doctor's card signed, decrypted) and its latest signature container,
//! for a verifier outside the gateway (OpenSSL, a CAdES validator).

use crate::domain::keyring::Keyring;
use crate::store::{SealedTable, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("no record {0:?}")]
    UnknownRecord(String),
    #[error("record {0:?} has no signature container (a note, or confirmed before signed records)")]
    Unsigned(String),
    #[error("record {0:?} cannot be decrypted: {1}")]
    Decrypt(String, crate::domain::keyring::KeyError),
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// A record's document and container.
pub struct SignedRecord {
    pub id: String,
    pub document: Vec<u8>,
    /// The newest container (`record_signatures`, highest seq).
    pub container: Vec<u8>,
    /// Its seq: a renewal stores the next.
    pub seq: i64,
    pub level: String,
}

pub async fn signed_record(store: &Store, keys: &Keyring, id: &str) -> Result<SignedRecord, ExportError> {
    let record = store.record(id).await?.ok_or_else(|| ExportError::UnknownRecord(id.into()))?;
    let newest = store.record_signatures(id).await?.pop().ok_or_else(|| ExportError::Unsigned(id.into()))?;
    let document = keys
        .open(&record.key_id, &SealedTable::Records.aad(id), &record.content)
        .map_err(|e| ExportError::Decrypt(id.into(), e))?;
    Ok(SignedRecord {
        id: id.into(),
        document: document.to_vec(),
        container: newest.container,
        seq: newest.seq,
        level: newest.level,
    })
}
