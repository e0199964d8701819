//! ALTER SYSTEM REPAIR BACKUP DEST 'uri': a lost or damaged index rebuilt from the packs, and
//! the catalog's view of the destination rebuilt from its set descriptors, so that neither a
//! lost catalog nor a lost index loses a backup.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use tokio_util::sync::CancellationToken;

use super::Outcome;
use super::keys::SessionKeys;
use crate::catalog::Catalog;
use crate::catalog::repair::FoundSet;
use crate::engine::Repository;
use crate::error::{SqlResult, from_engine};

const COLUMNS: [(&str, DataType); 9] = [
    ("packs_indexed", DataType::Utf8),
    ("index_files_written", DataType::Utf8),
    ("index_files_removed", DataType::Utf8),
    ("sets", DataType::Utf8),
    ("sets_repointed", DataType::Utf8),
    ("sets_registered", DataType::Utf8),
    ("tenants_unknown", DataType::Utf8),
    ("unrepairable", DataType::Utf8),
    ("adopted_from", DataType::Utf8),
];

/// The columns REPAIR BACKUP DEST answers with.
pub fn schema() -> Schema {
    Schema::new(
        COLUMNS
            .iter()
            .map(|(n, t)| Field::new(*n, t.clone(), true))
            .collect::<Vec<_>>(),
    )
}

fn micros(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.timestamp_micros())
        .unwrap_or_default()
}

pub fn repair(catalog: &Arc<Catalog>, keys: &SessionKeys, uri: &str) -> SqlResult<Outcome> {
    super::keys::unlock_for_reading(catalog, keys, uri, "the destination to repair")?;
    let root = crate::executor::destination_root(uri)?;
    let backend = catalog
        .destination_at(&root)
        .map_err(|e| from_engine(&e.into()))?;
    // Whichever installation owns it: a repair changes index files and the list of index files
    // in set descriptors, never data, and a server that lost its catalog is another
    // installation.
    let repo = Repository::open_for_repair(backend).map_err(|e| from_engine(&e))?;
    let report = crate::engine::repair::repair_index(&repo, &CancellationToken::new())
        .map_err(|e| from_engine(&e))?;
    let shown = crate::catalog::mask_secrets(uri);
    let mut found = Vec::new();
    let mut unknown = std::collections::BTreeSet::new();
    for set in repo.list_sets().map_err(|e| from_engine(&e))? {
        let Some(tenant) = catalog.tenant_by_name(&set.tenant_name)? else {
            unknown.insert(set.tenant_name.clone());
            continue;
        };
        found.push(FoundSet {
            tenant_id: tenant.id,
            backup_set_id: set.set_id,
            backup_type: set.backup_type.as_str().to_string(),
            parent_set_id: set.parent_set_id,
            start_ts: micros(&set.start_time),
            end_ts: micros(&set.end_time),
            input_bytes: set.input_bytes as i64,
            output_bytes: set.output_bytes as i64,
            file_count: set.file_count as i64,
            encryption_mode: if repo.encryption().is_some() {
                "PASSWORD"
            } else {
                "NONE"
            }
            .into(),
            path: shown.clone(),
        });
    }
    let registered = catalog.register_found_sets(&found)?;
    // The sets are this server's now: it writes to the destination as its owner (a server that
    // lost its catalog is a new installation).
    let adopted_from = repo.installation_id().to_string();
    let adopted = adopted_from != catalog.installation_id();
    if adopted {
        crate::engine::format::adopt(repo.backend(), catalog.installation_id())
            .map_err(|e| from_engine(&e))?;
    }
    tracing::info!(
        destination = %shown,
        packs_indexed = report.packs_indexed,
        sets_repointed = report.sets_repointed,
        sets_registered = registered,
        "destination repaired"
    );
    let row = vec![
        Some(report.packs_indexed.to_string()),
        Some(report.index_files_written.to_string()),
        Some(report.index_files_removed.to_string()),
        Some(report.sets.to_string()),
        Some(report.sets_repointed.to_string()),
        Some(registered.to_string()),
        Some(unknown.into_iter().collect::<Vec<_>>().join(", ")),
        Some(report.unrepairable.join("; ")),
        adopted.then_some(adopted_from),
    ];
    Ok(Outcome::Rows(crate::views::rows(&COLUMNS, vec![row])?))
}
