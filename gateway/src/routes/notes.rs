//! Notes: nurses, dietitians and clinicians add a record of kind `note`
//! (author, no signature) within an open encounter.

use axum::body::Bytes;

use crate::audit::outbox::Staging;
use crate::gateway::{ConnInfo, Gateway};
use crate::routes::confirm::patient_by_pseudonym;
use crate::routes::encounters::encounter_for_entry;
use crate::routes::workflow::{Answer, content_object, json, parse, random_id, record_view};
use crate::routes::{ApiError, Authenticated, Ctx, Handled, naming_object, staging};
use crate::store::{RecordRow, SealedTable};
use hpki_protocol::ErrorCode;
use hpki_protocol::workflow::NewNote;

pub(crate) async fn add_note(
    gw: &Gateway,
    conn: &ConnInfo,
    a: &Authenticated,
    body: &[u8],
    object: &mut String,
    st: &Staging,
) -> Answer {
    let req: NewNote = parse(body)?;
    *object = format!("encounter:{}", req.encounter);
    content_object(&req.content)?;
    let e = encounter_for_entry(gw, conn, &req.encounter).await?;
    let p = patient_by_pseudonym(gw, &e.patient).await?;
    let id = random_id(gw, "rec_")?;
    let plain = serde_json::to_vec(&req.content).map_err(|e| ApiError::new(ErrorCode::MalformedJson, e.to_string()))?;
    let sealed = gw.keys().seal(&SealedTable::Records.aad(&id), &plain)?;
    let row = RecordRow::unsigned(
        id.clone(),
        "note",
        (e.patient.clone(), e.institution.clone()),
        format!("note:{id}"),
        a.person.id.clone(),
        sealed,
        gw.clock.now(),
    );
    *object = format!("encounter:{} record:{id}", e.id);
    gw.store.add_record(&row, &st.stage(&a.person.id, object.as_str(), gw.clock.now_ms())).await?;
    json(201, &record_view(gw, &row, &p.id)?)
}

/// `POST /v1/notes`.
pub async fn add(c: Ctx, body: Bytes) -> Handled {
    naming_object(async |object| add_note(&c.gw, &c.conn, &c.a, &body, object, staging(&c.staging)?).await).await
}
