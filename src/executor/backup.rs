//! Data backup jobs: one task per tenant, processed in tenant-id order by at most
//! `backup_concurrency` workers; each task backs its tenant up into its destination's
//! repository, saving checkpoints as it goes, and records the set. Interrupts (SPEC §4.3) and
//! failures end tasks with or without a restartable context.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use tracing::Instrument;

use super::{
    Executor, Interrupt, JobControl, OB_CANCELED, OB_ERROR, failure_comment, task_figures,
    watch_progress,
};
use crate::catalog::contexts::Reason;
use crate::catalog::jobs::{
    JobChange, JobKind, NewBackupSet, NewJob, NewTask, TaskChange, TaskRecord,
};
use crate::catalog::parameters::parse_duration;
use crate::catalog::status::{JobStatus, TaskStatus};
use crate::catalog::tenants::{Tenant, TenantKind};
use crate::catalog::{Catalog, mask_secrets, now_micros};
use crate::engine::{self, BackupRequest, EngineError, Progress};
use crate::error::{SqlError, SqlResult, SqlState, sqlstate};

/// How many times a retryable failure is retried before the task fails (SPEC §4.5).
const RETRIES: u32 = 3;

/// What `ALTER SYSTEM BACKUP ...` asks for.
#[derive(Debug, Clone)]
pub struct BackupSpec {
    pub tenants: Vec<Tenant>,
    /// `DATABASE`: the job is cluster-level even with one tenant.
    pub cluster: bool,
    pub incremental: bool,
    pub plus_archivelog: bool,
    pub description: Option<String>,
}

/// A task's tenant and where its backup goes.
#[derive(Debug, Clone)]
pub struct Target {
    pub tenant: Tenant,
    pub dest_uri: String,
}

/// The work of one run of a backup job: its tasks still to do, and whether they go on from
/// checkpoints.
pub struct BackupRun {
    pub job_id: i64,
    pub work: Vec<(TaskRecord, Target)>,
    pub incremental: bool,
    pub plus_archivelog: bool,
    pub resume: bool,
}

/// How a task ended.
enum TaskEnd {
    Completed,
    /// Never started (the job was stopped, cancelled or suspended first).
    NotStarted,
    Canceled,
    Suspended,
    /// Interrupted by the server's shutdown: suspended, to resume at the next start.
    ShutDown,
    Failed {
        code: SqlState,
        comment: String,
    },
}

fn in_progress(tenant: &Tenant, job_id: i64) -> SqlError {
    SqlError::wrong_state(format!(
        "tenant {} already has a data backup running (job {job_id})",
        tenant.name
    ))
    .with_ob("OB_BACKUP_IN_PROGRESS", 9041)
    .with_hint("wait for it (ALTER SYSTEM WAIT JOB n) or cancel it (ALTER SYSTEM CANCEL BACKUP)")
}

impl Executor {
    /// Where a tenant's data backups go.
    pub fn backup_target(&self, tenant: &Tenant) -> SqlResult<Target> {
        let dest_uri = self
            .catalog
            .parameter(tenant.id, "data_backup_dest")?
            .ok_or_else(|| {
                SqlError::wrong_state(format!(
                    "no DATA_BACKUP_DEST is set for tenant {}",
                    tenant.name
                ))
                .with_hint("ALTER SYSTEM SET DATA_BACKUP_DEST = 'file:///path'")
            })?;
        Ok(Target {
            tenant: tenant.clone(),
            dest_uri,
        })
    }

