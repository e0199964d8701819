//! Scheduled backup (SPEC §2.7): backup policies (when to run), backup plans (which tenants, under
//! which policies, with what chain length, retention and notification), changing, enabling,
//! disabling, dropping and running them.

use std::fmt;

use super::ast::*;
use super::cursor::{Cursor, Result};
use super::statement::Head;

/// Scheduled backup plans and their policies (SPEC §2.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanStatement {
    CreateBackupPolicy {
        name: String,
        schedule: String,
        timezone: Option<String>,
    },
    CreateBackupPlan {
        name: String,
        tenants: Vec<String>,
        policies: Vec<String>,
        chain_length: Option<i64>,
        retention: Option<Retention>,
        notify: Option<String>,
    },
    AlterBackupPlanEnable {
        name: String,
        enable: bool,
    },
    AlterBackupPlanSet {
        name: String,
        change: PlanChange,
    },
    DropBackupPlan {
        name: String,
    },
    DropBackupPolicy {
        name: String,
    },
    RunBackupPlan {
        name: String,
    },
}

impl PlanStatement {
    /// The role a session needs to run the statement (SPEC §2.8).
    pub fn required_role(&self) -> Role {
        use PlanStatement::*;
        match self {
            CreateBackupPolicy { .. }
            | CreateBackupPlan { .. }
            | AlterBackupPlanEnable { .. }
            | AlterBackupPlanSet { .. }
            | DropBackupPlan { .. }
            | DropBackupPolicy { .. } => Role::Admin,
            RunBackupPlan { .. } => Role::Operator,
        }
    }

    /// The statement's name as a DBA reads it.
    pub fn name(&self) -> &'static str {
        use PlanStatement::*;
        match self {
            CreateBackupPolicy { .. } => "CREATE BACKUP POLICY",
            CreateBackupPlan { .. } => "CREATE BACKUP PLAN",
            AlterBackupPlanEnable { .. } | AlterBackupPlanSet { .. } => "ALTER BACKUP PLAN",
            DropBackupPlan { .. } => "DROP BACKUP PLAN",
            DropBackupPolicy { .. } => "DROP BACKUP POLICY",
            RunBackupPlan { .. } => "ALTER SYSTEM RUN BACKUP PLAN",
        }
    }

    /// Whether the statement starts a job, and so may end with `WAIT` (SPEC §2.9).
    pub fn starts_job(&self) -> bool {
        use PlanStatement::*;
        matches!(self, RunBackupPlan { .. })
    }
}

impl fmt::Display for PlanStatement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use PlanStatement::*;
        match self {
            CreateBackupPolicy {
                name,
                schedule,
                timezone,
            } => {
                write!(
                    f,
                    "CREATE BACKUP POLICY {} SCHEDULE = {}",
                    Ident(name),
                    Literal(schedule)
                )?;
                string_clause(f, "TIMEZONE", timezone)
            }
            CreateBackupPlan {
                name,
                tenants,
                policies,
                chain_length,
                retention,
                notify,
            } => {
                write!(
                    f,
                    "CREATE BACKUP PLAN {} FOR TENANT = {} POLICY = {}",
                    Ident(name),
                    Idents(tenants),
                    Idents(policies)
                )?;
                if let Some(n) = chain_length {
                    write!(f, " CHAIN_LENGTH = {n}")?;
                }
                if let Some(retention) = retention {
                    write!(f, " RETENTION = {retention}")?;
                }
                string_clause(f, "NOTIFY", notify)
            }
            AlterBackupPlanEnable { name, enable } => write!(
                f,
                "ALTER BACKUP PLAN {} {}",
                Ident(name),
                if *enable { "ENABLE" } else { "DISABLE" }
            ),
            AlterBackupPlanSet { name, change } => {
                write!(f, "ALTER BACKUP PLAN {} SET {change}", Ident(name))
            }
            DropBackupPlan { name } => write!(f, "DROP BACKUP PLAN {}", Ident(name)),
            DropBackupPolicy { name } => write!(f, "DROP BACKUP POLICY {}", Ident(name)),
            RunBackupPlan { name } => write!(f, "ALTER SYSTEM RUN BACKUP PLAN {}", Ident(name)),
        }
    }
}

