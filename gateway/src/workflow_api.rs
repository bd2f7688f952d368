//! The workflow on the institution listener: patients, encounters (FLOW-3),
//! drafts for linked doctors (FLOW-1), confirm with the signature card
//! (FLOW-2), notes, and reading records within an encounter. Every handler
//! runs after the session check; refusals carry a stable code.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use hpki_profile::Purpose;
use hpki_protocol::ErrorCode;
use hpki_protocol::workflow::{
    BatchResult, ConfirmBatch, ConfirmBatchResponse, ConfirmRequest, Draft, DraftStatus, Drafts, EditDraft, Encounter,
    LinkedDoctor, LinkedDoctors, NewDispensing, NewDraft, NewNote, NewPatient, OpenEncounter, Patient, Queue, Record,
    Records, RevocationEvidence, SigningBytes,
};
use hpki_protocol::{CONFIRM_DOMAIN, ConfirmDocument, DraftKind};
use ring::digest::{SHA256, digest};
use ring::rand::SecureRandom;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::{Authenticated, Refused, check_allowed as require};
use crate::gateway::{ConnInfo, Gateway};
use crate::keyring::KeyError;
use crate::roles::{Action, Role};
use crate::store::{DraftRow, EncounterRow, PatientRow, RecordRow, SealedTable, StoreError};

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

