//! Storage through sqlx: SQLite by default (no server), PostgreSQL by URL.
//!
//! Identity data and health data live in separate areas (DATA-2): SQLite
//! `identity.db` (each connection's main database) and `health.db` (attached
//! as `health`); PostgreSQL schemas `identity` and `health`. Queries name
//! tables without an area — SQLite finds them among the attached databases,
//! PostgreSQL through `search_path` — so one SQL text serves both through
//! sqlx's `Any` driver; only the DDL differs (one migration set each).

pub mod batch;
pub mod login_writer;
pub mod session_reader;
pub mod snapshot;

mod audit_rows;
mod emergency;
mod erasure;
mod identity;
mod login;
mod monitoring;
mod outbox;
mod patients;
mod research;
mod rights;
mod sqlite_lane;
mod statement;
mod workflow;

use std::path::Path;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Executor, SqlStr};

pub use emergency::{BreakGlassRow, ModeRow};
pub use erasure::{ErasureCandidate, Tombstone};
pub use identity::{NewPerson, PersonRow};
pub use login::{ChallengeRow, NewSession, SessionEnd, SessionQuery, SessionRow, SessionUse};
pub use monitoring::TerminalCertRow;
pub use patients::{AccountRow, Guess, PatientRow, PatientSessionRow};
pub use research::ResearchPatient;
pub use rights::{ConsentRow, CorrectionRow};
pub use workflow::{ConfirmContext, DraftRow, EncounterRow, RecordRow, SealedRow, SealedTable, SignatureRow};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// Two SQLite files in this directory.
    Sqlite { dir: PathBuf },
    /// A PostgreSQL server; the areas are schemas of this database.
    Postgres { url: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot create the data directory {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
}

/// The gateway's store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// The last audit entry this store appended (seq, hash): appends are
    /// serialised through it, and chained to it until another writer's
    /// entry is found in the way.
    audit_tail: std::sync::Arc<tokio::sync::Mutex<audit_rows::AuditTail>>,
    /// SQLite only: the connections of the hot path (`sqlite_lane`).
    /// Taken out by `close`.
    lanes: std::sync::Arc<std::sync::Mutex<Option<std::sync::Arc<sqlite_lane::Lanes>>>>,
}

fn migration(version: i64, description: &'static str, sql: &'static str) -> Migration {
    Migration::new(version, description.into(), MigrationType::Simple, SqlStr::from_static(sql), false)
}

