//! What one client may hold of the server: how many connect at once, how long a handshake and
//! an idle session may last, how long a statement may be. Read from the parameters
//! (`max_connections`, `authentication_timeout`, `idle_session_timeout`,
//! `max_statement_size`) for each new connection, so a change applies to the next one.

use std::time::Duration;

use pgwire::error::{ErrorInfo, PgWireError};

use crate::catalog::parameters::{parse_duration, parse_size};
use crate::catalog::{Catalog, SYS_TENANT_ID};

/// The limits in force for a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub authentication_timeout: Duration,
    /// `None`: a session may stay idle for ever.
    pub idle_session_timeout: Option<Duration>,
    pub max_statement_size: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 100,
            authentication_timeout: Duration::from_secs(60),
            idle_session_timeout: None,
            max_statement_size: 1 << 20,
        }
    }
}

impl Limits {
    /// The parameters' values; a value the catalog cannot give keeps its default (the
    /// parameters were checked when set).
    pub fn read(catalog: &Catalog) -> Limits {
        let value = |name: &str| catalog.parameter(SYS_TENANT_ID, name).ok().flatten();
        let default = Limits::default();
        Limits {
            max_connections: value("max_connections")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(default.max_connections),
            authentication_timeout: value("authentication_timeout")
                .and_then(|v| parse_duration(&v))
                .unwrap_or(default.authentication_timeout),
            idle_session_timeout: value("idle_session_timeout")
                .and_then(|v| parse_duration(&v))
                .filter(|d| !d.is_zero()),
            max_statement_size: value("max_statement_size")
                .and_then(|v| parse_size(&v))
                .map(|v| v as usize)
                .unwrap_or(default.max_statement_size),
        }
    }
}

/// An error ending the connection, as PostgreSQL sends it.
pub fn fatal(code: &str, message: String) -> ErrorInfo {
    ErrorInfo::new("FATAL".into(), code.into(), message)
}

/// A statement longer than `max_statement_size`: refused before it is parsed.
pub fn too_long(length: usize, limits: &Limits) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        "54000".into(),
        format!(
            "statement is {length} bytes, longer than max_statement_size ({} bytes)",
            limits.max_statement_size
        ),
    )))
}
