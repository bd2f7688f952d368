//! Record keys (DATA-1): health content is sealed with AES-256-GCM under the
//! current key; every row names its key id, so keys can rotate and old rows
//! stay readable until `hpki-gateway admin rotate-key` re-encrypts them.
//!
//! The key file is TOML, readable by the gateway's user only:
//!
//! ```toml
//! current = "k20261121-3f9a"
//! [[keys]]
//! id = "k20261121-3f9a"
//! key = "…32 bytes, base64…"
//! created_at = 1795000000
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the record key file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write the record key file {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("the record key file {path} is invalid: {detail}")]
    Invalid { path: PathBuf, detail: String },
    #[error("the record key file {path} is readable by group or others (mode {mode:o}); chmod 600 it")]
    Permissions { path: PathBuf, mode: u32 },
    #[error("no record key {0:?} in the key file")]
    UnknownKey(String),
    #[error("a stored value does not decrypt: wrong key, or the row was altered")]
    Decrypt,
    #[error("the system random generator failed")]
    Random,
    #[error(
        "the record key file {path} is missing, but the store holds {rows} encrypted rows; restore the key file from its backup"
    )]
    Missing { path: PathBuf, rows: i64 },
    #[error("cannot check the store for encrypted rows: {0}")]
    Store(String),
}

/// The keys for a starting gateway: the key file if it exists; a new file
/// with one fresh key only while the store holds no encrypted rows (a lost
/// key file is never silently replaced).
pub async fn open_or_create(path: &Path, store: &crate::store::Store, now: i64) -> Result<Keyring, KeyError> {
    if path.exists() {
        return Keyring::load(path);
    }
    let rows: i64 = store.key_usage().await.map_err(|e| KeyError::Store(e.to_string()))?.iter().map(|(_, n)| n).sum();
    if rows > 0 {
        return Err(KeyError::Missing { path: path.into(), rows });
    }
    tracing::info!(path = %path.display(), "record key file created with a fresh key");
    Keyring::create(path, now)
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    current: String,
    keys: Vec<KeyEntry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    id: String,
    key: String,
    created_at: i64,
}

/// The loaded keys.
pub struct Keyring {
    current: String,
    keys: BTreeMap<String, LessSafeKey>,
    rng: SystemRandom,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring").field("current", &self.current).field("ids", &self.ids()).finish()
    }
}

impl Keyring {
    /// Loads the key file, refusing one that others can read.
    pub fn load(path: &Path) -> Result<Keyring, KeyError> {
        let file = read_file(path)?;
        let invalid = |detail: String| KeyError::Invalid { path: path.into(), detail };
        let mut keys = BTreeMap::new();
        for entry in &file.keys {
            let raw = Zeroizing::new(
                B64.decode(&entry.key).map_err(|_| invalid(format!("key {:?} is not base64", entry.id)))?,
            );
            let unbound = UnboundKey::new(&AES_256_GCM, &raw)
                .map_err(|_| invalid(format!("key {:?} is not 32 bytes", entry.id)))?;
            if keys.insert(entry.id.clone(), LessSafeKey::new(unbound)).is_some() {
                return Err(invalid(format!("key {:?} appears twice", entry.id)));
            }
        }
        if !keys.contains_key(&file.current) {
            return Err(invalid(format!("the current key {:?} is not among the keys", file.current)));
        }
        Ok(Keyring { current: file.current, keys, rng: SystemRandom::new() })
    }

    /// Creates a key file with one fresh key (mode 0600); refuses to
    /// overwrite an existing file.
    pub fn create(path: &Path, now: i64) -> Result<Keyring, KeyError> {
        let rng = SystemRandom::new();
        let entry = new_entry(&rng, now)?;
        let file = KeyFile { current: entry.id.clone(), keys: vec![entry] };
        write_new(path, &file, false)?;
        Keyring::load(path)
    }

    /// Adds a fresh key to the file and makes it current; returns its id.
    /// Old keys stay so that existing rows still decrypt.
    pub fn add_key(path: &Path, now: i64) -> Result<String, KeyError> {
        let mut file = read_file(path)?;
        let entry = new_entry(&SystemRandom::new(), now)?;
        let id = entry.id.clone();
        file.current = id.clone();
        file.keys.push(entry);
        write_new(path, &file, true)?;
        Ok(id)
    }

    pub fn current(&self) -> &str {
        &self.current
    }

    pub fn ids(&self) -> Vec<&str> {
        self.keys.keys().map(String::as_str).collect()
    }

    pub fn has(&self, id: &str) -> bool {
        self.keys.contains_key(id)
    }

