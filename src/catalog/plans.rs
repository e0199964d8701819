//! Scheduled backup (SPEC §2.7): backup policies, plans, the chains of sets they build, and one
//! row per plan run.

use super::{Catalog, CatalogError, Row, Value, now_micros};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRecord {
    pub name: String,
    pub schedule: String,
    pub timezone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanRecord {
    pub name: String,
    /// `ENABLED` or `DISABLED`.
    pub status: String,
    pub tenants: Vec<String>,
    pub policies: Vec<String>,
    pub chain_length: i64,
    /// `FOREVER` or `n CHAINS`.
    pub retention: String,
    pub notify: Option<String>,
    /// µs on the policy clock; `None` until the scheduler has computed it.
    pub next_run_time: Option<i64>,
}

impl PlanRecord {
    /// `n` of `RETENTION = n CHAINS`.
    pub fn chains_kept(&self) -> Option<i64> {
        self.retention
            .strip_suffix(" CHAINS")
            .and_then(|n| n.parse().ok())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainRecord {
    pub chain_id: i64,
    pub tenant_id: i64,
    pub plan_name: Option<String>,
    /// `AUTO` (a plan's) or `MANUAL` (statement-started backups).
    pub kind: String,
    pub points: i64,
    pub first_set_id: Option<i64>,
    pub last_set_id: Option<i64>,
    /// `OPEN`, `CLOSED` or `DELETED`.
    pub status: String,
}

/// One plan run that has not ended: its jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningRun {
    pub run_id: i64,
    pub plan_name: String,
    pub jobs: Vec<i64>,
}

fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

const PLAN_COLUMNS: &str =
    "plan_name, status, tenants, policies, chain_length, retention, notify, next_run_time";

fn plan(r: &Row) -> PlanRecord {
    PlanRecord {
        name: r[0].as_str().unwrap_or_default().to_string(),
        status: r[1].as_str().unwrap_or_default().to_string(),
        tenants: list(r[2].as_str().unwrap_or_default()),
        policies: list(r[3].as_str().unwrap_or_default()),
        chain_length: r[4].as_i64().unwrap_or(30),
        retention: r[5].as_str().unwrap_or("FOREVER").to_string(),
        notify: r[6].as_str().map(str::to_string),
        next_run_time: r[7].as_i64(),
    }
}

const CHAIN_COLUMNS: &str =
    "chain_id, tenant_id, plan_name, kind, points, first_set_id, last_set_id, status";

fn chain(r: &Row) -> ChainRecord {
    ChainRecord {
        chain_id: r[0].as_i64().unwrap_or_default(),
        tenant_id: r[1].as_i64().unwrap_or_default(),
        plan_name: r[2].as_str().map(str::to_string),
        kind: r[3].as_str().unwrap_or_default().to_string(),
        points: r[4].as_i64().unwrap_or_default(),
        first_set_id: r[5].as_i64(),
        last_set_id: r[6].as_i64(),
        status: r[7].as_str().unwrap_or_default().to_string(),
    }
}

impl Catalog {
    /// Records a policy; false when one of that name exists.
    pub fn create_backup_policy(&self, policy: &PolicyRecord) -> Result<bool, CatalogError> {
        self.write(|tx| {
            if !tx
                .query(
                    "SELECT 1 FROM backup_policy WHERE policy_name = ?",
                    &[policy.name.as_str().into()],
                )?
                .is_empty()
            {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO backup_policy (policy_name, schedule, timezone, create_time) \
                 VALUES (?, ?, ?, ?)",
                &[
                    policy.name.as_str().into(),
                    policy.schedule.as_str().into(),
                    policy.timezone.clone().into(),
                    now_micros().into(),
                ],
            )?;
            Ok(true)
        })
    }

    pub fn backup_policy(&self, name: &str) -> Result<Option<PolicyRecord>, CatalogError> {
        let rows = self.read(
            "SELECT policy_name, schedule, timezone FROM backup_policy WHERE policy_name = ?",
            &[name.into()],
        )?;
        Ok(rows.first().map(|r| PolicyRecord {
            name: r[0].as_str().unwrap_or_default().to_string(),
            schedule: r[1].as_str().unwrap_or_default().to_string(),
            timezone: r[2].as_str().map(str::to_string),
        }))
    }

    /// Drops a policy unless a plan binds it: `Ok(Err(plans))` names the plans that do;
    /// `Ok(Ok(false))` when there is no such policy.
    pub fn drop_backup_policy(
        &self,
        name: &str,
    ) -> Result<Result<bool, Vec<String>>, CatalogError> {
        self.write(|tx| {
            let binding: Vec<String> = tx
                .query(
                    "SELECT plan_name, policies FROM backup_plan ORDER BY plan_name",
                    &[],
                )?
                .iter()
                .filter(|r| {
                    list(r[1].as_str().unwrap_or_default())
                        .iter()
                        .any(|p| p == name)
                })
                .filter_map(|r| r[0].as_str().map(str::to_string))
                .collect();
            if !binding.is_empty() {
                return Ok(Err(binding));
            }
            Ok(Ok(tx.execute(
                "DELETE FROM backup_policy WHERE policy_name = ?",
                &[name.into()],
            )? > 0))
        })
    }

    /// Records a plan, ENABLED; false when one of that name exists.
    pub fn create_backup_plan(&self, p: &PlanRecord) -> Result<bool, CatalogError> {
        self.write(|tx| {
            if !tx
                .query(
                    "SELECT 1 FROM backup_plan WHERE plan_name = ?",
                    &[p.name.as_str().into()],
                )?
                .is_empty()
            {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO backup_plan (plan_name, status, tenants, policies, chain_length, \
                 retention, execution_count, notify, notify_shown, create_time, next_run_time) \
                 VALUES (?, 'ENABLED', ?, ?, ?, ?, 0, ?, ?, ?, ?)",
                &[
                    p.name.as_str().into(),
                    p.tenants.join(",").into(),
                    p.policies.join(",").into(),
                    p.chain_length.into(),
                    p.retention.as_str().into(),
                    p.notify.clone().into(),
                    p.notify.as_deref().map(super::mask_secrets).into(),
                    now_micros().into(),
                    p.next_run_time.into(),
                ],
            )?;
            Ok(true)
        })
    }

    pub fn backup_plan(&self, name: &str) -> Result<Option<PlanRecord>, CatalogError> {
        let rows = self.read(
            &format!("SELECT {PLAN_COLUMNS} FROM backup_plan WHERE plan_name = ?"),
            &[name.into()],
        )?;
        Ok(rows.first().map(plan))
    }

    pub fn backup_plans(&self) -> Result<Vec<PlanRecord>, CatalogError> {
        let rows = self.read(
            &format!("SELECT {PLAN_COLUMNS} FROM backup_plan ORDER BY plan_name"),
            &[],
        )?;
        Ok(rows.iter().map(plan).collect())
    }

    /// Moves a plan from `from` to `to` (ENABLED / DISABLED) as a compare-and-set; false when
    /// it was not in `from`.
    pub fn move_backup_plan(
        &self,
        name: &str,
        from: &str,
        to: &str,
        next_run_time: Option<i64>,
    ) -> Result<bool, CatalogError> {
        self.write(|tx| {
            Ok(tx.execute(
                "UPDATE backup_plan SET status = ?, next_run_time = ? WHERE plan_name = ? \
                 AND status = ?",
                &[to.into(), next_run_time.into(), name.into(), from.into()],
            )? > 0)
        })
    }

    /// Changes one attribute of a plan (`tenants`, `chain_length`, `retention`, `notify`).
    pub fn set_backup_plan(
        &self,
        name: &str,
        column: &str,
        value: Value,
    ) -> Result<bool, CatalogError> {
        assert!(
            [
                "tenants",
                "chain_length",
                "retention",
                "notify",
                "next_run_time"
            ]
            .contains(&column),
            "not a plan attribute: {column}"
        );
        self.write(|tx| {
            if column == "notify" {
                let shown = value.as_str().map(super::mask_secrets);
                tx.execute(
                    "UPDATE backup_plan SET notify_shown = ? WHERE plan_name = ?",
                    &[shown.into(), name.into()],
                )?;
            }
            Ok(tx.execute(
                &format!("UPDATE backup_plan SET {column} = ? WHERE plan_name = ?"),
                &[value.clone(), name.into()],
            )? > 0)
        })
    }

    pub fn drop_backup_plan(&self, name: &str) -> Result<bool, CatalogError> {
        self.write(|tx| {
            Ok(tx.execute(
                "DELETE FROM backup_plan WHERE plan_name = ?",
                &[name.into()],
            )? > 0)
        })
    }

    /// The chain a plan (or, with `None`, statement-started backups) is adding to for a
    /// tenant.
    pub fn open_chain(
        &self,
        tenant_id: i64,
        plan_name: Option<&str>,
    ) -> Result<Option<ChainRecord>, CatalogError> {
        let rows = self.read(
            &format!(
                "SELECT {CHAIN_COLUMNS} FROM backup_chain WHERE tenant_id = ? AND status = 'OPEN' \
                 AND kind = ? AND (plan_name = ? OR (? IS NULL AND plan_name IS NULL)) \
                 ORDER BY chain_id DESC LIMIT 1"
            ),
            &[
                tenant_id.into(),
                if plan_name.is_some() {
                    "AUTO"
                } else {
                    "MANUAL"
                }
                .into(),
                plan_name.into(),
                plan_name.into(),
            ],
        )?;
        Ok(rows.first().map(chain))
    }

    /// A plan's AUTO chains of a tenant that are not deleted, oldest first.
    pub fn auto_chains(
        &self,
        tenant_id: i64,
        plan_name: &str,
    ) -> Result<Vec<ChainRecord>, CatalogError> {
        let rows = self.read(
            &format!(
                "SELECT {CHAIN_COLUMNS} FROM backup_chain WHERE tenant_id = ? AND plan_name = ? \
                 AND kind = 'AUTO' AND status <> 'DELETED' ORDER BY chain_id"
            ),
            &[tenant_id.into(), plan_name.into()],
        )?;
        Ok(rows.iter().map(chain).collect())
    }

    /// Starts a chain (OPEN, no points yet), closing the tenant's open one of the same kind
    /// and plan.
    pub fn new_chain(&self, tenant_id: i64, plan_name: Option<&str>) -> Result<i64, CatalogError> {
        let kind = if plan_name.is_some() {
            "AUTO"
        } else {
            "MANUAL"
        };
        self.write(|tx| {
            tx.execute(
                "UPDATE backup_chain SET status = 'CLOSED' WHERE tenant_id = ? AND kind = ? \
                 AND status = 'OPEN' AND (plan_name = ? OR (? IS NULL AND plan_name IS NULL))",
                &[
                    tenant_id.into(),
                    kind.into(),
                    plan_name.into(),
                    plan_name.into(),
                ],
            )?;
            let chain_id = Catalog::next_id(tx, "backup_chain")?;
            tx.execute(
                "INSERT INTO backup_chain (chain_id, tenant_id, plan_name, kind, points, \
                 status, create_time) VALUES (?, ?, ?, ?, 0, 'OPEN', ?)",
                &[
                    chain_id.into(),
                    tenant_id.into(),
                    plan_name.into(),
                    kind.into(),
                    now_micros().into(),
                ],
            )?;
            Ok(chain_id)
        })
    }

    pub fn set_chain_status(&self, chain_id: i64, status: &str) -> Result<(), CatalogError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE backup_chain SET status = ? WHERE chain_id = ?",
                &[status.into(), chain_id.into()],
            )?;
            Ok(())
        })
    }

    /// The sets of a chain that are still restorable.
    pub fn chain_sets(&self, chain_id: i64) -> Result<Vec<i64>, CatalogError> {
        let rows = self.read(
            "SELECT backup_set_id FROM backup_set WHERE chain_id = ? AND copy_id = 0 \
             AND status = 'COMPLETED' AND file_status <> 'DELETED' ORDER BY backup_set_id",
            &[chain_id.into()],
        )?;
        Ok(rows.iter().filter_map(|r| r[0].as_i64()).collect())
    }

    /// Tags a job with the plan and chain it belongs to.
    pub fn tag_job(&self, job_id: i64, plan_name: &str, chain_id: i64) -> Result<(), CatalogError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE job SET plan_name = ?, chain_id = ? WHERE job_id = ?",
                &[plan_name.into(), chain_id.into(), job_id.into()],
            )?;
            Ok(())
        })
    }

    /// Puts every completed original set no chain holds yet into its chain, oldest first: a
    /// plan's set into the chain its job was started for, a statement-started one into the
    /// tenant's MANUAL chain (a full set starts a new one).
    pub fn chain_new_sets(&self) -> Result<usize, CatalogError> {
        // The scheduler asks every second: a read, and a write only when there is a set to chain.
        let waiting = self.read(
            "SELECT 1 FROM backup_set WHERE copy_id = 0 AND status = 'COMPLETED' \
             AND chain_id IS NULL LIMIT 1",
            &[],
        )?;
        if waiting.is_empty() {
            return Ok(0);
        }
        self.write(|tx| {
            let rows = tx.query(
                "SELECT s.backup_set_id, s.tenant_id, s.backup_type, j.chain_id, j.job_id \
                 FROM backup_set s LEFT JOIN job j ON j.job_id = s.job_id \
                 WHERE s.copy_id = 0 AND s.status = 'COMPLETED' AND s.chain_id IS NULL \
                 ORDER BY s.backup_set_id",
                &[],
            )?;
            for r in &rows {
                let (set_id, tenant_id) = (r[0].as_i64().unwrap_or(0), r[1].as_i64().unwrap_or(0));
                let full = r[2].as_str() == Some("FULL");
                let chain_id = match r[3].as_i64() {
                    Some(chain) => chain,
                    None => {
                        let open = tx.query(
                            "SELECT chain_id FROM backup_chain WHERE tenant_id = ? \
                             AND kind = 'MANUAL' AND status = 'OPEN' ORDER BY chain_id DESC LIMIT 1",
                            &[tenant_id.into()],
                        )?;
                        match open.first().and_then(|o| o[0].as_i64()) {
                            Some(chain) if !full => chain,
                            _ => {
                                tx.execute(
                                    "UPDATE backup_chain SET status = 'CLOSED' WHERE tenant_id = ? \
                                     AND kind = 'MANUAL' AND status = 'OPEN'",
                                    &[tenant_id.into()],
                                )?;
                                let chain = Catalog::next_id(tx, "backup_chain")?;
                                tx.execute(
                                    "INSERT INTO backup_chain (chain_id, tenant_id, kind, points, \
                                     status, create_time) VALUES (?, ?, 'MANUAL', 0, 'OPEN', ?)",
                                    &[chain.into(), tenant_id.into(), now_micros().into()],
                                )?;
                                chain
                            }
                        }
                    }
                };
                tx.execute(
                    "UPDATE backup_chain SET points = points + 1, \
                     first_set_id = COALESCE(first_set_id, ?), last_set_id = ? WHERE chain_id = ?",
                    &[set_id.into(), set_id.into(), chain_id.into()],
                )?;
                tx.execute(
                    "UPDATE backup_set SET chain_id = ? WHERE backup_set_id = ?",
                    &[chain_id.into(), set_id.into()],
                )?;
                if let Some(job_id) = r[4].as_i64() {
                    tx.execute(
                        "UPDATE job SET chain_id = COALESCE(chain_id, ?) WHERE job_id = ?",
                        &[chain_id.into(), job_id.into()],
                    )?;
                }
            }
            Ok(rows.len())
        })
    }

    /// Records a plan run as it starts (or is skipped); returns its id.
    #[allow(clippy::too_many_arguments)]
    pub fn record_plan_run(
        &self,
        plan_name: &str,
        policy_name: Option<&str>,
        scheduled_ts: i64,
        jobs: &[i64],
        status: &str,
        comment: &str,
    ) -> Result<i64, CatalogError> {
        self.write(|tx| {
            let run_id = Catalog::next_id(tx, "plan_run")?;
            let now = now_micros();
            let ended = status != "RUNNING";
            tx.execute(
                "INSERT INTO plan_run (run_id, plan_name, policy_name, job_id, jobs, scheduled_ts, \
                 start_ts, end_ts, status, comment) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                &[
                    run_id.into(),
                    plan_name.into(),
                    policy_name.into(),
                    jobs.first().copied().into(),
                    jobs.iter()
                        .map(i64::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                        .into(),
                    scheduled_ts.into(),
                    now.into(),
                    ended.then_some(now).into(),
                    status.into(),
                    comment.into(),
                ],
            )?;
            tx.execute(
                "UPDATE backup_plan SET execution_count = execution_count + 1 WHERE plan_name = ?",
                &[plan_name.into()],
            )?;
            Ok(run_id)
        })
    }

    /// Runs still RUNNING, with their jobs.
    pub fn running_plan_runs(&self) -> Result<Vec<RunningRun>, CatalogError> {
        let rows = self.read(
            "SELECT run_id, plan_name, jobs FROM plan_run WHERE status = 'RUNNING' ORDER BY run_id",
            &[],
        )?;
        Ok(rows
            .iter()
            .map(|r| RunningRun {
                run_id: r[0].as_i64().unwrap_or_default(),
                plan_name: r[1].as_str().unwrap_or_default().to_string(),
                jobs: list(r[2].as_str().unwrap_or_default())
                    .iter()
                    .filter_map(|j| j.parse().ok())
                    .collect(),
            })
            .collect())
    }

    /// Ends a run (COMPLETED or FAILED), adding to its COMMENT.
    pub fn end_plan_run(
        &self,
        run_id: i64,
        status: &str,
        comment: &str,
    ) -> Result<(), CatalogError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE plan_run SET status = ?, end_ts = ?, \
                 comment = CASE WHEN ? = '' THEN comment WHEN comment = '' THEN ? \
                 ELSE comment || '; ' || ? END WHERE run_id = ? AND status = 'RUNNING'",
                &[
                    status.into(),
                    now_micros().into(),
                    comment.into(),
                    comment.into(),
                    comment.into(),
                    run_id.into(),
                ],
            )?;
            Ok(())
        })
    }
}
