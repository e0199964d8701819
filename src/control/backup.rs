//! ALTER SYSTEM BACKUP [INCREMENTAL] DATABASE | TENANT: start a data backup job.

use super::{Caller, Control, Outcome};
use crate::sql::ast::BackupStatement;

use std::sync::Arc;

use crate::catalog::Catalog;
use crate::error::{SqlError, SqlResult};
use crate::executor::Executor;
use crate::executor::backup::BackupSpec;
use crate::sql::ast::BackupScope;

pub fn start(
    catalog: &Catalog,
    executor: &Arc<Executor>,
    keys: &super::keys::SessionKeys,
    incremental: bool,
    scope: &BackupScope,
    plus_archivelog: bool,
    description: Option<&str>,
) -> SqlResult<i64> {
    let (tenants, cluster) = match scope {
        BackupScope::Database => (catalog.user_tenants()?, true),
        BackupScope::Tenants(names) => {
            let mut tenants = Vec::new();
            for name in names {
                let tenant = super::find_tenant(catalog, name)?;
                if !tenants
                    .iter()
                    .any(|t: &crate::catalog::tenants::Tenant| t.id == tenant.id)
                {
                    tenants.push(tenant);
                }
            }
            (tenants, false)
        }
    };
    // A PostgreSQL tenant's log is its WAL, which the set keeps from its cluster.
    if plus_archivelog
        && let Some(t) = tenants.iter().find(|t| {
            t.log_source.is_none() && t.kind != crate::catalog::tenants::TenantKind::Postgres
        })
    {
        return Err(SqlError::wrong_state(format!(
            "BACKUP ... PLUS ARCHIVELOG needs a log source, and tenant {} has none",
            t.name
        ))
        .with_hint(format!(
            "give it one with ALTER TENANT {} SET LOG_SOURCE = 'dir:///path', or back up \
                 without PLUS ARCHIVELOG",
            t.name
        )));
    }
    if tenants.is_empty() {
        return Err(SqlError::wrong_state("there is no tenant to back up")
            .with_hint("register one with CREATE TENANT name SOURCE = 'dir:///path'"));
    }
    // Each destination gets its key (SET ENCRYPTION) or must be readable by this server's,
    // before the job is recorded.
    for tenant in &tenants {
        let target = executor.backup_target(tenant)?;
        super::keys::prepare_for_writing(catalog, keys, &target.dest_uri)?;
    }
    executor.start_backup(BackupSpec {
        tenants,
        cluster,
        incremental,
        plus_archivelog,
        description: description.map(str::to_string),
    })
}

impl Control {
    /// Applies a statement of this family for `caller`; `wait` is its trailing `WAIT`.
    pub(super) fn apply_backup(
        &self,
        caller: &Caller,
        statement: &BackupStatement,
        wait: bool,
    ) -> SqlResult<Outcome> {
        match statement {
            BackupStatement::Backup {
                incremental,
                scope,
                plus_archivelog,
                description,
            } => {
                let job_id = start(
                    &self.catalog,
                    &self.executor,
                    &caller.keys,
                    *incremental,
                    scope,
                    *plus_archivelog,
                    description.as_deref(),
                )?;
                Ok(Outcome::Job { job_id, wait })
            }
            BackupStatement::CancelBackup { tenants } => {
                self.executor
                    .cancel_backup(self.tenant_ids(tenants)?.as_deref())?;
                Ok(Outcome::Done("ALTER SYSTEM"))
            }
            BackupStatement::StopBackup { tenants } => {
                self.executor
                    .stop_backup(self.tenant_ids(tenants)?.as_deref())?;
                Ok(Outcome::Done("ALTER SYSTEM"))
            }
            BackupStatement::SuspendBackup { tenants } => {
                self.executor
                    .suspend_backup(self.tenant_ids(tenants)?.as_deref())?;
                Ok(Outcome::Done("ALTER SYSTEM"))
            }
            BackupStatement::ResumeBackup { tenants } => {
                let jobs = self
                    .executor
                    .resume_backup(self.tenant_ids(tenants)?.as_deref())?;
                Ok(Outcome::Job {
                    job_id: jobs[0],
                    wait,
                })
            }
            BackupStatement::RestartBackupContext { context_id } => {
                let job_id = self.executor.restart_context(context_id)?;
                Ok(Outcome::Job { job_id, wait })
            }
            BackupStatement::DeleteBackupContext { context_id } => {
                self.executor.delete_context(context_id)?;
                Ok(Outcome::Done("ALTER SYSTEM"))
            }
            BackupStatement::CancelAllBackupForce => {
                self.executor.cancel_all_force()?;
                Ok(Outcome::Done("ALTER SYSTEM"))
            }
        }
    }
}
