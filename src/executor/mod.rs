//! Runs the jobs that statements start: data backups, restores and validations. It is the only
//! writer of job state after the statement that created the job; every status change goes
//! through the state machines of [`state`], and every running job holds a `CancellationToken`.

pub mod archive;
pub mod backup;
pub mod contexts;
pub mod control;
pub mod copy;
pub mod cron;
pub mod delete;
pub mod destination;
pub mod log_copy;
pub mod notify;
pub mod plans;
pub mod postgres;
pub mod restore;
pub mod retention;
pub mod validate;
mod wait_line;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::catalog::Catalog;
use crate::catalog::jobs::{JobChange, JobKind, JobRecord, StopMode, TaskChange, TaskProgress};
use crate::catalog::status::{CopyStatus, JobState, JobStatus, Status, TaskState, TaskStatus};
use crate::engine::{EngineError, Progress};
use crate::error::{SqlError, SqlResult, sqlstate};

pub use crate::catalog::jobs::{OB_CANCELED, OB_ERROR};

/// The COMMENT of a job that cannot be suspended and was ended by a clean shutdown.
pub const SHUT_DOWN: &str =
    "SERVER_SHUTDOWN: the server shut down while the job ran; run the statement again";

/// How a user (or a limit) asked a running job to stop, strongest last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Interrupt {
    /// Graceful (Veeam's stop): tasks in progress finish, the others do not start.
    Stop,
    /// The server is shutting down cleanly: suspend, and resume at the next start. Weaker than
    /// a user's suspend, which must not turn into a resume at the next start.
    Shutdown,
    /// Interrupt now, keeping a restartable context per unfinished task.
    Suspend,
    /// Immediate: no new sets, no contexts.
    Cancel,
    /// Cancelled because it ran longer than `backup_max_run_time`: never restarted.
    MaxRunTime,
}

