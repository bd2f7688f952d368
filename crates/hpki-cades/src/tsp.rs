//! RFC 3161: the request the gateway sends its TSA, and the checks of the
//! answer that need no trust anchor. The TSA certificate's path is
//! validated by the caller (`hpki_profile`, at the token's genTime).

use cmpv2::status::PkiStatus;
use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use der::asn1::{Int, OctetString};
use der::{Any, Decode, Encode};
use x509_cert::Certificate;
use x509_cert::ext::pkix::ExtendedKeyUsage;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_tsp::{MessageImprint, TimeStampReq, TimeStampResp, TspVersion, TstInfo};

use crate::attributes::{SigningCertificate, SigningCertificateV2, value_of};
use crate::crypto::{self, cert_der, digest_of};
use crate::{CadesError, oid};

/// A request for a time-stamp over `imprint` (SHA-256 of what is stamped),
/// asking for the TSA's certificate in the token (certReq). `nonce` is 16
/// random bytes; it is made a positive INTEGER here.
pub fn request(imprint: &[u8; 32], nonce: &mut [u8; 16], policy: Option<&str>) -> Result<Vec<u8>, CadesError> {
    // Positive and minimal: the top bit clear, the first byte not zero.
    nonce[0] = (nonce[0] & 0x7f) | 0x40;
    let req_policy =
        policy.map(|p| p.parse().map_err(|_| CadesError::Token(format!("{p:?} is not an OID")))).transpose()?;
    let req = TimeStampReq {
        version: TspVersion::V1,
        message_imprint: MessageImprint {
            hash_algorithm: AlgorithmIdentifierOwned { oid: oid::ID_SHA_256, parameters: None }.into_any()?,
            hashed_message: OctetString::new(imprint.as_slice()).map_err(CadesError::der("imprint"))?,
        },
        req_policy,
        nonce: Some(Int::new(nonce).map_err(CadesError::der("nonce"))?),
        cert_req: true,
        extensions: None,
    };
    req.to_der().map_err(CadesError::der("TimeStampReq"))
}

trait IntoAny {
    fn into_any(self) -> Result<x509_cert::spki::AlgorithmIdentifier<Any>, CadesError>;
}

impl IntoAny for AlgorithmIdentifierOwned {
    fn into_any(self) -> Result<x509_cert::spki::AlgorithmIdentifier<Any>, CadesError> {
        Ok(x509_cert::spki::AlgorithmIdentifier { oid: self.oid, parameters: self.parameters })
    }
}

/// Why a TSA's answer was not taken. Each has its own code at the API.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TsaResponseError {
    #[error("the TSA refused the request (status {status}{text})")]
    Rejected { status: u8, text: String },
    #[error("the TSA's answer is not a TimeStampResp: {0}")]
    Malformed(String),
    #[error("the TSA granted the request but sent no token")]
    NoToken,
    #[error("the token answers another request (nonce differs)")]
    WrongNonce,
    #[error("the token stamps other data (message imprint differs)")]
    WrongImprint,
    #[error("the token's policy is {found}, not the configured {wanted}")]
    WrongPolicy { found: String, wanted: String },
    #[error("{0}")]
    Token(#[from] CadesError),
}

/// A time-stamp token whose own signature checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeStampToken {
    /// The token (DER ContentInfo) as received.
    pub der: Vec<u8>,
    /// genTime, Unix seconds.
    pub gen_time: i64,
    pub policy: String,
    /// serialNumber, hex.
    pub serial: String,
    pub imprint_algorithm: der::oid::ObjectIdentifier,
    pub imprint: Vec<u8>,
    pub nonce: Option<Vec<u8>>,
    /// The certificate that signed the token (DER).
    pub tsa_cert: Vec<u8>,
    /// Every certificate in the token (DER), the TSA's included.
    pub certs: Vec<Vec<u8>>,
}

