//! Jobs, their tasks, and the backup sets they produce: the records the executor writes as work
//! moves through its state machines and the views read.

use super::status::{JobState, JobStatus, StateMachine, Status, TaskState, TaskStatus};
use super::{Catalog, CatalogError, Row, Txn, Value, now_micros};
use crate::error::SqlState;

/// The kinds of job, as stored in `job.job_kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    Backup,
    Restore,
    Validate,
    /// Copies of backup sets to BACKUP_BACKUP_DEST.
    BackupBackupset,
    /// Copies of archive log pieces to BACKUP_BACKUP_DEST.
    BackupBackuppiece,
    /// Deletion of sets, and the collection of what they held.
    Delete,
}

impl JobKind {
    pub const ALL: [JobKind; 6] = [
        JobKind::Backup,
        JobKind::Restore,
        JobKind::Validate,
        JobKind::BackupBackupset,
        JobKind::BackupBackuppiece,
        JobKind::Delete,
    ];

    pub fn parse(word: &str) -> Option<JobKind> {
        JobKind::ALL.into_iter().find(|k| k.as_str() == word)
    }

    /// Copies speak OceanBase 3.x's words (SCHEDULE ... FINISH, CANCEL); every other kind 4.x's.
    pub fn speaks_copy_words(self) -> bool {
        matches!(self, JobKind::BackupBackupset | JobKind::BackupBackuppiece)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Backup => "BACKUP",
            JobKind::Restore => "RESTORE",
            JobKind::Validate => "VALIDATE",
            JobKind::BackupBackupset => "BACKUP_BACKUPSET",
            JobKind::BackupBackuppiece => "BACKUP_BACKUPPIECE",
            JobKind::Delete => "DELETE",
        }
    }
}

/// A new job row; kind-specific fields stay `None` for other kinds.
#[derive(Debug, Clone, Default)]
pub struct NewJob {
    pub tenant_id: i64,
    pub job_level: String,
    pub executor_tenant_id: String,
    pub backup_type: Option<String>,
    pub plus_archivelog: bool,
    pub description: Option<String>,
    pub path: Option<String>,
    pub job_type: Option<String>,
    pub validate_level: Option<String>,
    pub backup_set_id: Option<i64>,
    /// The archive-log piece the job works on (piece validation).
    pub piece_id: Option<i64>,
    pub restore_tenant_name: Option<String>,
    pub backup_tenant_name: Option<String>,
    pub backup_tenant_id: Option<i64>,
    pub backup_dest: Option<String>,
    pub restore_target: Option<String>,
    pub restore_option: Option<String>,
    pub restore_until: Option<String>,
    pub set_list: Option<String>,
    pub total_bytes: Option<i64>,
    /// How many times the work was resumed from a checkpoint before this job.
    pub restart_pass: i64,
    /// The job this one resumes, when it restarts an interrupted task.
    pub initiator_job_id: Option<i64>,
    pub comment: Option<String>,
    /// What a deletion was asked for (`PARAMETER`): the expiry time, or the ids.
    pub parameter: Option<String>,
    /// `PASSWORD` for a backup written to an encrypted destination; `NONE` when unset.
    pub encryption_mode: Option<String>,
}

/// A new task row: one tenant's (or one set's) share of a job.
#[derive(Debug, Clone, Default)]
pub struct NewTask {
    pub tenant_id: i64,
    /// Allocate a new backup set id for the task (data backup).
    pub allocate_set: bool,
    /// The set the task works on when it already exists (validate).
    pub backup_set_id: Option<i64>,
    /// The archive-log piece the task works on (piece validation).
    pub piece_id: Option<i64>,
    /// The copy the task works on (0: the original; deletion of a copy).
    pub copy_id: i64,
    pub path: Option<String>,
    pub total_bytes: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct TaskRecord {
    pub task_id: i64,
    pub job_id: i64,
    pub tenant_id: i64,
    pub backup_set_id: Option<i64>,
    pub seq: i64,
    pub status: TaskState,
    pub path: Option<String>,
    /// The piece a piece task works on, and the copy (0: the original).
    pub piece_id: Option<i64>,
    pub copy_id: i64,
}

#[derive(Debug, Clone)]
pub struct JobRecord {
    pub job_id: i64,
    pub kind: JobKind,
    pub tenant_id: i64,
    pub status: JobState,
    pub result: i64,
    pub error_code: Option<String>,
    pub comment: Option<String>,
    pub backup_type: Option<String>,
    pub plus_archivelog: bool,
    pub restore_target: Option<String>,
    pub restore_tenant_name: Option<String>,
    pub restart_pass: i64,
    pub description: Option<String>,
}

/// How a user asked a job to stop, as `STOP_MODE` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    Immediate,
    Graceful,
}

