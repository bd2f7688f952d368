//! TLS for the institution listener, and the HPKI validator, both built from
//! files so that they can be rebuilt when the files change.
//!
//! TLS 1.3 only, rustls on ring. A client certificate is required: a terminal
//! certificate from a configured terminal CA, checked by rustls' verifier with
//! the terminal CRLs, where a CRL past its nextUpdate fails closed
//! (`enforce_revocation_expiration`) and a missing one too. The CA itself is
//! the trust anchor, so nothing else the root issues can act as a terminal.
//! Sessions are never resumed (see `server_config`).

use std::path::Path;
use std::sync::Arc;

use hpki_profile::{
    AcceptedPolicies, DEFAULT_MAX_INTERMEDIATES, Oid, Purpose, Revocation, TrustScope, Validator, ValidatorConfig,
};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: {detail}")]
    File { path: String, detail: String },
    #[error("TLS configuration: {0}")]
    Tls(String),
    #[error("HPKI validator: {0}")]
    Hpki(String),
}

fn file_err(path: &Path, detail: impl ToString) -> LoadError {
    LoadError::File { path: path.display().to_string(), detail: detail.to_string() }
}

/// Every certificate in a PEM file, or the one certificate of a DER file.
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, LoadError> {
    let bytes = std::fs::read(path).map_err(|e| file_err(path, e))?;
    if bytes.starts_with(b"-----BEGIN") {
        let certs =
            CertificateDer::pem_slice_iter(&bytes).collect::<Result<Vec<_>, _>>().map_err(|e| file_err(path, e))?;
        if certs.is_empty() {
            return Err(file_err(path, "no CERTIFICATE in the PEM file"));
        }
        Ok(certs)
    } else {
        hpki_profile::holder::parse_certificate(&bytes).map_err(|e| file_err(path, e))?;
        Ok(vec![CertificateDer::from(bytes)])
    }
}

/// A CRL file, DER or PEM.
pub fn crl(path: &Path) -> Result<CertificateRevocationListDer<'static>, LoadError> {
    let bytes = std::fs::read(path).map_err(|e| file_err(path, e))?;
    let der = if bytes.starts_with(b"-----BEGIN") {
        CertificateRevocationListDer::from_pem_slice(&bytes).map_err(|e| file_err(path, e))?
    } else {
        CertificateRevocationListDer::from(bytes)
    };
    x509_parser::parse_x509_crl(der.as_ref()).map_err(|e| file_err(path, format!("not a CRL: {e}")))?;
    Ok(der)
}

/// The institution listener's TLS configuration.
pub fn server_config(config: &Config) -> Result<Arc<ServerConfig>, LoadError> {
    let l = &config.listener;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for p in &l.terminal_ca {
        let p = config.path(p);
        for c in certificates(&p)? {
            roots.add(c).map_err(|e| file_err(&p, e))?;
        }
    }
    let crls = l.terminal_crls.iter().map(|p| crl(&config.path(p))).collect::<Result<Vec<_>, _>>()?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .with_crls(crls)
        .enforce_revocation_expiration()
        .build()
        .map_err(|e| LoadError::Tls(e.to_string()))?;
    let cert_path = config.path(&l.certificate);
    let chain = certificates(&cert_path)?;
    let key_path = config.path(&l.key);
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| file_err(&key_path, e))?;
    let mut server = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| LoadError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| LoadError::Tls(e.to_string()))?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    // No resumption: a resumed TLS 1.3 session skips the client certificate,
    // so a terminal revoked since its first handshake could come back on a
    // ticket. Every connection shows its certificate afresh.
    server.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    server.send_tls13_tickets = 0;
    Ok(Arc::new(server))
}

/// The patient listener's TLS configuration: server certificate only
/// (patients have no client certificates; NET-2), TLS 1.2 and 1.3 so that
/// patients' older browsers still connect, forward-secret suites only.
pub fn patient_server_config(config: &Config) -> Result<Option<Arc<ServerConfig>>, LoadError> {
    let Some(p) = &config.patients else { return Ok(None) };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cert_path = config.path(&p.certificate);
    let chain = certificates(&cert_path)?;
    let key_path = config.path(&p.key);
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| file_err(&key_path, e))?;
    let mut server = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| LoadError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| LoadError::Tls(e.to_string()))?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(server)))
}

/// The HPKI path validator for card certificates (login).
pub fn validator(config: &Config) -> Result<Arc<Validator>, LoadError> {
    let h = &config.hpki;
    let crls =
        h.crls.iter().map(|p| crl(&config.path(p)).map(|c| c.as_ref().to_vec())).collect::<Result<Vec<_>, _>>()?;
    validator_with_crls(config, crls)
}

