//! Stores for tests: a fresh SQLite directory, and a fresh database on the
//! real PostgreSQL server of this machine (created per test, dropped after).

#![allow(dead_code)]

use hpki_gateway::store::{Store, StoreConfig};
use sqlx::{Connection, Executor};

/// Base URL of the PostgreSQL server; `HPKI_TEST_PG_URL` overrides it.
pub fn pg_base() -> String {
    std::env::var("HPKI_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub struct TestDb {
    pub config: StoreConfig,
    pg_name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("tempdir");
        TestDb { config: StoreConfig::Sqlite { dir: dir.path().join("data") }, pg_name: None, _dir: Some(dir) }
    }

    pub async fn postgres() -> TestDb {
        let name = format!("hpki_test_{}_{}", std::process::id(), rand_suffix());
        let mut admin = sqlx::PgConnection::connect(&format!("{}/postgres", pg_base()))
            .await
            .expect("PostgreSQL reachable (make test starts it)");
        admin.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.expect("create database");
        TestDb {
            config: StoreConfig::Postgres { url: format!("{}/{name}", pg_base()) },
            pg_name: Some(name),
            _dir: None,
        }
    }

    pub async fn store(&self) -> Store {
        Store::open(&self.config).await.expect("store opens")
    }

    /// Drops the PostgreSQL database (call at the end of a test).
    pub async fn drop_db(self) {
        if let Some(name) = &self.pg_name {
            let mut admin = sqlx::PgConnection::connect(&format!("{}/postgres", pg_base())).await.expect("admin");
            let _ = admin.execute(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).await;
        }
    }
}

fn rand_suffix() -> u64 {
    let mut b = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).expect("random");
    u64::from_be_bytes(b) % 1_000_000_000
}

/// Runs `body` against SQLite and against PostgreSQL.
#[macro_export]
macro_rules! both_stores {
    ($name:ident, |$db:ident| $body:block) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $db = common::TestDb::sqlite().await;
                $body
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let $db = common::TestDb::postgres().await;
                $body
            }
        }
    };
}
