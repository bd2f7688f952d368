//! Layer 7: the session of a request on a session endpoint — the bearer
//! token's session (from the session cache while the store's generation
//! stands still, else the store: `store::session_reader`), bound to this
//! terminal, its person active in a known role. The session goes to the
//! role layer and the handler; the person's id goes on the response for the
//! audit layer, whatever answers.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hpki_protocol::ErrorCode;
use ring::digest::{SHA256, digest};

use crate::clock::Clock;
use crate::domain::roles::Role;
use crate::gateway::{ConnInfo, Gateway};
use crate::http::endpoints::{Access, Endpoint};
use crate::routes::{Actor, ApiError, Authenticated, store_unavailable};
use crate::store::session_reader::SessionReader;
use crate::store::snapshot::Snapshot;
use crate::store::{SessionEnd, SessionQuery, SessionUse, Store};

#[derive(Clone)]
pub struct Sessions {
    pub reader: SessionReader,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub endpoint: Endpoint,
}

impl Sessions {
    pub fn of(gw: &Gateway, endpoint: Endpoint) -> Sessions {
        Sessions { reader: gw.sessions.clone(), store: gw.store.clone(), clock: gw.clock.clone(), endpoint }
    }
}

pub async fn layer(State(s): State<Arc<Sessions>>, mut req: Request, next: Next) -> Response {
    if s.endpoint.access() == Access::Public {
        return next.run(req).await;
    }
    let (Some(conn), Some(snapshot)) =
        (req.extensions().get::<Arc<ConnInfo>>().cloned(), req.extensions().get::<Snapshot>().cloned())
    else {
        tracing::error!("a session check without the terminal layer");
        return ApiError::new(ErrorCode::Internal, "the gateway is misconfigured").into_response();
    };
    let authorization = req.headers().get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    match authenticate(&s, &conn, &snapshot, authorization).await {
        Ok(a) => {
            tracing::Span::current().record("person", a.person.id.as_str());
            let actor = Actor(a.person.id.clone());
            req.extensions_mut().insert(Arc::new(a));
            let mut resp = next.run(req).await;
            if resp.extensions().get::<Actor>().is_none() {
                resp.extensions_mut().insert(actor);
            }
            resp
        }
        Err((r, who)) => {
            let mut resp = r.into_response();
            if let Some(who) = who {
                resp.extensions_mut().insert(Actor(who));
            }
            resp
        }
    }
}

