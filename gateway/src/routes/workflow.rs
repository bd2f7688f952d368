//! The workflow on the institution listener: patients, encounters (FLOW-3),
//! drafts for linked doctors (FLOW-1), confirm with the signature card
//! (FLOW-2), notes, and reading records within an encounter. Every handler
//! runs after the session check; refusals carry a stable code.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use hpki_protocol::ErrorCode;
use hpki_protocol::workflow::{ConfirmRequest, Draft, DraftStatus, Encounter, Record, RevocationEvidence};
use hpki_protocol::{CONFIRM_DOMAIN, ConfirmDocument, DraftKind};
use ring::rand::SecureRandom;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::domain::keyring::KeyError;
use crate::gateway::{ConnInfo, Gateway};
use crate::routes::confirm::{confirm_batch, confirm_one, decode, decode_all, signing_bytes};
use crate::routes::drafts::{
    create_dispensing, create_draft, edit_draft, linked_doctors, my_drafts, queue, read_draft,
};
use crate::routes::encounters::{close_encounter, open_encounter};
use crate::routes::notes::add_note;
use crate::routes::patients::{patient_records, register_patient};
use crate::routes::{Authenticated, Refused};
use crate::store::{DraftRow, EncounterRow, PatientRow, RecordRow, SealedTable};

/// A workflow request, routed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    RegisterPatient,
    PatientRecords(String),
    OpenEncounter,
    CloseEncounter(String),
    CreateDraft,
    CreateDispensing,
    ReadDraft(String),
    EditDraft(String),
    /// `version` as given in the query (checked by the handler).
    SigningBytes {
        draft: String,
        version: Option<String>,
    },
    Confirm(String),
    ConfirmBatch,
    Queue,
    AddNote,
    /// The assistant's own pending drafts.
    MyDrafts,
    /// The doctors the assistant may draft for.
    LinkedDoctors,
}

impl Route {
    /// The route of `method path?query`, if it is a workflow route.
    pub fn of(method: &str, path: &str, query: Option<&str>) -> Option<Route> {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let id = |s: &str| s.to_owned();
        Some(match (method, segments.as_slice()) {
            ("POST", ["v1", "patients"]) => Route::RegisterPatient,
            ("GET", ["v1", "patients", p, "records"]) => Route::PatientRecords(id(p)),
            ("POST", ["v1", "encounters"]) => Route::OpenEncounter,
            ("POST", ["v1", "encounters", e, "close"]) => Route::CloseEncounter(id(e)),
            ("POST", ["v1", "drafts"]) => Route::CreateDraft,
            ("GET", ["v1", "drafts"]) => Route::MyDrafts,
            ("GET", ["v1", "doctors"]) => Route::LinkedDoctors,
            ("POST", ["v1", "dispensing"]) => Route::CreateDispensing,
            ("GET", ["v1", "drafts", d]) => Route::ReadDraft(id(d)),
            ("PUT", ["v1", "drafts", d]) => Route::EditDraft(id(d)),
            ("GET", ["v1", "drafts", d, "signing-bytes"]) => Route::SigningBytes {
                draft: id(d),
                version: query
                    .unwrap_or_default()
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("version="))
                    .map(str::to_owned),
            },
            ("POST", ["v1", "drafts", d, "confirm"]) => Route::Confirm(id(d)),
            ("POST", ["v1", "confirm-batch"]) => Route::ConfirmBatch,
            ("GET", ["v1", "queue"]) => Route::Queue,
            ("POST", ["v1", "notes"]) => Route::AddNote,
            _ => return None,
        })
    }

    /// The action name in the audit log.
    pub fn action(&self) -> &'static str {
        match self {
            Route::RegisterPatient => "patient.register",
            Route::PatientRecords(_) => "records.read",
            Route::OpenEncounter => "encounter.open",
            Route::CloseEncounter(_) => "encounter.close",
            Route::CreateDraft => "draft.create",
            Route::CreateDispensing => "dispensing.create",
            Route::ReadDraft(_) => "draft.read",
            Route::EditDraft(_) => "draft.edit",
            Route::SigningBytes { .. } => "draft.review",
            Route::Confirm(_) => "draft.confirm",
            Route::ConfirmBatch => "draft.confirm_batch",
            Route::Queue => "queue.read",
            Route::AddNote => "note.add",
            Route::MyDrafts => "drafts.read_own",
            Route::LinkedDoctors => "doctors.read_linked",
        }
    }
}

