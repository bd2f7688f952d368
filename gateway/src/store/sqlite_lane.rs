//! A SQLite connection on a thread of its own, for the work every request
//! and every login pays for (the audit append, the login's writes, the
//! admission snapshot).
//!
//! sqlx also runs each SQLite connection on a thread, but hands it one
//! statement at a time: a transaction of five statements is five trips
//! there and back, each a wake-up of another thread (issue 17's profile:
//! a third of a login's gateway CPU was context switches). Here a whole
//! unit of work — a transaction, a read and what depends on it — is one
//! closure run on the lane's thread: one trip, whatever it holds, with the
//! rows read straight into the gateway's types.
//!
//! The connection is set up as the pool's are (WAL, `synchronous = FULL`,
//! foreign keys, busy timeout, `health` attached), so what it commits is as
//! durable as what sqlx commits. Writes on the writer lane start with
//! `BEGIN IMMEDIATE`: the write lock is taken (or waited for) up front,
//! never found taken half-way through.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use super::StoreError;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

pub(crate) struct Lane {
    /// `None` only while dropping.
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    name: &'static str,
}

impl Drop for Lane {
    /// Waits for the thread to finish its queue and close the connection:
    /// once a store is closed its files are whole without the lanes (a WAL
    /// checkpointed by the last connection to close).
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Lane {
    /// Opens `identity` (with `health` attached) on a new thread named after
    /// `name`; the thread ends when the lane is dropped.
    pub fn open(name: &'static str, identity: &Path, health: &Path) -> Result<Lane, StoreError> {
        let mut conn = Connection::open_with_flags(
            identity,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
        conn.execute("ATTACH DATABASE ?1 AS health", [health.to_string_lossy()])?;
        conn.execute_batch("PRAGMA health.journal_mode = WAL; PRAGMA health.synchronous = FULL;")?;
        conn.set_prepared_statement_cache_capacity(64);
        let (jobs, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name(format!("sqlite-{name}"))
            .spawn(move || {
                for job in rx {
                    job(&mut conn);
                }
            })
            .map_err(|e| StoreError::Invalid(format!("cannot start the SQLite {name} thread: {e}")))?;
        Ok(Lane { jobs: Some(jobs), thread: Some(thread), name })
    }

    /// Runs `work` on the lane's connection and returns what it returned.
    /// A panic in `work` fails this call only (the lane goes on; a
    /// transaction it left open is rolled back when its guard drops).
    pub async fn run<R, F>(&self, work: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let (answer, wait) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(conn)));
            let _ = answer.send(done);
        });
        let stopped = || StoreError::Invalid(format!("the SQLite {} lane has stopped", self.name));
        self.jobs.as_ref().ok_or_else(stopped)?.send(job).map_err(|_| stopped())?;
        match wait.await.map_err(|_| stopped())? {
            Ok(done) => done,
            Err(_) => Err(StoreError::Invalid(format!("a job on the SQLite {} lane panicked", self.name))),
        }
    }
}

/// The two lanes of a SQLite store: one writer (SQLite has one writer at a
/// time anyway; one connection for the hot writes means they queue here
/// instead of polling for the lock) and one reader (WAL readers do not wait
/// for the writer).
pub(crate) struct Lanes {
    pub writer: Lane,
    pub reader: Lane,
}

impl Lanes {
    pub fn open(dir: &Path) -> Result<Lanes, StoreError> {
        let (identity, health) = (dir.join("identity.db"), dir.join("health.db"));
        Ok(Lanes {
            writer: Lane::open("writer", &identity, &health)?,
            reader: Lane::open("reader", &identity, &health)?,
        })
    }
}

/// Maps a unique-constraint violation to `Conflict(what)`.
pub(crate) fn conflict(e: rusqlite::Error, what: impl Into<String>) -> StoreError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation)
            if matches!(
                e.sqlite_error().map(|f| f.extended_code),
                Some(rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY | rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
            ) =>
        {
            StoreError::Conflict(what.into())
        }
        _ => StoreError::Sqlite(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_runs_on_the_lane_and_a_panic_fails_only_its_call() {
        let dir = tempfile::tempdir().expect("tempdir");
        for db in ["identity.db", "health.db"] {
            Connection::open(dir.path().join(db)).expect("create");
        }
        let lanes = Lanes::open(dir.path()).expect("lanes");
        let name =
            lanes.writer.run(|_| Ok(std::thread::current().name().unwrap_or_default().to_owned())).await.expect("run");
        assert_eq!(name, "sqlite-writer");
        let mode: String =
            lanes.reader.run(|c| Ok(c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?)).await.expect("pragma");
        assert_eq!(mode, "wal");
        let panicked = lanes.writer.run::<(), _>(|_| panic!("boom")).await;
        assert!(matches!(panicked, Err(StoreError::Invalid(m)) if m.contains("panicked")));
        let after: i64 =
            lanes.writer.run(|c| Ok(c.query_row("SELECT 41 + 1", [], |r| r.get(0))?)).await.expect("after");
        assert_eq!(after, 42);
    }
}
