//! Space reclamation: a two-phase collector that is safe while backups run.
//!
//! What is live is what a set descriptor or a checkpoint (a restartable context's partial data
//! included) reaches: its manifest segments, its index files, and every pack holding a chunk
//! its manifest names. Everything else under `packs/`, `index/` and `manifests/` is garbage.
//!
//! A collection first **marks** garbage: the marks are kept durably in `gc/retired.json`, and a
//! backup that loads the index afterwards no longer deduplicates against a marked pack (it stores
//! the chunk again). A later collection **sweeps** what is still garbage and was marked at least
//! the grace period ago, while no backup writes into the destination ([`SweepRule`]). Every
//! collection recomputes what is live from the sets and checkpoints, so a mark whose object
//! became live again (a backup that started before the mark referenced it) is simply dropped.
//!
//! An index file names whole packs, and one that a set keeps may name a pack that is dead, so a
//! swept pack is not forgotten: its id stays in `gc/retired.json` as deleted for as long as an
//! index file names it, and every reader of the index skips it. The tombstone is written before
//! the pack is deleted, so a collection killed at any point leaves nothing pointing at a
//! missing pack; the next one recomputes everything (deleting is idempotent).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::checkpoint::Checkpoint;
use super::chunker::ContentId;
use super::error::EngineError;
use super::index::{INDEX_PREFIX, decode_index};
use super::manifest::{Extent, ManifestReader, SegmentRef};
use super::set::{ObjectRef, SETS_PREFIX, decode_set};
use crate::storage::{Backend, StorageError};

/// Where the marks and tombstones live.
pub const RETIRED_OBJECT: &str = "gc/retired.json";
const PACKS_PREFIX: &str = "packs/";
const MANIFESTS_PREFIX: &str = "manifests/";
const CHECKPOINTS_PREFIX: &str = "checkpoints/";

/// The collector's durable state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retired {
    /// Garbage found by a collection, by object name, with when it was marked (µs since the
    /// Unix epoch).
    #[serde(default)]
    pub marked: BTreeMap<String, i64>,
    /// Packs deleted while index files still name them: the pack's hex id, and the index
    /// files that named it when it was deleted. Read through those files, the pack is gone; a
    /// later index file naming the same id (a backup that stored the same chunks again, in a
    /// pack with the same bytes and so the same name) names the new pack.
    #[serde(default)]
    pub deleted_packs: BTreeMap<String, BTreeSet<String>>,
}

impl Retired {
    /// The collector's state in a destination (empty when it never ran there).
    pub fn read(backend: &dyn Backend) -> Result<Retired, EngineError> {
        match backend.get(RETIRED_OBJECT) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                EngineError::corrupt(RETIRED_OBJECT, format!("unreadable collector state: {e}"))
            }),
            Err(StorageError::NotFound { .. }) => Ok(Retired::default()),
            Err(e) => Err(e.into()),
        }
    }

    pub(super) fn write(&self, backend: &dyn Backend) -> Result<(), EngineError> {
        let bytes = serde_json::to_vec(self).expect("the collector state serializes");
        backend.put(RETIRED_OBJECT, &bytes)?;
        Ok(())
    }

    /// Whether index file `index` names a pack that is gone.
    pub fn is_gone(&self, pack: &ContentId, index: &str) -> bool {
        self.deleted_packs
            .get(&pack.to_hex())
            .is_some_and(|files| files.contains(index))
    }

    /// Packs marked as garbage: a new backup may not deduplicate against them.
    pub fn marked_packs(&self) -> HashSet<ContentId> {
        self.marked
            .keys()
            .filter_map(|object| pack_id_of(object))
            .collect()
    }
}

/// `packs/ab/<64 hex>.pack` → its id.
fn pack_id_of(object: &str) -> Option<ContentId> {
    let name = object.strip_prefix(PACKS_PREFIX)?.rsplit('/').next()?;
    ContentId::from_hex(name.strip_suffix(".pack")?)
}

/// What a collection did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Collection {
    /// Sets and checkpoints whose references were followed.
    pub roots: u64,
    /// Objects deleted by this collection, and their bytes.
    pub deleted_objects: u64,
    pub deleted_bytes: u64,
    /// Garbage marked and waiting for its grace period (or for older backups to end).
    pub pending_objects: u64,
    pub pending_bytes: u64,
    /// Bytes of the live packs, index files and manifest segments.
    pub live_bytes: u64,
}

