//! Archive time-stamps: CAdES B-LTA (ETSI EN 319 122-1 §5.5.2–5.5.3;
//! JIS X 5092 CAdES-A). An `archive-time-stamp-v3` is an RFC 3161 token
//! over the document's hash, the SignerInfo's signed fields and an
//! `ats-hash-index-v3` listing a hash of every certificate, CRL and
//! unsigned attribute value present when it was applied. The index travels
//! inside the token, as an unsigned attribute of the token's SignerInfo
//! (the TSA signs only the imprint), so that validation data and later
//! time-stamps may be appended after it without breaking it.
//!
//! Each renewal (`records renew-timestamps`) adds one more archive
//! time-stamp over everything before it, the previous ones included: the
//! newest token's TSA vouches that all older tokens existed while their
//! own TSA certificates were still valid.

use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerInfo, SignerInfos};
use der::asn1::{OctetString, SetOfVec};
use der::{Any, Decode, Encode, Sequence};
use x509_cert::attr::Attributes;
use x509_cert::spki::AlgorithmIdentifierOwned;

use crate::attributes::single;
use crate::crypto::digest_of;
use crate::{CadesError, Container, oid};

/// ATSHashIndexV3 with the hash algorithm left at its DEFAULT (SHA-256),
/// as it is written. Reading accepts an explicit algorithm ([`read_index`]).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct AtsHashIndexV3 {
    certificates_hash_index: Vec<OctetString>,
    crls_hash_index: Vec<OctetString>,
    unsigned_attr_values_hash_index: Vec<OctetString>,
}

/// An index as read from a token: the algorithm and the three lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashIndex {
    pub algorithm: der::oid::ObjectIdentifier,
    pub certificates: Vec<Vec<u8>>,
    pub crls: Vec<Vec<u8>>,
    pub unsigned_attr_values: Vec<Vec<u8>>,
    /// The index's DER as it is in the token: part of the imprint input.
    der: Vec<u8>,
}

/// What an archive time-stamp is requested over: `input` is hashed into
/// the request's imprint; `index` goes into the token once it is back.
#[derive(Debug, Clone)]
pub struct ArchiveInput {
    pub input: Vec<u8>,
    index_der: Vec<u8>,
}

/// The hashes of what a container holds now, by the index's algorithm.
struct Present {
    certificates: Vec<Vec<u8>>,
    crls: Vec<Vec<u8>>,
    unsigned_attr_values: Vec<Vec<u8>>,
}

impl Container {
    /// The input of a new archive time-stamp over this container and the
    /// document whose SHA-256 is `document_sha256` (SHA-256 throughout:
    /// the index's and the imprint's algorithm must be the same).
    pub fn archive_input(&self, document_sha256: &[u8; 32]) -> Result<ArchiveInput, CadesError> {
        let present = self.present(&oid::ID_SHA_256)?;
        let octets = |list: Vec<Vec<u8>>| -> Result<Vec<OctetString>, CadesError> {
            list.into_iter().map(|h| OctetString::new(h).map_err(CadesError::der("hash index"))).collect()
        };
        let index = AtsHashIndexV3 {
            certificates_hash_index: octets(present.certificates)?,
            crls_hash_index: octets(present.crls)?,
            unsigned_attr_values_hash_index: octets(present.unsigned_attr_values)?,
        };
        let index_der = index.to_der().map_err(CadesError::der("ats-hash-index-v3"))?;
        let input = self.imprint_input(document_sha256, &index_der)?;
        Ok(ArchiveInput { input, index_der })
    }

