//! Backup-backup: copy jobs, their tasks (one per set), and the copies they make, recorded as
//! `backup_set` rows with `COPY_ID` 1, 2, ... beside the original (0).

use super::jobs::{JobKind, NewJob, insert_job};
use super::{Catalog, CatalogError};

/// One set, or one piece, to copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyWork {
    pub tenant_id: i64,
    /// The set copied; 0 for a piece.
    pub backup_set_id: i64,
    /// The piece copied (and its round); 0 for a set.
    pub piece_id: i64,
    pub round_id: i64,
    pub copy_id: i64,
    /// The destination of the original, where the copy reads from.
    pub source_path: String,
}

/// A copy task as the runner needs it.
#[derive(Debug, Clone)]
pub struct CopyTask {
    pub task_id: i64,
    pub work: CopyWork,
}

impl Catalog {
    /// The completed copies (copy id ≥ 1) of a set: `(copy_id, path)`.
    pub fn copies_of(&self, set_id: i64) -> Result<Vec<(i64, String)>, CatalogError> {
        self.copies(
            "SELECT copy_id, path FROM backup_set WHERE backup_set_id = ? AND copy_id > 0 \
             AND status = 'COMPLETED' ORDER BY copy_id",
            set_id,
        )
    }

    /// `(copy_id, path)` rows of a copy query on one id.
    fn copies(&self, sql: &str, id: i64) -> Result<Vec<(i64, String)>, CatalogError> {
        Ok(self
            .read(sql, &[id.into()])?
            .into_iter()
            .map(|r| {
                (
                    r[0].as_i64().unwrap_or(0),
                    r[1].as_str().unwrap_or("").to_string(),
                )
            })
            .collect())
    }

    /// One past the highest copy id a `max(copy_id)` query on one id finds.
    fn next_id_of(&self, sql: &str, id: i64) -> Result<i64, CatalogError> {
        let rows = self.read(sql, &[id.into()])?;
        Ok(rows.first().and_then(|r| r[0].as_i64()).unwrap_or(0) + 1)
    }

    /// The copy id a new copy of `set_id` takes: one past every copy recorded. A cancelled copy
    /// recorded nothing, so issuing it again gives the same id. (One copy job of a kind runs at
    /// a time, so no two copies in progress take the same id.)
    pub fn next_copy_id(&self, set_id: i64) -> Result<i64, CatalogError> {
        self.next_id_of(
            "SELECT max(copy_id) FROM backup_set WHERE backup_set_id = ?",
            set_id,
        )
    }

    /// Records a copy job in SCHEDULE with one SCHEDULE task per set or piece, in one
    /// transaction.
    pub fn create_copy_job(
        &self,
        kind: JobKind,
        job: &NewJob,
        copy_type: &str,
        max_backup_times: i64,
        work: &[CopyWork],
    ) -> Result<(i64, Vec<CopyTask>), CatalogError> {
        self.write(|tx| {
            let job_id = insert_job(tx, kind, job)?;
            let single =
                |f: fn(&CopyWork) -> i64| -> i64 { if work.len() == 1 { f(&work[0]) } else { 0 } };
            tx.execute(
                "UPDATE job SET status = 'SCHEDULE', copy_type = ?, max_backup_times = ?, \
                 backup_set_id = ?, piece_id = ? WHERE job_id = ?",
                &[
                    copy_type.into(),
                    max_backup_times.into(),
                    single(|w| w.backup_set_id).into(),
                    single(|w| w.piece_id).into(),
                    job_id.into(),
                ],
            )?;
            let mut tasks = Vec::with_capacity(work.len());
            for (seq, w) in work.iter().enumerate() {
                let task_id = Catalog::next_id(tx, "task")?;
                tx.execute(
                    "INSERT INTO task (task_id, job_id, tenant_id, incarnation, backup_set_id, \
                     piece_id, copy_id, seq, status, input_bytes, output_bytes, output_rate_bytes, \
                     file_count, finish_file_count, total_bytes, data_progress, result, path, \
                     restart_pass) VALUES (?, ?, ?, 1, ?, ?, ?, ?, 'SCHEDULE', 0, 0, 0, 0, 0, 0, \
                     0, 0, ?, 0)",
                    &[
                        task_id.into(),
                        job_id.into(),
                        w.tenant_id.into(),
                        w.backup_set_id.into(),
                        w.piece_id.into(),
                        w.copy_id.into(),
                        (seq as i64).into(),
                        job.backup_dest.clone().into(),
                    ],
                )?;
                tasks.push(CopyTask {
                    task_id,
                    work: w.clone(),
                });
            }
            Ok((job_id, tasks))
        })
    }

