//! Continuous copy of archive log to `BACKUP_BACKUP_DEST` (SPEC §2.4, OceanBase's non-piece
//! mode): `START BACKUP ARCHIVELOG` sets every tenant's copy DOING and one worker follows the
//! archive, copying each segment (checked on the way) as soon as it is archived, and recording a
//! piece's copy once the piece is FROZEN and all its segments are copied. `STOP BACKUP
//! ARCHIVELOG` pauses it (`PAUSED`, in `CDB_OB_BACKUP_BACKUP_ARCHIVELOG`, the system's row
//! `TENANT_ID = 1` too); START again goes on where it paused. `CANCEL ALL BACKUP FORCE` ends it
//! (`STOP`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Executor;
use crate::catalog::copies::LogCopy;
use crate::catalog::{SYS_TENANT_ID, mask_secrets};
use crate::engine::archive::copy_segment;
use crate::error::{SqlError, SqlResult, from_engine};

/// How often the worker looks for newly archived segments.
const TICK: Duration = Duration::from_millis(200);

impl Executor {
    /// `ALTER SYSTEM START BACKUP ARCHIVELOG`.
    pub fn start_backup_archivelog(self: &Arc<Self>) -> SqlResult<()> {
        if !self.catalog.log_copies(&["DOING"])?.is_empty() {
            return Err(SqlError::wrong_state("backup archivelog is already DOING")
                .with_ob("OB_BACKUP_IN_PROGRESS", 9041));
        }
        let dest = self
            .catalog
            .parameter(SYS_TENANT_ID, "backup_backup_dest")?
            .ok_or_else(|| {
                SqlError::wrong_state("no BACKUP_BACKUP_DEST is set")
                    .with_hint("set one with ALTER SYSTEM SET BACKUP_BACKUP_DEST = 'file:///path'")
            })?;
        super::destination::prepare(&self.catalog, &dest, self.catalog.installation_id())?;
        let rounds = self.latest_rounds(|_, _| true)?;
        if rounds.is_empty() {
            return Err(SqlError::wrong_state(
                "no tenant has archive log to copy: start it with ALTER SYSTEM ARCHIVELOG",
            ));
        }
        self.catalog.start_log_copies(&rounds, &dest)?;
        self.spawn_log_copier();
        Ok(())
    }

    /// The newest round of each tenant that `wanted(tenant_id, round_id)` picks, with the first
    /// piece of the round: what a continuous copy follows.
    fn latest_rounds(&self, wanted: impl Fn(i64, i64) -> bool) -> SqlResult<Vec<(i64, i64, i64)>> {
        let mut rounds = Vec::new();
        for tenant in self.catalog.user_tenants()? {
            let Some(round) = self.catalog.latest_round(tenant.id)? else {
                continue;
            };
            if !wanted(tenant.id, round.round_id) {
                continue;
            }
            let first = self
                .catalog
                .pieces(Some(tenant.id))?
                .iter()
                .filter(|p| p.round_id == round.round_id)
                .map(|p| p.piece_id)
                .min()
                .unwrap_or(0);
            rounds.push((tenant.id, round.round_id, first));
        }
        Ok(rounds)
    }

    /// While the copy is DOING, rounds started after `START BACKUP ARCHIVELOG` (a tenant that
    /// began archiving, a new round after NOARCHIVELOG and ARCHIVELOG) are followed too.
    fn follow_new_rounds(&self) -> SqlResult<()> {
        let known = self.catalog.log_copies(&["DOING", "PAUSED", "STOP"])?;
        let Some(path) = known
            .iter()
            .find(|c| c.status == "DOING")
            .map(|c| c.path.clone())
        else {
            return Ok(());
        };
        let new = self.latest_rounds(|tenant_id, round_id| {
            !known
                .iter()
                .any(|c| c.tenant_id == tenant_id && c.round_id == round_id)
        })?;
        if !new.is_empty() {
            tracing::info!(rounds = ?new, "backup archivelog: following new rounds");
            self.catalog.start_log_copies(&new, &path)?;
        }
        Ok(())
    }

    /// `ALTER SYSTEM STOP BACKUP ARCHIVELOG`: every DOING copy goes PAUSED.
    pub fn stop_backup_archivelog(&self) -> SqlResult<()> {
        if self.catalog.move_log_copies(&["DOING"], "PAUSED")? == 0 {
            return Err(SqlError::wrong_state("backup archivelog is not DOING")
                .with_ob("OB_BACKUP_CANCEL_NOT_ALLOWED", 9049));
        }
        self.stop_log_copier();
        Ok(())
    }