/// What a running job can be told to do.
#[derive(Debug)]
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
    /// The parent of every worker's token (jobs, archivers, the log copier, the restart
    /// scheduler): cancelled when the server shuts down, so that shutdown reaches them all.
    shutdown: CancellationToken,
    /// Where the server listens, for the `restore_command` a PostgreSQL restore writes.
    address: std::sync::OnceLock<std::net::SocketAddr>,
    /// Backups read-lock their destination; the collector sweeps only with it write-locked.
    destination_locks: delete::DestinationLocks,
    /// Held while a delete job is admitted: which sets it takes is decided and recorded as one.
    delete_admission: Mutex<()>,
    /// Plan runs and job ends, for the sessions that LISTEN.
    events: crate::events::Events,
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
            shutdown: CancellationToken::new(),
            address: std::sync::OnceLock::new(),
            destination_locks: delete::DestinationLocks::default(),
            delete_admission: Mutex::new(()),
            events: crate::events::Events::default(),
        })
    }

    /// Records where the server listens (once, when it has bound its socket).
    pub fn set_address(&self, address: std::net::SocketAddr) {
        // Set once at start; a second call would be the same address.
        self.address.get_or_init(|| address);
    }

    /// Where the server listens, once it does.
    pub fn address(&self) -> Option<std::net::SocketAddr> {
        self.address.get().copied()
    }

    /// Whether the server is shutting down: no new work starts.
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    /// A token for a long-running worker that is not a job; cancelled at shutdown.
    fn worker_token(&self) -> CancellationToken {
        self.shutdown.child_token()
    }

    /// A clean shutdown (SIGTERM): every running job is told first, so that its workers know
    /// why their tokens fire; then the parent token is cancelled. Data backups are suspended
    /// with restartable contexts (reason SERVER_SHUTDOWN) and resume by themselves at the next
    /// start; restores, validations and copies end FAILED saying so, to be run again. Waits at
    /// most `grace` for the jobs to record their ends; returns the jobs still running then.
    pub async fn shut_down(&self, grace: Duration) -> Vec<i64> {
        let jobs: Vec<(i64, Arc<JobControl>)> = self
            .running
            .lock()
            .expect("running jobs poisoned")
            .iter()
            .map(|(id, control)| (*id, control.clone()))
            .collect();
        for (job_id, control) in &jobs {
            if let Ok(Some(job)) = self.catalog.job(*job_id)
                && job.kind == JobKind::Backup
                && let Err(e) = self.suspend_job(*job_id, Interrupt::Shutdown)
            {
                tracing::error!(job_id, error = %e, "cannot suspend a job for the shutdown");
            }
            control.interrupt(Interrupt::Shutdown);
        }
        self.shutdown.cancel();
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let left: Vec<i64> = self
                .running
                .lock()
                .expect("running jobs poisoned")
                .keys()
                .copied()
                .collect();
            if left.is_empty() || tokio::time::Instant::now() >= deadline {
                tracing::info!(
                    jobs = jobs.len(),
                    unsettled = left.len(),
                    "executor shut down"
                );
                return left;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// At start: jobs the previous server process left running cannot go on in this one. A job
    /// the user was cancelling ends CANCELED and keeps nothing (a user cancel is never
    /// restarted); a copy ends, to be issued again; any other job fails with reason
    /// SERVER_RESTART, and its unfinished backup tasks keep restartable contexts to which the
    /// restart rules then apply. Suspended jobs stay suspended.
    pub fn recover(self: &Arc<Self>) -> SqlResult<()> {
        for job in self.catalog.unfinished_jobs()? {
            match job.status {
                Status::Job(JobStatus::Suspended) => self.resume_after_shutdown(&job)?,
                Status::Job(JobStatus::Canceling) => self.recover_canceling(&job)?,
                Status::Copy(_) => self.recover_copy(&job)?,
                Status::Job(_) if job.kind == JobKind::Delete => self.resume_delete(&job)?,
                Status::Job(_) => self.recover_interrupted(&job)?,
            }
        }
        Ok(())
    }

    /// A job suspended by a clean shutdown goes on by itself, RESTART_PASS + 1; one a user
    /// suspended waits for RESUME.
    fn resume_after_shutdown(self: &Arc<Self>, job: &JobRecord) -> SqlResult<()> {
        let contexts = self.catalog.contexts_of_job(job.job_id)?;
        let by_shutdown = !contexts.is_empty()
            && contexts
                .iter()
                .all(|c| c.reason == crate::catalog::contexts::Reason::ServerShutdown.as_str());
        if by_shutdown
            && self.resume_job(
                job,
                "resumed from checkpoint after the server's shutdown (SERVER_SHUTDOWN)",
            )?
        {
            tracing::info!(job_id = job.job_id, "job suspended by the shutdown resumed");
        }
        Ok(())
    }

    fn recover_canceling(&self, job: &JobRecord) -> SqlResult<()> {
        for task in self.catalog.tasks_of(job.job_id)? {
            self.catalog.move_task(
                task.task_id,
                TaskStatus::Canceled,
                &TaskChange {
                    result: Some(OB_CANCELED),
                    comment: Some("canceled by user".into()),
                    ..TaskChange::default()
                },
            )?;
        }
        self.catalog.drop_contexts_of_job(job.job_id)?;
        self.end_job(
            job.job_id,
            JobStatus::Canceled,
            JobChange::canceled("canceled by user"),
        );
        tracing::warn!(
            job_id = job.job_id,
            kind = job.kind.as_str(),
            "cancelled job ended at start-up"
        );
        Ok(())
    }

    /// A copy does not go on: it is issued again, and starts over.
    fn recover_copy(&self, job: &JobRecord) -> SqlResult<()> {
        let why = "SERVER_RESTART: the server stopped while the copy ran; issue it again";
        let failed = TaskChange {
            result: Some(OB_ERROR),
            comment: Some(why.into()),
            ..TaskChange::default()
        };
        for task in self.catalog.tasks_of(job.job_id)? {
            self.catalog
                .move_task(task.task_id, CopyStatus::Finish, &failed)?;
        }
        self.end_job(
            job.job_id,
            CopyStatus::Finish,
            JobChange::failed(sqlstate::IO_ERROR, why.into()),
        );
        Ok(())
    }

    fn recover_interrupted(self: &Arc<Self>, job: &JobRecord) -> SqlResult<()> {
        let tasks = self.catalog.tasks_of(job.job_id)?;
        if !tasks.is_empty()
            && tasks
                .iter()
                .all(|t| t.status == Status::Job(TaskStatus::Completed))
        {
            // Every task recorded its result before the server stopped; only the job's own
            // end was not written yet.
            let comment = job
                .comment
                .clone()
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| "completed; the server stopped as it ended".into());
            self.end_job(
                job.job_id,
                JobStatus::Completed,
                JobChange::completed(comment),
            );
            return Ok(());
        }
        let failed = TaskChange {
            result: Some(OB_ERROR),
            comment: Some("SERVER_RESTART: the server stopped while the task ran".into()),
            ..TaskChange::default()
        };
        for task in tasks.iter().filter(|t| !t.status.is_end()) {
            if self
                .catalog
                .move_task(task.task_id, TaskStatus::Failed, &failed)?
                && job.kind == JobKind::Backup
            {
                self.keep_context(job, task, crate::catalog::contexts::Reason::ServerRestart)?;
            }
        }
        self.end_job(
            job.job_id,
            JobStatus::Failed,
            JobChange::failed(
                sqlstate::IO_ERROR,
                "SERVER_RESTART: the server stopped while the job ran".into(),
            ),
        );
        tracing::warn!(
            job_id = job.job_id,
            kind = job.kind.as_str(),
            "job failed by server restart"
        );
        Ok(())
    }

    /// Runs `tick` every `every` for as long as the server runs (a scheduler's loop).
    fn spawn_ticker(
        self: &Arc<Self>,
        every: Duration,
        tick: impl Fn(&Arc<Executor>) + Send + 'static,
    ) {
        let executor = self.clone();
        let stop = self.worker_token();
        self.runtime.spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(every) => {}
                }
                tick(&executor);
            }
        });
    }

    /// Runs a job's work in the background, every log line of it carrying the job's id, kind
    /// and tenant (the `job` span; tasks add their own).
    fn spawn_job(&self, job_id: i64, work: impl std::future::Future<Output = ()> + Send + 'static) {
        use tracing::Instrument;
        let (kind, tenant_id) = match self.catalog.job(job_id) {
            Ok(Some(job)) => (job.kind.as_str(), job.tenant_id),
            _ => ("UNKNOWN", 0),
        };
        let span = tracing::info_span!("job", job_id, kind, tenant_id);
        self.runtime.spawn(work.instrument(span));
    }

    fn register(&self, job_id: i64) -> Arc<JobControl> {
        let control = Arc::new(JobControl {
            cancel: self.shutdown.child_token(),
            interrupt: Mutex::default(),
        });
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
        self.announce_end(job_id);
    }

    /// Wakes the WAITs on a job that ended (nobody listening is not an error) and announces
    /// the end to the sessions that LISTEN and to its plan's NOTIFY target.
    fn announce_end(&self, job_id: i64) {
        self.ended.send(job_id).ok();
        self.announce_job_end(job_id);
    }

    /// The bus LISTENing sessions receive events from.
    pub fn events(&self) -> &crate::events::Events {
        &self.events
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

    /// Ends a job: moves it to `to` through the state machine, as a compare-and-set. A worker
    /// decides its job's end from what it saw; when a control statement moved the job meanwhile,
    /// the statement wins: a job a user is cancelling ends CANCELED whatever its worker found,
    /// and a job something else already ended (CANCEL ALL BACKUP FORCE) keeps that end. Returns
    /// the end this call wrote, which is not `to` when a statement won; `None` when the job had
    /// ended already (or its end could not be recorded).
    pub(crate) fn end_job(
        &self,
        job_id: i64,
        to: impl Into<JobState>,
        change: JobChange,
    ) -> Option<JobState> {
        let (mut to, mut change) = (to.into(), change);
        // Each lost race leaves the job closer to an end: two rounds are enough, four are safe.
        for _ in 0..4 {
            match self.catalog.move_job(job_id, to, &change) {
                Ok(true) => {
                    if to == Status::Job(JobStatus::Canceled) {
                        self.keep_nothing(job_id);
                    }
                    return Some(to);
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(job_id, error = %e, "cannot record the end of a job");
                    return None;
                }
            }
            let job = match self.catalog.job(job_id) {
                Ok(Some(job)) => job,
                Ok(None) => return None,
                Err(e) => {
                    tracing::error!(job_id, error = %e, "cannot read a job to end it");
                    return None;
                }
            };
            match job.status {
                status if status.is_end() => {
                    tracing::info!(job_id, ended = %status, wanted = %to, "the job had already ended");
                    return None;
                }
                Status::Job(JobStatus::Canceling) => {
                    to = JobStatus::Canceled.into();
                    change = JobChange::canceled("canceled by user");
                }
                other => {
                    tracing::error!(job_id, from = %other, to = %to, "refused job state change");
                    return None;
                }
            }
        }
        None
    }

    /// A cancelled job keeps nothing (SPEC §4.3): its contexts are dropped and tasks its
    /// workers had suspended while the cancel arrived end CANCELED with it. (Their checkpoint
    /// objects become garbage for cleanup.)
    fn keep_nothing(&self, job_id: i64) {
        let canceled = TaskChange {
            result: Some(OB_CANCELED),
            comment: Some("canceled by user".into()),
            ..TaskChange::default()
        };
        let released = self.catalog.drop_contexts_of_job(job_id).and_then(|()| {
            for task in self.catalog.tasks_of(job_id)? {
                if task.status == Status::Job(TaskStatus::Suspended) {
                    self.catalog
                        .move_task(task.task_id, TaskStatus::Canceled, &canceled)?;
                }
            }
            Ok(())
        });
        if let Err(e) = released {
            tracing::error!(job_id, error = %e, "cannot release what a cancelled job held");
        }
    }

    /// A job's worker starts: INIT → DOING. A job already moved on (cancelled before its worker
    /// ran) stays as it is, and the worker finds that out through its token.
    fn start_job(&self, job_id: i64) {
        if let Err(e) = self.catalog.move_job_from(
            job_id,
            JobStatus::Init,
            JobStatus::Doing,
            &JobChange::default(),
        ) {
            tracing::error!(job_id, error = %e, "cannot record the start of a job");
        }
    }

    /// A task starts (INIT or SUSPENDED → DOING); false when it must not run: it was ended
    /// meanwhile, or its start cannot be recorded.
    fn start_task(&self, task_id: i64) -> bool {
        self.catalog
            .move_task(task_id, TaskStatus::Doing, &TaskChange::default())
            .unwrap_or_else(|e| {
                tracing::error!(task_id, error = %e, "cannot record the start of a task");
                false
            })
    }

    /// Ends a task through the state machine; false when it had ended already.
    fn end_task(&self, task_id: i64, to: impl Into<TaskState>, result: i64, comment: &str) -> bool {
        let change = TaskChange {
            result: Some(result),
            comment: Some(comment.into()),
            ..TaskChange::default()
        };
        self.catalog
            .move_task(task_id, to, &change)
            .unwrap_or_else(|e| {
                tracing::error!(task_id, error = %e, "cannot record the end of a task");
                false
            })
    }

    /// An immediate cancel of a restore or validation: CANCELING, durable, then its workers are
    /// told. False when the job had already ended. A job without workers (none in this process)
    /// ends CANCELED at once rather than wait for a worker that will never come.
    fn request_cancel(&self, job_id: i64) -> SqlResult<bool> {
        let requested = JobChange {
            stop_mode: Some(StopMode::Immediate),
            ..JobChange::default()
        };
        if !self
            .catalog
            .move_job(job_id, JobStatus::Canceling, &requested)?
        {
            return Ok(false);
        }
        match self.control_of(job_id) {
            Some(control) => control.interrupt(Interrupt::Cancel),
            None => {
                self.end_job(
                    job_id,
                    JobStatus::Canceled,
                    JobChange::canceled("canceled by user"),
                );
                self.announce_end(job_id);
            }
        }
        Ok(true)
    }
}