/// A handled request: status and JSON body.
pub type Answer = Result<(u16, Vec<u8>), Refused>;

impl From<KeyError> for Refused {
    fn from(e: KeyError) -> Refused {
        tracing::error!(error = %e, "record key error");
        Refused::new(ErrorCode::RecordKeyError, "stored health data cannot be opened or sealed; the operator is told")
    }
}

pub(crate) fn json<T: Serialize>(status: u16, value: &T) -> Answer {
    serde_json::to_vec(value)
        .map(|b| (status, b))
        .map_err(|e| Refused::new(ErrorCode::Internal, format!("cannot encode the answer: {e}")))
}

pub(crate) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Refused> {
    serde_json::from_slice(body)
        .map_err(|e| Refused::new(ErrorCode::MalformedJson, format!("the request is not valid: {e}")))
}

pub(crate) fn content_object(v: &serde_json::Value) -> Result<(), Refused> {
    match v {
        serde_json::Value::Object(m) if !m.is_empty() => Ok(()),
        _ => Err(Refused::new(ErrorCode::ContentNotObject, "content must be a non-empty JSON object")),
    }
}

pub(crate) fn random_id(gw: &Gateway, prefix: &str) -> Result<String, Refused> {
    let mut b = [0u8; 16];
    gw.rng.fill(&mut b).map_err(|_| Refused::new(ErrorCode::NoRandomness, "the system random generator failed"))?;
    Ok(format!("{prefix}{}", B64URL.encode(b)))
}

/// Patient ids are read out and typed by people: "P" and ten characters
/// from an alphabet without 0/O, 1/I/L.
pub(crate) fn patient_id(rng: &dyn SecureRandom) -> Result<String, Refused> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
    // Bytes at or above this would favour the first letters.
    const LIMIT: u8 = (256 - 256 % ALPHABET.len()) as u8;
    let mut out = String::from("P");
    while out.len() < 11 {
        let mut b = [0u8; 16];
        rng.fill(&mut b).map_err(|_| Refused::new(ErrorCode::NoRandomness, "the system random generator failed"))?;
        for x in b.into_iter().filter(|x| *x < LIMIT).take(11 - out.len()) {
            out.push(char::from(ALPHABET[usize::from(x) % ALPHABET.len()]));
        }
    }
    Ok(out)
}

pub(crate) fn time(unix: i64) -> String {
    hpki_profile::validate::rfc3339(unix)
}

pub(crate) async fn patient(gw: &Gateway, id: &str) -> Result<PatientRow, Refused> {
    gw.store.patient(id).await?.ok_or_else(|| Refused::new(ErrorCode::UnknownPatient, format!("no patient {id:?}")))
}

/// FLOW-3: the patient is face to face with staff of this institution.
pub(crate) async fn open_encounter_here(
    gw: &Gateway,
    conn: &ConnInfo,
    patient: &PatientRow,
) -> Result<EncounterRow, Refused> {
    gw.store
        .open_encounter_of(&patient.pseudonym, &conn.terminal.institution, gw.clock.now())
        .await?
        .ok_or_else(|| no_open_encounter(conn, &patient.id))
}

