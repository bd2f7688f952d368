//! A statement as text and parameters, built once and run by either
//! driver: sqlx (PostgreSQL, and SQLite off the hot path) or a SQLite
//! [`lane`](super::sqlite_lane). The hot statements are built by one
//! function each, so the two drivers cannot drift apart in what they write.

use sqlx::any::AnyArguments;
use sqlx::query::Query;

/// One parameter, borrowed from the rows being written.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Param<'a> {
    Int(i64),
    Text(&'a str),
    Blob(&'a [u8]),
    /// NULL of each type: PostgreSQL types a parameter, so a NULL bound
    /// for a bytea column must be a bytes NULL.
    NoInt,
    NoText,
    NoBlob,
}

impl<'a> From<Option<i64>> for Param<'a> {
    fn from(v: Option<i64>) -> Self {
        v.map_or(Param::NoInt, Param::Int)
    }
}

impl<'a> From<&'a Option<String>> for Param<'a> {
    fn from(v: &'a Option<String>) -> Self {
        v.as_deref().map_or(Param::NoText, Param::Text)
    }
}

impl<'a> From<&'a Option<Vec<u8>>> for Param<'a> {
    fn from(v: &'a Option<Vec<u8>>) -> Self {
        v.as_deref().map_or(Param::NoBlob, Param::Blob)
    }
}

impl<'a> From<i64> for Param<'a> {
    fn from(v: i64) -> Self {
        Param::Int(v)
    }
}

impl<'a> From<&'a str> for Param<'a> {
    fn from(v: &'a str) -> Self {
        Param::Text(v)
    }
}

impl<'a> From<&'a String> for Param<'a> {
    fn from(v: &'a String) -> Self {
        Param::Text(v)
    }
}

impl<'a> From<&'a [u8]> for Param<'a> {
    fn from(v: &'a [u8]) -> Self {
        Param::Blob(v)
    }
}

impl<'a> From<&'a Vec<u8>> for Param<'a> {
    fn from(v: &'a Vec<u8>) -> Self {
        Param::Blob(v)
    }
}

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match *self {
            Param::Int(v) => ValueRef::Integer(v),
            Param::Text(v) => ValueRef::Text(v.as_bytes()),
            Param::Blob(v) => ValueRef::Blob(v),
            Param::NoInt | Param::NoText | Param::NoBlob => ValueRef::Null,
        }))
    }
}

/// SQL text with its parameters, in order.
#[derive(Debug)]
pub(crate) struct Statement<'a> {
    pub sql: String,
    pub params: Vec<Param<'a>>,
}

impl<'a> Statement<'a> {
    pub fn new(sql: String) -> Statement<'a> {
        Statement { sql, params: Vec::new() }
    }

    pub fn bind(mut self, p: impl Into<Param<'a>>) -> Statement<'a> {
        self.params.push(p.into());
        self
    }

    pub fn push(&mut self, p: impl Into<Param<'a>>) {
        self.params.push(p.into());
    }

    /// The statement for sqlx.
    pub fn sqlx(&self) -> Query<'_, sqlx::Any, AnyArguments> {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(self.sql.as_str()));
        for p in &self.params {
            q = match *p {
                Param::Int(v) => q.bind(v),
                Param::Text(v) => q.bind(v),
                Param::Blob(v) => q.bind(v),
                Param::NoInt => q.bind(None::<i64>),
                Param::NoText => q.bind(None::<String>),
                Param::NoBlob => q.bind(None::<Vec<u8>>),
            };
        }
        q
    }

    /// Runs it on a SQLite connection; the rows it changed. The statement
    /// stays prepared for the next call with the same text.
    pub fn execute(&self, conn: &rusqlite::Connection) -> rusqlite::Result<usize> {
        conn.prepare_cached(&self.sql)?.execute(rusqlite::params_from_iter(&self.params))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_reach_sqlite_with_their_types() {
        let conn = rusqlite::Connection::open_in_memory().expect("sqlite");
        conn.execute_batch("CREATE TABLE t (i INTEGER, s TEXT, b BLOB)").expect("table");
        let blob = vec![0u8, 1, 2];
        let n = Statement::new("INSERT INTO t (i, s, b) VALUES (?, ?, ?)".into())
            .bind(-7)
            .bind("zwölf")
            .bind(&blob)
            .execute(&conn)
            .expect("insert");
        assert_eq!(n, 1);
        let got: (i64, String, Vec<u8>, String) = conn
            .query_row("SELECT i, s, b, typeof(s) FROM t", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .expect("row");
        assert_eq!(got, (-7, "zwölf".to_owned(), blob, "text".to_owned()));
    }
}