impl StopMode {
    pub fn as_str(self) -> &'static str {
        match self {
            StopMode::Immediate => "IMMEDIATE",
            StopMode::Graceful => "GRACEFUL",
        }
    }
}

/// What a job's status move writes besides the status; `None` leaves a column as it is.
#[derive(Debug, Clone, Default)]
pub struct JobChange {
    pub result: Option<i64>,
    /// The SQLSTATE a WAIT on the failed job answers with.
    pub error_code: Option<SqlState>,
    pub comment: Option<String>,
    pub stop_mode: Option<StopMode>,
    pub restart_pass: Option<i64>,
}

/// OceanBase's result code of a job cancelled by a user.
pub const OB_CANCELED: i64 = -4072;
/// Result code of a job that failed for any other reason.
pub const OB_ERROR: i64 = -4000;

impl JobChange {
    pub fn completed(comment: impl Into<String>) -> JobChange {
        JobChange {
            result: Some(0),
            comment: Some(comment.into()),
            ..JobChange::default()
        }
    }

    /// RESULT `OB_CANCELED`; a WAIT answers 57014.
    pub fn canceled(comment: impl Into<String>) -> JobChange {
        JobChange {
            result: Some(OB_CANCELED),
            error_code: Some(SqlState::QueryCanceled),
            comment: Some(comment.into()),
            ..JobChange::default()
        }
    }

    /// RESULT `OB_ERROR`; a WAIT answers `code`.
    pub fn failed(code: SqlState, comment: String) -> JobChange {
        JobChange {
            result: Some(OB_ERROR),
            error_code: Some(code),
            comment: Some(comment),
            ..JobChange::default()
        }
    }
}

/// What a task's status move writes besides the status.
#[derive(Debug, Clone, Default)]
pub struct TaskChange {
    pub result: Option<i64>,
    pub comment: Option<String>,
    pub restart_pass: Option<i64>,
}

/// Progress figures of a running task, published at least once a second.
#[derive(Debug, Clone, Copy, Default)]
pub struct TaskProgress {
    pub input_bytes: i64,
    pub output_bytes: i64,
    pub output_rate_bytes: f64,
    pub file_count: i64,
    pub finish_file_count: i64,
    pub total_bytes: i64,
    pub data_progress: f64,
}

impl TaskProgress {
    /// The task columns the figures are kept in, in the order of [`TaskProgress::values`].
    pub const COLUMNS: [&'static str; 7] = [
        "input_bytes",
        "output_bytes",
        "output_rate_bytes",
        "file_count",
        "finish_file_count",
        "total_bytes",
        "data_progress",
    ];

    pub fn values(&self) -> [Value; 7] {
        [
            self.input_bytes.into(),
            self.output_bytes.into(),
            self.output_rate_bytes.into(),
            self.file_count.into(),
            self.finish_file_count.into(),
            self.total_bytes.into(),
            self.data_progress.into(),
        ]
    }
}

/// A completed backup set, as CDB_OB_BACKUP_SET_FILES shows it.
#[derive(Debug, Clone, Default)]
pub struct NewBackupSet {
    pub tenant_id: i64,
    pub backup_set_id: i64,
    pub job_id: i64,
    pub backup_type: String,
    pub prev_full_backup_set_id: Option<i64>,
    pub prev_inc_backup_set_id: Option<i64>,
    pub start_ts: i64,
    pub end_ts: i64,
    pub plus_archivelog: bool,
    pub input_bytes: i64,
    pub output_bytes: i64,
    pub file_count: i64,
    pub comment: Option<String>,
    pub path: String,
    /// `PASSWORD` when the set is encrypted, else `NONE`.
    pub encryption_mode: String,
}

#[derive(Debug, Clone)]
pub struct BackupSetRecord {
    pub tenant_id: i64,
    pub backup_set_id: i64,
    pub backup_type: String,
    pub prev_full_backup_set_id: Option<i64>,
    pub status: String,
    pub file_status: String,
    pub input_bytes: i64,
    pub path: String,
    pub end_ts: i64,
}

fn text(v: &Value) -> Option<String> {
    v.clone().into_string()
}