pub(crate) fn no_open_encounter(conn: &ConnInfo, patient: &str) -> Refused {
    Refused::new(
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

pub(crate) fn draft_kind(d: &DraftRow) -> Result<DraftKind, Refused> {
    DraftKind::from_name(&d.kind)
        .ok_or_else(|| Refused::new(ErrorCode::CorruptDraft, "the stored draft has an unknown kind"))
}

pub(crate) fn draft_content(gw: &Gateway, d: &DraftRow) -> Result<serde_json::Value, Refused> {
    let plain = gw.keys().open(&d.key_id, &SealedTable::Drafts.aad(&d.id), &d.content)?;
    serde_json::from_slice(&plain).map_err(|_| Refused::new(ErrorCode::CorruptDraft, "the stored draft is not JSON"))
}

pub(crate) async fn draft_view(gw: &Gateway, d: &DraftRow) -> Result<Draft, Refused> {
    let patient = gw.store.patient_by_pseudonym(&d.patient).await?.map(|p| p.id).unwrap_or_else(|| "-".into());
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
pub(crate) fn document(gw: &Gateway, d: &DraftRow) -> Result<(ConfirmDocument, Vec<u8>), Refused> {
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
    let bytes = doc.canonical_bytes().map_err(|e| Refused::new(ErrorCode::Internal, e.to_string()))?;
    Ok((doc, bytes))
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A record as people read it (content opened).
pub(crate) fn record_view(gw: &Gateway, r: &RecordRow, patient: &str) -> Result<Record, Refused> {
    let plain = gw.keys().open(&r.key_id, &SealedTable::Records.aad(&r.id), &r.content)?;
    let content = if r.kind == "note" {
        serde_json::from_slice(&plain)
    } else {
        serde_json::from_slice::<ConfirmDocument>(&plain).map(|d| d.content)
    }
    .map_err(|_| Refused::new(ErrorCode::CorruptRecord, "a stored record does not open to its document"))?;
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
    })
}

/// Runs one workflow route for an authenticated person; `object` is set to
/// what the request is about, for the audit log.
pub async fn handle(
    gw: &Gateway,
    conn: &ConnInfo,
    a: &Authenticated,
    route: &Route,
    body: &[u8],
    object: &mut String,
) -> Answer {
    match route {
        Route::RegisterPatient => register_patient(gw, a, body, object).await,
        Route::PatientRecords(p) => {
            *object = format!("patient:{p}");
            patient_records(gw, conn, a, p).await
        }
        Route::OpenEncounter => open_encounter(gw, conn, a, body, object).await,
        Route::CloseEncounter(e) => {
            *object = format!("encounter:{e}");
            close_encounter(gw, conn, a, e).await
        }
        Route::CreateDraft => create_draft(gw, conn, a, body, object).await,
        Route::CreateDispensing => create_dispensing(gw, conn, a, body, object).await,
        Route::ReadDraft(d) => {
            *object = format!("draft:{d}");
            read_draft(gw, a, d).await
        }
        Route::EditDraft(d) => {
            *object = format!("draft:{d}");
            edit_draft(gw, a, d, body).await
        }
        Route::SigningBytes { draft, version } => {
            *object = format!("draft:{draft}");
            let version = version
                .as_deref()
                .map(str::parse::<i64>)
                .transpose()
                .map_err(|_| Refused::new(ErrorCode::MalformedRequest, "version must be a whole number"))?;
            signing_bytes(gw, a, draft, version).await
        }
        Route::Confirm(d) => {
            *object = format!("draft:{d}");
            let req: ConfirmRequest = parse(body)?;
            let cert = decode(&req.certificate, "certificate")?;
            let intermediates = decode_all(&req.intermediates)?;
            let signature = decode(&req.signature, "signature")?;
            let record = confirm_one(gw, conn, a, d, req.version, &cert, &intermediates, &signature).await?;
            *object = format!("draft:{d} record:{}", record.id);
            json(200, &record)
        }
        Route::ConfirmBatch => confirm_batch(gw, conn, a, body, object).await,
        Route::Queue => {
            *object = "queue".into();
            queue(gw, a).await
        }
        Route::AddNote => add_note(gw, conn, a, body, object).await,
        Route::MyDrafts => {
            *object = "drafts".into();
            my_drafts(gw, a).await
        }
        Route::LinkedDoctors => {
            *object = "doctors".into();
            linked_doctors(gw, a).await
        }
    }
}
