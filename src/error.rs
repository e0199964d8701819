//! The one error a client sees: a SQLSTATE, a message a DBA understands, and, where OceanBase
//! has a name for the condition, that name and number in DETAIL (SPEC §6).

use std::fmt;

use pgwire::error::{ErrorInfo, PgWireError};

/// SQLSTATE codes backstop answers with.
pub mod sqlstate {
    pub const SYNTAX_ERROR: &str = "42601";
    pub const UNDEFINED_OBJECT: &str = "42704";
    pub const UNDEFINED_TABLE: &str = "42P01";
    pub const UNDEFINED_COLUMN: &str = "42703";
    pub const AMBIGUOUS_COLUMN: &str = "42702";
    pub const DUPLICATE_OBJECT: &str = "42710";
    pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
    pub const INVALID_PARAMETER_VALUE: &str = "22023";
    pub const OBJECT_NOT_IN_PREREQUISITE_STATE: &str = "55000";
    pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
    pub const QUERY_CANCELED: &str = "57014";
    /// The server is shutting down (PostgreSQL's `terminating connection due to administrator
    /// command`).
    pub const ADMIN_SHUTDOWN: &str = "57P01";
    pub const DISK_FULL: &str = "53100";
    pub const IO_ERROR: &str = "58030";
    pub const DATA_CORRUPTED: &str = "XX001";
    pub const INTERNAL_ERROR: &str = "XX000";
    pub const INVALID_PASSWORD: &str = "28P01";
    pub const DATA_EXCEPTION: &str = "22000";
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    pub code: &'static str,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    /// 1-based character position in the statement text, for syntax errors.
    pub position: Option<usize>,
}

pub type SqlResult<T> = Result<T, SqlError>;

impl SqlError {
    pub fn new(code: &'static str, message: impl Into<String>) -> SqlError {
        SqlError {
            code,
            message: message.into(),
            detail: None,
            hint: None,
            position: None,
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> SqlError {
        self.detail = Some(detail.into());
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> SqlError {
        self.hint = Some(hint.into());
        self
    }

    /// DETAIL carrying OceanBase's name and number for the condition, e.g.
    /// `OB_BACKUP_IN_PROGRESS (9041)`.
    pub fn with_ob(self, name: &str, number: i32) -> SqlError {
        self.with_detail(format!("{name} ({number})"))
    }

    pub fn syntax(message: impl Into<String>, position: usize) -> SqlError {
        SqlError {
            position: Some(position),
            ..SqlError::new(sqlstate::SYNTAX_ERROR, message)
        }
    }

    pub fn undefined(message: impl Into<String>) -> SqlError {
        SqlError::new(sqlstate::UNDEFINED_OBJECT, message)
    }

    /// A tenant a statement names that is not registered.
    pub fn unknown_tenant(name: &str) -> SqlError {
        SqlError::undefined(format!("tenant {name} does not exist"))
            .with_ob("OB_TENANT_NOT_EXIST", 5161)
            .with_hint("SELECT tenant_name FROM oceanbase.dba_ob_tenants lists the tenants")
    }

    pub fn duplicate(message: impl Into<String>) -> SqlError {
        SqlError::new(sqlstate::DUPLICATE_OBJECT, message)
    }

    pub fn wrong_state(message: impl Into<String>) -> SqlError {
        SqlError::new(sqlstate::OBJECT_NOT_IN_PREREQUISITE_STATE, message)
    }

    pub fn invalid_value(message: impl Into<String>) -> SqlError {
        SqlError::new(sqlstate::INVALID_PARAMETER_VALUE, message)
    }

    pub fn not_permitted(message: impl Into<String>) -> SqlError {
        SqlError::new(sqlstate::INSUFFICIENT_PRIVILEGE, message)
    }

    pub fn not_supported(message: impl Into<String>) -> SqlError {
        SqlError::new(sqlstate::FEATURE_NOT_SUPPORTED, message)
    }

    pub fn internal(message: impl Into<String>) -> SqlError {
        SqlError::new(sqlstate::INTERNAL_ERROR, message)
    }
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)?;
        if let Some(detail) = &self.detail {
            write!(f, " DETAIL: {detail}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SqlError {}

impl From<crate::catalog::CatalogError> for SqlError {
    fn from(e: crate::catalog::CatalogError) -> SqlError {
        if matches!(e, crate::catalog::CatalogError::Closed) {
            return SqlError::new(sqlstate::ADMIN_SHUTDOWN, e.to_string());
        }
        tracing::error!(error = %e, "catalog error");
        SqlError::new(sqlstate::IO_ERROR, format!("{e}"))
            .with_hint("the server's data directory may be full or damaged; see the server log")
    }
}

impl From<SqlError> for ErrorInfo {
    fn from(e: SqlError) -> ErrorInfo {
        let mut info = ErrorInfo::new("ERROR".to_string(), e.code.to_string(), e.message);
        info.detail = e.detail;
        info.hint = e.hint;
        info.position = e.position.map(|p| p.to_string());
        info
    }
}

impl From<SqlError> for PgWireError {
    fn from(e: SqlError) -> PgWireError {
        PgWireError::UserError(Box::new(e.into()))
    }
}

/// Maps a repository engine error to its SQLSTATE, keeping the engine's message, which names
/// the object or file and what to do.
pub fn from_engine(e: &crate::engine::EngineError) -> SqlError {
    let code = e.kind().sqlstate();
    SqlError::new(code, e.to_string())
}

/// Maps a DataFusion error to the SQLSTATE PostgreSQL would use for the same mistake.
pub fn from_datafusion(e: datafusion::error::DataFusionError) -> SqlError {
    use datafusion::error::DataFusionError as E;
    match e.find_root() {
        E::SQL(err, _) => {
            let text = err.to_string();
            let position = sql_error_position(&text).unwrap_or(1);
            SqlError::syntax(text.replace("sql parser error: ", ""), position)
        }
        E::SchemaError(err, _) => {
            let text = err.to_string();
            let code = if text.contains("No field named") {
                sqlstate::UNDEFINED_COLUMN
            } else if text.contains("Ambiguous reference") {
                sqlstate::AMBIGUOUS_COLUMN
            } else if text.contains("not found") {
                sqlstate::UNDEFINED_TABLE
            } else {
                sqlstate::SYNTAX_ERROR
            };
            SqlError::new(code, text)
        }
        E::Plan(text) if text.contains("not found") => {
            SqlError::new(sqlstate::UNDEFINED_TABLE, text.clone())
        }
        E::Plan(text) => SqlError::new("42000", text.clone()),
        E::NotImplemented(text) => SqlError::not_supported(text.clone()),
        E::External(inner) => match inner.downcast_ref::<SqlError>() {
            Some(sql) => sql.clone(),
            None => SqlError::internal(inner.to_string()),
        },
        E::Execution(text) => SqlError::new(sqlstate::DATA_EXCEPTION, text.clone()),
        E::ArrowError(err, _) => SqlError::new(sqlstate::DATA_EXCEPTION, err.to_string()),
        other => SqlError::internal(other.to_string()),
    }
}

/// sqlparser reports `... at Line: l, Column: c`; statements from clients are usually one line.
fn sql_error_position(text: &str) -> Option<usize> {
    let line: usize = text
        .split("Line: ")
        .nth(1)?
        .split(',')
        .next()?
        .trim()
        .parse()
        .ok()?;
    let column: usize = text
        .split("Column: ")
        .nth(1)?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    (line == 1).then_some(column)
}
