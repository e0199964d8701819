//! Restore of a backup set into a target directory.
//!
//! The manifest is streamed twice. The first pass creates directories, symlinks and files in
//! walk order and gathers file contents into batches (bounded in files and bytes), which a
//! writer thread writes one after another while the first pass plans the next; a batch's
//! chunks are grouped by pack, neighbouring blobs are read with one ranged get, and `concurrency`
//! threads decode, verify and `pwrite` them, creating each file on its first write; the thread
//! that writes a file's last chunk sizes it when it ends in zero extents (they stay holes) and sets its
//! metadata through the same descriptor. Zero extents are never written: they stay holes. The second pass walks the same order with a stack of open directories to
//! set directory metadata once their children are done and, for `method=delta`, to delete what
//! the set does not have. A marker file says the target is incomplete until the very end, so a
//! cancelled or failed restore is recognisable.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{CString, OsStr};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};

use tokio_util::sync::CancellationToken;
use zstd::bulk::Decompressor;

use super::chunker::{ContentId, is_zero};
use super::crypto::{Sealer, chunk_id};
use super::error::EngineError;
use super::index::{ChunkLocation, RepositoryIndex};
use super::manifest::{Extent, ManifestEntry, ManifestReader};
use super::pack::{BlobScratch, decode_blob_into, pack_object_name};
use super::progress::Progress;
use super::repository::{Repository, TenantRef};
use super::set::SetDescriptor;
use super::writeback::{self, Regions, WrittenRegion};
use crate::source::{EntryKind, SourceFile};

/// Name of the file that marks a target whose restore has not finished.
pub const INCOMPLETE_MARKER: &str = ".backstop-restore-incomplete";
/// A batch ends at this many files or bytes restored. Unit tests use small batches, so that
/// every restore they make spans several, written while the next is planned.
const BATCH_FILES: usize = if cfg!(test) { 8 } else { 1024 };
const BATCH_BYTES: u64 = if cfg!(test) { 8 << 20 } else { 512 << 20 };
/// Blobs closer than this in a pack are read with one ranged get.
const COALESCE_GAP: u64 = 256 * 1024;
const MAX_RANGE: u64 = 16 << 20;
/// A ranged read also ends after this many blobs: each blob is a file to create and write for
/// small files, and a batch of a thousand of them, stored side by side, would otherwise be one
/// job for one thread while the others wait.
const MAX_RANGE_BLOBS: usize = 64;
/// And once its chunks add up to this many bytes restored: a pack of well-compressed data (a
/// database table) holds a hundred times its size, so one job could be 200 MB of writes, and
/// the batch would end with one thread writing it while the others wait.
const MAX_RANGE_RAW: u64 = 16 << 20;

/// How to treat a target that already has files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreMethod {
    /// The target must be empty (or absent).
    Full,
    /// Rewrite only the chunks of files that differ (in place), fix metadata, delete what the
    /// set lacks.
    Delta,
}

/// What a restore did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreSummary {
    /// Entries in the set.
    pub entries: u64,
    /// Files whose contents were written.
    pub files_written: u64,
    /// Files already identical in the target (delta only).
    pub files_unchanged: u64,
    /// Entries deleted from the target because the set does not have them (delta only).
    pub entries_removed: u64,
    /// Bytes of file contents written.
    pub bytes_written: u64,
}

/// Restores set `set_id` of `tenant` into `target`.
#[allow(clippy::too_many_arguments)]
pub fn restore(
    repo: &Repository,
    tenant: &TenantRef,
    set_id: i64,
    target: &Path,
    method: RestoreMethod,
    concurrency: usize,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<RestoreSummary, EngineError> {
    let set = repo.find_set(tenant, set_id)?;
    let index = load_set_index(repo, &set)?;
    prepare_target(target, method)?;
    let marker = target.join(INCOMPLETE_MARKER);
    File::create(&marker).map_err(|e| EngineError::io("create restore marker", &marker, e))?;
    progress
        .total_bytes
        .store(set.input_bytes, std::sync::atomic::Ordering::Relaxed);
    progress
        .total_files
        .store(set.file_count, std::sync::atomic::Ordering::Relaxed);

    let workers = if concurrency == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        concurrency
    };
    let (written_back, write_back) = writeback::channel();
    let is_root = effective_uid() == 0;
    // Stops the writer when the first pass fails (a cancel stops it too).
    let stop = cancel.child_token();
    std::thread::scope(|scope| {
        scope.spawn(write_back);
        // No capacity: the first pass plans the next batch while the writer writes one, and
        // waits for it then, so that at most two batches are held.
        let (batches, planned) = mpsc::sync_channel(0);
        let writer = BatchWriter {
            repo,
            index: &index,
            workers,
            progress,
            stop: &stop,
            is_root,
            scratches: Mutex::new(Vec::new()),
            written_back,
        };
        let writing = scope.spawn(move || writer.write_all(planned));
        let mut restorer = Restorer {
            repo,
            index: &index,
            target,
            method,
            progress,
            cancel,
            batch: Batch::default(),
            batches: Some(batches),
            summary: RestoreSummary::default(),
            is_root,
        };
        let placed = restorer.place_all(&set);
        if placed.is_err() {
            stop.cancel();
        }
        // Hanging up lets the writer end once it has written what it was given.
        restorer.batches = None;
        let written = writing.join().unwrap_or_else(|_| {
            Err(EngineError::Io {
                operation: "run",
                path: "restore writer".into(),
                source: io::Error::other("the restore's writer thread panicked"),
            })
        });
        match (placed, written) {
            // The writer's failure is the cause when the first pass only found it gone.
            (Err(EngineError::Cancelled) | Ok(()), Err(e)) => return Err(e),
            (Err(e), _) => return Err(e),
            (Ok(()), Ok(())) => {}
        }
        if cancel.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        restorer.finish_directories(&set)?;
        Ok(restorer.summary)
    })
}

fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Loads the index and makes sure every index file the set names is there and readable.
fn load_set_index(repo: &Repository, set: &SetDescriptor) -> Result<RepositoryIndex, EngineError> {
    let (index, unreadable) = RepositoryIndex::load(repo.backend())?;
    for needed in &set.index_files {
        if index.has_index_file(&needed.object) {
            continue;
        }
        if let Some(damaged) = unreadable.into_iter().find(|u| u.object == needed.object) {
            return Err(damaged.error);
        }
        return Err(EngineError::missing_object(
            &needed.object,
            &format!("set {} of tenant {}", set.set_id, set.tenant_name),
        ));
    }
    Ok(index)
}

