//! The embedded catalog: one SQLite file in WAL mode with `synchronous = FULL`, so that a change
//! is on disk before the statement that made it is answered and survives `kill -9`.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, ToSql};

use super::CatalogError;
use super::store::{Row, Store, Txn, Value};

/// How many read connections are kept open for concurrent queries.
const READERS: usize = 4;

pub struct SqliteStore {
    writer: Mutex<Connection>,
    /// Set by [`Store::close`]: no write goes in after it.
    closed: std::sync::atomic::AtomicBool,
    readers: Mutex<Vec<Connection>>,
    path: std::path::PathBuf,
}

impl SqliteStore {
    pub fn open(path: &Path) -> Result<SqliteStore, CatalogError> {
        let writer = Connection::open(path)?;
        // A damaged file is named at start, not found by the first statement that reads it.
        let check: String = writer.query_row("PRAGMA quick_check", [], |row| row.get(0))?;
        if check != "ok" {
            return Err(CatalogError::Damaged {
                path: path.display().to_string(),
                detail: check,
            });
        }
        writer.pragma_update(None, "journal_mode", "WAL")?;
        writer.pragma_update(None, "synchronous", "FULL")?;
        writer.pragma_update(None, "foreign_keys", "ON")?;
        writer.busy_timeout(std::time::Duration::from_secs(10))?;
        let readers = (0..READERS)
            .map(|_| Self::open_reader(path))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SqliteStore {
            writer: Mutex::new(writer),
            closed: std::sync::atomic::AtomicBool::new(false),
            readers: Mutex::new(readers),
            path: path.to_path_buf(),
        })
    }

    fn open_reader(path: &Path) -> Result<Connection, CatalogError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        Ok(conn)
    }

    fn take_reader(&self) -> Result<Connection, CatalogError> {
        match self.readers.lock().expect("reader pool poisoned").pop() {
            Some(conn) => Ok(conn),
            None => Self::open_reader(&self.path),
        }
    }

    fn give_back(&self, conn: Connection) {
        let mut pool = self.readers.lock().expect("reader pool poisoned");
        if pool.len() < READERS {
            pool.push(conn);
        }
    }
}

struct Param<'a>(&'a Value);

impl ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self.0 {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(v) => ToSqlOutput::Borrowed(ValueRef::Integer(*v)),
            Value::Real(v) => ToSqlOutput::Borrowed(ValueRef::Real(*v)),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        })
    }
}

fn run_query(conn: &Connection, sql: &str, params: &[Value]) -> Result<Vec<Row>, CatalogError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let columns = stmt.column_count();
    let bound: Vec<Param> = params.iter().map(Param).collect();
    let mut rows = stmt.query(rusqlite::params_from_iter(bound.iter()))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(columns);
        for i in 0..columns {
            values.push(match row.get_ref(i)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(v) => Value::Int(v),
                ValueRef::Real(v) => Value::Real(v),
                ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => Value::Text(String::from_utf8_lossy(b).into_owned()),
            });
        }
        out.push(values);
    }
    Ok(out)
}

impl Txn for rusqlite::Transaction<'_> {
    fn execute(&self, sql: &str, params: &[Value]) -> Result<usize, CatalogError> {
        let mut stmt = self.prepare_cached(sql)?;
        let bound: Vec<Param> = params.iter().map(Param).collect();
        Ok(stmt.execute(rusqlite::params_from_iter(bound.iter()))?)
    }

    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, CatalogError> {
        run_query(self, sql, params)
    }
}

impl Store for SqliteStore {
    fn write(
        &self,
        f: &mut dyn FnMut(&dyn Txn) -> Result<(), CatalogError>,
    ) -> Result<(), CatalogError> {
        let mut conn = self.writer.lock().expect("catalog writer poisoned");
        if self.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(CatalogError::Closed);
        }
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        f(&tx)?;
        tx.commit()?;
        Ok(())
    }

    fn close(&self) -> Result<(), CatalogError> {
        let conn = self.writer.lock().expect("catalog writer poisoned");
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
        // Every commit is durable already; this folds the write-ahead log into the database
        // file, so that what a shut-down server leaves is one file.
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    fn read(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, CatalogError> {
        let conn = self.take_reader()?;
        let result = run_query(&conn, sql, params);
        self.give_back(conn);
        result
    }
}
