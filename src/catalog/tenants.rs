//! Tenants: the protected sources, with their ids, kinds and log sources.

use super::{Catalog, CatalogError, Row, SYS_TENANT_ID, Value, now_micros};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantKind {
    System,
    Directory,
    Postgres,
}

impl TenantKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TenantKind::System => "system",
            TenantKind::Directory => "directory",
            TenantKind::Postgres => "postgres",
        }
    }

    fn parse(s: &str) -> TenantKind {
        match s {
            "directory" => TenantKind::Directory,
            "postgres" => TenantKind::Postgres,
            _ => TenantKind::System,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: i64,
    pub name: String,
    pub kind: TenantKind,
    /// `dir:///abs/path` or `postgres://user@host:port/db`.
    pub source: Option<String>,
    pub log_source: Option<String>,
    pub pgdata: Option<String>,
    pub log_mode: String,
}

impl Tenant {
    /// The folder a data backup of this tenant copies: a directory tenant's SOURCE, a
    /// PostgreSQL tenant's PGDATA.
    pub fn tree(&self) -> Option<std::path::PathBuf> {
        match self.kind {
            TenantKind::Directory => self
                .source
                .as_deref()
                .and_then(crate::source::uri::dir_path),
            TenantKind::Postgres => self.pgdata.as_deref().map(std::path::PathBuf::from),
            TenantKind::System => None,
        }
    }
}

/// What `CREATE TENANT` records.
#[derive(Debug, Clone)]
pub struct NewTenant {
    pub name: String,
    pub kind: TenantKind,
    pub source: String,
    pub log_source: Option<String>,
    pub pgdata: Option<String>,
}

const COLUMNS: &str =
    "tenant_id, tenant_name, kind, coalesce(raw_source, source), log_source, pgdata, log_mode";

fn from_row(mut row: Row) -> Tenant {
    let mut take = |i: usize| std::mem::replace(&mut row[i], Value::Null);
    Tenant {
        id: take(0).as_i64().unwrap_or_default(),
        name: take(1).into_string().unwrap_or_default(),
        kind: TenantKind::parse(take(2).as_str().unwrap_or_default()),
        source: take(3).into_string(),
        log_source: take(4).into_string(),
        pgdata: take(5).into_string(),
        log_mode: take(6).into_string().unwrap_or_default(),
    }
}

impl Catalog {
    /// A registered (not dropped) tenant by name.
    pub fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>, CatalogError> {
        let rows = self.read(
            &format!("SELECT {COLUMNS} FROM tenant WHERE tenant_name = ? AND status = 'NORMAL'"),
            &[name.into()],
        )?;
        Ok(rows.into_iter().next().map(from_row))
    }

    /// A tenant by id, dropped or not.
    pub fn tenant_by_id(&self, id: i64) -> Result<Option<Tenant>, CatalogError> {
        let rows = self.read(
            &format!("SELECT {COLUMNS} FROM tenant WHERE tenant_id = ?"),
            &[id.into()],
        )?;
        Ok(rows.into_iter().next().map(from_row))
    }

    /// Every registered user tenant, in tenant-id order (the order tasks are processed in).
    pub fn user_tenants(&self) -> Result<Vec<Tenant>, CatalogError> {
        let rows = self.read(
            &format!(
                "SELECT {COLUMNS} FROM tenant WHERE status = 'NORMAL' AND tenant_id <> ? \
                 ORDER BY tenant_id"
            ),
            &[SYS_TENANT_ID.into()],
        )?;
        Ok(rows.into_iter().map(from_row).collect())
    }

    pub fn create_tenant(&self, new: &NewTenant) -> Result<Tenant, CatalogError> {
        let id = self.write(|tx| {
            let id = Catalog::next_id(tx, "tenant")?;
            tx.execute(
                "INSERT INTO tenant (tenant_id, tenant_name, kind, source, log_source, pgdata, \
                 log_mode, status, create_time, raw_source) VALUES (?, ?, ?, ?, ?, ?, \
                 'NOARCHIVELOG', 'NORMAL', ?, ?)",
                &[
                    id.into(),
                    new.name.as_str().into(),
                    new.kind.as_str().into(),
                    super::mask_secrets(&new.source).into(),
                    new.log_source.clone().into(),
                    new.pgdata.clone().into(),
                    now_micros().into(),
                    new.source.as_str().into(),
                ],
            )?;
            Ok(id)
        })?;
        Ok(Tenant {
            id,
            name: new.name.clone(),
            kind: new.kind,
            source: Some(new.source.clone()),
            log_source: new.log_source.clone(),
            pgdata: new.pgdata.clone(),
            log_mode: "NOARCHIVELOG".into(),
        })
    }

    pub fn set_log_source(&self, tenant_id: i64, log_source: &str) -> Result<(), CatalogError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE tenant SET log_source = ? WHERE tenant_id = ?",
                &[log_source.into(), tenant_id.into()],
            )?;
            Ok(())
        })
    }

    /// What registration found a PostgreSQL tenant's cluster to be, as DBA_OB_TENANTS shows it.
    pub fn set_tenant_cluster(
        &self,
        tenant_id: i64,
        version: &str,
        system_identifier: u64,
        archive_mode: &str,
        data_checksums: bool,
    ) -> Result<(), CatalogError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE tenant SET pg_version = ?, system_identifier = ?, archive_mode = ?, \
                 data_checksums = ? WHERE tenant_id = ?",
                &[
                    version.into(),
                    system_identifier.to_string().into(),
                    archive_mode.into(),
                    if data_checksums { "on" } else { "off" }.into(),
                    tenant_id.into(),
                ],
            )?;
            Ok(())
        })
    }

    /// Unregisters a tenant; its backups, jobs and sets stay in the catalog and destinations.
    pub fn drop_tenant(&self, tenant_id: i64) -> Result<(), CatalogError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE tenant SET status = 'DROPPED', drop_time = ? WHERE tenant_id = ?",
                &[now_micros().into(), tenant_id.into()],
            )?;
            Ok(())
        })
    }
}
