//! The root format file `backstop.format`: which format a destination holds and who owns it.
//!
//! It is the first object of a repository and the only one ever read before anything else:
//! readers refuse a version they do not know rather than misread it, and writers refuse a
//! destination stamped by another installation.

use serde::{Deserialize, Serialize};

use super::crypto::Cipher;
use super::error::EngineError;
use crate::storage::{Backend, StorageError};

/// Object name of the format file.
pub const FORMAT_FILE: &str = "backstop.format";
/// The repository format this code writes for a plain destination.
pub const FORMAT_VERSION: u32 = 1;
/// The format of an encrypted destination: version 1 with every object sealed (an older
/// backstop refuses it rather than misread it).
pub const ENCRYPTED_FORMAT_VERSION: u32 = 2;
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
    /// How its objects are sealed, when it is encrypted (version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<FormatEncryption>,
}

/// The encryption of a repository: its cipher and the id of its master key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormatEncryption {
    pub cipher: Cipher,
    pub key_id: String,
}

impl FormatFile {
    fn new(installation_id: &str) -> FormatFile {
        FormatFile {
            format: FORMAT_NAME.to_string(),
            version: FORMAT_VERSION,
            installation_id: installation_id.to_string(),
            created: chrono::Utc::now().to_rfc3339(),
            encryption: None,
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
    decode_format(&backend.describe(), &bytes).map(Some)
}

/// Decodes and checks a format file read from `destination`.
pub fn decode_format(destination: &str, bytes: &[u8]) -> Result<FormatFile, EngineError> {
    let format: FormatFile = serde_json::from_slice(bytes)
        .map_err(|e| EngineError::corrupt(FORMAT_FILE, format!("not a format file: {e}")))?;
    if format.format != FORMAT_NAME {
        return Err(EngineError::corrupt(
            FORMAT_FILE,
            format!("names format {:?}, expected {FORMAT_NAME:?}", format.format),
        ));
    }
    let known = match format.version {
        FORMAT_VERSION => format.encryption.is_none(),
        ENCRYPTED_FORMAT_VERSION => format.encryption.is_some(),
        _ => false,
    };
    if !known && [FORMAT_VERSION, ENCRYPTED_FORMAT_VERSION].contains(&format.version) {
        return Err(EngineError::corrupt(
            FORMAT_FILE,
            format!(
                "version {} {} an encryption section",
                format.version,
                if format.encryption.is_some() {
                    "with"
                } else {
                    "without"
                }
            ),
        ));
    }
    if !known {
        return Err(EngineError::UnknownFormatVersion {
            destination: destination.to_string(),
            found: format.version,
            supported: ENCRYPTED_FORMAT_VERSION,
        });
    }
    Ok(format)
}

/// Writes a new format file naming `installation_id` as the owner.
pub fn stamp_format(
    backend: &dyn Backend,
    installation_id: &str,
) -> Result<FormatFile, EngineError> {
    let mut format = FormatFile::new(installation_id);
    if let Some(sealer) = backend.sealer() {
        format.version = ENCRYPTED_FORMAT_VERSION;
        format.encryption = Some(FormatEncryption {
            cipher: sealer.cipher(),
            key_id: sealer.key_id().to_string(),
        });
    }
    write_format(backend, &format)?;
    Ok(format)
}

/// Makes `installation_id` the owner of the destination, keeping everything else of its format
/// file (`ALTER SYSTEM REPAIR BACKUP DEST` on a server that lost its catalog).
pub fn adopt(backend: &dyn Backend, installation_id: &str) -> Result<(), EngineError> {
    let Some(mut format) = read_format(backend)? else {
        return Err(EngineError::NotARepository {
            destination: backend.describe(),
        });
    };
    format.installation_id = installation_id.to_string();
    write_format(backend, &format)
}

/// Replaces the format file.
pub fn write_format(backend: &dyn Backend, format: &FormatFile) -> Result<(), EngineError> {
    let bytes = serde_json::to_vec_pretty(format).expect("a format file always serializes");
    backend.put(FORMAT_FILE, &bytes)?;
    Ok(())
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
