//! The signed attributes of a confirm signature (CAdES baseline B-B):
//!
//! | attribute | value |
//! |---|---|
//! | contentType (RFC 5652 §11.1) | id-data |
//! | messageDigest (§11.2) | SHA-256 of the RFC 8785 document bytes |
//! | signingTime (§11.3) | the gateway's clock when it built them |
//! | signing-certificate-v2 (RFC 5035) | ESSCertIDv2: SHA-256 of the card's signature certificate, its issuer and serial |
//!
//! The card signs SHA-256 of their DER (a `SET OF Attribute`, tag 0x31),
//! never the document itself: that is what binds the certificate to the
//! signature (ETSI EN 319 122-1 §5.2.2) and what any CMS verifier checks.

use std::time::Duration;

use der::asn1::{OctetString, SetOfVec, UtcTime};
use der::oid::ObjectIdentifier;
use der::{Any, Decode, Encode, Sequence};
use x509_cert::Certificate;
use x509_cert::attr::{Attribute, Attributes};
use x509_cert::ext::pkix::name::{GeneralName, GeneralNames};
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_cert::time::Time;

use crate::crypto::{cert_der, sha256};
use crate::{CadesError, oid};

/// IssuerSerial (RFC 5035): who issued the certificate, and its number.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct IssuerSerial {
    pub issuer: GeneralNames,
    pub serial_number: SerialNumber,
}

/// ESSCertIDv2 (RFC 5035). The hash algorithm's DEFAULT is SHA-256, so
/// it is left out when writing and must be SHA-256 when present.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct EssCertIdV2 {
    #[asn1(optional = "true")]
    pub hash_algorithm: Option<AlgorithmIdentifierOwned>,
    pub cert_hash: OctetString,
    #[asn1(optional = "true")]
    pub issuer_serial: Option<IssuerSerial>,
}

/// SigningCertificateV2 (RFC 5035); `policies` is never written and
/// ignored when read.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SigningCertificateV2 {
    pub certs: Vec<EssCertIdV2>,
    #[asn1(optional = "true")]
    pub policies: Option<Any>,
}

/// ESSCertID (RFC 2634, SHA-1): only read, from TSA tokens.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct EssCertId {
    pub cert_hash: OctetString,
    #[asn1(optional = "true")]
    pub issuer_serial: Option<IssuerSerial>,
}

#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SigningCertificate {
    pub certs: Vec<EssCertId>,
    #[asn1(optional = "true")]
    pub policies: Option<Any>,
}

/// The signed attributes of one confirm signature, as checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedAttributes {
    /// SHA-256 of the signed document.
    pub message_digest: [u8; 32],
    /// Unix seconds.
    pub signing_time: i64,
    /// SHA-256 of the signer's certificate (ESSCertIDv2 certHash).
    pub cert_sha256: [u8; 32],
    /// The attributes' DER: what the card signs.
    pub der: Vec<u8>,
}

impl SignedAttributes {
    /// The attributes for a document, a signer certificate (DER) and the
    /// time of building them (Unix seconds).
    pub fn build(document: &[u8], signer_cert: &[u8], signing_time: i64) -> Result<SignedAttributes, CadesError> {
        let cert = Certificate::from_der(signer_cert).map_err(CadesError::der("signer certificate"))?;
        let issuer_serial = IssuerSerial {
            issuer: vec![GeneralName::DirectoryName(cert.tbs_certificate.issuer.clone())],
            serial_number: cert.tbs_certificate.serial_number.clone(),
        };
        let cert_sha256 = sha256(signer_cert);
        let signing_cert = SigningCertificateV2 {
            certs: vec![EssCertIdV2 {
                hash_algorithm: None,
                cert_hash: octets(&cert_sha256)?,
                issuer_serial: Some(issuer_serial),
            }],
            policies: None,
        };
        let message_digest = sha256(document);
        let secs =
            u64::try_from(signing_time).map_err(|_| CadesError::Attributes("signing time before 1970".into()))?;
        let time = UtcTime::from_unix_duration(Duration::from_secs(secs))
            .map_err(|e| CadesError::Attributes(format!("signing time out of UTCTime's range: {e}")))?;
        let mut set = Attributes::new();
        for (oid, value) in [
            (oid::ID_CONTENT_TYPE, any(&oid::ID_DATA)?),
            (oid::ID_MESSAGE_DIGEST, any(&octets(&message_digest)?)?),
            (oid::ID_SIGNING_TIME, any(&Time::UtcTime(time))?),
            (oid::ID_AA_SIGNING_CERTIFICATE_V2, any(&signing_cert)?),
        ] {
            set.insert(single(oid, value)?).map_err(CadesError::der("signed attributes"))?;
        }
        let der = set.to_der().map_err(CadesError::der("signed attributes"))?;
        Ok(SignedAttributes { message_digest, signing_time, cert_sha256, der })
    }

