//! What deletion and retention read and write (SPEC §2.6): the copies of sets and pieces that
//! may go, the delete policies, which of them a running delete job already holds, and what is
//! waiting for the collector.

use super::status::{JobStatus, StateMachine};
use super::{Catalog, CatalogError, Row, Value, now_micros};

/// One copy of a backup set (copy 0 is the original).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetCopy {
    pub tenant_id: i64,
    pub set_id: i64,
    pub copy_id: i64,
    /// The destination holding it, as the views show it (secrets masked).
    pub path: String,
    /// µs since the Unix epoch.
    pub start_ts: i64,
    pub end_ts: i64,
    pub file_status: String,
}

/// One copy of an archive piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PieceCopy {
    pub tenant_id: i64,
    pub round_id: i64,
    pub piece_id: i64,
    pub copy_id: i64,
    pub status: String,
    /// The close time of its newest segment, ns since the Unix epoch.
    pub checkpoint_scn: i64,
    pub file_status: String,
    pub path: String,
}

/// A delete policy: a recovery window for one tenant, or for every tenant without its own
/// (tenant 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletePolicy {
    pub tenant_id: i64,
    pub name: String,
    pub recovery_window: String,
}

const SET_COPY_COLUMNS: &str =
    "tenant_id, backup_set_id, copy_id, path, start_ts, end_ts, file_status";

fn set_copy(r: &Row) -> SetCopy {
    SetCopy {
        tenant_id: r[0].as_i64().unwrap_or_default(),
        set_id: r[1].as_i64().unwrap_or_default(),
        copy_id: r[2].as_i64().unwrap_or_default(),
        path: r[3].as_str().unwrap_or_default().to_string(),
        start_ts: r[4].as_i64().unwrap_or_default(),
        end_ts: r[5].as_i64().unwrap_or_default(),
        file_status: r[6].as_str().unwrap_or_default().to_string(),
    }
}

const PIECE_COPY_COLUMNS: &str = "p.tenant_id, p.round_id, p.piece_id, p.copy_id, p.status, \
    p.checkpoint_scn, p.file_status, CASE WHEN p.copy_id = 0 THEN r.path ELSE p.path END";

fn piece_copy(r: &Row) -> PieceCopy {
    PieceCopy {
        tenant_id: r[0].as_i64().unwrap_or_default(),
        round_id: r[1].as_i64().unwrap_or_default(),
        piece_id: r[2].as_i64().unwrap_or_default(),
        copy_id: r[3].as_i64().unwrap_or_default(),
        status: r[4].as_str().unwrap_or_default().to_string(),
        checkpoint_scn: r[5].as_i64().unwrap_or_default(),
        file_status: r[6].as_str().unwrap_or_default().to_string(),
        path: r[7].as_str().unwrap_or_default().to_string(),
    }
}

fn live_job_marks() -> (String, Vec<Value>) {
    let live = JobStatus::live();
    (
        vec!["?"; live.len()].join(", "),
        live.into_iter().map(Value::from).collect(),
    )
}

impl Catalog {
    /// One copy of a set, whatever its state.
    pub fn set_copy(&self, set_id: i64, copy_id: i64) -> Result<Option<SetCopy>, CatalogError> {
        let rows = self.read(
            &format!(
                "SELECT {SET_COPY_COLUMNS} FROM backup_set WHERE backup_set_id = ? AND copy_id = ? \
                 AND status = 'COMPLETED'"
            ),
            &[set_id.into(), copy_id.into()],
        )?;
        Ok(rows.first().map(set_copy))
    }

    /// The restorable copies of sets (completed, neither deleted nor broken), of one tenant or
    /// of all, oldest first.
    pub fn restorable_set_copies(
        &self,
        tenant_id: Option<i64>,
    ) -> Result<Vec<SetCopy>, CatalogError> {
        let rows = self.read(
            &format!(
                "SELECT {SET_COPY_COLUMNS} FROM backup_set WHERE status = 'COMPLETED' \
                 AND file_status NOT IN ('DELETED', 'BROKEN') AND (? IS NULL OR tenant_id = ?) \
                 ORDER BY end_ts, backup_set_id, copy_id"
            ),
            &[tenant_id.into(), tenant_id.into()],
        )?;
        Ok(rows.iter().map(set_copy).collect())
    }

    /// Every destination sets of a tenant (or of all) were ever written to, as masked paths.
    pub fn set_destinations(&self, tenant_id: Option<i64>) -> Result<Vec<String>, CatalogError> {
        let rows = self.read(
            "SELECT DISTINCT path FROM backup_set WHERE (? IS NULL OR tenant_id = ?) \
             AND path IS NOT NULL ORDER BY path",
            &[tenant_id.into(), tenant_id.into()],
        )?;
        Ok(rows
            .into_iter()
            .filter_map(|mut r| r.pop()?.into_string())
            .collect())
    }

