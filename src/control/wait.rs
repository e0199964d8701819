//! Applying WAIT JOB.

use super::{Caller, Control, Outcome};
use crate::catalog::parameters::parse_duration;
use crate::error::{SqlError, SqlResult};
use crate::sql::ast::WaitStatement;

impl Control {
    /// Applies a statement of this family for `caller`; `wait` is its trailing `WAIT`.
    pub(super) fn apply_wait(
        &self,
        _caller: &Caller,
        statement: &WaitStatement,
        _wait: bool,
    ) -> SqlResult<Outcome> {
        match statement {
            WaitStatement::WaitJob { job_id, timeout } => {
                let timeout = match timeout {
                    Some(t) => Some(parse_duration(t).ok_or_else(|| {
                        SqlError::invalid_value(format!(
                            "TIMEOUT '{t}' is not a duration: write e.g. '30s' or '10m'"
                        ))
                    })?),
                    None => None,
                };
                self.executor.job_state(*job_id)?;
                Ok(Outcome::Wait {
                    job_id: *job_id,
                    timeout,
                })
            }
        }
    }
}
