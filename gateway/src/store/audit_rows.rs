//! Appending to and reading the audit table.

use sqlx::Row;

use super::statement::Statement;
use super::{Backend, Store, StoreError, conflict, sqlite_lane};
use crate::audit::{AuditEvent, AuditRecord, GENESIS, entry_hash};

/// The newest entry a store appended: (seq, hash).
pub(super) type AuditTail = Option<(i64, Vec<u8>)>;

/// Tries to append before giving up when other writers keep appending
/// first (each try re-reads the tail).
const APPEND_ATTEMPTS: usize = 100;

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

    /// Appends entries in order, chained, in one commit (one fsync) for all
    /// of them.
    ///
    /// Optimistic: the last entry this store wrote is remembered, the new
    /// entries are chained to it and inserted with the next sequence
    /// numbers. `seq` is the primary key, so if another writer (another
    /// gateway, an admin command) appended in between, the insert fails as a
    /// whole; the tail is then read again and the batch chained anew. A
    /// batch costs one statement instead of five (begin, lock, read the
    /// tail, insert, commit), and the chain cannot fork.
    pub async fn append_audit_batch(&self, events: &[(AuditEvent, i64)]) -> Result<Vec<AuditRecord>, StoreError> {
        let mut tail = self.audit_tail.lock().await;
        for _ in 0..APPEND_ATTEMPTS {
            let (seq, prev) = match tail.take() {
                Some(t) => t,
                None => self.audit_tail().await?,
            };
            let out = chained(events, seq, prev);
            match self.insert_audit(out).await {
                Ok(out) => {
                    *tail = out.last().map(|r| (r.seq, r.hash.clone()));
                    return Ok(out);
                }
                // Someone else took these numbers: read the tail again.
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Invalid(format!(
            "the audit log kept moving under {APPEND_ATTEMPTS} attempts to append; nothing was written"
        )))
    }

    /// The newest entry's number and hash (0 and the genesis hash when
    /// the log is empty).
    pub async fn audit_head(&self) -> Result<(i64, Vec<u8>), StoreError> {
        self.audit_tail().await
    }

    async fn audit_tail(&self) -> Result<(i64, Vec<u8>), StoreError> {
        const TAIL: &str = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1";
        let tail = match self.lanes() {
            Some(lanes) => {
                lanes
                    .read(|c| {
                        use rusqlite::OptionalExtension;
                        Ok(c.prepare_cached(TAIL)?.query_row([], |r| Ok((r.get(0)?, r.get(1)?))).optional()?)
                    })
                    .await?
            }
            None => match sqlx::query(TAIL).fetch_optional(self.pool()).await? {
                Some(r) => Some((r.try_get::<i64, _>("seq")?, r.try_get::<Vec<u8>, _>("hash")?)),
                None => None,
            },
        };
        Ok(tail.unwrap_or_else(|| (0, GENESIS.to_vec())))
    }

    /// Inserts `rows` atomically — one multi-row INSERT per chunk, in one
    /// transaction — and hands them back.
    async fn insert_audit(&self, rows: Vec<AuditRecord>) -> Result<Vec<AuditRecord>, StoreError> {
        let what = |rows: &[AuditRecord]| format!("audit entries from {}", rows.first().map_or(0, |r| r.seq));
        if let Some(lanes) = self.lanes() {
            return lanes
                .writer
                .run(move |c| {
                    // Atomic: the writer lane runs a job in a savepoint.
                    for chunk in rows.chunks(INSERT_ROWS) {
                        audit_insert(Backend::Sqlite, chunk)
                            .execute(c)
                            .map_err(|e| sqlite_lane::conflict(e, what(&rows)))?;
                    }
                    Ok(rows)
                })
                .await;
        }
        if rows.len() <= INSERT_ROWS {
            audit_insert(self.backend(), &rows)
                .sqlx()
                .execute(self.pool())
                .await
                .map_err(|e| conflict(e, what(&rows)))?;
            return Ok(rows);
        }
        let mut tx = self.pool().begin().await?;
        for chunk in rows.chunks(INSERT_ROWS) {
            // Dropping the transaction on an error rolls it back.
            audit_insert(self.backend(), chunk).sqlx().execute(&mut *tx).await.map_err(|e| conflict(e, what(&rows)))?;
        }
        tx.commit().await?;
        Ok(rows)
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

    /// Entries with `seq < before`, newest first, at most `limit`.
    pub async fn audit_page_back(&self, before: i64, limit: i64) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {AUDIT_COLS} FROM audit WHERE seq < $1 ORDER BY seq DESC LIMIT $2"
        )))
        .bind(before)
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

    /// The hash of entry `seq`, if there is one.
    pub async fn audit_hash(&self, seq: i64) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query("SELECT hash FROM audit WHERE seq = $1").bind(seq).fetch_optional(self.pool()).await?;
        Ok(row.map(|r| r.try_get("hash")).transpose()?)
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

/// `events` chained after entry `seq` with hash `prev`.
fn chained(events: &[(AuditEvent, i64)], mut seq: i64, mut prev: Vec<u8>) -> Vec<AuditRecord> {
    let mut out = Vec::with_capacity(events.len());
    for (event, at) in events {
        seq += 1;
        let hash = entry_hash(&prev, seq, *at, event).to_vec();
        out.push(AuditRecord { seq, at: *at, event: event.clone(), prev_hash: prev, hash: hash.clone() });
        prev = hash;
    }
    out
}

/// One multi-row INSERT of `rows` (12 parameters a row; SQLite allows
/// 32766 parameters, PostgreSQL 65535).
fn audit_insert(backend: Backend, rows: &[AuditRecord]) -> Statement<'_> {
    let mut st = Statement::new(format!(
        "INSERT INTO audit ({AUDIT_COLS}) VALUES {}",
        super::values_placeholders(backend, rows.len(), 12)
    ));
    for r in rows {
        st.push(r.seq);
        st.push(r.at);
        for text in [
            &r.event.actor,
            &r.event.terminal,
            &r.event.institution,
            &r.event.action,
            &r.event.object,
            &r.event.outcome,
            &r.event.reason,
            &r.event.request_id,
        ] {
            st.push(text);
        }
        st.push(&r.prev_hash);
        st.push(&r.hash);
    }
    st
}
