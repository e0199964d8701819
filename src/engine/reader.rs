//! The calling thread's part of a backup: walk the source, reuse unchanged files from the
//! checkpoint or the parent set, and cut the other files into chunks for the workers (which hash
//! them).
//!
//! Holes are never read and runs of zeroes become zero extents. A file that changes while it is
//! read (fstat after reading differs from fstat at open) is read again, up to three times.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender};

use super::backup::{
    BackupRequest, BatchChunk, ChangedFile, ChunkBatch, DamagedPage, FileOutcome, PackerMsg,
    PendingEntry, Shared, SkippedFile,
};
use super::checkpoint::CheckpointInfo;
use super::chunker::{Chunker, ContentId, MAX_CHUNK, is_zero};
use super::error::EngineError;
use super::index::RepositoryIndex;
use super::manifest::{Extent, ManifestCursor, ManifestEntry};
use super::progress::Progress;
use crate::source::postgres::layout::{holds_relations, relation_of};
use crate::source::postgres::pages::{PAGE, PageVerifier};
use crate::source::{
    DirectoryWalk, EntryKind, Metadata, SourceFile, TreeRules, WalkEntry, WalkErrorKind,
};

/// How many times a file that changes while it is read is read in all.
pub(super) const MAX_READ_ATTEMPTS: u32 = 3;
/// Read-ahead buffer of the reader: two maximal chunks. It is refilled when the chunker finds
/// no cut in what is left, and that tail (the start of a chunk, under a maximal one) moves to
/// the front first: about a tenth of what is read.
const READ_BUFFER: usize = 2 * MAX_CHUNK;
/// Damaged PostgreSQL pages listed at most (the task's COMMENT names the first few).
const MAX_DAMAGED_PAGES: usize = 1000;
/// A batch of chunks goes to the workers once it holds this many bytes.
const BATCH_BYTES: usize = 1 << 20;
/// Entries go to the packer this many at a time.
const ENTRY_BATCH: usize = 256;

#[derive(Default)]
pub(super) struct ReaderOutcome {
    pub(super) changed_files: Vec<ChangedFile>,
    pub(super) skipped_unreadable: Vec<SkippedFile>,
    pub(super) skipped_special: Vec<PathBuf>,
    pub(super) damaged_pages: Vec<DamagedPage>,
    pub(super) bytes_read: u64,
    pub(super) files_read: u64,
    pub(super) files_unchanged: u64,
    pub(super) files_resumed: u64,
}

/// Why a file could not be read.
enum ReadFailure {
    Vanished,
    Unreadable(std::io::Error),
    Stopped,
}

/// A file read into chunks.
struct FileRead {
    meta: Metadata,
    /// Chunk extents carry [`ContentId::UNRESOLVED`]; they are numbered from `first_chunk`.
    extents: Vec<Extent>,
    first_chunk: u64,
    attempts: u32,
    consistent: bool,
}

/// The calling thread's part: walk, reuse, read, chunk, hash.
pub(super) struct Reader<'a> {
    pub(super) req: &'a BackupRequest,
    pub(super) progress: &'a Progress,
    pub(super) shared: &'a Arc<Shared>,
    pub(super) repo_index: &'a RepositoryIndex,
    pub(super) chunker: Chunker,
    pub(super) buffer: Vec<u8>,
    pub(super) seq: u64,
    /// Chunks not yet handed to the workers.
    pub(super) batch: Option<ChunkBatch>,
    /// Entries not yet handed to the packer, with their dependencies.
    pub(super) entries: Vec<PendingEntry>,
    pub(super) chunk_tx: SyncSender<ChunkBatch>,
    pub(super) packer_tx: SyncSender<PackerMsg>,
    pub(super) needed_index_files: HashSet<u32>,
    pub(super) outcome: ReaderOutcome,
    /// The page checks of the relation file being read, when pages are verified.
    pub(super) pages: Option<PageVerifier>,
}

