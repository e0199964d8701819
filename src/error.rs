//! The one error a client sees: a SQLSTATE, a message a DBA understands, and, where OceanBase
//! has a name for the condition, that name and number in DETAIL (SPEC §6).

use std::fmt;

use pgwire::error::{ErrorInfo, PgWireError};

/// The SQLSTATEs backstop answers with: one enum, so that every error, the engine's included
/// ([`crate::engine::ErrorKind::sqlstate`]), names one of them, and a code stored in the catalog
/// reads back as one ([`SqlState::parse`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SqlState {
    SyntaxError,
    SyntaxErrorOrAccessRule,
    UndefinedObject,
    UndefinedTable,
    UndefinedColumn,
    AmbiguousColumn,
    DuplicateObject,
    InsufficientPrivilege,
    InvalidParameterValue,
    ObjectNotInPrerequisiteState,
    FeatureNotSupported,
    QueryCanceled,
    AdminShutdown,
    DiskFull,
    IoError,
    UndefinedFile,
    DataCorrupted,
    InternalError,
    InvalidPassword,
    DataException,
    /// A source backstop connects to (a PostgreSQL cluster) cannot be reached.
    UnableToConnect,
}

impl SqlState {
    pub const ALL: [SqlState; 21] = [
        SqlState::SyntaxError,
        SqlState::SyntaxErrorOrAccessRule,
        SqlState::UndefinedObject,
        SqlState::UndefinedTable,
        SqlState::UndefinedColumn,
        SqlState::AmbiguousColumn,
        SqlState::DuplicateObject,
        SqlState::InsufficientPrivilege,
        SqlState::InvalidParameterValue,
        SqlState::ObjectNotInPrerequisiteState,
        SqlState::FeatureNotSupported,
        SqlState::QueryCanceled,
        SqlState::AdminShutdown,
        SqlState::DiskFull,
        SqlState::IoError,
        SqlState::UndefinedFile,
        SqlState::DataCorrupted,
        SqlState::InternalError,
        SqlState::InvalidPassword,
        SqlState::DataException,
        SqlState::UnableToConnect,
    ];

    /// The five-character code PostgreSQL clients read.
    pub fn code(self) -> &'static str {
        match self {
            SqlState::SyntaxError => "42601",
            SqlState::SyntaxErrorOrAccessRule => "42000",
            SqlState::UndefinedObject => "42704",
            SqlState::UndefinedTable => "42P01",
            SqlState::UndefinedColumn => "42703",
            SqlState::AmbiguousColumn => "42702",
            SqlState::DuplicateObject => "42710",
            SqlState::InsufficientPrivilege => "42501",
            SqlState::InvalidParameterValue => "22023",
            SqlState::ObjectNotInPrerequisiteState => "55000",
            SqlState::FeatureNotSupported => "0A000",
            SqlState::QueryCanceled => "57014",
            SqlState::AdminShutdown => "57P01",
            SqlState::DiskFull => "53100",
            SqlState::IoError => "58030",
            SqlState::UndefinedFile => "58P01",
            SqlState::DataCorrupted => "XX001",
            SqlState::InternalError => "XX000",
            SqlState::InvalidPassword => "28P01",
            SqlState::DataException => "22000",
            SqlState::UnableToConnect => "08001",
        }
    }

    pub fn parse(code: &str) -> Option<SqlState> {
        SqlState::ALL.into_iter().find(|s| s.code() == code)
    }
}

impl fmt::Display for SqlState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The SQLSTATEs by their PostgreSQL names.
pub mod sqlstate {
    use super::SqlState;

    pub const SYNTAX_ERROR: SqlState = SqlState::SyntaxError;
    pub const SYNTAX_ERROR_OR_ACCESS_RULE: SqlState = SqlState::SyntaxErrorOrAccessRule;
    pub const UNDEFINED_OBJECT: SqlState = SqlState::UndefinedObject;
    pub const UNDEFINED_TABLE: SqlState = SqlState::UndefinedTable;
    pub const UNDEFINED_COLUMN: SqlState = SqlState::UndefinedColumn;
    pub const AMBIGUOUS_COLUMN: SqlState = SqlState::AmbiguousColumn;
    pub const DUPLICATE_OBJECT: SqlState = SqlState::DuplicateObject;
    pub const INSUFFICIENT_PRIVILEGE: SqlState = SqlState::InsufficientPrivilege;
    pub const INVALID_PARAMETER_VALUE: SqlState = SqlState::InvalidParameterValue;
    pub const OBJECT_NOT_IN_PREREQUISITE_STATE: SqlState = SqlState::ObjectNotInPrerequisiteState;
    pub const FEATURE_NOT_SUPPORTED: SqlState = SqlState::FeatureNotSupported;
    pub const QUERY_CANCELED: SqlState = SqlState::QueryCanceled;
    pub const ADMIN_SHUTDOWN: SqlState = SqlState::AdminShutdown;
    pub const DISK_FULL: SqlState = SqlState::DiskFull;
    pub const IO_ERROR: SqlState = SqlState::IoError;
    pub const UNDEFINED_FILE: SqlState = SqlState::UndefinedFile;
    pub const DATA_CORRUPTED: SqlState = SqlState::DataCorrupted;
    pub const INTERNAL_ERROR: SqlState = SqlState::InternalError;
    pub const INVALID_PASSWORD: SqlState = SqlState::InvalidPassword;
    pub const DATA_EXCEPTION: SqlState = SqlState::DataException;
    pub const UNABLE_TO_CONNECT: SqlState = SqlState::UnableToConnect;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    pub code: SqlState,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    /// 1-based character position in the statement text, for syntax errors.
    pub position: Option<usize>,
}

pub type SqlResult<T> = Result<T, SqlError>;

impl SqlError {
    pub fn new(code: SqlState, message: impl Into<String>) -> SqlError {
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
        E::Plan(text) => SqlError::new(sqlstate::SYNTAX_ERROR_OR_ACCESS_RULE, text.clone()),
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