fn migrator(backend: Backend) -> Migrator {
    match backend {
        Backend::Sqlite => Migrator::with_migrations(vec![
            migration(1, "init", include_str!("../../migrations/sqlite/0001_init.sql")),
            migration(2, "workflow", include_str!("../../migrations/sqlite/0002_workflow.sql")),
            migration(3, "monitoring", include_str!("../../migrations/sqlite/0003_monitoring.sql")),
            migration(4, "login evidence", include_str!("../../migrations/sqlite/0004_login_evidence.sql")),
            migration(5, "store generation", include_str!("../../migrations/sqlite/0005_store_generation.sql")),
            migration(6, "session certificates", include_str!("../../migrations/sqlite/0006_session_certificates.sql")),
            migration(7, "audit outbox", include_str!("../../migrations/sqlite/0007_audit_outbox.sql")),
            migration(
                8,
                "outbox cleared by entry",
                include_str!("../../migrations/sqlite/0008_outbox_cleared_by_entry.sql"),
            ),
            migration(9, "record signatures", include_str!("../../migrations/sqlite/0009_record_signatures.sql")),
            migration(10, "emergency operation", include_str!("../../migrations/sqlite/0010_emergency_operation.sql")),
            migration(11, "correction requests", include_str!("../../migrations/sqlite/0011_correction_requests.sql")),
            migration(12, "research opt-out", include_str!("../../migrations/sqlite/0012_research_opt_out.sql")),
            migration(13, "erasure", include_str!("../../migrations/sqlite/0013_erasure.sql")),
        ]),
        Backend::Postgres => {
            let mut m = Migrator::with_migrations(vec![
                migration(1, "init", include_str!("../../migrations/postgres/0001_init.sql")),
                migration(2, "workflow", include_str!("../../migrations/postgres/0002_workflow.sql")),
                migration(3, "monitoring", include_str!("../../migrations/postgres/0003_monitoring.sql")),
                migration(4, "records inline", include_str!("../../migrations/postgres/0004_records_inline.sql")),
                migration(5, "login evidence", include_str!("../../migrations/postgres/0005_login_evidence.sql")),
                migration(6, "store generation", include_str!("../../migrations/postgres/0006_store_generation.sql")),
                migration(
                    7,
                    "session certificates",
                    include_str!("../../migrations/postgres/0007_session_certificates.sql"),
                ),
                migration(8, "audit outbox", include_str!("../../migrations/postgres/0008_audit_outbox.sql")),
                migration(
                    9,
                    "outbox cleared by entry",
                    include_str!("../../migrations/postgres/0009_outbox_cleared_by_entry.sql"),
                ),
                migration(
                    10,
                    "record signatures",
                    include_str!("../../migrations/postgres/0010_record_signatures.sql"),
                ),
                migration(
                    11,
                    "record signatures inline",
                    include_str!("../../migrations/postgres/0011_record_signatures_inline.sql"),
                ),
                migration(
                    12,
                    "emergency operation",
                    include_str!("../../migrations/postgres/0012_emergency_operation.sql"),
                ),
                migration(
                    13,
                    "correction requests",
                    include_str!("../../migrations/postgres/0013_correction_requests.sql"),
                ),
                migration(14, "research opt-out", include_str!("../../migrations/postgres/0014_research_opt_out.sql")),
                migration(15, "erasure", include_str!("../../migrations/postgres/0015_erasure.sql")),
                migration(
                    16,
                    "outbox cleared in both areas",
                    include_str!("../../migrations/postgres/0016_outbox_cleared_in_both_areas.sql"),
                ),
            ]);
            // A fixed place for the bookkeeping table: with `search_path`
            // starting at a schema the first migration creates, sqlx would
            // otherwise put it in `public` once and look in `identity` after.
            m.create_schema("identity");
            m.create_schema("health");
            m.dangerous_set_table_name("identity._sqlx_migrations");
            m
        }
    }
}

impl Store {
    /// Connects and brings the schema up to date (migrations are embedded).
    pub async fn open(config: &StoreConfig) -> Result<Store, StoreError> {
        let store = Self::connect(config).await?;
        migrator(store.backend).run(&store.pool).await?;
        Ok(store)
    }

