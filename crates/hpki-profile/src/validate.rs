//! HPKI path validation, written for this profile.
//!
//! rustls-webpki cannot be used: real HPKI certificates mark
//! certificatePolicies critical, and webpki refuses critical extensions it
//! does not process. This validator checks, in the order of the BRIEF:
//!
//! 1. the chain: from the leaf through configured or presented intermediates
//!    to a configured anchor, every signature verified;
//! 2. validity of every certificate (anchor included) at the given time;
//! 3. CA constraints: basicConstraints cA, keyCertSign, path length; and no
//!    critical extension the profile does not know, anywhere in the chain;
//! 4. revocation of every certificate below the anchor, from a CRL signed by
//!    its issuer: a CRL past its nextUpdate, or none at all, fails closed
//!    unless revocation checking is explicitly switched off;
//! 5. the leaf: an end entity, with the key usage of the purpose
//!    (`Authentication`: digitalSignature, `Signature`: nonRepudiation) and an
//!    accepted certificate policy of the purpose;
//! 6. the holder: the profession from hcRole (a malformed one is refused).
//!
//! Every refusal is a [`Refusal`] variant with its own message and a stable
//! [`code`](Refusal::code) for logs and APIs.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};

use ring::digest::{SHA256, digest};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::ParsedExtension;
use x509_parser::revocation_list::CertificateRevocationList;

use crate::holder::{CardHolder, HolderError, hex_serial, holder_of, parse_certificate};
use crate::oid::{self, Oid};
use crate::signature::{self, SignatureError};

/// What a certificate is being validated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// Login: the authentication certificate, digitalSignature.
    Authentication,
    /// Confirmation: the signature certificate, nonRepudiation.
    Signature,
}

impl Purpose {
    pub fn name(self) -> &'static str {
        match self {
            Purpose::Authentication => "auth",
            Purpose::Signature => "sign",
        }
    }
    fn key_usage(self) -> &'static str {
        match self {
            Purpose::Authentication => "digitalSignature",
            Purpose::Signature => "nonRepudiation",
        }
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// End-entity certificate policies accepted per purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedPolicies {
    pub authentication: Vec<Oid>,
    pub signature: Vec<Oid>,
}

impl AcceptedPolicies {
    /// The real HPKI policies, and the product's assistant-card policies.
    pub fn hpki() -> AcceptedPolicies {
        let p = |s: &str| Oid::parse(s).ok();
        AcceptedPolicies {
            authentication: [oid::HPKI_AUTHENTICATION_POLICY, oid::ASSISTANT_AUTHENTICATION_POLICY]
                .into_iter()
                .filter_map(p)
                .collect(),
            signature: [oid::HPKI_SIGNATURE_POLICY].into_iter().filter_map(p).collect(),
        }
    }

    /// Also the test HPKI policies of cards `hpki-certs` issues.
    pub fn with_test_policies(mut self) -> AcceptedPolicies {
        self.authentication.extend(Oid::parse(oid::TEST_HPKI_AUTHENTICATION_POLICY).ok());
        self.signature.extend(Oid::parse(oid::TEST_HPKI_SIGNATURE_POLICY).ok());
        self
    }

    pub fn accept(&mut self, purpose: Purpose, policy: Oid) {
        let list = match purpose {
            Purpose::Authentication => &mut self.authentication,
            Purpose::Signature => &mut self.signature,
        };
        if !list.contains(&policy) {
            list.push(policy);
        }
    }

    pub fn for_purpose(&self, purpose: Purpose) -> &[Oid] {
        match purpose {
            Purpose::Authentication => &self.authentication,
            Purpose::Signature => &self.signature,
        }
    }
}

/// Whether revocation is checked. Checking is the default; switching it off
/// is a named, explicit choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    Required,
    NotChecked,
}

pub struct ValidatorConfig {
    /// Trust anchors (DER).
    pub anchors: Vec<Vec<u8>>,
    /// Intermediate CA certificates known to the validator (DER).
    pub intermediates: Vec<Vec<u8>>,
    /// CRLs (DER), any number per issuer; the newest valid one is used.
    pub crls: Vec<Vec<u8>>,
    pub policies: AcceptedPolicies,
    pub revocation: Revocation,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("trust anchor #{index} is not a certificate: {detail}")]
    BadAnchor { index: usize, detail: String },
    #[error("intermediate #{index} is not a certificate: {detail}")]
    BadIntermediate { index: usize, detail: String },
    #[error("CRL #{index} is not a DER CRL: {detail}")]
    BadCrl { index: usize, detail: String },
    #[error("no trust anchor configured")]
    NoAnchor,
}

