//! Challenges (single use, enforced by the database) and sessions.

use sqlx::Row;

use super::{PersonRow, Store, StoreError};

/// Seconds between two writes of a session's last use.
pub const TOUCH_EVERY: i64 = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeRow {
    pub nonce: Vec<u8>,
    pub terminal: String,
    pub expires_at: i64,
}

/// A session as each request needs it (the card certificate it was opened
/// with stays in the table as evidence; no request reads it back).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub person_id: String,
    pub terminal: String,
    pub created_at: i64,
    pub last_seen: i64,
    pub expires_at: i64,
}

/// Why a session is not usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    Unknown,
    Ended,
    IdleTimeout,
    Expired,
}

/// What a request's session lookup found.
// Only ever a return value, moved once: boxing the big variant would cost an
// allocation per request for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionUse {
    /// The terminal the request came from is suspended: nothing else was
    /// looked at or changed.
    TerminalSuspended,
    Unusable(SessionEnd),
    /// The session, and its person as registered now.
    Usable(SessionRow, Option<PersonRow>),
}

impl Store {
    pub async fn create_challenge(
        &self,
        id: &str,
        nonce: &[u8],
        terminal: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO challenges (id, nonce, terminal, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(id)
            .bind(nonce)
            .bind(terminal)
            .bind(now)
            .bind(expires_at)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Marks the challenge used and returns it — one statement, so of two
    /// gateways racing for the same challenge only one gets it. `Ok(None)`
    /// for an unknown challenge, `Err(Conflict)` for one already used.
    pub async fn take_challenge(&self, id: &str, now: i64) -> Result<Option<ChallengeRow>, StoreError> {
        let taken = sqlx::query(
            "UPDATE challenges SET used_at = $1 WHERE id = $2 AND used_at IS NULL RETURNING nonce, terminal, expires_at",
        )
        .bind(now)
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        match taken {
            Some(r) => Ok(Some(ChallengeRow {
                nonce: r.try_get("nonce")?,
                terminal: r.try_get("terminal")?,
                expires_at: r.try_get("expires_at")?,
            })),
            None => {
                let exists =
                    sqlx::query("SELECT 1 FROM challenges WHERE id = $1").bind(id).fetch_optional(self.pool()).await?;
                match exists {
                    Some(_) => Err(StoreError::Conflict(format!("challenge {id:?} was already used"))),
                    None => Ok(None),
                }
            }
        }
    }

    /// Forgets challenges that expired before `before` (housekeeping).
    pub async fn purge_challenges(&self, before: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM challenges WHERE expires_at < $1")
            .bind(before)
            .execute(self.pool())
            .await?
            .rows_affected())
    }

    pub async fn create_session(
        &self,
        token_hash: &[u8],
        person_id: &str,
        terminal: &str,
        card_cert: &[u8],
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (token_hash, person_id, terminal, card_cert, created_at, last_seen, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $5, $6)",
        )
        .bind(token_hash)
        .bind(person_id)
        .bind(terminal)
        .bind(card_cert)
        .bind(now)
        .bind(expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The session, if usable at `now` with `idle` seconds of idle timeout,
    /// with its person as registered now and whether the requesting
    /// `terminal` (institution, name) is suspended, all in one query: every
    /// authenticated request needs the three. A usable session's last use
    /// becomes `now`; an expired session is ended on the way.
    pub async fn use_session(
        &self,
        token_hash: &[u8],
        terminal: (&str, &str),
        now: i64,
        idle: i64,
    ) -> Result<SessionUse, StoreError> {
        let r = sqlx::query(
            "SELECT t.suspended AS t_suspended, \
             s.person_id, s.terminal, s.created_at, s.last_seen, s.expires_at, s.ended_at, \
             p.id AS p_id, p.role AS p_role, p.name AS p_name, p.name_kanji AS p_name_kanji, \
             p.institution AS p_institution, p.active AS p_active \
             FROM (SELECT 1 AS one) o \
             LEFT JOIN terminal_status t ON t.institution = $2 AND t.name = $3 \
             LEFT JOIN sessions s ON s.token_hash = $1 \
             LEFT JOIN persons p ON p.id = s.person_id",
        )
        .bind(token_hash)
        .bind(terminal.0)
        .bind(terminal.1)
        .fetch_one(self.pool())
        .await?;
        if r.try_get::<Option<i64>, _>("t_suspended")?.unwrap_or(0) != 0 {
            return Ok(SessionUse::TerminalSuspended);
        }
        let Some(person_id) = r.try_get::<Option<String>, _>("person_id")? else {
            return Ok(SessionUse::Unusable(SessionEnd::Unknown));
        };
        let person = match r.try_get::<Option<String>, _>("p_id")? {
            Some(id) => Some(PersonRow {
                id,
                role: r.try_get("p_role")?,
                name: r.try_get("p_name")?,
                name_kanji: r.try_get("p_name_kanji")?,
                institution: r.try_get("p_institution")?,
                active: r.try_get::<i64, _>("p_active")? != 0,
            }),
            None => None,
        };
        if r.try_get::<Option<i64>, _>("ended_at")?.is_some() {
            return Ok(SessionUse::Unusable(SessionEnd::Ended));
        }
        let s = SessionRow {
            person_id,
            terminal: r.try_get("terminal")?,
            created_at: r.try_get("created_at")?,
            last_seen: r.try_get("last_seen")?,
            expires_at: r.try_get("expires_at")?,
        };
        let end = if now >= s.expires_at {
            Some((SessionEnd::Expired, "expired"))
        } else if now - s.last_seen >= idle {
            Some((SessionEnd::IdleTimeout, "idle_timeout"))
        } else {
            None
        };
        if let Some((end, reason)) = end {
            self.end_session(token_hash, now, reason).await?;
            return Ok(SessionUse::Unusable(end));
        }
        // A write per request would make every request a database write;
        // `last_seen` moves only when it is TOUCH_EVERY old, so a session may
        // end up to that much early, never late. Only forward: concurrent
        // requests must not rewind it.
        if now - s.last_seen < TOUCH_EVERY {
            return Ok(SessionUse::Usable(s, person));
        }
        sqlx::query("UPDATE sessions SET last_seen = $1 WHERE token_hash = $2 AND last_seen < $1")
            .bind(now)
            .bind(token_hash)
            .execute(self.pool())
            .await?;
        Ok(SessionUse::Usable(SessionRow { last_seen: now, ..s }, person))
    }

    /// Ends a session; `false` if it was unknown or already ended.
    pub async fn end_session(&self, token_hash: &[u8], now: i64, reason: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE sessions SET ended_at = $1, end_reason = $2 WHERE token_hash = $3 AND ended_at IS NULL",
        )
        .bind(now)
        .bind(reason)
        .bind(token_hash)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
