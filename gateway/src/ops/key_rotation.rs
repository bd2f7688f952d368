//! `hpki-gateway admin rotate-key` (DATA-1): a fresh record key becomes
//! current and every sealed draft and record is re-encrypted under it.
//!
//! Running gateways pick the new key file up within seconds (they watch it);
//! until then they may still seal with the old key, so the pass repeats
//! until a pass, after the gateways' reload interval, finds nothing left.

use std::path::Path;
use std::time::Duration;

use crate::domain::keyring::{KeyError, Keyring};
use crate::store::{SealedTable, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{table} row {id} does not open with key {key}: {source}")]
    Open { table: &'static str, id: String, key: String, source: KeyError },
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RotateReport {
    pub new_key: String,
    pub drafts: u64,
    pub records: u64,
    pub corrections: u64,
}

/// Adds a key, then re-encrypts until nothing is sealed under an old key.
pub async fn rotate(path: &Path, store: &Store, now: i64, settle: Duration) -> Result<RotateReport, RotateError> {
    let new_key = Keyring::add_key(path, now)?;
    let ring = Keyring::load(path)?;
    let mut report = RotateReport { new_key, ..Default::default() };
    let mut settled = false;
    loop {
        let mut moved = 0;
        for table in [SealedTable::Drafts, SealedTable::Records, SealedTable::Corrections] {
            loop {
                let rows = store.sealed_under_old_keys(table, ring.current(), 200).await?;
                if rows.is_empty() {
                    break;
                }
                for row in rows {
                    let aad = table.aad(&row.id);
                    let plain = ring.open(&row.key_id, &aad, &row.content).map_err(|source| RotateError::Open {
                        table: table.row_kind(),
                        id: row.id.clone(),
                        key: row.key_id.clone(),
                        source,
                    })?;
                    let (key_id, sealed) = ring.seal(&aad, &plain)?;
                    // Compare-and-set: an edit in between wins, and the next
                    // round sees the row again if it is still old.
                    if store.reseal(table, &row, &key_id, &sealed).await? {
                        moved += 1;
                        match table {
                            SealedTable::Drafts => report.drafts += 1,
                            SealedTable::Records => report.records += 1,
                            SealedTable::Corrections => report.corrections += 1,
                        }
                    }
                }
            }
        }
        if moved == 0 && settled {
            return Ok(report);
        }
        tokio::time::sleep(settle).await;
        settled = true;
    }
}
