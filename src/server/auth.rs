//! Who may connect: SCRAM-SHA-256 against the catalog's users, the first `admin`, and TLS.

use std::fs::File;
use std::io::{BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;

use async_trait::async_trait;
use pgwire::api::auth::sasl::scram::ScramSecret;
use pgwire::api::auth::{AuthSource, LoginInfo, Password};
use pgwire::error::{PgWireError, PgWireResult};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig as TlsConfig;

use super::{ServerConfig, StartError};
use crate::catalog::Catalog;
use crate::sql::ast::Role;

/// The file in the data directory holding a generated admin password (mode 0600).
pub const ADMIN_PASSWORD_FILE: &str = "admin-password";

#[derive(Debug)]
pub struct CatalogAuth {
    catalog: Arc<Catalog>,
}

impl CatalogAuth {
    pub fn new(catalog: Arc<Catalog>) -> CatalogAuth {
        CatalogAuth { catalog }
    }
}

#[async_trait]
impl AuthSource for CatalogAuth {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        Err(PgWireError::InvalidPassword(
            login.user().unwrap_or_default().to_string(),
        ))
    }

    async fn get_scram_secret(&self, login: &LoginInfo) -> PgWireResult<(ScramSecret, Option<()>)> {
        let name = login.user().unwrap_or_default();
        let user = self
            .catalog
            .user(name)
            .map_err(|e| PgWireError::ApiError(Box::new(e)))?
            .ok_or_else(|| PgWireError::InvalidPassword(name.to_string()))?;
        Ok((user.secret, None))
    }
}

/// On first start, creates `admin` with the configured password, or a generated one that is
/// printed once and kept in a 0600 file. A server reachable from other hosts must be given its
/// password: it never starts with one nobody chose.
pub fn bootstrap_admin(catalog: &Catalog, config: &ServerConfig) -> Result<(), StartError> {
    if catalog.user_count()? > 0 {
        return Ok(());
    }
    let password = match &config.admin_password {
        Some(p) if !p.is_empty() => p.clone(),
        _ if !config.listen.ip().is_loopback() => {
            return Err(StartError::Refused(format!(
                "refusing to listen on {} without a password: set BACKSTOP_ADMIN_PASSWORD or \
                 --admin-password for the first start",
                config.listen
            )));
        }
        _ => generate_password(config)?,
    };
    catalog.create_user("admin", &password, Role::Admin)?;
    Ok(())
}

fn generate_password(config: &ServerConfig) -> Result<String, StartError> {
    let bytes: [u8; 18] = rand::random();
    let password: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let path = config.data_dir.join(ADMIN_PASSWORD_FILE);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut f| {
            f.write_all(password.as_bytes())?;
            f.sync_all()?;
            Ok(f)
        })
        .map_err(|e| StartError::Refused(format!("cannot write {}: {e}", path.display())))?;
    file.flush().ok();
    println!(
        "backstop: created user admin with password {password} (also in {}, mode 0600)",
        path.display()
    );
    Ok(password)
}

pub fn tls_acceptor(config: &ServerConfig) -> Result<Option<TlsAcceptor>, StartError> {
    let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else {
        if config.tls_cert.is_some() || config.tls_key.is_some() {
            return Err(StartError::Tls(
                "--tls-cert and --tls-key go together".into(),
            ));
        }
        if config.tls_required {
            return Err(StartError::Tls(
                "--tls-required needs --tls-cert and --tls-key".into(),
            ));
        }
        return Ok(None);
    };
    let open = |p: &std::path::Path| {
        File::open(p)
            .map(BufReader::new)
            .map_err(|e| StartError::Tls(format!("{}: {e}", p.display())))
    };
    let certs = rustls_pemfile::certs(&mut open(cert)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| StartError::Tls(format!("{}: {e}", cert.display())))?;
    let key = rustls_pemfile::private_key(&mut open(key)?)
        .map_err(|e| StartError::Tls(format!("{}: {e}", key.display())))?
        .ok_or_else(|| StartError::Tls(format!("{}: no private key found", key.display())))?;
    let tls = TlsConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| StartError::Tls(e.to_string()))?;
    Ok(Some(TlsAcceptor::from(Arc::new(tls))))
}
