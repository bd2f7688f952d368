//! The institution listener's endpoints, one file per group: `auth` (login),
//! `session` (whose request it is), `workflow` (patients, encounters,
//! drafts, confirm, notes, records), `patient_portal` (the patient listener).
//! Shared here: the refusal (`Refused`), what a handler did (`Outcome`) and
//! the request's audit entry.
//!
//! Every request is audited with the terminal, the person (when known), the
//! action, the object, the outcome and the refusal reason; every refusal has
//! a stable code in the response body (`{"error": code, "message": …}`).

pub mod auth;
pub mod confirm;
pub mod drafts;
pub mod encounters;
pub mod notes;
pub mod patient_portal;
pub mod patients;
pub mod session;
pub mod workflow;

pub use auth::{challenge, login, logout, revocation_evidence, verify_card_signature, whoami};
pub use session::{Authenticated, Authentication, authenticate, check_allowed, check_terminal};

use hpki_protocol::ErrorCode;
use hpki_protocol::wire::ErrorBody;
use ring::rand::SecureRandom;

use crate::audit::AuditEvent;
use crate::gateway::{ConnInfo, Gateway, Metrics};
use crate::store::StoreError;

/// A refusal: its code (which gives the HTTP status) and a message for
/// people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub code: ErrorCode,
    pub message: String,
}

impl Refused {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Refused {
        Refused { code, message: message.into() }
    }

    pub fn status(&self) -> u16 {
        self.code.status()
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody { error: self.code.as_str().into(), message: self.message.clone() }
    }

    /// A certificate the validator refused, with `context` before its reason.
    pub fn certificate(r: &hpki_profile::Refusal, context: &str) -> Refused {
        let code = ErrorCode::from_wire(r.code()).unwrap_or_else(|| {
            tracing::error!(code = r.code(), "a validation refusal code missing from the protocol's ErrorCode");
            ErrorCode::Internal
        });
        Refused::new(code, format!("{context}: {r}"))
    }
}

impl From<StoreError> for Refused {
    fn from(e: StoreError) -> Refused {
        tracing::error!(error = %e, "store error");
        store_unavailable()
    }
}

pub(crate) fn store_unavailable() -> Refused {
    Refused::new(ErrorCode::StoreUnavailable, "the gateway's store is not available; try again")
}

/// What a handler did, for the audit log.
pub struct Outcome {
    pub status: u16,
    pub body: Vec<u8>,
    pub actor: String,
    pub object: String,
    pub refusal: Option<ErrorCode>,
}

pub(crate) fn ok_json<T: serde::Serialize>(value: &T, actor: String, object: String) -> Outcome {
    Outcome { status: 200, body: serde_json::to_vec(value).unwrap_or_default(), actor, object, refusal: None }
}

pub fn refused(r: Refused, actor: String, object: String) -> Outcome {
    Outcome {
        status: r.status(),
        body: serde_json::to_vec(&r.body()).unwrap_or_default(),
        actor,
        object,
        refusal: Some(r.code),
    }
}

pub(crate) fn random<const N: usize>(gw: &Gateway) -> Result<[u8; N], Refused> {
    let mut b = [0u8; N];
    gw.rng.fill(&mut b).map_err(|_| Refused::new(ErrorCode::NoRandomness, "the system random generator failed"))?;
    Ok(b)
}

/// Appends `event` to the audit log. When it cannot be written the error
/// is logged and counted, and the caller gets the refusal that replaces
/// the request's answer (LOG-1 fails closed: no access without a trace; a
/// change the request made committed before its entry was due and is kept,
/// so the client must look before repeating it).
pub async fn record(gw: &Gateway, event: AuditEvent) -> Result<(), Refused> {
    match gw.audit.append(event.clone(), gw.clock.now_ms()).await {
        Ok(_) => Ok(()),
        Err(e) => {
            Metrics::inc(&gw.metrics.audit_failures);
            tracing::error!(error = %e, action = %event.action, "cannot write the audit log");
            Err(Refused::new(
                ErrorCode::AuditUnavailable,
                "the gateway could not record this request in its audit log and withholds the answer; \
                 anything the request changed is kept: check before repeating it",
            ))
        }
    }
}

/// The audit entry of one request.
pub fn audit_event(conn: &ConnInfo, action: &str, outcome: &Outcome, request_id: &str) -> AuditEvent {
    AuditEvent {
        actor: outcome.actor.clone(),
        terminal: conn.terminal.key(),
        institution: conn.terminal.institution.clone(),
        action: action.into(),
        object: outcome.object.clone(),
        outcome: if outcome.refusal.is_some() { "refused".into() } else { "ok".into() },
        reason: outcome.refusal.map_or("-", ErrorCode::as_str).into(),
        request_id: request_id.into(),
    }
}

/// The channel-binding buffer type, for the listener.
pub use crate::gateway::ChannelBinding;

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
