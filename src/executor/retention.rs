//! Retention by recovery window (SPEC §2.6), as OceanBase 4.x defines it: with a window W, a
//! tenant keeps, in every destination, the newest set that completed at or before now − W and
//! every set after it, so that every moment of the window stays restorable; older sets are
//! obsolete. Pieces go oldest first, and only those whose log ends before the oldest kept set
//! began (no kept set needs them for its restore). The newest restorable set is always kept.
//!
//! Policies (`ADD DELETE BACKUP POLICY`): one per tenant, or one for every tenant without its
//! own (added without TENANT). The policy scheduler runs `DELETE OBSOLETE BACKUP` every
//! `backup_delete_policy_interval` (1h) by itself; its clock is the server's, moved by the
//! `_backup_clock_offset` parameter in tests.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use super::Executor;
use super::delete::Doomed;
use crate::catalog::deletion::{PieceCopy, SetCopy};
use crate::catalog::parameters::parse_duration;
use crate::catalog::{Catalog, SYS_TENANT_ID, now_micros};
use crate::error::{SqlError, SqlResult};

/// How often the policy scheduler looks at its clock.
const POLICY_TICK: Duration = Duration::from_secs(1);
/// Where the scheduler keeps the time of its last run (µs, on its clock).
const LAST_RUN_KEY: &str = "delete_policy_last_run";

/// What `DELETE OBSOLETE BACKUP` removes now.
pub(crate) struct ObsoletePlan {
    /// The tenants a policy applies to.
    pub tenants: Vec<i64>,
    pub doomed: Vec<Doomed>,
    /// `PARAMETER`: the expiry time (now − W), one per tenant when windows differ.
    pub expiry: String,
}

/// The sets that stay restorable once `busy` (held by running delete jobs) and `doomed` are
/// gone.
pub(crate) fn kept_sets_after(
    all: &[SetCopy],
    busy: &[(bool, i64, i64, i64)],
    doomed: &[Doomed],
) -> Vec<SetCopy> {
    let going: HashSet<(i64, i64)> = busy
        .iter()
        .filter(|(is_set, ..)| *is_set)
        .map(|(_, id, copy, _)| (*id, *copy))
        .chain(doomed.iter().filter_map(|d| match d {
            Doomed::Set(s) => Some((s.set_id, s.copy_id)),
            Doomed::Piece(_) => None,
        }))
        .collect();
    all.iter()
        .filter(|s| !going.contains(&(s.set_id, s.copy_id)))
        .cloned()
        .collect()
}

/// The sets a recovery window leaves obsolete: in each destination (sets ordered by end),
/// everything older than the newest set that ended at or before `expiry` (µs).
pub(crate) fn obsolete_sets(sets: &[SetCopy], expiry: i64) -> Vec<SetCopy> {
    let mut by_path: BTreeMap<&str, Vec<&SetCopy>> = BTreeMap::new();
    for set in sets {
        by_path.entry(set.path.as_str()).or_default().push(set);
    }
    let mut out = Vec::new();
    for group in by_path.values_mut() {
        group.sort_by_key(|s| (s.end_ts, s.set_id));
        if let Some(anchor) = group.iter().rposition(|s| s.end_ts <= expiry) {
            out.extend(group[..anchor].iter().map(|s| (*s).clone()));
        }
    }
    out
}

/// The pieces that may go while `kept` stays: per copy, the oldest frozen pieces whose log
/// ends before the oldest kept set began. None while no set is kept.
pub(crate) fn obsolete_pieces(pieces: &[PieceCopy], kept: &[SetCopy]) -> Vec<PieceCopy> {
    let Some(oldest_start) = kept.iter().map(|s| s.start_ts).min() else {
        return Vec::new();
    };
    let needed_from = oldest_start.saturating_mul(1000);
    let mut by_copy: BTreeMap<i64, Vec<&PieceCopy>> = BTreeMap::new();
    for piece in pieces {
        by_copy.entry(piece.copy_id).or_default().push(piece);
    }
    let mut out = Vec::new();
    for group in by_copy.values_mut() {
        group.sort_by_key(|p| p.piece_id);
        for piece in group.iter() {
            if piece.status != "FROZEN" || piece.checkpoint_scn >= needed_from {
                break;
            }
            out.push((*piece).clone());
        }
    }
    out
}

