//! The container a confirm stores with its record: the card signature over
//! the signed attributes, the signer's validation data, and — when a TSA
//! is configured — the signature time-stamp with the TSA's validation data
//! (B-LT), then an archive time-stamp over all of that (CAdES B-LTA, EN 319
//! 122-1 §5.5.3), so that the record's first renewal has something to
//! extend. Without a TSA the record is B-B.

use hpki_cades::{CadesError, Container, SignedAttributes};
use hpki_profile::{Purpose, Validated};
use hpki_protocol::ErrorCode;

use crate::gateway::Gateway;
use crate::routes::ApiError;

/// The container made at confirm, and what the record's view says of it.
#[derive(Debug, Clone)]
pub struct SealedSignature {
    pub container: Vec<u8>,
    pub level: &'static str,
    pub time_stamped_at: Option<i64>,
}

pub const LEVEL_B_B: &str = "CAdES B-B";
pub const LEVEL_B_LTA: &str = "CAdES B-LTA";

/// `timestamp_unavailable` for a gateway without `[timestamps]`.
pub fn no_tsa() -> ApiError {
    ApiError::new(ErrorCode::TimestampUnavailable, "no TSA is configured ([timestamps]); nothing was stored")
}

fn internal(e: CadesError) -> ApiError {
    tracing::error!(error = %e, "a signature container could not be built");
    ApiError::new(ErrorCode::Internal, "the signature container could not be built")
}

/// Builds the container for a card signature already checked over
/// `attributes`, by a certificate `validated` now. With a TSA: the
/// time-stamps and validation data of [`time_stamp_and_archive`].
pub async fn seal_signature(
    gw: &Gateway,
    attributes: &SignedAttributes,
    signature: &[u8],
    cert: &[u8],
    intermediates: &[Vec<u8>],
    validated: &Validated,
) -> Result<SealedSignature, ApiError> {
    let chain: Vec<Vec<u8>> = validated.path.iter().skip(1).map(|c| c.to_vec()).collect();
    let crls: Vec<Vec<u8>> = validated.revocation.iter().map(|e| e.crl.to_vec()).collect();
    let container = Container::assemble(attributes, signature, cert, &chain, &crls).map_err(internal)?;
    if gw.timestamper.load().is_none() {
        return Ok(SealedSignature {
            container: container.to_der().map_err(internal)?,
            level: LEVEL_B_B,
            time_stamped_at: None,
        });
    }
    time_stamp_and_archive(gw, container, &attributes.message_digest, cert, intermediates).await
}

/// Takes a container holding a signature by `cert` (already checked, its
/// validation data in) to B-LTA: the signature time-stamp, the signer's
/// certificate again at its genTime (valid and unrevoked when the
/// time-stamp was applied, DATA-4), the TSA's path and CRLs, then an
/// archive time-stamp over all of it, whose own TSA's path and CRLs follow
/// it (the next renewal's archive time-stamp covers them). Without a
/// configured TSA: `timestamp_unavailable`.
pub async fn time_stamp_and_archive(
    gw: &Gateway,
    mut container: Container,
    document_sha256: &[u8; 32],
    cert: &[u8],
    intermediates: &[Vec<u8>],
) -> Result<SealedSignature, ApiError> {
    let timestamper = gw.timestamper.load_full().ok_or_else(no_tsa)?;
    let signature = container.signature_value().map_err(internal)?;
    let stamp = timestamper.stamp(&signature, gw.clock.now(), &gw.rng).await?;
    let at = stamp.token.gen_time;
    let again =
        gw.validator.load().validate(cert, intermediates, Purpose::Signature, at).map_err(|r| {
            ApiError::certificate(&r, "the signature certificate was refused at the time-stamp's genTime")
        })?;
    let again_crls: Vec<Vec<u8>> = again.revocation.iter().map(|e| e.crl.to_vec()).collect();
    container.add_signature_timestamp(&stamp.token.der).map_err(internal)?;
    container.add_validation_data(&stamp.path, &stamp.crls).map_err(internal)?;
    container.add_validation_data(&[], &again_crls).map_err(internal)?;
    let archive = container.archive_input(document_sha256).map_err(internal)?;
    let ats = timestamper.stamp(&archive.input, gw.clock.now(), &gw.rng).await?;
    container.add_archive_timestamp(&ats.token.der, &archive).map_err(internal)?;
    container.add_validation_data(&ats.path, &ats.crls).map_err(internal)?;
    Ok(SealedSignature {
        container: container.to_der().map_err(internal)?,
        level: LEVEL_B_LTA,
        time_stamped_at: Some(at),
    })
}
