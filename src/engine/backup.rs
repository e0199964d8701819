//! Backup of a directory tree into a repository, as one pipeline of bounded channels.
//!
//! ```text
//! walk + read + chunk (calling thread) --chunks--> hash + compress workers --+
//!        \---------------------- manifest entries, in walk order ----------+--> packer
//! packer --sealed packs, checkpoints--> writers (own threads) --> destination
//! ```
//!
//! The calling thread walks the source in sorted order, reuses unchanged files from the parent
//! set or the checkpoint (merge-join on path), and cuts the other files into chunks, skipping
//! holes and storing zero runs as holes. Workers hash every chunk and compress those the
//! repository does not have yet. The packer appends them to packs, fills the chunk ids into the
//! entries (in walk order), writes the manifest segments and decides checkpoints.
//! Writers put packs and checkpoints. Every channel is bounded, so memory stays around a few
//! packs whatever the tree size. The set becomes visible only at the end: final index file,
//! then set descriptor, then the checkpoint is dropped.
//!
//! Every chunk gets a sequence number. The packer tracks the lowest number not yet in a durable
//! pack (the watermark); an entry is durable once all chunks numbered before its end are, which
//! makes the durable entries a prefix of the walk: that prefix is what a checkpoint stores.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::checkpoint::{Checkpoint, CheckpointInfo, encode_checkpoint, read_checkpoint};
use super::chunker::{Chunker, ContentId};
use super::error::EngineError;
use super::format::FORMAT_VERSION;
use super::index::{RepositoryIndex, encode_index};
use super::manifest::{ManifestCursor, ManifestEntry, ManifestReader, SegmentRef};
use super::pack::{ChunkStream, Compression, blob_compressor};
use super::packer::Packer;
use super::progress::Progress;
use super::reader::{Reader, ReaderOutcome};
use super::repository::{Repository, TenantRef};
use super::set::{BackupType, ObjectRef, SetDescriptor, write_set};
use super::throttle::Throttle;
use crate::source::{TreeRules, scan_totals};
use crate::storage::{Backend, commit_staged, staging_channel};

/// What to back up, where it goes, and how.
#[derive(Debug, Clone)]
pub struct BackupRequest {
    pub tenant_name: String,
    pub tenant_id: i64,
    pub set_id: i64,
    /// Root of the directory tree.
    pub source: PathBuf,
    /// The tenant's previous set: unchanged files reuse its chunks (the set is then `INC`).
    pub parent_set_id: Option<i64>,
    /// zstd level (1 is fast and usually best for backups); 0 stores every blob as it is
    /// (`backup_compression = none`).
    pub compression_level: i32,
    /// Compression workers; 0 means one per core.
    pub concurrency: usize,
    /// A checkpoint is saved at least this often (and every 1% of the input).
    pub checkpoint_interval: Duration,
    /// List unreadable files and go on instead of failing.
    pub skip_unreadable: bool,
    /// Go on from the checkpoint of (tenant, set) if there is one.
    pub resume: bool,
    /// Bytes per second written to the destination (`backup_net_limit`); 0 = no limit.
    pub net_limit: u64,
    /// What of the tree is copied: everything, or a PostgreSQL data directory's files.
    pub rules: TreeRules,
    /// Verify PostgreSQL page checksums of relation files while reading them; pages written
    /// since this LSN (the backup's start) are not judged.
    pub verify_pages_before: Option<u64>,
}

/// A PostgreSQL page that failed its checksum, read twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamagedPage {
    /// The relation file, relative to the data directory.
    pub file: String,
    /// The block number within the relation (counted across its segment files).
    pub block: u64,
}

/// What happened to a file that changed during the backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileOutcome {
    /// It changed while being read; reading it again gave a consistent copy.
    ReadAgain { attempts: u32 },
    /// It kept changing; the last read is stored and marked as changed during read.
    StoredAsLastRead { attempts: u32 },
    /// It disappeared before it could be read; it is not in the set.
    Vanished,
}

/// A file that changed while the backup ran (for the task's COMMENT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedFile {
    pub path: PathBuf,
    pub outcome: FileOutcome,
}

/// A file left out of the set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedFile {
    pub path: PathBuf,
    pub reason: String,
}

/// The result of a finished backup.
#[derive(Debug, Clone)]
pub struct BackupSummary {
    pub descriptor: SetDescriptor,
    pub changed_files: Vec<ChangedFile>,
    /// Unreadable files left out because of `skip_unreadable`.
    pub skipped_unreadable: Vec<SkippedFile>,
    /// Devices, FIFOs and sockets, which are not backed up.
    pub skipped_special: Vec<PathBuf>,
    /// PostgreSQL pages whose checksum failed (when `verify_pages_before` asked for checks).
    pub damaged_pages: Vec<DamagedPage>,
    /// Entries in the set.
    pub file_count: u64,
    /// Logical bytes of the files in the set.
    pub total_bytes: u64,
    /// Bytes read from the source by this run.
    pub bytes_read: u64,
    /// Files read by this run.
    pub files_read: u64,
    /// Files reused unchanged from the parent set.
    pub files_unchanged: u64,
    /// Files reused from the checkpoint of an interrupted run.
    pub files_resumed: u64,
    /// Bytes written to the destination by this run.
    pub bytes_written: u64,
    /// Checkpoints saved by this run.
    pub checkpoints: u32,
}

