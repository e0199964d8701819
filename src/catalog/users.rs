//! Users and their roles. Passwords are kept only as SCRAM-SHA-256 verifiers (salt, iteration
//! count, stored key, server key), as PostgreSQL keeps them.

use pgwire::api::auth::sasl::scram::{ScramSecret, gen_salted_password};

use super::{Catalog, CatalogError, Value, now_micros};
/// The user roles of SPEC §2.8, weakest first so that `role >= Role::Operator` reads naturally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// SELECT only.
    Monitor,
    /// Also starts, stops and cancels jobs.
    Operator,
    /// Everything: destinations, tenants, users, encryption.
    Admin,
}

pub const SCRAM_ITERATIONS: usize = 4096;

#[derive(Debug)]
pub struct User {
    pub name: String,
    pub role: Role,
    pub secret: ScramSecret,
}

pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin",
        Role::Operator => "operator",
        Role::Monitor => "monitor",
    }
}

fn parse_role(s: &str) -> Role {
    match s {
        "admin" => Role::Admin,
        "operator" => Role::Operator,
        _ => Role::Monitor,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

/// `stored_key:server_key` in hex, derived from a password with a fresh salt.
fn verifier(password: &str) -> (Vec<u8>, String) {
    let salt: [u8; 16] = rand::random();
    let salted = gen_salted_password(password, &salt, SCRAM_ITERATIONS);
    match ScramSecret::verifier_from_salted_password(salt.to_vec(), salted, SCRAM_ITERATIONS) {
        ScramSecret::Verifier {
            salt,
            stored_key,
            server_key,
            ..
        } => (salt, format!("{}:{}", hex(&stored_key), hex(&server_key))),
        ScramSecret::SaltedPassword { .. } => unreachable!("verifier_from_salted_password"),
    }
}

impl Catalog {
    pub fn user(&self, name: &str) -> Result<Option<User>, CatalogError> {
        let rows = self.read(
            "SELECT role, salt, salted_password, iterations FROM user_account WHERE user_name = ?",
            &[name.into()],
        )?;
        Ok(rows.into_iter().next().map(|r| {
            let keys = r[2].as_str().unwrap_or_default();
            let (stored, server) = keys.split_once(':').unwrap_or_default();
            User {
                name: name.to_string(),
                role: parse_role(r[0].as_str().unwrap_or_default()),
                secret: ScramSecret::Verifier {
                    salt: unhex(r[1].as_str().unwrap_or_default()),
                    iterations: r[3].as_i64().unwrap_or(SCRAM_ITERATIONS as i64) as usize,
                    stored_key: unhex(stored),
                    server_key: unhex(server),
                },
            }
        }))
    }

    pub fn user_count(&self) -> Result<i64, CatalogError> {
        let rows = self.read("SELECT count(*) FROM user_account", &[])?;
        Ok(rows.first().and_then(|r| r[0].as_i64()).unwrap_or(0))
    }

    pub fn create_user(&self, name: &str, password: &str, role: Role) -> Result<(), CatalogError> {
        let (salt, keys) = verifier(password);
        self.write(|tx| {
            tx.execute(
                "INSERT INTO user_account (user_name, role, salt, salted_password, iterations, \
                 create_time) VALUES (?, ?, ?, ?, ?, ?)",
                &[
                    name.into(),
                    role_name(role).into(),
                    hex(&salt).into(),
                    keys.clone().into(),
                    (SCRAM_ITERATIONS as i64).into(),
                    now_micros().into(),
                ],
            )?;
            Ok(())
        })
    }

    pub fn alter_user(
        &self,
        name: &str,
        password: Option<&str>,
        role: Option<Role>,
    ) -> Result<(), CatalogError> {
        let secret = password.map(verifier);
        self.write(|tx| {
            if let Some((salt, keys)) = &secret {
                tx.execute(
                    "UPDATE user_account SET salt = ?, salted_password = ?, iterations = ? \
                     WHERE user_name = ?",
                    &[
                        hex(salt).into(),
                        keys.clone().into(),
                        (SCRAM_ITERATIONS as i64).into(),
                        name.into(),
                    ],
                )?;
            }
            if let Some(role) = role {
                tx.execute(
                    "UPDATE user_account SET role = ? WHERE user_name = ?",
                    &[role_name(role).into(), name.into()],
                )?;
            }
            Ok(())
        })
    }

    pub fn drop_user(&self, name: &str) -> Result<(), CatalogError> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM user_account WHERE user_name = ?",
                &[Value::from(name)],
            )?;
            Ok(())
        })
    }

    /// How many users hold `role`; the last admin cannot be dropped or demoted.
    pub fn count_role(&self, role: Role) -> Result<i64, CatalogError> {
        let rows = self.read(
            "SELECT count(*) FROM user_account WHERE role = ?",
            &[role_name(role).into()],
        )?;
        Ok(rows.first().and_then(|r| r[0].as_i64()).unwrap_or(0))
    }
}