    /// Records a finished copy of a set at `path` as a `backup_set` row with its copy id.
    pub fn record_set_copy(
        &self,
        set_id: i64,
        copy_id: i64,
        path: &str,
        job_id: i64,
    ) -> Result<(), CatalogError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO backup_set (tenant_id, backup_set_id, copy_id, dest_id, incarnation, \
                 job_id, backup_type, prev_full_backup_set_id, prev_inc_backup_set_id, start_ts, \
                 end_ts, status, file_status, plus_archivelog, input_bytes, output_bytes, \
                 file_count, encryption_mode, chain_id, result, comment, path) \
                 SELECT tenant_id, backup_set_id, ?, dest_id, incarnation, ?, backup_type, \
                 prev_full_backup_set_id, prev_inc_backup_set_id, start_ts, end_ts, 'COMPLETED', \
                 'AVAILABLE', plus_archivelog, input_bytes, output_bytes, file_count, \
                 encryption_mode, chain_id, 0, ?, ? FROM backup_set \
                 WHERE backup_set_id = ? AND copy_id = 0",
                &[
                    copy_id.into(),
                    job_id.into(),
                    format!("copy {copy_id} of set {set_id}").into(),
                    path.into(),
                    set_id.into(),
                ],
            )?;
            Ok(())
        })
    }
}

/// A piece that can be copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PieceRow {
    pub tenant_id: i64,
    pub round_id: i64,
    pub piece_id: i64,
    pub status: String,
    /// The archive destination holding it.
    pub path: String,
}

impl Catalog {
    /// The pieces (original copies) of a tenant, or of all, oldest first.
    pub fn pieces(&self, tenant_id: Option<i64>) -> Result<Vec<PieceRow>, CatalogError> {
        let rows = self.read(
            "SELECT p.tenant_id, p.round_id, p.piece_id, p.status, r.path FROM archive_piece p \
             JOIN archive_round r ON r.tenant_id = p.tenant_id AND r.round_id = p.round_id \
             AND r.dest_id = p.dest_id WHERE p.copy_id = 0 AND (? IS NULL OR p.tenant_id = ?) \
             ORDER BY p.piece_id",
            &[tenant_id.into(), tenant_id.into()],
        )?;
        Ok(rows
            .into_iter()
            .map(|r| PieceRow {
                tenant_id: r[0].as_i64().unwrap_or(0),
                round_id: r[1].as_i64().unwrap_or(0),
                piece_id: r[2].as_i64().unwrap_or(0),
                status: r[3].as_str().unwrap_or("").to_string(),
                path: r[4].as_str().unwrap_or("").to_string(),
            })
            .collect())
    }

    /// The copies (copy id ≥ 1) of a piece: `(copy_id, path)`.
    pub fn piece_copies(&self, piece_id: i64) -> Result<Vec<(i64, String)>, CatalogError> {
        self.copies(
            "SELECT copy_id, path FROM archive_piece WHERE piece_id = ? AND copy_id > 0 \
             ORDER BY copy_id",
            piece_id,
        )
    }

    /// The copy id a new copy of a piece takes, as [`Catalog::next_copy_id`] for sets.
    pub fn next_piece_copy_id(&self, piece_id: i64) -> Result<i64, CatalogError> {
        self.next_id_of(
            "SELECT max(copy_id) FROM archive_piece WHERE piece_id = ?",
            piece_id,
        )
    }

    /// The names of the segments a piece holds, in order.
    pub fn segments_of_piece(&self, piece_id: i64) -> Result<Vec<String>, CatalogError> {
        let rows = self.read(
            "SELECT name FROM archive_segment WHERE piece_id = ? ORDER BY name",
            &[piece_id.into()],
        )?;
        Ok(rows
            .into_iter()
            .filter_map(|mut r| r.pop()?.into_string())
            .collect())
    }

    /// Records a finished copy of a piece at `path`, as it was when copied.
    pub fn record_piece_copy(
        &self,
        piece_id: i64,
        copy_id: i64,
        path: &str,
    ) -> Result<(), CatalogError> {
        self.write(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO archive_piece (tenant_id, dest_id, round_id, piece_id, \
                 copy_id, incarnation, status, start_scn, checkpoint_scn, end_scn, input_bytes, \
                 output_bytes, file_count, file_status, path) \
                 SELECT tenant_id, dest_id, round_id, piece_id, ?, incarnation, status, start_scn, \
                 checkpoint_scn, end_scn, input_bytes, output_bytes, file_count, 'AVAILABLE', ? \
                 FROM archive_piece WHERE piece_id = ? AND copy_id = 0",
                &[copy_id.into(), path.into(), piece_id.into()],
            )?;
            Ok(())
        })
    }
}

/// One tenant's continuous copy of archive log (`START BACKUP ARCHIVELOG`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogCopy {
    pub tenant_id: i64,
    pub round_id: i64,
    pub copy_id: i64,
    pub status: String,
    pub path: String,
}

impl Catalog {
    /// The continuous log copies in one of `statuses` (tenant rows only, not the summary row).
    pub fn log_copies(&self, statuses: &[&str]) -> Result<Vec<LogCopy>, CatalogError> {
        let marks = vec!["?"; statuses.len()].join(", ");
        let params: Vec<super::Value> = statuses.iter().map(|s| (*s).into()).collect();
        let rows = self.read(
            &format!(
                "SELECT tenant_id, log_archive_round, copy_id, status, path \
                 FROM backup_backup_archivelog WHERE tenant_id <> 1 AND status IN ({marks}) \
                 ORDER BY tenant_id"
            ),
            &params,
        )?;
        Ok(rows
            .into_iter()
            .map(|r| LogCopy {
                tenant_id: r[0].as_i64().unwrap_or(0),
                round_id: r[1].as_i64().unwrap_or(0),
                copy_id: r[2].as_i64().unwrap_or(0),
                status: r[3].as_str().unwrap_or("").to_string(),
                path: r[4].as_str().unwrap_or("").to_string(),
            })
            .collect())
    }

