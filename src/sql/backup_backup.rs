//! Backup-backup (SPEC §2.4): copying backup sets and archive pieces to `BACKUP_BACKUP_DEST`,
//! continuous copying of archive log, and cancelling or stopping the copy jobs.

use std::fmt;

use super::ast::*;
use super::cursor::{Cursor, Result};
use super::statement::Head;

/// Backup-backup: copies to a second destination (SPEC §2.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupBackupStatement {
    BackupBackupset {
        selector: CopySelector,
        tenant: Option<String>,
        dest: Option<String>,
    },
    BackupBackuppiece {
        selector: CopySelector,
        with_active: bool,
        tenant: Option<String>,
        dest: Option<String>,
    },
    StartBackupArchivelog,
    StopBackupArchivelog,
    CancelBackupBackupset,
    CancelBackupBackuppiece,
    StopBackupBackupset,
    /// Parsed so that it can be refused with the CANCEL to use: a piece copy has no graceful
    /// stop.
    StopBackupBackuppiece,
}

impl BackupBackupStatement {
    /// The role a session needs to run the statement (SPEC §2.8).
    pub fn required_role(&self) -> Role {
        Role::Operator
    }

    /// The statement's name as a DBA reads it.
    pub fn name(&self) -> &'static str {
        use BackupBackupStatement::*;
        match self {
            BackupBackupset { .. } => "ALTER SYSTEM BACKUP BACKUPSET",
            BackupBackuppiece { .. } => "ALTER SYSTEM BACKUP BACKUPPIECE",
            StartBackupArchivelog => "ALTER SYSTEM START BACKUP ARCHIVELOG",
            StopBackupArchivelog => "ALTER SYSTEM STOP BACKUP ARCHIVELOG",
            CancelBackupBackupset => "ALTER SYSTEM CANCEL BACKUP BACKUPSET",
            CancelBackupBackuppiece => "ALTER SYSTEM CANCEL BACKUP BACKUPPIECE",
            StopBackupBackupset => "ALTER SYSTEM STOP BACKUP BACKUPSET",
            StopBackupBackuppiece => "ALTER SYSTEM STOP BACKUP BACKUPPIECE",
        }
    }

    /// Whether the statement starts a job, and so may end with `WAIT` (SPEC §2.9).
    pub fn starts_job(&self) -> bool {
        use BackupBackupStatement::*;
        matches!(
            self,
            BackupBackupset { .. } | BackupBackuppiece { .. } | StartBackupArchivelog
        )
    }
}

impl fmt::Display for BackupBackupStatement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use BackupBackupStatement::*;
        match self {
            BackupBackupset {
                selector,
                tenant,
                dest,
            } => {
                write!(f, "ALTER SYSTEM BACKUP BACKUPSET {selector}")?;
                tenant_clause(f, tenant)?;
                string_clause(f, "BACKUP_BACKUP_DEST", dest)
            }
            BackupBackuppiece {
                selector,
                with_active,
                tenant,
                dest,
            } => {
                write!(f, "ALTER SYSTEM BACKUP BACKUPPIECE {selector}")?;
                if *with_active {
                    f.write_str(" WITH ACTIVE BACKUPPIECE")?;
                }
                tenant_clause(f, tenant)?;
                string_clause(f, "BACKUP_BACKUP_DEST", dest)
            }
            StartBackupArchivelog => f.write_str("ALTER SYSTEM START BACKUP ARCHIVELOG"),
            StopBackupArchivelog => f.write_str("ALTER SYSTEM STOP BACKUP ARCHIVELOG"),
            CancelBackupBackupset => f.write_str("ALTER SYSTEM CANCEL BACKUP BACKUPSET"),
            CancelBackupBackuppiece => f.write_str("ALTER SYSTEM CANCEL BACKUP BACKUPPIECE"),
            StopBackupBackupset => f.write_str("ALTER SYSTEM STOP BACKUP BACKUPSET"),
            StopBackupBackuppiece => f.write_str("ALTER SYSTEM STOP BACKUP BACKUPPIECE"),
        }
    }
}

