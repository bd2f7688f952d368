//! The gateway as an RFC 3161 client (DATA-4): a time-stamp over a card
//! signature's value, every check of the answer, and the TSA's validation
//! data for the record's container.

use std::sync::Arc;
use std::time::Duration;

use hpki_cades::TimeStampToken;
use hpki_cades::tsp::{self, TsaResponseError};
use hpki_profile::{Purpose, Refusal, Validator};
use hpki_protocol::ErrorCode;
use ring::rand::SecureRandom;

use super::tsa_client::{self, TsaUrl};
use crate::config::TimestampsSection;
use crate::routes::ApiError;

/// What a time-stamp failed on. Nothing is stored when any of these
/// happens: the confirm is refused with the code of the variant.
#[derive(Debug, thiserror::Error)]
pub enum TimestampError {
    #[error("the time-stamping authority is unavailable: {0}")]
    Unavailable(String),
    #[error("the time-stamping authority's answer was refused: {0}")]
    Response(TsaResponseError),
    #[error("the TSA certificate was refused at genTime: {0}")]
    Untrusted(Refusal),
    #[error("the token's genTime is {skew} s from the gateway's clock (at most {max} s)")]
    Skew { skew: i64, max: i64 },
    #[error("no randomness for the nonce")]
    NoRandomness,
}

impl From<TimestampError> for ApiError {
    fn from(e: TimestampError) -> ApiError {
        let code = match &e {
            TimestampError::Unavailable(_) | TimestampError::Response(TsaResponseError::Rejected { .. }) => {
                ErrorCode::TimestampUnavailable
            }
            TimestampError::Response(TsaResponseError::WrongNonce) => ErrorCode::TimestampWrongNonce,
            TimestampError::Response(TsaResponseError::WrongImprint) => ErrorCode::TimestampWrongImprint,
            TimestampError::Response(_) => ErrorCode::TimestampInvalid,
            TimestampError::Untrusted(_) => ErrorCode::TimestampUntrusted,
            TimestampError::Skew { .. } => ErrorCode::TimestampTimeSkew,
            TimestampError::NoRandomness => ErrorCode::NoRandomness,
        };
        tracing::warn!(error = %e, %code, "no time-stamp: the confirm is refused");
        ApiError::new(code, format!("{e}; nothing was confirmed"))
    }
}

/// A checked token and the TSA's validation data.
#[derive(Debug, Clone)]
pub struct Stamp {
    pub token: TimeStampToken,
    /// The TSA's path, leaf first (DER).
    pub path: Vec<Vec<u8>>,
    /// The CRLs that showed it unrevoked (DER).
    pub crls: Vec<Vec<u8>>,
}

impl Timestamper {
    /// The path of a token's TSA certificate at its genTime, to this
    /// TSA's anchors (`others`: more certificates to build it from).
    pub fn tsa_path(
        &self,
        token: &TimeStampToken,
        others: &[Vec<u8>],
    ) -> Result<hpki_profile::Validated, TimestampError> {
        self.tsa_path_at(token, others, token.gen_time)
    }

    /// [`Timestamper::tsa_path`] at `at` instead of genTime: a renewal
    /// shows the newest TSA's certificate valid and unrevoked now.
    pub fn tsa_path_at(
        &self,
        token: &TimeStampToken,
        others: &[Vec<u8>],
        at: i64,
    ) -> Result<hpki_profile::Validated, TimestampError> {
        let presented: Vec<Vec<u8>> =
            token.certs.iter().chain(others.iter()).filter(|c| **c != token.tsa_cert).cloned().collect();
        self.validator.validate(&token.tsa_cert, &presented, Purpose::Any, at).map_err(TimestampError::Untrusted)
    }
}

/// The configured TSA and the validator of its certificates (rebuilt on
/// reload with the rest of the trust configuration).
pub struct Timestamper {
    url: TsaUrl,
    policy: Option<String>,
    timeout: Duration,
    max_skew: i64,
    validator: Arc<Validator>,
}

impl Timestamper {
    pub fn new(section: &TimestampsSection, validator: Arc<Validator>) -> Result<Timestamper, String> {
        Ok(Timestamper {
            url: TsaUrl::parse(&section.url)?,
            policy: section.policy.clone(),
            timeout: Duration::from_millis(section.timeout_ms),
            max_skew: section.max_skew_seconds,
            validator,
        })
    }

    /// A time-stamp over `data` — the SignerInfo's signature value for a
    /// signature time-stamp (CAdES-T), an archive time-stamp's input for
    /// B-LTA — checked: status, nonce, imprint, policy, the token's
    /// signature and EKU, genTime within the skew of `now`, and the TSA's
    /// path at genTime.
    pub async fn stamp(&self, data: &[u8], now: i64, rng: &ring::rand::SystemRandom) -> Result<Stamp, TimestampError> {
        let mut imprint = [0u8; 32];
        imprint.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, data).as_ref());
        let mut nonce = [0u8; 16];
        rng.fill(&mut nonce).map_err(|_| TimestampError::NoRandomness)?;
        let query = tsp::request(&imprint, &mut nonce, self.policy.as_deref())
            .map_err(|e| TimestampError::Response(TsaResponseError::Token(e)))?;
        let started = std::time::Instant::now();
        let reply = tsa_client::post(&self.url, query, self.timeout).await.map_err(TimestampError::Unavailable)?;
        tracing::debug!(ms = started.elapsed().as_millis() as u64, "TSA answered");
        let token =
            tsp::read_response(&reply, &imprint, &nonce, self.policy.as_deref()).map_err(TimestampError::Response)?;
        let skew = (token.gen_time - now).abs();
        if skew > self.max_skew {
            return Err(TimestampError::Skew { skew, max: self.max_skew });
        }
        let validated = self.tsa_path(&token, &[])?;
        Ok(Stamp {
            path: validated.path.iter().map(|c| c.to_vec()).collect(),
            crls: validated.revocation.iter().map(|e| e.crl.to_vec()).collect(),
            token,
        })
    }
}
