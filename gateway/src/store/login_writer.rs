//! The writes of a login, grouped: new challenges, and sessions opened by
//! taking a challenge. Concurrent logins share one transaction (one commit,
//! one fsync on SQLite) of at most three statements, however many logins it
//! carries: the new challenges in one INSERT, the challenges taken in one
//! UPDATE … RETURNING, the sessions of the challenges won in one INSERT. A
//! challenge is taken at most once: of two logins racing for it — in one
//! batch, in two, or in two gateway processes — exactly one opens a
//! session. Each session's login stages its audit entry in the same
//! transaction (`audit::outbox`), one more multi-row INSERT.

use sqlx::Row;

use crate::metrics::BatchMetrics;
use crate::store::batch::Batcher;
use crate::store::{Store, StoreError, placeholders, values_placeholders};

/// Most writes in one transaction (the statements' parameters stay well
/// under SQLite's limit of 32766).
const MAX_BATCH: usize = 256;

/// One write of a login.
#[derive(Debug, Clone)]
pub enum LoginWrite {
    /// A challenge handed to a terminal.
    Challenge { id: String, nonce: Vec<u8>, terminal: String, now: i64, expires_at: i64 },
    /// Takes the challenge and opens the session: `Ok(false)` when the
    /// challenge was taken already (nothing written).
    Session(Box<OpenSession>),
}

#[derive(Debug, Clone)]
pub struct OpenSession {
    pub challenge_id: String,
    /// SHA-256 of the bearer token.
    pub token_hash: [u8; 32],
    pub person_id: String,
    pub terminal: String,
    /// SHA-256 of the card's authentication certificate.
    pub card_cert: [u8; 32],
    /// The certificate itself (DER): a later CRL may revoke it.
    pub card_cert_der: Vec<u8>,
    /// The CRLs of the login's validation (JSON list of evidence).
    pub revocation: String,
    pub now: i64,
    pub expires_at: i64,
    /// The login's audit entry, staged with the session (`audit::outbox`).
    pub staged: crate::audit::outbox::Staged,
}

#[derive(Clone)]
pub struct LoginWriter {
    batches: Batcher<LoginWrite, bool>,
}

impl LoginWriter {
    /// Starts the writer task (needs a Tokio runtime).
    pub fn start(store: Store, metrics: BatchMetrics) -> LoginWriter {
        let batches = Batcher::start("the login writer", MAX_BATCH, metrics, move |writes: Vec<LoginWrite>| {
            let store = store.clone();
            async move { store.login_writes(&writes).await.map_err(|e| format!("login write failed: {e}")) }
        });
        LoginWriter { batches }
    }

    /// Writes `w` in the next batch; `true` when done, `false` for a
    /// session whose challenge was taken already.
    pub async fn write(&self, w: LoginWrite) -> Result<bool, String> {
        self.batches.submit(w).await
    }
}

impl Store {
    /// The writes of one batch, in one transaction; one answer per write.
    pub async fn login_writes(&self, writes: &[LoginWrite]) -> Result<Vec<bool>, StoreError> {
        let challenges: Vec<_> = writes
            .iter()
            .filter_map(|w| match w {
                LoginWrite::Challenge { id, nonce, terminal, now, expires_at } => {
                    Some((id, nonce, terminal, now, expires_at))
                }
                LoginWrite::Session(_) => None,
            })
            .collect();
        let sessions: Vec<&OpenSession> = writes
            .iter()
            .filter_map(|w| match w {
                LoginWrite::Session(s) => Some(&**s),
                LoginWrite::Challenge { .. } => None,
            })
            .collect();
        let mut tx = self.pool().begin().await?;
        if !challenges.is_empty() {
            let sql = format!(
                "INSERT INTO challenges (id, nonce, terminal, created_at, expires_at) VALUES {}",
                values_placeholders(self.backend(), challenges.len(), 5)
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (id, nonce, terminal, now, expires_at) in &challenges {
                q = q.bind(id.as_str()).bind(nonce.as_slice()).bind(terminal.as_str()).bind(**now).bind(**expires_at);
            }
            q.execute(&mut *tx).await?;
        }
        let mut won: Vec<bool> = vec![false; sessions.len()];
        if !sessions.is_empty() {
            // One `now` for the batch's UPDATE: the latest of its logins
            // (they arrived within the batch's wait).
            let now = sessions.iter().map(|s| s.now).max().unwrap_or_default();
            let p = placeholders(self.backend(), 1, sessions.len() + 1);
            let sql = format!(
                "UPDATE challenges SET used_at = {} WHERE used_at IS NULL AND id IN ({}) RETURNING id",
                p[0],
                p[1..].join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now);
            for s in &sessions {
                q = q.bind(s.challenge_id.as_str());
            }
            let mut taken: Vec<String> =
                q.fetch_all(&mut *tx).await?.iter().map(|r| r.try_get("id")).collect::<Result<_, _>>()?;
            // The first login of the batch with a challenge gets it; any
            // other with the same one lost.
            for (i, s) in sessions.iter().enumerate() {
                if let Some(k) = taken.iter().position(|id| *id == s.challenge_id) {
                    taken.swap_remove(k);
                    won[i] = true;
                }
            }
            let opened: Vec<&&OpenSession> = sessions.iter().zip(&won).filter(|(_, w)| **w).map(|(s, _)| s).collect();
            if !opened.is_empty() {
                let sql = format!(
                    "INSERT INTO sessions (token_hash, person_id, terminal, card_cert, card_cert_der, revocation, created_at, last_seen, expires_at) \
                     VALUES {}",
                    values_placeholders(self.backend(), opened.len(), 9)
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for s in &opened {
                    q = q
                        .bind(s.token_hash.as_slice())
                        .bind(s.person_id.as_str())
                        .bind(s.terminal.as_str())
                        .bind(s.card_cert.as_slice())
                        .bind(s.card_cert_der.as_slice())
                        .bind(s.revocation.as_str())
                        .bind(s.now)
                        .bind(s.now)
                        .bind(s.expires_at);
                }
                q.execute(&mut *tx).await?;
                let staged: Vec<_> = opened.iter().map(|s| &s.staged).collect();
                super::outbox::stage(self.backend(), crate::audit::outbox::Area::Identity, &staged)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        let mut won = won.into_iter();
        Ok(writes
            .iter()
            .map(|w| match w {
                LoginWrite::Challenge { .. } => true,
                LoginWrite::Session(_) => won.next().unwrap_or(false),
            })
            .collect())
    }
}