/// Checks a TSA's answer to [`request`]: granted, a token, the token's
/// signature, the nonce and the imprint.
pub fn read_response(
    der: &[u8],
    imprint: &[u8; 32],
    nonce: &[u8; 16],
    policy: Option<&str>,
) -> Result<TimeStampToken, TsaResponseError> {
    let resp = match TimeStampResp::from_der(der) {
        Ok(r) => r,
        Err(e) => return Err(status_only(der).unwrap_or(TsaResponseError::Malformed(e.to_string()))),
    };
    match resp.status.status {
        PkiStatus::Accepted | PkiStatus::GrantedWithMods => {}
        other => {
            let text = resp
                .status
                .status_string
                .iter()
                .flatten()
                .map(|s| s.as_str().to_owned())
                .collect::<Vec<_>>()
                .join("; ");
            let text = if text.is_empty() { String::new() } else { format!(": {text}") };
            return Err(TsaResponseError::Rejected { status: other as u8, text });
        }
    }
    let token = resp.time_stamp_token.ok_or(TsaResponseError::NoToken)?;
    let token_der = token.to_der().map_err(|e| TsaResponseError::Malformed(e.to_string()))?;
    let token = TimeStampToken::from_der(&token_der)?;
    if token.nonce.as_deref() != Some(nonce.as_slice()) {
        return Err(TsaResponseError::WrongNonce);
    }
    if token.imprint_algorithm != oid::ID_SHA_256 || token.imprint != imprint {
        return Err(TsaResponseError::WrongImprint);
    }
    if let Some(wanted) = policy
        && token.policy != wanted
    {
        return Err(TsaResponseError::WrongPolicy { found: token.policy, wanted: wanted.to_owned() });
    }
    Ok(token)
}

/// A rejection whose details this crate's parser does not take (OpenSSL's
/// "Error during serial number generation" carries a failInfo the
/// `x509-tsp` types refuse): its PKIStatus alone, read field by field, so
/// that it is still told apart from a malformed answer. `None` when even
/// that cannot be read, or when the status is a grant.
fn status_only(der: &[u8]) -> Option<TsaResponseError> {
    let fields: Vec<Any> = Vec::<Any>::from_der(der).ok()?;
    let status_info: Vec<Any> = fields.first()?.decode_as().ok()?;
    let status: u8 = status_info.first()?.decode_as().ok()?;
    (status > 1).then(|| TsaResponseError::Rejected { status, text: " (details unreadable)".into() })
}

impl TimeStampToken {
    /// Reads a token and checks what it says of itself: a SignedData of a
    /// TSTInfo, one signer, messageDigest over the TSTInfo, the signature
    /// by the certificate named by sid and by the ESS signing-certificate
    /// attribute, and that certificate's EKU (RFC 3161 §2.3: exactly
    /// id-kp-timeStamping, critical).
    pub fn from_der(der: &[u8]) -> Result<TimeStampToken, CadesError> {
        let bad = |m: String| CadesError::Token(m);
        let info = ContentInfo::from_der(der).map_err(CadesError::der("time-stamp token"))?;
        if info.content_type != oid::ID_SIGNED_DATA {
            return Err(bad(format!("holds {}, not SignedData", info.content_type)));
        }
        let sd: SignedData = info.content.decode_as().map_err(CadesError::der("time-stamp SignedData"))?;
        if sd.encap_content_info.econtent_type != oid::ID_CT_TST_INFO {
            return Err(bad(format!("encapsulates {}, not TSTInfo", sd.encap_content_info.econtent_type)));
        }
        let econtent = sd.encap_content_info.econtent.as_ref().ok_or_else(|| bad("holds no TSTInfo".into()))?;
        let tst_der = econtent.decode_as::<OctetString>().map_err(CadesError::der("eContent"))?.into_bytes();
        let tst = TstInfo::from_der(&tst_der).map_err(CadesError::der("TSTInfo"))?;
        let [signer] = sd.signer_infos.0.as_slice() else {
            return Err(bad(format!("has {} signers, not one", sd.signer_infos.0.len())));
        };
        let certs: Vec<&Certificate> = sd
            .certificates
            .iter()
            .flat_map(|s| s.0.iter())
            .filter_map(|c| match c {
                CertificateChoices::Certificate(c) => Some(c),
                CertificateChoices::Other(_) => None,
            })
            .collect();
        let tsa = certs
            .iter()
            .copied()
            .find(|c| names(signer, c))
            .ok_or_else(|| bad("does not hold the certificate of its signer (certReq)".into()))?;
        let tsa_der = cert_der(tsa)?;
        check_signer_info(signer, &tst_der, tsa, &tsa_der)?;
        check_time_stamping_eku(tsa)?;
        let gen_time =
            i64::try_from(tst.gen_time.to_unix_duration().as_secs()).map_err(|_| bad("genTime out of range".into()))?;
        Ok(TimeStampToken {
            der: der.to_vec(),
            gen_time,
            policy: tst.policy.to_string(),
            serial: tst.serial_number.as_bytes().iter().map(|b| format!("{b:02x}")).collect(),
            imprint_algorithm: tst.message_imprint.hash_algorithm.oid,
            imprint: tst.message_imprint.hashed_message.as_bytes().to_vec(),
            nonce: tst.nonce.map(|n| n.as_bytes().to_vec()),
            tsa_cert: tsa_der,
            certs: certs.iter().map(|c| cert_der(c)).collect::<Result<_, _>>()?,
        })
    }

