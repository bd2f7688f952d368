//! The patient listener's routes (NET-2, AUTH-4, AUTH-5, FLOW-4; the
//! listener itself is `http::patients`): sign-in with ID and password under
//! per-source and per-ID throttles and a bounded password pool, the initial password replaced before
//! anything else, lockout with backoff, and a patient's own consented
//! records — as JSON and as one small self-contained page.

use hpki_protocol::ErrorCode;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use hpki_protocol::workflow::{PasswordChange, PatientLogin, PatientSession};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode, header};
use ring::digest::{SHA256, digest};
use ring::rand::SecureRandom;
use tracing::Instrument;

use crate::audit::outbox::{Staged, Staging};
use crate::audit::{Action, AuditEvent, Outcome as AuditOutcome};
use crate::config::PatientSection;
use crate::domain::passwords;
use crate::gateway::{Gateway, Metrics};
use crate::routes::{Answered, ApiError, patient_rights, refused};
use crate::store::{AccountRow, Guess};

type Body = Full<Bytes>;

/// One request of the patient listener (`http::patients`), audited: an
/// answer that grants anything is durable in the log before it leaves;
/// refusals go through the listener's refusal budget, so a flood of them
/// writes a bounded number of entries.
pub async fn handle(gw: Arc<Gateway>, peer: SocketAddr, req: Request<Incoming>) -> Response<Body> {
    let rid = gw.request_id();
    // The path is the client's: the log gets its first 64 bytes at most.
    let path = req.uri().path();
    let path = &path[..path.floor_char_boundary(64)];
    let span = tracing::info_span!("patient_request", request_id = %rid, %peer, path, person = tracing::field::Empty);
    async move {
        let action = match (req.method(), req.uri().path()) {
            (&Method::GET, "/") => return page(),
            (&Method::POST, "/p/v1/login") => Action::PatientLogin,
            (&Method::POST, "/p/v1/password") => Action::PatientPassword,
            (&Method::GET, "/p/v1/records") => Action::PatientRecords,
            (&Method::POST, "/p/v1/logout") => Action::PatientLogout,
            (&Method::GET, "/p/v1/disclosure") => Action::PatientDisclosure,
            (&Method::GET, "/p/v1/disclosure/fhir") => Action::PatientDisclosureFhir,
            (&Method::POST, "/p/v1/corrections") => Action::PatientCorrectionRequest,
            (&Method::GET, "/p/v1/corrections") => Action::PatientCorrectionsRead,
            (&Method::GET, "/p/v1/consents") => Action::PatientConsentsRead,
            (&Method::POST, "/p/v1/consents") => Action::PatientConsentChange,
            _ => Action::PatientUnknown,
        };
        let st = Staging {
            request_id: rid.clone(),
            terminal: format!("{}:{}", crate::audit::budget::PATIENT_PORTAL, peer.ip()),
            institution: "-".into(),
            action,
        };
        let answer = dispatch(&gw, req, peer, &st).await;
        tracing::Span::current().record("person", answer.actor.as_str());
        tracing::info!(status = answer.status, refusal = answer.refusal.map_or("-", ErrorCode::as_str), "{action}");
        let outcome = if answer.refusal.is_some() { AuditOutcome::Refused } else { AuditOutcome::Ok };
        let event = AuditEvent {
            actor: answer.actor.clone(),
            terminal: st.terminal.clone(),
            object: answer.object.clone(),
            reason: answer.refusal.map_or("-", ErrorCode::as_str).into(),
            request_id: rid.clone(),
            ..AuditEvent::new(action, outcome)
        };
        let now = gw.clock.now_ms();
        let audited = if answer.refusal.is_some() {
            crate::routes::record_refusal(&gw.audit, &gw.metrics, &gw.patient_refusals, event, now).await
        } else {
            crate::routes::record(&gw.audit, &gw.metrics, event, now).await
        };
        if let Err(r) = audited {
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

async fn dispatch(gw: &Gateway, req: Request<Incoming>, peer: SocketAddr, st: &Staging) -> Answered {
    let action = st.action;
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
    let deadline = Duration::from_secs(cfg.limits.body_timeout_seconds);
    let body = match tokio::time::timeout(deadline, Limited::new(req.into_body(), cfg.max_body_bytes).collect()).await {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(_)) => return anon(ApiError::new(ErrorCode::BodyTooLarge, "the request body is too large")),
        Err(_) => {
            Metrics::inc(&gw.metrics.bodies_timed_out);
            return anon(ApiError::new(ErrorCode::BodyTimeout, "the request body did not arrive in time"));
        }
    };
    match action {
        Action::PatientLogin => login(gw, cfg, peer, &body, st).await,
        Action::PatientPassword
        | Action::PatientRecords
        | Action::PatientLogout
        | Action::PatientDisclosure
        | Action::PatientDisclosureFhir
        | Action::PatientCorrectionRequest
        | Action::PatientCorrectionsRead
        | Action::PatientConsentsRead
        | Action::PatientConsentChange => {
            let Some(token) = bearer else {
                return anon(ApiError::new(ErrorCode::NoSession, "sign in first"));
            };
            let token_hash = digest(&SHA256, token.as_bytes()).as_ref().to_vec();
            let patient = match session(gw, cfg, &token_hash).await {
                Ok(p) => p,
                Err(r) => return anon(r),
            };
            let actor = format!("patient:{patient}");
            let mut object = format!("patient:{patient}");
            let rights = matches!(
                action,
                Action::PatientDisclosure
                    | Action::PatientDisclosureFhir
                    | Action::PatientCorrectionRequest
                    | Action::PatientCorrectionsRead
                    | Action::PatientConsentsRead
                    | Action::PatientConsentChange
            );
            if rights && let Err(r) = password_replaced(gw, &patient).await {
                return refused(r, actor, object);
            }
            // A patient's changes are writes too: the operating mode that
            // refuses staff's writes refuses them (FLOW-7).
            if matches!(action, Action::PatientCorrectionRequest | Action::PatientConsentChange)
                && let Err(r) = writable(gw).await
            {
                return refused(r, actor, object);
            }
            let stage = |object: &str| st.stage(&actor, object, gw.clock.now_ms());
            let result = match action {
                Action::PatientDisclosure => patient_rights::disclosure(gw, &patient).await,
                Action::PatientDisclosureFhir => patient_rights::disclosure_fhir(gw, &patient).await,
                Action::PatientCorrectionRequest => {
                    patient_rights::request_correction(gw, &patient, &body, &mut object, stage).await
                }
                Action::PatientCorrectionsRead => patient_rights::corrections(gw, &patient).await,
                Action::PatientConsentsRead => patient_rights::consents(gw, &patient).await,
                Action::PatientConsentChange => {
                    let staged = stage(&format!("patient:{patient}"));
                    patient_rights::change_consent(gw, &patient, &body, &mut object, &staged).await
                }
                Action::PatientPassword => {
                    let staged = st.stage(&actor, format!("patient:{patient}"), gw.clock.now_ms());
                    change_password(gw, cfg, peer, &patient, &token_hash, &body, &staged).await
                }
                Action::PatientRecords => records(gw, &patient).await,
                _ => gw
                    .store
                    .patient_log_out(
                        &token_hash,
                        gw.clock.now(),
                        &st.stage(&actor, format!("patient:{patient}"), gw.clock.now_ms()),
                    )
                    .await
                    .map(|_| (204, Vec::new()))
                    .map_err(ApiError::from),
            };
            match result {
                Ok((status, body)) => Answered { status, body, actor, object, refusal: None },
                Err(r) => refused(r, actor, object),
            }
        }
        _ => anon(ApiError::new(ErrorCode::NotFound, "no such endpoint")),
    }
}

fn bad_credentials() -> ApiError {
    ApiError::new(ErrorCode::InvalidCredentials, "the ID or the password is wrong")
}

async fn login(gw: &Gateway, cfg: &PatientSection, peer: SocketAddr, body: &[u8], st: &Staging) -> Answered {
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
    // The ID is the client's to choose: the audit log gets at most a short,
    // printable form of it.
    let actor = format!("patient:{}", loggable_id(&id));
    let object = actor.clone();
    if id.len() > MAX_PATIENT_ID {
        return refused(bad_credentials(), actor, object);
    }
    let now = gw.clock.now();
    let account = match try_password(gw, cfg, peer, &id, &password, now).await {
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
        let staged = st.stage(&actor, object.as_str(), gw.clock.now_ms());
        let token_hash = digest(&SHA256, token.as_bytes());
        gw.store.create_patient_session(token_hash.as_ref(), &id, now, expires_at, &staged).await?;
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
    peer: SocketAddr,
    patient: &str,
    password: &zeroize::Zeroizing<String>,
    now: i64,
) -> Result<AccountRow, ApiError> {
    // Before the store and argon2 are asked anything: one source cannot
    // try many IDs, nor many sources one ID, faster than the throttles.
    let source = crate::http::source_slots::canonical(peer.ip()).to_string();
    if !gw.patient_sources.take(&source) || !gw.patient_ids.take(patient) {
        return Err(ApiError::new(ErrorCode::RateLimited, "too many sign-in attempts; wait a minute"));
    }
    // A place for the hash first: a guess turned away busy is not tried
    // and costs the account nothing.
    let ticket = gw.passwords.admit().map_err(|e| pool_refusal(gw, e))?;
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
            ticket.run(move || passwords::waste_time(&pw)).await.map_err(|e| pool_refusal(gw, e))?;
            return Err(bad_credentials());
        }
    };
    let (pw, hash) = (password.clone(), account.password_hash.clone());
    // A check that fails (its thread panicked) leaves the guess counted:
    // fail closed.
    let right = ticket.run(move || passwords::verify(&pw, &hash)).await.map_err(|e| pool_refusal(gw, e))?;
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

/// The longest patient ID the gateway issues is far shorter; a longer one
/// is refused before anything is looked up.
const MAX_PATIENT_ID: usize = 64;

/// A client-chosen ID as the audit log and the logs may carry it: at most
/// 64 characters, anything but ASCII letters, digits and `-_.` as `?`.
fn loggable_id(id: &str) -> String {
    let mut out: String = id
        .chars()
        .take(MAX_PATIENT_ID)
        .map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '?' })
        .collect();
    if id.chars().count() > MAX_PATIENT_ID {
        out.push('…');
    }
    if out.is_empty() { "-".into() } else { out }
}

