//! Users and keys (SPEC §2.8): `CREATE USER`, `ALTER USER`, `DROP USER`, and the session's
//! backup encryption (`SET ENCRYPTION`) and restore decryption (`SET DECRYPTION`) passwords.

use std::fmt;

use super::ast::*;
use super::cursor::{Cursor, Result};
use super::statement::Head;

/// Users and session encryption keys (SPEC §2.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserStatement {
    CreateUser {
        name: String,
        password: String,
        role: Option<Role>,
    },
    AlterUser {
        name: String,
        password: Option<String>,
        role: Option<Role>,
    },
    DropUser {
        name: String,
    },
    SetEncryption {
        password: String,
        only: bool,
    },
    SetDecryption {
        passwords: Vec<String>,
    },
}

impl UserStatement {
    /// The role a session needs to run the statement (SPEC §2.8).
    pub fn required_role(&self) -> Role {
        use UserStatement::*;
        match self {
            CreateUser { .. } | AlterUser { .. } | DropUser { .. } => Role::Admin,
            SetEncryption { .. } | SetDecryption { .. } => Role::Operator,
        }
    }

    /// The statement's name as a DBA reads it.
    pub fn name(&self) -> &'static str {
        use UserStatement::*;
        match self {
            CreateUser { .. } => "CREATE USER",
            AlterUser { .. } => "ALTER USER",
            DropUser { .. } => "DROP USER",
            SetEncryption { .. } => "SET ENCRYPTION",
            SetDecryption { .. } => "SET DECRYPTION",
        }
    }

    /// Whether the statement starts a job, and so may end with `WAIT` (SPEC §2.9).
    pub fn starts_job(&self) -> bool {
        false
    }
}

impl fmt::Display for UserStatement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use UserStatement::*;
        match self {
            CreateUser {
                name,
                password,
                role,
            } => {
                write!(
                    f,
                    "CREATE USER {} PASSWORD {}",
                    Ident(name),
                    Literal(password)
                )?;
                match role {
                    Some(role) => write!(f, " ROLE {role}"),
                    None => Ok(()),
                }
            }
            AlterUser {
                name,
                password,
                role,
            } => {
                write!(f, "ALTER USER {}", Ident(name))?;
                if let Some(password) = password {
                    write!(f, " PASSWORD {}", Literal(password))?;
                }
                match role {
                    Some(role) => write!(f, " ROLE {role}"),
                    None => Ok(()),
                }
            }
            DropUser { name } => write!(f, "DROP USER {}", Ident(name)),
            SetEncryption { password, only } => {
                write!(f, "SET ENCRYPTION ON IDENTIFIED BY {}", Literal(password))?;
                if *only {
                    f.write_str(" ONLY")?;
                }
                Ok(())
            }
            SetDecryption { passwords } => {
                f.write_str("SET DECRYPTION IDENTIFIED BY ")?;
                for (i, password) in passwords.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    Literal(password).fmt(f)?;
                }
                Ok(())
            }
        }
    }
}

pub(super) const HEADS: &[Head] = &[
    Head {
        words: &["CREATE", "USER"],
        parse: create_user,
    },
    Head {
        words: &["ALTER", "USER"],
        parse: alter_user,
    },
    Head {
        words: &["DROP", "USER"],
        parse: |c| {
            Ok(Statement::User(UserStatement::DropUser {
                name: c.parse_name()?,
            }))
        },
    },
    Head {
        words: &["SET", "ENCRYPTION", "ON", "IDENTIFIED", "BY"],
        parse: |c| {
            Ok(Statement::User(UserStatement::SetEncryption {
                password: c.parse_string()?,
                only: c.eat_keyword("ONLY"),
            }))
        },
    },
    Head {
        words: &["SET", "DECRYPTION", "IDENTIFIED", "BY"],
        parse: |c| {
            Ok(Statement::User(UserStatement::SetDecryption {
                passwords: c.parse_string_list()?,
            }))
        },
    },
];

/// `CREATE USER name PASSWORD 'x' [ROLE r]`, clauses in any order; the role defaults later.
fn create_user(c: &mut Cursor) -> Result<Statement> {
    let name = c.parse_name()?;
    let (password, role) = parse_user_clauses(c)?;
    let Some(password) = password else {
        return Err(c.expected(&["PASSWORD"]));
    };
    Ok(Statement::User(UserStatement::CreateUser {
        name,
        password,
        role,
    }))
}

/// `ALTER USER name [PASSWORD 'x'] [ROLE r]`, at least one of them.
fn alter_user(c: &mut Cursor) -> Result<Statement> {
    let name = c.parse_name()?;
    let (password, role) = parse_user_clauses(c)?;
    if password.is_none() && role.is_none() {
        return Err(c.expected(&[]));
    }
    Ok(Statement::User(UserStatement::AlterUser {
        name,
        password,
        role,
    }))
}

