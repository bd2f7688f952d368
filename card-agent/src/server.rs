//! The agent's loopback HTTP server: the local web UI (`/`, `/ui/…`) and the
//! local JSON API for the clinic's software (`/api/v1/…`).
//!
//! Both refuse requests whose Host is not this loopback address (a web page
//! elsewhere cannot reach the agent by DNS rebinding). The UI's state-changing
//! calls need the page's CSRF token in `X-CSRF-Token`, which only a page
//! served by the agent can read; the API needs the per-installation token.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use hpki_card::Pin;
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;
use tracing::Instrument;
use zeroize::Zeroizing;

use crate::agent::Agent;
use crate::error::AgentError;
use crate::i18n::Lang;
use crate::ui_page;

/// Largest body the agent accepts (and forwards to the gateway).
const MAX_BODY: usize = 1 << 20;

pub struct Server {
    pub agent: Arc<Agent>,
    /// In the page: proves a request comes from the agent's own page, not
    /// from another site. Any local process can read the page, so it
    /// proves nothing more.
    pub csrf: String,
    pub api_token: Zeroizing<String>,
    pub address: SocketAddr,
    /// The browser's proof of a PIN entry through the page: minted by a
    /// successful `/ui/login`, sent back only as an HttpOnly SameSite=Strict
    /// cookie (no script, no other site and no process that did not enter
    /// the PIN holds it); required where the page acts with a session.
    pub ui_proof: std::sync::Mutex<Option<Zeroizing<String>>>,
}

/// The cookie that carries `Server::ui_proof`.
const UI_PROOF_COOKIE: &str = "hpki_ui";

/// UI paths that act with a logged-in session (or keep it alive): they need
/// the proof cookie besides the CSRF token.
fn needs_ui_proof(path: &str) -> bool {
    path.starts_with("/ui/gateway/") || matches!(path, "/ui/activity" | "/ui/logout" | "/ui/confirm" | "/ui/select")
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find_map(|(k, v)| (k == name).then_some(v))
}

type Shared = Arc<Server>;

pub fn router(server: Shared) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/ui/state", get(ui_state))
        .route("/ui/login", post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/select", post(select))
        .route("/ui/activity", post(ui_activity))
        .route("/api/v1/status", get(api_status))
        .route("/api/v1/login", post(login))
        .route("/api/v1/logout", post(logout))
        .route("/api/v1/select", post(select))
        .route("/ui/confirm", post(confirm))
        .route("/api/v1/confirm", post(confirm))
        .route("/api/v1/gateway/{*path}", any(gateway))
        .route("/ui/gateway/{*path}", any(gateway))
        .layer(middleware::from_fn_with_state(server.clone(), guard))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(server)
}

/// Serves until the process ends.
pub async fn serve(server: Shared, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    axum::serve(listener, router(server)).await
}

fn error_response(e: &AgentError, lang: Lang) -> Response {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut body = json!({ "error": e.code(), "message": e.message(lang) });
    if let AgentError::WrongPin { tries_left } = e {
        body["tries_left"] = json!(tries_left);
    }
    if let AgentError::Gateway(gateway_client::GatewayError::Refused { code, message, .. }) = e {
        body["gateway_error"] = json!(code);
        body["gateway_message"] = json!(message);
    }
    (status, axum::Json(body)).into_response()
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    (status, axum::Json(json!({ "error": code, "message": message }))).into_response()
}

fn host_allowed(headers: &HeaderMap, address: SocketAddr) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let port = address.port();
    [format!("127.0.0.1:{port}"), format!("localhost:{port}"), format!("[::1]:{port}")]
        .iter()
        .any(|ok| host.eq_ignore_ascii_case(ok))
}

fn same_secret(given: Option<&str>, expected: &str) -> bool {
    given.is_some_and(|g| bool::from(g.as_bytes().ct_eq(expected.as_bytes())))
}

