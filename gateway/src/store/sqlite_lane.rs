//! SQLite connections of the hot path's own: the work every request and
//! every login pays for (the audit append, the login's writes, the
//! admission snapshot, a login's challenge and person reads).
//!
//! sqlx also runs each SQLite connection on a thread, but hands it one
//! statement at a time: a transaction of five statements is five trips
//! there and back, each a wake-up of another thread (issue 17's profile:
//! a third of a login's gateway CPU was context switches). Here:
//! - the **writer** lane takes whole units of work (closures) and commits
//!   whatever is waiting in one transaction — `BEGIN IMMEDIATE`, each job
//!   in a savepoint, `COMMIT` — and answers the jobs only then: one trip
//!   and one fsync for an audit batch, a login batch and whatever else came
//!   meanwhile. A job that fails is undone alone; an error that ends the
//!   transaction fails every job of the group;
//! - short reads by key run on the caller's thread, on a connection that
//!   never waits for a lock; when it is in use or would wait, on the
//!   **reader** lane's thread.
//!
//! The connections are set up as the pool's are (WAL, `synchronous = FULL`,
//! foreign keys, busy timeout, `health` attached), so what they commit is
//! as durable as what sqlx commits, and rows are read straight into the
//! gateway's types.

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use super::StoreError;
use crate::metrics::BatchMetrics;

/// Most jobs the writer commits together.
const MAX_GROUP: usize = 64;

/// A unit of work and where its answer goes.
trait Job: Send {
    /// Runs the work; on the writer lane inside the group's transaction,
    /// in a savepoint of its own.
    fn work(&mut self, conn: &Connection, in_group: bool);
    /// Sends the answer: the work's own error, else `failed` (the group
    /// did not commit), else the work's result.
    fn answer(self: Box<Self>, failed: Option<&str>);
    /// When it was handed in.
    fn submitted(&self) -> Instant;
}

struct Pending<R, F> {
    submitted: Instant,
    work: Option<F>,
    result: Option<Result<R, StoreError>>,
    answer: oneshot::Sender<Result<R, StoreError>>,
}

impl<R, F> Job for Pending<R, F>
where
    R: Send,
    F: FnOnce(&Connection) -> Result<R, StoreError> + Send,
{
    fn work(&mut self, conn: &Connection, in_group: bool) {
        let Some(work) = self.work.take() else { return };
        let run = || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(conn)))
                .unwrap_or_else(|_| Err(StoreError::Invalid("a store job panicked".into())))
        };
        self.result = Some(if in_group { in_savepoint(conn, run) } else { run() });
    }

    fn answer(self: Box<Self>, failed: Option<&str>) {
        let answer = match (self.result, failed) {
            (Some(Err(e)), _) => Err(e),
            (_, Some(why)) => Err(StoreError::Invalid(why.to_owned())),
            (Some(done), None) => done,
            (None, None) => Err(StoreError::Invalid("a store job was not run".into())),
        };
        let _ = self.answer.send(answer);
    }

    fn submitted(&self) -> Instant {
        self.submitted
    }
}

/// `work` in a savepoint: undone alone when it fails, so the group's other
/// jobs still commit.
fn in_savepoint<R>(conn: &Connection, work: impl FnOnce() -> Result<R, StoreError>) -> Result<R, StoreError> {
    conn.execute_batch("SAVEPOINT job")?;
    let done = work();
    let undo = || {
        // When this fails too, the group notices: no transaction left.
        let _ = conn.execute_batch("ROLLBACK TO job; RELEASE job");
    };
    match &done {
        Ok(_) => {
            if let Err(e) = conn.execute_batch("RELEASE job") {
                // Not kept when it cannot be answered as done.
                undo();
                return Err(e.into());
            }
        }
        Err(_) => undo(),
    }
    done
}

/// Runs `group` in one transaction; why it did not commit, if it did not.
fn commit_group(conn: &Connection, group: &mut [Box<dyn Job>]) -> Option<String> {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        return Some(format!("cannot begin a write: {e}"));
    }
    for job in group.iter_mut() {
        job.work(conn, true);
        // Some errors (a full disk, an I/O error) roll the whole
        // transaction back: nothing of the group is kept, and a later job
        // must not run outside a transaction.
        if conn.is_autocommit() {
            return Some("the write was rolled back by an error".into());
        }
    }
    match conn.execute_batch("COMMIT") {
        Ok(()) => None,
        Err(e) => {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            Some(format!("commit failed: {e}"))
        }
    }
}

