//! Destinations as the executor writes to them: the directory a URI names, and the checks that
//! make one ready for this installation's backups (it exists, can be written, and its format
//! file names this installation). The URI itself is parsed in one place, `storage::uri`.

use std::path::{Path, PathBuf};

use crate::catalog::Catalog;
use crate::engine::{EngineError, Repository};
use crate::storage::Backend;

use crate::error::{SqlError, SqlResult, sqlstate};
use crate::storage::uri::{Destination, UriError};

/// The directory a `file://` destination URI names.
pub fn root(uri: &str) -> SqlResult<PathBuf> {
    match Destination::parse(uri).map_err(refused)? {
        Destination::File(root) => Ok(root),
    }
}

/// Makes sure the destination can take this installation's backups: the directory exists
/// (its parent must), a file can be written there, and its format file names us. Returns its
/// directory.
pub fn prepare(catalog: &Catalog, uri: &str, installation_id: &str) -> SqlResult<PathBuf> {
    let root = root(uri)?;
    if !root.exists() {
        std::fs::create_dir(&root).map_err(|e| {
            SqlError::new(
                sqlstate::IO_ERROR,
                format!(
                    "cannot create destination directory {}: {e}",
                    root.display()
                ),
            )
            .with_ob("OB_INVALID_BACKUP_DEST", 9026)
        })?;
    }
    let probe = root.join(format!(".backstop-probe-{}", std::process::id()));
    std::fs::write(&probe, b"probe")
        .and_then(|_| std::fs::remove_file(&probe))
        .map_err(|e| {
            SqlError::new(
                sqlstate::IO_ERROR,
                format!(
                    "destination {} is not writable by the server: {e}",
                    root.display()
                ),
            )
            .with_ob("OB_INVALID_BACKUP_DEST", 9026)
        })?;
    let repo = create_or_open(catalog, &root, installation_id)
        .map_err(|e| crate::error::from_engine(&e))?;
    if repo.installation_id() != installation_id {
        return Err(SqlError::wrong_state(format!(
            "destination {} belongs to another backstop installation ({}) and is not written \
             to by this one",
            root.display(),
            repo.installation_id()
        ))
        .with_ob("OB_BACKUP_DEST_ALREADY_USED", 9054)
        .with_hint(
            "restore from it with RESTORE ... AT, or take it over with ALTER SYSTEM \
                    IMPORT BACKUP FROM 'uri'",
        ));
    }
    Ok(root)
}

/// Opens the repository at `root` for reading, with its key when this server holds one.
pub fn open(catalog: &Catalog, root: &Path) -> Result<Repository, EngineError> {
    Repository::open_backend(catalog.destination_at(root)?)
}

/// Opens this installation's repository at `root` for writing, with its key.
pub fn open_for_write(
    catalog: &Catalog,
    root: &Path,
    installation_id: &str,
) -> Result<Repository, EngineError> {
    Repository::open_for_write_backend(catalog.destination_at(root)?, installation_id)
}

/// Opens (creating on first use) this installation's repository at `root`, with its key: a
/// new destination is created encrypted when the server holds a key for it.
pub fn create_or_open(
    catalog: &Catalog,
    root: &Path,
    installation_id: &str,
) -> Result<Repository, EngineError> {
    Repository::create_or_open_backend(catalog.destination_at(root)?, installation_id)
}

/// The repository a copy of `source` writes to at `target_root`. A copy moves stored bytes as
/// they are, so the copy of an encrypted source is encrypted under the same key: the target is
/// given the source's key slots (its passphrases open it too) and this server keeps the key for
/// it. A target holding plain backups, or encrypted under another key, is refused.
pub fn copy_target(
    catalog: &Catalog,
    source_root: &Path,
    source: &Repository,
    target_root: &Path,
    installation_id: &str,
) -> Result<Repository, EngineError> {
    let Some(wanted) = source.encryption() else {
        return create_or_open(catalog, target_root, installation_id);
    };
    let raw = crate::storage::LocalBackend::new(target_root.to_path_buf());
    if let Some(held) = crate::engine::format::read_format(&raw)?.and_then(|f| f.encryption)
        && held.key_id != wanted.key_id
    {
        return Err(EngineError::Locked {
            destination: raw.describe(),
            key_id: held.key_id,
        });
    }
    let (master, cipher) = catalog
        .destination_master(source_root)
        .ok()
        .flatten()
        .filter(|(m, _)| m.key_id() == wanted.key_id)
        .ok_or_else(|| EngineError::Locked {
            destination: source.backend().describe(),
            key_id: wanted.key_id.clone(),
        })?;
    for (name, _) in crate::engine::crypto::list_slots(source.backend())? {
        crate::engine::crypto::share_slot(source.backend(), &raw, &name)?;
    }
    catalog
        .remember_destination_key(target_root, &master, cipher)
        .map_err(|e| {
            EngineError::Destination(crate::storage::StorageError::Unsupported {
                uri: raw.describe(),
                reason: e.to_string(),
            })
        })?;
    create_or_open(catalog, target_root, installation_id)
}

/// What the views show as a backup's ENCRYPTION_MODE at `uri`: `PASSWORD` when the
/// destination is encrypted (its key wrapped by passwords), else `NONE`.
pub fn encryption_mode(uri: &str) -> &'static str {
    let encrypted = root(uri).ok().is_some_and(|root| {
        let raw = crate::storage::LocalBackend::new(root);
        matches!(
            crate::engine::format::read_format(&raw),
            Ok(Some(format)) if format.encryption.is_some()
        )
    });
    if encrypted { "PASSWORD" } else { "NONE" }
}

fn refused(e: UriError) -> SqlError {
    match e {
        UriError::Malformed { .. } => {
            SqlError::invalid_value(e.to_string()).with_ob("OB_INVALID_BACKUP_DEST", 9026)
        }
        UriError::Unsupported { .. } => SqlError::not_supported(e.to_string())
            .with_hint("use a file:///absolute/path destination"),
    }
}