/// [`validator`] with `crls` instead of the configured ones: the
/// validation data a signed record carries (`records verify`).
pub fn validator_with_crls(config: &Config, crls: Vec<Vec<u8>>) -> Result<Arc<Validator>, LoadError> {
    let h = &config.hpki;
    let read_all = |paths: &[std::path::PathBuf]| -> Result<Vec<Vec<u8>>, LoadError> {
        let mut out = Vec::new();
        for p in paths {
            out.extend(certificates(&config.path(p))?.into_iter().map(|c| c.as_ref().to_vec()));
        }
        Ok(out)
    };
    let mut policies = AcceptedPolicies::hpki();
    if h.accept_test_policies {
        policies = policies.with_test_policies();
    }
    for text in &h.accept_authentication_policies {
        policies.accept(Purpose::Authentication, Oid::parse(text).map_err(|e| LoadError::Hpki(e.to_string()))?);
    }
    let mut scopes = Vec::new();
    for s in &h.scope {
        let grant = s.grant().map_err(LoadError::Hpki)?;
        let mut certs = certificates(&config.path(&s.ca))?;
        let (Some(ca), true) = (certs.pop(), certs.is_empty()) else {
            return Err(LoadError::Hpki(format!("hpki.scope {}: give exactly one CA certificate", s.ca.display())));
        };
        scopes.push(TrustScope { ca: ca.as_ref().to_vec(), grant });
    }
    let v = Validator::new(ValidatorConfig {
        anchors: read_all(&h.anchors)?,
        intermediates: read_all(&h.intermediates)?,
        crls,
        policies,
        revocation: Revocation::Required,
        scopes,
        max_intermediates: DEFAULT_MAX_INTERMEDIATES,
    })
    .map_err(|e| LoadError::Hpki(e.to_string()))?;
    Ok(Arc::new(v))
}

/// The validator of TSA certificates (`[timestamps]`): plain RFC 5280
/// paths to the TSA anchors, revocation required. The critical
/// id-kp-timeStamping EKU is checked with the token (`hpki_cades::tsp`).
pub fn tsa_validator(config: &Config) -> Result<Option<Arc<Validator>>, LoadError> {
    if config.timestamps.is_none() {
        return Ok(None);
    }
    tsa_validator_with_crls(config, configured_tsa_crls(config)?)
}

/// The CRLs `[timestamps].crls` names (DER); none without `[timestamps]`.
pub fn configured_tsa_crls(config: &Config) -> Result<Vec<Vec<u8>>, LoadError> {
    let Some(t) = &config.timestamps else { return Ok(Vec::new()) };
    t.crls.iter().map(|p| crl(&config.path(p)).map(|c| c.as_ref().to_vec())).collect()
}

/// [`tsa_validator`] with `crls` instead of the configured ones.
pub fn tsa_validator_with_crls(config: &Config, crls: Vec<Vec<u8>>) -> Result<Option<Arc<Validator>>, LoadError> {
    let Some(t) = &config.timestamps else { return Ok(None) };
    let read_all = |paths: &[std::path::PathBuf]| -> Result<Vec<Vec<u8>>, LoadError> {
        let mut out = Vec::new();
        for p in paths {
            out.extend(certificates(&config.path(p))?.into_iter().map(|c| c.as_ref().to_vec()));
        }
        Ok(out)
    };
    let v = Validator::new(ValidatorConfig {
        anchors: read_all(&t.anchors)?,
        intermediates: read_all(&t.intermediates)?,
        crls,
        policies: AcceptedPolicies::hpki(),
        revocation: Revocation::Required,
        scopes: Vec::new(),
        max_intermediates: DEFAULT_MAX_INTERMEDIATES,
    })
    .map_err(|e| LoadError::Hpki(format!("timestamps: {e}")))?;
    Ok(Some(Arc::new(v)))
}

/// The configured TSA client with its validator, if `[timestamps]` is set.
pub fn timestamper(config: &Config) -> Result<Option<Arc<crate::signatures::Timestamper>>, LoadError> {
    let (Some(section), Some(validator)) = (&config.timestamps, tsa_validator(config)?) else { return Ok(None) };
    crate::signatures::Timestamper::new(section, validator)
        .map(|t| Some(Arc::new(t)))
        .map_err(|e| LoadError::Hpki(format!("timestamps: {e}")))
}

/// The earliest nextUpdate among the configured CRLs (Unix seconds), for
/// readiness: a stale CRL makes the gateway not ready — the TSA's too,
/// since without a current one every confirm is refused.
pub fn earliest_crl_next_update(config: &Config) -> Result<Option<i64>, LoadError> {
    let mut earliest: Option<i64> = None;
    let tsa_crls = config.timestamps.iter().flat_map(|t| t.crls.iter());
    for p in config.listener.terminal_crls.iter().chain(config.hpki.crls.iter()).chain(tsa_crls) {
        let der = crl(&config.path(p))?;
        let (_, c) = x509_parser::parse_x509_crl(der.as_ref()).map_err(|e| file_err(p, e))?;
        if let Some(n) = c.next_update() {
            let t = n.timestamp();
            earliest = Some(earliest.map_or(t, |e| e.min(t)));
        }
    }
    Ok(earliest)
}
