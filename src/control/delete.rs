//! Applying deletion and retention.

use super::{Caller, Control, Outcome, not_yet};
use crate::error::SqlResult;
use crate::sql::ast::DeleteStatement;

impl Control {
    /// Applies a statement of this family for `caller`; `wait` is its trailing `WAIT`.
    pub(super) fn apply_delete(
        &self,
        _caller: &Caller,
        statement: &DeleteStatement,
        wait: bool,
    ) -> SqlResult<Outcome> {
        match statement {
            DeleteStatement::DeleteBackupset { set_id, copy: None } => {
                let job_id = self.executor.start_delete_set(*set_id, None)?;
                Ok(Outcome::Job { job_id, wait })
            }
            // Parsed completely, answered honestly: not run by this release.
            _ => Err(not_yet(statement.name())),
        }
    }
}
