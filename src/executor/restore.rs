//! Restore jobs: a tenant's backup set, chosen by set id, by time or the newest, written into a
//! target directory (SPEC §2.5). Works from the catalog or, with `AT 'uri'`, from a destination
//! alone, as a new server after the loss of the old one must.

use crate::catalog::Catalog;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};

use super::{Executor, Interrupt, every_second, failure_comment};
use crate::catalog::jobs::{JobChange, JobKind, NewJob};
use crate::catalog::progress::JobFigures;
use crate::catalog::status::JobStatus;
use crate::catalog::tenants::{NewTenant, TenantKind};
use crate::catalog::{SYS_TENANT_ID, mask_secrets};
use crate::engine::archive::SegmentHeader;
use crate::engine::{self, EngineError, Progress, RestoreMethod, SetDescriptor, TenantRef};
use crate::error::{SqlError, SqlResult, from_engine, sqlstate};

/// The point a restore goes back to: `UNTIL TIME` or `UNTIL BACKUPSET`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestorePoint {
    /// The time as the statement wrote it, `YYYY-MM-DD HH:MI:SS[.ffffff]`, checked here.
    Time(String),
    BackupSet(i64),
}

/// What `ALTER SYSTEM RESTORE ...` asks for.
#[derive(Debug, Clone)]
pub struct RestoreSpec {
    pub from: String,
    pub at: Option<String>,
    pub until: Option<RestorePoint>,
}

/// The set a restore uses and where it comes from.
#[derive(Debug, Clone)]
pub struct RestorePlan {
    pub dest_uri: String,
    pub root: PathBuf,
    pub set: SetDescriptor,
}

/// `YYYY-MM-DD HH:MI:SS[.ffffff]`, UTC.
pub fn parse_until_time(text: &str) -> SqlResult<DateTime<Utc>> {
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M:%S"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text.trim(), f).ok())
        .map(|t| t.and_utc())
        .ok_or_else(|| {
            SqlError::invalid_value(format!(
                "UNTIL TIME '{text}' is not a time: write 'YYYY-MM-DD HH:MI:SS[.ffffff]' (UTC)"
            ))
        })
}

