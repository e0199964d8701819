//! Turns a parsed backstop statement into catalog changes and executor requests, after checking
//! the caller's role and the objects the statement names. One file per statement family; this
//! file only dispatches.

mod archive;
mod backup;
mod backup_backup;
mod delete;
pub mod keys;
mod paths;
mod plan;
mod repair;
mod restore;
mod system_set;
mod tenant;
mod user;
mod validate;
mod wait;

use tenant::find as find_tenant;

use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;

use crate::catalog::Catalog;
use crate::error::{SqlError, SqlResult};
use crate::executor::Executor;
use crate::sql::ast::{Command, Role, Statement};

/// Who issued a statement.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: String,
    pub role: Role,
    /// The passwords of its session's `SET ENCRYPTION` and `SET DECRYPTION`.
    pub keys: keys::SessionKeys,
}

/// What a statement answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Done; the command tag to send (`ALTER SYSTEM`, `CREATE TENANT`, ...).
    Done(&'static str),
    /// A job was started (and is durable); with `wait`, the client waits for its end.
    Job { job_id: i64, wait: bool },
    /// A job was started with nothing to do: the client is told why, then (with `wait`) waits
    /// for its end as for any job.
    Notice {
        job_id: i64,
        wait: bool,
        notice: String,
    },
    /// `WAIT JOB n`: wait for an existing job.
    Wait {
        job_id: i64,
        timeout: Option<std::time::Duration>,
    },
    /// Rows to return (`RESTORE ... PREVIEW`).
    Rows(RecordBatch),
    /// `SET ENCRYPTION` / `SET DECRYPTION`: what the session keeps.
    SessionKeys(keys::KeyChange),
}

pub struct Control {
    catalog: Arc<Catalog>,
    executor: Arc<Executor>,
}

impl Control {
    pub fn new(catalog: Arc<Catalog>, executor: Arc<Executor>) -> Control {
        Control { catalog, executor }
    }