    /// Whether the token stamps `data` (its imprint is data's digest).
    pub fn covers(&self, data: &[u8]) -> Result<(), CadesError> {
        if digest_of(&self.imprint_algorithm, data)? != self.imprint {
            return Err(CadesError::Token("its message imprint is not the digest of the stamped data".into()));
        }
        Ok(())
    }
}

fn names(signer: &SignerInfo, cert: &Certificate) -> bool {
    match &signer.sid {
        SignerIdentifier::IssuerAndSerialNumber(is) => {
            is.issuer == cert.tbs_certificate.issuer && is.serial_number == cert.tbs_certificate.serial_number
        }
        SignerIdentifier::SubjectKeyIdentifier(ski) => cert
            .tbs_certificate
            .get::<x509_cert::ext::pkix::SubjectKeyIdentifier>()
            .ok()
            .flatten()
            .is_some_and(|(_, have)| have == *ski),
    }
}

/// The token's SignerInfo: signed attributes with contentType TSTInfo, a
/// messageDigest over the TSTInfo, an ESS signing certificate naming the
/// TSA's, and the signature over them.
fn check_signer_info(signer: &SignerInfo, tst_der: &[u8], tsa: &Certificate, tsa_der: &[u8]) -> Result<(), CadesError> {
    let bad = |m: &str| CadesError::Token(m.to_owned());
    let attrs = signer.signed_attrs.as_ref().ok_or_else(|| bad("has no signed attributes"))?;
    let content_type: der::oid::ObjectIdentifier = value_of(attrs, oid::ID_CONTENT_TYPE, "contentType")?;
    if content_type != oid::ID_CT_TST_INFO {
        return Err(bad("its contentType attribute is not TSTInfo"));
    }
    let digest: OctetString = value_of(attrs, oid::ID_MESSAGE_DIGEST, "messageDigest")?;
    if digest_of(&signer.digest_alg.oid, tst_der)? != digest.as_bytes() {
        return Err(bad("its messageDigest is not the digest of its TSTInfo"));
    }
    // RFC 3161 §2.4.1 / RFC 5816: signingCertificate (SHA-1) or v2.
    let v2 = attrs.iter().any(|a| a.oid == oid::ID_AA_SIGNING_CERTIFICATE_V2);
    let v1 = attrs.iter().any(|a| a.oid == oid::ID_AA_SIGNING_CERTIFICATE);
    let named = if v2 {
        let sc: SigningCertificateV2 = value_of(attrs, oid::ID_AA_SIGNING_CERTIFICATE_V2, "signing-certificate-v2")?;
        sc.certs.first().is_some_and(|id| {
            let alg = id.hash_algorithm.as_ref().map_or(oid::ID_SHA_256, |a| a.oid);
            digest_of(&alg, tsa_der).is_ok_and(|h| h == id.cert_hash.as_bytes())
        })
    } else if v1 {
        let sc: SigningCertificate = value_of(attrs, oid::ID_AA_SIGNING_CERTIFICATE, "signing-certificate")?;
        sc.certs.first().is_some_and(|id| crypto::sha1(tsa_der) == id.cert_hash.as_bytes())
    } else {
        return Err(bad("has no signing-certificate attribute (RFC 3161 §2.4.1)"));
    };
    if !named {
        return Err(bad("its signing-certificate attribute names another certificate"));
    }
    let message = attrs.to_der().map_err(CadesError::der("signed attributes"))?;
    crypto::verify(tsa, &signer.digest_alg.oid, &signer.signature_algorithm.oid, &message, signer.signature.as_bytes())
        .map_err(|_| bad("its signature does not verify with the TSA's certificate"))
}

/// RFC 3161 §2.3: the TSA's certificate has one extendedKeyUsage, critical,
/// naming id-kp-timeStamping and nothing else.
pub fn check_time_stamping_eku(cert: &Certificate) -> Result<(), CadesError> {
    let bad = |m: &str| CadesError::Token(format!("the TSA certificate {m} (RFC 3161 §2.3)"));
    let exts = cert.tbs_certificate.extensions.as_deref().unwrap_or_default();
    let mut eku = exts.iter().filter(|e| e.extn_id == oid::ID_CE_EXT_KEY_USAGE);
    let (Some(ext), None) = (eku.next(), eku.next()) else {
        return Err(bad("must have exactly one extendedKeyUsage"));
    };
    if !ext.critical {
        return Err(bad("has an extendedKeyUsage that is not critical"));
    }
    let purposes =
        ExtendedKeyUsage::from_der(ext.extn_value.as_bytes()).map_err(CadesError::der("extendedKeyUsage"))?;
    if purposes.0 != [oid::ID_KP_TIME_STAMPING] {
        return Err(bad("is not for id-kp-timeStamping alone"));
    }
    Ok(())
}
