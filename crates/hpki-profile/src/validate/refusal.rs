//! Why a certificate was refused: one enum for every stage of the pipeline,
//! each variant with its own message and a stable code for logs and APIs.

use crate::holder::HolderError;
use crate::validate::Purpose;

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
    #[error("{subject}: certifies {detail}, which this validator does not accept")]
    UnsupportedKey { subject: String, detail: String },
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
    #[error("{subject}: critical extension {oid} is not processed by this validator")]
    UnknownCriticalExtension { subject: String, oid: String },
    #[error("{subject}: {detail}")]
    NameConstraintViolation { subject: String, detail: String },
    #[error("{subject}: a CA above it constrains {form} names, which this validator does not process")]
    UnsupportedNameConstraint { subject: String, form: &'static str },
    #[error("{subject}: key usage {found} does not include {required}, required for {purpose}")]
    WrongKeyUsage { subject: String, purpose: Purpose, required: &'static str, found: String },
    #[error("{subject}: certificate policies [{found}] include none accepted for {purpose}")]
    PolicyNotAccepted { subject: String, purpose: Purpose, found: String },
    #[error("{subject}: claims {claim}, but {ca} certifies {grant}")]
    OutsideTrustScope { subject: String, claim: String, ca: String, grant: String },
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
    #[error("no CRL of {issuer}{detail}: revocation cannot be checked")]
    NoRevocationInfo { issuer: String, detail: String },
    #[error("{0}")]
    Holder(#[from] HolderError),
    #[error("the chain is longer than {limit} certificates")]
    ChainTooLong { limit: usize },
    #[error("the chain has more than {limit} intermediate CAs (self-issued ones not counted)")]
    TooManyIntermediates { limit: usize },
    #[error(
        "path building gave up after {checks} signature checks: the certificates presented form too many candidate paths"
    )]
    PathBudgetExhausted { checks: usize },
}