    /// Starts (or resumes) copying the log of each `(tenant_id, round_id, first_piece)` to
    /// `path`, and the system's summary row, all DOING.
    pub fn start_log_copies(
        &self,
        rounds: &[(i64, i64, i64)],
        path: &str,
    ) -> Result<(), CatalogError> {
        self.write(|tx| {
            for &(tenant_id, round_id, first_piece) in rounds.iter().chain([(1, 0, 0)].iter()) {
                tx.execute(
                    "INSERT INTO backup_backup_archivelog (tenant_id, incarnation, \
                     log_archive_round, copy_id, status, start_piece_id, backup_piece_id, \
                     input_bytes, output_bytes, path) VALUES (?, 1, ?, 1, 'DOING', ?, 0, 0, 0, ?) \
                     ON CONFLICT (tenant_id, log_archive_round, copy_id) DO UPDATE SET \
                     status = 'DOING', path = excluded.path",
                    &[
                        tenant_id.into(),
                        round_id.into(),
                        first_piece.into(),
                        path.into(),
                    ],
                )?;
            }
            Ok(())
        })
    }

    /// Moves every continuous log copy (and the summary row) in one of `from` to `to`; returns
    /// how many tenant rows moved.
    pub fn move_log_copies(&self, from: &[&str], to: &str) -> Result<usize, CatalogError> {
        let marks = vec!["?"; from.len()].join(", ");
        let mut params: Vec<super::Value> = vec![to.into()];
        params.extend(from.iter().map(|s| super::Value::from(*s)));
        self.write(|tx| {
            let moved = tx.execute(
                &format!(
                    "UPDATE backup_backup_archivelog SET status = ? WHERE status IN ({marks}) \
                     AND tenant_id <> 1"
                ),
                &params,
            )?;
            let mut summary = params.clone();
            summary.truncate(1);
            summary.extend(from.iter().map(|s| super::Value::from(*s)));
            tx.execute(
                &format!(
                    "UPDATE backup_backup_archivelog SET status = ? WHERE status IN ({marks}) \
                     AND tenant_id = 1"
                ),
                &summary,
            )?;
            Ok(moved)
        })
    }

    /// Adds a copied segment to a tenant's continuous copy and to the summary row. A segment
    /// the destination already held (`sent` 0: looked at again after a pause or a restart)
    /// moves the times and pieces on but adds no bytes.
    pub fn log_copy_progress(
        &self,
        copy: &LogCopy,
        segment: &super::archive::Segment,
        sent: u64,
    ) -> Result<(), CatalogError> {
        let next_time = segment.close_scn / 1000;
        let input = if sent > 0 { segment.size } else { 0 };
        self.write(|tx| {
            for (tenant_id, round_id) in [(copy.tenant_id, copy.round_id), (1, 0)] {
                tx.execute(
                    "UPDATE backup_backup_archivelog SET input_bytes = input_bytes + ?, \
                     output_bytes = output_bytes + ?, \
                     backup_piece_id = max(backup_piece_id, ?), \
                     min_first_time = coalesce(min_first_time, ?), \
                     max_next_time = max(coalesce(max_next_time, 0), ?) \
                     WHERE tenant_id = ? AND log_archive_round = ? AND copy_id = ?",
                    &[
                        input.into(),
                        (sent as i64).into(),
                        segment.piece_id.into(),
                        next_time.into(),
                        next_time.into(),
                        tenant_id.into(),
                        round_id.into(),
                        copy.copy_id.into(),
                    ],
                )?;
            }
            Ok(())
        })
    }

    /// The segments of a round in name order, after `after` when given.
    pub fn segments_of_round(
        &self,
        tenant_id: i64,
        round_id: i64,
        after: Option<&str>,
    ) -> Result<Vec<super::archive::Segment>, CatalogError> {
        let rows = self.read(
            "SELECT tenant_id, name, round_id, piece_id, size, stored_size, close_scn, hash \
             FROM archive_segment WHERE tenant_id = ? AND round_id = ? AND name > ? ORDER BY name",
            &[
                tenant_id.into(),
                round_id.into(),
                after.unwrap_or("").into(),
            ],
        )?;
        Ok(rows
            .into_iter()
            .map(|r| super::archive::Segment {
                tenant_id: r[0].as_i64().unwrap_or(0),
                name: r[1].as_str().unwrap_or("").to_string(),
                round_id: r[2].as_i64().unwrap_or(0),
                piece_id: r[3].as_i64().unwrap_or(0),
                size: r[4].as_i64().unwrap_or(0),
                stored_size: r[5].as_i64().unwrap_or(0),
                close_scn: r[6].as_i64().unwrap_or(0),
                hash: r[7].as_str().unwrap_or("").to_string(),
            })
            .collect())
    }
}
