//! Restartable contexts (SPEC §4.4): what an interrupted data backup task keeps so that it can go
//! on from its checkpoint, the rules that decide whether and when it restarts by itself, and
//! `RESTART` / `DELETE BACKUP CONTEXT`.

use std::sync::Arc;
use std::time::Duration;

use super::backup::BackupRun;
use super::{Executor, OB_CANCELED};
use crate::catalog::contexts::{NewContext, Reason};
use crate::catalog::jobs::{
    JobChange, JobKind, JobRecord, NewJob, NewTask, TaskChange, TaskRecord,
};
use crate::catalog::parameters::parse_size;
use crate::catalog::status::{JobStatus, Status, TaskStatus};
use crate::catalog::{mask_secrets, now_micros};
use crate::error::{SqlError, SqlResult};

/// How often due automatic restarts are looked for.
const SCHEDULER_TICK: Duration = Duration::from_millis(500);

impl Executor {
    /// Keeps a context for an interrupted task and decides, by the rules of SPEC §4.4, whether it
    /// is restartable and when it restarts by itself.
    pub(crate) fn keep_context(
        &self,
        job: &JobRecord,
        task: &TaskRecord,
        reason: Reason,
    ) -> SqlResult<String> {
        let catalog = &self.catalog;
        let (bytes, files, time) = catalog.task_checkpoint_of(task.task_id)?;
        let min_bytes = catalog
            .parameter(task.tenant_id, "backup_checkpoint_min_bytes")?
            .and_then(|v| parse_size(&v))
            .unwrap_or(32 << 20) as i64;
        let tenant = catalog.tenant_by_id(task.tenant_id)?;
        let source_there = tenant
            .as_ref()
            .and_then(|t| t.tree())
            .is_some_and(|p| p.is_dir());
        // A suspend (by a user or by the shutdown) keeps whatever was stored: the job waits
        // SUSPENDED to go on. A failure keeps a context only past the minimum.
        let suspended = matches!(reason, Reason::Suspended | Reason::ServerShutdown);
        let restartable = source_there && (suspended || bytes >= min_bytes);
        let auto = catalog
            .parameter(task.tenant_id, "backup_checkpoint_restart")?
            .as_deref()
            != Some("false");
        let max_attempts = catalog
            .parameter(task.tenant_id, "backup_restart_max_attempts")?
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(1);
        let delay = self.duration_parameter(
            task.tenant_id,
            "backup_restart_delay",
            Duration::from_secs(120),
        );
        let next = (!suspended && restartable && auto && job.restart_pass < max_attempts)
            .then(|| now_micros() + delay.as_micros() as i64);
        let set_id = task.backup_set_id.unwrap_or_default();
        let id = catalog.keep_context(&NewContext {
            job_id: job.job_id,
            task_id: task.task_id,
            tenant_id: task.tenant_id,
            path: task.path.clone().unwrap_or_default(),
            snapshot_name: crate::engine::checkpoint::checkpoint_object_name(
                task.tenant_id,
                set_id,
            ),
            restartable,
            restart_pass: job.restart_pass,
            bytes_done: bytes,
            files_done: files,
            checkpoint_time: time,
            reason,
            attempts: job.restart_pass,
            next_restart_time: next,
        })?;
        tracing::info!(job_id = job.job_id, task_id = task.task_id, context_id = %id, reason = reason.as_str(),
            restartable, bytes_done = bytes, "restartable context kept");
        Ok(id)
    }

