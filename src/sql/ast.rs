//! The typed syntax tree of backstop's own statements (SPEC §2).
//!
//! Every statement that is not one of these goes to DataFusion untouched. Each type's `Display`
//! prints canonical SQL that parses back to the same value (proven by a property test in
//! `sql::tests`), so the tree can be logged, stored in a plan or shown to a DBA as SQL.

use std::fmt;

/// A parsed backstop statement with its trailing `WAIT`, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub statement: Statement,
    /// `... WAIT`: block until the job the statement starts has ended (SPEC §2.9).
    pub wait: bool,
}

/// Roles live with the users who have them, in the catalog.
pub use crate::catalog::users::Role;

/// `TENANT = all` or `TENANT = a, b`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantScope {
    All,
    List(Vec<String>),
}

/// What `BACKUP [INCREMENTAL] ...` covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupScope {
    Database,
    Tenants(Vec<String>),
}

/// `BACKUPSET n` / `BACKUPPIECE n` or `... ALL [NOT BACKED UP n TIMES]` of backup-backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopySelector {
    One(i64),
    All { not_backed_up_times: Option<i64> },
}

/// `UNTIL TIME = '...'` or `UNTIL BACKUPSET = n` of a restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreUntil {
    /// The time exactly as written, `YYYY-MM-DD HH:MI:SS[.ffffff]`; checked by `control`.
    Time(String),
    BackupSet(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreMethod {
    Full,
    Delta,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValidateTarget {
    Database,
    BackupSet(i64),
    ArchivelogPiece(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidateLevel {
    Basic,
    Physical,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retention {
    Forever,
    Chains(i64),
}

/// A value on the right of `ALTER SYSTEM SET name = value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetValue {
    /// `'text'`
    String(String),
    /// `42`, `1.5`
    Number(String),
    /// `true`, `zstd`: a bare word, kept as written.
    Word(String),
}

/// One change of `ALTER BACKUP PLAN name SET ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanChange {
    Tenants(Vec<String>),
    ChainLength(i64),
    Retention(Retention),
    Notify(String),
    /// Parsed to be refused by name: a plan's policies never change (the seed's rule).
    Policies(Vec<String>),
}

/// Declares the statement families: the `Statement` enum over them, and its role, name, job and
/// SQL, each asked of the family.
macro_rules! families {
    ($($family:ident($module:ident::$ty:ident),)*) => {
        $(pub use super::$module::$ty;)*

        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Statement {
            $($family($ty),)*
        }

        impl Statement {
            /// The role a session needs to run this statement (SPEC §2.8).
            pub fn required_role(&self) -> Role {
                match self {
                    $(Statement::$family(s) => s.required_role(),)*
                }
            }

            /// The statement's name as a DBA reads it, for messages such as
            /// `ALTER SYSTEM VALIDATE is not supported yet`.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Statement::$family(s) => s.name(),)*
                }
            }

            /// Whether the statement starts a job, and so may end with `WAIT` (SPEC §2.9).
            pub fn starts_job(&self) -> bool {
                match self {
                    $(Statement::$family(s) => s.starts_job(),)*
                }
            }
        }

        impl fmt::Display for Statement {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $(Statement::$family(s) => s.fmt(f),)*
                }
            }
        }

        $(impl From<$ty> for Statement {
            fn from(statement: $ty) -> Statement {
                Statement::$family(statement)
            }
        })*
    };
}

// A backstop statement: one variant per statement family, each family a type of its own in
// `sql/<family>.rs` (with its grammar, its SQL and the role it needs) and applied by
// `control/<family>.rs`. A new statement joins its family's type; a new family is one more line
// here.
families! {
    Tenant(tenant::TenantStatement),
    Parameter(system_set::ParameterStatement),
    Backup(backup::BackupStatement),
    Archive(archive::ArchiveStatement),
    BackupBackup(backup_backup::BackupBackupStatement),
    Restore(restore::RestoreStatement),
    Delete(delete::DeleteStatement),
    Plan(plan::PlanStatement),
    User(user::UserStatement),
    Wait(wait::WaitStatement),
}

// ---------------------------------------------------------------------------------------------
// Canonical SQL. Every form printed here is one the parser accepts, and parses back to the same
// value; the parser never produces an empty name or list, so those are not printable.

/// Names that the parser reads as a keyword where a name may stand (`TENANT = all`,
/// `RESTORE FROM`), so a tenant or plan called that must be double-quoted.
pub(super) const RESERVED_NAMES: &[&str] = &["all", "from"];

/// A tenant, user, plan or policy name: bare when it reads back unchanged, else double-quoted.
pub(super) struct Ident<'a>(pub(super) &'a str);

