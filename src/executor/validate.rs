//! Validation jobs: check that backup sets are restorable, at `basic` level (every object the
//! set needs exists with the right size) or `physical` (every byte read back and checked).
//! Damage marks the set `FILE_STATUS = 'BROKEN'` and names the damaged objects.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{Executor, OB_CANCELED, OB_ERROR, SHUT_DOWN, failure_comment, watch_progress};
use crate::catalog::jobs::{JobChange, JobKind, NewJob, NewTask, TaskRecord};
use crate::catalog::mask_secrets;
use crate::catalog::status::{JobStatus, TaskStatus};
use crate::engine::archive::{self, ExpectedSegment};
use crate::engine::{self, EngineError, Progress, TenantRef, ValidateLevel};
use crate::error::{SqlError, SqlResult, sqlstate};

/// One set to check and where it lives.
#[derive(Debug, Clone)]
pub struct SetToValidate {
    pub tenant_id: i64,
    pub set_id: i64,
    pub dest_uri: String,
    pub input_bytes: i64,
}

/// One archive-log piece to check: a copy of it (0: the original), where that copy lives, and
/// the segments the catalog recorded in the piece when the validation was asked for.
#[derive(Debug, Clone)]
pub struct PieceToValidate {
    pub tenant_id: i64,
    pub piece_id: i64,
    pub copy_id: i64,
    pub dest_uri: String,
    pub segments: Vec<ExpectedSegment>,
}

/// What one validation task checks.
#[derive(Debug, Clone)]
pub enum Subject {
    Set(SetToValidate),
    Piece(PieceToValidate),
}

impl Subject {
    fn tenant_id(&self) -> i64 {
        match self {
            Subject::Set(s) => s.tenant_id,
            Subject::Piece(p) => p.tenant_id,
        }
    }

    fn dest_uri(&self) -> &str {
        match self {
            Subject::Set(s) => &s.dest_uri,
            Subject::Piece(p) => &p.dest_uri,
        }
    }

    fn set_id(&self) -> Option<i64> {
        match self {
            Subject::Set(s) => Some(s.set_id),
            Subject::Piece(_) => None,
        }
    }

    fn piece_id(&self) -> Option<i64> {
        match self {
            Subject::Set(_) => None,
            Subject::Piece(p) => Some(p.piece_id),
        }
    }

    /// The bytes the validation is about: the set's input, the piece's stored segments.
    fn input_bytes(&self) -> i64 {
        match self {
            Subject::Set(s) => s.input_bytes,
            Subject::Piece(p) => p.segments.iter().map(|s| s.stored_size as i64).sum(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Subject::Set(s) => format!("backup set {}", s.set_id),
            Subject::Piece(p) if p.copy_id == 0 => format!("archive log piece {}", p.piece_id),
            Subject::Piece(p) => format!("archive log piece {} copy {}", p.piece_id, p.copy_id),
        }
    }
}

/// What one check found.
#[derive(Debug, Default)]
struct Found {
    objects_checked: u64,
    /// `object: problem`, one per damaged or missing object.
    damaged: Vec<String>,
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
        subjects: Vec<Subject>,
        level: ValidateLevel,
    ) -> SqlResult<i64> {
        if subjects.is_empty() {
            return Err(SqlError::undefined(
                "there is no completed backup set to validate",
            ));
        }
        let level_name = match level {
            ValidateLevel::Basic => "basic",
            ValidateLevel::Physical => "physical",
        };
        let single = subjects.len() == 1;
        let job = NewJob {
            tenant_id: if single {
                subjects[0].tenant_id()
            } else {
                crate::catalog::SYS_TENANT_ID
            },
            job_level: if single { "USER_TENANT" } else { "CLUSTER" }.into(),
            executor_tenant_id: subjects
                .iter()
                .map(|s| s.tenant_id().to_string())
                .collect::<Vec<_>>()
                .join(","),
            job_type: Some(job_type.to_string()),
            validate_level: Some(level_name.to_string()),
            backup_set_id: single.then(|| subjects[0].set_id()).flatten(),
            piece_id: single.then(|| subjects[0].piece_id()).flatten(),
            path: single.then(|| mask_secrets(subjects[0].dest_uri())),
            total_bytes: Some(subjects.iter().map(Subject::input_bytes).sum()),
            ..NewJob::default()
        };
        let tasks: Vec<NewTask> = subjects
            .iter()
            .map(|s| NewTask {
                tenant_id: s.tenant_id(),
                backup_set_id: s.set_id(),
                piece_id: s.piece_id(),
                path: Some(mask_secrets(s.dest_uri())),
                total_bytes: Some(s.input_bytes()),
                ..NewTask::default()
            })
            .collect();
        let (job_id, records) = self.catalog.create_job(JobKind::Validate, &job, &tasks)?;
        let control = self.register(job_id);
        let executor = self.clone();
        self.spawn_job(job_id, async move {
            executor.start_job(job_id);
            let mut damaged = Vec::new();
            let mut canceled = false;
            for (task, subject) in records.iter().zip(subjects) {
                if control.cancel.is_cancelled() {
                    executor.end_task(
                        task.task_id,
                        TaskStatus::Canceled,
                        OB_CANCELED,
                        "canceled by user",
                    );
                    canceled = true;
                    continue;
                }
                match executor
                    .validate_one(task, &subject, level, &control.cancel)
                    .await
                {
                    Verdict::Intact => {}
                    Verdict::Damaged(what) => damaged.push(what),
                    Verdict::Canceled => canceled = true,
                }
            }
            let (to, change) = if control.interrupted() == Some(super::Interrupt::Shutdown) {
                (
                    JobStatus::Failed,
                    JobChange::failed(sqlstate::ADMIN_SHUTDOWN, SHUT_DOWN.into()),
                )
            } else if canceled || control.cancel.is_cancelled() {
                (JobStatus::Canceled, JobChange::canceled("canceled by user"))
            } else if damaged.is_empty() {
                (JobStatus::Completed, JobChange::completed(""))
            } else {
                (
                    JobStatus::Failed,
                    JobChange::failed(sqlstate::DATA_CORRUPTED, damaged.join("; ")),
                )
            };
            executor.end_job(job_id, to, change);
            executor.finished(job_id);
        });
        Ok(job_id)
    }

