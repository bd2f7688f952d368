//! Institutions, persons, assistant–doctor links and terminal suspension:
//! the administrative records (FLOW-1, FLOW-6).

use sqlx::Row;

use super::{Store, StoreError, conflict};
use crate::audit::outbox::{Area, Staged};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPerson {
    pub id: String,
    pub role: String,
    pub name: String,
    pub name_kanji: Option<String>,
    pub institution: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonRow {
    pub id: String,
    pub role: String,
    pub name: String,
    pub name_kanji: Option<String>,
    pub institution: String,
    pub active: bool,
}

impl Store {
    /// Without an audit entry staged: for setting up tests.
    pub async fn add_institution(&self, name: &str, name_kanji: Option<&str>, now: i64) -> Result<(), StoreError> {
        self.add_institution_staged(name, name_kanji, now, None).await
    }

    /// Adds an institution, `staged` with it (`audit::outbox`).
    pub async fn add_institution_staged(
        &self,
        name: &str,
        name_kanji: Option<&str>,
        now: i64,
        staged: Option<&Staged>,
    ) -> Result<(), StoreError> {
        let q = sqlx::query("INSERT INTO institutions (name, name_kanji, created_at) VALUES ($1, $2, $3)")
            .bind(name)
            .bind(name_kanji)
            .bind(now);
        self.execute_staging(q, Area::Identity, staged)
            .await
            .map_err(|e| conflict(e, format!("institution {name:?}")))?;
        Ok(())
    }

    pub async fn institution_exists(&self, name: &str) -> Result<bool, StoreError> {
        Ok(sqlx::query("SELECT 1 FROM institutions WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await?
            .is_some())
    }

    /// Without an audit entry staged: for setting up tests.
    pub async fn add_person(&self, p: &NewPerson, now: i64) -> Result<(), StoreError> {
        self.add_person_staged(p, now, None).await
    }

    /// Registers a person, `staged` with it (`audit::outbox`).
    pub async fn add_person_staged(&self, p: &NewPerson, now: i64, staged: Option<&Staged>) -> Result<(), StoreError> {
        if !self.institution_exists(&p.institution).await? {
            return Err(StoreError::NotFound(format!("institution {:?}", p.institution)));
        }
        let q = sqlx::query(
            "INSERT INTO persons (id, role, name, name_kanji, institution, active, created_at, changed_at) \
             VALUES ($1, $2, $3, $4, $5, 1, $6, $6)",
        )
        .bind(&p.id)
        .bind(&p.role)
        .bind(&p.name)
        .bind(&p.name_kanji)
        .bind(&p.institution)
        .bind(now);
        self.execute_staging(q, Area::Identity, staged).await.map_err(|e| conflict(e, format!("person {:?}", p.id)))?;
        Ok(())
    }

    pub async fn person(&self, id: &str) -> Result<Option<PersonRow>, StoreError> {
        const PERSON: &str = "SELECT id, role, name, name_kanji, institution, active FROM persons WHERE id = $1";
        let person = |r: &rusqlite::Row<'_>| {
            Ok(PersonRow {
                id: r.get(0)?,
                role: r.get(1)?,
                name: r.get(2)?,
                name_kanji: r.get(3)?,
                institution: r.get(4)?,
                active: r.get::<_, i64>(5)? != 0,
            })
        };
        if let Some(found) = self.lane_row(PERSON, id, person).await {
            return found;
        }
        let row = sqlx::query(PERSON).bind(id).fetch_optional(self.pool()).await?;
        row.map(|r| {
            Ok(PersonRow {
                id: r.try_get("id")?,
                role: r.try_get("role")?,
                name: r.try_get("name")?,
                name_kanji: r.try_get("name_kanji")?,
                institution: r.try_get("institution")?,
                active: r.try_get::<i64, _>("active")? != 0,
            })
        })
        .transpose()
    }

    /// Activates or deactivates a person (hire, leave); their sessions end
    /// at the next request.
    /// Without an audit entry staged: for setting up tests.
    pub async fn set_person_active(&self, id: &str, active: bool, now: i64) -> Result<(), StoreError> {
        self.set_person_active_staged(id, active, now, None).await
    }

    /// [`Store::set_person_active`], `staged` with it (`audit::outbox`).
    pub async fn set_person_active_staged(
        &self,
        id: &str,
        active: bool,
        now: i64,
        staged: Option<&Staged>,
    ) -> Result<(), StoreError> {
        let q = sqlx::query("UPDATE persons SET active = $1, changed_at = $2 WHERE id = $3")
            .bind(i64::from(active))
            .bind(now)
            .bind(id);
        if self.execute_staging(q, Area::Identity, staged).await? == 0 {
            return Err(StoreError::NotFound(format!("person {id:?}")));
        }
        Ok(())
    }

    /// Links an assistant to a doctor (or dentist) of the same institution
    /// (FLOW-1).
    pub async fn link_assistant(&self, assistant: &str, doctor: &str, now: i64) -> Result<(), StoreError> {
        self.link_assistant_staged(assistant, doctor, now, None).await
    }

    /// [`Store::link_assistant`], `staged` with it (`audit::outbox`).
    pub async fn link_assistant_staged(
        &self,
        assistant: &str,
        doctor: &str,
        now: i64,
        staged: Option<&Staged>,
    ) -> Result<(), StoreError> {
        let a = self.person(assistant).await?.ok_or_else(|| StoreError::NotFound(format!("person {assistant:?}")))?;
        let d = self.person(doctor).await?.ok_or_else(|| StoreError::NotFound(format!("person {doctor:?}")))?;
        if a.role != "assistant" {
            return Err(StoreError::Invalid(format!("{assistant:?} is a {}, not an assistant", a.role)));
        }
        if !matches!(d.role.as_str(), "doctor" | "dentist") {
            return Err(StoreError::Invalid(format!(
                "{doctor:?} is a {}; assistants work under doctors and dentists",
                d.role
            )));
        }
        if a.institution != d.institution {
            return Err(StoreError::Invalid(format!(
                "{assistant:?} works at {:?} and {doctor:?} at {:?}",
                a.institution, d.institution
            )));
        }
        let q = sqlx::query("INSERT INTO assistant_links (assistant_id, doctor_id, created_at) VALUES ($1, $2, $3)")
            .bind(assistant)
            .bind(doctor)
            .bind(now);
        self.execute_staging(q, Area::Identity, staged)
            .await
            .map_err(|e| conflict(e, format!("link {assistant:?} → {doctor:?}")))?;
        Ok(())
    }

    /// Ends a link (the assistant no longer works for that doctor); their
    /// pending drafts can then no longer be confirmed.
    pub async fn unlink_assistant(
        &self,
        assistant: &str,
        doctor: &str,
        staged: Option<&Staged>,
    ) -> Result<(), StoreError> {
        let q = sqlx::query("DELETE FROM assistant_links WHERE assistant_id = $1 AND doctor_id = $2")
            .bind(assistant)
            .bind(doctor);
        if self.execute_staging(q, Area::Identity, staged).await? == 0 {
            return Err(StoreError::NotFound(format!("link {assistant:?} → {doctor:?}")));
        }
        Ok(())
    }

    pub async fn linked_doctors(&self, assistant: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT doctor_id FROM assistant_links WHERE assistant_id = $1 ORDER BY doctor_id")
            .bind(assistant)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(|r| r.try_get("doctor_id").map_err(StoreError::from)).collect()
    }

    /// Without an audit entry staged: for setting up tests.
    pub async fn set_terminal_suspended(
        &self,
        institution: &str,
        name: &str,
        suspended: bool,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.set_terminal_suspended_staged(institution, name, suspended, reason, now, None).await
    }

    /// Suspends a terminal or lifts it, `staged` with it (`audit::outbox`).
    pub async fn set_terminal_suspended_staged(
        &self,
        institution: &str,
        name: &str,
        suspended: bool,
        reason: &str,
        now: i64,
        staged: Option<&Staged>,
    ) -> Result<(), StoreError> {
        let q = sqlx::query(
            "INSERT INTO terminal_status (institution, name, suspended, changed_at, reason) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (institution, name) DO UPDATE SET suspended = excluded.suspended, \
             changed_at = excluded.changed_at, reason = excluded.reason",
        )
            .bind(institution)
            .bind(name)
            .bind(i64::from(suspended))
            .bind(now)
            .bind(reason);
        self.execute_staging(q, Area::Identity, staged).await?;
        Ok(())
    }

    pub async fn terminal_suspended(&self, institution: &str, name: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT suspended FROM terminal_status WHERE institution = $1 AND name = $2")
            .bind(institution)
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(r) => r.try_get::<i64, _>("suspended")? != 0,
            None => false,
        })
    }
}
