//! Session lookups for requests, grouped: concurrent requests are looked up
//! in one query (see `Store::use_sessions`), so the per-request cost of a
//! busy gateway is a share of a round trip, not a whole one. Each answer is
//! read from the store at the time of its batch — no cache — so a logout,
//! a deactivation or a terminal suspension by another gateway or by the
//! admin CLI counts from the next batch on.

use crate::metrics::BatchMetrics;
use crate::store::batch::Batcher;
use crate::store::{SessionQuery, SessionUse, Store};

/// Most lookups in one batch.
const MAX_BATCH: usize = 256;

#[derive(Clone)]
pub struct SessionReader {
    batches: Batcher<SessionQuery, SessionUse>,
}

impl SessionReader {
    /// Starts the lookup task (needs a Tokio runtime); `idle` is the idle
    /// timeout in seconds.
    pub fn start(store: Store, idle: i64, metrics: BatchMetrics) -> SessionReader {
        let batches = Batcher::start("the session reader", MAX_BATCH, metrics, move |queries: Vec<SessionQuery>| {
            let store = store.clone();
            async move { store.use_sessions(&queries, idle).await.map_err(|e| format!("session lookup failed: {e}")) }
        });
        SessionReader { batches }
    }

    pub async fn use_session(&self, query: SessionQuery) -> Result<SessionUse, String> {
        self.batches.submit(query).await
    }
}