/// Chunks on their way to a compression worker: small files' chunks travel together, so the
/// threads hand over about a MiB at a time however small the files are.
pub(super) struct ChunkBatch {
    /// The chunks' bytes back to back (a pooled buffer, handed back by the packer).
    pub(super) data: Vec<u8>,
    pub(super) chunks: Vec<BatchChunk>,
}

/// One chunk of a [`ChunkBatch`]: `data[start..start + len]`.
#[derive(Debug, Clone, Copy)]
pub(super) struct BatchChunk {
    pub(super) seq: u64,
    /// [`ContentId::UNRESOLVED`] until the worker hashes the chunk.
    pub(super) id: ContentId,
    pub(super) start: usize,
    pub(super) len: usize,
}

/// How a worker stored one chunk of a batch.
#[derive(Debug, Clone, Copy)]
pub(super) enum Stored {
    /// The repository or this session already has it.
    Known,
    /// Kept as is: the bytes are the chunk's in the batch's data.
    Raw,
    /// A zstd frame at `output[start..start + len]`.
    Zstd { start: usize, len: usize },
}

pub(super) enum PackerMsg {
    /// A compressed batch: `input` and `output` are pooled buffers the packer hands back.
    Chunks {
        input: Vec<u8>,
        output: Vec<u8>,
        chunks: Vec<(BatchChunk, Stored)>,
    },
    /// The next manifest entries in walk order.
    Entries(Vec<PendingEntry>),
}

/// A manifest entry as the reader hands it to the packer.
pub(super) struct PendingEntry {
    pub(super) entry: ManifestEntry,
    /// The entry is durable once every chunk numbered below this is.
    pub(super) dep: u64,
    /// For a file the reader cut into chunks: the number of its first chunk. Its chunk extents
    /// carry [`ContentId::UNRESOLVED`] and are numbered consecutively from here; the packer
    /// fills in the ids the workers computed.
    pub(super) first_chunk: Option<u64>,
}

/// Buffers handed back and forth between the threads of a backup, so their memory is touched
/// once instead of for every chunk and pack (fresh pages cost more than the copies into them).
pub(super) struct BufferPool {
    free: Mutex<Vec<Vec<u8>>>,
    keep: usize,
}

impl BufferPool {
    pub(super) fn new(keep: usize) -> BufferPool {
        BufferPool {
            free: Mutex::new(Vec::new()),
            keep,
        }
    }

    /// An empty buffer, with the memory of a returned one when there is one.
    pub(super) fn take(&self) -> Vec<u8> {
        self.free
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .unwrap_or_default()
    }

    pub(super) fn give(&self, mut buffer: Vec<u8>) {
        buffer.clear();
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        if free.len() < self.keep && buffer.capacity() > 0 {
            free.push(buffer);
        }
    }
}

pub(super) enum WriteJob {
    Pack {
        number: u32,
        object: String,
        data: Vec<u8>,
    },
    Checkpoint {
        index: Option<(String, Vec<u8>)>,
        tail: Option<(SegmentRef, Vec<u8>)>,
        checkpoint: Checkpoint,
    },
}

/// State shared by every thread of one backup, including the writers, which may outlive a
/// cancelled call by one put.
pub(super) struct Shared {
    pub(super) backend: Arc<dyn Backend>,
    /// Cancelled by the caller's token or by the first error.
    pub(super) stop: CancellationToken,
    pub(super) error: Mutex<Option<EngineError>>,
    pub(super) durable_packs: Mutex<HashSet<u32>>,
    pub(super) throttle: Throttle,
    pub(super) checkpoint_busy: AtomicBool,
    pub(super) bytes_written: AtomicU64,
    /// Chunk batches' data (reader to packer).
    pub(super) batch_buffers: BufferPool,
    /// Workers' compressed output (worker to packer).
    pub(super) output_buffers: BufferPool,
    /// Packs (packer to writers and back).
    pub(super) pack_buffers: BufferPool,
}

impl Shared {
    /// The key sealing what the backup stores, when the repository is encrypted.
    pub(super) fn sealer(&self) -> Option<&super::crypto::Sealer> {
        self.backend.sealer()
    }