/// A status word the record's kind does not speak: the catalog was written by something else.
/// It reads as an end, so that nothing acts on the record.
fn unknown_status(what: &str, id: i64, word: &str) {
    tracing::error!(
        id,
        word,
        "the catalog holds a {what} status this server does not know"
    );
}

fn task_from(r: &Row, kind: JobKind) -> TaskRecord {
    let task_id = r[0].as_i64().unwrap_or_default();
    let word = text(&r[5]).unwrap_or_default();
    let status = TaskState::parse(&word, kind.speaks_copy_words()).unwrap_or_else(|| {
        unknown_status("task", task_id, &word);
        TaskState::Job(TaskStatus::Failed)
    });
    TaskRecord {
        task_id,
        job_id: r[1].as_i64().unwrap_or_default(),
        tenant_id: r[2].as_i64().unwrap_or_default(),
        backup_set_id: r[3].as_i64(),
        seq: r[4].as_i64().unwrap_or_default(),
        status,
        path: text(&r[6]),
        piece_id: r[8].as_i64(),
        copy_id: r[9].as_i64().unwrap_or_default(),
    }
}

const TASK_COLUMNS: &str = "t.task_id, t.job_id, t.tenant_id, t.backup_set_id, t.seq, t.status, \
    t.path, j.job_kind, t.piece_id, t.copy_id";
const JOB_COLUMNS: &str = "job_id, job_kind, tenant_id, status, result, error_code, comment, \
    backup_type, plus_archivelog, restore_target, restore_tenant_name, restart_pass, description";

/// The kind a row names in column `i`; an unknown kind reads as a data backup.
fn kind_at(r: &Row, i: usize) -> JobKind {
    text(&r[i])
        .as_deref()
        .and_then(JobKind::parse)
        .unwrap_or(JobKind::Backup)
}
const SET_COLUMNS: &str = "tenant_id, backup_set_id, backup_type, prev_full_backup_set_id, status, \
    file_status, input_bytes, path, end_ts";

fn job_from(r: &Row) -> JobRecord {
    let job_id = r[0].as_i64().unwrap_or_default();
    let kind = kind_at(r, 1);
    let word = text(&r[3]).unwrap_or_default();
    let status = JobState::parse(&word, kind.speaks_copy_words()).unwrap_or_else(|| {
        unknown_status("job", job_id, &word);
        JobState::Job(JobStatus::Failed)
    });
    JobRecord {
        job_id,
        kind,
        tenant_id: r[2].as_i64().unwrap_or_default(),
        status,
        result: r[4].as_i64().unwrap_or_default(),
        error_code: text(&r[5]),
        comment: text(&r[6]),
        backup_type: text(&r[7]),
        plus_archivelog: r[8].as_i64() == Some(1),
        restore_target: text(&r[9]),
        restore_tenant_name: text(&r[10]),
        restart_pass: r[11].as_i64().unwrap_or(0),
        description: text(&r[12]),
    }
}

fn set_from(r: &Row) -> BackupSetRecord {
    BackupSetRecord {
        tenant_id: r[0].as_i64().unwrap_or_default(),
        backup_set_id: r[1].as_i64().unwrap_or_default(),
        backup_type: text(&r[2]).unwrap_or_default(),
        prev_full_backup_set_id: r[3].as_i64(),
        status: text(&r[4]).unwrap_or_default(),
        file_status: text(&r[5]).unwrap_or_default(),
        input_bytes: r[6].as_i64().unwrap_or_default(),
        path: text(&r[7]).unwrap_or_default(),
        end_ts: r[8].as_i64().unwrap_or_default(),
    }
}

pub(super) fn write_task_progress(
    tx: &dyn Txn,
    task_id: i64,
    p: &TaskProgress,
) -> Result<(), CatalogError> {
    let sets: Vec<String> = TaskProgress::COLUMNS
        .iter()
        .map(|c| format!("{c} = ?"))
        .collect();
    let mut params = p.values().to_vec();
    params.push(task_id.into());
    tx.execute(
        &format!("UPDATE task SET {} WHERE task_id = ?", sets.join(", ")),
        &params,
    )?;
    Ok(())
}

