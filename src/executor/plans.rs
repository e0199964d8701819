//! Scheduled backup plans (SPEC §2.7, the QingCloud seed's backup tasks and policies).
//!
//! A plan runs when one of its policies' schedules comes due on the policy clock (the server's,
//! moved by `_backup_clock_offset` in tests), or when `ALTER SYSTEM RUN BACKUP PLAN` asks. A run
//! starts one data backup job per tenant: a full set opening a new AUTO chain when the plan has
//! no open chain for the tenant or the open one has CHAIN_LENGTH points, else an incremental set
//! added to it. With `RETENTION = n CHAINS`, before a new chain starts where the tenant already
//! has n AUTO chains of the plan, the oldest is deleted through a deletion job (which waits
//! while another job uses its sets, and never takes the last restorable set).
//!
//! Runs of one plan never overlap: a run due while the previous one runs is recorded SKIPPED,
//! as is a tenant some other job is backing up. Runs missed while the server was down run once
//! when it starts, and say how late they are. Everything the scheduler needs is in the catalog
//! (the next run time, the runs still going), so a restart loses nothing.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Executor;
use super::backup::BackupSpec;
use super::cron::Schedule;
use crate::catalog::plans::PlanRecord;
use crate::catalog::status::{JobStatus, Status};
use crate::error::{SqlError, SqlResult};

/// How often the plan scheduler looks at its clock.
const PLAN_TICK: Duration = Duration::from_secs(1);

/// A run later than this after its scheduled time says so in its COMMENT.
const LATE_MICROS: i64 = 60_000_000;

