//! The terminal's credentials (from `hpki-certs terminal issue`) and the
//! gateway's CA, turned into a rustls client configuration.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::GatewayError;

/// PEM files of a terminal.
#[derive(Debug, Clone)]
pub struct TerminalCredentials {
    /// The terminal certificate.
    pub certificate: PathBuf,
    /// Its private key.
    pub key: PathBuf,
    /// The terminal CA chain (`ca-chain.pem`); its first certificate, the
    /// issuing CA, is sent along with the terminal certificate.
    pub chain: PathBuf,
}

impl TerminalCredentials {
    /// The files `hpki-certs terminal issue --out DIR` writes.
    pub fn in_dir(dir: &Path) -> TerminalCredentials {
        TerminalCredentials {
            certificate: dir.join("terminal.pem"),
            key: dir.join("terminal.key"),
            chain: dir.join("ca-chain.pem"),
        }
    }
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, GatewayError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| GatewayError::Config(format!("{}: {e}", path.display())))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| GatewayError::Config(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(GatewayError::Config(format!("{}: no certificate in the file", path.display())));
    }
    Ok(certs)
}

/// TLS 1.3 only, on ring, trusting `gateway_ca` (PEM) for the gateway and
/// presenting the terminal certificate. No session resumption: every
/// connection shows the terminal certificate again.
pub fn client_config(
    gateway_ca: &Path,
    terminal: &TerminalCredentials,
) -> Result<Arc<rustls::ClientConfig>, GatewayError> {
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(gateway_ca)? {
        roots.add(c).map_err(|e| GatewayError::Config(format!("{}: {e}", gateway_ca.display())))?;
    }
    let mut chain = certs(&terminal.certificate)?;
    if chain.len() == 1 {
        chain.extend(certs(&terminal.chain)?.into_iter().take(1));
    }
    let key = PrivateKeyDer::from_pem_file(&terminal.key)
        .map_err(|e| GatewayError::Config(format!("{}: {e}", terminal.key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| GatewayError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| GatewayError::Config(format!("the terminal certificate and key do not go together: {e}")))?;
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}
