//! Confirm (FLOW-2, DATA-4): the exact signing bytes of a draft version,
//! the CAdES signed attributes over them for the card that will sign, and
//! the doctor's card signature over those attributes turning the draft into
//! a sealed record with its signature container — one draft, or a batch
//! under one PIN. The signature certificate is validated by the same
//! validator as a login, for the signature purpose, now and at the
//! time-stamp's genTime.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery};

use crate::audit::outbox::Staging;
use crate::domain::roles::Action;
use crate::gateway::{ConnInfo, Gateway};
use crate::routes::drafts::{find_draft, unknown_draft};
use crate::routes::workflow::{
    Answer, document, draft_kind, hex, json, no_open_encounter, parse, random_id, record_view,
};
use crate::routes::{ApiError, Authenticated, Ctx, Handled, check_allowed as require, naming_object, staging};
use crate::signatures::seal_signature;
use crate::store::{DraftRow, PatientRow, RecordRow, SealedTable, SignatureRow, StoreError};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hpki_cades::{CadesError, SignedAttributes};
use hpki_profile::Purpose;
use hpki_protocol::DraftKind;
use hpki_protocol::ErrorCode;
use hpki_protocol::workflow::{
    BatchResult, ConfirmBatch, ConfirmBatchResponse, ConfirmRequest, Record, SignedAttributesAnswer,
    SignedAttributesRequest, SigningBytes,
};
use ring::digest::{SHA256, digest};

pub(crate) fn decode(b64: &str, what: &str) -> Result<Vec<u8>, ApiError> {
    B64.decode(b64).map_err(|_| ApiError::new(ErrorCode::MalformedRequest, format!("{what} is not base64")))
}

pub(crate) fn decode_all(list: &[String]) -> Result<Vec<Vec<u8>>, ApiError> {
    list.iter().map(|i| decode(i, "an intermediate certificate")).collect()
}

/// How long signed attributes the gateway handed out may be signed and
/// brought back: the PIN entry and the card, with room for a batch.
const SIGNED_ATTRIBUTES_LIFETIME_SECONDS: i64 = 600;
/// signingTime may be ahead of the clock by this much (another gateway
/// process of the same store built them).
const SIGNED_ATTRIBUTES_AHEAD_SECONDS: i64 = 60;

/// A draft this person may sign now, at `version` if given.
async fn signable_draft(gw: &Gateway, a: &Authenticated, id: &str, version: Option<i64>) -> Result<DraftRow, ApiError> {
    let d = find_draft(gw, id).await?;
    if d.signer != a.person.id {
        return Err(ApiError::new(ErrorCode::NotYourDraft, "this draft awaits someone else"));
    }
    if d.confirmed {
        return Err(ApiError::new(ErrorCode::AlreadyConfirmed, "the draft is already confirmed"));
    }
    if let Some(v) = version.filter(|v| *v != d.version) {
        return Err(ApiError::new(ErrorCode::StaleVersion, format!("the draft is at version {}, not {v}", d.version)));
    }
    Ok(d)
}

pub(crate) async fn signing_bytes_of(gw: &Gateway, a: &Authenticated, id: &str, version: Option<i64>) -> Answer {
    let d = signable_draft(gw, a, id, version).await?;
    let (_, bytes) = document(gw, &d)?;
    json(
        200,
        &SigningBytes {
            draft: d.id.clone(),
            version: d.version,
            sha256: hex(digest(&SHA256, &bytes).as_ref()),
            document: B64.encode(&bytes),
        },
    )
}

/// The signed attributes of a draft version for `cert` (DER).
pub(crate) async fn signed_attributes_of(
    gw: &Gateway,
    a: &Authenticated,
    id: &str,
    version: i64,
    cert: &[u8],
) -> Result<SignedAttributesAnswer, ApiError> {
    let d = signable_draft(gw, a, id, Some(version)).await?;
    let (_, bytes) = document(gw, &d)?;
    let attrs = SignedAttributes::build(&bytes, cert, gw.clock.now())
        .map_err(|e| ApiError::new(ErrorCode::MalformedCertificate, format!("the signature certificate: {e}")))?;
    Ok(SignedAttributesAnswer {
        draft: d.id.clone(),
        version: d.version,
        sha256: hex(digest(&SHA256, &bytes).as_ref()),
        document: B64.encode(&bytes),
        signed_attributes: B64.encode(&attrs.der),
    })
}

