//! The session of a request: the terminal not suspended, the bearer token
//! looked up (grouped with concurrent lookups, `store::session_reader`), bound to
//! this terminal, and the role table consulted for the action.

use crate::domain::roles::{Action, Role, allowed};
use crate::gateway::{ConnInfo, Gateway};
use crate::routes::{Refused, store_unavailable};
use crate::store::{PersonRow, SessionEnd, SessionQuery, SessionUse};
use hpki_protocol::ErrorCode;
use ring::digest::{SHA256, digest};

/// The session of a request: the bearer token, checked against the store,
/// the terminal (its session and whether it is suspended) and the person's
/// state.
pub struct Authenticated {
    pub token_hash: Vec<u8>,
    pub person: PersonRow,
    pub role: Role,
    pub session: crate::store::SessionRow,
}

pub(crate) fn terminal_suspended() -> Refused {
    Refused::new(ErrorCode::TerminalSuspended, "this terminal is suspended; contact IT")
}

/// Refuses a request from a suspended terminal (for requests that do not
/// look a session up; `authenticate` learns it with the session).
pub async fn check_terminal(gw: &Gateway, conn: &ConnInfo) -> Result<(), Refused> {
    match gw.store.terminal_suspended(&conn.terminal.institution, &conn.terminal.name).await? {
        true => Err(terminal_suspended()),
        false => Ok(()),
    }
}

/// A request's session, or why it has none usable (with the person, when
/// known, for the audit entry).
pub type Authentication = Result<Authenticated, (Refused, Option<String>)>;

pub async fn authenticate(gw: &Gateway, conn: &ConnInfo, authorization: Option<&str>) -> Authentication {
    let Some(token) = authorization.and_then(|h| h.strip_prefix("Bearer ")) else {
        // Without a session to look up, the terminal is checked on its own
        // (a suspended terminal hears that first, as with a session).
        check_terminal(gw, conn).await.map_err(|r| (r, None))?;
        return Err((Refused::new(ErrorCode::NoSession, "log in first (Authorization: Bearer …)"), None));
    };
    let token_hash = digest(&SHA256, token.trim().as_bytes()).as_ref().to_vec();
    let now = gw.clock.now();
    let query = SessionQuery {
        token_hash: token_hash.clone(),
        institution: conn.terminal.institution.clone(),
        name: conn.terminal.name.clone(),
        now,
    };
    let (session, person) = match gw.sessions.use_session(query).await {
        Ok(SessionUse::Usable(s, p)) => (s, p),
        Ok(SessionUse::TerminalSuspended) => return Err((terminal_suspended(), None)),
        Ok(SessionUse::Unusable(end)) => {
            let (code, msg) = match end {
                SessionEnd::Unknown => (ErrorCode::SessionUnknown, "no such session; log in again"),
                SessionEnd::Ended => (ErrorCode::SessionEnded, "the session has ended; log in again"),
                SessionEnd::IdleTimeout => (ErrorCode::SessionIdleTimeout, "no activity for too long; log in again"),
                SessionEnd::Expired => {
                    (ErrorCode::SessionExpired, "the session reached its maximum length; log in again")
                }
            };
            return Err((Refused::new(code, msg), None));
        }
        Err(e) => {
            tracing::error!(error = %e, "store error");
            return Err((store_unavailable(), None));
        }
    };
    let who = Some(session.person_id.clone());
    if session.terminal != conn.terminal.key() {
        return Err((Refused::new(ErrorCode::SessionOtherTerminal, "this session belongs to another terminal"), who));
    }
    let Some(person) = person.filter(|p| p.active) else {
        let _ = gw.store.end_session(&token_hash, now, "person_deactivated").await;
        return Err((Refused::new(ErrorCode::PersonDeactivated, "this person is deactivated"), who));
    };
    let role = Role::from_name(&person.role)
        .ok_or_else(|| (Refused::new(ErrorCode::UnknownRole, "unknown role"), who.clone()))?;
    Ok(Authenticated { token_hash, person, role, session })
}

/// The role × action table applied to a session.
pub fn check_allowed(a: &Authenticated, action: Action) -> Result<(), Refused> {
    if allowed(a.role, action) {
        Ok(())
    } else {
        Err(Refused::new(ErrorCode::NotPermitted, format!("a {} may not do this ({action:?})", a.role)))
    }
}
