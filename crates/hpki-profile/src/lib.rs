//! The HPKI certificate profile: hcRole and professions, the typed holder of
//! a card certificate, and HPKI path validation with CRLs.

pub mod hcrole;
pub mod holder;
pub mod oid;
pub mod profession;
pub mod signature;
pub mod validate;

pub use hcrole::HcRoleError;
pub use holder::{CardHolder, ExtendedKeyUsage, HolderError, HolderKind, KeyUsage, read_holder};
pub use oid::Oid;
pub use profession::{Profession, UnknownProfession};
pub use validate::{
    AcceptedPolicies, ConfigError, DEFAULT_MAX_INTERMEDIATES, Grant, Purpose, Refusal, Revocation, RevocationEvidence,
    TrustScope, Validated, Validator, ValidatorConfig,
};