/// The error a WAIT on an ended job answers with, or `None` when it completed.
pub fn job_error(job: &JobRecord) -> Option<SqlError> {
    let comment = job.comment.clone().unwrap_or_default();
    // Copy jobs speak OceanBase 3.x: FINISH with RESULT 0 is success, CANCEL a cancel.
    let status = match job.status {
        Status::Copy(CopyStatus::Finish) if job.result == 0 => JobStatus::Completed,
        Status::Copy(CopyStatus::Finish) => JobStatus::Failed,
        Status::Copy(CopyStatus::Cancel) => JobStatus::Canceled,
        Status::Copy(_) => return None,
        Status::Job(s) => s,
    };
    match status {
        JobStatus::Canceled => Some(
            SqlError::new(
                sqlstate::QUERY_CANCELED,
                format!("job {} was canceled: {comment}", job.job_id),
            )
            .with_ob("OB_CANCELED", 4072),
        ),
        JobStatus::Failed => {
            let code = job
                .error_code
                .as_deref()
                .and_then(crate::error::SqlState::parse)
                .unwrap_or(sqlstate::INTERNAL_ERROR);
            Some(SqlError::new(
                code,
                format!("job {} failed: {comment}", job.job_id),
            ))
        }
        _ => None,
    }
}

/// Publishes a task's figures (in memory, where the views and WAIT read them) once a second until
/// the returned token is cancelled; the catalog makes them durable with the task's checkpoints
/// and status changes.
fn watch_progress(
    catalog: Arc<Catalog>,
    task_id: i64,
    progress: Arc<Progress>,
) -> CancellationToken {
    every_second(progress, move |figures| {
        catalog.live_progress().set_task(task_id, *figures);
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
    // The blocking thread logs in the job's and task's spans too.
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(work))
        .await
        .unwrap_or_else(|e| {
            Err(EngineError::Io {
                operation: "run",
                path: format!("{what} worker").into(),
                source: std::io::Error::other(e.to_string()),
            })
        })
}

pub use destination::root as destination_root;

/// How an engine failure reads in a task's COMMENT: what failed, where, and why.
pub fn failure_comment(what: &str, e: &EngineError) -> String {
    format!("{what} failed: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::contexts::{NewContext, Reason};
    use crate::catalog::jobs::{NewJob, NewTask};

    fn backup_job(catalog: &Catalog) -> (i64, i64) {
        let (job_id, tasks) = catalog
            .create_job(
                JobKind::Backup,
                &NewJob {
                    tenant_id: 1001,
                    job_level: "USER_TENANT".into(),
                    ..NewJob::default()
                },
                &[NewTask {
                    tenant_id: 1001,
                    allocate_set: true,
                    ..NewTask::default()
                }],
            )
            .unwrap();
        (job_id, tasks[0].task_id)
    }

    fn context(catalog: &Catalog, job_id: i64, task_id: i64, reason: Reason) {
        catalog
            .keep_context(&NewContext {
                job_id,
                task_id,
                tenant_id: 1001,
                path: "file:///nowhere".into(),
                snapshot_name: String::new(),
                restartable: true,
                restart_pass: 0,
                bytes_done: 64 << 20,
                files_done: 1,
                checkpoint_time: None,
                reason,
                attempts: 0,
                next_restart_time: Some(0),
            })
            .unwrap();
    }

    /// A job the user was cancelling when the server died ends CANCELED at the next start,
    /// keeps no context and is never restarted (Backup Exec: a user cancel is final).
    #[tokio::test]
    async fn a_job_cancelling_when_the_server_died_ends_canceled_and_keeps_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(tmp.path()).unwrap();
        let (job_id, task_id) = backup_job(&catalog);
        let none = JobChange::default();
        assert!(catalog.move_job(job_id, JobStatus::Doing, &none).unwrap());
        assert!(
            catalog
                .move_task(task_id, TaskStatus::Doing, &TaskChange::default())
                .unwrap()
        );
        assert!(
            catalog
                .move_job(job_id, JobStatus::Canceling, &none)
                .unwrap()
        );
        context(&catalog, job_id, task_id, Reason::Failed);

        let executor = Executor::new(catalog.clone(), tokio::runtime::Handle::current());
        executor.recover().unwrap();
        let job = catalog.job(job_id).unwrap().unwrap();
        assert_eq!(job.status, Status::Job(JobStatus::Canceled));
        assert_eq!(job.result, OB_CANCELED);
        let task = &catalog.tasks_of(job_id).unwrap()[0];
        assert_eq!(task.status, Status::Job(TaskStatus::Canceled));
        assert!(catalog.contexts_of_job(job_id).unwrap().is_empty());
        assert!(catalog.contexts_due(i64::MAX).unwrap().is_empty());
    }

    /// A job running when the server died fails with SERVER_RESTART and keeps a context.
    #[tokio::test]
    async fn a_job_running_when_the_server_died_fails_and_keeps_its_context() {
        let tmp = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(tmp.path()).unwrap();
        let (job_id, task_id) = backup_job(&catalog);
        catalog
            .move_job(job_id, JobStatus::Doing, &JobChange::default())
            .unwrap();
        catalog
            .move_task(task_id, TaskStatus::Doing, &TaskChange::default())
            .unwrap();
        let executor = Executor::new(catalog.clone(), tokio::runtime::Handle::current());
        executor.recover().unwrap();
        let job = catalog.job(job_id).unwrap().unwrap();
        assert_eq!(job.status, Status::Job(JobStatus::Failed));
        assert!(job.comment.unwrap().starts_with("SERVER_RESTART"));
        let contexts = catalog.contexts_of_job(job_id).unwrap();
        assert_eq!(contexts.len(), 1);
        assert_eq!(contexts[0].reason, "SERVER_RESTART");
    }

    /// Two writers that read the same status: only the first move wins; the second is refused
    /// by the compare-and-set instead of overwriting an end.
    #[test]
    fn a_status_move_is_a_compare_and_set() {
        let tmp = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(tmp.path()).unwrap();
        let (job_id, task_id) = backup_job(&catalog);
        let none = JobChange::default();
        assert!(catalog.move_job(job_id, JobStatus::Doing, &none).unwrap());
        // The worker completes; a cancel that read DOING before it comes second.
        assert!(
            catalog
                .move_job(job_id, JobStatus::Completed, &JobChange::completed(""))
                .unwrap()
        );
        assert!(
            !catalog
                .move_job(job_id, JobStatus::Canceling, &none)
                .unwrap()
        );
        assert!(
            !catalog
                .move_job(job_id, JobStatus::Suspending, &none)
                .unwrap()
        );
        let job = catalog.job(job_id).unwrap().unwrap();
        assert_eq!(job.status, Status::Job(JobStatus::Completed));
        assert!(
            !catalog
                .set_stop_mode::<JobStatus>(job_id, StopMode::Graceful)
                .unwrap()
        );
        // A task ended by FORCE cannot complete afterwards, and gets no set.
        let change = TaskChange::default();
        assert!(
            catalog
                .move_task(task_id, TaskStatus::Doing, &change)
                .unwrap()
        );
        assert!(
            catalog
                .move_task(task_id, TaskStatus::Canceled, &change)
                .unwrap()
        );
        let set = crate::catalog::jobs::NewBackupSet {
            tenant_id: 1001,
            backup_set_id: 1,
            job_id,
            backup_type: "FULL".into(),
            path: "file:///nowhere".into(),
            ..Default::default()
        };
        assert!(
            !catalog
                .complete_backup_task(task_id, &set, &TaskProgress::default(), "")
                .unwrap()
        );
        assert!(catalog.backup_set(1).unwrap().is_none());
    }

    /// A worker that decided COMPLETED while a CANCEL moved its job to CANCELING ends it
    /// CANCELED: the statement wins, and the job never stays CANCELING.
    #[tokio::test]
    async fn a_worker_ending_a_job_that_is_being_cancelled_ends_it_canceled() {
        let tmp = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(tmp.path()).unwrap();
        let (job_id, _) = backup_job(&catalog);
        let none = JobChange::default();
        catalog.move_job(job_id, JobStatus::Doing, &none).unwrap();
        catalog
            .move_job(job_id, JobStatus::Canceling, &none)
            .unwrap();
        let executor = Executor::new(catalog.clone(), tokio::runtime::Handle::current());
        assert_eq!(
            executor.end_job(job_id, JobStatus::Completed, JobChange::completed("")),
            Some(Status::Job(JobStatus::Canceled))
        );
        let job = catalog.job(job_id).unwrap().unwrap();
        assert_eq!(job.status, Status::Job(JobStatus::Canceled));
        assert_eq!(job.comment.as_deref(), Some("canceled by user"));
        // An ended job stays as it ended.
        assert_eq!(
            executor.end_job(
                job_id,
                JobStatus::Failed,
                JobChange::failed(sqlstate::IO_ERROR, "x".into())
            ),
            None
        );
    }
}
