//! Restartable contexts: the saved checkpoint of an interrupted data backup task, enough to go
//! on from where it stopped (NetApp's restartable dump contexts). They survive restarts.

use super::{Catalog, CatalogError, Row, Value, now_micros};

/// Why a task was interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Failed,
    Suspended,
    ServerRestart,
    /// Suspended by a clean shutdown (SIGTERM): resumes by itself at the next start.
    ServerShutdown,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Failed => "FAILED",
            Reason::Suspended => "SUSPENDED",
            Reason::ServerRestart => "SERVER_RESTART",
            Reason::ServerShutdown => "SERVER_SHUTDOWN",
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewContext {
    pub job_id: i64,
    pub task_id: i64,
    pub tenant_id: i64,
    pub path: String,
    pub snapshot_name: String,
    pub restartable: bool,
    pub restart_pass: i64,
    pub bytes_done: i64,
    pub files_done: i64,
    pub checkpoint_time: Option<i64>,
    pub reason: Reason,
    pub attempts: i64,
    pub next_restart_time: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct ContextRecord {
    pub context_id: String,
    pub job_id: i64,
    pub task_id: i64,
    pub tenant_id: i64,
    pub path: String,
    pub restartable: bool,
    pub busy: bool,
    pub restart_pass: i64,
    pub bytes_done: i64,
    pub reason: String,
    pub attempts: i64,
}

const COLUMNS: &str = "context_id, job_id, task_id, tenant_id, path, is_restartable, is_busy, \
    restart_pass, bytes_done, reason, attempts";

fn from_row(r: &Row) -> ContextRecord {
    ContextRecord {
        context_id: r[0].clone().into_string().unwrap_or_default(),
        job_id: r[1].as_i64().unwrap_or_default(),
        task_id: r[2].as_i64().unwrap_or_default(),
        tenant_id: r[3].as_i64().unwrap_or_default(),
        path: r[4].clone().into_string().unwrap_or_default(),
        restartable: r[5].as_i64() == Some(1),
        busy: r[6].as_i64() == Some(1),
        restart_pass: r[7].as_i64().unwrap_or_default(),
        bytes_done: r[8].as_i64().unwrap_or_default(),
        reason: r[9].clone().into_string().unwrap_or_default(),
        attempts: r[10].as_i64().unwrap_or_default(),
    }
}

impl Catalog {
    /// Remembers the newest checkpoint of a running task.
    pub fn task_checkpoint(
        &self,
        task_id: i64,
        bytes: i64,
        files: i64,
        time: i64,
    ) -> Result<(), CatalogError> {
        // A checkpoint also makes the task's figures so far durable.
        let live = self.live_progress().task(task_id);
        self.write(|tx| {
            tx.execute(
                "UPDATE task SET checkpoint_bytes = ?, checkpoint_files = ?, checkpoint_time = ? \
                 WHERE task_id = ?",
                &[bytes.into(), files.into(), time.into(), task_id.into()],
            )?;
            if let Some(figures) = &live {
                super::jobs::write_task_progress(tx, task_id, figures)?;
            }
            Ok(())
        })
    }

    /// The engine's count of source bytes this run read, kept beside the task.
    pub fn task_bytes_read(&self, task_id: i64, bytes: i64) -> Result<(), CatalogError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE task SET bytes_read = ? WHERE task_id = ?",
                &[bytes.into(), task_id.into()],
            )?;
            Ok(())
        })
    }

    /// `(bytes, files, time)` of a task's newest checkpoint.
    pub fn task_checkpoint_of(
        &self,
        task_id: i64,
    ) -> Result<(i64, i64, Option<i64>), CatalogError> {
        let rows = self.read(
            "SELECT checkpoint_bytes, checkpoint_files, checkpoint_time FROM task WHERE task_id = ?",
            &[task_id.into()],
        )?;
        Ok(rows
            .first()
            .map(|r| {
                (
                    r[0].as_i64().unwrap_or(0),
                    r[1].as_i64().unwrap_or(0),
                    r[2].as_i64(),
                )
            })
            .unwrap_or((0, 0, None)))
    }

    /// Keeps a context for an interrupted task, replacing an earlier one of the same task.
    pub fn keep_context(&self, c: &NewContext) -> Result<String, CatalogError> {
        let id = uuid::Uuid::new_v4().to_string();
        self.write(|tx| {
            tx.execute("DELETE FROM restartable_context WHERE task_id = ?", &[c.task_id.into()])?;
            tx.execute(
                "INSERT INTO restartable_context (context_id, job_id, task_id, tenant_id, path, \
                 snapshot_name, is_cleanup_pending, is_restartable, is_busy, restart_pass, bytes_done, \
                 files_done, checkpoint_time, last_updated, reason, attempts, next_restart_time) \
                 VALUES (?, ?, ?, ?, ?, ?, 0, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?)",
                &[
                    id.clone().into(),
                    c.job_id.into(),
                    c.task_id.into(),
                    c.tenant_id.into(),
                    c.path.clone().into(),
                    c.snapshot_name.clone().into(),
                    c.restartable.into(),
                    c.restart_pass.into(),
                    c.bytes_done.into(),
                    c.files_done.into(),
                    c.checkpoint_time.into(),
                    now_micros().into(),
                    c.reason.as_str().into(),
                    c.attempts.into(),
                    c.next_restart_time.into(),
                ],
            )?;
            tx.execute("UPDATE task SET context_id = ? WHERE task_id = ?", &[id.clone().into(), c.task_id.into()])?;
            Ok(())
        })?;
        Ok(id)
    }

    pub fn context(&self, id: &str) -> Result<Option<ContextRecord>, CatalogError> {
        let rows = self.read(
            &format!("SELECT {COLUMNS} FROM restartable_context WHERE context_id = ?"),
            &[id.into()],
        )?;
        Ok(rows.first().map(from_row))
    }

    pub fn context_of_task(&self, task_id: i64) -> Result<Option<ContextRecord>, CatalogError> {
        let rows = self.read(
            &format!("SELECT {COLUMNS} FROM restartable_context WHERE task_id = ?"),
            &[task_id.into()],
        )?;
        Ok(rows.first().map(from_row))
    }

    pub fn contexts_of_job(&self, job_id: i64) -> Result<Vec<ContextRecord>, CatalogError> {
        let rows = self.read(
            &format!("SELECT {COLUMNS} FROM restartable_context WHERE job_id = ? ORDER BY task_id"),
            &[job_id.into()],
        )?;
        Ok(rows.iter().map(from_row).collect())
    }

    /// Contexts whose automatic restart is due.
    pub fn contexts_due(&self, now: i64) -> Result<Vec<ContextRecord>, CatalogError> {
        let rows = self.read(
            &format!(
                "SELECT {COLUMNS} FROM restartable_context WHERE is_restartable = 1 AND is_busy = 0 \
                 AND next_restart_time IS NOT NULL AND next_restart_time <= ? ORDER BY next_restart_time"
            ),
            &[now.into()],
        )?;
        Ok(rows.iter().map(from_row).collect())
    }

    /// Marks a context busy (its task runs) or idle, in one step that fails if it already was.
    pub fn claim_context(&self, id: &str) -> Result<bool, CatalogError> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE restartable_context SET is_busy = 1, next_restart_time = NULL, last_updated = ? \
                 WHERE context_id = ? AND is_busy = 0",
                &[now_micros().into(), id.into()],
            )?;
            Ok(changed == 1)
        })
    }

    /// Points a context at the job and task that now go on with it, and marks it busy. The new
    /// task inherits the checkpoint it goes on from, so that it is restartable again at once.
    pub fn move_context(
        &self,
        id: &str,
        job_id: i64,
        task_id: i64,
        restart_pass: i64,
    ) -> Result<(), CatalogError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE task SET (checkpoint_bytes, checkpoint_files, checkpoint_time) = \
                 (SELECT t.checkpoint_bytes, t.checkpoint_files, t.checkpoint_time FROM task t \
                  JOIN restartable_context c ON c.task_id = t.task_id WHERE c.context_id = ?) \
                 WHERE task_id = ?",
                &[id.into(), task_id.into()],
            )?;
            tx.execute(
                "UPDATE restartable_context SET job_id = ?, task_id = ?, restart_pass = ?, is_busy = 1, \
                 next_restart_time = NULL, last_updated = ? WHERE context_id = ?",
                &[job_id.into(), task_id.into(), restart_pass.into(), now_micros().into(), id.into()],
            )?;
            tx.execute("UPDATE task SET context_id = ? WHERE task_id = ?", &[id.into(), task_id.into()])?;
            Ok(())
        })
    }

    /// Gives up the automatic restart of a context (it was tried, or cannot be).
    pub fn clear_restart_time(&self, id: &str) -> Result<(), CatalogError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE restartable_context SET next_restart_time = NULL WHERE context_id = ?",
                &[Value::from(id)],
            )?;
            Ok(())
        })
    }

    pub fn drop_context(&self, id: &str) -> Result<(), CatalogError> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM restartable_context WHERE context_id = ?",
                &[Value::from(id)],
            )?;
            Ok(())
        })
    }

    pub fn drop_contexts_of_job(&self, job_id: i64) -> Result<(), CatalogError> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM restartable_context WHERE job_id = ?",
                &[job_id.into()],
            )?;
            Ok(())
        })
    }
}