    /// Runs one validation task and records its outcome: the task's end, its figures, and the
    /// FILE_STATUS of what it checked.
    async fn validate_one(
        &self,
        task: &TaskRecord,
        subject: &Subject,
        level: ValidateLevel,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Verdict {
        if !self.start_task(task.task_id) {
            return Verdict::Canceled;
        }
        let progress = Arc::new(Progress::new());
        let ticker = watch_progress(self.catalog.clone(), task.task_id, progress.clone());
        let result = match subject {
            Subject::Set(set) => self.check_set(set, level, &progress, cancel).await,
            Subject::Piece(piece) => self.check_piece(piece, level, &progress, cancel).await,
        };
        ticker.cancel();
        let snapshot = progress.snapshot();
        let recorded = self.catalog.task_progress(
            task.task_id,
            &crate::catalog::jobs::TaskProgress {
                input_bytes: snapshot.input_bytes as i64,
                total_bytes: snapshot.total_bytes as i64,
                data_progress: 100.0,
                file_count: snapshot.total_files as i64,
                finish_file_count: snapshot.finished_files as i64,
                ..Default::default()
            },
        );
        if let Err(e) = recorded {
            tracing::warn!(task_id = task.task_id, error = %e, "cannot record the validation's figures");
        }
        let what = subject.describe();
        let (status, result_code, comment, verdict) = match result {
            Ok(found) if found.damaged.is_empty() => {
                self.mark(subject, "AVAILABLE", None);
                let comment = format!("{} objects checked, intact", found.objects_checked);
                (TaskStatus::Completed, 0, comment, Verdict::Intact)
            }
            Ok(found) => {
                let damage = format!("{what} is damaged: {}", found.damaged.join(", "));
                self.mark(subject, "BROKEN", Some(&damage));
                (
                    TaskStatus::Failed,
                    OB_ERROR,
                    damage.clone(),
                    Verdict::Damaged(damage),
                )
            }
            Err(EngineError::Cancelled) => (
                TaskStatus::Canceled,
                OB_CANCELED,
                "canceled by user".into(),
                Verdict::Canceled,
            ),
            Err(e) => {
                let failure = failure_comment(&format!("validation of {what}"), &e);
                self.mark(subject, "BROKEN", Some(&failure));
                (
                    TaskStatus::Failed,
                    OB_ERROR,
                    failure.clone(),
                    Verdict::Damaged(failure),
                )
            }
        };
        self.end_task(task.task_id, status, result_code, &comment);
        verdict
    }

    fn mark(&self, subject: &Subject, file_status: &str, comment: Option<&str>) {
        let marked = match subject {
            Subject::Set(set) => self
                .catalog
                .set_file_status(set.set_id, file_status, comment),
            Subject::Piece(piece) => {
                self.catalog
                    .set_piece_file_status(piece.piece_id, piece.copy_id, file_status)
            }
        };
        if let Err(e) = marked {
            tracing::warn!(tenant_id = subject.tenant_id(), error = %e, "cannot record the file status");
        }
    }

    async fn check_set(
        &self,
        set: &SetToValidate,
        level: ValidateLevel,
        progress: &Arc<Progress>,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Result<Found, EngineError> {
        let root = super::destination_root(&set.dest_uri).map_err(|e| {
            EngineError::DestinationMissing {
                destination: e.message,
            }
        })?;
        progress
            .total_bytes
            .store(set.input_bytes.max(0) as u64, Ordering::Relaxed);
        let (tenant_id, set_id) = (set.tenant_id, set.set_id);
        let cancel = cancel.clone();
        let progress = progress.clone();
        // No collector repacks or sweeps the destination while it is read.
        let _reading = self.destination_locks.of(&root).read_owned().await;
        let catalog = Arc::clone(&self.catalog);
        let report = super::on_blocking_thread("validate", move || {
            let repo = super::destination::open(&catalog, &root)?;
            engine::validate(
                &repo,
                &TenantRef::Id(tenant_id),
                set_id,
                level,
                &progress,
                &cancel,
            )
        })
        .await?;
        Ok(Found {
            objects_checked: report.objects_checked,
            damaged: report
                .damaged
                .iter()
                .map(|d| format!("{}: {}", d.object, d.problem))
                .collect(),
        })
    }

    /// Checks every segment the catalog recorded in a piece against the copy of the piece at
    /// its destination.
    async fn check_piece(
        &self,
        piece: &PieceToValidate,
        level: ValidateLevel,
        progress: &Arc<Progress>,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Result<Found, EngineError> {
        let expected = piece.segments.clone();
        progress
            .total_files
            .store(expected.len() as u64, Ordering::Relaxed);
        progress.total_bytes.store(
            expected.iter().map(|e| e.stored_size).sum(),
            Ordering::Relaxed,
        );
        let backend = self.catalog.destination_backend(&piece.dest_uri)?;
        let tenant_id = piece.tenant_id;
        let physical = level == ValidateLevel::Physical;
        let cancel = cancel.clone();
        let progress = progress.clone();
        super::on_blocking_thread("validate piece", move || {
            if !backend.root_exists()? {
                return Err(EngineError::DestinationMissing {
                    destination: backend.describe(),
                });
            }
            let mut found = Found::default();
            for segment in &expected {
                if cancel.is_cancelled() {
                    return Err(EngineError::Cancelled);
                }
                if let Some(problem) =
                    archive::check_segment(backend.as_ref(), tenant_id, segment, physical)?
                {
                    let object = archive::segment_object(tenant_id, &segment.name);
                    found.damaged.push(format!("{object}: {problem}"));
                }
                found.objects_checked += 1;
                progress.finished_files.fetch_add(1, Ordering::Relaxed);
                progress
                    .input_bytes
                    .fetch_add(segment.stored_size, Ordering::Relaxed);
            }
            Ok(found)
        })
        .await
    }

    /// `ALTER SYSTEM CANCEL VALIDATE [n]`: every running validation, or job n.
    pub fn cancel_validate(&self, job_id: Option<i64>) -> SqlResult<Vec<i64>> {
        let jobs: Vec<_> = self
            .catalog
            .jobs_in(JobKind::Validate, &[JobStatus::Init, JobStatus::Doing])?
            .into_iter()
            .filter(|j| job_id.is_none_or(|id| id == j.job_id))
            .collect();
        let mut canceled = Vec::new();
        for job in jobs {
            if self.request_cancel(job.job_id)? {
                canceled.push(job.job_id);
            }
        }
        if canceled.is_empty() {
            return Err(match job_id {
                Some(id) => SqlError::wrong_state(format!("validation job {id} is not running")),
                None => SqlError::wrong_state("no validation is running"),
            });
        }
        Ok(canceled)
    }
}
