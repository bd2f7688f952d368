//! Every refusal code the gateway sends, each with its one HTTP status:
//! `{"error": code, "message": …}` on the wire (`docs/protocol.md`,
//! `docs/workflow.md`), the same code in the audit log, and what the card
//! agent matches on to say it for a person.
//!
//! One table below is the only place a code is spelled; the enum, its wire
//! text and its status come from it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident = ($wire:literal, $status:literal), )+) => {
        /// A refusal code. Non-exhaustive: an agent must expect codes it
        /// does not know (it then shows the gateway's message).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )+
        }

        impl ErrorCode {
            /// Every code, in table order.
            pub const ALL: &'static [ErrorCode] = &[ $( ErrorCode::$variant, )+ ];

            /// The code as sent (snake_case).
            pub fn as_str(self) -> &'static str {
                match self { $( ErrorCode::$variant => $wire, )+ }
            }

            /// The HTTP status the code is sent with.
            pub fn status(self) -> u16 {
                match self { $( ErrorCode::$variant => $status, )+ }
            }

            /// The code of a wire text; `None` for one this build does not know.
            pub fn from_wire(text: &str) -> Option<ErrorCode> {
                match text { $( $wire => Some(ErrorCode::$variant), )+ _ => None }
            }
        }
    };
}

