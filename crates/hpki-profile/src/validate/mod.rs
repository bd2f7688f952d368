//! HPKI path validation: RFC 5280 §6 with the HPKI profile on top.
//!
//! rustls-webpki cannot be used: real HPKI certificates mark
//! certificatePolicies critical, their CRLs carry critical Issuing
//! Distribution Points, and webpki refuses both. One ordered pipeline, each
//! stage in its own module:
//!
//! 1. [`path`]: path building — depth first over every candidate issuer,
//!    backtracking until a candidate path passes every check below, within
//!    a budget of signature checks;
//! 2. [`chain`]: RFC 5280 §6.1 on that path — the §4 rules of each
//!    certificate used, validity (inclusive), basicConstraints, keyUsage
//!    keyCertSign, path lengths (self-issued certificates excepted),
//!    critical extensions, name constraints;
//! 3. [`revocation`]: RFC 5280 §6.3 for every certificate below the anchor
//!    — the CRL whose scope covers it, signed by its issuer, current;
//!    none fails closed unless revocation is explicitly not checked;
//! 4. for the HPKI purposes ([`Purpose::Authentication`],
//!    [`Purpose::Signature`]): an end entity, and [`scope`] — whether the
//!    CAs of the path may certify what the holder claims (both checked right
//!    after 2, before any CRL: they are properties of the path) — then,
//!    after 3, the end entity's key usage, certificate policy and holder
//!    (hcRole). [`Purpose::Any`] skips 4: pure RFC 5280, for conformance
//!    tests and non-HPKI anchors.
//!
//! Every refusal is a [`Refusal`] variant with its own message and a stable
//! [`code`](Refusal::code) for logs and APIs.

mod cert;
mod chain;
mod memo;
mod names;
mod path;
mod refusal;
mod revocation;
mod scope;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use ring::digest::{SHA256, digest};

use crate::holder::{CardHolder, holder_of, parse_certificate};
use crate::oid::{self, Oid};
use cert::Cert;
use memo::SignatureMemo;
use revocation::Crl;
use scope::Scoped;

pub use refusal::Refusal;
pub use revocation::reason_name;
pub use scope::{Grant, TrustScope};

/// What a certificate is being validated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// Login: the authentication certificate, digitalSignature.
    Authentication,
    /// Confirmation: the signature certificate, nonRepudiation.
    Signature,
    /// Pure RFC 5280 path validation: no key usage, policy, hcRole or
    /// scope requirement on the end entity.
    Any,
}

impl Purpose {
    pub fn name(self) -> &'static str {
        match self {
            Purpose::Authentication => "auth",
            Purpose::Signature => "sign",
            Purpose::Any => "any",
        }
    }
    fn key_usage(self) -> &'static str {
        match self {
            Purpose::Authentication => "digitalSignature",
            Purpose::Signature => "nonRepudiation",
            Purpose::Any => "(none)",
        }
    }
    /// The HPKI profile applies (everything but [`Purpose::Any`]).
    pub fn is_hpki(self) -> bool {
        self != Purpose::Any
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
            Purpose::Any => return,
        };
        if !list.contains(&policy) {
            list.push(policy);
        }
    }

    pub fn for_purpose(&self, purpose: Purpose) -> &[Oid] {
        match purpose {
            Purpose::Authentication => &self.authentication,
            Purpose::Signature => &self.signature,
            Purpose::Any => &[],
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

/// Intermediates (self-issued ones not counted) a path may have unless the
/// configuration says otherwise.
pub const DEFAULT_MAX_INTERMEDIATES: usize = 6;

pub struct ValidatorConfig {
    /// Trust anchors (DER).
    pub anchors: Vec<Vec<u8>>,
    /// Intermediate CA certificates known to the validator (DER).
    pub intermediates: Vec<Vec<u8>>,
    /// CRLs (DER), any number per issuer; the newest current one whose
    /// scope covers a certificate is used.
    pub crls: Vec<Vec<u8>>,
    pub policies: AcceptedPolicies,
    pub revocation: Revocation,
    /// What each anchor or CA may certify; a path through no scoped CA
    /// certifies no card holder ([`Grant::Nothing`]).
    pub scopes: Vec<TrustScope>,
    /// At most this many intermediates below the anchor (self-issued ones
    /// not counted); [`DEFAULT_MAX_INTERMEDIATES`] is a sensible value.
    pub max_intermediates: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("trust anchor #{index} is not a certificate: {detail}")]
    BadAnchor { index: usize, detail: String },
    #[error("intermediate #{index} is not a certificate: {detail}")]
    BadIntermediate { index: usize, detail: String },
    #[error("CRL #{index} is not a DER CRL: {detail}")]
    BadCrl { index: usize, detail: String },
    #[error("trust scope #{index}: its CA is not a certificate: {detail}")]
    BadScope { index: usize, detail: String },
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
    /// The certificates of that path (DER), leaf first, anchor last: with
    /// the CRLs of [`Validated::revocation`], the validation data a
    /// long-term signature embeds.
    pub path: Vec<Arc<[u8]>>,
    /// The CRLs that showed each certificate below the anchor unrevoked.
    pub revocation: Vec<RevocationEvidence>,
    /// Unix seconds until which this result holds (earliest notAfter or
    /// CRL nextUpdate).
    pub valid_until: i64,
    pub from_cache: bool,
}

/// The CRL actually used for one certificate of the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationEvidence {
    pub issuer: String,
    /// CRL number, hex (absent if the CRL has none).
    pub crl_number: Option<String>,
    pub this_update: i64,
    pub next_update: i64,
    /// What the CRL speaks for (its Issuing Distribution Point), in words.
    pub scope: String,
    /// The CRL itself (DER).
    pub crl: Arc<[u8]>,
}