/// What a successful validation established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated {
    pub holder: CardHolder,
    pub purpose: Purpose,
    /// Subjects from the leaf up to the anchor.
    pub chain: Vec<String>,
    /// The CRLs that showed each certificate below the anchor unrevoked.
    pub revocation: Vec<RevocationEvidence>,
    /// Unix seconds until which this result holds (earliest notAfter or
    /// CRL nextUpdate).
    pub valid_until: i64,
    pub from_cache: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationEvidence {
    pub issuer: String,
    /// CRL number, hex (absent if the CRL has none).
    pub crl_number: Option<String>,
    pub this_update: i64,
    pub next_update: i64,
}

/// Why a certificate was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("not a valid certificate: {0}")]
    Malformed(String),
    #[error("{subject}: issued by {issuer}, which is neither a trust anchor nor a known intermediate")]
    UnknownIssuer { subject: String, issuer: String },
    #[error("{subject}: the signature by {issuer} does not verify (tampered or wrong issuer key)")]
    BadSignature { subject: String, issuer: String },
    #[error("{subject}: {detail}")]
    UnsupportedAlgorithm { subject: String, detail: String },
    #[error("{subject}: expired at {not_after}")]
    Expired { subject: String, not_after: String },
    #[error("{subject}: not valid before {not_before}")]
    NotYetValid { subject: String, not_before: String },
    #[error("{subject}: issues certificates but is not a CA (basicConstraints)")]
    NotACa { subject: String },
    #[error("{subject}: may not sign certificates (no keyCertSign)")]
    CaKeyUsage { subject: String },
    #[error("{subject}: path length constraint {limit} exceeded ({below} CAs below it)")]
    PathTooLong { subject: String, limit: u32, below: usize },
    #[error("{subject}: is a CA certificate, not an end entity")]
    NotAnEndEntity { subject: String },
    #[error("{subject}: critical extension {oid} is not processed by the HPKI profile")]
    UnknownCriticalExtension { subject: String, oid: String },
    #[error("{subject}: key usage {found} does not include {required}, required for {purpose}")]
    WrongKeyUsage { subject: String, purpose: Purpose, required: &'static str, found: String },
    #[error("{subject}: certificate policies [{found}] include none accepted for {purpose}")]
    PolicyNotAccepted { subject: String, purpose: Purpose, found: String },
    #[error("{subject}: revoked on {date}{}", reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default())]
    Revoked { subject: String, serial: String, reason: Option<String>, date: String },
    #[error("the CRL of {issuer} is stale: its nextUpdate {next_update} has passed")]
    StaleCrl { issuer: String, next_update: String },
    #[error("the CRL of {issuer} is not valid yet (thisUpdate {this_update})")]
    CrlNotYetValid { issuer: String, this_update: String },
    #[error("the CRL of {issuer} is not signed by it")]
    CrlBadSignature { issuer: String },
    #[error("the CRL of {issuer} cannot be used: {detail}")]
    CrlUnusable { issuer: String, detail: String },
    #[error("no CRL of {issuer}: revocation cannot be checked")]
    NoRevocationInfo { issuer: String },
    #[error("{0}")]
    Holder(#[from] HolderError),
    #[error("the chain is longer than {MAX_CHAIN} certificates")]
    ChainTooLong,
}

impl Refusal {
    /// A stable identifier of the reason, for audit logs and APIs.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Malformed(_) => "malformed_certificate",
            Refusal::UnknownIssuer { .. } => "unknown_issuer",
            Refusal::BadSignature { .. } => "bad_signature",
            Refusal::UnsupportedAlgorithm { .. } => "unsupported_algorithm",
            Refusal::Expired { .. } => "expired",
            Refusal::NotYetValid { .. } => "not_yet_valid",
            Refusal::NotACa { .. } => "issuer_not_ca",
            Refusal::CaKeyUsage { .. } => "issuer_key_usage",
            Refusal::PathTooLong { .. } => "path_too_long",
            Refusal::NotAnEndEntity { .. } => "not_end_entity",
            Refusal::UnknownCriticalExtension { .. } => "unknown_critical_extension",
            Refusal::WrongKeyUsage { .. } => "wrong_key_usage",
            Refusal::PolicyNotAccepted { .. } => "policy_not_accepted",
            Refusal::Revoked { .. } => "revoked",
            Refusal::StaleCrl { .. } => "stale_crl",
            Refusal::CrlNotYetValid { .. } => "crl_not_yet_valid",
            Refusal::CrlBadSignature { .. } => "crl_bad_signature",
            Refusal::CrlUnusable { .. } => "crl_unusable",
            Refusal::NoRevocationInfo { .. } => "no_revocation_info",
            Refusal::Holder(HolderError::HcRole(_)) => "malformed_hc_role",
            Refusal::Holder(_) => "malformed_certificate",
            Refusal::ChainTooLong => "chain_too_long",
        }
    }
}

