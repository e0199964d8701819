//! Applying scheduled plans and their policies (SPEC §2.7).

use super::{Caller, Control, Outcome, find_tenant};
use crate::catalog::plans::{PlanRecord, PolicyRecord};
use crate::error::{SqlError, SqlResult};
use crate::executor::cron::Schedule;
use crate::sql::ast::{PlanChange, PlanStatement, Retention};

/// The longest chain a plan may build (the seed's limit).
const MAX_CHAIN_LENGTH: i64 = 30;

fn retention_text(retention: &Retention) -> SqlResult<String> {
    match retention {
        Retention::Forever => Ok("FOREVER".into()),
        Retention::Chains(n) if *n >= 1 => Ok(format!("{n} CHAINS")),
        Retention::Chains(n) => Err(SqlError::invalid_value(format!(
            "RETENTION = {n} CHAINS keeps nothing: write 1 CHAINS or more, or FOREVER"
        ))),
    }
}

fn chain_length(n: i64) -> SqlResult<i64> {
    if (1..=MAX_CHAIN_LENGTH).contains(&n) {
        Ok(n)
    } else {
        Err(SqlError::invalid_value(format!(
            "CHAIN_LENGTH = {n} is outside 1..{MAX_CHAIN_LENGTH}: a chain holds at most \
             {MAX_CHAIN_LENGTH} points (one full set and its incrementals)"
        )))
    }
}

/// A plan's NOTIFY target: a channel name (`LISTEN name`) or an http(s) URL.
fn notify_target(target: &str) -> SqlResult<String> {
    if crate::executor::notify::valid_target(target) {
        Ok(target.to_string())
    } else {
        Err(SqlError::invalid_value(format!(
            "NOTIFY = '{}' is neither a channel name nor an http:// or https:// URL",
            crate::catalog::mask_secrets(target)
        ))
        .with_hint("a channel is an identifier, e.g. NOTIFY = 'backups'; clients LISTEN backups"))
    }
}

