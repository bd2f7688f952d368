//! A certificate read once into what validation needs (RFC 5280 §4).
//!
//! The profile rules that do not depend on a certificate's place in a path
//! are checked while reading and kept as a *defect*: a configured or
//! presented certificate that no path uses must not fail a validation, so
//! the defect only refuses a path that contains it.

use ring::digest::{SHA256, digest};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};

use crate::holder::parse_certificate;
use crate::oid;
use crate::signature::{PublicKey, SignatureAlgorithm, SignatureError};
use crate::validate::names::{self, Dn, NameConstraints, Names};
use crate::validate::refusal::Refusal;

/// Extensions this validator processes, so they may be critical.
const KNOWN_CRITICAL: &[&str] = &[
    "2.5.29.15", // keyUsage
    "2.5.29.19", // basicConstraints
    "2.5.29.32", // certificatePolicies (critical in real HPKI certificates)
    "2.5.29.17", // subjectAltName
    "2.5.29.37", // extendedKeyUsage
    "2.5.29.9",  // subjectDirectoryAttributes (hcRole)
    "2.5.29.30", // nameConstraints (directoryName and rfc822Name processed)
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Basic {
    pub critical: bool,
    pub ca: bool,
    pub path_len: Option<u32>,
}

/// A distribution point name as CRL scope matching compares them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PointName {
    Uri(String),
    Directory(Dn),
    /// Any other general name, compared by its encoding.
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DistributionPoint {
    Full(Vec<PointName>),
    RelativeToIssuer(Dn),
}

/// One cRLDistributionPoints entry.
#[derive(Debug, Clone)]
pub(crate) struct CrlDistributionPoint {
    pub name: Option<DistributionPoint>,
    /// A cRLIssuer: the CRL comes from someone else (indirect).
    pub indirect: bool,
}

pub(crate) struct Cert {
    pub subject: Vec<u8>,
    pub subject_text: String,
    pub subject_empty: bool,
    pub issuer: Vec<u8>,
    pub issuer_text: String,
    pub serial: Vec<u8>,
    /// 0 for v1, 2 for v3.
    pub version: u32,
    pub not_before: i64,
    pub not_after: i64,
    /// SHA-256 of the subjectPublicKeyInfo: with the subject, what makes
    /// two certificates the same CA.
    pub spki_digest: [u8; 32],
    pub key: Result<PublicKey, String>,
    /// SHA-256 of the whole DER: the certificate's identity in memos.
    pub digest: [u8; 32],
    /// The DER itself, shared: validation data a signature embeds.
    pub der: std::sync::Arc<[u8]>,
    pub tbs: Vec<u8>,
    pub signature_algorithm: Result<SignatureAlgorithm, String>,
    pub signature: Vec<u8>,
    pub basic: Option<Basic>,
    pub key_usage: Option<x509_parser::extensions::KeyUsage>,
    pub ski: Option<Vec<u8>>,
    /// The keyIdentifier of the authorityKeyIdentifier, if any.
    pub aki: Option<Vec<u8>>,
    pub unknown_critical: Option<String>,
    pub crl_distribution_points: Vec<CrlDistributionPoint>,
    pub name_constraints: Option<NameConstraints>,
    pub names: Names,
    pub defect: Option<String>,
    /// A defect of the serial number, which only an issued certificate
    /// (not a trust anchor) is held to.
    pub serial_defect: Option<String>,
}

impl Cert {
    pub fn parse(der: &[u8]) -> Result<Cert, Refusal> {
        let parsed = parse_certificate(der).map_err(|e| Refusal::Malformed(e.to_string()))?;
        Ok(Cert::from_parsed(&parsed, der))
    }

    pub fn from_parsed(c: &X509Certificate<'_>, der: &[u8]) -> Cert {
        let subject_text = display_name(c.subject());
        let mut defects: Vec<String> = Vec::new();
        let mut basic = None;
        let mut key_usage = None;
        let mut ski = None;
        let mut aki = None;
        let mut unknown_critical = None;
        let mut crl_dps = Vec::new();
        let mut name_constraints = None;
        let mut san: Option<Vec<GeneralName<'_>>> = None;
        let mut san_critical = false;

        if c.extensions_map().is_err() {
            defects.push("an extension appears more than once (RFC 5280 §4.2)".into());
        }
        for ext in c.extensions() {
            let id = ext.oid.to_id_string();
            if ext.critical && !KNOWN_CRITICAL.contains(&id.as_str()) && unknown_critical.is_none() {
                unknown_critical = Some(oid::display(&ext.oid));
            }
            match ext.parsed_extension() {
                ParsedExtension::BasicConstraints(bc) => {
                    basic = Some(Basic { critical: ext.critical, ca: bc.ca, path_len: bc.path_len_constraint })
                }
                ParsedExtension::KeyUsage(ku) => key_usage = Some(*ku),
                ParsedExtension::SubjectKeyIdentifier(k) => {
                    if ext.critical {
                        defects.push("subjectKeyIdentifier is critical (RFC 5280 §4.2.1.2)".into());
                    }
                    ski = Some(k.0.to_vec());
                }
                ParsedExtension::AuthorityKeyIdentifier(a) => {
                    if ext.critical {
                        defects.push("authorityKeyIdentifier is critical (RFC 5280 §4.2.1.1)".into());
                    }
                    aki = a.key_identifier.as_ref().map(|k| k.0.to_vec());
                    if aki.is_none() {
                        defects.push("authorityKeyIdentifier without keyIdentifier (RFC 5280 §4.2.1.1)".into());
                    }
                }
                ParsedExtension::SubjectAlternativeName(s) => {
                    san = Some(s.general_names.clone());
                    san_critical = ext.critical;
                }
                ParsedExtension::ExtendedKeyUsage(eku) => {
                    let empty = !eku.any
                        && !eku.server_auth
                        && !eku.client_auth
                        && !eku.code_signing
                        && !eku.email_protection
                        && !eku.time_stamping
                        && !eku.ocsp_signing
                        && eku.other.is_empty();
                    if empty {
                        defects.push("extendedKeyUsage lists no purpose (RFC 5280 §4.2.1.12)".into());
                    }
                }
                ParsedExtension::CRLDistributionPoints(dps) => {
                    for dp in dps.iter() {
                        crl_dps.push(CrlDistributionPoint {
                            name: dp.distribution_point.as_ref().map(distribution_point),
                            indirect: dp.crl_issuer.is_some(),
                        });
                    }
                }
                ParsedExtension::NameConstraints(nc) => {
                    if !ext.critical {
                        defects.push("nameConstraints is not critical (RFC 5280 §4.2.1.10)".into());
                    }
                    match NameConstraints::read(nc) {
                        Ok(nc) => name_constraints = Some(nc),
                        Err(e) => defects.push(format!("malformed nameConstraints: {e}")),
                    }
                }
                ParsedExtension::PolicyConstraints(_) if !ext.critical => {
                    defects.push("policyConstraints is not critical (RFC 5280 §4.2.1.11)".into())
                }
                ParsedExtension::ParseError { error } => {
                    defects.push(format!("malformed {} extension: {error}", oid::display(&ext.oid)))
                }
                _ => {}
            }
        }

        // §4.1.2.2: a positive integer of at most 20 octets. Issued
        // certificates only: a trust anchor is configured, not issued here
        // (a widely trusted web root has serial 0).
        let serial = c.raw_serial();
        let significant = serial.strip_prefix(&[0]).unwrap_or(serial);
        let serial_defect = if serial.first().is_some_and(|b| b & 0x80 != 0) {
            Some("negative serial number (RFC 5280 §4.1.2.2)".to_owned())
        } else if serial.iter().all(|b| *b == 0) {
            Some("serial number zero (RFC 5280 §4.1.2.2)".to_owned())
        } else if significant.len() > 20 {
            Some(format!("serial number of {} octets, more than 20 (RFC 5280 §4.1.2.2)", significant.len()))
        } else {
            None
        };
        // §4.1.2.4: the issuer is never empty.
        if c.issuer().iter_rdn().next().is_none() {
            defects.push("empty issuer name (RFC 5280 §4.1.2.4)".into());
        }
        let subject_empty = c.subject().iter_rdn().next().is_none();
        if subject_empty && !(san.is_some() && san_critical) {
            defects.push("empty subject without a critical subjectAltName (RFC 5280 §4.1.2.6)".into());
        }
        if let Some(ku) = &key_usage
            && ku.key_cert_sign()
            && !basic.is_some_and(|b| b.ca)
        {
            defects.push("keyCertSign without basicConstraints cA (RFC 5280 §4.2.1.9)".into());
        }
        if basic.is_some_and(|b| b.path_len.is_some() && !b.ca) {
            defects.push("pathLenConstraint without cA (RFC 5280 §4.2.1.9)".into());
        }
        if name_constraints.is_some() && !basic.is_some_and(|b| b.ca) {
            defects.push("nameConstraints in a certificate that is not a CA (RFC 5280 §4.2.1.10)".into());
        }

        let names = Names::read(c.subject(), san.as_deref().unwrap_or(&[]), subject_empty);
        let key = PublicKey::from_spki(c.public_key()).map_err(|e| match e {
            SignatureError::UnsupportedKey(what) => what,
            other => other.to_string(),
        });
        Cert {
            subject: c.subject().as_raw().to_vec(),
            subject_text,
            subject_empty,
            issuer: c.issuer().as_raw().to_vec(),
            issuer_text: display_name(c.issuer()),
            serial: serial.to_vec(),
            version: c.version().0,
            not_before: c.validity().not_before.timestamp(),
            not_after: c.validity().not_after.timestamp(),
            spki_digest: sha256(c.public_key().raw),
            key,
            digest: sha256(der),
            der: der.into(),
            tbs: c.tbs_certificate.as_ref().to_vec(),
            signature_algorithm: SignatureAlgorithm::from_identifier(&c.signature_algorithm).map_err(|e| e.to_string()),
            signature: c.signature_value.data.to_vec(),
            basic,
            key_usage,
            ski,
            aki,
            unknown_critical,
            crl_distribution_points: crl_dps,
            name_constraints,
            names,
            defect: (!defects.is_empty()).then(|| defects.join("; ")),
            serial_defect,
        }
    }

    /// Issuer and subject are the same name (RFC 5280 §6.1: such a
    /// certificate does not count towards path lengths).
    pub fn self_issued(&self) -> bool {
        self.subject == self.issuer
    }

    pub fn is_ca(&self) -> bool {
        self.basic.is_some_and(|b| b.ca)
    }

    /// Same subject and same key: the same CA, whatever certificate says so.
    pub fn same_entity(&self, other: &Cert) -> bool {
        self.subject == other.subject && self.spki_digest == other.spki_digest
    }

    /// Whether `issuer` may have issued this certificate: by name.
    pub fn may_be_issued_by(&self, issuer: &Cert) -> bool {
        self.issuer == issuer.subject
    }

    /// Whether the key identifiers say `issuer`'s key signed this, where
    /// both exist. A hint (RFC 4158 §3.5.12): matching candidates are tried
    /// first, the others still after them, as Go's verifier does.
    pub fn key_id_matches(&self, issuer: &Cert) -> bool {
        match (&self.aki, &issuer.ski) {
            (Some(a), Some(s)) => a == s,
            _ => true,
        }
    }
}

pub(crate) fn distribution_point(name: &DistributionPointName<'_>) -> DistributionPoint {
    match name {
        DistributionPointName::FullName(names) => DistributionPoint::Full(names.iter().map(point_name).collect()),
        DistributionPointName::NameRelativeToCRLIssuer(rdn) => {
            DistributionPoint::RelativeToIssuer(names::dn_of_rdn(rdn))
        }
    }
}

pub(crate) fn point_name(name: &GeneralName<'_>) -> PointName {
    match name {
        GeneralName::URI(u) => PointName::Uri((*u).to_owned()),
        GeneralName::DirectoryName(dn) => PointName::Directory(names::dn_of(dn)),
        other => PointName::Other(format!("{other:?}")),
    }
}

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, data).as_ref());
    out
}

/// A name as people read it; an empty name says so.
pub(crate) fn display_name(name: &x509_parser::x509::X509Name<'_>) -> String {
    let text = name.to_string();
    if text.is_empty() { "(empty name)".into() } else { text }
}
