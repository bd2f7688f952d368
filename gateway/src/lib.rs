//! The data-centre gateway: the mTLS institution listener, card login with
//! channel binding, sessions, the role × action table, the workflow, the
//! patient listener, the audit log and storage on SQLite or PostgreSQL.
//! Where things are: `docs/gateway.md`.

pub mod app;
pub mod audit;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod domain;
pub mod file_modes;
pub mod gateway;
pub mod http;
pub mod metrics;
pub mod ops;
pub mod routes;
pub mod shutdown;
pub mod signatures;
pub mod store;
