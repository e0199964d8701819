//! Restore and validate (SPEC §2.5): `ALTER SYSTEM RESTORE` into a target, its `PREVIEW` of the
//! sets and pieces it would use, `VALIDATE`, and cancelling either.

use std::fmt;

use super::ast::*;
use super::cursor::{Cursor, Result};
use super::statement::Head;

/// Restore and validate (SPEC §2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreStatement {
    Restore {
        new_name: String,
        from: String,
        at: Option<String>,
        until: Option<RestoreUntil>,
        to: String,
        method: Option<RestoreMethod>,
        /// `tablespace_map=oid=/path[,oid=/path]`: where a PostgreSQL set's tablespaces go.
        tablespace_map: Vec<(String, String)>,
        description: Option<String>,
    },
    RestorePreview {
        from: String,
        at: Option<String>,
        until: RestoreUntil,
    },
    CancelRestore {
        name: String,
    },
    Validate {
        target: ValidateTarget,
        at: Option<String>,
        level: Option<ValidateLevel>,
    },
    CancelValidate {
        job_id: Option<i64>,
    },
}

impl RestoreStatement {
    /// The role a session needs to run the statement (SPEC §2.8).
    pub fn required_role(&self) -> Role {
        Role::Operator
    }

    /// The statement's name as a DBA reads it.
    pub fn name(&self) -> &'static str {
        use RestoreStatement::*;
        match self {
            Restore { .. } => "ALTER SYSTEM RESTORE",
            RestorePreview { .. } => "ALTER SYSTEM RESTORE PREVIEW",
            CancelRestore { .. } => "ALTER SYSTEM CANCEL RESTORE",
            Validate { .. } => "ALTER SYSTEM VALIDATE",
            CancelValidate { .. } => "ALTER SYSTEM CANCEL VALIDATE",
        }
    }

    /// Whether the statement starts a job, and so may end with `WAIT` (SPEC §2.9).
    pub fn starts_job(&self) -> bool {
        use RestoreStatement::*;
        matches!(self, Restore { .. } | Validate { .. })
    }
}

impl fmt::Display for RestoreStatement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use RestoreStatement::*;
        match self {
            Restore {
                new_name,
                from,
                at,
                until,
                to,
                method,
                tablespace_map,
                description,
            } => {
                write!(
                    f,
                    "ALTER SYSTEM RESTORE {} FROM {}",
                    Ident(new_name),
                    Ident(from)
                )?;
                if let Some(at) = at {
                    write!(f, " AT {}", Literal(at))?;
                }
                if let Some(until) = until {
                    write!(f, " {until}")?;
                }
                write!(f, " TO {}", Literal(to))?;
                let mut options = Vec::new();
                if let Some(method) = method {
                    options.push(format!("method={method}"));
                }
                if !tablespace_map.is_empty() {
                    let map: Vec<String> = tablespace_map
                        .iter()
                        .map(|(o, p)| format!("{o}={p}"))
                        .collect();
                    options.push(format!("tablespace_map={}", map.join(",")));
                }
                if !options.is_empty() {
                    write!(f, " WITH {}", Literal(&options.join("&")))?;
                }
                string_clause(f, "DESCRIPTION", description)
            }
            RestorePreview { from, at, until } => {
                write!(f, "ALTER SYSTEM RESTORE FROM {}", Ident(from))?;
                if let Some(at) = at {
                    write!(f, " AT {}", Literal(at))?;
                }
                write!(f, " {until} PREVIEW")
            }
            CancelRestore { name } => write!(f, "ALTER SYSTEM CANCEL RESTORE {}", Ident(name)),
            Validate { target, at, level } => {
                write!(f, "ALTER SYSTEM VALIDATE {target}")?;
                if let Some(at) = at {
                    write!(f, " AT {}", Literal(at))?;
                }
                match level {
                    Some(level) => write!(f, " LEVEL = '{level}'"),
                    None => Ok(()),
                }
            }
            CancelValidate { job_id } => {
                f.write_str("ALTER SYSTEM CANCEL VALIDATE")?;
                match job_id {
                    Some(job_id) => write!(f, " {job_id}"),
                    None => Ok(()),
                }
            }
        }
    }
}

