//! Copies of backup sets into a second repository (backup-backup, SPEC §2.4).
//!
//! Every object a set needs is named by the BLAKE3 of its bytes, except its descriptor: the
//! packs its index files list, the index files, the manifest segments. A copy therefore sends
//! only the objects the second repository lacks (one already there under the same name and size
//! holds the same bytes), checks every object it sends against its name, and writes in the
//! order a backup does: packs, index files, manifest segments, and the set descriptor last, as
//! the commit point. A copy interrupted anywhere leaves a valid repository whose earlier sets are
//! untouched, and the copied set restores and validates on its own.

use std::sync::atomic::Ordering;

use tokio_util::sync::CancellationToken;

use super::archive::copy_kept_segments;
use super::chunker::ContentId;
use super::error::EngineError;
use super::index::decode_index;
use super::pack::pack_object_name;
use super::progress::Progress;
use super::repository::{Repository, TenantRef};
use super::set::{read_set, write_set};
use super::throttle::Throttle;
use crate::storage::aligned::AlignedBuf;
use crate::storage::{commit_staged, staging_channel};

/// What a copy did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopySummary {
    /// Objects sent to the second repository, and their bytes.
    pub objects_copied: u64,
    pub bytes_copied: u64,
    /// Objects the second repository already had.
    pub objects_present: u64,
    /// The set was already complete in the second repository: nothing was done.
    pub already_there: bool,
}

/// Copies set `set_id` of `tenant` from `source` into `target`; `with_log` (a set made `PLUS
/// ARCHIVELOG`) also copies the log segments kept beside it up to its end, so that the copy
/// restores with its log on its own too.
#[allow(clippy::too_many_arguments)]
pub fn copy_set(
    source: &Repository,
    target: &Repository,
    tenant: &TenantRef,
    set_id: i64,
    with_log: bool,
    progress: &Progress,
    throttle: &Throttle,
    cancel: &CancellationToken,
) -> Result<CopySummary, EngineError> {
    if !target.is_writable() {
        return Err(EngineError::ReadOnly {
            destination: target.backend().describe(),
        });
    }
    let set = source.find_set(tenant, set_id)?;
    if read_set(target.backend(), set.tenant_id, set.set_id)?.is_some() {
        return Ok(CopySummary {
            already_there: true,
            ..CopySummary::default()
        });
    }
    // What the set needs, in write order.
    let mut objects: Vec<(String, u64)> = Vec::new();
    let mut index_files = Vec::new();
    // Packs the source's collector deleted are named by index files the set keeps, never by
    // its chunks: they are not copied, and the destination learns they are gone before it
    // holds an index file that names them.
    let retired = super::gc::Retired::read(source.backend())?;
    let mut skipped: Vec<(ContentId, String)> = Vec::new();
    // The packs the copy makes present, with the index file that names each.
    let mut named: Vec<(ContentId, String)> = Vec::new();
    for index in &set.index_files {
        let bytes = source.backend().get(&index.object)?;
        for pack in decode_index(source.sealer(), &index.object, &bytes)? {
            if retired.is_gone(&pack.id, &index.object) {
                skipped.push((pack.id, index.object.clone()));
                continue;
            }
            named.push((pack.id, index.object.clone()));
            let name = pack_object_name(&pack.id);
            if !objects.iter().any(|(n, _)| *n == name) {
                objects.push((name, pack.size));
            }
        }
        index_files.push((index.object.clone(), index.size));
    }
    if !skipped.is_empty() {
        super::gc::Retired::update(target.backend(), |theirs| {
            for (id, index) in &skipped {
                theirs
                    .deleted_packs
                    .entry(id.to_hex())
                    .or_default()
                    .insert(index.clone());
            }
        })?;
    }
    // Packs first: an index file may only be written once the packs it lists are durable.
    let packs = objects.len();
    objects.extend(index_files);
    objects.extend(
        set.manifest
            .iter()
            .map(|s| (s.object.clone(), s.stored_size)),
    );
    progress.total_bytes.store(
        objects.iter().map(|(_, size)| size).sum(),
        Ordering::Relaxed,
    );
    progress
        .total_files
        .store(objects.len() as u64, Ordering::Relaxed);

    let mut summary = CopySummary::default();
    let (first, rest) = objects.split_at(packs);
    copy_objects(
        source,
        target,
        first,
        progress,
        throttle,
        cancel,
        &mut summary,
    )?;
    revive_tombstoned_packs(target, &named)?;
    copy_objects(
        source,
        target,
        rest,
        progress,
        throttle,
        cancel,
        &mut summary,
    )?;
    if with_log {
        // Before the descriptor: a copy that shows is whole, its log included.
        let until = chrono::DateTime::parse_from_rfc3339(&set.end_time)
            .ok()
            .and_then(|t| t.timestamp_nanos_opt())
            .unwrap_or(i64::MAX);
        let (segments, bytes) = copy_kept_segments(
            source.backend(),
            target.backend(),
            set.tenant_id,
            until,
            cancel,
        )?;
        summary.objects_copied += segments;
        summary.bytes_copied += bytes;
        progress.output_bytes.fetch_add(bytes, Ordering::Relaxed);
    }
    if cancel.is_cancelled() {
        return Err(EngineError::Cancelled);
    }
    write_set(target.backend(), &set)?;
    Ok(summary)
}

