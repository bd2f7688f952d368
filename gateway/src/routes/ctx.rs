//! What a handler is given: the gateway and the connection ([`Public`]),
//! and for session endpoints the session the session layer admitted
//! ([`Ctx`]). Both come out of the request's extensions, where the listener
//! and the layers put them.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use hpki_protocol::ErrorCode;

use crate::audit::outbox::{Staged, Staging};
use crate::domain::roles::{Action, Role, allowed};
use crate::gateway::{ConnInfo, Gateway};
use crate::routes::ApiError;
use crate::store::{PersonRow, SessionRow};

/// A request's session: the bearer token checked against the store, bound
/// to this terminal, its person active in a known role.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub token_hash: Vec<u8>,
    pub person: PersonRow,
    pub role: Role,
    pub session: SessionRow,
}

/// The role × action table applied to a session.
pub fn check_allowed(a: &Authenticated, action: Action) -> Result<(), ApiError> {
    if allowed(a.role, action) {
        Ok(())
    } else {
        Err(ApiError::new(ErrorCode::NotPermitted, format!("a {} may not do this ({action:?})", a.role)))
    }
}

/// The handler of an endpoint without a session.
pub struct Public {
    pub gw: Arc<Gateway>,
    pub conn: Arc<ConnInfo>,
    pub staging: Option<Staging>,
}

/// The handler of a session endpoint.
pub struct Ctx {
    pub gw: Arc<Gateway>,
    pub conn: Arc<ConnInfo>,
    pub a: Arc<Authenticated>,
    /// For the endpoints that change state (`audit::outbox`).
    pub staging: Option<Staging>,
}

/// The staging of an endpoint that changes state; a handler that changes
/// state without one is refused (the audit layer was not mounted).
pub fn staging(s: &Option<Staging>) -> Result<&Staging, ApiError> {
    s.as_ref().ok_or_else(|| unmounted("audit staging"))
}

impl Ctx {
    /// The entry this request's change owes, made by the session's person.
    pub fn stage(&self, object: impl Into<String>) -> Result<Staged, ApiError> {
        Ok(staging(&self.staging)?.stage(&self.a.person.id, object, self.gw.clock.now_ms()))
    }
}

/// A handler mounted without the layer that provides its input: a bug in
/// the endpoint table, refused rather than served.
fn unmounted(what: &str) -> ApiError {
    tracing::error!(what, "a handler ran without its layer");
    ApiError::new(ErrorCode::Internal, "the gateway is misconfigured")
}

impl FromRequestParts<Arc<Gateway>> for Public {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, gw: &Arc<Gateway>) -> Result<Public, ApiError> {
        let conn = parts.extensions.get::<Arc<ConnInfo>>().cloned().ok_or_else(|| unmounted("connection"))?;
        Ok(Public { gw: gw.clone(), conn, staging: parts.extensions.get::<Staging>().cloned() })
    }
}

impl FromRequestParts<Arc<Gateway>> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, gw: &Arc<Gateway>) -> Result<Ctx, ApiError> {
        let conn = parts.extensions.get::<Arc<ConnInfo>>().cloned().ok_or_else(|| unmounted("connection"))?;
        let a = parts.extensions.get::<Arc<Authenticated>>().cloned().ok_or_else(|| unmounted("session"))?;
        Ok(Ctx { gw: gw.clone(), conn, a, staging: parts.extensions.get::<Staging>().cloned() })
    }
}
