//! `ALTER SYSTEM SET name = value [TENANT [=] t]` (SPEC §2.1, §5): destinations such as
//! `DATA_BACKUP_DEST` or `LOG_ARCHIVE_DEST` and every parameter alike. The parser keeps the value
//! as written; which names exist and what their values mean is the server's business.

use datafusion::sql::sqlparser::tokenizer::{Token, Word};

use std::fmt;

use super::ast::*;
use super::cursor::{Cursor, Result};
use super::statement::Head;

/// Destinations and parameters (SPEC §2.1, §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParameterStatement {
    /// `ALTER SYSTEM SET name = value [TENANT = t]`: destinations (`DATA_BACKUP_DEST`,
    /// `LOG_ARCHIVE_DEST`, ...) and the parameters of SPEC §5 alike. `name` is lower case.
    SetParameter {
        name: String,
        value: SetValue,
        tenant: Option<String>,
    },
}

impl ParameterStatement {
    /// The role a session needs to run the statement (SPEC §2.8).
    pub fn required_role(&self) -> Role {
        Role::Admin
    }

    /// The statement's name as a DBA reads it.
    pub fn name(&self) -> &'static str {
        use ParameterStatement::*;
        match self {
            SetParameter { .. } => "ALTER SYSTEM SET",
        }
    }

    /// Whether the statement starts a job, and so may end with `WAIT` (SPEC §2.9).
    pub fn starts_job(&self) -> bool {
        false
    }
}

impl fmt::Display for ParameterStatement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ParameterStatement::*;
        match self {
            SetParameter {
                name,
                value,
                tenant,
            } => {
                write!(f, "ALTER SYSTEM SET {name} = {value}")?;
                tenant_clause(f, tenant)
            }
        }
    }
}

pub(super) const HEADS: &[Head] = &[Head {
    words: &["ALTER", "SYSTEM", "SET"],
    parse: set_parameter,
}];

fn set_parameter(c: &mut Cursor) -> Result<Statement> {
    let Some(name) = c.keyword_at(0) else {
        return Err(c.expected(&["a parameter name"]));
    };
    c.advance(1);
    // PostgreSQL's own ALTER SYSTEM accepts TO as well as =.
    if c.peek_token() == Some(&Token::Eq) {
        c.advance(1);
    } else {
        c.note_at(0, "=");
        c.expect_keyword("TO")?;
    }
    let value = parse_value(c)?;
    let tenant = c.parse_tenant_clause()?;
    Ok(Statement::Parameter(ParameterStatement::SetParameter {
        name: name.to_ascii_lowercase(),
        value,
        tenant,
    }))
}

/// `'text'`, a number such as `-1.5`, or a bare word such as `true`. A number written straight
/// against a unit (`30s`, `32MB`) is one word, as a DBA means it.
fn parse_value(c: &mut Cursor) -> Result<SetValue> {
    if c.peek_number() {
        let number = c.parse_number()?;
        return Ok(match c.adjacent_lexeme() {
            Some(unit) if is_bare_word(&unit.token) => {
                c.advance(1);
                SetValue::Word(format!("{number}{}", unit.text))
            }
            _ => SetValue::Number(number),
        });
    }
    if let Some(Token::Word(word)) = c.peek_token()
        && word.quote_style.is_none()
    {
        let word = word.value.clone();
        c.advance(1);
        return Ok(SetValue::Word(word));
    }
    c.parse_string()
        .map(SetValue::String)
        .map_err(|_| c.expected(&["a number", "a word"]))
}

fn is_bare_word(token: &Token) -> bool {
    matches!(
        token,
        Token::Word(Word {
            quote_style: None,
            ..
        })
    )
}

#[cfg(test)]
mod tests {
    use super::ParameterStatement;
    use crate::sql::ast::{SetValue, Statement};
    use crate::sql::testing::{error, statement};

    fn set(name: &str, value: SetValue, tenant: Option<&str>) -> Statement {
        Statement::Parameter(ParameterStatement::SetParameter {
            name: name.into(),
            value,
            tenant: tenant.map(Into::into),
        })
    }

    #[test]
    fn destinations() {
        assert_eq!(
            statement("ALTER SYSTEM SET DATA_BACKUP_DEST = 'file:///backup'"),
            set(
                "data_backup_dest",
                SetValue::String("file:///backup".into()),
                None
            )
        );
        assert_eq!(
            statement("alter system set backup_dest = 's3://b/p?region=x' tenant = T1"),
            set(
                "backup_dest",
                SetValue::String("s3://b/p?region=x".into()),
                Some("t1")
            )
        );
        assert_eq!(
            statement(
                "ALTER SYSTEM SET LOG_ARCHIVE_DEST = \
                 'LOCATION=file:///arch BINDING=MANDATORY PIECE_SWITCH_INTERVAL=1d' TENANT = t"
            ),
            set(
                "log_archive_dest",
                SetValue::String(
                    "LOCATION=file:///arch BINDING=MANDATORY PIECE_SWITCH_INTERVAL=1d".into()
                ),
                Some("t")
            )
        );
        assert_eq!(
            statement("ALTER SYSTEM SET LOG_ARCHIVE_DEST_STATE = 'DEFER' TENANT t"),
            set(
                "log_archive_dest_state",
                SetValue::String("DEFER".into()),
                Some("t")
            )
        );
        assert_eq!(
            statement("ALTER SYSTEM SET BACKUP_BACKUP_DEST = 'file:///copies'"),
            set(
                "backup_backup_dest",
                SetValue::String("file:///copies".into()),
                None
            )
        );
    }

    #[test]
    fn parameters() {
        assert_eq!(
            statement("ALTER SYSTEM SET backup_concurrency = 4"),
            set("backup_concurrency", SetValue::Number("4".into()), None)
        );
        assert_eq!(
            statement("ALTER SYSTEM SET x = -1.5"),
            set("x", SetValue::Number("-1.5".into()), None)
        );
        assert_eq!(
            statement("ALTER SYSTEM SET backup_checkpoint_restart TO TRUE"),
            set(
                "backup_checkpoint_restart",
                SetValue::Word("TRUE".into()),
                None
            )
        );
        assert_eq!(
            statement("ALTER SYSTEM SET backup_checkpoint_interval = 30s"),
            set(
                "backup_checkpoint_interval",
                SetValue::Word("30s".into()),
                None
            )
        );
        assert_eq!(
            statement("ALTER SYSTEM SET backup_checkpoint_min_bytes = 32MB"),
            set(
                "backup_checkpoint_min_bytes",
                SetValue::Word("32MB".into()),
                None
            )
        );
        assert_eq!(
            statement("ALTER SYSTEM SET backup_compression = 'zstd:1'"),
            set(
                "backup_compression",
                SetValue::String("zstd:1".into()),
                None
            )
        );
    }

    #[test]
    fn a_value_is_required() {
        let e = error("ALTER SYSTEM SET backup_concurrency =");
        assert_eq!(e.position, 38);
        assert_eq!(
            e.message,
            "syntax error at end of input: expected a quoted string, a number or a word after ="
        );
    }

    #[test]
    fn a_number_and_a_separate_word_is_trailing_garbage() {
        let e = error("ALTER SYSTEM SET backup_concurrency = 4 cores");
        assert_eq!(e.position, 41);
        assert_eq!(
            e.message,
            "syntax error at or near \"cores\": expected TENANT or end of statement after 4"
        );
    }
}
