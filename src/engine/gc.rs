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
//! A live pack whose live bytes fall under a threshold is **repacked** while the destination is
//! quiet: its live blobs are copied as stored into new packs (durable, with their index file,
//! before anything is marked), and the old pack is marked. Every collection then makes each
//! set's own index files locate every chunk of the set in a pack that stays, adding the index
//! file of a chunk's new home to the set's descriptor where needed; copies and validations read
//! a set through its own index files only. Packs a checkpoint uses are never repacked.
//!
//! An index file names whole packs, and one that a set keeps may name a pack that is dead, so a
//! swept pack is not forgotten: its id stays in `gc/retired.json` as deleted for as long as an
//! index file names it, and every reader of the index skips it. The tombstone is written before
//! the pack is deleted, so a collection killed at any point leaves nothing pointing at a
//! missing pack; the next one recomputes everything (deleting is idempotent).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::checkpoint::Checkpoint;
use super::chunker::ContentId;
use super::error::EngineError;
use super::index::{INDEX_PREFIX, IndexedPack, decode_index, encode_index};
use super::manifest::{Extent, ManifestReader, SegmentRef};
use super::pack::{BlobEntry, PACKS_PREFIX, PackBuilder, pack_object_name};
use super::progress::Progress;
use super::set::{ObjectRef, SETS_PREFIX, SetDescriptor, decode_set};
use crate::storage::{Backend, ObjectInfo, StorageError};

/// Where the marks and tombstones live.
pub const RETIRED_OBJECT: &str = "gc/retired.json";
const MANIFESTS_PREFIX: &str = "manifests/";
const CHECKPOINTS_PREFIX: &str = "checkpoints/";

/// Read-modify-writes of a destination's collector state in this process (any destination:
/// each is a small file, read and written at once).
static UPDATING: std::sync::Mutex<()> = std::sync::Mutex::new(());

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

    fn write(&self, backend: &dyn Backend) -> Result<(), EngineError> {
        let bytes = serde_json::to_vec(self).expect("the collector state serializes");
        backend.put(RETIRED_OBJECT, &bytes)?;
        Ok(())
    }

    /// Changes the collector's state in a destination as `change` says, one change at a time
    /// in this process: a copy lifts and adds tombstones while a collection that shares the
    /// destination with it computes its marks, and neither may write back what it read
    /// before the other's change.
    pub fn update(
        backend: &dyn Backend,
        change: impl FnOnce(&mut Retired),
    ) -> Result<(), EngineError> {
        let _one = UPDATING.lock().unwrap_or_else(|p| p.into_inner());
        let mut retired = Retired::read(backend)?;
        let before = retired.clone();
        change(&mut retired);
        if retired != before {
            retired.write(backend)?;
        }
        Ok(())
    }

    /// Writes what a collection decided. A collection with the destination to itself (no
    /// backup or copy writing there, none starting) owns the whole state. One that shares it
    /// sweeps nothing and so owns only the marks: it keeps the tombstones as they are now, since
    /// a copy may have lifted or added some after the collection read them. (Writing back its
    /// own stale copy lost a lifted tombstone: a copied set then restored with "listed in none
    /// of the set's index files", found by the delete-and-copy kill test.)
    fn save(&self, backend: &dyn Backend, rule: &SweepRule) -> Result<(), EngineError> {
        if rule.backup_running {
            Retired::update(backend, |now| now.marked.clone_from(&self.marked))
        } else {
            let _one = UPDATING.lock().unwrap_or_else(|p| p.into_inner());
            self.write(backend)
        }
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
    /// Sparse packs whose live blobs were copied into new packs, and the bytes written.
    pub repacked_packs: u64,
    pub repacked_bytes: u64,
    /// Set descriptors given the index files of their chunks' new packs.
    pub rewritten_sets: u64,
}

/// When a collection may delete what it marked, and whether it may repack.
///
/// Deleting needs the destination to itself: a backup running while the sweep deletes may have
/// loaded the index before the marks (and point into a marked pack), or may write a pack whose
/// bytes, and so whose name, equal a marked one's (packs are named by their contents, and a
/// chunk that may not be deduplicated against a marked pack is stored again). So the sweep
/// and the repacking happen only when the caller says no backup writes into the destination,
/// and the caller keeps new ones from starting until `collect` returns. Marking needs no such
/// quiet.
#[derive(Debug, Clone, Copy)]
pub struct SweepRule {
    /// Now, µs since the Unix epoch.
    pub now: i64,
    /// How long a mark waits before its object may be deleted.
    pub grace_micros: i64,
    /// Whether a backup into this destination is running (or may start) during the call.
    pub backup_running: bool,
    /// Repack a live pack whose live bytes are under this fraction of its size (0.0..=1.0);
    /// 0 never repacks.
    pub repack_below: f64,
}