    pub(super) fn fail(&self, err: EngineError) {
        let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(err);
        }
        self.stop.cancel();
    }

    fn take_error(&self) -> Option<EngineError> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    pub(super) fn put(&self, object: &str, data: &[u8]) -> Result<(), EngineError> {
        self.throttle.wait(data.len() as u64, &self.stop);
        self.backend.put(object, data)?;
        self.bytes_written
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// Backs up `req.source` as set `req.set_id` of the tenant.
///
/// Returns [`EngineError::Cancelled`] soon after `cancel` fires; a checkpoint saved before that
/// stays, so `resume` can go on from it (the caller drops it with
/// [`Repository::delete_checkpoint`] when the task is not to be restarted).
pub fn backup(
    repo: &Repository,
    req: &BackupRequest,
    progress: &Progress,
    cancel: &CancellationToken,
    on_checkpoint: &mut dyn FnMut(&CheckpointInfo),
) -> Result<BackupSummary, EngineError> {
    backup_sealed(repo, req, progress, cancel, on_checkpoint, &mut |_| {
        Ok(None)
    })
}

/// What a source adds to its set once every file is stored, before the set is made visible:
/// for a PostgreSQL cluster, the end of its backup mode and what recovery needs.
pub type Seal<'a> =
    dyn FnMut(&[DamagedPage]) -> Result<Option<super::set::PostgresBackup>, EngineError> + 'a;

/// [`backup`], with `seal` called after the last file is durable and before the set descriptor
/// is written; an error from it leaves the set invisible (its checkpoint stays).
pub fn backup_sealed(
    repo: &Repository,
    req: &BackupRequest,
    progress: &Progress,
    cancel: &CancellationToken,
    on_checkpoint: &mut dyn FnMut(&CheckpointInfo),
    seal: &mut Seal<'_>,
) -> Result<BackupSummary, EngineError> {
    let backend = repo.backend();
    check_can_back_up(repo, req)?;
    let start_time = chrono::Utc::now();
    let (repo_index, unreadable_index) = RepositoryIndex::load_for_backup(backend)?;
    for damaged in &unreadable_index {
        tracing::warn!(object = %damaged.object, error = %damaged.error, "index file ignored; its chunks will be stored again");
    }
    let (parent, checkpoint) = starting_point(repo, req)?;

    let shared = Arc::new(Shared {
        backend: repo.backend_arc(),
        stop: cancel.child_token(),
        error: Mutex::new(None),
        durable_packs: Mutex::new(HashSet::new()),
        throttle: Throttle::new(req.net_limit),
        checkpoint_busy: AtomicBool::new(false),
        bytes_written: AtomicU64::new(0),
        batch_buffers: BufferPool::new(4),
        output_buffers: BufferPool::new(4),
        pack_buffers: BufferPool::new(3),
    });
    let workers = if req.concurrency == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        req.concurrency
    };
    let level = req.compression_level;

    // A pack is handed over only to a free writer: a queued one would be one more pack buffer
    // alive (8 MiB of peak memory) for no gain, the writers being the queue.
    let (write_tx, write_rx) = mpsc::sync_channel::<WriteJob>(0);
    let (event_tx, event_rx) = mpsc::channel::<CheckpointInfo>();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    spawn_writers(&shared, write_rx, event_tx, done_tx, 2, req);

    let session: Mutex<HashMap<ContentId, u32>> = Mutex::new(HashMap::new());
    let (chunk_tx, chunk_rx) = mpsc::sync_channel::<ChunkBatch>(workers);
    let chunk_rx = Arc::new(Mutex::new(chunk_rx));
    let (packer_tx, packer_rx) = mpsc::sync_channel::<PackerMsg>(workers + 1);

    let mut reader = Reader {
        req,
        progress,
        shared: &shared,
        repo_index: &repo_index,
        chunker: Chunker::new(),
        buffer: Vec::new(),
        batch: None,
        entries: Vec::new(),
        seq: 0,
        chunk_tx,
        packer_tx: packer_tx.clone(),
        needed_index_files: HashSet::new(),
        outcome: ReaderOutcome::default(),
        pages: None,
    };
    let mut checkpoints = 0u32;
    let (packer_outcome, outcome, reader_index_files) = std::thread::scope(|scope| {
        let prescan_stop = shared.stop.clone();
        scope.spawn(move || {
            let (bytes, files) = scan_totals(&req.source, req.rules, &prescan_stop);
            progress.total_bytes.store(bytes, Ordering::Relaxed);
            progress.total_files.store(files, Ordering::Relaxed);
        });
        for _ in 0..workers {
            let rx = Arc::clone(&chunk_rx);
            let tx = packer_tx.clone();
            let (shared, repo_index, session) = (&shared, &repo_index, &session);
            scope.spawn(move || compress_worker(shared, repo_index, session, rx, tx, level));
        }
        // Only the workers may hold the chunk queue: once they stop (on a cancel or an error)
        // the reader's next send must fail instead of waiting on a queue nobody drains.
        drop(chunk_rx);
        drop(packer_tx);
        let mut packer = Packer::new(&shared, &repo_index, &session, req, progress, write_tx);
        packer.resume_after(checkpoint.as_ref().map_or(0, |c| c.files_done));
        let packer = scope.spawn(move || packer.run(packer_rx));

        let parent_cursor = parent
            .as_ref()
            .map(|p| ManifestCursor::new(ManifestReader::new(backend, &p.manifest)));
        let checkpoint_cursor = checkpoint
            .as_ref()
            .map(|c| ManifestCursor::new(ManifestReader::new(backend, &c.manifest)));
        let walked = reader.walk(
            parent_cursor,
            checkpoint_cursor,
            &mut |info| {
                checkpoints += 1;
                on_checkpoint(info)
            },
            &event_rx,
        );
        if let Err(e) = walked {
            shared.fail(e);
        }
        let Reader {
            chunk_tx,
            packer_tx,
            outcome,
            needed_index_files,
            ..
        } = reader;
        drop(chunk_tx);
        drop(packer_tx);
        let packed = packer.join().expect("the packer thread does not panic");
        (packed, outcome, needed_index_files)
    });

    // Every writer and the committer hold a `done` sender; recv fails once the last one has
    // exited. Waited for even when stopping (they stop within a pack), so that nothing writes
    // into the destination once the backup has returned and released it to the collector.
    // Meanwhile the bytes the writers have made durable are shown as the backup's output.
    loop {
        match done_rx.recv_timeout(std::time::Duration::from_millis(200)) {
            Ok(()) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => progress.output_bytes.store(
                shared.bytes_written.load(Ordering::Relaxed),
                Ordering::Relaxed,
            ),
            Err(_) => break,
        }
    }
    for info in event_rx.try_iter() {
        checkpoints += 1;
        on_checkpoint(&info);
    }
    if let Some(err) = shared.take_error() {
        return Err(err);
    }
    if cancel.is_cancelled() || shared.stop.is_cancelled() {
        return Err(EngineError::Cancelled);
    }
    let index_files =
        index_files_of_set(&shared, &repo_index, &packer_outcome, reader_index_files)?;
    let mut descriptor = SetDescriptor {
        format_version: FORMAT_VERSION,
        tenant_name: req.tenant_name.clone(),
        tenant_id: req.tenant_id,
        set_id: req.set_id,
        backup_type: if parent.is_some() {
            BackupType::Incremental
        } else {
            BackupType::Full
        },
        parent_set_id: parent.as_ref().map(|p| p.set_id),
        start_time: start_time.to_rfc3339(),
        end_time: chrono::Utc::now().to_rfc3339(),
        input_bytes: packer_outcome.bytes,
        output_bytes: shared.bytes_written.load(Ordering::Relaxed),
        file_count: packer_outcome.files,
        manifest: packer_outcome.segments,
        index_files,
        postgres: seal(&outcome.damaged_pages)?,
    };
    if cancel.is_cancelled() {
        return Err(EngineError::Cancelled);
    }
    // The descriptor makes the set visible: it is written last, after everything it names.
    let descriptor_bytes = write_set(backend, &descriptor)?;
    descriptor.output_bytes += descriptor_bytes;
    progress
        .output_bytes
        .store(descriptor.output_bytes, Ordering::Relaxed);
    repo.delete_checkpoint(req.tenant_id, req.set_id)?;
    Ok(BackupSummary {
        file_count: descriptor.file_count,
        total_bytes: descriptor.input_bytes,
        bytes_written: descriptor.output_bytes,
        descriptor,
        changed_files: outcome.changed_files,
        skipped_unreadable: outcome.skipped_unreadable,
        skipped_special: outcome.skipped_special,
        damaged_pages: outcome.damaged_pages,
        bytes_read: outcome.bytes_read,
        files_read: outcome.files_read,
        files_unchanged: outcome.files_unchanged,
        files_resumed: outcome.files_resumed,
        checkpoints,
    })
}

