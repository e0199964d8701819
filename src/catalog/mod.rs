//! The durable state of backstop: tenants, destinations, parameters, users, and the job, task,
//! set, round, piece, plan and context records that the executor fills.
//!
//! `Catalog` is the only writer of durable state. Each change is one transaction, committed to
//! disk before the caller answers its client. Every write bumps a generation number, which lets
//! `views` cache what it read until the next change.

pub mod archive;
pub mod audit;
pub mod contexts;
pub mod copies;
pub mod deletion;
pub mod jobs;
pub mod keys;
pub mod notifications;
pub mod parameters;
pub mod plans;
pub mod progress;
pub mod repair;
pub mod schema;
pub mod settings;
pub mod sqlite;
pub mod status;
pub mod store;
pub mod tenants;
pub mod users;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Secrets are masked where URIs are understood: in storage.
pub use crate::storage::uri::mask_secrets;
pub use store::{Row, Store, Txn, Value};

/// Tenant id of the system itself; user tenants are numbered from [`FIRST_USER_TENANT_ID`].
pub const SYS_TENANT_ID: i64 = 1;
pub const FIRST_USER_TENANT_ID: i64 = 1001;

/// Version of the catalog's table layout, kept in `meta`.
const SCHEMA_VERSION: &str = "1";

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("catalog I/O error on {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("the catalog has layout version {found}, this server knows {SCHEMA_VERSION}")]
    UnknownVersion { found: String },
    #[error("the catalog is closed: the server is shutting down")]
    Closed,
    #[error("{0}")]
    Corrupt(String),
    #[error(
        "the catalog {path} is damaged ({detail}). It holds no backup, only what the server \
         knows of them: move it aside (mv {path} {path}.damaged), start the server again with an \
         empty catalog, create the tenants again, and run ALTER SYSTEM REPAIR BACKUP DEST 'uri' \
         for each destination to register its sets; RESTORE ... AT 'uri' restores from a \
         destination at once, without any of this"
    )]
    Damaged { path: String, detail: String },
}

/// Runs a SQLite call so that it never stalls the async runtime. The catalog is synchronous (a
/// write waits for its fsync): called from a worker thread of a multi-threaded runtime, the
/// worker first hands its other tasks to the rest of the runtime (`block_in_place`), as
/// `spawn_blocking` would have; called from a blocking thread or outside any runtime, it just
/// runs. (A single-threaded runtime, as unit tests use, cannot hand its tasks over: there the
/// call runs in place too.)
fn off_the_runtime<T>(call: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(call)
        }
        _ => call(),
    }
}

/// Microseconds since the Unix epoch, the catalog's time unit.
pub fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Now, in nanoseconds since the Unix epoch (a log segment's SCN).
pub fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

pub struct Catalog {
    store: Box<dyn Store>,
    generation: AtomicU64,
    installation_id: String,
    live: progress::LiveProgress,
    keys: keys::KeyCache,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("installation_id", &self.installation_id)
            .finish()
    }
}

impl Catalog {
    /// Opens (creating on first use) the embedded catalog in `data_dir/catalog.db`.
    pub fn open(data_dir: &Path) -> Result<Arc<Catalog>, CatalogError> {
        std::fs::create_dir_all(data_dir).map_err(|source| CatalogError::Io {
            path: data_dir.display().to_string(),
            source,
        })?;
        let path = data_dir.join("catalog.db");
        let damaged = |e: CatalogError| match e {
            CatalogError::Sqlite(rusqlite::Error::SqliteFailure(code, message))
                if matches!(
                    code.code,
                    rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt
                ) =>
            {
                CatalogError::Damaged {
                    path: path.display().to_string(),
                    detail: message.unwrap_or_else(|| code.to_string()),
                }
            }
            CatalogError::Damaged { detail, .. } => CatalogError::Damaged {
                path: path.display().to_string(),
                detail,
            },
            other => other,
        };
        let store = sqlite::SqliteStore::open(&path).map_err(damaged)?;
        Self::with_store(Box::new(store)).map_err(damaged)
    }

