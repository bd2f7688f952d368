//! The operations listener: `/healthz`, `/readyz` (store reachable, CRLs
//! current; the operating mode) and `/metrics`, on loopback or a management network.

use crate::gateway::Gateway;
use crate::shutdown::{Stop, next_connection};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::net::TcpListener;

/// /healthz (the process answers), /readyz (store reachable, CRLs fresh),
/// /metrics (Prometheus).
pub async fn serve_ops(gw: Arc<Gateway>, listener: TcpListener, mut stop: Stop) {
    while let Some((tcp, _)) = next_connection(&listener, &mut stop, "ops listener").await {
        let gw = gw.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let gw = gw.clone();
                async move {
                    let (status, body, ctype) = match req.uri().path() {
                        "/healthz" => (200, "ok\n".to_string(), "text/plain"),
                        "/readyz" => match readiness(&gw).await {
                            Ok(mode) => (200, format!("ready\nmode: {}\n", mode_line(&mode)), "text/plain"),
                            Err(why) => (503, format!("not ready: {why}\n"), "text/plain"),
                        },
                        "/metrics" => {
                            // The mode as of this scrape (the store is the
                            // one place it is kept).
                            if let Ok(m) = gw.store.operating_mode().await {
                                gw.metrics.set_mode(m.mode);
                            }
                            (200, gw.metrics.render(), crate::metrics::CONTENT_TYPE)
                        }
                        _ => (404, "not found\n".to_string(), "text/plain"),
                    };
                    let mut r = Response::new(Full::new(Bytes::from(body)));
                    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
                    r.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static(ctype));
                    Ok::<_, Infallible>(r)
                }
            });
            let _ = http1::Builder::new().serve_connection(TokioIo::new(tcp), service).await;
        });
    }
}

/// `normal`, or the mode with its reason (`read-only (drill)`).
fn mode_line(m: &crate::store::ModeRow) -> String {
    match m.mode {
        hpki_protocol::emergency::OperatingMode::Normal => m.mode.to_string(),
        other => format!("{other} ({})", m.reason),
    }
}

/// Ready: the store answers and the CRLs in force are current. A gateway
/// in read-only or blocked mode is still ready (it serves what the mode
/// allows); the answer says which mode.
pub(crate) async fn readiness(gw: &Gateway) -> Result<crate::store::ModeRow, String> {
    gw.store.ping().await.map_err(|e| format!("store: {e}"))?;
    let mode = gw.store.operating_mode().await.map_err(|e| format!("store: {e}"))?;
    // The CRLs in force (set at start and at each successful reload), not
    // whatever is on disk now.
    let next = gw.crl_next_update.load(std::sync::atomic::Ordering::Relaxed);
    if next <= gw.clock.now() {
        return Err(format!("a CRL is past its nextUpdate ({})", hpki_profile::validate::rfc3339(next)));
    }
    Ok(mode)
}
