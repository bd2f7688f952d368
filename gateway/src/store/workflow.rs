//! The health area: encounters (FLOW-3), versioned drafts (FLOW-1) and
//! records (FLOW-2, DATA-1, DATA-3). Patients appear only by pseudonym;
//! content is ciphertext sealed by the keyring.

use sqlx::Row;

use super::statement::Statement;
use super::{Backend, Store, StoreError, conflict, values_placeholders};
use crate::audit::outbox::{Area, Staged};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncounterRow {
    pub id: String,
    /// Pseudonym.
    pub patient: String,
    pub institution: String,
    pub opened_by: String,
    pub opened_at: i64,
    pub expires_at: i64,
    pub closed_at: Option<i64>,
}

impl EncounterRow {
    pub fn is_open(&self, now: i64) -> bool {
        self.closed_at.is_none() && now < self.expires_at
    }
}

/// See `Store::confirm_context`.
#[derive(Debug, Clone)]
pub struct ConfirmContext {
    pub draft: DraftRow,
    /// The draft's patient's id, if registered.
    pub patient_id: Option<String>,
    /// Whether the draft's assistant is linked to the signer now.
    pub linked: bool,
    /// Whether the patient has an encounter open at the terminal's
    /// institution now.
    pub encounter_open: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftRow {
    pub id: String,
    pub kind: String,
    pub patient: String,
    pub encounter: String,
    pub institution: String,
    pub assistant: String,
    pub signer: String,
    pub version: i64,
    pub key_id: String,
    pub content: Vec<u8>,
    pub confirmed: bool,
    pub record_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRow {
    pub id: String,
    pub kind: String,
    pub patient: String,
    pub institution: String,
    pub origin_reference: String,
    pub draft_version: Option<i64>,
    pub author: String,
    pub signer: Option<String>,
    pub key_id: String,
    pub content: Vec<u8>,
    pub document_sha256: Option<Vec<u8>>,
    pub signature: Option<Vec<u8>>,
    pub signature_cert: Option<Vec<u8>>,
    /// JSON array of revocation evidence.
    pub revocation: String,
    pub created_at: i64,
    /// From the newest signature container (`record_signatures`), when
    /// read; ignored when a record is written.
    pub signature_level: Option<String>,
    pub time_stamped_at: Option<i64>,
}

impl RecordRow {
    /// A record without a signature (a note, a correction): its author
    /// wrote it, nobody confirmed it with a card. `at` is the patient's
    /// pseudonym and the institution.
    pub fn unsigned(
        id: String,
        kind: &str,
        (patient, institution): (String, String),
        origin_reference: String,
        author: String,
        (key_id, content): (String, Vec<u8>),
        created_at: i64,
    ) -> RecordRow {
        RecordRow {
            id,
            kind: kind.into(),
            patient,
            institution,
            origin_reference,
            draft_version: None,
            author,
            signer: None,
            key_id,
            content,
            document_sha256: None,
            signature: None,
            signature_cert: None,
            revocation: "[]".into(),
            created_at,
            signature_level: None,
            time_stamped_at: None,
        }
    }
}

/// One version of a record's signature container (CAdES `signature.p7s`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureRow {
    pub record: String,
    /// 0 at confirm; each renewal appends the next.
    pub seq: i64,
    /// "CAdES B-B", "CAdES B-LT", …
    pub level: String,
    pub time_stamped_at: Option<i64>,
    pub container: Vec<u8>,
    pub created_at: i64,
}

/// Whose pending drafts: those awaiting a signer, or those an assistant wrote.
#[derive(Debug, Clone, Copy)]
enum DraftParty {
    Signer,
    Assistant,
}

/// A value to re-encrypt under the current key.
#[derive(Debug, Clone)]
pub struct SealedRow {
    pub id: String,
    pub key_id: String,
    pub content: Vec<u8>,
}

const ENCOUNTER_COLS: &str = "id, patient, institution, opened_by, opened_at, expires_at, closed_at";
const DRAFT_COLS: &str = "id, kind, patient, encounter, institution, assistant, signer, version, key_id, content, \
                          status, record_id, created_at, updated_at";
pub(super) const RECORD_COLS: &str = "id, kind, patient, institution, origin_reference, draft_version, author, signer, key_id, \
                           content, document_sha256, signature, signature_cert, revocation, created_at, \
                           (SELECT level FROM record_signatures s WHERE s.record = records.id \
                            ORDER BY seq DESC LIMIT 1) AS signature_level, \
                           (SELECT time_stamped_at FROM record_signatures s WHERE s.record = records.id \
                            ORDER BY seq DESC LIMIT 1) AS time_stamped_at";

fn encounter_of(r: &sqlx::any::AnyRow) -> Result<EncounterRow, sqlx::Error> {
    Ok(EncounterRow {
        id: r.try_get("id")?,
        patient: r.try_get("patient")?,
        institution: r.try_get("institution")?,
        opened_by: r.try_get("opened_by")?,
        opened_at: r.try_get("opened_at")?,
        expires_at: r.try_get("expires_at")?,
        closed_at: r.try_get("closed_at")?,
    })
}

fn draft_of(r: &sqlx::any::AnyRow) -> Result<DraftRow, sqlx::Error> {
    Ok(DraftRow {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        patient: r.try_get("patient")?,
        encounter: r.try_get("encounter")?,
        institution: r.try_get("institution")?,
        assistant: r.try_get("assistant")?,
        signer: r.try_get("signer")?,
        version: r.try_get("version")?,
        key_id: r.try_get("key_id")?,
        content: r.try_get("content")?,
        confirmed: r.try_get::<String, _>("status")? == "confirmed",
        record_id: r.try_get("record_id")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

pub(super) fn record_of(r: &sqlx::any::AnyRow) -> Result<RecordRow, sqlx::Error> {
    Ok(RecordRow {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        patient: r.try_get("patient")?,
        institution: r.try_get("institution")?,
        origin_reference: r.try_get("origin_reference")?,
        draft_version: r.try_get("draft_version")?,
        author: r.try_get("author")?,
        signer: r.try_get("signer")?,
        key_id: r.try_get("key_id")?,
        content: r.try_get("content")?,
        document_sha256: r.try_get("document_sha256")?,
        signature: r.try_get("signature")?,
        signature_cert: r.try_get("signature_cert")?,
        revocation: r.try_get("revocation")?,
        created_at: r.try_get("created_at")?,
        signature_level: r.try_get("signature_level")?,
        time_stamped_at: r.try_get("time_stamped_at")?,
    })
}

impl Store {
    /// Opens `e`, its audit entry staged with it (`audit::outbox`).
    pub async fn open_encounter(&self, e: &EncounterRow, staged: &Staged) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO encounters (id, patient, institution, opened_by, opened_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&e.id)
        .bind(&e.patient)
        .bind(&e.institution)
        .bind(&e.opened_by)
        .bind(e.opened_at)
        .bind(e.expires_at)
        .execute(&mut *tx)
        .await
        .map_err(|err| conflict(err, format!("encounter {:?}", e.id)))?;
        self.stage_in(&mut tx, Area::Health, staged).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn encounter(&self, id: &str) -> Result<Option<EncounterRow>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {ENCOUNTER_COLS} FROM encounters WHERE id = $1")))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(encounter_of).transpose()?)
    }

    /// An encounter of this patient at this institution that is open now.
    pub async fn open_encounter_of(
        &self,
        patient: &str,
        institution: &str,
        now: i64,
    ) -> Result<Option<EncounterRow>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ENCOUNTER_COLS} FROM encounters WHERE patient = $1 AND institution = $2 \
             AND closed_at IS NULL AND expires_at > $3 ORDER BY opened_at DESC LIMIT 1"
        )))
        .bind(patient)
        .bind(institution)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(encounter_of).transpose()?)
    }

    /// Closes an open encounter; `false` if it was already closed.
    pub async fn close_encounter(&self, id: &str, by: &str, now: i64, staged: &Staged) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let done =
            sqlx::query("UPDATE encounters SET closed_at = $1, closed_by = $2 WHERE id = $3 AND closed_at IS NULL")
                .bind(now)
                .bind(by)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        self.stage_in(&mut tx, Area::Health, staged).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn create_draft(&self, d: &DraftRow, staged: &Staged) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO drafts (id, kind, patient, encounter, institution, assistant, signer, version, key_id, \
             content, status, record_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', NULL, $11, $11)",
        )
        .bind(&d.id)
        .bind(&d.kind)
        .bind(&d.patient)
        .bind(&d.encounter)
        .bind(&d.institution)
        .bind(&d.assistant)
        .bind(&d.signer)
        .bind(d.version)
        .bind(&d.key_id)
        .bind(&d.content)
        .bind(d.created_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict(e, format!("draft {:?}", d.id)))?;
        self.stage_in(&mut tx, Area::Health, staged).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn draft(&self, id: &str) -> Result<Option<DraftRow>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {DRAFT_COLS} FROM drafts WHERE id = $1")))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(draft_of).transpose()?)
    }

    /// Replaces the content of a pending draft at `version`, making it
    /// `version + 1`; `false` when the draft is no longer at that version
    /// or no longer pending (compare-and-set, so two edits cannot both win).
    pub async fn edit_draft(
        &self,
        id: &str,
        version: i64,
        key_id: &str,
        content: &[u8],
        now: i64,
        staged: &Staged,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE drafts SET version = version + 1, key_id = $1, content = $2, updated_at = $3 \
             WHERE id = $4 AND version = $5 AND status = 'pending'",
        )
        .bind(key_id)
        .bind(content)
        .bind(now)
        .bind(id)
        .bind(version)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        self.stage_in(&mut tx, Area::Health, staged).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Pending drafts awaiting `signer`, oldest first.
    pub async fn queue(&self, signer: &str) -> Result<Vec<DraftRow>, StoreError> {
        self.pending_drafts(DraftParty::Signer, signer).await
    }

    /// Pending drafts written by `assistant`, oldest first.
    pub async fn drafts_by(&self, assistant: &str) -> Result<Vec<DraftRow>, StoreError> {
        self.pending_drafts(DraftParty::Assistant, assistant).await
    }

    async fn pending_drafts(&self, party: DraftParty, person: &str) -> Result<Vec<DraftRow>, StoreError> {
        let column = match party {
            DraftParty::Signer => "signer",
            DraftParty::Assistant => "assistant",
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DRAFT_COLS} FROM drafts WHERE {column} = $1 AND status = 'pending' ORDER BY created_at, id"
        )))
        .bind(person)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(draft_of).collect::<Result<_, _>>()?)
    }

    /// What confirming draft `id` by `signer` at a terminal of
    /// `institution` at `now` depends on, in one query (one round trip
    /// instead of four): the draft, its patient's id, whether the draft's
    /// assistant is linked to the signer, and whether the patient has an
    /// encounter open here now. It reads both areas, as the gateway does anyway when it
    /// checks a confirm; the areas stay apart in storage (DATA-2).
    pub async fn confirm_context(
        &self,
        id: &str,
        signer: &str,
        institution: &str,
        now: i64,
    ) -> Result<Option<ConfirmContext>, StoreError> {
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "SELECT {DRAFT_COLS}, \
                 (SELECT p.id FROM patients p WHERE p.pseudonym = drafts.patient) AS patient_id, \
                 CAST(CASE WHEN EXISTS (SELECT 1 FROM assistant_links l \
                   WHERE l.assistant_id = drafts.assistant AND l.doctor_id = $2) THEN 1 ELSE 0 END AS BIGINT) AS linked, \
                 CAST(CASE WHEN EXISTS (SELECT 1 FROM encounters e WHERE e.patient = drafts.patient \
                   AND e.institution = $3 AND e.closed_at IS NULL AND e.expires_at > $4) THEN 1 ELSE 0 END AS BIGINT) \
                   AS encounter_open \
                 FROM drafts WHERE id = $1"
            )
        });
        let row = sqlx::query(sqlx::AssertSqlSafe(SQL.as_str()))
            .bind(id)
            .bind(signer)
            .bind(institution)
            .bind(now)
            .fetch_optional(self.pool())
            .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(ConfirmContext {
            draft: draft_of(&r)?,
            patient_id: r.try_get("patient_id")?,
            linked: r.try_get::<i64, _>("linked")? == 1,
            encounter_open: r.try_get::<i64, _>("encounter_open")? == 1,
        }))
    }

    /// Turns draft `id` at `version` into `record`, in one transaction: the
    /// draft must still be pending at that version. `Err(Conflict)` when it
    /// is not (a concurrent confirm or edit won).
    pub async fn confirm_draft(
        &self,
        id: &str,
        version: i64,
        record: &RecordRow,
        signature: &SignatureRow,
        staged: &Staged,
    ) -> Result<(), StoreError> {
        if self.backend() == Backend::Postgres {
            return self.confirm_draft_in_one_statement(id, version, record, signature, staged).await;
        }
        if let Some(lanes) = self.lanes() {
            // The writer lane: confirms commit in its groups with the audit
            // appends and logins instead of contending with them for
            // SQLite's write lock (a pool transaction waiting in the busy
            // handler's sleeps was most of a confirm's latency).
            let (id, record, signature, staged) = (id.to_owned(), record.clone(), signature.clone(), staged.clone());
            return lanes.writer.run(move |c| sqlite_confirm(c, &id, version, &record, &signature, &staged)).await;
        }
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE drafts SET status = 'confirmed', record_id = $1, updated_at = $2 \
             WHERE id = $3 AND version = $4 AND status = 'pending'",
        )
        .bind(&record.id)
        .bind(record.created_at)
        .bind(id)
        .bind(version)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Err(StoreError::Conflict(format!("draft {id:?} at version {version}")));
        }
        insert_record(&mut tx, self.backend(), record).await?;
        insert_signature(&mut tx, self.backend(), signature).await?;
        self.stage_in(&mut tx, Area::Health, staged).await?;
        tx.commit().await?;
        Ok(())
    }

    /// PostgreSQL: the compare-and-set and the insert as one statement (a
    /// data-modifying CTE is atomic on its own), one round trip instead of
    /// four (BEGIN, UPDATE, INSERT, COMMIT) — the server is a network hop
    /// away and round trips are most of a confirm's cost there.
    /// The audit entry is staged by a third data-modifying CTE, from the
    /// same `confirmed` row: staged exactly when the record is written.
    async fn confirm_draft_in_one_statement(
        &self,
        id: &str,
        version: i64,
        r: &RecordRow,
        sig: &SignatureRow,
        s: &Staged,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "WITH confirmed AS (UPDATE drafts SET status = 'confirmed', record_id = $1, updated_at = $15 \
             WHERE id = $16 AND version = $17 AND status = 'pending' RETURNING id), \
             staged AS (INSERT INTO health.audit_outbox \
             (request_id, at, actor, terminal, institution, action, object) \
             SELECT $18, $19, $20, $21, $22, $23, $24 FROM confirmed), \
             inserted AS (INSERT INTO records ({RECORD_INSERT_COLS}) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15 FROM confirmed RETURNING id) \
             INSERT INTO health.record_signatures (record, seq, level, time_stamped_at, container, created_at) \
             SELECT id, $25, $26, $27, $28, $15 FROM inserted"
        );
        // $1…$15: the record's values as its INSERT binds them.
        let mut st = Statement::new(sql);
        st.params = record_insert(Backend::Postgres, r).params;
        let st = st
            .bind(id)
            .bind(version)
            .bind(&s.request_id)
            .bind(s.at)
            .bind(&s.actor)
            .bind(&s.terminal)
            .bind(&s.institution)
            .bind(s.action.as_str())
            .bind(&s.object)
            .bind(sig.seq)
            .bind(&sig.level)
            .bind(sig.time_stamped_at)
            .bind(&sig.container);
        let done = st
            .sqlx()
            .execute(self.pool())
            .await
            .map_err(|e| conflict(e, format!("record for {:?}", r.origin_reference)))?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Conflict(format!("draft {id:?} at version {version}")));
        }
        Ok(())
    }

    /// A record with no draft behind it and its signature container (a
    /// signed document received), in one transaction.
    pub async fn add_signed_record(
        &self,
        record: &RecordRow,
        signature: &SignatureRow,
        staged: &Staged,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        insert_record(&mut tx, self.backend(), record).await?;
        insert_signature(&mut tx, self.backend(), signature).await?;
        self.stage_in(&mut tx, Area::Health, staged).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A record with no draft behind it (a clinician's note).
    pub async fn add_record(&self, record: &RecordRow, staged: &Staged) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        insert_record(&mut tx, self.backend(), record).await?;
        self.stage_in(&mut tx, Area::Health, staged).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every record that has a signature container, by id.
    pub async fn signed_record_ids(&self) -> Result<Vec<String>, StoreError> {
        let rows =
            sqlx::query("SELECT DISTINCT record FROM record_signatures ORDER BY record").fetch_all(self.pool()).await?;
        Ok(rows.iter().map(|r| r.try_get("record")).collect::<Result<_, _>>()?)
    }

    /// Appends the next version of a record's container (a renewal) with
    /// its audit entry staged, in one transaction. `Err(Conflict)` when
    /// that version exists (another renewal got there first): earlier
    /// versions are never touched.
    pub async fn append_record_signature(&self, signature: &SignatureRow, staged: &Staged) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        insert_signature(&mut tx, self.backend(), signature).await?;
        self.stage_in(&mut tx, Area::Health, staged).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every version of a record's signature container, oldest first.
    pub async fn record_signatures(&self, record: &str) -> Result<Vec<SignatureRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT record, seq, level, time_stamped_at, container, created_at FROM record_signatures \
             WHERE record = $1 ORDER BY seq",
        )
        .bind(record)
        .fetch_all(self.pool())
        .await?;
        let read = |r: &sqlx::any::AnyRow| -> Result<SignatureRow, sqlx::Error> {
            Ok(SignatureRow {
                record: r.try_get("record")?,
                seq: r.try_get("seq")?,
                level: r.try_get("level")?,
                time_stamped_at: r.try_get("time_stamped_at")?,
                container: r.try_get("container")?,
                created_at: r.try_get("created_at")?,
            })
        };
        Ok(rows.iter().map(read).collect::<Result<_, _>>()?)
    }

    pub async fn record(&self, id: &str) -> Result<Option<RecordRow>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {RECORD_COLS} FROM records WHERE id = $1")))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(record_of).transpose()?)
    }

    /// Records created at or after `at` (Unix seconds), oldest first.
    pub async fn records_since(&self, at: i64) -> Result<Vec<RecordRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RECORD_COLS} FROM records WHERE created_at >= $1 ORDER BY created_at, id"
        )))
        .bind(at)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(record_of).collect::<Result<_, _>>()?)
    }

    /// Every record of a patient (pseudonym), oldest first.
    pub async fn records_of(&self, patient: &str) -> Result<Vec<RecordRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RECORD_COLS} FROM records WHERE patient = $1 ORDER BY created_at, id"
        )))
        .bind(patient)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(record_of).collect::<Result<_, _>>()?)
    }

    pub async fn count_records(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM records").fetch_one(self.pool()).await?.try_get("n")?)
    }

    /// Up to `limit` drafts or records (`table`) sealed under a key other
    /// than `current`.
    pub async fn sealed_under_old_keys(
        &self,
        table: SealedTable,
        current: &str,
        limit: i64,
    ) -> Result<Vec<SealedRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id, key_id, content FROM {} WHERE key_id <> $1 ORDER BY id LIMIT $2",
            table.name()
        )))
        .bind(current)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                Ok(SealedRow { id: r.try_get("id")?, key_id: r.try_get("key_id")?, content: r.try_get("content")? })
            })
            .collect::<Result<_, sqlx::Error>>()?)
    }

    /// Stores a re-encrypted value if the row is still as it was read.
    pub async fn reseal(
        &self,
        table: SealedTable,
        old: &SealedRow,
        key_id: &str,
        content: &[u8],
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {} SET key_id = $1, content = $2 WHERE id = $3 AND key_id = $4 AND content = $5",
            table.name()
        )))
        .bind(key_id)
        .bind(content)
        .bind(&old.id)
        .bind(&old.key_id)
        .bind(&old.content)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// How many rows use each key (for `rotate-key` and the config report).
    pub async fn key_usage(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT key_id, COUNT(*) AS n FROM (SELECT key_id FROM drafts UNION ALL SELECT key_id FROM records \
             UNION ALL SELECT key_id FROM correction_requests) AS k \
             GROUP BY key_id ORDER BY key_id",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(|r| Ok((r.try_get("key_id")?, r.try_get("n")?))).collect::<Result<_, sqlx::Error>>()?)
    }
}

