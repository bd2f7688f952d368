//! The HPKI certificate profile: hcRole and professions, the typed holder of
//! a card certificate, and HPKI path validation with CRLs.

pub mod hcrole;
pub mod oid;
pub mod profession;

pub use hcrole::HcRoleError;
pub use profession::{Profession, UnknownProfession};
