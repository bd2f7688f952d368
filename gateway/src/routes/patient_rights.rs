//! Patients' rights on the patient listener (FLOW-9, FLOW-4), called by
//! `patient_portal`'s dispatch once the session is checked:
//!
//! - disclosure: everything held about oneself — identity, every record
//!   (whatever the sharing consent: it is one's own), who entered and who
//!   confirmed each, and who accessed them and when (institution and role,
//!   from the audit log) — as JSON and as a FHIR R4 Bundle (`domain::fhir`);
//! - correction requests against a record, answered by the staff of the
//!   record's institution (`routes::corrections`);
//! - suspension of use: the sharing consent per institution, withdrawn or
//!   restored; staff reads look it up at every request, so it holds from
//!   the next one.

use std::collections::HashMap;

use hpki_protocol::ErrorCode;
use hpki_protocol::rights::{
    AccessEntry, ConsentChange, ConsentState, Correction, CorrectionRequest, CorrectionStatus, DisclosedRecord,
    Disclosure, RecordPerson,
};
use hpki_protocol::workflow::Patient;

use crate::audit::outbox::Staged;
use crate::gateway::Gateway;
use crate::routes::ApiError;
use crate::routes::workflow::{json, parse, patient as patient_of, random_id, record_view, time};
use crate::store::{CorrectionRow, PatientRow, RecordRow, SealedTable};

/// The longest correction request or answer.
pub const MAX_TEXT_CHARS: usize = 2000;

/// Everything held about a patient, and (for the FHIR Provenance, when
/// asked for) each signed record's signed bytes and newest container.
pub struct Held {
    pub disclosure: Disclosure,
    pub signed: crate::domain::fhir::Signed,
}

/// The sealed text of a request and, once answered, the answer.
#[derive(serde::Serialize, serde::Deserialize)]
struct CorrectionText {
    text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resolution: Option<String>,
}

pub(crate) fn seal_correction(
    gw: &Gateway,
    id: &str,
    text: &str,
    resolution: Option<&str>,
) -> Result<(String, Vec<u8>), ApiError> {
    let plain = serde_json::to_vec(&CorrectionText { text: text.into(), resolution: resolution.map(Into::into) })
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    Ok(gw.keys().seal(&SealedTable::Corrections.aad(id), &plain)?)
}

/// A request as people read it; `patient` is the id shown.
pub(crate) fn correction_view(gw: &Gateway, c: &CorrectionRow, patient: &str) -> Result<Correction, ApiError> {
    let plain = gw.keys().open(&c.key_id, &SealedTable::Corrections.aad(&c.id), &c.content)?;
    let t: CorrectionText = serde_json::from_slice(&plain)
        .map_err(|_| ApiError::new(ErrorCode::CorruptRecord, "a stored correction request does not open"))?;
    Ok(Correction {
        id: c.id.clone(),
        patient: patient.into(),
        record: c.record.clone(),
        institution: c.institution.clone(),
        status: c.status,
        text: t.text,
        requested_at: time(c.created_at),
        resolved_at: c.resolved_at.map(time),
        resolution: t.resolution,
        correction_record: c.correction_record.clone(),
    })
}

/// A text of 1–[`MAX_TEXT_CHARS`] characters, trimmed.
pub(crate) fn text_of(text: &str, what: &str) -> Result<String, ApiError> {
    let t = text.trim();
    if t.is_empty() || t.chars().count() > MAX_TEXT_CHARS {
        return Err(ApiError::new(ErrorCode::BadRequest, format!("{what} must be 1–{MAX_TEXT_CHARS} characters")));
    }
    Ok(t.to_owned())
}

