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
}

/// Every backup statement of SPEC §2, one variant each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statement {
    // §2.1 tenants and destinations
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
    /// `ALTER SYSTEM SET name = value [TENANT = t]`: destinations (`DATA_BACKUP_DEST`,
    /// `LOG_ARCHIVE_DEST`, ...) and the parameters of SPEC §5 alike. `name` is lower case.
    SetParameter {
        name: String,
        value: SetValue,
        tenant: Option<String>,
    },
    ImportBackup {
        uri: String,
    },

    // §2.2 data backup and its control
    Backup {
        incremental: bool,
        scope: BackupScope,
        plus_archivelog: bool,
        description: Option<String>,
    },
    CancelBackup {
        tenants: Option<Vec<String>>,
    },
    StopBackup {
        tenants: Option<Vec<String>>,
    },
    SuspendBackup {
        tenants: Option<Vec<String>>,
    },
    ResumeBackup {
        tenants: Option<Vec<String>>,
    },
    RestartBackupContext {
        context_id: String,
    },
    DeleteBackupContext {
        context_id: String,
    },
    CancelAllBackupForce,

    // §2.3 archive log
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

    // §2.4 backup-backup
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

    // §2.5 restore and validate
    Restore {
        new_name: String,
        from: String,
        at: Option<String>,
        until: Option<RestoreUntil>,
        to: String,
        method: Option<RestoreMethod>,
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

    // §2.6 deletion and retention
    DeleteBackupset {
        set_id: i64,
        copy: Option<i64>,
    },
    DeleteBackuppiece {
        piece_id: i64,
        copy: Option<i64>,
    },
    DeleteObsoleteBackup,
    AddDeleteBackupPolicy {
        name: String,
        recovery_window: String,
        tenant: Option<String>,
    },
    DropDeleteBackupPolicy {
        name: String,
        tenant: Option<String>,
    },
    CancelDeleteBackup,

    // §2.7 plans and policies
    CreateBackupPolicy {
        name: String,
        schedule: String,
        timezone: Option<String>,
    },
    CreateBackupPlan {
        name: String,
        tenants: Vec<String>,
        policies: Vec<String>,
        chain_length: Option<i64>,
        retention: Option<Retention>,
        notify: Option<String>,
    },
    AlterBackupPlanEnable {
        name: String,
        enable: bool,
    },
    AlterBackupPlanSet {
        name: String,
        change: PlanChange,
    },
    DropBackupPlan {
        name: String,
    },
    DropBackupPolicy {
        name: String,
    },
    RunBackupPlan {
        name: String,
    },

    // §2.8 users and access
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

    // §2.9 waiting
    WaitJob {
        job_id: i64,
        timeout: Option<String>,
    },
}

// ---------------------------------------------------------------------------------------------
// What each statement is: its name, the role it needs and whether it starts a job.

impl Statement {
    /// The role a session needs to run this statement (SPEC §2.8). Encryption keys are
    /// session-level, so setting them is an operator's business, not only an admin's.
    pub fn required_role(&self) -> Role {
        use Statement::*;
        match self {
            CreateTenant { .. }
            | AlterTenantSetLogSource { .. }
            | DropTenant { .. }
            | SetParameter { .. }
            | ImportBackup { .. }
            | AddDeleteBackupPolicy { .. }
            | DropDeleteBackupPolicy { .. }
            | CreateBackupPolicy { .. }
            | CreateBackupPlan { .. }
            | AlterBackupPlanEnable { .. }
            | AlterBackupPlanSet { .. }
            | DropBackupPlan { .. }
            | DropBackupPolicy { .. }
            | CreateUser { .. }
            | AlterUser { .. }
            | DropUser { .. } => Role::Admin,
            WaitJob { .. } => Role::Monitor,
            Backup { .. }
            | CancelBackup { .. }
            | StopBackup { .. }
            | SuspendBackup { .. }
            | ResumeBackup { .. }
            | RestartBackupContext { .. }
            | DeleteBackupContext { .. }
            | CancelAllBackupForce
            | Archivelog { .. }
            | NoArchivelog { .. }
            | PushArchivelog { .. }
            | GetArchivelog { .. }
            | BackupBackupset { .. }
            | BackupBackuppiece { .. }
            | StartBackupArchivelog
            | StopBackupArchivelog
            | CancelBackupBackupset
            | CancelBackupBackuppiece
            | StopBackupBackupset
            | StopBackupBackuppiece
            | Restore { .. }
            // A preview reads any destination named by AT, so it is not a monitor's SELECT.
            | RestorePreview { .. }
            | CancelRestore { .. }
            | Validate { .. }
            | CancelValidate { .. }
            | DeleteBackupset { .. }
            | DeleteBackuppiece { .. }
            | DeleteObsoleteBackup
            | CancelDeleteBackup
            | RunBackupPlan { .. }
            | SetEncryption { .. }
            | SetDecryption { .. } => Role::Operator,
        }
    }

