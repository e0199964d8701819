//! Destinations as the executor writes to them: the directory a URI names, and the checks that
//! make one ready for this installation's backups (it exists, can be written, and its format
//! file names this installation). The URI itself is parsed in one place, `storage::uri`.

use std::path::PathBuf;

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
pub fn prepare(uri: &str, installation_id: &str) -> SqlResult<PathBuf> {
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
    let repo = crate::engine::Repository::create_or_open(&root, installation_id)
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

fn refused(e: UriError) -> SqlError {
    match e {
        UriError::Malformed { .. } => {
            SqlError::invalid_value(e.to_string()).with_ob("OB_INVALID_BACKUP_DEST", 9026)
        }
        UriError::Unsupported { .. } => SqlError::not_supported(e.to_string())
            .with_hint("use a file:///absolute/path destination"),
    }
}