/// When a collection may delete what it marked.
///
/// Deleting needs the destination to itself: a backup running while the sweep deletes may have
/// loaded the index before the marks (and point into a marked pack), or may write a pack whose
/// bytes, and so whose name, equal a marked one's (packs are named by their contents, and a
/// chunk that may not be deduplicated against a marked pack is stored again). So the sweep
/// happens only when the caller says no backup writes into the destination, and the caller
/// keeps new ones from starting until `collect` returns. Marking needs no such quiet.
#[derive(Debug, Clone, Copy)]
pub struct SweepRule {
    /// Now, µs since the Unix epoch.
    pub now: i64,
    /// How long a mark waits before its object may be deleted.
    pub grace_micros: i64,
    /// Whether a backup into this destination is running (or may start) during the call.
    pub backup_running: bool,
}

impl SweepRule {
    fn due(&self, marked_at: i64) -> bool {
        !self.backup_running && self.now >= marked_at.saturating_add(self.grace_micros)
    }
}

/// Everything the live sets and checkpoints reach.
struct Live {
    roots: u64,
    manifests: HashSet<String>,
    index_files: HashSet<String>,
    chunks: HashSet<ContentId>,
}

/// Reads every set descriptor and checkpoint strictly: one that cannot be read stops the
/// collection, since what it references is unknown.
fn live(backend: &dyn Backend, cancel: &CancellationToken) -> Result<Live, EngineError> {
    let mut live = Live {
        roots: 0,
        manifests: HashSet::new(),
        index_files: HashSet::new(),
        chunks: HashSet::new(),
    };
    let mut roots: Vec<(Vec<SegmentRef>, Vec<ObjectRef>)> = Vec::new();
    for object in backend.list(SETS_PREFIX)? {
        if object.name.ends_with(".set") {
            let set = decode_set(&object.name, &backend.get(&object.name)?)?;
            roots.push((set.manifest, set.index_files));
        }
    }
    for object in backend.list(CHECKPOINTS_PREFIX)? {
        if object.name.ends_with(".ckpt") {
            let bytes = backend.get(&object.name)?;
            let checkpoint: Checkpoint = serde_json::from_slice(&bytes).map_err(|e| {
                EngineError::corrupt(
                    &object.name,
                    format!("unreadable checkpoint; the collector deletes nothing while it cannot read every checkpoint: {e}"),
                )
            })?;
            roots.push((checkpoint.manifest, checkpoint.index_files));
        }
    }
    for (manifest, index_files) in &roots {
        live.roots += 1;
        live.index_files
            .extend(index_files.iter().map(|f| f.object.clone()));
        live.manifests
            .extend(manifest.iter().map(|s| s.object.clone()));
        for entry in ManifestReader::new(backend, manifest) {
            if cancel.is_cancelled() {
                return Err(EngineError::Cancelled);
            }
            for extent in entry?.extents {
                if let Extent::Chunk { id, .. } = extent {
                    live.chunks.insert(id);
                }
            }
        }
    }
    Ok(live)
}