    /// The statement's name as a DBA reads it, for messages such as
    /// `ALTER SYSTEM VALIDATE is not supported yet`.
    pub fn name(&self) -> &'static str {
        use Statement::*;
        match self {
            CreateTenant { .. } => "CREATE TENANT",
            AlterTenantSetLogSource { .. } => "ALTER TENANT",
            DropTenant { .. } => "DROP TENANT",
            SetParameter { .. } => "ALTER SYSTEM SET",
            ImportBackup { .. } => "ALTER SYSTEM IMPORT BACKUP",
            Backup {
                scope: BackupScope::Database,
                ..
            } => "ALTER SYSTEM BACKUP DATABASE",
            Backup {
                scope: BackupScope::Tenants(_),
                ..
            } => "ALTER SYSTEM BACKUP TENANT",
            CancelBackup { .. } => "ALTER SYSTEM CANCEL BACKUP",
            StopBackup { .. } => "ALTER SYSTEM STOP BACKUP",
            SuspendBackup { .. } => "ALTER SYSTEM SUSPEND BACKUP",
            ResumeBackup { .. } => "ALTER SYSTEM RESUME BACKUP",
            RestartBackupContext { .. } => "ALTER SYSTEM RESTART BACKUP CONTEXT",
            DeleteBackupContext { .. } => "ALTER SYSTEM DELETE BACKUP CONTEXT",
            CancelAllBackupForce => "ALTER SYSTEM CANCEL ALL BACKUP FORCE",
            Archivelog { .. } => "ALTER SYSTEM ARCHIVELOG",
            NoArchivelog { .. } => "ALTER SYSTEM NOARCHIVELOG",
            PushArchivelog { .. } => "ALTER SYSTEM PUSH ARCHIVELOG",
            GetArchivelog { .. } => "ALTER SYSTEM GET ARCHIVELOG",
            BackupBackupset { .. } => "ALTER SYSTEM BACKUP BACKUPSET",
            BackupBackuppiece { .. } => "ALTER SYSTEM BACKUP BACKUPPIECE",
            StartBackupArchivelog => "ALTER SYSTEM START BACKUP ARCHIVELOG",
            StopBackupArchivelog => "ALTER SYSTEM STOP BACKUP ARCHIVELOG",
            CancelBackupBackupset => "ALTER SYSTEM CANCEL BACKUP BACKUPSET",
            CancelBackupBackuppiece => "ALTER SYSTEM CANCEL BACKUP BACKUPPIECE",
            StopBackupBackupset => "ALTER SYSTEM STOP BACKUP BACKUPSET",
            StopBackupBackuppiece => "ALTER SYSTEM STOP BACKUP BACKUPPIECE",
            Restore { .. } => "ALTER SYSTEM RESTORE",
            RestorePreview { .. } => "ALTER SYSTEM RESTORE PREVIEW",
            CancelRestore { .. } => "ALTER SYSTEM CANCEL RESTORE",
            Validate { .. } => "ALTER SYSTEM VALIDATE",
            CancelValidate { .. } => "ALTER SYSTEM CANCEL VALIDATE",
            DeleteBackupset { .. } => "ALTER SYSTEM DELETE BACKUPSET",
            DeleteBackuppiece { .. } => "ALTER SYSTEM DELETE BACKUPPIECE",
            DeleteObsoleteBackup => "ALTER SYSTEM DELETE OBSOLETE BACKUP",
            AddDeleteBackupPolicy { .. } => "ALTER SYSTEM ADD DELETE BACKUP POLICY",
            DropDeleteBackupPolicy { .. } => "ALTER SYSTEM DROP DELETE BACKUP POLICY",
            CancelDeleteBackup => "ALTER SYSTEM CANCEL DELETE BACKUP",
            CreateBackupPolicy { .. } => "CREATE BACKUP POLICY",
            CreateBackupPlan { .. } => "CREATE BACKUP PLAN",
            AlterBackupPlanEnable { .. } | AlterBackupPlanSet { .. } => "ALTER BACKUP PLAN",
            DropBackupPlan { .. } => "DROP BACKUP PLAN",
            DropBackupPolicy { .. } => "DROP BACKUP POLICY",
            RunBackupPlan { .. } => "ALTER SYSTEM RUN BACKUP PLAN",
            CreateUser { .. } => "CREATE USER",
            AlterUser { .. } => "ALTER USER",
            DropUser { .. } => "DROP USER",
            SetEncryption { .. } => "SET ENCRYPTION",
            SetDecryption { .. } => "SET DECRYPTION",
            WaitJob { .. } => "ALTER SYSTEM WAIT JOB",
        }
    }

    /// Whether the statement starts a job, and so may end with `WAIT` (SPEC §2.9).
    pub fn starts_job(&self) -> bool {
        use Statement::*;
        matches!(
            self,
            Backup { .. }
                | Archivelog { .. }
                | NoArchivelog { .. }
                | BackupBackupset { .. }
                | BackupBackuppiece { .. }
                | StartBackupArchivelog
                | Restore { .. }
                | Validate { .. }
                | DeleteBackupset { .. }
                | DeleteBackuppiece { .. }
                | DeleteObsoleteBackup
                | RunBackupPlan { .. }
                | ResumeBackup { .. }
                | RestartBackupContext { .. }
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Canonical SQL. Every form printed here is one the parser accepts, and parses back to the same
// value; the parser never produces an empty name or list, so those are not printable.

/// Names that the parser reads as a keyword where a name may stand (`TENANT = all`,
/// `RESTORE FROM`), so a tenant or plan called that must be double-quoted.
const RESERVED_NAMES: &[&str] = &["all", "from"];

/// A tenant, user, plan or policy name: bare when it reads back unchanged, else double-quoted.
struct Ident<'a>(&'a str);

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
struct Idents<'a>(&'a [String]);

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
struct Literal<'a>(&'a str);