/// The destination's collector may have deleted a pack that an index file kept by another of
/// its sets names, and left a tombstone: read through that index file, the pack is gone. When
/// the copy brings the pack back (or finds it there again) for a set that names it through the
/// same index file, the tombstone would hide chunks the copied set needs: it is lifted, now that
/// the pack is durable and before the copy's index files and descriptor make the set visible.
/// Found by the kill test of deletions and copies: a copy of a set whose copy had been deleted
/// and collected restored with "listed in none of the set's index files".
fn revive_tombstoned_packs(
    target: &Repository,
    named: &[(ContentId, String)],
) -> Result<(), EngineError> {
    super::gc::Retired::update(target.backend(), |theirs| {
        for (id, index) in named {
            if let Some(files) = theirs.deleted_packs.get_mut(&id.to_hex()) {
                files.remove(index);
            }
        }
        theirs.deleted_packs.retain(|_, files| !files.is_empty());
    })
}

/// How many objects are read, checked and written at once. Each thread waits for its own
/// direct writes, so this is also the disk's queue; 6 and 8 measured no faster here.
const COPY_THREADS: usize = 4;

/// Copies `objects` (in any order among themselves), each checked, on a few threads; returns
/// once all are durable in `target`, or at the first failure. The threads read, check and stage
/// each object; one committer makes them durable (fsync, rename, folder fsync) as they come, so
/// reading and checking overlap the disk instead of waiting for it object by object.
fn copy_objects(
    source: &Repository,
    target: &Repository,
    objects: &[(String, u64)],
    progress: &Progress,
    throttle: &Throttle,
    cancel: &CancellationToken,
    summary: &mut CopySummary,
) -> Result<(), EngineError> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, AtomicUsize};
    use std::sync::mpsc;
    let next = AtomicUsize::new(0);
    let failed: Mutex<Option<EngineError>> = Mutex::new(None);
    let fail = |e: EngineError| {
        failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(e);
    };
    let has_failed = || failed.lock().unwrap_or_else(|p| p.into_inner()).is_some();
    let (copied, bytes, present) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let (staged_tx, staged_rx) = staging_channel();
    let work = |staged_tx: mpsc::SyncSender<_>| -> Result<(), EngineError> {
        // One buffer for the thread's whole share: a fresh one per object would take (and zero)
        // new pages for every object, which cost more here than reading the object does.
        let mut buf = AlignedBuf::new();
        loop {
            if cancel.is_cancelled() {
                return Err(EngineError::Cancelled);
            }
            if has_failed() {
                return Ok(());
            }
            let Some((name, size)) = objects.get(next.fetch_add(1, Ordering::Relaxed)) else {
                return Ok(());
            };
            if target.backend().size(name)? == Some(*size) {
                present.fetch_add(1, Ordering::Relaxed);
                progress.input_bytes.fetch_add(*size, Ordering::Relaxed);
                progress.finished_files.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let len = read_whole(source, name, *size, &mut buf)?;
            check(name, &buf[..len], *size)?;
            throttle.wait(len as u64, cancel);
            // Nobody reads a copied object soon: it need not take the page cache.
            let staged = target.backend().stage_uncached(name, &buf, len)?;
            progress.input_bytes.fetch_add(*size, Ordering::Relaxed);
            if staged_tx.send((staged, *size)).is_err() {
                // The committer stopped at a failure it recorded.
                return Ok(());
            }
        }
    };
    std::thread::scope(|scope| {
        let (copied, bytes) = (&copied, &bytes);
        let committer = scope.spawn(move || {
            commit_staged(
                target.backend(),
                staged_rx,
                || !cancel.is_cancelled() && !has_failed(),
                |size| {
                    copied.fetch_add(1, Ordering::Relaxed);
                    bytes.fetch_add(size, Ordering::Relaxed);
                    progress.output_bytes.fetch_add(size, Ordering::Relaxed);
                    progress.finished_files.fetch_add(1, Ordering::Relaxed);
                },
                |e| fail(e.into()),
            )
        });
        for _ in 0..COPY_THREADS.min(objects.len().max(1)) {
            let staged_tx = staged_tx.clone();
            scope.spawn(|| {
                if let Err(e) = work(staged_tx) {
                    fail(e);
                }
            });
        }
        drop(staged_tx);
        let _ = committer.join();
    });
    if let Some(e) = failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    summary.objects_copied += copied.into_inner();
    summary.bytes_copied += bytes.into_inner();
    summary.objects_present += present.into_inner();
    Ok(())
}

