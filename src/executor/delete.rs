//! Deletion (SPEC §2.6) as jobs: `DELETE BACKUPSET n[, m]`, `DELETE BACKUPPIECE n`, and
//! `DELETE OBSOLETE BACKUP` (by statement or by a delete policy, [`super::retention`]). A job has
//! one task per set copy or piece copy it removes. A task waits while a restore, validation or
//! copy uses its set or piece (saying so in its COMMENT), then removes it: a set's descriptor
//! (it stops being restorable at once; its data is the collector's), a piece's segments. Then
//! the job runs the collector ([`crate::engine::gc`]) over every data destination it touched.
//!
//! Admission is one critical section: which sets and pieces a job takes is decided and recorded
//! under `admission`, so that two deletions can never together take the last restorable set.
//! A delete job interrupted by a kill goes on when the server starts again (deleting is
//! idempotent); a cancelled one ends at once, and what it had not deleted stays.
//!
//! Backups hold a destination's lock for reading while they run; the collector repacks and
//! sweeps only with it held for writing, so no backup loads the index or writes a pack while
//! objects are deleted.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::RwLock;
use tokio_util::sync::CancellationToken;

use super::{Executor, OB_CANCELED, failure_comment};
use crate::catalog::deletion::{PieceCopy, SetCopy};
use crate::catalog::jobs::{JobChange, JobKind, JobRecord, NewJob, NewTask, TaskRecord};
use crate::catalog::status::{JobStatus, Status, TaskStatus};
use crate::catalog::tenants::Tenant;
use crate::catalog::{CatalogError, SYS_TENANT_ID, mask_secrets};
use crate::engine::gc::{Collection, SweepRule, collect};
use crate::engine::set::set_object_name;
use crate::engine::{EngineError, Progress};
use crate::error::{SqlError, SqlResult};

/// How often a waiting delete task looks again at the job that uses its set or piece.
const IN_USE_POLL: Duration = Duration::from_millis(200);

/// One lock per destination root: backups read, the collector's sweep writes.
#[derive(Debug, Default)]
pub struct DestinationLocks {
    locks: std::sync::Mutex<HashMap<PathBuf, Arc<RwLock<()>>>>,
}

impl DestinationLocks {
    pub fn of(&self, root: &std::path::Path) -> Arc<RwLock<()>> {
        self.locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(root.to_path_buf())
            .or_default()
            .clone()
    }
}

/// What one delete task removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Doomed {
    Set(SetCopy),
    Piece(PieceCopy),
}

impl Doomed {
    fn tenant_id(&self) -> i64 {
        match self {
            Doomed::Set(s) => s.tenant_id,
            Doomed::Piece(p) => p.tenant_id,
        }
    }

    fn describe(&self) -> String {
        match self {
            Doomed::Set(s) => shown("set", s.set_id, s.copy_id),
            Doomed::Piece(p) => shown("piece", p.piece_id, p.copy_id),
        }
    }

    fn task(&self) -> NewTask {
        match self {
            Doomed::Set(s) => NewTask {
                tenant_id: s.tenant_id,
                backup_set_id: Some(s.set_id),
                copy_id: s.copy_id,
                path: Some(mask_secrets(&s.path)),
                ..NewTask::default()
            },
            Doomed::Piece(p) => NewTask {
                tenant_id: p.tenant_id,
                piece_id: Some(p.piece_id),
                copy_id: p.copy_id,
                path: Some(mask_secrets(&p.path)),
                ..NewTask::default()
            },
        }
    }
}

/// A delete job about to be recorded.
pub(crate) struct DeleteOrder {
    /// `DELETE BACKUP SET`, `DELETE BACKUP PIECE` or `DELETE OBSOLETE BACKUP`.
    pub job_type: &'static str,
    pub tenant_id: i64,
    /// `PARAMETER`: the ids asked for, or the expiry time.
    pub parameter: String,
    pub doomed: Vec<Doomed>,
    /// Data destinations (masked paths) the job collects besides those of its sets.
    pub collect: Vec<String>,
    pub comment: Option<String>,
}

