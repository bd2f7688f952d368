//! The listeners: the institution listener (mTLS, allowlist before TLS,
//! limits) and the operations listener (/healthz, /readyz, /metrics), plus
//! reloading certificates and CRLs without dropping connections.

use hpki_protocol::ErrorCode;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tracing::Instrument;

use crate::audit::AuditEvent;
use crate::gateway::{ConnInfo, Gateway, Metrics, Terminal};
use crate::routes::workflow::Route;
use crate::routes::{self, Outcome, Refused};
use crate::shutdown::{Stop, next_connection, until_stopped};
use tokio::task::JoinSet;

type Body = Full<Bytes>;

fn json(status: u16, body: Vec<u8>, request_id: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status != 204 {
        r.headers_mut()
            .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    }
    if let Ok(v) = hyper::header::HeaderValue::from_str(request_id) {
        r.headers_mut().insert("x-request-id", v);
    }
    r
}

fn allowed_source(gw: &Gateway, ip: IpAddr) -> bool {
    // An IPv4 peer on a dual-stack socket shows as ::ffff:a.b.c.d.
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    gw.config.listener.allow.iter().any(|net| net.contains(&ip))
}

/// Appends the entry of a refused connection (there is no answer to
/// withhold; `routes::record` logs a failure).
async fn audit(gw: &Gateway, event: AuditEvent) {
    let _ = routes::record(gw, event).await;
}

fn connection_event(action: &str, peer: SocketAddr, reason: &str) -> AuditEvent {
    AuditEvent {
        actor: "-".into(),
        terminal: "-".into(),
        institution: "-".into(),
        action: action.into(),
        object: format!("peer:{peer}"),
        outcome: "refused".into(),
        reason: reason.into(),
        request_id: "-".into(),
    }
}

