//! Layer 3: the audit entry of every request (LOG-1, LOG-2) — terminal,
//! person, action, object, outcome, refusal code, request id — written and
//! durable before the answer leaves, whichever layer or handler gave it.
//! When it cannot be written the answer is withheld and replaced by
//! `audit_unavailable` (fail closed). Refusals (`rate_limited`, but also
//! `body_too_large`, `bad_request`, … which a terminal with a valid
//! certificate can send as fast as requests) go through the listener's
//! refusal budget (`audit::budget`): written one by one, durable before the
//! answer, up to the budget, and counted past it. Also the request metrics and the
//! request's log line. For the endpoints that change state, the request is
//! given the [`Staging`] its handler stages the entry with, inside the
//! change's transaction (`audit::outbox`): this layer's entry clears the
//! staged row once it is committed.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hpki_protocol::ErrorCode;

use crate::audit::outbox::Staging;
use crate::audit::writer::AuditWriter;
use crate::audit::{AuditEvent, Outcome};
use crate::clock::Clock;
use crate::gateway::{ConnInfo, Gateway, Metrics};
use crate::http::endpoints::Endpoint;
use crate::http::layers::request_id::RequestId;
use crate::routes::{Actor, Object, Refusal, record, record_refusal};

#[derive(Clone)]
pub struct Auditing {
    pub writer: AuditWriter,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    pub endpoint: Endpoint,
    pub refusals: Arc<crate::audit::budget::RefusalBudget>,
}

impl Auditing {
    pub fn of(gw: &Gateway, endpoint: Endpoint) -> Auditing {
        Auditing {
            writer: gw.audit.clone(),
            clock: gw.clock.clone(),
            metrics: gw.metrics.clone(),
            endpoint,
            refusals: gw.institution_refusals.clone(),
        }
    }
}

pub async fn layer(State(a): State<Arc<Auditing>>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let action = a.endpoint.audit();
    Metrics::inc(&a.metrics.requests);
    let conn = req.extensions().get::<Arc<ConnInfo>>().cloned();
    let request_id = req.extensions().get::<RequestId>().map_or_else(|| "-".to_owned(), |r| r.0.clone());
    if crate::audit::outbox::STAGING.contains(&action) {
        // What a handler that changes state stages with its change.
        req.extensions_mut().insert(Staging {
            request_id: request_id.clone(),
            terminal: conn.as_ref().map_or("-", |c| c.terminal.key()).to_owned(),
            institution: conn.as_ref().map_or_else(|| "-".to_owned(), |c| c.terminal.institution.clone()),
            action,
        });
    }
    let resp = next.run(req).await;

    let refusal = resp.extensions().get::<Refusal>().map(|r| r.0);
    let actor = resp.extensions().get::<Actor>().map_or("-", |a| a.0.as_str()).to_owned();
    let object = resp.extensions().get::<Object>().map_or(a.endpoint.default_object(), |o| o.0.as_str()).to_owned();
    if let Some(code) = refusal {
        a.metrics.refused(code.as_str());
    }
    if a.endpoint == Endpoint::Login {
        Metrics::inc(if refusal.is_some() { &a.metrics.logins_refused } else { &a.metrics.logins_ok });
    }
    tracing::info!(status = resp.status().as_u16(), refusal = refusal.map_or("-", ErrorCode::as_str), "{action}");
    let event = AuditEvent {
        actor: actor.clone(),
        terminal: conn.as_ref().map_or("-", |c| c.terminal.key()).to_owned(),
        institution: conn.as_ref().map_or_else(|| "-".to_owned(), |c| c.terminal.institution.clone()),
        object,
        reason: refusal.map_or("-", ErrorCode::as_str).into(),
        request_id,
        ..AuditEvent::new(action, if refusal.is_some() { Outcome::Refused } else { Outcome::Ok })
    };
    // Every refusal is within the listener's budget, not only the rate
    // limiter's: a terminal with a valid certificate can flood oversized or
    // malformed bodies as fast as it can flood requests (audit::budget).
    let audited = if refusal.is_some() {
        record_refusal(&a.writer, &a.metrics, &a.refusals, event, a.clock.now_ms()).await
    } else {
        record(&a.writer, &a.metrics, event, a.clock.now_ms()).await
    };
    a.metrics.answered(action.as_str(), started.elapsed());
    match audited {
        Ok(()) => resp,
        Err(withheld) => {
            let mut r = withheld.into_response();
            // The alert rules still learn who it was and how it went.
            r.extensions_mut().insert(Actor(actor));
            r.extensions_mut().insert(Answered { refused: refusal.is_some() });
            r
        }
    }
}

/// How the request went before its answer was withheld for want of an
/// audit entry (for the alert rules).
#[derive(Debug, Clone, Copy)]
pub struct Answered {
    pub refused: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::http::layers::testing::{refusal, request, store};
    use crate::metrics::BatchMetrics;
    use crate::routes::ApiError;
    use axum::Router;
    use axum::routing::post;
    use tower::ServiceExt;

    async fn app(s: &crate::store::Store, endpoint: Endpoint) -> (Router, Auditing) {
        let a = Auditing {
            writer: AuditWriter::start(s.clone(), BatchMetrics::new()),
            clock: Arc::new(ManualClock::new(1_000)),
            metrics: Arc::new(Metrics::new()),
            endpoint,
            refusals: Arc::new(crate::audit::budget::RefusalBudget::new(
                crate::audit::budget::INSTITUTION_LISTENER,
                100,
            )),
        };
        let app = Router::new()
            .route(
                "/x",
                post(|body: axum::body::Bytes| async move {
                    let mut r = if body.is_empty() {
                        "ok".into_response()
                    } else {
                        ApiError::new(ErrorCode::UnknownDraft, "no such draft").into_response()
                    };
                    r.extensions_mut().insert(Actor("D1".into()));
                    r.extensions_mut().insert(Object("draft:d1".into()));
                    r
                }),
            )
            .layer(axum::middleware::from_fn_with_state(Arc::new(a.clone()), layer));
        (app, a)
    }

    #[tokio::test]
    async fn answers_and_refusals_are_recorded_with_what_the_handler_said() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = store(&dir).await;
        let (app, a) = app(&s, Endpoint::ReadDraft).await;
        assert_eq!(app.clone().oneshot(request("")).await.expect("answer").status(), 200);
        assert_eq!(app.clone().oneshot(request("x")).await.expect("answer").status(), 404);
        let log = s.audit_page(0, 10).await.expect("entries");
        let seen: Vec<_> = log
            .iter()
            .map(|r| {
                let e = &r.event;
                (
                    e.actor.as_str(),
                    e.terminal.as_str(),
                    e.action.as_str(),
                    e.object.as_str(),
                    e.outcome.as_str(),
                    e.reason.as_str(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("D1", "Clinic/t1", "draft.read", "draft:d1", "ok", "-"),
                ("D1", "Clinic/t1", "draft.read", "draft:d1", "refused", "unknown_draft"),
            ]
        );
        assert_eq!(a.metrics.requests.get(), 2);
    }

    #[tokio::test]
    async fn without_an_audit_entry_the_answer_is_withheld() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = store(&dir).await;
        let (app, a) = app(&s, Endpoint::ReadDraft).await;
        // The store goes away: no entry can be written.
        s.close().await;
        let r = app.oneshot(request("")).await.expect("answer");
        assert_eq!((r.status().as_u16(), refusal(&r)), (503, Some(ErrorCode::AuditUnavailable)));
        assert_eq!(a.metrics.audit_failures.get(), 1);
    }
}