    /// Stops the worker of `START BACKUP ARCHIVELOG`, if one runs.
    pub(super) fn stop_log_copier(&self) {
        if let Some(token) = self
            .archivers
            .log_copier
            .lock()
            .expect("log copier poisoned")
            .take()
        {
            token.cancel();
        }
    }

    /// At start, and after START: one worker while any copy is DOING.
    pub fn spawn_log_copier(self: &Arc<Self>) {
        let token = self.worker_token();
        {
            let mut slot = self
                .archivers
                .log_copier
                .lock()
                .expect("log copier poisoned");
            if slot.as_ref().is_some_and(|t| !t.is_cancelled()) {
                return;
            }
            *slot = Some(token.clone());
        }
        let executor = self.clone();
        self.runtime.spawn(async move {
            // The last segment copied, per tenant and round.
            let mut copied: HashMap<(i64, i64), String> = HashMap::new();
            loop {
                if let Err(e) = executor.follow_new_rounds() {
                    tracing::warn!(error = %e, "backup archivelog: cannot follow new rounds");
                }
                match executor.catalog.log_copies(&["DOING"]) {
                    Ok(copies) if copies.is_empty() => break,
                    Ok(copies) => {
                        for copy in copies {
                            let key = (copy.tenant_id, copy.round_id);
                            let after = copied.get(&key).cloned();
                            let ex = executor.clone();
                            let stop = token.clone();
                            let done = tokio::task::spawn_blocking(move || {
                                ex.copy_new_segments(&copy, after.as_deref(), &stop)
                            })
                            .await;
                            match done {
                                Ok(Ok(Some(last))) => {
                                    copied.insert(key, last);
                                }
                                Ok(Ok(_)) => {}
                                Ok(Err(e)) => {
                                    tracing::warn!(error = %e, "backup archivelog: copy failed; trying again")
                                }
                                Err(e) => tracing::error!(error = %e, "backup archivelog worker failed"),
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "backup archivelog: cannot read the catalog"),
                }
                tokio::select! {
                    _ = token.cancelled() => break,
                    _ = tokio::time::sleep(TICK) => {}
                }
            }
            token.cancel();
        });
    }

    /// Copies the segments of `copy`'s round archived after `after`; records the pieces that
    /// are now wholly copied. Returns the last segment copied. Blocking.
    fn copy_new_segments(
        &self,
        copy: &LogCopy,
        after: Option<&str>,
        stop: &CancellationToken,
    ) -> SqlResult<Option<String>> {
        let segments = self
            .catalog
            .segments_of_round(copy.tenant_id, copy.round_id, after)?;
        let Some(round) = self.catalog.round(copy.tenant_id, copy.round_id)? else {
            return Ok(None);
        };
        let from = self
            .catalog
            .destination_backend(&round.path)
            .map_err(|e| from_engine(&e.into()))?;
        let to = self
            .catalog
            .destination_backend(&copy.path)
            .map_err(|e| from_engine(&e.into()))?;
        let mut last = None;
        for segment in segments {
            if stop.is_cancelled() {
                break;
            }
            let sent = copy_segment(from.as_ref(), to.as_ref(), copy.tenant_id, &segment.name)
                .map_err(|e| from_engine(&e))?;
            self.catalog.log_copy_progress(copy, &segment, sent)?;
            last = Some(segment.name);
        }
        // A FROZEN piece whose segments are all copied is recorded as copied.
        let high = last.as_deref().or(after);
        let shown = mask_secrets(&copy.path);
        for piece in self.catalog.pieces(Some(copy.tenant_id))? {
            if piece.round_id != copy.round_id || piece.status != "FROZEN" {
                continue;
            }
            if self
                .catalog
                .piece_copies(piece.piece_id)?
                .iter()
                .any(|(_, p)| *p == shown)
            {
                continue;
            }
            let names = self.catalog.segments_of_piece(piece.piece_id)?;
            if names.iter().all(|n| high.is_some_and(|h| n.as_str() <= h)) {
                self.catalog
                    .record_piece_copy(piece.piece_id, copy.copy_id, &shown)?;
            }
        }
        Ok(last)
    }
}
