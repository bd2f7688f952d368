//! `records verify`: a record's signature checked again, long after the
//! confirm, from the container alone, at a date (now unless asked):
//!
//! - the CMS signature over the document and every time-stamp's imprint
//!   and place in the chain (`hpki_cades::open`);
//! - each time-stamp's TSA certificate at the time the *next* time-stamp
//!   vouches for (the signature time-stamps at the first archive
//!   time-stamp's genTime, each archive time-stamp at the next one's),
//!   with only the CRLs the container carries — gathered while that TSA
//!   certificate was still valid; the newest at the date of the check,
//!   with the configured TSA CRLs too, since nothing vouches for it but
//!   itself;
//! - the signer's certificate at the first signature time-stamp's genTime
//!   with the container's CRLs. Without a time-stamp (B-B) the signer is
//!   checked at the signingTime the card signed, which is the signer's own
//!   claim.
//!
//! So a record stays verifiable after the doctor's and the first TSA's
//! certificates expire exactly when a renewal added an archive
//! time-stamp before the newest TSA certificate expired.

use hpki_cades::{CadesError, Opened, TimeStampToken};
use hpki_profile::{Purpose, Refusal};

use crate::config::Config;
use crate::credentials::{LoadError, configured_tsa_crls, tsa_validator_with_crls, validator_with_crls};

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("the signature does not verify: {0}")]
    Signature(#[from] CadesError),
    #[error("the signer's certificate was refused at {}: {refusal}", rfc3339(*at))]
    Signer { at: i64, refusal: Refusal },
    #[error("{which} time-stamp {n}: its TSA's certificate was refused at {}: {refusal}", rfc3339(*at))]
    Tsa { which: StampKind, n: usize, at: i64, refusal: Box<Refusal> },
    #[error("the record has {0} time-stamp(s) but [timestamps] names no TSA anchors to check them with")]
    NoTsaAnchors(usize),
    #[error("{0}")]
    Config(#[from] LoadError),
}

/// Which kind of time-stamp a link of the chain is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StampKind {
    /// Over the signature value (CAdES-T).
    Signature,
    /// Over everything before it (archive-time-stamp-v3).
    Archive,
}

impl std::fmt::Display for StampKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StampKind::Signature => "signature",
            StampKind::Archive => "archive",
        })
    }
}

/// What a successful check found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Verdict {
    /// "B-B", "B-T", "B-LT", "B-LTA".
    pub level: &'static str,
    /// The date the record was checked at (Unix seconds).
    pub checked_at: i64,
    /// The signer's subject, leaf to anchor.
    pub signer_chain: Vec<String>,
    /// The card's signingTime (Unix seconds): the signer's claim.
    pub signing_time: i64,
    /// The first signature time-stamp's genTime: when the signature
    /// existed at the latest, vouched for by the TSA.
    pub time_stamped_at: Option<i64>,
    /// The time the signer's certificate was checked at.
    pub signer_checked_at: i64,
    /// Each archive time-stamp's genTime, oldest first.
    pub archive_time_stamps: Vec<i64>,
    /// Each time-stamp's TSA subject, in chain order.
    pub tsas: Vec<String>,
    /// The newest time-stamp's TSA certificate's notAfter: the record must
    /// be renewed before then (`records renew-timestamps`).
    pub renew_before: Option<i64>,
}

/// Checks `p7s` over `document` at `at` as the module says.
pub fn check(config: &Config, document: &[u8], p7s: &[u8], at: i64) -> Result<Verdict, CheckError> {
    let opened: Opened = hpki_cades::open(p7s, document)?;
    let chain: Vec<(StampKind, usize, &TimeStampToken)> = opened
        .timestamps
        .iter()
        .enumerate()
        .map(|(n, t)| (StampKind::Signature, n + 1, t))
        .chain(opened.archive_timestamps.iter().enumerate().map(|(n, t)| (StampKind::Archive, n + 1, t)))
        .collect();
    let mut tsas = Vec::new();
    if !chain.is_empty() {
        let embedded =
            tsa_validator_with_crls(config, opened.crls.clone())?.ok_or(CheckError::NoTsaAnchors(chain.len()))?;
        let mut newest_crls = opened.crls.clone();
        newest_crls.extend(configured_tsa_crls(config)?);
        let newest = tsa_validator_with_crls(config, newest_crls)?.ok_or(CheckError::NoTsaAnchors(chain.len()))?;
        let first_archive = opened.archive_timestamps.first().map(|t| t.gen_time);
        for (i, &(which, n, token)) in chain.iter().enumerate() {
            // Who vouches for this token, and so when its TSA must have
            // been valid: the first archive time-stamp for the signature
            // time-stamps, the next archive time-stamp for an archive one.
            let vouched_at = match which {
                StampKind::Signature => first_archive,
                StampKind::Archive => chain.get(i + 1).map(|(_, _, next)| next.gen_time),
            };
            let (validator, when) = match vouched_at {
                Some(t) => (&embedded, t),
                None => (&newest, at),
            };
            let others: Vec<Vec<u8>> = opened
                .certificates
                .iter()
                .chain(token.certs.iter())
                .filter(|c| **c != token.tsa_cert)
                .cloned()
                .collect();
            let v = validator
                .validate_uncached(&token.tsa_cert, &others, Purpose::Any, when)
                .map_err(|refusal| CheckError::Tsa { which, n, at: when, refusal: Box::new(refusal) })?;
            tsas.push(v.chain.first().cloned().unwrap_or_default());
        }
    }
    let time_stamped_at = opened.timestamps.first().map(|t| t.gen_time);
    let signer_at = time_stamped_at.unwrap_or(opened.attributes.signing_time);
    let others: Vec<Vec<u8>> = opened.certificates.iter().filter(|c| **c != opened.signer_cert).cloned().collect();
    let signer = validator_with_crls(config, opened.crls.clone())?
        .validate_uncached(&opened.signer_cert, &others, Purpose::Signature, signer_at)
        .map_err(|refusal| CheckError::Signer { at: signer_at, refusal })?;
    Ok(Verdict {
        level: opened.level(),
        checked_at: at,
        signer_chain: signer.chain,
        signing_time: opened.attributes.signing_time,
        time_stamped_at,
        signer_checked_at: signer_at,
        archive_time_stamps: opened.archive_timestamps.iter().map(|t| t.gen_time).collect(),
        tsas,
        renew_before: newest_time_stamp(&opened).and_then(|t| not_after(&t.tsa_cert)),
    })
}

/// The time-stamp nothing else vouches for yet: the newest archive
/// time-stamp, or the newest signature time-stamp.
pub fn newest_time_stamp(opened: &Opened) -> Option<&TimeStampToken> {
    opened.archive_timestamps.last().or(opened.timestamps.last())
}

/// A certificate's notAfter (Unix seconds).
pub fn not_after(cert: &[u8]) -> Option<i64> {
    x509_parser::parse_x509_certificate(cert).ok().map(|(_, c)| c.validity().not_after.timestamp())
}

fn rfc3339(t: i64) -> String {
    hpki_profile::validate::rfc3339(t)
}
