//! The patient listener (NET-2): plain server TLS from the internet, under
//! its own limits (`[patients.limits]`) apart from the institution
//! listener's, so that a flood here cannot take the clinics' connections:
//! connections in all and per source address (TLS handshakes included;
//! refusals audited within the listener's refusal budget), a handshake
//! deadline, a header deadline; the body's deadline, the sign-in
//! throttles, the bounded password pool and the refusal budget are the
//! routes' (`routes::patient_portal`).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::audit::{Action, AuditEvent};
use crate::gateway::{Gateway, Metrics};
use crate::http::institution::connection_event;
use crate::http::source_slots::SourceSlots;
use crate::shutdown::{Stop, next_connection, until_stopped};

/// Serves the patient listener until `stop` is raised, then drains like
/// the institution listener.
pub async fn serve_patients(gw: Arc<Gateway>, listener: TcpListener, tls: Arc<ServerConfig>, mut stop: Stop) {
    let Some(limits) = gw.config.patients.as_ref().map(|p| p.limits.clone()) else { return };
    let acceptor = TlsAcceptor::from(tls);
    let connections_left = Arc::new(Semaphore::new(limits.max_connections));
    let sources = SourceSlots::new(limits.max_connections_per_source);
    let handshake = Duration::from_secs(limits.handshake_timeout_seconds);
    let headers = Duration::from_secs(limits.header_timeout_seconds);
    let mut connections = tokio::task::JoinSet::new();
    while let Some((tcp, peer)) = next_connection(&listener, &mut stop, "patient listener").await {
        while connections.try_join_next().is_some() {}
        // Refused without a word, counted (`hpki_patient_connections_refused`)
        // and audited within the listener's refusal budget.
        let refused = match (sources.take(peer.ip()), connections_left.clone().try_acquire_owned()) {
            (Some(source), Ok(slot)) => Ok((source, slot)),
            (None, _) => Err("source_connection_limit"),
            (Some(_), Err(_)) => Err("connection_limit"),
        };
        let (source, slot) = match refused {
            Ok(held) => held,
            Err(reason) => {
                Metrics::inc(&gw.metrics.patient_connections_refused);
                drop(tcp);
                let event = AuditEvent {
                    terminal: crate::audit::budget::PATIENT_PORTAL.into(),
                    ..connection_event(Action::NetConnect, peer, reason)
                };
                crate::routes::record_refusal_detached(&gw, &gw.patient_refusals, event);
                continue;
            }
        };
        let (gw, acceptor, stop) = (gw.clone(), acceptor.clone(), stop.clone());
        connections.spawn(async move {
            let _held = (source, slot);
            let Ok(Ok(tls)) = tokio::time::timeout(handshake, acceptor.accept(tcp)).await else {
                tracing::debug!(%peer, "patient TLS handshake failed");
                return;
            };
            let service = service_fn(move |req| {
                let gw = gw.clone();
                async move { Ok::<_, Infallible>(crate::routes::patient_portal::handle(gw, peer, req).await) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(headers)
                .serve_connection(TokioIo::new(tls), service);
            let _ = until_stopped(connection, stop).await;
        });
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}
