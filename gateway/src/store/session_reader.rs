//! Session lookups for requests: from the session cache when the store's
//! generation has not moved since the session was looked up (`snapshot`),
//! else grouped with concurrent lookups into one query (see
//! `Store::use_sessions`), so a busy gateway pays a share of a round trip
//! per miss, not a whole one.
//!
//! A cached answer is the one the store would give: the generation moves
//! with every logout, session end, person change and suspension, so while
//! it stays put only the clock can change a session's fate, and the clock
//! is checked here as the store checks it — a session at its maximum
//! length, at its idle timeout, or whose last use is due to move
//! (`TOUCH_EVERY`) goes to the store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::metrics::BatchMetrics;
use crate::store::batch::Batcher;
use crate::store::login::TOUCH_EVERY;
use crate::store::snapshot::Snapshot;
use crate::store::{PersonRow, SessionQuery, SessionRow, SessionUse, Store};

/// Most lookups in one batch.
const MAX_BATCH: usize = 256;
/// Most sessions cached; past it the cache starts over.
const MAX_CACHED: usize = 65_536;

#[derive(Clone)]
pub struct SessionReader {
    batches: Batcher<SessionQuery, SessionUse>,
    cache: Arc<Mutex<Cache>>,
    idle: i64,
}

#[derive(Default)]
struct Cache {
    generation: i64,
    sessions: HashMap<Vec<u8>, (SessionRow, PersonRow)>,
}

impl SessionReader {
    /// Starts the lookup task (needs a Tokio runtime); `idle` is the idle
    /// timeout in seconds.
    pub fn start(store: Store, idle: i64, metrics: BatchMetrics) -> SessionReader {
        let batches = Batcher::start("the session reader", MAX_BATCH, metrics, move |queries: Vec<SessionQuery>| {
            let store = store.clone();
            async move { store.use_sessions(&queries, idle).await.map_err(|e| format!("session lookup failed: {e}")) }
        });
        SessionReader { batches, cache: Arc::new(Mutex::new(Cache::default())), idle }
    }

    /// The session of `query` as of `snapshot` (read after the request
    /// arrived) or later.
    pub async fn use_session(&self, snapshot: &Snapshot, query: SessionQuery) -> Result<SessionUse, String> {
        if let Some(hit) = self.cached(snapshot.generation, &query) {
            return Ok(hit);
        }
        let token_hash = query.token_hash.clone();
        let found = self.batches.submit(query).await?;
        if let SessionUse::Usable(s, Some(p)) = &found
            && p.active
        {
            let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            // Only under the generation read before the lookup: a change
            // between the two makes the entry look older than it is, never
            // newer.
            if cache.generation == snapshot.generation {
                if cache.sessions.len() >= MAX_CACHED {
                    cache.sessions.clear();
                }
                cache.sessions.insert(token_hash, (s.clone(), p.clone()));
            }
        }
        Ok(found)
    }

    fn cached(&self, generation: i64, q: &SessionQuery) -> Option<SessionUse> {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.generation != generation {
            if generation > cache.generation {
                cache.generation = generation;
                cache.sessions.clear();
            }
            return None;
        }
        let (s, p) = cache.sessions.get(&q.token_hash)?;
        let fresh = q.now < s.expires_at && q.now - s.last_seen < self.idle.min(TOUCH_EVERY);
        fresh.then(|| SessionUse::Usable(s.clone(), Some(p.clone())))
    }
}
