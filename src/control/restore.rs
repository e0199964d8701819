//! RESTORE, RESTORE ... PREVIEW and CANCEL RESTORE.

use super::keys::SessionKeys;
use super::{Caller, Control};
use crate::sql::ast::RestoreStatement;

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;

use super::Outcome;
use crate::engine::RestoreMethod;
use crate::error::SqlResult;
use crate::executor::Executor;
use crate::executor::restore::{RestorePoint, RestoreSpec};
use crate::sql::ast::{self, RestoreUntil};

pub struct Restore<'a> {
    pub new_name: &'a str,
    pub from: &'a str,
    pub at: Option<&'a str>,
    pub until: Option<&'a RestoreUntil>,
    pub to: &'a str,
    pub method: Option<ast::RestoreMethod>,
    pub tablespace_map: &'a [(String, String)],
    /// Who restores: the restored cluster's `restore_command` connects as this user.
    pub user: &'a str,
    pub description: Option<&'a str>,
}

fn spec(from: &str, at: Option<&str>, until: Option<&RestoreUntil>) -> RestoreSpec {
    RestoreSpec {
        from: from.to_string(),
        at: at.map(str::to_string),
        until: until.map(|u| match u {
            RestoreUntil::Time(t) => RestorePoint::Time(t.clone()),
            RestoreUntil::BackupSet(n) => RestorePoint::BackupSet(*n),
        }),
    }
}

/// Requires the session's `SET DECRYPTION` to open the destination a restore of `spec` reads,
/// when it is encrypted; names the set the restore asks for.
fn unlock(executor: &Executor, keys: &SessionKeys, spec: &RestoreSpec) -> SqlResult<()> {
    let uri = executor.restore_destination(spec)?;
    let what = match &spec.until {
        Some(RestorePoint::BackupSet(n)) => format!("backup set {n} of tenant {}", spec.from),
        _ => format!("the backup sets of tenant {}", spec.from),
    };
    super::keys::unlock_for_reading(executor.catalog(), keys, &uri, &what)
}

pub fn start(executor: &Arc<Executor>, keys: &SessionKeys, r: Restore<'_>) -> SqlResult<i64> {
    unlock(executor, keys, &spec(r.from, r.at, r.until))?;
    let method = match r.method {
        Some(ast::RestoreMethod::Delta) => RestoreMethod::Delta,
        _ => RestoreMethod::Full,
    };
    executor.start_restore(
        r.new_name,
        &spec(r.from, r.at, r.until),
        r.to,
        method,
        r.tablespace_map,
        r.user,
        r.description.map(str::to_string),
    )
}

/// The columns of `RESTORE ... PREVIEW`.
const PREVIEW_COLUMNS: [(&str, DataType); 9] = [
    ("tenant_name", DataType::Utf8),
    ("backup_set_id", DataType::Int64),
    ("backup_type", DataType::Utf8),
    ("start_time", DataType::Utf8),
    ("end_time", DataType::Utf8),
    ("input_bytes", DataType::Int64),
    ("file_count", DataType::Int64),
    ("backup_dest", DataType::Utf8),
    // A PostgreSQL set's rows after the first: each WAL segment recovery replays.
    ("wal_segment", DataType::Utf8),
];

/// What `RESTORE ... PREVIEW` returns, for describing it before it runs.
pub fn preview_schema() -> datafusion::arrow::datatypes::Schema {
    datafusion::arrow::datatypes::Schema::new(
        PREVIEW_COLUMNS
            .iter()
            .map(|(n, t)| datafusion::arrow::datatypes::Field::new(*n, t.clone(), true))
            .collect::<Vec<_>>(),
    )
}

/// The sets a restore would use, as rows.
pub fn preview(
    executor: &Executor,
    keys: &SessionKeys,
    from: &str,
    at: Option<&str>,
    until: &RestoreUntil,
) -> SqlResult<Outcome> {
    let spec = spec(from, at, Some(until));
    unlock(executor, keys, &spec)?;
    let plan = executor.plan_restore(&spec)?;
    let set = &plan.set;
    let mut rows = vec![vec![
        Some(set.tenant_name.clone()),
        Some(set.set_id.to_string()),
        Some(set.backup_type.as_str().to_string()),
        Some(set.start_time.clone()),
        Some(set.end_time.clone()),
        Some(set.input_bytes.to_string()),
        Some(set.file_count.to_string()),
        Some(crate::catalog::mask_secrets(&plan.dest_uri)),
        None,
    ]];
    for segment in executor.wal_needed(&spec, &plan)? {
        rows.push(vec![
            Some(set.tenant_name.clone()),
            Some(set.set_id.to_string()),
            Some("WAL".to_string()),
            None,
            None,
            None,
            None,
            None,
            Some(segment),
        ]);
    }
    let batch = crate::views::rows(&PREVIEW_COLUMNS, rows)?;
    Ok(Outcome::Rows(batch))
}

impl Control {
    /// Applies a statement of this family for `caller`; `wait` is its trailing `WAIT`.
    pub(super) fn apply_restore(
        &self,
        caller: &Caller,
        statement: &RestoreStatement,
        wait: bool,
    ) -> SqlResult<Outcome> {
        match statement {
            RestoreStatement::Restore {
                new_name,
                from,
                at,
                until,
                to,
                method,
                tablespace_map,
                description,
            } => {
                let job_id = start(
                    &self.executor,
                    &caller.keys,
                    Restore {
                        new_name,
                        from,
                        at: at.as_deref(),
                        until: until.as_ref(),
                        to,
                        method: *method,
                        tablespace_map,
                        user: &caller.user,
                        description: description.as_deref(),
                    },
                )?;
                Ok(Outcome::Job { job_id, wait })
            }
            RestoreStatement::RestorePreview { from, at, until } => {
                preview(&self.executor, &caller.keys, from, at.as_deref(), until)
            }
            RestoreStatement::CancelRestore { name } => {
                self.executor.cancel_restore(name)?;
                Ok(Outcome::Done("ALTER SYSTEM"))
            }
            RestoreStatement::Validate { target, at, level } => {
                let job_id = super::validate::start(
                    &self.catalog,
                    &self.executor,
                    &caller.keys,
                    target,
                    at.as_deref(),
                    *level,
                )?;
                Ok(Outcome::Job { job_id, wait })
            }
            RestoreStatement::CancelValidate { job_id } => {
                self.executor.cancel_validate(*job_id)?;
                Ok(Outcome::Done("ALTER SYSTEM"))
            }
        }
    }
}
