//! What goes on the wire for a refusal and for a handler's answer: JSON with
//! the code's status (`{"error": code, "message": …}` for a refusal), and
//! the facts the audit layer records (refusal code, object, person) in the
//! response's extensions, where no client sees them.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::routes::{Actor, ApiError, Handled, Object, Refusal};

fn json(status: u16, body: Vec<u8>) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status != 204 {
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    r
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = json(self.status(), serde_json::to_vec(&self.body()).unwrap_or_default());
        r.extensions_mut().insert(Refusal(self.code));
        r
    }
}

impl IntoResponse for Handled {
    fn into_response(self) -> Response {
        let mut r = match self.answer {
            Ok((status, body)) => json(status, body),
            Err(e) => e.into_response(),
        };
        r.extensions_mut().insert(Object(self.object));
        if let Some(actor) = self.actor {
            r.extensions_mut().insert(Actor(actor));
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hpki_protocol::ErrorCode;

    #[tokio::test]
    async fn a_refusal_is_its_code_status_and_body() {
        let r = ApiError::new(ErrorCode::UnknownDraft, "no draft \"d\"").into_response();
        assert_eq!(r.status(), 404);
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(r.extensions().get::<Refusal>(), Some(&Refusal(ErrorCode::UnknownDraft)));
        let body = axum::body::to_bytes(r.into_body(), 1024).await.expect("body");
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(v, serde_json::json!({"error": "unknown_draft", "message": "no draft \"d\""}));
    }

    #[test]
    fn a_no_content_answer_has_no_content_type() {
        let r = Handled::about("session", Ok((204, Vec::new()))).into_response();
        assert_eq!(r.status(), 204);
        assert!(r.headers().get(header::CONTENT_TYPE).is_none());
        assert_eq!(r.extensions().get::<Object>(), Some(&Object("session".into())));
    }
}