/// The window that applies to each tenant: its own policy's, else the one for all tenants.
fn windows(catalog: &Catalog, tenant: Option<i64>) -> SqlResult<Vec<(i64, Duration)>> {
    let policies = catalog.delete_policies()?;
    let window_of = |tenant_id: i64| -> SqlResult<Option<Duration>> {
        let policy = policies
            .iter()
            .find(|p| p.tenant_id == tenant_id)
            .or_else(|| policies.iter().find(|p| p.tenant_id == SYS_TENANT_ID));
        policy
            .map(|p| {
                parse_duration(&p.recovery_window).ok_or_else(|| {
                    SqlError::internal(format!(
                        "delete policy {} has an unreadable RECOVERY_WINDOW {}",
                        p.name, p.recovery_window
                    ))
                })
            })
            .transpose()
    };
    let tenants: Vec<i64> = match tenant {
        Some(id) => vec![id],
        None => catalog.user_tenants()?.iter().map(|t| t.id).collect(),
    };
    let mut out = Vec::new();
    for tenant_id in tenants {
        if let Some(window) = window_of(tenant_id)? {
            out.push((tenant_id, window));
        }
    }
    Ok(out)
}

fn show_time(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| micros.to_string())
}

/// What `DELETE OBSOLETE BACKUP [TENANT t]` removes at `now` (µs on the policy clock).
pub(crate) fn obsolete(
    catalog: &Catalog,
    tenant: Option<i64>,
    now: i64,
    busy: &[(bool, i64, i64, i64)],
) -> SqlResult<ObsoletePlan> {
    let mut plan = ObsoletePlan {
        tenants: Vec::new(),
        doomed: Vec::new(),
        expiry: String::new(),
    };
    let mut expiries = Vec::new();
    let busy_pieces: HashSet<(i64, i64)> = busy
        .iter()
        .filter(|(is_set, ..)| !*is_set)
        .map(|(_, id, copy, _)| (*id, *copy))
        .collect();
    for (tenant_id, window) in windows(catalog, tenant)? {
        let expiry = now.saturating_sub(window.as_micros() as i64);
        let all = catalog.restorable_set_copies(Some(tenant_id))?;
        let candidates = kept_sets_after(&all, busy, &[]);
        let sets: Vec<Doomed> = obsolete_sets(&candidates, expiry)
            .into_iter()
            .map(Doomed::Set)
            .collect();
        let kept = kept_sets_after(&candidates, &[], &sets);
        let pieces: Vec<PieceCopy> = catalog
            .piece_copies_of(tenant_id)?
            .into_iter()
            .filter(|p| !busy_pieces.contains(&(p.piece_id, p.copy_id)))
            .collect();
        let originals: Vec<SetCopy> = kept.iter().filter(|s| s.copy_id == 0).cloned().collect();
        plan.doomed.extend(sets);
        plan.doomed.extend(
            obsolete_pieces(
                &pieces,
                if originals.is_empty() {
                    &kept
                } else {
                    &originals
                },
            )
            .into_iter()
            .map(Doomed::Piece),
        );
        plan.tenants.push(tenant_id);
        expiries.push((tenant_id, show_time(expiry)));
    }
    let distinct: HashSet<&str> = expiries.iter().map(|(_, e)| e.as_str()).collect();
    plan.expiry = if distinct.len() <= 1 {
        expiries.first().map(|(_, e)| e.clone()).unwrap_or_default()
    } else {
        expiries
            .iter()
            .map(|(t, e)| format!("{t}:{e}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    Ok(plan)
}

impl Executor {
    /// Now on the policy clock: the server's clock moved by `_backup_clock_offset`.
    pub(crate) fn clock_micros(&self) -> i64 {
        let offset = self.duration_parameter(SYS_TENANT_ID, "_backup_clock_offset", Duration::ZERO);
        now_micros().saturating_add(offset.as_micros() as i64)
    }

    /// Runs `DELETE OBSOLETE BACKUP` every `backup_delete_policy_interval` while a policy
    /// exists, for as long as the server runs. A run that finds another deletion running is
    /// skipped until the next tick.
    pub fn start_delete_policy_scheduler(self: &Arc<Self>) {
        self.spawn_ticker(POLICY_TICK, |executor| {
            if let Err(e) = executor.policy_tick() {
                tracing::warn!(error = %e, "the delete policy did not run");
            }
        });
    }

    /// A policy was added: its period starts now, unless another policy's already runs.
    pub fn delete_policy_added(&self) -> SqlResult<()> {
        if self.catalog.meta_value(LAST_RUN_KEY)?.is_none() {
            self.catalog
                .set_meta_value(LAST_RUN_KEY, &self.clock_micros().to_string())?;
        }
        Ok(())
    }

    fn policy_tick(self: &Arc<Self>) -> SqlResult<()> {
        if self.catalog.delete_policies()?.is_empty() {
            return Ok(());
        }
        let now = self.clock_micros();
        let interval = self.duration_parameter(
            SYS_TENANT_ID,
            "backup_delete_policy_interval",
            Duration::from_secs(3600),
        );
        let last = self
            .catalog
            .meta_value(LAST_RUN_KEY)?
            .and_then(|v| v.parse::<i64>().ok());
        let Some(last) = last else {
            // The first policy starts the period; its first run is one interval later.
            self.catalog
                .set_meta_value(LAST_RUN_KEY, &now.to_string())?;
            return Ok(());
        };
        if now < last.saturating_add(interval.as_micros() as i64) {
            return Ok(());
        }
        let running = self.catalog.jobs_in(
            crate::catalog::jobs::JobKind::Delete,
            &[
                crate::catalog::status::JobStatus::Init,
                crate::catalog::status::JobStatus::Doing,
            ],
        )?;
        if !running.is_empty() {
            return Ok(());
        }
        self.catalog
            .set_meta_value(LAST_RUN_KEY, &now.to_string())?;
        let job_id = self.start_delete_obsolete(None, true)?;
        tracing::info!(job_id, "delete policy started its cleanup");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(id: i64, path: &str, start: i64, end: i64) -> SetCopy {
        SetCopy {
            tenant_id: 1001,
            set_id: id,
            copy_id: 0,
            path: path.into(),
            start_ts: start,
            end_ts: end,
            file_status: "AVAILABLE".into(),
        }
    }

    fn piece(id: i64, status: &str, checkpoint_scn: i64) -> PieceCopy {
        PieceCopy {
            tenant_id: 1001,
            round_id: 1,
            piece_id: id,
            copy_id: 0,
            status: status.into(),
            checkpoint_scn,
            file_status: "AVAILABLE".into(),
            path: "file:///log".into(),
        }
    }

    fn ids(sets: &[SetCopy]) -> Vec<i64> {
        sets.iter().map(|s| s.set_id).collect()
    }

    #[test]
    fn the_window_keeps_the_newest_set_ended_before_it_and_everything_after() {
        let sets = [
            set(1, "a", 0, 10),
            set(2, "a", 20, 30),
            set(3, "a", 40, 50),
            set(4, "a", 60, 70),
        ];
        // Expiry 55: set 3 ended before it, so the window's start is restorable from set 3.
        assert_eq!(ids(&obsolete_sets(&sets, 55)), vec![1, 2]);
        // Exactly at an end: that set is the anchor.
        assert_eq!(ids(&obsolete_sets(&sets, 30)), vec![1]);
        // Nothing ended before the expiry: nothing is obsolete.
        assert!(obsolete_sets(&sets, 5).is_empty());
        // Far in the future: the newest set stays, always.
        assert_eq!(ids(&obsolete_sets(&sets, 1_000)), vec![1, 2, 3]);
    }

    #[test]
    fn each_destination_keeps_its_own_sets() {
        let sets = [
            set(1, "a", 0, 10),
            set(2, "b", 0, 12),
            set(3, "a", 20, 30),
            set(4, "b", 40, 50),
        ];
        assert_eq!(ids(&obsolete_sets(&sets, 35)), vec![1]);
    }

    #[test]
    fn pieces_go_in_order_and_only_before_the_oldest_kept_set() {
        let kept = [set(3, "a", 40, 50)];
        let pieces = [
            piece(1, "FROZEN", 10_000),
            piece(2, "FROZEN", 39_000),
            piece(3, "FROZEN", 45_000),
            piece(4, "ACTIVE", 60_000),
        ];
        let gone: Vec<i64> = obsolete_pieces(&pieces, &kept)
            .iter()
            .map(|p| p.piece_id)
            .collect();
        assert_eq!(gone, vec![1, 2], "piece 3 holds log set 3 needs");
        // A piece that cannot go stops the ones after it.
        let stuck = [piece(1, "ACTIVE", 10_000), piece(2, "FROZEN", 20_000)];
        assert!(obsolete_pieces(&stuck, &kept).is_empty());
        assert!(
            obsolete_pieces(&pieces, &[]).is_empty(),
            "no kept set: no piece goes"
        );
    }
}
