use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("{0} is not a CA directory (create one with `hpki-certs ca init --dir {0}`)")]
    NotACaDir(PathBuf),
    #[error("{0} already holds a CA; refusing to overwrite it")]
    AlreadyExists(PathBuf),
    #[error("{path} is corrupt: {detail}")]
    Corrupt { path: PathBuf, detail: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("invalid {field}: {detail}")]
    InvalidInput { field: &'static str, detail: String },
    #[error("weak PIN: {0}")]
    WeakPin(String),
    #[error("{0} already exists; refusing to overwrite it")]
    OutputExists(PathBuf),
    #[error("no certificate with serial {0} was issued from this CA directory")]
    UnknownSerial(String),
    #[error("certificate {serial} is already revoked ({reason}, {date})")]
    AlreadyRevoked { serial: String, reason: String, date: String },
    #[error("certificate generation failed: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("key generation failed: {0}")]
    KeyGeneration(String),
}

impl CaError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> CaError {
        let path = path.into();
        move |source| CaError::Io { path, source }
    }

    pub(crate) fn invalid(field: &'static str, detail: impl Into<String>) -> CaError {
        CaError::InvalidInput { field, detail: detail.into() }
    }
}