/// The tables whose content is sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedTable {
    Drafts,
    Records,
    /// Patients' correction requests (FLOW-9).
    Corrections,
}

impl SealedTable {
    fn name(self) -> &'static str {
        match self {
            SealedTable::Drafts => "drafts",
            SealedTable::Records => "records",
            SealedTable::Corrections => "correction_requests",
        }
    }

    /// What one row of this table is called (errors, associated data).
    pub fn row_kind(self) -> &'static str {
        match self {
            SealedTable::Drafts => "draft",
            SealedTable::Records => "record",
            SealedTable::Corrections => "correction",
        }
    }

    /// The associated data that binds a sealed value to its row, so a value
    /// moved to another row does not open.
    pub fn aad(self, id: &str) -> String {
        format!("{}:{id}", self.row_kind())
    }
}

/// The columns a new record sets, in the order [`record_insert`] binds
/// them ($1…$15).
const RECORD_INSERT_COLS: &str = "id, kind, patient, institution, origin_reference, draft_version, author, signer, \
                                  key_id, content, document_sha256, signature, signature_cert, revocation, created_at";

/// A confirm on the SQLite writer lane, as [`Store::confirm_draft`] does it
/// with sqlx: the compare-and-set, the record, its container and the
/// staged audit entry, atomic in the job's savepoint.
fn sqlite_confirm(
    c: &rusqlite::Connection,
    id: &str,
    version: i64,
    r: &RecordRow,
    s: &SignatureRow,
    staged: &Staged,
) -> Result<(), StoreError> {
    use super::sqlite_lane::conflict as lane_conflict;
    let done = Statement::new(
        "UPDATE drafts SET status = 'confirmed', record_id = ?, updated_at = ? \
         WHERE id = ? AND version = ? AND status = 'pending'"
            .into(),
    )
    .bind(&r.id)
    .bind(r.created_at)
    .bind(id)
    .bind(version)
    .execute(c)?;
    if done != 1 {
        return Err(StoreError::Conflict(format!("draft {id:?} at version {version}")));
    }
    record_insert(Backend::Sqlite, r)
        .execute(c)
        .map_err(|e| lane_conflict(e, format!("record for {:?}", r.origin_reference)))?;
    signature_insert(Backend::Sqlite, s)
        .execute(c)
        .map_err(|e| lane_conflict(e, format!("signature {} of record {:?}", s.seq, s.record)))?;
    super::outbox::stage(Backend::Sqlite, Area::Health, &[staged]).execute(c)?;
    Ok(())
}