    pub fn with_store(store: Box<dyn Store>) -> Result<Arc<Catalog>, CatalogError> {
        let mut installation_id = String::new();
        store.write(&mut |tx| {
            for table in schema::TABLES {
                tx.execute(&table.create_sql(), &[])?;
                add_missing_columns(tx, table)?;
            }
            installation_id = init_meta(tx)?;
            seed(tx)
        })?;
        Ok(Arc::new(Catalog {
            store,
            generation: AtomicU64::new(1),
            installation_id,
            live: progress::LiveProgress::default(),
            keys: keys::KeyCache::default(),
        }))
    }

    /// The id stamped into every destination this installation writes.
    pub fn installation_id(&self) -> &str {
        &self.installation_id
    }

    /// Changes whenever anything was written; equal generations read equal data.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Closes the catalog at shutdown: later writes are refused, and the write-ahead log is
    /// folded into the database file.
    pub fn close(&self) -> Result<(), CatalogError> {
        off_the_runtime(|| self.store.close())
    }

    /// The in-memory figures of running work, which views read over the durable rows.
    pub fn live_progress(&self) -> &progress::LiveProgress {
        &self.live
    }

    /// Runs `f` as one durable transaction.
    pub fn write<T>(
        &self,
        f: impl FnOnce(&dyn Txn) -> Result<T, CatalogError>,
    ) -> Result<T, CatalogError> {
        let mut f = Some(f);
        let mut out = None;
        off_the_runtime(|| {
            self.store.write(&mut |tx| {
                let f = f.take().expect("a catalog transaction body runs once");
                out = Some(f(tx)?);
                Ok(())
            })
        })?;
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(out.expect("committed transaction produced its value"))
    }

    pub fn read(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, CatalogError> {
        off_the_runtime(|| self.store.read(sql, params))
    }

    /// Every visible column of `table`, in declaration order.
    /// Every row of `table`, newest first: in descending primary-key order, nulls first as SQL
    /// orders `DESC`.
    pub fn scan(&self, table: &schema::TableDef) -> Result<Vec<Row>, CatalogError> {
        let columns: Vec<&str> = table.visible_columns().map(|c| c.name).collect();
        let order: Vec<String> = table
            .primary_key()
            .iter()
            .map(|c| format!("{c} DESC NULLS FIRST"))
            .collect();
        let order_by = if order.is_empty() {
            String::new()
        } else {
            format!(" ORDER BY {}", order.join(", "))
        };
        self.read(
            &format!(
                "SELECT {} FROM {}{order_by}",
                columns.join(", "),
                table.name
            ),
            &[],
        )
    }

    /// Allocates the next value of a named sequence inside `tx`.
    pub fn next_id(tx: &dyn Txn, sequence: &str) -> Result<i64, CatalogError> {
        let rows = tx.query(
            "SELECT next_value FROM sequence WHERE name = ?",
            &[sequence.into()],
        )?;
        let next = rows.first().and_then(|r| r[0].as_i64()).unwrap_or(1);
        tx.execute(
            "INSERT INTO sequence (name, next_value) VALUES (?, ?) \
             ON CONFLICT (name) DO UPDATE SET next_value = excluded.next_value",
            &[sequence.into(), (next + 1).into()],
        )?;
        Ok(next)
    }

    /// Views created with `CREATE VIEW`, as `(schema, name, definition)`, oldest first.
    pub fn user_views(&self) -> Result<Vec<(String, String, String)>, CatalogError> {
        let rows = self.read(
            "SELECT schema_name, view_name, definition FROM user_view ORDER BY create_time",
            &[],
        )?;
        Ok(rows
            .into_iter()
            .map(|mut r| {
                let def = r.pop().and_then(Value::into_string).unwrap_or_default();
                let name = r.pop().and_then(Value::into_string).unwrap_or_default();
                let schema = r.pop().and_then(Value::into_string).unwrap_or_default();
                (schema, name, def)
            })
            .collect())
    }

    pub fn save_user_view(
        &self,
        schema: &str,
        name: &str,
        definition: &str,
    ) -> Result<(), CatalogError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO user_view (schema_name, view_name, definition, create_time) \
                 VALUES (?, ?, ?, ?) ON CONFLICT (schema_name, view_name) \
                 DO UPDATE SET definition = excluded.definition",
                &[
                    schema.into(),
                    name.into(),
                    definition.into(),
                    now_micros().into(),
                ],
            )?;
            Ok(())
        })
    }

    pub fn drop_user_view(&self, schema: &str, name: &str) -> Result<(), CatalogError> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM user_view WHERE schema_name = ? AND view_name = ?",
                &[schema.into(), name.into()],
            )?;
            Ok(())
        })
    }
}

