//! The progress of running work, kept in memory: figures move many times a second, and writing
//! each to SQLite would cost an fsync and empty every view's cache. The views and WAIT read these
//! figures over the durable rows (fresh at every tick of the workers, at least once a second);
//! the catalog makes them durable with every status change of the task or job and with every
//! checkpoint, so a restarted server still shows where work stopped.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::jobs::TaskProgress;

#[derive(Debug, Default)]
pub struct LiveProgress {
    figures: Mutex<Figures>,
    /// Moves on at every change, so that the views know their cached rows are stale.
    generation: AtomicU64,
}

#[derive(Debug, Default, Clone)]
pub struct Figures {
    /// A running task's figures, by task id.
    pub tasks: HashMap<i64, TaskProgress>,
    /// A running restore's figures, by job id (a restore has no tasks).
    pub jobs: HashMap<i64, JobFigures>,
}

/// What a job without tasks (a restore) has done so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct JobFigures {
    /// Bytes restored so far, as the set counts them (holes and unchanged files included).
    pub bytes: i64,
    /// Bytes actually written to the target.
    pub written: i64,
    /// Entries written, and the set's entries in all.
    pub files: i64,
    pub total_files: i64,
}

impl LiveProgress {
    pub fn set_task(&self, task_id: i64, progress: TaskProgress) {
        self.figures().tasks.insert(task_id, progress);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub fn set_job(&self, job_id: i64, figures: JobFigures) {
        self.figures().jobs.insert(job_id, figures);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub fn task(&self, task_id: i64) -> Option<TaskProgress> {
        self.figures().tasks.get(&task_id).copied()
    }

    pub fn job(&self, job_id: i64) -> Option<JobFigures> {
        self.figures().jobs.get(&job_id).copied()
    }

    /// Forgets a task's figures once they are durable; the generation does not move, as the
    /// durable row now says the same.
    pub fn forget_task(&self, task_id: i64) {
        self.figures().tasks.remove(&task_id);
    }

    pub fn forget_job(&self, job_id: i64) {
        self.figures().jobs.remove(&job_id);
    }

    /// Everything at one moment, for a view's rows.
    pub fn snapshot(&self) -> Figures {
        self.figures().clone()
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn figures(&self) -> std::sync::MutexGuard<'_, Figures> {
        self.figures.lock().expect("live progress poisoned")
    }
}
