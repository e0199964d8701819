//! Validation jobs: check that backup sets are restorable, at `basic` level (every object the
//! set needs exists with the right size) or `physical` (every byte read back and checked).
//! Damage marks the set `FILE_STATUS = 'BROKEN'` and names the damaged objects.

use std::sync::Arc;

use super::state::{JobStatus, TaskStatus};
use super::{Executor, OB_CANCELED, OB_ERROR, failure_comment, watch_progress};
use crate::catalog::jobs::{JobKind, NewJob, NewTask, TaskRecord};
use crate::catalog::mask_secrets;
use crate::engine::{self, EngineError, Progress, Repository, TenantRef, ValidateLevel};
use crate::error::{SqlError, SqlResult, sqlstate};

/// One set to check and where it lives.
#[derive(Debug, Clone)]
pub struct SetToValidate {
    pub tenant_id: i64,
    pub set_id: i64,
    pub dest_uri: String,
    pub input_bytes: i64,
}

enum Verdict {
    Intact,
    Damaged(String),
    Canceled,
}

impl Executor {
    pub fn start_validate(
        self: &Arc<Self>,
        job_type: &str,
        sets: Vec<SetToValidate>,
        level: ValidateLevel,
    ) -> SqlResult<i64> {
        if sets.is_empty() {
            return Err(SqlError::undefined(
                "there is no completed backup set to validate",
            ));
        }
        let level_name = match level {
            ValidateLevel::Basic => "basic",
            ValidateLevel::Physical => "physical",
        };
        let single = sets.len() == 1;
        let job = NewJob {
            tenant_id: if single {
                sets[0].tenant_id
            } else {
                crate::catalog::SYS_TENANT_ID
            },
            job_level: if single { "USER_TENANT" } else { "CLUSTER" }.into(),
            executor_tenant_id: sets
                .iter()
                .map(|s| s.tenant_id.to_string())
                .collect::<Vec<_>>()
                .join(","),
            job_type: Some(job_type.to_string()),
            validate_level: Some(level_name.to_string()),
            backup_set_id: single.then(|| sets[0].set_id),
            path: single.then(|| mask_secrets(&sets[0].dest_uri)),
            total_bytes: Some(sets.iter().map(|s| s.input_bytes).sum()),
            ..NewJob::default()
        };
        let tasks: Vec<NewTask> = sets
            .iter()
            .map(|s| NewTask {
                tenant_id: s.tenant_id,
                backup_set_id: Some(s.set_id),
                path: Some(mask_secrets(&s.dest_uri)),
                total_bytes: Some(s.input_bytes),
                ..NewTask::default()
            })
            .collect();
        let (job_id, records) = self.catalog.create_job(JobKind::Validate, &job, &tasks)?;
        let control = self.register(job_id);
        let executor = self.clone();
        self.runtime.spawn(async move {
            let _ = executor.catalog.start_job(job_id);
            let mut damaged = Vec::new();
            let mut canceled = false;
            for (task, set) in records.iter().zip(sets) {
                if control.cancel.is_cancelled() {
                    let _ = executor.catalog.end_task(
                        task.task_id,
                        TaskStatus::Canceled.as_str(),
                        OB_CANCELED,
                        "canceled by user",
                    );
                    canceled = true;
                    continue;
                }
                match executor
                    .validate_set(task, &set, level, &control.cancel)
                    .await
                {
                    Verdict::Intact => {}
                    Verdict::Damaged(what) => damaged.push(what),
                    Verdict::Canceled => canceled = true,
                }
            }
            let Ok(Some(job)) = executor.catalog.job(job_id) else {
                return;
            };
            if canceled || control.cancel.is_cancelled() {
                executor.end_job(
                    &job,
                    JobStatus::Canceled,
                    OB_CANCELED,
                    Some(sqlstate::QUERY_CANCELED),
                    "canceled by user",
                );
            } else if damaged.is_empty() {
                executor.end_job(&job, JobStatus::Completed, 0, None, "");
            } else {
                executor.end_job(
                    &job,
                    JobStatus::Failed,
                    OB_ERROR,
                    Some(sqlstate::DATA_CORRUPTED),
                    &damaged.join("; "),
                );
            }
            executor.finished(job_id);
        });
        Ok(job_id)
    }

