//! The floor of the whoami benchmark: the gateway's own TLS configuration
//! (`hpki_gateway::credentials::server_config`: TLS 1.3, client certificate from the
//! terminal CA, CRLs) and the same hyper HTTP/1.1 settings
//! (`hpki_gateway::http::institution::http1_settings`), answering every
//! request with a static 200 — nothing of the gateway's own work (no
//! session, no audit, no log). It shows how close any server on this stack
//! (tokio + rustls + hyper) can come to nginx on this machine, so the
//! benchmark can say which part of the gap is the stack and which the
//! gateway's work. Benchmark use only: `tls-floor --config gateway.toml`.

/// The gateway's allocator, so that the floor differs from it only in the
/// gateway's work.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::convert::Infallible;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Response, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let config = match args.as_slice() {
        [_, flag, path] if flag == "--config" => PathBuf::from(path),
        _ => bail!("usage: tls-floor --config gateway.toml (listens on the listener address of that file)"),
    };
    let config = hpki_gateway::config::Config::load(&config).context("reading the configuration")?;
    let tls = hpki_gateway::credentials::server_config(&config).context("building the TLS configuration")?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(&config.listener.address).await.context("binding")?;
        let acceptor = TlsAcceptor::from(tls);
        let idle = Duration::from_secs(config.listener.idle_timeout_seconds);
        loop {
            let (tcp, _) = listener.accept().await?;
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let service = service_fn(|_req| async {
                    let mut r = Response::new(Full::new(Bytes::from_static(br#"{"ok":true}"#)));
                    r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
                    Ok::<_, Infallible>(r)
                });
                let _ = hpki_gateway::http::institution::http1_settings(idle)
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    })
}
