//! Layer 6: the body, read whole up to the configured size; a longer one is
//! refused (`body_too_large`) without being read further. Handlers get the
//! bytes.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hpki_protocol::ErrorCode;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use prometheus_client::metrics::counter::Counter;

use crate::gateway::Gateway;
use crate::routes::ApiError;

#[derive(Clone)]
pub struct BodyLimit {
    pub max: usize,
    /// `hpki_bodies_too_large`.
    pub too_large: Counter,
}

impl BodyLimit {
    pub fn of(gw: &Gateway) -> BodyLimit {
        BodyLimit { max: gw.config.listener.max_body_bytes, too_large: gw.metrics.bodies_too_large.clone() }
    }
}

pub async fn layer(State(limit): State<std::sync::Arc<BodyLimit>>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match Limited::new(body, limit.max).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            limit.too_large.inc();
            let msg = format!("the request body exceeds {} bytes", limit.max);
            return ApiError::new(ErrorCode::BodyTooLarge, msg).into_response();
        }
        Err(_) => return ApiError::new(ErrorCode::BadRequest, "the request body could not be read").into_response(),
    };
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::layers::testing::{refusal, request};
    use axum::Router;
    use axum::routing::post;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_body_up_to_the_limit_reaches_the_handler_and_a_longer_one_is_refused() {
        let limit = BodyLimit { max: 8, too_large: Counter::default() };
        let app = Router::new()
            .route("/x", post(|body: axum::body::Bytes| async move { body.len().to_string() }))
            .layer(axum::middleware::from_fn_with_state(std::sync::Arc::new(limit.clone()), layer));
        let r = app.clone().oneshot(request("12345678")).await.expect("answer");
        assert_eq!(r.status(), 200);
        assert_eq!(&axum::body::to_bytes(r.into_body(), 64).await.expect("body")[..], b"8");
        let r = app.clone().oneshot(request("123456789")).await.expect("answer");
        assert_eq!((r.status().as_u16(), refusal(&r)), (413, Some(ErrorCode::BodyTooLarge)));
        assert_eq!(limit.too_large.get(), 1);
    }
}