pub(super) const HEADS: &[Head] = &[
    Head {
        words: &["ALTER", "SYSTEM", "RESTORE"],
        parse: restore,
    },
    Head {
        words: &["ALTER", "SYSTEM", "CANCEL", "RESTORE"],
        parse: |c| {
            Ok(Statement::Restore(RestoreStatement::CancelRestore {
                name: c.parse_name()?,
            }))
        },
    },
    Head {
        words: &["ALTER", "SYSTEM", "VALIDATE"],
        parse: validate,
    },
    Head {
        words: &["ALTER", "SYSTEM", "CANCEL", "VALIDATE"],
        parse: |c| {
            Ok(Statement::Restore(RestoreStatement::CancelValidate {
                job_id: if c.peek_number() {
                    Some(c.parse_integer()?)
                } else {
                    None
                },
            }))
        },
    },
];

/// `RESTORE new_name FROM tenant [AT 'uri'] [UNTIL ...] TO 'target' [WITH 'method=...']
/// [DESCRIPTION [=] 'x']`, or, without a new name, `RESTORE FROM tenant [AT 'uri'] UNTIL ...
/// PREVIEW`.
fn restore(c: &mut Cursor) -> Result<Statement> {
    if c.eat_keyword("FROM") {
        return preview(c);
    }
    let new_name = c.parse_name()?;
    c.expect_keyword("FROM")?;
    let from = c.parse_name()?;
    let at = c.parse_string_clause("AT")?;
    let until = if c.eat_keyword("UNTIL") {
        Some(parse_until(c)?)
    } else {
        None
    };
    c.expect_keyword("TO")?;
    let to = c.parse_string()?;
    let (method, tablespace_map) = if c.eat_keyword("WITH") {
        parse_options(c)?
    } else {
        (None, Vec::new())
    };
    let description = c.parse_string_clause("DESCRIPTION")?;
    Ok(Statement::Restore(RestoreStatement::Restore {
        new_name,
        from,
        at,
        until,
        to,
        method,
        tablespace_map,
        description,
    }))
}

fn preview(c: &mut Cursor) -> Result<Statement> {
    let from = c.parse_name()?;
    let at = c.parse_string_clause("AT")?;
    c.expect_keyword("UNTIL")?;
    let until = parse_until(c)?;
    c.expect_keyword("PREVIEW")?;
    Ok(Statement::Restore(RestoreStatement::RestorePreview {
        from,
        at,
        until,
    }))
}

/// What follows `UNTIL`: `TIME [=] '...'` (kept as written) or `BACKUPSET [=] n`.
fn parse_until(c: &mut Cursor) -> Result<RestoreUntil> {
    let until = c.expect_one_of(&["TIME", "BACKUPSET"])?;
    c.eat_eq();
    match until {
        "TIME" => c.parse_string().map(RestoreUntil::Time),
        _ => c.parse_integer().map(RestoreUntil::BackupSet),
    }
}

/// The string after `WITH`: options `key=value` joined by `&`, as OceanBase writes them:
/// `method=full|delta` and `tablespace_map=oid=/path[,oid=/path]`.
#[allow(clippy::type_complexity)]
fn parse_options(c: &mut Cursor) -> Result<(Option<RestoreMethod>, Vec<(String, String)>)> {
    let (position, near) = (c.position(), c.text_here());
    let text = c.parse_string()?;
    let mut method = None;
    let mut map = Vec::new();
    for option in text.split('&').filter(|o| !o.trim().is_empty()) {
        let (key, value) = option.split_once('=').unwrap_or((option, ""));
        let value = value.trim();
        match key.trim().to_ascii_lowercase().as_str() {
            "method" => match value.to_ascii_lowercase().as_str() {
                "full" => method = Some(RestoreMethod::Full),
                "delta" => method = Some(RestoreMethod::Delta),
                _ => {
                    return Err(c.error_at(
                        position,
                        near,
                        "unknown restore method: expected 'method=full' or 'method=delta'",
                    ));
                }
            },
            "tablespace_map" => {
                for pair in value.split(',') {
                    match pair.split_once('=') {
                        Some((oid, path))
                            if !oid.trim().is_empty()
                                && oid.trim().bytes().all(|b| b.is_ascii_digit())
                                && path.trim().starts_with('/') =>
                        {
                            map.push((oid.trim().to_string(), path.trim().to_string()));
                        }
                        _ => {
                            return Err(c.error_at(
                                position,
                                near,
                                "tablespace_map takes oid=/absolute/path pairs joined by commas",
                            ));
                        }
                    }
                }
            }
            _ => {
                return Err(c.error_at(
                    position,
                    near,
                    "unknown restore option: expected method=full|delta or \
                     tablespace_map=oid=/path, joined by &",
                ));
            }
        }
    }
    Ok((method, map))
}

