//! CREATE / ALTER / DROP USER and their roles.

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
