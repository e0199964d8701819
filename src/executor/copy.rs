//! Backup-backup of sets (SPEC §2.4): `ALTER SYSTEM BACKUP BACKUPSET n | ALL [NOT BACKED UP n
//! TIMES]` copies sets to `BACKUP_BACKUP_DEST`, one task per set, in set order. The job moves
//! `SCHEDULE → BACKUP → CLEAN → FINISH` (OceanBase 3.x words): BACKUP copies each set with
//! [`engine::copy::copy_set`], CLEAN checks every copy at the second destination (each object
//! there with its recorded size) before the copies are recorded with their COPY_ID. `CANCEL
//! BACKUP BACKUPSET` ends the job at once (CANCEL); `STOP BACKUP BACKUPSET` lets the set being
//! copied finish and starts no other. A copy issued again after a cancel starts over from the
//! beginning: it looks at every object again and sends what the second destination lacks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::Instrument;

use super::{
    Executor, Interrupt, OB_CANCELED, OB_ERROR, failure_comment, task_figures, watch_progress,
};
use crate::catalog::copies::{CopyTask, CopyWork};
use crate::catalog::jobs::{JobChange, JobKind, NewJob, StopMode, TaskChange};
use crate::catalog::status::{CopyStatus, StateMachine};
use crate::catalog::tenants::Tenant;
use crate::catalog::{SYS_TENANT_ID, mask_secrets};
use crate::engine::{self, EngineError, Progress, TenantRef};
use crate::error::{SqlError, SqlResult, SqlState, sqlstate};

/// Which sets or pieces a copy takes: `= n`, or `ALL [NOT BACKED UP n TIMES]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyChoice {
    One(i64),
    All { not_backed_up_times: Option<i64> },
}

/// A copy job kind as its statements name it (`backup backupset`).
fn copy_kind_name(kind: JobKind) -> &'static str {
    match kind {
        JobKind::BackupBackuppiece => "backup backuppiece",
        _ => "backup backupset",
    }
}

/// How one copy task ended.
enum CopyEnd {
    Copied { comment: String },
    Canceled,
    NotStarted,
    Failed { code: SqlState, comment: String },
}

/// A copy job that was started; `nothing` says why it has no tasks when nothing needed a copy.
pub struct CopyStarted {
    pub job_id: i64,
    pub nothing: Option<String>,
}

