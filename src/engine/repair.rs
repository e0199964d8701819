//! Repair of a destination's index: packs describe themselves (their trailer lists their
//! blobs), so index files lost or damaged are rebuilt from the packs, and every set descriptor
//! that named a lost index file is pointed at the rebuilt ones. Nothing else is rewritten: packs,
//! manifests and sets' contents stay as they are.

use std::collections::HashSet;

use tokio_util::sync::CancellationToken;

use super::chunker::ContentId;
use super::error::EngineError;
use super::index::{INDEX_PREFIX, IndexedPack, RepositoryIndex, encode_index};
use super::pack::{PACKS_PREFIX, read_pack_trailer};
use super::repository::Repository;
use super::set::{ObjectRef, SETS_PREFIX, decode_set, write_set};

/// Packs per rebuilt index file, as a backup writes them.
const PACKS_PER_INDEX: usize = 256;

/// What a repair found and did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RepairReport {
    /// Packs no readable index file listed, now indexed.
    pub packs_indexed: u64,
    /// Index files written.
    pub index_files_written: u64,
    /// Unreadable index files, removed once their packs were indexed again.
    pub index_files_removed: u64,
    /// Set descriptors now naming the rebuilt index files.
    pub sets_repointed: u64,
    /// Set descriptors found.
    pub sets: u64,
    /// Objects that could not be repaired, with why (a damaged pack, an unreadable descriptor).
    pub unrepairable: Vec<String>,
}

/// Rebuilds the index of `repo` from its packs. A pack whose trailer is damaged cannot be
/// indexed and is reported; its chunks stay missing for validation to name.
pub fn repair_index(
    repo: &Repository,
    cancel: &CancellationToken,
) -> Result<RepairReport, EngineError> {
    if !repo.is_writable() {
        return Err(EngineError::ReadOnly {
            destination: repo.backend().describe(),
        });
    }
    let backend = repo.backend();
    let sealer = backend.sealer();
    let mut report = RepairReport::default();
    let (index, unreadable) = RepositoryIndex::load(backend)?;
    let indexed: HashSet<ContentId> = (0..index.pack_count())
        .map(|n| index.pack(n as u32).0)
        .collect();

    let mut rebuilt: Vec<IndexedPack> = Vec::new();
    for object in backend.list(PACKS_PREFIX)? {
        if cancel.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        let Some(id) = object
            .name
            .rsplit('/')
            .next()
            .and_then(|f| f.strip_suffix(".pack"))
            .and_then(ContentId::from_hex)
        else {
            continue;
        };
        if indexed.contains(&id) {
            continue;
        }
        let bytes = backend.get(&object.name)?;
        if ContentId::of(&bytes) != id {
            report
                .unrepairable
                .push(format!("{}: content does not match its name", object.name));
            continue;
        }
        match read_pack_trailer(sealer, &object.name, &bytes) {
            Ok(blobs) => rebuilt.push(IndexedPack {
                id,
                size: bytes.len() as u64,
                blobs,
            }),
            Err(e) => report.unrepairable.push(e.to_string()),
        }
    }
    report.packs_indexed = rebuilt.len() as u64;
    let mut written: Vec<ObjectRef> = Vec::new();
    for packs in rebuilt.chunks(PACKS_PER_INDEX) {
        let (object, bytes) = encode_index(sealer, packs);
        backend.put(&object, &bytes)?;
        written.push(ObjectRef {
            object,
            size: bytes.len() as u64,
        });
    }
    report.index_files_written = written.len() as u64;

    // Every set naming an index file that is gone or unreadable names the rebuilt ones instead.
    let present: HashSet<String> = backend
        .list(INDEX_PREFIX)?
        .into_iter()
        .map(|o| o.name)
        .collect();
    let broken: HashSet<&str> = unreadable.iter().map(|u| u.object.as_str()).collect();
    for object in backend.list(SETS_PREFIX)? {
        if !object.name.ends_with(".set") {
            continue;
        }
        report.sets += 1;
        let mut set = match backend
            .get(&object.name)
            .map_err(EngineError::from)
            .and_then(|bytes| decode_set(sealer, &object.name, &bytes))
        {
            Ok(set) => set,
            Err(e) => {
                report.unrepairable.push(e.to_string());
                continue;
            }
        };
        let before = set.index_files.len();
        set.index_files
            .retain(|f| present.contains(&f.object) && !broken.contains(f.object.as_str()));
        if set.index_files.len() == before {
            continue;
        }
        set.index_files.extend(written.iter().cloned());
        write_set(backend, &set)?;
        report.sets_repointed += 1;
    }
    // The damaged index files' packs are indexed again: they go.
    for damaged in &unreadable {
        backend.delete(&damaged.object)?;
        report.index_files_removed += 1;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testkit::*;
    use std::fs;

    #[test]
    fn every_set_restores_after_its_index_files_are_lost_and_repaired() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        fidelity_tree(&source);
        let root = dir.path().join("repo");
        let repo = new_repo(&root);
        run_backup(&repo, &request(1, &source)).unwrap();
        fs::write(source.join("later.bin"), noise(8, 2 << 20)).unwrap();
        let mut second = request(2, &source);
        second.parent_set_id = Some(1);
        run_backup(&repo, &second).unwrap();
        let index_files = objects(&root, "index");
        assert!(index_files.len() >= 2);
        fs::remove_file(&index_files[0]).unwrap();
        fs::write(&index_files[1], b"damaged").unwrap();
        assert!(
            run_restore(
                &repo,
                2,
                &dir.path().join("x"),
                crate::engine::RestoreMethod::Full
            )
            .is_err()
        );

        let report = repair_index(&repo, &CancellationToken::new()).unwrap();
        assert_eq!(report.sets, 2);
        assert_eq!(report.sets_repointed, 2);
        assert_eq!(report.index_files_removed, 1);
        assert!(
            report.packs_indexed > 0 && report.unrepairable.is_empty(),
            "{report:?}"
        );
        assert_restores_to(&repo, 2, &source, dir.path());
        physical_ok(&repo, 1);
        physical_ok(&repo, 2);
        // A second repair finds nothing to do.
        let again = repair_index(&repo, &CancellationToken::new()).unwrap();
        assert_eq!((again.packs_indexed, again.sets_repointed), (0, 0));
    }
}
