//! Destinations: where backups are written. A `file://` destination is checked writable and
//! stamped with the repository format file naming this installation on first use; one stamped
//! by another installation is refused as a place to write (SPEC §2.1).

use std::path::PathBuf;

use crate::error::{SqlError, SqlResult, sqlstate};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    File(PathBuf),
}

impl Destination {
    pub fn parse(uri: &str) -> SqlResult<Destination> {
        if let Some(path) = uri.strip_prefix("file://") {
            let path = PathBuf::from(path);
            if !path.is_absolute() {
                return Err(invalid(uri, "write file:///absolute/path"));
            }
            return Ok(Destination::File(path));
        }
        if uri.starts_with("s3://") {
            return Err(SqlError::not_supported(format!(
                "destination '{}': s3:// destinations are not supported by this release",
                crate::catalog::mask_secrets(uri)
            ))
            .with_hint("use a file:///absolute/path destination"));
        }
        Err(invalid(uri, "accepted: file:///absolute/path"))
    }

    /// Makes sure the destination can take this installation's backups: the directory exists
    /// (its parent must), a file can be written there, and its format file names us.
    pub fn prepare(&self, installation_id: &str) -> SqlResult<()> {
        let Destination::File(root) = self;
        if !root.exists() {
            std::fs::create_dir(root).map_err(|e| {
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
        let repo = crate::engine::Repository::create_or_open(root, installation_id)
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
        Ok(())
    }
}

fn invalid(uri: &str, what: &str) -> SqlError {
    SqlError::invalid_value(format!(
        "'{}' is not a destination URI: {what}",
        crate::catalog::mask_secrets(uri)
    ))
    .with_ob("OB_INVALID_BACKUP_DEST", 9026)
}