/// A backup needs a writable repository, a source that is there, and a set id not taken.
fn check_can_back_up(repo: &Repository, req: &BackupRequest) -> Result<(), EngineError> {
    let backend = repo.backend();
    if !repo.is_writable() {
        return Err(EngineError::ReadOnly {
            destination: backend.describe(),
        });
    }
    if !req.source.is_dir() {
        return Err(EngineError::SourceMissing {
            path: req.source.clone(),
        });
    }
    if super::set::read_set(backend, req.tenant_id, req.set_id)?.is_some() {
        return Err(EngineError::SetExists {
            destination: backend.describe(),
            tenant_id: req.tenant_id,
            set_id: req.set_id,
        });
    }
    Ok(())
}

/// What the set starts from: the parent set an incremental compares with, and the checkpoint a
/// resumed run goes on from (an unreadable one is passed over: the set starts from scratch).
fn starting_point(
    repo: &Repository,
    req: &BackupRequest,
) -> Result<(Option<SetDescriptor>, Option<Checkpoint>), EngineError> {
    let parent = req
        .parent_set_id
        .map(|parent| repo.find_set(&TenantRef::Id(req.tenant_id), parent))
        .transpose()?;
    let checkpoint = if req.resume {
        match read_checkpoint(repo.backend(), req.tenant_id, req.set_id) {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "checkpoint unreadable; starting the set from scratch");
                None
            }
        }
    } else {
        None
    };
    Ok((parent, checkpoint))
}

/// The index files a set names: those its checkpoints wrote, one more for the packs not yet
/// indexed, and the repository's files that locate the chunks it reused.
fn index_files_of_set(
    shared: &Shared,
    repo_index: &RepositoryIndex,
    packer_outcome: &super::packer::PackerOutcome,
    reader_index_files: HashSet<u32>,
) -> Result<Vec<ObjectRef>, EngineError> {
    let mut index_files = packer_outcome.index_files.clone();
    if !packer_outcome.unindexed.is_empty() {
        let (object, bytes) = encode_index(shared.sealer(), &packer_outcome.unindexed);
        shared.put(&object, &bytes)?;
        index_files.push(ObjectRef {
            object,
            size: bytes.len() as u64,
        });
    }
    let mut needed: Vec<u32> = reader_index_files
        .union(&packer_outcome.needed_index_files)
        .copied()
        .collect();
    needed.sort_unstable();
    for number in needed {
        let (object, size) = repo_index.index_file(number);
        if !index_files.iter().any(|f| f.object == object) {
            index_files.push(ObjectRef {
                object: object.to_string(),
                size,
            });
        }
    }
    Ok(index_files)
}

