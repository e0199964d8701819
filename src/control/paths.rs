//! Least privilege for the paths a statement names (SPEC §5 `allowed_paths`). An admin may name
//! any path. An operator may push and get archive log only inside a tenant's own log folder
//! (its LOG_SOURCE, or `pg_wal` under a PostgreSQL tenant's PGDATA), and may restore, or name a
//! second destination, only inside a folder listed in `allowed_paths` (empty by default: none).
//! Paths are compared after symlinks are resolved, so a link cannot lead out of a folder.

use crate::sql::ast::{ArchiveStatement, BackupBackupStatement, RestoreStatement};
use std::path::{Component, Path, PathBuf};

use crate::catalog::tenants::{Tenant, TenantKind};
use crate::catalog::{Catalog, SYS_TENANT_ID};
use crate::error::{SqlError, SqlResult};
use crate::sql::ast::{Role, Statement};
use crate::storage::uri::Destination;

use super::Caller;

/// Checks every path `statement` names against the caller's role; `Ok` for statements that
/// name none, and for admins.
pub fn authorize(catalog: &Catalog, caller: &Caller, statement: &Statement) -> SqlResult<()> {
    if caller.role >= Role::Admin {
        return Ok(());
    }
    match statement {
        Statement::Archive(ArchiveStatement::PushArchivelog { path, tenant }) => {
            let tenant = super::tenant::find(catalog, tenant)?;
            inside_log_folder(&tenant, Path::new(path), "ALTER SYSTEM PUSH ARCHIVELOG")
        }
        Statement::Archive(ArchiveStatement::GetArchivelog { tenant, to, .. }) => {
            let tenant = super::tenant::find(catalog, tenant)?;
            inside_log_folder(&tenant, Path::new(to), "ALTER SYSTEM GET ARCHIVELOG")
        }
        Statement::Restore(RestoreStatement::Restore {
            to, tablespace_map, ..
        }) => {
            let target = crate::source::uri::dir_path_or_plain(to);
            inside_allowed(catalog, &target, "a restore target")?;
            for (_, location) in tablespace_map {
                inside_allowed(catalog, Path::new(location), "a tablespace location")?;
            }
            Ok(())
        }
        Statement::BackupBackup(BackupBackupStatement::BackupBackupset {
            dest: Some(dest),
            ..
        })
        | Statement::BackupBackup(BackupBackupStatement::BackupBackuppiece {
            dest: Some(dest),
            ..
        }) => {
            let configured = catalog.parameter(SYS_TENANT_ID, "backup_backup_dest")?;
            if configured.as_deref() == Some(dest.as_str()) {
                return Ok(());
            }
            match Destination::parse(dest) {
                Ok(Destination::File(root)) => {
                    inside_allowed(catalog, &root, "a second destination")
                }
                // Not a place on this machine; the statement refuses it itself.
                Err(_) => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

/// The folders a tenant's archive log may be pushed from and got into.
fn log_folders(tenant: &Tenant) -> Vec<PathBuf> {
    let mut folders = Vec::new();
    if let Some(log) = tenant.log_source.as_deref() {
        folders.push(crate::source::uri::dir_path_or_plain(log));
    }
    if tenant.kind == TenantKind::Postgres
        && let Some(pgdata) = &tenant.pgdata
    {
        folders.push(Path::new(pgdata).join("pg_wal"));
    }
    folders
}

fn inside_log_folder(tenant: &Tenant, path: &Path, statement: &str) -> SqlResult<()> {
    let folders = log_folders(tenant);
    if within_any(path, &folders) {
        return Ok(());
    }
    Err(SqlError::not_permitted(format!(
        "permission denied: {statement} names {}, which is outside tenant {}'s log folder{}",
        path.display(),
        tenant.name,
        match folders.first() {
            Some(f) => format!(" {}", f.display()),
            None => " (it has none)".into(),
        }
    ))
    .with_hint("an operator pushes and gets segments only inside the tenant's own log folder; an admin may name any path"))
}

fn inside_allowed(catalog: &Catalog, path: &Path, what: &str) -> SqlResult<()> {
    let allowed: Vec<PathBuf> = catalog
        .parameter(SYS_TENANT_ID, "allowed_paths")?
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .collect();
    if within_any(path, &allowed) {
        return Ok(());
    }
    Err(SqlError::not_permitted(format!(
        "permission denied: {} as {what} is outside allowed_paths ({})",
        path.display(),
        if allowed.is_empty() {
            "empty".to_string()
        } else {
            allowed
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        }
    ))
    .with_hint("an admin lists the folders operators may write into with ALTER SYSTEM SET allowed_paths = '/srv/restore,/backup'"))
}

/// Whether `path`, with symlinks resolved, is `folder` or lies under it, for any folder.
fn within_any(path: &Path, folders: &[PathBuf]) -> bool {
    let Some(path) = resolve(path) else {
        return false;
    };
    folders
        .iter()
        .filter_map(|f| resolve(f))
        .any(|folder| path.starts_with(&folder))
}

/// An absolute path with every symlink of its existing part resolved and the part that does
/// not exist yet appended as written. `None` for a relative path or one whose missing part
/// climbs (`..`): neither can be placed safely.
fn resolve(path: &Path) -> Option<PathBuf> {
    if !path.is_absolute() {
        return None;
    }
    let mut existing = path.to_path_buf();
    let mut missing = Vec::new();
    loop {
        match existing.canonicalize() {
            Ok(real) => {
                let mut out = real;
                for part in missing.iter().rev() {
                    out.push(part);
                }
                return Some(out);
            }
            Err(_) => {
                let name = existing.file_name()?.to_os_string();
                if matches!(
                    Path::new(&name).components().next(),
                    Some(Component::ParentDir | Component::CurDir)
                ) {
                    return None;
                }
                missing.push(name);
                existing = existing.parent()?.to_path_buf();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_within_a_folder_after_links_are_resolved() {
        let tmp = tempfile::tempdir().unwrap();
        let allowed = tmp.path().join("allowed");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(&allowed).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, allowed.join("escape")).unwrap();
        let folders = [allowed.clone()];
        assert!(within_any(&allowed.join("new/target"), &folders));
        assert!(within_any(&allowed, &folders));
        assert!(!within_any(&outside.join("target"), &folders));
        // A link inside the folder that leads out of it does not count as inside.
        assert!(!within_any(&allowed.join("escape/target"), &folders));
        // A missing part that climbs out cannot be placed.
        assert!(!within_any(
            &allowed.join("missing/../../outside"),
            &folders
        ));
        // A sibling whose name starts the same is not inside.
        assert!(!within_any(&tmp.path().join("allowed-not"), &folders));
        assert!(!within_any(Path::new("relative/path"), &folders));
        assert!(!within_any(&allowed.join("x"), &[]));
    }
}
