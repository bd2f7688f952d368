//! What IT staff run beside serving: backups (SQLite files and PostgreSQL
//! base backups), the monthly and configuration reports, the abnormal-access
//! rules, record-key rotation, the end of expired break-glass accesses,
//! and de-identified exports for research.

pub mod alerts;
pub mod backup;
pub mod backup_pg;
pub mod break_glass;
pub mod erasure;
pub mod key_rotation;
pub mod report;
pub mod research_export;