    /// Reads attributes back (the agent, from the gateway's answer) and
    /// refuses anything but exactly the four attributes above, each with
    /// one value, in DER: the card signs nothing the gateway did not say.
    pub fn parse(der: &[u8]) -> Result<SignedAttributes, CadesError> {
        let set = Attributes::from_der(der).map_err(CadesError::der("signed attributes"))?;
        SignedAttributes::from_set(&set, der.to_vec(), Exactly::TheFour)
    }

    pub(crate) fn from_set(set: &Attributes, der: Vec<u8>, exactly: Exactly) -> Result<SignedAttributes, CadesError> {
        let bad = |m: &str| CadesError::Attributes(m.to_owned());
        if exactly == Exactly::TheFour && set.len() != 4 {
            return Err(CadesError::Attributes(format!(
                "hold {} attributes, not contentType, messageDigest, signingTime and signing-certificate-v2",
                set.len()
            )));
        }
        let content_type: ObjectIdentifier = value_of(set, oid::ID_CONTENT_TYPE, "contentType")?;
        if content_type != oid::ID_DATA {
            return Err(CadesError::Attributes(format!("name content type {content_type}, not id-data")));
        }
        let digest: OctetString = value_of(set, oid::ID_MESSAGE_DIGEST, "messageDigest")?;
        let message_digest: [u8; 32] =
            digest.as_bytes().try_into().map_err(|_| bad("hold a messageDigest that is not 32 bytes (SHA-256)"))?;
        let time: Time = value_of(set, oid::ID_SIGNING_TIME, "signingTime")?;
        let signing_time =
            i64::try_from(time.to_unix_duration().as_secs()).map_err(|_| bad("hold a far signingTime"))?;
        let signing_cert: SigningCertificateV2 =
            value_of(set, oid::ID_AA_SIGNING_CERTIFICATE_V2, "signing-certificate-v2")?;
        let [first, ..] = signing_cert.certs.as_slice() else {
            return Err(bad("hold a signing-certificate-v2 naming no certificate"));
        };
        if first.hash_algorithm.as_ref().is_some_and(|a| a.oid != oid::ID_SHA_256) {
            return Err(bad("hold an ESSCertIDv2 whose hash is not SHA-256"));
        }
        let cert_sha256: [u8; 32] =
            first.cert_hash.as_bytes().try_into().map_err(|_| bad("hold an ESSCertIDv2 hash that is not 32 bytes"))?;
        Ok(SignedAttributes { message_digest, signing_time, cert_sha256, der })
    }

    /// Whether these attributes are for `document` signed with `cert`.
    pub fn check(&self, document: &[u8], cert: &[u8]) -> Result<(), CadesError> {
        if self.message_digest != sha256(document) {
            return Err(CadesError::DigestMismatch);
        }
        if self.cert_sha256 != sha256(cert) {
            return Err(CadesError::SigningCertificateMismatch);
        }
        Ok(())
    }

    /// SHA-256 of the DER: what a card signs (as a PKCS#1 DigestInfo).
    pub fn digest(&self) -> [u8; 32] {
        sha256(&self.der)
    }
}

/// Whether signed attributes beyond the four are allowed: not in what the
/// gateway builds for a card, but a signature made elsewhere (a document
/// received, DATA-5) may carry more (OpenSSL adds smimeCapabilities,
/// others a commitment type); they are signed, and read past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exactly {
    TheFour,
    AtLeastTheFour,
}

/// The single value of attribute `oid`, decoded; absent, repeated or
/// multi-valued attributes are refused.
pub(crate) fn value_of<T: for<'a> Decode<'a>>(
    set: &Attributes,
    oid: ObjectIdentifier,
    name: &str,
) -> Result<T, CadesError> {
    let mut found = set.iter().filter(|a| a.oid == oid);
    let (Some(attr), None) = (found.next(), found.next()) else {
        return Err(CadesError::Attributes(format!("must hold {name} exactly once")));
    };
    let [value] = attr.values.as_slice() else {
        return Err(CadesError::Attributes(format!("hold {name} with {} values, not one", attr.values.len())));
    };
    let unreadable = |e: der::Error| CadesError::Attributes(format!("hold an unreadable {name}: {e}"));
    T::from_der(&value.to_der().map_err(unreadable)?).map_err(unreadable)
}

pub(crate) fn single(oid: ObjectIdentifier, value: Any) -> Result<Attribute, CadesError> {
    let values = SetOfVec::try_from(vec![value]).map_err(CadesError::der("attribute value"))?;
    Ok(Attribute { oid, values })
}

pub(crate) fn any<T: Encode>(value: &T) -> Result<Any, CadesError> {
    Any::from_der(&value.to_der().map_err(CadesError::der("attribute value"))?)
        .map_err(CadesError::der("attribute value"))
}

fn octets(bytes: &[u8]) -> Result<OctetString, CadesError> {
    OctetString::new(bytes).map_err(CadesError::der("octet string"))
}

/// DER of a certificate that was parsed here (for callers holding one).
pub fn certificate_sha256(cert: &Certificate) -> Result<[u8; 32], CadesError> {
    Ok(sha256(&cert_der(cert)?))
}
