//! Archive log (SPEC §2.3, §4.2): one round per tenant at a time, shipping closed log segments to
//! the tenant's `LOG_ARCHIVE_DEST`, cut into pieces by `PIECE_SWITCH_INTERVAL`.
//!
//! A statement only moves the round's state in the catalog (ARCHIVELOG creates it in PREPARE,
//! NOARCHIVELOG moves it to STOPPING, `LOG_ARCHIVE_DEST_STATE = 'DEFER'` to SUSPENDING); the
//! tenant's worker, one tokio task per live round, sees the state on its next tick and does the
//! work that belongs to it: it opens and switches pieces, ships the segments of a directory
//! tenant's LOG_SOURCE, and ends in SUSPEND or STOP. `archive-push` (PostgreSQL's
//! `archive_command`) stores a segment directly, answering only once it is durable. A segment is
//! recorded in the catalog only after the destination holds it, so nothing acknowledged is lost
//! when the server is killed; a segment pushed twice with the same content is acknowledged again.

use crate::catalog::Catalog;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use tracing::Instrument;

use super::Executor;
use crate::catalog::archive::{Round, Segment, now_scn};
use crate::catalog::parameters::{ArchiveDest, Binding, parse_duration};
use crate::catalog::status::{RoundStatus, StateMachine};
use crate::catalog::tenants::{Tenant, TenantKind};
use crate::engine::EngineError;
use crate::engine::archive::{get_segment, put_segment, valid_segment_name};
use crate::error::{SqlError, SqlResult, from_engine};
use crate::source::log_folder::{closed_segments, missing_between};

/// How often a worker looks at its round and its log source.
const TICK: Duration = Duration::from_millis(100);

/// The running archive workers, by tenant id.
#[derive(Debug, Default)]
pub struct Archivers {
    workers: Mutex<HashMap<i64, CancellationToken>>,
    /// The worker of `START BACKUP ARCHIVELOG`, while one runs.
    pub(super) log_copier: Mutex<Option<CancellationToken>>,
}

/// What `archive-push` did with a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// Durable in the archive now.
    Archived,
    /// It was already there with the same content.
    AlreadyArchived,
    /// Not archived: the round is not DOING and BINDING=OPTIONAL lets the source go on.
    Skipped,
}

impl PushOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            PushOutcome::Archived => "ARCHIVED",
            PushOutcome::AlreadyArchived => "ALREADY_ARCHIVED",
            PushOutcome::Skipped => "SKIPPED",
        }
    }
}

pub(super) fn log_folder(tenant: &Tenant) -> Option<PathBuf> {
    tenant
        .log_source
        .as_deref()
        .map(crate::source::uri::dir_path_or_plain)
}

fn blocking_error(e: tokio::task::JoinError) -> SqlError {
    SqlError::internal(format!("archive worker failed: {e}"))
}

impl Executor {
    /// The tenant's `LOG_ARCHIVE_DEST`, or an error that says how to set it.
    /// The URI of a tenant's LOG_ARCHIVE_DEST, if it has one.
    pub fn archive_location(&self, tenant: &Tenant) -> SqlResult<Option<String>> {
        match self.catalog.parameter(tenant.id, "log_archive_dest")? {
            Some(_) => Ok(Some(self.archive_dest(tenant)?.location)),
            None => Ok(None),
        }
    }

    fn archive_dest(&self, tenant: &Tenant) -> SqlResult<ArchiveDest> {
        let value = self
            .catalog
            .parameter(tenant.id, "log_archive_dest")?
            .ok_or_else(|| {
                SqlError::wrong_state(format!(
                    "tenant {} has no archive destination: set one with ALTER SYSTEM SET \
                     LOG_ARCHIVE_DEST = 'LOCATION=file:///path'",
                    tenant.name
                ))
                .with_ob("OB_LOG_ARCHIVE_DEST_NOT_SET", 9032)
            })?;
        ArchiveDest::parse(&value).map_err(SqlError::invalid_value)
    }

