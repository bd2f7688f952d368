//! Emergency operation (FLOW-7) for a clinician at a terminal:
//! `GET /v1/status` (the operating mode and one's break-glass accesses in
//! force, for the screen's banner), and break-glass — `POST /v1/break-glass`
//! (start, with a reason code and free text), `GET
//! /v1/break-glass/{id}/records` (that one patient's records, from every
//! institution, without an open encounter and beyond the patient's sharing
//! consent) and `POST /v1/break-glass/{id}/end`.
//!
//! Who may break the glass: the role table (`BreakGlass`) and a designation
//! by IT staff, both. Every entry of an access is a `break_glass.*` action
//! (the flag), its start raises an alert (`http::layers::alerts`), and it
//! stays on the monthly report until an auditor records a review.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::Path;
use hpki_protocol::ErrorCode;
use hpki_protocol::emergency::{BreakGlassAccess, BreakGlassReason, BreakGlassRequest, GatewayStatus};
use hpki_protocol::workflow::Records;

use crate::routes::workflow::{Answer, json, parse, patient, random_id, record_view, time};
use crate::routes::{ApiError, Ctx, Handled, naming_object};
use crate::store::BreakGlassRow;
use crate::store::snapshot::Snapshot;

/// The longest free text of a break-glass request.
const MAX_DETAIL_CHARS: usize = 1000;

/// The view of an access.
pub fn access_view(r: &BreakGlassRow, now: i64) -> BreakGlassAccess {
    BreakGlassAccess {
        id: r.id.clone(),
        patient: r.patient_id.clone(),
        person: r.person.clone(),
        institution: r.institution.clone(),
        reason: r.reason,
        detail: r.detail.clone(),
        started_at: time(r.started_at),
        expires_at: time(r.expires_at),
        ended_at: r.over_at(now).map(time),
        active: r.active_at(now),
    }
}

fn not_designated() -> ApiError {
    ApiError::new(
        ErrorCode::BreakGlassNotDesignated,
        "you are not designated to break the glass; IT staff designate clinicians for emergency access",
    )
}

/// The checked reason code and free text of a request.
pub fn reason_of(req: &BreakGlassRequest) -> Result<(BreakGlassReason, String), ApiError> {
    let codes = || BreakGlassReason::ALL.map(|r| r.as_str()).join(", ");
    let code = req.reason.as_deref().map(str::trim).filter(|c| !c.is_empty()).ok_or_else(|| {
        ApiError::new(ErrorCode::BreakGlassReasonRequired, format!("give the reason code: one of {}", codes()))
    })?;
    let reason = BreakGlassReason::from_name(code).ok_or_else(|| {
        ApiError::new(ErrorCode::InvalidBreakGlassReason, format!("unknown reason code {code:?}: one of {}", codes()))
    })?;
    let detail = req.detail.as_deref().map(str::trim).unwrap_or_default();
    if detail.is_empty() || detail.chars().count() > MAX_DETAIL_CHARS {
        return Err(ApiError::new(
            ErrorCode::BreakGlassReasonRequired,
            format!("say what the emergency is (detail, 1–{MAX_DETAIL_CHARS} characters)"),
        ));
    }
    Ok((reason, detail.to_owned()))
}

/// `POST /v1/break-glass`.
pub async fn start(c: Ctx, body: Bytes) -> Handled {
    naming_object(async |object| {
        let req: BreakGlassRequest = parse(&body)?;
        *object = format!("patient:{}", req.patient);
        // The designation first: who may not break the glass learns
        // nothing about which patient ids exist.
        if !c.gw.store.break_glass_designated(&c.a.person.id).await? {
            return Err(not_designated());
        }
        let (reason, detail) = reason_of(&req)?;
        let p = patient(&c.gw, req.patient.trim()).await?;
        let now = c.gw.clock.now();
        let row = BreakGlassRow {
            id: random_id(&c.gw, "bg_")?,
            person: c.a.person.id.clone(),
            institution: c.conn.terminal.institution.clone(),
            terminal: c.conn.terminal.key().to_owned(),
            patient_id: p.id.clone(),
            reason,
            detail,
            started_at: now,
            expires_at: now + c.gw.config.break_glass.duration_seconds,
            ended_at: None,
            end_reason: None,
            reviewed_by: None,
            reviewed_at: None,
            review_note: None,
        };
        *object = row.audit_object();
        c.gw.store.start_break_glass(&row, &c.stage(object.as_str())?).await?;
        tracing::warn!(access = %row.id, person = %row.person, patient = %p.id, reason = %reason, "break-glass access started");
        json(201, &access_view(&row, now))
    })
    .await
}

/// The caller's access `id` at this terminal's institution, in force.
async fn usable(c: &Ctx, id: &str) -> Result<BreakGlassRow, ApiError> {
    let gw = &c.gw;
    let unknown = || ApiError::new(ErrorCode::UnknownBreakGlass, format!("no break-glass access {id:?} of yours here"));
    let row = gw.store.break_glass(id).await?.ok_or_else(unknown)?;
    // Another person's access, or one asked for at another institution, is
    // not this caller's to use: the same answer as none.
    if row.person != c.a.person.id || row.institution != c.conn.terminal.institution {
        return Err(unknown());
    }
    let now = gw.clock.now();
    if let Some(over) = row.over_at(now) {
        let how = match row.end_reason.as_deref() {
            Some("ended") => "was ended",
            Some("revoked") => "ended when the designation was revoked",
            _ => "expired",
        };
        return Err(ApiError::new(
            ErrorCode::BreakGlassExpired,
            format!("break-glass access {id} {how} at {}; ask again if the emergency goes on", time(over)),
        ));
    }
    Ok(row)
}

