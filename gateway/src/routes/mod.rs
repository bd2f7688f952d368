//! The endpoints' handlers, one file per group: `auth` (challenge, login,
//! whoami, logout), `patients`, `encounters`, `drafts`, `confirm`, `notes`,
//! and `patient_portal` (the patient listener). Which handler serves which
//! method and path, with which role action and audit action, is the table in
//! `http::endpoints`; the layers around every handler are in `http::layers`.
//!
//! Shared here: the error every handler and layer answers with
//! ([`ApiError`], a stable code that gives the HTTP status), what a handler
//! answers ([`Handled`]), what it is given ([`Public`], [`Ctx`]), and the
//! facts a handler or layer leaves on its response for the audit layer
//! ([`Actor`], [`Object`], [`Refusal`]).

pub mod auth;
pub mod confirm;
pub mod corrections;
pub mod ctx;
pub mod drafts;
pub mod emergency;
pub mod encounters;
pub mod notes;
pub mod patient_portal;
pub mod patient_rights;
pub mod patients;
pub mod received;
pub mod workflow;

pub use auth::{revocation_evidence, verify_card_signature};
pub use ctx::{Authenticated, Ctx, Public, check_allowed, staging};

use hpki_protocol::ErrorCode;
use hpki_protocol::wire::ErrorBody;
use ring::rand::SecureRandom;

use crate::audit::AuditEvent;
use crate::gateway::{Gateway, Metrics};
use crate::store::StoreError;

/// A refusal: its code (which gives the HTTP status) and a message for
/// people. Store, record-key and validation errors convert into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError { code, message: message.into() }
    }

    pub fn status(&self) -> u16 {
        self.code.status()
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody { error: self.code.as_str().into(), message: self.message.clone() }
    }

    /// A certificate the validator refused, with `context` before its reason.
    pub fn certificate(r: &hpki_profile::Refusal, context: &str) -> ApiError {
        let code = ErrorCode::from_wire(r.code()).unwrap_or_else(|| {
            tracing::error!(code = r.code(), "a validation refusal code missing from the protocol's ErrorCode");
            ErrorCode::Internal
        });
        ApiError::new(code, format!("{context}: {r}"))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        tracing::error!(error = %e, "store error");
        store_unavailable()
    }
}

impl From<hpki_profile::Refusal> for ApiError {
    fn from(r: hpki_profile::Refusal) -> ApiError {
        ApiError::certificate(&r, "the certificate was refused")
    }
}

impl From<crate::domain::keyring::KeyError> for ApiError {
    fn from(e: crate::domain::keyring::KeyError) -> ApiError {
        tracing::error!(error = %e, "record key error");
        ApiError::new(ErrorCode::RecordKeyError, "stored health data cannot be opened or sealed; the operator is told")
    }
}

pub(crate) fn store_unavailable() -> ApiError {
    ApiError::new(ErrorCode::StoreUnavailable, "the gateway's store is not available; try again")
}

/// A handled request: status and JSON body, or the refusal.
pub type Answer = Result<(u16, Vec<u8>), ApiError>;

/// What a handler answers: the answer, and what the request was about and
/// who made it (when the handler is the one who knows) for the audit log.
pub struct Handled {
    pub actor: Option<String>,
    pub object: String,
    pub answer: Answer,
}

impl Handled {
    pub fn about(object: impl Into<String>, answer: Answer) -> Handled {
        Handled { actor: None, object: object.into(), answer }
    }
}

/// Runs a handler that names its object as it learns it (from the body,
/// then from what it made), for the audit entry, even when it then refuses.
pub async fn naming_object(handler: impl AsyncFnOnce(&mut String) -> Answer) -> Handled {
    let mut object = "-".to_owned();
    let answer = handler(&mut object).await;
    Handled::about(object, answer)
}

/// Response facts for the audit layer: the person who made the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(pub String);

/// Response facts for the audit layer: what the request was about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object(pub String);

/// Response facts for the audit layer: why the request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal(pub ErrorCode);

