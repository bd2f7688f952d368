//! Archive time-stamp renewal (DATA-5: records stay verifiable for their
//! whole retention). A record is due when the certificate of the TSA of
//! its newest time-stamp expires before a date, or when that time-stamp's
//! hash is no longer strong. Renewing one record:
//!
//! 1. check the container as it is, now (a broken record is reported,
//!    never extended: a new time-stamp would vouch for a broken chain);
//! 2. add the newest TSA's path and CRLs current now — the proof that its
//!    certificate was valid and unrevoked when the next time-stamp is
//!    applied;
//! 3. apply an archive time-stamp over all of it (`hpki_cades::archive`)
//!    from the configured TSA, checked as at confirm, and add that TSA's
//!    path and CRLs after it;
//! 4. check the result again from its bytes.
//!
//! The store keeps every version (`record_signatures`, one row per seq):
//! a renewal appends, it never rewrites.

use hpki_cades::{Container, Opened, TimeStampToken, oid};

use super::check::{self, CheckError, newest_time_stamp, not_after};
use super::{TimestampError, Timestamper};
use crate::config::Config;

/// Why a record needs a new archive time-stamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    /// The newest time-stamp's TSA certificate expires then (Unix s).
    TsaExpires(i64),
    /// The newest time-stamp's imprint uses this hash, no longer strong.
    WeakHash(String),
}

impl std::fmt::Display for Due {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Due::TsaExpires(t) => write!(f, "its TSA certificate expires {}", hpki_profile::validate::rfc3339(*t)),
            Due::WeakHash(h) => write!(f, "its time-stamp's hash {h} is weak"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RenewError {
    #[error("the record does not verify as it is, so it is not extended: {0}")]
    DoesNotVerify(CheckError),
    #[error("the record has no time-stamp to renew (CAdES B-B)")]
    NotTimeStamped,
    #[error("the newest TSA's certificate is refused now: {0}")]
    NewestTsa(hpki_profile::Refusal),
    #[error("{0}")]
    Timestamp(#[from] TimestampError),
    #[error("the container could not be extended: {0}")]
    Container(#[from] hpki_cades::CadesError),
}

/// The hash a time-stamp may no longer rest on, if its imprint uses one.
/// SHA-1 is the case in point: collisions are practical, so a token over a
/// SHA-1 digest proves little about which data existed.
fn weak_hash(token: &TimeStampToken) -> Option<&'static str> {
    (token.imprint_algorithm == oid::ID_SHA_1).then_some("SHA-1")
}

/// Whether a record whose container opened as `opened` needs renewing
/// before `before` (Unix seconds); `None` for a B-B record (nothing to
/// renew) or one that is good past `before`.
pub fn due(opened: &Opened, before: i64) -> Option<Due> {
    let newest = newest_time_stamp(opened)?;
    if let Some(h) = weak_hash(newest) {
        return Some(Due::WeakHash(h.into()));
    }
    // An unreadable certificate cannot have been accepted at confirm;
    // treat it as due so the check in `renew` says what is wrong.
    let expires = not_after(&newest.tsa_cert).unwrap_or(i64::MIN);
    (expires < before).then_some(Due::TsaExpires(expires))
}

/// One record's container extended by an archive time-stamp.
#[derive(Debug, Clone)]
pub struct Renewed {
    pub container: Vec<u8>,
    pub level: &'static str,
    /// The new archive time-stamp's genTime.
    pub gen_time: i64,
    /// Its TSA certificate's notAfter: the next renewal is due before.
    pub renew_before: Option<i64>,
}

/// Renews one record's signature as the module says. `now` is the
/// gateway's clock.
pub async fn renew(
    config: &Config,
    timestamper: &Timestamper,
    document: &[u8],
    container: &[u8],
    now: i64,
    rng: &ring::rand::SystemRandom,
) -> Result<Renewed, RenewError> {
    check::check(config, document, container, now).map_err(RenewError::DoesNotVerify)?;
    let opened = hpki_cades::open(container, document)?;
    let newest = newest_time_stamp(&opened).ok_or(RenewError::NotTimeStamped)?;
    // The configured TSA's own validator: the newest TSA must chain to the
    // anchors the new time-stamp's TSA is checked against.
    let current = timestamper.tsa_path_at(newest, &opened.certificates, now).map_err(|e| match e {
        TimestampError::Untrusted(r) => RenewError::NewestTsa(r),
        other => RenewError::Timestamp(other),
    })?;
    let mut grown = Container::from_der(container)?;
    grown.add_validation_data(
        &current.path.iter().map(|c| c.to_vec()).collect::<Vec<_>>(),
        &current.revocation.iter().map(|e| e.crl.to_vec()).collect::<Vec<_>>(),
    )?;
    let mut document_sha256 = [0u8; 32];
    document_sha256.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, document).as_ref());
    let archive = grown.archive_input(&document_sha256)?;
    let stamp = timestamper.stamp(&archive.input, now, rng).await?;
    grown.add_archive_timestamp(&stamp.token.der, &archive)?;
    grown.add_validation_data(&stamp.path, &stamp.crls)?;
    let der = grown.to_der()?;
    // What is stored must open as what was meant: fail closed.
    let reopened = hpki_cades::open(&der, document)?;
    if reopened.archive_timestamps.len() != opened.archive_timestamps.len() + 1 {
        return Err(RenewError::Container(hpki_cades::CadesError::Archive(
            "the new archive time-stamp is not the newest of the chain".into(),
        )));
    }
    Ok(Renewed {
        container: der,
        level: super::record::LEVEL_B_LTA,
        gen_time: stamp.token.gen_time,
        renew_before: not_after(&stamp.token.tsa_cert),
    })
}
