//! Emergency operation (FLOW-7), identity area: break-glass designations
//! and accesses, and the operating mode (read with the suspended terminals
//! by `store::snapshot`; a trigger moves the generation on every change).

use hpki_protocol::emergency::{BreakGlassReason, OperatingMode};
use sqlx::Row;

use super::{Store, StoreError, conflict};
use crate::audit::outbox::{Area, Staged};

/// The operating mode as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeRow {
    pub mode: OperatingMode,
    pub reason: String,
    pub changed_by: String,
    /// Unix s.
    pub changed_at: i64,
}

impl ModeRow {
    /// The mode before any change was recorded.
    pub fn initial() -> ModeRow {
        ModeRow { mode: OperatingMode::Normal, reason: "initial".into(), changed_by: "system".into(), changed_at: 0 }
    }
}

/// One break-glass access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakGlassRow {
    pub id: String,
    pub person: String,
    pub institution: String,
    pub terminal: String,
    pub patient_id: String,
    pub reason: BreakGlassReason,
    pub detail: String,
    pub started_at: i64,
    pub expires_at: i64,
    pub ended_at: Option<i64>,
    pub end_reason: Option<String>,
    pub reviewed_by: Option<String>,
    pub reviewed_at: Option<i64>,
    pub review_note: Option<String>,
}

impl BreakGlassRow {
    /// Usable at `now`: neither ended nor past its expiry.
    pub fn active_at(&self, now: i64) -> bool {
        self.ended_at.is_none() && now < self.expires_at
    }

    /// What its audit entries name (`break_glass:ID patient:PID`): the
    /// access and its patient, which the report counts reads by.
    pub fn audit_object(&self) -> String {
        format!("break_glass:{} patient:{}", self.id, self.patient_id)
    }

    /// When it stopped being usable, if it has.
    pub fn over_at(&self, now: i64) -> Option<i64> {
        match self.ended_at {
            Some(t) => Some(t),
            None if now >= self.expires_at => Some(self.expires_at),
            None => None,
        }
    }
}

const ACCESS_COLS: &str = "id, person, institution, terminal, patient_id, reason, detail, started_at, expires_at, \
                           ended_at, end_reason, reviewed_by, reviewed_at, review_note";

fn access_of(r: &sqlx::any::AnyRow) -> Result<BreakGlassRow, StoreError> {
    let reason: String = r.try_get("reason")?;
    Ok(BreakGlassRow {
        id: r.try_get("id")?,
        person: r.try_get("person")?,
        institution: r.try_get("institution")?,
        terminal: r.try_get("terminal")?,
        patient_id: r.try_get("patient_id")?,
        reason: BreakGlassReason::from_name(&reason)
            .ok_or_else(|| StoreError::Invalid(format!("a break-glass access with the unknown reason {reason:?}")))?,
        detail: r.try_get("detail")?,
        started_at: r.try_get("started_at")?,
        expires_at: r.try_get("expires_at")?,
        ended_at: r.try_get("ended_at")?,
        end_reason: r.try_get("end_reason")?,
        reviewed_by: r.try_get("reviewed_by")?,
        reviewed_at: r.try_get("reviewed_at")?,
        review_note: r.try_get("review_note")?,
    })
}

impl Store {
    /// The operating mode every request is admitted under.
    pub async fn operating_mode(&self) -> Result<ModeRow, StoreError> {
        let row = sqlx::query("SELECT mode, reason, changed_by, changed_at FROM operating_mode WHERE id = 1")
            .fetch_optional(self.pool())
            .await?;
        let Some(r) = row else { return Ok(ModeRow::initial()) };
        let mode: String = r.try_get("mode")?;
        Ok(ModeRow {
            mode: mode
                .parse()
                .map_err(|e: hpki_protocol::emergency::UnknownMode| StoreError::Invalid(e.to_string()))?,
            reason: r.try_get("reason")?,
            changed_by: r.try_get("changed_by")?,
            changed_at: r.try_get("changed_at")?,
        })
    }

    /// Sets the operating mode, with the entry it owes (`audit::outbox`).
    pub async fn set_operating_mode(&self, row: &ModeRow, staged: Option<&Staged>) -> Result<(), StoreError> {
        let q = sqlx::query(
            "UPDATE operating_mode SET mode = $1, reason = $2, changed_by = $3, changed_at = $4 WHERE id = 1",
        )
        .bind(row.mode.as_str())
        .bind(&row.reason)
        .bind(&row.changed_by)
        .bind(row.changed_at);
        match self.execute_staging(q, Area::Identity, staged).await? {
            1 => Ok(()),
            _ => Err(StoreError::NotFound("the operating mode row (run `hpki-gateway migrate`)".into())),
        }
    }