fn json<T: Serialize>(status: u16, value: &T) -> Answer {
    serde_json::to_vec(value)
        .map(|b| (status, b))
        .map_err(|e| Refused::new(ErrorCode::Internal, format!("cannot encode the answer: {e}")))
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Refused> {
    serde_json::from_slice(body)
        .map_err(|e| Refused::new(ErrorCode::MalformedJson, format!("the request is not valid: {e}")))
}

fn content_object(v: &serde_json::Value) -> Result<(), Refused> {
    match v {
        serde_json::Value::Object(m) if !m.is_empty() => Ok(()),
        _ => Err(Refused::new(ErrorCode::ContentNotObject, "content must be a non-empty JSON object")),
    }
}

fn random_id(gw: &Gateway, prefix: &str) -> Result<String, Refused> {
    let mut b = [0u8; 16];
    gw.rng.fill(&mut b).map_err(|_| Refused::new(ErrorCode::NoRandomness, "the system random generator failed"))?;
    Ok(format!("{prefix}{}", B64URL.encode(b)))
}

/// Patient ids are read out and typed by people: "P" and ten characters
/// from an alphabet without 0/O, 1/I/L.
fn patient_id(rng: &dyn SecureRandom) -> Result<String, Refused> {
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

fn time(unix: i64) -> String {
    hpki_profile::validate::rfc3339(unix)
}

async fn patient(gw: &Gateway, id: &str) -> Result<PatientRow, Refused> {
    gw.store.patient(id).await?.ok_or_else(|| Refused::new(ErrorCode::UnknownPatient, format!("no patient {id:?}")))
}

/// FLOW-3: the patient is face to face with staff of this institution.
async fn open_encounter_here(gw: &Gateway, conn: &ConnInfo, patient: &PatientRow) -> Result<EncounterRow, Refused> {
    gw.store
        .open_encounter_of(&patient.pseudonym, &conn.terminal.institution, gw.clock.now())
        .await?
        .ok_or_else(|| no_open_encounter(conn, &patient.id))
}

fn no_open_encounter(conn: &ConnInfo, patient: &str) -> Refused {
    Refused::new(
        ErrorCode::NoOpenEncounter,
        format!("no open encounter of patient {patient} at {}", conn.terminal.institution),
    )
}

fn encounter_view(e: &EncounterRow, patient: &str) -> Encounter {
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

fn draft_kind(d: &DraftRow) -> Result<DraftKind, Refused> {
    DraftKind::from_name(&d.kind)
        .ok_or_else(|| Refused::new(ErrorCode::CorruptDraft, "the stored draft has an unknown kind"))
}

fn draft_content(gw: &Gateway, d: &DraftRow) -> Result<serde_json::Value, Refused> {
    let plain = gw.keys().open(&d.key_id, &SealedTable::Drafts.aad(&d.id), &d.content)?;
    serde_json::from_slice(&plain).map_err(|_| Refused::new(ErrorCode::CorruptDraft, "the stored draft is not JSON"))
}

async fn draft_view(gw: &Gateway, d: &DraftRow) -> Result<Draft, Refused> {
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
fn document(gw: &Gateway, d: &DraftRow) -> Result<(ConfirmDocument, Vec<u8>), Refused> {
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

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A record as people read it (content opened).
fn record_view(gw: &Gateway, r: &RecordRow, patient: &str) -> Result<Record, Refused> {
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

fn decode(b64: &str, what: &str) -> Result<Vec<u8>, Refused> {
    B64.decode(b64).map_err(|_| Refused::new(ErrorCode::MalformedRequest, format!("{what} is not base64")))
}

fn decode_all(list: &[String]) -> Result<Vec<Vec<u8>>, Refused> {
    list.iter().map(|i| decode(i, "an intermediate certificate")).collect()
}

async fn register_patient(gw: &Gateway, a: &Authenticated, body: &[u8], object: &mut String) -> Answer {
    require(a, Action::RegisterPatient)?;
    let req: NewPatient = parse(body)?;
    let row = new_patient_row(&gw.rng, gw.clock.now(), &req)?;
    *object = format!("patient:{}", row.id);
    gw.store.add_patient(&row, &a.person.id, gw.clock.now()).await?;
    json(201, &Patient { id: row.id, name: row.name, name_kanji: row.name_kanji, birth_date: row.birth_date })
}

/// Checks a new patient's fields and draws the id and the pseudonym.
pub fn new_patient_row(rng: &dyn SecureRandom, now: i64, req: &NewPatient) -> Result<PatientRow, Refused> {
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(Refused::new(ErrorCode::InvalidName, "the name must be 1–200 characters"));
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let born = time::Date::parse(&req.birth_date, &format)
        .map_err(|_| Refused::new(ErrorCode::InvalidBirthDate, "birth_date must be a date as YYYY-MM-DD"))?;
    if born > time::OffsetDateTime::from_unix_timestamp(now).map(|t| t.date()).unwrap_or(time::Date::MAX) {
        return Err(Refused::new(ErrorCode::InvalidBirthDate, "birth_date is in the future"));
    }
    let mut p = [0u8; 16];
    rng.fill(&mut p).map_err(|_| Refused::new(ErrorCode::NoRandomness, "the system random generator failed"))?;
    Ok(PatientRow {
        id: patient_id(rng)?,
        pseudonym: hex(&p),
        name: name.into(),
        name_kanji: req.name_kanji.as_deref().map(str::trim).filter(|k| !k.is_empty()).map(str::to_owned),
        birth_date: req.birth_date.clone(),
    })
}

async fn patient_records(gw: &Gateway, conn: &ConnInfo, a: &Authenticated, id: &str) -> Answer {
    require(a, Action::ReadPatientRecords)?;
    let p = patient(gw, id).await?;
    open_encounter_here(gw, conn, &p).await?;
    json(200, &visible_records(gw, p, Some(&conn.terminal.institution)).await?)
}

/// FLOW-4: a patient's records from the institutions the patient consented
/// to share, plus those of `own_institution` (the reader's own, if staff).
pub async fn visible_records(gw: &Gateway, p: PatientRow, own_institution: Option<&str>) -> Result<Records, Refused> {
    let shared = gw.store.consented_institutions(&p.id).await?;
    let mut records = Vec::new();
    for r in gw.store.records_of(&p.pseudonym).await? {
        if own_institution == Some(r.institution.as_str()) || shared.contains(&r.institution) {
            records.push(record_view(gw, &r, &p.id)?);
        }
    }
    Ok(Records { patient: p.id, records })
}

async fn open_encounter(gw: &Gateway, conn: &ConnInfo, a: &Authenticated, body: &[u8], object: &mut String) -> Answer {
    require(a, Action::OpenEncounter)?;
    let req: OpenEncounter = parse(body)?;
    *object = format!("patient:{}", req.patient);
    let p = patient(gw, &req.patient).await?;
    let now = gw.clock.now();
    if let Some(e) = gw.store.open_encounter_of(&p.pseudonym, &conn.terminal.institution, now).await? {
        *object = format!("patient:{} encounter:{}", p.id, e.id);
        return json(200, &encounter_view(&e, &p.id));
    }
    let e = EncounterRow {
        id: random_id(gw, "enc_")?,
        patient: p.pseudonym.clone(),
        institution: conn.terminal.institution.clone(),
        opened_by: a.person.id.clone(),
        opened_at: now,
        expires_at: now + gw.config.records.encounter_max_seconds,
        closed_at: None,
    };
    gw.store.open_encounter(&e).await?;
    *object = format!("patient:{} encounter:{}", p.id, e.id);
    json(201, &encounter_view(&e, &p.id))
}

async fn close_encounter(gw: &Gateway, conn: &ConnInfo, a: &Authenticated, id: &str) -> Answer {
    require(a, Action::OpenEncounter)?;
    let e =
        gw.store.encounter(id).await?.filter(|e| e.institution == conn.terminal.institution).ok_or_else(|| {
            Refused::new(ErrorCode::UnknownEncounter, format!("no encounter {id:?} at this institution"))
        })?;
    let now = gw.clock.now();
    if !gw.store.close_encounter(id, &a.person.id, now).await? {
        return Err(Refused::new(ErrorCode::EncounterClosed, "the encounter is already closed"));
    }
    let patient = gw.store.patient_by_pseudonym(&e.patient).await?.map(|p| p.id).unwrap_or_default();
    json(200, &encounter_view(&EncounterRow { closed_at: Some(now), ..e }, &patient))
}

/// The encounter named in a new draft or note: at this institution, open.
async fn encounter_for_entry(gw: &Gateway, conn: &ConnInfo, id: &str) -> Result<EncounterRow, Refused> {
    let e = gw
        .store
        .encounter(id)
        .await?
        .ok_or_else(|| Refused::new(ErrorCode::UnknownEncounter, format!("no encounter {id:?}")))?;
    if e.institution != conn.terminal.institution {
        return Err(Refused::new(ErrorCode::EncounterOtherInstitution, "the encounter belongs to another institution"));
    }
    if !e.is_open(gw.clock.now()) {
        return Err(Refused::new(ErrorCode::NoOpenEncounter, "the encounter is closed or has expired"));
    }
    Ok(e)
}

async fn new_draft(
    gw: &Gateway,
    e: &EncounterRow,
    kind: DraftKind,
    assistant: &str,
    signer: &str,
    content: &serde_json::Value,
) -> Result<Draft, Refused> {
    let now = gw.clock.now();
    let id = random_id(gw, "drf_")?;
    let plain = serde_json::to_vec(content).map_err(|e| Refused::new(ErrorCode::MalformedJson, e.to_string()))?;
    let (key_id, sealed) = gw.keys().seal(&SealedTable::Drafts.aad(&id), &plain)?;
    let row = DraftRow {
        id,
        kind: kind.name().into(),
        patient: e.patient.clone(),
        encounter: e.id.clone(),
        institution: e.institution.clone(),
        assistant: assistant.into(),
        signer: signer.into(),
        version: 1,
        key_id,
        content: sealed,
        confirmed: false,
        record_id: None,
        created_at: now,
        updated_at: now,
    };
    gw.store.create_draft(&row).await?;
    draft_view(gw, &row).await
}

async fn create_draft(gw: &Gateway, conn: &ConnInfo, a: &Authenticated, body: &[u8], object: &mut String) -> Answer {
    require(a, Action::WriteDraft)?;
    let req: NewDraft = parse(body)?;
    *object = format!("encounter:{} doctor:{}", req.encounter, req.doctor);
    content_object(&req.content)?;
    let e = encounter_for_entry(gw, conn, &req.encounter).await?;
    // FLOW-1: only for a doctor this assistant is linked to.
    let doctor = gw.store.person(&req.doctor).await?.filter(|p| p.active);
    let Some(doctor) = doctor else {
        return Err(Refused::new(ErrorCode::UnknownDoctor, format!("no active person {:?}", req.doctor)));
    };
    if !matches!(Role::from_name(&doctor.role), Some(Role::Doctor | Role::Dentist)) {
        return Err(Refused::new(
            ErrorCode::NotADoctor,
            format!("{} is a {}, not a doctor or dentist", doctor.id, doctor.role),
        ));
    }
    if !gw.store.linked_doctors(&a.person.id).await?.contains(&doctor.id) {
        return Err(Refused::new(ErrorCode::NotLinked, format!("{} is not linked to {}", a.person.id, doctor.id)));
    }
    let d = new_draft(gw, &e, DraftKind::Medical, &a.person.id, &doctor.id, &req.content).await?;
    *object = format!("draft:{} encounter:{} doctor:{}", d.id, e.id, doctor.id);
    json(201, &d)
}

async fn create_dispensing(
    gw: &Gateway,
    conn: &ConnInfo,
    a: &Authenticated,
    body: &[u8],
    object: &mut String,
) -> Answer {
    require(a, Action::RegisterDispensing)?;
    let req: NewDispensing = parse(body)?;
    *object = format!("encounter:{}", req.encounter);
    content_object(&req.content)?;
    let e = encounter_for_entry(gw, conn, &req.encounter).await?;
    let d = new_draft(gw, &e, DraftKind::Dispensing, &a.person.id, &a.person.id, &req.content).await?;
    *object = format!("draft:{} encounter:{}", d.id, e.id);
    json(201, &d)
}

async fn find_draft(gw: &Gateway, id: &str) -> Result<DraftRow, Refused> {
    gw.store.draft(id).await?.ok_or_else(|| unknown_draft(id))
}

fn unknown_draft(id: &str) -> Refused {
    Refused::new(ErrorCode::UnknownDraft, format!("no draft {id:?}"))
}

async fn read_draft(gw: &Gateway, a: &Authenticated, id: &str) -> Answer {
    let d = find_draft(gw, id).await?;
    if d.assistant != a.person.id && d.signer != a.person.id {
        return Err(Refused::new(ErrorCode::NotYourDraft, "only the author and the signer see a draft"));
    }
    json(200, &draft_view(gw, &d).await?)
}

/// FLOW-3: editing a pending draft needs no open encounter.
async fn edit_draft(gw: &Gateway, a: &Authenticated, id: &str, body: &[u8]) -> Answer {
    require(a, Action::WriteDraft)?;
    let req: EditDraft = parse(body)?;
    content_object(&req.content)?;
    let d = find_draft(gw, id).await?;
    if d.assistant != a.person.id {
        return Err(Refused::new(ErrorCode::NotYourDraft, "only the assistant who entered a draft edits it"));
    }
    if d.confirmed {
        return Err(Refused::new(ErrorCode::AlreadyConfirmed, "the draft is confirmed; it is a record now"));
    }
    let stale = || {
        Refused::new(
            ErrorCode::StaleVersion,
            format!("the draft is at version {}, not {}; reload it", d.version, req.version),
        )
    };
    if d.version != req.version {
        return Err(stale());
    }
    let plain = serde_json::to_vec(&req.content).map_err(|e| Refused::new(ErrorCode::MalformedJson, e.to_string()))?;
    let (key_id, sealed) = gw.keys().seal(&SealedTable::Drafts.aad(id), &plain)?;
    if !gw.store.edit_draft(id, req.version, &key_id, &sealed, gw.clock.now()).await? {
        return Err(stale());
    }
    json(200, &draft_view(gw, &find_draft(gw, id).await?).await?)
}

async fn queue(gw: &Gateway, a: &Authenticated) -> Answer {
    require(a, Action::ReviewDrafts)?;
    let drafts = draft_views(gw, &gw.store.queue(&a.person.id).await?).await?;
    json(200, &Queue { drafts })
}

async fn draft_views(gw: &Gateway, rows: &[DraftRow]) -> Result<Vec<Draft>, Refused> {
    let mut drafts = Vec::with_capacity(rows.len());
    for d in rows {
        drafts.push(draft_view(gw, d).await?);
    }
    Ok(drafts)
}

async fn my_drafts(gw: &Gateway, a: &Authenticated) -> Answer {
    require(a, Action::WriteDraft)?;
    let drafts = draft_views(gw, &gw.store.drafts_by(&a.person.id).await?).await?;
    json(200, &Drafts { drafts })
}

/// FLOW-1 as the assistant's screen needs it: whom a draft may be for.
async fn linked_doctors(gw: &Gateway, a: &Authenticated) -> Answer {
    require(a, Action::WriteDraft)?;
    let mut doctors = Vec::new();
    for id in gw.store.linked_doctors(&a.person.id).await? {
        if let Some(p) = gw.store.person(&id).await?.filter(|p| p.active) {
            doctors.push(LinkedDoctor { id: p.id, name: p.name, name_kanji: p.name_kanji, role: p.role });
        }
    }
    json(200, &LinkedDoctors { doctors })
}

async fn signing_bytes(gw: &Gateway, a: &Authenticated, id: &str, version: Option<i64>) -> Answer {
    require(a, Action::ReviewDrafts)?;
    let d = find_draft(gw, id).await?;
    if d.signer != a.person.id {
        return Err(Refused::new(ErrorCode::NotYourDraft, "this draft awaits someone else"));
    }
    if d.confirmed {
        return Err(Refused::new(ErrorCode::AlreadyConfirmed, "the draft is already confirmed"));
    }
    if let Some(v) = version.filter(|v| *v != d.version) {
        return Err(Refused::new(ErrorCode::StaleVersion, format!("the draft is at version {}, not {v}", d.version)));
    }
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

/// Confirms one draft version with the signature card (FLOW-2); a retried
/// confirm returns the record the first one made.
#[allow(clippy::too_many_arguments)]
async fn confirm_one(
    gw: &Gateway,
    conn: &ConnInfo,
    a: &Authenticated,
    id: &str,
    version: i64,
    cert: &[u8],
    intermediates: &[Vec<u8>],
    signature: &[u8],
) -> Result<Record, Refused> {
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
        return Err(Refused::new(
            ErrorCode::NotYourDraft,
            format!("this draft awaits {}, not {}", d.signer, a.person.id),
        ));
    }
    let patient = ctx.patient_id.clone().unwrap_or_else(|| "-".into());
    if d.confirmed {
        return existing_record(gw, d, version, &patient).await;
    }
    if d.version != version {
        return Err(Refused::new(
            ErrorCode::StaleVersion,
            format!("the draft changed: it is at version {}, the signature is for {version}", d.version),
        ));
    }
    if kind == DraftKind::Medical && !ctx.linked {
        return Err(Refused::new(
            ErrorCode::NotLinked,
            format!("{} is no longer linked to {}", d.assistant, a.person.id),
        ));
    }
    if d.institution != conn.terminal.institution {
        return Err(Refused::new(ErrorCode::DraftOtherInstitution, "the draft was entered at another institution"));
    }
    let patient_id = ctx.patient_id.as_deref().ok_or_else(unregistered_patient)?;
    if !ctx.encounter_open {
        return Err(no_open_encounter(conn, patient_id));
    }

    // The signature over the document as held now, then the certificate.
    let (_, bytes) = document(gw, d)?;
    crate::api::verify_card_signature(
        cert,
        &bytes,
        signature,
        &format!("the signature does not cover version {version} of this draft as the gateway holds it"),
    )?;
    let now = gw.clock.now();
    let validated = gw
        .validator
        .load()
        .validate(cert, intermediates, Purpose::Signature, now)
        .map_err(|r| Refused::certificate(&r, "the signature certificate was refused"))?;
    if validated.holder.person_id().as_deref() != Some(a.person.id.as_str()) {
        return Err(Refused::new(
            ErrorCode::SignerOtherPerson,
            format!(
                "the signature certificate belongs to {}, the session to {}",
                validated.holder.person_id().unwrap_or_else(|| "nobody known".into()),
                a.person.id
            ),
        ));
    }
    let evidence = crate::api::revocation_evidence(&validated);
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
        signature: Some(signature.to_vec()),
        signature_cert: Some(cert.to_vec()),
        revocation: evidence,
        created_at: now,
    };
    match gw.store.confirm_draft(&d.id, d.version, &row).await {
        Ok(()) => record_view(gw, &row, &patient),
        // A concurrent confirm or edit won the race: answer as a retry would.
        Err(StoreError::Conflict(_)) => {
            let d = find_draft(gw, id).await?;
            if d.confirmed {
                existing_record(gw, &d, version, &patient).await
            } else {
                Err(Refused::new(ErrorCode::StaleVersion, format!("the draft changed: it is at version {}", d.version)))
            }
        }
        Err(e) => Err(e.into()),
    }
}

fn unregistered_patient() -> Refused {
    Refused::new(ErrorCode::CorruptDraft, "the draft's patient is not registered")
}

async fn patient_by_pseudonym(gw: &Gateway, pseudonym: &str) -> Result<PatientRow, Refused> {
    gw.store.patient_by_pseudonym(pseudonym).await?.ok_or_else(unregistered_patient)
}

/// Idempotency: the record of an already confirmed draft, if the confirm
/// was for the version that became the record.
async fn existing_record(gw: &Gateway, d: &DraftRow, version: i64, patient: &str) -> Result<Record, Refused> {
    let record = match &d.record_id {
        Some(r) => gw.store.record(r).await?,
        None => None,
    };
    match record {
        Some(r) if r.draft_version == Some(version) => record_view(gw, &r, patient),
        Some(r) => Err(Refused::new(
            ErrorCode::AlreadyConfirmed,
            format!("version {} of this draft is already a record ({})", r.draft_version.unwrap_or_default(), r.id),
        )),
        None => Err(Refused::new(ErrorCode::CorruptDraft, "a confirmed draft without its record")),
    }
}

async fn confirm_batch(gw: &Gateway, conn: &ConnInfo, a: &Authenticated, body: &[u8], object: &mut String) -> Answer {
    let req: ConfirmBatch = parse(body)?;
    if req.items.is_empty() || req.items.len() > 100 {
        return Err(Refused::new(ErrorCode::BadBatch, "a batch holds 1–100 drafts"));
    }
    let cert = decode(&req.certificate, "certificate")?;
    let intermediates = decode_all(&req.intermediates)?;
    let mut results = Vec::with_capacity(req.items.len());
    let mut confirmed = Vec::new();
    for item in &req.items {
        let outcome = match decode(&item.signature, "signature") {
            Ok(sig) => confirm_one(gw, conn, a, &item.draft, item.version, &cert, &intermediates, &sig).await,
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

async fn add_note(gw: &Gateway, conn: &ConnInfo, a: &Authenticated, body: &[u8], object: &mut String) -> Answer {
    require(a, Action::AddNote)?;
    let req: NewNote = parse(body)?;
    *object = format!("encounter:{}", req.encounter);
    content_object(&req.content)?;
    let e = encounter_for_entry(gw, conn, &req.encounter).await?;
    let p = patient_by_pseudonym(gw, &e.patient).await?;
    let id = random_id(gw, "rec_")?;
    let plain = serde_json::to_vec(&req.content).map_err(|e| Refused::new(ErrorCode::MalformedJson, e.to_string()))?;
    let (key_id, sealed) = gw.keys().seal(&SealedTable::Records.aad(&id), &plain)?;
    let row = RecordRow {
        id: id.clone(),
        kind: "note".into(),
        patient: e.patient.clone(),
        institution: e.institution.clone(),
        origin_reference: format!("note:{id}"),
        draft_version: None,
        author: a.person.id.clone(),
        signer: None,
        key_id,
        content: sealed,
        document_sha256: None,
        signature: None,
        signature_cert: None,
        revocation: "[]".into(),
        created_at: gw.clock.now(),
    };
    gw.store.add_record(&row).await?;
    *object = format!("encounter:{} record:{id}", e.id);
    json(201, &record_view(gw, &row, &p.id)?)
}
