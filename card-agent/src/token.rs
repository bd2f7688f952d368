//! Per-installation secrets: the local API token (a file only the agent's
//! user can read) and the UI's CSRF token (new at every start).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot read the API token {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("cannot create the API token {path}: {source}")]
    Create { path: String, source: std::io::Error },
    #[error("the API token file {0} is empty")]
    Empty(String),
    #[error("the API token file {0} can be read by other users (chmod 600 it)")]
    Exposed(String),
    #[error("no randomness available")]
    Random,
}

/// 32 random bytes, base64url.
pub fn random_token() -> Result<String, TokenError> {
    let mut b = Zeroizing::new([0u8; 32]);
    SystemRandom::new().fill(b.as_mut()).map_err(|_| TokenError::Random)?;
    Ok(URL_SAFE_NO_PAD.encode(b.as_ref()))
}

/// Reads the API token from `path`.
pub fn read(path: &Path) -> Result<Zeroizing<String>, TokenError> {
    let shown = path.display().to_string();
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|source| TokenError::Read { path: shown.clone(), source })?,
    );
    let token = Zeroizing::new(text.trim().to_owned());
    if token.is_empty() {
        return Err(TokenError::Empty(shown));
    }
    Ok(token)
}

/// Reads the API token, creating the file (mode 0600) with a new token when
/// it does not exist. A token others can read is refused.
pub fn load_or_create(path: &Path) -> Result<Zeroizing<String>, TokenError> {
    let shown = path.display().to_string();
    match std::fs::metadata(path) {
        Ok(meta) => {
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(TokenError::Exposed(shown));
            }
            read(path)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let token = Zeroizing::new(random_token()?);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|source| TokenError::Create { path: shown.clone(), source })?;
            f.write_all(format!("{}\n", token.as_str()).as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(|source| TokenError::Create { path: shown, source })?;
            Ok(token)
        }
        Err(source) => Err(TokenError::Read { path: shown, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_once_then_reads_the_same() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("api-token");
        let a = load_or_create(&path).expect("create");
        assert_eq!(a.len(), 43);
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let b = load_or_create(&path).expect("read");
        assert_eq!(*a, *b);
    }

    #[test]
    fn refuses_a_token_others_can_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("api-token");
        std::fs::write(&path, "secret\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = load_or_create(&path).expect_err("exposed");
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
}
