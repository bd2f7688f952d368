//! Challenges (single use, enforced by the database) and sessions.

use sqlx::Row;

use super::{PersonRow, Store, StoreError};

/// Seconds between two writes of a session's last use.
pub const TOUCH_EVERY: i64 = 10;

/// Requests looked up in one statement (4 parameters each).
const LOOKUP_ROWS: usize = 256;

/// One request's session lookup: the hash of its bearer token, the
/// terminal it came from, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionQuery {
    pub token_hash: Vec<u8>,
    pub institution: String,
    pub name: String,
    pub now: i64,
}

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

/// A session a login opens.
pub struct NewSession<'a> {
    /// SHA-256 of the bearer token.
    pub token_hash: &'a [u8],
    pub person_id: &'a str,
    pub terminal: &'a str,
    /// SHA-256 of the card's authentication certificate.
    pub card_cert: &'a [u8],
    /// The CRLs that showed the card unrevoked (JSON list of evidence).
    pub revocation: &'a str,
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

    /// The challenge `id` and whether it was used, without taking it (the
    /// login takes it with its session: `login_writer`).
    pub async fn challenge(&self, id: &str) -> Result<Option<(ChallengeRow, bool)>, StoreError> {
        const CHALLENGE: &str = "SELECT nonce, terminal, expires_at, used_at FROM challenges WHERE id = $1";
        let challenge = |r: &rusqlite::Row<'_>| {
            let row = ChallengeRow { nonce: r.get(0)?, terminal: r.get(1)?, expires_at: r.get(2)? };
            Ok((row, r.get::<_, Option<i64>>(3)?.is_some()))
        };
        if let Some(found) = self.lane_row(CHALLENGE, id, challenge).await {
            return found;
        }
        let row = sqlx::query(CHALLENGE).bind(id).fetch_optional(self.pool()).await?;
        row.map(|r| {
            let used = r.try_get::<Option<i64>, _>("used_at")?.is_some();
            Ok((
                ChallengeRow {
                    nonce: r.try_get("nonce")?,
                    terminal: r.try_get("terminal")?,
                    expires_at: r.try_get("expires_at")?,
                },
                used,
            ))
        })
        .transpose()
    }

    /// Forgets challenges that expired before `before` (housekeeping).
    pub async fn purge_challenges(&self, before: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM challenges WHERE expires_at < $1")
            .bind(before)
            .execute(self.pool())
            .await?
            .rows_affected())
    }

    /// Token hash and certificate (DER) of every open session whose card
    /// certificate is kept (sessions opened before it was are not).
    pub async fn open_session_certificates(&self, now: i64) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT token_hash, card_cert_der FROM sessions \
             WHERE ended_at IS NULL AND expires_at > $1 AND card_cert_der IS NOT NULL",
        )
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| Ok((r.try_get("token_hash")?, r.try_get("card_cert_der")?))).collect()
    }

    pub async fn create_session(&self, s: &NewSession<'_>, now: i64, expires_at: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (token_hash, person_id, terminal, card_cert, revocation, created_at, last_seen, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6, $7)",
        )
        .bind(s.token_hash)
        .bind(s.person_id)
        .bind(s.terminal)
        .bind(s.card_cert)
        .bind(s.revocation)
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
        let query = SessionQuery {
            token_hash: token_hash.to_vec(),
            institution: terminal.0.to_owned(),
            name: terminal.1.to_owned(),
            now,
        };
        let mut found = self.use_sessions(&[query], idle).await?;
        found.pop().ok_or_else(|| StoreError::Invalid("the session lookup answered nothing".into()))
    }

    /// `use_session` for many requests at once, in one query (plus one
    /// write for the sessions whose last use is due to move): the answers
    /// are in the order of `queries`. Concurrent requests are looked up
    /// together so that a busy gateway pays one round trip per batch, not
    /// per request; each answer is what `use_session` would have given.
    pub async fn use_sessions(&self, queries: &[SessionQuery], idle: i64) -> Result<Vec<SessionUse>, StoreError> {
        let mut out = Vec::with_capacity(queries.len());
        for chunk in queries.chunks(LOOKUP_ROWS) {
            out.extend(self.use_sessions_chunk(chunk, idle).await?);
        }
        Ok(out)
    }

    async fn use_sessions_chunk(&self, queries: &[SessionQuery], idle: i64) -> Result<Vec<SessionUse>, StoreError> {
        let sql = format!(
            "WITH req (i, token_hash, institution, name) AS (VALUES {}) \
             SELECT req.i AS i, t.suspended AS t_suspended, \
             s.person_id, s.terminal, s.created_at, s.last_seen, s.expires_at, s.ended_at, \
             p.id AS p_id, p.role AS p_role, p.name AS p_name, p.name_kanji AS p_name_kanji, \
             p.institution AS p_institution, p.active AS p_active \
             FROM req \
             LEFT JOIN terminal_status t ON t.institution = req.institution AND t.name = req.name \
             LEFT JOIN sessions s ON s.token_hash = req.token_hash \
             LEFT JOIN persons p ON p.id = s.person_id",
            super::values_placeholders(self.backend(), queries.len(), 4)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (i, query) in queries.iter().enumerate() {
            q = q.bind(i as i64).bind(&query.token_hash).bind(&query.institution).bind(&query.name);
        }
        let rows = q.fetch_all(self.pool()).await?;
        let mut found: Vec<Option<SessionUse>> = vec![None; queries.len()];
        let mut to_end = Vec::new();
        let mut to_touch: Vec<(i64, &[u8])> = Vec::new();
        for r in rows {
            let i = usize::try_from(r.try_get::<i64, _>("i")?)
                .ok()
                .filter(|i| *i < queries.len())
                .ok_or_else(|| StoreError::Invalid("the session lookup answered an unknown request".into()))?;
            let query = &queries[i];
            let answer = session_use_of(&r, query.now, idle)?;
            match &answer {
                Looked::Ends(_, reason) => to_end.push((i, *reason)),
                Looked::Touch(..) => to_touch.push((query.now, &query.token_hash)),
                Looked::Done(_) => {}
            }
            found[i] = Some(answer.into_use(query.now));
        }
        for (i, reason) in to_end {
            self.end_session(&queries[i].token_hash, queries[i].now, reason).await?;
        }
        self.touch_sessions(&mut to_touch).await?;
        found
            .into_iter()
            .map(|f| f.ok_or_else(|| StoreError::Invalid("the session lookup missed a request".into())))
            .collect()
    }

    /// Moves the last use of these sessions forward (never back: concurrent
    /// requests must not rewind it), one statement per distinct `now`.
    async fn touch_sessions(&self, due: &mut [(i64, &[u8])]) -> Result<(), StoreError> {
        due.sort_unstable();
        for same_now in due.chunk_by(|a, b| a.0 == b.0) {
            let now = same_now[0].0;
            let p = super::placeholders(self.backend(), 1, same_now.len() + 2);
            let sql = format!(
                "UPDATE sessions SET last_seen = {} WHERE last_seen < {} AND token_hash IN ({})",
                p[0],
                p[1],
                p[2..].join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).bind(now);
            for (_, token_hash) in same_now {
                q = q.bind(*token_hash);
            }
            q.execute(self.pool()).await?;
        }
        Ok(())
    }

    /// A logout: ends the session with its audit entry staged
    /// (`audit::outbox`); `false` if it was unknown or already ended.
    pub async fn log_out(
        &self,
        token_hash: &[u8],
        now: i64,
        staged: &crate::audit::outbox::Staged,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE sessions SET ended_at = $1, end_reason = 'logout' WHERE token_hash = $2 AND ended_at IS NULL",
        )
        .bind(now)
        .bind(token_hash)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        self.stage_in(&mut tx, crate::audit::outbox::Area::Identity, staged).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Ends a session; `false` if it was unknown or already ended.
    pub async fn end_session(&self, token_hash: &[u8], now: i64, reason: &str) -> Result<bool, StoreError> {
        self.end_session_staged(token_hash, now, reason, None).await
    }

    /// [`Store::end_session`], `staged` with it (`audit::outbox`).
    pub async fn end_session_staged(
        &self,
        token_hash: &[u8],
        now: i64,
        reason: &str,
        staged: Option<&crate::audit::outbox::Staged>,
    ) -> Result<bool, StoreError> {
        let q = sqlx::query(
            "UPDATE sessions SET ended_at = $1, end_reason = $2 WHERE token_hash = $3 AND ended_at IS NULL",
        )
        .bind(now)
        .bind(reason)
        .bind(token_hash);
        Ok(self.execute_staging(q, crate::audit::outbox::Area::Identity, staged).await? == 1)
    }
}