/// `POST /p/v1/corrections`: against one of one's own records.
pub async fn request_correction(
    gw: &Gateway,
    patient: &str,
    body: &[u8],
    object: &mut String,
    staged: impl FnOnce(&str) -> Staged,
) -> Result<(u16, Vec<u8>), ApiError> {
    let req: CorrectionRequest = parse(body)?;
    let p = patient_of(gw, patient).await?;
    let text = text_of(&req.text, "the correction request")?;
    // Someone else's record, or none: the same answer.
    let record = gw
        .store
        .record(&req.record)
        .await?
        .filter(|r| r.patient == p.pseudonym)
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no record {:?} of yours", req.record)))?;
    let id = random_id(gw, "cor_")?;
    let (key_id, content) = seal_correction(gw, &id, &text, None)?;
    let row = CorrectionRow {
        id: id.clone(),
        patient: p.pseudonym.clone(),
        record: record.id.clone(),
        institution: record.institution.clone(),
        status: CorrectionStatus::Pending,
        key_id,
        content,
        created_at: gw.clock.now(),
        resolved_by: None,
        resolved_at: None,
        correction_record: None,
    };
    *object = format!("patient:{patient} correction:{id} record:{}", record.id);
    gw.store.add_correction(&row, &staged(object.as_str())).await?;
    json(201, &correction_view(gw, &row, patient)?)
}

/// `GET /p/v1/corrections`.
pub async fn corrections(gw: &Gateway, patient: &str) -> Result<(u16, Vec<u8>), ApiError> {
    let p = patient_of(gw, patient).await?;
    json(200, &hpki_protocol::rights::Corrections { corrections: corrections_view(gw, &p).await? })
}

async fn corrections_view(gw: &Gateway, p: &PatientRow) -> Result<Vec<Correction>, ApiError> {
    gw.store.corrections_of(&p.pseudonym).await?.iter().map(|c| correction_view(gw, c, &p.id)).collect()
}

/// The sharing of every institution that holds records of the patient or
/// has a consent of theirs on file.
async fn consent_states(gw: &Gateway, p: &PatientRow, records: &[RecordRow]) -> Result<Vec<ConsentState>, ApiError> {
    let mut out: Vec<ConsentState> = gw
        .store
        .consents_of(&p.id)
        .await?
        .into_iter()
        .map(|c| ConsentState {
            institution: c.institution,
            shared: c.withdrawn_at.is_none(),
            since: Some(time(c.withdrawn_at.unwrap_or(c.granted_at))),
        })
        .collect();
    for r in records {
        if !out.iter().any(|c| c.institution == r.institution) {
            out.push(ConsentState { institution: r.institution.clone(), shared: false, since: None });
        }
    }
    out.sort_by(|a, b| a.institution.cmp(&b.institution));
    Ok(out)
}

/// `GET /p/v1/consents`.
pub async fn consents(gw: &Gateway, patient: &str) -> Result<(u16, Vec<u8>), ApiError> {
    let p = patient_of(gw, patient).await?;
    let records = gw.store.records_of(&p.pseudonym).await?;
    json(200, &hpki_protocol::rights::Consents { consents: consent_states(gw, &p, &records).await? })
}

/// `POST /p/v1/consents`: withdraw (suspension of use) or restore the
/// sharing of one institution's records.
pub async fn change_consent(
    gw: &Gateway,
    patient: &str,
    body: &[u8],
    object: &mut String,
    staged: &Staged,
) -> Result<(u16, Vec<u8>), ApiError> {
    let req: ConsentChange = parse(body)?;
    *object = format!("patient:{patient} institution:{} share:{}", req.institution, req.share);
    let now = gw.clock.now();
    if req.share {
        gw.store
            .grant_consent(patient, &req.institution, &format!("patient:{patient}"), now, Some(staged))
            .await
            .map_err(|e| match e {
                crate::store::StoreError::NotFound(what) => ApiError::new(ErrorCode::NotFound, format!("no {what}")),
                e => ApiError::from(e),
            })?;
    } else if !gw.store.withdraw_consent(patient, &req.institution, now, Some(staged)).await? {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("no consent to share {:?}'s records is in force", req.institution),
        ));
    }
    consents(gw, patient).await
}