fn prepare_target(target: &Path, method: RestoreMethod) -> Result<(), EngineError> {
    match fs::read_dir(target) {
        Ok(mut entries) => {
            let occupied = entries.any(|e| {
                e.map(|e| e.file_name() != INCOMPLETE_MARKER)
                    .unwrap_or(true)
            });
            if occupied && method == RestoreMethod::Full {
                return Err(EngineError::TargetNotEmpty {
                    target: target.to_path_buf(),
                });
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => fs::create_dir_all(target)
            .map_err(|e| EngineError::io("create restore target", target, e)),
        Err(e) => Err(EngineError::io("open restore target", target, e)),
    }
}

/// Where one chunk goes.
#[derive(Debug, Clone, Copy)]
struct Placement {
    file: usize,
    offset: u64,
}

/// A file whose contents are being written by the current batch.
#[derive(Debug)]
struct BatchFile {
    path: PathBuf,
    entry: ManifestEntry,
    /// All its extents are placed; its metadata is set when the batch ends.
    complete: bool,
    /// The file exists at its full size (else the batch's workers create it first).
    created: bool,
}

#[derive(Debug, Default)]
struct Batch {
    files: Vec<BatchFile>,
    chunks: HashMap<ContentId, Vec<Placement>>,
    bytes: u64,
}

impl Batch {
    fn is_full(&self) -> bool {
        self.files.len() >= BATCH_FILES || self.bytes >= BATCH_BYTES
    }
}

/// Neighbouring blobs of one pack, read with one ranged get.
struct RangeJob {
    pack: u32,
    start: u64,
    end: u64,
    /// The restored size of its chunks.
    raw: u64,
    blobs: Vec<(ContentId, ChunkLocation)>,
}

/// Where a manifest entry's path lies under `target`: refused (XX001) unless every name in it is
/// plain, so that nothing is written outside the target. The manifest reader refuses such
/// entries first, and entries under a symlink too; this is the second check, where paths are
/// joined.
fn inside(target: &Path, relative: &[u8]) -> Result<PathBuf, EngineError> {
    if relative.is_empty() {
        return Ok(target.to_path_buf());
    }
    let plain = relative
        .split(|&b| b == b'/')
        .all(|name| !name.is_empty() && name != b"." && name != b".." && !name.contains(&0));
    if !plain {
        return Err(EngineError::corrupt(
            &String::from_utf8_lossy(relative),
            "a manifest entry whose path leaves the restore's target; nothing written there",
        ));
    }
    Ok(target.join(OsStr::from_bytes(relative)))
}

/// The first pass: creates directories and symlinks, and plans the batches of file contents
/// that the [`BatchWriter`] writes meanwhile.
struct Restorer<'a> {
    repo: &'a Repository,
    index: &'a RepositoryIndex,
    target: &'a Path,
    method: RestoreMethod,
    progress: &'a Progress,
    cancel: &'a CancellationToken,
    batch: Batch,
    /// Where planned batches go to be written; `None` once the first pass is over.
    batches: Option<SyncSender<PlannedBatch>>,
    summary: RestoreSummary,
    is_root: bool,
}

/// A batch with its ranged reads, in the order they are taken.
struct PlannedBatch {
    batch: Batch,
    jobs: Vec<RangeJob>,
}

impl Restorer<'_> {
    fn path_of(&self, relative: &[u8]) -> Result<PathBuf, EngineError> {
        inside(self.target, relative)
    }

    /// Places every entry of the set, then hands over the last batch.
    fn place_all(&mut self, set: &SetDescriptor) -> Result<(), EngineError> {
        for entry in ManifestReader::new(self.repo.backend(), &set.manifest) {
            if self.cancel.is_cancelled() {
                return Err(EngineError::Cancelled);
            }
            self.place(entry?)?;
        }
        self.run_batch()
    }

    /// First pass: creates one entry, or queues its contents.
    fn place(&mut self, entry: ManifestEntry) -> Result<(), EngineError> {
        self.summary.entries += 1;
        let path = self.path_of(&entry.path)?;
        match entry.kind {
            EntryKind::Directory => {
                if !entry.path.is_empty() {
                    self.make_directory(&path)?;
                }
                self.progress.finish_file();
            }
            EntryKind::Symlink => {
                self.make_symlink(&path, &entry)?;
                self.progress.finish_file();
            }
            EntryKind::File => self.place_file(path, entry)?,
            EntryKind::Special => {}
        }
        Ok(())
    }

    fn make_directory(&self, path: &Path) -> Result<(), EngineError> {
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.is_dir() => {
                // Its final mode is set in the second pass; until then we must be able to write.
                let mode = meta.permissions().mode() | 0o700;
                fs::set_permissions(path, fs::Permissions::from_mode(mode))
                    .map_err(|e| EngineError::io("make writable", path, e))
            }
            Ok(_) => {
                remove_any(path)?;
                fs::create_dir(path).map_err(|e| EngineError::io("create directory", path, e))
            }
            Err(_) => {
                fs::create_dir(path).map_err(|e| EngineError::io("create directory", path, e))
            }
        }
    }

    fn make_symlink(&mut self, path: &Path, entry: &ManifestEntry) -> Result<(), EngineError> {
        let target = OsStr::from_bytes(&entry.symlink_target);
        match fs::symlink_metadata(path) {
            Ok(meta)
                if meta.file_type().is_symlink()
                    && fs::read_link(path).is_ok_and(|t| t.as_os_str() == target) => {}
            Ok(_) => {
                remove_any(path)?;
                self.summary.entries_removed += 1;
                symlink(target, path).map_err(|e| EngineError::io("create symlink", path, e))?;
            }
            Err(_) => {
                symlink(target, path).map_err(|e| EngineError::io("create symlink", path, e))?
            }
        }
        apply_metadata(path, entry, self.is_root)
    }

    fn place_file(&mut self, path: PathBuf, entry: ManifestEntry) -> Result<(), EngineError> {
        self.progress.set_current_file(Some(path.clone()));
        if self.method == RestoreMethod::Delta {
            match fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_file() => {
                    let differ = differing_extents(self.repo.sealer(), &path, &entry)
                        .map_err(|e| EngineError::io("compare existing file", &path, e))?;
                    if differ.is_empty() && meta.len() == entry.size {
                        apply_metadata(&path, &entry, self.is_root)?;
                        self.summary.files_unchanged += 1;
                        self.progress.add_input(entry.size);
                        self.progress.finish_file();
                        return Ok(());
                    }
                    match OpenOptions::new().write(true).open(&path) {
                        Ok(file) => return self.patch_file(file, path, entry, &differ),
                        // Not writable in place (its mode): written anew.
                        Err(_) => remove_any(&path)?,
                    }
                }
                Ok(_) => remove_any(&path)?,
                Err(_) => {}
            }
        }
        // Files are created by the batch's workers, in parallel (a delta restore has just
        // removed what was in the way, so it creates them here, in order).
        let created = self.method == RestoreMethod::Delta;
        if created {
            create_file(&path, entry.size)?;
        }
        self.summary.files_written += 1;
        let extents = entry.extents.clone();
        self.batch.files.push(BatchFile {
            path,
            entry,
            complete: false,
            created,
        });
        let mut offset = 0u64;
        for extent in extents {
            // A hole is restored by the file's size alone; it counts as done at once, so that
            // the bytes done reach the set's total.
            if let Extent::Zero { length } = extent {
                self.progress.add_input(length);
            }
            if let Extent::Chunk { id, length } = extent {
                let file = self.batch.files.len() - 1;
                self.batch
                    .chunks
                    .entry(id)
                    .or_default()
                    .push(Placement { file, offset });
                self.batch.bytes += length as u64;
                if self.batch.bytes >= BATCH_BYTES {
                    self.run_batch()?;
                }
            }
            offset += extent.length();
        }
        if let Some(last) = self.batch.files.last_mut() {
            last.complete = true;
        }
        if self.batch.is_full() {
            self.run_batch()?;
        }
        Ok(())
    }

    /// Delta: rewrites in place only the extents of an existing file that differ from the set
    /// (`differ`, by index): its size is set, differing zero extents are punched out, and only
    /// the differing chunks are queued; the rest of the file is never written.
    fn patch_file(
        &mut self,
        file: File,
        path: PathBuf,
        entry: ManifestEntry,
        differ: &[usize],
    ) -> Result<(), EngineError> {
        file.set_len(entry.size)
            .map_err(|e| EngineError::io("size file", &path, e))?;
        let mut chunks = Vec::new();
        let mut offset = 0u64;
        for (i, extent) in entry.extents.iter().enumerate() {
            let differs = differ.binary_search(&i).is_ok();
            match extent {
                Extent::Zero { length } if differs => zero_range(&file, &path, offset, *length)?,
                Extent::Chunk { id, length } if differs => chunks.push((*id, offset, *length)),
                _ => self.progress.add_input(extent.length()),
            }
            offset += extent.length();
        }
        drop(file);
        self.summary.files_written += 1;
        self.batch.files.push(BatchFile {
            path,
            entry,
            complete: false,
            created: true,
        });
        let at = self.batch.files.len() - 1;
        for (id, offset, length) in chunks {
            self.batch
                .chunks
                .entry(id)
                .or_default()
                .push(Placement { file: at, offset });
            self.batch.bytes += length as u64;
            if self.batch.bytes >= BATCH_BYTES {
                self.run_batch()?;
            }
        }
        if let Some(last) = self.batch.files.last_mut() {
            last.complete = true;
        }
        if self.batch.is_full() {
            self.run_batch()?;
        }
        Ok(())
    }

    /// Hands the batch over to the writer, and starts the next one with the file still being
    /// placed, if any: that file's writes in this batch create it, so it counts as created.
    fn run_batch(&mut self) -> Result<(), EngineError> {
        if self.batch.files.is_empty() {
            return Ok(());
        }
        let jobs = self.plan_ranges()?;
        let carried: Vec<BatchFile> = self
            .batch
            .files
            .iter()
            .filter(|f| !f.complete)
            .map(|f| BatchFile {
                path: f.path.clone(),
                entry: f.entry.clone(),
                complete: false,
                created: true,
            })
            .collect();
        let batch = std::mem::replace(
            &mut self.batch,
            Batch {
                files: carried,
                ..Batch::default()
            },
        );
        self.summary.bytes_written += batch.bytes;
        let batches = self.batches.as_ref().ok_or(EngineError::Cancelled)?;
        // The writer hangs up only when it stops: its error is the restore's.
        batches
            .send(PlannedBatch { batch, jobs })
            .map_err(|_| EngineError::Cancelled)
    }

    /// Groups the batch's chunks by pack and merges neighbours into ranged reads.
    fn plan_ranges(&self) -> Result<Vec<RangeJob>, EngineError> {
        let mut by_pack: BTreeMap<u32, Vec<(ContentId, ChunkLocation)>> = BTreeMap::new();
        for (id, placements) in &self.batch.chunks {
            let Some(location) = self.index.lookup(id) else {
                let file = &self.batch.files[placements[0].file].path;
                return Err(EngineError::corrupt(
                    &format!("chunk {id}"),
                    format!(
                        "needed by {} but listed in none of the set's index files",
                        file.display()
                    ),
                ));
            };
            by_pack
                .entry(location.pack)
                .or_default()
                .push((*id, *location));
        }
        let mut jobs = Vec::new();
        for (pack, mut blobs) in by_pack {
            blobs.sort_by_key(|(_, l)| l.offset);
            let mut current: Option<RangeJob> = None;
            for (id, location) in blobs {
                let start = location.offset as u64;
                let end = start + location.length as u64;
                let raw = location.raw_length as u64;
                if let Some(job) = current.as_mut()
                    && start <= job.end + COALESCE_GAP
                    && end - job.start <= MAX_RANGE
                    && job.blobs.len() < MAX_RANGE_BLOBS
                    && job.raw + raw <= MAX_RANGE_RAW
                {
                    job.end = job.end.max(end);
                    job.raw += raw;
                    job.blobs.push((id, location));
                    continue;
                }
                jobs.extend(current.take());
                current = Some(RangeJob {
                    pack,
                    start,
                    end,
                    raw,
                    blobs: vec![(id, location)],
                });
            }
            jobs.extend(current);
        }
        Ok(self.interleave_by_file(jobs))
    }

    /// Orders the jobs so that the ones taken at the same moment by different threads write
    /// different files in different folders where the batch has several: a filesystem writes
    /// one file at a time (its inode lock) and creates one file at a time in a folder (the
    /// folder's), and in pack order the threads would mostly queue on the same large file, or
    /// on the same folder of small ones. So the jobs are taken round-robin over folders, and
    /// within a folder round-robin over files; each file's jobs keep their pack order.
    fn interleave_by_file(&self, jobs: Vec<RangeJob>) -> Vec<RangeJob> {
        let first_file = |job: &RangeJob| {
            job.blobs
                .first()
                .and_then(|(id, _)| self.batch.chunks.get(id))
                .and_then(|placements| placements.first())
                .map(|p| p.file)
        };
        type Queues = BTreeMap<Option<usize>, std::collections::VecDeque<RangeJob>>;
        let mut by_folder: BTreeMap<Option<&Path>, Queues> = BTreeMap::new();
        for job in jobs {
            let file = first_file(&job);
            let folder = file.and_then(|f| self.batch.files[f].path.parent());
            by_folder
                .entry(folder)
                .or_default()
                .entry(file)
                .or_default()
                .push_back(job);
        }
        let mut folders: Vec<Vec<_>> = by_folder
            .into_values()
            .map(|files| files.into_values().collect())
            .collect();
        let total = folders.iter().flatten().map(|q| q.len()).sum();
        let mut ordered = Vec::with_capacity(total);
        // Each round takes one job from every folder, from the folder's next file in turn.
        let mut turn = 0;
        while !folders.is_empty() {
            for files in &mut folders {
                let file = turn % files.len();
                ordered.extend(files[file].pop_front());
                if files[file].is_empty() {
                    files.remove(file);
                }
            }
            folders.retain(|files| !files.is_empty());
            turn += 1;
        }
        ordered
    }

    /// Second pass: directory metadata once their children are done and, for delta, removal
    /// of entries the set does not have.
    fn finish_directories(&mut self, set: &SetDescriptor) -> Result<(), EngineError> {
        struct OpenDir {
            path: Vec<u8>,
            entry: ManifestEntry,
            children: HashSet<Vec<u8>>,
        }
        let mut stack: Vec<OpenDir> = Vec::new();
        for entry in ManifestReader::new(self.repo.backend(), &set.manifest) {
            if self.cancel.is_cancelled() {
                return Err(EngineError::Cancelled);
            }
            let entry = entry?;
            let (parent, name) = split_parent(&entry.path);
            while let Some(top) = stack.last() {
                if top.path == parent && !entry.path.is_empty() {
                    break;
                }
                let done = stack.pop().expect("stack is not empty");
                self.close_directory(done.path, done.entry, done.children)?;
            }
            if let Some(top) = stack.last_mut() {
                top.children.insert(name.to_vec());
            }
            if entry.kind == EntryKind::Directory {
                stack.push(OpenDir {
                    path: entry.path.clone(),
                    entry,
                    children: HashSet::new(),
                });
            }
        }
        while let Some(done) = stack.pop() {
            self.close_directory(done.path, done.entry, done.children)?;
        }
        Ok(())
    }

    fn close_directory(
        &mut self,
        relative: Vec<u8>,
        entry: ManifestEntry,
        children: HashSet<Vec<u8>>,
    ) -> Result<(), EngineError> {
        let path = self.path_of(&relative)?;
        if self.method == RestoreMethod::Delta {
            let listing =
                fs::read_dir(&path).map_err(|e| EngineError::io("list directory", &path, e))?;
            for child in listing {
                let child = child.map_err(|e| EngineError::io("list directory", &path, e))?;
                let name = child.file_name();
                let keep = children.contains(name.as_bytes())
                    || (relative.is_empty() && name == INCOMPLETE_MARKER);
                if !keep {
                    remove_any(&child.path())?;
                    self.summary.entries_removed += 1;
                }
            }
        }
        if relative.is_empty() {
            // Last step of the restore. Every file and folder is made durable before the marker
            // goes, so a tree without the marker is whole even after a power loss; the marker
            // goes before the root's mtime is set, since removing it changes that mtime.
            sync_filesystem(&path)?;
            let marker = path.join(INCOMPLETE_MARKER);
            fs::remove_file(&marker)
                .map_err(|e| EngineError::io("remove restore marker", &marker, e))?;
            apply_metadata(&path, &entry, self.is_root)?;
            return File::open(&path)
                .and_then(|root| root.sync_all())
                .map_err(|e| EngineError::io("fsync restore target", &path, e));
        }
        apply_metadata(&path, &entry, self.is_root)
    }
}