fn catalog_io(e: CatalogError) -> EngineError {
    EngineError::io(
        "update the catalog",
        "catalog",
        std::io::Error::other(e.to_string()),
    )
}

/// OceanBase's errors for a set or piece that may not be deleted (`ob_errno.def`).
const SET_NOT_ALLOWED: (&str, i32) = ("OB_BACKUP_DELETE_BACKUP_SET_NOT_ALLOWED", 9045);
const PIECE_NOT_ALLOWED: (&str, i32) = ("OB_BACKUP_DELETE_BACKUP_PIECE_NOT_ALLOWED", 9069);

/// How a set or piece copy is named in messages: `backup set 3`, `backup piece 2 copy 1`.
fn shown(what: &str, id: i64, copy_id: i64) -> String {
    match copy_id {
        0 => format!("backup {what} {id}"),
        c => format!("backup {what} {id} copy {c}"),
    }
}

/// Refuses a set (`is_set`) or piece copy a running delete job already holds.
fn refuse_if_held(
    busy: &[(bool, i64, i64, i64)],
    is_set: bool,
    id: i64,
    copy_id: i64,
) -> SqlResult<()> {
    match busy
        .iter()
        .find(|(set, held, copy, _)| *set == is_set && *held == id && *copy == copy_id)
    {
        Some((.., job_id)) => Err(SqlError::wrong_state(format!(
            "{} is already being deleted by job {job_id}",
            shown(if is_set { "set" } else { "piece" }, id, copy_id)
        ))
        .with_ob("OB_BACKUP_DELETE_DATA_IN_PROGRESS", 9044)
        .with_hint("wait for that job (CDB_OB_BACKUP_DELETE_JOBS), or cancel it")),
        None => Ok(()),
    }
}

impl Executor {
    /// `ALTER SYSTEM DELETE BACKUPSET n[, m ...] [COPY c] [TENANT t]`.
    pub fn start_delete_sets(
        self: &Arc<Self>,
        set_ids: &[i64],
        copy: Option<i64>,
        tenant: Option<&Tenant>,
    ) -> SqlResult<i64> {
        let copy_id = copy.unwrap_or(0);
        let (_admission, busy) = self.admission()?;
        let mut doomed = Vec::new();
        for &set_id in set_ids {
            let set = self
                .catalog
                .set_copy(set_id, copy_id)?
                .filter(|s| s.file_status != "DELETED")
                .filter(|s| tenant.is_none_or(|t| t.id == s.tenant_id))
                .ok_or_else(|| {
                    SqlError::undefined(format!(
                        "{}{} does not exist or is already deleted",
                        shown("set", set_id, copy_id),
                        tenant.map_or(String::new(), |t| format!(" of tenant {}", t.name))
                    ))
                    .with_ob(SET_NOT_ALLOWED.0, SET_NOT_ALLOWED.1)
                })?;
            refuse_if_held(&busy, true, set_id, copy_id)?;
            if !doomed.contains(&Doomed::Set(set.clone())) {
                doomed.push(Doomed::Set(set));
            }
        }
        self.check_one_stays(&doomed, &busy)?;
        let tenant_id = common_tenant(&doomed);
        let parameter = set_ids
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        self.admit_delete(DeleteOrder {
            job_type: "DELETE BACKUP SET",
            tenant_id,
            parameter,
            doomed,
            collect: Vec::new(),
            comment: None,
        })
    }