impl Executor {
    /// `ALTER SYSTEM BACKUP BACKUPSET ...`: chooses the sets and starts the job.
    pub fn start_backup_backupset(
        self: &Arc<Self>,
        selector: &CopyChoice,
        tenant: Option<&Tenant>,
        dest: Option<&str>,
    ) -> SqlResult<CopyStarted> {
        self.refuse_second_copy_job(JobKind::BackupBackupset)?;
        let dest = self.copy_destination(tenant, dest)?;
        let shown_dest = mask_secrets(&dest);
        let sets: Vec<_> = self
            .catalog
            .backup_sets()?
            .into_iter()
            .filter(|s| tenant.is_none_or(|t| t.id == s.tenant_id))
            .collect();
        let (chosen, copy_type, times) = match selector {
            CopyChoice::One(n) => {
                let set = sets
                    .into_iter()
                    .find(|s| s.backup_set_id == *n)
                    .ok_or_else(|| {
                        SqlError::undefined(format!(
                            "backup set {n} does not exist or has not completed"
                        ))
                        .with_ob("OB_BACKUP_SET_NOT_EXIST", 9013)
                    })?;
                (vec![set], "S", 1)
            }
            CopyChoice::All {
                not_backed_up_times,
            } => {
                let times = not_backed_up_times.unwrap_or(1);
                let mut chosen = Vec::new();
                for set in sets {
                    let copies = self.catalog.copies_of(set.backup_set_id)?;
                    let here = copies.iter().any(|(_, p)| *p == shown_dest);
                    if !here && (copies.len() as i64) < times {
                        chosen.push(set);
                    }
                }
                (chosen, "A", times)
            }
        };
        // A nightly `BACKUP BACKUPSET ALL` with nothing new to copy is a success, recorded as a
        // job of no tasks, not an error that fails the script.
        let nothing = chosen.is_empty().then(|| {
            format!(
                "no backup set needs a copy: every completed set has {times} cop{} already, or one in {shown_dest}",
                if times == 1 { "y" } else { "ies" }
            )
        });
        if let Some(same) = chosen.iter().find(|s| s.path == shown_dest) {
            return Err(SqlError::invalid_value(format!(
                "backup set {} is already in {shown_dest}: BACKUP_BACKUP_DEST must be another \
                 destination than DATA_BACKUP_DEST",
                same.backup_set_id
            )));
        }
        let mut work = Vec::with_capacity(chosen.len());
        for set in &chosen {
            let raw_source = self
                .catalog
                .parameter(set.tenant_id, "data_backup_dest")?
                .filter(|d| mask_secrets(d) == set.path)
                .unwrap_or_else(|| set.path.clone());
            work.push(CopyWork {
                tenant_id: set.tenant_id,
                backup_set_id: set.backup_set_id,
                piece_id: 0,
                round_id: 0,
                copy_id: self.catalog.next_copy_id(set.backup_set_id)?,
                source_path: raw_source,
            });
        }
        let job = NewJob {
            tenant_id: tenant.map_or(SYS_TENANT_ID, |t| t.id),
            job_level: if tenant.is_some() {
                "USER_TENANT"
            } else {
                "CLUSTER"
            }
            .into(),
            executor_tenant_id: chosen
                .iter()
                .map(|s| s.tenant_id.to_string())
                .collect::<Vec<_>>()
                .join(","),
            backup_tenant_name: tenant.map(|t| t.name.clone()),
            backup_dest: Some(shown_dest.clone()),
            path: Some(shown_dest),
            set_list: Some(
                chosen
                    .iter()
                    .map(|s| s.backup_set_id.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            ..NewJob::default()
        };
        let (job_id, tasks) = self.catalog.create_copy_job(
            JobKind::BackupBackupset,
            &job,
            copy_type,
            times,
            &work,
        )?;
        let control = self.register(job_id);
        let executor = self.clone();
        self.spawn_job(job_id, async move {
            executor
                .run_copy_job(job_id, Copying::Sets, dest, tasks, control)
                .await;
            executor.finished(job_id);
        });
        tracing::info!(job_id, sets = work.len(), "backup backupset job started");
        Ok(CopyStarted { job_id, nothing })
    }

    /// The one skeleton of both copy kinds: the job moves to its working status, the tasks run
    /// in order (none starts once the job is stopped or cancelled), a set copy checks its copies
    /// (CLEAN), and the job ends through the state machine.
    async fn run_copy_job(
        self: &Arc<Self>,
        job_id: i64,
        what: Copying,
        dest: String,
        tasks: Vec<CopyTask>,
        control: Arc<super::JobControl>,
    ) {
        self.move_copy_job(job_id, what.working());
        let mut ends = Vec::with_capacity(tasks.len());
        for task in &tasks {
            let end = if control.interrupted().is_some() || !self.start_task_as(task, what) {
                CopyEnd::NotStarted
            } else {
                // Every line the task logs names its job, task and tenant.
                let span = tracing::info_span!(
                    "copy_task",
                    job_id,
                    task_id = task.task_id,
                    tenant_id = task.work.tenant_id,
                    set = task.work.backup_set_id,
                    piece = task.work.piece_id
                );
                match what {
                    Copying::Sets => {
                        self.copy_one(job_id, task, &dest, &control)
                            .instrument(span)
                            .await
                    }
                    Copying::Pieces => {
                        self.copy_piece(task, &dest, &control)
                            .instrument(span)
                            .await
                    }
                }
            };
            self.end_copy_task(task, &end);
            ends.push(end);
        }
        let interrupt = control.interrupted();
        let canceled = matches!(
            interrupt,
            Some(Interrupt::Cancel | Interrupt::MaxRunTime | Interrupt::Suspend)
        );
        let checked = match what {
            Copying::Sets if !canceled => {
                self.move_copy_job(job_id, CopyStatus::Clean);
                self.check_copies(&dest, &tasks, &ends).await
            }
            _ => Ok(()),
        };
        let (status, change) = if interrupt == Some(Interrupt::Shutdown) {
            (
                CopyStatus::Finish,
                JobChange::failed(sqlstate::ADMIN_SHUTDOWN, super::SHUT_DOWN.into()),
            )
        } else {
            copy_outcome(what, canceled, checked, &ends)
        };
        self.end_job(job_id, status, change);
        tracing::info!(
            job_id,
            status = status.as_str(),
            "{} job ended",
            what.job_name()
        );
    }

    /// A copy job moves on to `to` unless it has ended (a cancel won the race).
    fn move_copy_job(&self, job_id: i64, to: CopyStatus) {
        if let Err(e) = self.catalog.move_job(job_id, to, &JobChange::default()) {
            tracing::error!(job_id, error = %e, "cannot record a copy job's status");
        }
    }

    /// A copy task starts in its kind's working status; false when it had ended meanwhile.
    fn start_task_as(&self, task: &CopyTask, what: Copying) -> bool {
        self.catalog
            .move_task(task.task_id, what.working(), &TaskChange::default())
            .unwrap_or_else(|e| {
                tracing::error!(task_id = task.task_id, error = %e, "cannot start a copy task");
                false
            })
    }

    async fn copy_one(
        self: &Arc<Self>,
        job_id: i64,
        task: &CopyTask,
        dest: &str,
        control: &Arc<super::JobControl>,
    ) -> CopyEnd {
        let w = task.work.clone();
        let progress = Arc::new(Progress::new());
        let ticker = watch_progress(self.catalog.clone(), task.task_id, progress.clone());
        let started = Instant::now();
        let net_limit = self.net_limit(w.tenant_id);
        let (installation, dest_owned, cancel, engine_progress) = (
            self.catalog.installation_id().to_string(),
            dest.to_string(),
            control.cancel.clone(),
            progress.clone(),
        );
        let roots = super::destination_root(&w.source_path)
            .and_then(|s| Ok((s, super::destination_root(&dest_owned)?)));
        let (source_root, target_root) = match roots {
            Ok(roots) => roots,
            Err(e) => {
                return CopyEnd::Failed {
                    code: e.code,
                    comment: e.message,
                };
            }
        };
        // A set made PLUS ARCHIVELOG takes its kept log along, so the copy restores with it.
        let with_log = match self.catalog.set_plus_archivelog(w.backup_set_id) {
            Ok(plus) => plus.unwrap_or(false),
            Err(e) => {
                return CopyEnd::Failed {
                    code: sqlstate::IO_ERROR,
                    comment: e.to_string(),
                };
            }
        };
        // No collector repacks or sweeps either destination while the copy reads one and
        // writes the other: a sweep of the target would take the packs and index files it has
        // written before its set descriptor names them.
        let _reading = self.destination_locks.of(&source_root).read_owned().await;
        let _writing = self.destination_locks.of(&target_root).read_owned().await;
        let catalog = Arc::clone(&self.catalog);
        let result = super::on_blocking_thread("copy", move || {
            let source = super::destination::open(&catalog, &source_root)?;
            let target = super::destination::copy_target(
                &catalog,
                &source_root,
                &source,
                &target_root,
                &installation,
            )?;
            engine::copy::copy_set(
                &source,
                &target,
                &TenantRef::Id(w.tenant_id),
                w.backup_set_id,
                with_log,
                &engine_progress,
                &engine::throttle::Throttle::new(net_limit),
                &cancel,
            )
        })
        .await;
        ticker.cancel();
        if let Err(e) = self.catalog.task_progress(
            task.task_id,
            &task_figures(&progress, started.elapsed().max(Duration::from_millis(1))),
        ) {
            tracing::warn!(error = %e, "cannot record the copy's figures");
        }
        match result {
            Ok(summary) => {
                let w = &task.work;
                if let Err(e) = self.catalog.record_set_copy(
                    w.backup_set_id,
                    w.copy_id,
                    &mask_secrets(dest),
                    job_id,
                ) {
                    return CopyEnd::Failed {
                        code: sqlstate::IO_ERROR,
                        comment: format!("cannot record the copy: {e}"),
                    };
                }
                CopyEnd::Copied {
                    comment: if summary.already_there {
                        format!(
                            "set {} was already complete in the destination",
                            w.backup_set_id
                        )
                    } else {
                        format!(
                            "copied {} object(s), {} bytes; {} already there",
                            summary.objects_copied, summary.bytes_copied, summary.objects_present
                        )
                    },
                }
            }
            Err(EngineError::Cancelled) => CopyEnd::Canceled,
            Err(e) => CopyEnd::Failed {
                code: e.kind().sqlstate(),
                comment: failure_comment(
                    &format!(
                        "copy of backup set {} to {}",
                        task.work.backup_set_id,
                        mask_secrets(dest)
                    ),
                    &e,
                ),
            },
        }
    }

    fn end_copy_task(&self, task: &CopyTask, end: &CopyEnd) {
        let (status, result, comment) = match end {
            CopyEnd::Copied { comment } => (CopyStatus::Finish, 0, comment.clone()),
            CopyEnd::Canceled => (CopyStatus::Cancel, OB_CANCELED, "canceled by user".into()),
            CopyEnd::NotStarted => (
                CopyStatus::Cancel,
                OB_CANCELED,
                "not started: the job was stopped or canceled".into(),
            ),
            CopyEnd::Failed { comment, .. } => (CopyStatus::Finish, OB_ERROR, comment.clone()),
        };
        self.end_task(task.task_id, status, result, &comment);
    }

    /// CLEAN: every copied set is whole in the second destination (each object present with
    /// its recorded size), before the job says FINISH.
    async fn check_copies(
        &self,
        dest: &str,
        tasks: &[CopyTask],
        ends: &[CopyEnd],
    ) -> Result<(), (SqlState, String)> {
        let copied: Vec<CopyWork> = tasks
            .iter()
            .zip(ends)
            .filter(|(_, e)| matches!(e, CopyEnd::Copied { .. }))
            .map(|(t, _)| t.work.clone())
            .collect();
        if copied.is_empty() {
            return Ok(());
        }
        let root = super::destination_root(dest).map_err(|e| (e.code, e.message))?;
        let catalog = Arc::clone(&self.catalog);
        let report = super::on_blocking_thread("copy check", move || {
            let target = super::destination::open(&catalog, &root)?;
            let mut damaged = Vec::new();
            for w in copied {
                let report = engine::validate(
                    &target,
                    &TenantRef::Id(w.tenant_id),
                    w.backup_set_id,
                    engine::ValidateLevel::Basic,
                    &Progress::new(),
                    &tokio_util::sync::CancellationToken::new(),
                )?;
                if !report.is_intact() {
                    damaged.push(format!("set {}: {:?}", w.backup_set_id, report));
                }
            }
            Ok(damaged)
        })
        .await;
        match report {
            Ok(damaged) if damaged.is_empty() => Ok(()),
            Ok(damaged) => Err((
                sqlstate::DATA_CORRUPTED,
                format!(
                    "a copy is not whole in the destination: {}",
                    damaged.join("; ")
                ),
            )),
            Err(e) => Err((
                e.kind().sqlstate(),
                format!("checking the copies failed: {e}"),
            )),
        }
    }

    /// `ALTER SYSTEM CANCEL BACKUP BACKUPSET | BACKUPPIECE`: the job ends CANCEL at once; its
    /// workers stop between objects. What was copied stays as garbage for cleanup; completed
    /// copies stay.
    pub fn cancel_copy(&self, kind: JobKind) -> SqlResult<i64> {
        let job = self.running_copy_job(kind)?;
        let mut change = JobChange::canceled("canceled by user");
        change.stop_mode = Some(StopMode::Immediate);
        if self.end_job(job, CopyStatus::Cancel, change).is_none() {
            return Err(nothing_copying(kind));
        }
        // The job's tasks end with it, so that no ended job shows a live task; a worker that
        // finishes its copy a moment later finds its task ended and leaves it so (a copy it
        // completed stays).
        let canceled = TaskChange {
            result: Some(OB_CANCELED),
            comment: Some("canceled by user".into()),
            ..TaskChange::default()
        };
        for task in self.catalog.tasks_of(job)? {
            if !task.status.is_end() {
                self.catalog
                    .move_task(task.task_id, CopyStatus::Cancel, &canceled)?;
            }
        }
        if let Some(control) = self.control_of(job) {
            control.interrupt(Interrupt::Cancel);
        }
        tracing::info!(job_id = job, kind = kind.as_str(), "copy cancel requested");
        Ok(job)
    }

    /// `ALTER SYSTEM STOP BACKUP BACKUPSET`: graceful.
    pub fn stop_backup_backupset(&self) -> SqlResult<i64> {
        let job = self.running_copy_job(JobKind::BackupBackupset)?;
        if !self
            .catalog
            .set_stop_mode::<CopyStatus>(job, StopMode::Graceful)?
        {
            return Err(nothing_copying(JobKind::BackupBackupset));
        }
        if let Some(control) = self.control_of(job) {
            control.interrupt(Interrupt::Stop);
        }
        Ok(job)
    }

    /// One copy job of each kind at a time.
    fn refuse_second_copy_job(&self, kind: JobKind) -> SqlResult<()> {
        let jobs = self.catalog.jobs_in(kind, CopyStatus::ALL)?;
        match jobs.iter().find(|j| !j.status.is_end()) {
            Some(job) => Err(SqlError::wrong_state(format!(
                "{} job {} is running; wait for it or cancel it with ALTER SYSTEM CANCEL {}",
                copy_kind_name(kind),
                job.job_id,
                copy_kind_name(kind).to_ascii_uppercase()
            ))
            .with_ob("OB_BACKUP_IN_PROGRESS", 9041)),
            None => Ok(()),
        }
    }

    fn running_copy_job(&self, kind: JobKind) -> SqlResult<i64> {
        self.catalog
            .jobs_in(kind, CopyStatus::ALL)?
            .into_iter()
            .find(|j| !j.status.is_end())
            .map(|j| j.job_id)
            .ok_or_else(|| nothing_copying(kind))
    }

    /// `ALTER SYSTEM BACKUP BACKUPPIECE n | ALL [NOT BACKED UP n TIMES] [WITH ACTIVE
    /// BACKUPPIECE]`: copies FROZEN pieces (and the ACTIVE one as it is now, when asked) segment
    /// by segment; the job moves `SCHEDULE → DOING → FINISH`, or CANCEL.
    pub fn start_backup_backuppiece(
        self: &Arc<Self>,
        selector: &CopyChoice,
        with_active: bool,
        tenant: Option<&Tenant>,
        dest: Option<&str>,
    ) -> SqlResult<CopyStarted> {
        self.refuse_second_copy_job(JobKind::BackupBackuppiece)?;
        let dest = self.copy_destination(tenant, dest)?;
        let shown_dest = mask_secrets(&dest);
        let eligible = |status: &str| status == "FROZEN" || (with_active && status == "ACTIVE");
        let pieces = self.catalog.pieces(tenant.map(|t| t.id))?;
        let (chosen, times) = match selector {
            CopyChoice::One(n) => {
                let piece = pieces
                    .into_iter()
                    .find(|p| p.piece_id == *n)
                    .ok_or_else(|| {
                        SqlError::undefined(format!("backup piece {n} does not exist"))
                            .with_ob("OB_BACKUP_PIECE_NOT_EXIST", 9101)
                    })?;
                if !eligible(&piece.status) {
                    return Err(SqlError::wrong_state(format!(
                        "backup piece {n} is {}: only FROZEN pieces are copied, and the ACTIVE \
                         one WITH ACTIVE BACKUPPIECE",
                        piece.status
                    )));
                }
                (vec![piece], 1)
            }
            CopyChoice::All {
                not_backed_up_times,
            } => {
                let times = not_backed_up_times.unwrap_or(1);
                let mut chosen = Vec::new();
                for piece in pieces.into_iter().filter(|p| eligible(&p.status)) {
                    let copies = self.catalog.piece_copies(piece.piece_id)?;
                    let here = copies.iter().any(|(_, p)| *p == shown_dest);
                    if piece.status == "ACTIVE" || (!here && (copies.len() as i64) < times) {
                        chosen.push(piece);
                    }
                }
                (chosen, times)
            }
        };
        let nothing = chosen.is_empty().then(|| {
            "no backup piece needs a copy (only FROZEN pieces are copied, and the ACTIVE one \
             WITH ACTIVE BACKUPPIECE)"
                .to_string()
        });
        let mut work = Vec::with_capacity(chosen.len());
        for piece in &chosen {
            let copy_id = match self
                .catalog
                .piece_copies(piece.piece_id)?
                .into_iter()
                .find(|(_, p)| *p == shown_dest)
            {
                Some((id, _)) => id,
                None => self.catalog.next_piece_copy_id(piece.piece_id)?,
            };
            work.push(CopyWork {
                tenant_id: piece.tenant_id,
                backup_set_id: 0,
                piece_id: piece.piece_id,
                round_id: piece.round_id,
                copy_id,
                source_path: piece.path.clone(),
            });
        }
        let job = NewJob {
            tenant_id: tenant.map_or(SYS_TENANT_ID, |t| t.id),
            job_level: if tenant.is_some() {
                "USER_TENANT"
            } else {
                "CLUSTER"
            }
            .into(),
            executor_tenant_id: tenant.map_or(SYS_TENANT_ID, |t| t.id).to_string(),
            backup_tenant_name: tenant.map(|t| t.name.clone()),
            backup_dest: Some(shown_dest.clone()),
            path: Some(shown_dest),
            ..NewJob::default()
        };
        let copy_type = if with_active { "1" } else { "0" };
        let (job_id, tasks) = self.catalog.create_copy_job(
            JobKind::BackupBackuppiece,
            &job,
            copy_type,
            times,
            &work,
        )?;
        let control = self.register(job_id);
        let executor = self.clone();
        self.spawn_job(job_id, async move {
            executor
                .run_copy_job(job_id, Copying::Pieces, dest, tasks, control)
                .await;
            executor.finished(job_id);
        });
        tracing::info!(
            job_id,
            pieces = work.len(),
            "backup backuppiece job started"
        );
        Ok(CopyStarted { job_id, nothing })
    }

    /// The second destination: named in the statement, else `BACKUP_BACKUP_DEST`; stamped.
    fn copy_destination(&self, tenant: Option<&Tenant>, dest: Option<&str>) -> SqlResult<String> {
        let dest = match dest {
            Some(d) => d.to_string(),
            None => self
                .catalog
                .parameter(tenant.map_or(SYS_TENANT_ID, |t| t.id), "backup_backup_dest")?
                .ok_or_else(|| {
                    SqlError::wrong_state("no BACKUP_BACKUP_DEST is set").with_hint(
                        "set one with ALTER SYSTEM SET BACKUP_BACKUP_DEST = 'file:///path', or \
                         name it with BACKUP_BACKUP_DEST = '...' in the statement",
                    )
                })?,
        };
        super::destination::prepare(&self.catalog, &dest, self.catalog.installation_id())?;
        Ok(dest)
    }

    /// Copies one piece, segment by segment.
    async fn copy_piece(
        self: &Arc<Self>,
        task: &CopyTask,
        dest: &str,
        control: &Arc<super::JobControl>,
    ) -> CopyEnd {
        let w = task.work.clone();
        let names = match self.catalog.segments_of_piece(w.piece_id) {
            Ok(names) => names,
            Err(e) => {
                return CopyEnd::Failed {
                    code: sqlstate::IO_ERROR,
                    comment: format!("cannot list the segments of piece {}: {e}", w.piece_id),
                };
            }
        };
        let (to, cancel) = (dest.to_string(), control.cancel.clone());
        let catalog = Arc::clone(&self.catalog);
        let result = super::on_blocking_thread("piece copy", move || {
            let from = catalog.destination_backend(&w.source_path)?;
            let to = catalog.destination_backend(&to)?;
            let (mut sent, mut bytes) = (0u64, 0u64);
            for name in &names {
                if cancel.is_cancelled() {
                    return Err(EngineError::Cancelled);
                }
                let n =
                    engine::archive::copy_segment(from.as_ref(), to.as_ref(), w.tenant_id, name)?;
                sent += u64::from(n > 0);
                bytes += n;
            }
            Ok((names.len(), sent, bytes))
        })
        .await;
        match result {
            Ok((segments, sent, bytes)) => match self.catalog.record_piece_copy(
                task.work.piece_id,
                task.work.copy_id,
                &mask_secrets(dest),
            ) {
                Ok(()) => CopyEnd::Copied {
                    comment: format!(
                        "{segments} segment(s): {sent} copied ({bytes} bytes), the rest already there"
                    ),
                },
                Err(e) => CopyEnd::Failed {
                    code: sqlstate::IO_ERROR,
                    comment: format!("cannot record the copy: {e}"),
                },
            },
            Err(EngineError::Cancelled) => CopyEnd::Canceled,
            Err(e) => CopyEnd::Failed {
                code: e.kind().sqlstate(),
                comment: failure_comment(
                    &format!(
                        "copy of backup piece {} to {}",
                        task.work.piece_id,
                        mask_secrets(dest)
                    ),
                    &e,
                ),
            },
        }
    }
}

/// What a copy job copies. Both kinds run through one skeleton ([`Executor::run_copy_job`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Copying {
    Sets,
    Pieces,
}

impl Copying {
    /// The status a job and its tasks show while copying (3.x words).
    fn working(self) -> CopyStatus {
        match self {
            Copying::Sets => CopyStatus::Backup,
            Copying::Pieces => CopyStatus::Doing,
        }
    }