    pub fn executor(&self) -> &Arc<Executor> {
        &self.executor
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The ids of a `TENANT = a, b` list, each checked to exist.
    fn tenant_ids(&self, names: &Option<Vec<String>>) -> SqlResult<Option<Vec<i64>>> {
        let Some(names) = names else { return Ok(None) };
        names
            .iter()
            .map(|n| find_tenant(&self.catalog, n).map(|t| t.id))
            .collect::<SqlResult<Vec<i64>>>()
            .map(Some)
    }

    /// The tenants an `ARCHIVELOG` or `NOARCHIVELOG` applies to: the named ones, or with no
    /// TENANT clause or `TENANT = all`, every tenant that has a log to archive (to start) or a
    /// round that is on (to stop).
    fn archive_scope(
        &self,
        scope: &Option<crate::sql::ast::TenantScope>,
        starting: bool,
    ) -> SqlResult<Vec<crate::catalog::tenants::Tenant>> {
        use crate::catalog::tenants::TenantKind;
        if let Some(crate::sql::ast::TenantScope::List(names)) = scope {
            return names
                .iter()
                .map(|n| tenant::find(&self.catalog, n))
                .collect();
        }
        let mut chosen = Vec::new();
        let mut archiving = 0;
        for t in self.catalog.user_tenants()? {
            let round = self.catalog.latest_round(t.id)?;
            let on = round.as_ref().is_some_and(|r| r.status != "STOP");
            archiving += usize::from(on);
            let eligible = if starting {
                !on && (t.kind == TenantKind::Postgres || t.log_source.is_some())
            } else {
                on && round.is_some_and(|r| r.status != "STOPPING")
            };
            if eligible {
                chosen.push(t);
            }
        }
        if chosen.is_empty() {
            return Err(if starting && archiving > 0 {
                SqlError::wrong_state("every tenant with a log source is archiving already")
                    .with_ob("OB_ALREADY_IN_ARCHIVE_MODE", 9023)
            } else if starting {
                SqlError::wrong_state("no tenant has a log source to archive").with_hint(
                    "give a directory tenant one with ALTER TENANT t SET LOG_SOURCE = \
                     'dir:///path'",
                )
            } else {
                SqlError::wrong_state("no tenant is archiving")
                    .with_ob("OB_ALREADY_IN_NOARCHIVE_MODE", 9024)
            });
        }
        Ok(chosen)
    }

    /// `ARCHIVELOG ... WAIT`: blocks (this runs on a blocking thread) until every tenant's round
    /// is in one of `states`, at most a minute.
    fn wait_for_rounds(
        &self,
        tenants: &[crate::catalog::tenants::Tenant],
        states: &[&str],
    ) -> SqlResult<()> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        for tenant in tenants {
            loop {
                let status = self.catalog.latest_round(tenant.id)?.map(|r| r.status);
                if status.as_deref().is_some_and(|s| states.contains(&s)) {
                    break;
                }
                if std::time::Instant::now() > deadline {
                    return Err(SqlError::new(
                        crate::error::sqlstate::QUERY_CANCELED,
                        format!(
                            "the archive round of tenant {} is still {} after a minute",
                            tenant.name,
                            status.unwrap_or_default()
                        ),
                    )
                    .with_hint(
                        "SELECT status, comment FROM oceanbase.cdb_ob_archivelog says why",
                    ));
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        Ok(())
    }

    pub fn apply(&self, caller: &Caller, command: &Command) -> SqlResult<Outcome> {
        let statement = &command.statement;
        let needed = statement.required_role();
        if caller.role < needed {
            return Err(SqlError::not_permitted(format!(
                "permission denied: {} needs the {} role, and {} has the {} role",
                statement.name(),
                crate::catalog::users::role_name(needed),
                caller.user,
                crate::catalog::users::role_name(caller.role),
            ))
            .with_hint("an admin can grant it with ALTER USER name ROLE operator"));
        }
        paths::authorize(&self.catalog, caller, statement)?;
        tracing::info!(user = %caller.user, statement = %statement.name(), "applying statement");
        match statement {
            Statement::Tenant(s) => self.apply_tenant(caller, s, command.wait),
            Statement::Parameter(s) => self.apply_system_set(caller, s, command.wait),
            Statement::Backup(s) => self.apply_backup(caller, s, command.wait),
            Statement::Archive(s) => self.apply_archive(caller, s, command.wait),
            Statement::BackupBackup(s) => self.apply_backup_backup(caller, s, command.wait),
            Statement::Restore(s) => self.apply_restore(caller, s, command.wait),
            Statement::Delete(s) => self.apply_delete(caller, s, command.wait),
            Statement::Plan(s) => self.apply_plan(caller, s, command.wait),
            Statement::User(s) => self.apply_user(caller, s, command.wait),
            Statement::Wait(s) => self.apply_wait(caller, s, command.wait),
        }
    }
}

/// What a copy statement selects, as the executor takes it.
fn copy_choice(selector: &crate::sql::ast::CopySelector) -> crate::executor::copy::CopyChoice {
    use crate::executor::copy::CopyChoice;
    use crate::sql::ast::CopySelector;
    match selector {
        CopySelector::One(n) => CopyChoice::One(*n),
        CopySelector::All {
            not_backed_up_times,
        } => CopyChoice::All {
            not_backed_up_times: *not_backed_up_times,
        },
    }
}

/// The rows a statement answers with, for describing it before it runs (extended protocol);
/// `None` for statements that answer with a command tag.
pub fn row_schema(statement: &Statement) -> Option<datafusion::arrow::datatypes::Schema> {
    match statement {
        Statement::Restore(crate::sql::ast::RestoreStatement::RestorePreview { .. }) => {
            Some(restore::preview_schema())
        }
        Statement::Archive(
            crate::sql::ast::ArchiveStatement::PushArchivelog { .. }
            | crate::sql::ast::ArchiveStatement::ReceiveArchivelog { .. },
        ) => Some(archive::push_schema()),
        Statement::Archive(crate::sql::ast::ArchiveStatement::SendArchivelog { .. }) => {
            Some(archive::segment_schema())
        }
        Statement::Tenant(crate::sql::ast::TenantStatement::RepairBackupDest { .. }) => {
            Some(repair::schema())
        }
        _ => None,
    }
}

/// A statement this release parses but does not run: 0A000 naming it, never a silent success.
fn not_yet(name: &str) -> SqlError {
    SqlError::not_supported(format!("{name} is not supported by this server yet"))
        .with_hint("see docs/reference.md for the statements this release runs")
}
