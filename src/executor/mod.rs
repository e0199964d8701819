//! Runs the jobs that statements start: data backups, restores and validations. It is the only
//! writer of job state after the statement that created the job; every status change goes
//! through the state machines of [`state`], and every running job holds a `CancellationToken`.

pub mod archive;
pub mod backup;
pub mod contexts;
pub mod control;
pub mod copy;
pub mod log_copy;
pub mod restore;
pub mod state;
pub mod validate;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::catalog::Catalog;
use crate::catalog::jobs::{JobRecord, TaskProgress};
use crate::engine::{EngineError, Progress};
use crate::error::{SqlError, SqlResult, sqlstate};
use state::JobStatus;

/// OceanBase's result code of a job cancelled by a user.
pub const OB_CANCELED: i64 = -4072;
/// Result code of a job that failed for any other reason.
pub const OB_ERROR: i64 = -4000;

/// How a user (or a limit) asked a running job to stop, strongest last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Interrupt {
    /// Graceful (Veeam's stop): tasks in progress finish, the others do not start.
    Stop,
    /// Interrupt now, keeping a restartable context per unfinished task.
    Suspend,
    /// Immediate: no new sets, no contexts.
    Cancel,
    /// Cancelled because it ran longer than `backup_max_run_time`: never restarted.
    MaxRunTime,
}

/// What a running job can be told to do.
#[derive(Debug, Default)]
pub struct JobControl {
    /// Fired by every interrupt but a graceful stop: workers check it between chunks.
    pub cancel: CancellationToken,
    interrupt: Mutex<Option<Interrupt>>,
}

impl JobControl {
    /// Records an interrupt; a stronger one replaces a weaker one, never the reverse.
    pub fn interrupt(&self, how: Interrupt) {
        let mut current = self.interrupt.lock().expect("interrupt poisoned");
        if current.is_none_or(|c| how > c) {
            *current = Some(how);
        }
        if how != Interrupt::Stop {
            self.cancel.cancel();
        }
    }

    pub fn interrupted(&self) -> Option<Interrupt> {
        *self.interrupt.lock().expect("interrupt poisoned")
    }
}

pub struct Executor {
    catalog: Arc<Catalog>,
    runtime: tokio::runtime::Handle,
    running: Mutex<HashMap<i64, Arc<JobControl>>>,
    ended: broadcast::Sender<i64>,
    archivers: archive::Archivers,
}

