//! HPKI and institution-PKI smart cards over PC/SC.
//!
//! The card layer of the product: lists readers and watches insertions and
//! removals, reads the end-entity certificate of the authentication or
//! signature application, reads the PIN retry counter without using a try,
//! verifies the PIN once per request, and has the card sign a SHA-256 digest
//! padded off-card (PKCS#1 v1.5). Both command variants in use — the real
//! JMA card's and the JAHIS guideline's — are driven from one
//! [`CardProfile`].
//!
//! ```no_run
//! use hpki_card::{Application, CertificateCache, PcscContext, Pin, RSA_2048_BYTES, sha256};
//! # fn main() -> Result<(), hpki_card::CardError> {
//! let ctx = PcscContext::establish()?;
//! let reader = ctx.readers()?.into_iter().next().ok_or(hpki_card::CardError::NoReader)?;
//! let mut card = ctx.connect(&reader)?;
//! let cache = CertificateCache::default();
//! let cert = card.certificate(Application::Authentication, &cache)?;
//! let pin = Pin::new("1234")?;
//! let signature = card.sign_sha256(Application::Authentication, &pin, &sha256(b"challenge"), RSA_2048_BYTES)?;
//! # let _ = (cert, signature); Ok(()) }
//! ```

pub mod apdu;
mod cache;
mod card;
mod error;
mod events;
mod pin;
pub mod profile;
pub mod session;
pub mod signing;

pub use cache::CertificateCache;
pub use card::{CardIdentity, HpkiCard, PcscContext, RSA_2048_BYTES, ReaderStatus};
pub use error::{CardCommand, CardError};
pub use events::{ReaderEvent, ReaderWatcher};
pub use pin::{PIN_MAX_LEN, PIN_MIN_LEN, Pin, PinFormatError};
pub use profile::{Application, CardProfile, CardVariant};
pub use session::{PinStatus, Session, Transport};
pub use signing::sha256;