impl fmt::Display for Ident<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.0;
        let mut chars = name.chars();
        let plain = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && !RESERVED_NAMES.contains(&name);
        if plain {
            f.write_str(name)
        } else {
            write!(f, "\"{}\"", name.replace('"', "\"\""))
        }
    }
}

/// A comma-separated list of names.
pub(super) struct Idents<'a>(pub(super) &'a [String]);

impl fmt::Display for Idents<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, name) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            Ident(name).fmt(f)?;
        }
        Ok(())
    }
}

/// A string literal in standard SQL quoting: `'it''s'`.
pub(super) struct Literal<'a>(pub(super) &'a str);

impl fmt::Display for Literal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}'", self.0.replace('\'', "''"))
    }
}

/// An optional ` KEYWORD = 'string'` clause.
pub(super) fn string_clause(
    f: &mut fmt::Formatter<'_>,
    keyword: &str,
    value: &Option<String>,
) -> fmt::Result {
    match value {
        Some(value) => write!(f, " {keyword} = {}", Literal(value)),
        None => Ok(()),
    }
}

/// An optional ` TENANT = a, b` clause.
pub(super) fn tenants_clause(
    f: &mut fmt::Formatter<'_>,
    tenants: &Option<Vec<String>>,
) -> fmt::Result {
    match tenants {
        Some(tenants) => write!(f, " TENANT = {}", Idents(tenants)),
        None => Ok(()),
    }
}

/// An optional ` TENANT = t` clause.
pub(super) fn tenant_clause(f: &mut fmt::Formatter<'_>, tenant: &Option<String>) -> fmt::Result {
    match tenant {
        Some(tenant) => write!(f, " TENANT = {}", Ident(tenant)),
        None => Ok(()),
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.statement.fmt(f)?;
        if self.wait {
            f.write_str(" WAIT")?;
        }
        Ok(())
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Monitor => "monitor",
            Role::Operator => "operator",
            Role::Admin => "admin",
        })
    }
}

impl fmt::Display for TenantScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TenantScope::All => f.write_str("all"),
            TenantScope::List(tenants) => Idents(tenants).fmt(f),
        }
    }
}

impl fmt::Display for BackupScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackupScope::Database => f.write_str("DATABASE"),
            BackupScope::Tenants(tenants) => write!(f, "TENANT = {}", Idents(tenants)),
        }
    }
}

impl fmt::Display for CopySelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CopySelector::One(id) => write!(f, "= {id}"),
            CopySelector::All {
                not_backed_up_times: None,
            } => f.write_str("ALL"),
            CopySelector::All {
                not_backed_up_times: Some(times),
            } => write!(f, "ALL NOT BACKED UP {times} TIMES"),
        }
    }
}

impl fmt::Display for RestoreUntil {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestoreUntil::Time(time) => write!(f, "UNTIL TIME = {}", Literal(time)),
            RestoreUntil::BackupSet(id) => write!(f, "UNTIL BACKUPSET = {id}"),
        }
    }
}

impl fmt::Display for RestoreMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RestoreMethod::Full => "full",
            RestoreMethod::Delta => "delta",
        })
    }
}

impl fmt::Display for ValidateTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValidateTarget::Database => f.write_str("DATABASE"),
            ValidateTarget::BackupSet(id) => write!(f, "BACKUPSET = {id}"),
            ValidateTarget::ArchivelogPiece(id) => write!(f, "ARCHIVELOG_PIECE = {id}"),
        }
    }
}

impl fmt::Display for ValidateLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValidateLevel::Basic => "basic",
            ValidateLevel::Physical => "physical",
        })
    }
}

impl fmt::Display for Retention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Retention::Forever => f.write_str("FOREVER"),
            Retention::Chains(n) => write!(f, "{n} CHAINS"),
        }
    }
}

impl fmt::Display for SetValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetValue::String(value) => Literal(value).fmt(f),
            SetValue::Number(value) | SetValue::Word(value) => f.write_str(value),
        }
    }
}

impl fmt::Display for PlanChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanChange::Tenants(tenants) => write!(f, "TENANT = {}", Idents(tenants)),
            PlanChange::ChainLength(n) => write!(f, "CHAIN_LENGTH = {n}"),
            PlanChange::Retention(retention) => write!(f, "RETENTION = {retention}"),
            PlanChange::Notify(target) => write!(f, "NOTIFY = {}", Literal(target)),
            PlanChange::Policies(policies) => write!(f, "POLICY = {}", Idents(policies)),
        }
    }
}
