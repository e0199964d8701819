//! VALIDATE DATABASE | BACKUPSET n | ARCHIVELOG_PIECE n [AT 'uri'] [LEVEL = ...] and CANCEL
//! VALIDATE.

use std::sync::Arc;

use crate::catalog::Catalog;
use crate::engine::ValidateLevel;
use crate::engine::archive::ExpectedSegment;
use crate::error::{SqlError, SqlResult, from_engine};
use crate::executor::Executor;
use crate::executor::validate::{PieceToValidate, SetToValidate, Subject};
use crate::sql::ast::{self, ValidateTarget};

pub fn start(
    catalog: &Catalog,
    executor: &Arc<Executor>,
    keys: &super::keys::SessionKeys,
    target: &ValidateTarget,
    at: Option<&str>,
    level: Option<ast::ValidateLevel>,
) -> SqlResult<i64> {
    let level = match level {
        Some(ast::ValidateLevel::Physical) => ValidateLevel::Physical,
        _ => ValidateLevel::Basic,
    };
    let (job_type, wanted) = match target {
        ValidateTarget::Database => ("DATABASE", None),
        ValidateTarget::BackupSet(id) => ("BACKUPSET", Some(*id)),
        ValidateTarget::ArchivelogPiece(id) => {
            let piece = piece_to_validate(catalog, *id, at)?;
            let what = format!("archive log piece {id}");
            super::keys::unlock_for_reading(catalog, keys, &piece.dest_uri, &what)?;
            return executor.start_validate("ARCHIVELOG_PIECE", vec![Subject::Piece(piece)], level);
        }
    };
    let mut sets = match at {
        Some(uri) => {
            super::keys::unlock_for_reading(catalog, keys, uri, "the backup sets")?;
            sets_at(catalog, uri)?
        }
        None => catalog
            .backup_sets()?
            .into_iter()
            .map(|s| SetToValidate {
                tenant_id: s.tenant_id,
                set_id: s.backup_set_id,
                dest_uri: s.path,
                input_bytes: s.input_bytes,
            })
            .collect(),
    };
    if let Some(id) = wanted {
        sets.retain(|s| s.set_id == id);
        if sets.is_empty() {
            return Err(SqlError::undefined(format!(
                "backup set {id} does not exist"
            )));
        }
    }
    for set in &sets {
        let what = format!("backup set {}", set.set_id);
        super::keys::unlock_for_reading(catalog, keys, &set.dest_uri, &what)?;
    }
    executor.start_validate(
        job_type,
        sets.into_iter().map(Subject::Set).collect(),
        level,
    )
}

/// Piece `id` as the catalog knows it: the original, or the copy at `at`.
fn piece_to_validate(catalog: &Catalog, id: i64, at: Option<&str>) -> SqlResult<PieceToValidate> {
    let piece = catalog
        .pieces(None)?
        .into_iter()
        .find(|p| p.piece_id == id)
        .ok_or_else(|| SqlError::undefined(format!("archive log piece {id} does not exist")))?;
    let same = |a: &str, b: &str| a.trim_end_matches('/') == b.trim_end_matches('/');
    let (copy_id, dest_uri) = match at {
        None => (0, piece.path.clone()),
        Some(uri) if same(uri, &piece.path) => (0, piece.path.clone()),
        Some(uri) => catalog
            .piece_copies(id)?
            .into_iter()
            .find(|(_, path)| same(uri, path))
            .ok_or_else(|| {
                SqlError::undefined(format!(
                    "archive log piece {id} has no copy at {}",
                    crate::catalog::mask_secrets(uri)
                ))
                .with_hint("CDB_OB_ARCHIVELOG_PIECE_FILES lists each piece's copies and paths")
            })?,
    };
    let segments = catalog
        .piece_segments(id)?
        .into_iter()
        .map(|s| ExpectedSegment {
            name: s.name,
            stored_size: s.stored_size.max(0) as u64,
            hash: s.hash,
        })
        .collect();
    Ok(PieceToValidate {
        tenant_id: piece.tenant_id,
        piece_id: id,
        copy_id,
        dest_uri,
        segments,
    })
}

/// Every set a destination holds, read from the destination itself.
fn sets_at(catalog: &Catalog, uri: &str) -> SqlResult<Vec<SetToValidate>> {
    let root = crate::executor::destination_root(uri)?;
    let repo = crate::executor::destination::open(catalog, &root).map_err(|e| from_engine(&e))?;
    Ok(repo
        .list_sets()
        .map_err(|e| from_engine(&e))?
        .into_iter()
        .map(|s| SetToValidate {
            tenant_id: s.tenant_id,
            set_id: s.set_id,
            dest_uri: uri.to_string(),
            input_bytes: s.input_bytes as i64,
        })
        .collect())
}