/// The card signature over signed attributes for `document`: the
/// attributes must be what the gateway builds (read strictly), for this
/// document and this certificate, recent, and signed by it.
fn check_signed_attributes(
    gw: &Gateway,
    der: Option<&[u8]>,
    document: &[u8],
    cert: &[u8],
    signature: &[u8],
    version: i64,
) -> Result<SignedAttributes, ApiError> {
    let der = der.ok_or_else(|| {
        ApiError::new(
            ErrorCode::BadSignedAttributes,
            "a confirm carries the CAdES signed attributes the card signed (POST /v1/drafts/{id}/signed-attributes)",
        )
    })?;
    let attrs =
        SignedAttributes::parse(der).map_err(|e| ApiError::new(ErrorCode::BadSignedAttributes, e.to_string()))?;
    match attrs.check(document, cert) {
        Ok(()) => {}
        Err(CadesError::DigestMismatch) => {
            return Err(ApiError::new(
                ErrorCode::SignatureInvalid,
                format!("the signed attributes do not cover version {version} of this draft as the gateway holds it"),
            ));
        }
        Err(e) => return Err(ApiError::new(ErrorCode::BadSignedAttributes, format!("{e}, not the one presented"))),
    }
    let now = gw.clock.now();
    if attrs.signing_time > now + SIGNED_ATTRIBUTES_AHEAD_SECONDS
        || now - attrs.signing_time > SIGNED_ATTRIBUTES_LIFETIME_SECONDS
    {
        return Err(ApiError::new(
            ErrorCode::SignedAttributesStale,
            format!(
                "the signed attributes were made {} s ago; sign within {SIGNED_ATTRIBUTES_LIFETIME_SECONDS} s",
                now - attrs.signing_time
            ),
        ));
    }
    crate::routes::verify_card_signature(
        cert,
        &attrs.der,
        signature,
        &format!("the signature does not cover the signed attributes of version {version} of this draft"),
    )?;
    Ok(attrs)
}

/// What the card sent for one draft.
pub(crate) struct CardSignature<'a> {
    pub cert: &'a [u8],
    pub intermediates: &'a [Vec<u8>],
    pub signed_attributes: Option<&'a [u8]>,
    pub signature: &'a [u8],
}

