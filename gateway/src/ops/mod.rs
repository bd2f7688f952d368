//! What IT staff run beside serving: backups (SQLite files and PostgreSQL
//! base backups), the monthly and configuration reports, the abnormal-access
//! rules, and record-key rotation.

pub mod alerts;
pub mod backup;
pub mod backup_pg;
pub mod key_rotation;
pub mod report;
