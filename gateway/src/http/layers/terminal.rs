//! Layer 4: the terminal. Who it is comes from its TLS client certificate
//! (the listener put the connection's facts in the request); whether it is
//! suspended comes from a store snapshot read after the request arrived
//! (`store::snapshot`: one small read per batch of requests), so a
//! suspension committed before the request — by any gateway process or the
//! admin CLI — refuses it. The snapshot goes on to the session layer.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hpki_protocol::ErrorCode;

use crate::gateway::{ConnInfo, Gateway};
use crate::routes::{ApiError, store_unavailable};
use crate::store::snapshot::SnapshotReader;

#[derive(Clone)]
pub struct Terminals {
    pub snapshots: SnapshotReader,
}

impl Terminals {
    pub fn of(gw: &Gateway) -> Terminals {
        Terminals { snapshots: gw.snapshots.clone() }
    }
}

pub fn terminal_suspended() -> ApiError {
    ApiError::new(ErrorCode::TerminalSuspended, "this terminal is suspended; contact IT")
}

pub async fn layer(State(t): State<Arc<Terminals>>, mut req: Request, next: Next) -> Response {
    let Some(conn) = req.extensions().get::<Arc<ConnInfo>>().cloned() else {
        // Every connection of the listener carries its terminal: a request
        // without one did not come through it.
        tracing::error!("a request without its connection's terminal");
        return ApiError::new(ErrorCode::Internal, "the gateway is misconfigured").into_response();
    };
    let snapshot = match t.snapshots.snapshot().await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "store error");
            return store_unavailable().into_response();
        }
    };
    if snapshot.terminal_suspended(&conn.terminal.institution, &conn.terminal.name) {
        return terminal_suspended().into_response();
    }
    req.extensions_mut().insert(snapshot);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::layers::testing::{refusal, request, store};
    use crate::metrics::BatchMetrics;
    use axum::Router;
    use axum::routing::post;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_terminal_suspended_in_the_store_is_refused_from_its_next_request_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = store(&dir).await;
        let t = Terminals { snapshots: SnapshotReader::start(s.clone(), BatchMetrics::new()) };
        let app = Router::new()
            .route("/x", post(|| async { "ok" }))
            .layer(axum::middleware::from_fn_with_state(Arc::new(t), layer));
        assert_eq!(app.clone().oneshot(request("")).await.expect("answer").status(), 200);
        s.set_terminal_suspended("Clinic", "t1", true, "test", 1).await.expect("suspend");
        let r = app.clone().oneshot(request("")).await.expect("answer");
        assert_eq!((r.status().as_u16(), refusal(&r)), (403, Some(ErrorCode::TerminalSuspended)));
        s.set_terminal_suspended("Clinic", "t1", false, "test", 2).await.expect("lift");
        assert_eq!(app.clone().oneshot(request("")).await.expect("answer").status(), 200);
    }

    #[tokio::test]
    async fn a_request_without_a_terminal_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = Terminals { snapshots: SnapshotReader::start(store(&dir).await, BatchMetrics::new()) };
        let app = Router::new()
            .route("/x", post(|| async { "ok" }))
            .layer(axum::middleware::from_fn_with_state(Arc::new(t), layer));
        let bare = axum::http::Request::post("/x").body(axum::body::Body::empty()).expect("request");
        let r = app.oneshot(bare).await.expect("answer");
        assert_eq!(refusal(&r), Some(ErrorCode::Internal));
    }
}
