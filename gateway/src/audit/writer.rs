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

/// Deletes the health outbox's rows of the requests whose entries were
/// just committed (`audit::outbox`); the identity outbox's rows went with
/// the entries' INSERT (a trigger). A failure leaves rows whose entries are
/// in the chain: the next start finds the entries and only deletes the rows.
async fn clear_staged(store: &Store, events: &[(AuditEvent, i64)]) {
    let ids: Vec<&str> = events
        .iter()
        .filter(|(e, _)| crate::audit::outbox::stages_in_health(&e.action))
        .map(|(e, _)| e.request_id.as_str())
        .collect();
    if ids.is_empty() {
        return;
    }
    if let Err(e) = store.clear_health_outbox(&ids).await {
        tracing::warn!(error = %e, "cannot clear the audit outbox; the next start will");
    }
}

#[derive(Clone)]
pub struct AuditWriter {
    batches: Batcher<(AuditEvent, i64), AuditRecord>,
}

impl AuditWriter {
    /// Starts the writer task (needs a Tokio runtime).
    pub fn start(store: Store, metrics: BatchMetrics) -> AuditWriter {
        let batches = Batcher::start("the audit writer", MAX_BATCH, metrics, move |events: Vec<(AuditEvent, i64)>| {
            let store = store.clone();
            async move {
                let done = store.append_audit_batch(&events).await.map_err(|e| format!("audit append failed: {e}"))?;
                clear_staged(&store, &events).await;
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
