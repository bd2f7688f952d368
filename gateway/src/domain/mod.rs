//! The gateway's rules without HTTP: who may do what (roles), patients'
//! passwords, and the record keys.

pub mod keyring;
pub mod passwords;
pub mod roles;
