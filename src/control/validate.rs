//! VALIDATE DATABASE | BACKUPSET n [AT 'uri'] [LEVEL = ...] and CANCEL VALIDATE.

use std::sync::Arc;

use crate::catalog::Catalog;
use crate::engine::{Repository, ValidateLevel};
use crate::error::{SqlError, SqlResult, from_engine};
use crate::executor::Executor;
use crate::executor::validate::SetToValidate;
use crate::sql::ast::{self, ValidateTarget};

pub fn start(
    catalog: &Catalog,
    executor: &Arc<Executor>,
    target: &ValidateTarget,
    at: Option<&str>,
    level: Option<ast::ValidateLevel>,
) -> SqlResult<i64> {
    let level = match level {
        Some(ast::ValidateLevel::Physical) => ValidateLevel::Physical,
        _ => ValidateLevel::Basic,
    };
    let (job_type, wanted) = match target {
        ValidateTarget::Database => ("DATABASE", None),
        ValidateTarget::BackupSet(id) => ("BACKUPSET", Some(*id)),
        ValidateTarget::ArchivelogPiece(_) => {
            return Err(SqlError::not_supported(
                "ALTER SYSTEM VALIDATE ARCHIVELOG_PIECE is not supported by this server yet",
            ));
        }
    };
    let mut sets = match at {
        Some(uri) => sets_at(uri)?,
        None => catalog
            .backup_sets()?
            .into_iter()
            .map(|s| SetToValidate {
                tenant_id: s.tenant_id,
                set_id: s.backup_set_id,
                dest_uri: s.path,
                input_bytes: s.input_bytes,
            })
            .collect(),
    };
    if let Some(id) = wanted {
        sets.retain(|s| s.set_id == id);
        if sets.is_empty() {
            return Err(SqlError::undefined(format!(
                "backup set {id} does not exist"
            )));
        }
    }
    executor.start_validate(job_type, sets, level)
}

/// Every set a destination holds, read from the destination itself.
fn sets_at(uri: &str) -> SqlResult<Vec<SetToValidate>> {
    let root = crate::executor::destination_root(uri)?;
    let repo = Repository::open(&root).map_err(|e| from_engine(&e))?;
    Ok(repo
        .list_sets()
        .map_err(|e| from_engine(&e))?
        .into_iter()
        .map(|s| SetToValidate {
            tenant_id: s.tenant_id,
            set_id: s.set_id,
            dest_uri: uri.to_string(),
            input_bytes: s.input_bytes as i64,
        })
        .collect())
}