    /// Whether IT staff designated `person` to break the glass.
    pub async fn break_glass_designated(&self, person: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 AS x FROM break_glass_designations WHERE person = $1 AND revoked_at IS NULL")
            .bind(person)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.is_some())
    }

    /// Designates `person` (again, after a revocation).
    pub async fn designate_break_glass(
        &self,
        person: &str,
        by: &str,
        now: i64,
        staged: Option<&Staged>,
    ) -> Result<(), StoreError> {
        if self.break_glass_designated(person).await? {
            return Err(StoreError::Conflict(format!("the break-glass designation of {person:?}")));
        }
        let q = sqlx::query(
            "INSERT INTO break_glass_designations (person, granted_by, granted_at, revoked_by, revoked_at) \
             VALUES ($1, $2, $3, NULL, NULL) \
             ON CONFLICT (person) DO UPDATE SET granted_by = $2, granted_at = $3, revoked_by = NULL, revoked_at = NULL",
        )
        .bind(person)
        .bind(by)
        .bind(now);
        self.execute_staging(q, Area::Identity, staged).await?;
        Ok(())
    }

    /// Ends `person`'s designation; `false` when there was none in force.
    /// Accesses already granted end too: a revocation is meant to stop them.
    pub async fn revoke_break_glass(
        &self,
        person: &str,
        by: &str,
        now: i64,
        staged: Option<&Staged>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let changed = sqlx::query(
            "UPDATE break_glass_designations SET revoked_by = $1, revoked_at = $2 WHERE person = $3 AND revoked_at IS NULL",
        )
        .bind(by)
        .bind(now)
        .bind(person)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE break_glass_accesses SET ended_at = $1, end_reason = 'revoked' \
             WHERE person = $2 AND ended_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(person)
        .execute(&mut *tx)
        .await?;
        if let Some(s) = staged {
            self.stage_in(&mut tx, Area::Identity, s).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Records a new access, with the entry its request owes.
    pub async fn start_break_glass(&self, row: &BreakGlassRow, staged: &Staged) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO break_glass_accesses ({ACCESS_COLS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, NULL, NULL, NULL, NULL)"
        )))
        .bind(&row.id)
        .bind(&row.person)
        .bind(&row.institution)
        .bind(&row.terminal)
        .bind(&row.patient_id)
        .bind(row.reason.as_str())
        .bind(&row.detail)
        .bind(row.started_at)
        .bind(row.expires_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict(e, format!("break-glass access {:?}", row.id)))?;
        self.stage_in(&mut tx, Area::Identity, staged).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn break_glass(&self, id: &str) -> Result<Option<BreakGlassRow>, StoreError> {
        let row =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {ACCESS_COLS} FROM break_glass_accesses WHERE id = $1")))
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
        row.as_ref().map(access_of).transpose()
    }

    /// `person`'s accesses usable at `now`, newest first.
    pub async fn active_break_glass_of(&self, person: &str, now: i64) -> Result<Vec<BreakGlassRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ACCESS_COLS} FROM break_glass_accesses \
             WHERE person = $1 AND ended_at IS NULL AND expires_at > $2 ORDER BY started_at DESC"
        )))
        .bind(person)
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(access_of).collect()
    }

    /// Ends an access still in force (`end_reason`: `ended` by its
    /// clinician, `expired` by the sweep); `false` when it was over already.
    pub async fn end_break_glass(
        &self,
        id: &str,
        at: i64,
        end_reason: &str,
        staged: Option<&Staged>,
    ) -> Result<bool, StoreError> {
        let q = sqlx::query(
            "UPDATE break_glass_accesses SET ended_at = $1, end_reason = $2 WHERE id = $3 AND ended_at IS NULL",
        )
        .bind(at)
        .bind(end_reason)
        .bind(id);
        Ok(self.execute_staging(q, Area::Identity, staged).await? == 1)
    }

    /// Accesses past their expiry that nobody ended yet (for the sweep).
    pub async fn expired_break_glass(&self, now: i64) -> Result<Vec<BreakGlassRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ACCESS_COLS} FROM break_glass_accesses WHERE ended_at IS NULL AND expires_at <= $1 ORDER BY expires_at"
        )))
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(access_of).collect()
    }

    /// Accesses to review in a report for `[from, to)`: every one started
    /// in it, and every earlier one not reviewed yet (they stay on every
    /// report until an auditor records a review).
    pub async fn break_glass_for_review(&self, from: i64, to: i64) -> Result<Vec<BreakGlassRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ACCESS_COLS} FROM break_glass_accesses \
             WHERE started_at < $2 AND (started_at >= $1 OR reviewed_at IS NULL) ORDER BY started_at"
        )))
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(access_of).collect()
    }

    /// How many reads of its patient's records an access served (its
    /// `break_glass.read` entries answered ok, which name it and its
    /// patient; reads are refused once it is over).
    pub async fn break_glass_reads(&self, access: &BreakGlassRow) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM audit WHERE action = 'break_glass.read' AND outcome = 'ok' AND object = $1",
        )
        .bind(access.audit_object())
        .fetch_one(self.pool())
        .await?
        .try_get("n")?;
        Ok(u64::try_from(n).unwrap_or_default())
    }

    /// Records an auditor's review of an access that is over.
    pub async fn review_break_glass(
        &self,
        id: &str,
        by: &str,
        note: &str,
        now: i64,
        staged: Option<&Staged>,
    ) -> Result<(), StoreError> {
        let Some(row) = self.break_glass(id).await? else {
            return Err(StoreError::NotFound(format!("break-glass access {id:?}")));
        };
        if row.reviewed_at.is_some() {
            return Err(StoreError::Conflict(format!("the review of break-glass access {id:?}")));
        }
        if row.active_at(now) {
            return Err(StoreError::Invalid(format!(
                "break-glass access {id:?} is still in force (until {}): review it once it is over",
                hpki_profile::validate::rfc3339(row.expires_at)
            )));
        }
        let q = sqlx::query(
            "UPDATE break_glass_accesses SET reviewed_by = $1, reviewed_at = $2, review_note = $3 \
             WHERE id = $4 AND reviewed_at IS NULL",
        )
        .bind(by)
        .bind(now)
        .bind(note)
        .bind(id);
        match self.execute_staging(q, Area::Identity, staged).await? {
            1 => Ok(()),
            _ => Err(StoreError::Conflict(format!("the review of break-glass access {id:?}"))),
        }
    }
}
