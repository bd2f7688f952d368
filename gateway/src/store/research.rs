//! What a de-identified export reads (FLOW-8): every patient with what
//! decides whether they may be in it — a sharing consent in force, and no
//! objection to secondary use — and the records of a period.

use sqlx::Row;

use super::workflow::RECORD_COLS;
use super::{RecordRow, Store, StoreError};
use crate::audit::outbox::{Area, Staged};

/// A patient as an export sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResearchPatient {
    pub id: String,
    pub pseudonym: String,
    /// YYYY-MM-DD.
    pub birth_date: String,
    pub opted_out: bool,
    /// At least one sharing consent in force.
    pub consented: bool,
}

impl Store {
    /// Records (`true`) or lifts (`false`) a patient's objection to
    /// secondary use; `NotFound` for no such patient.
    pub async fn set_research_opt_out(
        &self,
        patient: &str,
        opted_out: bool,
        now: i64,
        staged: Option<&Staged>,
    ) -> Result<(), StoreError> {
        let q = sqlx::query("UPDATE patients SET research_opt_out = $1, research_opt_out_at = $2 WHERE id = $3")
            .bind(i64::from(opted_out))
            .bind(now)
            .bind(patient);
        match self.execute_staging(q, Area::Identity, staged).await? {
            1 => Ok(()),
            _ => Err(StoreError::NotFound(format!("patient {patient:?}"))),
        }
    }

    /// Every patient, by pseudonym order.
    pub async fn research_patients(&self) -> Result<Vec<ResearchPatient>, StoreError> {
        let rows = sqlx::query(
            "SELECT p.id, p.pseudonym, p.birth_date, p.research_opt_out, \
             (SELECT COUNT(*) FROM patient_consents c WHERE c.patient_id = p.id AND c.withdrawn_at IS NULL) AS consents \
             FROM patients p ORDER BY p.pseudonym",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ResearchPatient {
                    id: r.try_get("id")?,
                    pseudonym: r.try_get("pseudonym")?,
                    birth_date: r.try_get("birth_date")?,
                    opted_out: r.try_get::<i64, _>("research_opt_out")? != 0,
                    consented: r.try_get::<i64, _>("consents")? > 0,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// The records created in `[from, to)` (Unix s), oldest first.
    pub async fn records_between(&self, from: i64, to: i64) -> Result<Vec<RecordRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RECORD_COLS} FROM records WHERE created_at >= $1 AND created_at < $2 ORDER BY created_at, id"
        )))
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(super::workflow::record_of).collect::<Result<_, _>>().map_err(StoreError::from)
    }
}
