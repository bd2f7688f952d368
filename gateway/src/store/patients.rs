//! Patients (identity area): registration with a pseudonymous key, consent
//! per institution, the patient's password account and sessions (AUTH-4,
//! AUTH-5, FLOW-4).

use sqlx::Row;

use super::{Store, StoreError, conflict};
use crate::audit::outbox::{Area, Staged};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientRow {
    pub id: String,
    pub pseudonym: String,
    pub name: String,
    pub name_kanji: Option<String>,
    pub birth_date: String,
}

/// Whether a password guess may be tried (`admit_password_guess`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guess {
    /// No such account.
    Unknown,
    Locked {
        until: i64,
    },
    /// Try it: the account as it is with this guess counted.
    Try(AccountRow),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    pub patient_id: String,
    pub password_hash: String,
    pub must_change: bool,
    pub failed_attempts: i64,
    pub locked_until: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientSessionRow {
    pub patient_id: String,
    pub last_seen: i64,
    pub expires_at: i64,
    pub ended: bool,
}

const PATIENT_COLS: &str = "id, pseudonym, name, name_kanji, birth_date";

fn patient_of(r: &sqlx::any::AnyRow) -> Result<PatientRow, sqlx::Error> {
    Ok(PatientRow {
        id: r.try_get("id")?,
        pseudonym: r.try_get("pseudonym")?,
        name: r.try_get("name")?,
        name_kanji: r.try_get("name_kanji")?,
        birth_date: r.try_get("birth_date")?,
    })
}

