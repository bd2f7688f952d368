//! Patients: `POST /v1/patients` (registration by staff of the institution)
//! and `GET /v1/patients/{id}/records` (what the reader may see: the own
//! institution's records, and others' where the patient consented).

use crate::routes::workflow::{Answer, hex, json, open_encounter_here, parse, patient, patient_id, record_view};

use axum::body::Bytes;
use axum::extract::Path;

use crate::audit::outbox::Staging;
use crate::gateway::{ConnInfo, Gateway};
use crate::routes::{ApiError, Authenticated, Ctx, Handled, naming_object, staging};
use crate::store::PatientRow;
use hpki_protocol::ErrorCode;
use hpki_protocol::workflow::{NewPatient, Patient, Records};
use ring::rand::SecureRandom;

pub(crate) async fn register_patient(
    gw: &Gateway,
    a: &Authenticated,
    body: &[u8],
    object: &mut String,
    st: &Staging,
) -> Answer {
    let req: NewPatient = parse(body)?;
    let row = new_patient_row(&gw.rng, gw.clock.now(), &req)?;
    *object = format!("patient:{}", row.id);
    let staged = st.stage(&a.person.id, object.as_str(), gw.clock.now_ms());
    gw.store.add_patient(&row, &a.person.id, gw.clock.now(), &staged).await?;
    json(201, &Patient { id: row.id, name: row.name, name_kanji: row.name_kanji, birth_date: row.birth_date })
}

/// Checks a new patient's fields and draws the id and the pseudonym.
pub fn new_patient_row(rng: &dyn SecureRandom, now: i64, req: &NewPatient) -> Result<PatientRow, ApiError> {
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::new(ErrorCode::InvalidName, "the name must be 1–200 characters"));
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let born = time::Date::parse(&req.birth_date, &format)
        .map_err(|_| ApiError::new(ErrorCode::InvalidBirthDate, "birth_date must be a date as YYYY-MM-DD"))?;
    if born > time::OffsetDateTime::from_unix_timestamp(now).map(|t| t.date()).unwrap_or(time::Date::MAX) {
        return Err(ApiError::new(ErrorCode::InvalidBirthDate, "birth_date is in the future"));
    }
    let mut p = [0u8; 16];
    rng.fill(&mut p).map_err(|_| ApiError::new(ErrorCode::NoRandomness, "the system random generator failed"))?;
    Ok(PatientRow {
        id: patient_id(rng)?,
        pseudonym: hex(&p),
        name: name.into(),
        name_kanji: req.name_kanji.as_deref().map(str::trim).filter(|k| !k.is_empty()).map(str::to_owned),
        birth_date: req.birth_date.clone(),
    })
}

pub(crate) async fn patient_records(gw: &Gateway, conn: &ConnInfo, id: &str) -> Answer {
    let p = patient(gw, id).await?;
    open_encounter_here(gw, conn, &p).await?;
    json(200, &visible_records(gw, p, Some(&conn.terminal.institution)).await?)
}

/// FLOW-4: a patient's records from the institutions the patient consented
/// to share, plus those of `own_institution` (the reader's own, if staff).
pub async fn visible_records(gw: &Gateway, p: PatientRow, own_institution: Option<&str>) -> Result<Records, ApiError> {
    let shared = gw.store.consented_institutions(&p.id).await?;
    let mut records = Vec::new();
    for r in gw.store.records_of(&p.pseudonym).await? {
        if own_institution == Some(r.institution.as_str()) || shared.contains(&r.institution) {
            records.push(record_view(gw, &r, &p.id)?);
        }
    }
    Ok(Records { patient: p.id, records })
}

/// `POST /v1/patients`.
pub async fn register(c: Ctx, body: Bytes) -> Handled {
    naming_object(async |object| register_patient(&c.gw, &c.a, &body, object, staging(&c.staging)?).await).await
}

/// `GET /v1/patients/{patient}/records`.
pub async fn records(c: Ctx, Path(patient): Path<String>) -> Handled {
    Handled::about(format!("patient:{patient}"), patient_records(&c.gw, &c.conn, &patient).await)
}