    /// `ALTER SYSTEM ARCHIVELOG`: a new round for each tenant, refused as a whole when one of them
    /// is already archiving or cannot.
    /// `cluster` when the statement named no tenant list: the rounds it starts share a cluster
    /// round, which the views summarise as TENANT_ID = 1.
    pub fn start_archivelog(self: &Arc<Self>, tenants: &[Tenant], cluster: bool) -> SqlResult<()> {
        let mut starts = Vec::new();
        for tenant in tenants {
            if let Some(round) = self.catalog.latest_round(tenant.id)?
                && round.status != RoundStatus::Stop.as_str()
            {
                return Err(SqlError::wrong_state(format!(
                    "archive log of tenant {} is already on: round {} is {}",
                    tenant.name, round.round_id, round.status
                ))
                .with_ob("OB_ALREADY_IN_ARCHIVE_MODE", 9023)
                .with_hint("stop it first with ALTER SYSTEM NOARCHIVELOG"));
            }
            if tenant.kind == TenantKind::Directory && tenant.log_source.is_none() {
                return Err(SqlError::wrong_state(format!(
                    "tenant {} has no log source to archive",
                    tenant.name
                ))
                .with_hint(format!(
                    "give it one with ALTER TENANT {} SET LOG_SOURCE = 'dir:///path'",
                    tenant.name
                )));
            }
            starts.push((tenant.clone(), self.archive_dest(tenant)?));
        }
        let cluster_round = if cluster {
            Some(self.catalog.new_cluster_round()?)
        } else {
            None
        };
        for (tenant, dest) in starts {
            let interval = dest.piece_switch_interval.as_micros() as i64;
            let round =
                self.catalog
                    .new_round(tenant.id, &dest.location, interval, cluster_round)?;
            self.catalog.set_log_mode(tenant.id, "ARCHIVELOG")?;
            tracing::info!(tenant = %tenant.name, round = round.round_id, "archive round started");
            self.spawn_archiver(tenant.id);
        }
        Ok(())
    }

    /// `ALTER SYSTEM NOARCHIVELOG`: STOPPING now, STOP once the worker has frozen the last piece.
    pub fn stop_archivelog(self: &Arc<Self>, tenants: &[Tenant]) -> SqlResult<()> {
        let mut rounds = Vec::new();
        for tenant in tenants {
            let round = self.catalog.latest_round(tenant.id)?;
            match round {
                Some(r)
                    if RoundStatus::parse(&r.status)
                        .is_some_and(|s| s.transition(RoundStatus::Stopping).is_ok()) =>
                {
                    rounds.push(r)
                }
                other => {
                    let state = other.map_or("never started".to_string(), |r| {
                        format!("round {} is {}", r.round_id, r.status)
                    });
                    return Err(SqlError::wrong_state(format!(
                        "archive log of tenant {} is not on: {state}",
                        tenant.name
                    ))
                    .with_ob("OB_ALREADY_IN_NOARCHIVE_MODE", 9024));
                }
            }
        }
        for round in rounds {
            self.move_round(&round, RoundStatus::Stopping, None)?;
            self.spawn_archiver(round.tenant_id);
        }
        Ok(())
    }

    /// `LOG_ARCHIVE_DEST_STATE`: DEFER suspends the live rounds of the tenants it applies to,
    /// ENABLE resumes the suspended ones.
    pub fn archive_dest_state(self: &Arc<Self>, tenant_ids: &[i64], defer: bool) -> SqlResult<()> {
        for &tenant_id in tenant_ids {
            let Some(round) = self.catalog.latest_round(tenant_id)? else {
                continue;
            };
            let to = if defer {
                RoundStatus::Suspending
            } else {
                RoundStatus::Beginning
            };
            let from = RoundStatus::parse(&round.status);
            if from.is_some_and(|f| f.transition(to).is_ok()) {
                self.move_round(&round, to, None)?;
                self.spawn_archiver(tenant_id);
            }
        }
        Ok(())
    }

    /// At start: every round the previous process left live gets its worker back.
    pub fn recover_archive(self: &Arc<Self>) -> SqlResult<()> {
        let live: Vec<&str> = RoundStatus::ALL
            .iter()
            .filter(|s| !matches!(s, RoundStatus::Suspend | RoundStatus::Stop))
            .map(|s| s.as_str())
            .collect();
        for round in self.catalog.rounds_in(&live)? {
            self.spawn_archiver(round.tenant_id);
        }
        Ok(())
    }