/// Collects garbage in the repository at `backend`: sweeps what was marked earlier and is due
/// under `rule`, and marks what is garbage now. Returns what it did.
pub fn collect(
    backend: &dyn Backend,
    rule: SweepRule,
    cancel: &CancellationToken,
) -> Result<Collection, EngineError> {
    let mut retired = Retired::read(backend)?;
    let live = live(backend, cancel)?;

    // Live packs: for each live chunk, the packs holding it that are not marked; only when
    // every copy of a chunk is in marked packs are those live again (a backup that started
    // before the mark pointed into them). A chunk stored again after a mark thus leaves the
    // marked pack garbage.
    let marked_packs = retired.marked_packs();
    let mut homes: std::collections::HashMap<ContentId, Vec<ContentId>> =
        std::collections::HashMap::new();
    // Which index files name each pack (a tombstone lists them).
    let mut naming: std::collections::HashMap<ContentId, BTreeSet<String>> =
        std::collections::HashMap::new();
    let index_objects = backend.list(INDEX_PREFIX)?;
    for object in &index_objects {
        if cancel.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        let packs = match backend
            .get(&object.name)
            .map_err(EngineError::from)
            .and_then(|b| decode_index(&object.name, &b))
        {
            Ok(packs) => packs,
            // A damaged index file may name live packs: delete nothing it could have named.
            Err(e) if live.index_files.contains(&object.name) => return Err(e),
            Err(e) => {
                return Err(EngineError::corrupt(
                    &object.name,
                    format!("the collector deletes nothing while an index file is unreadable: {e}"),
                ));
            }
        };
        for pack in packs {
            naming
                .entry(pack.id)
                .or_default()
                .insert(object.name.clone());
            if retired.is_gone(&pack.id, &object.name) {
                continue;
            }
            for blob in &pack.blobs {
                if live.chunks.contains(&blob.id) {
                    homes.entry(blob.id).or_default().push(pack.id);
                }
            }
        }
    }
    let mut live_packs: HashSet<ContentId> = HashSet::new();
    for packs in homes.values() {
        let unmarked: Vec<&ContentId> =
            packs.iter().filter(|p| !marked_packs.contains(p)).collect();
        if unmarked.is_empty() {
            live_packs.extend(packs.iter().copied());
        } else {
            live_packs.extend(unmarked.into_iter().copied());
        }
    }

    let mut report = Collection {
        roots: live.roots,
        ..Collection::default()
    };
    let mut garbage: Vec<(String, u64)> = Vec::new();
    for object in backend.list(MANIFESTS_PREFIX)? {
        if live.manifests.contains(&object.name) {
            report.live_bytes += object.size;
        } else {
            garbage.push((object.name, object.size));
        }
    }
    for object in index_objects {
        if live.index_files.contains(&object.name) {
            report.live_bytes += object.size;
        } else {
            garbage.push((object.name, object.size));
        }
    }
    for object in backend.list(PACKS_PREFIX)? {
        match pack_id_of(&object.name) {
            Some(id) if live_packs.contains(&id) => report.live_bytes += object.size,
            Some(_) => garbage.push((object.name, object.size)),
            // Not a pack name: not ours to judge.
            None => {}
        }
    }

    // Marks of objects that are live again are dropped; new garbage is marked now; due marks
    // are swept: packs are tombstoned (durably) before anything is deleted.
    let garbage_names: HashSet<&str> = garbage.iter().map(|(n, _)| n.as_str()).collect();
    retired
        .marked
        .retain(|object, _| garbage_names.contains(object.as_str()));
    let mut sweep = Vec::new();
    for (object, size) in &garbage {
        match retired.marked.get(object) {
            Some(&marked_at) if rule.due(marked_at) => sweep.push((object.clone(), *size)),
            Some(_) => {
                report.pending_objects += 1;
                report.pending_bytes += size;
            }
            None => {
                retired.marked.insert(object.clone(), rule.now);
                report.pending_objects += 1;
                report.pending_bytes += size;
            }
        }
    }
    // Tombstones: a swept pack is gone as the index files that name it now name it, minus
    // those this sweep deletes; an old tombstone keeps only the index files still there.
    let swept_objects: HashSet<&str> = sweep.iter().map(|(o, _)| o.as_str()).collect();
    let still_there = |file: &String| {
        naming.values().any(|files| files.contains(file)) && !swept_objects.contains(file.as_str())
    };
    for (object, _) in &sweep {
        if let Some(id) = pack_id_of(object) {
            let files: BTreeSet<String> = naming
                .get(&id)
                .into_iter()
                .flatten()
                .filter(|f| !swept_objects.contains(f.as_str()))
                .cloned()
                .collect();
            retired
                .deleted_packs
                .entry(id.to_hex())
                .or_default()
                .extend(files);
        }
    }
    for files in retired.deleted_packs.values_mut() {
        files.retain(|f| still_there(f));
    }
    retired.deleted_packs.retain(|_, files| !files.is_empty());
    retired.write(backend)?;

    // Manifests and index files first: nothing may name a pack that is already gone unless
    // its tombstone is durable, which it is now.
    sweep.sort_by_key(|(object, _)| object.starts_with(PACKS_PREFIX));
    for (object, size) in sweep {
        if cancel.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        backend.delete(&object)?;
        retired.marked.remove(&object);
        report.deleted_objects += 1;
        report.deleted_bytes += size;
    }
    retired.write(backend)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testkit::*;
    use std::fs;

    fn rule(now: i64, backup_running: bool) -> SweepRule {
        SweepRule {
            now,
            grace_micros: 0,
            backup_running,
        }
    }

    fn stored_bytes(root: &std::path::Path) -> u64 {
        ["packs", "index", "manifests"]
            .iter()
            .map(|d| walk_sizes(&root.join(d)))
            .sum()
    }

    fn walk_sizes(dir: &std::path::Path) -> u64 {
        let Ok(entries) = fs::read_dir(dir) else {
            return 0;
        };
        entries
            .filter_map(Result::ok)
            .map(|e| {
                let meta = e.metadata().unwrap();
                if meta.is_dir() {
                    walk_sizes(&e.path())
                } else {
                    meta.len()
                }
            })
            .sum()
    }

    #[test]
    fn a_deleted_set_is_reclaimed_in_two_phases_and_the_other_still_restores() {
        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("first");
        let second = dir.path().join("second");
        fs::create_dir_all(&first).unwrap();
        fs::create_dir_all(&second).unwrap();
        // Incompressible, so that each backup fills packs of its own.
        fs::write(first.join("only-in-first"), noise(1, 12 << 20)).unwrap();
        fs::write(first.join("shared"), noise(2, 6 << 20)).unwrap();
        fs::write(second.join("shared"), noise(2, 6 << 20)).unwrap();
        fs::write(second.join("only-in-second"), noise(3, 3 << 20)).unwrap();
        let root = dir.path().join("repo");
        let repo = new_repo(&root);
        run_backup(&repo, &request(1, &first)).unwrap();
        run_backup(&repo, &request(2, &second)).unwrap();
        let before = stored_bytes(&root);
        let cancel = CancellationToken::new();

        // Nothing is garbage while both sets live.
        let nothing = collect(repo.backend(), rule(1_000, false), &cancel).unwrap();
        assert_eq!(
            (nothing.deleted_objects, nothing.pending_objects),
            (0, 0),
            "{nothing:?}"
        );

        repo.backend().delete("sets/1001/1.set").unwrap();
        let marked = collect(repo.backend(), rule(2_000, false), &cancel).unwrap();
        assert_eq!(
            marked.deleted_objects, 0,
            "the first pass only marks: {marked:?}"
        );
        // Set 1's own packs, its manifest and index: at least what it alone held (the pack it
        // shares with set 2's data stays live).
        assert!(marked.pending_bytes > 6 << 20, "{marked:?}");
        // A running backup holds the sweep back.
        let held = collect(repo.backend(), rule(3_000, true), &cancel).unwrap();
        assert_eq!(held.deleted_objects, 0, "{held:?}");
        let swept = collect(repo.backend(), rule(4_000, false), &cancel).unwrap();
        assert_eq!(swept.deleted_bytes, marked.pending_bytes, "{swept:?}");
        assert_eq!(swept.pending_objects, 0);
        assert_eq!(stored_bytes(&root), before - swept.deleted_bytes);
        assert_eq!(stored_bytes(&root), swept.live_bytes);
        assert_restores_to(&repo, 2, &second, dir.path());
        // Set 2 keeps the index file that also named set 1's own packs: they are tombstoned,
        // and a new backup of the first tree stores its data again instead of pointing at them.
        assert!(
            !Retired::read(repo.backend())
                .unwrap()
                .deleted_packs
                .is_empty()
        );
        let again = run_backup(&repo, &request(3, &first)).unwrap();
        assert!(again.bytes_written > 6 << 20, "{again:?}");
        assert_restores_to(&repo, 3, &first, dir.path());
        let settled = collect(repo.backend(), rule(5_000, false), &cancel).unwrap();
        assert_eq!(
            (settled.deleted_objects, settled.pending_objects),
            (0, 0),
            "{settled:?}"
        );
    }

    #[test]
    fn a_backup_never_reuses_a_marked_pack_and_a_set_that_did_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        fs::create_dir_all(&tree).unwrap();
        fs::write(tree.join("data"), noise(4, 10 << 20)).unwrap();
        let later = dir.path().join("later");
        fs::create_dir_all(&later).unwrap();
        fs::write(later.join("data"), noise(4, 10 << 20)).unwrap();
        // After the data in the walk: the packs of the second backup differ from the first's.
        fs::write(later.join("more"), noise(5, 1 << 20)).unwrap();
        let root = dir.path().join("repo");
        let repo = new_repo(&root);
        run_backup(&repo, &request(1, &tree)).unwrap();
        let cancel = CancellationToken::new();
        repo.backend().delete("sets/1001/1.set").unwrap();
        let marked = collect(repo.backend(), rule(1_000, false), &cancel).unwrap();
        assert!(marked.pending_objects > 0);

        // A backup after the mark stores the data again instead of pointing into the marked
        // packs; the sweep then deletes them and the new set still restores.
        let summary = run_backup(&repo, &request(2, &later)).unwrap();
        assert!(summary.bytes_written > 10 << 20, "{summary:?}");
        let swept = collect(repo.backend(), rule(2_000, false), &cancel).unwrap();
        // Set 1's manifest and index file at least; a pack of it whose bytes the second backup
        // happened to write again (same chunks in the same order: the same name) stays.
        assert!(swept.deleted_objects >= 2, "{swept:?}");
        assert_eq!(stored_bytes(&root), swept.live_bytes);
        assert_restores_to(&repo, 2, &later, dir.path());

        // A set finishing late whose chunks are in marked packs (its backup loaded the index
        // before the mark) makes them live again: the marks are dropped, nothing is deleted.
        let descriptor = repo.backend().get("sets/1001/2.set").unwrap();
        repo.backend().delete("sets/1001/2.set").unwrap();
        let remarked = collect(repo.backend(), rule(3_000, false), &cancel).unwrap();
        assert!(remarked.pending_objects > 0);
        repo.backend().put("sets/1001/2.set", &descriptor).unwrap();
        let kept = collect(repo.backend(), rule(4_000, false), &cancel).unwrap();
        assert_eq!(
            (kept.deleted_objects, kept.pending_objects),
            (0, 0),
            "{kept:?}"
        );
        assert!(Retired::read(repo.backend()).unwrap().marked.is_empty());
        assert_restores_to(&repo, 2, &later, dir.path());
    }
}
