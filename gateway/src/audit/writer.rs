//! Group commit for the audit log: requests hand their entries to one
//! writer task, which chains and commits everything pending in one
//! transaction, then answers each request. A request is still answered only
//! after its entry is durable; the database sees one commit (one fsync) per
//! batch instead of one per request.

use crate::audit::{AuditEvent, AuditRecord};
use crate::metrics::BatchMetrics;
use crate::store::Store;
use crate::store::batch::Batcher;

/// Most entries in one commit.
const MAX_BATCH: usize = 512;

/// The request ids whose health outbox rows an appended batch owes a
/// DELETE on SQLite (`audit::outbox`); the identity outbox's rows went
/// with the entries' INSERT (a trigger), and on PostgreSQL the health
/// outbox's rows too.
fn staged_in_health(events: &[(AuditEvent, i64)]) -> Vec<String> {
    events
        .iter()
        .filter(|(e, _)| crate::audit::outbox::stages_in_health(&e.action))
        .map(|(e, _)| e.request_id.clone())
        .collect()
}

/// Deletes health outbox rows whose entries are in the chain, off the
/// requests' path: a request is answered once its entry is committed, not
/// after the clean-up's own commit (that was a second commit, and on SQLite
/// a wait for the writer's lock, in every confirm). Whatever is waiting
/// goes in one DELETE. A failure leaves rows whose entries are in the
/// chain: the next start finds the entries and only deletes the rows.
fn start_cleaner(store: Store) -> tokio::sync::mpsc::UnboundedSender<Vec<String>> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<String>>();
    tokio::spawn(async move {
        while let Some(mut ids) = rx.recv().await {
            while let Ok(more) = rx.try_recv() {
                ids.extend(more);
            }
            let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            if let Err(e) = store.clear_health_outbox(&refs).await {
                tracing::warn!(error = %e, "cannot clear the audit outbox; the next start will");
            }
        }
    });
    tx
}

#[derive(Clone)]
pub struct AuditWriter {
    batches: Batcher<(AuditEvent, i64), AuditRecord>,
}

impl AuditWriter {
    /// Starts the writer task (needs a Tokio runtime).
    pub fn start(store: Store, metrics: BatchMetrics) -> AuditWriter {
        let cleaner = start_cleaner(store.clone());
        let batches = Batcher::start("the audit writer", MAX_BATCH, metrics, move |events: Vec<(AuditEvent, i64)>| {
            let (store, cleaner) = (store.clone(), cleaner.clone());
            async move {
                let done = store.append_audit_batch(&events).await.map_err(|e| format!("audit append failed: {e}"))?;
                // PostgreSQL: the INSERT cleared both outboxes (0016).
                if store.backend() == crate::store::Backend::Postgres {
                    return Ok(done);
                }
                let ids = staged_in_health(&events);
                if !ids.is_empty() && cleaner.send(ids).is_err() {
                    tracing::warn!("the audit outbox cleaner has stopped; the next start clears the rows");
                }
                Ok(done)
            }
        });
        AuditWriter { batches }
    }

    /// Appends `event` at `at` (Unix ms); returns once it is committed.
    pub async fn append(&self, event: AuditEvent, at: i64) -> Result<AuditRecord, String> {
        self.batches.submit((event, at)).await
    }
}
