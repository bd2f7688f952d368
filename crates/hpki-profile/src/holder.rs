//! Who a card certificate names: a licensed professional (hcRole) or an
//! institution's assistant, with the romaji and kanji names.

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::x509::X509Name;

use crate::hcrole::{self, HcRoleError};
use crate::oid::{self, Oid};
use crate::profession::Profession;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HolderKind {
    /// An HPKI card: the profession comes from hcRole.
    Licensed(Profession),
    /// An institution PKI card of non-licensed staff (the product's profile:
    /// no hcRole, the assistant policy, the institution in Subject O).
    Assistant,
    /// Any other certificate (a CA, a terminal, a foreign profile).
    Other,
}

/// The purposes of an extendedKeyUsage extension (dotted OIDs). HPKI card
/// certificates carry none; one that does may be used only for what it
/// names (RFC 5280 §4.2.1.12), critical or not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtendedKeyUsage {
    pub critical: bool,
    pub purposes: Vec<String>,
}

impl ExtendedKeyUsage {
    pub const ANY: &'static str = "2.5.29.37.0";
    pub const CLIENT_AUTH: &'static str = "1.3.6.1.5.5.7.3.2";
    pub const EMAIL_PROTECTION: &'static str = "1.3.6.1.5.5.7.3.4";
    /// id-kp-documentSigning (RFC 9336).
    pub const DOCUMENT_SIGNING: &'static str = "1.3.6.1.5.5.7.3.36";
    /// Microsoft smart-card logon, found on card authentication keys.
    pub const SMARTCARD_LOGON: &'static str = "1.3.6.1.4.1.311.20.2.2";

    fn of(critical: bool, eku: &x509_parser::extensions::ExtendedKeyUsage<'_>) -> ExtendedKeyUsage {
        let flags = [
            (eku.any, Self::ANY),
            (eku.server_auth, "1.3.6.1.5.5.7.3.1"),
            (eku.client_auth, Self::CLIENT_AUTH),
            (eku.code_signing, "1.3.6.1.5.5.7.3.3"),
            (eku.email_protection, Self::EMAIL_PROTECTION),
            (eku.time_stamping, "1.3.6.1.5.5.7.3.8"),
            (eku.ocsp_signing, "1.3.6.1.5.5.7.3.9"),
        ];
        let mut purposes: Vec<String> = flags.iter().filter(|(on, _)| *on).map(|(_, o)| (*o).to_owned()).collect();
        purposes.extend(eku.other.iter().map(|o| o.to_id_string()));
        ExtendedKeyUsage { critical, purposes }
    }

    /// Whether any of `wanted` (or anyExtendedKeyUsage) is named.
    pub fn allows(&self, wanted: &[&str]) -> bool {
        self.purposes.iter().any(|p| p == Self::ANY || wanted.contains(&p.as_str()))
    }
}

/// Key usage bits that matter to the profile.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyUsage {
    pub present: bool,
    pub critical: bool,
    pub digital_signature: bool,
    pub non_repudiation: bool,
    pub key_cert_sign: bool,
    pub crl_sign: bool,
}