pub(super) fn insert_job(tx: &dyn Txn, kind: JobKind, job: &NewJob) -> Result<i64, CatalogError> {
    let job_id = Catalog::next_id(tx, "job")?;
    tx.execute(
        "INSERT INTO job (job_id, job_kind, tenant_id, incarnation, backup_set_id, \
         initiator_tenant_id, initiator_job_id, executor_tenant_id, plus_archivelog, backup_type, \
         job_level, encryption_mode, start_ts, status, result, description, path, stop_mode, \
         restart_pass, job_type, validate_level, restore_tenant_name, backup_tenant_name, \
         backup_tenant_id, backup_dest, restore_target, restore_option, restore_until, set_list, \
         total_bytes, finish_bytes, comment, piece_id, parameter) VALUES (?, ?, ?, 1, ?, 1, ?, ?, ?, \
         ?, ?, ?, ?, 'INIT', 0, ?, ?, 'NONE', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)",
        &[
            job_id.into(),
            kind.as_str().into(),
            job.tenant_id.into(),
            job.backup_set_id.into(),
            job.initiator_job_id.unwrap_or(0).into(),
            job.executor_tenant_id.clone().into(),
            job.plus_archivelog.into(),
            job.backup_type.clone().into(),
            job.job_level.clone().into(),
            job.encryption_mode
                .clone()
                .unwrap_or_else(|| "NONE".into())
                .into(),
            now_micros().into(),
            job.description.clone().into(),
            job.path.clone().into(),
            job.restart_pass.into(),
            job.job_type.clone().into(),
            job.validate_level.clone().into(),
            job.restore_tenant_name.clone().into(),
            job.backup_tenant_name.clone().into(),
            job.backup_tenant_id.into(),
            job.backup_dest.clone().into(),
            job.restore_target.clone().into(),
            job.restore_option.clone().into(),
            job.restore_until.clone().into(),
            job.set_list.clone().into(),
            job.total_bytes.into(),
            job.comment.clone().into(),
            job.piece_id.into(),
            job.parameter.clone().into(),
        ],
    )?;
    Ok(job_id)
}

impl Catalog {
    /// Records a job and its tasks (all INIT) in one transaction; returns the job id and the
    /// tasks in processing order.
    pub fn create_job(
        &self,
        kind: JobKind,
        job: &NewJob,
        tasks: &[NewTask],
    ) -> Result<(i64, Vec<TaskRecord>), CatalogError> {
        self.write(|tx| {
            let job_id = insert_job(tx, kind, job)?;
            let mut out = Vec::with_capacity(tasks.len());
            for (seq, task) in tasks.iter().enumerate() {
                let task_id = Catalog::next_id(tx, "task")?;
                let set_id = if task.allocate_set {
                    Some(Catalog::next_id(tx, "backup_set")?)
                } else {
                    task.backup_set_id
                };
                tx.execute(
                    "INSERT INTO task (task_id, job_id, tenant_id, incarnation, backup_set_id, \
                     copy_id, seq, status, input_bytes, output_bytes, output_rate_bytes, \
                     file_count, finish_file_count, total_bytes, data_progress, result, path, \
                     restart_pass, piece_id) \
                     VALUES (?, ?, ?, 1, ?, ?, ?, 'INIT', 0, 0, 0, 0, 0, ?, 0, 0, ?, ?, ?)",
                    &[
                        task_id.into(),
                        job_id.into(),
                        task.tenant_id.into(),
                        set_id.into(),
                        task.copy_id.into(),
                        (seq as i64).into(),
                        task.total_bytes.unwrap_or(0).into(),
                        task.path.clone().into(),
                        job.restart_pass.into(),
                        task.piece_id.into(),
                    ],
                )?;
                out.push(TaskRecord {
                    task_id,
                    job_id,
                    tenant_id: task.tenant_id,
                    backup_set_id: set_id,
                    seq: seq as i64,
                    status: TaskState::Job(TaskStatus::Init),
                    path: task.path.clone(),
                    piece_id: task.piece_id,
                    copy_id: task.copy_id,
                });
            }
            if out.len() == 1 && kind == JobKind::Backup && job.job_level == "USER_TENANT" {
                tx.execute(
                    "UPDATE job SET backup_set_id = ? WHERE job_id = ?",
                    &[out[0].backup_set_id.into(), job_id.into()],
                )?;
            }
            Ok((job_id, out))
        })
    }

    pub fn job(&self, job_id: i64) -> Result<Option<JobRecord>, CatalogError> {
        let rows = self.read(
            &format!("SELECT {JOB_COLUMNS} FROM job WHERE job_id = ?"),
            &[job_id.into()],
        )?;
        Ok(rows.first().map(job_from))
    }

