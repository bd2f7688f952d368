//! The patient listener (NET-2, AUTH-4, AUTH-5, FLOW-4): plain server TLS,
//! sign-in with ID and password, the initial password replaced before
//! anything else, lockout with backoff, and a patient's own consented
//! records — as JSON and as one small self-contained page.

use hpki_protocol::ErrorCode;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use hpki_protocol::workflow::{PasswordChange, PatientLogin, PatientSession};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use ring::digest::{SHA256, digest};
use ring::rand::SecureRandom;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tracing::Instrument;

use crate::audit::{Action, AuditEvent, Outcome as AuditOutcome};
use crate::config::PatientSection;
use crate::domain::passwords;
use crate::gateway::Gateway;
use crate::routes::{Answered, ApiError, refused};
use crate::shutdown::{Stop, next_connection, until_stopped};
use crate::store::{AccountRow, Guess};

type Body = Full<Bytes>;

/// Serves the patient listener until `stop` is raised, then drains like
/// the institution listener.
pub async fn serve_patients(gw: Arc<Gateway>, listener: TcpListener, tls: Arc<ServerConfig>, mut stop: Stop) {
    let acceptor = TlsAcceptor::from(tls);
    let mut connections = tokio::task::JoinSet::new();
    while let Some((tcp, peer)) = next_connection(&listener, &mut stop, "patient listener").await {
        while connections.try_join_next().is_some() {}
        let gw = gw.clone();
        let acceptor = acceptor.clone();
        let stop = stop.clone();
        connections.spawn(async move {
            let handshake = Duration::from_secs(gw.config.listener.handshake_timeout_seconds);
            let Ok(Ok(tls)) = tokio::time::timeout(handshake, acceptor.accept(tcp)).await else {
                tracing::debug!(%peer, "patient TLS handshake failed");
                return;
            };
            let service = service_fn(move |req| {
                let gw = gw.clone();
                async move { Ok::<_, Infallible>(handle(gw, peer, req).await) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .serve_connection(TokioIo::new(tls), service);
            let _ = until_stopped(connection, stop).await;
        });
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

async fn handle(gw: Arc<Gateway>, peer: SocketAddr, req: Request<Incoming>) -> Response<Body> {
    let rid = gw.request_id();
    let span = tracing::info_span!("patient_request", request_id = %rid, %peer, path = %req.uri().path(), person = tracing::field::Empty);
    async move {
        let action = match (req.method(), req.uri().path()) {
            (&Method::GET, "/") => return page(),
            (&Method::POST, "/p/v1/login") => Action::PatientLogin,
            (&Method::POST, "/p/v1/password") => Action::PatientPassword,
            (&Method::GET, "/p/v1/records") => Action::PatientRecords,
            (&Method::POST, "/p/v1/logout") => Action::PatientLogout,
            _ => Action::PatientUnknown,
        };
        let answer = dispatch(&gw, req, action).await;
        tracing::Span::current().record("person", answer.actor.as_str());
        tracing::info!(status = answer.status, refusal = answer.refusal.map_or("-", ErrorCode::as_str), "{action}");
        let outcome = if answer.refusal.is_some() { AuditOutcome::Refused } else { AuditOutcome::Ok };
        let event = AuditEvent {
            actor: answer.actor.clone(),
            terminal: format!("patient-portal:{}", peer.ip()),
            object: answer.object.clone(),
            reason: answer.refusal.map_or("-", ErrorCode::as_str).into(),
            request_id: rid.clone(),
            ..AuditEvent::new(action, outcome)
        };
        if let Err(r) = crate::routes::record(&gw.audit, &gw.metrics, event, gw.clock.now_ms()).await {
            return respond(r.status(), serde_json::to_vec(&r.body()).unwrap_or_default());
        }
        respond(answer.status, answer.body)
    }
    .instrument(span)
    .await
}

fn respond(status: u16, body: Vec<u8>) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    if status != 204 {
        h.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    }
    h.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    h.insert(header::STRICT_TRANSPORT_SECURITY, header::HeaderValue::from_static("max-age=31536000"));
    r
}

fn page() -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from_static(PAGE.as_bytes())));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; form-action 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, header::HeaderValue::from_static("DENY"));
    h.insert(header::STRICT_TRANSPORT_SECURITY, header::HeaderValue::from_static("max-age=31536000"));
    r
}