impl Reader<'_> {
    pub(super) fn walk<'m>(
        &mut self,
        mut parent: Option<ManifestCursor<'m>>,
        mut checkpoint: Option<ManifestCursor<'m>>,
        on_checkpoint: &mut dyn FnMut(&CheckpointInfo),
        events: &Receiver<CheckpointInfo>,
    ) -> Result<(), EngineError> {
        for walked in DirectoryWalk::with_rules(&self.req.source, self.req.rules) {
            for info in events.try_iter() {
                on_checkpoint(&info);
            }
            self.progress.output_bytes.store(
                self.shared.bytes_written.load(Ordering::Relaxed),
                Ordering::Relaxed,
            );
            if self.shared.stop.is_cancelled() {
                return Ok(());
            }
            let walked = match walked {
                Ok(entry) => entry,
                Err(e) => match e.kind {
                    WalkErrorKind::RootMissing => {
                        return Err(EngineError::SourceMissing { path: e.path });
                    }
                    WalkErrorKind::Vanished => {
                        self.outcome.changed_files.push(ChangedFile {
                            path: e.path,
                            outcome: FileOutcome::Vanished,
                        });
                        continue;
                    }
                    WalkErrorKind::Unreadable => {
                        self.unreadable(e.path, e.source)?;
                        continue;
                    }
                },
            };
            let (entry, first_chunk) = match walked.meta.kind {
                EntryKind::Special => {
                    self.outcome.skipped_special.push(walked.full_path);
                    continue;
                }
                EntryKind::Directory | EntryKind::Symlink => {
                    (plain_entry(&walked, Vec::new()), None)
                }
                EntryKind::File => {
                    match self.reuse(&walked, checkpoint.as_mut(), parent.as_mut())? {
                        Some(entry) => (entry, None),
                        None => match self.read_file(&walked)? {
                            Some((entry, first_chunk)) => (entry, Some(first_chunk)),
                            None => continue,
                        },
                    }
                }
            };
            self.progress.finish_file();
            self.entries.push(PendingEntry {
                entry,
                dep: self.seq,
                first_chunk,
            });
            if self.entries.len() >= ENTRY_BATCH && !self.flush() {
                return Ok(());
            }
        }
        self.flush();
        Ok(())
    }

    /// Hands the pending chunks to the workers and the pending entries to the packer; false
    /// once the pipeline has stopped.
    fn flush(&mut self) -> bool {
        if let Some(batch) = self.batch.take()
            && self.send_batch(batch).is_err()
        {
            return false;
        }
        if self.entries.is_empty() {
            return true;
        }
        let entries = std::mem::take(&mut self.entries);
        self.packer_tx.send(PackerMsg::Entries(entries)).is_ok()
    }

    fn unreadable(&mut self, path: PathBuf, source: std::io::Error) -> Result<(), EngineError> {
        if !self.req.skip_unreadable {
            return Err(EngineError::UnreadableFile { path, source });
        }
        self.outcome.skipped_unreadable.push(SkippedFile {
            path,
            reason: source.to_string(),
        });
        Ok(())
    }

    /// The entry of an unchanged file taken from the checkpoint or the parent set, when both
    /// its metadata match and every chunk it needs is indexed.
    fn reuse<'m>(
        &mut self,
        walked: &WalkEntry,
        checkpoint: Option<&mut ManifestCursor<'m>>,
        parent: Option<&mut ManifestCursor<'m>>,
    ) -> Result<Option<ManifestEntry>, EngineError> {
        for (cursor, from_checkpoint) in [(checkpoint, true), (parent, false)] {
            let Some(cursor) = cursor else { continue };
            let previous = match cursor.find(&walked.path) {
                Ok(Some(previous)) => previous,
                Ok(None) => continue,
                // A damaged checkpoint (or parent) is never trusted: the files it would have
                // given are read anew. Its reader stops at the damage, so this is said once.
                Err(e) => {
                    let from = if from_checkpoint {
                        "checkpoint"
                    } else {
                        "parent set"
                    };
                    tracing::warn!(error = %e, from, "manifest unreadable; reading the files anew");
                    continue;
                }
            };
            if !unchanged(previous, &walked.meta) {
                continue;
            }
            let mut index_files = Vec::new();
            let all_indexed = previous.extents.iter().all(|extent| match extent {
                Extent::Chunk { id, .. } => self
                    .repo_index
                    .lookup(id)
                    .map(|l| index_files.push(l.index_file))
                    .is_some(),
                Extent::Zero { .. } => true,
            });
            if !all_indexed {
                continue;
            }
            self.needed_index_files.extend(index_files);
            if from_checkpoint {
                self.outcome.files_resumed += 1;
            } else {
                self.outcome.files_unchanged += 1;
            }
            self.progress.add_input(walked.meta.size);
            return Ok(Some(plain_entry(walked, previous.extents.clone())));
        }
        Ok(None)
    }

    /// Reads a file into chunks; `Ok(None)` when it vanished or was skipped as unreadable.
    /// Reads and chunks a file; returns its entry and the number of its first chunk.
    fn read_file(
        &mut self,
        walked: &WalkEntry,
    ) -> Result<Option<(ManifestEntry, u64)>, EngineError> {
        self.progress
            .set_current_file(Some(walked.full_path.clone()));
        let read = match self.read_consistently(walked) {
            Ok(read) => read,
            Err(ReadFailure::Stopped) => return Ok(None),
            Err(ReadFailure::Vanished) => {
                self.outcome.changed_files.push(ChangedFile {
                    path: walked.full_path.clone(),
                    outcome: FileOutcome::Vanished,
                });
                return Ok(None);
            }
            Err(ReadFailure::Unreadable(e)) => {
                self.unreadable(walked.full_path.clone(), e)?;
                return Ok(None);
            }
        };
        self.outcome.files_read += 1;
        // A PostgreSQL file written while it was read is normal (recovery replays it): not
        // worth a line in the COMMENT.
        if (read.attempts > 1 || !read.consistent) && self.req.rules == TreeRules::Everything {
            let outcome = if read.consistent {
                FileOutcome::ReadAgain {
                    attempts: read.attempts,
                }
            } else {
                FileOutcome::StoredAsLastRead {
                    attempts: read.attempts,
                }
            };
            self.outcome.changed_files.push(ChangedFile {
                path: walked.full_path.clone(),
                outcome,
            });
        }
        let mut entry = plain_entry(walked, read.extents);
        entry.mode = read.meta.mode;
        entry.uid = read.meta.uid;
        entry.gid = read.meta.gid;
        entry.mtime_ns = read.meta.mtime_ns;
        entry.ctime_ns = read.meta.ctime_ns;
        entry.inode = read.meta.inode;
        entry.dev = read.meta.dev;
        entry.size = entry.extents.iter().map(Extent::length).sum();
        entry.changed_during_read = !read.consistent;
        Ok(Some((entry, read.first_chunk)))
    }

    fn read_consistently(&mut self, walked: &WalkEntry) -> Result<FileRead, ReadFailure> {
        // A PostgreSQL data file changing while it is read is the normal case: recovery makes
        // it consistent from the WAL, so it is read once.
        let max_attempts = match self.req.rules {
            TreeRules::PostgresData => 1,
            TreeRules::Everything => MAX_READ_ATTEMPTS,
        };
        let mut attempts = 0;
        loop {
            attempts += 1;
            let file = SourceFile::open(&walked.full_path).map_err(classify_open_error)?;
            let first_chunk = self.seq;
            self.pages = self.page_verifier(walked);
            let extents = self.read_extents(&file)?;
            if let Some(pages) = self.pages.take() {
                self.recheck_pages(walked, &file, &pages);
            }
            let change = file.change_since_open().map_err(ReadFailure::Unreadable)?;
            let consistent = change.is_none();
            if consistent || attempts >= max_attempts {
                return Ok(FileRead {
                    meta: *file.metadata(),
                    extents,
                    first_chunk,
                    attempts,
                    consistent,
                });
            }
        }
    }

    /// A verifier for `walked` when pages are verified and it is a relation file.
    fn page_verifier(&self, walked: &WalkEntry) -> Option<PageVerifier> {
        let start_lsn = self.req.verify_pages_before?;
        let (dir, name) = match walked.path.iter().rposition(|&b| b == b'/') {
            Some(i) => (&walked.path[..i], &walked.path[i + 1..]),
            None => (&[][..], walked.path.as_slice()),
        };
        if !holds_relations(dir) {
            return None;
        }
        let relation = relation_of(name)?;
        Some(PageVerifier::new(relation.segment, start_lsn))
    }

    /// Reads each page that failed its check once more (a page being written can be torn in
    /// one read) and lists those that fail again.
    fn recheck_pages(&mut self, walked: &WalkEntry, file: &SourceFile, pages: &PageVerifier) {
        let mut page = vec![0u8; PAGE];
        for &block in pages.suspects() {
            let passes = file
                .read_at(&mut page, block * PAGE as u64)
                .is_ok_and(|n| n == PAGE && pages.passes_on_reread(block, &page));
            if !passes && self.outcome.damaged_pages.len() < MAX_DAMAGED_PAGES {
                self.outcome.damaged_pages.push(DamagedPage {
                    file: String::from_utf8_lossy(&walked.path).into_owned(),
                    block: pages.relation_block(block),
                });
            }
        }
    }

    /// Cuts the data regions of `file` into chunks and sends the new ones to the workers;
    /// holes and runs of zeroes become zero extents.
    fn read_extents(&mut self, file: &SourceFile) -> Result<Vec<Extent>, ReadFailure> {
        let size = file.metadata().size;
        let mut extents = Vec::new();
        let mut pos = 0u64;
        while let Some((start, end)) = file
            .next_data_region(pos, size)
            .map_err(ReadFailure::Unreadable)?
        {
            // A hole is part of the file's input as much as the bytes read: progress counts
            // it, so that a sparse file's progress reaches its size as the scan counted it.
            self.progress.add_input(start - pos);
            push_zero(&mut extents, start - pos);
            let read_end = self.chunk_region(file, start, end, &mut extents)?;
            pos = read_end;
            if read_end < end {
                // The file shrank under us: what was read is all there is.
                return Ok(extents);
            }
        }
        self.progress.add_input(size.saturating_sub(pos));
        push_zero(&mut extents, size.saturating_sub(pos));
        Ok(extents)
    }

    /// Chunks `[start, end)`; returns where reading stopped (before `end` if the file shrank).
    fn chunk_region(
        &mut self,
        file: &SourceFile,
        start: u64,
        end: u64,
        extents: &mut Vec<Extent>,
    ) -> Result<u64, ReadFailure> {
        if self.buffer.len() != READ_BUFFER {
            self.buffer = vec![0u8; READ_BUFFER];
        }
        let mut head = 0usize;
        let mut filled = 0usize;
        let mut read_pos = start;
        let mut at_end = false;
        loop {
            let Some(cut) = self.chunker.next_cut(&self.buffer[head..filled], at_end) else {
                if at_end {
                    return Ok(read_pos);
                }
                // No cut in what is left, which is less than a maximal chunk: read more after it.
                self.buffer.copy_within(head..filled, 0);
                filled -= head;
                head = 0;
                while !at_end && filled < READ_BUFFER {
                    let want = ((READ_BUFFER - filled) as u64).min(end - read_pos) as usize;
                    if want == 0 {
                        at_end = true;
                        break;
                    }
                    let n = file
                        .read_at(&mut self.buffer[filled..filled + want], read_pos)
                        .map_err(ReadFailure::Unreadable)?;
                    if let Some(pages) = self.pages.as_mut() {
                        pages.feed(read_pos, &self.buffer[filled..filled + n]);
                    }
                    filled += n;
                    read_pos += n as u64;
                    if n < want {
                        at_end = true;
                    }
                }
                continue;
            };
            if self.shared.stop.is_cancelled() {
                return Err(ReadFailure::Stopped);
            }
            self.emit_chunk(head, cut, extents)?;
            head += cut;
        }
    }

    fn emit_chunk(
        &mut self,
        head: usize,
        len: usize,
        extents: &mut Vec<Extent>,
    ) -> Result<(), ReadFailure> {
        let data = &self.buffer[head..head + len];
        self.outcome.bytes_read += len as u64;
        self.progress.add_input(len as u64);
        if is_zero(data) {
            push_zero(extents, len as u64);
            return Ok(());
        }
        // The worker that compresses the chunk hashes it: hashing here would make this thread,
        // which walks, reads and cuts alone, the whole pipeline's bottleneck.
        let id = ContentId::UNRESOLVED;
        extents.push(Extent::Chunk {
            id,
            length: len as u32,
        });
        // A batch is either small chunks adding up to about a MiB or one big chunk, so its
        // buffer stays small.
        if self
            .batch
            .as_ref()
            .is_some_and(|b| b.data.len() + len > BATCH_BYTES)
        {
            let batch = self.batch.take().expect("checked just above");
            self.send_batch(batch)?;
        }
        let batch = self.batch.get_or_insert_with(|| ChunkBatch {
            data: self.shared.batch_buffers.take(),
            chunks: Vec::new(),
        });
        batch.chunks.push(BatchChunk {
            seq: self.seq,
            id,
            start: batch.data.len(),
            len,
        });
        batch.data.extend_from_slice(data);
        self.seq += 1;
        if batch.data.len() >= BATCH_BYTES {
            let batch = self.batch.take().expect("a batch was just filled");
            self.send_batch(batch)?;
            // Entries finished before these chunks go along, so checkpoints keep up.
            if !self.entries.is_empty() {
                let entries = std::mem::take(&mut self.entries);
                if self.packer_tx.send(PackerMsg::Entries(entries)).is_err() {
                    return Err(ReadFailure::Stopped);
                }
            }
        }
        Ok(())
    }

    /// Hands a batch to the compression workers, waiting while they are busy. A stop never
    /// leaves this waiting: the workers stop with it and drop the queue, which fails the send.
    fn send_batch(&self, batch: ChunkBatch) -> Result<(), ReadFailure> {
        if self.shared.stop.is_cancelled() {
            return Err(ReadFailure::Stopped);
        }
        self.chunk_tx.send(batch).map_err(|_| ReadFailure::Stopped)
    }
}