    /// Appends an archive time-stamp: `token_der` is the TSA's token over
    /// `archive.input` (already checked by the caller); the index is put
    /// into the token's unsigned attributes, then the token into the
    /// SignerInfo's.
    pub fn add_archive_timestamp(&mut self, token_der: &[u8], archive: &ArchiveInput) -> Result<(), CadesError> {
        let mut token = ContentInfo::from_der(token_der).map_err(CadesError::der("time-stamp token"))?;
        let mut sd: SignedData = token.content.decode_as().map_err(CadesError::der("time-stamp SignedData"))?;
        let mut infos: Vec<SignerInfo> = std::mem::take(&mut sd.signer_infos.0).into_vec();
        let [info] = infos.as_mut_slice() else {
            return Err(CadesError::Token(format!("has {} signers, not one", infos.len())));
        };
        let index = Any::from_der(&archive.index_der).map_err(CadesError::der("ats-hash-index-v3"))?;
        let unsigned = info.unsigned_attrs.get_or_insert_with(Attributes::new);
        if unsigned.iter().any(|a| a.oid == oid::ID_AA_ATS_HASH_INDEX_V3) {
            return Err(CadesError::Token("already holds an ats-hash-index-v3".into()));
        }
        unsigned
            .insert(single(oid::ID_AA_ATS_HASH_INDEX_V3, index)?)
            .map_err(CadesError::der("unsigned attributes"))?;
        sd.signer_infos = SignerInfos(SetOfVec::try_from(infos).map_err(CadesError::der("signer infos"))?);
        token.content = Any::encode_from(&sd).map_err(CadesError::der("time-stamp SignedData"))?;
        let value = Any::encode_from(&token).map_err(CadesError::der("time-stamp token"))?;
        self.add_unsigned(oid::ID_AA_ETS_ARCHIVE_TIMESTAMP_V3, value)
    }

    /// The archive time-stamp tokens (DER ContentInfo, index included).
    pub fn archive_timestamps(&self) -> Result<Vec<Vec<u8>>, CadesError> {
        self.unsigned_values(oid::ID_AA_ETS_ARCHIVE_TIMESTAMP_V3)
    }

    /// Checks that archive time-stamp `token_der`'s imprint is over this
    /// container as its index describes it, and that everything the index
    /// lists is still here (validation data may be added after a
    /// time-stamp, never taken away or changed). Returns the index.
    pub fn check_archive_timestamp(
        &self,
        token_der: &[u8],
        document: &[u8],
        imprint: &(der::oid::ObjectIdentifier, Vec<u8>),
    ) -> Result<HashIndex, CadesError> {
        let index = read_index(token_der)?;
        let present = self.present(&index.algorithm)?;
        let missing = |what: &str, listed: &[Vec<u8>], here: &[Vec<u8>]| -> Result<(), CadesError> {
            match listed.iter().filter(|h| !here.contains(h)).count() {
                0 => Ok(()),
                n => Err(CadesError::Archive(format!("{n} {what} it covered are no longer in the container"))),
            }
        };
        missing("certificate(s)", &index.certificates, &present.certificates)?;
        missing("CRL(s)", &index.crls, &present.crls)?;
        missing("unsigned attribute value(s)", &index.unsigned_attr_values, &present.unsigned_attr_values)?;
        let (algorithm, hashed) = imprint;
        if *algorithm != index.algorithm {
            return Err(CadesError::Archive("its imprint and its hash index use different algorithms".into()));
        }
        let document_hash = digest_of(algorithm, document)?;
        let input = self.imprint_input(&document_hash, &index.der)?;
        if digest_of(algorithm, &input)? != *hashed {
            return Err(CadesError::Archive(
                "its message imprint is not over this document, signature and hash index".into(),
            ));
        }
        Ok(index)
    }

    /// The hash, for an index, of the unsigned attribute value `value`
    /// of type `attr`: over attrType's DER then the value's (§5.5.2).
    pub fn unsigned_value_hash(
        algorithm: &der::oid::ObjectIdentifier,
        attr: der::oid::ObjectIdentifier,
        value_der: &[u8],
    ) -> Result<Vec<u8>, CadesError> {
        let mut bytes = attr.to_der().map_err(CadesError::der("attribute type"))?;
        bytes.extend_from_slice(value_der);
        digest_of(algorithm, &bytes)
    }

