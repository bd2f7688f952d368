//! The data-centre gateway: the mTLS institution listener, card login with
//! channel binding, sessions, the role × action table, the audit log and
//! storage on SQLite or PostgreSQL.

pub mod alerts;
pub mod api;
pub mod audit;
pub mod audit_writer;
pub mod backup;
pub mod backup_pg;
pub mod batch;
pub mod clock;
pub mod config;
pub mod crash_recovery;
pub mod gateway;
pub mod key_rotation;
pub mod keyring;
pub mod passwords;
pub mod patient_portal;
pub mod report;
pub mod roles;
pub mod server;
pub mod session_reader;
pub mod store;
pub mod tls;
pub mod workflow_api;
