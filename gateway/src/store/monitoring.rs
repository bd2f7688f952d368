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