    async fn validate_set(
        &self,
        task: &TaskRecord,
        set: &SetToValidate,
        level: ValidateLevel,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Verdict {
        let _ = self.catalog.start_task(task.task_id);
        let progress = Arc::new(Progress::new());
        let ticker = watch_progress(self.catalog.clone(), task.task_id, progress.clone());
        let root = super::destination_root(&set.dest_uri);
        let (tenant_id, set_id) = (set.tenant_id, set.set_id);
        let cancel = cancel.clone();
        let engine_progress = progress.clone();
        let result = match root {
            Err(e) => Err(EngineError::DestinationMissing {
                destination: e.message,
            }),
            Ok(root) => {
                super::on_blocking_thread("validate", move || {
                    let repo = Repository::open(&root)?;
                    engine::validate(
                        &repo,
                        &TenantRef::Id(tenant_id),
                        set_id,
                        level,
                        &engine_progress,
                        &cancel,
                    )
                })
                .await
            }
        };
        ticker.cancel();
        let snapshot = progress.snapshot();
        let _ = self.catalog.task_progress(
            task.task_id,
            &crate::catalog::jobs::TaskProgress {
                input_bytes: snapshot.input_bytes as i64,
                total_bytes: set.input_bytes,
                data_progress: 100.0,
                file_count: snapshot.total_files as i64,
                finish_file_count: snapshot.finished_files as i64,
                ..Default::default()
            },
        );
        let (status, result_code, comment, verdict) = match result {
            Ok(report) if report.is_intact() => {
                let _ = self.catalog.set_file_status(set_id, "AVAILABLE", None);
                let comment = format!("{} objects checked, intact", report.objects_checked);
                (TaskStatus::Completed, 0, comment, Verdict::Intact)
            }
            Ok(report) => {
                let objects: Vec<String> = report
                    .damaged
                    .iter()
                    .map(|d| format!("{}: {}", d.object, d.problem))
                    .collect();
                let what = format!("backup set {set_id} is damaged: {}", objects.join(", "));
                let _ = self.catalog.set_file_status(set_id, "BROKEN", Some(&what));
                (
                    TaskStatus::Failed,
                    OB_ERROR,
                    what.clone(),
                    Verdict::Damaged(what),
                )
            }
            Err(EngineError::Cancelled) => (
                TaskStatus::Canceled,
                OB_CANCELED,
                "canceled by user".into(),
                Verdict::Canceled,
            ),
            Err(e) => {
                let what = failure_comment(&format!("validation of backup set {set_id}"), &e);
                let _ = self.catalog.set_file_status(set_id, "BROKEN", Some(&what));
                (
                    TaskStatus::Failed,
                    OB_ERROR,
                    what.clone(),
                    Verdict::Damaged(what),
                )
            }
        };
        let _ = self
            .catalog
            .end_task(task.task_id, status.as_str(), result_code, &comment);
        verdict
    }

    /// `ALTER SYSTEM CANCEL VALIDATE [n]`: every running validation, or job n.
    pub fn cancel_validate(&self, job_id: Option<i64>) -> SqlResult<Vec<i64>> {
        let jobs: Vec<_> = self
            .catalog
            .jobs_in(JobKind::Validate, &["INIT", "DOING"])?
            .into_iter()
            .filter(|j| job_id.is_none_or(|id| id == j.job_id))
            .collect();
        if jobs.is_empty() {
            return Err(match job_id {
                Some(id) => SqlError::wrong_state(format!("validation job {id} is not running")),
                None => SqlError::wrong_state("no validation is running"),
            });
        }
        let mut canceled = Vec::new();
        for job in jobs {
            if let Some(control) = self.control_of(job.job_id) {
                let from = JobStatus::parse(&job.status).unwrap_or(JobStatus::Doing);
                from.transition(JobStatus::Canceling)
                    .map_err(|e| SqlError::wrong_state(e.to_string()))?;
                self.catalog.set_job_fields(
                    job.job_id,
                    &[("status", JobStatus::Canceling.as_str().into())],
                )?;
                control.cancel.cancel();
                canceled.push(job.job_id);
            }
        }
        Ok(canceled)
    }
}
