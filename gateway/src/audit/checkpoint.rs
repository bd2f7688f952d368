//! Signed checkpoints of the audit chain's head, kept outside the database
//! (LOG-1): the chain shows a changed or removed entry *within* the log,
//! but someone with database access who drops the triggers can delete the
//! newest entries, or rewrite one and recompute every later hash, and the
//! chain still verifies. A checkpoint — entry number, its hash, time,
//! signed with the gateway's Ed25519 key (ring) — written every few minutes
//! and at shutdown to an append-only file elsewhere makes both visible:
//! `hpki-gateway audit verify --checkpoints FILE`.
//!
//! The signed text follows the C2SP signed-note checkpoint body: origin,
//! then the tree size (here the entry number), then the head hash in
//! base64, one per line, then the time (Unix ms) as an extension line. The
//! file holds one JSON object a line.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not an Ed25519 key (PKCS#8)")]
    BadKey { path: PathBuf },
    #[error("{path} is readable by others (mode {mode:o}); chmod 600 it")]
    Permissions { path: PathBuf, mode: u32 },
    #[error("{path} line {line}: {detail}")]
    Malformed { path: PathBuf, line: usize, detail: String },
    #[error("the system random generator failed")]
    Random,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io { path: path.into(), source }
}

/// One checkpoint, as a line of the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub origin: String,
    pub seq: i64,
    /// The hash of entry `seq`, base64.
    pub hash: String,
    /// Unix ms.
    pub at: i64,
    /// Ed25519 over [`Checkpoint::body`], base64.
    pub signature: String,
}

impl Checkpoint {
    /// The signed text.
    pub fn body(&self) -> String {
        format!("{}\n{}\n{}\nat {}\n", self.origin, self.seq, self.hash, self.at)
    }

    pub fn signed_by(&self, public_key: &[u8]) -> bool {
        let Ok(sig) = B64.decode(&self.signature) else { return false };
        UnparsedPublicKey::new(&ED25519, public_key).verify(self.body().as_bytes(), &sig).is_ok()
    }
}

/// The gateway's checkpoint key: a PKCS#8 file of mode 0600, created at the
/// first start, with its public key beside it (`<file>.pub`, base64) for
/// whoever verifies.
pub struct CheckpointKey {
    pair: Ed25519KeyPair,
}

impl CheckpointKey {
    pub fn open_or_create(path: &Path) -> Result<CheckpointKey, CheckpointError> {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        if !path.exists() {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| CheckpointError::Random)?;
            let mut f =
                std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(io(path))?;
            f.write_all(pkcs8.as_ref()).and_then(|_| f.sync_all()).map_err(io(path))?;
            let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
                .map_err(|_| CheckpointError::BadKey { path: path.into() })?;
            let public = public_key_path(path);
            std::fs::write(&public, format!("{}\n", B64.encode(pair.public_key().as_ref()))).map_err(io(&public))?;
            return Ok(CheckpointKey { pair });
        }
        let mode = std::fs::metadata(path).map_err(io(path))?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(CheckpointError::Permissions { path: path.into(), mode });
        }
        let bytes = std::fs::read(path).map_err(io(path))?;
        let pair = Ed25519KeyPair::from_pkcs8(&bytes).map_err(|_| CheckpointError::BadKey { path: path.into() })?;
        Ok(CheckpointKey { pair })
    }

    pub fn public_key(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    pub fn sign(&self, origin: &str, seq: i64, hash: &[u8], at: i64) -> Checkpoint {
        let mut c = Checkpoint { origin: origin.into(), seq, hash: B64.encode(hash), at, signature: String::new() };
        c.signature = B64.encode(self.pair.sign(c.body().as_bytes()).as_ref());
        c
    }
}

/// Where the public half of the key at `key` is written.
pub fn public_key_path(key: &Path) -> PathBuf {
    let mut p = key.as_os_str().to_owned();
    p.push(".pub");
    PathBuf::from(p)
}

/// A public key file as `open_or_create` writes it.
pub fn read_public_key(path: &Path) -> Result<Vec<u8>, CheckpointError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    B64.decode(text.trim()).ok().filter(|k| k.len() == 32).ok_or_else(|| CheckpointError::BadKey { path: path.into() })
}

