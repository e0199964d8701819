//! Deletion and retention (SPEC §2.6): deleting one backup set or archive piece, everything the
//! recovery window no longer needs, the automatic cleanup policy, and cancelling a cleanup.

use super::ast::Statement;
use super::cursor::{Cursor, Result};
use super::statement::Head;

pub(super) const HEADS: &[Head] = &[
    Head {
        words: &["ALTER", "SYSTEM", "DELETE", "BACKUPSET"],
        parse: |c| {
            let (set_id, copy) = parse_id_and_copy(c)?;
            Ok(Statement::DeleteBackupset { set_id, copy })
        },
    },
    Head {
        words: &["ALTER", "SYSTEM", "DELETE", "BACKUPPIECE"],
        parse: |c| {
            let (piece_id, copy) = parse_id_and_copy(c)?;
            Ok(Statement::DeleteBackuppiece { piece_id, copy })
        },
    },
    Head {
        words: &["ALTER", "SYSTEM", "DELETE", "OBSOLETE", "BACKUP"],
        parse: |_| Ok(Statement::DeleteObsoleteBackup),
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
        parse: |_| Ok(Statement::CancelDeleteBackup),
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
    Ok(Statement::AddDeleteBackupPolicy {
        name,
        recovery_window,
        tenant,
    })
}

/// `DROP DELETE BACKUP POLICY [=] 'name' [TENANT [=] t]`
fn drop_delete_backup_policy(c: &mut Cursor) -> Result<Statement> {
    c.eat_eq();
    let name = c.parse_string()?;
    let tenant = c.parse_tenant_clause()?;
    Ok(Statement::DropDeleteBackupPolicy { name, tenant })
}

#[cfg(test)]
mod tests {
    use crate::sql::ast::{Command, Statement};
    use crate::sql::testing::{command, error, statement};

    #[test]
    fn delete_backupset() {
        assert_eq!(
            statement("ALTER SYSTEM DELETE BACKUPSET 7"),
            Statement::DeleteBackupset {
                set_id: 7,
                copy: None
            }
        );
        assert_eq!(
            command("ALTER SYSTEM DELETE BACKUPSET 7 COPY 1 WAIT"),
            Command {
                statement: Statement::DeleteBackupset {
                    set_id: 7,
                    copy: Some(1)
                },
                wait: true,
            }
        );
    }

    #[test]
    fn delete_backuppiece() {
        assert_eq!(
            statement("ALTER SYSTEM DELETE BACKUPPIECE 3 COPY 0"),
            Statement::DeleteBackuppiece {
                piece_id: 3,
                copy: Some(0)
            }
        );
        assert_eq!(
            statement("ALTER SYSTEM DELETE BACKUPPIECE = 3"),
            Statement::DeleteBackuppiece {
                piece_id: 3,
                copy: None
            }
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
                statement: Statement::DeleteObsoleteBackup,
                wait: true
            }
        );
    }

    #[test]
    fn delete_policies() {
        assert_eq!(
            statement("ALTER SYSTEM ADD DELETE BACKUP POLICY = 'default' RECOVERY_WINDOW = '7d'"),
            Statement::AddDeleteBackupPolicy {
                name: "default".into(),
                recovery_window: "7d".into(),
                tenant: None,
            }
        );
        assert_eq!(
            statement("ALTER SYSTEM ADD DELETE BACKUP POLICY 'p' RECOVERY_WINDOW '1d' TENANT t"),
            Statement::AddDeleteBackupPolicy {
                name: "p".into(),
                recovery_window: "1d".into(),
                tenant: Some("t".into()),
            }
        );
        assert_eq!(
            statement("ALTER SYSTEM DROP DELETE BACKUP POLICY = 'default'"),
            Statement::DropDeleteBackupPolicy {
                name: "default".into(),
                tenant: None,
            }
        );
        assert_eq!(
            statement("ALTER SYSTEM DROP DELETE BACKUP POLICY 'default' TENANT = t"),
            Statement::DropDeleteBackupPolicy {
                name: "default".into(),
                tenant: Some("t".into()),
            }
        );
    }

    #[test]
    fn cancel_delete() {
        assert_eq!(
            statement("ALTER SYSTEM CANCEL DELETE BACKUP"),
            Statement::CancelDeleteBackup
        );
    }
}