impl KeyUsage {
    pub fn names(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        for (on, name) in [
            (self.digital_signature, "digitalSignature"),
            (self.non_repudiation, "nonRepudiation"),
            (self.key_cert_sign, "keyCertSign"),
            (self.crl_sign, "cRLSign"),
        ] {
            if on {
                v.push(name);
            }
        }
        v
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardHolder {
    pub kind: HolderKind,
    /// Subject CN (romaji).
    pub name: Option<String>,
    /// CN of the subjectAltName directoryName (kanji).
    pub name_kanji: Option<String>,
    /// Subject O (romaji).
    pub institution: Option<String>,
    /// O of the subjectAltName directoryName (kanji).
    pub institution_kanji: Option<String>,
    /// Subject serialNumber: the person's (or staff member's) stable id.
    pub serial_number: Option<String>,
    pub subject: String,
    pub issuer: String,
    /// Certificate serial, hex.
    pub certificate_serial: String,
    /// Validity, Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    pub key_usage: KeyUsage,
    pub extended_key_usage: Option<ExtendedKeyUsage>,
    pub policies: Vec<Oid>,
    pub crl_distribution_points: Vec<String>,
}

impl CardHolder {
    pub fn profession(&self) -> Option<Profession> {
        match self.kind {
            HolderKind::Licensed(p) => Some(p),
            _ => None,
        }
    }

    /// The id a gateway registers the holder under: the subject
    /// serialNumber of an HPKI card (it carries the profession prefix), or
    /// `institution/staff id` for an institution staff card, whose staff ids
    /// are only unique within one institution.
    pub fn person_id(&self) -> Option<String> {
        match self.kind {
            HolderKind::Licensed(_) => self.serial_number.clone(),
            HolderKind::Assistant => match (&self.institution, &self.serial_number) {
                (Some(i), Some(s)) => Some(format!("{i}/{s}")),
                _ => None,
            },
            HolderKind::Other => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HolderError {
    #[error("not a DER X.509 certificate: {0}")]
    NotACertificate(String),
    #[error("{0}")]
    HcRole(#[from] HcRoleError),
    #[error("malformed {extension} extension: {detail}")]
    BadExtension { extension: &'static str, detail: String },
}

/// Reads the holder of a DER certificate.
pub fn read_holder(der: &[u8]) -> Result<CardHolder, HolderError> {
    let cert = parse_certificate(der)?;
    holder_of(&cert)
}

/// Parses exactly one DER certificate.
pub fn parse_certificate(der: &[u8]) -> Result<X509Certificate<'_>, HolderError> {
    check_outer_structure(der).map_err(HolderError::NotACertificate)?;
    let (rest, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| HolderError::NotACertificate(e.to_string()))?;
    if !rest.is_empty() {
        return Err(HolderError::NotACertificate(format!("{} bytes after the certificate", rest.len())));
    }
    Ok(cert)
}

/// The parts of a certificate outside the signature that x509-parser reads
/// leniently, checked strictly (found by property testing: a wrong tag on the
/// outer algorithm OID was accepted). RFC 5280 §4.1.1.2 wants the outer
/// signatureAlgorithm to be the signed one: here, byte for byte. The
/// signature BIT STRING has no unused bits.
fn check_outer_structure(der: &[u8]) -> Result<(), String> {
    use x509_parser::asn1_rs::{Any, FromDer};
    /// Each element of `input` with its complete encoding.
    fn tlvs(mut input: &[u8]) -> Result<Vec<(&[u8], Any<'_>)>, String> {
        let mut out = Vec::new();
        while !input.is_empty() {
            let (rest, any) = Any::from_der(input).map_err(|e| e.to_string())?;
            out.push((&input[..input.len() - rest.len()], any));
            input = rest;
        }
        Ok(out)
    }
    let outer = tlvs(der)?;
    let [(_, cert)] = outer.as_slice() else { return Err("not exactly one DER value".into()) };
    if cert.header.raw_tag() != Some(&[0x30]) {
        return Err("a certificate is a SEQUENCE".into());
    }
    let parts = tlvs(cert.data)?;
    let [(_, tbs), (alg_raw, alg), (_, sig)] = parts.as_slice() else {
        return Err("a certificate has three parts: to-be-signed, algorithm, signature".into());
    };
    if tbs.header.raw_tag() != Some(&[0x30]) || alg.header.raw_tag() != Some(&[0x30]) {
        return Err("to-be-signed part and algorithm must be SEQUENCEs".into());
    }
    if sig.header.raw_tag() != Some(&[0x03]) || sig.data.first() != Some(&0) {
        return Err("the signature must be a BIT STRING without unused bits".into());
    }
    let tbs_parts = tlvs(tbs.data)?;
    // [0] version is optional; then serialNumber, then signature.
    let skip = usize::from(tbs_parts.first().is_some_and(|(raw, _)| raw.first() == Some(&0xA0)));
    let signed_alg = tbs_parts.get(skip + 1).map(|(raw, _)| *raw).ok_or("the to-be-signed part is truncated")?;
    if signed_alg != *alg_raw {
        return Err("signatureAlgorithm differs from the signature field it signed".into());
    }
    Ok(())
}

pub fn holder_of(cert: &X509Certificate<'_>) -> Result<CardHolder, HolderError> {
    let mut key_usage = KeyUsage::default();
    let mut extended_key_usage = None;
    let mut policies = Vec::new();
    let mut crl_dps = Vec::new();
    let mut san_dn: Option<&X509Name<'_>> = None;
    let mut hc_role: Option<Result<Profession, HcRoleError>> = None;

    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::KeyUsage(ku) => {
                key_usage = KeyUsage {
                    present: true,
                    critical: ext.critical,
                    digital_signature: ku.digital_signature(),
                    non_repudiation: ku.non_repudiation(),
                    key_cert_sign: ku.key_cert_sign(),
                    crl_sign: ku.crl_sign(),
                };
            }
            ParsedExtension::ExtendedKeyUsage(eku) => {
                extended_key_usage = Some(ExtendedKeyUsage::of(ext.critical, eku));
            }
            ParsedExtension::CertificatePolicies(cp) => {
                for p in cp.iter() {
                    let oid = Oid::from_content(p.policy_id.as_bytes()).map_err(|e| HolderError::BadExtension {
                        extension: "certificatePolicies",
                        detail: e.to_string(),
                    })?;
                    policies.push(oid);
                }
            }
            ParsedExtension::SubjectAlternativeName(san) => {
                san_dn = san.general_names.iter().find_map(|g| match g {
                    GeneralName::DirectoryName(dn) => Some(dn),
                    _ => None,
                });
            }
            ParsedExtension::CRLDistributionPoints(dps) => {
                for dp in dps.iter() {
                    if let Some(x509_parser::extensions::DistributionPointName::FullName(names)) =
                        &dp.distribution_point
                    {
                        for n in names {
                            if let GeneralName::URI(uri) = n {
                                crl_dps.push((*uri).to_string());
                            }
                        }
                    }
                }
            }
            ParsedExtension::ParseError { error } => {
                return Err(HolderError::BadExtension {
                    extension: extension_name(&ext.oid),
                    detail: error.to_string(),
                });
            }
            _ => {
                if Oid::from_u64_arcs(oid::SUBJECT_DIRECTORY_ATTRIBUTES).is_some_and(|o| o.matches(&ext.oid)) {
                    hc_role = Some(hcrole::decode(ext.value));
                }
            }
        }
    }

    let kind = match hc_role {
        Some(Ok(p)) => HolderKind::Licensed(p),
        // Directory attributes without hcRole say nothing about a profession.
        Some(Err(HcRoleError::Missing)) | None => {
            let assistant = Oid::parse(oid::ASSISTANT_AUTHENTICATION_POLICY).ok();
            let assistant_sig = Oid::parse(oid::ASSISTANT_SIGNATURE_POLICY).ok();
            if policies.iter().any(|p| Some(p) == assistant.as_ref() || Some(p) == assistant_sig.as_ref()) {
                HolderKind::Assistant
            } else {
                HolderKind::Other
            }
        }
        Some(Err(e)) => return Err(e.into()),
    };

    Ok(CardHolder {
        kind,
        name: first_attr(cert.subject(), DnAttr::CommonName),
        name_kanji: san_dn.and_then(|dn| first_attr(dn, DnAttr::CommonName)),
        institution: first_attr(cert.subject(), DnAttr::Organization),
        institution_kanji: san_dn.and_then(|dn| first_attr(dn, DnAttr::Organization)),
        serial_number: first_attr(cert.subject(), DnAttr::SerialNumber),
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        certificate_serial: hex_serial(cert.raw_serial()),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        key_usage,
        extended_key_usage,
        policies,
        crl_distribution_points: crl_dps,
    })
}

/// Serial number in hex, without leading zero bytes (as people type it).
pub fn hex_serial(raw: &[u8]) -> String {
    let trimmed: Vec<u8> = raw.iter().copied().skip_while(|b| *b == 0).collect();
    if trimmed.is_empty() {
        return "00".into();
    }
    trimmed.iter().map(|b| format!("{b:02X}")).collect()
}

#[derive(Clone, Copy)]
enum DnAttr {
    CommonName,
    Organization,
    SerialNumber,
}

fn first_attr(name: &X509Name<'_>, which: DnAttr) -> Option<String> {
    let arcs: &[u64] = match which {
        DnAttr::CommonName => &[2, 5, 4, 3],
        DnAttr::Organization => &[2, 5, 4, 10],
        DnAttr::SerialNumber => oid::DN_SERIAL_NUMBER,
    };
    let wanted = Oid::from_u64_arcs(arcs)?;
    name.iter_attributes().find(|a| wanted.matches(a.attr_type())).and_then(|a| a.as_str().ok().map(str::to_owned))
}

pub(crate) fn extension_name(oid: &x509_parser::der_parser::oid::Oid<'_>) -> &'static str {
    match oid.to_id_string().as_str() {
        "2.5.29.15" => "keyUsage",
        "2.5.29.17" => "subjectAltName",
        "2.5.29.19" => "basicConstraints",
        "2.5.29.31" => "cRLDistributionPoints",
        "2.5.29.32" => "certificatePolicies",
        "2.5.29.35" => "authorityKeyIdentifier",
        "2.5.29.14" => "subjectKeyIdentifier",
        "2.5.29.37" => "extendedKeyUsage",
        "2.5.29.9" => "subjectDirectoryAttributes",
        _ => "an",
    }
}