    /// Records the job and its tasks and starts them; returns once the job is durable.
    pub fn start_backup(self: &Arc<Self>, spec: BackupSpec) -> SqlResult<i64> {
        let mut targets = Vec::new();
        for tenant in &spec.tenants {
            if let Some(job_id) = self.catalog.backup_running_for(tenant.id)? {
                return Err(in_progress(tenant, job_id));
            }
            targets.push(self.backup_target(tenant)?);
        }
        targets.sort_by_key(|t| t.tenant.id);
        let single = targets.len() == 1 && !spec.cluster;
        let job = NewJob {
            tenant_id: if single {
                targets[0].tenant.id
            } else {
                crate::catalog::SYS_TENANT_ID
            },
            job_level: if single { "USER_TENANT" } else { "CLUSTER" }.into(),
            executor_tenant_id: targets
                .iter()
                .map(|t| t.tenant.id.to_string())
                .collect::<Vec<_>>()
                .join(","),
            backup_type: Some(if spec.incremental { "INC" } else { "FULL" }.into()),
            plus_archivelog: spec.plus_archivelog,
            description: spec.description.clone(),
            path: single.then(|| mask_secrets(&targets[0].dest_uri)),
            encryption_mode: targets
                .iter()
                .map(|t| super::destination::encryption_mode(&t.dest_uri))
                .find(|mode| *mode != "NONE")
                .map(str::to_string),
            ..NewJob::default()
        };
        let tasks: Vec<NewTask> = targets
            .iter()
            .map(|t| NewTask {
                tenant_id: t.tenant.id,
                allocate_set: true,
                path: Some(mask_secrets(&t.dest_uri)),
                ..NewTask::default()
            })
            .collect();
        let (job_id, records) = self.catalog.create_job(JobKind::Backup, &job, &tasks)?;
        tracing::info!(job_id, tenants = %job.executor_tenant_id, "data backup job created");
        self.spawn_backup(BackupRun {
            job_id,
            work: records.into_iter().zip(targets).collect(),
            incremental: spec.incremental,
            plus_archivelog: spec.plus_archivelog,
            resume: false,
        });
        Ok(job_id)
    }

    /// Runs a backup job's remaining tasks in the background.
    pub fn spawn_backup(self: &Arc<Self>, run: BackupRun) {
        let control = self.register(run.job_id);
        let executor = self.clone();
        self.spawn_job(run.job_id, async move {
            let job_id = run.job_id;
            executor.run_backup_job(run, control).await;
            executor.finished(job_id);
        });
    }

    async fn run_backup_job(self: &Arc<Self>, run: BackupRun, control: Arc<JobControl>) {
        let job_id = run.job_id;
        // A resumed job is DOING already; a new one moves from INIT.
        self.start_job(job_id);
        let limit = self.duration_parameter(
            crate::catalog::SYS_TENANT_ID,
            "backup_max_run_time",
            Duration::ZERO,
        );
        if !limit.is_zero() {
            let watched = control.clone();
            tokio::spawn(async move {
                tokio::time::sleep(limit).await;
                watched.interrupt(Interrupt::MaxRunTime);
            });
        }
        if let Some(hold) = held_jobs() {
            // Test facility (tests/faults.rs): the job waits before its first task.
            tokio::select! {
                _ = tokio::time::sleep(hold) => {}
                _ = control.cancel.cancelled() => {}
            }
        }
        let permits = Arc::new(Semaphore::new(self.concurrency()));
        let mut running = Vec::new();
        let mut ends = Vec::new();
        for (task, target) in run.work {
            // Tasks start in tenant-id order: each waits for a worker before the next is looked at.
            let permit = permits
                .clone()
                .acquire_owned()
                .await
                .expect("semaphore never closes");
            if control.interrupted().is_some() {
                self.end_unstarted_task(&task, &target, &control);
                ends.push(TaskEnd::NotStarted);
                continue;
            }
            let executor = self.clone();
            let control = control.clone();
            let (incremental, plus_archivelog, resume) =
                (run.incremental, run.plus_archivelog, run.resume);
            // Every line the task logs names its job, task and tenant, on whichever thread it
            // runs (a span entered across awaits would not follow the task between threads).
            let span = tracing::info_span!(
                "backup_task",
                job_id = task.job_id,
                task_id = task.task_id,
                tenant = %target.tenant.name
            );
            running.push(tokio::spawn(
                async move {
                    let end = executor
                        .run_backup_task(
                            &task,
                            &target,
                            incremental,
                            plus_archivelog,
                            resume,
                            &control,
                        )
                        .await;
                    drop(permit);
                    end
                }
                .instrument(span),
            ));
        }
        for handle in running {
            ends.push(handle.await.unwrap_or_else(|e| TaskEnd::Failed {
                code: sqlstate::INTERNAL_ERROR,
                comment: format!("task panicked: {e}"),
            }));
        }
        self.finish_backup_job(job_id, &control, &ends);
    }

