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
    /// `ALTER SYSTEM ADD BACKUP PASSWORD 'new' IDENTIFIED BY 'existing' [AT 'uri']`: a key
    /// slot more for an encrypted destination (DATA_BACKUP_DEST by default).
    AddBackupPassword {
        password: String,
        existing: String,
        at: Option<String>,
    },
    /// `ALTER SYSTEM DROP BACKUP PASSWORD 'pwd' [AT 'uri']`: removes the slot it opens.
    DropBackupPassword {
        password: String,
        at: Option<String>,
    },
    /// `ALTER SYSTEM CHANGE BACKUP PASSWORD 'old' TO 'new' [AT 'uri']`: rotates one slot.
    ChangeBackupPassword {
        old: String,
        new: String,
        at: Option<String>,
    },
}

impl UserStatement {
    /// The role a session needs to run the statement (SPEC §2.8).
    pub fn required_role(&self) -> Role {
        use UserStatement::*;
        match self {
            CreateUser { .. } | AlterUser { .. } | DropUser { .. } => Role::Admin,
            SetEncryption { .. } | SetDecryption { .. } => Role::Operator,
            AddBackupPassword { .. } | DropBackupPassword { .. } | ChangeBackupPassword { .. } => {
                Role::Admin
            }
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
            AddBackupPassword { .. } => "ALTER SYSTEM ADD BACKUP PASSWORD",
            DropBackupPassword { .. } => "ALTER SYSTEM DROP BACKUP PASSWORD",
            ChangeBackupPassword { .. } => "ALTER SYSTEM CHANGE BACKUP PASSWORD",
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
            AddBackupPassword {
                password,
                existing,
                at,
            } => {
                write!(
                    f,
                    "ALTER SYSTEM ADD BACKUP PASSWORD {} IDENTIFIED BY {}",
                    Literal(password),
                    Literal(existing)
                )?;
                write_at(f, at)
            }
            DropBackupPassword { password, at } => {
                write!(f, "ALTER SYSTEM DROP BACKUP PASSWORD {}", Literal(password))?;
                write_at(f, at)
            }
            ChangeBackupPassword { old, new, at } => {
                write!(
                    f,
                    "ALTER SYSTEM CHANGE BACKUP PASSWORD {} TO {}",
                    Literal(old),
                    Literal(new)
                )?;
                write_at(f, at)
            }
        }
    }
}

fn write_at(f: &mut fmt::Formatter<'_>, at: &Option<String>) -> fmt::Result {
    match at {
        Some(uri) => write!(f, " AT {}", Literal(uri)),
        None => Ok(()),
    }
}

/// An optional trailing `AT 'uri'`.
fn parse_at(c: &mut Cursor) -> Result<Option<String>> {
    if c.eat_keyword("AT") {
        Ok(Some(c.parse_string()?))
    } else {
        Ok(None)
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
        words: &["ALTER", "SYSTEM", "ADD", "BACKUP", "PASSWORD"],
        parse: |c| {
            let password = c.parse_string()?;
            c.expect_keyword("IDENTIFIED")?;
            c.expect_keyword("BY")?;
            Ok(Statement::User(UserStatement::AddBackupPassword {
                password,
                existing: c.parse_string()?,
                at: parse_at(c)?,
            }))
        },
    },
    Head {
        words: &["ALTER", "SYSTEM", "DROP", "BACKUP", "PASSWORD"],
        parse: |c| {
            Ok(Statement::User(UserStatement::DropBackupPassword {
                password: c.parse_string()?,
                at: parse_at(c)?,
            }))
        },
    },
    Head {
        words: &["ALTER", "SYSTEM", "CHANGE", "BACKUP", "PASSWORD"],
        parse: |c| {
            let old = c.parse_string()?;
            c.expect_keyword("TO")?;
            Ok(Statement::User(UserStatement::ChangeBackupPassword {
                old,
                new: c.parse_string()?,
                at: parse_at(c)?,
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
    fn backup_passwords() {
        assert_eq!(
            statement("ALTER SYSTEM ADD BACKUP PASSWORD 'n' IDENTIFIED BY 'o' AT 'file:///b'"),
            Statement::User(UserStatement::AddBackupPassword {
                password: "n".into(),
                existing: "o".into(),
                at: Some("file:///b".into()),
            })
        );
        assert_eq!(
            statement("alter system drop backup password 'o'"),
            Statement::User(UserStatement::DropBackupPassword {
                password: "o".into(),
                at: None,
            })
        );
        assert_eq!(
            statement("ALTER SYSTEM CHANGE BACKUP PASSWORD 'o' TO 'n'"),
            Statement::User(UserStatement::ChangeBackupPassword {
                old: "o".into(),
                new: "n".into(),
                at: None,
            })
        );
        let shown = statement("ALTER SYSTEM CHANGE BACKUP PASSWORD 'o' TO 'n' AT 'file:///x'");
        assert_eq!(
            shown.to_string(),
            "ALTER SYSTEM CHANGE BACKUP PASSWORD 'o' TO 'n' AT 'file:///x'"
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
