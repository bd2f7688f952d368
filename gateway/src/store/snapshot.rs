//! What admission to a request depends on, read once per batch of requests:
//! the store's generation (a counter triggers move on every change to
//! terminals' suspension, persons or sessions' ends — migration 0005/0006)
//! and, when it moved, the suspended terminals and the operating mode
//! (FLOW-7). Each request gets a
//! [`Snapshot`] read after it arrived, so a suspension committed before the
//! request — by any gateway process or the admin CLI — is seen by it; while
//! the generation stays put the suspended set is not read again, and the
//! session cache (`session_reader`) keeps what it looked up.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use sqlx::Row;

use crate::metrics::BatchMetrics;
use crate::store::batch::Batcher;
use crate::store::{Store, StoreError};

/// Most requests one read serves.
const MAX_BATCH: usize = 1024;

/// The store as of one read.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub generation: i64,
    suspended: Arc<HashSet<(String, String)>>,
    pub mode: Arc<crate::store::ModeRow>,
}

impl Snapshot {
    pub fn terminal_suspended(&self, institution: &str, name: &str) -> bool {
        // A lookup by borrowed pair without building two Strings: the set is
        // small (suspended terminals only), so a scan is as cheap.
        self.suspended.iter().any(|(i, n)| i == institution && n == name)
    }
}

#[derive(Clone)]
pub struct SnapshotReader {
    batches: Batcher<(), Snapshot>,
}

impl SnapshotReader {
    /// Starts the reading task (needs a Tokio runtime).
    pub fn start(store: Store, metrics: BatchMetrics) -> SnapshotReader {
        let last: Arc<Mutex<Option<Snapshot>>> = Arc::new(Mutex::new(None));
        let batches = Batcher::start("the admission reader", MAX_BATCH, metrics, move |jobs: Vec<()>| {
            let store = store.clone();
            let last = last.clone();
            async move {
                let s = read(&store, &last).await.map_err(|e| format!("reading the store's generation failed: {e}"))?;
                Ok(vec![s; jobs.len()])
            }
        });
        SnapshotReader { batches }
    }

    /// A snapshot read after this call began.
    pub async fn snapshot(&self) -> Result<Snapshot, String> {
        self.batches.submit(()).await
    }
}

async fn read(store: &Store, last: &Mutex<Option<Snapshot>>) -> Result<Snapshot, StoreError> {
    // The generation first, the data after: data newer than its generation
    // only makes the next change look bigger; never the other way round.
    let generation = store.generation().await?;
    let cached = last.lock().unwrap_or_else(PoisonError::into_inner).clone();
    if let Some(s) = cached.filter(|s| s.generation == generation) {
        return Ok(s);
    }
    let s = Snapshot {
        generation,
        suspended: Arc::new(store.suspended_terminals().await?),
        mode: Arc::new(store.operating_mode().await?),
    };
    *last.lock().unwrap_or_else(PoisonError::into_inner) = Some(s.clone());
    Ok(s)
}

impl Store {
    /// The store's generation (see the module documentation).
    pub async fn generation(&self) -> Result<i64, StoreError> {
        const GENERATION: &str = "SELECT n FROM store_generation WHERE id = 1";
        if let Some(lanes) = self.lanes() {
            return lanes.read(|c| Ok(c.prepare_cached(GENERATION)?.query_row([], |r| r.get(0))?)).await;
        }
        let row = sqlx::query(GENERATION).fetch_one(self.pool()).await?;
        Ok(row.try_get("n")?)
    }

    /// (institution, name) of every suspended terminal.
    pub async fn suspended_terminals(&self) -> Result<HashSet<(String, String)>, StoreError> {
        let rows = sqlx::query("SELECT institution, name FROM terminal_status WHERE suspended <> 0")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(|r| Ok((r.try_get("institution")?, r.try_get("name")?))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreConfig;

    async fn store(dir: &tempfile::TempDir) -> Store {
        Store::open(&StoreConfig::Sqlite { dir: dir.path().into() }).await.expect("store")
    }

    #[tokio::test]
    async fn every_change_that_admission_depends_on_moves_the_generation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = store(&dir).await;
        let g0 = s.generation().await.expect("generation");
        s.set_terminal_suspended("Clinic", "t1", true, "test", 1).await.expect("suspend");
        let g1 = s.generation().await.expect("generation");
        assert!(g1 > g0, "suspending did not move the generation");
        s.set_terminal_suspended("Clinic", "t1", false, "test", 2).await.expect("lift");
        assert!(s.generation().await.expect("generation") > g1, "lifting did not move the generation");
    }

    #[tokio::test]
    async fn a_snapshot_sees_a_suspension_committed_before_it_was_asked_for() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = store(&dir).await;
        let reader = SnapshotReader::start(s.clone(), BatchMetrics::new());
        let before = reader.snapshot().await.expect("snapshot");
        assert!(!before.terminal_suspended("Clinic", "t1"));
        // Another writer (here the same store; in production another gateway
        // or the admin CLI) suspends the terminal.
        s.set_terminal_suspended("Clinic", "t1", true, "test", 1).await.expect("suspend");
        let after = reader.snapshot().await.expect("snapshot");
        assert!(after.terminal_suspended("Clinic", "t1"));
        assert!(!after.terminal_suspended("Clinic", "t2"));
        assert!(after.generation > before.generation);
    }

    #[tokio::test]
    async fn a_snapshot_sees_a_mode_change_committed_before_it_was_asked_for() {
        use hpki_protocol::emergency::OperatingMode;
        let dir = tempfile::tempdir().expect("tempdir");
        let s = store(&dir).await;
        let reader = SnapshotReader::start(s.clone(), BatchMetrics::new());
        assert_eq!(reader.snapshot().await.expect("snapshot").mode.mode, OperatingMode::Normal);
        let row = crate::store::ModeRow {
            mode: OperatingMode::ReadOnly,
            reason: "drill".into(),
            changed_by: "admin:test".into(),
            changed_at: 5,
        };
        s.set_operating_mode(&row, None).await.expect("set mode");
        let after = reader.snapshot().await.expect("snapshot");
        assert_eq!(*after.mode, row);
    }
}