/// A request's session, or why it has none usable (with the person, when
/// known, for the audit entry).
async fn authenticate(
    s: &Sessions,
    conn: &ConnInfo,
    snapshot: &Snapshot,
    authorization: Option<&str>,
) -> Result<Authenticated, (ApiError, Option<String>)> {
    let Some(token) = authorization.and_then(|h| h.strip_prefix("Bearer ")) else {
        return Err((ApiError::new(ErrorCode::NoSession, "log in first (Authorization: Bearer …)"), None));
    };
    let token_hash = digest(&SHA256, token.trim().as_bytes()).as_ref().to_vec();
    let now = s.clock.now();
    let query = SessionQuery {
        token_hash: token_hash.clone(),
        institution: conn.terminal.institution.clone(),
        name: conn.terminal.name.clone(),
        now,
    };
    let (session, person) = match s.reader.use_session(snapshot, query).await {
        Ok(SessionUse::Usable(session, person)) => (session, person),
        // Suspended since the snapshot the terminal layer checked.
        Ok(SessionUse::TerminalSuspended) => return Err((super::terminal::terminal_suspended(), None)),
        Ok(SessionUse::Unusable(end)) => {
            let (code, msg) = match end {
                SessionEnd::Unknown => (ErrorCode::SessionUnknown, "no such session; log in again"),
                SessionEnd::Ended => (ErrorCode::SessionEnded, "the session has ended; log in again"),
                SessionEnd::IdleTimeout => (ErrorCode::SessionIdleTimeout, "no activity for too long; log in again"),
                SessionEnd::Expired => {
                    (ErrorCode::SessionExpired, "the session reached its maximum length; log in again")
                }
            };
            return Err((ApiError::new(code, msg), None));
        }
        Err(e) => {
            tracing::error!(error = %e, "store error");
            return Err((store_unavailable(), None));
        }
    };
    let who = Some(session.person_id.clone());
    if session.terminal != conn.terminal.key() {
        return Err((ApiError::new(ErrorCode::SessionOtherTerminal, "this session belongs to another terminal"), who));
    }
    let Some(person) = person.filter(|p| p.active) else {
        let _ = s.store.end_session(&token_hash, now, "person_deactivated").await;
        return Err((ApiError::new(ErrorCode::PersonDeactivated, "this person is deactivated"), who));
    };
    let role = Role::from_name(&person.role)
        .ok_or_else(|| (ApiError::new(ErrorCode::UnknownRole, "unknown role"), who.clone()))?;
    Ok(Authenticated { token_hash, person, role, session })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::http::layers::testing::{refusal, request, store};
    use crate::metrics::BatchMetrics;
    use crate::store::snapshot::SnapshotReader;
    use crate::store::{NewPerson, NewSession};
    use axum::Router;
    use axum::routing::post;
    use tower::ServiceExt;

    const NOW: i64 = 1_800_000_000;

    struct Setup {
        app: Router,
        store: Store,
        _dir: tempfile::TempDir,
    }

    async fn setup() -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = store(&dir).await;
        s.add_institution("Clinic", None, NOW).await.expect("institution");
        s.add_person(
            &NewPerson {
                id: "D1".into(),
                role: "doctor".into(),
                name: "Dr".into(),
                name_kanji: None,
                institution: "Clinic".into(),
            },
            NOW,
        )
        .await
        .expect("person");
        let token_hash = digest(&SHA256, b"tok");
        let session = NewSession {
            token_hash: token_hash.as_ref(),
            person_id: "D1",
            terminal: "Clinic/t1",
            card_cert: &[0; 32],
            revocation: "[]",
        };
        s.create_session(&session, NOW, NOW + 3600).await.expect("session");
        let snapshots = SnapshotReader::start(s.clone(), BatchMetrics::new());
        let sessions = Sessions {
            reader: SessionReader::start(s.clone(), 300, BatchMetrics::new()),
            store: s.clone(),
            clock: Arc::new(ManualClock::new(NOW * 1000)),
            endpoint: Endpoint::WhoAmI,
        };
        // The terminal layer's part, the snapshot, read per request as it does.
        let with_snapshot = move |mut req: Request, next: Next| {
            let snapshots = snapshots.clone();
            async move {
                let snap = snapshots.snapshot().await.expect("snapshot");
                req.extensions_mut().insert(snap);
                next.run(req).await
            }
        };
        let app = Router::new()
            .route(
                "/x",
                post(|axum::Extension(a): axum::Extension<Arc<Authenticated>>| async move { a.person.id.clone() }),
            )
            .layer(axum::middleware::from_fn_with_state(Arc::new(sessions), layer))
            .layer(axum::middleware::from_fn(with_snapshot));
        Setup { app, store: s, _dir: dir }
    }

    fn bearer(token: &str) -> Request {
        let mut r = request("");
        r.headers_mut().insert("authorization", format!("Bearer {token}").parse().expect("header"));
        r
    }

    async fn ask(app: &Router, req: Request) -> (u16, Option<ErrorCode>, Option<String>) {
        let r = app.clone().oneshot(req).await.expect("answer");
        (r.status().as_u16(), refusal(&r), r.extensions().get::<Actor>().map(|a| a.0.clone()))
    }

    #[tokio::test]
    async fn a_session_is_admitted_until_it_ends_even_when_cached() {
        let s = setup().await;
        assert_eq!(ask(&s.app, bearer("tok")).await, (200, None, Some("D1".into())));
        // Twice: the second is answered from the cache.
        assert_eq!(ask(&s.app, bearer("tok")).await, (200, None, Some("D1".into())));
        // Logged out elsewhere (another gateway process, here the store):
        // the next request sees it although the session was cached.
        let token_hash = digest(&SHA256, b"tok");
        assert!(s.store.end_session(token_hash.as_ref(), NOW, "logout").await.expect("end"));
        assert_eq!(ask(&s.app, bearer("tok")).await, (401, Some(ErrorCode::SessionEnded), None));
    }

    #[tokio::test]
    async fn a_deactivated_person_is_refused_although_the_session_was_cached() {
        let s = setup().await;
        assert_eq!(ask(&s.app, bearer("tok")).await.0, 200);
        s.store.set_person_active("D1", false, NOW).await.expect("deactivate");
        assert_eq!(ask(&s.app, bearer("tok")).await, (403, Some(ErrorCode::PersonDeactivated), Some("D1".into())));
    }

    #[tokio::test]
    async fn no_token_an_unknown_token_and_another_terminal_are_refused() {
        let s = setup().await;
        assert_eq!(ask(&s.app, request("")).await, (401, Some(ErrorCode::NoSession), None));
        assert_eq!(ask(&s.app, bearer("nope")).await, (401, Some(ErrorCode::SessionUnknown), None));
        let mut other = bearer("tok");
        other.extensions_mut().insert(crate::http::layers::testing::conn("Clinic", "t2"));
        assert_eq!(ask(&s.app, other).await, (401, Some(ErrorCode::SessionOtherTerminal), Some("D1".into())));
    }
}