/// What a patient-listener handler did, for its audit entry.
pub struct Answered {
    pub status: u16,
    pub body: Vec<u8>,
    pub actor: String,
    pub object: String,
    pub refusal: Option<ErrorCode>,
}

pub fn refused(r: ApiError, actor: String, object: String) -> Answered {
    Answered {
        status: r.status(),
        body: serde_json::to_vec(&r.body()).unwrap_or_default(),
        actor,
        object,
        refusal: Some(r.code),
    }
}

pub(crate) fn random<const N: usize>(gw: &Gateway) -> Result<[u8; N], ApiError> {
    let mut b = [0u8; N];
    gw.rng.fill(&mut b).map_err(|_| ApiError::new(ErrorCode::NoRandomness, "the system random generator failed"))?;
    Ok(b)
}

/// Appends `event` to the audit log. When it cannot be written the error
/// is logged and counted, and the caller gets the refusal that replaces
/// the request's answer (LOG-1 fails closed: no access without a trace; a
/// change the request made committed before its entry was due and is kept,
/// so the client must look before repeating it).
pub async fn record(
    audit: &crate::audit::writer::AuditWriter,
    metrics: &Metrics,
    event: AuditEvent,
    at_ms: i64,
) -> Result<(), ApiError> {
    match audit.append(event.clone(), at_ms).await {
        Ok(_) => Ok(()),
        Err(e) => {
            Metrics::inc(&metrics.audit_failures);
            tracing::error!(error = %e, action = %event.action, "cannot write the audit log");
            Err(ApiError::new(
                ErrorCode::AuditUnavailable,
                "the gateway could not record this request in its audit log and withholds the answer; \
                 anything the request changed is kept: check before repeating it",
            ))
        }
    }
}

/// Appends the refusal `event` within `budget` (`audit::budget`): written
/// and durable before this returns while the second's budget has room,
/// otherwise counted into the second's coalesced entry (written by the
/// gateway's budget timer).
pub async fn record_refusal(
    audit: &crate::audit::writer::AuditWriter,
    metrics: &Metrics,
    budget: &crate::audit::budget::RefusalBudget,
    event: AuditEvent,
    at_ms: i64,
) -> Result<(), ApiError> {
    match budget.offer(event, at_ms) {
        Some(event) => record(audit, metrics, event, at_ms).await,
        None => {
            Metrics::inc(&metrics.audit_refusals_coalesced);
            Ok(())
        }
    }
}

/// Audits the refusal `event` of a connection within `budget`, without
/// waiting: there is no answer to withhold, and a flood must not make an
/// accept loop wait for commits. The budget is asked first, so the tasks
/// spawned are bounded by it.
pub fn record_refusal_detached(
    gw: &std::sync::Arc<crate::gateway::Gateway>,
    budget: &crate::audit::budget::RefusalBudget,
    event: AuditEvent,
) {
    let now = gw.clock.now_ms();
    let Some(event) = budget.offer(event, now) else {
        Metrics::inc(&gw.metrics.audit_refusals_coalesced);
        return;
    };
    let gw = gw.clone();
    tokio::spawn(async move {
        let _ = record(&gw.audit, &gw.metrics, event, now).await;
    });
}

/// Writes the coalesced entries of `budget`'s seconds that are over (all of
/// them with `all`, at shutdown).
pub async fn write_coalesced(gw: &crate::gateway::Gateway, budget: &crate::audit::budget::RefusalBudget, all: bool) {
    let now = gw.clock.now_ms();
    let due = if all { budget.drain() } else { budget.due(now) };
    for event in due {
        let _ = record(&gw.audit, &gw.metrics, event, now).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every certificate refusal of the validator is a protocol code: 401,
    /// except an unreadable certificate (400, as `docs/protocol.md` says).
    #[test]
    fn every_validation_refusal_is_a_protocol_code() {
        for code in hpki_profile::Refusal::CODES {
            let c = ErrorCode::from_wire(code).unwrap_or_else(|| panic!("{code} is no ErrorCode"));
            let expected = if *code == "malformed_certificate" { 400 } else { 401 };
            assert_eq!(c.status(), expected, "{code}");
        }
    }
}