/// Host check for everything; CSRF token for `/ui/…`, and the page's proof
/// cookie where it acts with a session; API token for `/api/…`. Accepted
/// requests that change something or reach the gateway count as activity
/// for the idle lock.
async fn guard(State(s): State<Shared>, req: Request, next: Next) -> Response {
    if !host_allowed(req.headers(), s.address) {
        return refuse(
            StatusCode::MISDIRECTED_REQUEST,
            "host_not_allowed",
            "this agent answers to its loopback address only",
        );
    }
    let path = req.uri().path();
    if path.starts_with("/ui/") {
        if let Some(origin) = req.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
            let port = s.address.port();
            let ok = [
                format!("http://127.0.0.1:{port}"),
                format!("http://localhost:{port}"),
                format!("http://[::1]:{port}"),
            ];
            if !ok.iter().any(|o| o == origin) {
                return refuse(StatusCode::FORBIDDEN, "origin_not_allowed", "cross-site request refused");
            }
        }
        let token = req.headers().get("x-csrf-token").and_then(|v| v.to_str().ok());
        if !same_secret(token, &s.csrf) {
            return refuse(StatusCode::FORBIDDEN, "csrf", "missing or wrong CSRF token; reload the page");
        }
        if needs_ui_proof(path) {
            let proof = s.ui_proof.lock().ok().and_then(|p| p.clone());
            let given = cookie(req.headers(), UI_PROOF_COOKIE);
            if !proof.is_some_and(|p| same_secret(given, &p)) {
                return refuse(
                    StatusCode::FORBIDDEN,
                    "ui_proof",
                    "this page has not logged in with the card's PIN; log in on the page",
                );
            }
        }
        // Only what the proven page does counts as use: a process that can
        // read the page (and so the CSRF token) cannot hold the idle lock
        // off by posting to it.
        if req.method() == Method::POST && needs_ui_proof(path) {
            s.agent.touch();
        }
    } else if path.starts_with("/api/") {
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !same_secret(token, &s.api_token) {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "api_token",
                "missing or wrong API token (Authorization: Bearer …)",
            );
        }
        // Looking at the status is not use: a program polling it must not
        // keep an abandoned desk unlocked.
        if !(req.method() == Method::GET && path == "/api/v1/status") {
            s.agent.touch();
        }
    }
    let span = tracing::info_span!("local_request", method = %req.method(), path = %path);
    next.run(req).instrument(span).await
}

// ----- the UI ----------------------------------------------------------------------

#[derive(Deserialize)]
struct PageQuery {
    lang: Option<String>,
}

fn cookie_lang(headers: &HeaderMap) -> Option<Lang> {
    cookie(headers, "lang").and_then(Lang::from_tag)
}

/// The language of a UI call: the page says it in `X-Lang`.
fn ui_lang(s: &Server, headers: &HeaderMap) -> Lang {
    headers
        .get("x-lang")
        .and_then(|v| v.to_str().ok())
        .and_then(Lang::from_tag)
        .or_else(|| cookie_lang(headers))
        .unwrap_or(s.agent.config().ui.language)
}