impl Store {
    pub async fn add_patient(
        &self,
        p: &PatientRow,
        registered_by: &str,
        now: i64,
        staged: &Staged,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO patients (id, pseudonym, name, name_kanji, birth_date, registered_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&p.id)
        .bind(&p.pseudonym)
        .bind(&p.name)
        .bind(&p.name_kanji)
        .bind(&p.birth_date)
        .bind(registered_by)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict(e, format!("patient {:?}", p.id)))?;
        self.stage_in(&mut tx, Area::Identity, staged).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn patient(&self, id: &str) -> Result<Option<PatientRow>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {PATIENT_COLS} FROM patients WHERE id = $1")))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(patient_of).transpose()?)
    }

    /// The patient id of a pseudonym (staff views name the patient).
    pub async fn patient_by_pseudonym(&self, pseudonym: &str) -> Result<Option<PatientRow>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {PATIENT_COLS} FROM patients WHERE pseudonym = $1")))
            .bind(pseudonym)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(patient_of).transpose()?)
    }

    /// Records the patient's consent to share what `institution` records.
    pub async fn grant_consent(
        &self,
        patient: &str,
        institution: &str,
        recorded_by: &str,
        now: i64,
        staged: Option<&Staged>,
    ) -> Result<(), StoreError> {
        if self.patient(patient).await?.is_none() {
            return Err(StoreError::NotFound(format!("patient {patient:?}")));
        }
        if !self.institution_exists(institution).await? {
            return Err(StoreError::NotFound(format!("institution {institution:?}")));
        }
        let q = sqlx::query(
            "INSERT INTO patient_consents (patient_id, institution, granted_at, recorded_by, withdrawn_at) \
             VALUES ($1, $2, $3, $4, NULL) \
             ON CONFLICT (patient_id, institution) DO UPDATE SET granted_at = $3, recorded_by = $4, withdrawn_at = NULL",
        )
        .bind(patient)
        .bind(institution)
        .bind(now)
        .bind(recorded_by);
        self.execute_staging(q, Area::Identity, staged).await?;
        Ok(())
    }

    /// Withdraws a consent; `false` when there was none in force.
    pub async fn withdraw_consent(
        &self,
        patient: &str,
        institution: &str,
        now: i64,
        staged: Option<&Staged>,
    ) -> Result<bool, StoreError> {
        let q = sqlx::query(
            "UPDATE patient_consents SET withdrawn_at = $1 WHERE patient_id = $2 AND institution = $3 \
             AND withdrawn_at IS NULL",
        )
        .bind(now)
        .bind(patient)
        .bind(institution);
        Ok(self.execute_staging(q, Area::Identity, staged).await? == 1)
    }

    /// The institutions whose records the patient consented to see and share.
    pub async fn consented_institutions(&self, patient: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT institution FROM patient_consents WHERE patient_id = $1 AND withdrawn_at IS NULL ORDER BY institution",
        )
        .bind(patient)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(|r| r.try_get("institution")).collect::<Result<_, _>>()?)
    }

    /// Creates (or re-issues) the patient's account with an initial password
    /// that must be replaced at the first sign-in.
    /// In one transaction with `staged` (`audit::outbox`) and the end of
    /// every session of the old password.
    pub async fn set_initial_password(
        &self,
        patient: &str,
        hash: &str,
        now: i64,
        staged: Option<&Staged>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO patient_accounts (patient_id, password_hash, must_change, failed_attempts, locked_until, \
             enrolled_at, changed_at) VALUES ($1, $2, 1, 0, 0, $3, $3) \
             ON CONFLICT (patient_id) DO UPDATE SET password_hash = $2, must_change = 1, failed_attempts = 0, \
             locked_until = 0, changed_at = $3",
        )
        .bind(patient)
        .bind(hash)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        // A re-issued password ends every session of the old one.
        sqlx::query("UPDATE patient_sessions SET ended_at = $1 WHERE patient_id = $2 AND ended_at IS NULL")
            .bind(now)
            .bind(patient)
            .execute(&mut *tx)
            .await?;
        if let Some(staged) = staged {
            self.stage_in(&mut tx, Area::Identity, staged).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn account(&self, patient: &str) -> Result<Option<AccountRow>, StoreError> {
        let row = sqlx::query(
            "SELECT patient_id, password_hash, must_change, failed_attempts, locked_until FROM patient_accounts \
             WHERE patient_id = $1",
        )
        .bind(patient)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(AccountRow {
                patient_id: r.try_get("patient_id")?,
                password_hash: r.try_get("password_hash")?,
                must_change: r.try_get::<i64, _>("must_change")? != 0,
                failed_attempts: r.try_get("failed_attempts")?,
                locked_until: r.try_get("locked_until")?,
            })
        })
        .transpose()
    }

    /// Decides, in one conditional update, whether a password guess for
    /// `patient` may be tried now: only when the account is not locked, and
    /// the guess is counted as a failure *before* it is tried (settled by
    /// [`Store::settle_password_guess`]). The guess that reaches `max`
    /// failures locks the account for `base` seconds at once, so of any
    /// number of concurrent guesses at most `max` are tried, then one per
    /// lock period.
    pub async fn admit_password_guess(
        &self,
        patient: &str,
        now: i64,
        max: i64,
        base: i64,
    ) -> Result<Guess, StoreError> {
        let row = sqlx::query(
            "UPDATE patient_accounts SET failed_attempts = failed_attempts + 1, \
             locked_until = CASE WHEN failed_attempts + 1 >= $1 THEN $2 ELSE 0 END \
             WHERE patient_id = $3 AND locked_until <= $4 \
             RETURNING patient_id, password_hash, must_change, failed_attempts, locked_until",
        )
        .bind(max)
        .bind(now + base)
        .bind(patient)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        if let Some(r) = row {
            return Ok(Guess::Try(AccountRow {
                patient_id: r.try_get("patient_id")?,
                password_hash: r.try_get("password_hash")?,
                must_change: r.try_get::<i64, _>("must_change")? != 0,
                failed_attempts: r.try_get("failed_attempts")?,
                locked_until: r.try_get("locked_until")?,
            }));
        }
        Ok(match self.account(patient).await? {
            Some(a) => Guess::Locked { until: a.locked_until },
            None => Guess::Unknown,
        })
    }

    /// Settles an admitted guess: right, the failures are forgiven and the
    /// lock lifted; wrong, the lock is lengthened to `locked_until` (never
    /// shortened: a concurrent guess may have locked it longer).
    pub async fn settle_password_guess(&self, patient: &str, right: bool, locked_until: i64) -> Result<(), StoreError> {
        let q = if right {
            sqlx::query("UPDATE patient_accounts SET failed_attempts = 0, locked_until = 0 WHERE patient_id = $1")
                .bind(patient)
        } else {
            sqlx::query(
                "UPDATE patient_accounts SET locked_until = CASE WHEN locked_until < $1 THEN $1 ELSE locked_until END \
                 WHERE patient_id = $2",
            )
            .bind(locked_until)
            .bind(patient)
        };
        q.execute(self.pool()).await?;
        Ok(())
    }

    /// Replaces the password (the patient's own choice from now on) and ends
    /// every session of the patient but `keep` (the one that changed it),
    /// in one transaction: a session opened with the old password does not
    /// outlive it.
    pub async fn set_password(
        &self,
        patient: &str,
        hash: &str,
        now: i64,
        keep: &[u8],
        staged: &Staged,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "UPDATE patient_accounts SET password_hash = $1, must_change = 0, changed_at = $2 WHERE patient_id = $3",
        )
        .bind(hash)
        .bind(now)
        .bind(patient)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE patient_sessions SET ended_at = $1 \
             WHERE patient_id = $2 AND token_hash <> $3 AND ended_at IS NULL",
        )
        .bind(now)
        .bind(patient)
        .bind(keep)
        .execute(&mut *tx)
        .await?;
        self.stage_in(&mut tx, Area::Identity, staged).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn create_patient_session(
        &self,
        token_hash: &[u8],
        patient: &str,
        now: i64,
        expires_at: i64,
        staged: &Staged,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO patient_sessions (token_hash, patient_id, created_at, last_seen, expires_at) \
             VALUES ($1, $2, $3, $3, $4)",
        )
        .bind(token_hash)
        .bind(patient)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        self.stage_in(&mut tx, Area::Identity, staged).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn patient_session(&self, token_hash: &[u8]) -> Result<Option<PatientSessionRow>, StoreError> {
        let row = sqlx::query(
            "SELECT patient_id, last_seen, expires_at, ended_at FROM patient_sessions WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(PatientSessionRow {
                patient_id: r.try_get("patient_id")?,
                last_seen: r.try_get("last_seen")?,
                expires_at: r.try_get("expires_at")?,
                ended: r.try_get::<Option<i64>, _>("ended_at")?.is_some(),
            })
        })
        .transpose()
    }

    pub async fn touch_patient_session(&self, token_hash: &[u8], now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE patient_sessions SET last_seen = $1 WHERE token_hash = $2")
            .bind(now)
            .bind(token_hash)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn end_patient_session(&self, token_hash: &[u8], now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE patient_sessions SET ended_at = $1 WHERE token_hash = $2 AND ended_at IS NULL")
            .bind(now)
            .bind(token_hash)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// A patient's logout: ends the session with its audit entry staged
    /// (`audit::outbox`).
    pub async fn patient_log_out(&self, token_hash: &[u8], now: i64, staged: &Staged) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query("UPDATE patient_sessions SET ended_at = $1 WHERE token_hash = $2 AND ended_at IS NULL")
            .bind(now)
            .bind(token_hash)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 1 {
            self.stage_in(&mut tx, Area::Identity, staged).await?;
            tx.commit().await?;
        }
        Ok(())
    }
}
