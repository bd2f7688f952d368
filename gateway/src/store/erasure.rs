//! Erasure at the end of retention (DATA-8): what may be erased, and the
//! erasure itself — a record's tombstone written and its health content
//! deleted in one health-area transaction (the immutability triggers let
//! exactly that through), then, once a patient has no record left, their
//! identity data wiped in the identity area.

use sqlx::Row;

use super::{Store, StoreError};
use crate::audit::outbox::{Area, Staged};

/// A record and what its retention counts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureCandidate {
    pub id: String,
    pub kind: String,
    /// The patient's pseudonym.
    pub patient: String,
    pub institution: String,
    pub created_at: i64,
    /// The patient's last encounter at the record's institution (opened or
    /// closed, whichever is later), if any.
    pub last_encounter_at: Option<i64>,
}

/// What stays of an erased record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Tombstone {
    pub id: String,
    pub kind: String,
    pub institution: String,
    pub created_at: i64,
    pub last_encounter_at: Option<i64>,
    pub retention_years: i64,
    pub erased_at: i64,
    pub erased_by: String,
    pub audit_request: String,
    pub audit_seq: Option<i64>,
}

impl Store {
    /// Every record with the date its retention counts from.
    pub async fn erasure_candidates(&self) -> Result<Vec<ErasureCandidate>, StoreError> {
        let rows = sqlx::query(
            "SELECT r.id, r.kind, r.patient, r.institution, r.created_at, \
             (SELECT MAX(COALESCE(e.closed_at, e.opened_at)) FROM encounters e \
              WHERE e.patient = r.patient AND e.institution = r.institution) AS last_encounter_at \
             FROM records r ORDER BY r.created_at, r.id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ErasureCandidate {
                    id: r.try_get("id")?,
                    kind: r.try_get("kind")?,
                    patient: r.try_get("patient")?,
                    institution: r.try_get("institution")?,
                    created_at: r.try_get("created_at")?,
                    last_encounter_at: r.try_get("last_encounter_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Erases one record: its tombstone, then its containers, the draft it
    /// was confirmed from, the correction requests against it and the row,
    /// with the entry staged — one transaction. When it was the patient's
    /// last record, the patient's encounters and remaining drafts go too.
    /// `true` when that happened (the identity data are then to be wiped).
    pub async fn erase_record(&self, t: &Tombstone, patient: &str, staged: &Staged) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO record_tombstones (id, kind, institution, created_at, last_encounter_at, retention_years, \
             erased_at, erased_by, audit_request, audit_seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL)",
        )
        .bind(&t.id)
        .bind(&t.kind)
        .bind(&t.institution)
        .bind(t.created_at)
        .bind(t.last_encounter_at)
        .bind(t.retention_years)
        .bind(t.erased_at)
        .bind(&t.erased_by)
        .bind(&t.audit_request)
        .execute(&mut *tx)
        .await
        .map_err(|e| super::conflict(e, format!("the tombstone of record {:?}", t.id)))?;
        for sql in [
            "DELETE FROM record_signatures WHERE record = $1",
            "DELETE FROM correction_requests WHERE record = $1",
            "DELETE FROM drafts WHERE record_id = $1",
            "DELETE FROM records WHERE id = $1",
        ] {
            sqlx::query(sql).bind(&t.id).execute(&mut *tx).await?;
        }
        let left: i64 = sqlx::query("SELECT COUNT(*) AS n FROM records WHERE patient = $1")
            .bind(patient)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        if left == 0 {
            for sql in ["DELETE FROM drafts WHERE patient = $1", "DELETE FROM encounters WHERE patient = $1"] {
                sqlx::query(sql).bind(patient).execute(&mut *tx).await?;
            }
        }
        self.stage_in(&mut tx, Area::Health, staged).await?;
        tx.commit().await?;
        Ok(left == 0)
    }

    /// Notes the seq of the erasure's audit entry in its tombstones.
    pub async fn note_erasure_seq(&self, audit_request: &str, seq: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE record_tombstones SET audit_seq = $1 WHERE audit_request = $2")
            .bind(seq)
            .bind(audit_request)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn tombstone(&self, id: &str) -> Result<Option<Tombstone>, StoreError> {
        let row = sqlx::query(
            "SELECT id, kind, institution, created_at, last_encounter_at, retention_years, erased_at, erased_by, \
             audit_request, audit_seq FROM record_tombstones WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(Tombstone {
            id: r.try_get("id")?,
            kind: r.try_get("kind")?,
            institution: r.try_get("institution")?,
            created_at: r.try_get("created_at")?,
            last_encounter_at: r.try_get("last_encounter_at")?,
            retention_years: r.try_get("retention_years")?,
            erased_at: r.try_get("erased_at")?,
            erased_by: r.try_get("erased_by")?,
            audit_request: r.try_get("audit_request")?,
            audit_seq: r.try_get("audit_seq")?,
        }))
    }

    /// Wipes a patient's identity data (name, birth date) and ends their
    /// account, sessions and consents, with the entry staged; the patient
    /// id stays, as the never-erased audit log names it.
    pub async fn erase_patient_identity(&self, patient: &str, now: i64, staged: &Staged) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        for sql in [
            "DELETE FROM patient_sessions WHERE patient_id = $1",
            "DELETE FROM patient_accounts WHERE patient_id = $1",
            "DELETE FROM patient_consents WHERE patient_id = $1",
        ] {
            sqlx::query(sql).bind(patient).execute(&mut *tx).await?;
        }
        sqlx::query("UPDATE patients SET name = '', name_kanji = NULL, birth_date = '', erased_at = $1 WHERE id = $2")
            .bind(now)
            .bind(patient)
            .execute(&mut *tx)
            .await?;
        self.stage_in(&mut tx, Area::Identity, staged).await?;
        tx.commit().await?;
        Ok(())
    }
}
