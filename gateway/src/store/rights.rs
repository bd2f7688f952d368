//! Patients' rights (FLOW-9): correction requests (health area, keyed by
//! pseudonym, text sealed), a patient's consents as they stand, and the
//! audit entries that name a patient (for the disclosure's access log).

use sqlx::Row;

use super::workflow::insert_record;
use super::{RecordRow, Store, StoreError, conflict};
use crate::audit::AuditRecord;
use crate::audit::outbox::{Area, Staged};
use hpki_protocol::rights::CorrectionStatus;

/// A correction request as stored (content sealed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrectionRow {
    pub id: String,
    /// The patient's pseudonym.
    pub patient: String,
    pub record: String,
    pub institution: String,
    pub status: CorrectionStatus,
    pub key_id: String,
    pub content: Vec<u8>,
    pub created_at: i64,
    pub resolved_by: Option<String>,
    pub resolved_at: Option<i64>,
    pub correction_record: Option<String>,
}

/// One institution's consent row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRow {
    pub institution: String,
    pub granted_at: i64,
    pub withdrawn_at: Option<i64>,
}

const CORRECTION_COLS: &str = "id, patient, record, institution, status, key_id, content, created_at, resolved_by, \
                               resolved_at, correction_record";

fn correction_of(r: &sqlx::any::AnyRow) -> Result<CorrectionRow, StoreError> {
    let status: String = r.try_get("status")?;
    Ok(CorrectionRow {
        id: r.try_get("id")?,
        patient: r.try_get("patient")?,
        record: r.try_get("record")?,
        institution: r.try_get("institution")?,
        status: CorrectionStatus::from_name(&status)
            .ok_or_else(|| StoreError::Invalid(format!("a correction request with the status {status:?}")))?,
        key_id: r.try_get("key_id")?,
        content: r.try_get("content")?,
        created_at: r.try_get("created_at")?,
        resolved_by: r.try_get("resolved_by")?,
        resolved_at: r.try_get("resolved_at")?,
        correction_record: r.try_get("correction_record")?,
    })
}

impl Store {
    /// Records a patient's correction request, with its entry staged.
    pub async fn add_correction(&self, c: &CorrectionRow, staged: &Staged) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO correction_requests ({CORRECTION_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, NULL)"
        )))
        .bind(&c.id)
        .bind(&c.patient)
        .bind(&c.record)
        .bind(&c.institution)
        .bind(c.status.as_str())
        .bind(&c.key_id)
        .bind(&c.content)
        .bind(c.created_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict(e, format!("correction request {:?}", c.id)))?;
        self.stage_in(&mut tx, Area::Health, staged).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn correction(&self, id: &str) -> Result<Option<CorrectionRow>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CORRECTION_COLS} FROM correction_requests WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(correction_of).transpose()
    }

    /// A patient's requests (by pseudonym), newest first.
    pub async fn corrections_of(&self, patient: &str) -> Result<Vec<CorrectionRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CORRECTION_COLS} FROM correction_requests WHERE patient = $1 ORDER BY created_at DESC, id"
        )))
        .bind(patient)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(correction_of).collect()
    }

    /// The pending requests against `institution`'s records, oldest first.
    pub async fn correction_queue(&self, institution: &str) -> Result<Vec<CorrectionRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CORRECTION_COLS} FROM correction_requests WHERE institution = $1 AND status = 'pending' \
             ORDER BY created_at, id"
        )))
        .bind(institution)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(correction_of).collect()
    }

    /// Answers a pending request: its status, who answered and when, its
    /// content resealed with the answer, and (accepted) the correcting
    /// record — one transaction with the entry staged. `Err(Conflict)` when
    /// it was answered already.
    pub async fn resolve_correction(
        &self,
        resolved: &CorrectionRow,
        correction_record: Option<&RecordRow>,
        staged: &Staged,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        if let Some(r) = correction_record {
            insert_record(&mut tx, self.backend(), r).await?;
        }
        let changed = sqlx::query(
            "UPDATE correction_requests SET status = $1, key_id = $2, content = $3, resolved_by = $4, resolved_at = $5, \
             correction_record = $6 WHERE id = $7 AND status = 'pending'",
        )
        .bind(resolved.status.as_str())
        .bind(&resolved.key_id)
        .bind(&resolved.content)
        .bind(&resolved.resolved_by)
        .bind(resolved.resolved_at)
        .bind(&resolved.correction_record)
        .bind(&resolved.id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed != 1 {
            return Err(StoreError::Conflict(format!("the answer to correction request {:?}", resolved.id)));
        }
        self.stage_in(&mut tx, Area::Health, staged).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every consent row of a patient, withdrawn ones too.
    pub async fn consents_of(&self, patient: &str) -> Result<Vec<ConsentRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT institution, granted_at, withdrawn_at FROM patient_consents WHERE patient_id = $1 ORDER BY institution",
        )
        .bind(patient)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ConsentRow {
                    institution: r.try_get("institution")?,
                    granted_at: r.try_get("granted_at")?,
                    withdrawn_at: r.try_get("withdrawn_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Every audit entry whose object names `patient` (`patient:ID`, alone
    /// or as a word of the object), oldest first.
    pub async fn audit_about_patient(&self, patient: &str) -> Result<Vec<AuditRecord>, StoreError> {
        let word = format!("patient:{patient}");
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM audit WHERE object = $1 OR object LIKE $2 OR object LIKE $3 ORDER BY seq",
            super::audit_rows::AUDIT_COLS
        )))
        .bind(&word)
        .bind(format!("{word} %"))
        .bind(format!("% {word}"))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(super::audit_rows::record).collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{Store, StoreConfig};

    #[tokio::test]
    async fn key_usage_counts_correction_requests_too() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(&StoreConfig::Sqlite { dir: dir.path().into() }).await.expect("store");
        assert_eq!(s.key_usage().await.expect("key usage"), Vec::<(String, i64)>::new());
    }
}
