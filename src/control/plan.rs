//! Applying scheduled plans and their policies.

use super::{Caller, Control, Outcome, not_yet};
use crate::error::SqlResult;
use crate::sql::ast::PlanStatement;

impl Control {
    /// Applies a statement of this family for `caller`; `wait` is its trailing `WAIT`.
    pub(super) fn apply_plan(
        &self,
        _caller: &Caller,
        statement: &PlanStatement,
        _wait: bool,
    ) -> SqlResult<Outcome> {
        // Parsed completely, answered honestly: not run by this release.
        Err(not_yet(statement.name()))
    }
}