    /// `ALTER SYSTEM DELETE BACKUPPIECE n [COPY c] [TENANT t]` (also `ARCHIVELOG_PIECE`).
    pub fn start_delete_piece(
        self: &Arc<Self>,
        piece_id: i64,
        copy: Option<i64>,
        tenant: Option<&Tenant>,
    ) -> SqlResult<i64> {
        let copy_id = copy.unwrap_or(0);
        let (_admission, busy) = self.admission()?;
        let shown = shown("piece", piece_id, copy_id);
        let piece = self
            .catalog
            .piece_copy(piece_id, copy_id)?
            .filter(|p| p.file_status != "DELETED")
            .filter(|p| tenant.is_none_or(|t| t.id == p.tenant_id))
            .ok_or_else(|| {
                SqlError::undefined(format!("{shown} does not exist or is already deleted"))
                    .with_ob(PIECE_NOT_ALLOWED.0, PIECE_NOT_ALLOWED.1)
            })?;
        refuse_if_held(&busy, false, piece_id, copy_id)?;
        if piece.status != "FROZEN" {
            return Err(SqlError::wrong_state(format!(
                "{shown} is {}: only a frozen piece can be deleted",
                piece.status
            ))
            .with_ob(PIECE_NOT_ALLOWED.0, PIECE_NOT_ALLOWED.1)
            .with_hint("the piece freezes when the archive switches to the next one"));
        }
        // Pieces go in order: an older one of the same copy goes first (or with a job
        // already deleting it).
        let going: HashSet<(i64, i64)> = busy
            .iter()
            .filter(|(is_set, ..)| !*is_set)
            .map(|(_, id, c, _)| (*id, *c))
            .collect();
        if let Some(older) = self
            .catalog
            .piece_copies_of(piece.tenant_id)?
            .into_iter()
            .find(|p| {
                p.copy_id == copy_id
                    && p.piece_id < piece_id
                    && !going.contains(&(p.piece_id, p.copy_id))
            })
        {
            return Err(SqlError::wrong_state(format!(
                "{shown} is not the oldest piece: delete piece {} first",
                older.piece_id
            ))
            .with_ob(PIECE_NOT_ALLOWED.0, PIECE_NOT_ALLOWED.1)
            .with_hint("pieces are deleted in order, oldest first"));
        }
        let kept = super::retention::kept_sets_after(
            &self.catalog.restorable_set_copies(Some(piece.tenant_id))?,
            &busy,
            &[],
        );
        if let Some(needs) = kept
            .iter()
            .filter(|s| s.copy_id == 0)
            .min_by_key(|s| s.start_ts)
            .filter(|s| piece.checkpoint_scn >= s.start_ts.saturating_mul(1000))
        {
            return Err(SqlError::wrong_state(format!(
                "{shown} holds log that backup set {} needs for its restore",
                needs.set_id
            ))
            .with_ob(PIECE_NOT_ALLOWED.0, PIECE_NOT_ALLOWED.1)
            .with_hint(
                "delete the sets that need it first; the log before the oldest kept set may go",
            ));
        }
        self.admit_delete(DeleteOrder {
            job_type: "DELETE BACKUP PIECE",
            tenant_id: piece.tenant_id,
            parameter: piece_id.to_string(),
            doomed: vec![Doomed::Piece(piece)],
            collect: Vec::new(),
            comment: None,
        })
    }

    /// `ALTER SYSTEM DELETE OBSOLETE BACKUP [TENANT t]`, and the policy's periodic run: deletes
    /// what the recovery window of each tenant's policy no longer needs, then collects every
    /// data destination of those tenants. Refused when no policy applies.
    pub fn start_delete_obsolete(
        self: &Arc<Self>,
        tenant: Option<&Tenant>,
        by_policy: bool,
    ) -> SqlResult<i64> {
        let (_admission, busy) = self.admission()?;
        let now = self.clock_micros();
        let plan = super::retention::obsolete(&self.catalog, tenant.map(|t| t.id), now, &busy)?;
        let no_policy = match tenant {
            Some(_) => plan.tenants.is_empty(),
            None => self.catalog.delete_policies()?.is_empty(),
        };
        if no_policy {
            return Err(SqlError::wrong_state(match tenant {
                Some(t) => format!("no delete policy applies to tenant {}", t.name),
                None => "no delete policy is set".to_string(),
            })
            .with_ob("OB_ENTRY_NOT_EXIST", 4018)
            .with_hint(
                "ALTER SYSTEM ADD DELETE BACKUP POLICY 'default' RECOVERY_WINDOW '7d' [TENANT t]",
            ));
        }
        let mut collect = Vec::new();
        for tenant_id in &plan.tenants {
            collect.extend(self.catalog.set_destinations(Some(*tenant_id))?);
        }
        self.check_one_stays(&plan.doomed, &busy)?;
        let comment = by_policy.then(|| "started by the delete policy".to_string());
        self.admit_delete(DeleteOrder {
            job_type: "DELETE OBSOLETE BACKUP",
            tenant_id: tenant.map_or(SYS_TENANT_ID, |t| t.id),
            parameter: plan.expiry,
            doomed: plan.doomed,
            collect,
            comment,
        })
    }