fn spawn_writers(
    shared: &Arc<Shared>,
    jobs: Receiver<WriteJob>,
    events: Sender<CheckpointInfo>,
    done: Sender<()>,
    count: usize,
    req: &BackupRequest,
) {
    let jobs = Arc::new(Mutex::new(jobs));
    // Writers stage packs (into the page cache) and go on; one committer makes them durable in
    // order, so writing overlaps the disk instead of waiting for it. The committer may lag by
    // STAGE_AHEAD only: checkpoints follow durability, and a reader far ahead of the disk would
    // leave a slow destination without any checkpoint until the end.
    let (staged_tx, staged_rx) = staging_channel::<(u32, u64)>();
    {
        let (shared, done) = (Arc::clone(shared), done.clone());
        std::thread::spawn(move || {
            let _done = done;
            commit_staged(
                shared.backend.as_ref(),
                staged_rx,
                || !shared.stop.is_cancelled(),
                |(number, len)| {
                    shared.bytes_written.fetch_add(len, Ordering::Relaxed);
                    shared
                        .durable_packs
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(number);
                },
                |e| shared.fail(e.into()),
            );
        });
    }
    for _ in 0..count {
        let (shared, jobs, events, done, staged_tx) = (
            Arc::clone(shared),
            Arc::clone(&jobs),
            events.clone(),
            done.clone(),
            staged_tx.clone(),
        );
        let (tenant_id, set_id) = (req.tenant_id, req.set_id);
        std::thread::spawn(move || {
            let _done = done;
            loop {
                let job = jobs.lock().unwrap_or_else(|p| p.into_inner()).recv();
                let Ok(job) = job else { break };
                if shared.stop.is_cancelled() {
                    break;
                }
                match job {
                    WriteJob::Pack {
                        number,
                        object,
                        data,
                    } => {
                        shared.throttle.wait(data.len() as u64, &shared.stop);
                        match shared.backend.stage(&object, &data) {
                            Ok(staged) => {
                                let len = data.len() as u64;
                                shared.pack_buffers.give(data);
                                if staged_tx.send((staged, (number, len))).is_err() {
                                    break;
                                }
                            }
                            Err(e) => shared.fail(e.into()),
                        }
                    }
                    WriteJob::Checkpoint {
                        index,
                        tail,
                        checkpoint,
                    } => {
                        let written = write_checkpoint(&shared, index, tail, &checkpoint);
                        shared.checkpoint_busy.store(false, Ordering::Release);
                        match written {
                            Ok(object) => {
                                let _ = events.send(CheckpointInfo {
                                    tenant_id,
                                    set_id,
                                    object,
                                    bytes_done: checkpoint.bytes_done,
                                    files_done: checkpoint.files_done,
                                    time: SystemTime::now(),
                                });
                            }
                            Err(e) => shared.fail(e),
                        }
                    }
                }
            }
        });
    }
}

/// Index first, then the tail segment, then the checkpoint that references both.
fn write_checkpoint(
    shared: &Shared,
    index: Option<(String, Vec<u8>)>,
    tail: Option<(SegmentRef, Vec<u8>)>,
    checkpoint: &Checkpoint,
) -> Result<String, EngineError> {
    if let Some((object, bytes)) = index {
        shared.put(&object, &bytes)?;
    }
    if let Some((reference, bytes)) = tail {
        shared.put(&reference.object, &bytes)?;
    }
    let (object, bytes) = encode_checkpoint(shared.sealer(), checkpoint);
    shared.put(&object, &bytes)?;
    Ok(object)
}

