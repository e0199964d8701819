//! Tenants and taking over a destination (SPEC §2.1): `CREATE TENANT`, `ALTER TENANT ... SET
//! LOG_SOURCE`, `DROP TENANT` and `ALTER SYSTEM IMPORT BACKUP FROM 'uri'`.

use std::fmt;

use super::ast::*;
use super::cursor::{Cursor, Result};
use super::statement::Head;

/// Tenants and taking over a destination (SPEC §2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantStatement {
    CreateTenant {
        name: String,
        source: String,
        log_source: Option<String>,
        pgdata: Option<String>,
    },
    AlterTenantSetLogSource {
        name: String,
        log_source: String,
    },
    DropTenant {
        name: String,
    },
    ImportBackup {
        uri: String,
    },
    /// `ALTER SYSTEM REPAIR BACKUP DEST 'uri'`: the index rebuilt from the packs, and the
    /// catalog's view of the destination from its set descriptors.
    RepairBackupDest {
        uri: String,
    },
}

impl TenantStatement {
    /// The role a session needs to run the statement (SPEC §2.8).
    pub fn required_role(&self) -> Role {
        Role::Admin
    }

    /// The statement's name as a DBA reads it.
    pub fn name(&self) -> &'static str {
        use TenantStatement::*;
        match self {
            CreateTenant { .. } => "CREATE TENANT",
            AlterTenantSetLogSource { .. } => "ALTER TENANT",
            DropTenant { .. } => "DROP TENANT",
            ImportBackup { .. } => "ALTER SYSTEM IMPORT BACKUP",
            RepairBackupDest { .. } => "ALTER SYSTEM REPAIR BACKUP DEST",
        }
    }

    /// Whether the statement starts a job, and so may end with `WAIT` (SPEC §2.9).
    pub fn starts_job(&self) -> bool {
        false
    }
}

impl fmt::Display for TenantStatement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use TenantStatement::*;
        match self {
            CreateTenant {
                name,
                source,
                log_source,
                pgdata,
            } => {
                write!(
                    f,
                    "CREATE TENANT {} SOURCE = {}",
                    Ident(name),
                    Literal(source)
                )?;
                string_clause(f, "LOG_SOURCE", log_source)?;
                string_clause(f, "PGDATA", pgdata)
            }
            AlterTenantSetLogSource { name, log_source } => write!(
                f,
                "ALTER TENANT {} SET LOG_SOURCE = {}",
                Ident(name),
                Literal(log_source)
            ),
            DropTenant { name } => write!(f, "DROP TENANT {}", Ident(name)),
            ImportBackup { uri } => write!(f, "ALTER SYSTEM IMPORT BACKUP FROM {}", Literal(uri)),
            RepairBackupDest { uri } => {
                write!(f, "ALTER SYSTEM REPAIR BACKUP DEST {}", Literal(uri))
            }
        }
    }
}

pub(super) const HEADS: &[Head] = &[
    Head {
        words: &["CREATE", "TENANT"],
        parse: create_tenant,
    },
    Head {
        words: &["ALTER", "TENANT"],
        parse: alter_tenant,
    },
    Head {
        words: &["DROP", "TENANT"],
        parse: drop_tenant,
    },
    Head {
        words: &["ALTER", "SYSTEM", "IMPORT", "BACKUP", "FROM"],
        parse: import_backup,
    },
    Head {
        words: &["ALTER", "SYSTEM", "REPAIR", "BACKUP", "DEST"],
        parse: |c| {
            c.eat_eq();
            Ok(Statement::Tenant(TenantStatement::RepairBackupDest {
                uri: c.parse_string()?,
            }))
        },
    },
];

/// `CREATE TENANT name SOURCE [=] 'uri' [LOG_SOURCE [=] '...'] [PGDATA [=] '...']`. Which of
/// LOG_SOURCE and PGDATA fits which kind of source is for the server to judge.
fn create_tenant(c: &mut Cursor) -> Result<Statement> {
    let name = c.parse_name()?;
    c.expect_keyword("SOURCE")?;
    c.eat_eq();
    let source = c.parse_string()?;
    let (mut log_source, mut pgdata) = (None, None);
    c.parse_clauses(&["LOG_SOURCE", "PGDATA"], |c, keyword| {
        c.eat_eq();
        let value = Some(c.parse_string()?);
        match keyword {
            "LOG_SOURCE" => log_source = value,
            _ => pgdata = value,
        }
        Ok(())
    })?;
    Ok(Statement::Tenant(TenantStatement::CreateTenant {
        name,
        source,
        log_source,
        pgdata,
    }))
}