    /// Enters admission (held until the job is recorded) and reads what running deletions
    /// hold: a decision made under it cannot race another deletion's.
    fn admission(&self) -> SqlResult<(std::sync::MutexGuard<'_, ()>, Vec<(bool, i64, i64, i64)>)> {
        let guard = self
            .delete_admission
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let busy = self.catalog.being_deleted()?;
        Ok((guard, busy))
    }

    /// The rule every deletion keeps: each tenant keeps at least one restorable set in every
    /// destination that holds one.
    fn check_one_stays(&self, doomed: &[Doomed], busy: &[(bool, i64, i64, i64)]) -> SqlResult<()> {
        let sets: Vec<&SetCopy> = doomed
            .iter()
            .filter_map(|d| match d {
                Doomed::Set(s) => Some(s),
                Doomed::Piece(_) => None,
            })
            .collect();
        let tenants: BTreeSet<i64> = sets.iter().map(|s| s.tenant_id).collect();
        for tenant_id in tenants {
            let all = self.catalog.restorable_set_copies(Some(tenant_id))?;
            let kept = super::retention::kept_sets_after(&all, busy, doomed);
            for path in sets
                .iter()
                .filter(|s| s.tenant_id == tenant_id)
                .map(|s| &s.path)
                .collect::<BTreeSet<_>>()
            {
                if !kept.iter().any(|k| &k.path == path) {
                    let last = sets
                        .iter()
                        .filter(|s| &s.path == path && s.tenant_id == tenant_id)
                        .map(|s| s.set_id.to_string())
                        .collect::<Vec<_>>()
                        .join(", ");
                    return Err(SqlError::wrong_state(format!(
                        "backup set {last} would leave tenant {tenant_id} without a restorable \
                         set in {}: the last restorable set is always kept",
                        mask_secrets(path)
                    ))
                    .with_ob(SET_NOT_ALLOWED.0, SET_NOT_ALLOWED.1)
                    .with_hint("back up again first, then delete the older set"));
                }
            }
        }
        Ok(())
    }

