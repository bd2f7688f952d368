//! What the workflow handlers share (patients, encounters FLOW-3, drafts
//! FLOW-1, confirm FLOW-2, notes, records): parsing and answering JSON, ids,
//! the views of stored rows, the signed document of a draft.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use hpki_protocol::ErrorCode;
use hpki_protocol::workflow::{Draft, DraftStatus, Encounter, Record, RevocationEvidence};
use hpki_protocol::{CONFIRM_DOMAIN, ConfirmDocument, DraftKind};
use ring::rand::SecureRandom;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::gateway::{ConnInfo, Gateway};
use crate::routes::ApiError;
use crate::store::{DraftRow, EncounterRow, PatientRow, RecordRow, SealedTable};

pub use crate::routes::Answer;

pub(crate) fn json<T: Serialize>(status: u16, value: &T) -> Answer {
    serde_json::to_vec(value)
        .map(|b| (status, b))
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("cannot encode the answer: {e}")))
}

pub(crate) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(ErrorCode::MalformedJson, format!("the request is not valid: {e}")))
}

pub(crate) fn content_object(v: &serde_json::Value) -> Result<(), ApiError> {
    match v {
        serde_json::Value::Object(m) if !m.is_empty() => Ok(()),
        _ => Err(ApiError::new(ErrorCode::ContentNotObject, "content must be a non-empty JSON object")),
    }
}

pub(crate) fn random_id(gw: &Gateway, prefix: &str) -> Result<String, ApiError> {
    let mut b = [0u8; 16];
    gw.rng.fill(&mut b).map_err(|_| ApiError::new(ErrorCode::NoRandomness, "the system random generator failed"))?;
    Ok(format!("{prefix}{}", B64URL.encode(b)))
}

/// Patient ids are read out and typed by people: "P" and ten characters
/// from an alphabet without 0/O, 1/I/L.
pub(crate) fn patient_id(rng: &dyn SecureRandom) -> Result<String, ApiError> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
    // Bytes at or above this would favour the first letters.
    const LIMIT: u8 = (256 - 256 % ALPHABET.len()) as u8;
    let mut out = String::from("P");
    while out.len() < 11 {
        let mut b = [0u8; 16];
        rng.fill(&mut b).map_err(|_| ApiError::new(ErrorCode::NoRandomness, "the system random generator failed"))?;
        for x in b.into_iter().filter(|x| *x < LIMIT).take(11 - out.len()) {
            out.push(char::from(ALPHABET[usize::from(x) % ALPHABET.len()]));
        }
    }
    Ok(out)
}

pub(crate) fn time(unix: i64) -> String {
    hpki_profile::validate::rfc3339(unix)
}

pub(crate) async fn patient(gw: &Gateway, id: &str) -> Result<PatientRow, ApiError> {
    gw.store.patient(id).await?.ok_or_else(|| ApiError::new(ErrorCode::UnknownPatient, format!("no patient {id:?}")))
}

/// FLOW-3: the patient is face to face with staff of this institution.
pub(crate) async fn open_encounter_here(
    gw: &Gateway,
    conn: &ConnInfo,
    patient: &PatientRow,
) -> Result<EncounterRow, ApiError> {
    gw.store
        .open_encounter_of(&patient.pseudonym, &conn.terminal.institution, gw.clock.now())
        .await?
        .ok_or_else(|| no_open_encounter(conn, &patient.id))
}

pub(crate) fn no_open_encounter(conn: &ConnInfo, patient: &str) -> ApiError {
    ApiError::new(
        ErrorCode::NoOpenEncounter,
        format!("no open encounter of patient {patient} at {}", conn.terminal.institution),
    )
}

pub(crate) fn encounter_view(e: &EncounterRow, patient: &str) -> Encounter {
    Encounter {
        id: e.id.clone(),
        patient: patient.into(),
        institution: e.institution.clone(),
        opened_by: e.opened_by.clone(),
        opened_at: time(e.opened_at),
        expires_at: time(e.expires_at),
        closed_at: e.closed_at.map(time),
    }
}

