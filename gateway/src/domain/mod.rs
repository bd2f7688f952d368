//! The gateway's rules without HTTP: who may do what (roles), patients'
//! passwords and the bounded pool that checks them, the record keys, and
//! the request rates (per terminal, per patient source and ID), and a
//! patient's disclosure in FHIR R4.

pub mod fhir;
pub mod keyring;
pub mod password_pool;
pub mod passwords;
pub mod rate_limit;
pub mod roles;