pub(super) const HEADS: &[Head] = &[
    Head {
        words: &["ALTER", "SYSTEM", "BACKUP", "BACKUPSET"],
        parse: backup_backupset,
    },
    Head {
        words: &["ALTER", "SYSTEM", "BACKUP", "BACKUPPIECE"],
        parse: backup_backuppiece,
    },
    Head {
        words: &["ALTER", "SYSTEM", "START", "BACKUP", "ARCHIVELOG"],
        parse: |_| {
            Ok(Statement::BackupBackup(
                BackupBackupStatement::StartBackupArchivelog,
            ))
        },
    },
    Head {
        words: &["ALTER", "SYSTEM", "STOP", "BACKUP", "ARCHIVELOG"],
        parse: |_| {
            Ok(Statement::BackupBackup(
                BackupBackupStatement::StopBackupArchivelog,
            ))
        },
    },
    Head {
        words: &["ALTER", "SYSTEM", "CANCEL", "BACKUP", "BACKUPSET"],
        parse: |_| {
            Ok(Statement::BackupBackup(
                BackupBackupStatement::CancelBackupBackupset,
            ))
        },
    },
    Head {
        words: &["ALTER", "SYSTEM", "CANCEL", "BACKUP", "BACKUPPIECE"],
        parse: |_| {
            Ok(Statement::BackupBackup(
                BackupBackupStatement::CancelBackupBackuppiece,
            ))
        },
    },
    Head {
        words: &["ALTER", "SYSTEM", "STOP", "BACKUP", "BACKUPSET"],
        parse: |_| {
            Ok(Statement::BackupBackup(
                BackupBackupStatement::StopBackupBackupset,
            ))
        },
    },
    Head {
        words: &["ALTER", "SYSTEM", "STOP", "BACKUP", "BACKUPPIECE"],
        parse: |_| {
            Ok(Statement::BackupBackup(
                BackupBackupStatement::StopBackupBackuppiece,
            ))
        },
    },
];

/// `BACKUP BACKUPSET {[=] n | ALL [NOT BACKED UP n TIMES]} [TENANT [=] t]
/// [BACKUP_BACKUP_DEST [=] 'uri']`
fn backup_backupset(c: &mut Cursor) -> Result<Statement> {
    let selector = parse_selector(c)?;
    let tenant = c.parse_tenant_clause()?;
    let dest = c.parse_string_clause("BACKUP_BACKUP_DEST")?;
    Ok(Statement::BackupBackup(
        BackupBackupStatement::BackupBackupset {
            selector,
            tenant,
            dest,
        },
    ))
}

/// Like `BACKUP BACKUPSET`, with `[WITH ACTIVE BACKUPPIECE]` after the selector to copy the
/// piece still being written as well.
fn backup_backuppiece(c: &mut Cursor) -> Result<Statement> {
    let selector = parse_selector(c)?;
    let with_active = c.eat_keyword("WITH");
    if with_active {
        c.expect_keyword("ACTIVE")?;
        c.expect_keyword("BACKUPPIECE")?;
    }
    let tenant = c.parse_tenant_clause()?;
    let dest = c.parse_string_clause("BACKUP_BACKUP_DEST")?;
    Ok(Statement::BackupBackup(
        BackupBackupStatement::BackupBackuppiece {
            selector,
            with_active,
            tenant,
            dest,
        },
    ))
}

/// `[=] n` or `ALL [NOT BACKED UP n TIMES]`
fn parse_selector(c: &mut Cursor) -> Result<CopySelector> {
    if !c.eat_keyword("ALL") {
        c.eat_eq();
        return c.parse_integer().map(CopySelector::One);
    }
    let mut not_backed_up_times = None;
    if c.eat_keyword("NOT") {
        for keyword in ["BACKED", "UP"] {
            c.expect_keyword(keyword)?;
        }
        not_backed_up_times = Some(c.parse_integer()?);
        c.expect_keyword("TIMES")?;
    }
    Ok(CopySelector::All {
        not_backed_up_times,
    })
}

#[cfg(test)]
mod tests {
    use super::BackupBackupStatement;
    use crate::sql::ast::{Command, CopySelector, Statement};
    use crate::sql::testing::{command, error, statement};

    #[test]
    fn backup_one_backupset() {
        assert_eq!(
            statement("ALTER SYSTEM BACKUP BACKUPSET = 12"),
            Statement::BackupBackup(BackupBackupStatement::BackupBackupset {
                selector: CopySelector::One(12),
                tenant: None,
                dest: None,
            })
        );
        assert_eq!(
            command(
                "ALTER SYSTEM BACKUP BACKUPSET 12 TENANT t BACKUP_BACKUP_DEST 'file:///c' WAIT"
            ),
            Command {
                statement: Statement::BackupBackup(BackupBackupStatement::BackupBackupset {
                    selector: CopySelector::One(12),
                    tenant: Some("t".into()),
                    dest: Some("file:///c".into()),
                }),
                wait: true,
            }
        );
    }