pub(crate) fn draft_kind(d: &DraftRow) -> Result<DraftKind, ApiError> {
    DraftKind::from_name(&d.kind)
        .ok_or_else(|| ApiError::new(ErrorCode::CorruptDraft, "the stored draft has an unknown kind"))
}

pub(crate) fn draft_content(gw: &Gateway, d: &DraftRow) -> Result<serde_json::Value, ApiError> {
    let plain = gw.keys().open(&d.key_id, &SealedTable::Drafts.aad(&d.id), &d.content)?;
    serde_json::from_slice(&plain).map_err(|_| ApiError::new(ErrorCode::CorruptDraft, "the stored draft is not JSON"))
}

/// The patient id staff views name for a pseudonym (`-` if none).
pub(crate) async fn patient_id_of(gw: &Gateway, pseudonym: &str) -> Result<String, ApiError> {
    Ok(gw.store.patient_by_pseudonym(pseudonym).await?.map(|p| p.id).unwrap_or_else(|| "-".into()))
}

pub(crate) async fn draft_view(gw: &Gateway, d: &DraftRow) -> Result<Draft, ApiError> {
    let patient = patient_id_of(gw, &d.patient).await?;
    Ok(Draft {
        id: d.id.clone(),
        kind: draft_kind(d)?,
        version: d.version,
        status: if d.confirmed { DraftStatus::Confirmed } else { DraftStatus::Pending },
        patient,
        encounter: d.encounter.clone(),
        institution: d.institution.clone(),
        assistant: d.assistant.clone(),
        signer: d.signer.clone(),
        content: draft_content(gw, d)?,
        created_at: time(d.created_at),
        updated_at: time(d.updated_at),
        record: d.record_id.clone(),
    })
}

/// The signed document of a draft as the gateway holds it now.
pub(crate) fn document(gw: &Gateway, d: &DraftRow) -> Result<(ConfirmDocument, Vec<u8>), ApiError> {
    let doc = ConfirmDocument {
        domain: CONFIRM_DOMAIN.into(),
        gateway: gw.config.gateway_id.clone(),
        draft: d.id.clone(),
        version: d.version,
        kind: draft_kind(d)?,
        patient: d.patient.clone(),
        encounter: d.encounter.clone(),
        institution: d.institution.clone(),
        assistant: d.assistant.clone(),
        signer: d.signer.clone(),
        content: draft_content(gw, d)?,
    };
    let bytes = doc.canonical_bytes().map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    Ok((doc, bytes))
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A record as people read it (content opened).
pub(crate) fn record_view(gw: &Gateway, r: &RecordRow, patient: &str) -> Result<Record, ApiError> {
    let plain = gw.keys().open(&r.key_id, &SealedTable::Records.aad(&r.id), &r.content)?;
    let content = if r.kind == "note" || r.kind == crate::routes::corrections::KIND {
        serde_json::from_slice(&plain)
    } else if r.kind == crate::routes::received::KIND {
        // Any bytes (a PDF, an XML letter): shown as they were signed.
        use base64::Engine;
        Ok(serde_json::json!({
            "document": base64::engine::general_purpose::STANDARD.encode(&plain[..]),
            "bytes": plain.len(),
        }))
    } else {
        serde_json::from_slice::<ConfirmDocument>(&plain).map(|d| d.content)
    }
    .map_err(|_| ApiError::new(ErrorCode::CorruptRecord, "a stored record does not open to its document"))?;
    let revocation: Vec<RevocationEvidence> = serde_json::from_str(&r.revocation).unwrap_or_default();
    Ok(Record {
        id: r.id.clone(),
        kind: r.kind.clone(),
        patient: patient.into(),
        institution: r.institution.clone(),
        origin_reference: r.origin_reference.clone(),
        author: r.author.clone(),
        signer: r.signer.clone(),
        content,
        created_at: time(r.created_at),
        document_sha256: r.document_sha256.as_deref().map(hex),
        revocation,
        signature_format: r.signature_level.clone(),
        time_stamped_at: r.time_stamped_at.map(time),
    })
}