/// Reads object `name`, recorded as `size` bytes, into `buf`; returns how many bytes it read,
/// one more than recorded when the object is longer, so that [`check`] sees the difference.
fn read_whole(
    source: &Repository,
    name: &str,
    size: u64,
    buf: &mut AlignedBuf,
) -> Result<usize, EngineError> {
    let want = usize::try_from(size)
        .ok()
        .and_then(|s| s.checked_add(1))
        .ok_or_else(|| EngineError::corrupt(name, format!("a recorded size of {size} bytes")))?;
    buf.reserve(want);
    Ok(source
        .backend()
        .read_range_into(name, 0, &mut buf[..want])?)
}

/// Refuses to copy an object whose bytes are not what its name and size say: packs, index files
/// and manifest segments are all named `<folder>/.../<BLAKE3 hex>.<ext>`.
fn check(name: &str, bytes: &[u8], size: u64) -> Result<(), EngineError> {
    if bytes.len() as u64 != size {
        return Err(EngineError::corrupt(
            name,
            format!("{} bytes where {size} were recorded", bytes.len()),
        ));
    }
    let stem = name
        .rsplit('/')
        .next()
        .and_then(|f| f.split('.').next())
        .unwrap_or("");
    if ContentId::from_hex(stem).is_none_or(|id| id != ContentId::of(bytes)) {
        return Err(EngineError::corrupt(
            name,
            "its content does not match its name (BLAKE3)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::index::INDEX_PREFIX;
    use crate::engine::testkit::*;

    #[test]
    fn a_copied_set_restores_on_its_own_and_a_second_copy_sends_only_what_is_new() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        fidelity_tree(&source);
        let first = new_repo(&dir.path().join("repo"));
        run_backup(&first, &request(1, &source)).unwrap();
        std::fs::write(source.join("added"), noise(77, 3 << 20)).unwrap();
        run_backup(&first, &request(2, &source)).unwrap();

        let second = new_repo(&dir.path().join("copy"));
        let cancel = CancellationToken::new();
        let one = copy_set(
            &first,
            &second,
            &TenantRef::Id(TENANT),
            1,
            false,
            &Progress::new(),
            &Throttle::new(0),
            &cancel,
        )
        .unwrap();
        assert!(one.objects_copied > 0 && one.objects_present == 0);
        let two = copy_set(
            &first,
            &second,
            &TenantRef::Id(TENANT),
            2,
            false,
            &Progress::new(),
            &Throttle::new(0),
            &cancel,
        )
        .unwrap();
        assert!(
            two.objects_present > 0,
            "set 2 shares objects with set 1: {two:?}"
        );
        let again = copy_set(
            &first,
            &second,
            &TenantRef::Id(TENANT),
            2,
            false,
            &Progress::new(),
            &Throttle::new(0),
            &cancel,
        )
        .unwrap();
        assert!(again.already_there);
        physical_ok(&second, 1);
        physical_ok(&second, 2);
        assert_restores_to(&second, 2, &source, dir.path());
    }

    /// What [`copy_of_set_one_collected`] leaves: the two trees, both repositories, and the
    /// target's tombstones.
    struct CollectedCopy {
        first: std::path::PathBuf,
        second: std::path::PathBuf,
        source_root: std::path::PathBuf,
        target_root: std::path::PathBuf,
        tombstones: std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
    }

    impl CollectedCopy {
        /// Both copied sets validate (the first physically) and restore byte for byte.
        fn assert_both_restore(&self, target: &Repository, scratch: &std::path::Path) {
            physical_ok(target, 1);
            assert_restores_to(target, 1, &self.first, scratch);
            assert_restores_to(target, 2, &self.second, scratch);
        }
    }

    fn copy_set_of(source_root: &std::path::Path, target: &Repository, set_id: i64) {
        copy_set(
            &new_repo(source_root),
            target,
            &TenantRef::Id(TENANT),
            set_id,
            false,
            &Progress::new(),
            &Throttle::new(0),
            &CancellationToken::new(),
        )
        .unwrap();
    }

    fn sweep_rule(now: i64, backup_running: bool) -> crate::engine::gc::SweepRule {
        crate::engine::gc::SweepRule {
            now,
            grace_micros: 0,
            backup_running,
            repack_below: 0.0,
        }
    }

    /// Two trees sharing a file, backed up as sets 1 and 2 into `dir/repo` and copied into
    /// `dir/copy`; then the copy of set 1 is deleted and collected (no grace period), so its
    /// own packs are swept and tombstoned for the index file the copy of set 2 keeps.
    fn copy_of_set_one_collected(dir: &std::path::Path) -> CollectedCopy {
        use crate::engine::gc::{Retired, collect};
        let (first, second) = (dir.join("first"), dir.join("second"));
        std::fs::create_dir_all(&first).unwrap();
        std::fs::create_dir_all(&second).unwrap();
        std::fs::write(first.join("only-in-first"), noise(1, 12 << 20)).unwrap();
        std::fs::write(first.join("shared"), noise(2, 6 << 20)).unwrap();
        std::fs::write(second.join("shared"), noise(2, 6 << 20)).unwrap();
        std::fs::write(second.join("only-in-second"), noise(3, 3 << 20)).unwrap();
        let (source_root, target_root) = (dir.join("repo"), dir.join("copy"));
        let source = new_repo(&source_root);
        run_backup(&source, &request(1, &first)).unwrap();
        run_backup(&source, &request(2, &second)).unwrap();
        let target = new_repo(&target_root);
        copy_set_of(&source_root, &target, 1);
        copy_set_of(&source_root, &target, 2);
        target.backend().delete("sets/1001/1.set").unwrap();
        for now in [1_000, 2_000] {
            let cancel = CancellationToken::new();
            collect(
                target.backend(),
                sweep_rule(now, false),
                &Progress::new(),
                &cancel,
            )
            .unwrap();
        }
        let tombstones = Retired::read(target.backend()).unwrap().deleted_packs;
        assert!(!tombstones.is_empty(), "the scenario needs a tombstone");
        CollectedCopy {
            first,
            second,
            source_root,
            target_root,
            tombstones,
        }
    }

    #[test]
    fn a_set_copied_again_after_its_copy_was_collected_restores() {
        let dir = tempfile::tempdir().unwrap();
        let scene = copy_of_set_one_collected(dir.path());
        // Set 1 is copied again: its packs come back, and so must their index file's view.
        let target = new_repo(&scene.target_root);
        copy_set_of(&scene.source_root, &target, 1);
        scene.assert_both_restore(&target, dir.path());
    }

    #[test]
    fn a_collection_sharing_the_destination_keeps_the_tombstones_a_copy_lifted_meanwhile() {
        use crate::engine::gc::{Retired, collect};
        use crate::engine::testkit::FaultyBackend;
        let dir = tempfile::tempdir().unwrap();
        let scene = copy_of_set_one_collected(dir.path());
        // A collection that shares the destination with a copy (it only marks) reads the
        // tombstones, then the copy of set 1 lifts them, then the collection writes its state.
        let racing = FaultyBackend::new(&scene.target_root).on_first_list(INDEX_PREFIX, {
            let (source_root, target_root) = (scene.source_root.clone(), scene.target_root.clone());
            move || copy_set_of(&source_root, &new_repo(&target_root), 1)
        });
        let cancel = CancellationToken::new();
        collect(&racing, sweep_rule(3_000, true), &Progress::new(), &cancel).unwrap();
        let target = new_repo(&scene.target_root);
        assert!(
            read_set(target.backend(), TENANT, 1).unwrap().is_some(),
            "the copy ran in the middle of the collection"
        );
        let after = Retired::read(target.backend()).unwrap();
        for (pack, files) in &scene.tombstones {
            assert!(
                after
                    .deleted_packs
                    .get(pack)
                    .is_none_or(|f| f.is_disjoint(files)),
                "the tombstone of pack {pack} the copy lifted came back"
            );
        }
        scene.assert_both_restore(&target, dir.path());
    }

    #[test]
    fn a_damaged_object_is_not_copied() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        fidelity_tree(&source);
        let root = dir.path().join("repo");
        let first = new_repo(&root);
        run_backup(&first, &request(1, &source)).unwrap();
        let pack = objects(&root, "packs").into_iter().next().unwrap();
        let mut bytes = std::fs::read(&pack).unwrap();
        bytes[10] ^= 0xff;
        std::fs::write(&pack, bytes).unwrap();
        let second = new_repo(&dir.path().join("copy"));
        let err = copy_set(
            &first,
            &second,
            &TenantRef::Id(TENANT),
            1,
            false,
            &Progress::new(),
            &Throttle::new(0),
            &CancellationToken::new(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("packs/"), "{err}");
        assert!(
            second.list_sets().unwrap().is_empty(),
            "no set appears in the copy"
        );
    }
}