/// A record's INSERT for either driver, in [`RECORD_INSERT_COLS`] order.
fn record_insert(backend: Backend, r: &RecordRow) -> Statement<'_> {
    let sql = format!("INSERT INTO records ({RECORD_INSERT_COLS}) VALUES {}", values_placeholders(backend, 1, 15));
    Statement::new(sql)
        .bind(&r.id)
        .bind(&r.kind)
        .bind(&r.patient)
        .bind(&r.institution)
        .bind(&r.origin_reference)
        .bind(r.draft_version)
        .bind(&r.author)
        .bind(&r.signer)
        .bind(&r.key_id)
        .bind(&r.content)
        .bind(&r.document_sha256)
        .bind(&r.signature)
        .bind(&r.signature_cert)
        .bind(&r.revocation)
        .bind(r.created_at)
}

/// A signature container version's INSERT for either driver.
fn signature_insert(backend: Backend, s: &SignatureRow) -> Statement<'_> {
    let sql = format!(
        "INSERT INTO record_signatures (record, seq, level, time_stamped_at, container, created_at) VALUES {}",
        values_placeholders(backend, 1, 6)
    );
    Statement::new(sql)
        .bind(&s.record)
        .bind(s.seq)
        .bind(&s.level)
        .bind(s.time_stamped_at)
        .bind(&s.container)
        .bind(s.created_at)
}

async fn insert_signature(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    s: &SignatureRow,
) -> Result<(), StoreError> {
    signature_insert(backend, s)
        .sqlx()
        .execute(&mut **tx)
        .await
        .map_err(|e| conflict(e, format!("signature {} of record {:?}", s.seq, s.record)))?;
    Ok(())
}

pub(super) async fn insert_record(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    r: &RecordRow,
) -> Result<(), StoreError> {
    record_insert(backend, r)
        .sqlx()
        .execute(&mut **tx)
        .await
        .map_err(|e| conflict(e, format!("record for {:?}", r.origin_reference)))?;
    Ok(())
}