/// `GET /v1/break-glass/{access}/records`: every record of the patient,
/// from every institution (consent or not).
pub async fn records(c: Ctx, Path(access): Path<String>) -> Handled {
    let mut object = format!("break_glass:{access}");
    let answer = async {
        let row = usable(&c, &access).await?;
        object = row.audit_object();
        let p = patient(&c.gw, &row.patient_id).await?;
        let mut records = Vec::new();
        for r in c.gw.store.records_of(&p.pseudonym).await? {
            records.push(record_view(&c.gw, &r, &p.id)?);
        }
        json(200, &Records { patient: p.id, records })
    }
    .await;
    Handled::about(object, answer)
}

/// `POST /v1/break-glass/{access}/end`: the clinician is done.
pub async fn end(c: Ctx, Path(access): Path<String>) -> Handled {
    let mut object = format!("break_glass:{access}");
    let answer: Answer = async {
        let row = usable(&c, &access).await?;
        object = row.audit_object();
        let now = c.gw.clock.now();
        if !c.gw.store.end_break_glass(&row.id, now, "ended", Some(&c.stage(object.as_str())?)).await? {
            return Err(ApiError::new(ErrorCode::BreakGlassExpired, format!("break-glass access {} is over", row.id)));
        }
        let ended = BreakGlassRow { ended_at: Some(now), end_reason: Some("ended".into()), ..row };
        json(200, &access_view(&ended, now))
    }
    .await;
    Handled::about(object, answer)
}

/// `GET /v1/status`.
pub async fn status(c: Ctx, snapshot: Option<Extension<Snapshot>>) -> Handled {
    let answer = async {
        // The terminal layer leaves it on every request; without it the
        // endpoint was mounted without its layers (refused, not guessed).
        let Some(Extension(snapshot)) = snapshot else {
            tracing::error!("GET /v1/status without the terminal layer's snapshot");
            return Err(ApiError::new(ErrorCode::Internal, "the gateway is misconfigured"));
        };
        let now = c.gw.clock.now();
        let mine = c.gw.store.active_break_glass_of(&c.a.person.id, now).await?;
        let m = &snapshot.mode;
        json(
            200,
            &GatewayStatus {
                mode: m.mode,
                mode_reason: m.reason.clone(),
                mode_since: time(m.changed_at),
                break_glass: mine
                    .iter()
                    .filter(|r| r.institution == c.conn.terminal.institution)
                    .map(|r| access_view(r, now))
                    .collect(),
            },
        )
    }
    .await;
    Handled::about("session", answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(reason: Option<&str>, detail: Option<&str>) -> BreakGlassRequest {
        BreakGlassRequest { patient: "P1".into(), reason: reason.map(Into::into), detail: detail.map(Into::into) }
    }

    #[test]
    fn a_request_needs_a_known_reason_code_and_its_free_text() {
        let code = |r: Result<_, ApiError>| r.err().map(|e| e.code);
        assert_eq!(code(reason_of(&req(None, Some("collapsed")))), Some(ErrorCode::BreakGlassReasonRequired));
        assert_eq!(code(reason_of(&req(Some("  "), Some("collapsed")))), Some(ErrorCode::BreakGlassReasonRequired));
        assert_eq!(code(reason_of(&req(Some("curiosity"), Some("x")))), Some(ErrorCode::InvalidBreakGlassReason));
        assert_eq!(code(reason_of(&req(Some("disaster"), None))), Some(ErrorCode::BreakGlassReasonRequired));
        assert_eq!(code(reason_of(&req(Some("disaster"), Some(" \n ")))), Some(ErrorCode::BreakGlassReasonRequired));
        let long = "x".repeat(MAX_DETAIL_CHARS + 1);
        assert_eq!(code(reason_of(&req(Some("disaster"), Some(&long)))), Some(ErrorCode::BreakGlassReasonRequired));
        assert_eq!(
            reason_of(&req(Some("emergency_treatment"), Some(" unconscious at the door "))).expect("fine"),
            (BreakGlassReason::EmergencyTreatment, "unconscious at the door".to_owned())
        );
    }

    #[test]
    fn an_access_is_over_at_its_end_or_its_expiry() {
        let row = BreakGlassRow {
            id: "bg_1".into(),
            person: "D1".into(),
            institution: "Clinic".into(),
            terminal: "Clinic/t1".into(),
            patient_id: "P1".into(),
            reason: BreakGlassReason::Disaster,
            detail: "flood".into(),
            started_at: 100,
            expires_at: 200,
            ended_at: None,
            end_reason: None,
            reviewed_by: None,
            reviewed_at: None,
            review_note: None,
        };
        assert!(access_view(&row, 199).active);
        assert_eq!(access_view(&row, 200).ended_at.as_deref(), Some(time(200).as_str()));
        let ended = BreakGlassRow { ended_at: Some(150), ..row };
        assert!(!access_view(&ended, 160).active);
        assert_eq!(access_view(&ended, 160).ended_at, Some(time(150)));
    }
}