impl fmt::Display for Literal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}'", self.0.replace('\'', "''"))
    }
}

/// An optional ` KEYWORD = 'string'` clause.
fn string_clause(f: &mut fmt::Formatter<'_>, keyword: &str, value: &Option<String>) -> fmt::Result {
    match value {
        Some(value) => write!(f, " {keyword} = {}", Literal(value)),
        None => Ok(()),
    }
}

/// An optional ` TENANT = a, b` clause.
fn tenants_clause(f: &mut fmt::Formatter<'_>, tenants: &Option<Vec<String>>) -> fmt::Result {
    match tenants {
        Some(tenants) => write!(f, " TENANT = {}", Idents(tenants)),
        None => Ok(()),
    }
}

/// An optional ` TENANT = t` clause.
fn tenant_clause(f: &mut fmt::Formatter<'_>, tenant: &Option<String>) -> fmt::Result {
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
        }
    }
}

impl fmt::Display for Statement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Statement::*;
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
            SetParameter {
                name,
                value,
                tenant,
            } => {
                write!(f, "ALTER SYSTEM SET {name} = {value}")?;
                tenant_clause(f, tenant)
            }
            ImportBackup { uri } => write!(f, "ALTER SYSTEM IMPORT BACKUP FROM {}", Literal(uri)),
            Backup {
                incremental,
                scope,
                plus_archivelog,
                description,
            } => {
                f.write_str("ALTER SYSTEM BACKUP ")?;
                if *incremental {
                    f.write_str("INCREMENTAL ")?;
                }
                scope.fmt(f)?;
                if *plus_archivelog {
                    f.write_str(" PLUS ARCHIVELOG")?;
                }
                string_clause(f, "DESCRIPTION", description)
            }
            CancelBackup { tenants } => {
                f.write_str("ALTER SYSTEM CANCEL BACKUP")?;
                tenants_clause(f, tenants)
            }
            StopBackup { tenants } => {
                f.write_str("ALTER SYSTEM STOP BACKUP")?;
                tenants_clause(f, tenants)
            }
            SuspendBackup { tenants } => {
                f.write_str("ALTER SYSTEM SUSPEND BACKUP")?;
                tenants_clause(f, tenants)
            }
            ResumeBackup { tenants } => {
                f.write_str("ALTER SYSTEM RESUME BACKUP")?;
                tenants_clause(f, tenants)
            }
            RestartBackupContext { context_id } => write!(
                f,
                "ALTER SYSTEM RESTART BACKUP CONTEXT {}",
                Literal(context_id)
            ),
            DeleteBackupContext { context_id } => write!(
                f,
                "ALTER SYSTEM DELETE BACKUP CONTEXT {}",
                Literal(context_id)
            ),
            CancelAllBackupForce => f.write_str("ALTER SYSTEM CANCEL ALL BACKUP FORCE"),
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
            Restore {
                new_name,
                from,
                at,
                until,
                to,
                method,
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
                if let Some(method) = method {
                    write!(f, " WITH 'method={method}'")?;
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
            DeleteBackupset { set_id, copy } => {
                write!(f, "ALTER SYSTEM DELETE BACKUPSET {set_id}")?;
                match copy {
                    Some(copy) => write!(f, " COPY {copy}"),
                    None => Ok(()),
                }
            }
            DeleteBackuppiece { piece_id, copy } => {
                write!(f, "ALTER SYSTEM DELETE BACKUPPIECE {piece_id}")?;
                match copy {
                    Some(copy) => write!(f, " COPY {copy}"),
                    None => Ok(()),
                }
            }
            DeleteObsoleteBackup => f.write_str("ALTER SYSTEM DELETE OBSOLETE BACKUP"),
            AddDeleteBackupPolicy {
                name,
                recovery_window,
                tenant,
            } => {
                write!(
                    f,
                    "ALTER SYSTEM ADD DELETE BACKUP POLICY = {} RECOVERY_WINDOW = {}",
                    Literal(name),
                    Literal(recovery_window)
                )?;
                tenant_clause(f, tenant)
            }
            DropDeleteBackupPolicy { name, tenant } => {
                write!(
                    f,
                    "ALTER SYSTEM DROP DELETE BACKUP POLICY = {}",
                    Literal(name)
                )?;
                tenant_clause(f, tenant)
            }
            CancelDeleteBackup => f.write_str("ALTER SYSTEM CANCEL DELETE BACKUP"),
            CreateBackupPolicy {
                name,
                schedule,
                timezone,
            } => {
                write!(
                    f,
                    "CREATE BACKUP POLICY {} SCHEDULE = {}",
                    Ident(name),
                    Literal(schedule)
                )?;
                string_clause(f, "TIMEZONE", timezone)
            }
            CreateBackupPlan {
                name,
                tenants,
                policies,
                chain_length,
                retention,
                notify,
            } => {
                write!(
                    f,
                    "CREATE BACKUP PLAN {} FOR TENANT = {} POLICY = {}",
                    Ident(name),
                    Idents(tenants),
                    Idents(policies)
                )?;
                if let Some(n) = chain_length {
                    write!(f, " CHAIN_LENGTH = {n}")?;
                }
                if let Some(retention) = retention {
                    write!(f, " RETENTION = {retention}")?;
                }
                string_clause(f, "NOTIFY", notify)
            }
            AlterBackupPlanEnable { name, enable } => write!(
                f,
                "ALTER BACKUP PLAN {} {}",
                Ident(name),
                if *enable { "ENABLE" } else { "DISABLE" }
            ),
            AlterBackupPlanSet { name, change } => {
                write!(f, "ALTER BACKUP PLAN {} SET {change}", Ident(name))
            }
            DropBackupPlan { name } => write!(f, "DROP BACKUP PLAN {}", Ident(name)),
            DropBackupPolicy { name } => write!(f, "DROP BACKUP POLICY {}", Ident(name)),
            RunBackupPlan { name } => write!(f, "ALTER SYSTEM RUN BACKUP PLAN {}", Ident(name)),
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
            WaitJob { job_id, timeout } => {
                write!(f, "ALTER SYSTEM WAIT JOB {job_id}")?;
                string_clause(f, "TIMEOUT", timeout)
            }
        }
    }
}