    fn move_round(&self, round: &Round, to: RoundStatus, comment: Option<&str>) -> SqlResult<bool> {
        let from = RoundStatus::sources(to);
        let moved = self.catalog.move_round(
            round.tenant_id,
            round.round_id,
            &from,
            to.as_str(),
            comment,
        )?;
        if moved {
            tracing::info!(tenant_id = round.tenant_id, round = round.round_id, from = %round.status, to = to.as_str(), "archive round moved");
        }
        Ok(moved)
    }

    /// Starts the tenant's worker unless one runs.
    fn spawn_archiver(self: &Arc<Self>, tenant_id: i64) {
        let token = self.worker_token();
        {
            let mut workers = self.archivers.workers.lock().expect("archivers poisoned");
            if workers.get(&tenant_id).is_some_and(|t| !t.is_cancelled()) {
                return;
            }
            workers.insert(tenant_id, token.clone());
        }
        let executor = self.clone();
        self.runtime.spawn(async move {
            let span = tracing::info_span!("archiver", tenant_id);
            executor
                .run_archiver(tenant_id, &token)
                .instrument(span)
                .await;
            token.cancel();
        });
    }

    async fn run_archiver(self: &Arc<Self>, tenant_id: i64, token: &CancellationToken) {
        let mut high_water = self.catalog.last_segment_name(tenant_id).ok().flatten();
        loop {
            match self.archiver_tick(tenant_id, &mut high_water).await {
                Ok(true) => {}
                Ok(false) => {
                    if self.archiver_may_end(tenant_id) {
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!(tenant_id, error = %e, "archive worker tick failed; trying again");
                }
            }
            tokio::select! {
                _ = token.cancelled() => return,
                _ = tokio::time::sleep(TICK) => {}
            }
        }
    }

    /// Whether the worker can end: its round is SUSPEND or STOP. Decided under the workers'
    /// lock, so that a statement that moves the round on and then asks for a worker either sees
    /// this one still registered (and it goes on) or finds none and starts one.
    fn archiver_may_end(&self, tenant_id: i64) -> bool {
        let mut workers = self.archivers.workers.lock().expect("archivers poisoned");
        let settled = match self.catalog.latest_round(tenant_id) {
            Ok(round) => round.is_none_or(|r| r.status == "SUSPEND" || r.status == "STOP"),
            Err(_) => false,
        };
        if settled {
            workers.remove(&tenant_id);
        }
        settled
    }

    /// One look at the round; `Ok(false)` when the worker has nothing left to do.
    async fn archiver_tick(
        self: &Arc<Self>,
        tenant_id: i64,
        high_water: &mut Option<String>,
    ) -> SqlResult<bool> {
        let Some(round) = self.catalog.latest_round(tenant_id)? else {
            return Ok(false);
        };
        let Some(status) = RoundStatus::parse(&round.status) else {
            return Ok(false);
        };
        match status {
            RoundStatus::Prepare => {
                self.move_round(&round, RoundStatus::Beginning, None)?;
            }
            RoundStatus::Beginning => {
                let reachable = self
                    .catalog
                    .destination_backend(&round.path)
                    .ok()
                    .and_then(|b| b.root_exists().ok())
                    .unwrap_or(false);
                if !reachable {
                    self.move_round(
                        &round,
                        RoundStatus::Interrupted,
                        Some(&format!(
                            "archive destination {} is missing or unreachable",
                            crate::catalog::mask_secrets(&round.path)
                        )),
                    )?;
                    return Ok(true);
                }
                let deferred = self
                    .catalog
                    .parameter(tenant_id, "log_archive_dest_state")?
                    .is_some_and(|s| s.eq_ignore_ascii_case("DEFER"));
                if deferred {
                    self.move_round(&round, RoundStatus::Suspending, None)?;
                    return Ok(true);
                }
                if self
                    .catalog
                    .active_piece(tenant_id, round.round_id)?
                    .is_none()
                {
                    self.catalog.open_piece(&round, None)?;
                }
                self.move_round(&round, RoundStatus::Doing, Some(""))?;
            }
            RoundStatus::Doing | RoundStatus::Interrupted => {
                self.switch_piece_if_due(&round)?;
                self.ship_log_folder(&round, high_water).await?;
            }
            RoundStatus::Suspending => {
                self.move_round(&round, RoundStatus::Suspend, None)?;
                return Ok(false);
            }
            RoundStatus::Stopping => {
                if let Some(piece) = self.catalog.active_piece(tenant_id, round.round_id)? {
                    self.catalog.start_freezing(piece.piece_id)?;
                    self.catalog.freeze_piece(piece.piece_id)?;
                }
                self.move_round(&round, RoundStatus::Stop, None)?;
                self.catalog.set_log_mode(tenant_id, "NOARCHIVELOG")?;
                return Ok(false);
            }
            RoundStatus::Suspend | RoundStatus::Stop => return Ok(false),
        }
        Ok(true)
    }

    /// Freezes the ACTIVE piece once it is `PIECE_SWITCH_INTERVAL` old and opens the next one.
    fn switch_piece_if_due(&self, round: &Round) -> SqlResult<()> {
        let Some(piece) = self.catalog.active_piece(round.tenant_id, round.round_id)? else {
            self.catalog.open_piece(round, None)?;
            return Ok(());
        };
        let age_ns = now_scn() - piece.start_scn;
        if age_ns >= round.piece_switch_interval.saturating_mul(1000) {
            self.catalog.start_freezing(piece.piece_id)?;
            self.catalog.open_piece(round, Some(piece.piece_id))?;
            tracing::info!(
                tenant_id = round.tenant_id,
                round = round.round_id,
                piece = piece.piece_id,
                "piece frozen, next one open"
            );
        }
        Ok(())
    }

    /// Ships the closed segments of a directory tenant's log folder past the high-water mark, in
    /// name order. A segment that vanished before it was read is a gap: the round goes
    /// INTERRUPTED naming it, and shipping goes on with the segments after it.
    async fn ship_log_folder(
        self: &Arc<Self>,
        round: &Round,
        high_water: &mut Option<String>,
    ) -> SqlResult<()> {
        let Some(tenant) = self.catalog.tenant_by_id(round.tenant_id)? else {
            return Ok(());
        };
        if tenant.kind != TenantKind::Directory {
            return Ok(());
        }
        let Some(folder) = log_folder(&tenant) else {
            return Ok(());
        };
        let quiet = self
            .catalog
            .parameter(tenant.id, "log_segment_quiet_time")?
            .and_then(|v| parse_duration(&v))
            .unwrap_or(Duration::from_secs(10));
        let listed = {
            let folder = folder.clone();
            tokio::task::spawn_blocking(move || closed_segments(&folder, quiet, SystemTime::now()))
                .await
                .map_err(blocking_error)?
        };
        let segments = match listed {
            Ok(segments) => segments,
            Err(e) => {
                let comment = format!("log source {} cannot be read: {e}", folder.display());
                if round.comment != comment {
                    self.move_round(round, RoundStatus::Interrupted, Some(&comment))?;
                }
                return Ok(());
            }
        };
        for segment in segments {
            if high_water
                .as_deref()
                .is_some_and(|h| segment.name.as_str() <= h)
            {
                continue;
            }
            if let Some(previous) = high_water.as_deref() {
                self.interrupt_on_gap(
                    round,
                    previous,
                    &segment.name,
                    segment.size,
                    "is missing from the log source",
                )?;
            }
            let path = segment.path.clone();
            let read = tokio::task::spawn_blocking(move || std::fs::read(path))
                .await
                .map_err(blocking_error)?;
            match read {
                Ok(data) => {
                    let (executor, round, name) =
                        (self.clone(), round.clone(), segment.name.clone());
                    let scn = segment.close_scn;
                    tokio::task::spawn_blocking(move || {
                        executor.store_segment(&round, &name, &data, scn)
                    })
                    .await
                    .map_err(blocking_error)??;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let after = high_water
                        .clone()
                        .unwrap_or_else(|| "the round's start".into());
                    self.move_round(
                        round,
                        RoundStatus::Interrupted,
                        Some(&format!(
                            "log segment {} was removed from the log source before it was \
                             archived: the archive has a gap after {after}",
                            segment.name
                        )),
                    )?;
                }
                Err(e) => {
                    return Err(SqlError::new(
                        crate::error::sqlstate::IO_ERROR,
                        format!("cannot read log segment {}: {e}", segment.path.display()),
                    ));
                }
            }
            *high_water = Some(segment.name.clone());
        }
        Ok(())
    }

    /// Stores one segment in the round's destination and records it; durable in both when this
    /// returns. Blocking: call it from a blocking thread.
    fn store_segment(
        &self,
        round: &Round,
        name: &str,
        data: &[u8],
        close_scn: i64,
    ) -> SqlResult<PushOutcome> {
        let hash = blake3::hash(data).to_hex().to_string();
        if let Some(existing) = self.catalog.segment(round.tenant_id, name)? {
            if existing.hash == hash {
                return Ok(PushOutcome::AlreadyArchived);
            }
            return Err(SqlError::wrong_state(format!(
                "log segment {name} is already archived with different content (blake3 {} in \
                 the archive, {hash} now); the archive keeps the first one",
                existing.hash
            )));
        }
        let stored = (|| -> Result<u64, EngineError> {
            let backend = self.catalog.destination_backend(&round.path)?;
            if !backend.root_exists()? {
                return Err(EngineError::DestinationMissing {
                    destination: backend.describe(),
                });
            }
            let (_, stored) =
                put_segment(backend.as_ref(), round.tenant_id, name, data, close_scn, 1)?;
            Ok(stored)
        })()
        .map_err(|e| from_engine(&e))?;
        let segment = Segment {
            tenant_id: round.tenant_id,
            name: name.to_string(),
            round_id: round.round_id,
            piece_id: 0,
            size: data.len() as i64,
            stored_size: stored as i64,
            close_scn,
            hash,
        };
        // A piece switch in progress has no ACTIVE piece for a moment.
        for _ in 0..500 {
            if self.catalog.record_segment(&segment)?.is_some() {
                return Ok(PushOutcome::Archived);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(SqlError::wrong_state(format!(
            "round {} of tenant {} has no open piece to record segment {name} in",
            round.round_id, round.tenant_id
        )))
    }

    /// `archive-push`: archives the segment at `path` (on this host) for `tenant`.
    pub fn push_segment(&self, tenant: &Tenant, path: &Path) -> SqlResult<PushOutcome> {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| valid_segment_name(n))
            .ok_or_else(|| {
                SqlError::invalid_value(format!(
                    "{} does not name a log segment file",
                    path.display()
                ))
            })?
            .to_string();
        // Refused before the file is read when the round cannot take it.
        self.round_taking_pushes(tenant, &name)?;
        let read = (|| -> std::io::Result<(Vec<u8>, i64)> {
            let meta = std::fs::metadata(path)?;
            let close_scn = meta
                .modified()?
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as i64);
            Ok((std::fs::read(path)?, close_scn))
        })();
        let (data, close_scn) = read.map_err(|e| {
            let code = if e.kind() == std::io::ErrorKind::NotFound {
                crate::error::sqlstate::UNDEFINED_OBJECT
            } else {
                crate::error::sqlstate::IO_ERROR
            };
            SqlError::new(
                code,
                format!("cannot read log segment {}: {e}", path.display()),
            )
        })?;
        self.receive_segment(tenant, &name, &data, close_scn)
    }

    /// `archive-push` over the connection: archives segment `name` of `tenant` from its bytes.
    /// Its SCN is the time it arrived. Under BINDING=MANDATORY it fails unless the round is
    /// DOING (PostgreSQL keeps the WAL and retries); under OPTIONAL it lets the source go on.
    pub fn receive_segment(
        &self,
        tenant: &Tenant,
        name: &str,
        data: &[u8],
        close_scn: i64,
    ) -> SqlResult<PushOutcome> {
        if !valid_segment_name(name) {
            return Err(SqlError::invalid_value(format!(
                "'{name}' does not name a log segment: a plain file name is expected"
            )));
        }
        let Some(round) = self.round_taking_pushes(tenant, name)? else {
            return Ok(PushOutcome::Skipped);
        };
        let outcome = self.store_segment(&round, name, data, close_scn)?;
        if outcome == PushOutcome::Archived {
            self.note_pushed_gap(&round, name, data.len() as u64)?;
        }
        Ok(outcome)
    }

    /// The round a push goes into: DOING or INTERRUPTED. `None` when there is none and
    /// BINDING=OPTIONAL lets the source go on; an error under MANDATORY.
    fn round_taking_pushes(&self, tenant: &Tenant, name: &str) -> SqlResult<Option<Round>> {
        let dest = self.archive_dest(tenant)?;
        let round = self.catalog.latest_round(tenant.id)?;
        let running = round.as_ref().filter(|r| {
            matches!(
                RoundStatus::parse(&r.status),
                Some(RoundStatus::Doing | RoundStatus::Interrupted)
            )
        });
        if let Some(round) = running {
            return Ok(Some(round.clone()));
        }
        if dest.binding == Binding::Optional {
            return Ok(None);
        }
        let state = round.map_or("not started".to_string(), |r| {
            format!("round {} is {}", r.round_id, r.status)
        });
        Err(SqlError::wrong_state(format!(
            "segment {name} was not archived: archive log of tenant {} is not DOING ({state}) \
             and BINDING=MANDATORY keeps the source waiting",
            tenant.name
        ))
        .with_hint("start it with ALTER SYSTEM ARCHIVELOG, or ENABLE a deferred destination"))
    }

    /// A pushed segment that does not follow the round's previous one (PostgreSQL skipped
    /// archiving some WAL, or archived it elsewhere) leaves a gap: the round goes INTERRUPTED
    /// with the missing names in its COMMENT, and goes on archiving what comes.
    fn note_pushed_gap(&self, round: &Round, name: &str, size: u64) -> SqlResult<()> {
        match self
            .catalog
            .segment_before(round.tenant_id, round.round_id, name)?
        {
            Some(previous) => {
                self.interrupt_on_gap(round, &previous, name, size, "was never pushed")
            }
            None => Ok(()),
        }
    }

    /// Puts the round in INTERRUPTED, naming the missing segments and saying `how` they went
    /// missing, when `name` does not follow `previous`.
    fn interrupt_on_gap(
        &self,
        round: &Round,
        previous: &str,
        name: &str,
        size: u64,
        how: &str,
    ) -> SqlResult<()> {
        let missing = missing_between(previous, name, size, 3);
        if !missing.is_empty() {
            self.move_round(
                round,
                RoundStatus::Interrupted,
                Some(&format!(
                    "log segment {} {how}: the archive has a gap between {previous} and {name}",
                    missing.join(", ")
                )),
            )?;
        }
        Ok(())
    }

    /// `archive-get`: writes an archived segment of `tenant` to `to`, verified. Blocking.
    pub fn get_archived_segment(&self, tenant: &Tenant, name: &str, to: &Path) -> SqlResult<()> {
        let data = self.archived_segment(tenant, name)?;
        write_durably(to, &data).map_err(|e| from_engine(&EngineError::io("write", to, e)))
    }

    /// The bytes of an archived segment of `tenant`, verified: from the archive, or else from
    /// beside the tenant's sets in its data destination (a PostgreSQL set made PLUS ARCHIVELOG
    /// keeps the WAL it needs there). Blocking.
    pub fn archived_segment(&self, tenant: &Tenant, name: &str) -> SqlResult<Vec<u8>> {
        let uri = match self.catalog.segment(tenant.id, name)? {
            Some(segment) => match self.catalog.round(tenant.id, segment.round_id)? {
                Some(round) => Some(round.path),
                None => Some(self.archive_dest(tenant)?.location),
            },
            None => None,
        };
        let not_archived = || {
            SqlError::undefined(format!(
                "log segment {name} of tenant {} is not in the archive",
                tenant.name
            ))
        };
        let Some(uri) = uri else {
            let kept = self
                .catalog
                .parameter(tenant.id, "data_backup_dest")?
                .map(|dest| -> Result<Option<Vec<u8>>, EngineError> {
                    let backend = self.catalog.destination_backend(&dest)?;
                    if crate::engine::archive::segment_header(backend.as_ref(), tenant.id, name)?
                        .is_none()
                    {
                        return Ok(None);
                    }
                    get_segment(backend.as_ref(), tenant.id, name).map(|(_, data)| Some(data))
                })
                .transpose()
                .map_err(|e| from_engine(&e))?
                .flatten();
            return kept.ok_or_else(not_archived);
        };
        (|| -> Result<Vec<u8>, EngineError> {
            let backend = self.catalog.destination_backend(&uri)?;
            let (_, data) = get_segment(backend.as_ref(), tenant.id, name)?;
            Ok(data)
        })()
        .map_err(|e| from_engine(&e))
    }
}

impl Executor {
    /// `archive-get ... --at`: segment `name` of tenant `tenant_name` from the destinations
    /// `at` (comma-separated URIs: a data destination, an archive, a copy), for a restore on a
    /// server whose catalog may not know the tenant. The tenant's id comes from the catalog or
    /// else from the set descriptors of the first destination that has its sets. Blocking.
    pub fn archived_segment_at(
        &self,
        tenant_name: &str,
        name: &str,
        at: &str,
    ) -> SqlResult<Vec<u8>> {
        let uris: Vec<&str> = at
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .collect();
        let known = self.catalog.tenant_by_name(tenant_name)?;
        let tenant_id = match &known {
            Some(tenant) => Some(tenant.id),
            None => uris.iter().find_map(|uri| {
                let root = super::destination_root(uri).ok()?;
                let sets = super::destination::open(&self.catalog, &root)
                    .ok()?
                    .list_sets()
                    .ok()?;
                sets.iter()
                    .find(|s| s.tenant_name == tenant_name)
                    .map(|s| s.tenant_id)
            }),
        };
        let Some(tenant_id) = tenant_id else {
            return Err(SqlError::unknown_tenant(tenant_name));
        };
        for uri in &uris {
            let found = (|| -> Result<Option<Vec<u8>>, EngineError> {
                let backend = self.catalog.destination_backend(uri)?;
                if crate::engine::archive::segment_header(backend.as_ref(), tenant_id, name)?
                    .is_none()
                {
                    return Ok(None);
                }
                get_segment(backend.as_ref(), tenant_id, name).map(|(_, data)| Some(data))
            })()
            .map_err(|e| from_engine(&e))?;
            if let Some(data) = found {
                return Ok(data);
            }
        }
        match known {
            Some(tenant) => self.archived_segment(&tenant, name),
            None => Err(SqlError::undefined(format!(
                "log segment {name} of tenant {tenant_name} is in none of {}",
                crate::catalog::mask_secrets(at)
            ))),
        }
    }
}

/// `BACKUP ... PLUS ARCHIVELOG` of a directory tenant: copies every segment of its log folder
/// (the one still being written too, as it is now) into the data destination beside the set, so
/// that the set restores on its own with the log up to its end. A segment already there with the
/// same content is not copied again. Blocking. Returns how many segments the destination holds
/// for the set and the newest one's name.
pub fn copy_log_with_set(
    catalog: &Catalog,
    tenant: &Tenant,
    data_dest: &str,
    cancel: &CancellationToken,
) -> Result<(usize, Option<String>), EngineError> {
    let Some(folder) = log_folder(tenant) else {
        return Ok((0, None));
    };
    let backend = catalog.destination_backend(data_dest)?;
    let segments = closed_segments(&folder, Duration::ZERO, SystemTime::now())
        .map_err(|e| EngineError::io("list log folder", &folder, e))?;
    let mut newest = None;
    let mut count = 0;
    for segment in segments {
        if cancel.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        let data = match std::fs::read(&segment.path) {
            Ok(data) => data,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(EngineError::io("read log segment", &segment.path, e)),
        };
        let hash = *blake3::hash(&data).as_bytes();
        let held =
            crate::engine::archive::segment_header(backend.as_ref(), tenant.id, &segment.name)?;
        if held.is_none_or(|h| h.hash != hash) {
            put_segment(
                backend.as_ref(),
                tenant.id,
                &segment.name,
                &data,
                segment.close_scn,
                1,
            )?;
        }
        count += 1;
        newest = Some(segment.name);
    }
    Ok((count, newest))
}

/// Writes `data` to `path` through a temporary file and a rename, so a reader never sees half.
pub fn write_durably(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let temp = path.with_extension("backstop-partial");
    let mut file = std::fs::File::create(&temp)?;
    file.write_all(data)?;
    file.sync_all()?;
    std::fs::rename(&temp, path)
}