const MAX_CHAIN: usize = 8;
const CACHE_CAPACITY: usize = 10_000;

/// Extensions the profile processes, so they may be critical.
const KNOWN_CRITICAL: &[&str] = &[
    "2.5.29.15", // keyUsage
    "2.5.29.19", // basicConstraints
    "2.5.29.32", // certificatePolicies (critical in real HPKI certificates)
    "2.5.29.17", // subjectAltName
    "2.5.29.37", // extendedKeyUsage
    "2.5.29.9",  // subjectDirectoryAttributes (hcRole)
];
/// CRL and CRL-entry extensions the profile processes.
const KNOWN_CRL_EXTENSIONS: &[&str] = &["2.5.29.20", "2.5.29.35", "2.5.29.21", "2.5.29.24"];

struct Indexed {
    subject: Vec<u8>,
    der: Vec<u8>,
}

/// Cache key: leaf, presented intermediates, purpose, CRL set.
type CacheKey = ([u8; 32], Purpose);

struct CacheEntry {
    result: Validated,
    valid_from: i64,
}

pub struct Validator {
    anchors: Vec<Indexed>,
    intermediates: Vec<Indexed>,
    crls: Vec<Indexed>,
    crl_version: [u8; 32],
    policies: AcceptedPolicies,
    revocation: Revocation,
    cache: Mutex<HashMap<CacheKey, CacheEntry>>,
}