    fn job_name(self) -> &'static str {
        match self {
            Copying::Sets => "backup backupset",
            Copying::Pieces => "backup backuppiece",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Copying::Sets => "set(s)",
            Copying::Pieces => "piece(s)",
        }
    }
}

/// How a copy job ends: CANCEL when cancelled or stopped with tasks left, FINISH with a RESULT
/// other than 0 when a copy or the check of the copies failed, FINISH otherwise.
fn copy_outcome(
    what: Copying,
    canceled: bool,
    checked: Result<(), (SqlState, String)>,
    ends: &[CopyEnd],
) -> (CopyStatus, JobChange) {
    let failed = ends.iter().find_map(|e| match e {
        CopyEnd::Failed { code, comment } => Some((*code, comment.clone())),
        _ => None,
    });
    let skipped = ends
        .iter()
        .filter(|e| matches!(e, CopyEnd::NotStarted))
        .count();
    let copied = ends
        .iter()
        .filter(|e| matches!(e, CopyEnd::Copied { .. }))
        .count();
    let noun = what.noun();
    match (checked, failed) {
        _ if canceled => (CopyStatus::Cancel, JobChange::canceled("canceled by user")),
        (Err((code, comment)), _) | (Ok(()), Some((code, comment))) => {
            (CopyStatus::Finish, JobChange::failed(code, comment))
        }
        (Ok(()), None) if skipped > 0 => (
            CopyStatus::Cancel,
            JobChange::canceled(format!(
                "stopped gracefully by user: {copied} {noun} copied, {skipped} not started"
            )),
        ),
        (Ok(()), None) if ends.is_empty() => (
            CopyStatus::Finish,
            JobChange::completed(match what {
                Copying::Sets => "nothing to copy: no backup set needed a copy",
                Copying::Pieces => "nothing to copy: no backup piece needed a copy",
            }),
        ),
        (Ok(()), None) => (
            CopyStatus::Finish,
            JobChange::completed(format!("{copied} {noun} copied")),
        ),
    }
}

fn nothing_copying(kind: JobKind) -> SqlError {
    SqlError::wrong_state(format!("no {} job is running", copy_kind_name(kind)))
        .with_ob("OB_BACKUP_CANCEL_NOT_ALLOWED", 9049)
}
