//! Data backup and its control (SPEC §2.2): `ALTER SYSTEM BACKUP`, the immediate, graceful and
//! suspending stops, resuming, restarting or deleting a restartable context, and the catalog-only
//! `CANCEL ALL BACKUP FORCE`.

use std::fmt;

use super::ast::*;
use super::cursor::{Cursor, Result};
use super::statement::Head;

/// Data backup and its control (SPEC §2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupStatement {
    Backup {
        incremental: bool,
        scope: BackupScope,
        plus_archivelog: bool,
        description: Option<String>,
    },
    CancelBackup {
        tenants: Option<Vec<String>>,
    },
    StopBackup {
        tenants: Option<Vec<String>>,
    },
    SuspendBackup {
        tenants: Option<Vec<String>>,
    },
    ResumeBackup {
        tenants: Option<Vec<String>>,
    },
    RestartBackupContext {
        context_id: String,
    },
    DeleteBackupContext {
        context_id: String,
    },
    CancelAllBackupForce,
}

impl BackupStatement {
    /// The role a session needs to run the statement (SPEC §2.8).
    pub fn required_role(&self) -> Role {
        Role::Operator
    }

    /// The statement's name as a DBA reads it.
    pub fn name(&self) -> &'static str {
        use BackupStatement::*;
        match self {
            Backup {
                scope: BackupScope::Database,
                ..
            } => "ALTER SYSTEM BACKUP DATABASE",
            Backup {
                scope: BackupScope::Tenants(_),
                ..
            } => "ALTER SYSTEM BACKUP TENANT",
            CancelBackup { .. } => "ALTER SYSTEM CANCEL BACKUP",
            StopBackup { .. } => "ALTER SYSTEM STOP BACKUP",
            SuspendBackup { .. } => "ALTER SYSTEM SUSPEND BACKUP",
            ResumeBackup { .. } => "ALTER SYSTEM RESUME BACKUP",
            RestartBackupContext { .. } => "ALTER SYSTEM RESTART BACKUP CONTEXT",
            DeleteBackupContext { .. } => "ALTER SYSTEM DELETE BACKUP CONTEXT",
            CancelAllBackupForce => "ALTER SYSTEM CANCEL ALL BACKUP FORCE",
        }
    }

    /// Whether the statement starts a job, and so may end with `WAIT` (SPEC §2.9).
    pub fn starts_job(&self) -> bool {
        use BackupStatement::*;
        matches!(
            self,
            Backup { .. } | ResumeBackup { .. } | RestartBackupContext { .. }
        )
    }
}

impl fmt::Display for BackupStatement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use BackupStatement::*;
        match self {
            Backup {
                incremental,
                scope,
                plus_archivelog,
                description,
            } => {
                f.write_str("ALTER SYSTEM BACKUP ")?;
                if *incremental {
                    f.write_str("INCREMENTAL ")?;
                }
                scope.fmt(f)?;
                if *plus_archivelog {
                    f.write_str(" PLUS ARCHIVELOG")?;
                }
                string_clause(f, "DESCRIPTION", description)
            }
            CancelBackup { tenants } => {
                f.write_str("ALTER SYSTEM CANCEL BACKUP")?;
                tenants_clause(f, tenants)
            }
            StopBackup { tenants } => {
                f.write_str("ALTER SYSTEM STOP BACKUP")?;
                tenants_clause(f, tenants)
            }
            SuspendBackup { tenants } => {
                f.write_str("ALTER SYSTEM SUSPEND BACKUP")?;
                tenants_clause(f, tenants)
            }
            ResumeBackup { tenants } => {
                f.write_str("ALTER SYSTEM RESUME BACKUP")?;
                tenants_clause(f, tenants)
            }
            RestartBackupContext { context_id } => write!(
                f,
                "ALTER SYSTEM RESTART BACKUP CONTEXT {}",
                Literal(context_id)
            ),
            DeleteBackupContext { context_id } => write!(
                f,
                "ALTER SYSTEM DELETE BACKUP CONTEXT {}",
                Literal(context_id)
            ),
            CancelAllBackupForce => f.write_str("ALTER SYSTEM CANCEL ALL BACKUP FORCE"),
        }
    }
}

