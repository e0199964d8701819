//! Archive log rounds (SPEC §2.3): `ALTER SYSTEM ARCHIVELOG` starts shipping closed log segments
//! continuously and `NOARCHIVELOG` stops it, for every tenant or the named ones.
//! `PUSH ARCHIVELOG` and `GET ARCHIVELOG` are what the `backstop archive-push` and `archive-get`
//! commands send for PostgreSQL's `archive_command` and `restore_command`.

use std::fmt;

use super::ast::*;
use super::statement::Head;

/// Archive log (SPEC §2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveStatement {
    Archivelog {
        tenants: Option<TenantScope>,
    },
    NoArchivelog {
        tenants: Option<TenantScope>,
    },
    /// `archive-push`: archive the segment file at `path` (on the server's host).
    PushArchivelog {
        path: String,
        tenant: String,
    },
    /// `archive-get`: write the archived segment `name` to `to` (on the server's host).
    GetArchivelog {
        name: String,
        tenant: String,
        to: String,
    },
    /// `archive-push` over the connection: archive segment `name`, whose bytes are bound to
    /// `$1` (a bytea parameter of the extended protocol), so the client may run on another host
    /// or under another account.
    ReceiveArchivelog {
        name: String,
        tenant: String,
        data: SegmentBytes,
    },
    /// `archive-get` over the connection: the archived segment `name` as a row whose `data`
    /// column holds its bytes; `AT 'uri[,uri]'` reads it from those destinations (a restore on a
    /// server whose catalog does not know the tenant).
    SendArchivelog {
        name: String,
        tenant: String,
        at: Option<String>,
    },
}

/// The bytes bound to a [`ArchiveStatement::ReceiveArchivelog`]: none until the extended
/// protocol binds them. Shown and compared by length only (a segment is megabytes).
#[derive(Clone, Default)]
pub struct SegmentBytes(pub Option<std::sync::Arc<Vec<u8>>>);

impl fmt::Debug for SegmentBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(bytes) => write!(f, "<{} bytes>", bytes.len()),
            None => f.write_str("$1"),
        }
    }
}

impl PartialEq for SegmentBytes {
    fn eq(&self, other: &SegmentBytes) -> bool {
        self.0.as_ref().map(|b| b.len()) == other.0.as_ref().map(|b| b.len())
    }
}

impl Eq for SegmentBytes {}

impl ArchiveStatement {
    /// The role a session needs to run the statement (SPEC §2.8).
    pub fn required_role(&self) -> Role {
        Role::Operator
    }

    /// The statement's name as a DBA reads it.
    pub fn name(&self) -> &'static str {
        use ArchiveStatement::*;
        match self {
            Archivelog { .. } => "ALTER SYSTEM ARCHIVELOG",
            NoArchivelog { .. } => "ALTER SYSTEM NOARCHIVELOG",
            PushArchivelog { .. } => "ALTER SYSTEM PUSH ARCHIVELOG",
            GetArchivelog { .. } | SendArchivelog { .. } => "ALTER SYSTEM GET ARCHIVELOG",
            ReceiveArchivelog { .. } => "ALTER SYSTEM PUSH ARCHIVELOG",
        }
    }

    /// Whether the statement starts a job, and so may end with `WAIT` (SPEC §2.9).
    pub fn starts_job(&self) -> bool {
        use ArchiveStatement::*;
        matches!(self, Archivelog { .. } | NoArchivelog { .. })
    }
}

impl fmt::Display for ArchiveStatement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ArchiveStatement::*;
        match self {
            Archivelog { tenants } => {
                f.write_str("ALTER SYSTEM ARCHIVELOG")?;
                match tenants {
                    Some(tenants) => write!(f, " TENANT = {tenants}"),
                    None => Ok(()),
                }
            }
            NoArchivelog { tenants } => {
                f.write_str("ALTER SYSTEM NOARCHIVELOG")?;
                match tenants {
                    Some(tenants) => write!(f, " TENANT = {tenants}"),
                    None => Ok(()),
                }
            }
            PushArchivelog { path, tenant } => write!(
                f,
                "ALTER SYSTEM PUSH ARCHIVELOG {} TENANT = {}",
                Literal(path),
                Ident(tenant)
            ),
            GetArchivelog { name, tenant, to } => write!(
                f,
                "ALTER SYSTEM GET ARCHIVELOG {} TENANT = {} TO {}",
                Literal(name),
                Ident(tenant),
                Literal(to)
            ),
            ReceiveArchivelog { name, tenant, .. } => write!(
                f,
                "ALTER SYSTEM PUSH ARCHIVELOG {} TENANT = {} DATA $1",
                Literal(name),
                Ident(tenant)
            ),
            SendArchivelog { name, tenant, at } => {
                write!(
                    f,
                    "ALTER SYSTEM GET ARCHIVELOG {} TENANT = {}",
                    Literal(name),
                    Ident(tenant)
                )?;
                match at {
                    Some(at) => write!(f, " AT {}", Literal(at)),
                    None => Ok(()),
                }
            }
        }
    }
}

