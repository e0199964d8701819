//! `ALTER SYSTEM WAIT JOB n [TIMEOUT [=] '10m']` (SPEC §2.9): block until a job ends. The
//! trailing `WAIT` of statements that start a job is handled with routing, in `statement`.

use super::ast::Statement;
use super::statement::Head;

pub(super) const HEADS: &[Head] = &[Head {
    words: &["ALTER", "SYSTEM", "WAIT", "JOB"],
    parse: |c| {
        c.eat_eq();
        Ok(Statement::WaitJob {
            job_id: c.parse_integer()?,
            timeout: c.parse_string_clause("TIMEOUT")?,
        })
    },
}];

#[cfg(test)]
mod tests {
    use crate::sql::ast::Statement;
    use crate::sql::testing::{error, statement};

    #[test]
    fn wait_job() {
        assert_eq!(
            statement("ALTER SYSTEM WAIT JOB 42"),
            Statement::WaitJob {
                job_id: 42,
                timeout: None
            }
        );
        assert_eq!(
            statement("ALTER SYSTEM WAIT JOB 42 TIMEOUT = '10m'"),
            Statement::WaitJob {
                job_id: 42,
                timeout: Some("10m".into())
            }
        );
    }

    #[test]
    fn wait_job_does_not_wait_twice() {
        let e = error("ALTER SYSTEM WAIT JOB 42 WAIT");
        assert_eq!(e.position, 26);
    }
}