/// Columns added to a table after a catalog was created are added to it on start, empty
/// (NULL) for the rows it already has: the schema only ever grows by columns.
fn add_missing_columns(tx: &dyn Txn, table: &schema::TableDef) -> Result<(), CatalogError> {
    let present: Vec<String> = tx
        .query(
            "SELECT name FROM pragma_table_info(?)",
            &[table.name.into()],
        )?
        .into_iter()
        .filter_map(|mut r| r.pop()?.into_string())
        .collect();
    for column in table.columns {
        if !present.iter().any(|p| p.eq_ignore_ascii_case(column.name)) {
            tx.execute(
                &format!("ALTER TABLE {} ADD COLUMN {}", table.name, column.sql()),
                &[],
            )?;
        }
    }
    Ok(())
}

fn init_meta(tx: &dyn Txn) -> Result<String, CatalogError> {
    let version = tx.query("SELECT value FROM meta WHERE key = 'schema_version'", &[])?;
    match version.first().and_then(|r| r[0].as_str()) {
        None => {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?)",
                &[SCHEMA_VERSION.into()],
            )?;
        }
        Some(v) if v == SCHEMA_VERSION => {}
        Some(v) => {
            return Err(CatalogError::UnknownVersion {
                found: v.to_string(),
            });
        }
    }
    let id = tx.query("SELECT value FROM meta WHERE key = 'installation_id'", &[])?;
    if let Some(id) = id.first().and_then(|r| r[0].as_str()) {
        return Ok(id.to_string());
    }
    let id = uuid::Uuid::new_v4().to_string();
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('installation_id', ?)",
        &[id.clone().into()],
    )?;
    Ok(id)
}

/// Rows every installation has: the system tenant, the id sequences, the default parameters.
fn seed(tx: &dyn Txn) -> Result<(), CatalogError> {
    tx.execute(
        "INSERT OR IGNORE INTO tenant (tenant_id, tenant_name, kind, log_mode, status, create_time) \
         VALUES (?, 'sys', 'system', 'NOARCHIVELOG', 'NORMAL', ?)",
        &[SYS_TENANT_ID.into(), now_micros().into()],
    )?;
    tx.execute(
        "INSERT OR IGNORE INTO sequence (name, next_value) VALUES ('tenant', ?)",
        &[FIRST_USER_TENANT_ID.into()],
    )?;
    for def in parameters::PARAMETERS {
        if let Some(default) = def.default {
            tx.execute(
                "INSERT OR IGNORE INTO parameter (tenant_id, name, value, raw_value, update_time) \
                 VALUES (?, ?, ?, ?, ?)",
                &[
                    SYS_TENANT_ID.into(),
                    def.name.into(),
                    default.into(),
                    default.into(),
                    now_micros().into(),
                ],
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_catalog_made_before_a_column_existed_gains_it_and_keeps_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        {
            let old = rusqlite::Connection::open(dir.path().join("catalog.db")).unwrap();
            old.execute_batch(
                "CREATE TABLE archive_round (tenant_id INTEGER, dest_id INTEGER, \
                 round_id INTEGER, status TEXT, PRIMARY KEY (tenant_id, dest_id, round_id)); \
                 INSERT INTO archive_round VALUES (1001, 1, 7, 'STOP');",
            )
            .unwrap();
        }
        let catalog = Catalog::open(dir.path()).unwrap();
        let rows = catalog
            .read(
                "SELECT round_id, status, cluster_round_id, path FROM archive_round",
                &[],
            )
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][0].as_i64(), Some(7));
        assert_eq!(rows[0][1].as_str(), Some("STOP"));
        assert!(rows[0][2].as_i64().is_none());
    }
}
