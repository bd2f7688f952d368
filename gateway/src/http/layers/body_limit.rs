//! Layer 6: the body, read whole up to the configured size and within the
//! configured time; a longer one is refused (`body_too_large`) without being
//! read further, a slower one (`body_timeout`: a trickled body holds a
//! connection slot) too. Handlers get the bytes.

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
    pub timeout: std::time::Duration,
    /// `hpki_bodies_too_large`.
    pub too_large: Counter,
    /// `hpki_bodies_timed_out`.
    pub timed_out: Counter,
}

impl BodyLimit {
    pub fn of(gw: &Gateway) -> BodyLimit {
        BodyLimit {
            max: gw.config.listener.max_body_bytes,
            timeout: std::time::Duration::from_secs(gw.config.listener.body_timeout_seconds),
            too_large: gw.metrics.bodies_too_large.clone(),
            timed_out: gw.metrics.bodies_timed_out.clone(),
        }
    }
}

pub async fn layer(State(limit): State<std::sync::Arc<BodyLimit>>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(read) = tokio::time::timeout(limit.timeout, Limited::new(body, limit.max).collect()).await else {
        limit.timed_out.inc();
        let msg = format!("the request body did not arrive within {} s", limit.timeout.as_secs());
        return ApiError::new(ErrorCode::BodyTimeout, msg).into_response();
    };
    let bytes = match read {
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
        let limit = BodyLimit {
            max: 8,
            timeout: std::time::Duration::from_secs(5),
            too_large: Counter::default(),
            timed_out: Counter::default(),
        };
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

    #[tokio::test]
    async fn a_body_trickled_past_the_deadline_is_refused_body_timeout() {
        let limit = BodyLimit {
            max: 1024,
            timeout: std::time::Duration::from_millis(200),
            too_large: Counter::default(),
            timed_out: Counter::default(),
        };
        let app = Router::new()
            .route("/x", post(|body: axum::body::Bytes| async move { body.len().to_string() }))
            .layer(axum::middleware::from_fn_with_state(std::sync::Arc::new(limit.clone()), layer));
        // One byte, then nothing: the client never finishes its body.
        let body = Body::new(Trickle(false));
        let started = std::time::Instant::now();
        let r = app.oneshot(request(body)).await.expect("answer");
        assert_eq!((r.status().as_u16(), refusal(&r)), (408, Some(ErrorCode::BodyTimeout)));
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        assert_eq!(limit.timed_out.get(), 1);
    }

    /// A body that sends one byte and then never another.
    struct Trickle(bool);

    impl hyper::body::Body for Trickle {
        type Data = axum::body::Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
            if self.0 {
                return std::task::Poll::Pending;
            }
            self.0 = true;
            std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(axum::body::Bytes::from_static(b"{")))))
        }
    }
}