/// A connection set up as the pool's are.
fn connect(identity: &Path, health: &Path, busy: Duration) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        identity,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(busy)?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
    conn.execute("ATTACH DATABASE ?1 AS health", [health.to_string_lossy()])?;
    conn.execute_batch("PRAGMA health.journal_mode = WAL; PRAGMA health.synchronous = FULL;")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

pub(crate) struct Lane {
    /// `None` only while dropping.
    jobs: Option<mpsc::Sender<Box<dyn Job>>>,
    thread: Option<std::thread::JoinHandle<()>>,
    name: &'static str,
    /// The grouped lane's groups: size, time to commit, each job's wait
    /// for its group (set once the gateway's metrics exist).
    metrics: Arc<OnceLock<BatchMetrics>>,
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
    /// `name`; the thread ends when the lane is dropped. A `grouped` lane
    /// commits whatever jobs are waiting in one transaction (one fsync for
    /// the audit batch, the login batch and whatever else came meanwhile),
    /// each in a savepoint, and answers them once it is committed; the
    /// others run their jobs one by one.
    fn open(name: &'static str, identity: &Path, health: &Path, grouped: bool) -> Result<Lane, StoreError> {
        let conn = connect(identity, health, Duration::from_secs(10))?;
        let (jobs, rx) = mpsc::channel::<Box<dyn Job>>();
        let metrics = Arc::new(OnceLock::<BatchMetrics>::new());
        let observed = metrics.clone();
        let thread = std::thread::Builder::new()
            .name(format!("sqlite-{name}"))
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    if !grouped {
                        let mut job = first;
                        job.work(&conn, false);
                        job.answer(None);
                        continue;
                    }
                    let mut group = vec![first];
                    while group.len() < MAX_GROUP
                        && let Ok(job) = rx.try_recv()
                    {
                        group.push(job);
                    }
                    let started = Instant::now();
                    let failed = commit_group(&conn, &mut group);
                    if let Some(m) = observed.get() {
                        m.observe(group.len(), started.elapsed());
                        for job in &group {
                            m.wait.observe(started.duration_since(job.submitted()).as_secs_f64());
                        }
                    }
                    for job in group {
                        job.answer(failed.as_deref());
                    }
                }
            })
            .map_err(|e| StoreError::Invalid(format!("cannot start the SQLite {name} thread: {e}")))?;
        Ok(Lane { jobs: Some(jobs), thread: Some(thread), name, metrics })
    }

    /// Runs `work` on the lane's connection and returns what it returned
    /// (on the writer lane: once it is committed). A panic in `work` fails
    /// this call only.
    pub async fn run<R, F>(&self, work: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let (answer, wait) = oneshot::channel();
        let job = Box::new(Pending { submitted: Instant::now(), work: Some(work), result: None, answer });
        let stopped = || StoreError::Invalid(format!("the SQLite {} lane has stopped", self.name));
        self.jobs.as_ref().ok_or_else(stopped)?.send(job).map_err(|_| stopped())?;
        wait.await.map_err(|_| stopped())?
    }
}

/// The connections of a SQLite store's hot path: one writer (SQLite has one
/// writer at a time anyway; one connection for the hot writes means they
/// queue here and commit together instead of polling for the lock), one
/// reader thread (WAL readers do not wait for the writer), and one
/// connection for reads short enough to run on the caller's thread.
pub(crate) struct Lanes {
    pub writer: Lane,
    reader: Lane,
    inline: Mutex<Connection>,
}

impl Lanes {
    pub fn open(dir: &Path) -> Result<Lanes, StoreError> {
        let (identity, health) = (dir.join("identity.db"), dir.join("health.db"));
        Ok(Lanes {
            writer: Lane::open("writer", &identity, &health, true)?,
            reader: Lane::open("reader", &identity, &health, false)?,
            // Never waits for a lock: a read that would goes to the reader.
            inline: Mutex::new(connect(&identity, &health, Duration::ZERO)?),
        })
    }

    /// Where the writer's groups are counted from now on.
    pub fn observe_writes(&self, metrics: BatchMetrics) {
        let _ = self.writer.metrics.set(metrics);
    }

