//! Encounters: `POST /v1/encounters` opens one at the terminal's institution,
//! `POST /v1/encounters/{id}/close` ends it; entries need an open one.

use crate::routes::workflow::{Answer, encounter_view, json, parse, patient, random_id};

use axum::body::Bytes;
use axum::extract::Path;

use crate::audit::outbox::Staging;
use crate::gateway::{ConnInfo, Gateway};
use crate::routes::{ApiError, Authenticated, Ctx, Handled, naming_object, staging};
use crate::store::EncounterRow;
use hpki_protocol::ErrorCode;
use hpki_protocol::workflow::OpenEncounter;

pub(crate) async fn open_encounter(
    gw: &Gateway,
    conn: &ConnInfo,
    a: &Authenticated,
    body: &[u8],
    object: &mut String,
    st: &Staging,
) -> Answer {
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
    *object = format!("patient:{} encounter:{}", p.id, e.id);
    gw.store.open_encounter(&e, &st.stage(&a.person.id, object.as_str(), gw.clock.now_ms())).await?;
    json(201, &encounter_view(&e, &p.id))
}

pub(crate) async fn close_encounter(
    gw: &Gateway,
    conn: &ConnInfo,
    a: &Authenticated,
    id: &str,
    st: &Staging,
) -> Answer {
    let e = gw.store.encounter(id).await?.filter(|e| e.institution == conn.terminal.institution).ok_or_else(|| {
        ApiError::new(ErrorCode::UnknownEncounter, format!("no encounter {id:?} at this institution"))
    })?;
    let now = gw.clock.now();
    let staged = st.stage(&a.person.id, format!("encounter:{id}"), gw.clock.now_ms());
    if !gw.store.close_encounter(id, &a.person.id, now, &staged).await? {
        return Err(ApiError::new(ErrorCode::EncounterClosed, "the encounter is already closed"));
    }
    let patient = gw.store.patient_by_pseudonym(&e.patient).await?.map(|p| p.id).unwrap_or_default();
    json(200, &encounter_view(&EncounterRow { closed_at: Some(now), ..e }, &patient))
}

/// The encounter named in a new draft or note: at this institution, open.
pub(crate) async fn encounter_for_entry(gw: &Gateway, conn: &ConnInfo, id: &str) -> Result<EncounterRow, ApiError> {
    let e = gw
        .store
        .encounter(id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::UnknownEncounter, format!("no encounter {id:?}")))?;
    if e.institution != conn.terminal.institution {
        return Err(ApiError::new(
            ErrorCode::EncounterOtherInstitution,
            "the encounter belongs to another institution",
        ));
    }
    if !e.is_open(gw.clock.now()) {
        return Err(ApiError::new(ErrorCode::NoOpenEncounter, "the encounter is closed or has expired"));
    }
    Ok(e)
}

/// `POST /v1/encounters`.
pub async fn open(c: Ctx, body: Bytes) -> Handled {
    naming_object(async |object| open_encounter(&c.gw, &c.conn, &c.a, &body, object, staging(&c.staging)?).await).await
}

/// `POST /v1/encounters/{encounter}/close`.
pub async fn close(c: Ctx, Path(encounter): Path<String>) -> Handled {
    let answer = match staging(&c.staging) {
        Ok(st) => close_encounter(&c.gw, &c.conn, &c.a, &encounter, st).await,
        Err(e) => Err(e),
    };
    Handled::about(format!("encounter:{encounter}"), answer)
}
