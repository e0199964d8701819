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
        set_ids: Vec<i64>,
        copy: Option<i64>,
        tenant: Option<String>,
    },
    DeleteBackuppiece {
        piece_id: i64,
        copy: Option<i64>,
        tenant: Option<String>,
    },
    DeleteObsoleteBackup {
        tenant: Option<String>,
    },
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
            | DeleteObsoleteBackup { .. }
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
            DeleteObsoleteBackup { .. } => "ALTER SYSTEM DELETE OBSOLETE BACKUP",
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
            DeleteBackupset { .. } | DeleteBackuppiece { .. } | DeleteObsoleteBackup { .. }
        )
    }
}

impl fmt::Display for DeleteStatement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DeleteStatement::*;
        match self {
            DeleteBackupset {
                set_ids,
                copy,
                tenant,
            } => {
                let ids: Vec<String> = set_ids.iter().map(i64::to_string).collect();
                write!(f, "ALTER SYSTEM DELETE BACKUPSET {}", ids.join(", "))?;
                if let Some(copy) = copy {
                    write!(f, " COPY {copy}")?;
                }
                tenant_clause(f, tenant)
            }
            DeleteBackuppiece {
                piece_id,
                copy,
                tenant,
            } => {
                write!(f, "ALTER SYSTEM DELETE BACKUPPIECE {piece_id}")?;
                if let Some(copy) = copy {
                    write!(f, " COPY {copy}")?;
                }
                tenant_clause(f, tenant)
            }
            DeleteObsoleteBackup { tenant } => {
                f.write_str("ALTER SYSTEM DELETE OBSOLETE BACKUP")?;
                tenant_clause(f, tenant)
            }
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
            c.eat_eq();
            let mut set_ids = vec![c.parse_integer()?];
            while c.eat_comma() {
                set_ids.push(c.parse_integer()?);
            }
            let copy = parse_copy(c)?;
            let tenant = c.parse_tenant_clause()?;
            Ok(Statement::Delete(DeleteStatement::DeleteBackupset {
                set_ids,
                copy,
                tenant,
            }))
        },
    },
    Head {
        words: &["ALTER", "SYSTEM", "DELETE", "BACKUPPIECE"],
        parse: delete_piece,
    },
    Head {
        words: &["ALTER", "SYSTEM", "DELETE", "ARCHIVELOG_PIECE"],
        parse: delete_piece,
    },
    Head {
        words: &["ALTER", "SYSTEM", "DELETE", "OBSOLETE", "BACKUP"],
        parse: |c| {
            let tenant = c.parse_tenant_clause()?;
            Ok(Statement::Delete(DeleteStatement::DeleteObsoleteBackup {
                tenant,
            }))
        },
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

/// `[COPY [=] c]`: copy 0 is the original, 1, 2, ... the backup-backup copies.
fn parse_copy(c: &mut Cursor) -> Result<Option<i64>> {
    if c.eat_keyword("COPY") {
        c.eat_eq();
        Ok(Some(c.parse_integer()?))
    } else {
        Ok(None)
    }
}

/// `DELETE {BACKUPPIECE | ARCHIVELOG_PIECE} [=] n [COPY [=] c] [TENANT [=] t]`
fn delete_piece(c: &mut Cursor) -> Result<Statement> {
    c.eat_eq();
    let piece_id = c.parse_integer()?;
    let copy = parse_copy(c)?;
    let tenant = c.parse_tenant_clause()?;
    Ok(Statement::Delete(DeleteStatement::DeleteBackuppiece {
        piece_id,
        copy,
        tenant,
    }))
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
                set_ids: vec![7],
                copy: None,
                tenant: None,
            })
        );
        assert_eq!(
            command("ALTER SYSTEM DELETE BACKUPSET 7 COPY 1 WAIT"),
            Command {
                statement: Statement::Delete(DeleteStatement::DeleteBackupset {
                    set_ids: vec![7],
                    copy: Some(1),
                    tenant: None,
                }),
                wait: true,
            }
        );
    }

    #[test]
    fn delete_several_backupsets_of_a_tenant() {
        let parsed = statement("ALTER SYSTEM DELETE BACKUPSET 1, 2,3 COPY = 2 TENANT = app");
        assert_eq!(
            parsed,
            Statement::Delete(DeleteStatement::DeleteBackupset {
                set_ids: vec![1, 2, 3],
                copy: Some(2),
                tenant: Some("app".into()),
            })
        );
        assert_eq!(
            parsed.to_string(),
            "ALTER SYSTEM DELETE BACKUPSET 1, 2, 3 COPY 2 TENANT = app"
        );
    }

    #[test]
    fn delete_backuppiece() {
        assert_eq!(
            statement("ALTER SYSTEM DELETE BACKUPPIECE 3 COPY 0"),
            Statement::Delete(DeleteStatement::DeleteBackuppiece {
                piece_id: 3,
                copy: Some(0),
                tenant: None,
            })
        );
        assert_eq!(
            statement("ALTER SYSTEM DELETE BACKUPPIECE = 3"),
            Statement::Delete(DeleteStatement::DeleteBackuppiece {
                piece_id: 3,
                copy: None,
                tenant: None,
            })
        );
        assert_eq!(
            statement("ALTER SYSTEM DELETE ARCHIVELOG_PIECE 4 TENANT = t"),
            Statement::Delete(DeleteStatement::DeleteBackuppiece {
                piece_id: 4,
                copy: None,
                tenant: Some("t".into()),
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
                statement: Statement::Delete(DeleteStatement::DeleteObsoleteBackup {
                    tenant: None
                }),
                wait: true
            }
        );
        assert_eq!(
            statement("ALTER SYSTEM DELETE OBSOLETE BACKUP TENANT app"),
            Statement::Delete(DeleteStatement::DeleteObsoleteBackup {
                tenant: Some("app".into())
            })
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