    /// One copy of a piece.
    pub fn piece_copy(
        &self,
        piece_id: i64,
        copy_id: i64,
    ) -> Result<Option<PieceCopy>, CatalogError> {
        let rows = self.read(
            &format!(
                "SELECT {PIECE_COPY_COLUMNS} FROM archive_piece p JOIN archive_round r \
                 ON r.tenant_id = p.tenant_id AND r.round_id = p.round_id AND r.dest_id = p.dest_id \
                 WHERE p.piece_id = ? AND p.copy_id = ?"
            ),
            &[piece_id.into(), copy_id.into()],
        )?;
        Ok(rows.first().map(piece_copy))
    }

    /// The copies of a tenant's pieces that are not deleted, oldest first.
    pub fn piece_copies_of(&self, tenant_id: i64) -> Result<Vec<PieceCopy>, CatalogError> {
        let rows = self.read(
            &format!(
                "SELECT {PIECE_COPY_COLUMNS} FROM archive_piece p JOIN archive_round r \
                 ON r.tenant_id = p.tenant_id AND r.round_id = p.round_id AND r.dest_id = p.dest_id \
                 WHERE p.tenant_id = ? AND p.file_status <> 'DELETED' ORDER BY p.piece_id, p.copy_id"
            ),
            &[tenant_id.into()],
        )?;
        Ok(rows.iter().map(piece_copy).collect())
    }

    /// The pieces of a tenant whose original copy was deleted (their log is gone from the
    /// archive).
    pub fn deleted_pieces(&self, tenant_id: i64) -> Result<Vec<i64>, CatalogError> {
        let rows = self.read(
            "SELECT piece_id FROM archive_piece WHERE tenant_id = ? AND copy_id = 0 \
             AND file_status = 'DELETED'",
            &[tenant_id.into()],
        )?;
        Ok(rows.iter().filter_map(|r| r[0].as_i64()).collect())
    }

