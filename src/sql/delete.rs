//! Deletion and retention (SPEC §2.6): deleting one backup set or archive piece, everything the
//! recovery window no longer needs, the automatic cleanup policy, and cancelling a cleanup.

use std::fmt;

use super::ast::*;
use super::cursor::{Cursor, Result};
use super::statement::Head;

/// Deletion and retention (SPEC §2.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteStatement {
    DeleteBackupset {
        set_id: i64,
        copy: Option<i64>,
    },
    DeleteBackuppiece {
        piece_id: i64,
        copy: Option<i64>,
    },
    DeleteObsoleteBackup,
    AddDeleteBackupPolicy {
        name: String,
        recovery_window: String,
        tenant: Option<String>,
    },
    DropDeleteBackupPolicy {
        name: String,
        tenant: Option<String>,
    },
    CancelDeleteBackup,
}

impl DeleteStatement {
    /// The role a session needs to run the statement (SPEC §2.8).
    pub fn required_role(&self) -> Role {
        use DeleteStatement::*;
        match self {
            DeleteBackupset { .. }
            | DeleteBackuppiece { .. }
            | DeleteObsoleteBackup
            | CancelDeleteBackup => Role::Operator,
            AddDeleteBackupPolicy { .. } | DropDeleteBackupPolicy { .. } => Role::Admin,
        }
    }

    /// The statement's name as a DBA reads it.
    pub fn name(&self) -> &'static str {
        use DeleteStatement::*;
        match self {
            DeleteBackupset { .. } => "ALTER SYSTEM DELETE BACKUPSET",
            DeleteBackuppiece { .. } => "ALTER SYSTEM DELETE BACKUPPIECE",
            DeleteObsoleteBackup => "ALTER SYSTEM DELETE OBSOLETE BACKUP",
            AddDeleteBackupPolicy { .. } => "ALTER SYSTEM ADD DELETE BACKUP POLICY",
            DropDeleteBackupPolicy { .. } => "ALTER SYSTEM DROP DELETE BACKUP POLICY",
            CancelDeleteBackup => "ALTER SYSTEM CANCEL DELETE BACKUP",
        }
    }

    /// Whether the statement starts a job, and so may end with `WAIT` (SPEC §2.9).
    pub fn starts_job(&self) -> bool {
        use DeleteStatement::*;
        matches!(
            self,
            DeleteBackupset { .. } | DeleteBackuppiece { .. } | DeleteObsoleteBackup
        )
    }
}

impl fmt::Display for DeleteStatement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DeleteStatement::*;
        match self {
            DeleteBackupset { set_id, copy } => {
                write!(f, "ALTER SYSTEM DELETE BACKUPSET {set_id}")?;
                match copy {
                    Some(copy) => write!(f, " COPY {copy}"),
                    None => Ok(()),
                }
            }
            DeleteBackuppiece { piece_id, copy } => {
                write!(f, "ALTER SYSTEM DELETE BACKUPPIECE {piece_id}")?;
                match copy {
                    Some(copy) => write!(f, " COPY {copy}"),
                    None => Ok(()),
                }
            }
            DeleteObsoleteBackup => f.write_str("ALTER SYSTEM DELETE OBSOLETE BACKUP"),
            AddDeleteBackupPolicy {
                name,
                recovery_window,
                tenant,
            } => {
                write!(
                    f,
                    "ALTER SYSTEM ADD DELETE BACKUP POLICY = {} RECOVERY_WINDOW = {}",
                    Literal(name),
                    Literal(recovery_window)
                )?;
                tenant_clause(f, tenant)
            }
            DropDeleteBackupPolicy { name, tenant } => {
                write!(
                    f,
                    "ALTER SYSTEM DROP DELETE BACKUP POLICY = {}",
                    Literal(name)
                )?;
                tenant_clause(f, tenant)
            }
            CancelDeleteBackup => f.write_str("ALTER SYSTEM CANCEL DELETE BACKUP"),
        }
    }
}

pub(super) const HEADS: &[Head] = &[
    Head {
        words: &["ALTER", "SYSTEM", "DELETE", "BACKUPSET"],
        parse: |c| {
            let (set_id, copy) = parse_id_and_copy(c)?;
            Ok(Statement::Delete(DeleteStatement::DeleteBackupset {
                set_id,
                copy,
            }))
        },
    },
    Head {
        words: &["ALTER", "SYSTEM", "DELETE", "BACKUPPIECE"],
        parse: |c| {
            let (piece_id, copy) = parse_id_and_copy(c)?;
            Ok(Statement::Delete(DeleteStatement::DeleteBackuppiece {
                piece_id,
                copy,
            }))
        },
    },
    Head {
        words: &["ALTER", "SYSTEM", "DELETE", "OBSOLETE", "BACKUP"],
        parse: |_| Ok(Statement::Delete(DeleteStatement::DeleteObsoleteBackup)),
    },
    Head {
        words: &["ALTER", "SYSTEM", "ADD", "DELETE", "BACKUP", "POLICY"],
        parse: add_delete_backup_policy,
    },
    Head {
        words: &["ALTER", "SYSTEM", "DROP", "DELETE", "BACKUP", "POLICY"],
        parse: drop_delete_backup_policy,
    },
    Head {
        words: &["ALTER", "SYSTEM", "CANCEL", "DELETE", "BACKUP"],
        parse: |_| Ok(Statement::Delete(DeleteStatement::CancelDeleteBackup)),
    },
];

