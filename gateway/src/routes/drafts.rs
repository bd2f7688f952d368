//! Drafts (FLOW-1): an assistant drafts for a linked doctor, edits by version,
//! lists the own drafts and the linked doctors; the doctor reads the queue; a
//! pharmacist drafts dispensing records for the own signature.

use axum::body::Bytes;
use axum::extract::Path;

use crate::audit::outbox::Staging;
use crate::domain::roles::Role;
use crate::gateway::{ConnInfo, Gateway};
use crate::routes::encounters::encounter_for_entry;
use crate::routes::workflow::{Answer, content_object, draft_view, json, parse, random_id};
use crate::routes::{ApiError, Authenticated, Ctx, Handled, naming_object, staging};
use crate::store::{DraftRow, EncounterRow, SealedTable};
use hpki_protocol::DraftKind;
use hpki_protocol::ErrorCode;
use hpki_protocol::workflow::{Draft, Drafts, EditDraft, LinkedDoctor, LinkedDoctors, NewDispensing, NewDraft, Queue};

pub(crate) async fn new_draft(
    gw: &Gateway,
    e: &EncounterRow,
    kind: DraftKind,
    assistant: &str,
    signer: &str,
    content: &serde_json::Value,
    st: &Staging,
) -> Result<Draft, ApiError> {
    let now = gw.clock.now();
    let id = random_id(gw, "drf_")?;
    let plain = serde_json::to_vec(content).map_err(|e| ApiError::new(ErrorCode::MalformedJson, e.to_string()))?;
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
    let object = format!("draft:{} encounter:{} doctor:{signer}", row.id, e.id);
    gw.store.create_draft(&row, &st.stage(assistant, object, gw.clock.now_ms())).await?;
    draft_view(gw, &row).await
}

pub(crate) async fn create_draft(
    gw: &Gateway,
    conn: &ConnInfo,
    a: &Authenticated,
    body: &[u8],
    object: &mut String,
    st: &Staging,
) -> Answer {
    let req: NewDraft = parse(body)?;
    *object = format!("encounter:{} doctor:{}", req.encounter, req.doctor);
    content_object(&req.content)?;
    let e = encounter_for_entry(gw, conn, &req.encounter).await?;
    // FLOW-1: only for a doctor this assistant is linked to.
    let doctor = gw.store.person(&req.doctor).await?.filter(|p| p.active);
    let Some(doctor) = doctor else {
        return Err(ApiError::new(ErrorCode::UnknownDoctor, format!("no active person {:?}", req.doctor)));
    };
    if !matches!(Role::from_name(&doctor.role), Some(Role::Doctor | Role::Dentist)) {
        return Err(ApiError::new(
            ErrorCode::NotADoctor,
            format!("{} is a {}, not a doctor or dentist", doctor.id, doctor.role),
        ));
    }
    if !gw.store.linked_doctors(&a.person.id).await?.contains(&doctor.id) {
        return Err(ApiError::new(ErrorCode::NotLinked, format!("{} is not linked to {}", a.person.id, doctor.id)));
    }
    let d = new_draft(gw, &e, DraftKind::Medical, &a.person.id, &doctor.id, &req.content, st).await?;
    *object = format!("draft:{} encounter:{} doctor:{}", d.id, e.id, doctor.id);
    json(201, &d)
}

pub(crate) async fn create_dispensing(
    gw: &Gateway,
    conn: &ConnInfo,
    a: &Authenticated,
    body: &[u8],
    object: &mut String,
    st: &Staging,
) -> Answer {
    let req: NewDispensing = parse(body)?;
    *object = format!("encounter:{}", req.encounter);
    content_object(&req.content)?;
    let e = encounter_for_entry(gw, conn, &req.encounter).await?;
    let d = new_draft(gw, &e, DraftKind::Dispensing, &a.person.id, &a.person.id, &req.content, st).await?;
    *object = format!("draft:{} encounter:{}", d.id, e.id);
    json(201, &d)
}

pub(crate) async fn find_draft(gw: &Gateway, id: &str) -> Result<DraftRow, ApiError> {
    gw.store.draft(id).await?.ok_or_else(|| unknown_draft(id))
}

pub(crate) fn unknown_draft(id: &str) -> ApiError {
    ApiError::new(ErrorCode::UnknownDraft, format!("no draft {id:?}"))
}

pub(crate) async fn read_draft(gw: &Gateway, a: &Authenticated, id: &str) -> Answer {
    let d = find_draft(gw, id).await?;
    if d.assistant != a.person.id && d.signer != a.person.id {
        return Err(ApiError::new(ErrorCode::NotYourDraft, "only the author and the signer see a draft"));
    }
    json(200, &draft_view(gw, &d).await?)
}