pub(super) const HEADS: &[Head] = &[
    Head {
        words: &["ALTER", "SYSTEM", "ARCHIVELOG"],
        parse: |c| {
            Ok(Statement::Archive(ArchiveStatement::Archivelog {
                tenants: c.parse_tenant_scope_clause()?,
            }))
        },
    },
    Head {
        words: &["ALTER", "SYSTEM", "NOARCHIVELOG"],
        parse: |c| {
            Ok(Statement::Archive(ArchiveStatement::NoArchivelog {
                tenants: c.parse_tenant_scope_clause()?,
            }))
        },
    },
    Head {
        words: &["ALTER", "SYSTEM", "PUSH", "ARCHIVELOG"],
        parse: |c| {
            let path = c.parse_string()?;
            c.expect_keyword("TENANT")?;
            c.eat_eq();
            let tenant = c.parse_name()?;
            if c.eat_keyword("DATA") {
                c.eat_eq();
                c.expect_first_parameter()?;
                return Ok(Statement::Archive(ArchiveStatement::ReceiveArchivelog {
                    name: path,
                    tenant,
                    data: SegmentBytes::default(),
                }));
            }
            Ok(Statement::Archive(ArchiveStatement::PushArchivelog {
                path,
                tenant,
            }))
        },
    },
    Head {
        words: &["ALTER", "SYSTEM", "GET", "ARCHIVELOG"],
        parse: |c| {
            let name = c.parse_string()?;
            c.expect_keyword("TENANT")?;
            c.eat_eq();
            let tenant = c.parse_name()?;
            if !c.eat_keyword("TO") {
                let at = c.parse_string_clause("AT")?;
                return Ok(Statement::Archive(ArchiveStatement::SendArchivelog {
                    name,
                    tenant,
                    at,
                }));
            }
            Ok(Statement::Archive(ArchiveStatement::GetArchivelog {
                name,
                tenant,
                to: c.parse_string()?,
            }))
        },
    },
];

#[cfg(test)]
mod tests {
    use super::ArchiveStatement;
    use crate::sql::ast::{Command, Statement, TenantScope};
    use crate::sql::testing::{command, error, statement};

    #[test]
    fn archivelog() {
        assert_eq!(
            statement("ALTER SYSTEM ARCHIVELOG"),
            Statement::Archive(ArchiveStatement::Archivelog { tenants: None })
        );
        assert_eq!(
            statement("ALTER SYSTEM ARCHIVELOG TENANT = ALL"),
            Statement::Archive(ArchiveStatement::Archivelog {
                tenants: Some(TenantScope::All)
            })
        );
        assert_eq!(
            command("alter system archivelog tenant a, b wait"),
            Command {
                statement: Statement::Archive(ArchiveStatement::Archivelog {
                    tenants: Some(TenantScope::List(vec!["a".into(), "b".into()]))
                }),
                wait: true,
            }
        );
    }

    #[test]
    fn a_tenant_called_all_is_quoted() {
        assert_eq!(
            statement("ALTER SYSTEM ARCHIVELOG TENANT = \"all\""),
            Statement::Archive(ArchiveStatement::Archivelog {
                tenants: Some(TenantScope::List(vec!["all".into()]))
            })
        );
    }

    #[test]
    fn noarchivelog() {
        assert_eq!(
            statement("ALTER SYSTEM NOARCHIVELOG"),
            Statement::Archive(ArchiveStatement::NoArchivelog { tenants: None })
        );
        assert_eq!(
            statement("ALTER SYSTEM NOARCHIVELOG TENANT all"),
            Statement::Archive(ArchiveStatement::NoArchivelog {
                tenants: Some(TenantScope::All)
            })
        );
        assert_eq!(
            statement("ALTER SYSTEM NOARCHIVELOG TENANT = t"),
            Statement::Archive(ArchiveStatement::NoArchivelog {
                tenants: Some(TenantScope::List(vec!["t".into()]))
            })
        );
    }

    #[test]
    fn tenant_needs_a_name() {
        let e = error("ALTER SYSTEM ARCHIVELOG TENANT = 7");
        assert_eq!(e.position, 34);
        assert_eq!(
            e.message,
            "syntax error at or near \"7\": expected ALL or a name after ="
        );
    }

    #[test]
    fn push_and_get() {
        assert_eq!(
            statement("ALTER SYSTEM PUSH ARCHIVELOG '/pg/pg_wal/0001' TENANT = app"),
            Statement::Archive(ArchiveStatement::PushArchivelog {
                path: "/pg/pg_wal/0001".into(),
                tenant: "app".into()
            })
        );
        assert_eq!(
            statement("alter system get archivelog '0001' tenant app to '/tmp/x'"),
            Statement::Archive(ArchiveStatement::GetArchivelog {
                name: "0001".into(),
                tenant: "app".into(),
                to: "/tmp/x".into()
            })
        );
        assert!(
            error("ALTER SYSTEM PUSH ARCHIVELOG '/x'")
                .message
                .contains("TENANT")
        );
    }
}