pub(super) const HEADS: &[Head] = &[
    Head {
        words: &["CREATE", "BACKUP", "POLICY"],
        parse: create_backup_policy,
    },
    Head {
        words: &["CREATE", "BACKUP", "PLAN"],
        parse: create_backup_plan,
    },
    Head {
        words: &["ALTER", "BACKUP", "PLAN"],
        parse: alter_backup_plan,
    },
    Head {
        words: &["DROP", "BACKUP", "PLAN"],
        parse: |c| {
            Ok(Statement::Plan(PlanStatement::DropBackupPlan {
                name: c.parse_name()?,
            }))
        },
    },
    Head {
        words: &["DROP", "BACKUP", "POLICY"],
        parse: |c| {
            Ok(Statement::Plan(PlanStatement::DropBackupPolicy {
                name: c.parse_name()?,
            }))
        },
    },
    Head {
        words: &["ALTER", "SYSTEM", "RUN", "BACKUP", "PLAN"],
        parse: |c| {
            Ok(Statement::Plan(PlanStatement::RunBackupPlan {
                name: c.parse_name()?,
            }))
        },
    },
];

/// `CREATE BACKUP POLICY name SCHEDULE [=] 'cron' [TIMEZONE [=] 'Area/City']`
fn create_backup_policy(c: &mut Cursor) -> Result<Statement> {
    let name = c.parse_name()?;
    c.expect_keyword("SCHEDULE")?;
    c.eat_eq();
    let schedule = c.parse_string()?;
    let timezone = c.parse_string_clause("TIMEZONE")?;
    Ok(Statement::Plan(PlanStatement::CreateBackupPolicy {
        name,
        schedule,
        timezone,
    }))
}

/// `CREATE BACKUP PLAN name FOR TENANT [=] tl POLICY [=] p1[, p2]` and then, in any order and
/// each at most once, `CHAIN_LENGTH`, `RETENTION` and `NOTIFY`.
fn create_backup_plan(c: &mut Cursor) -> Result<Statement> {
    let name = c.parse_name()?;
    c.expect_keyword("FOR")?;
    c.expect_keyword("TENANT")?;
    let tenants = c.parse_tenant_list()?;
    c.expect_keyword("POLICY")?;
    c.eat_eq();
    let policies = c.parse_name_list()?;
    let (mut chain_length, mut retention, mut notify) = (None, None, None);
    c.parse_clauses(&["CHAIN_LENGTH", "RETENTION", "NOTIFY"], |c, keyword| {
        c.eat_eq();
        match keyword {
            "CHAIN_LENGTH" => chain_length = Some(c.parse_integer()?),
            "RETENTION" => retention = Some(parse_retention(c)?),
            _ => notify = Some(c.parse_string()?),
        }
        Ok(())
    })?;
    Ok(Statement::Plan(PlanStatement::CreateBackupPlan {
        name,
        tenants,
        policies,
        chain_length,
        retention,
        notify,
    }))
}

/// `ALTER BACKUP PLAN name {ENABLE | DISABLE | SET {TENANT | CHAIN_LENGTH | RETENTION | NOTIFY}
/// [=] value}`
fn alter_backup_plan(c: &mut Cursor) -> Result<Statement> {
    let name = c.parse_name()?;
    match c.expect_one_of(&["ENABLE", "DISABLE", "SET"])? {
        "SET" => {
            let change = parse_change(c)?;
            Ok(Statement::Plan(PlanStatement::AlterBackupPlanSet {
                name,
                change,
            }))
        }
        enable => Ok(Statement::Plan(PlanStatement::AlterBackupPlanEnable {
            name,
            enable: enable == "ENABLE",
        })),
    }
}