    fn end_unstarted_task(&self, task: &TaskRecord, target: &Target, control: &JobControl) {
        let (to, result, comment, reason) = match control.interrupted() {
            Some(Interrupt::Suspend) => (
                TaskStatus::Suspended,
                0,
                "suspended before it started",
                Reason::Suspended,
            ),
            Some(Interrupt::Shutdown) => (
                TaskStatus::Suspended,
                0,
                "SERVER_SHUTDOWN: suspended by the server's shutdown before it started",
                Reason::ServerShutdown,
            ),
            Some(Interrupt::Stop) => (
                TaskStatus::Canceled,
                OB_CANCELED,
                "not started: the job was stopped gracefully",
                Reason::Failed,
            ),
            _ => (
                TaskStatus::Canceled,
                OB_CANCELED,
                "canceled by user",
                Reason::Failed,
            ),
        };
        let change = TaskChange {
            result: Some(result),
            comment: Some(comment.into()),
            ..TaskChange::default()
        };
        match self.catalog.move_task(task.task_id, to, &change) {
            Ok(true) if to == TaskStatus::Suspended => self.keep_context_of(task, reason),
            Ok(_) => {}
            Err(e) => {
                tracing::error!(task_id = task.task_id, tenant = %target.tenant.name, error = %e, "cannot end a task")
            }
        }
    }