/// FLOW-3: editing a pending draft needs no open encounter.
pub(crate) async fn edit_draft(gw: &Gateway, a: &Authenticated, id: &str, body: &[u8], st: &Staging) -> Answer {
    let req: EditDraft = parse(body)?;
    content_object(&req.content)?;
    let d = find_draft(gw, id).await?;
    if d.assistant != a.person.id {
        return Err(ApiError::new(ErrorCode::NotYourDraft, "only the assistant who entered a draft edits it"));
    }
    if d.confirmed {
        return Err(ApiError::new(ErrorCode::AlreadyConfirmed, "the draft is confirmed; it is a record now"));
    }
    let stale = || {
        ApiError::new(
            ErrorCode::StaleVersion,
            format!("the draft is at version {}, not {}; reload it", d.version, req.version),
        )
    };
    if d.version != req.version {
        return Err(stale());
    }
    let plain = serde_json::to_vec(&req.content).map_err(|e| ApiError::new(ErrorCode::MalformedJson, e.to_string()))?;
    let (key_id, sealed) = gw.keys().seal(&SealedTable::Drafts.aad(id), &plain)?;
    let staged = st.stage(&a.person.id, format!("draft:{id}"), gw.clock.now_ms());
    if !gw.store.edit_draft(id, req.version, &key_id, &sealed, gw.clock.now(), &staged).await? {
        return Err(stale());
    }
    json(200, &draft_view(gw, &find_draft(gw, id).await?).await?)
}

pub(crate) async fn queue(gw: &Gateway, a: &Authenticated) -> Answer {
    let drafts = draft_views(gw, &gw.store.queue(&a.person.id).await?).await?;
    json(200, &Queue { drafts })
}

pub(crate) async fn draft_views(gw: &Gateway, rows: &[DraftRow]) -> Result<Vec<Draft>, ApiError> {
    let mut drafts = Vec::with_capacity(rows.len());
    for d in rows {
        drafts.push(draft_view(gw, d).await?);
    }
    Ok(drafts)
}

pub(crate) async fn my_drafts(gw: &Gateway, a: &Authenticated) -> Answer {
    let drafts = draft_views(gw, &gw.store.drafts_by(&a.person.id).await?).await?;
    json(200, &Drafts { drafts })
}

/// FLOW-1 as the assistant's screen needs it: whom a draft may be for.
pub(crate) async fn linked_doctors(gw: &Gateway, a: &Authenticated) -> Answer {
    let mut doctors = Vec::new();
    for id in gw.store.linked_doctors(&a.person.id).await? {
        if let Some(p) = gw.store.person(&id).await?.filter(|p| p.active) {
            doctors.push(LinkedDoctor { id: p.id, name: p.name, name_kanji: p.name_kanji, role: p.role });
        }
    }
    json(200, &LinkedDoctors { doctors })
}

/// `POST /v1/drafts`.
pub async fn create(c: Ctx, body: Bytes) -> Handled {
    naming_object(async |object| create_draft(&c.gw, &c.conn, &c.a, &body, object, staging(&c.staging)?).await).await
}

/// `POST /v1/dispensing`.
pub async fn create_dispensing_draft(c: Ctx, body: Bytes) -> Handled {
    naming_object(async |object| create_dispensing(&c.gw, &c.conn, &c.a, &body, object, staging(&c.staging)?).await)
        .await
}

/// `GET /v1/drafts/{draft}`.
pub async fn read(c: Ctx, Path(draft): Path<String>) -> Handled {
    Handled::about(format!("draft:{draft}"), read_draft(&c.gw, &c.a, &draft).await)
}

/// `PUT /v1/drafts/{draft}`.
pub async fn edit(c: Ctx, Path(draft): Path<String>, body: Bytes) -> Handled {
    let answer = match staging(&c.staging) {
        Ok(st) => edit_draft(&c.gw, &c.a, &draft, &body, st).await,
        Err(e) => Err(e),
    };
    Handled::about(format!("draft:{draft}"), answer)
}

/// `GET /v1/queue`: the drafts awaiting the doctor's signature.
pub async fn queue_of(c: Ctx) -> Handled {
    Handled::about("queue", queue(&c.gw, &c.a).await)
}

/// `GET /v1/drafts`: the assistant's own pending drafts.
pub async fn mine(c: Ctx) -> Handled {
    Handled::about("drafts", my_drafts(&c.gw, &c.a).await)
}

/// `GET /v1/doctors`: the doctors the assistant may draft for.
pub async fn doctors(c: Ctx) -> Handled {
    Handled::about("doctors", linked_doctors(&c.gw, &c.a).await)
}