fn compress_worker(
    shared: &Shared,
    repo_index: &RepositoryIndex,
    session: &Mutex<HashMap<ContentId, u32>>,
    jobs: Arc<Mutex<Receiver<ChunkBatch>>>,
    out: SyncSender<PackerMsg>,
    level: i32,
) {
    let mut compressor = match blob_compressor(level) {
        Ok(c) => c,
        Err(e) => {
            shared.fail(EngineError::io(
                "set up compression level",
                format!("zstd:{level}"),
                e,
            ));
            return;
        }
    };
    let mut stream = ChunkStream::default();
    loop {
        let job = jobs.lock().unwrap_or_else(|p| p.into_inner()).recv();
        let Ok(batch) = job else { return };
        let mut output = shared.output_buffers.take();
        let mut chunks = Vec::with_capacity(batch.chunks.len());
        for mut chunk in batch.chunks {
            if shared.stop.is_cancelled() {
                return;
            }
            let raw = &batch.data[chunk.start..chunk.start + chunk.len];
            chunk.id = super::crypto::chunk_id(shared.sealer(), raw);
            let known = repo_index.contains(&chunk.id)
                || session
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .contains_key(&chunk.id);
            let stored = if known {
                Stored::Known
            } else {
                let start = output.len();
                // Level 0 is `backup_compression = none`: every blob is stored as it is.
                let compressed = if level > 0 {
                    stream.compress_into(&mut compressor, raw, &mut output)
                } else {
                    Compression::Raw
                };
                match compressed {
                    Compression::Raw => Stored::Raw,
                    Compression::Zstd => Stored::Zstd {
                        start,
                        len: output.len() - start,
                    },
                }
            };
            chunks.push((chunk, stored));
        }
        // The packer reads the input only for chunks stored raw, and the output only for
        // compressed ones: a buffer it will not read goes back to its pool now instead of
        // waiting in the packer's queue (for an incremental, most chunks are known).
        let input = if chunks.iter().any(|(_, s)| matches!(s, Stored::Raw)) {
            batch.data
        } else {
            shared.batch_buffers.give(batch.data);
            Vec::new()
        };
        let output = if output.is_empty() {
            shared.output_buffers.give(output);
            Vec::new()
        } else {
            output
        };
        let msg = PackerMsg::Chunks {
            input,
            output,
            chunks,
        };
        if out.send(msg).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::manifest::ManifestReader;
    use crate::engine::reader::MAX_READ_ATTEMPTS;
    use crate::engine::repository::TenantRef;
    use crate::engine::restore::RestoreMethod;
    use crate::engine::testkit::*;
    use std::fs;
    use std::os::unix::fs::MetadataExt;
    use std::path::Path;

    fn manifest_of(repo: &Repository, set_id: i64) -> Vec<ManifestEntry> {
        let set = repo.find_set(&TenantRef::Id(TENANT), set_id).unwrap();
        ManifestReader::new(repo.backend(), &set.manifest)
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn full_backup_restores_every_fidelity_case_including_a_sparse_file_over_4_gib() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        fidelity_tree(&source);
        let huge = 4 * (1u64 << 30) + 5 * (1 << 20) + 123;
        sparse_file(&source.join("sparse.img"), huge);
        let repo = new_repo(&dir.path().join("repo"));

        let summary = run_backup(&repo, &request(1, &source)).unwrap();

        assert_eq!(summary.descriptor.backup_type, BackupType::Full);
        assert!(
            summary.changed_files.is_empty(),
            "{:?}",
            summary.changed_files
        );
        assert!(summary.total_bytes > huge);
        assert!(
            summary.bytes_read < 32 << 20,
            "holes must be skipped, read {} bytes",
            summary.bytes_read
        );
        assert!(
            summary.bytes_written < 12 << 20,
            "zeroes and text must not be stored raw: {} bytes",
            summary.bytes_written
        );
        let target = assert_restores_to(&repo, 1, &source, dir.path());
        let restored = fs::metadata(target.join("sparse.img")).unwrap();
        assert!(
            restored.blocks() * 512 < 64 << 20,
            "the restored sparse file must keep its holes ({} blocks)",
            restored.blocks()
        );
        assert!(fs::metadata(target.join("zeroes.bin")).unwrap().blocks() * 512 < 1 << 20);
    }

    #[test]
    fn unchanged_incremental_reads_nothing_and_changed_one_restores_on_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        fidelity_tree(&source);
        let repo = new_repo(&dir.path().join("repo"));
        let full = run_backup(&repo, &request(1, &source)).unwrap();
        assert!(full.bytes_read > 10 << 20);

        let mut req = request(2, &source);
        req.parent_set_id = Some(1);
        let unchanged = run_backup(&repo, &req).unwrap();
        assert_eq!(unchanged.descriptor.backup_type, BackupType::Incremental);
        assert_eq!(unchanged.bytes_read, 0);
        assert_eq!(unchanged.files_read, 0);
        assert_eq!(unchanged.files_unchanged, full.files_read);
        assert_restores_to(&repo, 2, &source, dir.path());

        fs::write(source.join("a/b/c/deep.txt"), text(99, 20_000)).unwrap();
        fs::write(source.join("new.bin"), noise(98, 700_000)).unwrap();
        fs::remove_file(source.join("noise.bin")).unwrap();
        let mut req = request(3, &source);
        req.parent_set_id = Some(2);
        let changed = run_backup(&repo, &req).unwrap();
        assert_eq!(changed.files_read, 2);
        assert_eq!(changed.bytes_read, 20_000 + 700_000);

        // The incremental set stands alone: its parents' descriptors are not needed.
        fs::remove_file(dir.path().join("repo/sets/1001/1.set")).unwrap();
        fs::remove_file(dir.path().join("repo/sets/1001/2.set")).unwrap();
        assert_restores_to(&repo, 3, &source, dir.path());
        let listed: Vec<i64> = repo.list_sets().unwrap().iter().map(|s| s.set_id).collect();
        assert_eq!(listed, vec![3]);
    }

    #[test]
    fn a_file_that_keeps_changing_is_reported_and_stored_consistently_marked() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        fidelity_tree(&source);
        let busy = source.join("busy.log");
        fs::write(&busy, noise(5, 24 << 20)).unwrap();
        let repo = new_repo(&dir.path().join("repo"));
        let writing = std::sync::Arc::new(AtomicBool::new(true));
        let writer = {
            let (busy, writing) = (busy.clone(), writing.clone());
            std::thread::spawn(move || {
                let file = fs::OpenOptions::new().write(true).open(&busy).unwrap();
                let mut n = 0u64;
                while writing.load(Ordering::Relaxed) {
                    std::os::unix::fs::FileExt::write_all_at(
                        &file,
                        &n.to_le_bytes(),
                        (n * 4096) % (24 << 20),
                    )
                    .unwrap();
                    n += 1;
                    std::thread::sleep(Duration::from_micros(200));
                }
            })
        };
        let summary = run_backup(&repo, &request(1, &source));
        writing.store(false, Ordering::Relaxed);
        writer.join().unwrap();
        let summary = summary.unwrap();
        let reported: Vec<_> = summary
            .changed_files
            .iter()
            .filter(|c| c.path == busy)
            .collect();
        assert_eq!(reported.len(), 1, "{:?}", summary.changed_files);
        assert!(matches!(
            reported[0].outcome,
            FileOutcome::StoredAsLastRead {
                attempts: MAX_READ_ATTEMPTS
            } | FileOutcome::ReadAgain { .. }
        ));
        let entry = manifest_of(&repo, 1)
            .into_iter()
            .find(|e| e.path == b"busy.log")
            .unwrap();
        assert_eq!(
            entry.changed_during_read,
            matches!(reported[0].outcome, FileOutcome::StoredAsLastRead { .. })
        );
        // Everything else restores exactly; the busy file restores to what was read.
        let target = dir.path().join("target");
        crate::engine::testkit::run_restore(&repo, 1, &target, RestoreMethod::Full).unwrap();
        let root_mtime = fs::metadata(&source).unwrap().modified().unwrap();
        fs::remove_file(&busy).unwrap();
        fs::remove_file(target.join("busy.log")).unwrap();
        set_mtime(&source, root_mtime);
        set_mtime(&target, root_mtime);
        assert_same_tree(&source, &target);
    }

    /// Runs as a child process (see `unreadable_file_fails_naming_it_or_is_skipped`) when the
    /// tests run as root, whose reads chmod 000 cannot block.
    #[test]
    #[ignore = "helper run by unreadable_file_fails_naming_it_or_is_skipped as an unprivileged child"]
    fn unreadable_file_child() {
        let Ok(base) = std::env::var("BACKSTOP_UNREADABLE_DIR") else {
            return;
        };
        check_unreadable(Path::new(&base));
    }

    fn check_unreadable(base: &Path) {
        let source = base.join("source");
        let repo = new_repo(&base.join("repo"));
        let err = run_backup(&repo, &request(1, &source)).unwrap_err();
        match &err {
            EngineError::UnreadableFile { path, .. } => {
                assert_eq!(path, &source.join("closed"), "{err}")
            }
            other => panic!("expected an unreadable file error, got {other}"),
        }
        assert!(err.to_string().contains("closed"));
        assert!(repo.list_sets().unwrap().is_empty());

        let mut req = request(2, &source);
        req.skip_unreadable = true;
        let summary = run_backup(&repo, &req).unwrap();
        assert_eq!(summary.skipped_unreadable.len(), 1);
        assert_eq!(summary.skipped_unreadable[0].path, source.join("closed"));
        let paths: Vec<Vec<u8>> = manifest_of(&repo, 2).into_iter().map(|e| e.path).collect();
        assert_eq!(paths, vec![b"".to_vec(), b"open".to_vec()]);
    }

    #[test]
    fn unreadable_file_fails_naming_it_or_is_skipped() {
        use std::os::unix::fs::PermissionsExt;
        use std::os::unix::process::CommandExt;
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        fs::create_dir(&source).unwrap();
        fs::write(source.join("open"), b"readable").unwrap();
        fs::write(source.join("closed"), b"secret").unwrap();
        fs::set_permissions(source.join("closed"), fs::Permissions::from_mode(0o000)).unwrap();
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            check_unreadable(dir.path());
            return;
        }
        // As root every file is readable, so run the check as user nobody in a child process
        // (a copy of this test binary that nobody may execute).
        let nobody = 65534;
        let exe = dir.path().join("engine-tests");
        fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
        for path in [dir.path(), &source, &source.join("open"), &exe] {
            std::os::unix::fs::chown(path, Some(nobody), Some(nobody)).unwrap();
        }
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let output = std::process::Command::new(&exe)
            .args([
                "--ignored",
                "--exact",
                "engine::backup::tests::unreadable_file_child",
            ])
            .env("BACKSTOP_UNREADABLE_DIR", dir.path())
            .uid(nobody)
            .gid(nobody)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "child failed: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    #[test]
    fn cancel_mid_backup_is_prompt_and_earlier_sets_still_restore() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        fidelity_tree(&source);
        let repo = new_repo(&dir.path().join("repo"));
        run_backup(&repo, &request(1, &source)).unwrap();
        let root_mtime = fs::metadata(&source).unwrap().modified().unwrap();
        for i in 0..6 {
            fs::write(source.join(format!("big-{i}")), noise(100 + i, 16 << 20)).unwrap();
        }
        // A long sparse file at the end: the input cannot be exhausted before the cancel lands,
        // however the threads are scheduled.
        let tail = source.join("big-9");
        sparse_file(&tail, 8 << 30);
        let cancel = CancellationToken::new();
        let progress = Arc::new(Progress::new());
        let canceller = {
            let cancel = cancel.clone();
            let progress = Arc::clone(&progress);
            std::thread::spawn(move || {
                for _ in 0..30_000 {
                    if progress.input_bytes.load(Ordering::Relaxed) >= 16 << 20 {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                cancel.cancel();
            })
        };
        let result = backup(&repo, &request(2, &source), &progress, &cancel, &mut |_| {});
        canceller.join().unwrap();
        assert!(matches!(result, Err(EngineError::Cancelled)), "{result:?}");
        // Promptness without a clock: the backup stopped long before its input ran out.
        let read = progress.input_bytes.load(Ordering::Relaxed);
        assert!(read < 4 << 30, "read {read} bytes after the cancel");
        fs::remove_file(&tail).unwrap();
        let sets: Vec<i64> = repo.list_sets().unwrap().iter().map(|s| s.set_id).collect();
        assert_eq!(sets, vec![1]);
        for i in 0..6 {
            fs::remove_file(source.join(format!("big-{i}"))).unwrap();
        }
        set_mtime(&source, root_mtime);
        assert_restores_to(&repo, 1, &source, dir.path());
    }

    #[test]
    fn level_zero_stores_blobs_uncompressed_and_restores() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        fs::create_dir(&source).unwrap();
        fs::write(source.join("text"), text(9, 4 << 20)).unwrap();
        let repo = new_repo(&dir.path().join("repo"));
        let mut req = request(1, &source);
        req.compression_level = 0;
        let summary = run_backup(&repo, &req).unwrap();
        assert!(
            summary.bytes_written >= 4 << 20,
            "text must not be compressed at level 0: {} bytes written",
            summary.bytes_written
        );
        assert_restores_to(&repo, 1, &source, dir.path());
    }

    #[test]
    fn resumed_backup_reads_less_and_matches_an_uninterrupted_one() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        fs::create_dir(&source).unwrap();
        for i in 0..40 {
            fs::write(source.join(format!("file-{i:02}")), noise(200 + i, 1 << 20)).unwrap();
        }
        // A long file in the middle keeps the reader busy for a second or more while the first
        // files become durable, so the checkpoint below always comes before the end of input,
        // however loaded the machine. Checkpoints are reported between entries.
        let slow = source.join("file-20-slow");
        sparse_file(&slow, 2 << 30);
        let repo = new_repo(&dir.path().join("repo"));
        let cancel = CancellationToken::new();
        let mut req = request(1, &source);
        req.checkpoint_interval = Duration::ZERO;
        // Interrupt at the first checkpoint that holds a file beyond the root directory; the
        // checkpoints the pipeline saves up to then are all reported before backup returns.
        let mut saved = Vec::new();
        let interrupted = backup(&repo, &req, &Progress::new(), &cancel, &mut |info| {
            saved.push(info.clone());
            if info.files_done >= 2 {
                cancel.cancel();
            }
        });
        assert!(
            matches!(interrupted, Err(EngineError::Cancelled)),
            "{interrupted:?}"
        );
        let stored = saved.iter().map(|c| c.files_done).max().unwrap();
        assert!(stored >= 2, "{saved:?}");
        assert!(repo.list_sets().unwrap().is_empty());
        fs::remove_file(&slow).unwrap();

        req.resume = true;
        let resumed = run_backup(&repo, &req).unwrap();
        // files_done counts the root directory too, and the slow file when a slow disk held
        // the first checkpoint back until the reader was past it: that file is gone now.
        assert!(
            resumed.files_resumed >= stored.saturating_sub(2) && resumed.files_resumed >= 1,
            "{resumed:?} after a checkpoint of {stored} entries"
        );
        assert_eq!(resumed.files_read + resumed.files_resumed, 40);
        assert_eq!(resumed.bytes_read, resumed.files_read << 20);
        assert!(
            repo.backend()
                .size("checkpoints/1001/1.ckpt")
                .unwrap()
                .is_none()
        );
        assert_restores_to(&repo, 1, &source, dir.path());

        let straight = run_backup(&repo, &request(2, &source)).unwrap();
        assert_eq!(straight.files_resumed, 0);
        assert_eq!(manifest_of(&repo, 1), manifest_of(&repo, 2));
    }

    /// A checkpoint is used only while it reads back intact: garbage, or a checkpoint naming a
    /// damaged manifest segment, makes the resumed backup read every file anew.
    #[test]
    fn a_damaged_checkpoint_is_never_trusted() {
        use crate::engine::checkpoint::{checkpoint_object_name, encode_checkpoint};
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        fidelity_tree(&source);
        let repo = new_repo(&dir.path().join("repo"));
        let full = run_backup(&repo, &request(1, &source)).unwrap();
        let set = repo.find_set(&TenantRef::Id(TENANT), 1).unwrap();
        let checkpoint = |set_id: i64, manifest: Vec<SegmentRef>| Checkpoint {
            format_version: FORMAT_VERSION,
            tenant_id: TENANT,
            set_id,
            created: chrono::Utc::now().to_rfc3339(),
            manifest,
            index_files: set.index_files.clone(),
            bytes_done: 0,
            files_done: 0,
        };
        let resume = |set_id: i64| {
            let mut req = request(set_id, &source);
            req.resume = true;
            run_backup(&repo, &req).unwrap()
        };
        // An intact checkpoint is used: the test below can fail.
        let (object, bytes) = encode_checkpoint(None, &checkpoint(2, set.manifest.clone()));
        repo.backend().put(&object, &bytes).unwrap();
        assert!(resume(2).files_resumed > 0);

        // A checkpoint naming a damaged segment.
        let mut damaged = set.manifest[0].clone();
        let stored = repo.backend().get(&damaged.object).unwrap();
        damaged.object = format!("manifests/{}.seg", "ab".repeat(32));
        repo.backend()
            .put(&damaged.object, &stored[..stored.len() / 2])
            .unwrap();
        let (object, bytes) = encode_checkpoint(None, &checkpoint(3, vec![damaged]));
        repo.backend().put(&object, &bytes).unwrap();
        let anew = resume(3);
        assert_eq!(anew.files_resumed, 0);
        assert_eq!(anew.bytes_read, full.bytes_read);
        assert_restores_to(&repo, 3, &source, dir.path());

        // A checkpoint that is garbage.
        repo.backend()
            .put(
                &checkpoint_object_name(TENANT, 4),
                b"{\"format_version\": 1, \"tena",
            )
            .unwrap();
        let anew = resume(4);
        assert_eq!(anew.files_resumed, 0);
        assert_eq!(anew.bytes_read, full.bytes_read);
        assert_restores_to(&repo, 4, &source, dir.path());
    }

    #[test]
    fn a_set_id_is_written_once_and_a_missing_source_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        fidelity_tree(&source);
        let repo = new_repo(&dir.path().join("repo"));
        run_backup(&repo, &request(1, &source)).unwrap();
        assert!(matches!(
            run_backup(&repo, &request(1, &source)),
            Err(EngineError::SetExists { set_id: 1, .. })
        ));
        let gone = dir.path().join("gone");
        let err = run_backup(&repo, &request(2, &gone)).unwrap_err();
        assert!(matches!(err, EngineError::SourceMissing { .. }));
        assert!(err.to_string().contains("gone"));
        let read_only = Repository::open(&dir.path().join("repo")).unwrap();
        assert!(matches!(
            run_backup(&read_only, &request(3, &source)),
            Err(EngineError::ReadOnly { .. })
        ));
    }
}
