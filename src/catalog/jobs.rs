//! Jobs, their tasks, and the backup sets they produce: the records the executor writes as work
//! moves through its state machines and the views read.

use super::{Catalog, CatalogError, Row, Txn, Value, now_micros};

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
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Backup => "BACKUP",
            JobKind::Restore => "RESTORE",
            JobKind::Validate => "VALIDATE",
            JobKind::BackupBackupset => "BACKUP_BACKUPSET",
            JobKind::BackupBackuppiece => "BACKUP_BACKUPPIECE",
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
    pub status: String,
    pub path: Option<String>,
}

#[derive(Debug, Clone)]
pub struct JobRecord {
    pub job_id: i64,
    pub kind: String,
    pub tenant_id: i64,
    pub status: String,
    pub result: i64,
    pub error_code: Option<String>,
    pub comment: Option<String>,
    pub backup_type: Option<String>,
    pub plus_archivelog: bool,
    pub restore_target: Option<String>,
    pub restore_tenant_name: Option<String>,
    pub restart_pass: i64,
}

/// Progress figures of a running task, written at least once a second.
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

fn task_from(r: &Row) -> TaskRecord {
    TaskRecord {
        task_id: r[0].as_i64().unwrap_or_default(),
        job_id: r[1].as_i64().unwrap_or_default(),
        tenant_id: r[2].as_i64().unwrap_or_default(),
        backup_set_id: r[3].as_i64(),
        seq: r[4].as_i64().unwrap_or_default(),
        status: text(&r[5]).unwrap_or_default(),
        path: text(&r[6]),
    }
}

const TASK_COLUMNS: &str = "task_id, job_id, tenant_id, backup_set_id, seq, status, path";
const JOB_COLUMNS: &str = "job_id, job_kind, tenant_id, status, result, error_code, comment, \
    backup_type, plus_archivelog, restore_target, restore_tenant_name, restart_pass";
const SET_COLUMNS: &str = "tenant_id, backup_set_id, backup_type, prev_full_backup_set_id, status, \
    file_status, input_bytes, path, end_ts";

