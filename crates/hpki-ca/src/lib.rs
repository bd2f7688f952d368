//! The product's test PKI, run by IT staff through `hpki-certs`: a CA
//! hierarchy mirroring the real HPKI one, test cards written as virtual card
//! images, assistant cards, terminal credentials, revocation, CRLs and the
//! issuance ledger.

mod crl;
mod dir;
mod error;
mod ext;
pub mod hierarchy;
mod issue;
pub mod keys;
mod ledger;
pub mod pin_policy;
pub mod vpn;

use std::path::Path;

pub use crl::{PublishedCrl, Reason, parse_duration};
pub use dir::{CaDir, CertKind, DEFAULT_CRL_BASE_URL, IssuedCert, RevocationRecord};
pub use error::CaError;
pub use hierarchy::CaRole;
pub use issue::{
    AssistantRequest, CardRequest, DEFAULT_CARD_DAYS, DEFAULT_TERMINAL_DAYS, IssuedCard, IssuedTerminal, ServerRequest,
    TerminalRequest, TsaRequest,
};
pub use ledger::LedgerEntry;
pub use vpn::{IssuedVpn, VpnRequest, VpnSide};

/// Reads a certificate file, PEM or DER.
pub fn read_certificate_file(path: &Path) -> Result<Vec<u8>, CaError> {
    let bytes = std::fs::read(path).map_err(error::CaError::io(path))?;
    certificate_from_bytes(&bytes).map_err(|detail| CaError::Corrupt { path: path.into(), detail })
}

/// The DER of a certificate given as PEM or DER.
pub fn certificate_from_bytes(bytes: &[u8]) -> Result<Vec<u8>, String> {
    // PEM, possibly after explanatory text (as `openssl x509 -text` writes).
    if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        let (_, pem) = x509_parser::pem::parse_x509_pem(bytes).map_err(|e| format!("not a PEM certificate: {e}"))?;
        if pem.label != "CERTIFICATE" {
            return Err(format!("PEM block is {:?}, not CERTIFICATE", pem.label));
        }
        Ok(pem.contents)
    } else {
        hpki_profile::holder::parse_certificate(bytes).map_err(|e| e.to_string())?;
        Ok(bytes.to_vec())
    }
}
