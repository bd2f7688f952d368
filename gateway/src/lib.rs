//! The data-centre gateway: storage, the audit log, and (in later modules)
//! the institution listener, login, sessions and roles.

pub mod audit;
pub mod store;