async fn dispatch(gw: &Gateway, req: Request<Incoming>, action: Action) -> Answered {
    let anon = |r: ApiError| refused(r, "-".into(), "-".into());
    let Some(cfg) = gw.config.patients.as_ref() else {
        return anon(ApiError::new(ErrorCode::NotFound, "no patient listener"));
    };
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned());
    let body = match Limited::new(req.into_body(), cfg.max_body_bytes).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return anon(ApiError::new(ErrorCode::BodyTooLarge, "the request body is too large")),
    };
    match action {
        Action::PatientLogin => login(gw, cfg, &body).await,
        Action::PatientPassword | Action::PatientRecords | Action::PatientLogout => {
            let Some(token) = bearer else {
                return anon(ApiError::new(ErrorCode::NoSession, "sign in first"));
            };
            let token_hash = digest(&SHA256, token.as_bytes()).as_ref().to_vec();
            let patient = match session(gw, cfg, &token_hash).await {
                Ok(p) => p,
                Err(r) => return anon(r),
            };
            let actor = format!("patient:{patient}");
            let result = match action {
                Action::PatientPassword => change_password(gw, cfg, &patient, &token_hash, &body).await,
                Action::PatientRecords => records(gw, &patient).await,
                _ => gw
                    .store
                    .end_patient_session(&token_hash, gw.clock.now())
                    .await
                    .map(|_| (204, Vec::new()))
                    .map_err(ApiError::from),
            };
            match result {
                Ok((status, body)) => {
                    Answered { status, body, actor, object: format!("patient:{patient}"), refusal: None }
                }
                Err(r) => refused(r, actor, format!("patient:{patient}")),
            }
        }
        _ => anon(ApiError::new(ErrorCode::NotFound, "no such endpoint")),
    }
}

fn bad_credentials() -> ApiError {
    ApiError::new(ErrorCode::InvalidCredentials, "the ID or the password is wrong")
}

async fn login(gw: &Gateway, cfg: &PatientSection, body: &[u8]) -> Answered {
    let req: PatientLogin = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return refused(
                ApiError::new(ErrorCode::MalformedJson, format!("the request is not valid: {e}")),
                "-".into(),
                "-".into(),
            );
        }
    };
    let id = req.id.trim().to_owned();
    let password = zeroize::Zeroizing::new(req.password.clone());
    drop(req);
    let actor = format!("patient:{id}");
    let object = format!("patient:{id}");
    let now = gw.clock.now();
    let account = match try_password(gw, cfg, &id, &password, now).await {
        Ok(a) => a,
        Err(r) => return refused(r, actor, object),
    };
    let result = async {
        let mut token = [0u8; 32];
        gw.rng
            .fill(&mut token)
            .map_err(|_| ApiError::new(ErrorCode::NoRandomness, "the system random generator failed"))?;
        let token = B64URL.encode(token);
        let expires_at = now + cfg.session_max_seconds;
        gw.store.create_patient_session(digest(&SHA256, token.as_bytes()).as_ref(), &id, now, expires_at).await?;
        Ok::<_, ApiError>(PatientSession {
            session: token,
            must_change_password: account.must_change,
            expires_at: hpki_profile::validate::rfc3339(expires_at),
        })
    }
    .await;
    match result {
        Ok(s) => {
            Answered { status: 200, body: serde_json::to_vec(&s).unwrap_or_default(), actor, object, refusal: None }
        }
        Err(r) => refused(r, actor, object),
    }
}

