//! Layer 5: requests per second per terminal, a token bucket in memory. It
//! sits before the body is read and the session looked up, so a terminal
//! over its rate costs neither.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hpki_protocol::ErrorCode;

pub use crate::domain::rate_limit::RateLimiter;
use crate::gateway::ConnInfo;
use crate::routes::ApiError;

pub async fn layer(State(limiter): State<Arc<RateLimiter>>, req: Request, next: Next) -> Response {
    let terminal = req.extensions().get::<Arc<ConnInfo>>().map_or("", |c| c.terminal.key());
    if !limiter.take(terminal) {
        return ApiError::new(ErrorCode::RateLimited, "too many requests from this terminal; slow down")
            .into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::http::layers::testing::{conn, refusal, request};
    use axum::Router;
    use axum::routing::post;
    use prometheus_client::metrics::counter::Counter;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_terminal_over_its_rate_is_refused_until_its_bucket_refills_and_others_are_not() {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let limiter = Arc::new(RateLimiter::new(3, clock.clone(), Counter::default()));
        let app = Router::new()
            .route("/x", post(|| async { "ok" }))
            .layer(axum::middleware::from_fn_with_state(limiter.clone(), layer));
        for _ in 0..3 {
            let r = app.clone().oneshot(request("")).await.expect("answer");
            assert_eq!(r.status(), 200);
        }
        let r = app.clone().oneshot(request("")).await.expect("answer");
        assert_eq!((r.status().as_u16(), refusal(&r)), (429, Some(ErrorCode::RateLimited)));
        assert_eq!(limiter.limited().get(), 1);
        // Another terminal has its own bucket.
        let mut other = request("");
        other.extensions_mut().insert(conn("Clinic", "t2"));
        assert_eq!(app.clone().oneshot(other).await.expect("answer").status(), 200);
        // A third of a second later t1 has one token again.
        clock.advance_ms(334);
        assert_eq!(app.clone().oneshot(request("")).await.expect("answer").status(), 200);
        assert_eq!(app.clone().oneshot(request("")).await.expect("answer").status(), 429);
    }
}