fn parse_user_clauses(c: &mut Cursor) -> Result<(Option<String>, Option<Role>)> {
    let (mut password, mut role) = (None, None);
    c.parse_clauses(&["PASSWORD", "ROLE"], |c, keyword| {
        match keyword {
            "PASSWORD" => password = Some(c.parse_string()?),
            _ => role = Some(parse_role(c)?),
        }
        Ok(())
    })?;
    Ok((password, role))
}

fn parse_role(c: &mut Cursor) -> Result<Role> {
    Ok(match c.expect_one_of(&["ADMIN", "OPERATOR", "MONITOR"])? {
        "ADMIN" => Role::Admin,
        "OPERATOR" => Role::Operator,
        _ => Role::Monitor,
    })
}

#[cfg(test)]
mod tests {
    use super::UserStatement;
    use crate::sql::ast::{Role, Statement};
    use crate::sql::testing::{error, statement};

    #[test]
    fn create_user() {
        assert_eq!(
            statement("CREATE USER Alice PASSWORD 's3cr''et'"),
            Statement::User(UserStatement::CreateUser {
                name: "alice".into(),
                password: "s3cr'et".into(),
                role: None,
            })
        );
        assert_eq!(
            statement("CREATE USER ops PASSWORD 'x' ROLE operator"),
            Statement::User(UserStatement::CreateUser {
                name: "ops".into(),
                password: "x".into(),
                role: Some(Role::Operator),
            })
        );
        assert_eq!(
            statement("create user \"Mon\" role MONITOR password 'x'"),
            Statement::User(UserStatement::CreateUser {
                name: "Mon".into(),
                password: "x".into(),
                role: Some(Role::Monitor),
            })
        );
    }

    #[test]
    fn create_user_needs_a_password() {
        let e = error("CREATE USER bob ROLE admin");
        assert_eq!(e.position, 27);
        assert_eq!(
            e.message,
            "syntax error at end of input: expected PASSWORD after admin"
        );
    }

    #[test]
    fn alter_user() {
        assert_eq!(
            statement("ALTER USER bob PASSWORD 'new'"),
            Statement::User(UserStatement::AlterUser {
                name: "bob".into(),
                password: Some("new".into()),
                role: None,
            })
        );
        assert_eq!(
            statement("ALTER USER bob ROLE admin"),
            Statement::User(UserStatement::AlterUser {
                name: "bob".into(),
                password: None,
                role: Some(Role::Admin),
            })
        );
        assert_eq!(
            statement("ALTER USER bob PASSWORD 'p' ROLE monitor"),
            Statement::User(UserStatement::AlterUser {
                name: "bob".into(),
                password: Some("p".into()),
                role: Some(Role::Monitor),
            })
        );
        let e = error("ALTER USER bob");
        assert_eq!(e.position, 15);
        assert_eq!(
            e.message,
            "syntax error at end of input: expected PASSWORD or ROLE after bob"
        );
    }

    #[test]
    fn unknown_role() {
        let e = error("CREATE USER bob PASSWORD 'x' ROLE root");
        assert_eq!(e.position, 35);
        assert_eq!(
            e.message,
            "syntax error at or near \"root\": expected ADMIN, OPERATOR or MONITOR after ROLE"
        );
    }

    #[test]
    fn drop_user() {
        assert_eq!(
            statement("DROP USER bob"),
            Statement::User(UserStatement::DropUser { name: "bob".into() })
        );
    }

    #[test]
    fn encryption() {
        assert_eq!(
            statement("SET ENCRYPTION ON IDENTIFIED BY 'pwd' ONLY"),
            Statement::User(UserStatement::SetEncryption {
                password: "pwd".into(),
                only: true
            })
        );
        assert_eq!(
            statement("set encryption on identified by 'pwd'"),
            Statement::User(UserStatement::SetEncryption {
                password: "pwd".into(),
                only: false
            })
        );
    }

    #[test]
    fn decryption() {
        assert_eq!(
            statement("SET DECRYPTION IDENTIFIED BY 'p1'"),
            Statement::User(UserStatement::SetDecryption {
                passwords: vec!["p1".into()]
            })
        );
        assert_eq!(
            statement("SET DECRYPTION IDENTIFIED BY 'p1', 'p2'"),
            Statement::User(UserStatement::SetDecryption {
                passwords: vec!["p1".into(), "p2".into()]
            })
        );
    }

    #[test]
    fn other_set_statements_are_not_ours() {
        assert_eq!(
            crate::sql::parse("SET extra_float_digits = 3"),
            Ok(vec![crate::sql::Parsed::Other(
                "SET extra_float_digits = 3".into()
            )])
        );
    }
}