fn pool_refusal(gw: &Gateway, e: crate::domain::password_pool::PoolError) -> ApiError {
    match e {
        crate::domain::password_pool::PoolError::Busy => {
            Metrics::inc(&gw.metrics.password_checks_busy);
            ApiError::new(ErrorCode::Busy, "the gateway is busy; try again in a moment")
        }
        crate::domain::password_pool::PoolError::Failed => {
            ApiError::new(ErrorCode::Internal, "the password check failed")
        }
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
    peer: SocketAddr,
    patient: &str,
    session: &[u8],
    body: &[u8],
    staged: &Staged,
) -> Result<(u16, Vec<u8>), ApiError> {
    let req: PasswordChange = serde_json::from_slice(body)
        .map_err(|e| ApiError::new(ErrorCode::MalformedJson, format!("the request is not valid: {e}")))?;
    let (current, new) = (zeroize::Zeroizing::new(req.current.clone()), zeroize::Zeroizing::new(req.new.clone()));
    drop(req);
    // The lockout holds here too: a stolen session cannot guess the
    // current password without limit.
    let now = gw.clock.now();
    try_password(gw, cfg, peer, patient, &current, now).await.map_err(|e| match e.code {
        ErrorCode::InvalidCredentials => ApiError::new(ErrorCode::InvalidCredentials, "the current password is wrong"),
        _ => e,
    })?;
    if let Some(why) = passwords::weakness(&new, patient, &current) {
        return Err(ApiError::new(ErrorCode::WeakPassword, format!("the new password is refused: {why}")));
    }
    let pw = new.clone();
    let hashed = gw
        .passwords
        .run(move || passwords::hash(&pw))
        .await
        .map_err(|e| pool_refusal(gw, e))?
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    gw.store.set_password(patient, &hashed, now, session, staged).await?;
    Ok((204, Vec::new()))
}

/// Whether the operating mode lets a patient change anything (read-only
/// and blocked do not).
async fn writable(gw: &Gateway) -> Result<(), ApiError> {
    // The admission snapshot the institution listener's mode layer reads:
    // read after this request arrived, so a change committed before it counts.
    let snapshot = gw.snapshots.snapshot().await.map_err(|e| {
        tracing::error!(error = %e, "store error");
        crate::routes::store_unavailable()
    })?;
    crate::http::layers::mode::admit(&snapshot.mode, crate::http::endpoints::Kind::Write)
}

/// Nothing but the password change until the initial password is
/// replaced (AUTH-4).
async fn password_replaced(gw: &Gateway, patient: &str) -> Result<(), ApiError> {
    let account = gw.store.account(patient).await?.ok_or_else(bad_credentials)?;
    if account.must_change {
        return Err(ApiError::new(
            ErrorCode::PasswordChangeRequired,
            "replace the initial password first (POST /p/v1/password)",
        ));
    }
    Ok(())
}

/// The patient's own records, only from institutions they consented to
/// share (FLOW-4); nothing until the initial password is replaced (AUTH-4).
async fn records(gw: &Gateway, patient: &str) -> Result<(u16, Vec<u8>), ApiError> {
    password_replaced(gw, patient).await?;
    let p =
        gw.store.patient(patient).await?.ok_or_else(|| ApiError::new(ErrorCode::UnknownPatient, "no such patient"))?;
    let records = crate::routes::patients::visible_records(gw, p, None).await?;
    let body = serde_json::to_vec(&records).map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    Ok((200, body))
}

const PAGE: &str = include_str!("patient_page.html");
