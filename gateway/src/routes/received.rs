//! Signed documents received (DATA-5): a document signed elsewhere with an
//! HPKI signature card — another hospital's referral letter, say — brought
//! in by a clinician within an open encounter and kept as a record of kind
//! `received`. At once, while the signature is still valid:
//!
//! 1. the CAdES signature is checked over the exact bytes (digest,
//!    signing-certificate-v2, the signature; any time-stamps it already
//!    carries must be from a TSA the gateway trusts);
//! 2. the signer's certificate is validated along the HPKI profile for
//!    signatures, now, with the gateway's CRLs (revoked, stale CRL, not
//!    HPKI, unknown issuer: each its own code);
//! 3. the validation data are added, then a signature time-stamp and an
//!    archive time-stamp (B-LTA), as at confirm;
//! 4. the record names where the original is (DATA-3): its
//!    `origin_reference` is `received:<institution>:<reference there>`.
//!    Its `institution` is the one that received it: the copy is that
//!    institution's, and who may read it follows that institution's
//!    sharing (FLOW-4), as for the records it makes itself.
//!
//! Any refusal stores nothing and is audited with its code.

use axum::body::Bytes;
use hpki_cades::Container;
use hpki_profile::Purpose;
use hpki_protocol::ErrorCode;
use hpki_protocol::workflow::NewSignedDocument;
use ring::digest::{SHA256, digest};

use crate::audit::outbox::Staging;
use crate::gateway::{ConnInfo, Gateway};
use crate::routes::confirm::{decode, patient_by_pseudonym};
use crate::routes::encounters::encounter_for_entry;
use crate::routes::workflow::{Answer, json, parse, random_id, record_view};
use crate::routes::{ApiError, Authenticated, Ctx, Handled, naming_object, staging};
use crate::signatures::record::{no_tsa, time_stamp_and_archive};
use crate::store::{RecordRow, SealedTable, SignatureRow};

/// The records' kind for documents received.
pub const KIND: &str = "received";

/// DATA-3's names are free text from elsewhere, but they are shown and
/// audited: bounded, printable.
fn origin_field(text: &str, what: &str) -> Result<(), ApiError> {
    if text.trim().is_empty() || text.chars().count() > 200 || text.chars().any(char::is_control) {
        return Err(ApiError::new(ErrorCode::MalformedRequest, format!("{what} must be 1–200 printable characters")));
    }
    Ok(())
}

pub(crate) async fn receive_document(
    gw: &Gateway,
    conn: &ConnInfo,
    a: &Authenticated,
    body: &[u8],
    object: &mut String,
    st: &Staging,
) -> Answer {
    let req: NewSignedDocument = parse(body)?;
    *object = format!("encounter:{}", req.encounter);
    origin_field(&req.origin_institution, "origin_institution")?;
    origin_field(&req.origin_reference, "origin_reference")?;
    let document = decode(&req.document, "document")?;
    let p7s = decode(&req.signature, "signature")?;
    let e = encounter_for_entry(gw, conn, &req.encounter).await?;
    let p = patient_by_pseudonym(gw, &e.patient).await?;

    let opened = hpki_cades::open(&p7s, &document)
        .map_err(|e| ApiError::new(ErrorCode::BadSignedDocument, format!("the signature does not verify: {e}")))?;
    let others: Vec<Vec<u8>> = opened.certificates.iter().filter(|c| **c != opened.signer_cert).cloned().collect();
    let now = gw.clock.now();
    let validated = gw
        .validator
        .load()
        .validate(&opened.signer_cert, &others, Purpose::Signature, now)
        .map_err(|r| ApiError::certificate(&r, "the signer's certificate was refused"))?;
    if !opened.timestamps.is_empty() || !opened.archive_timestamps.is_empty() {
        let timestamper = gw.timestamper.load_full().ok_or_else(no_tsa)?;
        for token in opened.time_stamp_chain() {
            timestamper.tsa_path(token, &opened.certificates).map_err(|e| {
                ApiError::new(
                    ErrorCode::TimestampUntrusted,
                    format!("a time-stamp the document carries was refused: {e}; nothing was stored"),
                )
            })?;
        }
    }
    let mut container = Container::from_der(&p7s)
        .map_err(|e| ApiError::new(ErrorCode::BadSignedDocument, format!("the signature container: {e}")))?;
    let chain: Vec<Vec<u8>> = validated.path.iter().skip(1).map(|c| c.to_vec()).collect();
    let crls: Vec<Vec<u8>> = validated.revocation.iter().map(|e| e.crl.to_vec()).collect();
    container
        .add_validation_data(&chain, &crls)
        .map_err(|e| ApiError::new(ErrorCode::BadSignedDocument, format!("the signature container: {e}")))?;
    let sealed =
        time_stamp_and_archive(gw, container, &opened.attributes.message_digest, &opened.signer_cert, &others).await?;

    let id = random_id(gw, "rec_")?;
    let (key_id, content) = gw.keys().seal(&SealedTable::Records.aad(&id), &document)?;
    let row = RecordRow {
        id: id.clone(),
        kind: KIND.into(),
        patient: e.patient.clone(),
        institution: e.institution.clone(),
        origin_reference: format!("received:{}:{}", req.origin_institution, req.origin_reference),
        draft_version: None,
        author: a.person.id.clone(),
        signer: validated.holder.person_id(),
        key_id,
        content,
        document_sha256: Some(digest(&SHA256, &document).as_ref().to_vec()),
        // In the container, the one copy kept (as for confirms).
        signature: None,
        signature_cert: None,
        revocation: crate::routes::revocation_evidence(&validated),
        created_at: now,
        signature_level: Some(sealed.level.to_owned()),
        time_stamped_at: sealed.time_stamped_at,
    };
    let signature = SignatureRow {
        record: id.clone(),
        seq: 0,
        level: sealed.level.to_owned(),
        time_stamped_at: sealed.time_stamped_at,
        container: sealed.container,
        created_at: now,
    };
    *object = format!("encounter:{} record:{id}", e.id);
    gw.store.add_signed_record(&row, &signature, &st.stage(&a.person.id, object.as_str(), gw.clock.now_ms())).await?;
    json(201, &record_view(gw, &row, &p.id)?)
}

/// `POST /v1/signed-documents`.
pub async fn receive(c: Ctx, body: Bytes) -> Handled {
    naming_object(async |object| receive_document(&c.gw, &c.conn, &c.a, &body, object, staging(&c.staging)?).await)
        .await
}
