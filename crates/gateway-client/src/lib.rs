//! A clinic terminal's connection to the gateway: mutual TLS 1.3 with the
//! terminal certificate, HTTP/1.1 keep-alive, and the TLS exporter value of
//! the connection that a card login signs (channel binding).
//!
//! A login must be sent on the very connection whose channel binding the card
//! signed; [`Connection`] therefore owns one TLS connection and never
//! reconnects behind the caller's back.

mod credentials;
mod error;

use std::sync::Arc;

use bytes::Bytes;
use hpki_protocol::wire::{Challenge, ErrorBody, LoginRequest, LoginResponse, WhoAmI};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;

pub use credentials::{TerminalCredentials, client_config};
pub use error::GatewayError;

/// Where the gateway is and how to recognise it.
#[derive(Debug, Clone)]
pub struct GatewayAddress {
    /// `host:port` to connect to.
    pub address: String,
    /// The name the gateway's certificate must carry.
    pub server_name: String,
}

/// An HTTP answer: status and body bytes.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Bytes,
}

/// One mTLS connection to the gateway.
pub struct Connection {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    channel_binding: [u8; hpki_protocol::CHANNEL_BINDING_LEN],
    host: String,
}

impl Connection {
    /// Connects and completes the TLS handshake (terminal certificate
    /// included).
    pub async fn open(gateway: &GatewayAddress, config: Arc<rustls::ClientConfig>) -> Result<Connection, GatewayError> {
        let name = ServerName::try_from(gateway.server_name.clone())
            .map_err(|_| GatewayError::Config(format!("{:?} is not a valid server name", gateway.server_name)))?;
        let tcp = tokio::net::TcpStream::connect(&gateway.address)
            .await
            .map_err(|e| GatewayError::Unreachable { address: gateway.address.clone(), source: e })?;
        let _ = tcp.set_nodelay(true);
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| GatewayError::Tls { address: gateway.address.clone(), source: e })?;
        let mut channel_binding = [0u8; hpki_protocol::CHANNEL_BINDING_LEN];
        tls.get_ref()
            .1
            .export_keying_material(&mut channel_binding, hpki_protocol::CHANNEL_BINDING_LABEL, None)
            .map_err(|e| GatewayError::Protocol(format!("no TLS exporter value: {e}")))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| GatewayError::Protocol(format!("HTTP handshake: {e}")))?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "gateway connection ended");
            }
        });
        Ok(Connection { sender, channel_binding, host: gateway.server_name.clone() })
    }

    /// The TLS exporter value of this connection (what a login signs).
    pub fn channel_binding(&self) -> &[u8; hpki_protocol::CHANNEL_BINDING_LEN] {
        &self.channel_binding
    }

    /// `false` once the gateway has closed the connection.
    pub fn is_open(&self) -> bool {
        !self.sender.is_closed()
    }

    /// Sends one request and reads the whole answer.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Vec<u8>,
        bearer: Option<&str>,
    ) -> Result<Answer, GatewayError> {
        let mut req = hyper::Request::builder().method(method).uri(path).header("host", self.host.as_str());
        if !body.is_empty() {
            req = req.header("content-type", "application/json");
        }
        if let Some(t) = bearer {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| GatewayError::Protocol(format!("cannot build the request: {e}")))?;
        // Failing here, nothing was sent: safe to send again elsewhere.
        self.sender.ready().await.map_err(|_| GatewayError::Closed)?;
        // Failing here, the request may have reached the gateway.
        let resp = self.sender.send_request(req).await.map_err(|e| GatewayError::Interrupted(e.to_string()))?;
        let status = resp.status().as_u16();
        let content_type =
            resp.headers().get(hyper::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| GatewayError::Protocol(format!("reading the answer: {e}")))?
            .to_bytes();
        Ok(Answer { status, content_type, body })
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &mut self,
        method: &str,
        path: &str,
        body: Vec<u8>,
        bearer: Option<&str>,
    ) -> Result<T, GatewayError> {
        let answer = self.send(method, path, body, bearer).await?;
        if !(200..300).contains(&answer.status) {
            return Err(refusal(&answer));
        }
        serde_json::from_slice(&answer.body)
            .map_err(|e| GatewayError::Protocol(format!("unexpected answer to {path}: {e}")))
    }

    /// `POST /v1/auth/challenge`.
    pub async fn challenge(&mut self) -> Result<Challenge, GatewayError> {
        self.call("POST", "/v1/auth/challenge", b"{}".to_vec(), None).await
    }

    /// `POST /v1/auth/login`.
    pub async fn login(&mut self, request: &LoginRequest) -> Result<LoginResponse, GatewayError> {
        let body = serde_json::to_vec(request).map_err(|e| GatewayError::Protocol(e.to_string()))?;
        self.call("POST", "/v1/auth/login", body, None).await
    }

    /// `GET /v1/auth/whoami`.
    pub async fn whoami(&mut self, session: &str) -> Result<WhoAmI, GatewayError> {
        self.call("GET", "/v1/auth/whoami", Vec::new(), Some(session)).await
    }

    /// `POST /v1/auth/logout`.
    pub async fn logout(&mut self, session: &str) -> Result<(), GatewayError> {
        let answer = self.send("POST", "/v1/auth/logout", Vec::new(), Some(session)).await?;
        if (200..300).contains(&answer.status) { Ok(()) } else { Err(refusal(&answer)) }
    }
}

/// The gateway's refusal in an answer, with its stable code.
pub fn refusal(answer: &Answer) -> GatewayError {
    match serde_json::from_slice::<ErrorBody>(&answer.body) {
        Ok(e) => GatewayError::Refused { status: answer.status, code: e.error, message: e.message },
        Err(_) => GatewayError::Refused {
            status: answer.status,
            code: "http_error".into(),
            message: String::from_utf8_lossy(&answer.body).chars().take(200).collect(),
        },
    }
}
