//! The writes of a login, grouped: new challenges, and sessions opened by
//! taking a challenge. Concurrent logins share one transaction (one commit,
//! one fsync on SQLite) of at most three statements, however many logins it
//! carries: the new challenges in one INSERT, the challenges taken in one
//! UPDATE … RETURNING, the sessions of the challenges won in one INSERT. A
//! challenge is taken at most once: of two logins racing for it — in one
//! batch, in two, or in two gateway processes — exactly one opens a
//! session. Each session's login stages its audit entry in the same
//! transaction (`audit::outbox`), one more multi-row INSERT. On SQLite the
//! batch is one job of the writer lane (`sqlite_lane`), committed with
//! whatever else the lane holds: one hand-off to another thread for the
//! batch instead of one per statement.

use sqlx::Row;

use crate::audit::outbox::Area;
use crate::metrics::BatchMetrics;
use crate::store::batch::Batcher;
use crate::store::statement::Statement;
use crate::store::{Backend, Store, StoreError, outbox, placeholders, values_placeholders};

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
            async move { store.login_writes(writes).await.map_err(|e| format!("login write failed: {e}")) }
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
    pub async fn login_writes(&self, writes: Vec<LoginWrite>) -> Result<Vec<bool>, StoreError> {
        match self.lanes() {
            // The whole transaction in one trip to the writer lane.
            Some(lanes) => {
                lanes.writer.run(move |c| sqlite_login_writes(c, &writes).map(|won| answers(&writes, won))).await
            }
            None => Ok(answers(&writes, self.sqlx_login_writes(&writes).await?)),
        }
    }

    async fn sqlx_login_writes(&self, writes: &[LoginWrite]) -> Result<Vec<bool>, StoreError> {
        let plan = Plan::of(self.backend(), writes);
        let mut tx = self.pool().begin().await?;
        if let Some(st) = &plan.challenges {
            st.sqlx().execute(&mut *tx).await?;
        }
        let mut won = Vec::new();
        if let Some(st) = &plan.take {
            let rows = st.sqlx().fetch_all(&mut *tx).await?;
            let taken = rows.iter().map(|r| r.try_get("id")).collect::<Result<_, _>>()?;
            won = winners(&plan.sessions, taken);
            let opened = opened(&plan.sessions, &won);
            if !opened.is_empty() {
                session_insert(self.backend(), &opened).sqlx().execute(&mut *tx).await?;
                outbox::stage(self.backend(), Area::Identity, &staged_of(&opened)).sqlx().execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        Ok(won)
    }
}

/// The batch's writes on the SQLite writer lane: the winners among its
/// sessions, in order. Atomic: the lane runs a job in a savepoint of its
/// transaction.
fn sqlite_login_writes(tx: &rusqlite::Connection, writes: &[LoginWrite]) -> Result<Vec<bool>, StoreError> {
    let plan = Plan::of(Backend::Sqlite, writes);
    if let Some(st) = &plan.challenges {
        st.execute(tx)?;
    }
    let mut won = Vec::new();
    if let Some(st) = &plan.take {
        let taken = tx
            .prepare_cached(&st.sql)?
            .query_map(rusqlite::params_from_iter(&st.params), |r| r.get::<_, String>(0))?
            .collect::<Result<_, _>>()?;
        won = winners(&plan.sessions, taken);
        let opened = opened(&plan.sessions, &won);
        if !opened.is_empty() {
            session_insert(Backend::Sqlite, &opened).execute(tx)?;
            outbox::stage(Backend::Sqlite, Area::Identity, &staged_of(&opened)).execute(tx)?;
        }
    }
    Ok(won)
}

/// What a batch writes, decided before any statement runs: the new
/// challenges in one INSERT, and the challenges the sessions take in one
/// UPDATE … RETURNING.
struct Plan<'a> {
    challenges: Option<Statement<'a>>,
    sessions: Vec<&'a OpenSession>,
    take: Option<Statement<'a>>,
}

impl<'a> Plan<'a> {
    fn of(backend: Backend, writes: &'a [LoginWrite]) -> Plan<'a> {
        let challenges: Vec<_> = writes
            .iter()
            .filter_map(|w| match w {
                LoginWrite::Challenge { id, nonce, terminal, now, expires_at } => {
                    Some((id, nonce, terminal, *now, *expires_at))
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
        let challenges = (!challenges.is_empty()).then(|| {
            let mut st = Statement::new(format!(
                "INSERT INTO challenges (id, nonce, terminal, created_at, expires_at) VALUES {}",
                values_placeholders(backend, challenges.len(), 5)
            ));
            for (id, nonce, terminal, now, expires_at) in &challenges {
                st.push(*id);
                st.push(*nonce);
                st.push(*terminal);
                st.push(*now);
                st.push(*expires_at);
            }
            st
        });
        let take = (!sessions.is_empty()).then(|| {
            // One `now` for the batch's UPDATE: the latest of its logins
            // (they arrived within the batch's wait).
            let now = sessions.iter().map(|s| s.now).max().unwrap_or_default();
            let p = placeholders(backend, 1, sessions.len() + 1);
            let mut st = Statement::new(format!(
                "UPDATE challenges SET used_at = {} WHERE used_at IS NULL AND id IN ({}) RETURNING id",
                p[0],
                p[1..].join(", ")
            ))
            .bind(now);
            for s in &sessions {
                st.push(&s.challenge_id);
            }
            st
        });
        Plan { challenges, sessions, take }
    }
}

/// Which sessions won their challenge: the first of the batch with a
/// challenge that was `taken` gets it; any other with the same one lost.
fn winners(sessions: &[&OpenSession], mut taken: Vec<String>) -> Vec<bool> {
    sessions
        .iter()
        .map(|s| match taken.iter().position(|id| *id == s.challenge_id) {
            Some(k) => {
                taken.swap_remove(k);
                true
            }
            None => false,
        })
        .collect()
}

fn opened<'a>(sessions: &[&'a OpenSession], won: &[bool]) -> Vec<&'a OpenSession> {
    sessions.iter().zip(won).filter(|(_, w)| **w).map(|(s, _)| *s).collect()
}

fn staged_of<'a>(opened: &[&'a OpenSession]) -> Vec<&'a crate::audit::outbox::Staged> {
    opened.iter().map(|s| &s.staged).collect()
}

fn session_insert<'a>(backend: Backend, opened: &[&'a OpenSession]) -> Statement<'a> {
    let mut st = Statement::new(format!(
        "INSERT INTO sessions (token_hash, person_id, terminal, card_cert, card_cert_der, revocation, created_at, last_seen, expires_at) \
         VALUES {}",
        values_placeholders(backend, opened.len(), 9)
    ));
    for s in opened {
        st.push(s.token_hash.as_slice());
        st.push(&s.person_id);
        st.push(&s.terminal);
        st.push(s.card_cert.as_slice());
        st.push(&s.card_cert_der);
        st.push(&s.revocation);
        st.push(s.now);
        st.push(s.now);
        st.push(s.expires_at);
    }
    st
}

/// One answer per write: `true` for a challenge, whether it won for a
/// session.
fn answers(writes: &[LoginWrite], won: Vec<bool>) -> Vec<bool> {
    let mut won = won.into_iter();
    writes
        .iter()
        .map(|w| match w {
            LoginWrite::Challenge { .. } => true,
            LoginWrite::Session(_) => won.next().unwrap_or(false),
        })
        .collect()
}
