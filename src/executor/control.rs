//! Stopping data backups the way the DBA means it (SPEC §4.3): CANCEL (immediate), STOP
//! (graceful), SUSPEND and RESUME, and CANCEL ALL BACKUP FORCE. Each statement returns once its
//! request is durable; the job reaches its end state shortly after.

use std::sync::Arc;

use super::backup::BackupRun;
use super::{Executor, Interrupt, OB_CANCELED};
use crate::catalog::jobs::{JobChange, JobKind, JobRecord, StopMode, TaskChange};
use crate::catalog::status::{CopyStatus, JobStatus, Status, TaskStatus};
use crate::error::{SqlError, SqlResult};

fn nothing_running(what: &str) -> SqlError {
    SqlError::wrong_state(format!("no {what} is running"))
        .with_ob("OB_BACKUP_CANCEL_NOT_ALLOWED", 9049)
}

impl Executor {
    /// Backup jobs in `statuses` that cover any of `tenants` (all when `None`).
    fn backup_jobs(
        &self,
        statuses: &[JobStatus],
        tenants: Option<&[i64]>,
    ) -> SqlResult<Vec<JobRecord>> {
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

    /// `ALTER SYSTEM CANCEL BACKUP [TENANT = tl]`: immediate. A job that ends between the
    /// look-up and the move (its last task finishing) is left as it ended.
    pub fn cancel_backup(&self, tenants: Option<&[i64]>) -> SqlResult<Vec<i64>> {
        use JobStatus::*;
        let jobs = self.backup_jobs(&[Init, Doing, Suspending, Suspended], tenants)?;
        let mut canceled = Vec::new();
        for job in &jobs {
            let moved = if job.status == Status::Job(Suspended) {
                self.cancel_suspended(job)?
            } else {
                self.request_cancel(job.job_id)?
            };
            if moved {
                tracing::info!(job_id = job.job_id, "backup cancel requested");
                canceled.push(job.job_id);
            }
        }
        if canceled.is_empty() {
            return Err(nothing_running("backup"));
        }
        Ok(canceled)
    }

    /// A suspended job has no workers: it ends at once, its contexts and checkpoints released.
    /// Returns false when the job left SUSPENDED first (a RESUME won the race).
    fn cancel_suspended(&self, job: &JobRecord) -> SqlResult<bool> {
        let mut change = JobChange::canceled("canceled by user");
        change.stop_mode = Some(StopMode::Immediate);
        if !self
            .catalog
            .move_job(job.job_id, JobStatus::Canceled, &change)?
        {
            return Ok(false);
        }
        let canceled = TaskChange {
            result: Some(OB_CANCELED),
            comment: Some("canceled by user".into()),
            ..TaskChange::default()
        };
        for task in self.catalog.tasks_of(job.job_id)? {
            if self
                .catalog
                .move_task(task.task_id, TaskStatus::Canceled, &canceled)?
                && let Some(tenant) = self.catalog.tenant_by_id(task.tenant_id)?
                && let Ok(target) = self.backup_target(&tenant)
            {
                self.release_checkpoint(&target, &task);
            }
        }
        self.catalog.drop_contexts_of_job(job.job_id)?;
        self.announce_end(job.job_id);
        Ok(true)
    }

    /// `ALTER SYSTEM STOP BACKUP [TENANT = tl]`: graceful.
    pub fn stop_backup(&self, tenants: Option<&[i64]>) -> SqlResult<Vec<i64>> {
        let jobs = self.backup_jobs(&[JobStatus::Init, JobStatus::Doing], tenants)?;
        let mut stopped = Vec::new();
        for job in &jobs {
            if !self
                .catalog
                .set_stop_mode::<JobStatus>(job.job_id, StopMode::Graceful)?
            {
                continue;
            }
            if let Some(control) = self.control_of(job.job_id) {
                control.interrupt(Interrupt::Stop);
            }
            tracing::info!(job_id = job.job_id, "graceful stop requested");
            stopped.push(job.job_id);
        }
        if stopped.is_empty() {
            return Err(self.stop_refusal());
        }
        Ok(stopped)
    }

    /// STOP has no meaning for restores and validations: say so, and name CANCEL.
    fn stop_refusal(&self) -> SqlError {
        let busy = [
            (JobKind::Restore, "ALTER SYSTEM CANCEL RESTORE name"),
            (JobKind::Validate, "ALTER SYSTEM CANCEL VALIDATE"),
        ]
        .into_iter()
        .find_map(|(kind, cancel)| {
            let jobs = self
                .catalog
                .jobs_in(kind, &[JobStatus::Init, JobStatus::Doing])
                .ok()?;
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
        let jobs = self.backup_jobs(&[JobStatus::Init, JobStatus::Doing], tenants)?;
        let mut suspended = Vec::new();
        for job in &jobs {
            if self.suspend_job(job.job_id, Interrupt::Suspend)? {
                tracing::info!(job_id = job.job_id, "suspend requested");
                suspended.push(job.job_id);
            }
        }
        if suspended.is_empty() {
            return Err(nothing_running("backup"));
        }
        Ok(suspended)
    }

    /// Moves a running job to SUSPENDING (through DOING when its worker has not started it
    /// yet) and tells its workers why (`Suspend` by a user, `Shutdown` by the server); false
    /// when the job had moved on meanwhile.
    pub(crate) fn suspend_job(&self, job_id: i64, why: Interrupt) -> SqlResult<bool> {
        let none = JobChange::default();
        // A job still INIT is started first: SUSPENDING is reached from DOING only.
        self.catalog
            .move_job_from(job_id, JobStatus::Init, JobStatus::Doing, &none)?;
        if !self
            .catalog
            .move_job(job_id, JobStatus::Suspending, &none)?
        {
            return Ok(false);
        }
        if let Some(control) = self.control_of(job_id) {
            control.interrupt(why);
        }
        Ok(true)
    }

    /// `ALTER SYSTEM RESUME BACKUP [TENANT = tl]`: every suspended task goes on from its
    /// checkpoint, RESTART_PASS + 1.
    pub fn resume_backup(self: &Arc<Self>, tenants: Option<&[i64]>) -> SqlResult<Vec<i64>> {
        let jobs = self.backup_jobs(&[JobStatus::Suspended], tenants)?;
        let mut resumed = Vec::new();
        for job in &jobs {
            if self.resume_job(job, "resumed from checkpoint")? {
                resumed.push(job.job_id);
            }
        }
        if resumed.is_empty() {
            return Err(SqlError::wrong_state("no suspended backup to resume"));
        }
        Ok(resumed)
    }

    /// Goes on with a suspended job: SUSPENDED → DOING with RESTART_PASS + 1 on the job and its
    /// tasks, then its suspended tasks run from their checkpoints. False when the job had left
    /// SUSPENDED first (a cancel won the race).
    pub(crate) fn resume_job(self: &Arc<Self>, job: &JobRecord, comment: &str) -> SqlResult<bool> {
        let pass = job.restart_pass + 1;
        let resumed = JobChange {
            restart_pass: Some(pass),
            comment: Some(comment.into()),
            ..JobChange::default()
        };
        if !self.catalog.move_job_from(
            job.job_id,
            JobStatus::Suspended,
            JobStatus::Doing,
            &resumed,
        )? {
            return Ok(false);
        }
        let mut work = Vec::new();
        for task in self.catalog.tasks_of(job.job_id)? {
            if task.status != Status::Job(TaskStatus::Suspended) {
                continue;
            }
            let target = self
                .catalog
                .tenant_by_id(task.tenant_id)?
                .ok_or_else(|| {
                    SqlError::undefined(format!("tenant {} no longer exists", task.tenant_id))
                })
                .and_then(|tenant| self.backup_target(&tenant));
            let target = match target {
                Ok(target) => target,
                Err(e) => {
                    // The job is DOING now: it must not be left there without a worker.
                    self.end_job(
                        job.job_id,
                        JobStatus::Failed,
                        JobChange::failed(e.code, format!("cannot resume: {}", e.message)),
                    );
                    self.announce_end(job.job_id);
                    return Err(e);
                }
            };
            if let Some(context) = self.catalog.context_of_task(task.task_id)? {
                self.catalog.claim_context(&context.context_id)?;
            }
            self.catalog.set_task_restart_pass(task.task_id, pass)?;
            work.push((task, target));
        }
        tracing::info!(
            job_id = job.job_id,
            tasks = work.len(),
            pass,
            "backup resumed"
        );
        self.spawn_backup(BackupRun {
            job_id: job.job_id,
            work,
            incremental: job.backup_type.as_deref() == Some("INC"),
            plus_archivelog: job.plus_archivelog,
            resume: true,
        });
        Ok(true)
    }

    /// `ALTER SYSTEM CANCEL ALL BACKUP FORCE`: every backup-related job of every kind ends now,
    /// in the catalog only, without waiting for workers; new work can start at once.
    pub fn cancel_all_force(&self) -> SqlResult<usize> {
        let jobs = self.catalog.unfinished_jobs()?;
        let why = "canceled by CANCEL ALL BACKUP FORCE";
        let task_change = TaskChange {
            result: Some(OB_CANCELED),
            comment: Some(why.into()),
            ..TaskChange::default()
        };
        for job in &jobs {
            // The catalog first, the workers after: a worker that notices the cancel finds its
            // job ended already and leaves the force's words in place.
            let control = self.control_of(job.job_id);
            // Copy jobs speak OceanBase 3.x words.
            let copy = job.kind.speaks_copy_words();
            for task in self.catalog.tasks_of(job.job_id)? {
                if copy {
                    self.catalog
                        .move_task(task.task_id, CopyStatus::Cancel, &task_change)?;
                } else {
                    self.catalog
                        .move_task(task.task_id, TaskStatus::Canceled, &task_change)?;
                }
            }
            self.catalog.drop_contexts_of_job(job.job_id)?;
            let change = JobChange::canceled(why);
            if copy {
                self.end_job(job.job_id, CopyStatus::Cancel, change);
            } else {
                self.end_job(job.job_id, JobStatus::Canceled, change);
            }
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
