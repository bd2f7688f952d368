//! Appending to and reading the audit table.

use sqlx::{Executor, Row};

use super::{Backend, Store, StoreError};
use crate::audit::{AuditEvent, AuditRecord, GENESIS, entry_hash};

/// Advisory-lock key serialising appends across gateways on one PostgreSQL.
const AUDIT_LOCK_KEY: i64 = 0x4850_4B49_4155_4431; // "HPKIAUD1"

/// The audit table's columns, in the order rows are written and read.
pub(super) const AUDIT_COLS: &str =
    "seq, at, actor, terminal, institution, action, object, outcome, reason, request_id, prev_hash, hash";

/// Rows per multi-row INSERT of a batch.
const INSERT_ROWS: usize = 64;

impl Store {
    /// Appends one entry at `at` (Unix ms), chained to the last one.
    pub async fn append_audit(&self, event: &AuditEvent, at: i64) -> Result<AuditRecord, StoreError> {
        let mut done = self.append_audit_batch(&[(event.clone(), at)]).await?;
        done.pop().ok_or_else(|| StoreError::Invalid("empty audit batch".into()))
    }

    /// Appends entries in order, chained, in one transaction: one commit
    /// (one fsync) for all of them.
    pub async fn append_audit_batch(&self, events: &[(AuditEvent, i64)]) -> Result<Vec<AuditRecord>, StoreError> {
        let _guard = self.audit_lock.lock().await;
        let mut conn = self.pool().acquire().await?;
        // SQLite: take the write lock before reading the tail, so no other
        // writer can slip in between (BEGIN IMMEDIATE). PostgreSQL: an
        // advisory transaction lock does the same across gateways.
        match self.backend() {
            Backend::Sqlite => conn.execute("BEGIN IMMEDIATE").await?,
            Backend::Postgres => conn.execute("BEGIN").await?,
        };
        let result = async {
            if self.backend() == Backend::Postgres {
                sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(AUDIT_LOCK_KEY).execute(&mut *conn).await?;
            }
            let tail =
                sqlx::query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetch_optional(&mut *conn).await?;
            let (mut seq, mut prev) = match tail {
                Some(r) => (r.try_get::<i64, _>("seq")?, r.try_get::<Vec<u8>, _>("hash")?),
                None => (0, GENESIS.to_vec()),
            };
            let mut out = Vec::with_capacity(events.len());
            for (event, at) in events {
                seq += 1;
                let hash = entry_hash(&prev, seq, *at, event).to_vec();
                out.push(AuditRecord { seq, at: *at, event: event.clone(), prev_hash: prev, hash: hash.clone() });
                prev = hash;
            }
            // One multi-row INSERT per chunk: one round trip for a batch
            // instead of one per entry (12 parameters a row; SQLite allows
            // 32766 parameters, PostgreSQL 65535).
            for chunk in out.chunks(INSERT_ROWS) {
                let rows: Vec<String> = (0..chunk.len())
                    .map(|i| {
                        let p: Vec<String> = (1..=12).map(|c| format!("${}", i * 12 + c)).collect();
                        format!("({})", p.join(", "))
                    })
                    .collect();
                let sql = format!("INSERT INTO audit ({AUDIT_COLS}) VALUES {}", rows.join(", "));
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for r in chunk {
                    q = q
                        .bind(r.seq)
                        .bind(r.at)
                        .bind(&r.event.actor)
                        .bind(&r.event.terminal)
                        .bind(&r.event.institution)
                        .bind(&r.event.action)
                        .bind(&r.event.object)
                        .bind(&r.event.outcome)
                        .bind(&r.event.reason)
                        .bind(&r.event.request_id)
                        .bind(&r.prev_hash)
                        .bind(&r.hash);
                }
                q.execute(&mut *conn).await?;
            }
            Ok::<_, StoreError>(out)
        }
        .await;
        match result {
            Ok(r) => {
                conn.execute("COMMIT").await?;
                Ok(r)
            }
            Err(e) => {
                let _ = conn.execute("ROLLBACK").await;
                Err(e)
            }
        }
    }

    /// Entries with `seq > after`, in order, at most `limit`.
    pub async fn audit_page(&self, after: i64, limit: i64) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {AUDIT_COLS} FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2"
        )))
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(record).collect()
    }

    /// Walks the whole hash chain: the number of entries, or where it breaks
    /// (with the number checked before the break).
    pub async fn verify_audit_chain(&self) -> Result<Result<u64, (u64, String)>, StoreError> {
        let mut v = crate::audit::ChainVerifier::default();
        let mut after = 0;
        loop {
            let page = self.audit_page(after, 1000).await?;
            if page.is_empty() {
                return Ok(Ok(v.checked));
            }
            for r in &page {
                if let Err(e) = v.check(r) {
                    return Ok(Err((v.checked, e.to_string())));
                }
                after = r.seq;
            }
        }
    }

    /// The time (Unix ms) of the newest entry.
    pub async fn last_audit_at(&self) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT at FROM audit ORDER BY seq DESC LIMIT 1").fetch_optional(self.pool()).await?;
        Ok(row.map(|r| r.try_get("at")).transpose()?)
    }

    /// Entries at or after `at` (Unix ms), in order.
    pub async fn audit_since(&self, at: i64) -> Result<Vec<AuditRecord>, StoreError> {
        let rows =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {AUDIT_COLS} FROM audit WHERE at >= $1 ORDER BY seq")))
                .bind(at)
                .fetch_all(self.pool())
                .await?;
        rows.iter().map(record).collect()
    }

    /// Every entry of `actor` between two times (Unix ms, inclusive).
    pub async fn audit_of_actor(&self, actor: &str, from: i64, to: i64) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {AUDIT_COLS} FROM audit WHERE (actor = $1 OR object = $1) AND at >= $2 AND at <= $3 ORDER BY seq"
        )))
        .bind(actor)
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(record).collect()
    }
}

pub(super) fn record(r: &sqlx::any::AnyRow) -> Result<AuditRecord, StoreError> {
    Ok(AuditRecord {
        seq: r.try_get("seq")?,
        at: r.try_get("at")?,
        event: AuditEvent {
            actor: r.try_get("actor")?,
            terminal: r.try_get("terminal")?,
            institution: r.try_get("institution")?,
            action: r.try_get("action")?,
            object: r.try_get("object")?,
            outcome: r.try_get("outcome")?,
            reason: r.try_get("reason")?,
            request_id: r.try_get("request_id")?,
        },
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}