impl Control {
    /// Applies a statement of this family for `caller`; `wait` is its trailing `WAIT`.
    pub(super) fn apply_plan(
        &self,
        _caller: &Caller,
        statement: &PlanStatement,
        wait: bool,
    ) -> SqlResult<Outcome> {
        match statement {
            PlanStatement::CreateBackupPolicy {
                name,
                schedule,
                timezone,
            } => {
                Schedule::parse(schedule, timezone.as_deref()).map_err(SqlError::invalid_value)?;
                let created = self.catalog.create_backup_policy(&PolicyRecord {
                    name: name.clone(),
                    schedule: schedule.clone(),
                    timezone: timezone.clone(),
                })?;
                if !created {
                    return Err(SqlError::duplicate(format!(
                        "backup policy {name} already exists"
                    )));
                }
                Ok(Outcome::Done("CREATE BACKUP POLICY"))
            }
            PlanStatement::DropBackupPolicy { name } => {
                match self.catalog.drop_backup_policy(name)? {
                    Ok(true) => Ok(Outcome::Done("DROP BACKUP POLICY")),
                    Ok(false) => Err(SqlError::undefined(format!(
                        "backup policy {name} does not exist"
                    ))),
                    Err(plans) => Err(SqlError::wrong_state(format!(
                        "backup policy {name} is bound to plan(s) {}",
                        plans.join(", ")
                    ))
                    .with_hint("drop those plans first (their backups stay)")),
                }
            }
            PlanStatement::CreateBackupPlan {
                name,
                tenants,
                policies,
                chain_length: length,
                retention,
                notify,
            } => {
                let mut names = Vec::new();
                for tenant in tenants {
                    let found = find_tenant(&self.catalog, tenant)?;
                    if !names.contains(&found.name) {
                        names.push(found.name);
                    }
                }
                let mut bound = Vec::new();
                for policy in policies {
                    if self.catalog.backup_policy(policy)?.is_none() {
                        return Err(SqlError::undefined(format!(
                            "backup policy {policy} does not exist"
                        ))
                        .with_hint("CREATE BACKUP POLICY name SCHEDULE = '0 2 * * *'"));
                    }
                    if !bound.contains(policy) {
                        bound.push(policy.clone());
                    }
                }
                let mut plan = PlanRecord {
                    name: name.clone(),
                    status: "ENABLED".into(),
                    tenants: names,
                    policies: bound,
                    chain_length: chain_length(length.unwrap_or(MAX_CHAIN_LENGTH))?,
                    retention: retention
                        .as_ref()
                        .map(retention_text)
                        .transpose()?
                        .unwrap_or_else(|| "FOREVER".into()),
                    notify: notify.as_deref().map(notify_target).transpose()?,
                    next_run_time: None,
                };
                plan.next_run_time = self
                    .executor
                    .next_plan_run(&plan, self.executor.clock_micros())?
                    .map(|(at, _)| at);
                if !self.catalog.create_backup_plan(&plan)? {
                    return Err(SqlError::duplicate(format!(
                        "backup plan {name} already exists"
                    )));
                }
                Ok(Outcome::Done("CREATE BACKUP PLAN"))
            }
            PlanStatement::AlterBackupPlanEnable { name, enable } => {
                let plan = self.plan(name)?;
                let (from, to) = if *enable {
                    ("DISABLED", "ENABLED")
                } else {
                    ("ENABLED", "DISABLED")
                };
                // Enabled again, a plan starts from now: what it missed while disabled is not
                // run.
                let next = if *enable {
                    self.executor
                        .next_plan_run(&plan, self.executor.clock_micros())?
                        .map(|(at, _)| at)
                } else {
                    None
                };
                if !self.catalog.move_backup_plan(name, from, to, next)? {
                    return Err(SqlError::wrong_state(format!(
                        "backup plan {name} is {} already: only a {from} plan can be {}",
                        plan.status,
                        if *enable { "enabled" } else { "disabled" }
                    )));
                }
                Ok(Outcome::Done("ALTER BACKUP PLAN"))
            }
            PlanStatement::AlterBackupPlanSet { name, change } => {
                self.plan(name)?;
                match change {
                    PlanChange::Tenants(tenants) => {
                        let mut names = Vec::new();
                        for tenant in tenants {
                            names.push(find_tenant(&self.catalog, tenant)?.name);
                        }
                        self.catalog
                            .set_backup_plan(name, "tenants", names.join(",").into())?;
                    }
                    PlanChange::ChainLength(n) => {
                        self.catalog.set_backup_plan(
                            name,
                            "chain_length",
                            chain_length(*n)?.into(),
                        )?;
                    }
                    PlanChange::Retention(retention) => {
                        self.catalog.set_backup_plan(
                            name,
                            "retention",
                            retention_text(retention)?.into(),
                        )?;
                    }
                    PlanChange::Notify(target) => {
                        self.catalog.set_backup_plan(
                            name,
                            "notify",
                            notify_target(target)?.into(),
                        )?;
                    }
                    PlanChange::Policies(_) => {
                        return Err(SqlError::wrong_state(format!(
                            "the policies of backup plan {name} cannot change: create a new plan \
                             with the policies you want"
                        ))
                        .with_hint(format!(
                            "CREATE BACKUP PLAN ... POLICY = ..., then DROP BACKUP PLAN {name} \
                             (its backups and chains stay)"
                        )));
                    }
                }
                Ok(Outcome::Done("ALTER BACKUP PLAN"))
            }
            PlanStatement::DropBackupPlan { name } => {
                if !self.catalog.drop_backup_plan(name)? {
                    return Err(no_such_plan(name));
                }
                Ok(Outcome::Done("DROP BACKUP PLAN"))
            }
            PlanStatement::RunBackupPlan { name } => match self.executor.run_plan_now(name)? {
                Some(job_id) => Ok(Outcome::Job { job_id, wait }),
                None => Ok(Outcome::Done("ALTER SYSTEM")),
            },
        }
    }

    fn plan(&self, name: &str) -> SqlResult<PlanRecord> {
        self.catalog
            .backup_plan(name)?
            .ok_or_else(|| no_such_plan(name))
    }
}

fn no_such_plan(name: &str) -> SqlError {
    SqlError::undefined(format!("backup plan {name} does not exist"))
        .with_hint("SELECT name FROM oceanbase.cdb_ob_backup_plans lists the plans")
}