fn classify_open_error(e: std::io::Error) -> ReadFailure {
    match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ELOOP) | Some(libc::ENOTDIR) => ReadFailure::Vanished,
        _ if e.kind() == std::io::ErrorKind::InvalidInput => ReadFailure::Vanished,
        _ => ReadFailure::Unreadable(e),
    }
}

fn push_zero(extents: &mut Vec<Extent>, length: u64) {
    if length == 0 {
        return;
    }
    if let Some(Extent::Zero { length: last }) = extents.last_mut() {
        *last += length;
    } else {
        extents.push(Extent::Zero { length });
    }
}

/// Whether a file is the same as when `previous` recorded it.
fn unchanged(previous: &ManifestEntry, now: &Metadata) -> bool {
    previous.kind == EntryKind::File
        && !previous.changed_during_read
        && previous.size == now.size
        && previous.mtime_ns == now.mtime_ns
        && previous.ctime_ns == now.ctime_ns
        && previous.inode == now.inode
}

fn plain_entry(walked: &WalkEntry, extents: Vec<Extent>) -> ManifestEntry {
    let meta = &walked.meta;
    ManifestEntry {
        path: walked.path.clone(),
        kind: meta.kind,
        mode: meta.mode,
        uid: meta.uid,
        gid: meta.gid,
        size: if meta.kind == EntryKind::File {
            meta.size
        } else {
            0
        },
        mtime_ns: meta.mtime_ns,
        ctime_ns: meta.ctime_ns,
        inode: meta.inode,
        dev: meta.dev,
        changed_during_read: false,
        symlink_target: walked.symlink_target.clone().unwrap_or_default(),
        extents,
    }
}