/// `{TENANT | CHAIN_LENGTH | RETENTION | NOTIFY} [=] value`
fn parse_change(c: &mut Cursor) -> Result<PlanChange> {
    let keyword = c.expect_one_of(&["TENANT", "CHAIN_LENGTH", "RETENTION", "NOTIFY", "POLICY"])?;
    c.eat_eq();
    Ok(match keyword {
        "TENANT" => PlanChange::Tenants(c.parse_name_list()?),
        "POLICY" => PlanChange::Policies(c.parse_name_list()?),
        "CHAIN_LENGTH" => PlanChange::ChainLength(c.parse_integer()?),
        "RETENTION" => PlanChange::Retention(parse_retention(c)?),
        _ => PlanChange::Notify(c.parse_string()?),
    })
}

/// `FOREVER` or `n CHAINS`
fn parse_retention(c: &mut Cursor) -> Result<Retention> {
    if c.eat_keyword("FOREVER") {
        return Ok(Retention::Forever);
    }
    let chains = c.parse_integer()?;
    c.expect_keyword("CHAINS")?;
    Ok(Retention::Chains(chains))
}

#[cfg(test)]
mod tests {
    use super::PlanStatement;
    use crate::sql::ast::{Command, PlanChange, Retention, Statement};
    use crate::sql::testing::{command, error, statement};

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn create_backup_policy() {
        assert_eq!(
            statement("CREATE BACKUP POLICY nightly SCHEDULE = '0 2 * * *'"),
            Statement::Plan(PlanStatement::CreateBackupPolicy {
                name: "nightly".into(),
                schedule: "0 2 * * *".into(),
                timezone: None,
            })
        );
        assert_eq!(
            statement("CREATE BACKUP POLICY n SCHEDULE '0 2 * * *' TIMEZONE = 'Europe/Paris'"),
            Statement::Plan(PlanStatement::CreateBackupPolicy {
                name: "n".into(),
                schedule: "0 2 * * *".into(),
                timezone: Some("Europe/Paris".into()),
            })
        );
    }

    #[test]
    fn create_backup_plan_minimal() {
        assert_eq!(
            statement("CREATE BACKUP PLAN p FOR TENANT = a POLICY = nightly"),
            Statement::Plan(PlanStatement::CreateBackupPlan {
                name: "p".into(),
                tenants: names(&["a"]),
                policies: names(&["nightly"]),
                chain_length: None,
                retention: None,
                notify: None,
            })
        );
    }

    #[test]
    fn create_backup_plan_clauses_in_any_order() {
        let expected = Statement::Plan(PlanStatement::CreateBackupPlan {
            name: "p".into(),
            tenants: names(&["a", "b"]),
            policies: names(&["daily", "weekly"]),
            chain_length: Some(7),
            retention: Some(Retention::Chains(3)),
            notify: Some("backup_events".into()),
        });
        assert_eq!(
            statement(
                "CREATE BACKUP PLAN p FOR TENANT a, b POLICY daily, weekly CHAIN_LENGTH = 7 \
                 RETENTION = 3 CHAINS NOTIFY = 'backup_events'"
            ),
            expected
        );
        assert_eq!(
            statement(
                "CREATE BACKUP PLAN p FOR TENANT = a, b POLICY = daily, weekly \
                 NOTIFY 'backup_events' RETENTION 3 CHAINS CHAIN_LENGTH 7"
            ),
            expected
        );
        assert_eq!(
            statement("CREATE BACKUP PLAN p FOR TENANT a POLICY d RETENTION = FOREVER"),
            Statement::Plan(PlanStatement::CreateBackupPlan {
                name: "p".into(),
                tenants: names(&["a"]),
                policies: names(&["d"]),
                chain_length: None,
                retention: Some(Retention::Forever),
                notify: None,
            })
        );
    }