    /// Jobs of a kind in one of `statuses`, oldest first.
    pub fn jobs_in<S: StateMachine>(
        &self,
        kind: JobKind,
        statuses: &[S],
    ) -> Result<Vec<JobRecord>, CatalogError> {
        let marks = vec!["?"; statuses.len()].join(", ");
        let mut params: Vec<Value> = vec![kind.as_str().into()];
        params.extend(statuses.iter().map(|s| Value::from(s.as_str())));
        let rows = self.read(
            &format!("SELECT {JOB_COLUMNS} FROM job WHERE job_kind = ? AND status IN ({marks}) ORDER BY job_id"),
            &params,
        )?;
        Ok(rows.iter().map(job_from).collect())
    }

    pub fn tasks_of(&self, job_id: i64) -> Result<Vec<TaskRecord>, CatalogError> {
        let rows = self.read(
            &format!(
                "SELECT {TASK_COLUMNS} FROM task t JOIN job j ON t.job_id = j.job_id \
                 WHERE t.job_id = ? ORDER BY t.seq"
            ),
            &[job_id.into()],
        )?;
        Ok(rows.iter().map(|r| task_from(r, kind_at(r, 7))).collect())
    }

    /// Whether `tenant_id` has a data backup task that has not ended.
    pub fn backup_running_for(&self, tenant_id: i64) -> Result<Option<i64>, CatalogError> {
        let live = TaskStatus::live();
        let marks = vec!["?"; live.len()].join(", ");
        let mut params: Vec<Value> = vec![tenant_id.into()];
        params.extend(live.into_iter().map(Value::from));
        let rows = self.read(
            &format!(
                "SELECT t.job_id FROM task t JOIN job j ON t.job_id = j.job_id \
                 WHERE j.job_kind = 'BACKUP' AND t.tenant_id = ? AND t.status IN ({marks}) LIMIT 1"
            ),
            &params,
        )?;
        Ok(rows.first().and_then(|r| r[0].as_i64()))
    }

    /// Jobs of any kind that have not ended.
    pub fn unfinished_jobs(&self) -> Result<Vec<JobRecord>, CatalogError> {
        let rows = self.read(
            &format!("SELECT {JOB_COLUMNS} FROM job ORDER BY job_id"),
            &[],
        )?;
        Ok(rows
            .iter()
            .map(job_from)
            .filter(|j| !j.status.is_end())
            .collect())
    }

    /// Moves a job to `to` if, and only if, it is in a state from which the state machine
    /// allows that move (a compare-and-set on the status column); returns whether it moved.
    /// The end time is set when `to` is an end.
    pub fn move_job(
        &self,
        job_id: i64,
        to: impl Into<JobState>,
        change: &JobChange,
    ) -> Result<bool, CatalogError> {
        match to.into() {
            Status::Job(s) => self.cas_job(job_id, s, change),
            Status::Copy(c) => self.cas_job(job_id, c, change),
        }
    }

    /// [`Catalog::move_job`] from exactly one state, for moves whose meaning depends on where
    /// the job comes from (a worker's start is INIT → DOING, never SUSPENDED → DOING, which only
    /// a resume may do). A move the state machine does not allow moves nothing.
    pub fn move_job_from(
        &self,
        job_id: i64,
        from: JobStatus,
        to: JobStatus,
        change: &JobChange,
    ) -> Result<bool, CatalogError> {
        if from.transition(to).is_err() {
            return Ok(false);
        }
        self.cas_job_from(job_id, &[from.as_str()], to, change)
    }

    fn cas_job<S: StateMachine>(
        &self,
        job_id: i64,
        to: S,
        change: &JobChange,
    ) -> Result<bool, CatalogError> {
        self.cas_job_from(job_id, &S::sources(to), to, change)
    }

