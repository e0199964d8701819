//! The catalog's view of a destination, rebuilt from its set descriptors
//! (`ALTER SYSTEM REPAIR BACKUP DEST`).

use super::{Catalog, CatalogError};

/// A set found in a destination, as the catalog records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundSet {
    pub tenant_id: i64,
    pub backup_set_id: i64,
    pub backup_type: String,
    pub parent_set_id: Option<i64>,
    pub start_ts: i64,
    pub end_ts: i64,
    pub input_bytes: i64,
    pub output_bytes: i64,
    pub file_count: i64,
    pub encryption_mode: String,
    /// The destination, secrets masked.
    pub path: String,
}

impl Catalog {
    /// Records the sets the catalog does not know, COMPLETED and AVAILABLE, and moves the set
    /// id sequence past them so that new sets never reuse an id. Returns how many were added;
    /// an id the catalog already holds for another set is left alone.
    pub fn register_found_sets(&self, sets: &[FoundSet]) -> Result<u64, CatalogError> {
        self.write(|tx| {
            let mut added = 0;
            for set in sets {
                let known = tx.query(
                    "SELECT 1 FROM backup_set WHERE backup_set_id = ? AND copy_id = 0",
                    &[set.backup_set_id.into()],
                )?;
                if !known.is_empty() {
                    continue;
                }
                tx.execute(
                    "INSERT INTO backup_set (tenant_id, backup_set_id, copy_id, dest_id, \
                     incarnation, job_id, backup_type, prev_full_backup_set_id, \
                     prev_inc_backup_set_id, start_ts, end_ts, status, file_status, \
                     plus_archivelog, input_bytes, output_bytes, file_count, encryption_mode, \
                     result, comment, path) VALUES (?, ?, 0, 1, 1, 0, ?, NULL, ?, ?, ?, \
                     'COMPLETED', 'AVAILABLE', 0, ?, ?, ?, ?, 0, \
                     'registered from its descriptor by REPAIR BACKUP DEST', ?)",
                    &[
                        set.tenant_id.into(),
                        set.backup_set_id.into(),
                        set.backup_type.clone().into(),
                        set.parent_set_id.into(),
                        set.start_ts.into(),
                        set.end_ts.into(),
                        set.input_bytes.into(),
                        set.output_bytes.into(),
                        set.file_count.into(),
                        set.encryption_mode.clone().into(),
                        set.path.clone().into(),
                    ],
                )?;
                added += 1;
            }
            if let Some(highest) = sets.iter().map(|s| s.backup_set_id).max() {
                tx.execute(
                    "INSERT INTO sequence (name, next_value) VALUES ('backup_set', ?) \
                     ON CONFLICT (name) DO UPDATE SET \
                     next_value = max(next_value, excluded.next_value)",
                    &[(highest + 1).into()],
                )?;
            }
            Ok(added)
        })
    }
}
