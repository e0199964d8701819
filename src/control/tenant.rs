//! CREATE / ALTER / DROP TENANT: register the sources backstop protects.

use super::{Caller, Control, not_yet};
use crate::sql::ast::TenantStatement;

use std::path::{Path, PathBuf};

use super::Outcome;
use crate::catalog::Catalog;
use crate::catalog::tenants::{NewTenant, TenantKind};
use crate::error::{SqlError, SqlResult};

pub fn create(
    catalog: &Catalog,
    name: &str,
    source: &str,
    log_source: Option<&str>,
    pgdata: Option<&str>,
) -> SqlResult<Outcome> {
    if name == "sys" || name == "all" {
        return Err(SqlError::invalid_value(format!(
            "'{name}' is reserved and cannot name a tenant"
        )));
    }
    if catalog.tenant_by_name(name)?.is_some() {
        return Err(SqlError::duplicate(format!("tenant {name} already exists"))
            .with_ob("OB_TENANT_EXIST", 5157));
    }
    let mut cluster = None;
    let kind = if source.starts_with("postgres://") || source.starts_with("postgresql://") {
        TenantKind::Postgres
    } else {
        TenantKind::Directory
    };
    match kind {
        TenantKind::Directory => {
            if pgdata.is_some() {
                return Err(SqlError::invalid_value(
                    "PGDATA applies to PostgreSQL tenants only, whose SOURCE is postgres://...",
                ));
            }
            readable_directory("SOURCE", source)?;
        }
        _ => {
            check_postgres_uri(source)?;
            let pgdata = pgdata.ok_or_else(|| {
                SqlError::invalid_value("a PostgreSQL tenant needs PGDATA = '/abs/path/of/data'")
            })?;
            let dir = absolute_dir("PGDATA", pgdata)?;
            if !dir.join("PG_VERSION").is_file() {
                return Err(SqlError::invalid_value(format!(
                    "PGDATA {pgdata} is not a PostgreSQL data directory (no PG_VERSION file)"
                )));
            }
            cluster = Some(inspect_cluster(source, &dir)?);
        }
    }
    if let Some(log) = log_source {
        readable_directory("LOG_SOURCE", log)?;
    }
    let tenant = catalog.create_tenant(&NewTenant {
        name: name.to_string(),
        kind,
        source: source.to_string(),
        log_source: log_source.map(str::to_string),
        pgdata: pgdata.map(str::to_string),
    })?;
    if let Some(cluster) = cluster {
        catalog.set_tenant_cluster(
            tenant.id,
            &cluster.version,
            cluster.system_identifier,
            &cluster.archive_mode,
            cluster.data_checksums,
        )?;
    }
    tracing::info!(tenant = %tenant.name, tenant_id = tenant.id, "tenant created");
    Ok(Outcome::Done("CREATE TENANT"))
}

pub fn set_log_source(catalog: &Catalog, name: &str, log_source: &str) -> SqlResult<Outcome> {
    let tenant = find(catalog, name)?;
    if tenant.kind == TenantKind::Directory {
        readable_directory("LOG_SOURCE", log_source)?;
    }
    catalog.set_log_source(tenant.id, log_source)?;
    Ok(Outcome::Done("ALTER TENANT"))
}

pub fn drop(catalog: &Catalog, name: &str) -> SqlResult<Outcome> {
    let tenant = find(catalog, name)?;
    catalog.drop_tenant(tenant.id)?;
    tracing::info!(tenant = %tenant.name, tenant_id = tenant.id, "tenant dropped; its backups stay");
    Ok(Outcome::Done("DROP TENANT"))
}

/// The tenant a statement names, when it names one.
pub fn find_optional(
    catalog: &Catalog,
    name: Option<&str>,
) -> SqlResult<Option<crate::catalog::tenants::Tenant>> {
    name.map(|name| find(catalog, name)).transpose()
}

pub fn find(catalog: &Catalog, name: &str) -> SqlResult<crate::catalog::tenants::Tenant> {
    catalog
        .tenant_by_name(name)?
        .ok_or_else(|| SqlError::unknown_tenant(name))
}

/// `dir:///abs/path` as an absolute path that exists and can be listed.
fn readable_directory(what: &str, uri: &str) -> SqlResult<PathBuf> {
    let path = crate::source::uri::dir_path(uri).ok_or_else(|| {
        SqlError::invalid_value(format!(
            "{what} '{}' is not a directory URI: write dir:///absolute/path",
            crate::catalog::mask_secrets(uri)
        ))
    })?;
    let dir = absolute_dir(what, &path.to_string_lossy())?;
    std::fs::read_dir(&dir).map_err(|e| {
        SqlError::invalid_value(format!(
            "{what} {} cannot be read by the server: {e}",
            dir.display()
        ))
    })?;
    Ok(dir)
}

fn absolute_dir(what: &str, path: &str) -> SqlResult<PathBuf> {
    let dir = Path::new(path);
    if !dir.is_absolute() {
        return Err(SqlError::invalid_value(format!(
            "{what} path {path} must be absolute"
        )));
    }
    if !dir.is_dir() {
        return Err(SqlError::invalid_value(format!(
            "{what} {path} does not exist or is not a directory"
        )));
    }
    Ok(dir.to_path_buf())
}

/// Connects to the cluster and checks it can be backed up (see
/// [`crate::source::postgres::inspect`]); every problem in one error.
fn inspect_cluster(source: &str, pgdata: &Path) -> SqlResult<crate::source::postgres::ClusterInfo> {
    use crate::source::postgres::ClusterError;
    let inspected = tokio::runtime::Handle::current()
        .block_on(crate::source::postgres::inspect(source, pgdata));
    inspected.map_err(|e| match e {
        ClusterError::Unreachable { .. } => {
            SqlError::new(crate::error::sqlstate::UNABLE_TO_CONNECT, e.to_string())
                .with_hint("check the SOURCE's host, port, user and password, and pg_hba.conf")
        }
        ClusterError::NotReady { .. } | ClusterError::Refused { .. } => {
            SqlError::wrong_state(e.to_string())
        }
    })
}

fn check_postgres_uri(uri: &str) -> SqlResult<()> {
    let rest = uri.split_once("://").map(|(_, r)| r).unwrap_or_default();
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host = host.split('/').next().unwrap_or_default();
    if host.is_empty() {
        return Err(SqlError::invalid_value(format!(
            "SOURCE '{}' names no host: write postgres://user@host:port/db",
            crate::catalog::mask_secrets(uri)
        )));
    }
    Ok(())
}

impl Control {
    /// Applies a statement of this family for `caller`; `wait` is its trailing `WAIT`.
    pub(super) fn apply_tenant(
        &self,
        caller: &Caller,
        statement: &TenantStatement,
        _wait: bool,
    ) -> SqlResult<Outcome> {
        match statement {
            TenantStatement::CreateTenant {
                name,
                source,
                log_source,
                pgdata,
            } => create(
                &self.catalog,
                name,
                source,
                log_source.as_deref(),
                pgdata.as_deref(),
            ),
            TenantStatement::AlterTenantSetLogSource { name, log_source } => {
                set_log_source(&self.catalog, name, log_source)
            }
            TenantStatement::DropTenant { name } => drop(&self.catalog, name),
            // Parsed completely, answered honestly: not run by this release.
            TenantStatement::ImportBackup { .. } => Err(not_yet(statement.name())),
            TenantStatement::RepairBackupDest { uri } => {
                super::repair::repair(&self.catalog, &caller.keys, uri)
            }
        }
    }
}