fn job_from(r: &Row) -> JobRecord {
    JobRecord {
        job_id: r[0].as_i64().unwrap_or_default(),
        kind: text(&r[1]).unwrap_or_default(),
        tenant_id: r[2].as_i64().unwrap_or_default(),
        status: text(&r[3]).unwrap_or_default(),
        result: r[4].as_i64().unwrap_or_default(),
        error_code: text(&r[5]),
        comment: text(&r[6]),
        backup_type: text(&r[7]),
        plus_archivelog: r[8].as_i64() == Some(1),
        restore_target: text(&r[9]),
        restore_tenant_name: text(&r[10]),
        restart_pass: r[11].as_i64().unwrap_or(0),
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

pub(super) fn insert_job(tx: &dyn Txn, kind: JobKind, job: &NewJob) -> Result<i64, CatalogError> {
    let job_id = Catalog::next_id(tx, "job")?;
    tx.execute(
        "INSERT INTO job (job_id, job_kind, tenant_id, incarnation, backup_set_id, \
         initiator_tenant_id, initiator_job_id, executor_tenant_id, plus_archivelog, backup_type, \
         job_level, encryption_mode, start_ts, status, result, description, path, stop_mode, \
         restart_pass, job_type, validate_level, restore_tenant_name, backup_tenant_name, \
         backup_tenant_id, backup_dest, restore_target, restore_option, restore_until, set_list, \
         total_bytes, finish_bytes, comment, piece_id) VALUES (?, ?, ?, 1, ?, 1, ?, ?, ?, ?, ?, \
         'NONE', ?, 'INIT', 0, ?, ?, 'NONE', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
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
                     VALUES (?, ?, ?, 1, ?, 0, ?, 'INIT', 0, 0, 0, 0, 0, ?, 0, 0, ?, ?, ?)",
                    &[
                        task_id.into(),
                        job_id.into(),
                        task.tenant_id.into(),
                        set_id.into(),
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
                    status: "INIT".into(),
                    path: task.path.clone(),
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
    pub fn jobs_in(
        &self,
        kind: JobKind,
        statuses: &[&str],
    ) -> Result<Vec<JobRecord>, CatalogError> {
        let marks = vec!["?"; statuses.len()].join(", ");
        let mut params: Vec<Value> = vec![kind.as_str().into()];
        params.extend(statuses.iter().map(|s| Value::from(*s)));
        let rows = self.read(
            &format!("SELECT {JOB_COLUMNS} FROM job WHERE job_kind = ? AND status IN ({marks}) ORDER BY job_id"),
            &params,
        )?;
        Ok(rows.iter().map(job_from).collect())
    }

    pub fn tasks_of(&self, job_id: i64) -> Result<Vec<TaskRecord>, CatalogError> {
        let rows = self.read(
            &format!("SELECT {TASK_COLUMNS} FROM task WHERE job_id = ? ORDER BY seq"),
            &[job_id.into()],
        )?;
        Ok(rows.iter().map(task_from).collect())
    }

    /// Whether `tenant_id` has a data backup task that has not ended.
    pub fn backup_running_for(&self, tenant_id: i64) -> Result<Option<i64>, CatalogError> {
        let rows = self.read(
            "SELECT t.job_id FROM task t JOIN job j ON t.job_id = j.job_id WHERE j.job_kind = 'BACKUP' \
             AND t.tenant_id = ? AND t.status IN ('INIT', 'DOING', 'SUSPENDED', 'CANCELING') LIMIT 1",
            &[tenant_id.into()],
        )?;
        Ok(rows.first().and_then(|r| r[0].as_i64()))
    }

    /// Jobs of any kind that have not ended.
    pub fn unfinished_jobs(&self) -> Result<Vec<JobRecord>, CatalogError> {
        let rows = self.read(
            &format!(
                "SELECT {JOB_COLUMNS} FROM job WHERE status NOT IN \
                 ('COMPLETED', 'FAILED', 'CANCELED', 'FINISH', 'CANCEL') ORDER BY job_id"
            ),
            &[],
        )?;
        Ok(rows.iter().map(job_from).collect())
    }

    pub fn start_job(&self, job_id: i64) -> Result<(), CatalogError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE job SET status = 'DOING' WHERE job_id = ? AND status = 'INIT'",
                &[job_id.into()],
            )?;
            Ok(())
        })
    }

    /// Ends a job: its status, OceanBase-style result code, SQLSTATE of a failure, comment.
    pub fn end_job(
        &self,
        job_id: i64,
        status: &str,
        result: i64,
        error_code: Option<&str>,
        comment: &str,
    ) -> Result<(), CatalogError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE job SET status = ?, result = ?, error_code = ?, comment = ?, end_ts = ? \
                 WHERE job_id = ? AND status NOT IN ('COMPLETED', 'FAILED', 'CANCELED', 'FINISH', 'CANCEL')",
                &[
                    status.into(),
                    result.into(),
                    error_code.map(str::to_string).into(),
                    comment.into(),
                    now_micros().into(),
                    job_id.into(),
                ],
            )?;
            Ok(())
        })
    }

    pub fn set_job_fields(
        &self,
        job_id: i64,
        fields: &[(&str, Value)],
    ) -> Result<(), CatalogError> {
        self.write(|tx| {
            for (column, value) in fields {
                debug_assert!(column.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
                tx.execute(
                    &format!("UPDATE job SET {column} = ? WHERE job_id = ?"),
                    &[value.clone(), job_id.into()],
                )?;
            }
            Ok(())
        })
    }

    pub fn start_task(&self, task_id: i64) -> Result<(), CatalogError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE task SET status = 'DOING', start_ts = coalesce(start_ts, ?) WHERE task_id = ?",
                &[now_micros().into(), task_id.into()],
            )?;
            Ok(())
        })
    }

    pub fn task_progress(&self, task_id: i64, p: &TaskProgress) -> Result<(), CatalogError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE task SET input_bytes = ?, output_bytes = ?, output_rate_bytes = ?, \
                 file_count = ?, finish_file_count = ?, total_bytes = ?, data_progress = ? \
                 WHERE task_id = ?",
                &[
                    p.input_bytes.into(),
                    p.output_bytes.into(),
                    p.output_rate_bytes.into(),
                    p.file_count.into(),
                    p.finish_file_count.into(),
                    p.total_bytes.into(),
                    p.data_progress.into(),
                    task_id.into(),
                ],
            )?;
            Ok(())
        })
    }

    pub fn end_task(
        &self,
        task_id: i64,
        status: &str,
        result: i64,
        comment: &str,
    ) -> Result<(), CatalogError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE task SET status = ?, result = ?, comment = ?, end_ts = ? WHERE task_id = ? \
                 AND status NOT IN ('COMPLETED', 'FAILED', 'CANCELED', 'FINISH', 'CANCEL')",
                &[
                    status.into(),
                    result.into(),
                    comment.into(),
                    now_micros().into(),
                    task_id.into(),
                ],
            )?;
            Ok(())
        })
    }

    /// Records a set and ends its task COMPLETED in one transaction, so a set is never visible
    /// without its task having finished, nor the reverse.
    pub fn complete_backup_task(
        &self,
        task_id: i64,
        set: &NewBackupSet,
        progress: &TaskProgress,
        comment: &str,
    ) -> Result<(), CatalogError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO backup_set (tenant_id, backup_set_id, copy_id, dest_id, incarnation, \
                 job_id, backup_type, prev_full_backup_set_id, prev_inc_backup_set_id, start_ts, \
                 end_ts, status, file_status, plus_archivelog, input_bytes, output_bytes, \
                 file_count, encryption_mode, result, comment, path) VALUES (?, ?, 0, 1, 1, ?, ?, \
                 ?, ?, ?, ?, 'COMPLETED', 'AVAILABLE', ?, ?, ?, ?, 'NONE', 0, ?, ?)",
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
                    set.comment.clone().into(),
                    set.path.clone().into(),
                ],
            )?;
            tx.execute(
                "UPDATE task SET status = 'COMPLETED', result = 0, comment = ?, end_ts = ?, \
                 input_bytes = ?, output_bytes = ?, output_rate_bytes = ?, file_count = ?, \
                 finish_file_count = ?, total_bytes = ?, data_progress = 100 WHERE task_id = ? \
                 AND status NOT IN ('COMPLETED', 'FAILED', 'CANCELED')",
                &[
                    comment.into(),
                    now_micros().into(),
                    progress.input_bytes.into(),
                    progress.output_bytes.into(),
                    progress.output_rate_bytes.into(),
                    progress.file_count.into(),
                    progress.finish_file_count.into(),
                    progress.total_bytes.into(),
                    task_id.into(),
                ],
            )?;
            Ok(())
        })
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
                 AND status = 'COMPLETED' ORDER BY backup_set_id DESC LIMIT 1"
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
            &format!("SELECT {SET_COLUMNS} FROM backup_set WHERE copy_id = 0 AND status = 'COMPLETED' ORDER BY backup_set_id"),
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
