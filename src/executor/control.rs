//! Stopping data backups the way the DBA means it (SPEC §4.3): CANCEL (immediate), STOP
//! (graceful), SUSPEND and RESUME, and CANCEL ALL BACKUP FORCE. Each statement returns once its
//! request is durable; the job reaches its end state shortly after.

use std::sync::Arc;

use super::backup::BackupRun;
use super::state::{JobStatus, TaskStatus};
use super::{Executor, Interrupt, OB_CANCELED};
use crate::catalog::Value;
use crate::catalog::jobs::{JobKind, JobRecord};
use crate::error::{SqlError, SqlResult, sqlstate};

fn nothing_running(what: &str) -> SqlError {
    SqlError::wrong_state(format!("no {what} is running"))
        .with_ob("OB_BACKUP_CANCEL_NOT_ALLOWED", 9049)
}

impl Executor {
    /// Backup jobs in `statuses` that cover any of `tenants` (all when `None`).
    fn backup_jobs(&self, statuses: &[&str], tenants: Option<&[i64]>) -> SqlResult<Vec<JobRecord>> {
        let jobs = self.catalog.jobs_in(JobKind::Backup, statuses)?;
        let Some(tenants) = tenants else {
            return Ok(jobs);
        };
        let mut out = Vec::new();
        for job in jobs {
            if self
                .catalog
                .tasks_of(job.job_id)?
                .iter()
                .any(|t| tenants.contains(&t.tenant_id))
            {
                out.push(job);
            }
        }
        Ok(out)
    }

    /// Moves a job's status through the state machine and records it.
    fn move_job(&self, job: &JobRecord, to: JobStatus, fields: &[(&str, Value)]) -> SqlResult<()> {
        let from = JobStatus::parse(&job.status).unwrap_or(JobStatus::Doing);
        from.transition(to)
            .map_err(|e| SqlError::wrong_state(format!("job {}: {e}", job.job_id)))?;
        let mut all = vec![("status", Value::from(to.as_str()))];
        all.extend(fields.iter().map(|(k, v)| (*k, v.clone())));
        self.catalog.set_job_fields(job.job_id, &all)?;
        Ok(())
    }

    /// `ALTER SYSTEM CANCEL BACKUP [TENANT = tl]`: immediate.
    pub fn cancel_backup(&self, tenants: Option<&[i64]>) -> SqlResult<Vec<i64>> {
        let jobs = self.backup_jobs(&["INIT", "DOING", "SUSPENDING", "SUSPENDED"], tenants)?;
        if jobs.is_empty() {
            return Err(nothing_running("backup"));
        }
        for job in &jobs {
            if job.status == JobStatus::Suspended.as_str() {
                self.cancel_suspended(job)?;
                continue;
            }
            self.move_job(
                job,
                JobStatus::Canceling,
                &[("stop_mode", "IMMEDIATE".into())],
            )?;
            if let Some(control) = self.control_of(job.job_id) {
                control.interrupt(Interrupt::Cancel);
            }
            tracing::info!(job_id = job.job_id, "backup cancel requested");
        }
        Ok(jobs.iter().map(|j| j.job_id).collect())
    }

    /// A suspended job has no workers: it ends at once, its contexts and checkpoints released.
    fn cancel_suspended(&self, job: &JobRecord) -> SqlResult<()> {
        for task in self.catalog.tasks_of(job.job_id)? {
            if !TaskStatus::parse(&task.status).is_some_and(|s| s.is_end()) {
                self.catalog.end_task(
                    task.task_id,
                    TaskStatus::Canceled.as_str(),
                    OB_CANCELED,
                    "canceled by user",
                )?;
                if let Ok(Some(tenant)) = self.catalog.tenant_by_id(task.tenant_id)
                    && let Ok(target) = self.backup_target(&tenant)
                {
                    self.release_checkpoint(&target, &task);
                }
            }
        }
        self.catalog.drop_contexts_of_job(job.job_id)?;
        self.catalog
            .set_job_fields(job.job_id, &[("stop_mode", "IMMEDIATE".into())])?;
        self.end_job(
            job,
            JobStatus::Canceled,
            OB_CANCELED,
            Some(sqlstate::QUERY_CANCELED),
            "canceled by user",
        );
        let _ = self.ended.send(job.job_id);
        Ok(())
    }

    /// `ALTER SYSTEM STOP BACKUP [TENANT = tl]`: graceful.
    pub fn stop_backup(&self, tenants: Option<&[i64]>) -> SqlResult<Vec<i64>> {
        let jobs = self.backup_jobs(&["INIT", "DOING"], tenants)?;
        if jobs.is_empty() {
            return Err(self.stop_refusal());
        }
        for job in &jobs {
            self.catalog
                .set_job_fields(job.job_id, &[("stop_mode", "GRACEFUL".into())])?;
            if let Some(control) = self.control_of(job.job_id) {
                control.interrupt(Interrupt::Stop);
            }
            tracing::info!(job_id = job.job_id, "graceful stop requested");
        }
        Ok(jobs.iter().map(|j| j.job_id).collect())
    }