/// Writes the batches the first pass plans, one at a time, with `workers` threads.
struct BatchWriter<'a> {
    repo: &'a Repository,
    index: &'a RepositoryIndex,
    workers: usize,
    progress: &'a Progress,
    /// Cancelled by the restore's cancel, or when the first pass fails.
    stop: &'a CancellationToken,
    is_root: bool,
    /// One per restore thread, handed from batch to batch.
    scratches: Mutex<Vec<RangeScratch>>,
    /// Where written regions go to be written back and leave the page cache.
    written_back: Regions,
}

impl BatchWriter<'_> {
    /// Writes every batch handed over until the first pass hangs up; stops at the first failure
    /// (the first pass then finds the writer gone).
    fn write_all(self, planned: Receiver<PlannedBatch>) -> Result<(), EngineError> {
        for PlannedBatch { batch, jobs } in planned {
            self.write(&batch, &jobs)?;
            if self.stop.is_cancelled() {
                return Err(EngineError::Cancelled);
            }
        }
        Ok(())
    }

    /// Writes the batch's chunks, creating new files as it goes; the thread that writes a
    /// complete file's last chunk sizes it and sets its metadata through the open descriptor.
    /// Then the files with nothing to write in this batch are created or finished. Each step is
    /// spread over the workers.
    fn write(&self, batch: &Batch, jobs: &[RangeJob]) -> Result<(), EngineError> {
        let failed = self.stop.child_token();
        let failure: Mutex<Option<EngineError>> = Mutex::new(None);
        let fail = |e: EngineError| {
            failure
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert(e);
            failed.cancel();
        };
        let (repo, index, progress, is_root) = (self.repo, self.index, self.progress, self.is_root);
        // Chunks still to be written into each file in this batch.
        let unwritten: Vec<AtomicUsize> = batch.files.iter().map(|_| AtomicUsize::new(0)).collect();
        for placement in batch.chunks.values().flatten() {
            unwritten[placement.file].fetch_add(1, Ordering::Relaxed);
        }
        let idle: Vec<&BatchFile> = batch
            .files
            .iter()
            .zip(&unwritten)
            .filter(|(f, n)| n.load(Ordering::Relaxed) == 0 && (!f.created || f.complete))
            .map(|(f, _)| f)
            .collect();
        let next = AtomicUsize::new(0);
        let run_step = |count: usize, work: &(dyn Fn(usize) -> Result<(), EngineError> + Sync)| {
            next.store(0, Ordering::Relaxed);
            std::thread::scope(|scope| {
                for _ in 0..self.workers.min(count) {
                    scope.spawn(|| {
                        loop {
                            if failed.is_cancelled() {
                                return;
                            }
                            let at = next.fetch_add(1, Ordering::Relaxed);
                            if at >= count {
                                return;
                            }
                            if let Err(e) = work(at) {
                                fail(e);
                                return;
                            }
                        }
                    });
                }
            });
        };
        let written = Written {
            batch,
            unwritten: &unwritten,
            is_root,
            written_back: &self.written_back,
        };
        let scratches = &self.scratches;
        run_step(jobs.len(), &|at| {
            let taken = scratches.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let mut scratch = match taken {
                Some(scratch) => scratch,
                None => RangeScratch::new()?,
            };
            let done = write_range(
                repo,
                index,
                &written,
                &jobs[at],
                &mut scratch,
                progress,
                &failed,
            );
            scratches
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(scratch);
            done
        });
        run_step(idle.len(), &|at| {
            let file = idle[at];
            if !file.created {
                create_file(&file.path, file.entry.size)?;
            } else if file.complete {
                // Placed over two batches, its last chunk written by the one before: the size
                // its trailing hole gives it is set here.
                OpenOptions::new()
                    .write(true)
                    .open(&file.path)
                    .and_then(|f| f.set_len(file.entry.size))
                    .map_err(|e| EngineError::io("size file", &file.path, e))?;
            }
            if file.complete {
                apply_metadata(&file.path, &file.entry, is_root)?;
                progress.finish_file();
            }
            Ok(())
        });
        match failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(err) => Err(err),
            None if self.stop.is_cancelled() => Err(EngineError::Cancelled),
            None => Ok(()),
        }
    }
}