    fn cas_job_from<S: StateMachine>(
        &self,
        job_id: i64,
        sources: &[&str],
        to: S,
        change: &JobChange,
    ) -> Result<bool, CatalogError> {
        let marks = vec!["?"; sources.len()].join(", ");
        let mut params: Vec<Value> = vec![
            to.as_str().into(),
            change.result.into(),
            change.error_code.map(|c| c.code().to_string()).into(),
            change.comment.clone().into(),
            change.stop_mode.map(|m| m.as_str().to_string()).into(),
            change.restart_pass.into(),
            if to.is_end() {
                now_micros().into()
            } else {
                Value::Null
            },
            job_id.into(),
        ];
        params.extend(sources.iter().map(|s| Value::from(*s)));
        // A restore's figures are made durable with its end.
        let live = if to.is_end() {
            self.live_progress().job(job_id)
        } else {
            None
        };
        let moved = self.write(|tx| {
            let moved = tx.execute(
                &format!(
                    "UPDATE job SET status = ?, result = coalesce(?, result), \
                     error_code = coalesce(?, error_code), comment = coalesce(?, comment), \
                     stop_mode = coalesce(?, stop_mode), restart_pass = coalesce(?, restart_pass), \
                     end_ts = coalesce(?, end_ts) WHERE job_id = ? AND status IN ({marks})"
                ),
                &params,
            )?;
            if moved > 0
                && let Some(f) = live
            {
                tx.execute(
                    "UPDATE job SET finish_bytes = max(coalesce(finish_bytes, 0), ?), \
                     finish_file_count = max(coalesce(finish_file_count, 0), ?), \
                     file_count = coalesce(file_count, ?), \
                     output_bytes = max(coalesce(output_bytes, 0), ?) WHERE job_id = ?",
                    &[
                        f.bytes.into(),
                        f.files.into(),
                        f.total_files.into(),
                        f.written.into(),
                        job_id.into(),
                    ],
                )?;
            }
            Ok(moved > 0)
        })?;
        if moved && live.is_some() {
            self.live_progress().forget_job(job_id);
        }
        Ok(moved)
    }

    /// Records how a user asked a job that has not ended to stop, without moving its status
    /// (a graceful stop lets the job run on); returns whether the job was still live in the
    /// words of `S`.
    pub fn set_stop_mode<S: StateMachine>(
        &self,
        job_id: i64,
        mode: StopMode,
    ) -> Result<bool, CatalogError> {
        self.write(|tx| {
            let live = S::live();
            let marks = vec!["?"; live.len()].join(", ");
            let mut params: Vec<Value> = vec![mode.as_str().into(), job_id.into()];
            params.extend(live.into_iter().map(Value::from));
            let moved = tx.execute(
                &format!("UPDATE job SET stop_mode = ? WHERE job_id = ? AND status IN ({marks})"),
                &params,
            )?;
            Ok(moved > 0)
        })
    }