fn utc(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

impl Executor {
    /// The schedule of a policy, parsed.
    fn schedule_of(&self, policy: &str) -> SqlResult<Schedule> {
        let record = self.catalog.backup_policy(policy)?.ok_or_else(|| {
            SqlError::internal(format!("backup policy {policy} of a plan does not exist"))
        })?;
        Schedule::parse(&record.schedule, record.timezone.as_deref())
            .map_err(|e| SqlError::internal(format!("backup policy {policy}: {e}")))
    }

    /// The next time one of the plan's policies fires after `after` (µs on the policy clock),
    /// and which policy it is.
    pub(crate) fn next_plan_run(
        &self,
        plan: &PlanRecord,
        after: i64,
    ) -> SqlResult<Option<(i64, String)>> {
        let mut best: Option<(i64, String)> = None;
        for policy in &plan.policies {
            if let Some(at) = self.schedule_of(policy)?.next_after(utc(after)) {
                let at = at.timestamp_micros();
                if best.as_ref().is_none_or(|(b, _)| at < *b) {
                    best = Some((at, policy.clone()));
                }
            }
        }
        Ok(best)
    }

    /// Runs every plan whose time has come, for as long as the server runs.
    pub fn start_plan_scheduler(self: &Arc<Self>) {
        self.spawn_ticker(PLAN_TICK, |executor| {
            if let Err(e) = executor.plan_tick() {
                tracing::warn!(error = %e, "the plan scheduler could not run");
            }
        });
    }

    fn plan_tick(self: &Arc<Self>) -> SqlResult<()> {
        self.settle_plan_runs()?;
        let now = self.clock_micros();
        for plan in self.catalog.backup_plans()? {
            if plan.status != "ENABLED" {
                continue;
            }
            let Some(next) = plan.next_run_time else {
                let next = self.next_plan_run(&plan, now)?.map(|(at, _)| at);
                self.catalog
                    .set_backup_plan(&plan.name, "next_run_time", next.into())?;
                continue;
            };
            if now < next {
                continue;
            }
            // The policy whose time it was: the one that fires first after a moment before.
            let policy = self
                .next_plan_run(&plan, next - 1)?
                .map(|(_, policy)| policy);
            let late = now - next;
            let mut comment = String::new();
            if late > LATE_MICROS {
                comment = format!(
                    "late by {}s: the run due at {} ran when the server could",
                    late / 1_000_000,
                    utc(next).format("%Y-%m-%d %H:%M:%S")
                );
            }
            // Runs missed meanwhile collapse into this one: the next is after now.
            let following = self.next_plan_run(&plan, now.max(next))?.map(|(at, _)| at);
            self.catalog
                .set_backup_plan(&plan.name, "next_run_time", following.into())?;
            if let Err(e) = self.run_plan(&plan, policy.as_deref(), next, comment) {
                tracing::warn!(plan = %plan.name, error = %e, "plan run did not start");
            }
        }
        Ok(())
    }

    /// `ALTER SYSTEM RUN BACKUP PLAN name`: runs it now. Returns the first job it started.
    pub fn run_plan_now(self: &Arc<Self>, name: &str) -> SqlResult<Option<i64>> {
        let plan = self
            .catalog
            .backup_plan(name)?
            .ok_or_else(|| SqlError::undefined(format!("backup plan {name} does not exist")))?;
        if plan.status != "ENABLED" {
            return Err(SqlError::wrong_state(format!(
                "backup plan {name} is DISABLED: a disabled plan never runs"
            ))
            .with_hint(format!("ALTER BACKUP PLAN {name} ENABLE")));
        }
        self.settle_plan_runs()?;
        let jobs = self.run_plan(
            &plan,
            None,
            self.clock_micros(),
            "run by ALTER SYSTEM RUN BACKUP PLAN".into(),
        )?;
        Ok(jobs.first().copied())
    }

    /// One run of `plan`: a job per tenant (or a SKIPPED record). Returns the jobs started.
    fn run_plan(
        self: &Arc<Self>,
        plan: &PlanRecord,
        policy: Option<&str>,
        scheduled: i64,
        comment: String,
    ) -> SqlResult<Vec<i64>> {
        let mut notes: Vec<String> = Vec::new();
        if !comment.is_empty() {
            notes.push(comment);
        }
        if let Some(previous) = self
            .catalog
            .running_plan_runs()?
            .into_iter()
            .find(|r| r.plan_name == plan.name)
        {
            notes.push(format!(
                "SKIPPED: the previous run {} of plan {} is still running",
                previous.run_id, plan.name
            ));
            let comment = notes.join("; ");
            let run_id = self.catalog.record_plan_run(
                &plan.name,
                policy,
                scheduled,
                &[],
                "SKIPPED",
                &comment,
            )?;
            self.announce_plan_run(plan, run_id, "SKIPPED", &[], &comment);
            return Ok(Vec::new());
        }
        let mut jobs = Vec::new();
        for name in &plan.tenants {
            let Some(tenant) = self.catalog.tenant_by_name(name)? else {
                notes.push(format!(
                    "tenant {name} does not exist any more: not backed up"
                ));
                continue;
            };
            if let Some(job_id) = self.catalog.backup_running_for(tenant.id)? {
                notes.push(format!(
                    "tenant {name} skipped: job {job_id} is backing it up"
                ));
                continue;
            }
            let open = self.catalog.open_chain(tenant.id, Some(&plan.name))?;
            let (chain_id, incremental) = match open {
                Some(chain) if chain.points < plan.chain_length => (chain.chain_id, true),
                _ => {
                    if let Some(kept) = plan.chains_kept() {
                        self.apply_chain_retention(plan, &tenant, kept, &mut notes)?;
                    }
                    (self.catalog.new_chain(tenant.id, Some(&plan.name))?, false)
                }
            };
            let started = self.start_backup(BackupSpec {
                tenants: vec![tenant.clone()],
                cluster: false,
                incremental,
                plus_archivelog: false,
                description: Some(format!("backup plan {}", plan.name)),
            });
            match started {
                Ok(job_id) => {
                    self.catalog.tag_job(job_id, &plan.name, chain_id)?;
                    jobs.push(job_id);
                }
                Err(e) => notes.push(format!("tenant {name} not backed up: {}", e.message)),
            }
        }
        let status = if jobs.is_empty() {
            "SKIPPED"
        } else {
            "RUNNING"
        };
        let comment = notes.join("; ");
        let run_id = self
            .catalog
            .record_plan_run(&plan.name, policy, scheduled, &jobs, status, &comment)?;
        self.announce_plan_run(plan, run_id, status, &jobs, &comment);
        tracing::info!(plan = %plan.name, run_id, jobs = ?jobs, status, "plan run");
        Ok(jobs)
    }

    /// Before a new chain starts: deletes the tenant's oldest AUTO chains of the plan until
    /// `kept - 1` remain (the new one makes `kept`).
    fn apply_chain_retention(
        self: &Arc<Self>,
        plan: &PlanRecord,
        tenant: &crate::catalog::tenants::Tenant,
        kept: i64,
        notes: &mut Vec<String>,
    ) -> SqlResult<()> {
        let chains = self.catalog.auto_chains(tenant.id, &plan.name)?;
        let excess = chains.len() as i64 - (kept - 1);
        for chain in chains.into_iter().take(excess.max(0) as usize) {
            let sets = self.catalog.chain_sets(chain.chain_id)?;
            if sets.is_empty() {
                self.catalog.set_chain_status(chain.chain_id, "DELETED")?;
                continue;
            }
            match self.start_delete_sets(&sets, None, Some(tenant)) {
                Ok(job_id) => {
                    self.catalog.set_chain_status(chain.chain_id, "DELETED")?;
                    notes.push(format!(
                        "chain {} of tenant {} deleted by job {job_id} (RETENTION = {})",
                        chain.chain_id, tenant.name, plan.retention
                    ));
                }
                Err(e) => notes.push(format!(
                    "chain {} of tenant {} kept: {}",
                    chain.chain_id, tenant.name, e.message
                )),
            }
        }
        Ok(())
    }

    /// Chains the sets that completed, and ends the runs whose jobs have all ended.
    pub(crate) fn settle_plan_runs(&self) -> SqlResult<()> {
        self.catalog.chain_new_sets()?;
        for run in self.catalog.running_plan_runs()? {
            let mut ended = 0;
            let mut failed = Vec::new();
            for job_id in &run.jobs {
                match self.catalog.job(*job_id)? {
                    Some(job) if job.status.is_end() => {
                        ended += 1;
                        if job.status != Status::Job(JobStatus::Completed) {
                            failed.push(format!("job {job_id} {}", job.status));
                        }
                    }
                    Some(_) => {}
                    None => ended += 1,
                }
            }
            if ended < run.jobs.len() {
                continue;
            }
            if failed.is_empty() {
                self.catalog.end_plan_run(run.run_id, "COMPLETED", "")?;
            } else {
                self.catalog
                    .end_plan_run(run.run_id, "FAILED", &failed.join(", "))?;
            }
        }
        Ok(())
    }
}