/// The batch being written, with what is left to write into each of its files.
struct Written<'a> {
    batch: &'a Batch,
    unwritten: &'a [AtomicUsize],
    is_root: bool,
    written_back: &'a Regions,
}

impl Written<'_> {
    /// Counts one chunk of file `at` as written; the last one of a complete file finishes it:
    /// its size (trailing holes), owner, permissions and mtime, through `file`.
    fn chunk_written(&self, at: usize, file: &File) -> Result<bool, EngineError> {
        let entry = &self.batch.files[at];
        if self.unwritten[at].fetch_sub(1, Ordering::AcqRel) != 1 || !entry.complete {
            return Ok(false);
        }
        let now = file
            .metadata()
            .map_err(|e| EngineError::io("stat restored file", &entry.path, e))?;
        // Only a file that ends in a hole is shorter than it should be.
        if now.len() != entry.entry.size {
            file.set_len(entry.entry.size)
                .map_err(|e| EngineError::io("size file", &entry.path, e))?;
        }
        apply_file_metadata(file, &entry.path, &entry.entry, self.is_root, &now)?;
        Ok(true)
    }
}

/// What a restore thread reuses from one range to the next: a decompressor, the buffer a range
/// is read into and the one a blob is inflated into. Kept for the whole restore, so no range
/// pays for fresh pages.
struct RangeScratch {
    decompressor: Decompressor<'static>,
    read: Vec<u8>,
    blob: BlobScratch,
}

