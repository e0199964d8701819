//! Checkpoints: the partial manifest of a running backup, so an interrupted one can go on.
//!
//! `checkpoints/<tenant_id>/<set_id>.ckpt` (JSON) lists manifest segments holding a prefix, in
//! walk order, of the entries whose chunks are all in durable, indexed packs, and the index files
//! that locate them. It is written after those segments and index files, and replaced by each
//! newer checkpoint; the finished backup deletes it after writing its set descriptor. A restart
//! merge-joins the checkpoint's entries with its new walk and reuses every file that is
//! unchanged since (same size, mtime, ctime, inode), so it reads only what was not stored.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::crypto::{Sealer, open_object, seal_object};
use super::error::EngineError;
use super::manifest::SegmentRef;
use super::set::ObjectRef;
use crate::storage::{Backend, StorageError};

/// The saved state of an interrupted backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub format_version: u32,
    pub tenant_id: i64,
    pub set_id: i64,
    /// When it was written (RFC 3339 UTC).
    pub created: String,
    /// Segments of the stored prefix of the manifest.
    pub manifest: Vec<SegmentRef>,
    /// Index files written by the run so far.
    pub index_files: Vec<ObjectRef>,
    /// Logical bytes of the files stored so far.
    pub bytes_done: u64,
    /// Entries stored so far.
    pub files_done: u64,
}

/// What the caller is told each time a checkpoint is saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointInfo {
    pub tenant_id: i64,
    pub set_id: i64,
    /// The checkpoint's object name.
    pub object: String,
    pub bytes_done: u64,
    pub files_done: u64,
    pub time: SystemTime,
}

/// The object name of a checkpoint.
pub fn checkpoint_object_name(tenant_id: i64, set_id: i64) -> String {
    format!("checkpoints/{tenant_id}/{set_id}.ckpt")
}

/// Reads a checkpoint; `Ok(None)` when there is none.
pub fn read_checkpoint(
    backend: &dyn Backend,
    tenant_id: i64,
    set_id: i64,
) -> Result<Option<Checkpoint>, EngineError> {
    let object = checkpoint_object_name(tenant_id, set_id);
    let bytes = match backend.get(&object) {
        Ok(bytes) => bytes,
        Err(StorageError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    decode_checkpoint(backend.sealer(), &object, &bytes).map(Some)
}

/// Decodes a stored checkpoint, naming `object` when it is damaged.
pub fn decode_checkpoint(
    sealer: Option<&Sealer>,
    object: &str,
    bytes: &[u8],
) -> Result<Checkpoint, EngineError> {
    let plain = open_object(sealer, object, bytes)?;
    serde_json::from_slice(&plain)
        .map_err(|e| EngineError::corrupt(object, format!("unreadable checkpoint: {e}")))
}

/// Encodes a checkpoint for storage (sealed when the repository is encrypted).
pub fn encode_checkpoint(sealer: Option<&Sealer>, checkpoint: &Checkpoint) -> (String, Vec<u8>) {
    (
        checkpoint_object_name(checkpoint.tenant_id, checkpoint.set_id),
        seal_object(
            sealer,
            serde_json::to_vec(checkpoint).expect("a checkpoint always serializes"),
        ),
    )
}
