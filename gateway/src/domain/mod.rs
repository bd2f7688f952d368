//! The gateway's rules without HTTP: who may do what (roles), patients'
//! passwords, the record keys, and the per-terminal request rate.

pub mod keyring;
pub mod passwords;
pub mod rate_limit;
pub mod roles;
