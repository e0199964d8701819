//! Applying backup-backup: copies of sets and pieces, and the continuous copy of log.

use super::{Caller, Control, Outcome};
use crate::error::{SqlError, SqlResult};
use crate::sql::ast::BackupBackupStatement;

impl Control {
    /// Applies a statement of this family for `caller`; `wait` is its trailing `WAIT`.
    pub(super) fn apply_backup_backup(
        &self,
        _caller: &Caller,
        statement: &BackupBackupStatement,
        wait: bool,
    ) -> SqlResult<Outcome> {
        match statement {
            BackupBackupStatement::BackupBackupset {
                selector,
                tenant: tenant_name,
                dest,
            } => {
                let tenant = super::tenant::find_optional(&self.catalog, tenant_name.as_deref())?;
                let started = self.executor.start_backup_backupset(
                    &super::copy_choice(selector),
                    tenant.as_ref(),
                    dest.as_deref(),
                )?;
                Ok(copy_outcome(started, wait))
            }
            BackupBackupStatement::CancelBackupBackupset => {
                self.executor
                    .cancel_copy(crate::catalog::jobs::JobKind::BackupBackupset)?;
                Ok(Outcome::Done("ALTER SYSTEM"))
            }
            BackupBackupStatement::CancelBackupBackuppiece => {
                self.executor
                    .cancel_copy(crate::catalog::jobs::JobKind::BackupBackuppiece)?;
                Ok(Outcome::Done("ALTER SYSTEM"))
            }
            BackupBackupStatement::BackupBackuppiece {
                selector,
                with_active,
                tenant: tenant_name,
                dest,
            } => {
                let tenant = super::tenant::find_optional(&self.catalog, tenant_name.as_deref())?;
                let started = self.executor.start_backup_backuppiece(
                    &super::copy_choice(selector),
                    *with_active,
                    tenant.as_ref(),
                    dest.as_deref(),
                )?;
                Ok(copy_outcome(started, wait))
            }
            BackupBackupStatement::StopBackupBackupset => {
                self.executor.stop_backup_backupset()?;
                Ok(Outcome::Done("ALTER SYSTEM"))
            }
            BackupBackupStatement::StopBackupBackuppiece => Err(SqlError::wrong_state(
                "a piece copy has no graceful stop: use ALTER SYSTEM CANCEL BACKUP BACKUPPIECE",
            )
            .with_ob("OB_BACKUP_CANCEL_NOT_ALLOWED", 9049)
            .with_hint(
                "pieces already copied stay; issuing the copy again sends only what is missing",
            )),
            BackupBackupStatement::StartBackupArchivelog => {
                self.executor.start_backup_archivelog()?;
                Ok(Outcome::Done("ALTER SYSTEM"))
            }
            BackupBackupStatement::StopBackupArchivelog => {
                self.executor.stop_backup_archivelog()?;
                Ok(Outcome::Done("ALTER SYSTEM"))
            }
        }
    }
}

/// A copy with nothing to copy says so in a NOTICE; its job of no tasks ends at once.
fn copy_outcome(started: crate::executor::copy::CopyStarted, wait: bool) -> Outcome {
    match started.nothing {
        Some(reason) => Outcome::Notice {
            job_id: started.job_id,
            wait,
            notice: format!("{reason}; job {} recorded with 0 tasks", started.job_id),
        },
        None => Outcome::Job {
            job_id: started.job_id,
            wait,
        },
    }
}