impl Executor {
    pub fn new(catalog: Arc<Catalog>, runtime: tokio::runtime::Handle) -> Arc<Executor> {
        let (ended, _) = broadcast::channel(256);
        Arc::new(Executor {
            catalog,
            runtime,
            running: Mutex::new(HashMap::new()),
            ended,
            archivers: archive::Archivers::default(),
        })
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// At start: jobs the previous server process left running cannot go on in this one; they
    /// fail with reason SERVER_RESTART, and their unfinished backup tasks keep restartable
    /// contexts to which the restart rules then apply. Suspended jobs stay suspended.
    pub fn recover(self: &Arc<Self>) -> SqlResult<()> {
        for job in self.catalog.unfinished_jobs()? {
            if job.status == JobStatus::Suspended.as_str() {
                continue;
            }
            if job.kind == crate::catalog::jobs::JobKind::BackupBackupset.as_str() {
                // A copy does not go on: it is issued again, and starts over.
                let why = "SERVER_RESTART: the server stopped while the copy ran; issue it again";
                for task in self.catalog.tasks_of(job.job_id)? {
                    self.catalog
                        .end_task(task.task_id, "FINISH", OB_ERROR, why)?;
                }
                self.catalog.end_job(
                    job.job_id,
                    "FINISH",
                    OB_ERROR,
                    Some(sqlstate::IO_ERROR),
                    why,
                )?;
                continue;
            }
            let tasks = self.catalog.tasks_of(job.job_id)?;
            if !tasks.is_empty() && tasks.iter().all(|t| t.status == "COMPLETED") {
                // Every task recorded its result before the server stopped; only the job's own
                // end was not written yet.
                let comment = job
                    .comment
                    .clone()
                    .filter(|c| !c.is_empty())
                    .unwrap_or_else(|| "completed; the server stopped as it ended".into());
                self.catalog.end_job(
                    job.job_id,
                    JobStatus::Completed.as_str(),
                    0,
                    None,
                    &comment,
                )?;
                continue;
            }
            for task in tasks {
                if !state::TaskStatus::parse(&task.status).is_some_and(|s| s.is_end()) {
                    self.catalog.end_task(
                        task.task_id,
                        "FAILED",
                        OB_ERROR,
                        "SERVER_RESTART: the server stopped while the task ran",
                    )?;
                    if job.kind == "BACKUP" {
                        self.keep_context(
                            &job,
                            &task,
                            crate::catalog::contexts::Reason::ServerRestart,
                        )?;
                    }
                }
            }
            self.catalog.end_job(
                job.job_id,
                JobStatus::Failed.as_str(),
                OB_ERROR,
                Some(sqlstate::IO_ERROR),
                "SERVER_RESTART: the server stopped while the job ran",
            )?;
            tracing::warn!(job_id = job.job_id, kind = %job.kind, "job failed by server restart");
        }
        Ok(())
    }

    fn register(&self, job_id: i64) -> Arc<JobControl> {
        let control = Arc::new(JobControl::default());
        self.running
            .lock()
            .expect("running jobs poisoned")
            .insert(job_id, control.clone());
        control
    }

    fn finished(&self, job_id: i64) {
        self.running
            .lock()
            .expect("running jobs poisoned")
            .remove(&job_id);
        let _ = self.ended.send(job_id);
    }

    pub fn control_of(&self, job_id: i64) -> Option<Arc<JobControl>> {
        self.running
            .lock()
            .expect("running jobs poisoned")
            .get(&job_id)
            .cloned()
    }

    /// Notified with a job id each time a job ends.
    pub fn subscribe(&self) -> broadcast::Receiver<i64> {
        self.ended.subscribe()
    }

    /// Whether any job of any kind is running (destinations cannot change under it).
    pub fn has_running_jobs(&self) -> bool {
        !self
            .running
            .lock()
            .expect("running jobs poisoned")
            .is_empty()
    }

    /// Ends a job from its current state, through the state machine.
    fn end_job(
        &self,
        job: &JobRecord,
        to: JobStatus,
        result: i64,
        code: Option<&str>,
        comment: &str,
    ) {
        let from = JobStatus::parse(&job.status).unwrap_or(JobStatus::Doing);
        if let Err(e) = from.transition(to) {
            tracing::error!(job_id = job.job_id, error = %e, "refused job state change");
            return;
        }
        if let Err(e) = self
            .catalog
            .end_job(job.job_id, to.as_str(), result, code, comment)
        {
            tracing::error!(job_id = job.job_id, error = %e, "cannot record the end of a job");
        }
    }

    /// The state a WAIT reports: the job's status and a progress line.
    pub fn job_state(&self, job_id: i64) -> SqlResult<(JobRecord, String)> {
        let job = self
            .catalog
            .job(job_id)?
            .ok_or_else(|| SqlError::undefined(format!("job {job_id} does not exist")))?;
        let rows = self.catalog.read(
            "SELECT count(*), sum(CASE WHEN status = 'COMPLETED' THEN 1 ELSE 0 END), \
             coalesce(sum(input_bytes), 0), coalesce(sum(total_bytes), 0), \
             coalesce(sum(finish_file_count), 0) FROM task WHERE job_id = ?",
            &[job_id.into()],
        )?;
        let r = &rows[0];
        let (tasks, done, input, total, files) = (
            r[0].as_i64().unwrap_or(0),
            r[1].as_i64().unwrap_or(0),
            r[2].as_i64().unwrap_or(0),
            r[3].as_i64().unwrap_or(0),
            r[4].as_i64().unwrap_or(0),
        );
        let percent = if total > 0 {
            100.0 * input as f64 / total as f64
        } else {
            0.0
        };
        let line = format!(
            "job {job_id} {}: {done}/{tasks} tasks completed, {percent:.1}% of {} read, {files} files",
            job.status,
            crate::views::functions::display_bytes(total)
        );
        Ok((job, line))
    }
}

/// The error a WAIT on an ended job answers with, or `None` when it completed.
pub fn job_error(job: &JobRecord) -> Option<SqlError> {
    let comment = job.comment.clone().unwrap_or_default();
    // Copy jobs speak OceanBase 3.x: FINISH with RESULT 0 is success, CANCEL a cancel.
    let status = match state::CopyStatus::parse(&job.status) {
        Some(state::CopyStatus::Finish) if job.result == 0 => JobStatus::Completed,
        Some(state::CopyStatus::Finish) => JobStatus::Failed,
        Some(state::CopyStatus::Cancel) => JobStatus::Canceled,
        _ => JobStatus::parse(&job.status)?,
    };
    match status {
        JobStatus::Completed => None,
        JobStatus::Canceled => Some(
            SqlError::new(
                sqlstate::QUERY_CANCELED,
                format!("job {} was canceled: {comment}", job.job_id),
            )
            .with_ob("OB_CANCELED", 4072),
        ),
        _ => {
            let code = job
                .error_code
                .as_deref()
                .map_or(sqlstate::INTERNAL_ERROR, static_code);
            Some(SqlError::new(
                code,
                format!("job {} failed: {comment}", job.job_id),
            ))
        }
    }
}

/// SQLSTATEs are stored as text; the error type wants one of the known static codes.
fn static_code(code: &str) -> &'static str {
    use sqlstate::*;
    [
        SYNTAX_ERROR,
        UNDEFINED_OBJECT,
        OBJECT_NOT_IN_PREREQUISITE_STATE,
        FEATURE_NOT_SUPPORTED,
        QUERY_CANCELED,
        DISK_FULL,
        IO_ERROR,
        DATA_CORRUPTED,
        INVALID_PARAMETER_VALUE,
        "58P01",
        "55000",
        "42704",
        "57014",
    ]
    .into_iter()
    .find(|c| *c == code)
    .unwrap_or(INTERNAL_ERROR)
}