/// Who a person named on a record is, for the patient.
async fn person_of(
    gw: &Gateway,
    id: &str,
    institution: &str,
    cache: &mut HashMap<String, RecordPerson>,
) -> RecordPerson {
    if let Some(p) = cache.get(id) {
        return p.clone();
    }
    let found = match gw.store.person(id).await {
        Ok(Some(p)) => {
            RecordPerson { id: p.id, name: p.name_kanji.unwrap_or(p.name), role: p.role, institution: p.institution }
        }
        // A signer from elsewhere (a received document) is not registered
        // here: the record names them, nothing more is known.
        _ => RecordPerson { id: id.into(), name: "-".into(), role: "-".into(), institution: institution.into() },
    };
    cache.insert(id.to_owned(), found.clone());
    found
}

/// The role of an audit entry's actor, without naming them.
async fn role_of(gw: &Gateway, actor: &str, cache: &mut HashMap<String, String>) -> String {
    if actor.starts_with("patient:") {
        return "patient".into();
    }
    if actor.starts_with("admin:") {
        return "administrator".into();
    }
    if actor.starts_with("system:") || actor == "-" {
        return "gateway".into();
    }
    if let Some(r) = cache.get(actor) {
        return r.clone();
    }
    let role = match gw.store.person(actor).await {
        Ok(Some(p)) => p.role,
        _ => "-".into(),
    };
    cache.insert(actor.to_owned(), role.clone());
    role
}

/// Everything held about `patient`; with `signatures`, also what the FHIR
/// Provenance carries (the JSON form does without: no container read, no
/// second opening of each signed document).
pub async fn held(gw: &Gateway, patient: &str, signatures: bool) -> Result<Held, ApiError> {
    let p = patient_of(gw, patient).await?;
    let rows = gw.store.records_of(&p.pseudonym).await?;
    let mut people = HashMap::new();
    let mut records = Vec::new();
    let mut signed = HashMap::new();
    for r in &rows {
        let entered_by = person_of(gw, &r.author, &r.institution, &mut people).await;
        let confirmed_by = match &r.signer {
            Some(s) => Some(person_of(gw, s, &r.institution, &mut people).await),
            None => None,
        };
        if signatures
            && r.signature_level.is_some()
            && let Some(newest) = gw.store.record_signatures(&r.id).await?.pop()
        {
            let document = gw.keys().open(&r.key_id, &SealedTable::Records.aad(&r.id), &r.content)?;
            signed.insert(r.id.clone(), (document.to_vec(), newest.container));
        }
        records.push(DisclosedRecord { record: record_view(gw, r, &p.id)?, entered_by, confirmed_by });
    }
    let mut roles = HashMap::new();
    let mut accesses = Vec::new();
    for e in gw.store.audit_about_patient(&p.id).await? {
        let role = role_of(gw, &e.event.actor, &mut roles).await;
        accesses.push(AccessEntry {
            at: time(e.at.div_euclid(1000)),
            break_glass: e.event.action.starts_with("break_glass."),
            action: e.event.action,
            institution: e.event.institution,
            role,
            outcome: e.event.outcome,
        });
    }
    let disclosure = Disclosure {
        generated_at: time(gw.clock.now()),
        consents: consent_states(gw, &p, &rows).await?,
        corrections: corrections_view(gw, &p).await?,
        patient: Patient {
            id: p.id.clone(),
            name: p.name.clone(),
            name_kanji: p.name_kanji.clone(),
            birth_date: p.birth_date.clone(),
        },
        records,
        accesses,
    };
    Ok(Held { disclosure, signed })
}

/// `GET /p/v1/disclosure`.
pub async fn disclosure(gw: &Gateway, patient: &str) -> Result<(u16, Vec<u8>), ApiError> {
    json(200, &held(gw, patient, false).await?.disclosure)
}

/// `GET /p/v1/disclosure/fhir`.
pub async fn disclosure_fhir(gw: &Gateway, patient: &str) -> Result<(u16, Vec<u8>), ApiError> {
    let h = held(gw, patient, true).await?;
    json(200, &crate::domain::fhir::bundle(&gw.config.gateway_id, &h.disclosure, &h.signed))
}