    /// Ends the job from what its tasks did and how it was asked to stop (SPEC §4.3).
    fn finish_backup_job(&self, job_id: i64, control: &JobControl, ends: &[TaskEnd]) {
        // A resumed job keeps the comment that says how it went on.
        let resumed = match self.catalog.job(job_id) {
            Ok(Some(job)) if job.restart_pass > 0 => Some(
                job.comment
                    .filter(|c| c.starts_with("resumed from checkpoint"))
                    .unwrap_or_else(|| "resumed from checkpoint".into()),
            ),
            Ok(Some(_)) => None,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(job_id, error = %e, "cannot read the job to end it");
                None
            }
        };
        let failures: Vec<(SqlState, &str)> = ends
            .iter()
            .filter_map(|e| match e {
                TaskEnd::Failed { code, comment } => Some((*code, comment.as_str())),
                _ => None,
            })
            .collect();
        let started = ends
            .iter()
            .filter(|e| !matches!(e, TaskEnd::NotStarted))
            .count();
        let skipped = ends.len() - started;
        let suspended = ends.iter().any(|e| {
            matches!(
                e,
                TaskEnd::Suspended | TaskEnd::ShutDown | TaskEnd::NotStarted
            )
        });
        let (to, change) = match control.interrupted() {
            Some(Interrupt::Cancel) => (JobStatus::Canceled, JobChange::canceled("canceled by user")),
            Some(Interrupt::MaxRunTime) => {
                if let Err(e) = self.catalog.drop_contexts_of_job(job_id) {
                    tracing::error!(job_id, error = %e, "cannot drop the contexts of a job over its run time");
                }
                (
                    JobStatus::Canceled,
                    JobChange::canceled(
                        "canceled: the job ran longer than backup_max_run_time; it is not restarted",
                    ),
                )
            }
            Some(Interrupt::Suspend) if suspended => (
                JobStatus::Suspended,
                JobChange {
                    result: Some(0),
                    comment: Some(
                        "suspended by user; RESUME BACKUP goes on from the checkpoints".into(),
                    ),
                    ..JobChange::default()
                },
            ),
            Some(Interrupt::Shutdown) if suspended => (
                JobStatus::Suspended,
                JobChange {
                    result: Some(0),
                    comment: Some(
                        "SERVER_SHUTDOWN: suspended by the server's shutdown; it resumes when the server starts".into(),
                    ),
                    ..JobChange::default()
                },
            ),
            Some(Interrupt::Stop) if started == 0 => (
                JobStatus::Failed,
                JobChange::canceled("Operation was canceled by user"),
            ),
            Some(Interrupt::Stop) if skipped > 0 => (
                JobStatus::Canceled,
                JobChange::canceled(format!(
                    "stopped gracefully by user: {skipped} task(s) not started"
                )),
            ),
            _ if !failures.is_empty() => {
                let comment: Vec<&str> = failures.iter().map(|(_, c)| *c).collect();
                (
                    JobStatus::Failed,
                    JobChange::failed(failures[0].0, comment.join("; ")),
                )
            }
            _ => (
                JobStatus::Completed,
                JobChange::completed(resumed.unwrap_or_default()),
            ),
        };
        self.end_job(job_id, to, change);
        tracing::info!(job_id, "data backup job ended");
    }

    fn concurrency(&self) -> usize {
        let configured = self
            .catalog
            .parameter(crate::catalog::SYS_TENANT_ID, "backup_concurrency")
            .ok()
            .flatten()
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        if configured == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            configured
        }
    }

    /// `backup_net_limit` for a tenant's work: bytes per second, 0 = no limit.
    pub(crate) fn net_limit(&self, tenant_id: i64) -> u64 {
        self.catalog
            .parameter(tenant_id, "backup_net_limit")
            .ok()
            .flatten()
            .and_then(|v| crate::catalog::parameters::parse_size(&v))
            .unwrap_or(0)
    }

    pub(crate) fn duration_parameter(
        &self,
        tenant_id: i64,
        name: &str,
        default: Duration,
    ) -> Duration {
        self.catalog
            .parameter(tenant_id, name)
            .ok()
            .flatten()
            .and_then(|v| parse_duration(&v))
            .unwrap_or(default)
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_backup_task(
        &self,
        task: &TaskRecord,
        target: &Target,
        incremental: bool,
        plus_archivelog: bool,
        resume: bool,
        control: &JobControl,
    ) -> TaskEnd {
        match self
            .catalog
            .move_task(task.task_id, TaskStatus::Doing, &TaskChange::default())
        {
            Ok(true) => {}
            // Ended meanwhile (CANCEL ALL BACKUP FORCE): nothing to run.
            Ok(false) => return TaskEnd::NotStarted,
            Err(e) => {
                return TaskEnd::Failed {
                    code: sqlstate::IO_ERROR,
                    comment: e.to_string(),
                };
            }
        }
        let started = now_micros();
        let retry_delay = self.duration_parameter(
            target.tenant.id,
            "backup_retry_delay",
            Duration::from_secs(5),
        );
        let mut attempt = 0;
        let outcome = loop {
            let outcome = self
                .backup_once(
                    task,
                    target,
                    incremental,
                    resume || attempt > 0,
                    plus_archivelog,
                    control,
                )
                .await;
            match &outcome {
                Err(e)
                    if e.is_retryable() && attempt < RETRIES && !control.cancel.is_cancelled() =>
                {
                    attempt += 1;
                    tracing::warn!(attempt, error = %e, "retryable failure; retrying from the checkpoint");
                    tokio::select! {
                        _ = tokio::time::sleep(retry_delay) => {}
                        _ = control.cancel.cancelled() => {}
                    }
                }
                _ => break outcome,
            }
        };
        let outcome = match outcome {
            // A PostgreSQL set keeps the WAL it needs as it is sealed.
            Ok(done) if plus_archivelog && target.tenant.kind != TenantKind::Postgres => {
                let (tenant, dest, cancel) = (
                    target.tenant.clone(),
                    target.dest_uri.clone(),
                    control.cancel.clone(),
                );
                let catalog = Arc::clone(&self.catalog);
                super::on_blocking_thread("plus archivelog", move || {
                    super::archive::copy_log_with_set(&catalog, &tenant, &dest, &cancel)
                })
                .await
                .map(|(count, newest)| {
                    tracing::info!(segments = count, newest = ?newest, "log segments kept with the set");
                    done
                })
            }
            other => other,
        };
        let end = match outcome {
            Ok((summary, progress, parent)) => {
                if let Err(e) = self
                    .catalog
                    .task_bytes_read(task.task_id, summary.bytes_read as i64)
                {
                    tracing::warn!(error = %e, "cannot record the bytes this run read");
                }
                self.record_set(
                    task,
                    target,
                    plus_archivelog,
                    started,
                    summary,
                    progress,
                    parent,
                )
            }
            Err(EngineError::Cancelled) if control.interrupted() == Some(Interrupt::Suspend) => {
                TaskEnd::Suspended
            }
            Err(EngineError::Cancelled) if control.interrupted() == Some(Interrupt::Shutdown) => {
                TaskEnd::ShutDown
            }
            Err(EngineError::Cancelled) => TaskEnd::Canceled,
            Err(e) => TaskEnd::Failed {
                code: e.kind().sqlstate(),
                comment: failure_comment(
                    &format!(
                        "backup of tenant {} to {}",
                        target.tenant.name,
                        mask_secrets(&target.dest_uri)
                    ),
                    &e,
                ) + &retried(attempt),
            },
        };
        self.end_backup_task(task, target, &end);
        end
    }

    /// Records how a task ended, and what it keeps: a context when it may go on later, nothing
    /// (its checkpoint released) when it was cancelled.
    fn end_backup_task(&self, task: &TaskRecord, target: &Target, end: &TaskEnd) {
        let (status, result, comment, reason) = match end {
            TaskEnd::Completed | TaskEnd::NotStarted => {
                self.drop_context_of(task);
                return;
            }
            TaskEnd::Canceled => (
                TaskStatus::Canceled,
                OB_CANCELED,
                "canceled by user".to_string(),
                None,
            ),
            TaskEnd::Suspended => (
                TaskStatus::Suspended,
                0,
                "suspended by user".to_string(),
                Some(Reason::Suspended),
            ),
            TaskEnd::ShutDown => (
                TaskStatus::Suspended,
                0,
                "SERVER_SHUTDOWN: suspended by the server's shutdown".to_string(),
                Some(Reason::ServerShutdown),
            ),
            TaskEnd::Failed { comment, .. } => (
                TaskStatus::Failed,
                OB_ERROR,
                comment.clone(),
                Some(Reason::Failed),
            ),
        };
        let change = TaskChange {
            result: Some(result),
            comment: Some(comment),
            ..TaskChange::default()
        };
        match self.catalog.move_task(task.task_id, status, &change) {
            Ok(true) => {}
            Ok(false) => {
                // Ended meanwhile by CANCEL ALL BACKUP FORCE, which keeps nothing.
                tracing::info!(task_id = task.task_id, "the task had already ended");
                self.release_checkpoint(target, task);
                return;
            }
            Err(e) => tracing::error!(error = %e, "cannot record the end of a task"),
        }
        match reason {
            Some(reason) => self.keep_context_of(task, reason),
            None => {
                self.drop_context_of(task);
                self.release_checkpoint(target, task);
            }
        }
    }

    /// An interrupted task keeps a restartable context (SPEC §4.4).
    fn keep_context_of(&self, task: &TaskRecord, reason: Reason) {
        let kept = self
            .catalog
            .job(task.job_id)
            .map_err(SqlError::from)
            .and_then(|job| match job {
                Some(job) => self.keep_context(&job, task, reason).map(drop),
                None => Ok(()),
            });
        if let Err(e) = kept {
            tracing::error!(task_id = task.task_id, error = %e, "cannot keep a restartable context");
        }
    }

    /// A task that completed or was cancelled keeps no context.
    fn drop_context_of(&self, task: &TaskRecord) {
        let dropped =
            self.catalog
                .context_of_task(task.task_id)
                .and_then(|context| match context {
                    Some(context) => self.catalog.drop_context(&context.context_id),
                    None => Ok(()),
                });
        if let Err(e) = dropped {
            tracing::error!(task_id = task.task_id, error = %e, "cannot drop a restartable context");
        }
    }

    /// Drops the checkpoint a cancelled task left; its partial data is garbage for cleanup.
    pub(crate) fn release_checkpoint(&self, target: &Target, task: &TaskRecord) {
        let (Ok(root), Some(set_id)) = (
            super::destination_root(&target.dest_uri),
            task.backup_set_id,
        ) else {
            return;
        };
        let tenant_id = target.tenant.id;
        let installation = self.catalog.installation_id().to_string();
        let catalog = Arc::clone(&self.catalog);
        std::thread::spawn(move || {
            // A checkpoint left behind is only garbage: cleanup reclaims it, so a failure here
            // is reported and nothing more.
            let released = super::destination::open_for_write(&catalog, &root, &installation)
                .and_then(|repo| repo.delete_checkpoint(tenant_id, set_id));
            if let Err(e) = released {
                tracing::warn!(tenant_id, set_id, error = %e, "cannot release a checkpoint");
            }
        });
    }

    /// What the engine is asked to do for one attempt of a task: the parent an incremental
    /// compares with, the source folder, and the tenant's backup parameters.
    fn backup_request(
        &self,
        task: &TaskRecord,
        target: &Target,
        incremental: bool,
        resume: bool,
    ) -> BackupRequest {
        let catalog = &self.catalog;
        let tenant = target.tenant.clone();
        let set_id = task.backup_set_id.expect("backup tasks have a set id");
        let parent = if incremental {
            catalog
                .last_set(tenant.id, &mask_secrets(&target.dest_uri))
                .ok()
                .flatten()
                .map(|s| s.backup_set_id)
                .filter(|p| *p != set_id)
        } else {
            None
        };
        let source = tenant.tree().unwrap_or_default();
        let compression = catalog
            .parameter(tenant.id, "backup_compression")
            .ok()
            .flatten()
            .unwrap_or_default();
        let skip_unreadable = catalog
            .parameter(tenant.id, "backup_skip_unreadable_files")
            .ok()
            .flatten()
            .as_deref()
            == Some("true");
        BackupRequest {
            tenant_name: tenant.name.clone(),
            tenant_id: tenant.id,
            set_id,
            source,
            parent_set_id: parent,
            compression_level: compression
                .strip_prefix("zstd:")
                .and_then(|l| l.parse().ok())
                .unwrap_or(0),
            concurrency: 0,
            checkpoint_interval: self.duration_parameter(
                tenant.id,
                "backup_checkpoint_interval",
                Duration::from_secs(30),
            ),
            skip_unreadable,
            resume,
            net_limit: self.net_limit(tenant.id),
            rules: crate::source::TreeRules::Everything,
            verify_pages_before: None,
        }
    }

    /// One attempt at the backup; `resume` goes on from the task's checkpoint. A PostgreSQL
    /// tenant's attempt is one PostgreSQL backup, from `pg_backup_start` to `pg_backup_stop`.
    async fn backup_once(
        &self,
        task: &TaskRecord,
        target: &Target,
        incremental: bool,
        resume: bool,
        plus_archivelog: bool,
        control: &JobControl,
    ) -> Result<(engine::BackupSummary, Arc<Progress>, Option<i64>), EngineError> {
        let catalog: Arc<Catalog> = self.catalog.clone();
        let root = match super::destination_root(&target.dest_uri) {
            Ok(root) => root,
            Err(e) => {
                return Err(EngineError::DestinationMissing {
                    destination: e.message,
                });
            }
        };
        // No collector sweeps this destination while the backup runs (it may deduplicate
        // against anything it loads).
        let _writing = self.destination_locks.of(&root).read_owned().await;
        let installation = catalog.installation_id().to_string();
        let mut request = self.backup_request(task, target, incremental, resume);
        let mut postgres = None;
        if target.tenant.kind == TenantKind::Postgres {
            let pg = tokio::select! {
                pg = self.begin_pg_backup(target, request.set_id) => pg?,
                _ = control.cancel.cancelled() => return Err(EngineError::Cancelled),
            };
            request.source = pg.pgdata.clone();
            request.rules = crate::source::TreeRules::PostgresData;
            request.verify_pages_before = pg.start.data_checksums.then_some(pg.start.lsn);
            postgres = Some(pg);
        }
        let (seal_target, runtime) = (target.clone(), self.runtime.clone());
        // Shared with the engine's thread, and taken back here: an attempt that ends before
        // its seal ends its backup mode before the task ends.
        let postgres = Arc::new(std::sync::Mutex::new(postgres));
        let in_backup_mode = postgres.clone();
        let progress = Arc::new(Progress::new());
        let ticker = watch_progress(catalog.clone(), task.task_id, progress.clone());
        let cancel = control.cancel.clone();
        let engine_progress = progress.clone();
        let task_id = task.task_id;
        let keys = catalog.clone();
        let result = super::on_blocking_thread("backup", move || {
            let repo = super::destination::open_for_write(&keys, &root, &installation)?;
            // The catalog may remember a parent the destination no longer has: back up in full.
            let mut request = request;
            if let Some(parent) = request.parent_set_id
                && repo
                    .find_set(&engine::TenantRef::Id(request.tenant_id), parent)
                    .is_err()
            {
                request.parent_set_id = None;
            }
            let parent = request.parent_set_id;
            let mut on_checkpoint = |info: &engine::CheckpointInfo| {
                let time = info
                    .time
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(now_micros(), |d| d.as_micros() as i64);
                if let Err(e) = catalog.task_checkpoint(
                    task_id,
                    info.bytes_done as i64,
                    info.files_done as i64,
                    time,
                ) {
                    tracing::warn!(task_id, error = %e, "cannot record a checkpoint");
                }
            };
            let mut seal = |damaged: &[engine::DamagedPage]| {
                let mut held = in_backup_mode.lock().unwrap_or_else(|p| p.into_inner());
                match held.as_mut() {
                    Some(pg) => pg
                        .seal(
                            &catalog,
                            &runtime,
                            &seal_target,
                            plus_archivelog,
                            damaged,
                            &cancel,
                        )
                        .map(Some),
                    None => Ok(None),
                }
            };
            engine::backup_sealed(
                &repo,
                &request,
                &engine_progress,
                &cancel,
                &mut on_checkpoint,
                &mut seal,
            )
            .map(|s| (s, parent))
        })
        .await;
        ticker.cancel();
        let unsealed = postgres.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(pg) = unsealed {
            pg.abort().await;
        }
        result.map(|(summary, parent)| (summary, progress, parent))
    }

    #[allow(clippy::too_many_arguments)]
    fn record_set(
        &self,
        task: &TaskRecord,
        target: &Target,
        plus_archivelog: bool,
        started: i64,
        summary: engine::BackupSummary,
        progress: Arc<Progress>,
        parent: Option<i64>,
    ) -> TaskEnd {
        let descriptor = &summary.descriptor;
        let prev_full = parent.and_then(|p| {
            self.catalog.backup_set(p).ok().flatten().map(|s| {
                if s.backup_type == "FULL" {
                    s.backup_set_id
                } else {
                    s.prev_full_backup_set_id.unwrap_or(s.backup_set_id)
                }
            })
        });
        let mut figures = task_figures(
            &progress,
            Duration::from_micros((now_micros() - started).max(1) as u64),
        );
        // The engine's own counts, not forced to look finished: a set that read everything its
        // scan found shows 100% and every file finished (an empty tree: 100% of nothing).
        if figures.total_bytes == 0 {
            figures.data_progress = 100.0;
        }
        let comment = summary_comment(&summary);
        let set = NewBackupSet {
            tenant_id: target.tenant.id,
            backup_set_id: descriptor.set_id,
            job_id: task.job_id,
            backup_type: descriptor.backup_type.as_str().to_string(),
            prev_full_backup_set_id: prev_full,
            prev_inc_backup_set_id: parent,
            start_ts: started,
            end_ts: now_micros(),
            plus_archivelog,
            input_bytes: descriptor.input_bytes as i64,
            output_bytes: descriptor.output_bytes as i64,
            file_count: descriptor.file_count as i64,
            comment: (!comment.is_empty()).then(|| comment.clone()),
            path: mask_secrets(&target.dest_uri),
            encryption_mode: super::destination::encryption_mode(&target.dest_uri).into(),
        };
        match self
            .catalog
            .complete_backup_task(task.task_id, &set, &figures, &comment)
        {
            Ok(true) => {
                let shown = self.catalog.job(task.job_id).and_then(|job| match job {
                    Some(job) if job.tenant_id == target.tenant.id => self
                        .catalog
                        .set_job_backup_type(task.job_id, &set.backup_type),
                    _ => Ok(()),
                });
                if let Err(e) = shown {
                    tracing::warn!(error = %e, "cannot show the set's type on its job");
                }
                tracing::info!(set_id = set.backup_set_id, kind = %set.backup_type, "backup set completed");
                TaskEnd::Completed
            }
            Ok(false) => {
                tracing::warn!(
                    set_id = set.backup_set_id,
                    "the task was ended while its set was written; the set is not recorded"
                );
                TaskEnd::Canceled
            }
            Err(e) => TaskEnd::Failed {
                code: sqlstate::IO_ERROR,
                comment: format!("cannot record the set: {e}"),
            },
        }
    }
}

