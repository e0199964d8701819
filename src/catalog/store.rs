//! The small trait between the catalog's domain methods and the database that keeps them.
//!
//! The embedded default is SQLite ([`super::sqlite::SqliteStore`]); a shared PostgreSQL catalog
//! for several servers can implement the same trait. Statements are plain SQL with `?`
//! placeholders and no dialect-specific features.

use std::fmt;

use super::CatalogError;

/// One value of a row, in the four shapes the catalog stores.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl Value {
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(v) => Some(*v),
            Value::Real(v) => Some(*v as i64),
            Value::Text(s) => s.parse().ok(),
            Value::Null => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(v) => Some(*v as f64),
            Value::Real(v) => Some(*v),
            Value::Text(s) => s.parse().ok(),
            Value::Null => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    pub fn into_string(self) -> Option<String> {
        match self {
            Value::Text(s) => Some(s),
            Value::Int(v) => Some(v.to_string()),
            Value::Real(v) => Some(v.to_string()),
            Value::Null => None,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Int(v) => write!(f, "{v}"),
            Value::Real(v) => write!(f, "{v}"),
            Value::Text(s) => f.write_str(s),
        }
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Real(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Int(v as i64)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_string())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

pub type Row = Vec<Value>;

/// Reads and writes inside one transaction.
pub trait Txn {
    fn execute(&self, sql: &str, params: &[Value]) -> Result<usize, CatalogError>;
    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, CatalogError>;
}

/// A durable store of catalog tables.
pub trait Store: Send + Sync {
    /// Runs `f` in one transaction, committed durably before this returns `Ok`.
    fn write(
        &self,
        f: &mut dyn FnMut(&dyn Txn) -> Result<(), CatalogError>,
    ) -> Result<(), CatalogError>;

    /// Runs a read-only query on a consistent snapshot; never blocks the writer.
    fn read(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, CatalogError>;

    /// Refuses every later write and leaves the store compact on disk (at shutdown).
    fn close(&self) -> Result<(), CatalogError>;
}