impl SweepRule {
    fn due(&self, marked_at: i64) -> bool {
        !self.backup_running && self.now >= marked_at.saturating_add(self.grace_micros)
    }
}

/// What references data: a set descriptor (which the collector may extend with index files)
/// or a checkpoint (whose packs are never repacked).
struct Root {
    /// The set descriptor's object, `None` for a checkpoint.
    set_object: Option<String>,
    set: Option<SetDescriptor>,
    manifest: Vec<SegmentRef>,
    index_files: Vec<ObjectRef>,
    /// The chunks its manifest names, as numbers into [`Live::chunk_ids`].
    chunks: Vec<u32>,
}

/// Everything the live sets and checkpoints reach.
struct Live {
    roots: Vec<Root>,
    chunk_numbers: HashMap<ContentId, u32>,
    chunk_ids: Vec<ContentId>,
}

impl Live {
    fn number(&mut self, id: ContentId) -> u32 {
        let next = self.chunk_ids.len() as u32;
        *self.chunk_numbers.entry(id).or_insert_with(|| {
            self.chunk_ids.push(id);
            next
        })
    }
}

/// Reads every set descriptor and checkpoint strictly: one that cannot be read stops the
/// collection, since what it references is unknown.
fn live(
    backend: &dyn Backend,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<Live, EngineError> {
    let mut live = Live {
        roots: Vec::new(),
        chunk_numbers: HashMap::new(),
        chunk_ids: Vec::new(),
    };
    let sets: Vec<_> = backend
        .list(SETS_PREFIX)?
        .into_iter()
        .filter(|o| o.name.ends_with(".set"))
        .collect();
    let checkpoints: Vec<_> = backend
        .list(CHECKPOINTS_PREFIX)?
        .into_iter()
        .filter(|o| o.name.ends_with(".ckpt"))
        .collect();
    progress
        .total_files
        .fetch_add((sets.len() + checkpoints.len()) as u64, Ordering::Relaxed);
    for object in sets {
        let set = decode_set(backend.sealer(), &object.name, &backend.get(&object.name)?)?;
        live.roots.push(Root {
            set_object: Some(object.name),
            manifest: set.manifest.clone(),
            index_files: set.index_files.clone(),
            set: Some(set),
            chunks: Vec::new(),
        });
    }
    for object in checkpoints {
        let bytes = backend.get(&object.name)?;
        let checkpoint: Checkpoint = serde_json::from_slice(&bytes).map_err(|e| {
            EngineError::corrupt(
                &object.name,
                format!("unreadable checkpoint; the collector deletes nothing while it cannot read every checkpoint: {e}"),
            )
        })?;
        live.roots.push(Root {
            set_object: None,
            set: None,
            manifest: checkpoint.manifest,
            index_files: checkpoint.index_files,
            chunks: Vec::new(),
        });
    }
    let mut roots = std::mem::take(&mut live.roots);
    for root in &mut roots {
        let mut chunks = Vec::new();
        for entry in ManifestReader::new(backend, &root.manifest) {
            if cancel.is_cancelled() {
                return Err(EngineError::Cancelled);
            }
            for extent in entry?.extents {
                if let Extent::Chunk { id, .. } = extent {
                    chunks.push(live.number(id));
                }
            }
        }
        chunks.sort_unstable();
        chunks.dedup();
        root.chunks = chunks;
        progress.finished_files.fetch_add(1, Ordering::Relaxed);
    }
    live.roots = roots;
    Ok(live)
}

/// One pack the index files name (and the collector did not delete).
struct PackInfo {
    id: ContentId,
    size: u64,
    /// Index files naming it, as numbers into the list of index objects.
    named_by: Vec<u32>,
    /// Its blobs holding live chunks: the chunk's number and where it lies.
    live_blobs: Vec<(u32, BlobEntry)>,
}

/// The packs and which live chunk lives where.
struct Packs {
    index_objects: Vec<ObjectInfo>,
    packs: Vec<PackInfo>,
    numbers: HashMap<ContentId, u32>,
    /// For each live chunk, the packs holding it.
    homes: Vec<Vec<u32>>,
}

fn read_packs(
    backend: &dyn Backend,
    live: &Live,
    retired: &Retired,
    root_index_files: &HashSet<String>,
    cancel: &CancellationToken,
) -> Result<Packs, EngineError> {
    let mut out = Packs {
        index_objects: backend.list(INDEX_PREFIX)?,
        packs: Vec::new(),
        numbers: HashMap::new(),
        homes: vec![Vec::new(); live.chunk_ids.len()],
    };
    out.index_objects.sort_by(|a, b| a.name.cmp(&b.name));
    for (file_no, object) in out.index_objects.iter().enumerate() {
        if cancel.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        let packs = match backend
            .get(&object.name)
            .map_err(EngineError::from)
            .and_then(|b| decode_index(backend.sealer(), &object.name, &b))
        {
            Ok(packs) => packs,
            // A damaged index file may name live packs: delete nothing it could have named.
            Err(e) if root_index_files.contains(&object.name) => return Err(e),
            Err(e) => {
                return Err(EngineError::corrupt(
                    &object.name,
                    format!("the collector deletes nothing while an index file is unreadable: {e}"),
                ));
            }
        };
        for pack in packs {
            if retired.is_gone(&pack.id, &object.name) {
                continue;
            }
            let number = match out.numbers.get(&pack.id) {
                Some(n) => *n,
                None => {
                    let n = out.packs.len() as u32;
                    out.numbers.insert(pack.id, n);
                    let live_blobs = pack
                        .blobs
                        .iter()
                        .filter_map(|b| live.chunk_numbers.get(&b.id).map(|c| (*c, *b)))
                        .collect();
                    out.packs.push(PackInfo {
                        id: pack.id,
                        size: pack.size,
                        named_by: Vec::new(),
                        live_blobs,
                    });
                    for (chunk, _) in &out.packs[n as usize].live_blobs {
                        out.homes[*chunk as usize].push(n);
                    }
                    n
                }
            };
            out.packs[number as usize].named_by.push(file_no as u32);
        }
    }
    for homes in &mut out.homes {
        homes.sort_unstable();
        homes.dedup();
    }
    Ok(out)
}

/// The packs that stay: for each live chunk, the packs holding it that are not marked; only
/// when every copy of a chunk is in marked packs are those live again (a backup that started
/// before the mark pointed into them). A chunk stored again after a mark thus leaves the
/// marked pack garbage. Packs a checkpoint's chunks lie in stay whatever their marks, for as
/// long as the checkpoint's index files name them.
fn choose_live(packs: &Packs, live: &Live, marked: &HashSet<ContentId>) -> HashSet<u32> {
    let mut chosen = HashSet::new();
    for homes in &packs.homes {
        let unmarked: Vec<u32> = homes
            .iter()
            .copied()
            .filter(|p| !marked.contains(&packs.packs[*p as usize].id))
            .collect();
        chosen.extend(if unmarked.is_empty() {
            homes.clone()
        } else {
            unmarked
        });
    }
    chosen.extend(pinned(packs, live));
    chosen
}

/// Packs holding a checkpoint's chunks, named by the checkpoint's own index files.
fn pinned(packs: &Packs, live: &Live) -> HashSet<u32> {
    let mut pinned = HashSet::new();
    for root in live.roots.iter().filter(|r| r.set.is_none()) {
        let files: HashSet<&str> = root.index_files.iter().map(|f| f.object.as_str()).collect();
        for chunk in &root.chunks {
            for home in &packs.homes[*chunk as usize] {
                let pack = &packs.packs[*home as usize];
                if pack
                    .named_by
                    .iter()
                    .any(|f| files.contains(packs.index_objects[*f as usize].name.as_str()))
                {
                    pinned.insert(*home);
                }
            }
        }
    }
    pinned
}

/// Copies the live blobs of the packs whose live fraction is under `rule.repack_below` into new
/// packs listed by one new index file, and marks the old packs. Their bytes are copied as
/// stored (no recompression); the new packs and their index file are durable before any mark.
/// Returns the packs it repacked and the bytes it wrote.
fn repack(
    backend: &dyn Backend,
    packs: &mut Packs,
    live: &Live,
    chosen: &HashSet<u32>,
    retired: &mut Retired,
    rule: &SweepRule,
    cancel: &CancellationToken,
) -> Result<(u64, u64), EngineError> {
    let pinned = pinned(packs, live);
    let marked = retired.marked_packs();
    let mut sparse: Vec<u32> = chosen
        .iter()
        .copied()
        .filter(|p| !pinned.contains(p) && !marked.contains(&packs.packs[*p as usize].id))
        .filter(|p| {
            let pack = &packs.packs[*p as usize];
            let live_bytes: u64 = pack.live_blobs.iter().map(|(_, b)| b.length as u64).sum();
            pack.size > 0 && (live_bytes as f64) < rule.repack_below * pack.size as f64
        })
        .collect();
    if sparse.is_empty() {
        return Ok((0, 0));
    }
    sparse.sort_unstable();
    let leaving: HashSet<u32> = sparse.iter().copied().collect();
    // A chunk is copied once, and only when no pack that stays holds it.
    let mut copied: HashSet<u32> = HashSet::new();
    let mut builder = PackBuilder::new();
    let mut written: Vec<IndexedPack> = Vec::new();
    let mut bytes_written = 0u64;
    let seal = |builder: PackBuilder, written: &mut Vec<IndexedPack>| -> Result<u64, EngineError> {
        let sealed = builder.seal(backend.sealer());
        backend.put(&pack_object_name(&sealed.id), &sealed.data)?;
        let size = sealed.data.len() as u64;
        written.push(IndexedPack {
            id: sealed.id,
            size,
            blobs: sealed.entries,
        });
        Ok(size)
    };
    for number in &sparse {
        if cancel.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        let pack = &packs.packs[*number as usize];
        let object = pack_object_name(&pack.id);
        let bytes = backend.get(&object)?;
        for (chunk, blob) in &pack.live_blobs {
            let elsewhere = packs.homes[*chunk as usize]
                .iter()
                .any(|h| chosen.contains(h) && !leaving.contains(h));
            if elsewhere || !copied.insert(*chunk) {
                continue;
            }
            let (start, end) = (
                blob.offset as usize,
                blob.offset as usize + blob.length as usize,
            );
            let stored = bytes.get(start..end).ok_or_else(|| {
                EngineError::corrupt(&object, "a blob the index names lies past the pack's end")
            })?;
            builder.add_stored(blob.id, stored, blob.raw_length, blob.compression);
            if builder.is_full() {
                let full = std::mem::take(&mut builder);
                bytes_written += seal(full, &mut written)?;
            }
        }
    }
    if !builder.is_empty() {
        bytes_written += seal(builder, &mut written)?;
    }
    if !written.is_empty() {
        let (index_object, index_bytes) = encode_index(backend.sealer(), &written);
        backend.put(&index_object, &index_bytes)?;
        bytes_written += index_bytes.len() as u64;
        let file_no = packs.index_objects.len() as u32;
        packs.index_objects.push(ObjectInfo {
            name: index_object,
            size: index_bytes.len() as u64,
        });
        for pack in written {
            let n = packs.packs.len() as u32;
            let live_blobs: Vec<(u32, BlobEntry)> = pack
                .blobs
                .iter()
                .filter_map(|b| live.chunk_numbers.get(&b.id).map(|c| (*c, *b)))
                .collect();
            for (chunk, _) in &live_blobs {
                packs.homes[*chunk as usize].push(n);
            }
            packs.numbers.insert(pack.id, n);
            packs.packs.push(PackInfo {
                id: pack.id,
                size: pack.size,
                named_by: vec![file_no],
                live_blobs,
            });
        }
    }
    for number in &sparse {
        retired.marked.insert(
            pack_object_name(&packs.packs[*number as usize].id),
            rule.now,
        );
    }
    retired.save(backend, rule)?;
    Ok((sparse.len() as u64, bytes_written))
}

/// Makes every set's index files locate each of its chunks in a pack that stays: a chunk whose
/// pack leaves (repacked, or marked while a backup that started earlier still pointed into it)
/// is found again through the index file naming its new home, which the descriptor then lists.
/// Returns how many descriptors were rewritten.
fn cover_sets(
    backend: &dyn Backend,
    live: &mut Live,
    packs: &Packs,
    chosen: &HashSet<u32>,
) -> Result<u64, EngineError> {
    let by_name: HashMap<&str, u32> = packs
        .index_objects
        .iter()
        .enumerate()
        .map(|(n, o)| (o.name.as_str(), n as u32))
        .collect();
    let mut rewritten = 0;
    for root in live.roots.iter_mut() {
        let Some(object) = root.set_object.clone() else {
            continue;
        };
        let mut files: HashSet<u32> = root
            .index_files
            .iter()
            .filter_map(|f| by_name.get(f.object.as_str()).copied())
            .collect();
        let mut added: Vec<u32> = Vec::new();
        for chunk in &root.chunks {
            let homes: Vec<&PackInfo> = packs.homes[*chunk as usize]
                .iter()
                .filter(|h| chosen.contains(h))
                .map(|h| &packs.packs[*h as usize])
                .collect();
            let covered = homes
                .iter()
                .any(|p| p.named_by.iter().any(|f| files.contains(f)));
            if covered {
                continue;
            }
            // No home at all is damage a validation reports; nothing to point at here.
            if let Some(file) = homes.first().and_then(|p| p.named_by.first()) {
                files.insert(*file);
                added.push(*file);
            }
        }
        if added.is_empty() {
            continue;
        }
        let set = root.set.as_mut().expect("a set root has its descriptor");
        for file in added {
            let info = &packs.index_objects[file as usize];
            let reference = ObjectRef {
                object: info.name.clone(),
                size: info.size,
            };
            set.index_files.push(reference.clone());
            root.index_files.push(reference);
        }
        let bytes = serde_json::to_vec_pretty(set).expect("a set descriptor always serializes");
        backend.put(&object, &bytes)?;
        rewritten += 1;
    }
    Ok(rewritten)
}

/// Collects garbage in the repository at `backend`: repacks sparse packs and sweeps what was
/// marked earlier and is due under `rule`, and marks what is garbage now. Returns what it did;
/// `progress` counts the roots read (files) and the garbage bytes deleted (input bytes).
pub fn collect(
    backend: &dyn Backend,
    rule: SweepRule,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<Collection, EngineError> {
    let mut retired = Retired::read(backend)?;
    let mut live = live(backend, progress, cancel)?;
    let root_index_files: HashSet<String> = live
        .roots
        .iter()
        .flat_map(|r| r.index_files.iter().map(|f| f.object.clone()))
        .collect();
    let mut packs = read_packs(backend, &live, &retired, &root_index_files, cancel)?;
    let mut chosen = choose_live(&packs, &live, &retired.marked_packs());
    let mut report = Collection {
        roots: live.roots.len() as u64,
        ..Collection::default()
    };
    if !rule.backup_running && rule.repack_below > 0.0 {
        let (repacked, written) = repack(
            backend,
            &mut packs,
            &live,
            &chosen,
            &mut retired,
            &rule,
            cancel,
        )?;
        if repacked > 0 {
            report.repacked_packs = repacked;
            report.repacked_bytes = written;
            chosen = choose_live(&packs, &live, &retired.marked_packs());
        }
    }
    report.rewritten_sets = cover_sets(backend, &mut live, &packs, &chosen)?;
    let live_manifests: HashSet<String> = live
        .roots
        .iter()
        .flat_map(|r| r.manifest.iter().map(|s| s.object.clone()))
        .collect();
    let live_index_files: HashSet<String> = live
        .roots
        .iter()
        .flat_map(|r| r.index_files.iter().map(|f| f.object.clone()))
        .collect();
    let live_packs: HashSet<ContentId> =
        chosen.iter().map(|p| packs.packs[*p as usize].id).collect();

    let mut garbage: Vec<(String, u64)> = Vec::new();
    for object in backend.list(MANIFESTS_PREFIX)? {
        if live_manifests.contains(&object.name) {
            report.live_bytes += object.size;
        } else {
            garbage.push((object.name, object.size));
        }
    }
    for object in &packs.index_objects {
        if live_index_files.contains(&object.name) {
            report.live_bytes += object.size;
        } else {
            garbage.push((object.name.clone(), object.size));
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
    for (object, _) in &sweep {
        let Some(id) = pack_id_of(object) else {
            continue;
        };
        let Some(number) = packs.numbers.get(&id) else {
            continue;
        };
        let files: BTreeSet<String> = packs.packs[*number as usize]
            .named_by
            .iter()
            .map(|f| packs.index_objects[*f as usize].name.clone())
            .filter(|f| !swept_objects.contains(f.as_str()))
            .collect();
        retired
            .deleted_packs
            .entry(id.to_hex())
            .or_default()
            .extend(files);
    }
    let remaining: HashSet<&str> = packs
        .index_objects
        .iter()
        .map(|o| o.name.as_str())
        .filter(|f| !swept_objects.contains(f))
        .collect();
    for files in retired.deleted_packs.values_mut() {
        files.retain(|f| remaining.contains(f.as_str()));
    }
    retired.deleted_packs.retain(|_, files| !files.is_empty());
    retired.save(backend, &rule)?;

    // Manifests and index files first: nothing may name a pack that is already gone unless
    // its tombstone is durable, which it is now.
    sweep.sort_by_key(|(object, _)| object.starts_with(PACKS_PREFIX));
    progress
        .total_bytes
        .fetch_add(sweep.iter().map(|(_, s)| s).sum::<u64>(), Ordering::Relaxed);
    for (object, size) in sweep {
        if cancel.is_cancelled() {
            retired.save(backend, &rule)?;
            return Err(EngineError::Cancelled);
        }
        backend.delete(&object)?;
        retired.marked.remove(&object);
        report.deleted_objects += 1;
        report.deleted_bytes += size;
        progress.input_bytes.fetch_add(size, Ordering::Relaxed);
    }
    retired.save(backend, &rule)?;
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
            repack_below: 0.0,
        }
    }

    fn collect(
        backend: &dyn Backend,
        rule: SweepRule,
        cancel: &CancellationToken,
    ) -> Result<Collection, EngineError> {
        super::collect(backend, rule, &Progress::new(), cancel)
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

    #[test]
    fn a_sparse_pack_is_repacked_and_the_set_that_kept_its_chunks_still_restores_and_copies() {
        let dir = tempfile::tempdir().unwrap();
        let (first, second) = (dir.path().join("first"), dir.path().join("second"));
        fs::create_dir_all(&first).unwrap();
        fs::create_dir_all(&second).unwrap();
        // One backup: 5 MiB only the first set keeps, then 5 MiB both keep, sharing packs.
        fs::write(first.join("a-gone"), noise(11, 5 << 20)).unwrap();
        fs::write(first.join("b-kept"), noise(12, 5 << 20)).unwrap();
        fs::write(second.join("b-kept"), noise(12, 5 << 20)).unwrap();
        let root = dir.path().join("repo");
        let repo = new_repo(&root);
        run_backup(&repo, &request(1, &first)).unwrap();
        run_backup(&repo, &request(2, &second)).unwrap();
        let cancel = CancellationToken::new();
        repo.backend().delete("sets/1001/1.set").unwrap();

        let repacking = SweepRule {
            repack_below: 0.9,
            ..rule(1_000, false)
        };
        let done = collect(repo.backend(), repacking, &cancel).unwrap();
        assert!(done.repacked_packs >= 1, "{done:?}");
        assert_eq!(
            done.rewritten_sets, 1,
            "set 2 now names the new index file: {done:?}"
        );
        // Grace 0: the sparse pack is marked by the repack and swept by the same collection
        // only from the next one on (marks are swept once they are due, at the next pass).
        let swept = collect(
            repo.backend(),
            SweepRule {
                now: 2_000,
                ..repacking
            },
            &cancel,
        )
        .unwrap();
        assert_eq!(swept.pending_objects, 0, "{swept:?}");
        assert_eq!(stored_bytes(&root), swept.live_bytes);
        // What stays is about set 2's 5 MiB, not the 8 MiB packs it shared with set 1.
        assert!(swept.live_bytes < (5 << 20) + (1 << 20), "{swept:?}");
        assert_restores_to(&repo, 2, &second, dir.path());
        physical_ok(&repo, 2);
        // A copy takes what the set's own index files name, so the rewritten descriptor must
        // be complete: copied elsewhere, the set restores there.
        let other = new_repo(&dir.path().join("other"));
        let tenant = crate::engine::TenantRef::Id(TENANT);
        crate::engine::copy::copy_set(
            &repo,
            &other,
            &tenant,
            2,
            false,
            &Progress::new(),
            &crate::engine::throttle::Throttle::new(0),
            &cancel,
        )
        .unwrap();
        assert_restores_to(&other, 2, &second, dir.path());
        let settled = collect(
            repo.backend(),
            SweepRule {
                now: 3_000,
                ..repacking
            },
            &cancel,
        )
        .unwrap();
        assert_eq!(
            (
                settled.repacked_packs,
                settled.deleted_objects,
                settled.pending_objects
            ),
            (0, 0, 0),
            "{settled:?}"
        );
    }
}