    #[test]
    fn backup_all_backupsets() {
        assert_eq!(
            statement("ALTER SYSTEM BACKUP BACKUPSET ALL"),
            Statement::BackupBackup(BackupBackupStatement::BackupBackupset {
                selector: CopySelector::All {
                    not_backed_up_times: None
                },
                tenant: None,
                dest: None,
            })
        );
        assert_eq!(
            statement(
                "ALTER SYSTEM BACKUP BACKUPSET ALL NOT BACKED UP 2 TIMES TENANT = t \
                 BACKUP_BACKUP_DEST = 'file:///c'"
            ),
            Statement::BackupBackup(BackupBackupStatement::BackupBackupset {
                selector: CopySelector::All {
                    not_backed_up_times: Some(2)
                },
                tenant: Some("t".into()),
                dest: Some("file:///c".into()),
            })
        );
    }

    #[test]
    fn backup_backuppieces() {
        assert_eq!(
            statement("ALTER SYSTEM BACKUP BACKUPPIECE = 3"),
            Statement::BackupBackup(BackupBackupStatement::BackupBackuppiece {
                selector: CopySelector::One(3),
                with_active: false,
                tenant: None,
                dest: None,
            })
        );
        assert_eq!(
            statement(
                "ALTER SYSTEM BACKUP BACKUPPIECE ALL NOT BACKED UP 1 TIMES \
                 WITH ACTIVE BACKUPPIECE TENANT = t BACKUP_BACKUP_DEST = 'file:///c'"
            ),
            Statement::BackupBackup(BackupBackupStatement::BackupBackuppiece {
                selector: CopySelector::All {
                    not_backed_up_times: Some(1)
                },
                with_active: true,
                tenant: Some("t".into()),
                dest: Some("file:///c".into()),
            })
        );
        assert_eq!(
            statement("ALTER SYSTEM BACKUP BACKUPPIECE ALL WITH ACTIVE BACKUPPIECE"),
            Statement::BackupBackup(BackupBackupStatement::BackupBackuppiece {
                selector: CopySelector::All {
                    not_backed_up_times: None
                },
                with_active: true,
                tenant: None,
                dest: None,
            })
        );
    }

    #[test]
    fn archivelog_copying_and_job_control() {
        assert_eq!(
            command("ALTER SYSTEM START BACKUP ARCHIVELOG WAIT"),
            Command {
                statement: Statement::BackupBackup(BackupBackupStatement::StartBackupArchivelog),
                wait: true
            }
        );
        assert_eq!(
            statement("ALTER SYSTEM STOP BACKUP ARCHIVELOG"),
            Statement::BackupBackup(BackupBackupStatement::StopBackupArchivelog)
        );
        assert_eq!(
            statement("ALTER SYSTEM CANCEL BACKUP BACKUPSET"),
            Statement::BackupBackup(BackupBackupStatement::CancelBackupBackupset)
        );
        assert_eq!(
            statement("ALTER SYSTEM CANCEL BACKUP BACKUPPIECE"),
            Statement::BackupBackup(BackupBackupStatement::CancelBackupBackuppiece)
        );
        assert_eq!(
            statement("ALTER SYSTEM STOP BACKUP BACKUPSET"),
            Statement::BackupBackup(BackupBackupStatement::StopBackupBackupset)
        );
        assert_eq!(
            statement("ALTER SYSTEM STOP BACKUP BACKUPPIECE"),
            Statement::BackupBackup(BackupBackupStatement::StopBackupBackuppiece)
        );
    }

    #[test]
    fn bad_integer() {
        let e = error("ALTER SYSTEM BACKUP BACKUPSET = 1.5");
        assert_eq!(e.position, 33);
        assert_eq!(
            e.message,
            "syntax error at or near \"1.5\": expected an integer after ="
        );
        let e = error("ALTER SYSTEM BACKUP BACKUPSET 99999999999999999999");
        assert_eq!(e.position, 31);
        assert_eq!(
            e.message,
            "syntax error at or near \"99999999999999999999\": expected ALL or an integer that \
             fits in 64 bits after BACKUPSET"
        );
    }

    #[test]
    fn not_backed_up_needs_times() {
        let e = error("ALTER SYSTEM BACKUP BACKUPSET ALL NOT BACKED UP 2");
        assert_eq!(e.position, 50);
        assert_eq!(
            e.message,
            "syntax error at end of input: expected TIMES after 2"
        );
    }
}
