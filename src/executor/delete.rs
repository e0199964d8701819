//! Deletion (SPEC §2.6): `ALTER SYSTEM DELETE BACKUPSET n` as a job with one task per set. A
//! task waits while a restore, validation or copy uses its set (saying so in its COMMENT),
//! removes the set's descriptor from the destination (the set stops being restorable at once)
//! and marks it `FILE_STATUS = 'DELETED'`; then the job runs the collector ([`crate::engine::gc`])
//! over each destination it touched, which reclaims the space once the grace period
//! (`backup_gc_grace_period`) has passed and no backup writes there.
//!
//! Backups hold a destination's lock for reading while they run; the collector sweeps only
//! with it held for writing, so no backup loads the index or writes a pack while objects are
//! deleted.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::RwLock;

use super::{Executor, OB_CANCELED, failure_comment};
use crate::catalog::jobs::{JobChange, JobKind, NewJob, NewTask, TaskRecord};
use crate::catalog::status::{JobStatus, TaskStatus};
use crate::catalog::tenants::Tenant;
use crate::catalog::{SYS_TENANT_ID, mask_secrets, now_micros};
use crate::engine::EngineError;
use crate::engine::gc::{Collection, SweepRule, collect};
use crate::engine::set::set_object_name;
use crate::error::{SqlError, SqlResult};
use crate::storage::open_destination;

/// How often a waiting delete task looks again at the job that uses its set.
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

/// A set a delete job removes.
struct Doomed {
    tenant_id: i64,
    set_id: i64,
    dest_uri: String,
}

