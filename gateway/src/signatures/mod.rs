//! Long-term signatures of records (DATA-4): the CAdES container around a
//! doctor's card signature, its RFC 3161 time-stamp from the configured
//! TSA, and the validation data embedded with it. The CMS itself is
//! `hpki_cades`'s; this module is the gateway's side — the TSA over HTTP,
//! the checks that need the gateway's trust configuration and clock, and
//! the refusal each failure becomes.

pub mod check;
pub mod export;
pub mod record;
pub mod renew;
pub mod timestamper;
pub mod tsa_client;

pub use record::{SealedSignature, seal_signature};
pub use timestamper::{Stamp, TimestampError, Timestamper};
