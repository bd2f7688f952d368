//! A record's container read back and checked against its document with
//! nothing but what it embeds: the link that fails is named. Path
//! validation of the certificates found (at the time-stamps' genTime) is
//! the caller's, with `hpki_profile` and the container's CRLs.

use cms::cert::CertificateChoices;
use cms::signed_data::SignerIdentifier;
use der::Encode;

use crate::attributes::Exactly;
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
    /// Archive time-stamps, each covering all before it, oldest first.
    pub archive_timestamps: Vec<TimeStampToken>,
    pub signature: Vec<u8>,
}

impl Opened {
    /// CAdES baseline level shown: B-B, B-T (a signature time-stamp),
    /// B-LT (and validation data for signer and TSA), B-LTA (and archive
    /// time-stamps over all of it).
    pub fn level(&self) -> &'static str {
        match (self.timestamps.is_empty(), self.crls.is_empty(), self.archive_timestamps.is_empty()) {
            (true, _, _) => "B-B",
            (false, true, _) => "B-T",
            (false, false, true) => "B-LT",
            (false, false, false) => "B-LTA",
        }
    }

    /// Every time-stamp in the order each vouches for the one before:
    /// the signature time-stamps, then the archive time-stamps.
    pub fn time_stamp_chain(&self) -> impl Iterator<Item = &TimeStampToken> {
        self.timestamps.iter().chain(self.archive_timestamps.iter())
    }
}

/// Checks `p7s` against `document`: the digest, the signer certificate's
/// binding, the signature, and each signature time-stamp's own signature
/// and imprint, and each archive time-stamp's imprint, index and place in
/// the chain (each covers every time-stamp before it).
pub fn open(p7s: &[u8], document: &[u8]) -> Result<Opened, CadesError> {
    let container = Container::from_der(p7s)?;
    let info = container.signer_info()?;
    if info.digest_alg.oid != oid::ID_SHA_256 {
        return Err(CadesError::Algorithm(format!("digest {}", info.digest_alg.oid)));
    }
    let set = info.signed_attrs.as_ref().ok_or_else(|| CadesError::Attributes("are missing".into()))?;
    let der = set.to_der().map_err(CadesError::der("signed attributes"))?;
    let attributes = SignedAttributes::from_set(set, der, Exactly::AtLeastTheFour)?;
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
    let newest_signature_stamp = timestamps.last().map_or(i64::MIN, |t| t.gen_time);
    let archive_timestamps = archive_chain(&container, document, newest_signature_stamp)?;
    Ok(Opened {
        attributes,
        signer_cert,
        certificates: container.certificates()?,
        crls: container.crls()?,
        timestamps,
        archive_timestamps,
        signature,
    })
}

/// The archive time-stamps, checked and ordered: a later one covers more
/// unsigned attribute values (every earlier time-stamp among them) and is
/// not older. Ordering by genTime alone cannot work: the one applied at
/// confirm has the signature time-stamp's second.
fn archive_chain(container: &Container, document: &[u8], after: i64) -> Result<Vec<TimeStampToken>, CadesError> {
    let mut archives = Vec::new();
    for der in container.archive_timestamps()? {
        let token = TimeStampToken::from_der(&der)?;
        let imprint = (token.imprint_algorithm, token.imprint.clone());
        let index = container.check_archive_timestamp(&der, document, &imprint)?;
        archives.push((index, token, der));
    }
    archives.sort_by_key(|(index, _, _)| index.unsigned_attr_values.len());
    let mut earlier: Vec<(der::oid::ObjectIdentifier, Vec<u8>)> =
        container.signature_timestamps()?.into_iter().map(|t| (oid::ID_AA_SIGNATURE_TIME_STAMP_TOKEN, t)).collect();
    let mut newest_time = after;
    let mut chain = Vec::new();
    for (n, (index, token, der)) in archives.into_iter().enumerate() {
        for (attr, value) in &earlier {
            if !index.unsigned_attr_values.contains(&Container::unsigned_value_hash(&index.algorithm, *attr, value)?) {
                return Err(CadesError::Archive(format!("number {} does not cover an earlier time-stamp", n + 1)));
            }
        }
        if token.gen_time < newest_time {
            return Err(CadesError::Archive(format!("number {} is older than a time-stamp it covers", n + 1)));
        }
        newest_time = token.gen_time;
        earlier.push((oid::ID_AA_ETS_ARCHIVE_TIMESTAMP_V3, der));
        chain.push(token);
    }
    Ok(chain)
}