/// `BACKSTOP_HOLD_JOBS=500ms` in the server's environment makes every backup job wait that long
/// before its first task, so that a test can act on a job none of whose tasks has started. Never
/// set in production; unset, nothing waits.
fn held_jobs() -> Option<Duration> {
    static HOLD: std::sync::OnceLock<Option<Duration>> = std::sync::OnceLock::new();
    *HOLD.get_or_init(|| {
        std::env::var("BACKSTOP_HOLD_JOBS")
            .ok()
            .and_then(|v| crate::catalog::parameters::parse_duration(&v))
    })
}

/// What a failed task's COMMENT adds about the retries before it gave up.
fn retried(attempts: u32) -> String {
    match attempts {
        0 => String::new(),
        n => format!(" (after {n} retries)"),
    }
}

/// Files that changed while read or were skipped, for the task's COMMENT.
fn summary_comment(summary: &engine::BackupSummary) -> String {
    let mut parts = Vec::new();
    if !summary.changed_files.is_empty() {
        let names: Vec<String> = summary
            .changed_files
            .iter()
            .take(10)
            .map(|c| format!("{} ({:?})", c.path.display(), c.outcome))
            .collect();
        parts.push(format!(
            "{} file(s) changed while being read: {}{}",
            summary.changed_files.len(),
            names.join(", "),
            if summary.changed_files.len() > 10 {
                ", ..."
            } else {
                ""
            }
        ));
    }
    if !summary.skipped_unreadable.is_empty() {
        let names: Vec<String> = summary
            .skipped_unreadable
            .iter()
            .take(10)
            .map(|s| s.path.display().to_string())
            .collect();
        parts.push(format!(
            "{} unreadable file(s) skipped: {}{}",
            summary.skipped_unreadable.len(),
            names.join(", "),
            if summary.skipped_unreadable.len() > 10 {
                ", ..."
            } else {
                ""
            }
        ));
    }
    if !summary.damaged_pages.is_empty() {
        parts.push(format!(
            "{} page(s) fail their checksum (kept as read, BACKUP_IGNORE_CHECKSUM_FAILURES): {}",
            summary.damaged_pages.len(),
            super::postgres::name_pages(&summary.damaged_pages)
        ));
    }
    if !summary.skipped_special.is_empty() {
        parts.push(format!(
            "{} device, FIFO or socket file(s) not backed up",
            summary.skipped_special.len()
        ));
    }
    parts.join("; ")
}