    /// STOP has no meaning for restores and validations: say so, and name CANCEL.
    fn stop_refusal(&self) -> SqlError {
        let busy = [
            (JobKind::Restore, "ALTER SYSTEM CANCEL RESTORE name"),
            (JobKind::Validate, "ALTER SYSTEM CANCEL VALIDATE"),
        ]
        .into_iter()
        .find_map(|(kind, cancel)| {
            let jobs = self.catalog.jobs_in(kind, &["INIT", "DOING"]).ok()?;
            jobs.first().map(|j| (kind, j.job_id, cancel))
        });
        match busy {
            Some((kind, job_id, cancel)) => SqlError::wrong_state(format!(
                "no data backup is running; a graceful stop applies to data backups and set copies, \
                 not to the running {} job {job_id}: use {cancel}",
                kind.as_str().to_ascii_lowercase()
            ))
            .with_ob("OB_BACKUP_CANCEL_NOT_ALLOWED", 9049),
            None => nothing_running("backup"),
        }
    }

    /// `ALTER SYSTEM SUSPEND BACKUP [TENANT = tl]`: interrupt now, keep contexts.
    pub fn suspend_backup(&self, tenants: Option<&[i64]>) -> SqlResult<Vec<i64>> {
        let jobs = self.backup_jobs(&["INIT", "DOING"], tenants)?;
        if jobs.is_empty() {
            return Err(nothing_running("backup"));
        }
        for job in &jobs {
            if job.status == JobStatus::Init.as_str() {
                self.move_job(job, JobStatus::Doing, &[])?;
            }
            let job = self.catalog.job(job.job_id)?.unwrap_or_else(|| job.clone());
            self.move_job(&job, JobStatus::Suspending, &[])?;
            if let Some(control) = self.control_of(job.job_id) {
                control.interrupt(Interrupt::Suspend);
            }
            tracing::info!(job_id = job.job_id, "suspend requested");
        }
        Ok(jobs.iter().map(|j| j.job_id).collect())
    }

    /// `ALTER SYSTEM RESUME BACKUP [TENANT = tl]`: every suspended task goes on from its
    /// checkpoint, RESTART_PASS + 1.
    pub fn resume_backup(self: &Arc<Self>, tenants: Option<&[i64]>) -> SqlResult<Vec<i64>> {
        let jobs = self.backup_jobs(&["SUSPENDED"], tenants)?;
        if jobs.is_empty() {
            return Err(SqlError::wrong_state("no suspended backup to resume"));
        }
        for job in &jobs {
            self.resume_job(job)?;
        }
        Ok(jobs.iter().map(|j| j.job_id).collect())
    }

    pub(crate) fn resume_job(self: &Arc<Self>, job: &JobRecord) -> SqlResult<()> {
        let mut work = Vec::new();
        for task in self.catalog.tasks_of(job.job_id)? {
            if task.status != TaskStatus::Suspended.as_str() {
                continue;
            }
            let tenant = self.catalog.tenant_by_id(task.tenant_id)?.ok_or_else(|| {
                SqlError::undefined(format!("tenant {} no longer exists", task.tenant_id))
            })?;
            if let Some(context) = self.catalog.context_of_task(task.task_id)? {
                self.catalog.claim_context(&context.context_id)?;
            }
            work.push((task, self.backup_target(&tenant)?));
        }
        self.move_job(
            job,
            JobStatus::Doing,
            &[
                ("restart_pass", (job.restart_pass + 1).into()),
                ("comment", "resumed from checkpoint".into()),
            ],
        )?;
        tracing::info!(job_id = job.job_id, tasks = work.len(), "backup resumed");
        self.spawn_backup(BackupRun {
            job_id: job.job_id,
            work,
            incremental: job.backup_type.as_deref() == Some("INC"),
            plus_archivelog: job.plus_archivelog,
            resume: true,
        });
        Ok(())
    }

    /// `ALTER SYSTEM CANCEL ALL BACKUP FORCE`: every backup-related job of every kind ends now,
    /// in the catalog only, without waiting for workers; new work can start at once.
    pub fn cancel_all_force(&self) -> SqlResult<usize> {
        let jobs = self.catalog.unfinished_jobs()?;
        for job in &jobs {
            // The catalog first, the workers after: a worker that notices the cancel finds its
            // job ended already and leaves the force's words in place.
            let control = self.control_of(job.job_id);
            // Copy jobs speak OceanBase 3.x words.
            let canceled = if job.kind == JobKind::BackupBackupset.as_str() {
                super::state::CopyStatus::Cancel.as_str()
            } else {
                JobStatus::Canceled.as_str()
            };
            for task in self.catalog.tasks_of(job.job_id)? {
                self.catalog.end_task(
                    task.task_id,
                    canceled,
                    OB_CANCELED,
                    "canceled by CANCEL ALL BACKUP FORCE",
                )?;
            }
            self.catalog.drop_contexts_of_job(job.job_id)?;
            self.catalog.end_job(
                job.job_id,
                canceled,
                OB_CANCELED,
                Some(sqlstate::QUERY_CANCELED),
                "canceled by CANCEL ALL BACKUP FORCE",
            )?;
            if let Some(control) = control {
                control.interrupt(Interrupt::Cancel);
            }
            self.finished(job.job_id);
        }
        // The continuous copy of archive log ends too.
        self.catalog.move_log_copies(&["DOING", "PAUSED"], "STOP")?;
        self.stop_log_copier();
        tracing::warn!(jobs = jobs.len(), "CANCEL ALL BACKUP FORCE");
        Ok(jobs.len())
    }
}