/// Serves the institution listener until `stop` is raised, then stops
/// accepting and returns once every connection has finished its request in
/// hand (idle keep-alive connections close at once).
pub async fn serve_institutions(gw: Arc<Gateway>, listener: TcpListener, mut stop: Stop) {
    let limit = Arc::new(Semaphore::new(gw.config.listener.max_connections));
    let mut connections = JoinSet::new();
    while let Some((tcp, peer)) = next_connection(&listener, &mut stop, "institution listener").await {
        while connections.try_join_next().is_some() {}
        if !allowed_source(&gw, peer.ip()) {
            // NET-1, NET-3: refused before TLS, and recorded.
            Metrics::inc(&gw.metrics.connections_refused_source);
            tracing::warn!(%peer, "connection from outside the allowed networks refused");
            drop(tcp);
            audit(&gw, connection_event("net.connect", peer, "source_not_allowed")).await;
            continue;
        }
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            Metrics::inc(&gw.metrics.connections_refused_limit);
            tracing::warn!(%peer, "connection refused: maximum number of connections reached");
            drop(tcp);
            audit(&gw, connection_event("net.connect", peer, "connection_limit")).await;
            continue;
        };
        let gw = gw.clone();
        let stop = stop.clone();
        connections.spawn(async move {
            serve_connection(gw, tcp, peer, stop).await;
            drop(permit);
        });
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

async fn serve_connection(gw: Arc<Gateway>, tcp: tokio::net::TcpStream, peer: SocketAddr, stop: Stop) {
    let _ = tcp.set_nodelay(true);
    let acceptor = TlsAcceptor::from(gw.tls.load_full());
    let handshake = Duration::from_secs(gw.config.listener.handshake_timeout_seconds);
    let started = std::time::Instant::now();
    let tls = match tokio::time::timeout(handshake, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => {
            gw.metrics.handshake_seconds.observe(started.elapsed().as_secs_f64());
            s
        }
        Ok(Err(e)) => {
            Metrics::inc(&gw.metrics.handshakes_failed);
            tracing::info!(%peer, error = %e, "TLS handshake refused");
            audit(&gw, connection_event("tls.handshake", peer, &handshake_reason(&e))).await;
            return;
        }
        Err(_) => {
            Metrics::inc(&gw.metrics.handshake_timeouts);
            tracing::info!(%peer, "TLS handshake timed out");
            audit(&gw, connection_event("tls.handshake", peer, "handshake_timeout")).await;
            return;
        }
    };
    let (_, session) = tls.get_ref();
    let seen = session.peer_certificates().and_then(|c| c.first()).and_then(|c| terminal_of(c.as_ref()));
    let Some((terminal, cert)) = seen else {
        Metrics::inc(&gw.metrics.handshakes_failed);
        audit(&gw, connection_event("tls.handshake", peer, "terminal_certificate_unreadable")).await;
        return;
    };
    let mut binding = [0u8; hpki_protocol::CHANNEL_BINDING_LEN];
    if session.export_keying_material(&mut binding, hpki_protocol::CHANNEL_BINDING_LABEL, None).is_err() {
        return;
    }
    Metrics::inc(&gw.metrics.connections_accepted);
    note_terminal_cert(&gw, &terminal, cert);
    let conn = Arc::new(ConnInfo { peer, terminal, channel_binding: binding });
    let idle = Duration::from_secs(gw.config.listener.idle_timeout_seconds);
    let service = service_fn(move |req| {
        let gw = gw.clone();
        let conn = conn.clone();
        async move { Ok::<_, Infallible>(handle(gw, conn, req).await) }
    });
    let connection = http1_settings(idle).serve_connection(TokioIo::new(tls), service);
    if let Err(e) = until_stopped(connection, stop).await {
        tracing::debug!(%peer, error = %e, "connection ended");
    }
}

/// The institution listener's HTTP/1.1 settings: keep-alive, and a
/// connection that sends no request headers for `idle` is closed.
pub fn http1_settings(idle: Duration) -> http1::Builder {
    let mut b = http1::Builder::new();
    b.timer(TokioTimer::new()).header_read_timeout(idle).keep_alive(true);
    b
}

/// A short reason for a refused handshake, for the audit log.
fn handshake_reason(e: &std::io::Error) -> String {
    let text = e.to_string().to_lowercase();
    for (needle, reason) in [
        ("revoked", "terminal_certificate_revoked"),
        ("expired", "terminal_certificate_expired"),
        ("unknown issuer", "terminal_certificate_unknown_issuer"),
        ("unknownissuer", "terminal_certificate_unknown_issuer"),
        ("revocation", "terminal_revocation_status"),
        ("crl", "terminal_revocation_status"),
        ("no certificate", "no_terminal_certificate"),
        ("certificaterequired", "no_terminal_certificate"),
    ] {
        if text.contains(needle) {
            return reason.into();
        }
    }
    "tls_handshake_failed".into()
}

/// Serial (hex) and notAfter (Unix s) of a terminal certificate.
struct CertFacts {
    serial: String,
    not_after: i64,
}

/// Records the terminal certificate for the expiry report, at most once an
/// hour per certificate and off the connection's path.
fn note_terminal_cert(gw: &Arc<Gateway>, terminal: &Terminal, cert: CertFacts) {
    let now = gw.clock.now_ms();
    if !gw.terminal_cert_due(&cert.serial, now) {
        return;
    }
    let row = crate::store::TerminalCertRow {
        institution: terminal.institution.clone(),
        name: terminal.name.clone(),
        serial: cert.serial,
        not_after: cert.not_after,
        last_seen: now,
    };
    let gw = gw.clone();
    tokio::spawn(async move {
        if let Err(e) = gw.store.saw_terminal_cert(&row).await {
            tracing::warn!(error = %e, "cannot record the terminal certificate");
        }
    });
}

/// Institution (O) and terminal name (CN) of a terminal certificate, and
/// its serial and expiry (one parse per connection).
fn terminal_of(der: &[u8]) -> Option<(Terminal, CertFacts)> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let institution = cert.subject().iter_organization().next()?.as_str().ok()?.to_owned();
    let name = cert.subject().iter_common_name().next()?.as_str().ok()?.to_owned();
    let facts = CertFacts {
        serial: hpki_profile::holder::hex_serial(cert.raw_serial()),
        not_after: cert.validity().not_after.timestamp(),
    };
    Some((Terminal { institution, name }, facts))
}

