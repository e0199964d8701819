//! The SQL front door: splits a query string into statements, parses backstop's own statements
//! (SPEC §2) into the typed tree of `ast`, one module per statement family, and hands every
//! other statement's text to DataFusion untouched.

pub mod ast;

mod archive;
pub mod audit;
pub use archive::SegmentBytes;
mod backup;
mod backup_backup;
mod cursor;
mod delete;
mod lexer;
mod plan;
mod restore;
mod statement;
mod system_set;
mod tenant;
mod user;
mod wait;

use std::fmt;

/// One statement of a query string, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// One of backstop's statements.
    Backstop(ast::Command),
    /// Any other statement: its own text, without the trailing `;`, for DataFusion.
    Other(String),
}

/// A syntax error in a backstop statement or in the tokens of the query string (SQLSTATE 42601).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
    /// 1-based character offset of the offending token in the query string, as PostgreSQL's
    /// ErrorResponse 'P' field; one past the last character at the end of input.
    pub position: usize,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParseError {}

/// Parses every statement of `sql`, in order. The first backstop statement that does not parse
/// fails the whole string, as PostgreSQL refuses a query string with a syntax error anywhere.
pub fn parse(sql: &str) -> Result<Vec<Parsed>, ParseError> {
    let lexemes = lexer::lex(sql)?;
    lexer::split(sql, &lexemes)
        .iter()
        .map(|piece| {
            let mut cursor = cursor::Cursor::new(piece);
            if statement::is_backstop(&cursor) {
                statement::parse_command(&mut cursor).map(Parsed::Backstop)
            } else {
                Ok(Parsed::Other(piece.text.to_string()))
            }
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers for the statement tests of every family: parse one statement, check that its
    //! canonical SQL parses back to the same command, or get its syntax error.

    use super::ast::{Command, Statement};
    use super::{ParseError, Parsed, parse};

    /// Parses `sql` as exactly one backstop command, and checks its `Display` round trip.
    pub fn command(sql: &str) -> Command {
        let parsed = parse(sql).unwrap_or_else(|e| panic!("{sql}: {e} at {}", e.position));
        let [Parsed::Backstop(command)] = parsed.as_slice() else {
            panic!("{sql}: expected one backstop statement, got {parsed:?}");
        };
        let canonical = command.to_string();
        assert_eq!(
            parse(&canonical),
            Ok(vec![Parsed::Backstop(command.clone())]),
            "canonical form {canonical:?} of {sql:?}"
        );
        command.clone()
    }

    /// Parses `sql` as exactly one backstop statement without `WAIT`.
    pub fn statement(sql: &str) -> Statement {
        let command = command(sql);
        assert!(!command.wait, "{sql}: unexpected WAIT");
        command.statement
    }

    /// The syntax error of `sql`.
    pub fn error(sql: &str) -> ParseError {
        match parse(sql) {
            Err(e) => e,
            Ok(parsed) => panic!("{sql}: expected a syntax error, got {parsed:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ast::ArchiveStatement;
    use super::ast::Statement;
    use super::testing::error;
    use super::{Parsed, parse};

    #[test]
    fn splits_at_semicolons_outside_strings() {
        let parsed = parse("SELECT 1; ALTER SYSTEM BACKUP DATABASE; select ';' as x").unwrap();
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[0], Parsed::Other("SELECT 1".into()));
        let Parsed::Backstop(command) = &parsed[1] else {
            panic!("{parsed:?}");
        };
        assert_eq!(command.statement.name(), "ALTER SYSTEM BACKUP DATABASE");
        assert_eq!(parsed[2], Parsed::Other("select ';' as x".into()));
    }

    #[test]
    fn skips_empty_statements_and_keeps_other_text_exactly() {
        let sql = " ;; -- a comment\n SELECT \"é\" ,\n  'x''y'  /* tail */ ;\n;";
        assert_eq!(
            parse(sql),
            Ok(vec![Parsed::Other("SELECT \"é\" ,\n  'x''y'".into())])
        );
        assert_eq!(parse(""), Ok(vec![]));
        assert_eq!(parse("  -- nothing\n"), Ok(vec![]));
    }

    #[test]
    fn only_the_leading_words_decide() {
        for other in [
            "ALTER TABLE t ADD COLUMN c int",
            "CREATE TABLE backup (x int)",
            "SELECT * FROM cdb_ob_backup_jobs WHERE tenant = 'ALTER SYSTEM'",
            "SET search_path = public",
            "\"ALTER\" SYSTEM BACKUP DATABASE",
        ] {
            assert_eq!(parse(other), Ok(vec![Parsed::Other(other.into())]));
        }
    }

    #[test]
    fn several_backstop_statements() {
        let parsed = parse("alter system archivelog;ALTER SYSTEM BACKUP DATABASE WAIT").unwrap();
        assert!(matches!(
            &parsed[..],
            [Parsed::Backstop(a), Parsed::Backstop(b)]
                if a.statement == Statement::Archive(ArchiveStatement::Archivelog { tenants: None }) && b.wait
        ));
    }

    #[test]
    fn unknown_word_after_alter_system() {
        let e = error("ALTER SYSTEM FLY");
        assert_eq!(e.position, 14);
        assert!(
            e.message
                .starts_with("syntax error at or near \"FLY\": expected "),
            "{}",
            e.message
        );
        assert!(e.message.ends_with(" after SYSTEM"), "{}", e.message);
        for word in ["SET", "BACKUP", "RESTORE", "VALIDATE", "ARCHIVELOG", "WAIT"] {
            assert!(e.message.contains(word), "{word} missing in {}", e.message);
        }
    }

    #[test]
    fn error_positions_count_characters_across_lines_and_statements() {
        let e = error("SELECT 'é';\nALTER SYSTEM\n  BACKUP FOO");
        assert_eq!(e.position, 35);
    }

    #[test]
    fn an_error_at_the_semicolon_names_it() {
        let e = error("ALTER SYSTEM BACKUP; SELECT 1");
        assert_eq!(e.position, 20);
        assert!(
            e.message.starts_with("syntax error at or near \";\": "),
            "{}",
            e.message
        );
    }

    #[test]
    fn trailing_garbage() {
        let e = error("ALTER SYSTEM BACKUP DATABASE PLUS ARCHIVELOG NOW");
        assert_eq!(e.position, 46);
        assert_eq!(
            e.message,
            "syntax error at or near \"NOW\": expected DESCRIPTION, WAIT or end of statement \
             after ARCHIVELOG"
        );
    }

    #[test]
    fn unterminated_string() {
        let e = error("ALTER SYSTEM RESTORE n FROM t TO 'dir:///x");
        assert_eq!(e.position, 34);
        assert_eq!(e.message, "syntax error: unterminated string literal");
        let e = error("SELECT 1;\nSELECT 'é\n");
        assert_eq!(e.position, 18);
    }

    #[test]
    fn unterminated_quoted_name() {
        let e = error("DROP TENANT \"abc");
        assert_eq!(e.position, 13);
    }

    #[test]
    fn empty_quoted_name() {
        let e = error("DROP TENANT \"\"");
        assert_eq!(e.position, 13);
        assert_eq!(
            e.message,
            "syntax error at or near \"\"\"\": a quoted name cannot be empty"
        );
    }

    #[test]
    fn names_roles_and_jobs() {
        let command = |sql| match parse(sql).unwrap().remove(0) {
            Parsed::Backstop(command) => command.statement,
            other => panic!("{other:?}"),
        };
        let validate = command("ALTER SYSTEM VALIDATE DATABASE");
        assert_eq!(validate.name(), "ALTER SYSTEM VALIDATE");
        assert_eq!(
            command("ALTER SYSTEM CANCEL BACKUP BACKUPSET").name(),
            "ALTER SYSTEM CANCEL BACKUP BACKUPSET"
        );
        use super::ast::Role;
        assert_eq!(command("DROP TENANT t").required_role(), Role::Admin);
        assert_eq!(
            command("SET ENCRYPTION ON IDENTIFIED BY 'p'").required_role(),
            Role::Operator
        );
        assert_eq!(validate.required_role(), Role::Operator);
        assert_eq!(
            command("ALTER SYSTEM WAIT JOB 1").required_role(),
            Role::Monitor
        );
        assert!(validate.starts_job());
        assert!(!command("ALTER SYSTEM RESTORE FROM t UNTIL BACKUPSET 1 PREVIEW").starts_job());
    }

    mod round_trip {
        //! Every command the parser can produce prints as SQL that parses back to itself.

        use proptest::prelude::*;

        use crate::sql::ast::*;
        use crate::sql::{Parsed, parse};

        /// Every word of the grammar: used as a name, each must stay a name after printing.
        #[rustfmt::skip]
        const KEYWORDS: &[&str] = &[
            "active", "add", "admin", "all", "alter", "archivelog", "archivelog_piece", "at",
            "backed", "backup", "backup_backup_dest", "backuppiece", "backupset", "by", "cancel",
            "chain_length", "chains", "context", "copy", "create", "database", "decryption",
            "delete", "description", "disable", "drop", "enable", "encryption", "for", "force",
            "forever", "from", "identified", "import", "incremental", "job", "level", "log_source",
            "monitor", "noarchivelog", "not", "notify", "obsolete", "on", "only", "operator",
            "password", "pgdata", "plan", "plus", "policy", "preview", "recovery_window", "restart",
            "restore", "resume", "retention", "role", "run", "schedule", "set", "source", "start",
            "stop", "suspend", "system", "tenant", "time", "timeout", "times", "timezone", "to",
            "until", "up", "user", "validate", "wait", "with",
        ];

        /// Every place a name stands, with the optional clauses after it left out so that the
        /// name is last, where it is easiest to mistake for a keyword.
        fn statements_naming(n: &str) -> Vec<Statement> {
            let s = || n.to_string();
            let list = || vec![s()];
            let restore = |new_name, from| {
                Statement::Restore(RestoreStatement::Restore {
                    new_name,
                    from,
                    at: None,
                    until: None,
                    to: "dir:///x".into(),
                    method: None,
                    tablespace_map: Vec::new(),
                    description: None,
                })
            };
            let plan = |name, tenants, policies| {
                Statement::Plan(PlanStatement::CreateBackupPlan {
                    name,
                    tenants,
                    policies,
                    chain_length: None,
                    retention: None,
                    notify: None,
                })
            };
            vec![
                Statement::Tenant(TenantStatement::CreateTenant {
                    name: s(),
                    source: "x".into(),
                    log_source: None,
                    pgdata: None,
                }),
                Statement::Tenant(TenantStatement::AlterTenantSetLogSource {
                    name: s(),
                    log_source: "x".into(),
                }),
                Statement::Tenant(TenantStatement::DropTenant { name: s() }),
                Statement::Parameter(ParameterStatement::SetParameter {
                    name: "p".into(),
                    value: SetValue::Word(s()),
                    tenant: None,
                }),
                Statement::Parameter(ParameterStatement::SetParameter {
                    name: "p".into(),
                    value: SetValue::Word(s()),
                    tenant: Some(s()),
                }),
                Statement::Backup(BackupStatement::Backup {
                    incremental: false,
                    scope: BackupScope::Tenants(list()),
                    plus_archivelog: false,
                    description: None,
                }),
                Statement::Backup(BackupStatement::CancelBackup {
                    tenants: Some(list()),
                }),
                Statement::Backup(BackupStatement::StopBackup {
                    tenants: Some(list()),
                }),
                Statement::Backup(BackupStatement::SuspendBackup {
                    tenants: Some(list()),
                }),
                Statement::Backup(BackupStatement::ResumeBackup {
                    tenants: Some(list()),
                }),
                Statement::Archive(ArchiveStatement::Archivelog {
                    tenants: Some(TenantScope::List(list())),
                }),
                Statement::Archive(ArchiveStatement::NoArchivelog {
                    tenants: Some(TenantScope::List(vec![s(), s()])),
                }),
                Statement::BackupBackup(BackupBackupStatement::BackupBackupset {
                    selector: CopySelector::One(1),
                    tenant: Some(s()),
                    dest: None,
                }),
                Statement::BackupBackup(BackupBackupStatement::BackupBackuppiece {
                    selector: CopySelector::One(1),
                    with_active: true,
                    tenant: Some(s()),
                    dest: None,
                }),
                restore(s(), "t".into()),
                restore("t".into(), s()),
                Statement::Restore(RestoreStatement::RestorePreview {
                    from: s(),
                    at: None,
                    until: RestoreUntil::BackupSet(1),
                }),
                Statement::Restore(RestoreStatement::CancelRestore { name: s() }),
                Statement::Delete(DeleteStatement::AddDeleteBackupPolicy {
                    name: "p".into(),
                    recovery_window: "1d".into(),
                    tenant: Some(s()),
                }),
                Statement::Delete(DeleteStatement::DropDeleteBackupPolicy {
                    name: "p".into(),
                    tenant: Some(s()),
                }),
                Statement::Plan(PlanStatement::CreateBackupPolicy {
                    name: s(),
                    schedule: "x".into(),
                    timezone: None,
                }),
                plan(s(), vec!["t".into()], vec!["p".into()]),
                plan("n".into(), list(), vec!["p".into()]),
                plan("n".into(), vec!["t".into()], list()),
                Statement::Plan(PlanStatement::AlterBackupPlanEnable {
                    name: s(),
                    enable: true,
                }),
                Statement::Plan(PlanStatement::AlterBackupPlanSet {
                    name: s(),
                    change: PlanChange::Tenants(list()),
                }),
                Statement::Plan(PlanStatement::DropBackupPlan { name: s() }),
                Statement::Plan(PlanStatement::DropBackupPolicy { name: s() }),
                Statement::Plan(PlanStatement::RunBackupPlan { name: s() }),
                Statement::User(UserStatement::CreateUser {
                    name: s(),
                    password: "x".into(),
                    role: None,
                }),
                Statement::User(UserStatement::AlterUser {
                    name: s(),
                    password: None,
                    role: Some(Role::Monitor),
                }),
                Statement::User(UserStatement::DropUser { name: s() }),
            ]
        }

        #[test]
        fn grammar_words_stay_names() {
            for word in KEYWORDS {
                for name in [word.to_string(), word.to_ascii_uppercase()] {
                    for statement in statements_naming(&name) {
                        for wait in [false, statement.starts_job()] {
                            let command = Command {
                                statement: statement.clone(),
                                wait,
                            };
                            let sql = command.to_string();
                            assert_eq!(parse(&sql), Ok(vec![Parsed::Backstop(command)]), "{sql}");
                        }
                    }
                }
            }
        }

        fn name() -> impl Strategy<Value = String> {
            prop_oneof![
                3 => "[a-z_][a-z0-9_]{0,10}",
                3 => proptest::sample::select(KEYWORDS).prop_map(str::to_string),
                2 => "[A-Za-z0-9 \"'_$.-]{1,10}",
                2 => any::<String>().prop_filter("names are not empty", |s| !s.is_empty()),
            ]
        }

        fn names() -> impl Strategy<Value = Vec<String>> {
            proptest::collection::vec(name(), 1..4)
        }

        fn string() -> impl Strategy<Value = String> {
            prop_oneof!["[a-z' \";=/:*-]{0,12}", any::<String>()]
        }

        fn opt<T: std::fmt::Debug>(
            s: impl Strategy<Value = T>,
        ) -> impl Strategy<Value = Option<T>> {
            proptest::option::of(s)
        }

        fn tenant_statements() -> BoxedStrategy<Statement> {
            prop_oneof![
                (name(), string(), opt(string()), opt(string())).prop_map(
                    |(name, source, log_source, pgdata)| Statement::Tenant(
                        TenantStatement::CreateTenant {
                            name,
                            source,
                            log_source,
                            pgdata
                        }
                    )
                ),
                (name(), string()).prop_map(|(name, log_source)| {
                    Statement::Tenant(TenantStatement::AlterTenantSetLogSource { name, log_source })
                }),
                name().prop_map(|name| Statement::Tenant(TenantStatement::DropTenant { name })),
                string().prop_map(|uri| Statement::Tenant(TenantStatement::ImportBackup { uri })),
                ("[a-z_][a-z0-9_]{0,20}", set_value(), opt(name())).prop_map(
                    |(name, value, tenant)| Statement::Parameter(
                        ParameterStatement::SetParameter {
                            name,
                            value,
                            tenant
                        }
                    )
                ),
            ]
            .boxed()
        }

        fn set_value() -> impl Strategy<Value = SetValue> {
            prop_oneof![
                string().prop_map(SetValue::String),
                "-?[0-9]{1,6}(\\.[0-9]{1,4})?".prop_map(SetValue::Number),
                "[A-Za-z_][A-Za-z0-9_]{0,8}".prop_map(SetValue::Word),
                "[0-9]{1,4}(s|m|h|d|ms|MB|GB|kb)".prop_map(SetValue::Word),
            ]
        }

        fn backup_statements() -> BoxedStrategy<Statement> {
            let scope = prop_oneof![
                Just(BackupScope::Database),
                names().prop_map(BackupScope::Tenants)
            ];
            let tenants = || opt(names());
            prop_oneof![
                (any::<bool>(), scope, any::<bool>(), opt(string())).prop_map(
                    |(incremental, scope, plus_archivelog, description)| Statement::Backup(
                        BackupStatement::Backup {
                            incremental,
                            scope,
                            plus_archivelog,
                            description
                        }
                    )
                ),
                tenants().prop_map(|tenants| Statement::Backup(BackupStatement::CancelBackup {
                    tenants
                })),
                tenants()
                    .prop_map(|tenants| Statement::Backup(BackupStatement::StopBackup { tenants })),
                tenants().prop_map(|tenants| Statement::Backup(BackupStatement::SuspendBackup {
                    tenants
                })),
                tenants().prop_map(|tenants| Statement::Backup(BackupStatement::ResumeBackup {
                    tenants
                })),
                string().prop_map(|context_id| Statement::Backup(
                    BackupStatement::RestartBackupContext { context_id }
                )),
                string().prop_map(|context_id| Statement::Backup(
                    BackupStatement::DeleteBackupContext { context_id }
                )),
                Just(Statement::Backup(BackupStatement::CancelAllBackupForce)),
            ]
            .boxed()
        }

        fn archive_and_copy_statements() -> BoxedStrategy<Statement> {
            let scope = || {
                opt(prop_oneof![
                    Just(TenantScope::All),
                    names().prop_map(TenantScope::List)
                ])
            };
            let selector = || {
                prop_oneof![
                    any::<i64>().prop_map(CopySelector::One),
                    opt(any::<i64>()).prop_map(|not_backed_up_times| CopySelector::All {
                        not_backed_up_times
                    }),
                ]
            };
            prop_oneof![
                scope().prop_map(|tenants| Statement::Archive(ArchiveStatement::Archivelog {
                    tenants
                })),
                scope().prop_map(
                    |tenants| Statement::Archive(ArchiveStatement::NoArchivelog { tenants })
                ),
                (string(), name()).prop_map(|(path, tenant)| Statement::Archive(
                    ArchiveStatement::PushArchivelog { path, tenant }
                )),
                (string(), name(), string()).prop_map(|(name, tenant, to)| Statement::Archive(
                    ArchiveStatement::GetArchivelog { name, tenant, to }
                )),
                (selector(), opt(name()), opt(string())).prop_map(|(selector, tenant, dest)| {
                    Statement::BackupBackup(BackupBackupStatement::BackupBackupset {
                        selector,
                        tenant,
                        dest,
                    })
                }),
                (selector(), any::<bool>(), opt(name()), opt(string())).prop_map(
                    |(selector, with_active, tenant, dest)| Statement::BackupBackup(
                        BackupBackupStatement::BackupBackuppiece {
                            selector,
                            with_active,
                            tenant,
                            dest
                        }
                    )
                ),
                Just(Statement::BackupBackup(
                    BackupBackupStatement::StartBackupArchivelog
                )),
                Just(Statement::BackupBackup(
                    BackupBackupStatement::StopBackupArchivelog
                )),
                Just(Statement::BackupBackup(
                    BackupBackupStatement::CancelBackupBackupset
                )),
                Just(Statement::BackupBackup(
                    BackupBackupStatement::CancelBackupBackuppiece
                )),
                Just(Statement::BackupBackup(
                    BackupBackupStatement::StopBackupBackupset
                )),
                Just(Statement::BackupBackup(
                    BackupBackupStatement::StopBackupBackuppiece
                )),
            ]
            .boxed()
        }

        fn restore_statements() -> BoxedStrategy<Statement> {
            let until = || {
                prop_oneof![
                    string().prop_map(RestoreUntil::Time),
                    any::<i64>().prop_map(RestoreUntil::BackupSet),
                ]
            };
            let method = prop_oneof![Just(RestoreMethod::Full), Just(RestoreMethod::Delta)];
            let target = prop_oneof![
                Just(ValidateTarget::Database),
                any::<i64>().prop_map(ValidateTarget::BackupSet),
                any::<i64>().prop_map(ValidateTarget::ArchivelogPiece),
            ];
            let level = prop_oneof![Just(ValidateLevel::Basic), Just(ValidateLevel::Physical)];
            let restore = (
                (name(), name(), opt(string())),
                (opt(until()), string(), opt(method), opt(string())),
            )
                .prop_map(
                    |((new_name, from, at), (until, to, method, description))| {
                        Statement::Restore(RestoreStatement::Restore {
                            new_name,
                            from,
                            at,
                            until,
                            to,
                            method,
                            tablespace_map: Vec::new(),
                            description,
                        })
                    },
                );
            prop_oneof![
                restore,
                (name(), opt(string()), until()).prop_map(|(from, at, until)| Statement::Restore(
                    RestoreStatement::RestorePreview { from, at, until }
                )),
                name()
                    .prop_map(|name| Statement::Restore(RestoreStatement::CancelRestore { name })),
                (target, opt(string()), opt(level)).prop_map(|(target, at, level)| {
                    Statement::Restore(RestoreStatement::Validate { target, at, level })
                }),
                opt(any::<i64>()).prop_map(|job_id| Statement::Restore(
                    RestoreStatement::CancelValidate { job_id }
                )),
            ]
            .boxed()
        }

        fn delete_statements() -> BoxedStrategy<Statement> {
            prop_oneof![
                (
                    proptest::collection::vec(any::<i64>(), 1..4),
                    opt(any::<i64>()),
                    opt(name())
                )
                    .prop_map(|(set_ids, copy, tenant)| Statement::Delete(
                        DeleteStatement::DeleteBackupset {
                            set_ids,
                            copy,
                            tenant
                        }
                    )),
                (any::<i64>(), opt(any::<i64>()), opt(name())).prop_map(
                    |(piece_id, copy, tenant)| Statement::Delete(
                        DeleteStatement::DeleteBackuppiece {
                            piece_id,
                            copy,
                            tenant
                        }
                    )
                ),
                opt(name()).prop_map(|tenant| Statement::Delete(
                    DeleteStatement::DeleteObsoleteBackup { tenant }
                )),
                (string(), string(), opt(name())).prop_map(|(name, recovery_window, tenant)| {
                    Statement::Delete(DeleteStatement::AddDeleteBackupPolicy {
                        name,
                        recovery_window,
                        tenant,
                    })
                }),
                (string(), opt(name())).prop_map(|(name, tenant)| Statement::Delete(
                    DeleteStatement::DropDeleteBackupPolicy { name, tenant }
                )),
                Just(Statement::Delete(DeleteStatement::CancelDeleteBackup)),
            ]
            .boxed()
        }

        fn plan_statements() -> BoxedStrategy<Statement> {
            let retention = || {
                prop_oneof![
                    Just(Retention::Forever),
                    any::<i64>().prop_map(Retention::Chains)
                ]
            };
            let change = prop_oneof![
                names().prop_map(PlanChange::Tenants),
                any::<i64>().prop_map(PlanChange::ChainLength),
                retention().prop_map(PlanChange::Retention),
                string().prop_map(PlanChange::Notify),
                names().prop_map(PlanChange::Policies),
            ];
            let plan = (
                (name(), names(), names()),
                (opt(any::<i64>()), opt(retention()), opt(string())),
            )
                .prop_map(
                    |((name, tenants, policies), (chain_length, retention, notify))| {
                        Statement::Plan(PlanStatement::CreateBackupPlan {
                            name,
                            tenants,
                            policies,
                            chain_length,
                            retention,
                            notify,
                        })
                    },
                );
            prop_oneof![
                (name(), string(), opt(string())).prop_map(|(name, schedule, timezone)| {
                    Statement::Plan(PlanStatement::CreateBackupPolicy {
                        name,
                        schedule,
                        timezone,
                    })
                }),
                plan,
                (name(), any::<bool>()).prop_map(|(name, enable)| Statement::Plan(
                    PlanStatement::AlterBackupPlanEnable { name, enable }
                )),
                (name(), change).prop_map(|(name, change)| Statement::Plan(
                    PlanStatement::AlterBackupPlanSet { name, change }
                )),
                name().prop_map(|name| Statement::Plan(PlanStatement::DropBackupPlan { name })),
                name().prop_map(|name| Statement::Plan(PlanStatement::DropBackupPolicy { name })),
                name().prop_map(|name| Statement::Plan(PlanStatement::RunBackupPlan { name })),
            ]
            .boxed()
        }

        fn user_statements() -> BoxedStrategy<Statement> {
            let role = || prop_oneof![Just(Role::Admin), Just(Role::Operator), Just(Role::Monitor)];
            prop_oneof![
                (name(), string(), opt(role())).prop_map(|(name, password, role)| {
                    Statement::User(UserStatement::CreateUser {
                        name,
                        password,
                        role,
                    })
                }),
                (name(), opt(string()), opt(role()))
                    .prop_filter("ALTER USER changes something", |(_, p, r)| {
                        p.is_some() || r.is_some()
                    })
                    .prop_map(
                        |(name, password, role)| Statement::User(UserStatement::AlterUser {
                            name,
                            password,
                            role
                        })
                    ),
                name().prop_map(|name| Statement::User(UserStatement::DropUser { name })),
                (string(), any::<bool>()).prop_map(|(password, only)| Statement::User(
                    UserStatement::SetEncryption { password, only }
                )),
                proptest::collection::vec(string(), 1..4).prop_map(|passwords| Statement::User(
                    UserStatement::SetDecryption { passwords }
                )),
                (any::<i64>(), opt(string())).prop_map(|(job_id, timeout)| Statement::Wait(
                    WaitStatement::WaitJob { job_id, timeout }
                )),
            ]
            .boxed()
        }

        /// A command of one family, with `WAIT` where the statement allows it.
        fn command(statement: BoxedStrategy<Statement>) -> impl Strategy<Value = Command> {
            (statement, any::<bool>()).prop_map(|(statement, wait)| Command {
                wait: wait && statement.starts_job(),
                statement,
            })
        }

        fn assert_round_trip(command: Command) -> Result<(), TestCaseError> {
            let sql = command.to_string();
            prop_assert_eq!(parse(&sql), Ok(vec![Parsed::Backstop(command)]), "{}", sql);
            Ok(())
        }

        /// The canonical text of a command with one word dropped or one word or symbol put in,
        /// so that the parser is driven deep before it meets the damage.
        fn damaged_command_text() -> impl Strategy<Value = String> {
            let statement = prop_oneof![
                tenant_statements(),
                backup_statements(),
                archive_and_copy_statements(),
                restore_statements(),
                delete_statements(),
                plan_statements(),
                user_statements(),
            ];
            let insert = prop_oneof![
                proptest::sample::select(KEYWORDS).prop_map(str::to_ascii_uppercase),
                "[=,;'\"-]|-?[0-9]{1,2}(\\.[0-9])?|[a-z]{1,3}",
            ];
            (
                command(statement.boxed()),
                any::<proptest::sample::Index>(),
                any::<bool>(),
                insert,
            )
                .prop_map(|(command, at, drop, insert)| {
                    let mut words: Vec<String> =
                        command.to_string().split(' ').map(str::to_string).collect();
                    let at = at.index(words.len());
                    if drop {
                        words.remove(at);
                    } else {
                        words.insert(at, insert);
                    }
                    words.join(" ")
                })
        }

        proptest! {
            #[test]
            fn damaged_text_fails_at_a_real_position_or_round_trips(
                sql in damaged_command_text()
            ) {
                match parse(&sql) {
                    Err(e) => prop_assert!(
                        (1..=sql.chars().count() + 1).contains(&e.position),
                        "{:?} for {:?}", e, sql
                    ),
                    Ok(parsed) => {
                        for parsed in parsed {
                            if let Parsed::Backstop(command) = parsed {
                                assert_round_trip(command)?;
                            }
                        }
                    }
                }
            }

            #[test]
            fn tenants_and_parameters(c in command(tenant_statements())) {
                assert_round_trip(c)?;
            }

            #[test]
            fn backups(c in command(backup_statements())) {
                assert_round_trip(c)?;
            }

            #[test]
            fn archive_and_copies(c in command(archive_and_copy_statements())) {
                assert_round_trip(c)?;
            }

            #[test]
            fn restores(c in command(restore_statements())) {
                assert_round_trip(c)?;
            }

            #[test]
            fn deletes(c in command(delete_statements())) {
                assert_round_trip(c)?;
            }

            #[test]
            fn plans(c in command(plan_statements())) {
                assert_round_trip(c)?;
            }

            #[test]
            fn users_and_waiting(c in command(user_statements())) {
                assert_round_trip(c)?;
            }
        }
    }
}