fn set_end(set: &SetDescriptor) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(&set.end_time)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl Executor {
    /// The destination a restore of `spec` reads its set from: the first `AT` URI, else the
    /// tenant's DATA_BACKUP_DEST.
    pub fn restore_destination(&self, spec: &RestoreSpec) -> SqlResult<String> {
        Ok(match &spec.at {
            Some(at) => at.split(',').next().unwrap_or_default().trim().to_string(),
            None => {
                let tenant = self
                    .catalog
                    .tenant_by_name(&spec.from)?
                    .ok_or_else(|| SqlError::unknown_tenant(&spec.from))?;
                self.catalog
                    .parameter(tenant.id, "data_backup_dest")?
                    .ok_or_else(|| {
                        SqlError::wrong_state(format!(
                            "tenant {} has no DATA_BACKUP_DEST to restore from",
                            spec.from
                        ))
                        .with_hint("name the destination with RESTORE ... AT 'file:///path'")
                    })?
            }
        })
    }

    /// Chooses the set a restore of `spec` would use.
    pub fn plan_restore(&self, spec: &RestoreSpec) -> SqlResult<RestorePlan> {
        let dest_uri = self.restore_destination(spec)?;
        let root = super::destination_root(&dest_uri)?;
        let repo = super::destination::open(&self.catalog, &root).map_err(|e| from_engine(&e))?;
        let (sets, damaged) = repo.list_sets_and_damage().map_err(|e| from_engine(&e))?;
        let mut sets: Vec<SetDescriptor> = sets
            .into_iter()
            .filter(|s| s.tenant_name == spec.from)
            .collect();
        // A set that cannot be found because its descriptor is damaged is reported as damage
        // (XX001 naming it), never as a set that does not exist: the tenant's own descriptors
        // when the catalog knows its id, else any.
        let tenant_id = self.catalog.tenant_by_name(&spec.from)?.map(|t| t.id);
        let damage = damaged.into_iter().find(|e| match (e, tenant_id) {
            (EngineError::CorruptObject { object, .. }, Some(id)) => {
                object.starts_with(&format!("sets/{id}/"))
            }
            _ => true,
        });
        sets.sort_by_key(|s| s.set_id);
        // Only a set named by its id can be chosen past a damaged descriptor: the newest set,
        // or the newest before a time, might be the damaged one.
        if let Some(damage) = &damage {
            let named_other = match (&spec.until, damage) {
                (Some(RestorePoint::BackupSet(id)), EngineError::CorruptObject { object, .. }) => {
                    !object.ends_with(&format!("/{id}.set")) && sets.iter().any(|s| s.set_id == *id)
                }
                _ => false,
            };
            if !named_other {
                return Err(from_engine(damage).with_hint(
                    "VALIDATE the tenant's sets, or restore another one with UNTIL BACKUPSET = n",
                ));
            }
        }
        let chosen = match &spec.until {
            Some(RestorePoint::BackupSet(id)) => {
                sets.into_iter().find(|s| s.set_id == *id).ok_or_else(|| {
                    SqlError::undefined(format!(
                        "backup set {id} of tenant {} is not in {}",
                        spec.from,
                        mask_secrets(&dest_uri)
                    ))
                })?
            }
            Some(RestorePoint::Time(text)) => {
                let until = parse_until_time(text)?;
                sets.into_iter()
                    .rev()
                    .find(|s| set_end(s).is_some_and(|end| end <= until))
                    .ok_or_else(|| {
                        SqlError::undefined(format!(
                            "no backup set of tenant {} ends at or before {text}",
                            spec.from
                        ))
                    })?
            }
            None => sets.pop().ok_or_else(|| {
                SqlError::undefined(format!(
                    "tenant {} has no backup set in {}",
                    spec.from,
                    mask_secrets(&dest_uri)
                ))
            })?,
        };
        Ok(RestorePlan {
            dest_uri,
            root,
            set: chosen,
        })
    }

    /// Starts a restore of `spec` as tenant `new_name` into `target`.
    #[allow(clippy::too_many_arguments)]
    pub fn start_restore(
        self: &Arc<Self>,
        new_name: &str,
        spec: &RestoreSpec,
        target_uri: &str,
        method: RestoreMethod,
        tablespace_map: &[(String, String)],
        user: &str,
        description: Option<String>,
    ) -> SqlResult<i64> {
        let target = self.check_restore_target(new_name, target_uri, method)?;
        let plan = self.plan_restore(spec)?;
        let recovery = self.plan_recovery(spec, &plan, tablespace_map, user)?;
        if recovery.is_none() && !tablespace_map.is_empty() {
            return Err(SqlError::invalid_value(format!(
                "tablespace_map applies to PostgreSQL sets, and set {} of {} is a directory tree",
                plan.set.set_id, spec.from
            )));
        }
        let job = self.restore_job(new_name, spec, &plan, target_uri, method, description)?;
        let log_plan = match recovery {
            // PostgreSQL fetches its WAL itself, through restore_command.
            Some(_) => None,
            None => self.plan_log_restore(spec, &plan, &target)?,
        };
        let (job_id, _) = self.catalog.create_job(JobKind::Restore, &job, &[])?;
        let run = RestoreRun {
            job_id,
            new_name: new_name.to_string(),
            target_uri: target_uri.to_string(),
            target,
            method,
            plan,
            log_plan,
            recovery,
        };
        let control = self.register(job_id);
        let executor = self.clone();
        self.spawn_job(job_id, async move {
            executor.run_restore(run, control).await;
            executor.finished(job_id);
        });
        Ok(job_id)
    }

    /// How a restored PostgreSQL set recovers, when the set is one.
    fn plan_recovery(
        self: &Arc<Self>,
        spec: &RestoreSpec,
        plan: &RestorePlan,
        tablespace_map: &[(String, String)],
        user: &str,
    ) -> SqlResult<Option<PgRestore>> {
        let Some(pg) = &plan.set.postgres else {
            return Ok(None);
        };
        let map: HashMap<String, PathBuf> = tablespace_map
            .iter()
            .map(|(oid, path)| (oid.clone(), PathBuf::from(path)))
            .collect();
        if let Some((oid, _)) = tablespace_map
            .iter()
            .find(|(oid, _)| !pg.tablespaces.iter().any(|(o, _)| o == oid))
        {
            return Err(SqlError::invalid_value(format!(
                "set {} has no tablespace {oid}; its tablespaces are: {}",
                plan.set.set_id,
                pg.tablespaces
                    .iter()
                    .map(|(o, l)| format!("{o} ({l})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let locations = super::postgres::tablespace_locations(&plan.set, &map)
            .map_err(SqlError::wrong_state)?;
        let target_time = match &spec.until {
            Some(RestorePoint::Time(text)) => Some(
                parse_until_time(text)?
                    .format("%Y-%m-%d %H:%M:%S%.6f")
                    .to_string(),
            ),
            _ => None,
        };
        Ok(Some(PgRestore {
            backup: pg.clone(),
            locations,
            recovery: super::postgres::Recovery {
                restore_command: super::postgres::restore_command(
                    self,
                    &spec.from,
                    user,
                    spec.at.as_deref(),
                ),
                target_time,
                immediate: matches!(spec.until, Some(RestorePoint::BackupSet(_))),
                tablespace_map: map,
            },
        }))
    }

    /// A restore needs a free tenant name, a target that is a directory (empty unless
    /// `method=delta`), and no other restore of that name or into that target.
    fn check_restore_target(
        &self,
        new_name: &str,
        target_uri: &str,
        method: RestoreMethod,
    ) -> SqlResult<PathBuf> {
        if self.catalog.tenant_by_name(new_name)?.is_some() {
            return Err(SqlError::duplicate(format!(
                "tenant {new_name} already exists; restore under a new name"
            ))
            .with_ob("OB_TENANT_EXIST", 5157));
        }
        let target = target_path(target_uri)?;
        if method == RestoreMethod::Full && target.read_dir().is_ok_and(|mut d| d.next().is_some())
        {
            return Err(SqlError::wrong_state(format!("restore target {} is not empty", target.display()))
                .with_hint("restore into an empty directory, or add WITH 'method=delta' to rewrite only what differs"));
        }
        if let Some(job) = self
            .catalog
            .jobs_in(
                JobKind::Restore,
                &[JobStatus::Init, JobStatus::Doing, JobStatus::Canceling],
            )?
            .iter()
            .find(|j| {
                j.restore_tenant_name.as_deref() == Some(new_name)
                    || j.restore_target.as_deref() == Some(target_uri)
            })
        {
            return Err(SqlError::wrong_state(format!(
                "restore job {} already restores {new_name} or into {target_uri}",
                job.job_id
            )));
        }
        Ok(target)
    }

    /// The job record of a restore, as CDB_OB_RESTORE_PROGRESS shows it.
    fn restore_job(
        &self,
        new_name: &str,
        spec: &RestoreSpec,
        plan: &RestorePlan,
        target_uri: &str,
        method: RestoreMethod,
        description: Option<String>,
    ) -> SqlResult<NewJob> {
        let source_id = self.catalog.tenant_by_name(&spec.from)?.map(|t| t.id);
        let until = match &spec.until {
            Some(RestorePoint::Time(t)) => Some(format!("TIME = '{t}'")),
            Some(RestorePoint::BackupSet(n)) => Some(format!("BACKUPSET = {n}")),
            None => None,
        };
        Ok(NewJob {
            tenant_id: source_id.unwrap_or(SYS_TENANT_ID),
            job_level: "USER_TENANT".into(),
            executor_tenant_id: source_id.unwrap_or(SYS_TENANT_ID).to_string(),
            description,
            path: Some(mask_secrets(&plan.dest_uri)),
            restore_tenant_name: Some(new_name.to_string()),
            backup_tenant_name: Some(spec.from.clone()),
            backup_tenant_id: Some(plan.set.tenant_id),
            backup_dest: Some(mask_secrets(&plan.dest_uri)),
            restore_target: Some(target_uri.to_string()),
            restore_option: Some(format!(
                "method={}",
                if method == RestoreMethod::Delta {
                    "delta"
                } else {
                    "full"
                }
            )),
            restore_until: until,
            set_list: Some(plan.set.set_id.to_string()),
            total_bytes: Some(plan.set.input_bytes as i64),
            ..NewJob::default()
        })
    }

    /// The worker of a restore job: the set's tree, then its log, then the job's end.
    async fn run_restore(self: &Arc<Self>, run: RestoreRun, control: Arc<super::JobControl>) {
        let job_id = run.job_id;
        self.start_job(job_id);
        let progress = Arc::new(Progress::new());
        let catalog = self.catalog.clone();
        let ticker = every_second(progress.clone(), move |p| {
            catalog.live_progress().set_job(
                job_id,
                JobFigures {
                    bytes: p.input_bytes,
                    written: p.output_bytes,
                    files: p.finish_file_count,
                    total_files: p.file_count,
                },
            );
        });
        let restored_log_source = run
            .log_plan
            .as_ref()
            .map(|l| format!("dir://{}", l.folder.display()));
        let cancel = control.cancel.clone();
        let tenant = TenantRef::Name(run.plan.set.tenant_name.clone());
        let set_id = run.plan.set.set_id;
        let (root, target, method, logs, recovery) = (
            run.plan.root.clone(),
            run.target.clone(),
            run.method,
            run.log_plan,
            run.recovery,
        );
        let engine_progress = progress.clone();
        // No collector repacks or sweeps the destination while the restore reads it.
        let _reading = self.destination_locks.of(&root).read_owned().await;
        let catalog = Arc::clone(&self.catalog);
        let result = super::on_blocking_thread("restore", move || {
            let repo = super::destination::open(&catalog, &root)?;
            let mut summary = engine::restore(
                &repo,
                &tenant,
                set_id,
                &target,
                method,
                0,
                &engine_progress,
                &cancel,
            )?;
            if let Some(logs) = logs {
                let segments = restore_log_segments(&catalog, &logs, &cancel)?;
                summary.entries += segments;
                engine_progress
                    .total_files
                    .fetch_add(segments, std::sync::atomic::Ordering::Relaxed);
            }
            if let Some(pg) = recovery {
                super::postgres::prepare_recovery(
                    &target,
                    &pg.backup,
                    &pg.locations,
                    &pg.recovery,
                )?;
            }
            Ok(summary)
        })
        .await;
        ticker.cancel();
        // A cancel that arrives as the last bytes are written still cancels: the job is
        // CANCELING and may only end CANCELED.
        let result = if control.cancel.is_cancelled() {
            Err(EngineError::Cancelled)
        } else {
            result
        };
        let shut_down = control.interrupted() == Some(Interrupt::Shutdown);
        // What the restore went through, holes and unchanged files included, measured as the
        // set's total is (its bytes written skip holes).
        let done = progress.snapshot();
        self.finish_restore(
            job_id,
            (done.input_bytes as i64, done.total_files as i64),
            done.output_bytes as i64,
            &run.new_name,
            &run.target_uri,
            restored_log_source,
            result,
            shut_down,
        );
    }

    fn finish_restore(
        &self,
        job_id: i64,
        (restored_bytes, total_files): (i64, i64),
        written: i64,
        new_name: &str,
        target_uri: &str,
        log_source: Option<String>,
        result: Result<engine::RestoreSummary, EngineError>,
        shut_down: bool,
    ) {
        match result {
            Ok(summary) => {
                // Entries written of the set's entries (and the log segments of a recovery).
                let files = (summary.entries as i64, total_files);
                if let Err(e) =
                    self.catalog
                        .set_job_figures(job_id, restored_bytes, Some((files, written)))
                {
                    tracing::warn!(job_id, error = %e, "cannot record the restore's figures");
                }
                // The job completes first: a cancel that won the race leaves no tenant behind.
                let restored = format!("restored {} entries", summary.entries);
                let ended = self.end_job(
                    job_id,
                    JobStatus::Completed,
                    JobChange::completed(&restored),
                );
                if ended != Some(JobStatus::Completed.into()) {
                    return;
                }
                let registered = self.catalog.create_tenant(&NewTenant {
                    name: new_name.to_string(),
                    kind: TenantKind::Directory,
                    source: target_uri.to_string(),
                    log_source,
                    pgdata: None,
                });
                let comment = match registered {
                    Ok(t) => format!("{restored}; registered as tenant {} ({})", t.name, t.id),
                    Err(e) => format!("{restored}; registering tenant {new_name} failed: {e}"),
                };
                if let Err(e) = self.catalog.set_job_comment(job_id, &comment) {
                    tracing::warn!(job_id, error = %e, "cannot record the restore's comment");
                }
            }
            Err(EngineError::Cancelled) if shut_down => {
                self.end_job(
                    job_id,
                    JobStatus::Failed,
                    JobChange::failed(
                        sqlstate::ADMIN_SHUTDOWN,
                        format!("{}; the target is left marked incomplete", super::SHUT_DOWN),
                    ),
                );
            }
            Err(EngineError::Cancelled) => {
                self.end_job(
                    job_id,
                    JobStatus::Canceled,
                    JobChange::canceled("canceled by user; the target is left marked incomplete"),
                );
            }
            Err(e) => {
                let comment =
                    failure_comment(&format!("restore of {new_name} into {target_uri}"), &e);
                self.end_job(
                    job_id,
                    JobStatus::Failed,
                    JobChange::failed(e.kind().sqlstate(), comment),
                );
            }
        }
    }

    /// The log segments a restore brings back: with `UNTIL TIME`, those the archive holds closed
    /// by then; with a set made `PLUS ARCHIVELOG` (or one the catalog does not know, read `AT` a
    /// destination), also those kept beside it in the data destination, up to the time or else
    /// up to the set's end.
    fn plan_log_restore(
        &self,
        spec: &RestoreSpec,
        plan: &RestorePlan,
        target: &std::path::Path,
    ) -> SqlResult<Option<LogRestore>> {
        let until_scn = match &spec.until {
            Some(RestorePoint::Time(text)) => Some(
                parse_until_time(text)?
                    .timestamp_nanos_opt()
                    .unwrap_or(i64::MAX),
            ),
            _ => None,
        };
        let source = self.catalog.tenant_by_name(&spec.from)?;
        let kept_with_set = self
            .catalog
            .set_plus_archivelog(plan.set.set_id)?
            .unwrap_or(true);
        // What the destination being restored from holds: the log kept beside its sets and,
        // in a second destination, the pieces copied there.
        let held: HashMap<String, SegmentHeader> = if kept_with_set || spec.at.is_some() {
            let backend = self
                .catalog
                .destination_backend(&plan.dest_uri)
                .map_err(|e| from_engine(&e.into()))?;
            engine::archive::list_segments(backend.as_ref(), plan.set.tenant_id)
                .map_err(|e| from_engine(&e))?
                .into_iter()
                .collect()
        } else {
            HashMap::new()
        };
        let mut segments: Vec<(String, i64, String)> = Vec::new();
        if let (Some(until), Some(source)) = (until_scn, &source) {
            // Log of deleted pieces is gone from the archive (a copy may still hold it).
            let deleted: HashSet<i64> = self
                .catalog
                .deleted_pieces(source.id)?
                .into_iter()
                .collect();
            for segment in self.catalog.segments_until(source.id, until)? {
                // Restoring `AT` a destination reads each archived segment from there when it
                // holds the same bytes (a piece copy), so a copy restores with its log when
                // the original archive is gone.
                let at_holds = spec.at.is_some()
                    && held
                        .get(&segment.name)
                        .is_some_and(|h| h.hash_hex() == segment.hash);
                if deleted.contains(&segment.piece_id) && !at_holds {
                    continue;
                }
                let uri = if at_holds {
                    plan.dest_uri.clone()
                } else {
                    self.catalog
                        .round(source.id, segment.round_id)?
                        .map(|r| r.path)
                        .unwrap_or_default()
                };
                segments.push((uri, segment.tenant_id, segment.name));
            }
        }
        if kept_with_set {
            let limit =
                until_scn.or_else(|| set_end(&plan.set).and_then(|t| t.timestamp_nanos_opt()));
            let archived: HashSet<String> = segments.iter().map(|(_, _, n)| n.clone()).collect();
            for (name, header) in &held {
                let in_time = limit.is_none_or(|l| header.close_scn <= l);
                if in_time && !archived.contains(name) {
                    segments.push((plan.dest_uri.clone(), plan.set.tenant_id, name.clone()));
                }
            }
        }
        if segments.is_empty() {
            return Ok(None);
        }
        segments.sort_by(|a, b| a.2.cmp(&b.2));
        check_log_readable(&self.catalog, &segments, &plan.dest_uri, &held)?;
        let folder = match &source {
            Some(source) => log_target(source, target),
            None => {
                let mut sibling = target.as_os_str().to_owned();
                sibling.push(".log");
                PathBuf::from(sibling)
            }
        };
        Ok(Some(LogRestore { folder, segments }))
    }

    /// `ALTER SYSTEM CANCEL RESTORE name`.
    pub fn cancel_restore(&self, new_name: &str) -> SqlResult<i64> {
        let jobs = self
            .catalog
            .jobs_in(JobKind::Restore, &[JobStatus::Init, JobStatus::Doing])?;
        let job = jobs
            .into_iter()
            .find(|j| j.restore_tenant_name.as_deref() == Some(new_name))
            .ok_or_else(|| SqlError::wrong_state(format!("no restore of {new_name} is running")))?;
        if !self.request_cancel(job.job_id)? {
            return Err(SqlError::wrong_state(format!(
                "restore job {} ended before the cancel",
                job.job_id
            )));
        }
        Ok(job.job_id)
    }
}
/// `dir:///abs/path` as an absolute path.
fn target_path(uri: &str) -> SqlResult<PathBuf> {
    let path = crate::source::uri::dir_path(uri)
        .filter(|p| p.is_absolute())
        .ok_or_else(|| {
            SqlError::invalid_value(format!(
                "restore target '{uri}' is not a directory URI: write dir:///absolute/path"
            ))
        })?;
    if path.exists() && !path.is_dir() {
        return Err(SqlError::invalid_value(format!(
            "restore target {} is not a directory",
            path.display()
        )));
    }
    Ok(path)
}

/// What a restore job's worker needs.
struct RestoreRun {
    job_id: i64,
    new_name: String,
    target_uri: String,
    target: PathBuf,
    method: RestoreMethod,
    plan: RestorePlan,
    log_plan: Option<LogRestore>,
    recovery: Option<PgRestore>,
}

/// How a PostgreSQL set's restore ends: the recovery files and the tablespaces' places.
struct PgRestore {
    backup: crate::engine::PostgresBackup,
    locations: Vec<(String, PathBuf)>,
    recovery: super::postgres::Recovery,
}

/// The archived log segments a restore UNTIL TIME brings back, and where they go.
struct LogRestore {
    folder: PathBuf,
    /// Each segment as (URI of the destination holding it, tenant id, name), in name order.
    segments: Vec<(String, i64, String)>,
}

/// Where a restored tenant's log segments go: the same place relative to the restored tree when
/// the source's log folder is inside its source tree, else a folder beside the target named
/// `<target>.log`.
fn log_target(source: &crate::catalog::tenants::Tenant, target: &std::path::Path) -> PathBuf {
    let strip = crate::source::uri::dir_path_or_plain;
    if let (Some(tree), Some(log)) = (source.source.as_deref(), source.log_source.as_deref())
        && let Ok(inside) = strip(log).strip_prefix(strip(tree))
    {
        return target.join(inside);
    }
    let mut sibling = target.as_os_str().to_owned();
    sibling.push(".log");
    PathBuf::from(sibling)
}

/// Refuses a restore whose log cannot be read before anything is written: every segment must be
/// where the plan reads it from (`held` lists the destination restored from, already read).
/// Each other destination is listed once, not asked segment by segment: weeks of log are
/// thousands of segments.
fn check_log_readable(
    catalog: &Catalog,
    segments: &[(String, i64, String)],
    dest_uri: &str,
    held: &HashMap<String, SegmentHeader>,
) -> SqlResult<()> {
    let mut listed: HashMap<(&str, i64), HashSet<String>> = HashMap::new();
    for (uri, tenant_id, name) in segments {
        if uri == dest_uri && held.contains_key(name) {
            continue;
        }
        let names = match listed.entry((uri.as_str(), *tenant_id)) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let backend = catalog
                    .destination_backend(uri)
                    .map_err(|e| from_engine(&e.into()))?;
                let names = engine::archive::segment_names(backend.as_ref(), *tenant_id)
                    .map_err(|e| from_engine(&e))?;
                e.insert(names.into_iter().collect())
            }
        };
        if !names.contains(name) {
            return Err(from_engine(&EngineError::missing_object(
                &format!(
                    "{}/{}",
                    uri.trim_end_matches('/'),
                    engine::archive::segment_object(*tenant_id, name)
                ),
                "the log this restore brings back",
            )));
        }
    }
    Ok(())
}

/// Writes every segment of `logs` into its folder, each verified against its checksum. Returns
/// how many it wrote.
fn restore_log_segments(
    catalog: &Catalog,
    logs: &LogRestore,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<u64, EngineError> {
    std::fs::create_dir_all(&logs.folder)
        .map_err(|e| EngineError::io("create log folder", &logs.folder, e))?;
    let mut written = 0;
    for (uri, tenant_id, name) in &logs.segments {
        if cancel.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        let backend = catalog.destination_backend(uri)?;
        let (_, data) = engine::archive::get_segment(backend.as_ref(), *tenant_id, name)?;
        let path = logs.folder.join(name);
        super::archive::write_durably(&path, &data)
            .map_err(|e| EngineError::io("write log segment", &path, e))?;
        written += 1;
    }
    // Each segment was fsynced; the folder's fsync makes their names durable too.
    std::fs::File::open(&logs.folder)
        .and_then(|folder| folder.sync_all())
        .map_err(|e| EngineError::io("fsync log folder", &logs.folder, e))?;
    Ok(written)
}