/// `[=] n [COPY [=] c]`: copy 0 is the original, 1, 2, ... the backup-backup copies.
fn parse_id_and_copy(c: &mut Cursor) -> Result<(i64, Option<i64>)> {
    c.eat_eq();
    let id = c.parse_integer()?;
    let copy = if c.eat_keyword("COPY") {
        c.eat_eq();
        Some(c.parse_integer()?)
    } else {
        None
    };
    Ok((id, copy))
}

/// `ADD DELETE BACKUP POLICY [=] 'name' RECOVERY_WINDOW [=] '7d' [TENANT [=] t]`
fn add_delete_backup_policy(c: &mut Cursor) -> Result<Statement> {
    c.eat_eq();
    let name = c.parse_string()?;
    c.expect_keyword("RECOVERY_WINDOW")?;
    c.eat_eq();
    let recovery_window = c.parse_string()?;
    let tenant = c.parse_tenant_clause()?;
    Ok(Statement::Delete(DeleteStatement::AddDeleteBackupPolicy {
        name,
        recovery_window,
        tenant,
    }))
}

/// `DROP DELETE BACKUP POLICY [=] 'name' [TENANT [=] t]`
fn drop_delete_backup_policy(c: &mut Cursor) -> Result<Statement> {
    c.eat_eq();
    let name = c.parse_string()?;
    let tenant = c.parse_tenant_clause()?;
    Ok(Statement::Delete(DeleteStatement::DropDeleteBackupPolicy {
        name,
        tenant,
    }))
}

#[cfg(test)]
mod tests {
    use super::DeleteStatement;
    use crate::sql::ast::{Command, Statement};
    use crate::sql::testing::{command, error, statement};

    #[test]
    fn delete_backupset() {
        assert_eq!(
            statement("ALTER SYSTEM DELETE BACKUPSET 7"),
            Statement::Delete(DeleteStatement::DeleteBackupset {
                set_id: 7,
                copy: None
            })
        );
        assert_eq!(
            command("ALTER SYSTEM DELETE BACKUPSET 7 COPY 1 WAIT"),
            Command {
                statement: Statement::Delete(DeleteStatement::DeleteBackupset {
                    set_id: 7,
                    copy: Some(1)
                }),
                wait: true,
            }
        );
    }

    #[test]
    fn delete_backuppiece() {
        assert_eq!(
            statement("ALTER SYSTEM DELETE BACKUPPIECE 3 COPY 0"),
            Statement::Delete(DeleteStatement::DeleteBackuppiece {
                piece_id: 3,
                copy: Some(0)
            })
        );
        assert_eq!(
            statement("ALTER SYSTEM DELETE BACKUPPIECE = 3"),
            Statement::Delete(DeleteStatement::DeleteBackuppiece {
                piece_id: 3,
                copy: None
            })
        );
    }

    #[test]
    fn delete_needs_an_integer() {
        let e = error("ALTER SYSTEM DELETE BACKUPSET seven");
        assert_eq!(e.position, 31);
        assert_eq!(
            e.message,
            "syntax error at or near \"seven\": expected an integer after BACKUPSET"
        );
    }

    #[test]
    fn delete_obsolete() {
        assert_eq!(
            command("ALTER SYSTEM DELETE OBSOLETE BACKUP WAIT"),
            Command {
                statement: Statement::Delete(DeleteStatement::DeleteObsoleteBackup),
                wait: true
            }
        );
    }

    #[test]
    fn delete_policies() {
        assert_eq!(
            statement("ALTER SYSTEM ADD DELETE BACKUP POLICY = 'default' RECOVERY_WINDOW = '7d'"),
            Statement::Delete(DeleteStatement::AddDeleteBackupPolicy {
                name: "default".into(),
                recovery_window: "7d".into(),
                tenant: None,
            })
        );
        assert_eq!(
            statement("ALTER SYSTEM ADD DELETE BACKUP POLICY 'p' RECOVERY_WINDOW '1d' TENANT t"),
            Statement::Delete(DeleteStatement::AddDeleteBackupPolicy {
                name: "p".into(),
                recovery_window: "1d".into(),
                tenant: Some("t".into()),
            })
        );
        assert_eq!(
            statement("ALTER SYSTEM DROP DELETE BACKUP POLICY = 'default'"),
            Statement::Delete(DeleteStatement::DropDeleteBackupPolicy {
                name: "default".into(),
                tenant: None,
            })
        );
        assert_eq!(
            statement("ALTER SYSTEM DROP DELETE BACKUP POLICY 'default' TENANT = t"),
            Statement::Delete(DeleteStatement::DropDeleteBackupPolicy {
                name: "default".into(),
                tenant: Some("t".into()),
            })
        );
    }

    #[test]
    fn cancel_delete() {
        assert_eq!(
            statement("ALTER SYSTEM CANCEL DELETE BACKUP"),
            Statement::Delete(DeleteStatement::CancelDeleteBackup)
        );
    }
}