/// Confirms one draft version with the signature card (FLOW-2); a retried
/// confirm returns the record the first one made.
pub(crate) async fn confirm_one(
    gw: &Gateway,
    conn: &ConnInfo,
    a: &Authenticated,
    id: &str,
    version: i64,
    card: &CardSignature<'_>,
    st: &Staging,
) -> Result<Record, ApiError> {
    let CardSignature { cert, intermediates, signed_attributes, signature } = *card;
    // Everything the checks below read, in one round trip.
    let ctx = gw
        .store
        .confirm_context(id, &a.person.id, &conn.terminal.institution, gw.clock.now())
        .await?
        .ok_or_else(|| unknown_draft(id))?;
    let d = &ctx.draft;
    let kind = draft_kind(d)?;
    // Who may confirm what: doctors and dentists their assistants' drafts,
    // pharmacists only their own dispensing records.
    match kind {
        DraftKind::Medical => require(a, Action::ConfirmDraft)?,
        DraftKind::Dispensing => require(a, Action::RegisterDispensing)?,
    }
    if d.signer != a.person.id {
        return Err(ApiError::new(
            ErrorCode::NotYourDraft,
            format!("this draft awaits {}, not {}", d.signer, a.person.id),
        ));
    }
    // Where and when a confirm may be made, a retry of one included: it
    // answers with the record, which is read at this institution within an
    // open encounter (FLOW-3) like any other.
    if d.institution != conn.terminal.institution {
        return Err(ApiError::new(ErrorCode::DraftOtherInstitution, "the draft was entered at another institution"));
    }
    let patient_id = ctx.patient_id.as_deref().ok_or_else(unregistered_patient)?;
    if !ctx.encounter_open {
        return Err(no_open_encounter(conn, patient_id));
    }
    let patient = patient_id.to_owned();
    if d.confirmed {
        return existing_record(gw, d, version, &patient).await;
    }
    if d.version != version {
        return Err(ApiError::new(
            ErrorCode::StaleVersion,
            format!("the draft changed: it is at version {}, the signature is for {version}", d.version),
        ));
    }
    if kind == DraftKind::Medical && !ctx.linked {
        return Err(ApiError::new(
            ErrorCode::NotLinked,
            format!("{} is no longer linked to {}", d.assistant, a.person.id),
        ));
    }

    // The signature over the document as held now, then the certificate.
    let (_, bytes) = document(gw, d)?;
    let attrs = check_signed_attributes(gw, signed_attributes, &bytes, cert, signature, version)?;
    let now = gw.clock.now();
    let validated = gw
        .validator
        .load()
        .validate(cert, intermediates, Purpose::Signature, now)
        .map_err(|r| ApiError::certificate(&r, "the signature certificate was refused"))?;
    if validated.holder.person_id().as_deref() != Some(a.person.id.as_str()) {
        return Err(ApiError::new(
            ErrorCode::SignerOtherPerson,
            format!(
                "the signature certificate belongs to {}, the session to {}",
                validated.holder.person_id().unwrap_or_else(|| "nobody known".into()),
                a.person.id
            ),
        ));
    }
    let evidence = crate::routes::revocation_evidence(&validated);
    // The time-stamp and the validation data (DATA-4): a TSA that cannot be
    // reached or whose answer fails a check refuses the confirm here,
    // before anything is stored.
    let sealed_signature = seal_signature(gw, &attrs, signature, cert, intermediates, &validated).await?;
    let record_id = random_id(gw, "rec_")?;
    let (key_id, sealed) = gw.keys().seal(&SealedTable::Records.aad(&record_id), &bytes)?;
    let row = RecordRow {
        id: record_id,
        kind: kind.name().into(),
        patient: d.patient.clone(),
        institution: d.institution.clone(),
        origin_reference: format!("draft:{}", d.id),
        draft_version: Some(d.version),
        author: d.assistant.clone(),
        signer: Some(a.person.id.clone()),
        key_id,
        content: sealed,
        document_sha256: Some(digest(&SHA256, &bytes).as_ref().to_vec()),
        // The signature value and the certificate are in the container
        // (`record_signatures`), the one copy kept; the columns stay for
        // records confirmed before containers existed.
        signature: None,
        signature_cert: None,
        revocation: evidence,
        created_at: now,
        signature_level: Some(sealed_signature.level.to_owned()),
        time_stamped_at: sealed_signature.time_stamped_at,
    };
    let signature_row = SignatureRow {
        record: row.id.clone(),
        seq: 0,
        level: sealed_signature.level.to_owned(),
        time_stamped_at: sealed_signature.time_stamped_at,
        container: sealed_signature.container,
        created_at: now,
    };
    let staged = st.stage(&a.person.id, format!("draft:{} record:{}", d.id, row.id), gw.clock.now_ms());
    match gw.store.confirm_draft(&d.id, d.version, &row, &signature_row, &staged).await {
        Ok(()) => record_view(gw, &row, &patient),
        // A concurrent confirm or edit won the race: answer as a retry would.
        Err(StoreError::Conflict(_)) => {
            let d = find_draft(gw, id).await?;
            if d.confirmed {
                existing_record(gw, &d, version, &patient).await
            } else {
                Err(ApiError::new(
                    ErrorCode::StaleVersion,
                    format!("the draft changed: it is at version {}", d.version),
                ))
            }
        }
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn unregistered_patient() -> ApiError {
    ApiError::new(ErrorCode::CorruptDraft, "the draft's patient is not registered")
}

pub(crate) async fn patient_by_pseudonym(gw: &Gateway, pseudonym: &str) -> Result<PatientRow, ApiError> {
    gw.store.patient_by_pseudonym(pseudonym).await?.ok_or_else(unregistered_patient)
}

/// Idempotency: the record of an already confirmed draft, if the confirm
/// was for the version that became the record.
pub(crate) async fn existing_record(
    gw: &Gateway,
    d: &DraftRow,
    version: i64,
    patient: &str,
) -> Result<Record, ApiError> {
    let record = match &d.record_id {
        Some(r) => gw.store.record(r).await?,
        None => None,
    };
    match record {
        Some(r) if r.draft_version == Some(version) => record_view(gw, &r, patient),
        Some(r) => Err(ApiError::new(
            ErrorCode::AlreadyConfirmed,
            format!("version {} of this draft is already a record ({})", r.draft_version.unwrap_or_default(), r.id),
        )),
        None => Err(ApiError::new(ErrorCode::CorruptDraft, "a confirmed draft without its record")),
    }
}

pub(crate) async fn confirm_batch(
    gw: &Gateway,
    conn: &ConnInfo,
    a: &Authenticated,
    body: &[u8],
    object: &mut String,
    st: &Staging,
) -> Answer {
    let req: ConfirmBatch = parse(body)?;
    if req.items.is_empty() || req.items.len() > 100 {
        return Err(ApiError::new(ErrorCode::BadBatch, "a batch holds 1–100 drafts"));
    }
    let cert = decode(&req.certificate, "certificate")?;
    let intermediates = decode_all(&req.intermediates)?;
    let mut results = Vec::with_capacity(req.items.len());
    let mut confirmed = Vec::new();
    for item in &req.items {
        let decoded = decode(&item.signature, "signature").and_then(|sig| {
            let attrs = item.signed_attributes.as_deref().map(|t| decode(t, "signed_attributes")).transpose()?;
            Ok((sig, attrs))
        });
        let outcome = match decoded {
            Ok((sig, attrs)) => {
                let card = CardSignature {
                    cert: &cert,
                    intermediates: &intermediates,
                    signed_attributes: attrs.as_deref(),
                    signature: &sig,
                };
                confirm_one(gw, conn, a, &item.draft, item.version, &card, st).await
            }
            Err(r) => Err(r),
        };
        match outcome {
            Ok(record) => {
                confirmed.push(format!("{}={}", item.draft, record.id));
                results.push(BatchResult { draft: item.draft.clone(), record: Some(record), error: None });
            }
            Err(r) => {
                confirmed.push(format!("{}!{}", item.draft, r.code));
                results.push(BatchResult { draft: item.draft.clone(), record: None, error: Some(r.body()) });
            }
        }
    }
    *object = format!("batch:{}", confirmed.join(","));
    json(200, &ConfirmBatchResponse { results })
}

/// `GET /v1/drafts/{draft}/signing-bytes[?version=N]`.
pub async fn signing_bytes(c: Ctx, Path(draft): Path<String>, RawQuery(query): RawQuery) -> Handled {
    let version = query
        .as_deref()
        .unwrap_or_default()
        .split('&')
        .find_map(|kv| kv.strip_prefix("version="))
        .map(str::parse::<i64>)
        .transpose()
        .map_err(|_| ApiError::new(ErrorCode::MalformedRequest, "version must be a whole number"));
    let answer = match version {
        Ok(version) => signing_bytes_of(&c.gw, &c.a, &draft, version).await,
        Err(e) => Err(e),
    };
    Handled::about(format!("draft:{draft}"), answer)
}

/// `POST /v1/drafts/{draft}/signed-attributes`.
pub async fn signed_attributes(c: Ctx, Path(draft): Path<String>, body: Bytes) -> Handled {
    naming_object(async |object| {
        *object = format!("draft:{draft}");
        let req: SignedAttributesRequest = parse(&body)?;
        let cert = decode(&req.certificate, "certificate")?;
        json(200, &signed_attributes_of(&c.gw, &c.a, &draft, req.version, &cert).await?)
    })
    .await
}

/// `POST /v1/drafts/{draft}/confirm`.
pub async fn confirm(c: Ctx, Path(draft): Path<String>, body: Bytes) -> Handled {
    naming_object(async |object| {
        *object = format!("draft:{draft}");
        let req: ConfirmRequest = parse(&body)?;
        let cert = decode(&req.certificate, "certificate")?;
        let intermediates = decode_all(&req.intermediates)?;
        let signature = decode(&req.signature, "signature")?;
        let attrs = req.signed_attributes.as_deref().map(|t| decode(t, "signed_attributes")).transpose()?;
        let st = staging(&c.staging)?;
        let card = CardSignature {
            cert: &cert,
            intermediates: &intermediates,
            signed_attributes: attrs.as_deref(),
            signature: &signature,
        };
        let record = confirm_one(&c.gw, &c.conn, &c.a, &draft, req.version, &card, st).await?;
        *object = format!("draft:{draft} record:{}", record.id);
        json(200, &record)
    })
    .await
}

/// `POST /v1/confirm-batch`: drafts confirmed under one PIN entry.
pub async fn batch(c: Ctx, body: Bytes) -> Handled {
    naming_object(async |object| confirm_batch(&c.gw, &c.conn, &c.a, &body, object, staging(&c.staging)?).await).await
}