impl Validator {
    pub fn new(config: ValidatorConfig) -> Result<Validator, ConfigError> {
        if config.anchors.is_empty() {
            return Err(ConfigError::NoAnchor);
        }
        let index_certs = |ders: Vec<Vec<u8>>, bad: fn(usize, String) -> ConfigError| {
            ders.into_iter()
                .enumerate()
                .map(|(i, der)| {
                    let subject =
                        parse_certificate(&der).map_err(|e| bad(i, e.to_string()))?.subject().as_raw().to_vec();
                    Ok(Indexed { subject, der })
                })
                .collect::<Result<Vec<_>, ConfigError>>()
        };
        let anchors = index_certs(config.anchors, |index, detail| ConfigError::BadAnchor { index, detail })?;
        let intermediates =
            index_certs(config.intermediates, |index, detail| ConfigError::BadIntermediate { index, detail })?;
        let mut version = ring::digest::Context::new(&SHA256);
        let crls = config
            .crls
            .into_iter()
            .enumerate()
            .map(|(index, der)| {
                let crl = parse_crl(&der).map_err(|detail| ConfigError::BadCrl { index, detail })?;
                version.update(digest(&SHA256, &der).as_ref());
                Ok(Indexed { subject: crl.issuer().as_raw().to_vec(), der })
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        let mut crl_version = [0u8; 32];
        crl_version.copy_from_slice(version.finish().as_ref());
        Ok(Validator {
            anchors,
            intermediates,
            crls,
            crl_version,
            policies: config.policies,
            revocation: config.revocation,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Identifies the CRL set in force (part of every cache key).
    pub fn crl_version(&self) -> [u8; 32] {
        self.crl_version
    }

    /// Validates `leaf` (DER) for `purpose` at `at` (Unix seconds), with any
    /// intermediates the holder presented. A repeat of a successful
    /// validation within its validity costs one hash and a lookup.
    pub fn validate(
        &self,
        leaf: &[u8],
        presented: &[Vec<u8>],
        purpose: Purpose,
        at: i64,
    ) -> Result<Validated, Refusal> {
        let key = self.cache_key(leaf, presented, purpose);
        if let Some(hit) = self.cache.lock().unwrap_or_else(PoisonError::into_inner).get(&key)
            && hit.valid_from <= at
            && at < hit.result.valid_until
        {
            let mut v = hit.result.clone();
            v.from_cache = true;
            return Ok(v);
        }
        let (result, valid_from) = self.validate_uncached(leaf, presented, purpose, at)?;
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert(key, CacheEntry { result: result.clone(), valid_from });
        Ok(result)
    }

    fn cache_key(&self, leaf: &[u8], presented: &[Vec<u8>], purpose: Purpose) -> CacheKey {
        let mut ctx = ring::digest::Context::new(&SHA256);
        ctx.update(&self.crl_version);
        ctx.update(&(leaf.len() as u64).to_be_bytes());
        ctx.update(leaf);
        for p in presented {
            ctx.update(&(p.len() as u64).to_be_bytes());
            ctx.update(p);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        (out, purpose)
    }

    fn validate_uncached(
        &self,
        leaf_der: &[u8],
        presented: &[Vec<u8>],
        purpose: Purpose,
        at: i64,
    ) -> Result<(Validated, i64), Refusal> {
        let leaf = parse_certificate(leaf_der).map_err(|e| Refusal::Malformed(e.to_string()))?;
        let presented = presented
            .iter()
            .map(|der| {
                parse_certificate(der)
                    .map(|c| Indexed { subject: c.subject().as_raw().to_vec(), der: der.clone() })
                    .map_err(|e| Refusal::Malformed(format!("presented intermediate: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;

        // 1. Chain, signatures verified while building.
        let chain_ders = self.build_chain(&leaf, &presented)?;
        let chain = chain_ders
            .iter()
            .map(|d| parse_certificate(d).map_err(|e| Refusal::Malformed(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let all: Vec<&X509Certificate<'_>> = std::iter::once(&leaf).chain(chain.iter()).collect();

        // 2. Validity at `at`.
        let mut valid_from = i64::MIN;
        let mut valid_until = i64::MAX;
        for c in &all {
            let nb = c.validity().not_before.timestamp();
            let na = c.validity().not_after.timestamp();
            if at < nb {
                return Err(Refusal::NotYetValid { subject: c.subject().to_string(), not_before: rfc3339(nb) });
            }
            if at >= na {
                return Err(Refusal::Expired { subject: c.subject().to_string(), not_after: rfc3339(na) });
            }
            valid_from = valid_from.max(nb);
            valid_until = valid_until.min(na);
        }

        // 3. Critical extensions everywhere; CA constraints above the leaf.
        for c in &all {
            check_critical_extensions(c)?;
        }
        for (i, ca) in chain.iter().enumerate() {
            let (is_ca, path_len) = basic_constraints(ca);
            if !is_ca {
                return Err(Refusal::NotACa { subject: ca.subject().to_string() });
            }
            if let Some(ku) = key_usage(ca)
                && !ku.key_cert_sign()
            {
                return Err(Refusal::CaKeyUsage { subject: ca.subject().to_string() });
            }
            // CAs between this one and the leaf.
            if let Some(limit) = path_len
                && i > limit as usize
            {
                return Err(Refusal::PathTooLong { subject: ca.subject().to_string(), limit, below: i });
            }
        }

        // 4. Revocation of everything below the anchor.
        let mut evidence = Vec::new();
        if self.revocation == Revocation::Required {
            for i in 0..all.len() - 1 {
                let e = self.check_revocation(all[i], all[i + 1], at)?;
                valid_from = valid_from.max(e.this_update);
                valid_until = valid_until.min(e.next_update);
                evidence.push(e);
            }
        }

        // 5. The leaf: end entity, key usage and policy of the purpose.
        let subject = leaf.subject().to_string();
        if basic_constraints(&leaf).0 {
            return Err(Refusal::NotAnEndEntity { subject });
        }
        let holder = holder_of(&leaf)?;
        let ku_ok = match purpose {
            Purpose::Authentication => holder.key_usage.digital_signature,
            Purpose::Signature => holder.key_usage.non_repudiation,
        };
        if !holder.key_usage.present || !ku_ok {
            let found = if holder.key_usage.present { holder.key_usage.names().join(", ") } else { "(none)".into() };
            return Err(Refusal::WrongKeyUsage { subject, purpose, required: purpose.key_usage(), found });
        }
        let accepted = self.policies.for_purpose(purpose);
        if !holder.policies.iter().any(|p| accepted.contains(p)) {
            let found = holder.policies.iter().map(Oid::to_string).collect::<Vec<_>>().join(", ");
            return Err(Refusal::PolicyNotAccepted { subject, purpose, found });
        }

        // 6. The holder (hcRole already decoded by `holder_of`).
        let result = Validated {
            holder,
            purpose,
            chain: all.iter().map(|c| c.subject().to_string()).collect(),
            revocation: evidence,
            valid_until,
            from_cache: false,
        };
        Ok((result, valid_from))
    }

    /// Issuers above `leaf`, up to and including an anchor (DER each).
    fn build_chain(&self, leaf: &X509Certificate<'_>, presented: &[Indexed]) -> Result<Vec<Vec<u8>>, Refusal> {
        let mut chain: Vec<Vec<u8>> = Vec::new();
        let mut current_der: Vec<u8> = leaf.as_raw().to_vec();
        loop {
            if chain.len() >= MAX_CHAIN {
                return Err(Refusal::ChainTooLong);
            }
            let current = parse_certificate(&current_der).map_err(|e| Refusal::Malformed(e.to_string()))?;
            let issuer_raw = current.issuer().as_raw();
            let mut bad_signature = None;

            for a in self.anchors.iter().filter(|a| a.subject == issuer_raw) {
                match verify_issued_by(&current, &a.der) {
                    Ok(()) => {
                        chain.push(a.der.clone());
                        return Ok(chain);
                    }
                    Err(r) => bad_signature = Some(r),
                }
            }
            let next = self
                .intermediates
                .iter()
                .chain(presented.iter())
                .filter(|c| c.subject == issuer_raw && !chain.contains(&c.der) && c.der != current_der)
                .find_map(|c| match verify_issued_by(&current, &c.der) {
                    Ok(()) => Some(c.der.clone()),
                    Err(r) => {
                        bad_signature = Some(r);
                        None
                    }
                });
            match next {
                Some(der) => {
                    chain.push(der.clone());
                    current_der = der;
                }
                None => {
                    return Err(bad_signature.unwrap_or_else(|| Refusal::UnknownIssuer {
                        subject: current.subject().to_string(),
                        issuer: current.issuer().to_string(),
                    }));
                }
            }
        }
    }

    fn check_revocation(
        &self,
        cert: &X509Certificate<'_>,
        issuer: &X509Certificate<'_>,
        at: i64,
    ) -> Result<RevocationEvidence, Refusal> {
        let issuer_name = issuer.subject().to_string();
        let mut candidates: Vec<CertificateRevocationList<'_>> = Vec::new();
        let mut bad_signature = false;
        for c in self.crls.iter().filter(|c| c.subject == cert.issuer().as_raw()) {
            let Ok(crl) = parse_crl(&c.der) else { continue };
            let sig = signature::verify(
                issuer.public_key(),
                &crl.signature_algorithm,
                &crl.signature_value.data,
                crl.tbs_cert_list.as_ref(),
            );
            match sig {
                Ok(()) => candidates.push(crl),
                Err(_) => bad_signature = true,
            }
        }
        let Some(crl) = candidates.into_iter().max_by_key(|c| c.last_update().timestamp()) else {
            return Err(if bad_signature {
                Refusal::CrlBadSignature { issuer: issuer_name }
            } else {
                Refusal::NoRevocationInfo { issuer: issuer_name }
            });
        };
        if let Some(ku) = key_usage(issuer)
            && !ku.crl_sign()
        {
            return Err(Refusal::CrlUnusable {
                issuer: issuer_name,
                detail: "its issuer may not sign CRLs (no cRLSign)".into(),
            });
        }
        for ext in crl.extensions() {
            let id = ext.oid.to_id_string();
            if ext.critical && !KNOWN_CRL_EXTENSIONS.contains(&id.as_str()) {
                return Err(Refusal::CrlUnusable {
                    issuer: issuer_name,
                    detail: format!("critical extension {id} (delta, partitioned or indirect CRLs are not supported)"),
                });
            }
        }
        let this_update = crl.last_update().timestamp();
        let Some(next_update) = crl.next_update().map(|t| t.timestamp()) else {
            return Err(Refusal::CrlUnusable { issuer: issuer_name, detail: "it has no nextUpdate".into() });
        };
        if at < this_update {
            return Err(Refusal::CrlNotYetValid { issuer: issuer_name, this_update: rfc3339(this_update) });
        }
        if at >= next_update {
            return Err(Refusal::StaleCrl { issuer: issuer_name, next_update: rfc3339(next_update) });
        }
        let serial = strip_zeros(cert.raw_serial());
        for entry in crl.iter_revoked_certificates() {
            if strip_zeros(entry.raw_serial()) != serial {
                continue;
            }
            if let Some(ext) = entry
                .extensions()
                .iter()
                .find(|e| e.critical && !KNOWN_CRL_EXTENSIONS.contains(&e.oid.to_id_string().as_str()))
            {
                return Err(Refusal::CrlUnusable {
                    issuer: issuer_name,
                    detail: format!("entry with critical extension {}", ext.oid.to_id_string()),
                });
            }
            let reason = entry.reason_code().map(|(_, r)| r);
            // removeFromCRL (8) lifts a hold; a revocation dated after `at`
            // did not exist at `at`.
            if reason.is_some_and(|r| r.0 == 8) || entry.revocation_date.timestamp() > at {
                continue;
            }
            return Err(Refusal::Revoked {
                subject: cert.subject().to_string(),
                serial: hex_serial(cert.raw_serial()),
                reason: reason.map(|r| reason_name(r.0).to_owned()),
                date: rfc3339(entry.revocation_date.timestamp()),
            });
        }
        Ok(RevocationEvidence {
            issuer: issuer_name,
            crl_number: crl.crl_number().map(|n| hex_serial(&n.to_bytes_be())),
            this_update,
            next_update,
        })
    }
}

fn parse_crl(der: &[u8]) -> Result<CertificateRevocationList<'_>, String> {
    let (rest, crl) = x509_parser::parse_x509_crl(der).map_err(|e| e.to_string())?;
    if !rest.is_empty() {
        return Err(format!("{} bytes after the CRL", rest.len()));
    }
    Ok(crl)
}

fn verify_issued_by(cert: &X509Certificate<'_>, issuer_der: &[u8]) -> Result<(), Refusal> {
    let issuer = parse_certificate(issuer_der).map_err(|e| Refusal::Malformed(e.to_string()))?;
    signature::verify(
        issuer.public_key(),
        &cert.signature_algorithm,
        &cert.signature_value.data,
        cert.tbs_certificate.as_ref(),
    )
    .map_err(|e| match e {
        SignatureError::Invalid => {
            Refusal::BadSignature { subject: cert.subject().to_string(), issuer: issuer.subject().to_string() }
        }
        e @ SignatureError::Unsupported(_) => {
            Refusal::UnsupportedAlgorithm { subject: cert.subject().to_string(), detail: e.to_string() }
        }
    })
}

fn check_critical_extensions(cert: &X509Certificate<'_>) -> Result<(), Refusal> {
    for ext in cert.extensions() {
        let id = ext.oid.to_id_string();
        if ext.critical && !KNOWN_CRITICAL.contains(&id.as_str()) {
            return Err(Refusal::UnknownCriticalExtension {
                subject: cert.subject().to_string(),
                oid: oid::display(&ext.oid),
            });
        }
    }
    Ok(())
}

fn basic_constraints(cert: &X509Certificate<'_>) -> (bool, Option<u32>) {
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::BasicConstraints(bc) => Some((bc.ca, bc.path_len_constraint)),
            _ => None,
        })
        .unwrap_or((false, None))
}

fn key_usage(cert: &X509Certificate<'_>) -> Option<x509_parser::extensions::KeyUsage> {
    cert.extensions().iter().find_map(|e| match e.parsed_extension() {
        ParsedExtension::KeyUsage(ku) => Some(*ku),
        _ => None,
    })
}

fn strip_zeros(raw: &[u8]) -> &[u8] {
    let n = raw.iter().take_while(|b| **b == 0).count();
    &raw[n..]
}

/// RFC 5280 §5.3.1 reason names.
pub fn reason_name(code: u8) -> &'static str {
    match code {
        0 => "unspecified",
        1 => "keyCompromise",
        2 => "cACompromise",
        3 => "affiliationChanged",
        4 => "superseded",
        5 => "cessationOfOperation",
        6 => "certificateHold",
        8 => "removeFromCRL",
        9 => "privilegeWithdrawn",
        10 => "aACompromise",
        _ => "unknown reason",
    }
}

/// RFC 3339 text of a Unix time (UTC).
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| format!("@{unix}"))
}