codes! {
    // Requests.
    MalformedJson = ("malformed_json", 400),
    MalformedRequest = ("malformed_request", 400),
    BadRequest = ("bad_request", 400),
    MalformedCertificate = ("malformed_certificate", 400),
    MalformedSignature = ("malformed_signature", 400),
    BadBatch = ("bad_batch", 400),
    ContentNotObject = ("content_not_object", 400),
    InvalidBirthDate = ("invalid_birth_date", 400),
    InvalidName = ("invalid_name", 400),
    WeakPassword = ("weak_password", 400),
    NotFound = ("not_found", 404),
    BodyTooLarge = ("body_too_large", 413),
    BodyTimeout = ("body_timeout", 408),
    RateLimited = ("rate_limited", 429),
    // Login.
    UnknownChallenge = ("unknown_challenge", 401),
    ChallengeReplayed = ("challenge_replayed", 401),
    ChallengeExpired = ("challenge_expired", 401),
    ChallengeOtherTerminal = ("challenge_other_terminal", 401),
    SignatureInvalid = ("signature_invalid", 401),
    NoPersonId = ("no_person_id", 401),
    NotACardCertificate = ("not_a_card_certificate", 401),
    ProfessionNotPermitted = ("profession_not_permitted", 403),
    AssistantWrongInstitution = ("assistant_wrong_institution", 403),
    PersonNotRegistered = ("person_not_registered", 403),
    PersonDeactivated = ("person_deactivated", 403),
    RoleMismatch = ("role_mismatch", 403),
    TerminalSuspended = ("terminal_suspended", 403),
    // Certificates, as `docs/hpki-profile.md` lists them.
    UnknownIssuer = ("unknown_issuer", 401),
    BadSignature = ("bad_signature", 401),
    UnsupportedAlgorithm = ("unsupported_algorithm", 401),
    UnsupportedKey = ("unsupported_key", 401),
    Expired = ("expired", 401),
    NotYetValid = ("not_yet_valid", 401),
    IssuerNotCa = ("issuer_not_ca", 401),
    IssuerKeyUsage = ("issuer_key_usage", 401),
    PathTooLong = ("path_too_long", 401),
    ChainTooLong = ("chain_too_long", 401),
    PathBudgetExhausted = ("path_budget_exhausted", 401),
    NotEndEntity = ("not_end_entity", 401),
    UnknownCriticalExtension = ("unknown_critical_extension", 401),
    NameConstraintViolation = ("name_constraint_violation", 401),
    UnsupportedNameConstraint = ("unsupported_name_constraint", 401),
    WrongKeyUsage = ("wrong_key_usage", 401),
    PolicyNotAccepted = ("policy_not_accepted", 401),
    OutsideTrustScope = ("outside_trust_scope", 401),
    Revoked = ("revoked", 401),
    StaleCrl = ("stale_crl", 401),
    CrlNotYetValid = ("crl_not_yet_valid", 401),
    CrlBadSignature = ("crl_bad_signature", 401),
    CrlUnusable = ("crl_unusable", 401),
    NoRevocationInfo = ("no_revocation_info", 401),
    MalformedHcRole = ("malformed_hc_role", 401),
    // Signatures in CAdES and their time-stamps (`docs/workflow.md`).
    BadSignedAttributes = ("bad_signed_attributes", 400),
    SignedAttributesStale = ("signed_attributes_stale", 400),
    BadSignedDocument = ("bad_signed_document", 400),
    TimestampUnavailable = ("timestamp_unavailable", 503),
    TimestampInvalid = ("timestamp_invalid", 502),
    TimestampWrongNonce = ("timestamp_wrong_nonce", 502),
    TimestampWrongImprint = ("timestamp_wrong_imprint", 502),
    TimestampUntrusted = ("timestamp_untrusted", 502),
    TimestampTimeSkew = ("timestamp_time_skew", 502),
    // Sessions and roles.
    NoSession = ("no_session", 401),
    SessionUnknown = ("session_unknown", 401),
    SessionEnded = ("session_ended", 401),
    SessionIdleTimeout = ("session_idle_timeout", 401),
    SessionExpired = ("session_expired", 401),
    SessionOtherTerminal = ("session_other_terminal", 401),
    NotPermitted = ("not_permitted", 403),
    UnknownRole = ("unknown_role", 403),
    // The workflow (`docs/workflow.md`).
    UnknownPatient = ("unknown_patient", 404),
    UnknownEncounter = ("unknown_encounter", 404),
    UnknownDraft = ("unknown_draft", 404),
    UnknownDoctor = ("unknown_doctor", 404),
    NotADoctor = ("not_a_doctor", 422),
    NotLinked = ("not_linked", 403),
    NotYourDraft = ("not_your_draft", 403),
    NoOpenEncounter = ("no_open_encounter", 403),
    EncounterOtherInstitution = ("encounter_other_institution", 403),
    DraftOtherInstitution = ("draft_other_institution", 403),
    SignerOtherPerson = ("signer_other_person", 403),
    EncounterClosed = ("encounter_closed", 409),
    StaleVersion = ("stale_version", 409),
    AlreadyConfirmed = ("already_confirmed", 409),
    // Patients' rights (FLOW-9).
    UnknownCorrection = ("unknown_correction", 404),
    CorrectionAnswered = ("correction_answered", 409),
    // Emergency operation (FLOW-7).
    /// IT staff have not designated this person to break the glass.
    BreakGlassNotDesignated = ("break_glass_not_designated", 403),
    /// A break-glass request without its reason code or its free text.
    BreakGlassReasonRequired = ("break_glass_reason_required", 400),
    /// A reason code the gateway does not know.
    InvalidBreakGlassReason = ("invalid_break_glass_reason", 400),
    /// No break-glass access of this id is the caller's.
    UnknownBreakGlass = ("unknown_break_glass", 404),
    /// The break-glass access expired or was ended.
    BreakGlassExpired = ("break_glass_expired", 403),
    /// The gateway is read-only: writes are refused, reads served.
    ReadOnlyMode = ("read_only_mode", 503),
    /// The gateway is blocked: only sign-in and break-glass are served.
    BlockedMode = ("blocked_mode", 503),
    // Patients.
    InvalidCredentials = ("invalid_credentials", 401),
    PasswordChangeRequired = ("password_change_required", 403),
    AccountLocked = ("account_locked", 423),
    // The gateway itself.
    Internal = ("internal", 500),
    CorruptChallenge = ("corrupt_challenge", 500),
    CorruptDraft = ("corrupt_draft", 500),
    CorruptRecord = ("corrupt_record", 500),
    RecordKeyError = ("record_key_error", 500),
    StoreUnavailable = ("store_unavailable", 503),
    AuditUnavailable = ("audit_unavailable", 503),
    NoRandomness = ("no_randomness", 503),
    /// Too much work waiting (the patient listener's password checks);
    /// try again in a moment.
    Busy = ("busy", 503),
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown refusal code {0:?}")]
pub struct UnknownCode(pub String);

impl FromStr for ErrorCode {
    type Err = UnknownCode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorCode::from_wire(s).ok_or_else(|| UnknownCode(s.to_owned()))
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        ErrorCode::from_wire(&text).ok_or_else(|| serde::de::Error::custom(UnknownCode(text)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_snake_case_unique_and_round_trips() {
        let mut seen = std::collections::HashSet::new();
        for c in ErrorCode::ALL {
            let w = c.as_str();
            assert!(w.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'), "{w}");
            assert!(seen.insert(w), "{w} twice");
            assert_eq!(ErrorCode::from_wire(w), Some(*c));
            assert_eq!(serde_json::to_string(c).expect("json"), format!("\"{w}\""));
            assert!((400..600).contains(&c.status()), "{w}");
        }
        assert_eq!(ErrorCode::from_wire("something_new"), None);
    }
}