    /// A read of a row or two (by key): on the caller's thread when the
    /// inline connection is free and the read needs no lock — a thread
    /// switch costs more than such a read — else on the reader lane.
    pub async fn read<R, F>(&self, work: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: Fn(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        if let Ok(conn) = self.inline.try_lock() {
            match work(&conn) {
                Err(StoreError::Sqlite(e)) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {}
                done => return done,
            }
        }
        self.reader.run(work).await
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

    fn lanes(dir: &tempfile::TempDir) -> Lanes {
        for db in ["identity.db", "health.db"] {
            Connection::open(dir.path().join(db)).expect("create");
        }
        let lanes = Lanes::open(dir.path()).expect("lanes");
        lanes.inline.lock().expect("inline").execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY)").expect("table");
        lanes
    }

    async fn count(lanes: &Lanes) -> i64 {
        lanes.read(|c| Ok(c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?)).await.expect("count")
    }

    #[tokio::test]
    async fn work_runs_on_the_lane_and_a_panic_fails_only_its_call() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lanes = lanes(&dir);
        let name =
            lanes.writer.run(|_| Ok(std::thread::current().name().unwrap_or_default().to_owned())).await.expect("run");
        assert_eq!(name, "sqlite-writer");
        let mode: String =
            lanes.read(|c| Ok(c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?)).await.expect("pragma");
        assert_eq!(mode, "wal");
        let panicked = lanes.writer.run::<(), _>(|_| panic!("boom")).await;
        assert!(matches!(panicked, Err(StoreError::Invalid(m)) if m.contains("panicked")));
        let after: i64 =
            lanes.writer.run(|c| Ok(c.query_row("SELECT 41 + 1", [], |r| r.get(0))?)).await.expect("after");
        assert_eq!(after, 42);
    }

    #[tokio::test]
    async fn jobs_committed_together_keep_their_own_failures_to_themselves() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lanes = std::sync::Arc::new(lanes(&dir));
        let metrics = BatchMetrics::new();
        lanes.observe_writes(metrics.clone());
        // Many writers at once, so that groups form; every third inserts a
        // key that is already there and must fail alone.
        let mut tasks = Vec::new();
        for k in 0..60i64 {
            let lanes = lanes.clone();
            tasks.push(tokio::spawn(async move {
                lanes
                    .writer
                    .run(move |c| {
                        c.execute("INSERT INTO t (k) VALUES (?1)", [k])?;
                        if k % 3 == 0 {
                            c.execute("INSERT INTO t (k) VALUES (?1)", [k])?;
                        }
                        Ok(k)
                    })
                    .await
            }));
        }
        let mut ok = 0;
        for (k, t) in tasks.into_iter().enumerate() {
            match t.await.expect("task") {
                Ok(got) => {
                    assert_eq!(got, k as i64);
                    assert_ne!(k % 3, 0, "a failing job was answered ok");
                    ok += 1;
                }
                Err(e) => assert_eq!(k % 3, 0, "job {k} failed: {e}"),
            }
        }
        assert_eq!(ok, 40);
        // Every job counted in a group, its wait too.
        assert_eq!(metrics.size.sum(), 60.0);
        assert_eq!(metrics.wait.count(), 60);
        assert!((1..=60).contains(&metrics.seconds.count()));
        // The failed jobs' first INSERT was undone with them; the others
        // are committed (read by another connection).
        assert_eq!(count(&lanes).await, 40);
    }

    #[tokio::test]
    async fn an_error_that_ends_the_transaction_fails_the_whole_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lanes = lanes(&dir);
        // A job that ends the transaction under the group's feet: the group
        // must not commit it, nor run later jobs outside a transaction.
        let rolled = lanes
            .writer
            .run(|c| {
                c.execute("INSERT INTO t (k) VALUES (1)", [])?;
                c.execute_batch("RELEASE job; ROLLBACK")?;
                Ok(())
            })
            .await;
        assert!(rolled.is_err(), "a job whose transaction was rolled back was answered ok");
        assert_eq!(count(&lanes).await, 0);
        lanes.writer.run(|c| Ok(c.execute("INSERT INTO t (k) VALUES (2)", [])?)).await.expect("next group");
        assert_eq!(count(&lanes).await, 1);
    }
}