    /// Seals `plaintext` under the current key: `(key id, nonce ‖ ciphertext ‖ tag)`.
    /// `aad` binds the value to its row so it cannot be moved to another.
    pub fn seal(&self, aad: &str, plaintext: &[u8]) -> Result<(String, Vec<u8>), KeyError> {
        let key = self.keys.get(&self.current).ok_or_else(|| KeyError::UnknownKey(self.current.clone()))?;
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| KeyError::Random)?;
        let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + AES_256_GCM.tag_len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let tag = key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                &mut out[NONCE_LEN..],
            )
            .map_err(|_| KeyError::Decrypt)?;
        out.extend_from_slice(tag.as_ref());
        Ok((self.current.clone(), out))
    }

    /// Opens a value sealed by [`Keyring::seal`] under `key_id`.
    pub fn open(&self, key_id: &str, aad: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let key = self.keys.get(key_id).ok_or_else(|| KeyError::UnknownKey(key_id.into()))?;
        if sealed.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(KeyError::Decrypt);
        }
        let nonce = Nonce::try_assume_unique_for_key(&sealed[..NONCE_LEN]).map_err(|_| KeyError::Decrypt)?;
        let mut buf = Zeroizing::new(sealed[NONCE_LEN..].to_vec());
        let len = key.open_in_place(nonce, Aad::from(aad.as_bytes()), &mut buf).map_err(|_| KeyError::Decrypt)?.len();
        buf.truncate(len);
        Ok(buf)
    }
}

/// The key file, refused when others can read it.
fn read_file(path: &Path) -> Result<KeyFile, KeyError> {
    check_permissions(path)?;
    let text =
        Zeroizing::new(std::fs::read_to_string(path).map_err(|source| KeyError::Read { path: path.into(), source })?);
    toml::from_str(&text).map_err(|e| KeyError::Invalid { path: path.into(), detail: e.to_string() })
}

fn new_entry(rng: &SystemRandom, now: i64) -> Result<KeyEntry, KeyError> {
    let mut key = Zeroizing::new([0u8; 32]);
    rng.fill(key.as_mut()).map_err(|_| KeyError::Random)?;
    let mut tag = [0u8; 3];
    rng.fill(&mut tag).map_err(|_| KeyError::Random)?;
    let date = time::OffsetDateTime::from_unix_timestamp(now).map(|t| t.date()).unwrap_or(time::Date::MIN);
    let id = format!(
        "k{:04}{:02}{:02}-{}",
        date.year(),
        u8::from(date.month()),
        date.day(),
        tag.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    Ok(KeyEntry { id, key: B64.encode(key.as_ref()), created_at: now })
}

/// Writes the file with mode 0600: to a temporary file, synced, then
/// renamed over the old one, so a crash leaves either file whole.
fn write_new(path: &Path, file: &KeyFile, replace: bool) -> Result<(), KeyError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let werr = |source| KeyError::Write { path: path.into(), source };
    if !replace && path.exists() {
        return Err(werr(std::io::Error::new(std::io::ErrorKind::AlreadyExists, "the file exists")));
    }
    let text = Zeroizing::new(
        toml::to_string(file).map_err(|e| KeyError::Invalid { path: path.into(), detail: e.to_string() })?,
    );
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).map_err(werr)?;
    f.write_all(b"# Record keys (AES-256-GCM). Keep this file secret and backed up apart from the data.\n")
        .and_then(|_| f.write_all(text.as_bytes()))
        .and_then(|_| f.sync_all())
        .map_err(werr)?;
    std::fs::rename(&tmp, path).map_err(werr)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

fn check_permissions(path: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|source| KeyError::Read { path: path.into(), source })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Permissions { path: path.into(), mode });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_rotate_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.toml");
        let ring1 = Keyring::create(&path, 1_795_000_000).unwrap();
        let (k1, sealed) = ring1.seal("record:r1", "血圧 120/80".as_bytes()).unwrap();
        assert_eq!(k1, ring1.current());
        assert!(!sealed.windows(3).any(|w| w == "血".as_bytes()), "ciphertext, not plaintext");
        assert_eq!(&ring1.open(&k1, "record:r1", &sealed).unwrap()[..], "血圧 120/80".as_bytes());
        // Moved to another row: refused.
        assert!(matches!(ring1.open(&k1, "record:r2", &sealed), Err(KeyError::Decrypt)));
        // One flipped bit: refused.
        let mut bad = sealed.clone();
        bad[20] ^= 1;
        assert!(matches!(ring1.open(&k1, "record:r1", &bad), Err(KeyError::Decrypt)));
        // Rotation: new current key, the old one still opens old rows.
        let k2 = Keyring::add_key(&path, 1_795_000_100).unwrap();
        let ring2 = Keyring::load(&path).unwrap();
        assert_eq!(ring2.current(), k2);
        assert_ne!(k1, k2);
        assert_eq!(&ring2.open(&k1, "record:r1", &sealed).unwrap()[..], "血圧 120/80".as_bytes());
        assert!(matches!(ring2.open("nope", "record:r1", &sealed), Err(KeyError::UnknownKey(_))));
        // Not overwritten by create; refused when others can read it.
        assert!(Keyring::create(&path, 0).is_err());
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(Keyring::load(&path), Err(KeyError::Permissions { .. })));
    }
}