    /// `ALTER SYSTEM RESTART BACKUP CONTEXT 'id'`: go on with an interrupted task from its
    /// checkpoint. Returns the job that goes on with it.
    pub fn restart_context(self: &Arc<Self>, id: &str) -> SqlResult<i64> {
        let context = self.catalog.context(id)?.ok_or_else(|| {
            SqlError::undefined(format!("restartable context {id} does not exist"))
        })?;
        if context.busy {
            return Err(SqlError::wrong_state(format!(
                "context {id} is busy: its task is running"
            )));
        }
        if !context.restartable {
            return Err(SqlError::wrong_state(format!(
                "context {id} is not restartable: its task stored {} bytes, less than \
                 backup_checkpoint_min_bytes, or its source is gone",
                context.bytes_done
            ))
            .with_hint(
                "run the backup again, or drop the context with ALTER SYSTEM DELETE BACKUP CONTEXT",
            ));
        }
        let job = self
            .catalog
            .job(context.job_id)?
            .ok_or_else(|| SqlError::internal("context without its job"))?;
        if job.status == Status::Job(JobStatus::Suspended) {
            if self.resume_job(&job, "resumed from checkpoint")? {
                return Ok(job.job_id);
            }
            return Err(SqlError::wrong_state(format!(
                "job {} left SUSPENDED while its context was restarted",
                job.job_id
            )));
        }
        let tenant = self
            .catalog
            .tenant_by_id(context.tenant_id)?
            .ok_or_else(|| {
                SqlError::undefined(format!("tenant {} no longer exists", context.tenant_id))
            })?;
        if let Some(running) = self.catalog.backup_running_for(tenant.id)? {
            return Err(SqlError::wrong_state(format!(
                "tenant {} already has a data backup running (job {running})",
                tenant.name
            ))
            .with_ob("OB_BACKUP_IN_PROGRESS", 9041));
        }
        let old_task = self
            .catalog
            .tasks_of(job.job_id)?
            .into_iter()
            .find(|t| t.task_id == context.task_id)
            .ok_or_else(|| SqlError::internal("context without its task"))?;
        let target = self.backup_target(&tenant)?;
        if !self.catalog.claim_context(id)? {
            return Err(SqlError::wrong_state(format!(
                "context {id} is busy: its task is running"
            )));
        }
        let restart_pass = context.restart_pass + 1;
        let new_job = NewJob {
            tenant_id: tenant.id,
            job_level: "USER_TENANT".into(),
            executor_tenant_id: tenant.id.to_string(),
            backup_type: job.backup_type.clone(),
            plus_archivelog: job.plus_archivelog,
            description: job.description.clone(),
            path: Some(mask_secrets(&target.dest_uri)),
            restart_pass,
            initiator_job_id: Some(job.job_id),
            comment: Some("resumed from checkpoint".into()),
            ..NewJob::default()
        };
        let task = NewTask {
            tenant_id: tenant.id,
            backup_set_id: old_task.backup_set_id,
            path: Some(mask_secrets(&target.dest_uri)),
            ..NewTask::default()
        };
        let (job_id, tasks) = self
            .catalog
            .create_job(JobKind::Backup, &new_job, &[task])?;
        self.catalog
            .move_context(id, job_id, tasks[0].task_id, restart_pass)?;
        tracing::info!(job_id, resumes = job.job_id, context_id = %id, restart_pass, "backup resumed from checkpoint");
        self.spawn_backup(BackupRun {
            job_id,
            work: tasks.into_iter().map(|t| (t, target.clone())).collect(),
            incremental: job.backup_type.as_deref() == Some("INC"),
            plus_archivelog: job.plus_archivelog,
            resume: true,
        });
        Ok(job_id)
    }

    /// `ALTER SYSTEM DELETE BACKUP CONTEXT 'id'`: drop a context and release its checkpoint;
    /// the task's partial data becomes garbage for cleanup.
    pub fn delete_context(&self, id: &str) -> SqlResult<()> {
        let context = self.catalog.context(id)?.ok_or_else(|| {
            SqlError::undefined(format!("restartable context {id} does not exist"))
        })?;
        if context.busy {
            return Err(SqlError::wrong_state(format!(
                "context {id} is busy: its task is running"
            ))
            .with_hint("cancel the backup first (ALTER SYSTEM CANCEL BACKUP)"));
        }
        let job = self.catalog.job(context.job_id)?;
        let task = self
            .catalog
            .tasks_of(context.job_id)?
            .into_iter()
            .find(|t| t.task_id == context.task_id);
        // Between a task saving its context and its job reaching SUSPENDED, deleting the context
        // would leave a suspended job that can never go on.
        let settling = job
            .as_ref()
            .is_some_and(|j| !j.status.is_end() && j.status != Status::Job(JobStatus::Suspended))
            && task
                .as_ref()
                .is_some_and(|t| t.status != Status::Job(TaskStatus::Suspended));
        if settling {
            return Err(SqlError::wrong_state(format!(
                "context {id} is being saved: its job is still stopping"
            ))
            .with_hint("try again once the job shows SUSPENDED or has ended"));
        }
        self.catalog.release_context(id)?;
        if let (Some(task), Some(tenant)) = (&task, self.catalog.tenant_by_id(context.tenant_id)?)
            && let Ok(target) = self.backup_target(&tenant)
        {
            self.release_checkpoint(&target, task);
        }
        // A suspended job whose last suspended task lost its context can no longer go on.
        if let (Some(job), Some(task)) = (job, task)
            && job.status == Status::Job(JobStatus::Suspended)
            && self.catalog.move_task(
                task.task_id,
                TaskStatus::Canceled,
                &TaskChange {
                    result: Some(OB_CANCELED),
                    comment: Some("its context was deleted by user".into()),
                    ..TaskChange::default()
                },
            )?
        {
            let still_suspended = self
                .catalog
                .tasks_of(job.job_id)?
                .iter()
                .any(|t| t.status == Status::Job(TaskStatus::Suspended));
            if !still_suspended {
                self.end_job(
                    job.job_id,
                    JobStatus::Canceled,
                    JobChange::canceled(
                        "canceled: the contexts of its suspended tasks were deleted",
                    ),
                );
            }
        }
        tracing::info!(context_id = %id, "restartable context deleted");
        Ok(())
    }

    /// Restarts contexts whose automatic restart is due, for as long as the server runs.
    pub fn start_restart_scheduler(self: &Arc<Self>) {
        self.spawn_ticker(SCHEDULER_TICK, |executor| {
            let due = match executor.catalog.contexts_due(now_micros()) {
                Ok(due) => due,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot look for due restarts");
                    return;
                }
            };
            for context in due {
                if let Err(e) = executor.restart_context(&context.context_id) {
                    tracing::warn!(context_id = %context.context_id, error = %e, "automatic restart did not start");
                    if let Err(e) = executor.catalog.clear_restart_time(&context.context_id) {
                        tracing::error!(context_id = %context.context_id, error = %e, "cannot clear a failed restart's time");
                    }
                }
            }
        });
    }
}