impl RangeScratch {
    fn new() -> Result<RangeScratch, EngineError> {
        Ok(RangeScratch {
            decompressor: Decompressor::new()
                .map_err(|e| EngineError::io("set up decompression", "zstd", e))?,
            read: Vec::new(),
            blob: BlobScratch::default(),
        })
    }
}

/// Reads one range of a pack and writes each of its blobs wherever the batch needs it.
fn write_range(
    repo: &Repository,
    index: &RepositoryIndex,
    written: &Written<'_>,
    job: &RangeJob,
    scratch: &mut RangeScratch,
    progress: &Progress,
    stop: &CancellationToken,
) -> Result<(), EngineError> {
    let batch = written.batch;
    let (pack_id, _) = index.pack(job.pack);
    let object = pack_object_name(&pack_id);
    let length = (job.end - job.start) as usize;
    if scratch.read.len() < length {
        scratch.read.resize(length, 0);
    }
    let read = &mut scratch.read[..length];
    let found = repo.backend().read_range_into(&object, job.start, read)?;
    if found < length {
        return Err(EngineError::corrupt(
            &object,
            format!(
                "truncated: {length} bytes at offset {} expected, {found} found",
                job.start
            ),
        ));
    }
    let bytes = &scratch.read[..length];
    // The files this range writes into, each with the region written, handed over for
    // write-back when the range is done.
    let mut open_files: HashMap<usize, WrittenRegion> = HashMap::new();
    for (id, location) in &job.blobs {
        if stop.is_cancelled() {
            return Ok(());
        }
        let at = (location.offset as u64 - job.start) as usize;
        let stored = &bytes[at..at + location.length as usize];
        let entry = location.blob_entry(*id);
        let raw = decode_blob_into(
            &mut scratch.decompressor,
            repo.sealer(),
            &object,
            &entry,
            stored,
            &mut scratch.blob,
        )?;
        for placement in batch.chunks.get(id).into_iter().flatten() {
            let path = &batch.files[placement.file].path;
            let end = placement.offset + raw.len() as u64;
            let region = match open_files.entry(placement.file) {
                std::collections::hash_map::Entry::Occupied(slot) => {
                    let region = slot.into_mut();
                    region.start = region.start.min(placement.offset);
                    region.end = region.end.max(end);
                    region
                }
                // A new file is created by whichever thread writes into it first.
                std::collections::hash_map::Entry::Vacant(slot) => slot.insert(WrittenRegion {
                    file: OpenOptions::new()
                        .write(true)
                        .create(true)
                        .truncate(false)
                        .open(path)
                        .map_err(|e| EngineError::io("open restored file", path, e))?,
                    start: placement.offset,
                    end,
                }),
            };
            region
                .file
                .write_all_at(raw, placement.offset)
                .map_err(|e| EngineError::io("write restored file", path, e))?;
            progress.add_input(raw.len() as u64);
            progress.add_output(raw.len() as u64);
            if written.chunk_written(placement.file, &region.file)? {
                progress.finish_file();
            }
        }
    }
    written
        .written_back
        .hand_over(open_files.into_values().collect());
    Ok(())
}

