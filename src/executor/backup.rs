//! Data backup jobs: one task per tenant, processed in tenant-id order by at most
//! `backup_concurrency` workers; each task backs its tenant up into its destination's
//! repository and records the set.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::state::{JobStatus, TaskStatus};
use super::{Executor, JobControl, OB_CANCELED, OB_ERROR, failure_comment, task_figures, watch_progress};
use crate::catalog::jobs::{JobKind, NewBackupSet, NewJob, NewTask, TaskRecord};
use crate::catalog::parameters::parse_duration;
use crate::catalog::tenants::{Tenant, TenantKind};
use crate::catalog::{Catalog, mask_secrets, now_micros};
use crate::engine::{self, BackupRequest, EngineError, Progress, Repository};
use crate::error::{SqlError, SqlResult, sqlstate};

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
struct Target {
    tenant: Tenant,
    dest_uri: String,
}

/// How a task ended.
enum TaskEnd {
    Completed,
    Canceled,
    Failed { code: &'static str, comment: String },
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
    /// Records the job and its tasks and starts them; returns once the job is durable.
    pub fn start_backup(self: &Arc<Self>, spec: BackupSpec) -> SqlResult<i64> {
        let mut targets = Vec::new();
        for tenant in &spec.tenants {
            if tenant.kind != TenantKind::Directory {
                return Err(SqlError::not_supported(format!(
                    "tenant {} is a {} tenant; this release backs up directory tenants only",
                    tenant.name,
                    tenant.kind.as_str()
                )));
            }
            if let Some(job_id) = self.catalog.backup_running_for(tenant.id)? {
                return Err(in_progress(tenant, job_id));
            }
            let dest_uri = self.catalog.parameter(tenant.id, "data_backup_dest")?.ok_or_else(|| {
                SqlError::wrong_state(format!("no DATA_BACKUP_DEST is set for tenant {}", tenant.name))
                    .with_hint("ALTER SYSTEM SET DATA_BACKUP_DEST = 'file:///path'")
            })?;
            targets.push(Target { tenant: tenant.clone(), dest_uri });
        }
        targets.sort_by_key(|t| t.tenant.id);
        let single = targets.len() == 1 && !spec.cluster;
        let job = NewJob {
            tenant_id: if single { targets[0].tenant.id } else { crate::catalog::SYS_TENANT_ID },
            job_level: if single { "USER_TENANT" } else { "CLUSTER" }.into(),
            executor_tenant_id: targets.iter().map(|t| t.tenant.id.to_string()).collect::<Vec<_>>().join(","),
            backup_type: Some(if spec.incremental { "INC" } else { "FULL" }.into()),
            plus_archivelog: spec.plus_archivelog,
            description: spec.description.clone(),
            path: single.then(|| mask_secrets(&targets[0].dest_uri)),
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
        let control = self.register(job_id);
        let executor = self.clone();
        let work: Vec<(TaskRecord, Target)> = records.into_iter().zip(targets).collect();
        self.runtime.spawn(async move {
            executor.run_backup_job(job_id, control, spec, work).await;
        });
        Ok(job_id)
    }

    async fn run_backup_job(
        self: Arc<Self>,
        job_id: i64,
        control: Arc<JobControl>,
        spec: BackupSpec,
        work: Vec<(TaskRecord, Target)>,
    ) {
        if let Err(e) = self.catalog.start_job(job_id) {
            tracing::error!(job_id, error = %e, "cannot start job");
        }
        let workers = self.concurrency();
        let permits = Arc::new(Semaphore::new(workers));
        let mut running = Vec::new();
        for (task, target) in work {
            // Tasks start in tenant-id order: each waits for a worker before the next is looked at.
            let permit = permits.clone().acquire_owned().await.expect("semaphore never closes");
            if control.cancel.is_cancelled() {
                let _ = self.catalog.end_task(task.task_id, TaskStatus::Canceled.as_str(), OB_CANCELED, "canceled by user");
                drop(permit);
                continue;
            }
            let executor = self.clone();
            let control = control.clone();
            let incremental = spec.incremental;
            let plus_archivelog = spec.plus_archivelog;
            running.push(tokio::spawn(async move {
                let end = executor.run_backup_task(&task, &target, incremental, plus_archivelog, &control).await;
                drop(permit);
                end
            }));
        }
        let mut ends = Vec::new();
        for handle in running {
            ends.push(handle.await.unwrap_or_else(|e| TaskEnd::Failed {
                code: sqlstate::INTERNAL_ERROR,
                comment: format!("task panicked: {e}"),
            }));
        }
        self.finish_backup_job(job_id, &control, &ends);
        self.finished(job_id);
    }

    fn finish_backup_job(&self, job_id: i64, control: &JobControl, ends: &[TaskEnd]) {
        let Ok(Some(job)) = self.catalog.job(job_id) else { return };
        let failures: Vec<(&str, &str)> = ends
            .iter()
            .filter_map(|e| match e {
                TaskEnd::Failed { code, comment } => Some((*code, comment.as_str())),
                _ => None,
            })
            .collect();
        if control.cancel.is_cancelled() {
            self.end_job(&job, JobStatus::Canceled, OB_CANCELED, Some(sqlstate::QUERY_CANCELED), "canceled by user");
        } else if let Some((code, _)) = failures.first() {
            let comment: Vec<&str> = failures.iter().map(|(_, c)| *c).collect();
            self.end_job(&job, JobStatus::Failed, OB_ERROR, Some(code), &comment.join("; "));
        } else if ends.iter().all(|e| matches!(e, TaskEnd::Completed)) {
            self.end_job(&job, JobStatus::Completed, 0, None, "");
        } else {
            self.end_job(&job, JobStatus::Canceled, OB_CANCELED, Some(sqlstate::QUERY_CANCELED), "canceled by user");
        }
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

    fn duration_parameter(&self, tenant_id: i64, name: &str) -> Duration {
        self.catalog
            .parameter(tenant_id, name)
            .ok()
            .flatten()
            .and_then(|v| parse_duration(&v))
            .unwrap_or(Duration::from_secs(30))
    }

    async fn run_backup_task(
        &self,
        task: &TaskRecord,
        target: &Target,
        incremental: bool,
        plus_archivelog: bool,
        control: &JobControl,
    ) -> TaskEnd {
        let span = tracing::info_span!("backup_task", job_id = task.job_id, task_id = task.task_id, tenant = %target.tenant.name);
        let _enter = span.enter();
        if let Err(e) = self.catalog.start_task(task.task_id) {
            return TaskEnd::Failed { code: sqlstate::IO_ERROR, comment: e.to_string() };
        }
        let started = now_micros();
        let retry_delay = self.duration_parameter(target.tenant.id, "backup_retry_delay");
        let mut attempt = 0;
        let outcome = loop {
            let outcome = self.backup_once(task, target, incremental, attempt > 0, control).await;
            match &outcome {
                Err(e) if e.is_retryable() && attempt < RETRIES && !control.cancel.is_cancelled() => {
                    attempt += 1;
                    tracing::warn!(attempt, error = %e, "retryable failure; retrying from the checkpoint");
                    tokio::time::sleep(retry_delay).await;
                }
                _ => break outcome,
            }
        };
        let end = match outcome {
            Ok((summary, progress, parent)) => {
                self.record_set(task, target, plus_archivelog, started, summary, progress, parent)
            }
            Err(EngineError::Cancelled) => TaskEnd::Canceled,
            Err(e) => TaskEnd::Failed {
                code: e.kind().sqlstate(),
                comment: failure_comment(
                    &format!("backup of tenant {} to {}", target.tenant.name, mask_secrets(&target.dest_uri)),
                    &e,
                ),
            },
        };
        let (status, result, comment) = match &end {
            TaskEnd::Completed => return end,
            TaskEnd::Canceled => (TaskStatus::Canceled, OB_CANCELED, "canceled by user".to_string()),
            TaskEnd::Failed { comment, .. } => (TaskStatus::Failed, OB_ERROR, comment.clone()),
        };
        if let Err(e) = TaskStatus::Doing.transition(status) {
            tracing::error!(error = %e, "refused task state change");
        }
        if let Err(e) = self.catalog.end_task(task.task_id, status.as_str(), result, &comment) {
            tracing::error!(error = %e, "cannot record the end of a task");
        }
        end
    }

    /// One attempt at the backup; a retry goes on from the checkpoint of the attempt before.
    async fn backup_once(
        &self,
        task: &TaskRecord,
        target: &Target,
        incremental: bool,
        resume: bool,
        control: &JobControl,
    ) -> Result<(engine::BackupSummary, Arc<Progress>, Option<i64>), EngineError> {
        let catalog: Arc<Catalog> = self.catalog.clone();
        let root = match super::destination_root(&target.dest_uri) {
            Ok(root) => root,
            Err(e) => return Err(EngineError::DestinationMissing { destination: e.message }),
        };
        let installation = catalog.installation_id().to_string();
        let tenant = target.tenant.clone();
        let set_id = task.backup_set_id.expect("backup tasks have a set id");
        let parent = if incremental {
            catalog.last_set(tenant.id, &mask_secrets(&target.dest_uri)).ok().flatten().map(|s| s.backup_set_id)
        } else {
            None
        };
        let source = tenant
            .source
            .as_deref()
            .and_then(|s| s.strip_prefix("dir://"))
            .map(std::path::PathBuf::from)
            .unwrap_or_default();
        let compression = catalog.parameter(tenant.id, "backup_compression").ok().flatten().unwrap_or_default();
        let skip_unreadable = catalog.parameter(tenant.id, "backup_skip_unreadable_files").ok().flatten().as_deref() == Some("true");
        let request = BackupRequest {
            tenant_name: tenant.name.clone(),
            tenant_id: tenant.id,
            set_id,
            source,
            parent_set_id: parent,
            compression_level: compression.strip_prefix("zstd:").and_then(|l| l.parse().ok()).unwrap_or(0),
            concurrency: 0,
            checkpoint_interval: self.duration_parameter(tenant.id, "backup_checkpoint_interval"),
            skip_unreadable,
            resume,
        };
        let progress = Arc::new(Progress::new());
        let ticker = watch_progress(catalog.clone(), task.task_id, progress.clone());
        let cancel = control.cancel.clone();
        let engine_progress = progress.clone();
        let result = tokio::task::spawn_blocking(move || {
            let repo = Repository::open_for_write(&root, &installation)?;
            // The catalog may remember a parent the destination no longer has: back up in full.
            let mut request = request;
            if let Some(parent) = request.parent_set_id {
                if repo.find_set(&engine::TenantRef::Id(request.tenant_id), parent).is_err() {
                    request.parent_set_id = None;
                }
            }
            let parent = request.parent_set_id;
            engine::backup(&repo, &request, &engine_progress, &cancel, &mut |_| {}).map(|s| (s, parent))
        })
        .await
        .unwrap_or_else(|e| Err(EngineError::Io {
            operation: "run",
            path: "backup worker".into(),
            source: std::io::Error::other(e.to_string()),
        }));
        ticker.cancel();
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
                if s.backup_type == "FULL" { s.backup_set_id } else { s.prev_full_backup_set_id.unwrap_or(s.backup_set_id) }
            })
        });
        let mut figures = task_figures(&progress, Duration::from_micros((now_micros() - started).max(1) as u64));
        figures.data_progress = 100.0;
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
        };
        match self.catalog.complete_backup_task(task.task_id, &set, &figures, &comment) {
            Ok(()) => {
                if let Ok(Some(job)) = self.catalog.job(task.job_id) {
                    if job.tenant_id == target.tenant.id {
                        let _ = self.catalog.set_job_fields(task.job_id, &[("backup_type", set.backup_type.clone().into())]);
                    }
                }
                tracing::info!(set_id = set.backup_set_id, kind = %set.backup_type, "backup set completed");
                TaskEnd::Completed
            }
            Err(e) => TaskEnd::Failed { code: sqlstate::IO_ERROR, comment: format!("cannot record the set: {e}") },
        }
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
            if summary.changed_files.len() > 10 { ", ..." } else { "" }
        ));
    }
    if !summary.skipped_unreadable.is_empty() {
        let names: Vec<String> = summary.skipped_unreadable.iter().take(10).map(|s| s.path.display().to_string()).collect();
        parts.push(format!(
            "{} unreadable file(s) skipped: {}{}",
            summary.skipped_unreadable.len(),
            names.join(", "),
            if summary.skipped_unreadable.len() > 10 { ", ..." } else { "" }
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
