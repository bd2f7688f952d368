//! Layer 1: a request id, fresh for every request, in the request's span,
//! its extensions (for the audit entry) and the `x-request-id` header of
//! its answer.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use ring::rand::{SecureRandom, SystemRandom};
use tracing::Instrument;

use crate::gateway::ConnInfo;

/// The id of one request: 16 hex digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

impl RequestId {
    fn fresh() -> RequestId {
        let mut b = [0u8; 8];
        // Ids are for correlation, not secrets: a failed generator leaves
        // zeros rather than refusing the request.
        let _ = SystemRandom::new().fill(&mut b);
        RequestId(hex::encode(b))
    }
}

pub async fn layer(mut req: Request, next: Next) -> Response {
    let id = RequestId::fresh();
    let conn = req.extensions().get::<std::sync::Arc<ConnInfo>>().cloned();
    let terminal = conn.as_ref().map_or("-", |c| c.terminal.key());
    let span = tracing::info_span!("request", request_id = %id.0, %terminal, path = %req.uri().path(), person = tracing::field::Empty);
    let header = HeaderValue::from_str(&id.0).ok();
    req.extensions_mut().insert(id);
    let mut resp = next.run(req).instrument(span).await;
    if let Some(v) = header {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::layers::testing::request;
    use axum::Router;
    use axum::routing::post;
    use tower::ServiceExt;

    #[tokio::test]
    async fn each_request_gets_its_own_id_in_the_header_and_for_the_layers_below() {
        let app = Router::new()
            .route("/x", post(|axum::Extension(id): axum::Extension<RequestId>| async move { id.0 }))
            .layer(axum::middleware::from_fn(layer));
        let mut seen = Vec::new();
        for _ in 0..2 {
            let resp = app.clone().oneshot(request("")).await.expect("answer");
            let header = resp.headers()["x-request-id"].to_str().expect("ascii").to_owned();
            let body = axum::body::to_bytes(resp.into_body(), 64).await.expect("body");
            assert_eq!(header.as_bytes(), &body[..], "the handler saw another id than the header");
            assert_eq!(header.len(), 16);
            seen.push(header);
        }
        assert_ne!(seen[0], seen[1]);
    }
}