/// Tries `password` for `patient` under the lockout (AUTH-5): the store
/// admits the guess first — one conditional update, so concurrent guesses
/// cannot slip past the limit — and the account is returned only when the
/// password is right. An unknown ID costs the same time as a wrong password.
async fn try_password(
    gw: &Gateway,
    cfg: &PatientSection,
    patient: &str,
    password: &zeroize::Zeroizing<String>,
    now: i64,
) -> Result<AccountRow, ApiError> {
    let (max, base) = (cfg.max_failed_logins, cfg.lockout_seconds);
    let account = match gw.store.admit_password_guess(patient, now, max, base).await? {
        Guess::Try(a) => a,
        Guess::Locked { until } => {
            return Err(ApiError::new(
                ErrorCode::AccountLocked,
                format!("too many wrong passwords; try again after {}", hpki_profile::validate::rfc3339(until)),
            ));
        }
        Guess::Unknown => {
            let pw = password.clone();
            let _ = tokio::task::spawn_blocking(move || passwords::waste_time(&pw)).await;
            return Err(bad_credentials());
        }
    };
    let (pw, hash) = (password.clone(), account.password_hash.clone());
    let right = tokio::task::spawn_blocking(move || passwords::verify(&pw, &hash)).await.unwrap_or(false);
    let n = account.failed_attempts;
    gw.store.settle_password_guess(patient, right, passwords::locked_until(n, max, base, now)).await?;
    if right {
        Ok(account)
    } else if n >= max {
        Err(ApiError::new(ErrorCode::AccountLocked, "too many wrong passwords; the account is locked for a while"))
    } else {
        Err(bad_credentials())
    }
}

/// The patient of a session, if it is usable now.
async fn session(gw: &Gateway, cfg: &PatientSection, token_hash: &[u8]) -> Result<String, ApiError> {
    let now = gw.clock.now();
    let s = gw
        .store
        .patient_session(token_hash)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::SessionUnknown, "sign in again"))?;
    if s.ended {
        return Err(ApiError::new(ErrorCode::SessionEnded, "the session has ended; sign in again"));
    }
    if now >= s.expires_at {
        return Err(ApiError::new(ErrorCode::SessionExpired, "the session reached its maximum length; sign in again"));
    }
    if now - s.last_seen >= cfg.session_idle_seconds {
        let _ = gw.store.end_patient_session(token_hash, now).await;
        return Err(ApiError::new(ErrorCode::SessionIdleTimeout, "no activity for too long; sign in again"));
    }
    gw.store.touch_patient_session(token_hash, now).await?;
    Ok(s.patient_id)
}

/// `POST /p/v1/password` in the session `session` (token hash): the other
/// sessions of the patient end with the old password.
async fn change_password(
    gw: &Gateway,
    cfg: &PatientSection,
    patient: &str,
    session: &[u8],
    body: &[u8],
) -> Result<(u16, Vec<u8>), ApiError> {
    let req: PasswordChange = serde_json::from_slice(body)
        .map_err(|e| ApiError::new(ErrorCode::MalformedJson, format!("the request is not valid: {e}")))?;
    let (current, new) = (zeroize::Zeroizing::new(req.current.clone()), zeroize::Zeroizing::new(req.new.clone()));
    drop(req);
    // The lockout holds here too: a stolen session cannot guess the
    // current password without limit.
    let now = gw.clock.now();
    try_password(gw, cfg, patient, &current, now).await.map_err(|e| match e.code {
        ErrorCode::InvalidCredentials => ApiError::new(ErrorCode::InvalidCredentials, "the current password is wrong"),
        _ => e,
    })?;
    if let Some(why) = passwords::weakness(&new, patient, &current) {
        return Err(ApiError::new(ErrorCode::WeakPassword, format!("the new password is refused: {why}")));
    }
    let pw = new.clone();
    let hashed = tokio::task::spawn_blocking(move || passwords::hash(&pw))
        .await
        .map_err(|_| ApiError::new(ErrorCode::Internal, "hashing failed"))?
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    gw.store.set_password(patient, &hashed, now, session).await?;
    Ok((204, Vec::new()))
}

/// The patient's own records, only from institutions they consented to
/// share (FLOW-4); nothing until the initial password is replaced (AUTH-4).
async fn records(gw: &Gateway, patient: &str) -> Result<(u16, Vec<u8>), ApiError> {
    let account = gw.store.account(patient).await?.ok_or_else(bad_credentials)?;
    if account.must_change {
        return Err(ApiError::new(
            ErrorCode::PasswordChangeRequired,
            "replace the initial password first (POST /p/v1/password)",
        ));
    }
    let p =
        gw.store.patient(patient).await?.ok_or_else(|| ApiError::new(ErrorCode::UnknownPatient, "no such patient"))?;
    let records = crate::routes::patients::visible_records(gw, p, None).await?;
    let body = serde_json::to_vec(&records).map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    Ok((200, body))
}

const PAGE: &str = include_str!("patient_page.html");
