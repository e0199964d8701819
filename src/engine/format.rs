//! The root format file `backstop.format`: which format a destination holds and who owns it.
//!
//! It is the first object of a repository and the only one ever read before anything else:
//! readers refuse a version they do not know rather than misread it, and writers refuse a
//! destination stamped by another installation.

use serde::{Deserialize, Serialize};

use super::error::EngineError;
use crate::storage::{Backend, StorageError};

/// Object name of the format file.
pub const FORMAT_FILE: &str = "backstop.format";
/// The repository format this code reads and writes.
pub const FORMAT_VERSION: u32 = 1;
const FORMAT_NAME: &str = "backstop-repository";

/// Contents of `backstop.format` (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormatFile {
    /// Always `backstop-repository`.
    pub format: String,
    /// Repository format version.
    pub version: u32,
    /// The installation that owns (writes to) this destination.
    pub installation_id: String,
    /// When the repository was created (RFC 3339, UTC).
    pub created: String,
}

impl FormatFile {
    fn new(installation_id: &str) -> FormatFile {
        FormatFile {
            format: FORMAT_NAME.to_string(),
            version: FORMAT_VERSION,
            installation_id: installation_id.to_string(),
            created: chrono::Utc::now().to_rfc3339(),
        }
    }
}

/// Reads and checks the format file; `Ok(None)` when the destination has none yet.
pub fn read_format(backend: &dyn Backend) -> Result<Option<FormatFile>, EngineError> {
    let bytes = match backend.get(FORMAT_FILE) {
        Ok(bytes) => bytes,
        Err(StorageError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let format: FormatFile = serde_json::from_slice(&bytes)
        .map_err(|e| EngineError::corrupt(FORMAT_FILE, format!("not a format file: {e}")))?;
    if format.format != FORMAT_NAME {
        return Err(EngineError::corrupt(
            FORMAT_FILE,
            format!("names format {:?}, expected {FORMAT_NAME:?}", format.format),
        ));
    }
    if format.version != FORMAT_VERSION {
        return Err(EngineError::UnknownFormatVersion {
            destination: backend.describe(),
            found: format.version,
            supported: FORMAT_VERSION,
        });
    }
    Ok(Some(format))
}

/// Writes a new format file naming `installation_id` as the owner.
pub fn stamp_format(
    backend: &dyn Backend,
    installation_id: &str,
) -> Result<FormatFile, EngineError> {
    let format = FormatFile::new(installation_id);
    let bytes = serde_json::to_vec_pretty(&format).expect("a format file always serializes");
    backend.put(FORMAT_FILE, &bytes)?;
    Ok(format)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::LocalBackend;

    #[test]
    fn unknown_versions_and_garbage_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(dir.path().to_path_buf());
        assert!(read_format(&backend).unwrap().is_none());
        let stamped = stamp_format(&backend, "inst-1").unwrap();
        assert_eq!(read_format(&backend).unwrap(), Some(stamped.clone()));

        let mut future = stamped;
        future.version = 99;
        backend
            .put(FORMAT_FILE, &serde_json::to_vec(&future).unwrap())
            .unwrap();
        assert!(matches!(
            read_format(&backend),
            Err(EngineError::UnknownFormatVersion { found: 99, .. })
        ));

        backend.put(FORMAT_FILE, b"\xff\x00garbage").unwrap();
        assert!(matches!(
            read_format(&backend),
            Err(EngineError::CorruptObject { .. })
        ));
    }
}
