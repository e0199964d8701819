//! Applying deletion and retention (SPEC §2.6).

use super::{Caller, Control, Outcome};
use crate::catalog::SYS_TENANT_ID;
use crate::catalog::deletion::DeletePolicy;
use crate::catalog::parameters::parse_duration;
use crate::catalog::tenants::Tenant;
use crate::error::{SqlError, SqlResult};
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
            DeleteStatement::DeleteBackupset {
                set_ids,
                copy,
                tenant,
            } => {
                let tenant = self.scope(tenant.as_deref())?;
                let job_id = self
                    .executor
                    .start_delete_sets(set_ids, *copy, tenant.as_ref())?;
                Ok(Outcome::Job { job_id, wait })
            }
            DeleteStatement::DeleteBackuppiece {
                piece_id,
                copy,
                tenant,
            } => {
                let tenant = self.scope(tenant.as_deref())?;
                let job_id = self
                    .executor
                    .start_delete_piece(*piece_id, *copy, tenant.as_ref())?;
                Ok(Outcome::Job { job_id, wait })
            }
            DeleteStatement::DeleteObsoleteBackup { tenant } => {
                let tenant = self.scope(tenant.as_deref())?;
                let job_id = self
                    .executor
                    .start_delete_obsolete(tenant.as_ref(), false)?;
                Ok(Outcome::Job { job_id, wait })
            }
            DeleteStatement::AddDeleteBackupPolicy {
                name,
                recovery_window,
                tenant,
            } => {
                let window = parse_duration(recovery_window)
                    .filter(|w| !w.is_zero())
                    .ok_or_else(|| {
                        SqlError::invalid_value(format!(
                            "RECOVERY_WINDOW '{recovery_window}' is not a duration: write for \
                             example '7d', '12h' or '30m'"
                        ))
                    })?;
                let tenant_id = self
                    .scope(tenant.as_deref())?
                    .map_or(SYS_TENANT_ID, |t| t.id);
                let policy = DeletePolicy {
                    tenant_id,
                    name: name.clone(),
                    recovery_window: recovery_window.clone(),
                };
                if let Some(existing) = self.catalog.add_delete_policy(&policy)? {
                    return Err(SqlError::duplicate(format!(
                        "delete policy '{existing}' already applies to {}",
                        scope_name(tenant.as_deref())
                    ))
                    .with_ob("OB_ENTRY_EXIST", 4017)
                    .with_hint("drop it first with ALTER SYSTEM DROP DELETE BACKUP POLICY"));
                }
                self.executor.delete_policy_added()?;
                tracing::info!(
                    tenant_id,
                    policy = %name,
                    window_secs = window.as_secs(),
                    "delete policy added"
                );
                Ok(Outcome::Done("ALTER SYSTEM"))
            }
            DeleteStatement::DropDeleteBackupPolicy { name, tenant } => {
                let tenant_id = self
                    .scope(tenant.as_deref())?
                    .map_or(SYS_TENANT_ID, |t| t.id);
                if !self.catalog.drop_delete_policy(tenant_id, name)? {
                    return Err(SqlError::undefined(format!(
                        "delete policy '{name}' does not exist for {}",
                        scope_name(tenant.as_deref())
                    ))
                    .with_ob("OB_ENTRY_NOT_EXIST", 4018));
                }
                tracing::info!(tenant_id, policy = %name, "delete policy dropped");
                Ok(Outcome::Done("ALTER SYSTEM"))
            }
            DeleteStatement::CancelDeleteBackup => {
                self.executor.cancel_delete()?;
                Ok(Outcome::Done("ALTER SYSTEM"))
            }
        }
    }

    /// The tenant a `TENANT [=] t` clause names, if any.
    fn scope(&self, tenant: Option<&str>) -> SqlResult<Option<Tenant>> {
        tenant
            .map(|name| {
                self.catalog
                    .tenant_by_name(name)?
                    .ok_or_else(|| SqlError::unknown_tenant(name))
            })
            .transpose()
    }
}

fn scope_name(tenant: Option<&str>) -> String {
    match tenant {
        Some(t) => format!("tenant {t}"),
        None => "every tenant without its own policy".into(),
    }
}