/// The extents of `entry` (by index, ascending) that the file at `path` does not hold as
/// they are, reading it once: a chunk whose bytes hash to another id or lie past the file's
/// end, a zero extent with data in it (what lies past the end reads as zeroes once the file is
/// sized).
fn differing_extents(
    sealer: Option<&Sealer>,
    path: &Path,
    entry: &ManifestEntry,
) -> io::Result<Vec<usize>> {
    let file = SourceFile::open(path)?;
    let size = file.metadata().size;
    let mut differ = Vec::new();
    let mut buf = Vec::new();
    let mut offset = 0u64;
    for (i, extent) in entry.extents.iter().enumerate() {
        let end = offset + extent.length();
        let same = match extent {
            Extent::Chunk { id, length } => {
                buf.resize(*length as usize, 0);
                end <= size
                    && file.read_at(&mut buf, offset)? == buf.len()
                    && chunk_id(sealer, &buf) == *id
            }
            Extent::Zero { .. } => is_zero_range(&file, offset, end.min(size), &mut buf)?,
        };
        if !same {
            differ.push(i);
        }
        offset = end;
    }
    Ok(differ)
}

/// Whether `[from, to)` of `file` reads as zeroes (holes are skipped unread).
fn is_zero_range(file: &SourceFile, from: u64, to: u64, buf: &mut Vec<u8>) -> io::Result<bool> {
    let mut pos = from;
    while pos < to {
        let Some((start, stop)) = file.next_data_region(pos, to)? else {
            return Ok(true);
        };
        let mut at = start;
        while at < stop {
            let len = (stop - at).min(4 << 20) as usize;
            buf.resize(len, 0);
            if file.read_at(buf, at)? != len || !is_zero(buf) {
                return Ok(false);
            }
            at += len as u64;
        }
        pos = stop;
    }
    Ok(true)
}

/// Makes `[offset, offset + length)` of `file` zeroes: a hole where the filesystem can punch
/// one, written zeroes where it cannot.
fn zero_range(file: &File, path: &Path, offset: u64, length: u64) -> Result<(), EngineError> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: fallocate on an open descriptor with a range; it touches no memory of ours.
    let punched = unsafe {
        libc::fallocate(
            file.as_raw_fd(),
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            offset as libc::off_t,
            length as libc::off_t,
        )
    };
    if punched == 0 {
        return Ok(());
    }
    let zeroes = vec![0u8; length.min(4 << 20) as usize];
    let mut at = offset;
    while at < offset + length {
        let len = (offset + length - at).min(zeroes.len() as u64) as usize;
        file.write_all_at(&zeroes[..len], at)
            .map_err(|e| EngineError::io("zero a range", path, e))?;
        at += len as u64;
    }
    Ok(())
}

fn create_file(path: &Path, size: u64) -> Result<(), EngineError> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| EngineError::io("create file", path, e))?;
    file.set_len(size)
        .map_err(|e| EngineError::io("size file", path, e))
}

fn split_parent(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(at) => (&path[..at], &path[at + 1..]),
        None => (&[], path),
    }
}

fn remove_any(path: &Path) -> Result<(), EngineError> {
    let removed = match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    removed.map_err(|e| EngineError::io("remove", path, e))
}

