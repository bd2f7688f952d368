use thiserror::Error;

#[derive(Debug, Error)]
pub enum GatewayError {
    #[error("the gateway at {address} cannot be reached: {source}")]
    Unreachable {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS with the gateway at {address} failed: {source}")]
    Tls {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the gateway closed the connection")]
    Closed,
    #[error("the connection to the gateway broke during the request: {0}")]
    Interrupted(String),
    #[error("the gateway refused ({status} {code}): {message}")]
    Refused { status: u16, code: String, message: String },
    #[error("unexpected answer from the gateway: {0}")]
    Protocol(String),
    #[error("terminal credentials: {0}")]
    Config(String),
}

impl GatewayError {
    /// The gateway's refusal code, if it refused.
    pub fn code(&self) -> Option<&str> {
        match self {
            GatewayError::Refused { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether the fault is the link (worth retrying as it is), not the
    /// request.
    pub fn is_transport(&self) -> bool {
        matches!(
            self,
            GatewayError::Unreachable { .. }
                | GatewayError::Tls { .. }
                | GatewayError::Closed
                | GatewayError::Interrupted(_)
        )
    }
}
