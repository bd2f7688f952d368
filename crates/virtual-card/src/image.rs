//! The card image: everything a virtual card holds, in one JSON file.
//!
//! The retry counters are the only part a card changes; they are written back
//! (atomically, before the card answers) so a blocked card stays blocked
//! after a restart. The format is documented in `docs/virtual-card.md`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hpki_card::{Application, CardVariant, Pin};
use rsa::RsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use serde::{Deserialize, Serialize};

use crate::atr;

/// The `format` value this version reads and writes.
pub const FORMAT: &str = "hpki-virtual-card/1";
/// Largest retry limit a `63 Cx` status word can report.
pub const MAX_RETRY_LIMIT: u8 = 15;
pub const DEFAULT_RETRY_LIMIT: u8 = 5;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CardImage {
    pub format: String,
    /// `jma` (the real JMA card) or `jahis` (the JAHIS guideline).
    #[serde(with = "variant_name")]
    pub variant: CardVariant,
    /// ATR in hex; the variant's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_hex")]
    pub atr: Option<Vec<u8>>,
    /// Free text for people (who the card belongs to); the card never shows it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub label: String,
    pub authentication: AppImage,
    pub signature: AppImage,
}

#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AppImage {
    /// End-entity certificate, DER, base64.
    #[serde(with = "b64")]
    pub certificate: Vec<u8>,
    /// RSA private key, PKCS#8 DER, base64.
    #[serde(with = "b64")]
    pub private_key: Vec<u8>,
    /// The PIN (a test card's: the image is a test artefact like its key).
    pub pin: String,
    pub retry_limit: u8,
    pub tries_left: u8,
}

impl std::fmt::Debug for AppImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppImage")
            .field("certificate_len", &self.certificate.len())
            .field("retry_limit", &self.retry_limit)
            .field("tries_left", &self.tries_left)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("cannot read card image {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("card image {path} is not valid: {detail}")]
    Parse { path: PathBuf, detail: String },
    #[error("card image: {0}")]
    Invalid(String),
    #[error("cannot write card image {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

impl CardImage {
    /// A new image with full retry counters and the variant's default ATR.
    pub fn new(variant: CardVariant, authentication: AppImage, signature: AppImage) -> CardImage {
        CardImage { format: FORMAT.into(), variant, atr: None, label: String::new(), authentication, signature }
    }

    pub fn app(&self, app: Application) -> &AppImage {
        match app {
            Application::Authentication => &self.authentication,
            Application::Signature => &self.signature,
        }
    }

    pub fn app_mut(&mut self, app: Application) -> &mut AppImage {
        match app {
            Application::Authentication => &mut self.authentication,
            Application::Signature => &mut self.signature,
        }
    }

    pub fn atr(&self) -> Vec<u8> {
        self.atr.clone().unwrap_or_else(|| atr::default_for(self.variant))
    }

    pub fn load(path: &Path) -> Result<CardImage, ImageError> {
        let text = fs::read_to_string(path).map_err(|source| ImageError::Read { path: path.into(), source })?;
        let image: CardImage =
            serde_json::from_str(&text).map_err(|e| ImageError::Parse { path: path.into(), detail: e.to_string() })?;
        image.validate().map_err(|e| match e {
            ImageError::Invalid(detail) => ImageError::Parse { path: path.into(), detail },
            other => other,
        })?;
        Ok(image)
    }

    /// Writes the image so that a crash leaves either the old or the new file
    /// (temporary file, fsync, rename, fsync of the directory).
    pub fn save(&self, path: &Path) -> Result<(), ImageError> {
        let err = |source| ImageError::Write { path: path.into(), source };
        let mut text = serde_json::to_string_pretty(self).map_err(|e| err(std::io::Error::other(e)))?;
        text.push('\n');
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let name = path.file_name().ok_or_else(|| err(std::io::Error::other("no file name")))?;
        let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
        {
            let mut f = open_private(&tmp).map_err(err)?;
            f.write_all(text.as_bytes()).map_err(err)?;
            f.sync_all().map_err(err)?;
        }
        fs::rename(&tmp, path).map_err(err)?;
        fs::File::open(dir).and_then(|d| d.sync_all()).map_err(err)?;
        Ok(())
    }

    /// Checks everything a card relies on, so a bad image is refused at
    /// start-up with a message rather than misbehaving later.
    pub fn validate(&self) -> Result<(), ImageError> {
        if self.format != FORMAT {
            return Err(ImageError::Invalid(format!("format {:?} is not {FORMAT:?}", self.format)));
        }
        atr::check(&self.atr()).map_err(|e| ImageError::Invalid(format!("ATR: {e}")))?;
        for app in Application::ALL {
            self.app(app).validate().map_err(|e| ImageError::Invalid(format!("{app} application: {e}")))?;
        }
        Ok(())
    }
}

impl AppImage {
    pub fn new(certificate: Vec<u8>, private_key: Vec<u8>, pin: &str, retry_limit: u8) -> AppImage {
        AppImage { certificate, private_key, pin: pin.into(), retry_limit, tries_left: retry_limit }
    }

    pub fn private_key(&self) -> Result<RsaPrivateKey, String> {
        RsaPrivateKey::from_pkcs8_der(&self.private_key).map_err(|e| format!("private key is not RSA PKCS#8: {e}"))
    }

    fn validate(&self) -> Result<(), String> {
        Pin::new(&self.pin).map_err(|e| format!("PIN: {e}"))?;
        if !(1..=MAX_RETRY_LIMIT).contains(&self.retry_limit) {
            return Err(format!("retry_limit {} is outside 1..={MAX_RETRY_LIMIT}", self.retry_limit));
        }
        if self.tries_left > self.retry_limit {
            return Err(format!("tries_left {} exceeds retry_limit {}", self.tries_left, self.retry_limit));
        }
        let key = self.private_key()?;
        let (_, cert) = x509_parser::parse_x509_certificate(&self.certificate)
            .map_err(|e| format!("certificate is not DER X.509: {e}"))?;
        let spki = cert.public_key();
        let modulus = match spki.parsed() {
            Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => rsa.modulus.to_vec(),
            _ => return Err("certificate does not hold an RSA public key".into()),
        };
        let strip = |m: &[u8]| m.iter().skip_while(|b| **b == 0).copied().collect::<Vec<u8>>();
        if strip(&modulus) != strip(&key.n().to_bytes_be()) {
            return Err("private key does not belong to the certificate".into());
        }
        Ok(())
    }
}

fn open_private(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)
}

mod b64 {
    use super::*;
    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(v))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        B64.decode(s.trim()).map_err(serde::de::Error::custom)
    }
}

mod opt_hex {
    use super::*;
    pub fn serialize<S: serde::Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_str(&hex::encode_upper(b)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        s.map(|s| crate::atr::parse_hex(&s).map_err(serde::de::Error::custom)).transpose()
    }
}

mod variant_name {
    use super::*;
    pub fn serialize<S: serde::Serializer>(v: &CardVariant, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.name())
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<CardVariant, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}