const CACHE_CAPACITY: usize = 10_000;

/// A path that passed: its subjects, the CRLs used, and the span of time
/// in which the result holds.
struct Accepted {
    chain: Vec<String>,
    path: Vec<Arc<[u8]>>,
    evidence: Vec<RevocationEvidence>,
    from: i64,
    until: i64,
}

/// Cache key: leaf, presented intermediates, purpose, CRL set.
type CacheKey = ([u8; 32], Purpose);

struct CacheEntry {
    result: Validated,
    valid_from: i64,
}

pub struct Validator {
    anchors: Vec<Cert>,
    intermediates: Vec<Cert>,
    crls: Vec<Crl>,
    crl_version: [u8; 32],
    policies: AcceptedPolicies,
    revocation: Revocation,
    scopes: Vec<Scoped>,
    max_intermediates: usize,
    memo: SignatureMemo,
    cache: Mutex<HashMap<CacheKey, CacheEntry>>,
}

impl Validator {
    pub fn new(config: ValidatorConfig) -> Result<Validator, ConfigError> {
        if config.anchors.is_empty() {
            return Err(ConfigError::NoAnchor);
        }
        let read = |ders: Vec<Vec<u8>>, bad: fn(usize, String) -> ConfigError| {
            ders.into_iter()
                .enumerate()
                .map(|(i, der)| Cert::parse(&der).map_err(|e| bad(i, e.to_string())))
                .collect::<Result<Vec<_>, ConfigError>>()
        };
        let anchors = read(config.anchors, |index, detail| ConfigError::BadAnchor { index, detail })?;
        let intermediates = read(config.intermediates, |index, detail| ConfigError::BadIntermediate { index, detail })?;
        let mut version = ring::digest::Context::new(&SHA256);
        let crls = config
            .crls
            .into_iter()
            .enumerate()
            .map(|(index, der)| {
                version.update(digest(&SHA256, &der).as_ref());
                Crl::parse(&der).map_err(|detail| ConfigError::BadCrl { index, detail })
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        let mut crl_version = [0u8; 32];
        crl_version.copy_from_slice(version.finish().as_ref());
        let scopes = config
            .scopes
            .into_iter()
            .enumerate()
            .map(|(index, s)| {
                let ca = Cert::parse(&s.ca).map_err(|e| ConfigError::BadScope { index, detail: e.to_string() })?;
                Ok(Scoped { ca, grant: s.grant })
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        Ok(Validator {
            anchors,
            intermediates,
            crls,
            crl_version,
            policies: config.policies,
            revocation: config.revocation,
            scopes,
            max_intermediates: config.max_intermediates,
            memo: SignatureMemo::default(),
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
            && at <= hit.result.valid_until
        {
            let mut v = hit.result.clone();
            v.from_cache = true;
            return Ok(v);
        }
        let (result, valid_from) = self.run_pipeline(leaf, presented, purpose, at)?;
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

    /// Validates without reading or filling the result cache (signature
    /// checks of CA certificates and CRLs are still remembered): what the
    /// first login of a card costs.
    pub fn validate_uncached(
        &self,
        leaf: &[u8],
        presented: &[Vec<u8>],
        purpose: Purpose,
        at: i64,
    ) -> Result<Validated, Refusal> {
        self.run_pipeline(leaf, presented, purpose, at).map(|(v, _)| v)
    }

    /// The pipeline: path building, with every candidate path checked by
    /// [`Validator::check_path`] until one passes.
    fn run_pipeline(
        &self,
        leaf_der: &[u8],
        presented: &[Vec<u8>],
        purpose: Purpose,
        at: i64,
    ) -> Result<(Validated, i64), Refusal> {
        let parsed = parse_certificate(leaf_der).map_err(|e| Refusal::Malformed(e.to_string()))?;
        let leaf = Cert::from_parsed(&parsed, leaf_der);
        let holder = holder_of(&parsed)?;
        let presented = presented
            .iter()
            .map(|der| Cert::parse(der).map_err(|e| Refusal::Malformed(format!("presented intermediate: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let pool: Vec<&Cert> = self.intermediates.iter().chain(presented.iter()).collect();
        let search = path::Search::new(&self.anchors, pool, &self.memo);
        let accepted = search.run(&leaf, &mut |p: &[&Cert]| self.check_path(p, &holder, purpose, at))?;
        let result = Validated {
            holder,
            purpose,
            chain: accepted.chain,
            path: accepted.path,
            revocation: accepted.evidence,
            valid_until: accepted.until,
            from_cache: false,
        };
        Ok((result, accepted.from))
    }

    /// Every check of one complete candidate path, in order.
    fn check_path(&self, path: &[&Cert], holder: &CardHolder, purpose: Purpose, at: i64) -> Result<Accepted, Refusal> {
        let span = chain::check(path, at, self.max_intermediates, &self.memo)?;
        // A card certificate, and whether these CAs may certify its holder
        // at all, are properties of the path like basicConstraints: before
        // any CRL is looked at.
        if purpose.is_hpki() {
            if path[0].is_ca() {
                return Err(Refusal::NotAnEndEntity { subject: holder.subject.clone() });
            }
            scope::check(&self.scopes, path, holder)?;
        }
        let (mut from, mut until) = (span.from, span.until);
        let mut evidence = Vec::new();
        if self.revocation == Revocation::Required {
            for pair in path.windows(2) {
                let e = revocation::check(pair[0], pair[1], at, &self.crls, &self.memo)?;
                from = from.max(e.this_update);
                until = until.min(e.next_update);
                evidence.push(e);
            }
        }
        if purpose.is_hpki() {
            self.check_hpki(holder, purpose)?;
        }
        Ok(Accepted {
            chain: path.iter().map(|c| c.subject_text.clone()).collect(),
            path: path.iter().map(|c| c.der.clone()).collect(),
            evidence,
            from,
            until,
        })
    }

    /// The HPKI profile on the end entity: the key usage and a certificate
    /// policy of the purpose.
    fn check_hpki(&self, holder: &CardHolder, purpose: Purpose) -> Result<(), Refusal> {
        let subject = holder.subject.clone();
        let ku_ok = match purpose {
            Purpose::Authentication => holder.key_usage.digital_signature,
            Purpose::Signature => holder.key_usage.non_repudiation,
            Purpose::Any => true,
        };
        if !holder.key_usage.present || !ku_ok {
            let found = if holder.key_usage.present { holder.key_usage.names().join(", ") } else { "(none)".into() };
            return Err(Refusal::WrongKeyUsage { subject, purpose, required: purpose.key_usage(), found });
        }
        if let Some(eku) = &holder.extended_key_usage {
            use crate::holder::ExtendedKeyUsage as Eku;
            let (wanted, required): (&[&str], &'static str) = match purpose {
                Purpose::Authentication => {
                    (&[Eku::CLIENT_AUTH, Eku::SMARTCARD_LOGON], "extendedKeyUsage clientAuth or smartcardLogon")
                }
                Purpose::Signature => (
                    &[Eku::EMAIL_PROTECTION, Eku::DOCUMENT_SIGNING],
                    "extendedKeyUsage emailProtection or documentSigning",
                ),
                Purpose::Any => (&[], ""),
            };
            if !eku.allows(wanted) {
                let found = format!("extendedKeyUsage {}", eku.purposes.join(", "));
                return Err(Refusal::WrongKeyUsage { subject, purpose, required, found });
            }
        }
        let accepted = self.policies.for_purpose(purpose);
        if !holder.policies.iter().any(|p| accepted.contains(p)) {
            let found = holder.policies.iter().map(Oid::to_string).collect::<Vec<_>>().join(", ");
            return Err(Refusal::PolicyNotAccepted { subject, purpose, found });
        }
        Ok(())
    }
}

/// RFC 3339 text of a Unix time (UTC).
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| format!("@{unix}"))
}