    /// Connects without migrating.
    pub async fn connect(config: &StoreConfig) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, url, health, lanes_dir) = match config {
            StoreConfig::Sqlite { dir } => {
                let identity = dir.join("identity.db");
                let health = dir.join("health.db");
                // Only the gateway's user reads the store (issue 18): SQLite
                // gives its -wal and -shm files the mode of their database.
                let private = || {
                    crate::file_modes::private_dir(dir)?;
                    for db in [&identity, &health] {
                        crate::file_modes::private_file(db)?;
                        for suffix in ["-wal", "-shm"] {
                            let mut side = db.as_os_str().to_owned();
                            side.push(suffix);
                            crate::file_modes::tighten_if_present(Path::new(&side), 0o600)?;
                        }
                    }
                    Ok::<(), std::io::Error>(())
                };
                private().map_err(|source| StoreError::DataDir { path: dir.clone(), source })?;
                (Backend::Sqlite, format!("sqlite://{}?mode=rwc", identity.display()), Some(health), Some(dir))
            }
            StoreConfig::Postgres { url } => (Backend::Postgres, url.clone(), None, None),
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                // SQLite serialises writers anyway; a few readers help.
                Backend::Sqlite => 4,
                Backend::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(10))
            // sqlx would ping every connection before handing it out: a
            // round trip to the server per query, doubling each one's cost.
            // A connection that broke meanwhile fails its query instead (the
            // request gets an error, fail closed) and is not reused.
            .test_before_acquire(false)
            .after_connect(move |conn, _| {
                let health = health.clone();
                Box::pin(async move {
                    match health {
                        Some(path) => {
                            // Durability first: WAL with a full fsync at every
                            // commit; foreign keys on; wait for writers.
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA synchronous = FULL").await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                            conn.execute("PRAGMA busy_timeout = 10000").await?;
                            let attach = format!(
                                "ATTACH DATABASE '{}' AS health",
                                path.display().to_string().replace('\'', "''")
                            );
                            conn.execute(sqlx::AssertSqlSafe(attach)).await?;
                            conn.execute("PRAGMA health.journal_mode = WAL").await?;
                            conn.execute("PRAGMA health.synchronous = FULL").await?;
                        }
                        None => {
                            conn.execute("SET search_path = identity, health, public").await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        // After the pool: its first connection created the files.
        let lanes = lanes_dir.map(|dir| sqlite_lane::Lanes::open(dir).map(std::sync::Arc::new)).transpose()?;
        Ok(Store { pool, backend, audit_tail: Default::default(), lanes: std::sync::Arc::new(lanes.into()) })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the store answers (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Counts the SQLite writer lane's groups into `metrics` (`/metrics`:
    /// `hpki_store_write_group_*`); nothing on PostgreSQL.
    pub fn observe_writes(&self, metrics: crate::metrics::BatchMetrics) {
        if let Some(lanes) = self.lanes() {
            lanes.observe_writes(metrics);
        }
    }

    /// On SQLite, the row of `sql` whose one parameter is `key`, mapped by
    /// `row` and read by the lanes (inline when it can be); `None` on
    /// PostgreSQL or once closed, for sqlx to read.
    async fn lane_row<R: Send + 'static>(
        &self,
        sql: &'static str,
        key: &str,
        row: fn(&rusqlite::Row<'_>) -> rusqlite::Result<R>,
    ) -> Option<Result<Option<R>, StoreError>> {
        let lanes = self.lanes()?;
        let key = key.to_owned();
        let read = lanes.read(move |c| {
            use rusqlite::OptionalExtension;
            Ok(c.prepare_cached(sql)?.query_row([key.as_str()], row).optional()?)
        });
        Some(read.await)
    }

    /// The hot path's connections, on SQLite (until `close`).
    fn lanes(&self) -> Option<std::sync::Arc<sqlite_lane::Lanes>> {
        self.lanes.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    pub async fn close(&self) {
        let lanes = self.lanes.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        // The lanes' threads finish and close their connections (off the
        // runtime's threads: that may wait for a commit).
        if let Some(lanes) = lanes {
            let _ = tokio::task::spawn_blocking(move || drop(lanes)).await;
        }
        self.pool.close().await;
    }
}

/// `count` parameter placeholders numbered from `first`: `$n` for
/// PostgreSQL, anonymous `?` for SQLite (sqlx resolves each numbered one
/// by name, a linear walk in SQLite: quadratic in a long statement).
pub(crate) fn placeholders(backend: Backend, first: usize, count: usize) -> Vec<String> {
    (first..first + count)
        .map(|n| match backend {
            Backend::Sqlite => "?".to_owned(),
            Backend::Postgres => format!("${n}"),
        })
        .collect()
}

/// `rows` VALUES tuples of `cols` parameters each, numbered from 1.
pub(crate) fn values_placeholders(backend: Backend, rows: usize, cols: usize) -> String {
    let p = placeholders(backend, 1, rows * cols);
    p.chunks(cols.max(1)).map(|row| format!("({})", row.join(", "))).collect::<Vec<_>>().join(", ")
}

/// Maps a unique-constraint violation to `Conflict(what)`.
pub(crate) fn conflict(e: sqlx::Error, what: impl Into<String>) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what.into()),
        _ => StoreError::Database(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every migration file is in its migrator, in order: a file left out
    /// would leave its tables missing on every new store.
    #[test]
    fn every_migration_file_is_run() {
        for (backend, dir) in [(Backend::Sqlite, "sqlite"), (Backend::Postgres, "postgres")] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(dir);
            let mut files: Vec<i64> = std::fs::read_dir(&path)
                .expect("migrations")
                .filter_map(|e| e.ok()?.file_name().to_str()?.split('_').next()?.parse().ok())
                .collect();
            files.sort_unstable();
            let run: Vec<i64> = migrator(backend).iter().map(|m| m.version).collect();
            assert_eq!(run, files, "{dir}: the migrator and migrations/{dir} differ");
        }
    }
}
