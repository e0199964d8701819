//! Turns a parsed backstop statement into catalog changes and executor requests, after checking
//! the caller's role and the objects the statement names. One file per statement family; this
//! file only dispatches.

mod destination;
mod system_set;
mod tenant;
mod user;

use std::sync::Arc;

use crate::catalog::Catalog;
use crate::error::{SqlError, SqlResult};
use crate::sql::ast::{Command, Role, Statement};

/// Who issued a statement.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: String,
    pub role: Role,
}

/// What a statement answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Done; the command tag to send (`ALTER SYSTEM`, `CREATE TENANT`, ...).
    Done(&'static str),
}

pub struct Control {
    catalog: Arc<Catalog>,
}

impl Control {
    pub fn new(catalog: Arc<Catalog>) -> Control {
        Control { catalog }
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    pub fn apply(&self, caller: &Caller, command: &Command) -> SqlResult<Outcome> {
        let statement = &command.statement;
        let needed = statement.required_role();
        if caller.role < needed {
            return Err(SqlError::not_permitted(format!(
                "permission denied: {} needs the {} role, and {} has the {} role",
                statement.name(),
                crate::catalog::users::role_name(needed),
                caller.user,
                crate::catalog::users::role_name(caller.role),
            ))
            .with_hint("an admin can grant it with ALTER USER name ROLE operator"));
        }
        tracing::info!(user = %caller.user, statement = %statement.name(), "applying statement");
        match statement {
            Statement::CreateTenant {
                name,
                source,
                log_source,
                pgdata,
            } => tenant::create(
                &self.catalog,
                name,
                source,
                log_source.as_deref(),
                pgdata.as_deref(),
            ),
            Statement::AlterTenantSetLogSource { name, log_source } => {
                tenant::set_log_source(&self.catalog, name, log_source)
            }
            Statement::DropTenant { name } => tenant::drop(&self.catalog, name),
            Statement::SetParameter {
                name,
                value,
                tenant,
            } => system_set::apply(&self.catalog, name, value, tenant.as_deref()),
            Statement::CreateUser {
                name,
                password,
                role,
            } => user::create(&self.catalog, name, password, role.unwrap_or(Role::Monitor)),
            Statement::AlterUser {
                name,
                password,
                role,
            } => user::alter(&self.catalog, caller, name, password.as_deref(), *role),
            Statement::DropUser { name } => user::drop(&self.catalog, caller, name),
            other => Err(SqlError::not_supported(format!(
                "{} is not supported by this server yet",
                other.name()
            ))
            .with_hint("see docs/reference.md for the statements this release runs")),
        }
    }
}
