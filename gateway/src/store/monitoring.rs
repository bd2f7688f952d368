//! What the abnormal-access rules and the reports ask of the audit log.

use sqlx::Row;

use super::{Store, StoreError};
use crate::audit::AuditRecord;

impl Store {
    /// Refused logins from `terminal` (institution/name) at or after `since`
    /// (Unix ms).
    pub async fn refused_logins_since(&self, terminal: &str, since: i64) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM audit WHERE terminal = $1 AND at >= $2 \
             AND action = 'auth.login' AND outcome = 'refused'",
        )
        .bind(terminal)
        .bind(since)
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get("n")?)
    }

    /// Whether an alert of `rule` was raised for `terminal` at or after
    /// `since` (Unix ms).
    pub async fn alert_raised_since(&self, terminal: &str, rule: &str, since: i64) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM audit WHERE terminal = $1 AND at >= $2 \
             AND action = 'alert.raised' AND object LIKE $3",
        )
        .bind(terminal)
        .bind(since)
        .bind(format!("rule:{rule} %"))
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    /// An institution other than `institution` where `person` logged in at
    /// or after `since`, if any.
    pub async fn login_elsewhere_since(
        &self,
        person: &str,
        institution: &str,
        since: i64,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT institution FROM audit WHERE actor = $1 AND at >= $2 AND action = 'auth.login' \
             AND outcome = 'ok' AND institution <> $3 ORDER BY seq DESC LIMIT 1",
        )
        .bind(person)
        .bind(since)
        .bind(institution)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| r.try_get("institution")).transpose()?)
    }

    /// Every entry with `from <= at < to` (Unix ms), in order.
    pub async fn audit_between(&self, from: i64, to: i64) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM audit WHERE at >= $1 AND at < $2 ORDER BY seq",
            super::audit_rows::AUDIT_COLS
        )))
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(super::audit_rows::record).collect()
    }
}

/// A terminal certificate as the listener last saw it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TerminalCertRow {
    pub institution: String,
    pub name: String,
    pub serial: String,
    /// Unix seconds.
    pub not_after: i64,
    /// Unix milliseconds.
    pub last_seen: i64,
}

impl Store {
    pub async fn saw_terminal_cert(&self, row: &TerminalCertRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO terminal_certs (institution, name, serial, not_after, last_seen) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (institution, name, serial) DO UPDATE SET last_seen = excluded.last_seen",
        )
        .bind(&row.institution)
        .bind(&row.name)
        .bind(&row.serial)
        .bind(row.not_after)
        .bind(row.last_seen)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Every terminal certificate seen, soonest expiry first.
    pub async fn terminal_certs(&self) -> Result<Vec<TerminalCertRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT institution, name, serial, not_after, last_seen FROM terminal_certs ORDER BY not_after, institution, name",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TerminalCertRow {
                    institution: r.try_get("institution")?,
                    name: r.try_get("name")?,
                    serial: r.try_get("serial")?,
                    not_after: r.try_get("not_after")?,
                    last_seen: r.try_get("last_seen")?,
                })
            })
            .collect()
    }
}

impl Store {
    /// The newest entry's sequence number (entries are numbered from 1
    /// without gaps, so also their count); 0 for an empty log.
    pub async fn last_audit_seq(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS n FROM audit").fetch_one(self.pool()).await?;
        Ok(row.try_get("n")?)
    }
}
