//! Archive log rounds (SPEC §2.3): `ALTER SYSTEM ARCHIVELOG` starts shipping closed log segments
//! continuously and `NOARCHIVELOG` stops it, for every tenant or the named ones.
//! `PUSH ARCHIVELOG` and `GET ARCHIVELOG` are what the `backstop archive-push` and `archive-get`
//! commands send for PostgreSQL's `archive_command` and `restore_command`.

use super::ast::Statement;
use super::statement::Head;

pub(super) const HEADS: &[Head] = &[
    Head {
        words: &["ALTER", "SYSTEM", "ARCHIVELOG"],
        parse: |c| {
            Ok(Statement::Archivelog {
                tenants: c.parse_tenant_scope_clause()?,
            })
        },
    },
    Head {
        words: &["ALTER", "SYSTEM", "NOARCHIVELOG"],
        parse: |c| {
            Ok(Statement::NoArchivelog {
                tenants: c.parse_tenant_scope_clause()?,
            })
        },
    },
    Head {
        words: &["ALTER", "SYSTEM", "PUSH", "ARCHIVELOG"],
        parse: |c| {
            let path = c.parse_string()?;
            c.expect_keyword("TENANT")?;
            c.eat_eq();
            Ok(Statement::PushArchivelog {
                path,
                tenant: c.parse_name()?,
            })
        },
    },
    Head {
        words: &["ALTER", "SYSTEM", "GET", "ARCHIVELOG"],
        parse: |c| {
            let name = c.parse_string()?;
            c.expect_keyword("TENANT")?;
            c.eat_eq();
            let tenant = c.parse_name()?;
            c.expect_keyword("TO")?;
            Ok(Statement::GetArchivelog {
                name,
                tenant,
                to: c.parse_string()?,
            })
        },
    },
];

#[cfg(test)]
mod tests {
    use crate::sql::ast::{Command, Statement, TenantScope};
    use crate::sql::testing::{command, error, statement};

    #[test]
    fn archivelog() {
        assert_eq!(
            statement("ALTER SYSTEM ARCHIVELOG"),
            Statement::Archivelog { tenants: None }
        );
        assert_eq!(
            statement("ALTER SYSTEM ARCHIVELOG TENANT = ALL"),
            Statement::Archivelog {
                tenants: Some(TenantScope::All)
            }
        );
        assert_eq!(
            command("alter system archivelog tenant a, b wait"),
            Command {
                statement: Statement::Archivelog {
                    tenants: Some(TenantScope::List(vec!["a".into(), "b".into()]))
                },
                wait: true,
            }
        );
    }

    #[test]
    fn a_tenant_called_all_is_quoted() {
        assert_eq!(
            statement("ALTER SYSTEM ARCHIVELOG TENANT = \"all\""),
            Statement::Archivelog {
                tenants: Some(TenantScope::List(vec!["all".into()]))
            }
        );
    }

    #[test]
    fn noarchivelog() {
        assert_eq!(
            statement("ALTER SYSTEM NOARCHIVELOG"),
            Statement::NoArchivelog { tenants: None }
        );
        assert_eq!(
            statement("ALTER SYSTEM NOARCHIVELOG TENANT all"),
            Statement::NoArchivelog {
                tenants: Some(TenantScope::All)
            }
        );
        assert_eq!(
            statement("ALTER SYSTEM NOARCHIVELOG TENANT = t"),
            Statement::NoArchivelog {
                tenants: Some(TenantScope::List(vec!["t".into()]))
            }
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
            Statement::PushArchivelog {
                path: "/pg/pg_wal/0001".into(),
                tenant: "app".into()
            }
        );
        assert_eq!(
            statement("alter system get archivelog '0001' tenant app to '/tmp/x'"),
            Statement::GetArchivelog {
                name: "0001".into(),
                tenant: "app".into(),
                to: "/tmp/x".into()
            }
        );
        assert!(
            error("ALTER SYSTEM PUSH ARCHIVELOG '/x'")
                .message
                .contains("TENANT")
        );
    }
}
