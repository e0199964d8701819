//! CREATE / ALTER / DROP USER and their roles.

use super::Control;
use crate::sql::ast::UserStatement;

use super::{Caller, Outcome};
use crate::catalog::Catalog;
use crate::error::{SqlError, SqlResult};
use crate::sql::ast::Role;

pub fn create(catalog: &Catalog, name: &str, password: &str, role: Role) -> SqlResult<Outcome> {
    if password.is_empty() {
        return Err(SqlError::invalid_value("a user needs a non-empty password"));
    }
    if catalog.user(name)?.is_some() {
        return Err(SqlError::duplicate(format!("user {name} already exists")));
    }
    catalog.create_user(name, password, role)?;
    Ok(Outcome::Done("CREATE USER"))
}

pub fn alter(
    catalog: &Catalog,
    caller: &Caller,
    name: &str,
    password: Option<&str>,
    role: Option<Role>,
) -> SqlResult<Outcome> {
    let user = find(catalog, name)?;
    if password == Some("") {
        return Err(SqlError::invalid_value("a user needs a non-empty password"));
    }
    if user.role == Role::Admin && role.is_some_and(|r| r != Role::Admin) {
        keep_an_admin(catalog, caller, name)?;
    }
    catalog.alter_user(name, password, role)?;
    Ok(Outcome::Done("ALTER USER"))
}

pub fn drop(catalog: &Catalog, caller: &Caller, name: &str) -> SqlResult<Outcome> {
    let user = find(catalog, name)?;
    if user.role == Role::Admin {
        keep_an_admin(catalog, caller, name)?;
    }
    catalog.drop_user(name)?;
    Ok(Outcome::Done("DROP USER"))
}

fn find(catalog: &Catalog, name: &str) -> SqlResult<crate::catalog::users::User> {
    catalog
        .user(name)?
        .ok_or_else(|| SqlError::undefined(format!("user {name} does not exist")))
}

/// Nobody could administer the server without an admin.
fn keep_an_admin(catalog: &Catalog, caller: &Caller, name: &str) -> SqlResult<()> {
    if catalog.count_role(Role::Admin)? <= 1 {
        return Err(SqlError::wrong_state(format!(
            "{name} is the last admin; create another admin first (asked by {})",
            caller.user
        )));
    }
    Ok(())
}

impl Control {
    /// The destination a password statement is about: its `AT`, else the DATA_BACKUP_DEST.
    fn password_destination(&self, at: Option<&str>) -> SqlResult<String> {
        match at {
            Some(uri) => Ok(uri.to_string()),
            None => self
                .catalog
                .parameter(crate::catalog::SYS_TENANT_ID, "data_backup_dest")?
                .ok_or_else(|| {
                    SqlError::wrong_state("no DATA_BACKUP_DEST is set")
                        .with_hint("name the destination with AT 'file:///path'")
                }),
        }
    }

    /// Applies a statement of this family for `caller`; `wait` is its trailing `WAIT`.
    pub(super) fn apply_user(
        &self,
        caller: &Caller,
        statement: &UserStatement,
        _wait: bool,
    ) -> SqlResult<Outcome> {
        match statement {
            UserStatement::CreateUser {
                name,
                password,
                role,
            } => create(&self.catalog, name, password, role.unwrap_or(Role::Monitor)),
            UserStatement::AlterUser {
                name,
                password,
                role,
            } => alter(&self.catalog, caller, name, password.as_deref(), *role),
            UserStatement::DropUser { name } => drop(&self.catalog, caller, name),
            UserStatement::SetEncryption { password, .. } => Ok(Outcome::SessionKeys(
                super::keys::change(Some(password), &[])?,
            )),
            UserStatement::SetDecryption { passwords } => {
                Ok(Outcome::SessionKeys(super::keys::change(None, passwords)?))
            }
            UserStatement::AddBackupPassword {
                password,
                existing,
                at,
            } => {
                let uri = self.password_destination(at.as_deref())?;
                super::keys::add_password(&self.catalog, &uri, existing, password)?;
                Ok(Outcome::Done("ALTER SYSTEM"))
            }
            UserStatement::DropBackupPassword { password, at } => {
                let uri = self.password_destination(at.as_deref())?;
                super::keys::drop_password(&self.catalog, &uri, password)?;
                Ok(Outcome::Done("ALTER SYSTEM"))
            }
            UserStatement::ChangeBackupPassword { old, new, at } => {
                let uri = self.password_destination(at.as_deref())?;
                super::keys::add_password(&self.catalog, &uri, old, new)?;
                super::keys::drop_password(&self.catalog, &uri, old)?;
                Ok(Outcome::Done("ALTER SYSTEM"))
            }
        }
    }
}
