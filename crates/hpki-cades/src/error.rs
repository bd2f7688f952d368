/// Why a signature container, its attributes or a time-stamp token was
/// refused. Each variant says which link failed, for `records verify`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CadesError {
    #[error("not DER of the expected ASN.1 ({what}): {detail}")]
    Malformed { what: &'static str, detail: String },
    #[error("the signed attributes {0}")]
    Attributes(String),
    #[error("messageDigest is not SHA-256 of the document")]
    DigestMismatch,
    #[error("signing-certificate-v2 does not name the signer's certificate")]
    SigningCertificateMismatch,
    #[error("the signature does not verify with the signer's certificate")]
    BadSignature,
    #[error("unsupported algorithm {0}")]
    Algorithm(String),
    #[error("the container {0}")]
    Container(String),
    #[error("time-stamp token: {0}")]
    Token(String),
    #[error("archive time-stamp: {0}")]
    Archive(String),
}

impl CadesError {
    pub(crate) fn der(what: &'static str) -> impl FnOnce(der::Error) -> CadesError {
        move |e| CadesError::Malformed { what, detail: e.to_string() }
    }
}