async fn handle(gw: Arc<Gateway>, conn: Arc<ConnInfo>, req: Request<Incoming>) -> Response<Body> {
    let rid = gw.request_id();
    let span = tracing::info_span!("request", request_id = %rid, terminal = %conn.terminal.key(), path = %req.uri().path(), person = tracing::field::Empty);
    async move {
        let started = std::time::Instant::now();
        Metrics::inc(&gw.metrics.requests);
        let path = req.uri().path().to_owned();
        let route = Route::of(req.method().as_str(), &path, req.uri().query());
        let action = match (req.method(), path.as_str()) {
            (&Method::POST, "/v1/auth/challenge") => "auth.challenge",
            (&Method::POST, "/v1/auth/login") => "auth.login",
            (&Method::POST, "/v1/auth/logout") => "auth.logout",
            (&Method::GET, "/v1/auth/whoami") => "auth.whoami",
            _ => route.as_ref().map(Route::action).unwrap_or("http.unknown"),
        };
        let outcome = dispatch(&gw, &conn, req, action, route).await;
        tracing::Span::current().record("person", outcome.actor.as_str());
        if let Some(code) = outcome.refusal {
            gw.metrics.refused(code.as_str());
        }
        if action == "auth.login" {
            Metrics::inc(if outcome.refusal.is_some() { &gw.metrics.logins_refused } else { &gw.metrics.logins_ok });
        }
        tracing::info!(status = outcome.status, refusal = outcome.refusal.map_or("-", ErrorCode::as_str), "{action}");
        let audited = routes::record(&gw, routes::audit_event(&conn, action, &outcome, &rid)).await;
        crate::ops::alerts::observe(&gw, &conn, action, outcome.refusal.is_some(), &outcome.actor).await;
        gw.metrics.answered(action, started.elapsed());
        if let Err(r) = audited {
            return json(r.status(), serde_json::to_vec(&r.body()).unwrap_or_default(), &rid);
        }
        json(outcome.status, outcome.body, &rid)
    }
    .instrument(span)
    .await
}

async fn dispatch(
    gw: &Gateway,
    conn: &ConnInfo,
    req: Request<Incoming>,
    action: &str,
    route: Option<Route>,
) -> Outcome {
    let deny = |r: Refused| Outcome {
        status: r.status(),
        body: serde_json::to_vec(&r.body()).unwrap_or_default(),
        actor: "-".into(),
        object: "-".into(),
        refusal: Some(r.code),
    };
    let authorization =
        req.headers().get(hyper::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    // A suspended terminal is refused first. Requests that use a session
    // learn it from the session lookup (one query for both); the others
    // ask on their own.
    let uses_session = match action {
        "auth.challenge" | "auth.login" => false,
        "auth.logout" | "auth.whoami" => true,
        _ => route.is_some(),
    };
    let session =
        if uses_session { Some(routes::authenticate(gw, conn, authorization.as_deref()).await) } else { None };
    match &session {
        Some(Err((r, _))) if r.code == ErrorCode::TerminalSuspended => return deny(r.clone()),
        Some(_) => {}
        None => {
            if let Err(r) = routes::check_terminal(gw, conn).await {
                return deny(r);
            }
        }
    }
    if !gw.take_rate_token(&conn.terminal.key()) {
        Metrics::inc(&gw.metrics.rate_limited);
        return deny(Refused::new(ErrorCode::RateLimited, "too many requests from this terminal; slow down"));
    }
    let max = gw.config.listener.max_body_bytes;
    let body = match Limited::new(req.into_body(), max).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                Metrics::inc(&gw.metrics.bodies_too_large);
                return deny(Refused::new(ErrorCode::BodyTooLarge, format!("the request body exceeds {max} bytes")));
            }
            return deny(Refused::new(ErrorCode::BadRequest, "the request body could not be read"));
        }
    };
    match (action, session, route) {
        ("auth.challenge", _, _) => routes::challenge(gw, conn).await,
        ("auth.login", _, _) => routes::login(gw, conn, &body).await,
        ("auth.logout", Some(session), _) => routes::logout(gw, session).await,
        ("auth.whoami", Some(session), _) => routes::whoami(gw, conn, session),
        (_, Some(session), Some(route)) => workflow(gw, conn, &route, session, &body).await,
        _ => deny(Refused::new(ErrorCode::NotFound, "no such endpoint")),
    }
}

/// A workflow request: the session first, then the route's own checks.
async fn workflow(
    gw: &Gateway,
    conn: &ConnInfo,
    route: &Route,
    session: routes::Authentication,
    body: &[u8],
) -> Outcome {
    let a = match session {
        Ok(a) => a,
        Err((r, who)) => return routes::refused(r, who.unwrap_or_else(|| "-".into()), "-".into()),
    };
    tracing::Span::current().record("person", a.person.id.as_str());
    let mut object = "-".to_string();
    match crate::routes::workflow::handle(gw, conn, &a, route, body, &mut object).await {
        Ok((status, body)) => Outcome { status, body, actor: a.person.id, object, refusal: None },
        Err(r) => routes::refused(r, a.person.id, object),
    }
}