    #[test]
    fn create_backup_plan_refuses_a_repeated_clause() {
        let e = error("CREATE BACKUP PLAN p FOR TENANT a POLICY d CHAIN_LENGTH 3 CHAIN_LENGTH 4");
        assert_eq!(e.position, 59);
        assert_eq!(
            e.message,
            "syntax error at or near \"CHAIN_LENGTH\": CHAIN_LENGTH is given twice"
        );
    }

    #[test]
    fn retention_needs_chains() {
        let e = error("CREATE BACKUP PLAN p FOR TENANT a POLICY d RETENTION = 3");
        assert_eq!(e.position, 57);
        assert_eq!(
            e.message,
            "syntax error at end of input: expected CHAINS after 3"
        );
    }

    #[test]
    fn enable_and_disable() {
        assert_eq!(
            statement("ALTER BACKUP PLAN p ENABLE"),
            Statement::Plan(PlanStatement::AlterBackupPlanEnable {
                name: "p".into(),
                enable: true
            })
        );
        assert_eq!(
            statement("alter backup plan p disable"),
            Statement::Plan(PlanStatement::AlterBackupPlanEnable {
                name: "p".into(),
                enable: false
            })
        );
    }

    #[test]
    fn alter_backup_plan_set() {
        let set = |change| {
            Statement::Plan(PlanStatement::AlterBackupPlanSet {
                name: "p".into(),
                change,
            })
        };
        assert_eq!(
            statement("ALTER BACKUP PLAN p SET TENANT = a, b"),
            set(PlanChange::Tenants(names(&["a", "b"])))
        );
        assert_eq!(
            statement("ALTER BACKUP PLAN p SET CHAIN_LENGTH = 30"),
            set(PlanChange::ChainLength(30))
        );
        assert_eq!(
            statement("ALTER BACKUP PLAN p SET RETENTION = 2 CHAINS"),
            set(PlanChange::Retention(Retention::Chains(2)))
        );
        assert_eq!(
            statement("ALTER BACKUP PLAN p SET RETENTION FOREVER"),
            set(PlanChange::Retention(Retention::Forever))
        );
        assert_eq!(
            statement("ALTER BACKUP PLAN p SET NOTIFY = 'https://hooks.example/x'"),
            set(PlanChange::Notify("https://hooks.example/x".into()))
        );
        // Parsed, to be refused by name when applied: a plan's policies never change.
        assert_eq!(
            statement("ALTER BACKUP PLAN p SET POLICY = q, r"),
            set(PlanChange::Policies(names(&["q", "r"])))
        );
        let e = error("ALTER BACKUP PLAN p SET SCHEDULE = q");
        assert_eq!(e.position, 25);
        assert_eq!(
            e.message,
            "syntax error at or near \"SCHEDULE\": expected TENANT, CHAIN_LENGTH, RETENTION, \
             NOTIFY or POLICY after SET"
        );
    }

    #[test]
    fn drop_and_run() {
        assert_eq!(
            statement("DROP BACKUP PLAN p"),
            Statement::Plan(PlanStatement::DropBackupPlan { name: "p".into() })
        );
        assert_eq!(
            statement("DROP BACKUP POLICY nightly"),
            Statement::Plan(PlanStatement::DropBackupPolicy {
                name: "nightly".into()
            })
        );
        assert_eq!(
            command("ALTER SYSTEM RUN BACKUP PLAN p WAIT"),
            Command {
                statement: Statement::Plan(PlanStatement::RunBackupPlan { name: "p".into() }),
                wait: true
            }
        );
    }

    #[test]
    fn unknown_word_after_create_backup() {
        let e = error("CREATE BACKUP SCHEDULE s");
        assert_eq!(e.position, 15);
        assert_eq!(
            e.message,
            "syntax error at or near \"SCHEDULE\": expected POLICY or PLAN after BACKUP"
        );
    }
}
