//! The command line's way to a running agent: its local API over loopback
//! HTTP with the installation's API token.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("no card-agent is running at {0} (start it with `card-agent --config FILE`)")]
    NotRunning(SocketAddr),
    #[error("talking to the card-agent at {address}: {detail}")]
    Broken { address: SocketAddr, detail: String },
}

/// Sends one request to the agent's local API; returns status and JSON body.
pub async fn call(
    address: SocketAddr,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Vec<u8>>,
    lang: &str,
) -> Result<(u16, Value), LocalError> {
    let broken = |detail: String| LocalError::Broken { address, detail };
    let tcp = tokio::net::TcpStream::connect(address).await.map_err(|_| LocalError::NotRunning(address))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.map_err(|e| broken(e.to_string()))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", address.to_string())
        .header("authorization", format!("Bearer {token}"))
        .header("accept-language", lang)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|e| broken(e.to_string()))?;
    let resp = sender.send_request(req).await.map_err(|e| broken(e.to_string()))?;
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.map_err(|e| broken(e.to_string()))?.to_bytes();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).map_err(|e| broken(format!("not JSON: {e}")))?
    };
    Ok((status, value))
}
