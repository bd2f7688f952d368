//! The institution listener: the source allowlist before TLS, the
//! connection limit, mutual TLS with the terminal's certificate, the channel
//! binding a login signs, then HTTP/1.1 keep-alive with the endpoint router
//! (`endpoints::router`, its layers in `layers`) serving each request with
//! the connection's facts in its extensions.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::audit::{Action, AuditEvent, Outcome};
use crate::gateway::{ConnInfo, Gateway, Metrics, Terminal};
use crate::http::source_slots::SourceSlots;
use crate::shutdown::{Stop, next_connection, until_stopped};

fn allowed_source(gw: &Gateway, ip: IpAddr) -> bool {
    let ip = crate::http::source_slots::canonical(ip);
    gw.config.listener.allow.iter().any(|net| net.contains(&ip))
}

/// Audits a refused connection within the listener's refusal budget, off
/// the accept loop and the connection's task.
fn audit_refusal(gw: &Arc<Gateway>, event: AuditEvent) {
    crate::routes::record_refusal_detached(gw, &gw.institution_refusals, event);
}

pub(crate) fn connection_event(action: Action, peer: SocketAddr, reason: &str) -> AuditEvent {
    AuditEvent { object: format!("peer:{peer}"), reason: reason.into(), ..AuditEvent::new(action, Outcome::Refused) }
}

/// What a connection may hold: a slot of its source for its whole life, a
/// handshake slot while it handshakes, then a connection slot.
#[derive(Clone)]
struct Slots {
    handshakes: Arc<Semaphore>,
    connections: Arc<Semaphore>,
    sources: Arc<SourceSlots>,
}

/// Serves the institution listener until `stop` is raised, then stops
/// accepting and returns once every connection has finished its request in
/// hand (idle keep-alive connections close at once).
pub async fn serve_institutions(gw: Arc<Gateway>, listener: TcpListener, mut stop: Stop) {
    let l = &gw.config.listener;
    let slots = Slots {
        handshakes: Arc::new(Semaphore::new(l.max_handshakes)),
        connections: Arc::new(Semaphore::new(l.max_connections)),
        sources: SourceSlots::new(l.max_connections_per_source),
    };
    let router = crate::http::endpoints::router(&gw);
    let mut connections = JoinSet::new();
    while let Some((tcp, peer)) = next_connection(&listener, &mut stop, "institution listener").await {
        while connections.try_join_next().is_some() {}
        if !allowed_source(&gw, peer.ip()) {
            // NET-1, NET-3: refused before TLS, and recorded.
            Metrics::inc(&gw.metrics.connections_refused_source);
            tracing::warn!(%peer, "connection from outside the allowed networks refused");
            drop(tcp);
            audit_refusal(&gw, connection_event(Action::NetConnect, peer, "source_not_allowed"));
            continue;
        }
        let refuse = |reason: &'static str| {
            Metrics::inc(&gw.metrics.connections_refused_limit);
            tracing::warn!(%peer, reason, "connection refused: a limit is reached");
            audit_refusal(&gw, connection_event(Action::NetConnect, peer, reason));
        };
        let Some(source) = slots.sources.take(peer.ip()) else {
            drop(tcp);
            refuse("source_connection_limit");
            continue;
        };
        let Ok(handshake) = slots.handshakes.clone().try_acquire_owned() else {
            drop(tcp);
            refuse("handshake_limit");
            continue;
        };
        let (gw, stop, router, slots) = (gw.clone(), stop.clone(), router.clone(), slots.clone());
        connections.spawn(async move {
            serve_connection(gw, router, tcp, peer, stop, handshake, &slots.connections).await;
            drop(source);
        });
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

async fn serve_connection(
    gw: Arc<Gateway>,
    router: Router,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    stop: Stop,
    handshake_slot: OwnedSemaphorePermit,
    connections: &Arc<Semaphore>,
) {
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
            audit_refusal(&gw, connection_event(Action::TlsHandshake, peer, &handshake_reason(&e)));
            return;
        }
        Err(_) => {
            Metrics::inc(&gw.metrics.handshake_timeouts);
            tracing::info!(%peer, "TLS handshake timed out");
            audit_refusal(&gw, connection_event(Action::TlsHandshake, peer, "handshake_timeout"));
            return;
        }
    };
    let (_, session) = tls.get_ref();
    let seen = session.peer_certificates().and_then(|c| c.first()).and_then(|c| terminal_of(c.as_ref()));
    let Some((terminal, cert)) = seen else {
        Metrics::inc(&gw.metrics.handshakes_failed);
        audit_refusal(&gw, connection_event(Action::TlsHandshake, peer, "terminal_certificate_unreadable"));
        return;
    };
    drop(handshake_slot);
    // The connection slot is taken once the terminal has proven itself: a
    // flood of handshakes, finished or not, holds none.
    let Ok(_connection_slot) = connections.clone().try_acquire_owned() else {
        Metrics::inc(&gw.metrics.connections_refused_limit);
        tracing::warn!(%peer, "connection refused: maximum number of connections reached");
        audit_refusal(&gw, connection_event(Action::NetConnect, peer, "connection_limit"));
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
    // The connection's facts go with each of its requests; the router's
    // layers and handlers take them from there.
    let service = service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(conn.clone());
        router.clone().oneshot(req)
    });
    let connection = http1_settings(idle).serve_connection(TokioIo::new(tls), service);
    if let Err(e) = until_stopped(connection, stop).await {
        tracing::debug!(%peer, error = %e, "connection ended");
    }
}

/// The institution listener's HTTP/1.1 settings: keep-alive, and a
/// connection that sends no request headers for `idle` is closed (the body
/// has its own deadline: `layers::body_limit`).
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
    // A terminal is named `institution/name` (sessions, suspension, the
    // audit log): with a '/' in either, O="A/B", CN="c" and O="A", CN="B/c"
    // would be one terminal. Such a certificate identifies nobody.
    if institution.contains('/') || name.contains('/') {
        return None;
    }
    let facts = CertFacts {
        serial: hpki_profile::holder::hex_serial(cert.raw_serial()),
        not_after: cert.validity().not_after.timestamp(),
    };
    Some((Terminal::new(institution, name), facts))
}