impl Refusal {
    /// Every code [`Refusal::code`] gives (the gateway's protocol has one
    /// `ErrorCode` for each; its tests check that against this list).
    pub const CODES: &'static [&'static str] = &[
        "malformed_certificate",
        "unknown_issuer",
        "bad_signature",
        "unsupported_algorithm",
        "unsupported_key",
        "expired",
        "not_yet_valid",
        "issuer_not_ca",
        "issuer_key_usage",
        "path_too_long",
        "not_end_entity",
        "unknown_critical_extension",
        "name_constraint_violation",
        "unsupported_name_constraint",
        "wrong_key_usage",
        "policy_not_accepted",
        "outside_trust_scope",
        "revoked",
        "stale_crl",
        "crl_not_yet_valid",
        "crl_bad_signature",
        "crl_unusable",
        "no_revocation_info",
        "malformed_hc_role",
        "chain_too_long",
        "path_budget_exhausted",
    ];

    /// A stable identifier of the reason, for audit logs and APIs (listed
    /// in [`Refusal::CODES`]).
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Malformed(_) => "malformed_certificate",
            Refusal::UnknownIssuer { .. } => "unknown_issuer",
            Refusal::BadSignature { .. } => "bad_signature",
            Refusal::UnsupportedAlgorithm { .. } => "unsupported_algorithm",
            Refusal::UnsupportedKey { .. } => "unsupported_key",
            Refusal::Expired { .. } => "expired",
            Refusal::NotYetValid { .. } => "not_yet_valid",
            Refusal::NotACa { .. } => "issuer_not_ca",
            Refusal::CaKeyUsage { .. } => "issuer_key_usage",
            Refusal::PathTooLong { .. } => "path_too_long",
            Refusal::NotAnEndEntity { .. } => "not_end_entity",
            Refusal::UnknownCriticalExtension { .. } => "unknown_critical_extension",
            Refusal::NameConstraintViolation { .. } => "name_constraint_violation",
            Refusal::UnsupportedNameConstraint { .. } => "unsupported_name_constraint",
            Refusal::WrongKeyUsage { .. } => "wrong_key_usage",
            Refusal::PolicyNotAccepted { .. } => "policy_not_accepted",
            Refusal::OutsideTrustScope { .. } => "outside_trust_scope",
            Refusal::Revoked { .. } => "revoked",
            Refusal::StaleCrl { .. } => "stale_crl",
            Refusal::CrlNotYetValid { .. } => "crl_not_yet_valid",
            Refusal::CrlBadSignature { .. } => "crl_bad_signature",
            Refusal::CrlUnusable { .. } => "crl_unusable",
            Refusal::NoRevocationInfo { .. } => "no_revocation_info",
            Refusal::Holder(HolderError::HcRole(_)) => "malformed_hc_role",
            Refusal::Holder(_) => "malformed_certificate",
            Refusal::ChainTooLong { .. } | Refusal::TooManyIntermediates { .. } => "chain_too_long",
            Refusal::PathBudgetExhausted { .. } => "path_budget_exhausted",
        }
    }

    /// How far a candidate path got before this refusal: when no path
    /// works, the refusal of the path that got furthest is the one to
    /// report (a dead end says less than an expired certificate on an
    /// otherwise complete path).
    pub(crate) fn specificity(&self) -> u8 {
        match self {
            Refusal::UnknownIssuer { .. } => 0,
            Refusal::BadSignature { .. } | Refusal::UnsupportedAlgorithm { .. } | Refusal::ChainTooLong { .. } => 1,
            _ => 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One refusal of every kind; the match without a wildcard makes a new
    /// variant a compile error here until it is added (and its code listed).
    fn one_of_each() -> Vec<Refusal> {
        let s = || "x".to_owned();
        let all = vec![
            Refusal::Malformed(s()),
            Refusal::UnknownIssuer { subject: s(), issuer: s() },
            Refusal::BadSignature { subject: s(), issuer: s() },
            Refusal::UnsupportedAlgorithm { subject: s(), detail: s() },
            Refusal::UnsupportedKey { subject: s(), detail: s() },
            Refusal::Expired { subject: s(), not_after: s() },
            Refusal::NotYetValid { subject: s(), not_before: s() },
            Refusal::NotACa { subject: s() },
            Refusal::CaKeyUsage { subject: s() },
            Refusal::PathTooLong { subject: s(), limit: 0, below: 1 },
            Refusal::NotAnEndEntity { subject: s() },
            Refusal::UnknownCriticalExtension { subject: s(), oid: s() },
            Refusal::NameConstraintViolation { subject: s(), detail: s() },
            Refusal::UnsupportedNameConstraint { subject: s(), form: "dNSName" },
            Refusal::WrongKeyUsage {
                subject: s(),
                purpose: Purpose::Signature,
                required: "nonRepudiation",
                found: s(),
            },
            Refusal::PolicyNotAccepted { subject: s(), purpose: Purpose::Signature, found: s() },
            Refusal::OutsideTrustScope { subject: s(), claim: s(), ca: s(), grant: s() },
            Refusal::Revoked { subject: s(), serial: s(), reason: None, date: s() },
            Refusal::StaleCrl { issuer: s(), next_update: s() },
            Refusal::CrlNotYetValid { issuer: s(), this_update: s() },
            Refusal::CrlBadSignature { issuer: s() },
            Refusal::CrlUnusable { issuer: s(), detail: s() },
            Refusal::NoRevocationInfo { issuer: s(), detail: s() },
            Refusal::Holder(HolderError::HcRole(crate::HcRoleError::Missing)),
            Refusal::ChainTooLong { limit: 1 },
            Refusal::TooManyIntermediates { limit: 1 },
            Refusal::PathBudgetExhausted { checks: 1 },
        ];
        for r in &all {
            match r {
                Refusal::Malformed(_)
                | Refusal::UnknownIssuer { .. }
                | Refusal::BadSignature { .. }
                | Refusal::UnsupportedAlgorithm { .. }
                | Refusal::UnsupportedKey { .. }
                | Refusal::Expired { .. }
                | Refusal::NotYetValid { .. }
                | Refusal::NotACa { .. }
                | Refusal::CaKeyUsage { .. }
                | Refusal::PathTooLong { .. }
                | Refusal::NotAnEndEntity { .. }
                | Refusal::UnknownCriticalExtension { .. }
                | Refusal::NameConstraintViolation { .. }
                | Refusal::UnsupportedNameConstraint { .. }
                | Refusal::WrongKeyUsage { .. }
                | Refusal::PolicyNotAccepted { .. }
                | Refusal::OutsideTrustScope { .. }
                | Refusal::Revoked { .. }
                | Refusal::StaleCrl { .. }
                | Refusal::CrlNotYetValid { .. }
                | Refusal::CrlBadSignature { .. }
                | Refusal::CrlUnusable { .. }
                | Refusal::NoRevocationInfo { .. }
                | Refusal::Holder(_)
                | Refusal::ChainTooLong { .. }
                | Refusal::TooManyIntermediates { .. }
                | Refusal::PathBudgetExhausted { .. } => {}
            }
        }
        all
    }

    #[test]
    fn every_code_is_listed_once() {
        let codes: Vec<&str> = one_of_each().iter().map(Refusal::code).collect();
        for c in &codes {
            assert!(Refusal::CODES.contains(c), "{c} missing from Refusal::CODES");
        }
        for c in Refusal::CODES {
            assert!(codes.contains(c), "{c} listed but given by no refusal");
        }
        let unique: std::collections::HashSet<_> = Refusal::CODES.iter().collect();
        assert_eq!(unique.len(), Refusal::CODES.len());
    }
}