pub(super) const HEADS: &[Head] = &[
    Head {
        words: &["ALTER", "SYSTEM", "BACKUP"],
        parse: backup,
    },
    Head {
        words: &["ALTER", "SYSTEM", "CANCEL", "BACKUP"],
        parse: |c| {
            Ok(Statement::Backup(BackupStatement::CancelBackup {
                tenants: c.parse_tenants_clause()?,
            }))
        },
    },
    Head {
        words: &["ALTER", "SYSTEM", "STOP", "BACKUP"],
        parse: |c| {
            Ok(Statement::Backup(BackupStatement::StopBackup {
                tenants: c.parse_tenants_clause()?,
            }))
        },
    },
    Head {
        words: &["ALTER", "SYSTEM", "SUSPEND", "BACKUP"],
        parse: |c| {
            Ok(Statement::Backup(BackupStatement::SuspendBackup {
                tenants: c.parse_tenants_clause()?,
            }))
        },
    },
    Head {
        words: &["ALTER", "SYSTEM", "RESUME", "BACKUP"],
        parse: |c| {
            Ok(Statement::Backup(BackupStatement::ResumeBackup {
                tenants: c.parse_tenants_clause()?,
            }))
        },
    },
    Head {
        words: &["ALTER", "SYSTEM", "RESTART", "BACKUP", "CONTEXT"],
        parse: |c| {
            Ok(Statement::Backup(BackupStatement::RestartBackupContext {
                context_id: c.parse_string()?,
            }))
        },
    },
    Head {
        words: &["ALTER", "SYSTEM", "DELETE", "BACKUP", "CONTEXT"],
        parse: |c| {
            Ok(Statement::Backup(BackupStatement::DeleteBackupContext {
                context_id: c.parse_string()?,
            }))
        },
    },
    Head {
        words: &["ALTER", "SYSTEM", "CANCEL", "ALL", "BACKUP", "FORCE"],
        parse: |_| Ok(Statement::Backup(BackupStatement::CancelAllBackupForce)),
    },
];

/// `BACKUP [INCREMENTAL] {DATABASE | TENANT [=] tl} [PLUS ARCHIVELOG] [DESCRIPTION [=] 'x']`
fn backup(c: &mut Cursor) -> Result<Statement> {
    let incremental = c.eat_keyword("INCREMENTAL");
    let scope = match c.expect_one_of(&["DATABASE", "TENANT"])? {
        "DATABASE" => BackupScope::Database,
        _ => BackupScope::Tenants(c.parse_tenant_list()?),
    };
    let plus_archivelog = c.eat_keyword("PLUS");
    if plus_archivelog {
        c.expect_keyword("ARCHIVELOG")?;
    }
    let description = c.parse_string_clause("DESCRIPTION")?;
    Ok(Statement::Backup(BackupStatement::Backup {
        incremental,
        scope,
        plus_archivelog,
        description,
    }))
}

#[cfg(test)]
mod tests {
    use super::BackupStatement;
    use crate::sql::ast::{BackupScope, Command, Statement};
    use crate::sql::testing::{command, error, statement};

    fn backup(incremental: bool, scope: BackupScope, plus: bool, desc: Option<&str>) -> Statement {
        Statement::Backup(BackupStatement::Backup {
            incremental,
            scope,
            plus_archivelog: plus,
            description: desc.map(Into::into),
        })
    }

    fn tenants(names: &[&str]) -> Option<Vec<String>> {
        Some(names.iter().map(|n| n.to_string()).collect())
    }

    #[test]
    fn backup_database() {
        assert_eq!(
            statement("ALTER SYSTEM BACKUP DATABASE"),
            backup(false, BackupScope::Database, false, None)
        );
        assert_eq!(
            statement("alter system backup incremental database plus archivelog description 'n'"),
            backup(true, BackupScope::Database, true, Some("n"))
        );
        assert_eq!(
            command("ALTER SYSTEM BACKUP DATABASE DESCRIPTION = 'it''s nightly' WAIT"),
            Command {
                statement: backup(false, BackupScope::Database, false, Some("it's nightly")),
                wait: true,
            }
        );
    }

