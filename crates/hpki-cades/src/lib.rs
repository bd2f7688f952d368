//! CAdES signatures over confirmed records, and RFC 3161 time-stamps for
//! them: the one place where the product writes and reads CMS.
//!
//! A confirmed record's signature is a detached CMS `SignedData`
//! (RFC 5652) in the CAdES baseline profile (ETSI EN 319 122-1; JIS X 5092):
//!
//! 1. [`attributes`]: the signed attributes the gateway builds for a draft
//!    version and the card agent checks before the card signs their DER —
//!    contentType, messageDigest, signingTime, signing-certificate-v2;
//! 2. [`container`]: the `SignedData` around the card's signature, with the
//!    validation data (certificates, CRLs) embedded for B-LT, and unsigned
//!    attributes appended later (the signature time-stamp for B-T);
//!    [`archive`]: archive time-stamps over all of it (B-LTA), renewed
//!    before each TSA certificate expires;
//! 3. [`tsp`]: the RFC 3161 request, and every check of a response and its
//!    token that does not need a trust anchor (status, nonce, imprint, the
//!    token's own signature, the TSA certificate's critical EKU);
//! 4. [`verify`]: a container read back and checked end to end, offline.
//!
//! Path validation of the signer's and the TSA's certificates is not here:
//! it is `hpki_profile`'s, with the certificates and CRLs this crate takes
//! out of a container.

pub mod archive;
pub mod attributes;
pub mod container;
mod crypto;
mod error;
pub mod oid;
pub mod tsp;
pub mod verify;

pub use attributes::SignedAttributes;
pub use container::Container;
pub use error::CadesError;
pub use tsp::{TimeStampToken, TsaResponseError};
pub use verify::{Opened, open};