    /// A single-tenant backup job shows the type its set ended up with (an INCREMENTAL with
    /// no base runs in full).
    pub fn set_job_backup_type(&self, job_id: i64, backup_type: &str) -> Result<(), CatalogError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE job SET backup_type = ? WHERE job_id = ?",
                &[backup_type.into(), job_id.into()],
            )?;
            Ok(())
        })
    }

    /// Moves a task to `to` as a compare-and-set derived from the state machine (see
    /// [`Catalog::move_job`]); a task moving to DOING gets its start time the first time.
    pub fn move_task(
        &self,
        task_id: i64,
        to: impl Into<TaskState>,
        change: &TaskChange,
    ) -> Result<bool, CatalogError> {
        match to.into() {
            Status::Job(s) => self.cas_task(task_id, s, change),
            Status::Copy(c) => self.cas_task(task_id, c, change),
        }
    }

    fn cas_task<S: StateMachine>(
        &self,
        task_id: i64,
        to: S,
        change: &TaskChange,
    ) -> Result<bool, CatalogError> {
        let sources = S::sources(to);
        let marks = vec!["?"; sources.len()].join(", ");
        let now = now_micros();
        let mut params: Vec<Value> = vec![
            to.as_str().into(),
            change.result.into(),
            change.comment.clone().into(),
            change.restart_pass.into(),
            if to.is_end() { Value::Null } else { now.into() },
            if to.is_end() { now.into() } else { Value::Null },
            task_id.into(),
        ];
        params.extend(sources.into_iter().map(Value::from));
        // The figures the task reached are made durable with its status change.
        let live = self.live_progress().task(task_id);
        let moved = self.write(|tx| {
            let moved = tx.execute(
                &format!(
                    "UPDATE task SET status = ?, result = coalesce(?, result), \
                     comment = coalesce(?, comment), restart_pass = coalesce(?, restart_pass), \
                     start_ts = coalesce(start_ts, ?), end_ts = coalesce(?, end_ts) \
                     WHERE task_id = ? AND status IN ({marks})"
                ),
                &params,
            )?;
            if moved > 0
                && let Some(figures) = &live
            {
                write_task_progress(tx, task_id, figures)?;
            }
            Ok(moved > 0)
        })?;
        if moved && live.is_some() {
            self.live_progress().forget_task(task_id);
        }
        Ok(moved)
    }

    /// A job's final bytes (written by a restore, reclaimed by a deletion), durable; the
    /// in-memory figure is no longer needed.
    pub fn set_job_finish_bytes(&self, job_id: i64, bytes: i64) -> Result<(), CatalogError> {
        self.set_job_figures(job_id, bytes, None)
    }

    /// A job's final bytes and, for a restore, its entries restored of the set's entries and
    /// the bytes it really wrote.
    pub fn set_job_figures(
        &self,
        job_id: i64,
        bytes: i64,
        restore: Option<((i64, i64), i64)>,
    ) -> Result<(), CatalogError> {
        let (finished, total, written) = restore
            .map_or((Value::Null, Value::Null, Value::Null), |((f, t), w)| {
                (f.into(), t.into(), w.into())
            });
        self.write(|tx| {
            tx.execute(
                "UPDATE job SET finish_bytes = ?, finish_file_count = coalesce(?, finish_file_count), \
                 file_count = coalesce(?, file_count), output_bytes = coalesce(?, output_bytes) \
                 WHERE job_id = ?",
                &[bytes.into(), finished, total, written, job_id.into()],
            )?;
            Ok(())
        })?;
        self.live_progress().forget_job(job_id);
        Ok(())
    }

    /// A running task's COMMENT (what it waits for).
    pub fn set_task_comment(&self, task_id: i64, comment: &str) -> Result<(), CatalogError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE task SET comment = ? WHERE task_id = ?",
                &[comment.into(), task_id.into()],
            )?;
            Ok(())
        })
    }

    /// The completed, not deleted original sets of a tenant in a destination, by id.
    pub fn restorable_sets(&self, tenant_id: i64, path: &str) -> Result<Vec<i64>, CatalogError> {
        let rows = self.read(
            "SELECT backup_set_id FROM backup_set WHERE tenant_id = ? AND path = ? AND copy_id = 0 \
             AND status = 'COMPLETED' AND file_status <> 'DELETED' ORDER BY backup_set_id",
            &[tenant_id.into(), path.into()],
        )?;
        Ok(rows.iter().filter_map(|r| r[0].as_i64()).collect())
    }

    /// A live restore, validation or copy that reads set `set_id`: its job id and kind.
    pub fn job_using_set(&self, set_id: i64) -> Result<Option<(i64, String)>, CatalogError> {
        use super::status::{CopyStatus, StateMachine};
        let live: Vec<&str> = JobStatus::live()
            .into_iter()
            .chain(CopyStatus::live())
            .collect();
        let marks = vec!["?"; live.len()].join(", ");
        let mut params: Vec<Value> = vec![set_id.to_string().into(), set_id.into(), set_id.into()];
        params.extend(live.iter().map(|s| (*s).into()));
        let rows = self.read(
            &format!(
                "SELECT j.job_id, j.job_kind FROM job j WHERE j.job_kind IN \
                 ('RESTORE', 'VALIDATE', 'BACKUP_BACKUPSET') AND (j.set_list = ? \
                 OR j.backup_set_id = ? OR EXISTS (SELECT 1 FROM task t WHERE t.job_id = j.job_id \
                 AND t.backup_set_id = ?)) AND j.status IN ({marks}) ORDER BY j.job_id LIMIT 1"
            ),
            &params,
        )?;
        Ok(rows.first().map(|r| {
            (
                r[0].as_i64().unwrap_or_default(),
                r[1].as_str().unwrap_or_default().to_string(),
            )
        }))
    }

    /// What an ended job's COMMENT adds once its end is recorded (the tenant a restore made).
    pub fn set_job_comment(&self, job_id: i64, comment: &str) -> Result<(), CatalogError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE job SET comment = ? WHERE job_id = ?",
                &[comment.into(), job_id.into()],
            )?;
            Ok(())
        })
    }

    /// A resumed task shows the pass it runs in.
    pub fn set_task_restart_pass(&self, task_id: i64, pass: i64) -> Result<(), CatalogError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE task SET restart_pass = ? WHERE task_id = ?",
                &[pass.into(), task_id.into()],
            )?;
            Ok(())
        })
    }

    /// Makes a task's final figures durable; the in-memory ones are no longer needed.
    pub fn task_progress(&self, task_id: i64, p: &TaskProgress) -> Result<(), CatalogError> {
        self.write(|tx| write_task_progress(tx, task_id, p))?;
        self.live_progress().forget_task(task_id);
        Ok(())
    }

    /// Records a set and ends its task COMPLETED in one transaction, so a set is never visible
    /// without its task having finished, nor the reverse. The task moves only from a state that
    /// may complete (DOING); a task ended meanwhile (CANCEL ALL BACKUP FORCE) gets no set, and
    /// the answer is `false`.
    pub fn complete_backup_task(
        &self,
        task_id: i64,
        set: &NewBackupSet,
        progress: &TaskProgress,
        comment: &str,
    ) -> Result<bool, CatalogError> {
        let sources = TaskStatus::sources(TaskStatus::Completed);
        let marks = vec!["?"; sources.len()].join(", ");
        let mut params: Vec<Value> = vec![
            comment.into(),
            now_micros().into(),
            progress.input_bytes.into(),
            progress.output_bytes.into(),
            progress.output_rate_bytes.into(),
            progress.file_count.into(),
            progress.finish_file_count.into(),
            progress.total_bytes.into(),
            progress.data_progress.into(),
            task_id.into(),
        ];
        params.extend(sources.into_iter().map(Value::from));
        self.write(|tx| {
            let moved = tx.execute(
                &format!(
                    "UPDATE task SET status = 'COMPLETED', result = 0, comment = ?, end_ts = ?, \
                     input_bytes = ?, output_bytes = ?, output_rate_bytes = ?, file_count = ?, \
                     finish_file_count = ?, total_bytes = ?, data_progress = ? WHERE task_id = ? \
                     AND status IN ({marks})"
                ),
                &params,
            )?;
            if moved == 0 {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO backup_set (tenant_id, backup_set_id, copy_id, dest_id, incarnation, \
                 job_id, backup_type, prev_full_backup_set_id, prev_inc_backup_set_id, start_ts, \
                 end_ts, status, file_status, plus_archivelog, input_bytes, output_bytes, \
                 file_count, encryption_mode, result, comment, path) VALUES (?, ?, 0, 1, 1, ?, ?, \
                 ?, ?, ?, ?, 'COMPLETED', 'AVAILABLE', ?, ?, ?, ?, ?, 0, ?, ?)",
                &[
                    set.tenant_id.into(),
                    set.backup_set_id.into(),
                    set.job_id.into(),
                    set.backup_type.clone().into(),
                    set.prev_full_backup_set_id.into(),
                    set.prev_inc_backup_set_id.into(),
                    set.start_ts.into(),
                    set.end_ts.into(),
                    set.plus_archivelog.into(),
                    set.input_bytes.into(),
                    set.output_bytes.into(),
                    set.file_count.into(),
                    set.encryption_mode.clone().into(),
                    set.comment.clone().into(),
                    set.path.clone().into(),
                ],
            )?;
            Ok(true)
        })
        .inspect(|_| self.live_progress().forget_task(task_id))
    }

    /// The newest completed original (copy 0) set of a tenant written to `path`.
    pub fn last_set(
        &self,
        tenant_id: i64,
        path: &str,
    ) -> Result<Option<BackupSetRecord>, CatalogError> {
        let rows = self.read(
            &format!(
                "SELECT {SET_COLUMNS} FROM backup_set WHERE tenant_id = ? AND path = ? AND copy_id = 0 \
                 AND status = 'COMPLETED' AND file_status <> 'DELETED' \
                 ORDER BY backup_set_id DESC LIMIT 1"
            ),
            &[tenant_id.into(), path.into()],
        )?;
        Ok(rows.first().map(set_from))
    }

    pub fn backup_set(&self, set_id: i64) -> Result<Option<BackupSetRecord>, CatalogError> {
        let rows = self.read(
            &format!(
                "SELECT {SET_COLUMNS} FROM backup_set WHERE backup_set_id = ? AND copy_id = 0"
            ),
            &[set_id.into()],
        )?;
        Ok(rows.first().map(set_from))
    }

    pub fn backup_sets(&self) -> Result<Vec<BackupSetRecord>, CatalogError> {
        let rows = self.read(
            &format!("SELECT {SET_COLUMNS} FROM backup_set WHERE copy_id = 0 AND status = 'COMPLETED' AND file_status <> 'DELETED' ORDER BY backup_set_id"),
            &[],
        )?;
        Ok(rows.iter().map(set_from).collect())
    }

    pub fn set_file_status(
        &self,
        set_id: i64,
        file_status: &str,
        comment: Option<&str>,
    ) -> Result<(), CatalogError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE backup_set SET file_status = ?, comment = COALESCE(?, comment) \
                 WHERE backup_set_id = ? AND copy_id = 0",
                &[
                    file_status.into(),
                    comment.map(str::to_string).into(),
                    set_id.into(),
                ],
            )?;
            Ok(())
        })
    }
}