impl Executor {
    /// `ALTER SYSTEM DELETE BACKUPSET n [TENANT t]`: checks the set may go, records the job and
    /// starts it. Returns the job's id.
    pub fn start_delete_set(
        self: &Arc<Self>,
        set_id: i64,
        tenant: Option<&Tenant>,
    ) -> SqlResult<i64> {
        let set = self
            .catalog
            .backup_set(set_id)?
            .filter(|s| s.status == "COMPLETED" && s.file_status != "DELETED")
            .filter(|s| tenant.is_none_or(|t| t.id == s.tenant_id))
            .ok_or_else(|| {
                SqlError::undefined(format!(
                    "backup set {set_id}{} does not exist or is already deleted",
                    tenant.map_or(String::new(), |t| format!(" of tenant {}", t.name))
                ))
                .with_ob("OB_BACKUP_SET_NOT_EXIST", 9046)
            })?;
        let restorable = self.catalog.restorable_sets(set.tenant_id, &set.path)?;
        if restorable.iter().all(|id| *id == set_id) {
            return Err(SqlError::wrong_state(format!(
                "backup set {set_id} is the last restorable set of tenant {} in {}: at least \
                 one is always kept",
                set.tenant_id,
                mask_secrets(&set.path)
            ))
            .with_hint("back up again first, then delete the older set"));
        }
        let dest_uri = self
            .catalog
            .parameter(set.tenant_id, "data_backup_dest")?
            .filter(|d| mask_secrets(d) == set.path)
            .unwrap_or_else(|| set.path.clone());
        let job = NewJob {
            tenant_id: set.tenant_id,
            job_level: "USER_TENANT".into(),
            executor_tenant_id: set.tenant_id.to_string(),
            job_type: Some("DELETE BACKUP SET".into()),
            path: Some(mask_secrets(&dest_uri)),
            backup_set_id: Some(set_id),
            ..NewJob::default()
        };
        let tasks = vec![NewTask {
            tenant_id: set.tenant_id,
            backup_set_id: Some(set_id),
            path: Some(mask_secrets(&dest_uri)),
            ..NewTask::default()
        }];
        let (job_id, records) = self.catalog.create_job(JobKind::Delete, &job, &tasks)?;
        tracing::info!(
            job_id,
            set_id,
            tenant_id = set.tenant_id,
            "delete job created"
        );
        let doomed = vec![Doomed {
            tenant_id: set.tenant_id,
            set_id,
            dest_uri,
        }];
        let control = self.register(job_id);
        let executor = self.clone();
        self.runtime.spawn(async move {
            executor.start_job(job_id);
            let mut outcome: Result<(), EngineError> = Ok(());
            for (task, set) in records.iter().zip(&doomed) {
                if let Err(e) = executor.delete_one(task, set, &control.cancel).await {
                    outcome = Err(e);
                    break;
                }
            }
            let outcome = match outcome {
                Ok(()) => {
                    executor
                        .collect_after_delete(&doomed[0].dest_uri, &control.cancel)
                        .await
                }
                Err(e) => Err(e),
            };
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
                    JobChange::failed(
                        e.kind().sqlstate(),
                        failure_comment("deletion of backup sets", &e),
                    ),
                ),
            };
            executor.end_job(job_id, to, change);
            executor.finished(job_id);
        });
        Ok(job_id)
    }

    /// One set: wait while a job uses it, remove its descriptor, record it deleted.
    async fn delete_one(
        &self,
        task: &TaskRecord,
        set: &Doomed,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Result<(), EngineError> {
        if !self.start_task(task.task_id) {
            return Err(EngineError::Cancelled);
        }
        let io = |e: crate::catalog::CatalogError| {
            EngineError::io(
                "update the catalog",
                "catalog",
                std::io::Error::other(e.to_string()),
            )
        };
        let mut said = None;
        loop {
            let user = self.catalog.job_using_set(set.set_id).map_err(io)?;
            let Some((job_id, kind)) = user else { break };
            if said != Some(job_id) {
                let comment = format!(
                    "waiting for job {job_id} ({kind}), which uses backup set {}",
                    set.set_id
                );
                self.catalog
                    .set_task_comment(task.task_id, &comment)
                    .map_err(io)?;
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
        let (dest, object) = (
            set.dest_uri.clone(),
            set_object_name(set.tenant_id, set.set_id),
        );
        super::on_blocking_thread("delete set", move || {
            let backend = open_destination(&dest)?;
            backend.delete(&object)?;
            Ok(())
        })
        .await?;
        self.catalog
            .set_file_status(set.set_id, "DELETED", None)
            .map_err(io)?;
        self.end_task(
            task.task_id,
            TaskStatus::Completed,
            0,
            &format!(
                "backup set {} deleted; its space is reclaimed by the collector",
                set.set_id
            ),
        );
        tracing::info!(set_id = set.set_id, "backup set deleted");
        Ok(())
    }

    /// Runs the collector over `dest_uri`: marks what no set needs any more and, past the grace
    /// period and with no backup running there, deletes it. With a grace period of 0 the
    /// marks are swept at once. Returns what it did, for the job's COMMENT.
    pub(super) async fn collect_after_delete(
        &self,
        dest_uri: &str,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Result<String, EngineError> {
        let root =
            super::destination_root(dest_uri).map_err(|e| EngineError::DestinationMissing {
                destination: e.message,
            })?;
        let grace = self.duration_parameter(
            SYS_TENANT_ID,
            "backup_gc_grace_period",
            Duration::from_secs(3600),
        );
        let lock = self.destination_locks.of(&root);
        // Held for the whole collection when no backup runs: none starts meanwhile.
        let quiet = lock.try_write_owned().ok();
        let backup_running = quiet.is_none();
        let (uri, cancel) = (dest_uri.to_string(), cancel.clone());
        let done: Collection = super::on_blocking_thread("collect", move || {
            let _quiet = quiet;
            let backend = open_destination(&uri)?;
            let rule = |now| SweepRule {
                now,
                grace_micros: grace.as_micros() as i64,
                backup_running,
            };
            let mut done = collect(backend.as_ref(), rule(now_micros()), &cancel)?;
            if grace.is_zero() && !backup_running && done.pending_objects > 0 {
                let swept = collect(backend.as_ref(), rule(now_micros()), &cancel)?;
                done.deleted_objects += swept.deleted_objects;
                done.deleted_bytes += swept.deleted_bytes;
                done.pending_objects = swept.pending_objects;
                done.pending_bytes = swept.pending_bytes;
                done.live_bytes = swept.live_bytes;
            }
            Ok(done)
        })
        .await?;
        tracing::info!(
            destination = %mask_secrets(dest_uri),
            deleted_bytes = done.deleted_bytes,
            pending_bytes = done.pending_bytes,
            "collection done"
        );
        let mut summary = format!(
            "collector: {} object(s), {} bytes reclaimed; {} bytes live",
            done.deleted_objects, done.deleted_bytes, done.live_bytes
        );
        if done.pending_objects > 0 {
            summary.push_str(&format!(
                "; {} object(s), {} bytes marked, reclaimed by a collection after \
                 backup_gc_grace_period{}",
                done.pending_objects,
                done.pending_bytes,
                if backup_running {
                    " once no backup runs into the destination"
                } else {
                    ""
                }
            ));
        }
        Ok(summary)
    }
}