/// What one row of the session lookup says, before the store acts on it.
enum Looked {
    /// Nothing to write.
    Done(SessionUse),
    /// Usable, and its last use is due to move to `now`.
    Touch(SessionRow, Option<PersonRow>),
    /// Past its idle timeout or maximum length: to be ended with this reason.
    Ends(SessionEnd, &'static str),
}

impl Looked {
    fn into_use(self, now: i64) -> SessionUse {
        match self {
            Looked::Done(u) => u,
            Looked::Touch(s, p) => SessionUse::Usable(SessionRow { last_seen: now, ..s }, p),
            Looked::Ends(end, _) => SessionUse::Unusable(end),
        }
    }
}

fn session_use_of(r: &sqlx::any::AnyRow, now: i64, idle: i64) -> Result<Looked, StoreError> {
    if r.try_get::<Option<i64>, _>("t_suspended")?.unwrap_or(0) != 0 {
        return Ok(Looked::Done(SessionUse::TerminalSuspended));
    }
    let Some(person_id) = r.try_get::<Option<String>, _>("person_id")? else {
        return Ok(Looked::Done(SessionUse::Unusable(SessionEnd::Unknown)));
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
        return Ok(Looked::Done(SessionUse::Unusable(SessionEnd::Ended)));
    }
    let s = SessionRow {
        person_id,
        terminal: r.try_get("terminal")?,
        created_at: r.try_get("created_at")?,
        last_seen: r.try_get("last_seen")?,
        expires_at: r.try_get("expires_at")?,
    };
    if now >= s.expires_at {
        return Ok(Looked::Ends(SessionEnd::Expired, "expired"));
    }
    if now - s.last_seen >= idle {
        return Ok(Looked::Ends(SessionEnd::IdleTimeout, "idle_timeout"));
    }
    // A write per request would make every request a database write;
    // `last_seen` moves only when it is TOUCH_EVERY old, so a session may
    // end up to that much early, never late.
    if now - s.last_seen < TOUCH_EVERY {
        return Ok(Looked::Done(SessionUse::Usable(s, person)));
    }
    Ok(Looked::Touch(s, person))
}
