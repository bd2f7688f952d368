//! Layer 8: the role × action table (`domain::roles`, FLOW-5, AUTH-2) for
//! the endpoint's role actions, against the role of the session the session
//! layer admitted. Endpoints that decide from what they find (a draft's
//! author or signer) pass.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hpki_protocol::ErrorCode;

use crate::domain::roles::allowed;
use crate::http::endpoints::{Access, Endpoint};
use crate::routes::{ApiError, Authenticated};

pub async fn layer(State(endpoint): State<Endpoint>, req: Request, next: Next) -> Response {
    let Access::Role(actions) = endpoint.access() else {
        return next.run(req).await;
    };
    let Some(a) = req.extensions().get::<Arc<Authenticated>>() else {
        tracing::error!(?endpoint, "a role check without a session");
        return ApiError::new(ErrorCode::Internal, "the gateway is misconfigured").into_response();
    };
    if !actions.iter().any(|action| allowed(a.role, *action)) {
        let msg = format!("a {} may not do this ({:?})", a.role, actions[0]);
        return ApiError::new(ErrorCode::NotPermitted, msg).into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::roles::Role;
    use crate::http::layers::testing::{refusal, request};
    use crate::store::{PersonRow, SessionRow};
    use axum::Router;
    use axum::routing::post;
    use tower::ServiceExt;

    fn session(role: Role) -> Arc<Authenticated> {
        Arc::new(Authenticated {
            token_hash: vec![0; 32],
            person: PersonRow {
                id: "p1".into(),
                role: role.name().into(),
                name: "A".into(),
                name_kanji: None,
                institution: "Clinic".into(),
                active: true,
            },
            role,
            session: SessionRow {
                person_id: "p1".into(),
                terminal: "Clinic/t1".into(),
                created_at: 0,
                last_seen: 0,
                expires_at: 1,
            },
        })
    }

    async fn status(endpoint: Endpoint, role: Role) -> (u16, Option<ErrorCode>) {
        let app = Router::new()
            .route("/x", post(|| async { "ok" }))
            .layer(axum::middleware::from_fn_with_state(endpoint, layer));
        let mut req = request("");
        req.extensions_mut().insert(session(role));
        let r = app.oneshot(req).await.expect("answer");
        (r.status().as_u16(), refusal(&r))
    }

    #[tokio::test]
    async fn the_table_decides_per_endpoint() {
        let refused = (403, Some(ErrorCode::NotPermitted));
        assert_eq!(status(Endpoint::CreateDraft, Role::Assistant).await, (200, None));
        assert_eq!(status(Endpoint::CreateDraft, Role::Doctor).await, refused);
        assert_eq!(status(Endpoint::Queue, Role::Assistant).await, refused);
        assert_eq!(status(Endpoint::Queue, Role::Doctor).await, (200, None));
        // Either of the confirm actions lets a request through to the
        // handler, which checks the one of the draft's kind.
        assert_eq!(status(Endpoint::Confirm, Role::Pharmacist).await, (200, None));
        assert_eq!(status(Endpoint::Confirm, Role::Doctor).await, (200, None));
        assert_eq!(status(Endpoint::Confirm, Role::Assistant).await, refused);
        // The handler decides who reads a draft.
        assert_eq!(status(Endpoint::ReadDraft, Role::Nurse).await, (200, None));
    }
}
