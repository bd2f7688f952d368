//! The two audit outboxes (`audit::outbox`): staging an entry inside a
//! change's transaction, reading and clearing them.

use sqlx::Row;

use super::statement::Statement;
use super::{Backend, Store, StoreError, placeholders, values_placeholders};
use crate::audit::outbox::{Area, Staged};

const OUTBOX_COLS: &str = "request_id, at, actor, terminal, institution, action, object";

fn table(area: Area) -> &'static str {
    match area {
        // Unqualified: the main database (SQLite) or the `identity` schema
        // first on the search path (PostgreSQL).
        Area::Identity => "audit_outbox",
        Area::Health => "health.audit_outbox",
    }
}

/// The DELETEs of these requests' rows from `areas`' outboxes, in chunks
/// well under both backends' parameter limits.
fn clear_statements<'a>(backend: Backend, areas: &[Area], request_ids: &[&'a str]) -> Vec<Statement<'a>> {
    let mut out = Vec::new();
    for chunk in request_ids.chunks(500) {
        for &area in areas {
            let sql = format!(
                "DELETE FROM {} WHERE request_id IN ({})",
                table(area),
                placeholders(backend, 1, chunk.len()).join(", ")
            );
            let mut st = Statement::new(sql);
            for id in chunk {
                st.push(*id);
            }
            out.push(st);
        }
    }
    out
}

/// The INSERT staging `rows` into `area`'s outbox; run it in the change's
/// transaction.
pub(super) fn stage<'q>(backend: Backend, area: Area, rows: &[&'q Staged]) -> Statement<'q> {
    let mut st = Statement::new(format!(
        "INSERT INTO {} ({OUTBOX_COLS}) VALUES {}",
        table(area),
        values_placeholders(backend, rows.len(), 7)
    ));
    for r in rows {
        st.push(&r.request_id);
        st.push(r.at);
        st.push(&r.actor);
        st.push(&r.terminal);
        st.push(&r.institution);
        st.push(r.action.as_str());
        st.push(&r.object);
    }
    st
}

impl Store {
    /// Runs the one-statement change `q`; with `staged`, in a transaction
    /// that stages it into `area`'s outbox when `q` changed a row (a change
    /// that changed nothing owes no entry). The rows `q` changed.
    pub(super) async fn execute_staging(
        &self,
        q: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
        area: Area,
        staged: Option<&Staged>,
    ) -> Result<u64, sqlx::Error> {
        let Some(staged) = staged else {
            return Ok(q.execute(self.pool()).await?.rows_affected());
        };
        let mut tx = self.pool().begin().await?;
        let changed = q.execute(&mut *tx).await?.rows_affected();
        if changed > 0 {
            stage(self.backend(), area, &[staged]).sqlx().execute(&mut *tx).await?;
            tx.commit().await?;
        }
        Ok(changed)
    }

    /// Stages `staged` into `area`'s outbox inside `tx`.
    pub(super) async fn stage_in(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        area: Area,
        staged: &Staged,
    ) -> Result<(), StoreError> {
        stage(self.backend(), area, &[staged]).sqlx().execute(&mut **tx).await?;
        Ok(())
    }

    /// Every staged entry of both outboxes, oldest first.
    pub async fn outbox_rows(&self) -> Result<Vec<Staged>, StoreError> {
        let mut out = Vec::new();
        for area in [Area::Identity, Area::Health] {
            let sql = format!("SELECT {OUTBOX_COLS} FROM {} ORDER BY id", table(area));
            for r in sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(self.pool()).await? {
                out.push(Staged {
                    request_id: r.try_get("request_id")?,
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    terminal: r.try_get("terminal")?,
                    institution: r.try_get("institution")?,
                    action: r.try_get("action")?,
                    object: r.try_get("object")?,
                });
            }
        }
        out.sort_by_key(|r| r.at);
        Ok(out)
    }

    /// How many staged entries are older than `before` (Unix ms).
    pub async fn stale_outbox_rows(&self, before: i64) -> Result<i64, StoreError> {
        let mut n = 0;
        for area in [Area::Identity, Area::Health] {
            let sql = format!("SELECT COUNT(*) AS n FROM {} WHERE at < $1", table(area));
            n += sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(before)
                .fetch_one(self.pool())
                .await?
                .try_get::<i64, _>("n")?;
        }
        Ok(n)
    }

    /// Deletes the staged entries of these requests (their entries are in
    /// the chain).
    pub async fn clear_outbox(&self, request_ids: &[&str]) -> Result<(), StoreError> {
        self.clear_outbox_of(&[Area::Identity, Area::Health], request_ids).await
    }

    /// Deletes the health outbox's rows of these requests: the identity
    /// outbox's rows go with their entries' INSERT (a trigger, migration
    /// sqlite 0008 / postgres 0009), which cannot reach the health file.
    pub async fn clear_health_outbox(&self, request_ids: &[&str]) -> Result<(), StoreError> {
        self.clear_outbox_of(&[Area::Health], request_ids).await
    }

    async fn clear_outbox_of(&self, areas: &[Area], request_ids: &[&str]) -> Result<(), StoreError> {
        if let Some(lanes) = self.lanes() {
            // On the writer lane, with its groups: a pool connection would
            // wait for the lane's lock in SQLite's busy handler.
            let (areas, ids): (Vec<Area>, Vec<String>) =
                (areas.to_vec(), request_ids.iter().map(|s| (*s).to_owned()).collect());
            return lanes
                .writer
                .run(move |c| {
                    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
                    for st in clear_statements(Backend::Sqlite, &areas, &ids) {
                        st.execute(c)?;
                    }
                    Ok(())
                })
                .await;
        }
        for st in clear_statements(self.backend(), areas, request_ids) {
            st.sqlx().execute(self.pool()).await?;
        }
        Ok(())
    }
}
