//! Set descriptors: the small object that makes a backup set exist.
//!
//! `sets/<tenant_id>/<set_id>.set` (JSON) names the set's manifest segments and the index files
//! that locate its chunks. It is written last, after everything it references is durable, so a
//! set is either complete or invisible.

use serde::{Deserialize, Serialize};

use super::crypto::{Sealer, open_object, seal_object};
use super::error::EngineError;
use super::manifest::SegmentRef;
use crate::storage::{Backend, StorageError};

/// Folder of set descriptors.
pub const SETS_PREFIX: &str = "sets/";

/// Whether a set stands on a parent set's unchanged files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BackupType {
    #[serde(rename = "FULL")]
    Full,
    #[serde(rename = "INC")]
    Incremental,
}

impl BackupType {
    /// The word the views show: `FULL` or `INC`.
    pub fn as_str(&self) -> &'static str {
        match self {
            BackupType::Full => "FULL",
            BackupType::Incremental => "INC",
        }
    }
}

/// An index file a set needs, with its size for basic validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    pub object: String,
    pub size: u64,
}

/// Everything needed to find and restore one backup set without a catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetDescriptor {
    /// Repository format version the set was written with.
    pub format_version: u32,
    pub tenant_name: String,
    pub tenant_id: i64,
    pub set_id: i64,
    pub backup_type: BackupType,
    /// The set whose unchanged files this one reused (it does not depend on it to restore).
    pub parent_set_id: Option<i64>,
    /// RFC 3339 UTC times.
    pub start_time: String,
    pub end_time: String,
    /// Logical bytes of the files in the set.
    pub input_bytes: u64,
    /// Bytes this backup wrote to the destination (new packs, manifests, index files).
    pub output_bytes: u64,
    /// Number of entries (files, directories, symlinks) in the set.
    pub file_count: u64,
    /// The manifest, segment by segment, in walk order.
    pub manifest: Vec<SegmentRef>,
    /// The index files that locate every chunk the manifest references.
    pub index_files: Vec<ObjectRef>,
    /// For a PostgreSQL cluster's set: what `pg_backup_stop` returned and recovery needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<PostgresBackup>,
}

/// The PostgreSQL part of a set: where its backup started and ended, and the `backup_label`
/// and `tablespace_map` a restore writes into the data directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostgresBackup {
    /// `server_version_num` of the cluster.
    pub version_num: i32,
    /// The cluster's system identifier, as text (it does not fit JSON's numbers).
    pub system_identifier: String,
    pub start_lsn: String,
    pub stop_lsn: String,
    /// The first and last WAL segments recovery needs to reach consistency.
    pub start_wal: String,
    pub stop_wal: String,
    pub wal_segment_size: u64,
    pub backup_label: String,
    pub tablespace_map: String,
    /// `(oid, location)` of each tablespace when the backup ran.
    pub tablespaces: Vec<(String, String)>,
}

/// The object name of a set descriptor.
pub fn set_object_name(tenant_id: i64, set_id: i64) -> String {
    format!("{SETS_PREFIX}{tenant_id}/{set_id}.set")
}

/// Decodes a set descriptor, naming the object when it is damaged.
pub fn decode_set(
    sealer: Option<&Sealer>,
    object: &str,
    bytes: &[u8],
) -> Result<SetDescriptor, EngineError> {
    let plain = open_object(sealer, object, bytes)?;
    serde_json::from_slice(&plain)
        .map_err(|e| EngineError::corrupt(object, format!("unreadable set descriptor: {e}")))
}

/// Reads one set descriptor; `Ok(None)` when the set does not exist.
pub fn read_set(
    backend: &dyn Backend,
    tenant_id: i64,
    set_id: i64,
) -> Result<Option<SetDescriptor>, EngineError> {
    let object = set_object_name(tenant_id, set_id);
    match backend.get(&object) {
        Ok(bytes) => decode_set(backend.sealer(), &object, &bytes).map(Some),
        Err(StorageError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Stores a set descriptor; this is the commit point of a backup.
pub fn write_set(backend: &dyn Backend, set: &SetDescriptor) -> Result<u64, EngineError> {
    let bytes = seal_object(
        backend.sealer(),
        serde_json::to_vec_pretty(set).expect("a set descriptor always serializes"),
    );
    backend.put(&set_object_name(set.tenant_id, set.set_id), &bytes)?;
    Ok(bytes.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_descriptors_name_their_object() {
        let err = decode_set(None, "sets/1001/7.set", b"{\"tenant\": ").unwrap_err();
        assert!(err.to_string().contains("sets/1001/7.set"));
        assert_eq!(
            serde_json::to_string(&BackupType::Incremental).unwrap(),
            "\"INC\""
        );
    }
}