    #[test]
    fn backup_tenants() {
        let scope = BackupScope::Tenants(vec!["a".into(), "B".into()]);
        assert_eq!(
            statement("ALTER SYSTEM BACKUP TENANT = A, \"B\""),
            backup(false, scope.clone(), false, None)
        );
        assert_eq!(
            statement("ALTER SYSTEM BACKUP INCREMENTAL TENANT a,\"B\" PLUS ARCHIVELOG"),
            backup(true, scope, true, None)
        );
    }

    #[test]
    fn unknown_word_after_backup() {
        let e = error("ALTER SYSTEM BACKUP FOO");
        assert_eq!(e.position, 21);
        assert_eq!(
            e.message,
            "syntax error at or near \"FOO\": expected BACKUPSET, BACKUPPIECE, INCREMENTAL, \
             DATABASE or TENANT after BACKUP"
        );
    }

    #[test]
    fn plus_needs_archivelog() {
        let e = error("ALTER SYSTEM BACKUP DATABASE PLUS");
        assert_eq!(e.position, 34);
        assert_eq!(
            e.message,
            "syntax error at end of input: expected ARCHIVELOG after PLUS"
        );
    }

    #[test]
    fn stops_with_and_without_tenants() {
        assert_eq!(
            statement("ALTER SYSTEM CANCEL BACKUP"),
            Statement::Backup(BackupStatement::CancelBackup { tenants: None })
        );
        assert_eq!(
            statement("ALTER SYSTEM CANCEL BACKUP TENANT = a, b"),
            Statement::Backup(BackupStatement::CancelBackup {
                tenants: tenants(&["a", "b"])
            })
        );
        assert_eq!(
            statement("ALTER SYSTEM STOP BACKUP TENANT t"),
            Statement::Backup(BackupStatement::StopBackup {
                tenants: tenants(&["t"])
            })
        );
        assert_eq!(
            statement("ALTER SYSTEM STOP BACKUP"),
            Statement::Backup(BackupStatement::StopBackup { tenants: None })
        );
        assert_eq!(
            statement("ALTER SYSTEM SUSPEND BACKUP TENANT = t"),
            Statement::Backup(BackupStatement::SuspendBackup {
                tenants: tenants(&["t"])
            })
        );
        assert_eq!(
            statement("ALTER SYSTEM SUSPEND BACKUP"),
            Statement::Backup(BackupStatement::SuspendBackup { tenants: None })
        );
    }

    #[test]
    fn resume_starts_a_job_and_may_wait() {
        assert_eq!(
            statement("ALTER SYSTEM RESUME BACKUP"),
            Statement::Backup(BackupStatement::ResumeBackup { tenants: None })
        );
        assert_eq!(
            command("ALTER SYSTEM RESUME BACKUP TENANT = t WAIT"),
            Command {
                statement: Statement::Backup(BackupStatement::ResumeBackup {
                    tenants: tenants(&["t"])
                }),
                wait: true,
            }
        );
    }

    #[test]
    fn cancel_does_not_wait() {
        let e = error("ALTER SYSTEM CANCEL BACKUP WAIT");
        assert_eq!(e.position, 28);
        assert_eq!(
            e.message,
            "syntax error at or near \"WAIT\": ALTER SYSTEM CANCEL BACKUP does not start a job, \
             so it cannot WAIT"
        );
    }

    #[test]
    fn contexts() {
        assert_eq!(
            command("ALTER SYSTEM RESTART BACKUP CONTEXT 'ctx-7' WAIT"),
            Command {
                statement: Statement::Backup(BackupStatement::RestartBackupContext {
                    context_id: "ctx-7".into()
                }),
                wait: true,
            }
        );
        assert_eq!(
            statement("ALTER SYSTEM DELETE BACKUP CONTEXT 'ctx-7'"),
            Statement::Backup(BackupStatement::DeleteBackupContext {
                context_id: "ctx-7".into()
            })
        );
    }

    #[test]
    fn cancel_all_backup_force() {
        assert_eq!(
            statement("ALTER SYSTEM CANCEL ALL BACKUP FORCE"),
            Statement::Backup(BackupStatement::CancelAllBackupForce)
        );
        let e = error("ALTER SYSTEM CANCEL ALL BACKUP");
        assert_eq!(e.position, 31);
        assert_eq!(
            e.message,
            "syntax error at end of input: expected FORCE after BACKUP"
        );
    }
}