    /// What running delete jobs hold: `(set or piece, id, copy_id, job_id)`, where the first is
    /// true for a set.
    pub fn being_deleted(&self) -> Result<Vec<(bool, i64, i64, i64)>, CatalogError> {
        let (marks, mut params) = live_job_marks();
        params.insert(0, "DELETE".into());
        let rows = self.read(
            &format!(
                "SELECT t.piece_id IS NULL, COALESCE(t.piece_id, t.backup_set_id), t.copy_id, \
                 t.job_id FROM task t JOIN job j ON j.job_id = t.job_id WHERE j.job_kind = ? \
                 AND j.status IN ({marks}) AND t.status <> 'COMPLETED'"
            ),
            &params,
        )?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    r[0].as_i64().unwrap_or(1) != 0,
                    r[1].as_i64().unwrap_or_default(),
                    r[2].as_i64().unwrap_or_default(),
                    r[3].as_i64().unwrap_or_default(),
                )
            })
            .collect())
    }

    /// A live job that reads piece `piece_id` (a copy or validation of it), or a restore of its
    /// tenant (which may replay any of its log): its id and kind.
    pub fn job_using_piece(
        &self,
        piece_id: i64,
        tenant_id: i64,
    ) -> Result<Option<(i64, String)>, CatalogError> {
        use super::status::CopyStatus;
        let live: Vec<&str> = JobStatus::live()
            .into_iter()
            .chain(CopyStatus::live())
            .collect();
        let marks = vec!["?"; live.len()].join(", ");
        let mut params: Vec<Value> = vec![piece_id.into(), piece_id.into(), tenant_id.into()];
        params.extend(live.iter().map(|s| (*s).into()));
        let rows = self.read(
            &format!(
                "SELECT j.job_id, j.job_kind FROM job j WHERE ((j.job_kind IN \
                 ('VALIDATE', 'BACKUP_BACKUPPIECE') AND (j.piece_id = ? OR EXISTS (SELECT 1 \
                 FROM task t WHERE t.job_id = j.job_id AND t.piece_id = ?))) \
                 OR (j.job_kind = 'RESTORE' AND j.backup_tenant_id = ?)) \
                 AND j.status IN ({marks}) ORDER BY j.job_id LIMIT 1"
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

    /// Records a deleted copy of a set; it waits for the collector (IS_CLEANUP_PENDING).
    pub fn set_copy_deleted(&self, set_id: i64, copy_id: i64) -> Result<(), CatalogError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE backup_set SET file_status = 'DELETED', cleanup_pending = 1 \
                 WHERE backup_set_id = ? AND copy_id = ?",
                &[set_id.into(), copy_id.into()],
            )?;
            Ok(())
        })
    }

    /// A collection of `path` left nothing behind: what waited for it is reclaimed.
    pub fn cleanup_done(&self, path: &str) -> Result<(), CatalogError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE backup_set SET cleanup_pending = 0 WHERE path = ? AND cleanup_pending = 1",
                &[path.into()],
            )?;
            tx.execute(
                "DELETE FROM released_context WHERE path = ?",
                &[path.into()],
            )?;
            Ok(())
        })
    }

    /// The delete policies, tenant-specific ones first.
    pub fn delete_policies(&self) -> Result<Vec<DeletePolicy>, CatalogError> {
        let rows = self.read(
            "SELECT tenant_id, policy_name, recovery_window FROM delete_policy \
             ORDER BY tenant_id DESC, policy_name",
            &[],
        )?;
        Ok(rows
            .iter()
            .map(|r| DeletePolicy {
                tenant_id: r[0].as_i64().unwrap_or_default(),
                name: r[1].as_str().unwrap_or_default().to_string(),
                recovery_window: r[2].as_str().unwrap_or_default().to_string(),
            })
            .collect())
    }

    /// Adds a policy; `Ok(Some(existing name))` when the scope already has one.
    pub fn add_delete_policy(&self, policy: &DeletePolicy) -> Result<Option<String>, CatalogError> {
        self.write(|tx| {
            let existing = tx.query(
                "SELECT policy_name FROM delete_policy WHERE tenant_id = ?",
                &[policy.tenant_id.into()],
            )?;
            if let Some(name) = existing.first().and_then(|r| r[0].as_str()) {
                return Ok(Some(name.to_string()));
            }
            tx.execute(
                "INSERT INTO delete_policy (tenant_id, policy_name, recovery_window, create_time) \
                 VALUES (?, ?, ?, ?)",
                &[
                    policy.tenant_id.into(),
                    policy.name.as_str().into(),
                    policy.recovery_window.as_str().into(),
                    now_micros().into(),
                ],
            )?;
            Ok(None)
        })
    }

    /// Drops a policy; false when there is none of that name in the scope.
    pub fn drop_delete_policy(&self, tenant_id: i64, name: &str) -> Result<bool, CatalogError> {
        self.write(|tx| {
            Ok(tx.execute(
                "DELETE FROM delete_policy WHERE tenant_id = ? AND policy_name = ?",
                &[tenant_id.into(), name.into()],
            )? > 0)
        })
    }

    /// A value kept in `meta` (the policy scheduler's last run).
    pub fn meta_value(&self, key: &str) -> Result<Option<String>, CatalogError> {
        let rows = self.read("SELECT value FROM meta WHERE key = ?", &[key.into()])?;
        Ok(rows
            .into_iter()
            .next()
            .and_then(|mut r| r.pop()?.into_string()))
    }

    pub fn set_meta_value(&self, key: &str, value: &str) -> Result<(), CatalogError> {
        self.write(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                &[key.into(), value.into()],
            )?;
            Ok(())
        })
    }

    /// `DELETE BACKUP CONTEXT`: the context stops being restartable at once and is shown as
    /// waiting for the collector (IS_CLEANUP_PENDING) until its destination is collected.
    pub fn release_context(&self, id: &str) -> Result<(), CatalogError> {
        self.write(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO released_context (context_id, job_id, task_id, tenant_id, \
                 path, snapshot_name, restart_pass, bytes_done, files_done, checkpoint_time, \
                 last_updated, reason) SELECT context_id, job_id, task_id, tenant_id, path, \
                 snapshot_name, restart_pass, bytes_done, files_done, checkpoint_time, ?, reason \
                 FROM restartable_context WHERE context_id = ?",
                &[now_micros().into(), id.into()],
            )?;
            tx.execute(
                "DELETE FROM restartable_context WHERE context_id = ?",
                &[id.into()],
            )?;
            Ok(())
        })
    }

    /// The checkpoints something may still resume from: `(tenant_id, set_id)` of every task
    /// with a restartable context and of every data backup task that has not ended.
    pub fn held_checkpoints(&self) -> Result<Vec<(i64, i64)>, CatalogError> {
        let rows = self.read(
            "SELECT t.tenant_id, t.backup_set_id FROM restartable_context c \
             JOIN task t ON t.task_id = c.task_id \
             UNION SELECT t.tenant_id, t.backup_set_id FROM task t JOIN job j ON j.job_id = t.job_id \
             WHERE j.job_kind = 'BACKUP' AND t.status NOT IN ('COMPLETED', 'FAILED', 'CANCELED')",
            &[],
        )?;
        Ok(rows
            .iter()
            .filter_map(|r| Some((r[0].as_i64()?, r[1].as_i64()?)))
            .collect())
    }

    /// The destinations a job names in PATH (a delete job lists every one it collects).
    pub fn job_paths(&self, job_id: i64) -> Result<Vec<String>, CatalogError> {
        let rows = self.read("SELECT path FROM job WHERE job_id = ?", &[job_id.into()])?;
        Ok(rows
            .first()
            .and_then(|r| r[0].as_str())
            .map(|p| p.split(',').map(str::to_string).collect())
            .unwrap_or_default())
    }
}