    /// EN 319 122-1 §5.5.3: eContentType, the document's hash, the
    /// SignerInfo's version, sid, digestAlgorithm, signedAttrs,
    /// signatureAlgorithm and signature as encoded, then the index.
    fn imprint_input(&self, document_hash: &[u8], index_der: &[u8]) -> Result<Vec<u8>, CadesError> {
        let info = self.signer_info()?;
        let e = CadesError::der("archive time-stamp input");
        let mut out = self.signed_data.encap_content_info.econtent_type.to_der().map_err(e)?;
        out.extend_from_slice(document_hash);
        let e = || CadesError::der("archive time-stamp input");
        info.version.encode_to_vec(&mut out).map_err(e())?;
        info.sid.encode_to_vec(&mut out).map_err(e())?;
        info.digest_alg.encode_to_vec(&mut out).map_err(e())?;
        let signed = info.signed_attrs.as_ref().ok_or_else(|| CadesError::Attributes("are missing".into()))?;
        let mut signed_der = signed.to_der().map_err(e())?;
        // signedAttrs is `[0] IMPLICIT SET OF`: the field as it appears in
        // the SignerInfo carries tag [0] constructed (0xA0) where the bare
        // SET has 0x31; the length and contents are the same.
        signed_der[0] = 0xA0;
        out.extend_from_slice(&signed_der);
        info.signature_algorithm.encode_to_vec(&mut out).map_err(e())?;
        info.signature.encode_to_vec(&mut out).map_err(e())?;
        out.extend_from_slice(index_der);
        Ok(out)
    }

    fn present(&self, algorithm: &der::oid::ObjectIdentifier) -> Result<Present, CadesError> {
        let e = || CadesError::der("validation data");
        let mut certificates = Vec::new();
        for c in self.signed_data.certificates.iter().flat_map(|s| s.0.iter()) {
            certificates.push(digest_of(algorithm, &c.to_der().map_err(e())?)?);
        }
        let mut crls = Vec::new();
        for c in self.signed_data.crls.iter().flat_map(|s| s.0.iter()) {
            crls.push(digest_of(algorithm, &c.to_der().map_err(e())?)?);
        }
        let mut unsigned_attr_values = Vec::new();
        let info = self.signer_info()?;
        for attr in info.unsigned_attrs.iter().flat_map(|a| a.iter()) {
            for value in attr.values.iter() {
                let mut bytes = attr.oid.to_der().map_err(e())?;
                value.encode_to_vec(&mut bytes).map_err(e())?;
                unsigned_attr_values.push(digest_of(algorithm, &bytes)?);
            }
        }
        Ok(Present { certificates, crls, unsigned_attr_values })
    }
}

/// The ats-hash-index-v3 in a token's unsigned attributes.
pub fn read_index(token_der: &[u8]) -> Result<HashIndex, CadesError> {
    let bad = |m: &str| CadesError::Archive(m.to_owned());
    let token = ContentInfo::from_der(token_der).map_err(CadesError::der("archive time-stamp token"))?;
    let sd: SignedData = token.content.decode_as().map_err(CadesError::der("archive time-stamp SignedData"))?;
    let [info] = sd.signer_infos.0.as_slice() else { return Err(bad("token has not one signer")) };
    let mut found = info
        .unsigned_attrs
        .iter()
        .flat_map(|a| a.iter())
        .filter(|a| a.oid == oid::ID_AA_ATS_HASH_INDEX_V3)
        .flat_map(|a| a.values.iter());
    let (Some(value), None) = (found.next(), found.next()) else {
        return Err(bad("token must hold exactly one ats-hash-index-v3 value"));
    };
    let der = value.to_der().map_err(CadesError::der("ats-hash-index-v3"))?;
    // The optional algorithm and the first list are both SEQUENCEs: read
    // the items, then tell them apart by count.
    let items: Vec<Any> = Vec::<Any>::from_der(&der).map_err(CadesError::der("ats-hash-index-v3"))?;
    let (algorithm, lists) = match items.as_slice() {
        [alg, a, b, c] => {
            let alg: AlgorithmIdentifierOwned = alg.decode_as().map_err(CadesError::der("hashIndAlgorithm"))?;
            (alg.oid, [a, b, c])
        }
        [a, b, c] => (oid::ID_SHA_256, [a, b, c]),
        _ => return Err(bad("ats-hash-index-v3 has neither three nor four fields")),
    };
    let list = |a: &Any| -> Result<Vec<Vec<u8>>, CadesError> {
        let v: Vec<OctetString> = a.decode_as().map_err(CadesError::der("hash index list"))?;
        Ok(v.into_iter().map(OctetString::into_bytes).collect())
    };
    Ok(HashIndex {
        algorithm,
        certificates: list(lists[0])?,
        crls: list(lists[1])?,
        unsigned_attr_values: list(lists[2])?,
        der,
    })
}