/// Writes a task's progress to the catalog once a second until the returned token is cancelled.
fn watch_progress(
    catalog: Arc<Catalog>,
    task_id: i64,
    progress: Arc<Progress>,
) -> CancellationToken {
    every_second(progress, move |figures| {
        if let Err(e) = catalog.task_progress(task_id, figures) {
            tracing::warn!(task_id, error = %e, "cannot record task progress");
        }
    })
}

/// Calls `record` with the figures of `progress` once a second until the token is cancelled.
fn every_second(
    progress: Arc<Progress>,
    record: impl Fn(&TaskProgress) + Send + 'static,
) -> CancellationToken {
    let stop = CancellationToken::new();
    let done = stop.clone();
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        loop {
            tokio::select! {
                _ = done.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            record(&task_figures(&progress, started.elapsed()));
        }
    });
    stop
}

fn task_figures(progress: &Progress, elapsed: Duration) -> TaskProgress {
    let s = progress.snapshot();
    let seconds = elapsed.as_secs_f64().max(0.001);
    TaskProgress {
        input_bytes: s.input_bytes as i64,
        output_bytes: s.output_bytes as i64,
        output_rate_bytes: s.output_bytes as f64 / seconds,
        file_count: s.total_files as i64,
        finish_file_count: s.finished_files as i64,
        total_bytes: s.total_bytes as i64,
        data_progress: f64::from(progress.percent()),
    }
}

/// Runs engine work on a blocking thread; a panic there fails the work, not the server.
async fn on_blocking_thread<T: Send + 'static>(
    what: &'static str,
    work: impl FnOnce() -> Result<T, EngineError> + Send + 'static,
) -> Result<T, EngineError> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| {
        Err(EngineError::Io {
            operation: "run",
            path: format!("{what} worker").into(),
            source: std::io::Error::other(e.to_string()),
        })
    })
}

/// A `file://` destination URI as the directory it names.
pub fn destination_root(uri: &str) -> SqlResult<PathBuf> {
    match crate::control::Destination::parse(uri)? {
        crate::control::Destination::File(root) => Ok(root),
    }
}

/// How an engine failure reads in a task's COMMENT: what failed, where, and why.
pub fn failure_comment(what: &str, e: &EngineError) -> String {
    format!("{what} failed: {e}")
}