    /// Records the job and its tasks and starts it. Called with `delete_admission` held.
    fn admit_delete(self: &Arc<Self>, order: DeleteOrder) -> SqlResult<i64> {
        let first_set = order.doomed.iter().find_map(|d| match d {
            Doomed::Set(s) => Some(s.set_id),
            Doomed::Piece(_) => None,
        });
        let first_piece = order.doomed.iter().find_map(|d| match d {
            Doomed::Piece(p) => Some(p.piece_id),
            Doomed::Set(_) => None,
        });
        let mut paths: Vec<String> = order
            .doomed
            .iter()
            .filter_map(|d| match d {
                Doomed::Set(s) => Some(s.path.clone()),
                Doomed::Piece(_) => None,
            })
            .chain(order.collect.iter().cloned())
            .collect();
        paths.sort();
        paths.dedup();
        let job = NewJob {
            tenant_id: order.tenant_id,
            job_level: if order.tenant_id == SYS_TENANT_ID {
                "CLUSTER".into()
            } else {
                "USER_TENANT".into()
            },
            executor_tenant_id: order.tenant_id.to_string(),
            job_type: Some(order.job_type.into()),
            parameter: Some(order.parameter.clone()),
            path: Some(
                paths
                    .iter()
                    .map(|p| mask_secrets(p))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            backup_set_id: first_set,
            piece_id: first_piece,
            comment: order.comment.clone(),
            description: order.comment.clone(),
            ..NewJob::default()
        };
        let tasks: Vec<NewTask> = order.doomed.iter().map(Doomed::task).collect();
        let (job_id, records) = self.catalog.create_job(JobKind::Delete, &job, &tasks)?;
        tracing::info!(
            job_id,
            tenant_id = order.tenant_id,
            job_type = order.job_type,
            tasks = records.len(),
            "delete job created"
        );
        self.spawn_delete(job_id, records, order.doomed, paths, order.comment);
        Ok(job_id)
    }

    /// Runs a delete job: its tasks in order, then the collection of each destination.
    fn spawn_delete(
        self: &Arc<Self>,
        job_id: i64,
        records: Vec<TaskRecord>,
        doomed: Vec<Doomed>,
        paths: Vec<String>,
        origin: Option<String>,
    ) {
        let control = self.register(job_id);
        let executor = self.clone();
        self.spawn_job(job_id, async move {
            executor.start_job(job_id);
            let mut outcome: Result<String, EngineError> = Ok(String::new());
            for (task, item) in records.iter().zip(&doomed) {
                if task.status == Status::Job(TaskStatus::Completed) {
                    continue;
                }
                if let Err(e) = executor.delete_one(task, item, &control.cancel).await {
                    outcome = Err(e);
                    break;
                }
            }
            if outcome.is_ok() {
                let mut summaries = Vec::new();
                for path in &paths {
                    match executor
                        .collect_destination(job_id, path, &control.cancel)
                        .await
                    {
                        Ok(summary) => summaries.push(summary),
                        Err(e) => {
                            outcome = Err(e);
                            break;
                        }
                    }
                }
                if outcome.is_ok() {
                    let deleted = doomed.len();
                    let mut comment = match &origin {
                        Some(origin) => format!("{origin}: {deleted} deleted"),
                        None => format!("{deleted} deleted"),
                    };
                    if paths.is_empty() {
                        comment.push_str("; no data destination to collect");
                    }
                    for summary in summaries {
                        comment.push_str("; ");
                        comment.push_str(&summary);
                    }
                    outcome = Ok(comment);
                }
            }
            let (to, change) = match outcome {
                Ok(summary) => (JobStatus::Completed, JobChange::completed(&summary)),
                Err(EngineError::Cancelled) => {
                    for task in &records {
                        executor.end_task(
                            task.task_id,
                            TaskStatus::Canceled,
                            OB_CANCELED,
                            "canceled by user",
                        );
                    }
                    (JobStatus::Canceled, JobChange::canceled("canceled by user"))
                }
                Err(e) => (
                    JobStatus::Failed,
                    JobChange::failed(e.kind().sqlstate(), failure_comment("deletion", &e)),
                ),
            };
            executor.end_job(job_id, to, change);
            executor.finished(job_id);
        });
    }

    /// One set or piece: wait while a job uses it, remove it, record it deleted.
    async fn delete_one(
        &self,
        task: &TaskRecord,
        item: &Doomed,
        cancel: &CancellationToken,
    ) -> Result<(), EngineError> {
        let resumed = task.status == Status::Job(TaskStatus::Doing);
        if !resumed && !self.start_task(task.task_id) {
            return Err(EngineError::Cancelled);
        }
        let mut said = None;
        loop {
            let user = match item {
                Doomed::Set(s) => self.catalog.job_using_set(s.set_id),
                Doomed::Piece(p) => self.catalog.job_using_piece(p.piece_id, p.tenant_id),
            }
            .map_err(catalog_io)?;
            let Some((job_id, kind)) = user else { break };
            if said != Some(job_id) {
                let comment = format!(
                    "waiting for job {job_id} ({kind}), which uses {}",
                    item.describe()
                );
                self.catalog
                    .set_task_comment(task.task_id, &comment)
                    .map_err(catalog_io)?;
                tracing::info!(job_id = task.job_id, waiting_for = job_id, "{comment}");
                said = Some(job_id);
            }
            tokio::select! {
                _ = cancel.cancelled() => return Err(EngineError::Cancelled),
                _ = tokio::time::sleep(IN_USE_POLL) => {}
            }
        }
        if cancel.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        let what = item.describe();
        match item {
            Doomed::Set(set) => {
                let dest = self.raw_destination(set.tenant_id, &set.path);
                let object = set_object_name(set.tenant_id, set.set_id);
                let catalog = Arc::clone(&self.catalog);
                super::on_blocking_thread("delete set", move || {
                    catalog.destination_backend(&dest)?.delete(&object)?;
                    Ok(())
                })
                .await?;
                self.catalog
                    .set_copy_deleted(set.set_id, set.copy_id)
                    .map_err(catalog_io)?;
            }
            Doomed::Piece(piece) => {
                let names = self
                    .catalog
                    .segments_of_piece(piece.piece_id)
                    .map_err(catalog_io)?;
                let dest = if piece.copy_id == 0 {
                    piece.path.clone()
                } else {
                    self.raw_destination(piece.tenant_id, &piece.path)
                };
                let tenant_id = piece.tenant_id;
                let cancel = cancel.clone();
                let catalog = Arc::clone(&self.catalog);
                super::on_blocking_thread("delete piece", move || {
                    let backend = catalog.destination_backend(&dest)?;
                    for name in names {
                        if cancel.is_cancelled() {
                            return Err(EngineError::Cancelled);
                        }
                        backend
                            .delete(&crate::engine::archive::segment_object(tenant_id, &name))?;
                    }
                    Ok(())
                })
                .await?;
                self.catalog
                    .set_piece_file_status(piece.piece_id, piece.copy_id, "DELETED")
                    .map_err(catalog_io)?;
            }
        }
        let comment = match item {
            Doomed::Set(_) => format!("{what} deleted; its space is reclaimed by the collector"),
            Doomed::Piece(_) => format!("{what} deleted"),
        };
        self.end_task(task.task_id, TaskStatus::Completed, 0, &comment);
        tracing::info!(
            job_id = task.job_id,
            tenant_id = item.tenant_id(),
            "{what} deleted"
        );
        Ok(())
    }

    /// The URI a masked path stands for: the destination parameter it masks, else itself.
    pub(crate) fn raw_destination(&self, tenant_id: i64, shown: &str) -> String {
        for name in ["data_backup_dest", "backup_backup_dest"] {
            for scope in [tenant_id, SYS_TENANT_ID] {
                if let Ok(Some(uri)) = self.catalog.parameter(scope, name)
                    && mask_secrets(&uri) == shown
                {
                    return uri;
                }
            }
        }
        shown.to_string()
    }

    /// Collects one data destination: drops checkpoints nothing can resume from any more,
    /// repacks sparse packs, marks what no set or checkpoint needs and, past the grace period
    /// and with no backup running there, deletes it. Returns what it did, for the COMMENT.
    pub(super) async fn collect_destination(
        &self,
        job_id: i64,
        shown: &str,
        cancel: &CancellationToken,
    ) -> Result<String, EngineError> {
        let uri = self.raw_destination(SYS_TENANT_ID, shown);
        let root = match super::destination_root(&uri) {
            Ok(root) => root,
            // A destination this server cannot reach is not collected, and says so.
            Err(e) => {
                return Ok(format!(
                    "{}: not collected ({})",
                    mask_secrets(shown),
                    e.message
                ));
            }
        };
        if !root.exists() {
            return Ok(format!("{}: not collected (missing)", mask_secrets(shown)));
        }
        let grace = self.duration_parameter(
            SYS_TENANT_ID,
            "backup_gc_grace_period",
            Duration::from_secs(3600),
        );
        let repack_below = self
            .catalog
            .parameter(SYS_TENANT_ID, "backup_gc_repack_threshold")
            .ok()
            .flatten()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(50.0)
            / 100.0;
        let lock = self.destination_locks.of(&root);
        // Held for the whole collection when no backup runs: none starts meanwhile.
        let quiet = lock.try_write_owned().ok();
        let backup_running = quiet.is_none();
        let held: HashSet<String> = self
            .catalog
            .held_checkpoints()
            .map_err(catalog_io)?
            .into_iter()
            .map(|(t, s)| crate::engine::checkpoint::checkpoint_object_name(t, s))
            .collect();
        let now = self.clock_micros();
        let progress = Arc::new(Progress::new());
        let publisher = self.publish_collection(job_id, progress.clone());
        let (task_uri, cancel) = (uri.clone(), cancel.clone());
        let task_progress = progress.clone();
        let catalog = Arc::clone(&self.catalog);
        let done: Result<(Collection, u64, (u64, u64)), EngineError> =
            super::on_blocking_thread("collect", move || {
                let _quiet = quiet;
                let backend = catalog.destination_backend(&task_uri)?;
                // Checkpoints of tasks that can never resume are garbage roots; only with the
                // destination to ourselves (a backup starting now writes a new one).
                let (mut orphans, mut temporaries) = (0, (0, 0));
                if !backup_running {
                    for object in backend.list("checkpoints/")? {
                        if object.name.ends_with(".ckpt") && !held.contains(&object.name) {
                            backend.delete(&object.name)?;
                            orphans += 1;
                        }
                    }
                    // What a killed server was writing when it died.
                    for prefix in [
                        "packs/",
                        "index/",
                        "manifests/",
                        "sets/",
                        "checkpoints/",
                        "gc/",
                    ] {
                        let (count, bytes) = backend.remove_temporaries(prefix)?;
                        temporaries.0 += count;
                        temporaries.1 += bytes;
                    }
                }
                let rule = |now| SweepRule {
                    now,
                    grace_micros: grace.as_micros() as i64,
                    backup_running,
                    repack_below,
                };
                let mut done = collect(backend.as_ref(), rule(now), &task_progress, &cancel)?;
                // With no grace period, what this pass marked is swept by a second one.
                if grace.is_zero() && !backup_running && done.pending_objects > 0 {
                    let swept = collect(backend.as_ref(), rule(now), &task_progress, &cancel)?;
                    done.deleted_objects += swept.deleted_objects;
                    done.deleted_bytes += swept.deleted_bytes;
                    done.pending_objects = swept.pending_objects;
                    done.pending_bytes = swept.pending_bytes;
                    done.live_bytes = swept.live_bytes;
                    done.rewritten_sets += swept.rewritten_sets;
                }
                Ok((done, orphans, temporaries))
            })
            .await;
        publisher.abort();
        let (done, orphans, temporaries) = done?;
        if done.pending_objects == 0 {
            self.catalog.cleanup_done(shown).map_err(catalog_io)?;
        }
        self.catalog
            .set_job_finish_bytes(job_id, progress.snapshot().input_bytes as i64)
            .map_err(catalog_io)?;
        tracing::info!(
            job_id,
            destination = %mask_secrets(shown),
            deleted_bytes = done.deleted_bytes,
            pending_bytes = done.pending_bytes,
            repacked = done.repacked_packs,
            "collection done"
        );
        let mut summary = format!(
            "collector in {}: {} object(s), {} bytes reclaimed; {} bytes live",
            mask_secrets(shown),
            done.deleted_objects,
            done.deleted_bytes,
            done.live_bytes
        );
        if done.repacked_packs > 0 {
            summary.push_str(&format!(
                "; {} sparse pack(s) repacked into {} bytes",
                done.repacked_packs, done.repacked_bytes
            ));
        }
        if orphans > 0 {
            summary.push_str(&format!("; {orphans} abandoned checkpoint(s) released"));
        }
        if temporaries.0 > 0 {
            summary.push_str(&format!(
                "; {} unfinished temporary object(s) of a killed server removed ({} bytes)",
                temporaries.0, temporaries.1
            ));
        }
        if done.pending_objects > 0 {
            summary.push_str(&format!(
                "; {} object(s), {} bytes marked, reclaimed by a collection after \
                 backup_gc_grace_period{}",
                done.pending_objects,
                done.pending_bytes,
                if backup_running {
                    " once no backup, copy, restore or validation uses the destination"
                } else {
                    ""
                }
            ));
        }
        Ok(summary)
    }

    /// Shows a collection's progress on its job about once a second.
    fn publish_collection(
        &self,
        job_id: i64,
        progress: Arc<Progress>,
    ) -> tokio::task::JoinHandle<()> {
        let catalog = self.catalog.clone();
        self.runtime.spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let snapshot = progress.snapshot();
                let comment = format!(
                    "collecting: {} of {} roots read, {} of {} bytes reclaimed",
                    snapshot.finished_files,
                    snapshot.total_files,
                    snapshot.input_bytes,
                    snapshot.total_bytes
                );
                // Progress is advisory: a failed write is retried by the next tick.
                if catalog.set_job_comment(job_id, &comment).is_err()
                    || catalog
                        .set_job_finish_bytes(job_id, snapshot.input_bytes as i64)
                        .is_err()
                {
                    tracing::debug!(job_id, "collection progress not recorded");
                }
            }
        })
    }

    /// `ALTER SYSTEM CANCEL DELETE BACKUP`: every running delete job stops; what it deleted
    /// stays deleted, the rest stays.
    pub fn cancel_delete(&self) -> SqlResult<Vec<i64>> {
        let jobs = self
            .catalog
            .jobs_in(JobKind::Delete, &[JobStatus::Init, JobStatus::Doing])?;
        let mut canceled = Vec::new();
        for job in jobs {
            if self.request_cancel(job.job_id)? {
                canceled.push(job.job_id);
            }
        }
        if canceled.is_empty() {
            return Err(SqlError::wrong_state("no deletion is running")
                .with_ob("OB_CANCEL_DELETE_BACKUP_NOT_ALLOWED", 9053));
        }
        Ok(canceled)
    }

    /// At start: a delete job a kill interrupted goes on from its first unfinished task.
    pub(super) fn resume_delete(self: &Arc<Self>, job: &JobRecord) -> SqlResult<()> {
        let records = self.catalog.tasks_of(job.job_id)?;
        let mut doomed = Vec::with_capacity(records.len());
        for task in &records {
            let item = match task.piece_id {
                Some(piece_id) => self
                    .catalog
                    .piece_copy(piece_id, task.copy_id)?
                    .map(Doomed::Piece),
                None => task
                    .backup_set_id
                    .map(|set_id| self.catalog.set_copy(set_id, task.copy_id))
                    .transpose()?
                    .flatten()
                    .map(Doomed::Set),
            };
            let Some(item) = item else {
                return Err(SqlError::internal(format!(
                    "delete job {}: task {} names nothing the catalog knows",
                    job.job_id, task.task_id
                )));
            };
            doomed.push(item);
        }
        let mut paths: Vec<String> = self
            .catalog
            .job_paths(job.job_id)?
            .into_iter()
            .filter(|p| !p.is_empty())
            .collect();
        paths.sort();
        paths.dedup();
        tracing::info!(job_id = job.job_id, "delete job resumed after a restart");
        self.spawn_delete(job.job_id, records, doomed, paths, job.description.clone());
        Ok(())
    }
}

/// The tenant a job over `doomed` belongs to: theirs when they are all one tenant's.
fn common_tenant(doomed: &[Doomed]) -> i64 {
    let tenants: BTreeSet<i64> = doomed.iter().map(Doomed::tenant_id).collect();
    match tenants.iter().next() {
        Some(only) if tenants.len() == 1 => *only,
        _ => SYS_TENANT_ID,
    }
}
