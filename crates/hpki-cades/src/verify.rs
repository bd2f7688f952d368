//! A record's container read back and checked against its document with
//! nothing but what it embeds: the link that fails is named. Path
//! validation of the certificates found (at the time-stamps' genTime) is
//! the caller's, with `hpki_profile` and the container's CRLs.

use cms::cert::CertificateChoices;
use cms::signed_data::SignerIdentifier;
use der::Encode;

use crate::crypto::{self, cert_der, sha256};
use crate::{CadesError, Container, SignedAttributes, TimeStampToken, oid};

/// What a container showed about itself.
#[derive(Debug, Clone)]
pub struct Opened {
    pub attributes: SignedAttributes,
    /// The signer's certificate (DER), the one sid and ESSCertIDv2 name.
    pub signer_cert: Vec<u8>,
    /// Every embedded certificate and CRL (DER): the validation data.
    pub certificates: Vec<Vec<u8>>,
    pub crls: Vec<Vec<u8>>,
    /// Signature time-stamps over the signature value, oldest first.
    pub timestamps: Vec<TimeStampToken>,
    pub signature: Vec<u8>,
}

impl Opened {
    /// CAdES baseline level shown: B-B, B-T (a signature time-stamp),
    /// B-LT (and validation data for signer and TSA).
    pub fn level(&self) -> &'static str {
        match (self.timestamps.is_empty(), self.crls.is_empty()) {
            (true, _) => "B-B",
            (false, true) => "B-T",
            (false, false) => "B-LT",
        }
    }
}

/// Checks `p7s` against `document`: the digest, the signer certificate's
/// binding, the signature, and each signature time-stamp's own signature
/// and imprint.
pub fn open(p7s: &[u8], document: &[u8]) -> Result<Opened, CadesError> {
    let container = Container::from_der(p7s)?;
    let info = container.signer_info()?;
    if info.digest_alg.oid != oid::ID_SHA_256 {
        return Err(CadesError::Algorithm(format!("digest {}", info.digest_alg.oid)));
    }
    let set = info.signed_attrs.as_ref().ok_or_else(|| CadesError::Attributes("are missing".into()))?;
    let der = set.to_der().map_err(CadesError::der("signed attributes"))?;
    let attributes = SignedAttributes::from_set(set, der)?;
    if attributes.message_digest != sha256(document) {
        return Err(CadesError::DigestMismatch);
    }
    let signer = container
        .signed_data
        .certificates
        .iter()
        .flat_map(|s| s.0.iter())
        .find_map(|c| match (c, &info.sid) {
            (CertificateChoices::Certificate(c), SignerIdentifier::IssuerAndSerialNumber(is))
                if c.tbs_certificate.issuer == is.issuer && c.tbs_certificate.serial_number == is.serial_number =>
            {
                Some(c)
            }
            _ => None,
        })
        .ok_or_else(|| CadesError::Container("does not hold the signer's certificate".into()))?;
    let signer_cert = cert_der(signer)?;
    if attributes.cert_sha256 != sha256(&signer_cert) {
        return Err(CadesError::SigningCertificateMismatch);
    }
    let signature = info.signature.as_bytes().to_vec();
    crypto::verify(signer, &info.digest_alg.oid, &info.signature_algorithm.oid, &attributes.der, &signature)?;
    let mut timestamps = container
        .signature_timestamps()?
        .iter()
        .map(|t| {
            let token = TimeStampToken::from_der(t)?;
            token.covers(&signature)?;
            Ok(token)
        })
        .collect::<Result<Vec<_>, CadesError>>()?;
    timestamps.sort_by_key(|t| t.gen_time);
    Ok(Opened {
        attributes,
        signer_cert,
        certificates: container.certificates()?,
        crls: container.crls()?,
        timestamps,
        signature,
    })
}
