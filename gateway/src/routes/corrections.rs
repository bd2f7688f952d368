//! The staff side of patients' correction requests (FLOW-9): `GET
//! /v1/corrections`, the pending requests against this institution's
//! records, and `POST /v1/corrections/{id}/resolve`. Records stay
//! immutable: an accepted request is answered by a new record of kind
//! `correction` that references the old one (`origin_reference`
//! `correction:<record id>`, content `{corrects, request, text}`); a
//! rejected one keeps the reason. The patient sees the answer on the
//! patient page.

use axum::body::Bytes;
use axum::extract::Path;
use hpki_protocol::ErrorCode;
use hpki_protocol::rights::{CorrectionStatus, Corrections, ResolveCorrection};

use crate::routes::patient_rights::{correction_view, seal_correction, text_of};
use crate::routes::workflow::{json, parse, patient_id_of, random_id};
use crate::routes::{ApiError, Ctx, Handled};
use crate::store::{CorrectionRow, RecordRow, SealedTable};

/// The kind of a correcting record.
pub const KIND: &str = "correction";

/// `GET /v1/corrections`.
pub async fn queue(c: Ctx) -> Handled {
    let answer = async {
        let mut out = Vec::new();
        for row in c.gw.store.correction_queue(&c.conn.terminal.institution).await? {
            let pid = patient_id_of(&c.gw, &row.patient).await?;
            out.push(correction_view(&c.gw, &row, &pid)?);
        }
        json(200, &Corrections { corrections: out })
    }
    .await;
    Handled::about("corrections", answer)
}

/// `POST /v1/corrections/{id}/resolve`.
pub async fn resolve(c: Ctx, Path(id): Path<String>, body: Bytes) -> Handled {
    let mut object = format!("correction:{id}");
    let answer = async {
        let req: ResolveCorrection = parse(&body)?;
        let unknown = || {
            ApiError::new(ErrorCode::UnknownCorrection, format!("no correction request {id:?} for this institution"))
        };
        let row = c.gw.store.correction(&id).await?.ok_or_else(unknown)?;
        // Only the staff of the record's institution answer.
        if row.institution != c.conn.terminal.institution {
            return Err(unknown());
        }
        if row.status != CorrectionStatus::Pending {
            return Err(answered(&row));
        }
        if req.decision == CorrectionStatus::Pending {
            return Err(ApiError::new(ErrorCode::BadRequest, "decision must be accepted or rejected"));
        }
        let text = text_of(&req.text, "the answer")?;
        let pid = patient_id_of(&c.gw, &row.patient).await?;
        let request = correction_view(&c.gw, &row, &pid)?;
        let now = c.gw.clock.now();
        let record = match req.decision {
            CorrectionStatus::Accepted => {
                let rid = random_id(&c.gw, "rec_")?;
                let content = serde_json::json!({"corrects": row.record, "request": row.id, "text": text});
                let plain =
                    serde_json::to_vec(&content).map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
                let sealed = c.gw.keys().seal(&SealedTable::Records.aad(&rid), &plain)?;
                Some(RecordRow::unsigned(
                    rid,
                    KIND,
                    (row.patient.clone(), row.institution.clone()),
                    format!("correction:{}", row.record),
                    c.a.person.id.clone(),
                    sealed,
                    now,
                ))
            }
            _ => None,
        };
        let (key_id, content) = seal_correction(&c.gw, &row.id, &request.text, Some(&text))?;
        let resolved = CorrectionRow {
            status: req.decision,
            key_id,
            content,
            resolved_by: Some(c.a.person.id.clone()),
            resolved_at: Some(now),
            correction_record: record.as_ref().map(|r| r.id.clone()),
            ..row.clone()
        };
        object = format!(
            "correction:{id} record:{} {} patient:{pid}",
            row.record,
            record.as_ref().map_or_else(|| "rejected".to_owned(), |r| format!("correction_record:{}", r.id))
        );
        c.gw.store.resolve_correction(&resolved, record.as_ref(), &c.stage(object.as_str())?).await.map_err(
            |e| match e {
                crate::store::StoreError::Conflict(_) => answered(&row),
                e => ApiError::from(e),
            },
        )?;
        json(200, &correction_view(&c.gw, &resolved, &pid)?)
    }
    .await;
    Handled::about(object, answer)
}

fn answered(row: &CorrectionRow) -> ApiError {
    ApiError::new(ErrorCode::CorrectionAnswered, format!("correction request {} is answered already", row.id))
}