async fn page(State(s): State<Shared>, Query(q): Query<PageQuery>, headers: HeaderMap) -> Response {
    let chosen = q.lang.as_deref().and_then(Lang::from_tag);
    let lang = chosen.or_else(|| cookie_lang(&headers)).unwrap_or(s.agent.config().ui.language);
    let html = ui_page::render(lang, &s.csrf);
    let mut resp = (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            // Self-contained: nothing loads from elsewhere, nothing frames it.
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'none'",
                ),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        ],
        html,
    )
        .into_response();
    if let Some(l) = chosen
        && let Ok(v) = HeaderValue::from_str(&format!("lang={}; Path=/; SameSite=Strict", l.tag()))
    {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

#[derive(Deserialize)]
struct StateQuery {
    since: Option<u64>,
}

/// The state, once it differs from `since` (long poll, at most 25 s).
async fn ui_state(State(s): State<Shared>, Query(q): Query<StateQuery>) -> Response {
    if let Some(since) = q.since {
        s.agent.wait_change(since, Duration::from_secs(25)).await;
    }
    axum::Json(s.agent.status()).into_response()
}

#[derive(Deserialize)]
struct LoginBody {
    reader: Option<String>,
    pin: Zeroizing<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfirmBody {
    items: Vec<crate::agent::Reviewed>,
    pin: Zeroizing<String>,
}

#[derive(Deserialize)]
struct ReaderBody {
    reader: Option<String>,
}

/// The reader a call means: the one named, else the acting one, else the only
/// reader holding a card.
fn pick_reader(agent: &Agent, named: Option<String>) -> Result<String, AgentError> {
    if let Some(r) = named {
        return Ok(r);
    }
    let status = agent.status();
    if let Some(r) = status.active_reader {
        return Ok(r);
    }
    let with_card: Vec<_> = status.readers.into_iter().filter(|r| r.card.is_some()).collect();
    match with_card.as_slice() {
        [one] => Ok(one.reader.clone()),
        [] => Err(AgentError::NoCard("-".into())),
        _ => Err(AgentError::BadRequest("several cards are inserted: name the reader".into())),
    }
}

async fn do_login(agent: &Agent, body: LoginBody) -> Result<serde_json::Value, AgentError> {
    let reader = pick_reader(agent, body.reader)?;
    let pin = Pin::from_zeroizing(body.pin)?;
    let person = agent.login(&reader, pin).await?;
    Ok(json!({ "reader": reader, "person": person }))
}

fn parse<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> Result<T, AgentError> {
    serde_json::from_slice(bytes).map_err(|e| AgentError::BadRequest(format!("malformed JSON: {e}")))
}

fn ok_or_error(result: Result<serde_json::Value, AgentError>, lang: Lang) -> Response {
    match result {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => error_response(&e, lang),
    }
}

async fn ui_activity() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

// ----- the local API ----------------------------------------------------------------

fn api_lang(headers: &HeaderMap) -> Lang {
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split([',', ';']).next())
        .and_then(Lang::from_tag)
        .unwrap_or(Lang::En)
}

async fn api_status(State(s): State<Shared>) -> Response {
    axum::Json(s.agent.status()).into_response()
}

/// The language of a call's messages: UI calls say it in `X-Lang` (else the
/// cookie, else the configured one); API calls in `Accept-Language` (else
/// English).
fn lang_of(s: &Server, uri: &Uri, headers: &HeaderMap) -> Lang {
    if uri.path().starts_with("/ui/") { ui_lang(s, headers) } else { api_lang(headers) }
}

/// `POST /ui/login`, `POST /api/v1/login`. A login through the page — the
/// PIN typed there — gives the page its proof cookie.
async fn login(State(s): State<Shared>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let result = match parse::<LoginBody>(&body) {
        Ok(b) => do_login(&s.agent, b).await,
        Err(e) => Err(e),
    };
    let from_page = uri.path().starts_with("/ui/") && result.is_ok();
    let mut resp = ok_or_error(result, lang_of(&s, &uri, &headers));
    if from_page {
        match crate::token::random_token() {
            Ok(proof) => {
                let cookie = format!("{UI_PROOF_COOKIE}={proof}; Path=/ui; HttpOnly; SameSite=Strict");
                if let (Ok(v), Ok(mut slot)) = (HeaderValue::from_str(&cookie), s.ui_proof.lock()) {
                    *slot = Some(Zeroizing::new(proof));
                    resp.headers_mut().insert(header::SET_COOKIE, v);
                }
            }
            Err(e) => tracing::error!(error = %e, "no proof for the page: the system random generator failed"),
        }
    }
    resp
}

/// `POST /ui/logout`, `POST /api/v1/logout`; an empty body means the acting
/// card.
async fn logout(State(s): State<Shared>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let body = if body.is_empty() { Ok(ReaderBody { reader: None }) } else { parse::<ReaderBody>(&body) };
    let result = match body {
        Ok(b) => s.agent.logout(b.reader.as_deref()).await.map(|()| json!({})),
        Err(e) => Err(e),
    };
    ok_or_error(result, lang_of(&s, &uri, &headers))
}

/// `POST /ui/confirm`, `POST /api/v1/confirm`: reviewed drafts, the
/// signature PIN; answers the gateway's record (or batch results).
async fn confirm(State(s): State<Shared>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let lang = lang_of(&s, &uri, &headers);
    let result = match parse::<ConfirmBody>(&body) {
        Ok(b) => match Pin::from_zeroizing(b.pin) {
            Ok(pin) => s.agent.confirm(&b.items, pin).await,
            Err(e) => Err(e.into()),
        },
        Err(e) => Err(e),
    };
    match result {
        Ok(answer) => {
            let mut resp = Response::new(Body::from(answer.body));
            *resp.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
            resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            resp
        }
        Err(e) => error_response(&e, lang),
    }
}

/// `POST /ui/select`, `POST /api/v1/select`.
async fn select(State(s): State<Shared>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let result = parse::<ReaderBody>(&body).and_then(|b| {
        let r = b.reader.ok_or_else(|| AgentError::BadRequest("name the reader".into()))?;
        s.agent.select(&r).map(|()| json!({}))
    });
    ok_or_error(result, lang_of(&s, &uri, &headers))
}

/// `/api/v1/gateway/v1/…` (the clinic's software) and `/ui/gateway/v1/…`
/// (the agent's own page) → the gateway's `/v1/…` with the acting card's
/// session.
async fn gateway(
    State(s): State<Shared>,
    method: Method,
    Path(path): Path<String>,
    headers: HeaderMap,
    req: Request,
) -> Response {
    let lang = lang_of(&s, req.uri(), &headers);
    if !path.starts_with("v1/") || path.contains("..") {
        return error_response(&AgentError::BadRequest(format!("not a gateway API path: /{path}")), lang);
    }
    let target = match req.uri().query() {
        Some(q) => format!("/{path}?{q}"),
        None => format!("/{path}"),
    };
    let body = match axum::body::to_bytes(req.into_body(), MAX_BODY).await {
        Ok(b) => b.to_vec(),
        Err(_) => return error_response(&AgentError::BadRequest("body too large".into()), lang),
    };
    match s.agent.proxy(method.as_str(), &target, body).await {
        Ok(answer) => {
            let mut resp = Response::new(Body::from(answer.body));
            *resp.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
            if let Some(ct) = answer.content_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
                resp.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            resp
        }
        Err(e) => error_response(&e, lang),
    }
}
