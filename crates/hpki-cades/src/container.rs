//! The `signature.p7s` of a record: a `ContentInfo` holding a detached
//! `SignedData` with one `SignerInfo` — the card's signature over the
//! [`SignedAttributes`] — and the validation data (EN 319 122-1 B-LT allows
//! it in `certificates` and `crls`): the signer's chain and the TSA's, and
//! the CRLs that showed them unrevoked.
//!
//! A container only grows: a signature time-stamp (B-T) is appended as an
//! unsigned attribute; nothing signed is ever rewritten.

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::revocation::{RevocationInfoChoice, RevocationInfoChoices};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{OctetString, SetOfVec};
use der::{Any, Decode, Encode};
use x509_cert::Certificate;
use x509_cert::attr::Attributes;
use x509_cert::crl::CertificateList;
use x509_cert::spki::AlgorithmIdentifierOwned;

use crate::attributes::{any, single};
use crate::{CadesError, SignedAttributes, oid};

/// One record's signature container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    pub(crate) signed_data: SignedData,
}

fn sha256_alg() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned { oid: oid::ID_SHA_256, parameters: None }
}

impl Container {
    /// The container of a card signature over `attributes`, with the
    /// signer's certificate first and the rest of the validation data.
    pub fn assemble(
        attributes: &SignedAttributes,
        signature: &[u8],
        signer_cert: &[u8],
        chain: &[Vec<u8>],
        crls: &[Vec<u8>],
    ) -> Result<Container, CadesError> {
        let signer = Certificate::from_der(signer_cert).map_err(CadesError::der("signer certificate"))?;
        let sid = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: signer.tbs_certificate.issuer.clone(),
            serial_number: signer.tbs_certificate.serial_number.clone(),
        });
        let signed_attrs = Attributes::from_der(&attributes.der).map_err(CadesError::der("signed attributes"))?;
        let signer_info = SignerInfo {
            version: CmsVersion::V1,
            sid,
            digest_alg: sha256_alg(),
            signed_attrs: Some(signed_attrs),
            signature_algorithm: AlgorithmIdentifierOwned { oid: oid::RSA_ENCRYPTION, parameters: Some(Any::null()) },
            signature: OctetString::new(signature).map_err(CadesError::der("signature"))?,
            unsigned_attrs: None,
        };
        let mut certificates = SetOfVec::new();
        for der in std::iter::once(signer_cert).chain(chain.iter().map(Vec::as_slice)) {
            let cert = Certificate::from_der(der).map_err(CadesError::der("certificate"))?;
            // The same certificate in both chains (a shared root) once.
            if !certificates.iter().any(|c| c == &CertificateChoices::Certificate(cert.clone())) {
                certificates.insert(CertificateChoices::Certificate(cert)).map_err(CadesError::der("certificates"))?;
            }
        }
        let mut revocation = SetOfVec::new();
        for der in crls {
            let crl = CertificateList::from_der(der).map_err(CadesError::der("CRL"))?;
            if !revocation.iter().any(|c| c == &RevocationInfoChoice::Crl(crl.clone())) {
                revocation.insert(RevocationInfoChoice::Crl(crl)).map_err(CadesError::der("crls"))?;
            }
        }
        let signed_data = SignedData {
            version: CmsVersion::V1,
            digest_algorithms: SetOfVec::try_from(vec![sha256_alg()]).map_err(CadesError::der("digest algorithms"))?,
            encap_content_info: EncapsulatedContentInfo { econtent_type: oid::ID_DATA, econtent: None },
            certificates: Some(CertificateSet(certificates)),
            crls: (!revocation.is_empty()).then_some(RevocationInfoChoices(revocation)),
            signer_infos: SignerInfos(SetOfVec::try_from(vec![signer_info]).map_err(CadesError::der("signer infos"))?),
        };
        Ok(Container { signed_data })
    }

    /// Reads a `signature.p7s` (DER `ContentInfo`).
    pub fn from_der(der: &[u8]) -> Result<Container, CadesError> {
        let info = ContentInfo::from_der(der).map_err(CadesError::der("ContentInfo"))?;
        if info.content_type != oid::ID_SIGNED_DATA {
            return Err(CadesError::Container(format!("holds {}, not SignedData", info.content_type)));
        }
        let signed_data: SignedData = info.content.decode_as().map_err(CadesError::der("SignedData"))?;
        let container = Container { signed_data };
        container.signer_info()?;
        Ok(container)
    }

    pub fn to_der(&self) -> Result<Vec<u8>, CadesError> {
        let info = ContentInfo {
            content_type: oid::ID_SIGNED_DATA,
            content: Any::encode_from(&self.signed_data).map_err(CadesError::der("SignedData"))?,
        };
        info.to_der().map_err(CadesError::der("ContentInfo"))
    }

    /// The one SignerInfo (a record has one signer).
    pub(crate) fn signer_info(&self) -> Result<&SignerInfo, CadesError> {
        match self.signed_data.signer_infos.0.as_slice() {
            [one] => Ok(one),
            many => Err(CadesError::Container(format!("has {} signers, not one", many.len()))),
        }
    }

    /// The card's signature value: what a signature time-stamp covers.
    pub fn signature_value(&self) -> Result<Vec<u8>, CadesError> {
        Ok(self.signer_info()?.signature.as_bytes().to_vec())
    }

    /// Every certificate embedded (DER).
    pub fn certificates(&self) -> Result<Vec<Vec<u8>>, CadesError> {
        let Some(set) = &self.signed_data.certificates else { return Ok(Vec::new()) };
        set.0
            .iter()
            .filter_map(|c| match c {
                CertificateChoices::Certificate(c) => Some(c.to_der().map_err(CadesError::der("certificate"))),
                CertificateChoices::Other(_) => None,
            })
            .collect()
    }

    /// Every CRL embedded (DER).
    pub fn crls(&self) -> Result<Vec<Vec<u8>>, CadesError> {
        let Some(set) = &self.signed_data.crls else { return Ok(Vec::new()) };
        set.0
            .iter()
            .filter_map(|c| match c {
                RevocationInfoChoice::Crl(c) => Some(c.to_der().map_err(CadesError::der("CRL"))),
                RevocationInfoChoice::Other(_) => None,
            })
            .collect()
    }

    /// Adds validation data (say, the TSA's chain and CRLs once a token is
    /// in). These fields are outside what the card signed.
    pub fn add_validation_data(&mut self, certs: &[Vec<u8>], crls: &[Vec<u8>]) -> Result<(), CadesError> {
        let set = self.signed_data.certificates.get_or_insert_with(|| CertificateSet(SetOfVec::new()));
        for der in certs {
            let c =
                CertificateChoices::Certificate(Certificate::from_der(der).map_err(CadesError::der("certificate"))?);
            if !set.0.iter().any(|have| have == &c) {
                set.0.insert(c).map_err(CadesError::der("certificates"))?;
            }
        }
        if !crls.is_empty() {
            let set = self.signed_data.crls.get_or_insert_with(|| RevocationInfoChoices(SetOfVec::new()));
            for der in crls {
                let c = RevocationInfoChoice::Crl(CertificateList::from_der(der).map_err(CadesError::der("CRL"))?);
                if !set.0.iter().any(|have| have == &c) {
                    set.0.insert(c).map_err(CadesError::der("crls"))?;
                }
            }
        }
        Ok(())
    }

    /// Appends a signature time-stamp token (CAdES-T) to the SignerInfo's
    /// unsigned attributes. The token must already have been checked
    /// against this container's signature value.
    pub fn add_signature_timestamp(&mut self, token_der: &[u8]) -> Result<(), CadesError> {
        let token = ContentInfo::from_der(token_der).map_err(CadesError::der("time-stamp token"))?;
        self.add_unsigned(oid::ID_AA_SIGNATURE_TIME_STAMP_TOKEN, any(&token)?)
    }

    /// Appends one unsigned attribute with one value. RFC 5126 §6.1.1 and
    /// EN 319 122-1: one attribute instance per token (several TSAs, or
    /// renewals, each add their own).
    pub(crate) fn add_unsigned(&mut self, attr_type: der::oid::ObjectIdentifier, value: Any) -> Result<(), CadesError> {
        let infos = &mut self.signed_data.signer_infos.0;
        let mut list: Vec<SignerInfo> = std::mem::take(infos).into_vec();
        let [info] = list.as_mut_slice() else {
            return Err(CadesError::Container(format!("has {} signers, not one", list.len())));
        };
        let unsigned = info.unsigned_attrs.get_or_insert_with(Attributes::new);
        let attr = single(attr_type, value)?;
        if unsigned.iter().any(|a| a == &attr) {
            return Err(CadesError::Container("already holds this time-stamp".into()));
        }
        unsigned.insert(attr).map_err(CadesError::der("unsigned attributes"))?;
        *infos = SetOfVec::try_from(list).map_err(CadesError::der("signer infos"))?;
        Ok(())
    }

    /// The signature time-stamp tokens (DER `ContentInfo`), in DER order:
    /// callers sort by genTime.
    pub fn signature_timestamps(&self) -> Result<Vec<Vec<u8>>, CadesError> {
        self.unsigned_values(oid::ID_AA_SIGNATURE_TIME_STAMP_TOKEN)
    }

    /// Every value of the unsigned attributes of type `attr_type` (DER).
    pub(crate) fn unsigned_values(&self, attr_type: der::oid::ObjectIdentifier) -> Result<Vec<Vec<u8>>, CadesError> {
        let info = self.signer_info()?;
        let Some(unsigned) = &info.unsigned_attrs else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        for attr in unsigned.iter().filter(|a| a.oid == attr_type) {
            for v in attr.values.iter() {
                out.push(v.to_der().map_err(CadesError::der("time-stamp token"))?);
            }
        }
        Ok(out)
    }
}
