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
        _wait: bool,
    ) -> SqlResult<Outcome> {
        // Parsed completely, answered honestly: not run by this release.
        Err(not_yet(statement.name()))
    }
}