/// [`apply_metadata`] for a regular file, through a descriptor open on it.
/// Sets a written file's owner (as root), mode and mtime through its descriptor; `now` is its
/// status after the writes. An owner or mode it already has is not set again: on a file system
/// without a journal every such change reads and rewrites the inode's table block, and most
/// files of a software tree are created with the owner and mode they need.
fn apply_file_metadata(
    file: &File,
    path: &Path,
    entry: &ManifestEntry,
    is_root: bool,
    now: &fs::Metadata,
) -> Result<(), EngineError> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    let fd = file.as_raw_fd();
    let chown = is_root && (now.uid() != entry.uid || now.gid() != entry.gid);
    // SAFETY: fd is a valid open descriptor for the duration of each call.
    if chown && unsafe { libc::fchown(fd, entry.uid, entry.gid) } != 0 {
        return Err(EngineError::io(
            "set owner of",
            path,
            io::Error::last_os_error(),
        ));
    }
    // A change of owner clears the set-user-ID and set-group-ID bits: the mode is set after it.
    if chown || now.mode() & 0o7777 != entry.mode & 0o7777 {
        file.set_permissions(fs::Permissions::from_mode(entry.mode))
            .map_err(|e| EngineError::io("set permissions of", path, e))?;
    }
    let times = mtime_only(entry);
    // SAFETY: fd is valid and `times` holds exactly the two timespecs futimens reads.
    if unsafe { libc::futimens(fd, times.as_ptr()) } != 0 {
        return Err(EngineError::io(
            "set mtime of",
            path,
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// The `utimensat` times that leave atime alone and set the entry's mtime.
fn mtime_only(entry: &ManifestEntry) -> [libc::timespec; 2] {
    [
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        libc::timespec {
            tv_sec: entry.mtime_ns.div_euclid(1_000_000_000) as libc::time_t,
            tv_nsec: entry.mtime_ns.rem_euclid(1_000_000_000) as libc::c_long,
        },
    ]
}

/// Makes everything written under `root` durable with one `syncfs` of the filesystem holding
/// it: data, inodes and folder entries, in one flush of the device instead of one per file and
/// folder. It also flushes whatever else on that filesystem is dirty, which only costs time.
/// Since Linux 5.8 it reports a write-back error of any file there, so a restore cannot end
/// DONE over a failed write.
fn sync_filesystem(root: &Path) -> Result<(), EngineError> {
    use std::os::fd::AsRawFd;
    let dir = File::open(root).map_err(|e| EngineError::io("open restore target", root, e))?;
    // SAFETY: a plain syscall on a descriptor `dir` owns for the call's duration.
    if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
        return Err(EngineError::io(
            "make the restored files durable (syncfs) under",
            root,
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Sets owner (when running as root), permissions and modification time, never following a
/// symlink. The mtime goes last because the other changes would not move it but writes would.
fn apply_metadata(path: &Path, entry: &ManifestEntry, is_root: bool) -> Result<(), EngineError> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|e| EngineError::io("encode path", path, io::Error::other(e)))?;
    if is_root {
        // SAFETY: c_path is a valid NUL-terminated string for the duration of the call.
        if unsafe { libc::lchown(c_path.as_ptr(), entry.uid, entry.gid) } != 0 {
            return Err(EngineError::io(
                "set owner of",
                path,
                io::Error::last_os_error(),
            ));
        }
    }
    if entry.kind != EntryKind::Symlink {
        fs::set_permissions(path, fs::Permissions::from_mode(entry.mode))
            .map_err(|e| EngineError::io("set permissions of", path, e))?;
    }
    let times = mtime_only(entry);
    // SAFETY: c_path is valid and `times` holds exactly the two timespecs utimensat reads.
    let set = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c_path.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if set != 0 {
        return Err(EngineError::io(
            "set mtime of",
            path,
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testkit::*;
    use std::os::unix::fs::MetadataExt;

    /// A set whose manifest a hostile destination rewrote: entries that climb out of the
    /// target, are absolute, or go through a symlink the restore itself creates are refused
    /// with XX001 naming the entry, and nothing is written outside the target.
    #[test]
    fn a_path_is_joined_to_the_target_only_when_every_name_in_it_is_plain() {
        let target = Path::new("/restore/here");
        assert_eq!(inside(target, b"").unwrap(), target);
        assert_eq!(
            inside(target, b"a/b.c/..d").unwrap(),
            target.join("a/b.c/..d")
        );
        for hostile in [
            &b"../up"[..],
            b"a/../../up",
            b"/etc/passwd",
            b"a//b",
            b"a/./b",
            b"a/",
        ] {
            let err = inside(target, hostile).unwrap_err();
            assert_eq!(err.kind().sqlstate().code(), "XX001", "{err}");
            assert!(
                err.to_string().contains(&*String::from_utf8_lossy(hostile)),
                "{err}"
            );
        }
    }

    #[test]
    fn crafted_manifests_never_write_outside_the_target() {
        use crate::engine::manifest::SegmentBuilder;
        use crate::engine::set::{read_set, write_set};
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        fs::create_dir_all(source.join("d")).unwrap();
        fs::write(source.join("d/f"), text(5, 40_000)).unwrap();
        let outside = dir.path().join("outside");
        fs::create_dir(&outside).unwrap();
        let repo = new_repo(&dir.path().join("repo"));
        run_backup(&repo, &request(1, &source)).unwrap();
        let set = read_set(repo.backend(), TENANT, 1).unwrap().unwrap();
        let entries: Vec<ManifestEntry> = ManifestReader::new(repo.backend(), &set.manifest)
            .collect::<Result<_, _>>()
            .unwrap();
        let root = entries[0].clone();
        let file = entries.iter().find(|e| e.path == b"d/f").unwrap().clone();
        let at = |path: &[u8]| ManifestEntry {
            path: path.to_vec(),
            ..file.clone()
        };
        let mut link = at(b"l");
        link.kind = EntryKind::Symlink;
        link.extents.clear();
        link.size = 0;
        link.symlink_target = outside.as_os_str().as_bytes().to_vec();
        let escape = format!(
            "../{}/climbed",
            outside.file_name().unwrap().to_str().unwrap()
        );
        let absolute = outside.join("absolute");
        let cases: Vec<(Vec<ManifestEntry>, String)> = vec![
            (vec![root.clone(), at(escape.as_bytes())], escape.clone()),
            (
                vec![root.clone(), at(absolute.as_os_str().as_bytes())],
                absolute.display().to_string(),
            ),
            (
                vec![root.clone(), link, at(b"l/through-link")],
                "l/through-link".into(),
            ),
        ];
        for (i, (crafted, named)) in cases.into_iter().enumerate() {
            let mut builder = SegmentBuilder::new();
            for entry in &crafted {
                builder.push(entry);
            }
            let (reference, stored) = builder.finish(None, 1);
            repo.backend().put(&reference.object, &stored).unwrap();
            let mut hostile = set.clone();
            hostile.set_id = 10 + i as i64;
            hostile.manifest = vec![reference];
            write_set(repo.backend(), &hostile).unwrap();
            let target = dir.path().join(format!("target-{i}"));
            let err = run_restore(&repo, hostile.set_id, &target, RestoreMethod::Full).unwrap_err();
            assert_eq!(err.kind().sqlstate().code(), "XX001", "{err}");
            assert!(err.to_string().contains(&named), "{err}");
            assert_eq!(
                fs::read_dir(&outside).unwrap().count(),
                0,
                "case {i} wrote outside the target"
            );
        }
    }

    /// A file whose last chunk ends a batch and which ends in a hole is finished by the next
    /// batch, which must give it its full size: the thread that wrote that chunk could not (the
    /// file was still being placed). Files in several folders make the batches many.
    #[test]
    fn a_file_whose_last_chunk_ends_a_batch_keeps_its_trailing_hole() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        fs::create_dir_all(source.join("z")).unwrap();
        let first = source.join("a.bin");
        fs::write(&first, noise(7, BATCH_BYTES as usize)).unwrap();
        File::options()
            .write(true)
            .open(&first)
            .unwrap()
            .set_len(BATCH_BYTES + (3 << 20))
            .unwrap();
        for i in 0..30u64 {
            let folder = source.join(format!("z/{}", i % 4));
            fs::create_dir_all(&folder).unwrap();
            fs::write(
                folder.join(format!("f{i}")),
                text(i, 1000 + i as usize * 4000),
            )
            .unwrap();
        }
        let repo = new_repo(&dir.path().join("repo"));
        run_backup(&repo, &request(1, &source)).unwrap();
        let target = assert_restores_to(&repo, 1, &source, dir.path());
        assert_eq!(
            fs::metadata(target.join("a.bin")).unwrap().len(),
            BATCH_BYTES + (3 << 20)
        );
    }

    /// Owner and mode are set only where the created file differs: a file of another owner
    /// (as root) with a set-user-ID bit, a set-group-ID one, and files created as they should
    /// be, all come back as they were, in full and in delta restores.
    #[test]
    fn owners_and_modes_come_back_whether_or_not_the_created_file_had_them() {
        use std::os::unix::fs::chown;
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        fs::create_dir_all(&source).unwrap();
        let files = [
            ("suid", 0o4755, Some((65534, 65534))),
            ("sgid", 0o2750, Some((0, 65534))),
            ("plain", 0o644, None),
            ("private", 0o600, None),
        ];
        for (name, mode, owner) in files {
            let path = source.join(name);
            fs::write(&path, text(mode as u64, 3000)).unwrap();
            if let (Some((uid, gid)), 0) = (owner, effective_uid()) {
                chown(&path, Some(uid), Some(gid)).unwrap();
            }
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        }
        let repo = new_repo(&dir.path().join("repo"));
        run_backup(&repo, &request(1, &source)).unwrap();
        let target = assert_restores_to(&repo, 1, &source, dir.path());
        for (name, mode, _) in files {
            let meta = fs::metadata(target.join(name)).unwrap();
            assert_eq!(meta.mode() & 0o7777, mode, "{name}");
        }
        // Delta over a tree whose owners and modes were changed puts them back.
        for (name, _, _) in files {
            let path = target.join(name);
            if effective_uid() == 0 {
                chown(&path, Some(0), Some(0)).unwrap();
            }
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        }
        run_restore(&repo, 1, &target, RestoreMethod::Delta).unwrap();
        assert_same_tree(&source, &target);
    }

    #[test]
    fn delta_restore_rewrites_only_differing_files_and_removes_extras() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        fidelity_tree(&source);
        let repo = new_repo(&dir.path().join("repo"));
        run_backup(&repo, &request(1, &source)).unwrap();
        let target = assert_restores_to(&repo, 1, &source, dir.path());

        fs::write(target.join("a/b/c/deep.txt"), b"edited in the target").unwrap();
        fs::write(target.join("text.log"), text(77, 5 << 20)).unwrap();
        fs::set_permissions(target.join("secret"), fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(target.join("extra.txt"), b"not in the set").unwrap();
        fs::create_dir_all(target.join("extra-dir/sub")).unwrap();
        fs::remove_file(target.join("link")).unwrap();
        fs::write(target.join("link"), b"a file where a symlink belongs").unwrap();
        let untouched_inode = fs::metadata(target.join("noise.bin")).unwrap().ino();

        let summary = run_restore(&repo, 1, &target, RestoreMethod::Delta).unwrap();

        assert_eq!(summary.files_written, 2, "{summary:?}");
        assert!(summary.files_unchanged >= 8, "{summary:?}");
        assert!(summary.entries_removed >= 3, "{summary:?}");
        assert_eq!(
            fs::metadata(target.join("noise.bin")).unwrap().ino(),
            untouched_inode
        );
        assert!(!target.join(INCOMPLETE_MARKER).exists());
        assert_same_tree(&source, &target);
    }

    #[test]
    fn delta_restore_writes_only_the_chunks_that_differ_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        fs::create_dir_all(&source).unwrap();
        let mut big = text(5, 24 << 20);
        big[20 << 20..(20 << 20) + 4096].fill(0);
        fs::write(source.join("table"), &big).unwrap();
        let repo = new_repo(&dir.path().join("repo"));
        run_backup(&repo, &request(1, &source)).unwrap();
        let target = assert_restores_to(&repo, 1, &source, dir.path());

        // The target moves on: a few bytes in the middle, data where the set has zeroes, and
        // a tail the set does not have.
        let mut moved = big.clone();
        moved[10 << 20..(10 << 20) + 10].copy_from_slice(b"0123456789");
        moved[(20 << 20) + 100] = 7;
        moved.extend_from_slice(&text(9, 1 << 20));
        fs::write(target.join("table"), &moved).unwrap();
        let inode = fs::metadata(target.join("table")).unwrap().ino();

        let summary = run_restore(&repo, 1, &target, RestoreMethod::Delta).unwrap();

        assert_eq!(summary.files_written, 1, "{summary:?}");
        // Two chunks were touched (the edit, the byte among zeroes): at most two chunks are
        // written, of 25 MiB.
        assert!(
            summary.bytes_written <= 2 * crate::engine::chunker::MAX_CHUNK as u64,
            "only the changed chunks are written: {summary:?}"
        );
        assert_eq!(fs::metadata(target.join("table")).unwrap().ino(), inode);
        assert_same_tree(&source, &target);
    }

    #[test]
    fn a_non_empty_target_is_refused_without_delta() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        fidelity_tree(&source);
        let repo = new_repo(&dir.path().join("repo"));
        run_backup(&repo, &request(1, &source)).unwrap();
        let target = dir.path().join("target");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("precious"), b"keep me").unwrap();
        let err = run_restore(&repo, 1, &target, RestoreMethod::Full).unwrap_err();
        assert!(matches!(err, EngineError::TargetNotEmpty { .. }), "{err}");
        assert!(err.to_string().contains("method=delta"));
        assert_eq!(fs::read(target.join("precious")).unwrap(), b"keep me");
        assert!(!target.join(INCOMPLETE_MARKER).exists());
        let missing = run_restore(&repo, 9, &dir.path().join("t2"), RestoreMethod::Full);
        assert!(matches!(
            missing,
            Err(EngineError::SetNotFound { set_id: 9, .. })
        ));
    }

    #[test]
    fn a_cancelled_restore_leaves_the_target_marked_incomplete() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        fidelity_tree(&source);
        let repo = new_repo(&dir.path().join("repo"));
        run_backup(&repo, &request(1, &source)).unwrap();
        let target = dir.path().join("target");
        let cancel = CancellationToken::new();
        cancel.cancel();
        let result = restore(
            &repo,
            &TenantRef::Name("files".into()),
            1,
            &target,
            RestoreMethod::Full,
            2,
            &Progress::new(),
            &cancel,
        );
        assert!(matches!(result, Err(EngineError::Cancelled)), "{result:?}");
        assert!(target.join(INCOMPLETE_MARKER).exists());
        // A second attempt with delta finishes the job and clears the mark.
        run_restore(&repo, 1, &target, RestoreMethod::Delta).unwrap();
        assert_same_tree(&source, &target);
    }

    #[test]
    fn restore_by_tenant_name_works_on_a_read_only_repository_of_another_installation() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        fidelity_tree(&source);
        run_backup(&new_repo(&dir.path().join("repo")), &request(1, &source)).unwrap();
        let foreign = Repository::create_or_open(&dir.path().join("repo"), "someone-else");
        assert!(matches!(
            foreign,
            Err(EngineError::ForeignDestination { .. })
        ));
        let repo = Repository::open(&dir.path().join("repo")).unwrap();
        assert_eq!(repo.installation_id(), "test-installation");
        let target = dir.path().join("target");
        restore(
            &repo,
            &TenantRef::Name("files".into()),
            1,
            &target,
            RestoreMethod::Full,
            0,
            &Progress::new(),
            &CancellationToken::new(),
        )
        .unwrap();
        assert_same_tree(&source, &target);
    }
}
