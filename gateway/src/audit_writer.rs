//! Group commit for the audit log: requests hand their entries to one
//! writer task, which chains and commits everything pending in one
//! transaction, then answers each request. A request is still answered only
//! after its entry is durable; the database sees one commit (one fsync) per
//! batch instead of one per request.

use tokio::sync::{mpsc, oneshot};

use crate::audit::{AuditEvent, AuditRecord};
use crate::store::Store;

/// Most entries in one commit.
const MAX_BATCH: usize = 512;

type Job = (AuditEvent, i64, oneshot::Sender<Result<AuditRecord, String>>);

#[derive(Clone)]
pub struct AuditWriter {
    jobs: mpsc::Sender<Job>,
}

impl AuditWriter {
    /// Starts the writer task (needs a Tokio runtime).
    pub fn start(store: Store) -> AuditWriter {
        let (jobs, rx) = mpsc::channel(8192);
        tokio::spawn(run(store, rx));
        AuditWriter { jobs }
    }

    /// Appends `event` at `at` (Unix ms); returns once it is committed.
    pub async fn append(&self, event: AuditEvent, at: i64) -> Result<AuditRecord, String> {
        let (done, wait) = oneshot::channel();
        self.jobs.send((event, at, done)).await.map_err(|_| "the audit writer has stopped".to_string())?;
        wait.await.map_err(|_| "the audit writer has stopped".to_string())?
    }
}

async fn run(store: Store, mut rx: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let events: Vec<(AuditEvent, i64)> = batch.iter().map(|(e, at, _)| (e.clone(), *at)).collect();
        match store.append_audit_batch(&events).await {
            Ok(records) => {
                for ((_, _, done), record) in batch.drain(..).zip(records) {
                    let _ = done.send(Ok(record));
                }
            }
            Err(e) => {
                let msg = format!("audit append failed: {e}");
                for (_, _, done) in batch.drain(..) {
                    let _ = done.send(Err(msg.clone()));
                }
            }
        }
    }
}