/// `ALTER TENANT name SET LOG_SOURCE [=] '...'`
fn alter_tenant(c: &mut Cursor) -> Result<Statement> {
    let name = c.parse_name()?;
    c.expect_keyword("SET")?;
    c.expect_keyword("LOG_SOURCE")?;
    c.eat_eq();
    let log_source = c.parse_string()?;
    Ok(Statement::Tenant(
        TenantStatement::AlterTenantSetLogSource { name, log_source },
    ))
}

fn drop_tenant(c: &mut Cursor) -> Result<Statement> {
    let name = c.parse_name()?;
    Ok(Statement::Tenant(TenantStatement::DropTenant { name }))
}

fn import_backup(c: &mut Cursor) -> Result<Statement> {
    let uri = c.parse_string()?;
    Ok(Statement::Tenant(TenantStatement::ImportBackup { uri }))
}

#[cfg(test)]
mod tests {
    use super::TenantStatement;
    use crate::sql::ast::Statement;
    use crate::sql::testing::{error, statement};

    #[test]
    fn create_directory_tenant() {
        assert_eq!(
            statement("CREATE TENANT Sales SOURCE = 'dir:///srv/sales'"),
            Statement::Tenant(TenantStatement::CreateTenant {
                name: "sales".into(),
                source: "dir:///srv/sales".into(),
                log_source: None,
                pgdata: None,
            })
        );
        assert_eq!(
            statement("create tenant \"Sales\" source 'dir:///s' log_source = 'dir:///l'"),
            Statement::Tenant(TenantStatement::CreateTenant {
                name: "Sales".into(),
                source: "dir:///s".into(),
                log_source: Some("dir:///l".into()),
                pgdata: None,
            })
        );
    }

    #[test]
    fn create_postgres_tenant() {
        assert_eq!(
            statement(
                "CREATE TENANT pg SOURCE = 'postgres://u@db:5432/app' PGDATA = '/var/lib/pg'"
            ),
            Statement::Tenant(TenantStatement::CreateTenant {
                name: "pg".into(),
                source: "postgres://u@db:5432/app".into(),
                log_source: None,
                pgdata: Some("/var/lib/pg".into()),
            })
        );
    }

    #[test]
    fn create_tenant_refuses_a_repeated_clause() {
        let e = error("CREATE TENANT t SOURCE = 'a' PGDATA = 'b' PGDATA = 'c'");
        assert_eq!(e.position, 43);
        assert!(e.message.contains("PGDATA is given twice"), "{}", e.message);
    }

    #[test]
    fn create_tenant_needs_a_source() {
        let e = error("CREATE TENANT t LOG_SOURCE = 'dir:///l'");
        assert_eq!(e.position, 17);
        assert_eq!(
            e.message,
            "syntax error at or near \"LOG_SOURCE\": expected SOURCE after t"
        );
    }

    #[test]
    fn alter_and_drop_tenant() {
        assert_eq!(
            statement("ALTER TENANT t SET LOG_SOURCE = 'dir:///logs'"),
            Statement::Tenant(TenantStatement::AlterTenantSetLogSource {
                name: "t".into(),
                log_source: "dir:///logs".into(),
            })
        );
        assert_eq!(
            statement("DROP TENANT \"Odd Name\""),
            Statement::Tenant(TenantStatement::DropTenant {
                name: "Odd Name".into()
            })
        );
    }

    #[test]
    fn import_backup() {
        assert_eq!(
            statement("ALTER SYSTEM IMPORT BACKUP FROM 'file:///mnt/old'"),
            Statement::Tenant(TenantStatement::ImportBackup {
                uri: "file:///mnt/old".into()
            })
        );
    }
}