/// `VALIDATE {DATABASE | BACKUPSET [=] n | ARCHIVELOG_PIECE [=] n} [AT 'uri']
/// [LEVEL [=] 'basic'|'physical']`
fn validate(c: &mut Cursor) -> Result<Statement> {
    let target = match c.expect_one_of(&["DATABASE", "BACKUPSET", "ARCHIVELOG_PIECE"])? {
        "DATABASE" => ValidateTarget::Database,
        "BACKUPSET" => {
            c.eat_eq();
            ValidateTarget::BackupSet(c.parse_integer()?)
        }
        _ => {
            c.eat_eq();
            ValidateTarget::ArchivelogPiece(c.parse_integer()?)
        }
    };
    let at = c.parse_string_clause("AT")?;
    let level = if c.eat_keyword("LEVEL") {
        c.eat_eq();
        Some(parse_level(c)?)
    } else {
        None
    };
    Ok(Statement::Restore(RestoreStatement::Validate {
        target,
        at,
        level,
    }))
}

fn parse_level(c: &mut Cursor) -> Result<ValidateLevel> {
    let (position, near) = (c.position(), c.text_here());
    let level = c.parse_string()?;
    match level.to_ascii_lowercase().as_str() {
        "basic" => Ok(ValidateLevel::Basic),
        "physical" => Ok(ValidateLevel::Physical),
        _ => Err(c.error_at(
            position,
            near,
            "unknown validation level: expected 'basic' or 'physical'",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::RestoreStatement;
    use crate::sql::ast::{
        Command, RestoreMethod, RestoreUntil, Statement, ValidateLevel, ValidateTarget,
    };
    use crate::sql::testing::{command, error, statement};

    #[test]
    fn restore_with_only_the_required_clauses() {
        assert_eq!(
            statement("ALTER SYSTEM RESTORE New FROM Old TO 'dir:///restore'"),
            Statement::Restore(RestoreStatement::Restore {
                new_name: "new".into(),
                from: "old".into(),
                at: None,
                until: None,
                to: "dir:///restore".into(),
                method: None,
                tablespace_map: Vec::new(),
                description: None,
            })
        );
    }

    #[test]
    fn restore_with_every_clause() {
        assert_eq!(
            command(
                "ALTER SYSTEM RESTORE n FROM t AT 'file:///d,file:///a' \
                 UNTIL TIME = '2024-05-01 12:00:00.5' TO 'dir:///x' \
                 WITH 'method=delta&tablespace_map=16390=/ts/a,16391=/ts/b' \
                 DESCRIPTION = 'drill' WAIT"
            ),
            Command {
                statement: Statement::Restore(RestoreStatement::Restore {
                    new_name: "n".into(),
                    from: "t".into(),
                    at: Some("file:///d,file:///a".into()),
                    until: Some(RestoreUntil::Time("2024-05-01 12:00:00.5".into())),
                    to: "dir:///x".into(),
                    method: Some(RestoreMethod::Delta),
                    tablespace_map: vec![
                        ("16390".into(), "/ts/a".into()),
                        ("16391".into(), "/ts/b".into())
                    ],
                    description: Some("drill".into()),
                }),
                wait: true,
            }
        );
        assert_eq!(
            statement(
                "ALTER SYSTEM RESTORE n FROM t UNTIL BACKUPSET 4 TO 'dir:///x' \
                 WITH ' Method = FULL ' DESCRIPTION 'x'"
            ),
            Statement::Restore(RestoreStatement::Restore {
                new_name: "n".into(),
                from: "t".into(),
                at: None,
                until: Some(RestoreUntil::BackupSet(4)),
                to: "dir:///x".into(),
                method: Some(RestoreMethod::Full),
                tablespace_map: Vec::new(),
                description: Some("x".into()),
            })
        );
    }

    #[test]
    fn restore_needs_to() {
        let sql = "ALTER SYSTEM RESTORE n FROM t UNTIL BACKUPSET = 4";
        let e = error(sql);
        assert_eq!(e.position, sql.len() + 1);
        assert_eq!(
            e.message,
            "syntax error at end of input: expected TO after 4"
        );
        let e = error("ALTER SYSTEM RESTORE n FROM t 'dir:///x'");
        assert_eq!(e.position, 31);
        assert_eq!(
            e.message,
            "syntax error at or near \"'dir:///x'\": expected AT, UNTIL or TO after t"
        );
    }

    #[test]
    fn unknown_restore_method_points_at_the_string() {
        let e = error("ALTER SYSTEM RESTORE n FROM t TO 'dir:///x' WITH 'method=quick'");
        assert_eq!(e.position, 50);
        assert_eq!(
            e.message,
            "syntax error at or near \"'method=quick'\": unknown restore method: expected \
             'method=full' or 'method=delta'"
        );
        let e = error("ALTER SYSTEM RESTORE n FROM t TO 'dir:///x' WITH 'speed=max'");
        assert!(
            e.message.contains("unknown restore option"),
            "{}",
            e.message
        );
        let e = error(
            "ALTER SYSTEM RESTORE n FROM t TO 'dir:///x' WITH 'tablespace_map=16390=relative'",
        );
        assert!(e.message.contains("oid=/absolute/path"), "{}", e.message);
    }

    #[test]
    fn preview() {
        assert_eq!(
            statement("ALTER SYSTEM RESTORE FROM t UNTIL TIME '2024-05-01 00:00:00' PREVIEW"),
            Statement::Restore(RestoreStatement::RestorePreview {
                from: "t".into(),
                at: None,
                until: RestoreUntil::Time("2024-05-01 00:00:00".into()),
            })
        );
        assert_eq!(
            statement("ALTER SYSTEM RESTORE FROM t AT 'file:///d' UNTIL BACKUPSET = 9 PREVIEW"),
            Statement::Restore(RestoreStatement::RestorePreview {
                from: "t".into(),
                at: Some("file:///d".into()),
                until: RestoreUntil::BackupSet(9),
            })
        );
        let e = error("ALTER SYSTEM RESTORE FROM t UNTIL BACKUPSET = 9 PREVIEW WAIT");
        assert_eq!(e.position, 57);
    }

    #[test]
    fn cancel_restore() {
        assert_eq!(
            statement("ALTER SYSTEM CANCEL RESTORE n"),
            Statement::Restore(RestoreStatement::CancelRestore { name: "n".into() })
        );
    }

    #[test]
    fn validate() {
        assert_eq!(
            command("ALTER SYSTEM VALIDATE DATABASE WAIT"),
            Command {
                statement: Statement::Restore(RestoreStatement::Validate {
                    target: ValidateTarget::Database,
                    at: None,
                    level: None,
                }),
                wait: true,
            }
        );
        assert_eq!(
            statement("ALTER SYSTEM VALIDATE BACKUPSET = 3 LEVEL = 'physical'"),
            Statement::Restore(RestoreStatement::Validate {
                target: ValidateTarget::BackupSet(3),
                at: None,
                level: Some(ValidateLevel::Physical),
            })
        );
        assert_eq!(
            statement("ALTER SYSTEM VALIDATE ARCHIVELOG_PIECE 8 AT 'file:///other' LEVEL 'Basic'"),
            Statement::Restore(RestoreStatement::Validate {
                target: ValidateTarget::ArchivelogPiece(8),
                at: Some("file:///other".into()),
                level: Some(ValidateLevel::Basic),
            })
        );
        let e = error("ALTER SYSTEM VALIDATE DATABASE LEVEL = 'deep'");
        assert_eq!(e.position, 40);
    }

    #[test]
    fn cancel_validate() {
        assert_eq!(
            statement("ALTER SYSTEM CANCEL VALIDATE"),
            Statement::Restore(RestoreStatement::CancelValidate { job_id: None })
        );
        assert_eq!(
            statement("ALTER SYSTEM CANCEL VALIDATE 17"),
            Statement::Restore(RestoreStatement::CancelValidate { job_id: Some(17) })
        );
    }
}
