//! The layers every request of the institution listener passes, in this
//! order (the security contract; `docs/gateway.md` says why each sits where
//! it does):
//!
//! 1. [`request_id`] — a fresh id: the span, the audit entry and
//!    `x-request-id` carry it.
//! 2. [`alerts`] — on the way out, after the audit entry is durable, the
//!    abnormal-access rules look at the answered login (LOG-4).
//! 3. [`audit`] — on the way out, whatever answered (a layer below or the
//!    handler) is recorded before the answer leaves; no entry, no answer
//!    (LOG-1). Wrapping everything below is what makes every refusal an
//!    audited one.
//! 4. [`terminal`] — the terminal is the one of the TLS client certificate
//!    (the listener put it there) and it is not suspended (as of a store
//!    read after the request arrived).
//! 5. [`mode`] — the operating mode of the same snapshot (FLOW-7):
//!    read-only refuses writes, blocked all but signing in and out and
//!    break-glass.
//! 6. [`rate_limit`] — per terminal, in memory: a flood costs no store query.
//! 7. [`body_limit`] — the body read, up to the configured size.
//! 8. [`session`] — the bearer token's session, bound to this terminal, its
//!    person active (endpoints other than challenge and login).
//! 9. [`role`] — the role × action table for the endpoint's role actions.
//! 10. the handler (`routes::…`, named by `http::endpoints`).

pub mod alerts;
pub mod audit;
pub mod body_limit;
pub mod mode;
pub mod rate_limit;
pub mod request_id;
pub mod role;
pub mod session;
pub mod terminal;

/// The layers of `endpoint`, in the order above (`ServiceBuilder` puts the
/// first outermost).
macro_rules! stack {
    ($gw:expr, $endpoint:expr) => {{
        use axum::middleware::{from_fn, from_fn_with_state};
        use $crate::http::layers::{alerts, audit, body_limit, mode, rate_limit, request_id, role, session, terminal};
        let gw: &std::sync::Arc<$crate::gateway::Gateway> = $gw;
        let endpoint: $crate::http::endpoints::Endpoint = $endpoint;
        tower::ServiceBuilder::new()
            .layer(from_fn(request_id::layer))
            .layer(from_fn_with_state(std::sync::Arc::new(alerts::Alerts::of(gw, endpoint)), alerts::layer))
            .layer(from_fn_with_state(std::sync::Arc::new(audit::Auditing::of(gw, endpoint)), audit::layer))
            .layer(from_fn_with_state(std::sync::Arc::new(terminal::Terminals::of(gw)), terminal::layer))
            .layer(from_fn_with_state(endpoint.kind(), mode::layer))
            .layer(from_fn_with_state(gw.rate_limiter.clone(), rate_limit::layer))
            .layer(from_fn_with_state(std::sync::Arc::new(body_limit::BodyLimit::of(gw)), body_limit::layer))
            .layer(from_fn_with_state(std::sync::Arc::new(session::Sessions::of(gw, endpoint)), session::layer))
            .layer(from_fn_with_state(endpoint, role::layer))
    }};
}
pub(crate) use stack;

/// For the layers' tests: a connection, a request on it, a store.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::Request;

    use crate::gateway::{ConnInfo, Terminal};
    use crate::store::{Store, StoreConfig};

    pub fn conn(institution: &str, name: &str) -> Arc<ConnInfo> {
        Arc::new(ConnInfo {
            peer: "127.0.0.1:40000".parse().expect("address"),
            terminal: Terminal::new(institution.into(), name.into()),
            channel_binding: [0; hpki_protocol::CHANNEL_BINDING_LEN],
        })
    }

    /// A request from the terminal Clinic/t1.
    pub fn request(body: impl Into<Body>) -> Request<Body> {
        let mut r = Request::post("/x").body(body.into()).expect("request");
        r.extensions_mut().insert(conn("Clinic", "t1"));
        r
    }

    pub async fn store(dir: &tempfile::TempDir) -> Store {
        Store::open(&StoreConfig::Sqlite { dir: dir.path().into() }).await.expect("store")
    }

    /// The refusal code a response carries, if any.
    pub fn refusal(r: &axum::response::Response) -> Option<hpki_protocol::ErrorCode> {
        r.extensions().get::<crate::routes::Refusal>().map(|r| r.0)
    }
}
