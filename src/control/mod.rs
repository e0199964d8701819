//! Turns a parsed backstop statement into catalog changes and executor requests, after checking
//! the caller's role and the objects the statement names. One file per statement family; this
//! file only dispatches.

mod backup;
mod paths;
mod restore;
mod system_set;
mod tenant;
mod user;
mod validate;

pub use tenant::find as find_tenant;

use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;

use crate::catalog::Catalog;
use crate::catalog::parameters::parse_duration;
use crate::error::{SqlError, SqlResult};
use crate::executor::Executor;
use crate::sql::ast::{Command, Role, Statement};

/// Who issued a statement.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: String,
    pub role: Role,
}

/// What a statement answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Done; the command tag to send (`ALTER SYSTEM`, `CREATE TENANT`, ...).
    Done(&'static str),
    /// A job was started (and is durable); with `wait`, the client waits for its end.
    Job { job_id: i64, wait: bool },
    /// `WAIT JOB n`: wait for an existing job.
    Wait {
        job_id: i64,
        timeout: Option<std::time::Duration>,
    },
    /// Rows to return (`RESTORE ... PREVIEW`).
    Rows(RecordBatch),
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
            Statement::CreateTenant {
                name,
                source,
                log_source,
                pgdata,
            } => tenant::create(
                &self.catalog,
                name,
                source,
                log_source.as_deref(),
                pgdata.as_deref(),
            ),
            Statement::AlterTenantSetLogSource { name, log_source } => {
                tenant::set_log_source(&self.catalog, name, log_source)
            }
            Statement::DropTenant { name } => tenant::drop(&self.catalog, name),
            Statement::SetParameter {
                name,
                value,
                tenant,
            } => system_set::apply(
                &self.catalog,
                &self.executor,
                name,
                value,
                tenant.as_deref(),
            ),
            Statement::Backup {
                incremental,
                scope,
                plus_archivelog,
                description,
            } => {
                let job_id = backup::start(
                    &self.catalog,
                    &self.executor,
                    *incremental,
                    scope,
                    *plus_archivelog,
                    description.as_deref(),
                )?;
                Ok(Outcome::Job {
                    job_id,
                    wait: command.wait,
                })
            }
            Statement::Restore {
                new_name,
                from,
                at,
                until,
                to,
                method,
                description,
            } => {
                let job_id = restore::start(
                    &self.executor,
                    restore::Restore {
                        new_name,
                        from,
                        at: at.as_deref(),
                        until: until.as_ref(),
                        to,
                        method: *method,
                        description: description.as_deref(),
                    },
                )?;
                Ok(Outcome::Job {
                    job_id,
                    wait: command.wait,
                })
            }
            Statement::RestorePreview { from, at, until } => {
                restore::preview(&self.executor, from, at.as_deref(), until)
            }
            Statement::CancelRestore { name } => {
                self.executor.cancel_restore(name)?;
                Ok(Outcome::Done("ALTER SYSTEM"))
            }
            Statement::Validate { target, at, level } => {
                let job_id =
                    validate::start(&self.catalog, &self.executor, target, at.as_deref(), *level)?;
                Ok(Outcome::Job {
                    job_id,
                    wait: command.wait,
                })
            }
            Statement::CancelValidate { job_id } => {
                self.executor.cancel_validate(*job_id)?;
                Ok(Outcome::Done("ALTER SYSTEM"))
            }
            Statement::CancelBackup { tenants } => {
                self.executor
                    .cancel_backup(self.tenant_ids(tenants)?.as_deref())?;
                Ok(Outcome::Done("ALTER SYSTEM"))
            }
            Statement::StopBackup { tenants } => {
                self.executor
                    .stop_backup(self.tenant_ids(tenants)?.as_deref())?;
                Ok(Outcome::Done("ALTER SYSTEM"))
            }
            Statement::SuspendBackup { tenants } => {
                self.executor
                    .suspend_backup(self.tenant_ids(tenants)?.as_deref())?;
                Ok(Outcome::Done("ALTER SYSTEM"))
            }
            Statement::ResumeBackup { tenants } => {
                let jobs = self
                    .executor
                    .resume_backup(self.tenant_ids(tenants)?.as_deref())?;
                Ok(Outcome::Job {
                    job_id: jobs[0],
                    wait: command.wait,
                })
            }
            Statement::RestartBackupContext { context_id } => {
                let job_id = self.executor.restart_context(context_id)?;
                Ok(Outcome::Job {
                    job_id,
                    wait: command.wait,
                })
            }
            Statement::DeleteBackupContext { context_id } => {
                self.executor.delete_context(context_id)?;
                Ok(Outcome::Done("ALTER SYSTEM"))
            }
            Statement::Archivelog { tenants } => {
                let cluster = !matches!(tenants, Some(crate::sql::ast::TenantScope::List(_)));
                let tenants = self.archive_scope(tenants, true)?;
                self.executor.start_archivelog(&tenants, cluster)?;
                if command.wait {
                    self.wait_for_rounds(&tenants, &["DOING", "INTERRUPTED", "SUSPEND"])?;
                }
                Ok(Outcome::Done("ALTER SYSTEM"))
            }
            Statement::NoArchivelog { tenants } => {
                let tenants = self.archive_scope(tenants, false)?;
                self.executor.stop_archivelog(&tenants)?;
                if command.wait {
                    self.wait_for_rounds(&tenants, &["STOP"])?;
                }
                Ok(Outcome::Done("ALTER SYSTEM"))
            }
            Statement::PushArchivelog { path, tenant } => {
                let tenant = tenant::find(&self.catalog, tenant)?;
                let outcome = self
                    .executor
                    .push_segment(&tenant, std::path::Path::new(path))?;
                let name = std::path::Path::new(path)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned());
                let detail = match outcome {
                    crate::executor::archive::PushOutcome::Skipped => Some(
                        "not archived: the round is not DOING and BINDING=OPTIONAL lets the \
                         source go on"
                            .to_string(),
                    ),
                    _ => None,
                };
                let batch = crate::views::rows(
                    &[
                        ("segment", datafusion::arrow::datatypes::DataType::Utf8),
                        ("status", datafusion::arrow::datatypes::DataType::Utf8),
                        ("detail", datafusion::arrow::datatypes::DataType::Utf8),
                    ],
                    vec![vec![name, Some(outcome.as_str().to_string()), detail]],
                )?;
                Ok(Outcome::Rows(batch))
            }
            Statement::GetArchivelog { name, tenant, to } => {
                let tenant = tenant::find(&self.catalog, tenant)?;
                self.executor
                    .get_archived_segment(&tenant, name, std::path::Path::new(to))?;
                Ok(Outcome::Done("ALTER SYSTEM"))
            }
            Statement::BackupBackupset {
                selector,
                tenant: tenant_name,
                dest,
            } => {
                let tenant = tenant::find_optional(&self.catalog, tenant_name.as_deref())?;
                let job_id = self.executor.start_backup_backupset(
                    &copy_choice(selector),
                    tenant.as_ref(),
                    dest.as_deref(),
                )?;
                Ok(Outcome::Job {
                    job_id,
                    wait: command.wait,
                })
            }
            Statement::CancelBackupBackupset => {
                self.executor
                    .cancel_copy(crate::catalog::jobs::JobKind::BackupBackupset)?;
                Ok(Outcome::Done("ALTER SYSTEM"))
            }
            Statement::CancelBackupBackuppiece => {
                self.executor
                    .cancel_copy(crate::catalog::jobs::JobKind::BackupBackuppiece)?;
                Ok(Outcome::Done("ALTER SYSTEM"))
            }
            Statement::BackupBackuppiece {
                selector,
                with_active,
                tenant: tenant_name,
                dest,
            } => {
                let tenant = tenant::find_optional(&self.catalog, tenant_name.as_deref())?;
                let job_id = self.executor.start_backup_backuppiece(
                    &copy_choice(selector),
                    *with_active,
                    tenant.as_ref(),
                    dest.as_deref(),
                )?;
                Ok(Outcome::Job {
                    job_id,
                    wait: command.wait,
                })
            }
            Statement::StopBackupBackupset => {
                self.executor.stop_backup_backupset()?;
                Ok(Outcome::Done("ALTER SYSTEM"))
            }
            Statement::StopBackupBackuppiece => Err(SqlError::wrong_state(
                "a piece copy has no graceful stop: use ALTER SYSTEM CANCEL BACKUP BACKUPPIECE",
            )
            .with_ob("OB_BACKUP_CANCEL_NOT_ALLOWED", 9049)
            .with_hint(
                "pieces already copied stay; issuing the copy again sends only what is missing",
            )),
            Statement::StartBackupArchivelog => {
                self.executor.start_backup_archivelog()?;
                Ok(Outcome::Done("ALTER SYSTEM"))
            }
            Statement::StopBackupArchivelog => {
                self.executor.stop_backup_archivelog()?;
                Ok(Outcome::Done("ALTER SYSTEM"))
            }
            Statement::CancelAllBackupForce => {
                self.executor.cancel_all_force()?;
                Ok(Outcome::Done("ALTER SYSTEM"))
            }
            Statement::WaitJob { job_id, timeout } => {
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
            Statement::CreateUser {
                name,
                password,
                role,
            } => user::create(&self.catalog, name, password, role.unwrap_or(Role::Monitor)),
            Statement::AlterUser {
                name,
                password,
                role,
            } => user::alter(&self.catalog, caller, name, password.as_deref(), *role),
            Statement::DropUser { name } => user::drop(&self.catalog, caller, name),
            other => Err(SqlError::not_supported(format!(
                "{} is not supported by this server yet",
                other.name()
            ))
            .with_hint("see docs/reference.md for the statements this release runs")),
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
        Statement::RestorePreview { .. } => Some(restore::preview_schema()),
        _ => None,
    }
}
