//! `ALTER SYSTEM WAIT JOB n [TIMEOUT [=] '10m']` (SPEC §2.9): block until a job ends. The
//! trailing `WAIT` of statements that start a job is handled with routing, in `statement`.

use std::fmt;

use super::ast::*;
use super::statement::Head;

/// Waiting for a job (SPEC §2.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitStatement {
    WaitJob {
        job_id: i64,
        timeout: Option<String>,
    },
}

impl WaitStatement {
    /// The role a session needs to run the statement (SPEC §2.8).
    pub fn required_role(&self) -> Role {
        Role::Monitor
    }

    /// The statement's name as a DBA reads it.
    pub fn name(&self) -> &'static str {
        use WaitStatement::*;
        match self {
            WaitJob { .. } => "ALTER SYSTEM WAIT JOB",
        }
    }

    /// Whether the statement starts a job, and so may end with `WAIT` (SPEC §2.9).
    pub fn starts_job(&self) -> bool {
        false
    }
}

impl fmt::Display for WaitStatement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use WaitStatement::*;
        match self {
            WaitJob { job_id, timeout } => {
                write!(f, "ALTER SYSTEM WAIT JOB {job_id}")?;
                string_clause(f, "TIMEOUT", timeout)
            }
        }
    }
}

pub(super) const HEADS: &[Head] = &[Head {
    words: &["ALTER", "SYSTEM", "WAIT", "JOB"],
    parse: |c| {
        c.eat_eq();
        Ok(Statement::Wait(WaitStatement::WaitJob {
            job_id: c.parse_integer()?,
            timeout: c.parse_string_clause("TIMEOUT")?,
        }))
    },
}];

#[cfg(test)]
mod tests {
    use super::WaitStatement;
    use crate::sql::ast::Statement;
    use crate::sql::testing::{error, statement};

    #[test]
    fn wait_job() {
        assert_eq!(
            statement("ALTER SYSTEM WAIT JOB 42"),
            Statement::Wait(WaitStatement::WaitJob {
                job_id: 42,
                timeout: None
            })
        );
        assert_eq!(
            statement("ALTER SYSTEM WAIT JOB 42 TIMEOUT = '10m'"),
            Statement::Wait(WaitStatement::WaitJob {
                job_id: 42,
                timeout: Some("10m".into())
            })
        );
    }

    #[test]
    fn wait_job_does_not_wait_twice() {
        let e = error("ALTER SYSTEM WAIT JOB 42 WAIT");
        assert_eq!(e.position, 26);
    }
}