/// Appends `c` to the file at `path` (created 0600) and makes it durable.
pub fn append(path: &Path, c: &Checkpoint) -> Result<(), CheckpointError> {
    use std::os::unix::fs::OpenOptionsExt;
    let line = serde_json::to_string(c).map_err(|e| CheckpointError::Io { path: path.into(), source: e.into() })?;
    let mut f = std::fs::OpenOptions::new().append(true).create(true).mode(0o600).open(path).map_err(io(path))?;
    f.write_all(format!("{line}\n").as_bytes()).and_then(|_| f.sync_all()).map_err(io(path))
}

pub fn read_all(path: &Path) -> Result<Vec<Checkpoint>, CheckpointError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| CheckpointError::Malformed {
                path: path.into(),
                line: i + 1,
                detail: e.to_string(),
            })
        })
        .collect()
}

/// Signs the store's audit head and appends it, unless `last_seq` already
/// covers it; returns the entry number now checkpointed.
pub async fn write_head(
    store: &Store,
    key: &CheckpointKey,
    origin: &str,
    file: &Path,
    last_seq: i64,
    now_ms: i64,
) -> Result<i64, CheckpointError> {
    let (seq, hash) = store.audit_head().await?;
    if seq <= last_seq {
        return Ok(last_seq);
    }
    append(file, &key.sign(origin, seq, &hash, now_ms))?;
    Ok(seq)
}

/// What the checkpoints say of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// Every checkpoint signed by the key and matching its entry.
    Consistent { checkpoints: usize },
    /// A checkpoint not signed by the key (forged, or another gateway's).
    BadSignature { line: usize },
    /// The log ends before a checkpointed entry: entries were removed.
    Truncated { checkpoint: i64, head: i64 },
    /// The entry a checkpoint names has another hash: rewritten.
    Rewritten { seq: i64 },
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::Consistent { checkpoints } => write!(f, "{checkpoints} checkpoints signed and matching the log"),
            Finding::BadSignature { line } => write!(f, "checkpoint on line {line} is not signed by the gateway's key"),
            Finding::Truncated { checkpoint, head } => {
                write!(f, "entries were removed: a checkpoint names entry {checkpoint}, the log ends at {head}")
            }
            Finding::Rewritten { seq } => {
                write!(f, "entry {seq} was rewritten: its hash is not the one its checkpoint signed")
            }
        }
    }
}

/// Checks the log against `checkpoints` signed by `public_key`.
pub async fn check(store: &Store, checkpoints: &[Checkpoint], public_key: &[u8]) -> Result<Finding, StoreError> {
    let (head, _) = store.audit_head().await?;
    for (i, c) in checkpoints.iter().enumerate() {
        if !c.signed_by(public_key) {
            return Ok(Finding::BadSignature { line: i + 1 });
        }
        if c.seq > head {
            return Ok(Finding::Truncated { checkpoint: c.seq, head });
        }
        let stored = store.audit_hash(c.seq).await?.map(|h| B64.encode(h));
        if stored.as_deref() != Some(c.hash.as_str()) {
            return Ok(Finding::Rewritten { seq: c.seq });
        }
    }
    Ok(Finding::Consistent { checkpoints: checkpoints.len() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_verifies_only_with_its_key_and_unchanged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = CheckpointKey::open_or_create(&dir.path().join("k")).expect("key");
        let c = key.sign("gw.example/audit", 7, &[1; 32], 1000);
        assert!(c.signed_by(key.public_key()));
        let other = CheckpointKey::open_or_create(&dir.path().join("k2")).expect("key");
        assert!(!c.signed_by(other.public_key()));
        let moved = Checkpoint { seq: 8, ..c.clone() };
        assert!(!moved.signed_by(key.public_key()));
        // Reopened: the same key, and its public half on file.
        let again = CheckpointKey::open_or_create(&dir.path().join("k")).expect("reopen");
        assert_eq!(again.public_key(), key.public_key());
        assert_eq!(read_public_key(&public_key_path(&dir.path().join("k"))).expect("pub"), key.public_key());
    }

    #[test]
    fn a_key_readable_by_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k");
        CheckpointKey::open_or_create(&path).expect("key");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(matches!(CheckpointKey::open_or_create(&path), Err(CheckpointError::Permissions { .. })));
    }
}
